//! Request paths under `/pypi/`: project pages and proxied files.
//!
//! File paths carry an upstream path verbatim, so they are the place a hostile client could
//! try to steer depfw at another host or outside the files base; everything that could
//! change the meaning of the joined URL is refused here.

use percent_encoding::percent_decode_str;
use url::Url;

use super::filename::DistFilename;
use crate::package::{pep503_normalize, Ecosystem, PackageName};
use crate::registry::ProtocolError;

/// PEP 658: the core metadata of `<file>` is served at `<file>.metadata`.
const METADATA_SUFFIX: &str = ".metadata";

/// What a `/simple/...` path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimpleRequest {
    /// `/simple/`: the list of all projects.
    Index,
    /// `/simple/{name}/` with `name` already PEP 503-normalised.
    Project(PackageName),
    /// Another spelling of a project: answer 301 with `Location: <location>` (relative to
    /// the proxy's `/pypi` mount, e.g. `/simple/django/`).
    Redirect { location: String },
}

/// Parses the path after the `/pypi` mount (`/simple/Django/`, `/simple/idna/`).
pub fn parse_simple_path(path: &str) -> Result<SimpleRequest, ProtocolError> {
    let bad = |why: &str| ProtocolError::BadPath(format!("`{path}`: {why}"));
    let rest = path
        .strip_prefix("/simple/")
        .ok_or_else(|| bad("not under /simple/"))?;
    if rest.is_empty() {
        return Ok(SimpleRequest::Index);
    }
    let raw = rest.strip_suffix('/').unwrap_or(rest);
    let name = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| bad("name is not UTF-8"))?;
    let name = PackageName::parse(Ecosystem::PyPI, &name).map_err(|e| bad(&e.to_string()))?;
    // PEP 503 asks clients for the normalised form; serve it at exactly one URL.
    if raw == name.key() && rest.ends_with('/') {
        Ok(SimpleRequest::Project(name))
    } else {
        Ok(SimpleRequest::Redirect {
            location: format!("/simple/{}/", name.key()),
        })
    }
}

/// The upstream URL of a project page: `<simple base>/<normalised name>/`.
pub fn upstream_project_url(
    simple_base: &Url,
    project: &PackageName,
) -> Result<Url, ProtocolError> {
    with_trailing_slash(simple_base)
        .join(&format!("{}/", pep503_normalize(project.as_str())))
        .map_err(|e| ProtocolError::BadPath(e.to_string()))
}

/// Whether a file request is for the file or its PEP 658 metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Distribution,
    CoreMetadata,
}

/// A `/files/<upstream path>` request, mapped back to upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRequest {
    /// Where to fetch it: the files base joined with the upstream path.
    pub upstream_url: Url,
    /// The distribution's file name (without `.metadata` for metadata requests); look it
    /// up in the project page with [`super::ProjectPage::file`].
    pub filename: String,
    pub kind: FileKind,
    /// The name/version readings of `filename`; the proxy fetches the project page of a
    /// candidate name to learn the version's metadata and the expected digest.
    pub dist: DistFilename,
}

impl FileRequest {
    /// The projects this file may belong to (one for wheels and eggs, deduplicated by
    /// PEP 503 key), in the order to try their pages.
    pub fn projects(&self) -> Vec<PackageName> {
        let mut names: Vec<PackageName> = Vec::new();
        for c in self.dist.candidates() {
            if let Ok(name) = PackageName::parse(Ecosystem::PyPI, &c.name) {
                if !names.iter().any(|n| n.key() == name.key()) {
                    names.push(name);
                }
            }
        }
        names
    }
}

/// Parses the path after `/pypi/files/` (still percent-encoded, no query) against the
/// configured upstream files base (`https://files.pythonhosted.org/`).
pub fn parse_file_path(
    upstream_path: &str,
    files_base: &Url,
) -> Result<FileRequest, ProtocolError> {
    let bad = |why: &str| ProtocolError::BadPath(format!("file path: {why}"));
    if upstream_path.is_empty() || upstream_path.starts_with('/') {
        return Err(bad("empty or absolute"));
    }
    if upstream_path.contains(['?', '#', '\\']) || upstream_path.chars().any(|c| c.is_control()) {
        return Err(bad("query, fragment, backslash or control character"));
    }
    let mut filename = "";
    for segment in upstream_path.split('/') {
        let decoded = percent_decode_str(segment)
            .decode_utf8()
            .map_err(|_| bad("segment is not UTF-8"))?;
        if decoded.is_empty() || decoded == "." || decoded == ".." {
            return Err(bad("empty, `.` or `..` segment"));
        }
        // An encoded `/` or `\` would re-split after decoding upstream.
        if decoded.contains(['/', '\\', ':']) || decoded.chars().any(char::is_control) {
            return Err(bad("encoded separator, colon or control character"));
        }
        filename = segment;
    }
    let filename = percent_decode_str(filename)
        .decode_utf8()
        .map_err(|_| bad("file name is not UTF-8"))?
        .into_owned();
    let base = with_trailing_slash(files_base);
    let upstream_url =
        Url::parse(&format!("{base}{upstream_path}")).map_err(|e| bad(&e.to_string()))?;
    if !upstream_url.as_str().starts_with(base.as_str()) {
        return Err(bad("escapes the files base"));
    }
    let (filename, kind) = match filename.strip_suffix(METADATA_SUFFIX) {
        Some(dist) => (dist.to_owned(), FileKind::CoreMetadata),
        None => (filename, FileKind::Distribution),
    };
    let dist = DistFilename::parse(&filename)?;
    Ok(FileRequest {
        upstream_url,
        filename,
        kind,
        dist,
    })
}

/// The path below the files base of an upstream file URL, or `None` if the file is not
/// under it (such a file cannot be proxied and is left out of rewritten pages).
pub(crate) fn path_below(files_base: &Url, file_url: &Url) -> Option<String> {
    if file_url.query().is_some() {
        return None;
    }
    let mut without_fragment = file_url.clone();
    without_fragment.set_fragment(None);
    let base = with_trailing_slash(files_base);
    let rest = without_fragment.as_str().strip_prefix(base.as_str())?;
    (!rest.is_empty()).then(|| rest.to_owned())
}

fn with_trailing_slash(base: &Url) -> Url {
    let mut base = base.clone();
    base.set_query(None);
    base.set_fragment(None);
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base
}
