//! `depfw doctor [DIR]`: a project's client configs and lockfiles against this depfw, with
//! the exit-code contract (0 nothing found, 1 findings, 2 could not run) and no token ever
//! printed.

use std::path::Path;
use std::process::Output;

use crate::support::{code, depfw_command, stderr, stdout};

const TOKEN: &str = "dfw_Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6";

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        std::fs::write(dir.path().join(rel), text).unwrap();
    }
    dir
}

fn doctor(dir: &Path, args: &[&str]) -> Output {
    depfw_command()
        .current_dir(dir)
        .arg("doctor")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_project_as_init_configures_it_exits_0() {
    let dir = project(&[(
        ".npmrc",
        "registry=http://127.0.0.1:7878/npm/\nmin-release-age=2\n",
    )]);
    let out = doctor(dir.path(), &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("ok   .npmrc: npm installs through depfw"));
    assert!(stdout(&out).ends_with("0 findings\n"));
}

#[test]
fn a_short_cooldown_and_another_registry_exit_1() {
    let dir = project(&[(
        ".npmrc",
        "registry=https://registry.npmjs.org/\nmin-release-age=1\n",
    )]);
    let out = doctor(dir.path(), &[]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("FAIL .npmrc: not-through-depfw"), "{text}");
    assert!(
        text.contains("`min-release-age` is 24h, shorter than depfw's 48h"),
        "{text}"
    );
}

#[test]
fn a_token_in_a_lockfile_is_reported_masked_in_both_formats() {
    let lock = format!(
        "{{\"packages\": {{\"node_modules/x\": {{\"resolved\": \
         \"http://127.0.0.1:7878/a/{TOKEN}/npm/x/-/x-1.0.0.tgz\"}}}}}}\n"
    );
    let dir = project(&[
        (
            ".npmrc",
            "registry=http://127.0.0.1:7878/npm/\nmin-release-age=2\n",
        ),
        ("package-lock.json", &lock),
    ]);
    let out = doctor(dir.path(), &[]);
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains(
            "FAIL package-lock.json: token-in-file: line 1: a token in a depfw `/a/****/` URL"
        ),
        "{}",
        stdout(&out)
    );
    let json = doctor(dir.path(), &["--format", "json"]);
    assert_eq!(code(&json), 1);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["findings"][0]["code"], "token-in-file");
    assert_eq!(report["findings"][0]["file"], "package-lock.json");
    assert_eq!(report["cooldown_hours"], 48);
    for text in [stdout(&out), stdout(&json), stderr(&out), stderr(&json)] {
        assert!(!text.contains(&TOKEN[4..]), "the token was printed: {text}");
    }
}

#[test]
fn malformed_files_are_findings_not_crashes() {
    let dir = project(&[
        ("bunfig.toml", "[install\nregistry = \"x\"\n"),
        (".yarnrc.yml", "npmRegistryServer: [\n"),
        ("pnpm-lock.yaml", "\u{ff}"),
    ]);
    std::fs::write(dir.path().join("uv.lock"), [0xff, 0xfe, 0x00]).unwrap();
    let out = doctor(dir.path(), &["--format", "json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let malformed: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "malformed")
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    for file in ["bunfig.toml", ".yarnrc.yml", "uv.lock"] {
        assert!(malformed.contains(&file), "{file} not in {malformed:?}");
    }
}

#[test]
fn no_such_directory_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = doctor(dir.path(), &["does-not-exist"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("not a directory"), "{}", stderr(&out));
}

/// `depfw init <client>` with `config`, its output split at the cooldown lines.
fn init(dir: &Path, args: &[&str]) -> (String, String) {
    let out = depfw_command()
        .current_dir(dir)
        .args(["--config", "depfw.toml", "init"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let at = text.find("# release cooldown").unwrap();
    (text[..at].to_owned(), text[at..].to_owned())
}

/// What `depfw init` prints, written where it says, passes `depfw doctor`; a longer
/// cooldown in depfw's config then makes each client's setting too short.
#[test]
fn what_init_prints_passes_doctor_until_depfws_cooldown_grows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("depfw.toml"), "").unwrap();
    std::fs::create_dir(d.join(".cargo")).unwrap();
    for (client, file) in [
        ("npm", ".npmrc"),
        ("yarn", ".yarnrc.yml"),
        ("bun", "bunfig.toml"),
        ("cargo", ".cargo/config.toml"),
    ] {
        let (registry, cooldown) = init(d, &[client]);
        std::fs::write(d.join(file), registry + &cooldown).unwrap();
    }
    let (pyproject, poetry) = init(d, &["poetry"]);
    // uv's agent snippet is a pyproject.toml, its index and its cooldown.
    let (uv_index, uv_cooldown) = init(d, &["uv", "--agent", "bot"]);
    let uv_cooldown = uv_cooldown.split("# lockfiles").next().unwrap();
    std::fs::write(
        d.join("pyproject.toml"),
        format!("[tool.poetry]\nname = \"x\"\n{pyproject}{uv_index}{uv_cooldown}"),
    )
    .unwrap();
    std::fs::write(d.join("poetry.toml"), poetry).unwrap();
    std::fs::write(d.join("Cargo.lock"), "version = 4\n").unwrap();
    std::fs::write(d.join("package-lock.json"), "{}").unwrap();
    let out = doctor(d, &["--config", "depfw.toml"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    for client in ["npm", "yarn", "bun", "uv", "poetry", "cargo"] {
        assert!(
            stdout(&out).contains(&format!("{client} installs through depfw")),
            "{client}: {}",
            stdout(&out)
        );
    }

    std::fs::write(
        d.join("depfw.toml"),
        "[policy.reputation]\ncooldown-hours = 72\n",
    )
    .unwrap();
    let out = doctor(d, &["--config", "depfw.toml", "--format", "json"]);
    assert_eq!(code(&out), 1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shorter: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "cooldown-shorter")
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        shorter,
        [
            ".npmrc",
            ".yarnrc.yml",
            "bunfig.toml",
            "pyproject.toml [tool.uv]",
            "poetry.toml"
        ]
    );
}
