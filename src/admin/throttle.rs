//! Wrong admin tokens, counted per client address, so that a weak token is slow to guess.
//!
//! The admin page's sign-in and the API's `Authorization: Bearer` both check the one admin
//! token through [`Throttle::attempt`]. After a few wrong tokens from one address, every
//! further wrong token from it is refused with 429 and `Retry-After` for a delay that doubles
//! with each failure, up to 15 minutes. IPv6 clients are counted per /64, the block a single
//! host can pick addresses from. Behind a reverse proxy every client has the proxy's address:
//! `admin.trusted-proxies` names the proxies whose `X-Forwarded-For` says who the client is.
//!
//! The right token always passes, even from a blocked address. The old rule (while blocked,
//! even the right token is refused, so that a guesser cannot tell it found it) let any agent
//! on the admin's host lock the admin out for as long as it liked by sending wrong tokens
//! from the same address. Letting the right token through means a blocked guesser who hits
//! it does learn so. That is safe because of what is left to guess with: the admin listener
//! is apart from the mirror (`admin.listen`, loopback or a Unix socket by default), so only
//! local processes reach it; the token is at least 16 characters and the README makes it
//! with `openssl rand -hex 32` (256 bits), far beyond what any request rate can search; the
//! compare stays constant-time on hashes; and a right token arriving from an address that
//! also sent wrong ones is logged as a warning, so that a successful guess is not silent.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::repo::{FailureCount, ThrottleRepo};

use axum::http::HeaderMap;

/// Wrong tokens allowed from an address before it waits.
const FREE_FAILURES: u32 = 5;
/// The first wait; each further failure doubles it.
const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Addresses remembered at most; quiet ones are forgotten first.
const MAX_CLIENTS: usize = 10_000;

/// Who is counted: an IPv4 address, an IPv6 /64, or every client whose address is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    Address(IpAddr),
    Unknown,
}

impl Client {
    fn of(peer: Option<SocketAddr>) -> Client {
        match peer.map(|p| p.ip().to_canonical()) {
            Some(IpAddr::V6(v6)) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Client::Address(IpAddr::V6(prefix.into()))
            }
            Some(v4) => Client::Address(v4),
            None => Client::Unknown,
        }
    }

    /// The key the shared counts ([`ThrottleRepo`]) use.
    fn key(self) -> String {
        match self {
            Client::Address(ip) => ip.to_string(),
            Client::Unknown => "unknown".to_owned(),
        }
    }
}

/// The count after one more wrong token, from the last count and how long the client was
/// quiet since (longer than the longest wait starts afresh), and the wait it earns.
fn count_failure(previous: u32, quiet_for: Duration) -> (u32, Option<Duration>) {
    let previous = if quiet_for >= MAX_DELAY { 0 } else { previous };
    let count = previous.saturating_add(1);
    let wait = count.checked_sub(FREE_FAILURES + 1).map(|over| {
        FIRST_DELAY
            .saturating_mul(1u32.checked_shl(over).unwrap_or(u32::MAX))
            .min(MAX_DELAY)
    });
    (count, wait)
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

/// The failure counts of every client that recently presented a wrong token: in memory, or
/// in the database on PostgreSQL (every replica counts the same client together).
#[derive(Default)]
pub(crate) struct Throttle {
    clients: Mutex<HashMap<Client, Failures>>,
    shared: Option<Arc<dyn ThrottleRepo>>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

/// What the admin endpoint does with a presented token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The right token: served, and the address starts afresh.
    Pass,
    /// A wrong token, counted: 401.
    Wrong,
    /// A wrong token from an address that must wait this long: 429.
    Refused(Duration),
}

impl Throttle {
    /// Counts kept in `repo`.
    pub(crate) fn shared(repo: Arc<dyn ThrottleRepo>) -> Throttle {
        Throttle {
            clients: Mutex::default(),
            shared: Some(repo),
        }
    }

    /// Decides on a token `peer` presented; `correct` is the constant-time comparison's result.
    pub(crate) fn attempt(&self, peer: Option<SocketAddr>, correct: bool, now: Instant) -> Attempt {
        let blocked = self.check(peer, now);
        if correct {
            if blocked.is_err() {
                tracing::warn!(
                    peer = ?peer,
                    "the right admin token came from an address that is waiting after wrong \
                     tokens: if that was not an admin, rotate the token"
                );
            }
            self.succeeded(peer);
            return Attempt::Pass;
        }
        if let Err(wait) = blocked {
            return Attempt::Refused(wait);
        }
        if let Some(wait) = self.failed(peer, now) {
            tracing::warn!(peer = ?peer, "admin: wrong tokens, this address waits {wait:?}");
        }
        Attempt::Wrong
    }

    /// `Err(wait)` while `peer` must wait before its token is even looked at.
    pub(crate) fn check(&self, peer: Option<SocketAddr>, now: Instant) -> Result<(), Duration> {
        if let Some(repo) = &self.shared {
            let count = repo
                .get(&Client::of(peer).key())
                .map_err(|e| tracing::warn!("admin throttle lookup failed: {e}"));
            let until = count.ok().flatten().and_then(|c| c.blocked_until);
            let left = until.and_then(|u| (u - chrono::Utc::now()).to_std().ok());
            return match left {
                Some(wait) if !wait.is_zero() => Err(wait),
                _ => Ok(()),
            };
        }
        let Ok(clients) = self.clients.lock() else {
            return Ok(());
        };
        match clients.get(&Client::of(peer)).and_then(|f| f.blocked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Counts a wrong token from `peer`; returns how long it must now wait, if at all.
    pub(crate) fn failed(&self, peer: Option<SocketAddr>, now: Instant) -> Option<Duration> {
        if let Some(repo) = &self.shared {
            let at = chrono::Utc::now();
            let wait = Mutex::new(None);
            let update = |previous: Option<FailureCount>| {
                let (count, earned) = previous.map_or((1, None), |p| {
                    count_failure(p.count, (at - p.last).to_std().unwrap_or_default())
                });
                *wait.lock().unwrap_or_else(|e| e.into_inner()) = earned;
                FailureCount {
                    count,
                    last: at,
                    blocked_until: earned
                        .and_then(|w| chrono::Duration::from_std(w).ok())
                        .map(|w| at + w),
                }
            };
            if let Err(e) = repo.update(&Client::of(peer).key(), &update) {
                tracing::warn!("admin throttle count not stored: {e}");
            }
            return wait.into_inner().unwrap_or_else(|e| e.into_inner());
        }
        let Ok(mut clients) = self.clients.lock() else {
            return None;
        };
        if clients.len() >= MAX_CLIENTS {
            clients.retain(|_, f| now.saturating_duration_since(f.last) < MAX_DELAY);
        }
        if clients.len() >= MAX_CLIENTS {
            // Flooded from over 10k addresses in 15 minutes: count them all as one.
            clients.clear();
        }
        let entry = clients.entry(Client::of(peer)).or_insert(Failures {
            count: 0,
            last: now,
            blocked_until: None,
        });
        let (count, wait) = count_failure(entry.count, now.saturating_duration_since(entry.last));
        entry.count = count;
        entry.last = now;
        let wait = wait?;
        entry.blocked_until = Some(now + wait);
        Some(wait)
    }

    /// A right token: `peer` starts afresh.
    pub(crate) fn succeeded(&self, peer: Option<SocketAddr>) {
        if let Some(repo) = &self.shared {
            if let Err(e) = repo.clear(&Client::of(peer).key()) {
                tracing::warn!("admin throttle count not cleared: {e}");
            }
            return;
        }
        if let Ok(mut clients) = self.clients.lock() {
            clients.remove(&Client::of(peer));
        }
    }
}

/// The client behind `peer`: when `peer` is a trusted proxy, the rightmost address in
/// `X-Forwarded-For` that is not itself a trusted proxy (each proxy appends the address it
/// saw, so addresses left of the first untrusted one may be forged by the client).
pub(crate) fn client_address(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[IpAddr],
) -> Option<SocketAddr> {
    let is_trusted = |ip: IpAddr| trusted.contains(&ip.to_canonical());
    let peer_ip = peer?.ip().to_canonical();
    if !is_trusted(peer_ip) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(ip) => continue,
            Ok(ip) => return Some(SocketAddr::new(ip, 0)),
            // An unreadable hop: nothing left of it can be trusted; count the proxy.
            Err(_) => break,
        }
    }
    peer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn waits_start_after_the_free_failures_and_double() {
        let throttle = Throttle::default();
        let now = Instant::now();
        let peer = addr("203.0.113.7:5000");
        for _ in 0..FREE_FAILURES {
            assert_eq!(throttle.failed(peer, now), None);
            assert!(throttle.check(peer, now).is_ok());
        }
        assert_eq!(throttle.failed(peer, now), Some(FIRST_DELAY));
        assert_eq!(throttle.check(peer, now), Err(FIRST_DELAY));
        assert!(throttle.check(peer, now + FIRST_DELAY).is_ok());
        assert_eq!(throttle.failed(peer, now), Some(2 * FIRST_DELAY));
        for _ in 0..40 {
            throttle.failed(peer, now);
        }
        assert_eq!(throttle.check(peer, now), Err(MAX_DELAY));
        // Another address is not affected; a right token resets.
        assert!(throttle.check(addr("203.0.113.8:5000"), now).is_ok());
        throttle.succeeded(peer);
        assert!(throttle.check(peer, now).is_ok());
    }

    #[test]
    fn the_right_token_passes_from_a_blocked_address_and_wrong_ones_do_not() {
        let throttle = Throttle::default();
        let now = Instant::now();
        let peer = addr("127.0.0.1:40000");
        for _ in 0..=FREE_FAILURES {
            assert_eq!(throttle.attempt(peer, false, now), Attempt::Wrong);
        }
        assert_eq!(
            throttle.attempt(peer, false, now),
            Attempt::Refused(FIRST_DELAY)
        );
        // Another agent on the admin's host cannot lock the admin out.
        assert_eq!(throttle.attempt(peer, true, now), Attempt::Pass);
        assert_eq!(throttle.attempt(peer, false, now), Attempt::Wrong);
    }

    #[test]
    fn ipv6_hosts_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for i in 0..=FREE_FAILURES {
            throttle.failed(addr(&format!("[2001:db8:1:2::{i:x}]:443")), now);
        }
        assert!(throttle
            .check(addr("[2001:db8:1:2:ffff::1]:1"), now)
            .is_err());
        assert!(throttle.check(addr("[2001:db8:1:3::1]:1"), now).is_ok());
        for _ in 0..=FREE_FAILURES {
            throttle.failed(addr("[::ffff:198.51.100.4]:1"), now);
        }
        assert!(throttle.check(addr("198.51.100.4:2"), now).is_err());
    }

    #[test]
    fn a_trusted_proxy_is_seen_through_and_anyone_else_is_not() {
        let trusted: Vec<IpAddr> = vec!["10.0.0.2".parse().unwrap(), "::1".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.5".parse().unwrap());
        headers.append("x-forwarded-for", "10.0.0.2".parse().unwrap());
        let client = |peer: &str| client_address(addr(peer), &headers, &trusted);
        // Through the proxy (and a second trusted hop): the client it saw, not the forgeable
        // leftmost entry.
        assert_eq!(client("10.0.0.2:1"), addr("203.0.113.5:0"));
        assert_eq!(client("[::1]:1"), addr("203.0.113.5:0"));
        // Straight from an untrusted peer, the header is the client's own claim: ignored.
        assert_eq!(client("198.51.100.1:7"), addr("198.51.100.1:7"));
        let mut bad = HeaderMap::new();
        bad.insert("x-forwarded-for", "203.0.113.5, not-an-ip".parse().unwrap());
        assert_eq!(
            client_address(addr("10.0.0.2:1"), &bad, &trusted),
            addr("10.0.0.2:1")
        );
        assert_eq!(client_address(None, &headers, &trusted), None);
    }

    #[test]
    fn a_quiet_client_starts_afresh() {
        let throttle = Throttle::default();
        let now = Instant::now();
        let peer = addr("192.0.2.1:1");
        for _ in 0..FREE_FAILURES {
            throttle.failed(peer, now);
        }
        assert_eq!(throttle.failed(peer, now + MAX_DELAY), None);
    }
}

/// The PostgreSQL backend: wrong tokens counted on one replica make the client wait on
/// every replica (a load balancer spreads a guesser over all of them).
#[cfg(test)]
mod shared_tests {
    use super::*;

    #[test]
    fn wrong_tokens_on_one_replica_make_the_client_wait_on_another() {
        let Some(url) = crate::store::pg::testing::fresh_database("throttle_shared") else {
            return;
        };
        let connect =
            || crate::store::pg::PgStore::connect(&url, 2, Duration::from_secs(3600)).unwrap();
        let (a, b) = (
            Throttle::shared(Arc::new(connect())),
            Throttle::shared(Arc::new(connect())),
        );
        let peer = Some("192.0.2.7:5000".parse().unwrap());
        let now = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(a.attempt(peer, false, now), Attempt::Wrong);
        }
        assert!(b.check(peer, now).is_ok(), "free failures do not block");
        // Four more: a wait of 8 s, far longer than the checks below take.
        let waits: Vec<_> = (0..4).map(|_| a.failed(peer, now)).collect();
        assert_eq!(waits.last(), Some(&Some(8 * FIRST_DELAY)), "{waits:?}");
        assert!(
            matches!(b.attempt(peer, false, now), Attempt::Refused(_)),
            "replica B makes the client wait"
        );
        assert_eq!(
            b.attempt(peer, true, now),
            Attempt::Pass,
            "the right token passes"
        );
        assert!(
            a.check(peer, now).is_ok(),
            "and the client starts afresh everywhere"
        );
    }
}
