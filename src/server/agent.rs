//! Agent identity on the proxy: `/a/<token>/npm/`, `/a/<token>/pypi/simple/`,
//! `/a/<token>/cargo/index/`.
//!
//! An agent (`depfw agents add`) gets a token and uses it in its mirror URL, which every
//! package manager accepts without extra configuration. This layer runs before routing:
//! it authenticates the token, strips the prefix so the protocol handlers see the plain
//! `/npm/…` path, and hands them the agent (for decision records, its policy preset and
//! the circuit breaker) plus the base URL that rewritten metadata must use, so that
//! tarball and file downloads keep the prefix and are attributed too.
//!
//! Requests without a token are anonymous; `server.allow-anonymous` decides whether they
//! are served (default: loopback peers only). Unknown, malformed or revoked tokens get 401,
//! a suspended agent 403 with the suspension reason. Tokens never reach the logs: the
//! request span shows `/a/****/…`.
//!
//! Every response carries `x-depfw-request-id`, the id its decision record is filed under.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::Utc;
use tracing::Instrument as _;

use super::error::ProxyError;
use super::{AppState, RequestCtx};
use crate::agents::{AuthError, BreakerEvent, PolicyPreset};
use crate::config::AnonymousAccess;
use crate::package::PackageName;
use crate::policy::{Decision, Verdict};

pub use crate::registry::REQUEST_ID_HEADER;

/// The authenticated agent of a request.
#[derive(Debug, Clone)]
pub struct AgentCtx {
    pub name: String,
    pub preset: PolicyPreset,
    /// What the `strict` preset makes of a warning (`agents.strict-warn`).
    pub strict_warn: Verdict,
}

/// What [`identify`] learned about a request, read by the [`RequestCtx`] extractor.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub request_id: String,
    pub agent: Option<AgentCtx>,
    /// `server.public-url` without a trailing `/`, plus `/a/<token>` for an agent.
    pub public_base: String,
    pub peer: Option<SocketAddr>,
}

/// Wraps the registry router: identity first, then routing on the path without the prefix.
pub(crate) fn wrap(state: AppState, registry: Router) -> Router {
    Router::new()
        .fallback_service(registry)
        .layer(middleware::from_fn_with_state(state, identify))
}

/// A request path with any agent token masked, for logs.
pub(crate) fn redact(path: &str) -> String {
    match path.strip_prefix("/a/") {
        Some(rest) => match rest.split_once('/') {
            Some((_, tail)) => format!("/a/****/{tail}"),
            None => "/a/****".to_owned(),
        },
        None => path.to_owned(),
    }
}

fn anonymous_allowed(policy: AnonymousAccess, peer: Option<SocketAddr>) -> bool {
    match policy {
        AnonymousAccess::Always => true,
        AnonymousAccess::Never => false,
        // No peer address means the request did not arrive over a socket (in-process
        // callers and tests); `depfw serve` always records the peer.
        AnonymousAccess::Loopback => peer.is_none_or(|p| p.ip().to_canonical().is_loopback()),
    }
}

fn refuse(status: StatusCode, message: String, request_id: &str) -> Response {
    tracing::info!(%status, request_id, "{message}");
    let body =
        serde_json::json!({ "error": format!("depfw: {message}"), "request_id": request_id });
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The path and query without the `/a/<token>` prefix.
fn strip_prefix(uri: &Uri, tail: &str) -> Result<Uri, axum::http::Error> {
    let path_and_query = match uri.query() {
        Some(q) => format!("/{tail}?{q}"),
        None => format!("/{tail}"),
    };
    Uri::builder().path_and_query(path_and_query).build()
}

async fn identify(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let request_id = state.next_request_id();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let path = request.uri().path().to_owned();
    let identity = Identity {
        request_id: request_id.clone(),
        agent: None,
        public_base: state.public_base().to_owned(),
        peer,
    };
    let span = tracing::info_span!("request", id = %request_id, method = %request.method(), path = %redact(&path));
    let mut response = respond(&state, request, next, identity, &path)
        .instrument(span)
        .await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    response
}

async fn respond(
    state: &AppState,
    mut request: Request,
    next: Next,
    mut identity: Identity,
    path: &str,
) -> Response {
    let request_id = identity.request_id.clone();
    let peer = identity.peer;
    let response = if let Some(rest) = path.strip_prefix("/a/") {
        let (token, tail) = rest.split_once('/').unwrap_or((rest, ""));
        match state.agents().authenticate(token) {
            Ok(agent) => match strip_prefix(request.uri(), tail) {
                Ok(uri) => {
                    identity.public_base = format!("{}/a/{token}", state.public_base());
                    identity.agent = Some(AgentCtx {
                        name: agent.name,
                        preset: agent.preset,
                        strict_warn: state.strict_warn(),
                    });
                    *request.uri_mut() = uri;
                    request.extensions_mut().insert(identity);
                    next.run(request).await
                }
                Err(_) => refuse(
                    StatusCode::BAD_REQUEST,
                    "bad request path".to_owned(),
                    &request_id,
                ),
            },
            Err(e @ (AuthError::Malformed(_) | AuthError::Unknown | AuthError::Revoked(_))) => {
                let why = match e {
                    AuthError::Revoked(_) => "this agent token is revoked".to_owned(),
                    _ => "unknown agent token (check the mirror URL from `depfw agents add`)"
                        .to_owned(),
                };
                refuse(StatusCode::UNAUTHORIZED, why, &request_id)
            }
            Err(e @ AuthError::Suspended(_)) => refuse(
                StatusCode::FORBIDDEN,
                format!("{e}; an admin must resume it (`depfw agents resume` or the admin page)"),
                &request_id,
            ),
            Err(AuthError::Store(e)) => {
                ProxyError::Internal(anyhow::Error::from_boxed(e)).into_response()
            }
        }
    } else if path == "/healthz" || anonymous_allowed(state.anonymous_access(), peer) {
        request.extensions_mut().insert(identity);
        next.run(request).await
    } else {
        refuse(
            StatusCode::UNAUTHORIZED,
            "anonymous use is not allowed here (server.allow-anonymous): use your agent's \
             mirror URL, <depfw>/a/<token>/npm/ (or pypi/simple/, cargo/index/)"
                .to_owned(),
            &request_id,
        )
    };
    response
}

/// Applies the agent's preset to a policy decision (no agent: unchanged).
pub(crate) fn decide(ctx: &RequestCtx, decision: Decision) -> Decision {
    match &ctx.agent {
        Some(agent) => agent.preset.apply(decision, agent.strict_warn),
        None => decision,
    }
}

/// Feeds the agent's circuit breaker; when it trips, the agent is suspended (until an
/// admin resumes it) and this request is refused with the reason.
pub(crate) fn observe(
    state: &AppState,
    ctx: &RequestCtx,
    event: BreakerEvent<'_>,
) -> Result<(), ProxyError> {
    let Some(agent) = &ctx.agent else {
        return Ok(());
    };
    let tripped = {
        let mut breaker = state.breaker().lock().unwrap_or_else(|e| e.into_inner());
        let state = breaker.record(&agent.name, event, Utc::now());
        if state.is_tripped() {
            // A resumed agent starts with an empty window.
            breaker.reset(&agent.name);
        }
        state.reason()
    };
    let Some(reason) = tripped else {
        return Ok(());
    };
    tracing::warn!(agent = %agent.name, "{reason}: suspending the agent");
    match state.agents().suspend(&agent.name, &reason) {
        Ok(_) | Err(crate::agents::AgentError::AlreadySuspended(_)) => {}
        Err(e) => return Err(ProxyError::Internal(e.into())),
    }
    Err(ProxyError::Refused(format!(
        "agent `{}` is suspended: {reason}; an admin must resume it",
        agent.name
    )))
}

/// Who asked, for the quarantine queue: the agent, else the anonymous peer.
pub(crate) fn requester(ctx: &RequestCtx) -> String {
    match (&ctx.agent, ctx.peer) {
        (Some(a), _) => a.name.clone(),
        (None, Some(peer)) => format!("anonymous ({})", peer.ip()),
        (None, None) => "anonymous".to_owned(),
    }
}

/// Notes a package request for the breaker.
pub(crate) fn observe_package(
    state: &AppState,
    ctx: &RequestCtx,
    name: &PackageName,
) -> Result<(), ProxyError> {
    observe(state, ctx, BreakerEvent::Package(name))
}

/// Notes a refusal for the breaker and returns the refusal (or the suspension).
pub fn refused(state: &AppState, ctx: &RequestCtx, refusal: ProxyError) -> ProxyError {
    match observe(state, ctx, BreakerEvent::Refused) {
        Ok(()) => refusal,
        Err(suspended) => suspended,
    }
}

impl Identity {
    /// The identity of a request that bypassed [`wrap`] (a handler called directly).
    pub(crate) fn unwrapped(state: &AppState) -> Identity {
        Identity {
            request_id: state.next_request_id(),
            agent: None,
            public_base: state.public_base().to_owned(),
            peer: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_masked_in_logged_paths() {
        assert_eq!(
            redact("/a/dfw_secretsecret/npm/is-number"),
            "/a/****/npm/is-number"
        );
        assert_eq!(redact("/a/dfw_secretsecret"), "/a/****");
        assert_eq!(redact("/npm/a/b"), "/npm/a/b");
    }

    #[test]
    fn loopback_policy_checks_the_peer() {
        let peer = |s: &str| Some(s.parse::<SocketAddr>().unwrap());
        let lo = AnonymousAccess::Loopback;
        assert!(anonymous_allowed(lo, peer("127.0.0.1:1")));
        assert!(anonymous_allowed(lo, peer("[::ffff:127.0.0.1]:1")));
        assert!(!anonymous_allowed(lo, peer("192.168.1.2:1")));
        assert!(anonymous_allowed(
            AnonymousAccess::Always,
            peer("192.168.1.2:1")
        ));
        assert!(!anonymous_allowed(
            AnonymousAccess::Never,
            peer("127.0.0.1:1")
        ));
    }
}
