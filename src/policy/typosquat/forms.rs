//! The comparison forms a name is reduced to before it is matched against popular names.
//!
//! Every form is plain ASCII (package names are validated before they get here), so the
//! functions work on bytes.

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

/// A polynomial hash of `bytes` (mod 2^64), finished by a mixer so that the top bits, which
/// pick an index bucket, depend on every byte. Polynomial rather than SipHash because the
/// hash of every one-byte deletion of a name then costs O(1) each ([`deletion_hashes`]):
/// building the index of ~20k popular names hashes ~250k deletions on every start.
/// Persisted in the prebuilt `feeds/popular/*.idx` files: a change here needs
/// `depfw feeds popular-index` (a test fails until then). Collisions only cost a
/// verification: every hit is checked against the real name.
pub fn hash(bytes: &[u8]) -> u64 {
    mix(bytes.iter().fold(0, |h, &b| step(h, b)))
}

const BASE: u64 = 0x0000_0100_0000_01b3;

fn step(h: u64, b: u8) -> u64 {
    // `+ 1` so that a leading byte 0 still counts.
    h.wrapping_mul(BASE).wrapping_add(u64::from(b) + 1)
}

/// MurmurHash3's 64-bit finaliser.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// `BASE`'s inverse mod 2^64 (it is odd), by Newton's iteration: each step doubles the
/// number of correct low bits, from 3.
const BASE_INVERSE: u64 = {
    let mut x = BASE;
    let mut i = 0;
    while i < 5 {
        x = x.wrapping_mul(2u64.wrapping_sub(BASE.wrapping_mul(x)));
        i += 1;
    }
    x
};

/// The hash of `form` with each byte deleted in turn (last position first; `ll` gives the
/// same hash twice), each equal to [`hash`] of that shorter string, in O(1) per position
/// and without allocating: with `h` the whole string's unmixed hash, `p` the prefix before
/// position `i` and `c` its byte, the deletion's unmixed hash is
/// `h + (p * (1 - BASE) - c) * BASE^(n - 1 - i)`.
pub fn each_deletion_hash(form: &str) -> impl Iterator<Item = u64> + '_ {
    let bytes = form.as_bytes();
    let whole = bytes.iter().fold(0, |h, &b| step(h, b));
    let mut prefix = whole;
    let mut power = 1u64;
    bytes.iter().rev().map(move |&b| {
        let c = u64::from(b) + 1;
        prefix = prefix.wrapping_sub(c).wrapping_mul(BASE_INVERSE);
        let deleted = whole.wrapping_add(
            prefix
                .wrapping_mul(1u64.wrapping_sub(BASE))
                .wrapping_sub(c)
                .wrapping_mul(power),
        );
        power = power.wrapping_mul(BASE);
        mix(deleted)
    })
}

/// [`each_deletion_hash`], sorted and without duplicates.
pub fn deletion_hashes(form: &str) -> Vec<u64> {
    let mut out: Vec<u64> = each_deletion_hash(form).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// [`hash`] of [`separator_skeleton`], without building it.
pub fn separator_skeleton_hash(form: &str) -> u64 {
    mix(form.bytes().filter(|b| !is_separator(*b)).fold(0, step))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_hashes_equal_hashes_of_the_deleted_strings() {
        for form in [
            "lodash",
            "ll",
            "a",
            "",
            "@types/node",
            "django-rest-framework",
        ] {
            let mut expected: Vec<u64> = (0..form.len())
                .map(|i| hash(format!("{}{}", &form[..i], &form[i + 1..]).as_bytes()))
                .collect();
            expected.sort_unstable();
            expected.dedup();
            assert_eq!(deletion_hashes(form), expected, "{form}");
        }
        assert_eq!(deletion_hashes("ll").len(), 1);
        assert_eq!(BASE.wrapping_mul(BASE_INVERSE), 1);
        for form in ["@types/node", "a-b_c", "lodash"] {
            assert_eq!(
                separator_skeleton_hash(form),
                hash(separator_skeleton(form).as_bytes())
            );
        }
        assert_ne!(hash(b"ab"), hash(b"ba"));
        assert_ne!(hash(b"\0a"), hash(b"a"));
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
