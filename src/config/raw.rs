//! The config file as written: serde structs with defaults, unknown keys rejected.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::{
    AdminConfig, AdminListen, AdvisoriesConfig, AgentsConfig, AnonymousAccess, Config,
    ConfigProblem, FeedSource, FeedsConfig, LicenseConfig, LogConfig, PolicyConfig, Problems,
    RefusedVersions, ReputationConfig, ServerConfig, TyposquatConfig, UpstreamConfig,
};
use crate::agents::{BreakerLimits, PolicyPreset};
use crate::package::Ecosystem;
use crate::policy::overrides::{OverrideKind, Overrides};
use crate::policy::{Severity, Verdict};

/// The default listen address and port (documented in the README).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
/// Where crates.io's index (`index.crates.io`) sends downloads.
pub const DEFAULT_CARGO_DOWNLOADS: &str = "https://static.crates.io";
/// The admin endpoint's own listener: loopback, the port after the mirror's.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:7879";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawConfig {
    pub server: RawServer,
    pub upstream: RawUpstream,
    pub feeds: RawFeeds,
    pub policy: RawPolicy,
    pub overrides: RawOverrides,
    pub agents: RawAgents,
    pub admin: RawAdmin,
    pub log: RawLog,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawServer {
    pub listen: String,
    pub public_url: Option<String>,
    pub data_dir: PathBuf,
    pub fail_open: bool,
    pub allow_anonymous: String,
    pub refused_versions: String,
    /// Hosts cargo downloads may come from besides the index's own.
    pub cargo_download_origins: Vec<String>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: DEFAULT_LISTEN.to_owned(),
            public_url: None,
            data_dir: PathBuf::from(".depfw"),
            fail_open: false,
            allow_anonymous: "loopback".to_owned(),
            refused_versions: "remove".to_owned(),
            cargo_download_origins: vec![DEFAULT_CARGO_DOWNLOADS.to_owned()],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawUpstream {
    pub npm: String,
    pub pypi: String,
    pub pypi_files: String,
    pub pypi_json: String,
    pub cargo_index: String,
    pub timeout_secs: u64,
    pub max_metadata_bytes: u64,
    pub max_artifact_bytes: u64,
    pub metadata_ttl_secs: u64,
    pub metadata_cache_entries: u64,
    pub render_cache_bytes: u64,
    pub artifact_cache_bytes: u64,
}

impl Default for RawUpstream {
    fn default() -> Self {
        RawUpstream {
            npm: "https://registry.npmjs.org/".to_owned(),
            pypi: "https://pypi.org/simple/".to_owned(),
            pypi_files: "https://files.pythonhosted.org/".to_owned(),
            pypi_json: "https://pypi.org/pypi/".to_owned(),
            cargo_index: "https://index.crates.io/".to_owned(),
            timeout_secs: 30,
            max_metadata_bytes: 64 * 1024 * 1024,
            max_artifact_bytes: 512 * 1024 * 1024,
            metadata_ttl_secs: 300,
            metadata_cache_entries: 10_000,
            render_cache_bytes: 256 * 1024 * 1024,
            artifact_cache_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawFeeds {
    pub bundled: bool,
    pub sources: Vec<RawFeedSource>,
    pub stale_after_days: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawFeedSource {
    pub name: String,
    pub url: String,
}

impl Default for RawFeeds {
    fn default() -> Self {
        let osv = |eco: &str| RawFeedSource {
            name: format!("osv-{}", eco.to_ascii_lowercase().replace('.', "-")),
            url: format!("https://osv-vulnerabilities.storage.googleapis.com/{eco}/all.zip"),
        };
        RawFeeds {
            bundled: true,
            sources: vec![osv("npm"), osv("PyPI"), osv("crates.io")],
            stale_after_days: 7,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPolicy {
    pub advisories: RawAdvisories,
    pub typosquat: RawTyposquat,
    pub license: RawLicense,
    pub reputation: RawReputation,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawAdvisories {
    pub deny_at: String,
    pub unknown_severity: String,
    pub unfixed: String,
    pub informational: String,
    pub ignore: Vec<String>,
}

impl Default for RawAdvisories {
    fn default() -> Self {
        RawAdvisories {
            deny_at: "high".to_owned(),
            unknown_severity: "deny".to_owned(),
            unfixed: "warn".to_owned(),
            informational: "warn".to_owned(),
            ignore: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawTyposquat {
    pub enabled: bool,
    pub verdict: String,
    pub look_alike: String,
    pub established_days: u64,
    pub extra_popular: BTreeMap<String, Vec<String>>,
}

impl Default for RawTyposquat {
    fn default() -> Self {
        RawTyposquat {
            enabled: true,
            verdict: "quarantine".to_owned(),
            look_alike: "warn".to_owned(),
            established_days: 90,
            extra_popular: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawLicense {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub denied: String,
    pub not_allowed: String,
    pub missing: String,
    pub unparsable: String,
}

impl Default for RawLicense {
    fn default() -> Self {
        RawLicense {
            allow: Vec::new(),
            deny: [
                "AGPL-1.0",
                "AGPL-3.0",
                "SSPL-1.0",
                "BUSL-1.1",
                "CC-BY-NC-4.0",
            ]
            .map(str::to_owned)
            .to_vec(),
            denied: "deny".to_owned(),
            not_allowed: "quarantine".to_owned(),
            missing: "warn".to_owned(),
            unparsable: "warn".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawReputation {
    pub cooldown_hours: u64,
    pub cooldown: String,
    pub new_package_days: u64,
    pub new_package: String,
    pub install_scripts: String,
    pub deprecated: String,
    pub yanked: String,
}

impl Default for RawReputation {
    fn default() -> Self {
        RawReputation {
            cooldown_hours: 48,
            cooldown: "quarantine".to_owned(),
            new_package_days: 14,
            new_package: "quarantine".to_owned(),
            install_scripts: "warn".to_owned(),
            deprecated: "warn".to_owned(),
            yanked: "deny".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawAgents {
    pub default_policy: String,
    pub strict_warn: String,
    pub max_new_packages_per_hour: u32,
    pub max_refusals_per_hour: u32,
}

impl Default for RawAgents {
    fn default() -> Self {
        let limits = BreakerLimits::default();
        RawAgents {
            default_policy: "default".to_owned(),
            strict_warn: "deny".to_owned(),
            max_new_packages_per_hour: limits.max_new_packages_per_hour,
            max_refusals_per_hour: limits.max_refusals_per_hour,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawAdmin {
    /// The admin endpoint's own address (`host:port` or `unix:/path`).
    pub listen: String,
    /// A file whose first line is the admin token.
    pub token_file: Option<PathBuf>,
    /// The environment variable holding the admin token when `token-file` is unset.
    pub token_env: String,
    /// Reverse proxies trusted to name the client in `X-Forwarded-For`.
    pub trusted_proxies: Vec<String>,
}

impl Default for RawAdmin {
    fn default() -> Self {
        RawAdmin {
            listen: DEFAULT_ADMIN_LISTEN.to_owned(),
            token_file: None,
            token_env: "DEPFW_ADMIN_TOKEN".to_owned(),
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawLog {
    pub checkpoint_file: Option<PathBuf>,
    pub checkpoint_log: bool,
    pub checkpoint_every_records: u64,
    pub checkpoint_every_secs: u64,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            checkpoint_file: None,
            checkpoint_log: true,
            checkpoint_every_records: 1000,
            checkpoint_every_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawOverrides {
    pub allow: Vec<RawOverride>,
    pub deny: Vec<RawOverride>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawOverride {
    pub ecosystem: String,
    pub name: String,
    /// `*` (default), an exact version, or a range.
    pub versions: Option<String>,
    pub reason: String,
    /// `YYYY-MM-DD` or RFC 3339.
    pub expires: Option<String>,
}

impl RawConfig {
    /// Checks every value; returns all problems, not just the first.
    pub fn validate(self) -> Result<Config, Vec<ConfigProblem>> {
        let mut p = Problems::default();

        let listen = self
            .server
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| {
                p.push(
                    "server.listen",
                    format!(
                        "`{}` is not an address like 127.0.0.1:7878: {e}",
                        self.server.listen
                    ),
                )
            })
            .unwrap_or_else(|()| SocketAddr::from(([127, 0, 0, 1], 7878)));
        let public_url_text = self
            .server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{listen}"));
        let public_url = p.url("server.public-url", &public_url_text);
        let allow_anonymous = match self.server.allow_anonymous.as_str() {
            "loopback" => AnonymousAccess::Loopback,
            "always" => AnonymousAccess::Always,
            "never" => AnonymousAccess::Never,
            other => {
                p.push(
                    "server.allow-anonymous",
                    format!("`{other}` is not one of `loopback`, `always`, `never`"),
                );
                AnonymousAccess::Loopback
            }
        };
        let refused_versions = match self.server.refused_versions.as_str() {
            "remove" => RefusedVersions::Remove,
            "yank" => RefusedVersions::Yank,
            other => {
                p.push(
                    "server.refused-versions",
                    format!("`{other}` is not one of `remove`, `yank`"),
                );
                RefusedVersions::Remove
            }
        };
        let mut cargo_download_origins = Vec::new();
        for (i, raw) in self.server.cargo_download_origins.iter().enumerate() {
            let key = format!("server.cargo-download-origins[{i}]");
            match url::Url::parse(raw) {
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.host().is_some()
                        && matches!(u.path(), "" | "/")
                        && u.query().is_none() =>
                {
                    cargo_download_origins.push(u);
                }
                _ => p.push(
                    key,
                    format!(
                        "`{raw}` is not an origin like https://static.crates.io (scheme, host, \
                         optional port, no path)"
                    ),
                ),
            }
        }
        let server = ServerConfig {
            cargo_download_origins,
            listen,
            public_url,
            data_dir: self.server.data_dir,
            fail_open: self.server.fail_open,
            allow_anonymous,
            refused_versions,
        };

        let u = self.upstream;
        for (key, value) in [
            ("upstream.timeout-secs", u.timeout_secs),
            ("upstream.max-metadata-bytes", u.max_metadata_bytes),
            ("upstream.max-artifact-bytes", u.max_artifact_bytes),
            ("upstream.metadata-cache-entries", u.metadata_cache_entries),
            ("upstream.render-cache-bytes", u.render_cache_bytes),
        ] {
            if value == 0 {
                p.push(key, "must be greater than zero");
            }
        }
        let upstream = UpstreamConfig {
            npm: p.url("upstream.npm", &u.npm),
            pypi: p.url("upstream.pypi", &u.pypi),
            pypi_files: p.url("upstream.pypi-files", &u.pypi_files),
            pypi_json: p.url("upstream.pypi-json", &u.pypi_json),
            cargo_index: p.url("upstream.cargo-index", &u.cargo_index),
            timeout_secs: u.timeout_secs,
            max_metadata_bytes: u.max_metadata_bytes,
            max_artifact_bytes: u.max_artifact_bytes,
            metadata_ttl_secs: u.metadata_ttl_secs,
            metadata_cache_entries: u.metadata_cache_entries,
            render_cache_bytes: u.render_cache_bytes,
            artifact_cache_bytes: u.artifact_cache_bytes,
        };

        let mut sources = Vec::new();
        for (i, s) in self.feeds.sources.iter().enumerate() {
            if s.name.is_empty()
                || !s
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                p.push(
                    format!("feeds.sources[{i}].name"),
                    "a source name is letters, digits, `-` and `_`",
                );
            }
            if sources.iter().any(|o: &FeedSource| o.name == s.name) {
                p.push(
                    format!("feeds.sources[{i}].name"),
                    format!("duplicate source name `{}`", s.name),
                );
            }
            let url = p.url(&format!("feeds.sources[{i}].url"), &s.url);
            sources.push(FeedSource {
                name: s.name.clone(),
                url,
            });
        }
        let feeds = FeedsConfig {
            bundled: self.feeds.bundled,
            sources,
            stale_after_days: self.feeds.stale_after_days,
        };

        let a = &self.policy.advisories;
        let deny_at = a.deny_at.parse::<Severity>().unwrap_or_else(|e| {
            p.push("policy.advisories.deny-at", e);
            Severity::High
        });
        if deny_at == Severity::Unknown {
            p.push(
                "policy.advisories.deny-at",
                "use `unknown-severity` for advisories without a severity",
            );
        }
        let advisories = AdvisoriesConfig {
            deny_at,
            unknown_severity: p.verdict("policy.advisories.unknown-severity", &a.unknown_severity),
            unfixed: p.verdict("policy.advisories.unfixed", &a.unfixed),
            informational: p.verdict("policy.advisories.informational", &a.informational),
            ignore: a.ignore.clone(),
        };

        let t = &self.policy.typosquat;
        let mut extra_popular = BTreeMap::new();
        for (eco, names) in &t.extra_popular {
            match eco.parse::<Ecosystem>() {
                Ok(e) => {
                    extra_popular.insert(e, names.clone());
                }
                Err(e) => p.push(
                    format!("policy.typosquat.extra-popular.{eco}"),
                    e.to_string(),
                ),
            }
        }
        let typosquat = TyposquatConfig {
            enabled: t.enabled,
            verdict: p.verdict("policy.typosquat.verdict", &t.verdict),
            look_alike: p.verdict("policy.typosquat.look-alike", &t.look_alike),
            established_days: t.established_days,
            extra_popular,
        };

        let l = &self.policy.license;
        for (key, list) in [("allow", &l.allow), ("deny", &l.deny)] {
            for (i, id) in list.iter().enumerate() {
                if spdx::Expression::parse_mode(id, spdx::ParseMode::LAX).is_err() {
                    p.push(
                        format!("policy.license.{key}[{i}]"),
                        format!("`{id}` is not an SPDX license identifier"),
                    );
                }
            }
        }
        let license = LicenseConfig {
            allow: l.allow.clone(),
            deny: l.deny.clone(),
            denied: p.verdict("policy.license.denied", &l.denied),
            not_allowed: p.verdict("policy.license.not-allowed", &l.not_allowed),
            missing: p.verdict("policy.license.missing", &l.missing),
            unparsable: p.verdict("policy.license.unparsable", &l.unparsable),
        };

        let r = &self.policy.reputation;
        let reputation = ReputationConfig {
            cooldown_hours: r.cooldown_hours,
            cooldown: p.verdict("policy.reputation.cooldown", &r.cooldown),
            new_package_days: r.new_package_days,
            new_package: p.verdict("policy.reputation.new-package", &r.new_package),
            install_scripts: p.verdict("policy.reputation.install-scripts", &r.install_scripts),
            deprecated: p.verdict("policy.reputation.deprecated", &r.deprecated),
            yanked: p.verdict("policy.reputation.yanked", &r.yanked),
        };

        let mut entries = Vec::new();
        for (list, kind, raw_entries) in [
            ("allow", OverrideKind::Allow, &self.overrides.allow),
            ("deny", OverrideKind::Deny, &self.overrides.deny),
        ] {
            for (i, raw) in raw_entries.iter().enumerate() {
                let key = format!("overrides.{list}[{i}]");
                if let Some(entry) = p.override_entry(&key, kind, raw) {
                    if entries
                        .iter()
                        .any(|e: &crate::policy::overrides::OverrideEntry| {
                            e.kind == entry.kind
                                && e.name == entry.name
                                && e.versions == entry.versions
                        })
                    {
                        p.push(key, format!("duplicate entry for {}", entry.name));
                    } else {
                        entries.push(entry);
                    }
                }
            }
        }

        let a = &self.agents;
        let default_policy = a
            .default_policy
            .parse::<PolicyPreset>()
            .unwrap_or_else(|e| {
                p.push("agents.default-policy", e);
                PolicyPreset::Default
            });
        let strict_warn = p.verdict("agents.strict-warn", &a.strict_warn);
        if !matches!(strict_warn, Verdict::Quarantine | Verdict::Deny) {
            p.push("agents.strict-warn", "must be `quarantine` or `deny`");
        }
        let agents = AgentsConfig {
            default_policy,
            strict_warn,
            limits: BreakerLimits {
                max_new_packages_per_hour: a.max_new_packages_per_hour,
                max_refusals_per_hour: a.max_refusals_per_hour,
            },
        };

        let token_env = self.admin.token_env.clone();
        if token_env.is_empty()
            || !token_env
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            p.push(
                "admin.token-env",
                "an environment variable name is letters, digits and `_`",
            );
        }
        let mut trusted_proxies = Vec::new();
        for (i, raw) in self.admin.trusted_proxies.iter().enumerate() {
            match raw.trim().parse() {
                Ok(ip) => trusted_proxies.push(ip),
                Err(_) => p.push(
                    format!("admin.trusted-proxies[{i}]"),
                    "an IP address (`127.0.0.1`, `::1`), not a name or a range",
                ),
            }
        }
        let admin_listen = match AdminListen::parse(&self.admin.listen) {
            Ok(AdminListen::Tcp(addr)) if addr == server.listen && addr.port() != 0 => {
                p.push(
                    "admin.listen",
                    format!(
                        "`{addr}` is also `server.listen`: the admin endpoint needs its own \
                         address, so that clients of the mirror need not reach it"
                    ),
                );
                AdminListen::Tcp(addr)
            }
            Ok(listen) => listen,
            Err(why) => {
                p.push("admin.listen", why);
                AdminListen::Tcp(SocketAddr::from(([127, 0, 0, 1], 7879)))
            }
        };
        let admin = AdminConfig {
            listen: admin_listen,
            token_file: self.admin.token_file.clone(),
            token_env,
            trusted_proxies,
        };

        let l = &self.log;
        for (key, value) in [
            ("log.checkpoint-every-records", l.checkpoint_every_records),
            ("log.checkpoint-every-secs", l.checkpoint_every_secs),
        ] {
            if value == 0 {
                p.push(key, "must be greater than zero");
            }
        }
        if l.checkpoint_file
            .as_ref()
            .is_some_and(|f| f.as_os_str().is_empty())
        {
            p.push(
                "log.checkpoint-file",
                "an empty path; leave the key out for none",
            );
        }
        let log = LogConfig {
            checkpoint_file: l.checkpoint_file.clone(),
            checkpoint_log: l.checkpoint_log,
            checkpoint_every_records: l.checkpoint_every_records,
            checkpoint_every_secs: l.checkpoint_every_secs,
        };

        if !p.0.is_empty() {
            return Err(p.0);
        }
        Ok(Config {
            server,
            upstream,
            feeds,
            policy: PolicyConfig {
                advisories,
                typosquat,
                license,
                reputation,
            },
            overrides: Arc::new(Overrides::new(entries)),
            agents,
            admin,
            log,
        })
    }
}
