//! The npm registry under `/npm/`: filtered packuments, version manifests cut from them,
//! and gated tarballs. Packuments and tarballs run the generic [`super::pipeline`]; what is
//! npm's own lives here: version manifests and dist-tags, the signing keys passed through,
//! `ping`, and the audit `POST`.
//!
//! Routing happens on the raw (still percent-encoded) path, because scoped names arrive
//! as `@scope%2fname` and axum's router would see that as one opaque segment anyway.
//!
//! TODO: HEAD is answered by running GET (axum's default), so a HEAD on a tarball
//! downloads, verifies and records it; npm clients do not HEAD, uv (PyPI) does.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::delivery::Delivery;
use super::error::ProxyError;
use super::pipeline::{Gate, Served};
use super::verdicts::OnRefusal;
use super::{AppState, RequestCtx};
use crate::package::PackageName;
use crate::registry::npm::{Npm, NpmPath, Packument, VersionSpec, JSON};
use crate::registry::Protocol;

/// Strips the `/npm` mount point from the raw path.
fn npm_path(s: &Served<Npm>, uri: &axum::http::Uri) -> Result<NpmPath, ProxyError> {
    let raw = uri.path();
    let rest = raw
        .strip_prefix("/npm")
        .ok_or_else(|| ProxyError::BadRequest("not an npm path".to_owned()))?;
    Ok(s.protocol.route(rest)?)
}

pub(crate) async fn get(
    State(state): State<AppState>,
    ctx: RequestCtx,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, ProxyError> {
    let npm = &state.inner.protocols.npm;
    match npm_path(npm, &uri)? {
        NpmPath::Packument(name) => {
            let gate = Gate::new(&state, &ctx)?;
            gate.metadata(npm, &name, &headers, None).await
        }
        NpmPath::Version(name, spec) => version(&state, &ctx, &name, &spec, &headers).await,
        NpmPath::Tarball(req) => {
            let gate = Gate::new(&state, &ctx)?;
            let origins = [npm.protocol.registry()];
            let how = Delivery {
                origins: &origins,
                on_refusal: OnRefusal::Refuse,
                head: false,
            };
            gate.listed_artifact(npm, req, how).await
        }
        NpmPath::Ping => Ok((StatusCode::OK, [(header::CONTENT_TYPE, JSON)], "{}").into_response()),
        // Passed through: `npm audit signatures` verifies `dist.signatures` (which tarball
        // rewriting leaves valid) against the upstream registry's keys.
        NpmPath::Keys => {
            let url = npm.protocol.keys_url();
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

/// `POST`: npm's audit endpoints get an error that `npm audit` shows, never an empty
/// answer: `{}` made `npm audit` print "found 0 vulnerabilities" for every project, a false
/// all-clear from a firewall (and depfw's bundled npm data is known-malicious packages, not
/// vulnerability advisories). The error says what to run instead.
pub(crate) async fn post(
    State(state): State<AppState>,
    uri: axum::http::Uri,
) -> Result<Response, ProxyError> {
    match npm_path(&state.inner.protocols.npm, &uri)? {
        NpmPath::Audit => Err(ProxyError::NotImplemented(NPM_AUDIT_UNANSWERED.to_owned())),
        _ => Err(ProxyError::NotFound(format!(
            "POST {} is not served by depfw",
            uri.path()
        ))),
    }
}

/// Why `npm audit` through depfw fails, and what to run instead.
pub(crate) const NPM_AUDIT_UNANSWERED: &str =
    "depfw does not answer npm audit, so that it never reports a false \"0 vulnerabilities\": \
     depfw already refused what its policy denies at install; for known vulnerabilities in \
     the lockfile run `depfw audit package-lock.json`, or `npm audit --registry \
     https://registry.npmjs.org/`";

/// One version's manifest (`GET /{name}/{version-or-dist-tag}`, which pnpm 12 and
/// `npm view` read), cut from the same filtered packument clients see, never fetched from
/// upstream separately: a tag resolves through the filtered dist-tags (the packument's
/// cached evaluation, not a new one), and an exact version goes through the same gate as
/// its tarball.
async fn version(
    state: &AppState,
    ctx: &RequestCtx,
    name: &PackageName,
    spec: &VersionSpec,
    headers: &HeaderMap,
) -> Result<Response, ProxyError> {
    let npm = &state.inner.protocols.npm;
    let gate = Gate::new(state, ctx)?;
    gate.check_name(name)?;
    let up = gate.fetch_listed(npm, name).await?;
    let packument = gate.parse(npm, name, &up)?;
    let filtered = gate.evaluated(npm, name, &up, &packument)?;
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
    gate.version_metadata(name, record, up.url.as_str())?;
    let body = packument
        .render_version(name, &version, &ctx.public_base)
        .ok_or_else(|| ProxyError::NotFound(format!("version not found: {version}")))?;
    Ok(gate.uncached(headers, JSON, body))
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
