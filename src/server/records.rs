//! The decision records `depfw serve` writes (`depfw log show` reads them back): one per
//! refusal, per served artifact or version manifest, and one summary per upstream
//! (re)download of a metadata document, never per cache hit.

use chrono::Utc;

use super::error::ProxyError;
use super::verdicts::Filtered;
use super::{AppState, RequestCtx};
use crate::diag::{Code, Finding, Severity};
use crate::package::PackageName;
use crate::policy::{Decision, Verdict};
use crate::store::decisions::{DecisionRecord, HiddenVersion, RecordKind};

/// Records a metadata summary, the versions it hides (and, in monitor mode, a
/// `would-refuse` finding naming those it would have hidden): called once per upstream
/// (re)download, not per cache hit.
pub(crate) fn record_filtered(
    state: &AppState,
    ctx: &RequestCtx,
    name: &PackageName,
    filtered: &Filtered,
    upstream_url: &str,
) -> Result<(), ProxyError> {
    let hidden = &filtered.hidden;
    let verdict = hidden
        .iter()
        .map(|h| h.verdict)
        .max()
        .unwrap_or(Verdict::Allow);
    let decision = Decision {
        verdict,
        findings: would_hide(&filtered.monitored).into_iter().collect(),
    };
    let mut rec = record(ctx, RecordKind::Metadata, name, None, &decision, "filtered");
    rec.hidden = hidden.to_vec();
    rec.upstream_url = Some(upstream_url.to_owned());
    state.decisions().append(&mut rec)?;
    Ok(())
}

/// How many versions monitor mode names in one metadata record: the first ones, then a
/// count, so a package with thousands of refused versions does not make a huge record.
const WOULD_HIDE_LISTED: usize = 20;

/// The `would-refuse` finding of a metadata summary whose `monitored` versions enforce
/// mode would have hidden; `None` when there are none.
fn would_hide(monitored: &[HiddenVersion]) -> Option<Finding> {
    let verdict = monitored.iter().map(|h| h.verdict).max()?;
    let mut listed: Vec<String> = monitored
        .iter()
        .take(WOULD_HIDE_LISTED)
        .map(|h| format!("{} ({})", h.version, h.verdict))
        .collect();
    if monitored.len() > WOULD_HIDE_LISTED {
        listed.push(format!("and {} more", monitored.len() - WOULD_HIDE_LISTED));
    }
    Some(Finding::new(
        Code::WouldRefuse,
        Severity::Info,
        verdict,
        format!(
            "not enforced (monitor mode): served {} version(s) enforce mode would hide: {}",
            monitored.len(),
            listed.join(", ")
        ),
    ))
}

/// A record of `decision` for this request, its chain fields left for the log to fill.
pub(crate) fn record(
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
