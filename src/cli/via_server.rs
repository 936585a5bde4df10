//! The store-opening admin commands done through a running `depfw serve`'s admin API
//! (`cli::remote` finds the server): `agents`, `overrides`, `quarantine`,
//! `log show|export|verify` and `feeds import|sync|status`, and the policy's verdicts for
//! `check` and `audit` ([`Judge`]). Arguments are checked as the local path checks them, and the
//! answers are printed by the same functions, so the output is the local path's.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::agents::{describe, print_token, AgentsCommand};
use super::exit;
use super::log::{line, verify_inputs, LogCommand};
use super::overrides::{
    describe_item, describe_override, kind_str, summary, OverridesCommand, QuarantineCommand,
};
use super::remote::Server;
use crate::admin::Verified;
use crate::agents::{Agent, Token};
use crate::audit::evaluate::{infallible, Answer, Evaluator, Query, QueryRef, MAX_BATCH};
use crate::config::Config;
use crate::engine::feed_update::{FeedDetails, Imported, SyncReport};
use crate::policy::overrides::OverrideKind;
use crate::store::decisions::DecisionRecord;
use crate::store::overrides::{expiry, StoredOverride};
use crate::store::quarantine::QuarantineItem;

/// `{items: [...]}`, as the API lists things.
#[derive(Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

/// A new or rotated agent token: the one answer that carries it.
#[derive(Deserialize)]
struct NewToken {
    agent: Agent,
    token: String,
}

/// A quarantine approval or rejection: the entry it made.
#[derive(Deserialize)]
struct Resolution {
    #[serde(rename = "override")]
    entry: StoredOverride,
}

/// The server records its changes as made by `admin`; say so when `--by` asked otherwise.
fn note_author(by: Option<&str>) {
    if let Some(by) = by {
        eprintln!(
            "depfw: the admin API records the change as made by `admin`, not `{by}` (--by is \
             kept only when the command opens the store itself)"
        );
    }
}

pub(crate) fn agents(
    cmd: &AgentsCommand,
    config: &Config,
    server: &Server,
) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let token = |made: &NewToken| Token::parse(&made.token).context("the token the server made");
    match cmd {
        AgentsCommand::Add { name, policy } => {
            let preset = policy.unwrap_or(config.agents.default_policy);
            let made: NewToken = server.post(
                &["agents"],
                &json!({ "name": name, "policy": preset.as_str() }),
            )?;
            writeln!(
                out,
                "created agent {} (policy {})",
                made.agent.name, made.agent.preset
            )?;
            print_token(&mut out, config, &made.agent.name, &token(&made)?)?;
        }
        AgentsCommand::List => {
            let list: Items<Agent> = server.get(&["agents"], &[])?;
            if list.items.is_empty() {
                writeln!(out, "no agents (add one with `depfw agents add NAME`)")?;
            }
            for agent in &list.items {
                writeln!(out, "{}", describe(agent))?;
            }
        }
        AgentsCommand::Rotate { name } => {
            let made: NewToken = server.post(&["agents", name, "rotate"], &json!({}))?;
            writeln!(
                out,
                "rotated the token of agent {name}; the old one no longer works"
            )?;
            print_token(&mut out, config, name, &token(&made)?)?;
        }
        AgentsCommand::Revoke { name } => {
            let _: Agent = server.post(&["agents", name, "revoke"], &json!({}))?;
            writeln!(out, "revoked agent {name}")?;
        }
        AgentsCommand::Suspend { name, reason } => {
            let _: Agent =
                server.post(&["agents", name, "suspend"], &json!({ "reason": reason }))?;
            writeln!(out, "suspended agent {name}")?;
        }
        AgentsCommand::Resume { name } => {
            let _: Agent = server.post(&["agents", name, "resume"], &json!({}))?;
            writeln!(out, "resumed agent {name}")?;
        }
    }
    Ok(ExitCode::from(exit::CLEAN))
}

pub(crate) fn overrides(cmd: &OverridesCommand, server: &Server) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let mut out = std::io::stdout().lock();
    match cmd {
        OverridesCommand::Allow(args) | OverridesCommand::Deny(args) => {
            let kind = match cmd {
                OverridesCommand::Deny(_) => OverrideKind::Deny,
                _ => OverrideKind::Allow,
            };
            // Checked here first: the same errors as the local path, before any request.
            let entry = args.entry(kind)?;
            note_author(args.by.as_deref());
            let record: StoredOverride = server.post(
                &["overrides"],
                &json!({
                    "kind": kind_str(kind),
                    "ecosystem": args.ecosystem,
                    "name": args.name,
                    "versions": args.scope(),
                    "reason": args.reason,
                    "expires": args.expires,
                    "agent": args.agent,
                }),
            )?;
            let entry = crate::policy::overrides::OverrideEntry {
                expires: record.expires,
                ..entry
            };
            writeln!(
                out,
                "added {} entry {}: {}",
                kind_str(kind),
                record.id,
                summary(&entry)
            )?;
        }
        OverridesCommand::Remove { id, by } => {
            note_author(by.as_deref());
            let record: StoredOverride = server.delete(&["overrides", &id.to_string()])?;
            writeln!(
                out,
                "removed entry {id}: {} {}",
                record.name, record.versions
            )?;
        }
        OverridesCommand::List { all } => {
            let list: Items<StoredOverride> =
                server.get(&["overrides"], &[("all", all.to_string())])?;
            if list.items.is_empty() {
                writeln!(out, "no entries")?;
            }
            for record in &list.items {
                writeln!(out, "{}", describe_override(record, now))?;
            }
        }
    }
    Ok(ExitCode::from(exit::CLEAN))
}

pub(crate) fn quarantine(cmd: &QuarantineCommand, server: &Server) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        QuarantineCommand::List { all } => {
            let status = if *all { "all" } else { "pending" };
            let items: Items<QuarantineItem> =
                server.get(&["quarantine"], &[("status", status.to_owned())])?;
            if items.items.is_empty() {
                writeln!(out, "nothing in quarantine")?;
            }
            for item in &items.items {
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
            expiry(expires.as_deref())?;
            note_author(by.as_deref());
            let done: Resolution = server.post(
                &["quarantine", &id.to_string(), "approve"],
                &json!({ "scope": range, "reason": reason, "expires": expires }),
            )?;
            writeln!(out, "approved item {id}: allow entry {}", done.entry.id)?;
        }
        QuarantineCommand::Reject { id, reason, by } => {
            note_author(by.as_deref());
            let done: Resolution = server.post(
                &["quarantine", &id.to_string(), "reject"],
                &json!({ "reason": reason }),
            )?;
            writeln!(out, "rejected item {id}: deny entry {}", done.entry.id)?;
        }
    }
    Ok(ExitCode::from(exit::CLEAN))
}

/// The most records one `log show` asks the API for (its `limit` bound).
const MAX_SHOWN: usize = 1000;

pub(crate) fn log(cmd: &LogCommand, server: &Server) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let time = |t: &chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let code = match cmd {
        LogCommand::Verify {
            public_key,
            checkpoints,
        } => {
            let (key, checkpoints) = verify_inputs(public_key.as_ref(), checkpoints.as_ref())?;
            let body = json!({
                "public_key": key.map(|k| k.encode()),
                "checkpoints": checkpoints,
            });
            let verified: Verified = server.post(&["log", "verify"], &body)?;
            writeln!(out, "{}", verified.report)?;
            if verified.intact {
                exit::CLEAN
            } else {
                exit::FINDINGS
            }
        }
        // Reads only the key file beside the store: `log::run` never gets here.
        LogCommand::PublicKey => anyhow::bail!("`log public-key` does not need the server"),
        LogCommand::Export { since, agent } => {
            let mut query = Vec::new();
            if let Some(agent) = agent {
                query.push(("agent", agent.clone()));
            }
            if let Some(since) = since {
                query.push(("since", time(since)));
            }
            out.write_all(&server.get_bytes(&["log", "export"], &query)?)?;
            exit::CLEAN
        }
        // The export has every record this needs; `until` is applied here, as the
        // export endpoint takes none.
        LogCommand::Sbom {
            agent,
            since,
            until,
        } => {
            let mut query = Vec::new();
            if let Some(agent) = agent {
                query.push(("agent", agent.clone()));
            }
            if let Some(since) = since {
                query.push(("since", time(since)));
            }
            let lines = server.get_bytes(&["log", "export"], &query)?;
            let mut installed = crate::report::cyclonedx::Installed::default();
            for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let record: DecisionRecord = serde_json::from_slice(line)
                    .context("a decision record from the running depfw serve")?;
                if until.is_none_or(|u| record.time <= u) {
                    installed.add(&record);
                }
            }
            super::log::write_sbom(&installed, agent.as_deref(), *since, *until, &mut out)?;
            exit::CLEAN
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
            if *limit > MAX_SHOWN {
                eprintln!(
                    "depfw: through the admin API `log show` prints at most {MAX_SHOWN} records; \
                     `depfw log export` has them all"
                );
            }
            let mut query = vec![("limit", (*limit).clamp(1, MAX_SHOWN).to_string())];
            let text = [("agent", agent.clone()), ("package", package.clone())];
            query.extend(text.into_iter().filter_map(|(k, v)| Some((k, v?))));
            if let Some(verdict) = verdict {
                query.push(("verdict", verdict.to_string()));
            }
            if *would_refuse {
                // The admin API asks for it as a pseudo-verdict (the page's choice).
                query.push(("verdict", crate::admin::sources::WOULD_REFUSE.to_owned()));
            }
            if let Some(since) = since {
                query.push(("since", time(since)));
            }
            if let Some(until) = until {
                query.push(("until", time(until)));
            }
            #[derive(Deserialize)]
            struct Entries {
                entries: Vec<Value>,
            }
            let found: Entries = server.get(&["log"], &query)?;
            if *limit > 0 {
                for entry in found.entries {
                    let record: DecisionRecord = serde_json::from_value(entry)
                        .context("a decision record from the running depfw serve")?;
                    writeln!(out, "{}", line(&record))?;
                }
            }
            exit::CLEAN
        }
    };
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::from(code))
}

/// `depfw feeds status` through the server: its stored sources and the coverage of the
/// advisory data it runs with.
pub(crate) fn feed_details(server: &Server) -> anyhow::Result<FeedDetails> {
    server.get(&["feeds", "details"], &[])
}

/// `depfw feeds sync` through the server: it syncs the sources of its own config, stores
/// them and applies them at once.
pub(crate) fn sync_feeds(server: &Server) -> anyhow::Result<SyncReport> {
    server.post(&["feeds", "sync"], &json!({}))
}

/// `depfw feeds import FILE` through the server: the file is uploaded (one file: a
/// directory is refused with what to do), stored as source `name` and applied at once.
pub(crate) fn import_feed(server: &Server, path: &Path, name: &str) -> anyhow::Result<ExitCode> {
    let meta = std::fs::metadata(path).with_context(|| format!("importing {}", path.display()))?;
    anyhow::ensure!(
        !meta.is_dir(),
        "{} is a directory: through the running depfw serve, `feeds import` uploads one file \
         (an OSV record, JSON lines or an all.zip). Zip the directory (`zip -r feed.zip {}`) \
         and import the zip",
        path.display(),
        path.display()
    );
    let limit = crate::admin::MAX_FEED_UPLOAD_BYTES;
    anyhow::ensure!(
        meta.len() <= limit as u64,
        "{} is {} bytes; the running depfw serve takes feed uploads of at most {limit} bytes",
        path.display(),
        meta.len()
    );
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let file = path
        .file_name()
        .map_or_else(|| "upload".to_owned(), |n| n.to_string_lossy().into_owned());
    let imported: Imported = server.post_bytes(
        &["feeds", "import"],
        &[("name", name.to_owned()), ("file", file)],
        bytes,
    )?;
    println!("{}", imported.line());
    Ok(ExitCode::from(exit::CLEAN))
}

/// Who judges `depfw check`'s and `depfw audit`'s packages: the policy built here, or the
/// running `depfw serve` that holds the data directory's store, whose policy (runtime
/// overrides included) is the one its proxy enforces.
pub(crate) enum Judge {
    Local(crate::engine::Engine),
    Server(Box<Server>),
}

/// The largest request body one batch of `POST /admin/api/evaluate` is kept under (the
/// route accepts `admin::MAX_EVALUATE_BYTES`).
const MAX_BATCH_BYTES: usize = 1024 * 1024;

impl Judge {
    /// The data directory's running server when one holds its store, else the engine
    /// `load` builds from the store opened here (`None`: no data directory in use).
    pub(crate) fn open(
        cli: &super::Cli,
        config: &Config,
        load: impl FnOnce(Option<&crate::store::Store>) -> anyhow::Result<crate::engine::Engine>,
    ) -> anyhow::Result<Judge> {
        if !super::data_dir_in_use(cli, config) {
            return Ok(Judge::Local(load(None)?));
        }
        match super::remote::open(config)? {
            super::remote::Opened::Local(store) => Ok(Judge::Local(load(Some(&store))?)),
            super::remote::Opened::Remote(server) => Ok(Judge::Server(Box::new(server))),
        }
    }

    /// With `--online`, through a server: the registry metadata travels without each
    /// package's release history, so says on stderr that the release signals are not run.
    pub(crate) fn note_online(&self, online: bool) {
        if online && matches!(self, Judge::Server(_)) {
            eprintln!(
                "depfw: note: the running depfw serve judges the registry metadata sent to it \
                 without each package's release history, so the release signals \
                 (install-script-added, new-publisher, maintainers-replaced, provenance-lost, \
                 release-burst) are not evaluated here; the mirror evaluates them on install"
            );
        }
    }

    /// Why the local policy cannot judge `ecosystem`; a server says so in its answer.
    pub(crate) fn undecidable(&self, ecosystem: crate::package::Ecosystem) -> Option<&str> {
        match self {
            Judge::Local(engine) => engine.policy.undecidable(ecosystem),
            Judge::Server(_) => None,
        }
    }
}

impl Evaluator for Judge {
    type Error = anyhow::Error;

    fn evaluate_refs(&self, queries: &[QueryRef<'_>], fix: bool) -> anyhow::Result<Vec<Answer>> {
        match self {
            Judge::Local(engine) => Ok(infallible(engine.policy.evaluate_refs(queries, fix))),
            Judge::Server(_) => {
                let owned: Vec<Query> = queries.iter().map(QueryRef::to_query).collect();
                self.evaluate(&owned, fix)
            }
        }
    }

    fn evaluate(&self, queries: &[Query], fix: bool) -> anyhow::Result<Vec<Answer>> {
        let server = match self {
            Judge::Local(engine) => {
                return Ok(infallible(Evaluator::evaluate(
                    &engine.policy,
                    queries,
                    fix,
                )))
            }
            Judge::Server(server) => server,
        };
        #[derive(Deserialize)]
        struct Answers {
            answers: Vec<Answer>,
        }
        let mut answers = Vec::with_capacity(queries.len());
        let mut batch: Vec<Value> = Vec::new();
        let mut bytes = 0;
        let mut send = |batch: &mut Vec<Value>| -> anyhow::Result<()> {
            if batch.is_empty() {
                return Ok(());
            }
            let asked = batch.len();
            let body = json!({ "queries": std::mem::take(batch), "fix": fix });
            let got: Answers = server.post(&["evaluate"], &body)?;
            anyhow::ensure!(
                got.answers.len() == asked,
                "the running depfw serve answered {} of {asked} packages",
                got.answers.len()
            );
            answers.extend(got.answers);
            Ok(())
        };
        for query in queries {
            let value = serde_json::to_value(query)?;
            let size = value.to_string().len();
            if batch.len() == MAX_BATCH || (bytes + size > MAX_BATCH_BYTES && !batch.is_empty()) {
                send(&mut batch)?;
                bytes = 0;
            }
            bytes += size;
            batch.push(value);
        }
        send(&mut batch)?;
        Ok(answers)
    }
}
