//! `Cargo.lock` for `depfw audit`.
//!
//! `depfw audit Cargo.lock` checks every crate a Rust project pins, in all four lockfile
//! versions (v1 with `[root]` and its checksums under `[metadata]`, v2's inline checksums,
//! v3, and v4's percent-encoded git references). One span-aware TOML pass reads each
//! package's name, version and source, with its line; `cargo-lock`'s `SourceId` parses the
//! source URLs. `cargo-lock`'s whole-lockfile parser is not used: it resolves every
//! dependency by a linear search over all packages (quadratic in the lockfile's size), and
//! an audit needs only the packages, not the graph between them.
//!
//! Workspace members and `path` dependencies have no `source` in `Cargo.lock` and become
//! [`PackageSource::Workspace`] with an empty `path`: the lockfile does not record where
//! they live.

use std::path::Path;

use cargo_lock::package::SourceKind;
use cargo_lock::SourceId;
use rustc_hash::FxHashMap;
use serde::Deserialize;
use toml::Spanned;

use super::support::{from_toml, LineIndex};
use super::{LockedPackage, PackageSource, ParseError};
use crate::package::Ecosystem;

/// Only what is needed to find each entry's line and report bad fields by line.
#[derive(Deserialize)]
struct RawLock {
    /// The lockfile format: absent in v1 and v2, `3` or `4` since.
    version: Option<Spanned<u32>>,
    #[serde(default)]
    package: Vec<RawPackage>,
    root: Option<RawPackage>,
}

#[derive(Deserialize)]
struct RawPackage {
    name: Spanned<String>,
    version: Spanned<String>,
    source: Option<Spanned<String>>,
    checksum: Option<Spanned<String>>,
}

/// One `[[package]]` entry's fields, each with the line its value is on.
struct Entry<'a> {
    name: (&'a str, u32),
    version: (&'a str, u32),
    source: Option<(&'a str, u32)>,
    checksum: Option<(&'a str, u32)>,
}

pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    match scan_cargo_layout(text) {
        Some(entries) => packages(path, entries),
        None => parse_toml(path, text),
    }
}

/// Any `Cargo.lock` read as TOML: every layout, and every error located.
fn parse_toml(path: &Path, text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    let raw: RawLock = from_toml(path, text)?;
    let lines = LineIndex::new(text);
    if let Some(format) = &raw.version {
        if !(1..=4).contains(format.get_ref()) {
            return Err(ParseError::new(
                path,
                Some(lines.line_of(format.span().start)),
                format!(
                    "unsupported Cargo.lock version {} (expected 1 to 4)",
                    format.get_ref()
                ),
            ));
        }
    }
    fn at<'a>(lines: &LineIndex, value: &'a Spanned<String>) -> (&'a str, u32) {
        (value.get_ref().as_str(), lines.line_of(value.span().start))
    }
    let entries = raw.root.iter().chain(&raw.package).map(|pkg| Entry {
        name: at(&lines, &pkg.name),
        version: at(&lines, &pkg.version),
        source: pkg.source.as_ref().map(|s| at(&lines, s)),
        checksum: pkg.checksum.as_ref().map(|c| at(&lines, c)),
    });
    packages(path, entries.collect())
}

/// Cargo.lock exactly as cargo writes it (v3 and v4: comments, `version = 3|4`, then
/// `[[package]]` tables of `name`, `version`, `source`, `checksum` and a one-per-line
/// `dependencies` array, every string free of escapes), read line by line. A generic TOML
/// parse was a third of a whole `depfw audit` of a 400-crate lockfile. Anything else —
/// another layout, a hand edit, an error — is `None`, and [`parse_toml`] reads the file,
/// so both give the same packages (a test runs both on every lockfile in the repository).
fn scan_cargo_layout(text: &str) -> Option<Vec<Entry<'_>>> {
    type Fields<'a> = [Option<(&'a str, u32)>; 4];
    fn entry(fields: Fields<'_>) -> Option<Entry<'_>> {
        let [name, version, source, checksum] = fields;
        Some(Entry {
            name: name?,
            version: version?,
            source,
            checksum,
        })
    }
    let mut entries = Vec::new();
    let mut current: Option<(Fields<'_>, bool)> = None;
    let mut format_seen = false;
    let mut in_dependencies = false;
    for (i, line) in split_lines(text).enumerate() {
        let number = u32::try_from(i + 1).ok()?;
        if in_dependencies {
            if line == "]" {
                in_dependencies = false;
            } else if !line
                .strip_prefix(" \"")
                .and_then(|l| l.strip_suffix("\","))
                .is_some_and(plain)
            {
                return None;
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            if comment.chars().any(|c| c != '\t' && c.is_control()) {
                return None;
            }
            continue;
        }
        if line == "[[package]]" {
            if let Some((fields, _)) = current.take() {
                entries.push(entry(fields)?);
            }
            current = Some(([None; 4], false));
            continue;
        }
        let Some((fields, dependencies_seen)) = current.as_mut() else {
            // Before the first table: only the format version cargo writes today.
            if format_seen || !matches!(line, "version = 3" | "version = 4") {
                return None;
            }
            format_seen = true;
            continue;
        };
        if line == "dependencies = [" {
            if *dependencies_seen {
                return None;
            }
            *dependencies_seen = true;
            in_dependencies = true;
            continue;
        }
        // `key = "value"` for one of the four keys: matched by prefix, which is what
        // splitting at the first ` = "` and matching the key gives (no key holds a space),
        // without building a substring searcher for every line.
        let (slot, value) = if let Some(v) = line.strip_prefix("name = \"") {
            (&mut fields[0], v)
        } else if let Some(v) = line.strip_prefix("version = \"") {
            (&mut fields[1], v)
        } else if let Some(v) = line.strip_prefix("source = \"") {
            (&mut fields[2], v)
        } else if let Some(v) = line.strip_prefix("checksum = \"") {
            (&mut fields[3], v)
        } else {
            return None;
        };
        let value = value.strip_suffix('"').filter(|v| plain(v))?;
        if slot.replace((value, number)).is_some() {
            return None;
        }
    }
    if in_dependencies {
        return None;
    }
    if let Some((fields, _)) = current {
        entries.push(entry(fields)?);
    }
    Some(entries)
}

/// Every byte of a word set to `byte`.
const fn splat(byte: u8) -> u64 {
    u64::from_le_bytes([byte; 8])
}

/// Flags (high bit) the zero bytes of `word`. The lowest flag is always right (a borrow
/// can only flag a byte above a zero one wrongly), and that is all [`find_newline`] and
/// [`plain`] ask: where the first one is, or whether there is one. The line scan reads
/// every byte of a Cargo.lock; a word at a time, in a few instructions per eight bytes,
/// rather than `split('\n')` and a check per byte (together a fifth of a whole audit of a
/// 400-crate lockfile).
const fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(splat(0x01)) & !word & splat(0x80)
}

/// The position of the first `\n` in `bytes`.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    let (words, tail) = bytes.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        let newlines = zero_bytes(u64::from_le_bytes(*word) ^ splat(b'\n'));
        if newlines != 0 {
            // Little-endian: the lowest flagged byte comes first in `bytes`.
            return Some(i * 8 + newlines.trailing_zeros() as usize / 8);
        }
    }
    let at = tail.iter().position(|&b| b == b'\n')?;
    Some(words.len() * 8 + at)
}

/// `text.split('\n')`, with the newlines found by [`find_newline`].
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match find_newline(current.as_bytes()) {
            Some(at) => {
                // A newline is a char boundary: neither `get` fails.
                rest = current.get(at + 1..);
                current.get(..at)
            }
            None => rest.take(),
        }
    })
}

/// A basic string's contents that mean themselves: no quote, escape or control char.
fn plain(s: &str) -> bool {
    let special = |word: u64| {
        // Bytes below 0x20 (exact as to whether there is any: bytes of 0x80 and up,
        // UTF-8, have their high bit set and are not flagged), then `"`, `\` and DEL.
        (word.wrapping_sub(splat(0x20)) & !word & splat(0x80))
            | zero_bytes(word ^ splat(b'"'))
            | zero_bytes(word ^ splat(b'\\'))
            | zero_bytes(word ^ splat(0x7f))
    };
    let (words, tail) = s.as_bytes().as_chunks::<8>();
    words
        .iter()
        .all(|word| special(u64::from_le_bytes(*word)) == 0)
        && tail
            .iter()
            .all(|&b| b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f)
}

/// The locked packages of `entries`, each checked (semver version, SHA-256 checksum, source
/// URL), the first problem located by line.
fn packages(path: &Path, entries: Vec<Entry<'_>>) -> Result<Vec<LockedPackage>, ParseError> {
    let mut packages = Vec::with_capacity(entries.len());
    // Nearly every package names the same source (crates.io): each distinct one is parsed
    // as a URL once.
    let mut sources: FxHashMap<&str, PackageSource> = FxHashMap::default();
    for pkg in entries {
        let (name, line) = pkg.name;
        let version = semver::Version::parse(pkg.version.0).map_err(|err| {
            ParseError::new(
                path,
                Some(pkg.version.1),
                format!("`{}` is not a semver version: {err}", pkg.version.0),
            )
        })?;
        if let Some((digest, digest_line)) = pkg.checksum {
            // Every byte checked, without stopping at the first bad one: a loop the compiler
            // turns into a few vector instructions (every crate has a checksum).
            let hex = digest
                .bytes()
                .fold(true, |hex, b| hex & b.is_ascii_hexdigit());
            if digest.len() != 64 || !hex {
                return Err(ParseError::new(
                    path,
                    Some(digest_line),
                    "a checksum must be 64 hexadecimal digits (SHA-256)",
                ));
            }
        }
        let source = match pkg.source {
            None => classify(None),
            Some((raw_source, source_line)) => match sources.get(raw_source) {
                Some(known) => known.clone(),
                None => {
                    let id = SourceId::from_url(raw_source).map_err(|err| {
                        ParseError::new(
                            path,
                            Some(source_line),
                            format!("invalid source `{raw_source}`: {err}"),
                        )
                    })?;
                    let source = classify(Some(&id));
                    sources.insert(raw_source, source.clone());
                    source
                }
            },
        };
        packages.push(LockedPackage {
            ecosystem: Ecosystem::CratesIo,
            name: name.to_owned(),
            version: canonical_version(pkg.version.0, &version),
            source,
            line: Some(line),
            metadata: None,
        });
    }
    Ok(super::support::dedup(packages))
}

/// `version` as semver writes it, for `raw` that parsed into it. A plain release
/// (`1.2.3`: digits and dots only) is already written that way, since the parser refuses
/// leading zeros and anything else, so it is copied rather than formatted again: formatting
/// every crate's version was 6% of an audit. Pre-releases and build metadata are formatted.
fn canonical_version(raw: &str, version: &semver::Version) -> String {
    if raw.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        raw.to_owned()
    } else {
        version.to_string()
    }
}

fn classify(source: Option<&SourceId>) -> PackageSource {
    let Some(source) = source else {
        return PackageSource::Workspace {
            path: String::new(),
        };
    };
    if source.is_default_registry() {
        return PackageSource::Registry { url: None };
    }
    match source.kind() {
        SourceKind::Git(_) => PackageSource::Git {
            url: match source.precise() {
                Some(commit) => format!("{}#{commit}", source.url()),
                None => source.url().to_string(),
            },
        },
        SourceKind::Path => PackageSource::Path {
            path: source.url().to_string(),
        },
        // Alternative, local and vendored (`directory+`) registries are all registries;
        // the URL tells the report which one.
        _ => PackageSource::Registry {
            url: Some(source.url().to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every Cargo.lock in the repository (fixtures, public projects, the benchmarks'),
    /// and each with edits that the line scan must hand to the TOML parser.
    fn lockfiles() -> Vec<(std::path::PathBuf, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut found = Vec::new();
        for dir in ["tests/fixtures/lockfiles", "benches/lockfiles"] {
            for entry in walkdir::WalkDir::new(root.join(dir)).sort_by_file_name() {
                let entry = entry.unwrap();
                if entry.file_name() == "Cargo.lock" {
                    let text = std::fs::read_to_string(entry.path()).unwrap();
                    found.push((entry.path().to_owned(), text));
                }
            }
        }
        found.push((
            root.join("Cargo.lock"),
            include_str!("../../Cargo.lock").to_owned(),
        ));
        assert!(found.len() >= 15, "{}", found.len());
        found
    }

    /// The word-at-a-time helpers say what a byte-by-byte reading says, for every byte
    /// value at every position of a word and in the tail, and on every lockfile.
    #[test]
    fn word_at_a_time_scans_agree_with_bytewise_ones() {
        fn plain_bytewise(s: &[u8]) -> bool {
            s.iter()
                .all(|&b| b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f)
        }
        for len in 0..20 {
            for at in 0..len {
                for byte in 0..=u8::MAX {
                    for fill in [b'a', 0x80, 0xff, b'\n', 0x1f] {
                        let mut bytes = vec![fill; len];
                        bytes[at] = byte;
                        let newline = bytes.iter().position(|&b| b == b'\n');
                        assert_eq!(find_newline(&bytes), newline, "{bytes:?}");
                        if let Ok(s) = std::str::from_utf8(&bytes) {
                            assert_eq!(plain(s), plain_bytewise(&bytes), "{bytes:?}");
                        }
                    }
                }
            }
        }
        for s in [
            "",
            "\n",
            "a\n",
            "\na",
            "a\n\nb\n",
            "ünï\ncôde é\u{85}\n\u{7f}x",
        ] {
            assert_eq!(
                split_lines(s).collect::<Vec<_>>(),
                s.split('\n').collect::<Vec<_>>()
            );
            for line in s.split('\n') {
                assert_eq!(plain(line), plain_bytewise(line.as_bytes()), "{line:?}");
            }
        }
        for (path, text) in lockfiles() {
            assert!(
                split_lines(&text).eq(text.split('\n')),
                "{}",
                path.display()
            );
        }
    }

    #[test]
    fn a_copied_version_is_what_semver_writes() {
        let mut versions = vec![
            "0.0.0",
            "1.2.3",
            "10.20.30",
            "1.0.0-alpha.1",
            "1.0.0+build.01",
            "1.0.0-rc.1+x",
            "18446744073709551615.0.0",
        ];
        let mut from_lockfiles = Vec::new();
        for (_, text) in lockfiles() {
            for line in text.lines() {
                if let Some(v) = line
                    .strip_prefix("version = \"")
                    .and_then(|v| v.strip_suffix('"'))
                {
                    from_lockfiles.push(v.to_owned());
                }
            }
        }
        versions.extend(from_lockfiles.iter().map(String::as_str));
        for raw in versions {
            let parsed = semver::Version::parse(raw).unwrap();
            assert_eq!(canonical_version(raw, &parsed), parsed.to_string(), "{raw}");
        }
    }

    #[test]
    fn the_line_scan_reads_what_the_toml_parser_reads() {
        let mut scanned = 0;
        for (path, text) in lockfiles() {
            let variants = [
                text.clone(),
                text.replace('\n', "\r\n"),
                text.replacen("name = \"", "name = \"a\\u0062", 1),
                text.replacen("version = \"", "version = \"x", 1),
                text.replacen("checksum = \"", "checksum = \"0", 1),
                text.replacen("source = \"", "source = \"nonsense+", 1),
                text.replacen("[[package]]\n", "[[package]]\nname = \"twice\"\n", 1),
                text.replacen("[[package]]\n", "[[package]]\nreplace = \"x\"\n", 1),
                text.replacen("[[package]]\nname = ", "[[package]]\nnom = ", 1),
                text.replacen("version = 4", "version = 7", 1),
                text.replacen("version = 3", "version = 7", 1),
                text.replacen(" \"", " \"\\\"", 1),
                text.replacen("\n]\n", "\n", 1),
                format!("{text}\n[metadata]\n"),
                format!("{text}# a comment\u{1}\n"),
            ];
            for (i, variant) in variants.iter().enumerate() {
                if i == 0 && scan_cargo_layout(variant).is_some() {
                    scanned += 1;
                }
                let fast = parse(&path, variant);
                let toml = parse_toml(&path, variant);
                assert_eq!(fast, toml, "{} variant {i}", path.display());
            }
        }
        // The real lockfiles (v3 and v4) take the line scan.
        assert!(scanned >= 10, "{scanned}");
    }
}
