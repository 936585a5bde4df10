//! The shapes `feeds::load_path` reads, and the errors it gives for broken input.

use std::io::Write;
use std::path::Path;

use depfw::feeds::{load_bytes, load_path, FeedError};

const FIXTURES: &str = "tests/fixtures/osv";

/// The fixture records as (file name, JSON text).
fn fixture_records() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// Builds an OSV-style `all.zip` (one record per file) in memory.
pub fn build_zip(records: &[(String, String)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, text) in records {
        zip.start_file(name.as_str(), options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn compact(json: &str) -> String {
    serde_json::to_string(&serde_json::from_str::<serde_json::Value>(json).unwrap()).unwrap()
}

#[test]
fn a_directory_a_jsonl_file_and_a_zip_load_the_same_advisories() {
    let records = fixture_records();
    let from_dir = load_path(Path::new(FIXTURES)).unwrap();

    let jsonl: String = records.iter().map(|(_, t)| compact(t) + "\n").collect();
    let from_jsonl = load_bytes(Path::new("fixtures.jsonl"), jsonl.as_bytes()).unwrap();

    let from_zip = load_bytes(Path::new("all.zip"), &build_zip(&records)).unwrap();

    let ids = |feed: &depfw::feeds::LoadedFeed| {
        let mut ids: Vec<String> = feed.advisories.iter().map(|a| a.id.clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(from_dir.records, records.len());
    assert_eq!(from_dir.withdrawn, 1);
    assert_eq!(ids(&from_dir), ids(&from_jsonl));
    assert_eq!(ids(&from_dir), ids(&from_zip));
    assert_eq!(from_zip.records, from_dir.records);
    assert_eq!(ids(&from_dir).len(), records.len() - 1);
}

#[test]
fn a_name_list_becomes_malicious_records() {
    let dir = tempfile::tempdir().unwrap();
    let list_dir = dir.path().join("my-list");
    std::fs::create_dir(&list_dir).unwrap();
    let path = list_dir.join("malicious_npm_packages.json");
    std::fs::write(
        &path,
        r#"{"evil-pkg": {"versions": []}, "@x/y": {"versions": ["1.0.1"]}}"#,
    )
    .unwrap();
    let feed = load_path(&path).unwrap();
    assert_eq!(feed.records, 2);
    let evil = feed
        .advisories
        .iter()
        .find(|a| a.package == "evil-pkg")
        .unwrap();
    assert_eq!(evil.id, "MY-LIST:evil-pkg");
    assert!(evil.all_versions);
    let scoped = feed
        .advisories
        .iter()
        .find(|a| a.package == "@x/y")
        .unwrap();
    assert!(!scoped.all_versions);
    assert_eq!(scoped.versions, vec!["1.0.1"]);
}

#[test]
fn a_corrupt_jsonl_line_is_named_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.jsonl");
    let good = compact(&fixture_records()[0].1);
    std::fs::write(&path, format!("{good}\n{good}\n{{\"id\": \"X\", broken\n")).unwrap();
    let err = load_path(&path).unwrap_err();
    assert!(
        matches!(err, FeedError::JsonLine { line: 3, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("feed.jsonl") && text.contains("line 3"),
        "{text}"
    );
}

#[test]
fn a_corrupt_file_in_a_tree_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("npm/pkg")).unwrap();
    std::fs::write(
        dir.path().join("npm/pkg/MAL-1.json"),
        &fixture_records()[0].1,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("npm/pkg/MAL-2.json"),
        "{\"id\": \"MAL-2\", \"modified\": 3",
    )
    .unwrap();
    let err = load_path(dir.path()).unwrap_err().to_string();
    assert!(err.contains("MAL-2.json"), "{err}");
}

#[test]
fn a_record_missing_required_fields_is_refused() {
    let err = load_bytes(Path::new("x.json"), br#"{"id": "X-1", "affected": []}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("x.json") && err.contains("modified"), "{err}");
}

#[test]
fn a_corrupt_zip_or_zip_entry_is_named() {
    let mut bytes = build_zip(&fixture_records());
    bytes.truncate(bytes.len() / 2);
    let err = load_bytes(Path::new("all.zip"), &bytes).unwrap_err();
    assert!(matches!(err, FeedError::Zip { .. }), "{err:?}");

    let mut records = fixture_records();
    records.push(("BROKEN-1.json".into(), "not json".into()));
    let err = load_bytes(Path::new("all.zip"), &build_zip(&records)).unwrap_err();
    assert!(err.to_string().contains("BROKEN-1.json"), "{err}");
}

#[test]
fn non_feed_input_is_refused_cleanly() {
    assert!(load_bytes(Path::new("x"), b"hello").is_err());
    assert!(load_bytes(Path::new("x"), &[0xff, 0xfe, 0x00]).is_err());
    assert!(load_bytes(Path::new("x"), b"{\"a\": 1}").is_err());
    let missing = load_path(Path::new("/nonexistent/feed.jsonl"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("/nonexistent/feed.jsonl"), "{missing}");
}

/// Issue #11: npm had no vulnerability data at all offline; the old Node.js Security WG
/// records (the only npm advisories in the data set) load beside OSV, each once even when
/// NSWG's `index.json` repeats them, and an unreadable range is skipped and counted.
#[test]
fn nswg_records_and_their_index_load_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let flatmap = r#"{"id": 477, "module_name": "flatmap-stream", "title": "Embedded Malicious Code",
        "vulnerable_versions": "*", "patched_versions": null, "cves": [], "cvss_score": 10,
        "publish_date": "2018-11-26", "updated_at": "2018-11-26"}"#;
    let lodash = r#"{"id": 493, "module_name": "lodash", "title": "Prototype Pollution",
        "vulnerable_versions": "<4.17.11", "patched_versions": ">=4.17.11",
        "cves": ["CVE-2018-16487"], "cvss_score": 8.1, "publish_date": "2019-02-01"}"#;
    let odd = r#"{"id": 9, "module_name": "odd", "title": "x", "vulnerable_versions": "latest",
        "cves": [], "cvss_score": null}"#;
    std::fs::write(dir.path().join("477.json"), flatmap).unwrap();
    std::fs::write(dir.path().join("493.json"), lodash).unwrap();
    std::fs::write(dir.path().join("9.json"), odd).unwrap();
    std::fs::write(
        dir.path().join("index.json"),
        format!(r#"{{"477": {flatmap}, "493": {lodash}}}"#),
    )
    .unwrap();
    let feed = load_path(dir.path()).unwrap();
    let mut got: Vec<(&str, &str, &str)> = feed
        .advisories
        .iter()
        .map(|a| (a.id.as_str(), a.package.as_str(), a.kind.as_str()))
        .collect();
    got.sort_unstable();
    assert_eq!(
        got,
        [
            ("NSWG-ECO-477", "flatmap-stream", "malicious"),
            ("NSWG-ECO-493", "lodash", "vulnerability")
        ]
    );
    assert_eq!(feed.unreadable, 1);
    let lodash = feed
        .advisories
        .iter()
        .find(|a| a.package == "lodash")
        .unwrap();
    assert_eq!(lodash.aliases, ["CVE-2018-16487"]);
    assert_eq!(lodash.severity, depfw::diag::Severity::High);
}
