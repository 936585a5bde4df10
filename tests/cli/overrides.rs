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

/// Issue #12: `depfw agents add` says how clients send the token (in a header, read from
/// `$DEPFW_TOKEN`), and `depfw init <client> --agent` prints configuration that reads it
/// from there, with URLs that carry no token (so lockfiles do not either).
#[test]
fn agents_add_and_init_for_an_agent_configure_the_token_in_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let out = depfw(dir.path(), &["agents", "add", "bot"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout
        .split_whitespace()
        .find(|w| w.starts_with("dfw_"))
        .unwrap()
        .to_owned();
    assert!(stdout.contains("DEPFW_TOKEN"), "{stdout}");
    assert!(
        stdout.contains("//127.0.0.1:7878/auth/npm/:_authToken=${DEPFW_TOKEN}"),
        "{stdout}"
    );
    assert!(
        stdout.contains("depfw init <client> --agent bot"),
        "{stdout}"
    );
    assert!(stdout.contains("written into lockfiles"), "{stdout}");

    for (client, want) in [
        (
            "npm",
            "//127.0.0.1:7878/auth/npm/:_authToken=${DEPFW_TOKEN}",
        ),
        ("pnpm", "registry=http://127.0.0.1:7878/auth/npm/"),
        ("yarn", "npmAuthToken: \"${DEPFW_TOKEN}\""),
        ("bun", "token = \"$DEPFW_TOKEN\""),
        ("pip", "index-url = http://127.0.0.1:7878/auth/pypi/simple/"),
        ("uv", "UV_INDEX_DEPFW_PASSWORD=\"$DEPFW_TOKEN\""),
        (
            "poetry",
            "POETRY_HTTP_BASIC_DEPFW_PASSWORD=\"$DEPFW_TOKEN\"",
        ),
        ("cargo", "CARGO_REGISTRIES_DEPFW_TOKEN=\"$DEPFW_TOKEN\""),
    ] {
        let out = depfw(dir.path(), &["init", client, "--agent", "bot"]);
        assert_eq!(out.status.code(), Some(0), "{client}");
        let snippet = String::from_utf8(out.stdout).unwrap();
        assert!(snippet.contains(want), "{client}: {snippet}");
        assert!(
            snippet.contains("depfw agents add bot"),
            "{client}: {snippet}"
        );
        assert!(
            !snippet.contains(&token) && !snippet.contains("/a/"),
            "{snippet}"
        );
    }
    // The token belongs to the environment, not to `depfw init`'s header configuration.
    let out = depfw(
        dir.path(),
        &["init", "npm", "--agent", "bot", "--token", &token],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8(out.stdout).unwrap().contains(&token));
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
        &[
            "init",
            "yarn",
            "--agent",
            "bot",
            "--token-in-path",
            "--token",
            &token,
        ],
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
    assert!(snippet.contains("written into lockfiles"), "{snippet}");
    let out = depfw(
        dir.path(),
        &[
            "init",
            "npm",
            "--agent",
            "bot",
            "--token-in-path",
            "--token",
            "not-a-token",
        ],
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

/// Issue #16's urgent fix: one version, for one agent, for two hours, in one command; an
/// unknown agent is refused (the entry would apply to nobody), and `depfw check` (no agent)
/// is not changed by it.
#[test]
fn an_urgent_allow_for_one_agent_with_a_relative_expiry() {
    use crate::support::{code, stderr, stdout};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let deny = depfw(
        data,
        &[
            "overrides",
            "deny",
            "npm",
            "left-pad",
            "--reason",
            "incident",
        ],
    );
    assert_eq!(code(&deny), 0, "{}", stderr(&deny));
    let urgent = [
        "overrides",
        "allow",
        "npm",
        "left-pad",
        "1.3.0",
        "--agent",
        "ci-bot",
        "--expires",
        "2h",
        "--reason",
        "hotfix INC-7",
    ];
    let out = depfw(data, &urgent);
    assert_ne!(code(&out), 0, "no such agent yet");
    assert!(stderr(&out).contains("ci-bot"), "{}", stderr(&out));
    let added = depfw(data, &["agents", "add", "ci-bot"]);
    assert_eq!(code(&added), 0, "{}", stderr(&added));
    let out = depfw(data, &urgent);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let said = stdout(&out);
    assert!(
        said.contains("left-pad =1.3.0 for agent ci-bot, until "),
        "{said}"
    );
    let list = stdout(&depfw(data, &["overrides", "list"]));
    assert!(list.contains("for agent ci-bot (hotfix INC-7)"), "{list}");
    assert!(list.contains("expires "), "{list}");
    // `depfw check` speaks for no agent: the deny entry still decides.
    let out = depfw(data, &["check", "npm", "left-pad@1.3.0"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    // A version and `--versions` together are refused by the parser.
    let both = depfw(
        data,
        &[
            "overrides",
            "allow",
            "npm",
            "left-pad",
            "1.3.0",
            "--versions",
            "*",
            "--reason",
            "x",
        ],
    );
    assert_eq!(code(&both), 2, "{}", stderr(&both));
}
