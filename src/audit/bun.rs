//! `depfw audit` on `bun.lock` (bun's text lockfile: JSON with trailing commas).
//!
//! `bun install --frozen-lockfile` installs these pins from bun's global cache without
//! asking the proxy again, so the audit reads them here. Each `packages` value is an array
//! whose first element is `name@version` (the real name, also for alias keys) or
//! `name@workspace:dir` / `name@file:dir` / `name@git…`; for registry packages the second
//! element is the tarball URL, empty for the default registry. The binary `bun.lockb` is
//! not read: `bun install --save-text-lockfile` converts it.

use std::path::Path;

use jsonc_parser::ast::{Object, Value};
use jsonc_parser::common::Ranged;
use jsonc_parser::{CollectOptions, ParseOptions};

use super::npm::{classify_spec, dedup, line_u32, locked, registry_of_tarball, split_spec};
use super::support::LineIndex;
use super::{LockedPackage, PackageSource, ParseError};

pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    let lines = LineIndex::new(text);
    // bun writes trailing commas; nothing else of JSON5 is accepted.
    let options = ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        ..ParseOptions::default()
    };
    let parsed =
        jsonc_parser::parse_to_ast(text, &CollectOptions::default(), &options).map_err(|e| {
            ParseError::new(
                path,
                line_u32(e.line_display()),
                format!("invalid bun.lock: {}", e.kind()),
            )
        })?;
    let Some(Value::Object(root)) = parsed.value else {
        return Err(ParseError::new(path, Some(1), "expected a JSON object"));
    };
    if root.get("lockfileVersion").is_none() {
        return Err(ParseError::new(
            path,
            Some(1),
            "not a bun.lock: no \"lockfileVersion\"",
        ));
    }
    let workspaces = match root.get("workspaces").map(|p| &p.value) {
        Some(Value::Object(ws)) => Some(ws),
        _ => None,
    };
    let packages = match root.get("packages").map(|p| &p.value) {
        None => return Ok(Vec::new()),
        Some(Value::Object(p)) => p,
        Some(other) => {
            return Err(ParseError::new(
                path,
                Some(lines.line_of(other.range().start)),
                "\"packages\" must be an object",
            ))
        }
    };
    let mut out = Vec::new();
    for prop in &packages.properties {
        let key = prop.name.as_str();
        let line = Some(lines.line_of(prop.range.start));
        let err = |msg: String| ParseError::new(path, line, msg);
        let Value::Array(arr) = &prop.value else {
            return Err(err(format!("package \"{key}\" must be an array")));
        };
        let Some(Value::StringLit(id)) = arr.elements.first() else {
            return Err(err(format!(
                "package \"{key}\" must start with a \"name@version\" string"
            )));
        };
        let Some((name, reference)) = split_spec(&id.value) else {
            return Err(err(format!("\"{}\" is not name@version", id.value)));
        };
        let url = match arr.elements.get(1) {
            Some(Value::StringLit(s)) => s.value.as_ref(),
            _ => "",
        };
        let (version, source) = if let Some(dir) = reference.strip_prefix("workspace:") {
            let version = workspaces
                .and_then(|ws| member_version(ws, dir))
                .unwrap_or_default();
            let source = PackageSource::Workspace {
                path: dir.to_owned(),
            };
            (version, source)
        } else if let Some(dir) = reference.strip_prefix("link:") {
            let source = PackageSource::Path {
                path: dir.to_owned(),
            };
            (reference.to_owned(), source)
        } else if let Some(source) = classify_spec(reference) {
            (reference.to_owned(), source)
        } else if url.is_empty() {
            (reference.to_owned(), PackageSource::Registry { url: None })
        } else {
            let source =
                registry_of_tarball(url, name, reference).unwrap_or_else(|| PackageSource::Url {
                    url: url.to_owned(),
                });
            (reference.to_owned(), source)
        };
        out.push(locked(name, &version, source, line));
    }
    Ok(dedup(out))
}

/// The `version` a workspace member declares in the lockfile's `workspaces` section.
fn member_version(workspaces: &Object, dir: &str) -> Option<String> {
    let Value::Object(member) = &workspaces.get(dir)?.value else {
        return None;
    };
    match &member.get("version")?.value {
        Value::StringLit(s) => Some(s.value.to_string()),
        _ => None,
    }
}
