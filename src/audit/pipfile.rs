//! `Pipfile.lock` for `depfw audit`.
//!
//! Pipenv pins the `default` and `develop` groups as JSON objects keyed by package name,
//! with `version: "==1.2.3"`. Entries from elsewhere carry `git` (+ `ref`), `path` or
//! `file` instead. `index` names one of `_meta.sources`. JSON keeps no positions, so the
//! line of each entry is found by scanning for its key inside its group.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::support::{check_name, dedup, from_json, pypi_index, pypi_package, LineIndex};
use super::{LockedPackage, PackageSource, ParseError};
use crate::package::Ecosystem;

#[derive(Deserialize)]
struct PipfileLock {
    #[serde(rename = "_meta", default)]
    meta: Meta,
    #[serde(default)]
    default: BTreeMap<String, Entry>,
    #[serde(default)]
    develop: BTreeMap<String, Entry>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    sources: Vec<IndexSource>,
}

#[derive(Deserialize)]
struct IndexSource {
    name: String,
    url: String,
}

#[derive(Deserialize)]
struct Entry {
    version: Option<String>,
    index: Option<String>,
    git: Option<String>,
    #[serde(rename = "ref")]
    reference: Option<String>,
    path: Option<String>,
    file: Option<String>,
}

pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    let lock: PipfileLock = from_json(path, text)?;
    let mut packages = Vec::new();
    let lines = LineIndex::new(text);
    for (group, entries) in [("default", &lock.default), ("develop", &lock.develop)] {
        let group_start = text.find(&format!("\"{group}\"")).unwrap_or(0);
        for (raw_name, entry) in entries {
            let line = text[group_start..]
                .find(&format!("\"{raw_name}\""))
                .map(|offset| lines.line_of(group_start + offset));
            let name = check_name(path, line, Ecosystem::PyPI, raw_name)?;
            let source = if let Some(repo) = &entry.git {
                PackageSource::Git {
                    url: match &entry.reference {
                        Some(reference) => format!("{repo}#{reference}"),
                        None => repo.clone(),
                    },
                }
            } else if let Some(local) = &entry.path {
                PackageSource::Path {
                    path: local.clone(),
                }
            } else if let Some(file) = &entry.file {
                match file.strip_prefix("file://") {
                    Some(local) => PackageSource::Path {
                        path: local.to_owned(),
                    },
                    None if file.contains("://") => PackageSource::Url { url: file.clone() },
                    None => PackageSource::Path { path: file.clone() },
                }
            } else {
                let url = entry.index.as_ref().map(|index| {
                    lock.meta
                        .sources
                        .iter()
                        .find(|s| &s.name == index)
                        .map_or(index.as_str(), |s| s.url.as_str())
                });
                pypi_index(url)
            };
            // `"*"` or a range is not a pin; see the requirements module for why "" is kept.
            let version = entry
                .version
                .as_deref()
                .and_then(|v| v.strip_prefix("==="))
                .or_else(|| entry.version.as_deref().and_then(|v| v.strip_prefix("==")))
                .unwrap_or("")
                .to_owned();
            packages.push(pypi_package(name, version, source, line));
        }
    }
    packages.sort_by_key(|p| p.line);
    Ok(dedup(packages))
}
