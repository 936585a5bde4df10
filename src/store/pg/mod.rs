//! The PostgreSQL backend: `[store] url = "postgres://…"`, `--store URL` or `DEPFW_STORE`.
//!
//! It exists so that more than one `depfw serve` (replicas behind a load balancer) share one
//! truth: one agent list, one set of overrides and quarantine decisions, one decision-log
//! hash chain, breaker limits counted across replicas, and admin sessions any replica knows.
//! The CLI (`depfw agents`, `depfw overrides`, `depfw quarantine`, `depfw log`) works on the
//! same database while the servers run.
//!
//! How it runs:
//! - the driver is tokio-postgres behind a deadpool connection pool (`store.pool-size`),
//!   on a small runtime of its own, so the synchronous repository traits
//!   ([`super::repo`]) can wait on it from any thread;
//! - the schema is versioned SQL embedded in the binary (`migrations/`), applied at start
//!   inside one transaction that holds an advisory lock, so replicas starting together
//!   migrate once;
//! - decision appends go through one writer task per process that takes every record
//!   queued meanwhile into one transaction (group commit), serialised across replicas by
//!   the head row's lock ([`decisions`]);
//! - every change a replica must pick up bumps a counter in `depfw_revisions`; each
//!   replica polls it every `store.refresh-millis` and then reloads only what changed (the
//!   override list, or its cache of agent tokens): O(overrides), never the advisories.

mod decisions;
mod repos;
mod shared;
#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

use super::repo::{BreakerRepo, DecisionRepo, Repos, SessionRepo, ThrottleRepo};
use super::StoreError;
use crate::agents::BreakerLimits;
use crate::config::DatabaseUrl;

/// The schema, in order; a replica applies the ones the database has not seen.
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("migrations/0001_init.sql"))];

/// Advisory lock keys (one namespace per purpose).
const MIGRATION_LOCK: i64 = 0x6466_7701;
/// Overrides and quarantine resolutions change together: one lock for both.
const OVERRIDES_LOCK: i64 = 0x6466_7702;
const AGENTS_LOCK: i64 = 0x6466_7703;

/// A pool of connections to one PostgreSQL database; cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    runtime: Runtime,
    url: DatabaseUrl,
    /// Tokens this replica has looked up, by lookup id; emptied when `agents` changes.
    auth: Mutex<HashMap<String, Option<crate::store::agents::AgentRecord>>>,
    /// Called (off the runtime's workers) when another replica changed the overrides.
    on_overrides: Mutex<Vec<Arc<dyn Fn() + Send + Sync>>>,
    /// The revisions this replica last acted on.
    seen: Mutex<Seen>,
    /// The append queue of the decision writer, once a writer is open.
    writer: Mutex<Option<decisions::Writer>>,
    /// Told of each record the writer commits, in order (`DecisionRepo::subscribe`).
    subscriber: crate::store::repo::SubscriberSlot,
    /// Packages each agent was counted for recently, so a repeat within a minute costs
    /// no write ([`shared`]).
    breaker_seen: Mutex<HashMap<(String, String), std::time::Instant>>,
}

#[derive(Default)]
struct Seen {
    overrides: i64,
    agents: i64,
}

/// The backend's own runtime; stopped without waiting when the last handle goes.
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A driver or pool error, as text: neither carries the URL or its password.
fn db(error: impl std::fmt::Display) -> StoreError {
    StoreError::Database(error.to_string())
}

impl PgStore {
    /// Connects to `url`, applies the migrations the database lacks, and starts polling
    /// for changes made by other replicas.
    pub fn connect(
        url: &DatabaseUrl,
        pool_size: u32,
        refresh: Duration,
    ) -> Result<PgStore, StoreError> {
        let config: tokio_postgres::Config = url
            .expose()
            .parse()
            .map_err(|e| db(format!("{}: {e}", url.redacted())))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("depfw-postgres")
            .enable_all()
            .build()
            .map_err(|e| db(format!("cannot start the database runtime: {e}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(usize::try_from(pool_size).unwrap_or(16).max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(db)?;
        let store = PgStore {
            inner: Arc::new(Inner {
                pool,
                runtime: Runtime(Some(runtime)),
                url: url.clone(),
                auth: Mutex::default(),
                on_overrides: Mutex::default(),
                seen: Mutex::default(),
                writer: Mutex::default(),
                subscriber: Default::default(),
                breaker_seen: Mutex::default(),
            }),
        };
        let pool = store.inner.pool.clone();
        store
            .block(async move { migrate(&pool).await })
            .map_err(|e| db(format!("PostgreSQL at {}: {e}", url.redacted())))?;
        let revisions = store.revisions()?;
        *store.inner.seen.lock().unwrap_or_else(|e| e.into_inner()) = revisions;
        store.spawn_poller(refresh);
        Ok(store)
    }

    /// The URL without its password.
    pub fn redacted_url(&self) -> String {
        self.inner.url.redacted()
    }

    /// Runs `work` on the backend's runtime and waits for it: callable from any thread,
    /// a runtime worker included (it blocks that worker, as a sled fsync does).
    fn block<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let Some(runtime) = &self.inner.runtime.0 else {
            return Err(db("the database runtime has stopped"));
        };
        runtime.spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv()
            .map_err(|_| db("the database task ended without an answer"))?
    }

    fn pool(&self) -> Pool {
        self.inner.pool.clone()
    }

    /// The JSON `record` column of every row `sql` selects with `params` (outside any
    /// transaction), parsed as `what`: the one read every repository's `get` and `list` does.
    fn records<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        what: &'static str,
        sql: &'static str,
        params: Vec<Box<dyn ToSql + Sync + Send>>,
    ) -> Result<Vec<T>, StoreError> {
        let pool = self.pool();
        self.block(async move {
            let client = pool.get().await.map_err(db)?;
            let params: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let rows = client.query(sql, &params).await.map_err(db)?;
            rows.iter()
                .map(|row| parse(what, row.get::<_, &str>(0)))
                .collect()
        })
    }

    /// [`PgStore::records`] for a query by a unique key: the one record, if any.
    fn record<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        what: &'static str,
        sql: &'static str,
        key: impl ToSql + Sync + Send + 'static,
    ) -> Result<Option<T>, StoreError> {
        Ok(self
            .records(what, sql, vec![Box::new(key)])?
            .into_iter()
            .next())
    }

    pub(crate) fn repos(&self) -> Result<Repos, StoreError> {
        Ok(Repos {
            agents: Arc::new(self.clone()),
            overrides: Arc::new(self.clone()),
            quarantine: Arc::new(self.clone()),
        })
    }

    pub(crate) fn decision_log(
        &self,
        data_dir: Option<&std::path::Path>,
        log: &crate::config::LogConfig,
    ) -> Result<Arc<dyn DecisionRepo>, StoreError> {
        Ok(Arc::new(decisions::PgDecisions::writer(
            self, data_dir, log,
        )?))
    }

    pub(crate) fn decision_reader(&self) -> Result<Arc<dyn DecisionRepo>, StoreError> {
        Ok(Arc::new(decisions::PgDecisions::reader(self)))
    }

    pub(crate) fn breaker(&self, limits: BreakerLimits) -> Arc<dyn BreakerRepo> {
        Arc::new(shared::PgBreaker {
            store: self.clone(),
            limits,
        })
    }

    pub(crate) fn admin_state(&self) -> Option<(Arc<dyn SessionRepo>, Arc<dyn ThrottleRepo>)> {
        Some((Arc::new(self.clone()), Arc::new(self.clone())))
    }

    /// Whether the database takes a write now (for `/readyz`).
    pub(crate) fn probe(&self) -> Result<(), StoreError> {
        let pool = self.pool();
        self.block(async move {
            let client = pool.get().await.map_err(db)?;
            client
                .execute(
                    "UPDATE depfw_revisions SET value = value WHERE name = 'agents'",
                    &[],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    /// Calls `changed` whenever another replica (or the CLI) changed the overrides or a
    /// quarantine decision; within `store.refresh-millis`. One listener per process: a later
    /// call replaces it (a new serving generation after a store reopen), so the old one and
    /// the server state it holds are released.
    pub fn on_overrides_changed(&self, changed: impl Fn() + Send + Sync + 'static) {
        let mut listeners = self
            .inner
            .on_overrides
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        listeners.clear();
        listeners.push(Arc::new(changed));
    }

    /// Polls the revision counters every `every` (`store.refresh-millis`).
    fn spawn_poller(&self, every: Duration) {
        let weak = Arc::downgrade(&self.inner);
        if let Some(runtime) = &self.inner.runtime.0 {
            runtime.spawn(poll(weak, every));
        }
    }

    /// Asks the database for changes now (what the poller does), and acts on them.
    pub fn refresh(&self) -> Result<(), StoreError> {
        let now = self.revisions()?;
        let (agents_changed, overrides_changed) = {
            let mut seen = self.inner.seen.lock().unwrap_or_else(|e| e.into_inner());
            let changed = (now.agents != seen.agents, now.overrides != seen.overrides);
            *seen = now;
            changed
        };
        if agents_changed {
            self.inner
                .auth
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        }
        if overrides_changed {
            let listeners = self
                .inner
                .on_overrides
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            for listener in listeners {
                listener();
            }
        }
        Ok(())
    }

    fn revisions(&self) -> Result<Seen, StoreError> {
        let pool = self.pool();
        self.block(async move {
            let client = pool.get().await.map_err(db)?;
            let rows = client
                .query("SELECT name, value FROM depfw_revisions", &[])
                .await
                .map_err(db)?;
            let mut seen = Seen::default();
            for row in rows {
                let (name, value): (String, i64) = (row.get(0), row.get(1));
                match name.as_str() {
                    "agents" => seen.agents = value,
                    "overrides" => seen.overrides = value,
                    _ => {}
                }
            }
            Ok(seen)
        })
    }

    /// Forgets this replica's cached agent tokens (after a change made here).
    fn forget_agents(&self) {
        self.inner
            .auth
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// The poller: every `every`, [`PgStore::refresh`] on a blocking thread. Ends once the
/// store is dropped.
async fn poll(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let store = PgStore { inner };
        let refreshed = tokio::task::spawn_blocking(move || store.refresh()).await;
        match refreshed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("cannot ask the database for changes: {e}"),
            Err(e) => tracing::warn!("the change poller failed: {e}"),
        }
    }
}

/// Applies every migration the database lacks, in one transaction under an advisory lock:
/// a second replica starting at the same time waits, then finds nothing left to do.
async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut client: Object = pool.get().await.map_err(db)?;
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS depfw_migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(db)?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM depfw_migrations", &[])
        .await
        .map_err(db)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if let Some(newest) = applied.iter().max() {
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        if *newest > known {
            return Err(db(format!(
                "the database schema is version {newest}, newer than this depfw knows \
                 ({known}): upgrade depfw"
            )));
        }
    }
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql)
            .await
            .map_err(|e| db(format!("migration {version}: {e}")))?;
        tx.execute(
            "INSERT INTO depfw_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(db)?;
        tracing::info!(version, "database schema migrated");
    }
    tx.commit().await.map_err(db)
}

/// Bumps the named revision inside `tx`.
async fn bump(tx: &deadpool_postgres::Transaction<'_>, name: &str) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE depfw_revisions SET value = value + 1 WHERE name = $1",
        &[&name],
    )
    .await
    .map_err(db)?;
    Ok(())
}

fn json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::corrupt(what, e))
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(what, e))
}
