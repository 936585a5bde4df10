//! Registry protocols spoken by `depfw serve`: one module per ecosystem.
//!
//! Protocol code holds no policy. Each module knows how its registry's metadata looks,
//! how to list the versions in it (with what the checks need, [`VersionRecord`]), how to
//! write it back with some versions removed and URLs pointing at depfw, and how to map an
//! artifact download path back to a package and version. The proxy (`crate::server`)
//! decides which versions stay.
//!
//! How a protocol plugs into the proxy (see `crate::server` for the npm example):
//! 1. a pure parser `fn parse_…(name, upstream_body) -> Result<(Doc, Vec<VersionRecord>), ProtocolError>`;
//! 2. a pure renderer that takes the set of versions to keep ([`Kept`]) and the public
//!    base URL and returns the client body; cargo and PyPI renderers also take a
//!    [`Disposition`] per version, so a refused version can stay listed but yanked;
//! 3. a pure path parser that maps a client path to a package ([`PathError`] → HTTP 400)
//!    and an artifact path to an [`ArtifactRequest`].
//!
//! The proxy core does fetching, caching, policy evaluation, the artifact gate (digest
//! verification, cache, decision records) and HTTP semantics for every protocol alike.

pub mod cargo;
pub mod npm;
pub mod pypi;

use std::collections::HashSet;

use crate::package::{PackageName, Version};
use crate::policy::VersionMetadata;

/// The response header naming the request's decision records: set by the proxy on every
/// answer, and how `depfw audit --online` tells depfw from the registry it fronts.
pub const REQUEST_ID_HEADER: &str = "x-depfw-request-id";

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
    pub fn cache_key(&self) -> String {
        format!("{}-{}", self.algorithm(), self.hex())
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.algorithm(), self.hex())
    }
}

/// The versions a rendered document keeps, by [`VersionRecord::version_text`].
pub type Kept = HashSet<String>;

/// What a rendered document does with one version. npm has no yank, so its renderer
/// only keeps or removes ([`Kept`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Served as upstream describes it.
    Keep,
    /// Left out: its index line, its files and its `versions` entry.
    Remove,
    /// Listed, but marked yanked with this reason (cargo `"yanked": true`, which has no
    /// reason field; PyPI PEP 592 `yanked`), so resolvers skip it for new resolutions while
    /// lockfiles still reach the artifact gate and its refusal.
    Yank(String),
}

/// A client's artifact download, mapped back to what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRequest {
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
