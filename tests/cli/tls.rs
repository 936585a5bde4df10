//! `depfw serve` over HTTPS (issue #12): with `server.tls-cert` and `server.tls-key` the
//! mirror and the admin listener speak TLS only, rewritten metadata points at `https://`,
//! a client that does not trust the certificate is refused by its own verification, and a
//! half-open handshake cannot hold a connection for ever. The real clients (npm, pip,
//! cargo) installing through it are in `integration/tls.rs`.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use tokio::io::AsyncReadExt as _;

use crate::limits::{start, ADMIN_TOKEN};
use crate::support::{self, layout, registry, tls::TestCa};

#[test]
fn the_mirror_and_the_admin_speak_https_and_metadata_points_at_https() {
    let rt = support::runtime();
    let (upstream, _fixture) = rt.block_on(registry::start_fixture());
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let (_server, mirror, admin) = start(dir.path(), &upstream, &ca.server_toml());
    rt.block_on(async {
        let client = ca.client();
        let base = format!("https://127.0.0.1:{mirror}");
        let health = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert!(health.status().is_success(), "{health:?}");

        // The packument's tarball URLs, which npm writes into package-lock.json, are https.
        let packument: serde_json::Value = client
            .get(format!("{base}/npm/is-number"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let tarballs: Vec<&str> = packument["versions"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(|v| v["dist"]["tarball"].as_str())
            .collect();
        assert!(!tarballs.is_empty(), "{packument}");
        for t in &tarballs {
            assert!(t.starts_with(&format!("{base}/npm/")), "{t}");
        }
        let tarball = client.get(tarballs[0]).send().await.unwrap();
        assert_eq!(tarball.status(), 200, "{tarball:?}");

        // The admin listener is HTTPS too: the admin token never crosses in clear.
        let api = client
            .get(format!("https://127.0.0.1:{admin}/admin/api/overrides"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), 200, "{api:?}");

        // A client without the CA refuses depfw's certificate itself.
        let untrusting = reqwest::Client::new();
        let err = untrusting
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_connect() || err.is_request(), "{err:?}");

        // Plain HTTP on the TLS port gets no HTTP answer.
        let plain = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{mirror}/healthz"))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    });
}

/// A client that opens a connection and never starts the handshake is dropped at the
/// header deadline, and others are served meanwhile.
#[test]
fn a_handshake_that_never_comes_is_given_up_at_the_header_deadline() {
    let rt = support::runtime();
    let (upstream, _fixture) = rt.block_on(registry::start_fixture());
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let server = format!("header-timeout-secs = 1\n{}", ca.server_toml());
    let (_server, mirror, _) = start(dir.path(), &upstream, &server);
    rt.block_on(async {
        let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", mirror))
            .await
            .unwrap();
        let health = ca
            .client()
            .get(format!("https://127.0.0.1:{mirror}/healthz"))
            .send()
            .await
            .unwrap();
        assert!(health.status().is_success());
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(30), silent.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "a silent client still holds its connection");
    });
}

fn write_config(dir: &std::path::Path, server_lines: &str) -> String {
    let path = dir.join("depfw.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata-dir = \"{}\"\n{server_lines}\n{}",
            dir.join("data").display(),
            layout::upstream_toml("http://127.0.0.1:9/")
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn a_private_key_other_users_can_read_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    std::fs::set_permissions(&ca.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = write_config(dir.path(), &ca.server_toml());
    let out = support::depfw(&["--config", &config, "serve"]);
    let err = support::stderr(&out);
    assert_eq!(support::code(&out), 2, "{err}");
    assert!(
        err.contains("server.tls-key") && err.contains(&ca.key.display().to_string()),
        "{err}"
    );
    assert!(err.contains("chmod 600"), "{err}");
    assert!(
        !err.contains("PRIVATE KEY"),
        "the key's text is never printed: {err}"
    );
}

#[test]
fn a_certificate_without_its_key_is_a_config_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let config = write_config(
        dir.path(),
        &format!("tls-cert = \"{}\"\n", ca.cert.display()),
    );
    let out = support::depfw(&["--config", &config, "serve"]);
    let err = support::stderr(&out);
    assert_eq!(support::code(&out), 2, "{err}");
    assert!(err.contains("server.tls-key"), "{err}");

    // A file that is not a certificate is named too.
    std::fs::write(&ca.cert, "not a certificate\n").unwrap();
    let config = write_config(dir.path(), &ca.server_toml());
    let out = support::depfw(&["--config", &config, "serve"]);
    let err = support::stderr(&out);
    assert_eq!(support::code(&out), 2, "{err}");
    assert!(
        err.contains("server.tls-cert") && err.contains(&ca.cert.display().to_string()),
        "{err}"
    );
}
