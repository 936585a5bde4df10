//! `depfw feeds …`: import, sync, inspect and snapshot the advisory feeds.
//!
//! - `import <path> [--name N]`: load OSV data from a file, directory or `all.zip` into the
//!   store under source name N;
//! - `sync`: download every `[[feeds.sources]]` URL, parse and store each; one failing source
//!   does not stop the others and keeps its last good data, or, with none, its ecosystems
//!   keep the bundled snapshot (exit 2 if any failed);
//! - `status`: sources, counts, age and last error (stale after `feeds.stale-after-days`);
//! - while `depfw serve` holds the store, `import`, `sync` and `status` go through its
//!   admin API (`cli::via_server`): the server syncs its own configured sources, stores
//!   the data and applies it at once, and the command prints what the local path prints;
//! - `snapshot --from <shared data> --out feeds/`: rebuild the bundled snapshot;
//! - `popular-index --out feeds/popular/`: rebuild the prebuilt typosquat indexes of the
//!   bundled popular-name lists (after a list or the name forms change).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;

use crate::config::Config;
use crate::engine::feed_update::{self, Coverage};
use crate::feeds::AdvisoryIndex;
use crate::feeds::{load_path, snapshot};
use crate::store::feeds::{active_index, FeedStore, SourceStatus};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum FeedsCommand {
    /// Import OSV advisories from a file, directory tree or all.zip into the store.
    Import {
        /// A `.json` record, a directory of them, a `.jsonl` file or an OSV `all.zip`.
        path: PathBuf,
        /// Source name in the store (default: the file or directory name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Download every configured feed source and store what parses.
    Sync,
    /// Show the stored feed sources: counts, age, last error.
    Status,
    /// Rebuild the bundled snapshot from a copy of the shared data set.
    Snapshot {
        /// The data set root (with malicious/ and advisories/).
        #[arg(long)]
        from: PathBuf,
        /// Where to write advisories-<ecosystem>.json.gz, their packed form
        /// advisories-<ecosystem>.idx (the one compiled in) and snapshot.json.
        #[arg(long, default_value = "feeds")]
        out: PathBuf,
    },
    /// Rebuild the prebuilt indexes (`*.idx`) of the popular-name lists compiled in.
    PopularIndex {
        /// Where to write npm.idx, pypi.idx and crates-io.idx.
        #[arg(long, default_value = "feeds/popular")]
        out: PathBuf,
    },
}

pub fn run(cmd: FeedsCommand, config: &Config) -> anyhow::Result<ExitCode> {
    match cmd {
        FeedsCommand::Snapshot { from, out } => {
            let meta = snapshot::build(&from, &out)
                .with_context(|| format!("building the snapshot from {}", from.display()))?;
            for s in &meta.sources {
                println!(
                    "{:<16} {:>6} records ({} withdrawn) -> {:>6} advisories",
                    s.name, s.records, s.withdrawn, s.advisories
                );
            }
            println!(
                "wrote {} advisories to {} and {}",
                meta.advisories,
                out.join("advisories-*.json.gz").display(),
                out.join("advisories-*.idx").display()
            );
            Ok(ExitCode::SUCCESS)
        }
        FeedsCommand::PopularIndex { out } => {
            for (file, bytes) in crate::policy::typosquat::PopularIndex::rebuilt_bundled_files() {
                let path = out.join(file);
                std::fs::write(&path, &bytes)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("wrote {} ({} bytes)", path.display(), bytes.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        FeedsCommand::Import { path, name } => {
            let name = name.unwrap_or_else(|| default_name(&path));
            if let Some(server) = super::remote::running(config)? {
                return super::via_server::import_feed(&server, &path, &name);
            }
            let feeds = open(config)?;
            let imported = feed_update::import(&feeds, &name, load_path(&path))?;
            println!("{}", imported.line());
            Ok(ExitCode::SUCCESS)
        }
        FeedsCommand::Sync => {
            let report = match super::remote::running(config)? {
                Some(server) => {
                    let report = super::via_server::sync_feeds(&server)?;
                    for source in &report.sources {
                        eprintln!("{}", source.line());
                    }
                    report
                }
                None => {
                    let feeds = open(config)?;
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    let timeout = Duration::from_secs(config.upstream.timeout_secs);
                    runtime.block_on(feed_update::sync(
                        &feeds,
                        &config.feeds.sources,
                        timeout,
                        true,
                        &mut |source| eprintln!("{}", source.line()),
                    ))?
                }
            };
            Ok(if report.failed() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        FeedsCommand::Status => {
            let mut out = std::io::stdout().lock();
            if let Some(server) = super::remote::running(config)? {
                let details = super::via_server::feed_details(&server)?;
                print_status(&mut out, &details.sources, config.feeds.stale_after_days)?;
                print_coverage_of(&mut out, &details.coverage)?;
                return Ok(ExitCode::SUCCESS);
            }
            // A status query must not create a store where there is none.
            let store = if config.server.data_dir.join("store").exists() {
                Some(super::remote::open_here(config, "`depfw feeds status`")?)
            } else {
                None
            };
            let sources = match &store {
                Some(store) => FeedStore::new(store)?.status()?,
                None => Vec::new(),
            };
            print_status(&mut out, &sources, config.feeds.stale_after_days)?;
            let index = active_index(&config.feeds, store.as_ref())?;
            print_coverage(&mut out, &index)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn open(config: &Config) -> anyhow::Result<FeedStore> {
    let store = super::remote::open_here(config, "`depfw feeds import` or `sync`")?;
    Ok(FeedStore::new(&store)?)
}

fn default_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "import".to_owned(), |n| n.to_string_lossy().into_owned())
}

/// What the data in use can catch, per ecosystem: an ecosystem with known-malicious
/// package records but no vulnerability advisories is said to be so, because a clean
/// verdict there means "not known malicious", not "no known CVE"; and how recent its newest
/// vulnerability advisory is (the bundled npm ones, from the Node.js Security WG, stop
/// around 2019).
pub fn print_coverage(out: &mut impl std::io::Write, index: &AdvisoryIndex) -> std::io::Result<()> {
    print_coverage_of(out, &feed_update::coverage(index))
}

/// [`print_coverage`] from the per-ecosystem figures (as a running server reports them).
pub(crate) fn print_coverage_of(
    out: &mut impl std::io::Write,
    coverage: &[Coverage],
) -> std::io::Result<()> {
    writeln!(out, "advisory data in use, per ecosystem:")?;
    for c in coverage {
        let (malicious, vulnerabilities) = (c.malicious, c.vulnerabilities);
        // How current the vulnerability data is: npm's offline advisories stop around 2019.
        let newest = c
            .newest_vulnerability
            .map(|t| format!(" (the newest published {})", t.format("%Y-%m-%d")))
            .unwrap_or_default();
        let scope = match (malicious > 0, vulnerabilities > 0) {
            (_, true) => format!("vulnerabilities{newest} and known-malicious packages"),
            (true, false) => {
                "known-malicious packages only, no vulnerability advisories".to_owned()
            }
            (false, false) => "nothing: every version passes the advisory check".to_owned(),
        };
        let mut line = format!(
            "  {:<10} {malicious} malicious-package records, {vulnerabilities} vulnerability advisories",
            c.ecosystem.to_string()
        );
        if c.informational > 0 {
            line.push_str(&format!(", {} informational", c.informational));
        }
        writeln!(out, "{line}: {scope}")?;
    }
    Ok(())
}

/// The status table `depfw feeds status` prints.
pub fn print_status(
    out: &mut impl std::io::Write,
    sources: &[SourceStatus],
    stale_after_days: u64,
) -> std::io::Result<()> {
    if sources.is_empty() {
        writeln!(
            out,
            "no feeds in the store: the bundled snapshot is used (run `depfw feeds sync`)"
        )?;
        if let Ok(meta) = snapshot::bundled_meta() {
            writeln!(
                out,
                "bundled snapshot: {} advisories, built {}",
                meta.advisories,
                meta.built_at.format("%Y-%m-%d")
            )?;
        }
        return Ok(());
    }
    let now = Utc::now();
    for s in sources {
        let counts: Vec<String> = s
            .by_ecosystem
            .iter()
            .map(|(eco, n)| format!("{eco} {n}"))
            .collect();
        let age = match s.age(now) {
            Some(age) if age.num_hours() < 48 => format!("{}h old", age.num_hours()),
            Some(age) => format!("{}d old", age.num_days()),
            None => "never fetched".to_owned(),
        };
        let stale = if s.is_stale(now, stale_after_days) {
            " STALE"
        } else {
            ""
        };
        writeln!(
            out,
            "{:<20} {:>7} advisories ({})  {age}{stale}",
            s.name,
            s.advisories(),
            if counts.is_empty() {
                "-".to_owned()
            } else {
                counts.join(", ")
            }
        )?;
        if let (Some(err), Some(at)) = (&s.last_error, s.last_error_at) {
            writeln!(
                out,
                "  last error {}: {err}",
                at.format("%Y-%m-%d %H:%M UTC")
            )?;
        }
    }
    out.flush()
}
