//! The typosquat check: a name that looks like a popular package it is not.
//!
//! Typosquats (`reqeusts`, `python-dateitil`, `@typescript/eslint-parser`) are published to
//! be installed by mistake, often before any advisory exists. The proxy, `depfw audit` and
//! `depfw check` run this check on the name alone, against the popular lists of
//! [`crate::feeds::popular`]; a hit is quarantined by default (`policy.typosquat.verdict`).

pub(crate) mod detect;
pub(crate) mod forms;

use std::fmt;
use std::sync::Arc;

use crate::config::TyposquatConfig;
use crate::diag::{checks, Code};
use crate::feeds::popular::PopularIndex;
use crate::package::Ecosystem;

use super::{Check, Finding, PackageCtx, Severity};

/// How a suspect name imitates its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Technique {
    /// Same letters, different case (`JSONstream`).
    Case,
    /// Same letters, different `-` `_` `.` (`pythondateutil`).
    Separator,
    /// Same letters, scope boundary moved (`@typescript/eslint-parser`).
    Scope,
    /// Look-alike characters (`rn` for `m`, `0` for `o`).
    Homoglyph,
    Transposition,
    MissingLetter,
    ExtraLetter,
    Substitution,
    /// A popular name with a prefix or suffix (`lodash-js`); the affix.
    Affix(&'static str),
}

impl Technique {
    /// Among equally popular targets, the more specific explanation wins.
    pub(crate) fn priority(self) -> u8 {
        match self {
            Technique::Case => 0,
            Technique::Separator => 1,
            Technique::Scope => 2,
            Technique::Homoglyph => 3,
            Technique::Transposition => 4,
            Technique::MissingLetter => 5,
            Technique::ExtraLetter => 6,
            Technique::Substitution => 7,
            Technique::Affix(_) => 8,
        }
    }
}

impl fmt::Display for Technique {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Technique::Case => f.write_str("letter case changed"),
            Technique::Separator => f.write_str("separators changed"),
            Technique::Scope => f.write_str("scope boundary moved"),
            Technique::Homoglyph => f.write_str("look-alike characters"),
            Technique::Transposition => f.write_str("transposed letters"),
            Technique::MissingLetter => f.write_str("a missing letter"),
            Technique::ExtraLetter => f.write_str("an extra letter"),
            Technique::Substitution => f.write_str("a substituted letter"),
            Technique::Affix(affix) => write!(f, "`{affix}` added"),
        }
    }
}

/// The popular package a name most likely imitates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspect {
    /// The popular name, as the list spells it.
    pub target: String,
    /// Its rank in the popular list (1 = most popular); `None` for unranked lists.
    pub rank: Option<u32>,
    pub technique: Technique,
}

/// The `typosquat` policy check.
pub struct TyposquatCheck {
    popular: Arc<PopularIndex>,
    config: TyposquatConfig,
}

impl TyposquatCheck {
    /// `config.extra_popular` names are added to (a copy of) `popular`; invalid ones are
    /// logged and skipped.
    pub fn new(popular: Arc<PopularIndex>, config: TyposquatConfig) -> Self {
        let popular = if config.extra_popular.values().all(Vec::is_empty) {
            popular
        } else {
            let mut extended = (*popular).clone();
            for (ecosystem, names) in &config.extra_popular {
                if let Err(e) = extended.add_names(*ecosystem, names) {
                    tracing::warn!("policy.typosquat.extra-popular: {e}");
                }
            }
            Arc::new(extended)
        };
        TyposquatCheck { popular, config }
    }
}

impl Check for TyposquatCheck {
    fn name(&self) -> &'static str {
        checks::TYPOSQUAT
    }

    fn evaluate(&self, ctx: &PackageCtx<'_>, findings: &mut Vec<Finding>) {
        if !self.config.enabled {
            return;
        }
        let Some(suspect) = self.popular.suspect(ctx.name) else {
            return;
        };
        let ecosystem = ctx.name.ecosystem();
        findings.push(Finding::new(
            Code::PossibleTyposquat,
            Severity::High,
            self.config.verdict,
            format!(
                "`{}` looks like a typosquat of `{}` ({}): {}",
                ctx.name,
                suspect.target,
                popularity(ecosystem, suspect.rank),
                suspect.technique
            ),
        ));
    }
}

fn popularity(ecosystem: Ecosystem, rank: Option<u32>) -> String {
    match rank {
        Some(rank) => format!("{ecosystem} rank {rank}"),
        None => format!("popular on {ecosystem}"),
    }
}
