//! What `depfw serve` gathers for the release signals beyond one package's metadata, once
//! per parsed upstream document ([`gather`], called by [`super::pipeline`]):
//!
//! - the first release of each dependency a recent release added (`young-dependency-added`,
//!   axios → `plain-crypto-js`): the dependency's metadata is fetched through the same
//!   upstream client as any metadata (coalesced, cached), at most
//!   `policy.signals.dependencies-per-version` per release and `dependency-lookups` per
//!   document, newest releases first; each answer is kept in a bounded memo
//!   ([`FIRST_RELEASES`] names). A lookup that failed or was over the budget leaves its
//!   dependency unchecked (`dependency-unchecked`, held by default) and makes the pipeline
//!   forget the document's body, so the next request gathers again, the memo answering
//!   what was already learnt;
//! - the recent releases of each publisher (npm `_npmUser`) across packages, for
//!   `release-burst` across one publisher's packages.
//!
//! State that lives in memory, per replica, and is lost on restart: both memos. The
//! publisher memory holds releases published within [`KEEP_HOURS`] hours, at most
//! [`PER_PUBLISHER`] per publisher and [`PUBLISHERS`] publishers (the one with the oldest
//! newest release goes first); it is fed only by the documents this replica parsed, so a
//! burst shows in the documents fetched after the others, on the replica that saw them.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt as _;

use super::AppState;
use crate::package::PackageName;
use crate::policy::signals::{DependencyAges, FirstRelease, Gathered, SeenRelease, SignalsConfig};
use crate::registry::Protocol;

/// Dependency names whose first release is remembered; the memo is emptied when full.
pub(crate) const FIRST_RELEASES: usize = 8192;
/// Publishers remembered at once.
pub(crate) const PUBLISHERS: usize = 4096;
/// Recent releases remembered per publisher.
pub(crate) const PER_PUBLISHER: usize = 64;
/// How long a release stays in the publisher memory.
pub(crate) const KEEP_HOURS: i64 = 24;
/// Dependency lookups in flight at once for one document.
const CONCURRENT_LOOKUPS: usize = 4;

/// One publisher's remembered releases: (package, publish time), oldest first.
type Releases = VecDeque<(Box<str>, DateTime<Utc>)>;

/// Both memos of one protocol (see the module docs).
#[derive(Default)]
pub(crate) struct SignalFacts {
    first_releases: Mutex<HashMap<String, FirstRelease>>,
    publishers: Mutex<HashMap<Box<str>, Releases>>,
}

impl SignalFacts {
    fn first_release(&self, name: &str) -> Option<FirstRelease> {
        let memo = self
            .first_releases
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        memo.get(name).cloned()
    }

    fn remember_first_release(&self, name: &str, first: FirstRelease) {
        let mut memo = self
            .first_releases
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if memo.len() >= FIRST_RELEASES {
            memo.clear();
        }
        memo.insert(name.to_owned(), first);
    }

    /// Notes `package`'s recent releases by publisher and returns, for each of those
    /// publishers, their remembered releases of other packages.
    fn note_publishers(
        &self,
        package: &str,
        releases: &[(&str, DateTime<Utc>)],
        now: DateTime<Utc>,
    ) -> BTreeMap<String, Vec<SeenRelease>> {
        let keep = now - Duration::hours(KEEP_HOURS);
        let recent: Vec<(&str, DateTime<Utc>)> = releases
            .iter()
            .copied()
            .filter(|(_, published)| *published > keep)
            .collect();
        if recent.is_empty() {
            return BTreeMap::new();
        }
        let mut memory = self.publishers.lock().unwrap_or_else(|e| e.into_inner());
        for &(publisher, published) in &recent {
            if !memory.contains_key(publisher) && memory.len() >= PUBLISHERS {
                let stalest = memory
                    .iter()
                    .min_by_key(|(_, seen)| seen.iter().map(|(_, t)| *t).max())
                    .map(|(p, _)| p.clone());
                if let Some(p) = stalest {
                    memory.remove(&p);
                }
            }
            let seen = memory.entry(publisher.into()).or_default();
            seen.retain(|(_, t)| *t > keep);
            if !seen.iter().any(|(p, t)| &**p == package && *t == published) {
                if seen.len() >= PER_PUBLISHER {
                    seen.pop_front();
                }
                seen.push_back((package.into(), published));
            }
        }
        let mut out = BTreeMap::new();
        for &(publisher, _) in &recent {
            if out.contains_key(publisher) {
                continue;
            }
            if let Some(seen) = memory.get(publisher) {
                let others: Vec<SeenRelease> = seen
                    .iter()
                    .filter(|(p, _)| &**p != package)
                    .map(|(p, t)| SeenRelease {
                        package: p.to_string(),
                        published: *t,
                    })
                    .collect();
                if !others.is_empty() {
                    out.insert(publisher.to_owned(), others);
                }
            }
        }
        out
    }
}

/// One dependency's first release from the upstream; `Err` for a failure worth retrying.
async fn look_up<P: Protocol>(
    state: &AppState,
    protocol: &P,
    dependency: &str,
) -> Result<FirstRelease, String> {
    let name = match PackageName::parse(P::ECOSYSTEM, dependency) {
        Ok(name) => name,
        Err(e) => return Ok(FirstRelease::Unknown(format!("not a valid name: {e}"))),
    };
    let url = protocol.metadata_url(&name).map_err(|e| e.to_string())?;
    let fetched = match state
        .inner
        .upstream
        .metadata(url.as_str(), P::UPSTREAM_ACCEPT)
        .await
    {
        Ok(Some(fetched)) => fetched,
        Ok(None) => {
            return Ok(FirstRelease::Unknown(
                "not on the upstream registry".to_owned(),
            ))
        }
        Err(e) => {
            tracing::warn!(%url, error = %e, "a dependency's first release could not be looked up");
            return Err("the upstream registry did not answer".to_owned());
        }
    };
    let doc = super::blocking(|| protocol.parse(&name, &fetched.body)).map_err(|e| {
        tracing::warn!(%url, error = %e, "a dependency's metadata is unreadable");
        "its metadata is unreadable".to_owned()
    })?;
    Ok(
        match crate::registry::first_published(protocol.versions(&doc)) {
            Some(t) => FirstRelease::At(t),
            None => FirstRelease::Unknown("its metadata gives no publish time".to_owned()),
        },
    )
}

/// Gathers what the release signals need beyond `doc` (see the module docs) and hangs it
/// on every version. Returns false when something could not be looked up now (a failed
/// lookup, the budget spent): the caller then forgets the body so the next request tries
/// again.
pub(crate) async fn gather<P: Protocol>(
    state: &AppState,
    protocol: &P,
    facts: &SignalFacts,
    signals: &SignalsConfig,
    name: &PackageName,
    doc: &mut P::Doc,
) -> bool {
    let now = Utc::now();
    let records = protocol.versions(doc);
    if records.is_empty() {
        return true;
    }

    let publishers = if signals.burst_packages > 1 {
        let recent: Vec<(&str, DateTime<Utc>)> = records
            .iter()
            .filter_map(|r| {
                let this = r.metadata.lineage.as_ref()?.this()?;
                Some((this.publisher()?, this.published()?))
            })
            .collect();
        facts.note_publishers(name.as_str(), &recent, now)
    } else {
        BTreeMap::new()
    };

    // Newest releases first: the budget goes where an attack would be.
    let mut candidates: Vec<(Option<DateTime<Utc>>, Vec<&str>)> = records
        .iter()
        .filter_map(|r| {
            let lineage = r.metadata.lineage.as_ref()?;
            let deps = signals.dependencies_to_look_up(name, lineage, now);
            (!deps.is_empty()).then(|| (lineage.this().and_then(|t| t.published()), deps))
        })
        .collect();
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    let mut ages = DependencyAges::default();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut to_fetch: Vec<String> = Vec::new();
    let mut complete = true;
    for dep in candidates.iter().flat_map(|(_, deps)| deps.iter().copied()) {
        if !seen.insert(dep) {
            continue;
        }
        match facts.first_release(dep) {
            Some(first) => ages.insert(dep, first),
            None if to_fetch.len() < signals.dependency_lookups => to_fetch.push(dep.to_owned()),
            // Over the budget: unchecked for now, looked up by a later request.
            None => complete = false,
        }
    }
    let mut answers = futures_util::stream::iter(to_fetch)
        .map(|dep| async move {
            let first = look_up(state, protocol, &dep).await;
            (dep, first)
        })
        .buffer_unordered(CONCURRENT_LOOKUPS);
    while let Some((dep, first)) = answers.next().await {
        match first {
            Ok(first) => {
                facts.remember_first_release(&dep, first.clone());
                ages.insert(&dep, first);
            }
            Err(why) => {
                complete = false;
                ages.insert(&dep, FirstRelease::Unknown(why));
            }
        }
    }
    drop(answers);

    let gathered = std::sync::Arc::new(Gathered {
        dependencies: Some(ages),
        publishers,
    });
    for record in protocol.versions_mut(doc) {
        record.metadata.gathered = Some(std::sync::Arc::clone(&gathered));
    }
    complete
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publisher_memory_is_bounded_and_forgets_old_releases() {
        let facts = SignalFacts::default();
        let now = Utc::now();
        for i in 0..PER_PUBLISHER + 10 {
            let package = format!("p{i}");
            facts.note_publishers(&package, &[("eve", now)], now);
        }
        let seen = facts.note_publishers("q", &[("eve", now)], now);
        assert_eq!(seen["eve"].len(), PER_PUBLISHER - 1);
        // A release older than the memory keeps is not noted.
        let old = now - Duration::hours(KEEP_HOURS + 1);
        let seen = facts.note_publishers("r", &[("mallory", old)], now);
        assert!(seen.is_empty());
        for i in 0..PUBLISHERS + 5 {
            facts.note_publishers("s", &[(&format!("u{i}"), now)], now);
        }
        let memory = facts.publishers.lock().unwrap();
        assert!(memory.len() <= PUBLISHERS);
    }

    #[test]
    fn first_release_memo_is_bounded() {
        let facts = SignalFacts::default();
        for i in 0..FIRST_RELEASES + 3 {
            facts.remember_first_release(&format!("d{i}"), FirstRelease::At(Utc::now()));
        }
        assert!(facts.first_releases.lock().unwrap().len() <= FIRST_RELEASES);
    }
}
