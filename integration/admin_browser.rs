//! The admin page in a real browser: headless Chromium, driven over WebDriver
//! (chromedriver's plain JSON protocol, spoken with reqwest), against the real
//! `depfw serve` binary. A version inside the publish cooldown is held at the artifact
//! gate; an admin signs in, sees it in the quarantine queue, approves it, and the same
//! download now succeeds.
//!
//! Needs Chromium (or Chrome) and chromedriver, found as `require::chromium` says (Debian:
//! `apt-get install chromium chromium-driver`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::require::Need;
use crate::support::{free_port, registry, Killed};

const ADMIN_TOKEN: &str = "browser-admin-token-0123456789";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

async fn wait_until_up(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !client
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "{url} did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A WebDriver session.
struct Browser {
    client: reqwest::Client,
    session: String,
}

impl Browser {
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.session);
        let resp = self
            .client
            .request(method, url)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "webdriver {path}: {v}");
        v["value"].clone()
    }
    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await;
    }
    async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        match v[ELEMENT].as_str() {
            Some(id) => id.to_owned(),
            None => panic!("no element {css}: {v}\npage: {}", self.source().await),
        }
    }
    async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        let path = format!("/element/{el}/value");
        self.call(reqwest::Method::POST, &path, json!({ "text": text }))
            .await;
    }
    async fn click(&self, css: &str) {
        let el = self.find(css).await;
        let path = format!("/element/{el}/click");
        self.call(reqwest::Method::POST, &path, json!({})).await;
    }
    /// The page source once it contains `text` (navigation after a click takes a moment).
    async fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let page = self.source().await;
            if page.contains(text) || Instant::now() > deadline {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn source(&self) -> String {
        let v = self
            .client
            .get(format!("{}/source", self.session))
            .send()
            .await
            .unwrap();
        let v: Value = v.json().await.unwrap();
        v["value"].as_str().unwrap_or_default().to_owned()
    }
}

fn admin_approves_a_held_package_in_a_real_browser() {
    crate::support::runtime().block_on(approve_in_browser());
}

async fn approve_in_browser() {
    let (chromium, chromedriver) = crate::require::chromium().unwrap();
    let (upstream, fixture) = registry::start_fixture().await;
    // Published a minute ago: inside the default 48-hour cooldown, so quarantined.
    fixture.times.lock().unwrap().insert(
        ("is-number".into(), "7.0.0".into()),
        chrono::Utc::now() - chrono::Duration::minutes(1),
    );
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin-token");
    std::fs::write(&token_file, ADMIN_TOKEN).unwrap();
    // `depfw serve` refuses a token file that other OS users can read.
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // The admin endpoint has its own listener, apart from the mirror.
    let admin_port = free_port();
    let admin_base = format!("http://127.0.0.1:{admin_port}");
    let config = dir.path().join("depfw.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ndata-dir = \"{}\"\n\n\
             [upstream]\nnpm = \"{upstream}/\"\n\n\
             [admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken-file = \"{}\"\n",
            dir.path().join("data").display(),
            token_file.display()
        ),
    )
    .unwrap();
    let _depfw = Killed(
        Command::new(env!("CARGO_BIN_EXE_depfw"))
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    wait_until_up(&client, &format!("{base}/healthz")).await;

    let tarball = format!("{base}/npm/is-number/-/is-number-7.0.0.tgz");
    let refused = client.get(&tarball).send().await.unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::FORBIDDEN);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("quarantined, awaiting approval"));

    let driver_port = free_port();
    let _driver = Killed(
        Command::new(&chromedriver)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let driver = format!("http://127.0.0.1:{driver_port}");
    wait_until_up(&client, &format!("{driver}/status")).await;
    let caps = json!({ "capabilities": { "alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        }
    }}});
    let created: Value = client
        .post(format!("{driver}/session"))
        .json(&caps)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {created}"));
    let browser = Browser {
        client: client.clone(),
        session: format!("{driver}/session/{id}"),
    };

    browser.goto(&format!("{admin_base}/admin")).await;
    browser.type_into("#token", ADMIN_TOKEN).await;
    browser.type_into("#name", "sec-eng").await;
    browser.click("form.login button").await;
    let held = "<b>is-number</b>@7.0.0";
    let page = browser.wait_for(held).await;
    assert!(page.contains(held), "the held version is listed: {page}");

    browser
        .type_into(
            "form[action$='/approve'] input[name=reason]",
            "read the diff",
        )
        .await;
    browser.click("form[action$='/approve'] button").await;
    let page = browser.wait_for("approved item").await;
    assert!(
        page.contains("approved item"),
        "flash after approving: {page}"
    );

    let served = client.get(&tarball).send().await.unwrap();
    assert_eq!(served.status(), reqwest::StatusCode::OK);
    let want =
        std::fs::read(registry::fixtures_dir().join("tarballs/is-number-7.0.0.tgz")).unwrap();
    assert_eq!(served.bytes().await.unwrap().to_vec(), want);
    let _ = client.delete(&browser.session).send().await;
}

crate::require::trials! {
    [Need::Chromium] => admin_approves_a_held_package_in_a_real_browser;
}
