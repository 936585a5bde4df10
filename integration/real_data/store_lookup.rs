//! `depfw audit` reads only the packages it evaluates from the store's per-package copy of
//! the feeds, and finds exactly what a full load finds.

use crate::require::Need;

use chrono::{Duration, Utc};
use depfw::feeds::{load_path, LoadedFeed};
use depfw::package::{Ecosystem, PackageName};
use depfw::store::feeds::FeedStore;
use depfw::store::Store;

fn rustsec_dir() -> std::path::PathBuf {
    crate::support::shared_data().join("advisories/rustsec/crates")
}

fn rustsec() -> LoadedFeed {
    load_path(&rustsec_dir()).unwrap()
}

fn ids(index: &depfw::feeds::AdvisoryIndex, eco: Ecosystem, name: &str) -> Vec<String> {
    let name = PackageName::parse(eco, name).unwrap();
    let mut ids: Vec<String> = index
        .for_package(&name)
        .iter()
        .map(|a| a.id.clone())
        .collect();
    ids.sort();
    ids
}

fn per_package_lookup_matches_the_full_index_and_its_revision() {
    let store = Store::temporary().unwrap();
    let feeds = FeedStore::new(&store).unwrap();
    feeds.save("rustsec", &rustsec(), Utc::now()).unwrap();
    let full = feeds.load_index().unwrap();
    let wanted = [
        (Ecosystem::CratesIo, "smallvec"),
        (Ecosystem::CratesIo, "time"),
        (Ecosystem::CratesIo, "rust_crypto"),
        (Ecosystem::CratesIo, "no_such_crate_here"),
    ];
    let partial = feeds.load_index_for(wanted).unwrap().unwrap();
    assert_eq!(partial.revision(), full.revision());
    for (eco, name) in wanted {
        assert_eq!(ids(&partial, eco, name), ids(&full, eco, name), "{name}");
    }
    assert!(ids(&partial, Ecosystem::CratesIo, "smallvec").len() >= 2);
    // Only what was asked for was read.
    assert!(ids(&partial, Ecosystem::CratesIo, "regex").is_empty());
    assert!(!ids(&full, Ecosystem::CratesIo, "regex").is_empty());
}

fn a_resave_replaces_the_per_package_copy_and_a_missing_marker_means_full_load() {
    let store = Store::temporary().unwrap();
    let feeds = FeedStore::new(&store).unwrap();
    let mut feed = rustsec();
    let t = Utc::now();
    feeds.save("rustsec", &feed, t).unwrap();
    // The next fetch no longer has smallvec's advisories: they must not linger.
    feed.advisories.retain(|a| a.package != "smallvec");
    feeds
        .save("rustsec", &feed, t + Duration::seconds(1))
        .unwrap();
    let partial = feeds
        .load_index_for([
            (Ecosystem::CratesIo, "smallvec"),
            (Ecosystem::CratesIo, "time"),
        ])
        .unwrap()
        .unwrap();
    assert!(ids(&partial, Ecosystem::CratesIo, "smallvec").is_empty());
    assert!(!ids(&partial, Ecosystem::CratesIo, "time").is_empty());

    // Data saved by a depfw without the per-package copy has no marker.
    store
        .tree("feeds")
        .unwrap()
        .remove("indexed/rustsec")
        .unwrap();
    assert!(feeds
        .load_index_for([(Ecosystem::CratesIo, "time")])
        .unwrap()
        .is_none());
}

fn audit_with_imported_feeds_reports_what_the_bundled_snapshot_reports() {
    let data = tempfile::tempdir().unwrap();
    let depfw = crate::support::depfw::<&str>;
    let dir = data.path().to_str().unwrap();
    let rustsec = rustsec_dir();
    let import = depfw(&[
        "--data-dir",
        dir,
        "feeds",
        "import",
        rustsec.to_str().unwrap(),
        "--name",
        "rustsec",
    ]);
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let lockfile = crate::support::lockfile("public/cargo/advent-of-code-2020/Cargo.lock");
    let lockfile = lockfile.to_str().unwrap();
    let ids_of = |out: &std::process::Output| {
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut ids: Vec<String> = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["ids"].as_array().unwrap().clone())
            .map(|id| id.as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let from_store = depfw(&["--data-dir", dir, "audit", lockfile, "--format", "json"]);
    let bundled = depfw(&["audit", lockfile, "--format", "json"]);
    assert_eq!(from_store.status.code(), Some(1));
    let store_ids = ids_of(&from_store);
    assert!(store_ids.contains(&"RUSTSEC-2022-0013".to_owned()));
    assert_eq!(store_ids, ids_of(&bundled));
}

crate::require::trials! {
    [Need::SharedData] =>
        per_package_lookup_matches_the_full_index_and_its_revision,
        a_resave_replaces_the_per_package_copy_and_a_missing_marker_means_full_load,
        audit_with_imported_feeds_reports_what_the_bundled_snapshot_reports;
}
