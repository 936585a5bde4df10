//! `[policy.advisories]`: the advisories check's settings, as written and validated.

use serde::Deserialize;

use crate::diag::problems::Problems;
use crate::diag::{Severity, Verdict};

/// `[policy.advisories]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawAdvisories {
    pub deny_at: String,
    pub unknown_severity: String,
    pub unfixed: String,
    pub informational: String,
    pub ignore: Vec<String>,
}

impl Default for RawAdvisories {
    fn default() -> Self {
        RawAdvisories {
            deny_at: "high".to_owned(),
            unknown_severity: "deny".to_owned(),
            unfixed: "warn".to_owned(),
            informational: "warn".to_owned(),
            ignore: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AdvisoriesConfig {
    /// Vulnerabilities at or above this severity are denied; below it they warn.
    pub deny_at: Severity,
    /// The verdict for a vulnerability whose severity is unknown and that names a fix.
    pub unknown_severity: Verdict,
    /// The verdict for a vulnerability whose severity is unknown and that names no fixed
    /// version above the evaluated one (`unfixed-advisory`).
    pub unfixed: Verdict,
    /// The verdict for informational advisories (unmaintained, unsound, notice).
    pub informational: Verdict,
    /// Advisory ids (or aliases) that are ignored.
    pub ignore: Vec<String>,
}

impl RawAdvisories {
    /// Checks every value, pushing each problem under its `policy.advisories.*` key.
    pub(crate) fn validate(&self, p: &mut Problems) -> AdvisoriesConfig {
        let deny_at = self.deny_at.parse::<Severity>().unwrap_or_else(|e| {
            p.push("policy.advisories.deny-at", e);
            Severity::High
        });
        if deny_at == Severity::Unknown {
            p.push(
                "policy.advisories.deny-at",
                "use `unknown-severity` for advisories without a severity",
            );
        }
        AdvisoriesConfig {
            deny_at,
            unknown_severity: p
                .verdict("policy.advisories.unknown-severity", &self.unknown_severity),
            unfixed: p.verdict("policy.advisories.unfixed", &self.unfixed),
            informational: p.verdict("policy.advisories.informational", &self.informational),
            ignore: self.ignore.clone(),
        }
    }
}
