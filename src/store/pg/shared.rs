//! The state that is per process on sled and shared on PostgreSQL: the agents' breaker
//! counters (so N replicas do not mean N times the limit), admin sessions and the sign-in
//! throttle (so a load balancer needs no sticky sessions).

use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};

use super::{db, json, parse, PgStore};
use crate::agents::breaker::WINDOW;
use crate::agents::{BreakerEvent, BreakerLimits, BreakerState, Limit};
use crate::store::repo::{BreakerRepo, FailureCount, SessionRecord, SessionRepo, ThrottleRepo};
use crate::store::StoreError;

/// A package an agent asked for again within this time is not written again: it is
/// already in the window, and re-dating it by less changes no trip.
const REPEAT: StdDuration = StdDuration::from_secs(60);
/// A session unused this long is gone (as on sled).
const SESSION_IDLE_SECS: i64 = 8 * 3600;

pub(super) struct PgBreaker {
    pub(super) store: PgStore,
    pub(super) limits: BreakerLimits,
}

impl BreakerRepo for PgBreaker {
    /// One transaction per counted event, serialised per agent by an advisory lock, so
    /// the event past a limit trips exactly once across replicas.
    fn record(
        &self,
        agent: &str,
        event: BreakerEvent<'_>,
        now: DateTime<Utc>,
    ) -> Result<BreakerState, StoreError> {
        let package = match event {
            BreakerEvent::Package(name) => {
                let package = format!("{}/{}", name.ecosystem().slug(), name.key());
                let key = (agent.to_owned(), package.clone());
                let mut seen = self
                    .store
                    .inner
                    .breaker_seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if seen.get(&key).is_some_and(|at| at.elapsed() < REPEAT) {
                    return Ok(BreakerState::Closed);
                }
                if seen.len() > 100_000 {
                    seen.retain(|_, at| at.elapsed() < REPEAT);
                }
                seen.insert(key, Instant::now());
                Some(package)
            }
            BreakerEvent::Refused => None,
        };
        let who = agent.to_owned();
        let (pool, agent, limits) = (self.store.pool(), agent.to_owned(), self.limits);
        let since = now - WINDOW;
        let state = self.store.block(async move {
            let mut client = pool.get().await.map_err(db)?;
            let tx = client.transaction().await.map_err(db)?;
            tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&agent])
                .await
                .map_err(db)?;
            tx.execute(
                "DELETE FROM depfw_breaker_events WHERE agent = $1 AND at < $2",
                &[&agent, &since],
            )
            .await
            .map_err(db)?;
            let kind = if package.is_some() {
                "package"
            } else {
                "refused"
            };
            if let Some(package) = &package {
                tx.execute(
                    "DELETE FROM depfw_breaker_events
                     WHERE agent = $1 AND kind = 'package' AND package = $2",
                    &[&agent, package],
                )
                .await
                .map_err(db)?;
            }
            tx.execute(
                "INSERT INTO depfw_breaker_events (agent, kind, package, at)
                 VALUES ($1, $2, $3, $4)",
                &[&agent, &kind, &package, &now],
            )
            .await
            .map_err(db)?;
            let row = tx
                .query_one(
                    "SELECT count(*) FILTER (WHERE kind = 'package'),
                            count(*) FILTER (WHERE kind = 'refused')
                     FROM depfw_breaker_events WHERE agent = $1",
                    &[&agent],
                )
                .await
                .map_err(db)?;
            let (packages, refusals): (i64, i64) = (row.get(0), row.get(1));
            let count = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
            let over = |n: usize, max: u32| max != 0 && n > max as usize;
            let state = if over(count(packages), limits.max_new_packages_per_hour) {
                BreakerState::Tripped {
                    limit: Limit::NewPackages,
                    count: count(packages),
                    max: limits.max_new_packages_per_hour,
                }
            } else if over(count(refusals), limits.max_refusals_per_hour) {
                BreakerState::Tripped {
                    limit: Limit::Refusals,
                    count: count(refusals),
                    max: limits.max_refusals_per_hour,
                }
            } else {
                BreakerState::Closed
            };
            if state.is_tripped() {
                // A resumed agent starts with an empty window.
                tx.execute(
                    "DELETE FROM depfw_breaker_events WHERE agent = $1",
                    &[&agent],
                )
                .await
                .map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
            Ok(state)
        })?;
        if state.is_tripped() {
            let mut seen = self
                .store
                .inner
                .breaker_seen
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            seen.retain(|(a, _), _| *a != who);
        }
        Ok(state)
    }

    fn limits(&self) -> BreakerLimits {
        self.limits
    }
}

impl SessionRepo for PgStore {
    fn create(&self, id: &str, session: &SessionRecord) -> Result<(), StoreError> {
        let (pool, id, text) = (self.pool(), id.to_owned(), json("session", session)?);
        self.block(async move {
            let client = pool.get().await.map_err(db)?;
            client
                .execute(
                    "DELETE FROM depfw_admin_sessions
                     WHERE last_used < now() - make_interval(secs => $1)",
                    &[&(SESSION_IDLE_SECS as f64)],
                )
                .await
                .map_err(db)?;
            client
                .execute(
                    "INSERT INTO depfw_admin_sessions (id, record, last_used)
                     VALUES ($1, $2, now())",
                    &[&id, &text],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn touch(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let (pool, id) = (self.pool(), id.to_owned());
        self.block(async move {
            let client = pool.get().await.map_err(db)?;
            let row = client
                .query_opt(
                    "UPDATE depfw_admin_sessions SET last_used = now()
                     WHERE id = $1 AND last_used >= now() - make_interval(secs => $2)
                     RETURNING record",
                    &[&id, &(SESSION_IDLE_SECS as f64)],
                )
                .await
                .map_err(db)?;
            row.map(|r| parse("session", r.get::<_, &str>(0)))
                .transpose()
        })
    }

    fn set_flash(&self, id: &str, flash: Option<String>) -> Result<(), StoreError> {
        let Some(mut session) = self.touch(id)? else {
            return Ok(());
        };
        session.flash = flash;
        let (pool, id, text) = (self.pool(), id.to_owned(), json("session", &session)?);
        self.block(async move {
            let client = pool.get().await.map_err(db)?;
            client
                .execute(
                    "UPDATE depfw_admin_sessions SET record = $2 WHERE id = $1",
                    &[&id, &text],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    fn take_flash(&self, id: &str) -> Result<Option<String>, StoreError> {
        let Some(session) = self.touch(id)? else {
            return Ok(None);
        };
        if session.flash.is_some() {
            self.set_flash(id, None)?;
        }
        Ok(session.flash)
    }

    fn remove(&self, id: &str) -> Result<(), StoreError> {
        let (pool, id) = (self.pool(), id.to_owned());
        self.block(async move {
            let client = pool.get().await.map_err(db)?;
            client
                .execute("DELETE FROM depfw_admin_sessions WHERE id = $1", &[&id])
                .await
                .map_err(db)?;
            Ok(())
        })
    }
}

fn to_count(row: &tokio_postgres::Row) -> FailureCount {
    let count: i32 = row.get(0);
    FailureCount {
        count: u32::try_from(count).unwrap_or(0),
        last: row.get(1),
        blocked_until: row.get(2),
    }
}

impl ThrottleRepo for PgStore {
    fn get(&self, client_key: &str) -> Result<Option<FailureCount>, StoreError> {
        let (pool, key) = (self.pool(), client_key.to_owned());
        self.block(async move {
            let client = pool.get().await.map_err(db)?;
            let row = client
                .query_opt(
                    "SELECT count, last, blocked_until FROM depfw_admin_throttle WHERE client = $1",
                    &[&key],
                )
                .await
                .map_err(db)?;
            Ok(row.as_ref().map(to_count))
        })
    }

    fn update(
        &self,
        client_key: &str,
        update: &dyn Fn(Option<FailureCount>) -> FailureCount,
    ) -> Result<FailureCount, StoreError> {
        // Read, compute here, write back (`update` is not `Send`): two replicas counting
        // the same client at the same instant may lose one count, never block a client
        // that should pass.
        let (pool, key) = (self.pool(), client_key.to_owned());
        let current = self.block({
            let (pool, key) = (pool.clone(), key.clone());
            async move {
                let client = pool.get().await.map_err(db)?;
                let row = client
                    .query_opt(
                        "SELECT count, last, blocked_until FROM depfw_admin_throttle
                         WHERE client = $1",
                        &[&key],
                    )
                    .await
                    .map_err(db)?;
                Ok(row.as_ref().map(to_count))
            }
        })?;
        let next = update(current);
        let count = i32::try_from(next.count).unwrap_or(i32::MAX);
        self.block(async move {
            let client = pool.get().await.map_err(db)?;
            client
                .execute(
                    "INSERT INTO depfw_admin_throttle (client, count, last, blocked_until)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (client) DO UPDATE
                     SET count = EXCLUDED.count, last = EXCLUDED.last,
                         blocked_until = EXCLUDED.blocked_until",
                    &[&key, &count, &next.last, &next.blocked_until],
                )
                .await
                .map_err(db)?;
            Ok(())
        })?;
        Ok(next)
    }

    fn clear(&self, client_key: &str) -> Result<(), StoreError> {
        let (pool, key) = (self.pool(), client_key.to_owned());
        self.block(async move {
            let client = pool.get().await.map_err(db)?;
            client
                .execute(
                    "DELETE FROM depfw_admin_throttle WHERE client = $1",
                    &[&key],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }
}
