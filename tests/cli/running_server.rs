//! Issue #13: the admin commands while `depfw serve` runs on the same data directory. sled
//! lets one process open the store, so the commands go through the server's admin API
//! (found through `<data-dir>/serve.json`, with the admin token), say so, and print what
//! the local path prints.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use depfw::diag::{Code, Finding, Severity};
use depfw::package::{Ecosystem, PackageName, Version};
use depfw::policy::Verdict;
use depfw::store::quarantine::QuarantineQueue;
use depfw::store::Store;

use crate::support::{self, code, free_port, layout, registry, stderr, stdout, Killed};

pub(crate) const ADMIN_TOKEN: &str = "running-server-admin-token-0123";

/// A config: the fixture registry upstream, the mirror and admin listeners, the data dir
/// under `dir`, and the admin token read from `token_file` (written with `token` when
/// given; no token at all when `token_file` is `None`).
pub(crate) fn config(
    dir: &Path,
    name: &str,
    upstream: &str,
    (mirror, admin): (u16, u16),
    token: Option<&str>,
) -> String {
    let token_line = match token {
        Some(token) => {
            use std::os::unix::fs::PermissionsExt as _;
            let file = dir.join(format!("{name}.token"));
            std::fs::write(&file, format!("{token}\n")).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
            format!("token-file = \"{}\"\n", file.display())
        }
        None => String::new(),
    };
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:{mirror}\"\ndata-dir = \"{}\"\n\n{}\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\n{token_line}",
            dir.join("data").display(),
            layout::upstream_toml(upstream),
        ),
    )
    .unwrap();
    path.display().to_string()
}

pub(crate) fn depfw(config: &str, args: &[&str]) -> Output {
    support::depfw_command()
        .args(["--config", config])
        .args(args)
        .output()
        .unwrap()
}

/// Holds `left-pad@1.3.0` (npm) in `data_dir`'s quarantine queue, as the proxy would.
fn hold(data_dir: &Path) -> u64 {
    let store = Store::open(data_dir).unwrap();
    let id = QuarantineQueue::new(&store)
        .unwrap()
        .hold(
            &PackageName::parse(Ecosystem::Npm, "left-pad").unwrap(),
            &Version::parse(Ecosystem::Npm, "1.3.0").unwrap(),
            "agent:bot",
            vec![Finding::new(
                Code::ReleaseCooldown,
                Severity::Medium,
                Verdict::Quarantine,
                "published an hour ago".into(),
            )],
            "req-1",
            Utc::now(),
        )
        .unwrap();
    store.flush().unwrap();
    id
}

/// `depfw serve` with `config`, once its mirror answers and it has announced itself.
pub(crate) fn serve(
    config: &str,
    data_dir: &Path,
    mirror: u16,
    rt: &tokio::runtime::Runtime,
) -> Killed {
    let log = std::fs::File::create(data_dir.with_extension("serve.log")).unwrap();
    let server = Killed(
        support::depfw_command()
            .args(["--config", config, "serve"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(rt, &format!("http://127.0.0.1:{mirror}/healthz")) != 200
        || !data_dir.join("serve.json").exists()
    {
        assert!(Instant::now() < deadline, "depfw serve did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// Stops `server` as an operator would (SIGTERM) and asserts a clean exit.
pub(crate) fn stop(server: &mut Killed, data_dir: &Path) {
    let term = std::process::Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = server.0.wait().unwrap();
    let log = std::fs::read_to_string(data_dir.with_extension("serve.log")).unwrap_or_default();
    assert!(status.success(), "depfw serve stopped with {status}: {log}");
}

pub(crate) fn get(rt: &tokio::runtime::Runtime, url: &str) -> u16 {
    rt.block_on(async {
        match reqwest::get(url).await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        }
    })
}

fn admin_json(rt: &tokio::runtime::Runtime, admin: u16, path: &str) -> serde_json::Value {
    rt.block_on(async {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{admin}/admin/api/{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

/// The token an `agents add` printed.
pub(crate) fn printed_token(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("token (shown once, store it now): "))
        .expect("a token line")
        .to_owned()
}

/// Asserts success and that the command said it went through the server at `admin`.
pub(crate) fn through_server(out: &Output, admin: u16) -> String {
    let err = stderr(out);
    assert_eq!(code(out), 0, "{err}");
    assert!(
        err.contains(&format!(
            "going through its admin API at http://127.0.0.1:{admin}/admin"
        )),
        "{err}"
    );
    assert!(!err.contains(ADMIN_TOKEN), "{err}");
    stdout(out)
}

#[test]
fn admin_commands_go_through_the_running_server() {
    let rt = support::runtime();
    let (upstream, _fixture) = rt.block_on(registry::start_fixture());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ports = (free_port(), free_port());
    let (mirror, admin) = ports;
    let cfg = config(dir.path(), "depfw", &upstream, ports, Some(ADMIN_TOKEN));
    let held = hold(&data);
    let mut server = serve(&cfg, &data, mirror, &rt);

    // agents add: the token is printed once, as the local path prints it, and works at once.
    let out = depfw(&cfg, &["agents", "add", "ci-bot"]);
    let remote = through_server(&out, admin);
    let token = printed_token(&remote);
    let proxied = |token: &str| {
        get(
            &rt,
            &format!("http://127.0.0.1:{mirror}/a/{token}/npm/is-number"),
        )
    };
    assert_eq!(
        proxied(&token),
        200,
        "the new agent's token works on the proxy"
    );
    assert_eq!(proxied(&"A".repeat(43)), 401);
    // The same command on a data directory of its own (no server), with the same URLs.
    let local_dir = tempfile::tempdir().unwrap();
    let local = support::depfw_command()
        .args(["--config", &cfg, "--data-dir"])
        .arg(local_dir.path())
        .args(["agents", "add", "ci-bot"])
        .output()
        .unwrap();
    assert_eq!(code(&local), 0, "{}", stderr(&local));
    let local = stdout(&local);
    assert_eq!(
        remote.replace(&token, "TOKEN"),
        local.replace(&printed_token(&local), "TOKEN"),
        "the same output through the server as on the store"
    );

    let out = depfw(&cfg, &["agents", "list"]);
    let listed = through_server(&out, admin);
    assert!(
        listed.starts_with("ci-bot") && listed.contains("active"),
        "{listed}"
    );
    let out = depfw(
        &cfg,
        &["agents", "suspend", "ci-bot", "--reason", "too eager"],
    );
    assert_eq!(through_server(&out, admin), "suspended agent ci-bot\n");
    assert_eq!(proxied(&token), 403, "a suspension applies at once");
    let out = depfw(&cfg, &["agents", "resume", "ci-bot"]);
    assert_eq!(through_server(&out, admin), "resumed agent ci-bot\n");
    assert_eq!(proxied(&token), 200);
    // A failure on the server is the command's failure, with the server's reason.
    let out = depfw(&cfg, &["agents", "add", "ci-bot"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("ci-bot"), "{}", stderr(&out));

    // overrides: add, list, remove.
    let tarball = || {
        get(
            &rt,
            &format!("http://127.0.0.1:{mirror}/a/{token}/npm/is-number/-/is-number-6.0.0.tgz"),
        )
    };
    let allowed = tarball();
    assert_eq!(allowed, 200);
    let out = depfw(
        &cfg,
        &[
            "overrides",
            "deny",
            "npm",
            "is-number",
            "--reason",
            "not today",
        ],
    );
    let added = through_server(&out, admin);
    let id = added
        .strip_prefix("added deny entry ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("{added}"))
        .to_owned();
    assert_eq!(added, format!("added deny entry {id}: is-number *\n"));
    assert_eq!(tarball(), 403, "the deny entry applies at once");
    let out = depfw(&cfg, &["overrides", "list"]);
    assert!(through_server(&out, admin).contains("is-number * (not today)"));
    let out = depfw(&cfg, &["overrides", "remove", &id, "--by", "alice"]);
    assert_eq!(
        through_server(&out, admin),
        format!("removed entry {id}: is-number *\n")
    );
    // The admin API records its own author (it refuses a caller-chosen one): said, not hidden.
    assert!(
        stderr(&out).contains("records the change as made by `admin`, not `alice`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(tarball(), allowed);

    // quarantine: list and approve; the server's queue shows the approval.
    let out = depfw(&cfg, &["quarantine", "list"]);
    assert!(through_server(&out, admin).contains("left-pad@1.3.0"));
    let out = depfw(
        &cfg,
        &[
            "quarantine",
            "approve",
            &held.to_string(),
            "--reason",
            "reviewed",
        ],
    );
    let approved = through_server(&out, admin);
    assert!(
        approved.starts_with(&format!("approved item {held}: allow entry ")),
        "{approved}"
    );
    let items = admin_json(&rt, admin, "quarantine?status=approved");
    assert_eq!(items["items"][0]["id"], held, "{items}");

    // log: the proxied requests are in the chain, which verifies.
    let out = depfw(&cfg, &["log", "verify"]);
    let verified = through_server(&out, admin);
    assert!(verified.starts_with("chain intact: "), "{verified}");
    assert!(
        !verified.starts_with("chain intact: 0 records"),
        "{verified}"
    );
    let out = depfw(&cfg, &["log", "show", "--agent", "ci-bot"]);
    assert!(through_server(&out, admin).contains("is-number"));
    let out = depfw(&cfg, &["log", "export", "--agent", "ci-bot"]);
    let exported = through_server(&out, admin);
    let first: serde_json::Value = serde_json::from_str(exported.lines().next().unwrap()).unwrap();
    assert_eq!(first["client"]["agent"], "ci-bot", "{first}");
    // log sbom: what ci-bot was served, from the server's log (issue #16).
    let out = depfw(&cfg, &["log", "sbom", "--agent", "ci-bot"]);
    through_server(&out, admin);
    let served = crate::log::components(&out);
    let is_number = &served["pkg:npm/is-number@6.0.0"];
    assert_eq!(is_number["hashes"][0]["alg"], "SHA-256", "{is_number}");

    // Every read prints through the server what it prints on the store itself: stop the
    // server and compare.
    let reads: [&[&str]; 7] = [
        &["agents", "list"],
        &["overrides", "list", "--all"],
        &["quarantine", "list", "--all"],
        &["log", "verify"],
        &["log", "show"],
        // Nothing was served in monitor mode: empty both ways, not the whole log.
        &["log", "show", "--would-refuse"],
        &["log", "export"],
    ];
    let remote: Vec<String> = reads
        .iter()
        .map(|args| through_server(&depfw(&cfg, args), admin))
        .collect();
    assert_eq!(remote[5], "", "the server filters for would-refuse records");
    assert!(!remote[4].is_empty());
    stop(&mut server, &data);
    let local = crate::log::components(&depfw(&cfg, &["log", "sbom", "--agent", "ci-bot"]));
    assert_eq!(
        local, served,
        "log sbom reads the same on the store as through the server"
    );
    for (args, remote) in reads.iter().zip(&remote) {
        let out = depfw(&cfg, args);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("admin API"), "{}", stderr(&out));
        assert_eq!(&stdout(&out), remote, "{args:?}");
    }
}

#[test]
fn a_missing_or_wrong_admin_token_says_what_to_do() {
    let rt = support::runtime();
    let (upstream, _fixture) = rt.block_on(registry::start_fixture());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ports = (free_port(), free_port());
    let cfg = config(dir.path(), "depfw", &upstream, ports, Some(ADMIN_TOKEN));
    let _server = serve(&cfg, &data, ports.0, &rt);

    // No token configured for the command.
    let none = config(dir.path(), "no-token", &upstream, ports, None);
    let out = depfw(&none, &["agents", "add", "ci-bot"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("$DEPFW_ADMIN_TOKEN") && err.contains("token-file"),
        "{err}"
    );
    assert!(!err.contains("stop"), "{err}");

    // A wrong one, from the environment or a file.
    let wrong = "wrong-admin-token-0123456789";
    let out = support::depfw_command()
        .args(["--config", &none, "agents", "list"])
        .env("DEPFW_ADMIN_TOKEN", wrong)
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("refused the admin token from $DEPFW_ADMIN_TOKEN"),
        "{err}"
    );
    assert!(!err.contains(wrong) && !err.contains("stop"), "{err}");
    let bad = config(dir.path(), "bad-token", &upstream, ports, Some(wrong));
    let out = depfw(&bad, &["log", "verify"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("refused the admin token from"),
        "{}",
        stderr(&out)
    );
    let out = depfw(&bad, &["feeds", "sync"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("refused the admin token from"),
        "{}",
        stderr(&out)
    );
    // Nothing was added.
    let agents = admin_json(&rt, ports.1, "agents");
    assert_eq!(agents["items"], serde_json::json!([]), "{agents}");
}

/// The server announces itself only while it runs: a clean stop removes `serve.json`.
#[test]
fn a_clean_stop_removes_the_announcement() {
    let rt = support::runtime();
    let (upstream, _fixture) = rt.block_on(registry::start_fixture());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ports = (free_port(), free_port());
    let cfg = config(dir.path(), "depfw", &upstream, ports, Some(ADMIN_TOKEN));
    let mut server = serve(&cfg, &data, ports.0, &rt);
    let announced: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("serve.json")).unwrap()).unwrap();
    assert_eq!(announced["pid"], server.0.id(), "{announced}");
    assert_eq!(
        announced["admin_url"],
        format!("http://127.0.0.1:{}/admin", ports.1)
    );
    stop(&mut server, &data);
    assert!(!data.join("serve.json").exists());
    // And the commands open the store themselves again, saying nothing about a server.
    let out = depfw(&cfg, &["agents", "list"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("admin API"), "{}", stderr(&out));
}

/// A `serve.json` left by a server that was killed names a dead process: it is ignored,
/// and a store held by something else gets the lock error, saying what was found.
#[test]
fn a_stale_announcement_is_ignored_and_the_lock_error_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Store::open(&data).unwrap();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(
        data.join("serve.json"),
        format!(
            r#"{{"pid": {pid}, "admin_url": "http://127.0.0.1:{}/admin", "started_at": "2026-01-01T00:00:00Z"}}"#,
            free_port()
        ),
    )
    .unwrap();
    let out = support::depfw_with_data(&data, &["agents", "list"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("could not acquire lock"), "{err}");
    assert!(
        err.contains("stale") && err.contains(&format!("pid {pid}, which is no longer running")),
        "{err}"
    );
    assert!(!err.contains("stop"), "{err}");
    drop(store);
}

/// A `serve.json` naming a live process whose admin URL does not answer is not trusted
/// either: the lock error says the URL is silent.
#[test]
fn an_announcement_whose_url_does_not_answer_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Store::open(&data).unwrap();
    let port = free_port();
    std::fs::write(
        data.join("serve.json"),
        format!(
            r#"{{"pid": {}, "admin_url": "http://127.0.0.1:{port}/admin", "started_at": "2026-01-01T00:00:00Z"}}"#,
            std::process::id()
        ),
    )
    .unwrap();
    let out = support::depfw_with_data(&data, &["quarantine", "list"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("could not acquire lock"), "{err}");
    assert!(
        err.contains(&format!("http://127.0.0.1:{port}/admin does not answer")),
        "{err}"
    );
    drop(store);
}

/// A server started without an admin token has no admin API: the command says how to
/// give it one.
#[test]
fn a_server_without_an_admin_endpoint_is_named() {
    let rt = support::runtime();
    let (upstream, _fixture) = rt.block_on(registry::start_fixture());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ports = (free_port(), free_port());
    let cfg = config(dir.path(), "depfw", &upstream, ports, None);
    let _server = serve(&cfg, &data, ports.0, &rt);
    let out = depfw(&cfg, &["overrides", "list"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("has no admin endpoint") && err.contains("token-file"),
        "{err}"
    );
    assert!(!err.contains("stop"), "{err}");
    // check and audit too: the lock error names the server and what it lacks.
    let lock = lockfile(dir.path());
    for args in [
        &["check", "npm", "left-pad@1.3.0"][..],
        &["audit", lock.as_str()],
    ] {
        let out = depfw(&cfg, args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("has no admin endpoint"), "{args:?}: {err}");
    }
}

/// With the admin endpoint on a Unix socket (`admin.listen = "unix:/path"`) the command
/// reaches it there.
#[test]
fn the_admin_api_is_reached_on_its_unix_socket() {
    let rt = support::runtime();
    let (upstream, _fixture) = rt.block_on(registry::start_fixture());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mirror = free_port();
    let cfg = config(
        dir.path(),
        "depfw",
        &upstream,
        (mirror, 0),
        Some(ADMIN_TOKEN),
    );
    let socket = dir.path().join("admin.sock");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("127.0.0.1:0\"", &format!("unix:{}\"", socket.display()));
    std::fs::write(&cfg, text).unwrap();
    let _server = serve(&cfg, &data, mirror, &rt);
    let out = depfw(&cfg, &["agents", "add", "sock-bot"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert!(
        err.contains(&format!(
            "going through its admin API at unix:{}",
            socket.display()
        )),
        "{err}"
    );
    assert!(stdout(&out).starts_with("created agent sock-bot"));
}

/// An OSV record that makes `is-number@6.0.0` a known-malicious version.
const MALICIOUS_IS_NUMBER: &str = r#"{
  "schema_version": "1.6.0",
  "id": "MAL-2099-613",
  "modified": "2026-01-01T00:00:00Z",
  "published": "2026-01-01T00:00:00Z",
  "summary": "is-number 6.0.0 was hijacked (test record)",
  "affected": [{"package": {"ecosystem": "npm", "name": "is-number"}, "versions": ["6.0.0"]}]
}"#;

/// `depfw feeds status|import|sync` go through the running server's admin API too (#13):
/// the server stores the data and rebuilds its policy, so a version that just became known
/// malicious is refused by the next request, without a restart; a failed source or file
/// keeps the last good data; the output is the local path's.
#[test]
fn feeds_commands_go_through_the_running_server() {
    let rt = support::runtime();
    let (upstream, fixture) = rt.block_on(registry::start_fixture());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ports = (free_port(), free_port());
    let (mirror, admin) = ports;
    let cfg = config(dir.path(), "depfw", &upstream, ports, Some(ADMIN_TOKEN));
    // Two sources on the fixture registry: its OSV archive, and one that is not there.
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "\n[[feeds.sources]]\nname = \"osv\"\nurl = \"{upstream}/{}\"\n\
         [[feeds.sources]]\nname = \"gone\"\nurl = \"{upstream}/osv/gone.zip\"\n",
        registry::OSV_ARCHIVE
    ));
    std::fs::write(&cfg, text).unwrap();
    let mut server = serve(&cfg, &data, mirror, &rt);
    let out = depfw(&cfg, &["agents", "add", "ci-bot"]);
    let token = printed_token(&through_server(&out, admin));
    let tarball = || {
        get(
            &rt,
            &format!("http://127.0.0.1:{mirror}/a/{token}/npm/is-number/-/is-number-6.0.0.tgz"),
        )
    };
    assert_eq!(tarball(), 200);

    let out = depfw(&cfg, &["feeds", "status"]);
    let empty = through_server(&out, admin);
    assert!(empty.starts_with("no feeds in the store"), "{empty}");

    // import: the record is uploaded, stored and applied at once.
    let record = dir.path().join("is-number.json");
    std::fs::write(&record, MALICIOUS_IS_NUMBER).unwrap();
    let import = [
        "feeds",
        "import",
        record.to_str().unwrap(),
        "--name",
        "local",
    ];
    let out = depfw(&cfg, &import);
    let imported = through_server(&out, admin);
    assert_eq!(
        imported,
        "imported 1 advisories (1 records, 0 withdrawn) as `local`\n"
    );
    assert_eq!(
        tarball(),
        403,
        "the imported advisory applies without a restart"
    );
    let local_dir = tempfile::tempdir().unwrap();
    let local = support::depfw_command()
        .args(["--config", &cfg, "--data-dir"])
        .arg(local_dir.path())
        .args(import)
        .output()
        .unwrap();
    assert_eq!(code(&local), 0, "{}", stderr(&local));
    assert_eq!(stdout(&local), imported, "the local path prints the same");

    // A file that does not read: the server's reason, exit 2, the last good data stays.
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "this is not OSV").unwrap();
    let out = depfw(
        &cfg,
        &["feeds", "import", junk.to_str().unwrap(), "--name", "local"],
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(
        err.contains("importing `local`") && err.contains("junk.json"),
        "{err}"
    );
    assert_eq!(tarball(), 403, "a failed import keeps the last good data");
    // A directory cannot be uploaded: the command says what to do instead.
    let out = depfw(&cfg, &["feeds", "import", dir.path().to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("zip -r"), "{}", stderr(&out));

    // sync: the server's sources; the missing one fails (exit 2) and keeps nothing.
    let out = depfw(&cfg, &["feeds", "sync"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(
        err.contains(&format!(
            "going through its admin API at http://127.0.0.1:{admin}/admin"
        )),
        "{err}"
    );
    let osv = err
        .lines()
        .find(|l| l.starts_with("osv: "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        osv.ends_with(" advisories") && osv != "osv: 0 advisories",
        "{err}"
    );
    assert!(
        err.contains("gone: FAILED (no earlier data for this source"),
        "{err}"
    );
    assert_eq!(tarball(), 403, "the imported source stays in use");
    // The archive fails the next time: its last good data stays.
    fixture.faults.lock().unwrap().insert(
        format!("/{}", registry::OSV_ARCHIVE),
        registry::Fault::Status500,
    );
    let out = depfw(&cfg, &["feeds", "sync"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("osv: FAILED (keeping its data from ")
                && l.contains(&format!("({})", osv.trim_start_matches("osv: ")))),
        "{err}"
    );

    // status prints through the server what it prints on the store itself.
    let out = depfw(&cfg, &["feeds", "status"]);
    let remote = through_server(&out, admin);
    for source in ["local", "osv", "gone"] {
        assert!(
            remote.lines().any(|l| l.starts_with(source)),
            "{source}: {remote}"
        );
    }
    assert!(remote.contains("last error"), "{remote}");
    stop(&mut server, &data);
    let out = depfw(&cfg, &["feeds", "status"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("admin API"), "{}", stderr(&out));
    assert_eq!(stdout(&out), remote);
}

/// A package-lock.json locking `left-pad@1.3.0`, `is-number@7.0.0` and 1200 more packages:
/// more than one `POST /admin/api/evaluate` batch.
fn lockfile(dir: &Path) -> String {
    let mut packages = serde_json::Map::new();
    packages.insert(
        String::new(),
        serde_json::json!({"name": "app", "version": "1.0.0"}),
    );
    packages.insert(
        "node_modules/left-pad".into(),
        serde_json::json!({"version": "1.3.0", "license": "WTFPL"}),
    );
    packages.insert(
        "node_modules/is-number".into(),
        serde_json::json!({"version": "7.0.0", "license": "MIT"}),
    );
    for i in 0..1200 {
        packages.insert(
            format!("node_modules/depfw-batch-fixture-{i}"),
            serde_json::json!({"version": "1.0.0", "license": "MIT"}),
        );
    }
    let lock = serde_json::json!({
        "name": "app",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": true,
        "packages": packages,
    });
    let path = dir.join("package-lock.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&lock).unwrap()).unwrap();
    path.display().to_string()
}

#[test]
fn check_and_audit_ask_the_running_servers_policy() {
    let rt = support::runtime();
    let (upstream, _fixture) = rt.block_on(registry::start_fixture());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let ports = (free_port(), free_port());
    let (mirror, admin) = ports;
    let cfg = config(dir.path(), "depfw", &upstream, ports, Some(ADMIN_TOKEN));
    let lock = lockfile(dir.path());
    let mut server = serve(&cfg, &data, mirror, &rt);

    // A deny entry made at run time, in the server's store only.
    let out = depfw(
        &cfg,
        &[
            "overrides",
            "deny",
            "npm",
            "left-pad",
            "--versions",
            "1.3.0",
            "--reason",
            "runtime deny SEC-13",
        ],
    );
    through_server(&out, admin);

    let check_args = ["check", "npm", "left-pad@1.3.0", "is-number@7.0.0"];
    let audit_args = ["audit", lock.as_str(), "--format", "json"];
    let said_server = |out: &Output| {
        let err = stderr(out);
        assert!(
            err.contains(&format!(
                "going through its admin API at http://127.0.0.1:{admin}/admin"
            )),
            "{err}"
        );
        assert!(!err.contains(ADMIN_TOKEN), "{err}");
    };

    let check = depfw(&cfg, &check_args);
    said_server(&check);
    // The runtime deny entry decides: exit 1 (findings), as the proxy would refuse it.
    assert_eq!(code(&check), 1, "{}", stderr(&check));
    let check_out = stdout(&check);
    let left_pad = check_out
        .lines()
        .find(|l| l.contains("left-pad@1.3.0"))
        .unwrap_or_else(|| panic!("{check_out}"));
    assert!(left_pad.starts_with("deny"), "{check_out}");
    assert!(check_out.contains("runtime deny SEC-13"), "{check_out}");
    assert!(
        check_out
            .lines()
            .any(|l| l.contains("is-number@7.0.0") && !l.starts_with("deny")),
        "{check_out}"
    );

    let audit = depfw(&cfg, &audit_args);
    said_server(&audit);
    assert_eq!(code(&audit), 1, "{}", stderr(&audit));
    let report: serde_json::Value = serde_json::from_str(&stdout(&audit)).unwrap();
    assert_eq!(report["packages_scanned"], 1202, "{report:#}");
    let denied: Vec<&serde_json::Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] == "deny")
        .collect();
    assert_eq!(denied.len(), 1, "{report:#}");
    assert_eq!(denied[0]["name"], "left-pad", "{report:#}");
    assert!(
        report.to_string().contains("runtime deny SEC-13"),
        "{report:#}"
    );

    // --online: the metadata goes to the server, the release history does not; it says so.
    let online = depfw(&cfg, &["check", "--online", "npm", "is-number@7.0.0"]);
    said_server(&online);
    assert!(
        stderr(&online).contains("release signals"),
        "{}",
        stderr(&online)
    );

    // Stopped: the same commands open the store themselves and say the same.
    stop(&mut server, &data);
    let local_check = depfw(&cfg, &check_args);
    assert!(
        !stderr(&local_check).contains("admin API"),
        "{}",
        stderr(&local_check)
    );
    assert_eq!(code(&local_check), 1, "{}", stderr(&local_check));
    assert_eq!(stdout(&local_check), check_out);
    let local_audit = depfw(&cfg, &audit_args);
    assert_eq!(code(&local_audit), 1, "{}", stderr(&local_audit));
    assert_eq!(stdout(&local_audit), stdout(&audit));
}
