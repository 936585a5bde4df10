//! The harness keeps its promise: a test whose client is missing is reported as ignored,
//! never as passed, and under CI it fails. Checked by running this very binary on one
//! test with pnpm hidden (`DEPFW_TEST_HIDE`), so it holds on machines that have pnpm too.

use std::process::{Command, Output};

use crate::require::is_ci;

const PNPM_TEST: &str = "npm::pnpm_typosquat_name_is_refused";

fn this_binary_with_pnpm_hidden(ci: Option<&str>) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", PNPM_TEST, "--test-threads=1"])
        .env("DEPFW_TEST_HIDE", "pnpm")
        .env_remove("CI");
    if let Some(value) = ci {
        cmd.env("CI", value);
    }
    crate::client::output(&mut cmd)
}

fn a_missing_client_is_ignored_locally_and_fails_under_ci() {
    for local in [None, Some("false"), Some("0")] {
        let out = this_binary_with_pnpm_hidden(local);
        let text = crate::client::combined(&out);
        assert!(out.status.success(), "CI={local:?}: {text}");
        assert!(
            text.contains(&format!("test [needs pnpm] {PNPM_TEST} ... ignored")),
            "CI={local:?}: {text}"
        );
        assert!(text.contains("0 passed; 0 failed; 1 ignored"), "{text}");
    }
    for ci in ["true", "1", "yes"] {
        let out = this_binary_with_pnpm_hidden(Some(ci));
        let text = crate::client::combined(&out);
        assert!(!out.status.success(), "CI={ci}: {text}");
        assert!(text.contains("0 passed; 1 failed"), "CI={ci}: {text}");
        assert!(text.contains("needs pnpm"), "CI={ci}: {text}");
        assert!(text.contains("required under CI"), "CI={ci}: {text}");
    }
}

fn ci_is_any_value_but_empty_or_false() {
    for (value, expected) in [
        (None, false),
        (Some(""), false),
        (Some("false"), false),
        (Some("FALSE"), false),
        (Some("0"), false),
        (Some("no"), false),
        (Some("off"), false),
        (Some("true"), true),
        (Some("1"), true),
        (Some("yes"), true),
        (Some("github-actions"), true),
    ] {
        assert_eq!(is_ci(value), expected, "CI={value:?}");
    }
}

crate::require::trials! {
    [] => a_missing_client_is_ignored_locally_and_fails_under_ci, ci_is_any_value_but_empty_or_false;
}
