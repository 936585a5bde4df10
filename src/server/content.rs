//! The artifact gate's content step: the content rules ([`crate::policy::content`]) over
//! the verified bytes, after the digest matched and before the first byte is served.
//!
//! Each digest is scanned once and the scan remembered ([`ContentStore`]), so a cache hit
//! costs a store lookup. A hit that the policy's overrides do not allow refuses the
//! download like any refusal (decision record, quarantine hold, 403 naming the file and the
//! rule), and is kept: in the store and the current policy's ledger, so every later
//! evaluation of that version (metadata, npm version manifests, `depfw check`) reports it,
//! and the package's metadata is refetched so that renderings made before the scan hide
//! the version. An approval in the quarantine queue is an allow entry, which wins here as
//! everywhere.

use std::path::Path;

use chrono::Utc;

use super::delivery::Delivery;
use super::error::ProxyError;
use super::verdicts::refusal;
use super::{agent, AppState, RequestCtx};
use crate::diag::Verdict;
use crate::policy::content::{self, Format, RULES_VERSION};
use crate::policy::{Decision, PackageCtx, Policy};
use crate::registry::{ArtifactRequest, Digest, VersionRecord};
use crate::store::content::ContentStore;
use crate::store::decisions::DecisionRecord;

fn internal(e: impl Into<anyhow::Error>) -> ProxyError {
    ProxyError::Internal(e.into())
}

/// Runs the content rules on the artifact at `bytes` (blocking: it reads the file).
/// Returns the refusal to send when they hold the version; otherwise their findings (if
/// any) are added to `rec` for the record and the caller serves the bytes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn screen(
    state: &AppState,
    ctx: &RequestCtx,
    policy: &Policy,
    req: &ArtifactRequest,
    record: &VersionRecord,
    rec: &mut DecisionRecord,
    bytes: &Path,
    digest: &Digest,
    how: Delivery<'_>,
) -> Result<Option<ProxyError>, ProxyError> {
    let Some(rules) = policy.content() else {
        return Ok(None);
    };
    let ecosystem = req.name.ecosystem();
    let (Some(format), Some(version)) = (Format::of(ecosystem, &req.filename), &record.version)
    else {
        return Ok(None);
    };
    let cfg = &rules.cfg;
    let Some(local) = &state.inner.local else {
        tracing::warn!("no local store: content rules skipped for {}", req.filename);
        return Ok(None);
    };
    let store = ContentStore::new(local).map_err(internal)?;
    let fingerprint = format!(
        "r{RULES_VERSION}-{}-{}-{}",
        cfg.max_unpacked_bytes, cfg.max_entries, cfg.max_file_bytes
    );
    let key = digest.cache_key();
    let name = req.name.as_str();
    let version_text = version.to_string();
    let mut findings = match store.memo(&key, &fingerprint).map_err(internal)? {
        Some(findings) => findings,
        None => {
            let file = std::fs::File::open(bytes)
                .map_err(|e| internal(anyhow::anyhow!("opening {}: {e}", bytes.display())))?;
            let scan = content::scan(format, std::io::BufReader::new(file), cfg);
            let flavour = format.flavour(&req.filename);
            let earlier = store
                .earlier(ecosystem, name, &flavour, version)
                .map_err(internal)?;
            let mut findings = scan.findings.clone();
            findings.extend(content::native_finding(&scan, &earlier, cfg));
            store
                .record_native(
                    ecosystem,
                    name,
                    &flavour,
                    &version_text,
                    scan.native_count > 0,
                )
                .map_err(internal)?;
            store
                .remember(&key, &fingerprint, &findings)
                .map_err(internal)?;
            findings
        }
    };
    if findings.is_empty() {
        return Ok(None);
    }
    for f in &mut findings {
        f.verdict = cfg.verdict_for(&f.code);
    }
    let verdict = findings
        .iter()
        .map(|f| f.verdict)
        .max()
        .unwrap_or(Verdict::Allow);
    let now = Utc::now();
    let mut decision = Decision {
        verdict,
        findings: findings.clone(),
    };
    policy.overrides().apply_for(
        &PackageCtx {
            name: &req.name,
            version: Some(version),
            metadata: Some(&record.metadata),
            now,
        },
        ctx.agent.as_ref().map(|a| a.name.as_str()),
        &mut decision,
    );
    let decision = agent::decide(ctx, policy, decision);
    rec.findings.extend(findings.iter().cloned());
    // Monitor mode served what the rules hold: the record says so.
    rec.findings.extend(
        (decision.findings.iter())
            .filter(|f| f.code == crate::diag::Code::WouldRefuse)
            .cloned(),
    );
    if decision.verdict.is_servable() {
        return Ok(None);
    }
    rec.verdict = rec.verdict.max(decision.verdict);
    rec.outcome = "refused".to_owned();
    super::blocking(|| state.decisions().append_durable(rec))?;
    let held: Vec<_> = findings
        .into_iter()
        .filter(|f| !f.verdict.is_servable())
        .collect();
    // Only the findings that refuse for everyone are kept (not a strict agent's
    // escalation of a warning).
    if !held.is_empty() {
        store
            .hold(ecosystem, name, &version_text, &held)
            .map_err(internal)?;
        rules.ledger.hold(ecosystem, name, &version_text, held);
    }
    if decision.verdict == Verdict::Quarantine {
        let who = agent::requester(ctx);
        let id = state
            .quarantine()
            .hold(
                &req.name,
                version,
                &who,
                decision.findings.clone(),
                &ctx.request_id,
                now,
            )
            .map_err(internal)?;
        // Like every other hold: a new item is announced to `[quarantine] webhook-url`.
        state.approvals().announce(id, true);
    }
    if let Some(url) = how.metadata_url {
        state.inner.upstream.forget(url);
    }
    let spec = format!("{}@{}", req.name, record.version_text);
    let refused = ProxyError::Refused(format!(
        "{} (request id {})",
        refusal(&spec, &decision),
        ctx.request_id
    ));
    Ok(Some(agent::refused(state, ctx, refused)))
}
