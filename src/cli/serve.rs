//! `depfw serve`: runs the registry proxy until SIGINT/SIGTERM.
//!
//! Opens the store in the data directory, builds the policy, binds, logs where clients
//! should point (`depfw init` prints the per-client snippet) and serves until a signal,
//! letting requests in flight finish.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::Config;
use crate::policy::Policy;
use crate::server::{app_with_admin, AppState, PolicyState};
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
    let state = AppState::new(&config, &store, policy_state(&config, &store))?;
    tracing::info!(
        listen = %bound,
        npm = %format!("{}/npm/", state.public_base()),
        "depfw serve is listening"
    );
    // Admin changes (approvals, overrides) rebuild the policy so they apply at once.
    let rebuild = {
        let (config, store) = (config.clone(), store.clone());
        move || policy_state(&config, &store)
    };
    let admin = crate::server::admin::admin_state(&state, &config, &store, rebuild)?;
    // The peer address decides whether anonymous use is allowed (`server.allow-anonymous`).
    let service = app_with_admin(state, admin).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
    store.flush()?;
    tracing::info!("depfw serve stopped");
    Ok(())
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
