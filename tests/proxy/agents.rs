//! Agents on the proxy: the `/a/<token>/` prefix, anonymous access, presets, the circuit
//! breaker, quarantine holds, and approval through the admin API applying at once.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::support::registry::{self, TestCheck};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use depfw::agents::PolicyPreset;
use depfw::config::{AnonymousAccess, Config};
use depfw::diag::Code;
use depfw::policy::{Check, Finding, PackageCtx, Policy, Severity, Verdict};
use depfw::server::agent::REQUEST_ID_HEADER;
use depfw::server::{app, AppState, PolicyState};
use depfw::store::agents::AgentStore;
use depfw::store::decisions::RecordKind;
use depfw::store::quarantine::QuarantineStatus;
use depfw::store::Store;
use serde_json::Value;
use tower::ServiceExt;

const PUBLIC: &str = "http://depfw.test:7878";
const ADMIN_TOKEN: &str = "admin-token-0123456789";

struct Setup {
    state: AppState,
    store: Store,
    config: Config,
    agents: AgentStore,
    dir: tempfile::TempDir,
}

async fn setup(policy: PolicyState, extra: &str, tweak: impl FnOnce(&mut Config)) -> Setup {
    let (upstream, _fixture) = registry::start_fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = registry::config(&upstream, PUBLIC, dir.path(), extra);
    tweak(&mut config);
    let store = Store::open(dir.path()).unwrap();
    let state = AppState::new(&config, &store, policy).unwrap();
    Setup {
        state,
        agents: AgentStore::new(&store).unwrap(),
        store,
        config,
        dir,
    }
}

async fn send(router: Router, req: Request<Body>) -> Response {
    router.oneshot(req).await.unwrap()
}

async fn get(state: &AppState, path: &str) -> Response {
    send(
        app(state.clone()),
        Request::get(path).body(Body::empty()).unwrap(),
    )
    .await
}

async fn text(resp: Response) -> String {
    let b = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8_lossy(&b).into_owned()
}

fn quarantine(specs: &[&str]) -> TestCheck {
    TestCheck {
        quarantine: specs.iter().map(|s| s.to_string()).collect(),
        ..TestCheck::default()
    }
}

/// Warns on listed `name@version`s: what the `strict` preset escalates.
#[derive(Clone)]
struct WarnCheck(Vec<String>);

impl Check for WarnCheck {
    fn name(&self) -> &'static str {
        "test-warn"
    }
    fn evaluate(&self, ctx: &PackageCtx<'_>, findings: &mut Vec<Finding>) {
        let Some(v) = ctx.version else { return };
        if self.0.contains(&format!("{}@{v}", ctx.name)) {
            findings.push(Finding::new(
                Code::Deprecated,
                Severity::Low,
                Verdict::Warn,
                "warned".into(),
            ));
        }
    }
}

/// What the advisories check says of a package with one malicious release: the name alone
/// gets `has-malicious-versions` (a warning), that release `known-malicious`.
#[derive(Clone)]
struct OneMaliciousRelease(&'static str);

impl Check for OneMaliciousRelease {
    fn name(&self) -> &'static str {
        "test-malicious"
    }
    fn evaluate(&self, ctx: &PackageCtx<'_>, findings: &mut Vec<Finding>) {
        let (code, verdict) = match ctx.version {
            None => (Code::HasMaliciousVersions, Verdict::Warn),
            Some(v) if v.to_string() == self.0 => (Code::KnownMalicious, Verdict::Deny),
            Some(_) => return,
        };
        findings.push(Finding::new(
            code,
            Severity::Critical,
            verdict,
            "malicious".into(),
        ));
    }
}

#[tokio::test]
async fn strict_serves_the_clean_versions_of_a_package_that_once_had_a_malicious_one() {
    // `debug` and `chalk` had malicious releases in 2025: a strict agent must still get
    // their clean versions, or `npm install express` fails.
    let policy = PolicyState::Ready(Policy::new(
        vec![Arc::new(OneMaliciousRelease("7.0.0"))],
        Arc::default(),
        "malicious".into(),
    ));
    let s = setup(policy, "", |_| {}).await;
    let (_, strict) = s.agents.add("careful", PolicyPreset::Strict).unwrap();
    let resp = get(
        &s.state,
        &format!("/a/{}/npm/is-number", strict.expose_secret()),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = serde_json::from_str(&text(resp).await).unwrap();
    assert!(doc["versions"].get("7.0.0").is_none(), "the malicious one");
    assert!(doc["versions"].get("6.0.0").is_some(), "a clean one");
}

#[tokio::test]
async fn agent_prefix_keeps_tarballs_attributed_and_records_the_agent() {
    let s = setup(registry::policy(TestCheck::default()), "", |_| {}).await;
    let (_, token) = s.agents.add("builder", PolicyPreset::Default).unwrap();
    let secret = token.expose_secret().to_owned();
    let resp = get(&s.state, &format!("/a/{secret}/npm/is-number")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = serde_json::from_str(&text(resp).await).unwrap();
    let tarball = doc["versions"]["7.0.0"]["dist"]["tarball"]
        .as_str()
        .unwrap();
    assert_eq!(
        tarball,
        format!("{PUBLIC}/a/{secret}/npm/is-number/-/is-number-7.0.0.tgz")
    );

    let path = tarball.strip_prefix(PUBLIC).unwrap();
    let resp = get(&s.state, path).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let id = resp.headers()[REQUEST_ID_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    let records = s.state.decisions().list(0, 10).unwrap();
    let artifact = records
        .iter()
        .find(|r| r.kind == RecordKind::Artifact)
        .unwrap();
    assert_eq!(artifact.client.agent.as_deref(), Some("builder"));
    assert_eq!(artifact.request_id, id);
    assert!(records
        .iter()
        .all(|r| r.client.agent.as_deref() == Some("builder")));

    // Anonymous requests (loopback by default, and no peer here) are served unattributed.
    let resp = get(&s.state, "/npm/is-number").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = serde_json::from_str(&text(resp).await).unwrap();
    assert!(doc["versions"]["7.0.0"]["dist"]["tarball"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{PUBLIC}/npm/")));
}

#[tokio::test]
async fn bad_revoked_and_suspended_tokens_are_refused() {
    let s = setup(registry::policy(TestCheck::default()), "", |_| {}).await;
    let (_, revoked) = s.agents.add("gone", PolicyPreset::Default).unwrap();
    s.agents.revoke("gone").unwrap();
    let (_, paused) = s.agents.add("paused", PolicyPreset::Default).unwrap();
    s.agents
        .suspend("paused", "caught fetching 900 packages")
        .unwrap();

    let resp = get(&s.state, "/a/not-a-token/npm/is-number").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key(REQUEST_ID_HEADER));
    let fake = format!("/a/{}/npm/is-number", "A".repeat(43));
    assert_eq!(
        get(&s.state, &fake).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let resp = get(
        &s.state,
        &format!("/a/{}/npm/is-number", revoked.expose_secret()),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(text(resp).await.contains("revoked"));

    let resp = get(
        &s.state,
        &format!("/a/{}/npm/is-number", paused.expose_secret()),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body = text(resp).await;
    assert!(
        body.contains("suspended") && body.contains("900 packages"),
        "{body}"
    );
    assert!(s.state.decisions().list(0, 10).unwrap().is_empty());
}

fn from_peer(path: &str, peer: &str) -> Request<Body> {
    let mut req = Request::get(path).body(Body::empty()).unwrap();
    let addr: SocketAddr = peer.parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(addr));
    req
}

#[tokio::test]
async fn anonymous_access_follows_the_config() {
    let s = setup(registry::policy(TestCheck::default()), "", |_| {}).await;
    let router = || app(s.state.clone());
    let local = send(router(), from_peer("/npm/is-number", "127.0.0.1:5000")).await;
    assert_eq!(local.status(), StatusCode::OK);
    let local6 = send(router(), from_peer("/npm/is-number", "[::1]:5000")).await;
    assert_eq!(local6.status(), StatusCode::OK);
    let remote = send(router(), from_peer("/npm/is-number", "10.1.2.3:5000")).await;
    assert_eq!(remote.status(), StatusCode::UNAUTHORIZED);
    assert!(text(remote).await.contains("/a/<token>/npm/"));
    let (_, token) = s.agents.add("remote", PolicyPreset::Default).unwrap();
    let path = format!("/a/{}/npm/is-number", token.expose_secret());
    let remote = send(router(), from_peer(&path, "10.1.2.3:5000")).await;
    assert_eq!(remote.status(), StatusCode::OK);

    let never = setup(registry::policy(TestCheck::default()), "", |c| {
        c.server.allow_anonymous = AnonymousAccess::Never
    })
    .await;
    let resp = send(
        app(never.state.clone()),
        from_peer("/npm/is-number", "127.0.0.1:1"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let health = send(
        app(never.state.clone()),
        from_peer("/healthz", "127.0.0.1:1"),
    )
    .await;
    assert_eq!(health.status(), StatusCode::OK);
    // Readiness too: a load balancer in front of an `allow-anonymous = "never"` mirror has no
    // agent token.
    let ready = send(
        app(never.state.clone()),
        from_peer("/readyz", "192.168.1.2:1"),
    )
    .await;
    assert_ne!(ready.status(), StatusCode::UNAUTHORIZED);
    assert!(Config::from_toml("[server]\nallow-anonymous = \"sometimes\"", "t").is_err());
    let always = Config::from_toml("[server]\nallow-anonymous = \"always\"", "t").unwrap();
    assert_eq!(always.server.allow_anonymous, AnonymousAccess::Always);
}

#[tokio::test]
async fn strict_preset_refuses_warned_versions_for_that_agent_only() {
    let policy = PolicyState::Ready(Policy::new(
        vec![Arc::new(WarnCheck(vec!["is-number@7.0.0".into()]))],
        Arc::default(),
        "warn".into(),
    ));
    let s = setup(policy, "", |_| {}).await;
    let (_, strict) = s.agents.add("careful", PolicyPreset::Strict).unwrap();
    let (_, relaxed) = s.agents.add("relaxed", PolicyPreset::Default).unwrap();
    let tarball = "npm/is-number/-/is-number-7.0.0.tgz";

    let doc = text(
        get(
            &s.state,
            &format!("/a/{}/npm/is-number", strict.expose_secret()),
        )
        .await,
    )
    .await;
    let doc: Value = serde_json::from_str(&doc).unwrap();
    assert!(doc["versions"].get("7.0.0").is_none(), "hidden for strict");
    assert!(doc["versions"].get("6.0.0").is_some());
    let resp = get(
        &s.state,
        &format!("/a/{}/{tarball}", strict.expose_secret()),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(text(resp).await.contains("strict"));

    let resp = get(
        &s.state,
        &format!("/a/{}/{tarball}", relaxed.expose_secret()),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn breaker_suspends_an_agent_that_keeps_getting_refused() {
    let check = TestCheck {
        deny: vec!["is-number@7.0.0".into(), "is-number@6.0.0".into()],
        ..TestCheck::default()
    };
    let s = setup(
        registry::policy(check),
        "[agents]\nmax-refusals-per-hour = 2\n",
        |_| {},
    )
    .await;
    let (_, token) = s.agents.add("looper", PolicyPreset::Default).unwrap();
    let path = format!(
        "/a/{}/npm/is-number/-/is-number-7.0.0.tgz",
        token.expose_secret()
    );
    for _ in 0..2 {
        let resp = get(&s.state, &path).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert!(text(resp).await.contains("denied by policy"));
    }
    let resp = get(&s.state, &path).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(text(resp).await.contains("circuit breaker"));
    let agent = s.agents.get("looper").unwrap();
    assert!(agent
        .suspended
        .unwrap()
        .reason
        .contains("3 refused requests"));
    // Every later request is refused, even for an allowed package, until resumed.
    let ok_path = format!("/a/{}/npm/ms", token.expose_secret());
    let resp = get(&s.state, &ok_path).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(text(resp).await.contains("suspended"));
    s.agents.resume("looper").unwrap();
    assert_eq!(get(&s.state, &ok_path).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn quarantined_version_is_held_once_and_approval_applies_at_once() {
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), ADMIN_TOKEN).unwrap();
    let extra = format!(
        "[admin]\ntoken-file = \"{}\"\n",
        token_file.path().display()
    );
    let check = quarantine(&["is-number@7.0.0"]);
    let s = setup(registry::policy(check.clone()), &extra, |_| {}).await;
    let (_, token) = s.agents.add("builder", PolicyPreset::Default).unwrap();
    let admin = registry::admin_rebuilding(&s.state, &s.config, &s.store, check);
    // The mirror and the admin endpoint are apart (`admin.listen`).
    let router = || app(s.state.clone());
    let admin_router = || depfw::admin::standalone(admin.clone());
    let path = format!(
        "/a/{}/npm/is-number/-/is-number-7.0.0.tgz",
        token.expose_secret()
    );

    let mut ids = Vec::new();
    for _ in 0..2 {
        let resp = send(router(), Request::get(&path).body(Body::empty()).unwrap()).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let id = resp.headers()[REQUEST_ID_HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        let body = text(resp).await;
        assert!(body.contains("quarantined, awaiting approval"), "{body}");
        assert!(body.contains(&id), "the request id is in the body: {body}");
        ids.push(id);
    }
    let held = s
        .state
        .quarantine()
        .list(Some(QuarantineStatus::Pending))
        .unwrap();
    assert_eq!(held.len(), 1, "one item for one version");
    assert_eq!(held[0].name, "is-number");
    assert_eq!(held[0].version, "7.0.0");
    assert_eq!(held[0].request_count, 2);
    assert_eq!(held[0].requesters[0].who, "builder");
    assert_eq!(held[0].requesters[0].last_request_id, ids[1]);
    assert_eq!(held[0].reasons[0].code, Code::NewPackage);

    let log_request = || {
        Request::get("/admin/api/log?agent=builder")
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
            .body(Body::empty())
            .unwrap()
    };
    // The mirror's port serves no admin route, even with the admin token.
    let on_mirror = send(router(), log_request()).await;
    assert_eq!(on_mirror.status(), StatusCode::NOT_FOUND);
    let body = text(on_mirror).await;
    assert!(
        body.contains("`[admin] listen`") && !body.contains(ADMIN_TOKEN),
        "{body}"
    );

    // The admin log shows the agent's refusals.
    let log = send(admin_router(), log_request()).await;
    assert_eq!(log.status(), StatusCode::OK);
    let log = text(log).await;
    assert!(log.contains("is-number") && log.contains(&ids[1]), "{log}");

    let approve = Request::post(format!("/admin/api/quarantine/{}/approve", held[0].id))
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"reason":"reviewed the diff"}"#))
        .unwrap();
    let resp = send(admin_router(), approve).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", text(resp).await);

    let resp = send(router(), Request::get(&path).body(Body::empty()).unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK, "approved version now served");
    let want =
        std::fs::read(registry::fixtures_dir().join("tarballs/is-number-7.0.0.tgz")).unwrap();
    let b = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(b.to_vec(), want);
    drop(s.dir);
}

#[tokio::test]
async fn cargo_download_template_keeps_the_agent_prefix() {
    let s = setup(registry::policy(TestCheck::default()), "", |_| {}).await;
    let (_, token) = s.agents.add("rusty", PolicyPreset::Default).unwrap();
    let secret = token.expose_secret();
    let resp = get(&s.state, &format!("/a/{secret}/cargo/index/config.json")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let config: Value = serde_json::from_str(&text(resp).await).unwrap();
    assert_eq!(
        config["dl"],
        format!("{PUBLIC}/a/{secret}/cargo/dl/{{crate}}/{{version}}/{{sha256-checksum}}")
    );
}

/// The render cache keys agent-specific renderings apart: an agent's `/a/<token>/` file
/// URLs are never served to another agent or to anonymous clients, however the requests
/// interleave.
#[tokio::test]
async fn cached_pypi_pages_keep_each_agents_urls() {
    let check = TestCheck::default();
    let s = setup(registry::policy(check.clone()), "", |_| {}).await;
    let (_, one) = s.agents.add("one", PolicyPreset::Default).unwrap();
    let (_, two) = s.agents.add("two", PolicyPreset::Default).unwrap();
    let (one, two) = (one.expose_secret(), two.expose_secret());
    let page = "pypi/simple/six/";
    let order = [
        format!("/{page}"),
        format!("/a/{one}/{page}"),
        format!("/a/{two}/{page}"),
        format!("/a/{one}/{page}"),
        format!("/{page}"),
        format!("/a/{two}/{page}"),
    ];
    for path in &order {
        let html = text(get(&s.state, path).await).await;
        let base = path.strip_suffix(page).unwrap();
        let want = format!("{PUBLIC}{base}pypi/files/");
        let urls: Vec<&str> = html
            .split("href=\"")
            .skip(1)
            .filter_map(|h| h.split('"').next())
            .collect();
        assert_eq!(urls.len(), 2, "{html}");
        assert!(
            urls.iter().all(|u| u.starts_with(&want)),
            "{path}: {urls:?}"
        );
        for other in [one, two] {
            if !base.contains(other) {
                assert!(!html.contains(other), "another agent's token leaked");
            }
        }
    }
    assert_eq!(
        check.version_evaluations(),
        3 * 2,
        "one cold render per base, the rest warm"
    );
}

/// Index files carry no URLs, so agents share a rendering unless their presets differ.
#[tokio::test]
async fn cached_cargo_index_follows_the_agents_preset() {
    let policy = PolicyState::Ready(Policy::new(
        vec![Arc::new(WarnCheck(vec!["itoa@1.0.11".into()]))],
        Arc::default(),
        "warn".into(),
    ));
    let s = setup(policy, "", |_| {}).await;
    let (_, strict) = s.agents.add("careful", PolicyPreset::Strict).unwrap();
    let (_, relaxed) = s.agents.add("relaxed", PolicyPreset::Default).unwrap();
    let index = "cargo/index/it/oa/itoa";
    let versions = |body: String| -> Vec<String> {
        body.lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["vers"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    for (token, want) in [
        (Some(relaxed.expose_secret()), vec!["1.0.10", "1.0.11"]),
        (Some(strict.expose_secret()), vec!["1.0.10"]),
        (None, vec!["1.0.10", "1.0.11"]),
        (Some(relaxed.expose_secret()), vec!["1.0.10", "1.0.11"]),
        (Some(strict.expose_secret()), vec!["1.0.10"]),
    ] {
        let path = match token {
            Some(t) => format!("/a/{t}/{index}"),
            None => format!("/{index}"),
        };
        let resp = get(&s.state, &path).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(versions(text(resp).await), want, "{path}");
    }
}

fn with_auth(path: &str, authorization: &str) -> Request<Body> {
    Request::get(path)
        .header(header::AUTHORIZATION, authorization)
        .body(Body::empty())
        .unwrap()
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Issue #12: an agent named in the `Authorization` header (Bearer, Basic with the token as
/// password, or cargo's bare token) gets URLs without its token, the same for every agent,
/// and its decisions are still recorded under its name.
#[tokio::test]
async fn header_tokens_identify_the_agent_with_token_free_urls() {
    let s = setup(registry::policy(TestCheck::default()), "", |_| {}).await;
    let (_, one) = s.agents.add("one", PolicyPreset::Default).unwrap();
    let (_, two) = s.agents.add("two", PolicyPreset::Default).unwrap();
    let (one, two) = (one.expose_secret(), two.expose_secret());
    let router = || app(s.state.clone());

    let resp = send(
        router(),
        with_auth("/npm/is-number", &format!("Bearer {one}")),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body_one = text(resp).await;
    assert!(!body_one.contains(one), "the token is in the metadata");
    let doc: Value = serde_json::from_str(&body_one).unwrap();
    let tarball = doc["versions"]["7.0.0"]["dist"]["tarball"]
        .as_str()
        .unwrap();
    assert_eq!(
        tarball,
        format!("{PUBLIC}/npm/is-number/-/is-number-7.0.0.tgz")
    );
    let resp = send(router(), with_auth("/npm/is-number", &basic("ci", two))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(text(resp).await, body_one, "two agents, two documents");

    let tarball = tarball.strip_prefix(PUBLIC).unwrap();
    let resp = send(router(), with_auth(tarball, &basic(one, ""))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let records = s.state.decisions().list(0, 10).unwrap();
    let artifact = records
        .iter()
        .find(|r| r.kind == RecordKind::Artifact)
        .unwrap();
    assert_eq!(artifact.client.agent.as_deref(), Some("one"));
    assert!(records
        .iter()
        .all(|r| matches!(r.client.agent.as_deref(), Some("one" | "two"))));

    // cargo sends its registry token bare; once it did, config.json asks for it on every
    // index file and download.
    let resp = send(router(), with_auth("/cargo/index/config.json", one)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let config: Value = serde_json::from_str(&text(resp).await).unwrap();
    assert_eq!(config["auth-required"], true);
    assert_eq!(
        config["dl"],
        format!("{PUBLIC}/cargo/dl/{{crate}}/{{version}}/{{sha256-checksum}}")
    );
    let resp = get(&s.state, "/cargo/index/config.json").await;
    let config: Value = serde_json::from_str(&text(resp).await).unwrap();
    assert_eq!(
        config["auth-required"], false,
        "anonymous cargo needs no token"
    );
}

/// A wrong token in the header is a 401 with a challenge, also where anonymous use is
/// allowed (never a silent anonymous install); so is a missing one under `/auth/`, which is
/// what makes cargo (and pip or uv without netrc) send their credentials.
#[tokio::test]
async fn auth_mount_challenges_and_wrong_header_tokens_are_refused() {
    let s = setup(registry::policy(TestCheck::default()), "", |_| {}).await;
    let (_, token) = s.agents.add("rusty", PolicyPreset::Default).unwrap();
    let token = token.expose_secret();
    let router = || app(s.state.clone());
    let fake = format!("dfw_{}", "A".repeat(43));
    for auth in [
        format!("Bearer {fake}"),
        basic("x", &fake),
        "Bearer not-a-token".to_owned(),
        "Digest x".to_owned(),
        format!("Basic {}", "%%%"),
    ] {
        let resp = send(router(), with_auth("/npm/is-number", &auth)).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth}");
        assert!(
            resp.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Basic realm=\"depfw\""),
            "{auth}"
        );
    }
    // Health probes carry whatever they carry.
    let resp = send(router(), with_auth("/healthz", "Bearer whatever")).await;
    assert_eq!(resp.status(), StatusCode::OK);

    let resp = get(&s.state, "/auth/cargo/index/config.json").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key(header::WWW_AUTHENTICATE));
    assert!(text(resp).await.contains("needs an agent token"));
    let resp = send(router(), with_auth("/auth/cargo/index/config.json", token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let config: Value = serde_json::from_str(&text(resp).await).unwrap();
    assert_eq!(config["auth-required"], true);
    assert_eq!(
        config["dl"],
        format!("{PUBLIC}/auth/cargo/dl/{{crate}}/{{version}}/{{sha256-checksum}}")
    );
    let resp = send(
        router(),
        with_auth("/auth/pypi/simple/idna/", &basic("agent", token)),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page = text(resp).await;
    assert!(
        page.contains(&format!("{PUBLIC}/auth/pypi/files/")),
        "{page}"
    );
    assert!(!page.contains(token));
    assert!(s
        .state
        .decisions()
        .list(0, 10)
        .unwrap()
        .iter()
        .all(|r| r.client.agent.as_deref() == Some("rusty")));

    // Where anonymous use is refused, the refusal challenges too.
    let never = setup(registry::policy(TestCheck::default()), "", |c| {
        c.server.allow_anonymous = AnonymousAccess::Never
    })
    .await;
    let resp = send(
        app(never.state.clone()),
        from_peer("/cargo/index/config.json", "127.0.0.1:1"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key(header::WWW_AUTHENTICATE));
}

/// A PyPI name redirect keeps the agent's prefix: following it must not drop the client
/// onto the anonymous mount.
#[tokio::test]
async fn pypi_name_redirects_stay_under_the_agent_prefix() {
    let s = setup(registry::policy(TestCheck::default()), "", |_| {}).await;
    let (_, token) = s.agents.add("builder", PolicyPreset::Default).unwrap();
    let secret = token.expose_secret().to_owned();
    let resp = get(&s.state, &format!("/a/{secret}/pypi/simple/IDNA/")).await;
    assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        resp.headers()[axum::http::header::LOCATION],
        format!("/a/{secret}/pypi/simple/idna/").as_str()
    );
}
