//! The license check against the default and custom policies.

use chrono::{TimeZone, Utc};
use depfw::config::{Config, LicenseConfig};
use depfw::diag::Code;
use depfw::package::{Ecosystem, PackageName};
use depfw::policy::license::LicenseCheck;
use depfw::policy::{Check, Finding, PackageCtx, Verdict, VersionMetadata};

fn defaults() -> LicenseConfig {
    Config::default().policy.license
}

fn run_meta(check: &LicenseCheck, metadata: Option<&VersionMetadata>) -> Vec<Finding> {
    let name = PackageName::parse(Ecosystem::Npm, "some-package").unwrap();
    let ctx = PackageCtx {
        name: &name,
        version: None,
        metadata,
        now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    };
    let mut findings = Vec::new();
    check.evaluate(&ctx, &mut findings);
    findings
}

fn run(check: &LicenseCheck, license: Option<&str>) -> Vec<Finding> {
    let metadata = VersionMetadata {
        license: license.map(str::to_owned),
        ..VersionMetadata::default()
    };
    run_meta(check, Some(&metadata))
}

fn codes(check: &LicenseCheck, license: &str) -> Vec<String> {
    run(check, Some(license))
        .into_iter()
        .map(|f| f.code.to_string())
        .collect()
}

fn with_allow(allow: &[&str]) -> LicenseCheck {
    LicenseCheck::new(LicenseConfig {
        allow: allow.iter().map(|s| s.to_string()).collect(),
        ..defaults()
    })
}

#[test]
fn name_is_license() {
    assert_eq!(LicenseCheck::new(defaults()).name(), "license");
}

#[test]
fn no_metadata_means_no_findings() {
    let check = LicenseCheck::new(defaults());
    assert!(run_meta(&check, None).is_empty());
}

#[test]
fn permissive_licenses_pass_the_default_policy() {
    let check = LicenseCheck::new(defaults());
    for license in [
        "MIT",
        "Apache-2.0",
        "MIT OR Apache-2.0",
        "(MIT OR Apache-2.0)",
        "MIT/Apache-2.0",
        "Apache 2.0",
        "BSD",
        "ISC",
        "BSD-3-Clause AND MIT",
        "Apache-2.0 WITH LLVM-exception",
        "GPL-3.0-or-later",
    ] {
        assert!(codes(&check, license).is_empty(), "{license}");
    }
}

#[test]
fn denied_only_when_every_choice_is_denied() {
    let check = LicenseCheck::new(defaults());
    // Satisfiable by MIT: not denied.
    assert!(codes(&check, "MIT OR AGPL-3.0").is_empty());
    assert!(codes(&check, "MIT/AGPL-3.0-only").is_empty());
    // AND needs both.
    assert_eq!(codes(&check, "MIT AND AGPL-3.0-only"), ["license-denied"]);
    for license in [
        "AGPL-3.0",
        "AGPL-3.0-only",
        "AGPL-3.0-or-later",
        "agpl-3.0",
        "SSPL-1.0",
        "BUSL-1.1",
        "AGPL-3.0-only OR SSPL-1.0",
    ] {
        let findings = run(&check, Some(license));
        assert_eq!(findings.len(), 1, "{license}: {findings:?}");
        assert_eq!(findings[0].code, Code::LicenseDenied);
        assert_eq!(findings[0].verdict, Verdict::Deny);
        assert_eq!(findings[0].check, "license");
        assert!(findings[0].message.contains(license), "{license}");
    }
}

#[test]
fn or_later_escapes_a_deny_when_a_later_version_is_not_denied() {
    let check = LicenseCheck::new(LicenseConfig {
        deny: vec!["GPL-2.0".to_owned()],
        ..defaults()
    });
    assert_eq!(codes(&check, "GPL-2.0-only"), ["license-denied"]);
    assert_eq!(codes(&check, "GPL-2.0"), ["license-denied"]);
    // The licensee may pick GPL-3.0.
    assert!(codes(&check, "GPL-2.0-or-later").is_empty());
    assert!(codes(&check, "GPL-2.0+").is_empty());

    let both = LicenseCheck::new(LicenseConfig {
        deny: vec!["GPL-2.0".to_owned(), "GPL-3.0".to_owned()],
        ..defaults()
    });
    assert_eq!(codes(&both, "GPL-2.0-or-later"), ["license-denied"]);
}

#[test]
fn allow_list_requires_an_allowed_choice() {
    let check = with_allow(&["MIT", "Apache-2.0", "GPL-3.0"]);
    assert!(codes(&check, "MIT").is_empty());
    assert!(codes(&check, "MIT OR GPL-2.0-only").is_empty());
    assert!(codes(&check, "MIT AND Apache-2.0").is_empty());
    // GPL-2.0-or-later may be taken as GPL-3.0, which is allowed.
    assert!(codes(&check, "GPL-2.0-or-later").is_empty());
    assert!(codes(&check, "GPL-3.0-only").is_empty());

    let findings = run(&check, Some("ISC"));
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].code, Code::LicenseNotAllowed);
    assert_eq!(findings[0].verdict, Verdict::Quarantine);
    assert!(findings[0].message.contains("ISC"));
    assert_eq!(codes(&check, "MIT AND ISC"), ["license-not-allowed"]);
    assert_eq!(codes(&check, "GPL-2.0-only"), ["license-not-allowed"]);
}

#[test]
fn deny_wins_over_allow_and_is_reported_alone() {
    let check = with_allow(&["MIT", "AGPL-3.0"]);
    assert_eq!(codes(&check, "AGPL-3.0-only"), ["license-denied"]);
    // ISC escapes the deny but is not allowed; the allowed AGPL is denied.
    assert_eq!(
        codes(&check, "AGPL-3.0-only OR ISC"),
        ["license-not-allowed"]
    );
}

#[test]
fn missing_license() {
    let check = LicenseCheck::new(defaults());
    for license in [Some(""), Some("   ")] {
        let findings = run(&check, license);
        assert_eq!(findings.len(), 1, "{license:?}");
        assert_eq!(findings[0].code, Code::LicenseMissing);
        assert_eq!(findings[0].verdict, Verdict::Warn);
    }
}

/// The cargo sparse index and PyPI's simple index carry no license: not knowing one is not
/// a missing one, or every crate and PyPI release would warn.
#[test]
fn unknown_license_is_not_judged() {
    let check = LicenseCheck::new(LicenseConfig {
        allow: vec!["MIT".into()],
        ..defaults()
    });
    assert!(run(&check, None).is_empty());
    assert_eq!(run(&check, Some("")).len(), 1);
}

#[test]
fn unlicensed_is_proprietary_and_takes_the_not_allowed_verdict() {
    let check = LicenseCheck::new(LicenseConfig {
        not_allowed: Verdict::Deny,
        ..defaults()
    });
    for license in ["UNLICENSED", "unlicensed"] {
        let findings = run(&check, Some(license));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].code, Code::LicenseUnlicensed);
        assert_eq!(findings[0].verdict, Verdict::Deny);
    }
    // The Unlicense is a public-domain dedication, not npm's UNLICENSED.
    assert!(codes(&check, "Unlicense").is_empty());
}

#[test]
fn unparsable_licenses() {
    let check = LicenseCheck::new(LicenseConfig {
        unparsable: Verdict::Quarantine,
        ..defaults()
    });
    for license in [
        "SEE LICENSE IN LICENSE.md",
        "BSD License",
        "Dual MIT/GPL",
        "MIT OR",
    ] {
        let findings = run(&check, Some(license));
        assert_eq!(findings.len(), 1, "{license}");
        assert_eq!(findings[0].code, Code::LicenseUnparsable);
        assert_eq!(findings[0].verdict, Verdict::Quarantine);
    }
}

#[test]
fn full_license_text_is_quoted_short_on_one_line() {
    let check = LicenseCheck::new(defaults());
    let text =
        "Copyright (c) 2020 Someone\n\nPermission is hereby granted, free of charge, to any \
                person obtaining a copy of this software and associated documentation files";
    let findings = run(&check, Some(text));
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].code, Code::LicenseUnparsable);
    assert!(!findings[0].message.contains('\n'));
    assert!(findings[0].message.len() < 160, "{}", findings[0].message);
}

#[test]
fn pypi_legacy_spellings_are_understood() {
    let check = with_allow(&["MIT", "Apache-2.0", "PSF-2.0", "MPL-2.0"]);
    for license in [
        "MIT License",
        "Apache License 2.0",
        "Apache Software License",
        "PSF",
        "MPL 2.0",
        "mit",
    ] {
        assert!(codes(&check, license).is_empty(), "{license}");
    }
}
