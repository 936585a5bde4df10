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
    /// The versions, and the registry's latest release when it was asked for.
    Found {
        records: Vec<VersionRecord>,
        latest: Option<String>,
    },
    Absent(String),
}

/// A web API that adds what an index lacks (crates.io's for crate licenses, PyPI's JSON API
/// for PyPI licenses), if the run uses it, and whether it has stopped answering.
pub(super) struct MetadataApi {
    pub base: Option<Url>,
    gate: Option<RateGate>,
    down: AtomicBool,
    /// How notes name the API and what is lost without it.
    name: &'static str,
    loses: &'static str,
}

impl MetadataApi {
    pub(super) fn crates(base: Option<Url>, gate: RateGate) -> MetadataApi {
        MetadataApi::new(base, Some(gate), "crates.io API", "crate licenses")
    }

    pub(super) fn pypi(base: Url) -> MetadataApi {
        MetadataApi::new(Some(base), None, "PyPI JSON API", "PyPI licenses")
    }

    fn new(
        base: Option<Url>,
        gate: Option<RateGate>,
        name: &'static str,
        loses: &'static str,
    ) -> MetadataApi {
        MetadataApi {
            base,
            gate,
            down: AtomicBool::new(false),
            name,
            loses,
        }
    }

    /// The JSON document at `url`. `Err(Some(note))` says why `what` stays unknown;
    /// `Err(None)` when the API is down and a note already said so.
    async fn get(&self, http: &Http, url: &Url, what: &str) -> Result<Vec<u8>, Option<String>> {
        if self.down.load(Ordering::Relaxed) {
            return Err(None);
        }
        if let Some(gate) = &self.gate {
            gate.wait().await;
            if self.down.load(Ordering::Relaxed) {
                return Err(None);
            }
        }
        match http.get(url, "application/json").await {
            Ok(Got::Body { bytes, .. }) => Ok(bytes),
            Ok(Got::Absent(why)) => Err(Some(format!("{url}: {why}; {what} unknown"))),
            Err(Failure {
                message,
                unreachable,
            }) => {
                if unreachable {
                    // One dead API would otherwise cost a timeout per package. Requests
                    // already in flight fail too; only the first says so.
                    if self.down.swap(true, Ordering::Relaxed) {
                        return Err(None);
                    }
                    Err(Some(format!(
                        "{} unreachable ({message}); {} are unknown for the rest of this run",
                        self.name, self.loses
                    )))
                } else {
                    Err(Some(format!("{message}; {what} unknown")))
                }
            }
        }
    }
}

/// The web APIs of a run.
pub(super) struct Apis {
    pub crates: MetadataApi,
    pub pypi: MetadataApi,
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

/// Fetches and parses the metadata of one package, `versions` being the ones the scan
/// locks (PyPI's JSON API is read per version), and the latest release too when `latest`
/// ([`super::latest_release`]). `notes` collects degradations that do not fail the package
/// (an API being unreachable, a release without a JSON document).
pub(super) async fn fetch(
    http: &Http,
    upstream: &UpstreamConfig,
    apis: &Apis,
    name: &PackageName,
    versions: &[String],
    latest: bool,
    notes: &std::sync::Mutex<Vec<String>>,
) -> Result<Records, String> {
    let (url, accept) = match name.ecosystem() {
        // A private name is asked of its own upstream, as `depfw serve` asks it: never
        // of the public registry, whose namesake would be someone else's package.
        Ecosystem::Npm => {
            let scope = upstream.npm_scopes.iter().find(|s| s.routes(name));
            let base = scope.map_or(&upstream.npm, |s| &s.registry);
            (npm_url(base, name)?, NPM_ACCEPT)
        }
        Ecosystem::PyPI => {
            let index = private_index(upstream, name).map_or(&upstream.pypi, |p| &p.index);
            (
                pypi::upstream_project_url(index, name).map_err(|e| e.to_string())?,
                PYPI_ACCEPT,
            )
        }
        Ecosystem::CratesIo => {
            let private = upstream.cargo_private_for(name);
            let index = private.map_or(&upstream.cargo_index, |c| &c.index);
            (
                upstream_index_url(index, name).map_err(|e| e.to_string())?,
                CARGO_INDEX_ACCEPT,
            )
        }
    };
    let (body, content_type, from_depfw) =
        match http.get(&url, accept).await.map_err(|f| f.message)? {
            Got::Absent(why) => return Ok(Records::Absent(why)),
            Got::Body {
                bytes,
                content_type,
                from_depfw,
            } => (bytes, content_type, from_depfw),
        };
    let invalid = |e: crate::registry::ProtocolError| format!("{url}: {e}");
    let mut latest_release = None;
    let records = match name.ecosystem() {
        Ecosystem::Npm => {
            let packument = npm::parse_packument(name, &body).map_err(invalid)?;
            if latest {
                // npm's own answer, as `npm install <name>` takes it.
                latest_release = packument
                    .upstream_tag("latest")
                    .filter(|tag| packument.records.iter().any(|r| r.version_text == *tag))
                    .map(str::to_owned);
            }
            packument.records
        }
        Ecosystem::PyPI => {
            let mut records = pypi::parse_project_page(&body, content_type.as_deref(), &url, name)
                .and_then(|page| page.records())
                .map_err(invalid)?;
            let mut versions = versions.to_vec();
            if latest {
                latest_release = super::latest_release(&records).map(|r| r.version_text.clone());
                versions.extend(latest_release.clone());
            }
            if from_depfw {
                // Going around it to pypi.org would bypass the firewall the audit was
                // pointed at; say so once instead.
                push_note(
                    notes,
                    format!(
                        "the PyPI index {} is a depfw, which does not proxy PyPI's JSON API: \
                         PyPI licenses were not fetched",
                        upstream.pypi
                    ),
                );
            } else if private_index(upstream, name).is_none() {
                // PyPI's JSON API is the public index's: a private name never goes there.
                merge_pypi_json(http, &apis.pypi, name, &versions, &mut records, notes).await;
            }
            records
        }
        Ecosystem::CratesIo => {
            let mut records = IndexFile::parse(&body, name).map_err(invalid)?.records();
            // The crates API is the main index's: a private crate's name never goes there.
            if upstream.cargo_private_for(name).is_none() {
                if let Some(note) = merge_crates_api(http, &apis.crates, name, &mut records).await {
                    push_note(notes, note);
                }
            }
            records
        }
    };
    if latest && latest_release.is_none() {
        latest_release = super::latest_release(&records).map(|r| r.version_text.clone());
    }
    Ok(Records::Found {
        records,
        latest: latest_release,
    })
}

fn push_note(notes: &std::sync::Mutex<Vec<String>>, note: String) {
    let mut notes = notes.lock().unwrap_or_else(|e| e.into_inner());
    if !notes.contains(&note) {
        notes.push(note);
    }
}

/// Scoped names keep their `/` encoded, as npm clients send them.
/// The `[[upstream.pypi.private]]` index `name` is routed to, if any.
fn private_index<'u>(
    upstream: &'u UpstreamConfig,
    name: &PackageName,
) -> Option<&'u crate::config::PypiPrivate> {
    upstream.pypi_private.iter().find(|p| p.routes(name))
}

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
    api: &MetadataApi,
    name: &PackageName,
    records: &mut [VersionRecord],
) -> Option<String> {
    let base = api.base.as_ref()?;
    let url = match Url::parse(&format!(
        "{}/api/v1/crates/{}",
        base.as_str().trim_end_matches('/'),
        name.as_str()
    )) {
        Ok(url) => url,
        Err(e) => return Some(format!("crates.io API URL for `{name}`: {e}")),
    };
    let what = format!("licenses of `{name}`");
    let bytes = match api.get(http, &url, &what).await {
        Ok(bytes) => bytes,
        Err(note) => return note,
    };
    match parse_crate_api(&bytes) {
        Ok(info) => {
            merge_api_metadata(records, &info);
            None
        }
        Err(e) => Some(format!("{url}: {e}; {what} unknown")),
    }
}

/// Adds each locked version's license (and upload time or yank the index lacks) from
/// `{pypi-json}/{project}/{version}/json`, one request per version the index lists; a
/// version without a usable document keeps the index's record, with a note.
async fn merge_pypi_json(
    http: &Http,
    api: &MetadataApi,
    name: &PackageName,
    versions: &[String],
    records: &mut [VersionRecord],
    notes: &std::sync::Mutex<Vec<String>>,
) {
    let Some(base) = &api.base else {
        return;
    };
    let mut texts: Vec<String> = Vec::new();
    for v in versions {
        if let Some(r) = super::find_version(records, Ecosystem::PyPI, v) {
            if !texts.contains(&r.version_text) {
                texts.push(r.version_text.clone());
            }
        }
    }
    for text in texts {
        let what = format!("the license of `{name}` {text}");
        let mut url = base.clone();
        let Ok(mut path) = url.path_segments_mut() else {
            push_note(
                notes,
                format!("upstream.pypi-json {base} cannot take a path"),
            );
            return;
        };
        path.pop_if_empty()
            .extend([name.key(), text.as_str(), "json"]);
        drop(path);
        let note = match api.get(http, &url, &what).await {
            Ok(bytes) => match pypi::parse_release_json(&bytes) {
                Ok(release) => {
                    if let Some(record) = records.iter_mut().find(|r| r.version_text == text) {
                        pypi::merge_release(record, &release);
                    }
                    None
                }
                Err(e) => Some(format!("{url}: {e}; {what} unknown")),
            },
            Err(note) => note,
        };
        if let Some(note) = note {
            push_note(notes, note);
        }
    }
}
