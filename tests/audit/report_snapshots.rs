//! `depfw audit --format human|json|sarif` on real public lockfiles, pinned byte for byte:
//! JSON and SARIF are contracts that CI parses, and the human table is what people read.
//!
//! Each audit runs as a user runs it: the binary, in a directory holding only the lockfile
//! at its path in this repository, so that paths print relative and nothing around it (a
//! `.depfw/` data directory) changes the result. The only redaction is depfw's own version
//! in SARIF. A change shows as a snapshot diff to review (`cargo insta review`), including
//! one from a refreshed advisory feed that flags another pin.

use std::path::Path;

use crate::support::{depfw_command, repo};

const PUBLIC: &str = "tests/fixtures/lockfiles/public";

/// Runs `depfw audit --format FORMAT PATH` and returns the exit code and stdout.
fn audit(lockfile: &Path, format: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(lockfile);
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(repo().join(lockfile), &copy).unwrap();
    let out = depfw_command()
        .current_dir(dir.path())
        .args(["audit", "--format", format])
        .arg(lockfile)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{}: {stderr}", lockfile.display());
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

/// The SARIF driver's version is depfw's, which every release changes.
fn redact_version(sarif: &str) -> String {
    let version = env!("CARGO_PKG_VERSION");
    sarif
        .lines()
        .map(|line| {
            let key = line.trim_start();
            if key == format!("\"version\": \"{version}\",")
                || key == format!("\"semanticVersion\": \"{version}\",")
            {
                line.replace(version, "[depfw-version]")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Snapshots the three reports of one public lockfile, each ending in `exit`.
fn reports(rel: &str, exit: i32) {
    let lockfile = Path::new(PUBLIC).join(rel);
    let slug = rel
        .rsplit_once('/')
        .map_or(rel, |(dir, _)| dir)
        .replace('/', "-");
    for format in ["human", "json", "sarif"] {
        let (code, mut text) = audit(&lockfile, format);
        assert_eq!(code, exit, "{rel} --format {format}:\n{text}");
        if format == "sarif" {
            text = redact_version(&text);
        }
        insta::assert_snapshot!(format!("{slug}.{format}"), text);
    }
}

/// Vulnerabilities of every severity with fixes, unscored ones, and informational advisories.
#[test]
fn cargo_lock_with_vulnerable_and_informational_pins() {
    reports("cargo/advent-of-code-2020/Cargo.lock", 1);
}

/// Informational advisories only: warnings, exit 0.
#[test]
fn cargo_lock_with_informational_advisories() {
    reports("cargo/rust-maze/Cargo.lock", 0);
}

/// One unscored PyPA advisory that names no fix: a warning (`unfixed-advisory`), exit 0.
#[test]
fn poetry_lock_with_an_unscored_advisory() {
    reports("poetry/tictactoe/poetry.lock", 0);
}

/// Packages installed from URLs, not the registry.
#[test]
fn pylock_with_non_registry_sources() {
    reports("pylock/ext-reg/pylock.toml", 0);
}

/// An npm-2-era shrinkwrap whose `minimatch@1.0.0` the old Node.js Security WG data in the
/// bundled snapshot flags (NSWG-ECO-118, a ReDoS fixed in 3.0.2): a denial, exit 1.
#[test]
fn npm_shrinkwrap_with_an_nswg_advisory() {
    reports("npm/json_index/npm-shrinkwrap.json", 1);
}
