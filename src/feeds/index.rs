//! The in-memory advisory index every check looks packages up in.
//!
//! Keyed by ecosystem and normalised package name, so `Django`, `django` and `DJANGO` (or
//! `serde-json` / `serde_json`) find the same advisories. Built once per feed load and shared
//! behind an `Arc`; lookups allocate nothing beyond the result vector.

use std::collections::{BTreeMap, HashMap};

use crate::package::{Ecosystem, PackageName, Version};

use super::model::Advisory;

/// Advisories by (ecosystem, normalised name).
#[derive(Debug, Default)]
pub struct AdvisoryIndex {
    by_package: [HashMap<String, Vec<Advisory>>; 3],
    len: usize,
    version_warnings: usize,
    revision: String,
}

fn slot(eco: Ecosystem) -> usize {
    match eco {
        Ecosystem::Npm => 0,
        Ecosystem::PyPI => 1,
        Ecosystem::CratesIo => 2,
    }
}

impl AdvisoryIndex {
    /// Indexes `advisories`, compiling their matchers. The same advisory id for the same
    /// package from two sources (the bundled snapshot and a sync, say) is kept once: the one
    /// with the latest `modified` wins.
    pub fn new(advisories: impl IntoIterator<Item = Advisory>, revision: String) -> Self {
        let mut index = AdvisoryIndex {
            revision,
            ..AdvisoryIndex::default()
        };
        for mut advisory in advisories {
            index.version_warnings += advisory.compile();
            let list = index.by_package[slot(advisory.ecosystem)]
                .entry(advisory.package.clone())
                .or_default();
            match list.iter_mut().find(|a| a.id == advisory.id) {
                Some(existing) => {
                    if advisory.modified > existing.modified {
                        *existing = advisory;
                    }
                }
                None => {
                    list.push(advisory);
                    index.len += 1;
                }
            }
        }
        index
    }

    /// This index with `other`'s advisories for the ecosystems this one has none of (the
    /// bundled snapshot filling what synced feeds do not cover): moved, not copied and
    /// compiled again. `other` is meant to hold only such ecosystems; its advisories for an
    /// ecosystem this index already has are dropped.
    pub(crate) fn fill_empty_ecosystems(
        mut self,
        mut other: AdvisoryIndex,
        revision: String,
    ) -> Self {
        for (mine, theirs) in self.by_package.iter_mut().zip(&mut other.by_package) {
            if mine.is_empty() && !theirs.is_empty() {
                self.len += theirs.values().map(Vec::len).sum::<usize>();
                *mine = std::mem::take(theirs);
            }
        }
        self.version_warnings += other.version_warnings;
        self.revision = revision;
        self
    }

    /// Identifies the data this index was built from; goes into the proxy's ETags.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// Number of (advisory, package) entries.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Versions in advisories that did not parse (handled conservatively, see
    /// `feeds::matcher`).
    pub fn version_warnings(&self) -> usize {
        self.version_warnings
    }

    /// Every advisory about `name`, whatever the version.
    pub fn for_package(&self, name: &PackageName) -> &[Advisory] {
        self.by_package[slot(name.ecosystem())]
            .get(name.key())
            .map_or(&[], Vec::as_slice)
    }

    /// The advisories affecting `name` at `version`; with no version, every advisory about
    /// the package (the caller asks [`Advisory::affects_all_versions`] which ones matter).
    pub fn matching(&self, name: &PackageName, version: Option<&Version>) -> Vec<&Advisory> {
        let all = self.for_package(name);
        match version {
            None => all.iter().collect(),
            Some(v) => all.iter().filter(|a| a.affects(v)).collect(),
        }
    }

    /// Number of entries per ecosystem and kind, for status output.
    pub fn counts(&self) -> BTreeMap<(Ecosystem, &'static str), usize> {
        let mut counts = BTreeMap::new();
        for eco in Ecosystem::ALL {
            for advisory in self.by_package[slot(eco)].values().flatten() {
                *counts.entry((eco, advisory.kind.as_str())).or_default() += 1;
            }
        }
        counts
    }

    /// Every advisory, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Advisory> {
        self.by_package.iter().flat_map(|m| m.values().flatten())
    }
}

impl Advisory {
    /// Whether `version` is affected.
    pub(crate) fn affects(&self, version: &Version) -> bool {
        self.matcher.affects(version)
    }

    /// Whether every version of the package is affected.
    pub fn affects_all_versions(&self) -> bool {
        self.matcher.affects_all()
    }

    /// The lowest fixed version above `version`, when the advisory names one.
    pub(crate) fn fixed_above(&self, version: &Version) -> Option<&Version> {
        self.matcher.fixed_above(version)
    }
}
