//! The admin endpoint, `http://127.0.0.1:7879/admin/`: the quarantine queue, allow/deny lists,
//! agents, the provenance log and feed status, as a JSON API (`/admin/api/`, described by
//! `/admin/api/openapi.json`) and a server-rendered web page (`/admin/`).
//!
//! `depfw serve` serves it on its own listener (`[admin] listen`, default `127.0.0.1:7879`,
//! or a Unix socket), never on the mirror's port, so that agents that can reach the mirror
//! need not reach the admin endpoint: [`standalone`] nests [`admin_router`] at [`MOUNT`]
//! there. It exists so that a security engineer can act on what the proxy held while it
//! runs (the sled store allows one process, so the CLI's admin commands and
//! `depfw feeds status|sync|import` come here too, via `cli::remote`, while `depfw serve`
//! holds it) and so that those decisions apply at once:
//! every override or quarantine change calls the state's `on_change`, and the proxy
//! rebuilds its policy.
//!
//! Without an admin token (`[admin] token-file` or `$DEPFW_ADMIN_TOKEN`) `depfw serve` opens
//! no admin listener, and the router itself answers 403 on every route saying how to set
//! one: the endpoint is never open.

pub(crate) mod api;
pub(crate) mod auth;
pub(crate) mod chain;
pub(crate) mod error;
pub(crate) mod html;
mod log_view;
pub(crate) mod openapi;
pub(crate) mod pages;
pub(crate) mod sources;
pub(crate) mod throttle;
mod view;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{self, MethodRouter};
use axum::Router;
use chrono::Utc;
use serde::Serialize;
use url::Url;

use crate::agents::{Agent, PolicyPreset, Token};
use crate::config::Config;
use crate::policy::overrides::OverrideKind;
use crate::store::overrides::{expiry, EntryText, OverrideId, StoredOverride};
use crate::store::quarantine::{
    asked_by, ApprovalScope, QuarantineId, QuarantineItem, QuarantineStatus,
};
use crate::store::repo::{AgentRepo, Backend, OverrideRepo, QuarantineRepo};
use crate::store::{Store, StoreError};

pub use auth::{AdminToken, AdminTokenError};
pub use error::AdminError;
pub use sources::{DecisionLog, FeedStatusSource, LogFilter, MemoryLog, StaticFeeds, Verified};

/// Where the proxy nests the admin router; page links, redirects and the cookie path use it.
pub const MOUNT: &str = "/admin";
/// Largest request body accepted (JSON or form).
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest feed upload (`POST /admin/api/feeds/import`, what `depfw feeds import` sends
/// while the server runs): room for an OSV ecosystem's `all.zip`.
pub const MAX_FEED_UPLOAD_BYTES: usize = 256 * 1024 * 1024;
/// Largest body of `POST /api/evaluate` (a batch of up to `audit::evaluate::MAX_BATCH`
/// packages with their metadata).
pub(crate) const MAX_EVALUATE_BYTES: usize = 4 * 1024 * 1024;
/// Author of changes made through the API.
pub(crate) const API_AUTHOR: &str = "admin";

/// What `POST /api/reload` runs (see [`AdminState::with_reload`]).
pub type Reload = Arc<dyn Fn() -> Result<serde_json::Value, serde_json::Value> + Send + Sync>;

/// Everything the admin endpoint reads and changes. Cheap to clone.
#[derive(Clone)]
pub struct AdminState {
    pub(crate) agents: Arc<dyn AgentRepo>,
    pub(crate) overrides: Arc<dyn OverrideRepo>,
    pub(crate) quarantine: Arc<dyn QuarantineRepo>,
    pub(crate) admin_token: Option<AdminToken>,
    pub(crate) log: Arc<dyn DecisionLog>,
    pub(crate) feeds: Arc<dyn FeedStatusSource>,
    pub(crate) judge: Arc<dyn PolicyJudge>,
    pub(crate) on_change: Arc<dyn Fn() + Send + Sync>,
    /// `POST /api/reload`: re-reads the config file and applies its policy (`depfw serve`);
    /// `Err` carries the problems of a refused file, the policy in force unchanged.
    pub(crate) reload: Reload,
    pub(crate) default_policy: PolicyPreset,
    pub(crate) public_url: Url,
    pub(crate) sessions: auth::Sessions,
    /// Wrong tokens per client address, shared by the page's sign-in and the API.
    pub(crate) throttle: Arc<throttle::Throttle>,
    pub(crate) trusted_proxies: Arc<[std::net::IpAddr]>,
}

impl AdminState {
    /// State over `store`'s agents, overrides and quarantine queue. `admin_token: None`
    /// turns the endpoint off. The log and feed status start as "not connected", the
    /// public URL as `http://127.0.0.1:7878`; set them with the `with_*` methods.
    pub fn new(store: &Store, admin_token: Option<AdminToken>) -> Result<AdminState, StoreError> {
        AdminState::with_backend(&Backend::Sled(store.clone()), admin_token)
    }

    /// [`AdminState::new`] over any backend: on PostgreSQL, sessions and the sign-in
    /// throttle live in the database too, so replicas behind a load balancer share them.
    pub fn with_backend(
        backend: &Backend,
        admin_token: Option<AdminToken>,
    ) -> Result<AdminState, StoreError> {
        let defaults = Config::default();
        let repos = backend.repos()?;
        let shared = backend.admin_state();
        Ok(AdminState {
            agents: repos.agents,
            overrides: repos.overrides,
            quarantine: repos.quarantine,
            admin_token,
            log: Arc::new(NotConnected),
            feeds: Arc::new(NotConnected),
            judge: Arc::new(NotConnected),
            on_change: Arc::new(|| {}),
            reload: Arc::new(|| {
                Err(serde_json::json!({
                    "reloaded": false,
                    "errors": ["this server does not reload a config file"],
                }))
            }),
            default_policy: defaults.agents.default_policy,
            public_url: defaults.server.public_url,
            sessions: match &shared {
                Some((sessions, _)) => auth::Sessions::shared(Arc::clone(sessions)),
                None => auth::Sessions::default(),
            },
            throttle: match shared {
                Some((_, counts)) => Arc::new(throttle::Throttle::shared(counts)),
                None => Arc::default(),
            },
            trusted_proxies: Arc::from([]),
        })
    }

    /// `POST /api/reload` runs `reload` (blocking, off the runtime's workers): `Ok` is
    /// answered with 200, `Err` (a config that was refused) with 422.
    pub fn with_reload(mut self, reload: Reload) -> Self {
        self.reload = reload;
        self
    }

    /// Takes the default agent preset and the public URL (for mirror URLs) from `config`.
    pub fn with_config(mut self, config: &Config) -> Self {
        self.default_policy = config.agents.default_policy;
        self.public_url = config.server.public_url.clone();
        self.trusted_proxies = Arc::from(config.admin.trusted_proxies.as_slice());
        self
    }

    /// The address wrong tokens are counted against: the peer, or the client a trusted
    /// reverse proxy names in `X-Forwarded-For`.
    pub(crate) fn client_of(
        &self,
        peer: Option<std::net::SocketAddr>,
        headers: &axum::http::HeaderMap,
    ) -> Option<std::net::SocketAddr> {
        throttle::client_address(peer, headers, &self.trusted_proxies)
    }

    pub fn with_log(mut self, log: Arc<dyn DecisionLog>) -> Self {
        self.log = log;
        self
    }

    pub fn with_feeds(mut self, feeds: Arc<dyn FeedStatusSource>) -> Self {
        self.feeds = feeds;
        self
    }

    /// The policy `POST /api/evaluate` asks (`depfw check`/`audit` while `depfw serve` runs).
    pub fn with_judge(mut self, judge: Arc<dyn PolicyJudge>) -> Self {
        self.judge = judge;
        self
    }

    /// Called after every successful override or quarantine change.
    pub fn with_on_change(mut self, on_change: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_change = Arc::new(on_change);
        self
    }
}

/// The log and feed status before the integrator connects the real ones.
struct NotConnected;

impl DecisionLog for NotConnected {
    fn query(&self, _: &LogFilter) -> Result<Vec<serde_json::Value>, String> {
        Ok(Vec::new())
    }
}

/// The policy the proxy enforces now, for `POST /api/evaluate`: what `depfw check` and
/// `depfw audit` ask while `depfw serve` holds the store, so that they give its verdicts.
pub trait PolicyJudge: Send + Sync {
    /// One answer per query, in order; 503 without a policy that can decide, 400 for an
    /// invalid name or version.
    fn evaluate(
        &self,
        queries: &[crate::audit::evaluate::Query],
        fix: bool,
    ) -> Result<Vec<crate::audit::evaluate::Answer>, AdminError>;
}

impl PolicyJudge for NotConnected {
    fn evaluate(
        &self,
        _: &[crate::audit::evaluate::Query],
        _: bool,
    ) -> Result<Vec<crate::audit::evaluate::Answer>, AdminError> {
        Err(AdminError::Unavailable(
            "this admin endpoint is not connected to a policy".to_owned(),
        ))
    }
}

impl FeedStatusSource for NotConnected {
    fn status(&self) -> serde_json::Value {
        serde_json::json!({ "status": "feed status is not connected" })
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `Authorization: Bearer <admin token>`.
    Token,
    /// A browser session (cookie); POSTs also need the CSRF token and a same-site origin.
    Session,
    /// The login form: takes the admin token itself.
    Login,
}

/// One route of the admin router, relative to [`MOUNT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

type Table = Vec<(RouteSpec, MethodRouter<AdminState>)>;

fn spec(method: Method, path: &'static str, access: Access) -> RouteSpec {
    RouteSpec {
        method,
        path,
        access,
    }
}

/// The one table the router is built from, so that [`routes`] (and the tests and the
/// OpenAPI check that use it) cannot drift from what is served.
fn table() -> Table {
    use Access::{Login, Session, Token};
    use Method as M;
    vec![
        (
            spec(M::GET, "/api/quarantine", Token),
            routing::get(api::list_quarantine),
        ),
        (
            spec(M::POST, "/api/quarantine/{id}/approve", Token),
            routing::post(api::approve),
        ),
        (
            spec(M::POST, "/api/quarantine/{id}/reject", Token),
            routing::post(api::reject),
        ),
        (
            spec(M::GET, "/api/overrides", Token),
            routing::get(api::list_overrides),
        ),
        (
            spec(M::POST, "/api/overrides", Token),
            routing::post(api::add_override),
        ),
        (
            spec(M::DELETE, "/api/overrides/{id}", Token),
            routing::delete(api::remove_override),
        ),
        (
            spec(M::GET, "/api/agents", Token),
            routing::get(api::list_agents),
        ),
        (
            spec(M::POST, "/api/agents", Token),
            routing::post(api::add_agent),
        ),
        (
            spec(M::POST, "/api/agents/{name}/rotate", Token),
            routing::post(api::rotate_agent),
        ),
        (
            spec(M::POST, "/api/agents/{name}/revoke", Token),
            routing::post(api::revoke_agent),
        ),
        (
            spec(M::POST, "/api/agents/{name}/suspend", Token),
            routing::post(api::suspend_agent),
        ),
        (
            spec(M::POST, "/api/agents/{name}/resume", Token),
            routing::post(api::resume_agent),
        ),
        (
            spec(M::GET, "/api/log", Token),
            routing::get(api::query_log),
        ),
        (
            spec(M::POST, "/api/log/verify", Token),
            routing::post(api::verify_log),
        ),
        (
            spec(M::GET, "/api/log/export", Token),
            routing::get(api::export_log),
        ),
        (spec(M::GET, "/api/feeds", Token), routing::get(api::feeds)),
        (
            spec(M::GET, "/api/feeds/details", Token),
            routing::get(api::feed_details),
        ),
        (
            spec(M::POST, "/api/reload", Token),
            routing::post(api::reload),
        ),
        (
            spec(M::POST, "/api/feeds/sync", Token),
            routing::post(api::sync_feeds),
        ),
        (
            spec(M::POST, "/api/feeds/import", Token),
            routing::post(api::import_feed).layer(DefaultBodyLimit::max(MAX_FEED_UPLOAD_BYTES)),
        ),
        (
            spec(M::POST, "/api/evaluate", Token),
            routing::post(api::evaluate).layer(DefaultBodyLimit::max(MAX_EVALUATE_BYTES)),
        ),
        (
            spec(M::GET, "/api/openapi.json", Token),
            routing::get(api::openapi),
        ),
        (spec(M::GET, "/", Session), routing::get(pages::index)),
        (spec(M::POST, "/login", Login), routing::post(pages::login)),
        (
            spec(M::POST, "/logout", Session),
            routing::post(pages::logout),
        ),
        (
            spec(M::POST, "/quarantine/{id}/approve", Session),
            routing::post(pages::approve),
        ),
        (
            spec(M::POST, "/quarantine/{id}/reject", Session),
            routing::post(pages::reject),
        ),
        (
            spec(M::POST, "/overrides", Session),
            routing::post(pages::add_override),
        ),
        (
            spec(M::POST, "/overrides/{id}/remove", Session),
            routing::post(pages::remove_override),
        ),
        (
            spec(M::POST, "/agents", Session),
            routing::post(pages::add_agent),
        ),
        (
            spec(M::POST, "/agents/{name}/{action}", Session),
            routing::post(pages::agent_action),
        ),
    ]
}

/// Every route the admin router serves.
pub fn routes() -> Vec<RouteSpec> {
    table().into_iter().map(|(spec, _)| spec).collect()
}

/// The admin router, to nest at [`MOUNT`]. Routes are relative (`/api/...`, `/`); axum
/// serves a nested `/` at `/admin` only, so prefer [`mounted`], which also redirects
/// `/admin/` there.
pub fn admin_router<S: Clone + Send + Sync + 'static>(state: AdminState) -> Router<S> {
    if state.admin_token.is_none() {
        return Router::new().fallback(disabled);
    }
    let mut api = Router::new();
    let mut pages = Router::new();
    for (spec, handler) in table() {
        if spec.access == Access::Token {
            api = api.route(spec.path, handler);
        } else {
            pages = pages.route(spec.path, handler);
        }
    }
    let api = api.route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    api.merge(pages)
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The admin router nested at [`MOUNT`], plus `/admin/` → `/admin`; [`standalone`] adds
/// what the admin listener serves around it.
pub fn mounted<S: Clone + Send + Sync + 'static>(state: AdminState) -> Router<S> {
    Router::new().nest(MOUNT, admin_router(state)).route(
        &format!("{MOUNT}/"),
        routing::any(|| async { axum::response::Redirect::permanent(MOUNT) }),
    )
}

/// The router of the admin listener (`admin.listen`): [`mounted`], `/` redirecting to the
/// page, and a 404 naming what is served for any other path. The mirror's port serves none
/// of it.
pub fn standalone(state: AdminState) -> Router {
    mounted(state)
        .route(
            "/",
            routing::any(|| async { axum::response::Redirect::temporary(MOUNT) }),
        )
        .fallback(unknown_route)
}

/// Any path the admin listener does not serve; names nothing secret.
async fn unknown_route() -> AdminError {
    AdminError::NotFound(format!(
        "no such admin route. This listener serves the admin page at {MOUNT} and the JSON \
         API under {MOUNT}/api/ (described by {MOUNT}/api/openapi.json); package registries \
         are on the mirror's address (`server.listen`)"
    ))
}

async fn disabled() -> AdminError {
    AdminError::Forbidden(
        "the admin endpoint is disabled: no admin token is configured. Put a token of at \
         least 16 characters in the file named by `[admin] token-file`, or in the environment \
         variable named by `[admin] token-env` (default DEPFW_ADMIN_TOKEN), and restart depfw"
            .to_owned(),
    )
}

async fn require_token(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let peer = state.client_of(peer, request.headers());
    // A missing header is a client that does not know the API yet, not a guess.
    let Some(presented) = auth::bearer(request.headers()) else {
        return AdminError::Unauthorized(
            "this route needs `Authorization: Bearer <admin token>`".to_owned(),
        )
        .into_response();
    };
    let correct = state
        .admin_token
        .as_ref()
        .is_some_and(|token| token.verify(presented));
    match state
        .throttle
        .attempt(peer, correct, std::time::Instant::now())
    {
        throttle::Attempt::Pass => next.run(request).await,
        throttle::Attempt::Refused(wait) => AdminError::TooManyAttempts(wait).into_response(),
        throttle::Attempt::Wrong => {
            tracing::warn!(path = %request.uri().path(), "admin API: wrong admin token");
            AdminError::Unauthorized("wrong admin token".to_owned()).into_response()
        }
    }
}

// The operations, shared by the API and the page so that both validate alike.

/// What an approval form or body says about scope: `version` (or nothing) or a range.
fn approval_scope(scope: Option<&str>) -> ApprovalScope {
    match scope.map(str::trim) {
        None | Some("" | "version") => ApprovalScope::ThisVersion,
        Some(range) => ApprovalScope::Range(range.to_owned()),
    }
}

fn blank_to_none(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
}

impl AdminState {
    fn changed(&self) {
        (self.on_change)();
    }

    pub(crate) fn approve(
        &self,
        id: QuarantineId,
        scope: Option<&str>,
        reason: &str,
        expires: Option<&str>,
        by: &str,
    ) -> Result<OverrideId, AdminError> {
        let expires = expiry(blank_to_none(expires))?;
        let scope = approval_scope(scope);
        let entry = self
            .quarantine
            .approve(id, &scope, reason, expires, by, Utc::now())?;
        tracing::info!(
            item = id,
            allow_entry = entry,
            by,
            "admin approved a quarantined version"
        );
        self.changed();
        Ok(entry)
    }

    pub(crate) fn reject(
        &self,
        id: QuarantineId,
        reason: &str,
        by: &str,
    ) -> Result<OverrideId, AdminError> {
        let entry = self.quarantine.reject(id, reason, by, Utc::now())?;
        tracing::info!(
            item = id,
            deny_entry = entry,
            by,
            "admin rejected a quarantined version"
        );
        self.changed();
        Ok(entry)
    }

    /// Adds the entry `text` describes; a blank expiry is none.
    pub(crate) fn add_override(
        &self,
        kind: OverrideKind,
        mut text: EntryText<'_>,
    ) -> Result<StoredOverride, AdminError> {
        text.expires = blank_to_none(text.expires);
        text.agent = blank_to_none(text.agent);
        let entry = text.parse(kind)?;
        if let Some(agent) = &entry.agent {
            // An entry for an agent that does not exist would silently apply to nobody.
            self.agents.get(agent)?;
        }
        let id = self.overrides.add(&entry, Utc::now())?;
        tracing::info!(entry = id, by = text.by, package = %entry.name, agent = entry.agent.as_deref().unwrap_or("every agent"), reason = %entry.reason, expires = ?entry.expires, "admin added an override");
        self.changed();
        Ok(self.overrides.get(id)?)
    }

    pub(crate) fn remove_override(
        &self,
        id: OverrideId,
        by: &str,
    ) -> Result<StoredOverride, AdminError> {
        let record = self.overrides.remove(id, by, Utc::now())?;
        tracing::info!(entry = id, by, "admin removed an override");
        self.changed();
        Ok(record)
    }

    pub(crate) fn add_agent(
        &self,
        name: &str,
        policy: Option<&str>,
    ) -> Result<(Agent, Token), AdminError> {
        let preset = match blank_to_none(policy) {
            Some(p) => p.parse::<PolicyPreset>().map_err(AdminError::BadRequest)?,
            None => self.default_policy,
        };
        let (agent, token) = self.agents.add(name, preset)?;
        tracing::info!(agent = %agent.name, "admin created an agent");
        Ok((agent, token))
    }

    pub(crate) fn mirror_urls(&self, token: &Token) -> Vec<String> {
        crate::agents::mirror_urls(&self.public_url, token).to_vec()
    }

    /// How agent `name`'s clients send its token, without the token: what the page shows.
    pub(crate) fn setup_lines(&self, name: &str) -> Vec<String> {
        crate::agents::setup_lines(&self.public_url, name).to_vec()
    }

    /// The queue items with `status` (all with `None`), oldest first; with `agent`, only
    /// those that agent asked for (`anonymous`: any anonymous client).
    pub(crate) fn queue(
        &self,
        status: Option<QuarantineStatus>,
        agent: Option<&str>,
    ) -> Result<Vec<QuarantineItem>, AdminError> {
        let mut items = self.quarantine.list(status)?;
        if let Some(agent) = blank_to_none(agent) {
            items.retain(|item| asked_by(item, agent));
        }
        Ok(items)
    }
}

/// A new agent token with its mirror URLs: the one response that carries it.
#[derive(Serialize)]
pub(crate) struct NewToken {
    pub agent: Agent,
    pub token: String,
    pub mirror_urls: Vec<String>,
}
