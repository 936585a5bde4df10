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
//! here ([`CargoQuirk`]): `config.json` (depfw's, and upstream's, which says where downloads
//! live) and the checksum in the download path. Error bodies are plain text
//! (`Protocol::PLAIN_TEXT_ERRORS`).
//!
//! Publish times come from the index's `pubtime`, which crates.io carries for every version
//! (checked on 2026-11-21 against cargo's cached index files: serde, syn, cc, … each line has
//! one). For a third-party registry whose lines have none, `upstream.cargo.api` names its
//! web API, which the pipeline asks (`Protocol::supplement_url`, as `depfw audit --online`
//! does); a version still without a time gets `publish-time-unknown` (default quarantine),
//! never a silent pass.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use url::Url;

use super::delivery::Delivery;
use super::error::{ProxyError, UpstreamFault};
use super::mount::{Call, Quirks};
use super::pipeline::{Gate, Served, Wanted};
use super::verdicts::OnRefusal;
use super::{AppState, RequestCtx};
use crate::package::PackageName;
use crate::registry::cargo::{self as proto, Cargo, CargoQuirk, UpstreamConfig};
use crate::registry::{ArtifactRequest, Digest};

impl Quirks<Cargo> for CargoQuirk {
    async fn serve(self, cargo: &Served<Cargo>, call: &Call<'_>) -> Result<Response, ProxyError> {
        if call.method != Method::GET && !call.is_head() {
            return Err(call.not_served());
        }
        match self {
            CargoQuirk::Config => {
                // The agent's `/a/<token>` prefix stays in `dl`, so downloads are attributed;
                // a token sent in the header must keep coming, on index files and downloads.
                let base = Url::parse(&call.ctx.public_base)
                    .map_err(|e| ProxyError::Internal(anyhow::anyhow!("server.public-url: {e}")))?;
                let auth_required = call.ctx.token_from == super::agent::TokenFrom::Header;
                let body = proto::render_config(&base, auth_required);
                Ok((
                    StatusCode::OK,
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response())
            }
            CargoQuirk::Download(path) => download(call.state, call.ctx, cargo, &path).await,
        }
    }
}

/// The `config.json` of the index `name` comes from (cached like any metadata); crates.io's
/// layout if the main index has none. A private registry without one is an error: its
/// crates are on no public host.
async fn upstream_config(
    state: &AppState,
    cargo: &Served<Cargo>,
    name: &PackageName,
) -> Result<UpstreamConfig, ProxyError> {
    let url = cargo.protocol.config_url(name);
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
        None if cargo.protocol.private_for(name).is_some() => Err(ProxyError::upstream(
            UpstreamFault::Invalid,
            &url,
            "the private registry has no config.json, so where its crates download from is \
             unknown",
        )),
        None => Ok(UpstreamConfig::default()),
    }
}

/// `dl/{crate}/{version}/{checksum}`: the version's line in the (cached) index file, with
/// its download URL from upstream's `config.json`, must carry the checksum of the path;
/// then the artifact gate.
async fn download(
    state: &AppState,
    ctx: &RequestCtx,
    cargo: &Served<Cargo>,
    path: &str,
) -> Result<Response, ProxyError> {
    let gate = Gate::new(state, ctx)?;
    let dl = proto::parse_download_path(path)?;
    let config = upstream_config(state, cargo, &dl.name).await?;
    let dl_origin = Url::parse(&config.dl)
        .map_err(|e| ProxyError::upstream(UpstreamFault::Invalid, &config.dl, e.to_string()))?;
    let name = dl.name.clone();
    let spec = format!("{}@{}", dl.name, dl.version_text);
    let origins = download_origins(state, cargo, &dl.name, &dl_origin)?;
    let how = Delivery {
        metadata_url: None,
        origins: &origins,
        on_refusal: OnRefusal::Refuse,
        head: false,
    };
    let pick = |_: &Cargo, index: &proto::Index| {
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

/// The origins `name`'s download may come from: the index's own and
/// `server.cargo-download-origins`, or for a private crate its registry's index and
/// `downloads` hosts alone (not crates.io's, and no private host for a public crate). `dl`
/// is where that index's `config.json` sends downloads; anywhere else is refused, however
/// the upstream names it.
fn download_origins<'a>(
    state: &'a AppState,
    cargo: &'a Served<Cargo>,
    name: &PackageName,
    dl: &Url,
) -> Result<Vec<&'a Url>, ProxyError> {
    let (origins, allowed): (Vec<&Url>, _) = match cargo.protocol.private_for(name) {
        Some(private) => (
            private.download_origins().collect(),
            "the private registry's host nor its table's `downloads`",
        ),
        None => (
            std::iter::once(cargo.protocol.index())
                .chain(&state.inner.cargo_download_origins)
                .collect(),
            "the index's host nor listed in `server.cargo-download-origins`",
        ),
    };
    if origins.iter().any(|o| o.origin() == dl.origin()) {
        return Ok(origins);
    }
    Err(ProxyError::upstream(
        UpstreamFault::Invalid,
        dl.as_str(),
        format!(
            "the cargo index's config.json sends downloads to {}, which is neither {allowed}: \
             refused",
            dl.origin().ascii_serialization()
        ),
    ))
}
