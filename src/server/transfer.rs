//! Time bounds on one upstream transfer, metadata or artifact: how long to wait for any
//! byte (`upstream.timeout-secs`), how long the whole transfer may take
//! (`upstream.transfer-deadline-secs`) and the average rate its body must keep up after a
//! grace (`upstream.min-transfer-rate`, `upstream.min-transfer-rate-grace-secs`).
//!
//! A per-read timeout alone lets a hostile or broken upstream that sends one small chunk a
//! second hold a client's request (and a download slot) for as long as it likes: with
//! `timeout-secs = 5` such an upstream held requests 120 s. Every limit here ends the
//! transfer with a 504 that names the key that ended it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::error::{ProxyError, UpstreamFault};
use crate::config::UpstreamConfig;

/// The configured bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The longest wait for the answer or for the next piece of a body.
    pub idle: Duration,
    /// The longest a whole transfer may take.
    pub deadline: Duration,
    /// Bytes per second a body must average after `grace`; 0: no minimum.
    pub min_rate: u64,
    pub grace: Duration,
}

impl Limits {
    pub(crate) fn new(cfg: &UpstreamConfig) -> Limits {
        Limits {
            idle: Duration::from_secs(cfg.timeout_secs),
            deadline: Duration::from_secs(cfg.transfer_deadline_secs),
            min_rate: cfg.min_transfer_rate,
            grace: Duration::from_secs(cfg.min_transfer_rate_grace_secs),
        }
    }
}

/// One transfer in progress, from the request being sent.
pub(crate) struct Transfer<'a> {
    limits: Limits,
    url: &'a str,
    started: Instant,
    bytes: u64,
    /// `metadata` or `artifact`, for the upstream latency metric.
    kind: &'static str,
}

impl<'a> Transfer<'a> {
    pub(crate) fn start(limits: Limits, url: &'a str) -> Transfer<'a> {
        Transfer {
            limits,
            url,
            started: Instant::now(),
            bytes: 0,
            kind: "metadata",
        }
    }

    /// This transfer fetches an artifact (metadata is the default).
    pub(crate) fn for_artifact(mut self) -> Self {
        self.kind = "artifact";
        self
    }

    /// Sends the request and waits for the answer's headers, within `idle` and the deadline.
    pub(crate) async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ProxyError> {
        let (wait, _) = self.wait(false);
        match tokio::time::timeout(wait, req.send()).await {
            Ok(Ok(resp)) => {
                crate::observe::upstream_answered(self.kind, self.started);
                Ok(resp)
            }
            Ok(Err(e)) => Err(super::upstream::classify(self.url, &e)),
            Err(_) => Err(self.expired(false)),
        }
    }

    /// The body's next chunk (`None` at its end), or the error of the limit it broke.
    pub(crate) async fn next<S>(&mut self, body: &mut S) -> Result<Option<Bytes>, ProxyError>
    where
        S: Stream<Item = reqwest::Result<Bytes>> + Unpin,
    {
        let (wait, _) = self.wait(true);
        let chunk = match tokio::time::timeout(wait, body.next()).await {
            Ok(Some(chunk)) => chunk.map_err(|e| super::upstream::classify(self.url, &e))?,
            Ok(None) => return Ok(None),
            Err(_) => return Err(self.expired(true)),
        };
        self.bytes += chunk.len() as u64;
        if let Some(broken) = self.broken() {
            return Err(broken);
        }
        Ok(Some(chunk))
    }

    /// How long to wait for the next event before a limit is broken, and which limit that
    /// would be: the idle timeout, the deadline, or (for a body) the moment the average
    /// rate falls below the minimum if nothing more arrives.
    fn wait(&self, body: bool) -> (Duration, Limit) {
        let elapsed = self.started.elapsed();
        let mut wait = (self.limits.idle, Limit::Idle);
        let to_deadline = self.limits.deadline.saturating_sub(elapsed);
        if to_deadline < wait.0 {
            wait = (to_deadline, Limit::Deadline);
        }
        if body && self.limits.min_rate > 0 {
            // The average falls below the minimum at bytes / min_rate seconds, never before
            // the grace is over.
            let behind = Duration::from_secs_f64(self.bytes as f64 / self.limits.min_rate as f64)
                .max(self.limits.grace);
            let to_slow = behind.saturating_sub(elapsed);
            if to_slow < wait.0 {
                wait = (to_slow, Limit::Rate);
            }
        }
        wait
    }

    /// The error for a wait that ran out.
    fn expired(&self, body: bool) -> ProxyError {
        let (_, limit) = self.wait(body);
        let limit = match limit {
            // The wait ran out; whichever limit was nearest when it started has now passed.
            Limit::Idle if self.started.elapsed() >= self.limits.deadline => Limit::Deadline,
            other => other,
        };
        self.error(limit)
    }

    /// The limit a transfer that just received a chunk has broken, if any.
    fn broken(&self) -> Option<ProxyError> {
        let elapsed = self.started.elapsed();
        if elapsed >= self.limits.deadline {
            return Some(self.error(Limit::Deadline));
        }
        if self.limits.min_rate > 0
            && elapsed >= self.limits.grace
            && (self.bytes as f64) < self.limits.min_rate as f64 * elapsed.as_secs_f64()
        {
            return Some(self.error(Limit::Rate));
        }
        None
    }

    fn error(&self, limit: Limit) -> ProxyError {
        let secs = self.started.elapsed().as_secs_f64();
        let detail = match limit {
            Limit::Idle => format!(
                "timed out: no answer for {} s (upstream.timeout-secs) after {} bytes",
                self.limits.idle.as_secs(),
                self.bytes
            ),
            Limit::Deadline => format!(
                "timed out: transfer not finished after {} s (upstream.transfer-deadline-secs), \
                 {} bytes received",
                self.limits.deadline.as_secs(),
                self.bytes
            ),
            Limit::Rate => format!(
                "timed out: {} bytes in {secs:.1} s, slower than upstream.min-transfer-rate \
                 ({} bytes/s)",
                self.bytes, self.limits.min_rate
            ),
        };
        ProxyError::upstream(UpstreamFault::Timeout, self.url, detail)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    Idle,
    Deadline,
    Rate,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(min_rate: u64) -> Limits {
        Limits {
            idle: Duration::from_secs(5),
            deadline: Duration::from_secs(60),
            min_rate,
            grace: Duration::from_secs(2),
        }
    }

    #[test]
    fn the_nearest_limit_decides_the_wait() {
        let t = Transfer::start(limits(0), "u");
        assert_eq!(t.wait(true).1, Limit::Idle);
        let mut t = Transfer::start(limits(1000), "u");
        // Nothing received: the rate check waits for the grace.
        assert_eq!(t.wait(true).1, Limit::Rate);
        assert!(t.wait(true).0 <= Duration::from_secs(2));
        // Headers are not held to the rate.
        assert_eq!(t.wait(false).1, Limit::Idle);
        // 100 kB at 1 kB/s keeps the average up for 100 s: idle is nearer.
        t.bytes = 100_000;
        assert_eq!(t.wait(true).1, Limit::Idle);
        let t = Transfer {
            limits: Limits {
                deadline: Duration::from_secs(1),
                ..limits(0)
            },
            ..Transfer::start(limits(0), "u")
        };
        assert_eq!(t.wait(true).1, Limit::Deadline);
        let e = t.error(Limit::Deadline).to_string();
        assert!(e.contains("upstream.transfer-deadline-secs"), "{e}");
    }
}
