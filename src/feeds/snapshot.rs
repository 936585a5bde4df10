//! The advisory snapshot compiled into depfw, so that a fresh install is protected offline.
//!
//! `feeds/advisories-<ecosystem>.json.gz` hold facts only (ids, aliases, packages, affected
//! versions, kind, severity, dates: no summaries, details or references) from the sources
//! listed in [`SOURCES`], one file per ecosystem; `feeds/snapshot.json` says when and from
//! what it was built, and the bundled index's revision derives from the `.json.gz` files.
//! The binary embeds (`include_bytes!`) the same advisories laid out for lookup,
//! `feeds/advisories-<ecosystem>.idx` (see [`super::packed`]): a `depfw audit` of a
//! Cargo.lock inflates and parses only the advisories of the crates in it that have some,
//! not the ~1,200 crates.io ones. `depfw feeds snapshot --from <data> --out feeds/`
//! rebuilds all of them (see `feeds/README.md`); a test fails while an `.idx` file is not
//! the layout of its `.json.gz`.

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

/// Each ecosystem's advisories, packed for lookup ([`super::packed`]), in
/// [`Ecosystem::ALL`] order.
const BUNDLED_PACKED: [&[u8]; 3] = [
    include_bytes!("../../feeds/advisories-npm.idx"),
    include_bytes!("../../feeds/advisories-pypi.idx"),
    include_bytes!("../../feeds/advisories-crates-io.idx"),
];
const BUNDLED_META: &str = include_str!("../../feeds/snapshot.json");

/// The data file of `ecosystem` inside the snapshot directory.
pub fn data_file(ecosystem: Ecosystem) -> String {
    format!("advisories-{}.json.gz", ecosystem.slug())
}
/// The packed (indexed) form of [`data_file`], the one compiled in.
pub fn packed_file(ecosystem: Ecosystem) -> String {
    format!("advisories-{}.idx", ecosystem.slug())
}
pub(crate) const META_FILE: &str = "snapshot.json";

/// Largest decompressed snapshot accepted: bounds a corrupt or hostile file.
const MAX_SNAPSHOT_BYTES: u64 = 256 * 1024 * 1024;

/// The sources a snapshot is built from: (name, manifest source id, path under `--from`).
pub const SOURCES: [(&str, &str, &str); 7] = [
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
    // npm's only vulnerability advisories in the data set (legacy NSWG-ECO JSON, not OSV).
    (
        "nodejs-security-wg",
        "nodejs-security-wg",
        "advisories/nodejs-security-wg/npm",
    ),
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
/// evaluate. Each package is looked up in its ecosystem's index; only the blocks holding
/// advisories about them are inflated, and only those advisories are parsed (a Cargo.lock
/// audit builds a dozen advisories, not 1,200).
pub fn bundled_index_for<'a>(
    packages: impl IntoIterator<Item = (Ecosystem, &'a str)>,
) -> Result<AdvisoryIndex, FeedError> {
    // A list, not a set: each key is looked up once per ecosystem and the spans found are
    // sorted and de-duplicated (`packed::read_about`), so hashing them bought nothing.
    let wanted: Vec<(Ecosystem, &str)> = packages.into_iter().collect();
    bundled(&wanted.iter().map(|(e, _)| *e).collect(), Some(&wanted))
}

/// The bundled advisories of `ecosystems` only (about `only`'s packages, when given): what
/// fills the ecosystems that synced feeds do not cover.
pub fn bundled_index_of(
    ecosystems: &BTreeSet<Ecosystem>,
    only: Option<&HashSet<(Ecosystem, &str)>>,
) -> Result<AdvisoryIndex, FeedError> {
    let only: Option<Vec<(Ecosystem, &str)>> = only.map(|set| set.iter().copied().collect());
    bundled(ecosystems, only.as_deref())
}

fn bundled(
    ecosystems: &BTreeSet<Ecosystem>,
    only: Option<&[(Ecosystem, &str)]>,
) -> Result<AdvisoryIndex, FeedError> {
    let revision = bundled_revision()?;
    let files = Ecosystem::ALL
        .into_iter()
        .zip(BUNDLED_PACKED)
        .filter(|(ecosystem, _)| ecosystems.contains(ecosystem));
    let read = |(ecosystem, packed): (Ecosystem, &[u8])| match only {
        Some(wanted) => super::packed::read_about(
            packed,
            wanted
                .iter()
                .filter(|(e, _)| *e == ecosystem)
                .map(|(_, key)| *key),
        ),
        None => super::packed::read_all(packed),
    };
    let advisories = match only {
        // A scan's few blocks take less time than starting a thread per ecosystem.
        Some(_) => {
            let mut advisories = Vec::new();
            for file in files {
                advisories.extend(read(file)?);
            }
            advisories
        }
        None => super::read_in_parallel(files, read, || {
            FeedError::Snapshot("decoding the snapshot panicked".into())
        })?,
    };
    Ok(AdvisoryIndex::new(advisories, revision))
}

/// The bundled index's revision, `bundled-<hash prefix>` of [`SnapshotMeta::data_sha256`],
/// read without the rest of the metadata: every `depfw audit` opens the snapshot, and
/// decoding the whole of `snapshot.json` (dates, every source) for this one field was
/// 1.5% of the audit of a 50-crate Cargo.lock.
fn bundled_revision() -> Result<String, FeedError> {
    #[derive(Deserialize)]
    struct Hash<'a> {
        data_sha256: &'a str,
    }
    let meta: Hash<'_> = serde_json::from_str(BUNDLED_META)
        .map_err(|e| FeedError::Snapshot(format!("bundled {META_FILE}: {e}")))?;
    Ok(format!(
        "bundled-{}",
        meta.data_sha256.get(..16).unwrap_or("unknown")
    ))
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
        files.push((packed_file(ecosystem), super::packed::pack(&part)?));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revision_is_the_metadata_hash_prefix() {
        let meta = bundled_meta().unwrap();
        assert_eq!(
            bundled_revision().unwrap(),
            format!("bundled-{}", &meta.data_sha256[..16])
        );
    }

    /// The compiled-in `.idx` files are their `.json.gz` files laid out for lookup: a
    /// snapshot changed without `depfw feeds snapshot` (which writes both) fails here.
    #[test]
    fn packed_files_are_the_committed_snapshot_laid_out() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("feeds");
        for (ecosystem, packed) in Ecosystem::ALL.into_iter().zip(BUNDLED_PACKED) {
            let json = std::fs::read(dir.join(data_file(ecosystem))).unwrap();
            let relaid = super::super::packed::pack(&decode(&json).unwrap()).unwrap();
            assert!(
                relaid == packed,
                "feeds/{} is not the layout of feeds/{}: run `depfw feeds snapshot`",
                packed_file(ecosystem),
                data_file(ecosystem)
            );
        }
    }

    /// A scan's packages get exactly the advisories a full load has about them, in the
    /// same order, with the same revision; other packages get none.
    #[test]
    fn a_scan_reads_exactly_its_packages_advisories() {
        let full = bundled_index().unwrap();
        let scanned = [
            (Ecosystem::CratesIo, "smallvec"),
            (Ecosystem::CratesIo, "rustdecimal"),
            (Ecosystem::CratesIo, "serde"),
            (Ecosystem::PyPI, "django"),
            (Ecosystem::Npm, "apitelegram"),
            (Ecosystem::Npm, "express"),
        ];
        let scan = bundled_index_for(scanned).unwrap();
        assert_eq!(scan.revision(), full.revision());
        let mut total = 0;
        for (ecosystem, key) in scanned {
            let name = crate::package::PackageName::parse(ecosystem, key).unwrap();
            let ids = |index: &AdvisoryIndex| -> Vec<String> {
                index
                    .for_package(&name)
                    .iter()
                    .map(|a| a.id.clone())
                    .collect()
            };
            assert_eq!(ids(&scan), ids(&full), "{key}");
            total += ids(&full).len();
        }
        assert!(total > 40, "{total}");
        assert_eq!(scan.len(), total);
        let crates_only = bundled_index_for([(Ecosystem::CratesIo, "smallvec")]).unwrap();
        assert!(!crates_only.is_empty());
        assert!(crates_only.iter().all(|a| a.package == "smallvec"));
    }
}
