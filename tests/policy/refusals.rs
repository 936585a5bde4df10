//! The latest release of each of the top packages, `depfw check`ed offline with the default
//! policy (advisories, names, overrides: what `depfw check` runs without registry
//! metadata): every refusal must be one that `docs/refusals.md` explains, and every row
//! there must still be a refusal. A user who sees the current scrapy refused turns depfw
//! off, so a new refusal of a latest release is a decision to review, not a side effect.

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::Utc;
use depfw::config::Config;
use depfw::package::{Ecosystem, PackageRef};
use depfw::policy::PackageCtx;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `ecosystem | package | version | verdict | codes`, one per refused release.
type Row = [String; 5];

fn refused(eco: Ecosystem, file: &str) -> (usize, BTreeSet<Row>) {
    let engine = depfw::engine::load(&Config::default(), None).unwrap();
    let text = std::fs::read_to_string(repo().join("tests/fixtures/latest").join(file)).unwrap();
    let specs: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let now = Utc::now();
    let mut rows = BTreeSet::new();
    for spec in &specs {
        let package = PackageRef::parse_spec(eco, spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        let decision = engine.policy.evaluate(&PackageCtx {
            name: &package.name,
            version: package.version.as_ref(),
            metadata: None,
            now,
        });
        if decision.verdict.is_servable() {
            continue;
        }
        let mut codes: Vec<String> = decision
            .findings
            .iter()
            .filter(|f| f.verdict == decision.verdict)
            .map(|f| f.code.to_string())
            .collect();
        codes.sort();
        codes.dedup();
        rows.insert([
            eco.to_string(),
            package.name.to_string(),
            package.version.map(|v| v.to_string()).unwrap_or_default(),
            decision.verdict.to_string(),
            codes.join(", "),
        ]);
    }
    (specs.len(), rows)
}

/// The rows of the table in `docs/refusals.md`, with their explanations (the last cell).
fn documented() -> Vec<(Row, String)> {
    let text = std::fs::read_to_string(repo().join("docs/refusals.md")).unwrap();
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.starts_with("| ecosystem | package |") {
            in_table = true;
            continue;
        }
        if !in_table || line.starts_with("|---") {
            continue;
        }
        let Some(inner) = line.strip_prefix('|').and_then(|l| l.strip_suffix('|')) else {
            in_table = false;
            continue;
        };
        let cells: Vec<String> = inner
            .split(" | ")
            .map(|c| c.trim().trim_matches('`').to_owned())
            .collect();
        assert_eq!(cells.len(), 6, "docs/refusals.md: six cells: {line}");
        let row = [
            cells[0].clone(),
            cells[1].clone(),
            cells[2].clone(),
            cells[3].clone(),
            cells[4].replace('`', ""),
        ];
        rows.push((row, cells[5].clone()));
    }
    rows
}

#[test]
fn every_refused_latest_release_is_explained() {
    let mut actual = BTreeSet::new();
    let mut checked = Vec::new();
    for (eco, file) in [
        (Ecosystem::Npm, "npm.txt"),
        (Ecosystem::PyPI, "pypi.txt"),
        (Ecosystem::CratesIo, "crates-io.txt"),
    ] {
        let (count, rows) = refused(eco, file);
        checked.push(format!("{eco}: {} of {count} refused", rows.len()));
        actual.extend(rows);
    }
    let documented = documented();
    for (row, why) in &documented {
        assert!(
            why.len() > 20,
            "docs/refusals.md: explain {} {}@{}",
            row[0],
            row[1],
            row[2]
        );
    }
    let documented: BTreeSet<Row> = documented.into_iter().map(|(r, _)| r).collect();
    let table = |rows: &BTreeSet<Row>| {
        rows.iter()
            .map(|r| {
                format!(
                    "| {} | `{}` | {} | {} | `{}` | |",
                    r[0], r[1], r[2], r[3], r[4]
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let new: BTreeSet<Row> = actual.difference(&documented).cloned().collect();
    let gone: BTreeSet<Row> = documented.difference(&actual).cloned().collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "{}\nrefused but not in docs/refusals.md:\n{}\nin docs/refusals.md but not refused:\n{}",
        checked.join("; "),
        table(&new),
        table(&gone)
    );
}
