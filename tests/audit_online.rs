#![allow(clippy::unwrap_used)]
//! `depfw audit --online` metadata fetching against a local registry on 127.0.0.1 serving
//! real fixtures (npm is-number, crates.io itoa index, PyPI idna) and hand-made faults.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use depfw::audit::online::{
    fetch_metadata, fetch_metadata_blocking, registry_queries, CratesApiSource, Lookup,
    OnlineOptions, OnlineResult, MISSING_FROM_REGISTRY,
};
use depfw::audit::{LockedPackage, PackageSource};
use depfw::config::UpstreamConfig;
use depfw::package::Ecosystem;
use depfw::policy::Verdict;
use url::Url;

const MAX_BYTES: u64 = 32 * 1024;

#[derive(Default)]
struct Seen {
    hits: Mutex<HashMap<String, usize>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    api_times: Mutex<Vec<Instant>>,
}

#[derive(Clone)]
struct Registry {
    base: String,
    seen: Arc<Seen>,
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn typed(content_type: &'static str, body: impl Into<Body>) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body.into()).into_response()
}

/// A hand-made packument: 1.0.0 runs a postinstall hook, 1.1.0 is deprecated.
fn hooked_packument() -> String {
    serde_json::json!({
        "name": "hooked",
        "license": "ISC",
        "time": {"created": "2025-01-01T00:00:00Z", "1.0.0": "2025-01-01T00:00:00Z",
                 "1.1.0": "2025-02-01T00:00:00Z"},
        "versions": {
            "1.0.0": {"name": "hooked", "version": "1.0.0",
                      "scripts": {"postinstall": "node steal.js"}},
            "1.1.0": {"name": "hooked", "version": "1.1.0", "license": "GPL-3.0-only",
                      "deprecated": "use hooked2"}
        }
    })
    .to_string()
}

fn one_version_packument(name: &str) -> String {
    serde_json::json!({"name": name, "versions": {"1.0.0": {"name": name}}}).to_string()
}

async fn serve(State(reg): State<Registry>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    *reg.seen
        .hits
        .lock()
        .unwrap()
        .entry(path.clone())
        .or_default() += 1;
    // `/depfw/...` mimics a running depfw: same documents, but `config.json` names no API.
    let (depfw, path) = match path.strip_prefix("/depfw") {
        Some(rest) => (true, rest.to_owned()),
        None => (false, path),
    };
    let json = "application/json";
    match path.as_str() {
        "/npm/is-number" => typed(json, fixture("integration/fixtures/npm/is-number.json")),
        "/npm/hooked" => typed(json, hooked_packument()),
        "/npm/broken" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "/npm/denied" => StatusCode::FORBIDDEN.into_response(),
        "/npm/garbled" => typed(json, "{\"versions\": "),
        "/npm/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            typed(json, one_version_packument("slow"))
        }
        "/npm/huge" => typed(json, vec![b' '; MAX_BYTES as usize + 1]),
        "/npm/huge-stream" => {
            // No Content-Length: the limit must hold while reading.
            let chunks = (0..40).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024]));
            typed(json, Body::from_stream(futures_util::stream::iter(chunks)))
        }
        p if p.starts_with("/npm/c") => {
            let now = reg.seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            reg.seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(150)).await;
            reg.seen.in_flight.fetch_sub(1, Ordering::SeqCst);
            typed(json, one_version_packument(&p["/npm/".len()..]))
        }
        "/pypi/simple/foo-bar/" => typed(
            "application/vnd.pypi.simple.v1+json",
            fixture("tests/fixtures/pypi/foo-bar.json"),
        ),
        "/pypi/simple/idna/" => typed(
            "text/html",
            fixture("tests/fixtures/pypi/idna-upload-time.html"),
        ),
        "/cargo/index/config.json" => {
            let mut config = serde_json::json!({"dl": format!("{}/dl", reg.base)});
            if !depfw {
                config["api"] = format!("{}/crates-api", reg.base).into();
            }
            typed(json, config.to_string())
        }
        "/cargo/index/it/oa/itoa" => typed("text/plain", fixture("tests/fixtures/cargo/itoa")),
        "/cargo/index/se/rd/serde" => typed(
            "text/plain",
            format!(
                "{{\"name\":\"serde\",\"vers\":\"1.0.0\",\"cksum\":\"{}\",\"pubtime\":\"2017-04-20T00:00:00Z\"}}\n",
                "ab".repeat(32)
            ),
        ),
        p if p.starts_with("/crates-api/") => {
            reg.seen.api_times.lock().unwrap().push(Instant::now());
            if p == "/crates-api/api/v1/crates/itoa" {
                typed(json, fixture("tests/fixtures/cargo/itoa-api.json"))
            } else {
                StatusCode::NOT_FOUND.into_response()
            }
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn start() -> Registry {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let reg = Registry {
        base: format!("http://{}", listener.local_addr().unwrap()),
        seen: Arc::default(),
    };
    let app = axum::Router::new().fallback(serve).with_state(reg.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    reg
}

fn upstream(base: &str) -> UpstreamConfig {
    let url = |p: &str| Url::parse(&format!("{base}{p}")).unwrap();
    UpstreamConfig {
        npm: url("/npm/"),
        pypi: url("/pypi/simple/"),
        pypi_files: url("/pypi/files/"),
        cargo_index: url("/cargo/index/"),
        timeout_secs: 1,
        max_metadata_bytes: MAX_BYTES,
        max_artifact_bytes: 1 << 20,
        metadata_ttl_secs: 60,
        metadata_cache_entries: 10,
        artifact_cache_bytes: 1 << 20,
    }
}

fn opts() -> OnlineOptions {
    OnlineOptions {
        progress: false,
        crates_api_interval: Duration::from_millis(10),
        ..OnlineOptions::default()
    }
}

fn q(eco: Ecosystem, name: &str, version: &str) -> (Ecosystem, String, String) {
    (eco, name.to_owned(), version.to_owned())
}

fn time(s: &str) -> Option<DateTime<Utc>> {
    Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc))
}

fn found<'a>(
    r: &'a OnlineResult,
    eco: Ecosystem,
    name: &str,
    v: &str,
) -> &'a depfw::policy::VersionMetadata {
    match r.get(eco, name, v) {
        Some(Lookup::Found(m)) => m,
        other => panic!("{name} {v}: expected metadata, got {other:?}"),
    }
}

fn failed(r: &OnlineResult, eco: Ecosystem, name: &str, v: &str) -> String {
    match r.get(eco, name, v) {
        Some(Lookup::Failed { error }) => error.clone(),
        other => panic!("{name} {v}: expected a failure, got {other:?}"),
    }
}

fn missing(r: &OnlineResult, eco: Ecosystem, name: &str, v: &str) -> String {
    match r.get(eco, name, v) {
        Some(Lookup::Missing { reason }) => reason.clone(),
        other => panic!("{name} {v}: expected missing, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_metadata_per_version_one_request_per_name() {
    let reg = start().await;
    let packages = [
        q(Ecosystem::Npm, "is-number", "6.0.0"),
        q(Ecosystem::Npm, "is-number", "7.0.0"),
        q(Ecosystem::Npm, "is-number", "7.0.0"),
        q(Ecosystem::Npm, "is-number", "9.9.9"),
        q(Ecosystem::Npm, "hooked", "1.0.0"),
        q(Ecosystem::Npm, "hooked", "1.1.0"),
    ];
    let r = fetch_metadata(&packages, &upstream(&reg.base), &opts()).await;
    assert_eq!(r.names, 2);
    assert!(r.failures.is_empty(), "{:?}", r.failures);

    let six = found(&r, Ecosystem::Npm, "is-number", "6.0.0");
    assert_eq!(six.published, time("2024-12-02T18:34:18.416Z"));
    assert_eq!(six.package_created, time("2024-02-27T16:27:13.411Z"));
    assert_eq!(six.license.as_deref(), Some("MIT"));
    assert_eq!(six.has_install_scripts, Some(false));
    let seven = found(&r, Ecosystem::Npm, "is-number", "7.0.0");
    assert_eq!(seven.published, time("2024-02-27T16:27:13.411Z"));

    let hooked = found(&r, Ecosystem::Npm, "hooked", "1.0.0");
    assert_eq!(hooked.has_install_scripts, Some(true));
    assert_eq!(hooked.license.as_deref(), Some("ISC"));
    let newer = found(&r, Ecosystem::Npm, "hooked", "1.1.0");
    assert_eq!(newer.has_install_scripts, Some(false));
    assert_eq!(newer.license.as_deref(), Some("GPL-3.0-only"));
    assert_eq!(newer.deprecated.as_deref(), Some("use hooked2"));
    assert_eq!(newer.published, time("2025-02-01T00:00:00Z"));

    // Not in the packument: unpublished, or filtered by a depfw upstream. Never "fine".
    let reason = missing(&r, Ecosystem::Npm, "is-number", "9.9.9");
    assert!(reason.contains("2 version(s)"), "{reason}");
    let finding = r
        .get(Ecosystem::Npm, "is-number", "9.9.9")
        .unwrap()
        .finding()
        .unwrap();
    assert_eq!(finding.code, MISSING_FROM_REGISTRY);
    assert_eq!(finding.verdict, Verdict::Warn);
    assert!(r
        .get(Ecosystem::Npm, "is-number", "7.0.0")
        .unwrap()
        .finding()
        .is_none());

    let hits = reg.seen.hits.lock().unwrap();
    assert_eq!(hits.get("/npm/is-number"), Some(&1));
    assert_eq!(hits.get("/npm/hooked"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pypi_json_and_html_pages() {
    let reg = start().await;
    let packages = [
        // Lockfiles spell names and versions their own way.
        q(Ecosystem::PyPI, "Foo_Bar", "1.0.0"),
        q(Ecosystem::PyPI, "foo-bar", "2.0"),
        q(Ecosystem::PyPI, "foo-bar", "2.1"),
        q(Ecosystem::PyPI, "foo-bar", "4.0"),
        q(Ecosystem::PyPI, "idna", "3.9"),
    ];
    let r = fetch_metadata(&packages, &upstream(&reg.base), &opts()).await;
    assert_eq!(r.names, 2);
    let one = found(&r, Ecosystem::PyPI, "foo.bar", "1.0.0");
    // The earliest file of the release, the sdist.
    assert_eq!(one.published, time("2021-03-04T05:00:00Z"));
    assert_eq!(one.package_created, time("2021-03-04T05:00:00Z"));
    assert_eq!(one.yanked, None);
    let two = found(&r, Ecosystem::PyPI, "foo-bar", "2.0");
    assert!(two.yanked.as_deref().unwrap().contains("broken build"));
    let later = found(&r, Ecosystem::PyPI, "foo-bar", "2.1");
    assert_eq!(later.published, time("2023-06-07T08:09:10Z"));
    missing(&r, Ecosystem::PyPI, "foo-bar", "4.0");
    let idna = found(&r, Ecosystem::PyPI, "idna", "3.9");
    assert_eq!(idna.published, time("2024-09-14T02:58:28.463127Z"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crates_index_plus_web_api() {
    let reg = start().await;
    let packages = [
        q(Ecosystem::CratesIo, "itoa", "1.0.18"),
        q(Ecosystem::CratesIo, "itoa", "0.1.0"),
        q(Ecosystem::CratesIo, "itoa", "9.0.0"),
    ];
    let r = fetch_metadata(&packages, &upstream(&reg.base), &opts()).await;
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    let new = found(&r, Ecosystem::CratesIo, "itoa", "1.0.18");
    assert_eq!(new.published, time("2026-03-20T00:12:37Z"));
    assert_eq!(new.license.as_deref(), Some("MIT OR Apache-2.0"));
    assert_eq!(new.package_created, time("2016-06-25T21:50:33Z"));
    // The API has no license for the oldest versions.
    assert_eq!(
        found(&r, Ecosystem::CratesIo, "itoa", "0.1.0").license,
        None
    );
    missing(&r, Ecosystem::CratesIo, "itoa", "9.0.0");
    let hits = reg.seen.hits.lock().unwrap();
    assert_eq!(hits.get("/crates-api/api/v1/crates/itoa"), Some(&1));
    assert_eq!(hits.get("/cargo/index/config.json"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crates_through_a_depfw_index_have_no_licenses_and_say_so() {
    let reg = start().await;
    let mut cfg = upstream(&reg.base);
    cfg.cargo_index = Url::parse(&format!("{}/depfw/cargo/index/", reg.base)).unwrap();
    let r = fetch_metadata(&[q(Ecosystem::CratesIo, "itoa", "1.0.18")], &cfg, &opts()).await;
    let m = found(&r, Ecosystem::CratesIo, "itoa", "1.0.18");
    assert_eq!(m.published, time("2026-03-20T00:12:37Z"));
    assert_eq!(m.license, None);
    assert_eq!(r.notes.len(), 1);
    assert!(r.notes[0].contains("names no web API"), "{:?}", r.notes);
    assert!(reg.seen.api_times.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_crates_api_degrades_to_the_index() {
    let reg = start().await;
    // A port nothing listens on: bind, note it, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let options = OnlineOptions {
        crates_api: CratesApiSource::At(Url::parse(&format!("http://{dead}")).unwrap()),
        ..opts()
    };
    let packages = [
        q(Ecosystem::CratesIo, "itoa", "1.0.18"),
        q(Ecosystem::CratesIo, "serde", "1.0.0"),
    ];
    let r = fetch_metadata(&packages, &upstream(&reg.base), &options).await;
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    let m = found(&r, Ecosystem::CratesIo, "itoa", "1.0.18");
    assert_eq!(m.published, time("2026-03-20T00:12:37Z"));
    assert_eq!(m.license, None);
    assert_eq!(
        found(&r, Ecosystem::CratesIo, "serde", "1.0.0").published,
        time("2017-04-20T00:00:00Z")
    );
    // Said once, and the second crate did not wait for another failure.
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    assert!(r.notes[0].contains("unreachable"), "{:?}", r.notes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crates_api_requests_are_spaced() {
    let reg = start().await;
    let options = OnlineOptions {
        crates_api_interval: Duration::from_millis(300),
        ..opts()
    };
    let packages = [
        q(Ecosystem::CratesIo, "itoa", "1.0.18"),
        q(Ecosystem::CratesIo, "serde", "1.0.0"),
    ];
    let r = fetch_metadata(&packages, &upstream(&reg.base), &options).await;
    let times = reg.seen.api_times.lock().unwrap().clone();
    assert_eq!(times.len(), 2);
    let gap = times[1].duration_since(times[0]);
    assert!(gap >= Duration::from_millis(290), "{gap:?}");
    // serde is not in this API: its license is unknown, the index data stands.
    assert!(r.notes.iter().any(|n| n.contains("serde")), "{:?}", r.notes);
    found(&r, Ecosystem::CratesIo, "serde", "1.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_package_fails_alone() {
    let reg = start().await;
    let packages = [
        q(Ecosystem::Npm, "is-number", "7.0.0"),
        q(Ecosystem::Npm, "broken", "1.0.0"),
        q(Ecosystem::Npm, "slow", "1.0.0"),
        q(Ecosystem::Npm, "garbled", "1.0.0"),
        q(Ecosystem::Npm, "huge", "1.0.0"),
        q(Ecosystem::Npm, "huge-stream", "1.0.0"),
        q(Ecosystem::Npm, "denied", "1.0.0"),
        q(Ecosystem::Npm, "nowhere", "1.0.0"),
        q(Ecosystem::Npm, "Not A Name", "1.0.0"),
    ];
    let r = fetch_metadata(&packages, &upstream(&reg.base), &opts()).await;
    found(&r, Ecosystem::Npm, "is-number", "7.0.0");
    assert!(failed(&r, Ecosystem::Npm, "broken", "1.0.0").contains("500"));
    assert!(failed(&r, Ecosystem::Npm, "slow", "1.0.0").contains("timed out"));
    assert!(failed(&r, Ecosystem::Npm, "garbled", "1.0.0").contains("packument"));
    for big in ["huge", "huge-stream"] {
        let e = failed(&r, Ecosystem::Npm, big, "1.0.0");
        assert!(e.contains("max-metadata-bytes"), "{big}: {e}");
    }
    assert!(missing(&r, Ecosystem::Npm, "denied", "1.0.0").contains("403"));
    assert!(missing(&r, Ecosystem::Npm, "nowhere", "1.0.0").contains("404"));
    failed(&r, Ecosystem::Npm, "Not A Name", "1.0.0");
    let mut failed_names: Vec<&str> = r.failures.iter().map(|f| f.name.as_str()).collect();
    failed_names.sort_unstable();
    assert_eq!(
        failed_names,
        [
            "Not A Name",
            "broken",
            "garbled",
            "huge",
            "huge-stream",
            "slow"
        ]
    );
    let note = r
        .get(Ecosystem::Npm, "broken", "1.0.0")
        .unwrap()
        .finding()
        .unwrap();
    assert_eq!(note.verdict, Verdict::Allow);
    // An invalid name is never requested.
    assert!(!reg
        .seen
        .hits
        .lock()
        .unwrap()
        .keys()
        .any(|k| k.contains("Not")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_bounded() {
    let reg = start().await;
    let packages: Vec<_> = (0..12)
        .map(|i| q(Ecosystem::Npm, &format!("c{i}"), "1.0.0"))
        .collect();
    let options = OnlineOptions {
        concurrency: 3,
        ..opts()
    };
    let r = fetch_metadata(&packages, &upstream(&reg.base), &options).await;
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(r.lookups.len(), 12);
    let max = reg.seen.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 3, "{max} requests in flight");
    assert!(max >= 2, "requests did not overlap ({max})");
}

#[test]
fn blocking_wrapper_for_the_cli() {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            tx.send(start().await.base).unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
    });
    let base = rx.recv().unwrap();
    let locked = [
        LockedPackage {
            ecosystem: Ecosystem::Npm,
            name: "is-number".into(),
            version: "7.0.0".into(),
            source: PackageSource::Registry { url: None },
            line: None,
            metadata: None,
        },
        LockedPackage {
            ecosystem: Ecosystem::Npm,
            name: "local".into(),
            version: "1.0.0".into(),
            source: PackageSource::Path {
                path: "../local".into(),
            },
            line: None,
            metadata: None,
        },
    ];
    let packages = registry_queries(&locked);
    assert_eq!(packages.len(), 1);
    let r = fetch_metadata_blocking(&packages, &upstream(&base), &opts()).unwrap();
    assert_eq!(
        r.metadata(Ecosystem::Npm, "is-number", "7.0.0")
            .unwrap()
            .license
            .as_deref(),
        Some("MIT")
    );
    drop(server);
}
