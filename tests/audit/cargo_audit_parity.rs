//! `depfw audit` agrees with cargo-audit, an independent reading of the same RustSec data.
//!
//! Each Cargo.lock fixture has `cargo-audit.json` next to it: the output of
//! `cargo audit --db ../shared/data/advisories/rustsec-db --no-fetch --stale --json -f
//! Cargo.lock` with cargo-audit 0.22.2 on RustSec main `bf5c0d24` (the same data as the
//! bundled snapshot's `rustsec` source, OSV branch `7fa931cb`), committed so that CI needs
//! no cargo-audit. depfw runs on its bundled snapshot. Every (package, version, advisory)
//! either tool reports must be reported by the other in the same category, or be listed
//! in [`EXPLAINED`] with the reason; a difference not listed, or an explanation that no
//! longer matches a difference, fails the test. The table is mirrored in `docs/audit.md`.

use std::collections::BTreeSet;

use depfw::audit::run::audit_lockfiles;
use depfw::audit::LockfileKind;
use depfw::config::Config;
use depfw::diag::Code;

/// The Cargo.lock fixtures compared (directories under `tests/fixtures/lockfiles`).
const FIXTURES: &[&str] = &[
    "cargo/rustsec",
    "public/cargo/advent-of-code-2020",
    "public/cargo/game-of-life-rust",
    "public/cargo/rust-maze",
];

/// How each tool files a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Category {
    /// cargo-audit `vulnerabilities`; depfw `vulnerable` (deny or warn by severity).
    Vulnerability,
    /// cargo-audit `warnings.{unmaintained,unsound,notice}`; depfw `informational-advisory`.
    Informational,
    /// cargo-audit `warnings.yanked` (no advisory id).
    Yanked,
}

/// One report: (fixture, crate, version, advisory id or "" for yanked, category).
type Report = (String, String, String, String, Category);

/// Differences that are expected, and why: (fixture, crate, id, which tool reports it, why).
/// Ids are RustSec ids; "" stands for a yanked-crate warning, which has none.
const EXPLAINED: &[(&str, &str, &str, &str, &str)] = &[
    (
        "public/cargo/advent-of-code-2020",
        "crossbeam-deque",
        "",
        "cargo-audit",
        "yanked: cargo-audit reads yanked flags from the crates.io index; a Cargo.lock does \
         not record them and offline depfw has no index (`--online` audits read registry \
         metadata)",
    ),
    (
        "public/cargo/advent-of-code-2020",
        "crossbeam-epoch",
        "",
        "cargo-audit",
        "yanked: see crossbeam-deque",
    ),
    (
        "public/cargo/advent-of-code-2020",
        "crossbeam-utils",
        "",
        "cargo-audit",
        "yanked: see crossbeam-deque",
    ),
];

use crate::support::lockfile;

fn cargo_audit_reports(fixture: &str) -> BTreeSet<Report> {
    let path = lockfile(fixture).join("cargo-audit.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut out = BTreeSet::new();
    let mut add = |entry: &serde_json::Value, category: Category| {
        let package = &entry["package"];
        let id = entry["advisory"]["id"].as_str().unwrap_or("").to_owned();
        out.insert((
            fixture.to_owned(),
            package["name"].as_str().unwrap().to_owned(),
            package["version"].as_str().unwrap().to_owned(),
            id,
            category,
        ));
    };
    for entry in json["vulnerabilities"]["list"].as_array().unwrap() {
        add(entry, Category::Vulnerability);
    }
    for (kind, entries) in json["warnings"].as_object().unwrap() {
        let category = match kind.as_str() {
            "unmaintained" | "unsound" | "notice" => Category::Informational,
            "yanked" => Category::Yanked,
            other => panic!("{fixture}: cargo-audit warning kind `{other}` not mapped"),
        };
        for entry in entries.as_array().unwrap() {
            add(entry, category);
        }
    }
    out
}

fn depfw_reports(engine: &depfw::engine::Engine, fixture: &str) -> BTreeSet<Report> {
    let lockfile = lockfile(fixture).join("Cargo.lock");
    let report = audit_lockfiles(&engine.policy, &[(lockfile, LockfileKind::CargoLock)], &[]);
    assert!(
        report.lockfiles.iter().all(|l| l.error.is_none()),
        "{fixture}: {:?}",
        report.lockfiles
    );
    let mut out = BTreeSet::new();
    for result in &report.results {
        for finding in &result.findings {
            let category = match finding.code.as_str() {
                // An unscored advisory with no fix is a vulnerability under its own code.
                "vulnerable" | "unfixed-advisory" => Category::Vulnerability,
                "informational-advisory" => Category::Informational,
                // Typosquat, license and other depfw-only checks have no cargo-audit twin.
                _ => continue,
            };
            // The first id is the advisory's own; the rest are aliases (CVE, GHSA).
            let id = finding.ids.first().unwrap().clone();
            out.insert((
                fixture.to_owned(),
                result.name.clone(),
                result.version.clone(),
                id,
                category,
            ));
        }
    }
    out
}

#[test]
fn depfw_and_cargo_audit_report_the_same_rustsec_advisories() {
    let engine = depfw::engine::load(&Config::default(), None).unwrap();
    let mut unexplained = Vec::new();
    let mut used = BTreeSet::new();
    let mut agreed = 0;
    for fixture in FIXTURES {
        let theirs = cargo_audit_reports(fixture);
        let ours = depfw_reports(&engine, fixture);
        agreed += theirs.intersection(&ours).count();
        let differences = theirs
            .difference(&ours)
            .map(|r| (r, "cargo-audit"))
            .chain(ours.difference(&theirs).map(|r| (r, "depfw")));
        for ((fixture, name, version, id, category), only_in) in differences {
            let explanation = EXPLAINED.iter().position(|(f, n, i, tool, _)| {
                f == fixture && n == name && i == id && *tool == only_in
            });
            match explanation {
                Some(i) => {
                    used.insert(i);
                }
                None => unexplained.push(format!(
                    "{fixture}: {name}@{version} {id:?} ({category:?}) only in {only_in}"
                )),
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "unexplained differences:\n{}",
        unexplained.join("\n")
    );
    let stale: Vec<_> = (0..EXPLAINED.len())
        .filter(|i| !used.contains(i))
        .map(|i| EXPLAINED[i])
        .collect();
    assert!(
        stale.is_empty(),
        "explanations without a difference: {stale:?}"
    );
    // Both tools found a good number of advisories in agreement, not two empty sets.
    assert!(agreed >= 14, "only {agreed} reports in agreement");
}

/// A category mismatch is a difference too: an informational advisory depfw filed as a
/// vulnerability would not match cargo-audit's warning.
#[test]
fn informational_advisories_stay_warnings_and_vulnerabilities_deny_or_warn() {
    let engine = depfw::engine::load(&Config::default(), None).unwrap();
    let lockfile = lockfile("public/cargo/advent-of-code-2020/Cargo.lock");
    let report = audit_lockfiles(&engine.policy, &[(lockfile, LockfileKind::CargoLock)], &[]);
    let gcc = report.results.iter().find(|r| r.name == "gcc").unwrap();
    assert_eq!(gcc.verdict, depfw::policy::Verdict::Warn);
    assert_eq!(gcc.findings[0].code, Code::InformationalAdvisory);
    let regex = report.results.iter().find(|r| r.name == "regex").unwrap();
    assert_eq!(regex.verdict, depfw::policy::Verdict::Deny);
    assert_eq!(regex.upgrade_to.as_deref(), Some("1.5.5"));
}

/// The human table names the version to move to, and spells RustSec's synthetic
/// "next possible version" fixes (`0.2.37-0`) as a range a person can act on.
#[test]
fn the_human_table_shows_the_fix_to_move_to() {
    let engine = depfw::engine::load(&Config::default(), None).unwrap();
    let lockfile = lockfile("public/cargo/advent-of-code-2020/Cargo.lock");
    let report = audit_lockfiles(&engine.policy, &[(lockfile, LockfileKind::CargoLock)], &[]);
    let mut out = Vec::new();
    depfw::report::render_human(&report, false, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let fixes: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("fix: upgrade to "))
        .collect();
    assert!(fixes.contains(&"1.5.5"), "{text}");
    assert!(fixes.contains(&"0.8.1"), "{text}");
    assert!(fixes.contains(&">= 0.2.37"), "{text}");
    assert!(fixes.iter().all(|f| !f.ends_with("-0")), "{text}");
    // No fix is offered where no advisory names one (gcc is unmaintained, full stop).
    let gcc = text.lines().position(|l| l.contains("gcc@0.3.55")).unwrap();
    assert!(
        !text.lines().nth(gcc + 1).unwrap().contains("fix:"),
        "{text}"
    );
}
