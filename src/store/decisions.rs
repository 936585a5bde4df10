//! Decision records: what `depfw serve` decided, for whom, and why, in a tamper-evident log.
//!
//! Every artifact the proxy serves or refuses gets one record, written and flushed before
//! any byte reaches the client, so the log can answer "what did this agent install"
//! (`depfw log show`, `depfw log export`, the admin page). Metadata requests get one summary
//! record per upstream fetch (not per cache hit), listing the versions hidden and why: one
//! record per hidden version on every request would swamp the log with repeats.
//!
//! Records live in the `decisions` tree under monotonic, gap-free sequence keys
//! (big-endian u64) and form a hash chain: each record carries `prev_hash`, the SHA-256 of
//! the previous record's canonical bytes, and its own `hash`. `depfw log verify` walks the
//! chain from seq 1 and reports the first gap or mismatch. The chain head (last seq and
//! hash) is kept in a second tree, written in the same transaction as the record, so a
//! deleted tail is reported too.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::tx::{self, Durability, TxResult};
use super::{Store, StoreError};
use crate::policy::{Finding, Verdict};

/// `prev_hash` of the first record: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const HEAD_TREE: &str = "decisions-head";
const HEAD_KEY: &[u8] = b"head";

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
    /// The agent's name, from the `/a/<token>/…` URL prefix; `None` for anonymous use.
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
    /// `integrity-mismatch`, `filtered`, `served-yanked-metadata` (PEP 658 metadata of a
    /// refused release, served under `server.refused-versions = "yank"`).
    pub outcome: String,
    /// Hex SHA-256 of the previous record's canonical bytes ([`GENESIS`] for seq 1).
    /// Assigned by [`DecisionLog::append`].
    #[serde(default)]
    pub prev_hash: String,
    /// Hex SHA-256 of this record's canonical bytes (all fields but `hash`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

impl DecisionRecord {
    /// SHA-256 over the record's JSON with `hash` left out. serde_json writes struct fields
    /// in declaration order, so the bytes are stable for a given record.
    pub fn compute_hash(&self) -> Result<String, StoreError> {
        let mut unhashed = self.clone();
        unhashed.hash = String::new();
        let bytes = serde_json::to_vec(&unhashed).map_err(corrupt)?;
        Ok(hex::encode(Sha256::digest(&bytes)))
    }
}

/// Which records a query returns; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordFilter {
    /// Agent name (exact).
    pub agent: Option<String>,
    /// Package name (substring, case-insensitive).
    pub package: Option<String>,
    pub verdict: Option<Verdict>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl RecordFilter {
    pub fn matches(&self, r: &DecisionRecord) -> bool {
        self.agent
            .as_deref()
            .is_none_or(|a| r.client.agent.as_deref() == Some(a))
            && self
                .package
                .as_deref()
                .is_none_or(|p| r.package.to_lowercase().contains(&p.to_lowercase()))
            && self.verdict.is_none_or(|v| r.verdict == v)
            && self.since.is_none_or(|s| r.time >= s)
            && self.until.is_none_or(|u| r.time <= u)
    }
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainStatus {
    /// Every record from 1 to `records` is present and linked; `head` is the last hash.
    Intact { records: u64, head: String },
    /// The first problem, by sequence number.
    Broken { seq: u64, problem: ChainProblem },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainProblem {
    /// No record with this sequence number, though later ones (or the head) exist.
    Missing,
    /// The stored bytes do not decode as a record, or carry another seq.
    Unreadable(String),
    /// The record's content no longer matches its own `hash`.
    Tampered,
    /// `prev_hash` is not the previous record's hash.
    Unlinked,
}

impl std::fmt::Display for ChainStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainStatus::Intact { records, head } => {
                write!(f, "chain intact: {records} records, head {head}")
            }
            ChainStatus::Broken { seq, problem } => {
                write!(f, "chain broken at record {seq}: ")?;
                match problem {
                    ChainProblem::Missing => write!(f, "the record is missing"),
                    ChainProblem::Unreadable(why) => write!(f, "the record is unreadable: {why}"),
                    ChainProblem::Tampered => {
                        write!(f, "the record's content does not match its hash (altered)")
                    }
                    ChainProblem::Unlinked => write!(
                        f,
                        "its prev_hash is not the previous record's hash (a record was replaced)"
                    ),
                }
            }
        }
    }
}

/// The chain's head: last sequence number and its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
}

/// The append-only decision log.
pub struct DecisionLog {
    store: Store,
    tree: sled::Tree,
    head_tree: sled::Tree,
    /// The chain head; the lock serialises appends so sequence numbers are gap-free and
    /// each record links to the one before it.
    head: Mutex<Head>,
}

fn corrupt(detail: impl ToString) -> StoreError {
    StoreError::corrupt("decision record", detail)
}

fn seq_of(key: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| corrupt("key is not 8 bytes"))?;
    Ok(u64::from_be_bytes(bytes))
}

fn decode(bytes: &[u8]) -> Result<DecisionRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(corrupt)
}

impl DecisionLog {
    pub fn open(store: &Store) -> Result<DecisionLog, StoreError> {
        let tree = store.tree("decisions")?;
        let head_tree = store.tree(HEAD_TREE)?;
        let head = match head_tree.get(HEAD_KEY)? {
            Some(v) => serde_json::from_slice(&v).map_err(corrupt)?,
            // A log written before the head existed: continue from its last record.
            None => match tree.last()? {
                Some((k, v)) => Head {
                    seq: seq_of(&k)?,
                    hash: decode(&v)?.hash,
                },
                None => Head {
                    seq: 0,
                    hash: GENESIS.to_owned(),
                },
            },
        };
        Ok(DecisionLog {
            store: store.clone(),
            tree,
            head_tree,
            head: Mutex::new(head),
        })
    }

    /// Appends `record` (setting its `seq`, `prev_hash` and `hash`) without waiting for disk.
    pub fn append(&self, record: &mut DecisionRecord) -> Result<u64, StoreError> {
        let mut head = self.head.lock().unwrap_or_else(|e| e.into_inner());
        let seq = head.seq + 1;
        record.seq = seq;
        record.prev_hash = head.hash.clone();
        record.hash = record.compute_hash()?;
        let value = serde_json::to_vec(&*record).map_err(corrupt)?;
        let next = Head {
            seq,
            hash: record.hash.clone(),
        };
        let head_value = serde_json::to_vec(&next).map_err(corrupt)?;
        let trees = (&self.tree, &self.head_tree);
        tx::transact(
            trees,
            Durability::Buffered,
            |(t, h)| -> TxResult<(), StoreError> {
                t.insert(&seq.to_be_bytes(), value.as_slice())?;
                h.insert(HEAD_KEY, head_value.as_slice())?;
                Ok(())
            },
        )?;
        *head = next;
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
                decode(&v)
            })
            .collect()
    }

    /// Records matching `filter`, newest first, at most `limit`.
    pub fn query(
        &self,
        filter: &RecordFilter,
        limit: usize,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.iter().rev() {
            if out.len() >= limit {
                break;
            }
            let (_, v) = item?;
            let record = decode(&v)?;
            if filter.matches(&record) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Every record matching `filter`, oldest first, handed to `each` (for export).
    pub fn for_each(
        &self,
        filter: &RecordFilter,
        mut each: impl FnMut(&DecisionRecord) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        for item in self.tree.iter() {
            let (_, v) = item.map_err(StoreError::from)?;
            let record = decode(&v)?;
            if filter.matches(&record) {
                each(&record)?;
            }
        }
        Ok(())
    }

    /// Walks the chain from seq 1 to the head and reports the first gap or mismatch.
    pub fn verify(&self) -> Result<ChainStatus, StoreError> {
        let head: Option<Head> = match self.head_tree.get(HEAD_KEY)? {
            Some(v) => Some(serde_json::from_slice(&v).map_err(corrupt)?),
            None => None,
        };
        let mut expected = 1u64;
        let mut prev = GENESIS.to_owned();
        for item in self.tree.iter() {
            let (k, v) = item?;
            let seq = seq_of(&k)?;
            if seq != expected {
                return Ok(broken(expected, ChainProblem::Missing));
            }
            let record = match decode(&v) {
                Ok(r) if r.seq == seq => r,
                Ok(r) => {
                    let why = format!("stored under {seq} but says seq {}", r.seq);
                    return Ok(broken(seq, ChainProblem::Unreadable(why)));
                }
                Err(e) => return Ok(broken(seq, ChainProblem::Unreadable(e.to_string()))),
            };
            if record.compute_hash()? != record.hash {
                return Ok(broken(seq, ChainProblem::Tampered));
            }
            if record.prev_hash != prev {
                return Ok(broken(seq, ChainProblem::Unlinked));
            }
            prev = record.hash;
            expected += 1;
        }
        let records = expected - 1;
        if let Some(head) = head {
            if head.seq > records {
                return Ok(broken(records + 1, ChainProblem::Missing));
            }
            if head.seq == records && head.hash != prev {
                return Ok(broken(records, ChainProblem::Unlinked));
            }
        }
        Ok(ChainStatus::Intact {
            records,
            head: prev,
        })
    }
}

fn broken(seq: u64, problem: ChainProblem) -> ChainStatus {
    ChainStatus::Broken { seq, problem }
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
            prev_hash: String::new(),
            hash: String::new(),
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
        assert_eq!(all[0].prev_hash, GENESIS);
        assert_eq!(all[1].prev_hash, all[0].hash);
        assert_eq!(
            all[2].prev_hash, all[1].hash,
            "the chain continues across a reopen"
        );
        assert!(matches!(
            log.verify().unwrap(),
            ChainStatus::Intact { records: 3, .. }
        ));
    }
}
