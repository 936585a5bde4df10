//! pip, uv and poetry through depfw, against the fixture registry's real wheels
//! (idna 3.9/3.10, six 1.16.0/1.17.0).
//!
//! Each test starts the fixture registry and depfw in-process on 127.0.0.1:0 and runs the
//! client with isolated caches and config (the machine's `PIP_*`/`UV_*` settings removed).
//! A missing client skips its tests with a notice, unless `CI` is set.

use std::path::{Path, PathBuf};

use crate::client;
use crate::require::{PIP, POETRY, UV};
use crate::support::registry::{self, Served, TestCheck};
use depfw::store::decisions::{DecisionRecord, RecordKind};

const IDNA_310: &str = "idna-3.10-py3-none-any.whl";

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Client {
    Pip,
    Uv,
}

impl Client {
    fn tool(self) -> &'static str {
        match self {
            Client::Pip => "pip",
            Client::Uv => "uv",
        }
    }
}

fn deny(specs: &[&str]) -> TestCheck {
    TestCheck {
        deny: specs.iter().map(|s| s.to_string()).collect(),
        ..TestCheck::default()
    }
}

fn index(s: &Served) -> String {
    format!("{}/pypi/simple/", s.depfw.base)
}

fn fresh_dir(s: &Served, what: &str) -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix(what)
        .tempdir_in(s.tmp.path())
        .unwrap()
        .keep();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `pip install` / `uv pip install` into a fresh `--target` directory with a fresh cache.
pub(crate) fn install(client: Client, s: &Served, args: &[&str]) -> (bool, String, PathBuf) {
    let target = fresh_dir(s, "target");
    let mut cmd = client::command(client.tool(), &["pip_", "uv_", "virtual_env"]);
    match client {
        Client::Pip => {
            cmd.env("PIP_CONFIG_FILE", "/dev/null")
                .args(["install", "--no-cache-dir", "--disable-pip-version-check"])
                .arg("--index-url");
        }
        Client::Uv => {
            cmd.env("UV_NO_CONFIG", "1")
                .env("UV_CACHE_DIR", fresh_dir(s, "uv-cache"))
                .args(["pip", "install", "--python", "python3"])
                .arg("--default-index");
        }
    }
    cmd.arg(index(s)).arg("--target").arg(&target).args(args);
    let (ok, text) = client::run(&mut cmd);
    (ok, text, target)
}

/// The distributions installed in `dir` (`idna-3.9`), from their `.dist-info` directories.
fn installed(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| {
                    let name = e.ok()?.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".dist-info").map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn records(s: &Served) -> Vec<DecisionRecord> {
    s.depfw.state.decisions().list(0, 1000).unwrap()
}

/// The depfw URL of a fixture file (as a lockfile made earlier would hold it).
fn proxied_file_url(s: &Served, project: &str, filename: &str) -> (String, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("integration/fixtures/pypi/{project}.json"));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let file = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == filename)
        .unwrap();
    let url = file["url"].as_str().unwrap().replacen(
        "FILES/",
        &format!("{}/pypi/files/", s.depfw.base),
        1,
    );
    (url, file["hashes"]["sha256"].as_str().unwrap().to_owned())
}

// --- scenarios shared by pip and uv ---

fn range_picks_newest_allowed(client: Client) {
    let s = registry::serve(deny(&["idna@3.10"]));
    let (ok, _, target) = install(client, &s, &["idna>=3.9", "six==1.17.0"]);
    assert!(ok);
    assert_eq!(installed(&target), ["idna-3.9", "six-1.17.0"]);
    let (idna_310, _) = proxied_file_url(&s, "idna", IDNA_310);
    let upstream =
        |url: &str| url.replacen(&format!("{}/pypi/files/", s.depfw.base), "/pypi-files/", 1);
    assert_eq!(s.fixture.hits(&upstream(&idna_310)), 0);
    // six 1.17.0 advertises PEP 658 metadata: the client reads it through depfw's gate.
    let (six, _) = proxied_file_url(&s, "six", "six-1.17.0-py2.py3-none-any.whl");
    assert_eq!(s.fixture.hits(&upstream(&format!("{six}.metadata"))), 1);
}

fn exact_pin_of_denied_version_fails(client: Client) {
    let s = registry::serve(deny(&["idna@3.10"]));
    let (ok, text, target) = install(client, &s, &["idna==3.10"]);
    assert!(!ok);
    assert!(installed(&target).is_empty());
    let expected = match client {
        // pip lists what it did see: the allowed version only.
        Client::Pip => "(from versions: 3.9)",
        Client::Uv => "no version of idna==3.10",
    };
    assert!(text.contains(expected), "{text}");
}

fn typosquat_is_refused(client: Client) {
    let s = registry::serve(TestCheck {
        deny_names: vec!["idnaa".into()],
        ..TestCheck::default()
    });
    let (ok, text, _) = install(client, &s, &["idnaa"]);
    assert!(!ok);
    if client == Client::Uv {
        assert!(text.contains("403 Forbidden"), "{text}");
    }
    assert!(records(&s)
        .iter()
        .any(|r| r.package == "idnaa" && r.kind == RecordKind::Metadata && r.outcome == "refused"));
}

fn tampered_wheel_is_refused(client: Client) {
    let s = registry::serve(TestCheck::default());
    s.fixture
        .tamper
        .lock()
        .unwrap()
        .insert("six-1.17.0-py2.py3-none-any.whl".into());
    let (ok, text, target) = install(client, &s, &["six==1.17.0"]);
    assert!(!ok);
    assert!(text.contains("502"), "{text}");
    assert!(installed(&target).is_empty());
    assert!(records(&s)
        .iter()
        .any(|r| r.package == "six" && r.outcome == "integrity-mismatch"));
}

/// A requirements file made while idna 3.10 was allowed, with its file URL and hash, skips
/// the project page: the artifact gate refuses it.
fn hash_pinned_lockfile_is_refused_at_the_gate(client: Client) {
    let s = registry::serve(deny(&["idna@3.10"]));
    let (url, sha) = proxied_file_url(&s, "idna", IDNA_310);
    let reqs = s.tmp.path().join("requirements.txt");
    std::fs::write(&reqs, format!("idna @ {url} --hash=sha256:{sha}\n")).unwrap();
    let (ok, text, target) = install(client, &s, &["-r", reqs.to_str().unwrap()]);
    assert!(!ok);
    assert!(text.contains("403"), "{text}");
    assert!(text.contains("idna@3.10 is denied by policy"), "{text}");
    assert!(installed(&target).is_empty());
    assert!(records(&s).iter().any(|r| r.kind == RecordKind::Artifact
        && r.version.as_deref() == Some("3.10")
        && r.outcome == "refused"));
}

pub(crate) const YANK: &str = "refused-versions = \"yank\"";

fn refused_at_gate(s: &Served, project: &str, version: &str) -> bool {
    records(s).iter().any(|r| {
        r.kind == RecordKind::Artifact
            && r.package == project
            && r.version.as_deref() == Some(version)
            && r.outcome == "refused"
    })
}

/// With `server.refused-versions = "yank"`, a range still skips the denied release, while an
/// `==` pin selects the yanked file: the client resolves it (six 1.17.0's PEP 658 metadata
/// is served), prints depfw's reason as the yank reason, and the wheel is refused at the gate.
fn yank_mode_pin_shows_depfws_reason(client: Client) {
    let s = registry::serve_with(deny(&["six@1.17.0"]), YANK);
    let (ok, _, target) = install(client, &s, &["six>=1.16"]);
    assert!(ok);
    assert_eq!(installed(&target), ["six-1.16.0"]);
    assert!(!refused_at_gate(&s, "six", "1.17.0"));

    let (ok, text, target) = install(client, &s, &["six==1.17.0"]);
    assert!(!ok);
    assert!(installed(&target).is_empty());
    assert!(text.contains("403"), "{text}");
    let reason =
        "depfw: six@1.17.0 is denied by policy: deny-listed: six@1.17.0 is on the test deny list";
    match client {
        // pip warns about the yanked candidate after resolving, before downloading.
        Client::Pip => assert!(
            text.contains(&format!("Reason for being yanked: {reason}")),
            "{text}"
        ),
        // uv reports yanked versions only in its summary after a successful install; the
        // failed download shows the reason through the 403's reason phrase, and resolving
        // alone shows it as the yank reason.
        Client::Uv => {
            assert!(
                text.contains(&format!("403 Forbidden - {reason}")),
                "{text}"
            );
            let reqs = s.tmp.path().join("pin.in");
            std::fs::write(&reqs, "six==1.17.0\n").unwrap();
            let mut cmd = client::command("uv", &["pip_", "uv_", "virtual_env"]);
            cmd.env("UV_NO_CONFIG", "1")
                .env("UV_CACHE_DIR", fresh_dir(&s, "uv-cache"))
                .args(["pip", "compile", "--python", "python3", "--default-index"])
                .arg(index(&s))
                .arg(&reqs);
            let (ok, text) = client::run(&mut cmd);
            assert!(ok, "{text}");
            assert!(text.contains(reason), "{text}");
        }
    }
    assert!(refused_at_gate(&s, "six", "1.17.0"), "{:?}", records(&s));
    let (wheel, _) = proxied_file_url(&s, "six", "six-1.17.0-py2.py3-none-any.whl");
    let upstream = wheel.replacen(&format!("{}/pypi/files/", s.depfw.base), "/pypi-files/", 1);
    assert_eq!(s.fixture.hits(&upstream), 0);
}

fn pip_yank_mode_pin_shows_depfws_reason() {
    yank_mode_pin_shows_depfws_reason(Client::Pip);
}
fn uv_yank_mode_pin_shows_depfws_reason() {
    yank_mode_pin_shows_depfws_reason(Client::Uv);
}

fn pip_range_picks_newest_allowed() {
    range_picks_newest_allowed(Client::Pip);
}
fn pip_exact_pin_of_denied_version_fails() {
    exact_pin_of_denied_version_fails(Client::Pip);
}
fn pip_typosquat_is_refused() {
    typosquat_is_refused(Client::Pip);
}
fn pip_tampered_wheel_is_refused() {
    tampered_wheel_is_refused(Client::Pip);
}
fn pip_hash_pinned_lockfile_is_refused_at_the_gate() {
    hash_pinned_lockfile_is_refused_at_the_gate(Client::Pip);
}
fn uv_range_picks_newest_allowed() {
    range_picks_newest_allowed(Client::Uv);
}
fn uv_exact_pin_of_denied_version_fails() {
    exact_pin_of_denied_version_fails(Client::Uv);
}
fn uv_typosquat_is_refused() {
    typosquat_is_refused(Client::Uv);
}
fn uv_tampered_wheel_is_refused() {
    tampered_wheel_is_refused(Client::Uv);
}
fn uv_hash_pinned_lockfile_is_refused_at_the_gate() {
    hash_pinned_lockfile_is_refused_at_the_gate(Client::Uv);
}

// --- poetry: project-based ---

/// A poetry project depending on `deps` (TOML lines), with depfw as its only source.
pub(crate) fn poetry_project(s: &Served, deps: &str) -> PathBuf {
    let dir = fresh_dir(s, "poetry-project");
    std::fs::write(
        dir.join("pyproject.toml"),
        format!(
            "[tool.poetry]\npackage-mode = false\n\n[tool.poetry.dependencies]\npython = \">=3.8\"\n{deps}\n\n\
             [[tool.poetry.source]]\nname = \"depfw\"\nurl = \"{}\"\npriority = \"primary\"\n",
            index(s)
        ),
    )
    .unwrap();
    dir
}

/// Runs poetry in `project` with fresh cache/config/virtualenv directories.
pub(crate) fn poetry(s: &Served, project: &Path, args: &[&str]) -> (bool, String) {
    let mut cmd = client::command("poetry", &["poetry_", "pip_", "virtual_env"]);
    cmd.current_dir(project)
        .env("POETRY_CACHE_DIR", fresh_dir(s, "poetry-cache"))
        .env("POETRY_CONFIG_DIR", fresh_dir(s, "poetry-config"))
        .env("POETRY_DATA_DIR", fresh_dir(s, "poetry-data"))
        .env("POETRY_VIRTUALENVS_IN_PROJECT", "true")
        .env("POETRY_NO_INTERACTION", "1")
        .env("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
        .args(args);
    client::run(&mut cmd)
}

fn venv_installed(project: &Path) -> Vec<String> {
    let lib = project.join(".venv/lib");
    let Ok(mut pythons) = std::fs::read_dir(&lib) else {
        return Vec::new();
    };
    let python = pythons.next().unwrap().unwrap().path();
    installed(&python.join("site-packages"))
        .into_iter()
        .filter(|d| d.starts_with("idna") || d.starts_with("six"))
        .collect()
}

fn poetry_range_picks_newest_allowed() {
    let s = registry::serve(deny(&["idna@3.10"]));
    let project = poetry_project(&s, "idna = \">=3.9\"");
    let (ok, _) = poetry(&s, &project, &["install", "--no-root"]);
    assert!(ok);
    let lock = std::fs::read_to_string(project.join("poetry.lock")).unwrap();
    assert!(
        lock.contains("version = \"3.9\"") && !lock.contains("3.10"),
        "{lock}"
    );
    assert_eq!(venv_installed(&project), ["idna-3.9"]);
}

fn poetry_exact_pin_of_denied_version_fails() {
    let s = registry::serve(deny(&["idna@3.10"]));
    let project = poetry_project(&s, "idna = \"3.10\"");
    let (ok, text) = poetry(&s, &project, &["lock"]);
    assert!(!ok);
    assert!(text.contains("idna"), "{text}");
    assert!(!project.join("poetry.lock").exists());
}

fn poetry_typosquat_is_refused() {
    let s = registry::serve(TestCheck {
        deny_names: vec!["idnaa".into()],
        ..TestCheck::default()
    });
    let project = poetry_project(&s, "idnaa = \"*\"");
    let (ok, _) = poetry(&s, &project, &["lock"]);
    assert!(!ok);
    assert!(records(&s)
        .iter()
        .any(|r| r.package == "idnaa" && r.outcome == "refused"));
}

fn poetry_tampered_wheel_is_refused() {
    let s = registry::serve(TestCheck::default());
    s.fixture
        .tamper
        .lock()
        .unwrap()
        .insert("six-1.17.0-py2.py3-none-any.whl".into());
    let project = poetry_project(&s, "six = \"1.17.0\"");
    let (ok, _) = poetry(&s, &project, &["install", "--no-root"]);
    assert!(!ok);
    assert!(venv_installed(&project).is_empty());
    assert!(records(&s)
        .iter()
        .any(|r| r.package == "six" && r.outcome == "integrity-mismatch"));
}

/// `poetry.lock` made while idna 3.10 was allowed; installing it after the policy changed
/// fails and installs nothing. In the default `refused-versions = "remove"` mode poetry fails
/// on the page (the release is gone), before the gate; see the yank-mode test below.
fn poetry_lockfile_of_denied_version_is_refused() {
    let s = registry::serve(TestCheck::default());
    let project = poetry_project(&s, "idna = \"3.10\"");
    let (ok, _) = poetry(&s, &project, &["lock"]);
    assert!(ok);
    s.depfw
        .state
        .set_policy(registry::policy(deny(&["idna@3.10"])));
    let (ok, _) = poetry(&s, &project, &["install", "--no-root"]);
    assert!(!ok);
    assert!(venv_installed(&project).is_empty());
}

/// The same lockfile with `server.refused-versions = "yank"`: poetry installs what the lock
/// says, so it asks for the yanked file, the artifact gate refuses it, and poetry prints
/// depfw's reason as the yank reason.
fn poetry_yank_mode_lockfile_of_denied_version_is_refused_at_the_gate() {
    let s = registry::serve_with(TestCheck::default(), YANK);
    let project = poetry_project(&s, "idna = \"3.10\"");
    let (ok, _) = poetry(&s, &project, &["lock"]);
    assert!(ok);
    s.depfw
        .state
        .set_policy(registry::policy(deny(&["idna@3.10"])));
    let (ok, text) = poetry(&s, &project, &["install", "--no-root"]);
    assert!(!ok);
    assert!(venv_installed(&project).is_empty());
    assert!(refused_at_gate(&s, "idna", "3.10"), "{:?}", records(&s));
    assert!(text.contains("403"), "{text}");
    // poetry shows the yank reason alongside the failure.
    assert!(
        text.contains(
            "is yanked. Reason for being yanked: depfw: idna@3.10 is denied by policy: deny-listed"
        ),
        "{text}"
    );
}

crate::require::trials! {
    [PIP] =>
        pip_yank_mode_pin_shows_depfws_reason,
        pip_range_picks_newest_allowed,
        pip_exact_pin_of_denied_version_fails,
        pip_typosquat_is_refused,
        pip_tampered_wheel_is_refused,
        pip_hash_pinned_lockfile_is_refused_at_the_gate;
    [UV] =>
        uv_yank_mode_pin_shows_depfws_reason,
        uv_range_picks_newest_allowed,
        uv_exact_pin_of_denied_version_fails,
        uv_typosquat_is_refused,
        uv_tampered_wheel_is_refused,
        uv_hash_pinned_lockfile_is_refused_at_the_gate;
    [POETRY] =>
        poetry_range_picks_newest_allowed,
        poetry_exact_pin_of_denied_version_fails,
        poetry_typosquat_is_refused,
        poetry_tampered_wheel_is_refused,
        poetry_lockfile_of_denied_version_is_refused,
        poetry_yank_mode_lockfile_of_denied_version_is_refused_at_the_gate;
}
