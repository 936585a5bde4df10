//! `depfw audit --format json`: the report for scripts and CI, one JSON document.
//!
//! The shape is a contract, so it is spelled out here rather than left to the model's serde
//! attributes: every result and finding always carries `ids` (possibly empty), and
//! `line` / `fixed_in` / `upgrade_to` / `error` appear only when known. A finding's
//! `fixed_in` is what its advisory says; a result's `upgrade_to` is the version depfw
//! suggests, one its own policy allows.

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::{AuditReport, LockfileSummary};
use crate::audit::LockfileKind;
use crate::package::Ecosystem;
use crate::policy::{Severity, Verdict};

#[derive(Serialize)]
struct JsonReport<'a> {
    packages_scanned: usize,
    lockfiles: Vec<JsonLockfile<'a>>,
    results: Vec<JsonResult<'a>>,
}

#[derive(Serialize)]
struct JsonLockfile<'a> {
    path: String,
    /// `null` when the file was not recognised or could not be read.
    kind: Option<LockfileKind>,
    packages: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonResult<'a> {
    ecosystem: Ecosystem,
    name: &'a str,
    version: &'a str,
    lockfile: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
    verdict: Verdict,
    ids: &'a [String],
    findings: Vec<JsonFinding<'a>>,
    /// The lowest fixed version the policy allows, when one is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    upgrade_to: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    check: &'a str,
    code: &'a str,
    severity: Severity,
    verdict: Verdict,
    message: &'a str,
    ids: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    fixed_in: Option<&'a str>,
}

/// Paths print with forward slashes on every platform, so CI scripts need no special case.
pub(super) fn portable_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    if std::path::MAIN_SEPARATOR == '/' {
        text.into_owned()
    } else {
        text.replace(std::path::MAIN_SEPARATOR, "/")
    }
}

fn lockfile(l: &LockfileSummary) -> JsonLockfile<'_> {
    JsonLockfile {
        path: portable_path(&l.path),
        kind: l.kind,
        packages: l.packages,
        error: l.error.as_deref(),
    }
}

/// Writes the report as one pretty-printed JSON document followed by a newline.
pub fn render_json(report: &AuditReport, out: &mut dyn Write) -> io::Result<()> {
    let json = JsonReport {
        packages_scanned: report.packages_scanned,
        lockfiles: report.lockfiles.iter().map(lockfile).collect(),
        results: report
            .results
            .iter()
            .map(|r| JsonResult {
                ecosystem: r.ecosystem,
                name: &r.name,
                version: &r.version,
                lockfile: portable_path(&r.lockfile),
                line: r.line,
                verdict: r.verdict,
                ids: &r.ids,
                findings: r
                    .findings
                    .iter()
                    .map(|f| JsonFinding {
                        check: &f.check,
                        code: f.code.as_str(),
                        severity: f.severity,
                        verdict: f.verdict,
                        message: &f.message,
                        ids: &f.ids,
                        fixed_in: f.fixed_in.as_deref(),
                    })
                    .collect(),
                upgrade_to: r.upgrade_to.as_deref(),
            })
            .collect(),
    };
    serde_json::to_writer_pretty(&mut *out, &json)?;
    writeln!(out)
}
