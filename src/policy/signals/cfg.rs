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
    pub burst_packages: usize,
    pub young_dependency_added: String,
    pub young_dependency_added_major: String,
    pub young_dependency_hours: u64,
    pub dependency_unchecked: String,
    pub dependency_recent_days: u64,
    pub dependencies_per_version: usize,
    pub dependency_lookups: usize,
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
            burst_packages: 5,
            young_dependency_added: "quarantine".to_owned(),
            young_dependency_added_major: "warn".to_owned(),
            young_dependency_hours: 48,
            dependency_unchecked: "quarantine".to_owned(),
            dependency_recent_days: 30,
            dependencies_per_version: 4,
            dependency_lookups: 16,
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
    /// How many packages of one publisher released within `burst_window_minutes` make a
    /// burst (0 turns it off); the proxy only, from what it fetched lately.
    pub burst_packages: usize,
    pub young_dependency_added: Verdict,
    /// The verdict when the release that adds the young dependency is a new major version.
    pub young_dependency_added_major: Verdict,
    /// A dependency first published less than this before the release that adds it is young.
    pub young_dependency_hours: u64,
    /// The verdict when a dependency's first release could not be looked up (fail closed).
    pub dependency_unchecked: Verdict,
    /// Only releases published within this many days are checked for added dependencies.
    pub dependency_recent_days: u64,
    /// At most this many added dependencies of one release are looked up; the rest are
    /// unchecked.
    pub dependencies_per_version: usize,
    /// At most this many dependencies are looked up per metadata document (the proxy: per
    /// request; `--online`: per package name).
    pub dependency_lookups: usize,
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
        for (k, v) in [
            ("burst-versions", self.burst_versions),
            ("burst-packages", self.burst_packages),
        ] {
            if v == 1 {
                p.push(
                    key(k),
                    "1 would call every release a burst; use 0 to turn the rule off, or 2 or more",
                );
            }
        }
        if self.dependency_lookups > 1000 {
            p.push(
                key("dependency-lookups"),
                "at most 1000 lookups per document: each one is an upstream request",
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
            burst_packages: self.burst_packages,
            young_dependency_added: p
                .verdict(&key("young-dependency-added"), &self.young_dependency_added),
            young_dependency_added_major: p.verdict(
                &key("young-dependency-added-major"),
                &self.young_dependency_added_major,
            ),
            young_dependency_hours: self.young_dependency_hours,
            dependency_unchecked: p
                .verdict(&key("dependency-unchecked"), &self.dependency_unchecked),
            dependency_recent_days: self.dependency_recent_days,
            dependencies_per_version: self.dependencies_per_version,
            dependency_lookups: self.dependency_lookups,
        }
    }
}
