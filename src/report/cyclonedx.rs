//! CycloneDX 1.6 JSON: `depfw audit --format cyclonedx` and `depfw log sbom`.
//!
//! A platform team's SBOM tooling (Dependency-Track, GUAC, osv-scanner) reads CycloneDX, so
//! depfw writes what it knows in that shape instead of a format of its own. The audit's
//! document lists every package its lockfiles pin as a component named by its package URL,
//! and every advisory it matched as a vulnerability that `affects` those components, with
//! depfw's verdict in `analysis` and as `depfw:*` properties (findings without an advisory
//! id, such as a typosquat, are properties of their component). `log sbom` lists what the
//! proxy actually served an agent, with the digests of the bytes it served.
//!
//! The output is checked against the official schema (tests/fixtures/cyclonedx) by the
//! audit and log tests.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::json::portable_path;
use super::AuditReport;
use crate::audit::{LockedPackage, PackageSource};
use crate::diag::{Finding, Verdict};
use crate::package::{purl, Ecosystem};
use crate::store::decisions::{DecisionRecord, RecordKind};

pub const SPEC_VERSION: &str = "1.6";

/// One component under construction, keyed by its purl (its `bom-ref`).
struct Component {
    ecosystem: Ecosystem,
    name: String,
    version: String,
    purl: String,
    hashes: Vec<(&'static str, String)>,
    properties: Vec<(&'static str, String)>,
}

impl Component {
    fn new(ecosystem: Ecosystem, name: &str, version: &str, qualifiers: &[(&str, &str)]) -> Self {
        Component {
            ecosystem,
            name: name.to_owned(),
            version: version.to_owned(),
            purl: purl::format(ecosystem, name, version, qualifiers),
            hashes: Vec::new(),
            properties: Vec::new(),
        }
    }

    fn property(&mut self, name: &'static str, value: String) {
        if !self
            .properties
            .iter()
            .any(|(n, v)| *n == name && *v == value)
        {
            self.properties.push((name, value));
        }
    }

    fn to_json(&self) -> Value {
        // npm's scope is CycloneDX's `group`.
        let (group, name) = match self.name.split_once('/') {
            Some((scope, name)) if self.ecosystem == Ecosystem::Npm => (Some(scope), name),
            _ => (None, self.name.as_str()),
        };
        let mut c = json!({
            "type": "library",
            "bom-ref": self.purl,
            "name": name,
            "purl": self.purl,
        });
        if let Some(group) = group {
            c["group"] = json!(group);
        }
        if !self.version.is_empty() {
            c["version"] = json!(self.version);
        }
        if !self.hashes.is_empty() {
            c["hashes"] = self
                .hashes
                .iter()
                .map(|(alg, content)| json!({ "alg": alg, "content": content }))
                .collect();
        }
        if !self.properties.is_empty() {
            c["properties"] = properties(&self.properties);
        }
        c
    }
}

fn properties(pairs: &[(&str, String)]) -> Value {
    pairs
        .iter()
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect()
}

/// A fresh `urn:uuid:` (version 4): the spec asks every BOM for a unique serial number.
fn serial_number() -> Option<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).ok()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Some(format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// The document around `components` and `vulnerabilities`.
fn document(
    components: Vec<Value>,
    vulnerabilities: Vec<Value>,
    meta: &[(&str, String)],
    now: DateTime<Utc>,
) -> Value {
    let mut metadata = json!({
        "timestamp": now.to_rfc3339_opts(SecondsFormat::Secs, true),
        "tools": { "components": [{
            "type": "application",
            "name": "depfw",
            "version": env!("CARGO_PKG_VERSION"),
        }]},
    });
    if !meta.is_empty() {
        metadata["properties"] = properties(meta);
    }
    let mut bom = json!({
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": metadata,
        "components": components,
    });
    if let Some(serial) = serial_number() {
        bom["serialNumber"] = json!(serial);
    }
    if !vulnerabilities.is_empty() {
        bom["vulnerabilities"] = json!(vulnerabilities);
    }
    bom
}

fn write_document(bom: &Value, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, bom)?;
    writeln!(out)
}

/// The purl qualifiers that say where a locked package comes from, when not the default
/// registry.
fn source_qualifiers(source: &PackageSource) -> Vec<(&'static str, &str)> {
    match source {
        PackageSource::Registry { url: Some(url) } => vec![("repository_url", url.as_str())],
        PackageSource::Git { url } => vec![("vcs_url", url.as_str())],
        PackageSource::Url { url } => vec![("download_url", url.as_str())],
        PackageSource::Registry { url: None }
        | PackageSource::Path { .. }
        | PackageSource::Workspace { .. } => Vec::new(),
    }
}

/// Where an advisory id is documented: OSV serves every id depfw's feeds carry.
fn osv_source(id: &str) -> Value {
    // Ids are `[A-Z0-9-]` in practice; anything else is encoded rather than trusted.
    const ID: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_');
    let id = percent_encoding::utf8_percent_encode(id, ID);
    json!({ "name": "OSV", "url": format!("https://osv.dev/vulnerability/{id}") })
}

/// One advisory across every component it affects.
struct Vulnerability<'a> {
    finding: &'a Finding,
    /// (component purl, version, depfw's verdict for it, upgrade suggested).
    affects: Vec<(String, &'a str, Verdict, Option<&'a str>)>,
}

impl Vulnerability<'_> {
    fn to_json(&self) -> Value {
        let f = self.finding;
        let id = f.ids.first().map_or("", String::as_str);
        let affects: Vec<Value> = self
            .affects
            .iter()
            .map(|(purl, version, _, _)| {
                json!({
                    "ref": purl,
                    "versions": [{ "version": version, "status": "affected" }],
                })
            })
            .collect();
        let mut v = json!({
            "bom-ref": format!("vulnerability:{id}"),
            "id": id,
            "source": osv_source(id),
            "ratings": [{
                "source": osv_source(id),
                "severity": f.severity.as_str(),
                "method": "other",
            }],
            "description": f.message,
            "affects": affects,
        });
        let aliases: Vec<Value> = f
            .ids
            .iter()
            .skip(1)
            .map(|alias| json!({ "id": alias, "source": osv_source(alias) }))
            .collect();
        if !aliases.is_empty() {
            v["references"] = json!(aliases);
        }
        if let Some(fixed) = &f.fixed_in {
            v["recommendation"] = json!(format!("upgrade to {fixed} or later"));
        }
        // depfw's decision for each affected version: what it did about the advisory.
        let detail: Vec<String> = self
            .affects
            .iter()
            .map(|(purl, _, verdict, upgrade)| match upgrade {
                Some(to) => format!("{purl}: depfw verdict {verdict}, upgrade to {to}"),
                None => format!("{purl}: depfw verdict {verdict}"),
            })
            .collect();
        let response = if self.affects.iter().any(|(_, _, _, up)| up.is_some()) {
            json!(["update"])
        } else {
            json!([])
        };
        v["analysis"] = json!({ "detail": detail.join("; ") });
        if response.as_array().is_some_and(|r| !r.is_empty()) {
            v["analysis"]["response"] = response;
        }
        let worst = self
            .affects
            .iter()
            .map(|(_, _, verdict, _)| *verdict)
            .max()
            .unwrap_or(Verdict::Allow);
        v["properties"] = properties(&[
            ("depfw:verdict", worst.to_string()),
            ("depfw:code", f.code.to_string()),
        ]);
        v
    }
}

/// Writes the audit as a CycloneDX document: `packages` are every (lockfile, package) the
/// audit scanned (the report itself keeps only what is not plainly allowed). Workspace
/// members and local paths are the project's own code, not components it pulls in.
pub fn render_cyclonedx<'a>(
    report: &AuditReport,
    packages: impl IntoIterator<Item = (&'a Path, &'a LockedPackage)>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut components: BTreeMap<String, Component> = BTreeMap::new();
    // (lockfile, name, version) → purl, to attach the report's results to their component.
    let mut by_entry: BTreeMap<(String, Ecosystem, &str, &str), String> = BTreeMap::new();
    for (lockfile, p) in packages {
        if matches!(
            p.source,
            PackageSource::Workspace { .. } | PackageSource::Path { .. }
        ) {
            continue;
        }
        let component = Component::new(
            p.ecosystem,
            &p.name,
            &p.version,
            &source_qualifiers(&p.source),
        );
        let lockfile = portable_path(lockfile);
        let location = match p.line {
            Some(line) => format!("{lockfile}:{line}"),
            None => lockfile.clone(),
        };
        by_entry.insert(
            (lockfile, p.ecosystem, p.name.as_str(), p.version.as_str()),
            component.purl.clone(),
        );
        components
            .entry(component.purl.clone())
            .or_insert(component)
            .property("depfw:lockfile", location);
    }

    let mut vulnerabilities: BTreeMap<&str, Vulnerability<'_>> = BTreeMap::new();
    for r in &report.results {
        let key = (
            portable_path(&r.lockfile),
            r.ecosystem,
            r.name.as_str(),
            r.version.as_str(),
        );
        let Some(purl) = by_entry.get(&key) else {
            continue;
        };
        if let Some(component) = components.get_mut(purl) {
            component.property("depfw:verdict", r.verdict.to_string());
            for f in &r.findings {
                component.property("depfw:finding", format!("{}: {}", f.code, f.message));
            }
        }
        for f in r.findings.iter().filter(|f| !f.ids.is_empty()) {
            let entry = vulnerabilities
                .entry(f.ids[0].as_str())
                .or_insert_with(|| Vulnerability {
                    finding: f,
                    affects: Vec::new(),
                });
            if !entry.affects.iter().any(|(p, ..)| p == purl) {
                entry.affects.push((
                    purl.clone(),
                    r.version.as_str(),
                    r.verdict,
                    r.upgrade_to.as_deref(),
                ));
            }
        }
    }
    let counts = report.counts();
    let meta = [
        (
            "depfw:packages-scanned",
            report.packages_scanned.to_string(),
        ),
        ("depfw:denied", counts.denied.to_string()),
        ("depfw:quarantined", counts.quarantined.to_string()),
        ("depfw:warnings", counts.warnings.to_string()),
    ];
    let bom = document(
        components.values().map(Component::to_json).collect(),
        vulnerabilities
            .values()
            .map(Vulnerability::to_json)
            .collect(),
        &meta,
        Utc::now(),
    );
    write_document(&bom, out)
}

/// What `depfw log sbom` gathers: every artifact the proxy served, once per package
/// version, with the digests of the bytes served and when and to whom.
#[derive(Default)]
pub struct Installed {
    components: BTreeMap<String, (Component, InstallTimes)>,
    records: usize,
}

#[derive(Default)]
struct InstallTimes {
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    count: usize,
}

impl Installed {
    /// Adds `record` when it is an artifact the proxy served (from upstream or its cache);
    /// refusals and metadata are not installs.
    pub fn add(&mut self, record: &DecisionRecord) {
        if record.kind != RecordKind::Artifact
            || !matches!(record.outcome.as_str(), "served" | "served-from-cache")
        {
            return;
        }
        let (Ok(ecosystem), Some(version)) =
            (record.ecosystem.parse::<Ecosystem>(), &record.version)
        else {
            return;
        };
        self.records += 1;
        let fresh = Component::new(ecosystem, &record.package, version, &[]);
        let (component, times) = self
            .components
            .entry(fresh.purl.clone())
            .or_insert_with(|| (fresh, InstallTimes::default()));
        for (alg, digest) in [("SHA-256", &record.sha256), ("SHA-512", &record.sha512)] {
            if let Some(digest) = digest.as_ref().filter(|d| is_hex_digest(d)) {
                if !component
                    .hashes
                    .iter()
                    .any(|(a, d)| a == &alg && d == digest)
                {
                    component.hashes.push((alg, digest.clone()));
                }
            }
        }
        if let Some(agent) = &record.client.agent {
            component.property("depfw:agent", agent.clone());
        }
        if record.verdict != Verdict::Allow {
            component.property("depfw:verdict", record.verdict.to_string());
            for f in &record.findings {
                component.property("depfw:finding", format!("{}: {}", f.code, f.message));
            }
        }
        times.first = Some(times.first.map_or(record.time, |t| t.min(record.time)));
        times.last = Some(times.last.map_or(record.time, |t| t.max(record.time)));
        times.count += 1;
        component.property("depfw:decision-seq", record.seq.to_string());
    }

    /// Package versions gathered so far.
    pub fn len(&self) -> usize {
        self.components.len()
    }

    pub fn is_empty(&self) -> bool {
        self.components.is_empty()
    }

    /// Writes the document; `meta` says what was asked (agent, time range).
    pub fn render(&self, meta: &[(&str, String)], out: &mut dyn Write) -> io::Result<()> {
        let time = |t: &Option<DateTime<Utc>>| {
            t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                .unwrap_or_default()
        };
        let components = self
            .components
            .values()
            .map(|(component, times)| {
                let mut c = component.to_json();
                let extra = properties(&[
                    ("depfw:first-served", time(&times.first)),
                    ("depfw:last-served", time(&times.last)),
                    ("depfw:times-served", times.count.to_string()),
                ]);
                match c["properties"].as_array_mut() {
                    Some(props) => props.extend(extra.as_array().into_iter().flatten().cloned()),
                    None => c["properties"] = extra,
                }
                c
            })
            .collect();
        let mut meta = meta.to_vec();
        meta.push(("depfw:artifacts-served", self.records.to_string()));
        write_document(&document(components, Vec::new(), &meta, Utc::now()), out)
    }
}

/// A digest CycloneDX accepts: hex of an MD5 to SHA-512 length.
fn is_hex_digest(d: &str) -> bool {
    matches!(d.len(), 32 | 40 | 64 | 96 | 128) && d.bytes().all(|b| b.is_ascii_hexdigit())
}
