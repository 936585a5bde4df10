//! The finding codes are a public contract (CI filters on them): `depfw::diag::Code` is
//! their one list, and these tests hold what users read to it. `docs/codes.md` is
//! generated from it, the README's code table is checked against it, the default verdicts
//! against the default config, and a snapshot of the list fails when a code is renamed or
//! removed.

use std::fmt::Write as _;
use std::path::Path;

use depfw::config::Config;
use depfw::diag::Code;
use depfw::policy::Severity;

use crate::support::repo;

/// Set to rewrite `docs/codes.md` instead of comparing it.
const BLESS: &str = "DEPFW_BLESS";

/// `docs/codes.md`, from the registry.
fn codes_md() -> String {
    let mut out = String::from(
        "<!-- Generated from depfw::diag::Code by tests/policy/codes.rs: do not edit.
     Regenerate with `DEPFW_BLESS=1 cargo test --test policy codes::`. -->

# Finding codes

Every reason depfw gives for a verdict is a finding with one of these codes: in
`depfw audit` reports (the human table, JSON `results[].findings[].code`, SARIF `ruleId`),
`depfw check`, the proxy's 403 bodies and PyPI yank reasons, and the decision log
(`depfw log show`). Codes are stable: CI can filter on them, and a code is never renamed
or reused.

A version's verdict is the most severe of its findings' verdicts, unless an allow- or
deny-list entry decides (`depfw overrides allow|deny`, `[[overrides.allow]]` and
`[[overrides.deny]]` in the config; deny entries win). Whether a verdict fails a CI run is
`depfw audit --fail-on` (default `quarantine`).

| code | check | default verdict |
|---|---|---|
",
    );
    for code in Code::ALL {
        let _ = writeln!(
            out,
            "| [`{code}`](#{code}) | {} | {} |",
            code.check(),
            code.default_verdict()
        );
    }
    let mut check = "";
    for code in Code::ALL {
        if code.check() != check {
            check = code.check();
            let _ = write!(out, "\n## {check}\n");
        }
        let _ = write!(
            out,
            "\n### `{code}`\n\n{}\n\n- Default verdict: {}.\n- Set by: {}\n",
            code.description(),
            code.default_verdict(),
            code.verdict_set_by()
        );
    }
    out
}

#[test]
fn docs_codes_md_is_generated_from_the_registry() {
    let path = repo().join("docs/codes.md");
    let want = codes_md();
    if std::env::var_os(BLESS).is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have != want {
        let first_difference = have
            .lines()
            .zip(want.lines())
            .position(|(h, w)| h != w)
            .unwrap_or_else(|| have.lines().count().min(want.lines().count()));
        panic!(
            "docs/codes.md is stale (first difference at line {}); regenerate it with\n\n    \
             {BLESS}=1 cargo test --test policy codes::\n",
            first_difference + 1
        );
    }
}

/// One row of the README's table: the check (inherited from the row above when empty),
/// the codes (backquoted, outside parentheses) and the default verdict's first word.
struct Row {
    check: String,
    codes: Vec<String>,
    verdict: String,
}

fn readme_rows(readme: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(readme).unwrap();
    let mut rows: Vec<Row> = Vec::new();
    let table = text
        .lines()
        .skip_while(|l| !l.starts_with("| check | codes | default verdict |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'));
    for line in table {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, check, codes, verdict, _] = cells[..] else {
            panic!("README code table: not three cells: {line}");
        };
        let check = match check.split_whitespace().next() {
            Some(word) => word.to_owned(),
            None => rows.last().map(|r| r.check.clone()).unwrap_or_default(),
        };
        let mut depth = 0usize;
        let outside: String = codes
            .chars()
            .filter(|c| {
                match c {
                    '(' => depth += 1,
                    ')' => depth = depth.saturating_sub(1),
                    _ => return depth == 0,
                }
                false
            })
            .collect();
        let codes = outside
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        let verdict = verdict
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .trim_end_matches([',', ';'])
            .to_owned();
        rows.push(Row {
            check,
            codes,
            verdict,
        });
    }
    rows
}

#[test]
fn readme_code_table_lists_every_code_under_its_check_and_default_verdict() {
    let rows = readme_rows(&repo().join("README.md"));
    assert!(
        !rows.is_empty(),
        "README.md: no `| check | codes | default verdict |` table"
    );
    let mut listed = Vec::new();
    for row in &rows {
        for text in &row.codes {
            let code: Code = text
                .parse()
                .unwrap_or_else(|e| panic!("README code table: {e}"));
            assert_eq!(
                (row.check.as_str(), row.verdict.as_str()),
                (code.check(), code.default_verdict().as_str()),
                "README code table: `{code}` is under the wrong check or default verdict"
            );
            listed.push(code);
        }
    }
    let missing: Vec<&Code> = Code::ALL.iter().filter(|c| !listed.contains(c)).collect();
    assert!(missing.is_empty(), "README code table lacks {missing:?}");
    assert_eq!(listed.len(), Code::ALL.len(), "README lists a code twice");
}

/// A table row's codes are the backquoted words outside parentheses, so that notes in a
/// row can quote config keys.
#[test]
fn readme_rows_are_read_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let readme = dir.path().join("README.md");
    std::fs::write(
        &readme,
        "| check | codes | default verdict |\n|---|---|---|\n\
         | reputation | `release-cooldown` (`cooldown-hours`), `new-package` | quarantine |\n\
         | | `yanked` | deny, unless |\n\nafter\n",
    )
    .unwrap();
    let rows = readme_rows(&readme);
    let read: Vec<(&str, Vec<&str>, &str)> = rows
        .iter()
        .map(|r| {
            let codes = r.codes.iter().map(String::as_str).collect();
            (r.check.as_str(), codes, r.verdict.as_str())
        })
        .collect();
    assert_eq!(
        read,
        [
            (
                "reputation",
                vec!["release-cooldown", "new-package"],
                "quarantine"
            ),
            ("reputation", vec!["yanked"], "deny"),
        ]
    );
}

/// What the registry calls a code's default verdict is what the default config does.
#[test]
fn default_verdicts_are_the_default_configs() {
    let config = Config::default();
    let (policy, agents) = (&config.policy, &config.agents);
    assert_eq!(policy.advisories.deny_at, Severity::High);
    for (code, configured) in [
        (Code::Vulnerable, policy.advisories.unknown_severity),
        (Code::UnfixedAdvisory, policy.advisories.unfixed),
        (Code::InformationalAdvisory, policy.advisories.informational),
        (Code::PossibleTyposquat, policy.typosquat.verdict),
        (Code::LookAlikeName, policy.typosquat.look_alike),
        (Code::LicenseDenied, policy.license.denied),
        (Code::LicenseNotAllowed, policy.license.not_allowed),
        (Code::LicenseUnlicensed, policy.license.not_allowed),
        (Code::LicenseMissing, policy.license.missing),
        (Code::LicenseUnparsable, policy.license.unparsable),
        (Code::ReleaseCooldown, policy.reputation.cooldown),
        (
            Code::PublishTimeUnknown,
            policy.reputation.publish_time_unknown,
        ),
        (Code::NewPackage, policy.reputation.new_package),
        (Code::InstallScripts, policy.reputation.install_scripts),
        (Code::Deprecated, policy.reputation.deprecated),
        (Code::Yanked, policy.reputation.yanked),
        (
            Code::InstallScriptAdded,
            policy.signals.install_script_added,
        ),
        (Code::NewPublisher, policy.signals.new_publisher),
        (
            Code::MaintainersReplaced,
            policy.signals.maintainers_replaced,
        ),
        (Code::ProvenanceLost, policy.signals.provenance_lost),
        (Code::ReleaseBurst, policy.signals.release_burst),
        (Code::InternalName, policy.internal_names.verdict),
        (Code::StrictPreset, agents.strict_warn),
    ] {
        assert_eq!(code.default_verdict(), configured, "{code}");
    }
}

/// Renaming or removing a code breaks every CI filter on it: this snapshot makes it a
/// visible, reviewed change. A new code is added to it (`cargo insta review`, or
/// `INSTA_UPDATE=always`).
#[test]
fn codes_are_stable() {
    let list: String = Code::ALL
        .iter()
        .map(|c| format!("{c} {} {}\n", c.check(), c.default_verdict()))
        .collect();
    insta::assert_snapshot!(list);
}
