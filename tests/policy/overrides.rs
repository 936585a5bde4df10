//! Run-time allow/deny entries: validation, duplicates, expiry, removal, persistence.

use chrono::{DateTime, Duration, TimeZone, Utc};
use depfw::package::{Ecosystem, PackageName, Version};
use depfw::policy::overrides::{OverrideEntry, OverrideKind, VersionScope};
use depfw::policy::{Decision, PackageCtx, Verdict};
use depfw::store::overrides::{OverrideError, OverrideStatus, OverrideStore};
use depfw::store::Store;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn entry(kind: OverrideKind, eco: Ecosystem, name: &str, versions: &str) -> OverrideEntry {
    OverrideEntry {
        kind,
        name: PackageName::parse(eco, name).unwrap(),
        versions: VersionScope::parse(eco, versions).unwrap(),
        reason: "reviewed, SEC-1".into(),
        expires: None,
        created_by: "admin:alice".into(),
        agent: None,
    }
}

fn verdict(
    store: &OverrideStore,
    eco: Ecosystem,
    name: &str,
    version: &str,
    now: DateTime<Utc>,
) -> Verdict {
    let name = PackageName::parse(eco, name).unwrap();
    let version = Version::parse(eco, version).unwrap();
    let ctx = PackageCtx {
        name: &name,
        version: Some(&version),
        metadata: None,
        now,
    };
    let mut decision = Decision {
        verdict: Verdict::Quarantine,
        findings: Vec::new(),
    };
    store.active(now).unwrap().apply(&ctx, &mut decision);
    decision.verdict
}

fn overrides() -> OverrideStore {
    OverrideStore::new(&Store::temporary().unwrap()).unwrap()
}

#[test]
fn entries_apply_through_active() {
    let store = overrides();
    let allow = store
        .add(
            &entry(OverrideKind::Allow, Ecosystem::PyPI, "Django", ">=4.2,<4.3"),
            t0(),
        )
        .unwrap();
    store
        .add(
            &entry(OverrideKind::Deny, Ecosystem::PyPI, "django", "==4.2.1"),
            t0(),
        )
        .unwrap();
    assert_eq!(
        verdict(&store, Ecosystem::PyPI, "django", "4.2.5", t0()),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&store, Ecosystem::PyPI, "DJANGO", "4.2.1", t0()),
        Verdict::Deny
    );
    assert_eq!(
        verdict(&store, Ecosystem::PyPI, "django", "5.0", t0()),
        Verdict::Quarantine
    );
    let stored = store.get(allow).unwrap();
    assert_eq!(stored.name, "Django");
    assert_eq!(stored.created_by, "admin:alice");
    assert_eq!(stored.created_at, t0());
    assert_eq!(store.active_entries(t0()).unwrap().len(), 2);
}

#[test]
fn bad_input_is_refused_and_nothing_changes() {
    let store = overrides();
    let mut e = entry(OverrideKind::Allow, Ecosystem::Npm, "left-pad", "1.3.0");
    e.reason = "   ".into();
    assert!(matches!(
        store.add(&e, t0()),
        Err(OverrideError::ReasonRequired)
    ));
    let mut e = entry(OverrideKind::Allow, Ecosystem::Npm, "left-pad", "1.3.0");
    e.created_by = String::new();
    assert!(matches!(
        store.add(&e, t0()),
        Err(OverrideError::AuthorRequired)
    ));
    for past in [t0(), t0() - Duration::days(1)] {
        let mut e = entry(OverrideKind::Allow, Ecosystem::Npm, "left-pad", "1.3.0");
        e.expires = Some(past);
        assert!(matches!(
            store.add(&e, t0()),
            Err(OverrideError::ExpiryInPast { .. })
        ));
    }
    assert!(store.list(true, t0()).unwrap().is_empty());
    assert_eq!(store.revision().unwrap(), 0);
}

#[test]
fn duplicates_are_refused_and_the_store_is_unchanged() {
    let store = overrides();
    let first = store
        .add(
            &entry(OverrideKind::Allow, Ecosystem::Npm, "left-pad", "1.3.0"),
            t0(),
        )
        .unwrap();
    let before = store.list(true, t0()).unwrap();
    let revision = store.revision().unwrap();
    // `=1.3.0` is the same scope spelled differently.
    let mut dup = entry(OverrideKind::Allow, Ecosystem::Npm, "left-pad", "=1.3.0");
    dup.reason = "another reason".into();
    match store.add(&dup, t0()) {
        Err(OverrideError::Duplicate { id, .. }) => assert_eq!(id, first),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    assert_eq!(store.list(true, t0()).unwrap(), before);
    assert_eq!(store.revision().unwrap(), revision);
    // A crates.io name spelled with `-` instead of `_` is the same crate.
    store
        .add(
            &entry(OverrideKind::Deny, Ecosystem::CratesIo, "foo_bar", "*"),
            t0(),
        )
        .unwrap();
    assert!(matches!(
        store.add(
            &entry(OverrideKind::Deny, Ecosystem::CratesIo, "Foo-Bar", "*"),
            t0()
        ),
        Err(OverrideError::Duplicate { .. })
    ));
    // Another kind, scope or package is not a duplicate.
    store
        .add(
            &entry(OverrideKind::Deny, Ecosystem::Npm, "left-pad", "1.3.0"),
            t0(),
        )
        .unwrap();
    store
        .add(
            &entry(OverrideKind::Allow, Ecosystem::Npm, "left-pad", "1.3.1"),
            t0(),
        )
        .unwrap();
}

#[test]
fn expired_entries_stop_applying_and_stay_in_history() {
    let store = overrides();
    let mut e = entry(OverrideKind::Allow, Ecosystem::CratesIo, "serde", "*");
    e.expires = Some(t0() + Duration::days(7));
    let id = store.add(&e, t0()).unwrap();
    let later = t0() + Duration::days(8);
    assert_eq!(
        verdict(&store, Ecosystem::CratesIo, "serde", "1.0.0", t0()),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&store, Ecosystem::CratesIo, "serde", "1.0.0", later),
        Verdict::Quarantine
    );
    assert!(store.list(false, later).unwrap().is_empty());
    let history = store.list(true, later).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].id, id);
    assert_eq!(history[0].status(later), OverrideStatus::Expired);
    // Once expired, the same entry may be made again.
    let again = store.add(&e.clone(), later).unwrap_err();
    assert!(matches!(again, OverrideError::ExpiryInPast { .. }));
    e.expires = None;
    let renewed = store.add(&e, later).unwrap();
    assert_ne!(renewed, id);
    assert_eq!(store.list(true, later).unwrap().len(), 2);
}

#[test]
fn removal_is_kept_in_history() {
    let store = overrides();
    let id = store
        .add(
            &entry(OverrideKind::Deny, Ecosystem::Npm, "event-stream", "3.3.6"),
            t0(),
        )
        .unwrap();
    assert_eq!(
        verdict(&store, Ecosystem::Npm, "event-stream", "3.3.6", t0()),
        Verdict::Deny
    );
    let revision = store.revision().unwrap();
    let removed = store
        .remove(id, "admin:bob", t0() + Duration::hours(1))
        .unwrap();
    assert_eq!(removed.removed_by.as_deref(), Some("admin:bob"));
    assert!(store.revision().unwrap() > revision);
    assert_eq!(
        verdict(
            &store,
            Ecosystem::Npm,
            "event-stream",
            "3.3.6",
            t0() + Duration::hours(2)
        ),
        Verdict::Quarantine
    );
    let history = store.list(true, t0()).unwrap();
    assert_eq!(history[0].status(t0()), OverrideStatus::Removed);
    assert!(matches!(
        store.remove(id, "admin:bob", t0()),
        Err(OverrideError::AlreadyRemoved(_))
    ));
    assert!(matches!(
        store.remove(9999, "admin:bob", t0()),
        Err(OverrideError::Unknown(9999))
    ));
    // The removed entry no longer blocks a new one.
    store
        .add(
            &entry(OverrideKind::Deny, Ecosystem::Npm, "event-stream", "3.3.6"),
            t0(),
        )
        .unwrap();
}

#[test]
fn entries_persist_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = Store::open(dir.path()).unwrap();
        OverrideStore::new(&store)
            .unwrap()
            .add(
                &entry(
                    OverrideKind::Allow,
                    Ecosystem::Npm,
                    "@scope/pkg",
                    ">=1.0.0 <2.0.0",
                ),
                t0(),
            )
            .unwrap()
    };
    let store = OverrideStore::new(&Store::open(dir.path()).unwrap()).unwrap();
    assert_eq!(store.get(id).unwrap().versions, ">=1.0.0 <2.0.0");
    assert_eq!(
        verdict(&store, Ecosystem::Npm, "@scope/pkg", "1.4.0", t0()),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&store, Ecosystem::Npm, "@scope/pkg", "2.0.0", t0()),
        Verdict::Quarantine
    );
}

#[test]
fn text_that_breaks_listings_is_refused() {
    let store = overrides();
    let mut e = entry(OverrideKind::Allow, Ecosystem::Npm, "left-pad", "*");
    e.reason = "ok\nforged line".into();
    assert!(matches!(
        store.add(&e, t0()),
        Err(OverrideError::BadText {
            field: "reason",
            ..
        })
    ));
    e.reason = "x".repeat(1001);
    assert!(matches!(
        store.add(&e, t0()),
        Err(OverrideError::BadText { .. })
    ));
    e.reason = "x".repeat(1000);
    let id = store.add(&e, t0()).unwrap();
    assert!(matches!(
        store.remove(id, "bob\r", t0()),
        Err(OverrideError::BadText {
            field: "author",
            ..
        })
    ));
    assert!(store.list(false, t0()).unwrap().len() == 1);
}

#[test]
fn merged_with_adds_the_config_entries() {
    let store = overrides();
    store
        .add(&entry(OverrideKind::Deny, Ecosystem::Npm, "a", "*"), t0())
        .unwrap();
    let config = depfw::policy::overrides::Overrides::new(vec![entry(
        OverrideKind::Allow,
        Ecosystem::Npm,
        "b",
        "*",
    )]);
    let merged = store.merged_with(&config, t0()).unwrap();
    let names: Vec<&str> = merged.entries().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["b", "a"]);
}
