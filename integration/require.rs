//! What a test needs from outside the repository, and how its absence is reported.
//!
//! Each test in this binary names its needs ([`Need`]). When one is missing, the test is
//! listed as ignored, with the need in brackets (`test [needs pnpm] npm::… ... ignored`),
//! so the summary counts it and nobody mistakes it for a pass; under CI (`CI` set to
//! anything but empty, `0`, `false`, `no` or `off`) it fails instead, so a CI machine
//! without a client can never look green.
//!
//! Tests here run without libtest's output capture, so what they run (client commands and
//! their output) goes to a per-test transcript ([`note`]) that is printed only when the test
//! fails, with the panic message and its location.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use libtest_mimic::{Failed, Trial};

/// Something a test needs that is not part of the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Need {
    /// A command on the `PATH` that answers `--version`.
    Tool(&'static str),
    /// Chromium (or Chrome) and its WebDriver, see [`chromium`].
    Chromium,
    /// The shared public data set, see `support::shared_data`.
    SharedData,
    /// The official MCP Python SDK, run by `mcp-python` (`.ci/install-clients.sh`).
    McpSdk,
    /// The PostgreSQL test cluster of `.ci/postgres.sh` (`DEPFW_TEST_POSTGRES_URL`).
    Postgres,
}

pub const NPM: Need = Need::Tool("npm");
pub const PNPM: Need = Need::Tool("pnpm");
pub const YARN: Need = Need::Tool("yarn");
pub const BUN: Need = Need::Tool("bun");
pub const PIP: Need = Need::Tool("pip");
pub const UV: Need = Need::Tool("uv");
pub const POETRY: Need = Need::Tool("poetry");
pub const CARGO: Need = Need::Tool("cargo");
pub const MCP_SDK: Need = Need::McpSdk;
pub const POSTGRES: Need = Need::Postgres;

impl Need {
    fn describe(self) -> String {
        match self {
            Need::Tool(tool) => tool.to_owned(),
            Need::Chromium => "chromium and chromedriver".to_owned(),
            Need::SharedData => {
                format!("shared data at {}", crate::support::shared_data().display())
            }
            Need::McpSdk => "the MCP Python SDK (mcp-python, .ci/install-clients.sh)".to_owned(),
            Need::Postgres => format!(
                "PostgreSQL ({} from `eval \"$(bash .ci/postgres.sh start)\"`)",
                depfw::store::pg::testing::URL_VAR
            ),
        }
    }

    fn short(self) -> &'static str {
        match self {
            Need::Tool(tool) => tool,
            Need::Chromium => "chromium",
            Need::SharedData => "shared data",
            Need::McpSdk => "mcp-sdk",
            Need::Postgres => "postgres",
        }
    }

    /// Probed once per process.
    fn available(self) -> bool {
        if hidden(self) {
            return false;
        }
        static SEEN: OnceLock<Mutex<HashMap<Need, bool>>> = OnceLock::new();
        let seen = SEEN.get_or_init(Mutex::default);
        if let Some(&known) = seen.lock().unwrap().get(&self) {
            return known;
        }
        let found = match self {
            Need::Tool(tool) => std::process::Command::new(tool)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success()),
            Need::Chromium => chromium().is_some(),
            Need::SharedData => crate::support::shared_data()
                .join("manifest.json")
                .is_file(),
            Need::McpSdk => std::process::Command::new("mcp-python")
                .args(["-c", "import mcp.client.stdio"])
                .output()
                .is_ok_and(|o| o.status.success()),
            Need::Postgres => std::env::var_os(depfw::store::pg::testing::URL_VAR).is_some(),
        };
        seen.lock().unwrap().insert(self, found);
        found
    }
}

/// Whether this is a CI run, where a missing need is a failure.
pub fn ci() -> bool {
    is_ci(std::env::var("CI").ok().as_deref())
}

/// `CI` set to anything but empty, `0`, `false`, `no` or `off` (any case): `CI=false` is not CI.
pub fn is_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no" | "off"
        )
    })
}

/// Tools to treat as missing (`DEPFW_TEST_HIDE=pnpm,yarn`): how the harness's own test shows
/// what a machine without them reports, on a machine that has them.
fn hidden(need: Need) -> bool {
    std::env::var("DEPFW_TEST_HIDE")
        .is_ok_and(|list| list.split(',').any(|n| n.trim() == need.short()))
}

/// A test named `module::name` that runs `test` when everything in `needs` is here.
pub fn trial(module: &str, name: &str, needs: &[Need], test: fn()) -> Trial {
    let full = if module.is_empty() {
        name.to_owned()
    } else {
        format!("{module}::{name}")
    };
    let missing: Vec<Need> = needs.iter().copied().filter(|n| !n.available()).collect();
    if missing.is_empty() {
        return Trial::test(full, move || run(test));
    }
    let list = missing
        .iter()
        .map(|n| n.describe())
        .collect::<Vec<_>>()
        .join(", ");
    let why = format!("needs {list}, which this machine does not have");
    if ci() {
        return Trial::test(full, move || {
            Err(format!("{why} (required under CI)").into())
        });
    }
    let kind = missing
        .iter()
        .map(|n| n.short())
        .collect::<Vec<_>>()
        .join(", ");
    // `--include-ignored` runs it anyway: it then fails, saying why, rather than pass.
    Trial::test(full, move || Err(why.into()))
        .with_kind(format!("needs {kind}"))
        .with_ignored_flag(true)
}

/// Lists a module's tests with their needs; a test function left out of the list is dead
/// code, which the build refuses (`-D warnings`), so no test can be forgotten.
///
/// ```ignore
/// trials! {
///     [NPM] => allowed_package_installs, range_resolves;
///     [PNPM] => pnpm_add_installs_the_newest_allowed_version;
/// }
/// ```
macro_rules! trials {
    ($($needs:tt => $($test:ident),+ $(,)?);+ $(;)?) => {
        pub fn trials() -> Vec<libtest_mimic::Trial> {
            let module = module_path!().split_once("::").map_or("", |(_, m)| m);
            vec![$($(
                $crate::require::trial(module, stringify!($test), &$needs, $test),
            )+)+]
        }
    };
}
pub(crate) use trials;

thread_local! {
    static TRANSCRIPT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Adds to the running test's transcript (printed if it fails); outside a test, to stderr.
pub fn note(text: impl AsRef<str>) {
    let text = text.as_ref();
    let kept = TRANSCRIPT.with_borrow_mut(|t| match t {
        Some(t) => {
            t.push_str(text);
            if !text.ends_with('\n') {
                t.push('\n');
            }
            true
        }
        None => false,
    });
    if !kept {
        eprintln!("{text}");
    }
}

/// Records panics on a test's own thread in its transcript instead of printing them, so a
/// failure shows once, with what led to it. Panics elsewhere print as usual.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let active = TRANSCRIPT.with_borrow(Option::is_some);
        if active {
            note(format!("panicked: {info}"));
        } else {
            default(info);
        }
    }));
}

fn run(test: fn()) -> Result<(), Failed> {
    TRANSCRIPT.set(Some(String::new()));
    let outcome = std::panic::catch_unwind(test);
    let transcript = TRANSCRIPT.take().unwrap_or_default();
    outcome.map_err(|_| Failed::from(transcript))
}

/// Chromium (or Chrome) and chromedriver, wherever the system put them: `DEPFW_CHROMIUM`
/// and `DEPFW_CHROMEDRIVER` if set, else the names Debian, Fedora, Arch and Google use, on
/// the `PATH`.
pub fn chromium() -> Option<(PathBuf, PathBuf)> {
    let browser = from_env("DEPFW_CHROMIUM").or_else(|| {
        [
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
            "chrome",
        ]
        .into_iter()
        .find_map(on_path)
    })?;
    let driver = from_env("DEPFW_CHROMEDRIVER").or_else(|| on_path("chromedriver"))?;
    Some((browser, driver))
}

fn from_env(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| is_executable(p))
}

/// The first executable `name` on the `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
