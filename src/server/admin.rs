//! The admin endpoint inside `depfw serve`: connects [`crate::admin`] to the proxy's
//! decision log, the feed store, and the policy it enforces.
//!
//! An approval or override made on the admin page must apply to the very next request, so
//! `on_change` installs a policy with the current overrides before the admin response is
//! sent (`depfw serve` re-reads the overrides only: the advisories stay loaded).

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::{AppState, PolicyState};
use crate::admin::{self, AdminError, AdminState, AdminToken, FeedStatusSource, LogFilter};
use crate::audit::evaluate::{Answer, Query};
use crate::config::Config;
use crate::engine::feed_update::{self, FeedDetails, ImportError};
use crate::feeds::load_bytes;
use crate::store::decisions::{ChainStatus, RecordFilter};
use crate::store::feeds::{active_index, FeedStore};
use crate::store::repo::Backend;
use crate::store::signing::PublicKey;
use crate::store::Store;

/// The admin state for a running proxy over the sled `store`, with the admin token
/// `depfw serve` read once at start (`AdminToken::from_config`). `rebuild` builds the
/// policy from the store's current overrides; it runs on every admin change, serialised,
/// and its result is installed with `AppState::set_policy`.
pub fn admin_state(
    state: &AppState,
    config: &Config,
    store: &Store,
    token: AdminToken,
    rebuild: impl Fn() -> PolicyState + Send + Sync + 'static,
) -> anyhow::Result<AdminState> {
    let backend = Backend::Sled(store.clone());
    admin_state_with(state, config, &backend, store, token, rebuild)
}

/// [`admin_state`] over any backend: agents, overrides, quarantine (and on PostgreSQL,
/// sessions and the sign-in throttle) come from `backend`, the feed status from the local
/// `store`. `depfw serve` passes a `rebuild` that re-reads the overrides only.
pub fn admin_state_with(
    state: &AppState,
    config: &Config,
    backend: &Backend,
    store: &Store,
    token: AdminToken,
    rebuild: impl Fn() -> PolicyState + Send + Sync + 'static,
) -> anyhow::Result<AdminState> {
    let feeds = FeedSource {
        feeds: FeedStore::new(store)?,
        stale_after_days: config.feeds.stale_after_days,
        updates: None,
    };
    let proxy = state.clone();
    let serialise = Mutex::new(());
    let on_change = move || {
        let run = || {
            // A later change must not be overwritten by an earlier, slower rebuild.
            let _one_at_a_time = serialise.lock().unwrap_or_else(|e| e.into_inner());
            proxy.set_policy(rebuild());
        };
        // Reading the overrides waits for the store.
        super::blocking(run)
    };
    Ok(AdminState::with_backend(backend, Some(token))?
        .with_config(config)
        .with_log(Arc::new(ProxyLog(
            state.clone(),
            store.data_dir().map(ToOwned::to_owned),
        )))
        .with_feeds(Arc::new(feeds))
        .with_judge(Arc::new(ProxyJudge(state.clone())))
        .with_on_change(on_change))
}

/// `admin` taking `depfw feeds status|sync|import` through the admin API for the proxy
/// `state` over the local `store` (the sled store allows one process, so the command line
/// cannot open it while `depfw serve` runs). A sync uses the sources of `config`, the
/// server's own. After a sync or an import that stored data, `reload` builds the policy
/// again from the store's feeds, it is installed, and the overrides are applied to it once
/// more (`on_change`), so that one changed meanwhile is not lost: new advisories apply to
/// the next request, without a restart. One update runs at a time.
pub fn with_feed_updates(
    admin: AdminState,
    state: &AppState,
    config: &Config,
    store: &Store,
    reload: impl Fn() -> PolicyState + Send + Sync + 'static,
) -> anyhow::Result<AdminState> {
    let refresh = Arc::clone(&admin.on_change);
    let feeds = feed_updates(state, config, store, reload, refresh)?;
    Ok(admin.with_feeds(feeds))
}

/// The feed updates of the proxy `state` over the local `store`, as [`with_feed_updates`]
/// describes them: what the admin API's sync and import run, and `depfw serve`'s scheduled
/// refresh (`feeds.refresh-hours`) too, so that they run one at a time. `refresh` applies
/// the overrides again after the policy is rebuilt.
pub fn feed_updates(
    state: &AppState,
    config: &Config,
    store: &Store,
    reload: impl Fn() -> PolicyState + Send + Sync + 'static,
    refresh: Arc<dyn Fn() + Send + Sync>,
) -> anyhow::Result<Arc<dyn FeedStatusSource>> {
    let proxy = state.clone();
    let reload = move || {
        proxy.set_policy(reload());
        refresh();
    };
    let feeds = FeedSource {
        feeds: FeedStore::new(store)?,
        stale_after_days: config.feeds.stale_after_days,
        updates: Some(FeedUpdates {
            store: store.clone(),
            config: config.clone(),
            reload: Box::new(reload),
            one_at_a_time: Mutex::new(()),
        }),
    };
    Ok(Arc::new(feeds))
}

/// The policy the proxy enforces now, for `POST /admin/api/evaluate`.
struct ProxyJudge(AppState);

impl admin::PolicyJudge for ProxyJudge {
    fn evaluate(&self, queries: &[Query], fix: bool) -> Result<Vec<Answer>, admin::AdminError> {
        let current = self
            .0
            .policy()
            .map_err(|e| admin::AdminError::Unavailable(e.to_string()))?;
        let PolicyState::Ready(policy) = &*current else {
            return Err(admin::AdminError::Unavailable(
                "depfw serve has no policy".to_owned(),
            ));
        };
        if let Some(why) = crate::audit::evaluate::undecidable(policy, queries) {
            return Err(admin::AdminError::Unavailable(why));
        }
        let now = chrono::Utc::now();
        queries
            .iter()
            .map(|q| {
                crate::audit::evaluate::answer(policy, q, fix, now)
                    .map_err(admin::AdminError::BadRequest)
            })
            .collect()
    }
}

/// The decision log as the admin page queries it, and the data directory whose signing
/// key `verify` checks signatures against.
struct ProxyLog(AppState, Option<std::path::PathBuf>);

impl admin::DecisionLog for ProxyLog {
    fn query(&self, filter: &LogFilter) -> Result<Vec<Value>, String> {
        let records = self
            .0
            .decisions()
            .query(
                &RecordFilter {
                    agent: filter.agent.clone(),
                    package: filter.package.clone(),
                    verdict: filter.verdict,
                    since: filter.since,
                    until: filter.until,
                    would_refuse: filter.would_refuse,
                },
                filter.limit,
            )
            .map_err(|e| e.to_string())?;
        Ok(records
            .into_iter()
            .map(|r| {
                let agent = r.client.agent.clone();
                let mut v = serde_json::to_value(&r).unwrap_or(Value::Null);
                // The page gives top-level `agent` its own column.
                if let Value::Object(map) = &mut v {
                    map.insert("agent".to_owned(), json!(agent));
                }
                v
            })
            .collect())
    }

    fn verify(
        &self,
        public_key: Option<PublicKey>,
        checkpoints: Option<&str>,
    ) -> Result<admin::Verified, String> {
        let log = self.0.decisions();
        let (status, summary) =
            admin::chain::verify(log, self.1.as_deref(), public_key, checkpoints, &[])
                .map_err(|e| format!("{e:#}"))?;
        Ok(admin::Verified {
            intact: matches!(status, ChainStatus::Intact { .. }),
            report: format!("{status}{summary}"),
        })
    }

    fn export(
        &self,
        agent: Option<&str>,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<u8>, String> {
        let filter = RecordFilter {
            agent: agent.map(str::to_owned),
            since,
            ..RecordFilter::default()
        };
        let mut lines = Vec::new();
        self.0
            .decisions()
            .for_each_record(&filter, &mut |r| {
                serde_json::to_writer(&mut lines, r)?;
                lines.push(b'\n');
                Ok(())
            })
            .map_err(|e| format!("{e:#}"))?;
        Ok(lines)
    }
}

/// Feed freshness: one row per synced source, or the bundled snapshot when none is synced.
struct FeedSource {
    feeds: FeedStore,
    stale_after_days: u64,
    /// Set by [`with_feed_updates`].
    updates: Option<FeedUpdates>,
}

/// What a sync or an import through the admin API needs.
struct FeedUpdates {
    store: Store,
    config: Config,
    /// Builds and installs the policy with the store's feeds.
    reload: Box<dyn Fn() + Send + Sync>,
    one_at_a_time: Mutex<()>,
}

fn internal(e: impl Into<anyhow::Error>) -> AdminError {
    AdminError::Internal(format!("{:#}", e.into()))
}

impl FeedSource {
    fn updates(&self) -> Result<&FeedUpdates, AdminError> {
        self.updates.as_ref().ok_or_else(|| {
            AdminError::NotFound(
                "this server does not update feeds through its admin API".to_owned(),
            )
        })
    }
}

impl FeedStatusSource for FeedSource {
    fn details(&self) -> Result<Value, AdminError> {
        let updates = self.updates()?;
        let sources = self.feeds.status().map_err(internal)?;
        let index = active_index(&updates.config.feeds, Some(&updates.store)).map_err(internal)?;
        let details = FeedDetails {
            sources,
            coverage: feed_update::coverage(&index),
        };
        serde_json::to_value(details).map_err(internal)
    }

    fn sync(&self) -> Result<Value, AdminError> {
        let updates = self.updates()?;
        let _one = updates
            .one_at_a_time
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(internal)?;
        let timeout = std::time::Duration::from_secs(updates.config.upstream.timeout_secs);
        let report = runtime
            .block_on(feed_update::sync(
                &self.feeds,
                &updates.config.feeds.sources,
                timeout,
                false,
                &mut |source| match &source.error {
                    None => tracing::info!(
                        source = %source.name,
                        advisories = source.advisories.unwrap_or(0),
                        "feed synced"
                    ),
                    Some(error) => tracing::warn!(
                        source = %source.name,
                        error = %error,
                        "feed sync failed, its last good data stays in use"
                    ),
                },
            ))
            .map_err(internal)?;
        if report.sources.iter().any(|s| !s.failed()) {
            (updates.reload)();
        }
        serde_json::to_value(report).map_err(internal)
    }

    fn import(&self, name: &str, file: &str, bytes: &[u8]) -> Result<Value, AdminError> {
        let updates = self.updates()?;
        let _one = updates
            .one_at_a_time
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let loaded = load_bytes(std::path::Path::new(file), bytes);
        match feed_update::import(&self.feeds, name, loaded) {
            Ok(imported) => {
                tracing::info!(source = %name, advisories = imported.advisories, "feed imported (admin API)");
                (updates.reload)();
                serde_json::to_value(imported).map_err(internal)
            }
            Err(e @ ImportError::Feed { .. }) => Err(AdminError::BadRequest(format!(
                "{:#}",
                anyhow::Error::new(e)
            ))),
            Err(e) => Err(internal(e)),
        }
    }

    fn status(&self) -> Value {
        let now = chrono::Utc::now();
        let synced = match self.feeds.status() {
            Ok(s) => s,
            Err(e) => return json!([{ "source": "store", "error": e.to_string() }]),
        };
        if !synced.is_empty() {
            return Value::Array(
                synced
                    .iter()
                    .map(|s| {
                        json!({
                            "source": s.name,
                            "fetched_at": s.fetched_at,
                            "advisories": s.advisories(),
                            "stale": s.is_stale(now, self.stale_after_days),
                            "error": s.last_error,
                        })
                    })
                    .collect(),
            );
        }
        match crate::feeds::snapshot::bundled_meta() {
            Ok(meta) => Value::Array(
                meta.sources
                    .iter()
                    .map(|s| {
                        json!({
                            "source": format!("{} (bundled snapshot)", s.name),
                            "built_at": meta.built_at,
                            "data_as_of": s.data_as_of,
                            "advisories": s.advisories,
                            "stale": (now - meta.built_at).num_days()
                                > i64::try_from(self.stale_after_days).unwrap_or(i64::MAX),
                        })
                    })
                    .collect(),
            ),
            Err(e) => json!([{ "source": "bundled snapshot", "error": e.to_string() }]),
        }
    }
}
