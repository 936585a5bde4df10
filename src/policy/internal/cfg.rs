//! `[policy.internal-names]`: the dependency-confusion rule's settings, as written and
//! validated.

use serde::Deserialize;

use super::NamePattern;
use crate::diag::problems::Problems;
use crate::diag::Verdict;
use crate::package::Ecosystem;

/// `[policy.internal-names]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawInternalNames {
    /// Patterns for every ecosystem.
    pub patterns: Vec<String>,
    pub npm: Vec<String>,
    pub pypi: Vec<String>,
    pub cargo: Vec<String>,
    pub verdict: String,
    /// Where internal packages must come from, for the refusal message.
    pub source: String,
}

impl Default for RawInternalNames {
    fn default() -> Self {
        RawInternalNames {
            patterns: Vec::new(),
            npm: Vec::new(),
            pypi: Vec::new(),
            cargo: Vec::new(),
            verdict: "deny".to_owned(),
            source: "your organisation's private registry".to_owned(),
        }
    }
}

/// `[policy.internal-names]`, validated: the patterns of each ecosystem (the global ones
/// included).
#[derive(Debug, Clone)]
pub struct InternalNamesConfig {
    pub patterns: Vec<NamePattern>,
    /// The names a private upstream serves (`[[upstream.npm.scopes]]`,
    /// `[[upstream.pypi.private]]`): depfw asks only that upstream for them, so an internal
    /// name among them is where it must come from, not a public namesake.
    pub served_privately: Vec<NamePattern>,
    pub verdict: Verdict,
    pub source: String,
}

impl Default for InternalNamesConfig {
    fn default() -> Self {
        let mut p = Problems::default();
        RawInternalNames::default().validate(&mut p)
    }
}

impl RawInternalNames {
    /// Checks every value, pushing each problem under its `policy.internal-names.*` key.
    pub(crate) fn validate(&self, p: &mut Problems) -> InternalNamesConfig {
        let mut patterns = Vec::new();
        let lists: [(&str, &[String], Option<Ecosystem>); 4] = [
            ("patterns", &self.patterns, None),
            ("npm", &self.npm, Some(Ecosystem::Npm)),
            ("pypi", &self.pypi, Some(Ecosystem::PyPI)),
            ("cargo", &self.cargo, Some(Ecosystem::CratesIo)),
        ];
        for (key, list, ecosystem) in lists {
            for (i, text) in list.iter().enumerate() {
                let key = format!("policy.internal-names.{key}[{i}]");
                let trimmed = text.trim();
                if trimmed.is_empty() || trimmed.chars().all(|c| c == '*') {
                    p.push(
                        key,
                        format!("`{text}` would match every name; write your organisation's prefix or scope, such as `@mycorp/*` or `mycorp-*`"),
                    );
                    continue;
                }
                if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    p.push(
                        key,
                        format!("`{text}` contains whitespace: no package name does"),
                    );
                    continue;
                }
                patterns.push(NamePattern::new(ecosystem, trimmed));
            }
        }
        let source = self.source.trim();
        if source.is_empty() {
            p.push(
                "policy.internal-names.source",
                "say where internal packages come from: it is what a refused client is told",
            );
        }
        InternalNamesConfig {
            patterns,
            served_privately: Vec::new(),
            verdict: p.verdict("policy.internal-names.verdict", &self.verdict),
            source: source.to_owned(),
        }
    }
}
