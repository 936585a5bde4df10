//! Overrides stored with `depfw overrides` apply to `depfw check` and `depfw audit` that
//! read the same data directory.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn depfw(data_dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_depfw"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("DEPFW_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn a_stored_deny_entry_applies_to_check_and_can_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let out = depfw(data, &["check", "npm", "left-pad@1.3.0"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = depfw(
        data,
        &[
            "overrides",
            "deny",
            "npm",
            "left-pad",
            "--versions",
            "1.3.0",
            "--reason",
            "broke prod",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = depfw(
        data,
        &["check", "npm", "left-pad@1.3.0", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["verdict"], "deny");
    assert!(result["findings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("broke prod"));
    // Other versions are untouched.
    let out = depfw(data, &["check", "npm", "left-pad@1.2.0"]);
    assert_eq!(out.status.code(), Some(0));

    let out = depfw(data, &["overrides", "remove", "1"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = depfw(data, &["check", "npm", "left-pad@1.3.0"]);
    assert_eq!(out.status.code(), Some(0));
}
