//! The config file as written: serde structs with defaults, unknown keys rejected.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::{
    override_entry, AdminConfig, AdminListen, AnonymousAccess, AuditConfig, Config, ConfigProblem,
    ConnectionLimits, LogConfig, PolicyConfig, Problems, QuarantineConfig, RefusedVersions,
    ServerConfig, TlsFiles, UpstreamConfig,
};
use crate::agents::cfg::RawAgents;
use crate::feeds::cfg::RawFeeds;
use crate::policy::advisories::cfg::RawAdvisories;
use crate::policy::content::cfg::RawContent;
use crate::policy::internal::cfg::RawInternalNames;
use crate::policy::license::cfg::RawLicense;
use crate::policy::overrides::{OverrideEntry, OverrideKind, Overrides};
use crate::policy::reputation::cfg::RawReputation;
use crate::policy::signals::cfg::RawSignals;
use crate::policy::typosquat::cfg::RawTyposquat;
use url::Url;

/// The default listen address and port (documented in the README).
pub(super) const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
/// Where crates.io's index (`index.crates.io`) sends downloads.
pub(super) const DEFAULT_CARGO_DOWNLOADS: &str = "https://static.crates.io";
/// The admin endpoint's own listener: loopback, the port after the mirror's.
pub(super) const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:7879";

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
    pub audit: RawAudit,
    pub store: RawStore,
    pub quarantine: RawQuarantine,
    pub metrics: super::observe::RawMetrics,
    pub siem: super::observe::RawSiem,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawServer {
    pub listen: String,
    pub public_url: Option<String>,
    /// Absent: `--data-dir`, else the state directory (`cli::data_dir`).
    pub data_dir: Option<PathBuf>,
    pub fail_open: bool,
    pub allow_anonymous: String,
    pub refused_versions: String,
    /// Hosts cargo downloads may come from besides the index's own.
    pub cargo_download_origins: Vec<String>,
    pub header_timeout_secs: u64,
    pub body_timeout_secs: u64,
    /// Absent: derived from the open-file limit at start.
    pub max_connections: Option<u64>,
    pub max_connections_per_peer: u64,
    pub client_min_rate: u64,
    pub client_rate_window_secs: u64,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: DEFAULT_LISTEN.to_owned(),
            public_url: None,
            data_dir: None,
            fail_open: false,
            allow_anonymous: "loopback".to_owned(),
            refused_versions: "remove".to_owned(),
            cargo_download_origins: vec![DEFAULT_CARGO_DOWNLOADS.to_owned()],
            header_timeout_secs: ConnectionLimits::DEFAULT.header_timeout_secs,
            body_timeout_secs: ConnectionLimits::DEFAULT.body_timeout_secs,
            max_connections: None,
            max_connections_per_peer: ConnectionLimits::DEFAULT.max_connections_per_peer,
            client_min_rate: ConnectionLimits::DEFAULT.client_min_rate,
            client_rate_window_secs: ConnectionLimits::DEFAULT.client_rate_window_secs,
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl RawServer {
    /// The client-connection limits; zero is refused where it would switch a protection
    /// off by accident (`client-min-rate = 0` is the documented way to turn that check off).
    fn connection_limits(&self, p: &mut Problems) -> ConnectionLimits {
        for (key, value) in [
            ("server.header-timeout-secs", self.header_timeout_secs),
            ("server.body-timeout-secs", self.body_timeout_secs),
            ("server.max-connections", self.max_connections.unwrap_or(1)),
            (
                "server.max-connections-per-peer",
                self.max_connections_per_peer,
            ),
            (
                "server.client-rate-window-secs",
                self.client_rate_window_secs,
            ),
        ] {
            if value == 0 {
                p.push(key, "must be greater than zero");
            }
        }
        ConnectionLimits {
            header_timeout_secs: self.header_timeout_secs,
            body_timeout_secs: self.body_timeout_secs,
            max_connections: self.max_connections,
            max_connections_per_peer: self.max_connections_per_peer,
            client_min_rate: self.client_min_rate,
            client_rate_window_secs: self.client_rate_window_secs,
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
    pub metadata_cache_bytes: u64,
    pub parse_cache_bytes: u64,
    pub render_cache_bytes: u64,
    pub artifact_cache_bytes: u64,
    pub transfer_deadline_secs: u64,
    pub min_transfer_rate: u64,
    pub min_transfer_rate_grace_secs: u64,
    pub stale_if_error_secs: u64,
    /// Hosts besides the configured upstreams that an upstream may redirect to.
    pub redirect_origins: Vec<String>,
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
            metadata_cache_bytes: 256 * 1024 * 1024,
            parse_cache_bytes: 256 * 1024 * 1024,
            render_cache_bytes: 256 * 1024 * 1024,
            artifact_cache_bytes: 2 * 1024 * 1024 * 1024,
            transfer_deadline_secs: 600,
            min_transfer_rate: 16 * 1024,
            min_transfer_rate_grace_secs: 10,
            stale_if_error_secs: 86_400,
            redirect_origins: Vec::new(),
        }
    }
}

/// `[upstream.npm]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawNpmUpstream {
    pub registry: Option<String>,
    /// Credentials for the registry itself (an Artifactory or Nexus that requires them).
    pub token_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// `[[upstream.npm.scopes]]`: scopes served from their own registry.
    pub scopes: Vec<super::private::RawNpmScope>,
}

/// `[upstream.pypi]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPypiUpstream {
    pub index: Option<String>,
    pub files: Option<String>,
    pub json_api: Option<String>,
    /// Credentials for the index (and its files host).
    pub token_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// `[[upstream.pypi.private]]`: projects served from their own index.
    pub private: Vec<super::private::RawPypiPrivate>,
}

/// `[upstream.cargo]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawCargoUpstream {
    pub index: Option<String>,
    pub api: Option<String>,
    /// Credentials for the index (a registry manager in front of crates.io).
    pub token_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// `[[upstream.cargo.private]]`: crates served from their own registry.
    pub private: Vec<super::private::RawCargoPrivate>,
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
pub(super) const NPM_REGISTRY: &str = "https://registry.npmjs.org/";
pub(super) const PYPI_INDEX: &str = "https://pypi.org/simple/";
pub(super) const PYPI_FILES: &str = "https://files.pythonhosted.org/";
const PYPI_JSON_API: &str = "https://pypi.org/pypi/";
pub(super) const CARGO_INDEX: &str = "https://index.crates.io/";

/// The origins (scheme, host, optional port) listed under `key`; each entry that is not one
/// is a problem at `key[i]`.
fn origins(p: &mut Problems, key: &str, list: &[String]) -> Vec<url::Url> {
    let mut found = Vec::new();
    for (i, raw) in list.iter().enumerate() {
        match url::Url::parse(raw) {
            Ok(u)
                if matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && matches!(u.path(), "" | "/")
                    && u.query().is_none() =>
            {
                found.push(u);
            }
            _ => p.push(
                format!("{key}[{i}]"),
                format!(
                    "`{raw}` is not an origin like https://static.crates.io (scheme, host, \
                     optional port, no path)"
                ),
            ),
        }
    }
    found
}

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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPolicy {
    /// `enforce` (default) or `monitor`.
    pub mode: Option<String>,
    pub monitor_agents: Vec<String>,
    pub enforce_agents: Vec<String>,
    pub advisories: RawAdvisories,
    pub typosquat: RawTyposquat,
    pub license: RawLicense,
    pub reputation: RawReputation,
    pub signals: RawSignals,
    pub internal_names: RawInternalNames,
    pub content: RawContent,
}

impl RawPolicy {
    /// `policy.mode` with `policy.monitor-agents` and `policy.enforce-agents`.
    fn enforcement(&self, p: &mut Problems) -> crate::policy::Enforcement {
        let mode = match self.mode.as_deref() {
            None => crate::policy::Mode::Enforce,
            Some(text) => text.parse().unwrap_or_else(|e: String| {
                p.push("policy.mode", e);
                crate::policy::Mode::Enforce
            }),
        };
        let mut names = |key: &str, list: &[String]| {
            let mut set = std::collections::BTreeSet::new();
            for (i, name) in list.iter().enumerate() {
                match crate::agents::validate_name(name) {
                    Ok(()) => {
                        set.insert(name.clone());
                    }
                    Err(e) => p.push(format!("{key}[{i}]"), e.to_string()),
                }
            }
            set
        };
        let monitor_agents = names("policy.monitor-agents", &self.monitor_agents);
        let enforce_agents = names("policy.enforce-agents", &self.enforce_agents);
        for both in monitor_agents.intersection(&enforce_agents) {
            p.push(
                "policy.enforce-agents",
                format!("agent `{both}` is in policy.monitor-agents too: name it in one list"),
            );
        }
        crate::policy::Enforcement {
            mode,
            monitor_agents,
            enforce_agents,
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

/// `[quarantine]`: who hears of a new approval request.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawQuarantine {
    /// POSTed a JSON notice for every new approval request; unset: none.
    pub webhook_url: Option<String>,
    pub webhook_timeout_secs: u64,
    pub webhook_retries: u32,
    /// The admin page's address as reviewers reach it, for the notice's link.
    pub admin_url: Option<String>,
}

impl Default for RawQuarantine {
    fn default() -> Self {
        RawQuarantine {
            webhook_url: None,
            webhook_timeout_secs: 5,
            webhook_retries: 3,
            admin_url: None,
        }
    }
}

impl RawQuarantine {
    /// The validated section; the admin link defaults to the admin listener's address when
    /// it is a TCP address a reviewer can open (not `0.0.0.0`).
    fn validate(&self, p: &mut Problems, admin: &AdminListen) -> QuarantineConfig {
        let q = self;
        if !(1..=60).contains(&q.webhook_timeout_secs) {
            p.push(
                "quarantine.webhook-timeout-secs",
                "must be between 1 and 60",
            );
        }
        if q.webhook_retries > 10 {
            p.push("quarantine.webhook-retries", "must be at most 10");
        }
        let url =
            |p: &mut Problems, key: &str, v: &Option<String>| match v.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(v) => Some(p.url(key, v)),
            };
        let webhook_url = url(p, "quarantine.webhook-url", &q.webhook_url);
        if webhook_url
            .as_ref()
            .is_some_and(|u| !u.username().is_empty() || u.password().is_some())
        {
            p.push(
                "quarantine.webhook-url",
                "must not carry credentials: depfw logs this URL",
            );
        }
        let admin_url = url(p, "quarantine.admin-url", &q.admin_url).or_else(|| match admin {
            AdminListen::Tcp(addr) if !addr.ip().is_unspecified() => {
                url::Url::parse(&format!("http://{addr}/admin")).ok()
            }
            _ => None,
        });
        QuarantineConfig {
            webhook_url,
            webhook_timeout: std::time::Duration::from_secs(q.webhook_timeout_secs),
            webhook_retries: q.webhook_retries,
            admin_url,
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

/// `[audit]`: `depfw audit`'s own checks (`bypasses-mirror`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawAudit {
    pub mirror_urls: Vec<String>,
    pub bypasses_mirror: String,
}

impl Default for RawAudit {
    fn default() -> Self {
        RawAudit {
            mirror_urls: Vec::new(),
            bypasses_mirror: "warn".to_owned(),
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawStore {
    /// `postgres://…`; absent: the embedded sled store under `server.data-dir`.
    pub url: Option<String>,
    pub pool_size: u32,
    pub refresh_millis: u64,
}

impl std::fmt::Debug for RawStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawStore")
            .field("url", &self.url.as_deref().map(super::redact_url))
            .field("pool_size", &self.pool_size)
            .field("refresh_millis", &self.refresh_millis)
            .finish()
    }
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            url: None,
            pool_size: 16,
            refresh_millis: 500,
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
    /// The one agent the entry applies to.
    pub agent: Option<String>,
}

impl RawConfig {
    /// Checks every value; returns all problems, not just the first.
    pub(crate) fn validate(self) -> Result<Config, Vec<ConfigProblem>> {
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
        let tls = match (&self.server.tls_cert, &self.server.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None) => None,
            (Some(_), None) => {
                p.push(
                    "server.tls-key",
                    "missing: `server.tls-cert` is set, and HTTPS needs the certificate's private key too",
                );
                None
            }
            (None, Some(_)) => {
                p.push(
                    "server.tls-cert",
                    "missing: `server.tls-key` is set, and HTTPS needs the certificate (chain) too",
                );
                None
            }
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let public_url_text = self
            .server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{listen}"));
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
        let cargo_download_origins = origins(
            &mut p,
            "server.cargo-download-origins",
            &self.server.cargo_download_origins,
        );
        let connections = self.server.connection_limits(&mut p);
        let server = ServerConfig {
            connections,
            cargo_download_origins,
            listen,
            public_url,
            data_dir: self.server.data_dir.unwrap_or_default(),
            fail_open: self.server.fail_open,
            allow_anonymous,
            refused_versions,
            tls,
        };

        let u = self.upstream;
        for (key, value) in [
            ("upstream.timeout-secs", u.timeout_secs),
            ("upstream.max-metadata-bytes", u.max_metadata_bytes),
            ("upstream.max-artifact-bytes", u.max_artifact_bytes),
            ("upstream.metadata-cache-entries", u.metadata_cache_entries),
            ("upstream.metadata-cache-bytes", u.metadata_cache_bytes),
            ("upstream.parse-cache-bytes", u.parse_cache_bytes),
            ("upstream.render-cache-bytes", u.render_cache_bytes),
            ("upstream.transfer-deadline-secs", u.transfer_deadline_secs),
        ] {
            if value == 0 {
                p.push(key, "must be greater than zero");
            }
        }
        let mut warnings = Vec::new();
        let (npm, npm_flat) = u.npm.map(Section::split).unwrap_or_default();
        let (pypi, pypi_flat) = u.pypi.map(Section::split).unwrap_or_default();
        let cargo = u.cargo.unwrap_or_default();
        let npm_scopes = super::private::npm_scopes(&mut p, &npm.scopes);
        let pypi_private = super::private::pypi_private(&mut p, &pypi.private);
        let cargo_private = super::private::cargo_private(&mut p, &cargo.private);
        let main_credentials = super::private::main_credentials(&mut p, &npm, &pypi);
        let mut upstream = UpstreamConfig {
            npm_scopes,
            pypi_private,
            cargo_private,
            main_credentials,
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
                ("upstream.cargo.index", cargo.index.clone()),
                ("upstream.cargo-index", u.cargo_index.clone()),
                CARGO_INDEX,
            ),
            cargo_api: cargo
                .api
                .as_deref()
                .map(|api| p.url("upstream.cargo.api", api)),
            timeout_secs: u.timeout_secs,
            max_metadata_bytes: u.max_metadata_bytes,
            max_artifact_bytes: u.max_artifact_bytes,
            metadata_ttl_secs: u.metadata_ttl_secs,
            metadata_cache_entries: u.metadata_cache_entries,
            metadata_cache_bytes: u.metadata_cache_bytes,
            parse_cache_bytes: u.parse_cache_bytes,
            render_cache_bytes: u.render_cache_bytes,
            artifact_cache_bytes: u.artifact_cache_bytes,
            transfer_deadline_secs: u.transfer_deadline_secs,
            min_transfer_rate: u.min_transfer_rate,
            min_transfer_rate_grace_secs: u.min_transfer_rate_grace_secs,
            stale_if_error_secs: u.stale_if_error_secs,
            redirect_origins: origins(&mut p, "upstream.redirect-origins", &u.redirect_origins),
        };
        let cargo_credential =
            super::private::cargo_credential(&mut p, &cargo, &upstream.cargo_index);
        upstream.main_credentials.extend(cargo_credential);
        super::private::check_origins(&mut p, upstream.credentials());

        // Each section validates itself, in the file's order, so problems keep their order.
        let feeds = self.feeds.validate(&mut p);
        let enforcement = self.policy.enforcement(&mut p);
        let advisories = self.policy.advisories.validate(&mut p);
        let typosquat = self.policy.typosquat.validate(&mut p);
        let license = self.policy.license.validate(&mut p);
        let reputation = self.policy.reputation.validate(&mut p);
        let signals = self.policy.signals.validate(&mut p);
        let mut internal_names = self.policy.internal_names.validate(&mut p);
        internal_names.served_privately = upstream.private_names();
        let content = self.policy.content.validate(&mut p);
        let mut entries = Vec::new();
        for (list, kind, raw_entries) in [
            ("allow", OverrideKind::Allow, &self.overrides.allow),
            ("deny", OverrideKind::Deny, &self.overrides.deny),
        ] {
            for (i, raw) in raw_entries.iter().enumerate() {
                let key = format!("overrides.{list}[{i}]");
                if let Some(entry) = override_entry(&mut p, &key, kind, raw) {
                    if entries.iter().any(|e: &OverrideEntry| {
                        e.kind == entry.kind
                            && e.name == entry.name
                            && e.versions == entry.versions
                            && e.agent == entry.agent
                    }) {
                        p.push(key, format!("duplicate entry for {}", entry.name));
                    } else {
                        entries.push(entry);
                    }
                }
            }
        }

        let agents = self.agents.validate(&mut p);

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
        let quarantine = self.quarantine.validate(&mut p, &admin_listen);
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

        let audit = AuditConfig {
            mirror_urls: self
                .audit
                .mirror_urls
                .iter()
                .map(|u| p.url("audit.mirror-urls", u))
                .collect(),
            bypasses_mirror: p.verdict("audit.bypasses-mirror", &self.audit.bypasses_mirror),
        };
        let st = &self.store;
        let url = match st.url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(url) => match super::DatabaseUrl::parse(url) {
                Ok(url) => Some(url),
                Err(why) => {
                    p.push("store.url", why);
                    None
                }
            },
        };
        if st.pool_size == 0 {
            p.push("store.pool-size", "must be at least 1");
        }
        if !(50..=60_000).contains(&st.refresh_millis) {
            p.push("store.refresh-millis", "must be between 50 and 60000");
        }
        let store = super::StoreConfig {
            url,
            pool_size: st.pool_size,
            refresh_millis: st.refresh_millis,
        };

        let metrics = self.metrics.validate(&mut p);
        let siem = self.siem.validate(&mut p);

        if !p.0.is_empty() {
            return Err(p.0);
        }
        Ok(Config {
            server,
            upstream,
            warnings,
            feeds,
            policy: PolicyConfig {
                enforcement,
                advisories,
                typosquat,
                license,
                reputation,
                signals,
                internal_names,
                content,
            },
            overrides: Arc::new(Overrides::new(entries)),
            agents,
            admin,
            log,
            audit,
            store,
            quarantine,
            metrics,
            siem,
        })
    }
}
