//! `depfw serve`: runs the registry proxy until SIGINT/SIGTERM.
//!
//! Opens the store in the data directory, builds the policy, binds the mirror
//! (`server.listen`) and, when an admin token is configured, the admin endpoint on its own
//! listener (`admin.listen`), logs both addresses (`depfw init` prints the per-client
//! snippet) and serves until a signal, letting requests in flight finish. Both listeners
//! take connections through `server::listener`: header and body deadlines, a minimum read
//! rate, connection caps (per listener and per peer) with 503 shedding; the open-file
//! limit is raised first and the default cap sized below it.
//!
//! A watchdog probes the store every few seconds. sled keeps the first write error it
//! meets (a full disk) and fails every later write with it until the store is reopened, so
//! without it every package request got 500 until a restart. When the probe fails, both
//! listeners answer 503 (with `Retry-After`) while the old state drains, then the store is
//! reopened and the proxy built again over it as soon as a write succeeds: the listeners
//! stay open and no restart is needed.
//!
//! SIGHUP (or `POST /admin/api/reload`) re-reads the config file and applies its policy
//! without a restart; a file with problems is refused and the policy in force stays
//! ([`reload`]).
//!
//! While it runs it announces itself in `<data-dir>/serve.json` (pid, admin API URL), so
//! that `depfw agents|overrides|quarantine|log|feeds` go through the admin API instead of
//! failing on the store's lock (`cli::remote`); a `feeds sync` or `import` there rebuilds
//! the policy over the new advisories at once.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use axum::Router;
use tower::ServiceExt as _;

use crate::admin::{AdminToken, FeedStatusSource};
use crate::config::{AdminListen, Config};
use crate::policy::Policy;
use crate::server::listener::{self, Limits};
use crate::server::{app, AppState, PolicyState};
use crate::store::repo::{Backend, OverrideRepo};
use crate::store::Store;
use reload::{Apply, Reloader};

mod reload;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; overrides `server.listen`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// Applies the command-line overrides. A public URL derived from the old listen address
/// follows the new one.
fn apply_args(args: &ServeArgs, config: &mut Config) {
    if let Some(listen) = args.listen {
        follow_listen(config, listen);
    }
}

fn follow_listen(config: &mut Config, listen: SocketAddr) {
    let scheme = if config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let derived = format!("{scheme}://{}/", config.server.listen);
    if config.server.public_url.as_str() == derived {
        if let Ok(u) = url::Url::parse(&format!("{scheme}://{listen}/")) {
            config.server.public_url = u;
        }
    }
    config.server.listen = listen;
}

/// The policy to enforce, failing closed unless `server.fail-open` is set.
#[cfg(test)]
fn policy_state(config: &Config, store: &Store) -> PolicyState {
    match crate::engine::load(config, Some(store)) {
        Ok(engine) => PolicyState::Ready(engine.policy),
        Err(e) => unavailable_policy(config, e),
    }
}

/// [`policy_state`] with the feeds of the local `store` and the overrides of `overrides`
/// (the configured backend).
fn policy_state_with(config: &Config, store: &Store, overrides: &dyn OverrideRepo) -> PolicyState {
    match crate::engine::load_with(config, Some(store), Some(overrides)) {
        Ok(engine) => PolicyState::Ready(engine.policy),
        Err(e) => unavailable_policy(config, e),
    }
}

/// The policy `proxy` enforces with the run-time overrides `overrides` holds now: an
/// override change or approval re-reads the overrides only, never the advisories.
fn refreshed_policy(
    proxy: &crate::server::AppState,
    config: &Config,
    store: &Store,
    overrides: &dyn OverrideRepo,
) -> PolicyState {
    let refreshed = match proxy.policy() {
        Ok(current) => match &*current {
            PolicyState::Ready(policy) => {
                crate::engine::refresh_overrides(config, policy, overrides)
                    .map(PolicyState::Ready)
                    .map_err(|e| tracing::error!(error = ?e, "cannot read the overrides"))
                    .ok()
            }
            PolicyState::Unavailable(_) => None,
        },
        Err(_) => None,
    };
    refreshed.unwrap_or_else(|| policy_state_with(config, store, overrides))
}

/// What to enforce when the policy cannot be built.
fn unavailable_policy(config: &Config, e: anyhow::Error) -> PolicyState {
    if config.server.fail_open {
        tracing::error!(error = ?e, "policy failed to load; server.fail-open is set, serving with overrides only");
        PolicyState::Ready(
            Policy::new(
                Vec::new(),
                std::sync::Arc::clone(&config.overrides),
                format!("fail-open-{}", config.policy_fingerprint()),
            )
            .with_enforcement(config.policy.enforcement.clone()),
        )
    } else {
        tracing::error!(error = ?e, "policy failed to load; refusing every package (server.fail-open = false)");
        PolicyState::Unavailable(format!("{e:#}"))
    }
}

/// Serves `config`; `reread` reads the config file again (with the command line's global
/// settings), for a reload.
pub(crate) fn run(
    args: &ServeArgs,
    mut config: Config,
    reread: impl Fn() -> anyhow::Result<Config> + Send + Sync + 'static,
) -> anyhow::Result<ExitCode> {
    apply_args(args, &mut config);
    let reread = {
        let args = args.clone();
        move || {
            let mut config = reread()?;
            apply_args(&args, &mut config);
            Ok(config)
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config, reread))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(
    mut config: Config,
    reread: impl Fn() -> anyhow::Result<Config> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let started = config.clone();
    // Before anything is opened: a token file other users can read is refused at once.
    // Read once: a reopen of the store (see `keep_store_writable`) reuses it.
    let admin_token = AdminToken::from_config(&config.admin)?;
    let tls = config
        .server
        .tls
        .as_ref()
        .map(crate::server::tls::acceptor)
        .transpose()?;
    crate::store::create_data_dir(&config.server.data_dir).with_context(|| {
        format!(
            "creating the data directory {}",
            config.server.data_dir.display()
        )
    })?;
    // Before the store: every generation's decision log subscribes to it.
    let siem = crate::observe::siem::Stream::run(&config.siem)?;
    let shutdown = shutdown_signal();
    let hangup = hangup_signal();
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let bound = listener.local_addr()?;
    follow_listen(&mut config, bound);
    let open_files = listener::raise_open_file_limit();
    let limits = Limits::mirror(&config.server.connections, open_files);
    tracing::debug!(
        open_files = ?open_files,
        max_connections = limits.max_connections,
        max_per_peer = limits.max_per_peer,
        "client connection limits"
    );
    if let (Some(n), Some(_)) = (open_files, config.server.connections.max_connections) {
        let fits = listener::default_max_connections(Some(n));
        if limits.max_connections as u64 > fits {
            tracing::warn!(
                "server.max-connections = {} is above what the open-file limit ({n}) leaves \
                 room for (about {fits}): past that, connections fail at accept instead of \
                 getting a 503",
                limits.max_connections
            );
        }
    }
    // The admin endpoint only exists with a token; without one nothing is bound for it.
    let admin_listener = match &admin_token {
        Some(_) => Some(AdminListener::bind(&config.admin.listen).await?),
        None => None,
    };
    // The PostgreSQL backend is opened once: a reopen of the local store after a write
    // failure builds a new generation over the same pool and listener.
    let shared = match &config.store.url {
        Some(_) => Some(Backend::open(&config.store, &config.server.data_dir)?),
        None => None,
    };
    let reloader = Reloader::new(started, config.clone(), reread);
    let generation = Generation::open(&reloader, admin_token.as_ref(), shared.as_ref())?;
    // Now that this process holds the store: the CLI finds the admin API through this
    // file while the server runs (`cli::remote`); it is removed when `serve` returns.
    let _announced = super::remote::Announced::write(
        &config.server.data_dir,
        admin_listener
            .as_ref()
            .and_then(AdminListener::announced_url),
    )?;
    let live = Live::new(&generation, Arc::clone(&reloader));
    let store = generation.into_store();
    let admin_at = match &admin_listener {
        Some(l) => format!("{}{}", l.address(tls.is_some()), crate::admin::MOUNT),
        None => "off (no admin token: set `[admin] token-file`)".to_owned(),
    };
    tracing::info!(
        listen = %bound,
        npm = %format!("{}/npm/", config.server.public_url.as_str().trim_end_matches('/')),
        admin = %admin_at,
        "depfw serve is listening"
    );
    let (stop, stopped) = tokio::sync::watch::channel(());
    let until_stopped = {
        let stopped = stopped.clone();
        move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.changed().await;
            }
        }
    };
    let reloads = tokio::spawn(reload_on_hangup(hangup, reloader, stopped.clone()));
    let refreshes = match config.feeds.refresh_hours {
        0 => None,
        hours => Some(tokio::spawn(refresh_feeds(
            live.clone(),
            Duration::from_secs(hours.saturating_mul(3600)),
            stopped.clone(),
        ))),
    };
    let watchdog = tokio::spawn(keep_store_writable(
        admin_token,
        shared,
        live.clone(),
        store,
        STORE_PROBE_EVERY,
        stopped,
    ));
    let admin_serve = admin_listener.map(|l| {
        l.serve(
            serving(Arc::clone(&live.admin)),
            Limits::admin(&limits),
            tls.clone(),
            until_stopped(),
        )
    });
    // The peer address decides whether anonymous use is allowed (`server.allow-anonymous`).
    let mirror = listener::serve(
        listener.tap_io(listener::send_at_once),
        serving(Arc::clone(&live.mirror)),
        limits,
        tls,
        until_stopped(),
    );
    let signal = async move {
        shutdown.await;
        let _ = stop.send(());
        Ok(())
    };
    let admin = async move {
        match admin_serve {
            Some(serving) => serving.await,
            None => Ok(()),
        }
    };
    tokio::try_join!(
        async {
            mirror.await;
            Ok(())
        },
        admin,
        signal
    )?;
    reloads.await.context("the reload task")?;
    if let Some(refreshes) = refreshes {
        refreshes.await.context("the feed refresh task")?;
    }
    if let Some(store) = watchdog.await.context("the store watchdog")? {
        store.flush()?;
    }
    if let Some(siem) = siem {
        siem.close(SIEM_DRAIN).await;
    }
    tracing::info!("depfw serve stopped");
    Ok(())
}

/// How long a stop waits for the SIEM sink to take the records still queued.
const SIEM_DRAIN: Duration = Duration::from_secs(10);

/// How often the store is probed for writes, and how often a failed one is reopened.
const STORE_PROBE_EVERY: Duration = Duration::from_secs(5);

/// Everything served over one open store: a full disk makes sled keep its I/O error and
/// fail every later write with it (it is cleared only when the store is opened again), so
/// recovering means building a new generation over a reopened store.
struct Generation {
    store: Store,
    mirror: Router,
    admin: Option<Router>,
    /// Installs the policy of a reloaded config on this generation's proxy.
    apply: Apply,
    /// Syncs the configured feeds into this generation's store and rebuilds its policy.
    feeds: Arc<dyn FeedStatusSource>,
}

impl Generation {
    /// Opens the store and builds the proxy over it, and the admin endpoint with `admin_token`.
    /// `shared`: the PostgreSQL backend when `store.url` names one, opened once per process
    /// (`None`: this generation's sled store is the backend too).
    fn open(
        reloader: &Arc<Reloader>,
        admin_token: Option<&AdminToken>,
        shared: Option<&Backend>,
    ) -> anyhow::Result<Generation> {
        // What builds a policy later (an override change, a feed sync) reads the config in
        // force then: a reload may have changed its policy since.
        let live = reloader.live.clone();
        let config = &live.get();
        // The local store keeps the synced feeds (per replica); shared state lives in the
        // backend, which is this same store unless `store.url` names PostgreSQL.
        let store = Store::open(&config.server.data_dir)?;
        let backend = match shared {
            None => Backend::Sled(store.clone()),
            Some(shared) => shared.clone(),
        };
        tracing::info!(store = %backend.describe(), "shared state");
        let overrides = backend.repos()?.overrides;
        let state = AppState::with_stores(
            config,
            &backend,
            Some(&store),
            policy_state_with(config, &store, &*overrides),
        )?;
        if let Some(siem) = crate::observe::siem::running() {
            state.decisions().subscribe(siem.subscriber());
        }
        // Admin changes (approvals, overrides) here, or on another replica, re-read the
        // overrides so they apply at once: O(overrides), the advisories stay loaded.
        let refresh = {
            let (live, store, proxy) = (live.clone(), store.clone(), state.clone());
            let overrides = Arc::clone(&overrides);
            move || refreshed_policy(&proxy, &live.get(), &store, &*overrides)
        };
        let apply: Apply = {
            let (store, proxy) = (store.clone(), state.clone());
            let overrides = Arc::clone(&overrides);
            Arc::new(move |config: &Config| {
                let engine = crate::engine::load_with(config, Some(&store), Some(&*overrides))?;
                let revision = engine.policy.revision().to_owned();
                proxy.set_policy(PolicyState::Ready(engine.policy));
                Ok(revision)
            })
        };
        if let Backend::Postgres(pg) = &backend {
            let (refresh, proxy) = (refresh.clone(), state.clone());
            pg.on_overrides_changed(move || proxy.set_policy(refresh()));
        }
        // `depfw feeds sync|import` through the admin API, and the scheduled refresh
        // (`feeds.refresh-hours`): the whole policy is built again over the new advisories
        // (the overrides re-read after).
        let reload = {
            let (live, store) = (live.clone(), store.clone());
            let overrides = Arc::clone(&overrides);
            move || policy_state_with(&live.get(), &store, &*overrides)
        };
        let feed_updates =
            |refresh| crate::server::admin::feed_updates(&state, config, &store, reload, refresh);
        let (admin, feeds) = match admin_token {
            Some(token) => {
                let admin = crate::server::admin::admin_state_with(
                    &state,
                    config,
                    &backend,
                    &store,
                    token.clone(),
                    refresh,
                )?;
                let feeds = feed_updates(Arc::clone(&admin.on_change))?;
                let admin = admin.with_feeds(Arc::clone(&feeds)).with_reload({
                    let reloader = Arc::clone(reloader);
                    Arc::new(move || match reloader.reload() {
                        Ok(done) => Ok(serde_json::to_value(done).unwrap_or_default()),
                        Err(refused) => Err(serde_json::to_value(refused).unwrap_or_default()),
                    })
                });
                // `/metrics` beside the admin page, under its own access rule.
                let metrics = crate::server::observe::MetricsAccess::from_config(config)?;
                let routes = crate::admin::standalone(admin)
                    .merge(crate::server::observe::routes(state.clone(), metrics));
                (Some(routes), feeds)
            }
            None => {
                let proxy = state.clone();
                feed_updates(Arc::new(move || proxy.set_policy(refresh())))
                    .map(|feeds| (None, feeds))?
            }
        };
        Ok(Generation {
            mirror: app(state),
            admin,
            store,
            apply,
            feeds,
        })
    }

    /// The store, dropping this generation's own routers at once (the live ones are
    /// clones): a handle kept would stop a later reopen.
    fn into_store(self) -> Store {
        self.store
    }
}

/// The routers the listeners serve now; swapped without closing the listeners.
#[derive(Clone)]
struct Live {
    mirror: Arc<RwLock<Router>>,
    admin: Arc<RwLock<Router>>,
    /// Reloads apply to the generation installed last.
    reloader: Arc<Reloader>,
    /// The feed updates of the generation installed last (`None` while the store is
    /// reopened).
    feeds: Arc<RwLock<Option<Arc<dyn FeedStatusSource>>>>,
}

impl Live {
    fn new(generation: &Generation, reloader: Arc<Reloader>) -> Live {
        let live = Live {
            mirror: Arc::new(RwLock::new(Router::new())),
            admin: Arc::new(RwLock::new(Router::new())),
            reloader,
            feeds: Arc::default(),
        };
        live.install(generation);
        live
    }

    fn install(&self, generation: &Generation) {
        set(&self.mirror, generation.mirror.clone());
        if let Some(admin) = &generation.admin {
            set(&self.admin, admin.clone());
        }
        self.reloader
            .serve_with(Some(Arc::clone(&generation.apply)));
        *self.feeds.write().unwrap_or_else(|e| e.into_inner()) =
            Some(Arc::clone(&generation.feeds));
    }

    /// The feed updates of the generation serving now.
    fn feeds(&self) -> Option<Arc<dyn FeedStatusSource>> {
        self.feeds.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Serves 503 everywhere: the old generation is dropped as its last requests finish,
    /// which releases the store for reopening (the reloader lets go of it too).
    fn unavailable(&self, why: &str) {
        let router = unavailable(why);
        set(&self.mirror, router.clone());
        set(&self.admin, router);
        self.reloader.serve_with(None);
        *self.feeds.write().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

fn set(slot: &RwLock<Router>, router: Router) {
    *slot.write().unwrap_or_else(|e| e.into_inner()) = router;
}

/// A router that hands each request to whatever router `slot` holds at that moment.
fn serving(slot: Arc<RwLock<Router>>) -> Router {
    Router::new().fallback_service(tower::service_fn(move |request: axum::extract::Request| {
        let router = slot.read().unwrap_or_else(|e| e.into_inner()).clone();
        router.oneshot(request)
    }))
}

/// While the store is being reopened: `/healthz` (the process answers) is ok, everything
/// else a 503 that says why and that a client may retry.
fn unavailable(why: &str) -> Router {
    let text = format!(
        "depfw: the store does not take writes ({why}); depfw reopens it as soon as it \
         does and answers 503 until then\n"
    );
    Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .fallback(move || {
            let text = text.clone();
            async move {
                (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    [(axum::http::header::RETRY_AFTER, "5")],
                    text,
                )
            }
        })
}

/// Probes the store every `every`; when it stops taking writes (a full disk), serves 503
/// and reopens it, building a new [`Generation`], as soon as a write succeeds again.
/// Returns the store open at shutdown, if any.
async fn keep_store_writable(
    admin_token: Option<AdminToken>,
    shared: Option<Backend>,
    live: Live,
    mut store: Store,
    every: Duration,
    mut stopped: tokio::sync::watch::Receiver<()>,
) -> Option<Store> {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stopped.changed() => return Some(store),
        }
        let probe = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.probe_write()).await
        };
        let why = match probe {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::error!(error = %why, "the store stopped taking writes (a full disk?): answering 503 and reopening it once it takes writes again");
        live.unavailable(&why);
        drop(store);
        store = loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stopped.changed() => return None,
            }
            let (reloader, admin_token) = (Arc::clone(&live.reloader), admin_token.clone());
            let shared = shared.clone();
            let reopened = tokio::task::spawn_blocking(move || {
                let generation =
                    Generation::open(&reloader, admin_token.as_ref(), shared.as_ref())?;
                generation.store.probe_write()?;
                Ok::<_, anyhow::Error>(generation)
            })
            .await;
            match reopened {
                Ok(Ok(generation)) => {
                    live.install(&generation);
                    tracing::info!("the store takes writes again: serving");
                    break generation.into_store();
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %format!("{e:#}"), "the store cannot be reopened yet")
                }
                Err(e) => tracing::warn!(error = %e, "reopening the store failed"),
            }
        };
    }
}

/// `feeds.refresh-hours`: syncs the configured feed sources every `every` in the
/// background, through the generation serving then (the same sync as `POST
/// /admin/api/feeds/sync`, one at a time with it). A source that fails keeps its last good
/// data and the policy in force stays; a sync that stored data rebuilds the policy for the
/// next request.
async fn refresh_feeds(live: Live, every: Duration, mut stopped: tokio::sync::watch::Receiver<()>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stopped.changed() => return,
        }
        let Some(feeds) = live.feeds() else {
            tracing::warn!("scheduled feed refresh skipped: the store is being reopened");
            continue;
        };
        match tokio::task::spawn_blocking(move || feeds.sync()).await {
            Ok(Ok(report)) => {
                let sources = report["sources"].as_array().map_or(0, Vec::len);
                let failed = (report["sources"].as_array().into_iter().flatten())
                    .filter(|s| !s["error"].is_null())
                    .count();
                tracing::info!(sources, failed, "scheduled feed refresh done");
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "scheduled feed refresh failed; the advisories in use stay")
            }
            Err(e) => {
                tracing::error!(error = %e, "scheduled feed refresh did not finish; the advisories in use stay")
            }
        }
    }
}

/// The admin endpoint's own listener (`admin.listen`).
enum AdminListener {
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener, std::path::PathBuf),
}

impl AdminListener {
    async fn bind(at: &AdminListen) -> anyhow::Result<AdminListener> {
        match at {
            AdminListen::Tcp(addr) => Ok(AdminListener::Tcp(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the admin listener {addr} (admin.listen)"))?,
            )),
            #[cfg(unix)]
            AdminListen::Unix(path) => {
                use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
                // A socket left by an earlier run; any other file there is not ours to remove.
                if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
                    std::fs::remove_file(path)
                        .with_context(|| format!("removing the old socket {}", path.display()))?;
                }
                let listener = tokio::net::UnixListener::bind(path).with_context(|| {
                    format!("binding the admin socket {} (admin.listen)", path.display())
                })?;
                // Only depfw's own OS user may connect. The socket exists with the umask's mode
                // for a moment first: keep it in a directory only that user can enter.
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("making {} private", path.display()))?;
                Ok(AdminListener::Unix(listener, path.clone()))
            }
            #[cfg(not(unix))]
            AdminListen::Unix(path) => anyhow::bail!(
                "admin.listen: Unix sockets ({}) need a Unix system; use a loopback address",
                path.display()
            ),
        }
    }

    /// Where the CLI reaches it (`cli::remote`): an unspecified address through loopback.
    fn announced_url(&self) -> Option<String> {
        match self {
            AdminListener::Tcp(l) => l.local_addr().ok().map(super::remote::admin_url_of),
            #[cfg(unix)]
            AdminListener::Unix(_, path) => Some(format!("unix:{}", path.display())),
        }
    }

    /// Where an admin points the browser or `curl`.
    fn address(&self, tls: bool) -> String {
        let scheme = if tls { "https" } else { "http" };
        match self {
            AdminListener::Tcp(l) => l
                .local_addr()
                .map(|a| format!("{scheme}://{a}"))
                .unwrap_or_else(|_| format!("{scheme}://?")),
            #[cfg(unix)]
            AdminListener::Unix(_, path) => format!("unix:{} (curl --unix-socket)", path.display()),
        }
    }

    /// Serves under `limits` (its own connection cap: a saturated mirror leaves it
    /// reachable). Over TCP the peer address counts wrong tokens (`admin::throttle`).
    async fn serve(
        self,
        router: axum::Router,
        limits: Limits,
        tls: Option<crate::server::tls::TlsAcceptor>,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        match self {
            AdminListener::Tcp(l) => {
                listener::serve(l.tap_io(listener::send_at_once), router, limits, tls, stop).await
            }
            // A Unix socket is the local user's file, guarded by its permissions: no TLS.
            #[cfg(unix)]
            AdminListener::Unix(l, path) => {
                let _ = tls;
                listener::serve(l, router, limits, None, stop).await;
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(())
    }
}

/// SIGINT or SIGTERM. The handlers are installed when this is called, not when the future
/// is first polled: `depfw serve` calls it before it answers or announces itself, so a stop
/// sent as soon as it is up is a clean one (the default action would kill it, leaving
/// `serve.json` behind).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (interrupt, term) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let received = |signal: Option<tokio::signal::unix::Signal>| async move {
                match signal {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = received(interrupt) => {},
                () = received(term) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down: finishing requests in flight");
    }
}

/// SIGHUP, installed when this is called (before `depfw serve` announces itself: its
/// default action would end the process); `None` where there is no such signal.
#[cfg(unix)]
fn hangup_signal() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{signal, SignalKind};
    signal(SignalKind::hangup())
        .map_err(|e| tracing::warn!(error = %e, "SIGHUP cannot be handled: reload through the admin API"))
        .ok()
}

#[cfg(not(unix))]
fn hangup_signal() -> Option<()> {
    None
}

/// Reloads the config on each SIGHUP until the server stops.
#[cfg(unix)]
async fn reload_on_hangup(
    hangup: Option<tokio::signal::unix::Signal>,
    reloader: Arc<Reloader>,
    mut stopped: tokio::sync::watch::Receiver<()>,
) {
    let Some(mut hangup) = hangup else {
        return;
    };
    loop {
        tokio::select! {
            got = hangup.recv() => {
                if got.is_none() {
                    return;
                }
                tracing::info!("SIGHUP: reloading the config");
                let reloader = Arc::clone(&reloader);
                let _ = tokio::task::spawn_blocking(move || reloader.reload_logged()).await;
            }
            _ = stopped.changed() => return,
        }
    }
}

#[cfg(not(unix))]
async fn reload_on_hangup(
    _hangup: Option<()>,
    _reloader: Arc<Reloader>,
    _stopped: tokio::sync::watch::Receiver<()>,
) {
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #11: `feeds.bundled = false` and nothing synced served a known-malicious
    /// tarball with 200. Without advisory data the policy is unavailable (every request
    /// 503, with the reason) unless `server.fail-open` says otherwise.
    #[test]
    fn no_advisory_data_fails_closed_unless_fail_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::from_toml("[feeds]\nbundled = false\n", "t.toml").unwrap();
        config.server.data_dir = dir.path().to_owned();
        let store = Store::open(dir.path()).unwrap();
        match policy_state(&config, &store) {
            PolicyState::Unavailable(why) => assert!(why.contains("no advisory data"), "{why}"),
            PolicyState::Ready(_) => panic!("no advisory data must not be a ready policy"),
        }
        config.server.fail_open = true;
        assert!(matches!(
            policy_state(&config, &store),
            PolicyState::Ready(p) if p.runs_no_check()
        ));
    }

    /// sled keeps a write error until the store is reopened: the watchdog notices the
    /// failure (injected here, as a full disk cannot be made portably), and the proxy
    /// serves again over a reopened store without a restart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_that_stops_taking_writes_is_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.server.data_dir = dir.path().to_owned();
        let reloader = Reloader::new(config.clone(), config.clone(), || Ok(Config::default()));
        let generation = Generation::open(&reloader, None, None).unwrap();
        let live = Live::new(&generation, reloader);
        let store = generation.into_store();
        store.inject_write_fault(true);
        let readyz = || {
            let mut request = axum::extract::Request::get("/readyz")
                .body(axum::body::Body::empty())
                .unwrap();
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(SocketAddr::from((
                    [127, 0, 0, 1],
                    40000,
                ))));
            serving(Arc::clone(&live.mirror)).oneshot(request)
        };
        assert_eq!(readyz().await.unwrap().status(), 503);
        let (stop, stopped) = tokio::sync::watch::channel(());
        let watchdog = tokio::spawn(keep_store_writable(
            None,
            None,
            live.clone(),
            store,
            Duration::from_millis(50),
            stopped,
        ));
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while readyz().await.unwrap().status() != 200 {
            assert!(std::time::Instant::now() < deadline, "never reopened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.send(()).unwrap();
        let store = watchdog.await.unwrap().expect("a reopened store");
        store.probe_write().unwrap();
    }

    /// `feeds.refresh-hours`: the configured sources are synced in the background, again
    /// and again; a source that fails is recorded, keeps what it had, and the proxy keeps
    /// serving with the policy in force.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scheduled_feed_refresh_syncs_and_survives_a_failing_source() {
        let dir = tempfile::tempdir().unwrap();
        // Nothing listens on port 1: every sync of this source fails.
        let text = "[feeds]\nrefresh-hours = 1\n[[feeds.sources]]\nname = \"gone\"\n\
                    url = \"http://127.0.0.1:1/all.zip\"\n";
        let mut config = Config::from_toml(text, "t.toml").unwrap();
        assert_eq!(config.feeds.refresh_hours, 1);
        config.server.data_dir = dir.path().to_owned();
        let reloader = Reloader::new(config.clone(), config.clone(), || Ok(Config::default()));
        let generation = Generation::open(&reloader, None, None).unwrap();
        let live = Live::new(&generation, reloader);
        let store = generation.into_store();
        let (stop, stopped) = tokio::sync::watch::channel(());
        let refresher = tokio::spawn(refresh_feeds(
            live.clone(),
            Duration::from_millis(50),
            stopped,
        ));
        let feeds = crate::store::feeds::FeedStore::new(&store).unwrap();
        let failures = || {
            feeds
                .status()
                .unwrap()
                .into_iter()
                .find(|s| s.name == "gone")
                .and_then(|s| s.last_error_at)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let first = loop {
            if let Some(at) = failures() {
                break at;
            }
            assert!(std::time::Instant::now() < deadline, "never synced");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        while failures() == Some(first) {
            assert!(std::time::Instant::now() < deadline, "synced only once");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut request = axum::extract::Request::get("/readyz")
            .body(axum::body::Body::empty())
            .unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(SocketAddr::from((
                [127, 0, 0, 1],
                40000,
            ))));
        let ready = serving(Arc::clone(&live.mirror)).oneshot(request).await;
        assert_eq!(ready.unwrap().status(), 200, "still serving");
        stop.send(()).unwrap();
        refresher.await.unwrap();
        assert!(Config::from_toml("[feeds]\nrefresh-hours = 100000\n", "t").is_err());
    }

    #[test]
    fn listen_override_moves_a_derived_public_url_only() {
        let mut c = Config::from_toml("", "t").unwrap();
        follow_listen(&mut c, "127.0.0.1:9999".parse().unwrap());
        assert_eq!(c.server.public_url.as_str(), "http://127.0.0.1:9999/");
        let mut c =
            Config::from_toml("[server]\npublic-url = \"https://fw.example/\"", "t").unwrap();
        follow_listen(&mut c, "127.0.0.1:9999".parse().unwrap());
        assert_eq!(c.server.public_url.as_str(), "https://fw.example/");
    }
}
