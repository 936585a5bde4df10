//! Talking to upstream registries: metadata with a bounded, revalidating cache, and
//! artifacts spooled to disk while hashed, so that no unverified byte reaches a client.
//!
//! Every transfer is bounded in time ([`super::transfer`]) and size; concurrent misses for
//! one metadata URL share one fetch ([`super::inflight`]); redirects are followed only to a
//! configured upstream; and when upstream fails after the TTL, the last good metadata is
//! served for `upstream.stale-if-error-secs`, marked stale ([`Fetched::stale`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, ETAG, IF_NONE_MATCH};
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};
use tokio::io::AsyncWriteExt;

use super::credentials::Credentials;
use super::error::{ProxyError, UpstreamFault};
use super::inflight::{InFlight, Role};
use super::metadata_cache::{Hit, MetadataCache, Stale};
use super::transfer::{Limits, Transfer};
use crate::config::UpstreamConfig;
use crate::registry::Digest;

/// Metadata as fetched (or revalidated) from upstream.
#[derive(Clone)]
pub(crate) struct Fetched {
    pub body: Bytes,
    /// True when the body was (re)downloaded by this call rather than served from cache.
    pub fresh: bool,
    /// Identifies this body: a new number per download, unchanged by `304` revalidation,
    /// so what is derived from the body (parsed, rendered) can be cached against it.
    pub generation: u64,
    /// Set when upstream failed and this is the last good body, served under
    /// `upstream.stale-if-error-secs`.
    pub stale: Option<std::sync::Arc<StaleServed>>,
}

/// Why a metadata body was served stale: for the client's `Warning` header.
#[derive(Debug)]
pub(crate) struct StaleServed {
    /// Since the body was last fetched or revalidated.
    pub age: Duration,
    /// What upstream did (the error's text).
    pub cause: String,
}

pub(crate) struct Upstream {
    metadata: reqwest::Client,
    artifacts: reqwest::Client,
    cache: MetadataCache,
    generations: AtomicU64,
    /// `upstream.metadata-ttl-secs`.
    ttl: Duration,
    /// `upstream.metadata-cache-entries`: also bounds the stale-if-error failure notes.
    capacity: usize,
    max_metadata: u64,
    max_artifact: u64,
    limits: Limits,
    /// Metadata fetches in flight, by URL.
    flights: InFlight<Option<Fetched>>,
    /// `upstream.stale-if-error-secs`.
    stale_if_error: Duration,
    /// URLs answered stale after an upstream failure: when and why. Within a TTL of the
    /// failure the stale body is served at once instead of every request waiting for a
    /// failing upstream again; removed by the next successful fetch.
    failed: Mutex<HashMap<String, (Instant, String)>>,
    /// The private upstreams' credentials, attached by origin.
    credentials: Credentials,
}

/// Follows a redirect only to one of `allowed` (the configured upstreams): a registry must
/// not be able to send depfw fetching from another host (an internal address, say).
fn redirects(allowed: Vec<url::Origin>) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let origin = attempt.url().origin();
        if attempt.previous().len() >= 10 {
            attempt.error("more than 10 redirects")
        } else if allowed.contains(&origin) {
            attempt.follow()
        } else {
            let to = origin.ascii_serialization();
            attempt.error(format!(
                "redirected to {to}, which is not a configured upstream: not followed"
            ))
        }
    })
}

pub(crate) fn classify(url: &str, e: &reqwest::Error) -> ProxyError {
    let fault = if e.is_timeout() {
        UpstreamFault::Timeout
    } else if e.is_connect() {
        UpstreamFault::Connect
    } else {
        UpstreamFault::Io
    };
    // reqwest's Display hides the cause chain (e.g. "connection reset").
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    ProxyError::upstream(fault, url, detail)
}

impl Upstream {
    /// Redirects are followed to the configured upstreams, `upstream.redirect-origins` and
    /// `also_from` (`server.cargo-download-origins`) only.
    pub(crate) fn new(cfg: &UpstreamConfig, also_from: &[url::Url]) -> anyhow::Result<Upstream> {
        let timeout = Duration::from_secs(cfg.timeout_secs);
        let agent = concat!("depfw/", env!("CARGO_PKG_VERSION"));
        let allowed: Vec<url::Origin> = [&cfg.npm, &cfg.pypi, &cfg.pypi_files, &cfg.cargo_index]
            .into_iter()
            .chain(cfg.private_urls())
            .chain(&cfg.redirect_origins)
            .chain(also_from)
            .map(url::Url::origin)
            .collect();
        // Metadata is asked for gzip-encoded (packuments compress ~10x) and decoded here;
        // the decoded size is what `max-metadata-bytes` bounds, so a gzip bomb stops there.
        // Time bounds: [`Transfer`] (reqwest's total timeout only as a backstop, later).
        let metadata = reqwest::Client::builder()
            .user_agent(agent)
            .gzip(true)
            .redirect(redirects(allowed.clone()))
            .timeout(Duration::from_secs(cfg.transfer_deadline_secs) + timeout)
            .connect_timeout(timeout)
            .build()?;
        // Never decompressed: digests cover the raw bytes.
        let artifacts = reqwest::Client::builder()
            .user_agent(agent)
            .no_gzip()
            .redirect(redirects(allowed))
            .connect_timeout(timeout)
            .build()?;
        Ok(Upstream {
            metadata,
            artifacts,
            cache: MetadataCache::new(
                cfg.metadata_cache_bytes,
                cfg.metadata_cache_entries,
                Duration::from_secs(cfg.metadata_ttl_secs),
            ),
            generations: AtomicU64::new(1),
            ttl: Duration::from_secs(cfg.metadata_ttl_secs),
            capacity: usize::try_from(cfg.metadata_cache_entries).unwrap_or(usize::MAX),
            max_metadata: cfg.max_metadata_bytes,
            max_artifact: cfg.max_artifact_bytes,
            limits: Limits::new(cfg),
            flights: InFlight::default(),
            stale_if_error: Duration::from_secs(cfg.stale_if_error_secs),
            failed: Mutex::new(HashMap::new()),
            credentials: Credentials::load(cfg)?,
        })
    }

    /// `url`'s body: fresh within the TTL, or stale (to revalidate, or to serve under
    /// stale-if-error).
    fn cached(&self, url: &str) -> (Option<Fetched>, Option<Stale>) {
        let (hit, stale) = self.cache.lookup(url);
        let hit = hit.map(|Hit { body, generation }| Fetched {
            body,
            fresh: false,
            generation,
            stale: None,
        });
        (hit, stale)
    }

    /// GETs metadata at `url`, from cache within the TTL, revalidating with the upstream
    /// `ETag` after it. `Ok(None)` means upstream said 404. Concurrent misses for one URL
    /// share one fetch: the first fetches, the others wait for its outcome.
    pub(crate) async fn metadata(
        &self,
        url: &str,
        accept: &str,
    ) -> Result<Option<Fetched>, ProxyError> {
        loop {
            if let (Some(hit), _) = self.cached(url) {
                return Ok(Some(hit));
            }
            match self.flights.join(url) {
                Role::Leader(leader) => {
                    let outcome = self.fetch_metadata(url, accept).await;
                    return leader.publish(outcome);
                }
                Role::Follower(follower) => {
                    if let Some(outcome) = follower.outcome().await {
                        // The leader's download; recorded by the leader, once.
                        return outcome.map(|f| f.map(|f| Fetched { fresh: false, ..f }));
                    }
                }
            }
        }
    }

    /// [`Upstream::metadata`] for the one caller fetching `url`. Checks the cache again
    /// (a fetch may have finished since the caller looked). When upstream fails (5xx,
    /// connection, timeout) the last good body is served for `stale-if-error` after the TTL.
    async fn fetch_metadata(&self, url: &str, accept: &str) -> Result<Option<Fetched>, ProxyError> {
        let (hit, stale) = self.cached(url);
        if let Some(hit) = hit {
            return Ok(Some(hit));
        }
        if let Some(stale) = &stale {
            if let Some(cause) = self.recently_failed(url, stale) {
                return Ok(Some(served_stale(stale, cause)));
            }
        }
        match self.revalidate(url, accept, stale.as_ref()).await {
            Err(e) => match stale {
                Some(stale) if self.serves_stale(&e, &stale) => {
                    tracing::warn!(%url, "{e}; serving the last good metadata");
                    let cause = match &e {
                        ProxyError::Upstream { detail, .. } => detail.clone(),
                        other => other.to_string(),
                    };
                    let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
                    if failed.len() >= self.capacity {
                        failed.clear();
                    }
                    failed.insert(url.to_owned(), (Instant::now(), cause.clone()));
                    drop(failed);
                    Ok(Some(served_stale(&stale, cause)))
                }
                _ => Err(e),
            },
            Ok(fetched) => {
                let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
                failed.remove(url);
                Ok(fetched)
            }
        }
    }

    /// The cause of a failure of `url` less than a TTL ago that `stale` (still within the
    /// grace) answered.
    fn recently_failed(&self, url: &str, stale: &Stale) -> Option<String> {
        let failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        let (when, cause) = failed.get(url)?;
        let in_grace = stale.checked.elapsed() < self.ttl + self.stale_if_error;
        (when.elapsed() < self.ttl && in_grace).then(|| {
            let ago = when.elapsed().as_secs();
            format!("{cause}, {ago} s ago; retried after upstream.metadata-ttl-secs")
        })
    }

    /// Whether `e` is an upstream failure that `stale`, still within the grace, answers.
    fn serves_stale(&self, e: &ProxyError, stale: &Stale) -> bool {
        let failed = matches!(
            e,
            ProxyError::Upstream {
                fault: UpstreamFault::Timeout | UpstreamFault::Connect | UpstreamFault::Io,
                ..
            }
        ) || matches!(
            e,
            ProxyError::Upstream { fault: UpstreamFault::Status(s), .. } if *s >= 500
        );
        failed
            && !self.stale_if_error.is_zero()
            && stale.checked.elapsed() < self.ttl + self.stale_if_error
    }

    /// The request to upstream for [`Upstream::fetch_metadata`], conditional on `stale`'s
    /// validator.
    async fn revalidate(
        &self,
        url: &str,
        accept: &str,
        stale: Option<&Stale>,
    ) -> Result<Option<Fetched>, ProxyError> {
        let transfer = Transfer::start(self.limits, url);
        let mut req = self.metadata.get(url).header(ACCEPT, accept);
        if let Some(auth) = self.credentials.header(url) {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        if let Some(Stale {
            validator: Some(etag),
            ..
        }) = stale
        {
            req = req.header(IF_NONE_MATCH, etag);
        }
        let resp = transfer.send(req).await?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            if let Some(stale) = stale {
                self.cache.store(
                    url,
                    stale.body.clone(),
                    stale.validator.clone(),
                    stale.generation,
                );
                return Ok(Some(Fetched {
                    body: stale.body.clone(),
                    fresh: false,
                    generation: stale.generation,
                    stale: None,
                }));
            }
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.failed_status(url, status));
        }
        let validator = resp
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = self
            .read_bounded(url, resp, self.max_metadata, transfer)
            .await?;
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        self.cache.store(url, body.clone(), validator, generation);
        Ok(Some(Fetched {
            body,
            fresh: true,
            generation,
            stale: None,
        }))
    }

    /// An unsuccessful answer of `url`; a 401 or 403 says which credentials were (or were
    /// not) sent, so the operator knows which file to fix.
    fn failed_status(&self, url: &str, status: reqwest::StatusCode) -> ProxyError {
        let detail = match status.as_u16() {
            code @ (401 | 403) => self.credentials.refusal(url, code),
            _ => format!("HTTP {status}"),
        };
        ProxyError::upstream(UpstreamFault::Status(status.as_u16()), url, detail)
    }

    /// Drops a cached body, e.g. one that failed to parse, so the next request refetches.
    pub(crate) fn forget(&self, url: &str) {
        self.cache.forget(url);
    }

    async fn read_bounded(
        &self,
        url: &str,
        resp: reqwest::Response,
        max: u64,
        mut transfer: Transfer<'_>,
    ) -> Result<Bytes, ProxyError> {
        let too_large = || {
            ProxyError::upstream(
                UpstreamFault::TooLarge,
                url,
                format!("response larger than the {max}-byte limit (upstream.max-metadata-bytes)"),
            )
        };
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(too_large());
        }
        let mut buf = BytesMut::with_capacity(
            resp.content_length()
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0),
        );
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = transfer.next(&mut stream).await? {
            if (buf.len() + chunk.len()) as u64 > max {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        // The body is cached for the TTL and parsed documents share it: a buffer that grew
        // by doubling (no length, or gzip-decoded) would keep up to twice its size. Shrunk
        // in place rather than copied, so that a large body never exists twice.
        if buf.capacity() - buf.len() > buf.len() / 16 {
            let mut body = Vec::from(buf);
            body.shrink_to_fit();
            return Ok(Bytes::from(body));
        }
        Ok(buf.freeze())
    }

    /// Downloads an artifact into `spool`, hashing as it streams, and checks `expected`.
    /// On any failure the spool file is removed.
    pub(crate) async fn artifact(
        &self,
        url: &str,
        expected: &Digest,
        spool: &Path,
    ) -> Result<Spooled, ProxyError> {
        let guard = SpoolGuard(Some(spool.to_owned()));
        let mut transfer = Transfer::start(self.limits, url).for_artifact();
        let mut req = self.artifacts.get(url).header(ACCEPT_ENCODING, "identity");
        if let Some(auth) = self.credentials.header(url) {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        let resp = transfer.send(req).await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(self.failed_status(url, status));
        }
        let max = self.max_artifact;
        let too_large = || {
            ProxyError::upstream(
                UpstreamFault::TooLarge,
                url,
                format!("artifact larger than the {max}-byte limit (upstream.max-artifact-bytes)"),
            )
        };
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(too_large());
        }
        let io = |e: std::io::Error| ProxyError::Internal(anyhow::anyhow!("spooling {url}: {e}"));
        // Buffered: each write to a `tokio::fs::File` is a round trip to the blocking pool,
        // and upstream chunks are often a few KiB.
        let mut file = tokio::io::BufWriter::with_capacity(
            256 << 10,
            tokio::fs::File::create(spool).await.map_err(io)?,
        );
        let (mut s1, mut s256, mut s512) = (Sha1::new(), Sha256::new(), Sha512::new());
        let mut size = 0u64;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = transfer.next(&mut stream).await? {
            size += chunk.len() as u64;
            if size > max {
                return Err(too_large());
            }
            s1.update(&chunk);
            s256.update(&chunk);
            s512.update(&chunk);
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        file.get_ref().sync_all().await.map_err(io)?;
        let sha256 = s256.finalize().to_vec();
        let sha512 = s512.finalize().to_vec();
        let actual = match expected {
            Digest::Sha1(_) => Digest::Sha1(s1.finalize().to_vec()),
            Digest::Sha256(_) => Digest::Sha256(sha256.clone()),
            Digest::Sha512(_) => Digest::Sha512(sha512.clone()),
        };
        if &actual != expected {
            return Err(ProxyError::upstream(
                UpstreamFault::Integrity,
                url,
                format!("integrity mismatch: expected {expected}, got {actual}"),
            ));
        }
        Ok(Spooled {
            path: guard.keep(),
            size,
            sha256: hex::encode(sha256),
            sha512: hex::encode(sha512),
        })
    }
}

/// `stale`'s body, marked as served because upstream failed with `cause`.
fn served_stale(stale: &Stale, cause: String) -> Fetched {
    Fetched {
        body: stale.body.clone(),
        fresh: false,
        generation: stale.generation,
        stale: Some(std::sync::Arc::new(StaleServed {
            age: stale.checked.elapsed(),
            cause,
        })),
    }
}

/// A verified artifact in the spool directory.
pub(crate) struct Spooled {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    pub sha512: String,
}

/// Removes a partly written spool file unless kept.
struct SpoolGuard(Option<PathBuf>);

impl SpoolGuard {
    fn keep(mut self) -> PathBuf {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for SpoolGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}
