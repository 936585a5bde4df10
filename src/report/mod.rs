//! Reports of `depfw audit`: a human table, JSON and SARIF 2.1.0.
//!
//! The audit command gathers one [`AuditReport`]; the renderers here only format it, so the
//! three outputs always agree.

use std::path::PathBuf;

use serde::Serialize;

use crate::audit::LockfileKind;
use crate::package::Ecosystem;
use crate::policy::{Finding, Verdict};

/// One scanned lockfile.
#[derive(Debug, Clone, Serialize)]
pub struct LockfileSummary {
    pub path: PathBuf,
    /// `None` when the path could not be recognised or read at all.
    pub kind: Option<LockfileKind>,
    pub packages: usize,
    /// Set when the file could not be parsed (the audit then exits 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One package version that is not plainly allowed.
#[derive(Debug, Clone, Serialize)]
pub struct AuditResult {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    pub lockfile: PathBuf,
    /// 1-based line of the entry in the lockfile, when known (SARIF region).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    pub verdict: Verdict,
    /// OSV ids matched.
    pub ids: Vec<String>,
    pub findings: Vec<Finding>,
}

/// Everything `depfw audit` found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub packages_scanned: usize,
    pub lockfiles: Vec<LockfileSummary>,
    pub results: Vec<AuditResult>,
}

/// TODO(report helper): replaced by the real renderers.
pub fn render_human(
    report: &AuditReport,
    _color: bool,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    render_json(report, out)
}
pub fn render_json(report: &AuditReport, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)
}
pub fn render_sarif(report: &AuditReport, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    render_json(report, out)
}
