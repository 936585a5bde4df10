//! Registry protocols spoken by `depfw serve`: one module per ecosystem, each behind the
//! [`Protocol`] trait.
//!
//! Protocol code holds no policy and does no I/O. Each module knows how its registry's
//! metadata looks, how to list the versions in it (with what the checks need,
//! [`VersionRecord`]), how to write it back with some versions removed and URLs pointing at
//! depfw, and how to map a client path back to a package and version. The proxy
//! (`crate::server::pipeline`) fetches, caches, evaluates and records, once for every
//! protocol; it decides which versions stay.
//!
//! A new ecosystem is one module here with a [`Protocol`] impl (and its in-module tests),
//! plus one line in the server's protocol list (`protocols!` in `crate::server`); see
//! ARCHITECTURE.md for the recipe.

pub mod cargo;
pub(crate) mod heap;
pub(crate) mod npm;
pub mod pypi;
pub(crate) mod rope;

use std::collections::HashSet;
use std::fmt::Debug;

use bytes::Bytes;
use url::Url;

use crate::config::UpstreamConfig;
use crate::package::{Ecosystem, PackageName, Version};
use crate::policy::VersionMetadata;

/// The response header naming the request's decision records: set by the proxy on every
/// answer, and how `depfw audit --online` tells depfw from the registry it fronts.
pub const REQUEST_ID_HEADER: &str = "x-depfw-request-id";

/// One registry protocol, pure: no I/O, no policy. The server's pipeline drives it:
/// [`Protocol::route`] a client path, fetch [`Protocol::metadata_url`], [`Protocol::parse`]
/// the body once per upstream body (cached as [`Protocol::Doc`]), evaluate each of
/// [`Protocol::versions`], and [`Protocol::render`] the document with what policy kept.
///
/// Metadata and artifact requests ([`Route::Metadata`], [`Route::Artifact`]) need nothing
/// else from the server; what only this registry has is a [`Route::Quirk`], answered by
/// the server's handler for [`Protocol::Quirk`] (none, for a protocol whose quirk type is
/// [`std::convert::Infallible`]).
pub(crate) trait Protocol: Send + Sync + Sized + 'static {
    const ECOSYSTEM: Ecosystem;
    /// Where `depfw serve` mounts the protocol: `/{MOUNT}/…`, and `/a/<token>/{MOUNT}/…`.
    const MOUNT: &'static str;
    /// The parsed upstream metadata (packument, project page, index file), shared by every
    /// request for the same upstream body.
    type Doc: Send + Sync + 'static;
    /// What only this protocol serves (npm version manifests, PyPI files, cargo's
    /// `config.json`): handed to the server's handler for it.
    type Quirk: Send;
    /// What the rendered document depends on in the request besides the versions kept
    /// (npm: full or abbreviated; PyPI: JSON or HTML); part of the render cache key.
    type Form: Debug;
    /// The `Accept` header sent upstream for metadata.
    const UPSTREAM_ACCEPT: &'static str;
    /// Whether rendered documents carry URLs under the public base, which differs per
    /// agent named in the path (`/a/<token>`) and per mount: then each gets its own rendering.
    const URLS: bool;
    /// Whether error bodies are plain text (cargo prints them verbatim) rather than JSON.
    const PLAIN_TEXT_ERRORS: bool = false;
    /// The response header of a metadata document that lists the versions depfw hid and
    /// why, for a client that prints such a header on a successful response (npm prints
    /// `npm-notice` as `npm notice …`); `None` where no client of the protocol shows one.
    const NOTICE_HEADER: Option<&'static str> = None;

    /// The protocol in front of the upstream its `[upstream.<ecosystem>]` table names.
    fn from_config(upstream: &UpstreamConfig) -> Self;
    /// The URL a client is configured with, under `public_base` (npm `…/npm/`, cargo
    /// `sparse+…/cargo/index/`); the not-found page lists them.
    fn client_url(&self, public_base: &str) -> String;
    /// Maps a client path: what follows `/{MOUNT}`, starting with `/`, still
    /// percent-encoded.
    fn route(&self, path: &str) -> Result<Route<Self::Quirk>, ProtocolError>;
    /// Where upstream serves `name`'s metadata.
    fn metadata_url(&self, name: &PackageName) -> Result<Url, ProtocolError>;
    /// The upstream hosts a [`Route::Artifact`]'s URL for `name` must be on: those of the
    /// upstream `name` is routed to (a private one's, for a private name, so that a public
    /// document cannot send depfw, with its credentials, to a private registry's files).
    fn artifact_origins(&self, name: &PackageName) -> Vec<&Url>;
    /// Parses an upstream metadata body. A document may keep `body` (a shared buffer, not a
    /// copy) rather than a tree built from it.
    fn parse(&self, name: &PackageName, body: &Bytes) -> Result<Self::Doc, ProtocolError>;
    /// The heap bytes `doc` holds (a body it keeps included), computed while parsing; what
    /// it weighs in the parse cache (`upstream.parse-cache-bytes`).
    fn footprint(&self, doc: &Self::Doc) -> usize;
    /// Every version the document lists, in document order.
    fn versions<'d>(&self, doc: &'d Self::Doc) -> &'d [VersionRecord];
    /// `version`'s record with its artifacts, for a download: a protocol may leave them out
    /// of [`Protocol::versions`] (npm reads a tarball's URL and digest from the manifest
    /// only when it is asked for, [`npm::Packument::record`]).
    fn record(&self, _name: &PackageName, doc: &Self::Doc, version: &str) -> Option<VersionRecord> {
        self.versions(doc)
            .iter()
            .find(|r| r.version_text == version)
            .cloned()
    }
    /// The same, to complete: the pipeline hangs what it gathered for the release signals
    /// on each version ([`crate::policy::signals::Gathered`]). Empty for a protocol whose
    /// metadata names no dependencies nor publishers.
    fn versions_mut<'d>(&self, _doc: &'d mut Self::Doc) -> &'d mut [VersionRecord] {
        &mut []
    }
    /// Where to ask for the publish times `doc` leaves out (a PyPI HTML page, an index line
    /// without `pubtime`), or `None` when none is missing or the protocol has nowhere to ask
    /// that the operator trusts. The pipeline fetches it like any metadata (bounded, cached)
    /// and hands it to [`Protocol::supplement`]; without it such versions get
    /// `publish-time-unknown`.
    fn supplement_url(&self, _name: &PackageName, _doc: &Self::Doc) -> Option<Url> {
        None
    }
    /// Fills what `doc` left unknown from the body at [`Protocol::supplement_url`]; what the
    /// supplement does not say stays unknown, and what `doc` says stays as it is.
    fn supplement(&self, _doc: &mut Self::Doc, _body: &[u8]) -> Result<(), ProtocolError> {
        Ok(())
    }
    /// The form a client asked for, from its `Accept` header and query string.
    fn form(&self, accept: Option<&str>, query: Option<&str>) -> Self::Form;
    /// The document as the client gets it: versions as [`RenderCx`] says, URLs under its
    /// public base.
    fn render(
        &self,
        name: &PackageName,
        doc: &Self::Doc,
        form: &Self::Form,
        cx: &RenderCx<'_>,
    ) -> Result<Document, ProtocolError>;
}

/// Whether a version lacks the publish time its metadata should have carried.
/// The earliest publish time a document gives: its package's first release (the release
/// signals' look-ups and the proxy's name gate read it).
pub(crate) fn first_published(records: &[VersionRecord]) -> Option<chrono::DateTime<chrono::Utc>> {
    records
        .iter()
        .flat_map(|r| [r.metadata.published, r.metadata.package_created])
        .flatten()
        .min()
}

pub(crate) fn lacks_publish_time(record: &VersionRecord) -> bool {
    record.metadata.publish_time_expected && record.metadata.published.is_none()
}

/// What a client path asks for, in terms every protocol shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route<Q> {
    /// A package's metadata document, filtered by policy.
    Metadata(PackageName),
    /// A file of a version that the package's metadata lists, named by version and file name.
    Artifact(ArtifactRequest),
    /// Something only this protocol has ([`Protocol::Quirk`]).
    Quirk(Q),
    /// A path depfw does not serve (404, naming it).
    NotServed,
}

/// What a rendering reads besides the document: the policy's choice per version and the
/// base for URLs.
pub(crate) struct RenderCx<'a> {
    /// `server.public-url`, plus `/a/<token>` for an agent named in the path or `/auth`
    /// under that mount, without a trailing `/`.
    pub public_base: &'a str,
    /// The versions served as upstream describes them.
    pub kept: &'a Kept,
    /// Every version's [`Disposition`] (`server.refused-versions`).
    pub show: &'a dyn Fn(&str) -> Disposition,
}

/// A rendered metadata document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Document {
    pub content_type: &'static str,
    pub body: rope::Rope,
}

/// An artifact's published digest, checked against the bytes depfw streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Digest {
    /// npm `dist.integrity` (`sha512-<base64>`).
    Sha512(Vec<u8>),
    /// PyPI `#sha256=`, crates.io `cksum`.
    Sha256(Vec<u8>),
    /// npm `dist.shasum`, for the oldest packages that have no `integrity`.
    Sha1(Vec<u8>),
}

impl Digest {
    /// The algorithm name as it appears in SRI strings and decision records.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Digest::Sha512(_) => "sha512",
            Digest::Sha256(_) => "sha256",
            Digest::Sha1(_) => "sha1",
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Digest::Sha512(b) | Digest::Sha256(b) | Digest::Sha1(b) => b,
        }
    }

    pub fn hex(&self) -> String {
        hex::encode(self.bytes())
    }

    /// A stable file-name-safe key (`sha512-<hex>`), used to address the artifact cache.
    pub(crate) fn cache_key(&self) -> String {
        format!("{}-{}", self.algorithm(), self.hex())
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.algorithm(), self.hex())
    }
}

/// The versions a rendered document keeps, by [`VersionRecord::version_text`].
pub(crate) type Kept = HashSet<String>;

/// What a rendered document does with one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Served as upstream describes it.
    Keep,
    /// Left out: its index line, its files and its `versions` entry.
    Remove,
    /// Listed, but marked yanked with this reason (cargo `"yanked": true`, which has no
    /// reason field; PyPI PEP 592 `yanked`; npm, which has no yank, `deprecated`), so
    /// resolvers skip it for new resolutions while exact pins and lockfiles still reach the
    /// artifact gate and its refusal.
    Yank(String),
}

/// A client's artifact download, mapped back to what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArtifactRequest {
    pub name: PackageName,
    /// The version as spelled in the path; looked up in [`VersionRecord::version_text`].
    pub version_text: String,
    /// The requested file name; must equal one of the version's [`ArtifactRecord::filename`]s.
    pub filename: String,
}

/// One downloadable file of a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRecord {
    /// The file name as the registry names it (`is-number-7.0.0.tgz`,
    /// `idna-3.9-py3-none-any.whl`, `itoa-1.0.11.crate`).
    pub filename: String,
    /// Where upstream serves it.
    pub upstream_url: String,
    pub digest: Option<Digest>,
}

/// One version as a registry's metadata describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRecord {
    /// The version exactly as the registry spells it; the key for keeping or removing it.
    pub version_text: String,
    /// Parsed; `None` if the ecosystem's parser rejects it (the proxy then fails closed).
    pub version: Option<Version>,
    pub metadata: VersionMetadata,
    pub artifacts: Vec<ArtifactRecord>,
}

impl VersionRecord {
    /// The version's artifact with this file name.
    pub fn artifact(&self, filename: &str) -> Option<&ArtifactRecord> {
        self.artifacts.iter().find(|a| a.filename == filename)
    }
}

/// A protocol-level failure: the upstream sent something unusable, or the client asked
/// for something that is not a valid path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("invalid request path: {0}")]
    BadPath(String),
    #[error("upstream sent invalid metadata: {0}")]
    BadUpstream(String),
}

/// The version records of a full npm packument as the proxy reads them (release history
/// included, tarballs left out), for tools outside the crate: `benches/signals_replay.rs` replays the release
/// signals over live packuments with it.
#[doc(hidden)]
pub fn npm_version_records(
    name: &PackageName,
    body: &[u8],
) -> Result<Vec<VersionRecord>, ProtocolError> {
    npm::parse_packument(name, body).map(|p| p.records)
}
