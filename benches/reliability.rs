//! `benches/reliability.sh`: how `depfw serve` holds up under abuse (issue #11), end to end
//! over real sockets on loopback against a generated fixture upstream:
//!
//! 1. load: 500 keep-alive connections fetching a cached packument, from one peer (the
//!    per-peer cap sheds part of it) and spread over five peers (127.0.0.1–5);
//! 2. slow clients: N connections sending their headers a byte at a time, then the latency
//!    of a normal request, of `/healthz` and of the admin endpoint meanwhile, and when the
//!    slow ones were disconnected;
//! 3. a huge packument (190,000 versions, ~62 MB): cold time to the last byte, depfw's peak
//!    memory over its baseline, `/healthz` latency meanwhile, and the warm time.
//!
//! Environment: `DEPFW_BIN` (default `target/release/depfw`), `RELIABILITY_SLOW` (slow
//! clients, default 1000), `RELIABILITY_VERSIONS` (default 190000), `RELIABILITY_SECS`
//! (length of each load run, default 5), `RELIABILITY_BYTES` (the packument's size, default
//! 62,000,000), `RELIABILITY_ONLY` (`huge`, `load` or `slow`: one part only).
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

#[path = "../tests/support/layout.rs"]
mod layout;
#[path = "support/process.rs"]
mod spawned;

use spawned::{free_port, Depfw};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::header;
use axum::response::IntoResponse;
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpSocket, TcpStream};

const TOKEN: &str = "reliability-admin-token-0123456789";

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A packument of `versions` versions with tarball URLs on `base`, each version padded
/// (its `description`) so the whole is about `target` bytes.
fn packument(name: &str, versions: usize, target: usize, base: &str) -> Vec<u8> {
    use std::fmt::Write as _;
    let entry = |i: usize, pad: &str| {
        let v = format!("{}.{}.{}", i / 10_000, (i / 100) % 100, i % 100);
        let mut e = String::new();
        write!(
            e,
            "\"{v}\":{{\"name\":\"{name}\",\"version\":\"{v}\",\"description\":\"{pad}\",\
             \"dist\":{{\"tarball\":\"{base}/{name}/-/{name}-{v}.tgz\",\
             \"integrity\":\"sha512-{}==\"}}}}",
            "A".repeat(86)
        )
        .unwrap();
        (v, e)
    };
    let time_entry = |v: &str| format!("\"{v}\":\"2020-01-01T00:00:00.000Z\"");
    let (v, bare) = entry(versions / 2, "");
    let per = bare.len() + time_entry(&v).len() + 2;
    let pad = "x".repeat((target / versions.max(1)).saturating_sub(per));
    let mut out = String::with_capacity(target + 1024);
    let mut time = String::with_capacity(versions * 40);
    write!(out, "{{\"name\":\"{name}\",\"versions\":{{").unwrap();
    let mut last = String::new();
    for i in 0..versions {
        let (v, e) = entry(i, &pad);
        if i > 0 {
            out.push(',');
            time.push(',');
        }
        out.push_str(&e);
        time.push_str(&time_entry(&v));
        last = v;
    }
    write!(
        out,
        "}},\"time\":{{\"created\":\"2019-01-01T00:00:00.000Z\",{time}}},\
         \"dist-tags\":{{\"latest\":\"{last}\"}}}}"
    )
    .unwrap();
    out.into_bytes()
}

#[derive(Clone)]
struct Upstream {
    huge: Bytes,
    small: Bytes,
}

async fn serve_doc(
    State(up): State<Arc<Upstream>>,
    UrlPath(name): UrlPath<String>,
) -> axum::response::Response {
    let body = match name.as_str() {
        "huge-pkg" => up.huge.clone(),
        "small-pkg" => up.small.clone(),
        _ => return axum::http::StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn start_upstream(versions: usize) -> (String, usize) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let huge = packument(
        "huge-pkg",
        versions,
        env_or("RELIABILITY_BYTES", 62_000_000),
        &base,
    );
    let size = huge.len();
    let small = packument("small-pkg", 60, 60 * 326, &base);
    let up = Arc::new(Upstream {
        huge: Bytes::from(huge),
        small: Bytes::from(small),
    });
    let app = axum::Router::new()
        .route("/{name}", axum::routing::get(serve_doc))
        .with_state(up);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, size)
}

/// `depfw serve` on the fixture upstream with its default limits; returns the process and
/// the mirror and admin ports once `/healthz` answers.
async fn start_depfw(bin: &Path, work: &Path, upstream: &str) -> (Depfw, u16, u16) {
    let (port, admin) = (free_port(), free_port());
    let data = work.join("data");
    let _ = std::fs::remove_dir_all(&data);
    let token = work.join("admin-token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = work.join("depfw.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ndata-dir = \"{}\"\n\n{}\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken-file = \"{}\"\n",
            data.display(),
            layout::upstream_toml(upstream),
            token.display()
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
    for _ in 0..600 {
        if let Ok(r) = request([127, 0, 0, 1], port, "/healthz", &[]).await {
            if r.status == 200 {
                return (guard, port, admin);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "depfw did not come up; see {}",
        work.join("depfw.log").display()
    );
}

async fn connect(from: [u8; 4], port: u16) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::from(from), 0))?;
    socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
}

struct Reply {
    status: u16,
    bytes: usize,
    close: bool,
}

/// Sends one `GET` on `conn` and reads the whole answer (Content-Length bodies only, which
/// is what depfw sends for these paths).
async fn exchange(
    conn: &mut BufReader<TcpStream>,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Reply> {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.get_mut().write_all(req.as_bytes()).await?;
    let mut line = String::new();
    if conn.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (mut length, mut close) = (None, false);
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
        if lower == "connection: close" {
            close = true;
        }
    }
    let bytes = match length {
        Some(n) => {
            let mut body = vec![0u8; n];
            conn.read_exact(&mut body).await?;
            n
        }
        None => {
            let mut body = Vec::new();
            conn.read_to_end(&mut body).await?;
            close = true;
            body.len()
        }
    };
    Ok(Reply {
        status,
        bytes,
        close,
    })
}

async fn request(
    from: [u8; 4],
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Reply> {
    let mut conn = BufReader::new(connect(from, port).await?);
    exchange(&mut conn, path, headers).await
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// `conns` keep-alive connections, spread round-robin over `peers` source addresses,
/// fetching `path` for `secs`.
async fn load(port: u16, path: &str, conns: usize, peers: u8, secs: u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let shed = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|i| {
            let (ok, shed, failed) = (ok.clone(), shed.clone(), failed.clone());
            let path = path.to_owned();
            let from = [127, 0, 0, 1 + (i % usize::from(peers)) as u8];
            tokio::spawn(async move {
                let mut lat = Vec::new();
                'outer: while Instant::now() < end {
                    let Ok(stream) = connect(from, port).await else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    };
                    let mut conn = BufReader::new(stream);
                    while Instant::now() < end {
                        let t = Instant::now();
                        match exchange(&mut conn, &path, &[]).await {
                            Ok(r) if r.status == 200 => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                lat.push(t.elapsed());
                                if r.close {
                                    continue 'outer;
                                }
                            }
                            Ok(r) if r.status == 503 => {
                                shed.fetch_add(1, Ordering::Relaxed);
                                drop(conn);
                                // As told by Retry-After, shortened so the run sees retries.
                                tokio::time::sleep(Duration::from_millis(500)).await;
                                continue 'outer;
                            }
                            other => {
                                if std::env::var_os("RELIABILITY_DEBUG").is_some() {
                                    match &other {
                                        Ok(r) => eprintln!("status {}", r.status),
                                        Err(e) => eprintln!("error {e}"),
                                    }
                                }
                                failed.fetch_add(1, Ordering::Relaxed);
                                drop(conn);
                                tokio::time::sleep(Duration::from_millis(500)).await;
                                continue 'outer;
                            }
                        }
                    }
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
    println!(
        "  {conns} connections from {peers} peer(s), {secs} s: {:.0} req/s served, p50 {}, p99 {}; \
         503 (shed): {}, failed/reset: {}",
        ok.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
        ms(pct(&all, 0.5)),
        ms(pct(&all, 0.99)),
        shed.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
}

/// Time to a complete answer, and its status.
async fn timed(from: [u8; 4], port: u16, path: &str, auth: bool) -> (Duration, u16) {
    let bearer = format!("Bearer {TOKEN}");
    let headers: Vec<(&str, &str)> = if auth {
        vec![("authorization", bearer.as_str()), ("connection", "close")]
    } else {
        vec![("connection", "close")]
    };
    let t = Instant::now();
    let status = match request(from, port, path, &headers).await {
        Ok(r) => r.status,
        Err(_) => 0,
    };
    (t.elapsed(), status)
}

/// `n` connections from 127.0.0.10… (100 per address) that send a request line and
/// then one header byte a second, never finishing.
async fn slow_clients(port: u16, admin: u16, n: usize) {
    let closed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut held = Vec::new();
    let mut refused = 0;
    for i in 0..n {
        let from = [127, 0, 1, 10 + (i / 100) as u8];
        match connect(from, port).await {
            Ok(mut s) => {
                let closed = closed.clone();
                held.push(tokio::spawn(async move {
                    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: ")
                        .await
                        .is_err()
                    {
                        closed.fetch_add(1, Ordering::Relaxed);
                        return started.elapsed();
                    }
                    let mut buf = [0u8; 512];
                    loop {
                        tokio::select! {
                            r = s.read(&mut buf) => match r {
                                Ok(0) | Err(_) => break,
                                Ok(_) => {}
                            },
                            () = tokio::time::sleep(Duration::from_secs(1)) => {
                                if s.write_all(b"x").await.is_err() { break; }
                            }
                        }
                    }
                    closed.fetch_add(1, Ordering::Relaxed);
                    started.elapsed()
                }));
            }
            Err(_) => refused += 1,
        }
    }
    let connected = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "  {n} slow clients (from {} addresses, 100 each) connected in {}, {refused} refused at connect; \
         2 s later {} already answered and closed (shed)",
        n.div_ceil(100),
        ms(connected),
        closed.load(Ordering::Relaxed),
    );
    let mut rows = Vec::new();
    for _ in 0..5 {
        rows.push([
            timed([127, 0, 0, 7], port, "/npm/small-pkg", false).await,
            timed([127, 0, 0, 7], port, "/healthz", false).await,
            timed([127, 0, 0, 7], admin, "/admin/api/quarantine", true).await,
        ]);
    }
    let worst = |i: usize| {
        let all: Vec<(Duration, u16)> = rows.iter().map(|r| r[i]).collect();
        let max = all.iter().map(|r| r.0).max().unwrap_or_default();
        let statuses: Vec<u16> = all.iter().map(|r| r.1).collect();
        format!("max {} (statuses {statuses:?})", ms(max))
    };
    println!("  meanwhile, 5 tries each from another peer:");
    println!("    cached packument /npm/small-pkg: {}", worst(0));
    println!("    /healthz:                        {}", worst(1));
    println!("    admin /admin/api/quarantine:     {}", worst(2));
    let mut ends = Vec::new();
    for h in held {
        if let Ok(Ok(t)) = tokio::time::timeout(Duration::from_secs(120), h).await {
            ends.push(t);
        }
    }
    ends.sort();
    println!(
        "  slow clients disconnected by depfw: {} of {n}, the last after {} (server.header-timeout-secs)",
        ends.len(),
        ms(ends.last().copied().unwrap_or_default()),
    );
}

/// Peak and current resident memory of `pid`, in bytes (Linux).
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn mb(b: u64) -> String {
    format!("{:.0} MB", b as f64 / 1e6)
}

async fn huge(port: u16, pid: u32, size: usize) {
    let (_, baseline) = memory(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let probe = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (d, _) = timed([127, 0, 0, 8], port, "/healthz", false).await;
                lat.push(d);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            lat
        })
    };
    let mut rows = Vec::new();
    for (label, headers) in [
        ("cold, full JSON", vec![("accept", "application/json")]),
        (
            "npm's request (corgi, gzip), from the parsed document",
            vec![
                (
                    "accept",
                    "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
                ),
                ("accept-encoding", "gzip"),
            ],
        ),
        ("warm, full JSON", vec![("accept", "application/json")]),
    ] {
        let t = Instant::now();
        let r = request([127, 0, 0, 9], port, "/npm/huge-pkg", &headers)
            .await
            .unwrap();
        rows.push(format!(
            "    {label}: {} ({}, {} bytes)",
            ms(t.elapsed()),
            r.status,
            r.bytes
        ));
    }
    stop.store(true, Ordering::Relaxed);
    let mut lat = probe.await.unwrap();
    lat.sort();
    let (peak, _) = memory(pid);
    println!(
        "  packument of {} versions, {} bytes upstream:",
        env_or("RELIABILITY_VERSIONS", 190_000usize),
        size
    );
    for r in rows {
        println!("{r}");
    }
    println!(
        "    depfw memory: {} before, peak {} (+{} = {:.1}x the packument)",
        mb(baseline),
        mb(peak),
        mb(peak.saturating_sub(baseline)),
        peak.saturating_sub(baseline) as f64 / size as f64
    );
    println!(
        "    /healthz meanwhile ({} probes): p50 {}, p99 {}, max {}",
        lat.len(),
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default())
    );
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin = std::env::var_os("DEPFW_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release/depfw"));
    let work = tempfile::tempdir().unwrap();
    let slow: usize = env_or("RELIABILITY_SLOW", 1000);
    let versions: usize = env_or("RELIABILITY_VERSIONS", 190_000);
    let secs: u64 = env_or("RELIABILITY_SECS", 5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (upstream, size) = start_upstream(versions).await;
        let (depfw, port, admin) = start_depfw(&bin, work.path(), &upstream).await;
        let pid = depfw.0.id();
        println!("depfw reliability ({}), default limits", bin.display());

        let only = std::env::var("RELIABILITY_ONLY").unwrap_or_default();
        let run = |part: &str| only.is_empty() || only == part;
        if run("huge") {
            println!("huge packument:");
            huge(port, pid, size).await;
        }
        if run("load") {
            println!("load (cached packument /npm/small-pkg, 60 versions; clients retry 0.5 s after a 503 or a reset):");
            // Warm it first.
            request([127, 0, 0, 1], port, "/npm/small-pkg", &[]).await.unwrap();
            load(port, "/npm/small-pkg", 500, 1, secs).await;
            load(port, "/npm/small-pkg", 500, 5, secs).await;
        }
        if run("slow") {
            println!("slow clients:");
            slow_clients(port, admin, slow).await;
        }
        drop(depfw);
    });
}
