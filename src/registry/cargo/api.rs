//! crates.io's web API (`/api/v1/crates/{name}`): the fallback for publish times the index
//! does not carry yet (`pubtime` is being backfilled) and the only source of licenses.
//! Fetching it (≤1 request/s, descriptive User-Agent, cached) is the proxy's job.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::policy::VersionMetadata;
use crate::registry::{ProtocolError, VersionRecord};

#[derive(Deserialize)]
struct Response {
    #[serde(rename = "crate")]
    krate: Option<CrateInfo>,
    versions: Vec<ApiVersion>,
}

#[derive(Deserialize)]
struct CrateInfo {
    created_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct ApiVersion {
    num: String,
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    yanked: bool,
    license: Option<String>,
}

/// What the web API says about a crate: per-version metadata keyed by version text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CrateApiInfo {
    /// `crate.created_at`, else the earliest version's `created_at`.
    pub created_at: Option<DateTime<Utc>>,
    pub versions: BTreeMap<String, VersionMetadata>,
}

/// Parses a `/api/v1/crates/{name}` response; unknown fields are ignored.
pub fn parse_crate_api(body: &[u8]) -> Result<CrateApiInfo, ProtocolError> {
    let response: Response = serde_json::from_slice(body)
        .map_err(|e| ProtocolError::BadUpstream(format!("crates.io API response: {e}")))?;
    let created_at = response
        .krate
        .and_then(|c| c.created_at)
        .or_else(|| response.versions.iter().filter_map(|v| v.created_at).min());
    let versions = response
        .versions
        .into_iter()
        .map(|v| {
            let metadata = VersionMetadata {
                publish_time_expected: true,
                published: v.created_at,
                package_created: created_at,
                // null when the crate gives a `license-file` instead (and for some early
                // crates): unknown, not "none declared".
                license: v.license,
                yanked: v.yanked.then(String::new),
                ..VersionMetadata::default()
            };
            (v.num, metadata)
        })
        .collect();
    Ok(CrateApiInfo {
        created_at,
        versions,
    })
}

/// Fills what the index left unknown (publish time, package creation, license) from the
/// API. The index stays authoritative for what it does say, including `yanked`.
pub fn merge_api_metadata(records: &mut [VersionRecord], api: &CrateApiInfo) {
    for record in records {
        let meta = &mut record.metadata;
        if let Some(from_api) = api.versions.get(&record.version_text) {
            meta.published = meta.published.or(from_api.published);
            meta.license = meta.license.take().or_else(|| from_api.license.clone());
        }
        // The API knows versions the index's partial `pubtime` backfill does not.
        meta.package_created = match (meta.package_created, api.created_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}
