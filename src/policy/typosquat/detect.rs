//! The rules that turn "close to a popular name" into "suspect".
//!
//! Legitimate projects crowd around popular names (`grequests`, `django-filer`,
//! `types-boto3-sts`), so being one edit away is not enough: the rules below were tuned on
//! the real lists and malicious records (see `tests/typosquat_real_data.rs`) to keep false
//! positives at or under 0.1%. What separates a typo from a neighbour:
//! - the kind of edit: swapped, doubled and dropped inner letters are slips of the hand;
//!   a new first letter, a changed last letter or a trailing digit is how families are named;
//! - the words: a typo makes a word no popular name uses (`dateitil`), a neighbour is built
//!   from known words (`django-filer`, `git-python`);
//! - the target: squatters aim at the top of the list, and short names are one edit from
//!   almost everything, so short names and weaker edits need a higher-ranked target.
//!
//! TODO: two npm scope tricks are not flagged by name alone: an unscoped copy of a popular
//! scoped name (`react-query` vs `@tanstack/react-query`) and a popular name under an
//! unknown scope (`@chakra-ui/react`) measured 5 and 81 false positives per 10,113 legitimate
//! npm names; they need registry metadata (package age, downloads) to be judged.
//! TODO: the crates.io list is unranked, so its false-positive rate is not measured.
//!
//! Every lookup is a handful of probes into the precomputed `EcoIndex` maps; each hit is then
//! verified on the real strings, so hash collisions cost time, never correctness.

use crate::feeds::popular::{EcoIndex, Entry};
use crate::package::{Ecosystem, PackageName};

use super::forms;
use super::{Suspect, Technique};

/// Below this length (separators not counted) almost every name is one edit from a popular one.
const MIN_EDIT_LEN: usize = 4;
/// 4-character names: only a dropped or swapped letter of a top package.
const SHORT_TARGET_RANK: u32 = 50;
/// From this length on, a strong edit of any popular name is suspect.
const LONG_LEN: usize = 7;
/// Strong edits of 5- and 6-character names need a target this popular.
const MEDIUM_TARGET_RANK: u32 = 1_000;
/// Weak edits (a new first or last letter, a substitution) only for the very top, the
/// packages with dozens of known squats each (`requests`, `urllib3`).
const WEAK_TARGET_RANK: u32 = 15;
const WEAK_MIN_LEN: usize = 6;
/// A dropped plural `s` (`typing-extension`) only for long names of top packages.
const PLURAL_TARGET_RANK: u32 = 100;
const PLURAL_MIN_LEN: usize = 8;
/// Skeletons (separators or look-alikes folded) shorter than this are too generic.
const MIN_SKELETON_LEN: usize = 5;
/// Separator-only variants (PyPI) and look-alikes of ranked lists need a target this popular.
const SKELETON_TARGET_RANK: u32 = 1_000;
/// Squatters append (`chalk-node`, `eslint-js`, `colorama-py`); prefixed names are mostly
/// real ports and bindings (`node-uuid`, `py-redis`), so prefixes need the very top.
const SUFFIX_TARGET_RANK: u32 = 200;
const PREFIX_TARGET_RANK: u32 = 20;

pub(crate) fn suspect(eco: &EcoIndex, name: &PackageName) -> Option<Suspect> {
    let ecosystem = name.ecosystem();
    let form = forms::form(ecosystem, name.key());
    let len = forms::separator_skeleton(&form).len();
    let mut best: Option<(u32, Technique)> = None;
    let mut consider = |id: u32, technique: Technique| {
        let order = |(id, t): (u32, Technique)| {
            let rank = eco.entry(id).rank.unwrap_or(u32::MAX);
            (rank, t.priority())
        };
        if best.is_none_or(|b| order((id, technique)) < order(b)) {
            best = Some((id, technique));
        }
    };

    // Case only (npm keeps legacy upper-case names distinct).
    if let Some(id) = eco.id_of_form(&form) {
        consider(id, Technique::Case);
    }

    if len >= MIN_SKELETON_LEN {
        skeleton_matches(eco, ecosystem, &form, &mut consider);
    }

    for id in one_edit_candidates(eco, &form) {
        let target = eco.entry(id);
        if let Some(edit) = Edit::between(&form, target.form) {
            // A dropped plural `s` leaves a known word by nature.
            if edit.is_suspect(len, &target)
                && (edit.plural || coins_a_word(eco, &form, target.form))
            {
                consider(id, edit.technique);
            }
        }
    }

    for (affix, stripped) in forms::affix_stripped(ecosystem, &form) {
        if stripped.len() < MIN_EDIT_LEN {
            continue;
        }
        let rank = if form.ends_with(affix) {
            SUFFIX_TARGET_RANK
        } else {
            PREFIX_TARGET_RANK
        };
        if let Some(id) = eco.id_of_form(stripped) {
            if ranks_within(&eco.entry(id), rank) {
                consider(id, Technique::Affix(affix));
            }
        }
    }

    best.map(|(id, technique)| {
        let target = eco.entry(id);
        Suspect {
            target: target.display.to_string(),
            rank: target.rank,
            technique,
        }
    })
}

/// Same letters up to separators or look-alike characters.
fn skeleton_matches(
    eco: &EcoIndex,
    ecosystem: Ecosystem,
    form: &str,
    consider: &mut impl FnMut(u32, Technique),
) {
    let separators = forms::separator_skeleton(form);
    let scoped = form.starts_with('@');
    for id in eco.separators.get(forms::hash(separators.as_bytes())) {
        let target = eco.entry(id);
        if target.form == form || forms::separator_skeleton(target.form) != separators {
            continue;
        }
        let technique = match ecosystem {
            // The npm registry refuses new names that differ from existing ones only in
            // punctuation; what it lets through is a scope boundary moved between scopes.
            Ecosystem::Npm if scoped && target.form.starts_with('@') => Technique::Scope,
            Ecosystem::Npm => continue,
            Ecosystem::PyPI | Ecosystem::CratesIo => Technique::Separator,
        };
        if skeleton_target_ok(&target) && coins_a_word(eco, form, target.form) {
            consider(id, technique);
        }
    }
    let glyphs = forms::glyph_skeleton(form);
    for id in eco.glyphs.get(forms::hash(glyphs.as_bytes())) {
        let target = eco.entry(id);
        if forms::glyph_skeleton(target.form) == glyphs
            && forms::separator_skeleton(target.form) != separators
            && skeleton_target_ok(&target)
            && coins_a_word(eco, form, target.form)
        {
            consider(id, Technique::Homoglyph);
        }
    }
}

/// Ranked lists: the target must be near the top. Unranked lists (crates.io, configured
/// names) have no rank to go by, and are the smaller risk.
fn skeleton_target_ok(target: &Entry<'_>) -> bool {
    target.rank.is_none_or(|r| r <= SKELETON_TARGET_RANK)
}

/// Whether `candidate` has a word that is neither in `target` nor in any popular name.
fn coins_a_word(eco: &EcoIndex, candidate: &str, target: &str) -> bool {
    let mut new_words = forms::tokens(candidate)
        .filter(|w| !forms::tokens(target).any(|t| t == *w))
        .peekable();
    // Only reordered words: nothing coined, but nothing known either; keep it suspect.
    if new_words.peek().is_none() {
        return true;
    }
    new_words.any(|w| !eco.knows_word(w))
}

/// Entries that may be one edit from `form`: those it is a deletion of, those that are a
/// deletion of it, and those sharing a deletion with it (substitutions, transpositions).
fn one_edit_candidates(eco: &EcoIndex, form: &str) -> Vec<u32> {
    let mut ids: Vec<u32> = eco.deletions.get(forms::hash(form.as_bytes())).collect();
    for h in forms::deletion_hashes(form) {
        ids.extend(eco.exact.get(h));
        ids.extend(eco.deletions.get(h));
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// One Damerau-Levenshtein edit turning a popular name into a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Edit {
    technique: Technique,
    /// The edit touches the first or the last character.
    first: bool,
    last: bool,
    /// The added or dropped letter doubles or undoubles its neighbour (`debuug`).
    doubled: bool,
    /// The added letter sits next to its neighbour on the keyboard (`aiopbotocore`).
    adjacent_key: bool,
    /// A letter replaced by a digit or the reverse (`9args`).
    digit_for_letter: bool,
    /// A dropped trailing `s` (`typing-extension`).
    plural: bool,
    /// The edit falls in a word of one or two letters (`django-q` vs `django-rq`): another
    /// word, not a typo.
    in_short_word: bool,
}

impl Edit {
    fn between(candidate: &str, target: &str) -> Option<Edit> {
        // OSA equals Damerau-Levenshtein at distance 1 and does not allocate a hash map.
        if strsim::osa_distance(candidate, target) != 1 {
            return None;
        }
        let (c, t) = (candidate.as_bytes(), target.as_bytes());
        let at = c.iter().zip(t).take_while(|(a, b)| a == b).count();
        let differing = diff_bytes(c, t);
        // Version digits (`vue2`/`vue3`, `boto`/`boto3`) are how real families are named;
        // separator changes are judged by the skeleton rules.
        if differing.iter().all(u8::is_ascii_digit)
            || differing.iter().any(|b| !b.is_ascii_alphanumeric())
        {
            return None;
        }
        let (technique, last) = match c.len().cmp(&t.len()) {
            std::cmp::Ordering::Less => (Technique::MissingLetter, at + 1 == t.len()),
            std::cmp::Ordering::Greater => (Technique::ExtraLetter, at + 1 == c.len()),
            std::cmp::Ordering::Equal => {
                let swapped = c.get(at + 1) == t.get(at) && c.get(at) == t.get(at + 1);
                let technique = if swapped {
                    Technique::Transposition
                } else {
                    Technique::Substitution
                };
                (technique, at + 1 == c.len())
            }
        };
        let (longer, extra) = if c.len() > t.len() {
            (c, true)
        } else {
            (t, false)
        };
        let neighbours = || {
            [at.checked_sub(1), Some(at + 1)]
                .into_iter()
                .flatten()
                .filter_map(|i| longer.get(i).copied())
        };
        let changed = longer.get(at).copied().unwrap_or_default();
        let length_changed = c.len() != t.len();
        Some(Edit {
            technique,
            // A doubled first letter (`aaiohttp`, also `cchardet`) stays a slip: the
            // malicious data has far more of them than the legitimate lists.
            first: at == 0,
            last,
            doubled: length_changed && neighbours().any(|n| n == changed),
            adjacent_key: extra && neighbours().any(|n| keyboard_adjacent(n, changed)),
            digit_for_letter: technique == Technique::Substitution
                && c[at].is_ascii_digit() != t[at].is_ascii_digit()
                && c[at].is_ascii_alphanumeric()
                && t[at].is_ascii_alphanumeric(),
            plural: !extra && length_changed && last && changed == b's',
            in_short_word: in_short_word(target, at),
        })
    }

    /// Slips of the hand, rare among real project names.
    fn is_strong(&self) -> bool {
        match self.technique {
            Technique::Transposition => true,
            Technique::ExtraLetter => {
                !self.first && (self.doubled || (self.adjacent_key && !self.last))
            }
            Technique::MissingLetter => self.doubled || (!self.first && !self.last),
            Technique::Substitution => self.digit_for_letter && !self.last,
            _ => false,
        }
    }

    /// `len`: the candidate's length without separators.
    fn is_suspect(&self, len: usize, target: &Entry) -> bool {
        if self.in_short_word {
            return false;
        }
        if self.plural {
            return len >= PLURAL_MIN_LEN && ranks_within(target, PLURAL_TARGET_RANK);
        }
        if len < MIN_EDIT_LEN {
            return false;
        }
        if len == MIN_EDIT_LEN {
            let slip = self.technique == Technique::Transposition
                || (self.technique == Technique::MissingLetter && !self.first);
            return slip && ranks_within(target, SHORT_TARGET_RANK);
        }
        if self.is_strong() {
            return len >= LONG_LEN || ranks_within(target, MEDIUM_TARGET_RANK);
        }
        let new_first_letter = self.technique == Technique::ExtraLetter && self.first;
        len >= WEAK_MIN_LEN && !new_first_letter && ranks_within(target, WEAK_TARGET_RANK)
    }
}

/// Whether byte `at` of `name` lies in a word of at most two characters.
fn in_short_word(name: &str, at: usize) -> bool {
    let mut start = 0;
    for word in name.split(forms::WORD_BREAKS) {
        let end = start + word.len();
        if (start..=end).contains(&at) && !word.is_empty() {
            return word.len() <= 2;
        }
        start = end + 1;
    }
    false
}

/// The bytes that differ between two strings one edit apart.
fn diff_bytes(c: &[u8], t: &[u8]) -> Vec<u8> {
    let prefix = c.iter().zip(t).take_while(|(a, b)| a == b).count();
    let suffix = c[prefix..]
        .iter()
        .rev()
        .zip(t[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = c[prefix..c.len() - suffix].to_vec();
    out.extend_from_slice(&t[prefix..t.len() - suffix]);
    out
}

/// QWERTY neighbours, diagonals included.
fn keyboard_adjacent(a: u8, b: u8) -> bool {
    const ROWS: [&[u8]; 4] = [b"1234567890", b"qwertyuiop", b"asdfghjkl", b"zxcvbnm"];
    let position = |k: u8| {
        ROWS.iter().enumerate().find_map(|(row, keys)| {
            let col = keys.iter().position(|&x| x == k)?;
            // Each row is shifted about half a key to the right of the one above.
            Some((row as f32, col as f32 + 0.5 * row as f32))
        })
    };
    match (position(a), position(b)) {
        (Some((r1, c1)), Some((r2, c2))) => {
            a != b && (r1 - r2).abs() <= 1.0 && (c1 - c2).abs() <= 1.0
        }
        _ => false,
    }
}

fn ranks_within(target: &Entry, rank: u32) -> bool {
    target.rank.is_some_and(|r| r <= rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn technique(c: &str, t: &str) -> Option<Technique> {
        Edit::between(c, t).map(|e| e.technique)
    }

    #[test]
    fn edits_name_the_technique() {
        assert_eq!(
            technique("reqeusts", "requests"),
            Some(Technique::Transposition)
        );
        assert_eq!(technique("chal", "chalk"), Some(Technique::MissingLetter));
        assert_eq!(technique("debuug", "debug"), Some(Technique::ExtraLetter));
        assert_eq!(technique("9args", "yargs"), Some(Technique::Substitution));
        assert_eq!(
            technique("requets", "requests"),
            Some(Technique::MissingLetter)
        );
        assert_eq!(technique("vue2", "vue3"), None);
        assert_eq!(technique("rqxeuests", "requests"), None);
    }

    #[test]
    fn edit_features_separate_slips_from_names() {
        let e = Edit::between("debuug", "debug").unwrap();
        assert!(e.doubled && e.is_strong());
        let e = Edit::between("aiopbotocore", "aiobotocore").unwrap();
        assert!(e.adjacent_key && e.is_strong());
        assert!(Edit::between("9args", "yargs").unwrap().digit_for_letter);
        assert!(
            Edit::between("typing-extension", "typing-extensions")
                .unwrap()
                .plural
        );
        assert!(
            Edit::between("django-q", "django-rq")
                .unwrap()
                .in_short_word
        );
        let e = Edit::between("grequests", "requests").unwrap();
        assert!(e.first && !e.is_strong());
        assert!(!Edit::between("hyper", "typer").unwrap().is_strong());
    }

    #[test]
    fn keyboard_neighbours() {
        assert!(keyboard_adjacent(b'p', b'o'));
        assert!(keyboard_adjacent(b't', b'f'));
        assert!(!keyboard_adjacent(b'h', b't'));
        assert!(!keyboard_adjacent(b'a', b'a'));
    }
}
