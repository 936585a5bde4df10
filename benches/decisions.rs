//! The decision log's append path, signed and unsigned: what signing every record costs.
//!
//! `cargo bench --bench decisions -- --quick`. Each artifact request appends one record and
//! flushes it before the first byte goes out (`append_durable`); metadata requests append
//! without waiting for disk (`append`). The signed variants are what `depfw serve` does
//! (`DecisionLog::open`), the unsigned ones what it did before records were signed
//! (`DecisionLog::open_read_only`); `sign` is the Ed25519 signature alone. The figures are
//! in the README's "Provenance" section.

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use depfw::policy::Verdict;
use depfw::store::decisions::{
    record_message, ClientInfo, DecisionLog, DecisionRecord, RecordKind,
};
use depfw::store::signing::LogKey;
use depfw::store::Store;

fn record() -> DecisionRecord {
    DecisionRecord {
        seq: 0,
        time: Utc::now(),
        request_id: "bench-1".into(),
        client: ClientInfo {
            user_agent: Some("npm/10.8.2 node/v22.11.0 linux x64".into()),
            command: Some("install".into()),
            agent: Some("ci-bot".into()),
        },
        kind: RecordKind::Artifact,
        ecosystem: "npm".into(),
        package: "left-pad".into(),
        version: Some("1.3.0".into()),
        verdict: Verdict::Allow,
        findings: vec![],
        hidden: vec![],
        sha256: Some("ab".repeat(32)),
        sha512: Some("cd".repeat(64)),
        upstream_url: Some("https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz".into()),
        outcome: "served".into(),
        prev_hash: String::new(),
        hash: String::new(),
        signature: String::new(),
    }
}

fn bench(c: &mut Criterion) {
    let key = LogKey::ephemeral().unwrap_or_else(|e| panic!("{e}"));
    let message = record_message(&"ab".repeat(32));
    c.bench_function("sign", |b| b.iter(|| key.sign(&message)));

    for (name, signed) in [("signed", true), ("unsigned", false)] {
        // A fresh store for each: buffered appends left unflushed by one benchmark would
        // land on the next one's first flush.
        let open = || {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
            let log = if signed {
                DecisionLog::open(&store)
            } else {
                DecisionLog::open_read_only(&store)
            }
            .unwrap_or_else(|e| panic!("{e}"));
            (dir, store, log)
        };
        let (_dir, _store, log) = open();
        c.bench_function(&format!("append_durable/{name}"), |b| {
            b.iter(|| {
                log.append_durable(&mut record())
                    .unwrap_or_else(|e| panic!("{e}"))
            })
        });
        let (_dir, _store, log) = open();
        c.bench_function(&format!("append/{name}"), |b| {
            b.iter(|| log.append(&mut record()).unwrap_or_else(|e| panic!("{e}")))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
