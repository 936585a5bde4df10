//! The release signals: `depfw serve`, `depfw check --online` and `depfw audit --online`
//! hold a new version of an established package when it differs from the package's own
//! history the way the 2025–26 compromises did, before any advisory feed knows of it.
//!
//! A stolen publish token (nx, Shai-Hulud, axios) gives an attacker the package, not its
//! habits. Each version is compared with its *baseline*: the `baseline-releases` releases
//! published at least `baseline-gap-hours` before it (so a burst of compromised versions
//! never vouches for itself):
//!
//! - `install-script-added`: it runs a preinstall/install/postinstall script and no
//!   baseline release did (nx "s1ngularity", Shai-Hulud, Bitwarden CLI); a new major
//!   version gets its own verdict (`install-script-added-major`);
//! - `new-publisher`: published by an account that had never published this package
//!   before the baseline gap and was not one of its maintainers (npm `_npmUser`);
//! - `maintainers-replaced`: none of the newest baseline release's maintainers remain
//!   (npm `maintainers`): an account takeover, not a maintainer added alongside the others;
//! - `provenance-lost`: the newest baseline release that says carried a provenance
//!   attestation (npm `dist.attestations`, PyPI PEP 740 `provenance`) and this one has
//!   none (nx, axios);
//! - `release-burst`: `burst-versions` or more versions of the package published within
//!   `burst-window-minutes` of this one, before or after (Mini Shai-Hulud: 84 TanStack
//!   versions in 6 minutes).
//!
//! The facts come from the metadata document the proxy already fetched: the registry
//! parsers give every version a [`Lineage`] (its place in the package's
//! [`ReleaseHistory`]; the cargo index gives publish times only, so only the burst applies
//! there). A version without one (a lockfile entry offline, a name-only check) or without a
//! publish time gets no signal; the first release of a package has no baseline, so nothing
//! fires for it.
//!
//! - `young-dependency-added`: a patch or minor release declares a dependency that no
//!   baseline release declared, and that dependency's own first release came less than
//!   `young-dependency-hours` before this release (axios → `plain-crypto-js`, published the
//!   day before). A dependency in the package's own npm scope is not reported (a monorepo
//!   publishing a new sibling package with its first user); a new major version gets its
//!   own verdict (`young-dependency-added-major`, warn). Only releases published within
//!   `dependency-recent-days` of now are checked.
//!
//! The facts come from the metadata document the proxy already fetched: the registry
//! parsers give every version a [`Lineage`] (its place in the package's
//! [`ReleaseHistory`]; the cargo index gives publish times only, so only the burst applies
//! there). A version without one (a lockfile entry offline, a name-only check) or without a
//! publish time gets no signal; the first release of a package has no baseline, so nothing
//! fires for it.
//!
//! Two signals need more than the package's own document, so the door gathers it first
//! ([`Gathered`]; the check itself does no I/O):
//!
//! - the first release of each added dependency: the proxy (`server::signal_facts`) and
//!   `--online` (`audit::online`) look up at most `dependencies-per-version` added
//!   dependencies per release and `dependency-lookups` per document, cached. An added
//!   dependency whose first release is not known (the lookup failed, the registry gave no
//!   time, or a bound was reached) is `dependency-unchecked`: held by default, since an
//!   unanswerable registry must not be the attacker's way through;
//! - across packages, `release-burst` also fires when `burst-packages` or more packages of
//!   this version's publisher (npm `_npmUser`) were released within `burst-window-minutes`
//!   of it (Shai-Hulud republishing every package its stolen token reached). Only the proxy
//!   sees other packages: it keeps, in memory and per replica, the recent releases of the
//!   documents it fetched (`server::signal_facts`), so the burst shows in documents fetched
//!   after the others, and not at all in `depfw check` or `depfw audit`.

pub(crate) mod cfg;
pub mod gathered;
pub mod lineage;

pub use cfg::SignalsConfig;
pub use gathered::{DependencyAges, FirstRelease, Gathered, SeenRelease};
pub use lineage::{HistoryBuilder, Lineage, ReleaseFacts, ReleaseHistory, ReleaseView};

use chrono::{DateTime, Duration, Utc};

use super::{Check, Finding, PackageCtx, Severity};
use crate::diag::{checks, Code};
use crate::package::{Ecosystem, PackageName, Version};

/// The `signals` check; see the module docs.
pub struct SignalsCheck {
    config: SignalsConfig,
}

impl SignalsCheck {
    pub fn new(config: SignalsConfig) -> Self {
        SignalsCheck { config }
    }
}

fn hours(h: u64) -> Duration {
    Duration::try_hours(i64::try_from(h).unwrap_or(i64::MAX)).unwrap_or(Duration::MAX)
}

fn minutes(m: u64) -> Duration {
    Duration::try_minutes(i64::try_from(m).unwrap_or(i64::MAX)).unwrap_or(Duration::MAX)
}

/// Whether `this` starts a new major line after `previous` (for 0.x, a new minor: what
/// semver's caret ranges treat as breaking). Unknown versions count as not major.
fn is_major_bump(previous: &str, this: &Version) -> bool {
    let ecosystem = match this {
        Version::Semver(_) => Ecosystem::Npm,
        Version::Pep440(_) => Ecosystem::PyPI,
    };
    match (Version::parse(ecosystem, previous), this) {
        (Ok(Version::Semver(p)), Version::Semver(t)) => {
            t.major > p.major || (t.major == 0 && p.major == 0 && t.minor > p.minor)
        }
        (Ok(Version::Pep440(p)), Version::Pep440(t)) => {
            t.release().first().copied().unwrap_or(0) > p.release().first().copied().unwrap_or(0)
        }
        _ => false,
    }
}

/// "a, b and 3 more" for messages.
fn names(list: &[&str]) -> String {
    const SHOWN: usize = 3;
    let shown: Vec<String> = list.iter().take(SHOWN).map(|n| format!("`{n}`")).collect();
    match list.len().checked_sub(SHOWN) {
        Some(more) if more > 0 => format!("{} and {more} more", shown.join(", ")),
        _ => shown.join(", "),
    }
}

fn days(d: u64) -> Duration {
    Duration::try_days(i64::try_from(d).unwrap_or(i64::MAX)).unwrap_or(Duration::MAX)
}

/// An npm scope (`@babel/`), or `None` for an unscoped name.
fn scope(name: &str) -> Option<&str> {
    name.starts_with('@')
        .then(|| name.split_once('/').map(|(s, _)| s))
        .flatten()
}

impl SignalsConfig {
    /// The dependencies whose first release `young-dependency-added` needs for this
    /// version of `name`: those it added over its baseline, outside the package's own npm
    /// scope, when it was published within `dependency-recent-days` of `now`. The doors
    /// look up (a bounded part of) these, and the check reads the same list, so they
    /// cannot disagree about what was asked.
    pub fn added_dependencies<'l>(
        &self,
        name: &PackageName,
        lineage: &'l Lineage,
        now: DateTime<Utc>,
    ) -> Vec<&'l str> {
        let recent = lineage
            .this()
            .and_then(|r| r.published())
            .is_some_and(|p| p > now - days(self.dependency_recent_days));
        if !recent || self.baseline_releases == 0 {
            return Vec::new();
        }
        let own = scope(name.as_str());
        lineage
            .added_dependencies(hours(self.baseline_gap_hours), self.baseline_releases)
            .into_iter()
            .filter(|d| own.is_none() || scope(d) != own)
            .collect()
    }

    /// Which of [`SignalsConfig::added_dependencies`] a door looks up: the first
    /// `dependencies-per-version` (the rest are unchecked).
    pub fn dependencies_to_look_up<'l>(
        &self,
        name: &PackageName,
        lineage: &'l Lineage,
        now: DateTime<Utc>,
    ) -> Vec<&'l str> {
        let mut added = self.added_dependencies(name, lineage, now);
        added.truncate(self.dependencies_per_version);
        added
    }
}

impl SignalsCheck {
    /// `young-dependency-added` and `dependency-unchecked` (see the module docs).
    fn dependencies(
        &self,
        ctx: &PackageCtx<'_>,
        lineage: &Lineage,
        ages: &DependencyAges,
        published: DateTime<Utc>,
        major: bool,
        findings: &mut Vec<Finding>,
    ) {
        let c = &self.config;
        let young = hours(c.young_dependency_hours);
        let verdict = |minor| {
            if major {
                c.young_dependency_added_major
            } else {
                minor
            }
        };
        let kind = if major {
            "a new major version"
        } else {
            "a patch or minor release"
        };
        for dep in c.added_dependencies(ctx.name, lineage, ctx.now) {
            match ages.get(dep) {
                Some(FirstRelease::At(first)) if published - *first < young => {
                    let age = published - *first;
                    // Rounded: the times come from two documents.
                    let minutes = age.num_minutes().max(0);
                    let age = if minutes < 90 {
                        format!("{minutes} minutes")
                    } else {
                        format!("{} hours", (minutes + 30) / 60)
                    };
                    findings.push(Finding::new(
                        Code::YoungDependencyAdded,
                        Severity::High,
                        verdict(c.young_dependency_added),
                        format!(
                            "adds the dependency `{dep}` ({kind}), whose first release came {age} before \
                             this one: a package made to be pulled in by a hijacked release"
                        ),
                    ));
                }
                Some(FirstRelease::At(_)) => {}
                unknown => {
                    let why = match unknown {
                        Some(FirstRelease::Unknown(why)) => why.as_str(),
                        _ => "not looked up: over `policy.signals.dependencies-per-version` or `dependency-lookups`",
                    };
                    findings.push(Finding::new(
                        Code::DependencyUnchecked,
                        Severity::Medium,
                        verdict(c.dependency_unchecked),
                        format!(
                            "adds the dependency `{dep}` ({kind}), whose first release could not be \
                             checked ({why}); held until it can be"
                        ),
                    ));
                }
            }
        }
    }

    /// `release-burst` across packages: this version's publisher released `burst-packages`
    /// or more packages (this one included) within the window.
    fn publisher_burst(
        &self,
        ctx: &PackageCtx<'_>,
        publisher: &str,
        published: DateTime<Utc>,
        gathered: &Gathered,
        findings: &mut Vec<Finding>,
    ) {
        let c = &self.config;
        let Some(seen) = gathered.publishers.get(publisher) else {
            return;
        };
        let window = minutes(c.burst_window_minutes);
        let mut others: Vec<&str> = seen
            .iter()
            .filter(|r| r.package != ctx.name.as_str())
            .filter(|r| (r.published - published).abs() <= window)
            .map(|r| r.package.as_str())
            .collect();
        others.sort_unstable();
        others.dedup();
        if others.len() + 1 >= c.burst_packages {
            findings.push(Finding::new(
                Code::ReleaseBurst,
                Severity::Medium,
                c.release_burst,
                format!(
                    "`{publisher}` published {} other packages within {} minutes of this \
                     release ({}): a worm republishing what a stolen token reaches",
                    others.len(),
                    c.burst_window_minutes,
                    names(&others)
                ),
            ));
        }
    }
}

impl Check for SignalsCheck {
    fn name(&self) -> &'static str {
        checks::SIGNALS
    }

    fn signals(&self) -> Option<&SignalsConfig> {
        Some(&self.config)
    }

    fn evaluate(&self, ctx: &PackageCtx<'_>, findings: &mut Vec<Finding>) {
        let Some(lineage) = ctx.metadata.and_then(|m| m.lineage.as_ref()) else {
            return;
        };
        let Some(this) = lineage.this() else {
            return;
        };
        let Some(published) = this.published() else {
            return;
        };
        let c = &self.config;

        if c.burst_versions > 1 {
            let count = lineage.releases_within(minutes(c.burst_window_minutes));
            if count >= c.burst_versions {
                findings.push(Finding::new(
                    Code::ReleaseBurst,
                    Severity::Medium,
                    c.release_burst,
                    format!(
                        "{count} versions of this package were published within {} minutes of \
                         this one (a stolen token or poisoned pipeline republishing)",
                        c.burst_window_minutes
                    ),
                ));
            }
        }

        let gathered = ctx.metadata.and_then(|m| m.gathered.as_deref());
        if let (true, Some(publisher), Some(g)) = (c.burst_packages > 1, this.publisher(), gathered)
        {
            self.publisher_burst(ctx, publisher, published, g, findings);
        }

        let gap = hours(c.baseline_gap_hours);
        let baseline = lineage.baseline(gap, c.baseline_releases);
        let Some(newest) = baseline.first() else {
            return;
        };
        let major = ctx
            .version
            .is_some_and(|v| is_major_bump(newest.version(), v));
        if let Some(ages) = gathered.and_then(|g| g.dependencies.as_ref()) {
            self.dependencies(ctx, lineage, ages, published, major, findings);
        }
        let span = if baseline.len() == 1 {
            format!("the previous release ({})", newest.version())
        } else {
            format!(
                "the {} previous releases ({} to {})",
                baseline.len(),
                baseline.last().map_or("", |r| r.version()),
                newest.version()
            )
        };

        if this.install_script() == Some(true)
            && baseline.iter().all(|r| r.install_script() == Some(false))
        {
            findings.push(Finding::new(
                Code::InstallScriptAdded,
                Severity::High,
                if major {
                    c.install_script_added_major
                } else {
                    c.install_script_added
                },
                format!(
                    "runs an install script that none of {span} ran{}",
                    if major { " (a new major version)" } else { "" }
                ),
            ));
        }

        if let (Some(publisher), Some(first)) =
            (this.publisher(), lineage.publisher_first_published())
        {
            let earlier: Vec<&str> = {
                let mut seen: Vec<&str> = Vec::new();
                for p in baseline.iter().filter_map(ReleaseView::publisher) {
                    if !seen.contains(&p) {
                        seen.push(p);
                    }
                }
                seen
            };
            // New: its first release of this package is within the gap before this one,
            // and it was not among the maintainers of the newest baseline release that
            // names them (a maintainer publishing for the first time is not news).
            let was_maintainer = baseline
                .iter()
                .map(ReleaseView::maintainers)
                .find(|m| !m.is_empty())
                .is_some_and(|m| m.contains(&publisher));
            if !earlier.is_empty() && first > published - gap && !was_maintainer {
                findings.push(Finding::new(
                    Code::NewPublisher,
                    Severity::Medium,
                    c.new_publisher,
                    format!(
                        "published by `{publisher}`, an account that had not published this \
                         package before; {span} came from {}",
                        names(&earlier)
                    ),
                ));
            }
        }

        if let Some(with_maintainers) = baseline.iter().find(|r| !r.maintainers().is_empty()) {
            if this.shares_no_maintainer_with(with_maintainers) {
                findings.push(Finding::new(
                    Code::MaintainersReplaced,
                    Severity::High,
                    c.maintainers_replaced,
                    format!(
                        "maintained by {}, none of whom maintained {} ({})",
                        names(&this.maintainers()),
                        with_maintainers.version(),
                        names(&with_maintainers.maintainers())
                    ),
                ));
            }
        }

        if this.attested() == Some(false) {
            if let Some(attested) = baseline
                .iter()
                .find(|r| r.attested().is_some())
                .filter(|r| r.attested() == Some(true))
            {
                findings.push(Finding::new(
                    Code::ProvenanceLost,
                    Severity::High,
                    c.provenance_lost,
                    format!(
                        "carries no provenance attestation, while {} did: it was not built \
                         and published by the package's usual pipeline",
                        attested.version()
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_bumps_follow_caret_semantics() {
        let v = |s: &str| Version::parse(crate::package::Ecosystem::Npm, s).unwrap();
        assert!(is_major_bump("1.9.0", &v("2.0.0")));
        assert!(is_major_bump("0.3.1", &v("0.4.0")));
        assert!(!is_major_bump("1.2.3", &v("1.2.4")));
        assert!(!is_major_bump("1.2.3", &v("1.3.0")));
        let p = |s: &str| Version::parse(crate::package::Ecosystem::PyPI, s).unwrap();
        assert!(is_major_bump("1.9", &p("2.0")));
        assert!(!is_major_bump("1.9", &p("1.10")));
    }

    #[test]
    fn scopes_are_read_from_npm_names() {
        assert_eq!(scope("@babel/core"), Some("@babel"));
        assert_eq!(scope("babel-core"), None);
        assert_eq!(scope("@broken"), None);
    }

    #[test]
    fn names_are_shortened() {
        assert_eq!(names(&["a"]), "`a`");
        assert_eq!(
            names(&["a", "b", "c", "d", "e"]),
            "`a`, `b`, `c` and 2 more"
        );
    }
}
