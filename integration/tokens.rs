//! Issue #12: agent tokens stay out of lockfiles. Each of the eight clients installs through
//! depfw as an agent, sending the token the way it authenticates to any private registry
//! (configured as `depfw init <client> --agent NAME` prints it, the token read from the
//! environment or a credential file outside the project); then no file under the test's
//! directories except that credential file holds the token, the decision records name the
//! agent, and (npm, uv, cargo) the lockfiles two agents write are identical.
//!
//! The clients use depfw's `/auth/` mount, where a request without a token is challenged.
//! (Checked by hand on the plain mounts, where loopback clients may be anonymous: every
//! client here but cargo sends its credentials unasked; cargo only after a 401, which is why
//! `/auth/` exists.)

use std::path::{Path, PathBuf};

use crate::client;
use crate::require::{BUN, CARGO, NPM, PIP, PNPM, POETRY, UV, YARN};
use crate::support::registry::{self, Served, TestCheck};
use depfw::agents::PolicyPreset;

/// An agent of `s`'s depfw, with its token.
fn agent(s: &Served, name: &str) -> String {
    let (_, token) = s
        .depfw
        .state
        .agents()
        .add(name, PolicyPreset::Default)
        .unwrap();
    token.expose_secret().to_owned()
}

/// `<depfw>/auth`: the mount where a token is required.
fn auth_base(s: &Served) -> String {
    format!("{}/auth", s.depfw.base)
}

/// A fresh directory under the test's temp dir.
fn dir(s: &Served, what: &str) -> PathBuf {
    let d = s.tmp.path().join(what);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Fails if any file under `root` (outside `except`) contains `token`, in clear or in the
/// base64 of HTTP Basic credentials.
fn assert_no_token(root: &Path, token: &str, except: Option<&Path>) {
    let found = files_with_token(root, token, except);
    assert!(found.is_empty(), "the agent token is in {found:?}");
}

/// The files under `root` (outside `except`) that contain `token`, in clear or in the
/// base64 of HTTP Basic credentials.
fn files_with_token(root: &Path, token: &str, except: Option<&Path>) -> Vec<PathBuf> {
    use base64::Engine as _;
    let needles: Vec<Vec<u8>> = vec![
        token.as_bytes().to_vec(),
        base64::engine::general_purpose::STANDARD
            .encode(format!("agent:{token}"))
            .into_bytes(),
    ];
    let mut stack = vec![root.to_path_buf()];
    let mut files = 0;
    let mut found = Vec::new();
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if Some(path.as_path()) == except {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                files += 1;
                let bytes = std::fs::read(&path).unwrap();
                if needles
                    .iter()
                    .any(|n| bytes.windows(n.len()).any(|w| w == n.as_slice()))
                {
                    found.push(path);
                }
            }
        }
    }
    assert!(files > 0, "nothing was written under {}", root.display());
    found
}

/// The agents named in `s`'s decision records (artifact downloads included).
fn recorded_agents(s: &Served) -> Vec<Option<String>> {
    let records = s.depfw.state.decisions().list(0, 1000).unwrap();
    assert!(
        records
            .iter()
            .any(|r| r.kind == depfw::store::decisions::RecordKind::Artifact),
        "no download was recorded: {records:?}"
    );
    records.into_iter().map(|r| r.client.agent).collect()
}

fn assert_all_by(s: &Served, agents: &[&str]) {
    let recorded = recorded_agents(s);
    assert!(
        recorded
            .iter()
            .all(|a| a.as_deref().is_some_and(|a| agents.contains(&a))),
        "records not attributed to {agents:?}: {recorded:?}"
    );
    for a in agents {
        assert!(
            recorded.iter().any(|r| r.as_deref() == Some(*a)),
            "no record names {a}: {recorded:?}"
        );
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// --- npm, pnpm, yarn, bun: a bearer token ---

const PACKAGE_JSON: &str = r#"{"name": "depfw-it", "version": "1.0.0", "private": true}"#;

/// A project whose `.npmrc` is what `depfw init npm --agent` prints: the token comes from
/// `$DEPFW_TOKEN`.
fn npm_project(s: &Served, name: &str) -> PathBuf {
    let project = dir(s, name);
    std::fs::write(project.join("package.json"), PACKAGE_JSON).unwrap();
    let registry = format!("{}/npm/", auth_base(s));
    let nerf = registry.split_once("//").unwrap().1.to_owned();
    std::fs::write(
        project.join(".npmrc"),
        format!(
            "registry={registry}\n//{nerf}:_authToken=${{DEPFW_TOKEN}}\n\
             omit-lockfile-registry-resolved=false\nfetch-retries=0\n"
        ),
    )
    .unwrap();
    project
}

fn npm_install(s: &Served, project: &Path, token: &str) {
    let cache = project.with_extension("cache");
    let mut cmd = client::command("npm", &["npm_config_"]);
    cmd.args(["install", "is-number@7", "--no-audit", "--no-fund"])
        .args(["--no-update-notifier", "--userconfig=/dev/null"])
        .arg(format!("--cache={}", cache.display()))
        .arg(format!(
            "--globalconfig={}",
            s.tmp.path().join("nothing").display()
        ))
        .env("DEPFW_TOKEN", token)
        .current_dir(project);
    let (ok, text) = client::run(&mut cmd);
    assert!(ok, "{text}");
}

fn npm_lockfile_holds_no_token_and_is_the_same_for_two_agents() {
    let s = registry::serve(TestCheck::default());
    let (one, two) = (agent(&s, "one"), agent(&s, "two"));
    let (p1, p2) = (npm_project(&s, "p1"), npm_project(&s, "p2"));
    npm_install(&s, &p1, &one);
    npm_install(&s, &p2, &two);
    let lock = read(&p1.join("package-lock.json"));
    let doc: serde_json::Value = serde_json::from_str(&lock).unwrap();
    assert_eq!(
        doc["packages"]["node_modules/is-number"]["resolved"],
        format!("{}/npm/is-number/-/is-number-7.0.0.tgz", auth_base(&s))
    );
    assert_eq!(lock, read(&p2.join("package-lock.json")));
    assert_no_token(s.tmp.path(), &one, None);
    assert_no_token(s.tmp.path(), &two, None);
    assert_all_by(&s, &["one", "two"]);
}

/// What the `/a/<token>/` mirror URL (for clients that cannot send a header) does, as the
/// README and `depfw init --token-in-path` say: the token ends up in the lockfile. (Also
/// shows that the search above finds a token where there is one.)
fn npm_lockfile_through_the_token_path_holds_the_token() {
    let s = registry::serve(TestCheck::default());
    let token = agent(&s, "pathy");
    let project = dir(&s, "p");
    std::fs::write(project.join("package.json"), PACKAGE_JSON).unwrap();
    let registry = format!("{}/a/{token}/npm/", s.depfw.base);
    std::fs::write(project.join(".npmrc"), format!("registry={registry}\n")).unwrap();
    npm_install(&s, &project, "unused");
    std::fs::remove_file(project.join(".npmrc")).unwrap();
    let found = files_with_token(&project, &token, None);
    assert!(
        found.contains(&project.join("package-lock.json")),
        "{found:?}"
    );
    assert_all_by(&s, &["pathy"]);
}

/// pnpm, yarn berry or bun in a fresh project, `HOME` and caches under the temp dir,
/// configured for the agent as `depfw init` prints it; returns the project.
fn js_install(s: &Served, tool: &str, token: &str) -> PathBuf {
    let project = dir(s, "project");
    let home = dir(s, "home");
    std::fs::write(project.join("package.json"), PACKAGE_JSON).unwrap();
    let registry = format!("{}/npm/", auth_base(s));
    let nerf = registry.split_once("//").unwrap().1.to_owned();
    let mut envs: Vec<(&str, String)> = vec![];
    match tool {
        "pnpm" => {
            // pnpm expands no variable in a project's credentials: the token line goes to
            // the user's .npmrc, as `depfw init pnpm --agent` says.
            std::fs::write(project.join(".npmrc"), format!("registry={registry}\n")).unwrap();
            std::fs::write(
                home.join(".npmrc"),
                format!("//{nerf}:_authToken=${{DEPFW_TOKEN}}\n"),
            )
            .unwrap();
            std::fs::write(
                project.join("pnpm-workspace.yaml"),
                format!(
                    "storeDir: \"{}\"\nfetchRetries: 0\nminimumReleaseAge: 0\n",
                    s.tmp.path().join("pnpm-store").display()
                ),
            )
            .unwrap();
        }
        "yarn" => {
            std::fs::write(
                project.join(".yarnrc.yml"),
                format!(
                    "npmRegistryServer: \"{registry}\"\nnpmAuthToken: \"${{DEPFW_TOKEN}}\"\n\
                     npmAlwaysAuth: true\nunsafeHttpWhitelist:\n  - \"127.0.0.1\"\n\
                     enableGlobalCache: false\nenableMirror: false\nenableTelemetry: false\n\
                     nodeLinker: node-modules\n"
                ),
            )
            .unwrap();
            std::fs::write(project.join("yarn.lock"), "").unwrap();
        }
        "bun" => {
            std::fs::write(
                project.join("bunfig.toml"),
                format!(
                    "[install]\nregistry = {{ url = \"{registry}\", token = \"$DEPFW_TOKEN\" }}\n"
                ),
            )
            .unwrap();
            envs.push((
                "BUN_INSTALL_CACHE_DIR",
                s.tmp.path().join("bun-cache").display().to_string(),
            ));
        }
        _ => unreachable!(),
    }
    let mut cmd = client::command(tool, &["npm_config_", "yarn_", "bun_"]);
    cmd.args(["add", "is-number@7"])
        .current_dir(&project)
        .env("DEPFW_TOKEN", token);
    client::isolated_home(&mut cmd, &home);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let (ok, text) = client::run(&mut cmd);
    assert!(ok, "{text}");
    assert!(
        project
            .join("node_modules/is-number/package.json")
            .is_file(),
        "{text}"
    );
    project
}

fn js_lockfile_holds_no_token(tool: &str, lockfile: &str) {
    let s = registry::serve(TestCheck::default());
    let token = agent(&s, "js");
    let project = js_install(&s, tool, &token);
    let lock = read(&project.join(lockfile));
    assert!(lock.contains("is-number"), "{lock}");
    assert_no_token(s.tmp.path(), &token, None);
    assert_all_by(&s, &["js"]);
}

fn pnpm_lockfile_holds_no_token() {
    js_lockfile_holds_no_token("pnpm", "pnpm-lock.yaml");
}

fn yarn_berry_lockfile_holds_no_token() {
    js_lockfile_holds_no_token("yarn", "yarn.lock");
}

fn bun_lockfile_holds_no_token() {
    js_lockfile_holds_no_token("bun", "bun.lock");
}

// --- pip, uv, poetry: HTTP Basic with the token as password ---

/// A netrc with the agent's token, outside the directories checked for it.
fn netrc(s: &Served, token: &str) -> PathBuf {
    let path = dir(s, "credentials").join("netrc");
    std::fs::write(
        &path,
        format!("machine 127.0.0.1 login agent password {token}\n"),
    )
    .unwrap();
    path
}

fn pip_install_sends_the_token_from_netrc() {
    let s = registry::serve(TestCheck::default());
    let token = agent(&s, "snake");
    let netrc = netrc(&s, &token);
    let target = dir(&s, "target");
    let mut cmd = client::command("pip", &["pip_", "virtual_env"]);
    cmd.env("PIP_CONFIG_FILE", "/dev/null")
        .env("NETRC", &netrc)
        .env("HOME", dir(&s, "home"))
        .args(["install", "--disable-pip-version-check", "--no-input"])
        .arg("--cache-dir")
        .arg(dir(&s, "pip-cache"))
        .arg("--index-url")
        .arg(format!("{}/pypi/simple/", auth_base(&s)))
        .arg("--target")
        .arg(&target)
        .arg("idna==3.9");
    let (ok, text) = client::run(&mut cmd);
    assert!(ok, "{text}");
    assert!(target.join("idna").is_dir(), "{text}");
    assert_no_token(s.tmp.path(), &token, Some(&netrc));
    assert_all_by(&s, &["snake"]);
}

/// A uv project with depfw as its named default index, as `depfw init uv --agent` prints.
fn uv_project(s: &Served, name: &str) -> PathBuf {
    let project = dir(s, name);
    std::fs::write(
        project.join("pyproject.toml"),
        format!(
            "[project]\nname = \"depfw-it\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\n\
             dependencies = [\"idna==3.9\"]\n\n\
             [[tool.uv.index]]\nname = \"depfw\"\nurl = \"{}/pypi/simple/\"\ndefault = true\n",
            auth_base(s)
        ),
    )
    .unwrap();
    project
}

fn uv_sync(s: &Served, project: &Path, token: &str) {
    let mut cmd = client::command("uv", &["uv_", "pip_", "virtual_env"]);
    cmd.current_dir(project)
        .env("UV_CACHE_DIR", project.with_extension("uv-cache"))
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_INDEX_DEPFW_USERNAME", "agent")
        .env("UV_INDEX_DEPFW_PASSWORD", token)
        .env("HOME", dir(s, "home"))
        .args(["sync", "--python", "python3"]);
    let (ok, text) = client::run(&mut cmd);
    assert!(ok, "{text}");
}

fn uv_lock_holds_no_token_and_is_the_same_for_two_agents() {
    let s = registry::serve(TestCheck::default());
    let (one, two) = (agent(&s, "one"), agent(&s, "two"));
    let (p1, p2) = (uv_project(&s, "p1"), uv_project(&s, "p2"));
    uv_sync(&s, &p1, &one);
    uv_sync(&s, &p2, &two);
    let lock = read(&p1.join("uv.lock"));
    assert!(
        lock.contains(&format!("registry = \"{}/pypi/simple/\"", auth_base(&s))),
        "{lock}"
    );
    assert_eq!(lock, read(&p2.join("uv.lock")));
    assert_no_token(s.tmp.path(), &one, None);
    assert_no_token(s.tmp.path(), &two, None);
    assert_all_by(&s, &["one", "two"]);
}

/// uv strips credentials from the URLs it writes into uv.lock: with the token in the index
/// URL's user info (`UV_DEFAULT_INDEX=http://agent:<token>@…`), uv.lock still holds none.
fn uv_lock_strips_credentials_given_in_the_index_url() {
    let s = registry::serve(TestCheck::default());
    let token = agent(&s, "urly");
    let project = dir(&s, "p");
    std::fs::write(
        project.join("pyproject.toml"),
        "[project]\nname = \"depfw-it\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\n\
         dependencies = [\"idna==3.9\"]\n",
    )
    .unwrap();
    let index = auth_base(&s).replacen("http://", &format!("http://agent:{token}@"), 1);
    let mut cmd = client::command("uv", &["uv_", "pip_", "virtual_env"]);
    cmd.current_dir(&project)
        .env("UV_CACHE_DIR", dir(&s, "uv-cache"))
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_DEFAULT_INDEX", format!("{index}/pypi/simple/"))
        .env("HOME", dir(&s, "home"))
        .args(["sync", "--python", "python3"]);
    let (ok, text) = client::run(&mut cmd);
    assert!(ok, "{text}");
    let lock = read(&project.join("uv.lock"));
    assert!(
        lock.contains(&format!("registry = \"{}/pypi/simple/\"", auth_base(&s))),
        "{lock}"
    );
    assert_no_token(s.tmp.path(), &token, None);
    assert_all_by(&s, &["urly"]);
}

fn poetry_lockfile_holds_no_token() {
    let s = registry::serve(TestCheck::default());
    let token = agent(&s, "verse");
    let project = dir(&s, "project");
    std::fs::write(
        project.join("pyproject.toml"),
        format!(
            "[tool.poetry]\npackage-mode = false\n\n[tool.poetry.dependencies]\n\
             python = \">=3.8\"\nidna = \"3.9\"\n\n\
             [[tool.poetry.source]]\nname = \"depfw\"\nurl = \"{}/pypi/simple/\"\npriority = \"primary\"\n",
            auth_base(&s)
        ),
    )
    .unwrap();
    let mut cmd = client::command("poetry", &["poetry_", "pip_", "virtual_env"]);
    cmd.current_dir(&project)
        .env("POETRY_CACHE_DIR", dir(&s, "poetry-cache"))
        .env("POETRY_CONFIG_DIR", dir(&s, "poetry-config"))
        .env("POETRY_DATA_DIR", dir(&s, "poetry-data"))
        .env("POETRY_VIRTUALENVS_IN_PROJECT", "true")
        .env("POETRY_NO_INTERACTION", "1")
        .env("POETRY_HTTP_BASIC_DEPFW_USERNAME", "agent")
        .env("POETRY_HTTP_BASIC_DEPFW_PASSWORD", &token)
        .env("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
        .env("HOME", dir(&s, "home"))
        .args(["install", "--no-root"]);
    let (ok, text) = client::run(&mut cmd);
    assert!(ok, "{text}");
    assert!(read(&project.join("poetry.lock")).contains("name = \"idna\""));
    assert_no_token(s.tmp.path(), &token, None);
    assert_all_by(&s, &["verse"]);
}

// --- cargo: a registry token ---

/// A crate whose `.cargo/config.toml` is what `depfw init cargo --agent` prints.
fn cargo_project(s: &Served, name: &str) -> PathBuf {
    let project = dir(s, name);
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::create_dir_all(project.join(".cargo")).unwrap();
    std::fs::write(project.join("src/lib.rs"), "").unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nitoa = \"1\"\n",
    )
    .unwrap();
    std::fs::write(
        project.join(".cargo/config.toml"),
        format!(
            "[registries.depfw]\nindex = \"sparse+{}/cargo/index/\"\n\
             credential-provider = \"cargo:token\"\n\n\
             [source.crates-io]\nreplace-with = \"depfw\"\n\n[net]\nretry = 0\n",
            auth_base(s)
        ),
    )
    .unwrap();
    project
}

fn cargo_fetch(project: &Path, token: &str) {
    let mut cmd = client::command("cargo", &["cargo_"]);
    cmd.current_dir(project)
        .env("CARGO_HOME", project.with_extension("cargo-home"))
        .env("CARGO_TARGET_DIR", project.join("target"))
        .env("CARGO_REGISTRIES_DEPFW_TOKEN", token)
        .arg("fetch");
    let (ok, text) = client::run(&mut cmd);
    assert!(ok, "{text}");
}

fn cargo_lockfile_holds_no_token_and_is_the_same_for_two_agents() {
    let s = registry::serve(TestCheck::default());
    let (one, two) = (agent(&s, "one"), agent(&s, "two"));
    let (p1, p2) = (cargo_project(&s, "p1"), cargo_project(&s, "p2"));
    cargo_fetch(&p1, &one);
    cargo_fetch(&p2, &two);
    let lock = read(&p1.join("Cargo.lock"));
    assert!(
        lock.contains("source = \"registry+https://github.com/rust-lang/crates.io-index\""),
        "{lock}"
    );
    assert_eq!(lock, read(&p2.join("Cargo.lock")));
    assert_no_token(s.tmp.path(), &one, None);
    assert_no_token(s.tmp.path(), &two, None);
    assert_all_by(&s, &["one", "two"]);
}

crate::require::trials! {
    [NPM] =>
        npm_lockfile_holds_no_token_and_is_the_same_for_two_agents,
        npm_lockfile_through_the_token_path_holds_the_token;
    [PNPM] => pnpm_lockfile_holds_no_token;
    [YARN] => yarn_berry_lockfile_holds_no_token;
    [BUN] => bun_lockfile_holds_no_token;
    [PIP] => pip_install_sends_the_token_from_netrc;
    [UV] =>
        uv_lock_holds_no_token_and_is_the_same_for_two_agents,
        uv_lock_strips_credentials_given_in_the_index_url;
    [POETRY] => poetry_lockfile_holds_no_token;
    [CARGO] => cargo_lockfile_holds_no_token_and_is_the_same_for_two_agents;
}
