//! When `depfw serve` refuses a package by its name alone, and when the name must wait for
//! the package's metadata.
//!
//! A metadata request is checked by name before anything is fetched (deny-listed and
//! internal names are never looked up upstream). A look-alike name is different: the
//! typosquat check holds it (`possible-typosquat`) only when the package is young or its
//! age unknown, and only warns (`look-alike-name`) when it is established, which is what
//! `depfw check --online` and `depfw audit --online` say too. So a refusal that only the
//! look-alike makes waits ([`waits_for_age`]); once the document is parsed the name is
//! judged again with the package's first release ([`package_metadata`]) and refused then if
//! still held: a young look-alike, or one whose metadata gives no publish time (fail
//! closed).

use chrono::Utc;

use super::{agent, RequestCtx};
use crate::diag::Code;
use crate::package::PackageName;
use crate::policy::{Decision, PackageCtx, Policy, VersionMetadata};
use crate::registry::VersionRecord;

/// Whether a name-level decision is refused only by `possible-typosquat`, which the
/// package's age may turn into a warning.
pub(crate) fn waits_for_age(decision: &Decision) -> bool {
    let mut refusing = decision
        .findings
        .iter()
        .filter(|f| !f.verdict.is_servable())
        .peekable();
    refusing.peek().is_some() && refusing.all(|f| f.code == Code::PossibleTyposquat)
}

/// Whether a name-level decision made with the package's metadata holds the name as a
/// look-alike (then the whole document is refused by name).
pub(crate) fn held_as_look_alike(decision: &Decision) -> bool {
    !decision.verdict.is_servable()
        && decision
            .findings
            .iter()
            .any(|f| f.code == Code::PossibleTyposquat && !f.verdict.is_servable())
}

/// What a name is judged with once its document is read: the package's first release, or
/// `None` when the document gives no publish time (the age stays unknown).
pub(crate) fn package_metadata(records: &[VersionRecord]) -> Option<VersionMetadata> {
    let created = crate::registry::first_published(records)?;
    Some(VersionMetadata {
        package_created: Some(created),
        ..VersionMetadata::default()
    })
}

/// The name-level decision with the package's age from its document's `records` (none:
/// upstream has no such package, so the age is unknown), under the agent's preset.
pub(crate) fn decide_with_age(
    ctx: &RequestCtx,
    policy: &Policy,
    name: &PackageName,
    records: &[VersionRecord],
) -> Decision {
    let metadata = package_metadata(records);
    let agent = ctx.agent.as_ref().map(|a| a.name.as_str());
    agent::decide(
        ctx,
        policy,
        policy.evaluate_for(
            &PackageCtx {
                name,
                version: None,
                metadata: metadata.as_ref(),
                now: Utc::now(),
            },
            agent,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Finding, Severity, Verdict};

    fn decision(findings: &[(Code, Verdict)]) -> Decision {
        let findings: Vec<Finding> = findings
            .iter()
            .map(|(c, v)| Finding::new(c.clone(), Severity::Low, *v, String::new()))
            .collect();
        let verdict = findings
            .iter()
            .map(|f| f.verdict)
            .max()
            .unwrap_or(Verdict::Allow);
        Decision { verdict, findings }
    }

    #[test]
    fn only_a_look_alike_refusal_waits() {
        assert!(waits_for_age(&decision(&[(
            Code::PossibleTyposquat,
            Verdict::Quarantine
        )])));
        assert!(!waits_for_age(&decision(&[])));
        assert!(!waits_for_age(&decision(&[
            (Code::PossibleTyposquat, Verdict::Quarantine),
            (Code::DenyListed, Verdict::Deny)
        ])));
        assert!(!waits_for_age(&decision(&[(
            Code::InternalName,
            Verdict::Deny
        )])));
        assert!(held_as_look_alike(&decision(&[(
            Code::PossibleTyposquat,
            Verdict::Quarantine
        )])));
        assert!(!held_as_look_alike(&decision(&[(
            Code::LookAlikeName,
            Verdict::Warn
        )])));
    }
}
