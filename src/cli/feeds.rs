//! `depfw feeds …`: import, sync, inspect and snapshot the advisory feeds.
//!
//! - `import <path> [--name N]`: load OSV data from a file, directory or `all.zip` into the
//!   store under source name N;
//! - `sync`: download every `[[feeds.sources]]` URL, parse and store each; one failing source
//!   does not stop the others and keeps its last good data, or, with none, its ecosystems
//!   keep the bundled snapshot (exit 2 if any failed);
//! - `status`: sources, counts, age and last error (stale after `feeds.stale-after-days`);
//! - `snapshot --from <shared data> --out feeds/`: rebuild the bundled snapshot;
//! - `popular-index --out feeds/popular/`: rebuild the prebuilt typosquat indexes of the
//!   bundled popular-name lists (after a list or the name forms change).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use futures_util::StreamExt as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::{Config, FeedSource};
use crate::feeds::AdvisoryIndex;
use crate::feeds::{load_bytes, load_path, snapshot};
use crate::package::Ecosystem;
use crate::store::feeds::{active_index, FeedStore, SourceStatus};

/// Largest feed download accepted (the OSV npm archive is a few hundred MB).
pub(crate) const MAX_FEED_BYTES: u64 = 1024 * 1024 * 1024;

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
            let feeds = open(config)?;
            let name = name.unwrap_or_else(|| default_name(&path));
            match load_path(&path) {
                Ok(feed) => {
                    let status = feeds.save(&name, &feed, Utc::now())?;
                    println!(
                        "imported {} advisories ({} records, {} withdrawn) as `{name}`",
                        status.advisories(),
                        feed.records,
                        feed.withdrawn
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    feeds.record_failure(&name, &e.to_string(), Utc::now())?;
                    Err(anyhow::Error::new(e).context(format!("importing `{name}`")))
                }
            }
        }
        FeedsCommand::Sync => {
            let feeds = open(config)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let timeout = Duration::from_secs(config.upstream.timeout_secs);
            let failed = runtime.block_on(sync(&feeds, &config.feeds.sources, timeout))?;
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        FeedsCommand::Status => {
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
            let mut out = std::io::stdout().lock();
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

/// Syncs every source; returns how many failed. Errors only if the store itself fails.
async fn sync(
    feeds: &FeedStore,
    sources: &[FeedSource],
    timeout: Duration,
) -> anyhow::Result<usize> {
    let client = reqwest::Client::builder()
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .user_agent(concat!("depfw/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let mut failed = 0;
    for source in sources {
        let outcome = match download(&client, source).await {
            Ok(bytes) => {
                load_bytes(Path::new(source.url.as_str()), &bytes).map_err(anyhow::Error::from)
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(feed) => {
                let status = feeds.save(&source.name, &feed, Utc::now())?;
                eprintln!("{}: {} advisories", source.name, status.advisories());
            }
            Err(e) => {
                failed += 1;
                let message = format!("{e:#}");
                feeds.record_failure(&source.name, &message, Utc::now())?;
                let kept = feeds
                    .status()?
                    .into_iter()
                    .find(|s| s.name == source.name)
                    .and_then(|s| Some((s.fetched_at?, s.advisories())));
                let kept = match kept {
                    Some((at, n)) => format!(
                        "keeping its data from {} ({n} advisories)",
                        at.format("%Y-%m-%d %H:%M UTC")
                    ),
                    None => "no earlier data for this source: ecosystems no synced source \
                             covers use the bundled snapshot (unless feeds.bundled = false)"
                        .to_owned(),
                };
                eprintln!("{}: FAILED ({kept}): {message}", source.name);
            }
        }
    }
    Ok(failed)
}

async fn download(client: &reqwest::Client, source: &FeedSource) -> anyhow::Result<Vec<u8>> {
    let response = client
        .get(source.url.clone())
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("downloading {}", source.url))?;
    let expected = response.content_length();
    if expected.is_some_and(|len| len > MAX_FEED_BYTES) {
        anyhow::bail!("{} is larger than {MAX_FEED_BYTES} bytes", source.url);
    }
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(expected, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
    {
        bar.set_style(style);
    }
    bar.set_prefix(source.name.clone());
    let mut body =
        Vec::with_capacity(usize::try_from(expected.unwrap_or(0).min(MAX_FEED_BYTES)).unwrap_or(0));
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.with_context(|| format!("downloading {}", source.url))?;
        if body.len() as u64 + chunk.len() as u64 > MAX_FEED_BYTES {
            bar.abandon();
            anyhow::bail!("{} is larger than {MAX_FEED_BYTES} bytes", source.url);
        }
        body.extend_from_slice(&chunk);
        bar.set_position(body.len() as u64);
    }
    bar.finish_and_clear();
    Ok(body)
}

/// What the data in use can catch, per ecosystem: an ecosystem with known-malicious
/// package records but no vulnerability advisories is said to be so, because a clean
/// verdict there means "not known malicious", not "no known CVE"; and how recent its newest
/// vulnerability advisory is (the bundled npm ones, from the Node.js Security WG, stop
/// around 2019).
pub fn print_coverage(out: &mut impl std::io::Write, index: &AdvisoryIndex) -> std::io::Result<()> {
    let counts = index.counts();
    let count = |eco: Ecosystem, kinds: &[&str]| -> usize {
        kinds
            .iter()
            .map(|k| counts.get(&(eco, *k)).copied().unwrap_or(0))
            .sum()
    };
    writeln!(out, "advisory data in use, per ecosystem:")?;
    for eco in Ecosystem::ALL {
        let malicious = count(eco, &["malicious"]);
        let vulnerabilities = count(eco, &["vulnerability"]);
        let informational = count(eco, &["unmaintained", "unsound", "notice"]);
        // How current the vulnerability data is: npm's offline advisories stop around 2019.
        let newest = index
            .iter()
            .filter(|a| a.ecosystem == eco && a.kind.as_str() == "vulnerability")
            .filter_map(|a| a.published)
            .max()
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
            eco.to_string()
        );
        if informational > 0 {
            line.push_str(&format!(", {informational} informational"));
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
