//! The one serving pipeline of `depfw serve`, for every registry protocol.
//!
//! A metadata request (`GET /npm/express`, `/pypi/simple/idna/`, `/cargo/index/it/oa/itoa`)
//! runs [`Gate::metadata`]: the ready policy → the name check (a look-alike name waits for
//! the package's age, [`super::name_gate`]) → the upstream body (revalidating cache,
//! [`super::upstream`]) → a rendering from the render cache, or on a miss: the body parsed
//! once ([`Served`]'s typed cache, with what the release signals need beyond it gathered,
//! [`super::signal_facts`]) → the name judged with the package's age → every version
//! evaluated once for this rendering
//! (recorded when the body was just downloaded, and kept for npm's version manifests) →
//! rendered by the protocol → cached. An artifact request runs [`Gate::artifact`]: the version's record from
//! the same parsed metadata, then the gate in [`super::delivery`]. npm's one-version
//! manifests use [`Gate::evaluated`], the same evaluation the packument was rendered from.
//!
//! The protocols ([`crate::registry::Protocol`]) are pure; everything here is generic over
//! them, so an ecosystem's handler (`server::npm`, `server::pypi`, `server::cargo`) is its
//! routing plus its real quirks.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use axum::response::Response;
use url::Url;

use super::delivery::{self, Delivery};
use super::error::{ProxyError, UpstreamFault};
use super::records::{record, record_filtered};
use super::render_cache::{Freshness, Keyed, Rendered};
use super::signal_facts::{self, SignalFacts};
use super::upstream::Fetched;
use super::verdicts::{self, Filtered};
use super::{agent, name_gate, AppState, PolicyState, RequestCtx};
use crate::diag::{Code, Finding};
use crate::package::{PackageName, Version};
use crate::policy::{Decision, Policy, Verdict};
use crate::registry::{ArtifactRequest, Protocol, ProtocolError, RenderCx, VersionRecord};
use crate::store::decisions::RecordKind;
use crate::store::quarantine::Sighting;

/// A protocol as the server runs it: the pure protocol and its typed cache of parsed
/// documents (one per upstream body).
pub(crate) struct Served<P: Protocol> {
    pub protocol: P,
    parsed: Keyed<P::Doc>,
    /// Each package's upstream metadata URL, as [`Protocol::metadata_url`] made it: it
    /// depends on the name and the protocol's config only, and parsing it again for every
    /// cached answer cost a fifteenth of one (issue #17).
    urls: Keyed<Url>,
    /// What the release signals looked up beyond each document ([`signal_facts`]).
    facts: SignalFacts,
}

impl<P: Protocol> Served<P> {
    /// `entries` and `bytes` bound the parsed documents (`upstream.metadata-cache-entries`,
    /// `upstream.parse-cache-bytes`), each weighing the heap bytes it holds
    /// ([`Protocol::footprint`]).
    pub(crate) fn new(protocol: P, entries: usize, bytes: usize) -> Self {
        Served {
            protocol,
            parsed: Keyed::new(entries, bytes, None),
            urls: Keyed::new(entries, URL_MEMO_BYTES, None),
            facts: SignalFacts::default(),
        }
    }

    /// `name`'s upstream metadata URL ([`Served::urls`]).
    pub(crate) fn metadata_url(&self, name: &PackageName) -> Result<Url, ProtocolError> {
        if let Some(url) = self.urls.get(name.as_str(), 0, "") {
            return Ok(Url::clone(&url));
        }
        let url = self.protocol.metadata_url(name)?;
        let weight = std::mem::size_of::<Url>() + name.as_str().len() + url.as_str().len();
        self.urls
            .put(name.as_str(), 0, "", weight, Arc::new(url.clone()));
        Ok(url)
    }
}

/// The bytes of URLs [`Served::urls`] keeps, besides its bound on entries.
const URL_MEMO_BYTES: usize = 8 << 20;

/// An upstream metadata body as fetched (or cached), with its URL.
pub(crate) struct Upstream {
    pub url: Url,
    pub fetched: Fetched,
}

/// What an artifact request names, found in its package's metadata: the request (file name
/// included) and the version's record as the metadata lists it (`None`: not listed).
pub(crate) struct Wanted {
    pub req: ArtifactRequest,
    pub record: Option<VersionRecord>,
}

/// One request's way through the proxy, under the policy that was current when it
/// arrived (a reload does not change it midway).
pub(crate) struct Gate<'a> {
    state: &'a AppState,
    ctx: &'a RequestCtx,
    policy: Arc<PolicyState>,
}

impl<'a> Gate<'a> {
    /// The ready policy, or the 503 every package request gets without one.
    pub(crate) fn new(state: &'a AppState, ctx: &'a RequestCtx) -> Result<Gate<'a>, ProxyError> {
        Ok(Gate {
            state,
            ctx,
            policy: state.policy()?,
        })
    }

    fn policy(&self) -> &Policy {
        match &*self.policy {
            PolicyState::Ready(p) => p,
            // `AppState::policy` hands out ready policies only.
            PolicyState::Unavailable(_) => unreachable!("Gate::new checked the policy"),
        }
    }

    /// What the verdicts for this request's agent depend on besides its preset: whether
    /// the policy is enforced for it (`policy.mode`), and its name when overrides exist
    /// for it alone. Part of every cache key a verdict goes into.
    fn agent_policy(&self) -> String {
        let agent = self.ctx.agent.as_ref().map(|a| a.name.as_str());
        let policy = self.policy();
        let enforced = if policy.enforcement().enforces(agent) {
            "true"
        } else {
            "false"
        };
        match agent.filter(|a| policy.overrides().has_entries_for(a)) {
            Some(own) => [enforced, "|", own].concat(),
            None => enforced.to_owned(),
        }
    }

    /// Name-level checks (typosquats, deny-listed names) before anything is fetched; a
    /// refusal that only a look-alike name makes waits for [`Gate::check_name_with`]
    /// ([`name_gate`]).
    pub(crate) fn check_name(&self, name: &PackageName) -> Result<(), ProxyError> {
        agent::observe_package(self.state, self.ctx, name)?;
        let (ctx, policy) = (self.ctx, self.policy());
        // Kept per policy revision and requester where the clock cannot change it.
        let decision = self.state.inner.names.decide(ctx, policy, name, || {
            verdicts::decide_name(ctx, policy, name)
        });
        self.refuse_by_name(name, RecordKind::Metadata, &decision, |d| {
            !name_gate::waits_for_age(d)
        })
    }

    /// The name-level check again, once `doc` is read: a look-alike name is refused when
    /// the package is young, or its age unknown ([`name_gate`]).
    pub(crate) fn check_name_with<P: Protocol>(
        &self,
        s: &Served<P>,
        name: &PackageName,
        doc: &P::Doc,
    ) -> Result<(), ProxyError> {
        self.check_name_with_records(name, s.protocol.versions(doc))
    }

    /// [`Gate::check_name_with`] on a document's versions (none: upstream has no such
    /// package, so the age is unknown and a look-alike is refused, not a plain 404).
    fn check_name_with_records(
        &self,
        name: &PackageName,
        records: &[crate::registry::VersionRecord],
    ) -> Result<(), ProxyError> {
        let decision = name_gate::decide_with_age(self.ctx, self.policy(), name, records);
        self.refuse_by_name(
            name,
            RecordKind::Metadata,
            &decision,
            name_gate::held_as_look_alike,
        )
    }

    /// The name-level refusal of `decision`, recorded as `kind`, when `applies` to it.
    fn refuse_by_name(
        &self,
        name: &PackageName,
        kind: RecordKind,
        decision: &Decision,
        applies: impl FnOnce(&Decision) -> bool,
    ) -> Result<(), ProxyError> {
        let (state, ctx) = (self.state, self.ctx);
        if decision.verdict.is_servable() || !applies(decision) {
            return Ok(());
        }
        let mut rec = record(ctx, kind, name, None, decision, "refused");
        state.decisions().append(&mut rec)?;
        if decision.verdict == Verdict::Quarantine {
            // A name hold is an approval request for the name ([`super::approvals`]).
            self.ask_approval(name, None, &decision.findings);
        }
        let refusal = ProxyError::Refused(verdicts::refused(
            name.as_str(),
            decision,
            &self.ctx.request_id,
        ));
        Err(agent::refused(state, ctx, refusal))
    }

    /// Offers the approval queue a quarantine this request met without downloading:
    /// `version` `None` for a name hold. Never waits ([`super::approvals`]).
    fn ask_approval(&self, name: &PackageName, version: Option<&Version>, findings: &[Finding]) {
        let who = agent::requester(self.ctx);
        let seen = Sighting::once(
            name,
            version,
            &who,
            findings.to_vec(),
            &self.ctx.request_id,
            chrono::Utc::now(),
        );
        self.state.approvals().offer(seen);
    }

    /// The hidden version this metadata response keeps from a client that would have
    /// resolved to it, as an approval request ([`Filtered::wanted`]).
    fn ask_for_wanted(&self, name: &PackageName, filtered: &Filtered) {
        if let Some((version, findings)) = &filtered.wanted {
            self.ask_approval(name, Some(version), findings);
        }
    }

    /// `name`'s upstream metadata body; `None` when upstream has no such package.
    pub(crate) async fn fetch<P: Protocol>(
        &self,
        s: &Served<P>,
        name: &PackageName,
    ) -> Result<Option<Upstream>, ProxyError> {
        let url = s.metadata_url(name)?;
        let fetched = self
            .state
            .inner
            .upstream
            .metadata(url.as_str(), P::UPSTREAM_ACCEPT)
            .await?;
        Ok(fetched.map(|fetched| Upstream { url, fetched }))
    }

    /// [`Gate::fetch`], with upstream's 404 as the client's (a look-alike name's refusal,
    /// which waited for the metadata, comes first).
    pub(crate) async fn fetch_listed<P: Protocol>(
        &self,
        s: &Served<P>,
        name: &PackageName,
    ) -> Result<Upstream, ProxyError> {
        match self.fetch(s, name).await? {
            Some(up) => Ok(up),
            None => {
                self.check_name_with_records(name, &[])?;
                Err(ProxyError::NotFound(format!("{name} not found upstream")))
            }
        }
    }

    /// The parsed form of an upstream body, parsed once per body (off the runtime's
    /// workers: a big document takes seconds) and completed with the protocol's supplement
    /// where the body left publish times out ([`Protocol::supplement_url`]). A body that
    /// does not parse is dropped from the upstream cache, so the next request fetches it
    /// again.
    pub(crate) async fn parse<P: Protocol>(
        &self,
        s: &Served<P>,
        name: &PackageName,
        up: &Upstream,
    ) -> Result<Arc<P::Doc>, ProxyError> {
        let (url, fetched) = (up.url.as_str(), &up.fetched);
        if let Some(doc) = s.parsed.get(url, fetched.generation, "") {
            return Ok(doc);
        }
        let mut doc = super::blocking(|| s.protocol.parse(name, &fetched.body)).map_err(|e| {
            self.state.inner.upstream.forget(url);
            ProxyError::upstream(UpstreamFault::Invalid, url, e.to_string())
        })?;
        if let Some(supplement) = s.protocol.supplement_url(name, &doc) {
            self.supplement(s, url, &supplement, &mut doc).await;
        }
        if let Some(signals) = self.policy().signals() {
            let state = self.state;
            if !signal_facts::gather(state, &s.protocol, &s.facts, signals, name, &mut doc).await {
                // Looked up again by the next request, the memo answering what is known.
                state.inner.upstream.forget(url);
            }
        }
        let weight = s.protocol.footprint(&doc);
        let doc = Arc::new(doc);
        s.parsed
            .put(url, fetched.generation, "", weight, Arc::clone(&doc));
        Ok(doc)
    }

    /// Completes `doc` from `supplement`. Versions it still leaves without a time keep
    /// `publish-time-unknown` (fail closed); so that they are not held until the metadata
    /// body changes, a supplement that could not be had makes the body forgotten (the next
    /// request fetches both again), and a cached supplement that lacks a version (published
    /// since it was fetched) is fetched afresh once.
    async fn supplement<P: Protocol>(
        &self,
        s: &Served<P>,
        url: &str,
        supplement: &Url,
        doc: &mut P::Doc,
    ) {
        let upstream = &self.state.inner.upstream;
        for attempt in 0..2 {
            let body = match upstream
                .metadata(supplement.as_str(), "application/json")
                .await
            {
                Ok(Some(fetched)) => fetched,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(%url, supplement = %supplement, error = %e,
                        "publish times could not be completed; versions without one are held");
                    upstream.forget(url);
                    return;
                }
            };
            if let Err(e) = s.protocol.supplement(doc, &body.body) {
                tracing::warn!(%url, supplement = %supplement, error = %e,
                    "publish-time supplement unreadable; versions without one are held");
                upstream.forget(supplement.as_str());
                upstream.forget(url);
                return;
            }
            let complete = !s
                .protocol
                .versions(doc)
                .iter()
                .any(crate::registry::lacks_publish_time);
            if complete || body.fresh || attempt == 1 {
                return;
            }
            upstream.forget(supplement.as_str());
        }
    }

    /// `name`'s parsed metadata; `None` when upstream has no such package.
    pub(crate) async fn document<P: Protocol>(
        &self,
        s: &Served<P>,
        name: &PackageName,
    ) -> Result<Option<Arc<P::Doc>>, ProxyError> {
        match self.fetch(s, name).await? {
            Some(up) => self.parse(s, name, &up).await.map(Some),
            None => Ok(None),
        }
    }

    /// The policy's verdict on every version of the document, as the last evaluation of
    /// this upstream body under this policy revision and agent preset left it (until the
    /// metadata TTL: verdicts can depend on the clock), else evaluated now. npm's
    /// one-version manifests read it, so a manifest request does not evaluate every version
    /// again.
    pub(crate) fn evaluated<P: Protocol>(
        &self,
        s: &Served<P>,
        name: &PackageName,
        up: &Upstream,
        doc: &P::Doc,
    ) -> Result<Arc<Filtered>, ProxyError> {
        let agent_policy = self.agent_policy();
        let (key, generation, revision) = self.evaluation_slot(up, &agent_policy);
        if let Some(hit) = self.state.inner.evaluated.get(&key, generation, revision) {
            return Ok(hit);
        }
        self.evaluate(s, name, up, doc, &agent_policy)
    }

    /// Evaluates every version of the document and keeps the result for
    /// [`Gate::evaluated`]; the evaluation of a just-downloaded body is recorded, once. A
    /// cold rendering always evaluates afresh: it is rare (the render cache answers the
    /// rest), and then sees the clock as it is.
    fn evaluate<P: Protocol>(
        &self,
        s: &Served<P>,
        name: &PackageName,
        up: &Upstream,
        doc: &P::Doc,
        agent_policy: &str,
    ) -> Result<Arc<Filtered>, ProxyError> {
        let records = s.protocol.versions(doc);
        let filtered = verdicts::filter_versions(self.ctx, self.policy(), name, records);
        if up.fetched.fresh {
            record_filtered(self.state, self.ctx, name, &filtered, up.url.as_str())?;
        }
        let filtered = Arc::new(filtered);
        let (key, generation, revision) = self.evaluation_slot(up, agent_policy);
        let weight = filtered.heap_size();
        let cache = &self.state.inner.evaluated;
        cache.put(&key, generation, revision, weight, Arc::clone(&filtered));
        Ok(filtered)
    }

    /// Where an evaluation of `up` is kept: its URL and what besides the upstream body
    /// and policy revision it depends on, the agent's preset (a strict agent sees fewer
    /// versions) and `agent_policy` ([`Gate::agent_policy`]); then the body's generation
    /// and the policy revision.
    fn evaluation_slot(&self, up: &Upstream, agent_policy: &str) -> (String, u64, &str) {
        let url = up.url.as_str();
        let mut key = String::with_capacity(url.len() + agent_policy.len() + 32);
        key.push_str(url);
        key.push('\n');
        push_agent_preset(&mut key, self.ctx);
        key.push('|');
        key.push_str(agent_policy);
        (key, up.fetched.generation, self.policy().revision())
    }

    /// A filtered metadata document: warm, a lookup in the render cache; cold, parsed,
    /// evaluated, rendered and cached (see the module docs).
    pub(crate) async fn metadata<P: Protocol>(
        &self,
        s: &Served<P>,
        name: &PackageName,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Response, ProxyError> {
        self.check_name(name)?;
        let up = self.fetch_listed(s, name).await?;
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
        let form = s.protocol.form(accept, query);
        let mode = self.state.refused_versions();
        // Computed once: the render variant and the evaluation's key both hold it.
        let agent_policy = self.agent_policy();
        let mut form_key = String::with_capacity(64);
        // Writing to a `String` does not fail.
        let _ = write!(form_key, "{:?}|{form:?}|{mode:?}|", P::ECOSYSTEM);
        form_key.push_str(&agent_policy);
        let variant = render_variant(self.ctx, &form_key, P::URLS);
        let cache = &self.state.inner.render;
        let (url, generation) = (up.url.as_str(), up.fetched.generation);
        let revision = self.policy().revision();
        let respond = |hit: &Arc<Rendered>| {
            let respond = || cache.response(url, &variant, hit, headers);
            let resp = if hit.gzip_is_costly(headers) {
                super::blocking(respond)
            } else {
                respond()
            };
            mark_stale(resp, &up.fetched)
        };
        let expired = match cache.lookup(url, &variant, generation, revision) {
            Some((hit, Freshness::Live)) => {
                let (key, generation, revision) = self.evaluation_slot(&up, &agent_policy);
                if let Some(filtered) = self.state.inner.evaluated.get(&key, generation, revision) {
                    self.ask_for_wanted(name, &filtered);
                }
                return Ok(respond(&hit));
            }
            Some((hit, Freshness::Expired)) => Some(hit),
            None => None,
        };
        // Parsing, evaluating, rendering, hashing and gzipping a big document takes
        // seconds of CPU (a 62 MB packument): off the runtime's workers, so `/healthz` and
        // every other request keep being answered meanwhile (issue #11).
        let doc = self.parse(s, name, &up).await?;
        self.check_name_with(s, name, &doc)?;
        let filtered = super::blocking(|| self.evaluate(s, name, &up, &doc, &agent_policy))?;
        self.ask_for_wanted(name, &filtered);
        if let Some(hit) = expired {
            // Past the TTL only because the clock may have changed a verdict: when none
            // changed, the rendering is still right (see `render_cache`'s module docs).
            if cache.renew_if_still_right(url, &variant, &hit, &filtered) {
                return Ok(respond(&hit));
            }
        }
        super::blocking(|| {
            let show = filtered.dispositions(mode, name);
            let cx = RenderCx {
                public_base: &self.ctx.public_base,
                kept: &filtered.kept,
                show: &show,
            };
            let document = s
                .protocol
                .render(name, &doc, &form, &cx)
                .map_err(|e| ProxyError::Internal(e.into()))?;
            let mut rendered = Rendered::new(revision, document.content_type, document.body);
            if let (Some(header), Some(notice)) = (P::NOTICE_HEADER, filtered.notice(name)) {
                rendered = rendered.with_notice(header, &notice);
            }
            let rendered = Arc::new(rendered.with_verdicts(Arc::clone(&filtered)));
            cache.put_rendered(url, &variant, generation, revision, Arc::clone(&rendered));
            let resp = cache.response(url, &variant, &rendered, headers);
            Ok(mark_stale(resp, &up.fetched))
        })
    }

    /// A metadata response that is not cached (npm's one-version manifests), with the same
    /// policy-aware `ETag` and `304` as [`Gate::metadata`].
    pub(crate) fn uncached(
        &self,
        headers: &HeaderMap,
        content_type: &'static str,
        body: Vec<u8>,
    ) -> Response {
        Rendered::new(self.policy().revision(), content_type, body).response(headers)
    }

    /// One version's metadata (npm's `GET /{name}/{version}`): the same evaluation, record
    /// and refusal as that version's artifact, so asking for the manifest of a refused
    /// version fails exactly like downloading it. A served manifest is recorded as a
    /// metadata decision for that version.
    pub(crate) fn version_metadata(
        &self,
        name: &PackageName,
        version_record: &VersionRecord,
        upstream_url: &str,
    ) -> Result<(), ProxyError> {
        let mut rec = verdicts::decide_version(
            self.state,
            self.ctx,
            self.policy(),
            RecordKind::Metadata,
            name,
            version_record,
            verdicts::OnRefusal::Refuse,
        )?;
        rec.outcome = "served".to_owned();
        rec.upstream_url = Some(upstream_url.to_owned());
        self.state.decisions().append(&mut rec)?;
        Ok(())
    }

    /// The one artifact flow: `name`'s parsed metadata, the version and file `pick` finds in
    /// it, then the gate ([`delivery::deliver`]). `Ok(None)` when upstream does not list
    /// `name` or `pick` finds nothing there (PyPI then tries the file's next candidate
    /// project).
    pub(crate) async fn artifact<P: Protocol>(
        &self,
        s: &Served<P>,
        name: &PackageName,
        how: Delivery<'_>,
        pick: impl FnOnce(&P, &P::Doc) -> Result<Option<Wanted>, ProxyError>,
    ) -> Result<Option<Response>, ProxyError> {
        // An internal name (dependency confusion) is refused before its metadata is
        // fetched: it is never looked up on the public upstream. Other name-level findings
        // wait for the metadata, which may change them (a look-alike name in an
        // established package only warns).
        let decision = verdicts::decide_name(self.ctx, self.policy(), name);
        self.refuse_by_name(name, RecordKind::Artifact, &decision, |d| {
            d.findings.iter().any(|f| f.code == Code::InternalName)
        })?;
        let Some(doc) = self.document(s, name).await? else {
            return Ok(None);
        };
        let Some(wanted) = pick(&s.protocol, doc.as_ref())? else {
            return Ok(None);
        };
        let record = wanted.record.as_ref();
        let url = s.metadata_url(name)?;
        let how = Delivery {
            metadata_url: Some(url.as_str()),
            ..how
        };
        let delivered = delivery::deliver(
            self.state,
            self.ctx,
            self.policy(),
            &wanted.req,
            record,
            how,
        )
        .await;
        match delivered {
            // A refused version: name the safe alternative, from the same metadata.
            Err(ProxyError::Refused(message)) if verdicts::is_policy_refusal(&message) => {
                let records = s.protocol.versions(&doc);
                let filtered = verdicts::filter_versions(self.ctx, self.policy(), name, records);
                let pinned = record.and_then(|r| r.version.as_ref());
                Err(ProxyError::Refused(
                    match verdicts::nearest_allowed(records, &filtered.kept, pinned) {
                        Some(v) => format!("{message}. Nearest allowed version: {name}@{v}"),
                        None => message,
                    },
                ))
            }
            other => other.map(Some),
        }
    }

    /// [`Gate::artifact`] for protocols whose artifact paths name the version: its record
    /// as the metadata lists it; upstream's 404 for an unknown package.
    pub(crate) async fn listed_artifact<P: Protocol>(
        &self,
        s: &Served<P>,
        req: ArtifactRequest,
        how: Delivery<'_>,
    ) -> Result<Response, ProxyError> {
        let name = req.name.clone();
        let found = self
            .artifact(s, &name, how, |p, doc| {
                let record = p.record(&req.name, doc, &req.version_text);
                Ok(Some(Wanted { req, record }))
            })
            .await?;
        found.ok_or_else(|| ProxyError::NotFound(format!("{name} not found upstream")))
    }
}

/// Says so on a response rendered from metadata served stale because upstream failed
/// (`upstream.stale-if-error-secs`): `Warning: 110` (RFC 7234's "response is stale") with
/// the cause and age, and `x-depfw-stale: <age in seconds>` for scripts. The verdicts in it
/// are the current policy's: only the upstream body is old.
fn mark_stale(mut resp: Response, fetched: &Fetched) -> Response {
    let Some(stale) = &fetched.stale else {
        return resp;
    };
    let age = stale.age.as_secs();
    // Header values are visible ASCII: quotes and control characters out of the cause.
    let cause: String = stale
        .cause
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .map(|c| if c == '"' || c == '\\' { '\'' } else { c })
        .collect();
    let warning = format!(
        "110 - \"depfw: upstream failed ({cause}); serving metadata last fetched {age} s ago\""
    );
    let h = resp.headers_mut();
    if let Ok(v) = axum::http::HeaderValue::from_str(&warning) {
        h.insert(header::WARNING, v);
    }
    h.insert("x-depfw-stale", axum::http::HeaderValue::from(age));
    resp
}

/// The render cache key's `variant`: what a rendered metadata body depends on besides the
/// upstream body and the policy revision. `form` names the ecosystem and everything its
/// renderer reads from the request or config (format, `server.refused-versions`); the
/// agent's preset (a strict agent sees fewer versions) is always part of it, and with
/// `urls` so is the public base: an agent's rewritten URLs carry its `/a/<token>` prefix,
/// so they are never served to another agent or to anonymous clients. The key stays in
/// memory; it is never logged.
pub(crate) fn render_variant(ctx: &RequestCtx, form: &str, urls: bool) -> String {
    let base = if urls { ctx.public_base.as_str() } else { "" };
    let mut variant = String::with_capacity(form.len() + base.len() + 32);
    variant.push_str(form);
    variant.push('|');
    push_agent_preset(&mut variant, ctx);
    variant.push('|');
    variant.push_str(base);
    variant
}

/// The agent's preset and what its `strict` preset makes of a warning, as part of a cache
/// key: `None` for anonymous requests.
fn push_agent_preset(key: &mut String, ctx: &RequestCtx) {
    match &ctx.agent {
        Some(a) => {
            // Writing to a `String` does not fail.
            let _ = write!(key, "{:?}", (a.preset, a.strict_warn));
        }
        None => key.push_str("None"),
    }
}
