//! PyPI's simple repository API, as `depfw serve` speaks it at `/pypi/simple/`.
//!
//! Point pip (`--index-url http://HOST/pypi/simple/`), uv or poetry at depfw and every
//! project page they read passes through here: the upstream page (PEP 691 JSON or PEP 503
//! HTML) is parsed into a [`ProjectPage`], its releases become
//! [`crate::registry::VersionRecord`]s for the policy, and the page is written back with the
//! refused releases removed and file URLs pointing at depfw's `/pypi/files/`. File requests
//! are mapped back to upstream and to the release they belong to, so a denied version is
//! also refused when a lockfile asks for the file directly. Pure functions: no I/O, no policy.
//!
//! Per request kind (paths relative to the `/pypi` mount):
//! - `/simple/…`: [`parse_simple_path`] → index, project, or 301 redirect.
//! - project page: [`upstream_project_url`], then [`parse_project_page`] on the upstream
//!   body, [`ProjectPage::records`] for the policy, [`negotiate`] on the client's `Accept`
//!   and query, and [`ProjectPage::render`].
//! - `/files/<upstream path>`: [`parse_file_path`], then the project page of a
//!   [`FileRequest::projects`] name, and [`ProjectPage::resolve_file`] for the release to
//!   evaluate and the digest to check (refuse the file when it fails).
//!
//! The JSON API (`/pypi/{project}/{version}/json`, not proxied) is read by `depfw audit
//! --online` for licenses: [`parse_release_json`], [`merge_release`].

mod filename;
mod json_api;
mod page;
mod parse;
mod paths;
mod protocol;
mod render;

pub use filename::{DistFilename, DistKind, NameVersion};
pub(crate) use json_api::{fill_publish_times, parse_project_times};
pub use json_api::{merge_release, parse_release_json, ReleaseInfo};
pub use page::{Hashes, PageFile, ProjectPage, ResolvedFile};
pub use parse::{parse_html, parse_json, parse_project_page, JSON_CONTENT_TYPE};
pub use paths::{
    parse_file_path, parse_simple_path, upstream_project_url, FileKind, FileRequest, SimpleRequest,
};
pub use protocol::{Project, Pypi, PypiQuirk, UPSTREAM_ACCEPT};
pub use render::{negotiate, PageFormat, RenderedPage, Rewrite};
