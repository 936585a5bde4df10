//! The rules that turn "close to a popular name" into "suspect", tuned on real lists so that
//! legitimate packages rarely trip them (see `tests/typosquat_real_data.rs`).
//!
//! Every lookup is a handful of probes into the precomputed `EcoIndex` maps; each hit is then
//! verified on the real strings, so hash collisions cost time, never correctness.

use crate::feeds::popular::{EcoIndex, Entry};
use crate::package::{Ecosystem, PackageName};

use super::forms;
use super::{Suspect, Technique};

/// Below this length almost every name is one edit from some popular name.
const MIN_EDIT_LEN: usize = 4;
/// 4-character names are flagged only for a missing or swapped letter of a top package.
const SHORT_TARGET_RANK: u32 = 100;
/// 5- and 6-character names are flagged only against targets this popular.
const MEDIUM_TARGET_RANK: u32 = 2_000;
/// From this length on, one edit from any popular name is suspect.
const LONG_LEN: usize = 7;
/// Skeletons (separators or look-alikes folded) shorter than this are too generic.
const MIN_SKELETON_LEN: usize = 5;
/// Affix, unscoped-copy and unknown-scope squats need a target this popular.
const AFFIX_TARGET_RANK: u32 = 2_000;

pub(crate) fn suspect(eco: &EcoIndex, name: &PackageName) -> Option<Suspect> {
    let ecosystem = name.ecosystem();
    let form = forms::form(ecosystem, name.key());
    let mut best: Option<(u32, Technique)> = None;
    let mut consider = |id: u32, technique: Technique| {
        let rank_key = |(id, t): (u32, Technique)| {
            let rank = eco.entries[id as usize].rank.unwrap_or(u32::MAX);
            (rank, t.priority())
        };
        if best.is_none_or(|b| rank_key((id, technique)) < rank_key(b)) {
            best = Some((id, technique));
        }
    };

    // Case only (npm keeps legacy upper-case names distinct).
    if let Some(&id) = eco.by_form.get(form.as_str()) {
        consider(id, Technique::Case);
    }

    let separators = forms::separator_skeleton(&form);
    if separators.len() >= MIN_SKELETON_LEN {
        for id in eco.separators.get(forms::hash(separators.as_bytes())) {
            let target = &eco.entries[id as usize];
            if *target.form != *form && forms::separator_skeleton(&target.form) == separators {
                let scoped = form.starts_with('@') || target.form.starts_with('@');
                consider(
                    id,
                    if scoped {
                        Technique::Scope
                    } else {
                        Technique::Separator
                    },
                );
            }
        }
        let glyphs = forms::glyph_skeleton(&form);
        for id in eco.glyphs.get(forms::hash(glyphs.as_bytes())) {
            let target = &eco.entries[id as usize];
            if forms::glyph_skeleton(&target.form) == glyphs
                && forms::separator_skeleton(&target.form) != separators
            {
                consider(id, Technique::Homoglyph);
            }
        }
    }

    for id in one_edit_candidates(eco, &form) {
        let target = &eco.entries[id as usize];
        if let Some(technique) = one_edit(&form, &target.form) {
            if edit_allowed(&form, technique, target) {
                consider(id, technique);
            }
        }
    }

    for (affix, stripped) in forms::affix_stripped(ecosystem, &form) {
        if stripped.len() < MIN_EDIT_LEN {
            continue;
        }
        if let Some(&id) = eco.by_form.get(stripped) {
            if ranks_within(&eco.entries[id as usize], AFFIX_TARGET_RANK) {
                consider(id, Technique::Affix(affix));
            }
        }
    }

    if ecosystem == Ecosystem::Npm {
        npm_scope_squats(eco, name, &form, &mut consider);
    }

    best.map(|(id, technique)| {
        let target = &eco.entries[id as usize];
        Suspect {
            target: target.display.to_string(),
            rank: target.rank,
            technique,
        }
    })
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

/// The technique if `candidate` is exactly one edit (Damerau-Levenshtein) from `target`.
fn one_edit(candidate: &str, target: &str) -> Option<Technique> {
    // OSA equals Damerau-Levenshtein at distance 1 and does not allocate a hash map.
    if strsim::osa_distance(candidate, target) != 1 {
        return None;
    }
    let (c, t) = (candidate.as_bytes(), target.as_bytes());
    let technique = match c.len().cmp(&t.len()) {
        std::cmp::Ordering::Less => Technique::MissingLetter,
        std::cmp::Ordering::Greater => Technique::ExtraLetter,
        std::cmp::Ordering::Equal => {
            let i = c.iter().zip(t).position(|(a, b)| a != b)?;
            if c.get(i + 1) == t.get(i) && c.get(i) == t.get(i + 1) && c[i] != c[i + 1] {
                Technique::Transposition
            } else {
                Technique::Substitution
            }
        }
    };
    // Version digits (`vue2`/`vue3`, `boto`/`boto3`) are how real families are named.
    let differing = diff_bytes(c, t);
    if !differing.is_empty() && differing.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(technique)
}

/// The bytes that differ between two strings one edit apart (the inserted, deleted or
/// substituted ones).
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

fn edit_allowed(form: &str, technique: Technique, target: &Entry) -> bool {
    let len = forms::separator_skeleton(form).len();
    match len {
        0..MIN_EDIT_LEN => false,
        MIN_EDIT_LEN => {
            matches!(
                technique,
                Technique::MissingLetter | Technique::Transposition
            ) && ranks_within(target, SHORT_TARGET_RANK)
        }
        _ if len < LONG_LEN => ranks_within(target, MEDIUM_TARGET_RANK),
        _ => true,
    }
}

fn ranks_within(target: &Entry, rank: u32) -> bool {
    target.rank.is_some_and(|r| r <= rank)
}

/// A popular unscoped name under a scope no popular package uses (`@evil/lodash`), and an
/// unscoped copy of a popular scoped name (`eslint-parser` is not, `babel-core` would be).
fn npm_scope_squats(
    eco: &EcoIndex,
    name: &PackageName,
    form: &str,
    consider: &mut impl FnMut(u32, Technique),
) {
    match (name.npm_scope(), form.split_once('/')) {
        (Some(scope), Some((_, bare))) => {
            if bare.len() < MIN_SKELETON_LEN || eco.scopes.contains(scope.to_ascii_lowercase().as_str())
            {
                return;
            }
            if let Some(&id) = eco.by_form.get(bare) {
                if ranks_within(&eco.entries[id as usize], AFFIX_TARGET_RANK) {
                    consider(id, Technique::UnknownScope);
                }
            }
        }
        _ => {
            if form.len() < LONG_LEN {
                return;
            }
            for id in eco.bare.get(forms::hash(form.as_bytes())) {
                let target = &eco.entries[id as usize];
                if target.form.split_once('/').is_some_and(|(_, b)| b == form)
                    && ranks_within(target, AFFIX_TARGET_RANK)
                {
                    consider(id, Technique::UnscopedCopy);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_edit_names_the_technique() {
        assert_eq!(one_edit("reqeusts", "requests"), Some(Technique::Transposition));
        assert_eq!(one_edit("chal", "chalk"), Some(Technique::MissingLetter));
        assert_eq!(one_edit("debuug", "debug"), Some(Technique::ExtraLetter));
        assert_eq!(one_edit("9args", "yargs"), Some(Technique::Substitution));
        assert_eq!(one_edit("reqests", "requests"), Some(Technique::MissingLetter));
        assert_eq!(one_edit("vue2", "vue3"), None);
        assert_eq!(one_edit("requets", "requests"), Some(Technique::MissingLetter));
        assert_eq!(one_edit("rqxeuests", "requests"), None);
    }
}
