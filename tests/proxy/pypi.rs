//! Router tests: depfw's PyPI endpoints against the fixture registry's real project pages
//! and wheels (idna 3.9/3.10, six 1.16.0/1.17.0).

use crate::support::registry::{self, request, router_setup, router_setup_with, send, TestCheck};
use axum::http::{header, StatusCode};
use depfw::store::decisions::RecordKind;
use serde_json::Value;

const PUBLIC: &str = "http://depfw.test:7878";
const JSON_ACCEPT: &str = "application/vnd.pypi.simple.v1+json";

fn deny(specs: &[&str]) -> TestCheck {
    TestCheck {
        deny: specs.iter().map(|s| s.to_string()).collect(),
        ..TestCheck::default()
    }
}

/// The proxied URL of a file, read from depfw's own JSON page.
async fn file_url(state: &depfw::server::AppState, project: &str, filename: &str) -> String {
    let path = format!("/pypi/simple/{project}/");
    let (_, _, body) = send(state, request("GET", &path, &[("accept", JSON_ACCEPT)])).await;
    let doc: Value = serde_json::from_slice(&body).unwrap();
    let url = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == filename)
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    url.strip_prefix(PUBLIC).unwrap().to_owned()
}

#[tokio::test]
async fn json_page_hides_denied_release_and_points_files_at_depfw() {
    let (state, _fx, _dir) = router_setup(deny(&["idna@3.10"]), PUBLIC).await;
    let (status, headers, body) = send(
        &state,
        request("GET", "/pypi/simple/idna/", &[("accept", JSON_ACCEPT)]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], JSON_ACCEPT);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["versions"], serde_json::json!(["3.9"]));
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["filename"], "idna-3.9-py3-none-any.whl");
    assert!(files[0]["url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{PUBLIC}/pypi/files/packages/")));
    assert_eq!(
        files[0]["hashes"]["sha256"],
        "69297d5da0cc9281c77efffb4e730254dd45943f45bbfb461de5991713989b1e"
    );
    let records = state.decisions().list(0, 10).unwrap();
    assert_eq!(records[0].hidden[0].version, "3.10");
}

#[tokio::test]
async fn html_by_default_and_by_format_query() {
    let (state, _fx, _dir) = router_setup(TestCheck::default(), PUBLIC).await;
    let (_, headers, body) = send(&state, request("GET", "/pypi/simple/six/", &[])).await;
    assert_eq!(headers[header::CONTENT_TYPE], "text/html");
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("six-1.17.0-py2.py3-none-any.whl#sha256=4721f391"));
    let path = "/pypi/simple/six/?format=application/vnd.pypi.simple.v1%2Bjson";
    let (_, headers, _) = send(&state, request("GET", path, &[])).await;
    assert_eq!(headers[header::CONTENT_TYPE], JSON_ACCEPT);
}

#[tokio::test]
async fn other_spellings_redirect_to_the_normalised_name() {
    let (state, _fx, _dir) = router_setup(TestCheck::default(), PUBLIC).await;
    let (status, headers, _) = send(&state, request("GET", "/pypi/simple/IDNA", &[])).await;
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(headers[header::LOCATION], "/pypi/simple/idna/");
}

#[tokio::test]
async fn typosquat_page_is_refused_with_a_reason() {
    let check = TestCheck {
        deny_names: vec!["idnaa".into()],
        ..TestCheck::default()
    };
    let (state, fx, _dir) = router_setup(check, PUBLIC).await;
    let (status, _, body) = send(&state, request("GET", "/pypi/simple/idnaa/", &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("depfw") && text.contains("possible-typosquat"),
        "{text}"
    );
    // Looked up once: a look-alike's refusal waits for its age; upstream has none.
    assert_eq!(
        fx.hits("/pypi/simple/idnaa/"),
        1,
        "refused after one lookup"
    );
}

#[tokio::test]
async fn denied_file_is_refused_at_the_gate_even_when_asked_directly() {
    let (state, _fx, _dir) = router_setup(TestCheck::default(), PUBLIC).await;
    let url = file_url(&state, "idna", "idna-3.10-py3-none-any.whl").await;
    state.set_policy(registry::policy(deny(&["idna@3.10"])));
    for method in ["GET", "HEAD"] {
        let (status, _, body) = send(&state, request(method, &url, &[])).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method}");
        if method == "GET" {
            let text = String::from_utf8(body).unwrap();
            assert!(text.contains("idna@3.10 is denied by policy"), "{text}");
        }
    }
    let records = state.decisions().list(0, 10).unwrap();
    assert!(records
        .iter()
        .any(|r| r.kind == RecordKind::Artifact && r.outcome == "refused"));
}

#[tokio::test]
async fn allowed_file_is_served_verified_and_head_does_not_download() {
    let (state, fx, _dir) = router_setup(TestCheck::default(), PUBLIC).await;
    let url = file_url(&state, "six", "six-1.17.0-py2.py3-none-any.whl").await;
    let upstream_path = url.replacen("/pypi/files/", "/pypi-files/", 1);
    let (status, _, body) = send(&state, request("HEAD", &url, &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(fx.hits(&upstream_path), 0, "HEAD fetched the wheel");
    let (status, headers, body) = send(&state, request("GET", &url, &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_LENGTH], "11050");
    use sha2::Digest as _;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&body)),
        "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"
    );
    // Once cached, HEAD knows the length.
    let (_, headers, _) = send(&state, request("HEAD", &url, &[])).await;
    assert_eq!(headers[header::CONTENT_LENGTH], "11050");
}

#[tokio::test]
async fn tampered_wheel_is_refused_not_served() {
    let (state, fx, _dir) = router_setup(TestCheck::default(), PUBLIC).await;
    let url = file_url(&state, "six", "six-1.16.0-py2.py3-none-any.whl").await;
    fx.tamper
        .lock()
        .unwrap()
        .insert("six-1.16.0-py2.py3-none-any.whl".into());
    let (status, _, body) = send(&state, request("GET", &url, &[])).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("integrity mismatch"));
}

#[tokio::test]
async fn cooldown_uses_upload_time_and_etag_follows_the_policy() {
    let (state, fx, _dir) = router_setup(
        TestCheck {
            cooldown_hours: Some(48),
            ..TestCheck::default()
        },
        PUBLIC,
    )
    .await;
    fx.times.lock().unwrap().insert(
        ("six".into(), "1.17.0".into()),
        chrono::Utc::now() - chrono::Duration::hours(1),
    );
    let accept = [("accept", JSON_ACCEPT)];
    let (_, headers, body) = send(&state, request("GET", "/pypi/simple/six/", &accept)).await;
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["versions"], serde_json::json!(["1.16.0"]));
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    let conditional = [("accept", JSON_ACCEPT), ("if-none-match", etag.as_str())];
    let (status, _, _) = send(&state, request("GET", "/pypi/simple/six/", &conditional)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    state.set_policy(registry::policy(deny(&["six@1.16.0"])));
    let (status, headers, _) =
        send(&state, request("GET", "/pypi/simple/six/", &conditional)).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(headers[header::ETAG].to_str().unwrap(), etag);
}

#[tokio::test]
async fn core_metadata_is_gated_and_verified_like_the_wheel() {
    let (state, _fx, _dir) = router_setup(TestCheck::default(), PUBLIC).await;
    let whl = "six-1.17.0-py2.py3-none-any.whl";
    let (_, _, body) = send(
        &state,
        request("GET", "/pypi/simple/six/", &[("accept", JSON_ACCEPT)]),
    )
    .await;
    let doc: Value = serde_json::from_slice(&body).unwrap();
    let file = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == whl)
        .unwrap()
        .clone();
    let sha = "562042078c2752549f6d8a7c86dbc5dd708088a7be6d80672ec7b07100b72468";
    assert_eq!(file["core-metadata"]["sha256"], sha);
    let url = format!("{}.metadata", file_url(&state, "six", whl).await);
    let (status, _, body) = send(&state, request("GET", &url, &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().contains("Name: six"));

    // The first depfw has it cached now; a second one meets the tampered upstream copy.
    let (other, other_fx, _other_dir) = router_setup(TestCheck::default(), PUBLIC).await;
    other_fx
        .tamper
        .lock()
        .unwrap()
        .insert(format!("{whl}.metadata"));
    let (status, _, _) = send(&other, request("GET", &url, &[])).await;
    assert_eq!(
        status,
        StatusCode::BAD_GATEWAY,
        "tampered metadata is not served"
    );

    state.set_policy(registry::policy(deny(&["six@1.17.0"])));
    let (status, _, _) = send(&state, request("GET", &url, &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

const YANK: &str = "refused-versions = \"yank\"";

/// Denies idna 3.10 with a reason full of HTML metacharacters.
struct NastyReason;

impl depfw::policy::Check for NastyReason {
    fn name(&self) -> &'static str {
        "nasty"
    }
    fn evaluate(
        &self,
        ctx: &depfw::policy::PackageCtx<'_>,
        findings: &mut Vec<depfw::policy::Finding>,
    ) {
        if ctx.name.as_str() == "idna"
            && ctx.version.map(ToString::to_string).as_deref() == Some("3.10")
        {
            findings.push(depfw::policy::Finding::new(
                depfw::diag::Code::DenyListed,
                depfw::policy::Severity::High,
                depfw::policy::Verdict::Deny,
                "a \"quoted\" <b>tag</b> & 'more'".into(),
            ));
        }
    }
}

/// A JSON page's files as (filename, yanked).
fn yanked_files(doc: &Value) -> Vec<(String, Value)> {
    doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["filename"].as_str().unwrap().to_owned(),
                f["yanked"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn yank_mode_json_lists_refused_release_yanked_with_depfws_reason() {
    let (state, fx, _dir) = router_setup_with(deny(&["idna@3.10"]), PUBLIC, YANK).await;
    let (status, _, body) = send(
        &state,
        request("GET", "/pypi/simple/idna/", &[("accept", JSON_ACCEPT)]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["versions"], serde_json::json!(["3.9", "3.10"]));
    let reason =
        "depfw: idna@3.10 is denied by policy: deny-listed: idna@3.10 is on the test deny list";
    let mut files = yanked_files(&doc);
    files.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        files,
        [
            (IDNA_310.to_owned(), Value::String(reason.into())),
            ("idna-3.9-py3-none-any.whl".to_owned(), Value::Bool(false)),
        ]
    );
    // The yanked file still points at depfw, and the gate still refuses it.
    let url = file_url(&state, "idna", IDNA_310).await;
    let (status, _, body) = send(&state, request("GET", &url, &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("idna@3.10 is denied by policy"), "{text}");
    assert_eq!(fx.hits(&url.replacen("/pypi/files/", "/pypi-files/", 1)), 0);
    assert!(state.decisions().list(0, 10).unwrap().iter().any(|r| {
        r.kind == RecordKind::Artifact
            && r.version.as_deref() == Some("3.10")
            && r.outcome == "refused"
    }));
    // The allowed release is served.
    let url = file_url(&state, "idna", "idna-3.9-py3-none-any.whl").await;
    assert_eq!(
        send(&state, request("GET", &url, &[])).await.0,
        StatusCode::OK
    );
}

const IDNA_310: &str = "idna-3.10-py3-none-any.whl";

#[tokio::test]
async fn yank_mode_html_escapes_the_reason_and_it_round_trips() {
    let policy = depfw::server::PolicyState::Ready(depfw::policy::Policy::new(
        vec![std::sync::Arc::new(NastyReason)],
        std::sync::Arc::default(),
        "nasty".into(),
    ));
    let (state, _fx, _dir) = router_setup_with(TestCheck::default(), PUBLIC, YANK).await;
    state.set_policy(policy);
    let (status, _, body) = send(&state, request("GET", "/pypi/simple/idna/", &[])).await;
    assert_eq!(status, StatusCode::OK);
    let html = String::from_utf8(body).unwrap();
    let reason =
        "depfw: idna@3.10 is denied by policy: deny-listed: a \"quoted\" <b>tag</b> & 'more'";
    let escaped = "depfw: idna@3.10 is denied by policy: deny-listed: \
                   a &quot;quoted&quot; &lt;b&gt;tag&lt;/b&gt; &amp; &#x27;more&#x27;";
    assert!(
        html.contains(&format!("data-yanked=\"{escaped}\"")),
        "{html}"
    );
    assert!(!html.contains("<b>"), "{html}");
    let line = |name: &str| {
        html.lines()
            .find(|l| l.contains(&format!(">{name}<")))
            .unwrap()
            .to_owned()
    };
    assert!(
        !line("idna-3.9-py3-none-any.whl").contains("data-yanked"),
        "{html}"
    );
    // A PEP 503 parser reads back exactly depfw's reason.
    let name = depfw::package::PackageName::parse(depfw::package::Ecosystem::PyPI, "idna").unwrap();
    let page_url = url::Url::parse(&format!("{PUBLIC}/pypi/simple/idna/")).unwrap();
    let page = depfw::registry::pypi::parse_html(html.as_bytes(), &page_url, &name).unwrap();
    assert_eq!(page.file(IDNA_310).unwrap().yanked.as_deref(), Some(reason));
    assert_eq!(page.file("idna-3.9-py3-none-any.whl").unwrap().yanked, None);
}

#[tokio::test]
async fn yank_mode_yanks_quarantined_releases_serves_their_metadata_and_holds_the_wheel() {
    let check = TestCheck {
        quarantine: vec!["six@1.17.0".into()],
        ..TestCheck::default()
    };
    let (state, _fx, _dir) = router_setup_with(check, PUBLIC, YANK).await;
    let (_, _, body) = send(
        &state,
        request("GET", "/pypi/simple/six/", &[("accept", JSON_ACCEPT)]),
    )
    .await;
    let doc: Value = serde_json::from_slice(&body).unwrap();
    let files = yanked_files(&doc);
    let held = files
        .iter()
        .find(|(f, _)| f.starts_with("six-1.17.0"))
        .unwrap();
    assert!(
        held.1
            .as_str()
            .unwrap()
            .starts_with("depfw: six@1.17.0 is quarantined, awaiting approval: new-package"),
        "{files:?}"
    );
    assert!(files
        .iter()
        .filter(|(f, _)| f.starts_with("six-1.16.0"))
        .all(|(_, y)| *y == Value::Bool(false)));
    let whl = "six-1.17.0-py2.py3-none-any.whl";
    let url = file_url(&state, "six", whl).await;
    // Its PEP 658 metadata is served (verified), so a resolver gets far enough to show
    // the yank reason; that is resolution, not a download, so nothing is held yet.
    let (status, _, body) = send(&state, request("GET", &format!("{url}.metadata"), &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().contains("Name: six"));
    assert!(state.quarantine().list(None).unwrap().is_empty());
    let records = state.decisions().list(0, 20).unwrap();
    let served = records
        .iter()
        .find(|r| r.kind == RecordKind::Artifact)
        .unwrap();
    assert_eq!(served.outcome, "served-yanked-metadata");
    assert_eq!(served.verdict, depfw::policy::Verdict::Quarantine);
    // The wheel is refused and held.
    let (status, _, body) = send(&state, request("GET", &url, &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8(body).unwrap().contains("quarantined"));
    let held = state.quarantine().list(None).unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(
        (held[0].name.as_str(), held[0].version.as_str()),
        ("six", "1.17.0")
    );
}

/// The render cache: a warm page request is a lookup, not parse + policy + render.
mod render_cache {
    use super::*;

    const IDNA: &str = "/pypi/simple/idna/";
    const UPSTREAM: &str = "/pypi/simple/idna/";

    #[tokio::test]
    async fn warm_page_is_served_from_the_cache_byte_identical() {
        let check = deny(&["idna@3.10"]);
        let (state, fx, _dir) = router_setup(check.clone(), PUBLIC).await;
        let json = [("accept", JSON_ACCEPT)];
        let (status, cold_headers, cold) = send(&state, request("GET", IDNA, &json)).await;
        assert_eq!(status, StatusCode::OK);
        let evaluated = check.version_evaluations();
        assert_eq!(evaluated, 2, "the cold render evaluates both releases");
        assert_eq!(state.decisions().list(0, 10).unwrap().len(), 1);

        let (status, warm_headers, warm) = send(&state, request("GET", IDNA, &json)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(warm, cold);
        for h in [header::ETAG, header::CONTENT_TYPE, header::VARY] {
            assert_eq!(warm_headers[&h], cold_headers[&h], "{h}");
        }
        let doc: Value = serde_json::from_slice(&warm).unwrap();
        assert_eq!(doc["versions"], serde_json::json!(["3.9"]));
        assert_eq!(
            check.version_evaluations(),
            evaluated,
            "no version evaluated"
        );
        assert_eq!(fx.hits(UPSTREAM), 1);
        assert_eq!(
            state.decisions().list(0, 10).unwrap().len(),
            1,
            "a warm hit records nothing, like npm's"
        );

        let etag = cold_headers[header::ETAG].to_str().unwrap();
        let conditional = [("accept", JSON_ACCEPT), ("if-none-match", etag)];
        let (status, _, _) = send(&state, request("GET", IDNA, &conditional)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);

        // A wheel request reuses the parsed page: no second upstream fetch either.
        let url = file_url(&state, "idna", "idna-3.9-py3-none-any.whl").await;
        let (status, _, _) = send(&state, request("HEAD", &url, &[])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(fx.hits(UPSTREAM), 1);
    }

    #[tokio::test]
    async fn a_policy_change_invalidates_the_rendering() {
        let (state, fx, _dir) = router_setup(deny(&["idna@3.10"]), PUBLIC).await;
        let json = [("accept", JSON_ACCEPT)];
        let (_, headers, _) = send(&state, request("GET", IDNA, &json)).await;
        state.set_policy(registry::policy(deny(&["idna@3.9"])));
        let (_, new_headers, body) = send(&state, request("GET", IDNA, &json)).await;
        let doc: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["versions"], serde_json::json!(["3.10"]));
        assert_ne!(new_headers[header::ETAG], headers[header::ETAG]);
        assert_eq!(fx.hits(UPSTREAM), 1, "from the same upstream body");
    }

    #[tokio::test]
    async fn html_and_json_are_cached_separately() {
        let check = deny(&["idna@3.10"]);
        let (state, _fx, _dir) = router_setup(check.clone(), PUBLIC).await;
        let json = [("accept", JSON_ACCEPT)];
        let (_, json_headers, json_body) = send(&state, request("GET", IDNA, &json)).await;
        let (_, html_headers, html_body) = send(&state, request("GET", IDNA, &[])).await;
        assert_eq!(html_headers[header::CONTENT_TYPE], "text/html");
        let html = String::from_utf8(html_body.clone()).unwrap();
        assert!(html.contains("idna-3.9-py3-none-any.whl") && !html.contains("idna-3.10"));
        assert_ne!(html_headers[header::ETAG], json_headers[header::ETAG]);
        assert_eq!(check.version_evaluations(), 4, "two cold renders");

        let (_, headers, body) = send(&state, request("GET", IDNA, &json)).await;
        assert_eq!(
            (headers[header::ETAG].clone(), body),
            (json_headers[header::ETAG].clone(), json_body)
        );
        let (_, headers, body) = send(&state, request("GET", IDNA, &[])).await;
        assert_eq!(
            (headers[header::ETAG].clone(), body),
            (html_headers[header::ETAG].clone(), html_body)
        );
        assert_eq!(check.version_evaluations(), 4, "both warm");
    }

    /// `server.refused-versions` is process config, so each mode is its own state; both
    /// cache their own rendering and neither matches the other's ETag.
    #[tokio::test]
    async fn yank_and_remove_renderings_differ_and_each_stays_warm() {
        let mut etags = Vec::new();
        for (server, files) in [("", 1), (YANK, 2)] {
            let check = deny(&["idna@3.10"]);
            let (state, _fx, _dir) = router_setup_with(check.clone(), PUBLIC, server).await;
            let json = [("accept", JSON_ACCEPT)];
            let (_, headers, cold) = send(&state, request("GET", IDNA, &json)).await;
            let (_, _, warm) = send(&state, request("GET", IDNA, &json)).await;
            let doc: Value = serde_json::from_slice(&cold).unwrap();
            assert_eq!(yanked_files(&doc).len(), files);
            assert_eq!(warm, cold);
            assert_eq!(check.version_evaluations(), 2);
            etags.push(headers[header::ETAG].clone());
        }
        assert_ne!(etags[0], etags[1]);
    }
}
