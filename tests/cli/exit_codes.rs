//! The exit-code contract of the `depfw` binary: 0 clean, 1 findings, 2 tool error.

use std::process::Output;

use crate::support::{code, depfw_stdin, stderr};

/// `depfw args…` in a fresh empty directory, which it must leave empty.
fn depfw(args: &[&str]) -> Output {
    depfw_stdin(args, "")
}

#[test]
fn check_of_a_clean_package_exits_0() {
    let out = depfw(&["check", "crates.io", "serde@1.0.200"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("allow"));
}

#[test]
fn unknown_ecosystem_exits_2() {
    let out = depfw(&["check", "maven", "junit"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("unknown ecosystem"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn invalid_name_or_version_exits_2_with_a_message() {
    let out = depfw(&["check", "npm", "../../etc/passwd"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("not a valid npm package name"));
    let out = depfw(&["check", "crates.io", "serde@not-a-version"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("not a valid crates.io version"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(code(&depfw(&["check"])), 2);
    assert_eq!(code(&depfw(&["no-such-command"])), 2);
}

#[test]
fn bad_config_exits_2_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[policy.reputation]\nyanked = \"sometimes\"\n").unwrap();
    let out = depfw(&["--config", path.to_str().unwrap(), "check", "npm", "ms"]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("bad.toml"), "{err}");
    assert!(err.contains("policy.reputation.yanked"), "{err}");
}

/// `depfw check --online` asked to judge with the registry's metadata and could not get it
/// (here: nothing listens at the upstream): a tool error, naming the package and the cause;
/// the offline verdict is still printed (`tests/audit/check_online.rs` has the rest).
#[test]
fn check_online_without_a_registry_exits_2_naming_the_package() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("depfw.toml");
    let port = crate::support::free_port();
    std::fs::write(
        &path,
        format!("[upstream.npm]\nregistry = \"http://127.0.0.1:{port}/\"\n"),
    )
    .unwrap();
    let out = depfw(&[
        "--config",
        path.to_str().unwrap(),
        "check",
        "--online",
        "npm",
        "ms@2.1.3",
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("npm ms: no registry metadata"), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("registry-metadata-unavailable"), "{stdout}");
}

/// Issue #11: with `feeds.bundled = false` and nothing synced, the advisory check had no
/// data and every package passed it. Now no door decides without data.
#[test]
fn no_advisory_data_at_all_is_an_error_not_an_allow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("depfw.toml");
    std::fs::write(&path, "[feeds]\nbundled = false\n").unwrap();
    let config = path.to_str().unwrap();
    let lock = crate::support::lockfile("cargo/rustsec/Cargo.lock");
    for args in [
        vec!["--config", config, "check", "npm", "ms@2.1.3"],
        vec!["--config", config, "audit", lock.to_str().unwrap()],
    ] {
        let out = depfw(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("no advisory data"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn stdin_batch_writes_one_json_object_per_line() {
    let out = depfw_stdin(
        &["check", "pypi", "-", "--format", "json"],
        "requests==2.31.0\n# comment\n\nflask\n",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["ecosystem"], "PyPI");
    assert_eq!(lines[0]["name"], "requests");
    assert_eq!(lines[0]["version"], "2.31.0");
    assert_eq!(lines[0]["verdict"], "allow");
    assert!(lines[1]["version"].is_null());
}

#[test]
fn deny_listed_package_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("depfw.toml");
    std::fs::write(
        &path,
        "[[overrides.deny]]\necosystem = \"npm\"\nname = \"left-pad\"\nreason = \"banned here\"\n",
    )
    .unwrap();
    let out = depfw(&[
        "--config",
        path.to_str().unwrap(),
        "check",
        "npm",
        "left-pad@1.3.0",
    ]);
    assert_eq!(code(&out), 1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("deny"), "{stdout}");
    assert!(stdout.contains("banned here"), "{stdout}");
}

#[test]
fn audit_of_a_missing_path_exits_2() {
    let out = depfw(&["audit", "/nonexistent/Cargo.lock"]);
    assert_eq!(code(&out), 2);
}

/// Issue #11: with only npm data synced and the snapshot off, a PyPI question cannot be
/// answered (exit 2 saying why) while npm's still is.
#[test]
fn an_ecosystem_without_advisory_data_is_an_error_for_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("depfw.toml");
    std::fs::write(&config, "[feeds]\nbundled = false\n").unwrap();
    let data = dir.path().join("data");
    let feed = crate::support::repo().join("tests/fixtures/osv/malicious-all.json");
    let with = |args: &[&str]| {
        let mut all = vec!["--config", config.to_str().unwrap()];
        all.extend_from_slice(args);
        crate::support::depfw_with_data(&data, &all)
    };
    let out = with(&["feeds", "import", feed.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let out = with(&["check", "npm", "ms@2.1.3"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = with(&["check", "pypi", "requests==2.31.0"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no advisory data for PyPI"),
        "{}",
        stderr(&out)
    );
    let lock = crate::support::lockfile("cargo/rustsec/Cargo.lock");
    let out = with(&["audit", lock.to_str().unwrap()]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no advisory data for crates.io"),
        "{}",
        stderr(&out)
    );
}

/// Issue #16: `--public-url` (or `DEPFW_PUBLIC_URL`) sets the URLs `init` prints, as it sets
/// the ones `serve` writes into metadata; a URL clients cannot use is refused (exit 2).
#[test]
fn public_url_sets_what_init_prints_and_a_bad_one_is_refused() {
    let out = depfw(&[
        "--public-url",
        "https://mirror.example:9000/",
        "init",
        "pip",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("https://mirror.example:9000/pypi/simple/"),
        "{text}"
    );
    assert!(!text.contains("7878"), "{text}");
    let out = depfw(&["--public-url", "file:///tmp/x", "init", "npm"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--public-url"), "{}", stderr(&out));
}

/// Issue #15: an internal name (`policy.internal-names`) is refused by `depfw check` and by
/// `depfw audit` when the lockfile took it from the public registry, with where it must
/// come from; a lockfile entry resolved from the organisation's registry is fine.
#[test]
fn internal_names_are_refused_by_check_and_audit_from_the_public_registry() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("depfw.toml");
    std::fs::write(
        &config,
        "[policy.internal-names]\nnpm = [\"@mycorp/*\"]\nsource = \"https://npm.mycorp.internal\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let out = depfw(&["--config", config, "check", "npm", "@mycorp/i18n@99.0.3"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = crate::support::stdout(&out);
    assert!(text.contains("internal-name"), "{text}");
    assert!(
        text.contains("must come from https://npm.mycorp.internal"),
        "{text}"
    );
    assert_eq!(
        code(&depfw(&["--config", config, "check", "npm", "ms@2.1.3"])),
        0
    );

    let lock = dir.path().join("package-lock.json");
    std::fs::write(
        &lock,
        r#"{"name": "app", "lockfileVersion": 3, "requires": true, "packages": {
  "": {"name": "app", "dependencies": {"@mycorp/i18n": "^99.0.0", "@mycorp/auth": "^1.0.0"}},
  "node_modules/@mycorp/i18n": {"version": "99.0.3",
    "resolved": "https://registry.npmjs.org/@mycorp/i18n/-/i18n-99.0.3.tgz"},
  "node_modules/@mycorp/auth": {"version": "1.0.0",
    "resolved": "https://npm.mycorp.internal/@mycorp/auth/-/auth-1.0.0.tgz"}
}}"#,
    )
    .unwrap();
    let out = depfw(&[
        "--config",
        config,
        "audit",
        "--format",
        "json",
        lock.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&crate::support::stdout(&out)).unwrap();
    let refused: Vec<(&str, &str)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["findings"].to_string().contains("internal-name"))
        .map(|r| (r["name"].as_str().unwrap(), r["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(refused, [("@mycorp/i18n", "deny")]);
}
