//! `[policy.typosquat]`: the typosquat check's settings, as written and validated.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::diag::problems::Problems;
use crate::diag::Verdict;
use crate::package::Ecosystem;

/// `[policy.typosquat]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawTyposquat {
    pub enabled: bool,
    pub verdict: String,
    pub look_alike: String,
    pub established_days: u64,
    pub unknown_age: String,
    pub extra_popular: BTreeMap<String, Vec<String>>,
}

impl Default for RawTyposquat {
    fn default() -> Self {
        RawTyposquat {
            enabled: true,
            verdict: "quarantine".to_owned(),
            look_alike: "warn".to_owned(),
            established_days: 90,
            unknown_age: "warn".to_owned(),
            extra_popular: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TyposquatConfig {
    pub enabled: bool,
    /// For a name suspected of imitating a popular one (`possible-typosquat`).
    pub verdict: Verdict,
    /// For a name that resembles a popular one on an established package, or only weakly
    /// with the package's age unknown (`look-alike-name`).
    pub look_alike: Verdict,
    /// A package whose first release is at least this many days old is established.
    pub established_days: u64,
    /// For a moderate resemblance (`crossenv`, `d3.js`, `python3-dateutil`, `djanga`) of a
    /// package whose age is unknown (no registry metadata: `depfw check` and `depfw audit`
    /// without `--online`). Strong ones are held then (`verdict`): the policy fails closed
    /// where it cannot tell young from established.
    pub unknown_age: Verdict,
    /// Extra names treated as popular (internal packages, say).
    pub extra_popular: BTreeMap<Ecosystem, Vec<String>>,
}

impl RawTyposquat {
    /// Checks every value, pushing each problem under its `policy.typosquat.*` key.
    pub(crate) fn validate(&self, p: &mut Problems) -> TyposquatConfig {
        let mut extra_popular = BTreeMap::new();
        for (eco, names) in &self.extra_popular {
            match eco.parse::<Ecosystem>() {
                Ok(e) => {
                    extra_popular.insert(e, names.clone());
                }
                Err(e) => p.push(
                    format!("policy.typosquat.extra-popular.{eco}"),
                    e.to_string(),
                ),
            }
        }
        TyposquatConfig {
            enabled: self.enabled,
            verdict: p.verdict("policy.typosquat.verdict", &self.verdict),
            look_alike: p.verdict("policy.typosquat.look-alike", &self.look_alike),
            established_days: self.established_days,
            unknown_age: p.verdict("policy.typosquat.unknown-age", &self.unknown_age),
            extra_popular,
        }
    }
}
