//! A package's releases in publish order, compactly: what the signals compare one version
//! against.
//!
//! The registry parsers (`registry::npm`, `registry::pypi`) build one [`ReleaseHistory`]
//! per parsed document with a [`HistoryBuilder`] and give every version's
//! [`VersionMetadata`](crate::policy::VersionMetadata) a [`Lineage`]: the shared history
//! and the version's place in it. Nothing here is per request, and nothing is copied per
//! version: publishers and maintainer names are interned, maintainer sets deduplicated, so
//! a packument of thousands of versions adds a few dozen bytes per version.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

/// "Not known" for the interned indices.
const NONE: u32 = u32::MAX;

const SCRIPT_KNOWN: u8 = 1;
const SCRIPT: u8 = 2;
const ATTEST_KNOWN: u8 = 4;
const ATTESTED: u8 = 8;

/// What a registry says about one release, as the builder takes it (borrowed from the
/// document being parsed).
#[derive(Debug, Clone, Default)]
pub struct ReleaseFacts<'a> {
    /// The version as the registry spells it.
    pub version: &'a str,
    pub published: Option<DateTime<Utc>>,
    /// Whether installing runs a script; `None`: the source cannot say.
    pub install_script: Option<bool>,
    /// Whether the release carries a provenance attestation (npm `dist.attestations`,
    /// PyPI PEP 740 `provenance`); `None`: the source cannot say.
    pub attested: Option<bool>,
    /// The account that published it (npm `_npmUser.name`).
    pub publisher: Option<&'a str>,
    /// The package's maintainers when it was published (npm `maintainers[].name`).
    pub maintainers: Vec<&'a str>,
    /// The names it depends on at install (npm `dependencies` and
    /// `optionalDependencies`); `None`: the source cannot say.
    pub dependencies: Option<Vec<&'a str>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Release {
    version: Box<str>,
    /// Seconds since the epoch.
    published: Option<i64>,
    publisher: u32,
    maintainers: u32,
    /// Index into `dependency_sets`, or [`NONE`] (unknown).
    dependencies: u32,
    flags: u8,
}

/// Every release of one package, with the publishers and maintainer sets interned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReleaseHistory {
    /// In the order they were pushed (the document's order).
    releases: Vec<Release>,
    /// The releases that have a publish time, oldest first (ties in push order).
    by_time: Vec<u32>,
    /// Each release's position in `by_time`, or [`NONE`].
    rank: Vec<u32>,
    publishers: Vec<Box<str>>,
    /// Each publisher's first publish time (seconds), or `i64::MAX` when none is known.
    publisher_first: Vec<i64>,
    maintainer_names: Vec<Box<str>>,
    /// Sorted, deduplicated indices into `maintainer_names`.
    maintainer_sets: Vec<Box<[u32]>>,
    dependency_names: Vec<Box<str>>,
    /// Sorted, deduplicated indices into `dependency_names`: most releases of a package
    /// share their set with the one before.
    dependency_sets: Vec<Box<[u32]>>,
}

/// Builds a [`ReleaseHistory`]; [`HistoryBuilder::push`] returns each release's index.
#[derive(Debug, Default)]
pub struct HistoryBuilder {
    history: ReleaseHistory,
    publisher_ids: HashMap<Box<str>, u32>,
    maintainer_ids: HashMap<Box<str>, u32>,
    set_ids: HashMap<Box<[u32]>, u32>,
    dependency_ids: HashMap<Box<str>, u32>,
    dependency_set_ids: HashMap<Box<[u32]>, u32>,
}

fn intern(ids: &mut HashMap<Box<str>, u32>, names: &mut Vec<Box<str>>, name: &str) -> u32 {
    if let Some(&id) = ids.get(name) {
        return id;
    }
    let id = u32::try_from(names.len()).unwrap_or(NONE);
    names.push(name.into());
    ids.insert(name.into(), id);
    id
}

/// The index of `names` as an interned, sorted and deduplicated set.
fn intern_set(
    ids: &mut HashMap<Box<str>, u32>,
    names: &mut Vec<Box<str>>,
    set_ids: &mut HashMap<Box<[u32]>, u32>,
    sets: &mut Vec<Box<[u32]>>,
    members: &[&str],
) -> u32 {
    let mut set: Vec<u32> = members
        .iter()
        .filter(|m| !m.is_empty())
        .map(|m| intern(ids, names, m))
        .collect();
    set.sort_unstable();
    set.dedup();
    let set: Box<[u32]> = set.into();
    if let Some(&id) = set_ids.get(&set) {
        return id;
    }
    let id = u32::try_from(sets.len()).unwrap_or(NONE);
    sets.push(set.clone());
    set_ids.insert(set, id);
    id
}

impl HistoryBuilder {
    pub fn new() -> Self {
        HistoryBuilder::default()
    }

    /// Adds one release; the returned index goes into its [`Lineage`].
    pub fn push(&mut self, facts: &ReleaseFacts<'_>) -> u32 {
        let h = &mut self.history;
        let publisher = match facts.publisher.filter(|p| !p.is_empty()) {
            Some(p) => {
                let id = intern(&mut self.publisher_ids, &mut h.publishers, p);
                if h.publisher_first.len() < h.publishers.len() {
                    h.publisher_first.push(i64::MAX);
                }
                id
            }
            None => NONE,
        };
        let maintainers = if facts.maintainers.is_empty() {
            NONE
        } else {
            intern_set(
                &mut self.maintainer_ids,
                &mut h.maintainer_names,
                &mut self.set_ids,
                &mut h.maintainer_sets,
                &facts.maintainers,
            )
        };
        let dependencies = match &facts.dependencies {
            None => NONE,
            Some(names) => intern_set(
                &mut self.dependency_ids,
                &mut h.dependency_names,
                &mut self.dependency_set_ids,
                &mut h.dependency_sets,
                names,
            ),
        };
        let mut flags = 0;
        if let Some(s) = facts.install_script {
            flags |= SCRIPT_KNOWN | if s { SCRIPT } else { 0 };
        }
        if let Some(a) = facts.attested {
            flags |= ATTEST_KNOWN | if a { ATTESTED } else { 0 };
        }
        let published = facts.published.map(|t| t.timestamp());
        if let (Some(t), Some(first)) = (published, h.publisher_first.get_mut(publisher as usize)) {
            *first = (*first).min(t);
        }
        h.releases.push(Release {
            version: facts.version.into(),
            published,
            publisher,
            maintainers,
            dependencies,
            flags,
        });
        u32::try_from(h.releases.len() - 1).unwrap_or(NONE)
    }

    /// The finished history, shared by every version's [`Lineage`].
    pub fn finish(self) -> Arc<ReleaseHistory> {
        let mut h = self.history;
        let mut by_time: Vec<u32> = (0..h.releases.len())
            .filter(|&i| h.releases[i].published.is_some())
            .filter_map(|i| u32::try_from(i).ok())
            .collect();
        by_time.sort_by_key(|&i| h.releases[i as usize].published);
        let mut rank = vec![NONE; h.releases.len()];
        for (pos, &i) in by_time.iter().enumerate() {
            rank[i as usize] = u32::try_from(pos).unwrap_or(NONE);
        }
        h.by_time = by_time;
        h.rank = rank;
        Arc::new(h)
    }
}

impl ReleaseHistory {
    /// The heap bytes held (counted once per document, not per version).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let strs = |v: &[Box<str>]| {
            v.iter()
                .map(|s| s.len() + size_of::<Box<str>>())
                .sum::<usize>()
        };
        self.releases.capacity() * size_of::<Release>()
            + self.releases.iter().map(|r| r.version.len()).sum::<usize>()
            + (self.by_time.capacity() + self.rank.capacity()) * size_of::<u32>()
            + strs(&self.publishers)
            + self.publisher_first.capacity() * size_of::<i64>()
            + strs(&self.maintainer_names)
            + strs(&self.dependency_names)
            + [&self.maintainer_sets, &self.dependency_sets]
                .iter()
                .flat_map(|sets| sets.iter())
                .map(|s| s.len() * size_of::<u32>() + size_of::<Box<[u32]>>())
                .sum::<usize>()
    }

    pub fn len(&self) -> usize {
        self.releases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.releases.is_empty()
    }

    /// The release at push index `i`.
    pub fn release(&self, i: u32) -> Option<ReleaseView<'_>> {
        let r = self.releases.get(i as usize)?;
        Some(ReleaseView { history: self, r })
    }
}

/// One release of a [`ReleaseHistory`], read back.
#[derive(Debug, Clone, Copy)]
pub struct ReleaseView<'h> {
    history: &'h ReleaseHistory,
    r: &'h Release,
}

impl<'h> ReleaseView<'h> {
    pub fn version(&self) -> &'h str {
        &self.r.version
    }

    pub fn published(&self) -> Option<DateTime<Utc>> {
        self.r
            .published
            .and_then(|s| DateTime::from_timestamp(s, 0))
    }

    pub fn install_script(&self) -> Option<bool> {
        (self.r.flags & SCRIPT_KNOWN != 0).then_some(self.r.flags & SCRIPT != 0)
    }

    pub fn attested(&self) -> Option<bool> {
        (self.r.flags & ATTEST_KNOWN != 0).then_some(self.r.flags & ATTESTED != 0)
    }

    pub fn publisher(&self) -> Option<&'h str> {
        self.history
            .publishers
            .get(self.r.publisher as usize)
            .map(|s| &**s)
    }

    fn maintainer_set(&self) -> Option<&'h [u32]> {
        self.history
            .maintainer_sets
            .get(self.r.maintainers as usize)
            .map(|s| &**s)
    }

    /// The maintainers when it was published, sorted by first appearance in the history.
    pub fn maintainers(&self) -> Vec<&'h str> {
        self.maintainer_set()
            .unwrap_or_default()
            .iter()
            .filter_map(|&m| self.history.maintainer_names.get(m as usize))
            .map(|s| &**s)
            .collect()
    }

    /// The names it depends on at install, sorted; `None` when the source cannot say.
    pub fn dependencies(&self) -> Option<Vec<&'h str>> {
        let set = self
            .history
            .dependency_sets
            .get(self.r.dependencies as usize)?;
        Some(
            set.iter()
                .filter_map(|&d| self.history.dependency_names.get(d as usize))
                .map(|s| &**s)
                .collect(),
        )
    }

    /// Whether it depends on the interned dependency `id`; `None`: unknown.
    fn depends_on(&self, id: u32) -> Option<bool> {
        let set = self
            .history
            .dependency_sets
            .get(self.r.dependencies as usize)?;
        Some(set.binary_search(&id).is_ok())
    }

    /// Whether both maintainer sets are known and share nobody.
    pub fn shares_no_maintainer_with(&self, other: &ReleaseView<'_>) -> bool {
        match (self.maintainer_set(), other.maintainer_set()) {
            (Some(a), Some(b)) if std::ptr::eq(self.history, other.history) => {
                !a.iter().any(|m| b.binary_search(m).is_ok())
            }
            _ => false,
        }
    }
}

/// One version's place in its package's [`ReleaseHistory`], carried in its
/// [`VersionMetadata`](crate::policy::VersionMetadata). Two lineages are equal when the
/// version's own facts are (publish time, install script, attestation, publisher,
/// maintainers), whatever the rest of each history: metadata compares as the version's.
#[derive(Debug, Clone)]
pub struct Lineage {
    history: Arc<ReleaseHistory>,
    index: u32,
}

impl PartialEq for Lineage {
    fn eq(&self, other: &Self) -> bool {
        match (self.this(), other.this()) {
            (Some(a), Some(b)) => {
                a.r.published == b.r.published
                    && a.r.flags == b.r.flags
                    && a.publisher() == b.publisher()
                    && a.maintainers() == b.maintainers()
            }
            (a, b) => a.is_none() && b.is_none(),
        }
    }
}

impl Eq for Lineage {}

impl Lineage {
    pub fn new(history: Arc<ReleaseHistory>, index: u32) -> Self {
        Lineage { history, index }
    }

    pub fn history(&self) -> &ReleaseHistory {
        &self.history
    }

    /// This version's release.
    pub fn this(&self) -> Option<ReleaseView<'_>> {
        self.history.release(self.index)
    }

    /// The releases published at least `gap` before this one, newest first, at most `max`
    /// of them: what this version is compared with. A release published within `gap`
    /// before it is left out, so that a burst of compromised versions does not vouch for
    /// itself. Empty when this version has no publish time.
    pub fn baseline(&self, gap: Duration, max: usize) -> Vec<ReleaseView<'_>> {
        let Some(t) = self.this().and_then(|r| r.r.published) else {
            return Vec::new();
        };
        let cutoff = t.saturating_sub(gap.num_seconds());
        let h = &*self.history;
        let end = h.by_time.partition_point(|&i| {
            h.releases[i as usize]
                .published
                .is_some_and(|p| p <= cutoff)
        });
        h.by_time[..end]
            .iter()
            .rev()
            .filter(|&&i| i != self.index)
            .take(max)
            .filter_map(|&i| h.release(i))
            .collect()
    }

    /// How many releases (this one included) were published within `window` of this one,
    /// before or after; 0 when it has none. Counting both sides marks every version of a
    /// burst, the first ones too, once the burst is visible.
    pub fn releases_within(&self, window: Duration) -> usize {
        let Some(t) = self.this().and_then(|r| r.r.published) else {
            return 0;
        };
        let h = &*self.history;
        let w = window.num_seconds();
        let count_up_to = |bound: i64, inclusive: bool| {
            h.by_time.partition_point(|&i| {
                h.releases[i as usize].published.is_some_and(|p| {
                    if inclusive {
                        p <= bound
                    } else {
                        p < bound
                    }
                })
            })
        };
        count_up_to(t.saturating_add(w), true)
            .saturating_sub(count_up_to(t.saturating_sub(w), false))
    }

    /// The dependencies this version declares that none of its `baseline` releases
    /// declared (each of them saying what it declared), sorted: what a patch or minor
    /// release brought in. Empty without a baseline, or when a release cannot say.
    pub fn added_dependencies(&self, gap: Duration, max: usize) -> Vec<&str> {
        let Some(this) = self.this() else {
            return Vec::new();
        };
        let baseline = self.baseline(gap, max);
        let Some(set) = self
            .history
            .dependency_sets
            .get(this.r.dependencies as usize)
        else {
            return Vec::new();
        };
        if baseline.is_empty() {
            return Vec::new();
        }
        // A baseline release that cannot say what it declared vouches for every name.
        set.iter()
            .filter(|&&d| baseline.iter().all(|r| r.depends_on(d) == Some(false)))
            .filter_map(|&d| self.history.dependency_names.get(d as usize))
            .map(|s| &**s)
            .collect()
    }

    /// When this version's publisher first published a release of this package.
    pub fn publisher_first_published(&self) -> Option<DateTime<Utc>> {
        let r = self.this()?.r;
        let first = *self.history.publisher_first.get(r.publisher as usize)?;
        (first != i64::MAX)
            .then(|| DateTime::from_timestamp(first, 0))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: i64) -> Option<DateTime<Utc>> {
        Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::hours(h))
    }

    #[test]
    fn baseline_skips_recent_releases_and_orders_by_time() {
        let mut b = HistoryBuilder::new();
        // Pushed out of time order, as a packument's keys are.
        let v2 = b.push(&ReleaseFacts {
            version: "1.0.2",
            published: at(100),
            publisher: Some("eve"),
            ..ReleaseFacts::default()
        });
        b.push(&ReleaseFacts {
            version: "1.0.0",
            published: at(0),
            publisher: Some("alice"),
            maintainers: vec!["alice", "bob"],
            ..ReleaseFacts::default()
        });
        b.push(&ReleaseFacts {
            version: "1.0.1",
            published: at(99),
            publisher: Some("eve"),
            ..ReleaseFacts::default()
        });
        let h = b.finish();
        let l = Lineage::new(Arc::clone(&h), v2);
        let base: Vec<&str> = l
            .baseline(Duration::hours(24), 5)
            .iter()
            .map(ReleaseView::version)
            .collect();
        assert_eq!(base, ["1.0.0"]);
        let base: Vec<&str> = l
            .baseline(Duration::zero(), 5)
            .iter()
            .map(ReleaseView::version)
            .collect();
        assert_eq!(base, ["1.0.1", "1.0.0"]);
        assert_eq!(l.releases_within(Duration::hours(2)), 2);
        assert_eq!(l.releases_within(Duration::hours(200)), 3);
        let first = Lineage::new(Arc::clone(&h), 1);
        assert_eq!(first.releases_within(Duration::hours(99)), 2);
        assert_eq!(first.releases_within(Duration::hours(98)), 1);
        assert_eq!(l.publisher_first_published(), at(99));
        let first = h.release(1).unwrap();
        assert_eq!(first.maintainers(), ["alice", "bob"]);
    }

    #[test]
    fn added_dependencies_are_those_no_baseline_release_declared() {
        let mut b = HistoryBuilder::new();
        let push = |b: &mut HistoryBuilder, v, h, deps: Option<Vec<&'static str>>| {
            b.push(&ReleaseFacts {
                version: v,
                published: at(h),
                dependencies: deps,
                ..ReleaseFacts::default()
            })
        };
        push(&mut b, "1.0.0", 0, Some(vec!["a"]));
        push(&mut b, "1.1.0", 100, Some(vec!["a", "b"]));
        // Within the gap of 1.2.0: not part of its baseline.
        push(&mut b, "1.1.1", 190, Some(vec!["a", "b", "c"]));
        let v12 = push(&mut b, "1.2.0", 200, Some(vec!["b", "c", "a", "d"]));
        let unknown = push(&mut b, "1.3.0", 300, None);
        let after_unknown = push(&mut b, "1.3.1", 400, Some(vec!["e"]));
        let h = b.finish();
        let gap = Duration::hours(24);
        let l = Lineage::new(Arc::clone(&h), v12);
        assert_eq!(l.added_dependencies(gap, 5), ["c", "d"]);
        assert_eq!(
            l.this().unwrap().dependencies().unwrap(),
            ["a", "b", "c", "d"]
        );
        // A release that cannot say adds nothing; a baseline release that cannot say
        // vouches for every name.
        assert!(Lineage::new(Arc::clone(&h), unknown)
            .added_dependencies(gap, 5)
            .is_empty());
        assert!(Lineage::new(Arc::clone(&h), after_unknown)
            .added_dependencies(gap, 5)
            .is_empty());
        // The first release has no baseline, so adds nothing.
        assert!(Lineage::new(h, 0).added_dependencies(gap, 5).is_empty());
    }
}
