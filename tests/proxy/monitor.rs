//! Monitor mode (`policy.mode = "monitor"`, `policy.monitor-agents`,
//! `policy.enforce-agents`): everything decided and recorded, nothing refused, except what
//! is refused in both modes (a deny-list entry).

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::support::registry::{self, TestCheck};
use axum::http::StatusCode;
use depfw::agents::PolicyPreset;
use depfw::diag::Code;
use depfw::policy::overrides::{OverrideEntry, OverrideKind, Overrides, VersionScope};
use depfw::policy::{Check, Enforcement, Finding, Mode, PackageCtx, Policy, Severity, Verdict};
use depfw::server::{AppState, PolicyState};
use depfw::store::agents::AgentStore;
use depfw::store::decisions::{DecisionRecord, RecordFilter, RecordKind};
use depfw::store::Store;
use serde_json::Value;

const PUBLIC: &str = "http://depfw.test:7878";
const TARBALL_7: &str = "npm/is-number/-/is-number-7.0.0.tgz";
const TARBALL_6: &str = "npm/is-number/-/is-number-6.0.0.tgz";

/// Denies `is-number@7.0.0` as known malicious: a policy refusal monitor mode serves.
struct Malicious;

impl Check for Malicious {
    fn name(&self) -> &'static str {
        "test-malicious"
    }
    fn evaluate(&self, ctx: &PackageCtx<'_>, findings: &mut Vec<Finding>) {
        if ctx.name.as_str() == "is-number" && ctx.version.is_some_and(|v| v.to_string() == "7.0.0")
        {
            findings.push(Finding::new(
                Code::KnownMalicious,
                Severity::Critical,
                Verdict::Deny,
                "malicious".into(),
            ));
        }
    }
}

fn enforcement(mode: Mode, monitor: &[&str], enforce: &[&str]) -> Enforcement {
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    Enforcement {
        mode,
        monitor_agents: set(monitor),
        enforce_agents: set(enforce),
    }
}

/// 7.0.0 denied (known malicious), 6.0.0 quarantined, `is-odd` deny-listed by a human.
fn policy(enforcement: Enforcement) -> PolicyState {
    let held = TestCheck {
        quarantine: vec!["is-number@6.0.0".into()],
        ..TestCheck::default()
    };
    let eco = depfw::package::Ecosystem::Npm;
    let deny = OverrideEntry {
        kind: OverrideKind::Deny,
        name: depfw::package::PackageName::parse(eco, "is-odd").unwrap(),
        versions: VersionScope::parse(eco, "*").unwrap(),
        reason: "incident".into(),
        expires: None,
        created_by: "config".into(),
        agent: None,
    };
    let revision = format!("monitor-{enforcement:?}");
    PolicyState::Ready(
        Policy::new(
            vec![Arc::new(Malicious), Arc::new(held)],
            Arc::new(Overrides::new(vec![deny])),
            revision,
        )
        .with_enforcement(enforcement),
    )
}

async fn setup(policy: PolicyState) -> (AppState, Store, tempfile::TempDir) {
    let (upstream, _fixture) = registry::start_fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let config = registry::config(&upstream, PUBLIC, dir.path(), "");
    let store = Store::open(dir.path()).unwrap();
    let state = AppState::new(&config, &store, policy).unwrap();
    (state, store, dir)
}

async fn get(state: &AppState, path: &str) -> (StatusCode, String) {
    registry::get_text(state, path).await
}

fn versions(doc: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(doc).unwrap();
    doc["versions"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

fn would_refuse(state: &AppState) -> Vec<DecisionRecord> {
    let filter = RecordFilter {
        would_refuse: true,
        ..RecordFilter::default()
    };
    state.decisions().query(&filter, 100).unwrap()
}

fn would_refuse_finding(r: &DecisionRecord) -> &Finding {
    r.findings
        .iter()
        .find(|f| f.code == Code::WouldRefuse)
        .unwrap()
}

/// Issue #16: monitor mode serves what enforce mode refuses, and records what it would
/// have refused; a deny-list entry is refused in both modes.
#[tokio::test]
async fn monitor_serves_what_enforce_refuses_and_records_it() {
    let (enforced, _, _d1) = setup(policy(Enforcement::default())).await;
    let (status, doc) = get(&enforced, "/npm/is-number").await;
    assert_eq!(status, StatusCode::OK);
    assert!(versions(&doc).is_empty(), "{doc}");
    assert_eq!(get(&enforced, &format!("/{TARBALL_7}")).await.0, 403);
    assert_eq!(get(&enforced, &format!("/{TARBALL_6}")).await.0, 403);
    assert!(would_refuse(&enforced).is_empty());

    let (monitored, _, _d2) = setup(policy(enforcement(Mode::Monitor, &[], &[]))).await;
    let (status, doc) = get(&monitored, "/npm/is-number").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        versions(&doc),
        ["6.0.0", "7.0.0"],
        "metadata keeps every version"
    );
    let (status, body) = get(&monitored, &format!("/{TARBALL_7}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(get(&monitored, &format!("/{TARBALL_6}")).await.0, 200);
    // Nothing is held for review: nobody was refused.
    assert!(monitored.quarantine().list(None).unwrap().is_empty());
    // A human's deny entry still refuses.
    let (status, body) = get(&monitored, "/npm/is-odd").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let records = would_refuse(&monitored);
    let artifact = |version: &str| {
        records
            .iter()
            .find(|r| r.kind == RecordKind::Artifact && r.version.as_deref() == Some(version))
            .unwrap_or_else(|| panic!("no would-refuse record for {version}: {records:?}"))
    };
    let seven = artifact("7.0.0");
    assert_eq!(seven.outcome, "served");
    assert_eq!(seven.verdict, Verdict::Warn);
    assert_eq!(would_refuse_finding(seven).verdict, Verdict::Deny);
    assert!(seven
        .findings
        .iter()
        .any(|f| f.code == Code::KnownMalicious));
    let six = artifact("6.0.0");
    assert_eq!(would_refuse_finding(six).verdict, Verdict::Quarantine);
    let metadata = records
        .iter()
        .find(|r| r.kind == RecordKind::Metadata)
        .expect("the metadata summary names what it would have hidden");
    let finding = would_refuse_finding(metadata);
    assert_eq!(finding.verdict, Verdict::Deny);
    assert!(
        finding.message.contains("7.0.0 (deny)"),
        "{}",
        finding.message
    );
    assert!(
        finding.message.contains("6.0.0 (quarantine)"),
        "{}",
        finding.message
    );
}

/// Per agent: `policy.monitor-agents` under enforce mode, `policy.enforce-agents` under
/// monitor mode; the render cache never hands one agent's rendering to the other.
#[tokio::test]
async fn monitor_and_enforce_apply_per_agent() {
    let (state, store, _dir) = setup(policy(enforcement(Mode::Enforce, &["trial"], &[]))).await;
    let agents = AgentStore::new(&store).unwrap();
    let (_, trial) = agents.add("trial", PolicyPreset::Default).unwrap();
    let (_, other) = agents.add("other", PolicyPreset::Default).unwrap();
    let trial = format!("/a/{}", trial.expose_secret());
    let other = format!("/a/{}", other.expose_secret());

    let (_, doc) = get(&state, &format!("{other}/npm/is-number")).await;
    assert!(versions(&doc).is_empty(), "{doc}");
    let (_, doc) = get(&state, &format!("{trial}/npm/is-number")).await;
    assert_eq!(versions(&doc), ["6.0.0", "7.0.0"]);
    let (_, doc) = get(&state, &format!("{other}/npm/is-number")).await;
    assert!(
        versions(&doc).is_empty(),
        "cached for trial, not for other: {doc}"
    );
    assert_eq!(get(&state, &format!("{trial}/{TARBALL_7}")).await.0, 200);
    assert_eq!(get(&state, &format!("{other}/{TARBALL_7}")).await.0, 403);
    assert_eq!(
        get(&state, &format!("/{TARBALL_7}")).await.0,
        403,
        "anonymous"
    );
    let records = would_refuse(&state);
    assert!(!records.is_empty());
    assert!(records
        .iter()
        .all(|r| r.client.agent.as_deref() == Some("trial")));

    // Monitor for everyone but the agents already moved over.
    let (state, store, _dir) = setup(policy(enforcement(Mode::Monitor, &[], &["moved"]))).await;
    let agents = AgentStore::new(&store).unwrap();
    let (_, moved) = agents.add("moved", PolicyPreset::Default).unwrap();
    let moved = format!("/a/{}", moved.expose_secret());
    assert_eq!(get(&state, &format!("{moved}/{TARBALL_7}")).await.0, 403);
    assert_eq!(
        get(&state, &format!("/{TARBALL_7}")).await.0,
        200,
        "anonymous"
    );
}

#[test]
fn mode_keys_are_validated() {
    use depfw::config::Config;
    let c = Config::from_toml(
        "[policy]\nmode = \"monitor\"\nenforce-agents = [\"ci-bot\"]\n",
        "t",
    )
    .unwrap();
    assert_eq!(c.policy.enforcement.mode, Mode::Monitor);
    assert!(c.policy.enforcement.enforces(Some("ci-bot")));
    assert!(!c.policy.enforcement.enforces(None));
    assert_eq!(
        Config::default().policy.enforcement.mode,
        Mode::Enforce,
        "enforce by default"
    );
    let bad = Config::from_toml(
        "[policy]\nmode = \"watch\"\nmonitor-agents = [\"a\"]\nenforce-agents = [\"a\"]\n",
        "t",
    )
    .unwrap_err()
    .to_string();
    assert!(bad.contains("policy.mode"), "{bad}");
    assert!(bad.contains("policy.enforce-agents"), "{bad}");
}
