//! The JSON API under `/admin/api/`; every route needs the admin token (see
//! [`super::admin_router`]). The same operations as the web page and the CLI.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::{ApiJson, ApiPath, ApiQuery};
use super::sources::{LogFilter, DEFAULT_LOG_LIMIT, MAX_LOG_LIMIT, WOULD_REFUSE};
use super::{AdminError, AdminState, NewToken, API_AUTHOR};
use crate::agents::Agent;
use crate::policy::overrides::OverrideKind;
use crate::policy::Verdict;
use crate::store::overrides::{EntryText, OverrideId, StoredOverride};
use crate::store::quarantine::{QuarantineId, QuarantineStatus};
use crate::store::signing::PublicKey;
use crate::when::{parse_since, parse_until};

type ApiResult = Result<Response, AdminError>;

fn ok(value: impl Serialize) -> ApiResult {
    Ok(Json(value).into_response())
}

/// An override with its status at the time of the answer.
#[derive(Serialize)]
pub(crate) struct OverrideView<'a> {
    #[serde(flatten)]
    record: &'a StoredOverride,
    status: &'static str,
}

pub(crate) fn override_view(record: &StoredOverride, now: DateTime<Utc>) -> OverrideView<'_> {
    OverrideView {
        record,
        status: record.status(now).as_str(),
    }
}

/// An agent with its status.
#[derive(Serialize)]
struct AgentView<'a> {
    #[serde(flatten)]
    agent: &'a Agent,
    status: &'static str,
}

fn agent_view(agent: &Agent) -> AgentView<'_> {
    AgentView {
        agent,
        status: agent.status(),
    }
}

/// `status` of a quarantine listing: `pending` (default), `approved`, `rejected` or `all`.
pub(crate) fn parse_status(text: Option<&str>) -> Result<Option<QuarantineStatus>, AdminError> {
    match text.unwrap_or("pending") {
        "pending" => Ok(Some(QuarantineStatus::Pending)),
        "approved" => Ok(Some(QuarantineStatus::Approved)),
        "rejected" => Ok(Some(QuarantineStatus::Rejected)),
        "all" => Ok(None),
        other => Err(AdminError::BadRequest(format!(
            "`{other}` is not a quarantine status (pending, approved, rejected or all)"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusQuery {
    status: Option<String>,
    /// Only items this agent asked for (`anonymous`: anonymous clients).
    agent: Option<String>,
}

pub(crate) async fn list_quarantine(
    State(state): State<AdminState>,
    ApiQuery(query): ApiQuery<StatusQuery>,
) -> ApiResult {
    let status = parse_status(query.status.as_deref())?;
    ok(json!({ "items": state.queue(status, query.agent.as_deref())? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApproveBody {
    /// `version` (default) or a range that includes the held version.
    scope: Option<String>,
    reason: String,
    expires: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReasonBody {
    reason: String,
}

fn resolution(state: &AdminState, item: QuarantineId, entry: OverrideId) -> ApiResult {
    let item = state.quarantine.get(item)?;
    let entry = state.overrides.get(entry)?;
    ok(json!({ "item": item, "override": override_view(&entry, Utc::now()) }))
}

pub(crate) async fn approve(
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<QuarantineId>,
    ApiJson(body): ApiJson<ApproveBody>,
) -> ApiResult {
    let entry = state.approve(
        id,
        body.scope.as_deref(),
        &body.reason,
        body.expires.as_deref(),
        API_AUTHOR,
    )?;
    resolution(&state, id, entry)
}

pub(crate) async fn reject(
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<QuarantineId>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> ApiResult {
    let entry = state.reject(id, &body.reason, API_AUTHOR)?;
    resolution(&state, id, entry)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryQuery {
    /// Also expired and removed entries.
    all: Option<bool>,
}

pub(crate) async fn list_overrides(
    State(state): State<AdminState>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult {
    let now = Utc::now();
    let list = state.overrides.list(query.all.unwrap_or(false), now)?;
    let views: Vec<_> = list.iter().map(|r| override_view(r, now)).collect();
    ok(json!({ "items": views }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OverrideBody {
    kind: OverrideKind,
    ecosystem: String,
    name: String,
    versions: Option<String>,
    reason: String,
    expires: Option<String>,
    /// The one agent the entry applies to.
    agent: Option<String>,
}

pub(crate) async fn add_override(
    State(state): State<AdminState>,
    ApiJson(body): ApiJson<OverrideBody>,
) -> ApiResult {
    let text = EntryText {
        ecosystem: &body.ecosystem,
        name: &body.name,
        versions: body.versions.as_deref().unwrap_or("*"),
        reason: &body.reason,
        expires: body.expires.as_deref(),
        by: API_AUTHOR,
        agent: body.agent.as_deref(),
    };
    let record = state.add_override(body.kind, text)?;
    Ok((
        StatusCode::CREATED,
        Json(override_view(&record, Utc::now())),
    )
        .into_response())
}

pub(crate) async fn remove_override(
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<OverrideId>,
) -> ApiResult {
    let record = state.remove_override(id, API_AUTHOR)?;
    ok(override_view(&record, Utc::now()))
}

pub(crate) async fn list_agents(State(state): State<AdminState>) -> ApiResult {
    let agents = state.agents.list()?;
    let views: Vec<_> = agents.iter().map(agent_view).collect();
    ok(json!({ "items": views }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgentBody {
    name: String,
    /// `default` or `strict`; default from `[agents] default-policy`.
    policy: Option<String>,
}

pub(crate) async fn add_agent(
    State(state): State<AdminState>,
    ApiJson(body): ApiJson<AgentBody>,
) -> ApiResult {
    let (agent, token) = state.add_agent(&body.name, body.policy.as_deref())?;
    let answer = NewToken {
        mirror_urls: state.mirror_urls(&token),
        token: token.expose_secret().to_owned(),
        agent,
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

pub(crate) async fn rotate_agent(
    State(state): State<AdminState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult {
    let token = state.agents.rotate(&name)?;
    tracing::info!(agent = %name, "admin rotated an agent token");
    ok(NewToken {
        agent: state.agents.get(&name)?,
        mirror_urls: state.mirror_urls(&token),
        token: token.expose_secret().to_owned(),
    })
}

pub(crate) async fn revoke_agent(
    State(state): State<AdminState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult {
    let agent = state.agents.revoke(&name)?;
    tracing::info!(agent = %name, "admin revoked an agent");
    ok(agent_view(&agent))
}

pub(crate) async fn suspend_agent(
    State(state): State<AdminState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> ApiResult {
    let agent = state.agents.suspend(&name, &body.reason)?;
    tracing::info!(agent = %name, "admin suspended an agent");
    ok(agent_view(&agent))
}

pub(crate) async fn resume_agent(
    State(state): State<AdminState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult {
    let agent = state.agents.resume(&name)?;
    tracing::info!(agent = %name, "admin resumed an agent");
    ok(agent_view(&agent))
}

/// A query field's text, trimmed; blank is unset.
pub(crate) fn text(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

/// Provenance log search parameters, as text (query string or page form).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogQuery {
    pub agent: Option<String>,
    pub package: Option<String>,
    pub verdict: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<String>,
}

impl LogQuery {
    /// The validated filter; blank fields are unset.
    pub(crate) fn filter(&self) -> Result<LogFilter, AdminError> {
        let time = |field: &str, v: &Option<String>, parse: fn(&str) -> Result<_, String>| {
            text(v)
                .map(parse)
                .transpose()
                .map_err(|e| AdminError::BadRequest(format!("{field}: {e}")))
        };
        // `would-refuse`: what monitor mode served that enforce mode would have refused.
        let would_refuse = text(&self.verdict) == Some(WOULD_REFUSE);
        let verdict = text(&self.verdict)
            .filter(|_| !would_refuse)
            .map(str::parse::<Verdict>)
            .transpose()
            .map_err(|e| AdminError::BadRequest(format!("verdict: {e}")))?;
        let limit = match text(&self.limit) {
            None => DEFAULT_LOG_LIMIT,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=MAX_LOG_LIMIT).contains(&n) => n,
                _ => {
                    return Err(AdminError::BadRequest(format!(
                        "limit: `{l}` is not a number from 1 to {MAX_LOG_LIMIT}"
                    )))
                }
            },
        };
        let filter = LogFilter {
            agent: text(&self.agent).map(str::to_owned),
            package: text(&self.package).map(str::to_owned),
            verdict,
            since: time("since", &self.since, parse_since)?,
            until: time("until", &self.until, parse_until)?,
            limit,
            would_refuse,
        };
        if let (Some(since), Some(until)) = (filter.since, filter.until) {
            if since > until {
                return Err(AdminError::BadRequest(
                    "since is after until: nothing can match".to_owned(),
                ));
            }
        }
        Ok(filter)
    }
}

pub(crate) fn run_log_query(
    state: &AdminState,
    filter: &LogFilter,
) -> Result<Vec<Value>, AdminError> {
    state
        .log
        .query(filter)
        .map_err(|e| AdminError::Internal(format!("the provenance log cannot be read: {e}")))
}

pub(crate) async fn query_log(
    State(state): State<AdminState>,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> ApiResult {
    let filter = query.filter()?;
    let entries = run_log_query(&state, &filter)?;
    ok(json!({ "filter": filter, "entries": entries }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyBody {
    /// `ed25519:<base64>`, as `depfw log public-key` prints it.
    public_key: Option<String>,
    /// A checkpoint file's text.
    checkpoints: Option<String>,
}

/// Runs a walk of the whole log on a blocking thread, off the request workers.
async fn off_the_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AdminError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AdminError::Internal(format!("the log task failed: {e}")))
}

/// `depfw log verify` on the server's own log (the CLI's path while the server runs).
pub(crate) async fn verify_log(
    State(state): State<AdminState>,
    ApiJson(body): ApiJson<VerifyBody>,
) -> ApiResult {
    let key = body
        .public_key
        .as_deref()
        .map(|text| PublicKey::decode(text.trim()))
        .transpose()
        .map_err(|e| AdminError::BadRequest(format!("public_key: {e}")))?;
    let checked =
        off_the_runtime(move || state.log.verify(key, body.checkpoints.as_deref())).await?;
    ok(checked.map_err(AdminError::BadRequest)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportQuery {
    agent: Option<String>,
    since: Option<String>,
}

/// `depfw log export` on the server's own log: JSON lines, oldest first.
pub(crate) async fn export_log(
    State(state): State<AdminState>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> ApiResult {
    let since = text(&query.since)
        .map(parse_since)
        .transpose()
        .map_err(|e| AdminError::BadRequest(format!("since: {e}")))?;
    let agent = text(&query.agent).map(str::to_owned);
    let lines = off_the_runtime(move || state.log.export(agent.as_deref(), since))
        .await?
        .map_err(|e| AdminError::Internal(format!("the decision log cannot be read: {e}")))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        lines,
    )
        .into_response())
}

pub(crate) async fn feeds(State(state): State<AdminState>) -> ApiResult {
    ok(state.feeds.status())
}

/// `depfw feeds status` while the server runs: its sources and the coverage in use.
pub(crate) async fn feed_details(State(state): State<AdminState>) -> ApiResult {
    let feeds = state.feeds.clone();
    ok(off_the_runtime(move || feeds.details()).await??)
}

/// `depfw feeds sync` while the server runs: its own configured sources, applied at once.
/// Any body is ignored.
/// `kill -HUP` through the API: the config file read again and its policy applied, or
/// refused with every problem (422) and the policy in force unchanged.
pub(crate) async fn reload(State(state): State<AdminState>) -> ApiResult {
    let reload = std::sync::Arc::clone(&state.reload);
    Ok(match off_the_runtime(move || reload()).await? {
        Ok(done) => Json(done).into_response(),
        Err(refused) => (StatusCode::UNPROCESSABLE_ENTITY, Json(refused)).into_response(),
    })
}

pub(crate) async fn sync_feeds(State(state): State<AdminState>) -> ApiResult {
    let feeds = state.feeds.clone();
    ok(off_the_runtime(move || feeds.sync()).await??)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportQuery {
    /// The source name in the store.
    name: String,
    /// The uploaded file's name, for messages.
    file: Option<String>,
}

/// Longest source name an import may give.
const MAX_SOURCE_NAME: usize = 200;

/// `depfw feeds import FILE` while the server runs: the file is the body (at most
/// [`super::MAX_FEED_UPLOAD_BYTES`]), applied at once.
pub(crate) async fn import_feed(
    State(state): State<AdminState>,
    ApiQuery(query): ApiQuery<ImportQuery>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult {
    let name = query.name.trim().to_owned();
    if name.is_empty()
        || name.len() > MAX_SOURCE_NAME
        || name.chars().any(|c| c.is_control() || c == '/')
    {
        return Err(AdminError::BadRequest(format!(
            "name: a source name is 1 to {MAX_SOURCE_NAME} characters, without `/` or \
             control characters"
        )));
    }
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => AdminError::TooLarge(format!(
            "a feed upload is at most {} bytes",
            super::MAX_FEED_UPLOAD_BYTES
        )),
        _ => AdminError::BadRequest(format!("the upload could not be read: {e}")),
    })?;
    let file = query.file.unwrap_or_else(|| "upload".to_owned());
    let feeds = state.feeds.clone();
    ok(off_the_runtime(move || feeds.import(&name, &file, &body)).await??)
}

/// `POST /api/evaluate`: a batch of packages.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EvaluateBody {
    queries: Vec<crate::audit::evaluate::Query>,
    /// Also look for an allowed fixed version (`upgrade_to`).
    #[serde(default)]
    fix: bool,
}

/// The running policy's decisions, as `depfw check` and `depfw audit` print them.
pub(crate) async fn evaluate(
    State(state): State<AdminState>,
    ApiJson(body): ApiJson<EvaluateBody>,
) -> ApiResult {
    let max = crate::audit::evaluate::MAX_BATCH;
    if body.queries.len() > max {
        return Err(AdminError::BadRequest(format!(
            "{} packages in one request; send at most {max}",
            body.queries.len()
        )));
    }
    let judge = std::sync::Arc::clone(&state.judge);
    let answers = tokio::task::spawn_blocking(move || judge.evaluate(&body.queries, body.fix))
        .await
        .map_err(|e| AdminError::Internal(format!("evaluating: {e}")))??;
    ok(json!({ "answers": answers }))
}

pub(crate) async fn openapi() -> ApiResult {
    ok(super::openapi::document())
}
