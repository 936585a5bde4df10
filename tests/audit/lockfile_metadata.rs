//! What a lockfile records about a version (npm v2/v3: `license`, `hasInstallScript`,
//! `deprecated`) reaches the license and reputation checks offline, with the verdicts the
//! proxy would give the same metadata; lockfiles that record none of it stay silent.

use std::path::PathBuf;

use depfw::audit::run::audit_lockfiles;
use depfw::audit::{parse_lockfile, LockfileKind};
use depfw::config::Config;
use depfw::diag::Code;
use depfw::policy::{PackageCtx, Verdict};
use depfw::report::AuditReport;

/// A v3 lockfile in npm's own layout (fields as npm 10 writes them).
const V3: &str = r#"{
  "name": "app",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": { "name": "app", "version": "1.0.0", "license": "MIT" },
    "node_modules/esbuild": {
      "version": "0.21.5",
      "resolved": "https://registry.npmjs.org/esbuild/-/esbuild-0.21.5.tgz",
      "integrity": "sha512-mg3OPMV4hXywwpoDxu3Qda5xCKQi+vCTZq8S9J/EpkhB2HzKXq4SNFZE3+NK93JYxc8VMSep+lOUSC/RVKaBqw==",
      "hasInstallScript": true,
      "license": "MIT"
    },
    "node_modules/ghostscript4js": {
      "version": "3.2.3",
      "resolved": "https://registry.npmjs.org/ghostscript4js/-/ghostscript4js-3.2.3.tgz",
      "integrity": "sha512-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
      "license": "AGPL-3.0-only"
    },
    "node_modules/left-pad": {
      "version": "1.3.0",
      "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz",
      "integrity": "sha512-XI5MPzVNApjAyhQzphX8BkmKsKUxD4LdyK24iZeQEvRfKl5+2sxsDhEC36pj+9cuUAiDdHQIBLzOdiozdT1WA==",
      "deprecated": "use String.prototype.padStart()",
      "license": "WTFPL"
    },
    "node_modules/no-license-here": {
      "version": "1.0.0",
      "resolved": "https://registry.npmjs.org/no-license-here/-/no-license-here-1.0.0.tgz",
      "integrity": "sha512-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=="
    },
    "node_modules/is-number": {
      "version": "7.0.0",
      "resolved": "https://registry.npmjs.org/is-number/-/is-number-7.0.0.tgz",
      "integrity": "sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng==",
      "license": "MIT"
    }
  }
}"#;

fn audit(text: &str) -> AuditReport {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("package-lock.json");
    std::fs::write(&path, text).unwrap();
    let engine = depfw::engine::load(&Config::default(), None).unwrap();
    audit_lockfiles(&engine.policy, &[(path, LockfileKind::PackageLock)], &[])
}

fn codes(report: &AuditReport, name: &str) -> (Verdict, Vec<String>) {
    let result = report
        .results
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no result for {name}: {:#?}", report.results));
    (
        result.verdict,
        result.findings.iter().map(|f| f.code.to_string()).collect(),
    )
}

#[test]
fn npm_v3_license_install_script_and_deprecation_are_judged_offline() {
    let report = audit(V3);
    assert_eq!(
        codes(&report, "esbuild"),
        (Verdict::Warn, vec!["install-scripts".to_owned()])
    );
    assert_eq!(
        codes(&report, "ghostscript4js"),
        (Verdict::Deny, vec!["license-denied".to_owned()])
    );
    assert_eq!(
        codes(&report, "left-pad"),
        (Verdict::Warn, vec!["deprecated".to_owned()])
    );
    // npm leaves `license` out of many entries whatever the package declares: absent means
    // unknown, and an unknown license is never reported as a missing one.
    assert!(
        report.results.iter().all(|r| r.name != "no-license-here"),
        "{:#?}",
        report.results
    );
    assert!(report.results.iter().all(|r| r.name != "is-number"));
}

#[test]
fn the_audit_gives_the_verdict_the_proxy_gives_the_same_metadata() {
    // The proxy builds `VersionMetadata` from the packument; feed the parsed one through
    // `Policy::evaluate` directly and compare with the audit's result.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("package-lock.json");
    let lockfile = parse_lockfile(&path, LockfileKind::PackageLock, V3).unwrap();
    let engine = depfw::engine::load(&Config::default(), None).unwrap();
    let report = audit(V3);
    for package in lockfile.packages {
        let name = depfw::package::PackageName::parse(package.ecosystem, &package.name).unwrap();
        let version = depfw::package::Version::parse(package.ecosystem, &package.version).unwrap();
        let decision = engine.policy.evaluate(&PackageCtx {
            name: &name,
            version: Some(&version),
            metadata: package.metadata.as_ref(),
            now: chrono::Utc::now(),
        });
        let audited = report
            .results
            .iter()
            .find(|r| r.name == package.name)
            .map_or(Verdict::Allow, |r| r.verdict);
        assert_eq!(decision.verdict, audited, "{}", package.name);
    }
}

#[test]
fn lockfiles_without_license_fields_raise_no_license_findings() {
    // The same packages with every `license` removed: a writer that does not record them
    // says nothing about licenses, so nothing is reported as missing.
    let stripped: String = V3
        .lines()
        .filter(|l| !l.trim_start().starts_with("\"license\""))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace(
            "\"hasInstallScript\": true,\n",
            "\"hasInstallScript\": true\n",
        )
        .replace(
            "\"deprecated\": \"use String.prototype.padStart()\",\n",
            "\"deprecated\": \"use String.prototype.padStart()\"\n",
        );
    let report = audit(&stripped);
    assert!(
        report.results.iter().flat_map(|r| &r.findings).all(|f| !f
            .code
            .as_str()
            .starts_with("license-")
            && f.code != Code::InstallScripts),
        "{:#?}",
        report.results
    );
}
