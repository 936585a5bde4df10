//! Updating the stored feeds: `depfw feeds sync|import|status`, run by the command line on
//! its own store, or by a running `depfw serve` for it through the admin API (the sled
//! store allows one process). Both doors call these functions, so a sync or an import does
//! the same thing, and says the same thing, either way.
//!
//! A source that fails to download or parse records the error and keeps its last good
//! data (see `store::feeds`).

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::config::FeedSource;
use crate::feeds::{load_bytes, AdvisoryIndex, FeedError, LoadedFeed};
use crate::package::Ecosystem;
use crate::store::feeds::{FeedStore, SourceStatus};

/// Largest feed download accepted (the OSV npm archive is a few hundred MB).
pub const MAX_FEED_BYTES: u64 = 1024 * 1024 * 1024;

/// What a sync did with one source: `depfw feeds sync` prints [`SyncedSource::line`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedSource {
    pub name: String,
    /// Advisories stored, when the source downloaded and parsed.
    pub advisories: Option<usize>,
    /// Why it failed.
    pub error: Option<String>,
    /// After a failure: which data stays in use.
    pub kept: Option<String>,
}

impl SyncedSource {
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// The line `depfw feeds sync` prints on stderr.
    pub fn line(&self) -> String {
        match &self.error {
            None => format!("{}: {} advisories", self.name, self.advisories.unwrap_or(0)),
            Some(error) => format!(
                "{}: FAILED ({}): {error}",
                self.name,
                self.kept.as_deref().unwrap_or("")
            ),
        }
    }
}

/// What `depfw feeds sync` did: one entry per configured source, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    pub sources: Vec<SyncedSource>,
}

impl SyncReport {
    pub fn failed(&self) -> usize {
        self.sources.iter().filter(|s| s.failed()).count()
    }
}

/// Syncs every source into `feeds`, calling `each` as each one is done. Errors only if
/// the store itself fails; a failed source is in the report. `progress` draws a bar on a
/// terminal's stderr (the command line's; never the server's).
pub async fn sync(
    feeds: &FeedStore,
    sources: &[FeedSource],
    timeout: Duration,
    progress: bool,
    each: &mut (dyn FnMut(&SyncedSource) + Send),
) -> anyhow::Result<SyncReport> {
    let client = reqwest::Client::builder()
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .user_agent(concat!("depfw/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let mut report = SyncReport {
        sources: Vec::new(),
    };
    for source in sources {
        let outcome = match download(&client, source, progress).await {
            Ok(bytes) => {
                load_bytes(Path::new(source.url.as_str()), &bytes).map_err(anyhow::Error::from)
            }
            Err(e) => Err(e),
        };
        let done = match outcome {
            Ok(feed) => {
                let status = feeds.save(&source.name, &feed, Utc::now())?;
                SyncedSource {
                    name: source.name.clone(),
                    advisories: Some(status.advisories()),
                    error: None,
                    kept: None,
                }
            }
            Err(e) => {
                let message = format!("{e:#}");
                feeds.record_failure(&source.name, &message, Utc::now())?;
                let kept = feeds
                    .status()?
                    .into_iter()
                    .find(|s| s.name == source.name)
                    .and_then(|s| Some((s.fetched_at?, s.advisories())));
                let kept = match kept {
                    Some((at, n)) => format!(
                        "keeping its data from {} ({n} advisories)",
                        at.format("%Y-%m-%d %H:%M UTC")
                    ),
                    None => "no earlier data for this source: ecosystems no synced source \
                             covers use the bundled snapshot (unless feeds.bundled = false)"
                        .to_owned(),
                };
                SyncedSource {
                    name: source.name.clone(),
                    advisories: None,
                    error: Some(message),
                    kept: Some(kept),
                }
            }
        };
        each(&done);
        report.sources.push(done);
    }
    Ok(report)
}

async fn download(
    client: &reqwest::Client,
    source: &FeedSource,
    progress: bool,
) -> anyhow::Result<Vec<u8>> {
    let response = client
        .get(source.url.clone())
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("downloading {}", source.url))?;
    let expected = response.content_length();
    if expected.is_some_and(|len| len > MAX_FEED_BYTES) {
        anyhow::bail!("{} is larger than {MAX_FEED_BYTES} bytes", source.url);
    }
    let bar = if progress && std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(expected, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
    {
        bar.set_style(style);
    }
    bar.set_prefix(source.name.clone());
    let mut body =
        Vec::with_capacity(usize::try_from(expected.unwrap_or(0).min(MAX_FEED_BYTES)).unwrap_or(0));
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.with_context(|| format!("downloading {}", source.url))?;
        if body.len() as u64 + chunk.len() as u64 > MAX_FEED_BYTES {
            bar.abandon();
            anyhow::bail!("{} is larger than {MAX_FEED_BYTES} bytes", source.url);
        }
        body.extend_from_slice(&chunk);
        bar.set_position(body.len() as u64);
    }
    bar.finish_and_clear();
    Ok(body)
}

/// What `depfw feeds import` stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    pub name: String,
    pub advisories: usize,
    pub records: usize,
    pub withdrawn: usize,
}

impl Imported {
    /// The line `depfw feeds import` prints.
    pub fn line(&self) -> String {
        format!(
            "imported {} advisories ({} records, {} withdrawn) as `{}`",
            self.advisories, self.records, self.withdrawn, self.name
        )
    }
}

/// Why an import stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The data does not read (recorded as the source's last error).
    #[error("importing `{name}`")]
    Feed { name: String, source: FeedError },
    /// The store failed.
    #[error("importing `{name}`")]
    Store { name: String, source: FeedError },
}

/// Stores `loaded` (a parsed file, directory or upload) as source `name`; a feed that does
/// not read is recorded as the source's last error, keeping its last good data.
pub fn import(
    feeds: &FeedStore,
    name: &str,
    loaded: Result<LoadedFeed, FeedError>,
) -> Result<Imported, ImportError> {
    let store_error = |source| ImportError::Store {
        name: name.to_owned(),
        source,
    };
    match loaded {
        Ok(feed) => {
            let status = feeds.save(name, &feed, Utc::now()).map_err(store_error)?;
            Ok(Imported {
                name: name.to_owned(),
                advisories: status.advisories(),
                records: feed.records,
                withdrawn: feed.withdrawn,
            })
        }
        Err(source) => {
            feeds
                .record_failure(name, &source.to_string(), Utc::now())
                .map_err(store_error)?;
            Err(ImportError::Feed {
                name: name.to_owned(),
                source,
            })
        }
    }
}

/// What the data in use covers in one ecosystem (`depfw feeds status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    pub ecosystem: Ecosystem,
    pub malicious: usize,
    pub vulnerabilities: usize,
    /// Unmaintained, unsound and notice advisories.
    pub informational: usize,
    /// When the newest vulnerability advisory was published.
    pub newest_vulnerability: Option<DateTime<Utc>>,
}

/// [`Coverage`] of every ecosystem in `index`.
pub fn coverage(index: &AdvisoryIndex) -> Vec<Coverage> {
    let counts = index.counts();
    let count = |eco: Ecosystem, kinds: &[&str]| -> usize {
        kinds
            .iter()
            .map(|k| counts.get(&(eco, *k)).copied().unwrap_or(0))
            .sum()
    };
    Ecosystem::ALL
        .into_iter()
        .map(|eco| Coverage {
            ecosystem: eco,
            malicious: count(eco, &["malicious"]),
            vulnerabilities: count(eco, &["vulnerability"]),
            informational: count(eco, &["unmaintained", "unsound", "notice"]),
            newest_vulnerability: index
                .iter()
                .filter(|a| a.ecosystem == eco && a.kind.as_str() == "vulnerability")
                .filter_map(|a| a.published)
                .max(),
        })
        .collect()
}

/// What `depfw feeds status` shows: every stored source and what the data in use covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedDetails {
    pub sources: Vec<SourceStatus>,
    pub coverage: Vec<Coverage>,
}
