//! `depfw.toml`: parsed, then validated into [`Config`].
//!
//! Every command takes `--config FILE`; without one the embedded defaults apply (the same
//! values `config/depfw.example.toml` documents). Parsing rejects unknown keys and wrong
//! types (toml reports the line); validation then checks every value and reports *all*
//! problems at once, each naming the file and the key, before anything starts.

mod raw;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use url::Url;

use crate::package::{Ecosystem, PackageName};
use crate::policy::overrides::{OverrideEntry, OverrideKind, Overrides, VersionScope};
use crate::policy::{Severity, Verdict};

pub use raw::RawConfig;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `policy.advisories.deny-at` or `overrides.allow[1].versions`.
    pub key: String,
    pub message: String,
}

/// A config file that could not be used; lists every problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration in {}", self.file)?;
        for p in &self.problems {
            if p.key.is_empty() {
                write!(f, "\n  {}", p.message)?;
            } else {
                write!(f, "\n  {}: key `{}`: {}", self.file, p.key, p.message)?;
            }
        }
        Ok(())
    }
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    /// Deprecated keys the file used (each with the key that replaces it); logged as
    /// warnings when the file is loaded, never an error on their own.
    pub warnings: Vec<ConfigProblem>,
    pub feeds: FeedsConfig,
    pub policy: PolicyConfig,
    /// Entries from `[[overrides.allow]]` and `[[overrides.deny]]`.
    pub overrides: Arc<Overrides>,
    pub agents: AgentsConfig,
    pub admin: AdminConfig,
}

/// `[admin]`: where the admin endpoint's token comes from (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// A file whose first line is the token; wins over `token_env`.
    pub token_file: Option<PathBuf>,
    /// The environment variable read when `token_file` is unset.
    pub token_env: String,
    /// Reverse proxies whose `X-Forwarded-For` names the client, for counting wrong tokens
    /// per client rather than per proxy (`admin::throttle`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// `[agents]`: per-agent presets and the circuit breaker.
#[derive(Debug, Clone)]
pub struct AgentsConfig {
    /// The preset `depfw agents add` gives without `--policy`.
    pub default_policy: crate::agents::PolicyPreset,
    /// What the `strict` preset makes of a `warn` verdict: quarantine or deny.
    pub strict_warn: Verdict,
    /// Circuit-breaker limits per agent and hour (0 turns one off).
    pub limits: crate::agents::BreakerLimits,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The base URL clients reach depfw at; rewritten metadata URLs start with it.
    pub public_url: Url,
    pub data_dir: PathBuf,
    /// Serve without policy when feeds cannot be loaded (default: refuse, fail closed).
    pub fail_open: bool,
    /// Who may use the proxy without an agent token (`/npm/…` rather than `/a/<token>/npm/…`).
    pub allow_anonymous: AnonymousAccess,
    /// What metadata says about refused (denied or quarantined) versions.
    pub refused_versions: RefusedVersions,
}

/// `server.refused-versions`: what cargo index files and PyPI project pages do with a
/// version the policy refuses. npm has no yank, so npm metadata always removes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefusedVersions {
    /// Left out of the metadata: an exact pin or a lockfile fails at resolution with the
    /// client's "no such version" error, never reaching the artifact gate.
    #[default]
    Remove,
    /// Listed but yanked (with depfw's reason on PyPI): new resolutions skip it, while an
    /// exact pin or a lockfile selects it, the client shows the yank reason, and the
    /// artifact gate refuses the download with its 403 body.
    Yank,
}

/// `server.allow-anonymous`: requests without an agent token are served from
/// loopback peers only (the default), from anyone, or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnonymousAccess {
    Loopback,
    Always,
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// `upstream.npm.registry`.
    pub npm: Url,
    /// `upstream.pypi.index`: the simple index.
    pub pypi: Url,
    /// `upstream.pypi.files`: where the index's file URLs point.
    pub pypi_files: Url,
    /// `upstream.pypi.json-api` (`{json-api}/{project}/{version}/json`), read by `depfw audit
    /// --online` for licenses, which the simple index does not carry.
    pub pypi_json: Url,
    /// `upstream.cargo.index`: the sparse index.
    pub cargo_index: Url,
    pub timeout_secs: u64,
    pub max_metadata_bytes: u64,
    pub max_artifact_bytes: u64,
    pub metadata_ttl_secs: u64,
    pub metadata_cache_entries: u64,
    /// Byte budget of each render-cache map (parsed documents, rendered responses).
    pub render_cache_bytes: u64,
    pub artifact_cache_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct FeedsConfig {
    /// Load the snapshot compiled into the binary when the store has no feeds.
    pub bundled: bool,
    pub sources: Vec<FeedSource>,
    pub stale_after_days: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSource {
    pub name: String,
    pub url: Url,
}

#[derive(Debug, Clone)]
pub struct PolicyConfig {
    pub advisories: AdvisoriesConfig,
    pub typosquat: TyposquatConfig,
    pub license: LicenseConfig,
    pub reputation: ReputationConfig,
}

#[derive(Debug, Clone)]
pub struct AdvisoriesConfig {
    /// Vulnerabilities at or above this severity are denied; below it they warn.
    pub deny_at: Severity,
    /// The verdict for a vulnerability whose severity is unknown and that names a fix.
    pub unknown_severity: Verdict,
    /// The verdict for a vulnerability whose severity is unknown and that names no fixed
    /// version above the evaluated one (`unfixed-advisory`).
    pub unfixed: Verdict,
    /// The verdict for informational advisories (unmaintained, unsound, notice).
    pub informational: Verdict,
    /// Advisory ids (or aliases) that are ignored.
    pub ignore: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TyposquatConfig {
    pub enabled: bool,
    /// For a name suspected of imitating a popular one (`possible-typosquat`).
    pub verdict: Verdict,
    /// For a name that resembles a popular one on an established package, or only weakly
    /// with the package's age unknown (`look-alike-name`).
    pub look_alike: Verdict,
    /// A package whose first release is at least this many days old is established.
    pub established_days: u64,
    /// Extra names treated as popular (internal packages, say).
    pub extra_popular: BTreeMap<Ecosystem, Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct LicenseConfig {
    /// If non-empty, only these licenses are allowed.
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub denied: Verdict,
    pub not_allowed: Verdict,
    pub missing: Verdict,
    pub unparsable: Verdict,
}

#[derive(Debug, Clone)]
pub struct ReputationConfig {
    pub cooldown_hours: u64,
    pub cooldown: Verdict,
    pub new_package_days: u64,
    pub new_package: Verdict,
    pub install_scripts: Verdict,
    pub deprecated: Verdict,
    pub yanked: Verdict,
}

impl Default for Config {
    fn default() -> Self {
        // The embedded defaults are the RawConfig defaults, which always validate.
        RawConfig::default()
            .validate()
            .unwrap_or_else(|problems| unreachable!("embedded defaults are invalid: {problems:?}"))
    }
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            problems: vec![ConfigProblem {
                key: String::new(),
                message: format!("cannot read the file: {e}"),
            }],
        })?;
        Self::from_toml(&text, &file)
    }

    /// Parses and validates TOML text; `file` names the source in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            file: file.to_owned(),
            problems: vec![ConfigProblem {
                key: String::new(),
                message: e.to_string().trim_end().to_owned(),
            }],
        })?;
        let config = raw.validate().map_err(|problems| ConfigError {
            file: file.to_owned(),
            problems,
        })?;
        for w in &config.warnings {
            tracing::warn!("{file}: key `{}`: {}", w.key, w.message);
        }
        Ok(config)
    }

    /// A stable digest of the policy-relevant settings, part of the policy revision.
    pub fn policy_fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let text = format!("{:?}|{:?}", self.policy, self.overrides.entries());
        hex::encode(&Sha256::digest(text.as_bytes())[..8])
    }
}

/// Collects problems during validation.
#[derive(Default)]
pub(crate) struct Problems(pub Vec<ConfigProblem>);

impl Problems {
    pub fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            key: key.into(),
            message: message.into(),
        });
    }

    pub fn verdict(&mut self, key: &str, value: &str) -> Verdict {
        value.parse().unwrap_or_else(|e: String| {
            self.push(key, e);
            Verdict::Deny
        })
    }

    pub fn url(&mut self, key: &str, value: &str) -> Url {
        match Url::parse(value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => url,
            Ok(_) => {
                self.push(key, format!("`{value}` is not an http(s) URL"));
                placeholder_url()
            }
            Err(e) => {
                self.push(key, format!("`{value}` is not a URL: {e}"));
                placeholder_url()
            }
        }
    }

    pub fn override_entry(
        &mut self,
        key: &str,
        kind: OverrideKind,
        entry: &raw::RawOverride,
    ) -> Option<OverrideEntry> {
        let before = self.0.len();
        let ecosystem = entry
            .ecosystem
            .parse::<Ecosystem>()
            .map_err(|e| self.push(format!("{key}.ecosystem"), e.to_string()))
            .ok();
        if entry.reason.trim().is_empty() {
            self.push(
                format!("{key}.reason"),
                "every override needs a reason: it is shown to whoever hits it",
            );
        }
        let expires = entry
            .expires
            .as_deref()
            .and_then(|text| match parse_expiry(text) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.push(format!("{key}.expires"), e);
                    None
                }
            });
        let ecosystem = ecosystem?;
        let name = PackageName::parse(ecosystem, &entry.name)
            .map_err(|e| self.push(format!("{key}.name"), e.to_string()))
            .ok();
        let versions = VersionScope::parse(ecosystem, entry.versions.as_deref().unwrap_or("*"))
            .map_err(|e| self.push(format!("{key}.versions"), e))
            .ok();
        if self.0.len() != before {
            return None;
        }
        Some(OverrideEntry {
            kind,
            name: name?,
            versions: versions?,
            reason: entry.reason.clone(),
            expires,
            created_by: "config".to_owned(),
        })
    }
}

fn placeholder_url() -> Url {
    Url::parse("http://invalid.invalid/").unwrap_or_else(|_| unreachable!("constant URL"))
}

/// An expiry: an RFC 3339 timestamp, or a plain date meaning its first instant (UTC).
pub fn parse_expiry(text: &str) -> Result<DateTime<Utc>, String> {
    crate::when::parse_since(text)
}

#[cfg(test)]
mod tests;
