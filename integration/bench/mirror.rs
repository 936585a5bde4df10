//! A recording npm mirror for the proxy benchmark: the "fixture upstream" that serves real
//! packuments and tarballs from a directory on 127.0.0.1.
//!
//! In record mode a miss is fetched once from the public registry and saved, so one
//! `npm install` through it fills the directory; later runs serve from disk only (a miss
//! is a 404) and never touch the network. Packuments are served as full JSON with
//! `dist.tarball` pointing back at the mirror and a strong `ETag`, like registry.npmjs.org.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

const PUBLIC: &str = "https://registry.npmjs.org";

pub struct Mirror {
    dir: PathBuf,
    record: bool,
    base: OnceLock<String>,
    client: reqwest::Client,
    /// Rewritten packuments and their ETags, built once per name.
    packuments: Mutex<HashMap<String, (Bytes, String)>>,
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

    async fn fetch_public(&self, url: &str, to: &Path) -> Option<Vec<u8>> {
        let resp = self
            .client
            .get(url)
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let body = resp.bytes().await.ok()?.to_vec();
        std::fs::create_dir_all(to.parent()?).ok()?;
        let tmp = to.with_extension("part");
        std::fs::write(&tmp, &body).ok()?;
        std::fs::rename(&tmp, to).ok()?;
        Some(body)
    }

    async fn raw_packument(&self, name: &str) -> Option<Vec<u8>> {
        let file = self.packument_file(name);
        if let Ok(b) = std::fs::read(&file) {
            return Some(b);
        }
        if !self.record {
            return None;
        }
        let url = format!("{PUBLIC}/{}", name.replace('/', "%2f"));
        self.fetch_public(&url, &file).await
    }

    async fn packument(&self, name: &str) -> Option<(Bytes, String)> {
        if let Some(hit) = self.packuments.lock().unwrap().get(name) {
            return Some(hit.clone());
        }
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
        let body = Bytes::from(serde_json::to_vec(&doc).ok()?);
        use sha2::Digest as _;
        let etag = format!(
            "\"{}\"",
            hex::encode(&sha2::Sha256::digest(body.as_ref())[..16])
        );
        let entry = (body, etag);
        self.packuments
            .lock()
            .unwrap()
            .insert(name.to_owned(), entry.clone());
        Some(entry)
    }

    async fn tarball(&self, name: &str, file: &str) -> Option<Vec<u8>> {
        let path = self.tarball_file(name, file);
        if let Ok(b) = tokio::fs::read(&path).await {
            return Some(b);
        }
        if !self.record {
            return None;
        }
        self.fetch_public(&format!("{PUBLIC}/{name}/-/{file}"), &path)
            .await
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
    if let Some((name, file)) = rel.split_once("/-/") {
        return match m.tarball(name, file).await {
            Some(b) => ([(header::CONTENT_TYPE, "application/octet-stream")], b).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        };
    }
    let Some((body, etag)) = m.packument(rel).await else {
        return (StatusCode::NOT_FOUND, "{\"error\":\"Not found\"}").into_response();
    };
    let inm = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let mut resp = if inm == Some(etag.as_str()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    resp.headers_mut()
        .insert(header::ETAG, HeaderValue::from_str(&etag).unwrap());
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
        packuments: Mutex::new(HashMap::new()),
    });
    mirror.base.set(base.clone()).unwrap();
    let app = axum::Router::new()
        .fallback(serve)
        .with_state(Arc::clone(&mirror));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, mirror)
}
