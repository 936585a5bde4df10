//! `depfw feeds sync` / `import` / `status` against a local HTTP server, and the feed store.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use chrono::{Duration, Utc};
use depfw::cli::feeds::{print_status, run, FeedsCommand};
use depfw::config::Config;
use depfw::feeds::load_path;
use depfw::package::{Ecosystem, PackageName, Version};
use depfw::store::feeds::{active_index, active_index_for, FeedStore};
use depfw::store::Store;

struct Server {
    port: u16,
    /// When set, `/flaky/all.zip` serves garbage.
    break_flaky: Arc<AtomicBool>,
}

/// Serves `/npm/all.zip` (npm fixtures), `/flaky/all.zip` (crates fixtures, or garbage) and
/// 404 elsewhere, on a thread with its own runtime.
fn serve() -> Server {
    let npm = crate::support::osv_zip(|n| n.starts_with("malicious") || n.starts_with("last"));
    let crates =
        crate::support::osv_zip(|n| n.starts_with("multi") || n.starts_with("unmaintained"));
    let break_flaky = Arc::new(AtomicBool::new(false));
    let state = (Arc::clone(&break_flaky), crates);
    let app = Router::new()
        .route("/npm/all.zip", get(move || async move { npm }))
        .route(
            "/flaky/all.zip",
            get(
                |State((broken, crates)): State<(Arc<AtomicBool>, Vec<u8>)>| async move {
                    if broken.load(Ordering::SeqCst) {
                        b"PK\x03\x04 this is not a zip".to_vec()
                    } else {
                        crates
                    }
                },
            ),
        )
        .with_state(state);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    Server { port, break_flaky }
}

fn config(data_dir: &Path, port: u16) -> Config {
    let toml = format!(
        r#"
[server]
data-dir = "{}"
[[feeds.sources]]
name = "npm"
url = "http://127.0.0.1:{port}/npm/all.zip"
[[feeds.sources]]
name = "flaky"
url = "http://127.0.0.1:{port}/flaky/all.zip"
"#,
        data_dir.display()
    );
    Config::from_toml(&toml, "test.toml").unwrap()
}

fn affected(feeds: &FeedStore, eco: Ecosystem, name: &str, version: &str) -> Vec<String> {
    let index = feeds.load_index().unwrap();
    let name = PackageName::parse(eco, name).unwrap();
    let version = Version::parse(eco, version).unwrap();
    index
        .matching(&name, Some(&version))
        .iter()
        .map(|a| a.id.clone())
        .collect()
}

#[test]
fn sync_stores_every_source_and_a_broken_one_keeps_its_last_good_data() {
    let server = serve();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), server.port);

    assert_eq!(run(FeedsCommand::Sync, &config).unwrap(), ExitCode::SUCCESS);
    let revision_before = {
        let store = Store::open(dir.path()).unwrap();
        let feeds = FeedStore::new(&store).unwrap();
        assert_eq!(
            affected(&feeds, Ecosystem::Npm, "fx-evil", "1.0.0"),
            vec!["MAL-2099-1"]
        );
        assert_eq!(
            affected(&feeds, Ecosystem::CratesIo, "fx-multi", "0.5.1"),
            vec!["TEST-MULTI-1"]
        );
        let status = feeds.status().unwrap();
        assert_eq!(status.len(), 2);
        assert!(status
            .iter()
            .all(|s| s.last_error.is_none() && s.fetched_at.is_some()));
        feeds.load_index().unwrap().revision().to_owned()
    };

    // Now the flaky source serves garbage and a third source does not exist.
    server.break_flaky.store(true, Ordering::SeqCst);
    config.feeds.sources.push(depfw::config::FeedSource {
        name: "missing".into(),
        url: format!("http://127.0.0.1:{}/nope/all.zip", server.port)
            .parse()
            .unwrap(),
    });
    assert_eq!(run(FeedsCommand::Sync, &config).unwrap(), ExitCode::from(2));

    let store = Store::open(dir.path()).unwrap();
    let feeds = FeedStore::new(&store).unwrap();
    // The flaky source's last good data is still in use.
    assert_eq!(
        affected(&feeds, Ecosystem::CratesIo, "fx-multi", "0.5.1"),
        vec!["TEST-MULTI-1"]
    );
    let status = feeds.status().unwrap();
    let flaky = status.iter().find(|s| s.name == "flaky").unwrap();
    assert!(
        flaky.last_error.as_deref().unwrap().contains("zip"),
        "{flaky:?}"
    );
    assert_eq!(flaky.by_ecosystem.get(&Ecosystem::CratesIo), Some(&2));
    let missing = status.iter().find(|s| s.name == "missing").unwrap();
    assert!(missing.fetched_at.is_none() && missing.last_error.as_deref().unwrap().contains("404"));
    // npm was re-fetched, so the revision moved.
    assert_ne!(feeds.load_index().unwrap().revision(), revision_before);

    let mut out = Vec::new();
    print_status(&mut out, &status, 7).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("flaky") && text.contains("last error"),
        "{text}"
    );
    assert!(
        text.contains("missing") && text.contains("never fetched"),
        "{text}"
    );
}

#[test]
fn import_saves_a_named_source_and_status_reports_staleness() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), 9);
    let cmd = FeedsCommand::Import {
        path: "tests/fixtures/osv".into(),
        name: Some("fixtures".into()),
    };
    assert_eq!(run(cmd, &config).unwrap(), ExitCode::SUCCESS);
    let broken = dir.path().join("broken.jsonl");
    std::fs::write(&broken, "{\"id\": 1}\n{}\n").unwrap();
    let cmd = FeedsCommand::Import {
        path: broken,
        name: Some("fixtures".into()),
    };
    assert!(run(cmd, &config).is_err());

    let store = Store::open(dir.path()).unwrap();
    let feeds = FeedStore::new(&store).unwrap();
    assert!(feeds.has_data().unwrap());
    let status = &feeds.status().unwrap()[0];
    assert!(status
        .last_error
        .as_deref()
        .unwrap()
        .contains("broken.jsonl"));
    assert_eq!(status.records, 17);
    assert!(!status.is_stale(Utc::now(), 7));
    assert!(status.is_stale(Utc::now() + Duration::days(8), 7));
    // The failed import did not replace the good data.
    assert_eq!(
        affected(&feeds, Ecosystem::Npm, "fx-evil", "1.0.0"),
        vec!["MAL-2099-1"]
    );
}

#[test]
fn the_revision_changes_with_the_data_and_is_stable_otherwise() {
    let store = Store::temporary().unwrap();
    let feeds = FeedStore::new(&store).unwrap();
    assert!(!feeds.has_data().unwrap());
    assert!(feeds.load_index().unwrap().is_empty());
    let feed = load_path(Path::new("tests/fixtures/osv")).unwrap();
    let t = Utc::now();
    feeds.save("a", &feed, t).unwrap();
    let r1 = feeds.load_index().unwrap().revision().to_owned();
    assert_eq!(feeds.load_index().unwrap().revision(), r1);
    feeds.record_failure("a", "boom", t).unwrap();
    assert_eq!(
        feeds.load_index().unwrap().revision(),
        r1,
        "a failure changes no data"
    );
    feeds.save("a", &feed, t + Duration::seconds(1)).unwrap();
    assert_ne!(feeds.load_index().unwrap().revision(), r1);
    assert!(feeds.status().unwrap()[0].last_error.is_none());
}

#[test]
fn the_active_index_prefers_the_store_then_the_bundled_snapshot() {
    let mut config = Config::from_toml("", "test.toml").unwrap();
    let store = Store::temporary().unwrap();
    let bundled = active_index(&config.feeds, Some(&store)).unwrap();
    assert!(bundled.revision().starts_with("bundled-") && bundled.len() > 40_000);
    config.feeds.bundled = false;
    assert!(active_index(&config.feeds, None).unwrap().is_empty());
    let feed = load_path(Path::new("tests/fixtures/osv")).unwrap();
    FeedStore::new(&store)
        .unwrap()
        .save("fixtures", &feed, Utc::now())
        .unwrap();
    let synced = active_index(&config.feeds, Some(&store)).unwrap();
    assert!(synced.revision().starts_with("feeds-"));
    assert_eq!(synced.len(), feed.advisories.len());
}

/// Issue #11: a first sync that succeeded for npm and failed for PyPI and crates.io dropped
/// the bundled snapshot for all three, so django 3.2.4 and smallvec 0.6.7 passed. Synced
/// feeds now replace the snapshot only for the ecosystems they cover.
#[test]
fn a_synced_feed_replaces_the_bundled_snapshot_only_for_its_own_ecosystems() {
    let mut config = Config::from_toml("", "test.toml").unwrap();
    let store = Store::temporary().unwrap();
    let npm_only = tempfile::tempdir().unwrap();
    for file in ["malicious-all.json", "malicious-some.json"] {
        std::fs::copy(
            Path::new("tests/fixtures/osv").join(file),
            npm_only.path().join(file),
        )
        .unwrap();
    }
    let feed = load_path(npm_only.path()).unwrap();
    assert!(feed
        .advisories
        .iter()
        .all(|a| a.ecosystem == Ecosystem::Npm));
    FeedStore::new(&store)
        .unwrap()
        .save("npm-only", &feed, Utc::now())
        .unwrap();

    let index = active_index(&config.feeds, Some(&store)).unwrap();
    let counts = index.counts();
    let of = |eco: Ecosystem| -> usize {
        counts
            .iter()
            .filter(|((e, _), _)| *e == eco)
            .map(|(_, n)| n)
            .sum()
    };
    assert_eq!(
        of(Ecosystem::Npm),
        feed.advisories.len(),
        "npm from the sync alone"
    );
    assert!(of(Ecosystem::PyPI) > 1_000, "PyPI keeps the bundled data");
    assert!(
        of(Ecosystem::CratesIo) > 500,
        "crates.io keeps the bundled data"
    );
    assert!(
        index.revision().contains("bundled-"),
        "{}",
        index.revision()
    );

    // The per-package path (`depfw audit`) fills the same gaps.
    let scanned = active_index_for(
        &config.feeds,
        Some(&store),
        [
            (Ecosystem::PyPI, "django"),
            (Ecosystem::CratesIo, "smallvec"),
        ],
    )
    .unwrap();
    let ids: Vec<&str> = scanned.iter().map(|a| a.id.as_str()).collect();
    assert!(scanned.iter().any(|a| a.package == "django"), "{ids:?}");
    assert!(scanned.iter().any(|a| a.package == "smallvec"), "{ids:?}");

    // Without the bundled snapshot, only what was synced.
    config.feeds.bundled = false;
    let synced = active_index(&config.feeds, Some(&store)).unwrap();
    assert_eq!(synced.len(), feed.advisories.len());
}

/// Issue #11: each ecosystem's advisory data is present (synced, else bundled) or that
/// ecosystem fails closed; a source that never synced takes no other ecosystem down.
#[test]
fn without_the_bundled_snapshot_an_ecosystem_nobody_synced_is_undecidable() {
    let mut config = Config::from_toml("", "test.toml").unwrap();
    config.feeds.bundled = false;
    let store = Store::temporary().unwrap();
    let npm_only = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new("tests/fixtures/osv/malicious-all.json"),
        npm_only.path().join("malicious-all.json"),
    )
    .unwrap();
    let feed = load_path(npm_only.path()).unwrap();
    FeedStore::new(&store)
        .unwrap()
        .save("npm-only", &feed, Utc::now())
        .unwrap();

    let engine = depfw::engine::load(&config, Some(&store)).unwrap();
    assert_eq!(engine.policy.undecidable(Ecosystem::Npm), None);
    for eco in [Ecosystem::PyPI, Ecosystem::CratesIo] {
        let why = engine
            .policy
            .undecidable(eco)
            .expect("no data, no decision");
        assert!(
            why.contains(&format!("no advisory data for {eco}")),
            "{why}"
        );
        assert!(why.contains("depfw feeds sync"), "{why}");
    }
    // With the snapshot on, every ecosystem has data.
    config.feeds.bundled = true;
    let engine = depfw::engine::load(&config, Some(&store)).unwrap();
    assert!(Ecosystem::ALL
        .iter()
        .all(|e| engine.policy.undecidable(*e).is_none()));
}
