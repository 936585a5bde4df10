//! Agents as identities: `depfw agents add|list|rotate|revoke|suspend|resume`.
//!
//! Each coding agent gets its own name and token, so that the proxy can say which agent
//! asked for what, apply a stricter [`PolicyPreset`] to one agent, and stop one agent (the
//! [`CircuitBreaker`]) without stopping the others. An agent sends its token in the
//! `Authorization` header (or puts it in its mirror URL, `<public-url>/a/<token>/npm/`); the proxy calls `crate::store::agents::AgentStore`'s
//! `authenticate` and answers 401 for a malformed, unknown, rotated-away or revoked token.
//! Only the token's SHA-256 is stored (see [`token`]).

pub(crate) mod breaker;
pub(crate) mod cfg;
pub(crate) mod preset;
pub(crate) mod token;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use breaker::{BreakerEvent, BreakerLimits, BreakerState, CircuitBreaker, Limit};
pub use cfg::AgentsConfig;
pub use preset::PolicyPreset;
pub use token::{MalformedToken, Token, TokenHash};

/// One agent as the admin sees it (never its token or token hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub name: String,
    pub preset: PolicyPreset,
    pub created: DateTime<Utc>,
    /// When the token was last replaced.
    pub rotated: Option<DateTime<Utc>>,
    /// Revoked agents stay listed; their token no longer works and they cannot come back.
    pub revoked: Option<DateTime<Utc>>,
    /// Set by an admin or by the circuit breaker; cleared by `resume`.
    pub suspended: Option<Suspension>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspension {
    pub reason: String,
    pub at: DateTime<Utc>,
}

impl Agent {
    /// Whether the agent may use the proxy.
    pub fn is_active(&self) -> bool {
        self.revoked.is_none() && self.suspended.is_none()
    }

    pub fn status(&self) -> &'static str {
        if self.revoked.is_some() {
            "revoked"
        } else if self.suspended.is_some() {
            "suspended"
        } else {
            "active"
        }
    }
}

/// An agent operation that was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("`{0}` is not a valid agent name: use 1 to 63 of a-z, 0-9, `-`, `_`, starting with a letter or digit")]
    InvalidName(String),
    #[error("an agent named `{0}` already exists (revoked names are not reused)")]
    Duplicate(String),
    #[error("no agent named `{0}`")]
    Unknown(String),
    #[error("agent `{0}` is revoked")]
    Revoked(String),
    #[error("agent `{0}` is already suspended")]
    AlreadySuspended(String),
    #[error("agent `{0}` is not suspended")]
    NotSuspended(String),
    #[error("a suspension needs a reason")]
    ReasonRequired,
    #[error("a suspension reason is one line of at most 1000 characters")]
    BadReason,
    #[error("cannot generate a token: {0}")]
    Random(getrandom::Error),
    #[error("token collision; try again")]
    TokenCollision,
    /// The store failed (`crate::store::StoreError`, which converts into this); boxed
    /// because the store sits above the agents it keeps.
    #[error(transparent)]
    Store(Box<dyn std::error::Error + Send + Sync>),
}

/// Why a presented token was refused. The proxy answers 401 for `Malformed`, `Unknown` and
/// `Revoked`, and 403 for `Suspended` (the token is right, the agent is stopped).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("malformed agent token: {0}")]
    Malformed(#[from] MalformedToken),
    #[error("unknown agent token")]
    Unknown,
    #[error("agent `{0}` is revoked")]
    Revoked(String),
    #[error("agent `{}` is suspended: {}", .0.name, .0.suspended.as_ref().map_or("", |s| s.reason.as_str()))]
    Suspended(Box<Agent>),
    /// As [`AgentError::Store`].
    #[error(transparent)]
    Store(Box<dyn std::error::Error + Send + Sync>),
}

/// Checks `[a-z0-9][a-z0-9-_]{0,62}`.
pub(crate) fn validate_name(name: &str) -> Result<(), AgentError> {
    let ok_first = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= 63
        && ok_first(bytes[0])
        && bytes.iter().all(|&b| ok_first(b) || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(AgentError::InvalidName(name.to_owned()))
    }
}

/// The environment variable an agent's clients read its token from.
pub(crate) const TOKEN_ENV: &str = "DEPFW_TOKEN";

/// How agent `name`'s clients send its token (in a header, read from [`TOKEN_ENV`]), one
/// line per client, with no token in them: what `depfw agents add|rotate` prints and the
/// admin page shows beside a new token. The `/a/<token>/` URLs would put the token into
/// lockfiles; `depfw init <client> --agent NAME` has the full configuration.
pub fn setup_lines(public_url: &url::Url, name: &str) -> [String; 4] {
    let t = TOKEN_ENV;
    let base = format!("{}/auth", public_url.as_str().trim_end_matches('/'));
    let nerf = base
        .split_once("//")
        .map_or(base.as_str(), |(_, rest)| rest);
    [
        format!(
            "keep the token in the agent's environment as {t} (a secret store, not a file in \
             the project); `depfw init <client> --agent {name}` prints each client's \
             configuration, which reads it from there and writes no token into lockfiles"
        ),
        format!("npm:       .npmrc: registry={base}/npm/ and //{nerf}/npm/:_authToken=${{{t}}}"),
        format!(
            "pip:       index-url {base}/pypi/simple/ and the token as HTTP Basic password (~/.netrc)"
        ),
        format!(
            "cargo:     [registries.depfw] index = \"sparse+{base}/cargo/index/\", credential-provider = \"cargo:token\"; \
             [source.crates-io] replace-with = \"depfw\"; CARGO_REGISTRIES_DEPFW_TOKEN=${t}"
        ),
    ]
}

/// The agent's mirror URLs for npm, PyPI and crates.io under `public_url` (the config's
/// `server.public-url`): what `depfw agents add|rotate` prints (for clients that cannot send
/// a header) and the admin API returns; the admin page shows [`setup_lines`] instead.
pub fn mirror_urls(public_url: &url::Url, token: &Token) -> [String; 3] {
    let base = public_url.as_str().trim_end_matches('/');
    let prefix = format!("{base}/a/{}", token.expose_secret());
    [
        format!("{prefix}/npm/"),
        format!("{prefix}/pypi/simple/"),
        format!("{prefix}/cargo/index/"),
    ]
}
