//! Every quarantine a client of `depfw serve` meets becomes an approval request in
//! `depfw quarantine list`, without slowing the request that met it.
//!
//! A download of a quarantined version is held at once, durably, by the gate
//! ([`super::verdicts::decide_version`]). Two refusals never reach that gate: a name held at
//! name level (a typosquat such as `lodahs`, refused before anything is fetched) and a
//! version hidden from metadata (cooldown, signals, content rules), which a resolver simply
//! never sees. Both are [`Sighting`]s, handed to the [`Approvals`] writer:
//!
//! - A name hold is one sighting of the name (item version `*`: approving it allows the
//!   name, rejecting it denies the name with the reviewer's reason).
//! - A metadata response queues at most one version: the newest quarantined release above
//!   the newest one served, the version a client asking for `latest` (or an open range)
//!   would have resolved to ([`super::verdicts::Filtered::wanted`]). Older hidden versions
//!   wait for someone who asks for them by version (a lockfile pin, `request_approval`).
//!   So a metadata request adds at most one item, however many versions it hides.
//! - Sightings go through a bounded channel ([`CHANNEL`]) to one writer thread, which
//!   coalesces repeats of one (package, version, requester) over [`WINDOW`] into one
//!   sighting with a count and writes each batch (at most [`BATCH`] distinct keys) in one
//!   transaction. A full channel drops the sighting (counted, logged once a minute): a
//!   burst of metadata requests can neither flood the queue nor hold up the mirror.
//!
//! A sighting still in the writer's window when a reviewer resolves its item opens a new
//! pending item (nothing links it to the resolved one); at most one window of requests can
//! do that, and the new item is resolved like any other.
//!
//! Each new item, and each `request_approval`, is announced to `[quarantine] webhook-url`
//! when set ([`super::webhook`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::webhook::{Notice, Webhook};
use crate::store::quarantine::{QuarantineId, Sighting};
use crate::store::repo::QuarantineRepo;

/// Sightings waiting for the writer; more are dropped.
pub(crate) const CHANNEL: usize = 1024;
/// How long the writer gathers repeats before it writes.
pub(crate) const WINDOW: Duration = Duration::from_millis(200);
/// Distinct (package, version, requester) keys written in one transaction at most.
pub(crate) const BATCH: usize = 256;

enum Message {
    Seen(Box<Sighting>),
    /// Answered once everything sent before it is written.
    Flush(mpsc::Sender<()>),
}

/// The writer thread's end of the channel, and the thread.
struct Writer {
    tx: SyncSender<Message>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The proxy's approval-request writer and notifier (see the module docs). Cheap to share.
pub(crate) struct Approvals {
    repo: Arc<dyn QuarantineRepo>,
    webhook: Option<Arc<Webhook>>,
    /// Started on the first sighting, so a state that never meets a quarantine runs no
    /// thread; joined when the state is dropped (see `Drop`).
    writer: OnceLock<Writer>,
    dropped: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

impl Approvals {
    pub(crate) fn new(repo: Arc<dyn QuarantineRepo>, webhook: Option<Webhook>) -> Approvals {
        Approvals {
            repo,
            webhook: webhook.map(Arc::new),
            writer: OnceLock::new(),
            dropped: AtomicU64::new(0),
            last_warning: Mutex::new(None),
        }
    }

    /// Queues a sighting for the writer; never waits.
    pub(crate) fn offer(&self, seen: Sighting) {
        match self.sender().try_send(Message::Seen(Box::new(seen))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.note_drop("the approval-request queue is full"),
            Err(TrySendError::Disconnected(_)) => {
                self.note_drop("the approval-request writer has stopped");
            }
        }
    }

    /// Waits (at most `limit`) until every sighting offered before is written: for tests
    /// and an orderly shutdown. False if the writer did not answer in time.
    pub(crate) fn flush(&self, limit: Duration) -> bool {
        let (tx, rx) = mpsc::channel();
        let sent = self.sender().send(Message::Flush(tx));
        sent.is_ok() && rx.recv_timeout(limit).is_ok()
    }

    /// Announces that a held download or an agent's request touched item `id`; with
    /// `only_if_new`, only when that request opened the item (a hold of a version nobody
    /// asked for before). The read happens on the notifier's thread.
    pub(crate) fn announce(&self, id: QuarantineId, only_if_new: bool) {
        if let Some(webhook) = &self.webhook {
            webhook.send(Notice::Item { id, only_if_new });
        }
    }

    fn note_drop(&self, why: &str) {
        let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60)) {
            *last = Some(now);
            tracing::warn!(dropped = total, "{why}: a quarantine sighting was dropped");
        }
    }

    fn sender(&self) -> &SyncSender<Message> {
        let writer = self.writer.get_or_init(|| {
            let (tx, rx) = mpsc::sync_channel(CHANNEL);
            let repo = Arc::clone(&self.repo);
            let webhook = self.webhook.clone();
            let spawned = std::thread::Builder::new()
                .name("depfw-approvals".to_owned())
                .spawn(move || write_loop(&rx, &*repo, webhook.as_deref()));
            let thread = spawned
                .map_err(|e| {
                    // The receiver is gone with the closure: offers count as dropped.
                    tracing::error!(error = %e, "cannot start the approval-request writer");
                })
                .ok();
            Writer { tx, thread }
        });
        &writer.tx
    }
}

impl Drop for Approvals {
    /// Writes what the window still holds and waits for the writer to end, so that the
    /// store is free (sled allows one process) once the proxy state is gone: the CLI may
    /// open it right after `depfw serve` stops.
    fn drop(&mut self) {
        if let Some(Writer { tx, thread }) = self.writer.take() {
            drop(tx);
            if let Some(thread) = thread {
                let _ = thread.join();
            }
        }
    }
}

/// The writer thread: gathers, coalesces, writes, announces; ends when the state is gone.
fn write_loop(rx: &mpsc::Receiver<Message>, repo: &dyn QuarantineRepo, webhook: Option<&Webhook>) {
    let mut open = true;
    while open {
        let Ok(first) = rx.recv() else { return };
        let mut batch = Batch::default();
        let mut waiters = Vec::new();
        batch.take(first, &mut waiters);
        let deadline = Instant::now() + WINDOW;
        while batch.len() < BATCH && waiters.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(message) => batch.take(message, &mut waiters),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        batch.write(repo, webhook);
        for waiter in waiters {
            let _ = waiter.send(());
        }
    }
}

/// Sightings gathered in one window, one per (item key, requester).
#[derive(Default)]
struct Batch(HashMap<(String, String), Sighting>);

impl Batch {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn take(&mut self, message: Message, waiters: &mut Vec<mpsc::Sender<()>>) {
        let seen = match message {
            Message::Seen(seen) => *seen,
            Message::Flush(waiter) => return waiters.push(waiter),
        };
        let key = (seen.pending(), seen.requested_by.clone());
        match self.0.get_mut(&key) {
            Some(known) => {
                known.count += seen.count;
                known.first_seen = known.first_seen.min(seen.first_seen);
                if seen.last_seen >= known.last_seen {
                    known.last_seen = seen.last_seen;
                    known.request_id = seen.request_id;
                    known.reasons = seen.reasons;
                }
            }
            None => {
                self.0.insert(key, seen);
            }
        }
    }

    fn write(self, repo: &dyn QuarantineRepo, webhook: Option<&Webhook>) {
        let sightings: Vec<Sighting> = self.0.into_values().collect();
        if sightings.is_empty() {
            return;
        }
        match repo.note(sightings) {
            Ok(noted) => {
                if let Some(webhook) = webhook {
                    for n in noted.iter().filter(|n| n.opened) {
                        webhook.send(Notice::Item {
                            id: n.id,
                            only_if_new: false,
                        });
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "approval requests could not be written");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use chrono::{DateTime, Utc};

    use super::*;
    use crate::package::{Ecosystem, PackageName, Version};
    use crate::policy::Finding;
    use crate::store::overrides::OverrideId;
    use crate::store::quarantine::{
        ApprovalScope, Noted, QuarantineError, QuarantineItem, QuarantineStatus,
    };

    /// Counts what reaches the store, slowly (a disk under load).
    #[derive(Default)]
    struct SlowRepo {
        batches: AtomicUsize,
        requests: AtomicU64,
    }

    impl QuarantineRepo for SlowRepo {
        fn note(&self, sightings: Vec<Sighting>) -> Result<Vec<Noted>, QuarantineError> {
            std::thread::sleep(Duration::from_millis(300));
            self.batches.fetch_add(1, Ordering::SeqCst);
            let total: u64 = sightings.iter().map(|s| s.count).sum();
            self.requests.fetch_add(total, Ordering::SeqCst);
            Ok(Vec::new())
        }
        fn hold(
            &self,
            _: &PackageName,
            _: &Version,
            _: &str,
            _: Vec<Finding>,
            _: &str,
            _: DateTime<Utc>,
        ) -> Result<QuarantineId, QuarantineError> {
            unreachable!("not used by the writer")
        }
        fn request(
            &self,
            _: &PackageName,
            _: Option<&Version>,
            _: &str,
            _: &str,
            _: Vec<Finding>,
            _: &str,
            _: DateTime<Utc>,
        ) -> Result<QuarantineId, QuarantineError> {
            unreachable!("not used by the writer")
        }
        fn get(&self, id: QuarantineId) -> Result<QuarantineItem, QuarantineError> {
            Err(QuarantineError::Unknown(id))
        }
        fn list(
            &self,
            _: Option<QuarantineStatus>,
        ) -> Result<Vec<QuarantineItem>, QuarantineError> {
            Ok(Vec::new())
        }
        fn approve(
            &self,
            id: QuarantineId,
            _: &ApprovalScope,
            _: &str,
            _: Option<DateTime<Utc>>,
            _: &str,
            _: DateTime<Utc>,
        ) -> Result<OverrideId, QuarantineError> {
            Err(QuarantineError::Unknown(id))
        }
        fn reject(
            &self,
            id: QuarantineId,
            _: &str,
            _: &str,
            _: DateTime<Utc>,
        ) -> Result<OverrideId, QuarantineError> {
            Err(QuarantineError::Unknown(id))
        }
    }

    fn seen(name: &str, who: &str) -> Sighting {
        let name = PackageName::parse(Ecosystem::Npm, name).unwrap();
        Sighting::once(&name, None, who, Vec::new(), "r1", Utc::now())
    }

    #[test]
    fn repeats_coalesce_into_one_write_and_dropping_waits_for_it() {
        let repo = Arc::new(SlowRepo::default());
        let approvals = Approvals::new(Arc::clone(&repo) as Arc<dyn QuarantineRepo>, None);
        for _ in 0..50 {
            approvals.offer(seen("lodahs", "builder"));
        }
        approvals.offer(seen("lodahs", "other"));
        assert!(approvals.flush(Duration::from_secs(10)));
        assert_eq!(
            repo.batches.load(Ordering::SeqCst),
            1,
            "one window, one write"
        );
        assert_eq!(
            repo.requests.load(Ordering::SeqCst),
            51,
            "every request counted"
        );

        // Dropped mid-window: the last sightings are written before the drop returns, so
        // the store is free and complete once the proxy state is gone.
        approvals.offer(seen("lodahs", "builder"));
        drop(approvals);
        assert_eq!(repo.batches.load(Ordering::SeqCst), 2);
        assert_eq!(
            Arc::strong_count(&repo),
            1,
            "the writer let go of the store"
        );
    }

    #[test]
    fn a_full_queue_drops_instead_of_waiting() {
        let repo = Arc::new(SlowRepo::default());
        let approvals = Approvals::new(Arc::clone(&repo) as Arc<dyn QuarantineRepo>, None);
        let started = Instant::now();
        for i in 0..(CHANNEL * 3) {
            approvals.offer(seen(&format!("p{i}"), "builder"));
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "offers never wait"
        );
        assert!(approvals.dropped.load(Ordering::Relaxed) > 0);
    }
}
