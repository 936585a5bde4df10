//! Caches of what `depfw serve` derives from upstream metadata, so that a warm metadata
//! request is a hash lookup and a byte copy rather than parse + policy + render + hash.
//!
//! Every cache is a [`Keyed`] map: bounded by entries and by the bytes its values really
//! hold (a parsed document's heap, [`crate::registry::Protocol::footprint`]; a rendered body
//! and its gzip copy, counted when the copy is made), keyed by the upstream URL
//! (plus a variant), and invalidated by the upstream body's *generation* (a number
//! [`super::upstream::Upstream`] assigns to each downloaded body, kept across
//! `304 Not Modified` revalidations) and, where it depends on the policy, its revision:
//! - parsed documents, one typed map per protocol (`Keyed<P::Doc>` in
//!   [`super::pipeline::Served`]), reused by artifact requests, which need the version
//!   records but not the rendering;
//! - the policy's verdict on every version of a document, per agent preset, as the last
//!   rendering evaluated it ([`super::pipeline`]), read by npm's one-version manifests;
//! - rendered responses per variant (see [`super::pipeline::render_variant`]) and policy
//!   revision, with the ETag precomputed and a gzip copy made once, on the first request
//!   that accepts gzip ([`RenderCache`], one for every ecosystem: upstream URLs never
//!   collide across them).
//!
//! Verdicts and rendered entries also expire after the metadata TTL, because policy verdicts
//! can depend on the clock (a cooldown lets a version through once it is old enough) even
//! when neither the upstream body nor the policy changed. An expired rendering is not thrown
//! away: it remembers the verdicts it was rendered from ([`Rendered::with_verdicts`]), and
//! when the versions are evaluated again and come out the same, it is renewed rather than
//! rendered, hashed and gzipped again ([`RenderCache::renew_if_still_right`]). Without that, every warm
//! install after the TTL re-rendered each project page (seconds for a 7 MB PyPI page).

use std::collections::HashMap;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use super::verdicts::Filtered;
use crate::registry::rope::{Rope, RopeChunks};

/// Bodies smaller than this are not worth a `Content-Encoding`: no gzip copy is kept, and
/// the mirror's compression layer leaves them alone too ([`super::app`]), which would
/// otherwise set up a deflate stream (~0.5M instructions, eight times the rest of a cached
/// answer) for every request.
pub(crate) const GZIP_MIN_BYTES: u16 = 1024;

/// Bodies in pieces up to this size are joined into one buffer for each uncompressed
/// response (see [`Rendered::respond`]); larger ones are streamed in chunks, so that a
/// request for a 60 MB packument does not allocate 60 MB.
const JOIN_BELOW: usize = 4 << 20;

/// A rendered metadata response: body, its ETag and (lazily) its gzip encoding. An npm
/// body of 16 KiB or more is pieces of the upstream body it was rendered from ([`Rope`]),
/// so that it is not a second copy of the document; clients that accept gzip (every
/// package manager) are served the gzip copy, the others the pieces.
pub(crate) struct Rendered {
    body: Rope,
    etag: String,
    /// [`Rendered::etag`] as a header value, made once rather than for every answer.
    etag_header: Option<HeaderValue>,
    content_type: &'static str,
    /// A notice header sent with every answer (npm's `npm-notice`), see
    /// [`Rendered::with_notice`].
    notice: Option<(&'static str, HeaderValue)>,
    gzip: OnceLock<Option<Bytes>>,
    /// The verdicts this body was rendered from, so that an expired rendering can be
    /// renewed when a new evaluation agrees ([`Rendered::renders_like`]).
    verdicts: Option<Arc<Filtered>>,
}

impl Rendered {
    /// The ETag covers the policy revision too: a policy change must not be answered with
    /// `304` for a body the new policy would render differently.
    pub(crate) fn new(
        policy_revision: &str,
        content_type: &'static str,
        body: impl Into<Rope>,
    ) -> Rendered {
        let body = body.into();
        let mut h = Sha256::new();
        h.update(policy_revision.as_bytes());
        h.update([0]);
        body.for_each_slice(|s| h.update(s));
        let etag = format!("\"{}\"", &hex::encode(h.finalize())[..32]);
        Rendered {
            body,
            etag_header: HeaderValue::from_str(&etag).ok(),
            etag,
            content_type,
            notice: None,
            gzip: OnceLock::new(),
            verdicts: None,
        }
    }

    /// Remembers the verdicts the body was rendered from (see the module docs).
    pub(crate) fn with_verdicts(mut self, verdicts: Arc<Filtered>) -> Rendered {
        self.verdicts = Some(verdicts);
        self
    }

    /// Whether rendering under `verdicts` would give this same response: the same versions
    /// kept, and the same ones hidden for the same reasons (the notice header and the
    /// `yank` reasons are made from them).
    pub(crate) fn renders_like(&self, verdicts: &Filtered) -> bool {
        self.verdicts
            .as_deref()
            .is_some_and(|mine| mine.renders_like(verdicts))
    }

    /// Sends `name: text` with every answer, and `Cache-Control: no-store` instead of
    /// `no-cache`: npm prints `npm-notice` only from a response it did not store
    /// (make-fetch-happen marks a stored one `x-local-cache`, which npm-registry-fetch then
    /// stays silent for), so a packument that hides versions is fetched afresh each time and
    /// says why on every install. Left out if `text` is not a valid header value (callers
    /// pass visible ASCII).
    pub(crate) fn with_notice(mut self, name: &'static str, text: &str) -> Rendered {
        self.notice = HeaderValue::from_str(text).ok().map(|v| (name, v));
        self
    }

    #[cfg(test)]
    pub(crate) fn etag(&self) -> &str {
        &self.etag
    }

    /// The bytes this response holds: body (with the upstream body its pieces point into),
    /// gzip copy once made, ETag.
    pub(crate) fn weight(&self) -> usize {
        std::mem::size_of::<Rendered>()
            + self.body.weight()
            + 2 * self.etag.len()
            + self.notice.as_ref().map_or(0, |(_, v)| v.len())
            + self
                .gzip
                .get()
                .and_then(Option::as_ref)
                .map_or(0, Bytes::len)
            + self.verdicts.as_deref().map_or(0, Filtered::heap_size)
    }

    #[cfg(test)]
    fn gzipped(&self) -> Option<&Bytes> {
        self.gzipped_now().0
    }

    /// The gzip copy, and whether this call made it (and so grew [`Rendered::weight`]).
    fn gzipped_now(&self) -> (Option<&Bytes>, bool) {
        let mut made = false;
        let gz = self
            .gzip
            .get_or_init(|| {
                made = true;
                if self.body.len() < usize::from(GZIP_MIN_BYTES) {
                    return None;
                }
                // Compressed piece by piece into one output buffer: no joined copy of the
                // body first. Buffered: an abbreviated npm packument is a million pieces
                // of tens of bytes, too small to hand to deflate one by one.
                let enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(self.body.len() / 8),
                    flate2::Compression::default(),
                );
                let mut buf = std::io::BufWriter::with_capacity(64 << 10, enc);
                let mut ok = true;
                self.body
                    .for_each_slice(|s| ok = ok && buf.write_all(s).is_ok());
                let enc = match buf.into_inner() {
                    Ok(enc) if ok => enc,
                    _ => return None,
                };
                enc.finish().ok().map(|mut gz| {
                    gz.shrink_to_fit();
                    Bytes::from(gz)
                })
            })
            .as_ref();
        (gz, made)
    }

    /// Whether answering `request` would gzip a large body first (seconds of CPU for tens
    /// of megabytes): the caller then runs [`Rendered::response`] off the runtime workers.
    pub(crate) fn gzip_is_costly(&self, request: &HeaderMap) -> bool {
        self.body.len() >= 1 << 20 && self.gzip.get().is_none() && accepts_gzip(request)
    }

    /// The response to `request`: `304` when its `If-None-Match` matches, else the body,
    /// gzip-encoded when the client accepts it (the compression layer leaves responses that
    /// already carry a `Content-Encoding` alone).
    pub(crate) fn response(&self, request: &HeaderMap) -> Response {
        self.respond(request).0
    }

    /// [`Rendered::response`], and whether it made the gzip copy.
    fn respond(&self, request: &HeaderMap) -> (Response, bool) {
        let mut made = false;
        let matches = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim().trim_start_matches("W/") == self.etag)
            });
        let mut resp = if matches {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let gzip = if accepts_gzip(request) {
                let (gz, now) = self.gzipped_now();
                made = now;
                gz
            } else {
                None
            };
            let body = match (gzip, &self.body) {
                (Some(gz), _) => Body::from(gz.clone()),
                (None, Rope::Flat(b)) => Body::from(b.clone()),
                // Joined per response: one allocation and copy, then one write, as for a
                // flat body. Streamed in chunks, a 570 KB packument (express, full form)
                // answered about half as many requests per second.
                (None, rope) if rope.len() <= JOIN_BELOW => Body::from(rope.to_bytes()),
                (None, rope) => Body::new(RopeBody(rope.chunks())),
            };
            let mut r = Response::new(body);
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            );
            if gzip.is_some() {
                h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            r
        };
        let headers = resp.headers_mut();
        if let Some(v) = &self.etag_header {
            headers.insert(header::ETAG, v.clone());
        }
        headers.insert(
            header::VARY,
            HeaderValue::from_static("Accept, Accept-Encoding"),
        );
        let cache_control = match &self.notice {
            Some((name, value)) => {
                headers.insert(*name, value.clone());
                "no-store"
            }
            None => "no-cache",
        };
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        );
        (resp, made)
    }
}

/// A [`Rope`] response body, chunk by chunk, with its exact length (so it is sent with a
/// `Content-Length`, like a buffered body).
struct RopeBody(RopeChunks);

impl http_body::Body for RopeBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(
            self.get_mut()
                .0
                .next()
                .map(|b| Ok(http_body::Frame::data(b))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.0.remaining() == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0.remaining() as u64)
    }
}

/// Whether `Accept-Encoding` lists gzip (or `*`) with a non-zero quality.
fn accepts_gzip(request: &HeaderMap) -> bool {
    let Some(value) = request
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    value.split(',').any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let zero_q = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        !zero_q
            && (coding.eq_ignore_ascii_case("gzip")
                || coding.eq_ignore_ascii_case("x-gzip")
                || coding == "*")
    })
}

struct Slot<V: ?Sized> {
    generation: u64,
    revision: String,
    created: Instant,
    used: Instant,
    weight: usize,
    value: Arc<V>,
}

/// Whether a cached entry is within its TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    Live,
    /// Past the TTL: to be checked against a new evaluation before it is served.
    Expired,
}

/// A map bounded by entries and bytes, evicting the least recently used entry. A value
/// heavier than the whole byte bound is not stored.
struct Bounded<V: ?Sized> {
    map: HashMap<String, Slot<V>>,
    weight: usize,
    max_entries: usize,
    max_weight: usize,
    ttl: Option<Duration>,
}

impl<V: ?Sized> Bounded<V> {
    fn new(max_entries: usize, max_weight: usize, ttl: Option<Duration>) -> Self {
        Bounded {
            map: HashMap::new(),
            weight: 0,
            max_entries: max_entries.max(1),
            max_weight,
            ttl,
        }
    }

    fn get(&mut self, key: &str, generation: u64, revision: &str) -> Option<Arc<V>> {
        match self.lookup(key, generation, revision)? {
            (value, Freshness::Live) => Some(value),
            (_, Freshness::Expired) => None,
        }
    }

    /// The value stored for this `generation` and `revision`, live or past its TTL.
    fn lookup(
        &mut self,
        key: &str,
        generation: u64,
        revision: &str,
    ) -> Option<(Arc<V>, Freshness)> {
        let ttl = self.ttl;
        let slot = self.map.get_mut(key)?;
        if slot.generation != generation || slot.revision != revision {
            return None;
        }
        if ttl.is_some_and(|t| slot.created.elapsed() >= t) {
            return Some((Arc::clone(&slot.value), Freshness::Expired));
        }
        slot.used = Instant::now();
        Some((Arc::clone(&slot.value), Freshness::Live))
    }

    /// Restarts `key`'s TTL if it still holds `value`.
    fn renew(&mut self, key: &str, value: &Arc<V>) {
        if let Some(slot) = self.map.get_mut(key) {
            if Arc::ptr_eq(&slot.value, value) {
                let now = Instant::now();
                (slot.created, slot.used) = (now, now);
            }
        }
    }

    fn insert(
        &mut self,
        key: String,
        generation: u64,
        revision: &str,
        weight: usize,
        value: Arc<V>,
    ) {
        if weight > self.max_weight {
            return;
        }
        if let Some(old) = self.map.remove(&key) {
            self.weight -= old.weight;
        }
        self.evict_for(self.map.len() + 1, weight, None);
        let now = Instant::now();
        self.weight += weight;
        self.map.insert(
            key,
            Slot {
                generation,
                revision: revision.to_owned(),
                created: now,
                used: now,
                weight,
                value,
            },
        );
    }
}

impl<V: ?Sized> Bounded<V> {
    /// Evicts least recently used entries (never `keep`) until `entries` entries and
    /// `weight` more bytes fit.
    fn evict_for(&mut self, entries: usize, weight: usize, keep: Option<&str>) {
        let mut entries = entries;
        while entries > self.max_entries || self.weight + weight > self.max_weight {
            // O(n), but only on a miss with a full map.
            let Some(oldest) = self
                .map
                .iter()
                .filter(|(k, _)| Some(k.as_str()) != keep)
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(old) = self.map.remove(&oldest) {
                crate::observe::cache_evicted("metadata");
                self.weight -= old.weight;
                entries -= 1;
            }
        }
    }

    /// Adds `extra` bytes to `key`'s weight if it still holds `value` (a rendered response
    /// that just made its gzip copy), evicting others to stay within the bound, or `key`
    /// itself if it alone no longer fits.
    fn grow(&mut self, key: &str, value: &Arc<V>, extra: usize) {
        match self.map.get_mut(key) {
            Some(slot) if Arc::ptr_eq(&slot.value, value) => slot.weight += extra,
            _ => return,
        }
        self.weight += extra;
        self.evict_for(self.map.len(), 0, Some(key));
        if self.weight > self.max_weight {
            if let Some(old) = self.map.remove(key) {
                self.weight -= old.weight;
            }
        }
    }
}

/// A [`Bounded`] map shared between requests.
pub(crate) struct Keyed<V>(Mutex<Bounded<V>>);

impl<V> Keyed<V> {
    /// At most `entries` entries and `bytes` of weight; with a `ttl`, entries expire.
    pub(crate) fn new(entries: usize, bytes: usize, ttl: Option<Duration>) -> Self {
        Keyed(Mutex::new(Bounded::new(entries, bytes, ttl)))
    }

    /// The value of `key` if it was stored for this `generation` and `revision`.
    pub(crate) fn get(&self, key: &str, generation: u64, revision: &str) -> Option<Arc<V>> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(key, generation, revision)
    }

    /// Stores a value weighing `weight` bytes (not stored if larger than the budget).
    pub(crate) fn put(
        &self,
        key: &str,
        generation: u64,
        revision: &str,
        weight: usize,
        value: Arc<V>,
    ) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.insert(key.to_owned(), generation, revision, weight, value);
    }
}

/// Rendered responses, keyed by upstream URL and variant.
pub(crate) struct RenderCache {
    rendered: Mutex<Bounded<Rendered>>,
}

impl RenderCache {
    /// `entries` bounds the map (`upstream.metadata-cache-entries`) and so does `bytes`
    /// (`upstream.render-cache-bytes`: bodies and their gzip copies); responses expire
    /// after `ttl`.
    pub(crate) fn new(entries: usize, bytes: usize, ttl: Duration) -> Self {
        RenderCache {
            rendered: Mutex::new(Bounded::new(entries, bytes, Some(ttl))),
        }
    }

    /// The rendered `variant` of `url` at `generation` under policy `revision`, if live.
    #[cfg(test)]
    pub(crate) fn rendered(
        &self,
        url: &str,
        variant: &str,
        generation: u64,
        revision: &str,
    ) -> Option<Arc<Rendered>> {
        match self.lookup(url, variant, generation, revision)? {
            (hit, Freshness::Live) => Some(hit),
            (_, Freshness::Expired) => None,
        }
    }

    /// [`RenderCache::rendered`], also answering a rendering past its TTL, marked
    /// [`Freshness::Expired`]: the caller evaluates the versions again and settles it with
    /// [`RenderCache::renew_if_still_right`]. Counted as a hit only when live.
    pub(crate) fn lookup(
        &self,
        url: &str,
        variant: &str,
        generation: u64,
        revision: &str,
    ) -> Option<(Arc<Rendered>, Freshness)> {
        let mut m = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        let hit = m.lookup(&render_key(url, variant), generation, revision);
        match &hit {
            Some((_, Freshness::Live)) => crate::observe::cache_lookup("render", true),
            None => crate::observe::cache_lookup("render", false),
            // Counted by what the caller does with it: renewed, or a miss.
            Some((_, Freshness::Expired)) => {}
        }
        hit
    }

    /// Settles an expired rendering after the versions were evaluated again: when the new
    /// `verdicts` would render it the same, its TTL restarts and it is to be served (`true`,
    /// counted as renewed); otherwise it is to be rendered anew (`false`, counted as a miss).
    pub(crate) fn renew_if_still_right(
        &self,
        url: &str,
        variant: &str,
        rendered: &Arc<Rendered>,
        verdicts: &Filtered,
    ) -> bool {
        if !rendered.renders_like(verdicts) {
            crate::observe::cache_lookup("render", false);
            return false;
        }
        crate::observe::cache_renewed("render");
        let mut m = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        m.renew(&render_key(url, variant), rendered);
        true
    }

    pub(crate) fn put_rendered(
        &self,
        url: &str,
        variant: &str,
        generation: u64,
        revision: &str,
        rendered: Arc<Rendered>,
    ) {
        let weight = rendered.weight();
        let mut m = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        m.insert(
            render_key(url, variant),
            generation,
            revision,
            weight,
            rendered,
        );
    }
}

impl RenderCache {
    /// `rendered`'s response to `request` (see [`Rendered::response`]); a gzip copy made
    /// for it counts against the bound from now on.
    pub(crate) fn response(
        &self,
        url: &str,
        variant: &str,
        rendered: &Arc<Rendered>,
        request: &HeaderMap,
    ) -> Response {
        let (resp, made) = rendered.respond(request);
        if made {
            let extra = rendered
                .gzip
                .get()
                .and_then(Option::as_ref)
                .map_or(0, Bytes::len);
            let mut m = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
            m.grow(&render_key(url, variant), rendered, extra);
        }
        resp
    }

    /// The bytes held, as counted against `upstream.render-cache-bytes`.
    pub(crate) fn bytes(&self) -> usize {
        self.rendered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .weight
    }
}

/// The key of a variant of what was derived from `url`.
pub(crate) fn render_key(url: &str, variant: &str) -> String {
    [url, "\n", variant].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_goes_with_every_answer_and_keeps_clients_from_storing_it() {
        let plain = Rendered::new("rev", "application/json", b"{}".to_vec());
        let resp = plain.response(&HeaderMap::new());
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(resp.headers().get("npm-notice").is_none());

        let noticed = Rendered::new("rev", "application/json", b"{}".to_vec()).with_notice(
            "npm-notice",
            "depfw: not served: x@1.0.0 is denied by policy",
        );
        let mut revalidation = HeaderMap::new();
        revalidation.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&noticed.etag).unwrap(),
        );
        for request in [HeaderMap::new(), revalidation] {
            let resp = noticed.response(&request);
            assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
            assert_eq!(
                resp.headers()["npm-notice"],
                "depfw: not served: x@1.0.0 is denied by policy"
            );
        }
        assert!(noticed.weight() > plain.weight());
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn accept_encoding_is_parsed_with_qualities() {
        let ae = |v: &str| accepts_gzip(&headers(&[(header::ACCEPT_ENCODING, v)]));
        assert!(ae("gzip, deflate"));
        assert!(ae("br;q=1.0, GZIP;q=0.5"));
        assert!(ae("*"));
        assert!(!ae("gzip;q=0, br"));
        assert!(!ae("identity"));
        assert!(!ae("br, zstd"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn rendered_serves_gzip_once_computed_and_answers_304() {
        let body: Vec<u8> = br#"{"name":"x","versions":{}}"#.repeat(100);
        let r = Rendered::new("rev-1", "application/json", body.clone());
        let gz = r.response(&headers(&[(header::ACCEPT_ENCODING, "gzip, deflate")]));
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        let stored = r.gzipped().unwrap().clone();
        assert!(stored.len() < body.len());
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&stored[..]), &mut out)
            .unwrap();
        assert_eq!(out, body);

        let plain = r.response(&HeaderMap::new());
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let etag = plain.headers()[header::ETAG].to_str().unwrap().to_owned();
        let cond = r.response(&headers(&[(header::IF_NONE_MATCH, &format!("W/{etag}"))]));
        assert_eq!(cond.status(), StatusCode::NOT_MODIFIED);

        let other = Rendered::new("rev-2", "application/json", body);
        assert_ne!(other.etag(), r.etag(), "the policy revision is in the ETag");
    }

    /// The bytes of a response body.
    fn body_of(resp: Response) -> Bytes {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(axum::body::to_bytes(resp.into_body(), usize::MAX))
            .unwrap()
    }

    #[test]
    fn a_body_in_pieces_is_served_hashed_and_gzipped_like_one_buffer() {
        use crate::registry::rope::RopeBuilder;
        let upstream = Bytes::from(br#"{"v":"0123456789abcdef"}"#.repeat(20_000));
        let mut b = RopeBuilder::new(upstream.clone(), 0).keep_pieces();
        for i in 0..2_000 {
            b.base(i * 200..i * 200 + 150);
            b.own().extend_from_slice(format!(",{i},").as_bytes());
        }
        b.base(400_000..upstream.len());
        let rope = b.finish();
        assert!(matches!(rope, Rope::Pieces(_)), "{rope:?}");
        let flat = rope.to_bytes().to_vec();
        let pieces = Rendered::new("rev", "application/json", rope);
        let joined = Rendered::new("rev", "application/json", flat.clone());
        assert_eq!(pieces.etag(), joined.etag());

        let plain = pieces.response(&HeaderMap::new());
        assert_eq!(plain.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            http_body::Body::size_hint(plain.body()).exact(),
            Some(flat.len() as u64),
            "sent with a Content-Length"
        );
        assert_eq!(body_of(plain), flat);

        let gz = pieces.response(&headers(&[(header::ACCEPT_ENCODING, "gzip")]));
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&body_of(gz)[..]),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, flat);
        // The pieces hold the upstream body, not a copy of the rendering.
        let gz_len = pieces.gzipped().map_or(0, Bytes::len);
        assert!(pieces.weight() < upstream.len() + flat.len() / 4 + gz_len + 1024);
    }

    /// A rope of about `len` bytes in pieces of a little over a kilobyte, like a full-form
    /// npm rendering (each version's upstream bytes, then a rewritten tarball URL).
    fn pieces_of(len: usize) -> Rope {
        use crate::registry::rope::RopeBuilder;
        let upstream = Bytes::from(br#"{"v":"0123456789abcdef"},"#.repeat(len / 25 + 1));
        let mut b = RopeBuilder::new(upstream.clone(), 0);
        let mut at = 0;
        while at + 1_200 <= upstream.len() {
            b.base(at..at + 1_100);
            b.own()
                .extend_from_slice(format!("\"http://d/{at}.tgz\"").as_bytes());
            at += 1_200;
        }
        b.finish()
    }

    #[test]
    fn an_identity_response_from_pieces_is_one_buffer_up_to_a_few_megabytes() {
        for (len, joined) in [(200_000, true), (2 * JOIN_BELOW, false)] {
            let rope = pieces_of(len);
            assert!(matches!(rope, Rope::Pieces(_)), "{rope:?}");
            let flat = rope.to_bytes();
            let r = Rendered::new("rev", "application/json", rope);
            let resp = r.response(&HeaderMap::new());
            assert!(resp.headers().get(header::CONTENT_ENCODING).is_none());
            let mut body = resp.into_body();
            assert_eq!(
                http_body::Body::size_hint(&body).exact(),
                Some(flat.len() as u64),
                "sent with a Content-Length"
            );
            // Joined: the whole body is the first frame; streamed: 64 KiB chunks.
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let first = rt
                .block_on(std::future::poll_fn(|cx| {
                    http_body::Body::poll_frame(Pin::new(&mut body), cx)
                }))
                .unwrap()
                .unwrap()
                .into_data()
                .unwrap();
            assert_eq!(first.len() == flat.len(), joined, "{len}");
            let rest = rt.block_on(axum::body::to_bytes(body, usize::MAX)).unwrap();
            assert_eq!([first, rest].concat(), flat);
        }
    }

    #[test]
    fn small_bodies_are_not_encoded() {
        let r = Rendered::new("rev", "application/json", b"{}".to_vec());
        let resp = r.response(&headers(&[(header::ACCEPT_ENCODING, "gzip")]));
        assert!(resp.headers().get(header::CONTENT_ENCODING).is_none());
    }

    #[test]
    fn entries_are_keyed_by_generation_revision_and_variant() {
        let cache = RenderCache::new(10, 1 << 20, Duration::from_secs(60));
        let r = Arc::new(Rendered::new("a", "application/json", b"{}".to_vec()));
        cache.put_rendered("u", "full", 1, "a", Arc::clone(&r));
        assert!(cache.rendered("u", "full", 1, "a").is_some());
        assert!(cache.rendered("u", "corgi", 1, "a").is_none());
        assert!(
            cache.rendered("u", "full", 2, "a").is_none(),
            "new upstream body"
        );
        assert!(cache.rendered("u", "full", 1, "b").is_none(), "new policy");
        let parsed: Keyed<u32> = Keyed::new(10, 1 << 20, None);
        parsed.put("u", 1, "", 10, Arc::new(7u32));
        assert_eq!(parsed.get("u", 1, "").as_deref(), Some(&7));
        assert!(parsed.get("u", 2, "").is_none(), "new upstream body");
    }

    #[test]
    fn rendered_entries_expire_after_the_ttl() {
        let cache = RenderCache::new(10, 1 << 20, Duration::ZERO);
        let r = Arc::new(Rendered::new("a", "application/json", b"{}".to_vec()));
        cache.put_rendered("u", "full", 1, "a", r);
        assert!(cache.rendered("u", "full", 1, "a").is_none());
    }

    /// Verdicts keeping `kept` and holding `hidden` (version, reason) in quarantine.
    fn verdicts(kept: &[&str], hidden: &[(&str, &str)]) -> Filtered {
        Filtered {
            kept: kept.iter().map(|v| v.to_string()).collect(),
            hidden: hidden
                .iter()
                .map(|(v, reason)| crate::store::decisions::HiddenVersion {
                    version: v.to_string(),
                    verdict: crate::policy::Verdict::Quarantine,
                    reason: reason.to_string(),
                })
                .collect(),
            wanted: None,
            monitored: Vec::new(),
        }
    }

    #[test]
    fn an_expired_rendering_is_answered_as_such_and_renewed_only_if_still_held() {
        let cache = RenderCache::new(10, 1 << 20, Duration::ZERO);
        let made_from = || verdicts(&["1.0.0"], &[]);
        let r = Arc::new(
            Rendered::new("a", "application/json", b"{}".to_vec())
                .with_verdicts(Arc::new(made_from())),
        );
        cache.put_rendered("u", "full", 1, "a", Arc::clone(&r));
        let (hit, freshness) = cache.lookup("u", "full", 1, "a").unwrap();
        assert!(Arc::ptr_eq(&hit, &r));
        assert_eq!(freshness, Freshness::Expired);
        assert!(
            cache.lookup("u", "full", 2, "a").is_none(),
            "new upstream body"
        );
        assert!(cache.lookup("u", "full", 1, "b").is_none(), "new policy");

        let cache = RenderCache::new(10, 1 << 20, Duration::from_millis(50));
        cache.put_rendered("u", "full", 1, "a", Arc::clone(&r));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(
            cache.lookup("u", "full", 1, "a").unwrap().1,
            Freshness::Expired
        );
        assert!(
            !cache.renew_if_still_right("u", "full", &r, &verdicts(&["1.0.0", "2.0.0"], &[])),
            "a version the clock released"
        );
        assert_eq!(
            cache.lookup("u", "full", 1, "a").unwrap().1,
            Freshness::Expired
        );
        assert!(cache.renew_if_still_right("u", "full", &r, &made_from()));
        assert_eq!(
            cache.lookup("u", "full", 1, "a").unwrap().1,
            Freshness::Live
        );
        // A renewal of what was since replaced leaves the replacement alone.
        std::thread::sleep(Duration::from_millis(60));
        let newer = Arc::new(Rendered::new("a", "application/json", b"[]".to_vec()));
        cache.put_rendered("u", "full", 1, "a", Arc::clone(&newer));
        std::thread::sleep(Duration::from_millis(60));
        cache.renew_if_still_right("u", "full", &r, &made_from());
        let (hit, freshness) = cache.lookup("u", "full", 1, "a").unwrap();
        assert!(Arc::ptr_eq(&hit, &newer));
        assert_eq!(freshness, Freshness::Expired);
    }

    #[test]
    fn a_rendering_knows_the_verdicts_it_was_made_from() {
        let made_from = verdicts(
            &["1.0.0", "1.1.0"],
            &[("2.0.0", "release-cooldown: 3 h old")],
        );
        let r = Rendered::new("a", "application/json", b"{}".to_vec())
            .with_verdicts(Arc::new(made_from));
        assert!(r.renders_like(&verdicts(
            &["1.1.0", "1.0.0"],
            &[("2.0.0", "release-cooldown: 3 h old")]
        )));
        assert!(
            !r.renders_like(&verdicts(&["1.0.0", "1.1.0", "2.0.0"], &[])),
            "released"
        );
        assert!(
            !r.renders_like(&verdicts(
                &["1.0.0", "1.1.0"],
                &[("2.0.0", "release-cooldown: 4 h old")]
            )),
            "a reason shown to clients changed"
        );
        let bare = Rendered::new("a", "application/json", b"{}".to_vec());
        assert!(
            !bare.renders_like(&verdicts(&[], &[])),
            "made from unknown verdicts"
        );
    }

    #[test]
    fn render_cache_stays_under_its_byte_bound_gzip_copies_included() {
        let max = 200_000;
        let cache = RenderCache::new(1_000, max, Duration::from_secs(60));
        let gzip = headers(&[(header::ACCEPT_ENCODING, "gzip")]);
        let mut made = 0;
        for i in 0..40u8 {
            // Incompressible enough that the gzip copy weighs something.
            let body: Vec<u8> = (0..20_000u32)
                .map(|j| (j.wrapping_mul(2_654_435_761) >> 13) as u8 ^ i)
                .collect();
            let r = Arc::new(Rendered::new("a", "application/json", body));
            let url = format!("u{i}");
            cache.put_rendered(&url, "full", 1, "a", Arc::clone(&r));
            let before = cache.bytes();
            let resp = cache.response(&url, "full", &r, &gzip);
            assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
            made += 1;
            assert!(cache.bytes() > before || cache.rendered(&url, "full", 1, "a").is_none());
            assert!(
                cache.bytes() <= max,
                "{} > {max} after {made}",
                cache.bytes()
            );
        }
        let held = (0..40)
            .filter(|i| cache.rendered(&format!("u{i}"), "full", 1, "a").is_some())
            .count();
        assert!((1..40).contains(&held), "{held} held");

        let huge = Arc::new(Rendered::new("a", "application/json", vec![b' '; max + 1]));
        cache.put_rendered("huge", "full", 1, "a", Arc::clone(&huge));
        assert!(
            cache.rendered("huge", "full", 1, "a").is_none(),
            "served, not kept"
        );
        assert_eq!(
            cache.response("huge", "full", &huge, &gzip).status(),
            StatusCode::OK
        );
        assert!(cache.bytes() <= max);
    }

    #[test]
    fn keyed_stays_under_its_byte_bound() {
        let keyed: Keyed<Vec<u8>> = Keyed::new(1_000, 10_000, None);
        for i in 0..100 {
            keyed.put(&format!("k{i}"), 1, "", 1_000, Arc::new(vec![0; 1_000]));
            let m = keyed.0.lock().unwrap();
            assert!(m.weight <= 10_000);
            assert_eq!(m.weight, m.map.values().map(|s| s.weight).sum::<usize>());
        }
    }

    #[test]
    fn bounded_by_entries_and_bytes_evicting_least_recently_used() {
        let mut m: Bounded<u32> = Bounded::new(2, 100, None);
        m.insert("a".into(), 0, "", 10, Arc::new(1));
        std::thread::sleep(Duration::from_millis(2));
        m.insert("b".into(), 0, "", 10, Arc::new(2));
        std::thread::sleep(Duration::from_millis(2));
        assert!(m.get("a", 0, "").is_some(), "touch a: b is now the oldest");
        m.insert("c".into(), 0, "", 10, Arc::new(3));
        assert!(m.get("b", 0, "").is_none());
        assert!(m.get("a", 0, "").is_some() && m.get("c", 0, "").is_some());
        m.insert("big".into(), 0, "", 95, Arc::new(4));
        assert_eq!(m.map.len(), 1, "byte bound evicts both others");
        assert_eq!(m.weight, 95);
        m.insert("huge".into(), 0, "", 101, Arc::new(5));
        assert!(
            m.get("huge", 0, "").is_none(),
            "larger than the budget: not cached"
        );
    }
}
