//! The crates.io sparse index (RFC 2789), as `depfw serve` speaks it at `/cargo/index/`.
//!
//! Point cargo at depfw with `[source.depfw] registry = "sparse+http://HOST/cargo/index/"`
//! and every index file it reads passes through here: each line becomes a
//! [`crate::registry::VersionRecord`] for the policy, refused versions' lines are dropped
//! or marked yanked (the others are kept byte-for-byte, so checksums and field order
//! survive), and
//! `config.json` sends downloads to depfw's `/cargo/dl/`, where the path names the crate,
//! version and expected checksum. Pure functions: no I/O, no policy.
//!
//! Per request kind (paths relative to the `/cargo` mount):
//! - `index/config.json`: [`render_config`] (and [`parse_upstream_config`] on upstream's).
//! - `index/<path>`: [`parse_index_path`], [`upstream_index_url`], then [`IndexFile::parse`],
//!   [`IndexFile::records`] (plus [`api::merge_api_metadata`] when `pubtime` is missing),
//!   and [`IndexFile::render`] (or [`IndexFile::render_with`] to yank rather than drop).
//! - `dl/{crate}/{version}/{checksum}`: [`parse_download_path`] and
//!   [`UpstreamConfig::download_url`].

pub mod api;
mod index;
mod protocol;

pub use index::{IndexFile, IndexLine};
pub use protocol::{Cargo, CargoQuirk, Index};

use serde::Deserialize;
use url::Url;

use crate::package::{Ecosystem, PackageName, Version};
use crate::registry::{Digest, ProtocolError};

/// crates.io's download location when upstream's `config.json` is not known.
pub(crate) const DEFAULT_DL: &str =
    "https://static.crates.io/crates/{crate}/{crate}-{version}.crate";

/// `config.json` for clients: downloads come back through depfw with the checksum in the
/// path, so the proxy knows what to verify. No `api`: depfw does not proxy publishing.
pub fn render_config(public_base: &Url, auth_required: bool) -> String {
    let dl = format!(
        "{}/cargo/dl/{{crate}}/{{version}}/{{sha256-checksum}}",
        public_base.as_str().trim_end_matches('/')
    );
    serde_json::json!({ "dl": dl, "auth-required": auth_required }).to_string()
}

/// The parts of upstream's `config.json` the proxy uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UpstreamConfig {
    /// Download URL template.
    pub dl: String,
    pub api: Option<String>,
    #[serde(rename = "auth-required", default)]
    pub auth_required: bool,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            dl: DEFAULT_DL.to_owned(),
            api: Some("https://crates.io".to_owned()),
            auth_required: false,
        }
    }
}

/// Parses upstream's `config.json`.
pub fn parse_upstream_config(body: &[u8]) -> Result<UpstreamConfig, ProtocolError> {
    let config: UpstreamConfig = serde_json::from_slice(body)
        .map_err(|e| ProtocolError::BadUpstream(format!("config.json: {e}")))?;
    Url::parse(&config.dl)
        .map_err(|e| ProtocolError::BadUpstream(format!("config.json `dl`: {e}")))?;
    Ok(config)
}

const MARKERS: [&str; 5] = [
    "{crate}",
    "{version}",
    "{prefix}",
    "{lowerprefix}",
    "{sha256-checksum}",
];

impl UpstreamConfig {
    /// The upstream URL of a `.crate`, filling the `dl` markers the way cargo does; with no
    /// marker, cargo appends `/{crate}/{version}/download`.
    pub fn download_url(&self, dl: &DownloadRequest) -> Result<Url, ProtocolError> {
        let checksum = match &dl.checksum {
            Digest::Sha256(bytes) | Digest::Sha512(bytes) | Digest::Sha1(bytes) => {
                hex::encode(bytes)
            }
        };
        self.crate_url(dl.name.as_str(), &dl.version_text, &checksum)
    }

    /// [`Self::download_url`] from the parts of an index line.
    pub(crate) fn crate_url(
        &self,
        name: &str,
        version: &str,
        checksum_hex: &str,
    ) -> Result<Url, ProtocolError> {
        let url = if MARKERS.iter().any(|m| self.dl.contains(m)) {
            let prefix = prefix(name);
            self.dl
                .replace("{crate}", name)
                .replace("{version}", version)
                .replace("{prefix}", &prefix)
                .replace("{lowerprefix}", &prefix.to_lowercase())
                .replace("{sha256-checksum}", checksum_hex)
        } else {
            format!(
                "{}/{name}/{version}/download",
                self.dl.trim_end_matches('/')
            )
        };
        Url::parse(&url)
            .map_err(|e| ProtocolError::BadUpstream(format!("download URL `{url}`: {e}")))
    }
}

/// The index directory of a name, as cargo computes it (not lowercased).
fn prefix(name: &str) -> String {
    match name.len() {
        1 => "1".to_owned(),
        2 => "2".to_owned(),
        3 => format!("3/{}", &name[..1]),
        _ => format!("{}/{}", &name[..2], &name[2..4]),
    }
}

/// The index file path of a crate: `1/a`, `2/ab`, `3/a/abc`, `it/oa/itoa` (lower case).
pub fn index_path(name: &PackageName) -> String {
    let lower = name.as_str().to_ascii_lowercase();
    format!("{}/{lower}", prefix(&lower))
}

/// What a path under `/cargo/index/` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexRequest {
    Config,
    Crate(PackageName),
}

/// Parses the path after `/cargo/index/`. The crate name must be valid, lower case, and
/// sit under the directory cargo would use for it.
pub fn parse_index_path(path: &str) -> Result<IndexRequest, ProtocolError> {
    let bad = |why: &str| ProtocolError::BadPath(format!("index path `{path}`: {why}"));
    if path == "config.json" {
        return Ok(IndexRequest::Config);
    }
    let raw = path.rsplit('/').next().unwrap_or_default();
    let name = PackageName::parse(Ecosystem::CratesIo, raw).map_err(|e| bad(&e.to_string()))?;
    if raw != raw.to_ascii_lowercase() || index_path(&name) != path {
        return Err(bad("not the index path of that crate"));
    }
    Ok(IndexRequest::Crate(name))
}

/// The upstream index URL of a crate (`https://index.crates.io/` + [`index_path`]).
pub fn upstream_index_url(index_base: &Url, name: &PackageName) -> Result<Url, ProtocolError> {
    let base = format!("{}/", index_base.as_str().trim_end_matches('/'));
    Url::parse(&format!("{base}{}", index_path(name)))
        .map_err(|e| ProtocolError::BadPath(e.to_string()))
}

/// A `dl/{crate}/{version}/{sha256-checksum}` request.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadRequest {
    pub name: PackageName,
    pub version_text: String,
    pub version: Version,
    /// The checksum from the path: what the index line says; the bytes must match it.
    pub checksum: Digest,
}

/// Parses the path after `/cargo/` (`dl/itoa/1.0.11/<64 hex>`).
pub fn parse_download_path(path: &str) -> Result<DownloadRequest, ProtocolError> {
    let bad = |why: &str| ProtocolError::BadPath(format!("download path `{path}`: {why}"));
    let parts: Vec<&str> = path.split('/').collect();
    let [dl, name, version, checksum] = parts.as_slice() else {
        return Err(bad("expected dl/{crate}/{version}/{sha256-checksum}"));
    };
    if *dl != "dl" {
        return Err(bad("not under dl/"));
    }
    let name = PackageName::parse(Ecosystem::CratesIo, name).map_err(|e| bad(&e.to_string()))?;
    let parsed = Version::parse(Ecosystem::CratesIo, version).map_err(|e| bad(&e.to_string()))?;
    let checksum = parse_sha256(checksum).ok_or_else(|| bad("checksum is not 64 hex digits"))?;
    Ok(DownloadRequest {
        name,
        version_text: (*version).to_owned(),
        version: parsed,
        checksum,
    })
}

/// A lower- or upper-case 64-digit hex SHA-256.
pub(crate) fn parse_sha256(hex_digest: &str) -> Option<Digest> {
    if hex_digest.len() != 64 {
        return None;
    }
    hex::decode(hex_digest).ok().map(Digest::Sha256)
}
