//! Hardening of the mirror: `/readyz` says which part is not ready, every path the mirror
//! does not serve gets a 404 that says what it does serve, downloads resting on SHA-1 are
//! flagged, and cargo downloads go only to the configured hosts.

use axum::http::StatusCode;
use depfw::diag::Code;
use depfw::policy::{Policy, Verdict};
use depfw::server::PolicyState;

use super::router::{body, get, json, setup};
use crate::support::registry::TestCheck;

#[tokio::test]
async fn readyz_names_the_part_that_is_not_ready_and_recovers_with_it() {
    let s = setup(TestCheck::default(), "").await;
    let ready = get(&s.state, "/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(json(ready).await["ready"], true);

    // A store that takes no writes (a full disk): not ready, and it says so; `/healthz`
    // (the process answers) stays ok.
    // The last second's "ready" may still be reused (the probe flushes to disk, so it is
    // rate-limited); the failure shows once that has passed.
    s.store.inject_write_fault(true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let resp = loop {
        let resp = get(&s.state, "/readyz").await;
        if resp.status() != StatusCode::OK || std::time::Instant::now() > deadline {
            break resp;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let report = json(resp).await;
    assert_eq!(report["store"]["ready"], false, "{report}");
    assert!(
        report["store"]["why"]
            .as_str()
            .unwrap()
            .contains("injected write failure"),
        "{report}"
    );
    assert_eq!(report["policy"]["ready"], true, "{report}");
    assert_eq!(get(&s.state, "/healthz").await.status(), StatusCode::OK);
    s.store.inject_write_fault(false);
    assert_eq!(get(&s.state, "/readyz").await.status(), StatusCode::OK);

    // No policy: the policy part says why, feeds are not loaded.
    s.state
        .set_policy(PolicyState::Unavailable("advisory feed is corrupt".into()));
    let resp = get(&s.state, "/readyz").await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let report = json(resp).await;
    assert_eq!(report["store"]["ready"], true, "{report}");
    assert!(report["policy"]["why"]
        .as_str()
        .unwrap()
        .contains("advisory feed is corrupt"));
    assert_eq!(report["feeds"]["ready"], false, "{report}");

    // Fail-open without feeds serves, but is not ready: nothing is checked.
    s.state.set_policy(PolicyState::Ready(Policy::new(
        Vec::new(),
        std::sync::Arc::default(),
        "fail-open".into(),
    )));
    let resp = get(&s.state, "/readyz").await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let report = json(resp).await;
    assert!(report["feeds"]["why"]
        .as_str()
        .unwrap()
        .contains("fail-open"));
}

#[tokio::test]
async fn unknown_routes_say_what_is_served_and_where() {
    let s = setup(TestCheck::default(), "").await;
    let (_, token) = depfw::store::agents::AgentStore::new(&s.store)
        .unwrap()
        .add("bot", depfw::agents::PolicyPreset::Default)
        .unwrap();
    let secret = token.expose_secret();
    let agent_path = format!("/a/{secret}/elsewhere");
    for path in [
        "/",
        "/npm/",
        "/admin",
        "/admin/api/nope",
        "/nope/at/all",
        agent_path.as_str(),
    ] {
        let resp = get(&s.state, path).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        let text = String::from_utf8(body(resp).await).unwrap();
        for served in [
            "http://depfw.test:7878/npm/",
            "/pypi/simple/",
            "/cargo/index/",
            "`[admin] listen`",
        ] {
            assert!(text.contains(served), "{path}: {text}");
        }
        assert!(!text.contains(secret), "{path}: {text}");
    }
    assert!(s.fixture.hits.lock().unwrap().is_empty());
}

/// A tarball whose packument publishes only a SHA-1 `shasum` is served (verified against
/// it) with a `weak-integrity` finding in its decision record; one with sha512 is not.
#[tokio::test]
async fn sha1_only_npm_artifacts_get_a_weak_integrity_finding() {
    let s = setup(TestCheck::default(), "").await;
    let tarball = "/npm/is-number/-/is-number-6.0.0.tgz";
    assert_eq!(get(&s.state, tarball).await.status(), StatusCode::OK);
    // A registry (its own fixture) that publishes no `integrity`.
    let s2 = setup(TestCheck::default(), "").await;
    s2.fixture
        .sha1_only
        .store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(get(&s2.state, tarball).await.status(), StatusCode::OK);
    let weak = |state: &depfw::server::AppState| {
        state
            .decisions()
            .list(0, 100)
            .unwrap()
            .into_iter()
            .filter(|r| r.outcome.starts_with("served"))
            .map(|r| {
                (
                    r.verdict,
                    r.findings.iter().any(|f| f.code == Code::WeakIntegrity),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(weak(&s.state), [(Verdict::Allow, false)]);
    assert_eq!(weak(&s2.state), [(Verdict::Warn, true)]);
}

/// The index's `config.json` may name any download host: depfw fetches crates only from the
/// index's own host or an origin in `server.cargo-download-origins`.
#[tokio::test]
async fn cargo_downloads_only_come_from_configured_hosts() {
    let s = setup(TestCheck::default(), "").await;
    s.fixture
        .foreign_tarballs
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let resp = get(
        &s.state,
        "/cargo/dl/itoa/1.0.10/b1a46d1a171d865aa5f83f92695765caa047a9b4cbae2cbf37dbd613a793fd4c",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let err = String::from_utf8(body(resp).await).unwrap();
    assert!(
        err.contains("http://169.254.169.254") && err.contains("server.cargo-download-origins"),
        "{err}"
    );
    assert_eq!(s.state.decisions().list(0, 10).unwrap().len(), 0);
}

/// Issue #11: an ecosystem without advisory data fails closed on its own (503 saying why),
/// while the others keep serving; `/readyz` names it.
#[tokio::test]
async fn an_ecosystem_without_advisory_data_is_refused_alone() {
    let s = setup(TestCheck::default(), "").await;
    let why = "no advisory data for PyPI: run `depfw feeds sync`";
    let checks: Vec<std::sync::Arc<dyn depfw::policy::Check>> =
        vec![std::sync::Arc::new(TestCheck::default())];
    let policy = Policy::new(checks, std::sync::Arc::default(), "gaps".into())
        .undecidable_for([(depfw::package::Ecosystem::PyPI, why.to_owned())].into());
    s.state.set_policy(PolicyState::Ready(policy));

    for path in [
        "/pypi/simple/idna/",
        "/pypi/files/packages/py3/i/idna/idna-3.10-py3-none-any.whl",
    ] {
        let resp = get(&s.state, path).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        let err = json(resp).await["error"].as_str().unwrap().to_owned();
        assert!(err.contains(why), "{err}");
    }
    assert_eq!(s.fixture.hits("/simple/idna/"), 0, "nothing fetched");
    assert_eq!(get(&s.state, "/npm/ms").await.status(), StatusCode::OK);
    assert_eq!(
        get(&s.state, "/cargo/index/it/oa/itoa").await.status(),
        StatusCode::OK
    );
    let resp = get(&s.state, "/readyz").await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let report = json(resp).await;
    assert!(
        report["feeds"]["why"].as_str().unwrap().contains(why),
        "{report}"
    );
}
