//! `depfw audit` on a 5,000-entry package-lock.json, feed loading included.
//!
//! `cargo bench --bench audit -- --quick`. Target: ≤ 50 ms for the whole scan (open the
//! store, parse, load the advisories and popular lists it needs, evaluate every package).
//! The lockfile is generated: lockfile v3 with the first 5,000 names of
//! `popular/npm/npm-high-impact-top.txt` from the shared data set (`DEPFW_SHARED_DATA`,
//! default ../shared/data beside the repository); the list has no versions, so each is pinned at 1.0.0. The
//! store is seeded once with every source of the bundled snapshot (`feeds import`).
//! Phase timings are printed first (each alone; `depfw audit` opens the store while it
//! parses); `scan/*` compares the per-package store lookup with loading whole feeds.
//! `parse_cargo_lock/*` parses generated Cargo.lock files of 100, 1,000 and 10,000 crates
//! and reports packages per second: a scan linear in the lockfile's size shows the same
//! rate at every size (line numbers used to be counted from the start of the file for
//! every package, which made the rate fall tenfold per tenfold size).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use depfw::audit::run::{audit_parsed, package_keys, prepare, read_lockfiles};
use depfw::audit::{parse_lockfile, LockfileKind};
use depfw::config::Config;
use depfw::feeds::{load_path, snapshot};
use depfw::report::AuditReport;
use depfw::store::feeds::FeedStore;
use depfw::store::Store;

const ENTRIES: usize = 5_000;

fn shared() -> PathBuf {
    std::env::var_os("DEPFW_SHARED_DATA").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")),
        PathBuf::from,
    )
}

/// A package-lock.json v3 with `ENTRIES` registry packages.
fn lockfile(dir: &Path) -> PathBuf {
    let list = std::fs::read_to_string(shared().join("popular/npm/npm-high-impact-top.txt"))
        .unwrap_or_else(|e| panic!("popular npm list: {e}"));
    let mut packages = String::from(r#""": {"name": "bench", "version": "1.0.0"}"#);
    let mut count = 0;
    for name in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let base = name.rsplit('/').next().unwrap_or(name);
        let _ = write!(
            packages,
            r#",
    "node_modules/{name}": {{"version": "1.0.0", "resolved": "https://registry.npmjs.org/{name}/-/{base}-1.0.0.tgz", "integrity": "sha512-AAAA", "license": "MIT"}}"#
        );
        count += 1;
        if count == ENTRIES {
            break;
        }
    }
    assert_eq!(count, ENTRIES, "the popular list is too short");
    let text = format!(
        "{{\n  \"name\": \"bench\",\n  \"lockfileVersion\": 3,\n  \"packages\": {{\n    {packages}\n  }}\n}}\n"
    );
    let path = dir.join("package-lock.json");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path
}

/// Imports every bundled-snapshot source from the shared data into a store at `data_dir`.
fn seed(data_dir: &Path) {
    let store = Store::open(data_dir).unwrap_or_else(|e| panic!("{e}"));
    let feeds = FeedStore::new(&store).unwrap_or_else(|e| panic!("{e}"));
    for (name, _, rel) in snapshot::SOURCES {
        let feed = load_path(&shared().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        feeds
            .save(name, &feed, Utc::now())
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// The whole `depfw audit` minus rendering: what the 50 ms target covers. `per_package`:
/// as `depfw audit` does it ([`prepare`]); else every feed is loaded whole, for comparison.
fn scan(data_dir: &Path, lockfile: &Path, per_package: bool) -> AuditReport {
    let config = Config::default();
    let lockfiles = [(lockfile.to_owned(), LockfileKind::PackageLock)];
    if per_package {
        let (engine, parsed) =
            prepare(&config, Some(data_dir), &lockfiles).unwrap_or_else(|e| panic!("{e}"));
        return audit_parsed(&engine.policy, &parsed, &[]);
    }
    let store = Store::open(data_dir).unwrap_or_else(|e| panic!("{e}"));
    let parsed = read_lockfiles(&lockfiles);
    let engine = depfw::engine::load(&config, Some(&store)).unwrap_or_else(|e| panic!("{e}"));
    audit_parsed(&engine.policy, &parsed, &[])
}

/// A Cargo.lock v4 with `crates` registry packages, each depending on the one before it.
fn cargo_lock(crates: usize) -> String {
    let mut text = String::from("version = 4\n");
    for i in 0..crates {
        let _ = write!(
            text,
            "\n[[package]]\nname = \"crate-{i}\"\nversion = \"1.{i}.0\"\n\
             source = \"registry+https://github.com/rust-lang/crates.io-index\"\n\
             checksum = \"{i:064x}\"\n"
        );
        if i > 0 {
            let _ = writeln!(text, "dependencies = [\n \"crate-{}\",\n]", i - 1);
        }
    }
    text
}

fn parse_scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_cargo_lock");
    group.sample_size(10);
    for crates in [100, 1_000, 10_000] {
        let text = cargo_lock(crates);
        let path = Path::new("Cargo.lock");
        group.throughput(Throughput::Elements(crates as u64));
        group.bench_function(format!("{crates}_crates"), |b| {
            b.iter(|| {
                parse_lockfile(path, LockfileKind::CargoLock, &text)
                    .unwrap_or_else(|e| panic!("{e}"))
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let lockfile = lockfile(dir.path());
    let data_dir = dir.path().join("data");
    let start = Instant::now();
    seed(&data_dir);
    eprintln!("seeding the store: {:?}", start.elapsed());

    // Phases, once each (cold caches aside), to show where the time goes.
    let config = Config::default();
    let t = Instant::now();
    let store = Store::open(&data_dir).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("open store: {:?}", t.elapsed());
    let t = Instant::now();
    let parsed = read_lockfiles(&[(lockfile.clone(), LockfileKind::PackageLock)]);
    let keys = package_keys(&parsed);
    eprintln!("parse {ENTRIES} entries: {:?}", t.elapsed());
    let t = Instant::now();
    let index =
        depfw::store::feeds::active_index_for(&config.feeds, Some(&store), keys.iter().copied())
            .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "advisories for {} names from the store: {:?} ({} advisories)",
        keys.len(),
        t.elapsed(),
        index.len()
    );
    let t = Instant::now();
    let full = depfw::store::feeds::active_index(&config.feeds, Some(&store))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "every advisory from the store: {:?} ({} advisories)",
        t.elapsed(),
        full.len()
    );
    let t = Instant::now();
    let _ = snapshot::bundled_index();
    eprintln!("bundled snapshot: {:?}", t.elapsed());
    let t = Instant::now();
    let popular = depfw::policy::typosquat::PopularIndex::bundled();
    let _ = popular.len(depfw::package::Ecosystem::Npm);
    eprintln!(
        "npm popular index (prebuilt, read in place): {:?}",
        t.elapsed()
    );
    drop(store);
    let report = scan(&data_dir, &lockfile, true);
    eprintln!(
        "{} packages, {} results",
        report.packages_scanned,
        report.results.len()
    );

    let mut group = c.benchmark_group("scan");
    group.sample_size(10);
    group.bench_function("npm_5000_per_package_store_lookup", |b| {
        b.iter(|| scan(&data_dir, &lockfile, true))
    });
    group.bench_function("npm_5000_full_feed_load", |b| {
        b.iter(|| scan(&data_dir, &lockfile, false))
    });
    group.finish();
}

criterion_group!(audit, parse_scaling, benches);
criterion_main!(audit);
