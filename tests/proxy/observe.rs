//! What `depfw serve` shows a platform team: `/metrics` after real traffic (and every metric
//! the Grafana dashboard in docs/ uses), the per-request log line without tokens, and the
//! decision stream to a SIEM receiver: `cargo test --test proxy observe`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use depfw::agents::PolicyPreset;
use depfw::config::Config;
use depfw::feeds::load_path;
use depfw::observe::siem::Stream;
use depfw::policy::Verdict;
use depfw::server::observe::{routes, MetricsAccess};
use depfw::server::AppState;
use depfw::store::decisions::{ChainStatus, DecisionLog, DecisionRecord};
use depfw::store::feeds::FeedStore;
use depfw::store::repo::DecisionRepo;
use depfw::store::Store;
use serde_json::Value;
use tower::ServiceExt as _;

use super::provenance::record;
use crate::support::registry::{
    policy, request, router_setup, send, start_depfw, start_fixture, TestCheck,
};
use crate::support::repo;

/// `/metrics` as the admin listener serves it (loopback, no metrics token: open).
pub(crate) async fn scrape(state: &AppState) -> String {
    let access = MetricsAccess::from_config(&Config::default()).unwrap();
    let resp = routes(state.clone(), access)
        .oneshot(request("GET", "/metrics", &[]))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}

/// The exposition parsed: every declared metric (`# TYPE`) with the series names its
/// samples may have, and every sample line's name and labels.
struct Exposition {
    names: BTreeSet<String>,
    samples: Vec<(String, String, f64)>,
}

/// The value of the sample `name{labels…}` in a scrape (0 when absent).
pub(crate) fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    parse(text).value(name, labels)
}

fn parse(text: &str) -> Exposition {
    let mut names = BTreeSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            names.insert(name.to_owned());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.trim_end_matches('}')),
            None => (series, ""),
        };
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
        samples.push((name.to_owned(), labels.to_owned(), value));
    }
    Exposition { names, samples }
}

impl Exposition {
    fn value(&self, name: &str, labels: &[&str]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| n == name && labels.iter().all(|want| l.contains(want)))
            .map(|(_, _, v)| v)
            .sum()
    }
}

/// The metric names a PromQL expression uses: identifiers followed by `{`, `[` or `)`
/// that are not functions, keywords or label names.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    let mut in_braces = false;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c == '"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += 1;
            }
            i += 1;
            continue;
        }
        if c == '{' {
            in_braces = true;
        } else if c == '}' {
            in_braces = false;
        }
        if (c.is_ascii_alphabetic() || c == '_') && !in_braces {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = &expr[start..i];
            if word.starts_with("depfw_") {
                names.insert(word.to_owned());
            }
            continue;
        }
        i += 1;
    }
    names
}

#[tokio::test]
async fn every_metric_of_the_dashboard_is_scraped_after_traffic() {
    let check = TestCheck {
        deny: vec!["is-number@7.0.0".into()],
        ..TestCheck::default()
    };
    let (upstream, _fixture) = start_fixture().await;
    let depfw = start_depfw(&upstream, policy(check), "").await;
    let state = depfw.state.clone();
    // A synced advisory source, whose age /metrics reports.
    FeedStore::new(&depfw.store)
        .unwrap()
        .save(
            "fixtures",
            &load_path(&repo().join("tests/fixtures/osv")).unwrap(),
            chrono::Utc::now() - chrono::Duration::hours(2),
        )
        .unwrap();
    let (_, token) = state
        .agents()
        .add("dash-bot", PolicyPreset::Default)
        .unwrap();
    let agent = |path: &str| format!("/a/{}{path}", token.expose_secret());
    for path in [
        agent("/npm/is-number"),
        agent("/npm/is-number"),
        agent("/npm/is-number/-/is-number-7.0.0.tgz"),
        "/npm/is-number".to_owned(),
        "/healthz".to_owned(),
        "/nothing-here".to_owned(),
    ] {
        send(&state, request("GET", &path, &[])).await;
    }
    let text = scrape(&state).await;
    let exposition = parse(&text);

    // Traffic is counted by ecosystem, route and status, without any package name.
    assert!(
        exposition.value(
            "depfw_http_requests_total",
            &["ecosystem=\"npm\"", "route=\"metadata\"", "status=\"200\""]
        ) >= 3.0,
        "{text}"
    );
    assert!(
        exposition.value(
            "depfw_http_requests_total",
            &["route=\"artifact\"", "status=\"403\""]
        ) >= 1.0,
        "{text}"
    );
    assert!(exposition.value("depfw_http_requests_total", &["route=\"health\""]) >= 1.0);
    assert!(
        exposition.value(
            "depfw_decisions_total",
            &["agent=\"dash-bot\"", "verdict=\"deny\""]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        exposition.value(
            "depfw_findings_total",
            &["code=\"deny-listed\"", "agent=\"dash-bot\""]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        exposition.value(
            "depfw_cache_lookups_total",
            &["cache=\"render\"", "result=\"hit\""]
        ) >= 1.0,
        "{text}"
    );
    assert!(exposition.value("depfw_upstream_request_duration_seconds_count", &[]) >= 1.0);
    assert!(exposition.value("depfw_decision_append_duration_seconds_count", &[]) >= 1.0);
    let age = exposition.value("depfw_feed_age_seconds", &["source=\"fixtures\""]);
    assert!((7200.0..7300.0).contains(&age), "feed age {age}");
    assert_eq!(
        exposition.value("depfw_breaker_trips_total", &["agent=\"dash-bot\""]),
        0.0
    );
    assert!(exposition.names.contains("depfw_breaker_trips_total"));
    assert!(
        !text.contains("is-number") && !text.contains(token.expose_secret()),
        "a package name or token in a label: {text}"
    );

    // The dashboard uses exactly these names.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let mut used = 0;
    for panel in panels {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{panel}");
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(!names.is_empty(), "no depfw metric in `{expr}`");
            for name in names {
                used += 1;
                assert!(
                    exposition.names.contains(&name),
                    "panel {:?} uses {name}, which /metrics does not have:\n{text}",
                    panel["title"]
                );
            }
        }
    }
    assert!(used >= 15);
}

#[test]
fn metric_names_are_read_from_promql() {
    let names = metric_names(
        "sum by (cache) (rate(depfw_cache_lookups_total{result=\"hit\",x=\"depfw_no\"}[5m])) \
         / histogram_quantile(0.5, depfw_a_bucket)",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["depfw_a_bucket", "depfw_cache_lookups_total"]
    );
}

/// A writer the JSON log goes to, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// One JSON line per request (successful ones too), with the request id and the agent,
/// and an agent's token from an `/a/<token>/` path never in any line.
#[tokio::test]
async fn request_log_lines_name_the_agent_and_never_the_token() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(captured.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let (state, _fixture, _dir) = router_setup(TestCheck::default(), "http://depfw.test").await;
    let (_, token) = state
        .agents()
        .add("log-bot", PolicyPreset::Default)
        .unwrap();
    let secret = token.expose_secret().to_owned();
    let (status, headers, _) = send(
        &state,
        request("GET", &format!("/a/{secret}/npm/is-number"), &[]),
    )
    .await;
    assert_eq!(status, 200);
    let request_id = headers["x-depfw-request-id"].to_str().unwrap().to_owned();
    let bogus = "dfw_notarealtokenbutsecretanyway0123";
    let (status, _, _) = send(&state, request("GET", &format!("/a/{bogus}/npm/x"), &[])).await;
    assert_eq!(status, 401);
    let (status, _, _) = send(
        &state,
        request(
            "GET",
            "/npm/is-number",
            &[("authorization", &format!("Bearer {secret}"))],
        ),
    )
    .await;
    assert_eq!(status, 200);

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        !text.contains(&secret),
        "the agent's token is in the log:\n{text}"
    );
    assert!(
        !text.contains(bogus),
        "a presented token is in the log:\n{text}"
    );
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "depfw::access")
        .collect();
    assert_eq!(access.len(), 3, "one line per request:\n{text}");
    let first = access[0];
    assert_eq!(first["level"], "INFO");
    assert_eq!(first["method"], "GET");
    assert_eq!(first["path"], "/a/****/npm/is-number");
    assert_eq!(first["status"], 200);
    assert_eq!(first["agent"], "log-bot");
    assert_eq!(first["request_id"], request_id.as_str());
    assert!(first["duration_ms"].as_f64().is_some(), "{first}");
    assert_eq!(access[1]["path"], "/a/****/npm/x");
    assert_eq!(access[1]["status"], 401);
    assert_eq!(
        access[2]["agent"], "log-bot",
        "a header token names the agent too"
    );
    // The access line is written outside the request's span (it carries the id itself);
    // what is logged while the request is served is inside the `request` span, with the
    // same id, the token masked in its path, and no second span around it.
    for line in &access {
        assert!(line.get("span").is_none(), "{line}");
    }
    let refusal = lines
        .iter()
        .find(|l| l["status"] == "401 Unauthorized" && l["target"] != "depfw::access")
        .unwrap_or_else(|| panic!("no refusal line:\n{text}"));
    assert_eq!(refusal["span"]["name"], "request", "{refusal}");
    assert_eq!(refusal["span"]["path"], "/a/****/npm/x", "{refusal}");
    assert_eq!(refusal["span"]["id"], refusal["request_id"], "{refusal}");
    assert_eq!(access[1]["request_id"], refusal["request_id"]);
    assert!(
        !text.contains("\"name\":\"http\""),
        "no `http` span beside the `request` span:\n{text}"
    );
}

/// A 5xx answer is logged at error as `response failed` (what tower-http's trace layer
/// logged before the mirror's layers became one), besides its access line, and is counted
/// under its status; an anonymous request's access line names no agent.
#[tokio::test]
async fn a_server_error_is_logged_as_a_failure_and_counted() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(captured.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let (state, _fixture, _dir) = router_setup(TestCheck::default(), "http://depfw.test").await;
    state.set_policy(depfw::server::PolicyState::Unavailable(
        "the test took it away".to_owned(),
    ));
    let (status, headers, _) = send(&state, request("GET", "/npm/is-number", &[])).await;
    assert_eq!(status, 503);
    let request_id = headers["x-depfw-request-id"].to_str().unwrap().to_owned();

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let failed = lines
        .iter()
        .find(|l| l["fields"]["message"] == "response failed" || l["message"] == "response failed")
        .unwrap_or_else(|| panic!("no `response failed` line:\n{text}"));
    assert_eq!(failed["level"], "ERROR");
    assert_eq!(failed["target"], "tower_http::trace::on_failure");
    assert_eq!(
        failed["classification"],
        "Status code: 503 Service Unavailable"
    );
    assert_eq!(failed["request_id"], request_id.as_str());
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "depfw::access")
        .collect();
    assert_eq!(access.len(), 1, "{text}");
    assert_eq!(access[0]["status"], 503);
    assert_eq!(access[0]["agent"], "-");
    assert_eq!(access[0]["request_id"], request_id.as_str());
    let exposition = scrape(&state).await;
    assert!(
        sample(
            &exposition,
            "depfw_http_requests_total",
            &["ecosystem=\"npm\"", "status=\"503\""]
        ) >= 1.0,
        "{exposition}"
    );
}

/// A receiver that keeps every JSON line POSTed to it, in arrival order; with `fail_first`
/// it answers 503 to that many batches first.
async fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(fail_first));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ingest", listener.local_addr().unwrap());
    let kept = Arc::clone(&lines);
    let app = axum::Router::new().route(
        "/ingest",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (kept, failures) = (Arc::clone(&kept), Arc::clone(&failures));
            async move {
                assert_eq!(headers["content-type"], "application/x-ndjson");
                assert_eq!(headers["authorization"], "Splunk siem-test-token");
                let mut failures = failures.lock().unwrap();
                if *failures > 0 {
                    *failures -= 1;
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                kept.lock().unwrap().extend(body.lines().map(str::to_owned));
                axum::http::StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, lines)
}

fn siem_config(dir: &std::path::Path, siem: &str) -> Config {
    Config::from_toml(
        &format!(
            "[server]\ndata-dir = \"{}\"\n\n[siem]\n{siem}\n",
            dir.display()
        ),
        "test",
    )
    .unwrap()
}

/// Appends `n` records from 8 threads at once, half of them durable.
fn burst(log: &Arc<DecisionLog>, n: usize) {
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = Arc::clone(log);
            std::thread::spawn(move || {
                for i in (t..n).step_by(8) {
                    let mut r = record(&format!("pkg-{i}"), Some("siem-bot"), Verdict::Allow);
                    if i % 2 == 0 {
                        log.append_durable(&mut r).unwrap();
                    } else {
                        log.append(&mut r).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// The streamed lines are the log's records, every one, in seq order, with the log's
/// hashes (and each hash recomputes from its record).
fn assert_same_as_log(lines: &[String], log: &DecisionLog, n: usize) {
    let streamed: Vec<DecisionRecord> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let logged = log.list(1, n + 1).unwrap();
    assert_eq!(logged.len(), n);
    assert_eq!(streamed.len(), n, "every record, once");
    for (s, l) in streamed.iter().zip(&logged) {
        assert_eq!(s.seq, l.seq, "in the log's order");
        assert_eq!(s.hash, l.hash);
        assert_eq!(s.prev_hash, l.prev_hash);
        assert_eq!(s.compute_hash().unwrap(), s.hash, "seq {}", s.seq);
    }
    assert!(
        matches!(log.verify().unwrap(), ChainStatus::Intact { records, .. } if records == n as u64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_siem_receiver_gets_every_record_in_order_through_failures() {
    let (url, lines) = receiver(3).await;
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("siem-auth");
    std::fs::write(&auth, "Splunk siem-test-token\n").unwrap();
    let config = siem_config(
        dir.path(),
        &format!(
            "url = \"{url}\"\nauthorization-file = \"{}\"\nbatch-records = 50\n",
            auth.display()
        ),
    );
    let store = Store::open(dir.path()).unwrap();
    let log = Arc::new(DecisionLog::open(&store).unwrap());
    let stream = Stream::start(&config.siem).unwrap().unwrap();
    DecisionRepo::subscribe(&*log, stream.subscriber());
    let n = 400;
    let started = Instant::now();
    {
        let log = Arc::clone(&log);
        tokio::task::spawn_blocking(move || burst(&log, n))
            .await
            .unwrap();
    }
    // The backlog drops once the receiver's answer is back, a moment after it holds the
    // lines: wait for both (the test was flaky on a loaded machine).
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines.lock().unwrap().len() < n || stream.backlog() != 0 {
        assert!(
            Instant::now() < deadline,
            "the receiver never got every record (backlog {})",
            stream.backlog()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    let lines = lines.lock().unwrap().clone();
    assert_same_as_log(&lines, &log, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sink_holds_every_record_in_order_across_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("decisions.jsonl");
    let config = siem_config(
        dir.path(),
        &format!(
            "file = \"{}\"\nfile-max-bytes = 65536\nfile-keep = 100\nbatch-records = 20\n",
            file.display()
        ),
    );
    let store = Store::open(dir.path()).unwrap();
    let log = Arc::new(DecisionLog::open(&store).unwrap());
    let stream = Stream::start(&config.siem).unwrap().unwrap();
    DecisionRepo::subscribe(&*log, stream.subscriber());
    let n = 300;
    {
        let log = Arc::clone(&log);
        tokio::task::spawn_blocking(move || burst(&log, n))
            .await
            .unwrap();
    }
    stream.close(Duration::from_secs(30)).await;
    assert_eq!(stream.backlog(), 0);
    // Oldest rotated file first, the current one last.
    let mut files: Vec<std::path::PathBuf> = (1..100)
        .rev()
        .map(|i| dir.path().join(format!("decisions.jsonl.{i}")))
        .filter(|p| p.exists())
        .collect();
    assert!(files.len() >= 2, "rotated at 64 KiB: {files:?}");
    files.push(file);
    let lines: Vec<String> = files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_same_as_log(&lines, &log, n);
}

/// Nothing listens at the sink: appends never wait for it, the buffer stays bounded, and
/// what did not fit is counted as dropped (a metric), not lost silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_sink_never_blocks_appends_and_counts_what_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let config = siem_config(
        dir.path(),
        &format!(
            "url = \"http://127.0.0.1:{port}/ingest\"\nbatch-records = 5\nbuffer-records = 10\n"
        ),
    );
    let store = Store::open(dir.path()).unwrap();
    let log = Arc::new(DecisionLog::open(&store).unwrap());
    let stream = Stream::start(&config.siem).unwrap().unwrap();
    DecisionRepo::subscribe(&*log, stream.subscriber());
    let (state, _fixture, _scrape_dir) =
        router_setup(TestCheck::default(), "http://depfw.test").await;
    let dropped_before =
        parse(&scrape(&state).await).value("depfw_siem_dropped_records_total", &[]);
    let started = Instant::now();
    {
        let log = Arc::clone(&log);
        tokio::task::spawn_blocking(move || burst(&log, 200))
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "appends waited for a dead sink: {:?}",
        started.elapsed()
    );
    assert!(stream.backlog() <= 15, "backlog {}", stream.backlog());
    let after = parse(&scrape(&state).await);
    let dropped = after.value("depfw_siem_dropped_records_total", &[]) - dropped_before;
    assert!(dropped >= 185.0, "dropped {dropped}");
    assert!(after.value("depfw_siem_backlog_records", &[]) >= 0.0);
    assert!(after.names.contains("depfw_siem_errors_total"));
    stream.close(Duration::from_millis(200)).await;
}
