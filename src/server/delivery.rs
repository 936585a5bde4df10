//! Handing out artifact bytes: the gate's last step, after the policy admitted the version.
//!
//! A tarball, wheel, `.metadata` file or `.crate` is served only from a configured upstream
//! host, only with a published digest, and only once the bytes matched it: from the on-disk
//! cache ([`super::artifacts`]) or spooled from upstream while hashed, then through the
//! content rules ([`super::content`]). The decision record is made durable before the first
//! byte goes out. Concurrent requests for one artifact
//! that is not cached share one download ([`super::inflight`], keyed by digest): each gets
//! its own decision record, and the verified bytes of the one download.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio_util::io::ReaderStream;

use super::artifacts::{Hit, Lookup};
use super::content;
use super::error::{ProxyError, UpstreamFault};
use super::inflight::Role;
use super::verdicts::{decide_version, OnRefusal};
use super::{AppState, RequestCtx};
use crate::policy::Policy;
use crate::registry::{ArtifactRecord, ArtifactRequest, Digest, VersionRecord};
use crate::store::decisions::{DecisionRecord, RecordKind};

/// How one artifact request is delivered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery<'a> {
    /// The package's upstream metadata URL: dropped from the metadata cache when a content
    /// rule holds a version, so the next rendering hides it. Set by [`super::pipeline`].
    pub metadata_url: Option<&'a str>,
    /// The configured upstream hosts the artifact URL must be on.
    pub origins: &'a [&'a url::Url],
    pub on_refusal: OnRefusal,
    /// `HEAD` (uv sends one per wheel): the policy answer without a download.
    pub head: bool,
}

/// Whether `url` is served by the same scheme, host and port as one of `origins`: metadata
/// must not be able to send depfw fetching from arbitrary hosts.
fn same_origin(url: &str, origins: &[&url::Url]) -> bool {
    url::Url::parse(url).is_ok_and(|u| origins.iter().any(|o| o.origin() == u.origin()))
}

/// The artifact gate: evaluates the version, then serves verified bytes from the cache or
/// from upstream (or, for a `HEAD`, only says whether it would). `record` is the version
/// as the (cached) metadata lists it.
pub(crate) async fn deliver(
    state: &AppState,
    ctx: &RequestCtx,
    policy: &Policy,
    req: &ArtifactRequest,
    record: Option<&VersionRecord>,
    how: Delivery<'_>,
) -> Result<Response, ProxyError> {
    let (mut rec, artifact, digest) = admit(state, ctx, policy, req, record, how)?;
    // `admit` found the record.
    let record = record.ok_or_else(|| ProxyError::NotFound(req.name.to_string()))?;
    if how.head {
        return head(state, digest).await;
    }
    // Only [`OnRefusal::ServeYankedMetadata`] gets here with a refused verdict.
    let (served, served_from_cache) = if rec.verdict.is_servable() {
        ("served", "served-from-cache")
    } else {
        ("served-yanked-metadata", "served-yanked-metadata")
    };
    if let Digest::Sha512(b) = digest {
        rec.sha512 = Some(hex::encode(b));
    }
    // A warm install's common case, a verified cache hit: hashing it, the content rules and
    // the durable record in one trip off the async workers (each trip hands the worker to
    // another thread), and a small file's bytes served from that same read.
    let hit = super::blocking(|| -> Result<Option<Hit>, ProxyError> {
        let Some(hit) = cached_now(state, &rec, digest)? else {
            return Ok(None);
        };
        if let Some(refusal) = content::screen(
            state, ctx, policy, req, record, &mut rec, &hit.path, digest, how,
        )? {
            return Err(refusal);
        }
        rec.outcome = served_from_cache.to_owned();
        state.decisions().append_durable(&mut rec)?;
        Ok(Some(hit))
    })?;
    if let Some(hit) = hit {
        return serve_hit(hit).await;
    }
    let got = match obtain(state, &rec, &artifact.upstream_url, digest).await {
        Ok(got) => got,
        Err(e) => {
            if matches!(
                e,
                ProxyError::Upstream {
                    fault: UpstreamFault::Integrity,
                    ..
                }
            ) {
                rec.outcome = "integrity-mismatch".to_owned();
                super::blocking(|| state.decisions().append_durable(&mut rec))?;
            }
            return Err(e);
        }
    };
    let bytes = match &got {
        Got::Cached(hit) => hit.path.as_path(),
        Got::Downloaded(verified) => verified.path.as_path(),
    };
    if let Some(refusal) = super::blocking(|| {
        content::screen(
            state, ctx, policy, req, record, &mut rec, bytes, digest, how,
        )
    })? {
        return Err(refusal);
    }
    match got {
        Got::Cached(hit) => {
            rec.outcome = served_from_cache.to_owned();
            super::blocking(|| state.decisions().append_durable(&mut rec))?;
            serve_hit(hit).await
        }
        Got::Downloaded(verified) => {
            rec.sha256 = Some(verified.sha256.clone());
            rec.sha512 = Some(verified.sha512.clone());
            rec.outcome = served.to_owned();
            super::blocking(|| state.decisions().append_durable(&mut rec))?;
            // The open handle keeps the bytes readable once `verified` (the last holder
            // removes an uncached spool file) is dropped.
            serve_file(&verified.path, Some(verified.size)).await
        }
    }
}

/// Verified bytes for an admitted artifact.
enum Got {
    /// From the cache, hashed again just now (a download that finished while this request
    /// waited to take the lead).
    Cached(Hit),
    /// Downloaded and verified by this request or by the one it waited for.
    Downloaded(Arc<Verified>),
}

/// A verified download, shared by the requests that waited for it.
pub(crate) struct Verified {
    path: PathBuf,
    size: u64,
    sha256: String,
    sha512: String,
    /// A spool file served without being cached (larger than the cache): removed when the
    /// last request holding it has opened it.
    discard: Option<PathBuf>,
}

impl Drop for Verified {
    fn drop(&mut self) {
        if let Some(p) = self.discard.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The artifact's verified bytes from the one download in flight for its digest (this
/// request's, or one it waits for), or from the cache when a download finished meanwhile.
/// The caller has already looked in the cache.
async fn obtain(
    state: &AppState,
    rec: &DecisionRecord,
    url: &str,
    digest: &Digest,
) -> Result<Got, ProxyError> {
    let key = digest.cache_key();
    loop {
        match state.inner.downloads.join(&key) {
            Role::Leader(leader) => {
                // A download may have finished between the lookup and taking the lead.
                if let Some(hit) = super::blocking(|| cached_now(state, rec, digest))? {
                    return Ok(Got::Cached(hit));
                }
                let outcome = download(state, url, digest).await.map(Arc::new);
                return leader.publish(outcome).map(Got::Downloaded);
            }
            Role::Follower(follower) => {
                if let Some(outcome) = follower.outcome().await {
                    return outcome.map(Got::Downloaded);
                }
                // The leader's client went away mid-download: try again (as the leader,
                // which looks in the cache first, or behind a newer one).
            }
        }
    }
}

/// The cached file for `digest`, hashed again (blocking: it reads the file). A cached file
/// that no longer matches is evicted and recorded on its own; the caller then fetches it
/// again like any miss.
fn cached_now(
    state: &AppState,
    rec: &DecisionRecord,
    digest: &Digest,
) -> Result<Option<Hit>, ProxyError> {
    match state.inner.artifacts.lookup(digest) {
        Lookup::Verified(hit) => Ok(Some(hit)),
        Lookup::Corrupt(found) => {
            tracing::warn!(package = %rec.package, "{found}; fetching it again");
            let mut evicted = rec.clone();
            evicted.outcome = "cache-integrity-mismatch".to_owned();
            state.decisions().append_durable(&mut evicted)?;
            Ok(None)
        }
        Lookup::Miss => Ok(None),
    }
}

/// Downloads the artifact, verifies it against `digest` and moves it into the cache.
async fn download(state: &AppState, url: &str, digest: &Digest) -> Result<Verified, ProxyError> {
    let cache = &state.inner.artifacts;
    let spool = cache.spool_path();
    let spooled = state.inner.upstream.artifact(url, digest, &spool).await?;
    let path = super::blocking(|| cache.insert(digest, &spooled.path, spooled.size));
    let discard = (path == spooled.path).then(|| path.clone());
    Ok(Verified {
        path,
        size: spooled.size,
        sha256: spooled.sha256,
        sha512: spooled.sha512,
        discard,
    })
}

/// The policy half of the artifact gate: evaluates the version (recording a refusal) and
/// checks that the artifact is on a configured upstream with a published digest. Returns
/// the decision record to complete, the artifact and the digest its bytes must match.
fn admit<'r>(
    state: &AppState,
    ctx: &RequestCtx,
    policy: &Policy,
    req: &ArtifactRequest,
    record: Option<&'r VersionRecord>,
    how: Delivery<'_>,
) -> Result<(DecisionRecord, &'r ArtifactRecord, &'r Digest), ProxyError> {
    let spec = format!("{}@{}", req.name, req.version_text);
    let record =
        record.ok_or_else(|| ProxyError::NotFound(format!("{spec} not found upstream")))?;
    let mut rec = decide_version(
        state,
        ctx,
        policy,
        RecordKind::Artifact,
        &req.name,
        record,
        how.on_refusal,
    )?;
    let artifact = record
        .artifact(&req.filename)
        .ok_or_else(|| ProxyError::NotFound(format!("{spec} has no file {}", req.filename)))?;
    rec.upstream_url = Some(artifact.upstream_url.clone());
    if !same_origin(&artifact.upstream_url, how.origins) {
        return Err(ProxyError::upstream(
            UpstreamFault::Invalid,
            &artifact.upstream_url,
            format!("{spec}: the artifact URL is not on a configured upstream"),
        ));
    }
    let Some(digest) = &artifact.digest else {
        return Err(ProxyError::upstream(
            UpstreamFault::Invalid,
            &artifact.upstream_url,
            format!("{spec} has no published checksum, so depfw cannot verify it"),
        ));
    };
    super::integrity::note_weak_digest(&mut rec, digest);
    Ok((rec, artifact, digest))
}

/// `HEAD` on an admitted artifact: nothing is downloaded. The length is known only once
/// the file is cached; no `Accept-Ranges`, so clients fall back to one full, verified
/// download.
async fn head(state: &AppState, digest: &Digest) -> Result<Response, ProxyError> {
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(len) = state.inner.artifacts.cached_size(digest) {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Ok(resp)
}

/// The most of a file read per step of a response. `ReaderStream`'s default, 4 KiB, made a
/// 12 MB wheel cost ~3,000 round trips to tokio's blocking pool (190 ms against a static
/// server's 7–14 ms, most of what a warm `pip install` spent in depfw); a larger step is one
/// buffer per response in flight.
const SERVE_CHUNK: usize = 256 << 10;

/// A verified cache hit: the bytes that were hashed when they were kept, else the file.
async fn serve_hit(hit: Hit) -> Result<Response, ProxyError> {
    let Some(bytes) = hit.bytes else {
        return serve_file(&hit.path, None).await;
    };
    let len = bytes.len();
    let mut resp = Response::new(Body::from(bytes));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(resp)
}

async fn serve_file(path: &std::path::Path, size: Option<u64>) -> Result<Response, ProxyError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| ProxyError::Internal(anyhow::anyhow!("opening {}: {e}", path.display())))?;
    let size = match size {
        Some(s) => s,
        None => file
            .metadata()
            .await
            .map_err(|e| ProxyError::Internal(e.into()))?
            .len(),
    };
    let chunk = usize::try_from(size).map_or(SERVE_CHUNK, |s| s.clamp(1, SERVE_CHUNK));
    let mut resp = Response::new(Body::from_stream(ReaderStream::with_capacity(file, chunk)));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt as _;

    use super::*;

    /// A cached file goes out in steps of [`SERVE_CHUNK`], not `ReaderStream`'s 4 KiB (one
    /// blocking-pool round trip each), and byte for byte.
    #[tokio::test]
    async fn a_file_is_served_in_large_steps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wheel");
        let bytes: Vec<u8> = (0..4 * SERVE_CHUNK + 7).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let resp = serve_file(&path, None).await.unwrap();
        assert_eq!(
            resp.headers()[header::CONTENT_LENGTH],
            bytes.len().to_string()
        );
        let mut stream = resp.into_body().into_data_stream();
        let (mut got, mut steps) = (Vec::new(), 0);
        while let Some(chunk) = stream.next().await {
            got.extend_from_slice(&chunk.unwrap());
            steps += 1;
        }
        assert!(got == bytes, "served bytes differ from the file");
        assert!(steps <= 8, "{steps} steps for {} bytes", bytes.len());
    }
}
