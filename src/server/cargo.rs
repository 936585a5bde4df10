//! crates.io under `/cargo/`: a filtered sparse index and gated `.crate` downloads.
//!
//! cargo uses `sparse+http://HOST/cargo/index/` as a replacement for crates-io. Index files
//! lose the lines of refused versions, or with `server.refused-versions = "yank"` mark them
//! `"yanked": true` (either way `^1` resolves to the newest allowed one), and `config.json`
//! sends downloads to `/cargo/dl/{crate}/{version}/{sha256}`, where the artifact gate refuses
//! them again. A `Cargo.lock` made before a version was denied fails either way: with the line
//! removed, at resolution (`locked to 1.0.11`, no depfw reason); yanked, cargo honours the
//! lock and asks for the download, whose 403 body (plain text) cargo prints under `body:`.
//!
//! Publish times come from the index's `pubtime`, which crates.io carries for every version
//! (checked on 2026-11-21 against cargo's cached index files: serde, syn, cc, … each line has
//! one). TODO: for third-party registries without `pubtime`, fall back to the web API
//! (`registry::cargo::api`, as `depfw audit --online` does); until then those versions get no
//! cooldown or new-package finding.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use url::Url;

use super::error::{ProxyError, UpstreamFault};
use super::gate::{self, OnRefusal};
use super::upstream::Fetched;
use super::{AppState, RequestCtx};
use crate::package::PackageName;
use crate::registry::cargo::{self as proto, IndexFile, IndexRequest, UpstreamConfig};
use crate::registry::{ArtifactRequest, Digest};

pub async fn get(
    State(state): State<AppState>,
    ctx: RequestCtx,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match route(&state, &ctx, &uri, &headers).await {
        Ok(resp) => resp,
        // cargo prints an error body verbatim, so plain text reads better than JSON there.
        Err(e) => {
            let text = format!("{e}\n");
            let mut resp = e.into_response();
            *resp.body_mut() = axum::body::Body::from(text);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            resp
        }
    }
}

async fn route(
    state: &AppState,
    ctx: &RequestCtx,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, ProxyError> {
    let path = uri
        .path()
        .strip_prefix("/cargo/")
        .ok_or_else(|| ProxyError::BadRequest("not a cargo path".to_owned()))?;
    if let Some(index_path) = path.strip_prefix("index/") {
        return match proto::parse_index_path(index_path)? {
            IndexRequest::Config => {
                // The agent's `/a/<token>` prefix stays in `dl`, so downloads are attributed.
                let base = Url::parse(&ctx.public_base)
                    .map_err(|e| ProxyError::Internal(anyhow::anyhow!("server.public-url: {e}")))?;
                let body = proto::render_config(&base);
                Ok((
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response())
            }
            IndexRequest::Crate(name) => index(state, ctx, &name, headers).await,
        };
    }
    if path.starts_with("dl/") {
        return download(state, ctx, path).await;
    }
    Err(ProxyError::NotFound(format!(
        "{} is not served by depfw",
        uri.path()
    )))
}

/// The upstream index file of a crate (parsed once per upstream body), the body as fetched
/// (or cached), and its URL.
async fn fetch_index(
    state: &AppState,
    name: &PackageName,
) -> Result<(Arc<IndexFile>, Fetched, Url), ProxyError> {
    let url = proto::upstream_index_url(&state.inner.upstreams.cargo_index, name)?;
    let fetched = state
        .inner
        .upstream
        .metadata(url.as_str(), "text/plain")
        .await?
        .ok_or_else(|| ProxyError::NotFound(format!("{name} not found upstream")))?;
    let file = gate::parsed(state, url.as_str(), &fetched, |body| {
        IndexFile::parse(body, name)
    })?;
    Ok((file, fetched, url))
}

/// A filtered index file. Warm, this is a lookup in the render cache (see
/// [`gate::cached_metadata`]); index lines carry no URLs, so agents with the same preset
/// share one rendering.
async fn index(
    state: &AppState,
    ctx: &RequestCtx,
    name: &PackageName,
    headers: &HeaderMap,
) -> Result<Response, ProxyError> {
    let policy_state = state.policy()?;
    let policy = gate::ready(&policy_state)?;
    gate::check_name(state, ctx, policy, name)?;
    let (file, fetched, url) = fetch_index(state, name).await?;
    let mode = state.refused_versions();
    let variant = gate::render_variant(ctx, &format!("cargo|{mode:?}"), false);
    gate::cached_metadata(
        state,
        policy,
        url.as_str(),
        &variant,
        &fetched,
        headers,
        || {
            let filtered = gate::filter_versions(ctx, policy, name, &file.records());
            if fetched.fresh {
                gate::record_filtered(state, ctx, name, &filtered, url.as_str())?;
            }
            let body = file.render_with(&filtered.dispositions(mode, name));
            Ok(("text/plain", body.into_bytes()))
        },
    )
}

/// Upstream's `config.json` (cached like any metadata); crates.io's layout if it has none.
async fn upstream_config(state: &AppState) -> Result<UpstreamConfig, ProxyError> {
    let base = &state.inner.upstreams.cargo_index;
    let url = format!("{}/config.json", base.as_str().trim_end_matches('/'));
    match state
        .inner
        .upstream
        .metadata(&url, "application/json")
        .await?
    {
        Some(fetched) => proto::parse_upstream_config(&fetched.body).map_err(|e| {
            state.inner.upstream.forget(&url);
            ProxyError::upstream(UpstreamFault::Invalid, &url, e.to_string())
        }),
        None => Ok(UpstreamConfig::default()),
    }
}

async fn download(state: &AppState, ctx: &RequestCtx, path: &str) -> Result<Response, ProxyError> {
    let policy_state = state.policy()?;
    let policy = gate::ready(&policy_state)?;
    let dl = proto::parse_download_path(path)?;
    let config = upstream_config(state).await?;
    let (file, _, _) = fetch_index(state, &dl.name).await?;
    let records = file.records_with_urls(&config)?;
    let record = records.iter().find(|r| r.version_text == dl.version_text);
    let spec = format!("{}@{}", dl.name, dl.version_text);
    if let Some(r) = record {
        // The gate verifies against the index; a path naming other bytes is not ours to serve.
        let listed: Option<&Digest> = r.artifacts.first().and_then(|a| a.digest.as_ref());
        if listed != Some(&dl.checksum) {
            return Err(ProxyError::NotFound(format!(
                "{spec}: checksum {} is not the one in the index",
                dl.checksum.hex()
            )));
        }
    }
    let filename = record
        .and_then(|r| r.artifacts.first())
        .map(|a| a.filename.clone())
        .unwrap_or_default();
    let dl_origin = Url::parse(&config.dl)
        .map_err(|e| ProxyError::upstream(UpstreamFault::Invalid, &config.dl, e.to_string()))?;
    let req = ArtifactRequest {
        name: dl.name,
        version_text: dl.version_text,
        filename,
    };
    let origins = state.cargo_download_origins(&dl_origin)?;
    gate::artifact(
        state,
        ctx,
        policy,
        &req,
        record,
        &origins,
        OnRefusal::Refuse,
    )
    .await
}
