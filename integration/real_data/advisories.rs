//! The advisories check on the real shared data set (../shared/data): RustSec, PyPA,
//! ossf malicious packages and the ossf-npm-2025h2 list, plus the bundled snapshot.

use crate::require::Need;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use chrono::Utc;
use depfw::config::AdvisoriesConfig;
use depfw::diag::Code;
use depfw::feeds::{load_path, snapshot, AdvisoryIndex};
use depfw::package::{Ecosystem, PackageName, Version};
use depfw::policy::advisories::AdvisoriesCheck;
use depfw::policy::{Check, Finding, PackageCtx, Severity, Verdict};

use crate::support::shared_data as data_dir;

/// Every snapshot source plus the withdrawn ossf records, loaded once.
fn index() -> Arc<AdvisoryIndex> {
    static INDEX: OnceLock<Arc<AdvisoryIndex>> = OnceLock::new();
    INDEX
        .get_or_init(|| {
            let root = data_dir();
            let mut advisories = Vec::new();
            let withdrawn_paths = [
                "malicious/ossf/withdrawn/npm.jsonl",
                "malicious/ossf/withdrawn/pypi.jsonl",
            ];
            let paths = snapshot::SOURCES
                .iter()
                .map(|(_, _, p)| *p)
                .chain(withdrawn_paths);
            for rel in paths {
                advisories.extend(load_path(&root.join(rel)).unwrap().advisories);
            }
            Arc::new(AdvisoryIndex::new(advisories, "real".into()))
        })
        .clone()
}

fn check() -> AdvisoriesCheck {
    AdvisoriesCheck::new(
        index(),
        AdvisoriesConfig {
            deny_at: Severity::High,
            unknown_severity: Verdict::Deny,
            unfixed: Verdict::Warn,
            informational: Verdict::Warn,
            ignore: vec![],
        },
    )
}

fn evaluate(eco: Ecosystem, name: &str, version: Option<&str>) -> Vec<Finding> {
    let name = PackageName::parse(eco, name).unwrap();
    let version = version.map(|v| Version::parse(eco, v).unwrap());
    let ctx = PackageCtx {
        name: &name,
        version: version.as_ref(),
        metadata: None,
        now: Utc::now(),
    };
    let mut findings = Vec::new();
    check().evaluate(&ctx, &mut findings);
    findings
}

fn cites(findings: &[Finding], id: &str) -> bool {
    findings.iter().any(|f| f.ids.iter().any(|i| i == id))
}

fn rustsec_vulnerable_crate_is_denied_and_its_fix_allowed() {
    // RUSTSEC-2021-0023: rand_core >= 0.6.0, < 0.6.2, CVSS 9.8.
    let bad = evaluate(Ecosystem::CratesIo, "rand_core", Some("0.6.1"));
    let f = bad
        .iter()
        .find(|f| f.ids[0] == "RUSTSEC-2021-0023")
        .unwrap();
    assert_eq!((f.code.as_str(), f.verdict), ("vulnerable", Verdict::Deny));
    assert_eq!(f.fixed_in.as_deref(), Some("0.6.2"));
    assert!(f.ids.contains(&"CVE-2021-27378".to_owned()));
    assert!(
        f.message.starts_with("RUSTSEC-2021-0023 (CVE-2021-27378"),
        "{}",
        f.message
    );
    assert!(!cites(
        &evaluate(Ecosystem::CratesIo, "rand-core", Some("0.6.2")),
        "RUSTSEC-2021-0023"
    ));
    assert!(!cites(
        &evaluate(Ecosystem::CratesIo, "rand_core", Some("0.5.1")),
        "RUSTSEC-2021-0023"
    ));
}

fn rustsec_smallvec_ranges_with_shared_fix() {
    let findings = evaluate(Ecosystem::CratesIo, "smallvec", Some("0.6.7"));
    assert!(cites(&findings, "RUSTSEC-2019-0009") && cites(&findings, "RUSTSEC-2019-0012"));
    let fixed = evaluate(Ecosystem::CratesIo, "smallvec", Some("0.6.10"));
    assert!(!cites(&fixed, "RUSTSEC-2019-0009") && !cites(&fixed, "RUSTSEC-2019-0012"));
}

fn pysec_django_version_is_flagged() {
    let findings = evaluate(Ecosystem::PyPI, "Django", Some("3.2.4"));
    // PYSEC-2021-109: 3.2 <= v < 3.2.5; PYSEC-2021-98 (fixed in 3.2.4) must not match.
    let f = findings
        .iter()
        .find(|f| f.ids[0] == "PYSEC-2021-109")
        .unwrap();
    assert_eq!(f.code, Code::Vulnerable);
    assert_eq!(f.fixed_in.as_deref(), Some("3.2.5"));
    assert!(!cites(&findings, "PYSEC-2021-98"));
    assert!(findings.iter().all(|f| f.verdict >= Verdict::Warn));
    let newer = evaluate(Ecosystem::PyPI, "django", Some("3.2.25"));
    assert!(
        newer.len() < findings.len(),
        "{} vs {}",
        newer.len(),
        findings.len()
    );
}

fn ossf_malicious_names_are_denied_at_every_version() {
    for (eco, name) in [
        (Ecosystem::CratesIo, "rustdecimal"),
        (Ecosystem::Npm, "debuug"),
        (Ecosystem::PyPI, "equests"),
        (Ecosystem::Npm, "semvre"),
    ] {
        for version in [None, Some("0.0.1"), Some("9.9.9")] {
            let findings = evaluate(eco, name, version);
            assert!(
                findings
                    .iter()
                    .any(|f| f.code == Code::KnownMalicious && f.verdict == Verdict::Deny),
                "{name} {version:?}: {findings:?}"
            );
        }
    }
    assert!(cites(
        &evaluate(Ecosystem::CratesIo, "rustdecimal", Some("1.0.0")),
        "MAL-2022-1"
    ));
    assert!(cites(
        &evaluate(Ecosystem::Npm, "semvre", None),
        "OSSF-NPM-2025H2:semvre"
    ));
}

fn version_specific_malicious_records_match_only_their_versions() {
    // MAL-2024-1059 lists booto3 0.0.1 only.
    assert!(evaluate(Ecosystem::PyPI, "booto3", Some("0.0.1"))
        .iter()
        .any(|f| f.code == Code::KnownMalicious));
    assert!(evaluate(Ecosystem::PyPI, "booto3", Some("0.0.2")).is_empty());
    let name_only = evaluate(Ecosystem::PyPI, "booto3", None);
    assert_eq!(name_only.len(), 1);
    assert_eq!(
        (name_only[0].code.as_str(), name_only[0].verdict),
        ("has-malicious-versions", Verdict::Warn)
    );
}

fn compromised_popular_packages_are_denied_only_at_their_versions() {
    let bad = evaluate(Ecosystem::Npm, "debug", Some("4.4.2"));
    assert!(
        bad.iter().any(|f| f.code == Code::KnownMalicious),
        "{bad:?}"
    );
    assert!(evaluate(Ecosystem::Npm, "debug", Some("4.4.1"))
        .iter()
        .all(|f| f.code != Code::KnownMalicious));
    let tiny = evaluate(Ecosystem::Npm, "@ctrl/tinycolor", Some("4.1.1"));
    assert!(tiny.iter().any(|f| f.code == Code::KnownMalicious));
    let name_only = evaluate(Ecosystem::Npm, "chalk", None);
    assert!(name_only
        .iter()
        .any(|f| f.code == Code::HasMaliciousVersions && f.verdict == Verdict::Warn));
    assert!(name_only.iter().all(|f| f.code != Code::KnownMalicious));
}

fn withdrawn_records_are_ignored() {
    // MAL-2024-1722 (account-settings) was withdrawn as a false positive.
    assert!(evaluate(Ecosystem::Npm, "account-settings", Some("1.0.0")).is_empty());
    // PYSEC-2023-73 (redis, all versions) and RUSTSEC-2019-0031 (spin) are withdrawn.
    assert!(!cites(
        &evaluate(Ecosystem::PyPI, "redis", Some("4.5.0")),
        "PYSEC-2023-73"
    ));
    assert!(!cites(
        &evaluate(Ecosystem::CratesIo, "spin", Some("0.4.0")),
        "RUSTSEC-2019-0031"
    ));
    let withdrawn = load_path(&data_dir().join("malicious/ossf/withdrawn/npm.jsonl")).unwrap();
    assert_eq!((withdrawn.records, withdrawn.withdrawn), (55, 55));
    assert!(withdrawn.advisories.is_empty());
}

fn rustsec_informational_advisories_are_separate() {
    let ix = index();
    let counts = ix.counts();
    assert!(counts[&(Ecosystem::CratesIo, "unmaintained")] > 200);
    assert!(counts[&(Ecosystem::CratesIo, "unsound")] > 150);
    // RUSTSEC-2020-0071 is `time`'s vulnerability, not informational; `net2` is unmaintained
    // (RUSTSEC-2020-0016).
    let net2 = evaluate(Ecosystem::CratesIo, "net2", Some("0.2.39"));
    assert!(
        net2.iter()
            .any(|f| f.code == Code::InformationalAdvisory && f.verdict == Verdict::Warn),
        "{net2:?}"
    );
}

fn bundled_snapshot_matches_a_rebuild_from_the_shared_data() {
    let meta = snapshot::bundled_meta().unwrap();
    let out = tempfile::tempdir().unwrap();
    let rebuilt = snapshot::build(&data_dir(), out.path()).unwrap();
    assert_eq!(
        rebuilt.data_sha256, meta.data_sha256,
        "feeds/ is out of date: run `depfw feeds snapshot`"
    );
    assert_eq!(rebuilt.sources, meta.sources);
    let bundled = snapshot::bundled_index().unwrap();
    assert_eq!(bundled.len(), meta.advisories);
    assert!(bundled.revision().starts_with("bundled-"));
    let rustdecimal = PackageName::parse(Ecosystem::CratesIo, "rustdecimal").unwrap();
    assert!(bundled
        .for_package(&rustdecimal)
        .iter()
        .any(|a| a.id == "MAL-2022-1"));
    // Facts only: no advisory prose in the committed file.
    let mut size = 0;
    for ecosystem in Ecosystem::ALL {
        let raw = std::fs::read(Path::new("feeds").join(snapshot::data_file(ecosystem))).unwrap();
        size += raw.len();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&raw[..]), &mut text)
            .unwrap();
        assert!(
            !text.contains("\"summary\"")
                && !text.contains("\"details\"")
                && !text.contains("\"references\"")
        );
    }
    assert!(size < 4 * 1024 * 1024);
    // A scan's own packages: exactly their advisories, with the whole snapshot's revision.
    let apitelegram = PackageName::parse(Ecosystem::Npm, "apitelegram").unwrap();
    let django = PackageName::parse(Ecosystem::PyPI, "Django").unwrap();
    let scanned = [&rustdecimal, &apitelegram, &django];
    let scan =
        snapshot::bundled_index_for(scanned.iter().map(|n| (n.ecosystem(), n.key()))).unwrap();
    assert_eq!(scan.revision(), bundled.revision());
    for name in scanned {
        let ids = |index: &depfw::feeds::AdvisoryIndex| {
            let mut ids: Vec<String> = index
                .for_package(name)
                .iter()
                .map(|a| a.id.clone())
                .collect();
            ids.sort();
            ids
        };
        assert!(!ids(&bundled).is_empty(), "{name}");
        assert_eq!(ids(&scan), ids(&bundled), "{name}");
    }
    let per_package: usize = scanned.iter().map(|n| bundled.for_package(n).len()).sum();
    assert_eq!(scan.len(), per_package);
    let express = PackageName::parse(Ecosystem::Npm, "express").unwrap();
    assert!(scan.for_package(&express).is_empty());
}

/// The upstream directory layout (one file per record, in ecosystem folders).
fn the_ossf_sample_directory_tree_loads() {
    let feed = load_path(&data_dir().join("malicious/ossf-sample")).unwrap();
    assert_eq!(feed.records, 12);
    let counts = feed.counts_by_ecosystem();
    assert_eq!(counts.get(&Ecosystem::CratesIo), Some(&2));
    assert_eq!(counts.get(&Ecosystem::PyPI), Some(&5));
    assert_eq!(counts.get(&Ecosystem::Npm), Some(&5));
    assert!(feed
        .advisories
        .iter()
        .any(|a| a.id == "MAL-2022-1" && a.package == "rustdecimal"));
}

crate::require::trials! {
    [Need::SharedData] =>
        the_ossf_sample_directory_tree_loads,
        rustsec_vulnerable_crate_is_denied_and_its_fix_allowed,
        rustsec_smallvec_ranges_with_shared_fix,
        pysec_django_version_is_flagged,
        ossf_malicious_names_are_denied_at_every_version,
        version_specific_malicious_records_match_only_their_versions,
        compromised_popular_packages_are_denied_only_at_their_versions,
        withdrawn_records_are_ignored,
        rustsec_informational_advisories_are_separate,
        bundled_snapshot_matches_a_rebuild_from_the_shared_data;
}
