//! What the content rules remember (`depfw serve`, [`crate::policy::content`]): the scan of
//! each artifact digest (so a cached artifact is not scanned again on every download),
//! which scanned releases of a package had native binaries (what `new-native-binary`
//! compares with), and the versions a scan held (loaded into the policy's
//! [`ContentLedger`](crate::policy::content::ContentLedger) so metadata hides them too).
//!
//! All of it lives in the `content-scans` tree; nothing here is signed: a held version's
//! decision record and quarantine item are the authoritative trail.

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::diag::Finding;
use crate::package::{Ecosystem, Version};
use crate::policy::content::Earlier;

const TREE: &str = "content-scans";

/// One artifact's remembered scan.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Memo {
    /// The rules and limits it was scanned with; another value means scan again.
    fingerprint: String,
    findings: Vec<Finding>,
}

/// A version held by a content rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Held {
    ecosystem: Ecosystem,
    name: String,
    version: String,
    findings: Vec<Finding>,
}

/// The content rules' memory in one data directory.
#[derive(Clone)]
pub struct ContentStore {
    tree: sled::Tree,
}

fn key(parts: &[&str]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

fn eco(e: Ecosystem) -> &'static str {
    match e {
        Ecosystem::Npm => "npm",
        Ecosystem::PyPI => "pypi",
        Ecosystem::CratesIo => "cargo",
    }
}

impl ContentStore {
    pub fn new(store: &Store) -> Result<Self, StoreError> {
        Ok(ContentStore {
            tree: store.tree(TREE)?,
        })
    }

    /// The findings of the digest's last scan with these rules and limits.
    pub fn memo(
        &self,
        digest: &str,
        fingerprint: &str,
    ) -> Result<Option<Vec<Finding>>, StoreError> {
        let Some(value) = self.tree.get(key(&["d", digest]))? else {
            return Ok(None);
        };
        let memo: Memo =
            serde_json::from_slice(&value).map_err(|e| StoreError::corrupt("content scan", e))?;
        Ok((memo.fingerprint == fingerprint).then_some(memo.findings))
    }

    /// Remembers a digest's scan.
    pub fn remember(
        &self,
        digest: &str,
        fingerprint: &str,
        findings: &[Finding],
    ) -> Result<(), StoreError> {
        let memo = Memo {
            fingerprint: fingerprint.to_owned(),
            findings: findings.to_vec(),
        };
        let value =
            serde_json::to_vec(&memo).map_err(|e| StoreError::corrupt("content scan", e))?;
        self.tree.insert(key(&["d", digest]), value)?;
        Ok(())
    }

    /// Records whether a scanned release (of one kind of artifact, `flavour`) had native
    /// binaries.
    pub fn record_native(
        &self,
        ecosystem: Ecosystem,
        name: &str,
        flavour: &str,
        version: &str,
        native: bool,
    ) -> Result<(), StoreError> {
        let k = key(&["n", eco(ecosystem), name, flavour, version]);
        self.tree.insert(k, &[u8::from(native)])?;
        Ok(())
    }

    /// What the scanned releases below `version` (same package and flavour) had.
    pub fn earlier(
        &self,
        ecosystem: Ecosystem,
        name: &str,
        flavour: &str,
        version: &Version,
    ) -> Result<Earlier, StoreError> {
        let mut prefix = key(&["n", eco(ecosystem), name, flavour]);
        prefix.push(0);
        let mut lower: Vec<(Version, bool)> = Vec::new();
        for entry in self.tree.scan_prefix(&prefix) {
            let (k, v) = entry?;
            let text = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            let Ok(other) = Version::parse(ecosystem, &text) else {
                continue;
            };
            if other.partial_cmp(version) == Some(std::cmp::Ordering::Less) {
                lower.push((other, v.first() == Some(&1)));
            }
        }
        lower.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
        if let Some((v, _)) = lower.iter().find(|(_, native)| *native) {
            return Ok(Earlier::HadNative(v.to_string()));
        }
        if lower.is_empty() {
            return Ok(Earlier::NotScanned);
        }
        Ok(Earlier::HadNone(
            lower.iter().map(|(v, _)| v.to_string()).collect(),
        ))
    }

    /// Records that a scan held `name@version`, durably (the policy reads it back on every
    /// rebuild).
    pub fn hold(
        &self,
        ecosystem: Ecosystem,
        name: &str,
        version: &str,
        findings: &[Finding],
    ) -> Result<(), StoreError> {
        let held = Held {
            ecosystem,
            name: name.to_owned(),
            version: version.to_owned(),
            findings: findings.to_vec(),
        };
        let value =
            serde_json::to_vec(&held).map_err(|e| StoreError::corrupt("content hold", e))?;
        self.tree
            .insert(key(&["h", eco(ecosystem), name, version]), value)?;
        self.tree.flush()?;
        Ok(())
    }

    /// Every held version with its findings.
    #[allow(clippy::type_complexity)]
    pub fn held(&self) -> Result<Vec<((Ecosystem, String, String), Vec<Finding>)>, StoreError> {
        let mut out = Vec::new();
        let mut prefix = b"h".to_vec();
        prefix.push(0);
        for entry in self.tree.scan_prefix(&prefix) {
            let (_, value) = entry?;
            let h: Held = serde_json::from_slice(&value)
                .map_err(|e| StoreError::corrupt("content hold", e))?;
            out.push(((h.ecosystem, h.name, h.version), h.findings));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_releases_are_the_lower_scanned_versions_of_one_flavour() {
        let store = Store::temporary().unwrap();
        let s = ContentStore::new(&store).unwrap();
        let v = |t: &str| Version::parse(Ecosystem::Npm, t).unwrap();
        assert_eq!(
            s.earlier(Ecosystem::Npm, "x", "tarball", &v("1.0.1"))
                .unwrap(),
            Earlier::NotScanned
        );
        s.record_native(Ecosystem::Npm, "x", "tarball", "1.0.0", false)
            .unwrap();
        s.record_native(Ecosystem::Npm, "x", "tarball", "0.9.0", false)
            .unwrap();
        s.record_native(Ecosystem::Npm, "x", "tarball", "2.0.0", true)
            .unwrap();
        s.record_native(Ecosystem::Npm, "xy", "tarball", "0.1.0", true)
            .unwrap();
        assert_eq!(
            s.earlier(Ecosystem::Npm, "x", "tarball", &v("1.0.1"))
                .unwrap(),
            Earlier::HadNone(vec!["1.0.0".into(), "0.9.0".into()])
        );
        assert_eq!(
            s.earlier(Ecosystem::Npm, "x", "tarball", &v("2.1.0"))
                .unwrap(),
            Earlier::HadNative("2.0.0".into())
        );
    }

    #[test]
    fn holds_and_memos_round_trip() {
        let store = Store::temporary().unwrap();
        let s = ContentStore::new(&store).unwrap();
        let f = Finding::new(
            crate::diag::Code::PthExecutesCode,
            crate::diag::Severity::High,
            crate::diag::Verdict::Quarantine,
            "x.pth: line 1".into(),
        );
        s.hold(
            Ecosystem::PyPI,
            "litellm",
            "1.82.8",
            std::slice::from_ref(&f),
        )
        .unwrap();
        let held = s.held().unwrap();
        assert_eq!(held[0].0 .2, "1.82.8");
        s.remember("sha256-ab", "v1", std::slice::from_ref(&f))
            .unwrap();
        assert_eq!(s.memo("sha256-ab", "v1").unwrap(), Some(vec![f]));
        assert_eq!(s.memo("sha256-ab", "v2").unwrap(), None);
    }
}
