//! The admin web page: sign-in, the session cookie, CSRF and origin checks, forms that
//! change the store, tokens shown once, and escaping of attacker-controlled text.

use crate::support::admin::{concrete, Fixture, Reply, TOKEN};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use depfw::admin::{routes, Access, MOUNT};
use depfw::store::agents::AgentStore;
use depfw::store::overrides::OverrideStore;
use depfw::store::quarantine::{QuarantineQueue, QuarantineStatus};

const HOST: &str = "127.0.0.1:7878";

/// A signed-in browser: its cookie and the CSRF token from the page.
struct Browser {
    cookie: String,
    csrf: String,
}

async fn sign_in(f: &Fixture, name: &str) -> Browser {
    let reply = post_raw(
        f,
        "/login",
        None,
        &format!("token={TOKEN}&name={name}"),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let set_cookie = reply.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let page = get(f, "", Some(&cookie)).await;
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert_eq!(csrf.len(), 64);
    Browser { cookie, csrf }
}

async fn get(f: &Fixture, path: &str, cookie: Option<&str>) -> Reply {
    let mut req = Request::builder()
        .uri(format!("{MOUNT}{path}"))
        .header("host", HOST);
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    f.request(req.body(Body::empty()).unwrap()).await
}

async fn post_raw(
    f: &Fixture,
    path: &str,
    cookie: Option<&str>,
    form: &str,
    origin: Option<&str>,
) -> Reply {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(format!("{MOUNT}{path}"))
        .header("host", HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    if let Some(origin) = origin {
        req = req.header(header::ORIGIN, origin);
    }
    f.request(req.body(Body::from(form.to_owned())).unwrap())
        .await
}

impl Browser {
    async fn post(&self, f: &Fixture, path: &str, form: &str) -> Reply {
        let form = format!("csrf={}&{form}", self.csrf);
        let reply = post_raw(
            f,
            path,
            Some(&self.cookie),
            &form,
            Some(&format!("http://{HOST}")),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::SEE_OTHER,
            "{path}: {}",
            reply.body
        );
        let location = reply.headers[header::LOCATION].to_str().unwrap();
        assert!(location.starts_with(MOUNT), "{location}");
        reply
    }

    async fn page(&self, f: &Fixture) -> String {
        let reply = get(f, "", Some(&self.cookie)).await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.body
    }
}

#[tokio::test]
async fn sign_in_then_the_page_shows_the_queue() {
    let f = Fixture::new();
    f.hold("left-pad", "1.3.0", "published 2 hours ago");

    // Without a session: the sign-in form, and none of the data.
    let anonymous = get(&f, "", None).await;
    assert_eq!(anonymous.status, StatusCode::OK);
    assert!(anonymous.body.contains("Sign in"));
    assert!(!anonymous.body.contains("left-pad"));
    let slash = get(&f, "/", None).await;
    assert_eq!(slash.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(slash.headers[header::LOCATION], MOUNT);

    // A wrong token: 401, no cookie.
    let wrong = post_raw(&f, "/login", None, "token=nope-nope-nope-nope&name=x", None).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(!wrong.headers.contains_key(header::SET_COOKIE));
    // A sign-in posted from another site.
    let cross = post_raw(
        &f,
        "/login",
        None,
        &format!("token={TOKEN}"),
        Some("http://evil.example"),
    )
    .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert!(!cross.headers.contains_key(header::SET_COOKIE));

    let browser = sign_in(&f, "alice").await;
    let reply = get(&f, "", Some(&browser.cookie)).await;
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    let csp = reply.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let page = reply.body;
    assert!(page.contains("<b>left-pad</b>@1.3.0"), "{page}");
    assert!(page.contains("published 2 hours ago"));
    assert!(page.contains("agent:bot"));
    assert!(page.contains("admin:alice"));
    assert!(page.contains(&format!("action=\"{MOUNT}/quarantine/1/approve\"")));
    // Feed status and the provenance log are on the page too.
    assert!(page.contains("osv-npm") && page.contains("b-stale"));
    assert!(page.contains("requests"));
    // Every form carries the CSRF token.
    let forms = page.matches("method=\"post\"").count();
    assert_eq!(page.matches(&browser.csrf).count(), forms, "{page}");

    // Log search narrows the table.
    let searched = get(&f, "?agent=other&verdict=quarantine", Some(&browser.cookie))
        .await
        .body;
    let log = searched.split("id=\"log\"").nth(1).unwrap();
    assert!(log.contains("requests") && !log.contains("left-pad"));
    // The same agent field narrows the queue: `other` asked for nothing, `agent:bot` did.
    let queue = searched.split("id=\"log\"").next().unwrap();
    assert!(!queue.contains("<b>left-pad</b>"), "{queue}");
    assert!(queue.contains("requested by <b>other</b>"), "{queue}");
    let mine = get(&f, "?agent=agent:bot", Some(&browser.cookie))
        .await
        .body;
    let queue = mine.split("id=\"log\"").next().unwrap();
    assert!(queue.contains("<b>left-pad</b>@1.3.0"), "{queue}");
    let bad = get(&f, "?since=2026-02-30", Some(&browser.cookie))
        .await
        .body;
    assert!(bad.contains("since:"), "{bad}");
}

#[tokio::test]
async fn every_page_route_needs_a_session() {
    let f = Fixture::new();
    let item = f.hold("left-pad", "1.3.0", "new");
    AgentStore::new(&f.store)
        .unwrap()
        .add("bot", Default::default())
        .unwrap();
    // A cookie that is not a session.
    for cookie in [None, Some("depfw_admin=forged")] {
        for route in routes().into_iter().filter(|r| r.access == Access::Session) {
            let path = concrete(route.path);
            let reply = if route.method == Method::GET {
                get(&f, &path, cookie).await
            } else {
                post_raw(
                    &f,
                    &path,
                    cookie,
                    "csrf=x&reason=r&name=x&kind=allow&ecosystem=npm",
                    None,
                )
                .await
            };
            if route.method == Method::GET {
                assert!(reply.body.contains("Sign in"), "{path}");
                assert!(!reply.body.contains("left-pad"), "{path}");
            } else {
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
            }
        }
    }
    assert_eq!(
        QuarantineQueue::new(&f.store)
            .unwrap()
            .get(item)
            .unwrap()
            .status,
        QuarantineStatus::Pending
    );
    assert!(AgentStore::new(&f.store)
        .unwrap()
        .get("bot")
        .unwrap()
        .is_active());
    assert_eq!(f.changes(), 0);
}

#[tokio::test]
async fn forms_need_the_csrf_token_and_a_same_site_origin() {
    let f = Fixture::new();
    let item = f.hold("left-pad", "1.3.0", "new");
    let browser = sign_in(&f, "alice").await;
    let path = format!("/quarantine/{item}/approve");
    let cases = [
        ("reason=ok".to_owned(), None, "no CSRF token"),
        ("csrf=&reason=ok".to_owned(), None, "empty CSRF token"),
        (
            format!("csrf={}x&reason=ok", browser.csrf),
            None,
            "wrong CSRF token",
        ),
        (
            format!("csrf={}&reason=ok", browser.csrf),
            Some("http://evil.example"),
            "cross-site",
        ),
        (
            format!("csrf={}&reason=ok", browser.csrf),
            Some("null"),
            "opaque origin",
        ),
    ];
    for (form, origin, what) in cases {
        let reply = post_raw(&f, &path, Some(&browser.cookie), &form, origin).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{what}");
    }
    // Sec-Fetch-Site from another site, with an otherwise valid form.
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{MOUNT}{path}"))
        .header("host", HOST)
        .header("sec-fetch-site", "cross-site")
        .header(header::COOKIE, &browser.cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("csrf={}&reason=ok", browser.csrf)))
        .unwrap();
    assert_eq!(f.request(req).await.status, StatusCode::FORBIDDEN);
    // Another session's CSRF token does not work either.
    let other = sign_in(&f, "bob").await;
    let reply = post_raw(
        &f,
        &path,
        Some(&browser.cookie),
        &format!("csrf={}&reason=ok", other.csrf),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    assert_eq!(
        QuarantineQueue::new(&f.store)
            .unwrap()
            .get(item)
            .unwrap()
            .status,
        QuarantineStatus::Pending
    );
    assert_eq!(f.changes(), 0);
}

#[tokio::test]
async fn approve_via_the_form_creates_an_allow_entry() {
    let f = Fixture::new();
    let item = f.hold("left-pad", "1.3.0", "new");
    let browser = sign_in(&f, "alice").await;
    browser
        .post(
            &f,
            &format!("/quarantine/{item}/approve"),
            "range=%3E%3D1.3.0+%3C2.0.0&reason=reviewed+the+diff&expires=2999-01-01",
        )
        .await;
    assert_eq!(f.changes(), 1);
    let entries = OverrideStore::new(&f.store)
        .unwrap()
        .list(false, chrono::Utc::now())
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].name, "left-pad");
    assert_eq!(entries[0].versions, ">=1.3.0 <2.0.0");
    assert_eq!(entries[0].created_by, "admin:alice");
    assert_eq!(entries[0].quarantine_id, Some(item));
    let page = browser.page(&f).await;
    assert!(page.contains("approved item 1: allow entry 1"), "{page}");
    assert!(page.contains("nothing is waiting for a decision"));
    // The message is shown once.
    assert!(!browser.page(&f).await.contains("approved item 1"));

    // A second approval fails with a message, not a crash.
    browser
        .post(&f, &format!("/quarantine/{item}/approve"), "reason=again")
        .await;
    assert!(browser.page(&f).await.contains("already approved"));
    assert_eq!(f.changes(), 1);

    // Reject, then an impossible expiry on an allow entry, then add and remove one.
    let other = f.hold("lodahs", "1.0.0", "typosquat");
    browser
        .post(
            &f,
            &format!("/quarantine/{other}/reject"),
            "reason=typosquat",
        )
        .await;
    assert_eq!(f.changes(), 2);
    browser
        .post(
            &f,
            "/overrides",
            "kind=allow&ecosystem=npm&name=react&versions=*&reason=ok&expires=2026-02-30",
        )
        .await;
    assert!(browser.page(&f).await.contains("expires:"));
    browser
        .post(
            &f,
            "/overrides",
            "kind=deny&ecosystem=PyPI&name=requests&versions=%3D%3D2.31.0&reason=incident&expires=",
        )
        .await;
    assert_eq!(f.changes(), 3);
    let store = OverrideStore::new(&f.store).unwrap();
    let deny = store
        .list(false, chrono::Utc::now())
        .unwrap()
        .into_iter()
        .find(|e| e.name == "requests")
        .unwrap();
    browser
        .post(&f, &format!("/overrides/{}/remove", deny.id), "")
        .await;
    assert_eq!(
        store.get(deny.id).unwrap().removed_by.as_deref(),
        Some("admin:alice")
    );
    assert_eq!(f.changes(), 4);
    let history = get(&f, "?history=1", Some(&browser.cookie)).await.body;
    assert!(history.contains("b-removed"));
}

#[tokio::test]
async fn agent_tokens_are_shown_once_and_never_in_a_url() {
    let f = Fixture::new();
    let browser = sign_in(&f, "alice").await;
    let reply = browser
        .post(&f, "/agents", "name=ci-bot&policy=strict")
        .await;
    let location = reply.headers[header::LOCATION].to_str().unwrap().to_owned();
    let page = browser.page(&f).await;
    let token = page
        .split("<code class=\"secret\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    let agents = AgentStore::new(&f.store).unwrap();
    assert_eq!(agents.authenticate(&token).unwrap().name, "ci-bot");
    assert!(!location.contains(&token));
    // Beside the token: the header-based setup, never a `/a/<token>/` URL (it would end up
    // in lockfiles).
    assert!(
        !page.contains("/a/dfw_") && !page.contains(&format!("/a/{token}")),
        "{page}"
    );
    assert!(page.contains("--agent ci-bot"), "{page}");
    assert!(
        page.contains("/auth/npm/:_authToken=${DEPFW_TOKEN}"),
        "{page}"
    );
    assert!(!browser.page(&f).await.contains(&token), "shown twice");

    let reply = browser.post(&f, "/agents/ci-bot/rotate", "").await;
    assert!(!reply.body.contains("dfw_"));
    let page = browser.page(&f).await;
    let rotated = page
        .split("<code class=\"secret\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    assert_ne!(rotated, token);
    assert!(agents.authenticate(&token).is_err());
    assert!(agents.authenticate(&rotated).is_ok());

    browser
        .post(&f, "/agents/ci-bot/suspend", "reason=too+many+installs")
        .await;
    assert_eq!(agents.get("ci-bot").unwrap().status(), "suspended");
    let page = browser.page(&f).await;
    assert!(page.contains("too many installs") && page.contains("Resume"));
    browser.post(&f, "/agents/ci-bot/resume", "").await;
    assert!(agents.get("ci-bot").unwrap().is_active());
    browser.post(&f, "/agents/ci-bot/explode", "").await;
    assert!(browser.page(&f).await.contains("no agent action"));
    browser.post(&f, "/agents/ci-bot/revoke", "").await;
    assert_eq!(agents.get("ci-bot").unwrap().status(), "revoked");
    // Agent changes do not rebuild the policy.
    assert_eq!(f.changes(), 0);

    // Sign out: the cookie stops working.
    browser.post(&f, "/logout", "").await;
    assert!(get(&f, "", Some(&browser.cookie))
        .await
        .body
        .contains("Sign in"));
}

#[tokio::test]
async fn hostile_text_is_escaped_everywhere() {
    let f = Fixture::new();
    // npm allows `'`, `(`, `)`, `!`, `*` in legacy names: enough to break a quoted attribute.
    let hostile_name = "x'!(alert)*";
    let script = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";
    f.hold(hostile_name, "1.0.0", script);
    let browser = sign_in(&f, "<b>eve</b>").await;
    browser
        .post(
            &f,
            "/overrides",
            &format!(
                "kind=deny&ecosystem=npm&name=evil&reason={}",
                "%3Cscript%3Ealert(3)%3C%2Fscript%3E"
            ),
        )
        .await;
    browser.post(&f, "/agents", "name=bot").await;
    browser
        .post(
            &f,
            "/agents/bot/suspend",
            "reason=%3Ciframe+src%3Djavascript%3Aalert(4)%3E",
        )
        .await;
    let page = browser.page(&f).await;
    for raw in ["<script>", "<img", "<iframe", "<b>eve", "x'!(alert)*"] {
        assert!(!page.contains(raw), "unescaped {raw:?} in the page");
    }
    assert!(page.contains("x&#x27;!(alert)*"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img"));
    assert!(page.contains("&lt;b&gt;eve&lt;/b&gt;"));
    // The provenance log entry with a script for a package name, and the feed name.
    assert!(page.contains("&lt;script&gt;alert(&#x27;log&#x27;)"));
    assert!(page.contains("osv-pypi&lt;b&gt;"));
    // Search terms echoed into the form.
    let echoed = get(&f, "?package=%22%3E%3Cscript%3E", Some(&browser.cookie))
        .await
        .body;
    assert!(!echoed.contains("\"><script>"));
    assert!(echoed.contains("value=\"&quot;&gt;&lt;script&gt;\""));
}

#[tokio::test]
async fn oversized_and_malformed_forms_are_refused() {
    let f = Fixture::new();
    let browser = sign_in(&f, "alice").await;
    let big = format!(
        "csrf={}&kind=allow&ecosystem=npm&name=x&reason={}",
        browser.csrf,
        "a".repeat(100_000)
    );
    let reply = post_raw(&f, "/overrides", Some(&browser.cookie), &big, None).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{MOUNT}/overrides"))
        .header("host", HOST)
        .header(header::COOKIE, &browser.cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(f.request(req).await.status, StatusCode::BAD_REQUEST);
    let none = OverrideStore::new(&f.store)
        .unwrap()
        .list(true, chrono::Utc::now())
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn behind_https_the_cookie_is_secure_and_mirror_urls_use_the_public_url() {
    use depfw::admin::{mounted, AdminState, AdminToken};
    use tower::ServiceExt;
    let store = depfw::store::Store::temporary().unwrap();
    let config = depfw::config::Config::from_toml(
        "[server]\npublic-url = \"https://depfw.example/\"\n",
        "test.toml",
    )
    .unwrap();
    let state = AdminState::new(&store, Some(AdminToken::new(TOKEN, "test").unwrap()))
        .unwrap()
        .with_config(&config);
    let app: axum::Router = mounted(state);
    let login = Request::builder()
        .method(Method::POST)
        .uri(format!("{MOUNT}/login"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={TOKEN}")))
        .unwrap();
    let reply = app.clone().oneshot(login).await.unwrap();
    let cookie = reply.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    let add = Request::builder()
        .method(Method::POST)
        .uri(format!("{MOUNT}/api/agents"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"name": "bot"}"#))
        .unwrap();
    let reply = app.oneshot(add).await.unwrap();
    let body = axum::body::to_bytes(reply.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(body["mirror_urls"][0]
        .as_str()
        .unwrap()
        .starts_with("https://depfw.example/a/dfw_"));
}

/// Sign-in attempts from one address: after five wrong tokens its wrong tokens wait (429
/// and `Retry-After`) while the right token still signs in, so that an agent on the admin's
/// host cannot lock the admin out; other addresses are not affected.
#[tokio::test]
async fn wrong_tokens_from_one_address_wait_and_the_right_one_signs_in() {
    let f = Fixture::new();
    let from = |addr: &str, form: String| {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(format!("{MOUNT}/login"))
            .header("host", HOST)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap();
        let peer: std::net::SocketAddr = addr.parse().unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        req
    };
    let guesser = "198.51.100.9:50000";
    for i in 0..5 {
        let reply = f
            .request(from(guesser, format!("token=guess-{i:02}-guess-guess")))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let sixth = f
        .request(from(guesser, "token=guess-05-guess-guess".into()))
        .await;
    assert_eq!(sixth.status, StatusCode::UNAUTHORIZED);
    let waiting = f
        .request(from(guesser, "token=guess-06-guess-guess".into()))
        .await;
    assert_eq!(
        waiting.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        waiting.body
    );
    assert_eq!(waiting.headers[header::RETRY_AFTER], "1");
    assert!(waiting.body.contains("try again in"), "{}", waiting.body);
    assert!(!waiting.headers.contains_key(header::SET_COOKIE));
    let right = f.request(from(guesser, format!("token={TOKEN}"))).await;
    assert_eq!(right.status, StatusCode::SEE_OTHER, "{}", right.body);
    assert!(right.headers.contains_key(header::SET_COOKIE));
    let elsewhere = f
        .request(from("198.51.100.10:50000", format!("token={TOKEN}")))
        .await;
    assert_eq!(elsewhere.status, StatusCode::SEE_OTHER);
}

/// Issue #16: what monitor mode served but enforce mode would have refused is one choice
/// of the log search, in the API and on the page.
#[tokio::test]
async fn the_log_shows_what_monitor_mode_would_have_refused() {
    let f = Fixture::new();
    f.log.push(serde_json::json!({
        "time": "2026-01-04T10:00:00Z", "agent": "trial", "ecosystem": "npm",
        "package": "evil-pkg", "version": "1.0.0", "verdict": "warn",
        "findings": [{"code": "would-refuse", "verdict": "deny",
                      "message": "not enforced (policy.mode = \"monitor\")"}],
    }));
    let reply = f
        .api(Method::GET, "/api/log?verdict=would-refuse", None)
        .await;
    let entries = reply.json()["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1, "{}", reply.body);
    assert_eq!(entries[0]["package"], "evil-pkg");

    let browser = sign_in(&f, "alice").await;
    let page = get(&f, "", Some(&browser.cookie)).await.body;
    assert!(
        page.contains("would have been refused (monitor mode)"),
        "the search offers it"
    );
    let searched = get(&f, "?verdict=would-refuse", Some(&browser.cookie))
        .await
        .body;
    let log = searched.split("id=\"log\"").nth(1).unwrap();
    assert!(
        log.contains("evil-pkg") && !log.contains("requests"),
        "{log}"
    );
    assert!(log.contains("value=\"would-refuse\" selected"), "{log}");
}

/// The page's allow/deny form takes an agent: the entry applies to that agent only, and
/// the list says so; an agent that does not exist is refused.
#[tokio::test]
async fn an_entry_for_one_agent_from_the_page() {
    let f = Fixture::new();
    let browser = sign_in(&f, "alice").await;
    let form =
        "kind=allow&ecosystem=npm&name=react&versions=18.2.0&reason=INC-7&expires=2h&agent=bot";
    browser.post(&f, "/overrides", form).await;
    let refused = browser.page(&f).await;
    assert!(
        refused.contains("class=\"flash bad\"") && refused.contains("bot"),
        "{refused}"
    );
    let store = OverrideStore::new(&f.store).unwrap();
    assert!(store.list(true, chrono::Utc::now()).unwrap().is_empty());
    AgentStore::new(&f.store)
        .unwrap()
        .add("bot", depfw::agents::PolicyPreset::Default)
        .unwrap();
    browser.post(&f, "/overrides", form).await;
    let entries = store.list(false, chrono::Utc::now()).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].agent.as_deref(), Some("bot"));
    assert!(entries[0].expires.is_some());
    let page = browser.page(&f).await;
    assert!(page.contains("for agent bot"), "{page}");
}

/// The log part of the page, from its heading to the feeds.
fn log_part(page: &str) -> &str {
    let log = page.split("id=\"log\"").nth(1).unwrap();
    log.split("id=\"feeds\"").next().unwrap()
}

/// The `href` of the link whose text is `label`, unescaped, relative to the mount.
fn link(html: &str, label: &str) -> Option<String> {
    let before = html.split(&format!("\">{label}</a>")).next()?;
    if before.len() == html.len() {
        return None;
    }
    let href = before.rsplit("href=\"").next()?;
    Some(href.replace("&amp;", "&").replacen(MOUNT, "", 1))
}

/// Issue #16: a decision is one row: a packument decision says how many versions it hid
/// and why in one line; every version and finding is in the row's details.
#[tokio::test]
async fn a_log_row_summarises_the_hidden_versions_and_details_the_rest() {
    let f = Fixture::new();
    let hidden: Vec<serde_json::Value> = (0..15)
        .map(|i| {
            serde_json::json!({"version": format!("1.2.{i}"), "verdict": "deny",
                "reason": if i == 0 { "known-malicious: MAL-1 stealer; vulnerable: GHSA-1 bug" }
                          else { "release-cooldown: published 1 hour ago" }})
        })
        .collect();
    f.log.push(serde_json::json!({
        "time": "2026-01-05T10:00:00Z", "agent": "bot", "ecosystem": "npm", "kind": "metadata",
        "package": "lodash", "version": null, "verdict": "allow", "request_id": "req-777",
        "outcome": "filtered", "hidden": hidden,
        "findings": [{"code": "has-malicious-versions", "verdict": "warn", "message": "1 version is known malicious", "ids": ["MAL-1"]},
                     {"code": "release-cooldown", "verdict": "quarantine", "message": "14 versions are new"}],
        "extra": {"note": "<i>kept</i>"},
    }));
    let browser = sign_in(&f, "alice").await;
    let page = get(&f, "", Some(&browser.cookie)).await.body;
    let log = log_part(&page);
    assert_eq!(
        log.matches("<tr>").count(),
        1 + 4,
        "a header and one row per decision: {log}"
    );
    assert!(
        log.contains("15 versions hidden: 1.2.0 (known-malicious, vulnerable), 1.2.1 (release-cooldown), 1.2.2 (release-cooldown), …+12 more · has-malicious-versions: 1 version is known malicious (+1 more: release-cooldown)"),
        "{log}"
    );
    assert!(
        log.contains("<b>lodash</b></a> <span class=\"muted\">metadata</span>"),
        "{log}"
    );
    let details = log.split("<details>").nth(1).unwrap();
    let details = details.split("</details>").next().unwrap();
    for v in 0..15 {
        assert!(
            details.contains(&format!("<b>1.2.{v}</b>")),
            "1.2.{v} in the details"
        );
    }
    assert!(details.contains("MAL-1") && details.contains("filtered"));
    assert!(
        details.contains("&lt;i&gt;kept&lt;/i&gt;"),
        "unknown keys shown, escaped"
    );
    // Hostile names from the fixture's log: escaped in text, titles and search links.
    assert!(!log.contains("<script>"));
    assert!(
        log.contains("package=%3Cscript%3Ealert%28%27log%27%29%3C%2Fscript%3E#log"),
        "{log}"
    );
}

/// Issue #16: the search narrows by agent, package, verdict and time; its links are
/// URLs that can be shared.
#[tokio::test]
async fn the_log_search_filters_by_agent_package_verdict_and_time() {
    let f = Fixture::new();
    let browser = sign_in(&f, "alice").await;
    let rows = |page: &str| log_part(page).matches("<tr>").count().saturating_sub(1);
    for (query, want, has) in [
        ("?agent=other", 1, "requests"),
        ("?package=LEFT", 1, "left-pad"),
        ("?verdict=deny", 1, "6.6.6"),
        ("?since=2026-01-02&until=2026-01-02", 1, "6.6.6"),
        ("?since=2026-01-02T10:00:00Z", 2, "requests"),
        ("?agent=bot&verdict=allow", 1, "left-pad"),
        ("?agent=nobody", 0, "no matching decisions"),
    ] {
        let page = get(&f, query, Some(&browser.cookie)).await.body;
        assert_eq!(rows(&page), want, "{query}: {}", log_part(&page));
        assert!(log_part(&page).contains(has), "{query}");
    }
    // The agent in a row links to the log searched for that agent.
    let page = get(&f, "", Some(&browser.cookie)).await.body;
    let by_agent = link(log_part(&page), "other").unwrap();
    assert_eq!(by_agent, "?agent=other#log");
}

/// Issue #16: bad search input says what is wrong (in the log section, the rest of the
/// page still works) instead of failing the page.
#[tokio::test]
async fn bad_log_searches_say_why() {
    let f = Fixture::new();
    let browser = sign_in(&f, "alice").await;
    for (query, says) in [
        ("?offset=-1", "offset: `-1` is not a number from 0 to 10000"),
        ("?offset=10001", "offset: `10001` is not a number"),
        ("?limit=0", "limit: `0` is not a number from 1 to 1000"),
        ("?since=yesterday", "since:"),
        ("?until=2026-13-01", "until:"),
        ("?verdict=maybe", "verdict:"),
        ("?since=2026-02-01&until=2026-01-01", "since is after until"),
    ] {
        let reply = get(&f, query, Some(&browser.cookie)).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}");
        let log = log_part(&reply.body);
        assert!(
            log.contains("flash bad") && log.contains(says),
            "{query}: {log}"
        );
        assert!(
            reply.body.contains("id=\"quarantine\""),
            "the rest of the page is there"
        );
    }
}

/// Issue #16: the log is paged: "older" leads on with `until` pinned to the newest
/// decision of the first page, so decisions logged meanwhile do not shift the pages;
/// "newer" leads back.
#[tokio::test]
async fn the_log_pages_with_older_and_newer_links() {
    let f = Fixture::new();
    for day in 4..=28 {
        f.log.push(serde_json::json!({
            "time": format!("2026-01-{day:02}T10:00:00Z"), "agent": "bot", "ecosystem": "npm",
            "package": format!("pkg-{day}"), "version": "1.0.0", "verdict": "allow",
        }));
    }
    let browser = sign_in(&f, "alice").await;
    let page = get(&f, "?limit=10", Some(&browser.cookie)).await.body;
    let log = log_part(&page);
    assert!(log.contains("decisions 1–10, newest first"), "{log}");
    assert!(log.contains("pkg-28") && !log.contains("pkg-18"));
    assert!(link(log, "← newer").is_none());
    let older = link(log, "older →").unwrap();
    assert_eq!(
        older,
        "?until=2026-01-28T10%3A00%3A00Z&limit=10&offset=10#log"
    );
    // Logged after the first page was shown: not on the pages that follow.
    f.log.push(serde_json::json!({
        "time": "2026-02-01T10:00:00Z", "agent": "bot", "ecosystem": "npm",
        "package": "pkg-late", "version": "1.0.0", "verdict": "allow",
    }));
    let page = get(&f, &older, Some(&browser.cookie)).await.body;
    let log = log_part(&page);
    assert!(
        log.contains("decisions 11–20") && log.contains("pkg-18"),
        "{log}"
    );
    assert!(!log.contains("pkg-late") && !log.contains("pkg-19"));
    let page = get(&f, &link(log, "older →").unwrap(), Some(&browser.cookie))
        .await
        .body;
    let last = log_part(&page);
    assert!(last.contains("decisions 21–28"), "{last}");
    assert!(link(last, "older →").is_none(), "the oldest page");
    let back = link(last, "← newer").unwrap();
    assert!(back.contains("offset=10"), "{back}");
    let page = get(&f, &back, Some(&browser.cookie)).await.body;
    assert!(log_part(&page).contains("decisions 11–20"));
}

/// Deep in the log the "older" link moves `until` instead of growing the offset, so no
/// page reads more than `offset` ≤ 10000 plus one page of records.
#[tokio::test]
async fn deep_log_pages_move_until_instead_of_the_offset() {
    let f = Fixture::new();
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z").unwrap();
    for i in 0..10_600 {
        // Two decisions a second: `until` falls between two of one instant.
        let time = start + chrono::Duration::seconds(i / 2);
        f.log.push(serde_json::json!({
            "time": time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "agent": "bot",
            "ecosystem": "npm", "package": format!("p{i}"), "version": "1.0.0", "verdict": "allow",
        }));
    }
    let browser = sign_in(&f, "alice").await;
    let page = get(&f, "?limit=999&offset=9003", Some(&browser.cookie))
        .await
        .body;
    let log = log_part(&page);
    // Newest first from p10599: decision 10002 of the search is p598, the last shown.
    assert!(
        log.contains("decisions 9004–10002") && log.contains(">p598<"),
        "{log}"
    );
    let older = link(log, "older →").unwrap();
    // p599 and p598 share their second (4:59), and both were shown.
    assert_eq!(
        older,
        "?until=2026-03-01T00%3A04%3A59Z&limit=999&offset=2#log"
    );
    let page = get(&f, &older, Some(&browser.cookie)).await.body;
    let log = log_part(&page);
    assert!(log.contains(">p597<") && !log.contains(">p598<"), "{log}");
}
