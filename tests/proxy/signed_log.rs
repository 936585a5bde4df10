//! The signed decision log (issue #11, "the decision log has no anchor"): a forger who can
//! write the store and re-hash the chain is caught by `depfw log verify --public-key`, a
//! truncation by `--checkpoints`; a log written before signing still verifies.

use std::path::{Path, PathBuf};

use depfw::config::LogConfig;
use depfw::policy::Verdict;
use depfw::store::decisions::{
    record_message, ChainProblem, ChainStatus, Checkpoint, DecisionLog, DecisionRecord, GENESIS,
};
use depfw::store::signing::{LogKey, PublicKey, KEY_FILE};
use depfw::store::Store;
use serde_json::Value;

use super::provenance::{depfw, populated, record, with_tree};

/// Rewrites the log as someone with write access to the store would: `edit` may change,
/// drop or reorder records; the chain is then renumbered, re-linked and re-hashed from
/// record 1, the head moved to the last record, and every record re-signed with `resign`
/// (or left with the signature it had).
fn forge(
    dir: &tempfile::TempDir,
    edit: impl FnOnce(&mut Vec<DecisionRecord>),
    resign: Option<&LogKey>,
) {
    let store = Store::open(dir.path()).unwrap();
    let tree = store.tree("decisions").unwrap();
    let mut records: Vec<DecisionRecord> = tree
        .iter()
        .map(|item| serde_json::from_slice(&item.unwrap().1).unwrap())
        .collect();
    tree.clear().unwrap();
    edit(&mut records);
    let mut prev = GENESIS.to_owned();
    for (i, r) in records.iter_mut().enumerate() {
        r.seq = i as u64 + 1;
        r.prev_hash = prev;
        r.hash = r.compute_hash().unwrap();
        if let Some(key) = resign {
            r.signature = key.sign(&record_message(&r.hash));
        }
        prev = r.hash.clone();
        tree.insert(r.seq.to_be_bytes(), serde_json::to_vec(r).unwrap())
            .unwrap();
    }
    let head = serde_json::json!({"seq": records.len(), "hash": prev});
    store
        .tree("decisions-head")
        .unwrap()
        .insert("head", serde_json::to_vec(&head).unwrap())
        .unwrap();
    store.flush().unwrap();
}

/// `depfw log public-key`, saved where a careful operator keeps it: off the data directory.
fn saved_public_key(dir: &tempfile::TempDir) -> (tempfile::TempDir, PathBuf) {
    let out = depfw(dir, &["log", "public-key"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(
        line.starts_with("ed25519:") && line.trim().len() == 52,
        "{line}"
    );
    PublicKey::decode(&line).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let path = elsewhere.path().join("depfw.pub");
    std::fs::write(&path, line).unwrap();
    (elsewhere, path)
}

/// `depfw log verify` with extra arguments: exit code and stdout.
fn verify_cli(dir: &tempfile::TempDir, extra: &[&Path]) -> (i32, String) {
    let mut args: Vec<&str> = vec!["log", "verify"];
    let flags = ["--public-key", "--checkpoints"];
    for (flag, path) in flags.iter().zip(extra) {
        args.push(flag);
        args.push(path.to_str().unwrap());
    }
    let out = depfw(dir, &args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// `depfw log verify` with `extra` exits 1 with each of `says` in its report.
fn assert_broken(dir: &tempfile::TempDir, extra: &[&Path], says: &[&str]) -> String {
    let (code, text) = verify_cli(dir, extra);
    assert_eq!(code, 1, "{text}");
    for part in says {
        assert!(text.contains(part), "{part:?} is not in: {text}");
    }
    text
}

fn chain_only(dir: &tempfile::TempDir) -> ChainStatus {
    let store = Store::open(dir.path()).unwrap();
    DecisionLog::open_read_only(&store)
        .unwrap()
        .verify()
        .unwrap()
}

#[test]
fn signed_log_verifies_against_its_public_key() {
    let dir = populated();
    let (_keep, key) = saved_public_key(&dir);
    let (code, text) = verify_cli(&dir, &[&key]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("chain intact: 5 records"), "{text}");
    assert!(text.contains("records 1..5 signed by ed25519:"), "{text}");
    assert!(!text.contains("unsigned"), "{text}");
}

#[test]
fn rewritten_record_with_a_rehashed_chain_fails_its_signature() {
    let dir = populated();
    let (_keep, key) = saved_public_key(&dir);
    forge(&dir, |rs| rs[2].verdict = Verdict::Deny, None);
    assert!(
        matches!(chain_only(&dir), ChainStatus::Intact { records: 5, .. }),
        "the hash chain alone cannot tell"
    );
    assert_broken(&dir, &[&key], &["chain broken at record 3", "signature"]);
    // Without --public-key the data directory's own key still catches it.
    assert_broken(&dir, &[], &["record 3"]);
}

#[test]
fn chain_resigned_with_another_key_is_refused() {
    let dir = populated();
    let (_keep, key) = saved_public_key(&dir);
    let forger = LogKey::ephemeral().unwrap();
    forge(&dir, |rs| rs[1].package = "evil".into(), Some(&forger));
    assert_broken(&dir, &[&key], &["chain broken at record 1", "another key"]);
    let store = Store::open(dir.path()).unwrap();
    let log = DecisionLog::open_read_only(&store).unwrap();
    assert!(
        matches!(
            log.verify_signed(Some(&forger.public())).unwrap(),
            ChainStatus::Intact { records: 5, .. }
        ),
        "consistent under the forger's key: only a key kept elsewhere tells"
    );
}

#[test]
fn deleted_record_with_a_renumbered_chain_fails_its_signature() {
    let dir = populated();
    let (_keep, key) = saved_public_key(&dir);
    forge(
        &dir,
        |rs| {
            rs.remove(1);
        },
        None,
    );
    assert!(matches!(
        chain_only(&dir),
        ChainStatus::Intact { records: 4, .. }
    ));
    assert_broken(&dir, &[&key], &["chain broken at record 2"]);
}

#[test]
fn stripped_signature_is_reported() {
    let dir = populated();
    with_tree(&dir, |tree| {
        let key = 4u64.to_be_bytes();
        let mut v: Value = serde_json::from_slice(&tree.get(key).unwrap().unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("signature");
        tree.insert(key, serde_json::to_vec(&v).unwrap()).unwrap();
    });
    assert_eq!(
        chain_only(&dir),
        ChainStatus::Broken {
            seq: 4,
            problem: ChainProblem::Unsigned
        }
    );
    assert_broken(&dir, &[], &["record 4", "not signed"]);
}

/// A log open for appending in `dir`, checkpointing to `file` every `every_records`
/// records or `every_secs` seconds.
fn checkpointed(store: &Store, file: &Path, every_records: u64, every_secs: u64) -> DecisionLog {
    DecisionLog::open(store)
        .unwrap()
        .with_checkpoints(&LogConfig {
            checkpoint_file: Some(file.to_owned()),
            checkpoint_log: false,
            checkpoint_every_records: every_records,
            checkpoint_every_secs: every_secs,
        })
}

fn checkpoints_in(file: &Path) -> Vec<Checkpoint> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn truncated_log_is_caught_by_the_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let sink = tempfile::tempdir().unwrap();
    let file = sink.path().join("checkpoints.jsonl");
    {
        let store = Store::open(dir.path()).unwrap();
        let log = checkpointed(&store, &file, 2, 3600);
        for p in ["a", "b", "c", "d", "e"] {
            log.append_durable(&mut record(p, None, Verdict::Allow))
                .unwrap();
        }
    }
    let seqs: Vec<u64> = checkpoints_in(&file).iter().map(|c| c.seq).collect();
    assert_eq!(seqs, [2, 4, 5], "every 2 records, and the head at shutdown");
    let (_keep, key) = saved_public_key(&dir);
    let (code, text) = verify_cli(&dir, &[&key, &file]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("3 checkpoints match"), "{text}");

    // The tail cut off and the head moved back: a valid, shorter signed log.
    forge(&dir, |rs| rs.truncate(3), None);
    let (code, text) = verify_cli(&dir, &[&key]);
    assert_eq!(code, 0, "signatures alone cannot see a cut tail: {text}");
    assert_broken(
        &dir,
        &[&key, &file],
        &["chain broken at record 4", "truncated"],
    );
}

#[test]
fn forged_or_foreign_checkpoints_are_reported() {
    let dir = populated();
    let (_keep, key) = saved_public_key(&dir);
    let store = Store::open(dir.path()).unwrap();
    let log = DecisionLog::open_read_only(&store).unwrap();
    let head = log.list(5, 1).unwrap().remove(0);
    drop((log, store));
    let forger = LogKey::ephemeral().unwrap();
    let mut checkpoint = Checkpoint {
        seq: 5,
        hash: head.hash.clone(),
        time: "2026-12-01T00:00:00.000Z".into(),
        key: forger.public().encode(),
        signature: String::new(),
    };
    checkpoint.signature = forger.sign(&checkpoint.message());
    let sink = tempfile::tempdir().unwrap();
    let file = sink.path().join("checkpoints.jsonl");
    std::fs::write(&file, serde_json::to_string(&checkpoint).unwrap() + "\n").unwrap();
    assert_broken(
        &dir,
        &[&key, &file],
        &["checkpoint line 1 is not signed by the given public key"],
    );

    // Signed by the right key but naming another hash: the record changed since.
    let real = LogKey::load(&dir.path().join(KEY_FILE)).unwrap();
    checkpoint.hash = "ab".repeat(32);
    checkpoint.signature = real.sign(&checkpoint.message());
    let line = format!(
        "2026-12-01T00:00:00Z INFO depfw::checkpoint: {}\n",
        serde_json::to_string(&checkpoint).unwrap()
    );
    std::fs::write(&file, line).unwrap();
    assert_broken(&dir, &[&key, &file], &["record 5", "checkpoint line 1"]);

    // Not a checkpoint at all: bad input (exit 2), not a verdict on the log.
    std::fs::write(&file, "{\"seq\": 5}\n").unwrap();
    let (code, text) = verify_cli(&dir, &[&key, &file]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("checkpoint line 1 is not a checkpoint"),
        "{text}"
    );
}

#[test]
fn a_quiet_log_is_checkpointed_by_the_timer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoints.jsonl");
    let store = Store::open(dir.path()).unwrap();
    let log = checkpointed(&store, &file, 1000, 1);
    log.append_durable(&mut record("a", None, Verdict::Allow))
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while checkpoints_in(&file).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let written = checkpoints_in(&file);
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].seq, 1);
    let public = log.public_key().unwrap();
    assert!(public.verifies(&written[0].message(), &written[0].signature));
}

#[test]
fn log_written_before_signing_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    {
        // What an older depfw wrote: no signatures.
        let store = Store::open(dir.path()).unwrap();
        let old = DecisionLog::open_read_only(&store).unwrap();
        for p in ["a", "b"] {
            old.append_durable(&mut record(p, None, Verdict::Allow))
                .unwrap();
        }
    }
    {
        let store = Store::open(dir.path()).unwrap();
        let log = DecisionLog::open(&store).unwrap();
        log.append_durable(&mut record("c", None, Verdict::Allow))
            .unwrap();
    }
    let (_keep, key) = saved_public_key(&dir);
    let (code, text) = verify_cli(&dir, &[&key]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("unsigned up to seq 2") && text.contains("records 3..3 signed"),
        "{text}"
    );
}

#[test]
fn signing_key_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = populated();
    let path = dir.path().join(KEY_FILE);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = Store::open(dir.path()).unwrap();
    let err = DecisionLog::open(&store).err().unwrap().to_string();
    assert!(
        err.contains("accessible to group or others") && err.contains("chmod 600"),
        "{err}"
    );
    // `depfw serve` builds its state with the log open for appending: it does not start.
    let config = crate::support::registry::config(
        "http://127.0.0.1:9",
        "http://127.0.0.1:7878",
        dir.path(),
        "",
    );
    let state = depfw::server::AppState::new(
        &config,
        &store,
        crate::support::registry::policy(crate::support::registry::TestCheck::default()),
    );
    let err = format!("{:#}", state.err().unwrap());
    assert!(err.contains("chmod 600"), "{err}");
    drop(store);
    let out = depfw(&dir, &["log", "public-key"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn raw_byte_flip_names_the_record() {
    let dir = populated();
    // One byte of record 3 as it lies in the store's files (`"req-c"` is its request id).
    let mut flipped = 0;
    let mut files = vec![dir.path().join("store")];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let mut bytes = std::fs::read(&path).unwrap();
        let needle = b"\"req-c\"";
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            bytes[at + 4] ^= 0x20;
            std::fs::write(&path, bytes).unwrap();
            flipped += 1;
        }
    }
    assert!(flipped >= 1);
    // sled takes the damaged page for a torn write and recovers the log up to record 2,
    // silently; the damaged copy of record 3 left in its files gives it away.
    let text = assert_broken(&dir, &[], &["chain broken at record 3", "damaged"]);
    assert!(!text.contains("offset"), "{text}");
}
