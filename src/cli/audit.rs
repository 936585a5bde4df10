//! `depfw audit [PATH ...] [--format human|json|sarif|cyclonedx] [--fail-on LEVEL]`
//!
//! Scans lockfiles with exactly the checks and overrides the proxy uses: installs from a
//! local cache never reach the proxy, and agents commit lockfiles. Directories are searched
//! recursively (skipping `node_modules`, `target`, `.venv`, `.git`). A lockfile that cannot
//! be parsed is reported and makes the exit code 2, but every other lockfile is still
//! scanned and reported. While `depfw serve` holds the data directory's store, the
//! running server's policy judges the packages (`POST /admin/api/evaluate`, see
//! `cli::via_server::Judge`), so the verdicts are the ones its proxy enforces.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use super::via_server::Judge;
use super::{exit, Cli};
use crate::audit::online::{self, OnlineResult};
use crate::audit::run::{
    audit_parsed_online, discover, prepare, read_lockfiles, MirrorCheck, ParsedLockfile,
};
use crate::config::Config;
use crate::policy::Verdict;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    Human,
    Json,
    Sarif,
    /// CycloneDX 1.6 JSON: every locked package as a component, the advisories matched as
    /// vulnerabilities.
    Cyclonedx,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Warn,
    Quarantine,
    Deny,
}

impl FailOn {
    fn verdict(self) -> Verdict {
        match self {
            FailOn::Warn => Verdict::Warn,
            FailOn::Quarantine => Verdict::Quarantine,
            FailOn::Deny => Verdict::Deny,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Lockfiles, or directories searched recursively for lockfiles.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "human")]
    pub format: AuditFormat,
    /// The lowest verdict that makes the exit code 1.
    #[arg(long, value_enum, default_value = "quarantine")]
    pub fail_on: FailOn,
    /// Also fetch registry metadata (publish time, license, install scripts) through the
    /// configured upstreams — or a running depfw — for the license and reputation checks.
    #[arg(long)]
    pub online: bool,
    /// Parallel registry requests with `--online`.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// depfw's mirror URL as lockfiles record it (repeatable; adds to `audit.mirror-urls`):
    /// entries fetched from anywhere else are reported as `bypasses-mirror`.
    #[arg(long, value_name = "URL")]
    pub mirror: Vec<url::Url>,
    /// Write the report to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Fetches metadata for every pinned registry package; failures are reported on stderr
/// and those packages keep their offline verdict.
fn fetch_online(
    args: &AuditArgs,
    config: &Config,
    parsed: &[ParsedLockfile],
) -> anyhow::Result<OnlineResult> {
    let queries = online::registry_queries(
        parsed
            .iter()
            .filter_map(|p| p.result.as_ref().ok())
            .flat_map(|l| &l.packages),
    );
    let options = online::OnlineOptions {
        concurrency: usize::from(args.concurrency),
        progress: std::io::stderr().is_terminal(),
        signals: Some(config.policy.signals.clone()),
        ..online::OnlineOptions::default()
    };
    let result = online::fetch_metadata_blocking(&queries, &config.upstream, &options)?;
    for failure in &result.failures {
        eprintln!(
            "depfw: warning: no registry metadata for {} {}: {}",
            failure.ecosystem, failure.name, failure.error
        );
    }
    for note in &result.notes {
        eprintln!("depfw: note: {note}");
    }
    Ok(result)
}

/// The width the human table on stdout is fitted to: `COLUMNS` when set, else the
/// terminal's when stdout is one. `None` (rows whole, however long) for `--output`, pipes
/// and files, so `grep` sees every finding on its line and CI log viewers wrap as they
/// please.
fn table_width(to_stdout: bool) -> Option<usize> {
    if !to_stdout {
        return None;
    }
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0);
    if columns.is_some() {
        return columns;
    }
    console::Term::stdout()
        .size_checked()
        .map(|(_rows, cols)| usize::from(cols))
        .filter(|&c| c > 0)
}

pub(crate) fn run(args: &AuditArgs, cli: &Cli, config: &Config) -> anyhow::Result<ExitCode> {
    let (lockfiles, discovery_errors) = discover(&args.paths);
    let store_dir = super::data_dir_in_use(cli, config).then_some(config.server.data_dir.as_path());
    // While `depfw serve` holds the store, its policy judges (the one its proxy enforces).
    let server = match store_dir {
        Some(_) => super::remote::running(config)?,
        None => None,
    };
    let (judge, parsed) = match server {
        Some(server) => (Judge::Server(Box::new(server)), read_lockfiles(&lockfiles)),
        None => {
            let (engine, parsed) = prepare(config, store_dir, &lockfiles)
                .map_err(|e| super::remote::explain_lock(config, e))?;
            (Judge::Local(engine), parsed)
        }
    };
    let online = if args.online {
        Some(fetch_online(args, config, &parsed)?)
    } else {
        None
    };
    judge.note_online(args.online);
    let mirror = MirrorCheck::from_config(config, &args.mirror);
    let mut report = audit_parsed_online(
        &judge,
        &parsed,
        &discovery_errors,
        online.as_ref(),
        mirror.as_ref(),
    )?;
    report
        .results
        .sort_by(|a, b| b.verdict.cmp(&a.verdict).then_with(|| a.name.cmp(&b.name)));

    let mut sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let color = args.output.is_none() && std::io::stdout().is_terminal();
    match args.format {
        AuditFormat::Human => {
            let width = table_width(args.output.is_none());
            crate::report::render_human_width(&report, color, width, &mut sink)?
        }
        AuditFormat::Json => crate::report::render_json(&report, &mut sink)?,
        AuditFormat::Sarif => crate::report::render_sarif(&report, &mut sink)?,
        AuditFormat::Cyclonedx => {
            let packages = parsed
                .iter()
                .filter_map(|p| p.result.as_ref().ok())
                .flat_map(|l| l.packages.iter().map(|p| (l.path.as_path(), p)));
            crate::report::render_cyclonedx(&report, packages, &mut sink)?
        }
    }
    sink.flush()?;
    drop(sink);
    // The process ends right after: freeing tens of thousands of advisories and the
    // popular-name indexes one by one would only delay the exit (~15% of a bundled scan).
    std::mem::forget(judge);
    std::mem::forget(parsed);

    let tool_error = report.lockfiles.iter().any(|l| l.error.is_some());
    if lockfiles.is_empty() && discovery_errors.is_empty() {
        eprintln!("depfw: no lockfiles found under the given paths");
        return Ok(ExitCode::from(exit::ERROR));
    }
    let threshold = args.fail_on.verdict();
    let failing = report.results.iter().any(|r| r.verdict >= threshold);
    Ok(ExitCode::from(if tool_error {
        exit::ERROR
    } else if failing {
        exit::FINDINGS
    } else {
        exit::CLEAN
    }))
}
