//! Distribution file names → (project, version).
//!
//! Lockfile installs fetch files without reading the project page, so the proxy must know
//! which project and version a file belongs to from its name alone (layer (b) of the
//! protocols notes). Wheels and eggs are unambiguous; old sdists (`python-dateutil-2.8.2.tar.gz`)
//! are not, because both the name and a PEP 440 version may contain `-`.

use std::str::FromStr;

use crate::package::{pep503_normalize, Ecosystem, PackageName};
use crate::registry::ProtocolError;

/// sdist archive suffixes setuptools and distutils have produced, longest first.
const SDIST_SUFFIXES: [&str; 9] = [
    ".tar.gz", ".tar.bz2", ".tar.xz", ".tar.Z", ".tgz", ".tbz", ".txz", ".zip", ".tar",
];

/// What kind of distribution a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistKind {
    Wheel,
    Sdist,
    Egg,
}

/// One reading of a file name: the project name as spelled in the file and the version text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameVersion {
    pub name: String,
    pub version_text: String,
}

/// A parsed distribution file name, possibly with several readings (sdists only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistFilename {
    pub kind: DistKind,
    /// The file name without its archive suffix.
    stem: String,
    /// Readings whose name is a valid project name and whose version parses as PEP 440.
    candidates: Vec<NameVersion>,
}

impl DistFilename {
    /// Parses `filename` (no directories). Fails for suffixes pip and uv do not install
    /// (`.exe`, `.msi`, `.rpm`, …) and for names with no valid reading.
    pub fn parse(filename: &str) -> Result<Self, ProtocolError> {
        let bad = |why: &str| ProtocolError::BadPath(format!("`{filename}`: {why}"));
        if filename.contains(['/', '\\']) || filename.chars().any(char::is_control) {
            return Err(bad("not a plain file name"));
        }
        let (kind, stem) = if let Some(stem) = filename.strip_suffix(".whl") {
            (DistKind::Wheel, stem)
        } else if let Some(stem) = filename.strip_suffix(".egg") {
            (DistKind::Egg, stem)
        } else {
            let stem = SDIST_SUFFIXES
                .iter()
                .find_map(|s| filename.strip_suffix(s))
                .ok_or_else(|| bad("not a wheel, sdist or egg"))?;
            (DistKind::Sdist, stem)
        };
        let candidates = match kind {
            // PEP 427: `{dist}-{version}(-{build})?-{py}-{abi}-{plat}`; the name escapes `-` as `_`.
            DistKind::Wheel => {
                let parts: Vec<&str> = stem.split('-').collect();
                let build_ok = parts.len() == 5
                    || (parts.len() == 6 && parts[2].starts_with(|c: char| c.is_ascii_digit()));
                if !build_ok {
                    return Err(bad("a wheel name has 5 or 6 `-`-separated parts"));
                }
                reading(parts[0], parts[1]).into_iter().collect()
            }
            // `{name}-{version}(-py{X.Y}(-{platform})?)?`, name escaped like a wheel's.
            DistKind::Egg => {
                let mut parts = stem.split('-');
                match (parts.next(), parts.next()) {
                    (Some(name), Some(version)) => reading(name, version).into_iter().collect(),
                    _ => Vec::new(),
                }
            }
            DistKind::Sdist => stem
                .match_indices('-')
                .filter_map(|(at, _)| reading(&stem[..at], &stem[at + 1..]))
                .collect(),
        };
        if candidates.is_empty() {
            return Err(bad(
                "no `{name}-{version}` reading with a valid PEP 440 version",
            ));
        }
        Ok(DistFilename {
            kind,
            stem: stem.to_owned(),
            candidates,
        })
    }

    /// Every reading, shortest name first. One for wheels and eggs.
    pub fn candidates(&self) -> &[NameVersion] {
        &self.candidates
    }

    /// The version text of this file if it belongs to `project` (compared PEP 503-normalised).
    ///
    /// For sdists the name prefix is matched directly, so a legacy version that PEP 440
    /// rejects is still returned (the proxy then fails closed on the unparsable version).
    pub fn version_for(&self, project: &PackageName) -> Option<&str> {
        if self.kind == DistKind::Sdist {
            return self.stem.match_indices('-').find_map(|(at, _)| {
                let version = &self.stem[at + 1..];
                (pep503_normalize(&self.stem[..at]) == project.key() && !version.is_empty())
                    .then_some(version)
            });
        }
        self.candidates
            .iter()
            .find(|c| pep503_normalize(&c.name) == project.key())
            .map(|c| c.version_text.as_str())
    }

    /// Resolves the reading against the version texts a project page lists for it: the one
    /// reading whose version equals (PEP 440) a known version. `BadPath` when none or several
    /// match, since guessing could check one version and serve another.
    pub fn resolve(&self, known_versions: &[&str]) -> Result<&NameVersion, ProtocolError> {
        let known: Vec<Option<pep440_rs::Version>> = known_versions
            .iter()
            .map(|v| pep440_rs::Version::from_str(v).ok())
            .collect();
        let mut matching = self.candidates.iter().filter(|c| {
            let parsed = pep440_rs::Version::from_str(&c.version_text).ok();
            known_versions
                .iter()
                .zip(&known)
                .any(|(text, k)| match (k, &parsed) {
                    (Some(k), Some(p)) => k == p,
                    _ => *text == c.version_text,
                })
        });
        match (matching.next(), matching.next()) {
            (Some(one), None) => Ok(one),
            (None, _) => Err(ProtocolError::BadPath(format!(
                "`{}`: no reading matches a known version",
                self.stem
            ))),
            (Some(_), Some(_)) => Err(ProtocolError::BadPath(format!(
                "`{}`: ambiguous name and version",
                self.stem
            ))),
        }
    }
}

/// A reading if `name` is a valid PyPI name and `version` a PEP 440 version.
fn reading(name: &str, version: &str) -> Option<NameVersion> {
    PackageName::parse(Ecosystem::PyPI, name).ok()?;
    pep440_rs::Version::from_str(version).ok()?;
    Some(NameVersion {
        name: name.to_owned(),
        version_text: version.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn wheel_with_build_tag() {
        let f = DistFilename::parse("foo_bar-1.0-1-py3-none-any.whl").unwrap();
        assert_eq!(f.kind, DistKind::Wheel);
        assert_eq!(f.candidates()[0].version_text, "1.0");
        assert!(DistFilename::parse("foo-1.0-x-py3-none-any.whl").is_err());
        assert!(DistFilename::parse("foo-1.0-py3-none.whl").is_err());
    }
}
