//! Why depfw decided what it did: [`Finding`]s and the registry of their [`Code`]s.
//!
//! Every door of depfw reports the reasons for a verdict as findings: `depfw serve` in 403
//! bodies, PyPI yank reasons and the decision log (`depfw log show`), `depfw audit
//! --format human|json|sarif` and `depfw check`. Each finding carries a stable kebab-case
//! code (`known-malicious`, `release-cooldown`, ...) that CI filters on, so the codes are a
//! public contract. [`Code`] is their one list: the check that emits each, its default
//! verdict, a description for users and its SARIF rule texts. The SARIF rules,
//! `docs/codes.md` and the README's code table derive from it or are checked against it
//! (`cargo test --test policy codes`), and a snapshot of the list fails when a code is
//! renamed or removed.
//!
//! The bottom layer: it imports nothing of depfw's, so every other module may use it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub(crate) mod problems;

/// What depfw does with a package version, from most to least permissive.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Served as is.
    #[default]
    Allow,
    /// Served, with the findings reported.
    Warn,
    /// Held until a human approves it: hidden from metadata, refused at the artifact gate.
    Quarantine,
    /// Refused: hidden from metadata, refused at the artifact gate.
    Deny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Warn => "warn",
            Verdict::Quarantine => "quarantine",
            Verdict::Deny => "deny",
        }
    }

    /// Whether clients may download this version.
    pub fn is_servable(self) -> bool {
        matches!(self, Verdict::Allow | Verdict::Warn)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(Verdict::Allow),
            "warn" => Ok(Verdict::Warn),
            "quarantine" => Ok(Verdict::Quarantine),
            "deny" => Ok(Verdict::Deny),
            other => Err(format!(
                "`{other}` is not a verdict (expected allow, warn, quarantine or deny)"
            )),
        }
    }
}

/// How serious a finding is. `Unknown` is its own level: an advisory without severity data
/// is not thereby "low".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
    Unknown,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
            Severity::Unknown => "unknown",
        }
    }

    /// Rank for threshold comparisons; `None` for `Unknown`, which thresholds treat apart.
    pub fn rank(self) -> Option<u8> {
        match self {
            Severity::Info => Some(0),
            Severity::Low => Some(1),
            Severity::Medium => Some(2),
            Severity::High => Some(3),
            Severity::Critical => Some(4),
            Severity::Unknown => None,
        }
    }

    /// The CVSS qualitative rating of a base score.
    pub(crate) fn from_cvss_score(score: f64) -> Severity {
        match score {
            s if s <= 0.0 => Severity::Info,
            s if s < 4.0 => Severity::Low,
            s if s < 7.0 => Severity::Medium,
            s if s < 9.0 => Severity::High,
            _ => Severity::Critical,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" | "informational" | "none" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" | "moderate" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            "unknown" => Ok(Severity::Unknown),
            other => Err(format!(
                "`{other}` is not a severity (expected info, low, medium, high, critical or unknown)"
            )),
        }
    }
}

/// One reason for a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The check that produced it (`advisories`, `typosquat`, ...): [`Code::check`] for
    /// findings made with [`Finding::new`].
    pub check: String,
    /// Stable kebab-case code (`known-malicious`, `vulnerable`, ...): what CI filters on.
    pub code: Code,
    pub severity: Severity,
    /// What this finding alone asks for.
    pub verdict: Verdict,
    /// One line a person reads in a client's error output.
    pub message: String,
    /// Advisory ids and aliases behind the finding, if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    /// The nearest version that resolves this finding, when one is known (advisories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_in: Option<String>,
}

impl Finding {
    /// A finding of `code`, reported under the check that owns the code.
    pub fn new(code: Code, severity: Severity, verdict: Verdict, message: String) -> Finding {
        Finding {
            check: code.check().to_owned(),
            code,
            severity,
            verdict,
            message,
            ids: Vec::new(),
            fixed_in: None,
        }
    }
}

/// The check names findings are reported under ([`Finding::check`], SARIF rule tags).
pub mod checks {
    pub(crate) const ADVISORIES: &str = "advisories";
    pub(crate) const TYPOSQUAT: &str = "typosquat";
    pub const LICENSE: &str = "license";
    pub(crate) const REPUTATION: &str = "reputation";
    /// Release signals compared with the package's own history (`policy::signals`).
    pub(crate) const SIGNALS: &str = "signals";
    /// Dependency confusion (`policy::internal`).
    pub(crate) const INTERNAL_NAMES: &str = "internal-names";
    /// Allow- and deny-list entries (`depfw overrides`, `[[overrides.allow]]`).
    pub(crate) const OVERRIDES: &str = "overrides";
    /// An agent's policy preset (`depfw agents add NAME --policy strict`).
    pub(crate) const AGENT_POLICY: &str = "agent-policy";
    /// What the proxy decides before any check can run.
    pub(crate) const PROXY: &str = "proxy";
    /// `depfw audit`'s notes on lockfile entries.
    pub(crate) const AUDIT: &str = "audit";
    /// `depfw audit --online`'s notes on registry metadata.
    pub(crate) const ONLINE: &str = "online";
    /// The content rules over the artifact's bytes (`depfw serve`, `[policy.content]`).
    pub(crate) const CONTENT: &str = "content";
}

/// What the registry knows about one code.
struct Spec {
    text: &'static str,
    check: &'static str,
    verdict: Verdict,
    description: &'static str,
    sarif: Option<SarifText>,
    verdict_set_by: &'static str,
}

/// A SARIF rule's short description and help; its full description is
/// [`Code::description`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SarifText {
    pub title: &'static str,
    pub help: &'static str,
}

const fn sarif(title: &'static str, help: &'static str) -> Option<SarifText> {
    Some(SarifText { title, help })
}

/// Declares [`Code`] from one entry per code, so that the enum, [`Code::ALL`] and the
/// registry's data cannot drift apart.
macro_rules! codes {
    ($(
        $variant:ident {
            text: $text:literal,
            check: $check:expr,
            verdict: $verdict:ident,
            description: $description:literal,
            sarif: $sarif:expr,
            verdict_set_by: $set_by:literal $(,)?
        }
    )*) => {
        /// A finding code: one variant per public code, in docs order (grouped by check).
        ///
        /// Serialised as its kebab-case text. A code this build does not define (a record
        /// written by another version of depfw) reads as [`Code::Unknown`] and writes back
        /// verbatim, so an old decision log stays readable and its hash chain verifies.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum Code {
            $(
                #[doc = $description]
                $variant,
            )*
            /// Not a code of this build: read from data another version of depfw wrote.
            /// Never emitted.
            Unknown(UnknownCode),
        }

        impl Code {
            /// Every code this build emits, in docs order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            fn spec(&self) -> Result<&'static Spec, &UnknownCode> {
                match self {
                    $(Code::$variant => {
                        const SPEC: Spec = Spec {
                            text: $text,
                            check: $check,
                            verdict: Verdict::$verdict,
                            description: $description,
                            sarif: $sarif,
                            verdict_set_by: $set_by,
                        };
                        Ok(&SPEC)
                    })*
                    Code::Unknown(unknown) => Err(unknown),
                }
            }
        }
    };
}

use checks::*;

codes! {
    KnownMalicious {
        text: "known-malicious",
        check: ADVISORIES,
        verdict: Deny,
        description: "This package version is listed in a malicious-package feed (OSV MAL-* advisory).",
        sarif: sarif(
            "Known malicious package",
            "Remove the dependency, rotate any credentials the install could have read, and check for persistence.",
        ),
        verdict_set_by: "Not configurable: always `deny`. `policy.advisories.ignore` drops one advisory by id; an allow-list entry accepts the package.",
    }
    Vulnerable {
        text: "vulnerable",
        check: ADVISORIES,
        verdict: Deny,
        description: "This package version is affected by a published vulnerability advisory.",
        sarif: sarif(
            "Vulnerable package version",
            "Upgrade to the fixed version named in the result, or record an override with a reason.",
        ),
        verdict_set_by: "`deny` at or above `policy.advisories.deny-at` (default `high`), `warn` below; `policy.advisories.unknown-severity` (default `deny`) for advisories with no severity data; `policy.advisories.ignore` drops one advisory by id.",
    }
    UnfixedAdvisory {
        text: "unfixed-advisory",
        check: ADVISORIES,
        verdict: Warn,
        description: "A vulnerability advisory with no severity data names no fixed version at or above this one: it covers the latest release too, so there is nothing to upgrade to.",
        sarif: sarif(
            "Unscored advisory without a fix",
            "Read the advisory and decide whether the affected feature is used; record an override with a reason, or replace the package.",
        ),
        verdict_set_by: "`policy.advisories.unfixed` (default `warn`); a scored advisory is `vulnerable` whether fixed or not, and `policy.advisories.ignore` drops one advisory by id.",
    }
    InformationalAdvisory {
        text: "informational-advisory",
        check: ADVISORIES,
        verdict: Warn,
        description: "A RustSec informational advisory (unmaintained, unsound or notice) covers this package version.",
        sarif: None,
        verdict_set_by: "`policy.advisories.informational`; `policy.advisories.ignore` drops one advisory by id.",
    }
    HasMaliciousVersions {
        text: "has-malicious-versions",
        check: ADVISORIES,
        verdict: Warn,
        description: "Asked about a name without a version: some versions of this package are known malicious, so the caller must pick one.",
        sarif: None,
        verdict_set_by: "Not configurable: always `warn` (`depfw check` of a name without a version); evaluate a version for its own verdict.",
    }
    HasVulnerableVersions {
        text: "has-vulnerable-versions",
        check: ADVISORIES,
        verdict: Allow,
        description: "Asked about a name without a version: some versions of this package are vulnerable, so the caller must pick one.",
        sarif: None,
        verdict_set_by: "Not configurable: always `allow`, for the record (`depfw check` of a name without a version); evaluate a version for its own verdict.",
    }
    PossibleTyposquat {
        text: "possible-typosquat",
        check: TYPOSQUAT,
        verdict: Quarantine,
        description: "The package name imitates a popular package's name: any resemblance in a young package; a strong one (a slip of the hand, look-alike characters) in a package of unknown age, since the policy fails closed where it cannot tell young from established; a moderate one (every separator dropped or added on npm, `<name>.js`, `python3-<name>`, a last vowel swapped) of unknown age gets policy.typosquat.unknown-age (warn).",
        sarif: sarif(
            "Possible typosquat",
            "Check that this is the package you meant to depend on.",
        ),
        verdict_set_by: "`policy.typosquat.verdict`, and `policy.typosquat.unknown-age` for a moderate resemblance of unknown age; `policy.typosquat.established-days` decides when a package is established, `policy.typosquat.enabled = false` turns the check off, `policy.typosquat.extra-popular` protects more names.",
    }
    LookAlikeName {
        text: "look-alike-name",
        check: TYPOSQUAT,
        verdict: Warn,
        description: "The package name is a strong or moderate look-alike of a popular package's name, but the package is established: its first release is older than policy.typosquat.established-days.",
        sarif: sarif(
            "Name resembles a popular package",
            "Check that this is the package you meant to depend on.",
        ),
        verdict_set_by: "`policy.typosquat.look-alike`; `policy.typosquat.established-days` decides when a package is established.",
    }
    LicenseDenied {
        text: "license-denied",
        check: LICENSE,
        verdict: Deny,
        description: "The declared license can only be satisfied by licenses the policy denies.",
        sarif: sarif(
            "Denied license",
            "Replace the dependency or obtain a different license; see policy.license.deny.",
        ),
        verdict_set_by: "`policy.license.denied`; which licenses: `policy.license.deny`.",
    }
    LicenseNotAllowed {
        text: "license-not-allowed",
        check: LICENSE,
        verdict: Quarantine,
        description: "The declared license cannot be satisfied by the licenses in policy.license.allow.",
        sarif: sarif(
            "License not allowed",
            "Replace the dependency or extend policy.license.allow after legal review.",
        ),
        verdict_set_by: "`policy.license.not-allowed`; reported only when `policy.license.allow` is not empty.",
    }
    LicenseUnlicensed {
        text: "license-unlicensed",
        check: LICENSE,
        verdict: Quarantine,
        description: "The package declares npm's UNLICENSED: no rights are granted to use it.",
        sarif: sarif(
            "Proprietary package (UNLICENSED)",
            "Remove the dependency unless you hold a separate license for it.",
        ),
        verdict_set_by: "`policy.license.not-allowed`.",
    }
    LicenseMissing {
        text: "license-missing",
        check: LICENSE,
        verdict: Warn,
        description: "The registry metadata declares no license for this version.",
        sarif: sarif(
            "No license declared",
            "Check the package's repository for a license before depending on it.",
        ),
        verdict_set_by: "`policy.license.missing`.",
    }
    LicenseUnparsable {
        text: "license-unparsable",
        check: LICENSE,
        verdict: Warn,
        description: "The declared license is not a valid SPDX expression.",
        sarif: sarif(
            "Unparsable license",
            "Read the package's license text and record an override if it is acceptable.",
        ),
        verdict_set_by: "`policy.license.unparsable`.",
    }
    ReleaseCooldown {
        text: "release-cooldown",
        check: REPUTATION,
        verdict: Quarantine,
        description: "This version was published within the configured cooldown; most malicious releases are caught within hours.",
        sarif: sarif(
            "Release too recent",
            "Wait until the cooldown clears, or pin the previous version.",
        ),
        verdict_set_by: "`policy.reputation.cooldown`; the window is `policy.reputation.cooldown-hours` (default 48, 0 turns it off).",
    }
    PublishTimeUnknown {
        text: "publish-time-unknown",
        check: REPUTATION,
        verdict: Quarantine,
        description: "The registry metadata gives no publish time for this version (npm without `time`, a PyPI HTML page, a cargo index line without `pubtime`), so the release cooldown cannot be checked; depfw does not assume the version is old.",
        sarif: sarif(
            "Publish time unknown",
            "Review the version and approve it, or use a registry whose metadata carries publish times.",
        ),
        verdict_set_by: "`policy.reputation.publish-time-unknown`; reported only while the cooldown is on (`policy.reputation.cooldown-hours` above 0).",
    }
    NewPackage {
        text: "new-package",
        check: REPUTATION,
        verdict: Quarantine,
        description: "The package's first release is recent; new names are a common vehicle for typosquatting and slopsquatting.",
        sarif: sarif(
            "Package too new",
            "Check that the package is the one you intended and is maintained by who you expect.",
        ),
        verdict_set_by: "`policy.reputation.new-package`; the window is `policy.reputation.new-package-days` (default 14, 0 turns it off).",
    }
    InstallScripts {
        text: "install-scripts",
        check: REPUTATION,
        verdict: Warn,
        description: "Installing this version runs scripts (preinstall/install/postinstall).",
        sarif: sarif(
            "Runs install scripts",
            "Review the scripts, or install with scripts disabled.",
        ),
        verdict_set_by: "`policy.reputation.install-scripts`.",
    }
    Deprecated {
        text: "deprecated",
        check: REPUTATION,
        verdict: Warn,
        description: "The author deprecated this version.",
        sarif: sarif(
            "Deprecated version",
            "Follow the deprecation message, usually by upgrading or switching packages.",
        ),
        verdict_set_by: "`policy.reputation.deprecated`.",
    }
    Yanked {
        text: "yanked",
        check: REPUTATION,
        verdict: Deny,
        description: "The version was yanked from its registry.",
        sarif: sarif(
            "Yanked version",
            "Move to a version that has not been yanked.",
        ),
        verdict_set_by: "`policy.reputation.yanked`.",
    }
    // Release signals (`policy::signals`) and dependency confusion (`policy::internal`).
    InstallScriptAdded {
        text: "install-script-added",
        check: SIGNALS,
        verdict: Quarantine,
        description: "This version runs an install script (preinstall/install/postinstall) that none of the package's earlier releases ran: how the nx, Shai-Hulud and Bitwarden CLI compromises executed.",
        sarif: sarif(
            "Install script added",
            "Read the new script before approving the version; keep the previous version meanwhile.",
        ),
        verdict_set_by: "`policy.signals.install-script-added` (a patch or minor release) and `policy.signals.install-script-added-major` (a new major version, default warn); the baseline is `policy.signals.baseline-releases` releases published at least `policy.signals.baseline-gap-hours` earlier.",
    }
    NewPublisher {
        text: "new-publisher",
        check: SIGNALS,
        verdict: Warn,
        description: "This version was published by an account that had never published the package before and was not one of its maintainers (npm `_npmUser`).",
        sarif: sarif(
            "Published by a new account",
            "Check with the project that the new publisher is one of theirs.",
        ),
        verdict_set_by: "`policy.signals.new-publisher`.",
    }
    MaintainersReplaced {
        text: "maintainers-replaced",
        check: SIGNALS,
        verdict: Quarantine,
        description: "None of the maintainers of the package's previous release maintain this version (npm `maintainers`): an account takeover, not a maintainer added alongside the others.",
        sarif: sarif(
            "Maintainers replaced",
            "Confirm the handover with the project before approving the version.",
        ),
        verdict_set_by: "`policy.signals.maintainers-replaced`.",
    }
    ProvenanceLost {
        text: "provenance-lost",
        check: SIGNALS,
        verdict: Quarantine,
        description: "The package's previous release carried a provenance attestation (npm `dist.attestations`, PyPI PEP 740) and this one has none: it was not built and published by the package's usual pipeline, the mark of a stolen token.",
        sarif: sarif(
            "Provenance attestation lost",
            "Keep the previous version until the project confirms this release.",
        ),
        verdict_set_by: "`policy.signals.provenance-lost`.",
    }
    ReleaseBurst {
        text: "release-burst",
        check: SIGNALS,
        verdict: Warn,
        description: "Many versions of the package, or many packages of this version's publisher (`depfw serve`, from the metadata it fetched lately), were published within minutes of this one, as a worm or a poisoned pipeline republishes.",
        sarif: sarif(
            "Release burst",
            "Wait until the burst is explained; pin the version from before it.",
        ),
        verdict_set_by: "`policy.signals.release-burst`; a burst is `policy.signals.burst-versions` versions (default 5, 0 turns it off), or `policy.signals.burst-packages` packages of one publisher (default 5, 0 turns it off), within `policy.signals.burst-window-minutes` (default 60).",
    }
    YoungDependencyAdded {
        text: "young-dependency-added",
        check: SIGNALS,
        verdict: Quarantine,
        description: "A patch or minor release adds a dependency that none of the package's earlier releases had, and whose own first release came shortly before it (axios → `plain-crypto-js`): a package made to be pulled in by a hijacked release.",
        sarif: sarif(
            "Young dependency added",
            "Keep the previous version until the new dependency is explained by the project.",
        ),
        verdict_set_by: "`policy.signals.young-dependency-added` (a patch or minor release) and `policy.signals.young-dependency-added-major` (a new major version, default warn); young is `policy.signals.young-dependency-hours` (default 48); only releases of the last `policy.signals.dependency-recent-days` (30) are checked.",
    }
    DependencyUnchecked {
        text: "dependency-unchecked",
        check: SIGNALS,
        verdict: Quarantine,
        description: "A recent patch or minor release adds a dependency whose first release depfw could not look up (the registry failed or gave no time, or a lookup bound was reached): it cannot be told from a young one, so the release is held (fail closed).",
        sarif: sarif(
            "Added dependency not checked",
            "Retry later, or check the new dependency's age by hand before approving.",
        ),
        verdict_set_by: "`policy.signals.dependency-unchecked`; the bounds are `policy.signals.dependencies-per-version` (4) and `policy.signals.dependency-lookups` (16 per document).",
    }
    InternalName {
        text: "internal-name",
        check: INTERNAL_NAMES,
        verdict: Deny,
        description: "The name matches one of your organisation's internal names (`policy.internal-names`): such packages must come from your private registry, and one on the public registry is a dependency-confusion attack.",
        sarif: sarif(
            "Internal name from a public registry",
            "Install internal packages from the private registry (npm scope registry, pip index, cargo registry), never through the public upstream.",
        ),
        verdict_set_by: "`policy.internal-names.verdict`; the names are `policy.internal-names.patterns` (every ecosystem) and `.npm`, `.pypi`, `.cargo`.",
    }
    AllowListed {
        text: "allow-listed",
        check: OVERRIDES,
        verdict: Allow,
        description: "An allow-list entry accepts this package version, whatever the checks found.",
        sarif: None,
        verdict_set_by: "The entry decides, always `allow` (`depfw overrides allow`, `[[overrides.allow]]`, or approving a quarantined version). A deny-list entry for the same version wins.",
    }
    DenyListed {
        text: "deny-listed",
        check: OVERRIDES,
        verdict: Deny,
        description: "A deny-list entry refuses this package version, whatever the checks found.",
        sarif: None,
        verdict_set_by: "The entry decides, always `deny` (`depfw overrides deny`, `[[overrides.deny]]`, or rejecting a quarantined version); remove the entry to lift it.",
    }
    StrictPreset {
        text: "strict-preset",
        check: AGENT_POLICY,
        verdict: Deny,
        description: "The requesting agent's policy is strict, which refuses or holds versions that would only be warned about.",
        sarif: None,
        verdict_set_by: "`agents.strict-warn` (`deny` or `quarantine`); the agent's preset (`depfw agents add NAME --policy default|strict`) decides whether it applies.",
    }
    WouldRefuse {
        text: "would-refuse",
        check: PROXY,
        verdict: Deny,
        description: "Monitor mode: the policy refuses (or holds) this version, but depfw served it and recorded what enforce mode would have done; the finding's verdict is that refusal, the decision itself only warns.",
        sarif: None,
        verdict_set_by: "`policy.mode = \"monitor\"`, or the agent named in `policy.monitor-agents` (`policy.enforce-agents` keeps an agent enforced under monitor mode). Never for a deny-list entry, an internal name or an unparsable version: those are refused in both modes.",
    }
    UnparsableVersion {
        text: "unparsable-version",
        check: PROXY,
        verdict: Deny,
        description: "The registry lists a version depfw cannot parse: no check can evaluate it, so it is hidden from metadata and refused at the artifact gate (fail closed).",
        sarif: None,
        verdict_set_by: "Not configurable: always `deny`.",
    }
    WeakIntegrity {
        text: "weak-integrity",
        check: PROXY,
        verdict: Warn,
        description: "The registry publishes only a SHA-1 checksum for this artifact (npm `dist.shasum`, no sha512 `dist.integrity`): depfw verifies the bytes against it, but SHA-1 collisions can be made, so the check is weaker than for other artifacts.",
        sarif: None,
        verdict_set_by: "Not configurable: always `warn`, recorded in the decision log with the served download; an allow-list entry does not remove it.",
    }
    NonRegistrySource {
        text: "non-registry-source",
        check: AUDIT,
        verdict: Warn,
        description: "The lockfile installs this package from a git repository or URL, not a registry, so advisories match by name only.",
        sarif: None,
        verdict_set_by: "Not configurable: always `warn`; `depfw audit --fail-on` decides whether warnings fail the run.",
    }
    InvalidName {
        text: "invalid-name",
        check: AUDIT,
        verdict: Warn,
        description: "The lockfile names a package that is not a valid name in its ecosystem, so no check can evaluate it.",
        sarif: None,
        verdict_set_by: "Not configurable: always `warn`; `depfw audit --fail-on` decides whether warnings fail the run.",
    }
    InvalidVersion {
        text: "invalid-version",
        check: AUDIT,
        verdict: Warn,
        description: "The lockfile pins a registry version that is not valid in its ecosystem, so only name-level checks ran.",
        sarif: None,
        verdict_set_by: "Not configurable: always `warn`; `depfw audit --fail-on` decides whether warnings fail the run.",
    }
    Unpinned {
        text: "unpinned",
        check: AUDIT,
        verdict: Warn,
        description: "The lockfile pins no exact version for this package, so any version may be installed.",
        sarif: None,
        verdict_set_by: "Not configurable: always `warn`; `depfw audit --fail-on` decides whether warnings fail the run.",
    }
    BypassesMirror {
        text: "bypasses-mirror",
        check: AUDIT,
        verdict: Warn,
        description: "The lockfile fetches this package from a source other than the depfw mirror (the public registry, another registry, a URL or git), so an install from it (`uv sync --frozen`, yarn classic, npm with `replace-registry-host=never`) goes around depfw. Only checked when the mirror is configured.",
        sarif: None,
        verdict_set_by: "`audit.bypasses-mirror` (default `warn`); the mirror is `audit.mirror-urls` or `depfw audit --mirror URL`.",
    }
    MissingFromRegistry {
        text: "missing-from-registry",
        check: ONLINE,
        verdict: Warn,
        description: "The registry's metadata does not list the locked (or asked-for) version: it was unpublished, or a depfw upstream refused it.",
        sarif: None,
        verdict_set_by: "Not configurable: always `warn` (`depfw audit --online`, `depfw check --online`).",
    }
    RegistryMetadataUnavailable {
        text: "registry-metadata-unavailable",
        check: ONLINE,
        verdict: Allow,
        description: "The package's registry metadata could not be fetched, so only the offline checks ran. `depfw check --online` also exits 2: it was asked to judge with that metadata.",
        sarif: None,
        verdict_set_by: "Not configurable: always `allow`, for the record (`depfw audit --online`, `depfw check --online`).",
    }
    PthExecutesCode {
        text: "pth-executes-code",
        check: CONTENT,
        verdict: Quarantine,
        description: "A wheel ships a .pth file whose import line (run by site.py at every Python start) spawns a process, opens the network or decodes hidden code (the LiteLLM 1.82.7/1.82.8 payload).",
        sarif: sarif(
            "Code-executing .pth file",
            "Do not install this release; read the named .pth file, and if it was installed, rotate the credentials of that environment.",
        ),
        verdict_set_by: "`policy.content.pth-executes-code`; `policy.content.enabled = false` turns the content rules off.",
    }
    ScriptDownloadExec {
        text: "script-download-exec",
        check: CONTENT,
        verdict: Quarantine,
        description: "An install script (npm pre/install/postinstall and the files they run, setup.py, build.rs) downloads code and runs it (curl | sh, a download then chmod +x and run, exec(urlopen(...))).",
        sarif: sarif(
            "Install script downloads and runs code",
            "Read the named file; approve the version only if the download is the package's own, from a source you trust.",
        ),
        verdict_set_by: "`policy.content.script-download-exec`.",
    }
    ScriptDecodeEval {
        text: "script-decode-eval",
        check: CONTENT,
        verdict: Quarantine,
        description: "An install script decodes hidden code and runs it (eval(atob(...)), eval(Buffer.from(..., 'base64')), exec(base64.b64decode(...))).",
        sarif: sarif(
            "Install script runs encoded code",
            "Decode the payload in the named file before approving; legitimate install scripts do not hide their code.",
        ),
        verdict_set_by: "`policy.content.script-decode-eval`.",
    }
    ScriptCredentialAccess {
        text: "script-credential-access",
        check: CONTENT,
        verdict: Quarantine,
        description: "An install script reads credentials (~/.npmrc, ~/.ssh/, cloud credential files, the cloud metadata endpoint, two or more token variables, the whole environment sent out) or names an exfiltration endpoint.",
        sarif: sarif(
            "Install script touches credentials",
            "Do not install this release; if it was installed, rotate the npm, GitHub and cloud credentials of that machine.",
        ),
        verdict_set_by: "`policy.content.script-credential-access`.",
    }
    AgentConfigWrite {
        text: "agent-config-write",
        check: CONTENT,
        verdict: Quarantine,
        description: "The artifact ships coding-agent configuration (.claude/, .cursor/, .gemini/, .codex/, .windsurf/, .mcp.json; .vscode/ where a wheel installs it outside the package) or an install script touches it.",
        sarif: sarif(
            "Writes coding-agent configuration",
            "Check what the named file would make an agent do (allowed commands, MCP servers) before approving.",
        ),
        verdict_set_by: "`policy.content.agent-config-write`.",
    }
    NewNativeBinary {
        text: "new-native-binary",
        check: CONTENT,
        verdict: Quarantine,
        description: "The release ships native binaries (ELF, Mach-O, PE) where the earlier releases of the same package and kind of artifact that depfw scanned had none.",
        sarif: sarif(
            "New native binary",
            "Find out why the package started shipping a binary before approving the version.",
        ),
        verdict_set_by: "`policy.content.new-native-binary`; judged only against releases depfw itself scanned (see `native-binary-unjudged`).",
    }
    NativeBinaryUnjudged {
        text: "native-binary-unjudged",
        check: CONTENT,
        verdict: Allow,
        description: "The release ships native binaries, and depfw scanned no earlier release of the package (same kind of artifact), so it cannot tell whether they are new.",
        sarif: None,
        verdict_set_by: "Not configurable: always `allow`, for the record in the decision log.",
    }
    ArchiveUnscannable {
        text: "archive-unscannable",
        check: CONTENT,
        verdict: Quarantine,
        description: "The artifact could not be scanned: it is malformed, or exceeds policy.content's decompressed-size, entry-count or header limits.",
        sarif: sarif(
            "Artifact could not be scanned",
            "Inspect the archive by hand, or raise the limit named in the finding if the package is legitimately that large.",
        ),
        verdict_set_by: "`policy.content.archive-unscannable`; the limits are `policy.content.max-unpacked-bytes`, `max-entries` and `max-file-bytes`.",
    }
}

impl Code {
    /// The kebab-case text: what JSON, SARIF, the human report and 403 bodies show.
    pub fn as_str(&self) -> &str {
        match self.spec() {
            Ok(spec) => spec.text,
            Err(unknown) => &unknown.0,
        }
    }

    /// The check that emits this code (`advisories`, `license`, ...); `unknown` for a code
    /// this build does not define.
    pub fn check(&self) -> &'static str {
        self.spec().map_or("unknown", |s| s.check)
    }

    /// One sentence for users: what the finding means.
    pub fn description(&self) -> &'static str {
        self.spec()
            .map_or("A code this version of depfw does not define.", |s| {
                s.description
            })
    }

    /// The verdict this code's findings get under the default configuration (for
    /// `vulnerable`, that of a high, critical or unscored advisory). A code this build does
    /// not define has none it could enforce: `allow`.
    pub fn default_verdict(&self) -> Verdict {
        self.spec().map_or(Verdict::Allow, |s| s.verdict)
    }

    /// How a user changes the verdict of this code's findings (Markdown, for the docs).
    pub fn verdict_set_by(&self) -> &'static str {
        self.spec().map_or("", |s| s.verdict_set_by)
    }

    /// Whether the code states a fact about other versions of the package than the one
    /// evaluated (a name-only lookup's `has-malicious-versions`): such a finding informs,
    /// and nothing may turn it into a refusal of a clean version (the `strict` preset
    /// escalates only the other warnings).
    pub(crate) fn is_about_other_versions(&self) -> bool {
        matches!(
            self,
            Code::HasMaliciousVersions | Code::HasVulnerableVersions
        )
    }

    /// The SARIF rule's title and help, for the codes that have them.
    pub fn sarif(&self) -> Option<SarifText> {
        self.spec().ok().and_then(|s| s.sarif)
    }
}

/// The text of a code this build does not define, kept verbatim (see [`Code::Unknown`]).
/// Only deserialisation makes one: checks emit the codes of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnknownCode(Box<str>);

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Code {
    type Err = String;
    /// Only the codes of this build: `Unknown` is for data read back, not for user input.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Code::ALL
            .iter()
            .find(|c| c.as_str() == s)
            .cloned()
            .ok_or_else(|| format!("`{s}` is not a finding code (see docs/codes.md)"))
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(text
            .parse()
            .unwrap_or_else(|_| Code::Unknown(UnknownCode(text.into()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_text_and_serde() {
        for code in Code::ALL {
            assert_eq!(code.as_str().parse::<Code>().as_ref(), Ok(code));
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{code}\""));
            assert_eq!(&serde_json::from_str::<Code>(&json).unwrap(), code);
        }
    }

    #[test]
    fn codes_are_unique_kebab_case_and_documented() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "`{text}` is listed twice");
            assert!(
                !text.is_empty()
                    && !text.starts_with('-')
                    && !text.ends_with('-')
                    && !text.contains("--")
                    && text.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "`{text}` is not kebab-case"
            );
            assert!(code.description().ends_with('.'), "{text}: one sentence");
            assert!(
                !code.verdict_set_by().is_empty(),
                "{text}: how to change it"
            );
            assert_ne!(code.check(), "unknown", "{text}");
        }
    }

    #[test]
    fn an_unknown_code_is_kept_verbatim_and_never_parsed_from_input() {
        let code: Code = serde_json::from_str("\"test-deny\"").unwrap();
        assert!(matches!(code, Code::Unknown(_)));
        assert_eq!(code.as_str(), "test-deny");
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"test-deny\"");
        assert!("test-deny".parse::<Code>().is_err());
        assert!(!Code::ALL.contains(&code));
    }

    #[test]
    fn a_finding_is_reported_under_its_codes_check() {
        let f = Finding::new(
            Code::ReleaseCooldown,
            Severity::Low,
            Verdict::Quarantine,
            "too new".to_owned(),
        );
        assert_eq!(f.check, "reputation");
        assert_eq!(
            serde_json::to_value(&f).unwrap()["code"],
            serde_json::json!("release-cooldown")
        );
    }
}
