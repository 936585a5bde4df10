//! The storage traits every backend implements, and [`Backend`]: which one `depfw` runs on.
//!
//! `depfw serve`, the admin endpoint and the CLI (`depfw agents`, `depfw overrides`,
//! `depfw quarantine`, `depfw log`) reach durable state only through these traits, so the
//! same code runs on the embedded sled store (`--data-dir`, the default: one process owns
//! it) and on PostgreSQL (`[store] url` or `--store`, shared by any number of replicas).
//!
//! Each trait is the repository's existing API, object-safe and small. The state that was
//! per process ([`BreakerRepo`], [`SessionRepo`], [`ThrottleRepo`]) is a trait too: on
//! sled it stays in memory (one process, as before); on PostgreSQL it is in the database,
//! so breaker limits count across replicas and a load balancer needs no stickiness.
//!
//! Feeds (synced advisory data) and the artifact cache stay on each replica's local disk.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::agents::AgentStore;
use super::decisions::{ChainStatus, DecisionLog, DecisionRecord, RecordFilter};
use super::overrides::{OverrideError, OverrideId, OverrideStore, StoredOverride};
use super::quarantine::{
    ApprovalScope, Noted, QuarantineError, QuarantineId, QuarantineItem, QuarantineQueue,
    QuarantineStatus, Sighting,
};
use super::signing::PublicKey;
use super::{Store, StoreError};
use crate::agents::{
    Agent, AgentError, AuthError, BreakerEvent, BreakerLimits, BreakerState, CircuitBreaker,
    PolicyPreset, Token,
};
use crate::package::{PackageName, Version};
use crate::policy::overrides::{OverrideEntry, Overrides};
use crate::policy::Finding;

/// Told of each record this process appends to the decision log, in the log's order, once
/// it is stored: how `depfw serve` streams decisions to a SIEM (`observe::siem`). Called
/// while the log's append lock is held, so it must only hand the record on (never block).
pub type DecisionSubscriber = Arc<dyn Fn(&DecisionRecord) + Send + Sync>;

/// The one [`DecisionSubscriber`] of a log: setting it again replaces it (a store reopened
/// by `depfw serve` subscribes again), so no record is told twice.
#[derive(Clone, Default)]
pub struct SubscriberSlot(Arc<std::sync::RwLock<Option<DecisionSubscriber>>>);

impl SubscriberSlot {
    pub fn set(&self, subscriber: DecisionSubscriber) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(subscriber);
    }

    /// Tells the subscriber, if any, of `record`.
    pub fn notify(&self, record: &DecisionRecord) {
        if let Some(subscriber) = &*self.0.read().unwrap_or_else(|e| e.into_inner()) {
            subscriber(record);
        }
    }
}

/// The tamper-evident decision log ([`super::decisions`]).
pub trait DecisionRepo: Send + Sync {
    /// Appends `record` (assigning `seq`, `prev_hash`, `hash`, `signature`); durable when
    /// this returns: the proxy calls it before an artifact's first byte goes out.
    fn append_durable(&self, record: &mut DecisionRecord) -> Result<u64, StoreError>;
    /// Appends without waiting for the disk (tests and metadata summaries may use it).
    fn append(&self, record: &mut DecisionRecord) -> Result<u64, StoreError>;
    /// Tells `subscriber` of every record this process appends from now on, in order
    /// (replacing an earlier subscriber).
    fn subscribe(&self, subscriber: DecisionSubscriber);
    /// Records with `seq >= from`, oldest first, at most `limit`.
    fn list(&self, from: u64, limit: usize) -> Result<Vec<DecisionRecord>, StoreError>;
    /// Records matching `filter`, newest first, at most `limit`.
    fn query(&self, filter: &RecordFilter, limit: usize)
        -> Result<Vec<DecisionRecord>, StoreError>;
    /// Every record matching `filter`, oldest first.
    fn for_each_record(
        &self,
        filter: &RecordFilter,
        each: &mut dyn FnMut(&DecisionRecord) -> anyhow::Result<()>,
    ) -> anyhow::Result<()>;
    /// Walks the chain from seq 1 and reports the first gap or mismatch; with `key`, every
    /// signature must be that key's.
    fn verify_signed(&self, key: Option<&PublicKey>) -> Result<ChainStatus, StoreError>;
    /// [`DecisionRepo::verify_signed`] without a key.
    fn verify(&self) -> Result<ChainStatus, StoreError> {
        self.verify_signed(None)
    }
    /// The public half of the key records are signed with; `None` for a reader.
    fn public_key(&self) -> Option<PublicKey>;
    /// Checks a checkpoint file's lines against the log: how many match, or the first
    /// problem. Only the sled store writes checkpoints (`log.checkpoint-file`).
    fn verify_checkpoints(
        &self,
        _lines: &str,
        _key: Option<&PublicKey>,
    ) -> anyhow::Result<Result<usize, ChainStatus>> {
        anyhow::bail!(
            "signed checkpoints are kept only with the embedded store (not on PostgreSQL yet)"
        )
    }
}

/// The agents of `depfw agents` and the proxy's authentication.
pub trait AgentRepo: Send + Sync {
    fn add(&self, name: &str, preset: PolicyPreset) -> Result<(Agent, Token), AgentError>;
    fn list(&self) -> Result<Vec<Agent>, AgentError>;
    fn get(&self, name: &str) -> Result<Agent, AgentError>;
    fn rotate(&self, name: &str) -> Result<Token, AgentError>;
    fn revoke(&self, name: &str) -> Result<Agent, AgentError>;
    fn suspend(&self, name: &str, reason: &str) -> Result<Agent, AgentError>;
    fn resume(&self, name: &str) -> Result<Agent, AgentError>;
    fn authenticate(&self, presented: &str) -> Result<Agent, AuthError>;
}

/// Run-time allow and deny entries (`depfw overrides`).
pub trait OverrideRepo: Send + Sync {
    fn add(&self, entry: &OverrideEntry, now: DateTime<Utc>) -> Result<OverrideId, OverrideError>;
    fn get(&self, id: OverrideId) -> Result<StoredOverride, OverrideError>;
    fn remove(
        &self,
        id: OverrideId,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredOverride, OverrideError>;
    fn list(
        &self,
        include_history: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredOverride>, OverrideError>;
    /// The entries in force at `now`.
    fn active_entries(&self, now: DateTime<Utc>) -> Result<Vec<OverrideEntry>, OverrideError>;
    /// Bumped by every change (overrides and quarantine resolutions): a replica compares
    /// it to decide whether its policy's overrides are current.
    fn revision(&self) -> Result<u64, StoreError>;
    /// The config file's entries plus the store's active ones: what the engine applies.
    fn merged_with(
        &self,
        config: &Overrides,
        now: DateTime<Utc>,
    ) -> Result<Overrides, OverrideError> {
        let mut entries = config.entries().to_vec();
        entries.extend(self.active_entries(now)?);
        Ok(Overrides::new(entries))
    }
}

/// The quarantine queue (`depfw quarantine`, the admin page).
pub trait QuarantineRepo: Send + Sync {
    #[allow(clippy::too_many_arguments)]
    fn hold(
        &self,
        name: &PackageName,
        version: &Version,
        requested_by: &str,
        reasons: Vec<Finding>,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<QuarantineId, QuarantineError>;
    /// An agent's request for review, with its justification; `version` `None` asks about
    /// the name. Approves nothing (see `QuarantineQueue::request`).
    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        name: &PackageName,
        version: Option<&Version>,
        requested_by: &str,
        justification: &str,
        reasons: Vec<Finding>,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<QuarantineId, QuarantineError>;
    /// Quarantines clients met without downloading (a held name, a hidden version), as the
    /// proxy's queue writer coalesced them: one transaction per batch; invalid sightings are
    /// left out. Says, per sighting left in, which item it went to and whether it opened it.
    fn note(&self, sightings: Vec<Sighting>) -> Result<Vec<Noted>, QuarantineError>;
    fn get(&self, id: QuarantineId) -> Result<QuarantineItem, QuarantineError>;
    fn list(
        &self,
        status: Option<QuarantineStatus>,
    ) -> Result<Vec<QuarantineItem>, QuarantineError>;
    fn approve(
        &self,
        id: QuarantineId,
        scope: &ApprovalScope,
        reason: &str,
        expires: Option<DateTime<Utc>>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<OverrideId, QuarantineError>;
    fn reject(
        &self,
        id: QuarantineId,
        reason: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<OverrideId, QuarantineError>;
}

/// The agents' circuit-breaker counters ([`crate::agents::breaker`]).
pub trait BreakerRepo: Send + Sync {
    /// Counts `event` for `agent` at `now`; a trip resets the agent's window (a resumed
    /// agent starts afresh) and is returned once.
    fn record(
        &self,
        agent: &str,
        event: BreakerEvent<'_>,
        now: DateTime<Utc>,
    ) -> Result<BreakerState, StoreError>;
    fn limits(&self) -> BreakerLimits;
}

/// The embedded backend's breaker: in memory, per process (as before the traits).
pub struct MemoryBreaker(Mutex<CircuitBreaker>);

impl MemoryBreaker {
    pub fn new(limits: BreakerLimits) -> MemoryBreaker {
        MemoryBreaker(Mutex::new(CircuitBreaker::new(limits)))
    }
}

impl BreakerRepo for MemoryBreaker {
    fn record(
        &self,
        agent: &str,
        event: BreakerEvent<'_>,
        now: DateTime<Utc>,
    ) -> Result<BreakerState, StoreError> {
        let mut breaker = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let state = breaker.record(agent, event, now);
        if state.is_tripped() {
            breaker.reset(agent);
        }
        Ok(state)
    }

    fn limits(&self) -> BreakerLimits {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).limits()
    }
}

/// A signed-in admin browser, as stored (the admin layer owns what it means).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionRecord {
    pub author: String,
    pub csrf: String,
    /// The admin layer's flash message, encoded by it.
    pub flash: Option<String>,
}

/// Admin browser sessions: in memory on sled, in the database on PostgreSQL (so any
/// replica behind a load balancer knows a session another one started).
pub trait SessionRepo: Send + Sync {
    /// Stores a new session under `id`.
    fn create(&self, id: &str, session: &SessionRecord) -> Result<(), StoreError>;
    /// The session, refreshed (its idle time restarts); `None` if absent or idle too long.
    fn touch(&self, id: &str) -> Result<Option<SessionRecord>, StoreError>;
    fn set_flash(&self, id: &str, flash: Option<String>) -> Result<(), StoreError>;
    /// Takes the flash message out of the session.
    fn take_flash(&self, id: &str) -> Result<Option<String>, StoreError>;
    fn remove(&self, id: &str) -> Result<(), StoreError>;
}

/// Wrong admin tokens per client: the count and the end of the client's wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    pub count: u32,
    pub last: DateTime<Utc>,
    pub blocked_until: Option<DateTime<Utc>>,
}

/// The sign-in throttle's counts, keyed by the client (an address, a /64, `unknown`).
pub trait ThrottleRepo: Send + Sync {
    fn get(&self, client: &str) -> Result<Option<FailureCount>, StoreError>;
    /// Applies `update` to the client's count atomically (across replicas on PostgreSQL).
    fn update(
        &self,
        client: &str,
        update: &dyn Fn(Option<FailureCount>) -> FailureCount,
    ) -> Result<FailureCount, StoreError>;
    fn clear(&self, client: &str) -> Result<(), StoreError>;
}

/// Which storage backend: the embedded sled store, or PostgreSQL.
#[derive(Clone)]
pub enum Backend {
    /// sled under the data directory; one process owns it.
    Sled(Store),
    /// A PostgreSQL database shared by every replica.
    Postgres(super::pg::PgStore),
}

/// Every repository of one backend, opened once; cheap to clone.
#[derive(Clone)]
pub struct Repos {
    pub agents: Arc<dyn AgentRepo>,
    pub overrides: Arc<dyn OverrideRepo>,
    pub quarantine: Arc<dyn QuarantineRepo>,
}

impl Backend {
    /// Opens the backend `config` names: PostgreSQL for `store.url` (migrating the schema
    /// first), else the sled store under `data_dir`.
    pub fn open(
        config: &crate::config::StoreConfig,
        data_dir: &std::path::Path,
    ) -> Result<Backend, StoreError> {
        match &config.url {
            None => Ok(Backend::Sled(Store::open(data_dir)?)),
            Some(url) => Ok(Backend::Postgres(super::pg::PgStore::connect(
                url,
                config.pool_size,
                std::time::Duration::from_millis(config.refresh_millis),
            )?)),
        }
    }

    /// The local sled store, if this is the embedded backend.
    pub fn sled(&self) -> Option<&Store> {
        match self {
            Backend::Sled(store) => Some(store),
            Backend::Postgres(_) => None,
        }
    }

    /// The repositories of agents, overrides and quarantine.
    pub fn repos(&self) -> Result<Repos, StoreError> {
        Ok(match self {
            Backend::Sled(store) => Repos {
                agents: Arc::new(AgentStore::new(store)?),
                overrides: Arc::new(OverrideStore::new(store)?),
                quarantine: Arc::new(QuarantineQueue::new(store)?),
            },
            Backend::Postgres(pg) => pg.repos()?,
        })
    }

    /// The decision log for appending, signed with the data directory's key.
    pub fn decisions(
        &self,
        _data_dir: Option<&std::path::Path>,
        log: &crate::config::LogConfig,
    ) -> Result<Arc<dyn DecisionRepo>, StoreError> {
        Ok(match self {
            Backend::Sled(store) => Arc::new(DecisionLog::open(store)?.with_checkpoints(log)),
            Backend::Postgres(pg) => pg.decision_log(_data_dir, log)?,
        })
    }

    /// The decision log for reading and verifying, without the signing key.
    pub fn decisions_read_only(&self) -> Result<Arc<dyn DecisionRepo>, StoreError> {
        Ok(match self {
            Backend::Sled(store) => Arc::new(DecisionLog::open_read_only(store)?),
            Backend::Postgres(pg) => pg.decision_reader()?,
        })
    }

    /// The breaker counters: per process on sled, shared on PostgreSQL.
    pub fn breaker(&self, limits: BreakerLimits) -> Arc<dyn BreakerRepo> {
        match self {
            Backend::Sled(_) => Arc::new(MemoryBreaker::new(limits)),
            Backend::Postgres(pg) => pg.breaker(limits),
        }
    }

    /// Admin sessions and the sign-in throttle: `None` keeps them in memory (sled).
    pub fn admin_state(&self) -> Option<(Arc<dyn SessionRepo>, Arc<dyn ThrottleRepo>)> {
        match self {
            Backend::Sled(_) => None,
            Backend::Postgres(pg) => pg.admin_state(),
        }
    }

    /// Whether the backend takes a write now (for `/readyz`).
    pub(crate) fn probe_write(&self) -> Result<(), StoreError> {
        match self {
            Backend::Sled(store) => store.probe_write(),
            Backend::Postgres(pg) => pg.probe(),
        }
    }

    /// What to call this backend in messages (never with credentials).
    pub fn describe(&self) -> String {
        match self {
            Backend::Sled(store) => match store.data_dir() {
                Some(dir) => format!("sled store in {}", dir.display()),
                None => "in-memory sled store".to_owned(),
            },
            Backend::Postgres(pg) => format!("PostgreSQL at {}", pg.redacted_url()),
        }
    }
}

impl DecisionRepo for DecisionLog {
    fn append_durable(&self, record: &mut DecisionRecord) -> Result<u64, StoreError> {
        DecisionLog::append_durable(self, record)
    }
    fn append(&self, record: &mut DecisionRecord) -> Result<u64, StoreError> {
        DecisionLog::append(self, record)
    }
    fn subscribe(&self, subscriber: DecisionSubscriber) {
        self.subscriber.set(subscriber);
    }
    fn list(&self, from: u64, limit: usize) -> Result<Vec<DecisionRecord>, StoreError> {
        DecisionLog::list(self, from, limit)
    }
    fn query(
        &self,
        filter: &RecordFilter,
        limit: usize,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        DecisionLog::query(self, filter, limit)
    }
    fn for_each_record(
        &self,
        filter: &RecordFilter,
        each: &mut dyn FnMut(&DecisionRecord) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        DecisionLog::for_each(self, filter, each)
    }
    fn verify_signed(&self, key: Option<&PublicKey>) -> Result<ChainStatus, StoreError> {
        DecisionLog::verify_signed(self, key)
    }
    fn verify_checkpoints(
        &self,
        lines: &str,
        key: Option<&PublicKey>,
    ) -> anyhow::Result<Result<usize, ChainStatus>> {
        DecisionLog::verify_checkpoints(self, lines, key)
    }
    fn public_key(&self) -> Option<PublicKey> {
        DecisionLog::public_key(self)
    }
}

impl AgentRepo for AgentStore {
    fn add(&self, name: &str, preset: PolicyPreset) -> Result<(Agent, Token), AgentError> {
        AgentStore::add(self, name, preset)
    }
    fn list(&self) -> Result<Vec<Agent>, AgentError> {
        AgentStore::list(self)
    }
    fn get(&self, name: &str) -> Result<Agent, AgentError> {
        AgentStore::get(self, name)
    }
    fn rotate(&self, name: &str) -> Result<Token, AgentError> {
        AgentStore::rotate(self, name)
    }
    fn revoke(&self, name: &str) -> Result<Agent, AgentError> {
        AgentStore::revoke(self, name)
    }
    fn suspend(&self, name: &str, reason: &str) -> Result<Agent, AgentError> {
        AgentStore::suspend(self, name, reason)
    }
    fn resume(&self, name: &str) -> Result<Agent, AgentError> {
        AgentStore::resume(self, name)
    }
    fn authenticate(&self, presented: &str) -> Result<Agent, AuthError> {
        AgentStore::authenticate(self, presented)
    }
}

impl OverrideRepo for OverrideStore {
    fn add(&self, entry: &OverrideEntry, now: DateTime<Utc>) -> Result<OverrideId, OverrideError> {
        OverrideStore::add(self, entry, now)
    }
    fn get(&self, id: OverrideId) -> Result<StoredOverride, OverrideError> {
        OverrideStore::get(self, id)
    }
    fn remove(
        &self,
        id: OverrideId,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredOverride, OverrideError> {
        OverrideStore::remove(self, id, by, now)
    }
    fn list(
        &self,
        include_history: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredOverride>, OverrideError> {
        OverrideStore::list(self, include_history, now)
    }
    fn active_entries(&self, now: DateTime<Utc>) -> Result<Vec<OverrideEntry>, OverrideError> {
        OverrideStore::active_entries(self, now)
    }
    fn revision(&self) -> Result<u64, StoreError> {
        OverrideStore::revision(self)
    }
}

impl QuarantineRepo for QuarantineQueue {
    fn hold(
        &self,
        name: &PackageName,
        version: &Version,
        requested_by: &str,
        reasons: Vec<Finding>,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<QuarantineId, QuarantineError> {
        QuarantineQueue::hold(self, name, version, requested_by, reasons, request_id, now)
    }
    fn request(
        &self,
        name: &PackageName,
        version: Option<&Version>,
        requested_by: &str,
        justification: &str,
        reasons: Vec<Finding>,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<QuarantineId, QuarantineError> {
        QuarantineQueue::request(
            self,
            name,
            version,
            requested_by,
            justification,
            reasons,
            request_id,
            now,
        )
    }
    fn note(&self, sightings: Vec<Sighting>) -> Result<Vec<Noted>, QuarantineError> {
        QuarantineQueue::note(self, sightings)
    }
    fn get(&self, id: QuarantineId) -> Result<QuarantineItem, QuarantineError> {
        QuarantineQueue::get(self, id)
    }
    fn list(
        &self,
        status: Option<QuarantineStatus>,
    ) -> Result<Vec<QuarantineItem>, QuarantineError> {
        QuarantineQueue::list(self, status)
    }
    fn approve(
        &self,
        id: QuarantineId,
        scope: &ApprovalScope,
        reason: &str,
        expires: Option<DateTime<Utc>>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<OverrideId, QuarantineError> {
        QuarantineQueue::approve(self, id, scope, reason, expires, by, now)
    }
    fn reject(
        &self,
        id: QuarantineId,
        reason: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<OverrideId, QuarantineError> {
        QuarantineQueue::reject(self, id, reason, by, now)
    }
}
