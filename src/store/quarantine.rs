//! The quarantine queue: versions the policy held, waiting for a human.
//!
//! When the proxy refuses a version with verdict `quarantine` it calls
//! [`QuarantineQueue::hold`]; when a client only meets a quarantine (a name held at name
//! level, such as the typosquat `lodahs`, or a version hidden from metadata that it would
//! have resolved to) the proxy's queue writer records [`Sighting`]s in batches
//! ([`QuarantineQueue::note`]); an agent's `request_approval` calls
//! [`QuarantineQueue::request`]. An admin then runs `depfw quarantine list` and
//! `depfw quarantine approve|reject ID` (or the admin endpoint). Each held version (or name,
//! version [`ANY_VERSION`]) appears once however often it is asked for, with each requester
//! (an agent, or an anonymous client) listed once with a count, first and last request, and
//! the justification it gave. Approving
//! creates an allow entry (this version or a range) and rejecting a deny entry, through the
//! override store and in the same transaction, so the decision applies at once and the
//! queue and the overrides never disagree.
//!
//! Tree `quarantine`: `item/<id, big-endian>` → JSON [`QuarantineItem`];
//! `pending/<ecosystem>/<name key>/<version>` → id of the pending item (the idempotence key).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::TransactionalTree;

use super::overrides::{self, OverrideError, OverrideId, OverrideStore, StoredOverride};
use super::tx::{self, abort, put_json, read_u64, Durability};
use super::{Store, StoreError};
use crate::package::{Ecosystem, PackageName, Version};
use crate::policy::overrides::{OverrideEntry, OverrideKind, VersionScope};
use crate::policy::Finding;

const TREE: &str = "quarantine";
const ITEM_PREFIX: &[u8] = b"item/";
const LAST_ID_KEY: &[u8] = b"meta/last-id";
/// Distinct requesters remembered per item; later ones still count in `request_count`.
const MAX_REQUESTERS: usize = 100;
/// The version of a name-level request (`request_approval` without a version): approving
/// it allows every version of the name.
pub const ANY_VERSION: &str = "*";

pub(crate) type QuarantineId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum QuarantineStatus {
    Pending,
    Approved,
    Rejected,
}

impl QuarantineStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineStatus::Pending => "pending",
            QuarantineStatus::Approved => "approved",
            QuarantineStatus::Rejected => "rejected",
        }
    }
}

/// One held version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineItem {
    pub id: QuarantineId,
    pub ecosystem: Ecosystem,
    /// The name as the registry spells it.
    pub name: String,
    pub version: String,
    /// Why the policy held it (the findings of the latest hold).
    pub reasons: Vec<Finding>,
    pub requesters: Vec<Requester>,
    /// Every request, including requesters past the remembered ones.
    pub request_count: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub status: QuarantineStatus,
    pub resolution: Option<Resolution>,
}

/// Who asked for a held version: an agent (`agent:<name>`) or a client (`client:<addr>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub who: String,
    pub count: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// The request id of the latest request, to find it in the provenance log.
    pub last_request_id: String,
    /// What the requester wrote when it asked for a review (`request_approval` of
    /// `depfw mcp`); the latest one. `None` for a plain hold by a download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
}

/// How an item was resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    pub by: String,
    pub reason: String,
    pub at: DateTime<Utc>,
    /// The allow (approve) or deny (reject) entry created.
    pub override_id: OverrideId,
    /// The scope of that entry.
    pub versions: String,
    pub expires: Option<DateTime<Utc>>,
}

/// What an approval covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalScope {
    /// Only the held version.
    ThisVersion,
    /// A range, which must include the held version.
    Range(String),
}

/// A queue operation that was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("no quarantined item with id {0}")]
    Unknown(QuarantineId),
    #[error("quarantined item {id} is already {}", .status.as_str())]
    AlreadyResolved {
        id: QuarantineId,
        status: QuarantineStatus,
    },
    #[error("a hold needs to say who asked for the version")]
    RequesterRequired,
    #[error("a request for approval needs a justification: say why this package is needed")]
    JustificationRequired,
    #[error("invalid range: {0}")]
    BadRange(String),
    #[error("range `{range}` does not include the held version {version}")]
    RangeExcludesVersion { range: String, version: String },
    #[error(transparent)]
    Override(#[from] OverrideError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type TxResult<T> = tx::TxResult<T, QuarantineError>;

/// One or more requests for one held version (or name) by one requester: what a hold, an
/// agent's request, or the proxy's coalesced sightings put in the queue, on every backend.
#[derive(Debug, Clone)]
pub struct Sighting {
    pub name: PackageName,
    /// `None`: the name is held (the item's version is [`ANY_VERSION`]).
    pub version: Option<Version>,
    /// An agent's name, or `anonymous (<address>)`.
    pub requested_by: String,
    /// Why the policy held it; empty keeps the item's reasons.
    pub reasons: Vec<Finding>,
    /// The latest request's id, to find it in the provenance log.
    pub request_id: String,
    /// What the requester wrote (`request_approval`), already checked.
    pub justification: Option<String>,
    /// How many requests this stands for (the proxy coalesces repeats).
    pub count: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// What recording one [`Sighting`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Noted {
    pub id: QuarantineId,
    /// A new pending item was opened (nobody had asked since the last resolution): the one
    /// event worth a notification.
    pub opened: bool,
}

impl Sighting {
    /// One request at `now`.
    pub fn once(
        name: &PackageName,
        version: Option<&Version>,
        requested_by: &str,
        reasons: Vec<Finding>,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Sighting {
        Sighting {
            name: name.clone(),
            version: version.cloned(),
            requested_by: requested_by.to_owned(),
            reasons,
            request_id: request_id.to_owned(),
            justification: None,
            count: 1,
            first_seen: now,
            last_seen: now,
        }
    }

    /// The item's version text: the version, or [`ANY_VERSION`] for the name.
    pub fn version_text(&self) -> String {
        self.version
            .as_ref()
            .map_or_else(|| ANY_VERSION.to_owned(), ToString::to_string)
    }

    /// The key of the one pending item it adds to.
    pub(crate) fn pending(&self) -> String {
        pending_text(&self.name, &self.version_text())
    }

    /// The sighting with its requester trimmed, refused when a text is empty or too long.
    pub(crate) fn checked(mut self) -> Result<Sighting, QuarantineError> {
        let who = self.requested_by.trim();
        if who.is_empty() {
            return Err(QuarantineError::RequesterRequired);
        }
        overrides::check_text("requester", who)?;
        overrides::check_text("request id", &self.request_id)?;
        self.requested_by = who.to_owned();
        self.count = self.count.max(1);
        self.last_seen = self.last_seen.max(self.first_seen);
        Ok(self)
    }

    /// A pending item for it, when nobody asked for the version before.
    pub(crate) fn open(&self, id: QuarantineId) -> QuarantineItem {
        new_item(id, &self.name, &self.version_text(), self.first_seen)
    }

    /// Counts its requests on `item` (the requester listed once, at most
    /// [`MAX_REQUESTERS`]) and refreshes the item's reasons.
    pub(crate) fn apply(&self, item: &mut QuarantineItem) {
        if !self.reasons.is_empty() {
            item.reasons.clone_from(&self.reasons);
        }
        item.request_count += self.count;
        item.first_seen = item.first_seen.min(self.first_seen);
        item.last_seen = item.last_seen.max(self.last_seen);
        let who = self.requested_by.as_str();
        if let Some(r) = item.requesters.iter_mut().find(|r| r.who == who) {
            r.count += self.count;
            r.first_seen = r.first_seen.min(self.first_seen);
            if self.last_seen >= r.last_seen {
                r.last_seen = self.last_seen;
                r.last_request_id.clone_from(&self.request_id);
            }
            if let Some(j) = &self.justification {
                r.justification = Some(j.clone());
            }
        } else if item.requesters.len() < MAX_REQUESTERS {
            item.requesters.push(Requester {
                who: who.to_owned(),
                count: self.count,
                first_seen: self.first_seen,
                last_seen: self.last_seen,
                last_request_id: self.request_id.clone(),
                justification: self.justification.clone(),
            });
        }
    }
}

/// Whether `item` was asked for by `agent` (a requester's name; `anonymous` matches every
/// anonymous client): the admin page's and API's queue filter.
pub fn asked_by(item: &QuarantineItem, agent: &str) -> bool {
    item.requesters
        .iter()
        .any(|r| r.who == agent || (agent == "anonymous" && r.who.starts_with("anonymous")))
}

/// What approving or rejecting pending `item` writes, on every backend: the override record
/// (tied to the item) and the item's new status. Each backend checks again, inside its
/// transaction, that the item is still pending.
#[allow(clippy::too_many_arguments)]
pub(crate) fn resolution(
    item: &QuarantineItem,
    kind: OverrideKind,
    scope: &ApprovalScope,
    reason: &str,
    expires: Option<DateTime<Utc>>,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(StoredOverride, QuarantineStatus), QuarantineError> {
    if item.status != QuarantineStatus::Pending {
        return Err(QuarantineError::AlreadyResolved {
            id: item.id,
            status: item.status,
        });
    }
    let entry = QuarantineQueue::entry_for(item, kind, scope, reason, expires, by)?;
    let mut record = overrides::new_record(&entry, now)?;
    record.quarantine_id = Some(item.id);
    let status = match kind {
        OverrideKind::Allow => QuarantineStatus::Approved,
        OverrideKind::Deny => QuarantineStatus::Rejected,
    };
    Ok((record, status))
}

/// Records on `item` that `record` (as stored) resolved it with `status`.
pub(crate) fn mark_resolved(
    item: &mut QuarantineItem,
    status: QuarantineStatus,
    record: &StoredOverride,
    expires: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) {
    item.status = status;
    item.resolution = Some(Resolution {
        by: record.created_by.clone(),
        reason: record.reason.clone(),
        at: now,
        override_id: record.id,
        versions: record.versions.clone(),
        expires,
    });
}

/// A requester's justification as the reviewer sees it: one line (line breaks and tabs
/// become spaces), not empty, within the limits of every reviewer-facing text.
pub(crate) fn justification_text(raw: &str) -> Result<String, QuarantineError> {
    let justification: String = raw
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if justification.is_empty() {
        return Err(QuarantineError::JustificationRequired);
    }
    overrides::check_text("justification", &justification)?;
    Ok(justification)
}

/// A pending item for a version nobody asked for before.
pub(crate) fn new_item(
    id: QuarantineId,
    name: &PackageName,
    version: &str,
    now: DateTime<Utc>,
) -> QuarantineItem {
    QuarantineItem {
        id,
        ecosystem: name.ecosystem(),
        name: name.as_str().to_owned(),
        version: version.to_owned(),
        reasons: Vec::new(),
        requesters: Vec::new(),
        request_count: 0,
        first_seen: now,
        last_seen: now,
        status: QuarantineStatus::Pending,
        resolution: None,
    }
}

/// The key of the one pending item per version (`pending/<eco>/<name key>/<version>`).
pub(crate) fn pending_text(name: &PackageName, version: &str) -> String {
    format!(
        "pending/{}/{}/{version}",
        name.ecosystem().slug(),
        name.key()
    )
}

/// The sightings whose texts pass [`Sighting::checked`]; the others are logged and left
/// out, so one bad requester name cannot lose a whole batch.
pub(crate) fn valid_sightings(sightings: Vec<Sighting>) -> Vec<Sighting> {
    sightings
        .into_iter()
        .filter_map(|seen| match seen.checked() {
            Ok(seen) => Some(seen),
            Err(e) => {
                tracing::warn!(error = %e, "a quarantine sighting was left out");
                None
            }
        })
        .collect()
}

fn item_key(id: QuarantineId) -> Vec<u8> {
    [ITEM_PREFIX, &id.to_be_bytes()].concat()
}

fn pending_key(name: &PackageName, version: &str) -> Vec<u8> {
    pending_text(name, version).into_bytes()
}

fn decode(value: &[u8]) -> Result<QuarantineItem, StoreError> {
    serde_json::from_slice(value).map_err(|e| StoreError::corrupt("quarantine item", e))
}

fn load(tx: &TransactionalTree, id: QuarantineId) -> TxResult<QuarantineItem> {
    match tx.get(item_key(id))? {
        Some(value) => decode(&value).or_else(abort),
        None => abort(QuarantineError::Unknown(id)),
    }
}

fn put(tx: &TransactionalTree, item: &QuarantineItem) -> TxResult<()> {
    put_json(tx, &item_key(item.id), item, "quarantine item")
}

/// The quarantine queue of one data directory.
#[derive(Clone)]
pub struct QuarantineQueue {
    tree: sled::Tree,
    overrides: OverrideStore,
}

impl QuarantineQueue {
    pub fn new(store: &Store) -> Result<Self, StoreError> {
        Ok(QuarantineQueue {
            tree: store.tree(TREE)?,
            overrides: OverrideStore::new(store)?,
        })
    }

    /// Records that `requested_by` asked for a held version. One pending item per
    /// (ecosystem, normalised name, version): later holds add the requester and refresh the
    /// reasons. A version held again after its item was resolved opens a new item.
    pub fn hold(
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

    /// An agent's request for review (`request_approval` of `depfw mcp`): like [`hold`]
    /// (one pending item per package and version, each requester once, counted), plus the
    /// requester's justification, shown to the reviewer. `version` `None` asks about the
    /// name ([`ANY_VERSION`]: approving allows every version). Approves nothing.
    ///
    /// [`hold`]: QuarantineQueue::hold
    #[allow(clippy::too_many_arguments)]
    pub fn request(
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
        seen.justification = Some(justification_text(justification)?);
        self.put_one(seen)
    }

    /// Records quarantines clients met without downloading (see [`Sighting`]), in one
    /// transaction; a sighting whose texts are invalid is left out. Like [`hold`] for each.
    ///
    /// [`hold`]: QuarantineQueue::hold
    pub fn note(&self, sightings: Vec<Sighting>) -> Result<Vec<Noted>, QuarantineError> {
        self.put(valid_sightings(sightings))
    }

    fn put_one(&self, seen: Sighting) -> Result<QuarantineId, QuarantineError> {
        let noted = self.put(vec![seen.checked()?])?;
        noted.first().map(|n| n.id).ok_or_else(|| {
            StoreError::corrupt("quarantine queue", "a hold recorded nothing").into()
        })
    }

    fn put(&self, sightings: Vec<Sighting>) -> Result<Vec<Noted>, QuarantineError> {
        if sightings.is_empty() {
            return Ok(Vec::new());
        }
        let noted = tx::transact(&self.tree, Durability::Flushed, |tx| {
            let mut noted = Vec::with_capacity(sightings.len());
            for seen in &sightings {
                let index = seen.pending().into_bytes();
                let (mut item, opened) = match tx.get(&index)? {
                    Some(id) => (load(tx, read_u64(&id))?, false),
                    None => {
                        let fresh_id = tx::next_id(tx, LAST_ID_KEY)?;
                        tx.insert(index.as_slice(), &fresh_id.to_be_bytes())?;
                        (seen.open(fresh_id), true)
                    }
                };
                seen.apply(&mut item);
                put(tx, &item)?;
                noted.push(Noted {
                    id: item.id,
                    opened,
                });
            }
            Ok(noted)
        })?;
        Ok(noted)
    }

    pub fn get(&self, id: QuarantineId) -> Result<QuarantineItem, QuarantineError> {
        match self.tree.get(item_key(id)).map_err(StoreError::from)? {
            Some(value) => Ok(decode(&value)?),
            None => Err(QuarantineError::Unknown(id)),
        }
    }

    /// Items with `status` (all items with `None`), oldest first.
    pub fn list(
        &self,
        status: Option<QuarantineStatus>,
    ) -> Result<Vec<QuarantineItem>, QuarantineError> {
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix(ITEM_PREFIX) {
            let (_, value) = entry.map_err(StoreError::from)?;
            let item = decode(&value)?;
            if status.is_none_or(|s| s == item.status) {
                out.push(item);
            }
        }
        Ok(out)
    }

    /// Approves a pending item: creates an allow entry for `scope` and marks the item
    /// approved, both or neither. Returns the allow entry's id.
    pub fn approve(
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

    /// Rejects a pending item: creates a deny entry for its version (no expiry) and marks
    /// the item rejected. Returns the deny entry's id.
    pub fn reject(
        &self,
        id: QuarantineId,
        reason: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<OverrideId, QuarantineError> {
        let scope = ApprovalScope::ThisVersion;
        self.resolve(id, OverrideKind::Deny, &scope, reason, None, by, now)
    }

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
        let (record, status) = resolution(&self.get(id)?, kind, scope, reason, expires, by, now)?;
        let trees = (&self.tree, self.overrides.tree());
        tx::transact(trees, Durability::Flushed, |(q, o)| {
            // Re-read inside the transaction: a concurrent resolution must not win twice.
            let mut item = load(q, id)?;
            if item.status != QuarantineStatus::Pending {
                return abort(QuarantineError::AlreadyResolved {
                    id,
                    status: item.status,
                });
            }
            let record = overrides::insert_tx::<QuarantineError>(o, &record, now)?;
            mark_resolved(&mut item, status, &record, expires, now);
            put(q, &item)?;
            let name = PackageName::parse(item.ecosystem, &item.name)
                .or_else(|e| abort(StoreError::corrupt(&format!("quarantine item {id}"), e)))?;
            q.remove(pending_key(&name, &item.version))?;
            Ok(record.id)
        })
    }

    fn entry_for(
        item: &QuarantineItem,
        kind: OverrideKind,
        scope: &ApprovalScope,
        reason: &str,
        expires: Option<DateTime<Utc>>,
        by: &str,
    ) -> Result<OverrideEntry, QuarantineError> {
        let corrupt =
            |detail: String| StoreError::corrupt(&format!("quarantine item {}", item.id), detail);
        let name =
            PackageName::parse(item.ecosystem, &item.name).map_err(|e| corrupt(e.to_string()))?;
        if item.version == ANY_VERSION {
            // A name-level request: approving (or rejecting) it covers the name.
            return match scope {
                ApprovalScope::ThisVersion => Ok(OverrideEntry {
                    kind,
                    name,
                    versions: VersionScope::Any,
                    reason: reason.to_owned(),
                    expires,
                    created_by: by.to_owned(),
                    agent: None,
                }),
                ApprovalScope::Range(text) => Err(QuarantineError::RangeExcludesVersion {
                    range: text.clone(),
                    version: "every version (a name-level request)".to_owned(),
                }),
            };
        }
        let version =
            Version::parse(item.ecosystem, &item.version).map_err(|e| corrupt(e.to_string()))?;
        let versions = match scope {
            ApprovalScope::ThisVersion => VersionScope::Exact(version),
            ApprovalScope::Range(text) => {
                let range =
                    VersionScope::parse(item.ecosystem, text).map_err(QuarantineError::BadRange)?;
                if !range.covers(Some(&version)) {
                    return Err(QuarantineError::RangeExcludesVersion {
                        range: text.clone(),
                        version: item.version.clone(),
                    });
                }
                range
            }
        };
        Ok(OverrideEntry {
            kind,
            name,
            versions,
            reason: reason.to_owned(),
            expires,
            created_by: by.to_owned(),
            agent: None,
        })
    }
}

/// What every backend's queue must do with sightings, holds and requests; run on sled here
/// and on PostgreSQL by `store::pg::tests`.
#[cfg(test)]
pub(crate) fn check_sightings(repo: &dyn super::repo::QuarantineRepo) {
    use chrono::TimeZone;
    let t = |s: i64| Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap();
    let name = PackageName::parse(Ecosystem::Npm, "lodahs").unwrap();
    let v = Version::parse(Ecosystem::Npm, "1.0.0").unwrap();
    let seen = |version: Option<&Version>, who: &str, count: u64, at: i64| Sighting {
        count,
        last_seen: t(at + 10),
        ..Sighting::once(&name, version, who, Vec::new(), &format!("r{at}"), t(at))
    };
    // A batch: the name twice by one agent (coalesced apart), a version, a bad requester.
    let noted = repo
        .note(vec![
            seen(None, "builder", 3, 0),
            seen(None, "builder", 2, 100),
            seen(Some(&v), "anonymous (127.0.0.1)", 1, 5),
            seen(None, " ", 1, 5),
        ])
        .unwrap();
    assert_eq!(noted.len(), 3, "the blank requester is left out: {noted:?}");
    assert!(noted[0].opened && !noted[1].opened && noted[2].opened);
    assert_eq!(noted[0].id, noted[1].id);
    let item = repo.get(noted[0].id).unwrap();
    assert_eq!(item.version, ANY_VERSION);
    assert_eq!(item.request_count, 5);
    assert_eq!((item.first_seen, item.last_seen), (t(0), t(110)));
    assert_eq!(item.requesters.len(), 1);
    let r = &item.requesters[0];
    assert_eq!((r.who.as_str(), r.count), ("builder", 5));
    assert_eq!(r.last_request_id, "r100");
    // An agent's request on the name joins the same item, with its justification; a
    // download hold of the version joins the version's.
    let id = repo
        .request(
            &name,
            None,
            "other",
            "we need it",
            Vec::new(),
            "r200",
            t(200),
        )
        .unwrap();
    assert_eq!(id, noted[0].id);
    let held = repo
        .hold(&name, &v, "builder", Vec::new(), "r201", t(201))
        .unwrap();
    assert_eq!(held, noted[2].id);
    let item = repo.get(id).unwrap();
    assert_eq!(item.request_count, 6);
    assert_eq!(
        item.requesters[1].justification.as_deref(),
        Some("we need it")
    );
    assert!(asked_by(&item, "other") && !asked_by(&item, "anonymous"));
    assert!(asked_by(&repo.get(held).unwrap(), "anonymous"));
    // Rejected: a deny entry for the name with the reviewer's reason; a later sighting
    // opens a new item.
    repo.reject(id, "use lodash", "alice", t(300)).unwrap();
    let item = repo.get(id).unwrap();
    assert_eq!(item.status, QuarantineStatus::Rejected);
    assert_eq!(item.resolution.unwrap().versions, "*");
    let again = repo.note(vec![seen(None, "builder", 1, 400)]).unwrap();
    assert!(again[0].opened && again[0].id != id);
}

#[cfg(test)]
mod tests {
    #[test]
    fn sightings_coalesce_per_version_and_requester_on_sled() {
        let store = super::Store::temporary().unwrap();
        super::check_sightings(&super::QuarantineQueue::new(&store).unwrap());
    }
}
