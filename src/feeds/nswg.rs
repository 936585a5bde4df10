//! The old Node.js Security WG ecosystem advisories (`NSWG-ECO-<n>`, `nodejs/security-wg`
//! `vuln/npm/<n>.json`): what `depfw feeds snapshot` and `depfw feeds import` read besides
//! OSV, because npm has no other vulnerability data in the offline data set, and without it
//! `lodash@4.17.4` or the malicious `flatmap-stream` looked clean.
//!
//! A record names one npm package, a node-semver range of vulnerable versions and a CVSS
//! score. Each `||` alternative of the range becomes one OSV-style range: `>=`/`>` give where
//! it starts (a `>` is taken as `>=`: one version too many is flagged rather than one too
//! few), `<` where it is fixed, `<=` its last affected version; a bare or `=` version is
//! listed exactly, and `*` means every version. A range that does not read that way is
//! skipped and counted, never guessed. Titles that say "Malicious" (`flatmap-stream`,
//! `eslint-scope@3.7.2`) make the advisory a malicious-package one.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::matcher::{AffectedRange, RangeEvent, RangeKind};
use super::model::{Advisory, AdvisoryKind};
use crate::diag::Severity;
use crate::package::{Ecosystem, PackageName};

/// What NSWG advisory ids start with.
pub(crate) const ID_PREFIX: &str = "NSWG-ECO-";

/// One NSWG record, as much of it as an advisory needs.
#[derive(Debug, Deserialize)]
pub(crate) struct NswgRecord {
    id: u64,
    module_name: String,
    #[serde(default)]
    title: String,
    vulnerable_versions: Option<String>,
    #[serde(default)]
    cves: Vec<String>,
    cvss_score: Option<f64>,
    publish_date: Option<String>,
    updated_at: Option<String>,
}

/// Whether a JSON object is an NSWG record rather than an OSV one.
pub(crate) fn is_record(value: &serde_json::Value) -> bool {
    value.get("module_name").is_some() && value.get("vulnerable_versions").is_some()
}

/// Whether a JSON object is NSWG's `index.json` (id → record).
pub(crate) fn is_index(value: &serde_json::Value) -> bool {
    value
        .as_object()
        .and_then(|m| m.values().next())
        .is_some_and(is_record)
}

fn date(text: Option<&str>) -> Option<DateTime<Utc>> {
    let day = NaiveDate::parse_from_str(text?.get(..10)?, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc())
}

/// The advisory a record gives, or why it gives none.
pub(crate) fn advisory(record: &NswgRecord) -> Result<Advisory, String> {
    let name = PackageName::parse(Ecosystem::Npm, record.module_name.trim())
        .map_err(|e| format!("NSWG-ECO-{}: {e}", record.id))?;
    let range = record
        .vulnerable_versions
        .as_deref()
        .map(str::trim)
        .unwrap_or("");
    let affected = parse_range(range).map_err(|e| format!("NSWG-ECO-{}: {e}", record.id))?;
    let kind = if record.title.to_ascii_lowercase().contains("malicious") {
        AdvisoryKind::Malicious
    } else {
        AdvisoryKind::Vulnerability
    };
    let severity = match (kind, record.cvss_score) {
        (AdvisoryKind::Malicious, _) => Severity::Critical,
        (_, Some(score)) => Severity::from_cvss_score(score),
        (_, None) => Severity::Unknown,
    };
    Ok(Advisory {
        id: format!("{ID_PREFIX}{}", record.id),
        aliases: record.cves.clone(),
        ecosystem: Ecosystem::Npm,
        package: name.key().to_owned(),
        kind,
        severity,
        published: date(record.publish_date.as_deref()),
        modified: date(record.updated_at.as_deref()),
        ranges: affected.ranges,
        versions: affected.versions,
        all_versions: affected.all,
        matcher: Default::default(),
    })
}

/// A node-semver range in OSV terms.
#[derive(Debug, Default, PartialEq, Eq)]
struct Affected {
    ranges: Vec<AffectedRange>,
    versions: Vec<String>,
    all: bool,
}

/// `<=1.5.1`, `>=2.0.0 <=4.0.4`, `<0.2.2 || >=0.3.0 <0.3.2`, `*`, `3.7.2`, `< 2.1.7 > 2.0.0`.
fn parse_range(text: &str) -> Result<Affected, String> {
    let mut affected = Affected::default();
    if text.is_empty() {
        return Err("no vulnerable_versions".to_owned());
    }
    for alternative in text.split("||").map(str::trim) {
        if alternative == "*" {
            affected.all = true;
            continue;
        }
        let (mut lower, mut upper): (Option<String>, Option<RangeEvent>) = (None, None);
        let mut exact = None;
        for (op, version) in comparators(alternative)? {
            let slot_taken = |what: &str| format!("`{alternative}`: two {what} bounds");
            match op {
                ">=" | ">" => {
                    if lower.replace(version).is_some() {
                        return Err(slot_taken("lower"));
                    }
                }
                // `~1.2.3`: from 1.2.3 up to the next minor release.
                "~" => {
                    let next = next_minor(&version)
                        .ok_or_else(|| format!("`{alternative}`: not a version after `~`"))?;
                    if lower.replace(version).is_some()
                        || upper.replace(RangeEvent::Fixed(next)).is_some()
                    {
                        return Err(slot_taken("tilde"));
                    }
                }
                "<" | "<=" => {
                    let event = if op == "<" {
                        RangeEvent::Fixed(version)
                    } else {
                        RangeEvent::LastAffected(version)
                    };
                    if upper.replace(event).is_some() {
                        return Err(slot_taken("upper"));
                    }
                }
                _ => exact = Some(version),
            }
        }
        match (exact, lower, upper) {
            (Some(v), None, None) => affected.versions.push(v),
            (Some(_), _, _) => return Err(format!("`{alternative}`: a version and a bound")),
            (None, None, None) => return Err(format!("`{alternative}`: no comparator")),
            (None, lower, upper) => {
                let mut events = vec![RangeEvent::Introduced(lower.unwrap_or_else(|| "0".into()))];
                events.extend(upper);
                affected.ranges.push(AffectedRange {
                    kind: RangeKind::Semver,
                    events,
                });
            }
        }
    }
    Ok(affected)
}

/// `1.2.3-pre` → `1.3.0`.
fn next_minor(version: &str) -> Option<String> {
    let mut parts = version.split(['.', '-', '+']);
    let major: u64 = parts.next()?.parse().ok()?;
    let minor: u64 = parts.next()?.parse().ok()?;
    Some(format!("{major}.{}.0", minor.checked_add(1)?))
}

/// `(operator, version)` pairs; the operator may be spaced from its version (`<= 0.3.3`),
/// and a bare version has operator `=`.
fn comparators(text: &str) -> Result<Vec<(&'static str, String)>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let op = [">=", "<=", ">", "<", "=", "~"]
            .into_iter()
            .find(|op| rest.starts_with(op))
            .unwrap_or("=");
        let after = rest[if rest.starts_with(op) { op.len() } else { 0 }..].trim_start();
        let end = after
            .find(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '=')
            .unwrap_or(after.len());
        let version = after[..end].trim_start_matches('v');
        if version.is_empty() || !version.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!("`{text}`: not a version after `{op}`"));
        }
        out.push((op, version.to_owned()));
        rest = after[end..].trim_start();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(events: &[RangeEvent]) -> AffectedRange {
        AffectedRange {
            kind: RangeKind::Semver,
            events: events.to_vec(),
        }
    }

    fn i(v: &str) -> RangeEvent {
        RangeEvent::Introduced(v.into())
    }

    #[test]
    fn node_semver_ranges_become_osv_ranges() {
        let r = parse_range("<=1.5.1").unwrap();
        assert_eq!(
            r.ranges,
            [range(&[i("0"), RangeEvent::LastAffected("1.5.1".into())])]
        );
        let r = parse_range("<0.2.2 || >=0.3.0 <0.3.2").unwrap();
        assert_eq!(
            r.ranges,
            [
                range(&[i("0"), RangeEvent::Fixed("0.2.2".into())]),
                range(&[i("0.3.0"), RangeEvent::Fixed("0.3.2".into())])
            ]
        );
        // Spaced operators, bounds in either order, `>` taken as `>=`.
        let r = parse_range("<1.6.5 || < 2.1.7 > 2.0.0").unwrap();
        assert_eq!(
            r.ranges[1],
            range(&[i("2.0.0"), RangeEvent::Fixed("2.1.7".into())])
        );
        assert!(parse_range("*").unwrap().all);
        assert_eq!(parse_range("3.7.2").unwrap().versions, ["3.7.2"]);
        assert_eq!(parse_range("=3.0.0-rc.1").unwrap().versions, ["3.0.0-rc.1"]);
        assert_eq!(
            parse_range(">=0.1.0").unwrap().ranges,
            [range(&[i("0.1.0")])]
        );
        assert_eq!(
            parse_range("~0.8.0-pre").unwrap().ranges,
            [range(&[i("0.8.0-pre"), RangeEvent::Fixed("0.9.0".into())])]
        );
    }

    #[test]
    fn ranges_that_do_not_read_as_node_semver_are_refused() {
        for bad in [
            "",
            "latest",
            "<1.0.0 <2.0.0",
            "1.0.0 <2.0.0",
            ">=",
            "^1.2.3",
            "~x",
        ] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_malicious_title_makes_a_malicious_advisory() {
        let record: NswgRecord = serde_json::from_str(
            r#"{"id": 477, "module_name": "flatmap-stream", "title": "Embedded Malicious Code",
                "vulnerable_versions": "*", "patched_versions": null, "cves": [],
                "cvss_score": 10, "publish_date": "2018-11-26", "updated_at": "2018-11-26"}"#,
        )
        .unwrap();
        let a = advisory(&record).unwrap();
        assert_eq!(a.id, "NSWG-ECO-477");
        assert_eq!(a.kind, AdvisoryKind::Malicious);
        assert!(a.all_versions);
        assert_eq!(a.package, "flatmap-stream");
        assert_eq!(
            a.published.unwrap().to_rfc3339(),
            "2018-11-26T00:00:00+00:00"
        );
    }
}
