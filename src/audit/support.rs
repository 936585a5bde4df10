//! Helpers shared by the lockfile parsers: turning byte offsets and serde errors into
//! line-numbered [`ParseError`]s, classifying Python sources, and de-duplicating entries.

use std::path::Path;

use rustc_hash::FxHashSet;

use super::{LockedPackage, PackageSource, ParseError};
use crate::package::{Ecosystem, PackageName};

/// 1-based line of byte `offset` in `text` (offsets past the end count as the last line).
/// For one-off error locations; a parser that asks for many lines builds a [`LineIndex`]
/// once, so a scan stays linear in the lockfile's size.
pub(crate) fn line_at(text: &str, offset: usize) -> u32 {
    LineIndex::new(text).line_of(offset)
}

/// Byte offset → 1-based line, by binary search over the line starts found in one pass.
pub(crate) struct LineIndex(Vec<usize>);

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex(starts)
    }

    /// The line holding byte `offset`; offsets past the end count as the last line.
    pub(crate) fn line_of(&self, offset: usize) -> u32 {
        // Lines before `offset` start at or before it: the count of such starts is the line.
        let line = self.0.partition_point(|&start| start <= offset);
        u32::try_from(line).unwrap_or(u32::MAX)
    }
}

/// A TOML syntax or shape error, located at the line its span starts on.
pub(crate) fn toml_error(path: &Path, text: &str, err: &toml::de::Error) -> ParseError {
    let line = err.span().map(|span| line_at(text, span.start));
    ParseError::new(
        path,
        line,
        format!("invalid TOML: {}", err.message().trim_end()),
    )
}

/// Parses `text` as TOML into `T`, with errors located by line.
pub(crate) fn from_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ParseError> {
    toml::from_str(text).map_err(|err| toml_error(path, text, &err))
}

/// Parses `text` as JSON into `T`, with errors located by line.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ParseError> {
    serde_json::from_str(text).map_err(|err| {
        let line = u32::try_from(err.line()).ok().filter(|&l| l > 0);
        ParseError::new(path, line, format!("invalid JSON: {err}"))
    })
}

/// Checks that `raw` is a valid name in `ecosystem`; the lockfile's spelling is kept.
pub(crate) fn check_name(
    path: &Path,
    line: Option<u32>,
    ecosystem: Ecosystem,
    raw: &str,
) -> Result<String, ParseError> {
    PackageName::parse(ecosystem, raw)
        .map(|name| name.as_str().to_owned())
        .map_err(|err| ParseError::new(path, line, err.to_string()))
}

/// The index every Python installer uses unless told otherwise.
fn is_default_pypi_index(url: &str) -> bool {
    let url = url.trim_end_matches('/');
    matches!(
        url,
        "https://pypi.org/simple" | "https://pypi.python.org/simple" | "https://pypi.org/pypi"
    )
}

/// A package from a Python index: `None` or the PyPI URL mean the default registry.
pub(crate) fn pypi_index(url: Option<&str>) -> PackageSource {
    PackageSource::Registry {
        url: url.filter(|u| !is_default_pypi_index(u)).map(str::to_owned),
    }
}

/// Keeps the first of each identical (name, version, source) entry, preserving order.
/// The set borrows the entries and uses FxHash (no key comes from an attacker who can
/// choose collisions cheaply enough to matter for one lockfile): cloning every entry into a
/// SipHash set was 6% of an audit of a 400-crate Cargo.lock.
pub(crate) fn dedup(mut packages: Vec<LockedPackage>) -> Vec<LockedPackage> {
    let keep: Vec<bool> = {
        let mut seen = FxHashSet::with_capacity_and_hasher(packages.len(), Default::default());
        packages
            .iter()
            .map(|p| seen.insert((p.name.as_str(), p.version.as_str(), &p.source)))
            .collect()
    };
    if keep.iter().all(|&k| k) {
        return packages;
    }
    // `retain` visits every element once, in order.
    let mut keep = keep.into_iter();
    packages.retain(|_| keep.next().unwrap_or(true));
    packages
}

/// A Python package entry: ecosystem filled in.
pub(crate) fn pypi_package(
    name: String,
    version: String,
    source: PackageSource,
    line: Option<u32>,
) -> LockedPackage {
    LockedPackage {
        ecosystem: Ecosystem::PyPI,
        name,
        version,
        source,
        line,
        metadata: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_at_counts_newlines_before_offset() {
        let text = "a\nbb\nccc";
        assert_eq!(line_at(text, 0), 1);
        assert_eq!(line_at(text, 2), 2);
        assert_eq!(line_at(text, 5), 3);
        assert_eq!(line_at(text, 999), 3);
    }

    #[test]
    fn dedup_keeps_the_first_of_each_entry_in_order() {
        let package = |name: &str, version: &str, url: Option<&str>| LockedPackage {
            ecosystem: Ecosystem::CratesIo,
            name: name.to_owned(),
            version: version.to_owned(),
            source: PackageSource::Registry {
                url: url.map(str::to_owned),
            },
            line: None,
            metadata: None,
        };
        let mut first = package("a", "1.0.0", None);
        first.line = Some(1);
        let mut again = package("a", "1.0.0", None);
        again.line = Some(9);
        let packages = vec![
            first.clone(),
            package("b", "1.0.0", None),
            again,
            package("a", "2.0.0", None),
            package("a", "1.0.0", Some("https://example.org")),
            package("b", "1.0.0", None),
        ];
        let kept = dedup(packages.clone());
        assert_eq!(
            kept,
            vec![
                first,
                packages[1].clone(),
                packages[3].clone(),
                packages[4].clone()
            ]
        );
        assert_eq!(dedup(kept.clone()), kept);
    }

    #[test]
    fn pypi_default_index_is_plain_registry() {
        assert_eq!(
            pypi_index(Some("https://pypi.org/simple/")),
            PackageSource::Registry { url: None }
        );
        assert_eq!(
            pypi_index(Some("https://mirror.example/simple")),
            PackageSource::Registry {
                url: Some("https://mirror.example/simple".into())
            }
        );
    }
}
