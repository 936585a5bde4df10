//! `[quarantine] webhook-url`: `depfw serve` tells a chat channel or a ticket system that an
//! approval request is waiting, so a reviewer hears of it without watching the admin page.
//!
//! For each new item in the quarantine queue (and each `request_approval` of an agent) it
//! POSTs one JSON object ([`Payload`]): the package, the version (`*` for a name), who
//! asked (the agent's name, or `anonymous (<address>)`), why depfw held it, the agent's
//! justification, and a link to the admin page. It never carries a token: requesters are
//! stored by name, and the admin link is the configured one.
//!
//! Notices wait in a bounded queue ([`QUEUE`]; more are dropped and logged) for one sender
//! thread, so an install never waits for the receiver. Each attempt has the configured time
//! limit; a timeout, a connection error or a 5xx is retried (`webhook-retries`, waiting 1 s,
//! 2 s, 4 s, …); a 4xx is not (the receiver refused this notice). Redirects are not followed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Serialize;
use url::Url;

use crate::config::QuarantineConfig;
use crate::store::quarantine::{QuarantineId, QuarantineItem, QuarantineStatus};
use crate::store::repo::QuarantineRepo;

/// Notices waiting to be sent; more are dropped.
pub(crate) const QUEUE: usize = 256;
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What to announce.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Notice {
    /// Item `id` was asked for; with `only_if_new`, announced only when that one request
    /// opened it (its count is 1).
    Item { id: QuarantineId, only_if_new: bool },
}

/// The JSON body of a notice.
#[derive(Debug, Serialize)]
pub(crate) struct Payload {
    /// Always `quarantine.requested`.
    pub event: &'static str,
    /// The item's id, for `depfw quarantine approve|reject ID`.
    pub id: QuarantineId,
    pub ecosystem: String,
    pub package: String,
    /// The held version, or `*` for a name held at name level.
    pub version: String,
    /// The agent that asked last; `None` when it was an anonymous client.
    pub agent: Option<String>,
    /// Who asked last, as the queue lists it.
    pub requested_by: String,
    /// Why depfw held it: the findings' messages.
    pub reason: String,
    /// What the agent wrote when it asked (`request_approval`).
    pub justification: Option<String>,
    /// How many requests the item has counted.
    pub request_count: u64,
    /// The admin page's quarantine section, if its address is known.
    pub admin_url: Option<String>,
}

impl Payload {
    /// The notice for `item`, naming its latest requester.
    pub(crate) fn for_item(item: &QuarantineItem, admin_url: Option<&Url>) -> Payload {
        let latest = item.requesters.iter().max_by_key(|r| r.last_seen);
        let requested_by = latest.map_or_else(String::new, |r| r.who.clone());
        let agent = (!requested_by.is_empty() && !requested_by.starts_with("anonymous"))
            .then(|| requested_by.clone());
        let reason = item
            .reasons
            .iter()
            .map(|f| f.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        Payload {
            event: "quarantine.requested",
            id: item.id,
            ecosystem: item.ecosystem.to_string(),
            package: item.name.clone(),
            version: item.version.clone(),
            agent,
            requested_by,
            reason,
            justification: latest.and_then(|r| r.justification.clone()),
            request_count: item.request_count,
            admin_url: admin_url.map(|u| format!("{}#quarantine", u.as_str())),
        }
    }
}

/// The notifier of one `depfw serve`: a bounded queue and its sender thread.
pub(crate) struct Webhook {
    tx: SyncSender<Notice>,
    dropped: AtomicU64,
}

impl Webhook {
    /// The notifier `config` asks for (`None` without `webhook-url`); its thread reads the
    /// items from `repo`.
    pub(crate) fn start(
        config: &QuarantineConfig,
        repo: Arc<dyn QuarantineRepo>,
    ) -> anyhow::Result<Option<Webhook>> {
        let Some(url) = config.webhook_url.clone() else {
            return Ok(None);
        };
        let client = reqwest::Client::builder()
            .timeout(config.webhook_timeout)
            .connect_timeout(config.webhook_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("depfw/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let sender = Sender {
            client,
            url,
            retries: config.webhook_retries,
            admin_url: config.admin_url.clone(),
        };
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        // Weak: a notice still being delivered must not keep the store open after the
        // proxy state is gone.
        let repo = Arc::downgrade(&repo);
        std::thread::Builder::new()
            .name("depfw-webhook".to_owned())
            .spawn(move || {
                // Ends when the proxy state (the only sender) is dropped.
                while let Ok(notice) = rx.recv() {
                    let Some(repo) = Weak::upgrade(&repo) else {
                        return;
                    };
                    let payload = payload(&*repo, notice, sender.admin_url.as_ref());
                    drop(repo);
                    if let Some(payload) = payload {
                        runtime.block_on(sender.deliver(&payload));
                    }
                }
            })?;
        Ok(Some(Webhook {
            tx,
            dropped: AtomicU64::new(0),
        }))
    }

    /// Queues a notice; never waits.
    pub(crate) fn send(&self, notice: Notice) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(notice)
        {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Logged at powers of two, so a stuck receiver cannot flood the log.
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    "webhook queue full: a quarantine notice was dropped"
                );
            }
        }
    }
}

/// The body for `notice`, or `None` when there is nothing to announce.
fn payload(repo: &dyn QuarantineRepo, notice: Notice, admin_url: Option<&Url>) -> Option<Payload> {
    let Notice::Item { id, only_if_new } = notice;
    let item = match repo.get(id) {
        Ok(item) => item,
        Err(e) => {
            tracing::warn!(item = id, error = %e, "webhook: the quarantine item cannot be read");
            return None;
        }
    };
    if item.status != QuarantineStatus::Pending || (only_if_new && item.request_count != 1) {
        return None;
    }
    Some(Payload::for_item(&item, admin_url))
}

struct Sender {
    client: reqwest::Client,
    url: Url,
    retries: u32,
    admin_url: Option<Url>,
}

impl Sender {
    async fn deliver(&self, payload: &Payload) {
        let mut backoff = Duration::from_secs(1);
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            let sent = self
                .client
                .post(self.url.clone())
                .json(payload)
                .send()
                .await;
            let why = match sent {
                Ok(resp) if resp.status().is_success() => return,
                Ok(resp) if resp.status().is_client_error() => {
                    tracing::warn!(url = %self.url, status = %resp.status(), item = payload.id,
                        "webhook refused the quarantine notice; not retried");
                    return;
                }
                Ok(resp) => format!("status {}", resp.status()),
                Err(e) => e.to_string(),
            };
            tracing::warn!(url = %self.url, attempt = attempt + 1, item = payload.id,
                error = %why, "webhook: the quarantine notice was not delivered");
        }
    }
}
