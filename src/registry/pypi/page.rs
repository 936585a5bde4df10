//! The project page model shared by both upstream formats, and its version records.
//!
//! Upstream pages arrive as PEP 691 JSON or PEP 503 HTML (this machine's mirror only sends
//! HTML); both parse into one [`ProjectPage`] so the proxy can answer in whichever format
//! the client negotiated.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use url::Url;

use super::filename::DistFilename;
use super::paths::{FileKind, FileRequest};
use crate::package::{Ecosystem, PackageName, Version};
use crate::policy::signals::{HistoryBuilder, Lineage, ReleaseFacts};
use crate::policy::VersionMetadata;
use crate::registry::{ArtifactRecord, Digest, ProtocolError, VersionRecord};

/// Hash name → lower-case hex digest, as in PEP 691 `hashes`.
pub type Hashes = BTreeMap<String, String>;

/// One file of a project page.
#[derive(Debug, Clone, PartialEq)]
pub struct PageFile {
    pub filename: String,
    /// Absolute upstream URL, without fragment.
    pub url: Url,
    pub hashes: Hashes,
    pub requires_python: Option<String>,
    /// PEP 592: `None` = not yanked; `Some("")` = yanked without a reason.
    pub yanked: Option<String>,
    /// PEP 658/714 `core-metadata`: `None` = not advertised; `Some(empty)` = advertised
    /// without hashes (`true`).
    pub core_metadata: Option<Hashes>,
    /// The legacy spelling `dist-info-metadata`, kept because old pip reads only it.
    pub dist_info_metadata: Option<Hashes>,
    pub size: Option<u64>,
    /// PEP 700 `upload-time` (JSON; HTML only via the non-standard `data-upload-time`).
    pub upload_time: Option<DateTime<Utc>>,
    /// PEP 740 provenance URL, kept verbatim.
    pub provenance: Option<Value>,
    /// The release this file belongs to, from its name; `None` if the name does not parse
    /// for this project (such files are never served: nothing could be checked for them).
    pub version_text: Option<String>,
    /// JSON keys depfw does not know, passed through.
    pub extra: Map<String, Value>,
}

impl PageFile {
    /// The digest the downloaded bytes must match.
    pub fn digest(&self) -> Result<Option<Digest>, ProtocolError> {
        sha256_digest(&self.hashes)
    }

    /// The digest of the PEP 658 `.metadata` file, if advertised with one.
    pub fn core_metadata_digest(&self) -> Result<Option<Digest>, ProtocolError> {
        match self
            .core_metadata
            .as_ref()
            .or(self.dist_info_metadata.as_ref())
        {
            Some(hashes) => sha256_digest(hashes),
            None => Ok(None),
        }
    }
}

/// A file request checked against its project page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedFile {
    /// The release's [`VersionRecord::version_text`]: evaluate the policy on that record.
    pub version_text: String,
    /// What the served bytes must hash to; `None` if upstream published no SHA-256.
    pub digest: Option<Digest>,
}

/// A project page in either upstream format.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectPage {
    /// The project (registry spelling from the request; JSON `name` is normalised).
    pub name: PackageName,
    /// Upstream `meta.api-version` / `pypi:repository-version`.
    pub api_version: Option<String>,
    /// PEP 792 project status (`active`, `archived`, `quarantined`, `deprecated`).
    pub project_status: Option<String>,
    /// PEP 700 `versions` (JSON only), in upstream order.
    pub versions: Vec<String>,
    pub files: Vec<PageFile>,
    /// Unknown top-level JSON keys and unknown `meta` keys, passed through.
    pub extra: Map<String, Value>,
    pub meta_extra: Map<String, Value>,
}

impl ProjectPage {
    /// The file named `filename`, to check a download against (version and digest).
    pub fn file(&self, filename: &str) -> Option<&PageFile> {
        self.files.iter().find(|f| f.filename == filename)
    }

    /// Checks a file request against this page (the page of one of
    /// [`super::FileRequest::projects`]): the release the file belongs to and the digest
    /// the bytes must match (the core-metadata digest for `.metadata` requests).
    /// `BadPath` when the page does not list the file or its release is unknown, so the
    /// proxy refuses files it could not check.
    pub fn resolve_file(&self, request: &FileRequest) -> Result<ResolvedFile, ProtocolError> {
        self.resolve_file_in(&self.records()?, request)
    }

    /// [`Self::resolve_file`] with this page's [`Self::records`] computed once by the caller.
    pub(crate) fn resolve_file_in(
        &self,
        records: &[VersionRecord],
        request: &FileRequest,
    ) -> Result<ResolvedFile, ProtocolError> {
        let not_checkable = |why: &str| {
            ProtocolError::BadPath(format!(
                "`{}` {why} on the page of `{}`",
                request.filename, self.name
            ))
        };
        let file = self
            .file(&request.filename)
            .ok_or_else(|| not_checkable("is not listed"))?;
        let version_text = file
            .version_text
            .clone()
            .ok_or_else(|| not_checkable("has no known release"))?;
        let digest = match request.kind {
            FileKind::Distribution => file.digest()?,
            FileKind::CoreMetadata => {
                if file.core_metadata.is_none() && file.dist_info_metadata.is_none() {
                    return Err(not_checkable("has no advertised metadata"));
                }
                file.core_metadata_digest()?
            }
        };
        let record_text = records
            .iter()
            .find(|r| ReleaseKey::of(&r.version_text) == ReleaseKey::of(&version_text))
            .map_or(version_text, |r| r.version_text.clone());
        Ok(ResolvedFile {
            version_text: record_text,
            digest,
        })
    }

    /// One record per release, files grouped by PEP 440-equal versions (`1.0` and `1.0.0`
    /// are one release). Files whose name does not parse belong to no record.
    pub fn records(&self) -> Result<Vec<VersionRecord>, ProtocolError> {
        let package_created = self.files.iter().filter_map(|f| f.upload_time).min();
        let mut records: Vec<(VersionRecord, Vec<&PageFile>)> = Vec::new();
        let mut index: HashMap<ReleaseKey, usize> = HashMap::new();
        let texts = self.versions.iter().map(|v| (v.as_str(), None)).chain(
            self.files
                .iter()
                .filter_map(|f| f.version_text.as_deref().map(|v| (v, Some(f)))),
        );
        for (text, file) in texts {
            let i = *index.entry(ReleaseKey::of(text)).or_insert_with(|| {
                records.push((
                    VersionRecord {
                        version_text: text.to_owned(),
                        version: Version::parse(Ecosystem::PyPI, text).ok(),
                        metadata: VersionMetadata {
                            publish_time_expected: true,
                            package_created,
                            ..VersionMetadata::default()
                        },
                        artifacts: Vec::new(),
                    },
                    Vec::new(),
                ));
                records.len() - 1
            });
            if let Some(file) = file {
                records[i].1.push(file);
            }
        }
        let mut history = HistoryBuilder::new();
        let positions: Vec<u32> = records
            .iter()
            .map(|(record, files)| {
                history.push(&ReleaseFacts {
                    version: &record.version_text,
                    published: files.iter().filter_map(|f| f.upload_time).min(),
                    // PEP 740: `provenance` in JSON, `data-provenance` in HTML; a release
                    // without files says nothing.
                    attested: (!files.is_empty())
                        .then(|| files.iter().any(|f| f.provenance.is_some())),
                    ..ReleaseFacts::default()
                })
            })
            .collect();
        let history = history.finish();
        records
            .into_iter()
            .zip(positions)
            .map(|((mut record, files), position)| {
                record.metadata.lineage = Some(Lineage::new(Arc::clone(&history), position));
                for file in &files {
                    record.artifacts.push(ArtifactRecord {
                        filename: file.filename.clone(),
                        upstream_url: file.url.to_string(),
                        digest: file.digest()?,
                    });
                }
                record.metadata.published = files.iter().filter_map(|f| f.upload_time).min();
                if !files.is_empty() && files.iter().all(|f| f.yanked.is_some()) {
                    let reason = files
                        .iter()
                        .filter_map(|f| f.yanked.as_deref())
                        .find(|r| !r.is_empty());
                    record.metadata.yanked = Some(reason.unwrap_or_default().to_owned());
                }
                Ok(record)
            })
            .collect()
    }
}

/// Identifies a release: PEP 440-equal versions are one release; a version PEP 440
/// rejects is only equal to itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ReleaseKey {
    Pep440(pep440_rs::Version),
    Raw(String),
}

impl ReleaseKey {
    pub(crate) fn of(text: &str) -> Self {
        match pep440_rs::Version::from_str(text) {
            Ok(v) => ReleaseKey::Pep440(v),
            Err(_) => ReleaseKey::Raw(text.to_owned()),
        }
    }
}

/// The version of `filename` if it belongs to `project`.
pub(crate) fn file_version(project: &PackageName, filename: &str) -> Option<String> {
    DistFilename::parse(filename)
        .ok()?
        .version_for(project)
        .map(str::to_owned)
}

pub(crate) fn sha256_digest(hashes: &Hashes) -> Result<Option<Digest>, ProtocolError> {
    let Some(hex_digest) = hashes.get("sha256") else {
        return Ok(None);
    };
    match hex::decode(hex_digest) {
        Ok(bytes) if bytes.len() == 32 => Ok(Some(Digest::Sha256(bytes))),
        _ => Err(ProtocolError::BadUpstream(format!(
            "invalid sha256 digest `{hex_digest}`"
        ))),
    }
}

pub(crate) fn parse_time(raw: &str) -> Result<DateTime<Utc>, ProtocolError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| ProtocolError::BadUpstream(format!("invalid upload time `{raw}`: {e}")))
}

/// PEP 629: a client must refuse a major version it does not know.
pub(crate) fn check_api_version(version: &str) -> Result<(), ProtocolError> {
    match version.split('.').next() {
        Some("1") => Ok(()),
        _ => Err(ProtocolError::BadUpstream(format!(
            "unsupported simple API version `{version}`"
        ))),
    }
}
