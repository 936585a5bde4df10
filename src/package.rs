//! Package identity shared by every door of depfw.
//!
//! The proxy, `depfw audit` and `depfw check` all speak about "a package version in an
//! ecosystem". This module is the one model of that: ecosystems named the way OSV names them,
//! names normalised the way each registry compares them, and versions ordered the way each
//! ecosystem orders them (semver for npm and crates.io, PEP 440 for PyPI).

pub mod purl;

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The ecosystems depfw understands, spelled as OSV spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Ecosystem {
    #[serde(rename = "npm")]
    Npm,
    #[serde(rename = "PyPI")]
    PyPI,
    #[serde(rename = "crates.io")]
    CratesIo,
}

impl Ecosystem {
    /// Every ecosystem, in a stable order.
    pub const ALL: [Ecosystem; 3] = [Ecosystem::Npm, Ecosystem::PyPI, Ecosystem::CratesIo];

    /// The OSV ecosystem name (`npm`, `PyPI`, `crates.io`).
    pub(crate) fn osv_name(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npm",
            Ecosystem::PyPI => "PyPI",
            Ecosystem::CratesIo => "crates.io",
        }
    }

    /// A short, path-safe identifier (`npm`, `pypi`, `crates-io`) for file names and keys.
    pub fn slug(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npm",
            Ecosystem::PyPI => "pypi",
            Ecosystem::CratesIo => "crates-io",
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.osv_name())
    }
}

/// An ecosystem name that depfw does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ecosystem `{0}` (expected one of: npm, pypi, crates.io)")]
pub struct UnknownEcosystem(pub String);

impl FromStr for Ecosystem {
    type Err = UnknownEcosystem;

    /// Accepts the OSV names and the spellings people type (`pypi`, `cargo`, `crates`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "npm" => Ok(Ecosystem::Npm),
            "pypi" | "pip" | "python" => Ok(Ecosystem::PyPI),
            "crates.io" | "crates-io" | "crates" | "cargo" | "rust" => Ok(Ecosystem::CratesIo),
            _ => Err(UnknownEcosystem(s.to_owned())),
        }
    }
}

/// Why a package name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("package name is empty")]
    Empty,
    #[error("package name is {len} bytes long; the {ecosystem} limit is {max}")]
    TooLong {
        ecosystem: Ecosystem,
        len: usize,
        max: usize,
    },
    #[error("package name contains a control character")]
    ControlCharacter,
    #[error("`{name}` is not a valid {ecosystem} package name: {why}")]
    Invalid {
        ecosystem: Ecosystem,
        name: String,
        why: &'static str,
    },
}

/// A validated package name in one ecosystem.
///
/// `as_str` is the name as the registry spells it; `key` is the form two names are compared
/// in: PEP 503 for PyPI, lower case with `_` for `-` for crates.io, unchanged for npm (whose
/// registry is case-sensitive for legacy names).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageName {
    ecosystem: Ecosystem,
    key: String,
    display: String,
}

/// npm's own limit (`validate-npm-package-name`).
const NPM_MAX_LEN: usize = 214;
/// crates.io's limit.
const CRATES_MAX_LEN: usize = 64;
/// PyPI has no hard limit; this bounds hostile input.
const PYPI_MAX_LEN: usize = 200;

impl PackageName {
    /// Validates `raw` as a package name of `ecosystem`.
    pub fn parse(ecosystem: Ecosystem, raw: &str) -> Result<Self, NameError> {
        if raw.is_empty() {
            return Err(NameError::Empty);
        }
        if raw.chars().any(char::is_control) {
            return Err(NameError::ControlCharacter);
        }
        let max = match ecosystem {
            Ecosystem::Npm => NPM_MAX_LEN,
            Ecosystem::PyPI => PYPI_MAX_LEN,
            Ecosystem::CratesIo => CRATES_MAX_LEN,
        };
        if raw.len() > max {
            return Err(NameError::TooLong {
                ecosystem,
                len: raw.len(),
                max,
            });
        }
        let invalid = |why| NameError::Invalid {
            ecosystem,
            name: raw.to_owned(),
            why,
        };
        match ecosystem {
            Ecosystem::Npm => validate_npm(raw).map_err(invalid)?,
            Ecosystem::PyPI => validate_pypi(raw).map_err(invalid)?,
            Ecosystem::CratesIo => validate_crate(raw).map_err(invalid)?,
        }
        Ok(PackageName {
            ecosystem,
            key: normalize(ecosystem, raw),
            display: raw.to_owned(),
        })
    }

    pub fn ecosystem(&self) -> Ecosystem {
        self.ecosystem
    }

    /// The name as given (registry spelling).
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The normalised comparison key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// The normalised comparison key of a name, without validating it.
pub(crate) fn normalize(ecosystem: Ecosystem, raw: &str) -> String {
    match ecosystem {
        Ecosystem::Npm => raw.to_owned(),
        Ecosystem::PyPI => pep503_normalize(raw),
        Ecosystem::CratesIo => crate_key(raw),
    }
}

/// crates.io's key: lower case, `-` as `_`, in one pass (and a plain copy for a name
/// already in that form, most of them): every locked crate's name is normalised.
fn crate_key(raw: &str) -> String {
    if !raw.bytes().any(|b| b == b'-' || b.is_ascii_uppercase()) {
        return raw.to_owned();
    }
    // Sized up front: collecting the chars would grow the string a few bytes at a time.
    let mut key = String::with_capacity(raw.len());
    for c in raw.chars() {
        key.push(if c == '-' {
            '_'
        } else {
            c.to_ascii_lowercase()
        });
    }
    key
}

/// PEP 503: runs of `-`, `_`, `.` become one `-`, lower case.
pub(crate) fn pep503_normalize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_separator_run = false;
    for c in raw.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_separator_run {
                out.push('-');
            }
            in_separator_run = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_separator_run = false;
        }
    }
    out
}

fn npm_part_ok(part: &str) -> Result<(), &'static str> {
    if part.is_empty() {
        return Err("empty name or scope");
    }
    if part.starts_with('.') || part.starts_with('_') {
        return Err("a name cannot start with `.` or `_`");
    }
    if part == "node_modules" || part == "favicon.ico" {
        return Err("reserved name");
    }
    // npm's rule: the name must survive encodeURIComponent unchanged; legacy names may
    // carry upper case and `~'!()*`.
    if !part
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~'!()*".contains(&b))
    {
        return Err("only URL-safe characters are allowed");
    }
    Ok(())
}

fn validate_npm(raw: &str) -> Result<(), &'static str> {
    if raw.trim() != raw {
        return Err("leading or trailing spaces");
    }
    if let Some(scoped) = raw.strip_prefix('@') {
        let (scope, name) = scoped
            .split_once('/')
            .ok_or("a scoped name must look like @scope/name")?;
        npm_part_ok(scope)?;
        npm_part_ok(name)?;
        if name.contains('/') {
            return Err("only one `/` is allowed, after the scope");
        }
        Ok(())
    } else {
        if raw.contains('/') {
            return Err("`/` is only allowed after an @scope");
        }
        npm_part_ok(raw)
    }
}

fn validate_pypi(raw: &str) -> Result<(), &'static str> {
    // PEP 508 names: letters, digits, `-_.`, starting and ending with a letter or digit.
    let bytes = raw.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return Err("must start and end with a letter or digit");
    }
    if !bytes.iter().all(|b| alnum(b) || b"-_.".contains(b)) {
        return Err("only letters, digits, `-`, `_` and `.` are allowed");
    }
    Ok(())
}

fn validate_crate(raw: &str) -> Result<(), &'static str> {
    let bytes = raw.as_bytes();
    if !bytes.first().is_some_and(|b| b.is_ascii_alphabetic()) {
        return Err("must start with a letter");
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    {
        return Err("only letters, digits, `-` and `_` are allowed");
    }
    Ok(())
}

/// Why a version string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{version}` is not a valid {ecosystem} version: {why}")]
pub struct VersionError {
    pub ecosystem: Ecosystem,
    pub version: String,
    pub why: String,
}

/// A version, ordered the way its ecosystem orders versions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Version {
    /// npm and crates.io.
    Semver(semver::Version),
    /// PyPI.
    Pep440(pep440_rs::Version),
}

/// Longest version string accepted; bounds hostile input.
const MAX_VERSION_LEN: usize = 256;

impl Version {
    pub fn parse(ecosystem: Ecosystem, raw: &str) -> Result<Self, VersionError> {
        let error = |why: String| VersionError {
            ecosystem,
            version: raw.chars().take(80).collect(),
            why,
        };
        if raw.len() > MAX_VERSION_LEN {
            return Err(error(format!("longer than {MAX_VERSION_LEN} bytes")));
        }
        match ecosystem {
            Ecosystem::Npm | Ecosystem::CratesIo => {
                // npm's semver tolerates a leading `v` and `=`; registries store the clean form.
                let trimmed = if ecosystem == Ecosystem::Npm {
                    raw.trim().trim_start_matches(['v', '='])
                } else {
                    raw
                };
                semver::Version::parse(trimmed)
                    .map(Version::Semver)
                    .map_err(|e| error(e.to_string()))
            }
            Ecosystem::PyPI => pep440_rs::Version::from_str(raw.trim())
                .map(Version::Pep440)
                .map_err(|e| error(e.to_string())),
        }
    }

    /// Whether this is a pre-release (semver pre tag, PEP 440 a/b/rc/dev).
    pub(crate) fn is_prerelease(&self) -> bool {
        match self {
            Version::Semver(v) => !v.pre.is_empty(),
            Version::Pep440(v) => v.any_prerelease(),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Semver(v) => v.fmt(f),
            Version::Pep440(v) => v.fmt(f),
        }
    }
}

impl PartialOrd for Version {
    /// Versions of different schemes are not comparable.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (Version::Semver(a), Version::Semver(b)) => Some(a.cmp(b)),
            (Version::Pep440(a), Version::Pep440(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

/// A package, optionally at one version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PackageRef {
    pub name: PackageName,
    pub version: Option<Version>,
}

impl PackageRef {
    /// Parses `name` or `name@version` (npm scopes keep their leading `@`).
    pub fn parse_spec(ecosystem: Ecosystem, spec: &str) -> Result<Self, SpecError> {
        let spec = spec.trim();
        let (name, version) = split_name_version(ecosystem, spec);
        let name = PackageName::parse(ecosystem, name)?;
        let version = version.map(|v| Version::parse(ecosystem, v)).transpose()?;
        Ok(PackageRef { name, version })
    }

    pub fn ecosystem(&self) -> Ecosystem {
        self.name.ecosystem()
    }
}

impl fmt::Display for PackageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}@{}", self.name, v),
            None => write!(f, "{}", self.name),
        }
    }
}

/// Splits `name@version`; PyPI users also write `name==version`.
pub(crate) fn split_name_version(ecosystem: Ecosystem, spec: &str) -> (&str, Option<&str>) {
    if ecosystem == Ecosystem::PyPI {
        if let Some((n, v)) = spec.split_once("==") {
            return (n.trim(), Some(v.trim()));
        }
    }
    // Skip a leading `@` so that `@scope/name@1.0.0` splits at the second `@`.
    let search_from = usize::from(spec.starts_with('@'));
    match spec[search_from..].find('@') {
        Some(at) => {
            let at = at + search_from;
            (&spec[..at], Some(&spec[at + 1..]))
        }
        None => (spec, None),
    }
}

/// A `name[@version]` that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Version(#[from] VersionError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(e: Ecosystem, s: &str) -> PackageName {
        PackageName::parse(e, s).unwrap()
    }

    #[test]
    fn a_crate_key_is_lower_case_with_underscores() {
        for raw in [
            "serde",
            "Serde_JSON",
            "tokio-util",
            "A-b_C",
            "ünï-Côde",
            "--",
            "x",
        ] {
            assert_eq!(
                normalize(Ecosystem::CratesIo, raw),
                raw.to_ascii_lowercase().replace('-', "_"),
                "{raw}"
            );
        }
    }

    #[test]
    fn pypi_names_normalise_per_pep_503() {
        assert_eq!(name(Ecosystem::PyPI, "Django").key(), "django");
        assert_eq!(
            name(Ecosystem::PyPI, "typing_extensions").key(),
            "typing-extensions"
        );
        assert_eq!(
            name(Ecosystem::PyPI, "zope.interface").key(),
            "zope-interface"
        );
        assert_eq!(name(Ecosystem::PyPI, "a-_.b").key(), "a-b");
    }

    #[test]
    fn crate_names_compare_case_and_separator_insensitively() {
        assert_eq!(
            name(Ecosystem::CratesIo, "Serde-Json").key(),
            name(Ecosystem::CratesIo, "serde_json").key()
        );
    }

    #[test]
    fn npm_names_keep_case_and_scope() {
        assert_eq!(name(Ecosystem::Npm, "@types/node").key(), "@types/node");
        assert_eq!(name(Ecosystem::Npm, "JSONStream").key(), "JSONStream");
    }

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            "../etc/passwd",
            "a/b",
            "@scope/a/b",
            "a\u{0}b",
            "",
            " lodash",
            ".hidden",
            "%2e%2e",
        ] {
            assert!(PackageName::parse(Ecosystem::Npm, bad).is_err(), "{bad:?}");
        }
        assert!(PackageName::parse(Ecosystem::PyPI, "-requests").is_err());
        assert!(PackageName::parse(Ecosystem::CratesIo, "1abc").is_err());
        assert!(PackageName::parse(Ecosystem::CratesIo, &"a".repeat(65)).is_err());
        assert!(PackageName::parse(Ecosystem::Npm, &"a".repeat(215)).is_err());
    }

    #[test]
    fn versions_order_per_ecosystem() {
        let v = |e, s| Version::parse(e, s).unwrap();
        assert!(v(Ecosystem::Npm, "1.0.0-rc.1") < v(Ecosystem::Npm, "1.0.0"));
        assert!(v(Ecosystem::PyPI, "1.0rc1") < v(Ecosystem::PyPI, "1.0"));
        assert!(v(Ecosystem::PyPI, "1.0") < v(Ecosystem::PyPI, "1.0.post1"));
        assert!(v(Ecosystem::PyPI, "2.0") < v(Ecosystem::PyPI, "1!0.1"));
        assert_eq!(v(Ecosystem::PyPI, "1.0"), v(Ecosystem::PyPI, "1.0.0"));
        assert!(Version::parse(Ecosystem::CratesIo, "1.0").is_err());
    }

    #[test]
    fn specs_split_at_the_version_at() {
        let r = PackageRef::parse_spec(Ecosystem::Npm, "@scope/pkg@1.2.3").unwrap();
        assert_eq!(r.name.as_str(), "@scope/pkg");
        assert_eq!(r.version.unwrap().to_string(), "1.2.3");
        let r = PackageRef::parse_spec(Ecosystem::PyPI, "Django==4.2.1").unwrap();
        assert_eq!(r.name.key(), "django");
        let r = PackageRef::parse_spec(Ecosystem::CratesIo, "serde").unwrap();
        assert!(r.version.is_none());
    }
}
