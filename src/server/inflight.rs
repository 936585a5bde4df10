//! One upstream fetch per key at a time: concurrent cache misses for the same packument or
//! artifact share one download instead of each starting their own.
//!
//! Without it, a burst of installs (CI fan-out, a monorepo's 200 parallel resolutions)
//! turned into as many identical upstream requests as there were clients: 20 requests for
//! one 8 MiB artifact made 20 downloads. Now the first request for a key is the *leader*:
//! it fetches and publishes the outcome; the others are *followers* and wait for it.
//!
//! - A follower gets the leader's outcome, an error included (a copy of it: the same
//!   status and message).
//! - An outcome is never kept: the flight ends when the leader publishes, so the next
//!   request after a failure starts a fresh fetch (a failure does not poison retries).
//! - A leader that goes away without an outcome (its client hung up, so its future was
//!   dropped) ends the flight too; its followers then run for the lead again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::error::ProxyError;

type Outcome<T> = Option<Result<T, Arc<ProxyError>>>;

/// The fetches in flight, by key (a metadata URL, an artifact's digest).
pub(crate) struct InFlight<T> {
    flights: Mutex<HashMap<String, watch::Receiver<Outcome<T>>>>,
}

impl<T> Default for InFlight<T> {
    fn default() -> Self {
        InFlight {
            flights: Mutex::new(HashMap::new()),
        }
    }
}

/// What a caller of [`InFlight::join`] is for its key.
pub(crate) enum Role<'a, T> {
    /// Fetch, then [`Leader::publish`] the outcome.
    Leader(Leader<'a, T>),
    /// Wait with [`Follower::outcome`].
    Follower(Follower<T>),
}

/// The one caller fetching a key. Dropped without publishing, it ends the flight and its
/// followers run for the lead again.
pub(crate) struct Leader<'a, T> {
    flights: &'a InFlight<T>,
    key: String,
    tx: watch::Sender<Outcome<T>>,
}

pub(crate) struct Follower<T> {
    rx: watch::Receiver<Outcome<T>>,
}

impl<T: Clone> InFlight<T> {
    /// Joins the flight for `key`, leading it if there is none.
    pub(crate) fn join(&self, key: &str) -> Role<'_, T> {
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rx) = flights.get(key) {
            // A leader dropped without cleaning up cannot happen (`Drop` removes the
            // entry under this lock), but a closed channel is treated as no flight.
            if rx.has_changed().is_ok() {
                return Role::Follower(Follower { rx: rx.clone() });
            }
        }
        let (tx, rx) = watch::channel(None);
        flights.insert(key.to_owned(), rx);
        Role::Leader(Leader {
            flights: self,
            key: key.to_owned(),
            tx,
        })
    }

    /// How many keys are being fetched now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.flights.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl<T: Clone> Leader<'_, T> {
    /// Ends the flight and hands `outcome` (a copy of an error) to every follower; returns
    /// it to the leader unchanged.
    pub(crate) fn publish(self, outcome: Result<T, ProxyError>) -> Result<T, ProxyError> {
        let shared = match &outcome {
            Ok(v) => Ok(v.clone()),
            Err(e) => Err(Arc::new(duplicate(e))),
        };
        // `send_replace` stores the value even when no follower is listening yet: one that
        // joined just before the flight ended still finds it.
        self.tx.send_replace(Some(shared));
        outcome
    }
}

impl<T> Drop for Leader<'_, T> {
    fn drop(&mut self) {
        let mut flights = self
            .flights
            .flights
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Only this flight's entry: a new flight for the key may not have started yet
        // (the entry is removed here, under the lock `join` takes), but be exact anyway.
        if flights
            .get(&self.key)
            .is_some_and(|rx| rx.same_channel(&self.tx.subscribe()))
        {
            flights.remove(&self.key);
        }
    }
}

impl<T: Clone> Follower<T> {
    /// The leader's outcome; `None` when the leader went away without one (then join
    /// again).
    pub(crate) async fn outcome(mut self) -> Option<Result<T, ProxyError>> {
        let seen = self.rx.wait_for(Option::is_some).await.ok()?;
        match seen.as_ref()? {
            Ok(v) => Some(Ok(v.clone())),
            Err(e) => Some(Err(duplicate(e))),
        }
    }
}

/// A copy of `e` for another request: the same status and client message.
pub(crate) fn duplicate(e: &ProxyError) -> ProxyError {
    match e {
        ProxyError::BadRequest(m) => ProxyError::BadRequest(m.clone()),
        ProxyError::NotFound(m) => ProxyError::NotFound(m.clone()),
        ProxyError::Refused(m) => ProxyError::Refused(m.clone()),
        ProxyError::PolicyUnavailable(m) => ProxyError::PolicyUnavailable(m.clone()),
        ProxyError::NotImplemented(m) => ProxyError::NotImplemented(m.clone()),
        ProxyError::Upstream { fault, url, detail } => ProxyError::Upstream {
            fault: *fault,
            url: url.clone(),
            detail: detail.clone(),
        },
        ProxyError::Internal(cause) => ProxyError::Internal(anyhow::anyhow!("{cause:#}")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::server::error::UpstreamFault;

    /// Fetches `key` through `flights`, counting real fetches in `fetches`.
    async fn fetch(
        flights: &InFlight<u32>,
        fetches: &AtomicUsize,
        fail: bool,
    ) -> Result<u32, ProxyError> {
        loop {
            match flights.join("k") {
                Role::Leader(leader) => {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    let outcome = if fail {
                        Err(ProxyError::upstream(
                            UpstreamFault::Status(500),
                            "u",
                            "HTTP 500",
                        ))
                    } else {
                        Ok(7)
                    };
                    return leader.publish(outcome);
                }
                Role::Follower(f) => {
                    if let Some(outcome) = f.outcome().await {
                        return outcome;
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch_and_a_failure_does_not_stick() {
        let flights = InFlight::default();
        let fetches = AtomicUsize::new(0);
        let all = futures_util::future::join_all((0..20).map(|_| fetch(&flights, &fetches, true)));
        let outcomes = all.await;
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        for o in outcomes {
            let e = o.unwrap_err();
            assert_eq!(e.status(), axum::http::StatusCode::BAD_GATEWAY);
            assert!(e.to_string().contains("HTTP 500"), "{e}");
        }
        assert_eq!(flights.len(), 0, "a finished flight is not kept");
        // The next caller fetches again, and succeeds.
        assert_eq!(fetch(&flights, &fetches, false).await.unwrap(), 7);
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_leader_that_goes_away_hands_the_lead_on() {
        let flights: InFlight<u32> = InFlight::default();
        let Role::Leader(leader) = flights.join("k") else {
            panic!("the first caller leads");
        };
        let Role::Follower(follower) = flights.join("k") else {
            panic!("the second caller follows");
        };
        drop(leader);
        assert!(follower.outcome().await.is_none());
        assert!(matches!(flights.join("k"), Role::Leader(_)));
    }
}
