//! Allow-list and deny-list entries: the human decisions that win over every check.
//!
//! Entries come from `[[overrides.allow]]` / `[[overrides.deny]]` in the config file and,
//! once the admin endpoint exists, from the store (quarantine approvals and rejections).
//! An entry names a package and either every version, one exact version or a range; it has a
//! reason and may expire. Expired entries stop applying but are kept, so history stays visible.
//!
//! An entry may be for one agent only (`depfw overrides allow npm foo 1.2.3 --agent ci-bot
//! --expires 2h`): the urgent fix that lets one version through a cooldown or a quarantine
//! for the agent that needs it, for a while, without opening it to every agent. The proxy
//! applies such entries to that agent's requests ([`Overrides::apply_for`]); `depfw audit`
//! and `depfw check` speak for no agent and never apply them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Decision, Finding, PackageCtx, Severity, Verdict};
use crate::diag::{checks, Code};
use crate::package::{Ecosystem, PackageName, Version};

/// Which versions an entry covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionScope {
    /// Every version (and name-only evaluations).
    Any,
    /// One version.
    Exact(Version),
    /// A range: semver requirements for npm and crates.io (`>=1.2, <2` or npm-style
    /// `>=1.2.0 <2.0.0`, alternatives joined by `||`), PEP 440 specifiers for PyPI.
    Range(VersionRange),
}

/// A parsed range, kept with its source text for display.
#[derive(Debug, Clone)]
pub struct VersionRange {
    text: String,
    alternatives: Vec<RangeAlternative>,
}

impl PartialEq for VersionRange {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for VersionRange {}

#[derive(Debug, Clone)]
enum RangeAlternative {
    Semver(semver::VersionReq),
    Pep440(pep440_rs::VersionSpecifiers),
}

impl VersionRange {
    pub fn parse(ecosystem: Ecosystem, text: &str) -> Result<Self, String> {
        let mut alternatives = Vec::new();
        for part in text.split("||") {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!("empty alternative in range `{text}`"));
            }
            let alternative = match ecosystem {
                Ecosystem::Npm | Ecosystem::CratesIo => {
                    RangeAlternative::Semver(parse_semver_req(part)?)
                }
                Ecosystem::PyPI => RangeAlternative::Pep440(
                    pep440_rs::VersionSpecifiers::from_str(part)
                        .map_err(|e| format!("invalid PEP 440 range `{part}`: {e}"))?,
                ),
            };
            alternatives.push(alternative);
        }
        Ok(VersionRange {
            text: text.to_owned(),
            alternatives,
        })
    }

    pub fn contains(&self, version: &Version) -> bool {
        self.alternatives.iter().any(|alt| match (alt, version) {
            (RangeAlternative::Semver(req), Version::Semver(v)) => req.matches(v),
            (RangeAlternative::Pep440(spec), Version::Pep440(v)) => spec.contains(v),
            _ => false,
        })
    }
}

/// Accepts Cargo-style (`>=1.2, <2`) and npm-style (`>=1.2.0 <2.0.0`) comparator lists.
fn parse_semver_req(text: &str) -> Result<semver::VersionReq, String> {
    semver::VersionReq::parse(text).or_else(|first| {
        let comma_separated = text.split_whitespace().collect::<Vec<_>>().join(", ");
        semver::VersionReq::parse(&comma_separated)
            .map_err(|_| format!("invalid semver range `{text}`: {first}"))
    })
}

impl fmt::Display for VersionScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionScope::Any => f.write_str("*"),
            VersionScope::Exact(v) => write!(f, "={v}"),
            VersionScope::Range(r) => f.write_str(&r.text),
        }
    }
}

impl VersionScope {
    /// Parses `*`, an exact version, or a range. An empty text is refused: it reads as "no
    /// version" but would mean every version, and an allow entry for every version of a
    /// package must say so with `*`.
    pub fn parse(ecosystem: Ecosystem, text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err(
                "`versions` is empty: name a version or a range, or write `*` for \
                        every version"
                    .to_owned(),
            );
        }
        if text == "*" {
            return Ok(VersionScope::Any);
        }
        let exact = text.strip_prefix("==").or_else(|| text.strip_prefix('='));
        if let Some(exact) = exact {
            if !exact.contains([',', ' ', '|', '<', '>', '*']) {
                return Version::parse(ecosystem, exact.trim())
                    .map(VersionScope::Exact)
                    .map_err(|e| e.to_string());
            }
        }
        if let Ok(version) = Version::parse(ecosystem, text) {
            return Ok(VersionScope::Exact(version));
        }
        VersionRange::parse(ecosystem, text).map(VersionScope::Range)
    }

    /// Whether the scope covers `version`. Only `Any` covers a name-only evaluation.
    pub fn covers(&self, version: Option<&Version>) -> bool {
        match (self, version) {
            (VersionScope::Any, _) => true,
            (_, None) => false,
            (VersionScope::Exact(v), Some(version)) => v == version,
            (VersionScope::Range(r), Some(version)) => r.contains(version),
        }
    }
}

/// Whether an entry lets a package through or keeps it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverrideKind {
    Allow,
    Deny,
}

/// One allow-list or deny-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideEntry {
    pub kind: OverrideKind,
    pub name: PackageName,
    pub versions: VersionScope,
    pub reason: String,
    pub expires: Option<DateTime<Utc>>,
    /// Who made the decision (`config`, an admin, an approval).
    pub created_by: String,
    /// The one agent the entry applies to; `None`: every request.
    pub agent: Option<String>,
}

impl OverrideEntry {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_none_or(|expires| now < expires)
    }

    /// Whether the entry applies to a request by `agent` (`None`: anonymous, or no
    /// request at all: `depfw audit`).
    pub fn applies_to(&self, agent: Option<&str>) -> bool {
        self.agent.is_none() || self.agent.as_deref() == agent
    }

    pub fn matches(&self, ctx: &PackageCtx<'_>) -> bool {
        self.name.ecosystem() == ctx.name.ecosystem()
            && self.name.key() == ctx.name.key()
            && self.versions.covers(ctx.version)
            && self.is_active(ctx.now)
    }
}

/// The full set of entries. Deny entries win over allow entries: a human who listed a
/// version as bad should never be overruled by a broader allow.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    entries: Vec<OverrideEntry>,
}

/// The check name reported on override findings.
pub(crate) const CHECK_NAME: &str = checks::OVERRIDES;

impl Overrides {
    pub fn new(entries: Vec<OverrideEntry>) -> Self {
        Overrides { entries }
    }

    pub fn entries(&self) -> &[OverrideEntry] {
        &self.entries
    }

    /// Whether some entry is for `agent` alone: then its verdicts differ from other
    /// agents' (cache keys must tell them apart).
    pub fn has_entries_for(&self, agent: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.agent.as_deref() == Some(agent))
    }

    /// The entry that decides `ctx` for a request by `agent`, if any.
    pub(crate) fn decisive(
        &self,
        ctx: &PackageCtx<'_>,
        agent: Option<&str>,
    ) -> Option<&OverrideEntry> {
        let mut matching = self
            .entries
            .iter()
            .filter(|e| e.applies_to(agent) && e.matches(ctx));
        let first = matching.next()?;
        if first.kind == OverrideKind::Deny {
            return Some(first);
        }
        Some(
            matching
                .find(|e| e.kind == OverrideKind::Deny)
                .unwrap_or(first),
        )
    }

    /// Sets the verdict from the decisive entry and records it as a finding; the checks'
    /// findings stay, so a report shows what the override overruled. Entries for one
    /// agent do not apply ([`Overrides::apply_for`]).
    pub fn apply(&self, ctx: &PackageCtx<'_>, decision: &mut Decision) {
        self.apply_for(ctx, None, decision);
    }

    /// [`Overrides::apply`] for a request by `agent`: its own entries apply too.
    pub fn apply_for(&self, ctx: &PackageCtx<'_>, agent: Option<&str>, decision: &mut Decision) {
        let Some(entry) = self.decisive(ctx, agent) else {
            return;
        };
        let only = entry
            .agent
            .as_deref()
            .map(|a| format!(" for agent `{a}`"))
            .unwrap_or_default();
        let expiry = entry
            .expires
            .map(|e| format!(", until {}", e.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default();
        let (code, verdict, verb) = match entry.kind {
            OverrideKind::Allow => (Code::AllowListed, Verdict::Allow, "allowed"),
            OverrideKind::Deny => (Code::DenyListed, Verdict::Deny, "denied"),
        };
        decision.findings.push(Finding::new(
            code,
            Severity::Info,
            verdict,
            format!(
                "{verb}{only} by {} ({}{expiry}): {}",
                entry.created_by, entry.versions, entry.reason
            ),
        ));
        decision.verdict = verdict;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry(kind: OverrideKind, eco: Ecosystem, name: &str, versions: &str) -> OverrideEntry {
        OverrideEntry {
            kind,
            name: PackageName::parse(eco, name).unwrap(),
            versions: VersionScope::parse(eco, versions).unwrap(),
            reason: "test".into(),
            expires: None,
            created_by: "config".into(),
            agent: None,
        }
    }

    fn decide(overrides: &Overrides, eco: Ecosystem, name: &str, version: &str) -> Verdict {
        let name = PackageName::parse(eco, name).unwrap();
        let version = Version::parse(eco, version).unwrap();
        let ctx = PackageCtx {
            name: &name,
            version: Some(&version),
            metadata: None,
            now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        };
        let mut decision = Decision {
            verdict: Verdict::Quarantine,
            findings: vec![],
        };
        overrides.apply(&ctx, &mut decision);
        decision.verdict
    }

    #[test]
    fn scopes_parse_exact_and_ranges() {
        let npm = Ecosystem::Npm;
        assert!(matches!(
            VersionScope::parse(npm, "1.2.3").unwrap(),
            VersionScope::Exact(_)
        ));
        assert!(matches!(
            VersionScope::parse(npm, ">=1.2.0 <2.0.0").unwrap(),
            VersionScope::Range(_)
        ));
        assert!(VersionScope::parse(npm, ">=banana").is_err());
        assert!(VersionScope::parse(Ecosystem::PyPI, ">=4.2,<4.3").is_ok());
    }

    #[test]
    fn allow_entries_cover_their_range_only() {
        let o = Overrides::new(vec![entry(
            OverrideKind::Allow,
            Ecosystem::Npm,
            "left-pad",
            ">=1.0.0 <2.0.0 || 3.0.0",
        )]);
        assert_eq!(
            decide(&o, Ecosystem::Npm, "left-pad", "1.3.0"),
            Verdict::Allow
        );
        assert_eq!(
            decide(&o, Ecosystem::Npm, "left-pad", "3.0.0"),
            Verdict::Allow
        );
        assert_eq!(
            decide(&o, Ecosystem::Npm, "left-pad", "2.0.0"),
            Verdict::Quarantine
        );
    }

    #[test]
    fn deny_wins_over_allow_and_names_normalise() {
        let o = Overrides::new(vec![
            entry(OverrideKind::Allow, Ecosystem::PyPI, "Django", "*"),
            entry(OverrideKind::Deny, Ecosystem::PyPI, "django", "==4.2.1"),
        ]);
        assert_eq!(
            decide(&o, Ecosystem::PyPI, "DJANGO", "4.2.1"),
            Verdict::Deny
        );
        assert_eq!(
            decide(&o, Ecosystem::PyPI, "django", "4.2.2"),
            Verdict::Allow
        );
    }

    /// Issue #16's urgent fix: one version through a cooldown for one agent, until the
    /// entry expires (the clock is the evaluation's, injected).
    #[test]
    fn an_agents_entry_applies_to_that_agent_until_it_expires() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut e = entry(OverrideKind::Allow, Ecosystem::Npm, "left-pad", "1.3.0");
        e.agent = Some("ci-bot".into());
        e.expires = Some(now + chrono::Duration::hours(2));
        let o = Overrides::new(vec![e]);
        assert!(o.has_entries_for("ci-bot") && !o.has_entries_for("other"));
        let name = PackageName::parse(Ecosystem::Npm, "left-pad").unwrap();
        let version = Version::parse(Ecosystem::Npm, "1.3.0").unwrap();
        let verdict = |agent: Option<&str>, at| {
            let ctx = PackageCtx {
                name: &name,
                version: Some(&version),
                metadata: None,
                now: at,
            };
            let mut d = Decision {
                verdict: Verdict::Quarantine,
                findings: vec![],
            };
            o.apply_for(&ctx, agent, &mut d);
            (d.verdict, d.findings.first().map(|f| f.message.clone()))
        };
        let (allowed, message) = verdict(Some("ci-bot"), now);
        assert_eq!(allowed, Verdict::Allow);
        assert!(message.unwrap().contains("for agent `ci-bot`"));
        assert_eq!(verdict(Some("other"), now).0, Verdict::Quarantine);
        assert_eq!(verdict(None, now).0, Verdict::Quarantine);
        let later = now + chrono::Duration::hours(2);
        assert_eq!(
            verdict(Some("ci-bot"), later).0,
            Verdict::Quarantine,
            "expired"
        );
    }

    #[test]
    fn expired_entries_stop_applying() {
        let mut e = entry(OverrideKind::Allow, Ecosystem::CratesIo, "serde", "*");
        e.expires = Some(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap());
        let o = Overrides::new(vec![e]);
        assert_eq!(
            decide(&o, Ecosystem::CratesIo, "serde", "1.0.0"),
            Verdict::Quarantine
        );
    }
}
