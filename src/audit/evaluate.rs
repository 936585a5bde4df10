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
#[derive(Debug, Clone, Copy)]
pub struct Parsed<'a> {
    pub name: &'a PackageName,
    /// `Some` exactly when the query's `version` is.
    pub version: Option<&'a Version>,
}

/// A [`Query`] borrowed from where its strings already are (the lockfile's packages), with
/// their parsed forms when the sender has them: `depfw audit` asks about hundreds of
/// packages, and copying every name, version and parsed name into owned queries only for
/// the local policy to read them was ~6% of an audit of a 400-crate Cargo.lock. An
/// evaluator that sends the queries on makes the owned [`Query`]s ([`QueryRef::to_query`]).
#[derive(Debug, Clone, Copy)]
pub struct QueryRef<'a> {
    pub ecosystem: Ecosystem,
    pub name: &'a str,
    pub version: Option<&'a str>,
    pub metadata: Option<&'a VersionMetadata>,
    /// `None`: parsed from `name` and `version` by the local policy.
    pub parsed: Option<Parsed<'a>>,
}

impl<'a> QueryRef<'a> {
    /// `query` borrowed, without parsed forms.
    pub fn of(query: &'a Query) -> Self {
        QueryRef {
            ecosystem: query.ecosystem,
            name: &query.name,
            version: query.version.as_deref(),
            metadata: query.metadata.as_ref(),
            parsed: None,
        }
    }

    /// The owned query, as sent to a server.
    pub fn to_query(&self) -> Query {
        Query {
            ecosystem: self.ecosystem,
            name: self.name.to_owned(),
            version: self.version.map(str::to_owned),
            metadata: self.metadata.cloned(),
        }
    }
}

/// Judges batches of packages, one [`Answer`] per [`Query`], in order.
pub trait Evaluator {
    type Error;
    /// `fix`: also look for an allowed fixed version (`upgrade_to`, for `audit`).
    fn evaluate(&self, queries: &[Query], fix: bool) -> Result<Vec<Answer>, Self::Error>;

    /// [`Evaluator::evaluate`] of borrowed queries, judged from their parsed forms where
    /// they carry them. An evaluator that sends the queries on has no use for those: by
    /// default the owned queries go to [`Evaluator::evaluate`].
    fn evaluate_refs(
        &self,
        queries: &[QueryRef<'_>],
        fix: bool,
    ) -> Result<Vec<Answer>, Self::Error> {
        let owned: Vec<Query> = queries.iter().map(QueryRef::to_query).collect();
        self.evaluate(&owned, fix)
    }
}

impl Evaluator for Policy {
    type Error = Infallible;
    fn evaluate(&self, queries: &[Query], fix: bool) -> Result<Vec<Answer>, Infallible> {
        let now = Utc::now();
        Ok(queries
            .iter()
            .map(|q| answer_or_invalid(self, &QueryRef::of(q), fix, now))
            .collect())
    }

    fn evaluate_refs(
        &self,
        queries: &[QueryRef<'_>],
        fix: bool,
    ) -> Result<Vec<Answer>, Infallible> {
        let now = Utc::now();
        Ok(queries
            .iter()
            .map(|q| answer_or_invalid(self, q, fix, now))
            .collect())
    }
}

/// [`answer_ref`], with an invalid name or version as a warning finding: the CLI sends
/// only names and versions it parsed; an invalid one here stays visible rather than
/// passing.
fn answer_or_invalid(
    policy: &Policy,
    query: &QueryRef<'_>,
    fix: bool,
    now: DateTime<Utc>,
) -> Answer {
    match answer_ref(policy, query, fix, now) {
        Ok(answer) => answer,
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
    }
}

/// `policy`'s answer to `query` at `now`; an error names an invalid name or version.
pub fn answer(
    policy: &Policy,
    query: &Query,
    fix: bool,
    now: DateTime<Utc>,
) -> Result<Answer, String> {
    answer_ref(policy, &QueryRef::of(query), fix, now)
}

/// [`answer`] of a borrowed query, judging its parsed forms when it carries them instead
/// of parsing its strings.
fn answer_ref(
    policy: &Policy,
    query: &QueryRef<'_>,
    fix: bool,
    now: DateTime<Utc>,
) -> Result<Answer, String> {
    let (name_here, version_here);
    let Parsed { name, version } = match query.parsed {
        Some(parsed) => parsed,
        None => {
            name_here = PackageName::parse(query.ecosystem, query.name)
                .map_err(|e| format!("{} {}: {e}", query.ecosystem, query.name))?;
            version_here = query
                .version
                .map(|v| Version::parse(query.ecosystem, v))
                .transpose()
                .map_err(|e| format!("{} {}: {e}", query.ecosystem, query.name))?;
            Parsed {
                name: &name_here,
                version: version_here.as_ref(),
            }
        }
    };
    let decision = policy.evaluate(&PackageCtx {
        name,
        version,
        metadata: query.metadata,
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
        let parsed: Vec<(PackageName, Option<Version>)> = queries
            .iter()
            .map(|q| {
                (
                    PackageName::parse(q.ecosystem, &q.name).unwrap(),
                    q.version
                        .as_deref()
                        .map(|v| Version::parse(q.ecosystem, v).unwrap()),
                )
            })
            .collect();
        let refs: Vec<QueryRef<'_>> = queries
            .iter()
            .zip(&parsed)
            .map(|(q, (name, version))| QueryRef {
                parsed: Some(Parsed {
                    name,
                    version: version.as_ref(),
                }),
                ..QueryRef::of(q)
            })
            .collect();
        let expected = infallible(Evaluator::evaluate(&engine.policy, &queries, true));
        assert!(expected.iter().any(|a| !a.decision.findings.is_empty()));
        let given = infallible(engine.policy.evaluate_refs(&refs, true));
        assert_eq!(given, expected);
        // Some given, some not: the rest are parsed from the strings.
        let mut some = refs.clone();
        some[1].parsed = None;
        let partly = infallible(engine.policy.evaluate_refs(&some, true));
        assert_eq!(partly, expected);
        // An evaluator without its own `evaluate_refs` gets the owned queries.
        struct Owned<'p>(&'p Policy);
        impl Evaluator for Owned<'_> {
            type Error = Infallible;
            fn evaluate(&self, queries: &[Query], fix: bool) -> Result<Vec<Answer>, Infallible> {
                Evaluator::evaluate(self.0, queries, fix)
            }
        }
        assert_eq!(
            infallible(Owned(&engine.policy).evaluate_refs(&refs, true)),
            expected
        );
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
