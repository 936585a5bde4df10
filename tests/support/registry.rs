//! The fixture registry shared by the proxy and real-client tests: a hermetic registry on
//! 127.0.0.1 serving the real packuments and tarballs committed under `integration/fixtures/npm/`,
//! PyPI project pages and wheels (`fixtures/pypi/`, under `/pypi/simple/` and
//! `/pypi-files/`) and a crates.io sparse index with `.crate` files (`fixtures/cargo/`, under
//! `/cargo-index/` and `/crates/`), a small test policy, and depfw itself started in-process.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use depfw::config::Config;
use depfw::diag::Code;
use depfw::policy::{Check, Finding, PackageCtx, Policy, Severity, Verdict};
use depfw::server::{AppState, PolicyState};
use depfw::store::Store;
use futures_util::StreamExt;
use serde_json::Value;

use super::layout::{self, Route};

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("integration/fixtures/npm")
}

/// An OSV `all.zip` of the malicious-package fixtures (`tests/fixtures/osv/malicious-*`), for
/// `depfw feeds sync` against this registry.
pub const OSV_ARCHIVE: &str = "osv/all.zip";

/// How the fixture registry misbehaves for one path (the hostile upstreams of
/// `integration/faults.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Status500,
    /// Sleeps this long before answering.
    Slow(u64),
    /// Closes the connection mid-body.
    Reset,
    InvalidJson,
    /// A body of this many bytes.
    Huge(usize),
    /// Accepts the request and never answers.
    Hang,
    /// Promises `Content-Length: 100000`, sends 10 bytes and ends the body.
    Truncated,
    /// `Content-Encoding: gzip`, a few kilobytes per gigabyte: inflates to this many GiB
    /// (streamed as it is read, so the fixture holds none of it).
    GzipBomb(u64),
    /// A body of this many bytes, sent in 64 KiB chunks without a `Content-Length`
    /// (streamed, so the fixture holds none of it).
    Endless(u64),
    /// One `chunk`-byte piece every `every_ms` ms, 1000 pieces (`Content-Length` set).
    SlowBody {
        chunk: usize,
        every_ms: u64,
    },
    /// An npm packument with this many versions, generated.
    ManyVersions(usize),
    /// A `302` to `http://127.0.0.1:<port><to>`.
    Redirect {
        port: u16,
        to: &'static str,
    },
    /// `404`, though the fixture has the document.
    NotFound,
}

#[derive(Default)]
pub struct FixtureState {
    /// The fixture's own base URL, where its tarball URLs and cargo `dl` point.
    pub base: Mutex<String>,
    /// Tarball file names served with one byte flipped.
    pub tamper: Mutex<HashSet<String>>,
    /// Request path → fault.
    pub faults: Mutex<HashMap<String, Fault>>,
    /// (package, version) → publish time rewritten at serve time.
    pub times: Mutex<HashMap<(String, String), DateTime<Utc>>>,
    /// Packages whose packument is served without `time` (some registries and mirrors).
    pub timeless: Mutex<HashSet<String>>,
    /// (package, version text) added to a packument as a copy of its `latest` version: a
    /// version no real registry would list, such as one depfw cannot parse.
    pub extra_versions: Mutex<Vec<(String, String)>>,
    /// Requests per path.
    pub hits: Mutex<HashMap<String, usize>>,
    /// Request path → a delay before answering (and before any fault): keeps requests in
    /// flight together, to see them share one upstream fetch.
    pub delays: Mutex<HashMap<String, Duration>>,
    pub not_modified: AtomicUsize,
    /// Points every `dist.tarball`, and the cargo `config.json`'s `dl`, at another host.
    pub foreign_tarballs: std::sync::atomic::AtomicBool,
    /// Drops every `dist.integrity`, leaving only the SHA-1 `dist.shasum` (the oldest npm
    /// packages).
    pub sha1_only: std::sync::atomic::AtomicBool,
    /// Artifact file name → bytes served instead of the committed file, with the npm
    /// packument's `dist.integrity` and `dist.shasum` made to match (a hostile release whose
    /// digest is genuine, for the content rules).
    pub replaced: Mutex<HashMap<String, Vec<u8>>>,
    /// The `Authorization` every request must carry (a private registry); others get 401.
    pub required_auth: Mutex<Option<String>>,
    /// Each request's path and `Authorization` header, in order.
    pub authorizations: Mutex<Vec<(String, Option<String>)>>,
}

impl FixtureState {
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn packument(state: &FixtureState, name: &str) -> Option<Vec<u8>> {
    let file = fixtures_dir().join(format!("{}.json", name.replace('/', "__")));
    let mut doc: Value = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
    let mut base = state.base.lock().unwrap().clone();
    if state.foreign_tarballs.load(Ordering::Relaxed) {
        base = "http://169.254.169.254".to_owned();
    }
    let latest = doc["dist-tags"]["latest"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for (pkg, v) in state.extra_versions.lock().unwrap().iter() {
        if pkg == name {
            doc["versions"][v] = doc["versions"][&latest].clone();
            doc["versions"][v]["version"] = Value::String(v.clone());
        }
    }
    if let Some(Value::Object(versions)) = doc.get_mut("versions") {
        for (v, vdoc) in versions.iter_mut() {
            let basename = name.rsplit('/').next().unwrap();
            vdoc["dist"]["tarball"] = Value::String(format!("{base}/{name}/-/{basename}-{v}.tgz"));
            if let Some(bytes) = state
                .replaced
                .lock()
                .unwrap()
                .get(&format!("{basename}-{v}.tgz"))
            {
                use base64::Engine as _;
                use sha2::Digest as _;
                let sha512 =
                    base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(bytes));
                vdoc["dist"]["integrity"] = Value::String(format!("sha512-{sha512}"));
                vdoc["dist"]["shasum"] = Value::String(hex::encode(sha1::Sha1::digest(bytes)));
            }
            if state.sha1_only.load(Ordering::Relaxed) {
                if let Some(dist) = vdoc["dist"].as_object_mut() {
                    dist.remove("integrity");
                }
            }
        }
    }
    for ((pkg, v), t) in state.times.lock().unwrap().iter() {
        if pkg == name {
            doc["time"][v] = Value::String(t.to_rfc3339());
        }
    }
    if state.timeless.lock().unwrap().contains(name) {
        if let Some(doc) = doc.as_object_mut() {
            doc.remove("time");
        }
    }
    Some(serde_json::to_vec(&doc).unwrap())
}

fn fixture_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("integration/fixtures")
}

/// A PyPI project page (PEP 691 JSON) with file URLs on this fixture and upload times
/// from `times` where set.
fn pypi_page(state: &FixtureState, project: &str) -> Option<Vec<u8>> {
    let file = fixture_root().join(format!("pypi/{project}.json"));
    let text = std::fs::read_to_string(file).ok()?;
    let base = state.base.lock().unwrap().clone();
    let mut doc: Value =
        serde_json::from_str(&text.replace("FILES/", &layout::pypi_files_base(&base))).ok()?;
    let times = state.times.lock().unwrap();
    let replaced = state.replaced.lock().unwrap();
    for f in doc["files"].as_array_mut()? {
        let name = f["filename"].as_str()?.to_owned();
        if let Some(bytes) = replaced.get(&name) {
            use sha2::Digest as _;
            f["hashes"]["sha256"] = Value::String(hex::encode(sha2::Sha256::digest(bytes)));
            f["size"] = Value::from(bytes.len());
        }
        let version = name.split('-').nth(1)?.to_owned();
        if let Some(t) = times.get(&(project.to_owned(), version)) {
            f["upload-time"] = Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
    }
    Some(serde_json::to_vec(&doc).unwrap())
}

/// A sparse index file with `pubtime` from `times` where set.
fn cargo_index(state: &FixtureState, name: &str) -> Option<Vec<u8>> {
    let text = std::fs::read_to_string(fixture_root().join("cargo").join(name)).ok()?;
    let times = state.times.lock().unwrap();
    let replaced = state.replaced.lock().unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let mut entry: Value = serde_json::from_str(line).ok()?;
        let version = entry["vers"].as_str()?.to_owned();
        if let Some(bytes) = replaced.get(&format!("{name}-{version}.crate")) {
            use sha2::Digest as _;
            entry["cksum"] = Value::String(hex::encode(sha2::Sha256::digest(bytes)));
            out.push_str(&entry.to_string());
        } else if let Some(t) = times.get(&(name.to_owned(), version)) {
            entry["pubtime"] = Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            out.push_str(&entry.to_string());
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    Some(out.into_bytes())
}

/// A committed artifact, with one byte flipped when its file name is in `tamper`.
fn artifact_file(state: &FixtureState, dir: &str, file: &str) -> Response {
    if let Some(bytes) = state.replaced.lock().unwrap().get(file) {
        return (StatusCode::OK, bytes.clone()).into_response();
    }
    let Ok(mut bytes) = std::fs::read(fixture_root().join(dir).join(file)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if state.tamper.lock().unwrap().contains(file) {
        bytes[100] ^= 0xff;
    }
    (StatusCode::OK, bytes).into_response()
}

async fn serve_fixture(State(state): State<Arc<FixtureState>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    *state.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap().to_owned());
    state
        .authorizations
        .lock()
        .unwrap()
        .push((path.clone(), auth.clone()));
    let required = state.required_auth.lock().unwrap().clone();
    if required.is_some() && auth != required {
        return (
            StatusCode::UNAUTHORIZED,
            "{\"error\":\"authentication required\"}",
        )
            .into_response();
    }
    let delay = state.delays.lock().unwrap().get(&path).copied();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let fault = state.faults.lock().unwrap().get(&path).copied();
    if fault == Some(Fault::Hang) {
        futures_util::future::pending::<()>().await;
    }
    if let Some(resp) = fault.and_then(|f| hostile(f, &path)) {
        return resp;
    }
    match fault {
        Some(Fault::Status500) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()
        }
        Some(Fault::Slow(secs)) => tokio::time::sleep(Duration::from_secs(secs)).await,
        Some(Fault::NotFound) => return (StatusCode::NOT_FOUND, "{}").into_response(),
        Some(Fault::InvalidJson) => return (StatusCode::OK, "{\"versions\": [").into_response(),
        Some(Fault::Huge(n)) => return (StatusCode::OK, vec![b' '; n]).into_response(),
        Some(Fault::Reset) => {
            // Promise more than is sent, then fail the stream: hyper aborts the connection.
            let chunks: Vec<Result<&'static [u8], std::io::Error>> = vec![
                Ok(b"{\"name\": \"x\", "),
                Err(std::io::Error::other("reset")),
            ];
            let mut resp = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("100000"));
            return resp;
        }
        _ => {}
    }
    let decoded = percent_encoding::percent_decode_str(&path)
        .decode_utf8_lossy()
        .into_owned();
    let rel = decoded.trim_start_matches('/');
    if rel == OSV_ARCHIVE {
        let zip = super::osv_zip(|name| name.starts_with("malicious"));
        return (StatusCode::OK, zip).into_response();
    }
    let (doc, content_type) = match layout::route(rel) {
        Route::PypiFile(file) => return artifact_file(&state, "pypi/files", file),
        Route::Crate(file) => return artifact_file(&state, "cargo/crates", file),
        Route::NpmTarball { file, .. } => return artifact_file(&state, "npm/tarballs", file),
        Route::PypiPage(project) => (pypi_page(&state, project), layout::PYPI_JSON),
        Route::CargoConfig => {
            let mut base = state.base.lock().unwrap().clone();
            if state.foreign_tarballs.load(Ordering::Relaxed) {
                base = "http://169.254.169.254".to_owned();
            }
            let config = layout::cargo_config(&base).into_bytes();
            (Some(config), "application/json")
        }
        Route::CargoIndex(name) => (cargo_index(&state, name), "text/plain"),
        Route::Packument(name) => (packument(&state, name), "application/json"),
    };
    let Some(body) = doc else {
        return (StatusCode::NOT_FOUND, "{\"error\":\"Not found\"}").into_response();
    };
    let etag = format!("\"{}\"", body.len() ^ 0x5a5a);
    let inm = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if inm == Some(etag.as_str()) {
        state.not_modified.fetch_add(1, Ordering::Relaxed);
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut()
        .insert(header::ETAG, HeaderValue::from_str(&etag).unwrap());
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// The answer of the faults added for `integration/faults.rs`; `None` for the others.
fn hostile(fault: Fault, path: &str) -> Option<Response> {
    let with_length = |body: Body, length: u64| {
        let mut resp = Response::new(body);
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        resp
    };
    Some(match fault {
        Fault::Truncated => {
            let chunks: Vec<Result<&'static [u8], std::io::Error>> = vec![Ok(b"0123456789")];
            with_length(
                Body::from_stream(futures_util::stream::iter(chunks)),
                100_000,
            )
        }
        Fault::GzipBomb(gib) => {
            let mut resp = Response::new(Body::from_stream(gzip_bomb(gib)));
            resp.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Fault::Endless(total) => {
            const CHUNK: u64 = 64 * 1024;
            let chunks = (0..total.div_ceil(CHUNK)).map(move |i| {
                let n = CHUNK.min(total - i * CHUNK) as usize;
                Ok::<_, std::io::Error>(Bytes::from(vec![b' '; n]))
            });
            Response::new(Body::from_stream(futures_util::stream::iter(chunks)))
        }
        Fault::SlowBody { chunk, every_ms } => {
            let pieces = 1000u64;
            let stream = futures_util::stream::iter(0..pieces).then(move |_| async move {
                tokio::time::sleep(Duration::from_millis(every_ms)).await;
                Ok::<_, std::io::Error>(Bytes::from(vec![b' '; chunk]))
            });
            with_length(Body::from_stream(stream), pieces * chunk as u64)
        }
        Fault::ManyVersions(n) => {
            let name = path.trim_start_matches('/');
            let mut body = format!(
                "{{\"name\":\"{name}\",\"dist-tags\":{{\"latest\":\"1.0.{}\"}},\"versions\":{{",
                n - 1
            );
            for i in 0..n {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(&format!(
                    "\"1.0.{i}\":{{\"name\":\"{name}\",\"version\":\"1.0.{i}\",\"dist\":{{\"tarball\":\"http://127.0.0.1:9/{name}/-/{name}-1.0.{i}.tgz\",\"shasum\":\"{:040x}\"}}}}",
                    i
                ));
            }
            body.push_str("}}");
            let mut resp = (StatusCode::OK, body).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Fault::Redirect { port, to } => {
            let mut resp = StatusCode::FOUND.into_response();
            let to = format!("http://127.0.0.1:{port}{to}");
            resp.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_str(&to).unwrap());
            resp
        }
        _ => return None,
    })
}

/// A gzip stream that inflates to `gib` GiB of spaces, produced as it is read: one
/// deflate block sequence of 1 MiB of spaces, full-flushed so that it stands alone, repeated;
/// the trailer's CRC is never reached by a reader that stops at its limit.
fn gzip_bomb(gib: u64) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    let mut deflate = flate2::Compress::new(flate2::Compression::best(), false);
    let input = vec![b' '; 1 << 20];
    let mut block = Vec::with_capacity(8 << 10);
    deflate
        .compress_vec(&input, &mut block, flate2::FlushCompress::Full)
        .unwrap();
    assert_eq!(
        deflate.total_in(),
        1 << 20,
        "one call deflates the whole MiB"
    );
    let block = Bytes::from(block);
    let header = Bytes::from_static(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    let blocks = (0..gib * 1024).map(move |_| Ok(block.clone()));
    futures_util::stream::iter(std::iter::once(Ok(header)).chain(blocks))
}

/// Starts the fixture registry on the current runtime; returns its base URL.
pub async fn start_fixture() -> (String, Arc<FixtureState>) {
    let state = Arc::new(FixtureState::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    *state.base.lock().unwrap() = base.clone();
    let app = axum::Router::new()
        .fallback(serve_fixture)
        .with_state(Arc::clone(&state));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, state)
}

/// A policy check for tests: denies or quarantines listed `name@version`s and names, and
/// enforces a cooldown on publish time. Its findings carry real codes, each list its own,
/// so that assertions read what users see: `possible-typosquat` (denied names),
/// `deny-listed` (denied versions), `new-package` (held versions), `release-cooldown`.
#[derive(Default, Clone)]
pub struct TestCheck {
    pub deny: Vec<String>,
    pub quarantine: Vec<String>,
    pub deny_names: Vec<String>,
    /// Names held at name level (quarantine), as a look-alike name is.
    pub quarantine_names: Vec<String>,
    pub cooldown_hours: Option<i64>,
    /// Counts version evaluations (shared by clones): a metadata request served from the
    /// render cache evaluates no version.
    pub version_evaluations: Arc<AtomicUsize>,
}

impl TestCheck {
    pub fn version_evaluations(&self) -> usize {
        self.version_evaluations.load(Ordering::Relaxed)
    }
}

impl Check for TestCheck {
    fn name(&self) -> &'static str {
        "test"
    }
    fn evaluate(&self, ctx: &PackageCtx<'_>, findings: &mut Vec<Finding>) {
        let finding = |code: Code, verdict, message: String| {
            Finding::new(code, Severity::High, verdict, message)
        };
        let name = ctx.name.as_str();
        if self.deny_names.iter().any(|n| n == name) {
            findings.push(finding(
                Code::PossibleTyposquat,
                Verdict::Deny,
                format!("{name} looks like a typosquat"),
            ));
        }
        if self.quarantine_names.iter().any(|n| n == name) {
            findings.push(finding(
                Code::PossibleTyposquat,
                Verdict::Quarantine,
                format!("`{name}` looks like a typosquat of `{name}x`"),
            ));
        }
        let Some(v) = ctx.version else { return };
        self.version_evaluations.fetch_add(1, Ordering::Relaxed);
        let spec = format!("{name}@{v}");
        if self.deny.contains(&spec) {
            findings.push(finding(
                Code::DenyListed,
                Verdict::Deny,
                format!("{spec} is on the test deny list"),
            ));
        }
        if self.quarantine.contains(&spec) {
            findings.push(finding(
                Code::NewPackage,
                Verdict::Quarantine,
                format!("{spec} is held"),
            ));
        }
        if let (Some(hours), Some(published)) =
            (self.cooldown_hours, ctx.metadata.and_then(|m| m.published))
        {
            if ctx.now - published < chrono::Duration::hours(hours) {
                findings.push(finding(
                    Code::ReleaseCooldown,
                    Verdict::Quarantine,
                    format!("{spec} is too new"),
                ));
            }
        }
    }
}

pub fn policy(check: TestCheck) -> PolicyState {
    // Every setting that changes a verdict is in the revision, as in the real policy: the
    // render cache and ETags key on it.
    let rev = format!(
        "test-{}-{}-{}-{}-{:?}",
        check.deny.join(","),
        check.quarantine.join(","),
        check.deny_names.join(","),
        check.quarantine_names.join(","),
        check.cooldown_hours
    );
    PolicyState::Ready(Policy::new(vec![Arc::new(check)], Arc::default(), rev))
}

pub struct Depfw {
    pub base: String,
    pub addr: SocketAddr,
    pub state: AppState,
    pub store: Store,
    pub dir: tempfile::TempDir,
}

/// depfw's config for a fixture upstream, public at `public`; `extra` follows `[upstream]`.
pub fn config(upstream: &str, public: &str, data_dir: &std::path::Path, extra: &str) -> Config {
    config_with(upstream, public, data_dir, "", extra)
}

/// [`config`] with more `[server]` keys (`server` lines, e.g. `refused-versions = "yank"`).
pub fn config_with(
    upstream: &str,
    public: &str,
    data_dir: &std::path::Path,
    server: &str,
    extra: &str,
) -> Config {
    let text = format!(
        "[server]\npublic-url = \"{public}\"\ndata-dir = \"{}\"\n{server}\n\n{}{extra}\n",
        data_dir.display(),
        layout::upstream_toml(upstream)
    );
    Config::from_toml(&text, "test").unwrap()
}

/// Starts depfw on 127.0.0.1:0 on the current runtime.
pub async fn start_depfw(upstream: &str, policy: PolicyState, extra: &str) -> Depfw {
    start_depfw_with(upstream, policy, "", extra).await
}

/// [`start_depfw`] with more `[server]` keys (see [`config_with`]).
pub async fn start_depfw_with(
    upstream: &str,
    policy: PolicyState,
    server: &str,
    extra: &str,
) -> Depfw {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let config = config_with(upstream, &base, dir.path(), server, extra);
    let store = Store::open(dir.path()).unwrap();
    let state = AppState::new(&config, &store, policy).unwrap();
    let app = depfw::server::app(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Depfw {
        base,
        addr,
        state,
        store,
        dir,
    }
}

/// depfw's state (no listener) over a fresh fixture registry, for `oneshot` router tests.
pub async fn router_setup(
    check: TestCheck,
    public: &str,
) -> (AppState, Arc<FixtureState>, tempfile::TempDir) {
    router_setup_with(check, public, "").await
}

/// [`router_setup`] with more `[server]` keys (see [`config_with`]).
pub async fn router_setup_with(
    check: TestCheck,
    public: &str,
    server: &str,
) -> (AppState, Arc<FixtureState>, tempfile::TempDir) {
    let (upstream, fixture) = start_fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(&upstream, public, dir.path(), server, "");
    let store = Store::open(dir.path()).unwrap();
    let state = AppState::new(&config, &store, policy(check)).unwrap();
    (state, fixture, dir)
}

/// Sends one request through depfw's router; returns status, headers and body.
pub async fn send(
    state: &AppState,
    req: axum::http::Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    use tower::ServiceExt;
    let resp = depfw::server::app(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

/// A GET through depfw's router: its status and its body as text.
pub async fn get_text(state: &AppState, path: &str) -> (StatusCode, String) {
    let (status, _, body) = send(state, request("GET", path, &[])).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The admin endpoint over `state`, wired as `depfw serve` wires it: every change rebuilds
/// the policy from `check` and the store's overrides, under a new revision.
pub fn admin_rebuilding(
    state: &AppState,
    config: &Config,
    store: &Store,
    check: TestCheck,
) -> depfw::admin::AdminState {
    let token = depfw::admin::AdminToken::from_config(&config.admin)
        .unwrap()
        .unwrap();
    let (rebuild_store, rebuild_config) = (store.clone(), config.clone());
    depfw::server::admin::admin_state(state, config, store, token, move || {
        let overrides = depfw::store::overrides::OverrideStore::new(&rebuild_store)
            .unwrap()
            .merged_with(&rebuild_config.overrides, Utc::now())
            .unwrap();
        PolicyState::Ready(Policy::new(
            vec![Arc::new(check.clone())],
            Arc::new(overrides),
            format!("rebuilt-{}", Utc::now().timestamp_nanos_opt().unwrap()),
        ))
    })
    .unwrap()
}

/// A GET with optional extra headers.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> axum::http::Request<Body> {
    let mut req = axum::http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Body::empty()).unwrap()
}

/// The fixture registry and depfw on their own runtime, for tests that run real clients.
pub struct Served {
    pub depfw: Depfw,
    pub fixture: Arc<FixtureState>,
    pub tmp: tempfile::TempDir,
    // Last: dropped after the servers' handles, stopping them.
    _rt: tokio::runtime::Runtime,
}

pub fn serve(check: TestCheck) -> Served {
    serve_with(check, "")
}

/// [`serve`] with more `[server]` keys (see [`config_with`]).
pub fn serve_with(check: TestCheck, server: &str) -> Served {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (fixture, depfw) = rt.block_on(async {
        let (upstream, fixture) = start_fixture().await;
        let policy = policy(check);
        (
            fixture,
            start_depfw_with(&upstream, policy, server, "").await,
        )
    });
    Served {
        depfw,
        fixture,
        tmp: tempfile::tempdir().unwrap(),
        _rt: rt,
    }
}
