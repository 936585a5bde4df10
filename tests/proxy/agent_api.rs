//! The agent API under `/agent/v1/` (what `depfw mcp` calls): agents only, each agent sees
//! its own refusals only, a request for approval is queued once per package, version and
//! agent with the justification, and a name-level request approved allows the name.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use depfw::agents::PolicyPreset;
use depfw::server::agent::REQUEST_ID_HEADER;
use depfw::server::AppState;
use depfw::store::quarantine::{ApprovalScope, QuarantineStatus};
use serde_json::{json, Value};

use crate::support::registry::{self, TestCheck};

const PUBLIC: &str = "http://depfw.test:7878";

fn agent(state: &AppState, name: &str) -> String {
    let (_, token) = state.agents().add(name, PolicyPreset::Default).unwrap();
    token.expose_secret().to_owned()
}

fn call(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string()))
            .unwrap(),
        None => req.body(Body::empty()).unwrap(),
    }
}

async fn send_json(state: &AppState, req: Request<Body>) -> (StatusCode, Value, String) {
    let (status, headers, body) = registry::send(state, req).await;
    let id = headers
        .get(REQUEST_ID_HEADER)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, value, id)
}

fn check() -> TestCheck {
    TestCheck {
        deny: vec!["is-odd@3.0.1".into()],
        deny_names: vec!["is-nunber".into()],
        ..TestCheck::default()
    }
}

#[tokio::test]
async fn the_agent_api_answers_agents_only() {
    let (state, _fixture, _dir) = registry::router_setup(check(), PUBLIC).await;
    let body = json!({"packages": ["npm is-odd"]});
    let (status, value, _) =
        send_json(&state, call("POST", "/agent/v1/check", None, Some(body))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{value}");
    assert!(value["error"].as_str().unwrap().contains("agent token"));
    let (status, _, _) = send_json(&state, call("GET", "/agent/v1/requests/x", None, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Nothing was recorded for an anonymous caller.
    assert!(state.decisions().list(0, 10).unwrap().is_empty());
}

#[tokio::test]
async fn an_agent_sees_its_own_refusals_and_not_another_agents() {
    let (state, _fixture, _dir) = registry::router_setup(check(), PUBLIC).await;
    let (alice, bob) = (agent(&state, "alice"), agent(&state, "bob"));
    let (status, refusal, id) = send_json(
        &state,
        call("GET", "/npm/is-odd/-/is-odd-3.0.1.tgz", Some(&alice), None),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The 403 names the safe alternative and how to ask a human, never a way around.
    let error = refusal["error"].as_str().unwrap();
    assert!(error.starts_with("depfw: is-odd@3.0.1 is denied by policy: deny-listed"));
    assert!(error.contains(&format!("(request id {id})")), "{error}");
    assert!(error.contains("request_approval"), "{error}");
    assert!(
        error.ends_with("Nearest allowed version: is-odd@3.0.0"),
        "{error}"
    );
    let path = format!("/agent/v1/requests/{id}");
    let (status, value, _) = send_json(&state, call("GET", &path, Some(&alice), None)).await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(value["refused"], true);
    assert_eq!(value["newest_allowed"], "3.0.0");
    assert!(value["why"].as_str().unwrap().contains("deny-listed"));
    let (status, value, _) = send_json(&state, call("GET", &path, Some(&bob), None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{value}");
    assert!(!value.to_string().contains("deny-listed"), "{value}");
}

#[tokio::test]
async fn a_refused_name_names_how_to_ask_a_human() {
    let (state, _fixture, _dir) = registry::router_setup(check(), PUBLIC).await;
    let token = agent(&state, "gina");
    let (status, refusal, id) =
        send_json(&state, call("GET", "/npm/is-nunber", Some(&token), None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let error = refusal["error"].as_str().unwrap();
    assert!(error.contains("is-nunber is denied by policy: possible-typosquat"));
    assert!(error.contains(&format!("(request id {id}). To ask for an exception")));
    assert!(!error.contains("Nearest allowed"), "{error}");
}

#[tokio::test]
async fn checks_are_recorded_under_the_agent_with_the_newest_allowed_version() {
    let (state, _fixture, _dir) = registry::router_setup(check(), PUBLIC).await;
    let token = agent(&state, "carol");
    let body = json!({"packages": ["npm is-odd@3.0.1", "npm is-odd@^2 || ^3", "npm is-nunber"]});
    let (status, value, _) = send_json(
        &state,
        call("POST", "/agent/v1/check", Some(&token), Some(body)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    let results = value["results"].as_array().unwrap();
    assert_eq!(results[0]["verdict"], "deny");
    assert_eq!(results[0]["newest_allowed"], "3.0.0");
    assert_eq!(results[1]["verdict"], "allow");
    assert_eq!(results[1]["version"], "3.0.0");
    assert_eq!(results[2]["verdict"], "deny");
    let records = state.decisions().list(0, 100).unwrap();
    let checked: Vec<_> = records.iter().filter(|r| r.outcome == "checked").collect();
    assert_eq!(checked.len(), 3, "{records:#?}");
    assert!(checked
        .iter()
        .all(|r| r.client.agent.as_deref() == Some("carol")));
}

#[tokio::test]
async fn requests_for_approval_are_queued_once_with_the_justification_and_approve_nothing() {
    let (state, _fixture, _dir) = registry::router_setup(check(), PUBLIC).await;
    let (dave, erin) = (agent(&state, "dave"), agent(&state, "erin"));
    let ask = |token: &str, package: &str, why: &str| {
        call(
            "POST",
            "/agent/v1/approvals",
            Some(token),
            Some(json!({"package": package, "justification": why})),
        )
    };
    let (status, value, _) = send_json(&state, ask(&dave, "npm is-odd@3.0.1", "  ")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
    let (status, value, _) = send_json(&state, ask(&dave, "npm is-odd@^3", "why")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
    // Allowed already: nothing to queue.
    let (_, value, _) = send_json(&state, ask(&dave, "npm is-odd@3.0.0", "needed")).await;
    assert_eq!(value["status"], "not-needed", "{value}");

    for _ in 0..2 {
        let (status, value, _) =
            send_json(&state, ask(&dave, "npm is-odd@3.0.1", "first\nreason")).await;
        assert_eq!(status, StatusCode::OK, "{value}");
        assert_eq!(value["status"], "pending");
    }
    send_json(&state, ask(&erin, "npm is-odd@3.0.1", "other reason")).await;
    let pending = state
        .quarantine()
        .list(Some(QuarantineStatus::Pending))
        .unwrap();
    assert_eq!(pending.len(), 1, "{pending:#?}");
    let item = &pending[0];
    assert_eq!((item.version.as_str(), item.request_count), ("3.0.1", 3));
    assert_eq!(item.requesters.len(), 2);
    assert_eq!(item.requesters[0].who, "dave");
    assert_eq!(item.requesters[0].count, 2);
    assert_eq!(
        item.requesters[0].justification.as_deref(),
        Some("first reason")
    );
    // Still refused: asking approves nothing.
    let (status, _, _) = send_json(
        &state,
        call("GET", "/npm/is-odd/-/is-odd-3.0.1.tgz", Some(&dave), None),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_approved_name_level_request_allows_the_name() {
    let (state, _fixture, _dir) = registry::router_setup(check(), PUBLIC).await;
    let token = agent(&state, "frank");
    let (status, value, _) = send_json(
        &state,
        call(
            "POST",
            "/agent/v1/approvals",
            Some(&token),
            Some(json!({"package": "npm is-nunber", "justification": "our internal fork"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    let id = value["quarantine_id"].as_u64().unwrap();
    let item = state.quarantine().get(id).unwrap();
    assert_eq!(item.version, "*");
    state
        .quarantine()
        .approve(
            id,
            &ApprovalScope::ThisVersion,
            "reviewed",
            None,
            "admin",
            chrono::Utc::now(),
        )
        .unwrap();
    let item = state.quarantine().get(id).unwrap();
    assert_eq!(item.resolution.unwrap().versions, "*");
}
