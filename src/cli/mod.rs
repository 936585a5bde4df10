//! The `depfw` command line: `serve`, `audit`, `check`, `feeds`, `init`.
//!
//! Exit codes are a contract (tested in `tests/cli_exit_codes.rs`):
//! 0 clean (allow/warn), 1 policy findings (quarantine/deny, or at `--fail-on`),
//! 2 tool error (bad input, unreadable files, config errors). Usage errors from clap also
//! exit 2.

pub mod agents;
pub(crate) mod audit;
pub(crate) mod check;
pub(crate) mod completions;
pub(crate) mod data_dir;
pub(crate) mod doctor;
pub mod feeds;
pub(crate) mod init;
pub(crate) mod log;
pub(crate) mod mcp;
pub mod overrides;
pub(crate) mod probe;
pub(crate) mod remote;
pub(crate) mod serve;
mod via_server;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// Process exit codes.
pub mod exit {
    /// Nothing at or above the failure level.
    pub(crate) const CLEAN: u8 = 0;
    /// Policy findings at or above the failure level.
    pub(crate) const FINDINGS: u8 = 1;
    /// depfw itself could not do its job.
    pub(crate) const ERROR: u8 = 2;
}

#[derive(Debug, Parser)]
#[command(
    name = "depfw",
    version,
    about = "Supply-chain dependency firewall: a policy-enforcing registry proxy and lockfile auditor for npm, PyPI and crates.io"
)]
pub(crate) struct Cli {
    /// Config file (TOML); defaults apply without one. See config/depfw.example.toml.
    #[arg(long, global = true, env = "DEPFW_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory holding the store (feeds, caches, decisions, overrides). Default:
    /// `server.data-dir`, else `$STATE_DIRECTORY`, `$XDG_STATE_HOME/depfw` or
    /// `~/.local/state/depfw`, never the working directory.
    #[arg(long, global = true, env = "DEPFW_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where shared state lives: a `postgres://` URL (many replicas, one database), or
    /// `sled` for the embedded store in the data directory; overrides `store.url`.
    #[arg(
        long,
        global = true,
        env = "DEPFW_STORE",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub store: Option<String>,
    /// The base URL clients reach depfw at; overrides `server.public-url`, so that `serve`,
    /// `init` and `agents add` agree on the URLs they print and write into metadata.
    #[arg(long, global = true, env = "DEPFW_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<url::Url>,
    /// How log lines on stderr look: `human` (colours only on a terminal), or `json` (one
    /// object a line, for a log shipper). Paths are logged with agent tokens masked.
    #[arg(
        long,
        global = true,
        env = "DEPFW_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Human
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the registry proxy that agents' package managers use as their mirror.
    Serve(serve::ServeArgs),
    /// Print the configuration that points a package manager at this depfw.
    Init(init::InitArgs),
    /// Check a project's package-manager configs and lockfiles: do they point at depfw,
    /// do their release cooldowns agree with depfw's, is a token written into one?
    Doctor(doctor::DoctorArgs),
    /// Print the verdict and findings for packages given on the command line or stdin.
    Check(check::CheckArgs),
    /// Scan lockfiles with the same policy as the proxy.
    Audit(audit::AuditArgs),
    /// Manage agent identities and their mirror tokens (through `depfw serve`'s admin API
    /// while it runs).
    #[command(subcommand)]
    Agents(agents::AgentsCommand),
    /// Manage allow-list and deny-list entries in the store.
    #[command(subcommand)]
    Overrides(overrides::OverridesCommand),
    /// Review quarantined package versions: approve or reject.
    #[command(subcommand)]
    Quarantine(overrides::QuarantineCommand),
    /// Advisory feeds: import, sync, status, snapshot (import, sync and status through
    /// `depfw serve`'s admin API while it runs).
    #[command(subcommand)]
    Feeds(feeds::FeedsCommand),
    /// The decision log (provenance): verify its hash chain, export, show.
    #[command(subcommand)]
    Log(log::LogCommand),
    /// Serve the Model Context Protocol on stdio for an agent tool (Claude Code, Cursor,
    /// …): the agent asks depfw about packages and refusals, and for approval, with its
    /// token (`DEPFW_TOKEN`).
    Mcp(mcp::McpArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff).
    Manpage,
    /// GET a URL and exit 0 on a 2xx answer, 1 otherwise: the container's health check.
    Probe(probe::ProbeArgs),
}

/// Where the config comes from: the file and the global settings that override it, kept
/// by `depfw serve` to read it again on a reload.
/// No `Debug`: `store` may be a database URL with its password.
#[derive(Clone)]
pub(crate) struct ConfigSource {
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    store: Option<String>,
    public_url: Option<url::Url>,
    /// Whether the command fails without a data directory (else it runs without a store).
    needs_data_dir: bool,
}

impl ConfigSource {
    fn of(cli: &Cli) -> ConfigSource {
        ConfigSource {
            config: cli.config.clone(),
            data_dir: cli.data_dir.clone(),
            store: cli.store.clone(),
            public_url: cli.public_url.clone(),
            needs_data_dir: matches!(
                StoreUse::of(&cli.command),
                StoreUse::Backend | StoreUse::DataDir
            ),
        }
    }

    /// Reads and validates the config.
    pub(crate) fn load(&self) -> anyhow::Result<Config> {
        Ok(self.load_located()?.0)
    }

    /// Reads and validates the config, and says where its data directory came from
    /// (`None`: none could be found, and the command runs without a store).
    fn load_located(&self) -> anyhow::Result<(Config, Option<data_dir::Source>)> {
        let cli = self; // the same settings as on the command line
        let mut config = match &cli.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let configured =
            Some(config.server.data_dir.as_path()).filter(|d| !d.as_os_str().is_empty());
        let located = match data_dir::resolve(cli.data_dir.as_deref(), configured, &|name| {
            std::env::var_os(name)
        }) {
            Ok((dir, source)) => {
                config.server.data_dir = dir;
                Some(source)
            }
            Err(e) if cli.needs_data_dir => return Err(e),
            Err(_) => None,
        };
        match cli.store.as_deref().map(str::trim) {
            None | Some("") => {}
            Some("sled") => config.store.url = None,
            Some(url) => {
                config.store.url = Some(
                    crate::config::DatabaseUrl::parse(url)
                        .map_err(|e| anyhow::anyhow!("--store: {e}"))?,
                )
            }
        }
        if let Some(url) = &cli.public_url {
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                anyhow::bail!("--public-url `{url}`: expected an http(s) URL with a host");
            }
            config.server.public_url = url.clone();
        }
        Ok((config, located))
    }
}

/// Whether the user pointed us at a data directory (flag, env, or an existing store in
/// the configured or default one). One-shot commands must not create a store as a side
/// effect.
pub(crate) fn data_dir_in_use(cli: &Cli, config: &Config) -> bool {
    let dir = &config.server.data_dir;
    cli.data_dir.is_some() || (!dir.as_os_str().is_empty() && dir.join("store").exists())
}

/// Which store a command uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreUse {
    /// The configured backend: PostgreSQL when `store.url` is set, else the data
    /// directory's sled store.
    Backend,
    /// The data directory's own sled store (the feeds), whatever `store.url` says.
    DataDir,
    /// The data directory's sled store when one is there or `--data-dir` names it
    /// ([`data_dir_in_use`]), else none.
    DataDirIfThere,
    None,
}

impl StoreUse {
    fn of(command: &Command) -> StoreUse {
        match command {
            Command::Serve(_)
            | Command::Agents(_)
            | Command::Overrides(_)
            | Command::Quarantine(_)
            | Command::Log(_) => StoreUse::Backend,
            Command::Feeds(
                feeds::FeedsCommand::Import { .. }
                | feeds::FeedsCommand::Sync
                | feeds::FeedsCommand::Status,
            ) => StoreUse::DataDir,
            Command::Check(_) | Command::Audit(_) | Command::Mcp(_) => StoreUse::DataDirIfThere,
            Command::Feeds(_)
            | Command::Init(_)
            | Command::Completions(_)
            | Command::Manpage
            | Command::Doctor(_)
            | Command::Probe(_) => StoreUse::None,
        }
    }
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Human,
    Json,
}

/// `serve` logs through [`logging`]'s buffered writer, field formatter and timer (a line
/// per request, issue #17); a one-shot command writes each warning to stderr as it comes,
/// in order with what it prints itself.
fn init_logging(default_level: &str, format: LogFormat, serve: bool) {
    use crate::observe::logging::{self, LogWriter, PlainFields, UtcMicros};
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("DEPFW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    if serve {
        logging::flush_on_panic();
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(UtcMicros)
        .with_writer(LogWriter { buffered: serve });
    // Ignore the error: a second init (tests calling main twice) keeps the first subscriber.
    let _ = match format {
        // Colour codes only where a person reads them, never into a log file.
        LogFormat::Human => builder
            .fmt_fields(PlainFields)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = parse_args();
    // The server logs its decisions; one-shot commands only warn.
    let level = if matches!(cli.command, Command::Serve(_)) {
        "info,tower_http=warn"
    } else {
        // `--log-format json` says which store a command uses as a log line of its own.
        "warn,depfw::cli::data_dir=info"
    };
    init_logging(
        level,
        cli.log_format,
        matches!(cli.command, Command::Serve(_)),
    );
    let result = run(cli);
    // Every line logged, before anything else is printed and before the process exits.
    crate::observe::logging::flush();
    match result {
        Ok(code) => code,
        Err(error) => {
            if is_broken_pipe(&error) {
                return ExitCode::from(exit::CLEAN);
            }
            eprintln!("depfw: error: {error:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}

/// `Cli::parse()`, except that clap's command tree and matches are not freed: the process
/// keeps them until it ends, and freeing their hundreds of allocations one by one was ~2%
/// of the instructions of a `depfw audit` of a 400-crate Cargo.lock. Errors, `--help` and
/// `--version` exit just as `Cli::parse()` makes them.
fn parse_args() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = Cli::command();
    let cli = command
        .try_get_matches_from_mut(std::env::args_os())
        .and_then(|mut matches| {
            let cli = Cli::from_arg_matches_mut(&mut matches);
            std::mem::forget(matches);
            cli
        });
    match cli {
        Ok(cli) => {
            std::mem::forget(command);
            cli
        }
        Err(e) => e.format(&mut command).exit(),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // A health check needs no config: it must not fail on (or read) the server's files.
    if let Command::Probe(args) = &cli.command {
        return probe::run(args);
    }
    let (config, located) = ConfigSource::of(&cli).load_located()?;
    let backend = match StoreUse::of(&cli.command) {
        StoreUse::Backend => Some(true),
        StoreUse::DataDir => Some(false),
        StoreUse::DataDirIfThere => data_dir_in_use(&cli, &config).then_some(false),
        StoreUse::None => None,
    };
    if let (Some(source), Some(backend)) = (located, backend) {
        data_dir::announce(&config, source, backend, cli.log_format == LogFormat::Json);
    }
    match &cli.command {
        Command::Serve(args) => {
            // A reload (SIGHUP) reads the file again, with the same command-line settings.
            let source = ConfigSource::of(&cli);
            serve::run(args, config, move || source.load())
        }
        Command::Init(args) => init::run(args, &config),
        Command::Doctor(args) => doctor::run(args, &config),
        Command::Check(args) => check::run(args, &cli, &config),
        Command::Audit(args) => audit::run(args, &cli, &config),
        Command::Agents(cmd) => agents::run(cmd, &config),
        Command::Overrides(cmd) => overrides::run(cmd, &config),
        Command::Quarantine(cmd) => overrides::run_quarantine(cmd, &config),
        Command::Feeds(cmd) => feeds::run(cmd.clone(), &config),
        Command::Log(cmd) => log::run(cmd, &config),
        Command::Mcp(args) => mcp::run(args, &cli, &config),
        Command::Completions(args) => completions::completions(args),
        Command::Manpage => completions::manpage(),
        Command::Probe(args) => probe::run(args),
    }
}

/// `depfw audit --format json | head` must not report an error.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
