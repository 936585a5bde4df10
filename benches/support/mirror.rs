//! A recording registry mirror for the proxy benchmark: the "fixture upstream" that serves
//! real npm packuments and tarballs, PyPI project pages and crates.io sparse-index files from
//! a directory on 127.0.0.1, in the URL layout of the integration fixture registry
//! (`tests/support/layout.rs`).
//!
//! npm: in record mode a miss is fetched once from the public registry and saved, so one
//! `npm install` through it fills the directory; later runs serve from disk only (a miss is
//! a 404) and never touch the network. PyPI pages and index files are recorded explicitly,
//! by [`Mirror::record_pages`], for the few names the benchmark asks for, and on a miss in
//! record mode (a `pip install` through it, `benches/side-by-side.sh`), with the files pip
//! downloads. Documents are served with their file URLs pointing back at the mirror and a
//! strong `ETag`, like the public registries. The sparse index's `config.json` sends
//! downloads to the mirror's `crates/` too, where a `.crate` missing in record mode is
//! fetched once from crates.io's download host (a `cargo fetch` through it), so that cargo,
//! straight or through depfw, takes every byte from the mirror.
#![allow(clippy::unwrap_used, dead_code)]

#[path = "../../tests/support/layout.rs"]
pub mod layout;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use depfw::package::{Ecosystem, PackageName};
use layout::Route;
use serde_json::Value;

/// A document as served: body, strong ETag, content type.
#[derive(Clone)]
pub struct Doc {
    pub body: Bytes,
    etag: String,
    pub content_type: &'static str,
}

impl Doc {
    fn new(body: Vec<u8>, content_type: &'static str) -> Doc {
        use sha2::Digest as _;
        let etag = format!("\"{}\"", hex::encode(&sha2::Sha256::digest(&body)[..16]));
        Doc {
            body: Bytes::from(body),
            etag,
            content_type,
        }
    }
}

/// The public registries, as depfw's defaults name them.
fn public() -> depfw::config::UpstreamConfig {
    depfw::config::Config::default().upstream
}

pub struct Mirror {
    dir: PathBuf,
    record: bool,
    base: OnceLock<String>,
    client: reqwest::Client,
    /// Rewritten documents, built once per request path.
    docs: Mutex<HashMap<String, Doc>>,
}

fn flat(name: &str) -> String {
    name.replace('/', "__")
}

impl Mirror {
    fn packument_file(&self, name: &str) -> PathBuf {
        self.dir
            .join("packuments")
            .join(format!("{}.json", flat(name)))
    }

    fn tarball_file(&self, name: &str, file: &str) -> PathBuf {
        self.dir.join("tarballs").join(flat(name)).join(file)
    }

    /// Downloads `url` into `to`; returns the body and its content type.
    async fn fetch_public(&self, url: &str, to: &Path, accept: &str) -> Option<(Vec<u8>, String)> {
        let resp = self
            .client
            .get(url)
            .header(header::ACCEPT, accept)
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = resp.bytes().await.ok()?.to_vec();
        std::fs::create_dir_all(to.parent()?).ok()?;
        let tmp = to.with_extension("part");
        std::fs::write(&tmp, &body).ok()?;
        std::fs::rename(&tmp, to).ok()?;
        Some((body, content_type))
    }

    async fn raw_packument(&self, name: &str) -> Option<Vec<u8>> {
        let file = self.packument_file(name);
        if let Ok(b) = std::fs::read(&file) {
            return Some(b);
        }
        if !self.record {
            return None;
        }
        let url = public().npm.join(&name.replace('/', "%2f")).ok()?;
        self.fetch_public(url.as_str(), &file, "application/json")
            .await
            .map(|(body, _)| body)
    }

    /// The document at request path `rel`, built on first use.
    pub async fn doc(&self, rel: &str) -> Option<Doc> {
        if rel == "pypi/simple/" {
            // Not cached: it grows while pages are recorded.
            return Some(self.pypi_root());
        }
        if let Some(hit) = self.docs.lock().unwrap().get(rel) {
            return Some(hit.clone());
        }
        let doc = match layout::route(rel) {
            Route::Packument(name) => self.packument(name).await?,
            Route::PypiPage(project) => match self.pypi_page(project) {
                Some(doc) => doc,
                // Recording: a page asked for by an installer is recorded like a packument.
                None if self.record => {
                    self.record_pages(&[project], &[]).await.ok()?;
                    self.pypi_page(project)?
                }
                None => return None,
            },
            Route::CargoIndex(name) => match std::fs::read(self.index_file(name)) {
                Ok(body) => Doc::new(body, "text/plain"),
                // Recording: an index file asked for is recorded like a project page.
                Err(_) if self.record => {
                    self.record_pages(&[], &[name]).await.ok()?;
                    Doc::new(std::fs::read(self.index_file(name)).ok()?, "text/plain")
                }
                Err(_) => return None,
            },
            Route::CargoConfig => Doc::new(
                layout::cargo_config(self.base()).into_bytes(),
                "application/json",
            ),
            _ => return None,
        };
        self.docs
            .lock()
            .unwrap()
            .insert(rel.to_owned(), doc.clone());
        Some(doc)
    }

    fn base(&self) -> &str {
        self.base.get().map(String::as_str).unwrap_or_default()
    }

    fn pypi_file(&self, project: &str, json: bool) -> PathBuf {
        let ext = if json { "json" } else { "html" };
        self.dir.join("pypi").join(format!("{project}.{ext}"))
    }

    fn index_file(&self, name: &str) -> PathBuf {
        self.dir.join("cargo").join(name)
    }

    /// A recorded project page (PEP 691 JSON, or PEP 503 HTML when that is what the public
    /// index answered) with its file URLs on the mirror.
    fn pypi_page(&self, project: &str) -> Option<Doc> {
        let (text, content_type) = match std::fs::read_to_string(self.pypi_file(project, true)) {
            Ok(t) => (t, layout::PYPI_JSON),
            Err(_) => (
                std::fs::read_to_string(self.pypi_file(project, false)).ok()?,
                "text/html",
            ),
        };
        let files = public().pypi_files;
        let text = text.replace(files.as_str(), &layout::pypi_files_base(self.base()));
        Some(Doc::new(text.into_bytes(), content_type))
    }

    /// The index's root page (PEP 503 HTML): the recorded projects. devpi-server reads it
    /// to learn which projects its mirror has.
    fn pypi_root(&self) -> Doc {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.join("pypi"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let (stem, ext) = name.rsplit_once('.')?;
                (ext == "json" || ext == "html").then(|| stem.to_owned())
            })
            .collect();
        names.sort();
        let mut html = String::from("<!DOCTYPE html>\n<html><body>\n");
        for n in names {
            html.push_str(&format!("<a href=\"{n}/\">{n}</a>\n"));
        }
        html.push_str("</body></html>\n");
        Doc::new(html.into_bytes(), "text/html")
    }

    /// Records the PyPI project pages and crates.io index files of `projects` and `crates`
    /// that are not on disk yet, from the public registries.
    pub async fn record_pages(&self, projects: &[&str], crates: &[&str]) -> Result<(), String> {
        let up = public();
        for project in projects {
            if self.pypi_file(project, true).exists() || self.pypi_file(project, false).exists() {
                continue;
            }
            let name = PackageName::parse(Ecosystem::PyPI, project).map_err(|e| e.to_string())?;
            let url = depfw::registry::pypi::upstream_project_url(&up.pypi, &name)
                .map_err(|e| e.to_string())?;
            eprintln!("recording {url}");
            // Recorded as `.part` first: the format is known from the answer's content type.
            let part = self.pypi_file(project, false).with_extension("part");
            let accept = format!("{}, text/html;q=0.1", layout::PYPI_JSON);
            let (_, content_type) = self
                .fetch_public(url.as_str(), &part, &accept)
                .await
                .ok_or_else(|| format!("could not record {url}"))?;
            let json = content_type.contains("json");
            std::fs::rename(&part, self.pypi_file(project, json)).map_err(|e| e.to_string())?;
        }
        for krate in crates {
            let file = self.index_file(krate);
            if file.exists() {
                continue;
            }
            let name = PackageName::parse(Ecosystem::CratesIo, krate).map_err(|e| e.to_string())?;
            let url = depfw::registry::cargo::upstream_index_url(&up.cargo_index, &name)
                .map_err(|e| e.to_string())?;
            eprintln!("recording {url}");
            self.fetch_public(url.as_str(), &file, "text/plain")
                .await
                .ok_or_else(|| format!("could not record {url}"))?;
        }
        Ok(())
    }

    async fn packument(&self, name: &str) -> Option<Doc> {
        let raw = self.raw_packument(name).await?;
        let mut doc: Value = serde_json::from_slice(&raw).ok()?;
        let base = self.base.get()?;
        if let Some(Value::Object(versions)) = doc.get_mut("versions") {
            for vdoc in versions.values_mut() {
                let Some(dist) = vdoc.get_mut("dist").and_then(Value::as_object_mut) else {
                    continue;
                };
                let Some(file) = dist
                    .get("tarball")
                    .and_then(Value::as_str)
                    .and_then(|t| t.rsplit('/').next())
                    .map(str::to_owned)
                else {
                    continue;
                };
                dist.insert(
                    "tarball".into(),
                    Value::String(format!("{base}/{name}/-/{file}")),
                );
            }
        }
        Some(Doc::new(serde_json::to_vec(&doc).ok()?, "application/json"))
    }

    async fn tarball(&self, name: &str, file: &str) -> Option<Vec<u8>> {
        let path = self.tarball_file(name, file);
        if let Ok(b) = tokio::fs::read(&path).await {
            return Some(b);
        }
        if !self.record {
            return None;
        }
        let url = public().npm.join(&format!("{name}/-/{file}")).ok()?;
        self.fetch_public(url.as_str(), &path, "*/*")
            .await
            .map(|(body, _)| body)
    }

    /// A PyPI file (wheel, sdist or its PEP 658 `.metadata`) by its path under the files
    /// host, recorded on a miss like a tarball.
    async fn pypi_dist(&self, path: &str) -> Option<Vec<u8>> {
        if path.split('/').any(|s| s.is_empty() || s == "..") {
            return None;
        }
        let file = self.dir.join("pypi-files").join(path);
        if let Ok(b) = tokio::fs::read(&file).await {
            return Some(b);
        }
        if !self.record {
            return None;
        }
        let url = public().pypi_files.join(path).ok()?;
        self.fetch_public(url.as_str(), &file, "*/*")
            .await
            .map(|(body, _)| body)
    }

    /// A `.crate` by its path under `crates/` (`<crate>/<crate>-<version>.crate`, the
    /// layout of `config.json`'s `dl` and of static.crates.io), recorded on a miss like a
    /// tarball, from where crates.io's own `config.json` sends downloads.
    async fn krate(&self, path: &str) -> Option<Vec<u8>> {
        let (name, file) = path.split_once('/')?;
        let version = file
            .strip_prefix(name)?
            .strip_prefix('-')?
            .strip_suffix(".crate")?;
        if [name, version]
            .iter()
            .any(|s| s.is_empty() || s.contains(['/', '\\']))
            || name.starts_with('.')
        {
            return None;
        }
        let local = self.dir.join("crates").join(name).join(file);
        if let Ok(b) = tokio::fs::read(&local).await {
            return Some(b);
        }
        if !self.record {
            return None;
        }
        let url = depfw::registry::cargo::UpstreamConfig::default()
            .dl
            .replace("{crate}", name)
            .replace("{version}", version);
        self.fetch_public(&url, &local, "*/*")
            .await
            .map(|(body, _)| body)
    }

    /// Number of recorded packuments and tarballs.
    pub fn counts(&self) -> (usize, usize) {
        let count = |p: PathBuf| {
            walk(&p)
                .into_iter()
                .filter(|f| f.extension().is_none_or(|e| e != "part"))
                .count()
        };
        (
            count(self.dir.join("packuments")),
            count(self.dir.join("tarballs")),
        )
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

async fn serve(State(m): State<Arc<Mirror>>, req: Request) -> Response {
    let decoded = percent_encoding::percent_decode_str(req.uri().path())
        .decode_utf8_lossy()
        .into_owned();
    let rel = decoded.trim_start_matches('/');
    if let Route::NpmTarball { name, file } = layout::route(rel) {
        return match m.tarball(name, file).await {
            Some(b) => ([(header::CONTENT_TYPE, "application/octet-stream")], b).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        };
    }
    if let Some(path) = rel.strip_prefix("pypi-files/") {
        return match m.pypi_dist(path).await {
            Some(b) => ([(header::CONTENT_TYPE, "application/octet-stream")], b).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        };
    }
    if let Some(path) = rel.strip_prefix("crates/") {
        return match m.krate(path).await {
            Some(b) => ([(header::CONTENT_TYPE, "application/octet-stream")], b).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        };
    }
    let Some(doc) = m.doc(rel).await else {
        return (StatusCode::NOT_FOUND, "{\"error\":\"Not found\"}").into_response();
    };
    let inm = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let mut resp = if inm == Some(doc.etag.as_str()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, doc.content_type)], doc.body).into_response()
    };
    resp.headers_mut()
        .insert(header::ETAG, HeaderValue::from_str(&doc.etag).unwrap());
    resp
}

/// Starts the mirror over `dir` on the current runtime; returns its base URL.
pub async fn start(dir: &Path, record: bool) -> (String, Arc<Mirror>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mirror = Arc::new(Mirror {
        dir: dir.to_owned(),
        record,
        base: OnceLock::new(),
        client: reqwest::Client::new(),
        docs: Mutex::new(HashMap::new()),
    });
    mirror.base.set(base.clone()).unwrap();
    let app = axum::Router::new()
        .fallback(serve)
        .with_state(Arc::clone(&mirror));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, mirror)
}
