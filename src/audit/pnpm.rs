//! `depfw audit` on `pnpm-lock.yaml` (lockfile versions 5.x, 6.x, 7.x and 9.x).
//!
//! `pnpm install --frozen-lockfile` links packages from pnpm's content-addressed store
//! without asking the proxy again, so the audit reads the pins here. Packages come from the
//! `packages` section (v9 keeps peer-resolved copies in `snapshots`, which add nothing to
//! audit); `link:` dependencies of each importer are reported as workspace packages.
//! Also home to [`YamlKeyLines`], shared with the yarn berry reader.

use std::collections::HashMap;
use std::path::Path;

use serde_norway::{Mapping, Value};

use super::npm::{classify_spec, dedup, line_u32, locked, registry_of_tarball, split_spec};
use super::{LockedPackage, PackageSource, ParseError};

const DEP_SECTIONS: [&str; 3] = ["dependencies", "devDependencies", "optionalDependencies"];

pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    let doc_value = yaml_from_str(path, text)?;
    let Some(doc) = doc_value.as_mapping() else {
        return Err(ParseError::new(path, None, "expected a YAML mapping"));
    };
    let major = lockfile_major(doc.get("lockfileVersion")).ok_or_else(|| {
        ParseError::new(path, Some(1), "missing or unreadable \"lockfileVersion\"")
    })?;
    let lines = YamlKeyLines::scan(text, 4);
    let mut out = Vec::new();

    match doc.get("packages") {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(packages)) => {
            for (key, entry) in packages {
                let Some(key) = key.as_str() else {
                    return Err(ParseError::new(path, None, "package keys must be strings"));
                };
                let line = lines.get(&["packages", key]);
                let empty = Mapping::new();
                let entry = match entry {
                    Value::Mapping(m) => m,
                    Value::Null => &empty,
                    _ => {
                        return Err(ParseError::new(
                            path,
                            line,
                            format!("package \"{key}\" must be a mapping"),
                        ))
                    }
                };
                let Some((name, version, source)) = package(key, entry, major) else {
                    return Err(ParseError::new(
                        path,
                        line,
                        format!("cannot read package key \"{key}\""),
                    ));
                };
                out.push(locked(&name, &version, source, line));
            }
        }
        Some(_) => {
            return Err(ParseError::new(
                path,
                None,
                "\"packages\" must be a mapping",
            ))
        }
    }

    match doc.get("importers") {
        Some(Value::Mapping(importers)) => {
            for (dir, importer) in importers {
                let Some(dir) = dir.as_str() else { continue };
                importer_links(importer, dir, &["importers", dir], &lines, &mut out);
            }
        }
        // Single-project v5 lockfiles keep the root's dependencies at the top level.
        _ => importer_links(&doc_value, ".", &[], &lines, &mut out),
    }
    Ok(dedup(out))
}

/// Deepest `[`/`{` nesting accepted; lockfiles use two or three levels.
const MAX_FLOW_DEPTH: usize = 64;

/// Parses YAML for the pnpm and yarn berry readers. Deep flow nesting is refused up front:
/// libyaml's scanner slows down sharply on it (minutes for 100k levels in debug builds).
pub(super) fn yaml_from_str(path: &Path, text: &str) -> Result<Value, ParseError> {
    if let Some(line) = excessive_flow_nesting(text) {
        return Err(ParseError::new(
            path,
            Some(line),
            format!("invalid YAML: nested more than {MAX_FLOW_DEPTH} levels deep"),
        ));
    }
    serde_norway::from_str(text).map_err(|e| {
        let line = e.location().and_then(|l| line_u32(l.line()));
        ParseError::new(path, line, format!("invalid YAML: {e}"))
    })
}

/// The line where `[`/`{` nesting (outside quoted scalars) passes [`MAX_FLOW_DEPTH`].
fn excessive_flow_nesting(text: &str) -> Option<u32> {
    let mut depth = 0usize;
    for (idx, line) in text.lines().enumerate() {
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') if matches!(prev, ' ' | ':' | '[' | '{' | ',') => {
                    quote = Some(c)
                }
                (None, '[' | '{') => {
                    depth += 1;
                    if depth > MAX_FLOW_DEPTH {
                        return line_u32(idx + 1);
                    }
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
            prev = c;
        }
    }
    None
}

/// `5.4` (number), `'6.0'`, `'9.0'` → the major version.
fn lockfile_major(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::Number(n) => n
            .as_f64()
            .filter(|f| *f >= 0.0 && *f < 1000.0)
            .map(|f| f as u32),
        Value::String(s) => s.split('.').next()?.trim().parse().ok(),
        _ => None,
    }
}

/// (name, version, source) of one `packages` entry.
fn package(key: &str, entry: &Mapping, major: u32) -> Option<(String, String, PackageSource)> {
    let field = |f: &str| entry.get(f).and_then(Value::as_str);
    let (key_name, key_version) = split_key(key, major).unzip();
    let name = field("name").map(str::to_owned).or(key_name)?;
    let version = field("version")
        .map(str::to_owned)
        .or(key_version)
        .unwrap_or_else(|| key.to_owned());
    let source = match entry.get("resolution").and_then(Value::as_mapping) {
        Some(resolution) => source_of_resolution(resolution, &name, &version),
        None => None,
    }
    .or_else(|| classify_spec(&version))
    .unwrap_or(PackageSource::Registry { url: None });
    Some((name, version, source))
}

/// `/n/1.0.0_peer@1` (v5), `/n@1.0.0(peer@1)` (v6), `n@1.0.0` (v9) → (name, version).
/// Keys of non-registry packages in v5/v6 (`file:dir`, `github.com/u/r/sha`) carry no
/// name; those entries have a `name` field instead.
fn split_key(key: &str, major: u32) -> Option<(String, String)> {
    if major < 9 && !key.starts_with('/') && key.contains(':') {
        return None;
    }
    if major < 6 {
        let k = key.strip_prefix('/').unwrap_or(key);
        let (name, version) = k.rsplit_once('/')?;
        let version = version.split('_').next().unwrap_or(version);
        return Some((strip_registry_host(name).to_owned(), version.to_owned()));
    }
    let bare = key.split('(').next().unwrap_or(key);
    let k = bare.strip_prefix('/').unwrap_or(bare);
    let (name, version) = split_spec(k)?;
    Some((strip_registry_host(name).to_owned(), version.to_owned()))
}

/// Keys of packages from a non-default registry may start with its host
/// (`registry.example.com/n/1.0.0`); the package name is the last one or two segments.
fn strip_registry_host(name: &str) -> &str {
    let keep = if name.contains("/@") || name.starts_with('@') {
        2
    } else {
        1
    };
    let segments: Vec<&str> = name.split('/').collect();
    if segments.len() <= keep {
        return name;
    }
    let start: usize = segments[..segments.len() - keep]
        .iter()
        .map(|s| s.len() + 1)
        .sum();
    &name[start..]
}

fn source_of_resolution(res: &Mapping, name: &str, version: &str) -> Option<PackageSource> {
    let field = |f: &str| res.get(f).and_then(Value::as_str);
    match field("type") {
        Some("git") => {
            let repo = field("repo").unwrap_or_default();
            let url = match field("commit") {
                Some(commit) => format!("{repo}#{commit}"),
                None => repo.to_owned(),
            };
            return Some(PackageSource::Git { url });
        }
        Some("directory") => {
            return Some(PackageSource::Path {
                path: field("directory").unwrap_or_default().to_owned(),
            })
        }
        _ => {}
    }
    let tarball = field("tarball")?;
    registry_of_tarball(tarball, name, version).or_else(|| classify_spec(tarball))
}

/// Reports `link:` dependencies of one importer (workspace members, linked directories).
fn importer_links(
    importer: &Value,
    dir: &str,
    key_path: &[&str],
    lines: &YamlKeyLines,
    out: &mut Vec<LockedPackage>,
) {
    for section in DEP_SECTIONS {
        let Some(deps) = importer.get(section).and_then(Value::as_mapping) else {
            continue;
        };
        for (dep, spec) in deps {
            let Some(dep) = dep.as_str() else { continue };
            // v5 writes `name: version`; v6+ `name: {specifier, version}`.
            let version = spec
                .as_str()
                .or_else(|| spec.get("version").and_then(Value::as_str));
            let Some(target) = version.and_then(|v| v.strip_prefix("link:")) else {
                continue;
            };
            let mut full: Vec<&str> = key_path.to_vec();
            full.extend([section, dep]);
            let source = PackageSource::Workspace {
                path: join_relative(dir, target),
            };
            let version = version.unwrap_or_default();
            out.push(locked(dep, version, source, lines.get(&full)));
        }
    }
}

/// `packages/app` + `../lib` → `packages/lib`, relative to the lockfile's directory.
fn join_relative(dir: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = dir
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    for seg in rel.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

/// 1-based line of each block-mapping key, by its path of enclosing keys, for YAML as
/// pnpm and yarn write it (block style, one key per line). serde_norway's values carry no
/// positions, and the files are regular enough for an indentation scan.
pub(super) struct YamlKeyLines(HashMap<String, u32>);

impl YamlKeyLines {
    /// Records keys up to `max_depth` levels deep.
    pub(super) fn scan(text: &str, max_depth: usize) -> Self {
        let mut map = HashMap::new();
        let mut stack: Vec<(usize, String)> = Vec::new();
        for (idx, raw) in text.lines().enumerate() {
            let trimmed = raw.trim_start_matches(' ');
            if trimmed.trim().is_empty() || trimmed.starts_with('#') || trimmed.starts_with('-') {
                continue;
            }
            let indent = raw.len() - trimmed.len();
            let Some(key) = yaml_key(trimmed.trim_end()) else {
                continue;
            };
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            stack.push((indent, key));
            if stack.len() <= max_depth {
                let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
                if let Some(line) = line_u32(idx + 1) {
                    map.entry(path.join("\0")).or_insert(line);
                }
            }
        }
        YamlKeyLines(map)
    }

    pub(super) fn get(&self, path: &[&str]) -> Option<u32> {
        self.0.get(&path.join("\0")).copied()
    }
}

/// The key of a `key: value` / `key:` line (plain, single- or double-quoted).
fn yaml_key(t: &str) -> Option<String> {
    if let Some(rest) = t.strip_prefix('"') {
        let mut key = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return chars.as_str().starts_with(':').then_some(key),
                '\\' => key.push(chars.next()?),
                c => key.push(c),
            }
        }
        return None;
    }
    if let Some(rest) = t.strip_prefix('\'') {
        let mut key = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    key.push('\'');
                    continue;
                }
                return (chars.next() == Some(':')).then_some(key);
            }
            key.push(c);
        }
        return None;
    }
    match t.find(": ") {
        Some(i) => Some(t[..i].to_owned()),
        None => t.strip_suffix(':').map(str::to_owned),
    }
}
