//! SBOMs as `depfw audit` input: `depfw audit bom.cdx.json` or `depfw audit app.spdx.json`.
//!
//! Teams often have an SBOM (from syft, cdxgen, `cargo cyclonedx`, a vendor) rather than the
//! lockfiles behind it. Both CycloneDX JSON (any 1.x) and SPDX 2.x JSON name packages by
//! package URL: CycloneDX in each component's `purl` (nested components included), SPDX in
//! a package's `PACKAGE-MANAGER` external reference of type `purl`. Packages of the three
//! ecosystems depfw judges are scanned; other purl types (maven, golang, …) and entries
//! without a purl are skipped. A purl that cannot be read is an error located at its line.

use std::io::Read as _;
use std::path::Path;

use serde::Deserialize;

use super::support::{dedup, from_json, LineIndex};
use super::{LockedPackage, LockfileKind, PackageSource, ParseError};
use crate::package::purl;

/// How much of a file [`sniff`] reads: both formats name themselves in the first keys
/// tools write.
const SNIFF_BYTES: u64 = 64 * 1024;

/// Recognises an SBOM by its content, for a file named explicitly whose name says nothing
/// (`sbom.json`, `bom.json`). `None` when it is neither, or cannot be read.
pub(crate) fn sniff(path: &Path) -> Option<LockfileKind> {
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(SNIFF_BYTES)
        .read_to_end(&mut head)
        .ok()?;
    let head = String::from_utf8_lossy(&head);
    let head = head.trim_start_matches('\u{feff}').trim_start();
    if !head.starts_with('{') {
        return None;
    }
    if head.contains("\"bomFormat\"") && head.contains("\"CycloneDX\"") {
        Some(LockfileKind::CycloneDx)
    } else if head.contains("\"spdxVersion\"") {
        Some(LockfileKind::Spdx)
    } else {
        None
    }
}

#[derive(Deserialize)]
struct CycloneDx {
    #[serde(rename = "bomFormat")]
    bom_format: String,
    #[serde(default)]
    components: Vec<Component>,
}

#[derive(Deserialize)]
struct Component {
    #[serde(default)]
    purl: Option<String>,
    #[serde(default)]
    version: Option<String>,
    /// Sub-components (a bundle's contents); serde_json's recursion limit bounds nesting.
    #[serde(default)]
    components: Vec<Component>,
}

#[derive(Deserialize)]
struct Spdx {
    #[serde(rename = "spdxVersion")]
    spdx_version: String,
    #[serde(default)]
    packages: Vec<SpdxPackage>,
}

#[derive(Deserialize)]
struct SpdxPackage {
    #[serde(default, rename = "versionInfo")]
    version_info: Option<String>,
    #[serde(default, rename = "externalRefs")]
    external_refs: Vec<ExternalRef>,
}

#[derive(Deserialize)]
struct ExternalRef {
    #[serde(rename = "referenceCategory")]
    category: String,
    #[serde(rename = "referenceType")]
    kind: String,
    #[serde(rename = "referenceLocator")]
    locator: String,
}

/// The packages a CycloneDX JSON document lists.
pub(crate) fn parse_cyclonedx(path: &Path, text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    let bom: CycloneDx = from_json(path, text)?;
    if bom.bom_format != "CycloneDX" {
        return Err(ParseError::new(
            path,
            None,
            format!("`bomFormat` is `{}`, not `CycloneDX`", bom.bom_format),
        ));
    }
    let mut reader = Reader::new(path, text);
    let mut stack: Vec<&Component> = bom.components.iter().rev().collect();
    while let Some(c) = stack.pop() {
        if let Some(raw) = &c.purl {
            reader.add(raw, c.version.as_deref())?;
        }
        stack.extend(c.components.iter().rev());
    }
    Ok(dedup(reader.packages))
}

/// The packages an SPDX 2.x JSON document lists.
pub(crate) fn parse_spdx(path: &Path, text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    let doc: Spdx = from_json(path, text)?;
    if !doc.spdx_version.starts_with("SPDX-2.") {
        return Err(ParseError::new(
            path,
            None,
            format!(
                "`spdxVersion` is `{}`: depfw reads SPDX 2.x JSON",
                doc.spdx_version
            ),
        ));
    }
    let mut reader = Reader::new(path, text);
    for package in &doc.packages {
        for r in &package.external_refs {
            // SPDX 2.3 spells the category with a hyphen, 2.2 with an underscore.
            let manager = matches!(r.category.as_str(), "PACKAGE-MANAGER" | "PACKAGE_MANAGER");
            if manager && r.kind == "purl" {
                reader.add(&r.locator, package.version_info.as_deref())?;
            }
        }
    }
    Ok(dedup(reader.packages))
}

/// Turns purls into packages, locating each by the first occurrence of its text after the
/// previous one's: documents list them in order, so this stays one pass over the text.
struct Reader<'a> {
    path: &'a Path,
    text: &'a str,
    lines: LineIndex,
    /// Where the next purl is searched from; `None` once one was not found (written with
    /// escapes), so a hostile document cannot make every search scan the whole text.
    cursor: Option<usize>,
    packages: Vec<LockedPackage>,
}

impl<'a> Reader<'a> {
    fn new(path: &'a Path, text: &'a str) -> Self {
        Reader {
            path,
            text,
            lines: LineIndex::new(text),
            cursor: Some(0),
            packages: Vec::new(),
        }
    }

    fn locate(&mut self, raw: &str) -> Option<u32> {
        let from = self.cursor?;
        let quoted = format!("\"{raw}\"");
        match self.text.get(from..).and_then(|rest| rest.find(&quoted)) {
            Some(at) => {
                self.cursor = Some(from + at + quoted.len());
                Some(self.lines.line_of(from + at))
            }
            None => {
                self.cursor = None;
                None
            }
        }
    }

    /// Adds the package `raw` names; `version` is the entry's own, used when the purl has
    /// none.
    fn add(&mut self, raw: &str, version: Option<&str>) -> Result<(), ParseError> {
        let line = self.locate(raw);
        let p = purl::parse(raw).map_err(|e| ParseError::new(self.path, line, e.to_string()))?;
        let Some(ecosystem) = p.ecosystem else {
            return Ok(());
        };
        let version = if p.version.is_empty() {
            version.unwrap_or_default().to_owned()
        } else {
            p.version.clone()
        };
        let source = if let Some(url) = p.qualifier("vcs_url") {
            PackageSource::Git {
                url: url.to_owned(),
            }
        } else if let Some(url) = p.qualifier("download_url") {
            PackageSource::Url {
                url: url.to_owned(),
            }
        } else {
            PackageSource::Registry {
                url: p.qualifier("repository_url").map(str::to_owned),
            }
        };
        self.packages.push(LockedPackage {
            ecosystem,
            name: p.name,
            version,
            source,
            line,
            metadata: None,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::Ecosystem;

    #[test]
    fn cyclonedx_components_nested_and_not() {
        let text = r#"{
  "bomFormat": "CycloneDX", "specVersion": "1.5",
  "components": [
    {"type": "library", "name": "core", "purl": "pkg:npm/%40babel/core@7.24.0"},
    {"type": "library", "name": "x", "purl": "pkg:maven/org.x/x@1"},
    {"type": "library", "name": "nopurl"},
    {"type": "application", "name": "app", "components": [
      {"type": "library", "name": "rand", "version": "0.8.5", "purl": "pkg:cargo/rand"}
    ]}
  ]
}"#;
        let packages = parse_cyclonedx(Path::new("bom.cdx.json"), text).unwrap();
        let got: Vec<_> = packages
            .iter()
            .map(|p| (p.ecosystem, p.name.as_str(), p.version.as_str(), p.line))
            .collect();
        assert_eq!(
            got,
            [
                (Ecosystem::Npm, "@babel/core", "7.24.0", Some(4)),
                (Ecosystem::CratesIo, "rand", "0.8.5", Some(8)),
            ]
        );
    }

    #[test]
    fn spdx_package_manager_purls() {
        let text = r#"{"spdxVersion": "SPDX-2.3", "packages": [
 {"name": "requests", "versionInfo": "2.31.0", "externalRefs": [
  {"referenceCategory": "SECURITY", "referenceType": "cpe23Type", "referenceLocator": "cpe:2.3:a:x"},
  {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:pypi/requests@2.31.0"}]}
]}"#;
        let packages = parse_spdx(Path::new("a.spdx.json"), text).unwrap();
        assert_eq!(packages.len(), 1);
        assert_eq!(
            (packages[0].name.as_str(), packages[0].line),
            ("requests", Some(4))
        );
    }

    #[test]
    fn hostile_documents_are_located_errors() {
        let path = Path::new("bom.cdx.json");
        let bad_purl =
            "{\"bomFormat\": \"CycloneDX\",\n\"components\": [\n{\"purl\": \"npm/x@1\"}]}";
        let err = parse_cyclonedx(path, bad_purl).unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert!(err.message.contains("pkg:"), "{err}");
        let deep = format!(
            "{{\"bomFormat\": \"CycloneDX\", \"components\": {}{}}}",
            "[{\"components\": ".repeat(10_000),
            "]}".repeat(10_000)
        );
        let err = parse_cyclonedx(path, &deep).unwrap_err();
        assert!(err.message.contains("recursion limit"), "{err}");
        let err = parse_cyclonedx(path, "{\"bomFormat\": \"SPDX\"}").unwrap_err();
        assert!(err.message.contains("not `CycloneDX`"), "{err}");
        let err =
            parse_spdx(Path::new("a.spdx.json"), "{\"spdxVersion\": \"SPDX-3.0\"}").unwrap_err();
        assert!(err.message.contains("2.x"), "{err}");
        let err = parse_spdx(Path::new("a.spdx.json"), "{\"spdxVersion\": ").unwrap_err();
        assert_eq!(err.line, Some(1), "{err}");
    }
}
