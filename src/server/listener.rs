//! How `depfw serve` takes client connections, on the mirror (`server.listen`) and on the
//! admin listener (`admin.listen`), so that slow or greedy clients cannot take depfw down.
//!
//! Issue #11 measured the old `axum::serve` loop: no deadline on request headers and no cap
//! on connections, so 300 clients sending their headers a byte at a time used up every file
//! descriptor and every new client, the admin included, timed out. This loop bounds each
//! resource a client can hold ([`ConnectionLimits`], the `[server]` keys):
//!
//! - **headers**: hyper's `header_read_timeout` (`server.header-timeout-secs`), which also
//!   closes a keep-alive connection left idle that long;
//! - **request bodies**: a body a handler reads must arrive within
//!   `server.body-timeout-secs` ([`Deadlined`]); the mirror reads none, and hyper closes a
//!   connection whose body was left unread rather than wait for it;
//! - **slow readers**: a client that has fallen behind a response (its socket does not take
//!   more bytes) must read at `server.client-min-rate` bytes/s over each
//!   `server.client-rate-window-secs`, or the connection is dropped ([`Paced`]);
//! - **connections**: at most `server.max-connections` at once, at most
//!   `server.max-connections-per-peer` from one IP address (one client cannot take every
//!   slot). A connection over either cap is shed: it is answered at once with a 503, a
//!   `Retry-After` and a line saying which limit it met, and closed ([`shed`]). The default
//!   cap is sized below the open-file limit ([`default_max_connections`], raised to the hard
//!   limit at start by [`raise_open_file_limit`]), so depfw sheds before descriptors run out.
//!
//! The admin listener runs the same loop with its own small cap ([`ADMIN_MAX_CONNECTIONS`]),
//! so it stays reachable while the mirror is saturated.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use bytes::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

use super::tls::TlsAcceptor;
use crate::config::ConnectionLimits;

/// Seconds a shed client is told to wait (`Retry-After`).
pub(crate) const RETRY_AFTER_SECS: u64 = 5;

/// Connections the admin listener serves at once (and from one peer): a few people and
/// scripts, never the mirror's load; kept apart so a saturated mirror leaves it reachable.
pub(crate) const ADMIN_MAX_CONNECTIONS: usize = 64;

/// Shed connections being answered at once; beyond this a connection over the cap is
/// closed without an answer, so shedding itself cannot use up descriptors.
const SHEDDING_AT_ONCE: usize = 256;

/// How long a shed connection may take to receive its 503 (and send its request, which is
/// read and dropped so the close does not reset the answer away).
const SHED_LINGER: Duration = Duration::from_secs(2);

/// Descriptors kept for what is not a client connection: the store, artifact files and
/// spools, upstream connections, the admin listener's connections.
const RESERVED_FDS: u64 = 256;

/// The enforced limits, resolved from the config and the open-file limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) header_timeout: Duration,
    pub(crate) body_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_per_peer: usize,
    /// Bytes/s; 0: no minimum.
    pub(crate) min_rate: u64,
    pub(crate) rate_window: Duration,
}

impl Limits {
    /// The mirror's limits: `server.max-connections` or, when absent, the default for the
    /// open-file limit `nofile`.
    pub(crate) fn mirror(c: &ConnectionLimits, nofile: Option<u64>) -> Limits {
        let max = c
            .max_connections
            .unwrap_or_else(|| default_max_connections(nofile));
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        Limits {
            header_timeout: Duration::from_secs(c.header_timeout_secs),
            body_timeout: Duration::from_secs(c.body_timeout_secs),
            max_connections: max,
            max_per_peer: usize::try_from(c.max_connections_per_peer)
                .unwrap_or(usize::MAX)
                .min(max),
            min_rate: c.client_min_rate,
            rate_window: Duration::from_secs(c.client_rate_window_secs),
        }
    }

    /// The admin listener's: the mirror's deadlines, its own cap.
    pub(crate) fn admin(mirror: &Limits) -> Limits {
        Limits {
            max_connections: ADMIN_MAX_CONNECTIONS,
            max_per_peer: ADMIN_MAX_CONNECTIONS,
            ..*mirror
        }
    }
}

/// The default `server.max-connections`: half of the descriptors left after
/// [`RESERVED_FDS`] (a connection may hold a second one: an artifact file or an upstream
/// socket), at least 16 and at most 10,000. Without a known limit, 1,024.
pub(crate) fn default_max_connections(nofile: Option<u64>) -> u64 {
    match nofile {
        Some(n) => (n.saturating_sub(RESERVED_FDS) / 2).clamp(16, 10_000),
        None => 1024,
    }
}

/// Raises the soft open-file limit to the hard limit (many systems start processes at a
/// soft 1,024 with a hard limit far above it) and returns the soft limit now in force.
#[cfg(unix)]
pub(crate) fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    // An unlimited hard limit is not accepted as a soft one (Linux caps it at
    // fs.nr_open, macOS at OPEN_MAX): try a large finite value instead.
    let wanted = now.maximum.unwrap_or(1 << 20);
    if now.current.is_some_and(|c| c < wanted) {
        let raised = Rlimit {
            current: Some(wanted),
            maximum: now.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(error = %e, "the open-file limit could not be raised");
        }
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(not(unix))]
pub(crate) fn raise_open_file_limit() -> Option<u64> {
    None
}

/// Connection slots: a total and one count per peer address.
struct Slots {
    max: usize,
    max_per_peer: usize,
    taken: Mutex<Taken>,
}

#[derive(Default)]
struct Taken {
    total: usize,
    per_peer: HashMap<IpAddr, usize>,
}

/// Why a connection was shed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Full {
    Total(usize),
    Peer(usize),
}

impl Slots {
    fn take(self: &Arc<Self>, peer: Option<IpAddr>) -> Result<Slot, Full> {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ip) = peer {
            if taken.per_peer.get(&ip).copied().unwrap_or(0) >= self.max_per_peer {
                return Err(Full::Peer(self.max_per_peer));
            }
        }
        if taken.total >= self.max {
            return Err(Full::Total(self.max));
        }
        taken.total += 1;
        if let Some(ip) = peer {
            *taken.per_peer.entry(ip).or_default() += 1;
        }
        Ok(Slot {
            slots: Arc::clone(self),
            peer,
        })
    }
}

/// One taken slot, given back when the connection ends.
struct Slot {
    slots: Arc<Slots>,
    peer: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut taken = self.slots.taken.lock().unwrap_or_else(|e| e.into_inner());
        taken.total = taken.total.saturating_sub(1);
        if let Some(ip) = self.peer {
            if let std::collections::hash_map::Entry::Occupied(mut e) = taken.per_peer.entry(ip) {
                *e.get_mut() = e.get().saturating_sub(1);
                if *e.get() == 0 {
                    e.remove();
                }
            }
        }
    }
}

/// Sends what a response writes at once (`TCP_NODELAY`), for [`axum::serve::ListenerExt::tap_io`]
/// on a TCP listener. With Nagle's algorithm on, a response whose head and body leave in
/// separate writes (any streamed body: a large artifact, a file read in steps) waits for
/// the client's delayed ACK of the first segment, up to 40 ms on Linux, before its body goes
/// out; nginx sets `tcp_nodelay` on its keep-alive connections for the same reason.
pub(crate) fn send_at_once(tcp: &mut tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set");
    }
}

/// The peer of an accepted connection: its address for `ConnectInfo` (the mirror decides
/// anonymous access on it, the admin counts wrong tokens per address), whose IP is what
/// `server.max-connections-per-peer` counts. A Unix socket has none.
pub(crate) trait Peer {
    fn socket_addr(&self) -> Option<SocketAddr>;
}

impl Peer for SocketAddr {
    fn socket_addr(&self) -> Option<SocketAddr> {
        Some(*self)
    }
}

#[cfg(unix)]
impl Peer for tokio::net::unix::SocketAddr {
    fn socket_addr(&self) -> Option<SocketAddr> {
        None
    }
}

/// Serves `router` on `listener` under `limits` until `stop` resolves, then lets the
/// requests in flight finish (idle connections are closed at once). With `tls`, every
/// connection is an HTTPS one (`server::tls`).
pub(crate) async fn serve<L>(
    mut listener: L,
    router: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    stop: impl Future<Output = ()> + Send,
) where
    L: axum::serve::Listener,
    L::Addr: Peer,
{
    let slots = Arc::new(Slots {
        max: limits.max_connections,
        max_per_peer: limits.max_per_peer,
        taken: Mutex::new(Taken::default()),
    });
    let shedding = Arc::new(tokio::sync::Semaphore::new(SHEDDING_AT_ONCE));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        // `accept` sleeps and retries by itself on errors such as EMFILE.
        let (io, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let peer = addr.socket_addr();
        let slot = match slots.take(peer.map(|a| a.ip())) {
            Ok(slot) => slot,
            Err(full) => {
                shed(io, full, &shedding, tls.clone(), limits.header_timeout);
                continue;
            }
        };
        let router = router.clone();
        let body_timeout = limits.body_timeout;
        let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
            let mut request = request.map(|body| Deadlined::new(body, body_timeout));
            if let Some(peer) = peer {
                request.extensions_mut().insert(ConnectInfo(peer));
            }
            router.clone().oneshot(request)
        });
        // Pacing measures the client's socket, under TLS as without it.
        let io = Paced::new(io, limits.min_rate, limits.rate_window);
        let (http, watcher, tls) = (http.clone(), graceful.watcher(), tls.clone());
        let handshake_deadline = limits.header_timeout;
        tokio::spawn(async move {
            let ended = match tls {
                None => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(io), service))
                        .await
                }
                Some(tls) => match tokio::time::timeout(handshake_deadline, tls.accept(io)).await {
                    Ok(Ok(io)) => {
                        watcher
                            .watch(http.serve_connection(TokioIo::new(io), service))
                            .await
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, peer = ?peer, "TLS handshake failed");
                        Ok(())
                    }
                    Err(_) => {
                        tracing::debug!(peer = ?peer, "TLS handshake not done within the header deadline");
                        Ok(())
                    }
                },
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, peer = ?peer, "client connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Answers a connection over a cap with a 503 and closes it, reading what the client
/// sent meanwhile so that the close does not reset the answer away. At most
/// [`SHEDDING_AT_ONCE`] at a time, each for at most [`SHED_LINGER`] (plus the TLS handshake,
/// without which an HTTPS client could not read the answer, under `handshake_deadline`);
/// beyond that the connection is closed unanswered.
fn shed<Io>(
    io: Io,
    full: Full,
    shedding: &Arc<tokio::sync::Semaphore>,
    tls: Option<TlsAcceptor>,
    handshake_deadline: Duration,
) where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(permit) = Arc::clone(shedding).try_acquire_owned() else {
        tracing::debug!("shedding too many connections at once: closed unanswered");
        return;
    };
    tracing::debug!(?full, "connection shed");
    let response = shed_response(full);
    tokio::spawn(async move {
        let _permit = permit;
        match tls {
            None => answer_and_close(io, &response).await,
            Some(tls) => {
                if let Ok(Ok(io)) = tokio::time::timeout(handshake_deadline, tls.accept(io)).await {
                    answer_and_close(io, &response).await;
                }
            }
        }
    });
}

/// Writes `response`, closes the write side and drains what the client sends, for at most
/// [`SHED_LINGER`].
async fn answer_and_close<Io: AsyncRead + AsyncWrite + Unpin>(mut io: Io, response: &[u8]) {
    let _ = tokio::time::timeout(SHED_LINGER, async {
        io.write_all(response).await?;
        io.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut read = 0usize;
        while read < 64 * 1024 {
            match io.read(&mut sink).await? {
                0 => break,
                n => read += n,
            }
        }
        Ok::<_, io::Error>(())
    })
    .await;
}

/// The 503 a shed connection gets: `Retry-After` and a line saying which limit it met.
fn shed_response(full: Full) -> Vec<u8> {
    let why = match full {
        Full::Peer(n) => format!(
            "depfw: too many connections from your address ({n}, server.max-connections-per-peer); \
             close idle ones or retry in {RETRY_AFTER_SECS} s\n"
        ),
        Full::Total(n) => format!(
            "depfw: at its connection limit ({n} clients at once, server.max-connections); \
             retry in {RETRY_AFTER_SECS} s\n"
        ),
    };
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         retry-after: {RETRY_AFTER_SECS}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{why}",
        why.len()
    )
    .into_bytes()
}

/// A request body that must arrive by a deadline (`server.body-timeout-secs`), counted
/// from when the request's headers were read. The timer starts only when a handler waits
/// for the body.
pub(crate) struct Deadlined<B> {
    inner: B,
    deadline: Instant,
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<B> Deadlined<B> {
    fn new(inner: B, timeout: Duration) -> Deadlined<B> {
        Deadlined {
            inner,
            deadline: Instant::now() + timeout,
            timeout,
            sleep: None,
        }
    }
}

/// What a handler reading a late body gets.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0} s (server.body-timeout-secs)")]
pub(crate) struct BodyTimeout(u64);

impl<B> http_body::Body for Deadlined<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => return Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {}
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(this.timeout.as_secs()).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A client socket that must keep reading: once a write does not go through (the client's
/// receive window is full), the client has `window` to read `min_rate × window` bytes, and
/// so on for each window while it stays behind; slower, the connection fails with
/// `TimedOut` and hyper drops it. A client that keeps up never starts a window.
pub(crate) struct Paced<Io> {
    io: Io,
    min_rate: u64,
    window: Duration,
    /// While behind: when the window started and the bytes written since.
    behind: Option<(Instant, u64)>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<Io> Paced<Io> {
    fn new(io: Io, min_rate: u64, window: Duration) -> Paced<Io> {
        Paced {
            io,
            min_rate,
            window,
            behind: None,
            timer: None,
        }
    }

    /// The bytes a window must see.
    fn needed(&self) -> u64 {
        self.min_rate.saturating_mul(self.window.as_secs().max(1))
    }

    /// Accounts for one write attempt's outcome.
    fn account(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if self.min_rate == 0 {
            return result;
        }
        let now = Instant::now();
        match result {
            Poll::Ready(Ok(n)) => {
                if let Some((start, written)) = &mut self.behind {
                    *written += n as u64;
                    if now >= *start + self.window {
                        // The window is over and the client read enough: caught up for now.
                        if *written >= self.needed() {
                            self.behind = None;
                        } else {
                            return Poll::Ready(Err(self.too_slow()));
                        }
                    }
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                let window = self.window;
                let needed = self.needed();
                let (start, written) = *self.behind.get_or_insert((now, 0));
                if now >= start + window {
                    if written < needed {
                        return Poll::Ready(Err(self.too_slow()));
                    }
                    self.behind = Some((now, 0));
                }
                let end = self.behind.map_or(now, |(s, _)| s) + window;
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(end)));
                if timer.deadline() != end {
                    timer.as_mut().reset(end);
                }
                // Wakes this task when the window ends, to judge it then.
                if timer.as_mut().poll(cx).is_ready() {
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
            other => other,
        }
    }

    fn too_slow(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the client read less than {} bytes/s over {} s (server.client-min-rate)",
                self.min_rate,
                self.window.as_secs()
            ),
        )
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Paced<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Paced<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_write(cx, buf);
        this.account(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.account(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `depfw serve` does to every accepted mirror and admin connection.
    #[tokio::test]
    async fn an_accepted_connection_sends_without_waiting_for_acks() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut accepted, _) = listener.accept().await.unwrap();
        assert!(!accepted.nodelay().unwrap(), "Nagle is on by default");
        send_at_once(&mut accepted);
        assert!(accepted.nodelay().unwrap());
    }

    #[test]
    fn one_peer_cannot_take_every_slot() {
        let slots = Arc::new(Slots {
            max: 3,
            max_per_peer: 2,
            taken: Mutex::new(Taken::default()),
        });
        let a = Some(IpAddr::from([127, 0, 0, 1]));
        let b = Some(IpAddr::from([127, 0, 0, 2]));
        let a1 = slots.take(a).unwrap();
        let _a2 = slots.take(a).unwrap();
        assert_eq!(slots.take(a).err(), Some(Full::Peer(2)));
        let _b1 = slots.take(b).unwrap();
        assert_eq!(slots.take(b).err(), Some(Full::Total(3)));
        drop(a1);
        let _b2 = slots.take(b).unwrap();
        assert_eq!(slots.taken.lock().unwrap().per_peer.len(), 2);
    }

    #[test]
    fn the_default_cap_leaves_descriptors_free() {
        assert_eq!(default_max_connections(Some(1024)), 384);
        assert_eq!(default_max_connections(Some(20_000)), 9_872);
        assert_eq!(default_max_connections(Some(1 << 20)), 10_000);
        assert_eq!(default_max_connections(Some(64)), 16);
        assert_eq!(default_max_connections(None), 1024);
    }

    #[test]
    fn a_shed_answer_is_a_503_with_retry_after_and_why() {
        let text = String::from_utf8(shed_response(Full::Peer(2))).unwrap();
        assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
        assert!(text.contains("\r\nretry-after: 5\r\n"), "{text}");
        assert!(text.contains("server.max-connections-per-peer"), "{text}");
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
    }

    /// A client that reads nothing is cut off once a window passes; paused time, so no
    /// real waiting.
    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_dropped() {
        let (server, _client) = tokio::io::duplex(1024);
        let mut paced = Paced::new(server, 100, Duration::from_secs(10));
        let chunk = vec![0u8; 512];
        let err = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                if let Err(e) = paced.write_all(&chunk).await {
                    return e;
                }
            }
        })
        .await
        .expect("dropped within the window");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("server.client-min-rate"), "{err}");
    }

    /// A client that falls behind but keeps reading at the minimum rate is not dropped.
    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_client_is_served() {
        let (server, mut client) = tokio::io::duplex(1024);
        let mut paced = Paced::new(server, 100, Duration::from_secs(2));
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 200];
            let mut total = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                match client.read(&mut buf).await {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => total += n,
                }
            }
        });
        let data = vec![1u8; 8 * 1024];
        paced
            .write_all(&data)
            .await
            .expect("a steady reader is served");
        paced.shutdown().await.unwrap();
        drop(paced);
        assert_eq!(reader.await.unwrap(), data.len());
    }
}
