//! `[agents]`: per-agent presets and the circuit breaker's limits, as written and validated.

use serde::Deserialize;

use super::{BreakerLimits, PolicyPreset};
use crate::diag::problems::Problems;
use crate::diag::Verdict;

/// `[agents]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawAgents {
    pub default_policy: String,
    pub strict_warn: String,
    pub max_new_packages_per_hour: u32,
    pub max_refusals_per_hour: u32,
}

impl Default for RawAgents {
    fn default() -> Self {
        let limits = BreakerLimits::default();
        RawAgents {
            default_policy: "default".to_owned(),
            strict_warn: "deny".to_owned(),
            max_new_packages_per_hour: limits.max_new_packages_per_hour,
            max_refusals_per_hour: limits.max_refusals_per_hour,
        }
    }
}

/// `[agents]`: per-agent presets and the circuit breaker.
#[derive(Debug, Clone)]
pub struct AgentsConfig {
    /// The preset `depfw agents add` gives without `--policy`.
    pub default_policy: PolicyPreset,
    /// What the `strict` preset makes of a `warn` verdict: quarantine or deny.
    pub strict_warn: Verdict,
    /// Circuit-breaker limits per agent and hour (0 turns one off).
    pub limits: BreakerLimits,
}

impl RawAgents {
    /// Checks every value, pushing each problem under its `agents.*` key.
    pub(crate) fn validate(&self, p: &mut Problems) -> AgentsConfig {
        let default_policy = self
            .default_policy
            .parse::<PolicyPreset>()
            .unwrap_or_else(|e| {
                p.push("agents.default-policy", e);
                PolicyPreset::Default
            });
        let strict_warn = p.verdict("agents.strict-warn", &self.strict_warn);
        if !matches!(strict_warn, Verdict::Quarantine | Verdict::Deny) {
            p.push("agents.strict-warn", "must be `quarantine` or `deny`");
        }
        AgentsConfig {
            default_policy,
            strict_warn,
            limits: BreakerLimits {
                max_new_packages_per_hour: self.max_new_packages_per_hour,
                max_refusals_per_hour: self.max_refusals_per_hour,
            },
        }
    }
}
