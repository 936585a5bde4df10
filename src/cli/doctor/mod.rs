//! `depfw doctor [DIR]`: checks a project's package-manager configs and lockfiles against
//! this depfw before a rollout breaks someone, or a token leaks into git.
//!
//! For each client the project uses (found by its config or lockfile) it reports whether
//! the config points at depfw (`server.public-url`), whether the client's own release
//! cooldown is absent or shorter than depfw's (so the resolver would pick versions depfw
//! holds back), and any agent token written into a config or lockfile (a `/a/<token>/`
//! URL, a `dfw_…` token, or a literal `_authToken` instead of `${DEPFW_TOKEN}`), masked.
//! It only reads files, bounded in size; a malformed one is a finding, not a crash.
//!
//! Exit codes as elsewhere: 0 nothing found, 1 findings, 2 depfw could not run (no such
//! directory, bad config).

mod clients;
pub(crate) mod cooldown;
mod files;
mod tokens;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use super::exit;
use crate::config::Config;

#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// The project directory (default: the current one).
    #[arg(value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// What a finding is about; stable kebab-case names for `--format json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Code {
    /// The client's registry or index is not this depfw (or is not set in the project).
    NotThroughDepfw,
    /// The client's own release cooldown is not set.
    CooldownMissing,
    /// The client's release cooldown is shorter than depfw's.
    CooldownShorter,
    /// A token is written into a config or lockfile.
    TokenInFile,
    /// A config or lockfile that does not parse.
    Malformed,
    /// A file that exists but could not be read (permissions, size).
    Unreadable,
}

impl Code {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Code::NotThroughDepfw => "not-through-depfw",
            Code::CooldownMissing => "cooldown-missing",
            Code::CooldownShorter => "cooldown-shorter",
            Code::TokenInFile => "token-in-file",
            Code::Malformed => "malformed",
            Code::Unreadable => "unreadable",
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Finding {
    pub code: Code,
    pub file: String,
    pub message: String,
}

/// A check that passed.
#[derive(Debug, Serialize)]
pub(crate) struct Note {
    pub file: String,
    pub message: String,
}

/// Everything doctor found, and what it checked and found right.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub dir: String,
    pub depfw: String,
    /// depfw's cooldown in hours; `None`: it enforces none.
    pub cooldown_hours: Option<u64>,
    pub checked: Vec<String>,
    pub ok: Vec<Note>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub(crate) fn finding(&mut self, code: Code, file: &str, message: String) {
        self.findings.push(Finding {
            code,
            file: file.to_owned(),
            message,
        });
    }

    /// A check that passed, listed in the human output so a clean run says what it saw.
    pub(crate) fn ok(&mut self, file: &str, message: String) {
        self.ok.push(Note {
            file: file.to_owned(),
            message,
        });
    }

    /// depfw's base URL, without a trailing `/`.
    pub(crate) fn base(&self) -> &str {
        &self.depfw
    }

    /// Whether `url` (a registry, an index, `sparse+…`) is this depfw.
    pub(crate) fn is_depfw(&self, url: &str) -> bool {
        let url = url.trim().trim_matches('"');
        let url = url.strip_prefix("sparse+").unwrap_or(url);
        url.strip_prefix(self.base())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// Runs every check over `dir`.
pub(crate) fn diagnose(dir: &Path, config: &Config) -> Report {
    let mut report = Report {
        dir: dir.display().to_string(),
        depfw: config
            .server
            .public_url
            .as_str()
            .trim_end_matches('/')
            .to_owned(),
        cooldown_hours: cooldown::enforced_hours(config, false).map(|(h, _)| h),
        checked: Vec::new(),
        ok: Vec::new(),
        findings: Vec::new(),
    };
    clients::check_all(dir, &mut report);
    report
}

pub(crate) fn run(args: &DoctorArgs, config: &Config) -> anyhow::Result<ExitCode> {
    if !args.dir.is_dir() {
        anyhow::bail!("{}: not a directory", args.dir.display());
    }
    let report = diagnose(&args.dir, config);
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Human => print!("{}", human(&report)),
    }
    Ok(ExitCode::from(if report.findings.is_empty() {
        exit::CLEAN
    } else {
        exit::FINDINGS
    }))
}

fn human(report: &Report) -> String {
    let cooldown = report
        .cooldown_hours
        .map_or_else(|| "no cooldown".to_owned(), |h| format!("cooldown {h}h"));
    let mut out = format!(
        "depfw doctor: {} (depfw at {}, {cooldown})\n",
        report.dir, report.depfw
    );
    if report.checked.is_empty() {
        out.push_str("  no package-manager config or lockfile found\n");
    }
    for ok in &report.ok {
        out.push_str(&format!("  ok   {}: {}\n", ok.file, ok.message));
    }
    for f in &report.findings {
        out.push_str(&format!(
            "  FAIL {}: {}: {}\n",
            f.file,
            f.code.as_str(),
            f.message
        ));
    }
    out.push_str(&format!(
        "{} finding{}\n",
        report.findings.len(),
        if report.findings.len() == 1 { "" } else { "s" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_and_json_name_codes_alike() {
        for code in [
            Code::NotThroughDepfw,
            Code::CooldownMissing,
            Code::CooldownShorter,
            Code::TokenInFile,
            Code::Malformed,
            Code::Unreadable,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
