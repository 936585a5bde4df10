//! Issue #16: the container image (`Dockerfile`) and the two-replica topology
//! (`docker-compose.yml`) are ones an operator can run as they are.
//!
//! The machine these tests were written on has a `docker` client but no engine, and no
//! registry to pull base images from, so nothing here builds an image. Instead: the files
//! are read and held to their hardening (pinned images, a non-root final stage, a health
//! check through `depfw probe`, read-only root, no capabilities), the config the compose
//! file mounts loads with depfw's own loader, and the compose services' own command line,
//! environment, mounts and secrets start two depfw processes on one PostgreSQL database
//! (`.ci/postgres.sh`), each waited on with the Dockerfile's `HEALTHCHECK` command as
//! written, which then share agents and one signed decision log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_norway::Value;

use crate::require::{note, POSTGRES};
use crate::support::{self, registry, Killed};

crate::require::trials! {
    [] => the_dockerfile_is_pinned_non_root_and_probes_readyz,
          the_compose_file_is_hardened_and_its_config_loads;
    [POSTGRES] => the_compose_topology_runs_as_two_processes_sharing_one_database;
}

/// Where the image puts the binary, its config and its state.
const BIN: &str = "/usr/local/bin/depfw";
const CONFIG: &str = "/etc/depfw/depfw.toml";
const STATE: &str = "/var/lib/depfw";

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn dockerfile() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_file("Dockerfile")).unwrap();
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                let (word, rest) = current.trim().split_once(' ').unwrap_or((&current, ""));
                out.push((word.to_ascii_uppercase(), rest.trim().to_owned()));
                current.clear();
            }
        }
    }
    out
}

/// The `HEALTHCHECK` instruction's command (exec form), as Docker runs it.
fn healthcheck_command() -> Vec<String> {
    let (_, rest) = dockerfile()
        .into_iter()
        .rfind(|(word, _)| word == "HEALTHCHECK")
        .expect("a HEALTHCHECK");
    let json = rest
        .split_once("CMD ")
        .expect("HEALTHCHECK … CMD [...]")
        .1
        .trim();
    serde_json::from_str(json).expect("the exec form: a JSON array, no shell in the image")
}

/// `image:tag@sha256:<64 hex>`: a tag a reader understands, a digest that cannot move.
fn assert_pinned(image: &str) {
    let (name, digest) = image
        .split_once("@sha256:")
        .unwrap_or_else(|| panic!("{image} is not pinned by digest"));
    assert!(
        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "{image}: not a sha256 digest"
    );
    let tag = name.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
    assert!(
        !tag.is_empty() && !tag.contains('/') && tag != "latest",
        "{image}: name a version tag beside the digest"
    );
}

fn the_dockerfile_is_pinned_non_root_and_probes_readyz() {
    let steps = dockerfile();
    let mut stages = Vec::new();
    let mut final_user = None;
    for (word, rest) in &steps {
        match word.as_str() {
            "FROM" => {
                let mut words = rest.split_whitespace();
                let image = words.next().unwrap();
                // A stage built on an earlier stage names it, not an image.
                if !stages.iter().any(|s: &String| s == image) {
                    assert_pinned(image);
                }
                if let (Some(as_), Some(name)) = (words.next(), words.next()) {
                    assert!(as_.eq_ignore_ascii_case("AS"));
                    stages.push(name.to_owned());
                }
                final_user = None;
            }
            "USER" => final_user = Some(rest.clone()),
            _ => {}
        }
    }
    assert!(!stages.is_empty(), "multi-stage: the toolchain stays out");
    let user = final_user.expect("the final stage sets USER");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric uid");
    assert_ne!(uid, 0, "the final stage runs as a non-root user");
    let has = |word: &str, what: &str| {
        steps
            .iter()
            .any(|(w, rest)| w == word && rest.split_whitespace().any(|x| x.contains(what)))
    };
    assert!(has("EXPOSE", "7878") && has("EXPOSE", "7879"));
    assert!(has("VOLUME", STATE), "the state directory is a volume");
    assert!(
        steps
            .iter()
            .any(|(w, rest)| w == "RUN" && rest.contains("cargo build --release --locked")),
        "the release binary, from the lock file"
    );
    let check = healthcheck_command();
    assert_eq!(check[0], BIN);
    assert_eq!(check[1], "probe");
    assert!(
        check.last().unwrap().ends_with("/readyz"),
        "probes readiness: {check:?}"
    );
    // The command the image starts with: the config and state paths compose mounts.
    let (_, cmd) = steps.iter().rfind(|(w, _)| w == "CMD").unwrap();
    let cmd: Vec<String> = serde_json::from_str(cmd).unwrap();
    assert!(cmd.iter().any(|a| a == CONFIG) && cmd.iter().any(|a| a == STATE));
}

/// `docker-compose.yml` with its `<<: *depfw` merges applied, as Compose reads it.
fn compose() -> Value {
    let text = std::fs::read_to_string(repo_file("docker-compose.yml")).unwrap();
    let mut value: Value = serde_norway::from_str(&text).unwrap();
    value.apply_merge().unwrap();
    value
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|s| s.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// The services built from this repository.
fn depfw_services(compose: &Value) -> Vec<(String, Value)> {
    compose["services"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, s)| s.get("build").is_some())
        .map(|(name, s)| (name.as_str().unwrap().to_owned(), s.clone()))
        .collect()
}

/// A volume's host source for a container path (`./host:/container[:ro]`).
fn mount_source(service: &Value, target: &str) -> Option<String> {
    strings(&service["volumes"]).into_iter().find_map(|v| {
        let mut parts = v.splitn(3, ':');
        let (source, dest) = (parts.next()?, parts.next()?);
        (dest == target).then(|| source.to_owned())
    })
}

fn the_compose_file_is_hardened_and_its_config_loads() {
    let compose = compose();
    let services = depfw_services(&compose);
    assert_eq!(services.len(), 2, "two replicas");
    let postgres = &compose["services"]["postgres"];
    assert_pinned(postgres["image"].as_str().unwrap());
    let pg_check = strings(&postgres["healthcheck"]["test"]);
    assert!(pg_check.iter().any(|w| w == "pg_isready"), "{pg_check:?}");
    assert!(
        postgres["environment"]["POSTGRES_PASSWORD_FILE"]
            .as_str()
            .unwrap()
            .starts_with("/run/secrets/"),
        "the database password is a secret file"
    );
    assert!(postgres["environment"].get("POSTGRES_PASSWORD").is_none());

    for (name, service) in
        std::iter::once(("postgres".to_owned(), postgres.clone())).chain(services.iter().cloned())
    {
        assert_eq!(
            service["read_only"],
            Value::Bool(true),
            "{name}: read-only root"
        );
        assert_eq!(strings(&service["cap_drop"]), ["ALL"], "{name}");
        assert!(
            strings(&service["security_opt"]).contains(&"no-new-privileges:true".to_owned()),
            "{name}"
        );
        assert!(
            service["restart"].as_str().is_some(),
            "{name}: a restart policy"
        );
    }
    for (name, service) in &services {
        assert_eq!(
            service["build"].as_str(),
            Some("."),
            "{name}: this Dockerfile"
        );
        assert_eq!(
            service["depends_on"]["postgres"]["condition"].as_str(),
            Some("service_healthy"),
            "{name}"
        );
        // No secret in the file itself: the URL with the password comes from an env file.
        let env = serde_norway::to_string(&service["environment"]).unwrap();
        assert!(!env.contains("postgres://"), "{name}: {env}");
        assert!(!strings(&service["env_file"]).is_empty(), "{name}");
        assert!(
            mount_source(service, STATE).is_some(),
            "{name}: its state on a volume"
        );
        // The admin API is published on the host's loopback only.
        for port in strings(&service["ports"]) {
            if port.ends_with(":7879") {
                assert!(port.starts_with("127.0.0.1:"), "{name}: {port}");
            }
        }
        let config = mount_source(service, CONFIG).expect("the config is mounted");
        let config = repo_file(config.trim_start_matches("./"));
        let loaded = depfw::config::Config::load(&config)
            .unwrap_or_else(|e| panic!("{}: {e}", config.display()));
        let token_file = loaded.admin.token_file.expect("the admin token is a file");
        let secrets: Vec<String> = service["secrets"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|s| s["target"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            secrets.iter().any(|t| Path::new(t) == token_file),
            "{name}: {} is a mounted secret ({secrets:?})",
            token_file.display()
        );
    }
}

const ADMIN_TOKEN: &str = "compose-admin-token-0123456789abcdef";

/// One compose service started as a process: container paths moved under `root`.
struct Replica {
    base: String,
    admin: String,
    child: Killed,
}

impl Replica {
    /// Starts `service` with its own command, environment, env file, config and secrets,
    /// the config's listeners moved to free loopback ports and its npm upstream to the
    /// fixture registry.
    fn start(
        root: &Path,
        name: &str,
        service: &Value,
        secrets: &BTreeMap<String, PathBuf>,
        env_files: &Path,
        upstream: &str,
    ) -> Replica {
        let dir = root.join(name);
        let state = dir.join("state");
        std::fs::create_dir_all(&state).unwrap();
        set_mode(&state, 0o700);
        let run_secrets = dir.join("run-secrets");
        std::fs::create_dir_all(&run_secrets).unwrap();
        // Container path → host path, longest first so that a secret inside the state
        // directory maps into this replica's state.
        let host = |path: &str| -> PathBuf {
            if let Some(rest) = path.strip_prefix(STATE) {
                return state.join(rest.trim_start_matches('/'));
            }
            if let Some(rest) = path.strip_prefix("/run/secrets/") {
                return run_secrets.join(rest);
            }
            if path == CONFIG {
                return dir.join("depfw.toml");
            }
            panic!("{name}: a container path the test does not map: {path}");
        };
        for secret in service["secrets"].as_sequence().unwrap() {
            let source = &secrets[secret["source"].as_str().unwrap()];
            let target = host(secret["target"].as_str().unwrap());
            std::fs::copy(source, &target).unwrap();
            set_mode(&target, 0o600);
        }
        let (port, admin) = (support::free_port(), support::free_port());
        let config = mount_source(service, CONFIG).unwrap();
        let mut config = std::fs::read_to_string(repo_file(config.trim_start_matches("./")))
            .unwrap()
            .replace("0.0.0.0:7878", &format!("127.0.0.1:{port}"))
            .replace("0.0.0.0:7879", &format!("127.0.0.1:{admin}"));
        for secret in service["secrets"].as_sequence().unwrap() {
            let target = secret["target"].as_str().unwrap();
            config = config.replace(target, &host(target).display().to_string());
        }
        config.push_str(&format!("\n[upstream]\nnpm = \"{upstream}/\"\n"));
        std::fs::write(host(CONFIG), config).unwrap();

        let args: Vec<String> = strings(&service["command"])
            .into_iter()
            .map(|a| {
                if a.starts_with('/') {
                    host(&a).display().to_string()
                } else {
                    a
                }
            })
            .collect();
        let mut cmd = support::depfw_command();
        cmd.args(&args);
        for file in strings(&service["env_file"]) {
            cmd.envs(env_file(&env_files.join(&file)));
        }
        if let Some(env) = service["environment"].as_mapping() {
            for (key, value) in env {
                cmd.env(key.as_str().unwrap(), value.as_str().unwrap());
            }
        }
        note(format!("{name}: depfw {}", args.join(" ")));
        let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = Killed(
            cmd.env("DEPFW_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let mut replica = Replica {
            base: format!("http://127.0.0.1:{port}"),
            admin: format!("http://127.0.0.1:{admin}/admin/api"),
            child,
        };
        replica.wait_healthy(port, &dir);
        replica
    }

    /// Runs the Dockerfile's `HEALTHCHECK` command, as written, until it passes.
    fn wait_healthy(&mut self, port: u16, dir: &Path) {
        let check: Vec<String> = healthcheck_command()
            .into_iter()
            .map(|a| {
                a.replace(BIN, env!("CARGO_BIN_EXE_depfw"))
                    .replace("127.0.0.1:7878", &format!("127.0.0.1:{port}"))
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let status = Command::new(&check[0])
                .args(&check[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            if status.success() {
                return;
            }
            if let Some(exit) = self.child.0.try_wait().unwrap() {
                let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
                panic!("depfw exited ({exit}) before it was healthy:\n{log}");
            }
            assert!(Instant::now() < deadline, "the health check never passed");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// `KEY=value` lines, as Compose's `env_file` and `docker run --env-file` read them.
fn env_file(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (key, value) = l.split_once('=').unwrap();
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn the_compose_topology_runs_as_two_processes_sharing_one_database() {
    let url = depfw::store::pg::testing::fresh_database("container")
        .expect("the trial needs DEPFW_TEST_POSTGRES_URL");
    let compose = compose();
    let rt = support::runtime();
    let (upstream, _fixture) = rt.block_on(registry::start_fixture());
    let root = tempfile::tempdir().unwrap();

    // The secrets, made as README "Container" says: the store's env file first, then the
    // signing key by `depfw log public-key` on an empty directory with that environment.
    let secrets_dir = root.path().join("secrets");
    std::fs::create_dir_all(&secrets_dir).unwrap();
    let store_env = secrets_dir.join("depfw-store.env");
    std::fs::write(&store_env, format!("DEPFW_STORE={}\n", url.expose())).unwrap();
    let keygen = root.path().join("keygen");
    std::fs::create_dir_all(&keygen).unwrap();
    let public = support::depfw_command()
        .envs(env_file(&store_env))
        .arg("--data-dir")
        .arg(&keygen)
        .args(["log", "public-key"])
        .output()
        .unwrap();
    assert!(public.status.success(), "{}", support::stderr(&public));
    let public_key = root.path().join("depfw.pub");
    std::fs::write(&public_key, &public.stdout).unwrap();
    let mut secrets = BTreeMap::new();
    for (name, spec) in compose["secrets"].as_mapping().unwrap() {
        let name = name.as_str().unwrap().to_owned();
        let file = secrets_dir.join(&name);
        match name.as_str() {
            "depfw-admin-token" => std::fs::write(&file, ADMIN_TOKEN).unwrap(),
            "depfw-signing-key" => std::fs::copy(keygen.join("signing-key"), &file)
                .map(drop)
                .unwrap(),
            // The test cluster's password is already in its URL.
            _ => std::fs::write(&file, "unused").unwrap(),
        }
        assert!(spec["file"].as_str().unwrap().starts_with("./secrets/"));
        secrets.insert(name, file);
    }

    let replicas: Vec<Replica> = depfw_services(&compose)
        .iter()
        .map(|(name, service)| {
            Replica::start(root.path(), name, service, &secrets, root.path(), &upstream)
        })
        .collect();
    let [r1, r2] = &replicas[..] else {
        panic!("two replicas")
    };

    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        // An agent added through replica 1's admin API…
        let created = client
            .post(format!("{}/agents", r1.admin))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({"name": "compose-bot"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
        let created: serde_json::Value = created.json().await.unwrap();
        let token = created["token"].as_str().unwrap().to_owned();
        // …is listed by replica 2's, and its token works on both mirrors.
        let listed: serde_json::Value = client
            .get(format!("{}/agents", r2.admin))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            listed["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["name"] == "compose-bot"),
            "{listed}"
        );
        for replica in [r1, r2] {
            let anonymous = client
                .get(format!("{}/npm/is-number", replica.base))
                .send()
                .await
                .unwrap();
            assert_eq!(anonymous.status(), 401, "allow-anonymous = never");
            let tarball = client
                .get(format!(
                    "{}/a/{token}/npm/is-number/-/is-number-7.0.0.tgz",
                    replica.base
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(tarball.status(), 200, "{}", replica.base);
        }
    });

    // Both replicas appended to one chain, signed with the one key from the secret.
    let verify = support::depfw_command()
        .env("DEPFW_STORE", url.expose())
        .arg("--data-dir")
        .arg(&keygen)
        .args(["log", "verify", "--public-key"])
        .arg(&public_key)
        .output()
        .unwrap();
    let text = support::stdout(&verify);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{text}{}",
        support::stderr(&verify)
    );
    assert!(text.starts_with("chain intact"), "{text}");
}
