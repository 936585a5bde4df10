//! Issue #16: `depfw serve` re-reads its config on SIGHUP (and `POST /admin/api/reload`)
//! without a restart; a broken file is refused and the policy in force stays.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::running_server::{
    config, depfw, get, printed_token, serve, stop, through_server, ADMIN_TOKEN,
};
use crate::support::{self, free_port, registry};

const TARBALL: &str = "npm/is-number/-/is-number-7.0.0.tgz";

/// The base config plus `extra` (appended after `[admin]`, so it opens its own tables).
fn write(path: &str, base: &str, extra: &str) {
    std::fs::write(path, format!("{base}\n{extra}")).unwrap();
}

const DENY: &str = "[[overrides.deny]]\necosystem = \"npm\"\nname = \"is-number\"\n\
                    versions = \"7.0.0\"\nreason = \"reload test\"\n";

fn hangup(server: &support::Killed) {
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Polls until the tarball answers `status` (a SIGHUP reload runs in the background).
fn until(rt: &tokio::runtime::Runtime, url: &str, status: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(rt, url) != status {
        assert!(Instant::now() < deadline, "{what}: never answered {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn reload(rt: &tokio::runtime::Runtime, admin: u16) -> (u16, serde_json::Value) {
    rt.block_on(async {
        let reply = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{admin}/admin/api/reload"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        (reply.status().as_u16(), reply.json().await.unwrap())
    })
}

fn log(data: &Path) -> String {
    std::fs::read_to_string(data.with_extension("serve.log")).unwrap_or_default()
}

/// Waits until the server's log says `what`.
fn logged(data: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !log(data).contains(what) {
        assert!(
            Instant::now() < deadline,
            "never logged {what:?}: {}",
            log(data)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sighup_with_a_broken_config_keeps_serving_the_old_policy() {
    let rt = support::runtime();
    let (upstream, _fixture) = rt.block_on(registry::start_fixture());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ports = (free_port(), free_port());
    let cfg = config(dir.path(), "depfw", &upstream, ports, Some(ADMIN_TOKEN));
    let base = std::fs::read_to_string(&cfg).unwrap();
    write(&cfg, &base, DENY);
    let mut server = serve(&cfg, &data, ports.0, &rt);
    let tarball = format!("http://127.0.0.1:{}/{TARBALL}", ports.0);
    assert_eq!(get(&rt, &tarball), 403, "deny-listed at start");

    // Broken: the entry is gone, but the file does not validate. Refused, logged, and the
    // old policy (the deny entry) stays in force.
    write(&cfg, &base, "[policy]\nmode = \"watch\"\n");
    hangup(&server);
    logged(&data, "config reload refused");
    assert!(log(&data).contains("policy.mode"), "{}", log(&data));
    assert_eq!(
        get(&rt, &format!("http://127.0.0.1:{}/healthz", ports.0)),
        200
    );
    assert_eq!(get(&rt, &tarball), 403, "the old policy stays");
    // The API says the same, with the errors.
    let (status, reply) = reload(&rt, ports.1);
    assert_eq!(status, 422, "{reply}");
    assert_eq!(reply["reloaded"], false);
    assert!(
        reply["errors"][0].as_str().unwrap().contains("policy.mode"),
        "{reply}"
    );
    assert_eq!(get(&rt, &tarball), 403);

    // Fixed: the entry removed applies to the next request.
    write(&cfg, &base, "[policy]\nmode = \"monitor\"\n");
    hangup(&server);
    until(&rt, &tarball, 200, "after a good SIGHUP");
    // Logged once the policy is installed, so maybe just after that answer.
    logged(&data, "config reloaded");

    // Through the API: synchronous, the next request has the new policy; a section that
    // needs a restart is named and left as it was.
    let moved = format!("listen = \"127.0.0.1:{}\"", free_port());
    let changed = base.replacen(&format!("listen = \"127.0.0.1:{}\"", ports.0), &moved, 1);
    assert_ne!(changed, base);
    write(&cfg, &changed, DENY);
    let (status, reply) = reload(&rt, ports.1);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["reloaded"], true);
    assert_eq!(
        reply["restart_needed"],
        serde_json::json!(["server"]),
        "{reply}"
    );
    assert_eq!(get(&rt, &tarball), 403, "the deny entry is back at once");
    stop(&mut server, &data);
}

/// The urgent fix while the server runs: through its admin API, applied at once, for that
/// agent only (a version in its cooldown); an unknown agent is refused there too.
#[test]
fn an_urgent_allow_for_one_agent_goes_through_a_running_server() {
    let rt = support::runtime();
    let (upstream, fixture) = rt.block_on(registry::start_fixture());
    // Published an hour ago: in the default 48-hour cooldown.
    fixture.times.lock().unwrap().insert(
        ("is-number".into(), "7.0.0".into()),
        chrono::Utc::now() - chrono::Duration::hours(1),
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ports = (free_port(), free_port());
    let cfg = config(dir.path(), "depfw", &upstream, ports, Some(ADMIN_TOKEN));
    let mut server = serve(&cfg, &data, ports.0, &rt);
    let urgent = [
        "overrides",
        "allow",
        "npm",
        "is-number",
        "7.0.0",
        "--agent",
        "bot",
        "--expires",
        "2h",
        "--reason",
        "INC-7 hotfix",
    ];
    let out = depfw(&cfg, &urgent);
    assert_ne!(support::code(&out), 0, "no such agent");
    let bot = printed_token(&through_server(
        &depfw(&cfg, &["agents", "add", "bot"]),
        ports.1,
    ));
    let other = printed_token(&through_server(
        &depfw(&cfg, &["agents", "add", "other"]),
        ports.1,
    ));
    let tarball = |token: &str| format!("http://127.0.0.1:{}/a/{token}/{TARBALL}", ports.0);
    assert_eq!(get(&rt, &tarball(&bot)), 403, "in its cooldown");
    let said = through_server(&depfw(&cfg, &urgent), ports.1);
    assert!(
        said.contains("is-number =7.0.0 for agent bot, until "),
        "{said}"
    );
    let list = through_server(&depfw(&cfg, &["overrides", "list"]), ports.1);
    assert!(list.contains("for agent bot (INC-7 hotfix)"), "{list}");
    assert_eq!(get(&rt, &tarball(&bot)), 200, "let through for bot at once");
    assert_eq!(
        get(&rt, &tarball(&other)),
        403,
        "still held for every other agent"
    );
    stop(&mut server, &data);
}
