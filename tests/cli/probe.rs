//! `depfw probe URL`, the container's health check: exit 0 on a 2xx answer, 1 on any other
//! answer, a refused connection or a server that never answers (within `--timeout-secs`),
//! 2 on a URL it cannot probe.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::support::{code, depfw, stderr};

/// A loopback server that answers every connection with `response` (or, for `None`, reads
/// the request and then says nothing until the test ends).
fn server(response: Option<&'static str>) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/readyz", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf);
        match response {
            Some(r) => {
                let _ = stream.write_all(r.as_bytes());
            }
            // Holds the connection open past the probe's timeout.
            None => std::thread::sleep(Duration::from_secs(5)),
        }
    });
    (url, handle)
}

#[test]
fn a_200_exits_0() {
    let (url, h) = server(Some(
        "HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nready\n",
    ));
    let out = depfw(&["probe", &url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    h.join().unwrap();
}

#[test]
fn a_503_exits_1_naming_the_status() {
    let (url, h) = server(Some(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    ));
    let out = depfw(&["probe", &url]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("503"), "{}", stderr(&out));
    h.join().unwrap();
}

#[test]
fn a_redirect_is_not_followed_and_exits_1() {
    let (url, h) = server(Some(
        "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    ));
    let out = depfw(&["probe", &url]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    h.join().unwrap();
}

#[test]
fn a_refused_connection_exits_1() {
    let port = crate::support::free_port();
    let out = depfw(&["probe", &format!("http://127.0.0.1:{port}/readyz")]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
}

#[test]
fn a_server_that_never_answers_exits_1_within_the_timeout() {
    let (url, _h) = server(None);
    let started = Instant::now();
    let out = depfw(&["probe", "--timeout-secs", "1", &url]);
    let took = started.elapsed();
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("no answer within 1 s"),
        "{}",
        stderr(&out)
    );
    // 1 s of timeout plus process start-up; the server would hold on for 5.
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

#[test]
fn a_url_it_cannot_probe_exits_2() {
    assert_eq!(code(&depfw(&["probe", "ftp://127.0.0.1/readyz"])), 2);
    assert_eq!(code(&depfw(&["probe", "not a url"])), 2);
    assert_eq!(
        code(&depfw(&[
            "probe",
            "--timeout-secs",
            "0",
            "http://127.0.0.1:1/"
        ])),
        2
    );
}

/// The probe reads no config: a broken `DEPFW_CONFIG` (a container's environment) does not
/// make a healthy server look unhealthy.
#[test]
fn the_probe_ignores_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[no-such-section]\n").unwrap();
    let (url, h) = server(Some(
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    ));
    let out = crate::support::depfw_command()
        .env("DEPFW_CONFIG", &bad)
        .args(["probe", &url])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    h.join().unwrap();
}
