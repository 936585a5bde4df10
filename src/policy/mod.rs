//! The policy engine: one verdict per package version, shared by every door of depfw.
//!
//! `depfw serve` (the proxy), `depfw audit` (lockfiles) and `depfw check` all build the same
//! [`PackageCtx`] and call [`Policy::evaluate`], so they can never disagree about a package.
//! Each check lives in its own module behind the small [`Check`] trait and reports
//! [`Finding`]s with stable kebab-case codes; overrides (allow- and deny-list entries) are
//! applied last and win over every check.
//!
//! Checks are pure: no I/O, no `await`. Whatever they need (advisory index, popular names,
//! registry metadata) is gathered before evaluation.

pub mod advisories;
pub mod license;
pub mod overrides;
pub mod reputation;
pub mod typosquat;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::package::{PackageName, Version};

/// What depfw does with a package version, from most to least permissive.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Served as is.
    #[default]
    Allow,
    /// Served, with the findings reported.
    Warn,
    /// Held until a human approves it: hidden from metadata, refused at the artifact gate.
    Quarantine,
    /// Refused: hidden from metadata, refused at the artifact gate.
    Deny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Warn => "warn",
            Verdict::Quarantine => "quarantine",
            Verdict::Deny => "deny",
        }
    }

    /// Whether clients may download this version.
    pub fn is_servable(self) -> bool {
        matches!(self, Verdict::Allow | Verdict::Warn)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(Verdict::Allow),
            "warn" => Ok(Verdict::Warn),
            "quarantine" => Ok(Verdict::Quarantine),
            "deny" => Ok(Verdict::Deny),
            other => Err(format!(
                "`{other}` is not a verdict (expected allow, warn, quarantine or deny)"
            )),
        }
    }
}

/// How serious a finding is. `Unknown` is its own level: an advisory without severity data
/// is not thereby "low".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
    Unknown,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
            Severity::Unknown => "unknown",
        }
    }

    /// Rank for threshold comparisons; `None` for `Unknown`, which thresholds treat apart.
    pub fn rank(self) -> Option<u8> {
        match self {
            Severity::Info => Some(0),
            Severity::Low => Some(1),
            Severity::Medium => Some(2),
            Severity::High => Some(3),
            Severity::Critical => Some(4),
            Severity::Unknown => None,
        }
    }

    /// The CVSS qualitative rating of a base score.
    pub fn from_cvss_score(score: f64) -> Severity {
        match score {
            s if s <= 0.0 => Severity::Info,
            s if s < 4.0 => Severity::Low,
            s if s < 7.0 => Severity::Medium,
            s if s < 9.0 => Severity::High,
            _ => Severity::Critical,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" | "informational" | "none" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" | "moderate" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            "unknown" => Ok(Severity::Unknown),
            other => Err(format!(
                "`{other}` is not a severity (expected info, low, medium, high, critical or unknown)"
            )),
        }
    }
}

/// One reason for a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The check that produced it (`advisories`, `typosquat`, ...).
    pub check: String,
    /// Stable kebab-case code (`known-malicious`, `vulnerable`, ...): what CI filters on.
    pub code: String,
    pub severity: Severity,
    /// What this finding alone asks for.
    pub verdict: Verdict,
    /// One line a person reads in a client's error output.
    pub message: String,
    /// Advisory ids and aliases behind the finding, if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    /// The nearest version that resolves this finding, when one is known (advisories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_in: Option<String>,
}

/// What a registry tells about a version, gathered before evaluation. Every field is
/// optional: offline callers (`depfw check`, `depfw audit` without `--online`) have none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMetadata {
    /// When this version was published.
    pub published: Option<DateTime<Utc>>,
    /// When the package (its first version) was published.
    pub package_created: Option<DateTime<Utc>>,
    /// The declared license (an SPDX expression, or whatever the author wrote). `None`:
    /// unknown, the source does not say (the cargo sparse index, PyPI's simple index);
    /// `Some("")`: the source says none is declared (an npm packument without `license`).
    /// Only a known license is judged: an unknown one must not read as a missing one.
    pub license: Option<String>,
    /// Whether installing runs scripts (npm pre/install/postinstall, crates `build.rs` unknown).
    pub has_install_scripts: Option<bool>,
    /// Deprecation message; `Some("")` is treated as not deprecated (npm's un-deprecate).
    pub deprecated: Option<String>,
    /// Yanked, with the reason if the registry gave one.
    pub yanked: Option<String>,
}

/// Everything a check may look at for one package version.
#[derive(Debug, Clone, Copy)]
pub struct PackageCtx<'a> {
    pub name: &'a PackageName,
    /// `None` when only the name is known (`depfw check npm foo`): name-level checks still run.
    pub version: Option<&'a Version>,
    pub metadata: Option<&'a VersionMetadata>,
    /// The evaluation time; injected so that age rules are testable.
    pub now: DateTime<Utc>,
}

/// One policy check. Implementations are pure and cheap: they run on every version of every
/// package the proxy serves.
pub trait Check: Send + Sync {
    /// The check's name, as reported in [`Finding::check`].
    fn name(&self) -> &'static str;
    /// Appends this check's findings for `ctx` to `findings`.
    fn evaluate(&self, ctx: &PackageCtx<'_>, findings: &mut Vec<Finding>);
}

/// The verdict for one package version and every reason behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
}

impl Decision {
    /// The advisory ids across all findings, deduplicated, in order of appearance.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for id in self.findings.iter().flat_map(|f| f.ids.iter()) {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        ids
    }

    /// A one-line summary of the reasons, for client error bodies.
    pub fn summary(&self) -> String {
        let reasons: Vec<String> = self
            .findings
            .iter()
            .filter(|f| f.verdict >= Verdict::Warn)
            .map(|f| format!("{}: {}", f.code, f.message))
            .collect();
        if reasons.is_empty() {
            "no findings".to_owned()
        } else {
            reasons.join("; ")
        }
    }
}

/// The configured checks plus the override lists.
#[derive(Clone)]
pub struct Policy {
    checks: Vec<Arc<dyn Check>>,
    overrides: Arc<overrides::Overrides>,
    revision: String,
}

impl Policy {
    /// `revision` identifies this policy's inputs (config, feeds, overrides); it goes into
    /// ETags so that clients revalidate when the policy changes.
    pub fn new(
        checks: Vec<Arc<dyn Check>>,
        overrides: Arc<overrides::Overrides>,
        revision: String,
    ) -> Self {
        Policy {
            checks,
            overrides,
            revision,
        }
    }

    pub fn revision(&self) -> &str {
        &self.revision
    }

    pub fn overrides(&self) -> &overrides::Overrides {
        &self.overrides
    }

    /// Runs every check, then the overrides, and combines the findings into one verdict.
    pub fn evaluate(&self, ctx: &PackageCtx<'_>) -> Decision {
        let mut findings = Vec::new();
        for check in &self.checks {
            check.evaluate(ctx, &mut findings);
        }
        let verdict = findings
            .iter()
            .map(|f| f.verdict)
            .max()
            .unwrap_or(Verdict::Allow);
        let mut decision = Decision { verdict, findings };
        self.overrides.apply(ctx, &mut decision);
        decision
    }
}
