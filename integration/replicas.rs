//! Two `depfw serve` replicas on one PostgreSQL database (issue #13), the real binary
//! against the hermetic fixture registry: an agent added with the CLI while both run works
//! on the other; a version held on replica 1 and approved through replica 2's admin API
//! downloads from replica 1; the breaker counts an agent's packages across both; bursts
//! on both, with replica 1 killed (SIGKILL) in the middle, leave one chain that verifies,
//! with a record for every download a client saw succeed.
//!
//! Needs the test cluster of `.ci/postgres.sh` (`DEPFW_TEST_POSTGRES_URL`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use depfw::config::DatabaseUrl;
use depfw::store::decisions::RecordKind;
use depfw::store::pg::PgStore;
use serde_json::Value;

use crate::require::POSTGRES;
use crate::support::registry;

const ADMIN_TOKEN: &str = "replica-admin-token-0123456789abcdef";
/// Downloads the burst spreads over (all allowed by the default policy).
const TARBALLS: &[&str] = &[
    "is-number/-/is-number-6.0.0.tgz",
    "is-number/-/is-number-7.0.0.tgz",
    "is-odd/-/is-odd-3.0.1.tgz",
    "ms/-/ms-2.1.2.tgz",
];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Replica {
    config: PathBuf,
    data: PathBuf,
    base: String,
    admin: String,
    child: Option<Child>,
}

impl Replica {
    fn new(root: &Path, n: usize, upstream: &str) -> Replica {
        let data = root.join(format!("replica{n}"));
        let token_file = root.join("admin-token");
        std::fs::write(&token_file, ADMIN_TOKEN).unwrap();
        // depfw refuses a token file others can read.
        let mut mode = std::fs::metadata(&token_file).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o600);
        std::fs::set_permissions(&token_file, mode).unwrap();
        let (port, admin_port) = (free_port(), free_port());
        let config = root.join(format!("replica{n}.toml"));
        std::fs::write(
            &config,
            format!(
                "[server]\ndata-dir = \"{}\"\npublic-url = \"http://127.0.0.1:{port}/\"\n\
                 listen = \"127.0.0.1:{port}\"\n\n\
                 [upstream]\nnpm = \"{upstream}/\"\n\n\
                 [agents]\nmax-new-packages-per-hour = 2\n\n\
                 [admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken-file = \"{}\"\n\n\
                 [store]\nrefresh-millis = 100\n",
                data.display(),
                token_file.display()
            ),
        )
        .unwrap();
        Replica {
            config,
            data,
            base: format!("http://127.0.0.1:{port}"),
            admin: format!("http://127.0.0.1:{admin_port}/admin/api"),
            child: None,
        }
    }

    /// `depfw` with this replica's config, on the database.
    fn command(&self, url: &DatabaseUrl) -> std::process::Command {
        let mut cmd = crate::support::depfw_command();
        cmd.arg("--config")
            .arg(&self.config)
            .env("DEPFW_STORE", url.expose());
        cmd
    }

    async fn start(&mut self, url: &DatabaseUrl, client: &reqwest::Client) {
        let mut child = self
            .command(url)
            .arg("serve")
            .env("DEPFW_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            assert!(child.try_wait().unwrap().is_none(), "depfw serve exited");
            let ready = client.get(format!("{}/readyz", self.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "depfw serve did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.child = Some(child);
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn two_replicas_share_agents_approvals_breaker_and_one_chain() {
    crate::support::runtime().block_on(scenario());
}

async fn scenario() {
    let url = depfw::store::pg::testing::fresh_database("replicas")
        .expect("the trial needs DEPFW_TEST_POSTGRES_URL");
    let (upstream, fixture) = registry::start_fixture().await;
    // Published a minute ago: held by the release cooldown (quarantine).
    fixture.times.lock().unwrap().insert(
        ("ms".to_owned(), "2.1.3".to_owned()),
        chrono::Utc::now() - chrono::Duration::minutes(1),
    );
    let root = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut r1 = Replica::new(root.path(), 1, &upstream);
    let mut r2 = Replica::new(root.path(), 2, &upstream);
    r1.start(&url, &client).await;
    // One signing key for the whole chain: the second replica gets a copy of the first's.
    std::fs::create_dir_all(&r2.data).unwrap();
    std::fs::copy(r1.data.join("signing-key"), r2.data.join("signing-key")).unwrap();
    r2.start(&url, &client).await;

    // An agent added with the CLI while both run, used on replica 2.
    let added = r1
        .command(&url)
        .args(["agents", "add", "ci-bot"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&added.stdout);
    assert!(
        added.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("token (shown once, store it now): "))
        .expect("the CLI prints the token")
        .trim()
        .to_owned();
    let packument = client
        .get(format!("{}/a/{token}/npm/is-number", r2.base))
        .send()
        .await
        .unwrap();
    assert_eq!(packument.status(), 200, "the agent works on replica 2");

    // Held on replica 1, approved through replica 2's admin API, served by replica 1.
    let held = format!("{}/npm/ms/-/ms-2.1.3.tgz", r1.base);
    let refused = client.get(&held).send().await.unwrap();
    assert_ne!(refused.status(), 200, "a version in its cooldown is held");
    let list: Value = client
        .get(format!("{}/quarantine", r2.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "ms" && i["version"] == "2.1.3")
        .map(|i| i["id"].as_u64().unwrap())
        .expect("replica 2 lists the version replica 1 held");
    let approved = client
        .post(format!("{}/quarantine/{id}/approve", r2.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"reason": "reviewed on replica 2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200, "{}", approved.text().await.unwrap());
    // Replica 1 learns of the approval from the database (`store.refresh-millis`); the
    // bound only catches a hang.
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(&held).send().await.unwrap().status() != 200 {
        assert!(
            Instant::now() < deadline,
            "replica 1 never served the version approved on replica 2"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The breaker: 2 new packages an hour, counted across both replicas.
    let added = r2
        .command(&url)
        .args(["agents", "add", "greedy"])
        .output()
        .unwrap();
    let greedy = String::from_utf8_lossy(&added.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("token (shown once, store it now): "))
        .expect("the CLI prints the token")
        .trim()
        .to_owned();
    for (replica, package) in [(&r1, "is-number"), (&r2, "is-odd")] {
        let r = client
            .get(format!("{}/a/{greedy}/npm/{package}", replica.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "within the limit: {package}");
    }
    let third = client
        .get(format!("{}/a/{greedy}/npm/ms", r2.base))
        .send()
        .await
        .unwrap();
    assert_ne!(
        third.status(),
        200,
        "the third package trips the breaker, though replica 2 alone saw two"
    );
    let shared = PgStore::connect(&url, 2, Duration::from_secs(3600)).unwrap();
    let agents = depfw::store::repo::Backend::Postgres(shared.clone())
        .repos()
        .unwrap()
        .agents;
    assert!(agents.get("greedy").unwrap().suspended.is_some());

    // Bursts on both replicas; replica 1 is killed after 40 of its downloads succeeded.
    let served: Arc<Mutex<Vec<String>>> = Arc::default();
    let served_by_r1 = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r1_child = Arc::new(Mutex::new(r1.child.take()));
    let sem = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = Vec::new();
    for i in 0..400 {
        let on_r1 = i % 2 == 0;
        let base = if on_r1 {
            r1.base.clone()
        } else {
            r2.base.clone()
        };
        let (client, served, by_r1, child, sem) = (
            client.clone(),
            Arc::clone(&served),
            Arc::clone(&served_by_r1),
            Arc::clone(&r1_child),
            Arc::clone(&sem),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.unwrap();
            let url = format!("{base}/npm/{}", TARBALLS[i % TARBALLS.len()]);
            let Some(id) = crate::crash::served_download(&client, &url).await else {
                return;
            };
            served.lock().unwrap().push(id);
            if on_r1 && by_r1.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 40 {
                if let Some(child) = child.lock().unwrap().as_mut() {
                    child.kill().unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    if let Some(mut child) = r1_child.lock().unwrap().take() {
        assert!(!child.wait().unwrap().success(), "replica 1 was killed");
    }
    let served = served.lock().unwrap().clone();
    assert!(
        served.len() > 200,
        "replica 2 kept serving: {}",
        served.len()
    );

    // One chain, no gaps, every acknowledged download recorded.
    let verify = r2.command(&url).args(["log", "verify"]).output().unwrap();
    let text = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{text}");
    assert!(text.starts_with("chain intact"), "{text}");
    let log = depfw::store::repo::Backend::Postgres(shared)
        .decisions_read_only()
        .unwrap();
    let recorded: HashSet<String> = log
        .list(0, usize::MAX)
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == RecordKind::Artifact && r.outcome.starts_with("served"))
        .map(|r| r.request_id)
        .collect();
    let missing: Vec<_> = served.iter().filter(|id| !recorded.contains(*id)).collect();
    assert!(missing.is_empty(), "served without a record: {missing:?}");
}

crate::require::trials! {
    [POSTGRES] => two_replicas_share_agents_approvals_breaker_and_one_chain;
}
