//! The PostgreSQL backend against a real cluster (`.ci/postgres.sh start`): two
//! [`PgStore`]s on one database stand for two replicas.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::testing::fresh_database;
use super::PgStore;
use crate::agents::{AuthError, BreakerEvent, BreakerLimits, PolicyPreset};
use crate::config::DatabaseUrl;
use crate::package::{Ecosystem, PackageName, Version};
use crate::policy::Verdict;
use crate::store::decisions::{ChainStatus, ClientInfo, DecisionRecord, RecordFilter, RecordKind};
use crate::store::quarantine::{ApprovalScope, QuarantineStatus};
use crate::store::repo::{
    AgentRepo, DecisionRepo, OverrideRepo, QuarantineRepo, SessionRecord, SessionRepo,
};

/// A replica's store, polling slowly: the tests call `refresh` themselves.
fn replica(url: &DatabaseUrl) -> PgStore {
    PgStore::connect(url, 4, Duration::from_secs(3600)).unwrap()
}

fn record(pkg: &str, agent: Option<&str>) -> DecisionRecord {
    DecisionRecord {
        seq: 0,
        time: Utc::now(),
        request_id: "r1".into(),
        client: ClientInfo {
            agent: agent.map(str::to_owned),
            ..ClientInfo::default()
        },
        kind: RecordKind::Artifact,
        ecosystem: "npm".into(),
        package: pkg.into(),
        version: Some("1.0.0".into()),
        verdict: Verdict::Allow,
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

#[test]
fn replicas_starting_together_migrate_once() {
    let Some(url) = fresh_database("replicas_starting_together_migrate_once") else {
        return;
    };
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || replica(&url))
        })
        .collect();
    let stores: Vec<PgStore> = starts.into_iter().map(|s| s.join().unwrap()).collect();
    let pool = stores[0].pool();
    let applied: i64 = stores[0]
        .block(async move {
            let client = pool.get().await.map_err(super::db)?;
            let row = client
                .query_one("SELECT count(*) FROM depfw_migrations", &[])
                .await
                .map_err(super::db)?;
            Ok(row.get(0))
        })
        .unwrap();
    assert_eq!(applied, super::MIGRATIONS.len() as i64);
}

#[test]
fn concurrent_appends_from_two_replicas_form_one_chain_without_gaps() {
    let Some(url) = fresh_database("concurrent_appends") else {
        return;
    };
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    // One signing key for both replicas, as the README's deployment says.
    std::fs::copy(
        {
            crate::store::signing::LogKey::load_or_create(dirs[0].path()).unwrap();
            dirs[0].path().join(crate::store::signing::KEY_FILE)
        },
        dirs[1].path().join(crate::store::signing::KEY_FILE),
    )
    .unwrap();
    let logs: Vec<Arc<dyn DecisionRepo>> = dirs
        .iter()
        .map(|d| {
            replica(&url)
                .decision_log(Some(d.path()), &crate::config::Config::default().log)
                .unwrap()
        })
        .collect();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = Arc::clone(&logs[t % 2]);
            std::thread::spawn(move || {
                (0..40)
                    .map(|i| {
                        let mut r = record(&format!("p{t}-{i}"), Some("bot"));
                        log.append_durable(&mut r).unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=320).collect::<Vec<_>>(), "no gaps, no repeats");
    let key = logs[0].public_key();
    let reader = replica(&url).decision_reader().unwrap();
    assert!(matches!(
        reader.verify_signed(key.as_ref()).unwrap(),
        ChainStatus::Intact {
            records: 320,
            unsigned: 0,
            ..
        }
    ));
    let newest = reader.query(&RecordFilter::default(), 5).unwrap();
    assert_eq!(newest.first().map(|r| r.seq), Some(320));
    assert_eq!(reader.list(318, 10).unwrap().len(), 3);
}

#[test]
fn verify_reports_a_rewritten_record() {
    let Some(url) = fresh_database("verify_reports_a_rewritten_record") else {
        return;
    };
    let store = replica(&url);
    let log = store
        .decision_log(None, &crate::config::Config::default().log)
        .unwrap();
    for i in 0..3 {
        log.append_durable(&mut record(&format!("p{i}"), None))
            .unwrap();
    }
    let pool = store.pool();
    store
        .block(async move {
            let client = pool.get().await.map_err(super::db)?;
            client
                .execute(
                    "UPDATE depfw_decisions SET record = replace(record, '\"p1\"', '\"evil\"')
                     WHERE seq = 2",
                    &[],
                )
                .await
                .map_err(super::db)?;
            Ok(())
        })
        .unwrap();
    assert_eq!(
        log.verify().unwrap().to_string(),
        "chain broken at record 2: the record's content does not match its hash (altered)"
    );
}

#[test]
fn an_agent_added_on_one_replica_works_on_the_other_and_revocation_propagates() {
    let Some(url) = fresh_database("agents_propagate") else {
        return;
    };
    let (a, b) = (replica(&url), replica(&url));
    let (_, token) = AgentRepo::add(&a, "ci-bot", PolicyPreset::Strict).unwrap();
    let agent = b.authenticate(token.expose_secret()).unwrap();
    assert_eq!(agent.name, "ci-bot");
    AgentRepo::revoke(&a, "ci-bot").unwrap();
    // B may answer from its cache until it sees the change (its poller can see it first, so
    // the cached answer is not asserted); once it has refreshed, the token is refused.
    b.refresh().unwrap();
    assert!(matches!(
        b.authenticate(token.expose_secret()),
        Err(AuthError::Revoked(_))
    ));
    assert!(matches!(
        AgentRepo::add(&b, "ci-bot", PolicyPreset::Strict),
        Err(crate::agents::AgentError::Duplicate(_))
    ));
}

#[test]
fn a_quarantine_approval_on_one_replica_reaches_the_other() {
    let Some(url) = fresh_database("approval_propagates") else {
        return;
    };
    let (a, b) = (replica(&url), replica(&url));
    // A replaced listener (the serving generation before a store reopen) is released and
    // never called again: one listener per process.
    let replaced = Arc::new(AtomicUsize::new(0));
    let stale = Arc::clone(&replaced);
    a.on_overrides_changed(move || {
        stale.fetch_add(1, Ordering::SeqCst);
    });
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    a.on_overrides_changed(move || {
        seen.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(
        Arc::strong_count(&replaced),
        1,
        "the replaced listener is dropped"
    );
    let name = PackageName::parse(Ecosystem::Npm, "left-pad").unwrap();
    let version = Version::parse(Ecosystem::Npm, "1.3.0").unwrap();
    let now = Utc::now();
    let id = a.hold(&name, &version, "bot", vec![], "r1", now).unwrap();
    assert_eq!(
        a.hold(&name, &version, "bot2", vec![], "r2", now).unwrap(),
        id
    );
    let before = OverrideRepo::revision(&a).unwrap();
    b.approve(
        id,
        &ApprovalScope::ThisVersion,
        "reviewed",
        None,
        "alice",
        now,
    )
    .unwrap();
    assert!(matches!(
        b.approve(id, &ApprovalScope::ThisVersion, "again", None, "alice", now),
        Err(crate::store::quarantine::QuarantineError::AlreadyResolved { .. })
    ));
    a.refresh().unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "A's policy refresh ran once"
    );
    assert_eq!(replaced.load(Ordering::SeqCst), 0);
    assert_eq!(OverrideRepo::revision(&a).unwrap(), before + 1);
    let entries = a.active_entries(Utc::now()).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].name.as_str(), "left-pad");
    let item = QuarantineRepo::get(&a, id).unwrap();
    assert_eq!(item.status, QuarantineStatus::Approved);
    assert_eq!(item.request_count, 2);
    // The version can be held again later as a new item.
    let again = a.hold(&name, &version, "bot", vec![], "r3", now).unwrap();
    assert_ne!(again, id);
}

#[test]
fn the_breaker_counts_across_replicas() {
    let Some(url) = fresh_database("breaker_across_replicas") else {
        return;
    };
    let limits = BreakerLimits {
        max_new_packages_per_hour: 3,
        max_refusals_per_hour: 0,
    };
    let (a, b) = (replica(&url).breaker(limits), replica(&url).breaker(limits));
    let names: Vec<PackageName> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| PackageName::parse(Ecosystem::Npm, n).unwrap())
        .collect();
    let now = Utc::now();
    assert!(!a
        .record("bot", BreakerEvent::Package(&names[0]), now)
        .unwrap()
        .is_tripped());
    assert!(!b
        .record("bot", BreakerEvent::Package(&names[1]), now)
        .unwrap()
        .is_tripped());
    // The same package again counts once.
    assert!(!b
        .record("bot", BreakerEvent::Package(&names[0]), now)
        .unwrap()
        .is_tripped());
    assert!(!a
        .record("bot", BreakerEvent::Package(&names[2]), now)
        .unwrap()
        .is_tripped());
    let fourth = b
        .record("bot", BreakerEvent::Package(&names[3]), now)
        .unwrap();
    assert!(
        fourth.is_tripped(),
        "3 allowed across both replicas: {fourth:?}"
    );
}

#[test]
fn sessions_started_on_one_replica_are_known_to_the_other() {
    let Some(url) = fresh_database("sessions_shared") else {
        return;
    };
    let (a, b) = (replica(&url), replica(&url));
    let session = SessionRecord {
        author: "admin:alice".into(),
        csrf: "c".repeat(64),
        flash: None,
    };
    a.create("s1", &session).unwrap();
    assert_eq!(b.touch("s1").unwrap(), Some(session));
    b.set_flash("s1", Some("saved".into())).unwrap();
    assert_eq!(a.take_flash("s1").unwrap().as_deref(), Some("saved"));
    assert_eq!(a.take_flash("s1").unwrap(), None);
    SessionRepo::remove(&b, "s1").unwrap();
    assert_eq!(a.touch("s1").unwrap(), None);
}

#[test]
fn a_wrong_password_is_reported_without_the_password() {
    let Some(url) = fresh_database("wrong_password") else {
        return;
    };
    let mut wrong = url::Url::parse(url.expose()).unwrap();
    wrong.set_password(Some("not-the-s3cret")).unwrap();
    let wrong = DatabaseUrl::parse(wrong.as_str()).unwrap();
    let error = match PgStore::connect(&wrong, 1, Duration::from_secs(1)) {
        Ok(_) => panic!("connected with a wrong password"),
        Err(e) => e.to_string(),
    };
    assert!(!error.contains("not-the-s3cret"), "{error}");
    assert!(error.contains("***"), "names the redacted URL: {error}");
}

/// Signed checkpoints of the shared chain: written by a replica with
/// `log.checkpoint-file`, they match the chain, and a deleted tail (with the head row
/// moved back to hide it) is caught as truncation.
#[test]
fn checkpoints_of_the_shared_chain_catch_a_deleted_tail() {
    let Some(url) = fresh_database("checkpoints_catch_a_deleted_tail") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoints.jsonl");
    let mut log_config = crate::config::Config::default().log;
    log_config.checkpoint_file = Some(file.clone());
    log_config.checkpoint_every_records = 1;
    let store = replica(&url);
    let log = store.decision_log(Some(dir.path()), &log_config).unwrap();
    for i in 0..6 {
        log.append_durable(&mut record(&format!("p{i}"), None))
            .unwrap();
    }
    // Checkpoints are written off the writer task: wait for the last one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if text.contains("\"seq\":6") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let key = log.public_key();
    let reader = store.decision_reader().unwrap();
    let matched = reader
        .verify_checkpoints(&text, key.as_ref())
        .unwrap()
        .unwrap();
    assert!(matched >= 1, "{text}");
    assert!(text.contains("\"seq\":6"), "{text}");

    let pool = store.pool();
    store
        .block(async move {
            let client = pool.get().await.map_err(super::db)?;
            client
                .batch_execute(
                    "DELETE FROM depfw_decisions WHERE seq > 4;
                     UPDATE depfw_decision_head
                        SET seq = 4, hash = (SELECT record::json->>'hash' FROM depfw_decisions WHERE seq = 4)
                      WHERE id = 1;",
                )
                .await
                .map_err(super::db)
        })
        .unwrap();
    // The chain alone still looks whole: only the checkpoints know it was longer.
    assert!(matches!(
        reader.verify_signed(key.as_ref()).unwrap(),
        ChainStatus::Intact { records: 4, .. }
    ));
    let broken = reader
        .verify_checkpoints(&text, key.as_ref())
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            broken,
            ChainStatus::Broken {
                seq: 5,
                problem: crate::store::decisions::ChainProblem::Truncated { .. }
            }
        ),
        "{broken:?}"
    );
}

#[test]
fn sightings_coalesce_per_version_and_requester() {
    let Some(url) = fresh_database("sightings_coalesce") else {
        return;
    };
    crate::store::quarantine::check_sightings(&replica(&url));
}

/// Issue #16's urgent fix on PostgreSQL: an entry for one agent, with an expiry, is stored
/// with its agent (apart from the same entry for everyone), seen by every replica, and
/// stops being in force when it expires.
#[test]
fn an_agents_override_is_shared_and_expires() {
    use crate::policy::overrides::OverrideKind;
    use crate::store::overrides::{EntryText, OverrideError};
    let Some(url) = fresh_database("agent_override") else {
        return;
    };
    let (a, b) = (replica(&url), replica(&url));
    let now = Utc::now();
    let text = |agent| EntryText {
        ecosystem: "npm",
        name: "left-pad",
        versions: "1.3.0",
        reason: "urgent fix",
        expires: Some("2h"),
        by: "alice",
        agent,
    };
    let mine = text(Some("ci-bot")).parse(OverrideKind::Allow).unwrap();
    let id = OverrideRepo::add(&a, &mine, now).unwrap();
    OverrideRepo::add(&a, &text(None).parse(OverrideKind::Allow).unwrap(), now).unwrap();
    assert!(matches!(
        OverrideRepo::add(&b, &mine, now),
        Err(OverrideError::Duplicate { .. })
    ));
    assert_eq!(
        OverrideRepo::get(&b, id).unwrap().agent.as_deref(),
        Some("ci-bot")
    );
    let entries = b.active_entries(now).unwrap();
    let agents: Vec<_> = entries.iter().map(|e| e.agent.as_deref()).collect();
    assert_eq!(agents, [Some("ci-bot"), None]);
    let later = now + chrono::Duration::hours(3);
    assert!(b.active_entries(later).unwrap().is_empty());
    assert_eq!(OverrideRepo::list(&b, true, later).unwrap().len(), 2);
}

/// The SIEM stream's hook: a subscriber hears every record the writer commits, once, in
/// the chain's order, however many threads append at once.
#[test]
fn a_subscriber_hears_every_committed_record_in_chain_order() {
    let Some(url) = fresh_database("subscriber_order") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = replica(&url)
        .decision_log(Some(dir.path()), &crate::config::Config::default().log)
        .unwrap();
    let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let heard = Arc::clone(&heard);
        log.subscribe(Arc::new(move |r: &DecisionRecord| {
            heard.lock().unwrap().push((r.seq, r.hash.clone()));
        }));
    }
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..25 {
                    log.append_durable(&mut record(&format!("s{t}-{i}"), None))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let heard = heard.lock().unwrap().clone();
    let seqs: Vec<u64> = heard.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(
        seqs,
        (1..=100).collect::<Vec<_>>(),
        "every record, in order"
    );
    let stored = log.list(1, 100).unwrap();
    let hashes: Vec<&str> = stored.iter().map(|r| r.hash.as_str()).collect();
    let told: Vec<&str> = heard.iter().map(|(_, h)| h.as_str()).collect();
    assert_eq!(told, hashes);
}
