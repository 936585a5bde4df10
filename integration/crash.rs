//! Crash safety of the decision log: the real `depfw serve` binary is killed with SIGKILL
//! in the middle of a burst of artifact downloads, then the same data directory is opened
//! again. The store must open, the hash chain must verify, and every download a client saw
//! succeed must have its decision record (a decision is on disk before any byte is sent).

use std::collections::HashSet;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use depfw::store::decisions::{ChainStatus, DecisionLog, RecordKind};
use depfw::store::Store;

use crate::support::registry;

const TARBALLS: &[&str] = &[
    "is-number/-/is-number-6.0.0.tgz",
    "is-number/-/is-number-7.0.0.tgz",
    "is-odd/-/is-odd-3.0.1.tgz",
    "ms/-/ms-2.1.2.tgz",
    "ms/-/ms-2.1.3.tgz",
];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn start(config: &std::path::Path, port: u16) -> Child {
    crate::support::depfw_command()
        .arg("--config")
        .arg(config)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("DEPFW_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The request id of a download the client saw succeed: a 200 whose whole body arrived, as
/// a package manager sees it; `None` for anything else (a refused connection mid-kill).
pub(crate) async fn served_download(client: &reqwest::Client, url: &str) -> Option<String> {
    let resp = client.get(url).send().await.ok()?;
    if resp.status() != reqwest::StatusCode::OK {
        return None;
    }
    let id = resp.headers()["x-depfw-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    resp.bytes().await.ok()?;
    Some(id)
}

pub(crate) async fn wait_healthy(client: &reqwest::Client, base: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "depfw serve exited");
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "depfw serve did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn kill_9_mid_burst_keeps_every_served_decision_and_the_chain() {
    crate::support::runtime().block_on(kill_9_mid_burst());
}

async fn kill_9_mid_burst() {
    let (upstream, _fixture) = registry::start_fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("depfw.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndata-dir = \"{}\"\n\n[upstream]\nnpm = \"{upstream}/\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut child = start(&config, port);
    wait_healthy(&client, &base, &mut child).await;

    // A bounded burst: 300 downloads, 16 at a time; the kill comes after 60 successes.
    let served: Arc<Mutex<Vec<String>>> = Arc::default();
    let child = Arc::new(Mutex::new(child));
    let sem = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = Vec::new();
    for i in 0..300 {
        let (client, base, served, child, sem) = (
            client.clone(),
            base.clone(),
            Arc::clone(&served),
            Arc::clone(&child),
            Arc::clone(&sem),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.unwrap();
            let url = format!("{base}/npm/{}", TARBALLS[i % TARBALLS.len()]);
            let Some(id) = served_download(&client, &url).await else {
                return;
            };
            let mut served = served.lock().unwrap();
            served.push(id);
            if served.len() == 60 {
                child.lock().unwrap().kill().unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut child = Arc::try_unwrap(child).unwrap().into_inner().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not exited: {status:?}");
    let served = served.lock().unwrap().clone();
    assert!(served.len() >= 60, "the burst reached the kill point");
    assert!(served.len() < 300, "the kill interrupted the burst");

    // Restart on the same data dir: it opens and serves.
    let mut again = start(&config, port);
    wait_healthy(&client, &base, &mut again).await;
    again.kill().unwrap();
    again.wait().unwrap();

    let verify = crate::support::depfw_command()
        .arg("--config")
        .arg(&config)
        .args(["log", "verify"])
        .output()
        .unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    let store = Store::open(&dir.path().join("data")).unwrap();
    let log = DecisionLog::open(&store).unwrap();
    assert!(matches!(log.verify().unwrap(), ChainStatus::Intact { .. }));
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
    [] => kill_9_mid_burst_keeps_every_served_decision_and_the_chain;
}
