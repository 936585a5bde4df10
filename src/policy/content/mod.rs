//! ## `depfw serve`: content rules on the artifact itself
//!
//! Metadata says what a release claims; the artifact says what it does. Once a download
//! has matched its published digest (spooled to disk by `server::upstream`), and before the
//! first byte reaches the client, `server::delivery` hands the file to [`scan`], which
//! walks the archive with bounded work (`archive.rs`: decompressed bytes, entries and bytes
//! per file are capped by `[policy.content]`) and runs the rules (`rules.rs`):
//!
//! - `pth-executes-code`: a wheel's `.pth` file whose `import` line (site.py executes
//!   those at every interpreter start) spawns processes, opens the network or decodes
//!   hidden code (LiteLLM 1.82.7/1.82.8);
//! - `script-download-exec`, `script-decode-eval`, `script-credential-access`: npm
//!   `preinstall`/`install`/`postinstall` commands and the files they run, an sdist's
//!   `setup.py`, a crate's `build.rs` (nx, Shai-Hulud);
//! - `agent-config-write`: entries under `.claude/`, `.cursor/`, `.gemini/`, `.codex/`, …,
//!   or install scripts that touch them;
//! - `new-native-binary`: an ELF, Mach-O or PE file in a release whose earlier scanned
//!   releases (same kind of artifact) had none. depfw only knows what it scanned: when no
//!   earlier release was scanned, the `native-binary-unjudged` note says so instead;
//! - `archive-unscannable`: an archive over the limits, or malformed.
//!
//! A hit refuses the download (quarantine by default, each rule's verdict configurable),
//! naming the file and the rule. The store keeps the hit, and [`ContentCheck`] reports it
//! for that version from then on, so metadata hides the version too and the quarantine
//! queue (admin page, `depfw quarantine`) is where a person approves or rejects it.
//!
//! The rules are pure functions over paths and bytes; the only state is the
//! [`ContentLedger`] of held versions, which the store fills.

mod archive;
pub mod cfg;
mod rules;

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, RwLock};

pub use cfg::ContentConfig;

use super::{Check, Finding, PackageCtx, Severity, Verdict};
use crate::diag::Code;
use crate::package::Ecosystem;
use rules::Hit;

/// Bumped whenever the rules change what they find, so that remembered scans are redone.
pub const RULES_VERSION: u32 = 1;

/// At most this many findings per archive (the first ones), and native paths named.
const MAX_HITS: usize = 10;
const MAX_NATIVE_NAMED: usize = 5;

/// What kind of artifact a file is, which decides the rules that apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An npm tarball (`.tgz`).
    NpmTarball,
    /// A wheel (`.whl`, zip).
    Wheel,
    /// A PyPI source distribution (`.tar.gz`, or `.zip`).
    Sdist { zip: bool },
    /// A `.crate` (tar.gz).
    Crate,
}

impl Format {
    /// The format of `filename` in `ecosystem`; `None` for what is not scanned (PyPI's
    /// `.metadata` files, eggs, anything unknown).
    pub fn of(ecosystem: Ecosystem, filename: &str) -> Option<Format> {
        let f = filename.to_ascii_lowercase();
        match ecosystem {
            Ecosystem::Npm if f.ends_with(".tgz") => Some(Format::NpmTarball),
            Ecosystem::PyPI if f.ends_with(".whl") => Some(Format::Wheel),
            Ecosystem::PyPI if f.ends_with(".tar.gz") => Some(Format::Sdist { zip: false }),
            Ecosystem::PyPI if f.ends_with(".zip") => Some(Format::Sdist { zip: true }),
            Ecosystem::CratesIo if f.ends_with(".crate") => Some(Format::Crate),
            _ => None,
        }
    }

    /// Which earlier releases a release's native binaries are compared with: the same
    /// kind of file (a platform wheel with the same platform tag, the sdist, the tarball).
    pub fn flavour(self, filename: &str) -> String {
        match self {
            Format::Wheel => {
                let stem = filename.trim_end_matches(".whl");
                let platform = stem.rsplit('-').next().unwrap_or("any");
                format!("wheel-{platform}")
            }
            Format::Sdist { .. } => "sdist".to_owned(),
            Format::NpmTarball => "tarball".to_owned(),
            Format::Crate => "crate".to_owned(),
        }
    }
}

/// One archive's scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// The rules' findings, verdicts from the config (native binaries not judged yet: see
    /// [`native_finding`]).
    pub findings: Vec<Finding>,
    /// The first native binaries found (at most five paths) and how many in all.
    pub native: Vec<String>,
    pub native_count: u64,
    /// What the rules read whole (`.pth` files, hook commands and the files they run,
    /// `setup.py`, `build.rs`): at most ten, for reports of what a scan covered.
    pub read: Vec<String>,
}

/// Collects what the rules find during a walk.
struct Scanner<'c> {
    format: Format,
    cfg: &'c ContentConfig,
    hits: Vec<Hit>,
    native: Vec<String>,
    native_count: u64,
    /// The first `package.json` one directory deep (npm).
    package_json: Option<(String, Vec<u8>)>,
    /// Second pass (npm): the files the install hooks run.
    targets: Vec<String>,
    /// A `package.json` larger than `max-file-bytes`.
    oversized: Option<String>,
    read: Vec<String>,
    /// npm, first pass: files named like install scripts, kept (within
    /// [`HOOK_FILE_BUDGET`]) so that the hooks' files are usually read without a second
    /// pass over the archive (`package.json` comes near the end of most tarballs).
    kept: HashMap<String, Vec<u8>>,
    kept_bytes: usize,
    /// Install-script-named files seen but not kept (over the budget or a window).
    not_kept: Vec<String>,
}

/// The most bytes of install-script-named files one npm scan keeps for its hooks.
const HOOK_FILE_BUDGET: usize = 4 * 1024 * 1024;

/// Whether an npm tarball's file may be what an install hook runs: a script near the
/// root whose name says so (`install.js`, `scripts/postinstall.js`, `bin/post-install`,
/// `scripts/build-from-source.js`, `_postinstall.js`).
fn hook_file_candidate(path: &str) -> bool {
    let name = file_name(path).to_ascii_lowercase();
    let script = [".js", ".cjs", ".mjs", ".sh", ".py", ".ts"]
        .iter()
        .any(|e| name.ends_with(e))
        || !name.contains('.');
    let named = ["install", "setup", "build", "hook", "check", "download"]
        .iter()
        .any(|w| name.contains(w));
    depth(path) <= 4 && script && named
}

fn depth(path: &str) -> usize {
    path.trim_end_matches('/').matches('/').count()
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl Scanner<'_> {
    fn note_read(&mut self, what: &str) {
        if self.read.len() < 10 && !self.read.iter().any(|r| r == what) {
            self.read.push(what.to_owned());
        }
    }

    fn hit(&mut self, hit: Hit) {
        let dup = self
            .hits
            .iter()
            .any(|h| h.code == hit.code && h.path == hit.path);
        if !dup && self.hits.len() < MAX_HITS {
            self.hits.push(hit);
        }
    }
}

impl archive::Visit for Scanner<'_> {
    fn wants(&self, path: &str) -> bool {
        if !self.targets.is_empty() {
            return self.targets.iter().any(|t| t == path);
        }
        match self.format {
            Format::Wheel => rules::is_site_pth(path),
            Format::NpmTarball => {
                (self.package_json.is_none()
                    && depth(path) == 1
                    && file_name(path) == "package.json")
                    || hook_file_candidate(path)
            }
            Format::Sdist { .. } => depth(path) == 1 && file_name(path) == "setup.py",
            Format::Crate => depth(path) == 1 && file_name(path) == "build.rs",
        }
    }

    fn file(&mut self, path: &str, head: &[u8], body: Option<archive::Window<'_>>) {
        if !self.targets.is_empty() {
            // Second pass: only the install hooks' files are read.
            if let Some(w) = body {
                self.note_read(path);
                for hit in rules::script(path, w.bytes) {
                    self.hit(hit);
                }
            }
            return;
        }
        if body.is_none_or(|w| w.first) {
            if rules::is_native(head) {
                self.native_count += 1;
                if self.native.len() < MAX_NATIVE_NAMED {
                    self.native.push(path.to_owned());
                }
            }
            if let Some(hit) = rules::agent_path(path) {
                self.hit(hit);
            }
        }
        let Some(w) = body else { return };
        match self.format {
            Format::Wheel => {
                self.note_read(path);
                if let Some(hit) = rules::pth(path, w.bytes) {
                    self.hit(hit);
                }
            }
            Format::NpmTarball if hook_file_candidate(path) => {
                let whole = w.first && w.last;
                if whole && self.kept_bytes + w.bytes.len() <= HOOK_FILE_BUDGET {
                    self.kept_bytes += w.bytes.len();
                    self.kept.insert(path.to_owned(), w.bytes.to_vec());
                } else if w.first {
                    self.not_kept.push(path.to_owned());
                }
            }
            Format::NpmTarball if w.first => {
                // npm reads package.json whole; one larger than a window is not scanned
                // for hooks, so it cannot pass unread.
                if !w.last {
                    self.oversized = Some(path.to_owned());
                }
                self.package_json = Some((path.to_owned(), w.bytes.to_vec()));
            }
            Format::NpmTarball => {}
            Format::Sdist { .. } | Format::Crate => {
                self.note_read(path);
                for hit in rules::script(path, w.bytes) {
                    self.hit(hit);
                }
            }
        }
    }

    fn other(&mut self, path: &str) {
        if let Some(hit) = rules::agent_path(path) {
            self.hit(hit);
        }
    }
}

fn walk<R: Read + Seek>(
    format: Format,
    reader: &mut R,
    limits: archive::Limits,
    scanner: &mut Scanner<'_>,
) -> Result<(), String> {
    match format {
        Format::Wheel | Format::Sdist { zip: true } => archive::walk_zip(reader, limits, scanner),
        Format::NpmTarball | Format::Sdist { zip: false } | Format::Crate => {
            archive::walk_tar_gz(reader, limits, scanner)
        }
    }
}

/// Runs the content rules over one artifact. Never fails: an archive the walk cannot
/// finish (over a limit, malformed, unreadable) is the `archive-unscannable` finding.
pub fn scan<R: Read + Seek>(format: Format, mut reader: R, cfg: &ContentConfig) -> Scan {
    let limits = archive::Limits {
        max_unpacked: cfg.max_unpacked_bytes,
        max_entries: cfg.max_entries,
        max_file: cfg.max_file_bytes,
    };
    let mut s = Scanner {
        format,
        cfg,
        hits: Vec::new(),
        native: Vec::new(),
        native_count: 0,
        package_json: None,
        targets: Vec::new(),
        oversized: None,
        read: Vec::new(),
        kept: HashMap::new(),
        kept_bytes: 0,
        not_kept: Vec::new(),
    };
    let mut failed = walk(format, &mut reader, limits, &mut s).err();
    if let (None, Some(path)) = (&failed, &s.oversized) {
        failed = Some(format!(
            "{path} is larger than policy.content.max-file-bytes ({} bytes), so its install \
             scripts cannot be read",
            cfg.max_file_bytes
        ));
    }
    if failed.is_none() && format == Format::NpmTarball {
        failed = s.npm_hooks(&mut reader, limits).err();
    }
    let mut findings: Vec<Finding> = s
        .hits
        .iter()
        .map(|h| {
            Finding::new(
                h.code.clone(),
                Severity::High,
                s.cfg.verdict_for(&h.code),
                format!("{}: {}", h.path, h.detail),
            )
        })
        .collect();
    if let Some(why) = failed {
        findings.push(Finding::new(
            Code::ArchiveUnscannable,
            Severity::Medium,
            cfg.archive_unscannable,
            format!("the archive could not be scanned: {why}"),
        ));
    }
    Scan {
        findings,
        native: s.native,
        native_count: s.native_count,
        read: s.read,
    }
}

impl Scanner<'_> {
    /// npm: the install hooks' command lines, then (a second pass) the files they run.
    fn npm_hooks<R: Read + Seek>(
        &mut self,
        reader: &mut R,
        limits: archive::Limits,
    ) -> Result<(), String> {
        let Some((pj_path, body)) = self.package_json.take() else {
            return Ok(());
        };
        let root = pj_path.trim_end_matches("package.json");
        let mut targets = Vec::new();
        for (hook, command) in rules::npm_hooks(&body) {
            let label = format!("{pj_path} scripts.{hook}");
            self.note_read(&label);
            for hit in rules::script(&label, command.as_bytes()) {
                self.hit(hit);
            }
            targets.extend(
                rules::hook_targets(&command)
                    .into_iter()
                    .map(|t| format!("{root}{t}")),
            );
        }
        // The hooks' files kept during the first pass are read from memory; a second pass
        // is needed only for a target that was not kept: one seen but over the budget, or
        // one not named like an install script (an absent, install-named alternative such
        // as `install` beside `install.js` needs none).
        let kept = std::mem::take(&mut self.kept);
        let mut rest = Vec::new();
        for t in targets {
            if let Some(bytes) = kept.get(&t) {
                self.note_read(&t);
                for hit in rules::script(&t, bytes) {
                    self.hit(hit);
                }
            } else if self.not_kept.contains(&t) || !hook_file_candidate(&t) {
                rest.push(t);
            }
        }
        if rest.is_empty() {
            return Ok(());
        }
        self.targets = rest;
        reader
            .seek(SeekFrom::Start(0))
            .map_err(|e| format!("rereading the archive: {e}"))?;
        walk(self.format, reader, limits, self)
    }
}

/// What depfw remembers about earlier releases' native binaries (same package, same kind
/// of artifact, lower versions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Earlier {
    /// No earlier release of this kind was scanned.
    NotScanned,
    /// Some earlier scanned release had native binaries (this version, for the record).
    HadNative(String),
    /// The earlier releases depfw scanned had none (their versions, highest first).
    HadNone(Vec<String>),
}

/// The native-binary rule, once the scan is compared with earlier releases: `None` when
/// this release has no native binary or an earlier one had some.
pub fn native_finding(scan: &Scan, earlier: &Earlier, cfg: &ContentConfig) -> Option<Finding> {
    if scan.native_count == 0 {
        return None;
    }
    let files = format!(
        "{}{}",
        scan.native.join(", "),
        if scan.native_count > scan.native.len() as u64 {
            format!(" and {} more", scan.native_count - scan.native.len() as u64)
        } else {
            String::new()
        }
    );
    match earlier {
        Earlier::HadNative(_) => None,
        Earlier::HadNone(versions) => {
            let shown: Vec<&str> = versions.iter().take(3).map(String::as_str).collect();
            Some(Finding::new(
                Code::NewNativeBinary,
                Severity::High,
                cfg.new_native_binary,
                format!(
                    "{files}: native binaries, where the earlier releases depfw scanned ({}) had none",
                    shown.join(", ")
                ),
            ))
        }
        Earlier::NotScanned => Some(Finding::new(
            Code::NativeBinaryUnjudged,
            Severity::Info,
            Verdict::Allow,
            format!(
                "{files}: native binaries; depfw scanned no earlier release of this package \
                 (same kind of artifact), so it cannot tell whether they are new"
            ),
        )),
    }
}

/// The versions held by a content rule, by (ecosystem, package name, version): filled
/// from the store when the policy is built and by `depfw serve` when a scan hits, read by
/// [`ContentCheck`].
#[derive(Default)]
pub struct ContentLedger {
    held: RwLock<HashMap<(Ecosystem, String, String), Vec<Finding>>>,
}

impl ContentLedger {
    pub fn new(
        held: impl IntoIterator<Item = ((Ecosystem, String, String), Vec<Finding>)>,
    ) -> Self {
        ContentLedger {
            held: RwLock::new(held.into_iter().collect()),
        }
    }

    /// Remembers a version's content findings (a scan hit).
    pub fn hold(&self, ecosystem: Ecosystem, name: &str, version: &str, findings: Vec<Finding>) {
        let mut held = self.held.write().unwrap_or_else(|e| e.into_inner());
        held.insert((ecosystem, name.to_owned(), version.to_owned()), findings);
    }

    /// The findings held for `name` at `version`. The version is written out only when
    /// something is held: nearly always nothing is (an audit, a proxy without content
    /// holds), and formatting every package's version was ~4% of an audit.
    fn findings(
        &self,
        ecosystem: Ecosystem,
        name: &str,
        version: impl FnOnce() -> String,
    ) -> Option<Vec<Finding>> {
        let held = self.held.read().unwrap_or_else(|e| e.into_inner());
        if held.is_empty() {
            return None;
        }
        held.get(&(ecosystem, name.to_owned(), version())).cloned()
    }
}

/// The content rules' settings and the held versions, shared by the policy's
/// [`ContentCheck`] and the proxy's artifact gate.
pub struct ContentRules {
    pub cfg: ContentConfig,
    pub ledger: ContentLedger,
}

/// Reports, for a version a content rule held, the findings of that scan (verdicts from the
/// current config), so every later evaluation (metadata, `depfw check`) sees them.
pub struct ContentCheck {
    rules: Arc<ContentRules>,
}

impl ContentCheck {
    pub fn new(rules: Arc<ContentRules>) -> Self {
        ContentCheck { rules }
    }
}

impl Check for ContentCheck {
    fn name(&self) -> &'static str {
        crate::diag::checks::CONTENT
    }

    fn evaluate(&self, ctx: &PackageCtx<'_>, findings: &mut Vec<Finding>) {
        let Some(version) = ctx.version else { return };
        let name = ctx.name;
        let held = self
            .rules
            .ledger
            .findings(name.ecosystem(), name.as_str(), || version.to_string());
        for mut f in held.into_iter().flatten() {
            f.verdict = self.rules.cfg.verdict_for(&f.code);
            findings.push(f);
        }
    }
}

#[cfg(test)]
mod tests;
