//! Feed loading and advisory-check benchmarks.
//!
//! `cargo bench --bench feeds -- --quick`. Targets: loading and indexing all of the shared
//! data set ≤ 1 s with peak RSS ≤ 256 MB (printed from /proc/self/status VmHWM), and one
//! package evaluation through `AdvisoriesCheck` ≤ 20 µs. Set `DEPFW_SHARED_DATA` to point
//! at the data set (default ../shared/data beside the repository).
//!
//! Django 3.2.4 (~40 affecting PYSEC advisories, each a finding with its own strings) is the
//! worst case, ~17 µs; typical packages take 0.02-2 µs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use depfw::config::AdvisoriesConfig;
use depfw::feeds::{load_path, snapshot, AdvisoryIndex};
use depfw::package::{Ecosystem, PackageName, Version};
use depfw::policy::advisories::AdvisoriesCheck;
use depfw::policy::{Check, PackageCtx, Severity, Verdict};

fn data_dir() -> PathBuf {
    std::env::var_os("DEPFW_SHARED_DATA").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")),
        PathBuf::from,
    )
}

fn load_all() -> AdvisoryIndex {
    let root = data_dir();
    let mut advisories = Vec::new();
    for (_, _, rel) in snapshot::SOURCES {
        match load_path(&root.join(rel)) {
            Ok(feed) => advisories.extend(feed.advisories),
            Err(e) => panic!("cannot load the shared data: {e}"),
        }
    }
    AdvisoryIndex::new(advisories, "bench".into())
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn benches(c: &mut Criterion) {
    // One cold load first, measured by hand, so the peak RSS reflects a single load.
    let start = Instant::now();
    let index = load_all();
    eprintln!(
        "cold load + index of {} advisories: {:?}, peak RSS {} MiB",
        index.len(),
        start.elapsed(),
        peak_rss_kib().map_or_else(|| "?".to_owned(), |k| (k / 1024).to_string())
    );
    let start = Instant::now();
    let bundled = snapshot::bundled_index();
    eprintln!(
        "bundled snapshot decode + index: {:?} ({} advisories)",
        start.elapsed(),
        bundled.map_or(0, |b| b.len())
    );

    let mut group = c.benchmark_group("feeds");
    group.sample_size(10);
    group.bench_function("load_and_index_shared_data", |b| b.iter(load_all));
    group.bench_function("bundled_index", |b| b.iter(snapshot::bundled_index));
    group.finish();

    let check = AdvisoriesCheck::new(
        Arc::new(index),
        AdvisoriesConfig {
            deny_at: Severity::High,
            unknown_severity: Verdict::Deny,
            unfixed: Verdict::Warn,
            informational: Verdict::Warn,
            ignore: vec!["CVE-2021-33203".into()],
        },
    );
    let now = Utc::now();
    // Django has the most advisories of any package here: the worst case per lookup.
    for (eco, name, version) in [
        (Ecosystem::PyPI, "django", "3.2.4"),
        (Ecosystem::Npm, "lodash", "4.17.20"),
        (Ecosystem::CratesIo, "smallvec", "0.6.7"),
    ] {
        let (Ok(name), Ok(version)) = (PackageName::parse(eco, name), Version::parse(eco, version))
        else {
            panic!("bad benchmark input");
        };
        c.bench_function(&format!("evaluate/{eco}/{}", name.as_str()), |b| {
            b.iter(|| {
                let ctx = PackageCtx {
                    name: &name,
                    version: Some(&version),
                    metadata: None,
                    now,
                };
                let mut findings = Vec::new();
                check.evaluate(&ctx, &mut findings);
                findings
            })
        });
    }
}

criterion_group!(feeds, benches);
criterion_main!(feeds);
