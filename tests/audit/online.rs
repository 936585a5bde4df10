//! `depfw audit --online` metadata fetching against a local registry on 127.0.0.1 serving
//! real fixtures (npm is-number, crates.io itoa index, PyPI idna) and hand-made faults.
//! PyPI JSON API documents are hand-made in the shape pypi.org serves at
//! `/pypi/{project}/{version}/json` (every `info` and `urls[]` key it sends).

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
    OnlineOptions, OnlineResult,
};
use depfw::audit::{LockedPackage, PackageSource};
use depfw::config::{Config, LicenseConfig, UpstreamConfig};
use depfw::diag::Code;
use depfw::package::{Ecosystem, PackageName};
use depfw::policy::license::LicenseCheck;
use depfw::policy::{Check, PackageCtx, Verdict, VersionMetadata};
use depfw::server::agent::REQUEST_ID_HEADER;
use serde_json::{json, Value};
use url::Url;

const MAX_BYTES: u64 = 32 * 1024;

#[derive(Default)]
struct Seen {
    hits: Mutex<HashMap<String, usize>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    api_times: Mutex<Vec<Instant>>,
    json_api: AtomicUsize,
}

#[derive(Clone)]
struct Registry {
    base: String,
    seen: Arc<Seen>,
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(crate::support::repo().join(path)).unwrap()
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
    let mut response = route(&reg, depfw, &path).await;
    if depfw {
        // What tells `--online` the index is a depfw.
        response
            .headers_mut()
            .insert(REQUEST_ID_HEADER, "0123".parse().unwrap());
    }
    response
}

async fn route(reg: &Registry, depfw: bool, path: &str) -> Response {
    let json = "application/json";
    match path {
        "/npm/is-number" => typed(json, fixture("integration/fixtures/npm/is-number.json")),
        "/npm/hooked" => typed(json, hooked_packument()),
        "/npm/nx-like" => typed(json, fixture("integration/fixtures/npm/nx-like.json")),
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
        // Plain PEP 503: no upload times.
        "/plain/pypi/simple/idna/" => typed("text/html", fixture("tests/fixtures/pypi/idna.html")),
        p if p.starts_with("/pypi/simple/") => {
            let name = p["/pypi/simple/".len()..].trim_end_matches('/');
            match PYPI_RELEASES.iter().find(|(n, _)| *n == name) {
                Some((name, version)) => typed(
                    "application/vnd.pypi.simple.v1+json",
                    simple_page(name, version),
                ),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
        p if p.starts_with("/pypi/json/") => {
            reg.seen.json_api.fetch_add(1, Ordering::SeqCst);
            match pypi_json(&p["/pypi/json/".len()..]) {
                Some(body) => typed(json, body),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
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

/// Projects with one release each on the simple index, and their JSON API documents.
const PYPI_RELEASES: &[(&str, &str)] = &[
    ("gpl-tool", "1.0.0"),
    ("classic-tool", "2.0"),
    ("text-tool", "0.5"),
    ("text-only", "1.1"),
    ("no-json", "3.0"),
    ("garbled-json", "1.0"),
];

const MIT_TEXT: &str = "MIT License\n\nCopyright (c) 2019 The text-tool authors\n\n\
    Permission is hereby granted, free of charge, to any person obtaining a copy of this \
    software and associated documentation files (the \"Software\"), to deal in the Software \
    without restriction, including without limitation the rights to use, copy, modify, merge";

const BSD_TEXT: &str = "BSD 3-Clause License\n\nCopyright (c) 2013-2024, Kim Davies and \
    contributors.\nAll rights reserved.\n\nRedistribution and use in source and binary forms, \
    with or without modification, are permitted provided that the following conditions are met:";

/// A PEP 691 project page with one sdist per release.
fn simple_page(name: &str, version: &str) -> String {
    let file = format!("{}-{version}.tar.gz", name.replace('-', "_"));
    json!({
        "meta": {"api-version": "1.1", "_last-serial": 7},
        "name": name,
        "versions": [version],
        "files": [{
            "filename": file,
            "url": format!("https://files.pythonhosted.org/packages/ab/cd/ef/{file}"),
            "hashes": {"sha256": "ab".repeat(32)},
            "requires-python": ">=3.8",
            "yanked": false,
            "size": 2048,
            "upload-time": "2025-01-02T03:04:05.000000Z",
        }],
    })
    .to_string()
}

/// `/pypi/{project}/{version}/json` as pypi.org shapes it.
fn release_json(
    name: &str,
    version: &str,
    license: Value,
    license_expression: Value,
    classifiers: &[&str],
    uploaded: &[&str],
) -> String {
    let urls: Vec<Value> = uploaded
        .iter()
        .enumerate()
        .map(|(i, at)| {
            let (file, kind) = if i == 0 {
                (
                    format!("{}-{version}.tar.gz", name.replace('-', "_")),
                    "sdist",
                )
            } else {
                (
                    format!("{}-{version}-py3-none-any.whl", name.replace('-', "_")),
                    "bdist_wheel",
                )
            };
            json!({
                "comment_text": null,
                "digests": {"blake2b_256": "cd".repeat(32), "md5": "ef".repeat(16),
                            "sha256": "ab".repeat(32)},
                "downloads": -1,
                "filename": file,
                "has_sig": false,
                "md5_digest": "ef".repeat(16),
                "packagetype": kind,
                "python_version": if kind == "sdist" { "source" } else { "py3" },
                "requires_python": ">=3.8",
                "size": 2048,
                "upload_time": &at[..19],
                "upload_time_iso_8601": at,
                "url": format!("https://files.pythonhosted.org/packages/ab/cd/ef/{file}"),
                "yanked": false,
                "yanked_reason": null,
            })
        })
        .collect();
    json!({
        "info": {
            "author": null,
            "author_email": "Someone <someone@example.org>",
            "bugtrack_url": null,
            "classifiers": classifiers,
            "description": "# A project\n\nLong description.",
            "description_content_type": "text/markdown",
            "docs_url": null,
            "download_url": null,
            "downloads": {"last_day": -1, "last_month": -1, "last_week": -1},
            "dynamic": null,
            "home_page": null,
            "keywords": null,
            "license": license,
            "license_expression": license_expression,
            "license_files": ["LICENSE"],
            "maintainer": null,
            "maintainer_email": null,
            "name": name,
            "package_url": format!("https://pypi.org/project/{name}/"),
            "platform": null,
            "project_url": format!("https://pypi.org/project/{name}/"),
            "project_urls": {"Source": format!("https://example.org/{name}")},
            "provides_extra": null,
            "release_url": format!("https://pypi.org/project/{name}/{version}/"),
            "requires_dist": null,
            "requires_python": ">=3.8",
            "summary": "A project",
            "version": version,
            "yanked": false,
            "yanked_reason": null,
        },
        "last_serial": 24_000_000,
        "urls": urls,
        "vulnerabilities": [],
    })
    .to_string()
}

/// The JSON API below `/pypi/json/`: `None` is a 404.
fn pypi_json(path: &str) -> Option<String> {
    const MIT: &str = "License :: OSI Approved :: MIT License";
    let at = ["2025-01-02T03:04:05.000000Z"];
    let doc = match path {
        // PEP 639 wins over a classifier that says otherwise.
        "gpl-tool/1.0.0/json" => release_json(
            "gpl-tool",
            "1.0.0",
            Value::Null,
            "GPL-3.0-only".into(),
            &[MIT, "Programming Language :: Python :: 3"],
            &at,
        ),
        "classic-tool/2.0/json" => release_json(
            "classic-tool",
            "2.0",
            "".into(),
            Value::Null,
            &[
                "Development Status :: 5 - Production/Stable",
                "License :: OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)",
            ],
            &at,
        ),
        "text-tool/0.5/json" => {
            release_json("text-tool", "0.5", MIT_TEXT.into(), Value::Null, &[MIT], &at)
        }
        "text-only/1.1/json" => {
            release_json("text-only", "1.1", BSD_TEXT.into(), Value::Null, &[], &at)
        }
        "garbled-json/1.0/json" => "{\"info\": {\"license\": ".to_owned(),
        // idna's own metadata: the license file's text, and a classifier.
        "idna/3.9/json" => release_json(
            "idna",
            "3.9",
            BSD_TEXT.into(),
            Value::Null,
            &[
                "Intended Audience :: Developers",
                "License :: OSI Approved :: BSD License",
                "Topic :: Internet :: Name Service (DNS)",
            ],
            &["2024-09-14T02:58:30.182415Z", "2024-09-14T02:58:28.463127Z"],
        ),
        _ => return None,
    };
    Some(doc)
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
        npm_scopes: Vec::new(),
        pypi_private: Vec::new(),
        cargo_private: Vec::new(),
        main_credentials: Vec::new(),
        pypi: url("/pypi/simple/"),
        pypi_files: url("/pypi/files/"),
        pypi_json: url("/pypi/json/"),
        cargo_index: url("/cargo/index/"),
        cargo_api: None,
        timeout_secs: 1,
        max_metadata_bytes: MAX_BYTES,
        max_artifact_bytes: 1 << 20,
        metadata_ttl_secs: 60,
        metadata_cache_entries: 10,
        metadata_cache_bytes: 1 << 20,
        parse_cache_bytes: 1 << 20,
        render_cache_bytes: 1 << 20,
        artifact_cache_bytes: 1 << 20,
        transfer_deadline_secs: 10,
        min_transfer_rate: 0,
        min_transfer_rate_grace_secs: 0,
        stale_if_error_secs: 0,
        redirect_origins: Vec::new(),
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
    assert_eq!(finding.code, Code::MissingFromRegistry);
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

/// Issue #15: the release signals see the package's history through `--online` as they do
/// in the proxy: the nx-like 21.5.0 adds a postinstall and drops the attestation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_metadata_carries_the_release_history_the_signals_compare() {
    use depfw::policy::signals::SignalsCheck;
    let reg = start().await;
    let packages = [
        q(Ecosystem::Npm, "nx-like", "21.5.0"),
        q(Ecosystem::Npm, "nx-like", "21.4.1"),
    ];
    let r = fetch_metadata(&packages, &upstream(&reg.base), &opts()).await;
    let check = SignalsCheck::new(Config::default().policy.signals);
    let name = PackageName::parse(Ecosystem::Npm, "nx-like").unwrap();
    let codes = |v: &str| {
        let version = depfw::package::Version::parse(Ecosystem::Npm, v).unwrap();
        let mut findings = Vec::new();
        check.evaluate(
            &PackageCtx {
                name: &name,
                version: Some(&version),
                metadata: Some(found(&r, Ecosystem::Npm, "nx-like", v)),
                now: Utc::now(),
            },
            &mut findings,
        );
        findings
            .iter()
            .map(|f| f.code.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(codes("21.5.0"), ["install-script-added", "provenance-lost"]);
    assert!(codes("21.4.1").is_empty());
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

/// The license check's findings on fetched metadata, with `deny` denied.
fn license_codes(deny: &[&str], metadata: &VersionMetadata) -> Vec<(String, Verdict)> {
    let check = LicenseCheck::new(LicenseConfig {
        deny: deny.iter().map(|d| d.to_string()).collect(),
        ..Config::default().policy.license
    });
    let name = PackageName::parse(Ecosystem::PyPI, "any").unwrap();
    let ctx = PackageCtx {
        name: &name,
        version: None,
        metadata: Some(metadata),
        now: Utc::now(),
    };
    let mut findings = Vec::new();
    check.evaluate(&ctx, &mut findings);
    findings
        .into_iter()
        .map(|f| (f.code.to_string(), f.verdict))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pypi_licenses_from_the_json_api() {
    let reg = start().await;
    let packages: Vec<_> = PYPI_RELEASES
        .iter()
        .map(|(name, version)| q(Ecosystem::PyPI, name, version))
        .collect();
    let r = fetch_metadata(&packages, &upstream(&reg.base), &opts()).await;
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    let denied = |m: &VersionMetadata| license_codes(&["GPL-3.0", "AGPL-3.0"], m);

    let gpl = found(&r, Ecosystem::PyPI, "gpl-tool", "1.0.0");
    assert_eq!(gpl.license.as_deref(), Some("GPL-3.0-only"));
    assert_eq!(denied(gpl), [("license-denied".to_owned(), Verdict::Deny)]);
    // Not denied, not judged: the expression alone decides.
    assert_eq!(license_codes(&["AGPL-3.0"], gpl), []);

    let classic = found(&r, Ecosystem::PyPI, "classic-tool", "2.0");
    assert_eq!(classic.license.as_deref(), Some("AGPL-3.0-or-later"));
    assert_eq!(
        denied(classic),
        [("license-denied".to_owned(), Verdict::Deny)]
    );

    // The whole MIT text in `license` is not the license; the classifier is.
    let text = found(&r, Ecosystem::PyPI, "text-tool", "0.5");
    assert_eq!(text.license.as_deref(), Some("MIT"));
    assert_eq!(denied(text), []);
    // A text and nothing else: "not an SPDX expression", not "no license".
    let only = found(&r, Ecosystem::PyPI, "text-only", "1.1");
    let codes = denied(only);
    assert_eq!(codes, [("license-unparsable".to_owned(), Verdict::Warn)]);

    // No document, or an unreadable one: the index's data stands, and a note says why.
    for (name, version, why) in [
        ("no-json", "3.0", "404"),
        ("garbled-json", "1.0", "PyPI JSON API response"),
    ] {
        let m = found(&r, Ecosystem::PyPI, name, version);
        assert_eq!(m.license, None);
        assert_eq!(m.published, time("2025-01-02T03:04:05Z"));
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains(&format!("`{name}` {version}")) && n.contains(why)),
            "{name}: {:?}",
            r.notes
        );
    }
    assert_eq!(r.notes.len(), 2, "{:?}", r.notes);
    // One document per locked release.
    assert_eq!(
        reg.seen.json_api.load(Ordering::SeqCst),
        PYPI_RELEASES.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pypi_json_fills_what_a_plain_index_lacks() {
    let reg = start().await;
    let mut cfg = upstream(&reg.base);
    cfg.pypi = Url::parse(&format!("{}/plain/pypi/simple/", reg.base)).unwrap();
    let packages = [
        q(Ecosystem::PyPI, "IDNA", "3.9"),
        q(Ecosystem::PyPI, "idna", "3.9.0"),
        q(Ecosystem::PyPI, "idna", "99.0"),
    ];
    let r = fetch_metadata(&packages, &cfg, &opts()).await;
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    for v in ["3.9", "3.9.0"] {
        let idna = found(&r, Ecosystem::PyPI, "idna", v);
        assert_eq!(idna.license.as_deref(), Some("BSD-3-Clause"));
        // The earliest file, as the simple index would say.
        assert_eq!(idna.published, time("2024-09-14T02:58:28.463127Z"));
    }
    missing(&r, Ecosystem::PyPI, "idna", "99.0");
    // Both spellings are one release: one document; none for a version the index lacks.
    assert_eq!(reg.seen.json_api.load(Ordering::SeqCst), 1);
    let hits = reg.seen.hits.lock().unwrap();
    assert_eq!(hits.get("/pypi/json/idna/3.9/json"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pypi_through_a_depfw_index_has_no_licenses_and_says_so() {
    let reg = start().await;
    let mut cfg = upstream(&reg.base);
    cfg.pypi = Url::parse(&format!("{}/depfw/pypi/simple/", reg.base)).unwrap();
    let packages = [
        q(Ecosystem::PyPI, "gpl-tool", "1.0.0"),
        q(Ecosystem::PyPI, "text-tool", "0.5"),
    ];
    let r = fetch_metadata(&packages, &cfg, &opts()).await;
    let m = found(&r, Ecosystem::PyPI, "gpl-tool", "1.0.0");
    assert_eq!(m.published, time("2025-01-02T03:04:05Z"));
    assert_eq!(m.license, None);
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    assert!(
        r.notes[0].contains("PyPI licenses were not fetched"),
        "{:?}",
        r.notes
    );
    assert_eq!(reg.seen.json_api.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_pypi_json_api_is_said_once() {
    let reg = start().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut cfg = upstream(&reg.base);
    cfg.pypi_json = Url::parse(&format!("http://{dead}/pypi/")).unwrap();
    let packages = [
        q(Ecosystem::PyPI, "gpl-tool", "1.0.0"),
        q(Ecosystem::PyPI, "text-tool", "0.5"),
    ];
    let r = fetch_metadata(&packages, &cfg, &opts()).await;
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(found(&r, Ecosystem::PyPI, "text-tool", "0.5").license, None);
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    assert!(
        r.notes[0].contains("PyPI JSON API unreachable"),
        "{:?}",
        r.notes
    );
}

/// `depfw check --online` of a name alone asks with an empty version: the latest release,
/// which the result names. npm: the `latest` dist-tag (else the highest version); PyPI and
/// cargo: the highest release neither yanked nor a pre-release (`foo-bar` 2.1, not the
/// yanked 2.0 or 3.0a1; `idna` 3.20, not 3.9), its PyPI JSON document fetched like a
/// locked version's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_alone_is_looked_up_at_its_latest_release() {
    let reg = start().await;
    let packages = [
        q(Ecosystem::Npm, "is-number", ""),
        q(Ecosystem::Npm, "hooked", ""),
        q(Ecosystem::PyPI, "foo-bar", ""),
        q(Ecosystem::PyPI, "idna", ""),
        q(Ecosystem::CratesIo, "itoa", ""),
        q(Ecosystem::Npm, "broken", ""),
    ];
    let r = fetch_metadata(&packages, &upstream(&reg.base), &opts()).await;
    let latest = |eco, name| r.latest_version(eco, name).map(str::to_owned);
    assert_eq!(
        latest(Ecosystem::Npm, "is-number").as_deref(),
        Some("7.0.0")
    );
    assert_eq!(latest(Ecosystem::Npm, "hooked").as_deref(), Some("1.1.0"));
    assert_eq!(latest(Ecosystem::PyPI, "Foo_Bar").as_deref(), Some("2.1"));
    assert_eq!(latest(Ecosystem::PyPI, "idna").as_deref(), Some("3.20"));
    assert_eq!(
        latest(Ecosystem::CratesIo, "itoa").as_deref(),
        Some("1.0.18")
    );
    assert_eq!(latest(Ecosystem::Npm, "broken"), None);

    let seven = found(&r, Ecosystem::Npm, "is-number", "");
    assert_eq!(seven.published, time("2024-02-27T16:27:13.411Z"));
    let hooked = found(&r, Ecosystem::Npm, "hooked", "");
    assert_eq!(hooked.deprecated.as_deref(), Some("use hooked2"));
    let later = found(&r, Ecosystem::PyPI, "foo-bar", "");
    assert_eq!(later.published, time("2023-06-07T08:09:10Z"));
    failed(&r, Ecosystem::Npm, "broken", "");
    // The latest release's JSON document was asked for (the fixture has none for 3.20).
    let hits = reg.seen.hits.lock().unwrap();
    assert_eq!(hits.get("/pypi/json/idna/3.20/json"), Some(&1), "{hits:?}");
}

#[tokio::test]
async fn a_private_name_is_asked_of_its_private_upstream_never_of_the_public_one() {
    let reg = start().await;
    let mut upstream = upstream(&reg.base);
    upstream.npm_scopes.push(depfw::config::NpmScope {
        scope: "@mycorp".to_owned(),
        registry: Url::parse(&format!("{}/private-npm/", reg.base)).unwrap(),
        credential: None,
    });
    let cargo = format!(
        "[[upstream.cargo.private]]\nindex = \"sparse+{}/private-cargo/\"\nnames = [\"itoa\"]\n",
        reg.base
    );
    upstream.cargo_private = depfw::config::Config::from_toml(&cargo, "test")
        .unwrap()
        .upstream
        .cargo_private;
    let packages = [
        q(Ecosystem::Npm, "@mycorp/i18n", "1.0.0"),
        q(Ecosystem::CratesIo, "itoa", "1.0.18"),
    ];
    let _ = fetch_metadata(&packages, &upstream, &opts()).await;
    let hits = reg.seen.hits.lock().unwrap().clone();
    assert!(
        hits.keys().any(|p| p.starts_with("/private-npm/@mycorp")),
        "{hits:?}"
    );
    assert!(!hits.keys().any(|p| p.starts_with("/npm/")), "{hits:?}");
    // A private crate: its own index, never the main one nor the crates API (the main
    // index's config.json, which names no crate, may still be read for the API's address).
    assert!(hits.contains_key("/private-cargo/it/oa/itoa"), "{hits:?}");
    assert!(
        !hits
            .keys()
            .any(|p| p.starts_with("/cargo/index/it") || p.starts_with("/crates-api/")),
        "{hits:?}"
    );
}
