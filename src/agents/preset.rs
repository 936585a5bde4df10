//! Per-agent policy presets: `depfw agents add NAME --policy strict`.
//!
//! The policy engine gives one decision per package version for everyone; a preset then
//! tightens it for one agent. `default` passes the decision through. `strict` turns a final
//! `warn` into the configured `[agents] strict-warn` verdict (`deny` by default, or
//! `quarantine`), so an unattended agent never installs a version anything complained
//! about; `quarantine` and `deny` stay as they are, and a version a human allow-listed stays
//! allowed (the override already made the final verdict `allow`). A warning about other
//! versions (`has-malicious-versions`: `debug` once had a malicious release) is not a
//! complaint about this one, so it is never escalated: strict must not refuse every
//! version of `debug`, and with it `npm install express`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::diag::Code;
use crate::policy::{Decision, Finding, Severity, Verdict};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyPreset {
    /// The policy as configured.
    #[default]
    Default,
    /// `warn` becomes `[agents] strict-warn` (deny by default).
    Strict,
}

impl PolicyPreset {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyPreset::Default => "default",
            PolicyPreset::Strict => "strict",
        }
    }

    /// The agent's decision from the engine's. `strict_warn` is what `strict` makes of
    /// `warn` (config `[agents] strict-warn`: quarantine or deny).
    pub fn apply(self, mut decision: Decision, strict_warn: Verdict) -> Decision {
        let complained = decision
            .findings
            .iter()
            .any(|f| f.verdict == Verdict::Warn && !f.code.is_about_other_versions());
        if self == PolicyPreset::Strict && decision.verdict == Verdict::Warn && complained {
            decision.findings.push(Finding::new(
                Code::StrictPreset,
                Severity::Info,
                strict_warn,
                format!(
                    "this agent's policy is `strict`: versions with warnings are {}",
                    match strict_warn {
                        Verdict::Quarantine => "held for review",
                        _ => "refused",
                    }
                ),
            ));
            decision.verdict = strict_warn;
        }
        decision
    }
}

impl fmt::Display for PolicyPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PolicyPreset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "default" => Ok(PolicyPreset::Default),
            "strict" => Ok(PolicyPreset::Strict),
            other => Err(format!(
                "`{other}` is not a policy preset (expected default or strict)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(verdict: Verdict) -> Decision {
        let findings = match verdict {
            Verdict::Warn => vec![Finding::new(
                Code::Deprecated,
                Severity::Low,
                Verdict::Warn,
                "deprecated".to_owned(),
            )],
            _ => Vec::new(),
        };
        Decision { verdict, findings }
    }

    #[test]
    fn strict_never_escalates_a_warning_about_other_versions() {
        let name_only = Decision {
            verdict: Verdict::Warn,
            findings: vec![Finding::new(
                Code::HasMaliciousVersions,
                Severity::Critical,
                Verdict::Warn,
                "some versions are known malicious".to_owned(),
            )],
        };
        let d = PolicyPreset::Strict.apply(name_only.clone(), Verdict::Deny);
        assert_eq!(d, name_only);
        // With a warning about this version too, strict applies as usual.
        let mut both = name_only;
        both.findings.extend(decision(Verdict::Warn).findings);
        let d = PolicyPreset::Strict.apply(both, Verdict::Deny);
        assert_eq!(d.verdict, Verdict::Deny);
    }

    #[test]
    fn strict_escalates_warn_only() {
        let strict = PolicyPreset::Strict;
        let warned = strict.apply(decision(Verdict::Warn), Verdict::Deny);
        assert_eq!(warned.verdict, Verdict::Deny);
        assert_eq!(warned.findings[1].code, Code::StrictPreset);
        assert_eq!(
            strict
                .apply(decision(Verdict::Warn), Verdict::Quarantine)
                .verdict,
            Verdict::Quarantine
        );
        for unchanged in [Verdict::Allow, Verdict::Quarantine, Verdict::Deny] {
            let d = strict.apply(decision(unchanged), Verdict::Deny);
            assert_eq!(d.verdict, unchanged);
            assert!(d.findings.is_empty());
        }
    }

    #[test]
    fn default_passes_through_and_presets_parse() {
        let d = PolicyPreset::Default.apply(decision(Verdict::Warn), Verdict::Deny);
        assert_eq!(d, decision(Verdict::Warn));
        assert_eq!("strict".parse::<PolicyPreset>(), Ok(PolicyPreset::Strict));
        assert!("paranoid".parse::<PolicyPreset>().is_err());
    }
}
