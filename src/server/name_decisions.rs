//! The name-level decision of every metadata request ([`super::pipeline::Gate::check_name`]),
//! kept per policy revision and requester, so that a cached metadata answer does not
//! evaluate the name against every check again (issue #17: an eighth of a cached answer's
//! CPU, most of it the advisory index).
//!
//! Kept only where it is the same decision later: at the name level (no version, no
//! metadata) no check reads the clock (the typosquat check's age, the reputation and
//! signals checks need metadata; the content check a version), so the clock reaches the
//! decision through the overrides alone, an entry with an expiry. A name some expiring
//! entry names is evaluated on every request. Everything else a name-level decision
//! reads is the policy, which a new revision replaces (config, feeds, overrides), and
//! the requester: the agent's name (its own overrides, `policy.mode` for it), preset and
//! `strict-warn`, all part of the key.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use super::render_cache::Keyed;
use super::RequestCtx;
use crate::package::{Ecosystem, PackageName};
use crate::policy::{Decision, Policy};

/// Name-level decisions of one policy revision at a time.
pub(crate) struct NameDecisions {
    decided: Keyed<Decision>,
    /// The names an override with an expiry names, under `.0`'s revision.
    timed: Mutex<Option<(String, TimedNames)>>,
}

/// Names (ecosystem and comparison key) whose decision the clock can change.
type TimedNames = Arc<HashSet<(Ecosystem, String)>>;

/// The bytes the kept decisions may hold, besides the bound on entries.
const DECISION_BYTES: usize = 16 << 20;

impl NameDecisions {
    /// At most `entries` decisions.
    pub(crate) fn new(entries: usize) -> NameDecisions {
        NameDecisions {
            decided: Keyed::new(entries, DECISION_BYTES, None),
            timed: Mutex::new(None),
        }
    }

    /// `name`'s decision for this request, as `decide` makes it: kept from an earlier
    /// request with the same requester under the same policy revision, unless the clock
    /// can change it (see the module docs).
    pub(crate) fn decide(
        &self,
        ctx: &RequestCtx,
        policy: &Policy,
        name: &PackageName,
        decide: impl FnOnce() -> Decision,
    ) -> Arc<Decision> {
        let timed = self.timed(policy);
        // Most policies have no expiring override: no key made for the lookup then.
        if !timed.is_empty() && timed.contains(&(name.ecosystem(), name.key().to_owned())) {
            return Arc::new(decide());
        }
        let key = key(ctx, name);
        let revision = policy.revision();
        if let Some(kept) = self.decided.get(&key, 0, revision) {
            return kept;
        }
        let decision = Arc::new(decide());
        let weight = key.len() + heap_size(&decision);
        self.decided
            .put(&key, 0, revision, weight, Arc::clone(&decision));
        decision
    }

    /// The names expiring overrides name under `policy`'s revision, found once per revision.
    fn timed(&self, policy: &Policy) -> TimedNames {
        let mut timed = self.timed.lock().unwrap_or_else(PoisonError::into_inner);
        match &*timed {
            Some((revision, names)) if revision == policy.revision() => Arc::clone(names),
            _ => {
                let names: HashSet<_> = policy
                    .overrides()
                    .entries()
                    .iter()
                    .filter(|e| e.expires.is_some())
                    .map(|e| (e.name.ecosystem(), e.name.key().to_owned()))
                    .collect();
                let names = Arc::new(names);
                *timed = Some((policy.revision().to_owned(), Arc::clone(&names)));
                names
            }
        }
    }
}

/// The requester and the name: `<ecosystem> <name>` for anonymous requests, then the
/// agent's name, preset and `strict-warn` for an agent's.
fn key(ctx: &RequestCtx, name: &PackageName) -> String {
    let mut key = String::with_capacity(64);
    key.push_str(name.ecosystem().osv_name());
    key.push(' ');
    key.push_str(name.as_str());
    if let Some(agent) = &ctx.agent {
        // Writing to a `String` does not fail.
        let _ = write!(
            key,
            "\n{}\n{:?} {:?}",
            agent.name, agent.preset, agent.strict_warn
        );
    }
    key
}

/// What a kept decision weighs against [`DECISION_BYTES`].
fn heap_size(decision: &Decision) -> usize {
    std::mem::size_of::<Decision>()
        + decision
            .findings
            .iter()
            .map(|f| std::mem::size_of_val(f) + f.message.len())
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::PolicyPreset;
    use crate::diag::{Code, Finding, Severity};
    use crate::policy::overrides::{OverrideEntry, OverrideKind, Overrides, VersionScope};
    use crate::policy::{Check, PackageCtx, Verdict};
    use crate::server::agent::{AgentCtx, TokenFrom};
    use crate::store::decisions::ClientInfo;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Warns about every name, counting its evaluations.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl Check for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn evaluate(&self, ctx: &PackageCtx<'_>, findings: &mut Vec<Finding>) {
            self.0.fetch_add(1, Ordering::Relaxed);
            findings.push(Finding::new(
                Code::LookAlikeName,
                Severity::Low,
                Verdict::Warn,
                format!("{} resembles something", ctx.name),
            ));
        }
    }

    fn ctx(agent: Option<&str>) -> RequestCtx {
        RequestCtx {
            request_id: "r-1".into(),
            client: ClientInfo::default(),
            agent: agent.map(|name| AgentCtx {
                name: name.into(),
                preset: PolicyPreset::Default,
                strict_warn: Verdict::Quarantine,
            }),
            public_base: "http://depfw.test".into(),
            token_from: TokenFrom::Nothing,
            peer: None,
        }
    }

    fn entry(name: &str, kind: OverrideKind, agent: Option<&str>, expires: bool) -> OverrideEntry {
        OverrideEntry {
            kind,
            name: PackageName::parse(Ecosystem::Npm, name).unwrap(),
            versions: VersionScope::Any,
            reason: "test".into(),
            expires: expires.then(|| chrono::Utc::now() + chrono::Duration::days(1)),
            created_by: "test".into(),
            agent: agent.map(str::to_owned),
        }
    }

    fn policy(check: &Arc<Counting>, entries: Vec<OverrideEntry>, revision: &str) -> Policy {
        Policy::new(
            vec![Arc::clone(check) as Arc<dyn Check>],
            Arc::new(Overrides::new(entries)),
            revision.into(),
        )
    }

    fn npm(name: &str) -> PackageName {
        PackageName::parse(Ecosystem::Npm, name).unwrap()
    }

    /// What `Gate::check_name` decides, uncached.
    fn uncached(ctx: &RequestCtx, policy: &Policy, name: &PackageName) -> Decision {
        crate::server::verdicts::decide_name(ctx, policy, name)
    }

    #[test]
    fn a_kept_decision_is_the_decision_and_is_not_evaluated_again() {
        let check = Arc::new(Counting::default());
        let entries = vec![
            entry("lodash", OverrideKind::Deny, None, false),
            entry("react", OverrideKind::Allow, Some("bot"), false),
        ];
        let policy = policy(&check, entries, "r1");
        let names = NameDecisions::new(100);
        for requester in [None, Some("bot"), Some("other")] {
            let ctx = ctx(requester);
            for name in ["lodash", "react", "left-pad"] {
                let name = npm(name);
                let expected = uncached(&ctx, &policy, &name);
                for _ in 0..3 {
                    let kept =
                        names.decide(&ctx, &policy, &name, || uncached(&ctx, &policy, &name));
                    assert_eq!(*kept, expected, "{requester:?} {name}");
                }
            }
        }
        // Nine (requester, name) pairs: one evaluation in `decide` each, besides the nine
        // uncached ones of the test itself.
        assert_eq!(check.0.load(Ordering::Relaxed), 18);
        // An agent's own override applies to it alone.
        let bot = names.decide(&ctx(Some("bot")), &policy, &npm("react"), || unreachable!());
        let anonymous = names.decide(&ctx(None), &policy, &npm("react"), || unreachable!());
        assert_eq!(bot.verdict, Verdict::Allow);
        assert_eq!(anonymous.verdict, Verdict::Warn);
    }

    #[test]
    fn a_name_an_expiring_override_names_is_evaluated_every_time() {
        let check = Arc::new(Counting::default());
        let policy = policy(
            &check,
            vec![entry("lodash", OverrideKind::Allow, None, true)],
            "r1",
        );
        let names = NameDecisions::new(100);
        let ctx = ctx(None);
        for _ in 0..3 {
            names.decide(&ctx, &policy, &npm("lodash"), || {
                uncached(&ctx, &policy, &npm("lodash"))
            });
            names.decide(&ctx, &policy, &npm("react"), || {
                uncached(&ctx, &policy, &npm("react"))
            });
        }
        assert_eq!(check.0.load(Ordering::Relaxed), 3 + 1);
    }

    #[test]
    fn a_new_policy_revision_decides_again() {
        let check = Arc::new(Counting::default());
        let names = NameDecisions::new(100);
        let ctx = ctx(None);
        let first = policy(&check, Vec::new(), "r1");
        let decided = names.decide(&ctx, &first, &npm("lodash"), || {
            uncached(&ctx, &first, &npm("lodash"))
        });
        assert_eq!(decided.verdict, Verdict::Warn);
        let denied = policy(
            &check,
            vec![entry("lodash", OverrideKind::Deny, None, false)],
            "r2",
        );
        let decided = names.decide(&ctx, &denied, &npm("lodash"), || {
            uncached(&ctx, &denied, &npm("lodash"))
        });
        assert_eq!(decided.verdict, Verdict::Deny);
        assert_eq!(check.0.load(Ordering::Relaxed), 2);
    }
}
