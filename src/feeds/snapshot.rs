//! The advisory snapshot compiled into depfw, so that a fresh install is protected offline.
//!
//! `feeds/advisories-<ecosystem>.json.gz` hold facts only (ids, aliases, packages, affected
//! versions, kind, severity, dates: no summaries, details or references) from the sources
//! listed in [`SOURCES`], one file per ecosystem so that `depfw audit` of a Cargo.lock decodes
//! the ~1,200 crates.io advisories and not the ~33,000 npm ones; `feeds/snapshot.json` says
//! when and from what it was built. All are committed and embedded with `include_bytes!`. `depfw feeds snapshot --from <data> --out
//! feeds/` rebuilds them (see `feeds/README.md`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{Read, Write};
use std::path::Path;

use chrono::{DateTime, Utc};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::Advisory;
use super::{load_path, AdvisoryIndex, FeedError};
use crate::package::Ecosystem;

/// Each ecosystem's advisories, in [`Ecosystem::ALL`] order.
const BUNDLED_DATA: [&[u8]; 3] = [
    include_bytes!("../../feeds/advisories-npm.json.gz"),
    include_bytes!("../../feeds/advisories-pypi.json.gz"),
    include_bytes!("../../feeds/advisories-crates-io.json.gz"),
];
const BUNDLED_META: &str = include_str!("../../feeds/snapshot.json");

/// The data file of `ecosystem` inside the snapshot directory.
pub fn data_file(ecosystem: Ecosystem) -> String {
    format!("advisories-{}.json.gz", ecosystem.slug())
}
pub(crate) const META_FILE: &str = "snapshot.json";

/// Largest decompressed snapshot accepted: bounds a corrupt or hostile file.
const MAX_SNAPSHOT_BYTES: u64 = 256 * 1024 * 1024;

/// The sources a snapshot is built from: (name, manifest source id, path under `--from`).
pub const SOURCES: [(&str, &str, &str); 6] = [
    ("ossf-npm", "ossf", "malicious/ossf/npm.jsonl"),
    ("ossf-pypi", "ossf", "malicious/ossf/pypi.jsonl"),
    ("ossf-crates-io", "ossf", "malicious/ossf/crates-io.jsonl"),
    (
        "ossf-npm-2025h2",
        "ossf-npm-2025h2",
        "malicious/ossf-npm-2025h2/malicious_npm_packages.json",
    ),
    ("rustsec", "rustsec", "advisories/rustsec/crates"),
    ("pypa", "pypa", "advisories/pypa/vulns"),
];

/// What a snapshot was built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub built_at: DateTime<Utc>,
    /// sha256 of the compressed data files concatenated in [`Ecosystem::ALL`] order, hex;
    /// the bundled index's revision derives from it.
    pub data_sha256: String,
    pub advisories: usize,
    pub sources: Vec<SnapshotSource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSource {
    pub name: String,
    pub path: String,
    /// Upstream repository and commit, from the data set's `manifest.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_as_of: Option<String>,
    pub records: usize,
    pub withdrawn: usize,
    pub advisories: usize,
}

/// The bundled snapshot's metadata.
pub fn bundled_meta() -> Result<SnapshotMeta, FeedError> {
    serde_json::from_str(BUNDLED_META)
        .map_err(|e| FeedError::Snapshot(format!("bundled {META_FILE}: {e}")))
}

/// The bundled snapshot as an index; its revision is `bundled-<hash prefix>`.
pub fn bundled_index() -> Result<AdvisoryIndex, FeedError> {
    bundled(&Ecosystem::ALL.into_iter().collect(), None)
}

/// The bundled advisories about `packages` (ecosystem and normalised key) only, with the
/// same revision as [`bundled_index`]: for one-shot scans that know every package they
/// evaluate. Only their ecosystems' files are decompressed, and only their advisories are
/// decoded in full (a Cargo.lock audit builds a dozen advisories, not 1,200).
pub fn bundled_index_for<'a>(
    packages: impl IntoIterator<Item = (Ecosystem, &'a str)>,
) -> Result<AdvisoryIndex, FeedError> {
    let wanted: HashSet<(Ecosystem, &str)> = packages.into_iter().collect();
    bundled(&wanted.iter().map(|(e, _)| *e).collect(), Some(&wanted))
}

/// The bundled advisories of `ecosystems` only (about `only`'s packages, when given): what
/// fills the ecosystems that synced feeds do not cover.
pub fn bundled_index_of(
    ecosystems: &BTreeSet<Ecosystem>,
    only: Option<&HashSet<(Ecosystem, &str)>>,
) -> Result<AdvisoryIndex, FeedError> {
    bundled(ecosystems, only)
}

fn bundled(
    ecosystems: &BTreeSet<Ecosystem>,
    only: Option<&HashSet<(Ecosystem, &str)>>,
) -> Result<AdvisoryIndex, FeedError> {
    let meta = bundled_meta()?;
    let files = Ecosystem::ALL
        .into_iter()
        .zip(BUNDLED_DATA)
        .filter(|(ecosystem, _)| ecosystems.contains(ecosystem));
    let advisories = super::read_in_parallel(
        files,
        |(_, data)| match only {
            Some(wanted) => decode_about(data, wanted),
            None => decode(data),
        },
        || FeedError::Snapshot("decoding the snapshot panicked".into()),
    )?;
    let revision = format!(
        "bundled-{}",
        meta.data_sha256.get(..16).unwrap_or("unknown")
    );
    Ok(AdvisoryIndex::new(advisories, revision))
}

/// Compresses advisories for the snapshot and the store (gzip'd JSON array).
pub fn encode(advisories: &[Advisory]) -> Result<Vec<u8>, FeedError> {
    let json = serde_json::to_vec(advisories)
        .map_err(|e| FeedError::Snapshot(format!("cannot encode advisories: {e}")))?;
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&json)
        .and_then(|()| gz.finish())
        .map_err(|e| FeedError::Snapshot(format!("cannot compress advisories: {e}")))
}

/// The inverse of [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Vec<Advisory>, FeedError> {
    serde_json::from_slice(&decompress(bytes)?)
        .map_err(|e| FeedError::Snapshot(format!("corrupt advisories data: {e}")))
}

/// [`decode`] keeping only the advisories about `wanted` packages: the others are only
/// scanned for their ecosystem and package, never built.
fn decode_about(
    bytes: &[u8],
    wanted: &HashSet<(Ecosystem, &str)>,
) -> Result<Vec<Advisory>, FeedError> {
    /// The part of an [`Advisory`] that says whom it is about.
    #[derive(Deserialize)]
    struct About<'a> {
        ecosystem: Ecosystem,
        #[serde(borrow)]
        package: std::borrow::Cow<'a, str>,
    }
    let corrupt =
        |e: serde_json::Error| FeedError::Snapshot(format!("corrupt advisories data: {e}"));
    let json = decompress(bytes)?;
    let records: Vec<&serde_json::value::RawValue> =
        serde_json::from_slice(&json).map_err(corrupt)?;
    let mut advisories = Vec::new();
    for record in records {
        let about: About<'_> = serde_json::from_str(record.get()).map_err(corrupt)?;
        if wanted.contains(&(about.ecosystem, &*about.package)) {
            advisories.push(serde_json::from_str(record.get()).map_err(corrupt)?);
        }
    }
    Ok(advisories)
}

/// Inflates a gzip'd advisories file, at most [`MAX_SNAPSHOT_BYTES`].
fn decompress(bytes: &[u8]) -> Result<Vec<u8>, FeedError> {
    // The gzip trailer's last 4 bytes are the inflated size (mod 2^32): allocate once
    // instead of doubling and copying through megabytes.
    let size_hint = bytes
        .last_chunk::<4>()
        .map_or(0, |size| u32::from_le_bytes(*size))
        .min(MAX_SNAPSHOT_BYTES as u32);
    let mut json = Vec::with_capacity(size_hint as usize + 1);
    GzDecoder::new(bytes)
        .take(MAX_SNAPSHOT_BYTES + 1)
        .read_to_end(&mut json)
        .map_err(|e| FeedError::Snapshot(format!("cannot decompress advisories: {e}")))?;
    if json.len() as u64 > MAX_SNAPSHOT_BYTES {
        return Err(FeedError::Snapshot(format!(
            "advisories decompress to more than {MAX_SNAPSHOT_BYTES} bytes"
        )));
    }
    Ok(json)
}

/// Builds a snapshot from the shared data layout under `from` into `out`.
pub fn build(from: &Path, out: &Path) -> Result<SnapshotMeta, FeedError> {
    let manifest = read_manifest(from);
    let mut advisories = Vec::new();
    let mut sources = Vec::new();
    for (name, manifest_id, rel) in SOURCES {
        let feed = load_path(&from.join(rel))?;
        let upstream = manifest.get(manifest_id);
        let field = |key: &str| {
            upstream
                .and_then(|u| u.get(key))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        sources.push(SnapshotSource {
            name: name.to_owned(),
            path: rel.to_owned(),
            repo: field("repo"),
            commit: field("commit"),
            data_as_of: field("data_as_of"),
            records: feed.records,
            withdrawn: feed.withdrawn,
            advisories: feed.advisories.len(),
        });
        advisories.extend(feed.advisories);
    }
    // A stable order keeps rebuilds from the same data byte-identical.
    advisories
        .sort_by(|a, b| (a.ecosystem, &a.package, &a.id).cmp(&(b.ecosystem, &b.package, &b.id)));
    let mut files = Vec::new();
    let mut digest = Sha256::new();
    for ecosystem in Ecosystem::ALL {
        let part: Vec<Advisory> = advisories
            .iter()
            .filter(|a| a.ecosystem == ecosystem)
            .cloned()
            .collect();
        let data = encode(&part)?;
        digest.update(&data);
        files.push((data_file(ecosystem), data));
    }
    let meta = SnapshotMeta {
        built_at: Utc::now(),
        data_sha256: hex::encode(digest.finalize()),
        advisories: advisories.len(),
        sources,
    };
    let write = |file: &str, bytes: &[u8]| {
        let path = out.join(file);
        std::fs::write(&path, bytes).map_err(|source| FeedError::Io { path, source })
    };
    std::fs::create_dir_all(out).map_err(|source| FeedError::Io {
        path: out.to_owned(),
        source,
    })?;
    for (file, data) in &files {
        write(file, data)?;
    }
    let mut meta_json = serde_json::to_string_pretty(&meta)
        .map_err(|e| FeedError::Snapshot(format!("cannot encode metadata: {e}")))?;
    meta_json.push('\n');
    write(META_FILE, meta_json.as_bytes())?;
    Ok(meta)
}

/// `manifest.json`'s sources by id; a data set without one just lacks provenance.
fn read_manifest(from: &Path) -> BTreeMap<String, serde_json::Value> {
    let Ok(text) = std::fs::read_to_string(from.join("manifest.json")) else {
        return BTreeMap::new();
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
        return BTreeMap::new();
    };
    value
        .get("sources")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s.get("id")?.as_str()?.to_owned(), s.clone())))
        .collect()
}
