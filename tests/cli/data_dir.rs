//! Issue #16: one default data directory, whatever the working directory: `depfw agents add`
//! run in another folder reaches the store the server uses (it used to make a new
//! `./.depfw`), a store an older depfw left in `./.depfw` is named rather than silently
//! replaced, a relative `server.data-dir` is the config file's, and every command that
//! opens a store says which on stderr. Each test has a `XDG_STATE_HOME` (or `HOME`) of its
//! own: none writes into the state directory of whoever runs the tests.

use std::path::Path;
use std::process::Command;

use crate::support::{code, depfw_command, stderr, stdout};

/// `depfw args…` run in `cwd` with `state` as `$XDG_STATE_HOME`.
fn in_dir(cwd: &Path, state: &Path) -> Command {
    let mut cmd = depfw_command();
    cmd.current_dir(cwd).env("XDG_STATE_HOME", state);
    cmd
}

#[test]
fn agents_add_in_another_folder_uses_the_default_store_of_the_first() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let out = in_dir(&a, &state)
        .args(["agents", "add", "bot"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let store = state.join("depfw");
    assert_eq!(
        stderr(&out),
        format!(
            "depfw: store: sled at {} (default, $XDG_STATE_HOME/depfw)\n",
            store.display()
        )
    );
    assert!(store.join("store").is_dir());
    assert!(
        !a.join(".depfw").exists(),
        "nothing in the working directory"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&store).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the data directory is depfw's alone");
    }
    let out = in_dir(&b, &state)
        .args(["agents", "list"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("bot"), "{}", stdout(&out));
    // `check` reads the store when the default one has one, and says so.
    let out = in_dir(&b, &state)
        .args(["check", "npm", "left-pad@1.3.0"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with(&format!("depfw: store: sled at {}", store.display())),
        "{}",
        stderr(&out)
    );

    // Without XDG_STATE_HOME, `~/.local/state/depfw`.
    let home = root.path().join("home");
    let out = depfw_command()
        .current_dir(&b)
        .env_remove("XDG_STATE_HOME")
        .env("HOME", &home)
        .args(["agents", "list"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let store = home.join(".local/state/depfw");
    assert!(
        stderr(&out).contains(&format!("sled at {} (default,", store.display())),
        "{}",
        stderr(&out)
    );
    assert!(store.join("store").is_dir());

    // With neither, a command that needs a store says how to name one; one that does not
    // need it still runs.
    let none = |args: &[&str]| {
        depfw_command()
            .current_dir(&b)
            .env_remove("XDG_STATE_HOME")
            .env_remove("HOME")
            .args(args)
            .output()
            .unwrap()
    };
    let out = none(&["agents", "list"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("pass --data-dir DIR"),
        "{}",
        stderr(&out)
    );
    let out = none(&["check", "npm", "left-pad@1.3.0"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// `$STATE_DIRECTORY` (systemd's `StateDirectory=`) wins over the XDG default.
#[test]
fn systemd_state_directory_is_the_default_under_systemd() {
    let root = tempfile::tempdir().unwrap();
    let out = in_dir(root.path(), &root.path().join("state"))
        .env("STATE_DIRECTORY", root.path().join("systemd"))
        .args(["agents", "list"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(root.path().join("systemd/store").is_dir());
    assert!(!root.path().join("state").exists());
    assert!(
        stderr(&out).contains("($STATE_DIRECTORY)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_relative_data_dir_in_the_config_is_beside_the_config_file() {
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc");
    let elsewhere = root.path().join("elsewhere");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(etc.join("depfw.toml"), "[server]\ndata-dir = \"state\"\n").unwrap();
    let out = in_dir(&elsewhere, &root.path().join("xdg"))
        .args(["--config", "../etc/depfw.toml", "agents", "add", "bot"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(etc.join("state/store").is_dir(), "beside the config file");
    assert!(
        !elsewhere.join("state").exists(),
        "not the working directory's"
    );
    assert!(
        stderr(&out).contains(&format!(
            "sled at {} (server.data-dir)",
            etc.canonicalize().unwrap().join("state").display()
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_store_left_in_dot_depfw_is_named_with_how_to_keep_using_it() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    let old = in_dir(root.path(), &state)
        .args(["--data-dir", ".depfw", "agents", "add", "old-bot"])
        .output()
        .unwrap();
    assert_eq!(code(&old), 0, "{}", stderr(&old));
    assert!(
        !stderr(&old).contains("warning"),
        "the store named is the old one: {}",
        stderr(&old)
    );
    let out = in_dir(root.path(), &state)
        .args(["agents", "list"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    let legacy = root.path().join(".depfw");
    assert!(
        err.contains(&format!(
            "depfw: warning: {} holds a store from an older depfw",
            legacy.display()
        )) && err.contains(&state.join("depfw").display().to_string())
            && err.contains("pass --data-dir .depfw"),
        "{err}"
    );
    assert_eq!(err.matches("warning").count(), 1, "once: {err}");
    assert!(!stdout(&out).contains("old-bot"), "{}", stdout(&out));
}

/// The store line names a PostgreSQL store by its URL without the password.
#[test]
fn the_store_line_never_shows_a_database_password() {
    let root = tempfile::tempdir().unwrap();
    let out = in_dir(root.path(), &root.path().join("state"))
        .args([
            "--store",
            "postgres://depfw:hunter2@127.0.0.1:1/depfw",
            "agents",
            "list",
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        err.starts_with("depfw: store: PostgreSQL at postgres://depfw:***@127.0.0.1:1/depfw\n"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

/// Under `--log-format json` the store line is a log line like the others, and JSON on
/// stdout stays clean.
#[test]
fn the_store_line_is_a_json_log_line_with_log_format_json() {
    let root = tempfile::tempdir().unwrap();
    let out = in_dir(root.path(), &root.path().join("state"))
        .args(["--log-format", "json", "feeds", "status"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stderr(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 1, "{}", stderr(&out));
    assert_eq!(lines[0]["level"], "INFO");
    assert!(
        lines[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("store: sled at "),
        "{}",
        lines[0]
    );
    assert!(!stdout(&out).contains("sled at"), "{}", stdout(&out));
}

/// The case: `depfw serve` started in one folder on the default data directory,
/// `depfw agents add` run in another reaches that server (through its admin API, as the
/// store is the server's) and prints a token the running server knows.
#[cfg(unix)]
#[test]
fn agents_add_elsewhere_reaches_the_server_on_the_default_store() {
    use crate::running_server::{get, printed_token, through_server, ADMIN_TOKEN};
    use crate::support::{free_port, layout, registry, Killed};
    use std::os::unix::fs::PermissionsExt as _;
    let rt = crate::support::runtime();
    let (upstream, _fixture) = rt.block_on(registry::start_fixture());
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    let (here, there) = (root.path().join("here"), root.path().join("there"));
    std::fs::create_dir_all(&here).unwrap();
    std::fs::create_dir_all(&there).unwrap();
    let (mirror, admin) = (free_port(), free_port());
    let token_file = root.path().join("admin.token");
    std::fs::write(&token_file, format!("{ADMIN_TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // No data-dir anywhere: the default.
    let config = root.path().join("depfw.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{mirror}\"\n\n{}\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken-file = \"{}\"\n",
            layout::upstream_toml(&upstream),
            token_file.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(root.path().join("serve.log")).unwrap();
    let _server = Killed(
        in_dir(&here, &state)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let data = state.join("depfw");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while get(&rt, &format!("http://127.0.0.1:{mirror}/healthz")) != 200
        || !data.join("serve.json").exists()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "depfw serve did not come up: {}",
            std::fs::read_to_string(root.path().join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = in_dir(&there, &state)
        .arg("--config")
        .arg(&config)
        .args(["agents", "add", "bot"])
        .output()
        .unwrap();
    assert!(
        stderr(&out).starts_with(&format!("depfw: store: sled at {} (", data.display())),
        "{}",
        stderr(&out)
    );
    let token = printed_token(&through_server(&out, admin));
    assert_eq!(
        get(
            &rt,
            &format!("http://127.0.0.1:{mirror}/a/{token}/npm/is-number")
        ),
        200,
        "the running server knows the token"
    );
    assert!(!here.join(".depfw").exists() && !there.join(".depfw").exists());
}
