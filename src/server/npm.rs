//! The npm registry under `/npm/`: filtered packuments, version manifests cut from them,
//! and gated tarballs.
//!
//! Routing happens here on the raw (still percent-encoded) path, because scoped names arrive
//! as `@scope%2fname` and axum's router would see that as one opaque segment anyway.
//!
//! TODO: HEAD is answered by running GET (axum's default), so a HEAD on a tarball
//! downloads, verifies and records it; npm clients do not HEAD, uv (PyPI) does.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use super::error::ProxyError;
use super::gate::{self, OnRefusal};
use super::upstream::Fetched;
use super::{AppState, RequestCtx};
use crate::package::PackageName;
use crate::registry::npm::{self as proto, NpmPath, Packument, VersionSpec};

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
        NpmPath::Version(name, spec) => version(&state, &ctx, &name, &spec, &headers).await,
        NpmPath::Tarball(req) => {
            let policy_state = state.policy()?;
            let policy = gate::ready(&policy_state)?;
            let (packument, _) = fetch_packument(&state, &req.name).await?;
            let record = packument
                .records
                .iter()
                .find(|r| r.version_text == req.version_text);
            let origins = [&state.inner.npm_upstream_url];
            gate::artifact(
                &state,
                &ctx,
                policy,
                &req,
                record,
                &origins,
                OnRefusal::Refuse,
            )
            .await
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

/// The upstream packument as fetched (or cached), not yet parsed.
async fn fetch(state: &AppState, url: &str, name: &PackageName) -> Result<Fetched, ProxyError> {
    // Always the full document: the checks need `time`, `license` and `scripts`.
    state
        .inner
        .upstream
        .metadata(url, JSON)
        .await?
        .ok_or_else(|| ProxyError::NotFound(format!("{name} not found upstream")))
}

/// The parsed packument of `fetched`, parsed once per upstream body.
fn parse(
    state: &AppState,
    url: &str,
    name: &PackageName,
    fetched: &Fetched,
) -> Result<Arc<Packument>, ProxyError> {
    gate::parsed(state, url, fetched, |body| {
        proto::parse_packument(name, body)
    })
}

/// The full packument (parsed), and whether it was just downloaded.
async fn fetch_packument(
    state: &AppState,
    name: &PackageName,
) -> Result<(Arc<Packument>, bool), ProxyError> {
    let url = upstream_url(state, name);
    let fetched = fetch(state, &url, name).await?;
    Ok((parse(state, &url, name, &fetched)?, fetched.fresh))
}

/// A filtered packument. Warm, this is a lookup in the render cache: the rendering of one
/// upstream body under one policy revision is computed once per metadata TTL.
async fn packument(
    state: &AppState,
    ctx: &RequestCtx,
    name: &PackageName,
    headers: &HeaderMap,
) -> Result<Response, ProxyError> {
    let policy_state = state.policy()?;
    let policy = gate::ready(&policy_state)?;
    gate::check_name(state, ctx, policy, name)?;
    let url = upstream_url(state, name);
    let fetched = fetch(state, &url, name).await?;
    let corgi = proto::wants_corgi(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let form = if corgi { "npm-corgi" } else { "npm-full" };
    let variant = gate::render_variant(ctx, form, true);
    gate::cached_metadata(state, policy, &url, &variant, &fetched, headers, || {
        let packument = parse(state, &url, name, &fetched)?;
        let filtered = gate::filter_versions(ctx, policy, name, &packument.records);
        if fetched.fresh {
            gate::record_filtered(state, ctx, name, &filtered, &url)?;
        }
        let body = packument.render(name, &filtered.kept, &ctx.public_base, corgi);
        Ok((if corgi { proto::CORGI } else { JSON }, body))
    })
}

/// One version's manifest (`GET /{name}/{version-or-dist-tag}`, which pnpm 12 and
/// `npm view` read), cut from the same filtered packument clients see, never fetched from
/// upstream separately: a tag resolves through the filtered dist-tags, and an exact
/// version goes through the same gate as its tarball.
async fn version(
    state: &AppState,
    ctx: &RequestCtx,
    name: &PackageName,
    spec: &VersionSpec,
    headers: &HeaderMap,
) -> Result<Response, ProxyError> {
    let policy_state = state.policy()?;
    let policy = gate::ready(&policy_state)?;
    gate::check_name(state, ctx, policy, name)?;
    let url = upstream_url(state, name);
    let fetched = fetch(state, &url, name).await?;
    let packument = parse(state, &url, name, &fetched)?;
    let filtered = gate::filter_versions(ctx, policy, name, &packument.records);
    if fetched.fresh {
        gate::record_filtered(state, ctx, name, &filtered, &url)?;
    }
    let version = match spec {
        VersionSpec::Exact(v) => v.clone(),
        VersionSpec::Tag(tag) => packument
            .dist_tags(&filtered.kept)
            .and_then(|tags| tags.get(tag)?.as_str().map(str::to_owned))
            .ok_or_else(|| tag_not_found(&packument, name, tag))?,
    };
    // Upstream-listed versions only; the registry's own wording for the rest.
    let record = packument
        .records
        .iter()
        .find(|r| r.version_text == version)
        .ok_or_else(|| ProxyError::NotFound(format!("version not found: {version}")))?;
    gate::version_metadata(state, ctx, policy, name, record, &url)?;
    let body = packument
        .render_version(name, &version, &ctx.public_base)
        .ok_or_else(|| ProxyError::NotFound(format!("version not found: {version}")))?;
    Ok(gate::metadata_response(policy, headers, JSON, body))
}

/// The registry answers an unknown tag with a bare "Not Found"; depfw also says when the
/// tag exists upstream but points at a version its policy hides.
fn tag_not_found(packument: &Packument, name: &PackageName, tag: &str) -> ProxyError {
    match packument.upstream_tag(tag) {
        Some(target) => ProxyError::NotFound(format!(
            "Not Found: dist-tag `{tag}` of {name} points at {target}, which policy refuses, \
             and no allowed version replaces it"
        )),
        None => ProxyError::NotFound(format!("Not Found: {name} has no dist-tag `{tag}`")),
    }
}
