//! Issue #16: the release cooldown `depfw init <client>` prints is the client's real
//! setting, in the client's unit. Each test writes what init printed into a project, as a
//! user would, and has the pinned client read the value back: it must be depfw's age
//! (48 hours by default, 36 where a fractional day matters).

use std::path::Path;
use std::process::Command;

use crate::client;
use crate::require::{BUN, NPM, PNPM, POETRY, UV, YARN};
use crate::support::depfw_command;

crate::require::trials! {
    [NPM] => npm_reads_min_release_age_in_days;
    [PNPM] => pnpm_reads_minimum_release_age_in_minutes;
    [YARN] => yarn_reads_npm_minimal_age_gate;
    [BUN] => bun_accepts_minimum_release_age_in_seconds;
    [UV] => uv_reads_exclude_newer_as_a_duration;
    [POETRY] => poetry_reads_solver_min_release_age_in_days;
}

/// `depfw init args…` with `cooldown-hours` set to `hours`.
fn init(dir: &Path, hours: u64, args: &[&str]) -> String {
    let config = dir.join("depfw.toml");
    std::fs::write(
        &config,
        format!("[policy.reputation]\ncooldown-hours = {hours}\n"),
    )
    .unwrap();
    let out = depfw_command()
        .arg("--config")
        .arg(&config)
        .arg("init")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    crate::require::note(format!("$ depfw init {args:?}\n{text}"));
    text
}

/// The lines init printed after its `# release cooldown` comment, up to the lockfile note.
fn cooldown_block(printed: &str) -> String {
    let start = printed
        .find("# release cooldown")
        .expect("no cooldown lines");
    let rest = &printed[start..];
    let end = rest.find("# lockfiles").unwrap_or(rest.len());
    rest[..end].to_owned()
}

fn project() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("project");
    std::fs::create_dir_all(dir.join("home")).unwrap();
    std::fs::write(
        dir.join("package.json"),
        r#"{"name":"x","version":"1.0.0"}"#,
    )
    .unwrap();
    (tmp, dir)
}

/// `tool args…` in `dir`, cut off from the machine's settings; its trimmed stdout.
fn read_back(dir: &Path, tool: &str, prefixes: &[&str], args: &[&str]) -> String {
    let mut cmd: Command = client::command(tool, prefixes);
    client::isolated_home(&mut cmd, &dir.join("home"))
        .current_dir(dir)
        .args(args);
    let out = client::output(&mut cmd);
    assert!(out.status.success(), "{}", client::combined(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn npm_reads_min_release_age_in_days() {
    for (hours, days) in [(48, "2"), (36, "1.5")] {
        let (_tmp, dir) = project();
        // The whole output is one .npmrc.
        std::fs::write(dir.join(".npmrc"), init(&dir, hours, &["npm"])).unwrap();
        let got = read_back(
            &dir,
            "npm",
            &["npm_config_"],
            &["config", "get", "min-release-age"],
        );
        assert_eq!(got, days);
    }
}

fn pnpm_reads_minimum_release_age_in_minutes() {
    let (_tmp, dir) = project();
    let block = cooldown_block(&init(&dir, 48, &["pnpm"]));
    assert!(block.contains("# pnpm-workspace.yaml"), "{block}");
    std::fs::write(dir.join("pnpm-workspace.yaml"), block).unwrap();
    let got = read_back(
        &dir,
        "pnpm",
        &["npm_config_", "pnpm_"],
        &["config", "get", "minimumReleaseAge"],
    );
    assert_eq!(got, "2880");
}

fn yarn_reads_npm_minimal_age_gate() {
    let (_tmp, dir) = project();
    // The whole output is one .yarnrc.yml.
    std::fs::write(dir.join(".yarnrc.yml"), init(&dir, 48, &["yarn"])).unwrap();
    let got = read_back(
        &dir,
        "yarn",
        &["yarn_", "npm_config_"],
        &["config", "get", "npmMinimalAgeGate"],
    );
    assert_eq!(got, "2880");
}

fn bun_accepts_minimum_release_age_in_seconds() {
    let (_tmp, dir) = project();
    let printed = init(&dir, 48, &["bun"]);
    assert!(
        printed.contains("\nminimumReleaseAge = 172800 # seconds\n"),
        "{printed}"
    );
    // bun has no `config get`: it must install (nothing) with the printed bunfig, and
    // refuse the same bunfig with a value of the wrong type, so the key is really read.
    std::fs::write(dir.join("bunfig.toml"), &printed).unwrap();
    read_back(
        &dir,
        "bun",
        &["bun_", "npm_config_"],
        &["install", "--dry-run"],
    );
    let wrong = printed.replace("= 172800", "= \"two days\"");
    std::fs::write(dir.join("bunfig.toml"), wrong).unwrap();
    let mut cmd = client::command("bun", &["bun_", "npm_config_"]);
    client::isolated_home(&mut cmd, &dir.join("home"))
        .current_dir(&dir)
        .args(["install", "--dry-run"]);
    let out = client::output(&mut cmd);
    assert!(!out.status.success(), "{}", client::combined(&out));
    assert!(client::combined(&out).contains("minimumReleaseAge"));
}

fn uv_reads_exclude_newer_as_a_duration() {
    let (_tmp, dir) = project();
    let settings = |dir: &Path, env: Option<&str>| {
        let mut cmd = client::command("uv", &["uv_"]);
        client::isolated_home(&mut cmd, &dir.join("home"))
            .current_dir(dir)
            .args(["lock", "--offline", "--show-settings"]);
        if let Some(value) = env {
            cmd.env("UV_EXCLUDE_NEWER", value);
        }
        let out = client::output(&mut cmd);
        assert!(out.status.success(), "{}", client::combined(&out));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let at = text
            .find("exclude_newer: ExcludeNewer")
            .expect("no exclude_newer");
        text[at..].chars().take(300).collect::<String>()
    };
    // The agent snippet is a pyproject.toml, cooldown included.
    let agent = init(&dir, 48, &["uv", "--agent", "bot"]);
    let pyproject = format!(
        "[project]\nname = \"x\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\n\
         dependencies = []\n\n{}",
        agent
            .lines()
            .skip_while(|l| !l.starts_with("# pyproject.toml"))
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    );
    std::fs::write(dir.join("pyproject.toml"), pyproject).unwrap();
    assert!(settings(&dir, None).contains("48h"));
    // The plain snippet is the environment.
    let plain = init(&dir, 48, &["uv"]);
    let line = plain
        .lines()
        .find_map(|l| l.strip_prefix("export UV_EXCLUDE_NEWER="))
        .expect("no UV_EXCLUDE_NEWER");
    let value = line.trim_matches('"');
    let bare = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(bare.path().join("home")).unwrap();
    std::fs::write(
        bare.path().join("pyproject.toml"),
        "[project]\nname = \"x\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\ndependencies = []\n",
    )
    .unwrap();
    assert!(settings(bare.path(), Some(value)).contains("48h"));
}

fn poetry_reads_solver_min_release_age_in_days() {
    let (_tmp, dir) = project();
    let block = cooldown_block(&init(&dir, 48, &["poetry"]));
    assert!(block.contains("# poetry.toml"), "{block}");
    std::fs::write(dir.join("poetry.toml"), block).unwrap();
    std::fs::write(
        dir.join("pyproject.toml"),
        "[project]\nname = \"x\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    let got = read_back(
        &dir,
        "poetry",
        &["poetry_"],
        &["config", "solver.min-release-age"],
    );
    assert_eq!(got, "2");
}
