//! Agents as identities: `depfw agents add|list|rotate|revoke|suspend|resume`.
//!
//! Each coding agent gets its own name and token, so that the proxy can say which agent
//! asked for what, apply a stricter [`PolicyPreset`] to one agent, and stop one agent (the
//! [`CircuitBreaker`]) without stopping the others. An agent puts its token in its mirror
//! URL (`<public-url>/a/<token>/npm/`); the proxy calls [`AgentStore::authenticate`] and
//! answers 401 for a malformed, unknown, rotated-away or revoked token.
//!
//! The store keeps agents in the `agents` tree: `agent/<name>` → JSON record, and
//! `token/<lookup id>` → name. Only the token's SHA-256 is stored (see [`token`]).

pub mod breaker;
pub mod cfg;
pub mod preset;
pub mod token;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::TransactionalTree;

use crate::store::tx::{self, abort, put_json, Durability};
use crate::store::{Store, StoreError};

pub use breaker::{BreakerEvent, BreakerLimits, BreakerState, CircuitBreaker, Limit};
pub use cfg::AgentsConfig;
pub use preset::PolicyPreset;
pub use token::{MalformedToken, Token, TokenHash};

const TREE: &str = "agents";
const AGENT_PREFIX: &str = "agent/";
const TOKEN_INDEX_PREFIX: &str = "token/";

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

/// The stored form: the agent plus its token hash.
#[derive(Serialize, Deserialize)]
struct AgentRecord {
    #[serde(flatten)]
    agent: Agent,
    token_sha256: String,
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
    #[error(transparent)]
    Store(#[from] StoreError),
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
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks `[a-z0-9][a-z0-9-_]{0,62}`.
pub fn validate_name(name: &str) -> Result<(), AgentError> {
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

type TxResult<T> = tx::TxResult<T, AgentError>;

/// The agent's mirror URLs for npm, PyPI and crates.io under `public_url` (the config's
/// `server.public-url`): what `depfw agents add|rotate` prints and the admin endpoint shows.
pub fn mirror_urls(public_url: &url::Url, token: &Token) -> [String; 3] {
    let base = public_url.as_str().trim_end_matches('/');
    let prefix = format!("{base}/a/{}", token.expose_secret());
    [
        format!("{prefix}/npm/"),
        format!("{prefix}/pypi/simple/"),
        format!("{prefix}/cargo/index/"),
    ]
}

/// The agents of one data directory.
#[derive(Clone)]
pub struct AgentStore {
    tree: sled::Tree,
}

impl AgentStore {
    pub fn new(store: &Store) -> Result<Self, StoreError> {
        Ok(AgentStore {
            tree: store.tree(TREE)?,
        })
    }

    /// Creates an agent; the token is returned once and only its hash is kept.
    pub fn add(&self, name: &str, preset: PolicyPreset) -> Result<(Agent, Token), AgentError> {
        validate_name(name)?;
        let token = Token::generate().map_err(AgentError::Random)?;
        let hash = token.hash();
        let agent = Agent {
            name: name.to_owned(),
            preset,
            created: Utc::now(),
            rotated: None,
            revoked: None,
            suspended: None,
        };
        let record = AgentRecord {
            agent: agent.clone(),
            token_sha256: hash.to_hex(),
        };
        self.transact(|tx| {
            if tx.get(agent_key(name))?.is_some() {
                return abort(AgentError::Duplicate(name.to_owned()));
            }
            if tx.get(index_key(&hash))?.is_some() {
                return abort(AgentError::TokenCollision);
            }
            put(tx, &record)?;
            tx.insert(index_key(&hash).as_bytes(), name.as_bytes())?;
            Ok(())
        })?;
        Ok((agent, token))
    }

    /// Every agent, revoked ones included, by name.
    pub fn list(&self) -> Result<Vec<Agent>, AgentError> {
        let mut agents = Vec::new();
        for item in self.tree.scan_prefix(AGENT_PREFIX) {
            let (_, value) = item.map_err(StoreError::from)?;
            agents.push(decode(&value)?.agent);
        }
        Ok(agents)
    }

    pub fn get(&self, name: &str) -> Result<Agent, AgentError> {
        match self.tree.get(agent_key(name)).map_err(StoreError::from)? {
            Some(value) => Ok(decode(&value)?.agent),
            None => Err(AgentError::Unknown(name.to_owned())),
        }
    }

    /// Replaces the agent's token: the old one stops working at once.
    pub fn rotate(&self, name: &str) -> Result<Token, AgentError> {
        let token = Token::generate().map_err(AgentError::Random)?;
        let hash = token.hash();
        let now = Utc::now();
        self.transact(|tx| {
            let mut record = load(tx, name)?;
            if record.agent.revoked.is_some() {
                return abort(AgentError::Revoked(name.to_owned()));
            }
            if tx.get(index_key(&hash))?.is_some() {
                return abort(AgentError::TokenCollision);
            }
            if let Some(old) = TokenHash::from_hex(&record.token_sha256) {
                tx.remove(index_key(&old).as_bytes())?;
            }
            record.token_sha256 = hash.to_hex();
            record.agent.rotated = Some(now);
            put(tx, &record)?;
            tx.insert(index_key(&hash).as_bytes(), name.as_bytes())?;
            Ok(())
        })?;
        Ok(token)
    }

    /// Revokes the agent for good; it stays listed. The token index is kept, so that the
    /// proxy can log which revoked agent still tries.
    pub fn revoke(&self, name: &str) -> Result<Agent, AgentError> {
        let now = Utc::now();
        self.update(name, |agent| {
            if agent.revoked.is_some() {
                return Err(AgentError::Revoked(agent.name.clone()));
            }
            agent.revoked = Some(now);
            Ok(())
        })
    }

    /// Stops the agent until [`AgentStore::resume`]; persisted at once.
    pub fn suspend(&self, name: &str, reason: &str) -> Result<Agent, AgentError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(AgentError::ReasonRequired);
        }
        if reason.chars().any(char::is_control) || reason.chars().count() > 1000 {
            return Err(AgentError::BadReason);
        }
        let now = Utc::now();
        self.update(name, |agent| {
            if agent.revoked.is_some() {
                return Err(AgentError::Revoked(agent.name.clone()));
            }
            if agent.suspended.is_some() {
                return Err(AgentError::AlreadySuspended(agent.name.clone()));
            }
            agent.suspended = Some(Suspension {
                reason: reason.to_owned(),
                at: now,
            });
            Ok(())
        })
    }

    pub fn resume(&self, name: &str) -> Result<Agent, AgentError> {
        self.update(name, |agent| {
            if agent.revoked.is_some() {
                return Err(AgentError::Revoked(agent.name.clone()));
            }
            if agent.suspended.take().is_none() {
                return Err(AgentError::NotSuspended(agent.name.clone()));
            }
            Ok(())
        })
    }

    /// The agent a presented token belongs to. The lookup id finds the candidate; the full
    /// hash is then compared in constant time.
    pub fn authenticate(&self, presented: &str) -> Result<Agent, AuthError> {
        let token = Token::parse(presented)?;
        let hash = token.hash();
        let Some(name) = self.tree.get(index_key(&hash)).map_err(StoreError::from)? else {
            return Err(AuthError::Unknown);
        };
        let Some(value) = self
            .tree
            .get([AGENT_PREFIX.as_bytes(), &name].concat())
            .map_err(StoreError::from)?
        else {
            return Err(AuthError::Unknown);
        };
        let record = decode(&value)?;
        let stored = TokenHash::from_hex(&record.token_sha256)
            .ok_or_else(|| StoreError::corrupt("agent token hash", &record.agent.name))?;
        if !stored.matches(&hash) {
            return Err(AuthError::Unknown);
        }
        let agent = record.agent;
        if agent.revoked.is_some() {
            return Err(AuthError::Revoked(agent.name));
        }
        if agent.suspended.is_some() {
            return Err(AuthError::Suspended(Box::new(agent)));
        }
        Ok(agent)
    }

    fn update(
        &self,
        name: &str,
        change: impl Fn(&mut Agent) -> Result<(), AgentError>,
    ) -> Result<Agent, AgentError> {
        self.transact(|tx| {
            let mut record = load(tx, name)?;
            if let Err(e) = change(&mut record.agent) {
                return abort(e);
            }
            put(tx, &record)?;
            Ok(record.agent)
        })
    }

    /// Suspensions and revocations must survive a crash right after they are reported.
    fn transact<T>(&self, f: impl Fn(&TransactionalTree) -> TxResult<T>) -> Result<T, AgentError> {
        tx::transact(&self.tree, Durability::Flushed, f)
    }
}

fn agent_key(name: &str) -> String {
    format!("{AGENT_PREFIX}{name}")
}

fn index_key(hash: &TokenHash) -> String {
    format!("{TOKEN_INDEX_PREFIX}{}", hash.lookup_id())
}

fn decode(value: &[u8]) -> Result<AgentRecord, StoreError> {
    serde_json::from_slice(value).map_err(|e| StoreError::corrupt("agent", e))
}

fn load(tx: &TransactionalTree, name: &str) -> TxResult<AgentRecord> {
    match tx.get(agent_key(name))? {
        Some(value) => decode(&value).or_else(abort),
        None => abort(AgentError::Unknown(name.to_owned())),
    }
}

fn put(tx: &TransactionalTree, record: &AgentRecord) -> TxResult<()> {
    put_json(
        tx,
        agent_key(&record.agent.name).as_bytes(),
        record,
        "agent",
    )
}
