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
pub mod content;
pub mod internal;
pub mod license;
pub mod overrides;
pub mod reputation;
pub mod signals;
pub mod typosquat;

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::diag::Code;
pub use crate::diag::{Finding, Severity, Verdict};
use crate::package::{PackageName, Version};

/// What a registry tells about a version, gathered before evaluation. Every field is
/// optional: offline callers (`depfw check`, `depfw audit` without `--online`) have none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMetadata {
    /// When this version was published.
    pub published: Option<DateTime<Utc>>,
    /// Whether this metadata is a registry's description of the version, which should say
    /// when it was published: then a missing [`VersionMetadata::published`] is the
    /// `publish-time-unknown` finding, never a silent pass. False for what a lockfile
    /// records, which never carries publish times.
    #[serde(default)]
    pub publish_time_expected: bool,
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
    /// This version's place in its package's release history, for the release signals
    /// (`policy::signals`); `None` when the source lists no history (a lockfile entry). Shared by every version of one document; not serialised.
    #[serde(skip)]
    pub lineage: Option<signals::Lineage>,
    /// What the door looked up for the release signals beyond this document (dependencies'
    /// first releases, the publishers' other releases), shared by every version of the
    /// document; `None` where nothing was looked up. Not serialised.
    #[serde(skip)]
    pub gathered: Option<Arc<signals::Gathered>>,
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
    /// The release signals' settings, for the doors that gather what they need beyond
    /// the package's own metadata ([`signals::Gathered`]); only the signals check has them.
    fn signals(&self) -> Option<&signals::SignalsConfig> {
        None
    }
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

    /// What enforce mode would have made of a decision monitor mode served: the verdict of
    /// its `would-refuse` finding ([`Enforcement::apply`]); `None` for any other decision.
    pub fn would_refuse(&self) -> Option<Verdict> {
        self.findings
            .iter()
            .find(|f| f.code == Code::WouldRefuse)
            .map(|f| f.verdict)
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

/// `policy.mode`: whether the policy's refusals are enforced, or only recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Refused versions are hidden from metadata and their downloads get 403.
    #[default]
    Enforce,
    /// Everything is decided and recorded, nothing is refused: how a team adopts depfw
    /// without an outage, reading what would have been refused first.
    Monitor,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Monitor => "monitor",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enforce" => Ok(Mode::Enforce),
            "monitor" => Ok(Mode::Monitor),
            other => Err(format!(
                "`{other}` is not a mode (expected `enforce` or `monitor`)"
            )),
        }
    }
}

/// Findings monitor mode still refuses on. They are not the policy's judgement of a
/// package but a guarantee the operator asked for by name: a human's deny entry (an
/// incident during the rollout must be stoppable at once), an internal name (serving it
/// from the public registry is the dependency-confusion attack itself) and a version depfw
/// cannot parse (nothing could be decided about it). Integrity is no finding: a digest
/// mismatch or a hostile upstream body is refused by the artifact gate in either mode.
const ALWAYS_ENFORCED: &[Code] = &[
    Code::DenyListed,
    Code::InternalName,
    Code::UnparsableVersion,
];

/// Who the policy's refusals apply to: `policy.mode` and its per-agent exceptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enforcement {
    pub mode: Mode,
    /// `policy.monitor-agents`: agents in monitor mode whatever `mode` says.
    pub monitor_agents: BTreeSet<String>,
    /// `policy.enforce-agents`: agents enforced whatever `mode` says (the agents already
    /// moved over while the others are still monitored).
    pub enforce_agents: BTreeSet<String>,
}

impl Enforcement {
    /// Whether a request by `agent` (`None`: anonymous) is refused when the policy says so.
    pub fn enforces(&self, agent: Option<&str>) -> bool {
        match agent {
            Some(a) if self.enforce_agents.contains(a) => true,
            Some(a) if self.monitor_agents.contains(a) => false,
            _ => self.mode == Mode::Enforce,
        }
    }

    /// The decision as `agent`'s request gets it: unchanged when enforced; in monitor
    /// mode a refusal is served as a warning, with a `would-refuse` finding whose verdict
    /// is the refusal enforce mode would have made (see [`Decision::would_refuse`]).
    /// Findings in [`ALWAYS_ENFORCED`] keep their refusal in both modes.
    pub fn apply(&self, agent: Option<&str>, mut decision: Decision) -> Decision {
        if decision.verdict.is_servable() || self.enforces(agent) {
            return decision;
        }
        let kept = decision
            .findings
            .iter()
            .any(|f| !f.verdict.is_servable() && ALWAYS_ENFORCED.contains(&f.code));
        if kept {
            return decision;
        }
        let why = match agent {
            Some(a) if self.monitor_agents.contains(a) => {
                format!("agent `{a}` is in policy.monitor-agents")
            }
            _ => "policy.mode = \"monitor\"".to_owned(),
        };
        let would = match decision.verdict {
            Verdict::Quarantine => "held it for review",
            _ => "refused it",
        };
        decision.findings.push(Finding::new(
            Code::WouldRefuse,
            Severity::Info,
            decision.verdict,
            format!("not enforced ({why}): served, but enforce mode would have {would}"),
        ));
        decision.verdict = Verdict::Warn;
        decision
    }
}

/// The configured checks plus the override lists.
#[derive(Clone)]
pub struct Policy {
    checks: Vec<Arc<dyn Check>>,
    overrides: Arc<overrides::Overrides>,
    revision: String,
    /// Ecosystems the policy cannot decide for (no advisory data), with the reason.
    undecidable: Arc<std::collections::BTreeMap<crate::package::Ecosystem, String>>,
    /// The content rules, when the policy runs them (its [`content::ContentCheck`] is one
    /// of `checks`): the proxy's artifact gate scans with their settings and records hits
    /// in their ledger.
    content: Option<Arc<content::ContentRules>>,
    /// Whom refusals apply to (`policy.mode`); applied per request by the proxy, never by
    /// [`Policy::evaluate`], so `depfw audit` and `depfw check` report refusals as such.
    enforcement: Arc<Enforcement>,
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
            undecidable: Arc::default(),
            content: None,
            enforcement: Arc::default(),
        }
    }

    /// The same policy, enforced as `enforcement` says (`policy.mode` and its agent lists).
    pub fn with_enforcement(mut self, enforcement: Enforcement) -> Self {
        self.enforcement = Arc::new(enforcement);
        self
    }

    /// Whom this policy's refusals apply to.
    pub fn enforcement(&self) -> &Enforcement {
        &self.enforcement
    }

    /// The same policy with the content rules: their check is added to the checks, and
    /// [`Policy::content`] hands them to the artifact gate.
    pub fn with_content(mut self, rules: Arc<content::ContentRules>) -> Self {
        self.checks
            .push(Arc::new(content::ContentCheck::new(Arc::clone(&rules))));
        self.content = Some(rules);
        self
    }

    /// The content rules, when this policy runs them.
    pub fn content(&self) -> Option<&content::ContentRules> {
        self.content.as_deref()
    }

    /// The release signals' settings, when this policy runs them.
    pub fn signals(&self) -> Option<&signals::SignalsConfig> {
        self.checks.iter().find_map(|c| c.signals())
    }

    /// The same policy, unable to decide for these ecosystems: every door refuses their
    /// packages with the reason (fail closed) instead of evaluating them without the data.
    pub fn undecidable_for(
        mut self,
        ecosystems: std::collections::BTreeMap<crate::package::Ecosystem, String>,
    ) -> Self {
        self.undecidable = Arc::new(ecosystems);
        self
    }

    /// Why this policy cannot decide for `ecosystem`'s packages, if it cannot.
    pub fn undecidable(&self, ecosystem: crate::package::Ecosystem) -> Option<&str> {
        self.undecidable.get(&ecosystem).map(String::as_str)
    }

    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// No check runs, only the overrides: the fail-open policy when feeds could not load.
    pub(crate) fn runs_no_check(&self) -> bool {
        self.checks.is_empty()
    }

    pub fn overrides(&self) -> &overrides::Overrides {
        &self.overrides
    }

    /// The same checks with other overrides and revision: what an override change or a
    /// quarantine approval costs (O(overrides); the advisory index is shared, not rebuilt).
    pub fn with_overrides(&self, overrides: Arc<overrides::Overrides>, revision: String) -> Self {
        Policy {
            checks: self.checks.clone(),
            overrides,
            revision,
            undecidable: Arc::clone(&self.undecidable),
            content: self.content.clone(),
            enforcement: Arc::clone(&self.enforcement),
        }
    }

    /// The version to suggest instead of one with `findings`: the lowest version that the
    /// advisories behind them name as fixed and that this policy itself allows, or `None`.
    /// One advisory's fix is often caught by another (Django 3.0's fixes include 3.1.12,
    /// which later advisories cover), so each refused candidate's own fixes are tried in
    /// turn; a suggestion depfw would then refuse is worse than none. Registry metadata is
    /// not known for a candidate: it is judged on advisories, names and overrides.
    pub(crate) fn allowed_fix(
        &self,
        name: &PackageName,
        findings: &[Finding],
        now: DateTime<Utc>,
    ) -> Option<Version> {
        /// Each step moves to a strictly higher fix, so this only bounds the work.
        const MAX_STEPS: usize = 16;
        let highest_fix = |findings: &[Finding]| {
            findings
                .iter()
                .filter_map(|f| f.fixed_in.as_deref())
                .filter_map(|v| Version::parse(name.ecosystem(), v).ok())
                .max_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal))
        };
        let mut candidate = highest_fix(findings)?;
        for _ in 0..MAX_STEPS {
            let decision = self.evaluate(&PackageCtx {
                name,
                version: Some(&candidate),
                metadata: None,
                now,
            });
            if decision.verdict.is_servable() {
                return Some(candidate);
            }
            let next = highest_fix(&decision.findings)?;
            if next.partial_cmp(&candidate) != Some(Ordering::Greater) {
                return None;
            }
            candidate = next;
        }
        None
    }

    /// Runs every check, then the overrides, and combines the findings into one verdict.
    pub fn evaluate(&self, ctx: &PackageCtx<'_>) -> Decision {
        self.evaluate_for(ctx, None)
    }

    /// [`Policy::evaluate`] for a request by `agent`: the overrides for that agent alone
    /// apply too ([`overrides::Overrides::apply_for`]).
    pub fn evaluate_for(&self, ctx: &PackageCtx<'_>, agent: Option<&str>) -> Decision {
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
        self.overrides.apply_for(ctx, agent, &mut decision);
        decision
    }
}
