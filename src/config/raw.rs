//! The config file as written: serde structs with defaults, unknown keys rejected.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::{
    AdminConfig, AdvisoriesConfig, AgentsConfig, AnonymousAccess, Config, ConfigProblem,
    FeedSource, FeedsConfig, LicenseConfig, PolicyConfig, Problems, RefusedVersions,
    ReputationConfig, ServerConfig, TyposquatConfig, UpstreamConfig,
};
use crate::agents::{BreakerLimits, PolicyPreset};
use crate::package::Ecosystem;
use crate::policy::overrides::{OverrideKind, Overrides};
use crate::policy::{Severity, Verdict};
use url::Url;

/// The default listen address and port (documented in the README).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

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
        }
    }
}

/// `[upstream]`: settings shared by every ecosystem, and one table per ecosystem for its
/// registry URLs (`[upstream.npm]`, `[upstream.pypi]`, `[upstream.cargo]`). The flat keys of
/// earlier versions (`npm = "…"`, `pypi = "…"`, `pypi-files`, `pypi-json`, `cargo-index`) are
/// still read, with a deprecation warning naming the new key; giving both is an error.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawUpstream {
    pub npm: Option<Section<RawNpmUpstream>>,
    pub pypi: Option<Section<RawPypiUpstream>>,
    pub cargo: Option<RawCargoUpstream>,
    /// Deprecated: `upstream.pypi.files`.
    pub pypi_files: Option<String>,
    /// Deprecated: `upstream.pypi.json-api`.
    pub pypi_json: Option<String>,
    /// Deprecated: `upstream.cargo.index`.
    pub cargo_index: Option<String>,
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
            npm: None,
            pypi: None,
            cargo: None,
            pypi_files: None,
            pypi_json: None,
            cargo_index: None,
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

/// `[upstream.npm]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawNpmUpstream {
    pub registry: Option<String>,
}

/// `[upstream.pypi]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPypiUpstream {
    pub index: Option<String>,
    pub files: Option<String>,
    pub json_api: Option<String>,
}

/// `[upstream.cargo]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawCargoUpstream {
    pub index: Option<String>,
}

/// An ecosystem's upstream key: the table of today, or the single URL string that the
/// flat key of the same name (`upstream.npm = "…"`) held before the tables existed.
#[derive(Debug, Clone)]
pub enum Section<T> {
    Legacy(String),
    Table(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Section<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
            type Value = Section<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a table (or, deprecated, a URL string)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Section::Legacy(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                // Keeps the table's own errors (unknown keys, wrong types) intact.
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(Section::Table)
            }
        }
        d.deserialize_any(Visit(std::marker::PhantomData))
    }
}

impl<T: Default> Section<T> {
    /// The table, and the URL of the deprecated string form if that was used.
    fn split(self) -> (T, Option<String>) {
        match self {
            Section::Legacy(url) => (T::default(), Some(url)),
            Section::Table(t) => (t, None),
        }
    }
}

/// The default upstreams, documented in `config/depfw.example.toml`.
const NPM_REGISTRY: &str = "https://registry.npmjs.org/";
const PYPI_INDEX: &str = "https://pypi.org/simple/";
const PYPI_FILES: &str = "https://files.pythonhosted.org/";
const PYPI_JSON_API: &str = "https://pypi.org/pypi/";
const CARGO_INDEX: &str = "https://index.crates.io/";

/// One upstream URL from its table key, or from its deprecated flat key (a warning), or the
/// default; both given is a problem reported at the deprecated key.
fn upstream_url(
    p: &mut Problems,
    warnings: &mut Vec<ConfigProblem>,
    new: (&str, Option<String>),
    old: (&str, Option<String>),
    default: &str,
) -> Url {
    match (new.1, old.1) {
        (Some(_), Some(_)) => {
            p.push(
                old.0,
                format!(
                    "deprecated key given together with its replacement `{}`: keep only `{}`",
                    new.0, new.0
                ),
            );
            p.url(new.0, default)
        }
        (None, Some(value)) => {
            warnings.push(ConfigProblem {
                key: old.0.to_owned(),
                message: format!("deprecated: use `{}` instead", new.0),
            });
            p.url(old.0, &value)
        }
        (Some(value), None) => p.url(new.0, &value),
        (None, None) => p.url(new.0, default),
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
            token_file: None,
            token_env: "DEPFW_ADMIN_TOKEN".to_owned(),
            trusted_proxies: Vec::new(),
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
        let server = ServerConfig {
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
        let mut warnings = Vec::new();
        let (npm, npm_flat) = u.npm.map(Section::split).unwrap_or_default();
        let (pypi, pypi_flat) = u.pypi.map(Section::split).unwrap_or_default();
        let cargo = u.cargo.unwrap_or_default();
        let upstream = UpstreamConfig {
            npm: upstream_url(
                &mut p,
                &mut warnings,
                ("upstream.npm.registry", npm.registry),
                ("upstream.npm", npm_flat),
                NPM_REGISTRY,
            ),
            pypi: upstream_url(
                &mut p,
                &mut warnings,
                ("upstream.pypi.index", pypi.index),
                ("upstream.pypi", pypi_flat),
                PYPI_INDEX,
            ),
            pypi_files: upstream_url(
                &mut p,
                &mut warnings,
                ("upstream.pypi.files", pypi.files),
                ("upstream.pypi-files", u.pypi_files),
                PYPI_FILES,
            ),
            pypi_json: upstream_url(
                &mut p,
                &mut warnings,
                ("upstream.pypi.json-api", pypi.json_api),
                ("upstream.pypi-json", u.pypi_json),
                PYPI_JSON_API,
            ),
            cargo_index: upstream_url(
                &mut p,
                &mut warnings,
                ("upstream.cargo.index", cargo.index),
                ("upstream.cargo-index", u.cargo_index),
                CARGO_INDEX,
            ),
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
        let admin = AdminConfig {
            token_file: self.admin.token_file.clone(),
            token_env,
            trusted_proxies,
        };

        if !p.0.is_empty() {
            return Err(p.0);
        }
        Ok(Config {
            server,
            upstream,
            warnings,
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
        })
    }
}
