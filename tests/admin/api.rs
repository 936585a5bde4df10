//! The admin JSON API: authentication on every route, each operation, bad input refused
//! with nothing changed, the OpenAPI document in sync with the router, and tokens kept out
//! of logs and responses.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::support::admin::{concrete, Fixture, TOKEN};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use depfw::admin::{routes, Access, MOUNT};
use depfw::store::agents::AgentStore;
use depfw::store::overrides::OverrideStore;
use depfw::store::quarantine::{QuarantineQueue, QuarantineStatus};

fn overrides_count(f: &Fixture) -> usize {
    OverrideStore::new(&f.store)
        .unwrap()
        .list(true, chrono::Utc::now())
        .unwrap()
        .len()
}

#[tokio::test]
async fn every_api_route_refuses_without_the_right_token() {
    let f = Fixture::new();
    let item = f.hold("left-pad", "1.3.0", "too new");
    let (_, agent_token) = AgentStore::new(&f.store)
        .unwrap()
        .add("bot", Default::default())
        .unwrap();
    let api: Vec<_> = routes()
        .into_iter()
        .filter(|r| r.access == Access::Token)
        .collect();
    assert!(api.len() >= 15, "{api:?}");
    for route in &api {
        let uri = format!("{MOUNT}{}", concrete(route.path));
        for auth in [
            None,
            Some("Bearer wrong-token-wrong-token".to_owned()),
            Some(format!("Bearer {}", agent_token.expose_secret())),
            Some(format!("Basic {TOKEN}")),
            Some(format!("Bearer {TOKEN}x")),
        ] {
            let mut req = Request::builder()
                .method(route.method.clone())
                .uri(&uri)
                .header("content-type", "application/json");
            if let Some(auth) = &auth {
                req = req.header("authorization", auth);
            }
            let body =
                r#"{"reason":"r","scope":"version","kind":"allow","ecosystem":"npm","name":"x"}"#;
            let reply = f.request(req.body(Body::from(body)).unwrap()).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{} {uri} with {auth:?}",
                route.method
            );
            assert!(reply.json()["error"].as_str().unwrap().contains("token"));
        }
    }
    // Nothing changed.
    assert_eq!(overrides_count(&f), 0);
    let queue = QuarantineQueue::new(&f.store).unwrap();
    assert_eq!(queue.get(item).unwrap().status, QuarantineStatus::Pending);
    let agent = AgentStore::new(&f.store).unwrap().get("bot").unwrap();
    assert!(agent.is_active() && agent.rotated.is_none());
    assert_eq!(f.changes(), 0);
}

/// Wrong bearer tokens count per address, like the page's sign-in; a request without any
/// token is a client that does not know the API yet, not a guess. The right token always
/// passes: wrong tokens from the admin's own address cannot lock the admin out.
#[tokio::test]
async fn wrong_bearer_tokens_from_one_address_wait_and_the_right_one_passes() {
    let f = Fixture::new();
    let call = |auth: Option<String>| {
        let mut req = Request::builder().uri(format!("{MOUNT}/api/overrides"));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let mut req = req.body(Body::empty()).unwrap();
        let peer: std::net::SocketAddr = "[2001:db8:7:7::1]:443".parse().unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        req
    };
    for _ in 0..10 {
        assert_eq!(f.request(call(None)).await.status, StatusCode::UNAUTHORIZED);
    }
    for i in 0..6 {
        let reply = f
            .request(call(Some(format!("Bearer wrong-{i}-wrong-wrong"))))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let waiting = f
        .request(call(Some("Bearer wrong-6-wrong-wrong".into())))
        .await;
    assert_eq!(waiting.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(waiting.headers["retry-after"], "1");
    assert!(waiting.json()["error"]
        .as_str()
        .unwrap()
        .contains("too many wrong admin tokens"));
    // While the address waits, the right token is taken at once and resets the count.
    let right = f.request(call(Some(format!("Bearer {TOKEN}")))).await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.body);
    let again = f
        .request(call(Some("Bearer wrong-again-wrong-again".into())))
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
}

/// Behind a trusted reverse proxy, wrong tokens count against the client the proxy names
/// in `X-Forwarded-For`: one guesser does not make every admin wait.
#[tokio::test]
async fn behind_a_trusted_proxy_each_client_is_counted_apart() {
    let config =
        depfw::config::Config::from_toml("[admin]\ntrusted-proxies = [\"10.1.1.1\"]\n", "t.toml")
            .unwrap();
    let f = Fixture::with_token_and_config(
        Some(depfw::admin::AdminToken::new(TOKEN, "test").unwrap()),
        &config,
    );
    let call = |client: &str, token: &str| {
        let mut req = Request::builder()
            .uri(format!("{MOUNT}/api/overrides"))
            .header("authorization", format!("Bearer {token}"))
            .header("x-forwarded-for", client)
            .body(Body::empty())
            .unwrap();
        let proxy: std::net::SocketAddr = "10.1.1.1:9000".parse().unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(proxy));
        req
    };
    for i in 0..7 {
        f.request(call("203.0.113.66", &format!("wrong-{i}-wrong-wrong")))
            .await;
    }
    let guesser = f.request(call("203.0.113.66", "wrong-8-wrong-wrong")).await;
    assert_eq!(guesser.status, StatusCode::TOO_MANY_REQUESTS);
    let admin = f.request(call("198.51.100.20", TOKEN)).await;
    assert_eq!(admin.status, StatusCode::OK, "{}", admin.body);
}

#[tokio::test]
async fn without_an_admin_token_every_route_is_off() {
    let f = Fixture::with_token(None);
    f.hold("left-pad", "1.3.0", "too new");
    for route in routes() {
        let uri = format!("{MOUNT}{}", concrete(route.path));
        let req = Request::builder()
            .method(route.method.clone())
            .uri(&uri)
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap();
        let reply = f.request(req).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{uri}");
        assert!(reply.body.contains("DEPFW_ADMIN_TOKEN"), "{}", reply.body);
        assert!(!reply.body.contains("left-pad"));
    }
}

#[tokio::test]
async fn openapi_document_lists_exactly_the_api_routes() {
    let f = Fixture::new();
    let reply = f.api(Method::GET, "/api/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let served: BTreeSet<_> = routes()
        .into_iter()
        .filter(|r| r.access == Access::Token)
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, served);
}

#[tokio::test]
async fn approve_and_reject_quarantined_versions() {
    let f = Fixture::new();
    let a = f.hold("left-pad", "1.3.0", "too new");
    let b = f.hold("lodahs", "1.0.0", "typosquat of lodash");
    let list = f.api(Method::GET, "/api/quarantine", None).await.json();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    // Filtered by the agent that asked.
    let mine = f
        .api(Method::GET, "/api/quarantine?agent=agent:bot", None)
        .await
        .json();
    assert_eq!(mine["items"].as_array().unwrap().len(), 2);
    let none = f
        .api(Method::GET, "/api/quarantine?agent=other&status=all", None)
        .await
        .json();
    assert_eq!(none["items"].as_array().unwrap().len(), 0, "{none}");

    // A range that misses the held version is refused.
    let path = format!("/api/quarantine/{a}/approve");
    let reply = f
        .api(
            Method::POST,
            &path,
            Some(r#"{"scope": ">=2.0.0", "reason": "ok"}"#),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(f.changes(), 0);

    let reply = f
        .api(
            Method::POST,
            &path,
            Some(r#"{"scope": ">=1.3.0 <2.0.0", "reason": "reviewed", "expires": "2999-01-01"}"#),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["item"]["status"], "approved");
    assert_eq!(body["override"]["kind"], "allow");
    assert_eq!(body["override"]["versions"], ">=1.3.0 <2.0.0");
    assert_eq!(body["override"]["created_by"], "admin");
    assert_eq!(f.changes(), 1);

    // Twice is a conflict; nothing more is created.
    let again = f.api(Method::POST, &path, Some(r#"{"reason": "x"}"#)).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(overrides_count(&f), 1);

    let reply = f
        .api(
            Method::POST,
            &format!("/api/quarantine/{b}/reject"),
            Some(r#"{"reason": "typosquat"}"#),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["override"]["kind"], "deny");
    assert_eq!(f.changes(), 2);

    let pending = f.api(Method::GET, "/api/quarantine", None).await.json();
    assert!(pending["items"].as_array().unwrap().is_empty());
    let all = f
        .api(Method::GET, "/api/quarantine?status=all", None)
        .await
        .json();
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let rejected = f
        .api(Method::GET, "/api/quarantine?status=rejected", None)
        .await
        .json();
    assert_eq!(rejected["items"][0]["name"], "lodahs");
    for bad in ["/api/quarantine?status=maybe", "/api/quarantine?colour=red"] {
        assert_eq!(
            f.api(Method::GET, bad, None).await.status,
            StatusCode::BAD_REQUEST
        );
    }
    let unknown = f
        .api(
            Method::POST,
            "/api/quarantine/999/reject",
            Some(r#"{"reason": "x"}"#),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let not_a_number = f
        .api(
            Method::POST,
            "/api/quarantine/abc/reject",
            Some(r#"{"reason": "x"}"#),
        )
        .await;
    assert_eq!(not_a_number.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn overrides_add_list_remove() {
    let f = Fixture::new();
    let reply = f
        .api(
            Method::POST,
            "/api/overrides",
            Some(r#"{"kind": "deny", "ecosystem": "pypi", "name": "Requests", "versions": "==2.31.0", "reason": "incident 42"}"#),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let entry = reply.json();
    assert_eq!(entry["status"], "active");
    assert_eq!(entry["created_by"], "admin");
    let id = entry["id"].as_u64().unwrap();
    assert_eq!(f.changes(), 1);

    // The same entry again (PEP 503 spelling differs) is a duplicate.
    let dup = f
        .api(
            Method::POST,
            "/api/overrides",
            Some(r#"{"kind": "deny", "ecosystem": "PyPI", "name": "requests", "versions": "==2.31.0", "reason": "again"}"#),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.body);
    assert!(dup.json()["error"]
        .as_str()
        .unwrap()
        .contains("already exists"));

    let list = f.api(Method::GET, "/api/overrides", None).await.json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    let removed = f
        .api(Method::DELETE, &format!("/api/overrides/{id}"), None)
        .await;
    assert_eq!(removed.status, StatusCode::OK);
    assert_eq!(removed.json()["status"], "removed");
    assert_eq!(removed.json()["removed_by"], "admin");
    assert_eq!(f.changes(), 2);
    let again = f
        .api(Method::DELETE, &format!("/api/overrides/{id}"), None)
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(
        f.api(Method::DELETE, "/api/overrides/999", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let active = f.api(Method::GET, "/api/overrides", None).await.json();
    assert!(active["items"].as_array().unwrap().is_empty());
    let history = f
        .api(Method::GET, "/api/overrides?all=true", None)
        .await
        .json();
    assert_eq!(history["items"].as_array().unwrap().len(), 1);
    assert_eq!(f.changes(), 2);
}

#[tokio::test]
async fn bad_override_input_is_400_and_changes_nothing() {
    let f = Fixture::new();
    let good = r#"{"kind": "allow", "ecosystem": "npm", "name": "left-pad", "reason": "ok"}"#;
    let big = format!(
        r#"{{"kind": "allow", "ecosystem": "npm", "name": "left-pad", "reason": "{}"}}"#,
        "x".repeat(100_000)
    );
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "malformed",
            r#"{"kind": "allow","#.into(),
            StatusCode::BAD_REQUEST,
            "invalid JSON",
        ),
        (
            "not an object",
            "[1, 2]".into(),
            StatusCode::BAD_REQUEST,
            "invalid JSON",
        ),
        (
            "unknown field",
            good.replace("\"reason\"", "\"by\": \"mallory\", \"reason\""),
            StatusCode::BAD_REQUEST,
            "unknown field `by`",
        ),
        (
            "missing field",
            r#"{"kind": "allow", "ecosystem": "npm", "name": "x"}"#.into(),
            StatusCode::BAD_REQUEST,
            "reason",
        ),
        (
            "bad kind",
            good.replace("allow", "maybe"),
            StatusCode::BAD_REQUEST,
            "maybe",
        ),
        (
            "bad ecosystem",
            good.replace("\"npm\"", "\"maven\""),
            StatusCode::BAD_REQUEST,
            "ecosystem",
        ),
        (
            "bad name",
            good.replace("left-pad", "../evil"),
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            "bad range",
            good.replace("\"reason\"", "\"versions\": \">=banana\", \"reason\""),
            StatusCode::BAD_REQUEST,
            "versions",
        ),
        (
            "impossible date",
            good.replace("\"reason\"", "\"expires\": \"2026-02-30\", \"reason\""),
            StatusCode::BAD_REQUEST,
            "expires",
        ),
        (
            "past expiry",
            good.replace("\"reason\"", "\"expires\": \"2001-01-01\", \"reason\""),
            StatusCode::BAD_REQUEST,
            "not in the future",
        ),
        (
            "empty reason",
            good.replace("\"ok\"", "\"  \""),
            StatusCode::BAD_REQUEST,
            "reason",
        ),
        (
            "multi-line reason",
            good.replace("\"ok\"", "\"a\\nb\""),
            StatusCode::BAD_REQUEST,
            "control character",
        ),
        (
            "too large",
            big,
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than",
        ),
    ];
    for (what, body, status, needle) in cases {
        let reply = f.api(Method::POST, "/api/overrides", Some(&body)).await;
        assert_eq!(reply.status, status, "{what}: {}", reply.body);
        let message = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(message.contains(needle), "{what}: {message}");
        assert_eq!(overrides_count(&f), 0, "{what}");
    }
    // No JSON content type.
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{MOUNT}/api/overrides"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::from(good))
        .unwrap();
    let reply = f.request(req).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.json()["error"]
        .as_str()
        .unwrap()
        .contains("Content-Type"));
    assert_eq!(overrides_count(&f), 0);
    assert_eq!(f.changes(), 0);

    // Approvals refuse bad input too, and the item stays pending.
    let item = f.hold("left-pad", "1.3.0", "too new");
    let path = format!("/api/quarantine/{item}/approve");
    for body in [
        r#"{"reason": "ok", "expires": "yesterday"}"#,
        r#"{"reason": "ok", "expires": "2000-01-01"}"#,
        r#"{"reason": "ok", "scope": "not a range"}"#,
        r#"{"reason": ""}"#,
        r#"{"reason": "ok", "extra": 1}"#,
    ] {
        let reply = f.api(Method::POST, &path, Some(body)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.body
        );
    }
    let queue = QuarantineQueue::new(&f.store).unwrap();
    assert_eq!(queue.get(item).unwrap().status, QuarantineStatus::Pending);
    assert_eq!(overrides_count(&f), 0);
    assert_eq!(f.changes(), 0);
}

#[tokio::test]
async fn agents_lifecycle() {
    let f = Fixture::new();
    let store = AgentStore::new(&f.store).unwrap();
    let reply = f
        .api(
            Method::POST,
            "/api/agents",
            Some(r#"{"name": "ci-bot", "policy": "strict"}"#),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let created = reply.json();
    let token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(store.authenticate(&token).unwrap().name, "ci-bot");
    assert_eq!(created["agent"]["preset"], "strict");
    assert!(created["mirror_urls"][0].as_str().unwrap().contains(&token));

    let list = f.api(Method::GET, "/api/agents", None).await;
    assert!(!list.body.contains(&token));
    assert_eq!(list.json()["items"][0]["status"], "active");

    let rotated = f.api(Method::POST, "/api/agents/ci-bot/rotate", None).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let new_token = rotated.json()["token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, token);
    assert!(store.authenticate(&token).is_err());
    assert!(store.authenticate(&new_token).is_ok());

    let no_reason = f
        .api(
            Method::POST,
            "/api/agents/ci-bot/suspend",
            Some(r#"{"reason": " "}"#),
        )
        .await;
    assert_eq!(no_reason.status, StatusCode::BAD_REQUEST);
    let suspended = f
        .api(
            Method::POST,
            "/api/agents/ci-bot/suspend",
            Some(r#"{"reason": "odd installs"}"#),
        )
        .await;
    assert_eq!(suspended.json()["status"], "suspended");
    assert!(store.authenticate(&new_token).is_err());
    let twice = f
        .api(
            Method::POST,
            "/api/agents/ci-bot/suspend",
            Some(r#"{"reason": "again"}"#),
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    let resumed = f.api(Method::POST, "/api/agents/ci-bot/resume", None).await;
    assert_eq!(resumed.json()["status"], "active");
    let revoked = f.api(Method::POST, "/api/agents/ci-bot/revoke", None).await;
    assert_eq!(revoked.json()["status"], "revoked");
    assert_eq!(
        f.api(Method::POST, "/api/agents/ci-bot/rotate", None)
            .await
            .status,
        StatusCode::CONFLICT
    );

    for (body, status) in [
        (r#"{"name": "ci-bot"}"#, StatusCode::CONFLICT),
        (r#"{"name": "Bad Name"}"#, StatusCode::BAD_REQUEST),
        (
            r#"{"name": "x", "policy": "paranoid"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (r#"{"name": "x", "token": "mine"}"#, StatusCode::BAD_REQUEST),
    ] {
        let reply = f.api(Method::POST, "/api/agents", Some(body)).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
    }
    assert_eq!(store.list().unwrap().len(), 1);
    assert_eq!(
        f.api(Method::POST, "/api/agents/nobody/resume", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Agent changes do not rebuild the policy.
    assert_eq!(f.changes(), 0);
}

#[tokio::test]
async fn log_search_and_feed_status() {
    let f = Fixture::new();
    let all = f.api(Method::GET, "/api/log", None).await.json();
    assert_eq!(all["entries"].as_array().unwrap().len(), 3);
    assert_eq!(all["entries"][0]["package"], "requests");
    let bot = f
        .api(Method::GET, "/api/log?agent=bot&verdict=deny", None)
        .await
        .json();
    assert_eq!(bot["entries"].as_array().unwrap().len(), 1);
    assert_eq!(bot["entries"][0]["version"], "6.6.6");
    let window = f
        .api(
            Method::GET,
            "/api/log?since=2026-01-02&until=2026-01-02T23:00:00Z&limit=5",
            None,
        )
        .await
        .json();
    assert_eq!(window["entries"].as_array().unwrap().len(), 1);
    let by_package = f
        .api(Method::GET, "/api/log?package=LEFT", None)
        .await
        .json();
    assert_eq!(by_package["entries"][0]["package"], "left-pad");
    for bad in [
        "/api/log?verdict=maybe",
        "/api/log?since=2026-02-30",
        "/api/log?since=2026-02-01&until=2026-01-01",
        "/api/log?limit=0",
        "/api/log?limit=100000",
        "/api/log?colour=red",
    ] {
        let reply = f.api(Method::GET, bad, None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let feeds = f.api(Method::GET, "/api/feeds", None).await.json();
    assert_eq!(feeds[0]["name"], "osv-npm");
}

/// A tracing writer that keeps everything written, to search the log for secrets.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tokens_stay_out_of_logs_and_responses() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let f = Fixture::new();
    let item = f.hold("left-pad", "1.3.0", "too new");
    let mut bodies = Vec::new();
    let mut agent_tokens = Vec::new();
    let wrong = format!("{TOKEN}-wrong");
    for auth in [TOKEN, wrong.as_str()] {
        let req = Request::builder()
            .uri(format!("{MOUNT}/api/agents"))
            .header("authorization", format!("Bearer {auth}"))
            .body(Body::empty())
            .unwrap();
        bodies.push(f.request(req).await.body);
    }
    let created = f
        .api(Method::POST, "/api/agents", Some(r#"{"name": "bot"}"#))
        .await;
    agent_tokens.push(created.json()["token"].as_str().unwrap().to_owned());
    let rotated = f.api(Method::POST, "/api/agents/bot/rotate", None).await;
    agent_tokens.push(rotated.json()["token"].as_str().unwrap().to_owned());
    for (method, path, body) in [
        (Method::GET, "/api/agents", None),
        (
            Method::POST,
            "/api/agents/bot/suspend",
            Some(r#"{"reason": "x"}"#),
        ),
        (
            Method::POST,
            &*format!("/api/quarantine/{item}/approve"),
            Some(r#"{"reason": "ok"}"#),
        ),
        (Method::POST, "/api/overrides", Some("{oops")),
        (Method::GET, "/api/log", None),
        (Method::GET, "/api/openapi.json", None),
    ] {
        bodies.push(f.api(method, path, body).await.body);
    }
    // The web login too, right and wrong.
    for token in [TOKEN, wrong.as_str()] {
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("{MOUNT}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={token}&name=alice")))
            .unwrap();
        let reply = f.request(req).await;
        bodies.push(format!("{:?} {}", reply.headers, reply.body));
    }

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("admin approved"), "the capture works: {logs}");
    assert!(logs.contains("wrong admin token"), "{logs}");
    assert!(!logs.contains(TOKEN), "admin token logged:\n{logs}");
    for token in &agent_tokens {
        assert!(
            !logs.contains(token.as_str()),
            "agent token logged:\n{logs}"
        );
    }
    for body in &bodies {
        assert!(!body.contains(TOKEN), "admin token in a response: {body}");
        for token in &agent_tokens {
            assert!(
                !body.contains(token.as_str()),
                "agent token in a response: {body}"
            );
        }
    }
}

/// Any path the admin listener does not serve, with or without the token, is a 404 that says
/// what it serves; `/` leads to the page.
#[tokio::test]
async fn unknown_admin_routes_say_what_is_served() {
    let f = Fixture::new();
    for path in ["/api/nope", "/api/quarantine/1/nope", "/nope"] {
        let reply = f.api(Method::GET, path, None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        let error = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(
            error.contains("/admin/api/openapi.json") && !error.contains(TOKEN),
            "{path}: {error}"
        );
    }
    let outside = f
        .request(Request::get("/npm/left-pad").body(Body::empty()).unwrap())
        .await;
    assert_eq!(outside.status, StatusCode::NOT_FOUND);
    assert!(outside.body.contains("`server.listen`"), "{}", outside.body);
    let root = f
        .request(Request::get("/").body(Body::empty()).unwrap())
        .await;
    assert_eq!(root.headers["location"], MOUNT);
}

/// An allow entry with an empty `versions` would allow every version: refused, with why.
#[tokio::test]
async fn an_allow_entry_with_empty_versions_is_refused() {
    let f = Fixture::new();
    let reply = f
        .api(
            Method::POST,
            "/api/overrides",
            Some(r#"{"kind":"allow","ecosystem":"npm","name":"left-pad","versions":"","reason":"ok"}"#),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(reply.json()["error"]
        .as_str()
        .unwrap()
        .contains("`versions` is empty"));
    assert_eq!(overrides_count(&f), 0);
    assert_eq!(f.changes(), 0);
}

/// `POST /api/feeds/import` (what `depfw feeds import` sends while the server runs) takes
/// a whole OSV archive, up to `MAX_FEED_UPLOAD_BYTES`, where the JSON routes take 64 KiB;
/// a bad source name is refused before anything is stored.
#[tokio::test]
async fn a_feed_upload_may_be_larger_than_a_json_body() {
    let f = Fixture::new();
    let post = |path: &str, content_type: &str, body: Vec<u8>| {
        Request::builder()
            .method(Method::POST)
            .uri(format!("{MOUNT}{path}"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let big = vec![b' '; 1024 * 1024];
    // The documented limit: room for an OSV ecosystem's all.zip.
    const _: () = assert!(depfw::admin::MAX_FEED_UPLOAD_BYTES == 256 * 1024 * 1024);
    let reply = f
        .request(post("/api/overrides", "application/json", big.clone()))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
    // The fixture's feeds take no updates: the upload was read, and the handler says so.
    let reply = f
        .request(post(
            "/api/feeds/import?name=big",
            "application/octet-stream",
            big,
        ))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
    let message = reply.json()["error"].as_str().unwrap().to_owned();
    assert!(message.contains("does not update feeds"), "{message}");
    let reply = f.api(Method::POST, "/api/feeds/sync", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);

    let long = "n".repeat(201);
    for query in [
        "?name=",
        "?name=a%2Fb",
        "?name=x%0Ay",
        &format!("?name={long}"),
    ] {
        let path = format!("/api/feeds/import{query}");
        let reply = f
            .request(post(&path, "application/octet-stream", b"{}".to_vec()))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.body
        );
        let message = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(message.contains("source name"), "{query}: {message}");
    }
    let reply = f
        .request(post(
            "/api/feeds/import",
            "application/octet-stream",
            b"{}".to_vec(),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
}

/// `POST /api/evaluate` (issue #13): token-protected, batches bounded, bodies larger than
/// the other routes' limit accepted; without a connected policy it is a 503 that says so.
#[tokio::test]
async fn evaluate_is_bounded_and_needs_a_policy() {
    let f = Fixture::new();
    let query = r#"{"ecosystem": "npm", "name": "left-pad", "version": "1.3.0", "metadata": {"license": "MIT"}}"#;
    let batch = |n: usize| format!(r#"{{"queries": [{}]}}"#, vec![query; n].join(","));

    let plain = f
        .request(
            Request::builder()
                .method(Method::POST)
                .uri(format!("{MOUNT}/api/evaluate"))
                .header("content-type", "application/json")
                .body(Body::from(batch(1)))
                .unwrap(),
        )
        .await;
    assert_eq!(plain.status, StatusCode::UNAUTHORIZED, "{}", plain.body);

    // ~90 KB: over the 64 KiB of the other routes, within this one's limit.
    let big = batch(1000);
    assert!(big.len() > 64 * 1024);
    let reply = f.api(Method::POST, "/api/evaluate", Some(&big)).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains("not connected to a policy"),
        "{}",
        reply.body
    );

    let reply = f
        .api(Method::POST, "/api/evaluate", Some(&batch(1001)))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(reply.body.contains("at most 1000"), "{}", reply.body);

    let reply = f
        .api(
            Method::POST,
            "/api/evaluate",
            Some(r#"{"queries": [], "verdict": "allow"}"#),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
}
