#![allow(clippy::unwrap_used)]
//! `depfw audit` on real lockfiles taken unchanged from public projects
//! (`tests/fixtures/lockfiles/public/`, provenance in its README.md): every file must parse,
//! with package counts and pins checked against the files by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use depfw::audit::{parse_lockfile, LockfileKind};

fn public_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lockfiles/public")
}

/// (file under public/, exact package count, pins that must be present)
/// (path under `public/`, package count, pins checked by reading the file)
type Expected = (&'static str, usize, &'static [(&'static str, &'static str)]);

const EXPECTED: &[Expected] = &[
    (
        "cargo/advent-of-code-2020/Cargo.lock",
        49,
        &[("libc", "0.2.80"), ("rand", "0.3.23"), ("rand", "0.4.6")],
    ),
    (
        "cargo/game-of-life-rust/Cargo.lock",
        7,
        &[("libc", "0.2.140")],
    ),
    (
        "pipfile/contact-book-cli/Pipfile.lock",
        2,
        &[("click", "7.0"), ("nose", "1.3.7")],
    ),
];

#[test]
fn each_public_lockfile_parses_to_the_pins_it_holds() {
    for (rel, count, pins) in EXPECTED {
        let path = public_dir().join(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        let kind = LockfileKind::detect(&path).unwrap();
        let lockfile = parse_lockfile(&path, kind, &text).unwrap();
        assert_eq!(lockfile.packages.len(), *count, "{rel}");
        for (name, version) in *pins {
            assert!(
                lockfile
                    .packages
                    .iter()
                    .any(|p| p.name == *name && p.version == *version),
                "{rel}: {name} {version} missing"
            );
        }
    }
}

#[test]
fn every_public_lockfile_is_covered_by_this_test() {
    let mut found = Vec::new();
    let mut stack = vec![public_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if LockfileKind::detect(&path).is_some() {
                found.push(
                    path.strip_prefix(public_dir())
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    found.sort();
    let mut listed: Vec<String> = EXPECTED.iter().map(|(rel, _, _)| rel.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed);
}

#[test]
fn audit_over_the_public_directory_scans_every_package() {
    let out = Command::new(env!("CARGO_BIN_EXE_depfw"))
        .arg("audit")
        .arg(public_dir())
        .args(["--format", "json"])
        .env_remove("DEPFW_CONFIG")
        .env_remove("DEPFW_DATA_DIR")
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    assert!(
        code == 0 || code == 1,
        "exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let total: usize = EXPECTED.iter().map(|(_, n, _)| n).sum();
    assert_eq!(report["packages_scanned"].as_u64().unwrap() as usize, total);
}
