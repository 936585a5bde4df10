//! cargo through depfw's sparse index, against the fixture registry's real index lines and
//! `.crate` files (itoa 1.0.10/1.0.11).
//!
//! Each test makes a throwaway crate and runs cargo with a temporary `CARGO_HOME`, crates-io
//! replaced by depfw, and no retries. Without cargo the tests are skipped with a notice,
//! unless `CI` is set.

use std::path::{Path, PathBuf};

use crate::client;
use crate::require::CARGO;
use crate::support::registry::{self, Served, TestCheck};
use depfw::store::decisions::RecordKind;

fn deny(specs: &[&str]) -> TestCheck {
    TestCheck {
        deny: specs.iter().map(|s| s.to_string()).collect(),
        ..TestCheck::default()
    }
}

/// A crate depending on `deps` (TOML lines).
pub(crate) fn project(s: &Served, deps: &str) -> PathBuf {
    project_in(s.tmp.path(), deps)
}

/// [`project`] under `tmp`.
pub(crate) fn project_in(tmp: &Path, deps: &str) -> PathBuf {
    let dir = tmp.join("app");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), "").unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n{deps}\n"
        ),
    )
    .unwrap();
    dir
}

/// Runs cargo in `project` with a fresh `CARGO_HOME` each time (no local index or crate
/// cache to hide behind).
pub(crate) fn cargo(s: &Served, project: &Path, args: &[&str]) -> (bool, String) {
    cargo_against(s.tmp.path(), &s.depfw.base, project, args)
}

/// [`cargo`] against the depfw at `base`, its `CARGO_HOME` under `tmp`.
pub(crate) fn cargo_against(
    tmp: &Path,
    base: &str,
    project: &Path,
    args: &[&str],
) -> (bool, String) {
    let home = tempfile::Builder::new()
        .prefix("cargo-home")
        .tempdir_in(tmp)
        .unwrap()
        .keep();
    let registry = format!("source.depfw.registry=\"sparse+{base}/cargo/index/\"");
    let mut cmd = client::command("cargo", &["cargo_"]);
    cmd.current_dir(project)
        .env("CARGO_HOME", &home)
        .env("CARGO_TARGET_DIR", project.join("target"))
        .args(args)
        .args(["--config", "source.crates-io.replace-with=\"depfw\""])
        .args(["--config", &registry])
        .args(["--config", "net.retry=0"]);
    client::run(&mut cmd)
}

fn locked_version(project: &Path) -> Option<String> {
    let lock = std::fs::read_to_string(project.join("Cargo.lock")).ok()?;
    let doc: toml::Value = toml::from_str(&lock).unwrap();
    doc["package"]
        .as_array()?
        .iter()
        .find(|p| p["name"].as_str() == Some("itoa"))
        .map(|p| p["version"].as_str().unwrap().to_owned())
}

fn crate_hits(s: &Served, version: &str) -> usize {
    s.fixture
        .hits(&format!("/crates/itoa/itoa-{version}.crate"))
}

fn cargo_range_picks_newest_allowed() {
    let s = registry::serve(deny(&["itoa@1.0.11"]));
    let app = project(&s, "itoa = \"1\"");
    let (ok, _) = cargo(&s, &app, &["fetch"]);
    assert!(ok);
    assert_eq!(locked_version(&app).as_deref(), Some("1.0.10"));
    assert_eq!(crate_hits(&s, "1.0.10"), 1);
    assert_eq!(crate_hits(&s, "1.0.11"), 0);
}

fn cargo_exact_pin_of_denied_version_fails() {
    let s = registry::serve(deny(&["itoa@1.0.11"]));
    let app = project(&s, "itoa = \"=1.0.11\"");
    let (ok, text) = cargo(&s, &app, &["generate-lockfile"]);
    assert!(!ok);
    assert!(text.contains("failed to select a version"), "{text}");
    assert!(
        text.contains("1.0.10"),
        "cargo lists the allowed candidate: {text}"
    );
}

fn cargo_typosquat_is_refused_with_depfws_reason() {
    let s = registry::serve(TestCheck {
        deny_names: vec!["itao".into()],
        ..TestCheck::default()
    });
    let app = project(&s, "itao = \"1\"");
    let (ok, text) = cargo(&s, &app, &["generate-lockfile"]);
    assert!(!ok);
    assert!(text.contains("got 403"), "{text}");
    assert!(
        text.contains("depfw: itao is denied by policy") && text.contains("possible-typosquat"),
        "cargo prints depfw's reason: {text}"
    );
}

fn cargo_tampered_crate_is_refused() {
    let s = registry::serve(TestCheck::default());
    s.fixture
        .tamper
        .lock()
        .unwrap()
        .insert("itoa-1.0.11.crate".into());
    let app = project(&s, "itoa = \"1\"");
    let (ok, text) = cargo(&s, &app, &["fetch"]);
    assert!(!ok);
    assert!(text.contains("integrity mismatch"), "{text}");
    assert!(s
        .depfw
        .state
        .decisions()
        .list(0, 100)
        .unwrap()
        .iter()
        .any(|r| r.outcome == "integrity-mismatch"));
}

/// Locks itoa 1.0.11 while it is allowed, denies it, then runs `cargo fetch --locked`:
/// the project and cargo's outcome.
fn fetch_locked_after_deny(s: &Served) -> (PathBuf, bool, String) {
    let app = project(s, "itoa = \"1\"");
    let (ok, _) = cargo(s, &app, &["generate-lockfile"]);
    assert!(ok);
    assert_eq!(locked_version(&app).as_deref(), Some("1.0.11"));
    s.depfw
        .state
        .set_policy(registry::policy(deny(&["itoa@1.0.11"])));
    let (ok, text) = cargo(s, &app, &["fetch", "--locked"]);
    (app, ok, text)
}

/// A `Cargo.lock` made while itoa 1.0.11 was allowed: `cargo fetch --locked` after the
/// policy changed fails, and the denied crate is never downloaded. In the default
/// `refused-versions = "remove"` mode it fails at resolution (the line is gone), without
/// depfw's reason; the yank-mode test below reaches the gate.
fn cargo_locked_fetch_of_denied_version_is_refused() {
    let s = registry::serve(TestCheck::default());
    let (_, ok, text) = fetch_locked_after_deny(&s);
    assert!(!ok);
    assert!(text.contains("1.0.11"), "{text}");
    assert_eq!(crate_hits(&s, "1.0.11"), 0);
}

const YANK: &str = "refused-versions = \"yank\"";

/// With `server.refused-versions = "yank"`, the denied version stays in the index, yanked:
/// cargo honours the lock, asks for the download, and prints the gate's 403 body; a new
/// resolution skips the yanked version.
fn yank_mode_locked_fetch_of_denied_version_is_refused_at_the_gate() {
    let s = registry::serve_with(TestCheck::default(), YANK);
    let (app, ok, text) = fetch_locked_after_deny(&s);
    assert!(!ok);
    assert!(text.contains("failed to download"), "{text}");
    assert!(text.contains("got 403"), "{text}");
    assert!(
        text.contains("depfw: itoa@1.0.11 is denied by policy: deny-listed"),
        "cargo prints depfw's reason: {text}"
    );
    assert_eq!(crate_hits(&s, "1.0.11"), 0);
    let records = s.depfw.state.decisions().list(0, 1000).unwrap();
    assert!(
        records.iter().any(|r| r.kind == RecordKind::Artifact
            && r.package == "itoa"
            && r.version.as_deref() == Some("1.0.11")
            && r.outcome == "refused"),
        "{records:?}"
    );

    // A new resolution never picks the yanked version.
    std::fs::remove_file(app.join("Cargo.lock")).unwrap();
    let (ok, _) = cargo(&s, &app, &["generate-lockfile"]);
    assert!(ok);
    assert_eq!(locked_version(&app).as_deref(), Some("1.0.10"));
}

crate::require::trials! {
    [CARGO] =>
        cargo_range_picks_newest_allowed,
        cargo_exact_pin_of_denied_version_fails,
        cargo_typosquat_is_refused_with_depfws_reason,
        cargo_tampered_crate_is_refused,
        cargo_locked_fetch_of_denied_version_is_refused,
        yank_mode_locked_fetch_of_denied_version_is_refused_at_the_gate;
}
