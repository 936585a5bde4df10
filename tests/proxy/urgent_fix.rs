//! `depfw overrides allow npm is-number 7.0.0 --agent ci-bot --expires 2h`: one version
//! through a cooldown for one agent; every other agent still waits.

use std::sync::Arc;

use crate::support::registry::{self, TestCheck};
use axum::http::StatusCode;
use depfw::agents::PolicyPreset;
use depfw::diag::Code;
use depfw::package::{Ecosystem, PackageName};
use depfw::policy::overrides::{OverrideEntry, OverrideKind, Overrides, VersionScope};
use depfw::policy::Policy;
use depfw::server::{AppState, PolicyState};
use depfw::store::agents::AgentStore;
use depfw::store::decisions::{RecordFilter, RecordKind};
use depfw::store::Store;
use serde_json::Value;

async fn get(state: &AppState, path: &str) -> (StatusCode, String) {
    registry::get_text(state, path).await
}

fn has_seven(doc: &str) -> bool {
    let doc: Value = serde_json::from_str(doc).unwrap();
    doc["versions"].get("7.0.0").is_some()
}

#[tokio::test]
async fn an_agents_urgent_allow_lets_one_version_through_for_that_agent_only() {
    // Every version is in its cooldown (published within the last 100 years).
    let cooldown = TestCheck {
        cooldown_hours: Some(24 * 365 * 100),
        ..TestCheck::default()
    };
    let urgent = OverrideEntry {
        kind: OverrideKind::Allow,
        name: PackageName::parse(Ecosystem::Npm, "is-number").unwrap(),
        versions: VersionScope::parse(Ecosystem::Npm, "7.0.0").unwrap(),
        reason: "hotfix INC-7".into(),
        expires: Some(chrono::Utc::now() + chrono::Duration::hours(2)),
        created_by: "cli:alice".into(),
        agent: Some("ci-bot".into()),
    };
    let policy = PolicyState::Ready(Policy::new(
        vec![Arc::new(cooldown)],
        Arc::new(Overrides::new(vec![urgent])),
        "urgent".into(),
    ));
    let (upstream, _fixture) = registry::start_fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let config = registry::config(&upstream, "http://depfw.test:7878", dir.path(), "");
    let store = Store::open(dir.path()).unwrap();
    let state = AppState::new(&config, &store, policy).unwrap();
    let agents = AgentStore::new(&store).unwrap();
    let (_, bot) = agents.add("ci-bot", PolicyPreset::Default).unwrap();
    let (_, other) = agents.add("other", PolicyPreset::Default).unwrap();
    let bot = format!("/a/{}", bot.expose_secret());
    let other = format!("/a/{}", other.expose_secret());
    let tarball = "npm/is-number/-/is-number-7.0.0.tgz";

    // The same cold packument for both agents: neither gets the other's rendering.
    assert!(has_seven(
        &get(&state, &format!("{bot}/npm/is-number")).await.1
    ));
    assert!(!has_seven(
        &get(&state, &format!("{other}/npm/is-number")).await.1
    ));
    assert_eq!(
        get(&state, &format!("{bot}/{tarball}")).await.0,
        StatusCode::OK
    );
    let (status, body) = get(&state, &format!("{other}/{tarball}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        get(&state, &format!("/{tarball}")).await.0,
        403,
        "anonymous"
    );
    assert_eq!(
        get(
            &state,
            &format!("{bot}/npm/is-number/-/is-number-6.0.0.tgz")
        )
        .await
        .0,
        403,
        "one version only"
    );

    // The decision log says which entry let it through, for whom, why and until when.
    let filter = RecordFilter {
        agent: Some("ci-bot".into()),
        ..RecordFilter::default()
    };
    let records = state.decisions().query(&filter, 50).unwrap();
    let served = records
        .iter()
        .find(|r| r.kind == RecordKind::Artifact && r.outcome == "served")
        .expect("the served download is recorded");
    let allowed = served
        .findings
        .iter()
        .find(|f| f.code == Code::AllowListed)
        .unwrap();
    assert!(
        allowed.message.contains("for agent `ci-bot`")
            && allowed.message.contains("hotfix INC-7")
            && allowed.message.contains("until "),
        "{}",
        allowed.message
    );
    assert!(served
        .findings
        .iter()
        .any(|f| f.code == Code::ReleaseCooldown));
}
