//! Throughput and latency of a cached, policy-filtered packument through `depfw serve`.
//!
//! Run: `cargo bench --bench proxy` (prints requests/s, p50 and p99). Starts the fixture
//! registry and depfw in-process on 127.0.0.1; the packument is cached after the first
//! request, so this measures depfw's own cost: policy over every version, rendering,
//! ETag hashing and HTTP.
#![allow(clippy::unwrap_used)]

#[path = "../integration/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

const CONCURRENCY: usize = 8;
const REQUESTS_PER_TASK: usize = 1_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (upstream, _fixture) = harness::start_fixture().await;
        let check = harness::TestCheck {
            deny: vec!["is-odd@3.0.1".into()],
            ..Default::default()
        };
        let depfw = harness::start_depfw(&upstream, harness::policy(check), "").await;
        let url = format!("{}/npm/is-odd", depfw.base);
        let client = reqwest::Client::new();
        assert!(client.get(&url).send().await.unwrap().status().is_success());

        let start = Instant::now();
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|_| {
                let client = client.clone();
                let url = url.clone();
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(REQUESTS_PER_TASK);
                    for _ in 0..REQUESTS_PER_TASK {
                        let t = Instant::now();
                        let resp = client.get(&url).send().await.unwrap();
                        assert!(resp.status().is_success());
                        resp.bytes().await.unwrap();
                        lat.push(t.elapsed());
                    }
                    lat
                })
            })
            .collect();
        let mut all: Vec<Duration> = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let elapsed = start.elapsed();
        all.sort();
        let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
        println!(
            "cached packument (is-odd, 3 versions, 1 denied), {CONCURRENCY} connections, {} requests: {:.0} req/s, p50 {:?}, p99 {:?}",
            all.len(),
            all.len() as f64 / elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99)
        );
    });
}
