//! Dependency confusion: `depfw serve`, `depfw check` and `depfw audit` refuse a package
//! whose name is one of your organisation's internal names (`[policy.internal-names]`,
//! patterns such as `@mycorp/*` or `mycorp-*`), because depfw fronts the public registries
//! only: a package under an internal name there is someone else's (the `@corp/i18n` at
//! 99.0.3 of the dependency-confusion attacks, which wins any "highest version" race).
//!
//! The check is on the name alone, so the proxy refuses before anything is fetched from
//! upstream, and the refusal says where internal packages must come from
//! (`policy.internal-names.source`). Code: `internal-name`.

pub(crate) mod cfg;

pub use cfg::InternalNamesConfig;

use super::{Check, Finding, PackageCtx, Severity};
use crate::diag::{checks, Code};
use crate::package::{normalize, Ecosystem};

/// One `[policy.internal-names]` pattern: `*` matches any run of characters, the rest is
/// compared with the name's normalised key (PEP 503 for PyPI, `-`/`_` folded for cargo,
/// case-insensitively everywhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern {
    /// `None`: every ecosystem.
    ecosystem: Option<Ecosystem>,
    text: String,
}

impl NamePattern {
    pub fn new(ecosystem: Option<Ecosystem>, text: &str) -> Self {
        NamePattern {
            ecosystem,
            text: text.to_owned(),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `key` (a name's normalised key in `ecosystem`) matches.
    pub fn matches(&self, ecosystem: Ecosystem, key: &str) -> bool {
        if self.ecosystem.is_some_and(|e| e != ecosystem) {
            return false;
        }
        let key = key.to_lowercase();
        let parts: Vec<String> = self
            .text
            .split('*')
            .map(|part| match (ecosystem, part.is_empty()) {
                (_, true) => String::new(),
                // Normalising a fragment must not drop a separator at its edges: PEP 503
                // folds runs, so "mycorp-" stays "mycorp-".
                (Ecosystem::Npm, false) => part.to_lowercase(),
                (_, false) => normalize(ecosystem, part).to_lowercase(),
            })
            .collect();
        glob(&parts, &key)
    }
}

/// Whether `text` is `parts` joined by `*` wildcards.
fn glob(parts: &[String], text: &str) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return text.is_empty();
    };
    let Some(mut remaining) = text.strip_prefix(first.as_str()) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return remaining.is_empty();
    };
    for part in middle {
        match remaining.find(part.as_str()) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last.as_str())
}

/// The `internal-names` check; see the module docs.
pub struct InternalNamesCheck {
    config: InternalNamesConfig,
}

impl InternalNamesCheck {
    pub fn new(config: InternalNamesConfig) -> Self {
        InternalNamesCheck { config }
    }
}

impl Check for InternalNamesCheck {
    fn name(&self) -> &'static str {
        checks::INTERNAL_NAMES
    }

    fn evaluate(&self, ctx: &PackageCtx<'_>, findings: &mut Vec<Finding>) {
        let ecosystem = ctx.name.ecosystem();
        let private = |p: &NamePattern| p.matches(ecosystem, ctx.name.key());
        if self.config.served_privately.iter().any(private) {
            return;
        }
        let Some(pattern) = self
            .config
            .patterns
            .iter()
            .find(|p| p.matches(ecosystem, ctx.name.key()))
        else {
            return;
        };
        let hint = match ecosystem {
            Ecosystem::Npm => match ctx.name.as_str().split_once('/') {
                Some((scope, _)) if scope.starts_with('@') => {
                    format!("npm: `{scope}:registry=` in .npmrc")
                }
                _ => "npm: a scope whose `:registry=` in .npmrc is the internal one".to_owned(),
            },
            Ecosystem::PyPI => "pip/uv: the internal index as the index for these names".to_owned(),
            Ecosystem::CratesIo => {
                "cargo: a `[registries]` entry and `registry = ` on the dependency".to_owned()
            }
        };
        findings.push(Finding::new(
            Code::InternalName,
            Severity::Critical,
            self.config.verdict,
            format!(
                "`{}` matches the internal-name pattern `{}`: internal packages must come from \
                 {}, never from the public registry (a public package under an internal name is \
                 a dependency-confusion attack); point the client at the internal registry for \
                 these names ({hint})",
                ctx.name,
                pattern.as_str(),
                self.config.source
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_scopes_prefixes_and_normalised_names() {
        let any = |t: &str| NamePattern::new(None, t);
        assert!(any("@mycorp/*").matches(Ecosystem::Npm, "@mycorp/i18n"));
        assert!(!any("@mycorp/*").matches(Ecosystem::Npm, "@mycorp-x/i18n"));
        assert!(!any("@mycorp/*").matches(Ecosystem::Npm, "mycorp"));
        assert!(any("mycorp-*").matches(Ecosystem::Npm, "mycorp-utils"));
        assert!(!any("mycorp-*").matches(Ecosystem::Npm, "notmycorp-utils"));
        assert!(any("mycorp_*").matches(Ecosystem::PyPI, "mycorp-utils"));
        assert!(any("*-internal").matches(Ecosystem::PyPI, "billing-internal"));
        assert!(any("my*corp*x").matches(Ecosystem::Npm, "my-big-corp-x"));
        assert!(!any("my*corp*x").matches(Ecosystem::Npm, "my-big-corp-y"));
        assert!(any("exact").matches(Ecosystem::CratesIo, "exact"));
        assert!(!any("exact").matches(Ecosystem::CratesIo, "exactly"));
        let npm_only = NamePattern::new(Some(Ecosystem::Npm), "mycorp-*");
        assert!(!npm_only.matches(Ecosystem::PyPI, "mycorp-utils"));
    }

    #[test]
    fn an_internal_name_served_by_its_private_upstream_is_not_refused() {
        let npm = |n: &str| crate::package::PackageName::parse(Ecosystem::Npm, n).unwrap();
        let check = InternalNamesCheck::new(InternalNamesConfig {
            patterns: vec![
                NamePattern::new(None, "@mycorp/*"),
                NamePattern::new(None, "@other/*"),
            ],
            served_privately: vec![NamePattern::new(Some(Ecosystem::Npm), "@mycorp/*")],
            ..InternalNamesConfig::default()
        });
        let codes = |n: &str| {
            let name = npm(n);
            let mut findings = Vec::new();
            check.evaluate(
                &PackageCtx {
                    name: &name,
                    version: None,
                    metadata: None,
                    now: chrono::Utc::now(),
                },
                &mut findings,
            );
            findings.len()
        };
        assert_eq!(codes("@mycorp/i18n"), 0);
        assert_eq!(codes("@other/i18n"), 1);
    }
}
