//! `[policy.reputation]`: the reputation check's settings, as written and validated.

use serde::Deserialize;

use crate::diag::problems::Problems;
use crate::diag::Verdict;

/// `[policy.reputation]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawReputation {
    pub cooldown_hours: u64,
    pub cooldown: String,
    pub publish_time_unknown: String,
    pub new_package_days: u64,
    pub new_package: String,
    pub install_scripts: String,
    pub deprecated: String,
    pub yanked: String,
}

impl Default for RawReputation {
    fn default() -> Self {
        RawReputation {
            cooldown_hours: 48,
            cooldown: "quarantine".to_owned(),
            publish_time_unknown: "quarantine".to_owned(),
            new_package_days: 14,
            new_package: "quarantine".to_owned(),
            install_scripts: "warn".to_owned(),
            deprecated: "warn".to_owned(),
            yanked: "deny".to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReputationConfig {
    pub cooldown_hours: u64,
    pub cooldown: Verdict,
    /// The verdict when the cooldown is on and a version has no publish time.
    pub publish_time_unknown: Verdict,
    pub new_package_days: u64,
    pub new_package: Verdict,
    pub install_scripts: Verdict,
    pub deprecated: Verdict,
    pub yanked: Verdict,
}

impl RawReputation {
    /// Checks every value, pushing each problem under its `policy.reputation.*` key.
    pub(crate) fn validate(&self, p: &mut Problems) -> ReputationConfig {
        ReputationConfig {
            cooldown_hours: self.cooldown_hours,
            cooldown: p.verdict("policy.reputation.cooldown", &self.cooldown),
            publish_time_unknown: p.verdict(
                "policy.reputation.publish-time-unknown",
                &self.publish_time_unknown,
            ),
            new_package_days: self.new_package_days,
            new_package: p.verdict("policy.reputation.new-package", &self.new_package),
            install_scripts: p.verdict("policy.reputation.install-scripts", &self.install_scripts),
            deprecated: p.verdict("policy.reputation.deprecated", &self.deprecated),
            yanked: p.verdict("policy.reputation.yanked", &self.yanked),
        }
    }
}
