//! `depfw check <ecosystem> <name>[@<version>] ... [--format human|json]`
//!
//! Asks the policy about packages directly: for a person deciding whether to add a
//! dependency, or a script vetting a list (`-` reads one package per line from stdin and,
//! with `--format json`, writes one JSON object per line). Offline it runs the checks that
//! need no registry metadata (advisories, typosquat, overrides).

use std::io::{BufRead, Write};
use std::process::ExitCode;

use chrono::Utc;
use serde::Serialize;

use super::{exit, Cli};
use crate::config::Config;
use crate::package::{Ecosystem, PackageRef};
use crate::policy::{Decision, Finding, PackageCtx, Policy, Verdict};

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
}

/// One line of `--format json` output.
#[derive(Debug, Serialize)]
pub(crate) struct CheckResult<'a> {
    pub ecosystem: crate::package::Ecosystem,
    pub name: &'a str,
    pub version: Option<String>,
    pub verdict: Verdict,
    pub findings: &'a [Finding],
}

pub(crate) fn run(args: &CheckArgs, cli: &Cli, config: &Config) -> anyhow::Result<ExitCode> {
    let ecosystem: Ecosystem = args.ecosystem.parse()?;
    let store = if super::data_dir_in_use(cli, config) {
        Some(crate::store::Store::open(&config.server.data_dir)?)
    } else {
        None
    };
    let engine = crate::engine::load(config, store.as_ref())?;
    if let Some(why) = engine.policy.undecidable(ecosystem) {
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

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut worst = Verdict::Allow;
    let mut errors = 0usize;
    for spec in &specs {
        let package = match PackageRef::parse_spec(ecosystem, spec) {
            Ok(p) => p,
            Err(e) => {
                errors += 1;
                eprintln!("depfw: error: {}: {e}", sanitize(spec));
                continue;
            }
        };
        let decision = evaluate(&engine.policy, &package);
        worst = worst.max(decision.verdict);
        match args.format {
            OutputFormat::Json => {
                let result = CheckResult {
                    ecosystem,
                    name: package.name.as_str(),
                    version: package.version.as_ref().map(ToString::to_string),
                    verdict: decision.verdict,
                    findings: &decision.findings,
                };
                serde_json::to_writer(&mut out, &result)?;
                writeln!(out)?;
            }
            OutputFormat::Human => write_human(&mut out, &package, &decision)?,
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

/// Evaluates one package offline (no registry metadata).
pub(crate) fn evaluate(policy: &Policy, package: &PackageRef) -> Decision {
    policy.evaluate(&PackageCtx {
        name: &package.name,
        version: package.version.as_ref(),
        metadata: None,
        now: Utc::now(),
    })
}

fn write_human(
    out: &mut impl Write,
    package: &PackageRef,
    decision: &Decision,
) -> std::io::Result<()> {
    let version = package
        .version
        .as_ref()
        .map_or_else(|| " (any version)".to_owned(), |v| format!("@{v}"));
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
