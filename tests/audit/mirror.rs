//! `bypasses-mirror` (issue #12): `depfw audit --mirror URL` (or `audit.mirror-urls`)
//! reports lockfile entries fetched from anywhere but the depfw mirror, on an npm
//! package-lock.json, a uv.lock and a Cargo.lock resolved against the public registries
//! and against depfw (tests/fixtures/lockfiles/mirror/).

use serde_json::Value;

use crate::support::{self, depfw};

const MIRROR: &str = "http://127.0.0.1:7878";

/// `(package, codes)` of every reported entry of `lockfile`, audited with `args`.
fn findings(lockfile: &str, args: &[&str]) -> Vec<(String, Vec<String>)> {
    let path = support::lockfile(lockfile);
    let mut cmd = vec!["audit", path.to_str().unwrap(), "--format", "json"];
    cmd.extend_from_slice(args);
    let out = depfw(&cmd);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let codes = r["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["code"].as_str().unwrap().to_owned())
                .collect();
            (r["name"].as_str().unwrap().to_owned(), codes)
        })
        .collect()
}

fn bypassing(found: &[(String, Vec<String>)]) -> Vec<&str> {
    found
        .iter()
        .filter(|(_, codes)| codes.iter().any(|c| c == "bypasses-mirror"))
        .map(|(name, _)| name.as_str())
        .collect()
}

#[test]
fn lockfiles_resolved_on_the_public_registries_bypass_the_mirror() {
    let with_mirror = ["--mirror", MIRROR];
    assert_eq!(
        bypassing(&findings("mirror/public/package-lock.json", &with_mirror)),
        ["is-number"]
    );
    assert_eq!(
        bypassing(&findings("mirror/public/uv.lock", &with_mirror)),
        ["idna"]
    );
    // Cargo.lock names crates.io under source replacement too: only the crate from
    // another registry is reported.
    assert_eq!(
        bypassing(&findings("mirror/public/Cargo.lock", &with_mirror)),
        ["ryu"]
    );
}

#[test]
fn lockfiles_resolved_through_depfw_do_not() {
    for lockfile in ["package-lock.json", "uv.lock", "Cargo.lock"] {
        let found = findings(&format!("mirror/depfw/{lockfile}"), &["--mirror", MIRROR]);
        assert!(bypassing(&found).is_empty(), "{lockfile}: {found:?}");
    }
}

#[test]
fn without_a_mirror_the_check_is_off_and_its_verdict_is_configurable() {
    let found = findings("mirror/public/uv.lock", &[]);
    assert!(bypassing(&found).is_empty(), "{found:?}");

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("depfw.toml");
    std::fs::write(
        &config,
        format!("[audit]\nmirror-urls = [\"{MIRROR}\"]\nbypasses-mirror = \"deny\"\n"),
    )
    .unwrap();
    let path = support::lockfile("mirror/public/package-lock.json");
    let out = depfw(&[
        "--config",
        config.to_str().unwrap(),
        "audit",
        path.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "a denied entry fails the audit");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["results"][0]["verdict"], "deny", "{report}");
    assert!(report["results"][0]["findings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("fetched from https://registry.npmjs.org"));
}
