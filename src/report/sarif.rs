//! `depfw audit --format sarif`: SARIF 2.1.0 for GitHub code scanning
//! (`github/codeql-action/upload-sarif`), so findings show up as alerts on the lockfile line.
//!
//! One rule per finding code; one result per finding, located at the package's entry in its
//! lockfile. GitHub needs repository-relative URIs (resolved against `%SRCROOT%`), a start
//! line of at least 1, a `security-severity` on the rule to rank security alerts, and stable
//! `partialFingerprints` so that re-runs update alerts instead of duplicating them.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::json::portable_path;
use super::{AuditReport, AuditResult};
use crate::diag::{checks, Code, Finding, Severity, Verdict};

const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";
const SRCROOT: &str = "%SRCROOT%";
/// Bump when the fingerprint input changes, so old and new alerts are not confused.
const FINGERPRINT_KEY: &str = "depfw/v1";

/// Writes SARIF with lockfile paths made relative to the current directory (where CI runs
/// `depfw audit`, normally the repository root).
pub fn render_sarif(report: &AuditReport, out: &mut dyn Write) -> io::Result<()> {
    let root = std::env::current_dir().ok();
    render_sarif_with_root(report, root.as_deref(), out)
}

/// Writes SARIF with absolute lockfile paths under `root` made relative to it; relative
/// paths are kept as they are.
pub fn render_sarif_with_root(
    report: &AuditReport,
    root: Option<&Path>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let results: Vec<Value> = report
        .results
        .iter()
        .flat_map(|r| r.findings.iter().map(move |f| result(r, f, root)))
        .collect();
    let notifications: Vec<Value> = report
        .lockfile_errors()
        .map(|(lockfile, error)| {
            json!({
                "level": "error",
                "message": { "text": format!("cannot parse {}: {error}", portable_path(&lockfile.path)) },
                "locations": [location(&lockfile.path, None, root)],
            })
        })
        .collect();
    let mut driver = json!({
        "name": "depfw",
        "version": env!("CARGO_PKG_VERSION"),
        "semanticVersion": env!("CARGO_PKG_VERSION"),
        "rules": rules(report),
    });
    let information_uri = [env!("CARGO_PKG_REPOSITORY"), env!("CARGO_PKG_HOMEPAGE")]
        .into_iter()
        .find(|uri| !uri.is_empty());
    if let Some(uri) = information_uri {
        driver["informationUri"] = json!(uri);
    }
    let sarif = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": driver },
            "invocations": [{
                "executionSuccessful": notifications.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    });
    serde_json::to_writer_pretty(&mut *out, &sarif)?;
    writeln!(out)
}

/// A result's level: its finding's verdict, capped by an override that allowed the package,
/// since the package is then accepted.
fn level(result: &AuditResult, finding: &Finding) -> &'static str {
    level_of(finding.verdict.min(result.verdict))
}

/// GitHub's bands: critical > 9.0, high 7.0–8.9, medium 4.0–6.9, low 0.1–3.9.
fn security_severity(severity: Severity) -> Option<&'static str> {
    match severity {
        Severity::Critical => Some("9.5"),
        Severity::High => Some("8.0"),
        Severity::Medium => Some("5.5"),
        Severity::Low => Some("2.0"),
        Severity::Info | Severity::Unknown => None,
    }
}

/// The rule's (short, full, help) texts, from the code registry. Codes without SARIF texts
/// there get generic ones: giving one its own changes the SARIF output, so re-bless the
/// report snapshots (`tests/audit/snapshots/`) when adding some.
fn describe(code: &Code, check: &str) -> (String, String, String) {
    match code.sarif() {
        Some(text) => (
            text.title.to_owned(),
            code.description().to_owned(),
            text.help.to_owned(),
        ),
        None => (
            format!("depfw `{code}` finding"),
            format!("A `{code}` finding from depfw's `{check}` check."),
            "See the result message; record an override if the finding is accepted.".to_owned(),
        ),
    }
}

/// A verdict's SARIF level: deny and quarantine fail the build, so they are errors.
fn level_of(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Deny | Verdict::Quarantine => "error",
        Verdict::Warn => "warning",
        Verdict::Allow => "note",
    }
}

/// One rule per distinct code, sorted by code so the output is stable.
fn rules(report: &AuditReport) -> Vec<Value> {
    let mut by_code: BTreeMap<&str, (&Code, Vec<&Finding>)> = BTreeMap::new();
    for f in report.results.iter().flat_map(|r| &r.findings) {
        by_code
            .entry(f.code.as_str())
            .or_insert_with(|| (&f.code, Vec::new()))
            .1
            .push(f);
    }
    by_code
        .into_values()
        .map(|(code, uses)| {
            let check = uses.first().map_or("", |f| f.check.as_str());
            let (short, full, help) = describe(code, check);
            let mut tags = vec!["supply-chain".to_owned(), check.to_owned()];
            let mut properties = json!({});
            // A rule carries one severity; the worst seen stands for all its results.
            let worst = uses
                .iter()
                .filter(|f| f.check == checks::ADVISORIES)
                .filter_map(|f| f.severity.rank().map(|rank| (rank, f.severity)))
                .max_by_key(|(rank, _)| *rank)
                .and_then(|(_, severity)| security_severity(severity));
            if let Some(score) = worst {
                tags.insert(0, "security".to_owned());
                properties["security-severity"] = json!(score);
            }
            properties["tags"] = json!(tags);
            json!({
                "id": code.as_str(),
                "name": code.as_str(),
                "shortDescription": { "text": short },
                "fullDescription": { "text": full },
                "help": { "text": help },
                "defaultConfiguration": { "level": level_of(code.default_verdict()) },
                "properties": properties,
            })
        })
        .collect()
}

fn result(r: &AuditResult, f: &Finding, root: Option<&Path>) -> Value {
    let mut text = format!("{}@{} ({}): {}", r.name, r.version, r.ecosystem, f.message);
    if !f.ids.is_empty() {
        text.push_str(&format!(" [{}]", f.ids.join(", ")));
    }
    if f.fixed_in.is_some() {
        match &r.upgrade_to {
            Some(version) => text.push_str(&format!(" Upgrade to {version}.")),
            None => text.push_str(" No fixed version that the policy allows is known."),
        }
    }
    json!({
        "ruleId": f.code.as_str(),
        "level": level(r, f),
        "message": { "text": text },
        "locations": [location(&r.lockfile, r.line, root)],
        "partialFingerprints": { FINGERPRINT_KEY: fingerprint(r, f) },
    })
}

fn location(path: &Path, line: Option<u32>, root: Option<&Path>) -> Value {
    let mut artifact = json!({ "uri": uri(path, root) });
    if !path.is_absolute() || root.is_some_and(|root| path.starts_with(root)) {
        artifact["uriBaseId"] = json!(SRCROOT);
    }
    json!({
        "physicalLocation": {
            "artifactLocation": artifact,
            "region": { "startLine": line.unwrap_or(1).max(1) },
        }
    })
}

/// A URI reference for `path`: relative to `root` when it lies under it, else `file://`.
fn uri(path: &Path, root: Option<&Path>) -> String {
    let relative: PathBuf = match root.and_then(|root| path.strip_prefix(root).ok()) {
        Some(rel) => rel.to_path_buf(),
        None => path.to_path_buf(),
    };
    let text = portable_path(&relative);
    let text = text.trim_start_matches("./");
    let encoded = percent_encode(text);
    if relative.is_absolute() {
        format!(
            "file://{}{encoded}",
            if encoded.starts_with('/') { "" } else { "/" }
        )
    } else {
        encoded
    }
}

/// Escapes everything but RFC 3986 unreserved characters and `/`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The same package version and code give the same alert across runs, wherever the line
/// moves to.
fn fingerprint(r: &AuditResult, f: &Finding) -> String {
    let input = format!("{}/{}/{}/{}", r.ecosystem, r.name, r.version, f.code);
    hex::encode(&Sha256::digest(input.as_bytes())[..16])
}
