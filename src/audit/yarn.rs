//! `depfw audit` on `yarn.lock`: classic (v1, yarn's own text format) and berry (v2+, YAML).
//!
//! `yarn install --frozen-lockfile` / `--immutable` fetch exactly what this file pins, often
//! from yarn's offline mirror, so the audit reads the pins here. Each entry is reported under
//! its real package name (alias keys like `isnum@npm:is-number@7` are resolved), and
//! workspace, file, link, portal, git and URL entries are reported as such. `patch:` entries
//! are audited as the package they patch.
//!
//! The v1 reader is hand-written (the format is small, and we want entry lines and real
//! names); `yarn-lock-parser` was evaluated but reports alias keys under the alias, gives no
//! line numbers and has panicking paths.

use std::path::Path;

use serde_norway::Value;

use super::npm::{classify_spec, dedup, line_u32, locked, source_from_resolved, split_spec};
use super::pnpm::{yaml_from_str, YamlKeyLines};
use super::{LockedPackage, PackageSource, ParseError};

pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    if text.lines().any(|l| l.starts_with("__metadata:")) {
        parse_berry(path, text)
    } else {
        parse_v1(path, text)
    }
}

// ---- classic (v1) ----

/// One `key:` block of a v1 file, with the fields depfw needs.
struct V1Entry {
    line: u32,
    first_descriptor: String,
    version: Option<String>,
    resolved: Option<String>,
}

fn parse_v1(path: &Path, text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    let mut entries: Vec<V1Entry> = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line_no = line_u32(idx + 1);
        let err = |msg: &str| ParseError::new(path, line_no, msg.to_owned());
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if indent == 0 {
            let Some(key) = line.strip_suffix(':') else {
                return Err(err("expected an entry key ending in ':'"));
            };
            let descriptors = split_descriptors(key).map_err(|m| err(&m))?;
            let Some(first) = descriptors.into_iter().next() else {
                return Err(err("empty entry key"));
            };
            entries.push(V1Entry {
                line: line_no.unwrap_or(u32::MAX),
                first_descriptor: first,
                version: None,
                resolved: None,
            });
            continue;
        }
        let Some(entry) = entries.last_mut() else {
            return Err(err("indented line before the first entry"));
        };
        // Only the entry's own fields (indent 2) matter; deeper lines are dependency lists.
        if indent != 2 || trimmed.ends_with(':') {
            continue;
        }
        let (field, value) = split_v1_field(trimmed).map_err(|m| err(&m))?;
        match field.as_str() {
            "version" => entry.version = Some(value),
            "resolved" => entry.resolved = Some(value),
            _ => {}
        }
    }
    if entries.is_empty() && !text.contains("yarn lockfile v1") && !text.trim().is_empty() {
        return Err(ParseError::new(path, None, "not a yarn lockfile"));
    }
    let mut out = Vec::with_capacity(entries.len());
    for e in &entries {
        let line = Some(e.line);
        let Some((key_name, range)) = split_spec(&e.first_descriptor) else {
            return Err(ParseError::new(
                path,
                line,
                format!("entry key \"{}\" is not name@range", e.first_descriptor),
            ));
        };
        let Some(version) = e.version.as_deref() else {
            return Err(ParseError::new(
                path,
                line,
                format!("entry \"{}\" has no version", e.first_descriptor),
            ));
        };
        // `isnum@npm:is-number@7` installs is-number under the name isnum.
        let name = range
            .strip_prefix("npm:")
            .and_then(split_spec)
            .map_or(key_name, |(real, _)| real);
        let source = match (e.resolved.as_deref(), classify_spec(range)) {
            // A git or URL range: `resolved` pins the commit or the exact URL.
            (Some(resolved), Some(PackageSource::Git { .. })) => PackageSource::Git {
                url: resolved.to_owned(),
            },
            (_, Some(source @ PackageSource::Path { .. })) => source,
            (Some(resolved), _) => source_from_resolved(name, version, resolved),
            (None, spec) => spec.unwrap_or(PackageSource::Registry { url: None }),
        };
        out.push(locked(name, version, source, line));
    }
    Ok(dedup(out))
}

/// `"a@^1", a@^1.1` → the descriptors, unquoted.
fn split_descriptors(key: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for part in key.split(", ") {
        let part = part.trim();
        let unquoted = match part.strip_prefix('"') {
            Some(rest) => rest
                .strip_suffix('"')
                .ok_or_else(|| format!("unterminated quote in entry key {key:?}"))?,
            None => part,
        };
        if !unquoted.is_empty() {
            out.push(unquoted.to_owned());
        }
    }
    Ok(out)
}

/// `version "1.0.0"` / `resolved "https://…#sha"` / `"name" value` → (field, value).
fn split_v1_field(text: &str) -> Result<(String, String), String> {
    let (field, rest) = take_v1_token(text)?;
    let (value, _) = take_v1_token(rest.trim_start())?;
    Ok((field, value))
}

fn take_v1_token(text: &str) -> Result<(String, &str), String> {
    match text.strip_prefix('"') {
        Some(rest) => {
            let mut value = String::new();
            let mut chars = rest.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => return Ok((value, &rest[i + 1..])),
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    c => value.push(c),
                }
            }
            Err(format!("unterminated string: {text}"))
        }
        None => {
            let end = text.find(char::is_whitespace).unwrap_or(text.len());
            Ok((text[..end].to_owned(), &text[end..]))
        }
    }
}

// ---- berry (v2+) ----

fn parse_berry(path: &Path, text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    let doc = yaml_from_str(path, text)?;
    let Some(doc) = doc.as_mapping() else {
        return Err(ParseError::new(path, None, "expected a YAML mapping"));
    };
    let lines = YamlKeyLines::scan(text, 1);
    let mut out = Vec::new();
    for (key, entry) in doc {
        let Some(key) = key.as_str() else {
            return Err(ParseError::new(path, None, "entry keys must be strings"));
        };
        if key == "__metadata" {
            continue;
        }
        let line = lines.get(&[key]);
        let err = |msg: String| ParseError::new(path, line, msg);
        let Some(entry) = entry.as_mapping() else {
            return Err(err(format!("entry \"{key}\" must be a mapping")));
        };
        let Some(resolution) = entry.get("resolution").and_then(Value::as_str) else {
            return Err(err(format!("entry \"{key}\" has no string \"resolution\"")));
        };
        let version = match entry.get("version") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let Some((name, reference)) = split_spec(resolution) else {
            return Err(err(format!(
                "resolution \"{resolution}\" is not name@reference"
            )));
        };
        // The project's own root workspace is not a dependency.
        if reference == "workspace:." {
            continue;
        }
        let Some((name, version, source)) = berry_reference(name, reference, version.as_deref())
        else {
            return Err(err(format!("cannot read resolution \"{resolution}\"")));
        };
        out.push(locked(&name, &version, source, line));
    }
    Ok(dedup(out))
}

/// (name, version, source) for a berry `name@reference` resolution.
fn berry_reference(
    name: &str,
    reference: &str,
    version: Option<&str>,
) -> Option<(String, String, PackageSource)> {
    let recorded = version.unwrap_or(reference).to_owned();
    // Yarn appends `::key=value&…` bindings (locator, hash, __archiveUrl) to references.
    let bare = reference.split("::").next().unwrap_or(reference);
    if let Some(v) = bare.strip_prefix("npm:") {
        return Some((
            name.to_owned(),
            version.unwrap_or(v).to_owned(),
            PackageSource::Registry { url: None },
        ));
    }
    if let Some(inner) = bare.strip_prefix("patch:") {
        // `patch:is-number@npm%3A7.0.0#~/.yarn/patches/…`: audit the patched package.
        let inner = inner.split('#').next().unwrap_or(inner);
        let inner = percent_decode(inner);
        let (inner_name, inner_ref) = split_spec(&inner)?;
        return berry_reference(inner_name, inner_ref, version);
    }
    let source = if let Some(p) = bare.strip_prefix("workspace:") {
        PackageSource::Workspace { path: p.to_owned() }
    } else if let Some(p) = ["portal:", "link:", "file:", "exec:"]
        .iter()
        .find_map(|pre| bare.strip_prefix(pre))
    {
        // `file:./dir#./dir`: the part after `#` repeats the path.
        let p = p.split('#').next().unwrap_or(p);
        PackageSource::Path { path: p.to_owned() }
    } else if bare.contains("#commit=") || bare.contains(".git#") || bare.contains("git+") {
        PackageSource::Git {
            url: bare.to_owned(),
        }
    } else {
        classify_spec(bare)?
    };
    Some((name.to_owned(), recorded, source))
}

/// Decodes the `%XX` escapes yarn uses inside `patch:` references.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
