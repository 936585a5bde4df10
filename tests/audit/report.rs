//! The three `depfw audit` renderers on one hand-built report.

use std::path::{Path, PathBuf};

use depfw::audit::LockfileKind;
use depfw::diag::Code;
use depfw::package::Ecosystem;
use depfw::policy::{Finding, Severity, Verdict};
use depfw::report::{
    render_human, render_json, render_sarif_with_root, AuditReport, AuditResult, LockfileSummary,
};
use serde_json::Value;

fn finding(code: Code, severity: Severity, verdict: Verdict, message: &str) -> Finding {
    Finding::new(code, severity, verdict, message.to_owned())
}

fn lockfile(
    path: &str,
    kind: LockfileKind,
    packages: usize,
    error: Option<&str>,
) -> LockfileSummary {
    LockfileSummary {
        path: PathBuf::from(path),
        kind: Some(kind),
        packages,
        error: error.map(str::to_owned),
    }
}

/// A deny with two advisories (two fixed versions), a quarantine, a warn, and a lockfile that
/// did not parse.
fn report() -> AuditReport {
    let mut prototype = finding(
        Code::Vulnerable,
        Severity::High,
        Verdict::Deny,
        "Prototype pollution in lodash",
    );
    prototype.ids = vec!["GHSA-p6mc-m468-83gw".to_owned(), "CVE-2020-8203".to_owned()];
    prototype.fixed_in = Some("4.17.21".to_owned());
    let mut redos = finding(
        Code::Vulnerable,
        Severity::Medium,
        Verdict::Warn,
        "ReDoS in lodash",
    );
    redos.ids = vec!["GHSA-29mw-wpgm-hmr9".to_owned()];
    redos.fixed_in = Some("4.17.9".to_owned());

    AuditReport {
        packages_scanned: 57,
        lockfiles: vec![
            lockfile("web/package-lock.json", LockfileKind::PackageLock, 40, None),
            lockfile("api/uv.lock", LockfileKind::UvLock, 12, None),
            lockfile("Cargo.lock", LockfileKind::CargoLock, 5, None),
            lockfile(
                "legacy/yarn.lock",
                LockfileKind::YarnLock,
                0,
                Some("line 3: unexpected indentation"),
            ),
        ],
        results: vec![
            AuditResult {
                ecosystem: Ecosystem::Npm,
                name: "lodash".to_owned(),
                version: "4.17.4".to_owned(),
                lockfile: PathBuf::from("web/package-lock.json"),
                line: Some(120),
                verdict: Verdict::Deny,
                ids: vec![
                    "GHSA-p6mc-m468-83gw".to_owned(),
                    "CVE-2020-8203".to_owned(),
                    "GHSA-29mw-wpgm-hmr9".to_owned(),
                ],
                findings: vec![prototype, redos],
                upgrade_to: Some("4.17.21".to_owned()),
            },
            AuditResult {
                ecosystem: Ecosystem::PyPI,
                name: "requests".to_owned(),
                version: "2.99.0".to_owned(),
                lockfile: PathBuf::from("api/uv.lock"),
                line: Some(40),
                verdict: Verdict::Quarantine,
                ids: Vec::new(),
                findings: vec![finding(
                    Code::ReleaseCooldown,
                    Severity::Low,
                    Verdict::Quarantine,
                    "published 3h 0m ago, within the 48h cooldown",
                )],
                upgrade_to: None,
            },
            AuditResult {
                ecosystem: Ecosystem::CratesIo,
                name: "tiny-thing".to_owned(),
                version: "0.1.0".to_owned(),
                lockfile: PathBuf::from("Cargo.lock"),
                line: None,
                verdict: Verdict::Warn,
                ids: Vec::new(),
                findings: vec![finding(
                    Code::LicenseMissing,
                    Severity::Low,
                    Verdict::Warn,
                    "no license declared",
                )],
                upgrade_to: None,
            },
        ],
    }
}

fn human(report: &AuditReport, color: bool) -> String {
    let mut out = Vec::new();
    render_human(report, color, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn json(report: &AuditReport) -> Value {
    let mut out = Vec::new();
    render_json(report, &mut out).unwrap();
    serde_json::from_slice(&out).unwrap()
}

fn sarif(report: &AuditReport, root: Option<&Path>) -> Value {
    let mut out = Vec::new();
    render_sarif_with_root(report, root, &mut out).unwrap();
    serde_json::from_slice(&out).unwrap()
}

// ---- model helpers ----

#[test]
fn counts_and_upgrade_target() {
    let report = report();
    let counts = report.counts();
    assert_eq!(
        (counts.denied, counts.quarantined, counts.warnings),
        (1, 1, 1)
    );
    assert!(!report.results[0].fixes_all_refused());
    assert!(!report.results[1].fixes_all_refused());
    let errors: Vec<_> = report.lockfile_errors().collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].1, "line 3: unexpected indentation");
    // A parse error that names its file does not repeat the path.
    let mut named = report.clone();
    named.lockfiles[3].error = Some("legacy/yarn.lock: line 3: bad".to_owned());
    assert_eq!(named.lockfile_errors().next().unwrap().1, "line 3: bad");
}

// ---- human ----

#[test]
fn human_groups_by_verdict_worst_first() {
    let text = human(&report(), false);
    let deny = text.find("DENY (1)").unwrap();
    let quarantine = text.find("QUARANTINE (1)").unwrap();
    let warn = text.find("WARN (1)").unwrap();
    assert!(deny < quarantine && quarantine < warn, "{text}");
    let lodash = text.find("lodash@4.17.4").unwrap();
    let requests = text.find("requests@2.99.0").unwrap();
    let tiny = text.find("tiny-thing@0.1.0").unwrap();
    assert!(deny < lodash && lodash < quarantine);
    assert!(quarantine < requests && requests < warn);
    assert!(warn < tiny);
}

#[test]
fn human_rows_carry_location_ids_reasons_and_fix() {
    let text = human(&report(), false);
    let row = text.lines().find(|l| l.contains("lodash@4.17.4")).unwrap();
    assert!(row.contains("npm"));
    assert!(row.contains("web/package-lock.json:120"));
    assert!(row.contains("GHSA-p6mc-m468-83gw, CVE-2020-8203"));
    assert!(row.contains("vulnerable: Prototype pollution in lodash"));
    // The warn-level advisory and the fix are continuation lines of the same row.
    assert!(text.contains("vulnerable: ReDoS in lodash"));
    assert!(text.contains("fix: upgrade to 4.17.21"));
    assert!(!text.contains("upgrade to 4.17.9"));
    let cargo = text.lines().find(|l| l.contains("tiny-thing")).unwrap();
    assert!(cargo.contains("Cargo.lock"));
    assert!(
        !cargo.contains("Cargo.lock:"),
        "no line number when unknown"
    );
}

#[test]
fn human_columns_line_up() {
    let text = human(&report(), false);
    let column = |needle: &str| {
        let line = text.lines().find(|l| l.contains(needle)).unwrap();
        line.find(needle).unwrap()
    };
    let header = text.lines().find(|l| l.contains("ECOSYSTEM")).unwrap();
    let package_col = header.find("PACKAGE").unwrap();
    assert_eq!(column("lodash@"), package_col);
    assert_eq!(column("requests@"), package_col);
    assert_eq!(column("tiny-thing@"), package_col);
    let reason_col = header.find("REASON").unwrap();
    assert_eq!(column("vulnerable: Prototype"), reason_col);
    assert_eq!(column("vulnerable: ReDoS"), reason_col);
    assert_eq!(column("license-missing:"), reason_col);
}

#[test]
fn human_lists_lockfile_errors_and_summary() {
    let text = human(&report(), false);
    assert!(text.contains("LOCKFILE ERRORS (1)"));
    assert!(text.contains("legacy/yarn.lock: line 3: unexpected indentation"));
    assert!(
        !text.contains("No problems found."),
        "lockfile errors are problems"
    );
    assert_eq!(
        text.lines().last().unwrap(),
        "57 packages in 4 lockfiles: 1 denied, 1 quarantined, 1 warning"
    );
}

#[test]
fn human_colour_only_when_asked() {
    let plain = human(&report(), false);
    assert!(!plain.contains('\u{1b}'));
    let coloured = human(&report(), true);
    // Bold red for deny, bold yellow for quarantine, each reset after.
    assert!(
        coloured.contains("\u{1b}[1m\u{1b}[31mDENY (1)\u{1b}[0m"),
        "{coloured:?}"
    );
    assert!(coloured.contains("\u{1b}[1m\u{1b}[33mQUARANTINE (1)\u{1b}[0m"));
    // Same text once the escapes are stripped.
    let stripped = strip_ansi(&coloured);
    assert_eq!(stripped, plain);
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn human_clean_report() {
    let report = AuditReport {
        packages_scanned: 1,
        lockfiles: vec![lockfile("Cargo.lock", LockfileKind::CargoLock, 1, None)],
        results: Vec::new(),
    };
    let text = human(&report, false);
    assert!(text.contains("No problems found."));
    assert!(!text.contains("ECOSYSTEM"));
    assert!(text.ends_with("1 package in 1 lockfile: 0 denied, 0 quarantined, 0 warnings\n"));
}

// ---- json ----

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[test]
fn json_top_level_shape() {
    let doc = json(&report());
    assert_eq!(keys(&doc), ["lockfiles", "packages_scanned", "results"]);
    assert_eq!(doc["packages_scanned"], 57);
    let lockfiles = doc["lockfiles"].as_array().unwrap();
    assert_eq!(lockfiles.len(), 4);
    assert_eq!(lockfiles[0]["path"], "web/package-lock.json");
    assert_eq!(lockfiles[0]["kind"], "package-lock");
    assert_eq!(lockfiles[0]["packages"], 40);
    assert!(lockfiles[0].get("error").is_none());
    assert_eq!(lockfiles[3]["error"], "line 3: unexpected indentation");

    let mut unreadable = report();
    unreadable.lockfiles[3].kind = None;
    assert_eq!(json(&unreadable)["lockfiles"][3]["kind"], Value::Null);
}

#[test]
fn json_results_and_findings() {
    let doc = json(&report());
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    let lodash = &results[0];
    assert_eq!(
        keys(lodash),
        [
            "ecosystem",
            "findings",
            "ids",
            "line",
            "lockfile",
            "name",
            "upgrade_to",
            "verdict",
            "version"
        ]
    );
    assert_eq!(lodash["ecosystem"], "npm");
    assert_eq!(lodash["name"], "lodash");
    assert_eq!(lodash["version"], "4.17.4");
    assert_eq!(lodash["lockfile"], "web/package-lock.json");
    assert_eq!(lodash["line"], 120);
    assert_eq!(lodash["verdict"], "deny");
    assert_eq!(lodash["ids"].as_array().unwrap().len(), 3);
    let first = &lodash["findings"][0];
    assert_eq!(
        keys(first),
        ["check", "code", "fixed_in", "ids", "message", "severity", "verdict"]
    );
    assert_eq!(first["check"], "advisories");
    assert_eq!(first["code"], "vulnerable");
    assert_eq!(first["severity"], "high");
    assert_eq!(first["fixed_in"], "4.17.21");
    assert_eq!(first["ids"][1], "CVE-2020-8203");

    assert_eq!(results[1]["ecosystem"], "PyPI");
    assert_eq!(results[1]["verdict"], "quarantine");
    let cargo = &results[2];
    assert_eq!(cargo["ecosystem"], "crates.io");
    assert!(cargo.get("line").is_none());
    // ids are always present, even when empty.
    assert_eq!(cargo["ids"], Value::Array(Vec::new()));
    assert_eq!(cargo["findings"][0]["ids"], Value::Array(Vec::new()));
    assert!(cargo["findings"][0].get("fixed_in").is_none());
}

// ---- sarif ----

#[test]
fn sarif_envelope_and_driver() {
    let doc = sarif(&report(), None);
    assert_eq!(doc["version"], "2.1.0");
    assert!(doc["$schema"]
        .as_str()
        .unwrap()
        .contains("sarif-schema-2.1.0"));
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "depfw");
    assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
    if let Some(uri) = driver.get("informationUri") {
        assert!(uri.as_str().unwrap().starts_with("https://"));
    }
}

#[test]
fn sarif_rules_one_per_code_with_descriptions_and_severity() {
    let doc = sarif(&report(), None);
    let rules = doc["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["license-missing", "release-cooldown", "vulnerable"]);
    for rule in rules {
        for key in ["shortDescription", "fullDescription", "help"] {
            assert!(!rule[key]["text"].as_str().unwrap().is_empty(), "{rule}");
        }
    }
    let vulnerable = &rules[2];
    // The worst of high and medium.
    assert_eq!(vulnerable["properties"]["security-severity"], "8.0");
    assert_eq!(vulnerable["properties"]["tags"][0], "security");
    assert_eq!(vulnerable["defaultConfiguration"]["level"], "error");
    // Only advisory findings carry a security severity.
    assert!(rules[0]["properties"].get("security-severity").is_none());
    assert!(rules[1]["properties"].get("security-severity").is_none());
}

/// Rule texts and default levels come from the code registry: a code's default verdict sets
/// the rule's level whatever this run's results were (they carry their own), and a code
/// without SARIF texts there gets generic ones.
#[test]
fn sarif_rules_come_from_the_code_registry() {
    let mut report = report();
    report.results[0].findings.remove(0);
    report.results[0].verdict = Verdict::Warn;
    report.results[1].findings = vec![finding(
        Code::PossibleTyposquat,
        Severity::High,
        Verdict::Quarantine,
        "`reqests` looks like a typosquat of `requests`",
    )];
    report.results[2].findings = vec![finding(
        Code::InformationalAdvisory,
        Severity::Info,
        Verdict::Warn,
        "RUSTSEC-2020-0071: unmaintained",
    )];
    let doc = sarif(&report, None);
    let rules = doc["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    let rule = |id: &str| rules.iter().find(|r| r["id"] == id).unwrap().clone();

    let vulnerable = rule("vulnerable");
    assert_eq!(vulnerable["defaultConfiguration"]["level"], "error");
    assert_eq!(doc["runs"][0]["results"][0]["level"], "warning");

    let typosquat = rule("possible-typosquat");
    assert_eq!(typosquat["name"], "possible-typosquat");
    assert_eq!(typosquat["shortDescription"]["text"], "Possible typosquat");
    assert_eq!(
        typosquat["fullDescription"]["text"],
        Code::PossibleTyposquat.description()
    );
    assert_eq!(typosquat["defaultConfiguration"]["level"], "error");

    let informational = rule("informational-advisory");
    assert_eq!(
        informational["shortDescription"]["text"],
        "depfw `informational-advisory` finding"
    );
    assert_eq!(informational["defaultConfiguration"]["level"], "warning");
}

#[test]
fn sarif_results_are_valid_for_github() {
    let doc = sarif(&report(), None);
    let run = &doc["runs"][0];
    let rule_ids: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let results = run["results"].as_array().unwrap();
    // One per finding: two for lodash, one each for the others.
    assert_eq!(results.len(), 4);
    for result in results {
        assert!(rule_ids.contains(&result["ruleId"].as_str().unwrap()));
        assert!(["error", "warning", "note"].contains(&result["level"].as_str().unwrap()));
        assert!(!result["message"]["text"].as_str().unwrap().is_empty());
        let location = &result["locations"][0]["physicalLocation"];
        let uri = location["artifactLocation"]["uri"].as_str().unwrap();
        assert!(!uri.starts_with('/') && !uri.contains('\\'), "{uri}");
        assert_eq!(location["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        assert!(location["region"]["startLine"].as_u64().unwrap() >= 1);
        let fingerprint = result["partialFingerprints"]["depfw/v1"].as_str().unwrap();
        assert_eq!(fingerprint.len(), 32);
    }
    let levels: Vec<&str> = results
        .iter()
        .map(|r| r["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["error", "warning", "error", "warning"]);
    let lodash = &results[0];
    assert_eq!(
        lodash["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "web/package-lock.json"
    );
    assert_eq!(
        lodash["locations"][0]["physicalLocation"]["region"]["startLine"],
        120
    );
    let text = lodash["message"]["text"].as_str().unwrap();
    assert!(text.contains("lodash@4.17.4"));
    assert!(text.contains("GHSA-p6mc-m468-83gw"));
    assert!(text.contains("Upgrade to 4.17.21"));
    // Unknown line falls back to 1.
    assert_eq!(
        results[3]["locations"][0]["physicalLocation"]["region"]["startLine"],
        1
    );
}

#[test]
fn sarif_fingerprints_are_stable_and_distinct() {
    let a = sarif(&report(), None);
    let mut moved = report();
    moved.results[0].line = Some(999);
    let b = sarif(&moved, None);
    let fp = |doc: &Value, i: usize| doc["runs"][0]["results"][i]["partialFingerprints"].clone();
    // The line moved; the alert is the same.
    assert_eq!(fp(&a, 0), fp(&b, 0));
    // Two findings with the same code on the same package share identity; different codes
    // and packages do not.
    assert_ne!(fp(&a, 0), fp(&a, 2));
    assert_ne!(fp(&a, 2), fp(&a, 3));
    let mut bumped = report();
    bumped.results[0].version = "4.17.5".to_owned();
    assert_ne!(fp(&a, 0), fp(&sarif(&bumped, None), 0));
}

#[test]
fn sarif_lockfile_errors_become_notifications() {
    let doc = sarif(&report(), None);
    let invocation = &doc["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    let notes = invocation["toolExecutionNotifications"].as_array().unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["level"], "error");
    assert!(notes[0]["message"]["text"]
        .as_str()
        .unwrap()
        .contains("unexpected indentation"));
}

#[test]
fn sarif_absolute_paths_are_made_relative_and_encoded() {
    let mut report = report();
    report.results[0].lockfile = PathBuf::from("/repo/web app/package-lock.json");
    report.results[1].lockfile = PathBuf::from("/elsewhere/uv.lock");
    let doc = sarif(&report, Some(Path::new("/repo")));
    let artifact = |i: usize| {
        doc["runs"][0]["results"][i]["locations"][0]["physicalLocation"]["artifactLocation"].clone()
    };
    assert_eq!(artifact(0)["uri"], "web%20app/package-lock.json");
    assert_eq!(artifact(0)["uriBaseId"], "%SRCROOT%");
    // Outside the root: an absolute file URI, which no base can resolve.
    assert_eq!(artifact(2)["uri"], "file:///elsewhere/uv.lock");
    assert!(artifact(2).get("uriBaseId").is_none());
}

#[test]
fn sarif_override_allowed_package_is_only_a_note() {
    let mut report = report();
    report.results[0].verdict = Verdict::Allow;
    let doc = sarif(&report, None);
    assert_eq!(doc["runs"][0]["results"][0]["level"], "note");
    assert_eq!(doc["runs"][0]["results"][2]["level"], "error");
}

/// The fix `depfw audit` suggests is one its own policy allows: the bundled advisories name
/// 3.1.12 as a fix for Django 3.0, and later advisories cover 3.1.12 itself.
#[test]
fn the_suggested_fix_is_a_version_the_policy_allows() {
    use depfw::package::{PackageName, Version};
    use depfw::policy::PackageCtx;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requirements.txt");
    std::fs::write(&path, "django==3.0\n").unwrap();
    let engine = depfw::engine::load(&depfw::config::Config::default(), None).unwrap();
    let report = depfw::audit::run::audit_lockfiles(
        &engine.policy,
        &[(path, LockfileKind::Requirements)],
        &[],
    );
    let django = &report.results[0];
    assert_eq!(django.verdict, Verdict::Deny);
    let named: Vec<&str> = django
        .findings
        .iter()
        .filter_map(|f| f.fixed_in.as_deref())
        .collect();
    assert!(named.contains(&"3.1.12"), "{named:?}");
    let suggested = django.upgrade_to.as_deref().expect("a fix is suggested");
    let name = PackageName::parse(Ecosystem::PyPI, "django").unwrap();
    let version = Version::parse(Ecosystem::PyPI, suggested).unwrap();
    let decision = engine.policy.evaluate(&PackageCtx {
        name: &name,
        version: Some(&version),
        metadata: None,
        now: chrono::Utc::now(),
    });
    assert!(
        decision.verdict.is_servable(),
        "suggested {suggested}: {}",
        decision.summary()
    );
    let mut out = Vec::new();
    render_human(&report, false, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(&format!("fix: upgrade to {suggested}")),
        "{text}"
    );
    assert!(!text.contains("fix: upgrade to 3.1.12"), "{text}");
}

/// Issue #16: the table was ~650 columns wide on a real package-lock.json. Fitted to a
/// width, no line is wider: long packages and paths are shortened with `…`, ids stack and
/// reasons wrap; nothing is lost but the middle of an over-long name or path.
#[test]
fn human_table_fits_the_width_it_is_given() {
    let mut report = report();
    let mut many = finding(
        Code::Vulnerable,
        Severity::High,
        Verdict::Deny,
        &"a very long advisory summary that goes on and on ".repeat(6),
    );
    many.ids = (0..12).map(|i| format!("GHSA-aaaa-bbbb-{i:04}")).collect();
    report.results.push(AuditResult {
        ecosystem: Ecosystem::Npm,
        name: "@some-organisation/an-extremely-long-package-name-for-a-table".to_owned(),
        version: "1.2.3-beta.4".to_owned(),
        lockfile: PathBuf::from(
            "services/frontend/packages/design-system/node-projects/web/package-lock.json",
        ),
        line: Some(123_456),
        verdict: Verdict::Deny,
        ids: many.ids.clone(),
        findings: vec![many],
        upgrade_to: None,
    });
    let whole = human(&report, false);
    assert!(
        whole.lines().any(|l| l.chars().count() > 300),
        "unfitted, rows stay whole: {whole}"
    );
    for width in [80, 120, 200] {
        let mut out = Vec::new();
        depfw::report::render_human_width(&report, false, Some(width), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let table: Vec<&str> = text
            .lines()
            .take_while(|l| !l.starts_with("LOCKFILE ERRORS"))
            .collect();
        for line in &table {
            assert!(line.chars().count() <= width, "{width}: {line:?}\n{text}");
        }
        // Every id and every word of the reasons is still there.
        for i in 0..12 {
            assert!(text.contains(&format!("GHSA-aaaa-bbbb-{i:04}")), "{text}");
        }
        assert_eq!(
            text.matches("advisory").count(),
            whole.matches("advisory").count(),
            "{text}"
        );
        assert!(text.contains(":123456"), "the line number is kept: {text}");
        assert!(text.contains("…"), "{text}");
        assert!(text.contains("1.2.3-beta.4"), "the version is kept: {text}");
    }
}
