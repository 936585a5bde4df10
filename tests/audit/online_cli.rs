//! `depfw audit --online`: registry metadata reaches the same reputation and license checks
//! the proxy runs, and a version the registry does not list is reported.

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Duration, Utc};

/// Serves `app` on 127.0.0.1 from a thread of its own (the depfw binary under test runs
/// as a child process), for as long as the test lives.
fn serve(app: Router) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    addr
}

/// An npm registry with one package, `fresh-pkg`, whose 1.0.0 was published an hour ago.
fn start_registry() -> String {
    let app = Router::new().route(
        "/{name}",
        get(|Path(name): Path<String>| async move {
            if name != "fresh-pkg" {
                return Err(axum::http::StatusCode::NOT_FOUND);
            }
            let hour_ago = (Utc::now() - Duration::hours(1)).to_rfc3339();
            let month_ago = (Utc::now() - Duration::days(60)).to_rfc3339();
            Ok(Json(serde_json::json!({
                "name": "fresh-pkg",
                "dist-tags": {"latest": "1.0.0"},
                "time": {"created": month_ago, "0.9.0": month_ago, "1.0.0": hour_ago},
                "versions": {
                    "0.9.0": {"name": "fresh-pkg", "version": "0.9.0", "license": "MIT",
                              "dist": {"tarball": "http://x/fresh-pkg-0.9.0.tgz"}},
                    "1.0.0": {"name": "fresh-pkg", "version": "1.0.0", "license": "MIT",
                              "dist": {"tarball": "http://x/fresh-pkg-1.0.0.tgz"}}
                }
            })))
        }),
    );
    format!("http://{}/", serve(app))
}

#[test]
fn online_metadata_drives_the_cooldown_and_missing_versions_are_reported() {
    let upstream = start_registry();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("depfw.toml");
    std::fs::write(&config, format!("[upstream]\nnpm = \"{upstream}\"\n")).unwrap();
    let lock = dir.path().join("package-lock.json");
    std::fs::write(
        &lock,
        r#"{"name":"p","lockfileVersion":3,"requires":true,"packages":{
  "":{"name":"p","dependencies":{"fresh-pkg":"1.0.0","gone-pkg":"2.0.0"}},
  "node_modules/fresh-pkg":{"version":"1.0.0","resolved":"https://registry.npmjs.org/fresh-pkg/-/fresh-pkg-1.0.0.tgz"},
  "node_modules/gone-pkg":{"version":"2.0.0","resolved":"https://registry.npmjs.org/gone-pkg/-/gone-pkg-2.0.0.tgz"}
}}"#,
    )
    .unwrap();

    let run = |online: bool| {
        let mut cmd = crate::support::depfw_command();
        cmd.args([
            "--config",
            config.to_str().unwrap(),
            "audit",
            lock.to_str().unwrap(),
        ])
        .args(["--format", "json"])
        .env_remove("DEPFW_DATA_DIR");
        if online {
            cmd.arg("--online");
        }
        cmd.output().unwrap()
    };

    // Offline the lockfile says nothing about publish times: clean.
    let offline = run(false);
    assert_eq!(
        offline.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );

    let out = run(true);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = report["results"].as_array().unwrap();
    let result = |name: &str| results.iter().find(|r| r["name"] == name).unwrap();
    let fresh = result("fresh-pkg");
    assert_eq!(fresh["verdict"], "quarantine", "{fresh}");
    assert!(fresh["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["code"] == "release-cooldown"));
    let gone = result("gone-pkg");
    assert!(
        gone["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "missing-from-registry"),
        "{gone}"
    );
}

/// A PyPI index (PEP 691) and JSON API with one project, `agpl-tool` 2.0, whose only
/// license information is an AGPLv3+ classifier.
fn start_pypi() -> String {
    let app = Router::new()
        .route(
            "/simple/agpl-tool/",
            get(|| async {
                let page = serde_json::json!({
                    "meta": {"api-version": "1.1"},
                    "name": "agpl-tool",
                    "versions": ["2.0"],
                    "files": [{"filename": "agpl_tool-2.0.tar.gz",
                               "url": "https://files.example/agpl_tool-2.0.tar.gz",
                               "hashes": {"sha256": "ab".repeat(32)},
                               "upload-time": "2024-01-02T03:04:05Z"}]
                });
                (
                    [("content-type", "application/vnd.pypi.simple.v1+json")],
                    page.to_string(),
                )
            }),
        )
        .route(
            "/pypi/agpl-tool/2.0/json",
            get(|| async {
                Json(serde_json::json!({
                    "info": {"name": "agpl-tool", "version": "2.0", "license": "",
                             "license_expression": null, "yanked": false,
                             "yanked_reason": null,
                             "classifiers": ["License :: OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)"]},
                    "urls": [{"filename": "agpl_tool-2.0.tar.gz", "packagetype": "sdist",
                              "upload_time_iso_8601": "2024-01-02T03:04:05.000000Z"}],
                    "vulnerabilities": []
                }))
            }),
        );
    format!("http://{}", serve(app))
}

#[test]
fn pypi_licenses_from_the_configured_json_api_reach_the_license_check() {
    let base = start_pypi();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("depfw.toml");
    std::fs::write(
        &config,
        format!("[upstream]\npypi = \"{base}/simple/\"\npypi-json = \"{base}/pypi\"\n"),
    )
    .unwrap();
    let lock = dir.path().join("requirements.txt");
    std::fs::write(&lock, "agpl-tool==2.0\n").unwrap();
    let out = crate::support::depfw_command()
        .args(["--config", config.to_str().unwrap(), "audit"])
        .arg(&lock)
        .args(["--format", "json", "--online"])
        .env_remove("DEPFW_DATA_DIR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The default policy denies AGPL-3.0.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let result = &report["results"][0];
    assert_eq!(result["name"], "agpl-tool");
    assert_eq!(result["verdict"], "deny", "{result}");
    let finding = result["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "license-denied")
        .unwrap_or_else(|| panic!("{result}"));
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("AGPL-3.0-or-later"),
        "{finding}"
    );
}
