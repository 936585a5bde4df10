//! `depfw agents add|list|rotate|revoke|suspend|resume`: manage agent identities in the
//! data directory.
//!
//! `add` and `rotate` print the new token once, with how the agent's clients send it (in the
//! `Authorization` header, read from `$DEPFW_TOKEN`; `depfw init <client> --agent NAME` has
//! the full configuration) and the `/a/<token>/` mirror URLs for clients that cannot;
//! depfw keeps only its hash, so a lost token is replaced with `rotate`, never recovered.
//! While `depfw serve` holds the store they go through its admin API (`cli::remote`).

use std::io::Write;
use std::process::ExitCode;

use super::exit;
use super::remote::Reached;
use crate::agents::{Agent, PolicyPreset, Token};
use crate::config::Config;

#[derive(Debug, clap::Subcommand)]
pub enum AgentsCommand {
    /// Create an agent and print its token (shown once).
    Add {
        name: String,
        /// Policy preset; default from `[agents] default-policy`.
        #[arg(long, value_enum)]
        policy: Option<PolicyPreset>,
    },
    /// List agents with their status.
    List,
    /// Replace an agent's token; the old one stops working at once.
    Rotate { name: String },
    /// Revoke an agent for good.
    Revoke { name: String },
    /// Stop an agent until it is resumed.
    Suspend {
        name: String,
        #[arg(long)]
        reason: String,
    },
    /// Let a suspended agent use the proxy again.
    Resume { name: String },
}

pub fn run(cmd: &AgentsCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let backend = match super::remote::open_backend(config)? {
        Reached::Local(backend) => backend,
        Reached::Remote(server) => return super::via_server::agents(cmd, config, &server),
    };
    let agents = backend.repos()?.agents;
    let mut out = std::io::stdout().lock();
    match cmd {
        AgentsCommand::Add { name, policy } => {
            let preset = policy.unwrap_or(config.agents.default_policy);
            let (agent, token) = agents.add(name, preset)?;
            writeln!(
                out,
                "created agent {} (policy {})",
                agent.name, agent.preset
            )?;
            print_token(&mut out, config, &agent.name, &token)?;
        }
        AgentsCommand::List => {
            let list = agents.list()?;
            if list.is_empty() {
                writeln!(out, "no agents (add one with `depfw agents add NAME`)")?;
            }
            for agent in &list {
                writeln!(out, "{}", describe(agent))?;
            }
        }
        AgentsCommand::Rotate { name } => {
            let token = agents.rotate(name)?;
            writeln!(
                out,
                "rotated the token of agent {name}; the old one no longer works"
            )?;
            print_token(&mut out, config, name, &token)?;
        }
        AgentsCommand::Revoke { name } => {
            agents.revoke(name)?;
            writeln!(out, "revoked agent {name}")?;
        }
        AgentsCommand::Suspend { name, reason } => {
            agents.suspend(name, reason)?;
            writeln!(out, "suspended agent {name}")?;
        }
        AgentsCommand::Resume { name } => {
            agents.resume(name)?;
            writeln!(out, "resumed agent {name}")?;
        }
    }
    if let Some(store) = backend.sled() {
        store.flush()?;
    }
    Ok(ExitCode::from(exit::CLEAN))
}

/// One line per agent: name, status, preset, dates.
pub fn describe(agent: &Agent) -> String {
    let date = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let mut line = format!(
        "{:<24} {:<9} policy={:<7} created {}",
        agent.name,
        agent.status(),
        agent.preset,
        date(agent.created)
    );
    if let Some(t) = agent.rotated {
        line.push_str(&format!(", rotated {}", date(t)));
    }
    if let Some(t) = agent.revoked {
        line.push_str(&format!(", revoked {}", date(t)));
    }
    if let Some(s) = &agent.suspended {
        line.push_str(&format!(", suspended {}: {}", date(s.at), s.reason));
    }
    line
}

/// The agent's mirror URLs for npm, PyPI and crates.io under the configured public URL.
pub fn mirror_urls(config: &Config, token: &Token) -> [String; 3] {
    crate::agents::mirror_urls(&config.server.public_url, token)
}

pub(crate) fn print_token(
    out: &mut impl Write,
    config: &Config,
    name: &str,
    token: &Token,
) -> std::io::Result<()> {
    let [npm, pypi, cargo] = mirror_urls(config, token);
    writeln!(
        out,
        "token (shown once, store it now): {}",
        token.expose_secret()
    )?;
    for line in crate::agents::setup_lines(&config.server.public_url, name) {
        writeln!(out, "{line}")?;
    }
    writeln!(
        out,
        "token in the URL, for clients that cannot send a header (the token is then written into lockfiles):"
    )?;
    writeln!(out, "           {npm} {pypi} sparse+{cargo}")
}
