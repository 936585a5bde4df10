//! Registry metadata for `depfw audit --online` and `depfw check --online`.
//!
//! A lockfile says which versions a project installs, not when they were published, under
//! which license, or whether they run install scripts; the reputation and license checks
//! need that. With `--online` the audit fetches each package's registry metadata once
//! (one document per name, whatever the number of locked versions) through the configured
//! upstreams, which may be a running depfw (`http://127.0.0.1:7878/npm/`, `/pypi/simple/`,
//! `/cargo/index/`), with bounded concurrency and a progress bar on a terminal.
//!
//! `depfw check --online` asks with the versions it was given, or with an empty version for
//! a name alone: that stands for the latest release (npm's `latest` dist-tag, else the
//! highest stable, non-yanked version; [`OnlineResult::latest_version`] says which).
//!
//! With [`OnlineOptions::signals`], the first release of each dependency a wanted version
//! added over its earlier releases is looked up too (`young-dependency-added`), bounded as
//! in the proxy (`audit::online::dependencies`).
//!
//! Nothing here fails the audit: a registry that errs, times out or sends something
//! unreadable fails that package only ([`Lookup::Failed`]), and the audit runs the offline
//! checks for it. A version the registry does not list ([`Lookup::Missing`]) is reported,
//! never treated as fine: it was unpublished, or a depfw in between filtered it out by policy.
//!
//! crates.io: the sparse index has publish times (`pubtime`) but no licenses, so each crate
//! is also looked up in the web API named by the index's `config.json` (crates.io's crawler
//! policy: a descriptive User-Agent and at most one request per second, so large Rust
//! lockfiles take a while). Without an API (a depfw index names none) licenses stay unknown
//! and [`OnlineResult::notes`] says so.
//!
//! PyPI: the simple API gives upload times and yanks, not licenses or install hooks, so
//! each locked version the index lists is also read from the JSON API
//! (`{upstream.pypi-json}/{project}/{version}/json`, in the same request slot as its name's
//! index page): license (PEP 639 `license_expression`, else a short SPDX `license`, else the
//! `License ::` classifiers; see `registry::pypi::parse_release_json`), and upload time or
//! yank where the index had none. A version without a usable document keeps the index's
//! data with a note. A depfw index (its responses carry `x-depfw-request-id`) does not proxy
//! the JSON API, and going around it to pypi.org would bypass it: PyPI licenses stay
//! unknown and [`OnlineResult::notes`] says so. PyPI install hooks (`setup.py`) are not
//! knowable from metadata.

mod dependencies;
mod http;
mod sources;

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use url::Url;

use crate::audit::LockedPackage;
use crate::config::UpstreamConfig;
use crate::diag::Code;
use crate::package::{normalize, Ecosystem, PackageName, Version};
use crate::policy::signals::SignalsConfig;
use crate::policy::{Finding, Severity, Verdict, VersionMetadata};
use crate::registry::VersionRecord;
use http::{Http, RateGate};
use sources::{Apis, MetadataApi, Records};

/// Where crate licenses come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CratesApiSource {
    /// The `api` of the index's `config.json`; `https://crates.io` when that file cannot be
    /// read; none when it names no API.
    FromIndex,
    At(Url),
    Off,
}

#[derive(Debug, Clone)]
pub struct OnlineOptions {
    /// Metadata requests in flight at once.
    pub concurrency: usize,
    /// Draw a progress bar on stderr (only ever when stderr is a terminal).
    pub progress: bool,
    pub crates_api: CratesApiSource,
    /// Minimum spacing of crates.io API requests.
    pub crates_api_interval: Duration,
    pub user_agent: String,
    /// The release signals' settings: with them, the first release of each dependency a
    /// wanted version added is looked up too (`young-dependency-added`), as the proxy does;
    /// `None` looks nothing up beyond the packages themselves.
    pub signals: Option<SignalsConfig>,
}

impl Default for OnlineOptions {
    fn default() -> Self {
        OnlineOptions {
            concurrency: 16,
            progress: true,
            crates_api: CratesApiSource::FromIndex,
            crates_api_interval: Duration::from_secs(1),
            user_agent: concat!(
                "depfw/",
                env!("CARGO_PKG_VERSION"),
                " (supply-chain dependency firewall; depfw audit --online)"
            )
            .to_owned(),
            signals: None,
        }
    }
}

/// What the registry said about one locked version.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Found(VersionMetadata),
    /// The registry answered without this version; `reason` says how.
    Missing {
        reason: String,
    },
    /// The package's metadata could not be fetched or read.
    Failed {
        error: String,
    },
}

impl Lookup {
    /// The metadata to put in `PackageCtx::metadata`, if any.
    pub fn metadata(&self) -> Option<&VersionMetadata> {
        match self {
            Lookup::Found(m) => Some(m),
            _ => None,
        }
    }

    /// The audit's note for a version without metadata: `missing-from-registry` warns
    /// (unpublished, or denied by a depfw upstream); `registry-metadata-unavailable` is
    /// informational, since the offline checks still ran.
    pub fn finding(&self) -> Option<Finding> {
        let (code, severity, verdict, message) = match self {
            Lookup::Found(_) => return None,
            Lookup::Missing { reason } => (
                Code::MissingFromRegistry,
                Severity::Medium,
                Verdict::Warn,
                format!("this version is not in the registry's metadata: {reason}"),
            ),
            Lookup::Failed { error } => (
                Code::RegistryMetadataUnavailable,
                Severity::Info,
                Verdict::Allow,
                format!("registry metadata unavailable, offline checks only: {error}"),
            ),
        };
        Some(Finding::new(code, severity, verdict, message))
    }
}

/// One package name whose metadata could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFailure {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub error: String,
}

/// `(ecosystem, normalised name, version as requested)`.
pub(crate) type VersionKey = (Ecosystem, String, String);

#[derive(Debug, Clone, Default)]
pub struct OnlineResult {
    pub lookups: HashMap<VersionKey, Lookup>,
    /// One entry per package name that failed, for a summary line.
    pub failures: Vec<PackageFailure>,
    /// Degradations that fail no package: no crates.io API (no crate licenses), a depfw
    /// PyPI index (no PyPI licenses), a release without a PyPI JSON document.
    pub notes: Vec<String>,
    /// Distinct names asked for (= metadata documents requested).
    pub names: usize,
    /// The latest release of each name asked for with an empty version (`depfw check
    /// --online npm foo`), by (ecosystem, normalised name).
    pub latest: HashMap<(Ecosystem, String), String>,
}

impl OnlineResult {
    /// The lookup of a version as passed to [`fetch_metadata`]; the name may be spelled
    /// any way the ecosystem treats as equal.
    pub fn get(&self, ecosystem: Ecosystem, name: &str, version: &str) -> Option<&Lookup> {
        self.lookups
            .get(&(ecosystem, normalize(ecosystem, name), version.to_owned()))
    }

    /// The release an empty version stood for: npm's `latest` dist-tag, else the highest
    /// release that is neither yanked nor a pre-release ([`latest_release`]).
    pub fn latest_version(&self, ecosystem: Ecosystem, name: &str) -> Option<&str> {
        self.latest
            .get(&(ecosystem, normalize(ecosystem, name)))
            .map(String::as_str)
    }

    pub fn metadata(
        &self,
        ecosystem: Ecosystem,
        name: &str,
        version: &str,
    ) -> Option<&VersionMetadata> {
        self.get(ecosystem, name, version)
            .and_then(Lookup::metadata)
    }
}

/// The registry packages of parsed lockfiles, as [`fetch_metadata`] takes them (non-registry
/// sources and unpinned entries have no registry version to look up).
pub fn registry_queries<'a>(
    packages: impl IntoIterator<Item = &'a LockedPackage>,
) -> Vec<(Ecosystem, String, String)> {
    packages
        .into_iter()
        .filter(|p| p.source.is_registry() && !p.version.is_empty())
        .map(|p| (p.ecosystem, p.name.clone(), p.version.clone()))
        .collect()
}

/// One name to fetch and the versions wanted from it (`""`: the latest release).
struct Wanted {
    name: PackageName,
    versions: Vec<String>,
}

/// Fetches registry metadata for `packages` (ecosystem, name, version). Never fails as a
/// whole: every input version gets a [`Lookup`]. An empty version asks for the latest
/// release: its lookup is under `""`, and [`OnlineResult::latest_version`] says which it is.
pub async fn fetch_metadata(
    packages: &[(Ecosystem, String, String)],
    upstream: &UpstreamConfig,
    opts: &OnlineOptions,
) -> OnlineResult {
    let mut result = OnlineResult::default();
    let mut wanted: BTreeMap<(Ecosystem, String), Wanted> = BTreeMap::new();
    for (eco, raw, version) in packages {
        match PackageName::parse(*eco, raw) {
            Ok(name) => {
                let entry = wanted
                    .entry((*eco, name.key().to_owned()))
                    .or_insert_with(|| Wanted {
                        name,
                        versions: Vec::new(),
                    });
                if !entry.versions.contains(version) {
                    entry.versions.push(version.clone());
                }
            }
            Err(e) => fail(
                &mut result,
                *eco,
                raw,
                std::slice::from_ref(version),
                e.to_string(),
            ),
        }
    }
    result.names = wanted.len();
    let http = match Http::new(upstream, &opts.user_agent) {
        Ok(http) => http,
        Err(e) => {
            for w in wanted.values() {
                fail(
                    &mut result,
                    w.name.ecosystem(),
                    w.name.key(),
                    &w.versions,
                    e.clone(),
                );
            }
            return result;
        }
    };
    let needs_api = wanted.keys().any(|(eco, _)| *eco == Ecosystem::CratesIo);
    let api_base = if needs_api {
        crates_api_base(&http, upstream, opts, &mut result.notes).await
    } else {
        None
    };
    let apis = Apis {
        crates: MetadataApi::crates(api_base, RateGate::new(opts.crates_api_interval)),
        pypi: MetadataApi::pypi(upstream.pypi_json.clone()),
    };
    let notes = Mutex::new(std::mem::take(&mut result.notes));
    let memo = dependencies::Memo::default();
    let bar = progress_bar(opts.progress, wanted.len());
    let mut done = futures_util::stream::iter(wanted.into_values())
        .map(|w| async {
            let latest = w.versions.iter().any(String::is_empty);
            let mut fetched =
                sources::fetch(&http, upstream, &apis, &w.name, &w.versions, latest, &notes).await;
            if let (Some(signals), Ok(Records::Found { records, latest })) =
                (&opts.signals, &mut fetched)
            {
                let lookup = dependencies::Lookup {
                    http: &http,
                    upstream,
                    apis: &apis,
                    notes: &notes,
                    memo: &memo,
                };
                let wanted_versions: Vec<&str> = w
                    .versions
                    .iter()
                    .map(|v| {
                        if v.is_empty() {
                            latest.as_deref().unwrap_or("")
                        } else {
                            v
                        }
                    })
                    .collect();
                lookup
                    .gather(signals, &w.name, records, &wanted_versions)
                    .await;
            }
            (w, fetched)
        })
        .buffer_unordered(opts.concurrency.max(1));
    while let Some((w, fetched)) = done.next().await {
        bar.inc(1);
        let (eco, key) = (w.name.ecosystem(), w.name.key().to_owned());
        match fetched {
            Err(error) => fail(&mut result, eco, &key, &w.versions, error),
            Ok(Records::Absent(reason)) => {
                for v in w.versions {
                    let lookup = Lookup::Missing {
                        reason: reason.clone(),
                    };
                    result.lookups.insert((eco, key.clone(), v), lookup);
                }
            }
            Ok(Records::Found { records, latest }) => {
                if let Some(latest) = &latest {
                    result.latest.insert((eco, key.clone()), latest.clone());
                }
                for v in w.versions {
                    let record = if v.is_empty() {
                        latest
                            .as_deref()
                            .and_then(|l| find_version(&records, eco, l))
                    } else {
                        find_version(&records, eco, &v)
                    };
                    let lookup = match record {
                        Some(r) => Lookup::Found(r.metadata.clone()),
                        None if v.is_empty() => Lookup::Missing {
                            reason: format!(
                                "the registry lists no release of `{}` to evaluate ({} version(s), \
                                 all yanked or unparsable)",
                                w.name,
                                records.len()
                            ),
                        },
                        None => Lookup::Missing {
                            reason: format!(
                                "the registry lists {} version(s) of `{}`, not this one \
                                 (unpublished, or filtered out by a depfw upstream)",
                                records.len(),
                                w.name
                            ),
                        },
                    };
                    result.lookups.insert((eco, key.clone(), v), lookup);
                }
            }
        }
    }
    drop(done);
    bar.finish_and_clear();
    result.notes = notes.into_inner().unwrap_or_else(|e| e.into_inner());
    result
}

/// [`fetch_metadata`] on a runtime of its own, for the synchronous CLI.
pub fn fetch_metadata_blocking(
    packages: &[(Ecosystem, String, String)],
    upstream: &UpstreamConfig,
    opts: &OnlineOptions,
) -> anyhow::Result<OnlineResult> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    Ok(runtime.block_on(fetch_metadata(packages, upstream, opts)))
}

fn fail(result: &mut OnlineResult, eco: Ecosystem, name: &str, versions: &[String], error: String) {
    let key = normalize(eco, name);
    for v in versions {
        let lookup = Lookup::Failed {
            error: error.clone(),
        };
        result.lookups.insert((eco, key.clone(), v.clone()), lookup);
    }
    result.failures.push(PackageFailure {
        ecosystem: eco,
        name: name.to_owned(),
        error,
    });
}

/// The record of `wanted`: the same text, else an equal version (PyPI `1.0` is `1.0.0`).
fn find_version<'a>(
    records: &'a [VersionRecord],
    eco: Ecosystem,
    wanted: &str,
) -> Option<&'a VersionRecord> {
    records
        .iter()
        .find(|r| r.version_text == wanted)
        .or_else(|| {
            let v = Version::parse(eco, wanted).ok()?;
            records.iter().find(|r| {
                r.version
                    .as_ref()
                    .is_some_and(|rv| rv.partial_cmp(&v) == Some(Ordering::Equal))
            })
        })
}

/// The release a name alone stands for where the registry names none (PyPI, cargo; an npm
/// packument without a usable `latest` tag): the highest version that is neither yanked nor
/// a pre-release, else the highest that is not yanked.
pub(crate) fn latest_release(records: &[VersionRecord]) -> Option<&VersionRecord> {
    let highest = |stable: bool| {
        records
            .iter()
            .filter(|r| r.metadata.yanked.is_none())
            .filter_map(|r| Some((r, r.version.as_ref()?)))
            .filter(|(_, v)| !stable || !v.is_prerelease())
            .max_by(|(_, a), (_, b)| a.partial_cmp(b).unwrap_or(Ordering::Equal))
            .map(|(r, _)| r)
    };
    highest(true).or_else(|| highest(false))
}

async fn crates_api_base(
    http: &Http,
    upstream: &UpstreamConfig,
    opts: &OnlineOptions,
    notes: &mut Vec<String>,
) -> Option<Url> {
    match &opts.crates_api {
        CratesApiSource::Off => None,
        CratesApiSource::At(url) => Some(url.clone()),
        CratesApiSource::FromIndex => {
            match sources::crates_api_from_index(http, &upstream.cargo_index).await {
                Ok(Some(api)) => Some(api),
                Ok(None) => {
                    notes.push(format!(
                        "the crates index {} names no web API (a depfw index does not); crate licenses are unknown",
                        upstream.cargo_index
                    ));
                    None
                }
                Err(e) => {
                    notes.push(format!("{e}; using https://crates.io for crate licenses"));
                    Url::parse("https://crates.io").ok()
                }
            }
        }
    }
}

fn progress_bar(wanted: bool, len: usize) -> ProgressBar {
    if !wanted || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("registry metadata {bar:30} {pos}/{len}") {
        bar.set_style(style);
    }
    bar
}
