//! The README's commands, run as printed, so the front door cannot rot.
//!
//! Every line of every ```` ```sh ```` block in README.md is run, in order, in one scratch
//! directory (the working directory a new user would have), with the `depfw` built for these
//! tests first on the `PATH` and `DEPFW_CONFIG` pointing at the hermetic fixture registry
//! (packages and an OSV `all.zip`) and a free port instead of the internet and 7878. Each
//! command's exit code is checked against [`STEPS`]; a README command missing there fails
//! the test (say what it should do), and so does a step the README no longer has.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{self, free_port, registry, Killed};

/// What running a README command must do.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Run it through `sh -c`; it must exit with this code.
    Exit(i32),
    /// `depfw serve`: it must come up, proxy the fixture registry, hold a version in
    /// quarantine (so the quarantine commands further down have item 1), and stop cleanly
    /// on SIGTERM.
    Serve,
    /// Not run here, with the reason.
    NotRun(&'static str),
}

/// Every command the README shows, with what it must do.
const STEPS: &[(&str, Step)] = &[
    ("cargo run --release -- serve", Step::Serve),
    ("depfw check npm debug@4.4.2 debug@4.4.3", Step::Exit(1)),
    (
        "depfw check pypi - --format json < names.txt",
        Step::Exit(1),
    ),
    ("depfw audit .", Step::Exit(1)),
    ("depfw audit --format sarif -o depfw.sarif", Step::Exit(1)),
    (
        "depfw audit --format cyclonedx -o bom.cdx.json",
        Step::Exit(1),
    ),
    ("depfw audit bom.cdx.json", Step::Exit(1)),
    ("depfw feeds sync", Step::Exit(0)),
    ("depfw feeds import npm-all.zip", Step::Exit(0)),
    ("depfw feeds status", Step::Exit(0)),
    ("depfw agents add ci-bot --policy strict", Step::Exit(0)),
    (
        r#"depfw overrides allow npm left-pad --versions 1.3.0 --reason "SEC-123" --expires 2030-01-31"#,
        Step::Exit(0),
    ),
    (
        r#"depfw overrides allow npm left-pad 1.3.0 --agent ci-bot --expires 2h --reason "INC-7 hotfix""#,
        Step::Exit(0),
    ),
    // The scratch directory's Cargo.lock, with no .cargo/config.toml: not through depfw.
    ("depfw doctor", Step::Exit(1)),
    ("depfw quarantine list", Step::Exit(0)),
    (
        r#"depfw quarantine approve 1 --reason "reviewed""#,
        Step::Exit(0),
    ),
    ("depfw log verify", Step::Exit(0)),
    (
        "depfw log show --agent ci-bot --verdict deny",
        Step::Exit(0),
    ),
    (
        "depfw log export --since 2026-11-01 > decisions.jsonl",
        Step::Exit(0),
    ),
    (
        "depfw log sbom --agent ci-bot --since 2026-11-01 > ci-bot.cdx.json",
        Step::Exit(0),
    ),
    ("depfw log public-key > depfw.pub", Step::Exit(0)),
    (
        "depfw log verify --public-key depfw.pub --checkpoints checkpoints.jsonl",
        Step::Exit(0),
    ),
    (
        "sudo useradd --system --home-dir /var/lib/depfw --create-home depfw",
        Step::NotRun("it creates an OS user (root)"),
    ),
    (
        "sudo install -d -o depfw -g depfw -m 700 /etc/depfw /run/depfw",
        Step::NotRun("it writes to /etc and /run (root)"),
    ),
    (
        "openssl rand -hex 32 | sudo install -o depfw -g depfw -m 600 /dev/stdin /etc/depfw/admin-token",
        Step::NotRun("it writes to /etc (root); tests/cli/serve.rs checks the mode rule"),
    ),
    (
        "sudo -u depfw depfw --config /etc/depfw/depfw.toml serve",
        Step::NotRun("it needs the depfw user; the Serve step runs `depfw serve`"),
    ),
    (
        "cargo build --release && sudo install -m 755 target/release/depfw /usr/local/bin/depfw",
        Step::NotRun("it installs into /usr/local (root)"),
    ),
    (
        "sudo install -D -m 644 deploy/depfw.toml /etc/depfw/depfw.toml",
        Step::NotRun("it writes to /etc (root); integration/deploy.rs starts depfw with this file"),
    ),
    (
        "(umask 077; head -c 32 /dev/urandom | base64 | sudo tee /etc/depfw/admin-token >/dev/null)",
        Step::NotRun("it writes to /etc (root)"),
    ),
    (
        "sudo install -m 644 deploy/depfw.service /etc/systemd/system/depfw.service",
        Step::NotRun("it writes to /etc (root); integration/deploy.rs verifies the unit"),
    ),
    (
        "sudo systemctl daemon-reload && sudo systemctl enable --now depfw",
        Step::NotRun("no systemd runs here; integration/deploy.rs runs the unit's ExecStart"),
    ),
    (
        "curl -s http://127.0.0.1:7878/readyz",
        Step::NotRun("the service above is not running here; tests/proxy/agents.rs checks /readyz needs no token"),
    ),
    (
        "docker build -t depfw:local .",
        Step::NotRun("no container engine here; integration/container.rs checks the Dockerfile"),
    ),
    (
        "mkdir -m 700 secrets secrets/keygen",
        Step::NotRun("the compose secrets; integration/container.rs makes them for its processes"),
    ),
    (
        "head -c 24 /dev/urandom | base64 | tr -d '/+=' > secrets/postgres-password",
        Step::NotRun("the compose secrets; integration/container.rs makes them for its processes"),
    ),
    (
        "echo \"DEPFW_STORE=postgres://depfw:$(cat secrets/postgres-password)@postgres:5432/depfw\" > secrets/depfw-store.env",
        Step::NotRun("the compose secrets; integration/container.rs writes this env file"),
    ),
    (
        "head -c 32 /dev/urandom | base64 > secrets/depfw-admin-token",
        Step::NotRun("the compose secrets; integration/container.rs makes them for its processes"),
    ),
    (
        "chmod 600 secrets/postgres-password secrets/depfw-store.env secrets/depfw-admin-token",
        Step::NotRun("the compose secrets; integration/container.rs makes them for its processes"),
    ),
    (
        "sudo chown 70:70 secrets/postgres-password",
        Step::NotRun("it changes owners (root)"),
    ),
    (
        "sudo chown 65532:65532 secrets/depfw-admin-token secrets/keygen",
        Step::NotRun("it changes owners (root)"),
    ),
    (
        "docker run --rm --env-file secrets/depfw-store.env -v \"$PWD/secrets/keygen:/keygen\" depfw:local --data-dir /keygen log public-key > depfw.pub",
        Step::NotRun("no container engine here; integration/container.rs runs the same command"),
    ),
    (
        "sudo mv secrets/keygen/signing-key secrets/depfw-signing-key",
        Step::NotRun("the key above is not made here (no container engine)"),
    ),
    (
        "docker compose up -d",
        Step::NotRun("no container engine here; integration/container.rs runs the compose services as processes"),
    ),
    (
        "docker compose exec depfw-1 depfw --config /etc/depfw/depfw.toml agents add ci-bot",
        Step::NotRun("no container engine here; integration/container.rs adds an agent on replica 1"),
    ),
    (
        "sudo -u postgres createdb -O depfw depfw",
        Step::NotRun("it needs a PostgreSQL server; integration/replicas.rs runs two replicas"),
    ),
    (
        "export DEPFW_STORE=postgres://depfw:secret@db.internal:5432/depfw",
        Step::NotRun("it names a database server that does not exist here"),
    ),
    (
        "depfw --data-dir /var/lib/depfw-1 serve --listen 0.0.0.0:7878",
        Step::NotRun("a replica on PostgreSQL; integration/replicas.rs runs two"),
    ),
    (
        "install -m 600 /var/lib/depfw-1/signing-key /var/lib/depfw-2/signing-key",
        Step::NotRun("it writes to /var/lib; integration/replicas.rs copies the key"),
    ),
    (
        "depfw --data-dir /var/lib/depfw-2 serve --listen 0.0.0.0:7878",
        Step::NotRun("a replica on PostgreSQL; integration/replicas.rs runs two"),
    ),
    (
        r#"depfw --store "$DEPFW_STORE" agents add ci-bot"#,
        Step::NotRun("it needs PostgreSQL; integration/replicas.rs adds agents this way"),
    ),
    (
        r#"depfw --store "$DEPFW_STORE" log verify --public-key depfw.pub"#,
        Step::NotRun("it needs PostgreSQL; integration/replicas.rs verifies the chain"),
    ),
    (
        "cargo test",
        Step::NotRun("it is the command running this test"),
    ),
    (
        "bash .ci/install-clients.sh",
        Step::NotRun("it installs software on the machine; .ci/run runs it"),
    ),
    (
        "sudo bash .ci/postgres.sh install",
        Step::NotRun("it installs software on the machine; .ci/run runs it"),
    ),
    (
        r#"eval "$(bash .ci/postgres.sh start)""#,
        Step::NotRun("it starts PostgreSQL; .ci/run runs it"),
    ),
    (
        r#"bash .ci/postgres.sh stop "$DEPFW_TEST_POSTGRES_DIR""#,
        Step::NotRun("it stops the cluster .ci/run started"),
    ),
];

/// The command lines of the README's `sh` blocks, without trailing `# comments`.
fn readme_commands(readme: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_sh = false;
    for line in readme.lines() {
        let fence = line.trim_start();
        if fence.starts_with("```") {
            in_sh = !in_sh && fence.trim_start_matches('`').trim() == "sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        // A comment starts at ` #` outside quotes; the README's commands quote no `#`.
        let command = line.split(" #").next().unwrap_or("").trim();
        if !command.is_empty() && !command.starts_with('#') {
            commands.push(command.to_owned());
        }
    }
    commands
}

/// The scratch directory: the files the README's commands name, and a config for the
/// fixture registry.
fn workspace(dir: &Path, upstream: &str, port: u16) {
    std::fs::write(dir.join("names.txt"), "requests\nreqeusts\n").unwrap();
    std::fs::copy(
        support::lockfile("public/cargo/advent-of-code-2020/Cargo.lock"),
        dir.join("Cargo.lock"),
    )
    .unwrap();
    std::fs::write(
        dir.join("npm-all.zip"),
        support::osv_zip(|n| n.starts_with("malicious")),
    )
    .unwrap();
    // Checkpoints after every record, so the served requests leave some to verify.
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n{}\n\
         [log]\ncheckpoint-file = \"checkpoints.jsonl\"\ncheckpoint-every-records = 1\n\n\
         [[feeds.sources]]\nname = \"fixture-osv\"\nurl = \"{upstream}/{}\"\n",
        support::layout::upstream_toml(upstream),
        registry::OSV_ARCHIVE
    );
    std::fs::write(dir.join("depfw.toml"), config).unwrap();
}

/// `command` as a shell would run it in the workspace, with the test's `depfw` first on
/// the `PATH`.
fn shell(dir: &Path, command: &str) -> Command {
    let bin = Path::new(env!("CARGO_BIN_EXE_depfw")).parent().unwrap();
    let path = std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", command])
        .current_dir(dir)
        .env("PATH", path)
        .env("DEPFW_CONFIG", dir.join("depfw.toml"))
        .env_remove("DEPFW_DATA_DIR")
        .env_remove("DEPFW_ADMIN_TOKEN")
        .env_remove("DEPFW_LOG")
        // The default data directory, `$XDG_STATE_HOME/depfw`, in the scratch directory:
        // never the state directory of whoever runs the tests.
        .env("XDG_STATE_HOME", dir.join("state"))
        .env_remove("STATE_DIRECTORY")
        .stdin(Stdio::null());
    cmd
}

/// `cargo run --release -- serve` is `depfw serve` once built: run the test's build.
fn serve(rt: &tokio::runtime::Runtime, dir: &Path, command: &str, port: u16) {
    let depfw_command = command
        .strip_prefix("cargo run --release -- ")
        .map(|rest| format!("exec depfw {rest}"))
        .unwrap_or_else(|| panic!("`{command}`: a Serve step is `cargo run --release -- …`"));
    let mut server = Killed(
        shell(dir, &depfw_command)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let request = client.get(format!("{base}{path}")).send();
        rt.block_on(async { Ok::<_, reqwest::Error>(request.await?.status()) })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !get("/healthz").is_ok_and(|status| status.is_success()) {
        assert!(
            server.0.try_wait().unwrap().is_none(),
            "`{command}` exited before it served"
        );
        assert!(Instant::now() < deadline, "`{command}` did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = |path: &str| get(path).unwrap().as_u16();
    assert_eq!(status("/npm/is-number"), 200);
    assert_eq!(status("/npm/is-number/-/is-number-6.0.0.tgz"), 200);
    // Published a minute ago (the fixture says so): inside the cooldown, held for a human.
    assert_eq!(status("/npm/is-number/-/is-number-7.0.0.tgz"), 403);
    let stop = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(stop.success());
    let status = server.0.wait().unwrap();
    assert!(status.success(), "`{command}` stopped with {status}");
}

#[test]
fn every_command_in_the_readme_runs_as_printed() {
    let readme = std::fs::read_to_string(support::repo().join("README.md")).unwrap();
    let commands = readme_commands(&readme);
    assert!(commands.len() >= 10, "{commands:?}");

    let rt = support::runtime();
    let (upstream, fixture) = rt.block_on(registry::start_fixture());
    fixture.times.lock().unwrap().insert(
        ("is-number".into(), "7.0.0".into()),
        chrono::Utc::now() - chrono::Duration::minutes(1),
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    workspace(dir.path(), &upstream, port);

    for command in &commands {
        let Some(&(_, step)) = STEPS.iter().find(|(c, _)| c == command) else {
            panic!("README.md runs `{command}`: add it to STEPS in {}", file!())
        };
        match step {
            Step::NotRun(why) => eprintln!("not run: `{command}`: {why}"),
            Step::Serve => serve(&rt, dir.path(), command, port),
            Step::Exit(expected) => {
                let out = shell(dir.path(), command).output().unwrap();
                assert_eq!(
                    out.status.code(),
                    Some(expected),
                    "`{command}`\n{}{}",
                    support::stdout(&out),
                    support::stderr(&out)
                );
            }
        }
    }
    for (command, _) in STEPS {
        assert!(
            commands.iter().any(|c| c == command),
            "STEPS lists `{command}`, which README.md no longer shows: remove it"
        );
    }

    // What the commands left behind is what they promise.
    let sarif: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("depfw.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let exported = std::fs::read_to_string(dir.path().join("decisions.jsonl")).unwrap();
    assert!(
        exported.lines().any(|l| l.contains("\"is-number\"")),
        "{exported}"
    );
}

#[test]
fn sh_blocks_are_read_line_by_line_without_comments() {
    let text = "intro\n```sh\ndepfw a   # note\n\n# only a comment\ndepfw b\n```\n\
                ```toml\nkey = 1\n```\n```sh\ncargo test\n```\n";
    assert_eq!(readme_commands(text), ["depfw a", "depfw b", "cargo test"]);
}

/// The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as `-`.
fn heading_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The table of contents is how a reader finds a section: every `(#anchor)` link in the
/// README must land on one of its headings, and every `##`/`###` heading must be one click
/// from the contents, so that each feature is at most two clicks away.
#[test]
fn every_readme_link_lands_on_a_heading_and_the_contents_reach_every_section() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let mut in_code = false;
    let mut headings = Vec::new();
    for line in readme.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && (line.starts_with("## ") || line.starts_with("### ")) {
            headings.push(heading_anchor(line.trim_start_matches('#')));
        }
    }
    let links: Vec<&str> = readme
        .split("](#")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .collect();
    assert!(!links.is_empty(), "no in-page links found");
    for link in &links {
        assert!(
            headings.iter().any(|h| h == link),
            "README links to #{link}, which no heading has"
        );
    }
    let contents = readme
        .split_once("Contents:")
        .and_then(|(_, rest)| rest.split_once("\n## "))
        .map(|(toc, _)| toc)
        .expect("a Contents: paragraph before the first section");
    for heading in &headings {
        assert!(
            contents.contains(&format!("](#{heading})")),
            "the README's contents do not link to #{heading}"
        );
    }
}

#[test]
fn heading_anchors_follow_github() {
    assert_eq!(
        heading_anchor(" An agent's own guide: `depfw mcp`"),
        "an-agents-own-guide-depfw-mcp"
    );
    assert_eq!(
        heading_anchor(" One box (the default)"),
        "one-box-the-default"
    );
}
