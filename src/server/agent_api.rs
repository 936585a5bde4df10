//! The agent's own questions to depfw, on the proxy's address under `/agent/v1/`: what
//! `depfw mcp` (the MCP server an agent tool starts) calls with the agent's token in the
//! `Authorization` header. An agent that meets a refusal can ask instead of guessing:
//!
//! - `POST /agent/v1/check` `{"packages": ["npm lodash@^4", "pypi requests>=2", …]}`: per
//!   package the verdict under the agent's preset, the findings, the newest allowed version
//!   that satisfies the range and, for a typosquat, the name it imitates;
//! - `GET /agent/v1/requests/{request id}`: what the agent's own request with that
//!   `x-depfw-request-id` was refused for, and what it can do (never another agent's);
//! - `POST /agent/v1/approvals` `{"package": "npm left-pad@1.3.0", "justification": "…"}`:
//!   asks a human to review a refused version (or, without a version, a refused name) in the
//!   quarantine queue, with the agent's reason. It approves nothing.
//!
//! The token is required (401 without one), so every answer is in that agent's provenance:
//! each check and each request for approval is a decision record naming the agent
//! (outcome `checked`, `approval-requested`). The verdicts come from the same
//! `Policy::evaluate` as the proxy's, under the agent's preset ([`super::verdicts`]).

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ProxyError;
use super::pipeline::Gate;
use super::records::record;
use super::{verdicts, AppState, PolicyState, RequestCtx};
use crate::package::{split_name_version, Ecosystem, PackageName, Version};
use crate::policy::overrides::VersionScope;
use crate::policy::{Decision, Finding, Verdict};
use crate::store::decisions::{DecisionRecord, RecordFilter, RecordKind};
use crate::store::quarantine::{QuarantineError, QuarantineStatus, ANY_VERSION};

/// The path prefix of the agent API; a token is required under it.
pub(crate) const PREFIX: &str = "/agent/";
/// Packages one `check` call may ask about.
const MAX_PACKAGES: usize = 100;
/// How far back (records of this agent, newest first) `requests/{id}` looks.
const EXPLAIN_WINDOW: usize = 5000;

/// The agent API's routes, under the registry router (after [`super::agent`]'s identity).
pub(crate) fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/agent/v1/check", post(check))
        .route("/agent/v1/requests/{id}", get(explain))
        .route("/agent/v1/approvals", post(request_approval))
}

/// Errors of the agent API: the proxy's, as JSON `{"error": …}`.
fn json(status: StatusCode, value: &impl Serialize) -> Response {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned());
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn agent_name(ctx: &RequestCtx) -> Result<&str, ProxyError> {
    // `agent::identify` requires the token under PREFIX; this is the second lock.
    ctx.agent
        .as_ref()
        .map(|a| a.name.as_str())
        .ok_or_else(|| ProxyError::BadRequest("the agent API needs an agent token".to_owned()))
}

/// One package an agent asks about: `<ecosystem> <name>[@version|range]` (PyPI also
/// `name==1.0`, `name>=1,<2`).
#[derive(Debug)]
pub(crate) struct Asked {
    pub name: PackageName,
    /// The version or range as written; `None`: any version.
    pub range_text: Option<String>,
    pub scope: VersionScope,
}

pub(crate) fn parse_item(item: &str) -> Result<Asked, String> {
    let item = item.trim();
    let Some((eco, spec)) = item.split_once(char::is_whitespace) else {
        return Err(format!(
            "`{}`: write `<ecosystem> <name>[@version|range]`, e.g. `npm lodash@^4`",
            clip(item)
        ));
    };
    let ecosystem: Ecosystem = eco.parse().map_err(|e| format!("{e}"))?;
    let spec = spec.trim();
    let (name, version) = match ecosystem {
        // PEP 508 style: `requests>=2,<3`, `idna==3.9`, `idna~=3.0`.
        Ecosystem::PyPI if !spec.contains('@') => match spec.find(['<', '>', '=', '!', '~']) {
            Some(at) => (spec[..at].trim(), Some(spec[at..].trim())),
            None => (spec, None),
        },
        _ => split_name_version(ecosystem, spec),
    };
    let name = PackageName::parse(ecosystem, name).map_err(|e| e.to_string())?;
    let (range_text, scope) = match version.filter(|v| !v.is_empty()) {
        Some(v) => (
            Some(v.to_owned()),
            VersionScope::parse(ecosystem, v).map_err(|e| format!("`{}`: {e}", clip(v)))?,
        ),
        None => (None, VersionScope::Any),
    };
    Ok(Asked {
        name,
        range_text,
        scope,
    })
}

fn clip(text: &str) -> String {
    text.chars()
        .take(120)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[derive(Debug, Deserialize)]
struct CheckRequest {
    packages: Vec<String>,
}

/// What depfw says about one asked package.
#[derive(Debug, Serialize)]
pub(crate) struct Checked {
    /// The item as the agent wrote it.
    pub package: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecosystem: Option<Ecosystem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The version or range asked about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// The version the verdict and findings are about: the one asked for, else the newest
    /// allowed in the range, else the newest refused one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `allow`, `warn`, `quarantine` or `deny`; absent when the item could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    pub findings: Vec<Finding>,
    /// The newest version this agent may install that satisfies the range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest_allowed: Option<String>,
    /// For a typosquat: the package its name imitates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub did_you_mean: Option<String>,
    /// What the agent can do, in a sentence.
    pub advice: String,
}

impl Checked {
    fn unreadable(package: &str, why: String) -> Checked {
        Checked {
            package: clip(package),
            ecosystem: None,
            name: None,
            range: None,
            version: None,
            verdict: None,
            findings: Vec::new(),
            newest_allowed: None,
            did_you_mean: None,
            advice: why,
        }
    }
}

/// What to do about a verdict, in one sentence for the agent.
fn advice(verdict: Verdict, newest_allowed: Option<&str>, did_you_mean: Option<&str>) -> String {
    match (verdict, did_you_mean, newest_allowed) {
        (Verdict::Allow | Verdict::Warn, _, _) => {
            "allowed: install it through the depfw mirror".to_owned()
        }
        (_, Some(meant), _) => format!(
            "refused: did you mean `{meant}`? Check and use that name; if this name is really \
             wanted, ask a human with request_approval and a justification"
        ),
        (_, None, Some(v)) => format!(
            "refused: use version {v} instead (the newest allowed in the range); if this \
             version is really needed, ask a human with request_approval and a justification"
        ),
        (Verdict::Quarantine, None, None) => "held for review: ask a human with \
             request_approval and a justification, or choose another package"
            .to_owned(),
        (Verdict::Deny, None, None) => "denied by policy: choose another package or version; \
             if you believe this is wrong, ask a human with request_approval and a \
             justification. Do not fetch it another way"
            .to_owned(),
    }
}

/// Asks the policy about one package as the requesting agent, recording the answer.
pub(crate) async fn assess(state: &AppState, ctx: &RequestCtx, item: &str) -> Checked {
    let asked = match parse_item(item) {
        Ok(a) => a,
        Err(why) => return Checked::unreadable(item, why),
    };
    match assess_parsed(state, ctx, item, &asked).await {
        Ok(checked) => checked,
        Err(e) => {
            let mut checked = Checked::unreadable(item, e.to_string());
            checked.ecosystem = Some(asked.name.ecosystem());
            checked.name = Some(asked.name.as_str().to_owned());
            checked
        }
    }
}

async fn assess_parsed(
    state: &AppState,
    ctx: &RequestCtx,
    item: &str,
    asked: &Asked,
) -> Result<Checked, ProxyError> {
    let name = &asked.name;
    state.require_decidable(name.ecosystem())?;
    let current = state.policy()?;
    let PolicyState::Ready(policy) = &*current else {
        return Err(ProxyError::PolicyUnavailable("not loaded".to_owned()));
    };
    let mut checked = Checked {
        package: clip(item),
        ecosystem: Some(name.ecosystem()),
        name: Some(name.as_str().to_owned()),
        range: asked.range_text.clone(),
        version: None,
        verdict: None,
        findings: Vec::new(),
        newest_allowed: None,
        did_you_mean: None,
        advice: String::new(),
    };
    let by_name = verdicts::decide_name(ctx, policy, name);
    let decision = if by_name.verdict.is_servable() {
        let gate = Gate::new(state, ctx)?;
        let scope = &asked.scope;
        let picked = state
            .inner
            .protocols
            .with_versions(&gate, name, |records| {
                let filtered = verdicts::filter_versions(ctx, policy, name, records);
                let in_range = |v: &Version| match scope {
                    VersionScope::Any => !v.is_prerelease(),
                    _ => scope.covers(Some(v)),
                };
                let newest = |allowed: bool| {
                    records
                        .iter()
                        .filter_map(|r| r.version.as_ref().map(|v| (v, r)))
                        .filter(|(v, r)| {
                            in_range(v) && filtered.kept.contains(&r.version_text) == allowed
                        })
                        .fold(None, |best: Option<(&Version, _)>, (v, r)| match best {
                            Some((b, _)) if b >= v => best,
                            _ => Some((v, r)),
                        })
                };
                // A refused pin's alternative: the nearest allowed release.
                let allowed = match scope {
                    VersionScope::Exact(pin) => {
                        verdicts::nearest_allowed(records, &filtered.kept, Some(pin))
                    }
                    _ => newest(true).map(|(_, r)| r.version_text.clone()),
                };
                // The version the verdict is about: the pinned one, else what the agent
                // would get, else the newest one it may not have.
                let about = match scope {
                    VersionScope::Exact(v) => records
                        .iter()
                        .find(|r| r.version.as_ref() == Some(v))
                        .map(|r| (v, r)),
                    _ => newest(true).or_else(|| newest(false)),
                };
                let decision = about.map(|(v, r)| {
                    (
                        r.version_text.clone(),
                        verdicts::decide_listed(ctx, policy, name, v, &r.metadata),
                    )
                });
                (allowed, decision)
            })
            .await?;
        match picked {
            None => {
                return Ok(Checked {
                    advice: format!("{name} is not published on the upstream registry"),
                    ..checked
                })
            }
            Some((allowed, Some((version, decision)))) => {
                checked.newest_allowed = allowed;
                checked.version = Some(version);
                decision
            }
            Some((allowed, None)) => {
                checked.newest_allowed = allowed;
                return Ok(Checked {
                    verdict: None,
                    advice: match &asked.range_text {
                        Some(r) => format!("no published version of {name} matches `{r}`"),
                        None => format!("{name} has no released version"),
                    },
                    ..checked
                });
            }
        }
    } else {
        by_name
    };
    let mut rec = record(
        ctx,
        RecordKind::Metadata,
        name,
        checked.version.as_deref(),
        &decision,
        "checked",
    );
    state.decisions().append(&mut rec)?;
    checked.did_you_mean = verdicts::imitated(&decision.findings);
    // A pinned version that is refused: the newest allowed one is the alternative.
    let alternative = checked
        .newest_allowed
        .as_deref()
        .filter(|v| checked.version.as_deref() != Some(*v));
    checked.advice = advice(
        decision.verdict,
        alternative,
        checked.did_you_mean.as_deref(),
    );
    checked.verdict = Some(decision.verdict);
    checked.findings = decision.findings;
    Ok(checked)
}

async fn check(
    State(state): State<AppState>,
    ctx: RequestCtx,
    Json(req): Json<CheckRequest>,
) -> Result<Response, ProxyError> {
    let agent = agent_name(&ctx)?.to_owned();
    if req.packages.is_empty() || req.packages.len() > MAX_PACKAGES {
        return Err(ProxyError::BadRequest(format!(
            "`packages` lists 1 to {MAX_PACKAGES} items, `<ecosystem> <name>[@version|range]`"
        )));
    }
    let mut results = Vec::with_capacity(req.packages.len());
    for item in &req.packages {
        results.push(assess(&state, &ctx, item).await);
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "agent": agent,
            "request_id": ctx.request_id,
            "results": results,
        }),
    ))
}

/// One record of the refused request, as the agent sees it.
#[derive(Debug, Serialize)]
struct Seen<'a> {
    time: String,
    kind: RecordKind,
    ecosystem: &'a str,
    package: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    verdict: Verdict,
    outcome: &'a str,
    findings: &'a [Finding],
}

async fn explain(
    State(state): State<AppState>,
    ctx: RequestCtx,
    Path(id): Path<String>,
) -> Result<Response, ProxyError> {
    let agent = agent_name(&ctx)?.to_owned();
    let filter = RecordFilter {
        agent: Some(agent.clone()),
        ..RecordFilter::default()
    };
    let recent = super::blocking(|| state.decisions().query(&filter, EXPLAIN_WINDOW))?;
    let mut records: Vec<&DecisionRecord> = recent.iter().filter(|r| r.request_id == id).collect();
    records.reverse();
    if records.is_empty() {
        return Ok(json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({
                "error": format!(
                    "depfw: no request `{}` by agent `{agent}` among its latest {EXPLAIN_WINDOW} \
                     decision records (the id is the `x-depfw-request-id` header, or the `request \
                     id` in the refusal text; only your own requests are shown)",
                    clip(&id)
                ),
            }),
        ));
    }
    let seen: Vec<Seen<'_>> = records
        .iter()
        .map(|r| Seen {
            time: r.time.to_rfc3339(),
            kind: r.kind,
            ecosystem: &r.ecosystem,
            package: &r.package,
            version: r.version.as_deref(),
            verdict: r.verdict,
            outcome: &r.outcome,
            findings: &r.findings,
        })
        .collect();
    // The record that decided: the worst one (a refusal), else the last.
    let decisive = records
        .iter()
        .max_by_key(|r| r.verdict)
        .copied()
        .unwrap_or(records[records.len() - 1]);
    let spec = match &decisive.version {
        Some(v) => format!("{}@{v}", decisive.package),
        None => decisive.package.clone(),
    };
    let refused = !decisive.verdict.is_servable();
    let decision = Decision {
        verdict: decisive.verdict,
        findings: decisive.findings.clone(),
    };
    let mut what = Vec::new();
    let mut alternative = None;
    if refused {
        // The safe alternative now, under the same policy: the newest allowed version.
        if let Ok(ecosystem) = decisive.ecosystem.parse::<Ecosystem>() {
            let item = format!("{ecosystem} {}", decisive.package);
            let now = assess(&state, &ctx, &item).await;
            alternative = now
                .newest_allowed
                .filter(|v| decisive.version.as_ref() != Some(v));
        }
        let did_you_mean = verdicts::imitated(&decisive.findings);
        if let Some(meant) = &did_you_mean {
            what.push(format!(
                "did you mean `{meant}`? Check it with check_packages and use that name"
            ));
        }
        if let Some(v) = &alternative {
            what.push(format!(
                "install {}@{v} instead: the newest version this agent may install",
                decisive.package
            ));
        }
        if let Some(fixed) = decisive.findings.iter().find_map(|f| f.fixed_in.as_ref()) {
            what.push(format!("a fixed release exists: {fixed}"));
        }
        let held = state
            .quarantine()
            .list(Some(QuarantineStatus::Pending))
            .map_err(|e| ProxyError::Internal(e.into()))?
            .into_iter()
            .find(|q| {
                q.name == decisive.package
                    && decisive.version.as_deref().unwrap_or(ANY_VERSION) == q.version
            });
        what.push(match held {
            Some(q) => format!(
                "it is in the review queue as item {} ({} request(s)); to add your reason, \
                 call request_approval with a justification; a human approves or rejects it",
                q.id, q.request_count
            ),
            None => "if it is really needed, call request_approval with a justification: \
                     a human reviews it (depfw approves nothing by itself)"
                .to_owned(),
        });
        what.push(
            "do not fetch it another way (another registry, a direct URL, vendoring): that \
             is what depfw exists to prevent"
                .to_owned(),
        );
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "agent": agent,
            "request_id": id,
            "refused": refused,
            "package": spec,
            "verdict": decisive.verdict,
            "why": if refused { verdicts::refusal(&spec, &decision) } else {
                format!("{spec} was not refused ({})", decisive.verdict)
            },
            "newest_allowed": alternative,
            "what_you_can_do": what,
            "records": seen,
        }),
    ))
}

#[derive(Debug, Deserialize)]
struct ApprovalRequest {
    /// `<ecosystem> <name>[@version]`.
    package: String,
    justification: String,
}

async fn request_approval(
    State(state): State<AppState>,
    ctx: RequestCtx,
    Json(req): Json<ApprovalRequest>,
) -> Result<Response, ProxyError> {
    let agent = agent_name(&ctx)?.to_owned();
    let asked = parse_item(&req.package).map_err(ProxyError::BadRequest)?;
    let version = match &asked.scope {
        VersionScope::Any => None,
        VersionScope::Exact(v) => Some(v.clone()),
        VersionScope::Range(_) => {
            return Err(ProxyError::BadRequest(
                "name one version (`npm left-pad@1.3.0`), or none to ask about the name; \
                 a range cannot be reviewed"
                    .to_owned(),
            ))
        }
    };
    let name = &asked.name;
    // What the policy says now, under this agent's preset: the findings the reviewer sees.
    let current = state.policy()?;
    let PolicyState::Ready(policy) = &*current else {
        return Err(ProxyError::PolicyUnavailable("not loaded".to_owned()));
    };
    let decision = verdicts::decide_name(&ctx, policy, name);
    let decision = match (&version, decision.verdict.is_servable()) {
        (Some(v), true) => {
            let listed = state
                .inner
                .protocols
                .with_versions(&Gate::new(&state, &ctx)?, name, |records| {
                    records
                        .iter()
                        .find(|r| r.version.as_ref() == Some(v))
                        .map(|r| verdicts::decide_listed(&ctx, policy, name, v, &r.metadata))
                })
                .await?
                .flatten();
            match listed {
                Some(d) => d,
                None => {
                    return Err(ProxyError::NotFound(format!(
                        "{name}@{v} is not published on the upstream registry"
                    )))
                }
            }
        }
        _ => decision,
    };
    let spec = match &version {
        Some(v) => format!("{name}@{v}"),
        None => name.to_string(),
    };
    if decision.verdict.is_servable() {
        return Ok(json(
            StatusCode::OK,
            &serde_json::json!({
                "agent": agent,
                "package": spec,
                "status": "not-needed",
                "verdict": decision.verdict,
                "message": format!("{spec} is allowed for this agent: install it through the depfw mirror"),
            }),
        ));
    }
    let now = chrono::Utc::now();
    let id = super::blocking(|| {
        state.quarantine().request(
            name,
            version.as_ref(),
            &agent,
            &req.justification,
            decision.findings.clone(),
            &ctx.request_id,
            now,
        )
    })
    .map_err(|e| match e {
        QuarantineError::JustificationRequired | QuarantineError::Override(_) => {
            ProxyError::BadRequest(e.to_string())
        }
        other => ProxyError::Internal(other.into()),
    })?;
    let version_text = version.as_ref().map(ToString::to_string);
    let mut rec = record(
        &ctx,
        RecordKind::Metadata,
        name,
        version_text.as_deref(),
        &decision,
        "approval-requested",
    );
    state.decisions().append(&mut rec)?;
    // An agent's written request is worth a notice even on an item already open.
    state.approvals().announce(id, false);
    let item = state
        .quarantine()
        .get(id)
        .map_err(|e| ProxyError::Internal(e.into()))?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "agent": agent,
            "package": spec,
            "status": "pending",
            "quarantine_id": id,
            "request_count": item.request_count,
            "verdict": decision.verdict,
            "message": format!(
                "{spec} is in the review queue as item {id}, with your justification. A human \
                 approves or rejects it (`depfw quarantine approve {id}` or the admin page); \
                 nothing is approved by this request. Until then, use an allowed alternative \
                 (check_packages) and do not fetch it another way"
            ),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Code, Severity};

    #[test]
    fn items_read_like_depfw_check() {
        let a = parse_item("npm lodash@^4.17").unwrap();
        assert_eq!(a.name.as_str(), "lodash");
        assert_eq!(a.range_text.as_deref(), Some("^4.17"));
        assert!(matches!(a.scope, VersionScope::Range(_)));
        let a = parse_item("npm @types/node@20.1.0").unwrap();
        assert_eq!(a.name.as_str(), "@types/node");
        assert!(matches!(a.scope, VersionScope::Exact(_)));
        let a = parse_item("pypi requests>=2,<3").unwrap();
        assert_eq!(a.name.as_str(), "requests");
        assert!(matches!(a.scope, VersionScope::Range(_)));
        let a = parse_item("pypi idna==3.9").unwrap();
        assert!(matches!(a.scope, VersionScope::Exact(_)));
        let a = parse_item("cargo itoa").unwrap();
        assert!(matches!(a.scope, VersionScope::Any));
        assert!(parse_item("lodash").is_err());
        assert!(parse_item("maven junit").is_err());
    }

    #[test]
    fn the_imitated_name_comes_from_the_typosquat_finding() {
        let f = Finding::new(
            Code::PossibleTyposquat,
            Severity::High,
            Verdict::Deny,
            "`lodahs` looks like a typosquat of `lodash` (npm rank 3): swapped letters".to_owned(),
        );
        assert_eq!(verdicts::imitated(&[f]).as_deref(), Some("lodash"));
        let other = Finding::new(
            Code::DenyListed,
            Severity::High,
            Verdict::Deny,
            "`a` is `b`".to_owned(),
        );
        assert_eq!(verdicts::imitated(&[other]), None);
    }
}
