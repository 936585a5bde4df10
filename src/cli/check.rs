//! `depfw check [--online] <ecosystem> <name>[@<version>] ... [--format human|json]`
//!
//! Asks the policy about packages directly: for a person deciding whether to add a
//! dependency, or a script vetting a list (`-` reads one package per line from stdin and,
//! with `--format json`, writes one JSON object per line). Offline it runs the checks that
//! need no registry metadata (advisories, typosquat, overrides).
//!
//! With `--online` it fetches each name's registry metadata through the configured
//! upstreams with the fetcher of `depfw audit --online` (`crate::audit::online`: one
//! document per name, bounded concurrency, the same upstream config), so the reputation,
//! license and age-aware typosquat checks run too, and `check`, `audit --online` and the
//! proxy give one verdict for one package version. A name without a version is evaluated
//! at its latest release (npm's `latest` dist-tag, else the highest non-yanked stable
//! version), and the output names it. A package whose metadata cannot be fetched is an
//! error (exit 2): asked to judge with the registry's data, check does not quietly judge
//! without it; its offline verdict is still printed with `registry-metadata-unavailable`.
//!
//! While `depfw serve` holds the data directory's store, the running server's policy
//! judges (`POST /admin/api/evaluate`, see `cli::via_server::Judge`): the verdicts are the
//! ones its proxy enforces, runtime overrides included.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use serde::Serialize;

use super::via_server::Judge;
use super::{exit, Cli};
use crate::audit::evaluate::{Evaluator as _, Query};
use crate::audit::online::{self, Lookup, OnlineResult};
use crate::config::Config;
use crate::package::{Ecosystem, PackageRef, Version};
use crate::policy::{Decision, Finding, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// npm, pypi or crates.io.
    pub ecosystem: String,
    /// `name` or `name@version` (PyPI also `name==version`); `-` reads them from stdin.
    #[arg(required = true)]
    pub packages: Vec<String>,
    #[arg(long, value_enum, default_value = "human")]
    pub format: OutputFormat,
    /// Also fetch registry metadata (publish time, license, install scripts, package age)
    /// through the configured upstreams, as `depfw audit --online` does; a bare name is
    /// evaluated at its latest release.
    #[arg(long)]
    pub online: bool,
    /// Parallel registry requests with `--online`.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
}

/// One line of `--format json` output.
#[derive(Debug, Serialize)]
pub(crate) struct CheckResult<'a> {
    pub ecosystem: crate::package::Ecosystem,
    pub name: &'a str,
    pub version: Option<String>,
    /// `--online` with a name alone: `version` is the registry's latest release.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub latest: bool,
    pub verdict: Verdict,
    pub findings: &'a [Finding],
}

pub(crate) fn run(args: &CheckArgs, cli: &Cli, config: &Config) -> anyhow::Result<ExitCode> {
    let ecosystem: Ecosystem = args.ecosystem.parse()?;
    let judge = Judge::open(cli, config, |store| crate::engine::load(config, store))?;
    if let Some(why) = judge.undecidable(ecosystem) {
        anyhow::bail!("{why}");
    }

    let mut specs: Vec<String> = Vec::new();
    for spec in &args.packages {
        if spec == "-" {
            for line in std::io::stdin().lock().lines() {
                let line = line?;
                let line = line.trim();
                if !line.is_empty() && !line.starts_with('#') {
                    specs.push(line.to_owned());
                }
            }
        } else {
            specs.push(spec.clone());
        }
    }

    let mut errors = 0usize;
    let mut packages = Vec::new();
    for spec in &specs {
        match PackageRef::parse_spec(ecosystem, spec) {
            Ok(p) => packages.push(p),
            Err(e) => {
                errors += 1;
                eprintln!("depfw: error: {}: {e}", sanitize(spec));
            }
        }
    }
    let online = if args.online {
        Some(fetch_online(args, config, ecosystem, &packages)?)
    } else {
        None
    };

    judge.note_online(args.online);
    let asked: Vec<Asked> = packages
        .iter()
        .map(|package| match &online {
            None => Asked::offline(package),
            Some(online) => Asked::online(package, online),
        })
        .collect();
    let queries: Vec<Query> = asked.iter().map(|a| a.query.clone()).collect();
    let answers = judge.evaluate(&queries, false)?;
    anyhow::ensure!(
        answers.len() == asked.len(),
        "the policy answered {} of {} packages",
        answers.len(),
        asked.len()
    );

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut worst = Verdict::Allow;
    for ((package, asked), answer) in packages.iter().zip(asked).zip(answers) {
        if let Some(online) = &online {
            if let Some(error) = registry_error(online, package) {
                errors += 1;
                eprintln!(
                    "depfw: error: {} {}: no registry metadata ({error}); the verdict below \
                     is from the offline checks only",
                    ecosystem, package.name
                );
            }
        }
        let checked = asked.finish(answer.decision);
        let decision = &checked.decision;
        worst = worst.max(decision.verdict);
        match args.format {
            OutputFormat::Json => {
                let result = CheckResult {
                    ecosystem,
                    name: package.name.as_str(),
                    version: checked.version.as_ref().map(ToString::to_string),
                    latest: checked.latest,
                    verdict: decision.verdict,
                    findings: &decision.findings,
                };
                serde_json::to_writer(&mut out, &result)?;
                writeln!(out)?;
            }
            OutputFormat::Human => write_human(&mut out, package, &checked)?,
        }
    }
    out.flush()?;
    Ok(ExitCode::from(if errors > 0 {
        exit::ERROR
    } else if worst >= Verdict::Quarantine {
        exit::FINDINGS
    } else {
        exit::CLEAN
    }))
}

/// What was evaluated for one package and the policy's decision.
struct Checked {
    /// The version evaluated: the one asked for, or (`--online`, a bare name) the latest.
    version: Option<Version>,
    /// `version` is the registry's latest release, not one the caller named.
    latest: bool,
    decision: Decision,
}

/// What to ask the policy about one package, and what `--online` adds to its answer.
struct Asked {
    version: Option<Version>,
    latest: bool,
    query: Query,
    /// `--online`: the registry lookup's own finding (a version it does not list,
    /// metadata it could not give).
    note: Option<Finding>,
}

impl Asked {
    /// Offline: no registry metadata.
    fn offline(package: &PackageRef) -> Asked {
        Asked {
            version: package.version.clone(),
            latest: false,
            query: query(package, package.version.as_ref(), None),
            note: None,
        }
    }

    /// With the registry's metadata, as the proxy and `depfw audit --online` evaluate: the
    /// same [`crate::policy::PackageCtx`] from the same parsed records. A version the
    /// registry does not list warns (`missing-from-registry`); metadata that could not be
    /// fetched leaves the offline checks (`registry-metadata-unavailable`).
    fn online(package: &PackageRef, online: &OnlineResult) -> Asked {
        let ecosystem = package.ecosystem();
        let asked = package.version.as_ref().map(ToString::to_string);
        let lookup = online.get(
            ecosystem,
            package.name.as_str(),
            asked.as_deref().unwrap_or(""),
        );
        let latest = match (&package.version, lookup) {
            (None, Some(Lookup::Found(_))) => online
                .latest_version(ecosystem, package.name.as_str())
                .and_then(|v| Version::parse(ecosystem, v).ok()),
            _ => None,
        };
        let version = latest.clone().or_else(|| package.version.clone());
        let metadata = lookup.and_then(Lookup::metadata).cloned();
        let note = match lookup {
            Some(lookup) => lookup.finding(),
            None => Lookup::Failed {
                error: "the registry was not asked".to_owned(),
            }
            .finding(),
        };
        Asked {
            query: query(package, version.as_ref(), metadata),
            latest: latest.is_some(),
            version,
            note,
        }
    }

    /// The decision with the registry note, which adds to a verdict no override decided.
    fn finish(self, mut decision: Decision) -> Checked {
        if let Some(note) = self.note {
            let overridden = decision
                .findings
                .iter()
                .any(|f| f.check == crate::policy::overrides::CHECK_NAME);
            if !overridden {
                decision.verdict = decision.verdict.max(note.verdict);
            }
            decision.findings.push(note);
        }
        Checked {
            version: self.version,
            latest: self.latest,
            decision,
        }
    }
}

fn query(
    package: &PackageRef,
    version: Option<&Version>,
    metadata: Option<crate::policy::VersionMetadata>,
) -> Query {
    Query {
        ecosystem: package.ecosystem(),
        name: package.name.as_str().to_owned(),
        version: version.map(ToString::to_string),
        metadata,
    }
}

/// Why the registry's metadata could not be had for `package` (`--online`), if so.
fn registry_error<'a>(online: &'a OnlineResult, package: &PackageRef) -> Option<&'a str> {
    let version = package.version.as_ref().map(ToString::to_string);
    let lookup = online.get(
        package.ecosystem(),
        package.name.as_str(),
        version.as_deref().unwrap_or(""),
    );
    match lookup {
        Some(Lookup::Failed { error }) => Some(error),
        None => Some("the registry was not asked"),
        Some(_) => None,
    }
}

/// Fetches every package's registry metadata (a bare name: its latest release's); notes
/// that fail no package go to stderr.
fn fetch_online(
    args: &CheckArgs,
    config: &Config,
    ecosystem: Ecosystem,
    packages: &[PackageRef],
) -> anyhow::Result<OnlineResult> {
    let queries: Vec<(Ecosystem, String, String)> = packages
        .iter()
        .map(|p| {
            let version = p.version.as_ref().map(ToString::to_string);
            (
                ecosystem,
                p.name.as_str().to_owned(),
                version.unwrap_or_default(),
            )
        })
        .collect();
    let options = online::OnlineOptions {
        concurrency: usize::from(args.concurrency),
        progress: std::io::stderr().is_terminal(),
        user_agent: concat!(
            "depfw/",
            env!("CARGO_PKG_VERSION"),
            " (supply-chain dependency firewall; depfw check --online)"
        )
        .to_owned(),
        signals: Some(config.policy.signals.clone()),
        ..online::OnlineOptions::default()
    };
    let result = online::fetch_metadata_blocking(&queries, &config.upstream, &options)?;
    for note in &result.notes {
        eprintln!("depfw: note: {note}");
    }
    Ok(result)
}

fn write_human(
    out: &mut impl Write,
    package: &PackageRef,
    checked: &Checked,
) -> std::io::Result<()> {
    let version = match (&checked.version, checked.latest) {
        (Some(v), true) => format!("@{v} (latest)"),
        (Some(v), false) => format!("@{v}"),
        (None, _) => " (any version)".to_owned(),
    };
    let decision = &checked.decision;
    writeln!(
        out,
        "{:<10} {} {}{}",
        decision.verdict,
        package.ecosystem(),
        package.name,
        version
    )?;
    for f in &decision.findings {
        writeln!(
            out,
            "  - {} [{}/{}] {}: {}",
            f.verdict, f.check, f.code, f.severity, f.message
        )?;
    }
    Ok(())
}

/// Input echoed in errors must not carry terminal control sequences.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(200)
        .collect()
}
