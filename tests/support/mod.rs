//! What every test binary shares: where fixtures and the shared data live, a runner for the
//! `depfw` binary, the fixture registry with depfw started in-process ([`registry`]), the
//! admin endpoint fixture ([`admin`]), the CycloneDX schema ([`cyclonedx`]) and a scanner
//! of the crate's module graph ([`imports`]).
//!
//! Included by path (`#[path = "../support/mod.rs"] mod support;`) from each test binary,
//! so each binary uses only part of it.
#![allow(dead_code, clippy::unwrap_used)]

pub mod admin;
pub mod cyclonedx;
pub mod imports;
pub mod layout;
pub mod registry;
#[cfg(unix)]
pub mod tls;

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A file or directory under `tests/fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures").join(rel)
}

/// A lockfile fixture under `tests/fixtures/lockfiles/`.
pub fn lockfile(rel: &str) -> PathBuf {
    fixture("lockfiles").join(rel)
}

/// The shared public data set (`../shared/data` beside the clone, or `DEPFW_SHARED_DATA`).
/// Tests that need it live in the `integration` binary, which reports them as ignored
/// (or, under CI, failed) when it is missing; see `integration/require.rs`.
pub fn shared_data() -> PathBuf {
    std::env::var_os("DEPFW_SHARED_DATA")
        .map_or_else(|| repo().join("../shared/data"), PathBuf::from)
}

/// The `depfw` binary built for these tests, with no config or data directory inherited
/// from the environment of whoever runs the tests. Its default data directory
/// (`$XDG_STATE_HOME/depfw`) is [`no_state_home`]: a test that names no data directory
/// and opens a store fails, rather than writing into the state directory of whoever runs
/// the tests; a test of the default sets `XDG_STATE_HOME` (or `HOME`) to a directory of
/// its own.
pub fn depfw_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_depfw"));
    cmd.env_remove("DEPFW_CONFIG")
        .env_remove("DEPFW_DATA_DIR")
        .env_remove("DEPFW_ADMIN_TOKEN")
        .env_remove("DEPFW_LOG")
        .env_remove("DEPFW_STORE")
        .env_remove("STATE_DIRECTORY")
        .env("XDG_STATE_HOME", no_state_home());
    cmd
}

/// A path under a regular file, where no directory can be made (not even by root).
pub fn no_state_home() -> PathBuf {
    static FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-state-home");
        std::fs::write(
            &file,
            "tests run depfw with XDG_STATE_HOME under this file\n",
        )
        .unwrap();
        file
    })
    .join("state")
}

/// Runs `depfw args…` in the current directory.
pub fn depfw<S: AsRef<OsStr>>(args: &[S]) -> Output {
    depfw_command().args(args).output().unwrap()
}

/// Runs `depfw --data-dir DIR args…`.
pub fn depfw_with_data<S: AsRef<OsStr>>(data_dir: &Path, args: &[S]) -> Output {
    depfw_command()
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .unwrap()
}

/// Runs `depfw args…` in a fresh empty directory with `stdin` as its input.
pub fn depfw_stdin<S: AsRef<OsStr>>(args: &[S], stdin: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut child = depfw_command()
        .args(args)
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        !dir.path().join(".depfw").exists(),
        "a one-shot command must not create a data directory"
    );
    output
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The exit code (a test fails if the process was killed by a signal).
pub fn code(output: &Output) -> i32 {
    output.status.code().unwrap()
}

/// A port nothing listens on right now, for a `depfw serve` (or a helper) a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when the test ends, pass or fail.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A multi-threaded runtime for a test that is not `#[tokio::test]` (the `integration`
/// binary's tests are plain functions).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// An OSV `all.zip` of the records in `tests/fixtures/osv/` whose file name passes `filter`.
pub fn osv_zip(filter: impl Fn(&str) -> bool) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(fixture("osv"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if filter(&name) {
            zip.start_file(name, options).unwrap();
            zip.write_all(&std::fs::read(&path).unwrap()).unwrap();
        }
    }
    zip.finish().unwrap().into_inner()
}
