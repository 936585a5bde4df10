//! `cargo bench --bench signals_replay`: what the release signals (`policy::signals`)
//! would have held, replayed over live npm packuments.
//!
//! - The false-positive cost: for the top `SIGNALS_TOP` (default 200) names of
//!   `feeds/popular/npm.txt`, every version published in the last two years is evaluated
//!   with the default `[policy.signals]`, and each signal's count of releases it flags is
//!   printed (all of them are legitimate, or the feeds say otherwise).
//! - The catch: the OSV `MAL-` records for npm in `$DEPFW_SHARED_DATA/malicious`
//!   (`ossf/npm.jsonl` and `ossf-npm-2025h2`) that name versions of an established package
//!   (one of the first `SIGNALS_ESTABLISHED` (default 20000) names of
//!   `popular/npm/npm-high-impact-top.txt`): each malicious version the registry still lists
//!   is evaluated the same way; versions it no longer lists (npm removes them) are counted.
//!
//! Each version is evaluated at the time it was published (an hour after), as the proxy
//! would have seen it then; `young-dependency-added` gets the first release of every
//! dependency a release added, fetched the same way. The last table is the README's: each
//! cell is a count, or "not measurable" with the reason the inputs give (fields the
//! registry does not serve, publish times that do not follow version order, malicious
//! versions the registry no longer lists).
//!
//! Packuments are fetched from `SIGNALS_REGISTRY` (default `https://registry.npmjs.org`),
//! eight at a time, and kept under `$CARGO_TARGET_DIR/signals-replay/` so that a rerun is
//! offline. The parse is the proxy's own (`registry::npm_version_records`), so the figures
//! are what `depfw serve` would decide.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{Duration, Utc};
use depfw::package::{Ecosystem, PackageName};
use depfw::policy::signals::{DependencyAges, FirstRelease, Gathered, SignalsCheck, SignalsConfig};
use depfw::policy::{Check, PackageCtx, Verdict};
use depfw::registry::{npm_version_records, VersionRecord};
use futures_util::StreamExt;

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

fn cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("signals-replay")
}

/// The packument of `name`, from the cache or the registry; `None` when it is gone.
async fn packument(client: &reqwest::Client, registry: &str, name: &str) -> Option<Vec<u8>> {
    let file = cache_dir().join(format!("{}.json", name.replace('/', "__")));
    if let Ok(body) = std::fs::read(&file) {
        return (!body.is_empty()).then_some(body);
    }
    let url = format!("{registry}/{}", name.replace('/', "%2f"));
    let body = match client.get(&url).send().await {
        Ok(resp) if resp.status().is_success() => resp.bytes().await.ok().map(|b| b.to_vec()),
        Ok(resp) if resp.status() == reqwest::StatusCode::NOT_FOUND => Some(Vec::new()),
        _ => None,
    }?;
    let _ = std::fs::write(&file, &body);
    (!body.is_empty()).then_some(body)
}

async fn fetch_all(names: &[String]) -> BTreeMap<String, Vec<VersionRecord>> {
    let registry = env_or("SIGNALS_REGISTRY", "https://registry.npmjs.org");
    let _ = std::fs::create_dir_all(cache_dir());
    let client = reqwest::Client::builder()
        .user_agent("depfw-signals-replay (https://github.com/depfw)")
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .expect("http client");
    let fetched: Vec<(String, Option<Vec<VersionRecord>>)> =
        futures_util::stream::iter(names.iter().cloned())
            .map(|name| {
                let (client, registry) = (&client, &registry);
                async move {
                    let records = async {
                        let parsed = PackageName::parse(Ecosystem::Npm, &name).ok()?;
                        let body = packument(client, registry, &name).await?;
                        npm_version_records(&parsed, &body).ok()
                    }
                    .await;
                    (name, records)
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
    fetched
        .into_iter()
        .filter_map(|(name, records)| Some((name, records?)))
        .collect()
}

/// The signal codes and the verdict for one version, an hour after it was published.
fn evaluate(check: &SignalsCheck, name: &str, record: &VersionRecord) -> (Vec<String>, Verdict) {
    let Ok(name) = PackageName::parse(Ecosystem::Npm, name) else {
        return (Vec::new(), Verdict::Allow);
    };
    let now = record
        .metadata
        .published
        .map_or_else(Utc::now, |t| t + Duration::hours(1));
    let mut findings = Vec::new();
    check.evaluate(
        &PackageCtx {
            name: &name,
            version: record.version.as_ref(),
            metadata: Some(&record.metadata),
            now,
        },
        &mut findings,
    );
    let verdict = findings.iter().map(|f| f.verdict).max().unwrap_or_default();
    (
        findings.iter().map(|f| f.code.to_string()).collect(),
        verdict,
    )
}

const CODES: [&str; 7] = [
    "install-script-added",
    "new-publisher",
    "maintainers-replaced",
    "provenance-lost",
    "release-burst",
    "young-dependency-added",
    "dependency-unchecked",
];

/// What the fetched packuments let the replay measure (see [`inputs`]).
struct Inputs {
    releases: usize,
    publisher: usize,
    maintainers: usize,
    attested: usize,
    pairs: usize,
    in_order: usize,
}

impl Inputs {
    /// Why `code` cannot be measured on these inputs, if it cannot.
    fn unmeasurable(&self, code: &str) -> Option<String> {
        let missing = |n: usize, what: &str| {
            (n == 0).then(|| {
                format!(
                    "not measurable here: the registry serves no {what} (0 of {} releases)",
                    self.releases
                )
            })
        };
        let times = || {
            // The real registry: nearly every later release of a major line is higher.
            (self.pairs == 0 || self.in_order * 100 < self.pairs * 95).then(|| {
                format!(
                    "not measurable here: publish times follow version order in {}% of {} \
                     consecutive releases (the real registry: nearly all), so baselines \
                     and ages are not the real ones",
                    self.in_order * 100 / self.pairs.max(1),
                    self.pairs
                )
            })
        };
        match code {
            "new-publisher" => missing(self.publisher, "`_npmUser`").or_else(times),
            "maintainers-replaced" => missing(self.maintainers, "`maintainers`").or_else(times),
            "provenance-lost" => missing(self.attested, "`dist.attestations`").or_else(times),
            _ => times(),
        }
    }
}

#[derive(Default)]
struct Tally {
    evaluated: usize,
    per_code: BTreeMap<String, usize>,
    held: usize,
    examples: BTreeMap<String, Vec<String>>,
}

impl Tally {
    fn add(&mut self, spec: String, codes: &[String], verdict: Verdict) {
        self.evaluated += 1;
        for code in codes {
            *self.per_code.entry(code.clone()).or_default() += 1;
            let examples = self.examples.entry(code.clone()).or_default();
            if examples.len() < 4 {
                examples.push(spec.clone());
            }
        }
        if !verdict.is_servable() {
            self.held += 1;
        }
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// npm name → malicious versions, from the OSV records naming versions.
fn malicious(data: &Path, established: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let text = std::fs::read_to_string(data.join("malicious/ossf/npm.jsonl")).unwrap_or_default();
    for line in text.lines() {
        let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        for affected in record["affected"].as_array().into_iter().flatten() {
            let name = affected["package"]["name"].as_str().unwrap_or_default();
            if !established.contains(name) {
                continue;
            }
            for v in affected["versions"].as_array().into_iter().flatten() {
                if let Some(v) = v.as_str() {
                    out.entry(name.to_owned()).or_default().insert(v.to_owned());
                }
            }
        }
    }
    let late = data.join("malicious/ossf-npm-2025h2/malicious_npm_packages.json");
    if let Ok(doc) =
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(late).unwrap_or_default())
    {
        for (name, entry) in doc.as_object().into_iter().flatten() {
            if !established.contains(name) {
                continue;
            }
            for v in entry["versions"].as_array().into_iter().flatten() {
                if let Some(v) = v.as_str() {
                    out.entry(name.clone()).or_default().insert(v.to_owned());
                }
            }
        }
    }
    out.retain(|_, versions| !versions.is_empty());
    out
}

fn print_table(title: &str, tally: &Tally) {
    println!("\n{title}: {} versions evaluated", tally.evaluated);
    println!("| signal | flagged | e.g. |\n|---|---|---|");
    for code in CODES {
        let n = tally.per_code.get(code).copied().unwrap_or(0);
        let examples = tally
            .examples
            .get(code)
            .map(|e| e.join(", "))
            .unwrap_or_default();
        println!("| `{code}` | {n} | {examples} |");
    }
    println!("| held (quarantine or deny) | {} | |", tally.held);
}

/// What the signals can see in the fetched packuments: a registry or mirror that drops
/// `_npmUser`, `maintainers` or `dist.attestations`, or rewrites publish times, makes the
/// figures meaningless, and this says so.
fn print_inputs(
    docs: &BTreeMap<String, Vec<VersionRecord>>,
    since: chrono::DateTime<Utc>,
) -> Inputs {
    let (mut total, mut publisher, mut maintainers, mut attested) = (0usize, 0, 0, 0);
    let (mut pairs, mut in_order) = (0usize, 0usize);
    for records in docs.values() {
        let mut timed: Vec<&VersionRecord> = records
            .iter()
            .filter(|r| r.version.is_some() && r.metadata.published.is_some())
            .collect();
        timed.sort_by_key(|r| r.metadata.published);
        for pair in timed.windows(2) {
            if let (
                Some(depfw::package::Version::Semver(a)),
                Some(depfw::package::Version::Semver(b)),
            ) = (&pair[0].version, &pair[1].version)
            {
                // Within one release line, later releases carry higher versions.
                if a.major == b.major && a.pre.is_empty() && b.pre.is_empty() {
                    pairs += 1;
                    in_order += usize::from(b > a);
                }
            }
        }
        for r in records
            .iter()
            .filter(|r| r.metadata.published.is_some_and(|t| t >= since))
        {
            total += 1;
            let Some(this) = r.metadata.lineage.as_ref().and_then(|l| l.this()) else {
                continue;
            };
            publisher += usize::from(this.publisher().is_some());
            maintainers += usize::from(!this.maintainers().is_empty());
            attested += usize::from(this.attested() == Some(true));
        }
    }
    // What the histories add to the parsed documents the proxy caches: each history once
    // per packument, plus the `Option<Lineage>` in every version's metadata.
    let versions: usize = docs.values().map(Vec::len).sum();
    let history: usize = docs
        .values()
        .filter_map(|records| records.first()?.metadata.lineage.as_ref())
        .map(|l| l.history().heap_bytes())
        .sum();
    let per_version = std::mem::size_of::<Option<depfw::policy::signals::Lineage>>();
    let bodies: u64 = docs
        .keys()
        .filter_map(|name| {
            let file = cache_dir().join(format!("{}.json", name.replace('/', "__")));
            std::fs::metadata(file).ok().map(|m| m.len())
        })
        .sum();
    println!(
        "\nMemory: the release histories of {} packuments ({versions} versions, {} MiB of \
         bodies) hold {} KiB, {:.0} bytes per version, plus {per_version} bytes in each \
         version's metadata.",
        docs.len(),
        bodies / (1024 * 1024),
        history / 1024,
        if versions == 0 {
            0.0
        } else {
            history as f64 / versions as f64
        },
    );
    let pct = |n: usize, d: usize| {
        if d == 0 {
            0.0
        } else {
            100.0 * n as f64 / d as f64
        }
    };
    println!(
        "
Inputs: of {total} recent releases, {:.1}% name a publisher (`_npmUser`), {:.1}% \
         list maintainers, {:.1}% carry an attestation; publish-time order agrees with \
         version order within a major line for {:.1}% of {pairs} consecutive releases \
         (the real registry: nearly all).",
        pct(publisher, total),
        pct(maintainers, total),
        pct(attested, total),
        pct(in_order, pairs)
    );
    Inputs {
        releases: total,
        publisher,
        maintainers,
        attested,
        pairs,
        in_order,
    }
}

/// Hangs on every record the first release of each dependency a release of the last two
/// years added, fetched like the packuments (the proxy's lookups, unbounded here).
async fn gather_dependencies(docs: &mut BTreeMap<String, Vec<VersionRecord>>) {
    let config = SignalsConfig {
        dependency_recent_days: 730,
        ..SignalsConfig::default()
    };
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for (name, records) in docs.iter() {
        let Ok(parsed) = PackageName::parse(Ecosystem::Npm, name) else {
            continue;
        };
        for r in records {
            let (Some(lineage), Some(t)) = (&r.metadata.lineage, r.metadata.published) else {
                continue;
            };
            for d in config.added_dependencies(&parsed, lineage, t + Duration::hours(1)) {
                if !docs.contains_key(d) {
                    wanted.insert(d.to_owned());
                }
            }
        }
    }
    let wanted: Vec<String> = wanted.into_iter().collect();
    let fetched = fetch_all(&wanted).await;
    let mut ages = DependencyAges::default();
    for (name, records) in docs.iter().chain(fetched.iter()) {
        let first = records
            .iter()
            .flat_map(|r| [r.metadata.published, r.metadata.package_created])
            .flatten()
            .min();
        if let Some(t) = first {
            ages.insert(name, FirstRelease::At(t));
        }
    }
    let gathered = std::sync::Arc::new(Gathered {
        dependencies: Some(ages),
        ..Gathered::default()
    });
    for records in docs.values_mut() {
        for r in records {
            r.metadata.gathered = Some(std::sync::Arc::clone(&gathered));
        }
    }
}

#[tokio::main]
async fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let top: usize = env_or("SIGNALS_TOP", "200").parse().unwrap_or(200);
    let check = SignalsCheck::new(SignalsConfig::default());

    let names: Vec<String> = lines(&repo.join("feeds/popular/npm.txt"))
        .into_iter()
        .take(top)
        .collect();
    let mut docs = fetch_all(&names).await;
    let since = Utc::now() - Duration::days(730);
    let inputs = print_inputs(&docs, since);
    if inputs.unmeasurable("young-dependency-added").is_none() {
        gather_dependencies(&mut docs).await;
    }
    let mut legit = Tally::default();
    for (name, records) in &docs {
        for r in records {
            if r.metadata.published.is_some_and(|t| t >= since) {
                let (codes, verdict) = evaluate(&check, name, r);
                legit.add(format!("{name}@{}", r.version_text), &codes, verdict);
            }
        }
    }
    print_table(
        &format!(
            "Top {} npm packages ({} packuments fetched), releases of the last two years",
            names.len(),
            docs.len()
        ),
        &legit,
    );

    let data = std::env::var_os("DEPFW_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("../shared/data"));
    let limit: usize = env_or("SIGNALS_ESTABLISHED", "20000")
        .parse()
        .unwrap_or(20000);
    let established: BTreeSet<String> = lines(&data.join("popular/npm/npm-high-impact-top.txt"))
        .into_iter()
        .take(limit)
        .collect();
    let bad = malicious(&data, &established);
    let names: Vec<String> = bad.keys().cloned().collect();
    let mut docs = fetch_all(&names).await;
    if inputs.unmeasurable("young-dependency-added").is_none() {
        gather_dependencies(&mut docs).await;
    }
    let mut caught = Tally::default();
    let (mut listed, mut gone) = (0usize, 0usize);
    for (name, versions) in &bad {
        let Some(records) = docs.get(name) else {
            gone += versions.len();
            continue;
        };
        for v in versions {
            match records.iter().find(|r| &r.version_text == v) {
                Some(r) => {
                    listed += 1;
                    let (codes, verdict) = evaluate(&check, name, r);
                    caught.add(format!("{name}@{v}"), &codes, verdict);
                }
                None => gone += 1,
            }
        }
    }
    print_table(
        &format!(
            "Malicious versions of {} established npm packages (OSV MAL): {listed} still \
             listed by the registry, {gone} removed",
            bad.len()
        ),
        &caught,
    );

    // The README's table.
    println!(
        "\n| signal | malicious versions of established packages flagged at the time of attack \
         (of {listed} listed, {gone} removed) | legitimate releases of the top {} flagged, last \
         two years (of {}) |\n|---|---|---|",
        top, legit.evaluated
    );
    for code in CODES {
        let count = |t: &Tally| t.per_code.get(code).copied().unwrap_or(0);
        let bad = if listed == 0 {
            format!(
                "not measurable here: the registry lists none of the {gone} malicious versions \
                 (npm removes them)"
            )
        } else {
            inputs
                .unmeasurable(code)
                .unwrap_or_else(|| format!("{} of {listed}", count(&caught)))
        };
        let good = inputs
            .unmeasurable(code)
            .unwrap_or_else(|| format!("{} of {}", count(&legit), legit.evaluated));
        println!("| `{code}` | {bad} | {good} |");
    }
}
