//! The release signals beyond npm (PyPI PEP 740 provenance through the project-page
//! parser) and the validation of `[policy.signals]` and `[policy.internal-names]`. The npm
//! shapes are tested where the packument is parsed (`registry::npm`'s `signal_tests`) and
//! through the proxy (`tests/proxy/signals.rs`).

use chrono::Utc;
use depfw::config::Config;
use depfw::package::{Ecosystem, PackageName};
use depfw::policy::signals::SignalsCheck;
use depfw::policy::{Check, PackageCtx};
use depfw::registry::pypi::parse_project_page;
use serde_json::json;
use url::Url;

/// A PEP 691 page: one wheel per release, uploaded at `time`, with PEP 740 provenance
/// when `attested`.
fn page(name: &str, releases: &[(&str, &str, bool)]) -> Vec<u8> {
    let files: Vec<_> = releases
        .iter()
        .map(|(v, time, attested)| {
            let file = format!("{}-{v}-py3-none-any.whl", name.replace('-', "_"));
            let mut f = json!({
                "filename": file,
                "url": format!("https://files.pythonhosted.org/packages/ab/cd/{file}"),
                "hashes": {"sha256": "9c82504cb1e9ed32a1864f3ac59e97b51f50514be61fc7db1712de5d3d6932ce"},
                "upload-time": time,
            });
            if *attested {
                f["provenance"] =
                    json!(format!("https://pypi.org/integrity/{name}/{v}/{file}/provenance"));
            }
            f
        })
        .collect();
    let versions: Vec<&str> = releases.iter().map(|r| r.0).collect();
    serde_json::to_vec(&json!({
        "meta": {"api-version": "1.1"},
        "name": name,
        "versions": versions,
        "files": files,
    }))
    .unwrap()
}

/// `(version, codes)` of each release with findings.
fn flagged(name: &str, body: &[u8]) -> Vec<(String, Vec<String>)> {
    let project = PackageName::parse(Ecosystem::PyPI, name).unwrap();
    let url = Url::parse(&format!("https://pypi.org/simple/{name}/")).unwrap();
    let page = parse_project_page(
        body,
        Some("application/vnd.pypi.simple.v1+json"),
        &url,
        &project,
    )
    .unwrap();
    let check = SignalsCheck::new(Config::default().policy.signals);
    page.records()
        .unwrap()
        .iter()
        .filter_map(|r| {
            let mut findings = Vec::new();
            check.evaluate(
                &PackageCtx {
                    name: &project,
                    version: r.version.as_ref(),
                    metadata: Some(&r.metadata),
                    now: Utc::now(),
                },
                &mut findings,
            );
            let codes: Vec<String> = findings.iter().map(|f| f.code.to_string()).collect();
            (!codes.is_empty()).then(|| (r.version_text.clone(), codes))
        })
        .collect()
}

/// LiteLLM's shape (March 2026): releases from CI with PEP 740 attestations, then one
/// uploaded with a stolen token, without.
#[test]
fn a_pypi_release_without_the_provenance_its_predecessors_had_is_flagged() {
    let body = page(
        "litellm-like",
        &[
            ("1.82.5", "2026-03-10T09:00:00Z", true),
            ("1.82.6", "2026-03-17T09:00:00Z", true),
            ("1.82.7", "2026-03-24T10:52:00Z", false),
        ],
    );
    assert_eq!(
        flagged("litellm-like", &body),
        [("1.82.7".to_owned(), vec!["provenance-lost".to_owned()])]
    );
    // Never attested: nothing.
    let body = page(
        "plain-like",
        &[
            ("0.9", "2025-03-10T09:00:00Z", false),
            ("1.0", "2025-06-17T09:00:00Z", false),
        ],
    );
    assert_eq!(flagged("plain-like", &body), []);
}

#[test]
fn bad_signal_and_internal_name_settings_name_their_keys() {
    let err = Config::from_toml(
        "[policy.signals]\nburst-versions = 1\nprovenance-lost = \"maybe\"\nburst-packages = 1\n\
         young-dependency-added = \"hold\"\ndependency-lookups = 5000\n\
         [policy.internal-names]\npatterns = [\"*\"]\nnpm = [\"my corp\"]\nsource = \" \"\n",
        "bad.toml",
    )
    .unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "policy.signals.burst-versions",
            "policy.signals.burst-packages",
            "policy.signals.dependency-lookups",
            "policy.signals.provenance-lost",
            "policy.signals.young-dependency-added",
            "policy.internal-names.patterns[0]",
            "policy.internal-names.npm[0]",
            "policy.internal-names.source",
        ]
    );
    let ok = Config::from_toml(
        "[policy.internal-names]\npatterns = [\"mycorp-*\"]\npypi = [\"acme_*\"]\n",
        "ok.toml",
    )
    .unwrap();
    assert_eq!(ok.policy.internal_names.patterns.len(), 2);
}

/// The cargo sparse index carries publish times (`pubtime`) and nothing else the signals
/// read: a burst of versions is still seen, a steady cadence is not.
#[test]
fn a_burst_in_the_cargo_index_is_warned() {
    let line = |v: &str, t: &str| {
        format!(
            r#"{{"name":"tanstack-like","vers":"{v}","deps":[],"cksum":"9c82504cb1e9ed32a1864f3ac59e97b51f50514be61fc7db1712de5d3d6932ce","features":{{}},"yanked":false,"pubtime":"{t}"}}"#
        )
    };
    let mut lines = vec![line("0.9.0", "2026-01-05T10:00:00Z")];
    for i in 0..6 {
        lines.push(line(
            &format!("1.0.{i}"),
            &format!("2026-05-11T19:2{i}:00Z"),
        ));
    }
    let name = PackageName::parse(Ecosystem::CratesIo, "tanstack-like").unwrap();
    let index =
        depfw::registry::cargo::IndexFile::parse(lines.join("\n").as_bytes(), &name).unwrap();
    let check = SignalsCheck::new(Config::default().policy.signals);
    let flagged: Vec<String> = index
        .records()
        .iter()
        .filter(|r| {
            let mut findings = Vec::new();
            check.evaluate(
                &PackageCtx {
                    name: &name,
                    version: r.version.as_ref(),
                    metadata: Some(&r.metadata),
                    now: Utc::now(),
                },
                &mut findings,
            );
            findings.iter().any(|f| f.code.as_str() == "release-burst")
        })
        .map(|r| r.version_text.clone())
        .collect();
    assert_eq!(
        flagged,
        ["1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.0.5"]
    );
}

/// `young-dependency-added` on axios 1.14.1's shape (`integration/fixtures/npm/axios-like.json`,
/// `major-like.json`), with the dependencies' first releases as a door gathered them: the
/// check reads only what it is given.
mod young_dependency {
    use std::sync::Arc;

    use chrono::{DateTime, Duration, TimeZone, Utc};
    use depfw::config::Config;
    use depfw::package::{Ecosystem, PackageName};
    use depfw::policy::signals::{DependencyAges, FirstRelease, Gathered, SignalsCheck};
    use depfw::policy::{Check, PackageCtx, Verdict};
    use depfw::registry::VersionRecord;

    /// 1.14.1 was published 2026-03-31T00:21Z; "now" is a day later.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap()
    }

    fn records(name: &str) -> (PackageName, Vec<VersionRecord>) {
        let file = format!(
            "{}/integration/fixtures/npm/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let name = PackageName::parse(Ecosystem::Npm, name).unwrap();
        let body = std::fs::read(file).unwrap();
        let records = depfw::registry::npm_version_records(&name, &body).unwrap();
        (name, records)
    }

    /// `(code, verdict, message)` of `version`'s findings, with `ages` gathered.
    fn findings(
        package: &str,
        version: &str,
        ages: Option<&[(&str, FirstRelease)]>,
        settings: &str,
    ) -> Vec<(String, Verdict, String)> {
        let (name, mut records) = records(package);
        let gathered = ages.map(|ages| {
            let mut dependencies = DependencyAges::default();
            for (dep, first) in ages {
                dependencies.insert(dep, first.clone());
            }
            Arc::new(Gathered {
                dependencies: Some(dependencies),
                ..Gathered::default()
            })
        });
        for r in &mut records {
            r.metadata.gathered = gathered.clone();
        }
        let config = Config::from_toml(settings, "policy.toml").unwrap();
        let check = SignalsCheck::new(config.policy.signals);
        let r = records.iter().find(|r| r.version_text == version).unwrap();
        let mut out = Vec::new();
        check.evaluate(
            &PackageCtx {
                name: &name,
                version: r.version.as_ref(),
                metadata: Some(&r.metadata),
                now: now(),
            },
            &mut out,
        );
        out.into_iter()
            .map(|f| (f.code.to_string(), f.verdict, f.message))
            .collect()
    }

    fn established() -> FirstRelease {
        FirstRelease::At(Utc.with_ymd_and_hms(2014, 1, 1, 0, 0, 0).unwrap())
    }

    fn two_hours_before() -> FirstRelease {
        FirstRelease::At(Utc.with_ymd_and_hms(2026, 3, 31, 0, 21, 0).unwrap() - Duration::hours(2))
    }

    #[test]
    fn a_patch_release_adding_a_dependency_two_hours_old_is_held() {
        let ages = [
            ("plain-crypto-like", two_hours_before()),
            ("ms", established()),
        ];
        let got = findings("axios-like", "1.14.1", Some(&ages), "");
        assert_eq!(got.len(), 1, "{got:?}");
        let (code, verdict, message) = &got[0];
        assert_eq!(code, "young-dependency-added");
        assert_eq!(*verdict, Verdict::Quarantine);
        assert!(message.contains("`plain-crypto-like`"), "{message}");
        assert!(message.contains("2 hours before this one"), "{message}");
        assert!(message.contains("a patch or minor release"), "{message}");
    }

    #[test]
    fn adding_a_long_established_dependency_is_not_held() {
        let ages = [("plain-crypto-like", established()), ("ms", established())];
        assert_eq!(findings("axios-like", "1.14.1", Some(&ages), ""), []);
        // 1.14.0 added `ms`, years old (a release 81 days old: looked at within a year).
        let year = "[policy.signals]\ndependency-recent-days = 365\n";
        assert_eq!(findings("axios-like", "1.14.0", Some(&ages), year), []);
        let got = findings("axios-like", "1.14.0", Some(&[]), year);
        assert_eq!(
            got.len(),
            1,
            "`ms` is the one dependency 1.14.0 added: {got:?}"
        );
        assert!(got[0].2.contains("`ms`"), "{got:?}");
    }

    #[test]
    fn a_new_major_version_is_warned_and_settings_apply() {
        let ages = [("plain-crypto-like", two_hours_before())];
        let got = findings("major-like", "2.0.0", Some(&ages), "");
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].1, Verdict::Warn);
        assert!(got[0].2.contains("a new major version"), "{}", got[0].2);
        let got = findings(
            "axios-like",
            "1.14.1",
            Some(&ages),
            "[policy.signals]\nyoung-dependency-added = \"deny\"\nyoung-dependency-hours = 1\n",
        );
        assert_eq!(got, [], "two hours is not young under a 1-hour threshold");
        let got = findings(
            "axios-like",
            "1.14.1",
            Some(&ages),
            "[policy.signals]\nyoung-dependency-added = \"deny\"\n",
        );
        assert_eq!(got[0].1, Verdict::Deny);
    }

    #[test]
    fn an_unknown_or_unlooked_dependency_is_held_and_says_why() {
        let failed = [(
            "plain-crypto-like",
            FirstRelease::Unknown("the upstream registry did not answer".to_owned()),
        )];
        let got = findings("axios-like", "1.14.1", Some(&failed), "");
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "dependency-unchecked");
        assert_eq!(got[0].1, Verdict::Quarantine);
        assert!(got[0].2.contains("did not answer"), "{}", got[0].2);
        // Gathered, but this dependency left out (over a bound).
        let got = findings("axios-like", "1.14.1", Some(&[]), "");
        assert_eq!(got[0].0, "dependency-unchecked");
        assert!(
            got[0].2.contains("dependencies-per-version"),
            "{}",
            got[0].2
        );
        let got = findings(
            "axios-like",
            "1.14.1",
            Some(&[]),
            "[policy.signals]\ndependency-unchecked = \"warn\"\n",
        );
        assert_eq!(got[0].1, Verdict::Warn);
    }

    #[test]
    fn nothing_is_said_where_nothing_was_looked_up_or_the_release_is_old() {
        // An offline door gathers nothing: no dependency signal at all.
        assert_eq!(findings("axios-like", "1.14.1", None, ""), []);
        let ages = [("plain-crypto-like", two_hours_before())];
        assert_eq!(
            findings(
                "axios-like",
                "1.14.1",
                Some(&ages),
                "[policy.signals]\ndependency-recent-days = 0\n"
            ),
            []
        );
    }
}
