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
//!
//! ## Signatures and checkpoints
//!
//! A chain alone is no anchor: whoever can write the store rewrites a record and re-hashes
//! the rest. So every record also carries `signature`, an Ed25519 signature by the data
//! directory's key ([`super::signing`]) over its `hash`, which covers `prev_hash` and hence
//! the whole chain before it. `depfw log verify --public-key FILE` checks each one against
//! a public key kept elsewhere: a rewritten, renumbered or re-signed (another key) chain
//! fails at its first affected record.
//!
//! Why per record rather than per checkpoint: a checkpoint-only signature leaves every
//! record written since the last checkpoint forgeable, and signing is cheap next to what an
//! append already costs. Measured with `cargo bench --bench decisions` (release build, 2
//! loaded cores, three runs; figures in the README's "Provenance" section): one signature
//! 23-37 µs, a buffered append 33-66 µs signed against 16-39 µs unsigned, the durable append
//! that guards every artifact 0.18-0.36 ms against 0.14-0.20 ms. A checkpoint adds a flush
//! and an fsync of the sink every `checkpoint-every-records` records, not per record.
//!
//! A signature cannot show that records are *missing at the end*: a truncated log with a
//! consistent head is a valid, shorter signed log. Hence checkpoints: every
//! `log.checkpoint-every-records` records or `log.checkpoint-every-secs` seconds the head
//! (seq, hash, time) is signed and written outside the store (`log.checkpoint-file`, an
//! append-only JSON-lines file, and/or a line in depfw's own log), after a flush, so a
//! checkpoint never names a record that a crash could still lose. `depfw log verify
//! --checkpoints FILE` then reports a log that ends below a checkpoint, or whose record
//! differs from the checkpointed hash. Someone holding the private key can re-sign a
//! rewritten log, but not the checkpoints already shipped elsewhere.
//!
//! Logs written before records were signed still verify: unsigned records are accepted as a
//! prefix ("unsigned up to seq N"); an unsigned record after a signed one is a break.

use std::io::Write as _;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::signing::{LogKey, PublicKey};
use super::tx::{self, Durability, TxResult};
use super::{Store, StoreError};
use crate::config::LogConfig;
use crate::diag::Code;
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
    /// The agent's name, from its token (`Authorization` header or `/a/<token>/…` prefix);
    /// `None` for anonymous use.
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
    /// Hex SHA-256 of this record's canonical bytes (all fields but `hash` and `signature`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
    /// Base64 Ed25519 signature of [`record_message`]`(hash)` by the log's key; empty in
    /// records written before the log was signed. Assigned by [`DecisionLog::append`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signature: String,
}

/// What a record's signature signs: its hash, under a label no checkpoint message has.
pub fn record_message(hash: &str) -> Vec<u8> {
    format!("depfw-decision-v1\n{hash}").into_bytes()
}

/// A signed statement that the log held `seq` records with head `hash` at `time`: one JSON
/// line in the checkpoint sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    /// RFC 3339, signed as written.
    pub time: String,
    /// The signer's public key (`ed25519:<base64>`), for the reader's convenience only:
    /// verification uses the key the reader trusts, never this one.
    pub key: String,
    pub signature: String,
}

impl Checkpoint {
    /// What a checkpoint's signature signs.
    pub fn message(&self) -> Vec<u8> {
        format!(
            "depfw-checkpoint-v1\n{}\n{}\n{}",
            self.seq, self.hash, self.time
        )
        .into_bytes()
    }
}

impl DecisionRecord {
    /// SHA-256 over the record's JSON with `hash` left out. serde_json writes struct fields
    /// in declaration order, so the bytes are stable for a given record.
    pub fn compute_hash(&self) -> Result<String, StoreError> {
        let mut unhashed = self.clone();
        unhashed.hash = String::new();
        // Empty fields are not serialized, so records written before signatures hash as
        // they did.
        unhashed.signature = String::new();
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
    /// Only what monitor mode served that enforce mode would have refused (records with
    /// a `would-refuse` finding).
    pub would_refuse: bool,
}

impl RecordFilter {
    pub fn matches(&self, r: &DecisionRecord) -> bool {
        if self.would_refuse && !r.findings.iter().any(|f| f.code == Code::WouldRefuse) {
            return false;
        }
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
    /// Records 1 to `unsigned` carry no signature (written before the log was signed);
    /// every later one is signed (by the key given to [`DecisionLog::verify_signed`], if
    /// one was).
    Intact {
        records: u64,
        head: String,
        unsigned: u64,
    },
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
    /// No signature, though an earlier record is signed (signatures were stripped).
    Unsigned,
    /// The signature is not the given key's (forged, or re-signed with another key).
    BadSignature,
    /// The log ends before this record, which a checkpoint names (a truncated log).
    Truncated { checkpoint_line: usize },
    /// The record's hash is not the one a checkpoint names (rewritten after the checkpoint).
    CheckpointMismatch { checkpoint_line: usize },
    /// A checkpoint naming this record is not signed by the given key, or unreadable.
    BadCheckpoint { checkpoint_line: usize, why: String },
    /// The store's bytes holding this record fail the store's own checksums or the
    /// record's hash (a bit flipped on disk): [`damaged_records`].
    Damaged,
}

impl std::fmt::Display for ChainStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainStatus::Intact {
                records,
                head,
                unsigned,
            } => {
                write!(f, "chain intact: {records} records, head {head}")?;
                if *unsigned > 0 {
                    write!(
                        f,
                        "; unsigned up to seq {unsigned} (written before signing)"
                    )?;
                }
                Ok(())
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
                    ChainProblem::Unsigned => write!(
                        f,
                        "the record is not signed, though earlier records are (signatures removed)"
                    ),
                    ChainProblem::BadSignature => write!(
                        f,
                        "the record's signature is not by the given public key \
                         (forged, or re-signed with another key)"
                    ),
                    ChainProblem::Truncated { checkpoint_line } => write!(
                        f,
                        "the record is missing, but checkpoint line {checkpoint_line} names it \
                         or a later one (the log was truncated)"
                    ),
                    ChainProblem::CheckpointMismatch { checkpoint_line } => write!(
                        f,
                        "the record's hash is not the one checkpoint line {checkpoint_line} names \
                         (rewritten after the checkpoint)"
                    ),
                    ChainProblem::BadCheckpoint {
                        checkpoint_line,
                        why,
                    } => write!(f, "checkpoint line {checkpoint_line} {why}"),
                    ChainProblem::Damaged => write!(
                        f,
                        "the record's bytes in the store are damaged (they fail the store's \
                         checksums or the record's hash)"
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

/// Writes signed checkpoints of the head to the configured sinks; shared by the sled log
/// and the PostgreSQL writer (`store::pg::decisions`).
pub(crate) struct Checkpointer {
    config: LogConfig,
    key: Arc<LogKey>,
    /// The sled store to flush before a checkpoint names its records; `None` where the
    /// head comes from a committed database transaction (already durable).
    store: Option<Store>,
    /// The last checkpointed seq and when it was written.
    last: Mutex<(u64, Instant)>,
}

impl Checkpointer {
    /// A checkpointer as `config` says (`[log]`), or `None` when no sink is configured;
    /// `seq`: the head now (the next checkpoint is due from there).
    pub(crate) fn new(
        config: &LogConfig,
        key: Arc<LogKey>,
        store: Option<Store>,
        seq: u64,
    ) -> Option<Arc<Checkpointer>> {
        if config.checkpoint_file.is_none() && !config.checkpoint_log {
            return None;
        }
        Some(Arc::new(Checkpointer {
            config: config.clone(),
            key,
            store,
            last: Mutex::new((seq, Instant::now())),
        }))
    }

    /// How often a quiet log is checkpointed (`log.checkpoint-every-secs`).
    pub(crate) fn every(&self) -> Duration {
        Duration::from_secs(self.config.checkpoint_every_secs)
    }

    /// [`Checkpointer::maybe`] for a head known by its seq and hash.
    pub(crate) fn maybe_at(&self, seq: u64, hash: &str, force: bool) {
        self.maybe(
            &Head {
                seq,
                hash: hash.to_owned(),
            },
            force,
        );
    }

    /// Writes a checkpoint of `head` if `every_records` records or `every_secs` seconds have
    /// passed since the last one. A sink that fails is logged and retried at the next
    /// append: the record itself is already stored, and refusing the request would not
    /// bring the sink back.
    fn maybe(&self, head: &Head, force: bool) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let due = head.seq > last.0
            && (force
                || head.seq - last.0 >= self.config.checkpoint_every_records
                || last.1.elapsed() >= Duration::from_secs(self.config.checkpoint_every_secs));
        if !due {
            return;
        }
        match self.write(head) {
            Ok(()) => *last = (head.seq, Instant::now()),
            Err(e) => tracing::warn!(
                "decision log checkpoint at seq {} not written: {e:#}",
                head.seq
            ),
        }
    }

    fn write(&self, head: &Head) -> anyhow::Result<()> {
        // A checkpoint must never name a record a crash could still take back.
        if let Some(store) = &self.store {
            store.flush()?;
        }
        let mut checkpoint = Checkpoint {
            seq: head.seq,
            hash: head.hash.clone(),
            time: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            key: self.key.public().encode(),
            signature: String::new(),
        };
        checkpoint.signature = self.key.sign(&checkpoint.message());
        let line = serde_json::to_string(&checkpoint)?;
        if let Some(path) = &self.config.checkpoint_file {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)?;
            file.write_all(format!("{line}\n").as_bytes())?;
            file.sync_data()?;
        }
        if self.config.checkpoint_log {
            tracing::info!(target: "depfw::checkpoint", "{line}");
        }
        Ok(())
    }
}

/// The append-only decision log.
pub struct DecisionLog {
    store: Store,
    tree: sled::Tree,
    head_tree: sled::Tree,
    /// The chain head; the lock serialises appends so sequence numbers are gap-free and
    /// each record links to the one before it. Shared with the checkpoint timer.
    head: Arc<Mutex<Head>>,
    /// Signs each record; `None` for a reader ([`DecisionLog::open_read_only`]).
    key: Option<Arc<LogKey>>,
    checkpoints: Option<Arc<Checkpointer>>,
    /// The highest seq known to be on disk. Group commit: a durable append flushes only
    /// when no flush that began after its record was stored has finished yet, so
    /// concurrent appends share one fsync instead of queueing one each.
    durable: Mutex<u64>,
    /// Told of each append under the head lock, so in seq order ([`DecisionRepo::subscribe`]).
    pub(super) subscriber: super::repo::SubscriberSlot,
}

impl DecisionLog {
    /// Opens the log for appending: loads the data directory's signing key, making it on
    /// the first start (an in-memory store gets a key for the process's lifetime). Fails
    /// when the key file is readable by group or others.
    pub fn open(store: &Store) -> Result<DecisionLog, StoreError> {
        let key = match store.data_dir() {
            Some(dir) => LogKey::load_or_create(dir)?,
            None => LogKey::ephemeral()?,
        };
        let mut log = DecisionLog::open_read_only(store)?;
        log.key = Some(Arc::new(key));
        Ok(log)
    }

    /// Opens the log for reading and verifying, without touching the signing key; records
    /// appended through it are unsigned.
    pub fn open_read_only(store: &Store) -> Result<DecisionLog, StoreError> {
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
            head: Arc::new(Mutex::new(head)),
            key: None,
            checkpoints: None,
            durable: Mutex::new(0),
            subscriber: Default::default(),
        })
    }

    /// Writes signed checkpoints as `config` says (`[log]`), from now on: after appends,
    /// and from a timer thread so a quiet log's last records are checkpointed too.
    pub fn with_checkpoints(mut self, config: &LogConfig) -> DecisionLog {
        let Some(key) = self.key.clone() else {
            return self;
        };
        let seq = self.head.lock().unwrap_or_else(|e| e.into_inner()).seq;
        let Some(checkpointer) = Checkpointer::new(config, key, Some(self.store.clone()), seq)
        else {
            return self;
        };
        spawn_timer(Arc::downgrade(&self.head), Arc::downgrade(&checkpointer));
        self.checkpoints = Some(checkpointer);
        self
    }

    /// The public half of the signing key; `None` for a reader.
    pub fn public_key(&self) -> Option<PublicKey> {
        self.key.as_ref().map(|k| k.public())
    }

    /// Appends `record` (setting its `seq`, `prev_hash`, `hash` and `signature`) without
    /// waiting for disk.
    pub fn append(&self, record: &mut DecisionRecord) -> Result<u64, StoreError> {
        let mut head = self.head.lock().unwrap_or_else(|e| e.into_inner());
        let seq = head.seq + 1;
        record.seq = seq;
        record.prev_hash = head.hash.clone();
        record.hash = record.compute_hash()?;
        record.signature = match &self.key {
            Some(key) => key.sign(&record_message(&record.hash)),
            None => String::new(),
        };
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
        if let Some(c) = &self.checkpoints {
            c.maybe(&head, false);
        }
        self.subscriber.notify(record);
        Ok(seq)
    }

    /// Appends and flushes: use before releasing an artifact's bytes.
    pub fn append_durable(&self, record: &mut DecisionRecord) -> Result<u64, StoreError> {
        let seq = self.append(record)?;
        // One flusher at a time; whoever waited here while another flushed finds its
        // record covered (stored before that flush began) and returns without an fsync.
        let mut durable = self.durable.lock().unwrap_or_else(|e| e.into_inner());
        if *durable >= seq {
            return Ok(seq);
        }
        // Everything stored up to this head is in sled's log before the flush starts.
        let covered = self.head.lock().unwrap_or_else(|e| e.into_inner()).seq;
        self.store.flush()?;
        *durable = (*durable).max(covered);
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

    /// Walks the chain from seq 1 to the head and reports the first gap or mismatch;
    /// signatures must be present after the first signed record but are not checked.
    pub fn verify(&self) -> Result<ChainStatus, StoreError> {
        self.verify_signed(None)
    }

    /// [`DecisionLog::verify`], and with `key`, every signature must be that key's.
    pub fn verify_signed(&self, key: Option<&PublicKey>) -> Result<ChainStatus, StoreError> {
        let head: Option<Head> = match self.head_tree.get(HEAD_KEY)? {
            Some(v) => Some(serde_json::from_slice(&v).map_err(corrupt)?),
            None => None,
        };
        let mut walk = ChainWalk::new(key);
        for item in self.tree.iter() {
            let (k, v) = item?;
            let record = decode(&v).map_err(|e| e.to_string());
            if let Some(broken) = walk.step(seq_of(&k)?, record)? {
                return Ok(broken);
            }
        }
        Ok(walk.finish(head.map(|h| (h.seq, h.hash))))
    }

    /// Checks the checkpoints in `lines` against the log: each must be signed by `key`
    /// (when given) and name a record the log still holds, with the same hash. `lines` is a
    /// checkpoint file (every line a checkpoint) or depfw's own log (only its
    /// `depfw::checkpoint` lines count). Returns the first problem, or how many checkpoints
    /// matched; a line that should be a checkpoint and is not is an error (bad input).
    pub(crate) fn verify_checkpoints(
        &self,
        lines: &str,
        key: Option<&PublicKey>,
    ) -> anyhow::Result<Result<usize, ChainStatus>> {
        let records = self.tree.last().map_err(StoreError::from)?;
        let records = records.map(|(k, _)| seq_of(&k)).transpose()?.unwrap_or(0);
        verify_checkpoint_lines(lines, key, records, |seq| {
            match self.tree.get(seq.to_be_bytes()).map_err(StoreError::from)? {
                Some(v) => Ok(Some(decode(&v)?.hash)),
                None => Ok(None),
            }
        })
    }
}

/// Checks a checkpoint file's `lines` (or depfw's own log lines carrying checkpoints)
/// against a chain whose last stored record is `records` and whose hashes `hash_of` reads:
/// how many checkpoints match, or the first problem (a checkpoint beyond the last record
/// is a truncated log). Every backend's `verify --checkpoints`.
pub(crate) fn verify_checkpoint_lines(
    lines: &str,
    key: Option<&PublicKey>,
    records: u64,
    mut hash_of: impl FnMut(u64) -> Result<Option<String>, StoreError>,
) -> anyhow::Result<Result<usize, ChainStatus>> {
    let mut matched = 0;
    for (i, text) in lines.lines().enumerate() {
        let line = i + 1;
        let json = match text.find('{') {
            Some(0) => text,
            // A line of depfw's own log carries the checkpoint after its prefix.
            Some(start) if text.contains("depfw::checkpoint") => &text[start..],
            _ => continue,
        };
        let checkpoint: Checkpoint = serde_json::from_str(json)
            .map_err(|e| anyhow::anyhow!("checkpoint line {line} is not a checkpoint: {e}"))?;
        let seq = checkpoint.seq;
        if key.is_some_and(|k| !k.verifies(&checkpoint.message(), &checkpoint.signature)) {
            let why = "is not signed by the given public key".to_owned();
            return Ok(Err(broken(seq, bad_checkpoint(line, why))));
        }
        if seq > records {
            let problem = ChainProblem::Truncated {
                checkpoint_line: line,
            };
            return Ok(Err(broken(records + 1, problem)));
        }
        let Some(hash) = hash_of(seq)? else {
            return Ok(Err(broken(seq, ChainProblem::Missing)));
        };
        if hash != checkpoint.hash {
            let problem = ChainProblem::CheckpointMismatch {
                checkpoint_line: line,
            };
            return Ok(Err(broken(seq, problem)));
        }
        matched += 1;
    }
    Ok(Ok(matched))
}

impl Drop for DecisionLog {
    /// A clean shutdown checkpoints the last records rather than leaving them to the timer.
    fn drop(&mut self) {
        if let Some(c) = &self.checkpoints {
            let head = self.head.lock().unwrap_or_else(|e| e.into_inner());
            c.maybe(&head, true);
        }
    }
}

/// Checkpoints a quiet log every `checkpoint-every-secs`; ends once the log is dropped.
fn spawn_timer(head: Weak<Mutex<Head>>, checkpointer: Weak<Checkpointer>) {
    let Some(every) = checkpointer
        .upgrade()
        .map(|c| Duration::from_secs(c.config.checkpoint_every_secs))
    else {
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("depfw-checkpoints".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            let (Some(head), Some(c)) = (head.upgrade(), checkpointer.upgrade()) else {
                return;
            };
            let head = head.lock().unwrap_or_else(|e| e.into_inner());
            c.maybe(&head, false);
        });
    if let Err(e) = spawned {
        tracing::warn!("no checkpoint timer ({e}): checkpoints follow appends only");
    }
}

/// Checks a chain one record at a time, in sequence order: the one walk `depfw log verify`
/// does on every backend.
pub(crate) struct ChainWalk<'k> {
    key: Option<&'k PublicKey>,
    expected: u64,
    prev: String,
    unsigned: u64,
}

impl<'k> ChainWalk<'k> {
    /// A walk from seq 1; with `key`, every signature must be that key's.
    pub(crate) fn new(key: Option<&'k PublicKey>) -> Self {
        ChainWalk {
            key,
            expected: 1,
            prev: GENESIS.to_owned(),
            unsigned: 0,
        }
    }

    /// The record stored under `seq` (or why it does not decode): `Some` at the first
    /// problem.
    pub(crate) fn step(
        &mut self,
        seq: u64,
        record: Result<DecisionRecord, String>,
    ) -> Result<Option<ChainStatus>, StoreError> {
        if seq != self.expected {
            return Ok(Some(broken(self.expected, ChainProblem::Missing)));
        }
        let record = match record {
            Ok(r) if r.seq == seq => r,
            Ok(r) => {
                let why = format!("stored under {seq} but says seq {}", r.seq);
                return Ok(Some(broken(seq, ChainProblem::Unreadable(why))));
            }
            Err(why) => return Ok(Some(broken(seq, ChainProblem::Unreadable(why)))),
        };
        if record.compute_hash()? != record.hash {
            return Ok(Some(broken(seq, ChainProblem::Tampered)));
        }
        if record.prev_hash != self.prev {
            return Ok(Some(broken(seq, ChainProblem::Unlinked)));
        }
        if record.signature.is_empty() {
            if self.unsigned + 1 != seq {
                return Ok(Some(broken(seq, ChainProblem::Unsigned)));
            }
            self.unsigned = seq;
        } else if self
            .key
            .is_some_and(|k| !k.verifies(&record_message(&record.hash), &record.signature))
        {
            return Ok(Some(broken(seq, ChainProblem::BadSignature)));
        }
        self.prev = record.hash;
        self.expected += 1;
        Ok(None)
    }

    /// The verdict once every record was stepped through; `head` is the stored chain head
    /// (seq, hash), which also catches a deleted tail.
    pub(crate) fn finish(self, head: Option<(u64, String)>) -> ChainStatus {
        let records = self.expected - 1;
        if let Some((seq, hash)) = head {
            if seq > records {
                return broken(records + 1, ChainProblem::Missing);
            }
            if seq == records && hash != self.prev {
                return broken(records, ChainProblem::Unlinked);
            }
        }
        ChainStatus::Intact {
            records,
            head: self.prev,
            unsigned: self.unsigned,
        }
    }
}

fn bad_checkpoint(checkpoint_line: usize, why: String) -> ChainProblem {
    ChainProblem::BadCheckpoint {
        checkpoint_line,
        why,
    }
}

/// Whether `error` is sled finding bytes that fail its checksums (a flipped bit on disk),
/// which it reports as a file offset rather than a record.
pub(crate) fn is_damage(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Sled(sled::Error::Corruption { .. })
            | StoreError::Open {
                source: sled::Error::Corruption { .. },
                ..
            }
    )
}

/// The records whose stored bytes are damaged, found by reading the store's files directly:
/// every copy of a record in the files (each starts `{"seq":N,`) must parse and match its
/// own hash. Sorted, without repeats.
///
/// sled reads a page whose checksum fails either as an error naming a file offset, or, in
/// the log's tail, as a torn write it silently recovers before, losing every later record.
/// Either way this names the record. The files also hold stale copies sled no longer reads,
/// which its segment reuse may have half overwritten; so a damaged copy says something only
/// about a record sled cannot read or no longer has (the caller's job).
pub(crate) fn damaged_records(data_dir: &std::path::Path) -> std::io::Result<Vec<u64>> {
    const START: &[u8] = b"{\"seq\":";
    let mut damaged = std::collections::BTreeSet::new();
    let mut dirs = vec![data_dir.join("store")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let bytes = std::fs::read(&path)?;
            let mut from = 0;
            while let Some(at) = find(&bytes[from..], START) {
                let pos = from + at;
                from = pos + START.len();
                let digits: String = bytes[from..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .map(|&b| char::from(b))
                    .collect();
                let Ok(seq) = digits.parse::<u64>() else {
                    continue;
                };
                let mut stream = serde_json::Deserializer::from_slice(&bytes[pos..])
                    .into_iter::<serde_json::Value>();
                let intact = match stream.next() {
                    // The head (`{"seq":N,"hash":"…"}`) starts the same way.
                    Some(Ok(serde_json::Value::Object(o)))
                        if o.len() == 2 && o.contains_key("hash") =>
                    {
                        true
                    }
                    Some(Ok(v)) => serde_json::from_value::<DecisionRecord>(v)
                        .is_ok_and(|r| r.seq == seq && r.compute_hash().is_ok_and(|h| h == r.hash)),
                    _ => false,
                };
                if !intact {
                    damaged.insert(seq);
                }
            }
        }
    }
    Ok(damaged.into_iter().collect())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
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
            signature: String::new(),
        }
    }

    #[test]
    fn concurrent_durable_appends_share_flushes_and_keep_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let log = Arc::new(DecisionLog::open(&store).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    (0..25)
                        .map(|i| {
                            log.append_durable(&mut record(&format!("p{t}-{i}")))
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seqs: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=200).collect::<Vec<_>>(), "no gaps, no repeats");
        assert_eq!(
            *log.durable.lock().unwrap(),
            200,
            "the last flush covers all"
        );
        assert!(matches!(
            log.verify().unwrap(),
            ChainStatus::Intact { records: 200, .. }
        ));
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
