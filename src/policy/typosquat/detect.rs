//! The rules that turn "close to a popular name" into a strong or a weak resemblance.
//!
//! `depfw serve`, `audit` and `check` ask them about every name (see the parent module for
//! what each strength means). Legitimate projects crowd around popular names (`grequests`,
//! `django-filer`, `types-boto3-sts`), so being one edit away is not enough to hold a name
//! on its own: the strong rules were tuned on malicious records published before
//! 2024-10-01 to keep false positives on legitimate names at or under 0.1%, and measured on
//! the later ones (`integration/real_data/typosquat.rs`). What separates a typo from a
//! neighbour:
//! - the kind of edit: swapped, doubled and dropped inner letters are slips of the hand
//!   (strong); a new first letter of a word, a changed last letter, a substitution, an
//!   appended digit or an added generic word is how families are named as often (weak);
//! - the words: a typo makes a word no popular name uses (`dateitil`), a neighbour is built
//!   from known words (`django-filer`, `git-python`); words of three letters or fewer are
//!   acronyms, not words to misspell (`client-drs`);
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

use super::table::{EcoIndex, Entry};
use crate::package::{Ecosystem, PackageName};

use super::forms;
use super::{Strength, Suspect, Technique};

/// Below this length (separators not counted) almost every name is one edit from a popular one.
const MIN_EDIT_LEN: usize = 4;
/// 4-character names: only a dropped or swapped letter of a top package.
const SHORT_TARGET_RANK: u32 = 50;
/// From this length on, a slip of the hand on any popular name is suspect.
const LONG_LEN: usize = 7;
/// Slips in 5- and 6-character names need a target this popular.
const MEDIUM_TARGET_RANK: u32 = 1_000;
/// Weak edits (a new last letter or digit, a substitution, an inserted vowel) are how real
/// neighbours are named as often as squats (`semiver`, `hyper`/`typer`): weak evidence,
/// for targets up to this rank and names of at least `WEAK_MIN_LEN` letters (5 letters
/// for targets up to `MEDIUM_TARGET_RANK`). Slips of the hand too short or on too
/// obscure a target to be strong are weak evidence whatever the rank.
const WEAK_TARGET_RANK: u32 = 5_000;
const WEAK_MIN_LEN: usize = 6;
/// A dropped plural `s` (`typing-extension`) only for long names of top packages.
const PLURAL_TARGET_RANK: u32 = 100;
const PLURAL_MIN_LEN: usize = 8;
/// Skeletons (separators or look-alikes folded) shorter than this are too generic.
const MIN_SKELETON_LEN: usize = 5;
/// Separator-only variants (PyPI) and look-alikes of ranked lists need a target this
/// popular to be strong evidence, and this one to be weak evidence.
const SKELETON_TARGET_RANK: u32 = 1_000;
const WEAK_SKELETON_TARGET_RANK: u32 = 10_000;
/// A popular name plus a word (`lodash-node`, `chai-sdk`, `python-uvicorn`) is how
/// squatters name things and how real ports and plugins are named: weak evidence, for
/// targets up to this rank, whose stem has at least `MIN_AFFIX_STEM_LEN` letters (`d3.js`).
const AFFIX_TARGET_RANK: u32 = 5_000;
const MIN_AFFIX_STEM_LEN: usize = 2;
/// A word glued on without a separator (`requestssdk`) only to stems this long: shorter
/// ones glue into ordinary words.
const MIN_GLUED_STEM_LEN: usize = 6;
/// A generic word that is itself a popular name of this rank or better names a project:
/// `awkward-pandas`, `prefect-redis` are bindings to it, the way real families are named.
const BINDING_RANK: u32 = 5_000;

pub(crate) fn suspect(eco: &EcoIndex, name: &PackageName) -> Option<Suspect> {
    let ecosystem = name.ecosystem();
    let form = forms::form(ecosystem, name.key());
    let len = forms::separator_skeleton(&form).len();
    let mut best: Option<(u32, Technique, Strength)> = None;
    let mut consider = |id: u32, technique: Technique, strength: Strength| {
        let order = |(id, t, s): (u32, Technique, Strength)| {
            let rank = eco.entry(id).rank.unwrap_or(u32::MAX);
            (s, rank, t.priority())
        };
        if best.is_none_or(|b| order((id, technique, strength)) < order(b)) {
            best = Some((id, technique, strength));
        }
    };

    // Case only (npm keeps legacy upper-case names distinct).
    if let Some(id) = eco.id_of_form(&form) {
        consider(id, Technique::Case, Strength::Strong);
    }
    // A capital I for an l (`jeIlyfish`): PyPI and crates.io fold case, so the lower-cased
    // form alone no longer shows it.
    if let Some(id) = capital_i_for_l(eco, name, &form) {
        consider(id, Technique::Homoglyph, Strength::Strong);
    }

    if len >= MIN_SKELETON_LEN {
        skeleton_matches(eco, ecosystem, &form, &mut consider);
    }

    for id in one_edit_candidates(eco, &form) {
        let target = eco.entry(id);
        if let Some(edit) = Edit::between(&form, target.form) {
            // A dropped plural `s` leaves a known word by nature.
            if let Some(strength) = edit.suspicion(len, &target) {
                // Weak evidence needs a young package anyway: known words do not clear it.
                if strength == Strength::Weak
                    || edit.plural
                    || coins_a_word(eco, &form, target.form)
                {
                    consider(id, edit.technique, strength);
                } else if let Some(Strength::Weak) =
                    edit.without_sound_alikes().suspicion(len, &target)
                {
                    // A sound-alike spelling that makes a known word (`colour`) is what it
                    // was without those rules: weak evidence.
                    consider(id, edit.technique, Strength::Weak);
                }
            }
        }
    }

    for split in forms::affix_splits(ecosystem, &form) {
        let glued = split.separator.is_none();
        let min_len = if glued {
            MIN_GLUED_STEM_LEN
        } else {
            MIN_AFFIX_STEM_LEN
        };
        if forms::separator_skeleton(split.stem).len() < min_len {
            continue;
        }
        let names_a_project = eco
            .id_of_form(split.word)
            .is_some_and(|id| ranks_within(&eco.entry(id), BINDING_RANK));
        if names_a_project && !forms::markers(ecosystem).contains(&split.word) {
            continue;
        }
        // The popular name itself with the word added, or with another of the
        // ecosystem's markers swapped for it (`python3-dateutil`, `python-dateutil`).
        let swapped = split.swaps(ecosystem);
        for stem in std::iter::once(split.stem.to_owned()).chain(swapped) {
            if let Some(id) = eco.id_of_form(&stem) {
                if eco.entry(id).rank.is_none_or(|r| r <= AFFIX_TARGET_RANK) {
                    let strength = if split.names_the_project(ecosystem, &stem) {
                        Strength::Moderate
                    } else {
                        Strength::Weak
                    };
                    consider(id, Technique::Affix(split.word), strength);
                }
            }
        }
    }

    best.map(|(id, technique, strength)| {
        let target = eco.entry(id);
        Suspect {
            target: target.display.to_string(),
            rank: target.rank,
            technique,
            strength,
        }
    })
}

/// The popular entry `name` spells with a capital `I` in place of an `l`, if any.
fn capital_i_for_l(eco: &EcoIndex, name: &PackageName, form: &str) -> Option<u32> {
    let raw = name.as_str();
    if !raw.contains('I') {
        return None;
    }
    let with_l = PackageName::parse(name.ecosystem(), &raw.replace('I', "l")).ok()?;
    let folded = forms::form(name.ecosystem(), with_l.key());
    if folded == form {
        return None;
    }
    eco.id_of_form(&folded)
}

/// Same letters up to separators or look-alike characters.
fn skeleton_matches(
    eco: &EcoIndex,
    ecosystem: Ecosystem,
    form: &str,
    consider: &mut impl FnMut(u32, Technique, Strength),
) {
    let separators = forms::separator_skeleton(form);
    for id in eco.separators.get(forms::hash(separators.as_bytes())) {
        let target = eco.entry(id);
        if target.form == form || forms::separator_skeleton(target.form) != separators {
            continue;
        }
        let (technique, strength) = match ecosystem {
            // The npm registry refuses new names that differ from existing ones only in
            // punctuation, so such a name (`crossenv`, `@types/babel-core`) predates the
            // rule: a warning at most. What it lets through is a scope boundary moved
            // between two scopes.
            Ecosystem::Npm if moves_the_scope(form, target.form) => {
                (Technique::Scope, Strength::Strong)
            }
            // Every separator dropped or added (`crossenv`, `babelcli`, `nodesass`: the
            // 2017 squats of `cross-env`, `babel-cli`, `node-sass`) is the classic npm
            // squat; a separator swapped for another (`@types/babel-core`) is how legacy
            // names were spelled.
            Ecosystem::Npm if glued_or_split(form, target.form) => {
                (Technique::Separator, Strength::Moderate)
            }
            Ecosystem::Npm => (Technique::Separator, Strength::Weak),
            Ecosystem::PyPI | Ecosystem::CratesIo => (Technique::Separator, Strength::Strong),
        };
        let strength = if strength == Strength::Moderate {
            // npm ranks by downloads, where the squatted names of 2017 have fallen
            // (`node-sass`, rank 5,887): the wider range holds for them.
            ranks_within(&target, WEAK_SKELETON_TARGET_RANK).then_some(Strength::Moderate)
        } else {
            skeleton_strength(&target, strength)
        };
        if let Some(strength) = strength {
            if coins_a_word(eco, form, target.form) {
                consider(id, technique, strength);
            }
        }
    }
    let glyphs = forms::glyph_skeleton(form);
    for id in eco.glyphs.get(forms::hash(glyphs.as_bytes())) {
        let target = eco.entry(id);
        if forms::glyph_skeleton(target.form) == glyphs
            && forms::separator_skeleton(target.form) != separators
            && coins_a_word(eco, form, target.form)
        {
            if let Some(strength) = skeleton_strength(&target, Strength::Strong) {
                consider(id, Technique::Homoglyph, strength);
            }
        }
    }
}

/// Whether one of two names with the same letters has no separator at all (after an npm
/// scope's `@`) and the other has some: the words glued together or split apart.
fn glued_or_split(form: &str, target: &str) -> bool {
    let separators = |f: &str| {
        f.trim_start_matches('@')
            .chars()
            .filter(|c| forms::WORD_BREAKS.contains(c))
            .count()
    };
    (separators(form) == 0) != (separators(target) == 0)
}

/// Whether two npm names with the same letters put them under different scopes
/// (`@typescript/eslint-parser` vs `@typescript-eslint/parser`); `@types/babel-core` and
/// `@types/babel__core` share theirs.
fn moves_the_scope(form: &str, target: &str) -> bool {
    fn scope(form: &str) -> Option<&str> {
        form.strip_prefix('@')?.split('/').next()
    }
    matches!((scope(form), scope(target)), (Some(a), Some(b)) if a != b)
}

/// Ranked lists: the target must be near the top for `strength`, and within the wider
/// weak range otherwise. Unranked lists (crates.io, configured names) have no rank to go
/// by, and are the smaller risk.
fn skeleton_strength(target: &Entry<'_>, strength: Strength) -> Option<Strength> {
    match target.rank {
        None => Some(strength),
        Some(r) if r <= SKELETON_TARGET_RANK => Some(strength),
        Some(r) if r <= WEAK_SKELETON_TARGET_RANK => Some(Strength::Weak),
        Some(_) => None,
    }
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
    /// A letter added or dropped in front of a word inside the name (`int32` for
    /// `uint32`): how families are named, like a new first letter.
    word_start: bool,
    /// The added or dropped letter doubles or undoubles its neighbour (`debuug`).
    doubled: bool,
    /// The added letter sits next to its neighbour on the keyboard (`aiopbotocore`).
    adjacent_key: bool,
    /// A letter replaced by a digit or the reverse (`9args`).
    digit_for_letter: bool,
    /// A dropped trailing `s` (`typing-extension`).
    plural: bool,
    /// A vowel added next to a vowel inside a word (`loadash`, `colourama`): a sound-alike
    /// spelling (British `colour`) or a slip, rare in real names.
    vowel_pair: bool,
    /// A vowel replaced by another (`djanga`): the name misheard.
    vowel_swap: bool,
    /// A vowel replaced by its neighbour vowel, doubling it (`aiihttp`, `aoohttp`); not a
    /// consonant (`ncclient` is not `nbclient`).
    doubling_substitution: bool,
    /// A digit appended to a name that ends in a letter (`fdir1`): a version number for a
    /// family (`vue2`/`vue3`), so weak evidence only.
    appended_digit: bool,
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
        // Version digits (`vue2`/`vue3`, `boto`/`boto3`) are how real families are named,
        // except a digit appended to a name without one; separator changes are judged by
        // the skeleton rules.
        let digits = differing.iter().all(u8::is_ascii_digit);
        let appended_digit = digits
            && c.len() == t.len() + 1
            && c.starts_with(t)
            && t.last().is_some_and(u8::is_ascii_alphabetic);
        if (digits && !appended_digit) || differing.iter().any(|b| !b.is_ascii_alphanumeric()) {
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
            word_start: length_changed
                && at > 0
                && forms::WORD_BREAKS.contains(&char::from(longer[at - 1])),
            doubled: length_changed && neighbours().any(|n| n == changed),
            adjacent_key: extra && neighbours().any(|n| keyboard_adjacent(n, changed)),
            digit_for_letter: technique == Technique::Substitution
                && c[at].is_ascii_digit() != t[at].is_ascii_digit()
                && c[at].is_ascii_alphanumeric()
                && t[at].is_ascii_alphanumeric(),
            plural: !extra && length_changed && last && changed == b's',
            vowel_pair: extra && is_vowel(changed) && neighbours().any(is_vowel),
            vowel_swap: technique == Technique::Substitution
                && c.get(at).copied().is_some_and(is_vowel)
                && t.get(at).copied().is_some_and(is_vowel),
            doubling_substitution: technique == Technique::Substitution
                && c.get(at).copied().is_some_and(is_vowel)
                && t.get(at).copied().is_some_and(is_vowel)
                && [at.checked_sub(1), Some(at + 1)]
                    .into_iter()
                    .flatten()
                    .any(|i| c.get(i).is_some() && c.get(i) == c.get(at)),
            appended_digit,
            in_short_word: in_short_word(target, at),
        })
    }

    /// The same edit judged without the vowel rules (`vowel_pair`, `vowel_swap`,
    /// `doubling_substitution`).
    fn without_sound_alikes(self) -> Edit {
        Edit {
            vowel_pair: false,
            vowel_swap: false,
            doubling_substitution: false,
            ..self
        }
    }

    /// Slips of the hand, rare among real project names.
    fn is_strong(&self) -> bool {
        match self.technique {
            Technique::Transposition => true,
            Technique::ExtraLetter => {
                !self.first
                    && !self.word_start
                    && (self.doubled || (self.adjacent_key && !self.last))
            }
            Technique::MissingLetter => {
                self.doubled || (!self.first && !self.last && !self.word_start)
            }
            Technique::Substitution => {
                !self.first && !self.last && (self.digit_for_letter || self.doubling_substitution)
            }
            _ => false,
        }
    }

    /// How suspect the edit makes a name; `len`: the candidate's length without separators.
    fn suspicion(&self, len: usize, target: &Entry) -> Option<Strength> {
        if self.in_short_word {
            return None;
        }
        if self.appended_digit {
            let weak = len >= WEAK_MIN_LEN && ranks_within(target, MEDIUM_TARGET_RANK);
            return weak.then_some(Strength::Weak);
        }
        if self.plural && len >= PLURAL_MIN_LEN && ranks_within(target, PLURAL_TARGET_RANK) {
            return Some(Strength::Strong);
        }
        if len < MIN_EDIT_LEN {
            return None;
        }
        if len == MIN_EDIT_LEN {
            let slip = self.technique == Technique::Transposition
                || (self.technique == Technique::MissingLetter && !self.first);
            return (slip && ranks_within(target, SHORT_TARGET_RANK)).then_some(Strength::Strong);
        }
        let inside = !self.first && !self.last && !self.word_start;
        if self.vowel_pair && inside && ranks_within(target, MEDIUM_TARGET_RANK) {
            return Some(Strength::Strong);
        }
        if self.is_strong() {
            let strong = len >= LONG_LEN || ranks_within(target, MEDIUM_TARGET_RANK);
            return Some(if strong {
                Strength::Strong
            } else {
                Strength::Weak
            });
        }
        // `djanga`: a last vowel misheard, on a top name; real names do it too (`kombo`,
        // `djongo`), so not a slip, but more than a neighbour.
        if self.vowel_swap
            && self.last
            && len >= WEAK_MIN_LEN
            && ranks_within(target, MEDIUM_TARGET_RANK)
        {
            return Some(Strength::Moderate);
        }
        let new_first_letter =
            self.technique == Technique::ExtraLetter && (self.first || self.word_start);
        let long_enough = len >= WEAK_MIN_LEN
            || (len + 1 == WEAK_MIN_LEN && ranks_within(target, MEDIUM_TARGET_RANK));
        let weak = long_enough && !new_first_letter && ranks_within(target, WEAK_TARGET_RANK);
        weak.then_some(Strength::Weak)
    }
}

/// Whether byte `at` of `name` lies in a word of at most three characters: an acronym or a
/// code (`client-drs` and `client-rds` are two AWS services), not a word to misspell.
fn in_short_word(name: &str, at: usize) -> bool {
    let mut start = 0;
    for word in name.split(forms::WORD_BREAKS) {
        let end = start + word.len();
        if (start..=end).contains(&at) && !word.is_empty() {
            return word.len() <= 3;
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

fn is_vowel(b: u8) -> bool {
    matches!(b, b'a' | b'e' | b'i' | b'o' | b'u')
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
