//! Who judges the packages of `depfw check` and `depfw audit`: the policy built here from
//! the data directory, or — while `depfw serve` holds that directory's sled store — the
//! running server's own policy, asked through `POST /admin/api/evaluate` (issue #13).
//! Either way the same questions ([`Query`]) get the same kind of answers ([`Answer`]),
//! so the report and the printing are shared and the doors agree: what `check` and
//! `audit` say is what the proxy enforces, runtime overrides included.

use std::convert::Infallible;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::package::{Ecosystem, PackageName, Version};
use crate::policy::{Decision, PackageCtx, Policy, VersionMetadata};

/// The most queries one `POST /admin/api/evaluate` takes; the CLI sends larger audits in
/// batches of this size.
pub const MAX_BATCH: usize = 1000;

/// One package version to judge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    pub ecosystem: Ecosystem,
    /// As written (the lockfile's or the command line's); normalised by the evaluator.
    pub name: String,
    /// `None`: name-level checks only (`depfw check npm foo`).
    #[serde(default)]
    pub version: Option<String>,
    /// Registry or lockfile metadata (`--online`); `None` offline. The release history
    /// (`policy::signals`) does not travel: a server answers without it.
    #[serde(default)]
    pub metadata: Option<VersionMetadata>,
}

/// The policy's answer to one [`Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    #[serde(flatten)]
    pub decision: Decision,
    /// With `fix`: the lowest version the advisories name as fixed that the policy allows.
    #[serde(default)]
    pub upgrade_to: Option<String>,
}

/// A [`Query`]'s name and version as its sender already parsed them from the same
/// strings (`depfw audit` checks every locked package before asking). The local policy
/// judges these rather than parsing every name and version a second time; they are not
/// sent to a server, which parses what it receives.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub name: PackageName,
    /// `Some` exactly when the query's `version` is.
    pub version: Option<Version>,
}

/// Judges batches of packages, one [`Answer`] per [`Query`], in order.
pub trait Evaluator {
    type Error;
    /// `fix`: also look for an allowed fixed version (`upgrade_to`, for `audit`).
    fn evaluate(&self, queries: &[Query], fix: bool) -> Result<Vec<Answer>, Self::Error>;

    /// [`Evaluator::evaluate`], with `parsed[i]` the parsed form of `queries[i]` where
    /// the caller has one (missing or `None`: parsed here). An evaluator that sends the
    /// queries on has no use for them.
    fn evaluate_parsed(
        &self,
        queries: &[Query],
        parsed: &[Option<Parsed>],
        fix: bool,
    ) -> Result<Vec<Answer>, Self::Error> {
        let _ = parsed;
        self.evaluate(queries, fix)
    }
}

impl Evaluator for Policy {
    type Error = Infallible;
    fn evaluate(&self, queries: &[Query], fix: bool) -> Result<Vec<Answer>, Infallible> {
        self.evaluate_parsed(queries, &[], fix)
    }

    fn evaluate_parsed(
        &self,
        queries: &[Query],
        parsed: &[Option<Parsed>],
        fix: bool,
    ) -> Result<Vec<Answer>, Infallible> {
        let now = Utc::now();
        Ok(queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let parsed = parsed.get(i).and_then(Option::as_ref);
                answer_parsed(self, q, parsed, fix, now)
            })
            .map(|answer| match answer {
                Ok(answer) => answer,
                // The CLI sends only names and versions it parsed; an invalid one here
                // stays visible rather than passing.
                Err(why) => Answer {
                    decision: Decision {
                        verdict: crate::policy::Verdict::Warn,
                        findings: vec![crate::policy::Finding::new(
                            crate::diag::Code::InvalidName,
                            crate::policy::Severity::Info,
                            crate::policy::Verdict::Warn,
                            why,
                        )],
                    },
                    upgrade_to: None,
                },
            })
            .collect())
    }
}

/// `policy`'s answer to `query` at `now`; an error names an invalid name or version.
pub fn answer(
    policy: &Policy,
    query: &Query,
    fix: bool,
    now: DateTime<Utc>,
) -> Result<Answer, String> {
    answer_parsed(policy, query, None, fix, now)
}

/// [`answer`], judging `parsed` (the query's own name and version, parsed by the caller)
/// when given instead of parsing the query's strings.
fn answer_parsed(
    policy: &Policy,
    query: &Query,
    parsed: Option<&Parsed>,
    fix: bool,
    now: DateTime<Utc>,
) -> Result<Answer, String> {
    let parsed_here;
    let parsed = match parsed {
        Some(parsed) => parsed,
        None => {
            let name = PackageName::parse(query.ecosystem, &query.name)
                .map_err(|e| format!("{} {}: {e}", query.ecosystem, query.name))?;
            let version = query
                .version
                .as_deref()
                .map(|v| Version::parse(query.ecosystem, v))
                .transpose()
                .map_err(|e| format!("{} {}: {e}", query.ecosystem, query.name))?;
            parsed_here = Parsed { name, version };
            &parsed_here
        }
    };
    let Parsed { name, version } = parsed;
    let decision = policy.evaluate(&PackageCtx {
        name,
        version: version.as_ref(),
        metadata: query.metadata.as_ref(),
        now,
    });
    let upgrade_to = if fix {
        policy
            .allowed_fix(name, &decision.findings, now)
            .map(|v| v.to_string())
    } else {
        None
    };
    Ok(Answer {
        decision,
        upgrade_to,
    })
}

/// Why `policy` cannot judge any of `queries` (no advisory data for an ecosystem), if so.
pub fn undecidable(policy: &Policy, queries: &[Query]) -> Option<String> {
    queries
        .iter()
        .find_map(|q| policy.undecidable(q.ecosystem))
        .map(str::to_owned)
}

/// The answers of an evaluator that cannot fail.
pub fn infallible<T>(result: Result<T, Infallible>) -> T {
    match result {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsed_forms_get_the_answers_of_the_query_strings() {
        let engine = crate::engine::load(&crate::config::Config::default(), None).unwrap();
        let query = |ecosystem, name: &str, version: Option<&str>| Query {
            ecosystem,
            name: name.to_owned(),
            version: version.map(str::to_owned),
            metadata: None,
        };
        let queries = vec![
            query(Ecosystem::CratesIo, "time", Some("0.1.40")),
            query(Ecosystem::CratesIo, "Serde_JSON", Some("1.0.0-rc.1+x")),
            query(Ecosystem::CratesIo, "tokio", None),
            query(Ecosystem::Npm, "lodash", Some("4.17.4")),
            query(Ecosystem::PyPI, "Django", Some("2.0")),
        ];
        let parsed: Vec<Option<Parsed>> = queries
            .iter()
            .map(|q| {
                Some(Parsed {
                    name: PackageName::parse(q.ecosystem, &q.name).unwrap(),
                    version: q
                        .version
                        .as_deref()
                        .map(|v| Version::parse(q.ecosystem, v).unwrap()),
                })
            })
            .collect();
        let expected = infallible(Evaluator::evaluate(&engine.policy, &queries, true));
        assert!(expected.iter().any(|a| !a.decision.findings.is_empty()));
        let given = infallible(engine.policy.evaluate_parsed(&queries, &parsed, true));
        assert_eq!(given, expected);
        // Some or none given: the rest are parsed from the strings.
        let mut some = parsed;
        some[1] = None;
        some.truncate(3);
        let partly = infallible(engine.policy.evaluate_parsed(&queries, &some, true));
        assert_eq!(partly, expected);
    }

    #[test]
    fn a_query_travels_as_json_unchanged() {
        let query = Query {
            ecosystem: Ecosystem::Npm,
            name: "left-pad".into(),
            version: Some("1.3.0".into()),
            metadata: Some(VersionMetadata {
                license: Some("MIT".into()),
                has_install_scripts: Some(true),
                ..VersionMetadata::default()
            }),
        };
        let text = serde_json::to_string(&query).unwrap();
        assert_eq!(serde_json::from_str::<Query>(&text).unwrap(), query);
        let bare: Query = serde_json::from_str(r#"{"ecosystem":"npm","name":"left-pad"}"#).unwrap();
        assert_eq!(bare.version, None);
    }
}
