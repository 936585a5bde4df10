//! The decision log's hash chain: tampering, deletion and replacement are reported at the
//! first affected record, through the library and through `depfw log`.

use chrono::Utc;
use depfw::diag::Code;
use depfw::policy::{Finding, Verdict};
use depfw::store::decisions::{
    ChainProblem, ChainStatus, ClientInfo, DecisionLog, DecisionRecord, RecordFilter, RecordKind,
    GENESIS,
};
use depfw::store::Store;
use serde_json::Value;

pub(super) fn record(pkg: &str, agent: Option<&str>, verdict: Verdict) -> DecisionRecord {
    DecisionRecord {
        seq: 0,
        time: Utc::now(),
        request_id: format!("req-{pkg}"),
        client: ClientInfo {
            agent: agent.map(str::to_owned),
            ..ClientInfo::default()
        },
        kind: RecordKind::Artifact,
        ecosystem: "npm".into(),
        package: pkg.into(),
        version: Some("1.0.0".into()),
        verdict,
        findings: vec![],
        hidden: vec![],
        sha256: None,
        sha512: None,
        upstream_url: None,
        outcome: "served".into(),
        prev_hash: String::new(),
        hash: String::new(),
        signature: String::new(),
    }
}

/// A data dir whose log holds a, b, c, d, e (b and d by agent `bot`, d denied).
pub(super) fn populated() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let log = DecisionLog::open(&store).unwrap();
    for (p, agent, verdict) in [
        ("a", None, Verdict::Allow),
        ("b", Some("bot"), Verdict::Allow),
        ("c", None, Verdict::Allow),
        ("d", Some("bot"), Verdict::Deny),
        ("e", None, Verdict::Allow),
    ] {
        log.append_durable(&mut record(p, agent, verdict)).unwrap();
    }
    dir
}

pub(super) fn with_tree(dir: &tempfile::TempDir, f: impl FnOnce(&sled::Tree)) {
    let store = Store::open(dir.path()).unwrap();
    f(&store.tree("decisions").unwrap());
    store.flush().unwrap();
}

fn verify(dir: &tempfile::TempDir) -> ChainStatus {
    let store = Store::open(dir.path()).unwrap();
    DecisionLog::open(&store).unwrap().verify().unwrap()
}

fn rewrite(dir: &tempfile::TempDir, seq: u64, change: impl FnOnce(&mut Value)) {
    with_tree(dir, |tree| {
        let key = seq.to_be_bytes();
        let mut v: Value = serde_json::from_slice(&tree.get(key).unwrap().unwrap()).unwrap();
        change(&mut v);
        tree.insert(key, serde_json::to_vec(&v).unwrap()).unwrap();
    });
}

#[test]
fn intact_chain_links_every_record() {
    let dir = populated();
    let store = Store::open(dir.path()).unwrap();
    let log = DecisionLog::open(&store).unwrap();
    let all = log.list(0, 10).unwrap();
    assert_eq!(all[0].prev_hash, GENESIS);
    for pair in all.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
        assert_ne!(pair[1].hash, pair[0].hash);
    }
    match log.verify().unwrap() {
        ChainStatus::Intact { records, head, .. } => {
            assert_eq!(records, 5);
            assert_eq!(head, all[4].hash);
        }
        other => panic!("{other}"),
    }
    // Filters: agent exact, newest first, verdict.
    let bot = log
        .query(
            &RecordFilter {
                agent: Some("bot".into()),
                ..RecordFilter::default()
            },
            10,
        )
        .unwrap();
    let names: Vec<_> = bot.iter().map(|r| r.package.as_str()).collect();
    assert_eq!(names, ["d", "b"]);
    let denied = log
        .query(
            &RecordFilter {
                verdict: Some(Verdict::Deny),
                ..RecordFilter::default()
            },
            10,
        )
        .unwrap();
    assert_eq!(denied.len(), 1);
}

#[test]
fn altered_record_is_reported_as_tampered() {
    let dir = populated();
    rewrite(&dir, 3, |v| v["package"] = Value::String("evil".into()));
    assert_eq!(
        verify(&dir),
        ChainStatus::Broken {
            seq: 3,
            problem: ChainProblem::Tampered
        }
    );
}

#[test]
fn rehashed_replacement_breaks_the_next_link() {
    let dir = populated();
    // A forger who recomputes the record's own hash still breaks record 4's prev_hash.
    with_tree(&dir, |tree| {
        let key = 3u64.to_be_bytes();
        let mut r: DecisionRecord =
            serde_json::from_slice(&tree.get(key).unwrap().unwrap()).unwrap();
        r.verdict = Verdict::Deny;
        r.hash = r.compute_hash().unwrap();
        tree.insert(key, serde_json::to_vec(&r).unwrap()).unwrap();
    });
    assert_eq!(
        verify(&dir),
        ChainStatus::Broken {
            seq: 4,
            problem: ChainProblem::Unlinked
        }
    );
}

#[test]
fn deleted_records_are_reported_missing() {
    let dir = populated();
    with_tree(&dir, |tree| {
        tree.remove(2u64.to_be_bytes()).unwrap();
    });
    assert_eq!(
        verify(&dir),
        ChainStatus::Broken {
            seq: 2,
            problem: ChainProblem::Missing
        }
    );

    let dir = populated();
    with_tree(&dir, |tree| {
        tree.remove(5u64.to_be_bytes()).unwrap();
    });
    assert_eq!(
        verify(&dir),
        ChainStatus::Broken {
            seq: 5,
            problem: ChainProblem::Missing
        },
        "a deleted tail is caught by the stored head"
    );
}

pub(super) fn depfw(dir: &tempfile::TempDir, args: &[&str]) -> std::process::Output {
    crate::support::depfw_with_data(dir.path(), args)
}

#[test]
fn log_cli_verifies_exports_and_shows() {
    let dir = populated();
    let out = depfw(&dir, &["log", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("5 records"));

    let out = depfw(&dir, &["log", "export", "--agent", "bot"]);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let pkgs: Vec<_> = lines
        .iter()
        .map(|v| v["package"].as_str().unwrap())
        .collect();
    assert_eq!(pkgs, ["b", "d"], "oldest first, agent only");
    assert!(lines[0]["hash"].as_str().unwrap().len() == 64);

    let out = depfw(&dir, &["log", "show", "--verdict", "deny"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("d@1.0.0") && !text.contains("a@1.0.0"),
        "{text}"
    );

    rewrite(&dir, 2, |v| v["outcome"] = Value::String("refused".into()));
    let out = depfw(&dir, &["log", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("record 2"));

    let out = depfw(&dir, &["log", "show", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(depfw(&empty, &["log", "verify"]).status.code(), Some(2));
}

/// `--since` and `--until` take a plain date as the README and the admin page write them:
/// since from the start of that day, until to its end (UTC).
#[test]
fn log_cli_takes_dates_as_well_as_timestamps() {
    let dir = populated();
    let today = Utc::now().date_naive().to_string();
    // The number of exported records, each a JSON object.
    let packages = |args: &[&str]| {
        let out = depfw(&dir, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        for line in text.lines() {
            assert!(serde_json::from_str::<Value>(line).unwrap().is_object());
        }
        text.lines().count()
    };
    assert_eq!(packages(&["log", "export", "--since", "2026-11-01"]), 5);
    assert_eq!(packages(&["log", "export", "--since", &today]), 5);
    assert_eq!(packages(&["log", "export", "--since", "2999-01-01"]), 0);
    assert_eq!(
        packages(&["log", "export", "--since", "2999-01-01T00:00:00Z"]),
        0
    );
    let shown = depfw(&dir, &["log", "show", "--since", &today, "--until", &today]);
    assert_eq!(shown.status.code(), Some(0), "{shown:?}");
    let text = String::from_utf8(shown.stdout).unwrap();
    assert!(
        text.contains("a@1.0.0") && text.contains("e@1.0.0"),
        "{text}"
    );
    let out = depfw(&dir, &["log", "export", "--since", "01/11/2026"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a date (2026-01-31)"));
}

/// A record whose finding carries a code this build does not define (renamed or removed
/// since, or written by a newer depfw) stays readable: it reads back with the code
/// verbatim, so it re-hashes to the hash it was written with and the chain verifies, and
/// `depfw log` shows it as written.
#[test]
fn records_with_a_code_this_build_does_not_define_stay_readable_and_verified() {
    let retired: Finding = serde_json::from_value(serde_json::json!({
        "check": "reputation",
        "code": "too-new",
        "severity": "medium",
        "verdict": "quarantine",
        "message": "published 2 hours ago",
    }))
    .unwrap();
    assert!(matches!(retired.code, Code::Unknown(_)), "{retired:?}");
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let log = DecisionLog::open(&store).unwrap();
        let mut old = record("old", None, Verdict::Quarantine);
        old.findings = vec![retired.clone()];
        log.append_durable(&mut old).unwrap();
        log.append_durable(&mut record("new", None, Verdict::Allow))
            .unwrap();
        let read = log.list(0, 10).unwrap();
        assert_eq!(read[0].findings, [retired]);
        assert_eq!(read[0].findings[0].code.as_str(), "too-new");
        assert!(matches!(
            log.verify().unwrap(),
            ChainStatus::Intact { records: 2, .. }
        ));
    }
    let out = depfw(&dir, &["log", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = depfw(&dir, &["log", "show"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("too-new: published 2 hours ago"), "{text}");
    let out = depfw(&dir, &["log", "export"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains(r#""code":"too-new""#));
}

/// Issue #16: `depfw log show` said a metadata request was served but not which versions it
/// hid, nor why.
#[test]
fn log_show_names_the_hidden_versions_and_why() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let log = DecisionLog::open(&store).unwrap();
        let mut rec = record("lodash", Some("bot"), Verdict::Allow);
        rec.kind = RecordKind::Metadata;
        rec.version = None;
        rec.hidden = (0..12)
            .map(|i| depfw::store::decisions::HiddenVersion {
                version: format!("4.17.{i}"),
                verdict: Verdict::Deny,
                reason: format!("NSWG-ECO-{i}: vulnerable"),
            })
            .collect();
        log.append_durable(&mut rec).unwrap();
    }
    let out = depfw(&dir, &["log", "show"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("hidden lodash@4.17.0 (deny): NSWG-ECO-0: vulnerable"),
        "{text}"
    );
    assert!(text.contains("hidden lodash@4.17.9 "), "{text}");
    assert!(!text.contains("hidden lodash@4.17.10 "), "{text}");
    assert!(text.contains("and 2 more hidden versions"), "{text}");
}
