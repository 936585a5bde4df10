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
//! Index files and downloads run the generic [`super::pipeline`]; cargo's own quirks live
//! here: `config.json` (depfw's, and upstream's, which says where downloads live), the
//! checksum in the download path, and plain-text error bodies.
//!
//! Publish times come from the index's `pubtime`, which crates.io carries for every version
//! (checked on 2026-11-21 against cargo's cached index files: serde, syn, cc, … each line has
//! one). TODO: for third-party registries without `pubtime`, fall back to the web API
//! (`registry::cargo::api`, as `depfw audit --online` does); until then those versions get no
//! cooldown or new-package finding.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use url::Url;

use super::delivery::Delivery;
use super::error::{ProxyError, UpstreamFault};
use super::pipeline::{Gate, Wanted};
use super::verdicts::OnRefusal;
use super::{AppState, RequestCtx};
use crate::registry::cargo::{self as proto, CargoPath, IndexRequest, UpstreamConfig};
use crate::registry::{ArtifactRequest, Digest, Protocol};

pub(crate) async fn get(
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
    let cargo = &state.inner.protocols.cargo;
    match cargo.protocol.route(path)? {
        CargoPath::Index(IndexRequest::Config) => {
            // The agent's `/a/<token>` prefix stays in `dl`, so downloads are attributed; a
            // token sent in the header must keep coming, on index files and downloads.
            let base = Url::parse(&ctx.public_base)
                .map_err(|e| ProxyError::Internal(anyhow::anyhow!("server.public-url: {e}")))?;
            let auth_required = ctx.token_from == super::agent::TokenFrom::Header;
            let body = proto::render_config(&base, auth_required);
            Ok((
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response())
        }
        CargoPath::Index(IndexRequest::Crate(name)) => {
            let gate = Gate::new(state, ctx)?;
            gate.metadata(cargo, &name, headers, None).await
        }
        CargoPath::Download(path) => download(state, ctx, &path).await,
        CargoPath::Unknown => Err(ProxyError::NotFound(format!(
            "{} is not served by depfw",
            uri.path()
        ))),
    }
}

/// Upstream's `config.json` (cached like any metadata); crates.io's layout if it has none.
async fn upstream_config(state: &AppState) -> Result<UpstreamConfig, ProxyError> {
    let url = state.inner.protocols.cargo.protocol.config_url();
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

/// `dl/{crate}/{version}/{checksum}`: the version's line in the (cached) index file, with
/// its download URL from upstream's `config.json`, must carry the checksum of the path;
/// then the artifact gate.
async fn download(state: &AppState, ctx: &RequestCtx, path: &str) -> Result<Response, ProxyError> {
    let cargo = &state.inner.protocols.cargo;
    let gate = Gate::new(state, ctx)?;
    let dl = proto::parse_download_path(path)?;
    let config = upstream_config(state).await?;
    let dl_origin = Url::parse(&config.dl)
        .map_err(|e| ProxyError::upstream(UpstreamFault::Invalid, &config.dl, e.to_string()))?;
    let name = dl.name.clone();
    let spec = format!("{}@{}", dl.name, dl.version_text);
    let origins = state.cargo_download_origins(&dl_origin)?;
    let how = Delivery {
        origins: &origins,
        on_refusal: OnRefusal::Refuse,
        head: false,
    };
    let pick = |_: &proto::Cargo, index: &proto::Index| {
        let records = index.file.records_with_urls(&config)?;
        let record = records
            .into_iter()
            .find(|r| r.version_text == dl.version_text);
        if let Some(r) = &record {
            // The gate verifies against the index; a path naming other bytes is not ours to
            // serve.
            let listed: Option<&Digest> = r.artifacts.first().and_then(|a| a.digest.as_ref());
            if listed != Some(&dl.checksum) {
                return Err(ProxyError::NotFound(format!(
                    "{spec}: checksum {} is not the one in the index",
                    dl.checksum.hex()
                )));
            }
        }
        let filename = record
            .as_ref()
            .and_then(|r| r.artifacts.first())
            .map(|a| a.filename.clone())
            .unwrap_or_default();
        let req = ArtifactRequest {
            name: dl.name,
            version_text: dl.version_text,
            filename,
        };
        Ok(Some(Wanted { req, record }))
    };
    gate.artifact(cargo, &name, how, pick)
        .await?
        .ok_or_else(|| ProxyError::NotFound(format!("{name} not found upstream")))
}
