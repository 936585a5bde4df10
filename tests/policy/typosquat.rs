//! The `typosquat` check as the policy engine runs it: findings, config, techniques.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use chrono::Utc;
use depfw::config::TyposquatConfig;
use depfw::diag::Code;
use depfw::feeds::popular::PopularIndex;
use depfw::package::{Ecosystem, PackageName};
use depfw::policy::typosquat::{Technique, TyposquatCheck};
use depfw::policy::{Check, Finding, PackageCtx, Severity, Verdict};

fn bundled() -> Arc<PopularIndex> {
    static INDEX: OnceLock<Arc<PopularIndex>> = OnceLock::new();
    INDEX
        .get_or_init(|| Arc::new(PopularIndex::bundled()))
        .clone()
}

fn config() -> TyposquatConfig {
    TyposquatConfig {
        enabled: true,
        verdict: Verdict::Quarantine,
        extra_popular: BTreeMap::new(),
    }
}

fn run(check: &TyposquatCheck, eco: Ecosystem, name: &str) -> Vec<Finding> {
    let name = PackageName::parse(eco, name).unwrap();
    let ctx = PackageCtx {
        name: &name,
        version: None,
        metadata: None,
        now: Utc::now(),
    };
    let mut findings = Vec::new();
    check.evaluate(&ctx, &mut findings);
    findings
}

fn technique(eco: Ecosystem, name: &str) -> Option<(String, Technique)> {
    let name = PackageName::parse(eco, name).unwrap();
    bundled().suspect(&name).map(|s| (s.target, s.technique))
}

#[test]
fn a_typosquat_is_quarantined_with_a_readable_reason() {
    let check = TyposquatCheck::new(bundled(), config());
    assert_eq!(check.name(), "typosquat");
    let findings = run(&check, Ecosystem::PyPI, "reqeusts");
    assert_eq!(findings.len(), 1);
    let f = &findings[0];
    assert_eq!(f.check, "typosquat");
    assert_eq!(f.code, Code::PossibleTyposquat);
    assert_eq!(f.severity, Severity::High);
    assert_eq!(f.verdict, Verdict::Quarantine);
    assert_eq!(
        f.message,
        "`reqeusts` looks like a typosquat of `requests` (PyPI rank 7): transposed letters"
    );
}

#[test]
fn popular_and_unrelated_names_pass() {
    let check = TyposquatCheck::new(bundled(), config());
    for (eco, name) in [
        (Ecosystem::PyPI, "requests"),
        (Ecosystem::PyPI, "Typing_Extensions"),
        (Ecosystem::PyPI, "zope.interface"),
        (Ecosystem::Npm, "lodash.merge"),
        (Ecosystem::Npm, "@types/node"),
        (Ecosystem::CratesIo, "serde-json"),
        (Ecosystem::CratesIo, "lsh"),
        (Ecosystem::Npm, "my-internal-thing-nobody-has"),
    ] {
        assert!(run(&check, eco, name).is_empty(), "{name}");
    }
}

#[test]
fn config_sets_the_verdict_and_can_disable_the_check() {
    let mut cfg = config();
    cfg.verdict = Verdict::Deny;
    let check = TyposquatCheck::new(bundled(), cfg.clone());
    assert_eq!(
        run(&check, Ecosystem::Npm, "semvre")[0].verdict,
        Verdict::Deny
    );
    cfg.enabled = false;
    let check = TyposquatCheck::new(bundled(), cfg);
    assert!(run(&check, Ecosystem::Npm, "semvre").is_empty());
}

#[test]
fn extra_popular_names_are_protected_and_not_flagged_themselves() {
    let mut cfg = config();
    cfg.extra_popular.insert(
        Ecosystem::Npm,
        vec![
            "@acme/billing-core".to_owned(),
            "acme-ledger-client".to_owned(),
        ],
    );
    let check = TyposquatCheck::new(bundled(), cfg);
    assert!(run(&check, Ecosystem::Npm, "acme-ledger-client").is_empty());
    let findings = run(&check, Ecosystem::Npm, "acme-ledegr-client");
    assert_eq!(
        findings[0].message,
        "`acme-ledegr-client` looks like a typosquat of `acme-ledger-client` (popular on npm): transposed letters"
    );
    assert_eq!(run(&check, Ecosystem::Npm, "@acme/biling-core").len(), 1);
    // The shared index is not changed for other checks.
    let name = PackageName::parse(Ecosystem::Npm, "acme-ledger-client").unwrap();
    assert!(!bundled().is_popular(&name));
}

#[test]
fn each_technique_is_recognised() {
    let t = |eco, name| technique(eco, name);
    let npm = Ecosystem::Npm;
    let pypi = Ecosystem::PyPI;
    assert_eq!(
        t(npm, "@typescript/eslint-parser"),
        Some(("@typescript-eslint/parser".into(), Technique::Scope))
    );
    assert_eq!(
        t(pypi, "pythondateutil"),
        Some(("python-dateutil".into(), Technique::Separator))
    );
    assert_eq!(
        t(Ecosystem::CratesIo, "serdejson"),
        Some(("serde_json".into(), Technique::Separator))
    );
    assert_eq!(
        t(pypi, "rnatplotlib"),
        Some(("matplotlib".into(), Technique::Homoglyph))
    );
    assert_eq!(
        t(npm, "lodash-js"),
        Some(("lodash".into(), Technique::Affix("-js")))
    );
    assert_eq!(t(npm, "Semver"), Some(("semver".into(), Technique::Case)));
    assert_eq!(
        t(pypi, "python-dateitil"),
        Some(("python-dateutil".into(), Technique::Substitution))
    );
}

#[test]
fn real_neighbours_and_short_names_are_left_alone() {
    for (eco, name) in [
        // Known words, not typos.
        (Ecosystem::PyPI, "django-filer-extra"),
        (Ecosystem::PyPI, "types-boto3-sts"),
        // Version digits and short words.
        (Ecosystem::Npm, "vue4"),
        (Ecosystem::Npm, "ms2"),
        // 3-letter names are one edit from dozens of popular names.
        (Ecosystem::Npm, "abc"),
        (Ecosystem::PyPI, "ujs"),
        // A real project named by prefixing a letter.
        (Ecosystem::PyPI, "grequests"),
        // Dotted npm names versus their dashed twins.
        (Ecosystem::Npm, "object.assign"),
    ] {
        assert_eq!(technique(eco, name), None, "{name}");
    }
}
