//! The audit run of `depfw audit [PATH ...]`: find the lockfiles, parse them, build the
//! engine for exactly their packages and evaluate every locked package with the checks and
//! overrides the proxy uses, into one [`AuditReport`]. `crate::cli::audit` keeps the
//! arguments, the `--online` progress and the printing.

use std::borrow::Cow;
use std::collections::HashSet;

use rustc_hash::FxHashSet;
use std::path::{Path, PathBuf};

use super::evaluate::{infallible, Answer, Evaluator, Parsed, QueryRef};
use super::online::{Lookup, OnlineResult};
use super::report::{AuditReport, AuditResult, LockfileSummary};
use super::{LockedPackage, LockfileKind, PackageSource};
use crate::config::Config;
use crate::diag::Code;
use crate::package::{Ecosystem, NameError, PackageName, Version};
use crate::policy::{Decision, Finding, Policy, Severity, Verdict, VersionMetadata};

/// Directories never searched: installed packages and build output, not lockfiles.
const SKIPPED_DIRS: &[&str] = &[
    "node_modules",
    "target",
    ".venv",
    "venv",
    ".git",
    "__pycache__",
    ".tox",
];

/// Finds the lockfiles under `paths`. Unknown files named explicitly are an error.
pub(crate) fn discover(
    paths: &[PathBuf],
) -> (Vec<(PathBuf, LockfileKind)>, Vec<LockfileSummaryError>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for path in paths {
        if path.is_dir() {
            let walker = walkdir::WalkDir::new(path)
                .follow_links(false)
                .sort_by_file_name()
                .into_iter()
                .filter_entry(|e| {
                    !(e.file_type().is_dir()
                        && e.depth() > 0
                        && e.file_name()
                            .to_str()
                            .is_some_and(|n| SKIPPED_DIRS.contains(&n)))
                });
            for entry in walker {
                match entry {
                    Ok(entry) if entry.file_type().is_file() => {
                        if let Some(kind) = LockfileKind::detect(entry.path()) {
                            if seen.insert(entry.path().to_owned()) {
                                found.push((entry.path().to_owned(), kind));
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => errors.push(LockfileSummaryError {
                        path: e.path().map_or_else(|| path.clone(), Path::to_owned),
                        message: e.to_string(),
                    }),
                }
            }
        } else if !path.exists() {
            errors.push(LockfileSummaryError {
                path: path.clone(),
                message: "no such file or directory".to_owned(),
            });
        } else {
            match LockfileKind::detect(path).or_else(|| super::sbom::sniff(path)) {
                Some(kind) => {
                    if seen.insert(path.clone()) {
                        found.push((path.clone(), kind));
                    }
                }
                None => errors.push(LockfileSummaryError {
                    path: path.clone(),
                    message: "not a lockfile depfw recognises (expected Cargo.lock, package-lock.json, npm-shrinkwrap.json, yarn.lock, pnpm-lock.yaml, bun.lock, requirements*.txt, poetry.lock, uv.lock, Pipfile.lock, pdm.lock, pylock.toml, or a CycloneDX or SPDX JSON SBOM)".to_owned(),
                }),
            }
        }
    }
    (found, errors)
}

/// A path that could not be scanned at all.
#[derive(Debug, Clone)]
pub struct LockfileSummaryError {
    pub path: PathBuf,
    pub message: String,
}

/// One lockfile read and parsed, or why it could not be.
#[derive(Debug)]
pub struct ParsedLockfile {
    pub path: PathBuf,
    pub kind: LockfileKind,
    pub result: Result<super::Lockfile, super::ParseError>,
    /// The name of each of `result`'s packages, in order, parsed once here for both the
    /// advisory lookup ([`package_keys`]) and the query: parsing each name twice was ~4% of
    /// the audit of a 400-crate Cargo.lock.
    pub names: Vec<Result<PackageName, NameError>>,
}

/// Larger files are refused rather than read: the largest real lockfiles and SBOMs are tens
/// of megabytes, and parsing holds several times a file's size in memory.
pub const MAX_LOCKFILE_BYTES: u64 = 256 * 1024 * 1024;

/// Reads `path` whole, refusing one over [`MAX_LOCKFILE_BYTES`] (also one that grows past
/// it while read).
fn read_bounded(path: &Path) -> Result<Vec<u8>, super::ParseError> {
    use std::io::Read as _;
    let cannot =
        |e: std::io::Error| super::ParseError::new(path, None, format!("cannot read: {e}"));
    let too_large = || {
        super::ParseError::new(
            path,
            None,
            format!(
                "larger than {} MiB: not read",
                MAX_LOCKFILE_BYTES / (1024 * 1024)
            ),
        )
    };
    let file = std::fs::File::open(path).map_err(cannot)?;
    let len = file.metadata().map_err(cannot)?.len();
    if len > MAX_LOCKFILE_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(MAX_LOCKFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_LOCKFILE_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Reads and parses `lockfiles`; a failure stays with its file.
pub fn read_lockfiles(lockfiles: &[(PathBuf, LockfileKind)]) -> Vec<ParsedLockfile> {
    lockfiles
        .iter()
        .map(|(path, kind)| {
            let result = read_bounded(path)
                .and_then(|bytes| {
                    String::from_utf8(bytes)
                        .map_err(|_| super::ParseError::new(path, None, "not UTF-8 text"))
                })
                .and_then(|text| super::parse_lockfile(path, *kind, &text));
            let names = result.as_ref().map_or_else(
                |_| Vec::new(),
                |l| {
                    l.packages
                        .iter()
                        .map(|p| PackageName::parse(p.ecosystem, &p.name))
                        .collect()
                },
            );
            ParsedLockfile {
                path: path.clone(),
                kind: *kind,
                result,
                names,
            }
        })
        .collect()
}

/// Every package name the audit of `parsed` evaluates, as (ecosystem, normalised key),
/// each once, in the order first locked: what [`crate::engine::load_for`] needs to read
/// only their advisories (in any order). A set rather than a sort: sorting the keys of a
/// 400-crate Cargo.lock was 2% of its audit.
pub fn package_keys(parsed: &[ParsedLockfile]) -> Vec<(Ecosystem, &str)> {
    let names: Vec<&PackageName> = parsed
        .iter()
        .flat_map(|p| &p.names)
        .filter_map(|n| n.as_ref().ok())
        .collect();
    let mut seen = FxHashSet::with_capacity_and_hasher(names.len(), Default::default());
    names
        .into_iter()
        .map(|n| (n.ecosystem(), n.key()))
        .filter(|key| seen.insert(*key))
        .collect()
}

/// Everything `depfw audit` does before evaluating: parses `lockfiles` and builds the
/// engine for exactly their packages, with the feeds and overrides of the store in
/// `data_dir` (else the bundled snapshot). Opening sled (log recovery, tens of ms on a
/// store holding every feed) and parsing are independent, so they run side by side.
pub fn prepare(
    config: &Config,
    data_dir: Option<&Path>,
    lockfiles: &[(PathBuf, LockfileKind)],
) -> anyhow::Result<(crate::engine::Engine, Vec<ParsedLockfile>)> {
    let (store, parsed) = match data_dir {
        Some(dir) => std::thread::scope(|scope| {
            let store = scope.spawn(|| crate::store::Store::open(dir).map(Some));
            let parsed = read_lockfiles(lockfiles);
            (store.join(), parsed)
        }),
        // No store to wait for: a thread would only cost its start.
        None => (Ok(Ok(None)), read_lockfiles(lockfiles)),
    };
    let store = store.map_err(|_| anyhow::anyhow!("opening the store panicked"))??;
    let keys = package_keys(&parsed);
    let engine = crate::engine::load_for(config, store.as_ref(), keys.iter().copied())?;
    // A lockfile of an ecosystem without advisory data cannot be audited: fail closed.
    let mut ecosystems: Vec<_> = keys.iter().map(|(eco, _)| *eco).collect();
    ecosystems.sort_unstable();
    ecosystems.dedup();
    if let Some(why) = ecosystems
        .into_iter()
        .find_map(|eco| engine.policy.undecidable(eco))
    {
        anyhow::bail!("{why}");
    }
    Ok((engine, parsed))
}

/// Builds the report for `lockfiles` with `policy`.
pub fn audit_lockfiles(
    policy: &Policy,
    lockfiles: &[(PathBuf, LockfileKind)],
    discovery_errors: &[LockfileSummaryError],
) -> AuditReport {
    audit_parsed(policy, &read_lockfiles(lockfiles), discovery_errors)
}

/// Builds the report for lockfiles already parsed.
pub fn audit_parsed(
    policy: &Policy,
    parsed: &[ParsedLockfile],
    discovery_errors: &[LockfileSummaryError],
) -> AuditReport {
    infallible(audit_parsed_online(
        policy,
        parsed,
        discovery_errors,
        None,
        None,
    ))
}

/// Like [`audit_parsed`], with registry metadata fetched by `--online`, the
/// `bypasses-mirror` check when a mirror is configured, and any [`Evaluator`]: the local
/// policy, or a running `depfw serve`'s. Every package the policy judges goes to it in
/// one batch.
pub(crate) fn audit_parsed_online<E: Evaluator>(
    evaluator: &E,
    parsed: &[ParsedLockfile],
    discovery_errors: &[LockfileSummaryError],
    online: Option<&OnlineResult>,
    mirror: Option<&MirrorCheck>,
) -> Result<AuditReport, E::Error> {
    let mut report = AuditReport {
        packages_scanned: 0,
        lockfiles: Vec::new(),
        results: Vec::new(),
    };
    for e in discovery_errors {
        report.lockfiles.push(LockfileSummary {
            path: e.path.clone(),
            kind: None,
            packages: 0,
            error: Some(e.message.clone()),
        });
    }
    let mut pending = Vec::new();
    for ParsedLockfile {
        path,
        kind,
        result,
        names,
    } in parsed
    {
        match result {
            Ok(lockfile) => {
                report.packages_scanned += lockfile.packages.len();
                report.lockfiles.push(LockfileSummary {
                    path: path.clone(),
                    kind: Some(*kind),
                    packages: lockfile.packages.len(),
                    error: None,
                });
                for (i, package) in lockfile.packages.iter().enumerate() {
                    let bypass = mirror.and_then(|m| m.finding(*kind, package));
                    // `names` is parallel to the packages; parsed here should it not be.
                    let name = match names.get(i) {
                        Some(Ok(name)) => Ok(Cow::Borrowed(name)),
                        Some(Err(e)) => Err(e.to_string()),
                        None => PackageName::parse(package.ecosystem, &package.name)
                            .map(Cow::Owned)
                            .map_err(|e| e.to_string()),
                    };
                    pending.extend(prepare_package(path, package, name, online, bypass));
                }
            }
            Err(e) => report.lockfiles.push(LockfileSummary {
                path: path.clone(),
                kind: Some(*kind),
                packages: 0,
                error: Some(e.to_string()),
            }),
        }
    }
    // The queries borrow the lockfile's strings and the parsed forms (no copy of every
    // name and version); a package with an invalid name is not asked.
    let queries: Vec<QueryRef<'_>> = pending.iter().filter_map(Pending::query).collect();
    let mut answers = evaluator.evaluate_refs(&queries, true)?.into_iter();
    drop(queries);
    for p in pending {
        let answer = if p.name.is_ok() { answers.next() } else { None };
        report.results.extend(finish_package(p, answer));
    }
    Ok(report)
}

/// The `bypasses-mirror` check: lockfile entries that fetch a package from anywhere but
/// the depfw mirror (issue #12). No proxy stops a client that goes around it: a uv.lock
/// made against pypi.org installs from files.pythonhosted.org under `uv sync --frozen`; this
/// is how CI catches such a lockfile.
#[derive(Debug, Clone)]
pub struct MirrorCheck {
    /// The mirror's base URLs, without a trailing `/`.
    bases: Vec<String>,
    verdict: Verdict,
}

impl MirrorCheck {
    /// The check for these mirror URLs (`audit.mirror-urls`, `depfw audit --mirror`);
    /// `None` when there is none: the check is off.
    pub fn new(urls: &[url::Url], verdict: Verdict) -> Option<MirrorCheck> {
        let bases: Vec<String> = urls
            .iter()
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
            .collect();
        (!bases.is_empty()).then_some(MirrorCheck { bases, verdict })
    }

    /// The check `config` asks for, plus `extra` mirror URLs.
    pub fn from_config(config: &Config, extra: &[url::Url]) -> Option<MirrorCheck> {
        let mut urls = config.audit.mirror_urls.clone();
        urls.extend(extra.iter().cloned());
        MirrorCheck::new(&urls, config.audit.bypasses_mirror)
    }

    fn is_mirror(&self, url: &str) -> bool {
        let url = url
            .trim_start_matches("sparse+")
            .trim_start_matches("registry+");
        self.bases.iter().any(|b| {
            url == b
                || url
                    .strip_prefix(b.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
    }

    /// The finding for an entry that is fetched around the mirror, if it is.
    pub(crate) fn finding(&self, kind: LockfileKind, package: &LockedPackage) -> Option<Finding> {
        let from = match &package.source {
            PackageSource::Registry { url: Some(url) }
            | PackageSource::Url { url }
            | PackageSource::Git { url } => {
                if self.is_mirror(url) {
                    return None;
                }
                url.clone()
            }
            PackageSource::Registry { url: None } if records_public_registry(kind) => {
                public_registry(package.ecosystem).to_owned()
            }
            // Cargo.lock keeps naming crates.io under source replacement, and pnpm,
            // poetry and requirements files record no registry URL: the client's own
            // configuration decides, which a lockfile cannot show.
            PackageSource::Registry { url: None }
            | PackageSource::Path { .. }
            | PackageSource::Workspace { .. } => return None,
        };
        Some(finding(
            Code::BypassesMirror,
            self.verdict,
            format!(
                "fetched from {from}, not from the depfw mirror ({}): an install from this \
                 lockfile goes around depfw; lock it again through the mirror (`depfw init \
                 <client>` prints the settings)",
                self.bases.join(", ")
            ),
        ))
    }
}

/// Lockfile formats whose registry entries without a registry of their own were resolved
/// on the public registry and record its URLs (npm's `resolved`, uv's `source.registry`),
/// so installing from them fetches from there. (bun.lock's `""` means "the configured
/// default registry", which is depfw when bun is pointed at it.)
fn records_public_registry(kind: LockfileKind) -> bool {
    matches!(
        kind,
        LockfileKind::PackageLock | LockfileKind::NpmShrinkwrap | LockfileKind::UvLock
    )
}

fn public_registry(ecosystem: Ecosystem) -> &'static str {
    match ecosystem {
        Ecosystem::Npm => "https://registry.npmjs.org",
        Ecosystem::PyPI => "https://pypi.org/simple",
        Ecosystem::CratesIo => "crates.io",
    }
}

fn finding(code: Code, verdict: Verdict, message: String) -> Finding {
    Finding::new(code, Severity::Info, verdict, message)
}

/// One locked package on its way through [`audit_parsed_online`]: what the audit itself
/// found, and what to ask the policy.
struct Pending<'a> {
    lockfile: &'a Path,
    package: &'a LockedPackage,
    extra: Vec<Finding>,
    /// The parsed name, or why it is invalid: then there is nothing to ask.
    name: Result<Cow<'a, PackageName>, String>,
    /// `package.version`, parsed: `None` when none is pinned or it does not parse (the
    /// policy then judges the name only).
    version: Option<Version>,
    /// Registry metadata fetched by `--online`, else the lockfile's own.
    metadata: Option<Cow<'a, VersionMetadata>>,
}

impl Pending<'_> {
    /// What to ask the policy about this package; `None` for an invalid name.
    fn query(&self) -> Option<QueryRef<'_>> {
        let name = self.name.as_deref().ok()?;
        Some(QueryRef {
            ecosystem: self.package.ecosystem,
            name: &self.package.name,
            // Sent as written, with the parsed form for a local evaluator (a server
            // parses the string just as here).
            version: self.version.as_ref().map(|_| self.package.version.as_str()),
            metadata: self.metadata.as_deref(),
            parsed: Some(Parsed {
                name,
                version: self.version.as_ref(),
            }),
        })
    }
}

/// The audit's own findings for one locked package and its query; `None` for local code.
fn prepare_package<'a>(
    lockfile: &'a Path,
    package: &'a LockedPackage,
    name: Result<Cow<'a, PackageName>, String>,
    online: Option<&OnlineResult>,
    bypass: Option<Finding>,
) -> Option<Pending<'a>> {
    let mut extra: Vec<Finding> = bypass.into_iter().collect();
    let lookup = online.and_then(|o| o.get(package.ecosystem, &package.name, &package.version));
    let fetched = lookup
        .and_then(Lookup::metadata)
        .map(|m| Cow::Owned(fill_from_lockfile(m, package.metadata.as_ref())));
    let metadata = fetched.or_else(|| package.metadata.as_ref().map(Cow::Borrowed));
    extra.extend(lookup.and_then(Lookup::finding));
    match &package.source {
        PackageSource::Workspace { .. } | PackageSource::Path { .. } => return None,
        PackageSource::Git { url } | PackageSource::Url { url } => extra.push(finding(
            Code::NonRegistrySource,
            Verdict::Warn,
            format!("installed from {url}, not a registry: advisories match by name only"),
        )),
        PackageSource::Registry { .. } => {}
    }
    let version = match &name {
        Err(_) => None,
        Ok(_) if package.version.is_empty() => {
            extra.push(finding(
                Code::Unpinned,
                Verdict::Warn,
                "no exact version is pinned; any version may be installed".to_owned(),
            ));
            None
        }
        Ok(_) => match Version::parse(package.ecosystem, &package.version) {
            Ok(parsed) => Some(parsed),
            Err(e) if package.source.is_registry() => {
                extra.push(finding(Code::InvalidVersion, Verdict::Warn, e.to_string()));
                None
            }
            Err(_) => None,
        },
    };
    Some(Pending {
        lockfile,
        package,
        extra,
        name,
        version,
        metadata,
    })
}

/// One locked package's result from the policy's `answer`; `None` when it is plainly
/// allowed.
fn finish_package(pending: Pending<'_>, answer: Option<Answer>) -> Option<AuditResult> {
    let Pending {
        lockfile,
        package,
        extra,
        name,
        ..
    } = pending;
    let (decision, upgrade_to) = match answer {
        Some(Answer {
            mut decision,
            upgrade_to,
        }) => {
            if matches!(&package.source, PackageSource::Registry { url: Some(_) }) {
                from_another_registry(&mut decision);
            }
            (decision, upgrade_to)
        }
        None => {
            let why = name
                .err()
                .unwrap_or_else(|| "the policy gave no answer".to_owned());
            let decision = Decision {
                verdict: Verdict::Warn,
                findings: vec![finding(Code::InvalidName, Verdict::Warn, why)],
            };
            (decision, None)
        }
    };
    let mut findings = decision.findings;
    let mut verdict = decision.verdict;
    // Overrides have the last word; the audit's own notes only add to a non-overridden verdict.
    let overridden = findings
        .iter()
        .any(|f| f.check == crate::policy::overrides::CHECK_NAME);
    for f in extra {
        if !overridden {
            verdict = verdict.max(f.verdict);
        }
        findings.push(f);
    }
    // Plainly allowed: nothing to report. An allow that overrode findings is reported.
    if verdict == Verdict::Allow && !overridden {
        return None;
    }
    let decision = Decision { verdict, findings };
    let ids = decision.ids();
    let Decision { verdict, findings } = decision;
    Some(AuditResult {
        ecosystem: package.ecosystem,
        name: package.name.clone(),
        version: package.version.clone(),
        lockfile: lockfile.to_owned(),
        line: package.line,
        verdict,
        ids,
        findings,
        // The policy's fix for its own findings: the audit's notes name no fixed version.
        upgrade_to,
    })
}

/// A lockfile entry resolved from a registry other than the ecosystem's default (the
/// organisation's own, by the lockfile's record) is where an internal name belongs: its
/// `internal-name` finding is dropped, and the verdict is that of the rest unless an
/// override decided it.
fn from_another_registry(decision: &mut Decision) {
    let before = decision.findings.len();
    decision.findings.retain(|f| f.code != Code::InternalName);
    let overridden = decision
        .findings
        .iter()
        .any(|f| f.check == crate::policy::overrides::CHECK_NAME);
    if decision.findings.len() != before && !overridden {
        decision.verdict = decision
            .findings
            .iter()
            .map(|f| f.verdict)
            .max()
            .unwrap_or(Verdict::Allow);
    }
}

/// Registry metadata wins; what only the lockfile records (npm `license`,
/// `hasInstallScript`) fills the gaps.
fn fill_from_lockfile(
    fetched: &VersionMetadata,
    locked: Option<&VersionMetadata>,
) -> VersionMetadata {
    let mut merged = fetched.clone();
    if let Some(locked) = locked {
        merged.license = merged.license.or_else(|| locked.license.clone());
        merged.has_install_scripts = merged.has_install_scripts.or(locked.has_install_scripts);
        merged.deprecated = merged.deprecated.or_else(|| locked.deprecated.clone());
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names parsed with the lockfile and names parsed at the query (a
    /// [`ParsedLockfile`] built without them) give the same report, invalid names included.
    #[test]
    fn names_parsed_once_or_at_the_query_give_the_same_report() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Cargo.lock");
        std::fs::write(
            &path,
            "version = 4\n\n[[package]]\nname = \"time\"\nversion = \"0.1.40\"\n\
             source = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n\
             [[package]]\nname = \"bad name!\"\nversion = \"1.0.0\"\n\
             source = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n\
             [[package]]\nname = \"serde\"\nversion = \"1.0.0\"\n\
             source = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
        )
        .unwrap();
        let lockfiles = [(path, LockfileKind::CargoLock)];
        let (engine, parsed) = prepare(&Config::default(), None, &lockfiles).unwrap();
        assert_eq!(parsed[0].names.len(), 3);
        assert!(parsed[0].names[1].is_err());
        assert_eq!(
            package_keys(&parsed),
            [
                (Ecosystem::CratesIo, "time"),
                (Ecosystem::CratesIo, "serde")
            ]
        );
        let once = audit_parsed(&engine.policy, &parsed, &[]);
        let unnamed: Vec<ParsedLockfile> = read_lockfiles(&lockfiles)
            .into_iter()
            .map(|p| ParsedLockfile {
                names: Vec::new(),
                ..p
            })
            .collect();
        let again = audit_parsed(&engine.policy, &unnamed, &[]);
        let json = |r: &AuditReport| serde_json::to_string(&r.results).unwrap();
        assert_eq!(json(&once), json(&again));
        assert!(json(&once).contains("bad name!"), "{}", json(&once));
        assert!(json(&once).contains("RUSTSEC"), "{}", json(&once));
    }
}
