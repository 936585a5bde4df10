//! `depfw serve`: the registry proxy that package managers point at.
//!
//! Clients (npm, pnpm, yarn, bun; pip, uv, poetry; cargo) fetch metadata and artifacts
//! through depfw. Metadata is filtered so resolvers pick allowed versions; every artifact
//! download passes the same policy again at the gate (lockfile installs skip metadata),
//! is verified against its published digest before the first byte is released, and is
//! recorded in the decision log.
//!
//! Layout: `protocols!` (below) lists the pure protocols of `crate::registry`; [`mount`] is
//! the one handler of all of them, and [`pipeline`] the one metadata flow and the one
//! artifact flow, generic over them; it asks [`verdicts`] what the policy says, [`records`]
//! writes the decision log, [`delivery`] hands out verified artifact bytes. [`npm`],
//! [`pypi`] and [`cargo`] hold only what their registry alone serves (its `Quirks`).
//! [`upstream`] (with [`metadata_cache`]), [`render_cache`] and [`artifacts`] fetch and cache. [`listener`] takes
//! client connections under deadlines and caps. [`agent_api`] answers an agent's own questions
//! under `/agent/v1/` (what `depfw mcp` asks), from the same pipeline and verdicts.

pub mod admin;
pub mod agent;
pub(crate) mod agent_api;
pub(crate) mod approvals;
pub(crate) mod artifacts;
pub(crate) mod cargo;
pub(crate) mod content;
pub(crate) mod credentials;
pub(crate) mod delivery;
pub(crate) mod error;
pub(crate) mod inflight;
pub(crate) mod integrity;
pub(crate) mod listener;
pub(crate) mod metadata_cache;
pub(crate) mod mount;
pub(crate) mod name_decisions;
pub(crate) mod name_gate;
pub(crate) mod npm;
pub mod observe;
pub(crate) mod pipeline;
pub(crate) mod pypi;
pub(crate) mod records;
pub(crate) mod render_cache;
pub(crate) mod signal_facts;
pub(crate) mod tls;
pub(crate) mod transfer;
pub(crate) mod upstream;
pub(crate) mod verdicts;
pub(crate) mod webhook;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{any, get};
use axum::Router;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;

use crate::config::{AnonymousAccess, Config, RefusedVersions};
use crate::policy::{Policy, Verdict};
use crate::registry::Protocol;
use crate::store::decisions::ClientInfo;
use crate::store::repo::{AgentRepo, Backend, BreakerRepo, DecisionRepo, QuarantineRepo};
use crate::store::Store;
use artifacts::ArtifactCache;
use error::ProxyError;
use pipeline::Served;
use upstream::Upstream;

/// Writes [`Protocols`] (every protocol `depfw serve` speaks, each with its typed cache of
/// parsed documents), its construction from `[upstream]`, the router's mounts and the
/// not-found page's list, from one line per protocol.
macro_rules! protocols {
    ($($field:ident: $protocol:ty),+ $(,)?) => {
        pub(crate) struct Protocols {
            $(pub $field: Served<$protocol>,)+
        }

        /// Every protocol's mount, the path segment its registry is served under.
        pub(crate) const MOUNTS: &[&str] = &[$(<$protocol as Protocol>::MOUNT,)+];

        impl Protocols {
            fn new(u: &crate::config::UpstreamConfig) -> Protocols {
                let entries = usize::try_from(u.metadata_cache_entries).unwrap_or(usize::MAX);
                // Each protocol's parsed documents have the budget to themselves.
                let bytes = usize::try_from(u.parse_cache_bytes).unwrap_or(usize::MAX);
                Protocols {
                    $($field: Served::new(<$protocol as Protocol>::from_config(u), entries, bytes),)+
                }
            }

            /// Each protocol's handler at `/{MOUNT}/…` ([`mount::serve`]).
            fn mount(router: Router<AppState>) -> Router<AppState> {
                router
                    $(.route(&mount::route_path::<$protocol>(), any(mount::serve::<$protocol>)))+
            }

            /// Runs `f` on the version records of `name`'s upstream metadata (through
            /// `gate`'s fetch and parsed-document cache), for the agent API's questions;
            /// `None` when upstream has no such package.
            async fn with_versions<T>(
                &self,
                gate: &pipeline::Gate<'_>,
                name: &crate::package::PackageName,
                f: impl FnOnce(&[crate::registry::VersionRecord]) -> T,
            ) -> Result<Option<T>, ProxyError> {
                $(if name.ecosystem() == <$protocol as Protocol>::ECOSYSTEM {
                    let s = &self.$field;
                    return Ok(gate.document(s, name).await?.map(|doc| f(s.protocol.versions(&doc))));
                })+
                Ok(None)
            }

            /// What a client is configured with, per ecosystem, under `base`.
            fn client_urls(&self, base: &str) -> Vec<(crate::package::Ecosystem, String)> {
                vec![$((<$protocol as Protocol>::ECOSYSTEM, self.$field.protocol.client_url(base)),)+]
            }
        }

        $(impl mount::Mounted for $protocol {
            fn served(protocols: &Protocols) -> &Served<Self> {
                &protocols.$field
            }
        })+
    };
}

// Every registry depfw serves: a new ecosystem is its protocol module and one line here.
protocols! {
    npm: crate::registry::npm::Npm,
    pypi: crate::registry::pypi::Pypi,
    cargo: crate::registry::cargo::Cargo,
}

/// The policy the proxy enforces, or why there is none.
#[derive(Clone)]
pub enum PolicyState {
    Ready(Policy),
    /// The policy could not be built and `server.fail-open` is false: every package
    /// request is refused with 503 and this reason.
    Unavailable(String),
}

/// Shared state of the proxy; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    /// When a `/readyz` store probe last succeeded: `/readyz` is unauthenticated and its
    /// probe flushes to disk, so a caller hammering it gets the last second's "ready"
    /// instead of one fsync per request. A failure is never reused: recovery shows at once.
    last_store_probe: Mutex<Option<std::time::Instant>>,
    /// `server.public_url` without a trailing `/`.
    public_base: String,
    /// The protocols, with their configured upstreams and parsed documents.
    protocols: Protocols,
    policy: RwLock<Arc<PolicyState>>,
    upstream: Upstream,
    /// The verdicts on every version of a document, per agent preset (see [`pipeline`]).
    evaluated: render_cache::Keyed<verdicts::Filtered>,
    /// Name-level decisions per policy revision and requester ([`name_decisions`]).
    names: name_decisions::NameDecisions,
    /// Rendered metadata of every ecosystem (see [`render_cache`]).
    render: render_cache::RenderCache,
    artifacts: ArtifactCache,
    /// Artifact downloads in flight, by digest ([`delivery`]).
    downloads: inflight::InFlight<Arc<delivery::Verified>>,
    decisions: Arc<dyn DecisionRepo>,
    request_seq: AtomicU64,
    /// `<start ms hex>-`, the start of every request id.
    request_id_prefix: String,
    agents: Arc<dyn AgentRepo>,
    quarantine: Arc<dyn QuarantineRepo>,
    /// Approval requests from quarantines met without a download, and their notices.
    approvals: approvals::Approvals,
    breaker: Arc<dyn BreakerRepo>,
    anonymous: AnonymousAccess,
    strict_warn: Verdict,
    /// `server.fail-open`: serve an ecosystem the policy cannot decide for, unfiltered.
    fail_open: bool,
    /// `server.refused-versions`, for cargo and PyPI metadata.
    refused_versions: RefusedVersions,
    /// For `/readyz`'s write probe.
    backend: Backend,
    /// The data directory's own sled store, beside a PostgreSQL backend (the same store on
    /// sled): what stays per replica, such as the content rules' scan memos and holds.
    local: Option<Store>,
    /// `server.cargo-download-origins`.
    cargo_download_origins: Vec<url::Url>,
}

impl AppState {
    /// Builds the state from the validated config; artifacts are cached under
    /// `config.server.data_dir`, decisions go to `store`.
    pub fn new(config: &Config, store: &Store, policy: PolicyState) -> anyhow::Result<AppState> {
        AppState::with_backend(config, &Backend::Sled(store.clone()), policy)
    }

    /// [`AppState::new`] over any backend ([`Backend`]): agents, quarantine, the decision
    /// log and the breaker counters come from it; artifacts stay under the data directory.
    pub fn with_backend(
        config: &Config,
        backend: &Backend,
        policy: PolicyState,
    ) -> anyhow::Result<AppState> {
        AppState::with_stores(config, backend, backend.sled(), policy)
    }

    /// [`AppState::with_backend`] with the data directory's own store `local` (on
    /// PostgreSQL, the one that keeps the feeds); `None` only where nothing per replica is
    /// kept (content-rule scans then run unremembered).
    pub fn with_stores(
        config: &Config,
        backend: &Backend,
        local: Option<&Store>,
        policy: PolicyState,
    ) -> anyhow::Result<AppState> {
        let repos = backend.repos()?;
        let artifacts = ArtifactCache::open(
            &config.server.data_dir,
            config.upstream.artifact_cache_bytes,
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot prepare the artifact cache in {}: {e}",
                config.server.data_dir.display()
            )
        })?;
        let entries = usize::try_from(config.upstream.metadata_cache_entries).unwrap_or(usize::MAX);
        let bytes = usize::try_from(config.upstream.render_cache_bytes).unwrap_or(usize::MAX);
        let ttl = std::time::Duration::from_secs(config.upstream.metadata_ttl_secs);
        Ok(AppState {
            inner: Arc::new(Inner {
                public_base: config
                    .server
                    .public_url
                    .as_str()
                    .trim_end_matches('/')
                    .to_owned(),
                protocols: Protocols::new(&config.upstream),
                policy: RwLock::new(Arc::new(policy)),
                upstream: Upstream::new(&config.upstream, &config.server.cargo_download_origins)?,
                evaluated: render_cache::Keyed::new(entries, bytes, Some(ttl)),
                names: name_decisions::NameDecisions::new(entries),
                render: render_cache::RenderCache::new(entries, bytes, ttl),
                artifacts,
                downloads: inflight::InFlight::default(),
                decisions: Arc::new(crate::observe::ObservedLog(
                    backend.decisions(Some(&config.server.data_dir), &config.log)?,
                )),
                request_seq: AtomicU64::new(0),
                last_store_probe: Mutex::new(None),
                // Milliseconds, so ids stay unique across a quick restart.
                request_id_prefix: format!("{:x}-", chrono::Utc::now().timestamp_millis()),
                agents: repos.agents,
                approvals: approvals::Approvals::new(
                    Arc::clone(&repos.quarantine),
                    webhook::Webhook::start(&config.quarantine, Arc::clone(&repos.quarantine))?,
                ),
                quarantine: repos.quarantine,
                breaker: backend.breaker(config.agents.limits),
                anonymous: config.server.allow_anonymous,
                strict_warn: config.agents.strict_warn,
                fail_open: config.server.fail_open,
                refused_versions: config.server.refused_versions,
                backend: backend.clone(),
                local: local.cloned(),
                cargo_download_origins: config.server.cargo_download_origins.clone(),
            }),
        })
    }

    /// Replaces the enforced policy (reload); requests in flight keep the old one.
    pub fn set_policy(&self, policy: PolicyState) {
        let mut slot = self.inner.policy.write().unwrap_or_else(|e| e.into_inner());
        *slot = Arc::new(policy);
    }

    /// The current policy, or the 503 that every package request gets without one.
    pub fn policy(&self) -> Result<Arc<PolicyState>, ProxyError> {
        let current = Arc::clone(&self.inner.policy.read().unwrap_or_else(|e| e.into_inner()));
        match &*current {
            PolicyState::Ready(_) => Ok(current),
            PolicyState::Unavailable(why) => Err(ProxyError::PolicyUnavailable(why.clone())),
        }
    }

    /// The 503 every request for `ecosystem` gets while the policy cannot decide for it (no
    /// advisory data for it), unless `server.fail-open` is set.
    pub(crate) fn require_decidable(
        &self,
        ecosystem: crate::package::Ecosystem,
    ) -> Result<(), ProxyError> {
        let current = self.policy()?;
        let PolicyState::Ready(policy) = &*current else {
            return Ok(());
        };
        match policy.undecidable(ecosystem) {
            Some(why) if !self.inner.fail_open => {
                Err(ProxyError::PolicyUnavailable(why.to_owned()))
            }
            Some(why) => {
                tracing::warn!(%ecosystem, reason = why, "server.fail-open: serving without advisory data");
                Ok(())
            }
            None => Ok(()),
        }
    }

    pub fn decisions(&self) -> &dyn DecisionRepo {
        &*self.inner.decisions
    }

    pub fn public_base(&self) -> &str {
        &self.inner.public_base
    }

    pub fn agents(&self) -> &dyn AgentRepo {
        &*self.inner.agents
    }

    pub fn quarantine(&self) -> &dyn QuarantineRepo {
        &*self.inner.quarantine
    }

    pub(crate) fn approvals(&self) -> &approvals::Approvals {
        &self.inner.approvals
    }

    /// Waits (at most `limit`) until the approval requests met so far are in the queue
    /// (they are written off the request path): for tests and shutdown.
    pub fn flush_approvals(&self, limit: std::time::Duration) -> bool {
        self.inner.approvals.flush(limit)
    }

    pub fn breaker(&self) -> &dyn BreakerRepo {
        &*self.inner.breaker
    }

    pub(crate) fn anonymous_access(&self) -> AnonymousAccess {
        self.inner.anonymous
    }

    pub fn strict_warn(&self) -> Verdict {
        self.inner.strict_warn
    }

    /// What cargo and PyPI metadata do with refused versions (`server.refused-versions`).
    pub fn refused_versions(&self) -> RefusedVersions {
        self.inner.refused_versions
    }

    /// The bytes the render cache and the artifact cache hold (for `/metrics`).
    pub(crate) fn cache_bytes(&self) -> (usize, u64) {
        (self.inner.render.bytes(), self.inner.artifacts.used_bytes())
    }

    /// Every advisory source's status in the local store (for `/metrics`); none without one.
    pub(crate) fn feed_status(&self) -> Vec<crate::store::feeds::SourceStatus> {
        let Some(store) = &self.inner.local else {
            return Vec::new();
        };
        match crate::store::feeds::FeedStore::new(store).and_then(|f| f.status()) {
            Ok(sources) => sources,
            Err(e) => {
                tracing::warn!("metrics: cannot read the feed status: {e}");
                Vec::new()
            }
        }
    }

    /// A fresh request id (`<start ms hex>-<n>`).
    pub(crate) fn next_request_id(&self) -> String {
        let n = self.inner.request_seq.fetch_add(1, Ordering::Relaxed);
        request_id(&self.inner.request_id_prefix, n)
    }
}

/// `prefix` then `n` in decimal, without `fmt` (one per request, issue #17).
fn request_id(prefix: &str, n: u64) -> String {
    let mut digits = itoa::Buffer::new();
    [prefix, digits.format(n)].concat()
}

/// Per-request facts for logs and decision records.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub request_id: String,
    pub client: ClientInfo,
    /// The agent, from the `/a/<token>/` prefix ([`agent`]); `None` for anonymous use.
    pub agent: Option<agent::AgentCtx>,
    /// Base for URLs in rendered metadata: the public URL, plus `/a/<token>` for an agent
    /// named in the path (so downloads are attributed too) or `/auth` under that mount.
    /// Handlers use this, not `AppState::public_base`.
    pub public_base: String,
    /// Where the agent's token came from: with [`agent::TokenFrom::Header`] the client
    /// must keep sending it (cargo's `config.json` says `auth-required`).
    pub token_from: agent::TokenFrom,
    pub peer: Option<std::net::SocketAddr>,
}

impl FromRequestParts<AppState> for RequestCtx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(512).collect::<String>())
        };
        // Taken, not cloned: a handler extracts its `RequestCtx` once, and nothing reads
        // the identity after it (its strings are not copied on every request).
        let identity = match parts.extensions.remove::<agent::Identity>() {
            Some(i) => i,
            None => agent::Identity::unwrapped(state),
        };
        let agent_name = identity.agent.as_ref().map(|a| a.name.clone());
        Ok(RequestCtx {
            request_id: identity.request_id,
            client: ClientInfo {
                user_agent: header("user-agent"),
                command: header("npm-command"),
                agent: agent_name,
            },
            agent: identity.agent,
            public_base: identity.public_base,
            token_from: identity.token_from,
            peer: identity.peer,
        })
    }
}

async fn healthz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match state.policy() {
        Ok(_) => (axum::http::StatusCode::OK, "ok\n").into_response(),
        Err(e) => e.into_response(),
    }
}

/// Whether the store takes writes, probed at most once a second (see `last_store_probe`).
async fn store_probe(state: &AppState) -> Result<(), String> {
    const FRESH: std::time::Duration = std::time::Duration::from_secs(1);
    let last_ok = *state
        .inner
        .last_store_probe
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if last_ok.is_some_and(|at| at.elapsed() < FRESH) {
        return Ok(());
    }
    let backend = state.inner.backend.clone();
    // A flush waits for the disk: keep it off the runtime workers.
    let result = match tokio::task::spawn_blocking(move || backend.probe_write()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "the store does not take writes: {e}. sled keeps an I/O error (a full disk) \
             until the store is reopened, which `depfw serve` does by itself once writes \
             succeed again: free disk space"
        )),
        Err(e) => Err(format!("the store probe did not finish: {e}")),
    };
    *state
        .inner
        .last_store_probe
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = result.is_ok().then(std::time::Instant::now);
    result
}

/// `/readyz`: whether depfw can do its job now, for a supervisor or load balancer to act
/// on (`/healthz` only says the process answers). 200 when the store takes a write (a
/// flushed probe record), the advisory feeds are loaded and the policy is ready; else 503.
/// Either way the JSON body names each part and, for a part that is not ready, why.
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let store = store_probe(&state).await;
    let current = Arc::clone(&state.inner.policy.read().unwrap_or_else(|e| e.into_inner()));
    let (feeds, policy) = match &*current {
        PolicyState::Ready(p) if p.runs_no_check() => (
            Err(
                "no advisory data is loaded; serving with overrides only (server.fail-open)"
                    .to_owned(),
            ),
            Ok(()),
        ),
        PolicyState::Ready(p) => {
            let missing: Vec<&str> = crate::package::Ecosystem::ALL
                .into_iter()
                .filter_map(|e| p.undecidable(e))
                .collect();
            if missing.is_empty() {
                (Ok(()), Ok(()))
            } else {
                (Err(missing.join("; ")), Ok(()))
            }
        }
        PolicyState::Unavailable(why) => (
            Err("not loaded (see policy)".to_owned()),
            Err(format!(
                "cannot be evaluated, every package is refused: {why}"
            )),
        ),
    };
    let part = |r: &Result<(), String>| match r {
        Ok(()) => serde_json::json!({ "ready": true }),
        Err(why) => serde_json::json!({ "ready": false, "why": why }),
    };
    let ready = store.is_ok() && feeds.is_ok() && policy.is_ok();
    let status = if ready {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "ready": ready,
        "store": part(&store),
        "feeds": part(&feeds),
        "policy": part(&policy),
    });
    (status, axum::Json(body)).into_response()
}

/// Any path the mirror does not serve: a 404 saying what depfw serves and where. It names
/// no token (not even an agent's own, which may be in the path) and no admin address.
async fn not_found(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (axum::http::StatusCode, String) {
    let base = state.public_base();
    let mut text = "depfw: not found. This address serves package registries:\n".to_owned();
    for (ecosystem, url) in state.inner.protocols.client_urls(base) {
        text.push_str(&format!("  {:<9} {url}\n", ecosystem.to_string()));
    }
    text.push_str(
        "An agent sends its token in the Authorization header (required under /auth/) \
         or uses the same paths under /a/<its token>/. Health: /healthz (alive), \
         /readyz (able to serve). The admin endpoint is not on this address: it has its \
         own listener (`[admin] listen`).\n",
    );
    (axum::http::StatusCode::NOT_FOUND, text)
}

/// Runs blocking work (an fsync of the decision log, a policy rebuild) on the current
/// worker after telling a multi-threaded runtime to move its other tasks elsewhere, so
/// one install's durable write does not stall every other request on that worker. A
/// single-threaded runtime (router tests) just runs it inline.
pub(crate) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// The proxy's router: `/healthz`, `/readyz`, and the npm, PyPI and crates.io registries under
/// `/npm/`, `/pypi/` and `/cargo/`, each also under an agent's `/a/<token>/` prefix
/// ([`agent`]).
pub fn app(state: AppState) -> Router {
    // Artifacts are already compressed (and their digests cover the raw bytes); small
    // bodies are not worth a deflate stream (tower-http's default is anything over 32
    // bytes), the same bound below which a rendering keeps no gzip copy.
    let compress_when = SizeAbove::new(render_cache::GZIP_MIN_BYTES)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE)
        .and(NotForContentType::const_new("application/octet-stream"));
    let registry = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found);
    let registry = agent_api::routes(registry);
    let registry = Protocols::mount(registry)
        .with_state(state.clone())
        .layer(CompressionLayer::new().compress_when(compress_when));
    // Outside routing, one middleware: the request id, metrics and the access line around
    // identification, so a request refused while identifying the agent is counted and
    // logged too.
    agent::wrap(state, registry)
}

#[cfg(test)]
mod tests {
    use super::request_id;

    #[test]
    fn a_request_id_is_the_prefix_and_the_number() {
        assert_eq!(request_id("18c2f-", 0), "18c2f-0");
        assert_eq!(request_id("18c2f-", 7), "18c2f-7");
        assert_eq!(request_id("18c2f-", 1234567890), "18c2f-1234567890");
        assert_eq!(request_id("", u64::MAX), u64::MAX.to_string());
    }
}
