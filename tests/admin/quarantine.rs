//! The quarantine queue: one item per held version, approvals and rejections as overrides.

use chrono::{DateTime, Duration, TimeZone, Utc};
use depfw::diag::Code;
use depfw::package::{Ecosystem, PackageName, Version};
use depfw::policy::{Decision, Finding, PackageCtx, Severity, Verdict};
use depfw::store::overrides::{OverrideError, OverrideStore};
use depfw::store::quarantine::{ApprovalScope, QuarantineError, QuarantineQueue, QuarantineStatus};
use depfw::store::Store;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// A real typosquat from the OSSF malicious-packages data (`@acitons/artifact`, copied
/// into `tests/fixtures/malicious/`).
fn typosquat() -> (PackageName, Vec<Version>) {
    let text = std::fs::read_to_string(crate::support::fixture("malicious/acitons-artifact.json"))
        .unwrap();
    let data: serde_json::Value = serde_json::from_str(&text).unwrap();
    let versions = data["@acitons/artifact"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| Version::parse(Ecosystem::Npm, v.as_str().unwrap()).unwrap())
        .collect::<Vec<_>>();
    assert!(versions.len() >= 2);
    (
        PackageName::parse(Ecosystem::Npm, "@acitons/artifact").unwrap(),
        versions,
    )
}

fn finding(code: Code) -> Finding {
    Finding::new(
        code,
        Severity::High,
        Verdict::Quarantine,
        "one letter away from @actions/artifact".into(),
    )
}

fn verdict(store: &Store, name: &PackageName, version: &Version, now: DateTime<Utc>) -> Verdict {
    let ctx = PackageCtx {
        name,
        version: Some(version),
        metadata: None,
        now,
    };
    let mut decision = Decision {
        verdict: Verdict::Quarantine,
        findings: Vec::new(),
    };
    OverrideStore::new(store)
        .unwrap()
        .active(now)
        .unwrap()
        .apply(&ctx, &mut decision);
    decision.verdict
}

#[test]
fn holds_are_idempotent_per_version_and_track_requesters() {
    let store = Store::temporary().unwrap();
    let queue = QuarantineQueue::new(&store).unwrap();
    let (name, versions) = typosquat();
    let a = queue
        .hold(
            &name,
            &versions[0],
            "agent:claude-1",
            vec![finding(Code::PossibleTyposquat)],
            "req-1",
            t0(),
        )
        .unwrap();
    let later = t0() + Duration::minutes(5);
    let b = queue
        .hold(
            &name,
            &versions[0],
            "agent:claude-1",
            vec![finding(Code::PossibleTyposquat)],
            "req-2",
            later,
        )
        .unwrap();
    let c = queue
        .hold(
            &name,
            &versions[0],
            "client:127.0.0.1",
            Vec::new(),
            "req-3",
            later,
        )
        .unwrap();
    assert_eq!(b, a);
    assert_eq!(c, a);
    let other = queue
        .hold(
            &name,
            &versions[1],
            "agent:claude-1",
            vec![finding(Code::PossibleTyposquat)],
            "req-4",
            t0(),
        )
        .unwrap();
    assert_ne!(other, a);

    let pending = queue.list(Some(QuarantineStatus::Pending)).unwrap();
    assert_eq!(pending.len(), 2);
    let item = queue.get(a).unwrap();
    assert_eq!(item.request_count, 3);
    assert_eq!(item.first_seen, t0());
    assert_eq!(item.last_seen, later);
    assert_eq!(item.reasons, vec![finding(Code::PossibleTyposquat)]);
    assert_eq!(item.requesters.len(), 2);
    assert_eq!(item.requesters[0].who, "agent:claude-1");
    assert_eq!(item.requesters[0].count, 2);
    assert_eq!(item.requesters[0].last_request_id, "req-2");
    assert!(matches!(
        queue.hold(&name, &versions[0], " ", Vec::new(), "req-5", t0()),
        Err(QuarantineError::RequesterRequired)
    ));
}

#[test]
fn pypi_holds_use_the_normalised_name() {
    let queue = QuarantineQueue::new(&Store::temporary().unwrap()).unwrap();
    let v = Version::parse(Ecosystem::PyPI, "1.0").unwrap();
    let a = queue
        .hold(
            &PackageName::parse(Ecosystem::PyPI, "Foo_Bar").unwrap(),
            &v,
            "agent:a",
            Vec::new(),
            "r1",
            t0(),
        )
        .unwrap();
    let b = queue
        .hold(
            &PackageName::parse(Ecosystem::PyPI, "foo.bar").unwrap(),
            &v,
            "agent:b",
            Vec::new(),
            "r2",
            t0(),
        )
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn approval_creates_an_allow_entry_that_applies() {
    let store = Store::temporary().unwrap();
    let queue = QuarantineQueue::new(&store).unwrap();
    let (name, versions) = typosquat();
    let id = queue
        .hold(
            &name,
            &versions[0],
            "agent:a",
            vec![finding(Code::PossibleTyposquat)],
            "r1",
            t0(),
        )
        .unwrap();
    let expires = t0() + Duration::days(30);
    let entry = queue
        .approve(
            id,
            &ApprovalScope::ThisVersion,
            "false positive, SEC-9",
            Some(expires),
            "admin:alice",
            t0(),
        )
        .unwrap();
    assert_eq!(verdict(&store, &name, &versions[0], t0()), Verdict::Allow);
    assert_eq!(
        verdict(&store, &name, &versions[1], t0()),
        Verdict::Quarantine
    );
    // The entry expires on its own.
    assert_eq!(
        verdict(&store, &name, &versions[0], expires),
        Verdict::Quarantine
    );

    let item = queue.get(id).unwrap();
    assert_eq!(item.status, QuarantineStatus::Approved);
    let resolution = item.resolution.unwrap();
    assert_eq!(resolution.override_id, entry);
    assert_eq!(resolution.by, "admin:alice");
    let record = OverrideStore::new(&store).unwrap().get(entry).unwrap();
    assert_eq!(record.quarantine_id, Some(id));
    assert_eq!(record.expires, Some(expires));
    assert!(queue
        .list(Some(QuarantineStatus::Pending))
        .unwrap()
        .is_empty());

    // Approving twice is refused and changes nothing.
    let overrides_before = OverrideStore::new(&store)
        .unwrap()
        .list(true, t0())
        .unwrap();
    assert!(matches!(
        queue.approve(
            id,
            &ApprovalScope::ThisVersion,
            "again",
            None,
            "admin:bob",
            t0()
        ),
        Err(QuarantineError::AlreadyResolved {
            status: QuarantineStatus::Approved,
            ..
        })
    ));
    assert!(matches!(
        queue.reject(id, "changed my mind", "admin:bob", t0()),
        Err(QuarantineError::AlreadyResolved { .. })
    ));
    assert_eq!(
        OverrideStore::new(&store)
            .unwrap()
            .list(true, t0())
            .unwrap(),
        overrides_before
    );
    assert_eq!(queue.get(id).unwrap().resolution.unwrap().by, "admin:alice");

    // A new hold of the same version after resolution opens a new item.
    let reopened = queue
        .hold(&name, &versions[0], "agent:a", Vec::new(), "r9", expires)
        .unwrap();
    assert_ne!(reopened, id);
}

#[test]
fn range_approvals_must_cover_the_held_version() {
    let store = Store::temporary().unwrap();
    let queue = QuarantineQueue::new(&store).unwrap();
    let (name, versions) = typosquat();
    let id = queue
        .hold(&name, &versions[0], "agent:a", Vec::new(), "r1", t0())
        .unwrap();
    for (range, bad) in [
        (">=banana", "BadRange"),
        (">=99.0.0", "RangeExcludesVersion"),
    ] {
        let err = queue
            .approve(
                id,
                &ApprovalScope::Range(range.into()),
                "ok",
                None,
                "admin:a",
                t0(),
            )
            .unwrap_err();
        assert!(format!("{err:?}").starts_with(bad), "{err:?}");
    }
    assert!(matches!(
        queue.approve(
            id,
            &ApprovalScope::ThisVersion,
            "ok",
            Some(t0() - Duration::days(1)),
            "admin:a",
            t0()
        ),
        Err(QuarantineError::Override(
            OverrideError::ExpiryInPast { .. }
        ))
    ));
    assert!(matches!(
        queue.approve(id, &ApprovalScope::ThisVersion, "", None, "admin:a", t0()),
        Err(QuarantineError::Override(OverrideError::ReasonRequired))
    ));
    assert_eq!(queue.get(id).unwrap().status, QuarantineStatus::Pending);
    assert!(OverrideStore::new(&store)
        .unwrap()
        .list(true, t0())
        .unwrap()
        .is_empty());

    let range = format!(">={} <100.0.0", versions[0]);
    queue
        .approve(
            id,
            &ApprovalScope::Range(range),
            "vendored fork",
            None,
            "admin:a",
            t0(),
        )
        .unwrap();
    for v in &versions {
        assert_eq!(verdict(&store, &name, v, t0()), Verdict::Allow, "{v}");
    }
}

#[test]
fn rejection_creates_a_deny_entry() {
    let store = Store::temporary().unwrap();
    let queue = QuarantineQueue::new(&store).unwrap();
    let (name, versions) = typosquat();
    let id = queue
        .hold(&name, &versions[1], "agent:a", Vec::new(), "r1", t0())
        .unwrap();
    let entry = queue.reject(id, "malicious", "admin:alice", t0()).unwrap();
    assert_eq!(
        verdict(&store, &name, &versions[1], t0() + Duration::days(3650)),
        Verdict::Deny
    );
    let item = queue.get(id).unwrap();
    assert_eq!(item.status, QuarantineStatus::Rejected);
    assert_eq!(item.resolution.unwrap().override_id, entry);
    assert!(matches!(
        queue.reject(4242, "x", "admin:a", t0()),
        Err(QuarantineError::Unknown(4242))
    ));
    assert_eq!(queue.list(None).unwrap().len(), 1);
}

#[test]
fn an_approval_blocked_by_an_existing_entry_changes_nothing() {
    let store = Store::temporary().unwrap();
    let queue = QuarantineQueue::new(&store).unwrap();
    let (name, versions) = typosquat();
    let id = queue
        .hold(&name, &versions[0], "agent:a", Vec::new(), "r1", t0())
        .unwrap();
    let overrides = OverrideStore::new(&store).unwrap();
    overrides
        .add(
            &depfw::policy::overrides::OverrideEntry {
                kind: depfw::policy::overrides::OverrideKind::Allow,
                name: name.clone(),
                versions: depfw::policy::overrides::VersionScope::Exact(versions[0].clone()),
                reason: "added by hand".into(),
                expires: None,
                created_by: "admin:bob".into(),
                agent: None,
            },
            t0(),
        )
        .unwrap();
    assert!(matches!(
        queue.approve(id, &ApprovalScope::ThisVersion, "ok", None, "admin:a", t0()),
        Err(QuarantineError::Override(OverrideError::Duplicate { .. }))
    ));
    assert_eq!(queue.get(id).unwrap().status, QuarantineStatus::Pending);
    assert_eq!(overrides.list(true, t0()).unwrap().len(), 1);
}

#[test]
fn the_queue_persists_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (name, versions) = typosquat();
    let id = {
        let store = Store::open(dir.path()).unwrap();
        QuarantineQueue::new(&store)
            .unwrap()
            .hold(
                &name,
                &versions[0],
                "agent:a",
                vec![finding(Code::PossibleTyposquat)],
                "r1",
                t0(),
            )
            .unwrap()
    };
    let store = Store::open(dir.path()).unwrap();
    let queue = QuarantineQueue::new(&store).unwrap();
    assert_eq!(
        queue
            .hold(&name, &versions[0], "agent:b", Vec::new(), "r2", t0())
            .unwrap(),
        id
    );
    assert_eq!(
        queue.get(id).unwrap().reasons,
        vec![finding(Code::PossibleTyposquat)]
    );
}
