//! `depfw serve`: runs the registry proxy until SIGINT/SIGTERM.
//!
//! Opens the store in the data directory, builds the policy, binds the mirror
//! (`server.listen`) and, when an admin token is configured, the admin endpoint on its own
//! listener (`admin.listen`), logs both addresses (`depfw init` prints the per-client
//! snippet) and serves until a signal, letting requests in flight finish.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::{AdminListen, Config};
use crate::policy::Policy;
use crate::server::{app, AppState, PolicyState};
use crate::store::Store;

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
    let derived = format!("http://{}/", config.server.listen);
    if config.server.public_url.as_str() == derived {
        if let Ok(u) = url::Url::parse(&format!("http://{listen}/")) {
            config.server.public_url = u;
        }
    }
    config.server.listen = listen;
}

/// The policy to enforce, failing closed unless `server.fail-open` is set.
pub fn policy_state(config: &Config, store: &Store) -> PolicyState {
    match crate::engine::load(config, Some(store)) {
        Ok(engine) => PolicyState::Ready(engine.policy),
        Err(e) if config.server.fail_open => {
            tracing::error!(error = ?e, "policy failed to load; server.fail-open is set, serving with overrides only");
            PolicyState::Ready(Policy::new(
                Vec::new(),
                std::sync::Arc::clone(&config.overrides),
                format!("fail-open-{}", config.policy_fingerprint()),
            ))
        }
        Err(e) => {
            tracing::error!(error = ?e, "policy failed to load; refusing every package (server.fail-open = false)");
            PolicyState::Unavailable(format!("{e:#}"))
        }
    }
}

pub fn run(args: &ServeArgs, mut config: Config) -> anyhow::Result<ExitCode> {
    apply_args(args, &mut config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(mut config: Config) -> anyhow::Result<()> {
    // Before anything is opened: a token file other users can read is refused at once.
    let admin_token = crate::admin::AdminToken::from_config(&config.admin)?;
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "creating the data directory {}",
            config.server.data_dir.display()
        )
    })?;
    let store = Store::open(&config.server.data_dir)?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let bound = listener.local_addr()?;
    follow_listen(&mut config, bound);
    // The admin endpoint only exists with a token; without one nothing is bound for it.
    let admin_listener = match admin_token {
        Some(_) => Some(AdminListener::bind(&config.admin.listen).await?),
        None => None,
    };
    let state = AppState::new(&config, &store, policy_state(&config, &store))?;
    let admin_at = match &admin_listener {
        Some(l) => format!("{}{}", l.address(), crate::admin::MOUNT),
        None => "off (no admin token: set `[admin] token-file`)".to_owned(),
    };
    tracing::info!(
        listen = %bound,
        npm = %format!("{}/npm/", state.public_base()),
        admin = %admin_at,
        "depfw serve is listening"
    );
    let (stop, stopped) = tokio::sync::watch::channel(());
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.changed().await;
        }
    };
    let admin_serve = match admin_listener {
        Some(listener) => {
            // Admin changes (approvals, overrides) rebuild the policy so they apply at once.
            let rebuild = {
                let (config, store) = (config.clone(), store.clone());
                move || policy_state(&config, &store)
            };
            let admin = crate::server::admin::admin_state(&state, &config, &store, rebuild)?;
            Some(listener.serve(crate::admin::standalone(admin), until_stopped()))
        }
        None => None,
    };
    // The peer address decides whether anonymous use is allowed (`server.allow-anonymous`).
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    let mirror = axum::serve(listener, service).with_graceful_shutdown(until_stopped());
    let signal = async move {
        shutdown_signal().await;
        let _ = stop.send(());
        Ok(())
    };
    let admin = async move {
        match admin_serve {
            Some(serving) => serving.await,
            None => Ok(()),
        }
    };
    tokio::try_join!(async { mirror.await.context("serving") }, admin, signal)?;
    store.flush()?;
    tracing::info!("depfw serve stopped");
    Ok(())
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

    /// Where an admin points the browser or `curl`.
    fn address(&self) -> String {
        match self {
            AdminListener::Tcp(l) => l
                .local_addr()
                .map(|a| format!("http://{a}"))
                .unwrap_or_else(|_| "http://?".to_owned()),
            #[cfg(unix)]
            AdminListener::Unix(_, path) => format!("unix:{} (curl --unix-socket)", path.display()),
        }
    }

    async fn serve(
        self,
        router: axum::Router,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        match self {
            // The peer address counts wrong tokens (`admin::throttle`).
            AdminListener::Tcp(l) => axum::serve(
                l,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stop)
            .await
            .context("serving the admin endpoint"),
            #[cfg(unix)]
            AdminListener::Unix(l, path) => {
                let served = axum::serve(l, router.into_make_service())
                    .with_graceful_shutdown(stop)
                    .await
                    .context("serving the admin endpoint");
                let _ = std::fs::remove_file(path);
                served
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;

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
