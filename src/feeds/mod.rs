//! Feeds: the data the checks judge by, loaded offline.
//!
//! OSV advisories (known vulnerabilities and known-malicious packages) and popular-package
//! lists. A snapshot ships in `feeds/` and is compiled in ([`snapshot::bundled_index`]), so
//! a fresh clone is protected offline; `depfw feeds import` and `depfw feeds sync` put newer
//! data in the store (`crate::store::feeds::FeedStore`). Everything ends up in one [`AdvisoryIndex`].

pub(crate) mod cfg;
pub(crate) mod index;
mod matcher;
pub(crate) mod model;
pub(crate) mod nswg;
pub(crate) mod osv;
pub(crate) mod packed;
pub(crate) mod popular;
pub mod snapshot;

use std::path::PathBuf;

pub use cfg::{FeedSource, FeedsConfig};
pub use index::AdvisoryIndex;
pub use matcher::{AffectedRange, RangeEvent, RangeKind};
pub use model::{Advisory, AdvisoryKind};
pub use osv::{load_bytes, load_path, LoadedFeed};

/// A feed that could not be read, parsed or stored. Always names the file (and line or
/// archive entry) at fault.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid OSV record: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: line {line}: not a valid OSV record: {source}")]
    JsonLine {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: not a readable zip archive: {detail}")]
    Zip { path: PathBuf, detail: String },
    #[error("{path}: archive entry {entry}: not a valid OSV record: {source}")]
    ZipEntry {
        path: PathBuf,
        entry: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {detail}")]
    Format { path: PathBuf, detail: String },
    #[error("feed snapshot: {0}")]
    Snapshot(String),
    /// The store holding synced feeds failed (`crate::store::StoreError`, which converts
    /// into this); boxed because the store sits above the feeds it keeps.
    #[error(transparent)]
    Store(Box<dyn std::error::Error + Send + Sync>),
}

/// Advisories read by `read` from each of `parts`, one thread per part, concatenated in
/// part order: decoding a whole feed file or walking thousands of store entries is CPU work
/// that spreads over the cores. A part whose thread panicked fails as `panicked`.
pub(crate) fn read_in_parallel<P: Send>(
    parts: impl IntoIterator<Item = P>,
    read: impl Fn(P) -> Result<Vec<Advisory>, FeedError> + Sync,
    panicked: impl Fn() -> FeedError,
) -> Result<Vec<Advisory>, FeedError> {
    let read = &read;
    let results: Vec<Result<Vec<Advisory>, FeedError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || read(part)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err(panicked())))
            .collect()
    });
    let mut advisories = Vec::new();
    for part in results {
        advisories.extend(part?);
    }
    Ok(advisories)
}
