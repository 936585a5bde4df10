//! Sparse index files: one JSON object per line, one line per published version.
//!
//! Parsing is strict where it matters for filtering: a line that cannot be read fails the
//! whole file (with its line number) rather than being dropped or passed through unread,
//! since either would serve or hide a version no check ever looked at.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{parse_sha256, UpstreamConfig};
use crate::package::{normalize, Ecosystem, PackageName, Version};
use crate::policy::signals::{HistoryBuilder, Lineage, ReleaseFacts};
use crate::policy::VersionMetadata;
use crate::registry::{ArtifactRecord, Digest, Disposition, ProtocolError, VersionRecord};

/// The fields of an index line depfw reads; everything else is kept only in `raw`.
#[derive(Debug, Deserialize)]
struct Entry {
    name: String,
    vers: String,
    cksum: String,
    #[serde(default)]
    yanked: bool,
    pubtime: Option<String>,
}

/// One version's line.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexLine {
    /// The line exactly as upstream sent it (without the newline).
    pub raw: String,
    /// 1-based line number in the upstream file.
    pub line_number: usize,
    /// The crate name as this line spells it.
    pub name: String,
    pub record: VersionRecord,
}

/// A parsed index file.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexFile {
    pub lines: Vec<IndexLine>,
}

impl IndexFile {
    /// Parses an index file for `crate_name`. Blank lines are skipped; a line that is not
    /// JSON, lacks `name`/`vers`/`cksum`, has a bad checksum or `pubtime`, or names
    /// another crate fails with `BadUpstream` naming the line.
    pub fn parse(body: &[u8], crate_name: &PackageName) -> Result<Self, ProtocolError> {
        let text = std::str::from_utf8(body)
            .map_err(|e| ProtocolError::BadUpstream(format!("index file is not UTF-8: {e}")))?;
        let mut lines = Vec::new();
        for (i, raw) in text.split('\n').enumerate() {
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.trim().is_empty() {
                continue;
            }
            let line_number = i + 1;
            let bad = |why: String| {
                ProtocolError::BadUpstream(format!(
                    "index file of `{crate_name}`, line {line_number}: {why}"
                ))
            };
            let entry: Entry = serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
            if normalize(Ecosystem::CratesIo, &entry.name) != crate_name.key() {
                return Err(bad(format!("entry for another crate `{}`", entry.name)));
            }
            let digest = parse_sha256(&entry.cksum)
                .ok_or_else(|| bad(format!("invalid cksum `{}`", entry.cksum)))?;
            let published = entry
                .pubtime
                .as_deref()
                .map(|t| DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)))
                .transpose()
                .map_err(|e| bad(format!("invalid pubtime: {e}")))?;
            let record = VersionRecord {
                version: Version::parse(Ecosystem::CratesIo, &entry.vers).ok(),
                metadata: VersionMetadata {
                    publish_time_expected: true,
                    published,
                    yanked: entry.yanked.then(String::new),
                    ..VersionMetadata::default()
                },
                artifacts: vec![ArtifactRecord {
                    filename: format!("{}-{}.crate", entry.name, entry.vers),
                    upstream_url: String::new(),
                    digest: Some(digest),
                }],
                version_text: entry.vers,
            };
            lines.push(IndexLine {
                name: entry.name,
                raw: raw.to_owned(),
                line_number,
                record,
            });
        }
        let created = lines
            .iter()
            .filter_map(|l| l.record.metadata.published)
            .min();
        // Publish times only (the index says nothing of publishers or provenance): what
        // the release-burst signal reads.
        let mut history = HistoryBuilder::new();
        let positions: Vec<u32> = lines
            .iter()
            .map(|l| {
                history.push(&ReleaseFacts {
                    version: &l.record.version_text,
                    published: l.record.metadata.published,
                    ..ReleaseFacts::default()
                })
            })
            .collect();
        let history = history.finish();
        for (line, position) in lines.iter_mut().zip(positions) {
            line.record.metadata.package_created = created;
            line.record.metadata.lineage = Some(Lineage::new(Arc::clone(&history), position));
        }
        Ok(IndexFile { lines })
    }

    /// One record per line, in index order. `artifacts[0].upstream_url` is empty: the
    /// download URL depends on upstream's `config.json` (see [`Self::records_with_urls`]).
    pub fn records(&self) -> Vec<VersionRecord> {
        self.lines.iter().map(|l| l.record.clone()).collect()
    }

    /// [`Self::records`] with each artifact's upstream download URL filled in from
    /// upstream's `config.json`.
    pub fn records_with_urls(
        &self,
        config: &UpstreamConfig,
    ) -> Result<Vec<VersionRecord>, ProtocolError> {
        self.lines
            .iter()
            .map(|line| {
                let mut record = line.record.clone();
                for artifact in &mut record.artifacts {
                    let checksum = match &artifact.digest {
                        Some(Digest::Sha256(bytes)) => hex::encode(bytes),
                        _ => String::new(),
                    };
                    artifact.upstream_url = config
                        .crate_url(&line.name, &record.version_text, &checksum)?
                        .to_string();
                }
                Ok(record)
            })
            .collect()
    }

    /// The index file with only the versions `keep` accepts (called with each `vers`),
    /// their lines byte-for-byte, each ending in `\n`.
    pub fn render(&self, keep: &dyn Fn(&str) -> bool) -> String {
        self.render_with(&|v| {
            if keep(v) {
                Disposition::Keep
            } else {
                Disposition::Remove
            }
        })
    }

    /// The index file with each line as `show` says (called with each `vers`): kept lines
    /// byte-for-byte, removed lines left out, yanked lines re-serialised with
    /// `"yanked": true` (the index has no field for the reason). Each line ends in `\n`.
    pub(crate) fn render_with(&self, show: &dyn Fn(&str) -> Disposition) -> String {
        let mut out = String::new();
        for line in &self.lines {
            match show(&line.record.version_text) {
                Disposition::Keep => out.push_str(&line.raw),
                Disposition::Remove => continue,
                Disposition::Yank(_) => match yanked_line(&line.raw) {
                    Some(yanked) => out.push_str(&yanked),
                    None => continue,
                },
            }
            out.push('\n');
        }
        out
    }
}

/// `raw` with `yanked` set to true. `raw` parsed as an object in [`IndexFile::parse`]; if it
/// somehow does not now, the line is dropped rather than served unmarked.
fn yanked_line(raw: &str) -> Option<String> {
    let mut entry: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw).ok()?;
    entry.insert("yanked".to_owned(), serde_json::Value::Bool(true));
    Some(serde_json::Value::Object(entry).to_string())
}
