//! `depfw overrides allow|deny|remove|list` and `depfw quarantine list|approve|reject`:
//! the human decisions, from the command line, on the data directory's store.
//!
//! These are the same operations the admin endpoint exposes; entries made here apply to
//! the proxy and to `depfw audit` as soon as they read the store. While `depfw serve` holds
//! the store they go through its admin API (`cli::remote`) and apply at once.

use std::io::Write;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use super::exit;
use super::remote::Reached;
use crate::config::Config;
use crate::policy::overrides::{OverrideEntry, OverrideKind};
use crate::store::overrides::{expiry, EntryText, FieldError, OverrideId, StoredOverride};
use crate::store::quarantine::{ApprovalScope, QuarantineId, QuarantineItem, QuarantineStatus};

#[derive(Debug, clap::Args)]
pub struct OverrideArgs {
    /// npm, pypi or crates.io.
    pub ecosystem: String,
    pub name: String,
    /// One version (the same as `--versions VERSION`).
    #[arg(conflicts_with = "versions")]
    pub version: Option<String>,
    /// `*` (every version, the default), an exact version, or a range (semver for npm and
    /// crates.io, PEP 440 for PyPI).
    #[arg(long)]
    pub versions: Option<String>,
    /// Why: shown to whoever hits the entry, and recorded with every decision it makes.
    #[arg(long)]
    pub reason: String,
    /// When the entry stops applying: a duration from now (90m, 2h, 7d, 1w), YYYY-MM-DD or
    /// RFC 3339.
    #[arg(long)]
    pub expires: Option<String>,
    /// Only for this agent's requests (the urgent fix for one agent: `depfw overrides
    /// allow npm foo 1.2.3 --agent ci-bot --expires 2h --reason "…"`).
    #[arg(long)]
    pub agent: Option<String>,
    /// Who decides (default: cli:$USER).
    #[arg(long)]
    pub by: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum OverridesCommand {
    /// Allow a package (or some of its versions) whatever the checks say.
    Allow(OverrideArgs),
    /// Deny a package (or some of its versions) whatever the checks say.
    Deny(OverrideArgs),
    /// Stop an entry from applying (it stays in the history).
    Remove {
        id: OverrideId,
        #[arg(long)]
        by: Option<String>,
    },
    /// Active entries; with `--all`, expired and removed ones too.
    List {
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum QuarantineCommand {
    /// Held versions waiting for a decision; with `--all`, resolved ones too.
    List {
        #[arg(long)]
        all: bool,
    },
    /// Allow a held version (or a range including it) with an allow entry.
    Approve {
        id: QuarantineId,
        #[arg(long)]
        reason: String,
        /// When the allow entry stops applying: YYYY-MM-DD or RFC 3339.
        #[arg(long)]
        expires: Option<String>,
        /// Allow this range instead of the one version; it must include the held version.
        #[arg(long)]
        range: Option<String>,
        #[arg(long)]
        by: Option<String>,
    },
    /// Refuse a held version with a deny entry.
    Reject {
        id: QuarantineId,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: Option<String>,
    },
}

pub fn run(cmd: &OverridesCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let backend = match super::remote::open_backend(config)? {
        Reached::Local(backend) => backend,
        Reached::Remote(server) => return super::via_server::overrides(cmd, &server),
    };
    let overrides = backend.repos()?.overrides;
    let now = Utc::now();
    let mut out = std::io::stdout().lock();
    match cmd {
        OverridesCommand::Allow(args) | OverridesCommand::Deny(args) => {
            let kind = match cmd {
                OverridesCommand::Deny(_) => OverrideKind::Deny,
                _ => OverrideKind::Allow,
            };
            let entry = args.entry(kind)?;
            if let Some(agent) = &entry.agent {
                // An entry for an agent that does not exist would silently apply to nobody.
                backend.repos()?.agents.get(agent)?;
            }
            let id = overrides.add(&entry, now)?;
            writeln!(
                out,
                "added {} entry {id}: {}",
                kind_str(kind),
                summary(&entry)
            )?;
        }
        OverridesCommand::Remove { id, by } => {
            let record = overrides.remove(*id, &author(by.as_deref()), now)?;
            writeln!(
                out,
                "removed entry {id}: {} {}",
                record.name, record.versions
            )?;
        }
        OverridesCommand::List { all } => {
            let list = overrides.list(*all, now)?;
            if list.is_empty() {
                writeln!(out, "no entries")?;
            }
            for record in &list {
                writeln!(out, "{}", describe_override(record, now))?;
            }
        }
    }
    if let Some(store) = backend.sled() {
        store.flush()?;
    }
    Ok(ExitCode::from(exit::CLEAN))
}

pub fn run_quarantine(cmd: &QuarantineCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let backend = match super::remote::open_backend(config)? {
        Reached::Local(backend) => backend,
        Reached::Remote(server) => return super::via_server::quarantine(cmd, &server),
    };
    let queue = backend.repos()?.quarantine;
    let now = Utc::now();
    let mut out = std::io::stdout().lock();
    match cmd {
        QuarantineCommand::List { all } => {
            let status = (!*all).then_some(QuarantineStatus::Pending);
            let items = queue.list(status)?;
            if items.is_empty() {
                writeln!(out, "nothing in quarantine")?;
            }
            for item in &items {
                writeln!(out, "{}", describe_item(item))?;
            }
        }
        QuarantineCommand::Approve {
            id,
            reason,
            expires,
            range,
            by,
        } => {
            let scope = match range {
                Some(r) => ApprovalScope::Range(r.clone()),
                None => ApprovalScope::ThisVersion,
            };
            let expires = expiry(expires.as_deref())?;
            let entry = queue.approve(*id, &scope, reason, expires, &author(by.as_deref()), now)?;
            writeln!(out, "approved item {id}: allow entry {entry}")?;
        }
        QuarantineCommand::Reject { id, reason, by } => {
            let entry = queue.reject(*id, reason, &author(by.as_deref()), now)?;
            writeln!(out, "rejected item {id}: deny entry {entry}")?;
        }
    }
    if let Some(store) = backend.sled() {
        store.flush()?;
    }
    Ok(ExitCode::from(exit::CLEAN))
}

impl OverrideArgs {
    /// The entry these arguments describe, by `--by` or `cli:$USER`.
    pub(crate) fn entry(&self, kind: OverrideKind) -> Result<OverrideEntry, FieldError> {
        let by = author(self.by.as_deref());
        EntryText {
            ecosystem: &self.ecosystem,
            name: &self.name,
            versions: self.scope(),
            reason: &self.reason,
            expires: self.expires.as_deref(),
            by: &by,
            agent: self.agent.as_deref(),
        }
        .parse(kind)
    }

    /// The versions the entry covers: the one version, `--versions`, or every version.
    pub(crate) fn scope(&self) -> &str {
        self.version
            .as_deref()
            .or(self.versions.as_deref())
            .unwrap_or("*")
    }
}

/// What an added entry covers, for the confirmation line: package, versions, agent and
/// expiry.
pub(crate) fn summary(entry: &OverrideEntry) -> String {
    let mut line = format!("{} {}", entry.name, entry.versions);
    if let Some(agent) = &entry.agent {
        line.push_str(&format!(" for agent {agent}"));
    }
    if let Some(expires) = entry.expires {
        line.push_str(&format!(", until {}", date(expires)));
    }
    line
}

fn author(by: Option<&str>) -> String {
    match by {
        Some(by) => by.to_owned(),
        None => format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned())
        ),
    }
}

pub(crate) fn kind_str(kind: OverrideKind) -> &'static str {
    match kind {
        OverrideKind::Allow => "allow",
        OverrideKind::Deny => "deny",
    }
}

fn date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// One line per entry: id, status, kind, package, scope, reason, provenance.
pub(crate) fn describe_override(record: &StoredOverride, now: DateTime<Utc>) -> String {
    let mut line = format!(
        "{:>5} {:<7} {:<5} {} {} {}{} ({}) by {} at {}",
        record.id,
        record.status(now).as_str(),
        kind_str(record.kind),
        record.ecosystem,
        record.name,
        record.versions,
        match &record.agent {
            Some(agent) => format!(" for agent {agent}"),
            None => String::new(),
        },
        record.reason,
        record.created_by,
        date(record.created_at),
    );
    if let Some(e) = record.expires {
        line.push_str(&format!(", expires {}", date(e)));
    }
    if let (Some(at), Some(by)) = (record.removed_at, &record.removed_by) {
        line.push_str(&format!(", removed by {by} at {}", date(at)));
    }
    line
}

/// One line per held version: id, status, package, requests, reasons.
pub(crate) fn describe_item(item: &QuarantineItem) -> String {
    let who: Vec<&str> = item.requesters.iter().map(|r| r.who.as_str()).collect();
    let reasons: Vec<&str> = item.reasons.iter().map(|f| f.code.as_str()).collect();
    let mut line = format!(
        "{:>5} {:<8} {} {}@{} requested {}x by {} (last {}); held for: {}",
        item.id,
        item.status.as_str(),
        item.ecosystem,
        item.name,
        item.version,
        item.request_count,
        who.join(", "),
        date(item.last_seen),
        if reasons.is_empty() {
            "-".to_owned()
        } else {
            reasons.join(", ")
        },
    );
    for r in &item.requesters {
        if let Some(j) = &r.justification {
            line.push_str(&format!("; {} asks: \"{j}\"", r.who));
        }
    }
    if let Some(r) = &item.resolution {
        line.push_str(&format!(
            "; {} by {} ({}), entry {}",
            item.status.as_str(),
            r.by,
            r.reason,
            r.override_id
        ));
    }
    line
}
