//! The npm registry under `/npm/`: filtered packuments, version manifests cut from them,
//! and gated tarballs. Packuments and tarballs run the generic [`super::pipeline`] (through
//! [`super::mount`]); what is npm's own lives here ([`NpmQuirk`]): version manifests and
//! dist-tags, the signing keys passed through, `ping`, and the audit `POST`.
//!
//! Routing happens on the raw (still percent-encoded) path, because scoped names arrive
//! as `@scope%2fname` and axum's router would see that as one opaque segment anyway.

use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ProxyError;
use super::mount::{Call, Quirks};
use super::pipeline::{Gate, Served};
use super::{AppState, RequestCtx};
use crate::package::PackageName;
use crate::registry::npm::{Npm, NpmQuirk, Packument, VersionSpec, JSON};

impl Quirks<Npm> for NpmQuirk {
    async fn serve(self, npm: &Served<Npm>, call: &Call<'_>) -> Result<Response, ProxyError> {
        match self {
            // `POST`: npm's audit endpoints get an error that `npm audit` shows, never an
            // empty answer: `{}` made `npm audit` print "found 0 vulnerabilities" for every
            // project, a false all-clear from a firewall (and depfw's bundled npm data is
            // known-malicious packages, not vulnerability advisories). The error says what
            // to run instead.
            NpmQuirk::Audit if call.method == Method::POST => {
                Err(ProxyError::NotImplemented(NPM_AUDIT_UNANSWERED.to_owned()))
            }
            _ if call.method != Method::GET && !call.is_head() => Err(call.not_served()),
            NpmQuirk::Audit => Err(call.not_served()),
            NpmQuirk::Search => Err(ProxyError::NotImplemented(NPM_SEARCH_UNANSWERED.to_owned())),
            NpmQuirk::Version(name, spec) => {
                version(call.state, call.ctx, npm, &name, &spec, call.headers).await
            }
            NpmQuirk::Ping => {
                Ok((StatusCode::OK, [(header::CONTENT_TYPE, JSON)], "{}").into_response())
            }
            // Passed through: `npm audit signatures` verifies `dist.signatures` (which
            // tarball rewriting leaves valid) against the upstream registry's keys.
            NpmQuirk::Keys => {
                let url = npm.protocol.keys_url();
                let body = match call.state.inner.upstream.metadata(&url, JSON).await? {
                    Some(f) => f.body,
                    None => bytes::Bytes::from_static(br#"{"keys":[]}"#),
                };
                Ok((StatusCode::OK, [(header::CONTENT_TYPE, JSON)], body).into_response())
            }
        }
    }
}

/// Why `npm search` through depfw fails: its results would list packages and versions the
/// policy refuses, unfiltered, as if depfw offered them.
pub(crate) const NPM_SEARCH_UNANSWERED: &str =
    "depfw does not proxy npm search, whose results would include packages its policy \
     refuses; search on https://www.npmjs.com and install through depfw, which checks what \
     you pick";

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
    npm: &Served<Npm>,
    name: &PackageName,
    spec: &VersionSpec,
    headers: &HeaderMap,
) -> Result<Response, ProxyError> {
    let gate = Gate::new(state, ctx)?;
    gate.check_name(name)?;
    let up = gate.fetch_listed(npm, name).await?;
    let packument = gate.parse(npm, name, &up).await?;
    gate.check_name_with(npm, name, &packument)?;
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
