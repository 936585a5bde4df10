//! The license check: `depfw serve` and `depfw audit --online` refuse versions whose declared
//! license the organisation cannot accept.
//!
//! The declared license comes from registry metadata (npm `license`, PyPI `license` /
//! `license_expression`, crates.io `license`) and is parsed as an SPDX expression in the
//! `spdx` crate's lax mode, which accepts the common legacy forms (`MIT/Apache-2.0`,
//! `Apache 2.0`, `BSD`, `GPL-2.0+`). A few more legacy spellings seen on PyPI are mapped
//! first (see [`legacy_alias`]), and identifiers are matched case-insensitively as SPDX says.
//!
//! An expression is judged by whether it *can be satisfied*: `MIT OR AGPL-3.0` is fine under a
//! deny list holding AGPL-3.0, because the licensee may pick MIT.
//!
//! Codes:
//! - `license-denied`: every way to satisfy the expression uses a denied license. A deny entry
//!   names a license family version (`AGPL-3.0`) and covers its `-only` and `-or-later`
//!   spellings; an `-or-later` requirement is denied only when every later version of the
//!   family is denied too (`GPL-2.0-or-later` with only `GPL-2.0` denied may pick GPL-3.0).
//! - `license-not-allowed`: `allow` is non-empty and no satisfaction uses allowed licenses only.
//! - `license-missing`: the registry says no license is declared (or an empty one). Where
//!   the source does not say at all (`VersionMetadata::license` is `None`), nothing is judged.
//! - `license-unlicensed`: npm's `UNLICENSED`, which means "proprietary, no rights granted".
//!   No allow list can cover that, so it carries the `not-allowed` verdict even when `allow`
//!   is empty.
//! - `license-unparsable`: not an SPDX expression, including npm's `SEE LICENSE IN <file>`.
//!
//! Exceptions (`WITH LLVM-exception`) do not change the outcome: they only relax a license.
//! Without metadata (offline) the check cannot judge and reports nothing.

pub(crate) mod cfg;

pub use cfg::LicenseConfig;

use spdx::identifiers::LICENSES;
use spdx::{Expression, LicenseItem, LicenseReq, ParseMode};

use super::{Check, Finding, PackageCtx, Severity, Verdict};
use crate::diag::{checks, Code};

/// The longest stretch of a declared license quoted in a message: PyPI's `license` field
/// sometimes holds the whole license text.
const QUOTE_MAX: usize = 60;

/// One license in a comparable form: an SPDX license family version without its `-only` /
/// `-or-later` / `+` suffix, or a `LicenseRef-`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LicenseKey {
    Spdx(&'static str),
    Other(String),
}

impl LicenseKey {
    fn of(item: &LicenseItem) -> LicenseKey {
        match item {
            LicenseItem::Spdx { id, .. } => LicenseKey::Spdx(base_name(id.name)),
            LicenseItem::Other(r) => LicenseKey::Other(r.to_string()),
        }
    }
}

/// `GPL-2.0-or-later` → `GPL-2.0`, `Apache-2.0+` → `Apache-2.0`, `MIT` → `MIT`.
fn base_name(name: &'static str) -> &'static str {
    ["-or-later", "-only", "+"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

/// Splits `CC-BY-NC-4.0` into (`CC-BY-NC`, `4.0`); `None` for unversioned names (`MIT`).
fn family_version(base: &str) -> Option<(&str, &str)> {
    let (family, version) = base.rsplit_once('-')?;
    let numeric = !version.is_empty()
        && version.starts_with(|c: char| c.is_ascii_digit())
        && version.chars().all(|c| c.is_ascii_digit() || c == '.');
    numeric.then_some((family, version))
}

/// Compares dotted version numbers numerically (`2.10` > `2.9`).
fn version_at_least(version: &str, floor: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parts(version) >= parts(floor)
}

/// Every license a requirement lets the licensee pick: itself, plus for `-or-later` / `+`
/// every later version of the same family on the SPDX list.
fn choices(req: &LicenseReq) -> Vec<LicenseKey> {
    let own = LicenseKey::of(&req.license);
    let LicenseItem::Spdx { id, or_later } = &req.license else {
        return vec![own];
    };
    if !(*or_later || id.name.ends_with("-or-later")) {
        return vec![own];
    }
    let base = base_name(id.name);
    let Some((family, floor)) = family_version(base) else {
        return vec![own];
    };
    let mut keys = vec![own];
    for license in LICENSES {
        let candidate = base_name(license.name);
        let later = family_version(candidate)
            .is_some_and(|(f, v)| f == family && version_at_least(v, floor));
        if later && !keys.contains(&LicenseKey::Spdx(candidate)) {
            keys.push(LicenseKey::Spdx(candidate));
        }
    }
    keys
}

/// What a declared license string turned out to be.
#[derive(Debug)]
enum Declared {
    Missing,
    Unlicensed,
    Unparsable(String),
    Expression(Box<Expression>),
}

/// Full-string spellings seen in registry metadata that lax SPDX parsing does not know.
/// Deliberately short: ambiguous names ("BSD License") stay unparsable rather than guessed.
fn legacy_alias(raw: &str) -> Option<&'static str> {
    const ALIASES: &[(&str, &str)] = &[
        ("mit license", "MIT"),
        ("the mit license", "MIT"),
        ("apache license 2.0", "Apache-2.0"),
        ("apache license, version 2.0", "Apache-2.0"),
        ("apache license version 2.0", "Apache-2.0"),
        ("apache software license", "Apache-2.0"),
        ("apache 2", "Apache-2.0"),
        ("asl 2.0", "Apache-2.0"),
        ("mpl 2.0", "MPL-2.0"),
        ("isc license", "ISC"),
        ("psf", "PSF-2.0"),
        ("psf license", "PSF-2.0"),
        ("python software foundation license", "PSF-2.0"),
        ("public domain", "LicenseRef-public-domain"),
    ];
    let lower = raw.trim().to_ascii_lowercase();
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == lower)
        .map(|(_, id)| *id)
}

/// Rewrites each word that is an SPDX identifier in the wrong case (`agpl-3.0`) to its
/// canonical spelling; SPDX identifiers are case-insensitive but the parser is not.
fn canonical_case(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let bare = word.trim_end_matches('+');
        // Nearly every license is already spelled canonically: a binary search, before
        // the case-insensitive scan of ~700 identifiers.
        let canonical = spdx::license_id(bare).map(|l| l.name).or_else(|| {
            LICENSES
                .iter()
                .find(|l| l.name.eq_ignore_ascii_case(bare))
                .map(|l| l.name)
        });
        match canonical {
            Some(name) => {
                out.push_str(name);
                if word.ends_with('+') {
                    out.push('+');
                }
            }
            _ => out.push_str(word),
        }
        word.clear();
    };
    for c in raw.chars() {
        if c.is_whitespace() || c == '(' || c == ')' || c == '/' {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn classify(raw: Option<&str>) -> Declared {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Declared::Missing;
    };
    if raw.eq_ignore_ascii_case("UNLICENSED") {
        return Declared::Unlicensed;
    }
    let aliased = legacy_alias(raw).unwrap_or(raw);
    let attempts = [aliased.to_owned(), canonical_case(aliased)];
    let mut first_error = None;
    for attempt in &attempts {
        match Expression::parse_mode(attempt, ParseMode::LAX) {
            Ok(expression) => return Declared::Expression(Box::new(expression)),
            Err(e) => {
                first_error.get_or_insert(e.reason.to_string());
            }
        }
    }
    Declared::Unparsable(first_error.unwrap_or_default())
}

/// Whether the license check reads `raw` as an SPDX expression (legacy aliases and any
/// case included), for sources that must tell an expression from free text, such as
/// PyPI's `license` field, which often holds a whole license text.
pub(crate) fn is_spdx_expression(raw: &str) -> bool {
    matches!(classify(Some(raw)), Declared::Expression(_))
}

/// Parses config entries (validated at load time) into the keys they cover.
fn keys_of(entries: &[String]) -> Vec<LicenseKey> {
    let mut keys = Vec::new();
    for entry in entries {
        if let Declared::Expression(expression) = classify(Some(entry)) {
            keys.extend(
                expression
                    .requirements()
                    .map(|r| LicenseKey::of(&r.req.license)),
            );
        }
    }
    keys
}

/// `license-*` findings from the declared license; see the module docs.
pub struct LicenseCheck {
    config: LicenseConfig,
    allow: Vec<LicenseKey>,
    deny: Vec<LicenseKey>,
}

impl LicenseCheck {
    pub fn new(config: LicenseConfig) -> Self {
        let allow = keys_of(&config.allow);
        let deny = keys_of(&config.deny);
        LicenseCheck {
            config,
            allow,
            deny,
        }
    }

    fn finding(&self, code: Code, verdict: Verdict, message: String) -> Finding {
        // A legal problem, not a security one: known-bad licenses rank above unknown ones.
        let severity = match code {
            Code::LicenseDenied | Code::LicenseNotAllowed | Code::LicenseUnlicensed => {
                Severity::Medium
            }
            _ => Severity::Low,
        };
        Finding::new(code, severity, verdict, message)
    }

    fn judge(&self, raw: &str, expression: &Expression) -> Option<Finding> {
        let denied = |key: &LicenseKey| self.deny.contains(key);
        let satisfiable_undenied = expression.evaluate(|req| !choices(req).iter().all(denied));
        if !satisfiable_undenied {
            return Some(self.finding(
                Code::LicenseDenied,
                self.config.denied,
                format!("license `{}` is denied by policy", quote(raw)),
            ));
        }
        if self.allow.is_empty() {
            return None;
        }
        let satisfiable_allowed = expression.evaluate(|req| {
            choices(req)
                .iter()
                .any(|key| self.allow.contains(key) && !denied(key))
        });
        (!satisfiable_allowed).then(|| {
            self.finding(
                Code::LicenseNotAllowed,
                self.config.not_allowed,
                format!(
                    "license `{}` is not in the allowed list ({})",
                    quote(raw),
                    self.config.allow.join(", ")
                ),
            )
        })
    }
}

/// The declared license, cut short and on one line for a message.
fn quote(raw: &str) -> String {
    let one_line = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= QUOTE_MAX {
        one_line
    } else {
        let cut: String = one_line.chars().take(QUOTE_MAX).collect();
        format!("{cut}…")
    }
}

impl Check for LicenseCheck {
    fn name(&self) -> &'static str {
        checks::LICENSE
    }

    fn evaluate(&self, ctx: &PackageCtx<'_>, findings: &mut Vec<Finding>) {
        let Some(metadata) = ctx.metadata else {
            return;
        };
        let Some(raw) = metadata.license.as_deref() else {
            return;
        };
        let finding = match classify(Some(raw)) {
            Declared::Missing => Some(self.finding(
                Code::LicenseMissing,
                self.config.missing,
                "no license declared".to_owned(),
            )),
            Declared::Unlicensed => Some(self.finding(
                Code::LicenseUnlicensed,
                self.config.not_allowed,
                "declared `UNLICENSED`: proprietary, no rights granted".to_owned(),
            )),
            Declared::Unparsable(reason) => Some(self.finding(
                Code::LicenseUnparsable,
                self.config.unparsable,
                format!(
                    "license `{}` is not an SPDX expression ({reason})",
                    quote(raw)
                ),
            )),
            Declared::Expression(expression) => self.judge(raw, &expression),
        };
        findings.extend(finding);
    }
}
