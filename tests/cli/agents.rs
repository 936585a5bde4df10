//! The `agents`, `overrides` and `quarantine` subcommands, run on a temporary data directory.

use clap::Parser;
use depfw::agents::PolicyPreset;
use depfw::cli::agents::{self, AgentsCommand};
use depfw::cli::overrides::{self, OverridesCommand, QuarantineCommand};
use depfw::config::Config;
use depfw::store::agents::AgentStore;
use depfw::store::overrides::OverrideStore;
use depfw::store::quarantine::QuarantineQueue;
use depfw::store::Store;

#[derive(Parser)]
struct Wrapper {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    #[command(subcommand)]
    Agents(AgentsCommand),
    #[command(subcommand)]
    Overrides(OverridesCommand),
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
}

fn run(config: &Config, args: &[&str]) -> anyhow::Result<std::process::ExitCode> {
    let parsed = Wrapper::try_parse_from(std::iter::once("depfw").chain(args.iter().copied()))?;
    match parsed.cmd {
        Cmd::Agents(c) => agents::run(&c, config),
        Cmd::Overrides(c) => overrides::run(&c, config),
        Cmd::Quarantine(c) => overrides::run_quarantine(&c, config),
    }
}

fn config(dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.server.data_dir = dir.to_path_buf();
    config
}

#[test]
fn agents_commands_change_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.agents.default_policy = PolicyPreset::Strict;
    run(&config, &["agents", "add", "bot"]).unwrap();
    run(&config, &["agents", "add", "lax", "--policy", "default"]).unwrap();
    assert!(run(&config, &["agents", "add", "bot"]).is_err());
    assert!(run(&config, &["agents", "add", "Bad Name"]).is_err());
    assert!(run(&config, &["agents", "add", "x", "--policy", "paranoid"]).is_err());
    run(
        &config,
        &["agents", "suspend", "bot", "--reason", "testing"],
    )
    .unwrap();
    run(&config, &["agents", "list"]).unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let list = AgentStore::new(&store).unwrap().list().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].preset, PolicyPreset::Strict);
        assert_eq!(list[0].status(), "suspended");
        assert_eq!(list[1].preset, PolicyPreset::Default);
    }
    run(&config, &["agents", "resume", "bot"]).unwrap();
    run(&config, &["agents", "rotate", "bot"]).unwrap();
    run(&config, &["agents", "revoke", "lax"]).unwrap();
    assert!(run(&config, &["agents", "resume", "bot"]).is_err());
    assert!(run(&config, &["agents", "rotate", "nobody"]).is_err());
    let store = Store::open(dir.path()).unwrap();
    let list = AgentStore::new(&store).unwrap().list().unwrap();
    assert_eq!(list[0].status(), "active");
    assert!(list[0].rotated.is_some());
    assert_eq!(list[1].status(), "revoked");
}

#[test]
fn mirror_urls_carry_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = Store::open(dir.path()).unwrap();
    let (_, token) = AgentStore::new(&store)
        .unwrap()
        .add("bot", PolicyPreset::Default)
        .unwrap();
    let [npm, pypi, cargo] = agents::mirror_urls(&config, &token);
    let secret = token.expose_secret();
    assert_eq!(npm, format!("http://127.0.0.1:7878/a/{secret}/npm/"));
    assert_eq!(
        pypi,
        format!("http://127.0.0.1:7878/a/{secret}/pypi/simple/")
    );
    assert_eq!(
        cargo,
        format!("http://127.0.0.1:7878/a/{secret}/cargo/index/")
    );
}

#[test]
fn override_and_quarantine_commands() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    run(
        &config,
        &[
            "overrides",
            "allow",
            "npm",
            "left-pad",
            "--versions",
            "1.3.0",
            "--reason",
            "SEC-1",
            "--expires",
            "2999-01-01",
            "--by",
            "admin:alice",
        ],
    )
    .unwrap();
    // Bad input: duplicate, past expiry, bad range, bad ecosystem, bad name, empty reason.
    for bad in [
        &[
            "overrides",
            "allow",
            "npm",
            "left-pad",
            "--versions",
            "=1.3.0",
            "--reason",
            "again",
        ][..],
        &[
            "overrides",
            "deny",
            "npm",
            "x",
            "--reason",
            "r",
            "--expires",
            "2001-01-01",
        ],
        &[
            "overrides",
            "deny",
            "npm",
            "x",
            "--reason",
            "r",
            "--expires",
            "soon",
        ],
        &[
            "overrides",
            "deny",
            "npm",
            "x",
            "--versions",
            ">=banana",
            "--reason",
            "r",
        ],
        &["overrides", "deny", "maven", "x", "--reason", "r"],
        &["overrides", "deny", "npm", "../evil", "--reason", "r"],
        &["overrides", "deny", "npm", "x", "--reason", ""],
        &["overrides", "remove", "12345"],
    ] {
        assert!(run(&config, bad).is_err(), "{bad:?} accepted");
    }
    run(
        &config,
        &[
            "overrides",
            "deny",
            "pypi",
            "requests",
            "--versions",
            "==2.31.0",
            "--reason",
            "incident 42",
        ],
    )
    .unwrap();
    run(&config, &["overrides", "list", "--all"]).unwrap();
    let (first, hold) = {
        let store = Store::open(dir.path()).unwrap();
        let list = OverrideStore::new(&store)
            .unwrap()
            .list(true, chrono::Utc::now())
            .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].created_by, "admin:alice");
        assert!(list[1].created_by.starts_with("cli:"));
        let name =
            depfw::package::PackageName::parse(depfw::package::Ecosystem::Npm, "lodahs").unwrap();
        let version =
            depfw::package::Version::parse(depfw::package::Ecosystem::Npm, "1.0.0").unwrap();
        let hold = QuarantineQueue::new(&store)
            .unwrap()
            .hold(
                &name,
                &version,
                "agent:bot",
                Vec::new(),
                "r1",
                chrono::Utc::now(),
            )
            .unwrap();
        (list[0].id, hold)
    };
    run(&config, &["overrides", "remove", &first.to_string()]).unwrap();
    assert!(run(&config, &["overrides", "remove", &first.to_string()]).is_err());

    let hold = hold.to_string();
    run(&config, &["quarantine", "list"]).unwrap();
    assert!(run(
        &config,
        &[
            "quarantine",
            "approve",
            &hold,
            "--reason",
            "ok",
            "--range",
            ">=2.0.0"
        ]
    )
    .is_err());
    run(
        &config,
        &[
            "quarantine",
            "approve",
            &hold,
            "--reason",
            "ok",
            "--expires",
            "2999-01-01",
        ],
    )
    .unwrap();
    assert!(run(&config, &["quarantine", "reject", &hold, "--reason", "no"]).is_err());
    assert!(run(
        &config,
        &["quarantine", "approve", "999999", "--reason", "x"]
    )
    .is_err());
    run(&config, &["quarantine", "list", "--all"]).unwrap();
    let store = Store::open(dir.path()).unwrap();
    let active = OverrideStore::new(&store)
        .unwrap()
        .list(false, chrono::Utc::now())
        .unwrap();
    assert_eq!(active.len(), 2);
    assert!(active
        .iter()
        .any(|r| r.name == "lodahs" && r.versions == "=1.0.0"));
}
