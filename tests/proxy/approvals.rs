//! Issue #12 §3: every quarantine a client meets becomes an approval request. A name held at
//! name level and the hidden version a client would have resolved to are queued (off the
//! request path, coalesced), once per package and version with a count per requester;
//! approving one serves the next request, rejecting one denies with the reviewer's reason;
//! a new request notifies the webhook.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::registry::{self, TestCheck};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use depfw::agents::PolicyPreset;
use depfw::config::Config;
use depfw::server::{app, AppState};
use depfw::store::agents::AgentStore;
use depfw::store::quarantine::{QuarantineItem, QuarantineStatus};
use depfw::store::Store;
use serde_json::Value;
use tower::ServiceExt;

const PUBLIC: &str = "http://depfw.test:7878";
const ADMIN_TOKEN: &str = "admin-token-0123456789";

struct Setup {
    state: AppState,
    admin: depfw::admin::AdminState,
    agents: AgentStore,
    _token_file: tempfile::NamedTempFile,
    _dir: tempfile::TempDir,
}

/// The proxy over the fixture registry with `check`, and its admin endpoint wired as
/// `depfw serve` wires it (a change rebuilds the policy with the store's overrides).
async fn setup(check: TestCheck, extra: &str) -> Setup {
    let (upstream, _fixture) = registry::start_fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), ADMIN_TOKEN).unwrap();
    let extra = format!(
        "[admin]\ntoken-file = \"{}\"\n{extra}",
        token_file.path().display()
    );
    let config: Config = registry::config(&upstream, PUBLIC, dir.path(), &extra);
    let store = Store::open(dir.path()).unwrap();
    let state = AppState::new(&config, &store, registry::policy(check.clone())).unwrap();
    let admin = registry::admin_rebuilding(&state, &config, &store, check);
    Setup {
        agents: AgentStore::new(&store).unwrap(),
        state,
        admin,
        _token_file: token_file,
        _dir: dir,
    }
}

impl Setup {
    fn token(&self, name: &str) -> String {
        let (_, token) = self.agents.add(name, PolicyPreset::Default).unwrap();
        token.expose_secret().to_owned()
    }

    async fn get(&self, path: &str, token: &str) -> Response {
        let req = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        app(self.state.clone()).oneshot(req).await.unwrap()
    }

    fn admin(&self) -> Router {
        depfw::admin::standalone(self.admin.clone())
    }

    async fn admin_call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(format!("/admin/api{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .unwrap();
        let resp = self.admin().oneshot(req).await.unwrap();
        let status = resp.status();
        (
            status,
            serde_json::from_str(&text(resp).await).unwrap_or(Value::Null),
        )
    }

    /// The pending items once the writer has written what was met so far.
    fn pending(&self) -> Vec<QuarantineItem> {
        assert!(self.state.flush_approvals(Duration::from_secs(10)));
        self.state
            .quarantine()
            .list(Some(QuarantineStatus::Pending))
            .unwrap()
    }
}

async fn text(resp: Response) -> String {
    let b = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8_lossy(&b).into_owned()
}

fn held_name(name: &str) -> TestCheck {
    TestCheck {
        quarantine_names: vec![name.to_owned()],
        ..TestCheck::default()
    }
}

fn held_versions(specs: &[&str]) -> TestCheck {
    TestCheck {
        quarantine: specs.iter().map(|s| s.to_string()).collect(),
        ..TestCheck::default()
    }
}

#[tokio::test]
async fn a_name_hold_is_one_request_counted_per_agent_and_approval_allows_the_name() {
    let s = setup(held_name("is-number"), "").await;
    let (builder, other) = (s.token("builder"), s.token("other"));
    for token in [&builder, &builder, &builder, &other] {
        let resp = s.get("/npm/is-number", token).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let body = text(resp).await;
        assert!(body.contains("quarantined, awaiting approval"), "{body}");
    }
    let held = s.pending();
    assert_eq!(held.len(), 1, "one item for the name: {held:?}");
    let item = &held[0];
    assert_eq!(
        (item.name.as_str(), item.version.as_str()),
        ("is-number", "*")
    );
    assert_eq!(item.request_count, 4);
    let count = |who: &str| {
        item.requesters
            .iter()
            .find(|r| r.who == who)
            .map(|r| r.count)
    };
    assert_eq!((count("builder"), count("other")), (Some(3), Some(1)));
    assert!(item.reasons[0].message.contains("typosquat"));
    assert!(item.requesters.iter().all(|r| r.justification.is_none()));

    // The admin API filters the queue and the log by agent.
    let (_, mine) = s.admin_call("GET", "/quarantine?agent=other", None).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let (_, none) = s.admin_call("GET", "/quarantine?agent=nobody", None).await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    let (_, log) = s.admin_call("GET", "/log?agent=other", None).await;
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(entries[0]["agent"], "other");

    // Approving the name-level item allows the name at once, without a restart.
    let path = format!("/quarantine/{}/approve", item.id);
    let (status, reply) = s
        .admin_call("POST", &path, Some(r#"{"reason":"it is ours"}"#))
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["override"]["versions"], "*");
    let resp = s.get("/npm/is-number", &builder).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = s
        .get("/npm/is-number/-/is-number-7.0.0.tgz", &builder)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        s.pending().is_empty(),
        "an allowed name queues nothing more"
    );
}

#[tokio::test]
async fn rejecting_a_request_denies_with_the_reviewers_reason() {
    let s = setup(held_name("is-number"), "").await;
    let token = s.token("builder");
    assert_eq!(
        s.get("/npm/is-number", &token).await.status(),
        StatusCode::FORBIDDEN
    );
    let id = s.pending()[0].id;
    let (status, reply) = s
        .admin_call(
            "POST",
            &format!("/quarantine/{id}/reject"),
            Some(r#"{"reason":"use lodash instead"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["item"]["status"], "rejected");
    let resp = s.get("/npm/is-number", &token).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body = text(resp).await;
    assert!(
        body.contains("denied by policy") && body.contains("use lodash instead"),
        "{body}"
    );
    assert!(s.pending().is_empty(), "a denied name is not queued again");
}

#[tokio::test]
async fn metadata_queues_only_the_hidden_version_a_client_would_resolve_to() {
    // is-odd lists 2.0.0, 3.0.0 and 3.0.1: both 3.x are held, so `latest` would be 3.0.1.
    let s = setup(
        held_versions(&["is-odd@3.0.0", "is-odd@3.0.1", "is-number@6.0.0"]),
        "",
    )
    .await;
    let token = s.token("builder");
    for _ in 0..3 {
        // Cold, then from the render cache: each counts.
        let resp = s.get("/npm/is-odd", &token).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let doc: Value = serde_json::from_str(&text(resp).await).unwrap();
        assert!(doc["versions"].get("3.0.1").is_none());
    }
    // A hidden version older than the newest served one is nobody's resolution.
    assert_eq!(
        s.get("/npm/is-number", &token).await.status(),
        StatusCode::OK
    );
    let held = s.pending();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        (held[0].name.as_str(), held[0].version.as_str()),
        ("is-odd", "3.0.1")
    );
    assert_eq!(held[0].request_count, 3);
    assert_eq!(held[0].requesters[0].who, "builder");

    let path = format!("/quarantine/{}/approve", held[0].id);
    let (status, _) = s
        .admin_call("POST", &path, Some(r#"{"reason":"reviewed"}"#))
        .await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_str(&text(s.get("/npm/is-odd", &token).await).await).unwrap();
    assert!(
        doc["versions"].get("3.0.1").is_some(),
        "approved version listed"
    );
    assert!(
        doc["versions"].get("3.0.0").is_none(),
        "3.0.0 is still held"
    );
    let resp = s.get("/npm/is-odd/-/is-odd-3.0.1.tgz", &token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    // 3.0.0 is below the newest served version now: still nobody's resolution.
    assert!(s.pending().is_empty());
}

/// A local webhook receiver: records each body; answers 500 to the first `fail` posts.
pub(crate) async fn receiver(fail: usize) -> (String, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&got);
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hook = axum::routing::post(move |body: String| {
        let (seen, calls) = (Arc::clone(&seen), Arc::clone(&calls));
        async move {
            if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < fail {
                return StatusCode::INTERNAL_SERVER_ERROR;
            }
            seen.lock()
                .unwrap()
                .push(serde_json::from_str(&body).unwrap());
            StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, Router::new().route("/hook", hook))
            .await
            .unwrap();
    });
    (format!("http://{addr}/hook"), got)
}

pub(crate) async fn wait_for(got: &Mutex<Vec<Value>>, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        if got.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    got.lock().unwrap().clone()
}

#[tokio::test]
async fn a_new_request_notifies_the_webhook_once_without_the_token() {
    let (url, got) = receiver(1).await;
    let extra = format!(
        "[quarantine]\nwebhook-url = \"{url}\"\nwebhook-retries = 2\nwebhook-timeout-secs = 2\n\
         admin-url = \"https://depfw.internal/admin\"\n"
    );
    let s = setup(held_name("is-number"), &extra).await;
    let token = s.token("builder");
    for _ in 0..3 {
        s.get("/npm/is-number", &token).await;
    }
    let item = s.pending().remove(0);
    // The first attempt got a 500: retried after a second.
    let notices = wait_for(&got, 1).await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    let n = &notices[0];
    assert_eq!(n["event"], "quarantine.requested");
    assert_eq!(n["id"], item.id);
    assert_eq!(
        (n["package"].as_str(), n["version"].as_str()),
        (Some("is-number"), Some("*"))
    );
    assert_eq!(n["agent"], "builder");
    assert!(n["reason"].as_str().unwrap().contains("typosquat"), "{n}");
    assert_eq!(n["admin_url"], "https://depfw.internal/admin#quarantine");
    assert!(
        !n.to_string().contains(&token),
        "the token is in the notice"
    );

    // More requests for the same item: no new notice. An agent's written request: one,
    // with its justification.
    s.get("/npm/is-number", &token).await;
    s.pending();
    let req = Request::post("/agent/v1/approvals")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            r#"{"package":"npm is-number","justification":"the build needs it"}"#,
        ))
        .unwrap();
    let resp = app(s.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{}", text(resp).await);
    let notices = wait_for(&got, 2).await;
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert_eq!(notices[1]["justification"], "the build needs it");
    assert_eq!(notices[1]["id"], item.id);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(got.lock().unwrap().len(), 2, "no notice for a repeat");
}

#[tokio::test]
async fn the_last_sightings_are_written_and_the_store_freed_when_the_state_is_dropped() {
    let (state, _fixture, dir) = registry::router_setup(held_name("is-number"), PUBLIC).await;
    let (_, token) = state
        .agents()
        .add("builder", PolicyPreset::Default)
        .unwrap();
    let req = Request::get("/npm/is-number")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", token.expose_secret()),
        )
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = registry::send(&state, req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // No flush: dropping the state writes the writer's window and lets go of the store,
    // as when `depfw serve` stops and the CLI opens the data directory.
    drop(state);
    let store = Store::open(dir.path()).unwrap();
    let queue = depfw::store::quarantine::QuarantineQueue::new(&store).unwrap();
    let held = queue.list(None).unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].version, "*");
}
