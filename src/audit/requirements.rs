//! pip requirements files (`requirements*.txt`) for `depfw audit`.
//!
//! Many Python projects "lock" with a `pip freeze` or `pip-compile` output, so `depfw audit
//! requirements.txt` reads them with pip's own line rules: `\` continuations, `#` comments
//! (only at the start or after whitespace, so `#egg=` fragments survive), `--hash` options,
//! `-r`/`-c` includes resolved relative to the including file, `-e` editables, and index
//! options (skipped: they say where to download, not what). Each requirement itself is a
//! PEP 508 specifier parsed by `pep508_rs`.
//!
//! Choices, since a requirements file is not always a lockfile:
//! - A requirement without an exact `==`/`===` pin (`requests>=2`, `flask`, `x==1.*`) is
//!   reported with `version: ""`, meaning "not pinned": dropping it would hide a package,
//!   and a made-up version would be wrong. A pin from a `-c` constraints file fills it in,
//!   which is what pip would install.
//! - Constraints files only restrict versions, so their own entries are not reported.
//! - Packages from an `-r` include carry the line of the `-r` in the top-level file: a
//!   [`LockedPackage`] names no file, and that line is where the user can look.
//! - Environment variables (`${TOKEN}`) are left as written, never expanded.
//! - Markers (`; python_version < "3.9"`) are not evaluated: the target environment is
//!   unknown, so every alternative is reported.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep508_rs::pep440_rs::Operator;
use pep508_rs::{Pep508Url, Requirement, VersionOrUrl};

use super::support::{check_name, dedup, pypi_package};
use super::{LockedPackage, PackageSource, ParseError};
use crate::package::{pep503_normalize, Ecosystem, PackageName};

/// Deeper include chains than this are refused (pip has no limit; real files use 2–3).
const MAX_INCLUDE_DEPTH: usize = 16;
/// Bounds the work of diamond-shaped includes, which a depth limit alone does not.
const MAX_FILES: usize = 256;
/// A logical line (after joining continuations) longer than this is refused.
const MAX_LINE_BYTES: usize = 64 * 1024;

const VCS_PREFIXES: [&str; 4] = ["git+", "hg+", "svn+", "bzr+"];

/// A `name @ url` target kept exactly as written, so `${VAR}` is not expanded and relative
/// paths need no working directory.
#[derive(Debug, Clone)]
struct RawUrl(String);

impl fmt::Display for RawUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Pep508Url for RawUrl {
    type Err = Infallible;

    fn parse_url(url: &str, _working_dir: Option<&Path>) -> Result<Self, Self::Err> {
        Ok(RawUrl(url.to_owned()))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Requirements,
    Constraints,
}

pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    let mut reader = Reader::default();
    reader.read(path, text, Mode::Requirements, None)?;
    let Reader {
        mut packages,
        constraints,
        ..
    } = reader;
    for pkg in &mut packages {
        if pkg.version.is_empty() && pkg.source.is_registry() {
            if let Some(pinned) = constraints.get(&pep503_normalize(&pkg.name)) {
                pkg.version.clone_from(pinned);
            }
        }
    }
    Ok(dedup(packages))
}

#[derive(Default)]
struct Reader {
    /// Files being read, outermost first, for cycle detection.
    stack: Vec<PathBuf>,
    files_read: usize,
    packages: Vec<LockedPackage>,
    /// PEP 503 name → exact version pinned by a constraints file.
    constraints: HashMap<String, String>,
}

/// One line of a requirements file, split the way pip splits it.
struct Line<'a> {
    number: u32,
    /// The requirement before the first option (may be empty).
    requirement: String,
    options: Vec<&'a str>,
}

impl Reader {
    /// Reads one file. `origin` is the top-level line that (transitively) included it.
    fn read(
        &mut self,
        path: &Path,
        text: &str,
        mode: Mode,
        origin: Option<u32>,
    ) -> Result<(), ParseError> {
        self.files_read += 1;
        self.stack
            .push(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned()));
        for (number, content) in &logical_lines(path, text)? {
            let Some(line) = split_line(*number, content) else {
                continue;
            };
            let at = origin.or(Some(line.number));
            let err = |msg: String| ParseError::new(path, Some(line.number), msg);
            let mut options = line.options.iter().copied();
            while let Some(option) = options.next() {
                let (flag, inline) = match option.split_once('=') {
                    Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
                    _ => (option, None),
                };
                // `-rfile` is the short form with the value attached.
                let (flag, inline) = match (flag.get(..2), flag.len() > 2, inline) {
                    (Some(short @ ("-r" | "-c" | "-e" | "-i" | "-f")), true, None)
                        if !flag.starts_with("--") =>
                    {
                        (short, flag.get(2..))
                    }
                    _ => (flag, inline),
                };
                let mut value = || {
                    inline
                        .or_else(|| options.next())
                        .ok_or_else(|| err(format!("option `{flag}` needs a value")))
                };
                match flag {
                    "-r" | "--requirement" => {
                        let target = value()?;
                        self.include(path, line.number, target, mode, at)?;
                    }
                    "-c" | "--constraint" => {
                        let target = value()?;
                        self.include(path, line.number, target, Mode::Constraints, at)?;
                    }
                    "-e" | "--editable" => {
                        let target = value()?;
                        if mode == Mode::Requirements {
                            let pkg = editable(path, line.number, target, at)?;
                            self.packages.push(pkg);
                        }
                    }
                    "--hash" => {
                        let hash = value()?;
                        if !hash.contains(':') {
                            return Err(err(format!(
                                "`--hash={hash}` is not of the form algorithm:digest"
                            )));
                        }
                    }
                    "-i" | "--index-url" | "--extra-index-url" | "-f" | "--find-links"
                    | "--trusted-host" | "--no-binary" | "--only-binary" | "--use-feature"
                    | "--config-settings" | "--global-option" | "--install-option" => {
                        value()?;
                    }
                    "--no-index" | "--pre" | "--prefer-binary" | "--require-hashes" => {}
                    other => return Err(err(format!("unknown option `{other}`"))),
                }
            }
            if line.requirement.is_empty() {
                continue;
            }
            let pkg = requirement(path, line.number, &line.requirement, at)?;
            match mode {
                Mode::Requirements => self.packages.push(pkg),
                Mode::Constraints => {
                    if !pkg.version.is_empty() && pkg.source.is_registry() {
                        self.constraints
                            .insert(pep503_normalize(&pkg.name), pkg.version);
                    }
                }
            }
        }
        self.stack.pop();
        Ok(())
    }

    fn include(
        &mut self,
        from: &Path,
        line: u32,
        target: &str,
        mode: Mode,
        origin: Option<u32>,
    ) -> Result<(), ParseError> {
        let err = |msg: String| ParseError::new(from, Some(line), msg);
        if target.contains("://") {
            return Err(err(format!(
                "remote include `{target}` is not fetched; download it and include the local copy"
            )));
        }
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            return Err(err(format!(
                "includes nest deeper than {MAX_INCLUDE_DEPTH} files"
            )));
        }
        if self.files_read >= MAX_FILES {
            return Err(err(format!("more than {MAX_FILES} included files")));
        }
        let resolved = from.parent().unwrap_or(Path::new("")).join(target);
        let text = std::fs::read_to_string(&resolved).map_err(|e| {
            err(format!(
                "cannot read included file `{target}` ({}): {e}",
                resolved.display()
            ))
        })?;
        let canonical = std::fs::canonicalize(&resolved).unwrap_or_else(|_| resolved.clone());
        if self.stack.contains(&canonical) {
            let chain: Vec<String> = self
                .stack
                .iter()
                .chain(std::iter::once(&canonical))
                .map(|p| p.display().to_string())
                .collect();
            return Err(err(format!("include cycle: {}", chain.join(" -> "))));
        }
        self.read(&resolved, &text, mode, origin)
    }
}

/// Joins `\` continuations and strips comments, as pip's `req_file` does; each logical
/// line keeps the number of its first physical line.
fn logical_lines(path: &Path, text: &str) -> Result<Vec<(u32, String)>, ParseError> {
    let mut joined: Vec<(u32, String)> = Vec::new();
    let mut pending: Option<(u32, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let content = strip_comment(raw);
        let (start, mut buf) = pending.take().unwrap_or((number, String::new()));
        let continued = content.ends_with('\\');
        buf.push_str(content.strip_suffix('\\').unwrap_or(content));
        if buf.len() > MAX_LINE_BYTES {
            return Err(ParseError::new(
                path,
                Some(start),
                format!("line is longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
        if continued {
            pending = Some((start, buf));
        } else {
            joined.push((start, buf));
        }
    }
    joined.extend(pending);
    Ok(joined)
}

/// Splits a logical line into the requirement and the options after it, as pip does.
fn split_line(number: u32, content: &str) -> Option<Line<'_>> {
    let mut tokens = content.split_whitespace().peekable();
    let mut requirement = Vec::new();
    while let Some(token) = tokens.next_if(|t| !t.starts_with('-')) {
        requirement.push(token);
    }
    let options: Vec<&str> = tokens.collect();
    if requirement.is_empty() && options.is_empty() {
        return None;
    }
    Some(Line {
        number,
        requirement: requirement.join(" "),
        options,
    })
}

/// pip's comment rule: `#` at the start of a line or after whitespace.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return line[..i].trim_end();
        }
    }
    line.trim_end()
}

fn requirement(
    path: &Path,
    number: u32,
    text: &str,
    at: Option<u32>,
) -> Result<LockedPackage, ParseError> {
    let err = |msg: String| ParseError::new(path, Some(number), msg);
    if is_artifact_or_location(text) {
        return unnamed(path, number, text, at);
    }
    // Checked first: pep508_rs 0.9 panics on a name ending in `-`, `.` or `_` followed by
    // an operator (`zope-=1`), found by the `requirements` fuzz target.
    let name = check_name(path, Some(number), Ecosystem::PyPI, written_name(text))
        .map_err(|e| err(format!("invalid requirement `{text}`: {}", e.message)))?;
    check_extras(&text[written_name(text).len()..])
        .map_err(|why| err(format!("invalid requirement `{text}`: {why}")))?;
    // pep508_rs 0.9 also slices inside multi-byte characters of unterminated marker
    // strings (fuzzing again); PEP 508 specifiers are ASCII in practice, so refuse others.
    if !text.is_ascii() {
        return Err(err(format!(
            "invalid requirement `{text}`: non-ASCII characters are not supported"
        )));
    }
    // Belt and braces for other panics in the third-party parser: a hostile lockfile must
    // give an error, not abort the audit.
    let parsed =
        std::panic::catch_unwind(|| Requirement::<RawUrl>::from_str(text)).map_err(|_| {
            err(format!(
                "invalid requirement `{text}`: the PEP 508 parser failed"
            ))
        })?;
    let req = parsed.map_err(|e| err(format!("invalid requirement `{text}`: {}", e.message)))?;
    let (version, source) = match req.version_or_url {
        None => (String::new(), PackageSource::Registry { url: None }),
        Some(VersionOrUrl::VersionSpecifier(specifiers)) => {
            let pinned = specifiers.iter().find_map(|spec| match spec.operator() {
                Operator::Equal | Operator::ExactEqual => Some(spec.version().to_string()),
                _ => None,
            });
            (
                pinned.unwrap_or_default(),
                PackageSource::Registry { url: None },
            )
        }
        Some(VersionOrUrl::Url(RawUrl(url))) => {
            let version = artifact_name_version(&url)
                .filter(|(n, _)| pep503_normalize(n) == pep503_normalize(&name))
                .map(|(_, v)| v)
                .unwrap_or_default();
            (version, location_source(&url))
        }
    };
    Ok(pypi_package(name, version, source, at))
}

/// pep508_rs 0.9 panics on an extra ending in `.`, `-` or `_` at the end of the input
/// (fuzzing again), so extras are validated before it sees them.
fn check_extras(after_name: &str) -> Result<(), String> {
    let Some(rest) = after_name.trim_start().strip_prefix('[') else {
        return Ok(());
    };
    let Some((extras, _)) = rest.split_once(']') else {
        return Err("missing `]` after the extras".into());
    };
    for extra in extras.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        PackageName::parse(Ecosystem::PyPI, extra).map_err(|e| format!("extra `{extra}`: {e}"))?;
    }
    Ok(())
}

/// The name as the file spells it (`pep508_rs` normalises it).
fn written_name(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(text.len());
    &text[..end]
}

/// A bare URL, path or archive file name, rather than a PEP 508 specifier.
fn is_artifact_or_location(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or("");
    let first = first.split(';').next().unwrap_or(first);
    first.contains("://")
        || first.starts_with("file:")
        || first.starts_with('.')
        || first.starts_with('/')
        || first.contains('\\')
        || VCS_PREFIXES.iter().any(|p| first.starts_with(p))
        || [".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz"]
            .iter()
            .any(|ext| first.ends_with(ext))
}

/// `https://…/pkg-1.0-py3-none-any.whl`, `./dir`, `git+https://…#egg=pkg` without a name.
fn unnamed(
    path: &Path,
    number: u32,
    text: &str,
    at: Option<u32>,
) -> Result<LockedPackage, ParseError> {
    let location = text.split_whitespace().next().unwrap_or(text);
    let location = location.split(';').next().unwrap_or(location);
    let (name, version) = match egg_name(location) {
        Some(egg) => (egg.to_owned(), String::new()),
        None => match artifact_name_version(location) {
            Some((name, version)) => (name, version),
            None => (local_name(path, location), String::new()),
        },
    };
    let name = check_name(path, Some(number), Ecosystem::PyPI, &name).map_err(|e| {
        ParseError::new(
            path,
            Some(number),
            format!(
                "cannot tell the package name of `{location}`: {}",
                e.message
            ),
        )
    })?;
    Ok(pypi_package(name, version, location_source(location), at))
}

/// `-e ./path` or `-e git+https://…#egg=name`.
fn editable(
    path: &Path,
    number: u32,
    target: &str,
    at: Option<u32>,
) -> Result<LockedPackage, ParseError> {
    // Extras on an editable path (`-e .[dev]`) are not part of the location.
    let location = match target.find('[') {
        Some(i) if !target.contains("://") => &target[..i],
        _ => target,
    };
    let mut pkg = unnamed(path, number, location, at)?;
    if !matches!(
        pkg.source,
        PackageSource::Git { .. } | PackageSource::Url { .. }
    ) {
        pkg.source = PackageSource::Path {
            path: location.to_owned(),
        };
    }
    Ok(pkg)
}

fn location_source(location: &str) -> PackageSource {
    if VCS_PREFIXES.iter().any(|p| location.starts_with(p)) {
        PackageSource::Git {
            url: location.to_owned(),
        }
    } else if location.starts_with("file:") || !location.contains("://") {
        PackageSource::Path {
            path: location.to_owned(),
        }
    } else {
        PackageSource::Url {
            url: location.to_owned(),
        }
    }
}

/// `#egg=name` in a VCS or archive URL.
fn egg_name(location: &str) -> Option<&str> {
    let (_, fragment) = location.split_once('#')?;
    fragment
        .split('&')
        .find_map(|kv| kv.strip_prefix("egg="))
        .filter(|egg| !egg.is_empty())
}

/// The name of a local project: its directory's name (`-e .` names the directory holding
/// the requirements file). The project's own metadata is not read.
fn local_name(from: &Path, location: &str) -> String {
    let segment = last_segment(location);
    if !matches!(segment, "" | "." | "..") || location.contains("://") {
        return segment.to_owned();
    }
    let dir = from.parent().unwrap_or(Path::new("")).join(location);
    std::fs::canonicalize(dir)
        .ok()
        .and_then(|dir| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| segment.to_owned())
}

fn last_segment(location: &str) -> &str {
    let base = location.split(['#', '?']).next().unwrap_or(location);
    let base = base.trim_end_matches(['/', '\\']);
    let segment = base.rsplit(['/', '\\']).next().unwrap_or(base);
    let segment = segment.split('@').next().unwrap_or(segment);
    segment.strip_suffix(".git").unwrap_or(segment)
}

/// Name and version from a wheel (`name-1.0-py3-none-any.whl`) or sdist
/// (`name-1.0.tar.gz`) file name at the end of `location`.
fn artifact_name_version(location: &str) -> Option<(String, String)> {
    let file = last_segment(location);
    if let Some(stem) = file.strip_suffix(".whl") {
        let mut parts = stem.split('-');
        let name = parts.next().filter(|s| !s.is_empty())?;
        let version = parts.next().filter(|s| !s.is_empty())?;
        return Some((name.to_owned(), version.to_owned()));
    }
    let stem = [".tar.gz", ".zip", ".tar.bz2", ".tgz"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))?;
    let (name, version) = stem.rsplit_once('-')?;
    if name.is_empty() || !version.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some((name.to_owned(), version.to_owned()))
}
