//! Agent identity on the proxy: who is asking, from the agent's token.
//!
//! An agent (`depfw agents add`) gets a token. It presents it the way its package manager
//! authenticates to any private registry, in the `Authorization` header: a bearer token
//! (npm, pnpm, yarn, bun: `_authToken` / `npmAuthToken`), HTTP Basic with the token as the
//! password (pip, uv, poetry: netrc, `UV_INDEX_<NAME>_PASSWORD`,
//! `POETRY_HTTP_BASIC_<NAME>_PASSWORD`) or a cargo registry token (`cargo:token`). URLs in
//! the metadata rendered for such a request carry no token, so lockfiles hold no secret and
//! are the same whichever agent wrote them. Under [`AUTH_MOUNT`] (`/auth/npm/`, …) the
//! token is required: a request without one gets 401 and a challenge, which is what makes
//! cargo send its token (and cargo's `config.json` then says `auth-required`).
//!
//! Clients that cannot send a header can put the token in the path instead,
//! `/a/<token>/npm/`: that prefix stays in every rendered URL so downloads are attributed
//! too, and so it ends up in lockfiles (`resolved` in package-lock.json, uv.lock's URLs).
//!
//! This runs before routing, inside the mirror's one middleware (`observe::track`): it
//! authenticates the token (the store's constant-time lookup), strips the prefix so the
//! protocol handlers see the plain `/npm/…` path, and hands them the agent (for decision
//! records, its policy preset and the circuit breaker) plus the base URL that rewritten
//! metadata must use.
//!
//! Requests without a token are anonymous; `server.allow-anonymous` decides whether they
//! are served (default: loopback peers only). Unknown, malformed or revoked tokens get 401
//! (with `WWW-Authenticate` when the token came in a header), a suspended agent 403 with
//! the suspension reason. Tokens never reach the logs: the request span shows `/a/****/…`
//! and headers are not logged.
//!
//! Every response carries `x-depfw-request-id`, the id its decision record is filed under.

use std::borrow::Cow;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::Utc;
use tower::ServiceExt as _;
use tracing::Instrument as _;

use super::error::ProxyError;
use super::{AppState, RequestCtx};
use crate::agents::{AuthError, BreakerEvent, PolicyPreset};
use crate::config::AnonymousAccess;
use crate::package::PackageName;
use crate::policy::{Decision, Policy, Verdict};

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
    /// `server.public-url` without a trailing `/`, plus `/a/<token>` for an agent named
    /// in the path, or [`AUTH_MOUNT`] under that mount.
    pub public_base: String,
    pub token_from: TokenFrom,
    pub peer: Option<SocketAddr>,
}

/// Wraps the registry router in the mirror's one middleware ([`super::observe::track`]):
/// the request's metrics and access line around identification ([`identify`]), then routing
/// on the path without the prefix. One layer instead of three (issue #17): each layer and
/// router level costs a service clone and a boxed future on every request.
pub(crate) fn wrap(state: AppState, registry: Router) -> Router {
    Router::new().fallback_service(super::observe::Track::new(state, registry))
}

/// A request path with any agent token masked, for logs.
pub(crate) fn redact(path: &str) -> Cow<'_, str> {
    match path.strip_prefix("/a/") {
        Some(rest) => match rest.split_once('/') {
            Some((_, tail)) => Cow::Owned(format!("/a/****/{tail}")),
            None => Cow::Borrowed("/a/****"),
        },
        None => Cow::Borrowed(path),
    }
}

/// `/healthz` (alive) and `/readyz` (able to serve): answered to anyone, they say nothing
/// about packages or agents.
fn is_health_probe(path: &str) -> bool {
    path == "/healthz" || path == "/readyz"
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

/// Identifies the agent of `request` (whose path is `path`, and whose id is `request_id`)
/// and runs the rest of the mirror (`registry`) for it inside the `request` span; refuses it when its
/// token does not authenticate or it needs one. Returns the response, with
/// `x-depfw-request-id`, and the agent's name for the access line.
pub(crate) async fn identify(
    state: &AppState,
    request: Request,
    registry: Router,
    path: &str,
    request_id: &str,
) -> (Response, Option<String>) {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let identity = Identity {
        request_id: request_id.to_owned(),
        agent: None,
        public_base: state.public_base().to_owned(),
        token_from: TokenFrom::Nothing,
        peer,
    };
    let span = tracing::info_span!("request", id = %request_id, method = %request.method(), path = %redact(path));
    let mut agent = None;
    let mut response = respond(
        state, request, registry, identity, path, request_id, &mut agent,
    )
    .instrument(span)
    .await;
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    (response, agent)
}

/// [`identify`]'s work inside the span; `agent_name` is set to the authenticated agent's.
async fn respond(
    state: &AppState,
    mut request: Request,
    registry: Router,
    mut identity: Identity,
    path: &str,
    request_id: &str,
    agent_name: &mut Option<String>,
) -> Response {
    let peer = identity.peer;
    if let Some(rest) = path.strip_prefix("/a/") {
        let (token, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let agent = match authenticate(state, token, TokenFrom::Path, request_id) {
            Ok(agent) => agent,
            Err(refusal) => return *refusal,
        };
        let Ok(uri) = strip_prefix(request.uri(), tail) else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "bad request path".to_owned(),
                request_id,
            );
        };
        // The token is in every URL the client is given, so that downloads carry it too.
        identity.public_base = format!("{}/a/{token}", state.public_base());
        *agent_name = Some(agent.name.clone());
        identity.agent = Some(agent);
        identity.token_from = TokenFrom::Path;
        *request.uri_mut() = uri;
        request.extensions_mut().insert(identity);
        return route(registry, request).await;
    }
    // `/auth/…`: the same registries, credentials required.
    let required = match path.strip_prefix(AUTH_MOUNT) {
        Some(tail) if tail.is_empty() || tail.starts_with('/') => {
            let Ok(uri) = strip_prefix(request.uri(), tail.trim_start_matches('/')) else {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "bad request path".to_owned(),
                    request_id,
                );
            };
            *request.uri_mut() = uri;
            identity.public_base = format!("{}{AUTH_MOUNT}", state.public_base());
            true
        }
        // The agent API (`depfw mcp`'s questions) answers agents only.
        _ => path.starts_with(super::agent_api::PREFIX),
    };
    // The header is read where a registry uses it (health probes and unknown paths carry
    // whatever they carry), and everywhere under `/auth/`.
    let offered = if required || is_registry_path(request.uri().path()) {
        presented(request.headers())
    } else {
        Presented::Nothing
    };
    match offered {
        Presented::Token(token) => {
            match authenticate(state, &token, TokenFrom::Header, request_id) {
                Ok(agent) => {
                    *agent_name = Some(agent.name.clone());
                    identity.agent = Some(agent);
                    identity.token_from = TokenFrom::Header;
                }
                Err(refusal) => return *refusal,
            }
        }
        Presented::Unusable(why) => {
            return challenge(
                format!("{why}; send the agent token as `Authorization: Bearer <token>` or as the password of HTTP Basic"),
                request_id,
            )
        }
        Presented::Nothing if required => {
            return challenge(
                "this address needs an agent token: send it as `Authorization: Bearer <token>` \
                 (npm, pnpm, yarn, bun), as the password of HTTP Basic (pip, uv, poetry) or as \
                 a cargo registry token (`depfw init <client> --agent NAME` prints the setup)"
                    .to_owned(),
                request_id,
            )
        }
        // A supervisor or load balancer probes without a token, whatever the mirror needs.
        Presented::Nothing
            if is_health_probe(path) || anonymous_allowed(state.anonymous_access(), peer) => {}
        Presented::Nothing => {
            return challenge(
                "anonymous use is not allowed here (server.allow-anonymous): send your agent's \
                 token in the Authorization header (`depfw init <client> --agent NAME` prints \
                 the setup), or use its mirror URL, <depfw>/a/<token>/npm/ (or pypi/simple/, \
                 cargo/index/), which puts the token into lockfiles"
                    .to_owned(),
                request_id,
            )
        }
    }
    request.extensions_mut().insert(identity);
    route(registry, request).await
}

/// `request` through the registry router (which never fails: its errors are responses).
async fn route(registry: Router, request: Request) -> Response {
    match registry.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// The path prefix under which the registries require an agent token in the
/// `Authorization` header: a request without one gets 401 and a challenge, which is what
/// makes cargo (and pip or uv without credentials of their own in the URL or netrc) send
/// the token. Anonymous use never happens there, so a client whose token went missing fails
/// loudly instead of installing unattributed. The prefix names no agent: URLs rewritten
/// under it are the same for every agent, so lockfiles are too.
pub(crate) const AUTH_MOUNT: &str = "/auth";

/// Whether `path` (after any mount prefix) is one of the registries'.
fn is_registry_path(path: &str) -> bool {
    super::MOUNTS.iter().any(|mount| {
        path.strip_prefix('/')
            .and_then(|p| p.strip_prefix(mount))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Where a request's agent token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFrom {
    /// No token: anonymous use.
    Nothing,
    /// The `/a/<token>/` path prefix (and so every URL rendered for the request).
    Path,
    /// The `Authorization` header; rendered URLs carry no token.
    Header,
}

/// What a request's `Authorization` header offers.
enum Presented {
    Nothing,
    Token(String),
    /// A header depfw cannot read a token from, and why.
    Unusable(&'static str),
}

/// Reads the agent token from `Authorization`: `Bearer <token>` (npm, pnpm, yarn, bun),
/// `Basic base64(<any user>:<token>)` (pip, uv, poetry; a token as the user name with an
/// empty password is taken too) or the bare token (cargo sends its registry token as is).
fn presented(headers: &axum::http::HeaderMap) -> Presented {
    use base64::Engine as _;
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Presented::Nothing;
    };
    let Ok(value) = value.to_str() else {
        return Presented::Unusable("the Authorization header is not ASCII");
    };
    let value = value.trim();
    let (scheme, rest) = match value.split_once(' ') {
        Some((scheme, rest)) => (scheme, rest.trim()),
        None => (value, ""),
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        return Presented::Token(rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        return match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((user, "")) => Presented::Token(user.to_owned()),
            Some((_, password)) => Presented::Token(password.to_owned()),
            None => Presented::Unusable("the Basic credentials are not base64 of `user:password`"),
        };
    }
    if rest.is_empty() {
        return Presented::Token(value.to_owned());
    }
    Presented::Unusable("the Authorization scheme is neither Bearer nor Basic")
}

/// A 401 that tells HTTP clients to send credentials (pip and uv send HTTP Basic only
/// after one, unless the URL or netrc carries them; cargo retries `config.json` with its
/// token after any 401).
fn challenge(message: String, request_id: &str) -> Response {
    let mut resp = refuse(StatusCode::UNAUTHORIZED, message, request_id);
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"depfw\", charset=\"UTF-8\""),
    );
    resp
}

/// The agent of a presented token (the store's constant-time lookup), or the refusal.
fn authenticate(
    state: &AppState,
    token: &str,
    from: TokenFrom,
    request_id: &str,
) -> Result<AgentCtx, Box<Response>> {
    match state.agents().authenticate(token) {
        Ok(agent) => Ok(AgentCtx {
            name: agent.name,
            preset: agent.preset,
            strict_warn: state.strict_warn(),
        }),
        Err(e @ (AuthError::Malformed(_) | AuthError::Unknown | AuthError::Revoked(_))) => {
            let why = match (e, from) {
                (AuthError::Revoked(_), _) => "this agent token is revoked".to_owned(),
                (AuthError::Malformed(_), TokenFrom::Header) => {
                    "the Authorization header holds no agent token (those start with `dfw_`; \
                     the admin token is for the admin endpoint, which has its own listener: \
                     `[admin] listen`)"
                        .to_owned()
                }
                (_, TokenFrom::Path) => {
                    "unknown agent token (check the mirror URL from `depfw agents add`)".to_owned()
                }
                _ => "unknown agent token in the Authorization header (check the token from \
                      `depfw agents add` or `rotate`)"
                    .to_owned(),
            };
            Err(Box::new(match from {
                TokenFrom::Path => refuse(StatusCode::UNAUTHORIZED, why, request_id),
                _ => challenge(why, request_id),
            }))
        }
        Err(e @ AuthError::Suspended(_)) => Err(Box::new(refuse(
            StatusCode::FORBIDDEN,
            format!("{e}; an admin must resume it (`depfw agents resume` or the admin page)"),
            request_id,
        ))),
        Err(AuthError::Store(e)) => Err(Box::new(
            ProxyError::Internal(anyhow::Error::from_boxed(e)).into_response(),
        )),
    }
}

/// The proxy's one refuse-or-serve point: the agent's preset applied to a policy
/// decision (no agent: unchanged), then the policy's mode for this agent (`policy.mode`:
/// in monitor mode a refusal is served and recorded as `would-refuse`).
pub(crate) fn decide(ctx: &RequestCtx, policy: &Policy, decision: Decision) -> Decision {
    let decision = match &ctx.agent {
        Some(agent) => agent.preset.apply(decision, agent.strict_warn),
        None => decision,
    };
    let agent = ctx.agent.as_ref().map(|a| a.name.as_str());
    policy.enforcement().apply(agent, decision)
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
    // A trip resets the agent's window: a resumed agent starts afresh.
    let tripped = state
        .breaker()
        .record(&agent.name, event, Utc::now())?
        .reason();
    let Some(reason) = tripped else {
        return Ok(());
    };
    tracing::warn!(agent = %agent.name, "{reason}: suspending the agent");
    crate::observe::breaker_tripped(&agent.name);
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
            token_from: TokenFrom::Nothing,
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
