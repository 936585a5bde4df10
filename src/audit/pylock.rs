//! `pylock.toml` (PEP 751) for `depfw audit`.
//!
//! The standard Python lockfile, written by `pip lock`, `uv export --format pylock.toml`
//! and others. Each `[[packages]]` entry says where it comes from: `vcs`, `directory`,
//! `archive`, or an `index` with `sdist`/`wheels`. `version` is optional for the first
//! three and is reported as `""` when absent. Without `index`, files listed only on hosts
//! other than PyPI's make the package a URL source: not the registry's artifact.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::support::{check_name, dedup, from_toml, line_at, pypi_index, pypi_package, LineIndex};
use super::{LockedPackage, PackageSource, ParseError};
use crate::package::Ecosystem;

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Pylock {
    lock_version: Spanned<String>,
    #[serde(default)]
    packages: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: Spanned<String>,
    #[serde(default)]
    version: String,
    index: Option<String>,
    vcs: Option<Vcs>,
    directory: Option<Location>,
    archive: Option<Location>,
    #[serde(default)]
    wheels: Vec<Location>,
    sdist: Option<Location>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Vcs {
    url: Option<String>,
    path: Option<String>,
    commit_id: Option<String>,
}

/// `directory` has `path`; `archive` has `url` or `path`.
#[derive(Deserialize)]
struct Location {
    url: Option<String>,
    path: Option<String>,
}

/// Where PyPI serves release files.
const PYPI_FILES: &str = "https://files.pythonhosted.org/";

/// The first file URL of an index-less package when none of its files is on PyPI.
fn off_pypi_file(pkg: &Package) -> Option<String> {
    let urls: Vec<&str> = pkg
        .wheels
        .iter()
        .chain(&pkg.sdist)
        .filter_map(|f| f.url.as_deref())
        .collect();
    let first = *urls.first()?;
    (!urls.iter().any(|u| u.starts_with(PYPI_FILES))).then(|| first.to_owned())
}

pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    let lock: Pylock = from_toml(path, text)?;
    if !lock.lock_version.get_ref().starts_with("1.") {
        return Err(ParseError::new(
            path,
            Some(line_at(text, lock.lock_version.span().start)),
            format!(
                "unsupported pylock lock-version `{}` (expected 1.x)",
                lock.lock_version.get_ref()
            ),
        ));
    }
    let mut packages = Vec::with_capacity(lock.packages.len());
    let lines = LineIndex::new(text);
    for pkg in lock.packages {
        let line = Some(lines.line_of(pkg.name.span().start));
        let name = check_name(path, line, Ecosystem::PyPI, pkg.name.get_ref())?;
        let missing = |what: &str| {
            ParseError::new(
                path,
                line,
                format!("package `{name}`: `{what}` names no location"),
            )
        };
        let source = if let Some(vcs) = pkg.vcs {
            let repo = vcs.url.or(vcs.path).ok_or_else(|| missing("vcs"))?;
            PackageSource::Git {
                url: match vcs.commit_id {
                    Some(commit) => format!("{repo}#{commit}"),
                    None => repo,
                },
            }
        } else if let Some(dir) = pkg.directory {
            PackageSource::Path {
                path: dir.path.ok_or_else(|| missing("directory"))?,
            }
        } else if let Some(archive) = pkg.archive {
            match (archive.url, archive.path) {
                (Some(url), _) => PackageSource::Url { url },
                (None, Some(path)) => PackageSource::Path { path },
                (None, None) => return Err(missing("archive")),
            }
        } else if let Some(url) = pkg.index.is_none().then(|| off_pypi_file(&pkg)).flatten() {
            // No index, and every file is hosted somewhere other than PyPI (a CDN of
            // rebuilt wheels, say): what installs is not the registry's artifact.
            PackageSource::Url { url }
        } else {
            pypi_index(pkg.index.as_deref())
        };
        packages.push(pypi_package(name, pkg.version, source, line));
    }
    Ok(dedup(packages))
}
