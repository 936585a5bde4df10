//! `depfw log verify|export|show`: read the proxy's decision log (provenance).
//!
//! `verify` walks the hash chain and reports the first missing or altered record (exit 0
//! intact, 1 broken, 2 error); `export` writes records as JSON lines for another system;
//! `show` prints them for a person, newest first. All three open the store, so run them
//! while `depfw serve` is stopped (sled allows one process per data directory).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::exit;
use crate::config::Config;
use crate::policy::Verdict;
use crate::store::decisions::{ChainStatus, DecisionLog, DecisionRecord, RecordFilter};
use crate::store::Store;
use crate::when::{parse_since, parse_until};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum LogCommand {
    /// Check the hash chain from the first record to the last.
    Verify,
    /// Write records as JSON lines (oldest first) to stdout.
    Export {
        /// Only records at or after this time: a date (2026-01-31, from its start, UTC) or
        /// an RFC 3339 time (2026-01-31T09:30:00Z).
        #[arg(long, value_parser = parse_since)]
        since: Option<DateTime<Utc>>,
        /// Only this agent's records.
        #[arg(long)]
        agent: Option<String>,
    },
    /// Print matching records, newest first.
    Show {
        #[arg(long)]
        agent: Option<String>,
        /// Package name (substring, case-insensitive).
        #[arg(long)]
        package: Option<String>,
        /// allow, warn, quarantine or deny.
        #[arg(long, value_parser = parse_verdict)]
        verdict: Option<Verdict>,
        /// Only records at or after this time: a date (from its start, UTC) or RFC 3339.
        #[arg(long, value_parser = parse_since)]
        since: Option<DateTime<Utc>>,
        /// Only records at or before this time: a date (to its end, UTC) or RFC 3339.
        #[arg(long, value_parser = parse_until)]
        until: Option<DateTime<Utc>>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

fn parse_verdict(s: &str) -> Result<Verdict, String> {
    s.parse()
}

pub fn run(cmd: &LogCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let dir = &config.server.data_dir;
    anyhow::ensure!(
        dir.join("store").exists(),
        "no depfw store in {} (use --data-dir)",
        dir.display()
    );
    let store = Store::open(dir)?;
    let log = DecisionLog::open(&store)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match cmd {
        LogCommand::Verify => {
            let status = log.verify()?;
            writeln!(out, "{status}")?;
            out.flush()?;
            return Ok(ExitCode::from(match status {
                ChainStatus::Intact { .. } => exit::CLEAN,
                ChainStatus::Broken { .. } => exit::FINDINGS,
            }));
        }
        LogCommand::Export { since, agent } => {
            let filter = RecordFilter {
                agent: agent.clone(),
                since: *since,
                ..RecordFilter::default()
            };
            log.for_each(&filter, |r| {
                serde_json::to_writer(&mut out, r)?;
                out.write_all(b"\n")?;
                Ok(())
            })?;
        }
        LogCommand::Show {
            agent,
            package,
            verdict,
            since,
            until,
            limit,
        } => {
            let filter = RecordFilter {
                agent: agent.clone(),
                package: package.clone(),
                verdict: *verdict,
                since: *since,
                until: *until,
            };
            for r in log.query(&filter, *limit)? {
                writeln!(out, "{}", line(&r))?;
            }
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::from(exit::CLEAN))
}

/// One record as a line: seq, time, agent, package@version, verdict, outcome, request id.
fn line(r: &DecisionRecord) -> String {
    let spec = match &r.version {
        Some(v) => format!("{}@{v}", r.package),
        None => r.package.clone(),
    };
    let mut s = format!(
        "{:>6}  {}  {:<12}  {} {}  {} {}  request {}",
        r.seq,
        r.time.format("%Y-%m-%d %H:%M:%S"),
        r.client.agent.as_deref().unwrap_or("-"),
        r.ecosystem,
        spec,
        r.verdict,
        r.outcome,
        r.request_id
    );
    for f in &r.findings {
        s.push_str(&format!("\n          {}: {}", f.code, f.message));
    }
    s
}
