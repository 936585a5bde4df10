//! The reputation check, with an injected clock.

use chrono::{DateTime, Duration, TimeZone, Utc};
use depfw::config::{Config, ReputationConfig};
use depfw::package::{Ecosystem, PackageName};
use depfw::policy::reputation::ReputationCheck;
use depfw::policy::{Check, Finding, PackageCtx, Verdict, VersionMetadata};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
}

fn defaults() -> ReputationConfig {
    Config::default().policy.reputation
}

fn run_with(config: ReputationConfig, metadata: Option<&VersionMetadata>) -> Vec<Finding> {
    let name = PackageName::parse(Ecosystem::PyPI, "some-package").unwrap();
    let ctx = PackageCtx {
        name: &name,
        version: None,
        metadata,
        now: now(),
    };
    let mut findings = Vec::new();
    ReputationCheck::new(config).evaluate(&ctx, &mut findings);
    findings
}

fn run(metadata: VersionMetadata) -> Vec<Finding> {
    run_with(defaults(), Some(&metadata))
}

fn published(ago: Duration) -> VersionMetadata {
    VersionMetadata {
        published: Some(now() - ago),
        ..VersionMetadata::default()
    }
}

/// A version published long ago, so that only the rule under test fires.
fn aged() -> VersionMetadata {
    VersionMetadata {
        published: Some(now() - Duration::days(365)),
        ..VersionMetadata::default()
    }
}

fn created(ago: Duration) -> VersionMetadata {
    VersionMetadata {
        package_created: Some(now() - ago),
        ..aged()
    }
}

fn codes(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.code.as_str()).collect()
}

#[test]
fn name_is_reputation() {
    assert_eq!(ReputationCheck::new(defaults()).name(), "reputation");
}

#[test]
fn no_metadata_means_no_findings_and_an_old_version_none() {
    assert!(run_with(defaults(), None).is_empty());
    assert!(run(aged()).is_empty());
}

/// A registry's description of a version that gives no publish time.
fn timeless() -> VersionMetadata {
    VersionMetadata {
        publish_time_expected: true,
        ..VersionMetadata::default()
    }
}

#[test]
fn unknown_publish_time_is_a_finding_never_a_silent_pass() {
    let findings = run(timeless());
    assert_eq!(codes(&findings), ["publish-time-unknown"]);
    assert_eq!(findings[0].verdict, Verdict::Quarantine);
    assert!(
        findings[0]
            .message
            .contains("48h cooldown cannot be checked"),
        "{}",
        findings[0].message
    );
    // The same for a package whose first release is known but this version's is not.
    let findings = run(VersionMetadata {
        package_created: Some(now() - Duration::days(400)),
        ..timeless()
    });
    assert_eq!(codes(&findings), ["publish-time-unknown"]);
    let warn = ReputationConfig {
        publish_time_unknown: Verdict::Warn,
        ..defaults()
    };
    let findings = run_with(warn, Some(&timeless()));
    assert_eq!(findings[0].verdict, Verdict::Warn);
    // Without a cooldown there is nothing the time would decide.
    let off = ReputationConfig {
        cooldown_hours: 0,
        ..defaults()
    };
    assert!(run_with(off, Some(&timeless())).is_empty());
    // What a lockfile records never carries times: offline audits are not held for it.
    assert!(run(VersionMetadata::default()).is_empty());
}

#[test]
fn cooldown_boundary() {
    assert_eq!(defaults().cooldown_hours, 48);
    let inside = run(published(Duration::hours(48) - Duration::seconds(1)));
    assert_eq!(codes(&inside), ["release-cooldown"]);
    assert_eq!(inside[0].verdict, Verdict::Quarantine);
    assert_eq!(inside[0].check, "reputation");
    // Exactly the cooldown old: cleared.
    assert!(run(published(Duration::hours(48))).is_empty());
    assert!(run(published(Duration::days(30))).is_empty());
}

#[test]
fn cooldown_message_says_age_and_when_it_clears() {
    let findings = run(published(Duration::hours(5) + Duration::minutes(12)));
    let message = &findings[0].message;
    assert!(message.contains("5h 12m"), "{message}");
    // Published 2026-03-10 06:48, plus 48 hours.
    assert!(message.contains("2026-03-12 06:48 UTC"), "{message}");
}

#[test]
fn future_publish_time_counts_as_age_zero() {
    let findings = run(published(-Duration::hours(3)));
    assert_eq!(codes(&findings), ["release-cooldown"]);
    assert!(
        findings[0].message.contains("published 0m ago"),
        "{}",
        findings[0].message
    );
    let findings = run(created(-Duration::days(2)));
    assert_eq!(codes(&findings), ["new-package"]);
}

#[test]
fn zero_cooldown_disables_the_rule() {
    let config = ReputationConfig {
        cooldown_hours: 0,
        ..defaults()
    };
    assert!(run_with(config, Some(&published(Duration::zero()))).is_empty());
}

#[test]
fn huge_windows_do_not_overflow() {
    let config = ReputationConfig {
        cooldown_hours: u64::MAX,
        new_package_days: u64::MAX,
        ..defaults()
    };
    let metadata = VersionMetadata {
        published: Some(now() - Duration::days(3650)),
        package_created: Some(now() - Duration::days(3650)),
        ..VersionMetadata::default()
    };
    let findings = run_with(config, Some(&metadata));
    assert_eq!(codes(&findings), ["release-cooldown", "new-package"]);
}

#[test]
fn new_package_boundary_and_verdict() {
    assert_eq!(defaults().new_package_days, 14);
    let inside = run(created(Duration::days(14) - Duration::minutes(1)));
    assert_eq!(codes(&inside), ["new-package"]);
    assert_eq!(inside[0].verdict, Verdict::Quarantine);
    assert!(
        inside[0].message.contains("13d 23h"),
        "{}",
        inside[0].message
    );
    assert!(run(created(Duration::days(14))).is_empty());

    let config = ReputationConfig {
        new_package: Verdict::Warn,
        ..defaults()
    };
    let findings = run_with(config.clone(), Some(&created(Duration::days(1))));
    assert_eq!(findings[0].verdict, Verdict::Warn);
    let disabled = ReputationConfig {
        new_package_days: 0,
        ..config
    };
    assert!(run_with(disabled, Some(&created(Duration::zero()))).is_empty());
}

#[test]
fn install_scripts_only_when_known_true() {
    let with = |scripts| VersionMetadata {
        has_install_scripts: scripts,
        ..aged()
    };
    let findings = run(with(Some(true)));
    assert_eq!(codes(&findings), ["install-scripts"]);
    assert_eq!(findings[0].verdict, Verdict::Warn);
    assert!(run(with(Some(false))).is_empty());
    assert!(run(with(None)).is_empty());
}

#[test]
fn deprecated_unless_the_message_is_empty() {
    let with = |message: &str| VersionMetadata {
        deprecated: Some(message.to_owned()),
        ..aged()
    };
    let findings = run(with("use other-package instead"));
    assert_eq!(codes(&findings), ["deprecated"]);
    assert_eq!(findings[0].verdict, Verdict::Warn);
    assert!(findings[0].message.contains("use other-package instead"));
    assert!(run(with("")).is_empty());
    assert!(run(with("  ")).is_empty());
}

#[test]
fn yanked_with_and_without_reason() {
    let with = |reason: &str| VersionMetadata {
        yanked: Some(reason.to_owned()),
        ..aged()
    };
    let findings = run(with("broken build"));
    assert_eq!(codes(&findings), ["yanked"]);
    assert_eq!(findings[0].verdict, Verdict::Deny);
    assert!(findings[0].message.contains("broken build"));
    let findings = run(with(""));
    assert_eq!(codes(&findings), ["yanked"]);
    assert_eq!(findings[0].message, "yanked from the registry");
}

#[test]
fn every_rule_fires_together_with_its_configured_verdict() {
    let config = ReputationConfig {
        cooldown: Verdict::Deny,
        new_package: Verdict::Warn,
        install_scripts: Verdict::Quarantine,
        deprecated: Verdict::Deny,
        yanked: Verdict::Warn,
        ..defaults()
    };
    let metadata = VersionMetadata {
        published: Some(now() - Duration::hours(1)),
        publish_time_expected: true,
        package_created: Some(now() - Duration::days(2)),
        license: None,
        has_install_scripts: Some(true),
        deprecated: Some("old".to_owned()),
        yanked: Some("oops".to_owned()),
        lineage: None,
        gathered: None,
    };
    let findings = run_with(config, Some(&metadata));
    let got: Vec<(&str, Verdict)> = findings
        .iter()
        .map(|f| (f.code.as_str(), f.verdict))
        .collect();
    assert_eq!(
        got,
        [
            ("release-cooldown", Verdict::Deny),
            ("new-package", Verdict::Warn),
            ("install-scripts", Verdict::Quarantine),
            ("deprecated", Verdict::Deny),
            ("yanked", Verdict::Warn),
        ]
    );
}
