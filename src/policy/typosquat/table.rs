//! The byte layout of one ecosystem's popular-name index.
//!
//! Every `depfw audit` and `depfw serve` start needs the typosquat index of ~15–20k popular
//! names per ecosystem: ~250k one-deletion hashes, grouped for lookup. Building it took
//! ~18 ms, more than the rest of a small audit together, so the bundled lists ship prebuilt
//! (`feeds/popular/*.idx`, written by `depfw feeds popular-index`) and are used in place,
//! straight from the binary. An index built at run time (`policy.typosquat.extra-popular`)
//! is laid out in the same bytes, so lookups have one code path.

use std::borrow::Cow;

use rustc_hash::{FxHashMap, FxHashSet};

use super::forms;
use crate::feeds::packed::{u32_at, u64_at};

type Bytes = Cow<'static, [u8]>;

/// The file header; bump it with any change to the layout or to `forms::hash`.
const MAGIC: &[u8; 16] = b"depfw-popular-1\n";
/// One entry record: display, key and form start, form end (string offsets), rank (0: none).
const RECORD: usize = 20;
/// One pair: the low 32 bits of a hash (its top bits are the bucket) and an entry id.
const PAIR: usize = 8;

/// One popular name.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Entry<'a> {
    /// The registry spelling, for messages.
    pub display: &'a str,
    /// `PackageName::key`.
    pub key: &'a str,
    /// `forms::form`: what distances are measured on.
    pub form: &'a str,
    pub rank: Option<u32>,
}

/// The entries: fixed-size records pointing into one run of UTF-8 text. The text is kept
/// as bytes and each name checked as it is read: checking the whole run when the bundled
/// index is opened cost ~340k instructions, a few percent of a `depfw audit`, for the
/// handful of names a lookup reads.
#[derive(Debug, Clone)]
struct EntryTable {
    records: Bytes,
    strings: Bytes,
}

impl EntryTable {
    fn len(&self) -> usize {
        self.records.len() / RECORD
    }

    fn get(&self, id: u32) -> Entry<'_> {
        entry_at(&self.records, &self.strings, id)
    }

    /// Whether entry `id`'s form is `form`, comparing bytes: a probe compares every
    /// candidate its hash finds, and checking each one's three names as UTF-8 first cost
    /// more than the comparison.
    fn form_is(&self, id: u32, form: &str) -> bool {
        self.name_is(id, FORM, form)
    }

    /// Whether name `i` ([`DISPLAY`], [`KEY`], [`FORM`]) of entry `id` is `name`, as bytes.
    fn name_is(&self, id: u32, i: usize, name: &str) -> bool {
        record_at(&self.records, id)
            .and_then(|r| name_bytes(&self.strings, r, i))
            .is_some_and(|b| b == name.as_bytes())
    }
}

/// The names of a record ([`RECORD`]), by the field holding the offset where each starts
/// in the strings; the next field ends it.
const DISPLAY: usize = 0;
const KEY: usize = 1;
const FORM: usize = 2;

/// The bytes of record `id`, if the table has it.
fn record_at(records: &[u8], id: u32) -> Option<&[u8]> {
    let at = id as usize * RECORD;
    records.get(at..at + RECORD)
}

/// Name `i` ([`DISPLAY`], [`KEY`], [`FORM`]) of `record`: from its offset to the next.
fn name_bytes<'a>(strings: &'a [u8], record: &[u8], i: usize) -> Option<&'a [u8]> {
    let field = |i: usize| u32_at(record, 4 * i) as usize;
    strings.get(field(i)..field(i + 1))
}

/// Entry `id` of `records` over `strings`, for the table and the builder alike; an id out
/// of range (only a damaged table has one) reads as empty.
/// A name that is not UTF-8 (only a damaged table has one) reads as empty too.
fn entry_at<'a>(records: &[u8], strings: &'a [u8], id: u32) -> Entry<'a> {
    let Some(record) = record_at(records, id) else {
        return Entry::default();
    };
    let text = |i: usize| {
        name_bytes(strings, record, i)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    };
    let rank = u32_at(record, 16);
    Entry {
        display: text(DISPLAY),
        key: text(KEY),
        form: text(FORM),
        rank: (rank != 0).then_some(rank),
    }
}

/// A multimap from a 64-bit hash to entry ids: the pairs grouped by the hash's top `bits`
/// bits, plus where each group starts, so that a probe is two reads and a short scan.
/// A pair keeps the hash's low 32 bits: with the bucket bits that tells hashes apart to one
/// in 2^44 or better, and every hit on a name is verified against the name anyway; only a
/// word collision could make one coined word look known.
#[derive(Debug, Clone)]
pub(crate) struct HashMulti {
    bits: u32,
    /// `bucket count + 1` u32: `starts[b]` is the first pair of bucket `b`.
    starts: Bytes,
    /// (u64 hash, u32 id) pairs.
    pairs: Bytes,
}

impl HashMulti {
    /// Groups `pairs` by bucket with one counting pass and one scatter (no comparison
    /// sort). Order within a bucket is input order, so the same input gives the same bytes.
    fn from_pairs(pairs: &[(u64, u32)]) -> HashMulti {
        // Four to eight pairs per bucket: one cache line to scan, a small start table.
        let bits = (usize::BITS - pairs.len().leading_zeros())
            .saturating_sub(2)
            .clamp(1, 24);
        let bucket = |hash: u64| (hash >> (64 - bits)) as usize;
        let mut starts = vec![0u32; (1 << bits) + 1];
        for &(hash, _) in pairs {
            starts[bucket(hash) + 1] += 1;
        }
        for b in 1..starts.len() {
            starts[b] += starts[b - 1];
        }
        let mut next = starts.clone();
        let mut grouped = vec![0u8; pairs.len() * PAIR];
        for &(hash, id) in pairs {
            let slot = &mut next[bucket(hash)];
            let at = *slot as usize * PAIR;
            grouped[at..at + 4].copy_from_slice(&(hash as u32).to_le_bytes());
            grouped[at + 4..at + PAIR].copy_from_slice(&id.to_le_bytes());
            *slot += 1;
        }
        HashMulti {
            bits,
            starts: Cow::Owned(starts.iter().flat_map(|s| s.to_le_bytes()).collect()),
            pairs: Cow::Owned(grouped),
        }
    }

    pub(crate) fn get(&self, hash: u64) -> impl Iterator<Item = u32> + '_ {
        let b = (hash >> (64 - self.bits)) as usize;
        let (start, end) = (u32_at(&self.starts, 4 * b), u32_at(&self.starts, 4 * b + 4));
        let low = hash as u32;
        self.pairs
            .get(start as usize * PAIR..end as usize * PAIR)
            .unwrap_or_default()
            .chunks_exact(PAIR)
            .filter(move |pair| u32_at(pair, 0) == low)
            .map(|pair| u32_at(pair, 4))
    }

    fn contains(&self, hash: u64) -> bool {
        self.get(hash).next().is_some()
    }
}

/// The popular names of one ecosystem and the tables near-miss lookups probe.
#[derive(Debug, Clone)]
pub(crate) struct EcoIndex {
    entries: EntryTable,
    /// Hash of each form.
    pub exact: HashMulti,
    /// Hashes of each form with one character deleted (symmetric-deletion index).
    pub deletions: HashMulti,
    pub separators: HashMulti,
    pub glyphs: HashMulti,
    /// Hashes of every word of every popular name (ids unused): a look-alike made only of
    /// known words (`django-filer`, `git-python`) is usually a real project, a typo makes a
    /// new word.
    vocabulary: HashMulti,
    /// How many ranked names the list had, so that names added later rank after them.
    ranked_len: u32,
}

impl Default for EcoIndex {
    fn default() -> Self {
        EcoBuilder::default().finish()
    }
}

impl EcoIndex {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn entry(&self, id: u32) -> Entry<'_> {
        self.entries.get(id)
    }

    /// Whether entry `id`'s key is `key` (what `entry(id).key == key` says for a
    /// non-empty `key`, without checking the entry's names as UTF-8).
    pub(crate) fn key_is(&self, id: u32, key: &str) -> bool {
        self.entries.name_is(id, KEY, key)
    }

    /// The entry whose form is exactly `form`.
    pub(crate) fn id_of_form(&self, form: &str) -> Option<u32> {
        self.exact
            .get(forms::hash(form.as_bytes()))
            .find(|&id| self.entries.form_is(id, form))
    }

    /// Whether `word` is a word of some popular name.
    pub(crate) fn knows_word(&self, word: &str) -> bool {
        self.vocabulary.contains(forms::hash(word.as_bytes()))
    }

    /// The index as a `feeds/popular/*.idx` file.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&self.ranked_len.to_le_bytes());
        let mut section = |bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        };
        section(&self.entries.records);
        section(&self.entries.strings);
        for table in self.tables() {
            section(&table.bits.to_le_bytes());
            section(&table.starts);
            section(&table.pairs);
        }
        out
    }

    /// An index read in place from a `feeds/popular/*.idx` file compiled into the binary.
    pub(crate) fn from_static(bytes: &'static [u8]) -> Result<EcoIndex, String> {
        let mut reader = Reader {
            rest: bytes
                .strip_prefix(MAGIC.as_slice())
                .ok_or("not a depfw popular-name index of this version")?,
        };
        let ranked_len = u32_at(reader.take(4)?, 0);
        let records = reader.section()?;
        if records.len() % RECORD != 0 {
            return Err("entry records are cut short".to_owned());
        }
        let strings = reader.section()?;
        let mut table = || -> Result<HashMulti, String> {
            let bits = u32_at(reader.section()?, 0);
            let (starts, pairs) = (reader.section()?, reader.section()?);
            if !(1..=24).contains(&bits)
                || starts.len() != ((1usize << bits) + 1) * 4
                || pairs.len() % PAIR != 0
            {
                return Err("a hash table has the wrong size".to_owned());
            }
            Ok(HashMulti {
                bits,
                starts: Cow::Borrowed(starts),
                pairs: Cow::Borrowed(pairs),
            })
        };
        let index = EcoIndex {
            entries: EntryTable {
                records: Cow::Borrowed(records),
                strings: Cow::Borrowed(strings),
            },
            exact: table()?,
            deletions: table()?,
            separators: table()?,
            glyphs: table()?,
            vocabulary: table()?,
            ranked_len,
        };
        if !reader.rest.is_empty() {
            return Err("trailing bytes".to_owned());
        }
        Ok(index)
    }

    fn tables(&self) -> [&HashMulti; 5] {
        [
            &self.exact,
            &self.deletions,
            &self.separators,
            &self.glyphs,
            &self.vocabulary,
        ]
    }
}

/// Length-prefixed sections of a static file.
struct Reader {
    rest: &'static [u8],
}

impl Reader {
    fn take(&mut self, n: usize) -> Result<&'static [u8], String> {
        if self.rest.len() < n {
            return Err("cut short".to_owned());
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn section(&mut self) -> Result<&'static [u8], String> {
        let len = usize::try_from(u64_at(self.take(8)?, 0)).map_err(|_| "section too large")?;
        self.take(len)
    }
}

/// Collects names, then lays them out as an [`EcoIndex`].
#[derive(Debug, Default)]
pub(crate) struct EcoBuilder {
    records: Vec<u8>,
    strings: String,
    exact: Vec<(u64, u32)>,
    deletions: Vec<(u64, u32)>,
    separators: Vec<(u64, u32)>,
    glyphs: Vec<(u64, u32)>,
    vocabulary: FxHashSet<u64>,
    /// Form hash -> first entry with it, to drop names whose form is already in.
    inserted: FxHashMap<u64, u32>,
    ranked_len: u32,
}

impl EcoBuilder {
    /// A builder holding every entry of `index`, to add names to it.
    pub(super) fn from_index(index: &EcoIndex) -> EcoBuilder {
        let mut builder = EcoBuilder::default();
        for id in 0..index.len() as u32 {
            let entry = index.entry(id);
            builder.push(entry, forms::hash(entry.form.as_bytes()));
        }
        builder.ranked_len = index.ranked_len;
        builder
    }

    /// Room for `names` more names of `bytes` bytes in all: growing the ~250k-pair
    /// deletion table by doubling would copy it and fault in its pages twice over.
    pub(super) fn reserve(&mut self, names: usize, bytes: usize) {
        self.records.reserve(names * RECORD);
        self.strings.reserve(3 * bytes);
        self.inserted.reserve(names);
        self.vocabulary.reserve(names);
        self.exact.reserve(names);
        self.separators.reserve(names);
        self.glyphs.reserve(names);
        self.deletions.reserve(bytes);
    }

    /// Adds a name unless one with the same form is in already; ranked names take the
    /// next rank.
    pub(super) fn insert(&mut self, display: &str, key: &str, form: &str, ranked: bool) {
        let form_hash = forms::hash(form.as_bytes());
        if let Some(&first) = self.inserted.get(&form_hash) {
            if entry_at(&self.records, self.strings.as_bytes(), first).form == form {
                return;
            }
        }
        let rank = ranked.then(|| {
            self.ranked_len += 1;
            self.ranked_len
        });
        let entry = Entry {
            display,
            key,
            form,
            rank,
        };
        self.push(entry, form_hash);
    }

    fn push(&mut self, entry: Entry<'_>, form_hash: u64) {
        let id = (self.records.len() / RECORD) as u32;
        self.inserted.entry(form_hash).or_insert(id);
        self.exact.push((form_hash, id));
        self.deletions.extend(
            forms::deletion_hashes(entry.form)
                .into_iter()
                .map(|h| (h, id)),
        );
        self.separators
            .push((forms::separator_skeleton_hash(entry.form), id));
        self.glyphs.push((
            forms::hash(forms::glyph_skeleton(entry.form).as_bytes()),
            id,
        ));
        self.vocabulary
            .extend(forms::tokens(entry.form).map(|t| forms::hash(t.as_bytes())));
        let mut offset = |text: &str| {
            // Lists are megabytes at most: offsets fit in u32.
            let start = self.strings.len() as u32;
            self.strings.push_str(text);
            start
        };
        let starts = [
            offset(entry.display),
            offset(entry.key),
            offset(entry.form),
            self.strings.len() as u32,
            entry.rank.unwrap_or(0),
        ];
        self.records
            .extend(starts.iter().flat_map(|v| v.to_le_bytes()));
    }

    pub(super) fn finish(self) -> EcoIndex {
        // Sorted so that the same names give the same bytes whatever the set's order.
        let mut words: Vec<u64> = self.vocabulary.into_iter().collect();
        words.sort_unstable();
        let words: Vec<(u64, u32)> = words.into_iter().map(|w| (w, 0)).collect();
        EcoIndex {
            entries: EntryTable {
                records: Cow::Owned(self.records),
                strings: Cow::Owned(self.strings.into_bytes()),
            },
            exact: HashMulti::from_pairs(&self.exact),
            deletions: HashMulti::from_pairs(&self.deletions),
            separators: HashMulti::from_pairs(&self.separators),
            glyphs: HashMulti::from_pairs(&self.glyphs),
            vocabulary: HashMulti::from_pairs(&words),
            ranked_len: self.ranked_len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_multimap_finds_every_value_and_nothing_else() {
        let empty = HashMulti::from_pairs(&[]);
        assert_eq!(empty.get(7).count(), 0);
        let pairs = [(u64::MAX, 1), (0, 2), (1 << 63, 3), (1 << 63, 4), (42, 5)];
        let map = HashMulti::from_pairs(&pairs);
        assert_eq!(map.get(1 << 63).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(map.get(u64::MAX).collect::<Vec<_>>(), [1]);
        assert_eq!(map.get(0).collect::<Vec<_>>(), [2]);
        assert_eq!(map.get(43).count(), 0);
    }

    fn sample() -> EcoIndex {
        let mut builder = EcoBuilder::default();
        builder.insert("Flask", "flask", "flask", true);
        builder.insert("requests", "requests", "requests", true);
        builder.insert("flask", "flask", "flask", true);
        builder.insert("my-tool", "my-tool", "my-tool", false);
        builder.finish()
    }

    #[test]
    fn entries_keep_their_strings_and_ranks_and_duplicates_are_dropped() {
        let index = sample();
        assert_eq!(index.len(), 3);
        let flask = index.entry(index.id_of_form("flask").unwrap());
        assert_eq!(
            (flask.display, flask.key, flask.rank),
            ("Flask", "flask", Some(1))
        );
        assert_eq!(index.entry(1).rank, Some(2));
        assert_eq!(index.entry(2).rank, None);
        assert!(index.knows_word("tool") && !index.knows_word("tol"));
        assert_eq!(index.entry(99).form, "");
    }

    #[test]
    fn a_written_index_reads_back_identically_and_damage_is_an_error() {
        let index = sample();
        let bytes: &'static [u8] = Vec::leak(index.to_bytes());
        let read = EcoIndex::from_static(bytes).unwrap();
        assert_eq!(read.to_bytes(), bytes);
        assert_eq!(read.id_of_form("requests"), Some(1));
        assert!(EcoIndex::from_static(&bytes[..bytes.len() - 1]).is_err());
        assert!(EcoIndex::from_static(b"depfw-popular-0\n").is_err());
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(EcoIndex::from_static(Vec::leak(longer)).is_err());
    }

    /// The names are checked as UTF-8 when read, not when the index is opened: a damaged
    /// name reads as empty and matches nothing; the other names are unaffected.
    #[test]
    fn a_name_that_is_not_utf8_reads_as_empty() {
        let mut bytes = sample().to_bytes();
        // The strings section starts with "Flask": its first byte made invalid UTF-8.
        let at = bytes.windows(5).position(|w| w == b"Flask").unwrap();
        bytes[at] = 0xff;
        let read = EcoIndex::from_static(Vec::leak(bytes)).unwrap();
        let flask = read.entry(read.id_of_form("flask").unwrap());
        assert_eq!((flask.display, flask.key), ("", "flask"));
        assert_eq!(read.id_of_form("requests"), Some(1));
        assert_eq!(read.id_of_form(""), None);
    }

    #[test]
    fn names_added_to_a_read_index_rank_after_its_list() {
        let mut builder = EcoBuilder::from_index(&sample());
        builder.insert("django", "django", "django", true);
        let index = builder.finish();
        assert_eq!(
            index.entry(index.id_of_form("django").unwrap()).rank,
            Some(3)
        );
        assert_eq!(index.id_of_form("my-tool"), Some(2));
    }
}
