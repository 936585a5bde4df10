//! Synced and imported feeds, kept in the sled store across restarts.
//!
//! `depfw feeds import` / `depfw feeds sync` save each named source here; `depfw serve`,
//! `audit` and `check` load every source into one [`AdvisoryIndex`]. A source that fails to
//! download or parse only records the error: its last good data stays in use, because a
//! broken upstream must not switch protection off. For the same reason synced feeds replace
//! the bundled snapshot per ecosystem, not wholesale ([`active_index`]).
//!
//! Layout of the `feeds` tree: `meta/<name>` (JSON [`SourceStatus`]) and `data/<name>`
//! (gzip'd JSON advisories, see [`crate::feeds::snapshot::encode`]), written together in one batch,
//! plus `indexed/<name>`: the data hash whose per-package copy is complete.
//!
//! The `feeds-by-package` tree holds the same advisories split by package
//! (`<ecosystem>/<key>\0<source>` → JSON array), so that a one-shot scan (`depfw audit`)
//! reads only the packages it evaluates ([`FeedStore::load_index_for`]) instead of decoding
//! every feed: milliseconds instead of most of a second. The proxy keeps loading everything.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Store, StoreError};
use crate::feeds::snapshot::{self, decode, encode};
use crate::feeds::{read_in_parallel, Advisory, AdvisoryIndex, FeedError, FeedsConfig, LoadedFeed};
use crate::package::Ecosystem;

const TREE: &str = "feeds";
const META: &str = "meta/";
const DATA: &str = "data/";
const INDEXED: &str = "indexed/";
const BY_PACKAGE_TREE: &str = "feeds-by-package";
/// Below this many packages per thread, spawning costs more than it saves.
const MIN_LOOKUPS_PER_THREAD: usize = 500;

/// One source's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    pub name: String,
    /// When the data in use was fetched; `None` if no attempt ever succeeded.
    pub fetched_at: Option<DateTime<Utc>>,
    /// Records read in the good fetch (withdrawn ones included).
    pub records: usize,
    /// Advisories in use, per ecosystem.
    pub by_ecosystem: BTreeMap<Ecosystem, usize>,
    /// sha256 of the stored data, hex.
    pub data_sha256: Option<String>,
    /// The last failed attempt, if it came after the last good one.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

impl SourceStatus {
    fn empty(name: &str) -> Self {
        SourceStatus {
            name: name.to_owned(),
            fetched_at: None,
            records: 0,
            by_ecosystem: BTreeMap::new(),
            data_sha256: None,
            last_error: None,
            last_error_at: None,
        }
    }

    /// Time since the data in use was fetched.
    pub fn age(&self, now: DateTime<Utc>) -> Option<chrono::Duration> {
        self.fetched_at.map(|t| now - t)
    }

    /// No good data, or good data older than `stale_after_days`.
    pub fn is_stale(&self, now: DateTime<Utc>, stale_after_days: u64) -> bool {
        let limit = chrono::Duration::days(
            i64::try_from(stale_after_days).unwrap_or(i64::MAX / 86_400_000),
        );
        self.age(now).is_none_or(|age| age > limit)
    }

    pub fn advisories(&self) -> usize {
        self.by_ecosystem.values().sum()
    }
}

/// The feeds kept in the store.
#[derive(Clone)]
pub struct FeedStore {
    tree: sled::Tree,
    by_package: sled::Tree,
}

/// `<ecosystem>/<key>\0`: the prefix of a package's per-source entries.
fn package_prefix(ecosystem: Ecosystem, key: &str) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(ecosystem.slug().len() + key.len() + 2);
    prefix.extend_from_slice(ecosystem.slug().as_bytes());
    prefix.push(b'/');
    prefix.extend_from_slice(key.as_bytes());
    prefix.push(0);
    prefix
}

fn corrupt(what: String, detail: impl ToString) -> FeedError {
    FeedError::from(StoreError::Corrupt {
        what,
        detail: detail.to_string(),
    })
}

impl FeedStore {
    pub fn new(store: &Store) -> Result<Self, FeedError> {
        Ok(FeedStore {
            tree: store.tree(TREE)?,
            by_package: store.tree(BY_PACKAGE_TREE)?,
        })
    }

    fn get_status(&self, name: &str) -> Result<Option<SourceStatus>, FeedError> {
        let key = format!("{META}{name}");
        match self.tree.get(&key).map_err(StoreError::from)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| corrupt(key, e)),
        }
    }

    /// Replaces `name`'s data with a successfully parsed feed.
    pub fn save(
        &self,
        name: &str,
        feed: &LoadedFeed,
        fetched_at: DateTime<Utc>,
    ) -> Result<SourceStatus, FeedError> {
        let data = encode(&feed.advisories)?;
        let status = SourceStatus {
            name: name.to_owned(),
            fetched_at: Some(fetched_at),
            records: feed.records,
            by_ecosystem: feed.counts_by_ecosystem(),
            data_sha256: Some(hex::encode(Sha256::digest(&data))),
            last_error: None,
            last_error_at: None,
        };
        let meta = serde_json::to_vec(&status).map_err(|e| corrupt(name.to_owned(), e))?;
        // The marker goes first and comes back last: while it is missing or names other
        // data, readers ignore the per-package copy and decode the whole feed.
        let marker = format!("{INDEXED}{name}");
        self.tree.remove(&marker).map_err(StoreError::from)?;
        self.tree.flush().map_err(StoreError::from)?;
        self.save_by_package(name, &feed.advisories)?;
        let mut batch = sled::Batch::default();
        batch.insert(format!("{DATA}{name}").as_bytes(), data);
        batch.insert(format!("{META}{name}").as_bytes(), meta);
        if let Some(sha) = &status.data_sha256 {
            batch.insert(marker.as_bytes(), sha.as_bytes());
        }
        self.tree.apply_batch(batch).map_err(StoreError::from)?;
        self.tree.flush().map_err(StoreError::from)?;
        Ok(status)
    }

    /// Replaces `source`'s entries in the per-package tree with `advisories`.
    fn save_by_package(&self, source: &str, advisories: &[Advisory]) -> Result<(), FeedError> {
        let mut grouped: BTreeMap<Vec<u8>, Vec<&Advisory>> = BTreeMap::new();
        for advisory in advisories {
            let mut key = package_prefix(advisory.ecosystem, &advisory.package);
            key.extend_from_slice(source.as_bytes());
            grouped.entry(key).or_default().push(advisory);
        }
        let mut batch = sled::Batch::default();
        let suffix = format!("\0{source}");
        for item in self.by_package.iter() {
            let (key, _) = item.map_err(StoreError::from)?;
            if key.ends_with(suffix.as_bytes()) && !grouped.contains_key(key.as_ref()) {
                batch.remove(key);
            }
        }
        for (key, list) in grouped {
            let value = serde_json::to_vec(&list)
                .map_err(|e| corrupt(String::from_utf8_lossy(&key).into_owned(), e))?;
            batch.insert(key, value);
        }
        self.by_package
            .apply_batch(batch)
            .map_err(StoreError::from)?;
        self.by_package.flush().map_err(StoreError::from)?;
        Ok(())
    }

    /// Records a failed fetch or parse of `name`, keeping its last good data.
    pub fn record_failure(
        &self,
        name: &str,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<SourceStatus, FeedError> {
        let mut status = self
            .get_status(name)?
            .unwrap_or_else(|| SourceStatus::empty(name));
        status.last_error = Some(error.to_owned());
        status.last_error_at = Some(at);
        let meta = serde_json::to_vec(&status).map_err(|e| corrupt(name.to_owned(), e))?;
        self.tree
            .insert(format!("{META}{name}"), meta)
            .map_err(StoreError::from)?;
        self.tree.flush().map_err(StoreError::from)?;
        Ok(status)
    }

    /// Every source's status, by name.
    pub fn status(&self) -> Result<Vec<SourceStatus>, FeedError> {
        self.tree
            .scan_prefix(META)
            .map(|item| {
                let (key, bytes) = item.map_err(StoreError::from)?;
                serde_json::from_slice(&bytes)
                    .map_err(|e| corrupt(String::from_utf8_lossy(&key).into_owned(), e))
            })
            .collect()
    }

    /// Whether any source has good data (else callers fall back to the bundled snapshot).
    /// Asks the small status records: reading a `data/` value would load a whole feed.
    pub fn has_data(&self) -> Result<bool, FeedError> {
        Ok(!self.sources_in_use()?.is_empty())
    }

    /// The ecosystems that some source's good data holds advisories about.
    pub fn ecosystems_with_data(&self) -> Result<std::collections::BTreeSet<Ecosystem>, FeedError> {
        Ok(self
            .sources_in_use()?
            .iter()
            .flat_map(|s| s.by_ecosystem.iter())
            .filter(|(_, &count)| count > 0)
            .map(|(&e, _)| e)
            .collect())
    }

    /// Every source's good data in one index. The revision hashes the source names, fetch
    /// times and data hashes, so it changes exactly when the data in use changes.
    pub fn load_index(&self) -> Result<AdvisoryIndex, FeedError> {
        let sources = self.sources_in_use()?;
        let mut advisories = Vec::new();
        for status in &sources {
            let key = format!("{DATA}{}", status.name);
            let Some(bytes) = self.tree.get(&key).map_err(StoreError::from)? else {
                return Err(corrupt(key, "status says fetched but the data is missing"));
            };
            advisories.extend(decode(&bytes).map_err(|e| corrupt(key, e))?);
        }
        Ok(AdvisoryIndex::new(advisories, revision(&sources)))
    }

    /// An index of only the advisories about `packages` (ecosystem and normalised key),
    /// with the same revision as [`FeedStore::load_index`]: for callers that know every
    /// package they will evaluate. `None` when some source's per-package copy is missing
    /// or outdated (data saved by an older depfw): the caller then loads everything.
    pub fn load_index_for<'a>(
        &self,
        packages: impl IntoIterator<Item = (Ecosystem, &'a str)>,
    ) -> Result<Option<AdvisoryIndex>, FeedError> {
        let sources = self.sources_in_use()?;
        for status in &sources {
            let marker = self
                .tree
                .get(format!("{INDEXED}{}", status.name))
                .map_err(StoreError::from)?;
            if marker.as_deref() != status.data_sha256.as_deref().map(str::as_bytes) {
                return Ok(None);
            }
        }
        let in_use: HashSet<&[u8]> = sources.iter().map(|s| s.name.as_bytes()).collect();
        let mut packages: Vec<(Ecosystem, &str)> = packages.into_iter().collect();
        packages.sort_unstable();
        packages.dedup();
        // Each lookup walks sled pages that a fresh process has to read and deserialize
        // first: thousands of packages split over the cores (a parallel walk of one tree).
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(4);
        let chunk = packages.len().div_ceil(threads).max(MIN_LOOKUPS_PER_THREAD);
        let advisories = read_in_parallel(
            packages.chunks(chunk),
            |part| self.advisories_about(part, &in_use),
            || corrupt("feeds-by-package".into(), "a lookup panicked"),
        )?;
        Ok(Some(AdvisoryIndex::new(advisories, revision(&sources))))
    }

    /// The per-package advisories of `packages` from the sources `in_use`.
    fn advisories_about(
        &self,
        packages: &[(Ecosystem, &str)],
        in_use: &HashSet<&[u8]>,
    ) -> Result<Vec<Advisory>, FeedError> {
        let mut advisories = Vec::new();
        for &(ecosystem, key) in packages {
            let prefix = package_prefix(ecosystem, key);
            for item in self.by_package.scan_prefix(&prefix) {
                let (entry_key, value) = item.map_err(StoreError::from)?;
                // A source whose data is no longer in use (never fetched) is skipped.
                if !in_use.contains(&entry_key[prefix.len()..]) {
                    continue;
                }
                let list: Vec<Advisory> = serde_json::from_slice(&value)
                    .map_err(|e| corrupt(String::from_utf8_lossy(&entry_key).into_owned(), e))?;
                advisories.extend(list);
            }
        }
        Ok(advisories)
    }

    /// The sources with good data, by name.
    fn sources_in_use(&self) -> Result<Vec<SourceStatus>, FeedError> {
        Ok(self
            .status()?
            .into_iter()
            .filter(|s| s.fetched_at.is_some() && s.data_sha256.is_some())
            .collect())
    }
}

impl From<StoreError> for FeedError {
    fn from(e: StoreError) -> Self {
        FeedError::Store(Box::new(e))
    }
}

/// The advisory index depfw runs with: the store's feeds when any source has data, else the
/// bundled snapshot when `feeds.bundled` is on, else an empty index (revision `none`).
pub fn active_index(
    config: &FeedsConfig,
    store: Option<&Store>,
) -> Result<AdvisoryIndex, FeedError> {
    if let Some(store) = store {
        let feeds = FeedStore::new(store)?;
        if feeds.has_data()? {
            let synced = feeds.load_index()?;
            return with_bundled_gaps(config, &feeds, synced, None);
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
/// their ecosystems' files, building only their advisories. Checks give the same findings
/// either way for these packages, and the revision is the full index's.
pub fn active_index_for<'a>(
    config: &FeedsConfig,
    store: Option<&Store>,
    packages: impl IntoIterator<Item = (Ecosystem, &'a str)>,
) -> Result<AdvisoryIndex, FeedError> {
    let packages: Vec<_> = packages.into_iter().collect();
    if let Some(store) = store {
        let feeds = FeedStore::new(store)?;
        if feeds.has_data()? {
            let synced = match feeds.load_index_for(packages.iter().copied())? {
                Some(index) => index,
                None => feeds.load_index()?,
            };
            let wanted: HashSet<(Ecosystem, &str)> = packages.iter().copied().collect();
            return with_bundled_gaps(config, &feeds, synced, Some(&wanted));
        }
    }
    if config.bundled {
        return snapshot::bundled_index_for(packages.iter().copied());
    }
    active_index(config, None)
}

/// Synced feeds replace the bundled snapshot ecosystem by ecosystem, never wholesale: an
/// ecosystem that no synced source covers (its sync failed, or no source is configured for
/// it) keeps the bundled advisories, so a failed PyPI download cannot leave django 3.2.4
/// unchecked because the npm one succeeded.
fn with_bundled_gaps(
    config: &FeedsConfig,
    feeds: &FeedStore,
    synced: AdvisoryIndex,
    only: Option<&HashSet<(Ecosystem, &str)>>,
) -> Result<AdvisoryIndex, FeedError> {
    if !config.bundled {
        return Ok(synced);
    }
    let covered: BTreeSet<Ecosystem> = feeds
        .sources_in_use()?
        .iter()
        .flat_map(|s| s.by_ecosystem.iter())
        .filter(|(_, n)| **n > 0)
        .map(|(eco, _)| *eco)
        .collect();
    let gaps: BTreeSet<Ecosystem> = Ecosystem::ALL
        .into_iter()
        .filter(|eco| !covered.contains(eco))
        .collect();
    if gaps.is_empty() {
        return Ok(synced);
    }
    let bundled = snapshot::bundled_index_of(&gaps, only)?;
    let filled: Vec<String> = gaps.iter().map(ToString::to_string).collect();
    let revision = format!(
        "{}+{}({})",
        synced.revision(),
        bundled.revision(),
        filled.join(",")
    );
    Ok(synced.fill_empty_ecosystems(bundled, revision))
}

/// Hashes the source names, fetch times and data hashes of `sources`.
fn revision(sources: &[SourceStatus]) -> String {
    let mut hasher = Sha256::new();
    for status in sources {
        let (Some(fetched_at), Some(sha)) = (status.fetched_at, &status.data_sha256) else {
            continue;
        };
        hasher.update(status.name.as_bytes());
        hasher.update([0]);
        hasher.update(fetched_at.to_rfc3339().as_bytes());
        hasher.update([0]);
        hasher.update(sha.as_bytes());
        hasher.update([0]);
    }
    format!("feeds-{}", &hex::encode(hasher.finalize())[..16])
}
