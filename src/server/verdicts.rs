//! What the policy says about the versions a request touches, and how a refusal reads.
//!
//! Every metadata response and every artifact download of `depfw serve` is decided here:
//! [`filter_versions`] over a whole document (once per cold rendering; [`super::pipeline`]
//! keeps the result for npm's version manifests), [`decide_version`] for the one
//! version a client asks for by name (tarball, file, `.crate`, npm version manifest). The
//! ecosystems cannot drift apart because none of them decides anything itself.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::error::{push_visible_ascii, ProxyError};
use super::records::record;
use super::{agent, AppState, RequestCtx};
use crate::config::RefusedVersions;
use crate::diag::{Code, Finding, Severity};
use crate::package::{PackageName, Version};
use crate::policy::{Decision, PackageCtx, Policy, Verdict, VersionMetadata};
use crate::registry::heap::HeapSize as _;
use crate::registry::{Disposition, Kept, VersionRecord};
use crate::store::decisions::{DecisionRecord, HiddenVersion, RecordKind};

/// The client-facing reason for a refusal; for a look-alike name, the name it imitates.
pub(crate) fn refusal(package: &str, decision: &Decision) -> String {
    let mut text = refusal_text(package, decision.verdict, &decision.summary());
    if let Some(meant) = imitated(&decision.findings) {
        text.push_str(&format!("; did you mean `{meant}`?"));
    }
    text
}

/// What a refused client is told after the reason and request id: how to ask a human,
/// never a way around depfw.
pub(crate) const ASK_A_HUMAN: &str = "To ask for an exception: call request_approval \
     (depfw mcp) with a justification, or ask a depfw admin to review this request id; do \
     not fetch it another way";

/// A refusal as the 403 body says it: the reason, the request id, how to ask a human.
pub(crate) fn refused(package: &str, decision: &Decision, request_id: &str) -> String {
    format!(
        "{} (request id {request_id}). {ASK_A_HUMAN}",
        refusal(package, decision)
    )
}

/// Whether a refusal message is the policy's verdict on a package (built by [`refused`]),
/// not a suspension or another refusal: only then is an alternative worth naming.
pub(crate) fn is_policy_refusal(message: &str) -> bool {
    message.ends_with(ASK_A_HUMAN)
}

/// The name a typosquat finding says is imitated: the second backticked name of
/// `` `lodahs` looks like a typosquat of `lodash` (…) `` (the typosquat check's wording).
pub(crate) fn imitated(findings: &[Finding]) -> Option<String> {
    findings
        .iter()
        .filter(|f| matches!(f.code, Code::PossibleTyposquat | Code::LookAlikeName))
        .find_map(|f| {
            let mut parts = f.message.split('`');
            let (_, _, _, target) = (parts.next(), parts.next(), parts.next(), parts.next()?);
            (!target.is_empty()).then(|| target.to_owned())
        })
}

/// The safe alternative to a refused version: the newest allowed release of its major
/// version, else the newest allowed release (`None`: nothing is allowed).
pub(crate) fn nearest_allowed(
    records: &[VersionRecord],
    kept: &Kept,
    refused: Option<&Version>,
) -> Option<String> {
    let major = |v: &Version| match v {
        Version::Semver(v) => Some(v.major),
        Version::Pep440(v) => v.release().first().copied(),
    };
    let releases = records
        .iter()
        .filter_map(|r| r.version.as_ref().map(|v| (v, r)))
        .filter(|(v, r)| !v.is_prerelease() && kept.contains(&r.version_text));
    let best = |same_major: bool| {
        releases
            .clone()
            .filter(|(v, _)| !same_major || refused.is_some_and(|p| major(v) == major(p)))
            .fold(
                None,
                |best: Option<(&Version, &VersionRecord)>, (v, r)| match best {
                    Some((b, _)) if b >= v => best,
                    _ => Some((v, r)),
                },
            )
    };
    best(true)
        .or_else(|| best(false))
        .map(|(_, r)| r.version_text.clone())
}

fn refusal_text(package: &str, verdict: Verdict, summary: &str) -> String {
    match verdict {
        Verdict::Quarantine => format!("{package} is quarantined, awaiting approval: {summary}"),
        _ => format!("{package} is denied by policy: {summary}"),
    }
}

/// The longest notice of hidden versions ([`Filtered::notice`]), in bytes: a header line
/// the client prints, so a package with hundreds of refused versions does not flood it.
const NOTICE_MAX: usize = 1000;

/// Which versions a metadata response keeps.
pub(crate) struct Filtered {
    pub kept: Kept,
    pub hidden: Vec<HiddenVersion>,
    /// The hidden version a client would otherwise have resolved to, with why it is held:
    /// the newest quarantined release above the newest served release. What a metadata
    /// response puts in the approval queue ([`super::approvals`]).
    pub wanted: Option<(Version, Vec<Finding>)>,
    /// Kept only because the policy is not enforced for this request (monitor mode): what
    /// enforce mode would have hidden, for the decision record.
    pub monitored: Vec<HiddenVersion>,
}

impl Filtered {
    /// Whether a metadata response rendered from `other` would be this one's: the same
    /// versions kept and the same ones hidden, with the same verdicts and reasons (what
    /// [`Filtered::notice`] and [`Filtered::dispositions`] are made of). What an expired
    /// rendering is checked with ([`super::render_cache::Rendered::renders_like`]).
    pub(crate) fn renders_like(&self, other: &Filtered) -> bool {
        self.kept == other.kept && self.hidden == other.hidden
    }

    /// The heap bytes held, its weight in the evaluation cache.
    pub(crate) fn heap_size(&self) -> usize {
        let size = |list: &Vec<HiddenVersion>| {
            list.capacity() * std::mem::size_of::<HiddenVersion>()
                + list
                    .iter()
                    .map(|h| h.version.capacity() + h.reason.capacity())
                    .sum::<usize>()
        };
        let wanted = self.wanted.as_ref().map_or(0, |(_, findings)| {
            findings.capacity() * std::mem::size_of::<Finding>()
                + findings.iter().map(|f| f.message.capacity()).sum::<usize>()
        });
        std::mem::size_of::<Filtered>()
            + self.kept.heap_size()
            + size(&self.hidden)
            + size(&self.monitored)
            + wanted
    }

    /// The versions this evaluation hid and why, as one line of visible ASCII for the
    /// protocol's notice header ([`crate::registry::Protocol::NOTICE_HEADER`]): `depfw: not
    /// served: is-odd@3.0.1 is denied by policy: …; …`, the metadata's last versions first
    /// (npm lists the oldest first), cut at [`NOTICE_MAX`] bytes. It is what a client that
    /// finds no matching version can print instead of a bare "no matching version".
    /// `None` when nothing was hidden.
    pub(crate) fn notice(&self, name: &PackageName) -> Option<String> {
        if self.hidden.is_empty() {
            return None;
        }
        let mut text = String::from("depfw: not served: ");
        for (i, h) in self.hidden.iter().rev().enumerate() {
            if text.len() >= NOTICE_MAX {
                text.push_str(&format!("; and {} more", self.hidden.len() - i));
                break;
            }
            if i > 0 {
                text.push_str("; ");
            }
            let spec = format!("{name}@{}", h.version);
            let reason = refusal_text(&spec, h.verdict, &h.reason);
            push_visible_ascii(&mut text, &reason, NOTICE_MAX);
        }
        Some(text)
    }

    /// What cargo, PyPI and npm metadata do with each version under `server.refused-versions`:
    /// kept, removed, or yanked with the reason the artifact gate would give
    /// (`depfw: idna@3.10 is denied by policy: …`).
    pub(crate) fn dispositions(
        &self,
        mode: RefusedVersions,
        name: &PackageName,
    ) -> impl Fn(&str) -> Disposition + '_ {
        let yanked: HashMap<&str, String> = match mode {
            RefusedVersions::Remove => HashMap::new(),
            RefusedVersions::Yank => self
                .hidden
                .iter()
                .map(|h| {
                    let spec = format!("{name}@{}", h.version);
                    let reason = refusal_text(&spec, h.verdict, &h.reason);
                    (h.version.as_str(), format!("depfw: {reason}"))
                })
                .collect(),
        };
        move |version: &str| {
            if self.kept.contains(version) {
                Disposition::Keep
            } else if let Some(reason) = yanked.get(version) {
                Disposition::Yank(reason.clone())
            } else {
                Disposition::Remove
            }
        }
    }
}

/// A version the registry lists but depfw cannot parse: no check can evaluate it, so it is
/// refused (fail closed).
fn unparsable_version() -> Decision {
    let finding = Finding::new(
        Code::UnparsableVersion,
        Severity::Info,
        Verdict::Deny,
        "depfw cannot evaluate this version".to_owned(),
    );
    Decision {
        verdict: finding.verdict,
        findings: vec![finding],
    }
}

/// The policy's decision for the requesting agent (its own overrides, its preset, the
/// policy's mode for it).
fn evaluate(
    ctx: &RequestCtx,
    policy: &Policy,
    name: &PackageName,
    version: Option<(&Version, &VersionMetadata)>,
    now: DateTime<Utc>,
) -> Decision {
    let agent = ctx.agent.as_ref().map(|a| a.name.as_str());
    agent::decide(
        ctx,
        policy,
        policy.evaluate_for(
            &PackageCtx {
                name,
                version: version.map(|v| v.0),
                metadata: version.map(|v| v.1),
                now,
            },
            agent,
        ),
    )
}

/// Name-level checks (typosquats, deny-listed names) before anything is fetched: the
/// decision, to be recorded and refused by the caller when it is not servable.
pub(crate) fn decide_name(ctx: &RequestCtx, policy: &Policy, name: &PackageName) -> Decision {
    evaluate(ctx, policy, name, None, Utc::now())
}

/// One listed version's decision under the requesting agent's preset (an agent's
/// `check_packages`, [`super::agent_api`]): the evaluation its download would get.
pub(crate) fn decide_listed(
    ctx: &RequestCtx,
    policy: &Policy,
    name: &PackageName,
    version: &Version,
    metadata: &VersionMetadata,
) -> Decision {
    evaluate(ctx, policy, name, Some((version, metadata)), Utc::now())
}

/// Evaluates every version under the requesting agent's preset; unparsable versions are
/// hidden (fail closed). Of the hidden quarantined versions only one is remembered for the
/// approval queue ([`Filtered::wanted`]): the others wait for an artifact request or a
/// `request_approval` (someone really wanting that version).
pub(crate) fn filter_versions(
    ctx: &RequestCtx,
    policy: &Policy,
    name: &PackageName,
    records: &[VersionRecord],
) -> Filtered {
    let now = Utc::now();
    let mut kept = Kept::new();
    let mut hidden = Vec::new();
    let mut newest_kept: Option<&Version> = None;
    let mut wanted: Option<(Version, Vec<Finding>)> = None;
    let mut monitored = Vec::new();
    for r in records {
        let Some(version) = &r.version else {
            let decision = unparsable_version();
            hidden.push(HiddenVersion {
                version: r.version_text.clone(),
                verdict: decision.verdict,
                reason: decision.summary(),
            });
            continue;
        };
        let decision = evaluate(ctx, policy, name, Some((version, &r.metadata)), now);
        let release = !version.is_prerelease();
        if decision.verdict.is_servable() {
            if let Some(verdict) = decision.would_refuse() {
                monitored.push(HiddenVersion {
                    version: r.version_text.clone(),
                    verdict,
                    reason: decision.summary(),
                });
            }
            kept.insert(r.version_text.clone());
            if release && newest_kept.is_none_or(|k| version > k) {
                newest_kept = Some(version);
            }
        } else {
            if release
                && decision.verdict == Verdict::Quarantine
                && wanted.as_ref().is_none_or(|(w, _)| version > w)
            {
                wanted = Some((version.clone(), decision.findings.clone()));
            }
            hidden.push(HiddenVersion {
                version: r.version_text.clone(),
                verdict: decision.verdict,
                reason: decision.summary(),
            });
        }
    }
    let wanted = wanted.filter(|(w, _)| newest_kept.is_none_or(|k| w > k));
    Filtered {
        kept,
        hidden,
        wanted,
        monitored,
    }
}

/// What the gate does with a version the policy refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnRefusal {
    /// 403 with the reason (and a quarantine hold): every installable artifact.
    Refuse,
    /// Served (verified, recorded as `served-yanked-metadata`), no hold: only the PEP 658
    /// core metadata of a release that `server.refused-versions = "yank"` lists as yanked.
    /// It is metadata, not code, and pip and uv need it to finish resolving an `==` pin,
    /// which is when they print the yank reason; the wheel itself is then refused.
    ServeYankedMetadata,
}

/// Evaluates one version a client asked for by name and version. A refusal (with
/// [`OnRefusal::Refuse`]) is recorded durably, a quarantined version is held for review,
/// and the client gets the 403 with the reason and request id. Otherwise returns the
/// record (outcome still "refused") for the caller to complete once it has served.
pub(crate) fn decide_version(
    state: &AppState,
    ctx: &RequestCtx,
    policy: &Policy,
    kind: RecordKind,
    name: &PackageName,
    version_record: &VersionRecord,
    on_refusal: OnRefusal,
) -> Result<DecisionRecord, ProxyError> {
    let spec = format!("{name}@{}", version_record.version_text);
    let Some(version) = &version_record.version else {
        return Err(ProxyError::Refused(refusal(&spec, &unparsable_version())));
    };
    agent::observe_package(state, ctx, name)?;
    let now = Utc::now();
    let metadata = &version_record.metadata;
    let decision = evaluate(ctx, policy, name, Some((version, metadata)), now);
    let mut rec = record(
        ctx,
        kind,
        name,
        Some(&version_record.version_text),
        &decision,
        "refused",
    );
    if !decision.verdict.is_servable() && on_refusal == OnRefusal::Refuse {
        super::blocking(|| state.decisions().append_durable(&mut rec))?;
        if decision.verdict == Verdict::Quarantine {
            let who = agent::requester(ctx);
            let id = state
                .quarantine()
                .hold(
                    name,
                    version,
                    &who,
                    decision.findings.clone(),
                    &ctx.request_id,
                    now,
                )
                .map_err(|e| ProxyError::Internal(e.into()))?;
            state.approvals().announce(id, true);
        }
        let refusal = ProxyError::Refused(refused(&spec, &decision, &ctx.request_id));
        return Err(agent::refused(state, ctx, refusal));
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::Ecosystem;

    fn hidden(n: usize) -> Filtered {
        Filtered {
            kept: Kept::default(),
            hidden: (0..n)
                .map(|i| HiddenVersion {
                    version: format!("1.0.{i}"),
                    verdict: if i % 2 == 0 {
                        Verdict::Deny
                    } else {
                        Verdict::Quarantine
                    },
                    reason: "deny-listed: “listed”\nhere".to_owned(),
                })
                .collect(),
            wanted: None,
            monitored: Vec::new(),
        }
    }

    #[test]
    fn the_notice_lists_hidden_versions_last_first_in_one_bounded_ascii_line() {
        let name = PackageName::parse(Ecosystem::Npm, "is-odd").unwrap();
        assert_eq!(hidden(0).notice(&name), None);
        assert_eq!(
            hidden(2).notice(&name).unwrap(),
            "depfw: not served: is-odd@1.0.1 is quarantined, awaiting approval: deny-listed: \
             ?listed? here; is-odd@1.0.0 is denied by policy: deny-listed: ?listed? here"
        );
        let many = hidden(10_000).notice(&name).unwrap();
        assert!(many.len() < NOTICE_MAX + 200, "{}", many.len());
        assert!(many.ends_with(" more"), "{many}");
        assert!(many.bytes().all(|b| (b' '..=b'~').contains(&b)));
    }
}
