//! The typosquat check: a name that looks like a popular package it is not.
//!
//! Typosquats (`reqeusts`, `python-dateitil`, `@typescript/eslint-parser`) are published to
//! be installed by mistake, often before any advisory exists. The proxy, `depfw audit` and
//! `depfw check` compare every name with the popular lists of [`crate::feeds::popular`].
//!
//! A name alone rarely proves intent: `lodash-node`, `semiver` and `getstream` are as close
//! to popular names as `chalk-node`, `expres` and `crossenv`, and only the first three are
//! real projects. So a resemblance is [`Strength::Strong`] (a slip of the hand few real
//! names make), [`Strength::Moderate`] (a classic squat shape some established names share)
//! or [`Strength::Weak`] (how real neighbours are named too), and the package's age decides
//! what it means:
//!
//! | resemblance | young package | established (`established-days`) | age unknown |
//! |---|---|---|---|
//! | strong | `possible-typosquat` | `look-alike-name` | `possible-typosquat` |
//! | moderate | `possible-typosquat` | `look-alike-name` | `possible-typosquat`, verdict `unknown-age` (warn) |
//! | weak | `possible-typosquat` | nothing | nothing |
//!
//! `possible-typosquat` is quarantined by default (`policy.typosquat.verdict`),
//! `look-alike-name` warns (`policy.typosquat.look-alike`). The age comes from registry
//! metadata (npm packuments, PyPI upload times); `depfw check` and `depfw audit` without
//! `--online` have none. Where the age is unknown the policy fails closed on a strong
//! resemblance (it cannot tell a young squat from an established name, and says so in the
//! finding). A moderate one warns by default instead (`policy.typosquat.unknown-age`), a
//! documented exception: 0.08% of legitimate npm names outside the popular list have one
//! (`getstream`, `urljoin`, `bytes.js`, all years old), four times the strong rate, and a
//! refused `getstream` in an offline audit teaches users to turn depfw off. A weak
//! resemblance of unknown age is not reported: 1-2.5% of legitimate names have one
//! (`integration/real_data/typosquat.rs`), which would be noise in every audit and a
//! refusal for every `strict` agent. Squatters publish and get caught within days, so a
//! young package is where any look-alike is dangerous.

pub(crate) mod cfg;

pub use cfg::TyposquatConfig;

pub(crate) mod detect;
pub(crate) mod forms;
pub(crate) mod index;
mod table;

pub use index::{PopularError, PopularIndex};

use std::fmt;
use std::sync::Arc;

use crate::diag::{checks, Code};
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
    /// A popular name with a generic word added, or one of the ecosystem's marker words
    /// swapped for another (`lodash-js`, `python3-dateutil`); the word.
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
            Technique::Affix(word) => write!(f, "the word `{word}` added"),
        }
    }
}

/// How much a resemblance says by itself. Ordered: the stronger explanation wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Strength {
    /// A slip of the hand on a popular name (`reqeusts`, `debuug`), a look-alike character
    /// or a moved scope: rare among real project names, suspect by name alone.
    Strong,
    /// A classic squat shape that established real names share often enough that the name
    /// alone warns rather than holds: every separator of a popular npm name dropped or
    /// added (`crossenv`, `babelcli`; the npm registry has refused such names since 2017, so
    /// one that exists is that old, or served by another registry), the project's spoken
    /// name (`d3.js`, `jquery.js`), a version digit in a marker (`python3-dateutil`), a last
    /// vowel swapped on a top name (`djanga`).
    Moderate,
    /// A popular name plus a generic word (`lodash-node`, `chai-sdk`), a new first or last
    /// letter or a substituted one (`djanga`, `semiver`): how real neighbours are named
    /// too, suspect only in a young package.
    Weak,
}

/// The popular package a name most likely imitates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspect {
    /// The popular name, as the list spells it.
    pub target: String,
    /// Its rank in the popular list (1 = most popular); `None` for unranked lists.
    pub rank: Option<u32>,
    pub technique: Technique,
    pub strength: Strength,
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
        let age_days = ctx
            .metadata
            .and_then(|m| m.package_created)
            .map(|created| (ctx.now - created).num_days());
        let established =
            age_days.map(|days| u64::try_from(days).unwrap_or(0) >= self.config.established_days);
        let (code, severity, verdict) = match (suspect.strength, established) {
            (_, Some(false)) | (Strength::Strong, None) => {
                (Code::PossibleTyposquat, Severity::High, self.config.verdict)
            }
            (Strength::Moderate, None) => (
                Code::PossibleTyposquat,
                Severity::Medium,
                self.config.unknown_age,
            ),
            (Strength::Strong | Strength::Moderate, Some(true)) => {
                (Code::LookAlikeName, Severity::Low, self.config.look_alike)
            }
            (Strength::Weak, Some(true) | None) => return,
        };
        let resemblance = format!(
            "`{}` {} `{}` ({}): {}",
            ctx.name,
            if code == Code::PossibleTyposquat {
                "looks like a typosquat of"
            } else {
                "resembles"
            },
            suspect.target,
            popularity(ecosystem, suspect.rank),
            suspect.technique
        );
        let message = match (&code, age_days) {
            (Code::PossibleTyposquat, Some(days)) => {
                format!("{resemblance}, in a package first published {days} days ago")
            }
            (_, Some(days)) => {
                format!("{resemblance}; established, first published {days} days ago")
            }
            (_, None) if suspect.strength == Strength::Moderate => format!(
                "{resemblance}; the package's age is unknown (no registry metadata), and \
                 `policy.typosquat.unknown-age` decides"
            ),
            (_, None) => format!(
                "{resemblance}; the package's age is unknown (no registry metadata), so the \
                 policy fails closed and treats it as young"
            ),
        };
        let finding = Finding::new(code, severity, verdict, message);
        findings.push(finding);
    }
}

fn popularity(ecosystem: Ecosystem, rank: Option<u32>) -> String {
    match rank {
        Some(rank) => format!("{ecosystem} rank {rank}"),
        None => format!("popular on {ecosystem}"),
    }
}
