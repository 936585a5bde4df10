//! depfw audits its own dependencies: `depfw audit Cargo.lock` on this repository reports
//! only what `deny.toml` explains (each advisory an `ignore` entry with its reason), and
//! every explanation is still needed, so the two lists cannot drift apart.

use std::collections::BTreeSet;

use crate::support::{self, depfw};

/// The advisory ids `deny.toml` ignores, each with a non-empty reason.
fn explained() -> BTreeSet<String> {
    let text = std::fs::read_to_string(support::repo().join("deny.toml")).unwrap();
    let deny: toml::Table = toml::from_str(&text).unwrap();
    deny["advisories"]["ignore"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let reason = entry["reason"].as_str().unwrap_or_default();
            assert!(!reason.trim().is_empty(), "{entry}: say why it is ignored");
            entry["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn depfws_own_lockfile_reports_only_what_deny_toml_explains() {
    let lockfile = support::repo().join("Cargo.lock");
    let out = depfw(&[
        "audit",
        lockfile.to_str().unwrap(),
        "--format",
        "json",
        "--fail-on",
        "warn",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let explained = explained();
    let mut reported = BTreeSet::new();
    for result in report["results"].as_array().unwrap() {
        let ids: Vec<&str> = result["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap())
            .collect();
        let package = format!("{}@{}", result["name"], result["version"]);
        assert!(
            ids.iter().any(|id| explained.contains(*id)),
            "{package}: {ids:?} reported by depfw audit but not explained in deny.toml"
        );
        reported.extend(ids.iter().map(|id| id.to_string()));
    }
    for id in &explained {
        assert!(
            reported.contains(id),
            "deny.toml explains {id}, which depfw audit no longer reports: remove it"
        );
    }
    // Nothing at or above `warn` that is not explained means no denial either.
    let denied = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] == "deny" || r["verdict"] == "quarantine")
        .count();
    assert_eq!(denied, 0, "{report}");
}
