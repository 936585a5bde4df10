//! The ecosystem-independent part of serving: policy over a package's versions, the
//! artifact gate, decision records, and conditional metadata responses. Protocol handlers
//! (`server::npm`, `server::pypi`, `server::cargo`) parse and render; everything they
//! decide goes through here so the ecosystems cannot drift apart.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use tokio_util::io::ReaderStream;

use super::error::{ProxyError, UpstreamFault};
use super::render_cache::Rendered;
use super::upstream::Fetched;
use super::{agent, AppState, PolicyState, RequestCtx};
use crate::config::RefusedVersions;
use crate::diag::{Code, Finding, Severity};
use crate::package::PackageName;
use crate::policy::{Decision, PackageCtx, Policy, Verdict};
use crate::registry::{
    ArtifactRecord, ArtifactRequest, Digest, Disposition, Kept, ProtocolError, VersionRecord,
};
use crate::store::decisions::{DecisionRecord, HiddenVersion, RecordKind};

/// The policy from a state known to be ready.
pub fn ready(state: &PolicyState) -> Result<&Policy, ProxyError> {
    match state {
        PolicyState::Ready(p) => Ok(p),
        PolicyState::Unavailable(why) => Err(ProxyError::PolicyUnavailable(why.clone())),
    }
}

/// The client-facing reason for a refusal.
pub fn refusal(package: &str, decision: &Decision) -> String {
    refusal_text(package, decision.verdict, &decision.summary())
}

fn refusal_text(package: &str, verdict: Verdict, summary: &str) -> String {
    match verdict {
        Verdict::Quarantine => format!("{package} is quarantined, awaiting approval: {summary}"),
        _ => format!("{package} is denied by policy: {summary}"),
    }
}

/// Name-level checks (typosquats, deny-listed names) before anything is fetched.
pub fn check_name(
    state: &AppState,
    ctx: &RequestCtx,
    policy: &Policy,
    name: &PackageName,
) -> Result<(), ProxyError> {
    agent::observe_package(state, ctx, name)?;
    let decision = agent::decide(
        ctx,
        policy.evaluate(&PackageCtx {
            name,
            version: None,
            metadata: None,
            now: Utc::now(),
        }),
    );
    if decision.verdict.is_servable() {
        return Ok(());
    }
    let mut rec = record(ctx, RecordKind::Metadata, name, None, &decision, "refused");
    state.decisions().append(&mut rec)?;
    let refusal = ProxyError::Refused(refusal(name.as_str(), &decision));
    Err(agent::refused(state, ctx, refusal))
}

/// Which versions a metadata response keeps.
pub struct Filtered {
    pub kept: Kept,
    pub hidden: Vec<HiddenVersion>,
}

impl Filtered {
    /// What cargo and PyPI metadata do with each version under `server.refused-versions`:
    /// kept, removed, or yanked with the reason the artifact gate would give
    /// (`depfw: idna@3.10 is denied by policy: …`).
    pub fn dispositions(
        &self,
        mode: RefusedVersions,
        name: &PackageName,
    ) -> impl Fn(&str) -> Disposition + '_ {
        let yanked: HashMap<&str, String> = match mode {
            RefusedVersions::Remove => HashMap::new(),
            RefusedVersions::Yank => self
                .hidden
                .iter()
                .map(|h| {
                    let spec = format!("{name}@{}", h.version);
                    let reason = refusal_text(&spec, h.verdict, &h.reason);
                    (h.version.as_str(), format!("depfw: {reason}"))
                })
                .collect(),
        };
        move |version: &str| {
            if self.kept.contains(version) {
                Disposition::Keep
            } else if let Some(reason) = yanked.get(version) {
                Disposition::Yank(reason.clone())
            } else {
                Disposition::Remove
            }
        }
    }
}

/// A version the registry lists but depfw cannot parse: no check can evaluate it, so it is
/// refused (fail closed).
fn unparsable_version() -> Decision {
    let finding = Finding::new(
        Code::UnparsableVersion,
        Severity::Info,
        Verdict::Deny,
        "depfw cannot evaluate this version".to_owned(),
    );
    Decision {
        verdict: finding.verdict,
        findings: vec![finding],
    }
}

/// Evaluates every version under the requesting agent's preset; unparsable versions are
/// hidden (fail closed). Hidden quarantined versions are not put in the quarantine queue:
/// the resolver picks another version, and only an artifact request (someone really
/// wanting that version) holds it for review.
pub fn filter_versions(
    ctx: &RequestCtx,
    policy: &Policy,
    name: &PackageName,
    records: &[VersionRecord],
) -> Filtered {
    let now = Utc::now();
    let mut kept = Kept::new();
    let mut hidden = Vec::new();
    for r in records {
        let Some(version) = &r.version else {
            let decision = unparsable_version();
            hidden.push(HiddenVersion {
                version: r.version_text.clone(),
                verdict: decision.verdict,
                reason: decision.summary(),
            });
            continue;
        };
        let decision = agent::decide(
            ctx,
            policy.evaluate(&PackageCtx {
                name,
                version: Some(version),
                metadata: Some(&r.metadata),
                now,
            }),
        );
        if decision.verdict.is_servable() {
            kept.insert(r.version_text.clone());
        } else {
            hidden.push(HiddenVersion {
                version: r.version_text.clone(),
                verdict: decision.verdict,
                reason: decision.summary(),
            });
        }
    }
    Filtered { kept, hidden }
}

/// Records a metadata summary: called once per upstream (re)download, not per cache hit.
pub fn record_filtered(
    state: &AppState,
    ctx: &RequestCtx,
    name: &PackageName,
    filtered: &Filtered,
    upstream_url: &str,
) -> Result<(), ProxyError> {
    let verdict = filtered
        .hidden
        .iter()
        .map(|h| h.verdict)
        .max()
        .unwrap_or(Verdict::Allow);
    let decision = Decision {
        verdict,
        findings: Vec::new(),
    };
    let mut rec = record(ctx, RecordKind::Metadata, name, None, &decision, "filtered");
    rec.hidden = filtered.hidden.clone();
    rec.upstream_url = Some(upstream_url.to_owned());
    state.decisions().append(&mut rec)?;
    Ok(())
}

fn record(
    ctx: &RequestCtx,
    kind: RecordKind,
    name: &PackageName,
    version: Option<&str>,
    decision: &Decision,
    outcome: &str,
) -> DecisionRecord {
    DecisionRecord {
        seq: 0,
        time: Utc::now(),
        request_id: ctx.request_id.clone(),
        client: ctx.client.clone(),
        kind,
        ecosystem: name.ecosystem().osv_name().to_owned(),
        package: name.as_str().to_owned(),
        version: version.map(str::to_owned),
        verdict: decision.verdict,
        findings: decision.findings.clone(),
        hidden: Vec::new(),
        sha256: None,
        sha512: None,
        upstream_url: None,
        outcome: outcome.to_owned(),
        prev_hash: String::new(),
        signature: String::new(),
        hash: String::new(),
    }
}

/// A metadata response with a policy-aware `ETag`, answering `If-None-Match` with 304.
/// Handlers that serve the same body repeatedly keep the [`Rendered`] in a
/// [`super::render_cache::RenderCache`] instead.
pub fn metadata_response(
    policy: &Policy,
    request: &HeaderMap,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response {
    Rendered::new(policy.revision(), content_type, body).response(request)
}

/// The parsed form of the upstream body `fetched` (from `url`), parsed once per body: warm
/// requests share it through the render cache. A body that does not parse is dropped from
/// the upstream cache, so the next request fetches it again.
pub fn parsed<P: Any + Send + Sync>(
    state: &AppState,
    url: &str,
    fetched: &Fetched,
    parse: impl FnOnce(&[u8]) -> Result<P, ProtocolError>,
) -> Result<Arc<P>, ProxyError> {
    let cache = &state.inner.render;
    if let Some(doc) = cache.parsed::<P>(url, fetched.generation) {
        return Ok(doc);
    }
    let doc = parse(&fetched.body).map_err(|e| {
        state.inner.upstream.forget(url);
        ProxyError::upstream(UpstreamFault::Invalid, url, e.to_string())
    })?;
    let doc = Arc::new(doc);
    cache.put_parsed(
        url,
        fetched.generation,
        fetched.body.len(),
        Arc::clone(&doc),
    );
    Ok(doc)
}

/// The cache key's `variant`: what a rendered metadata body depends on besides the
/// upstream body and the policy revision. `form` names the ecosystem and everything its
/// renderer reads from the request or config (format, `server.refused-versions`); the
/// agent's preset (a strict agent sees fewer versions) is always part of it, and with
/// `urls` so is the public base: an agent's rewritten URLs carry its `/a/<token>` prefix,
/// so they are never served to another agent or to anonymous clients. The key stays in
/// memory; it is never logged.
pub fn render_variant(ctx: &RequestCtx, form: &str, urls: bool) -> String {
    let agent = ctx.agent.as_ref().map(|a| (a.preset, a.strict_warn));
    let base = if urls { ctx.public_base.as_str() } else { "" };
    format!("{form}|{agent:?}|{base}")
}

/// A metadata response from the render cache, or rendered by `render` (which returns the
/// content type and body, and writes any decision records of a cold render) and cached:
/// one rendering per upstream body (`fetched.generation`), policy revision and `variant`
/// (see [`render_variant`]) until the metadata TTL expires it. A warm hit writes no
/// decision record: a fresh upstream body has a new generation, so it always misses and
/// is recorded by `render`.
pub fn cached_metadata(
    state: &AppState,
    policy: &Policy,
    url: &str,
    variant: &str,
    fetched: &Fetched,
    request: &HeaderMap,
    render: impl FnOnce() -> Result<(&'static str, Vec<u8>), ProxyError>,
) -> Result<Response, ProxyError> {
    let cache = &state.inner.render;
    let revision = policy.revision();
    if let Some(hit) = cache.rendered(url, variant, fetched.generation, revision) {
        return Ok(hit.response(request));
    }
    let (content_type, body) = render()?;
    let rendered = Arc::new(Rendered::new(revision, content_type, body));
    cache.put_rendered(
        url,
        variant,
        fetched.generation,
        revision,
        Arc::clone(&rendered),
    );
    Ok(rendered.response(request))
}

/// Whether `url` is served by the same scheme, host and port as one of `origins`: metadata
/// must not be able to send depfw fetching from arbitrary hosts.
fn same_origin(url: &str, origins: &[&url::Url]) -> bool {
    url::Url::parse(url).is_ok_and(|u| origins.iter().any(|o| o.origin() == u.origin()))
}

/// What the artifact gate does with a version the policy refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRefusal {
    /// 403 with the reason (and a quarantine hold): every installable artifact.
    Refuse,
    /// Served (verified, recorded as `served-yanked-metadata`), no hold: only the PEP 658
    /// core metadata of a release that `server.refused-versions = "yank"` lists as yanked.
    /// It is metadata, not code, and pip and uv need it to finish resolving an `==` pin,
    /// which is when they print the yank reason; the wheel itself is then refused.
    ServeYankedMetadata,
}

/// The artifact gate: evaluates the version, then serves verified bytes from the cache or
/// from upstream. `record` is the version as the (cached) metadata lists it; its artifact
/// URL must be on one of `origins` (the configured upstream hosts).
pub async fn artifact(
    state: &AppState,
    ctx: &RequestCtx,
    policy: &Policy,
    req: &ArtifactRequest,
    record: Option<&VersionRecord>,
    origins: &[&url::Url],
    on_refusal: OnRefusal,
) -> Result<Response, ProxyError> {
    let (mut rec, artifact, digest) = admit(state, ctx, policy, req, record, origins, on_refusal)?;
    // Only [`OnRefusal::ServeYankedMetadata`] gets here with a refused verdict.
    let (served, served_from_cache) = if rec.verdict.is_servable() {
        ("served", "served-from-cache")
    } else {
        ("served-yanked-metadata", "served-yanked-metadata")
    };
    if let Digest::Sha512(b) = digest {
        rec.sha512 = Some(hex::encode(b));
    }
    let cache = &state.inner.artifacts;
    if let Some(path) = cache.get(digest) {
        rec.outcome = served_from_cache.to_owned();
        super::blocking(|| state.decisions().append_durable(&mut rec))?;
        return serve_file(&path, None).await;
    }
    let spool = cache.spool_path();
    let spooled = match state
        .inner
        .upstream
        .artifact(&artifact.upstream_url, digest, &spool)
        .await
    {
        Ok(s) => s,
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
    rec.sha256 = Some(spooled.sha256.clone());
    rec.sha512 = Some(spooled.sha512.clone());
    rec.outcome = served.to_owned();
    super::blocking(|| state.decisions().append_durable(&mut rec))?;
    let path = cache.insert(digest, &spooled.path, spooled.size);
    let discard = (path == spooled.path).then_some(path.clone());
    let resp = serve_file(&path, Some(spooled.size)).await;
    // The open handle keeps the bytes readable after the spool file is unlinked.
    if let Some(p) = discard {
        cache.discard_spool(&p);
    }
    resp
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
    origins: &[&url::Url],
    on_refusal: OnRefusal,
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
        on_refusal,
    )?;
    let artifact = record
        .artifact(&req.filename)
        .ok_or_else(|| ProxyError::NotFound(format!("{spec} has no file {}", req.filename)))?;
    rec.upstream_url = Some(artifact.upstream_url.clone());
    if !same_origin(&artifact.upstream_url, origins) {
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

/// Evaluates one version a client asked for by name and version. A refusal (with
/// [`OnRefusal::Refuse`]) is recorded durably, a quarantined version is held for review,
/// and the client gets the 403 with the reason and request id. Otherwise returns the
/// record (outcome still "refused") for the caller to complete once it has served.
fn decide_version(
    state: &AppState,
    ctx: &RequestCtx,
    policy: &Policy,
    kind: RecordKind,
    name: &PackageName,
    record: &VersionRecord,
    on_refusal: OnRefusal,
) -> Result<DecisionRecord, ProxyError> {
    let spec = format!("{name}@{}", record.version_text);
    let Some(version) = &record.version else {
        return Err(ProxyError::Refused(refusal(&spec, &unparsable_version())));
    };
    agent::observe_package(state, ctx, name)?;
    let now = Utc::now();
    let decision = agent::decide(
        ctx,
        policy.evaluate(&PackageCtx {
            name,
            version: Some(version),
            metadata: Some(&record.metadata),
            now,
        }),
    );
    let mut rec = self::record(
        ctx,
        kind,
        name,
        Some(&record.version_text),
        &decision,
        "refused",
    );
    if !decision.verdict.is_servable() && on_refusal == OnRefusal::Refuse {
        super::blocking(|| state.decisions().append_durable(&mut rec))?;
        if decision.verdict == Verdict::Quarantine {
            let who = agent::requester(ctx);
            state
                .quarantine()
                .hold(
                    name,
                    version,
                    &who,
                    decision.findings.clone(),
                    &ctx.request_id,
                    now,
                )
                .map_err(|e| ProxyError::Internal(e.into()))?;
        }
        let refusal = ProxyError::Refused(format!(
            "{} (request id {})",
            refusal(&spec, &decision),
            ctx.request_id
        ));
        return Err(agent::refused(state, ctx, refusal));
    }
    Ok(rec)
}

/// The gate for one version's metadata (npm's `GET /{name}/{version}`): the same
/// evaluation, record and refusal as that version's artifact, so asking for the manifest
/// of a refused version fails exactly like downloading it. A served manifest is recorded
/// as a metadata decision for that version.
pub fn version_metadata(
    state: &AppState,
    ctx: &RequestCtx,
    policy: &Policy,
    name: &PackageName,
    record: &VersionRecord,
    upstream_url: &str,
) -> Result<(), ProxyError> {
    let mut rec = decide_version(
        state,
        ctx,
        policy,
        RecordKind::Metadata,
        name,
        record,
        OnRefusal::Refuse,
    )?;
    rec.outcome = "served".to_owned();
    rec.upstream_url = Some(upstream_url.to_owned());
    state.decisions().append(&mut rec)?;
    Ok(())
}

/// `HEAD` on an artifact (uv sends one per wheel): the same policy answer as a `GET`, but
/// nothing is downloaded. The length is known only once the file is cached; no
/// `Accept-Ranges`, so clients fall back to one full, verified download.
pub async fn artifact_head(
    state: &AppState,
    ctx: &RequestCtx,
    policy: &Policy,
    req: &ArtifactRequest,
    record: Option<&VersionRecord>,
    origins: &[&url::Url],
    on_refusal: OnRefusal,
) -> Result<Response, ProxyError> {
    let (_, _, digest) = admit(state, ctx, policy, req, record, origins, on_refusal)?;
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(path) = state.inner.artifacts.get(digest) {
        if let Ok(meta) = tokio::fs::metadata(&path).await {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
        }
    }
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
    let mut resp = Response::new(Body::from_stream(ReaderStream::new(file)));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    Ok(resp)
}
