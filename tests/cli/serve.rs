//! `depfw serve` as a process: the admin endpoint on its own listener, apart from the
//! mirror, and the admin token file that other OS users must not be able to read.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{self, free_port, layout, registry, Killed};

const ADMIN_TOKEN: &str = "serve-admin-token-0123456789";

/// A config for the fixture registry with the mirror and admin listeners and a token file
/// of `mode`; returns its path.
fn config(dir: &Path, upstream: &str, mirror: u16, admin_listen: &str, mode: u32) -> String {
    let token_file = dir.join("admin-token");
    std::fs::write(&token_file, format!("{ADMIN_TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(mode)).unwrap();
    let path = dir.join("depfw.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:{mirror}\"\ndata-dir = \"{}\"\n\n{}\n\
             [admin]\nlisten = \"{admin_listen}\"\ntoken-file = \"{}\"\n",
            dir.join("data").display(),
            layout::upstream_toml(upstream),
            token_file.display()
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn a_token_file_other_users_can_read_is_refused_at_start() {
    let rt = support::runtime();
    let (upstream, _fixture) = rt.block_on(registry::start_fixture());
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o644, 0o640, 0o620] {
        let config = config(dir.path(), &upstream, free_port(), "127.0.0.1:0", mode);
        let out = support::depfw(&["--config", &config, "serve"]);
        assert_eq!(support::code(&out), 2, "mode {mode:o}");
        let err = support::stderr(&out);
        let file = dir.path().join("admin-token").display().to_string();
        assert!(
            err.contains(&file) && err.contains(&format!("chmod 600 {file}")),
            "mode {mode:o}: {err}"
        );
        assert!(!err.contains(ADMIN_TOKEN), "{err}");
    }
}

#[test]
fn the_admin_endpoint_has_its_own_listener_and_the_mirror_serves_none_of_it() {
    let rt = support::runtime();
    let (upstream, _fixture) = rt.block_on(registry::start_fixture());
    let dir = tempfile::tempdir().unwrap();
    let (mirror, admin) = (free_port(), free_port());
    let config = config(
        dir.path(),
        &upstream,
        mirror,
        &format!("127.0.0.1:{admin}"),
        0o600,
    );
    let mut server = Killed(
        support::depfw_command()
            .args(["--config", &config, "serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The start-up line names both addresses.
    let stderr = server.0.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("depfw serve is listening"))
        .expect("a start-up line");
    assert!(
        listening.contains(&format!("127.0.0.1:{mirror}"))
            && listening.contains(&format!("http://127.0.0.1:{admin}/admin")),
        "{listening}"
    );
    std::thread::spawn(move || lines.for_each(drop));

    let client = reqwest::Client::new();
    let call = |url: String| {
        let request = client
            .get(url)
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .send();
        rt.block_on(async {
            let response = request.await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while call(format!("http://127.0.0.1:{mirror}/healthz")).0 != 200 {
        assert!(Instant::now() < deadline, "depfw serve did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = call(format!("http://127.0.0.1:{admin}/admin/api/quarantine"));
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(format!("http://127.0.0.1:{mirror}/admin/api/quarantine"));
    assert_eq!(status, 404, "{body}");
    assert!(
        !body.contains(&admin.to_string()) && !body.contains(ADMIN_TOKEN),
        "the mirror's 404 names no admin address: {body}"
    );
    let (status, _) = call(format!("http://127.0.0.1:{admin}/npm/is-number"));
    assert_eq!(status, 404, "the admin listener serves no registry");
    let (status, body) = call(format!("http://127.0.0.1:{mirror}/readyz"));
    assert_eq!(status, 200, "{body}");
}

/// With `admin.listen = "unix:/path"`, only depfw's own OS user may connect: the socket is
/// created with mode 0600.
#[test]
fn the_admin_endpoint_can_be_a_private_unix_socket() {
    use std::io::{Read as _, Write as _};
    let rt = support::runtime();
    let (upstream, _fixture) = rt.block_on(registry::start_fixture());
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("admin.sock");
    let config = config(
        dir.path(),
        &upstream,
        free_port(),
        &format!("unix:{}", socket.display()),
        0o600,
    );
    let _server = Killed(
        support::depfw_command()
            .args(["--config", &config, "serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stream = loop {
        if let Ok(s) = std::os::unix::net::UnixStream::connect(&socket) {
            break s;
        }
        assert!(Instant::now() < deadline, "no admin socket");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    write!(
        stream,
        "GET /admin/api/quarantine HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

/// A token from the environment is accepted with a warning: another process of the same OS
/// user can read it from /proc/<pid>/environ.
#[test]
fn a_token_from_the_environment_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Killed(
        support::depfw_command()
            .args(["--data-dir"])
            .arg(dir.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DEPFW_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("DEPFW_CONFIG", write_admin_on_any_port(dir.path()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = server.0.stderr.take().unwrap();
    let before_listening: Vec<String> = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .take_while(|l| !l.contains("depfw serve is listening"))
        .collect();
    let text = before_listening.join("\n");
    assert!(
        text.contains("$DEPFW_ADMIN_TOKEN") && text.contains("token-file"),
        "{text}"
    );
    assert!(!text.contains(ADMIN_TOKEN), "{text}");
}

/// A config whose admin listener takes any free port.
fn write_admin_on_any_port(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("admin-any-port.toml");
    std::fs::write(&path, "[admin]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    path
}

/// Issue #16 end to end: `/metrics` on the admin listener (never on the mirror), one JSON
/// log line per request with `--log-format json`, and the decision stream to a file.
#[test]
fn serve_exposes_metrics_logs_requests_and_streams_decisions() {
    let rt = support::runtime();
    let (upstream, _fixture) = rt.block_on(registry::start_fixture());
    let dir = tempfile::tempdir().unwrap();
    let (mirror, admin) = (free_port(), free_port());
    let config = config(
        dir.path(),
        &upstream,
        mirror,
        &format!("127.0.0.1:{admin}"),
        0o600,
    );
    let stream = dir.path().join("decisions.jsonl");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[siem]\nfile = \"{}\"\nbatch-records = 1\n",
        stream.display()
    ));
    std::fs::write(&config, text).unwrap();
    let mut server = Killed(
        support::depfw_command()
            .args(["--log-format", "json", "--config", &config, "serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let logged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    {
        let logged = std::sync::Arc::clone(&logged);
        let stderr = server.0.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                logged.lock().unwrap().push(line);
            }
        });
    }
    let client = reqwest::Client::new();
    let get = |url: String| {
        rt.block_on(async {
            match client.get(url).send().await {
                Ok(response) => (response.status().as_u16(), response.text().await.unwrap()),
                Err(e) => (0, e.to_string()),
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(format!("http://127.0.0.1:{mirror}/healthz")).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "depfw serve did not come up:\n{}",
            logged.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = get(format!("http://127.0.0.1:{mirror}/npm/is-number"));
    assert_eq!(status, 200, "{body}");

    let (status, metrics) = get(format!("http://127.0.0.1:{admin}/metrics"));
    assert_eq!(status, 200, "{metrics}");
    assert!(
        metrics.contains(
            "depfw_http_requests_total{ecosystem=\"npm\",route=\"metadata\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("depfw_decisions_total{"), "{metrics}");
    let (status, _) = get(format!("http://127.0.0.1:{mirror}/metrics"));
    assert_eq!(status, 404, "the mirror serves no metrics");

    // The metadata summary record reaches the stream, as the log holds it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let line = loop {
        let text = std::fs::read_to_string(&stream).unwrap_or_default();
        if let Some(line) = text.lines().next() {
            break line.to_owned();
        }
        assert!(Instant::now() < deadline, "nothing streamed to {stream:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let record: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(record["seq"], 1);
    assert_eq!(record["package"], "is-number");
    assert_eq!(record["hash"].as_str().unwrap().len(), 64, "{record}");

    // Every stderr line is a JSON object; the request has its own line.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = logged.lock().unwrap().clone();
        let parsed: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        if parsed.iter().any(|l| {
            l["target"] == "depfw::access" && l["path"] == "/npm/is-number" && l["status"] == 200
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no request line:\n{}",
            lines.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
