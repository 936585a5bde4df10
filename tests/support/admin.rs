//! Shared fixture for the admin endpoint tests: a temporary store, the admin listener's
//! router (the admin router nested at /admin), and requests through `oneshot` (no sockets).
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::Utc;
use depfw::admin::{standalone, AdminState, AdminToken, MemoryLog, StaticFeeds, MOUNT};
use depfw::diag::Code;
use depfw::package::{Ecosystem, PackageName, Version};
use depfw::policy::{Finding, Severity, Verdict};
use depfw::store::quarantine::QuarantineQueue;
use depfw::store::Store;
use serde_json::{json, Value};
use tower::ServiceExt;

pub const TOKEN: &str = "test-admin-token-0123456789abcdef";

static NEXT_CLIENT: AtomicUsize = AtomicUsize::new(1);

pub struct Fixture {
    pub app: Router,
    pub store: Store,
    pub changes: Arc<AtomicUsize>,
    pub log: Arc<MemoryLog>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        Self::with_token(Some(AdminToken::new(TOKEN, "test").unwrap()))
    }

    pub fn with_token(token: Option<AdminToken>) -> Fixture {
        Self::with_token_and_config(token, &depfw::config::Config::default())
    }

    /// A fixture whose admin state also takes `config` (public URL, trusted proxies, …).
    pub fn with_token_and_config(
        token: Option<AdminToken>,
        config: &depfw::config::Config,
    ) -> Fixture {
        let store = Store::temporary().unwrap();
        let changes = Arc::new(AtomicUsize::new(0));
        let counter = changes.clone();
        let log = Arc::new(MemoryLog::new(vec![
            json!({"time": "2026-01-01T10:00:00Z", "agent": "bot", "ecosystem": "npm", "package": "left-pad", "version": "1.3.0", "verdict": "allow"}),
            json!({"time": "2026-01-02T10:00:00Z", "agent": "bot", "ecosystem": "npm", "package": "<script>alert('log')</script>", "version": "6.6.6", "verdict": "deny"}),
            json!({"time": "2026-01-03T10:00:00Z", "agent": "other", "ecosystem": "PyPI", "package": "requests", "version": "2.31.0", "verdict": "quarantine"}),
        ]));
        let feeds = Arc::new(StaticFeeds(json!([
            {"name": "osv-npm", "last_sync": "2026-01-01T00:00:00Z", "stale": false},
            {"name": "osv-pypi<b>", "last_sync": "2025-01-01T00:00:00Z", "stale": true}
        ])));
        let state = AdminState::new(&store, token)
            .unwrap()
            .with_config(config)
            .with_log(log.clone())
            .with_feeds(feeds)
            .with_on_change(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            });
        // What `depfw serve` serves on the admin listener.
        let app = standalone(state);
        Fixture {
            app,
            store,
            changes,
            log,
        }
    }

    pub fn changes(&self) -> usize {
        self.changes.load(Ordering::SeqCst)
    }

    /// Sends `request` as the server would, with the client's address: each request from a
    /// new one unless the request already names it (wrong-token throttling counts per
    /// address, and most tests send many wrong tokens on purpose).
    pub async fn request(&self, mut request: Request<Body>) -> Reply {
        if request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_none()
        {
            let n = NEXT_CLIENT.fetch_add(1, Ordering::Relaxed);
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + n as u32);
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
        }
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// An API call with the admin token; `body` is sent as JSON text when given.
    pub async fn api(&self, method: Method, path: &str, body: Option<&str>) -> Reply {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{MOUNT}{path}"))
            .header("authorization", format!("Bearer {TOKEN}"));
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        self.request(
            builder
                .body(Body::from(body.unwrap_or("").to_owned()))
                .unwrap(),
        )
        .await
    }

    /// Holds `name@version` (npm) as if the proxy had quarantined it; returns the item id.
    pub fn hold(&self, name: &str, version: &str, message: &str) -> u64 {
        let queue = QuarantineQueue::new(&self.store).unwrap();
        let finding = Finding::new(
            Code::ReleaseCooldown,
            Severity::Medium,
            Verdict::Quarantine,
            message.into(),
        );
        queue
            .hold(
                &PackageName::parse(Ecosystem::Npm, name).unwrap(),
                &Version::parse(Ecosystem::Npm, version).unwrap(),
                "agent:bot",
                vec![finding],
                "req-1",
                Utc::now(),
            )
            .unwrap()
    }
}

/// A route path with its parameters filled in.
/// `/` is served at `/admin` itself (axum's nesting); `/admin/` redirects there.
pub fn concrete(path: &str) -> String {
    if path == "/" {
        return String::new();
    }
    path.replace("{id}", "1")
        .replace("{name}", "bot")
        .replace("{action}", "suspend")
}
