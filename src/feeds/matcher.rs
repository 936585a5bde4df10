//! OSV version matching, compiled once per advisory.
//!
//! Semantics follow the OSV spec's evaluation pseudo-code: a range's events are sorted by
//! version (`introduced: "0"` first); walking them, `introduced <= v` turns "affected" on,
//! `fixed <= v` and `last_affected < v` turn it off; a range with `limit` events only
//! affects versions below some limit. Explicit `versions` and the ranges are OR-ed.
//!
//! Versions an advisory spells in a way the ecosystem's parser refuses are handled
//! conservatively (over-blocking rather than missing): an unparsable `introduced` counts as
//! `"0"`, and an unparsable `fixed`, `last_affected` or `limit` is dropped, which leaves the
//! range open. Unparsable explicit versions are compared as strings. Each such event is
//! counted as a warning by [`Matcher::compile`].

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::package::{Ecosystem, Version};

// The ranges as an advisory spells them live here, with what they mean, so that the
// advisory model (`super::model`) uses the matcher and the matcher knows no advisory.
/// How the versions of a range compare (OSV `SEMVER` or `ECOSYSTEM`; `GIT` ranges are
/// dropped at load because they name commits, not releases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RangeKind {
    Semver,
    Ecosystem,
}

/// One OSV range event, version kept as the advisory spelled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeEvent {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

impl RangeEvent {
    pub fn version(&self) -> &str {
        match self {
            RangeEvent::Introduced(v)
            | RangeEvent::Fixed(v)
            | RangeEvent::LastAffected(v)
            | RangeEvent::Limit(v) => v,
        }
    }
}

/// One OSV `affected[].ranges[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedRange {
    pub kind: RangeKind,
    pub events: Vec<RangeEvent>,
}

#[derive(Debug, Clone)]
enum Event {
    /// `None`: from the first version (`"0"`, or unparsable: see the module docs).
    Introduced(Option<Version>),
    Fixed(Version),
    LastAffected(Version),
    Limit(Version),
}

impl Event {
    fn version(&self) -> Option<&Version> {
        match self {
            Event::Introduced(v) => v.as_ref(),
            Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => Some(v),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Matcher {
    all: bool,
    ranges: Vec<Vec<Event>>,
    versions: Vec<Version>,
    raw_versions: Vec<String>,
}

fn cmp_versions(a: Option<&Version>, b: Option<&Version>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

fn ge(v: &Version, bound: &Version) -> bool {
    matches!(
        v.partial_cmp(bound),
        Some(Ordering::Greater | Ordering::Equal)
    )
}

fn gt(v: &Version, bound: &Version) -> bool {
    matches!(v.partial_cmp(bound), Some(Ordering::Greater))
}

fn lt(v: &Version, bound: &Version) -> bool {
    matches!(v.partial_cmp(bound), Some(Ordering::Less))
}

impl Matcher {
    /// Parses an advisory's ranges and versions (`all`: every version is affected);
    /// returns the matcher and the number of versions that did not parse.
    pub(crate) fn compile(
        eco: Ecosystem,
        advisory_ranges: &[AffectedRange],
        advisory_versions: &[String],
        all: bool,
    ) -> (Matcher, usize) {
        let mut warnings = 0;
        let mut parse = |raw: &str| -> Option<Version> {
            let parsed = parse_version(eco, raw);
            if parsed.is_none() {
                warnings += 1;
            }
            parsed
        };
        let mut ranges = Vec::with_capacity(advisory_ranges.len());
        for range in advisory_ranges {
            let mut events: Vec<Event> = Vec::with_capacity(range.events.len());
            for event in &range.events {
                let compiled = match event {
                    RangeEvent::Introduced(v) if v == "0" => Some(Event::Introduced(None)),
                    RangeEvent::Introduced(v) => Some(Event::Introduced(parse(v))),
                    RangeEvent::Fixed(v) => parse(v).map(Event::Fixed),
                    RangeEvent::LastAffected(v) => parse(v).map(Event::LastAffected),
                    // `*` is OSV's "no limit".
                    RangeEvent::Limit(v) if v == "*" => None,
                    RangeEvent::Limit(v) => parse(v).map(Event::Limit),
                };
                events.extend(compiled);
            }
            // Stable: equal versions keep the advisory's order.
            events.sort_by(|a, b| cmp_versions(a.version(), b.version()));
            ranges.push(events);
        }
        let mut versions = Vec::new();
        let mut raw_versions = Vec::new();
        for raw in advisory_versions {
            match parse_version(eco, raw) {
                Some(v) => versions.push(v),
                None => {
                    warnings += 1;
                    raw_versions.push(raw.trim().to_owned());
                }
            }
        }
        // PyPA lists hundreds of versions per advisory, nearly all inside its own ranges:
        // keeping only the ones the ranges miss (the two are OR-ed) spares every lookup of
        // an unaffected version a binary search. Sorted for that search: the proxy asks
        // about every version of a package.
        versions.retain(|v| !ranges.iter().any(|r| range_affects(r, v)));
        versions.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
        let matcher = Matcher {
            all,
            ranges,
            versions,
            raw_versions,
        };
        (matcher, warnings)
    }

    /// Whether `version` is affected.
    pub(crate) fn affects(&self, version: &Version) -> bool {
        self.all
            || self.ranges.iter().any(|r| range_affects(r, version))
            || self
                .versions
                .binary_search_by(|v| v.partial_cmp(version).unwrap_or(Ordering::Less))
                .is_ok()
            || (!self.raw_versions.is_empty() && {
                let shown = version.to_string();
                self.raw_versions.contains(&shown)
            })
    }

    /// Whether every version is affected (no upper bound anywhere that starts at "0").
    pub(crate) fn affects_all(&self) -> bool {
        self.all
            || self.ranges.iter().any(|events| {
                matches!(events.first(), Some(Event::Introduced(None)))
                    && events.iter().all(|e| matches!(e, Event::Introduced(_)))
            })
    }

    /// The lowest `fixed` version above `version`, if any range names one.
    pub(crate) fn fixed_above(&self, version: &Version) -> Option<&Version> {
        self.ranges
            .iter()
            .flatten()
            .filter_map(|e| match e {
                Event::Fixed(f) if gt(f, version) => Some(f),
                _ => None,
            })
            .min_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal))
    }
}

fn range_affects(events: &[Event], v: &Version) -> bool {
    let mut affected = false;
    let mut limits = events
        .iter()
        .filter_map(|e| match e {
            Event::Limit(l) => Some(l),
            _ => None,
        })
        .peekable();
    if limits.peek().is_some() && !limits.any(|l| lt(v, l)) {
        return false;
    }
    for event in events {
        match event {
            Event::Introduced(None) => affected = true,
            Event::Introduced(Some(i)) if ge(v, i) => affected = true,
            Event::Fixed(f) if ge(v, f) => affected = false,
            Event::LastAffected(l) if gt(v, l) => affected = false,
            _ => {}
        }
    }
    affected
}

fn parse_version(eco: Ecosystem, raw: &str) -> Option<Version> {
    Version::parse(eco, raw.trim()).ok()
}
