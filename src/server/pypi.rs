//! PyPI under `/pypi/`: filtered project pages and gated files.
//!
//! pip, uv and poetry use `http://HOST/pypi/simple/` as their index. Project pages are
//! answered in the format the client negotiated (PEP 691 JSON or PEP 503 HTML) with refused
//! releases removed (or, with `server.refused-versions = "yank"`, yanked with depfw's reason)
//! and file URLs pointing at `/pypi/files/<upstream path>`; those files (and their PEP 658
//! `.metadata`) pass the artifact gate, so a hash-pinned requirement, a lockfile or a direct
//! file URL is refused too. In yank mode the `.metadata` of a yanked (refused) release is
//! served ([`OnRefusal::ServeYankedMetadata`]), so pip and uv resolve an `==` pin far
//! enough to print the yank reason before the gate refuses the wheel. uv `HEAD`s every
//! wheel: that is answered by the policy alone, without downloading.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use url::Url;

use super::error::ProxyError;
use super::gate::{self, OnRefusal};
use super::upstream::Fetched;
use super::{AppState, RequestCtx};
use crate::config::RefusedVersions;
use crate::package::PackageName;
use crate::registry::pypi::{self as proto, FileKind, ProjectPage, SimpleRequest};
use crate::registry::{ArtifactRecord, ArtifactRequest, VersionRecord};

/// What depfw asks upstream for: JSON carries `upload-time`, which the age checks need.
const UPSTREAM_ACCEPT: &str = "application/vnd.pypi.simple.v1+json, \
     application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// The path after the `/pypi` mount, still percent-encoded.
fn rest(uri: &Uri) -> Result<&str, ProxyError> {
    uri.path()
        .strip_prefix("/pypi")
        .ok_or_else(|| ProxyError::BadRequest("not a PyPI path".to_owned()))
}

pub async fn get(
    State(state): State<AppState>,
    ctx: RequestCtx,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ProxyError> {
    let path = rest(&uri)?;
    if let Some(file) = path.strip_prefix("/files/") {
        return file_request(&state, &ctx, file, false).await;
    }
    match proto::parse_simple_path(path)? {
        SimpleRequest::Project(name) => project(&state, &ctx, &name, &headers, uri.query()).await,
        SimpleRequest::Redirect { location } => Ok((
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, format!("/pypi{location}"))],
        )
            .into_response()),
        SimpleRequest::Index => Err(ProxyError::NotFound(
            "depfw does not list every project; ask for /pypi/simple/<name>/".to_owned(),
        )),
    }
}

/// `HEAD`: files get a policy-only answer; pages run `GET` (axum drops the body).
pub async fn head(
    state: State<AppState>,
    ctx: RequestCtx,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ProxyError> {
    let path = rest(&uri)?;
    if let Some(file) = path.strip_prefix("/files/") {
        return file_request(&state.0, &ctx, file, true).await;
    }
    get(state, ctx, uri, headers).await
}

/// A parsed project page with its releases, both derived once per upstream body.
struct Project {
    page: ProjectPage,
    records: Vec<VersionRecord>,
}

/// The upstream project page: its URL, the body as fetched (or cached), and its parse.
struct Fetch {
    url: Url,
    fetched: Fetched,
    project: Arc<Project>,
}

/// The project page, parsed once per upstream body; `None` when upstream has no such project.
async fn fetch_page(state: &AppState, name: &PackageName) -> Result<Option<Fetch>, ProxyError> {
    let url = proto::upstream_project_url(&state.inner.upstreams.pypi, name)?;
    let Some(fetched) = state
        .inner
        .upstream
        .metadata(url.as_str(), UPSTREAM_ACCEPT)
        .await?
    else {
        return Ok(None);
    };
    let project = gate::parsed(state, url.as_str(), &fetched, |body| {
        // The metadata cache keeps bodies only; PEP 691 JSON is always an object.
        let is_json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        let content_type = if is_json {
            proto::JSON_CONTENT_TYPE
        } else {
            "text/html"
        };
        let page = proto::parse_project_page(body, Some(content_type), &url, name)?;
        let records = page.records()?;
        Ok(Project { page, records })
    })?;
    Ok(Some(Fetch {
        url,
        fetched,
        project,
    }))
}

/// A filtered project page. Warm, this is a lookup in the render cache (see
/// [`gate::cached_metadata`]), one rendering per upstream body, policy revision, format,
/// refused-versions mode and agent.
async fn project(
    state: &AppState,
    ctx: &RequestCtx,
    name: &PackageName,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Response, ProxyError> {
    let policy_state = state.policy()?;
    let policy = gate::ready(&policy_state)?;
    gate::check_name(state, ctx, policy, name)?;
    let Fetch {
        url,
        fetched,
        project,
    } = fetch_page(state, name)
        .await?
        .ok_or_else(|| ProxyError::NotFound(format!("{name} not found upstream")))?;
    let format = proto::negotiate(
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
        query,
    );
    let mode = state.refused_versions();
    let variant = gate::render_variant(ctx, &format!("pypi|{format:?}|{mode:?}"), true);
    gate::cached_metadata(
        state,
        policy,
        url.as_str(),
        &variant,
        &fetched,
        headers,
        || {
            let filtered = gate::filter_versions(ctx, policy, name, &project.records);
            if fetched.fresh {
                gate::record_filtered(state, ctx, name, &filtered, url.as_str())?;
            }
            let public_base = public_url(ctx)?;
            let rewrite = proto::Rewrite {
                public_base: &public_base,
                files_base: &state.inner.upstreams.pypi_files,
            };
            let show = filtered.dispositions(mode, name);
            let rendered = project
                .page
                .render_records(&project.records, &show, format, &rewrite);
            Ok((rendered.content_type, rendered.body.into_bytes()))
        },
    )
}

/// The base for rewritten file URLs: keeps an agent's `/a/<token>` prefix.
fn public_url(ctx: &RequestCtx) -> Result<Url, ProxyError> {
    Url::parse(&ctx.public_base)
        .map_err(|e| ProxyError::Internal(anyhow::anyhow!("server.public-url: {e}")))
}

/// `/files/<upstream path>` (or its `.metadata`): finds the release on the project page,
/// then hands it to the artifact gate.
async fn file_request(
    state: &AppState,
    ctx: &RequestCtx,
    upstream_path: &str,
    head: bool,
) -> Result<Response, ProxyError> {
    let policy_state = state.policy()?;
    let policy = gate::ready(&policy_state)?;
    let files = &state.inner.upstreams.pypi_files;
    let request = proto::parse_file_path(upstream_path, files)?;
    for name in request.projects() {
        let Some(Fetch { project, .. }) = fetch_page(state, &name).await? else {
            continue;
        };
        let Project { page, records } = &*project;
        let Ok(resolved) = page.resolve_file_in(records, &request) else {
            continue;
        };
        let mut record: Option<VersionRecord> = records
            .iter()
            .find(|r| r.version_text == resolved.version_text)
            .cloned();
        let mut filename = request.filename.clone();
        if request.kind == FileKind::CoreMetadata {
            // The `.metadata` file is gated as its own artifact of the release, checked
            // against the advertised core-metadata digest.
            let upstream = page
                .file(&request.filename)
                .map(|f| format!("{}.metadata", f.url))
                .unwrap_or_default();
            filename.push_str(".metadata");
            if let Some(r) = &mut record {
                r.artifacts = vec![ArtifactRecord {
                    filename: filename.clone(),
                    upstream_url: upstream,
                    digest: resolved.digest.clone(),
                }];
            }
        }
        let req = ArtifactRequest {
            name,
            version_text: resolved.version_text,
            filename,
        };
        let origins = [files];
        let on_refusal = match (request.kind, state.refused_versions()) {
            (FileKind::CoreMetadata, RefusedVersions::Yank) => OnRefusal::ServeYankedMetadata,
            _ => OnRefusal::Refuse,
        };
        let record = record.as_ref();
        return if head {
            gate::artifact_head(state, ctx, policy, &req, record, &origins, on_refusal).await
        } else {
            gate::artifact(state, ctx, policy, &req, record, &origins, on_refusal).await
        };
    }
    Err(ProxyError::NotFound(format!(
        "{} is not listed on its project's page upstream",
        request.filename
    )))
}
