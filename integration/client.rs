//! Running a real package-manager client: cut off from the machine's own settings, bounded
//! in time, and written into the test's transcript (see `require::note`).

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::require::note;

/// Longer than any client here takes against the local fixture registry (seconds), short
/// enough that a client waiting on something that never comes fails the test instead of
/// hanging the run.
const TIMEOUT: Duration = Duration::from_secs(300);

/// `npm` against `registry` alone: its cache in `cache`, an empty global config written to
/// `global`, no user config, and none of the audit, fund, update-notifier or retry calls
/// that would reach past depfw or slow a failing test down.
pub fn npm_against(registry: &str, cache: &std::path::Path, global: &std::path::Path) -> Command {
    std::fs::write(global, "").unwrap();
    let mut cmd = command("npm", &["npm_config_"]);
    cmd.arg(format!("--registry={registry}"))
        .arg(format!("--cache={}", cache.display()))
        .arg(format!("--globalconfig={}", global.display()))
        .args([
            "--userconfig=/dev/null",
            "--no-audit",
            "--no-fund",
            "--no-update-notifier",
            "--fetch-retries=0",
        ]);
    cmd
}

/// `tool` with every environment variable starting with one of `prefixes`
/// (case-insensitive) removed, so the machine's settings cannot redirect it.
pub fn command(tool: &str, prefixes: &[&str]) -> Command {
    let mut cmd = Command::new(tool);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        let lower = k.to_ascii_lowercase();
        if prefixes.iter().any(|p| lower.starts_with(p)) {
            cmd.env_remove(&k);
        }
    }
    cmd
}

/// Points `cmd`'s home and XDG directories into `home` and drops `CI`, so a client reads no
/// settings, credentials or caches of the machine's user and behaves as it does for one.
pub fn isolated_home<'c>(cmd: &'c mut Command, home: &std::path::Path) -> &'c mut Command {
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env_remove("CI")
}

/// Runs `cmd` to completion and notes the command and its output in the transcript.
/// Panics (failing the test) if it runs longer than [`TIMEOUT`].
pub fn output(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            note(format!("$ {cmd:?}\n(killed after {} s)", TIMEOUT.as_secs()));
            panic!("{cmd:?} did not finish within {} s", TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    note(format!("$ {cmd:?}\n{}", combined(&out)));
    out
}

/// Runs `cmd` (see [`output`]); returns whether it succeeded and stdout followed by stderr.
pub fn run(cmd: &mut Command) -> (bool, String) {
    let out = output(cmd);
    (out.status.success(), combined(&out))
}

/// stdout followed by stderr.
pub fn combined(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
