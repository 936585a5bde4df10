//! Agents, overrides and the quarantine queue on PostgreSQL.
//!
//! Each change is one transaction that first takes its advisory lock (agents; overrides
//! and quarantine together), so the checks the sled store makes inside its transactions
//! (a duplicate name or active entry, an item resolved twice) hold across replicas. The
//! records are the same JSON documents the sled store keeps; validation is the sled
//! store's own functions. Every change bumps its revision, which the other replicas poll.

use chrono::{DateTime, Utc};

use super::{bump, db, json, parse, PgStore, AGENTS_LOCK, OVERRIDES_LOCK};
use crate::agents::{
    validate_name, Agent, AgentError, AuthError, PolicyPreset, Suspension, Token, TokenHash,
};
use crate::package::{PackageName, Version};
use crate::policy::overrides::{OverrideEntry, OverrideKind};
use crate::policy::Finding;
use crate::store::agents::AgentRecord;
use crate::store::overrides::{self, OverrideError, OverrideId, OverrideStatus, StoredOverride};
use crate::store::quarantine::{
    self, ApprovalScope, Noted, QuarantineError, QuarantineId, QuarantineItem, QuarantineStatus,
    Sighting,
};
use crate::store::repo::{AgentRepo, OverrideRepo, QuarantineRepo};
use crate::store::StoreError;

type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// What a locked change decided: commit with this value, or refuse with nothing written.
enum Outcome<T, E> {
    Commit(T),
    Refuse(E),
}

impl PgStore {
    /// Runs `change` in a transaction holding advisory lock `lock`; commits on
    /// [`Outcome::Commit`] (bumping revision `bumps`), rolls back on a refusal.
    fn locked<T, E, F>(&self, lock: i64, bumps: Option<&'static str>, change: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'a> FnOnce(
                &'a Tx<'a>,
            ) -> std::pin::Pin<
                Box<
                    dyn std::future::Future<Output = Result<Outcome<T, E>, StoreError>> + Send + 'a,
                >,
            > + Send
            + 'static,
    {
        let pool = self.pool();
        let outcome = self.block(async move {
            let mut client = pool.get().await.map_err(db)?;
            let tx = client.transaction().await.map_err(db)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])
                .await
                .map_err(db)?;
            let outcome = change(&tx).await?;
            if matches!(outcome, Outcome::Commit(_)) {
                if let Some(name) = bumps {
                    bump(&tx, name).await?;
                }
                tx.commit().await.map_err(db)?;
            }
            Ok(outcome)
        })?;
        match outcome {
            Outcome::Commit(value) => Ok(value),
            Outcome::Refuse(e) => Err(e),
        }
    }

    fn agent_record(&self, name: &str) -> Result<Option<AgentRecord>, StoreError> {
        self.record(
            "agent",
            "SELECT record FROM depfw_agents WHERE name = $1",
            name.to_owned(),
        )
    }

    /// Changes one agent's record under the agents lock.
    fn update_agent(
        &self,
        name: &str,
        change: impl FnOnce(&mut Agent) -> Result<(), AgentError> + Send + 'static,
    ) -> Result<Agent, AgentError> {
        let name = name.to_owned();
        let result = self.locked(AGENTS_LOCK, Some("agents"), move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_opt(
                        "SELECT record FROM depfw_agents WHERE name = $1 FOR UPDATE",
                        &[&name],
                    )
                    .await
                    .map_err(db)?;
                let Some(row) = row else {
                    return Ok(Outcome::Refuse(AgentError::Unknown(name)));
                };
                let mut record: AgentRecord = parse("agent", row.get::<_, &str>(0))?;
                if let Err(e) = change(&mut record.agent) {
                    return Ok(Outcome::Refuse(e));
                }
                let text = json("agent", &record)?;
                tx.execute(
                    "UPDATE depfw_agents SET record = $2 WHERE name = $1",
                    &[&name, &text],
                )
                .await
                .map_err(db)?;
                Ok(Outcome::Commit(record.agent))
            })
        });
        self.forget_agents();
        result
    }
}

impl AgentRepo for PgStore {
    fn add(&self, name: &str, preset: PolicyPreset) -> Result<(Agent, Token), AgentError> {
        validate_name(name)?;
        let token = Token::generate().map_err(AgentError::Random)?;
        let hash = token.hash();
        let agent = Agent {
            name: name.to_owned(),
            preset,
            created: Utc::now(),
            rotated: None,
            revoked: None,
            suspended: None,
        };
        let text = json(
            "agent",
            &AgentRecord {
                agent: agent.clone(),
                token_sha256: hash.to_hex(),
            },
        )?;
        let (name, lookup) = (name.to_owned(), hash.lookup_id());
        self.locked(AGENTS_LOCK, Some("agents"), move |tx| {
            Box::pin(async move {
                let taken = tx
                    .query_opt("SELECT 1 FROM depfw_agents WHERE name = $1", &[&name])
                    .await
                    .map_err(db)?;
                if taken.is_some() {
                    return Ok(Outcome::Refuse(AgentError::Duplicate(name)));
                }
                let collides = tx
                    .query_opt(
                        "SELECT 1 FROM depfw_agents WHERE token_lookup = $1",
                        &[&lookup],
                    )
                    .await
                    .map_err(db)?;
                if collides.is_some() {
                    return Ok(Outcome::Refuse(AgentError::TokenCollision));
                }
                tx.execute(
                    "INSERT INTO depfw_agents (name, token_lookup, record) VALUES ($1, $2, $3)",
                    &[&name, &lookup, &text],
                )
                .await
                .map_err(db)?;
                Ok(Outcome::Commit(()))
            })
        })?;
        Ok((agent, token))
    }

    fn list(&self) -> Result<Vec<Agent>, AgentError> {
        let records: Vec<AgentRecord> = self.records(
            "agent",
            "SELECT record FROM depfw_agents ORDER BY name",
            Vec::new(),
        )?;
        Ok(records.into_iter().map(|r| r.agent).collect())
    }

    fn get(&self, name: &str) -> Result<Agent, AgentError> {
        match self.agent_record(name)? {
            Some(record) => Ok(record.agent),
            None => Err(AgentError::Unknown(name.to_owned())),
        }
    }

    fn rotate(&self, name: &str) -> Result<Token, AgentError> {
        let token = Token::generate().map_err(AgentError::Random)?;
        let hash = token.hash();
        let (name, lookup, hex) = (name.to_owned(), hash.lookup_id(), hash.to_hex());
        let now = Utc::now();
        let result = self.locked(AGENTS_LOCK, Some("agents"), move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_opt(
                        "SELECT record FROM depfw_agents WHERE name = $1 FOR UPDATE",
                        &[&name],
                    )
                    .await
                    .map_err(db)?;
                let Some(row) = row else {
                    return Ok(Outcome::Refuse(AgentError::Unknown(name)));
                };
                let mut record: AgentRecord = parse("agent", row.get::<_, &str>(0))?;
                if record.agent.revoked.is_some() {
                    return Ok(Outcome::Refuse(AgentError::Revoked(name)));
                }
                let collides = tx
                    .query_opt(
                        "SELECT 1 FROM depfw_agents WHERE token_lookup = $1",
                        &[&lookup],
                    )
                    .await
                    .map_err(db)?;
                if collides.is_some() {
                    return Ok(Outcome::Refuse(AgentError::TokenCollision));
                }
                record.token_sha256 = hex;
                record.agent.rotated = Some(now);
                let text = json("agent", &record)?;
                tx.execute(
                    "UPDATE depfw_agents SET record = $2, token_lookup = $3 WHERE name = $1",
                    &[&name, &text, &lookup],
                )
                .await
                .map_err(db)?;
                Ok(Outcome::Commit(()))
            })
        });
        self.forget_agents();
        result.map(|()| token)
    }

    fn revoke(&self, name: &str) -> Result<Agent, AgentError> {
        let now = Utc::now();
        self.update_agent(name, move |agent| {
            if agent.revoked.is_some() {
                return Err(AgentError::Revoked(agent.name.clone()));
            }
            agent.revoked = Some(now);
            Ok(())
        })
    }

    fn suspend(&self, name: &str, reason: &str) -> Result<Agent, AgentError> {
        let reason = reason.trim().to_owned();
        if reason.is_empty() {
            return Err(AgentError::ReasonRequired);
        }
        if reason.chars().any(char::is_control) || reason.chars().count() > 1000 {
            return Err(AgentError::BadReason);
        }
        let now = Utc::now();
        self.update_agent(name, move |agent| {
            if agent.revoked.is_some() {
                return Err(AgentError::Revoked(agent.name.clone()));
            }
            if agent.suspended.is_some() {
                return Err(AgentError::AlreadySuspended(agent.name.clone()));
            }
            agent.suspended = Some(Suspension { reason, at: now });
            Ok(())
        })
    }

    fn resume(&self, name: &str) -> Result<Agent, AgentError> {
        self.update_agent(name, |agent| {
            if agent.revoked.is_some() {
                return Err(AgentError::Revoked(agent.name.clone()));
            }
            if agent.suspended.take().is_none() {
                return Err(AgentError::NotSuspended(agent.name.clone()));
            }
            Ok(())
        })
    }

    /// Served from this replica's cache of looked-up tokens; the cache is emptied when any
    /// replica changes an agent (within `store.refresh-millis`), so a revocation holds
    /// everywhere within that time.
    fn authenticate(&self, presented: &str) -> Result<Agent, AuthError> {
        let token = Token::parse(presented)?;
        let hash = token.hash();
        let lookup = hash.lookup_id();
        let cached = self
            .inner
            .auth
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&lookup)
            .map(|r| {
                r.as_ref()
                    .map(|r| (r.agent.clone(), r.token_sha256.clone()))
            });
        let record = match cached {
            Some(record) => record,
            None => {
                let (pool, key) = (self.pool(), lookup.clone());
                let record: Option<AgentRecord> = self.block(async move {
                    let client = pool.get().await.map_err(db)?;
                    let row = client
                        .query_opt(
                            "SELECT record FROM depfw_agents WHERE token_lookup = $1",
                            &[&key],
                        )
                        .await
                        .map_err(db)?;
                    row.map(|r| parse("agent", r.get::<_, &str>(0))).transpose()
                })?;
                let found = record
                    .as_ref()
                    .map(|r| (r.agent.clone(), r.token_sha256.clone()));
                self.inner
                    .auth
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(lookup, record);
                found
            }
        };
        let Some((agent, stored)) = record else {
            return Err(AuthError::Unknown);
        };
        let stored = TokenHash::from_hex(&stored)
            .ok_or_else(|| StoreError::corrupt("agent token hash", &agent.name))?;
        if !stored.matches(&hash) {
            return Err(AuthError::Unknown);
        }
        if agent.revoked.is_some() {
            return Err(AuthError::Revoked(agent.name));
        }
        if agent.suspended.is_some() {
            return Err(AuthError::Suspended(Box::new(agent)));
        }
        Ok(agent)
    }
}

/// Inserts `record` with a fresh id inside `tx` (which holds the overrides lock), unless
/// an active entry with the same key exists.
async fn insert_override(
    tx: &Tx<'_>,
    mut record: StoredOverride,
    now: DateTime<Utc>,
) -> Result<Result<StoredOverride, OverrideError>, StoreError> {
    let key = String::from_utf8_lossy(&record.active_key()).into_owned();
    let rows = tx
        .query(
            "SELECT record FROM depfw_overrides WHERE active_key = $1 AND NOT removed",
            &[&key],
        )
        .await
        .map_err(db)?;
    for row in rows {
        let existing: StoredOverride = parse("override", row.get::<_, &str>(0))?;
        if existing.status(now) == OverrideStatus::Active {
            return Ok(Err(OverrideError::Duplicate {
                id: existing.id,
                kind: existing.kind,
                name: existing.name,
                versions: existing.versions,
            }));
        }
    }
    let id: i64 = tx
        .query_one("SELECT nextval('depfw_override_ids')", &[])
        .await
        .map_err(db)?
        .get(0);
    record.id = u64::try_from(id).map_err(db)?;
    let text = json("override", &record)?;
    tx.execute(
        "INSERT INTO depfw_overrides (id, active_key, record) VALUES ($1, $2, $3)",
        &[&id, &key, &text],
    )
    .await
    .map_err(db)?;
    Ok(Ok(record))
}

impl OverrideRepo for PgStore {
    fn add(&self, entry: &OverrideEntry, now: DateTime<Utc>) -> Result<OverrideId, OverrideError> {
        let record = overrides::new_record(entry, now)?;
        let stored = self.locked(OVERRIDES_LOCK, Some("overrides"), move |tx| {
            Box::pin(async move {
                Ok(match insert_override(tx, record, now).await? {
                    Ok(stored) => Outcome::Commit(stored),
                    Err(refused) => Outcome::Refuse(refused),
                })
            })
        })?;
        Ok(stored.id)
    }

    fn get(&self, id: OverrideId) -> Result<StoredOverride, OverrideError> {
        let key = i64::try_from(id).map_err(|_| OverrideError::Unknown(id))?;
        let found: Option<StoredOverride> = self.record(
            "override",
            "SELECT record FROM depfw_overrides WHERE id = $1",
            key,
        )?;
        found.ok_or(OverrideError::Unknown(id))
    }

    fn remove(
        &self,
        id: OverrideId,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredOverride, OverrideError> {
        if by.trim().is_empty() {
            return Err(OverrideError::AuthorRequired);
        }
        overrides::check_text("author", by)?;
        let by = by.trim().to_owned();
        let key = i64::try_from(id).map_err(|_| OverrideError::Unknown(id))?;
        self.locked(OVERRIDES_LOCK, Some("overrides"), move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_opt("SELECT record FROM depfw_overrides WHERE id = $1", &[&key])
                    .await
                    .map_err(db)?;
                let Some(row) = row else {
                    return Ok(Outcome::Refuse(OverrideError::Unknown(id)));
                };
                let mut record: StoredOverride = parse("override", row.get::<_, &str>(0))?;
                if record.removed_at.is_some() {
                    return Ok(Outcome::Refuse(OverrideError::AlreadyRemoved(id)));
                }
                record.removed_at = Some(now);
                record.removed_by = Some(by);
                let text = json("override", &record)?;
                tx.execute(
                    "UPDATE depfw_overrides SET record = $2, removed = true WHERE id = $1",
                    &[&key, &text],
                )
                .await
                .map_err(db)?;
                Ok(Outcome::Commit(record))
            })
        })
    }

    fn list(
        &self,
        include_history: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredOverride>, OverrideError> {
        let sql = if include_history {
            "SELECT record FROM depfw_overrides ORDER BY id"
        } else {
            "SELECT record FROM depfw_overrides WHERE NOT removed ORDER BY id"
        };
        let all: Vec<StoredOverride> = self.records("override", sql, Vec::new())?;
        Ok(all
            .into_iter()
            .filter(|r| include_history || r.status(now) == OverrideStatus::Active)
            .collect())
    }

    fn active_entries(&self, now: DateTime<Utc>) -> Result<Vec<OverrideEntry>, OverrideError> {
        overrides::entries_in_force(&OverrideRepo::list(self, false, now)?)
    }

    fn revision(&self) -> Result<u64, StoreError> {
        let pool = self.pool();
        let value: i64 = self.block(async move {
            let client = pool.get().await.map_err(db)?;
            let row = client
                .query_one(
                    "SELECT value FROM depfw_revisions WHERE name = 'overrides'",
                    &[],
                )
                .await
                .map_err(db)?;
            Ok(row.get(0))
        })?;
        Ok(u64::try_from(value).unwrap_or(0))
    }
}

impl PgStore {
    /// Holds, requests and sightings in the queue, in one transaction: one pending item per
    /// package and version, each requester once, counted (`QuarantineQueue::note` on sled).
    fn put_sightings(&self, sightings: Vec<Sighting>) -> Result<Vec<Noted>, QuarantineError> {
        if sightings.is_empty() {
            return Ok(Vec::new());
        }
        // A hold changes no policy: it takes the lock, but bumps nothing others reload.
        self.locked(OVERRIDES_LOCK, None, move |tx| {
            Box::pin(async move {
                let mut noted = Vec::with_capacity(sightings.len());
                for seen in &sightings {
                    let pending = seen.pending();
                    let row = tx
                        .query_opt(
                            "SELECT record FROM depfw_quarantine WHERE pending_key = $1",
                            &[&pending],
                        )
                        .await
                        .map_err(db)?;
                    let (mut item, opened) = match row {
                        Some(row) => (parse("quarantine item", row.get::<_, &str>(0))?, false),
                        None => {
                            let id: i64 = tx
                                .query_one("SELECT nextval('depfw_quarantine_ids')", &[])
                                .await
                                .map_err(db)?
                                .get(0);
                            (seen.open(u64::try_from(id).map_err(db)?), true)
                        }
                    };
                    seen.apply(&mut item);
                    let id = i64::try_from(item.id).map_err(db)?;
                    let text = json("quarantine item", &item)?;
                    tx.execute(
                        "INSERT INTO depfw_quarantine (id, pending_key, record) VALUES ($1, $2, $3)
                         ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
                        &[&id, &pending, &text],
                    )
                    .await
                    .map_err(db)?;
                    noted.push(Noted {
                        id: item.id,
                        opened,
                    });
                }
                Ok(Outcome::Commit(noted))
            })
        })
    }

    fn put_one(&self, seen: Sighting) -> Result<QuarantineId, QuarantineError> {
        let noted = self.put_sightings(vec![seen.checked()?])?;
        noted.first().map(|n| n.id).ok_or_else(|| {
            crate::store::StoreError::corrupt("quarantine queue", "a hold recorded nothing").into()
        })
    }
}

impl QuarantineRepo for PgStore {
    fn hold(
        &self,
        name: &PackageName,
        version: &Version,
        requested_by: &str,
        reasons: Vec<Finding>,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<QuarantineId, QuarantineError> {
        let seen = Sighting::once(name, Some(version), requested_by, reasons, request_id, now);
        self.put_one(seen)
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
        let mut seen = Sighting::once(name, version, requested_by, reasons, request_id, now);
        seen.justification = Some(quarantine::justification_text(justification)?);
        self.put_one(seen)
    }

    fn note(&self, sightings: Vec<Sighting>) -> Result<Vec<Noted>, QuarantineError> {
        self.put_sightings(quarantine::valid_sightings(sightings))
    }

    fn get(&self, id: QuarantineId) -> Result<QuarantineItem, QuarantineError> {
        let key = i64::try_from(id).map_err(|_| QuarantineError::Unknown(id))?;
        let found: Option<QuarantineItem> = self.record(
            "quarantine item",
            "SELECT record FROM depfw_quarantine WHERE id = $1",
            key,
        )?;
        found.ok_or(QuarantineError::Unknown(id))
    }

    fn list(
        &self,
        status: Option<QuarantineStatus>,
    ) -> Result<Vec<QuarantineItem>, QuarantineError> {
        let all: Vec<QuarantineItem> = self.records(
            "quarantine item",
            "SELECT record FROM depfw_quarantine ORDER BY id",
            Vec::new(),
        )?;
        Ok(all
            .into_iter()
            .filter(|i| status.is_none_or(|s| s == i.status))
            .collect())
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
        self.resolve(id, OverrideKind::Allow, scope, reason, expires, by, now)
    }

    fn reject(
        &self,
        id: QuarantineId,
        reason: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<OverrideId, QuarantineError> {
        let scope = ApprovalScope::ThisVersion;
        self.resolve(id, OverrideKind::Deny, &scope, reason, None, by, now)
    }
}

impl PgStore {
    /// Approves or rejects item `id`: the override and the item's new status in one
    /// transaction, as on sled.
    #[allow(clippy::too_many_arguments)]
    fn resolve(
        &self,
        id: QuarantineId,
        kind: OverrideKind,
        scope: &ApprovalScope,
        reason: &str,
        expires: Option<DateTime<Utc>>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<OverrideId, QuarantineError> {
        let item = QuarantineRepo::get(self, id)?;
        let (record, status) =
            quarantine::resolution(&item, kind, scope, reason, expires, by, now)?;
        let key = i64::try_from(id).map_err(|_| QuarantineError::Unknown(id))?;
        self.locked(OVERRIDES_LOCK, Some("overrides"), move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_opt("SELECT record FROM depfw_quarantine WHERE id = $1", &[&key])
                    .await
                    .map_err(db)?;
                let Some(row) = row else {
                    return Ok(Outcome::Refuse(QuarantineError::Unknown(id)));
                };
                let mut item: QuarantineItem = parse("quarantine item", row.get::<_, &str>(0))?;
                if item.status != QuarantineStatus::Pending {
                    return Ok(Outcome::Refuse(QuarantineError::AlreadyResolved {
                        id,
                        status: item.status,
                    }));
                }
                let record = match insert_override(tx, record, now).await? {
                    Ok(record) => record,
                    Err(refused) => return Ok(Outcome::Refuse(refused.into())),
                };
                quarantine::mark_resolved(&mut item, status, &record, expires, now);
                let text = json("quarantine item", &item)?;
                tx.execute(
                    "UPDATE depfw_quarantine SET record = $2, pending_key = NULL WHERE id = $1",
                    &[&key, &text],
                )
                .await
                .map_err(db)?;
                Ok(Outcome::Commit(record.id))
            })
        })
    }
}
