//! The real npm, uv and cargo clients installing private packages through depfw from a
//! fixture registry that requires a token (`[[upstream.npm.scopes]]`,
//! `[[upstream.pypi.private]]`, `[[upstream.cargo.private]]`): the client knows only depfw;
//! depfw alone holds the private registry's token.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;

use crate::client;
use crate::require::{CARGO, NPM, UV};
use crate::support::registry::{self, Depfw, FixtureState, TestCheck};

const TOKEN: &str = "s3cret-private-token";

struct Env {
    depfw: Depfw,
    public: Arc<FixtureState>,
    private: Arc<FixtureState>,
    tmp: tempfile::TempDir,
    // Last: dropped after the servers' handles, stopping them.
    _rt: tokio::runtime::Runtime,
}

/// A public and a token-requiring private fixture registry, and depfw over both with
/// `tables` (`{private}` and `{token}` replaced), whose token file holds `token`.
fn start(tables: &str, token: &str) -> Env {
    start_requiring(tables, token, &format!("Bearer {TOKEN}"))
}

/// [`start`] with the private registry requiring `Authorization: {required}`.
fn start_requiring(tables: &str, token: &str, required: &str) -> Env {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("private.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (public, private, depfw) = rt.block_on(async {
        let (public_base, public) = registry::start_fixture().await;
        let (private_base, private) = registry::start_fixture().await;
        *private.required_auth.lock().unwrap() = Some(required.to_owned());
        let tables = tables
            .replace("{private}", &private_base)
            .replace("{token}", &token_file.display().to_string());
        let policy = registry::policy(TestCheck::default());
        let depfw = registry::start_depfw(&public_base, policy, &tables).await;
        (public, private, depfw)
    });
    Env {
        depfw,
        public,
        private,
        tmp,
        _rt: rt,
    }
}

const NPM_SCOPE: &str = "\n[[upstream.npm.scopes]]\nscope = \"@isaacs\"\n\
     registry = \"{private}/\"\ntoken-file = \"{token}\"\n";

/// `npm install <spec>` in a fresh project against depfw only.
fn npm_install(env: &Env, spec: &str) -> (bool, String, std::path::PathBuf) {
    let project = env.tmp.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("package.json"),
        r#"{"name": "depfw-private-it", "version": "1.0.0", "private": true}"#,
    )
    .unwrap();
    let global = env.tmp.path().join("globalnpmrc");
    let registry = format!("{}/npm/", env.depfw.base);
    let mut cmd = client::npm_against(&registry, &env.tmp.path().join("npm-cache"), &global);
    cmd.args(["install", spec]).current_dir(&project);
    let (ok, text) = client::run(&mut cmd);
    (ok, text, project)
}

fn sent_auth(fixture: &FixtureState) -> Vec<Option<String>> {
    let seen = fixture.authorizations.lock().unwrap();
    seen.iter().map(|(_, a)| a.clone()).collect()
}

fn npm_installs_a_private_scoped_package_through_depfw() {
    let env = start(NPM_SCOPE, TOKEN);
    let (ok, text, project) = npm_install(&env, "@isaacs/string-locale-compare@1.1.0");
    assert!(ok, "{text}");
    let installed = project.join("node_modules/@isaacs/string-locale-compare/package.json");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&installed).unwrap()).unwrap();
    assert_eq!(manifest["version"], "1.1.0");
    // The lockfile names depfw, not the private registry, and holds no secret.
    let lock = std::fs::read_to_string(project.join("package-lock.json")).unwrap();
    assert!(lock.contains(&env.depfw.base), "{lock}");
    assert!(!lock.contains(TOKEN), "{lock}");
    assert_eq!(
        env.private
            .hits("/@isaacs/string-locale-compare/-/string-locale-compare-1.1.0.tgz"),
        1
    );
    let expected = Some(format!("Bearer {TOKEN}"));
    assert!(sent_auth(&env.private).iter().all(|a| *a == expected));
    assert!(env.public.hits.lock().unwrap().is_empty());
}

fn npm_prints_why_a_private_registry_refused_depfw() {
    let env = start(NPM_SCOPE, "a-revoked-token");
    let (ok, text, _) = npm_install(&env, "@isaacs/string-locale-compare@1.1.0");
    assert!(!ok, "{text}");
    assert!(text.contains("502"), "{text}");
    assert!(text.contains("upstream.npm.scopes[0]"), "{text}");
    assert!(!text.contains("a-revoked-token"), "{text}");
    assert!(env.public.hits.lock().unwrap().is_empty());
}

const PYPI_PRIVATE: &str = "\n[[upstream.pypi.private]]\nindex = \"{private}/pypi/simple/\"\n\
     files = \"{private}/pypi-files/\"\nnames = [\"six\"]\ntoken-file = \"{token}\"\n";

fn uv_installs_a_private_project_through_depfw() {
    let env = start(PYPI_PRIVATE, TOKEN);
    let target = env.tmp.path().join("target");
    let mut cmd = client::command("uv", &["pip_", "uv_", "virtual_env"]);
    cmd.env("UV_NO_CONFIG", "1")
        .env("UV_CACHE_DIR", env.tmp.path().join("uv-cache"))
        .args(["pip", "install", "--python", "python3", "--default-index"])
        .arg(format!("{}/pypi/simple/", env.depfw.base))
        .arg("--target")
        .arg(&target)
        .arg("six==1.17.0");
    let (ok, text) = client::run(&mut cmd);
    assert!(ok, "{text}");
    assert!(
        Path::new(&target).join("six-1.17.0.dist-info").is_dir(),
        "{text}"
    );
    let wheel_hits: usize = env
        .private
        .hits
        .lock()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.ends_with("/six-1.17.0-py2.py3-none-any.whl"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(wheel_hits, 1);
    let expected = Some(format!("Bearer {TOKEN}"));
    assert!(sent_auth(&env.private).iter().all(|a| *a == expected));
    assert!(env.public.hits.lock().unwrap().is_empty());
}

const CARGO_PRIVATE: &str = "\n[[upstream.cargo.private]]\n\
     index = \"sparse+{private}/cargo-index/\"\nnames = [\"itoa\"]\ntoken-file = \"{token}\"\n";

/// cargo, with crates-io replaced by depfw and no registry token of its own, fetches a
/// private crate: the private registry gets depfw's token, bare as cargo would send it.
fn cargo_fetches_a_private_crate_through_depfw() {
    let env = start_requiring(CARGO_PRIVATE, TOKEN, TOKEN);
    let app = crate::cargo::project_in(env.tmp.path(), "itoa = \"=1.0.11\"");
    let (ok, text) = crate::cargo::cargo_against(env.tmp.path(), &env.depfw.base, &app, &["fetch"]);
    assert!(ok, "{text}");
    let lock = std::fs::read_to_string(app.join("Cargo.lock")).unwrap();
    assert!(
        lock.contains("name = \"itoa\"\nversion = \"1.0.11\""),
        "{lock}"
    );
    assert!(!lock.contains(TOKEN), "{lock}");
    assert_eq!(env.private.hits("/crates/itoa/itoa-1.0.11.crate"), 1);
    let expected = Some(TOKEN.to_owned());
    let sent = sent_auth(&env.private);
    assert!(
        !sent.is_empty() && sent.iter().all(|a| *a == expected),
        "{sent:?}"
    );
    assert!(env.public.hits.lock().unwrap().is_empty());
}

crate::require::trials! {
    [NPM] =>
        npm_installs_a_private_scoped_package_through_depfw,
        npm_prints_why_a_private_registry_refused_depfw;
    [UV] => uv_installs_a_private_project_through_depfw;
    [CARGO] => cargo_fetches_a_private_crate_through_depfw;
}
