//! The comparison forms a name is reduced to before it is matched against popular names.
//!
//! Every form is plain ASCII (package names are validated before they get here), so the
//! functions work on bytes.

use std::hash::{DefaultHasher, Hasher};

use crate::package::Ecosystem;

/// The registry key, lower-cased: npm compares case-sensitively for legacy names, but a
/// case-only variant of a popular name is exactly what a squatter registers.
pub fn form(ecosystem: Ecosystem, key: &str) -> String {
    match ecosystem {
        Ecosystem::Npm => key.to_ascii_lowercase(),
        // PEP 503 and crates.io keys are already lower case.
        Ecosystem::PyPI | Ecosystem::CratesIo => key.to_owned(),
    }
}

/// Characters whose presence or absence people do not notice: word separators, and the
/// `@`/`/` of an npm scope (`@typescript/eslint-parser` vs `@typescript-eslint/parser`).
/// Not `.`: in npm it is a naming convention (`lodash.merge`, `chart.js`) whose near-twins
/// (`object-assign` and `object.assign`) are both real packages, and PyPI and crates.io
/// keys have no `.` left to compare.
fn is_separator(b: u8) -> bool {
    matches!(b, b'-' | b'_' | b'@' | b'/')
}

/// What separates the words of a name.
pub const WORD_BREAKS: [char; 5] = ['-', '_', '.', '@', '/'];

/// The words of a name, as split by its separators (`@types/node` -> `types`, `node`).
pub fn tokens(form: &str) -> impl Iterator<Item = &str> {
    form.split(WORD_BREAKS).filter(|t| !t.is_empty())
}

/// `form` without separators: equal skeletons mean "same letters, different punctuation".
pub fn separator_skeleton(form: &str) -> String {
    form.bytes()
        .filter(|b| !is_separator(*b))
        .map(char::from)
        .collect()
}

/// Character sequences that render alike in the fonts people read names in, mapped to one
/// representative. Longer sequences first. Not `cl`/`d`: it folds real names together
/// (`cliff`/`diff`).
const HOMOGLYPHS: &[(&str, &str)] = &[("rn", "m"), ("vv", "w"), ("0", "o"), ("1", "l")];

/// The separator skeleton with look-alike sequences folded (`rnicrornatch` -> `micromatch`).
pub fn glyph_skeleton(form: &str) -> String {
    let skeleton = separator_skeleton(form);
    let mut out = String::with_capacity(skeleton.len());
    let mut rest = skeleton.as_str();
    'outer: while !rest.is_empty() {
        for (from, to) in HOMOGLYPHS {
            if let Some(after) = rest.strip_prefix(from) {
                out.push_str(to);
                rest = after;
                continue 'outer;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// Prefixes and suffixes squatters add to a popular name (`lodash-js`, `python-requests`),
/// in comparison form. Bare `py`/`js` (no separator) are left out: too many real names
/// (`pyyaml`, `pytest`) start that way.
pub fn affixes(ecosystem: Ecosystem) -> (&'static [&'static str], &'static [&'static str]) {
    match ecosystem {
        Ecosystem::Npm => (
            &["node-", "nodejs-", "js-", "npm-"],
            &["-js", "-node", "-nodejs", "-lib", "-npm"],
        ),
        Ecosystem::PyPI => (
            &["python-", "python3-", "py-", "py3-"],
            &["-python", "-python3", "-py", "-py3", "-lib"],
        ),
        Ecosystem::CratesIo => (&["rust_", "rs_"], &["_rs", "_rust", "_lib"]),
    }
}

/// `form` with one known affix removed, for each affix it carries.
pub fn affix_stripped(ecosystem: Ecosystem, form: &str) -> Vec<(&'static str, &str)> {
    let (prefixes, suffixes) = affixes(ecosystem);
    let mut out = Vec::new();
    for p in prefixes {
        if let Some(rest) = form.strip_prefix(p) {
            out.push((*p, rest));
        }
    }
    for s in suffixes {
        if let Some(rest) = form.strip_suffix(s) {
            out.push((*s, rest));
        }
    }
    out
}

/// A fixed-key hash, so that the index built at one time matches lookups at another.
/// Collisions only cost a verification: every hit is checked against the real name.
pub fn hash(bytes: &[u8]) -> u64 {
    hash_parts(bytes, &[])
}

/// The hash of `a` followed by `b`, equal to `hash` of their concatenation (SipHash is
/// streaming), so deletions are hashed without building the string.
pub fn hash_parts(a: &[u8], b: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(a);
    h.write(b);
    h.finish()
}

/// The hashes of `form` with one byte deleted, for each position (duplicates removed:
/// `ll` -> `l` twice).
pub fn deletion_hashes(form: &str) -> Vec<u64> {
    let bytes = form.as_bytes();
    let mut out: Vec<u64> = (0..bytes.len())
        .map(|i| hash_parts(&bytes[..i], &bytes[i + 1..]))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_hashing_equals_whole_hashing() {
        assert_eq!(hash_parts(b"lod", b"ash"), hash(b"lodash"));
        assert!(deletion_hashes("lodash").contains(&hash(b"lodah")));
        assert_eq!(deletion_hashes("ll").len(), 1);
    }

    #[test]
    fn skeletons_fold_separators_and_look_alikes() {
        assert_eq!(
            separator_skeleton("@typescript-eslint/parser"),
            "typescripteslintparser"
        );
        assert_ne!(
            separator_skeleton("object.assign"),
            separator_skeleton("object-assign")
        );
        assert_eq!(
            tokens("@types/node.js").collect::<Vec<_>>(),
            ["types", "node", "js"]
        );
        assert_eq!(
            separator_skeleton("@typescript/eslint-parser"),
            separator_skeleton("@typescript-eslint/parser")
        );
        assert_eq!(glyph_skeleton("rnicrornatch"), glyph_skeleton("micromatch"));
        assert_eq!(glyph_skeleton("c0l0rs"), "colors");
        assert_ne!(glyph_skeleton("colors"), glyph_skeleton("colours"));
    }

    #[test]
    fn affixes_strip_per_ecosystem() {
        assert_eq!(
            affix_stripped(Ecosystem::Npm, "lodash-js"),
            vec![("-js", "lodash")]
        );
        assert_eq!(
            affix_stripped(Ecosystem::PyPI, "python-requests"),
            vec![("python-", "requests")]
        );
        assert!(affix_stripped(Ecosystem::PyPI, "pytest").is_empty());
    }
}
