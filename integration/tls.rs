//! Issue #12: the real clients install through `depfw serve` over HTTPS, trusting a
//! private CA the way each trusts any private registry's certificate: npm `--cafile`, pip
//! `--cert`, cargo `http.cainfo` (`CARGO_HTTP_CAINFO`). The lockfiles they write point at
//! the `https://` mirror, and without the CA each client refuses the connection itself.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::client;
use crate::crash::{start, wait_healthy};
use crate::require::{CARGO, NPM, PIP};
use crate::support::{self, registry, tls::TestCa, Killed};

/// `depfw serve` (the real binary) over HTTPS in front of the fixture registry.
struct Https {
    base: String,
    ca: TestCa,
    tmp: tempfile::TempDir,
    _server: Killed,
    _fixture: std::sync::Arc<registry::FixtureState>,
    _rt: tokio::runtime::Runtime,
}

fn serve_https() -> Https {
    let rt = support::runtime();
    let (upstream, fixture) = rt.block_on(registry::start_fixture());
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(tmp.path());
    let config = tmp.path().join("depfw.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndata-dir = \"{}\"\n{}\n{}",
            tmp.path().join("data").display(),
            ca.server_toml(),
            support::layout::upstream_toml(&upstream)
        ),
    )
    .unwrap();
    let port = support::free_port();
    let base = format!("https://127.0.0.1:{port}");
    let mut child = start(&config, port);
    rt.block_on(wait_healthy(&ca.client(), &base, &mut child));
    Https {
        base,
        ca,
        tmp,
        _server: Killed(child),
        _fixture: fixture,
        _rt: rt,
    }
}

impl Https {
    fn dir(&self, what: &str) -> PathBuf {
        let d = self.tmp.path().join(what);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}

fn text(out: &Output) -> String {
    client::combined(out)
}

fn npm_installs_over_https_with_the_ca_and_refuses_without_it() {
    let s = serve_https();
    let npm = |project: &Path, cafile: Option<&Path>| {
        let cache = tempfile::tempdir_in(s.tmp.path()).unwrap();
        let global = cache.path().join("globalnpmrc");
        let registry = format!("{}/npm/", s.base);
        let mut cmd = client::npm_against(&registry, cache.path(), &global);
        cmd.args(["install", "is-number@7"]).current_dir(project);
        if let Some(ca) = cafile {
            cmd.arg(format!("--cafile={}", ca.display()));
        }
        client::output(&mut cmd)
    };
    let project = s.dir("trusting");
    std::fs::write(
        project.join("package.json"),
        r#"{"name":"t","version":"1.0.0"}"#,
    )
    .unwrap();
    let out = npm(&project, Some(&s.ca.ca));
    assert!(out.status.success(), "{}", text(&out));
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.join("package-lock.json")).unwrap()).unwrap();
    assert_eq!(
        lock["packages"]["node_modules/is-number"]["resolved"],
        format!("{}/npm/is-number/-/is-number-7.0.0.tgz", s.base)
    );

    let untrusting = s.dir("untrusting");
    std::fs::write(
        untrusting.join("package.json"),
        r#"{"name":"u","version":"1.0.0"}"#,
    )
    .unwrap();
    let out = npm(&untrusting, None);
    assert!(!out.status.success(), "npm trusted an unknown CA");
    let t = text(&out).to_lowercase();
    assert!(t.contains("certificate") || t.contains("cert_"), "{t}");
}

fn pip_installs_over_https_with_the_ca_and_refuses_without_it() {
    let s = serve_https();
    let pip = |cert: Option<&Path>, target: &Path| {
        let mut cmd = client::command("pip", &["pip_"]);
        // requests lets these override pip's `--cert` (psf/requests#3829); a machine that
        // sets them (as CI images do) would test the system bundle instead.
        cmd.env("PIP_CONFIG_FILE", "/dev/null")
            .env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("CURL_CA_BUNDLE")
            .args(["install", "--no-cache-dir", "--disable-pip-version-check"])
            .args(["--retries", "0", "--timeout", "30"])
            .arg("--index-url")
            .arg(format!("{}/pypi/simple/", s.base))
            .arg("--target")
            .arg(target)
            .arg("idna==3.10");
        if let Some(cert) = cert {
            cmd.arg("--cert").arg(cert);
        }
        client::run(&mut cmd)
    };
    let target = s.dir("site");
    let (ok, out) = pip(Some(&s.ca.ca), &target);
    assert!(ok, "{out}");
    assert!(target.join("idna-3.10.dist-info").is_dir(), "{out}");

    let (ok, out) = pip(None, &s.dir("site-untrusting"));
    assert!(!ok, "pip trusted an unknown CA: {out}");
    assert!(out.to_lowercase().contains("certificate"), "{out}");
}

fn cargo_fetches_over_https_with_the_ca_and_refuses_without_it() {
    let s = serve_https();
    let cargo = |cainfo: Option<&Path>, name: &str| {
        let project = s.dir(name);
        std::fs::create_dir_all(project.join("src")).unwrap();
        std::fs::write(project.join("src/lib.rs"), "").unwrap();
        std::fs::write(
            project.join("Cargo.toml"),
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nitoa = \"1\"\n",
        )
        .unwrap();
        let home = s.dir(&format!("{name}-cargo-home"));
        let mut cmd = client::command("cargo", &["cargo_"]);
        cmd.current_dir(&project)
            .env("CARGO_HOME", &home)
            .env("CARGO_TARGET_DIR", project.join("target"))
            .arg("fetch")
            .args(["--config", "source.crates-io.replace-with=\"depfw\""])
            .args([
                "--config",
                &format!("source.depfw.registry=\"sparse+{}/cargo/index/\"", s.base),
            ])
            .args(["--config", "net.retry=0"]);
        if let Some(ca) = cainfo {
            cmd.env("CARGO_HTTP_CAINFO", ca);
        }
        let (ok, out) = client::run(&mut cmd);
        (ok, out, project)
    };
    let (ok, out, project) = cargo(Some(&s.ca.ca), "trusting");
    assert!(ok, "{out}");
    let lock = std::fs::read_to_string(project.join("Cargo.lock")).unwrap();
    // Source replacement keeps crates.io as the recorded source: the lockfile names no
    // mirror at all.
    assert!(lock.contains("name = \"itoa\""), "{lock}");
    let (ok, out, _) = cargo(None, "untrusting");
    assert!(!ok, "cargo trusted an unknown CA: {out}");
    assert!(
        out.to_lowercase().contains("certificate") || out.contains("SSL"),
        "{out}"
    );
}

crate::require::trials! {
    [NPM] => npm_installs_over_https_with_the_ca_and_refuses_without_it;
    [PIP] => pip_installs_over_https_with_the_ca_and_refuses_without_it;
    [CARGO] => cargo_fetches_over_https_with_the_ca_and_refuses_without_it;
}
