//! Registry protocols spoken by `depfw serve`: one module per ecosystem.
//!
//! Protocol code holds no policy. Each module knows how its registry's metadata looks,
//! how to list the versions in it (with what the checks need, [`VersionRecord`]), how to
//! write it back with some versions removed and URLs pointing at depfw, and how to map an
//! artifact download path back to a package and version. The proxy (`crate::server`)
//! decides which versions stay.

pub mod cargo;
pub mod npm;
pub mod pypi;

use crate::package::Version;
use crate::policy::VersionMetadata;

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

/// A protocol-level failure: the upstream sent something unusable, or the client asked
/// for something that is not a valid path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("invalid request path: {0}")]
    BadPath(String),
    #[error("upstream sent invalid metadata: {0}")]
    BadUpstream(String),
}
