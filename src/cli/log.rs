//! `depfw log verify|export|show|sbom|public-key`: read the proxy's decision log (provenance).
//!
//! `verify` walks the hash chain and reports the first missing, altered, unsigned or
//! foreign-signed record (exit 0 intact, 1 broken, 2 error); with `--public-key` every
//! signature must be that key's, with `--checkpoints` the log must still hold every
//! checkpointed record. `export` writes records as JSON lines for another system; `show`
//! prints them for a person, newest first; `sbom` writes what an agent actually installed
//! as a CycloneDX document; `public-key` prints the signing key's public
//! half (`ed25519:<base64>`) to keep outside the host. While `depfw serve` holds the store
//! (sled allows one process per data directory), `verify`, `export`, `show` and `sbom` go through its
//! admin API (`cli::remote`).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::exit;
use super::remote::Opened;
use crate::config::Config;
use crate::policy::Verdict;
use crate::report::cyclonedx::Installed;
use crate::store::decisions::{
    self, ChainStatus, DecisionLog, DecisionRecord, HiddenVersion, RecordFilter,
};
use crate::store::repo::{Backend, DecisionRepo};
use crate::store::signing::{LogKey, PublicKey};
use crate::when::{parse_since, parse_until};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum LogCommand {
    /// Check the hash chain from the first record to the last, and its signatures.
    Verify {
        /// The log's public key as `depfw log public-key` printed it, kept off this host:
        /// every signed record must be signed by it. Without it, signatures are only
        /// checked against the data directory's own key, which whoever can write the
        /// store can replace.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// The checkpoint file (`log.checkpoint-file`, or the `depfw::checkpoint` lines of
        /// depfw's log): the log must still hold every checkpointed record, unchanged.
        #[arg(long, value_name = "FILE")]
        checkpoints: Option<PathBuf>,
    },
    /// Print the public key of the log's signing key (`ed25519:<base64>`), making the key
    /// if this data directory has none yet.
    PublicKey,
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
        /// Only what monitor mode served but enforce mode would have refused (records
        /// with a `would-refuse` finding), as the admin page's `would-refuse` choice.
        #[arg(long, conflicts_with = "verdict")]
        would_refuse: bool,
        /// Only records at or after this time: a date (from its start, UTC) or RFC 3339.
        #[arg(long, value_parser = parse_since)]
        since: Option<DateTime<Utc>>,
        /// Only records at or before this time: a date (to its end, UTC) or RFC 3339.
        #[arg(long, value_parser = parse_until)]
        until: Option<DateTime<Utc>>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Write a CycloneDX 1.6 SBOM of what the proxy served (artifacts, not refusals): one
    /// component per package version, with the digests of the bytes served.
    Sbom {
        /// Only what this agent installed.
        #[arg(long)]
        agent: Option<String>,
        /// Only installs at or after this time: a date (from its start, UTC) or RFC 3339.
        #[arg(long, value_parser = parse_since)]
        since: Option<DateTime<Utc>>,
        /// Only installs at or before this time: a date (to its end, UTC) or RFC 3339.
        #[arg(long, value_parser = parse_until)]
        until: Option<DateTime<Utc>>,
    },
}

fn parse_verdict(s: &str) -> Result<Verdict, String> {
    s.parse()
}

pub(crate) fn run(cmd: &LogCommand, config: &Config) -> anyhow::Result<ExitCode> {
    if config.store.url.is_some() {
        return run_on_database(cmd, config);
    }
    let dir = &config.server.data_dir;
    anyhow::ensure!(
        dir.join("store").exists(),
        "no depfw store in {} (use --data-dir)",
        dir.display()
    );
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (public_key, checkpoints) = match cmd {
        LogCommand::Verify {
            public_key,
            checkpoints,
        } => (public_key.as_ref(), checkpoints.as_ref()),
        LogCommand::PublicKey => {
            writeln!(out, "{}", LogKey::load_or_create(dir)?.public().encode())?;
            out.flush().context("writing to stdout")?;
            return Ok(ExitCode::from(exit::CLEAN));
        }
        LogCommand::Export { .. } | LogCommand::Show { .. } | LogCommand::Sbom { .. } => {
            let store = match super::remote::open(config)? {
                Opened::Local(store) => store,
                Opened::Remote(server) => return super::via_server::log(cmd, &server),
            };
            let log = DecisionLog::open_read_only(&store)?;
            read(cmd, &log, &mut out)?;
            out.flush().context("writing to stdout")?;
            return Ok(ExitCode::from(exit::CLEAN));
        }
    };
    if let Some(server) = super::remote::running(config)? {
        return super::via_server::log(cmd, &server);
    }
    // Before sled opens the store: its recovery overwrites what it takes for a torn write.
    let damaged = decisions::damaged_records(dir)?;
    let store = match super::remote::open(config) {
        Ok(Opened::Remote(server)) => return super::via_server::log(cmd, &server),
        Ok(Opened::Local(store)) => Ok(store),
        Err(e) => Err(e),
    };
    let checked = store
        .and_then(|store| Ok(DecisionLog::open_read_only(&store)?))
        .and_then(|log| verify(&log, dir, public_key, checkpoints, &damaged));
    let (status, summary) = match checked {
        Ok(checked) => checked,
        // sled refuses to read a page whose bytes fail its checksums, naming a file offset.
        Err(e) => (damage(e, &damaged)?, String::new()),
    };
    writeln!(out, "{status}{summary}")?;
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::from(match status {
        ChainStatus::Intact { .. } => exit::CLEAN,
        ChainStatus::Broken { .. } => exit::FINDINGS,
    }))
}

/// `depfw log` on PostgreSQL (`store.url`): the one chain every replica appends to, read
/// while the servers run. Signatures are checked against `--public-key`, else this data
/// directory's key when it has one (every replica should share one key).
fn run_on_database(cmd: &LogCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let dir = &config.server.data_dir;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if let LogCommand::PublicKey = cmd {
        writeln!(out, "{}", LogKey::load_or_create(dir)?.public().encode())?;
        out.flush().context("writing to stdout")?;
        return Ok(ExitCode::from(exit::CLEAN));
    }
    let backend = Backend::open(&config.store, dir)?;
    let log = backend.decisions_read_only()?;
    let LogCommand::Verify {
        public_key,
        checkpoints,
    } = cmd
    else {
        read(cmd, &*log, &mut out)?;
        out.flush().context("writing to stdout")?;
        return Ok(ExitCode::from(exit::CLEAN));
    };
    let (public_key, checkpoints) = verify_inputs(public_key.as_ref(), checkpoints.as_ref())?;
    let (status, summary) =
        crate::admin::chain::verify(&*log, Some(dir), public_key, checkpoints.as_deref(), &[])?;
    writeln!(out, "{status} ({}){summary}", backend.describe())?;
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::from(match status {
        ChainStatus::Intact { .. } => exit::CLEAN,
        ChainStatus::Broken { .. } => exit::FINDINGS,
    }))
}

/// `export` and `show`.
fn read(cmd: &LogCommand, log: &dyn DecisionRepo, out: &mut impl Write) -> anyhow::Result<()> {
    match cmd {
        LogCommand::Verify { .. } | LogCommand::PublicKey => {}
        LogCommand::Export { since, agent } => {
            let filter = RecordFilter {
                agent: agent.clone(),
                since: *since,
                ..RecordFilter::default()
            };
            log.for_each_record(&filter, &mut |r| {
                serde_json::to_writer(&mut *out, r)?;
                out.write_all(b"\n")?;
                Ok(())
            })?;
        }
        LogCommand::Show {
            agent,
            package,
            verdict,
            would_refuse,
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
                would_refuse: *would_refuse,
            };
            for r in log.query(&filter, *limit)? {
                writeln!(out, "{}", line(&r))?;
            }
        }
        LogCommand::Sbom {
            agent,
            since,
            until,
        } => {
            let filter = RecordFilter {
                agent: agent.clone(),
                since: *since,
                until: *until,
                ..RecordFilter::default()
            };
            let mut installed = Installed::default();
            log.for_each_record(&filter, &mut |r| {
                installed.add(r);
                Ok(())
            })?;
            write_sbom(&installed, agent.as_deref(), *since, *until, out)?;
        }
    }
    Ok(())
}

/// `log sbom`'s document, from the records gathered on sled, PostgreSQL or the server.
pub(crate) fn write_sbom(
    installed: &Installed,
    agent: Option<&str>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let meta: Vec<(&str, String)> = [
        ("depfw:agent", agent.map(str::to_owned)),
        ("depfw:since", since.map(time)),
        ("depfw:until", until.map(time)),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v?)))
    .collect();
    if installed.is_empty() {
        eprintln!("depfw: the log records no artifact served for this query");
    }
    installed.render(&meta, out)?;
    Ok(())
}

/// A store sled refuses to read because its bytes fail their checksums: names the first
/// damaged record rather than sled's file offset, or passes the error on.
fn damage(error: anyhow::Error, damaged: &[u64]) -> anyhow::Result<ChainStatus> {
    if !error
        .downcast_ref::<crate::store::StoreError>()
        .is_some_and(decisions::is_damage)
    {
        return Err(error);
    }
    match damaged.first() {
        Some(&seq) => Ok(ChainStatus::Broken {
            seq,
            problem: decisions::ChainProblem::Damaged,
        }),
        None => Err(error.context("the store is damaged outside the decision records")),
    }
}

/// Runs `depfw log verify`: the status, and what was checked beyond the chain.
fn verify(
    log: &DecisionLog,
    dir: &std::path::Path,
    public_key: Option<&PathBuf>,
    checkpoints: Option<&PathBuf>,
    damaged: &[u64],
) -> anyhow::Result<(ChainStatus, String)> {
    let (public_key, checkpoints) = verify_inputs(public_key, checkpoints)?;
    crate::admin::chain::verify(log, Some(dir), public_key, checkpoints.as_deref(), damaged)
}

/// `--public-key` and `--checkpoints` read: the key and the checkpoint file's text.
pub(crate) fn verify_inputs(
    public_key: Option<&PathBuf>,
    checkpoints: Option<&PathBuf>,
) -> anyhow::Result<(Option<PublicKey>, Option<String>)> {
    let key = public_key.map(|path| PublicKey::read(path)).transpose()?;
    let text = checkpoints
        .map(|path| {
            std::fs::read_to_string(path)
                .with_context(|| format!("reading checkpoints from {}", path.display()))
        })
        .transpose()?;
    Ok((key, text))
}

/// One record as a line: seq, time, agent, package@version, verdict, outcome, request id.
pub(crate) fn line(r: &DecisionRecord) -> String {
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
    // A metadata record's hidden versions: which, and why. Versions hidden for the same
    // reason share a line (a known-malicious name hides every version it has); the first
    // few reasons are shown, then a count.
    const SHOWN: usize = 10;
    const VERSIONS_SHOWN: usize = 5;
    let mut groups: Vec<(&HiddenVersion, Vec<&str>)> = Vec::new();
    let mut index: HashMap<(Verdict, &str), usize> = HashMap::new();
    for h in &r.hidden {
        let at = *index
            .entry((h.verdict, h.reason.as_str()))
            .or_insert_with(|| {
                groups.push((h, Vec::new()));
                groups.len() - 1
            });
        groups[at].1.push(&h.version);
    }
    for (h, versions) in groups.iter().take(SHOWN) {
        let which = match versions.as_slice() {
            [one] => format!("{}@{one}", r.package),
            many if many.len() <= VERSIONS_SHOWN => {
                format!("{} {} versions: {}", r.package, many.len(), many.join(", "))
            }
            many => format!(
                "{} {} versions: {} and {} more",
                r.package,
                many.len(),
                many[..VERSIONS_SHOWN].join(", "),
                many.len() - VERSIONS_SHOWN
            ),
        };
        s.push_str(&format!(
            "\n          hidden {which} ({}): {}",
            h.verdict, h.reason
        ));
    }
    let more: usize = groups.iter().skip(SHOWN).map(|(_, v)| v.len()).sum();
    if more > 0 {
        s.push_str(&format!(
            "\n          and {more} more hidden versions (`depfw log export` lists them all)"
        ));
    }
    s
}
