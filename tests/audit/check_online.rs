//! `depfw check --online`: the registry metadata `depfw audit --online` fetches reaches
//! `depfw check` too, so the proxy, `check --online` and `audit --online` give one verdict
//! (and the same finding codes) for one package version. Against a hermetic npm registry on
//! 127.0.0.1 serving hand-made packuments: a release an hour old, a license the default
//! policy denies, an install script, a registry error.

use std::collections::BTreeMap;
use std::process::Output;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{Duration, Utc};
use depfw::config::Config;
use depfw::server::{AppState, PolicyState};
use depfw::store::decisions::RecordKind;
use depfw::store::Store;
use serde_json::{json, Value};
use sha2::Digest as _;

use crate::support::registry::{request, send};
use crate::support::{depfw_command, runtime};

/// One small, well-formed npm tarball (`package/package.json` without scripts) served for
/// every version: the proxy's content rules read it and find nothing, so the three doors
/// are compared on metadata alone.
static TARBALL: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    let manifest = br#"{"name":"p","version":"1.0.0"}"#;
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "package/package.json", &manifest[..])
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
});

/// The packuments the registry at `base` serves: `fresh-pkg` (0.9.0 from two months ago,
/// 1.0.0 from an hour ago, the `latest` tag), `agpl-pkg` 1.0.0 (AGPL-3.0-only, denied by
/// the default license policy), `hooked-pkg` 2.0.0 (a postinstall script). `broken-pkg`
/// answers 500.
fn packument(base: &str, name: &str) -> Option<Value> {
    let ago = |d: Duration| (Utc::now() - d).to_rfc3339();
    let integrity = format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(&*TARBALL))
    );
    let version = |v: &str, license: &str, extra: Value| {
        let mut manifest = json!({
            "name": name, "version": v, "license": license,
            "dist": {"tarball": format!("{base}/{name}/-/{name}-{v}.tgz"), "integrity": integrity}
        });
        if let (Some(m), Value::Object(extra)) = (manifest.as_object_mut(), extra) {
            m.extend(extra);
        }
        manifest
    };
    let (time, versions, latest) = match name {
        "fresh-pkg" => (
            json!({"created": ago(Duration::days(60)), "0.9.0": ago(Duration::days(60)),
                   "1.0.0": ago(Duration::hours(1))}),
            json!({"0.9.0": version("0.9.0", "MIT", json!({})),
                   "1.0.0": version("1.0.0", "MIT", json!({}))}),
            "1.0.0",
        ),
        "agpl-pkg" => (
            json!({"created": ago(Duration::days(400)), "1.0.0": ago(Duration::days(400))}),
            json!({"1.0.0": version("1.0.0", "AGPL-3.0-only", json!({}))}),
            "1.0.0",
        ),
        "hooked-pkg" => (
            json!({"created": ago(Duration::days(300)), "2.0.0": ago(Duration::days(300))}),
            json!({"2.0.0": version("2.0.0", "MIT",
                json!({"scripts": {"postinstall": "node setup.js"}}))}),
            "2.0.0",
        ),
        // A strong look-alike of `lodash`, two years old: established.
        "loadash" => (
            json!({"created": ago(Duration::days(700)), "4.17.21": ago(Duration::days(700))}),
            json!({"4.17.21": version("4.17.21", "MIT", json!({}))}),
            "4.17.21",
        ),
        // A strong look-alike of `chalk`, first published five days ago.
        "chalkk" => (
            json!({"created": ago(Duration::days(5)), "4.4.3": ago(Duration::days(5))}),
            json!({"4.4.3": version("4.4.3", "MIT", json!({}))}),
            "4.4.3",
        ),
        // axios 1.14.1's shape: an established package whose patch release, three days
        // old, adds `fresh-dep`, first published two hours before it; 1.1.0 added the
        // long-established `hooked-pkg`.
        "dep-adder" => (
            json!({"created": ago(Duration::days(90)), "1.0.0": ago(Duration::days(90)),
                   "1.1.0": ago(Duration::days(20)), "1.1.1": ago(Duration::days(3))}),
            json!({"1.0.0": version("1.0.0", "MIT", json!({})),
                   "1.1.0": version("1.1.0", "MIT",
                       json!({"dependencies": {"hooked-pkg": "^2.0.0"}})),
                   "1.1.1": version("1.1.1", "MIT",
                       json!({"dependencies": {"hooked-pkg": "^2.0.0", "fresh-dep": "^1.0.0"}}))}),
            "1.1.1",
        ),
        "fresh-dep" => (
            json!({"created": ago(Duration::days(3) + Duration::hours(2)),
                   "1.0.0": ago(Duration::days(3) + Duration::hours(2))}),
            json!({"1.0.0": version("1.0.0", "MIT", json!({}))}),
            "1.0.0",
        ),
        _ => return None,
    };
    Some(json!({
        "name": name, "dist-tags": {"latest": latest}, "time": time, "versions": versions
    }))
}

async fn metadata(State(base): State<String>, Path(name): Path<String>) -> Response {
    if name == "broken-pkg" {
        return (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded").into_response();
    }
    match packument(&base, &name) {
        Some(doc) => Json(doc).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn tarball(Path((_name, _file)): Path<(String, String)>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        TARBALL.clone(),
    )
        .into_response()
}

/// Starts the registry on its own thread; returns its base URL (no trailing slash).
fn start_registry() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/{name}", get(metadata))
        .route("/{name}/-/{file}", get(tarball))
        .with_state(base.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    base
}

/// A config file whose npm upstream is `base`.
fn config_file(dir: &std::path::Path, base: &str) -> std::path::PathBuf {
    let path = dir.join("depfw.toml");
    std::fs::write(&path, format!("[upstream.npm]\nregistry = \"{base}/\"\n")).unwrap();
    path
}

fn run(config: &std::path::Path, args: &[&str]) -> Output {
    depfw_command()
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// (verdict, sorted finding codes).
type Outcome = (String, Vec<String>);

fn outcome(verdict: &Value, findings: &Value) -> Outcome {
    let mut codes: Vec<String> = findings
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["code"].as_str().map(str::to_owned))
        .collect();
    codes.sort();
    (verdict.as_str().unwrap().to_owned(), codes)
}

/// `depfw check --online --format json` of each `name@version`: one outcome per line.
fn check_online(config: &std::path::Path, specs: &[&str]) -> (Output, Vec<Value>) {
    let mut args = vec!["check", "--online", "--format", "json", "npm"];
    args.extend_from_slice(specs);
    let out = run(config, &args);
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out, lines)
}

#[test]
fn check_online_holds_a_release_an_hour_old_as_audit_online_does() {
    let base = start_registry();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &base);

    // Offline the name says nothing wrong.
    let offline = run(&config, &["check", "npm", "fresh-pkg@1.0.0"]);
    assert_eq!(offline.status.code(), Some(0), "{offline:?}");

    let (out, lines) = check_online(&config, &["fresh-pkg@1.0.0", "fresh-pkg@0.9.0"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        outcome(&lines[0]["verdict"], &lines[0]["findings"]),
        ("quarantine".to_owned(), vec!["release-cooldown".to_owned()])
    );
    assert_eq!(lines[1]["verdict"], "allow", "{}", lines[1]);

    // A name alone: its latest release, named in the output.
    let (out, lines) = check_online(&config, &["fresh-pkg"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines[0]["version"], "1.0.0");
    assert_eq!(lines[0]["latest"], true);
    assert_eq!(lines[0]["verdict"], "quarantine");
    let human = run(&config, &["check", "--online", "npm", "fresh-pkg"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.starts_with("quarantine npm fresh-pkg@1.0.0 (latest)"),
        "{text}"
    );
    assert!(text.contains("release-cooldown"), "{text}");

    // A version the registry does not list warns, as in audit --online.
    let (out, lines) = check_online(&config, &["fresh-pkg@7.0.0"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        outcome(&lines[0]["verdict"], &lines[0]["findings"]),
        ("warn".to_owned(), vec!["missing-from-registry".to_owned()])
    );
}

#[test]
fn check_online_registry_errors_exit_2_with_a_message() {
    let base = start_registry();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &base);
    let (out, lines) = check_online(&config, &["broken-pkg@1.0.0", "fresh-pkg@0.9.0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("npm broken-pkg: no registry metadata") && stderr.contains("500"),
        "{stderr}"
    );
    // The offline verdict is still printed, saying what is missing; the other package is
    // judged with its metadata.
    assert_eq!(
        outcome(&lines[0]["verdict"], &lines[0]["findings"]),
        (
            "allow".to_owned(),
            vec!["registry-metadata-unavailable".to_owned()]
        )
    );
    assert_eq!(lines[1]["verdict"], "allow");

    // No registry at all: the same.
    let closed = format!("http://127.0.0.1:{}", crate::support::free_port());
    let config = config_file(dir.path(), &closed);
    let (out, _) = check_online(&config, &["fresh-pkg"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no registry metadata"), "{stderr}");
}

/// The three doors on the same registry metadata: the proxy (the artifact request's
/// decision record), `depfw check --online` and `depfw audit --online` give each version the
/// same verdict and the same finding codes.
#[test]
fn proxy_check_online_and_audit_online_agree() {
    let base = start_registry();
    let proxy = three_doors(
        &base,
        &[
            ("fresh-pkg", "1.0.0"),
            ("fresh-pkg", "0.9.0"),
            ("agpl-pkg", "1.0.0"),
            ("hooked-pkg", "2.0.0"),
        ],
    );
    // And the verdicts are the ones the fixture is built for.
    let verdicts: Vec<&str> = proxy.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(
        verdicts,
        ["quarantine", "allow", "deny", "warn"],
        "{proxy:?}"
    );
    assert!(proxy[0].1.contains(&"release-cooldown".to_owned()));
    assert!(proxy[2].1.contains(&"license-denied".to_owned()));
    assert!(proxy[3].1.contains(&"install-scripts".to_owned()));
}

/// A strong look-alike name: established, every door warns (the proxy serves its
/// metadata, no longer refusing the name before reading its age); young, every door holds
/// it (the proxy refuses the metadata by name). And a patch release that adds a dependency
/// first published two hours before it is held by every door (`young-dependency-added`),
/// while the release that added a long-established one is not.
#[test]
fn the_doors_agree_on_look_alikes_and_young_dependencies() {
    let base = start_registry();
    let proxy = three_doors(
        &base,
        &[
            ("loadash", "4.17.21"),
            ("chalkk", "4.4.3"),
            ("dep-adder", "1.1.1"),
            ("dep-adder", "1.1.0"),
        ],
    );
    let codes = |i: usize| proxy[i].1.iter().map(String::as_str).collect::<Vec<_>>();
    assert_eq!(proxy[0].0, "warn", "{proxy:?}");
    assert_eq!(codes(0), ["look-alike-name"]);
    assert_eq!(proxy[1].0, "quarantine", "{proxy:?}");
    assert!(codes(1).contains(&"possible-typosquat"), "{proxy:?}");
    assert_eq!(proxy[2].0, "quarantine", "{proxy:?}");
    assert_eq!(codes(2), ["young-dependency-added"]);
    assert_eq!(proxy[3].0, "allow", "{proxy:?}");

    // The metadata requests: the established look-alike is served, the young one refused
    // by name.
    runtime().block_on(async {
        let (state, _data) = proxy_state(&base);
        let (status, _, body) = send(&state, request("GET", "/npm/loadash", &[])).await;
        assert!(
            status.is_success(),
            "{status} {}",
            String::from_utf8_lossy(&body)
        );
        let (status, _, body) = send(&state, request("GET", "/npm/chalkk", &[])).await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(body.contains("possible-typosquat"), "{body}");
        assert!(body.contains("did you mean `chalk`?"), "{body}");
        let (status, _, body) = send(&state, request("GET", "/npm/dep-adder", &[])).await;
        let doc: Value = serde_json::from_slice(&body).unwrap();
        assert!(status.is_success());
        assert!(doc["versions"].get("1.1.1").is_none(), "{doc}");
        assert_eq!(doc["dist-tags"]["latest"], "1.1.0", "{doc}");
    });
}

/// A proxy on the default policy with `base` as its npm upstream (and its data directory).
fn proxy_state(base: &str) -> (AppState, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\npublic-url = \"http://depfw.test\"\ndata-dir = \"{}\"\n\n[upstream.npm]\nregistry = \"{base}/\"\n",
        data.path().display()
    );
    let config = Config::from_toml(&text, "test").unwrap();
    let store = Store::open(data.path()).unwrap();
    let policy = depfw::engine::load(&config, Some(&store)).unwrap().policy;
    let state = AppState::new(&config, &store, PolicyState::Ready(policy)).unwrap();
    (state, data)
}

/// Each of `versions` through `depfw check --online`, `depfw audit --online` and the proxy
/// (its artifact request's decision record): asserts that the three agree, and returns the
/// proxy's outcomes.
fn three_doors(base: &str, versions: &[(&str, &str)]) -> Vec<Outcome> {
    let dir = tempfile::tempdir().unwrap();
    let config_path = config_file(dir.path(), base);

    let specs: Vec<String> = versions.iter().map(|(n, v)| format!("{n}@{v}")).collect();
    let specs: Vec<&str> = specs.iter().map(String::as_str).collect();
    let (out, lines) = check_online(&config_path, &specs);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    let check: Vec<Outcome> = lines
        .iter()
        .map(|l| outcome(&l["verdict"], &l["findings"]))
        .collect();

    let entries: Vec<String> = versions
        .iter()
        .enumerate()
        .map(|(i, (n, v))| {
            // Two versions of one name: the second nested under another package.
            let parent = versions.iter().map(|(m, _)| m).find(|m| *m != n);
            let at = if versions[..i].iter().any(|(m, _)| m == n) {
                format!("node_modules/{}/node_modules/{n}", parent.unwrap())
            } else {
                format!("node_modules/{n}")
            };
            format!(
                r#""{at}":{{"version":"{v}","resolved":"https://registry.npmjs.org/{n}/-/{n}-{v}.tgz"}}"#
            )
        })
        .collect();
    let lock = dir.path().join("package-lock.json");
    std::fs::write(
        &lock,
        format!(
            r#"{{"name":"p","lockfileVersion":3,"requires":true,"packages":{{"":{{"name":"p"}},{}}}}}"#,
            entries.join(",")
        ),
    )
    .unwrap();
    let out = run(
        &config_path,
        &[
            "audit",
            "--online",
            "--fail-on",
            "deny",
            "--format",
            "json",
            lock.to_str().unwrap(),
        ],
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let audit: BTreeMap<(String, String), Outcome> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r["name"].as_str().unwrap().to_owned(),
                    r["version"].as_str().unwrap().to_owned(),
                ),
                outcome(&r["verdict"], &r["findings"]),
            )
        })
        .collect();

    let proxy = runtime().block_on(async {
        let (state, _data) = proxy_state(base);
        let mut outcomes = Vec::new();
        for &(name, version) in versions {
            let path = format!("/npm/{name}/-/{name}-{version}.tgz");
            let (status, _, body) = send(&state, request("GET", &path, &[])).await;
            let record = state
                .decisions()
                .list(0, 100)
                .unwrap()
                .into_iter()
                .rev()
                .find(|r| {
                    r.kind == RecordKind::Artifact
                        && r.package == name
                        && r.version.as_deref() == Some(version)
                })
                .unwrap_or_else(|| panic!("no decision for {path}: {status}"));
            let refused = record.verdict >= depfw::policy::Verdict::Quarantine;
            assert_eq!(
                status.is_success(),
                !refused,
                "{path}: {status} {}",
                String::from_utf8_lossy(&body)
            );
            let findings = serde_json::to_value(&record.findings).unwrap();
            outcomes.push(outcome(
                &serde_json::to_value(record.verdict).unwrap(),
                &findings,
            ));
        }
        outcomes
    });

    for (i, (name, version)) in versions.iter().enumerate() {
        // audit leaves plainly allowed packages out of its report.
        let audited = audit
            .get(&(name.to_string(), version.to_string()))
            .cloned()
            .unwrap_or_else(|| ("allow".to_owned(), Vec::new()));
        assert_eq!(check[i], proxy[i], "{name}@{version}: check vs proxy");
        assert_eq!(
            audited, proxy[i],
            "{name}@{version}: audit vs proxy: {report}"
        );
    }
    proxy
}
