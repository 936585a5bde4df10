//! Router tests: depfw's npm endpoints driven with `oneshot` against the fixture registry.

use std::sync::Arc;

use crate::support::registry::{self, Fault, FixtureState, TestCheck};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use depfw::diag::Code;
use depfw::policy::Verdict;
use depfw::server::{app, AppState, PolicyState};
use depfw::store::decisions::{HiddenVersion, RecordKind};
use depfw::store::Store;
use serde_json::Value;
use tower::ServiceExt;

const PUBLIC: &str = "http://depfw.test:7878";

pub(crate) struct Setup {
    pub(crate) state: AppState,
    pub(crate) fixture: Arc<FixtureState>,
    pub(crate) store: Store,
    pub(crate) dir: tempfile::TempDir,
}

pub(crate) async fn setup(check: TestCheck, extra: &str) -> Setup {
    let (upstream, fixture) = registry::start_fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let config = registry::config(&upstream, PUBLIC, dir.path(), extra);
    let store = Store::open(dir.path()).unwrap();
    let state = AppState::new(&config, &store, registry::policy(check)).unwrap();
    Setup {
        state,
        fixture,
        store,
        dir,
    }
}

async fn send(state: &AppState, req: Request<Body>) -> Response {
    app(state.clone()).oneshot(req).await.unwrap()
}

pub(crate) async fn get(state: &AppState, path: &str) -> Response {
    send(state, Request::get(path).body(Body::empty()).unwrap()).await
}

pub(crate) async fn body(resp: Response) -> Vec<u8> {
    axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec()
}

pub(crate) async fn json(resp: Response) -> Value {
    serde_json::from_slice(&body(resp).await).unwrap()
}

fn deny(specs: &[&str]) -> TestCheck {
    TestCheck {
        deny: specs.iter().map(|s| s.to_string()).collect(),
        ..TestCheck::default()
    }
}

#[tokio::test]
async fn packument_hides_denied_versions_and_rewrites_tarballs() {
    let s = setup(deny(&["is-odd@3.0.1"]), "").await;
    let resp = get(&s.state, "/npm/is-odd").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(resp.headers()[header::VARY], "Accept, Accept-Encoding");
    assert!(resp.headers().contains_key(header::ETAG));
    let doc = json(resp).await;
    let versions: Vec<&String> = doc["versions"].as_object().unwrap().keys().collect();
    assert_eq!(versions, ["2.0.0", "3.0.0"]);
    assert_eq!(doc["dist-tags"]["latest"], "3.0.0");
    assert!(doc["time"].get("3.0.1").is_none());
    assert!(
        doc["time"].get("3.0.0").is_some(),
        "full packuments keep `time`"
    );
    assert_eq!(
        doc["versions"]["3.0.0"]["dist"]["tarball"],
        format!("{PUBLIC}/npm/is-odd/-/is-odd-3.0.0.tgz")
    );

    let records = s.state.decisions().list(0, 10).unwrap();
    assert_eq!(records.len(), 1, "one summary record per upstream fetch");
    assert_eq!(records[0].kind, RecordKind::Metadata);
    assert_eq!(records[0].hidden[0].version, "3.0.1");
    assert!(records[0].hidden[0].reason.contains("deny-listed"));
    // A cache hit does not record again.
    get(&s.state, "/npm/is-odd").await;
    assert_eq!(s.state.decisions().list(0, 10).unwrap().len(), 1);
    assert_eq!(s.fixture.hits("/is-odd"), 1);
}

/// `server.refused-versions = "yank"`: npm has no yank, so the denied version stays in both
/// forms with `deprecated` set to the reason PyPI yanks with, no dist-tag points at it, and
/// its tarball is still refused without asking upstream.
#[tokio::test]
async fn yank_mode_packument_lists_refused_version_deprecated_with_depfws_reason() {
    let (state, fixture, _dir) = registry::router_setup_with(
        deny(&["is-odd@3.0.1"]),
        PUBLIC,
        "refused-versions = \"yank\"",
    )
    .await;
    let reason = "depfw: is-odd@3.0.1 is denied by policy: deny-listed: is-odd@3.0.1 is on the \
                  test deny list";
    for accept in ["application/json", "application/vnd.npm.install-v1+json"] {
        let req = Request::get("/npm/is-odd")
            .header(header::ACCEPT, accept)
            .body(Body::empty())
            .unwrap();
        let doc = json(send(&state, req).await).await;
        let versions: Vec<&String> = doc["versions"].as_object().unwrap().keys().collect();
        assert_eq!(versions, ["2.0.0", "3.0.0", "3.0.1"], "{accept}");
        assert_eq!(doc["versions"]["3.0.1"]["deprecated"], reason, "{accept}");
        assert!(doc["versions"]["3.0.0"].get("deprecated").is_none());
        assert_eq!(doc["dist-tags"]["latest"], "3.0.0", "{accept}");
    }
    let resp = get(&state, "/npm/is-odd/-/is-odd-3.0.1.tgz").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let text = String::from_utf8(body(resp).await).unwrap();
    assert!(text.contains("is-odd@3.0.1 is denied by policy"), "{text}");
    assert_eq!(fixture.hits("/is-odd/-/is-odd-3.0.1.tgz"), 0);
}

/// A version depfw cannot parse cannot be evaluated: it is hidden (fail closed) and the
/// metadata record says why, with the `unparsable-version` code.
#[tokio::test]
async fn unparsable_versions_are_hidden_with_their_code() {
    let s = setup(TestCheck::default(), "").await;
    s.fixture
        .extra_versions
        .lock()
        .unwrap()
        .push(("is-odd".into(), "3.0.x".into()));
    let doc = json(get(&s.state, "/npm/is-odd").await).await;
    let versions: Vec<&String> = doc["versions"].as_object().unwrap().keys().collect();
    assert_eq!(versions, ["2.0.0", "3.0.0", "3.0.1"]);

    let records = s.state.decisions().list(0, 10).unwrap();
    assert_eq!(records[0].kind, RecordKind::Metadata);
    assert_eq!(records[0].verdict, Verdict::Deny);
    assert_eq!(
        records[0].hidden,
        [HiddenVersion {
            version: "3.0.x".into(),
            verdict: Verdict::Deny,
            reason: format!(
                "{}: depfw cannot evaluate this version",
                Code::UnparsableVersion
            ),
        }]
    );
    assert_eq!(Code::UnparsableVersion.as_str(), "unparsable-version");
}

#[tokio::test]
async fn corgi_is_derived_from_the_full_document() {
    let s = setup(TestCheck::default(), "").await;
    let req = Request::get("/npm/is-number")
        .header(
            header::ACCEPT,
            "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8",
        )
        .body(Body::empty())
        .unwrap();
    let resp = send(&s.state, req).await;
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "application/vnd.npm.install-v1+json"
    );
    let doc = json(resp).await;
    assert!(doc.get("time").is_none());
    assert!(doc["versions"]["7.0.0"].get("scripts").is_none());
    assert!(doc["versions"]["7.0.0"]["dist"]["integrity"].is_string());
}

#[tokio::test]
async fn etag_answers_304_and_changes_with_the_policy() {
    let s = setup(TestCheck::default(), "").await;
    let etag = get(&s.state, "/npm/is-odd").await.headers()[header::ETAG].clone();
    let conditional = |etag| {
        Request::get("/npm/is-odd")
            .header(header::IF_NONE_MATCH, etag)
            .body(Body::empty())
            .unwrap()
    };
    let resp = send(&s.state, conditional(etag.clone())).await;
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    s.state
        .set_policy(registry::policy(deny(&["is-odd@2.0.0"])));
    let resp = send(&s.state, conditional(etag.clone())).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_ne!(resp.headers()[header::ETAG], etag);
}

#[tokio::test]
async fn upstream_is_revalidated_with_its_etag_after_the_ttl() {
    let s = setup(TestCheck::default(), "metadata-ttl-secs = 0").await;
    get(&s.state, "/npm/ms").await;
    let resp = get(&s.state, "/npm/ms").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(s.fixture.hits("/ms"), 2);
    assert_eq!(
        s.fixture
            .not_modified
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(json(resp).await["dist-tags"]["latest"], "2.1.3");
}

/// Past the metadata TTL, a rendering is checked against a new evaluation rather than
/// rendered again: upstream said `304`, no verdict changed, so the same response is served
/// and counted as renewed (warm installs after the TTL re-rendered every document: seconds
/// for a large PyPI page).
#[tokio::test]
async fn an_expired_rendering_is_renewed_when_no_verdict_changed() {
    let s = setup(TestCheck::default(), "metadata-ttl-secs = 0").await;
    let renewed = || async {
        let text = crate::observe::scrape(&s.state).await;
        crate::observe::sample(
            &text,
            "depfw_cache_lookups_total",
            &["cache=\"render\"", "result=\"renewed\""],
        )
    };
    let first = get(&s.state, "/npm/ms").await;
    let etag = first.headers()[header::ETAG].clone();
    let first = body(first).await;
    let before = renewed().await;
    let again = get(&s.state, "/npm/ms").await;
    assert_eq!(again.headers()[header::ETAG], etag);
    assert_eq!(body(again).await, first);
    assert_eq!(
        s.fixture
            .not_modified
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert!(renewed().await >= before + 1.0);
}

/// The reason renderings expire at all: a verdict that only the clock changes. 7.0.0 leaves
/// the 48-hour cooldown two seconds into the test; the next request after the TTL, with the
/// upstream body unchanged (`304`), serves it.
#[tokio::test(flavor = "multi_thread")]
async fn a_verdict_the_clock_changes_is_rendered_anew_after_the_ttl() {
    let s = setup(
        TestCheck {
            cooldown_hours: Some(48),
            ..TestCheck::default()
        },
        "metadata-ttl-secs = 0",
    )
    .await;
    let published = chrono::Utc::now() - chrono::Duration::hours(48) + chrono::Duration::seconds(2);
    s.fixture
        .times
        .lock()
        .unwrap()
        .insert(("is-number".into(), "7.0.0".into()), published);
    let doc = json(get(&s.state, "/npm/is-number").await).await;
    assert_eq!(doc["dist-tags"]["latest"], "6.0.0");
    assert!(doc["versions"].get("7.0.0").is_none());
    while chrono::Utc::now() <= published + chrono::Duration::hours(48) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let doc = json(get(&s.state, "/npm/is-number").await).await;
    assert!(
        s.fixture
            .not_modified
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1,
        "the upstream body did not change"
    );
    assert_eq!(doc["dist-tags"]["latest"], "7.0.0");
    assert!(doc["versions"].get("7.0.0").is_some());
}

#[tokio::test]
async fn cooldown_sees_publish_times_and_repoints_latest() {
    let s = setup(
        TestCheck {
            cooldown_hours: Some(48),
            ..TestCheck::default()
        },
        "",
    )
    .await;
    s.fixture.times.lock().unwrap().insert(
        ("is-number".into(), "7.0.0".into()),
        chrono::Utc::now() - chrono::Duration::hours(1),
    );
    let doc = json(get(&s.state, "/npm/is-number").await).await;
    assert_eq!(doc["dist-tags"]["latest"], "6.0.0");
    assert!(doc["versions"].get("7.0.0").is_none());
}

/// Issue #11: 16 bytes overwritten in a cached file were served with 200. A hit is hashed
/// again; a mismatch evicts, is recorded, and the bytes come from upstream again.
#[tokio::test]
async fn a_tampered_cache_file_is_evicted_recorded_and_fetched_again() {
    let s = setup(TestCheck::default(), "").await;
    let want =
        std::fs::read(registry::fixtures_dir().join("tarballs/is-number-7.0.0.tgz")).unwrap();
    let path = "/npm/is-number/-/is-number-7.0.0.tgz";
    assert_eq!(body(get(&s.state, path).await).await, want);

    let cached: Vec<_> = std::fs::read_dir(s.dir.path().join("artifacts"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .collect();
    assert_eq!(cached.len(), 1, "one cached artifact");
    let mut tampered = std::fs::read(cached[0].path()).unwrap();
    tampered[100..116].copy_from_slice(&[0x41; 16]);
    std::fs::write(cached[0].path(), &tampered).unwrap();

    let again = get(&s.state, path).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(
        body(again).await,
        want,
        "the published bytes, not the tampered ones"
    );
    assert_eq!(s.fixture.hits("/is-number/-/is-number-7.0.0.tgz"), 2);
    let outcomes: Vec<String> = s
        .state
        .decisions()
        .list(0, 10)
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == RecordKind::Artifact)
        .map(|r| r.outcome)
        .collect();
    assert_eq!(outcomes, ["served", "cache-integrity-mismatch", "served"]);
    // Cached again, verified: the third download is a hit.
    assert_eq!(body(get(&s.state, path).await).await, want);
    assert_eq!(s.fixture.hits("/is-number/-/is-number-7.0.0.tgz"), 2);
}

#[tokio::test]
async fn allowed_tarball_is_verified_cached_and_recorded() {
    let s = setup(TestCheck::default(), "").await;
    let want =
        std::fs::read(registry::fixtures_dir().join("tarballs/is-number-7.0.0.tgz")).unwrap();
    let req = Request::get("/npm/is-number/-/is-number-7.0.0.tgz")
        .header(header::ACCEPT_ENCODING, "gzip")
        .header(header::USER_AGENT, "npm/11.19.1 node/v20")
        .header("npm-command", "install")
        .body(Body::empty())
        .unwrap();
    let resp = send(&s.state, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers().get(header::CONTENT_ENCODING).is_none(),
        "tarballs are not re-compressed"
    );
    assert_eq!(body(resp).await, want);
    let again = get(&s.state, "/npm/is-number/-/is-number-7.0.0.tgz").await;
    assert_eq!(body(again).await, want);
    assert_eq!(
        s.fixture.hits("/is-number/-/is-number-7.0.0.tgz"),
        1,
        "second hit from cache"
    );

    let records = s.state.decisions().list(0, 10).unwrap();
    let artifacts: Vec<_> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Artifact)
        .collect();
    assert_eq!(artifacts.len(), 2);
    assert_eq!(artifacts[0].outcome, "served");
    assert_eq!(artifacts[1].outcome, "served-from-cache");
    assert_eq!(artifacts[0].version.as_deref(), Some("7.0.0"));
    assert_eq!(artifacts[0].client.command.as_deref(), Some("install"));
    assert!(artifacts[0]
        .client
        .user_agent
        .as_deref()
        .unwrap()
        .starts_with("npm/"));
    use sha2::Digest as _;
    assert_eq!(
        artifacts[0].sha256.as_deref(),
        Some(hex::encode(sha2::Sha256::digest(&want)).as_str())
    );
    assert!(artifacts[0]
        .upstream_url
        .as_deref()
        .unwrap()
        .ends_with("/is-number/-/is-number-7.0.0.tgz"));
}

#[tokio::test]
async fn json_is_compressed_when_asked() {
    let s = setup(TestCheck::default(), "").await;
    let req = Request::get("/npm/ms")
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    let resp = send(&s.state, req).await;
    assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
}

#[tokio::test]
async fn a_small_document_is_not_compressed_on_every_request() {
    // Under 1 KiB a gzip stream is not worth its setup (~0.5M instructions per response);
    // the rendering keeps no gzip copy, and the compression layer must not make one
    // per request either.
    let s = setup(TestCheck::default(), "").await;
    let corgi = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";
    let plain = send(
        &s.state,
        Request::get("/npm/ms")
            .header(header::ACCEPT, corgi)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let plain = body(plain).await;
    assert!(
        plain.len() < 1024,
        "precondition: a small rendering ({})",
        plain.len()
    );
    for _ in 0..2 {
        let resp = send(
            &s.state,
            Request::get("/npm/ms")
                .header(header::ACCEPT, corgi)
                .header(header::ACCEPT_ENCODING, "gzip, deflate, br")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(body(resp).await, plain);
    }
}

#[tokio::test]
async fn denied_and_quarantined_tarballs_are_refused_with_the_reason() {
    let s = setup(
        TestCheck {
            deny: vec!["is-odd@3.0.1".into()],
            quarantine: vec!["is-odd@3.0.0".into()],
            ..TestCheck::default()
        },
        "",
    )
    .await;
    let resp = get(&s.state, "/npm/is-odd/-/is-odd-3.0.1.tgz").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let err = json(resp).await["error"].as_str().unwrap().to_owned();
    assert!(
        err.starts_with("depfw: is-odd@3.0.1 is denied by policy: deny-listed"),
        "{err}"
    );
    let resp = get(&s.state, "/npm/is-odd/-/is-odd-3.0.0.tgz").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let err = json(resp).await["error"].as_str().unwrap().to_owned();
    assert!(
        err.contains("is-odd@3.0.0 is quarantined, awaiting approval"),
        "{err}"
    );
    assert_eq!(
        s.fixture.hits("/is-odd/-/is-odd-3.0.1.tgz"),
        0,
        "never fetched"
    );
    let refused = s
        .state
        .decisions()
        .list(0, 10)
        .unwrap()
        .into_iter()
        .filter(|r| r.outcome == "refused")
        .count();
    assert_eq!(refused, 2);
    let resp = get(&s.state, "/npm/is-odd/-/is-odd-9.9.9.tgz").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tampered_tarball_is_refused_and_not_cached() {
    let s = setup(TestCheck::default(), "").await;
    s.fixture
        .tamper
        .lock()
        .unwrap()
        .insert("ms-2.1.3.tgz".into());
    let resp = get(&s.state, "/npm/ms/-/ms-2.1.3.tgz").await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let err = json(resp).await["error"].as_str().unwrap().to_owned();
    assert!(err.contains("integrity mismatch"), "{err}");
    let rec = s.state.decisions().list(0, 10).unwrap().pop().unwrap();
    assert_eq!(rec.outcome, "integrity-mismatch");
    s.fixture.tamper.lock().unwrap().clear();
    let resp = get(&s.state, "/npm/ms/-/ms-2.1.3.tgz").await;
    assert_eq!(resp.status(), StatusCode::OK, "bad bytes were not cached");
}

#[tokio::test]
async fn typosquat_name_is_refused_before_any_fetch() {
    let s = setup(
        TestCheck {
            deny_names: vec!["is-nunber".into()],
            ..TestCheck::default()
        },
        "",
    )
    .await;
    let resp = get(&s.state, "/npm/is-nunber").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let err = json(resp).await["error"].as_str().unwrap().to_owned();
    assert!(
        err.contains("is-nunber is denied by policy: possible-typosquat"),
        "{err}"
    );
    // Looked up once: a look-alike's refusal waits for its age (an established package
    // would only warn); upstream has none, so the age is unknown and the name refused.
    assert_eq!(s.fixture.hits("/is-nunber"), 1);
}

#[tokio::test]
async fn upstream_faults_are_clear_gateway_errors() {
    let s = setup(
        TestCheck::default(),
        "timeout-secs = 1\nmax-metadata-bytes = 100000",
    )
    .await;
    let cases = [
        (
            "/is-odd",
            Fault::Status500,
            StatusCode::BAD_GATEWAY,
            "HTTP 500",
        ),
        (
            "/is-number",
            Fault::Slow(3),
            StatusCode::GATEWAY_TIMEOUT,
            "timed out",
        ),
        (
            "/ms",
            Fault::InvalidJson,
            StatusCode::BAD_GATEWAY,
            "packument of ms",
        ),
        (
            "/left-pad",
            Fault::Huge(200_000),
            StatusCode::BAD_GATEWAY,
            "limit",
        ),
        ("/is-even", Fault::Reset, StatusCode::BAD_GATEWAY, "failed"),
    ];
    for (path, fault, ..) in &cases {
        s.fixture
            .faults
            .lock()
            .unwrap()
            .insert(path.to_string(), *fault);
    }
    for (path, _, status, needle) in &cases {
        let resp = get(&s.state, &format!("/npm{path}")).await;
        assert_eq!(resp.status(), *status, "{path}");
        let err = json(resp).await["error"].as_str().unwrap().to_owned();
        assert!(err.contains(needle), "{path}: {err}");
    }
    // Others are still served.
    s.fixture.faults.lock().unwrap().clear();
    assert_eq!(get(&s.state, "/npm/ms").await.status(), StatusCode::OK);
    assert_eq!(
        get(&s.state, "/npm/no-such-package").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn hostile_paths_are_bad_requests() {
    let s = setup(TestCheck::default(), "").await;
    for path in [
        "/npm/%2e%2e/etc/passwd",
        "/npm/is-odd%2f..%2f..",
        "/npm/a%2fb",
        "/npm/is%01odd",
        &format!("/npm/{}", "a".repeat(2000)),
        "/npm/is-odd/-/evil-1.0.0.tgz",
    ] {
        let resp = get(&s.state, path).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(json(resp).await["error"]
            .as_str()
            .unwrap()
            .starts_with("depfw: bad request"));
    }
    assert!(
        s.fixture.hits.lock().unwrap().is_empty(),
        "nothing reached upstream"
    );
}

#[tokio::test]
async fn without_a_policy_every_package_is_503() {
    let s = setup(TestCheck::default(), "").await;
    s.state
        .set_policy(PolicyState::Unavailable("advisory feed is corrupt".into()));
    for path in ["/npm/is-odd", "/npm/is-odd/-/is-odd-3.0.0.tgz", "/healthz"] {
        let resp = get(&s.state, path).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        let err = json(resp).await["error"].as_str().unwrap().to_owned();
        assert!(err.contains("advisory feed is corrupt"), "{err}");
    }
    assert!(s.fixture.hits.lock().unwrap().is_empty());
}

#[tokio::test]
async fn npm_audit_is_an_error_npm_shows_and_ping_answers() {
    let s = setup(TestCheck::default(), "").await;
    let resp = send(
        &s.state,
        Request::post("/npm/-/npm/v1/security/advisories/bulk")
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    // Never an empty all-clear (`{}` made `npm audit` print "found 0 vulnerabilities").
    assert_eq!(resp.status(), StatusCode::NOT_IMPLEMENTED);
    let err = json(resp).await["error"].as_str().unwrap().to_owned();
    assert!(err.contains("depfw audit package-lock.json"), "{err}");
    assert_eq!(get(&s.state, "/npm/-/ping").await.status(), StatusCode::OK);
    assert_eq!(get(&s.state, "/healthz").await.status(), StatusCode::OK);
    // `npm search` is answered honestly, not with a bare 404.
    let resp = get(&s.state, "/npm/-/v1/search?text=lodash&size=20").await;
    assert_eq!(resp.status(), StatusCode::NOT_IMPLEMENTED);
    let err = json(resp).await["error"].as_str().unwrap().to_owned();
    assert!(err.contains("does not proxy npm search"), "{err}");
    assert_eq!(s.fixture.hits("/-/v1/search"), 0);
}

#[tokio::test]
async fn scoped_packages_in_every_path_encoding() {
    let s = setup(deny(&["@isaacs/string-locale-compare@1.1.0"]), "").await;
    for path in [
        "/npm/@isaacs%2fstring-locale-compare",
        "/npm/@isaacs%2Fstring-locale-compare",
        "/npm/@isaacs/string-locale-compare",
    ] {
        let resp = get(&s.state, path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let doc = json(resp).await;
        assert_eq!(doc["dist-tags"]["latest"], "1.0.1", "{path}");
        assert_eq!(
            doc["versions"]["1.0.1"]["dist"]["tarball"],
            format!("{PUBLIC}/npm/@isaacs/string-locale-compare/-/string-locale-compare-1.0.1.tgz")
        );
    }
    // npm's conventional form and yarn berry's encoded form.
    for path in [
        "/npm/@isaacs/string-locale-compare/-/string-locale-compare-1.0.1.tgz",
        "/npm/@isaacs%2fstring-locale-compare/-/string-locale-compare-1.0.1.tgz",
    ] {
        assert_eq!(get(&s.state, path).await.status(), StatusCode::OK, "{path}");
    }
    let resp = get(
        &s.state,
        "/npm/@isaacs%2fstring-locale-compare/-/string-locale-compare-1.1.0.tgz",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn artifact_urls_off_the_upstream_are_not_fetched() {
    let s = setup(TestCheck::default(), "").await;
    s.fixture
        .foreign_tarballs
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let resp = get(&s.state, "/npm/ms/-/ms-2.1.3.tgz").await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let err = json(resp).await["error"].as_str().unwrap().to_owned();
    assert!(err.contains("not on a configured upstream"), "{err}");
}

/// `GET /npm/{name}/{version-or-dist-tag}`: one version's manifest, cut from the filtered
/// packument.
mod version_documents {
    use super::*;

    fn records_for(s: &Setup, version: &str) -> Vec<depfw::store::decisions::DecisionRecord> {
        s.state
            .decisions()
            .list(0, 100)
            .unwrap()
            .into_iter()
            .filter(|r| r.version.as_deref() == Some(version))
            .collect()
    }

    #[tokio::test]
    async fn latest_is_the_newest_allowed_version() {
        let s = setup(deny(&["is-odd@3.0.1"]), "").await;
        let resp = get(&s.state, "/npm/is-odd/latest").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        assert!(resp.headers().contains_key(header::ETAG));
        let doc = json(resp).await;
        assert_eq!(doc["name"], "is-odd");
        assert_eq!(doc["version"], "3.0.0", "upstream latest 3.0.1 is denied");
        assert_eq!(
            doc["dist"]["tarball"],
            format!("{PUBLIC}/npm/is-odd/-/is-odd-3.0.0.tgz")
        );
        assert!(
            doc.get("versions").is_none(),
            "one version, not a packument"
        );
        // Cut from the packument: upstream's own version endpoint is never asked.
        assert_eq!(s.fixture.hits("/is-odd"), 1);
        assert_eq!(s.fixture.hits.lock().unwrap().len(), 1);

        let served = records_for(&s, "3.0.0");
        assert_eq!(served.len(), 1);
        assert_eq!(served[0].kind, RecordKind::Metadata);
        assert_eq!(served[0].outcome, "served");
        // The download that fetched the packument also recorded what it hid.
        let all = s.state.decisions().list(0, 100).unwrap();
        let summary = all.iter().find(|r| r.outcome == "filtered").unwrap();
        assert_eq!(summary.hidden[0].version, "3.0.1");

        // With nothing denied, latest is upstream's.
        let s = setup(TestCheck::default(), "").await;
        let doc = json(get(&s.state, "/npm/is-odd/latest").await).await;
        assert_eq!(doc["version"], "3.0.1");
    }

    #[tokio::test]
    async fn exact_allowed_version_has_its_tarball_rewritten() {
        let s = setup(deny(&["is-odd@3.0.1"]), "").await;
        let resp = get(&s.state, "/npm/is-odd/2.0.0").await;
        assert_eq!(resp.status(), StatusCode::OK);
        let doc = json(resp).await;
        assert_eq!(doc["version"], "2.0.0");
        assert_eq!(doc["dependencies"]["is-number"], "^4.0.0");
        assert_eq!(
            doc["dist"]["tarball"],
            format!("{PUBLIC}/npm/is-odd/-/is-odd-2.0.0.tgz")
        );
        assert!(doc["dist"]["integrity"]
            .as_str()
            .unwrap()
            .starts_with("sha512-"));
        // The rewritten URL is one depfw serves.
        let tarball = get(&s.state, "/npm/is-odd/-/is-odd-2.0.0.tgz").await;
        assert_eq!(tarball.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn exact_refused_version_gets_the_tarball_refusal() {
        let s = setup(
            TestCheck {
                deny: vec!["is-odd@3.0.1".into()],
                quarantine: vec!["is-odd@3.0.0".into()],
                ..TestCheck::default()
            },
            "",
        )
        .await;
        let resp = get(&s.state, "/npm/is-odd/3.0.1").await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let err = json(resp).await["error"].as_str().unwrap().to_owned();
        assert!(
            err.starts_with("depfw: is-odd@3.0.1 is denied by policy: deny-listed"),
            "{err}"
        );
        assert!(err.contains("(request id "), "{err}");
        let refused = records_for(&s, "3.0.1");
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].kind, RecordKind::Metadata);
        assert_eq!(refused[0].outcome, "refused");
        assert!(refused[0]
            .findings
            .iter()
            .any(|f| f.code == Code::DenyListed));

        let resp = get(&s.state, "/npm/is-odd/3.0.0").await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let err = json(resp).await["error"].as_str().unwrap().to_owned();
        assert!(
            err.contains("is-odd@3.0.0 is quarantined, awaiting approval"),
            "{err}"
        );
        let held = s.state.quarantine().list(None).unwrap();
        assert_eq!(held.len(), 1, "held for review like its tarball");
        assert_eq!(s.fixture.hits("/is-odd/-/is-odd-3.0.1.tgz"), 0);
    }

    #[tokio::test]
    async fn unknown_versions_and_tags_are_404() {
        let s = setup(TestCheck::default(), "").await;
        let resp = get(&s.state, "/npm/is-odd/9.9.9").await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let err = json(resp).await["error"].as_str().unwrap().to_owned();
        assert!(err.contains("version not found: 9.9.9"), "{err}");
        let resp = get(&s.state, "/npm/is-odd/beta").await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let err = json(resp).await["error"].as_str().unwrap().to_owned();
        assert!(err.contains("Not Found"), "{err}");
        assert!(err.contains("no dist-tag `beta`"), "{err}");
        let resp = get(&s.state, "/npm/no-such-package/latest").await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);

        // Every version refused: latest is gone from the filtered tags.
        let s = setup(deny(&["is-odd@2.0.0", "is-odd@3.0.0", "is-odd@3.0.1"]), "").await;
        let resp = get(&s.state, "/npm/is-odd/latest").await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let err = json(resp).await["error"].as_str().unwrap().to_owned();
        assert!(
            err.contains("points at 3.0.1, which policy refuses"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn scoped_names_in_both_encodings() {
        let s = setup(deny(&["@isaacs/string-locale-compare@1.1.0"]), "").await;
        for path in [
            "/npm/@isaacs%2fstring-locale-compare/latest",
            "/npm/@isaacs%2Fstring-locale-compare/latest",
            "/npm/@isaacs/string-locale-compare/latest",
            "/npm/@isaacs%2fstring-locale-compare/1.0.1",
            "/npm/@isaacs/string-locale-compare/1.0.1",
        ] {
            let resp = get(&s.state, path).await;
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            let doc = json(resp).await;
            assert_eq!(doc["version"], "1.0.1", "{path}");
            assert_eq!(
                doc["dist"]["tarball"],
                format!(
                    "{PUBLIC}/npm/@isaacs/string-locale-compare/-/string-locale-compare-1.0.1.tgz"
                ),
                "{path}"
            );
        }
        for path in [
            "/npm/@isaacs%2fstring-locale-compare/1.1.0",
            "/npm/@isaacs/string-locale-compare/1.1.0",
        ] {
            let resp = get(&s.state, path).await;
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
        }
    }

    #[tokio::test]
    async fn refused_names_and_hostile_specs_never_reach_upstream() {
        let s = setup(
            TestCheck {
                deny_names: vec!["is-nunber".into()],
                ..TestCheck::default()
            },
            "",
        )
        .await;
        let resp = get(&s.state, "/npm/is-nunber/latest").await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let long = format!("/npm/is-odd/{}", "a".repeat(200));
        for path in [
            "/npm/is-odd/%2e%2e",
            "/npm/is-odd/latest/extra",
            "/npm/is-odd/%5E3.0.0",
            "/npm/is-odd/la%00test",
            "/npm/is-odd/latest%0d%0a",
            "/npm/is-odd/a%2fb",
            long.as_str(),
        ] {
            let resp = get(&s.state, path).await;
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
            assert!(json(resp).await["error"]
                .as_str()
                .unwrap()
                .starts_with("depfw: bad request"));
        }
        // Only the look-alike name's lookup (its refusal waits for its age).
        let hits: Vec<String> = s.fixture.hits.lock().unwrap().keys().cloned().collect();
        assert_eq!(hits, ["/is-nunber"], "nothing else reached upstream");
    }
}

#[tokio::test]
async fn head_on_a_tarball_is_answered_by_the_policy_without_a_download() {
    let s = setup(deny(&["ms@2.1.3"]), "").await;
    let head = |path: &'static str| {
        let state = s.state.clone();
        async move { send(&state, Request::head(path).body(Body::empty()).unwrap()).await }
    };
    let allowed = head("/npm/ms/-/ms-2.1.2.tgz").await;
    assert_eq!(allowed.status(), StatusCode::OK);
    let denied = head("/npm/ms/-/ms-2.1.3.tgz").await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    // The packument was fetched to find the version; no tarball was.
    assert_eq!(s.fixture.hits("/ms/-/ms-2.1.2.tgz"), 0);
    assert_eq!(s.fixture.hits("/ms/-/ms-2.1.3.tgz"), 0);
}

#[tokio::test]
async fn other_methods_on_registry_paths_are_404s_that_name_them() {
    let s = setup(TestCheck::default(), "").await;
    for path in ["/npm/ms", "/pypi/simple/idna/", "/cargo/index/config.json"] {
        let resp = send(&s.state, Request::post(path).body(Body::empty()).unwrap()).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        let text = String::from_utf8(body(resp).await).unwrap();
        assert!(
            text.contains(&format!("POST {path} is not served")),
            "{text}"
        );
    }
    assert_eq!(s.fixture.hits("/ms"), 0);
}

/// Issue #11: a version published a minute ago was quarantined when the packument carried
/// `time`, and served with no finding when it did not.
#[tokio::test]
async fn versions_without_a_publish_time_are_held_not_served_silently() {
    use depfw::config::Config;
    use depfw::policy::reputation::ReputationCheck;
    use depfw::policy::Policy;
    let (upstream, fixture) = registry::start_fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let config = registry::config(&upstream, PUBLIC, dir.path(), "");
    let store = Store::open(dir.path()).unwrap();
    let reputation = ReputationCheck::new(Config::default().policy.reputation);
    let policy = Policy::new(vec![Arc::new(reputation)], Arc::default(), "rep".into());
    let state = AppState::new(&config, &store, PolicyState::Ready(policy)).unwrap();

    // With times: old releases are served.
    let doc = json(get(&state, "/npm/is-number").await).await;
    assert!(doc["versions"].get("7.0.0").is_some(), "{doc}");

    fixture.timeless.lock().unwrap().insert("ms".into());
    let doc = json(get(&state, "/npm/ms").await).await;
    let versions = doc["versions"].as_object().unwrap();
    assert!(
        versions.is_empty(),
        "served without a publish time: {versions:?}"
    );
    let resp = get(&state, "/npm/ms/-/ms-2.1.3.tgz").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let err = json(resp).await["error"].as_str().unwrap().to_owned();
    assert!(err.contains("publish-time-unknown"), "{err}");
    assert!(err.contains("cooldown cannot be checked"), "{err}");
    assert_eq!(fixture.hits("/ms/-/ms-2.1.3.tgz"), 0);
}
