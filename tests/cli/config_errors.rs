//! What a user sees for an invalid config file: every problem at once, each with the file
//! and the key (or the line, for TOML that does not parse), and exit code 2 before any
//! command runs. Pinned as snapshots, since these messages are how users fix their config.

use crate::support::{depfw_command, stderr};

/// Runs `depfw --config depfw.toml check npm left-pad@1.3.0` next to `config` and returns
/// stderr, after checking that the command failed as a tool error with nothing on stdout.
fn rejected(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("depfw.toml"), config).unwrap();
    let out = depfw_command()
        .current_dir(dir.path())
        .args(["--config", "depfw.toml", "check", "npm", "left-pad@1.3.0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    stderr(&out)
}

#[test]
fn unknown_key() {
    insta::assert_snapshot!(rejected(
        "[policy.advisories]\ndeny-at = \"high\"\ndeny-att = \"high\"\n"
    ));
}

#[test]
fn wrong_type() {
    insta::assert_snapshot!(rejected("[policy.reputation]\ncooldown-hours = \"48\"\n"));
}

#[test]
fn toml_syntax_error() {
    insta::assert_snapshot!(rejected("[policy.license\ndeny = [\"AGPL-3.0\"]\n"));
}

#[test]
fn every_invalid_value_at_once() {
    insta::assert_snapshot!(rejected(
        r#"
[server]
listen = "nowhere"
refused-versions = "hide"
[policy.advisories]
deny-at = "severe"
[policy.typosquat]
verdict = "block"
[policy.reputation]
yanked = "maybe"
[agents]
default-policy = "paranoid"
strict-warn = "warn"
"#
    ));
}

#[test]
fn invalid_override_entries() {
    insta::assert_snapshot!(rejected(
        r#"
[[overrides.allow]]
ecosystem = "npm"
name = "../evil"
reason = ""
expires = "soon"

[[overrides.deny]]
ecosystem = "maven"
name = "log4j-core"
versions = "==2.14.1"
reason = "CVE-2021-44228"

[[overrides.deny]]
ecosystem = "pypi"
name = "requests"
versions = "==not a version"
reason = "incident 42"
"#
    ));
}
