//! The typosquat check's index of popular names, per ecosystem.
//!
//! `depfw serve`, `audit` and `check` flag a name that looks like a popular package it is
//! not; this module says which names are popular, how popular, and finds the popular names
//! near a given one fast enough to run on every package the proxy serves (a handful of
//! hash probes, see [`detect`]). The lists themselves are data, in `crate::feeds::popular`;
//! their indexes are prebuilt by `depfw feeds popular-index` (see `table`), because how a
//! list is indexed is the check's business (its name forms and hashes) and changes with it.
//! `policy.typosquat.extra-popular` adds names (internal packages, say), which rebuilds
//! that ecosystem's index once at start.

use rustc_hash::FxHashMap;
use std::sync::OnceLock;

use crate::feeds::popular::{BundledList, BUNDLED};
use crate::package::{Ecosystem, NameError, PackageName};

use super::table::{EcoBuilder, EcoIndex, Entry};
use super::{detect, forms, Suspect};

/// The index built from a bundled list, as `depfw feeds popular-index` writes it.
fn build(bundled: &BundledList) -> EcoIndex {
    let mut builder = EcoBuilder::default();
    builder.reserve(bundled.list.lines().count(), bundled.list.len());
    for line in bundled.list.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The bundled lists are checked by a test; a bad line must not take the
        // proxy down.
        match PackageName::parse(bundled.ecosystem, line) {
            Ok(name) => insert(&mut builder, &name, bundled.ranked),
            Err(e) => tracing::warn!("bundled popular list: `{line}`: {e}"),
        }
    }
    builder.finish()
}

fn insert(builder: &mut EcoBuilder, name: &PackageName, ranked: bool) {
    let form = forms::form(name.ecosystem(), name.key());
    builder.insert(name.as_str(), name.key(), &form, ranked);
}

/// Popular names of every ecosystem, indexed for near-miss lookups.
#[derive(Debug, Clone, Default)]
pub struct PopularIndex {
    /// Three keys, none from input: FxHash rather than SipHash, which was ~140 instructions
    /// a lookup, two lookups per package evaluated.
    ecosystems: FxHashMap<Ecosystem, Slot>,
}

/// One ecosystem's index, or the bundled list it is read from on first use.
#[derive(Debug, Clone, Default)]
struct Slot {
    index: OnceLock<EcoIndex>,
    bundled: Option<BundledList>,
}

impl Slot {
    fn get(&self) -> &EcoIndex {
        self.index.get_or_init(|| match self.bundled {
            Some(bundled) => EcoIndex::from_static(bundled.prebuilt).unwrap_or_else(|e| {
                // Only a broken build gets here (a test compares the files with a rebuild).
                tracing::warn!(
                    "feeds/popular/{}: {e}; building from the list",
                    bundled.file
                );
                build(&bundled)
            }),
            None => EcoIndex::default(),
        })
    }
}

/// A popular name that a list could not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("popular {ecosystem} name `{name}`: {source}")]
pub struct PopularError {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub source: NameError,
}

impl PopularIndex {
    /// The lists shipped in `feeds/popular/` (npm and PyPI ranked, crates.io unranked),
    /// each read on first use from its index prebuilt into the binary (microseconds).
    pub fn bundled() -> PopularIndex {
        let ecosystems = BUNDLED
            .iter()
            .map(|bundled| {
                let slot = Slot {
                    index: OnceLock::new(),
                    bundled: Some(*bundled),
                };
                (bundled.ecosystem, slot)
            })
            .collect();
        PopularIndex { ecosystems }
    }

    /// The `feeds/popular/*.idx` files built afresh from the bundled lists, by file name:
    /// what `depfw feeds popular-index` writes after a list or the name forms change.
    pub(crate) fn rebuilt_bundled_files() -> Vec<(&'static str, Vec<u8>)> {
        BUNDLED
            .iter()
            .map(|bundled| (bundled.file, build(bundled).to_bytes()))
            .collect()
    }

    /// An index of one ecosystem from `names`, most popular first (rank 1 is the first name).
    pub fn from_names<I, S>(ecosystem: Ecosystem, names: I) -> Result<PopularIndex, PopularError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut index = PopularIndex::default();
        index.insert_all(ecosystem, names, true)?;
        Ok(index)
    }

    /// Adds unranked names (`policy.typosquat.extra-popular`): they count as popular and are
    /// protected against look-alikes like any listed name. Names already present are kept.
    pub fn add_names<I, S>(&mut self, ecosystem: Ecosystem, names: I) -> Result<(), PopularError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.insert_all(ecosystem, names, false)
    }

    /// Every valid name is inserted even when some are not; the first error is returned.
    fn insert_all<I, S>(
        &mut self,
        ecosystem: Ecosystem,
        names: I,
        ranked: bool,
    ) -> Result<(), PopularError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let slot = self.ecosystems.entry(ecosystem).or_default();
        // Tables are laid out once: adding names rebuilds them (only with configured names).
        let mut builder = EcoBuilder::from_index(slot.get());
        let mut first_error = None;
        for raw in names {
            let raw = raw.as_ref();
            match PackageName::parse(ecosystem, raw) {
                Ok(name) => insert(&mut builder, &name, ranked),
                Err(source) => {
                    first_error.get_or_insert(PopularError {
                        ecosystem,
                        name: raw.to_owned(),
                        source,
                    });
                }
            }
        }
        slot.index = OnceLock::from(builder.finish());
        first_error.map_or(Ok(()), Err)
    }

    /// Whether `name` is itself a popular (or configured) package.
    pub fn is_popular(&self, name: &PackageName) -> bool {
        self.popular_id(name).is_some()
    }

    /// The rank of a popular name (1 = most popular); `None` for unranked or unknown names.
    pub fn rank(&self, name: &PackageName) -> Option<u32> {
        self.entry(name).and_then(|e| e.rank)
    }

    /// How many popular names `ecosystem` has.
    pub fn len(&self, ecosystem: Ecosystem) -> usize {
        self.ecosystems.get(&ecosystem).map_or(0, |e| e.get().len())
    }

    pub fn is_empty(&self) -> bool {
        self.ecosystems.values().all(|e| e.get().len() == 0)
    }

    /// The popular package `name` most likely imitates, if it is not popular itself.
    pub fn suspect(&self, name: &PackageName) -> Option<Suspect> {
        let eco = self.ecosystems.get(&name.ecosystem())?.get();
        if self.is_popular(name) {
            return None;
        }
        detect::suspect(eco, name)
    }

    fn entry(&self, name: &PackageName) -> Option<Entry<'_>> {
        let (eco, id) = self.popular_id(name)?;
        Some(eco.entry(id))
    }

    /// `name`'s entry, without reading it: most names a lockfile holds are popular, and
    /// reading each one's entry (its three names checked as UTF-8) only to compare its key
    /// was a third of the typosquat check's time in an audit.
    fn popular_id(&self, name: &PackageName) -> Option<(&EcoIndex, u32)> {
        let eco = self.ecosystems.get(&name.ecosystem())?.get();
        let form = forms::form(name.ecosystem(), name.key());
        let id = eco.id_of_form(&form)?;
        // A case-only variant of an npm name is a different package (and a look-alike).
        eco.key_is(id, name.key()).then_some((eco, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(e: Ecosystem, s: &str) -> PackageName {
        PackageName::parse(e, s).unwrap()
    }

    #[test]
    fn bundled_lists_parse_completely_and_rank_in_file_order() {
        for bundled in BUNDLED {
            let eco = bundled.ecosystem;
            let mut index = PopularIndex::default();
            index.insert_all(eco, bundled.list.lines(), true).unwrap();
            assert!(index.len(eco) > 14_000, "{eco}: {}", index.len(eco));
        }
        let index = PopularIndex::bundled();
        assert_eq!(index.rank(&name(Ecosystem::Npm, "semver")), Some(1));
        assert_eq!(index.rank(&name(Ecosystem::PyPI, "Requests")), Some(7));
        assert!(index.is_popular(&name(Ecosystem::CratesIo, "rust-decimal")));
        assert_eq!(index.rank(&name(Ecosystem::CratesIo, "serde")), None);
        assert!(!index.is_popular(&name(Ecosystem::Npm, "Lodash")));
    }

    /// Comparing the key's bytes finds the popular names that reading the entry finds.
    #[test]
    fn popular_by_key_bytes_is_popular_by_entry() {
        let index = PopularIndex::bundled();
        let names = [
            (Ecosystem::Npm, "lodash"),
            (Ecosystem::Npm, "Lodash"),
            (Ecosystem::Npm, "JSONStream"),
            (Ecosystem::Npm, "jsonstream"),
            (Ecosystem::PyPI, "Requests"),
            (Ecosystem::PyPI, "python_dateutil"),
            (Ecosystem::CratesIo, "serde_json"),
            (Ecosystem::CratesIo, "Serde-JSON"),
            (Ecosystem::CratesIo, "no-such-crate-at-all"),
        ];
        let mut popular = 0;
        for (eco, raw) in names {
            let name = name(eco, raw);
            let table = index.ecosystems[&eco].get();
            let by_entry = table
                .id_of_form(&forms::form(eco, name.key()))
                .is_some_and(|id| table.entry(id).key == name.key());
            assert_eq!(index.is_popular(&name), by_entry, "{raw}");
            popular += usize::from(by_entry);
        }
        assert!(popular >= 5, "{popular}");
    }

    /// The compiled-in indexes are what the compiled-in lists build to: a list or a name
    /// form changed without `depfw feeds popular-index` fails here.
    #[test]
    fn prebuilt_indexes_equal_a_build_from_the_bundled_lists() {
        for (file, rebuilt) in PopularIndex::rebuilt_bundled_files() {
            let bundled = BUNDLED.iter().find(|b| b.file == file).unwrap();
            assert!(
                rebuilt == bundled.prebuilt,
                "feeds/popular/{file} is out of date: run `cargo run --release -- feeds popular-index`"
            );
            assert_eq!(
                EcoIndex::from_static(bundled.prebuilt).unwrap().len(),
                PopularIndex::bundled().len(bundled.ecosystem)
            );
        }
    }

    /// `forms::GENERIC_WORDS` is what its rule gives on the bundled ranked lists: the words
    /// that, added at either end of at least `GENERIC_WORD_STEMS` popular names, make
    /// another popular name of the same list (all-digit and one-letter words left out).
    #[test]
    fn generic_words_are_derived_from_the_bundled_lists() {
        use std::collections::{BTreeMap, BTreeSet, HashSet};
        let mut generic = BTreeSet::new();
        for bundled in BUNDLED.iter().filter(|b| b.ranked) {
            let eco = bundled.ecosystem;
            let all: HashSet<String> = bundled
                .list
                .lines()
                .filter_map(|l| PackageName::parse(eco, l.trim()).ok())
                .map(|n| forms::form(eco, n.key()))
                .collect();
            let mut stems: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for form in all.iter().filter(|f| !f.contains('/')) {
                let words: Vec<&str> = form.split(['-', '_', '.']).collect();
                let (Some(first), Some(last)) = (words.first(), words.last()) else {
                    continue;
                };
                if words.len() < 2 {
                    continue;
                }
                for (word, stem) in [
                    (*last, &form[..form.len() - last.len() - 1]),
                    (*first, &form[first.len() + 1..]),
                ] {
                    if all.contains(stem) {
                        stems.entry(word).or_default().insert(stem);
                    }
                }
            }
            generic.extend(
                stems
                    .into_iter()
                    .filter(|(word, stems)| {
                        stems.len() >= forms::GENERIC_WORD_STEMS
                            && word.len() >= 2
                            && !word.bytes().all(|b| b.is_ascii_digit())
                    })
                    .map(|(word, _)| word.to_owned()),
            );
        }
        let listed: BTreeSet<String> = forms::GENERIC_WORDS.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            listed, generic,
            "forms::GENERIC_WORDS is out of date with the bundled lists"
        );
    }

    #[test]
    fn configured_names_join_the_bundled_list_after_its_ranks() {
        let mut index = PopularIndex::bundled();
        let before = index.len(Ecosystem::PyPI);
        index
            .add_names(Ecosystem::PyPI, ["acme-billing", "requests"])
            .unwrap();
        assert_eq!(index.len(Ecosystem::PyPI), before + 1);
        assert!(index.is_popular(&name(Ecosystem::PyPI, "acme_billing")));
        assert_eq!(index.rank(&name(Ecosystem::PyPI, "requests")), Some(7));
        let squat = index
            .suspect(&name(Ecosystem::PyPI, "acme-biling"))
            .unwrap();
        assert_eq!(squat.target, "acme-billing");
    }

    #[test]
    fn extra_names_are_popular_and_bad_ones_are_reported() {
        let mut index = PopularIndex::from_names(Ecosystem::Npm, ["lodash"]).unwrap();
        let err = index
            .add_names(Ecosystem::Npm, ["@acme/billing-core", "Bad Name"])
            .unwrap_err();
        assert_eq!(err.name, "Bad Name");
        assert!(index.is_popular(&name(Ecosystem::Npm, "@acme/billing-core")));
        assert_eq!(
            index.rank(&name(Ecosystem::Npm, "@acme/billing-core")),
            None
        );
        assert_eq!(index.rank(&name(Ecosystem::Npm, "lodash")), Some(1));
        assert!(!index.is_popular(&name(Ecosystem::PyPI, "lodash")));
    }
}
