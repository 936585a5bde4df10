//! Synced and imported feeds, kept in the sled store across restarts.
//!
//! `depfw feeds import` / `depfw feeds sync` save each named source here; `depfw serve`,
//! `audit` and `check` load every source into one [`AdvisoryIndex`]. A source that fails to
//! download or parse only records the error: its last good data stays in use, because a
//! broken upstream must not switch protection off.
//!
//! Layout of the `feeds` tree: `meta/<name>` (JSON [`SourceStatus`]) and `data/<name>`
//! (gzip'd JSON advisories, see [`super::snapshot::encode`]), written together in one batch.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::package::Ecosystem;
use crate::store::{Store, StoreError};

use super::snapshot::{decode, encode};
use super::{AdvisoryIndex, FeedError, LoadedFeed};

const TREE: &str = "feeds";
const META: &str = "meta/";
const DATA: &str = "data/";

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
}

fn corrupt(what: String, detail: impl ToString) -> FeedError {
    FeedError::Store(StoreError::Corrupt {
        what,
        detail: detail.to_string(),
    })
}

impl FeedStore {
    pub fn new(store: &Store) -> Result<Self, FeedError> {
        Ok(FeedStore {
            tree: store.tree(TREE)?,
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
        let mut batch = sled::Batch::default();
        batch.insert(format!("{DATA}{name}").as_bytes(), data);
        batch.insert(format!("{META}{name}").as_bytes(), meta);
        self.tree.apply_batch(batch).map_err(StoreError::from)?;
        self.tree.flush().map_err(StoreError::from)?;
        Ok(status)
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
    pub fn has_data(&self) -> Result<bool, FeedError> {
        Ok(self
            .tree
            .scan_prefix(DATA)
            .next()
            .transpose()
            .map_err(StoreError::from)?
            .is_some())
    }

    /// Every source's good data in one index. The revision hashes the source names, fetch
    /// times and data hashes, so it changes exactly when the data in use changes.
    pub fn load_index(&self) -> Result<AdvisoryIndex, FeedError> {
        let mut hasher = Sha256::new();
        let mut advisories = Vec::new();
        for status in self.status()? {
            let (Some(fetched_at), Some(sha)) = (status.fetched_at, &status.data_sha256) else {
                continue;
            };
            let key = format!("{DATA}{}", status.name);
            let Some(bytes) = self.tree.get(&key).map_err(StoreError::from)? else {
                return Err(corrupt(key, "status says fetched but the data is missing"));
            };
            advisories.extend(decode(&bytes).map_err(|e| corrupt(key, e))?);
            hasher.update(status.name.as_bytes());
            hasher.update([0]);
            hasher.update(fetched_at.to_rfc3339().as_bytes());
            hasher.update([0]);
            hasher.update(sha.as_bytes());
            hasher.update([0]);
        }
        let revision = format!("feeds-{}", &hex::encode(hasher.finalize())[..16]);
        Ok(AdvisoryIndex::new(advisories, revision))
    }
}
