//! The npm registry under `/npm/`: filtered packuments and gated tarballs.
//!
//! Routing happens here on the raw (still percent-encoded) path, because scoped names arrive
//! as `@scope%2fname` and axum's router would see that as one opaque segment anyway.
//!
//! TODO: HEAD is answered by running GET (axum's default), so a HEAD on a tarball
//! downloads, verifies and records it; npm clients do not HEAD, uv (PyPI) does.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ProxyError;
use super::gate;
use super::{AppState, RequestCtx};
use crate::package::PackageName;
use crate::registry::npm::{self as proto, NpmPath, Packument};

const JSON: &str = "application/json";

/// Strips the `/npm` mount point from the raw path.
fn npm_path(uri: &axum::http::Uri) -> Result<NpmPath, ProxyError> {
    let raw = uri.path();
    let rest = raw
        .strip_prefix("/npm")
        .ok_or_else(|| ProxyError::BadRequest("not an npm path".to_owned()))?;
    Ok(proto::parse_path(rest)?)
}

pub async fn get(
    State(state): State<AppState>,
    ctx: RequestCtx,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, ProxyError> {
    match npm_path(&uri)? {
        NpmPath::Packument(name) => packument(&state, &ctx, &name, &headers).await,
        NpmPath::Tarball(req) => {
            let policy_state = state.policy()?;
            let policy = gate::ready(&policy_state)?;
            let (packument, _) = fetch_packument(&state, &req.name).await?;
            let record = packument
                .records
                .iter()
                .find(|r| r.version_text == req.version_text);
            let origins = [&state.inner.npm_upstream_url];
            gate::artifact(&state, &ctx, policy, &req, record, &origins).await
        }
        NpmPath::Ping => Ok((StatusCode::OK, [(header::CONTENT_TYPE, JSON)], "{}").into_response()),
        // Passed through: `npm audit signatures` verifies `dist.signatures` (which tarball
        // rewriting leaves valid) against the upstream registry's keys.
        NpmPath::Keys => {
            let url = format!("{}/-/npm/v1/keys", state.inner.npm_upstream);
            let body = match state.inner.upstream.metadata(&url, JSON).await? {
                Some(f) => f.body,
                None => bytes::Bytes::from_static(br#"{"keys":[]}"#),
            };
            Ok((StatusCode::OK, [(header::CONTENT_TYPE, JSON)], body).into_response())
        }
        NpmPath::Audit | NpmPath::Unsupported(_) => Err(ProxyError::NotFound(format!(
            "{} is not served by depfw",
            uri.path()
        ))),
    }
}

/// `POST`: only npm's audit endpoints, answered with "no advisories" — depfw's own policy
/// already ran on every version the client could install.
pub async fn post(uri: axum::http::Uri) -> Result<Response, ProxyError> {
    match npm_path(&uri)? {
        NpmPath::Audit => {
            Ok((StatusCode::OK, [(header::CONTENT_TYPE, JSON)], "{}").into_response())
        }
        _ => Err(ProxyError::NotFound(format!(
            "POST {} is not served by depfw",
            uri.path()
        ))),
    }
}

/// The upstream URL of a packument: scoped names keep their `/` encoded.
fn upstream_url(state: &AppState, name: &PackageName) -> String {
    format!(
        "{}/{}",
        state.inner.npm_upstream,
        name.as_str().replace('/', "%2f")
    )
}

/// The full packument (parsed), and whether it was just downloaded.
async fn fetch_packument(
    state: &AppState,
    name: &PackageName,
) -> Result<(Packument, bool), ProxyError> {
    let url = upstream_url(state, name);
    // Always the full document: the checks need `time`, `license` and `scripts`.
    let fetched = state
        .inner
        .upstream
        .metadata(&url, JSON)
        .await?
        .ok_or_else(|| ProxyError::NotFound(format!("{name} not found upstream")))?;
    let packument = proto::parse_packument(name, &fetched.body).map_err(|e| {
        state.inner.upstream.forget(&url);
        ProxyError::upstream(super::error::UpstreamFault::Invalid, &url, e.to_string())
    })?;
    Ok((packument, fetched.fresh))
}

async fn packument(
    state: &AppState,
    ctx: &RequestCtx,
    name: &PackageName,
    headers: &HeaderMap,
) -> Result<Response, ProxyError> {
    let policy_state = state.policy()?;
    let policy = gate::ready(&policy_state)?;
    gate::check_name(state, ctx, policy, name)?;
    let (packument, fresh) = fetch_packument(state, name).await?;
    let filtered = gate::filter_versions(ctx, policy, name, &packument.records);
    if fresh {
        gate::record_filtered(state, ctx, name, &filtered, &upstream_url(state, name))?;
    }
    let corgi = proto::wants_corgi(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let body = packument.render(name, &filtered.kept, &ctx.public_base, corgi);
    let content_type = if corgi { proto::CORGI } else { JSON };
    Ok(gate::metadata_response(policy, headers, content_type, body))
}
