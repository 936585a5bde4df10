//! `[policy.license]`: the license check's settings, as written and validated.

use serde::Deserialize;

use crate::diag::problems::Problems;
use crate::diag::Verdict;

/// `[policy.license]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawLicense {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub denied: String,
    pub not_allowed: String,
    pub missing: String,
    pub unparsable: String,
}

impl Default for RawLicense {
    fn default() -> Self {
        RawLicense {
            allow: Vec::new(),
            deny: [
                "AGPL-1.0",
                "AGPL-3.0",
                "SSPL-1.0",
                "BUSL-1.1",
                "CC-BY-NC-4.0",
            ]
            .map(str::to_owned)
            .to_vec(),
            denied: "deny".to_owned(),
            not_allowed: "quarantine".to_owned(),
            missing: "warn".to_owned(),
            unparsable: "warn".to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LicenseConfig {
    /// If non-empty, only these licenses are allowed.
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub denied: Verdict,
    pub not_allowed: Verdict,
    pub missing: Verdict,
    pub unparsable: Verdict,
}

impl RawLicense {
    /// Checks every value, pushing each problem under its `policy.license.*` key.
    pub(crate) fn validate(&self, p: &mut Problems) -> LicenseConfig {
        for (key, list) in [("allow", &self.allow), ("deny", &self.deny)] {
            for (i, id) in list.iter().enumerate() {
                if spdx::Expression::parse_mode(id, spdx::ParseMode::LAX).is_err() {
                    p.push(
                        format!("policy.license.{key}[{i}]"),
                        format!("`{id}` is not an SPDX license identifier"),
                    );
                }
            }
        }
        LicenseConfig {
            allow: self.allow.clone(),
            deny: self.deny.clone(),
            denied: p.verdict("policy.license.denied", &self.denied),
            not_allowed: p.verdict("policy.license.not-allowed", &self.not_allowed),
            missing: p.verdict("policy.license.missing", &self.missing),
            unparsable: p.verdict("policy.license.unparsable", &self.unparsable),
        }
    }
}
