//! The `typosquat` check as the policy engine runs it: findings, config, techniques.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use chrono::Utc;
use depfw::config::TyposquatConfig;
use depfw::diag::Code;
use depfw::package::{Ecosystem, PackageName};
use depfw::policy::typosquat::PopularIndex;
use depfw::policy::typosquat::{Strength, Technique, TyposquatCheck};
use depfw::policy::{Check, Finding, PackageCtx, Severity, Verdict, VersionMetadata};

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
        look_alike: Verdict::Warn,
        established_days: 90,
        unknown_age: Verdict::Warn,
        extra_popular: BTreeMap::new(),
    }
}

fn run(check: &TyposquatCheck, eco: Ecosystem, name: &str) -> Vec<Finding> {
    run_aged(check, eco, name, None)
}

/// `age_days`: how long ago the package was first published; `None`: unknown.
fn run_aged(
    check: &TyposquatCheck,
    eco: Ecosystem,
    name: &str,
    age_days: Option<i64>,
) -> Vec<Finding> {
    let name = PackageName::parse(eco, name).unwrap();
    let now = Utc::now();
    let metadata = VersionMetadata {
        package_created: age_days.map(|d| now - chrono::Duration::days(d)),
        ..VersionMetadata::default()
    };
    let ctx = PackageCtx {
        name: &name,
        version: None,
        metadata: age_days.map(|_| &metadata),
        now,
    };
    let mut findings = Vec::new();
    check.evaluate(&ctx, &mut findings);
    findings
}

/// The code and verdict of the one finding for `name` at `age_days`, if any.
fn outcome(eco: Ecosystem, name: &str, age_days: Option<i64>) -> Option<(Code, Verdict)> {
    let check = TyposquatCheck::new(bundled(), config());
    let findings = run_aged(&check, eco, name, age_days);
    assert!(findings.len() <= 1, "{findings:?}");
    findings.first().map(|f| (f.code.clone(), f.verdict))
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
        "`reqeusts` looks like a typosquat of `requests` (PyPI rank 7): transposed letters; \
         the package's age is unknown (no registry metadata), so the policy fails closed and \
         treats it as young"
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
    assert!(
        findings[0].message.starts_with(
            "`acme-ledegr-client` looks like a typosquat of `acme-ledger-client` (popular on npm): transposed letters;"
        ),
        "{}",
        findings[0].message
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
        Some(("lodash".into(), Technique::Affix("js")))
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

/// What a resemblance means depends on the package's age: young look-alikes are held,
/// established ones warn, and without an age only strong resemblances are held.
#[test]
fn the_packages_age_decides_what_a_resemblance_means() {
    let (npm, pypi) = (Ecosystem::Npm, Ecosystem::PyPI);
    let held = Some((Code::PossibleTyposquat, Verdict::Quarantine));
    let warned = Some((Code::LookAlikeName, Verdict::Warn));
    // Strong: a slip of the hand.
    assert_eq!(outcome(pypi, "reqeusts", None), held);
    assert_eq!(outcome(pypi, "reqeusts", Some(3)), held);
    assert_eq!(outcome(pypi, "reqeusts", Some(2_000)), warned);
    // Weak: how real neighbours are named too; `lodash-node` is a real package of 2013.
    // Reported only in a young package.
    assert_eq!(outcome(npm, "lodash-node", Some(4_000)), None);
    assert_eq!(outcome(npm, "lodash-node", None), None);
    assert_eq!(outcome(npm, "chalk-node", Some(2)), held);
    let check = TyposquatCheck::new(bundled(), config());
    let young = &run_aged(&check, npm, "chalk-node", Some(2))[0];
    assert!(
        young.message.ends_with("first published 2 days ago"),
        "{}",
        young.message
    );
    let old = &run_aged(&check, pypi, "reqeusts", Some(4_000))[0];
    assert!(
        old.message.contains("resembles `requests`")
            && old.message.ends_with("first published 4000 days ago"),
        "{}",
        old.message
    );
    // The boundary is `established-days`.
    assert_eq!(outcome(npm, "chalk-node", Some(89)), held);
    assert_eq!(outcome(npm, "chalk-node", Some(90)), None);
    assert_eq!(outcome(pypi, "reqeusts", Some(90)), warned);
    let mut cfg = config();
    cfg.look_alike = Verdict::Allow;
    let check = TyposquatCheck::new(bundled(), cfg);
    let old = &run_aged(&check, pypi, "reqeusts", Some(4_000))[0];
    assert_eq!(old.verdict, Verdict::Allow);
}

/// The classic typosquats of the issue tracker, each caught (held when young), and each
/// with the target it imitates; the rules that catch them are general (a word added to a
/// popular name, a weak edit of a top-1,000 name, a separator dropped, a capital I for l).
#[test]
fn classic_typosquats_are_held_when_young() {
    let (npm, pypi) = (Ecosystem::Npm, Ecosystem::PyPI);
    for (eco, squat, target) in [
        (npm, "loadash", "lodash"),
        (npm, "crossenv", "cross-env"),
        (npm, "babelcli", "@babel/cli"),
        (npm, "nodesass", "node-sass"),
        (npm, "d3.js", "d3"),
        (npm, "jquery.js", "jquery"),
        (npm, "expres", "express"),
        (npm, "chai-sdk", "chai"),
        (npm, "vitest-cli", "vitest"),
        (npm, "node-fetch-utils", "node-fetch"),
        (npm, "cookie-parser-js", "cookie-parser"),
        (npm, "node-pino", "pino"),
        (npm, "ethers-lib", "ethers"),
        (pypi, "colourama", "colorama"),
        (pypi, "python3-dateutil", "python-dateutil"),
        (pypi, "jeIlyfish", "jellyfish"),
        (pypi, "djanga", "django"),
        (pypi, "aiihttp", "aiohttp"),
        (pypi, "marshmellow", "marshmallow"),
        (pypi, "requests-util", "requests"),
        (pypi, "httpx-utils", "httpx"),
        (pypi, "python-uvicorn", "uvicorn"),
        (pypi, "faker-python", "faker"),
    ] {
        let found = technique(eco, squat).map(|(t, _)| t);
        assert_eq!(found.as_deref(), Some(target), "{squat}");
        assert_eq!(
            outcome(eco, squat, Some(1)),
            Some((Code::PossibleTyposquat, Verdict::Quarantine)),
            "{squat}"
        );
    }
    // A capital I for an l is strong: held on the name alone.
    let name = PackageName::parse(pypi, "jeIlyfish").unwrap();
    assert_eq!(bundled().suspect(&name).unwrap().strength, Strength::Strong);
}

/// The same classic typosquats without registry metadata (`depfw check` offline): the age is
/// unknown. A strong resemblance is held, failing closed (`loadash`, `colourama`, `aiihttp`);
/// a moderate one, whose shape established real names share (`getstream`, `bytes.js`,
/// `python3-ldap`), gets `policy.typosquat.unknown-age` (warn by default, quarantine when
/// configured). Established, both warn; young, both are held.
#[test]
fn classic_typosquats_are_reported_without_their_age() {
    let (npm, pypi) = (Ecosystem::Npm, Ecosystem::PyPI);
    let held = Some((Code::PossibleTyposquat, Verdict::Quarantine));
    let warned = Some((Code::LookAlikeName, Verdict::Warn));
    let strong = [
        (npm, "loadash"),
        (npm, "expres"),
        (pypi, "colourama"),
        (pypi, "aiihttp"),
        (pypi, "aoohttp"),
        (pypi, "jeIlyfish"),
    ];
    let moderate = [
        (npm, "crossenv"),
        (npm, "babelcli"),
        (npm, "nodesass"),
        (npm, "d3.js"),
        (npm, "jquery.js"),
        (pypi, "python3-dateutil"),
        (pypi, "djanga"),
    ];
    let mut fail_closed = config();
    fail_closed.unknown_age = Verdict::Quarantine;
    let fail_closed = TyposquatCheck::new(bundled(), fail_closed);
    for (eco, squat) in strong {
        let name = PackageName::parse(eco, squat).unwrap();
        let strength = bundled().suspect(&name).map(|s| s.strength);
        assert_eq!(strength, Some(Strength::Strong), "{squat}");
        assert_eq!(outcome(eco, squat, None), held, "{squat}");
        assert_eq!(outcome(eco, squat, Some(3_000)), warned, "{squat}");
        let check = TyposquatCheck::new(bundled(), config());
        let f = &run(&check, eco, squat)[0];
        assert!(f.message.contains("age is unknown"), "{}", f.message);
    }
    for (eco, squat) in moderate {
        let name = PackageName::parse(eco, squat).unwrap();
        let strength = bundled().suspect(&name).map(|s| s.strength);
        assert_eq!(strength, Some(Strength::Moderate), "{squat}");
        assert_eq!(
            outcome(eco, squat, None),
            Some((Code::PossibleTyposquat, Verdict::Warn)),
            "{squat}"
        );
        assert_eq!(outcome(eco, squat, Some(1)), held, "{squat}");
        assert_eq!(outcome(eco, squat, Some(3_000)), warned, "{squat}");
        let f = &run(&fail_closed, eco, squat)[0];
        assert_eq!(f.verdict, Verdict::Quarantine, "{squat}");
        assert!(f.message.contains("unknown-age"), "{}", f.message);
    }
}

/// The vowel rules make a slip strong only where it coins a word: `colour` (a real npm
/// package, `color` spelled the British way) stays the weak resemblance it always was:
/// nothing by name alone or when established, held only when young.
#[test]
fn a_sound_alike_that_is_a_word_stays_weak() {
    let npm = Ecosystem::Npm;
    let name = PackageName::parse(npm, "colour").unwrap();
    let suspect = bundled().suspect(&name).unwrap();
    assert_eq!(
        (suspect.target.as_str(), suspect.strength),
        ("color", Strength::Weak)
    );
    assert_eq!(outcome(npm, "colour", None), None);
    assert_eq!(outcome(npm, "colour", Some(3_000)), None);
}

/// Real packages the old rules held by name alone: an AWS service acronym, a new letter in
/// front of a word (`uint32` / `int32`), a separator convention inside one npm scope, a
/// popular name plus `-node` or `-js`, an inserted vowel. None is held or warned about any
/// more, with their age (established) or without it.
#[test]
fn named_false_positives_are_not_held() {
    let npm = Ecosystem::Npm;
    for name in [
        "@aws-sdk/client-drs",
        "@stdlib/array-int32",
        "@stdlib/assert-is-int8array",
        "@stdlib/constants-int16-max",
        "@types/babel-core",
        "@types/babel-generator",
        "lodash-node",
        "uuid-js",
        "semiver",
    ] {
        assert_eq!(outcome(npm, name, None), None, "{name}");
        assert_eq!(outcome(npm, name, Some(3_000)), None, "{name}");
    }
}
