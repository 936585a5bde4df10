//! Router tests: depfw's crates.io sparse index and downloads against the fixture registry's
//! real index lines and `.crate` files (itoa 1.0.10/1.0.11).

use crate::support::registry::{self, request, router_setup, router_setup_with, send, TestCheck};
use axum::http::{header, StatusCode};
use serde_json::Value;

const PUBLIC: &str = "http://depfw.test:7878";
const CKSUM_10: &str = "b1a46d1a171d865aa5f83f92695765caa047a9b4cbae2cbf37dbd613a793fd4c";
const CKSUM_11: &str = "49f1f14873335454500d59611f1cf4a4b0f786f9ac11f4312a78e4cf2566695b";

fn deny(specs: &[&str]) -> TestCheck {
    TestCheck {
        deny: specs.iter().map(|s| s.to_string()).collect(),
        ..TestCheck::default()
    }
}

fn versions(body: &[u8]) -> Vec<String> {
    std::str::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["vers"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn config_sends_downloads_through_depfw_with_the_checksum() {
    let (state, _fx, _dir) = router_setup(TestCheck::default(), PUBLIC).await;
    let (status, _, body) = send(&state, request("GET", "/cargo/index/config.json", &[])).await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        doc["dl"],
        format!("{PUBLIC}/cargo/dl/{{crate}}/{{version}}/{{sha256-checksum}}")
    );
}

#[tokio::test]
async fn index_drops_denied_lines_and_keeps_the_others_verbatim() {
    let (state, _fx, _dir) = router_setup(deny(&["itoa@1.0.11"]), PUBLIC).await;
    let (status, headers, body) =
        send(&state, request("GET", "/cargo/index/it/oa/itoa", &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/plain");
    assert_eq!(versions(&body), ["1.0.10"]);
    let upstream = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/fixtures/cargo/itoa"),
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(body).unwrap(),
        format!("{}\n", upstream.lines().next().unwrap())
    );
}

#[tokio::test]
async fn typosquat_index_is_refused_with_a_plain_text_reason() {
    let check = TestCheck {
        deny_names: vec!["itao".into()],
        ..TestCheck::default()
    };
    let (state, _fx, _dir) = router_setup(check, PUBLIC).await;
    let (status, headers, body) =
        send(&state, request("GET", "/cargo/index/it/ao/itao", &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.starts_with("depfw: itao is denied by policy"),
        "{text}"
    );
    assert!(text.contains("possible-typosquat"), "{text}");
}

#[tokio::test]
async fn download_is_gated_and_verified() {
    let (state, fx, _dir) = router_setup(deny(&["itoa@1.0.11"]), PUBLIC).await;
    let ok = format!("/cargo/dl/itoa/1.0.10/{CKSUM_10}");
    let (status, _, body) = send(&state, request("GET", &ok, &[])).await;
    assert_eq!(status, StatusCode::OK);
    use sha2::Digest as _;
    assert_eq!(hex::encode(sha2::Sha256::digest(&body)), CKSUM_10);

    let denied = format!("/cargo/dl/itoa/1.0.11/{CKSUM_11}");
    let (status, _, body) = send(&state, request("GET", &denied, &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("itoa@1.0.11 is denied by policy") && text.contains("deny-listed"));
    assert_eq!(fx.hits("/crates/itoa/itoa-1.0.11.crate"), 0);

    let wrong = format!("/cargo/dl/itoa/1.0.10/{CKSUM_11}");
    let (status, _, _) = send(&state, request("GET", &wrong, &[])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tampered_crate_is_refused() {
    let (state, fx, _dir) = router_setup(TestCheck::default(), PUBLIC).await;
    fx.tamper.lock().unwrap().insert("itoa-1.0.11.crate".into());
    let path = format!("/cargo/dl/itoa/1.0.11/{CKSUM_11}");
    let (status, _, body) = send(&state, request("GET", &path, &[])).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("integrity mismatch"));
}

#[tokio::test]
async fn pubtime_feeds_the_cooldown_and_etags_follow_the_policy() {
    let check = TestCheck {
        cooldown_hours: Some(48),
        ..TestCheck::default()
    };
    let (state, fx, _dir) = router_setup(check, PUBLIC).await;
    fx.times.lock().unwrap().insert(
        ("itoa".into(), "1.0.11".into()),
        chrono::Utc::now() - chrono::Duration::hours(2),
    );
    let (_, headers, body) = send(&state, request("GET", "/cargo/index/it/oa/itoa", &[])).await;
    assert_eq!(versions(&body), ["1.0.10"]);
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    let inm = [("if-none-match", etag.as_str())];
    let (status, _, _) = send(&state, request("GET", "/cargo/index/it/oa/itoa", &inm)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    state.set_policy(registry::policy(TestCheck::default()));
    let (status, _, body) = send(&state, request("GET", "/cargo/index/it/oa/itoa", &inm)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(versions(&body), ["1.0.10", "1.0.11"]);
}

#[tokio::test]
async fn bad_index_paths_are_client_errors() {
    let (state, _fx, _dir) = router_setup(TestCheck::default(), PUBLIC).await;
    for path in [
        "/cargo/index/xx/yy/itoa",
        "/cargo/index/it/oa/ITOA",
        "/cargo/dl/itoa/1.0.10/zz",
    ] {
        let (status, _, _) = send(&state, request("GET", path, &[])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
    }
}

const YANK: &str = "refused-versions = \"yank\"";

/// The index lines depfw serves, parsed, with the raw text of each.
fn lines(body: &[u8]) -> Vec<(Value, String)> {
    std::str::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| (serde_json::from_str(l).unwrap(), l.to_owned()))
        .collect()
}

fn upstream_lines() -> Vec<String> {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/fixtures/cargo/itoa"),
    )
    .unwrap()
    .lines()
    .map(str::to_owned)
    .collect()
}

#[tokio::test]
async fn yank_mode_keeps_refused_lines_marked_yanked_and_still_refuses_the_download() {
    let (state, fx, _dir) = router_setup_with(deny(&["itoa@1.0.11"]), PUBLIC, YANK).await;
    let (status, headers, body) =
        send(&state, request("GET", "/cargo/index/it/oa/itoa", &[])).await;
    assert_eq!(status, StatusCode::OK);
    let served = lines(&body);
    let upstream = upstream_lines();
    assert_eq!(served.len(), 2);
    // The allowed version is untouched, byte for byte.
    assert_eq!(served[0].1, upstream[0]);
    assert_eq!(served[0].0["yanked"], false);
    // The denied one is listed, yanked, with every other field as upstream had it.
    let (denied, _) = &served[1];
    assert_eq!(denied["yanked"], true);
    let mut expected: Value = serde_json::from_str(&upstream[1]).unwrap();
    expected["yanked"] = Value::Bool(true);
    assert_eq!(denied, &expected);

    let path = format!("/cargo/dl/itoa/1.0.11/{CKSUM_11}");
    let (status, _, body) = send(&state, request("GET", &path, &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.starts_with("depfw: itoa@1.0.11 is denied by policy") && text.contains("deny-listed"),
        "{text}"
    );
    assert_eq!(fx.hits("/crates/itoa/itoa-1.0.11.crate"), 0);
    let ok = format!("/cargo/dl/itoa/1.0.10/{CKSUM_10}");
    assert_eq!(
        send(&state, request("GET", &ok, &[])).await.0,
        StatusCode::OK
    );

    // The ETag follows the policy: allowing 1.0.11 again un-yanks it.
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    state.set_policy(registry::policy(TestCheck::default()));
    let inm = [("if-none-match", etag.as_str())];
    let (status, _, body) = send(&state, request("GET", "/cargo/index/it/oa/itoa", &inm)).await;
    assert_eq!(status, StatusCode::OK);
    let served: Vec<String> = lines(&body).into_iter().map(|(_, raw)| raw).collect();
    assert_eq!(served, upstream);
}

#[tokio::test]
async fn yank_mode_yanks_quarantined_versions_and_holds_them_at_download() {
    let check = TestCheck {
        quarantine: vec!["itoa@1.0.11".into()],
        ..TestCheck::default()
    };
    let (state, _fx, _dir) = router_setup_with(check, PUBLIC, YANK).await;
    let (_, _, body) = send(&state, request("GET", "/cargo/index/it/oa/itoa", &[])).await;
    let yanked: Vec<(String, bool)> = lines(&body)
        .iter()
        .map(|(v, _)| (v["vers"].as_str().unwrap().to_owned(), v["yanked"] == true))
        .collect();
    assert_eq!(
        yanked,
        [("1.0.10".to_owned(), false), ("1.0.11".to_owned(), true)]
    );
    let path = format!("/cargo/dl/itoa/1.0.11/{CKSUM_11}");
    let (status, _, body) = send(&state, request("GET", &path, &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("itoa@1.0.11 is quarantined, awaiting approval"),
        "{text}"
    );
    let held = state.quarantine().list(None).unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(
        (held[0].name.as_str(), held[0].version.as_str()),
        ("itoa", "1.0.11")
    );
}

#[tokio::test]
async fn remove_is_the_default_mode() {
    let (state, _fx, _dir) = router_setup_with(deny(&["itoa@1.0.11"]), PUBLIC, "").await;
    assert_eq!(
        state.refused_versions(),
        depfw::config::RefusedVersions::Remove
    );
    let (_, _, body) = send(&state, request("GET", "/cargo/index/it/oa/itoa", &[])).await;
    assert_eq!(versions(&body), ["1.0.10"]);
}

/// The render cache: a warm index request is a lookup, not parse + policy + render.
mod render_cache {
    use super::*;

    const ITOA: &str = "/cargo/index/it/oa/itoa";
    const UPSTREAM: &str = "/cargo-index/it/oa/itoa";

    #[tokio::test]
    async fn warm_index_is_served_from_the_cache_byte_identical() {
        let check = deny(&["itoa@1.0.11"]);
        let (state, fx, _dir) = router_setup(check.clone(), PUBLIC).await;
        let (status, cold_headers, cold) = send(&state, request("GET", ITOA, &[])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(versions(&cold), ["1.0.10"]);
        let evaluated = check.version_evaluations();
        assert_eq!(evaluated, 2, "the cold render evaluates both versions");
        assert_eq!(state.decisions().list(0, 10).unwrap().len(), 1);

        let (status, warm_headers, warm) = send(&state, request("GET", ITOA, &[])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(warm, cold);
        for h in [header::ETAG, header::CONTENT_TYPE, header::VARY] {
            assert_eq!(warm_headers[&h], cold_headers[&h], "{h}");
        }
        assert_eq!(
            check.version_evaluations(),
            evaluated,
            "a warm hit evaluates no version"
        );
        assert_eq!(fx.hits(UPSTREAM), 1);
        assert_eq!(
            state.decisions().list(0, 10).unwrap().len(),
            1,
            "a warm hit records nothing, like npm's"
        );

        let etag = cold_headers[header::ETAG].to_str().unwrap();
        let (status, _, body) =
            send(&state, request("GET", ITOA, &[("if-none-match", etag)])).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn a_policy_change_invalidates_the_rendering() {
        let (state, fx, _dir) = router_setup(TestCheck::default(), PUBLIC).await;
        let (_, headers, body) = send(&state, request("GET", ITOA, &[])).await;
        assert_eq!(versions(&body), ["1.0.10", "1.0.11"]);
        let check = deny(&["itoa@1.0.11"]);
        state.set_policy(registry::policy(check.clone()));
        let (_, new_headers, body) = send(&state, request("GET", ITOA, &[])).await;
        assert_eq!(versions(&body), ["1.0.10"]);
        assert_ne!(new_headers[header::ETAG], headers[header::ETAG]);
        assert_eq!(check.version_evaluations(), 2, "re-rendered");
        assert_eq!(fx.hits(UPSTREAM), 1, "from the same upstream body");
    }

    /// `server.refused-versions` is process config, so each mode is its own state; both
    /// cache their own rendering and neither matches the other's ETag.
    #[tokio::test]
    async fn yank_and_remove_renderings_differ_and_each_stays_warm() {
        let mut etags = Vec::new();
        for (server, expected) in [("", 1), (YANK, 2)] {
            let check = deny(&["itoa@1.0.11"]);
            let (state, _fx, _dir) = router_setup_with(check.clone(), PUBLIC, server).await;
            let (_, headers, cold) = send(&state, request("GET", ITOA, &[])).await;
            let (_, _, warm) = send(&state, request("GET", ITOA, &[])).await;
            assert_eq!(lines(&cold).len(), expected);
            assert_eq!(warm, cold);
            assert_eq!(check.version_evaluations(), 2);
            etags.push(headers[header::ETAG].clone());
        }
        assert_ne!(etags[0], etags[1]);
    }
}
