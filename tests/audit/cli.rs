//! `depfw audit` end to end: discovery, the exit-code contract and the three formats.

use std::path::Path;
use std::process::Output;

use crate::support::{self, depfw};

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A project directory with one lockfile copied in, plus junk that must be skipped.
fn project_with(lockfile: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let name = lockfile.file_name().unwrap();
    std::fs::copy(lockfile, dir.path().join(name)).unwrap();
    let skipped = dir.path().join("node_modules/inner");
    std::fs::create_dir_all(&skipped).unwrap();
    std::fs::write(skipped.join("package-lock.json"), "not json").unwrap();
    dir
}

#[test]
fn directories_are_searched_and_node_modules_skipped() {
    let dir = project_with(&support::lockfile("npm/v3/package-lock.json"));
    let out = depfw(&["audit", dir.path().to_str().unwrap(), "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    let lockfiles = report["lockfiles"].as_array().unwrap();
    assert_eq!(lockfiles.len(), 1, "{report}");
    assert!(report["packages_scanned"].as_u64().unwrap() >= 5);
}

#[test]
fn a_malformed_lockfile_exits_2_and_the_others_are_still_reported() {
    let dir = project_with(&support::lockfile("npm/v3/package-lock.json"));
    let broken = dir.path().join("sub");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("Cargo.lock"),
        "[[package]]\nname = \"x\"\nversion = ",
    )
    .unwrap();
    let out = depfw(&["audit", dir.path().to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let report = json(&out);
    let lockfiles = report["lockfiles"].as_array().unwrap();
    assert_eq!(lockfiles.len(), 2);
    let errors: Vec<&serde_json::Value> =
        lockfiles.iter().filter(|l| !l["error"].is_null()).collect();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]["error"].as_str().unwrap().contains("Cargo.lock"),
        "{report}"
    );
    assert!(report["packages_scanned"].as_u64().unwrap() >= 5);
}

#[test]
fn fail_on_sets_the_threshold_and_config_deny_entries_apply() {
    let dir = project_with(&support::lockfile("npm/v3/package-lock.json"));
    let config = dir.path().join("depfw.toml");
    std::fs::write(
        &config,
        "[[overrides.deny]]\necosystem = \"npm\"\nname = \"ms\"\nversions = \"2.1.3\"\nreason = \"test ban\"\n",
    )
    .unwrap();
    let lock = dir.path().join("package-lock.json");
    let args = |fail_on: &'static str| {
        vec![
            "--config".to_owned(),
            config.to_str().unwrap().to_owned(),
            "audit".to_owned(),
            lock.to_str().unwrap().to_owned(),
            "--format".to_owned(),
            "json".to_owned(),
            "--fail-on".to_owned(),
            fail_on.to_owned(),
        ]
    };
    let run = |fail_on| {
        let a = args(fail_on);
        depfw(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let out = run("deny");
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    let ms = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "ms")
        .unwrap();
    assert_eq!(ms["verdict"], "deny");
    assert_eq!(ms["version"], "2.1.3");
    assert!(ms["lockfile"]
        .as_str()
        .unwrap()
        .ends_with("package-lock.json"));
    assert!(ms["findings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("test ban"));
}

#[test]
fn sarif_output_has_a_location_for_each_finding() {
    let dir = project_with(&support::lockfile("npm/v3/package-lock.json"));
    let config = dir.path().join("depfw.toml");
    std::fs::write(
        &config,
        "[[overrides.deny]]\necosystem = \"npm\"\nname = \"is-odd\"\nreason = \"test ban\"\n",
    )
    .unwrap();
    let out = depfw(&[
        "--config",
        config.to_str().unwrap(),
        "audit",
        dir.path().join("package-lock.json").to_str().unwrap(),
        "--format",
        "sarif",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let sarif = json(&out);
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let hit = results
        .iter()
        .find(|r| r["message"]["text"].as_str().unwrap().contains("is-odd"))
        .unwrap();
    assert_eq!(hit["level"], "error");
    let region = &hit["locations"][0]["physicalLocation"]["region"];
    assert!(region["startLine"].as_u64().unwrap() > 1, "{hit}");
}

#[test]
fn an_unrecognised_file_is_a_tool_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.md");
    std::fs::write(&file, "hello").unwrap();
    let out = depfw(&["audit", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_empty_directory_is_a_tool_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = depfw(&["audit", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no lockfiles"));
}

/// Issue #16: the human table was ~650 columns wide. On stdout it is fitted to `COLUMNS`
/// (else the terminal's width); piped without `COLUMNS`, or written with `-o`, rows stay
/// whole so `grep` sees each finding on its line.
#[test]
fn the_human_table_fits_columns_and_stays_whole_when_piped() {
    let lockfile = support::lockfile("public/cargo/advent-of-code-2020/Cargo.lock");
    let run = |columns: Option<&str>, extra: &[&str]| {
        let mut cmd = support::depfw_command();
        cmd.env_remove("COLUMNS");
        if let Some(columns) = columns {
            cmd.env("COLUMNS", columns);
        }
        let out = cmd
            .arg("audit")
            .arg(&lockfile)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let widest = |text: &str| text.lines().map(|l| l.chars().count()).max().unwrap();
    let whole = run(None, &[]);
    assert!(widest(&whole) > 200, "{whole}");
    for columns in ["90", "140"] {
        let fitted = run(Some(columns), &[]);
        assert!(
            widest(&fitted) <= columns.parse().unwrap(),
            "{columns}:\n{fitted}"
        );
        for id in [
            "RUSTSEC-2021-0093",
            "CVE-2022-24713",
            "fix: upgrade to 1.5.5",
        ] {
            assert!(fitted.contains(id), "{fitted}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.txt");
    run(Some("90"), &["-o", file.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), whole);
}
