//! What `depfw audit` found: one [`AuditReport`] per run, which `crate::report` renders as
//! a human table, JSON or SARIF (so the three outputs always agree).

use std::path::PathBuf;

use serde::Serialize;

use super::LockfileKind;
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
    /// The version to move to: the lowest fixed version that clears the findings and that
    /// the policy allows ([`crate::policy::Policy::allowed_fix`]); `None` when no advisory
    /// names a fix, or every fix named is refused too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade_to: Option<String>,
}

/// Everything `depfw audit` found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub packages_scanned: usize,
    pub lockfiles: Vec<LockfileSummary>,
    pub results: Vec<AuditResult>,
}

impl AuditResult {
    /// Whether some advisory names a fix although none is suggested: every fixed version
    /// they name is refused by the policy too.
    pub fn fixes_all_refused(&self) -> bool {
        self.upgrade_to.is_none() && self.findings.iter().any(|f| f.fixed_in.is_some())
    }
}

/// How many results carry each verdict that matters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct VerdictCounts {
    pub denied: usize,
    pub quarantined: usize,
    pub warnings: usize,
}

impl AuditReport {
    pub fn counts(&self) -> VerdictCounts {
        let mut counts = VerdictCounts::default();
        for result in &self.results {
            match result.verdict {
                Verdict::Deny => counts.denied += 1,
                Verdict::Quarantine => counts.quarantined += 1,
                Verdict::Warn => counts.warnings += 1,
                Verdict::Allow => {}
            }
        }
        counts
    }

    /// Lockfiles that could not be parsed, each with its error minus a leading
    /// `<path>: ` (parse errors name their file; the renderers print the path themselves).
    pub fn lockfile_errors(&self) -> impl Iterator<Item = (&LockfileSummary, &str)> {
        self.lockfiles.iter().filter_map(|l| {
            let error = l.error.as_deref()?;
            let path = l.path.display().to_string();
            let detail = error
                .strip_prefix(path.as_str())
                .and_then(|rest| rest.strip_prefix(": "))
                .unwrap_or(error);
            Some((l, detail))
        })
    }
}
