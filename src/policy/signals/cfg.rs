//! `[policy.signals]`: the release signals' settings, as written and validated.

use serde::Deserialize;

use crate::diag::problems::Problems;
use crate::diag::Verdict;

/// `[policy.signals]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawSignals {
    pub baseline_releases: usize,
    pub baseline_gap_hours: u64,
    pub install_script_added: String,
    pub install_script_added_major: String,
    pub new_publisher: String,
    pub maintainers_replaced: String,
    pub provenance_lost: String,
    pub release_burst: String,
    pub burst_versions: usize,
    pub burst_window_minutes: u64,
}

impl Default for RawSignals {
    fn default() -> Self {
        RawSignals {
            baseline_releases: 5,
            baseline_gap_hours: 24,
            install_script_added: "quarantine".to_owned(),
            install_script_added_major: "warn".to_owned(),
            new_publisher: "warn".to_owned(),
            maintainers_replaced: "quarantine".to_owned(),
            provenance_lost: "quarantine".to_owned(),
            release_burst: "warn".to_owned(),
            burst_versions: 5,
            burst_window_minutes: 60,
        }
    }
}

/// `[policy.signals]`, validated.
#[derive(Debug, Clone)]
pub struct SignalsConfig {
    /// How many earlier releases a version is compared with (0 turns the comparisons off).
    pub baseline_releases: usize,
    /// Releases published less than this before a version are not part of its baseline.
    pub baseline_gap_hours: u64,
    pub install_script_added: Verdict,
    /// The verdict when the version with the new install script is a new major version.
    pub install_script_added_major: Verdict,
    pub new_publisher: Verdict,
    pub maintainers_replaced: Verdict,
    pub provenance_lost: Verdict,
    pub release_burst: Verdict,
    /// How many versions within `burst_window_minutes` make a burst (0 turns it off).
    pub burst_versions: usize,
    pub burst_window_minutes: u64,
}

impl Default for SignalsConfig {
    fn default() -> Self {
        let mut p = Problems::default();
        RawSignals::default().validate(&mut p)
    }
}

impl RawSignals {
    /// Checks every value, pushing each problem under its `policy.signals.*` key.
    pub(crate) fn validate(&self, p: &mut Problems) -> SignalsConfig {
        let key = |k: &str| format!("policy.signals.{k}");
        if self.burst_versions == 1 {
            p.push(
                key("burst-versions"),
                "1 would call every release a burst; use 0 to turn the rule off, or 2 or more",
            );
        }
        SignalsConfig {
            baseline_releases: self.baseline_releases,
            baseline_gap_hours: self.baseline_gap_hours,
            install_script_added: p
                .verdict(&key("install-script-added"), &self.install_script_added),
            install_script_added_major: p.verdict(
                &key("install-script-added-major"),
                &self.install_script_added_major,
            ),
            new_publisher: p.verdict(&key("new-publisher"), &self.new_publisher),
            maintainers_replaced: p
                .verdict(&key("maintainers-replaced"), &self.maintainers_replaced),
            provenance_lost: p.verdict(&key("provenance-lost"), &self.provenance_lost),
            release_burst: p.verdict(&key("release-burst"), &self.release_burst),
            burst_versions: self.burst_versions,
            burst_window_minutes: self.burst_window_minutes,
        }
    }
}
