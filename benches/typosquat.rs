//! `cargo bench --bench typosquat`: one typosquat lookup against the bundled lists (~15-21k
//! names per ecosystem; target at most 10 µs), and the time to build the bundled index.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use depfw::package::{Ecosystem, PackageName};
use depfw::policy::typosquat::PopularIndex;

fn lookups(c: &mut Criterion) {
    let index = PopularIndex::bundled();
    let names = [
        (Ecosystem::PyPI, "reqeusts"),                   // a hit
        (Ecosystem::PyPI, "python-dateitil"),            // a hit, longer
        (Ecosystem::Npm, "@typescript/eslint-parser"),   // a scope hit
        (Ecosystem::Npm, "my-company-internal-widgets"), // a miss
        (Ecosystem::CratesIo, "tokio-util"),             // popular itself
    ];
    for (eco, raw) in names {
        let name = PackageName::parse(eco, raw).expect("valid name");
        c.bench_function(&format!("suspect/{}/{raw}", eco.slug()), |b| {
            b.iter(|| index.suspect(black_box(&name)))
        });
    }
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    group.bench_function("bundled", |b| b.iter(PopularIndex::bundled));
    group.finish();
}

criterion_group!(benches, lookups, build);
criterion_main!(benches);
