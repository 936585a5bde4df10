//! `depfw audit` on `package-lock.json` and `npm-shrinkwrap.json` (lockfile versions 1, 2, 3).
//!
//! `npm ci` installs straight from the lockfile's pins, and from the local cache, without
//! asking the proxy; this parser lists what those pins are so the audit can judge them.
//! v2 and v3 files are read from `packages` (keyed by install path); v1 files from the
//! nested `dependencies` tree. Also home to the helpers the other npm-family parsers share
//! (spec splitting, source classification, de-duplication, JSON key lines).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{LockedPackage, PackageSource, ParseError};
use crate::package::Ecosystem;
use crate::policy::VersionMetadata;

pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    /// The top level, with the two package trees left unparsed until one is chosen.
    #[derive(Deserialize)]
    struct Root<'a> {
        #[serde(borrow, default)]
        packages: Option<&'a RawValue>,
        #[serde(borrow, default)]
        dependencies: Option<&'a RawValue>,
        #[serde(default, rename = "lockfileVersion")]
        lockfile_version: Option<IgnoredAny>,
    }
    let invalid = |e: serde_json::Error| {
        ParseError::new(path, line_u32(e.line()), format!("invalid JSON: {e}"))
    };
    if !text.trim_start().starts_with('{') {
        // Still a JSON syntax error first, if it is one.
        serde_json::from_str::<IgnoredAny>(text).map_err(invalid)?;
        return Err(ParseError::new(path, Some(1), "expected a JSON object"));
    }
    let root: Root<'_> = serde_json::from_str(text).map_err(invalid)?;
    let lines = JsonKeyLines::scan(text, &["packages", "dependencies"]);
    let mut out = Vec::new();
    if let Some(packages) = root.packages {
        parse_packages(path, packages, &lines, &mut out)?;
    } else if let Some(deps) = root.dependencies {
        let deps: Value = serde_json::from_str(deps.get()).map_err(invalid)?;
        let mut key_path = vec!["dependencies".to_owned()];
        parse_v1_deps(path, &deps, &lines, &mut key_path, &mut out)?;
    } else if root.lockfile_version.is_none() {
        return Err(ParseError::new(
            path,
            Some(1),
            "not an npm lockfile: no \"lockfileVersion\", \"packages\" or \"dependencies\"",
        ));
    }
    Ok(dedup(out))
}

/// One v2/v3 `packages` entry: the fields the audit reads, left raw in the text (a big
/// lockfile has thousands; building a `serde_json::Value` tree of each cost most of the
/// parse). Flags and metadata: npm writes them in one shape, anything else reads as absent
/// rather than failing the file.
#[derive(Deserialize)]
struct RawEntry<'a> {
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    version: Option<&'a RawValue>,
    #[serde(borrow, default)]
    resolved: Option<&'a RawValue>,
    #[serde(borrow, default)]
    link: Option<&'a RawValue>,
    #[serde(borrow, default)]
    license: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "hasInstallScript")]
    has_install_script: Option<&'a RawValue>,
    #[serde(borrow, default)]
    deprecated: Option<&'a RawValue>,
    #[serde(borrow, default)]
    workspaces: Option<&'a RawValue>,
}

/// A [`RawEntry`] with its text fields checked.
struct PackageEntry<'a> {
    name: Option<Cow<'a, str>>,
    version: Option<Cow<'a, str>>,
    resolved: Option<Cow<'a, str>>,
    raw: RawEntry<'a>,
    line: Option<u32>,
}

impl<'a> PackageEntry<'a> {
    fn read(path: &Path, key: &str, text: &'a str, line: Option<u32>) -> Result<Self, ParseError> {
        if !text.starts_with('{') {
            return Err(ParseError::new(
                path,
                line,
                format!("entry \"{key}\" must be an object"),
            ));
        }
        let raw: RawEntry<'a> = serde_json::from_str(text)
            .map_err(|e| ParseError::new(path, line, format!("entry \"{key}\": {e}")))?;
        let field = |value: Option<&'a RawValue>, field: &str| {
            json_string(value)
                .map_err(|()| ParseError::new(path, line, format!("\"{field}\" must be a string")))
        };
        Ok(PackageEntry {
            name: field(raw.name, "name")?,
            version: field(raw.version, "version")?,
            resolved: field(raw.resolved, "resolved")?,
            raw,
            line,
        })
    }
}

/// A JSON string borrowed where it has no escapes; `null` or absent is `None`.
fn json_string(value: Option<&RawValue>) -> Result<Option<Cow<'_, str>>, ()> {
    let Some(text) = value.map(RawValue::get).filter(|t| *t != "null") else {
        return Ok(None);
    };
    if let Ok(borrowed) = serde_json::from_str::<&str>(text) {
        return Ok(Some(Cow::Borrowed(borrowed)));
    }
    serde_json::from_str::<String>(text)
        .map(|owned| Some(Cow::Owned(owned)))
        .map_err(|_| ())
}

/// v2/v3: `packages` keyed by install path (`node_modules/a/node_modules/@s/b`).
fn parse_packages(
    path: &Path,
    packages: &RawValue,
    lines: &JsonKeyLines,
    out: &mut Vec<LockedPackage>,
) -> Result<(), ParseError> {
    let not_object = || ParseError::new(path, None, "\"packages\" must be an object");
    if !packages.get().starts_with('{') {
        return Err(not_object());
    }
    let raw: BTreeMap<Cow<'_, str>, &RawValue> =
        serde_json::from_str(packages.get()).map_err(|_| not_object())?;
    let mut entries = BTreeMap::new();
    for (key, value) in raw {
        let line = lines.get(&["packages", &key]);
        let entry = PackageEntry::read(path, &key, value.get(), line)?;
        entries.insert(key, entry);
    }
    let workspaces = entries
        .get("")
        .and_then(|root| root.raw.workspaces)
        .map(root_workspaces)
        .unwrap_or_default();
    let records_licenses = entries
        .iter()
        .any(|(key, entry)| !key.is_empty() && entry.raw.license.is_some());
    for (key, entry) in &entries {
        let line = entry.line;
        // The root project itself is not a dependency.
        if key.is_empty() {
            continue;
        }
        // Keys without `node_modules/` are link targets (workspace members, `file:` dirs);
        // they are reported once, through the `node_modules/...` link that points at them.
        let Some((_, install_name)) = key.rsplit_once("node_modules/") else {
            continue;
        };
        let name = entry.name.as_deref().unwrap_or(install_name);
        if entry.raw.link.is_some_and(|l| l.get() == "true") {
            let target = entry.resolved.as_deref().unwrap_or_default();
            let target_entry = entries.get(target);
            // `"resolved": ""` links the project to itself (`"name": "file:"` in package.json).
            let shown = if target.is_empty() { "." } else { target };
            let source = if workspaces.iter().any(|w| glob_match(w, target)) {
                PackageSource::Workspace {
                    path: shown.to_owned(),
                }
            } else {
                PackageSource::Path {
                    path: shown.to_owned(),
                }
            };
            out.push(locked(
                target_entry.and_then(|t| t.name.as_deref()).unwrap_or(name),
                target_entry
                    .and_then(|t| t.version.as_deref())
                    .unwrap_or_default(),
                source,
                line,
            ));
            continue;
        }
        let Some(version) = entry.version.as_deref() else {
            return Err(ParseError::new(
                path,
                line,
                format!("package \"{key}\" has no \"version\""),
            ));
        };
        let source = match entry.resolved.as_deref() {
            Some(resolved) => source_from_resolved(name, version, resolved),
            None => classify_spec(version).unwrap_or(PackageSource::Registry { url: None }),
        };
        let mut package = locked(name, version, source, line);
        package.metadata = records_licenses.then(|| entry_metadata(entry));
        out.push(package);
    }
    Ok(())
}

/// What a v2/v3 entry says about its version. npm writes `hasInstallScript` only when true
/// and `deprecated` only when set, so in a lockfile npm wrote (one that records a license
/// somewhere) their absence is an answer. Not so `license`: real lockfiles leave it out
/// of many entries whose packages do declare one, so an entry without it has an unknown
/// license, never a missing one. A lockfile recording no license
/// anywhere (another writer) gets no metadata at all.
fn entry_metadata(entry: &PackageEntry<'_>) -> VersionMetadata {
    /// Legacy `{"type": "MIT", "url": ...}` objects, copied through by old manifests.
    #[derive(Deserialize)]
    struct LicenseObject {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    let string = |raw: &RawValue| serde_json::from_str::<String>(raw.get()).ok();
    let entry = &entry.raw;
    let license = entry.license.and_then(|raw| {
        string(raw).or_else(|| {
            serde_json::from_str::<LicenseObject>(raw.get())
                .ok()
                .and_then(|o| o.kind)
        })
    });
    VersionMetadata {
        license,
        has_install_scripts: Some(entry.has_install_script.is_some_and(|r| r.get() == "true")),
        deprecated: entry.deprecated.and_then(string),
        ..VersionMetadata::default()
    }
}

/// v1: `dependencies: {name: {version, resolved, dependencies: {...}}}`, nested where npm
/// could not hoist. `version` carries aliases (`npm:real@1.0.0`) and non-registry specs.
fn parse_v1_deps(
    path: &Path,
    deps: &Value,
    lines: &JsonKeyLines,
    key_path: &mut Vec<String>,
    out: &mut Vec<LockedPackage>,
) -> Result<(), ParseError> {
    let Some(deps) = deps.as_object() else {
        let parent: Vec<&str> = key_path.iter().map(String::as_str).collect();
        return Err(ParseError::new(
            path,
            None,
            format!("\"{}\" must be an object", parent.join(".")),
        ));
    };
    for (key, entry) in deps {
        key_path.push(key.clone());
        let key_refs: Vec<&str> = key_path.iter().map(String::as_str).collect();
        let line = lines.get(&key_refs);
        let entry = as_object(path, line, key, entry)?;
        let Some(raw_version) = str_field(path, line, entry, "version")? else {
            return Err(ParseError::new(
                path,
                line,
                format!("dependency \"{key}\" has no \"version\""),
            ));
        };
        let (name, version) = match raw_version.strip_prefix("npm:").and_then(split_spec) {
            Some((real, v)) => (real, v),
            None => (key.as_str(), raw_version),
        };
        let source = match str_field(path, line, entry, "resolved")? {
            Some(resolved) => source_from_resolved(name, version, resolved),
            None => classify_spec(version).unwrap_or(PackageSource::Registry { url: None }),
        };
        out.push(locked(name, version, source, line));
        if let Some(nested) = entry.get("dependencies") {
            key_path.push("dependencies".to_owned());
            parse_v1_deps(path, nested, lines, key_path, out)?;
            key_path.pop();
        }
        key_path.pop();
    }
    Ok(())
}

/// The root entry's `workspaces` globs (array, or `{packages: [...]}` in older files).
fn root_workspaces(raw: &RawValue) -> Vec<String> {
    let Ok(ws) = serde_json::from_str::<Value>(raw.get()) else {
        return Vec::new();
    };
    let list = ws.get("packages").unwrap_or(&ws);
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| s.trim_start_matches("./").trim_end_matches('/').to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// npm workspace globs: `*` matches one path segment, `**` any number.
fn glob_match(pattern: &str, path: &str) -> bool {
    fn segs(p: &[&str], s: &[&str]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(&"**"), _) => segs(&p[1..], s) || (!s.is_empty() && segs(p, &s[1..])),
            (Some(pp), Some(ss)) => seg_match(pp, ss) && segs(&p[1..], &s[1..]),
            _ => false,
        }
    }
    fn seg_match(p: &str, s: &str) -> bool {
        match p.split_once('*') {
            None => p == s,
            Some((pre, post)) => {
                s.len() >= pre.len() + post.len() && s.starts_with(pre) && s.ends_with(post)
            }
        }
    }
    let p: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let s: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // Bound the backtracking of `**` on hostile input.
    p.len() <= 32 && segs(&p, &s)
}

fn as_object<'a>(
    path: &Path,
    line: Option<u32>,
    key: &str,
    entry: &'a Value,
) -> Result<&'a Map<String, Value>, ParseError> {
    entry
        .as_object()
        .ok_or_else(|| ParseError::new(path, line, format!("entry \"{key}\" must be an object")))
}

fn str_field<'a>(
    path: &Path,
    line: Option<u32>,
    entry: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, ParseError> {
    match entry.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ParseError::new(
            path,
            line,
            format!("\"{field}\" must be a string"),
        )),
    }
}

// ---- Helpers shared by the npm-family parsers (npm, yarn, pnpm, bun). ----

pub(super) fn locked(
    name: &str,
    version: &str,
    source: PackageSource,
    line: Option<u32>,
) -> LockedPackage {
    LockedPackage {
        ecosystem: Ecosystem::Npm,
        name: name.to_owned(),
        version: version.to_owned(),
        source,
        line,
        metadata: None,
    }
}

pub(super) fn line_u32(line: usize) -> Option<u32> {
    u32::try_from(line).ok().filter(|l| *l > 0)
}

/// Splits `name@rest` where `name` may be scoped (`@scope/name@rest`).
pub(super) fn split_spec(spec: &str) -> Option<(&str, &str)> {
    let search_from = usize::from(spec.starts_with('@'));
    let at = spec.get(search_from..)?.find('@')? + search_from;
    let (name, rest) = (&spec[..at], &spec[at + 1..]);
    (!name.is_empty() && name != "@").then_some((name, rest))
}

/// The source a non-registry specifier or reference names, or `None` for a plain version
/// or range (meaning: the registry).
pub(super) fn classify_spec(spec: &str) -> Option<PackageSource> {
    const GIT_PREFIXES: [&str; 8] = [
        "git+",
        "git://",
        "git@",
        "github:",
        "gitlab:",
        "bitbucket:",
        "gist:",
        "ssh://",
    ];
    if GIT_PREFIXES.iter().any(|p| spec.starts_with(p)) {
        return Some(PackageSource::Git {
            url: spec.to_owned(),
        });
    }
    if let Some(p) = spec
        .strip_prefix("file:")
        .or_else(|| spec.strip_prefix("link:"))
    {
        return Some(PackageSource::Path { path: p.to_owned() });
    }
    if spec.starts_with("http://") || spec.starts_with("https://") {
        return Some(PackageSource::Url {
            url: spec.to_owned(),
        });
    }
    None
}

/// Registries whose tarballs count as "the default registry" (`Registry { url: None }`).
const DEFAULT_REGISTRIES: [&str; 4] = [
    "https://registry.npmjs.org",
    "http://registry.npmjs.org",
    "https://registry.yarnpkg.com",
    "http://registry.yarnpkg.com",
];

/// If `url` is a registry tarball for `name@version`, the registry it came from.
pub(super) fn registry_of_tarball(url: &str, name: &str, version: &str) -> Option<PackageSource> {
    let bare = url.split(['#', '?']).next().unwrap_or(url);
    let unscoped = name.rsplit('/').next().unwrap_or(name);
    // `<base>/<name>/-/<unscoped>-<version>.tgz`, the scope's `/` maybe percent-encoded.
    let base_and_name = bare
        .strip_suffix(".tgz")
        .and_then(|s| s.strip_suffix(version))
        .and_then(|s| s.strip_suffix('-'))
        .and_then(|s| s.strip_suffix(unscoped))
        .and_then(|s| s.strip_suffix("/-/"))?;
    let base = match name.split_once('/') {
        None => base_and_name.strip_suffix(name),
        Some((scope, _)) => base_and_name.strip_suffix(unscoped).and_then(|s| {
            ["/", "%2f", "%2F"]
                .iter()
                .find_map(|sep| s.strip_suffix(sep)?.strip_suffix(scope))
        }),
    }
    .and_then(|s| s.strip_suffix('/'))?;
    let url = (!DEFAULT_REGISTRIES.contains(&base)).then(|| base.to_owned());
    Some(PackageSource::Registry { url })
}

/// Source of a `resolved` URL or spec (npm `resolved`, yarn v1 `resolved`).
pub(super) fn source_from_resolved(name: &str, version: &str, resolved: &str) -> PackageSource {
    if let Some(registry) = registry_of_tarball(resolved, name, version) {
        return registry;
    }
    classify_spec(resolved).unwrap_or(PackageSource::Registry { url: None })
}

/// Puts packages in file order and drops repeats of the same (name, version, source),
/// keeping the first (and its line). Parsers walk maps whose order is not the file's.
pub(super) fn dedup(mut packages: Vec<LockedPackage>) -> Vec<LockedPackage> {
    packages.sort_by_key(|p| p.line.unwrap_or(u32::MAX));
    let mut seen = HashSet::with_capacity(packages.len());
    let first: Vec<bool> = packages
        .iter()
        .map(|p| seen.insert((p.name.as_str(), p.version.as_str(), &p.source)))
        .collect();
    drop(seen);
    packages
        .into_iter()
        .zip(first)
        .filter_map(|(p, first)| first.then_some(p))
        .collect()
}

/// 1-based line of every object key whose enclosing key is one of `containers`, by its
/// path of enclosing keys. serde_json gives no spans; one lexical pass over the text
/// (strings and brackets only) is enough to find entry keys. Paths are kept as 64-bit
/// SipHash digests, not joined strings (thousands of entries): a collision could only
/// give a finding the wrong line.
pub(super) struct JsonKeyLines(HashMap<u64, u32>);

fn path_digest<'p>(parts: impl IntoIterator<Item = &'p str>) -> u64 {
    use std::hash::Hasher as _;
    let mut hasher = std::hash::DefaultHasher::new();
    for part in parts {
        hasher.write(part.as_bytes());
        // Not valid UTF-8: no key contains it, so ["ab", "c"] and ["a", "bc"] differ.
        hasher.write_u8(0xff);
    }
    hasher.finish()
}

impl JsonKeyLines {
    pub(super) fn scan(text: &str, containers: &[&str]) -> Self {
        let bytes = text.as_bytes();
        let mut map = HashMap::new();
        let mut stack: Vec<&str> = Vec::new();
        let mut last_key: Option<&str> = None;
        let mut line: u32 = 1;
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\n' => line = line.saturating_add(1),
                b'"' => {
                    let start = i + 1;
                    let mut j = start;
                    let mut newlines = 0u32;
                    while j < bytes.len() && bytes[j] != b'"' {
                        match bytes[j] {
                            b'\\' => j += 1,
                            b'\n' => newlines += 1,
                            _ => {}
                        }
                        j += 1;
                    }
                    let end = j.min(bytes.len());
                    let mut k = end + 1;
                    while k < bytes.len() && matches!(bytes[k], b' ' | b'\t' | b'\r' | b'\n') {
                        k += 1;
                    }
                    if k < bytes.len() && bytes[k] == b':' {
                        let key = text.get(start..end).unwrap_or_default();
                        if stack.last().is_some_and(|c| containers.contains(c)) {
                            map.entry(path_digest(stack.iter().copied().chain([key])))
                                .or_insert(line);
                        }
                        last_key = Some(key);
                    }
                    line = line.saturating_add(newlines);
                    i = end + 1;
                    continue;
                }
                b'{' | b'[' => stack.push(last_key.take().unwrap_or_default()),
                b'}' | b']' => {
                    stack.pop();
                    last_key = None;
                }
                b',' => last_key = None,
                _ => {}
            }
            i += 1;
        }
        JsonKeyLines(map)
    }

    /// Line of the key at `path` (enclosing keys from the top level, then the key).
    pub(super) fn get(&self, path: &[&str]) -> Option<u32> {
        // The top-level object's own "key" is empty.
        self.0
            .get(&path_digest([""].into_iter().chain(path.iter().copied())))
            .copied()
    }
}
