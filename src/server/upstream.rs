//! Talking to upstream registries: metadata with a bounded, revalidating cache, and
//! artifacts spooled to disk while hashed, so that no unverified byte reaches a client.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, ETAG, IF_NONE_MATCH};
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};
use tokio::io::AsyncWriteExt;

use super::error::{ProxyError, UpstreamFault};
use super::metadata_cache::{Hit, MetadataCache, Stale};
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
}

pub(crate) struct Upstream {
    metadata: reqwest::Client,
    artifacts: reqwest::Client,
    cache: MetadataCache,
    generations: AtomicU64,
    max_metadata: u64,
    max_artifact: u64,
}

fn classify(url: &str, e: &reqwest::Error) -> ProxyError {
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
    pub(crate) fn new(cfg: &UpstreamConfig) -> anyhow::Result<Upstream> {
        let timeout = Duration::from_secs(cfg.timeout_secs);
        let agent = concat!("depfw/", env!("CARGO_PKG_VERSION"));
        // Metadata is asked for gzip-encoded (packuments compress ~10x) and decoded here.
        let metadata = reqwest::Client::builder()
            .user_agent(agent)
            .gzip(true)
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        // Artifacts can be large: bound each read, not the whole transfer. Never
        // decompressed: digests cover the raw bytes.
        let artifacts = reqwest::Client::builder()
            .user_agent(agent)
            .no_gzip()
            .connect_timeout(timeout)
            .read_timeout(timeout)
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
            max_metadata: cfg.max_metadata_bytes,
            max_artifact: cfg.max_artifact_bytes,
        })
    }

    /// GETs metadata at `url`, from cache within the TTL, revalidating with the upstream
    /// `ETag` after it. `Ok(None)` means upstream said 404.
    pub(crate) async fn metadata(
        &self,
        url: &str,
        accept: &str,
    ) -> Result<Option<Fetched>, ProxyError> {
        let (hit, stale) = self.cache.lookup(url);
        if let Some(Hit { body, generation }) = hit {
            return Ok(Some(Fetched {
                body,
                fresh: false,
                generation,
            }));
        }
        let mut req = self.metadata.get(url).header(ACCEPT, accept);
        if let Some(Stale {
            validator: Some(etag),
            ..
        }) = &stale
        {
            req = req.header(IF_NONE_MATCH, etag);
        }
        let resp = req.send().await.map_err(|e| classify(url, &e))?;
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
                    body: stale.body,
                    fresh: false,
                    generation: stale.generation,
                }));
            }
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(ProxyError::upstream(
                UpstreamFault::Status(status.as_u16()),
                url,
                format!("HTTP {status}"),
            ));
        }
        let validator = resp
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = self.read_bounded(url, resp, self.max_metadata).await?;
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        self.cache.store(url, body.clone(), validator, generation);
        Ok(Some(Fetched {
            body,
            fresh: true,
            generation,
        }))
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
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| classify(url, &e))?;
            if (buf.len() + chunk.len()) as u64 > max {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        // The body is cached for the TTL and parsed documents share it: a buffer that grew
        // by doubling (no length, or gzip-decoded) would keep up to twice its size.
        if buf.capacity() - buf.len() > buf.len() / 16 {
            return Ok(Bytes::copy_from_slice(&buf));
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
        let resp = self
            .artifacts
            .get(url)
            .header(ACCEPT_ENCODING, "identity")
            .send()
            .await
            .map_err(|e| classify(url, &e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(ProxyError::upstream(
                UpstreamFault::Status(status.as_u16()),
                url,
                format!("HTTP {status}"),
            ));
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
        let mut file = tokio::fs::File::create(spool).await.map_err(io)?;
        let (mut s1, mut s256, mut s512) = (Sha1::new(), Sha256::new(), Sha512::new());
        let mut size = 0u64;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| classify(url, &e))?;
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
        file.sync_all().await.map_err(io)?;
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
