//! The storage backends side by side (issue #13): sled (embedded) and PostgreSQL.
//!
//! Run: `benches/store-bench.sh` (starts a throwaway PostgreSQL with `.ci/postgres.sh` when
//! `DEPFW_TEST_POSTGRES_URL` is unset, then `cargo bench --bench store`). Reports:
//! - decision appends per second, durable (what every artifact waits for), from 1 and from
//!   16 threads: group commit shows as the gap between the two (sled shares fsyncs,
//!   PostgreSQL batches queued records into one transaction);
//! - cached-metadata requests per second through the proxy (`app(state)` in process, an
//!   npm packument already rendered), anonymous and as an agent, on each backend, with the
//!   database transactions the cached requests caused (`pg_stat_database.xact_commit`,
//!   which should stay at the poller's few per second, not one per request);
//! - how long an override made on one replica takes to apply on another
//!   (`store.refresh-millis` = 500, the default), over 20 changes.
//!
//! Without PostgreSQL the PostgreSQL rows are skipped, saying so.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use depfw::agents::PolicyPreset;
use depfw::config::{Config, DatabaseUrl};
use depfw::package::{Ecosystem, PackageName};
use depfw::policy::overrides::{OverrideEntry, OverrideKind, VersionScope};
use depfw::policy::Verdict;
use depfw::server::{app, AppState, PolicyState};
use depfw::store::decisions::{ClientInfo, DecisionLog, DecisionRecord, RecordKind};
use depfw::store::pg::PgStore;
use depfw::store::repo::{Backend, DecisionRepo};
use depfw::store::Store;
use tower::ServiceExt as _;

const THREADS: usize = 16;
const PER_THREAD: usize = 100;
const CACHED_REQUESTS: usize = 20_000;

fn record(i: usize) -> DecisionRecord {
    DecisionRecord {
        seq: 0,
        time: Utc::now(),
        request_id: format!("bench-{i}"),
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

/// Durable appends per second from `threads` threads.
fn appends(log: &Arc<dyn DecisionRepo>, threads: usize) -> f64 {
    let total = threads * PER_THREAD;
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let log = Arc::clone(log);
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    log.append_durable(&mut record(t * PER_THREAD + i)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// A one-document npm registry on 127.0.0.1 (the committed is-number packument).
async fn upstream() -> String {
    let packument = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("integration/fixtures/npm/is-number.json"),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new().fallback(move || {
        let body = packument.clone();
        async move { ([("content-type", "application/json")], body) }
    });
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

/// Cached-metadata requests per second on `backend`, anonymous and as an agent.
async fn cached(backend: &Backend, upstream: &str, data: &std::path::Path) -> (f64, f64) {
    let mut config = Config::from_toml(
        &format!("[upstream]\nnpm = \"{upstream}/\"\n"),
        "bench.toml",
    )
    .unwrap();
    config.server.data_dir = data.to_owned();
    let policy = depfw::engine::load(&config, None).unwrap().policy;
    let state = AppState::with_backend(&config, backend, PolicyState::Ready(policy)).unwrap();
    let (_, token) = backend
        .repos()
        .unwrap()
        .agents
        .add("bench-bot", PolicyPreset::Default)
        .unwrap();
    let router = app(state);
    let mut rates = Vec::new();
    for path in [
        "/npm/is-number".to_owned(),
        format!("/a/{}/npm/is-number", token.expose_secret()),
    ] {
        let get = || {
            axum::http::Request::get(path.as_str())
                .body(axum::body::Body::empty())
                .unwrap()
        };
        // Warm: fetched, evaluated, rendered once.
        let first = router.clone().oneshot(get()).await.unwrap();
        assert_eq!(first.status(), 200);
        let start = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (router, path) = (router.clone(), path.clone());
                tokio::spawn(async move {
                    for _ in 0..CACHED_REQUESTS / 8 {
                        let request = axum::http::Request::get(path.as_str())
                            .body(axum::body::Body::empty())
                            .unwrap();
                        let r = router.clone().oneshot(request).await.unwrap();
                        assert_eq!(r.status(), 200);
                        let _ = axum::body::to_bytes(r.into_body(), usize::MAX).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        rates.push(CACHED_REQUESTS as f64 / start.elapsed().as_secs_f64());
    }
    (rates[0], rates[1])
}

/// Transactions committed in the bench's database so far. A PostgreSQL backend publishes
/// its counts when idle for 10 s at the latest (PostgreSQL 15): wait that out first.
async fn commits(url: &DatabaseUrl) -> i64 {
    tokio::time::sleep(Duration::from_secs(11)).await;
    let (client, conn) = tokio_postgres::connect(url.expose(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap();
    drop(client);
    let _ = task.await;
    row.get(0)
}

/// Milliseconds from an override made on replica A to replica B's policy refresh.
fn propagation(url: &DatabaseUrl) -> Vec<f64> {
    let a = PgStore::connect(url, 2, Duration::from_millis(500)).unwrap();
    let b = PgStore::connect(url, 2, Duration::from_millis(500)).unwrap();
    let seen: Arc<Mutex<Option<Instant>>> = Arc::default();
    let mark = Arc::clone(&seen);
    b.on_overrides_changed(move || {
        mark.lock().unwrap().get_or_insert(Instant::now());
    });
    let overrides = Backend::Postgres(a).repos().unwrap().overrides;
    let mut out = Vec::new();
    for i in 0..20 {
        *seen.lock().unwrap() = None;
        let name = PackageName::parse(Ecosystem::Npm, &format!("bench-{i}")).unwrap();
        let entry = OverrideEntry {
            kind: OverrideKind::Allow,
            name,
            versions: VersionScope::parse(Ecosystem::Npm, "*").unwrap(),
            reason: "bench".into(),
            expires: None,
            created_by: "bench".into(),
            agent: None,
        };
        let start = Instant::now();
        overrides.add(&entry, Utc::now()).unwrap();
        loop {
            if let Some(at) = *seen.lock().unwrap() {
                out.push(at.saturating_duration_since(start).as_secs_f64() * 1000.0);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // Land the next change at another point of the poll period.
        std::thread::sleep(Duration::from_millis(137));
    }
    out.sort_by(f64::total_cmp);
    out
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let upstream = runtime.block_on(upstream());

    println!("backend     appends/s 1 thread   appends/s {THREADS} threads   cached req/s anon   cached req/s agent   db commits/cached run");
    {
        let store = Store::open(&dir.path().join("sled")).unwrap();
        let log: Arc<dyn DecisionRepo> = Arc::new(DecisionLog::open(&store).unwrap());
        let one = appends(&log, 1);
        let many = appends(&log, THREADS);
        drop(log);
        let backend = Backend::Sled(store);
        let (anon, agent) =
            runtime.block_on(cached(&backend, &upstream, &dir.path().join("sled-data")));
        println!("sled        {one:>18.0}   {many:>19.0}   {anon:>17.0}   {agent:>18.0}   -");
    }
    match depfw::store::pg::testing::fresh_database("store bench") {
        None => println!("postgresql  skipped: DEPFW_TEST_POSTGRES_URL is not set"),
        Some(url) => {
            let pg = PgStore::connect(&url, 16, Duration::from_millis(500)).unwrap();
            let backend = Backend::Postgres(pg);
            let key_dir = dir.path().join("pg-key");
            std::fs::create_dir_all(&key_dir).unwrap();
            let log = backend
                .decisions(Some(&key_dir), &Config::default().log)
                .unwrap();
            let one = appends(&log, 1);
            let many = appends(&log, THREADS);
            let before = runtime.block_on(commits(&url));
            let (anon, agent) =
                runtime.block_on(cached(&backend, &upstream, &dir.path().join("pg-data")));
            let during = runtime.block_on(commits(&url)) - before;
            println!(
                "postgresql  {one:>18.0}   {many:>19.0}   {anon:>17.0}   {agent:>18.0}   {during} (warm-up, agent add, poller included)"
            );
            let ms = propagation(&url);
            let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
            println!(
                "override on replica A applied on replica B (refresh-millis 500, {} changes): min {:.0} ms, median {:.0} ms, max {:.0} ms",
                ms.len(),
                pick(0.0),
                pick(0.5),
                pick(1.0)
            );
        }
    }
}
