//! The comparison forms a name is reduced to before it is matched against popular names.
//!
//! Every form is plain ASCII (package names are validated before they get here), so the
//! functions work on bytes.

use crate::package::Ecosystem;

/// The registry key, lower-cased: npm compares case-sensitively for legacy names, but a
/// case-only variant of a popular name is exactly what a squatter registers.
pub(crate) fn form(ecosystem: Ecosystem, key: &str) -> String {
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
pub(crate) const WORD_BREAKS: [char; 5] = ['-', '_', '.', '@', '/'];

/// The words of a name, as split by its separators (`@types/node` -> `types`, `node`).
pub(crate) fn tokens(form: &str) -> impl Iterator<Item = &str> {
    form.split(WORD_BREAKS).filter(|t| !t.is_empty())
}

/// `form` without separators: equal skeletons mean "same letters, different punctuation".
pub(crate) fn separator_skeleton(form: &str) -> String {
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
pub(crate) fn glyph_skeleton(form: &str) -> String {
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

/// Each ecosystem's own marker words: a popular name with one of them added or swapped
/// (`lodash-js`, `node-pino`, `python3-dateutil` for `python-dateutil`) says nothing new.
pub(crate) fn markers(ecosystem: Ecosystem) -> &'static [&'static str] {
    match ecosystem {
        Ecosystem::Npm => &["js", "lib", "node", "nodejs", "npm"],
        Ecosystem::PyPI => &["lib", "py", "py3", "python", "python3"],
        Ecosystem::CratesIo => &["lib", "rs", "rust"],
    }
}

/// Words that name no project of their own: each is added to at least 8
/// (`GENERIC_WORD_STEMS`) different popular npm or PyPI names to make another popular
/// name (`-core`, `-cli`, `-utils`, `-sdk`, `types-`, `django-`), so a popular name plus
/// one of them reads as that package. Derived from the bundled lists, sorted; a test
/// re-derives it (`generic_words_are_derived_from_the_bundled_lists`).
pub(crate) const GENERIC_WORDS: &[&str] = &[
    "api",
    "array",
    "async",
    "aws",
    "azure",
    "babel",
    "browserify",
    "cache",
    "cli",
    "click",
    "client",
    "color",
    "common",
    "config",
    "core",
    "cu11",
    "cu12",
    "dagster",
    "data",
    "databricks",
    "dbt",
    "django",
    "dom",
    "es",
    "eslint",
    "express",
    "extensions",
    "fast",
    "fastapi",
    "fetch",
    "file",
    "flake8",
    "flask",
    "format",
    "fs",
    "grunt",
    "gulp",
    "has",
    "html",
    "http",
    "is",
    "jest",
    "js",
    "json",
    "karma",
    "langchain",
    "lite",
    "loader",
    "lodash",
    "mcp",
    "mocha",
    "native",
    "nightly",
    "node",
    "object",
    "pandas",
    "parse",
    "parser",
    "path",
    "polyfill",
    "postcss",
    "postgres",
    "prefect",
    "promise",
    "pulumi",
    "py",
    "pydantic",
    "pylint",
    "pytest",
    "python",
    "react",
    "redis",
    "regex",
    "request",
    "requests",
    "resolve",
    "rs",
    "runtime",
    "sdk",
    "server",
    "simple",
    "snowflake",
    "spark",
    "sphinx",
    "sqlalchemy",
    "stream",
    "string",
    "stubs",
    "sync",
    "to",
    "tools",
    "ts",
    "types",
    "typescript",
    "url",
    "util",
    "utils",
    "vue",
    "webpack",
];

/// How many popular stems a word must extend to be in [`GENERIC_WORDS`] (checked by the
/// test that re-derives the list).
#[cfg(test)]
pub(crate) const GENERIC_WORD_STEMS: usize = 8;

/// `word` as a `'static` generic or marker word of `ecosystem`, if it is one.
fn generic(ecosystem: Ecosystem, word: &str) -> Option<&'static str> {
    let marker = markers(ecosystem).iter().find(|m| **m == word);
    marker
        .or_else(|| {
            GENERIC_WORDS
                .binary_search(&word)
                .ok()
                .and_then(|i| GENERIC_WORDS.get(i))
        })
        .copied()
}

/// A name read as a stem plus one generic word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AffixSplit<'a> {
    pub word: &'static str,
    pub stem: &'a str,
    /// The separator between them; `None`: glued on (suffixes only).
    pub separator: Option<char>,
    pub prefix: bool,
}

impl AffixSplit<'_> {
    /// Whether reading `target` (the stem, or one of [`Self::swaps`]) as this name is how
    /// people name the project itself rather than a port or plugin of it: `d3.js`,
    /// `jquery.js` (the project's spoken name, `D3.js`, `jQuery.js`), `python3-dateutil`
    /// (a version digit inserted in the `python-` of `python-dateutil`). Strong evidence:
    /// a user types it meaning the popular package.
    pub(crate) fn names_the_project(&self, ecosystem: Ecosystem, target: &str) -> bool {
        match ecosystem {
            Ecosystem::Npm => {
                !self.prefix
                    && self.word == "js"
                    && self.separator == Some('.')
                    && target == self.stem
            }
            Ecosystem::PyPI => {
                let (Some(sep), Some(base)) = (self.separator, self.word.strip_suffix('3')) else {
                    return false;
                };
                let expected = if self.prefix {
                    format!("{base}{sep}{}", self.stem)
                } else {
                    format!("{}{sep}{base}", self.stem)
                };
                target == expected
            }
            Ecosystem::CratesIo => false,
        }
    }

    /// The stem with the ecosystem's other markers in place of this split's word, when
    /// the word is a marker (`python3-dateutil` -> `python-dateutil`, `py-dateutil`, ...).
    pub(crate) fn swaps(&self, ecosystem: Ecosystem) -> Vec<String> {
        let (Some(sep), true) = (self.separator, markers(ecosystem).contains(&self.word)) else {
            return Vec::new();
        };
        markers(ecosystem)
            .iter()
            .filter(|m| **m != self.word)
            .map(|m| {
                if self.prefix {
                    format!("{m}{sep}{}", self.stem)
                } else {
                    format!("{}{sep}{m}", self.stem)
                }
            })
            .collect()
    }
}

/// Every way to read `form` as a stem plus one generic word: a last word split off at a
/// separator (`chai-sdk`, `d3.js`), a first word that is one of the ecosystem's markers
/// (`python-uvicorn`, `node-pino`: other prefixes are how real plugins and ports are named,
/// `pytest-isort`, `django-channels`), or a generic word glued to the end
/// (`requestsutils`). An npm scope is never split off.
pub(crate) fn affix_splits(ecosystem: Ecosystem, form: &str) -> Vec<AffixSplit<'_>> {
    let is_break = |c: char| matches!(c, '-' | '_' | '.');
    let mut out = Vec::new();
    let name_start = form.find('/').map_or(0, |i| i + 1);
    let name = &form[name_start..];
    if let Some(at) = name.rfind(is_break) {
        let word = &name[at + 1..];
        if let Some(word) = generic(ecosystem, word) {
            out.push(AffixSplit {
                word,
                stem: &form[..name_start + at],
                separator: name[at..].chars().next(),
                prefix: false,
            });
        }
    }
    if name_start == 0 {
        if let Some(at) = form.find(is_break) {
            let word = markers(ecosystem).iter().find(|m| **m == &form[..at]);
            if let Some(&word) = word {
                out.push(AffixSplit {
                    word,
                    stem: &form[at + 1..],
                    separator: form[at..].chars().next(),
                    prefix: true,
                });
            }
        }
    }
    for &word in GENERIC_WORDS.iter().chain(markers(ecosystem)) {
        if let Some(stem) = name.strip_suffix(word) {
            if !stem.is_empty() && !stem.ends_with(is_break) {
                out.push(AffixSplit {
                    word,
                    stem: &form[..name_start + stem.len()],
                    separator: None,
                    prefix: false,
                });
            }
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
pub(crate) fn hash(bytes: &[u8]) -> u64 {
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
pub(crate) fn each_deletion_hash(form: &str) -> impl Iterator<Item = u64> + '_ {
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
pub(crate) fn deletion_hashes(form: &str) -> Vec<u64> {
    let mut out: Vec<u64> = each_deletion_hash(form).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// [`hash`] of [`separator_skeleton`], without building it.
pub(crate) fn separator_skeleton_hash(form: &str) -> u64 {
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
    fn names_split_into_a_stem_and_a_generic_word() {
        let split = |eco, form| {
            affix_splits(eco, form)
                .into_iter()
                .map(|s| (s.word, s.stem.to_owned(), s.separator, s.prefix))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            split(Ecosystem::Npm, "chai-sdk"),
            [("sdk", "chai".to_owned(), Some('-'), false)]
        );
        assert_eq!(
            split(Ecosystem::Npm, "d3.js"),
            [("js", "d3".to_owned(), Some('.'), false)]
        );
        assert_eq!(
            split(Ecosystem::PyPI, "python-uvicorn"),
            [("python", "uvicorn".to_owned(), Some('-'), true)]
        );
        assert_eq!(
            split(Ecosystem::PyPI, "requestsutils"),
            [("utils", "requests".to_owned(), None, false)]
        );
        // A scope is not a prefix; the name after it may carry a suffix.
        assert_eq!(
            split(Ecosystem::Npm, "@acme/lodash-js"),
            [("js", "@acme/lodash".to_owned(), Some('-'), false)]
        );
        assert!(split(Ecosystem::PyPI, "pytest").is_empty());
        let swapped = affix_splits(Ecosystem::PyPI, "python3-dateutil")[0].swaps(Ecosystem::PyPI);
        assert!(
            swapped.contains(&"python-dateutil".to_owned()),
            "{swapped:?}"
        );
        assert!(
            GENERIC_WORDS.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
    }
}
