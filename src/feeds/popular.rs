//! Popular-package lists per ecosystem, for the typosquat check.
//!
//! `depfw serve`, `audit` and `check` flag a name that looks like a popular package it is
//! not; this module says which names are popular, how popular, and finds the popular names
//! near a given one fast enough to run on every package the proxy serves (a handful of
//! hash probes, see `crate::policy::typosquat`). The lists in `feeds/popular/` are compiled
//! in; `policy.typosquat.extra-popular` adds names (internal packages, say).

use std::collections::HashMap;

use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::OnceLock;

use crate::package::{Ecosystem, NameError, PackageName};
use crate::policy::typosquat::{detect, forms, Suspect};

const BUNDLED_NPM: &str = include_str!("../../feeds/popular/npm.txt");
const BUNDLED_PYPI: &str = include_str!("../../feeds/popular/pypi.txt");
const BUNDLED_CRATES: &str = include_str!("../../feeds/popular/crates-io.txt");

/// Popular names of every ecosystem, indexed for near-miss lookups.
#[derive(Debug, Clone, Default)]
pub struct PopularIndex {
    ecosystems: HashMap<Ecosystem, Slot>,
}

/// One ecosystem's index, or the bundled list it is built from on first use.
#[derive(Debug, Clone, Default)]
struct Slot {
    index: OnceLock<EcoIndex>,
    /// The bundled list to build `index` from, and whether it is ranked.
    bundled: Option<(Ecosystem, &'static str, bool)>,
}

impl Slot {
    fn get(&self) -> &EcoIndex {
        self.index.get_or_init(|| self.build())
    }

    fn get_mut(&mut self) -> &mut EcoIndex {
        let index = std::mem::take(&mut self.index)
            .into_inner()
            .unwrap_or_else(|| self.build());
        self.index = OnceLock::from(index);
        match self.index.get_mut() {
            Some(index) => index,
            None => unreachable!("the cell was just filled"),
        }
    }

    fn build(&self) -> EcoIndex {
        self.build_reaching(None)
    }

    /// The whole list, or with `reach` only the entries its queries can hit.
    fn build_reaching(&self, reach: Option<&Reach>) -> EcoIndex {
        let mut eco = EcoIndex::default();
        if let Some((ecosystem, text, ranked)) = self.bundled {
            if reach.is_none() {
                eco.reserve(text.lines().count(), text.len());
            }
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                // The bundled lists are checked by a test; a bad line must not take the
                // proxy down.
                match (PackageName::parse(ecosystem, line), reach) {
                    (Ok(name), None) => eco.insert(&name, ranked),
                    (Ok(name), Some(reach)) => eco.insert_if_reachable(&name, ranked, reach),
                    (Err(e), _) => tracing::warn!("bundled popular list: `{line}`: {e}"),
                }
            }
            eco.finish();
        }
        eco
    }
}

/// Above this many scanned names in one ecosystem, reducing its list no longer pays: they
/// reach thousands of popular entries, and filtering hashes every name once more before
/// storing. Measured on the npm list: 49 names reduce in a few ms against ~18 ms for the
/// whole list; 5,000 names take ~20 ms reduced.
const MAX_REDUCED_QUERIES: usize = 1_000;

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
    /// built now: for the proxy, whose first request must not pay for it.
    pub fn bundled() -> PopularIndex {
        let index = PopularIndex::bundled_lazy();
        for slot in index.ecosystems.values() {
            slot.get();
        }
        index
    }

    /// The bundled lists, each built on the first lookup in its ecosystem (~20 ms each):
    /// for one-shot commands that may touch only one ecosystem.
    pub fn bundled_lazy() -> PopularIndex {
        let mut index = PopularIndex::default();
        for (ecosystem, text, ranked) in [
            (Ecosystem::Npm, BUNDLED_NPM, true),
            (Ecosystem::PyPI, BUNDLED_PYPI, true),
            (Ecosystem::CratesIo, BUNDLED_CRATES, false),
        ] {
            index.ecosystems.insert(
                ecosystem,
                Slot {
                    index: OnceLock::new(),
                    bundled: Some((ecosystem, text, ranked)),
                },
            );
        }
        index
    }

    /// The bundled lists reduced to the entries that a lookup of one of `packages`
    /// (ecosystem and normalised key) can reach, built now: for a one-shot scan that knows
    /// every package it evaluates (`depfw audit`). Building a whole list costs ~10 ms per
    /// 20k names, mostly storing ~250k deletion hashes; reducing it only hashes them.
    /// Lookups of `packages` answer exactly as with [`PopularIndex::bundled`]; other names
    /// of the same ecosystems may be missed, and other ecosystems are built whole on use.
    /// Past [`MAX_REDUCED_QUERIES`] names in an ecosystem its whole list is built instead.
    pub fn bundled_reaching<'a>(
        packages: impl IntoIterator<Item = (Ecosystem, &'a str)>,
    ) -> PopularIndex {
        let mut keys: HashMap<Ecosystem, Vec<&str>> = HashMap::new();
        for (ecosystem, key) in packages {
            keys.entry(ecosystem).or_default().push(key);
        }
        let index = PopularIndex::bundled_lazy();
        for (ecosystem, keys) in keys {
            let Some(slot) = index.ecosystems.get(&ecosystem) else {
                continue;
            };
            if keys.len() > MAX_REDUCED_QUERIES {
                slot.get();
            } else {
                let reach = Reach::new(ecosystem, keys);
                let _ = slot.index.set(slot.build_reaching(Some(&reach)));
            }
        }
        index
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
        let eco = self.ecosystems.entry(ecosystem).or_default().get_mut();
        let mut first_error = None;
        for raw in names {
            let raw = raw.as_ref();
            match PackageName::parse(ecosystem, raw) {
                Ok(name) => eco.insert(&name, ranked),
                Err(source) => {
                    first_error.get_or_insert(PopularError {
                        ecosystem,
                        name: raw.to_owned(),
                        source,
                    });
                }
            }
        }
        eco.finish();
        first_error.map_or(Ok(()), Err)
    }

    /// Whether `name` is itself a popular (or configured) package.
    pub fn is_popular(&self, name: &PackageName) -> bool {
        self.entry(name).is_some()
    }

    /// The rank of a popular name (1 = most popular); `None` for unranked or unknown names.
    pub fn rank(&self, name: &PackageName) -> Option<u32> {
        self.entry(name).and_then(|e| e.rank)
    }

    /// How many popular names `ecosystem` has.
    pub fn len(&self, ecosystem: Ecosystem) -> usize {
        self.ecosystems
            .get(&ecosystem)
            .map_or(0, |e| e.get().entries.len())
    }

    pub fn is_empty(&self) -> bool {
        self.ecosystems.values().all(|e| e.get().entries.is_empty())
    }

    /// The popular package `name` most likely imitates, if it is not popular itself.
    pub fn suspect(&self, name: &PackageName) -> Option<Suspect> {
        let eco = self.ecosystems.get(&name.ecosystem())?.get();
        if self.is_popular(name) {
            return None;
        }
        detect::suspect(eco, name)
    }

    fn entry(&self, name: &PackageName) -> Option<&Entry> {
        let eco = self.ecosystems.get(&name.ecosystem())?.get();
        let form = forms::form(name.ecosystem(), name.key());
        let entry = &eco.entries[eco.id_of_form(&form)? as usize];
        // A case-only variant of an npm name is a different package (and a look-alike).
        (*entry.key == *name.key()).then_some(entry)
    }
}

/// One popular name.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The registry spelling, for messages.
    pub display: Box<str>,
    /// `PackageName::key`.
    pub key: Box<str>,
    /// `forms::form`: what distances are measured on.
    pub form: Box<str>,
    pub rank: Option<u32>,
}

/// The popular names of one ecosystem and the maps near-miss lookups probe.
///
/// Built on every start (~20k names each), so it holds hashes rather than strings wherever
/// a hit is verified anyway: no per-name string maps to allocate and hash.
#[derive(Debug, Clone, Default)]
pub(crate) struct EcoIndex {
    pub entries: Vec<Entry>,
    /// Hash of each form.
    pub exact: HashMulti,
    /// Hashes of each form with one character deleted (symmetric-deletion index).
    pub deletions: HashMulti,
    pub separators: HashMulti,
    pub glyphs: HashMulti,
    /// Hashes of every word of every popular name: a look-alike made only of known words
    /// (`django-filer`, `git-python`) is usually a real project, a typo makes a new word.
    /// A 64-bit collision would only make one coined word look known.
    vocabulary: FxHashSet<u64>,
    /// Form hash -> first entry with it, for de-duplication while inserting (the `exact`
    /// map is only searchable after `finish`).
    inserted: FxHashMap<u64, u32>,
    /// Form hashes of every name read, stored or not (reduced indexes only).
    seen: FxHashSet<u64>,
    ranked_len: u32,
}

/// What the lookups of a known set of names can touch: the hashes they probe the index
/// with (their forms, one-deletion forms, skeletons and affix-stripped forms) and their
/// words. A popular name none of whose own hashes is among them can never be a result.
pub(crate) struct Reach {
    hashes: FxHashSet<u64>,
    words: FxHashSet<u64>,
}

impl Reach {
    fn new<'a>(ecosystem: Ecosystem, keys: impl IntoIterator<Item = &'a str>) -> Reach {
        let mut reach = Reach {
            hashes: FxHashSet::default(),
            words: FxHashSet::default(),
        };
        for key in keys {
            let form = forms::form(ecosystem, key);
            reach.hashes.insert(forms::hash(form.as_bytes()));
            reach.hashes.extend(forms::deletion_hashes(&form));
            reach.hashes.insert(forms::separator_skeleton_hash(&form));
            reach
                .hashes
                .insert(forms::hash(forms::glyph_skeleton(&form).as_bytes()));
            for (_, stripped) in forms::affix_stripped(ecosystem, &form) {
                reach.hashes.insert(forms::hash(stripped.as_bytes()));
            }
            reach
                .words
                .extend(forms::tokens(&form).map(|t| forms::hash(t.as_bytes())));
        }
        reach
    }

    /// Whether a popular name with this form could be found by one of the lookups.
    fn reaches(&self, form: &str, form_hash: u64) -> bool {
        self.hashes.contains(&form_hash)
            || forms::each_deletion_hash(form).any(|h| self.hashes.contains(&h))
            || self.hashes.contains(&forms::separator_skeleton_hash(form))
            // Without look-alike sequences the glyph skeleton is the separator skeleton.
            || (forms::has_homoglyph(form)
                && self
                    .hashes
                    .contains(&forms::hash(forms::glyph_skeleton(form).as_bytes())))
    }
}

impl EcoIndex {
    fn insert(&mut self, name: &PackageName, ranked: bool) {
        let form = forms::form(name.ecosystem(), name.key());
        let form_hash = forms::hash(form.as_bytes());
        if let Some(&first) = self.inserted.get(&form_hash) {
            if *self.entries[first as usize].form == *form {
                return;
            }
        }
        let rank = self.next_rank(ranked);
        self.push(name, form, form_hash, rank);
    }

    /// [`EcoIndex::insert`] for a reduced index: every name counts for ranks and for the
    /// words `reach` asks about, only reachable ones are stored. Duplicates are recognised
    /// by form hash alone here (a 64-bit collision would shift later ranks by one).
    fn insert_if_reachable(&mut self, name: &PackageName, ranked: bool, reach: &Reach) {
        let form = forms::form(name.ecosystem(), name.key());
        let form_hash = forms::hash(form.as_bytes());
        if !self.seen.insert(form_hash) {
            return;
        }
        let rank = self.next_rank(ranked);
        for token in forms::tokens(&form) {
            let word = forms::hash(token.as_bytes());
            if reach.words.contains(&word) {
                self.vocabulary.insert(word);
            }
        }
        if reach.reaches(&form, form_hash) {
            self.push(name, form, form_hash, rank);
        }
    }

    fn next_rank(&mut self, ranked: bool) -> Option<u32> {
        ranked.then(|| {
            self.ranked_len += 1;
            self.ranked_len
        })
    }

    fn push(&mut self, name: &PackageName, form: String, form_hash: u64, rank: Option<u32>) {
        let id = self.entries.len() as u32;
        self.inserted.entry(form_hash).or_insert(id);
        self.exact.push(form_hash, id);
        for h in forms::deletion_hashes(&form) {
            self.deletions.push(h, id);
        }
        self.separators
            .push(forms::separator_skeleton_hash(&form), id);
        self.glyphs
            .push(forms::hash(forms::glyph_skeleton(&form).as_bytes()), id);
        for token in forms::tokens(&form) {
            self.vocabulary.insert(forms::hash(token.as_bytes()));
        }
        self.entries.push(Entry {
            display: name.as_str().into(),
            key: name.key().into(),
            form: form.into(),
            rank,
        });
    }

    fn finish(&mut self) {
        for map in [
            &mut self.exact,
            &mut self.deletions,
            &mut self.separators,
            &mut self.glyphs,
        ] {
            map.finish();
        }
    }

    /// Room for `names` more names of `bytes` bytes in all: growing the ~250k-pair
    /// deletion table by doubling would copy it and fault in its pages twice over.
    fn reserve(&mut self, names: usize, bytes: usize) {
        self.entries.reserve(names);
        self.inserted.reserve(names);
        self.vocabulary.reserve(names);
        self.exact.pairs.reserve(names);
        self.separators.pairs.reserve(names);
        self.glyphs.pairs.reserve(names);
        self.deletions.pairs.reserve(bytes);
    }

    /// The entry whose form is exactly `form`.
    pub fn id_of_form(&self, form: &str) -> Option<u32> {
        self.exact
            .get(forms::hash(form.as_bytes()))
            .find(|&id| *self.entries[id as usize].form == *form)
    }

    /// Whether `word` is a word of some popular name.
    pub fn knows_word(&self, word: &str) -> bool {
        self.vocabulary.contains(&forms::hash(word.as_bytes()))
    }
}

/// A multimap from a 64-bit hash to entry ids, as one vector grouped by leading hash bits
/// (12 bytes a pair for the ~300k deletion hashes of a list) plus a table of where each
/// group starts, so that a probe is two memory reads and a short scan rather than a binary search
/// through megabytes of cache misses.
#[derive(Debug, Clone, Default)]
pub(crate) struct HashMulti {
    pairs: Vec<(u64, u32)>,
    /// `starts[b]` is the first pair whose hash has `b` as its top `bits` bits.
    starts: Vec<u32>,
    bits: u32,
}

impl HashMulti {
    fn push(&mut self, hash: u64, id: u32) {
        self.pairs.push((hash, id));
    }

    /// Groups the pairs by bucket with one counting pass and one scatter (no comparison
    /// sort: this runs over ~250k pairs on every start). Order within a bucket is
    /// insertion order; lookups scan the bucket anyway.
    fn finish(&mut self) {
        // About one pair per bucket.
        self.bits = (usize::BITS - self.pairs.len().leading_zeros()).clamp(1, 24);
        let buckets = 1usize << self.bits;
        let mut starts = vec![0u32; buckets + 1];
        for &(hash, _) in &self.pairs {
            starts[self.bucket(hash) + 1] += 1;
        }
        for b in 0..buckets {
            starts[b + 1] += starts[b];
        }
        let mut next = starts.clone();
        let mut grouped = vec![(0u64, 0u32); self.pairs.len()];
        for &(hash, id) in &self.pairs {
            let slot = &mut next[self.bucket(hash)];
            grouped[*slot as usize] = (hash, id);
            *slot += 1;
        }
        self.pairs = grouped;
        self.starts = starts;
    }

    fn bucket(&self, hash: u64) -> usize {
        // `bits` is 0 before `finish`: every hash is in the (missing) bucket 0.
        hash.checked_shr(64 - self.bits).unwrap_or(0) as usize
    }

    pub fn get(&self, hash: u64) -> impl Iterator<Item = u32> + '_ {
        let b = self.bucket(hash);
        let range = match (self.starts.get(b), self.starts.get(b + 1)) {
            (Some(&start), Some(&end)) => start as usize..end as usize,
            _ => 0..0,
        };
        self.pairs[range]
            .iter()
            .filter(move |(h, _)| *h == hash)
            .map(|(_, id)| *id)
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
        for (eco, text) in [
            (Ecosystem::Npm, BUNDLED_NPM),
            (Ecosystem::PyPI, BUNDLED_PYPI),
            (Ecosystem::CratesIo, BUNDLED_CRATES),
        ] {
            let mut index = PopularIndex::default();
            index.insert_all(eco, text.lines(), true).unwrap();
            assert!(index.len(eco) > 14_000, "{eco}: {}", index.len(eco));
        }
        let index = PopularIndex::bundled();
        assert_eq!(index.rank(&name(Ecosystem::Npm, "semver")), Some(1));
        assert_eq!(index.rank(&name(Ecosystem::PyPI, "Requests")), Some(7));
        assert!(index.is_popular(&name(Ecosystem::CratesIo, "rust-decimal")));
        assert_eq!(index.rank(&name(Ecosystem::CratesIo, "serde")), None);
        assert!(!index.is_popular(&name(Ecosystem::Npm, "Lodash")));
    }

    #[test]
    fn hash_multimap_finds_every_value_and_nothing_else() {
        let mut map = HashMulti::default();
        assert_eq!(map.get(7).count(), 0);
        for (h, id) in [(u64::MAX, 1), (0, 2), (1 << 63, 3), (1 << 63, 4), (42, 5)] {
            map.push(h, id);
        }
        map.finish();
        assert_eq!(map.get(1 << 63).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(map.get(u64::MAX).collect::<Vec<_>>(), [1]);
        assert_eq!(map.get(0).collect::<Vec<_>>(), [2]);
        assert_eq!(map.get(43).count(), 0);
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
