//! `depfw serve` under abuse (issue #11), over real sockets: a client that never finishes
//! its headers is disconnected, connections over the caps get a 503 with `Retry-After`
//! while other peers are still served, and the admin endpoint answers while the mirror is
//! full. Linux routes all of 127.0.0.0/8 on `lo`, so 127.0.0.2, .3, … are other peers.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::{self, free_port, layout, registry, Killed};

pub(crate) const ADMIN_TOKEN: &str = "limits-admin-token-0123456789";

/// Long enough that no test step waits on it by accident.
const PATIENCE: Duration = Duration::from_secs(30);

/// Starts `depfw serve` on the fixture registry with `server` added to `[server]`; returns
/// the process, the mirror port and the admin port once `/healthz` answers.
pub(crate) fn start(dir: &Path, upstream: &str, server: &str) -> (Killed, u16, u16) {
    let (mirror, admin) = (free_port(), free_port());
    let token_file = dir.join("admin-token");
    std::fs::write(&token_file, format!("{ADMIN_TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.join("depfw.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{mirror}\"\ndata-dir = \"{}\"\n{server}\n\n{}\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken-file = \"{}\"\n",
            dir.join("data").display(),
            layout::upstream_toml(upstream),
            token_file.display()
        ),
    )
    .unwrap();
    let mut child = Killed(
        support::depfw_command()
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("depfw serve is listening"))
        .expect("a start-up line");
    std::thread::spawn(move || lines.for_each(drop));
    (child, mirror, admin)
}

/// A connection to `port` on 127.0.0.1 from the local address `from`.
async fn connect(from: [u8; 4], port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::from(from), 0)).unwrap();
    socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap()
}

/// One `GET` from `from` on a fresh connection: the status line, headers and body as text.
async fn get(from: [u8; 4], port: u16, path: &str, auth: bool) -> String {
    let mut s = connect(from, port).await;
    let auth = if auth {
        format!("Authorization: Bearer {ADMIN_TOKEN}\r\n")
    } else {
        String::new()
    };
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(PATIENCE, s.read_to_end(&mut reply))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&reply).into_owned()
}

/// Waits until `from` gets a 200 for `/healthz`.
async fn until_served(from: [u8; 4], port: u16) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if get(from, port, "/healthz", false)
            .await
            .starts_with("HTTP/1.1 200")
        {
            return;
        }
        assert!(Instant::now() < deadline, "{from:?} is never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Before: a client sending half a header held its connection (and descriptor) for ever.
#[test]
fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let rt = support::runtime();
    let (upstream, _fixture) = rt.block_on(registry::start_fixture());
    let dir = tempfile::tempdir().unwrap();
    let (_server, mirror, _) = start(dir.path(), &upstream, "header-timeout-secs = 1");
    rt.block_on(async {
        until_served([127, 0, 0, 1], mirror).await;
        let mut slow = connect([127, 0, 0, 1], mirror).await;
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: loc")
            .await
            .unwrap();
        let mut rest = Vec::new();
        // Closed by depfw (an end of stream or a reset), not by our patience running out.
        let closed = tokio::time::timeout(PATIENCE, slow.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "still connected after {PATIENCE:?}");
        // Someone who sends a whole request is still served.
        until_served([127, 0, 0, 2], mirror).await;
    });
}

/// One peer's connections cannot take every slot; past the total cap everyone is told to
/// come back (503, `Retry-After`, which limit); the admin endpoint still answers.
#[test]
fn connections_over_the_caps_are_shed_and_other_peers_and_the_admin_still_served() {
    let rt = support::runtime();
    let (upstream, _fixture) = rt.block_on(registry::start_fixture());
    let dir = tempfile::tempdir().unwrap();
    let (_server, mirror, admin) = start(
        dir.path(),
        &upstream,
        "header-timeout-secs = 60\nmax-connections = 4\nmax-connections-per-peer = 2",
    );
    rt.block_on(async {
        until_served([127, 0, 0, 9], mirror).await;
        // Two idle connections: 127.0.0.1 holds its share.
        let _idle_a = [
            connect([127, 0, 0, 1], mirror).await,
            connect([127, 0, 0, 1], mirror).await,
        ];
        let shed = get([127, 0, 0, 1], mirror, "/healthz", false).await;
        assert!(shed.starts_with("HTTP/1.1 503"), "{shed}");
        assert!(shed.contains("retry-after: 5\r\n"), "{shed}");
        assert!(shed.contains("server.max-connections-per-peer"), "{shed}");
        // Another peer is served meanwhile.
        let served = get([127, 0, 0, 2], mirror, "/healthz", false).await;
        assert!(served.starts_with("HTTP/1.1 200"), "{served}");

        // A third peer fills the remaining slots: now everyone is shed…
        let _idle_b = [
            connect([127, 0, 0, 3], mirror).await,
            connect([127, 0, 0, 3], mirror).await,
        ];
        let full = get([127, 0, 0, 4], mirror, "/healthz", false).await;
        assert!(full.starts_with("HTTP/1.1 503"), "{full}");
        assert!(full.contains("retry-after: 5\r\n"), "{full}");
        assert!(
            full.contains("(4 clients at once, server.max-connections)"),
            "{full}"
        );
        // …except on the admin listener, which has its own cap.
        let answered = get([127, 0, 0, 4], admin, "/admin/api/quarantine", true).await;
        assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");

        // Once the idle connections go, the slots come back.
        drop(_idle_a);
        drop(_idle_b);
        until_served([127, 0, 0, 4], mirror).await;
    });
}

/// A request body that stops arriving is given up after `server.body-timeout-secs`: the
/// admin endpoint (the listener whose handlers read bodies) answers and closes instead of
/// waiting for the rest.
#[test]
fn a_request_body_that_stops_arriving_is_given_up() {
    let rt = support::runtime();
    let (upstream, _fixture) = rt.block_on(registry::start_fixture());
    let dir = tempfile::tempdir().unwrap();
    let (_server, mirror, admin) = start(dir.path(), &upstream, "body-timeout-secs = 1");
    rt.block_on(async {
        until_served([127, 0, 0, 1], mirror).await;
        let mut s = connect([127, 0, 0, 1], admin).await;
        s.write_all(
            format!(
                "POST /admin/api/overrides HTTP/1.1\r\nHost: localhost\r\n\
                 Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n\
                 Content-Length: 100\r\n\r\n{{\"ecosystem\":"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut reply = Vec::new();
        let answered = tokio::time::timeout(PATIENCE, s.read_to_end(&mut reply)).await;
        assert!(
            answered.is_ok(),
            "still waiting for the body after {PATIENCE:?}"
        );
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with("HTTP/1.1 4"), "{reply}");
    });
}
