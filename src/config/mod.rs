//! `depfw.toml`: parsed, then validated into [`Config`].
//!
//! Every command takes `--config FILE`; without one the embedded defaults apply (the same
//! values `config/depfw.example.toml` documents). Parsing rejects unknown keys and wrong
//! types (toml reports the line); validation then checks every value and reports *all*
//! problems at once, each naming the file and the key, before anything starts.

pub mod observe;
mod private;
mod raw;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use url::Url;

use crate::package::{Ecosystem, PackageName};
use crate::policy::overrides::{OverrideEntry, OverrideKind, Overrides, VersionScope};
use crate::policy::Verdict;

pub use private::{CargoPrivate, Credential, NpmScope, PypiPrivate, UpstreamAuth};
pub use raw::RawConfig;

// Each section's settings live with the module that uses them (a check's with the check);
// they are re-exported here because `Config` is where callers meet them.
pub use crate::agents::AgentsConfig;
pub use crate::diag::problems::ConfigProblem;
pub(crate) use crate::diag::problems::Problems;
pub use crate::feeds::{FeedSource, FeedsConfig};
pub use crate::policy::advisories::AdvisoriesConfig;
pub use crate::policy::internal::InternalNamesConfig;
pub use crate::policy::license::LicenseConfig;
pub use crate::policy::reputation::ReputationConfig;
pub use crate::policy::signals::SignalsConfig;
pub use crate::policy::typosquat::TyposquatConfig;

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
    pub log: LogConfig,
    pub audit: AuditConfig,
    pub store: StoreConfig,
    pub quarantine: QuarantineConfig,
    /// `[metrics]`: access to `/metrics` (`observe`).
    pub metrics: observe::MetricsConfig,
    /// `[siem]`: the decision stream (`observe::siem`).
    pub siem: observe::SiemConfig,
}

/// `[quarantine]`: the notice a new approval request sends (`server::webhook`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineConfig {
    /// Where the JSON notice is POSTed; `None`: no notices.
    pub webhook_url: Option<url::Url>,
    /// One attempt's time limit.
    pub webhook_timeout: std::time::Duration,
    /// Attempts after the first one fails (5xx, timeout, refused connection).
    pub webhook_retries: u32,
    /// The admin page as reviewers reach it, linked from the notice.
    pub admin_url: Option<url::Url>,
}

/// `[audit]`: what `depfw audit` checks in lockfiles beyond the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// depfw's mirror as lockfiles record it (its public URLs); with none (and no
    /// `depfw audit --mirror`), the `bypasses-mirror` check does not run.
    pub mirror_urls: Vec<Url>,
    /// The verdict of a `bypasses-mirror` finding.
    pub bypasses_mirror: Verdict,
}

/// `[store]`: where agents, overrides, quarantine, the decision log and the shared
/// run-time state live. No `url`: the embedded sled store under `server.data-dir` (one
/// process). A `postgres://` URL: a PostgreSQL database shared by every replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Also `--store` / `DEPFW_STORE`, which win over the file.
    pub url: Option<DatabaseUrl>,
    /// Connections each process keeps open at most.
    pub pool_size: u32,
    /// How often a replica asks the database whether overrides, quarantine approvals or
    /// agents changed elsewhere (milliseconds); changes made on this replica apply at once.
    pub refresh_millis: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: None,
            pool_size: 16,
            refresh_millis: 500,
        }
    }
}

/// A PostgreSQL connection URL. It may hold a password: `Debug` and [`DatabaseUrl::redacted`]
/// never show it, and nothing depfw logs or prints uses the raw form.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Checks that `url` is a `postgres://` or `postgresql://` URL the driver reads.
    pub fn parse(url: &str) -> Result<DatabaseUrl, String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(format!(
                "`{}` is not a PostgreSQL URL: write postgres://user:password@host:5432/dbname,                  or leave the key out for the embedded store",
                redact_url(url)
            ));
        }
        url.parse::<tokio_postgres::Config>().map_err(|e| {
            format!(
                "`{}` is not a URL the PostgreSQL driver reads: {e}",
                redact_url(url)
            )
        })?;
        Ok(DatabaseUrl(url.to_owned()))
    }

    /// The URL with its password replaced by `***`, for messages.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }

    /// The URL itself, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

/// `url` with the password of its user-info (and a `password=` query value) replaced by
/// `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    if let Some(i) = out.find("password=") {
        let start = i + "password=".len();
        let end = out[start..].find('&').map_or(out.len(), |j| start + j);
        out.replace_range(start..end, "***");
    }
    out
}

/// `[log]`: where and how often the decision log's signed checkpoints (head seq, hash,
/// time) are written outside the store (`store::decisions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// An append-only JSON-lines file, one checkpoint a line.
    pub checkpoint_file: Option<PathBuf>,
    /// Also write each checkpoint as a line in depfw's own log (stderr).
    pub checkpoint_log: bool,
    /// A checkpoint after this many records since the last one (at least 1).
    pub checkpoint_every_records: u64,
    /// ...or after this many seconds, if records came since (at least 1).
    pub checkpoint_every_secs: u64,
}

/// `[admin]`: where the admin endpoint's token comes from (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// The admin endpoint's own listener, apart from the mirror's (`server.listen`).
    pub listen: AdminListen,
    /// A file whose first line is the token; wins over `token_env`.
    pub token_file: Option<PathBuf>,
    /// The environment variable read when `token_file` is unset.
    pub token_env: String,
    /// Reverse proxies whose `X-Forwarded-For` names the client, for counting wrong tokens
    /// per client rather than per proxy (`admin::throttle`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// Where the admin endpoint listens (`admin.listen`): a TCP address, or a Unix socket
/// (`unix:/path`) that only the OS users the socket file's mode admits can connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminListen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl AdminListen {
    /// Parses `127.0.0.1:7879`, `[::1]:7879` or `unix:/run/depfw/admin.sock`.
    pub fn parse(text: &str) -> Result<AdminListen, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(
                    "`unix:` needs a socket path, like `unix:/run/depfw/admin.sock`".into(),
                );
            }
            return Ok(AdminListen::Unix(PathBuf::from(path)));
        }
        text.parse().map(AdminListen::Tcp).map_err(|e| {
            format!("`{text}` is not an address like 127.0.0.1:7879 or `unix:/path`: {e}")
        })
    }
}

impl std::fmt::Display for AdminListen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminListen::Tcp(addr) => write!(f, "http://{addr}"),
            AdminListen::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The base URL clients reach depfw at; rewritten metadata URLs start with it.
    pub public_url: Url,
    /// `server.data-dir`, relative to the config file's directory when [`Config::load`]
    /// read it; empty when the file does not set it, until the command line resolves the
    /// default (`--data-dir`, else the state directory: `cli::data_dir`).
    pub data_dir: PathBuf,
    /// Serve without policy when feeds cannot be loaded (default: refuse, fail closed).
    pub fail_open: bool,
    /// Who may use the proxy without an agent token (in the `Authorization` header or the
    /// `/a/<token>/` prefix); `/auth/…` always needs one.
    pub allow_anonymous: AnonymousAccess,
    /// Origins (scheme, host, port) cargo downloads may come from besides the index's own
    /// (`server.cargo-download-origins`); a `dl` in the index's `config.json` elsewhere is
    /// refused.
    pub cargo_download_origins: Vec<Url>,
    /// What metadata says about refused (denied or quarantined) versions.
    pub refused_versions: RefusedVersions,
    /// Deadlines and caps on client connections (`server.header-timeout-secs`, …).
    pub connections: ConnectionLimits,
    /// HTTPS: `server.tls-cert` and `server.tls-key`, both or neither (`server::tls`).
    pub tls: Option<TlsFiles>,
}

/// The PEM files `depfw serve` speaks TLS with (`server.tls-cert`, `server.tls-key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1), readable by depfw's user alone.
    pub key: PathBuf,
}

/// How much of depfw one client, or all of them, may hold (issue #11): without these, 300
/// clients sending their headers slowly used up every file descriptor and no one, the admin
/// included, could connect. `server::listener` enforces them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `server.header-timeout-secs`: a request's headers must arrive within this, counted
    /// from when depfw starts waiting for them; an idle keep-alive connection is closed after
    /// it too.
    pub header_timeout_secs: u64,
    /// `server.body-timeout-secs`: a request body a handler reads must arrive within this.
    pub body_timeout_secs: u64,
    /// `server.max-connections`: client connections served at once; `None` derives it from
    /// the open-file limit at start (`server::listener::default_max_connections`).
    pub max_connections: Option<u64>,
    /// `server.max-connections-per-peer`: connections from one IP address at once.
    pub max_connections_per_peer: u64,
    /// `server.client-min-rate`: bytes per second a client that has fallen behind must
    /// read at, measured over `client_rate_window_secs`; 0 turns the check off.
    pub client_min_rate: u64,
    /// `server.client-rate-window-secs`.
    pub client_rate_window_secs: u64,
}

impl ConnectionLimits {
    /// The defaults, documented in `config/depfw.example.toml`.
    pub const DEFAULT: ConnectionLimits = ConnectionLimits {
        header_timeout_secs: 15,
        body_timeout_secs: 60,
        max_connections: None,
        max_connections_per_peer: 256,
        client_min_rate: 1024,
        client_rate_window_secs: 30,
    };
}

/// `server.refused-versions`: what cargo index files, PyPI project pages and npm
/// packuments do with a version the policy refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefusedVersions {
    /// Left out of the metadata: an exact pin or a lockfile fails at resolution with the
    /// client's "no such version" error, never reaching the artifact gate.
    #[default]
    Remove,
    /// Listed but yanked (with depfw's reason on PyPI; on npm, which has no yank,
    /// `deprecated` with the reason and no dist-tag): new resolutions skip it, while an
    /// exact pin or a lockfile selects it, the client shows the reason, and the artifact
    /// gate refuses the download with its 403 body.
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
    /// `[[upstream.npm.scopes]]`: scopes asked of their own registry only.
    pub npm_scopes: Vec<NpmScope>,
    /// `[[upstream.pypi.private]]`: projects asked of their own index only.
    pub pypi_private: Vec<PypiPrivate>,
    /// `[[upstream.cargo.private]]`: crates asked of their own registry only.
    pub cargo_private: Vec<CargoPrivate>,
    /// Credentials of the public-side upstreams themselves (`[upstream.npm]`,
    /// `[upstream.pypi]` `token-file`, …): a registry manager in front of them that
    /// requires them.
    pub main_credentials: Vec<Credential>,
    /// `upstream.pypi.index`: the simple index.
    pub pypi: Url,
    /// `upstream.pypi.files`: where the index's file URLs point.
    pub pypi_files: Url,
    /// `upstream.pypi.json-api` (`{json-api}/{project}/{version}/json`), read by `depfw audit
    /// --online` for licenses, which the simple index does not carry.
    pub pypi_json: Url,
    /// `upstream.cargo.index`: the sparse index.
    pub cargo_index: Url,
    /// `upstream.cargo.api`: the registry's web API (`{api}/api/v1/crates/{name}`), asked
    /// for publish times and licenses its index lines leave out; `None`: not asked
    /// (crates.io's index carries `pubtime` on every line).
    pub cargo_api: Option<Url>,
    pub timeout_secs: u64,
    pub max_metadata_bytes: u64,
    pub max_artifact_bytes: u64,
    pub metadata_ttl_secs: u64,
    /// Entry bound of every in-memory metadata cache.
    pub metadata_cache_entries: u64,
    /// Byte bound of the upstream metadata bodies kept.
    pub metadata_cache_bytes: u64,
    /// Byte bound of each protocol's parsed documents (their real heap size).
    pub parse_cache_bytes: u64,
    /// Byte bound of the rendered responses (and their gzip copies), and separately of the
    /// verdicts kept per document.
    pub render_cache_bytes: u64,
    pub artifact_cache_bytes: u64,
    /// `upstream.transfer-deadline-secs`: the longest one upstream request may take,
    /// headers and body, however steadily bytes arrive.
    pub transfer_deadline_secs: u64,
    /// `upstream.min-transfer-rate`: bytes per second an upstream body must average once
    /// `min_transfer_rate_grace_secs` have passed; 0 disables the check.
    pub min_transfer_rate: u64,
    /// `upstream.min-transfer-rate-grace-secs`.
    pub min_transfer_rate_grace_secs: u64,
    /// `upstream.stale-if-error-secs`: how long after the metadata TTL the last good
    /// metadata is still served when upstream fails; 0 disables it.
    pub stale_if_error_secs: u64,
    /// `upstream.redirect-origins`: where an upstream may redirect besides the configured
    /// upstreams (and `server.cargo-download-origins`); a redirect anywhere else is refused.
    pub redirect_origins: Vec<Url>,
}

#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// `policy.mode` and its per-agent exceptions: whom refusals apply to.
    pub enforcement: crate::policy::Enforcement,
    pub advisories: AdvisoriesConfig,
    pub typosquat: TyposquatConfig,
    pub license: LicenseConfig,
    pub reputation: ReputationConfig,
    pub signals: SignalsConfig,
    pub internal_names: InternalNamesConfig,
    /// `[policy.content]`: the rules over artifact bytes (`depfw serve`).
    pub content: crate::policy::content::ContentConfig,
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
        let mut config = Self::from_toml(&text, &file)?;
        // `data-dir = "state"` means beside the config file, wherever the command runs.
        let data_dir = &mut config.server.data_dir;
        if data_dir.is_relative() && !data_dir.as_os_str().is_empty() {
            // The file was just read, so its directory exists and resolves.
            let base = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            *data_dir = base
                .canonicalize()
                .map(|base| base.join(&*data_dir))
                .map_err(|e| ConfigError {
                    file: file.clone(),
                    problems: vec![ConfigProblem {
                        key: "server.data-dir".to_owned(),
                        message: format!("cannot be made absolute: {e}"),
                    }],
                })?;
        }
        Ok(config)
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
    pub(crate) fn policy_fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let text = format!("{:?}|{:?}", self.policy, self.overrides.entries());
        hex::encode(&Sha256::digest(text.as_bytes())[..8])
    }
}

/// An `[[overrides.allow]]` or `[[overrides.deny]]` entry, checked; `None` when it has
/// problems (each pushed under `key`).
fn override_entry(
    p: &mut Problems,
    key: &str,
    kind: OverrideKind,
    entry: &raw::RawOverride,
) -> Option<OverrideEntry> {
    let before = p.0.len();
    let ecosystem = entry
        .ecosystem
        .parse::<Ecosystem>()
        .map_err(|e| p.push(format!("{key}.ecosystem"), e.to_string()))
        .ok();
    if entry.reason.trim().is_empty() {
        p.push(
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
                p.push(format!("{key}.expires"), e);
                None
            }
        });
    let ecosystem = ecosystem?;
    let name = PackageName::parse(ecosystem, &entry.name)
        .map_err(|e| p.push(format!("{key}.name"), e.to_string()))
        .ok();
    let versions = VersionScope::parse(ecosystem, entry.versions.as_deref().unwrap_or("*"))
        .map_err(|e| p.push(format!("{key}.versions"), e))
        .ok();
    if let Some(agent) = &entry.agent {
        if let Err(e) = crate::agents::validate_name(agent) {
            p.push(format!("{key}.agent"), e.to_string());
        }
    }
    if p.0.len() != before {
        return None;
    }
    Some(OverrideEntry {
        kind,
        name: name?,
        versions: versions?,
        reason: entry.reason.clone(),
        expires,
        created_by: "config".to_owned(),
        agent: entry.agent.clone(),
    })
}

/// An expiry: an RFC 3339 timestamp, or a plain date meaning its first instant (UTC).
pub(crate) fn parse_expiry(text: &str) -> Result<DateTime<Utc>, String> {
    crate::when::parse_since(text)
}

#[cfg(test)]
mod tests;
