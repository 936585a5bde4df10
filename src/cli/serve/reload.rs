//! `kill -HUP <pid>` and `POST /admin/api/reload`: `depfw serve` re-reads its config file
//! and applies the new policy without a restart.
//!
//! A rollout changes the policy often (monitor mode for a week, then one agent enforced,
//! then everyone), and a restart drops every cache and in-flight install. A reload reads
//! the file again and validates all of it: a file with problems is refused as a whole,
//! with every problem (logged, and in the API's answer), and the policy in force stays.
//!
//! What changes live: [`LIVE`], the policy (`[policy]`: checks, `mode` and its agent lists)
//! and the config's allow and deny lists (`[overrides]`). They go into a new policy built
//! over the advisories already stored, installed for the next request (a request in flight
//! finishes under the policy it started with). Everything else is read once at start, and
//! a reload that finds it changed says which sections wait for a restart ([`RESTART`]):
//! addresses, TLS, the data directory and the store are bound or opened once; upstreams,
//! caches and limits size structures built at start; feed sources are what `feeds sync`
//! reads.

use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use crate::config::Config;

/// The sections a reload applies.
pub(crate) const LIVE: &[&str] = &["policy", "overrides"];

/// The sections read once at start, and why: a reload reports a change to them and
/// leaves them as they were.
pub(crate) const RESTART: &[&str] = &[
    "server", "upstream", "feeds", "agents", "admin", "log", "audit", "store",
];

/// The config as the running server uses it: a reload replaces its live sections, and
/// whatever builds a policy later (an override change, a feed sync) reads it then.
#[derive(Clone)]
pub(crate) struct LiveConfig(Arc<RwLock<Config>>);

impl LiveConfig {
    pub(crate) fn new(config: Config) -> LiveConfig {
        LiveConfig(Arc::new(RwLock::new(config)))
    }

    /// The config in force now.
    pub(crate) fn get(&self) -> Config {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, config: Config) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = config;
    }
}

/// Builds and installs the policy of a config on the proxy serving now; `Err` leaves the
/// policy in force.
pub(crate) type Apply = Arc<dyn Fn(&Config) -> anyhow::Result<String> + Send + Sync>;

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Reloaded {
    pub reloaded: bool,
    /// The sections applied ([`LIVE`]).
    pub applied: Vec<&'static str>,
    /// Sections whose change waits for a restart.
    pub restart_needed: Vec<&'static str>,
    /// The policy revision now in force.
    pub revision: String,
}

/// Why a reload was refused: every problem, the policy in force unchanged.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Refused {
    pub reloaded: bool,
    pub errors: Vec<String>,
}

impl Refused {
    fn new(errors: Vec<String>) -> Refused {
        Refused {
            reloaded: false,
            errors,
        }
    }
}

/// Re-reads the config and applies its live sections; one reload at a time.
pub(crate) struct Reloader {
    /// Reads and validates the config file, with the command line's settings applied.
    reread: Box<dyn Fn() -> anyhow::Result<Config> + Send + Sync>,
    /// The config as read at start: what the restart-only sections are compared with.
    started: Config,
    pub(crate) live: LiveConfig,
    /// The proxy serving now (`None` while the store is reopened, see `serve`).
    apply: RwLock<Option<Apply>>,
    one_at_a_time: Mutex<()>,
}

impl Reloader {
    /// `started`: the config as read at start; `running`: as the server runs it (its
    /// listen address the one bound).
    pub(crate) fn new(
        started: Config,
        running: Config,
        reread: impl Fn() -> anyhow::Result<Config> + Send + Sync + 'static,
    ) -> Arc<Reloader> {
        Arc::new(Reloader {
            reread: Box::new(reread),
            live: LiveConfig::new(running),
            started,
            apply: RwLock::new(None),
            one_at_a_time: Mutex::new(()),
        })
    }

    /// Points reloads at the proxy now serving (`None`: none is, reloads are refused).
    pub(crate) fn serve_with(&self, apply: Option<Apply>) {
        *self.apply.write().unwrap_or_else(|e| e.into_inner()) = apply;
    }

    /// Re-reads the config file and installs the policy of its live sections. Blocking
    /// (it reads the file and the stored advisories): call it off the runtime's workers.
    pub(crate) fn reload(&self) -> Result<Reloaded, Refused> {
        let _one = self.one_at_a_time.lock().unwrap_or_else(|e| e.into_inner());
        let new = (self.reread)().map_err(|e| Refused::new(problems(&e)))?;
        let apply = self.apply.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(apply) = apply else {
            return Err(Refused::new(vec![
                "the store is being reopened: nothing is served to reload; try again".to_owned(),
            ]));
        };
        let previous = self.live.get();
        let mut effective = previous.clone();
        effective.policy = new.policy.clone();
        // Which names a private upstream serves follows the upstreams in force (read once
        // at start), never the new file's: exempting a scope that is still fetched from the
        // public registry would let a public namesake through.
        effective.policy.internal_names.served_privately = effective.upstream.private_names();
        effective.overrides = Arc::clone(&new.overrides);
        // In force before the policy is installed: an override change meanwhile rebuilds
        // over the new config, never the old one over the new policy.
        self.live.set(effective.clone());
        let revision = apply(&effective).map_err(|e| {
            self.live.set(previous);
            Refused::new(vec![format!(
                "the policy of the new config cannot be built: {e:#}"
            )])
        })?;
        Ok(Reloaded {
            reloaded: true,
            applied: LIVE.to_vec(),
            restart_needed: restart_needed(&self.started, &new),
            revision,
        })
    }

    /// [`Reloader::reload`], logged: what SIGHUP runs.
    pub(crate) fn reload_logged(&self) {
        match self.reload() {
            Ok(done) => {
                tracing::info!(revision = %done.revision, "config reloaded: [policy] and [overrides] apply from the next request");
                if !done.restart_needed.is_empty() {
                    tracing::warn!(
                        sections = %done.restart_needed.join(", "),
                        "config reloaded, but these sections changed and apply only after a restart"
                    );
                }
            }
            Err(refused) => {
                for error in &refused.errors {
                    tracing::error!(error = %error, "config reload refused; the policy in force stays");
                }
            }
        }
    }
}

/// Each problem of a config that did not load, one line each.
fn problems(e: &anyhow::Error) -> Vec<String> {
    match e.downcast_ref::<crate::config::ConfigError>() {
        Some(config) if !config.problems.is_empty() => config
            .problems
            .iter()
            .map(|p| match p.key.as_str() {
                "" => format!("{}: {}", config.file, p.message),
                key => format!("{}: key `{key}`: {}", config.file, p.message),
            })
            .collect(),
        _ => vec![format!("{e:#}")],
    }
}

/// The restart-only sections that differ between `started` and `new`.
fn restart_needed(started: &Config, new: &Config) -> Vec<&'static str> {
    // Compared in memory only: the texts may hold a database URL and are never shown.
    let sections = |c: &Config| {
        [
            format!("{:?}", c.server),
            format!("{:?}", c.upstream),
            format!("{:?}", c.feeds),
            format!("{:?}", c.agents),
            format!("{:?}", c.admin),
            format!("{:?}", c.log),
            format!("{:?}", c.audit),
            format!("{:?}", c.store),
        ]
    };
    let (before, after) = (sections(started), sections(new));
    RESTART
        .iter()
        .zip(before.iter().zip(&after))
        .filter(|(_, (b, a))| b != a)
        .map(|(name, _)| *name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reloader(text: Arc<Mutex<String>>) -> Arc<Reloader> {
        let started = Config::from_toml(&text.lock().unwrap(), "depfw.toml").unwrap();
        Reloader::new(started.clone(), started, move || {
            Ok(Config::from_toml(&text.lock().unwrap(), "depfw.toml")?)
        })
    }

    #[test]
    fn a_bad_config_is_refused_with_every_problem_and_changes_nothing() {
        let text = Arc::new(Mutex::new("[policy]\nmode = \"monitor\"\n".to_owned()));
        let r = reloader(Arc::clone(&text));
        let applied = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&applied);
        r.serve_with(Some(Arc::new(move |c: &Config| {
            seen.lock().unwrap().push(c.policy.enforcement.mode);
            Ok("rev".to_owned())
        })));
        *text.lock().unwrap() =
            "[policy]\nmode = \"watch\"\n[agents]\nstrict-warn = \"allow\"\n".to_owned();
        let refused = r.reload().unwrap_err();
        assert_eq!(refused.errors.len(), 2, "{:?}", refused.errors);
        assert!(refused.errors[0].contains("policy.mode"), "{refused:?}");
        assert!(applied.lock().unwrap().is_empty());
        assert_eq!(
            r.live.get().policy.enforcement.mode,
            crate::policy::Mode::Monitor
        );

        *text.lock().unwrap() =
            "[policy]\nmode = \"enforce\"\n[server]\nlisten = \"127.0.0.1:1\"\n".to_owned();
        let done = r.reload().unwrap();
        assert_eq!(done.restart_needed, ["server"]);
        assert_eq!(*applied.lock().unwrap(), [crate::policy::Mode::Enforce]);
        assert_eq!(
            r.live.get().policy.enforcement.mode,
            crate::policy::Mode::Enforce
        );
        // The server section in force is still the one it started with.
        assert_ne!(r.live.get().server.listen.port(), 1);
    }

    #[test]
    fn a_reload_cannot_exempt_a_scope_that_is_still_fetched_from_the_public_registry() {
        let text = Arc::new(Mutex::new(String::new()));
        let r = reloader(Arc::clone(&text));
        r.serve_with(Some(Arc::new(|_: &Config| Ok("rev".to_owned()))));
        // `[upstream]` is read at start only: the new scope is not routed until a restart.
        *text.lock().unwrap() = "[[upstream.npm.scopes]]\nscope = \"@corp\"\n\
                                 registry = \"https://npm.corp.example/\"\n"
            .to_owned();
        let done = r.reload().unwrap();
        assert_eq!(done.restart_needed, ["upstream"]);
        assert!(r
            .live
            .get()
            .policy
            .internal_names
            .served_privately
            .is_empty());
    }

    #[test]
    fn a_policy_that_cannot_be_built_is_refused() {
        let text = Arc::new(Mutex::new(String::new()));
        let r = reloader(Arc::clone(&text));
        *text.lock().unwrap() = "[policy]\nmode = \"monitor\"\n".to_owned();
        assert!(r.reload().is_err(), "nothing served yet");
        r.serve_with(Some(Arc::new(|_: &Config| anyhow::bail!("no feeds"))));
        let refused = r.reload().unwrap_err();
        assert!(refused.errors[0].contains("no feeds"), "{refused:?}");
        assert_eq!(
            r.live.get().policy.enforcement.mode,
            crate::policy::Mode::Enforce,
            "the config in force is the old one"
        );
    }
}
