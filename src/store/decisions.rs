//! Decision records: what `depfw serve` decided, for whom, and why.
//!
//! Every artifact the proxy serves or refuses gets one record, written and flushed before
//! any byte reaches the client, so the log can answer "what did this agent install". Metadata
//! requests get one summary record per upstream fetch (not per cache hit), listing the
//! versions hidden and why: one record per hidden version on every request would swamp the
//! log with repeats. Records live in the `decisions` tree under monotonic, gap-free
//! sequence keys (big-endian u64) so a later change can hash-chain them.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::policy::{Finding, Verdict};

/// What kind of request a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordKind {
    /// A package's metadata (packument, simple page, index file).
    Metadata,
    /// One artifact download (tarball, wheel, crate).
    Artifact,
}

/// Who asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    /// npm's `npm-command` header (`install`, `ci`, …).
    pub command: Option<String>,
    /// The agent identity, from a `/a/<token>/…` URL prefix. TODO: not parsed yet.
    pub agent: Option<String>,
}

/// A version hidden from a metadata response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HiddenVersion {
    pub version: String,
    pub verdict: Verdict,
    /// `Decision::summary()`.
    pub reason: String,
}

/// One decision record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Assigned by [`DecisionLog::append`]; 0 before.
    pub seq: u64,
    pub time: DateTime<Utc>,
    pub request_id: String,
    pub client: ClientInfo,
    pub kind: RecordKind,
    /// OSV ecosystem name (`npm`, `PyPI`, `crates.io`).
    pub ecosystem: String,
    pub package: String,
    /// `None` for a metadata record or a name-level refusal.
    pub version: Option<String>,
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    /// Metadata records: the versions hidden from the client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<HiddenVersion>,
    /// Hex digests of the served artifact's bytes.
    pub sha256: Option<String>,
    pub sha512: Option<String>,
    pub upstream_url: Option<String>,
    /// What happened beyond the verdict: `served`, `served-from-cache`, `refused`,
    /// `integrity-mismatch`, `filtered`.
    pub outcome: String,
}

/// The append-only decision log.
pub struct DecisionLog {
    store: Store,
    tree: sled::Tree,
    /// The last assigned sequence number; the lock makes sequence numbers gap-free.
    last: Mutex<u64>,
}

fn corrupt(detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what: "decision record".to_owned(),
        detail: detail.to_string(),
    }
}

fn seq_of(key: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| corrupt("key is not 8 bytes"))?;
    Ok(u64::from_be_bytes(bytes))
}

impl DecisionLog {
    pub fn open(store: &Store) -> Result<DecisionLog, StoreError> {
        let tree = store.tree("decisions")?;
        let last = match tree.last()? {
            Some((k, _)) => seq_of(&k)?,
            None => 0,
        };
        Ok(DecisionLog {
            store: store.clone(),
            tree,
            last: Mutex::new(last),
        })
    }

    /// Appends `record` (setting its `seq`) without waiting for disk.
    pub fn append(&self, record: &mut DecisionRecord) -> Result<u64, StoreError> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let seq = *last + 1;
        record.seq = seq;
        let value = serde_json::to_vec(&*record).map_err(corrupt)?;
        self.tree.insert(seq.to_be_bytes(), value)?;
        *last = seq;
        Ok(seq)
    }

    /// Appends and flushes: use before releasing an artifact's bytes.
    pub fn append_durable(&self, record: &mut DecisionRecord) -> Result<u64, StoreError> {
        let seq = self.append(record)?;
        self.store.flush()?;
        Ok(seq)
    }

    /// Records with `seq >= from`, oldest first, at most `limit`.
    pub fn list(&self, from: u64, limit: usize) -> Result<Vec<DecisionRecord>, StoreError> {
        self.tree
            .range(from.to_be_bytes()..)
            .take(limit)
            .map(|item| {
                let (_, v) = item?;
                serde_json::from_slice(&v).map_err(corrupt)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pkg: &str) -> DecisionRecord {
        DecisionRecord {
            seq: 0,
            time: Utc::now(),
            request_id: "r1".into(),
            client: ClientInfo::default(),
            kind: RecordKind::Artifact,
            ecosystem: "npm".into(),
            package: pkg.into(),
            version: Some("1.0.0".into()),
            verdict: Verdict::Deny,
            findings: vec![],
            hidden: vec![],
            sha256: None,
            sha512: None,
            upstream_url: None,
            outcome: "refused".into(),
        }
    }

    #[test]
    fn sequence_is_monotonic_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let log = DecisionLog::open(&store).unwrap();
            assert_eq!(log.append(&mut record("a")).unwrap(), 1);
            assert_eq!(log.append_durable(&mut record("b")).unwrap(), 2);
        }
        let store = Store::open(dir.path()).unwrap();
        let log = DecisionLog::open(&store).unwrap();
        assert_eq!(log.append(&mut record("c")).unwrap(), 3);
        let all = log.list(0, 10).unwrap();
        let names: Vec<_> = all.iter().map(|r| (r.seq, r.package.as_str())).collect();
        assert_eq!(names, vec![(1, "a"), (2, "b"), (3, "c")]);
        assert_eq!(log.list(3, 10).unwrap().len(), 1);
    }
}
