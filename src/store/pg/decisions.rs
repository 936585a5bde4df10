//! The decision log on PostgreSQL: one hash chain for every replica.
//!
//! Each process has one writer task. A request's record goes to it over a queue; the
//! writer takes that record and every other one queued meanwhile (up to [`BATCH`]) into one
//! transaction: it locks the chain head row (`SELECT … FOR UPDATE`), which serialises
//! appends across replicas, numbers and links the records after the head, signs them,
//! inserts them with one statement, moves the head, and commits. The request waits for
//! that commit, so a record is durable before the response goes out, and the cost of a
//! commit (a WAL flush) is shared by every record in the batch. A failed transaction
//! writes nothing (no gap): every waiter gets the error.
//!
//! Records are signed with the data directory's key, as on sled; give every replica the
//! same `signing-key` file so that `depfw log verify --public-key` checks the whole chain
//! against one key.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use super::{db, parse, PgStore};
use crate::store::decisions::{
    record_message, verify_checkpoint_lines, ChainStatus, ChainWalk, Checkpointer, DecisionRecord,
    RecordFilter, GENESIS,
};
use crate::store::repo::{DecisionRepo, DecisionSubscriber, SubscriberSlot};
use crate::store::signing::{LogKey, PublicKey};
use crate::store::StoreError;

/// Records one transaction takes at most.
const BATCH: usize = 512;
/// Records read per query when walking the log.
const PAGE: i64 = 1000;

type Reply = oneshot::Sender<Result<DecisionRecord, StoreError>>;

/// The queue of this process's writer task.
#[derive(Clone)]
pub(super) struct Writer(mpsc::UnboundedSender<(DecisionRecord, Reply)>);

/// The log over a [`PgStore`]: appending (with a key) or reading.
pub(super) struct PgDecisions {
    store: PgStore,
    key: Option<Arc<LogKey>>,
}

impl PgDecisions {
    /// The log for appending, signing with the data directory's key (made on first use).
    /// With `log.checkpoint-file` (or `checkpoint-log`), this replica also writes signed
    /// checkpoints of the shared chain's head: after its own batches, and every
    /// `checkpoint-every-secs` from a timer so that other replicas' appends are
    /// checkpointed too. Each replica writes its own file; any of them verifies the chain.
    pub(super) fn writer(
        store: &PgStore,
        data_dir: Option<&std::path::Path>,
        log: &crate::config::LogConfig,
    ) -> Result<PgDecisions, StoreError> {
        let key = Arc::new(match data_dir {
            Some(dir) => LogKey::load_or_create(dir)?,
            None => LogKey::ephemeral()?,
        });
        let mut writer = store.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        if writer.is_none() {
            let (tx, rx) = mpsc::unbounded_channel();
            let Some(runtime) = &store.inner.runtime.0 else {
                return Err(db("the database runtime has stopped"));
            };
            let head = read_head(store)?;
            let checkpoints = Checkpointer::new(log, Arc::clone(&key), None, head.0);
            if let Some(c) = &checkpoints {
                spawn_checkpoint_timer(store.clone(), Arc::downgrade(c));
            }
            let subscriber = store.inner.subscriber.clone();
            runtime.spawn(write_loop(
                store.pool(),
                Arc::clone(&key),
                rx,
                checkpoints,
                subscriber,
            ));
            *writer = Some(Writer(tx));
        }
        Ok(PgDecisions {
            store: store.clone(),
            key: Some(key),
        })
    }

    pub(super) fn reader(store: &PgStore) -> PgDecisions {
        PgDecisions {
            store: store.clone(),
            key: None,
        }
    }

    /// Records with `seq` in `from..` (ascending) or `..=from` (descending), one page.
    fn page(&self, from: i64, descending: bool) -> Result<Vec<DecisionRecord>, StoreError> {
        let pool = self.store.pool();
        self.store.block(async move {
            let client = pool.get().await.map_err(db)?;
            let sql = if descending {
                "SELECT record FROM depfw_decisions WHERE seq <= $1 ORDER BY seq DESC LIMIT $2"
            } else {
                "SELECT record FROM depfw_decisions WHERE seq >= $1 ORDER BY seq LIMIT $2"
            };
            let rows = client.query(sql, &[&from, &PAGE]).await.map_err(db)?;
            rows.iter()
                .map(|row| parse("decision record", row.get::<_, &str>(0)))
                .collect()
        })
    }
}

impl DecisionRepo for PgDecisions {
    fn append_durable(&self, record: &mut DecisionRecord) -> Result<u64, StoreError> {
        let queue = self
            .store
            .inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|_| self.key.is_some())
            .ok_or_else(|| db("this decision log was opened for reading"))?;
        let (tx, rx) = oneshot::channel();
        queue
            .0
            .send((record.clone(), tx))
            .map_err(|_| db("the decision writer has stopped"))?;
        let written = self.store.block(async move {
            rx.await
                .map_err(|_| db("the decision writer has stopped"))?
        })?;
        *record = written;
        Ok(record.seq)
    }

    /// A commit is the only way a record reaches PostgreSQL: the same as durable.
    fn append(&self, record: &mut DecisionRecord) -> Result<u64, StoreError> {
        self.append_durable(record)
    }

    fn subscribe(&self, subscriber: DecisionSubscriber) {
        self.store.inner.subscriber.set(subscriber);
    }

    fn list(&self, from: u64, limit: usize) -> Result<Vec<DecisionRecord>, StoreError> {
        let mut out = Vec::new();
        let mut next = i64::try_from(from).unwrap_or(i64::MAX);
        while out.len() < limit {
            let page = self.page(next, false)?;
            let Some(last) = page.last().map(|r| r.seq) else {
                break;
            };
            out.extend(page.into_iter().take(limit - out.len()));
            next = i64::try_from(last).unwrap_or(i64::MAX).saturating_add(1);
        }
        Ok(out)
    }

    fn query(
        &self,
        filter: &RecordFilter,
        limit: usize,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let mut out = Vec::new();
        let mut next = i64::MAX;
        while out.len() < limit {
            let page = self.page(next, true)?;
            let Some(last) = page.last().map(|r| r.seq) else {
                break;
            };
            out.extend(
                page.into_iter()
                    .filter(|r| filter.matches(r))
                    .take(limit - out.len()),
            );
            match i64::try_from(last).ok().and_then(|l| l.checked_sub(1)) {
                Some(n) if n >= 1 => next = n,
                _ => break,
            }
        }
        Ok(out)
    }

    fn for_each_record(
        &self,
        filter: &RecordFilter,
        each: &mut dyn FnMut(&DecisionRecord) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut next = 1i64;
        loop {
            let page = self.page(next, false)?;
            let Some(last) = page.last().map(|r| r.seq) else {
                return Ok(());
            };
            for record in page.iter().filter(|r| filter.matches(r)) {
                each(record)?;
            }
            next = i64::try_from(last).unwrap_or(i64::MAX).saturating_add(1);
        }
    }

    fn verify_signed(&self, key: Option<&PublicKey>) -> Result<ChainStatus, StoreError> {
        let pool = self.store.pool();
        let head: (i64, String) = self.store.block(async move {
            let client = pool.get().await.map_err(db)?;
            let row = client
                .query_one(
                    "SELECT seq, hash FROM depfw_decision_head WHERE id = 1",
                    &[],
                )
                .await
                .map_err(db)?;
            Ok((row.get(0), row.get(1)))
        })?;
        let mut walk = ChainWalk::new(key);
        let mut next = 1i64;
        loop {
            let page = self.page(next, false)?;
            let Some(last) = page.last().map(|r| r.seq) else {
                break;
            };
            for record in page {
                let seq = record.seq;
                if let Some(broken) = walk.step(seq, Ok(record))? {
                    return Ok(broken);
                }
            }
            next = i64::try_from(last).unwrap_or(i64::MAX).saturating_add(1);
        }
        Ok(walk.finish(Some((u64::try_from(head.0).unwrap_or(0), head.1))))
    }

    fn public_key(&self) -> Option<PublicKey> {
        self.key.as_ref().map(|k| k.public())
    }

    fn verify_checkpoints(
        &self,
        lines: &str,
        key: Option<&PublicKey>,
    ) -> anyhow::Result<Result<usize, ChainStatus>> {
        let pool = self.store.pool();
        // The last stored record, not the head row: a deleted tail is what a checkpoint
        // beyond it catches, however the head row was rewritten.
        let records: Option<i64> = self.store.block(async move {
            let client = pool.get().await.map_err(db)?;
            let row = client
                .query_one("SELECT max(seq) FROM depfw_decisions", &[])
                .await
                .map_err(db)?;
            Ok(row.get(0))
        })?;
        let records = records.and_then(|r| u64::try_from(r).ok()).unwrap_or(0);
        verify_checkpoint_lines(lines, key, records, |seq| {
            let record: Option<DecisionRecord> = self.store.record(
                "decision record",
                "SELECT record FROM depfw_decisions WHERE seq = $1",
                i64::try_from(seq).map_err(db)?,
            )?;
            Ok(record.map(|r| r.hash))
        })
    }
}

/// The shared chain's head (seq, hash).
fn read_head(store: &PgStore) -> Result<(u64, String), StoreError> {
    let pool = store.pool();
    let (seq, hash): (i64, String) = store.block(async move {
        let client = pool.get().await.map_err(db)?;
        let row = client
            .query_one(
                "SELECT seq, hash FROM depfw_decision_head WHERE id = 1",
                &[],
            )
            .await
            .map_err(db)?;
        Ok((row.get(0), row.get(1)))
    })?;
    Ok((u64::try_from(seq).unwrap_or(0), hash))
}

/// Checkpoints the shared head every `checkpoint-every-secs` (other replicas append too);
/// ends once the writer's checkpointer is dropped.
fn spawn_checkpoint_timer(store: PgStore, checkpointer: std::sync::Weak<Checkpointer>) {
    let Some(every) = checkpointer.upgrade().map(|c| c.every()) else {
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("depfw-pg-checkpoints".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            let Some(c) = checkpointer.upgrade() else {
                return;
            };
            match read_head(&store) {
                Ok((seq, hash)) => c.maybe_at(seq, &hash, false),
                Err(e) => tracing::warn!("decision log checkpoint: the head is unreadable: {e}"),
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("no checkpoint timer ({e}): checkpoints follow this replica's appends only");
    }
}

/// The writer task: one transaction per batch of queued records.
async fn write_loop(
    pool: deadpool_postgres::Pool,
    key: Arc<LogKey>,
    mut queue: mpsc::UnboundedReceiver<(DecisionRecord, Reply)>,
    checkpoints: Option<Arc<Checkpointer>>,
    subscriber: SubscriberSlot,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let records: Vec<DecisionRecord> = batch.iter().map(|(r, _)| r.clone()).collect();
        match append_batch(&pool, &key, records).await {
            Ok(written) => {
                if let (Some(c), Some(last)) = (&checkpoints, written.last()) {
                    // A file write and fsync: off this task, which serves every append.
                    let (c, seq, hash) = (Arc::clone(c), last.seq, last.hash.clone());
                    tokio::task::spawn_blocking(move || c.maybe_at(seq, &hash, false));
                }
                for ((_, reply), record) in batch.into_iter().zip(written) {
                    subscriber.notify(&record);
                    let _ = reply.send(Ok(record));
                }
            }
            Err(e) => {
                tracing::error!("decision records not written: {e}");
                let text = e.to_string();
                for (_, reply) in batch {
                    let _ = reply.send(Err(db(&text)));
                }
            }
        }
    }
}

/// Appends `records` after the chain head in one transaction; returns them numbered,
/// linked and signed.
async fn append_batch(
    pool: &deadpool_postgres::Pool,
    key: &LogKey,
    mut records: Vec<DecisionRecord>,
) -> Result<Vec<DecisionRecord>, StoreError> {
    let mut client = pool.get().await.map_err(db)?;
    let tx = client.transaction().await.map_err(db)?;
    let head = tx
        .query_one(
            "SELECT seq, hash FROM depfw_decision_head WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await
        .map_err(db)?;
    let (mut seq, mut prev): (i64, String) = (head.get(0), head.get(1));
    if seq == 0 {
        prev = GENESIS.to_owned();
    }
    let mut seqs = Vec::with_capacity(records.len());
    let mut times: Vec<DateTime<Utc>> = Vec::with_capacity(records.len());
    let mut agents: Vec<Option<String>> = Vec::with_capacity(records.len());
    let mut packages = Vec::with_capacity(records.len());
    let mut verdicts = Vec::with_capacity(records.len());
    let mut texts = Vec::with_capacity(records.len());
    for record in &mut records {
        seq += 1;
        record.seq = u64::try_from(seq).map_err(db)?;
        record.prev_hash = std::mem::take(&mut prev);
        record.hash = record.compute_hash()?;
        record.signature = key.sign(&record_message(&record.hash));
        prev = record.hash.clone();
        seqs.push(seq);
        times.push(record.time);
        agents.push(record.client.agent.clone());
        packages.push(record.package.clone());
        verdicts.push(
            serde_json::to_value(record.verdict)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        );
        texts.push(super::json("decision record", &*record)?);
    }
    tx.execute(
        "INSERT INTO depfw_decisions (seq, time, agent, package, verdict, record)
         SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[],
                              $5::text[], $6::text[])",
        &[&seqs, &times, &agents, &packages, &verdicts, &texts],
    )
    .await
    .map_err(db)?;
    tx.execute(
        "UPDATE depfw_decision_head SET seq = $1, hash = $2 WHERE id = 1",
        &[&seq, &prev],
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(records)
}
