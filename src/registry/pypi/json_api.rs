//! PyPI's JSON API (`/pypi/{project}/{version}/json`): the license of a release, which the
//! simple API (PEP 691/503) does not carry. `depfw audit --online` reads one document per
//! locked version and merges it into the simple index's records with [`merge_release`].
//! Pure functions: fetching is the caller's job.
//!
//! The license is, in order:
//! 1. `info.license_expression` (PEP 639: an SPDX expression, authoritative when present);
//! 2. `info.license` when it is a short SPDX expression (it often holds the whole license
//!    text, which names no license the policy can match);
//! 3. the `License ::` trove classifiers: known ones as SPDX ids joined with `AND`
//!    (classifiers do not say whether several licenses are alternatives, and assuming all
//!    apply never hides a denied one), else an unknown classifier's own name
//!    (`Other/Proprietary License`), which the license check reports as unparsable;
//! 4. `info.license` as free text, so that a package declaring only a license text reads as
//!    "not an SPDX expression" rather than "no license declared".

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::page::ReleaseKey;
use crate::policy::license::is_spdx_expression;
use crate::registry::{ProtocolError, VersionRecord};

/// Longer `license` values are license texts, whatever they parse as.
const SHORT_LICENSE_MAX: usize = 100;

#[derive(Deserialize)]
struct Response {
    info: Info,
    urls: Option<Vec<FileInfo>>,
}

#[derive(Deserialize)]
struct Info {
    license_expression: Option<String>,
    license: Option<String>,
    classifiers: Option<Vec<String>>,
    #[serde(default)]
    yanked: bool,
    yanked_reason: Option<String>,
}

#[derive(Deserialize)]
struct FileInfo {
    upload_time_iso_8601: Option<DateTime<Utc>>,
}

/// What the JSON API says about one release.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseInfo {
    /// See the module docs for where it comes from.
    pub license: Option<String>,
    /// The earliest upload of the release's files.
    pub published: Option<DateTime<Utc>>,
    /// Yanked, with the reason (empty when none was given).
    pub yanked: Option<String>,
}

/// Parses a `/pypi/{project}/{version}/json` response; unknown fields are ignored.
pub fn parse_release_json(body: &[u8]) -> Result<ReleaseInfo, ProtocolError> {
    let response: Response = serde_json::from_slice(body)
        .map_err(|e| ProtocolError::BadUpstream(format!("PyPI JSON API response: {e}")))?;
    let info = response.info;
    let published = response
        .urls
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f.upload_time_iso_8601)
        .min();
    Ok(ReleaseInfo {
        // The release's own metadata: nothing in it means no license declared.
        license: Some(
            license_of(
                info.license_expression.as_deref(),
                info.license.as_deref(),
                info.classifiers.as_deref().unwrap_or_default(),
            )
            .unwrap_or_default(),
        ),
        published,
        yanked: info.yanked.then(|| info.yanked_reason.unwrap_or_default()),
    })
}

/// Adds the JSON API's license to a simple-index record, and its upload time and yank where
/// the index said nothing (plain HTML pages carry neither).
pub fn merge_release(record: &mut VersionRecord, release: &ReleaseInfo) {
    let meta = &mut record.metadata;
    meta.license = meta.license.take().or_else(|| release.license.clone());
    meta.published = meta.published.or(release.published);
    meta.yanked = meta.yanked.take().or_else(|| release.yanked.clone());
}

#[derive(Deserialize)]
struct ProjectResponse {
    #[serde(default)]
    releases: std::collections::HashMap<String, Vec<FileInfo>>,
}

/// The upload time of each release in a project-level `/pypi/{project}/json` response
/// (its files' earliest), keyed by the release's normalised version; what `depfw serve`
/// asks when an index page (PEP 503 HTML) carries no times.
pub(crate) fn parse_project_times(
    body: &[u8],
) -> Result<std::collections::HashMap<ReleaseKey, DateTime<Utc>>, ProtocolError> {
    let response: ProjectResponse = serde_json::from_slice(body)
        .map_err(|e| ProtocolError::BadUpstream(format!("PyPI JSON API response: {e}")))?;
    Ok(response
        .releases
        .into_iter()
        .filter_map(|(version, files)| {
            let earliest = files.iter().filter_map(|f| f.upload_time_iso_8601).min()?;
            Some((ReleaseKey::of(&version), earliest))
        })
        .collect())
}

/// Fills the publish times an index page left out from [`parse_project_times`], and the
/// project's creation (its earliest upload) where it was unknown.
pub(crate) fn fill_publish_times(
    records: &mut [VersionRecord],
    times: &std::collections::HashMap<ReleaseKey, DateTime<Utc>>,
) {
    let created = times.values().min().copied();
    for record in records {
        let meta = &mut record.metadata;
        if meta.published.is_none() {
            meta.published = times.get(&ReleaseKey::of(&record.version_text)).copied();
        }
        meta.package_created = meta.package_created.or(created);
    }
}

/// A declared value; `UNKNOWN` is what old setuptools wrote for "not given".
fn present(s: Option<&str>) -> Option<&str> {
    s.map(str::trim)
        .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("UNKNOWN"))
}

fn license_of(
    expression: Option<&str>,
    license: Option<&str>,
    classifiers: &[String],
) -> Option<String> {
    if let Some(expression) = present(expression) {
        return Some(expression.to_owned());
    }
    let license = present(license);
    if let Some(short) = license
        .filter(|l| l.len() <= SHORT_LICENSE_MAX && !l.contains('\n') && is_spdx_expression(l))
    {
        return Some(short.to_owned());
    }
    let mut known: Vec<&str> = Vec::new();
    let mut unknown = None;
    for name in classifiers
        .iter()
        .filter_map(|c| c.strip_prefix("License :: "))
    {
        match classifier_spdx(name) {
            Some(id) if !known.contains(&id) => known.push(id),
            Some(_) => {}
            // A category, not a license.
            None if name == "OSI Approved" => {}
            None => {
                unknown.get_or_insert(name.rsplit(" :: ").next().unwrap_or(name));
            }
        }
    }
    if !known.is_empty() {
        return Some(known.join(" AND "));
    }
    unknown.or(license).map(str::to_owned)
}

/// SPDX ids of the common license classifiers (<https://pypi.org/classifiers/>, without the
/// `License :: ` prefix). Unversioned names take the version nearly every user of the
/// classifier means: `Apache Software License` is Apache-2.0, `BSD License` BSD-3-Clause
/// (numpy, scipy, pandas, Django, Flask, click), and an unversioned GPL lets the licensee
/// pick any version, as its own text says.
fn classifier_spdx(name: &str) -> Option<&'static str> {
    let id = match name.strip_prefix("OSI Approved :: ").unwrap_or(name) {
        "MIT License" => "MIT",
        "MIT No Attribution License (MIT-0)" => "MIT-0",
        "BSD License" => "BSD-3-Clause",
        "Apache Software License" => "Apache-2.0",
        "ISC License (ISCL)" => "ISC",
        "Python Software Foundation License" => "PSF-2.0",
        "Mozilla Public License 2.0 (MPL 2.0)" => "MPL-2.0",
        "Mozilla Public License 1.1 (MPL 1.1)" => "MPL-1.1",
        "GNU General Public License (GPL)" => "GPL-1.0-or-later",
        "GNU General Public License v2 (GPLv2)" => "GPL-2.0-only",
        "GNU General Public License v2 or later (GPLv2+)" => "GPL-2.0-or-later",
        "GNU General Public License v3 (GPLv3)" => "GPL-3.0-only",
        "GNU General Public License v3 or later (GPLv3+)" => "GPL-3.0-or-later",
        "GNU Library or Lesser General Public License (LGPL)" => "LGPL-2.0-or-later",
        "GNU Lesser General Public License v2 (LGPLv2)" => "LGPL-2.0-only",
        "GNU Lesser General Public License v2 or later (LGPLv2+)" => "LGPL-2.0-or-later",
        "GNU Lesser General Public License v3 (LGPLv3)" => "LGPL-3.0-only",
        "GNU Lesser General Public License v3 or later (LGPLv3+)" => "LGPL-3.0-or-later",
        "GNU Affero General Public License v3" => "AGPL-3.0-only",
        "GNU Affero General Public License v3 or later (AGPLv3+)" => "AGPL-3.0-or-later",
        "Eclipse Public License 2.0 (EPL-2.0)" => "EPL-2.0",
        "European Union Public Licence 1.2 (EUPL 1.2)" => "EUPL-1.2",
        "Boost Software License 1.0 (BSL-1.0)" => "BSL-1.0",
        "The Unlicense (Unlicense)" => "Unlicense",
        "zlib/libpng License" => "Zlib",
        "Historical Permission Notice and Disclaimer (HPND)" => "HPND",
        "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication" => "CC0-1.0",
        _ => return None,
    };
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classifiers(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| format!("License :: {n}")).collect()
    }

    #[test]
    fn expression_then_short_license_then_classifiers() {
        let gpl = classifiers(&["OSI Approved :: GNU General Public License v3 (GPLv3)"]);
        assert_eq!(
            license_of(Some("MIT OR Apache-2.0"), Some("BSD"), &gpl).as_deref(),
            Some("MIT OR Apache-2.0")
        );
        assert_eq!(
            license_of(None, Some("MIT License"), &gpl).as_deref(),
            Some("MIT License")
        );
        assert_eq!(
            license_of(Some(""), Some("UNKNOWN"), &gpl).as_deref(),
            Some("GPL-3.0-only")
        );
        let text = "Copyright (c) 2020 Someone\n\nPermission is hereby granted, free of charge";
        assert_eq!(
            license_of(None, Some(text), &gpl).as_deref(),
            Some("GPL-3.0-only")
        );
        // Alone, a license text is still not "no license".
        assert_eq!(license_of(None, Some(text), &[]).as_deref(), Some(text));
        assert_eq!(license_of(None, None, &[]), None);
        // Parsable but long: a text that happens to start with a license name.
        let long = format!("MIT{}", " ".repeat(SHORT_LICENSE_MAX));
        assert_eq!(
            license_of(None, Some(&long), &[]).as_deref(),
            Some(long.trim())
        );
    }

    #[test]
    fn classifiers_map_to_spdx() {
        let both = classifiers(&[
            "OSI Approved",
            "OSI Approved :: Apache Software License",
            "OSI Approved :: BSD License",
            "OSI Approved :: Apache Software License",
        ]);
        assert_eq!(
            license_of(None, None, &both).as_deref(),
            Some("Apache-2.0 AND BSD-3-Clause")
        );
        let odd = classifiers(&["Other/Proprietary License", "Freeware"]);
        assert_eq!(
            license_of(None, None, &odd).as_deref(),
            Some("Other/Proprietary License")
        );
        // Every mapped id is one the license check parses.
        for (name, id) in [
            ("OSI Approved :: ISC License (ISCL)", "ISC"),
            (
                "OSI Approved :: Python Software Foundation License",
                "PSF-2.0",
            ),
            (
                "OSI Approved :: GNU Library or Lesser General Public License (LGPL)",
                "LGPL-2.0-or-later",
            ),
            (
                "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication",
                "CC0-1.0",
            ),
        ] {
            assert_eq!(
                license_of(None, None, &classifiers(&[name])).as_deref(),
                Some(id)
            );
            assert!(is_spdx_expression(id), "{id}");
        }
    }

    #[test]
    fn parses_the_document_and_rejects_a_malformed_one() {
        let body = br#"{"info": {"license": null, "license_expression": "MIT",
            "classifiers": [], "yanked": true, "yanked_reason": "broken"},
            "urls": [{"upload_time_iso_8601": "2023-05-22T15:12:44.175585Z"},
                     {"upload_time_iso_8601": "2023-05-22T15:12:42.313790Z"}],
            "vulnerabilities": []}"#;
        let info = parse_release_json(body).unwrap();
        assert_eq!(info.license.as_deref(), Some("MIT"));
        assert_eq!(info.yanked.as_deref(), Some("broken"));
        assert_eq!(
            info.published.map(|t| t.to_rfc3339()),
            Some("2023-05-22T15:12:42.313790+00:00".to_owned())
        );
        for bad in [
            &b"{\"info\": "[..],
            b"{\"urls\": []}",
            b"{\"info\": {\"classifiers\": \"MIT\"}}",
        ] {
            assert!(parse_release_json(bad).is_err());
        }
    }
}
