//! One registry metadata document per package name, parsed into version records by the
//! same protocol code the proxy uses (`crate::registry`), so `depfw audit --online` and
//! `depfw serve` read a registry identically.

use std::sync::atomic::{AtomicBool, Ordering};

use url::Url;

use super::http::{Failure, Got, Http, RateGate};
use crate::config::UpstreamConfig;
use crate::package::{Ecosystem, PackageName};
use crate::registry::cargo::api::{merge_api_metadata, parse_crate_api};
use crate::registry::cargo::{parse_upstream_config, upstream_index_url, IndexFile};
use crate::registry::{npm, pypi, VersionRecord};

/// The full packument: the abbreviated one has no `time`, `license` or `scripts`.
const NPM_ACCEPT: &str = "application/json";
const PYPI_ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1";
const CARGO_INDEX_ACCEPT: &str = "text/plain, */*;q=0.1";

/// What fetching one name gave.
pub(super) enum Records {
    Found(Vec<VersionRecord>),
    Absent(String),
}

/// crates.io's web API, if the run uses it, and whether it has stopped answering.
pub(super) struct CratesApi {
    pub base: Option<Url>,
    pub gate: RateGate,
    down: AtomicBool,
}

impl CratesApi {
    pub fn new(base: Option<Url>, gate: RateGate) -> CratesApi {
        CratesApi {
            base,
            gate,
            down: AtomicBool::new(false),
        }
    }
}

/// Where the crates.io web API lives according to the index's `config.json`: `Ok(None)`
/// when the index names none (a depfw index never does: it does not proxy the API).
pub(super) async fn crates_api_from_index(http: &Http, index: &Url) -> Result<Option<Url>, String> {
    let url = Url::parse(&format!(
        "{}/config.json",
        index.as_str().trim_end_matches('/')
    ))
    .map_err(|e| format!("index config URL: {e}"))?;
    let body = match http.get(&url, "application/json").await {
        Ok(Got::Body { bytes, .. }) => bytes,
        Ok(Got::Absent(why)) => return Err(format!("GET {url}: {why}")),
        Err(f) => return Err(f.message),
    };
    let config = parse_upstream_config(&body).map_err(|e| format!("{url}: {e}"))?;
    config
        .api
        .map(|api| Url::parse(&api).map_err(|e| format!("{url}: `api` is not a URL: {e}")))
        .transpose()
}

/// Fetches and parses the metadata of one package. `notes` collects degradations that do
/// not fail the package (the crates.io API being unreachable).
pub(super) async fn fetch(
    http: &Http,
    upstream: &UpstreamConfig,
    api: &CratesApi,
    name: &PackageName,
    notes: &std::sync::Mutex<Vec<String>>,
) -> Result<Records, String> {
    let (url, accept) = match name.ecosystem() {
        Ecosystem::Npm => (npm_url(&upstream.npm, name)?, NPM_ACCEPT),
        Ecosystem::PyPI => (
            pypi::upstream_project_url(&upstream.pypi, name).map_err(|e| e.to_string())?,
            PYPI_ACCEPT,
        ),
        Ecosystem::CratesIo => (
            upstream_index_url(&upstream.cargo_index, name).map_err(|e| e.to_string())?,
            CARGO_INDEX_ACCEPT,
        ),
    };
    let (body, content_type) = match http.get(&url, accept).await.map_err(|f| f.message)? {
        Got::Absent(why) => return Ok(Records::Absent(why)),
        Got::Body {
            bytes,
            content_type,
        } => (bytes, content_type),
    };
    let invalid = |e: crate::registry::ProtocolError| format!("{url}: {e}");
    let records = match name.ecosystem() {
        Ecosystem::Npm => npm::parse_packument(name, &body).map_err(invalid)?.records,
        Ecosystem::PyPI => pypi::parse_project_page(&body, content_type.as_deref(), &url, name)
            .and_then(|page| page.records())
            .map_err(invalid)?,
        Ecosystem::CratesIo => {
            let mut records = IndexFile::parse(&body, name).map_err(invalid)?.records();
            if let Some(note) = merge_crates_api(http, api, name, &mut records).await {
                push_note(notes, note);
            }
            records
        }
    };
    Ok(Records::Found(records))
}

fn push_note(notes: &std::sync::Mutex<Vec<String>>, note: String) {
    let mut notes = notes.lock().unwrap_or_else(|e| e.into_inner());
    if !notes.contains(&note) {
        notes.push(note);
    }
}

/// Scoped names keep their `/` encoded, as npm clients send them.
fn npm_url(base: &Url, name: &PackageName) -> Result<Url, String> {
    let url = format!(
        "{}/{}",
        base.as_str().trim_end_matches('/'),
        name.as_str().replace('/', "%2f")
    );
    Url::parse(&url).map_err(|e| format!("npm URL `{url}`: {e}"))
}

/// Adds licenses (and publish times the index lacks) from the web API. Returns a note
/// when the API could not be used; the index's records stand either way.
async fn merge_crates_api(
    http: &Http,
    api: &CratesApi,
    name: &PackageName,
    records: &mut [VersionRecord],
) -> Option<String> {
    let base = api.base.as_ref()?;
    if api.down.load(Ordering::Relaxed) {
        return None;
    }
    let url = match Url::parse(&format!(
        "{}/api/v1/crates/{}",
        base.as_str().trim_end_matches('/'),
        name.as_str()
    )) {
        Ok(url) => url,
        Err(e) => return Some(format!("crates.io API URL for `{name}`: {e}")),
    };
    api.gate.wait().await;
    if api.down.load(Ordering::Relaxed) {
        return None;
    }
    match http.get(&url, "application/json").await {
        Ok(Got::Body { bytes, .. }) => match parse_crate_api(&bytes) {
            Ok(info) => {
                merge_api_metadata(records, &info);
                None
            }
            Err(e) => Some(format!("{url}: {e}; licenses of `{name}` unknown")),
        },
        Ok(Got::Absent(why)) => Some(format!("{url}: {why}; licenses of `{name}` unknown")),
        Err(Failure {
            message,
            unreachable,
        }) => {
            if unreachable {
                // One dead API would otherwise cost a timeout per crate.
                api.down.store(true, Ordering::Relaxed);
                Some(format!(
                    "crates.io API unreachable ({message}); crate licenses are unknown for the rest of this run"
                ))
            } else {
                Some(format!("{message}; licenses of `{name}` unknown"))
            }
        }
    }
}
