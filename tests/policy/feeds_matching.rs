//! OSV matching edge cases, severity and the advisories check, on hand-made fixtures in
//! tests/fixtures/osv/.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use depfw::config::AdvisoriesConfig;
use depfw::diag::Code;
use depfw::feeds::{load_path, AdvisoryIndex, AdvisoryKind};
use depfw::package::{Ecosystem, PackageName, Version};
use depfw::policy::advisories::AdvisoriesCheck;
use depfw::policy::{Check, Finding, PackageCtx, Severity, Verdict};

fn index() -> Arc<AdvisoryIndex> {
    let feed = load_path(Path::new("tests/fixtures/osv")).unwrap();
    Arc::new(AdvisoryIndex::new(feed.advisories, "test".into()))
}

fn config() -> AdvisoriesConfig {
    AdvisoriesConfig {
        deny_at: Severity::High,
        unknown_severity: Verdict::Deny,
        unfixed: Verdict::Warn,
        informational: Verdict::Warn,
        ignore: vec![],
    }
}

/// The ids of the advisories affecting `name@version`.
fn ids(index: &AdvisoryIndex, eco: Ecosystem, name: &str, version: &str) -> Vec<String> {
    let name = PackageName::parse(eco, name).unwrap();
    let version = Version::parse(eco, version).unwrap();
    index
        .matching(&name, Some(&version))
        .iter()
        .map(|a| a.id.clone())
        .collect()
}

fn affected(index: &AdvisoryIndex, eco: Ecosystem, name: &str, version: &str) -> bool {
    !ids(index, eco, name, version).is_empty()
}

fn evaluate(
    check: &AdvisoriesCheck,
    eco: Ecosystem,
    name: &str,
    version: Option<&str>,
) -> Vec<Finding> {
    let name = PackageName::parse(eco, name).unwrap();
    let version = version.map(|v| Version::parse(eco, v).unwrap());
    let ctx = PackageCtx {
        name: &name,
        version: version.as_ref(),
        metadata: None,
        now: Utc::now(),
    };
    let mut findings = Vec::new();
    check.evaluate(&ctx, &mut findings);
    findings
}

#[test]
fn last_affected_is_inclusive() {
    let ix = index();
    assert!(!affected(&ix, Ecosystem::Npm, "fx-last", "0.9.9"));
    assert!(affected(&ix, Ecosystem::Npm, "fx-last", "1.0.0"));
    assert!(affected(&ix, Ecosystem::Npm, "fx-last", "1.4.2"));
    assert!(!affected(&ix, Ecosystem::Npm, "fx-last", "1.4.3"));
}

#[test]
fn limit_bounds_the_range_from_above() {
    let ix = index();
    assert!(!affected(&ix, Ecosystem::Npm, "fx-limit", "0.5.0"));
    assert!(affected(&ix, Ecosystem::Npm, "fx-limit", "1.9.9"));
    assert!(!affected(&ix, Ecosystem::Npm, "fx-limit", "2.0.0"));
    assert!(!affected(&ix, Ecosystem::Npm, "fx-limit", "3.0.0"));
}

#[test]
fn prereleases_order_per_semver() {
    let ix = index();
    assert!(!affected(&ix, Ecosystem::Npm, "fx-pre", "0.9.0"));
    assert!(affected(&ix, Ecosystem::Npm, "fx-pre", "1.0.0-alpha.1"));
    assert!(affected(&ix, Ecosystem::Npm, "fx-pre", "1.0.0-beta.3"));
    assert!(affected(&ix, Ecosystem::Npm, "fx-pre", "1.0.0-rc.1"));
    assert!(!affected(&ix, Ecosystem::Npm, "fx-pre", "1.0.0-rc.2"));
    assert!(!affected(&ix, Ecosystem::Npm, "fx-pre", "1.0.0"));
}

#[test]
fn pep440_epochs_and_post_releases() {
    let ix = index();
    // The name is normalised: the advisory says `Fx_Epoch.Pkg`.
    assert!(affected(&ix, Ecosystem::PyPI, "fx-epoch-pkg", "1!1.5"));
    assert!(
        !affected(&ix, Ecosystem::PyPI, "FX.epoch_pkg", "2.5"),
        "epoch 0 sorts below 1!1.0"
    );
    assert!(!affected(&ix, Ecosystem::PyPI, "fx-epoch-pkg", "1!2.0"));
    assert!(affected(&ix, Ecosystem::PyPI, "fx-post", "1.0"));
    assert!(affected(&ix, Ecosystem::PyPI, "fx-post", "1.0rc1"));
    assert!(!affected(&ix, Ecosystem::PyPI, "fx-post", "1.0.post1"));
    assert!(!affected(&ix, Ecosystem::PyPI, "fx-post", "1.0.post2"));
}

#[test]
fn explicit_versions_compare_as_versions() {
    let ix = index();
    assert!(affected(&ix, Ecosystem::PyPI, "fx-versions", "1.0.0"));
    assert!(affected(&ix, Ecosystem::PyPI, "fx-versions", "1.2"));
    assert!(!affected(&ix, Ecosystem::PyPI, "fx-versions", "1.1"));
}

/// Ranges and explicit versions are OR-ed. depfw keeps only the listed versions the ranges
/// miss (PyPA lists hundreds inside them): those must still count.
#[test]
fn explicit_versions_outside_the_ranges_still_count() {
    let ix = index();
    for (version, expected) in [
        ("0.9", false),
        ("1.0", true),
        ("1.5", true),
        ("1.9.9", true),
        ("2.0", false),
        ("2.5", false),
        ("3.0", true),
        ("3.1rc1", true),
        ("3.1", false),
    ] {
        assert_eq!(
            affected(&ix, Ecosystem::PyPI, "fx-both", version),
            expected,
            "{version}"
        );
    }
}

#[test]
fn several_introduced_fixed_pairs_in_any_order() {
    let ix = index();
    let multi = |v| affected(&ix, Ecosystem::CratesIo, "fx_multi", v);
    assert!(!multi("0.0.9"));
    assert!(multi("0.1.0"));
    assert!(multi("0.1.9"));
    assert!(!multi("0.2.0"));
    assert!(!multi("0.4.0"));
    assert!(multi("0.5.2"));
    assert!(!multi("0.5.3"));
    assert!(!multi("1.0.0"));
}

#[test]
fn unparsable_introduced_counts_as_zero_and_is_counted() {
    let ix = index();
    assert!(affected(&ix, Ecosystem::Npm, "fx-bad", "0.0.1"));
    assert!(!affected(&ix, Ecosystem::Npm, "fx-bad", "1.0.0"));
    assert_eq!(ix.version_warnings(), 1);
}

#[test]
fn withdrawn_and_git_only_records_match_nothing() {
    let feed = load_path(Path::new("tests/fixtures/osv")).unwrap();
    assert_eq!(feed.withdrawn, 1);
    assert!(feed.advisories.iter().all(|a| a.id != "TEST-WITHDRAWN-1"));
    let ix = index();
    assert!(!affected(&ix, Ecosystem::Npm, "fx-withdrawn", "1.0.0"));
    assert!(!affected(&ix, Ecosystem::PyPI, "fx-git", "1.0"));
}

#[test]
fn severity_from_cvss_v3_v4_and_database_specific() {
    let ix = index();
    let severity_of = |eco, name| {
        let name = PackageName::parse(eco, name).unwrap();
        ix.for_package(&name)[0].severity
    };
    // CVSS 3.1 AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H = 9.8.
    assert_eq!(severity_of(Ecosystem::Npm, "fx-last"), Severity::Critical);
    // CVSS 3.1 AV:N/AC:H/PR:L/UI:R/S:U/C:L/I:N/A:N = 2.6.
    assert_eq!(severity_of(Ecosystem::PyPI, "fx-post"), Severity::Low);
    // CVSS 4.0 with high impacts on the vulnerable system = 9.3.
    assert_eq!(severity_of(Ecosystem::Npm, "fx-pre"), Severity::Critical);
    assert_eq!(
        severity_of(Ecosystem::PyPI, "fx-epoch-pkg"),
        Severity::Medium
    );
    assert_eq!(severity_of(Ecosystem::CratesIo, "fx-multi"), Severity::High);
    assert_eq!(
        severity_of(Ecosystem::CratesIo, "fx-unscored"),
        Severity::Unknown
    );
    assert_eq!(severity_of(Ecosystem::Npm, "fx-evil"), Severity::Critical);
}

#[test]
fn malicious_records_without_ranges_affect_every_version() {
    let ix = index();
    let name = PackageName::parse(Ecosystem::PyPI, "fx_typo").unwrap();
    let advisory = &ix.for_package(&name)[0];
    assert_eq!(advisory.kind, AdvisoryKind::Malicious);
    assert!(advisory.affects_all_versions());
    assert!(affected(&ix, Ecosystem::PyPI, "fx-typo", "0.0.1"));
    assert!(affected(&ix, Ecosystem::PyPI, "fx-typo", "99.0"));
}

#[test]
fn check_denies_malicious_with_ids_and_aliases() {
    let check = AdvisoriesCheck::new(index(), config());
    let findings = evaluate(&check, Ecosystem::Npm, "fx-evil", Some("1.2.3"));
    assert_eq!(findings.len(), 1);
    let f = &findings[0];
    assert_eq!(
        (f.check.as_str(), f.code.as_str()),
        ("advisories", "known-malicious")
    );
    assert_eq!(f.verdict, Verdict::Deny);
    assert_eq!(f.ids, vec!["MAL-2099-1", "GHSA-evil-evil-evil"]);
    assert!(
        f.message
            .starts_with("MAL-2099-1 (GHSA-evil-evil-evil): known malicious"),
        "{}",
        f.message
    );
    // Name only: every version is malicious, so the name itself is denied.
    let findings = evaluate(&check, Ecosystem::Npm, "fx-evil", None);
    assert_eq!(findings[0].code, Code::KnownMalicious);
}

#[test]
fn check_flags_version_specific_malicious_records() {
    let check = AdvisoriesCheck::new(index(), config());
    assert_eq!(
        evaluate(&check, Ecosystem::Npm, "fx-hijacked", Some("2.0.2"))[0].code,
        Code::KnownMalicious
    );
    assert!(evaluate(&check, Ecosystem::Npm, "fx-hijacked", Some("2.0.0")).is_empty());
    let name_only = evaluate(&check, Ecosystem::Npm, "fx-hijacked", None);
    assert_eq!(name_only.len(), 1);
    assert_eq!(name_only[0].code, Code::HasMaliciousVersions);
    assert_eq!(name_only[0].verdict, Verdict::Warn);
    assert_eq!(name_only[0].ids, vec!["MAL-2099-2"]);
}

#[test]
fn vulnerability_verdict_follows_the_severity_threshold() {
    let check = AdvisoriesCheck::new(index(), config());
    let high = &evaluate(&check, Ecosystem::CratesIo, "fx-multi", Some("0.5.1"))[0];
    assert_eq!(
        (high.code.as_str(), high.verdict),
        ("vulnerable", Verdict::Deny)
    );
    assert_eq!(high.fixed_in.as_deref(), Some("0.5.3"));
    assert_eq!(
        high.message,
        "TEST-MULTI-1: vulnerable, severity high, fixed in 0.5.3"
    );
    let early = &evaluate(&check, Ecosystem::CratesIo, "fx-multi", Some("0.1.5"))[0];
    assert_eq!(early.fixed_in.as_deref(), Some("0.2.0"));

    let low = &evaluate(&check, Ecosystem::PyPI, "fx-post", Some("0.9"))[0];
    assert_eq!((low.severity, low.verdict), (Severity::Low, Verdict::Warn));
    assert_eq!(
        low.ids,
        vec!["TEST-POST-1", "CVE-2099-0001", "GHSA-aaaa-bbbb-cccc"]
    );
    assert_eq!(low.fixed_in.as_deref(), Some("1.0.post1"));

    let unknown = &evaluate(&check, Ecosystem::CratesIo, "fx-unscored", Some("1.0.0"))[0];
    assert_eq!(
        (unknown.severity, unknown.verdict),
        (Severity::Unknown, Verdict::Deny)
    );
    let lenient = AdvisoriesCheck::new(
        index(),
        AdvisoriesConfig {
            unknown_severity: Verdict::Warn,
            deny_at: Severity::Critical,
            ..config()
        },
    );
    assert_eq!(
        evaluate(&lenient, Ecosystem::CratesIo, "fx-unscored", Some("1.0.0"))[0].verdict,
        Verdict::Warn
    );
    assert_eq!(
        evaluate(&lenient, Ecosystem::CratesIo, "fx-multi", Some("0.5.1"))[0].verdict,
        Verdict::Warn
    );
}

/// An unscored advisory that covers the latest release (nothing to upgrade to) warns under
/// its own code instead of refusing the package outright; where it names a fix, the
/// unscored verdict (deny) stands, and scored or malicious records are unchanged.
#[test]
fn unscored_advisories_without_a_fix_warn_under_their_own_code() {
    let check = AdvisoriesCheck::new(index(), config());
    let latest = &evaluate(&check, Ecosystem::PyPI, "fx-unfixed", Some("2.3"))[0];
    assert_eq!(
        (&latest.code, latest.verdict, latest.severity),
        (&Code::UnfixedAdvisory, Verdict::Warn, Severity::Unknown)
    );
    assert_eq!(latest.fixed_in, None);
    assert!(
        latest
            .message
            .ends_with("severity unknown, no fixed version"),
        "{}",
        latest.message
    );
    let fixable = &evaluate(&check, Ecosystem::PyPI, "fx-unfixed", Some("1.0"))[0];
    assert_eq!(
        (&fixable.code, fixable.verdict, fixable.fixed_in.as_deref()),
        (&Code::Vulnerable, Verdict::Deny, Some("1.5"))
    );
    assert!(evaluate(&check, Ecosystem::PyPI, "fx-unfixed", Some("1.7")).is_empty());
    let strict = AdvisoriesCheck::new(
        index(),
        AdvisoriesConfig {
            unfixed: Verdict::Deny,
            ..config()
        },
    );
    let latest = &evaluate(&strict, Ecosystem::PyPI, "fx-unfixed", Some("2.3"))[0];
    assert_eq!(
        (&latest.code, latest.verdict),
        (&Code::UnfixedAdvisory, Verdict::Deny)
    );
    // Malicious records are denied whether or not they name a fix.
    let evil = &evaluate(&check, Ecosystem::Npm, "fx-evil", Some("1.2.3"))[0];
    assert_eq!(
        (&evil.code, evil.verdict),
        (&Code::KnownMalicious, Verdict::Deny)
    );
}

#[test]
fn informational_advisories_use_their_own_verdict() {
    let check = AdvisoriesCheck::new(
        index(),
        AdvisoriesConfig {
            informational: Verdict::Quarantine,
            ..config()
        },
    );
    let f = &evaluate(&check, Ecosystem::CratesIo, "fx-old", Some("1.0.0"))[0];
    assert_eq!(
        (f.code.as_str(), f.verdict),
        ("informational-advisory", Verdict::Quarantine)
    );
    assert!(f.message.ends_with("unmaintained"), "{}", f.message);
}

#[test]
fn ignore_matches_ids_and_aliases_case_insensitively() {
    let check = AdvisoriesCheck::new(
        index(),
        AdvisoriesConfig {
            ignore: vec!["cve-2099-0001".into(), "TEST-MULTI-1".into()],
            ..config()
        },
    );
    assert!(evaluate(&check, Ecosystem::PyPI, "fx-post", Some("0.9")).is_empty());
    assert!(evaluate(&check, Ecosystem::CratesIo, "fx-multi", Some("0.5.1")).is_empty());
    assert!(!evaluate(&check, Ecosystem::Npm, "fx-last", Some("1.0.0")).is_empty());
}

#[test]
fn name_only_vulnerabilities_are_reported_without_blocking() {
    let check = AdvisoriesCheck::new(index(), config());
    let findings = evaluate(&check, Ecosystem::CratesIo, "fx-multi", None);
    assert_eq!(findings.len(), 1);
    assert_eq!(
        (findings[0].code.as_str(), findings[0].verdict),
        ("has-vulnerable-versions", Verdict::Allow)
    );
}
