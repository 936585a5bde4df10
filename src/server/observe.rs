//! The mirror's request metrics and its one log line per request, and `/metrics` on the
//! admin listener.
//!
//! [`track`] is the mirror's one middleware and wraps all of it, agent identification
//! included (`agent::identify`, called from it, so a refused token is counted and logged
//! too): it gives the request its id, times it and, once the response head is ready,
//! counts it by ecosystem, route and status and logs `method`, the path with any agent
//! token masked, `status`, `duration_ms`, `agent` and `request_id` at info (health checks
//! at debug, so a probe every few seconds does not flood the log). The route comes from the
//! protocol's router ([`RouteTag`], set by `server::mount`), the agent from identification.
//! Metrics, identification and the access line are one layer rather than three because
//! each layer costs a service clone and a boxed future on every request (issue #17).
//!
//! `/metrics` ([`routes`]) needs `Authorization: Bearer <metrics.token-file>` when that
//! file is configured; without it, it answers only on a loopback or Unix-socket admin
//! listener (the default), so that a scraper needs no admin token, which could approve
//! packages.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::admin::AdminToken;
use crate::observe::metrics::{
    metrics, AgentLabel, CacheLabel, RequestLabels, RouteLabels, SourceLabel, CONTENT_TYPE,
};
use crate::server::agent::{identify, redact};
use crate::server::AppState;

/// What a protocol's router made of a request (`metadata`, `artifact`, `quirk`): a
/// response extension [`track`] reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RouteTag(pub &'static str);

/// The ecosystem a mirror path is under (after an `/a/<token>/` or `/auth/` prefix), or `none`.
fn ecosystem(path: &str) -> &'static str {
    let path = match path.strip_prefix("/a/") {
        Some(rest) => rest.split_once('/').map_or("", |(_, tail)| tail),
        None => path
            .strip_prefix(crate::server::agent::AUTH_MOUNT)
            .unwrap_or(path)
            .trim_start_matches('/'),
    };
    let first = path.split('/').next().unwrap_or("");
    crate::server::MOUNTS
        .iter()
        .find(|m| **m == first)
        .copied()
        .unwrap_or("none")
}

/// The mirror's one middleware around the registry router: [`track`] on every request. A
/// service of its own rather than axum's `from_fn`, which boxes the router it wraps into a
/// new service and its response mapping on every request (issue #17).
#[derive(Clone)]
pub(crate) struct Track {
    state: AppState,
    registry: Router,
}

impl Track {
    pub(crate) fn new(state: AppState, registry: Router) -> Track {
        Track { state, registry }
    }
}

impl tower::Service<Request> for Track {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, Self::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        // The registry router is always ready; it is called through `oneshot`, which asks.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let state = self.state.clone();
        let registry = self.registry.clone();
        Box::pin(async move { Ok(track(&state, request, registry).await) })
    }
}

/// The request's id, its identification (`agent::identify`) and routing, its metrics and
/// its access log line.
async fn track(state: &AppState, request: Request, registry: Router) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_id = state.next_request_id();
    let (response, agent) = identify(state, request, registry, &path, &request_id).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let ecosystem = ecosystem(&path);
    let health = matches!(path.as_str(), "/healthz" | "/readyz");
    let route = match response.extensions().get::<RouteTag>() {
        Some(tag) => tag.0,
        None if health => "health",
        None if path.contains(crate::server::agent_api::PREFIX) => "agent_api",
        None => "other",
    };
    let m = metrics();
    m.requests
        .get_or_create(&RequestLabels {
            ecosystem,
            route,
            status,
        })
        .inc();
    m.request_seconds
        .get_or_create(&RouteLabels { ecosystem, route })
        .observe(elapsed.as_secs_f64());
    let agent = agent.as_deref().unwrap_or("-");
    let request_id = request_id.as_str();
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    if response.status().is_server_error() {
        // What tower-http's `TraceLayer` logged for a 5xx before it was dropped from the
        // mirror's stack (issue #17: its `http` span duplicated the `request` span).
        tracing::error!(
            target: "tower_http::trace::on_failure",
            classification = %format_args!("Status code: {}", response.status()),
            latency = %format_args!("{} ms", elapsed.as_millis()),
            request_id,
            "response failed"
        );
    }
    if health {
        tracing::debug!(target: "depfw::access", request_id, %method, path = %redact(&path), status, duration_ms, agent, "request");
    } else {
        tracing::info!(target: "depfw::access", request_id, %method, path = %redact(&path), status, duration_ms, agent, "request");
    }
    response
}

/// Who may read `/metrics`.
#[derive(Clone)]
pub struct MetricsAccess {
    /// `metrics.token-file`'s token; required when set.
    token: Option<AdminToken>,
    /// Without a token: whether the listener is private to this host (loopback or a Unix
    /// socket), where `/metrics` answers anyone who can connect.
    local_listener: bool,
}

impl MetricsAccess {
    /// From `[metrics]` and `admin.listen`; fails when the token file cannot be used
    /// (unreadable, too short, or readable by other OS users).
    pub fn from_config(config: &crate::config::Config) -> anyhow::Result<MetricsAccess> {
        let token = match &config.metrics.token_file {
            // The admin token's rules (length, file mode), read from this file instead.
            Some(file) => AdminToken::from_config(&crate::config::AdminConfig {
                token_file: Some(file.clone()),
                ..config.admin.clone()
            })
            .map_err(|e| anyhow::anyhow!("metrics.token-file: {e}"))?,
            None => None,
        };
        let local_listener = match &config.admin.listen {
            crate::config::AdminListen::Tcp(addr) => addr.ip().is_loopback(),
            crate::config::AdminListen::Unix(_) => true,
        };
        Ok(MetricsAccess {
            token,
            local_listener,
        })
    }

    fn allows(&self, headers: &HeaderMap) -> Result<(), (StatusCode, &'static str)> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match (&self.token, presented) {
            (Some(token), Some(p)) if token.verify(p.trim()) => Ok(()),
            (Some(_), _) => Err((
                StatusCode::UNAUTHORIZED,
                "depfw: /metrics needs `Authorization: Bearer <the token in metrics.token-file>`\n",
            )),
            (None, _) if self.local_listener => Ok(()),
            (None, _) => Err((
                StatusCode::FORBIDDEN,
                "depfw: /metrics on an admin listener other hosts can reach needs a token: set \
                 `[metrics] token-file` and send it as `Authorization: Bearer`\n",
            )),
        }
    }
}

/// `/metrics` for the admin listener, over the proxy `state` (cache sizes and feed ages are
/// read from it at each scrape).
pub fn routes(state: AppState, access: MetricsAccess) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Arc::new((state, access)))
}

async fn scrape(
    State(shared): State<Arc<(AppState, MetricsAccess)>>,
    headers: HeaderMap,
) -> Response {
    let (state, access) = &*shared;
    if let Err(refusal) = access.allows(&headers) {
        return refusal.into_response();
    }
    let state = state.clone();
    // The feed status is a store read: off the runtime's workers.
    if let Err(e) = tokio::task::spawn_blocking(move || sample(&state)).await {
        tracing::warn!("sampling metrics at scrape: {e}");
    }
    let mut response = metrics().encode().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// Sets the gauges that are read rather than counted (cache sizes, feed ages) and the
/// per-agent series.
fn sample(state: &AppState) {
    let m = metrics();
    let (render, artifacts) = state.cache_bytes();
    for (cache, bytes) in [("render", render as u64), ("artifact", artifacts)] {
        m.cache_bytes
            .get_or_create(&CacheLabel { cache })
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
    // Every agent has a trip series (at zero until it trips), for alerts on its rate.
    match state.agents().list() {
        Ok(agents) => {
            for agent in agents {
                let _ = m
                    .breaker_trips
                    .get_or_create(&AgentLabel { agent: agent.name });
            }
        }
        Err(e) => tracing::warn!("metrics: cannot list the agents: {e}"),
    }
    let now = chrono::Utc::now();
    for source in state.feed_status() {
        if let Some(at) = source.fetched_at {
            m.feed_age
                .get_or_create(&SourceLabel {
                    source: source.name,
                })
                .set((now - at).num_seconds().max(0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ecosystem_label_comes_from_the_mount_never_the_token() {
        assert_eq!(ecosystem("/npm/left-pad"), "npm");
        assert_eq!(ecosystem("/a/dfw_secret/pypi/simple/x/"), "pypi");
        assert_eq!(ecosystem("/auth/cargo/index/config.json"), "cargo");
        assert_eq!(ecosystem("/a/npm"), "none");
        assert_eq!(ecosystem("/healthz"), "none");
        assert_eq!(ecosystem("/npmx/a"), "none");
    }

    #[test]
    fn metrics_need_the_token_when_one_is_set_and_a_local_listener_otherwise() {
        let token = AdminToken::new("metrics-token-0123456789", "test").unwrap();
        let bearer = |t: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
            );
            h
        };
        let with = MetricsAccess {
            token: Some(token),
            local_listener: true,
        };
        assert!(with.allows(&bearer("metrics-token-0123456789")).is_ok());
        assert_eq!(
            with.allows(&bearer("wrong-token-0123456789"))
                .unwrap_err()
                .0,
            401
        );
        assert_eq!(with.allows(&HeaderMap::new()).unwrap_err().0, 401);
        let open = MetricsAccess {
            token: None,
            local_listener: true,
        };
        assert!(open.allows(&HeaderMap::new()).is_ok());
        let exposed = MetricsAccess {
            token: None,
            local_listener: false,
        };
        assert_eq!(exposed.allows(&HeaderMap::new()).unwrap_err().0, 403);
    }
}
