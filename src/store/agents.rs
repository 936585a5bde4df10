//! The agents of `depfw agents add|list|rotate|revoke|suspend|resume`, kept in the store.
//!
//! The `agents` tree holds `agent/<name>` → JSON record, and `token/<lookup id>` → name.
//! Only the token's SHA-256 is stored (see `crate::agents::token`).

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sled::transaction::TransactionalTree;

use super::tx::{self, abort, put_json, Durability};
use super::{Store, StoreError};
use crate::agents::{
    validate_name, Agent, AgentError, AuthError, PolicyPreset, Suspension, Token, TokenHash,
};

const TREE: &str = "agents";
const AGENT_PREFIX: &str = "agent/";
const TOKEN_INDEX_PREFIX: &str = "token/";

/// The stored form: the agent plus its token hash.
#[derive(Serialize, Deserialize)]
pub(crate) struct AgentRecord {
    #[serde(flatten)]
    pub(crate) agent: Agent,
    pub(crate) token_sha256: String,
}

type TxResult<T> = tx::TxResult<T, AgentError>;

impl From<StoreError> for AgentError {
    fn from(e: StoreError) -> Self {
        AgentError::Store(Box::new(e))
    }
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        AuthError::Store(Box::new(e))
    }
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
