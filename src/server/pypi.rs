//! PyPI under `/pypi/`: filtered project pages and gated files.
//!
//! pip, uv and poetry use `http://HOST/pypi/simple/` as their index. Project pages are
//! answered in the format the client negotiated (PEP 691 JSON or PEP 503 HTML) with refused
//! releases removed (or, with `server.refused-versions = "yank"`, yanked with depfw's reason)
//! and file URLs pointing at `/pypi/files/<upstream path>`; those files (and their PEP 658
//! `.metadata`) pass the artifact gate, so a hash-pinned requirement, a lockfile or a direct
//! file URL is refused too. Pages and files run the generic [`super::pipeline`]; PyPI's own
//! quirks live here ([`PypiQuirk`]): a file names its project only ambiguously (each candidate project is
//! tried), the `.metadata` file is its own artifact, in yank mode the `.metadata` of a
//! yanked (refused) release is served ([`OnRefusal::ServeYankedMetadata`]), so pip and uv
//! resolve an `==` pin far enough to print the yank reason before the gate refuses the
//! wheel, and uv `HEAD`s every wheel, which is answered by the policy alone, without
//! downloading.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::delivery::Delivery;
use super::error::ProxyError;
use super::mount::{Call, Quirks};
use super::pipeline::{Gate, Served, Wanted};
use super::verdicts::OnRefusal;
use crate::config::RefusedVersions;
use crate::registry::pypi::{self as proto, FileKind, Project, Pypi, PypiQuirk};
use crate::registry::{ArtifactRecord, ArtifactRequest, VersionRecord};

impl Quirks<Pypi> for PypiQuirk {
    async fn serve(self, pypi: &Served<Pypi>, call: &Call<'_>) -> Result<Response, ProxyError> {
        if call.method != axum::http::Method::GET && !call.is_head() {
            return Err(call.not_served());
        }
        match self {
            PypiQuirk::File(file) => file_request(pypi, call, &file).await,
            // Under the public base's own path, an agent's `/a/<token>` included: a client
            // that follows the redirect stays on the mount it was configured with.
            PypiQuirk::Redirect { location } => {
                let prefix = url::Url::parse(&call.ctx.public_base)
                    .map(|u| u.path().trim_end_matches('/').to_owned())
                    .unwrap_or_default();
                Ok((
                    StatusCode::MOVED_PERMANENTLY,
                    [(header::LOCATION, format!("{prefix}/pypi{location}"))],
                )
                    .into_response())
            }
            PypiQuirk::ProjectList => Err(ProxyError::NotFound(
                "depfw does not list every project; ask for /pypi/simple/<name>/".to_owned(),
            )),
        }
    }
}

/// `/files/<upstream path>` (or its `.metadata`): finds the release on the page of one of
/// the projects the file name can belong to, then hands it to the artifact gate.
async fn file_request(
    pypi: &Served<Pypi>,
    call: &Call<'_>,
    upstream_path: &str,
) -> Result<Response, ProxyError> {
    let state = call.state;
    let head = call.is_head();
    let gate = Gate::new(state, call.ctx)?;
    // The file name's candidate projects; each is looked for on its own index's page,
    // with the path read against that index's files base.
    let candidates = proto::parse_file_path(upstream_path, pypi.protocol.files())?;
    for name in candidates.projects() {
        let files = pypi.protocol.files_for(&name);
        let request = proto::parse_file_path(upstream_path, files)?;
        let on_refusal = match (request.kind, state.refused_versions()) {
            (FileKind::CoreMetadata, RefusedVersions::Yank) => OnRefusal::ServeYankedMetadata,
            _ => OnRefusal::Refuse,
        };
        let origins = [files];
        let how = Delivery {
            metadata_url: None,
            origins: &origins,
            on_refusal,
            head,
        };
        let pick = |_: &Pypi, project: &Project| {
            let Project { page, records, .. } = project;
            let Ok(resolved) = page.resolve_file_in(records, &request) else {
                return Ok(None);
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
                name: name.clone(),
                version_text: resolved.version_text,
                filename,
            };
            Ok(Some(Wanted { req, record }))
        };
        if let Some(resp) = gate.artifact(pypi, &name, how, pick).await? {
            return Ok(resp);
        }
    }
    Err(ProxyError::NotFound(format!(
        "{} is not listed on its project's page upstream",
        candidates.filename
    )))
}
