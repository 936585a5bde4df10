//! Loading OSV advisories from the shapes they are published in.
//!
//! `depfw feeds import <path>`, `depfw feeds sync` and the snapshot builder all come through
//! [`load_path`] / [`load_bytes`], which detect the shape: a directory tree of `.json`
//! records (the ossf, RustSec and PyPA repository layouts), JSON lines (one record per
//! line), an OSV per-ecosystem archive (`all.zip`, one record per file), a JSON array of
//! records, or an ossf-derived name list (`{"name": {"versions": [...]}}`, empty = all).
//!
//! Records are parsed with the `osv` crate's schema (`osv::schema::Vulnerability`), which
//! accepts every record of the shared data set (ossf, RustSec, PyPA: 35k records). It
//! rejects a record whose `modified` is missing or that names an ecosystem the crate does
//! not know; such a record is reported as an error naming its file (and line or archive
//! entry) rather than silently skipped, because a feed we cannot fully read should not
//! replace a good one. Parsing runs on all cores with scoped std threads.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ::osv::schema::{Event as OsvEvent, RangeType, Vulnerability};

use crate::diag::Severity;
use crate::package::{normalize, Ecosystem};

use super::matcher::{AffectedRange, RangeEvent, RangeKind};
use super::model::{Advisory, AdvisoryKind};
use super::FeedError;

/// What a load produced.
#[derive(Debug, Default)]
pub struct LoadedFeed {
    /// One entry per (record, affected npm/PyPI/crates.io package).
    pub advisories: Vec<Advisory>,
    /// Records read (including withdrawn ones and ones about other ecosystems).
    pub records: usize,
    /// Withdrawn records, ignored.
    pub withdrawn: usize,
    /// Records naming no npm, PyPI or crates.io package, ignored.
    pub other_ecosystems: usize,
    /// Records whose affected versions do not read (an NSWG range that is not node-semver),
    /// skipped rather than guessed.
    pub unreadable: usize,
}

impl LoadedFeed {
    fn merge(&mut self, other: LoadedFeed) {
        self.advisories.extend(other.advisories);
        self.records += other.records;
        self.withdrawn += other.withdrawn;
        self.other_ecosystems += other.other_ecosystems;
        self.unreadable += other.unreadable;
    }

    /// Adds NSWG records (one file, or NSWG's `index.json`).
    fn add_nswg<'a>(
        &mut self,
        origin: &Path,
        records: impl IntoIterator<Item = &'a serde_json::Value>,
    ) -> Result<(), FeedError> {
        for value in records {
            let record: super::nswg::NswgRecord =
                serde_json::from_value(value.clone()).map_err(|source| FeedError::Json {
                    path: origin.to_owned(),
                    source,
                })?;
            self.records += 1;
            match super::nswg::advisory(&record) {
                Ok(advisory) => self.advisories.push(advisory),
                Err(why) => {
                    tracing::warn!(path = %origin.display(), "skipped: {why}");
                    self.unreadable += 1;
                }
            }
        }
        Ok(())
    }

    /// Drops NSWG advisories read twice (NSWG's `index.json` repeats its per-record files),
    /// so a directory with both counts each record once. OSV records are left alone: one
    /// record may name a package in two `affected` entries, each with its own ranges.
    fn dedup_nswg(&mut self) {
        let mut seen = std::collections::HashSet::new();
        let before = self.advisories.len();
        self.advisories.retain(|a| {
            !a.id.starts_with(super::nswg::ID_PREFIX)
                || seen.insert((a.package.clone(), a.id.clone()))
        });
        self.records -= (before - self.advisories.len()).min(self.records);
    }

    fn add_record(&mut self, vuln: &Vulnerability) {
        self.records += 1;
        if vuln.withdrawn.is_some() {
            self.withdrawn += 1;
            return;
        }
        let before = self.advisories.len();
        self.advisories.extend(advisories_from_osv(vuln));
        if self.advisories.len() == before {
            self.other_ecosystems += 1;
        }
    }

    /// Advisory counts by ecosystem.
    pub fn counts_by_ecosystem(&self) -> BTreeMap<Ecosystem, usize> {
        let mut counts = BTreeMap::new();
        for a in &self.advisories {
            *counts.entry(a.ecosystem).or_default() += 1;
        }
        counts
    }
}

/// Loads a file or a directory tree, detecting its shape.
pub fn load_path(path: &Path) -> Result<LoadedFeed, FeedError> {
    let meta = std::fs::metadata(path).map_err(|source| FeedError::Io {
        path: path.to_owned(),
        source,
    })?;
    if meta.is_dir() {
        load_dir(path)
    } else {
        let bytes = read_file(path)?;
        load_bytes(path, &bytes)
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, FeedError> {
    std::fs::read(path).map_err(|source| FeedError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Loads an in-memory feed (a download, say); `origin` names it in errors.
pub fn load_bytes(origin: &Path, bytes: &[u8]) -> Result<LoadedFeed, FeedError> {
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return load_zip(origin, bytes);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| FeedError::Format {
        path: origin.to_owned(),
        detail: format!("not UTF-8 text: {e}"),
    })?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let records: Vec<Vulnerability> =
            serde_json::from_str(text).map_err(|source| FeedError::Json {
                path: origin.to_owned(),
                source,
            })?;
        let mut feed = LoadedFeed::default();
        records.iter().for_each(|r| feed.add_record(r));
        return Ok(feed);
    }
    if !trimmed.starts_with('{') {
        return Err(FeedError::Format {
            path: origin.to_owned(),
            detail: "expected an OSV record, JSON lines or a zip archive".to_owned(),
        });
    }
    if looks_like_json_lines(trimmed) {
        return load_json_lines(origin, text);
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|source| FeedError::Json {
            path: origin.to_owned(),
            source,
        })?;
    if super::nswg::is_record(&value) || super::nswg::is_index(&value) {
        let mut feed = LoadedFeed::default();
        match value.as_object() {
            Some(map) if !super::nswg::is_record(&value) => feed.add_nswg(origin, map.values())?,
            _ => feed.add_nswg(origin, [&value])?,
        }
        return Ok(feed);
    }
    if value.get("id").is_some() {
        let record: Vulnerability =
            serde_json::from_value(value).map_err(|source| FeedError::Json {
                path: origin.to_owned(),
                source,
            })?;
        let mut feed = LoadedFeed::default();
        feed.add_record(&record);
        return Ok(feed);
    }
    load_name_list(origin, &value)
}

/// JSON lines: the first line alone is a complete object and more lines follow.
fn looks_like_json_lines(text: &str) -> bool {
    let Some((first, rest)) = text.split_once('\n') else {
        return false;
    };
    !rest.trim().is_empty() && serde_json::from_str::<serde::de::IgnoredAny>(first).is_ok()
}

fn load_json_lines(origin: &Path, text: &str) -> Result<LoadedFeed, FeedError> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l))
        .collect();
    parallel(&lines, |chunk| {
        let mut feed = LoadedFeed::default();
        for (line, raw) in chunk {
            let record: Vulnerability =
                serde_json::from_str(raw).map_err(|source| FeedError::JsonLine {
                    path: origin.to_owned(),
                    line: *line,
                    source,
                })?;
            feed.add_record(&record);
        }
        Ok(feed)
    })
}

fn load_zip(origin: &Path, bytes: &[u8]) -> Result<LoadedFeed, FeedError> {
    let zip_error = |e: zip::result::ZipError| FeedError::Zip {
        path: origin.to_owned(),
        detail: e.to_string(),
    };
    let archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(zip_error)?;
    let indices: Vec<usize> = (0..archive.len()).collect();
    parallel(&indices, |chunk| {
        // Each thread walks the archive through its own reader over the shared bytes.
        let mut archive = archive.clone();
        let mut feed = LoadedFeed::default();
        let mut buf = Vec::new();
        for &i in chunk {
            let mut entry = archive.by_index(i).map_err(zip_error)?;
            if entry.is_dir() || !entry.name().ends_with(".json") {
                continue;
            }
            let name = entry.name().to_owned();
            buf.clear();
            entry
                .read_to_end(&mut buf)
                .map_err(|e| zip_error(e.into()))?;
            let record: Vulnerability =
                serde_json::from_slice(&buf).map_err(|source| FeedError::ZipEntry {
                    path: origin.to_owned(),
                    entry: name,
                    source,
                })?;
            feed.add_record(&record);
        }
        Ok(feed)
    })
}

fn load_dir(root: &Path) -> Result<LoadedFeed, FeedError> {
    let mut files = Vec::new();
    collect_files(root, &mut files)?;
    files.sort();
    let mut feed = parallel(&files, |chunk| {
        let mut feed = LoadedFeed::default();
        for path in chunk {
            let bytes = read_file(path)?;
            feed.merge(load_bytes(path, &bytes)?);
        }
        Ok(feed)
    })?;
    feed.dedup_nswg();
    Ok(feed)
}

/// `.json`, `.jsonl` and `.zip` files under `dir`, skipping hidden entries (`.git`).
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), FeedError> {
    let io_error = |source| FeedError::Io {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry.file_type().map_err(io_error)?;
        if kind.is_dir() {
            collect_files(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e == "json" || e == "jsonl" || e == "zip")
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Runs `work` over `items` split across the available cores; results merge in order, and
/// the first error (in item order) wins.
fn parallel<T: Sync>(
    items: &[T],
    work: impl Fn(&[T]) -> Result<LoadedFeed, FeedError> + Sync,
) -> Result<LoadedFeed, FeedError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk_len = items.len().div_ceil(threads).max(256);
    let results: Vec<Result<LoadedFeed, FeedError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk_len)
            .map(|chunk| scope.spawn(|| work(chunk)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut feed = LoadedFeed::default();
    for result in results {
        feed.merge(result?);
    }
    Ok(feed)
}

/// An ossf-derived name list: `{"<npm name>": {"versions": ["1.0.0", ...]}}`, an empty list
/// meaning every version. The records carry no ids, so each gets `<LIST>:<name>` where
/// `<LIST>` is the file's directory name upper-cased (`OSSF-NPM-2025H2:semvre`).
fn load_name_list(origin: &Path, value: &serde_json::Value) -> Result<LoadedFeed, FeedError> {
    let format_error = |detail: String| FeedError::Format {
        path: origin.to_owned(),
        detail,
    };
    let map = value
        .as_object()
        .ok_or_else(|| format_error("expected a JSON object".to_owned()))?;
    let list_name = origin
        .parent()
        .and_then(Path::file_name)
        .or_else(|| origin.file_stem())
        .map_or_else(
            || "MALICIOUS-LIST".to_owned(),
            |n| n.to_string_lossy().to_uppercase(),
        );
    let mut feed = LoadedFeed::default();
    for (name, entry) in map {
        let versions = entry
            .get("versions")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| {
                format_error(format!(
                    "`{name}`: neither an OSV record (no `id`) nor a name list entry \
                     (no `versions` array)"
                ))
            })?;
        let versions: Vec<String> = versions
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format_error(format!("`{name}`: a version is not a string")))
            })
            .collect::<Result<_, _>>()?;
        feed.records += 1;
        feed.advisories.push(Advisory {
            id: format!("{list_name}:{name}"),
            aliases: Vec::new(),
            ecosystem: Ecosystem::Npm,
            package: normalize(Ecosystem::Npm, name),
            kind: AdvisoryKind::Malicious,
            severity: Severity::Critical,
            published: None,
            modified: None,
            ranges: Vec::new(),
            all_versions: versions.is_empty(),
            versions,
            matcher: Default::default(),
        });
    }
    Ok(feed)
}

fn our_ecosystem(eco: &::osv::schema::Ecosystem) -> Option<Ecosystem> {
    match eco {
        ::osv::schema::Ecosystem::Npm => Some(Ecosystem::Npm),
        ::osv::schema::Ecosystem::PyPI => Some(Ecosystem::PyPI),
        ::osv::schema::Ecosystem::CratesIO => Some(Ecosystem::CratesIo),
        _ => None,
    }
}

/// The compact advisories of one OSV record: one per npm/PyPI/crates.io package it names
/// (several `affected` entries for the same package are merged; their ranges OR anyway).
pub(crate) fn advisories_from_osv(vuln: &Vulnerability) -> Vec<Advisory> {
    let kind = kind_of(vuln);
    let severity = severity_of(vuln, kind);
    let mut out: Vec<Advisory> = Vec::new();
    for affected in vuln.affected.iter().flatten() {
        let Some(package) = &affected.package else {
            continue;
        };
        let Some(ecosystem) = our_ecosystem(&package.ecosystem) else {
            continue;
        };
        let key = normalize(ecosystem, &package.name);
        let osv_ranges = affected.ranges.as_deref().unwrap_or_default();
        let versions = affected.versions.clone().unwrap_or_default();
        let all_versions = osv_ranges.is_empty() && versions.is_empty();
        let ranges = osv_ranges.iter().filter_map(convert_range);
        let idx = match out
            .iter()
            .position(|a| a.ecosystem == ecosystem && a.package == key)
        {
            Some(i) => i,
            None => {
                out.push(Advisory {
                    id: vuln.id.clone(),
                    aliases: vuln.aliases.clone().unwrap_or_default(),
                    ecosystem,
                    package: key,
                    kind,
                    severity,
                    published: vuln.published,
                    modified: Some(vuln.modified),
                    ranges: Vec::new(),
                    versions: Vec::new(),
                    all_versions: false,
                    matcher: Default::default(),
                });
                out.len() - 1
            }
        };
        let advisory = &mut out[idx];
        advisory.ranges.extend(ranges);
        advisory.versions.extend(versions);
        advisory.all_versions |= all_versions;
    }
    out
}

fn convert_range(range: &::osv::schema::Range) -> Option<AffectedRange> {
    let kind = match range.range_type {
        RangeType::Semver => RangeKind::Semver,
        RangeType::Ecosystem | RangeType::Unspecified => RangeKind::Ecosystem,
        // Commit hashes say nothing about release versions.
        _ => return None,
    };
    let events = range
        .events
        .iter()
        .filter_map(|e| match e {
            OsvEvent::Introduced(v) => Some(RangeEvent::Introduced(v.clone())),
            OsvEvent::Fixed(v) => Some(RangeEvent::Fixed(v.clone())),
            OsvEvent::LastAffected(v) => Some(RangeEvent::LastAffected(v.clone())),
            OsvEvent::Limit(v) => Some(RangeEvent::Limit(v.clone())),
            _ => None,
        })
        .collect();
    Some(AffectedRange { kind, events })
}

fn kind_of(vuln: &Vulnerability) -> AdvisoryKind {
    if vuln.id.starts_with("MAL-") {
        return AdvisoryKind::Malicious;
    }
    // RustSec: `affected[].database_specific.informational` = unmaintained | unsound | notice.
    let informational = vuln
        .affected
        .iter()
        .flatten()
        .filter_map(|a| a.database_specific.as_ref())
        .chain(vuln.database_specific.as_ref())
        .find_map(|d| d.get("informational").and_then(serde_json::Value::as_str));
    match informational {
        None => AdvisoryKind::Vulnerability,
        Some("unmaintained") => AdvisoryKind::Unmaintained,
        Some("unsound") => AdvisoryKind::Unsound,
        Some(_) => AdvisoryKind::Notice,
    }
}

/// CVSS vectors (v3, v4; the highest score across record and packages), else the GHSA-style
/// `database_specific.severity` word, else RustSec's `database_specific.cvss`, else
/// `Unknown`. Malicious records are `Critical` whatever they say.
pub(crate) fn severity_of(vuln: &Vulnerability, kind: AdvisoryKind) -> Severity {
    if kind == AdvisoryKind::Malicious {
        return Severity::Critical;
    }
    let affected = vuln.affected.iter().flatten();
    let vectors = vuln
        .severity
        .iter()
        .flatten()
        .chain(
            affected
                .clone()
                .filter_map(|a| a.severity.as_ref())
                .flatten(),
        )
        .map(|s| s.score.as_str());
    if let Some(sev) = highest_cvss(vectors) {
        return sev;
    }
    let word = vuln
        .database_specific
        .iter()
        .chain(
            affected
                .clone()
                .filter_map(|a| a.database_specific.as_ref()),
        )
        .find_map(|d| d.get("severity").and_then(serde_json::Value::as_str))
        .and_then(|w| Severity::from_str(w).ok());
    if let Some(sev) = word {
        return sev;
    }
    let rustsec_vectors = affected
        .filter_map(|a| a.database_specific.as_ref())
        .filter_map(|d| d.get("cvss").and_then(serde_json::Value::as_str));
    highest_cvss(rustsec_vectors).unwrap_or(Severity::Unknown)
}

fn highest_cvss<'a>(vectors: impl Iterator<Item = &'a str>) -> Option<Severity> {
    vectors
        .filter_map(|v| cvss::Cvss::from_str(v.trim()).ok())
        .map(|c| c.score())
        .max_by(f64::total_cmp)
        .map(Severity::from_cvss_score)
}
