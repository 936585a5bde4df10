//! Package URLs (purl, <https://github.com/package-url/purl-spec>): how an SBOM names a
//! package version. `depfw audit --format cyclonedx` and `depfw log sbom` write them;
//! `depfw audit` reads them back from the CycloneDX and SPDX documents it scans. Only the
//! three types depfw judges are mapped (`npm`, `pypi`, `cargo`); others are left to the
//! caller to skip.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::Ecosystem;

/// What a purl segment or qualifier value may carry unencoded: the spec's unreserved set.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'~');

/// Longest purl read: the names and versions it carries are bounded far below this.
const MAX_LEN: usize = 4096;

/// The purl type of `ecosystem`.
pub fn purl_type(ecosystem: Ecosystem) -> &'static str {
    match ecosystem {
        Ecosystem::Npm => "npm",
        Ecosystem::PyPI => "pypi",
        Ecosystem::CratesIo => "cargo",
    }
}

/// The purl of `name@version` in `ecosystem`, with `qualifiers` (`(key, value)`, keys
/// sorted as the spec asks). npm scopes become the namespace (`%40scope`), npm and PyPI
/// names are lower-cased and PyPI's `_` becomes `-`, as the spec's type rules say.
pub fn format(
    ecosystem: Ecosystem,
    name: &str,
    version: &str,
    qualifiers: &[(&str, &str)],
) -> String {
    let enc = |s: &str| utf8_percent_encode(s, SEGMENT).to_string();
    let path = match ecosystem {
        Ecosystem::Npm => {
            let name = name.to_lowercase();
            match name.split_once('/') {
                Some((scope, rest)) if scope.starts_with('@') => {
                    format!("{}/{}", enc(scope), enc(rest))
                }
                _ => enc(&name),
            }
        }
        Ecosystem::PyPI => enc(&name.to_lowercase().replace('_', "-")),
        Ecosystem::CratesIo => enc(name),
    };
    let mut purl = format!("pkg:{}/{path}", purl_type(ecosystem));
    if !version.is_empty() {
        purl.push('@');
        purl.push_str(&enc(version));
    }
    let mut qualifiers: Vec<_> = qualifiers.iter().filter(|(_, v)| !v.is_empty()).collect();
    qualifiers.sort_by_key(|(k, _)| *k);
    for (i, (key, value)) in qualifiers.into_iter().enumerate() {
        purl.push(if i == 0 { '?' } else { '&' });
        purl.push_str(key);
        purl.push('=');
        purl.push_str(&enc(value));
    }
    purl
}

/// A purl read back: the package it names, when its type is one depfw judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purl {
    /// `None`: a type depfw does not judge (`maven`, `golang`, …), kept in `kind`.
    pub ecosystem: Option<Ecosystem>,
    pub kind: String,
    /// The full name: npm's `@scope/name`, otherwise the name.
    pub name: String,
    /// Empty when the purl names no version.
    pub version: String,
    /// Decoded qualifiers (`repository_url`, `vcs_url`, `download_url`, …).
    pub qualifiers: Vec<(String, String)>,
}

impl Purl {
    pub fn qualifier(&self, key: &str) -> Option<&str> {
        self.qualifiers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a purl could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid package URL `{shown}`: {why}")]
pub struct PurlError {
    /// The purl, cut short when long.
    shown: String,
    why: &'static str,
}

/// Reads a purl (`pkg:type/namespace/name@version?qualifiers#subpath`).
pub fn parse(raw: &str) -> Result<Purl, PurlError> {
    let err = |why| PurlError {
        shown: raw.chars().take(120).collect(),
        why,
    };
    if raw.len() > MAX_LEN {
        return Err(err("longer than 4096 bytes"));
    }
    let rest = match raw.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("pkg:") => &raw[4..],
        _ => return Err(err("it does not start with `pkg:`")),
    };
    let rest = rest.trim_start_matches('/');
    let rest = rest
        .split_once('#')
        .map_or(rest, |(before, _subpath)| before);
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (kind, path) = rest
        .split_once('/')
        .ok_or_else(|| err("no name after the type"))?;
    let kind = kind.to_ascii_lowercase();
    // The version follows the last `@` after the last `/`: an unencoded npm scope's `@`
    // comes before it.
    let last_slash = path.rfind('/').map_or(0, |i| i + 1);
    let (path, version) = match path[last_slash..].rfind('@') {
        Some(at) => (&path[..last_slash + at], &path[last_slash + at + 1..]),
        None => (path, ""),
    };
    let decode = |s: &str| {
        percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| err("a part is not UTF-8 once percent-decoded"))
    };
    let segments = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect::<Result<Vec<_>, _>>()?;
    let name = match segments.as_slice() {
        [] => return Err(err("no name after the type")),
        [name] => name.clone(),
        [namespace @ .., name] => format!("{}/{name}", namespace.join("/")),
    };
    let qualifiers = query
        .split('&')
        .filter(|q| !q.is_empty())
        .map(|q| {
            let (k, v) = q.split_once('=').unwrap_or((q, ""));
            Ok((k.to_ascii_lowercase(), decode(v)?))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ecosystem = match kind.as_str() {
        "npm" => Some(Ecosystem::Npm),
        "pypi" => Some(Ecosystem::PyPI),
        "cargo" => Some(Ecosystem::CratesIo),
        _ => None,
    };
    Ok(Purl {
        ecosystem,
        kind,
        name,
        version: decode(version)?,
        qualifiers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_each_type_as_the_spec_spells_it() {
        assert_eq!(
            format(Ecosystem::Npm, "@Babel/core", "7.24.0", &[]),
            "pkg:npm/%40babel/core@7.24.0"
        );
        assert_eq!(
            format(Ecosystem::PyPI, "Django_Allauth", "1.0+local", &[]),
            "pkg:pypi/django-allauth@1.0%2Blocal"
        );
        assert_eq!(
            format(Ecosystem::CratesIo, "serde_json", "1.0.0", &[]),
            "pkg:cargo/serde_json@1.0.0"
        );
        assert_eq!(
            format(
                Ecosystem::Npm,
                "x",
                "1.0.0",
                &[("vcs_url", "git+https://h/x.git#ab"), ("a", "")]
            ),
            "pkg:npm/x@1.0.0?vcs_url=git%2Bhttps%3A%2F%2Fh%2Fx.git%23ab"
        );
    }

    #[test]
    fn parses_what_it_formats_and_what_other_tools_write() {
        let p = parse("pkg:npm/%40babel/core@7.24.0").unwrap();
        assert_eq!(
            (p.ecosystem, p.name.as_str(), p.version.as_str()),
            (Some(Ecosystem::Npm), "@babel/core", "7.24.0")
        );
        let p = parse("pkg:npm/@types/node@20.1.0?repository_url=https%3A%2F%2Fr.example").unwrap();
        assert_eq!(p.name, "@types/node");
        assert_eq!(p.qualifier("repository_url"), Some("https://r.example"));
        let p = parse("PKG:pypi/requests@2.31.0#src").unwrap();
        assert_eq!(
            (p.ecosystem, p.version.as_str()),
            (Some(Ecosystem::PyPI), "2.31.0")
        );
        let p = parse("pkg:maven/org.apache/commons@1.0").unwrap();
        assert_eq!((p.ecosystem, p.name.as_str()), (None, "org.apache/commons"));
        let p = parse("pkg:cargo/rand").unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("rand", ""));
        for bad in ["npm/x@1", "pkg:npm", "pkg:npm/", "pkg:npm/%FF@1"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse(&format!("pkg:npm/{}", "a".repeat(5000))).is_err());
    }
}
