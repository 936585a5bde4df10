//! Overrides stored with `depfw overrides` apply to `depfw check` and `depfw audit` that
//! read the same data directory.

use crate::support::depfw_with_data as depfw;

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

#[test]
fn init_for_an_agent_prints_its_mirror_urls() {
    let dir = tempfile::tempdir().unwrap();
    let out = depfw(dir.path(), &["agents", "add", "bot"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout
        .split_whitespace()
        .find(|w| w.starts_with("dfw_"))
        .unwrap()
        .to_owned();
    let out = depfw(
        dir.path(),
        &["init", "yarn", "--agent", "bot", "--token", &token],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snippet = String::from_utf8(out.stdout).unwrap();
    assert!(
        snippet.contains(&format!(
            "npmRegistryServer: \"http://127.0.0.1:7878/a/{token}/npm/\""
        )),
        "{snippet}"
    );
    let out = depfw(
        dir.path(),
        &["init", "npm", "--agent", "bot", "--token", "not-a-token"],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_allow_entry_with_empty_versions_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = depfw(
        dir.path(),
        &[
            "overrides",
            "allow",
            "npm",
            "left-pad",
            "--versions",
            "",
            "--reason",
            "ok",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`versions` is empty"), "{err}");
}
