//! The advisories check: known-malicious packages and known vulnerabilities.
//!
//! Every door of depfw (proxy, `depfw audit`, `depfw check`) asks it about each package
//! version; it looks the package up in the [`AdvisoryIndex`] (bundled snapshot or synced
//! feeds) and turns each affecting advisory into a finding with a stable code:
//!
//! - `known-malicious`: a malicious record covers this version (always deny);
//! - `vulnerable`: deny at or above `deny-at`, warn below, `unknown-severity` when unscored;
//! - `unfixed-advisory`: unscored and no fixed version above this one (`unfixed`, warn by
//!   default): an advisory that covers every release, the latest included, would otherwise
//!   refuse a package outright on no evidence of severity;
//! - `informational-advisory`: RustSec unmaintained / unsound / notice (`informational`);
//! - name-only evaluations (no version) where only some versions are affected:
//!   `has-malicious-versions` (warn) and `has-vulnerable-versions` (allow, for the record):
//!   the name itself is not the problem, the caller must pick a version.

pub(crate) mod cfg;

pub use cfg::AdvisoriesConfig;

use std::fmt::Write as _;
use std::sync::Arc;

use crate::diag::{checks, Code};
use crate::feeds::{Advisory, AdvisoryIndex, AdvisoryKind};
use crate::package::Version;
use crate::policy::{Check, Finding, PackageCtx, Severity, Verdict};

const NAME: &str = checks::ADVISORIES;
/// Aliases shown in a message; the finding's `ids` carry all of them.
const MESSAGE_ALIASES: usize = 3;

pub struct AdvisoriesCheck {
    index: Arc<AdvisoryIndex>,
    config: AdvisoriesConfig,
}

impl AdvisoriesCheck {
    pub fn new(index: Arc<AdvisoryIndex>, config: AdvisoriesConfig) -> Self {
        AdvisoriesCheck { index, config }
    }

    fn ignored(&self, advisory: &Advisory) -> bool {
        // Ids compare case-insensitively; the list is short, so a scan beats hashing.
        !self.config.ignore.is_empty()
            && advisory.ids().any(|id| {
                self.config
                    .ignore
                    .iter()
                    .any(|i| i.eq_ignore_ascii_case(id))
            })
    }

    fn vulnerability_verdict(&self, severity: Severity) -> Verdict {
        match (severity.rank(), self.config.deny_at.rank()) {
            (None, _) => self.config.unknown_severity,
            (Some(s), Some(threshold)) if s >= threshold => Verdict::Deny,
            _ => Verdict::Warn,
        }
    }

    /// The finding for an advisory that affects the evaluated version (or every version).
    fn affecting(&self, advisory: &Advisory, version: Option<&Version>) -> Finding {
        let fixed_in = version.and_then(|v| advisory.fixed_above(v));
        let (code, verdict, severity) = match advisory.kind {
            AdvisoryKind::Malicious => (Code::KnownMalicious, Verdict::Deny, Severity::Critical),
            AdvisoryKind::Vulnerability
                if advisory.severity == Severity::Unknown && fixed_in.is_none() =>
            {
                (
                    Code::UnfixedAdvisory,
                    self.config.unfixed,
                    Severity::Unknown,
                )
            }
            AdvisoryKind::Vulnerability => (
                Code::Vulnerable,
                self.vulnerability_verdict(advisory.severity),
                advisory.severity,
            ),
            AdvisoryKind::Unmaintained | AdvisoryKind::Unsound | AdvisoryKind::Notice => (
                Code::InformationalAdvisory,
                self.config.informational,
                match advisory.severity {
                    Severity::Unknown => Severity::Info,
                    s => s,
                },
            ),
        };
        let mut message = cite(advisory);
        message.push_str(": ");
        match advisory.kind {
            AdvisoryKind::Malicious if advisory.affects_all_versions() => {
                message.push_str("known malicious package, every version")
            }
            AdvisoryKind::Malicious => message.push_str("known malicious version"),
            AdvisoryKind::Vulnerability => {
                let _ = write!(message, "vulnerable, severity {severity}");
                if code == Code::UnfixedAdvisory {
                    message.push_str(", no fixed version");
                }
            }
            kind => message.push_str(kind.as_str()),
        }
        // Formatted once: the message and the field carry the same text.
        let fixed_in = fixed_in.map(Version::to_string);
        if let Some(fixed) = &fixed_in {
            message.push_str(", fixed in ");
            message.push_str(fixed);
        }
        Finding {
            ids: advisory.ids().map(str::to_owned).collect(),
            fixed_in,
            ..Finding::new(code, severity, verdict, message)
        }
    }
}

/// `ID (ALIAS, ALIAS, …)`, written straight into one string: a package like Django has
/// dozens of affecting advisories, and every finding pays for its message.
fn cite(advisory: &Advisory) -> String {
    let mut out = String::with_capacity(96);
    out.push_str(&advisory.id);
    for (i, alias) in advisory.aliases.iter().take(MESSAGE_ALIASES).enumerate() {
        out.push_str(if i == 0 { " (" } else { ", " });
        out.push_str(alias);
    }
    let more = advisory.aliases.len().saturating_sub(MESSAGE_ALIASES);
    if more > 0 {
        let _ = write!(out, ", +{more}");
    }
    if !advisory.aliases.is_empty() {
        out.push(')');
    }
    out
}

/// One finding for the advisories that affect only some versions of a name-only lookup.
fn partial(
    code: Code,
    verdict: Verdict,
    severity: Severity,
    what: &str,
    advisories: &[&Advisory],
) -> Finding {
    let cited: Vec<String> = advisories
        .iter()
        .take(MESSAGE_ALIASES)
        .map(|a| a.id.clone())
        .collect();
    let more = advisories.len().saturating_sub(MESSAGE_ALIASES);
    let mut message = format!("some versions are {what} ({}", cited.join(", "));
    if more > 0 {
        let _ = write!(message, ", +{more}");
    }
    message.push_str("); evaluate a specific version");
    Finding {
        ids: advisories
            .iter()
            .flat_map(|a| a.ids())
            .map(str::to_owned)
            .collect(),
        ..Finding::new(code, severity, verdict, message)
    }
}

impl Check for AdvisoriesCheck {
    fn name(&self) -> &'static str {
        NAME
    }

    fn evaluate(&self, ctx: &PackageCtx<'_>, findings: &mut Vec<Finding>) {
        let advisories = self.index.for_package(ctx.name);
        if advisories.is_empty() {
            return;
        }
        let mut malicious_versions = Vec::new();
        let mut vulnerable_versions = Vec::new();
        for advisory in advisories.iter().filter(|a| !self.ignored(a)) {
            match ctx.version {
                Some(v) if advisory.affects(v) => findings.push(self.affecting(advisory, Some(v))),
                Some(_) => {}
                None if advisory.affects_all_versions() => {
                    findings.push(self.affecting(advisory, None))
                }
                None if advisory.kind == AdvisoryKind::Malicious => {
                    malicious_versions.push(advisory)
                }
                None if advisory.kind == AdvisoryKind::Vulnerability => {
                    vulnerable_versions.push(advisory)
                }
                None => {}
            }
        }
        if !malicious_versions.is_empty() {
            findings.push(partial(
                Code::HasMaliciousVersions,
                Verdict::Warn,
                Severity::Critical,
                "known malicious",
                &malicious_versions,
            ));
        }
        if !vulnerable_versions.is_empty() {
            findings.push(partial(
                Code::HasVulnerableVersions,
                Verdict::Allow,
                Severity::Info,
                "vulnerable",
                &vulnerable_versions,
            ));
        }
    }
}
