//! End-to-end proxy benchmark: `depfw serve` (release binary, its own process) in front of
//! a recording registry mirror on 127.0.0.1 (npm, PyPI and crates.io in the fixture
//! registry's layout), against the same requests straight to the mirror.
//!
//! Run: `benches/proxy-bench.sh` (builds the release binary, then runs this). Reports:
//! - requests/s and p50/p99 for cached metadata (npm packuments, PyPI project pages,
//!   crates.io sparse-index files), straight and through depfw, and the latency depfw adds
//!   (through minus straight, per percentile, one connection);
//! - wall time of a warm `npm install` of a ~300-package project (express + jest) through
//!   depfw against the same install straight from the mirror.
//!
//! The first run records the project's packuments and tarballs from registry.npmjs.org, and
//! the measured PyPI pages and index files from pypi.org and index.crates.io, into
//! `$DEPFW_BENCH_DIR/mirror` (default `target/proxy-bench/mirror`); later runs are offline.
//! Environment: `DEPFW_BIN` (default `target/release/depfw`), `DEPFW_BENCH_RUNS` (installs
//! per side, default 3), `DEPFW_BENCH_REQUESTS` (per connection, default 2000).
//!
//! `benches/side-by-side.sh` runs this binary's `mirror` and `load` subcommands (see
//! [`subcommand`]) to measure Verdaccio, devpi-server and nginx on the same data.
#![allow(clippy::unwrap_used)]

#[path = "support/mirror.rs"]
mod mirror;
#[path = "support/process.rs"]
mod spawned;

use spawned::{free_port, Depfw};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use depfw::package::{Ecosystem, PackageName};

/// ~330 packages in total (jest alone pulls ~270).
const PROJECT: &str = r#"{"name":"depfw-bench","version":"1.0.0","private":true,
"dependencies":{"express":"4.21.2","jest":"29.7.0"}}"#;
const CONNECTIONS: usize = 8;

type Headers = &'static [(&'static str, &'static str)];

/// The same document on every side: full JSON, no compression.
const FULL: Headers = &[
    ("accept", "application/json"),
    ("accept-encoding", "identity"),
];
/// What npm sends for a packument: the abbreviated (corgi) form, gzip.
const NPM: Headers = &[
    (
        "accept",
        "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
    ),
    ("accept-encoding", "gzip,deflate"),
];
/// What pip sends for a project page: PEP 691 JSON preferred, gzip.
const PIP: Headers = &[
    ("accept", "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"),
    ("accept-encoding", "gzip, deflate"),
];
/// What cargo sends for a sparse-index file (captured from cargo 1.95 against a listening
/// socket; curl adds `Upgrade: h2c`, which a plain-HTTP/1.1 server ignores).
const CARGO: Headers = &[
    ("accept", "text/plain"),
    ("accept-encoding", "deflate, gzip"),
    ("cargo-protocol", "version=1"),
    ("user-agent", "cargo/1.95.0 (f2d3ce0bd 2026-03-21)"),
];

/// PyPI pages measured: a typical page (requests, ~250 files) and a big one (numpy,
/// ~4,400 files). Recorded from pypi.org on the first run.
const PYPI_PROJECTS: &[&str] = &["requests", "numpy"];
/// Sparse-index files measured: a crate with many versions and a small one.
const CRATES: &[&str] = &["serde", "itoa"];

/// One cached-metadata row: the URL through depfw, the same document on the mirror (for the
/// added latency), the request headers and the requests per connection.
struct Case {
    label: String,
    through: String,
    direct: Option<String>,
    headers: Vec<(&'static str, &'static str)>,
    per_conn: usize,
}

/// A crate's path in the sparse index (`se/rd/serde`), as depfw computes it.
fn index_path(krate: &str) -> String {
    let name = PackageName::parse(Ecosystem::CratesIo, krate).unwrap();
    let base = url::Url::parse("http://index.invalid/").unwrap();
    let url = depfw::registry::cargo::upstream_index_url(&base, &name).unwrap();
    url.path().trim_start_matches('/').to_owned()
}

/// The number of files on a recorded PyPI page and the format it was recorded in.
async fn pypi_page_info(
    m: &mirror::Mirror,
    upstream: &str,
    project: &str,
) -> (usize, &'static str) {
    let rel = format!("pypi/simple/{project}/");
    let doc = m
        .doc(&rel)
        .await
        .unwrap_or_else(|| panic!("{rel} is not recorded"));
    let name = PackageName::parse(Ecosystem::PyPI, project).unwrap();
    let url = url::Url::parse(&format!("{upstream}/{rel}")).unwrap();
    let page =
        depfw::registry::pypi::parse_project_page(&doc.body, Some(doc.content_type), &url, &name)
            .unwrap();
    (page.files.len(), doc.content_type)
}

/// The number of versions in a recorded index file.
async fn index_versions(m: &mirror::Mirror, krate: &str, path: &str) -> usize {
    let rel = format!("cargo-index/{path}");
    let doc = m
        .doc(&rel)
        .await
        .unwrap_or_else(|| panic!("{rel} is not recorded"));
    let name = PackageName::parse(Ecosystem::CratesIo, krate).unwrap();
    depfw::registry::cargo::IndexFile::parse(&doc.body, &name)
        .unwrap()
        .records()
        .len()
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Stats {
    rps: f64,
    /// Body size of one response, as sent (compressed when the server compressed it).
    bytes: usize,
    p50: Duration,
    p99: Duration,
}

/// `conns` connections each sending `per_conn` GETs back to back.
async fn load(url: &str, headers: &[(&str, &str)], conns: usize, per_conn: usize) -> Stats {
    let mut h = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        h.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    // No automatic decompression: the client reads the bytes as sent.
    let client = reqwest::Client::builder()
        .default_headers(h)
        .no_gzip()
        .pool_max_idle_per_host(conns)
        .build()
        .unwrap();
    // Warm: upstream fetch, render, gzip, connections.
    let mut bytes = 0;
    for _ in 0..3 {
        let r = client.get(url).send().await.unwrap();
        assert!(r.status().is_success(), "{url}: {}", r.status());
        bytes = r.bytes().await.unwrap().len();
    }
    let start = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let client = client.clone();
            let url = url.to_owned();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_conn);
                for _ in 0..per_conn {
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
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Stats {
        rps: all.len() as f64 / elapsed.as_secs_f64(),
        bytes,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

fn npm_install(project: &Path, registry: &str, cache: &Path) -> Duration {
    let _ = std::fs::remove_dir_all(project.join("node_modules"));
    let _ = std::fs::remove_file(project.join("package-lock.json"));
    let _ = std::fs::remove_dir_all(cache);
    let npmrc = project.join(".bench-globalnpmrc");
    std::fs::write(&npmrc, "").unwrap();
    let t = Instant::now();
    let out = Command::new("npm")
        .arg("install")
        .arg(format!("--registry={registry}"))
        .arg(format!("--cache={}", cache.display()))
        .arg("--userconfig=/dev/null")
        .arg(format!("--globalconfig={}", npmrc.display()))
        .args([
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--loglevel=error",
        ])
        .current_dir(project)
        .output()
        .unwrap();
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "npm install from {registry} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn installed_packages(project: &Path) -> usize {
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.join("package-lock.json")).unwrap()).unwrap();
    lock["packages"]
        .as_object()
        .map(|p| p.keys().filter(|k| !k.is_empty()).count())
        .unwrap_or(0)
}

async fn start_depfw(bin: &Path, work: &Path, upstream: &str) -> (Depfw, String) {
    let port = free_port();
    let data = work.join("depfw-data");
    let _ = std::fs::remove_dir_all(&data);
    let config = work.join("depfw.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ndata-dir = \"{}\"\n\n{}",
            data.display(),
            mirror::layout::upstream_toml(upstream)
        ),
    )
    .unwrap();
    let log = std::fs::File::create(work.join("depfw.log")).unwrap();
    let child = Command::new(bin)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let guard = Depfw(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                return (guard, base);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "depfw did not become healthy; see {}",
        work.join("depfw.log").display()
    );
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The pieces `benches/side-by-side.sh` drives against other registries, so that every
/// server there is fed by this mirror and measured by this load generator:
/// - `mirror <dir> <url-file>`: serves (and, on a miss, records) the mirror in `dir`, writes
///   its base URL to `url-file` once it listens, and runs until killed;
/// - `load <url> <full|npm|pip|cargo> <connections> <requests per connection>`: prints
///   `req/s p50-ms p99-ms bytes-per-response` for that URL with those clients' headers.
fn subcommand(args: &[String]) -> bool {
    let rt = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    match args {
        [cmd, dir, url_file] if cmd == "mirror" => rt().block_on(async {
            let (base, _m) = mirror::start(Path::new(dir), true).await;
            std::fs::write(url_file, &base).unwrap();
            std::future::pending::<()>().await
        }),
        [cmd, url, headers, conns, per_conn] if cmd == "load" => {
            let headers = match headers.as_str() {
                "full" => FULL,
                "npm" => NPM,
                "pip" => PIP,
                "cargo" => CARGO,
                other => panic!("headers: full, npm, pip or cargo, not {other}"),
            };
            let (conns, per_conn) = (conns.parse().unwrap(), per_conn.parse().unwrap());
            let s = rt().block_on(load(url, headers, conns, per_conn));
            println!(
                "{:.0} {:.3} {:.3} {}",
                s.rps,
                s.p50.as_secs_f64() * 1e3,
                s.p99.as_secs_f64() * 1e3,
                s.bytes
            );
        }
        _ => return false,
    }
    true
}

fn main() {
    // `cargo bench` passes `--bench`; anything else names a subcommand.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if subcommand(&args) {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin = std::env::var_os("DEPFW_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release/depfw"));
    let work = std::env::var_os("DEPFW_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/proxy-bench"));
    let runs: usize = env_or("DEPFW_BENCH_RUNS", 3);
    let per_conn: usize = env_or("DEPFW_BENCH_REQUESTS", 2000);
    let mirror_dir = work.join("mirror");
    let project = work.join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("package.json"), PROJECT).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Recording: a miss is fetched from registry.npmjs.org. Both a direct install and
        // one through depfw run while recording, because depfw's policy may resolve other
        // versions (e.g. older ones under a cooldown) than the direct install does.
        let recording = !mirror_dir.join("complete").exists();
        if recording {
            eprintln!(
                "recording the project's packages from registry.npmjs.org into {} (once)",
                mirror_dir.display()
            );
        }
        let (upstream, m) = mirror::start(&mirror_dir, recording).await;
        let (_depfw, depfw) = start_depfw(&bin, &work, &upstream).await;
        let cache = work.join("npm-cache");
        let install = |registry: String| {
            let (p, c) = (project.clone(), cache.clone());
            tokio::task::spawn_blocking(move || npm_install(&p, &registry, &c))
        };
        let depfw_registry = format!("{depfw}/npm/");
        if recording {
            install(format!("{upstream}/")).await.unwrap();
        }
        // Priming fills depfw's metadata and artifact caches.
        let prime = install(depfw_registry.clone()).await.unwrap();
        if recording {
            std::fs::write(mirror_dir.join("complete"), "").unwrap();
        }
        let (packuments, tarballs) = m.counts();

        m.record_pages(PYPI_PROJECTS, CRATES).await.unwrap_or_else(|e| panic!("{e}"));

        // Cached metadata. Identical requests on both sides (same format, no compression) so
        // the difference is depfw's added latency; the "client" rows add the client's own
        // headers (npm: corgi and gzip; pip: JSON preferred, gzip).
        const CARGO: Headers = &[("accept", "*/*"), ("accept-encoding", "identity")];
        let case = |label: String, through: String, direct: Option<String>, headers: Vec<(&'static str, &'static str)>| Case {
            label, through, direct, headers, per_conn,
        };
        let mut cases = vec![
            case("npm packument express (full JSON)".into(), format!("{depfw}/npm/express"), Some(format!("{upstream}/express")), FULL.to_vec()),
            case("npm packument express (npm client: corgi, gzip)".into(), format!("{depfw}/npm/express"), None, NPM.to_vec()),
            case("npm packument ms (small)".into(), format!("{depfw}/npm/ms"), Some(format!("{upstream}/ms")), FULL.to_vec()),
        ];
        for (i, project) in PYPI_PROJECTS.iter().enumerate() {
            let rel = format!("pypi/simple/{project}/");
            let (files, content_type) = pypi_page_info(&m, &upstream, project).await;
            let format = if content_type == mirror::layout::PYPI_JSON { "PEP 691 JSON" } else { "PEP 503 HTML" };
            let same = vec![("accept", content_type), ("accept-encoding", "identity")];
            let mut c = case(format!("PyPI page {project} ({files} files, {format})"), format!("{depfw}/{rel}"), Some(format!("{upstream}/{rel}")), same);
            // The big page gets fewer requests, so that its rows take seconds, not minutes.
            if i > 0 {
                c.per_conn = (per_conn / 10).max(50);
            }
            cases.push(c);
            if i == 0 {
                cases.push(case(format!("PyPI page {project} (pip client: JSON preferred, gzip)"), format!("{depfw}/{rel}"), None, PIP.to_vec()));
            }
        }
        for krate in CRATES {
            let path = index_path(krate);
            let versions = index_versions(&m, krate, &path).await;
            cases.push(case(format!("crates index file {krate} ({versions} versions)"), format!("{depfw}/cargo/index/{path}"), Some(format!("{upstream}/cargo-index/{path}")), CARGO.to_vec()));
        }
        println!("\n## depfw proxy benchmark\n");
        println!("mirror: {packuments} packuments, {tarballs} tarballs in {}; PyPI pages {}; crates index files {}", mirror_dir.display(), PYPI_PROJECTS.join(", "), CRATES.join(", "));
        println!("load: {CONNECTIONS} connections x {per_conn} requests for req/s; 1 connection x {per_conn} for latency (rows marked [n] use n requests per connection)\n");
        println!("| cached metadata | side | req/s ({CONNECTIONS} conns) | p50 (1 conn) | p99 (1 conn) | p50 added | p99 added |");
        println!("|---|---|---:|---:|---:|---:|---:|");
        for Case { label, through, direct, headers, per_conn: n } in &cases {
            let label = if *n == per_conn { label.clone() } else { format!("{label} [{n}]") };
            let t_lat = load(through, headers, 1, *n).await;
            let t_rps = load(through, headers, CONNECTIONS, *n).await;
            if let Some(direct) = direct {
                let d_lat = load(direct, headers, 1, *n).await;
                let d_rps = load(direct, headers, CONNECTIONS, *n).await;
                println!("| {label} | upstream | {:.0} | {} | {} | | |", d_rps.rps, ms(d_lat.p50), ms(d_lat.p99));
                let added = |a: Duration, b: Duration| format!("{:+.2} ms", (a.as_secs_f64() - b.as_secs_f64()) * 1e3);
                println!(
                    "| {label} | depfw | {:.0} ({:.2}x) | {} | {} | {} | {} |",
                    t_rps.rps, t_rps.rps / d_rps.rps, ms(t_lat.p50), ms(t_lat.p99),
                    added(t_lat.p50, d_lat.p50), added(t_lat.p99, d_lat.p99)
                );
            } else {
                println!("| {label} | depfw | {:.0} | {} | {} | | |", t_rps.rps, ms(t_lat.p50), ms(t_lat.p99));
            }
        }

        // Warm installs, alternating sides so machine noise hits both alike. npm's own cache
        // starts empty every time, so every packument and tarball is requested.
        let packages = installed_packages(&project);
        let (mut direct, mut through) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            direct.push(install(format!("{upstream}/")).await.unwrap());
            through.push(install(depfw_registry.clone()).await.unwrap());
        }
        let (d, t) = (median(direct.clone()), median(through.clone()));
        println!("\n| npm install, {packages} packages, empty npm cache | median of {runs} | runs |");
        println!("|---|---:|---|");
        println!("| straight from the mirror | {} | {:?} |", ms(d), direct.iter().map(|x| ms(*x)).collect::<Vec<_>>());
        println!("| through depfw, cold (first install; recording too on the first run) | {} | |", ms(prime));
        println!("| through depfw, warm | {} ({:.3}x) | {:?} |", ms(t), t.as_secs_f64() / d.as_secs_f64(), through.iter().map(|x| ms(*x)).collect::<Vec<_>>());
        let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "\nconditions: {} CPUs, load average {}",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            loadavg.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        );
    });
}
