//! Hostile upstreams: depfw in front of a fixture registry that answers 500, hangs, resets
//! the connection, truncates a body, sends a gzip bomb, a body far beyond the configured
//! maximum, a body trickled one chunk at a time, bytes that do not match the published
//! digest, a packument of 190,000 versions, or a redirect to another host.
//!
//! `cargo test --test integration faults::`. For each case the test checks what the client
//! gets (a 502 or 504 naming the cause, never a hang), that nothing unverified was recorded
//! as served, and that depfw still answers `/healthz` and serves a good package afterwards.
//! Then: concurrent misses share one upstream fetch (`upstream::metadata`,
//! `delivery::obtain`), and metadata is served stale within `upstream.stale-if-error-secs`
//! when upstream fails.
//!
//! Every test runs against a real listener over TCP, with a client timeout so that a hang
//! in depfw fails the test instead of stalling the run.

use std::sync::Arc;
use std::time::Duration;

use depfw::store::decisions::RecordKind;
use serde_json::Value;

use crate::support::registry::{self, Depfw, Fault, FixtureState, TestCheck};

/// Small limits, so that every case ends in about a second.
const LIMITS: &str = "timeout-secs = 1\n\
                      transfer-deadline-secs = 4\n\
                      min-transfer-rate = 1000\n\
                      min-transfer-rate-grace-secs = 1\n\
                      max-metadata-bytes = 1048576\n\
                      max-artifact-bytes = 1048576\n";

const PACKUMENT: &str = "/is-odd";
const TARBALL: &str = "/is-odd/-/is-odd-3.0.1.tgz";

/// The fixture registry and depfw (its `[upstream]` keys: [`LIMITS`] and `extra`).
struct Rig {
    fixture: Arc<FixtureState>,
    upstream: String,
    depfw: Depfw,
    client: reqwest::Client,
    // Last: dropped after the servers' handles, stopping them.
    rt: tokio::runtime::Runtime,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    /// The `{"error": …}` text of an error answer.
    fn error(&self) -> String {
        let v: Value = serde_json::from_slice(&self.body).unwrap_or(Value::Null);
        v["error"].as_str().unwrap_or_default().to_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// [`LIMITS`] with the keys of `extra` replaced by its own.
fn limits(extra: &str) -> String {
    let key = |line: &str| line.split('=').next().unwrap_or_default().trim().to_owned();
    let overridden: Vec<String> = extra.lines().map(key).collect();
    let mut text: String = LIMITS
        .lines()
        .filter(|line| !overridden.contains(&key(line)))
        .map(|line| format!("{line}\n"))
        .collect();
    text.push_str(extra);
    text
}

fn rig(extra: &str) -> Rig {
    let rt = crate::support::runtime();
    let (upstream, fixture, depfw) = rt.block_on(async {
        let (upstream, fixture) = registry::start_fixture().await;
        let policy = registry::policy(TestCheck::default());
        let depfw = registry::start_depfw(&upstream, policy, &limits(extra)).await;
        (upstream, fixture, depfw)
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .no_gzip()
        .build()
        .unwrap();
    Rig {
        fixture,
        upstream,
        depfw,
        client,
        rt,
    }
}

impl Rig {
    fn fault(&self, path: &str, fault: Fault) {
        let mut faults = self.fixture.faults.lock().unwrap();
        faults.insert(path.to_owned(), fault);
    }

    fn clear(&self) {
        self.fixture.faults.lock().unwrap().clear();
        self.fixture.delays.lock().unwrap().clear();
    }

    fn delay(&self, path: &str, delay: Duration) {
        let mut delays = self.fixture.delays.lock().unwrap();
        delays.insert(path.to_owned(), delay);
    }

    /// GETs `path` from depfw; a client timeout (a hang) fails the test.
    async fn fetch(&self, path: &str) -> Answer {
        let url = format!("{}{path}", self.depfw.base);
        let resp = self
            .client
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.unwrap().to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    fn get(&self, path: &str) -> Answer {
        self.rt.block_on(self.fetch(path))
    }

    /// `n` concurrent GETs of `path`.
    fn burst(&self, path: &str, n: usize) -> Vec<Answer> {
        self.rt.block_on(futures_util::future::join_all(
            (0..n).map(|_| self.fetch(path)),
        ))
    }

    /// Asserts a `status` answer whose error names every one of `needles`.
    fn expect_error(&self, path: &str, status: u16, needles: &[&str]) -> String {
        let answer = self.get(path);
        let error = answer.error();
        assert_eq!(answer.status, status, "{path}: {error}");
        assert!(error.starts_with("depfw: upstream "), "{path}: {error}");
        for needle in needles {
            assert!(error.contains(needle), "{path}: {error:?} lacks {needle:?}");
        }
        error
    }

    /// The outcomes of the artifact decisions recorded for `package`.
    fn artifact_outcomes(&self, package: &str) -> Vec<String> {
        let records = self.depfw.state.decisions().list(0, 10_000).unwrap();
        records
            .into_iter()
            .filter(|r| r.kind == RecordKind::Artifact && r.package == package)
            .map(|r| r.outcome)
            .collect()
    }

    /// No artifact of `package` recorded as served (its bytes were never verified).
    fn nothing_served(&self, package: &str) {
        let outcomes = self.artifact_outcomes(package);
        assert!(
            !outcomes.iter().any(|o| o.starts_with("served")),
            "{package}: {outcomes:?}"
        );
        let spool = self.depfw.dir.path().join("artifacts/spool");
        let left: Vec<_> = std::fs::read_dir(&spool).unwrap().flatten().collect();
        assert!(
            left.is_empty(),
            "unverified bytes left in the spool: {left:?}"
        );
    }

    /// `/healthz` answers and a package the fixture serves well is still served, with its
    /// tarball.
    fn still_healthy(&self) {
        let health = self.get("/healthz");
        assert_eq!(health.status, 200);
        let ms = self.get("/npm/ms");
        assert_eq!(ms.status, 200, "{}", ms.error());
        let tgz = self.get("/npm/ms/-/ms-2.1.3.tgz");
        assert_eq!(tgz.status, 200, "{}", tgz.error());
    }
}

fn status_500_is_a_bad_gateway_naming_it() {
    let r = rig("");
    r.fault(PACKUMENT, Fault::Status500);
    r.expect_error("/npm/is-odd", 502, &["HTTP 500"]);
    r.clear();
    r.fault(TARBALL, Fault::Status500);
    r.expect_error(&format!("/npm{TARBALL}"), 502, &["HTTP 500", TARBALL]);
    r.nothing_served("is-odd");
    r.still_healthy();
}

fn an_upstream_that_never_answers_is_a_gateway_timeout() {
    let r = rig("");
    r.fault(PACKUMENT, Fault::Hang);
    r.expect_error("/npm/is-odd", 504, &["upstream.timeout-secs"]);
    r.clear();
    r.fault(TARBALL, Fault::Hang);
    r.expect_error(&format!("/npm{TARBALL}"), 504, &["upstream.timeout-secs"]);
    r.nothing_served("is-odd");
    r.still_healthy();
}

/// A listener that resets every connection (`SO_LINGER` 0) once it has read the request.
async fn resetting_listener() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
            let _ = stream.set_zero_linger();
            drop(stream);
        }
    });
    base
}

fn a_reset_connection_is_a_bad_gateway_naming_it() {
    // Mid-body (the fixture aborts the connection after part of the body).
    let r = rig("");
    r.fault(TARBALL, Fault::Reset);
    r.expect_error(&format!("/npm{TARBALL}"), 502, &[TARBALL]);
    r.nothing_served("is-odd");
    r.still_healthy();
    // Before any answer: a TCP reset.
    let rt = crate::support::runtime();
    let depfw = rt.block_on(async {
        let upstream = resetting_listener().await;
        let policy = registry::policy(TestCheck::default());
        registry::start_depfw(&upstream, policy, LIMITS).await
    });
    let answer = rt.block_on(async {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap()
            .get(format!("{}/npm/is-odd", depfw.base))
            .send()
            .await
            .unwrap()
    });
    assert_eq!(answer.status().as_u16(), 502);
    let body: Value = rt.block_on(answer.json()).unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("reset"), "{error}");
}

fn a_truncated_body_is_a_bad_gateway() {
    let r = rig("");
    r.fault(PACKUMENT, Fault::Truncated);
    r.expect_error("/npm/is-odd", 502, &[PACKUMENT]);
    r.clear();
    r.fault(TARBALL, Fault::Truncated);
    r.expect_error(&format!("/npm{TARBALL}"), 502, &[TARBALL]);
    r.nothing_served("is-odd");
    r.still_healthy();
}

fn a_gzip_bomb_stops_at_the_metadata_limit() {
    let r = rig("");
    // 16 GiB inflated; depfw stops reading at max-metadata-bytes (1 MiB here).
    r.fault(PACKUMENT, Fault::GzipBomb(16));
    r.expect_error("/npm/is-odd", 502, &["upstream.max-metadata-bytes"]);
    r.still_healthy();
}

fn a_body_beyond_the_maximum_is_refused_while_streaming() {
    let r = rig("");
    // 100 MB without a Content-Length: the limit is found while reading.
    r.fault(PACKUMENT, Fault::Endless(100 << 20));
    r.expect_error("/npm/is-odd", 502, &["upstream.max-metadata-bytes"]);
    r.clear();
    r.fault(TARBALL, Fault::Endless(100 << 20));
    r.expect_error(
        &format!("/npm{TARBALL}"),
        502,
        &["upstream.max-artifact-bytes"],
    );
    r.nothing_served("is-odd");
    r.still_healthy();
}

fn a_trickled_body_is_cut_off_below_the_minimum_rate() {
    let r = rig("");
    // 10 bytes a second, against a minimum of 1000 bytes/s after a 1 s grace.
    let slow = Fault::SlowBody {
        chunk: 10,
        every_ms: 1000,
    };
    r.fault(PACKUMENT, slow);
    r.expect_error("/npm/is-odd", 504, &["upstream.min-transfer-rate"]);
    r.clear();
    r.fault(TARBALL, slow);
    r.expect_error(
        &format!("/npm{TARBALL}"),
        504,
        &["upstream.min-transfer-rate"],
    );
    r.nothing_served("is-odd");
    r.still_healthy();
}

fn a_steady_trickle_ends_at_the_transfer_deadline() {
    // No minimum rate: each piece comes within the idle timeout, and only the deadline
    // ends the transfer (1000 pieces would take 250 s).
    let r = rig("min-transfer-rate = 0\ntransfer-deadline-secs = 2\n");
    let trickle = Fault::SlowBody {
        chunk: 10,
        every_ms: 250,
    };
    r.fault(PACKUMENT, trickle);
    r.expect_error("/npm/is-odd", 504, &["upstream.transfer-deadline-secs"]);
    r.clear();
    r.fault(TARBALL, trickle);
    r.expect_error(
        &format!("/npm{TARBALL}"),
        504,
        &["upstream.transfer-deadline-secs"],
    );
    r.nothing_served("is-odd");
    r.still_healthy();
}

fn bytes_that_miss_the_published_digest_are_never_served() {
    let r = rig("");
    let file = TARBALL.rsplit('/').next().unwrap();
    r.fixture.tamper.lock().unwrap().insert(file.to_owned());
    r.expect_error(&format!("/npm{TARBALL}"), 502, &["integrity mismatch"]);
    assert_eq!(r.artifact_outcomes("is-odd"), ["integrity-mismatch"]);
    r.nothing_served("is-odd");
    // Nothing was cached: once upstream is fixed, the bytes are fetched and verified.
    r.fixture.tamper.lock().unwrap().clear();
    let ok = r.get(&format!("/npm{TARBALL}"));
    assert_eq!(ok.status, 200, "{}", ok.error());
    assert_eq!(r.fixture.hits(TARBALL), 2);
    assert_eq!(
        r.artifact_outcomes("is-odd"),
        ["integrity-mismatch", "served"]
    );
    r.still_healthy();
}

fn a_packument_of_190k_versions_is_answered() {
    let r = rig("max-metadata-bytes = 67108864\ntransfer-deadline-secs = 120\n");
    r.fault("/many-versions", Fault::ManyVersions(190_000));
    let answer = r.get("/npm/many-versions");
    assert_eq!(answer.status, 200, "{}", answer.error());
    let doc = answer.json();
    assert_eq!(doc["versions"].as_object().unwrap().len(), 190_000);
    // Parsed once: the second answer comes from the render cache.
    let again = r.get("/npm/many-versions");
    assert_eq!(again.status, 200);
    assert_eq!(r.fixture.hits("/many-versions"), 1);
    r.still_healthy();
}

fn a_redirect_to_another_host_is_not_followed() {
    let r = rig("");
    let (other, other_fixture) = r.rt.block_on(registry::start_fixture());
    let port: u16 = other.rsplit(':').next().unwrap().parse().unwrap();
    let away = |to| Fault::Redirect { port, to };
    r.fault(PACKUMENT, away(PACKUMENT));
    r.expect_error(
        "/npm/is-odd",
        502,
        &["redirected to", &other, "not followed"],
    );
    r.clear();
    r.fault(TARBALL, away(TARBALL));
    r.expect_error(
        &format!("/npm{TARBALL}"),
        502,
        &["redirected to", &other, "not followed"],
    );
    assert!(
        other_fixture.hits.lock().unwrap().is_empty(),
        "depfw reached the other host"
    );
    r.nothing_served("is-odd");
    r.still_healthy();
    // A redirect within the configured upstream is followed.
    r.clear();
    let own: u16 = r.upstream.rsplit(':').next().unwrap().parse().unwrap();
    let before = r.fixture.hits(PACKUMENT);
    let moved = Fault::Redirect {
        port: own,
        to: PACKUMENT,
    };
    r.fault("/is-odd-moved", moved);
    let answer = r.get("/npm/is-odd-moved");
    assert!(!answer.error().contains("redirected"), "{}", answer.error());
    assert_eq!(r.fixture.hits(PACKUMENT), before + 1);
    // And to a host listed in `upstream.redirect-origins`.
    let r = rig(&format!("redirect-origins = [\"{other}\"]\n"));
    r.fault(TARBALL, away(TARBALL));
    let answer = r.get(&format!("/npm{TARBALL}"));
    assert_eq!(answer.status, 200, "{}", answer.error());
    assert_eq!(other_fixture.hits(TARBALL), 1);
}

fn concurrent_metadata_misses_make_one_upstream_fetch() {
    let r = rig("");
    r.delay(PACKUMENT, Duration::from_millis(500));
    let answers = r.burst("/npm/is-odd", 200);
    for a in &answers {
        assert_eq!(a.status, 200, "{}", a.error());
        assert_eq!(a.body, answers[0].body);
    }
    assert_eq!(r.fixture.hits(PACKUMENT), 1);
}

fn concurrent_artifact_misses_make_one_download() {
    let r = rig("");
    let path = format!("/npm{TARBALL}");
    r.delay(TARBALL, Duration::from_millis(500));
    let answers = r.burst(&path, 200);
    let want = std::fs::read(registry::fixtures_dir().join("tarballs/is-odd-3.0.1.tgz")).unwrap();
    for a in &answers {
        assert_eq!(a.status, 200, "{}", a.error());
        assert!(a.body == want, "the published bytes");
    }
    assert_eq!(r.fixture.hits(TARBALL), 1);
    assert_eq!(r.fixture.hits(PACKUMENT), 1);
    // Every request has its own decision record.
    let outcomes = r.artifact_outcomes("is-odd");
    assert_eq!(outcomes.len(), 200, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| o.starts_with("served")),
        "{outcomes:?}"
    );
    let left: Vec<_> = std::fs::read_dir(r.depfw.dir.path().join("artifacts/spool"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn a_failed_fetch_fails_its_followers_but_not_the_next_request() {
    let r = rig("");
    let path = format!("/npm{TARBALL}");
    // Metadata.
    r.delay(PACKUMENT, Duration::from_millis(500));
    r.fault(PACKUMENT, Fault::Status500);
    for a in r.burst("/npm/is-odd", 10) {
        assert_eq!(a.status, 502);
        assert!(a.error().contains("HTTP 500"), "{}", a.error());
    }
    assert_eq!(r.fixture.hits(PACKUMENT), 1);
    r.clear();
    assert_eq!(r.get("/npm/is-odd").status, 200);
    assert_eq!(r.fixture.hits(PACKUMENT), 2);
    // Artifacts.
    r.delay(TARBALL, Duration::from_millis(500));
    r.fault(TARBALL, Fault::Status500);
    for a in r.burst(&path, 10) {
        assert_eq!(a.status, 502);
        assert!(a.error().contains("HTTP 500"), "{}", a.error());
    }
    assert_eq!(r.fixture.hits(TARBALL), 1);
    r.nothing_served("is-odd");
    r.clear();
    let ok = r.get(&path);
    assert_eq!(ok.status, 200, "{}", ok.error());
    assert_eq!(r.fixture.hits(TARBALL), 2);
}

fn failing_upstream_gets_stale_metadata_within_the_grace() {
    let r = rig("metadata-ttl-secs = 1\nstale-if-error-secs = 3600\n");
    let fresh = r.get("/npm/is-odd");
    assert_eq!(fresh.status, 200);
    assert!(fresh.headers.get("warning").is_none());
    assert!(fresh.json()["versions"].get("3.0.1").is_some());
    std::thread::sleep(Duration::from_millis(1200));
    r.fault(PACKUMENT, Fault::Status500);
    // Filtered by the policy in force now, not the one the body was first served under.
    let strict = TestCheck {
        deny: vec!["is-odd@3.0.1".to_owned()],
        ..TestCheck::default()
    };
    r.depfw.state.set_policy(registry::policy(strict));
    let stale = r.get("/npm/is-odd");
    assert_eq!(stale.status, 200, "{}", stale.error());
    let warning = stale.headers["warning"].to_str().unwrap().to_owned();
    assert!(
        warning.starts_with("110 - \"depfw: upstream failed ("),
        "{warning}"
    );
    assert!(warning.contains("HTTP 500"), "{warning}");
    assert!(
        warning.contains("serving metadata last fetched"),
        "{warning}"
    );
    let age: u64 = stale.headers["x-depfw-stale"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(age >= 1, "{age}");
    let doc = stale.json();
    assert!(doc["versions"].get("3.0.1").is_none(), "denied now: {doc}");
    assert!(doc["versions"].get("3.0.0").is_some());
    assert_eq!(r.fixture.hits(PACKUMENT), 2);
    // Within a TTL of the failure, served stale at once: upstream is not asked again.
    let again = r.get("/npm/is-odd");
    assert_eq!(again.status, 200);
    let warning = again.headers["warning"].to_str().unwrap().to_owned();
    assert!(warning.contains("HTTP 500"), "{warning}");
    assert!(warning.contains("s ago; retried after"), "{warning}");
    assert_eq!(r.fixture.hits(PACKUMENT), 2);
    // Upstream back: fresh again once the TTL has passed, no warning.
    r.clear();
    std::thread::sleep(Duration::from_millis(1200));
    let back = r.get("/npm/is-odd");
    assert_eq!(back.status, 200);
    assert!(back.headers.get("warning").is_none());
    assert!(back.headers.get("x-depfw-stale").is_none());
}

fn after_the_grace_a_failing_upstream_is_an_error_again() {
    let r = rig("metadata-ttl-secs = 1\nstale-if-error-secs = 1\n");
    assert_eq!(r.get("/npm/is-odd").status, 200);
    r.fault(PACKUMENT, Fault::Status500);
    std::thread::sleep(Duration::from_millis(2200));
    r.expect_error("/npm/is-odd", 502, &["HTTP 500"]);
    // Disabled: an error as soon as the TTL is over.
    let r = rig("metadata-ttl-secs = 1\nstale-if-error-secs = 0\n");
    assert_eq!(r.get("/npm/is-odd").status, 200);
    r.fault(PACKUMENT, Fault::Status500);
    std::thread::sleep(Duration::from_millis(1200));
    r.expect_error("/npm/is-odd", 502, &["HTTP 500"]);
}

crate::require::trials! {
    [] => status_500_is_a_bad_gateway_naming_it,
        an_upstream_that_never_answers_is_a_gateway_timeout,
        a_reset_connection_is_a_bad_gateway_naming_it,
        a_truncated_body_is_a_bad_gateway,
        a_gzip_bomb_stops_at_the_metadata_limit,
        a_body_beyond_the_maximum_is_refused_while_streaming,
        a_trickled_body_is_cut_off_below_the_minimum_rate,
        a_steady_trickle_ends_at_the_transfer_deadline,
        bytes_that_miss_the_published_digest_are_never_served,
        a_packument_of_190k_versions_is_answered,
        a_redirect_to_another_host_is_not_followed,
        concurrent_metadata_misses_make_one_upstream_fetch,
        concurrent_artifact_misses_make_one_download,
        a_failed_fetch_fails_its_followers_but_not_the_next_request,
        failing_upstream_gets_stale_metadata_within_the_grace,
        after_the_grace_a_failing_upstream_is_an_error_again;
}
