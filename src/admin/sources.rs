//! What the admin endpoint shows but does not own: the provenance log and feed status.
//!
//! The proxy's decision log and the feed syncer live elsewhere; the admin endpoint only
//! needs to query one and read the other, through these two small traits. The integrator
//! adapts the real stores to them; [`MemoryLog`] and [`StaticFeeds`] serve tests and a
//! proxy without those parts.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AdminError;
use crate::policy::Verdict;
use crate::store::signing::PublicKey;

/// Largest `limit` a log query may ask for.
pub(crate) const MAX_LOG_LIMIT: usize = 1000;
/// `limit` when the query gives none.
pub(crate) const DEFAULT_LOG_LIMIT: usize = 100;

/// The log query's pseudo-verdict for what monitor mode served but enforce mode would have
/// refused: the text of the `would-refuse` finding code.
pub(crate) const WOULD_REFUSE: &str = "would-refuse";

/// A provenance log query. Every set field must match; `limit` is at most
/// [`MAX_LOG_LIMIT`], newest entries first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogFilter {
    /// Agent name (exact).
    pub agent: Option<String>,
    /// Package name (substring, case-insensitive).
    pub package: Option<String>,
    pub verdict: Option<Verdict>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: usize,
    /// Only what monitor mode served but enforce mode would have refused (the page's
    /// `would-refuse` choice of verdict).
    pub would_refuse: bool,
}

impl Default for LogFilter {
    fn default() -> Self {
        LogFilter {
            agent: None,
            package: None,
            verdict: None,
            since: None,
            until: None,
            limit: DEFAULT_LOG_LIMIT,
            would_refuse: false,
        }
    }
}

/// The provenance log: one JSON object per decision the proxy made.
///
/// Entries are shown as they come; the page gives `time`, `agent`, `ecosystem`, `package`,
/// `version` and `verdict` their own columns when present, and shows other keys too.
pub trait DecisionLog: Send + Sync {
    /// Entries matching `filter`, newest first, at most `filter.limit`. An `Err` is logged
    /// and shown as "the log cannot be read" (its text is not sent to the client).
    fn query(&self, filter: &LogFilter) -> Result<Vec<Value>, String>;

    /// `depfw log verify` on this log, with a public key kept off the host and a checkpoint
    /// file's text, for the CLI while the server holds the store. An `Err` is bad input
    /// (an unreadable checkpoint line) or a log that cannot be read; its text is sent.
    fn verify(
        &self,
        _public_key: Option<PublicKey>,
        _checkpoints: Option<&str>,
    ) -> Result<Verified, String> {
        Err("this decision log cannot be verified".to_owned())
    }

    /// `depfw log export`: every record of `agent` (if set) at or after `since` (if set),
    /// oldest first, as JSON lines.
    fn export(
        &self,
        _agent: Option<&str>,
        _since: Option<DateTime<Utc>>,
    ) -> Result<Vec<u8>, String> {
        Err("this decision log cannot be exported".to_owned())
    }
}

/// What `depfw log verify` found: `intact` decides its exit code (0 or 1), `report` is the
/// text it prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    pub intact: bool,
    pub report: String,
}

/// Feed freshness: what was synced when, and whether it is stale.
///
/// The page shows an array of objects as a table (a `stale: true` row in amber, an
/// `error` in red) and anything else as JSON.
///
/// A running `depfw serve` also takes `depfw feeds status|sync|import` through it (the
/// sled store allows one process): [`FeedStatusSource::details`], `sync` and `import`
/// block (they read, download and parse whole feeds) and are called off the runtime; after
/// a sync or an import the server's policy runs with the new advisories.
pub trait FeedStatusSource: Send + Sync {
    fn status(&self) -> Value;

    /// `depfw feeds status`: every stored source and what the data in use covers
    /// (`engine::feed_update::FeedDetails`).
    fn details(&self) -> Result<Value, AdminError> {
        Err(not_connected())
    }

    /// `depfw feeds sync` with the server's configured sources
    /// (`engine::feed_update::SyncReport`).
    fn sync(&self) -> Result<Value, AdminError> {
        Err(not_connected())
    }

    /// `depfw feeds import`: `bytes` (the file `file`, as uploaded) stored as source
    /// `name` (`engine::feed_update::Imported`); data that does not read is a 400.
    fn import(&self, _name: &str, _file: &str, _bytes: &[u8]) -> Result<Value, AdminError> {
        Err(not_connected())
    }
}

fn not_connected() -> AdminError {
    AdminError::NotFound("this server does not update feeds through its admin API".to_owned())
}

/// An in-memory log of JSON entries, matched on `agent`, `package`, `verdict` and `time`
/// (RFC 3339). For tests and until the real log is connected.
#[derive(Default)]
pub struct MemoryLog {
    entries: Mutex<Vec<Value>>,
}

impl MemoryLog {
    pub fn new(entries: Vec<Value>) -> Self {
        MemoryLog {
            entries: Mutex::new(entries),
        }
    }

    pub fn push(&self, entry: Value) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.push(entry);
        }
    }
}

fn matches(entry: &Value, filter: &LogFilter) -> bool {
    let text = |key: &str| entry.get(key).and_then(Value::as_str);
    if let Some(agent) = &filter.agent {
        if text("agent") != Some(agent.as_str()) {
            return false;
        }
    }
    if let Some(package) = &filter.package {
        let wanted = package.to_lowercase();
        if !text("package").is_some_and(|p| p.to_lowercase().contains(&wanted)) {
            return false;
        }
    }
    if let Some(verdict) = filter.verdict {
        if text("verdict") != Some(verdict.to_string().as_str()) {
            return false;
        }
    }
    if filter.would_refuse {
        let flagged = (entry.get("findings").and_then(Value::as_array)).is_some_and(|f| {
            f.iter()
                .any(|f| f.get("code") == Some(&Value::from(WOULD_REFUSE)))
        });
        if !flagged {
            return false;
        }
    }
    if filter.since.is_some() || filter.until.is_some() {
        let Some(time) = text("time")
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
        else {
            return false;
        };
        if filter.since.is_some_and(|s| time < s) || filter.until.is_some_and(|u| time > u) {
            return false;
        }
    }
    true
}

impl DecisionLog for MemoryLog {
    fn query(&self, filter: &LogFilter) -> Result<Vec<Value>, String> {
        let entries = self
            .entries
            .lock()
            .map_err(|_| "log lock poisoned".to_owned())?;
        Ok(entries
            .iter()
            .rev()
            .filter(|e| matches(e, filter))
            .take(filter.limit)
            .cloned()
            .collect())
    }
}

/// A fixed feed status.
pub struct StaticFeeds(pub Value);

impl FeedStatusSource for StaticFeeds {
    fn status(&self) -> Value {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn memory_log_filters_newest_first() {
        let log = MemoryLog::new(vec![
            json!({"time": "2026-01-01T00:00:00Z", "agent": "a", "package": "Left-Pad", "verdict": "deny"}),
            json!({"time": "2026-01-02T00:00:00Z", "agent": "b", "package": "lodash", "verdict": "allow"}),
            json!({"time": "2026-01-03T00:00:00Z", "agent": "a", "package": "left-pad", "verdict": "allow"}),
        ]);
        let all = log.query(&LogFilter::default()).unwrap();
        assert_eq!(all[0]["time"], "2026-01-03T00:00:00Z");
        let filter = LogFilter {
            package: Some("LEFT".into()),
            ..LogFilter::default()
        };
        assert_eq!(log.query(&filter).unwrap().len(), 2);
        let filter = LogFilter {
            agent: Some("a".into()),
            verdict: Some(Verdict::Deny),
            ..LogFilter::default()
        };
        assert_eq!(log.query(&filter).unwrap().len(), 1);
        let filter = LogFilter {
            since: Some("2026-01-02T00:00:00Z".parse().unwrap()),
            limit: 1,
            ..LogFilter::default()
        };
        let got = log.query(&filter).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["agent"], "a");
    }
}
