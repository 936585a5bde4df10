//! Issue #11: publish times an index page leaves out are asked for where the protocol has
//! them. A PEP 503 HTML page carries no upload times; depfw completes them from the JSON
//! API (`upstream.pypi.json-api`) on the index's own host, so the cooldown holds the
//! release published an hour ago and serves the old one. When the JSON API fails, nothing
//! passes silently: versions without a time stay held (`publish-time-unknown`), and the
//! next request asks again.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use depfw::config::Config;
use depfw::policy::reputation::ReputationCheck;
use depfw::policy::Policy;
use depfw::server::{AppState, PolicyState};
use depfw::store::Store;
use serde_json::Value;

use crate::router::{body, get as depfw_get};

#[derive(Default)]
struct Upstream {
    json_hits: AtomicUsize,
    json_fails: AtomicBool,
}

const SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

async fn page(State(_): State<Arc<Upstream>>) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html><html><body>\
         <a href=\"/files/demo-1.0.tar.gz#sha256={SHA}\">demo-1.0.tar.gz</a>\
         <a href=\"/files/demo-2.0.tar.gz#sha256={SHA}\">demo-2.0.tar.gz</a>\
         </body></html>"
    ))
}

async fn project_json(State(up): State<Arc<Upstream>>) -> Response {
    up.json_hits.fetch_add(1, Ordering::SeqCst);
    if up.json_fails.load(Ordering::SeqCst) {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let recent = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    axum::Json(serde_json::json!({
        "info": {"name": "demo"},
        "releases": {
            "1.0": [{"upload_time_iso_8601": "2020-01-01T00:00:00Z"}],
            "2.0": [{"upload_time_iso_8601": recent}],
        }
    }))
    .into_response()
}

async fn start_upstream() -> (String, Arc<Upstream>) {
    let up = Arc::new(Upstream::default());
    let app = Router::new()
        .route("/simple/demo/", get(page))
        .route("/pypi/demo/json", get(project_json))
        .with_state(Arc::clone(&up));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, up)
}

fn depfw(base: &str, dir: &std::path::Path, ttl_secs: u64) -> AppState {
    let config = Config::from_toml(
        &format!(
            "[server]\npublic-url = \"http://depfw.test:7878\"\ndata-dir = \"{}\"\n\
             [upstream]\nmetadata-ttl-secs = {ttl_secs}\n\
             [upstream.pypi]\nindex = \"{base}/simple/\"\nfiles = \"{base}/files/\"\n\
             json-api = \"{base}/pypi/\"\n",
            dir.display()
        ),
        "test",
    )
    .unwrap();
    let store = Store::open(dir).unwrap();
    let reputation = ReputationCheck::new(Config::default().policy.reputation);
    let policy = Policy::new(vec![Arc::new(reputation)], Arc::default(), "rep".into());
    AppState::new(&config, &store, PolicyState::Ready(policy)).unwrap()
}

/// The release versions on depfw's PEP 691 JSON page for `demo`.
async fn listed(state: &AppState) -> Vec<String> {
    let resp = depfw_get(
        state,
        "/pypi/simple/demo/?format=application/vnd.pypi.simple.v1%2Bjson",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = serde_json::from_slice(&body(resp).await).unwrap();
    let mut versions: Vec<String> = doc["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    versions.sort();
    versions
}

#[tokio::test(flavor = "multi_thread")]
async fn an_html_index_gets_its_publish_times_from_the_json_api() {
    let (base, up) = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let state = depfw(&base, dir.path(), 300);
    // 1.0 (2020) is served; 2.0 (an hour old) is held by the cooldown, not for want of a time.
    assert_eq!(listed(&state).await, ["1.0"]);
    assert_eq!(up.json_hits.load(Ordering::SeqCst), 1);
    let resp = depfw_get(&state, "/pypi/files/demo-2.0.tar.gz").await;
    let text = String::from_utf8_lossy(&body(resp).await).into_owned();
    assert!(text.contains("release-cooldown"), "{text}");
    assert!(!text.contains("publish-time-unknown"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_json_api_nothing_passes_and_the_next_request_asks_again() {
    let (base, up) = start_upstream().await;
    up.json_fails.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let state = depfw(&base, dir.path(), 300);
    assert!(
        listed(&state).await.is_empty(),
        "served without a publish time"
    );
    let resp = depfw_get(&state, "/pypi/files/demo-1.0.tar.gz").await;
    let text = String::from_utf8_lossy(&body(resp).await).into_owned();
    assert!(text.contains("publish-time-unknown"), "{text}");
    let hits = up.json_hits.load(Ordering::SeqCst);
    assert!(hits >= 1);

    // The JSON API is back: the next request completes the times instead of serving the
    // cached hold until the page changes.
    up.json_fails.store(false, Ordering::SeqCst);
    assert_eq!(listed(&state).await, ["1.0"]);
    assert!(up.json_hits.load(Ordering::SeqCst) > hits);
}

const CKSUM: &str = "1111111111111111111111111111111111111111111111111111111111111111";

async fn index_file() -> String {
    ["1.0.0", "2.0.0"]
        .iter()
        .map(|v| {
            format!(
                "{{\"name\":\"demo\",\"vers\":\"{v}\",\"deps\":[],\"cksum\":\"{CKSUM}\",\
                 \"features\":{{}},\"yanked\":false}}\n"
            )
        })
        .collect()
}

async fn crate_api(State(up): State<Arc<Upstream>>) -> Response {
    up.json_hits.fetch_add(1, Ordering::SeqCst);
    let recent = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    axum::Json(serde_json::json!({
        "crate": {"created_at": "2020-01-01T00:00:00Z"},
        "versions": [
            {"num": "1.0.0", "created_at": "2020-01-01T00:00:00Z", "yanked": false, "license": "MIT"},
            {"num": "2.0.0", "created_at": recent, "yanked": false, "license": "MIT"},
        ]
    }))
    .into_response()
}

/// A third-party cargo registry whose index lines carry no `pubtime`.
async fn start_cargo_registry() -> (String, Arc<Upstream>) {
    let up = Arc::new(Upstream::default());
    let app = Router::new()
        .route("/index/de/mo/demo", get(index_file))
        .route("/api/v1/crates/demo", get(crate_api))
        .with_state(Arc::clone(&up));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, up)
}

fn cargo_depfw(dir: &std::path::Path, cargo_table: &str) -> AppState {
    let config = Config::from_toml(
        &format!(
            "[server]\npublic-url = \"http://depfw.test:7878\"\ndata-dir = \"{}\"\n\
             [upstream.cargo]\n{cargo_table}",
            dir.display()
        ),
        "test",
    )
    .unwrap();
    let store = Store::open(dir).unwrap();
    let reputation = ReputationCheck::new(Config::default().policy.reputation);
    let policy = Policy::new(vec![Arc::new(reputation)], Arc::default(), "rep".into());
    AppState::new(&config, &store, PolicyState::Ready(policy)).unwrap()
}

async fn served_versions(state: &AppState) -> Vec<String> {
    let resp = depfw_get(state, "/cargo/index/de/mo/demo").await;
    assert_eq!(resp.status(), StatusCode::OK);
    String::from_utf8(body(resp).await)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["vers"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cargo_index_without_pubtime_gets_times_from_the_configured_api_only() {
    let (base, up) = start_cargo_registry().await;

    // Without `upstream.cargo.api`: nowhere to ask, every version held, the API never called.
    let dir = tempfile::tempdir().unwrap();
    let state = cargo_depfw(dir.path(), &format!("index = \"{base}/index/\"\n"));
    assert!(served_versions(&state).await.is_empty());
    assert_eq!(up.json_hits.load(Ordering::SeqCst), 0);

    // With it: 1.0.0 (2020) is served, 2.0.0 (an hour old) held by the cooldown.
    let dir = tempfile::tempdir().unwrap();
    let state = cargo_depfw(
        dir.path(),
        &format!("index = \"{base}/index/\"\napi = \"{base}/\"\n"),
    );
    assert_eq!(served_versions(&state).await, ["1.0.0"]);
    assert_eq!(up.json_hits.load(Ordering::SeqCst), 1);
}
