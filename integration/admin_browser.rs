//! The admin page in a real browser: headless Chromium, driven over WebDriver
//! (chromedriver's plain JSON protocol, spoken with reqwest), against the real
//! `depfw serve` binary. A version inside the publish cooldown is held at the artifact
//! gate; an admin signs in, sees it in the quarantine queue, approves it, and the same
//! download now succeeds. And the provenance log, 120 real-shaped decision records deep,
//! fits a 1280-pixel window: one line per decision, nothing wider than the window.
//!
//! Needs Chromium (or Chrome) and chromedriver, found as `require::chromium` says (Debian:
//! `apt-get install chromium chromium-driver`).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use depfw::admin::{AdminState, AdminToken, MemoryLog};
use depfw::diag::Code;
use depfw::package::{Ecosystem, PackageName, Version};
use depfw::policy::{Finding, Severity, Verdict};
use depfw::store::decisions::{ClientInfo, DecisionRecord, HiddenVersion, RecordKind};
use depfw::store::quarantine::QuarantineQueue;
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

/// Ends the session, which quits Chromium, before chromedriver is killed: killing the
/// driver alone leaves Chromium running, as it did after a failed assertion. Plain
/// blocking HTTP, because this also runs while a test unwinds.
impl Drop for Browser {
    fn drop(&mut self) {
        use std::io::{Read as _, Write as _};
        let Some((host, path)) = self
            .session
            .strip_prefix("http://")
            .and_then(|rest| rest.split_once('/'))
        else {
            return;
        };
        let Ok(mut stream) = std::net::TcpStream::connect(host) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
        let request =
            format!("DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        if stream.write_all(request.as_bytes()).is_err() {
            return;
        }
        // chromedriver answers once Chromium has quit (and may keep the connection open).
        let mut answer = Vec::new();
        let mut chunk = [0; 1024];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// A WebDriver session of headless Chromium under its own chromedriver; both end on drop.
struct Browser {
    client: reqwest::Client,
    session: String,
    _driver: Killed,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium whose window is `width` × `height`.
    async fn start(client: &reqwest::Client, width: u32, height: u32) -> Browser {
        let (chromium, chromedriver) = crate::require::chromium().unwrap();
        let driver_port = free_port();
        let driver_process = Killed(
            Command::new(&chromedriver)
                .arg(format!("--port={driver_port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let driver = format!("http://127.0.0.1:{driver_port}");
        wait_until_up(client, &format!("{driver}/status")).await;
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--hide-scrollbars", format!("--window-size={width},{height}")]
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
        Browser {
            client: client.clone(),
            session: format!("{driver}/session/{id}"),
            _driver: driver_process,
        }
    }

    /// Signs in on the admin page at `admin_base` (the sign-in form is the page when
    /// signed out).
    async fn sign_in(&self, admin_base: &str, name: &str) {
        self.goto(&format!("{admin_base}/admin")).await;
        self.type_into("#token", ADMIN_TOKEN).await;
        self.type_into("#name", name).await;
        self.click("form.login button").await;
        let page = self.wait_for("Sign out").await;
        assert!(page.contains("Sign out"), "signed in: {page}");
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    async fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
        .await
    }

    /// A PNG of the window as it is.
    async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let v = self
            .call(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.session);
        let mut request = self.client.request(method, url);
        if !body.is_null() {
            request = request.json(&body);
        }
        let resp = request.send().await.unwrap();
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

    let browser = Browser::start(&client, 1280, 900).await;
    browser.sign_in(&admin_base, "sec-eng").await;
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
    drop(browser);
}

crate::require::trials! {
    [Need::Chromium] => admin_approves_a_held_package_in_a_real_browser;
    [Need::Chromium] => the_provenance_log_fits_a_1280_pixel_window;
}

/// A finding as the policy writes it.
fn finding(code: Code, verdict: Verdict, message: &str, ids: &[&str]) -> Finding {
    let mut f = Finding::new(code, Severity::High, verdict, message.to_owned());
    f.ids = ids.iter().map(|s| (*s).to_owned()).collect();
    f
}

/// `n` decision records shaped as `depfw serve` logs them, newest last: artifact
/// downloads allowed, refused, held and flagged in monitor mode, packument decisions
/// hiding versions (one hides 40, for several reasons), and hostile, overlong names,
/// agents and reasons.
fn decisions(n: usize) -> Vec<Value> {
    let start = chrono::Utc::now() - chrono::Duration::hours(n as i64);
    (0..n)
        .map(|i| {
            let mut record = DecisionRecord {
                seq: i as u64 + 1,
                time: start + chrono::Duration::minutes(37 * i as i64),
                request_id: format!("{:016x}", (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                client: ClientInfo {
                    user_agent: Some("npm/10.9.2 node/v22.11.0 linux x64 workspaces/false ci/github-actions".into()),
                    command: Some("install".into()),
                    agent: Some(["ci-bot", "renovate", "coding-agent-with-a-rather-long-name"][i % 3].into()),
                },
                kind: RecordKind::Artifact,
                ecosystem: "npm".into(),
                package: ["left-pad", "lodash", "@babel/core", "is-number"][i % 4].into(),
                version: Some(format!("{}.{}.0", i % 7, i % 13)),
                verdict: Verdict::Allow,
                findings: Vec::new(),
                hidden: Vec::new(),
                sha256: Some(format!("{:064x}", i * 977)),
                sha512: None,
                upstream_url: Some(format!("https://registry.npmjs.org/left-pad/-/left-pad-{i}.tgz")),
                outcome: "served".into(),
                prev_hash: format!("{:064x}", i),
                hash: format!("{:064x}", i + 1),
                signature: String::new(),
            };
            match i % 10 {
                1 => {
                    record.verdict = Verdict::Deny;
                    record.outcome = "refused".into();
                    record.findings = vec![finding(
                        Code::KnownMalicious,
                        Verdict::Deny,
                        "MAL-2025-4141: embedded credential stealer that posts ~/.npmrc to a remote host",
                        &["MAL-2025-4141", "GHSA-xxxx-yyyy-zzzz"],
                    )];
                }
                2 => {
                    record.kind = RecordKind::Metadata;
                    record.version = None;
                    record.outcome = "filtered".into();
                    record.sha256 = None;
                    record.upstream_url = Some(format!("https://registry.npmjs.org/{}", record.package));
                    let hidden = if i == n - 8 { 40 } else { 3 };
                    record.hidden = (0..hidden)
                        .map(|v| HiddenVersion {
                            version: format!("4.17.{v}"),
                            verdict: if v % 4 == 0 { Verdict::Deny } else { Verdict::Quarantine },
                            reason: if v % 4 == 0 {
                                "known-malicious: MAL-2025-1 credential stealer; vulnerable: GHSA-35jh-r3h4-6jhm prototype pollution".into()
                            } else {
                                "release-cooldown: published 3 hours ago, inside the 48-hour cooldown".into()
                            },
                        })
                        .collect();
                    record.findings = vec![
                        finding(Code::HasMaliciousVersions, Verdict::Warn, "10 versions are known malicious", &["MAL-2025-1"]),
                        finding(Code::HasVulnerableVersions, Verdict::Warn, "12 versions have advisories", &["GHSA-35jh-r3h4-6jhm"]),
                        finding(Code::ReleaseCooldown, Verdict::Quarantine, "30 versions are inside the 48-hour cooldown", &[]),
                    ];
                }
                4 => {
                    record.verdict = Verdict::Quarantine;
                    record.outcome = "refused".into();
                    record.findings = vec![finding(
                        Code::ReleaseCooldown,
                        Verdict::Quarantine,
                        "published 2 hours ago, inside the 48-hour cooldown",
                        &[],
                    )];
                }
                6 => {
                    record.verdict = Verdict::Warn;
                    record.findings = vec![
                        finding(Code::InstallScripts, Verdict::Deny, "runs `node install.js` at install time", &[]),
                        finding(Code::WouldRefuse, Verdict::Deny, "not enforced (policy.mode = \"monitor\")", &[]),
                    ];
                }
                8 => {
                    // Hostile and overlong text from a registry and an agent.
                    record.package = format!("<script>alert(1)</script>{}", "a".repeat(200));
                    record.version = Some("9".repeat(120));
                    record.client.agent = Some(format!("<img src=x onerror=alert(2)>{}", "b".repeat(100)));
                    record.verdict = Verdict::Deny;
                    record.findings = vec![finding(
                        Code::PossibleTyposquat,
                        Verdict::Deny,
                        &format!("<b>looks like</b> react: {}", "x".repeat(400)),
                        &[],
                    )];
                }
                _ => {}
            }
            // As `ProxyLog` hands records to the page: with a top-level `agent`.
            let agent = record.client.agent.clone();
            let mut v = serde_json::to_value(&record).unwrap();
            v["agent"] = json!(agent);
            v
        })
        .collect()
}

fn the_provenance_log_fits_a_1280_pixel_window() {
    crate::support::runtime().block_on(log_fits_the_window());
}

/// Why 40 px a row: a one-line row is 13 px text at line-height 1.45 plus padding and a
/// border, about 29 px; 40 leaves room for font differences but not for any cell that
/// wraps to a second line, which is what made the old log 1,400 px a row.
const MAX_ROW_HEIGHT: f64 = 40.0;

async fn log_fits_the_window() {
    let store = depfw::store::Store::temporary().unwrap();
    let log = Arc::new(MemoryLog::new(decisions(120)));
    // A held version whose reason is one 300-character word: the page above the log
    // must not widen either.
    let name = PackageName::parse(Ecosystem::Npm, "is-odd").unwrap();
    let version = Version::parse(Ecosystem::Npm, "3.0.1").unwrap();
    let reason = format!("https://example.com/{}", "x".repeat(300));
    let held = Finding::new(
        Code::ReleaseCooldown,
        Severity::Medium,
        Verdict::Quarantine,
        reason,
    );
    QuarantineQueue::new(&store)
        .unwrap()
        .hold(
            &name,
            &version,
            "agent:ci-bot",
            vec![held],
            "req-1",
            chrono::Utc::now(),
        )
        .unwrap();
    let state = AdminState::new(&store, Some(AdminToken::new(ADMIN_TOKEN, "test").unwrap()))
        .unwrap()
        .with_log(log);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            depfw::admin::standalone(state)
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let browser = Browser::start(&client, 1280, 1000).await;
    browser.sign_in(&admin_base, "sec-eng").await;
    browser
        .goto(&format!("{admin_base}/admin?limit=100#log"))
        .await;
    let measure = "const t = document.querySelector('#log ~ table, table.log'); \
        const rows = t ? t.tBodies[0].rows.length : 0; \
        return { width: document.documentElement.scrollWidth, window: window.innerWidth, \
                 height: document.documentElement.scrollHeight, \
                 tableWidth: t ? Math.round(t.getBoundingClientRect().width) : 0, \
                 tableHeight: t ? Math.round(t.getBoundingClientRect().height) : 0, rows: rows, \
                 alerts: document.querySelectorAll('script, img').length };";
    let closed = browser.script(measure).await;
    eprintln!("provenance log, 100 rows, details closed: {closed}");
    assert_eq!(closed["window"], 1280, "{closed}");
    assert_eq!(closed["rows"], 100, "{closed}");
    assert!(
        closed["width"].as_f64().unwrap() <= 1280.0,
        "wider than the window: {closed}"
    );
    let per_row = closed["tableHeight"].as_f64().unwrap() / 100.0;
    assert!(per_row < MAX_ROW_HEIGHT, "{per_row} px a row: {closed}");
    assert_eq!(closed["alerts"], 0, "hostile text became markup: {closed}");

    // The screenshot: the log with the packument decision that hid 40 versions opened.
    browser
        .script(
            "const d = [...document.querySelectorAll('table.log details')]\
               .find(d => d.textContent.includes('40 versions hidden')); \
             d.open = true; document.getElementById('log').scrollIntoView(); return 0;",
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let png = browser.screenshot().await;
    std::fs::write(dir.path().join("admin-log.png"), &png).unwrap();
    if let Some(out) = std::env::var_os("DEPFW_SCREENSHOT_DIR") {
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(std::path::Path::new(&out).join("admin-log.png"), &png).unwrap();
    }

    // Details on demand: every row opened, the page is still no wider than the window.
    browser
        .script(
            "document.querySelectorAll('table.log details').forEach(d => d.open = true); return 0;",
        )
        .await;
    let open = browser.script(measure).await;
    eprintln!("provenance log, 100 rows, details open: {open}");
    assert!(
        open["width"].as_f64().unwrap() <= 1280.0,
        "open details widen the page: {open}"
    );
    let page = browser.source().await;
    assert!(
        page.contains("40 versions hidden: 4.17.0 (known-malicious, vulnerable), 4.17.1 (release-cooldown), 4.17.2 (release-cooldown), …+37 more"),
        "summary line"
    );

    // Paging: the older link leads to the next 100, the last 20.
    browser.click("a[href*='offset=100']").await;
    let page = browser.wait_for("decisions 101–120").await;
    assert!(page.contains("decisions 101–120"), "second page: {page}");
    drop(browser);
    server.abort();
}
