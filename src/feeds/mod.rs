//! Feeds: the data the checks judge by, loaded offline.
//!
//! OSV advisories (known vulnerabilities and known-malicious packages) and popular-package
//! lists. A snapshot ships in `feeds/` and is compiled in ([`snapshot::bundled_index`]), so
//! a fresh clone is protected offline; `depfw feeds import` and `depfw feeds sync` put newer
//! data in the store ([`store::FeedStore`]). Everything ends up in one [`AdvisoryIndex`].

pub mod cfg;
pub mod index;
mod matcher;
pub mod model;
pub mod osv;
pub mod popular;
pub mod snapshot;
pub mod store;

use std::path::PathBuf;

pub use cfg::{FeedSource, FeedsConfig};
pub use index::AdvisoryIndex;
pub use model::{Advisory, AdvisoryKind, AffectedRange, RangeEvent, RangeKind};
pub use osv::{load_bytes, load_path, LoadedFeed};
pub use store::{FeedStore, SourceStatus};

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
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
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

/// The advisory index depfw runs with: the store's feeds when any source has data, else the
/// bundled snapshot when `feeds.bundled` is on, else an empty index (revision `none`).
pub fn active_index(
    config: &FeedsConfig,
    store: Option<&crate::store::Store>,
) -> Result<AdvisoryIndex, FeedError> {
    if let Some(store) = store {
        let feeds = FeedStore::new(store)?;
        if feeds.has_data()? {
            return feeds.load_index();
        }
    }
    if config.bundled {
        return snapshot::bundled_index();
    }
    Ok(AdvisoryIndex::new(Vec::new(), "none".to_owned()))
}

/// [`active_index`] reduced to the advisories about `packages` (ecosystem and normalised
/// key), for one-shot scans that know every package up front. From the store this reads
/// only those packages ([`FeedStore::load_index_for`]); from the bundled snapshot, only
/// their ecosystems' files, building only their advisories. Checks give the same findings either way for these packages, and the
/// revision is the full index's.
pub fn active_index_for<'a>(
    config: &FeedsConfig,
    store: Option<&crate::store::Store>,
    packages: impl IntoIterator<Item = (crate::package::Ecosystem, &'a str)>,
) -> Result<AdvisoryIndex, FeedError> {
    let packages: Vec<_> = packages.into_iter().collect();
    if let Some(store) = store {
        let feeds = FeedStore::new(store)?;
        if feeds.has_data()? {
            return match feeds.load_index_for(packages.iter().copied())? {
                Some(index) => Ok(index),
                None => feeds.load_index(),
            };
        }
    }
    if config.bundled {
        return snapshot::bundled_index_for(packages.iter().copied());
    }
    active_index(config, None)
}
