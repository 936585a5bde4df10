//! Allow- and deny-list entries made at run time: `depfw overrides allow|deny|remove|list`,
//! quarantine approvals and rejections, and (later) the admin endpoint.
//!
//! Config-file entries are fixed at startup; these live in the store so that a decision an
//! admin makes applies at once to the proxy and to `depfw audit`, and survives restarts.
//! Entries are never deleted: removal and expiry stop an entry from applying, and the
//! history (who made it, when, who removed it) stays listable.
//!
//! Tree `overrides`: `entry/<id, big-endian>` → JSON [`StoredOverride`];
//! `active/<kind>/<ecosystem>/<name key>/<scope>` → id (the duplicate guard);
//! `meta/revision` → a counter bumped by every change (for policy revisions and ETags).
//! An entry for one agent (`--agent`) keeps the agent in its record (a JSON field, so the
//! PostgreSQL backend stores it too) and in its duplicate guard (`…/<scope>@<agent>`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::TransactionalTree;

use super::tx::{self, abort, put_json, read_u64, Durability, TxResult};
use super::{Store, StoreError};
use crate::package::{Ecosystem, PackageName};
use crate::policy::overrides::{OverrideEntry, OverrideKind, Overrides, VersionScope};

const TREE: &str = "overrides";
const ENTRY_PREFIX: &[u8] = b"entry/";
const REVISION_KEY: &[u8] = b"meta/revision";
const LAST_ID_KEY: &[u8] = b"meta/last-id";

/// Store-assigned, increasing entry id.
pub(crate) type OverrideId = u64;

/// One entry as stored. Package and scope are kept as text and re-parsed on load, so the
/// record stays readable and independent of in-memory types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOverride {
    pub id: OverrideId,
    pub kind: OverrideKind,
    pub ecosystem: Ecosystem,
    /// The name as the registry spells it.
    pub name: String,
    /// `*`, `=<version>` or a range (see [`VersionScope`]).
    pub versions: String,
    pub reason: String,
    pub expires: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
    pub removed_by: Option<String>,
    /// The quarantine item this entry resolved, if it came from an approval or rejection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_id: Option<u64>,
    /// The one agent the entry applies to (`--agent`); `None`: every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverrideStatus {
    Active,
    Expired,
    Removed,
}

impl OverrideStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OverrideStatus::Active => "active",
            OverrideStatus::Expired => "expired",
            OverrideStatus::Removed => "removed",
        }
    }
}

impl StoredOverride {
    pub fn status(&self, now: DateTime<Utc>) -> OverrideStatus {
        if self.removed_at.is_some() {
            OverrideStatus::Removed
        } else if self.expires.is_some_and(|e| e <= now) {
            OverrideStatus::Expired
        } else {
            OverrideStatus::Active
        }
    }

    /// The entry the policy engine applies.
    pub(crate) fn to_entry(&self) -> Result<OverrideEntry, StoreError> {
        let bad = |detail: String| StoreError::Corrupt {
            what: format!("override {}", self.id),
            detail,
        };
        let name =
            PackageName::parse(self.ecosystem, &self.name).map_err(|e| bad(e.to_string()))?;
        // Entries stored before an empty `versions` was refused meant every version: a deny
        // entry keeps that meaning (it only refuses more).
        let text = match (self.kind, self.versions.trim()) {
            (OverrideKind::Deny, "") => "*",
            _ => &self.versions,
        };
        let versions = VersionScope::parse(self.ecosystem, text).map_err(bad)?;
        Ok(OverrideEntry {
            kind: self.kind,
            name,
            versions,
            reason: self.reason.clone(),
            expires: self.expires,
            created_by: self.created_by.clone(),
            agent: self.agent.clone(),
        })
    }

    /// The key no two active entries share: kind, ecosystem, normalised name, versions,
    /// and the agent of an entry for one agent.
    pub(crate) fn active_key(&self) -> Vec<u8> {
        let mut key = active_key(self.kind, self.ecosystem, &self.name, &self.versions);
        if let Some(agent) = &self.agent {
            key.extend_from_slice(format!("@{agent}").as_bytes());
        }
        key
    }
}

/// An override operation that was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    #[error("every override needs a reason: it is shown to whoever hits it")]
    ReasonRequired,
    #[error("every override needs to say who made it")]
    AuthorRequired,
    #[error("expiry {expires} is not in the future (now {now})")]
    ExpiryInPast {
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    #[error("an active {kind} entry for {name} {versions} already exists (id {id})", kind = kind_str(*.kind))]
    Duplicate {
        id: OverrideId,
        kind: OverrideKind,
        name: String,
        versions: String,
    },
    #[error("the {field} {why}")]
    BadText {
        field: &'static str,
        why: &'static str,
    },
    #[error("no override with id {0}")]
    Unknown(OverrideId),
    #[error("{0}")]
    BadAgent(String),
    #[error("override {0} is already removed")]
    AlreadyRemoved(OverrideId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn kind_str(kind: OverrideKind) -> &'static str {
    match kind {
        OverrideKind::Allow => "allow",
        OverrideKind::Deny => "deny",
    }
}

fn entry_key(id: OverrideId) -> Vec<u8> {
    [ENTRY_PREFIX, &id.to_be_bytes()].concat()
}

fn active_key(kind: OverrideKind, ecosystem: Ecosystem, name: &str, versions: &str) -> Vec<u8> {
    let key = crate::package::normalize(ecosystem, name);
    format!(
        "active/{}/{}/{key}/{versions}",
        kind_str(kind),
        ecosystem.slug()
    )
    .into_bytes()
}

fn decode(value: &[u8]) -> Result<StoredOverride, StoreError> {
    serde_json::from_slice(value).map_err(|e| StoreError::corrupt("override", e))
}

/// Longest reason or author accepted: they are shown in one-line listings and logs.
pub(crate) const MAX_TEXT_CHARS: usize = 1000;

/// Refuses text that would break a one-line listing or a log line.
pub(crate) fn check_text(field: &'static str, text: &str) -> Result<(), OverrideError> {
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(OverrideError::BadText {
            field,
            why: "is longer than 1000 characters",
        });
    }
    if text.chars().any(char::is_control) {
        return Err(OverrideError::BadText {
            field,
            why: "contains a control character (a newline, say)",
        });
    }
    Ok(())
}

/// A value of an [`EntryText`] that did not parse: which field (`versions`, `expires`, ...)
/// and why.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    fn new(field: &'static str, message: impl ToString) -> Self {
        FieldError {
            field,
            message: message.to_string(),
        }
    }
}

/// An allow or deny entry as text: what `depfw overrides allow|deny` and the admin
/// endpoint (its API and its form) receive, parsed alike so they accept the same entries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryText<'a> {
    /// npm, pypi or crates.io.
    pub ecosystem: &'a str,
    pub name: &'a str,
    /// `*`, an exact version or a range (see [`VersionScope`]).
    pub versions: &'a str,
    pub reason: &'a str,
    /// A duration from now (`2h`), YYYY-MM-DD or RFC 3339.
    pub expires: Option<&'a str>,
    pub by: &'a str,
    /// The one agent the entry is for; `None`: every request.
    pub agent: Option<&'a str>,
}

impl EntryText<'_> {
    /// The entry, every value validated; [`OverrideStore::add`] then checks reason, author
    /// and expiry.
    pub(crate) fn parse(&self, kind: OverrideKind) -> Result<OverrideEntry, FieldError> {
        let ecosystem: Ecosystem = self
            .ecosystem
            .parse()
            .map_err(|e| FieldError::new("ecosystem", e))?;
        let name =
            PackageName::parse(ecosystem, self.name).map_err(|e| FieldError::new("name", e))?;
        let versions = VersionScope::parse(ecosystem, self.versions)
            .map_err(|e| FieldError::new("versions", e))?;
        let agent = self.agent.map(str::trim).filter(|a| !a.is_empty());
        if let Some(agent) = agent {
            crate::agents::validate_name(agent).map_err(|e| FieldError::new("agent", e))?;
        }
        Ok(OverrideEntry {
            kind,
            name,
            versions,
            reason: self.reason.to_owned(),
            expires: expiry(self.expires)?,
            created_by: self.by.to_owned(),
            agent: agent.map(str::to_owned),
        })
    }
}

/// Parses an optional `expires` value: a duration from now (`90m`, `2h`, `7d`, `1w`),
/// YYYY-MM-DD (its first instant, UTC) or RFC 3339.
pub fn expiry(text: Option<&str>) -> Result<Option<DateTime<Utc>>, FieldError> {
    expiry_at(text, Utc::now())
}

/// [`expiry`] with durations counted from `now`.
pub fn expiry_at(
    text: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, FieldError> {
    let Some(text) = text.map(str::trim) else {
        return Ok(None);
    };
    if let Some(span) = duration(text) {
        return span
            .and_then(|span| now.checked_add_signed(span))
            .map(Some)
            .ok_or_else(|| FieldError::new("expires", format!("`{text}` is too far away")));
    }
    crate::when::parse_since(text).map(Some).map_err(|e| {
        FieldError::new(
            "expires",
            format!("{e}, or a duration from now (90m, 2h, 7d, 1w)"),
        )
    })
}

/// `<digits><s|m|h|d|w>` as a duration: `None` when `text` is not of that form, `Some(None)`
/// when the number is too large.
fn duration(text: &str) -> Option<Option<chrono::Duration>> {
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = digits.parse::<i64>().ok();
    let span = match unit {
        's' => n.and_then(chrono::Duration::try_seconds),
        'm' => n.and_then(chrono::Duration::try_minutes),
        'h' => n.and_then(chrono::Duration::try_hours),
        'd' => n.and_then(chrono::Duration::try_days),
        'w' => n.and_then(chrono::Duration::try_weeks),
        _ => return None,
    };
    Some(span)
}

/// Checks an entry and turns it into the record to store (its id is assigned on insert).
pub(crate) fn new_record(
    entry: &OverrideEntry,
    now: DateTime<Utc>,
) -> Result<StoredOverride, OverrideError> {
    if entry.reason.trim().is_empty() {
        return Err(OverrideError::ReasonRequired);
    }
    if entry.created_by.trim().is_empty() {
        return Err(OverrideError::AuthorRequired);
    }
    check_text("reason", &entry.reason)?;
    check_text("author", &entry.created_by)?;
    if let Some(agent) = &entry.agent {
        crate::agents::validate_name(agent).map_err(|e| OverrideError::BadAgent(e.to_string()))?;
    }
    if let Some(expires) = entry.expires {
        if expires <= now {
            return Err(OverrideError::ExpiryInPast { expires, now });
        }
    }
    Ok(StoredOverride {
        id: 0,
        kind: entry.kind,
        ecosystem: entry.name.ecosystem(),
        name: entry.name.as_str().to_owned(),
        versions: entry.versions.to_string(),
        reason: entry.reason.trim().to_owned(),
        expires: entry.expires,
        created_by: entry.created_by.trim().to_owned(),
        created_at: now,
        removed_at: None,
        removed_by: None,
        quarantine_id: None,
        agent: entry.agent.clone(),
    })
}

/// Inserts `record` with a fresh id inside a transaction (also used by quarantine
/// approvals, which must mark their item in the same transaction). Refuses a duplicate
/// active entry. Returns the record as stored.
pub(crate) fn insert_tx<E: From<OverrideError> + From<StoreError>>(
    tx: &TransactionalTree,
    record: &StoredOverride,
    now: DateTime<Utc>,
) -> TxResult<StoredOverride, E> {
    let guard = record.active_key();
    if let Some(existing) = tx.get(&guard)? {
        let existing = tx.get([ENTRY_PREFIX, existing.as_ref()].concat())?;
        if let Some(existing) = existing {
            let existing = decode(&existing)
                .map_err(OverrideError::from)
                .or_else(abort)?;
            if existing.status(now) == OverrideStatus::Active {
                return abort(OverrideError::Duplicate {
                    id: existing.id,
                    kind: existing.kind,
                    name: existing.name,
                    versions: existing.versions,
                });
            }
        }
    }
    let mut record = record.clone();
    record.id = tx::next_id(tx, LAST_ID_KEY)?;
    put_json(tx, &entry_key(record.id), &record, "override")?;
    tx.insert(guard, &record.id.to_be_bytes())?;
    bump_revision(tx)?;
    Ok(record)
}

fn bump_revision<E>(tx: &TransactionalTree) -> TxResult<(), E> {
    let current = tx.get(REVISION_KEY)?.map_or(0, |v| read_u64(&v));
    tx.insert(REVISION_KEY, &(current + 1).to_be_bytes())?;
    Ok(())
}

/// The entries the engine applies, from the active `records`.
pub(crate) fn entries_in_force(
    records: &[StoredOverride],
) -> Result<Vec<OverrideEntry>, OverrideError> {
    records
        .iter()
        .filter(|r| {
            // An allow entry stored with an empty `versions` (before it was refused) would
            // allow every version: it allows none, and says so.
            let blank = r.kind == OverrideKind::Allow && r.versions.trim().is_empty();
            if blank {
                tracing::warn!(
                    entry = r.id,
                    package = %r.name,
                    "allow entry with an empty `versions` is ignored: remove it and add it \
                     again with `*` or the versions it allows"
                );
            }
            !blank
        })
        .map(|r| r.to_entry().map_err(OverrideError::from))
        .collect()
}

/// Run-time allow and deny entries of one data directory.
#[derive(Clone)]
pub struct OverrideStore {
    tree: sled::Tree,
}

impl OverrideStore {
    pub fn new(store: &Store) -> Result<Self, StoreError> {
        Ok(OverrideStore {
            tree: store.tree(TREE)?,
        })
    }

    pub(crate) fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// Adds an entry: it needs a reason and an author, an expiry (if any) after `now`, and
    /// no active entry of the same kind for the same package and scope may exist.
    pub fn add(
        &self,
        entry: &OverrideEntry,
        now: DateTime<Utc>,
    ) -> Result<OverrideId, OverrideError> {
        let record = new_record(entry, now)?;
        let stored = tx::transact(&self.tree, Durability::Flushed, |tx| {
            insert_tx::<OverrideError>(tx, &record, now)
        })?;
        Ok(stored.id)
    }

    pub fn get(&self, id: OverrideId) -> Result<StoredOverride, OverrideError> {
        match self.tree.get(entry_key(id)).map_err(StoreError::from)? {
            Some(value) => Ok(decode(&value)?),
            None => Err(OverrideError::Unknown(id)),
        }
    }

    /// Stops an entry from applying; it stays in the history as removed by `by`.
    pub fn remove(
        &self,
        id: OverrideId,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredOverride, OverrideError> {
        if by.trim().is_empty() {
            return Err(OverrideError::AuthorRequired);
        }
        check_text("author", by)?;
        tx::transact(&self.tree, Durability::Flushed, |tx| {
            let mut record = match tx.get(entry_key(id))? {
                Some(value) => decode(&value).or_else(abort)?,
                None => return abort(OverrideError::Unknown(id)),
            };
            if record.removed_at.is_some() {
                return abort(OverrideError::AlreadyRemoved(id));
            }
            record.removed_at = Some(now);
            record.removed_by = Some(by.trim().to_owned());
            put_json(tx, &entry_key(id), &record, "override")?;
            let guard = record.active_key();
            if tx.get(&guard)?.is_some_and(|v| read_u64(&v) == id) {
                tx.remove(guard)?;
            }
            bump_revision(tx)?;
            Ok(record)
        })
    }

    /// Active entries, or with `include_history` every entry ever made (expired and removed
    /// ones too), oldest first.
    pub fn list(
        &self,
        include_history: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredOverride>, OverrideError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(ENTRY_PREFIX) {
            let (_, value) = item.map_err(StoreError::from)?;
            let record = decode(&value)?;
            if include_history || record.status(now) == OverrideStatus::Active {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// The entries in force at `now`, for the engine to merge with the config's.
    pub fn active_entries(&self, now: DateTime<Utc>) -> Result<Vec<OverrideEntry>, OverrideError> {
        entries_in_force(&self.list(false, now)?)
    }

    /// [`OverrideStore::active_entries`] as an [`Overrides`] set.
    pub fn active(&self, now: DateTime<Utc>) -> Result<Overrides, OverrideError> {
        Ok(Overrides::new(self.active_entries(now)?))
    }

    /// The config file's entries plus the store's active ones: what the engine applies.
    pub fn merged_with(
        &self,
        config: &Overrides,
        now: DateTime<Utc>,
    ) -> Result<Overrides, OverrideError> {
        let mut entries = config.entries().to_vec();
        entries.extend(self.active_entries(now)?);
        Ok(Overrides::new(entries))
    }

    /// Bumped by every change: part of the policy revision, so that clients revalidate.
    pub fn revision(&self) -> Result<u64, StoreError> {
        Ok(self.tree.get(REVISION_KEY)?.map_or(0, |v| read_u64(&v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn expiry_takes_durations_dates_and_times() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap();
        let at = |t: &str| expiry_at(Some(t), now);
        assert_eq!(at("2h").unwrap(), Some(now + chrono::Duration::hours(2)));
        assert_eq!(
            at("90m").unwrap(),
            Some(now + chrono::Duration::minutes(90))
        );
        assert_eq!(at(" 7d ").unwrap(), Some(now + chrono::Duration::days(7)));
        assert_eq!(at("1w").unwrap(), Some(now + chrono::Duration::weeks(1)));
        assert_eq!(
            at("2027-01-01").unwrap(),
            Some(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap())
        );
        assert_eq!(expiry_at(None, now).unwrap(), None);
        for bad in [
            "2y",
            "h",
            "-2h",
            "2 h",
            "99999999999999999999h",
            "soon",
            "2ħ",
        ] {
            let e = at(bad).unwrap_err();
            assert_eq!(e.field, "expires", "{bad}");
        }
    }

    #[test]
    fn an_agents_entry_is_stored_apart_from_the_same_entry_for_everyone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let overrides = OverrideStore::new(&store).unwrap();
        let now = Utc::now();
        let text = |agent| EntryText {
            ecosystem: "npm",
            name: "left-pad",
            versions: "1.3.0",
            reason: "urgent fix",
            expires: Some("2h"),
            by: "test",
            agent,
        };
        let mine = text(Some("ci-bot")).parse(OverrideKind::Allow).unwrap();
        let id = overrides.add(&mine, now).unwrap();
        overrides
            .add(&text(None).parse(OverrideKind::Allow).unwrap(), now)
            .unwrap();
        assert!(matches!(
            overrides.add(&mine, now),
            Err(OverrideError::Duplicate { .. })
        ));
        let stored = overrides.get(id).unwrap();
        assert_eq!(stored.agent.as_deref(), Some("ci-bot"));
        let entries = overrides.active_entries(now).unwrap();
        assert_eq!(entries[0].agent.as_deref(), Some("ci-bot"));
        assert_eq!(entries[1].agent, None);
        // Expired: no longer in force, still in the history.
        let later = now + chrono::Duration::hours(3);
        assert!(overrides.active_entries(later).unwrap().is_empty());
        assert_eq!(overrides.list(true, later).unwrap().len(), 2);
        assert!(text(Some("no such/agent"))
            .parse(OverrideKind::Allow)
            .is_err());
    }
}
