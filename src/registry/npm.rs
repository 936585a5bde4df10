//! The npm registry protocol, as `depfw serve` speaks it under `/npm/`.
//!
//! npm, pnpm, yarn and bun read packuments (`GET /{name}`) and download tarballs
//! (`GET /{name}/-/{basename}-{version}.tgz`); pnpm 12 (`minimumReleaseAge: 0`) and
//! `npm view` also read one version's manifest (`GET /{name}/{version-or-dist-tag}`).
//! This module maps those paths to packages, lists a packument's versions as
//! [`VersionRecord`]s and renders a packument with some versions removed, tarball URLs
//! pointing at depfw, and optionally in the abbreviated ("corgi") form, or one version
//! of it. It holds no policy: the proxy decides what is kept.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use percent_encoding::percent_decode_str;
use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use url::Url;

use super::heap::HeapSize as _;
use super::rope::{Rope, RopeBuilder};
use super::{
    ArtifactRecord, ArtifactRequest, Digest, Disposition, Document, Kept, Protocol, ProtocolError,
    RenderCx, Route, VersionRecord,
};
use crate::config::UpstreamConfig;
use crate::package::{Ecosystem, PackageName, Version};
use crate::policy::signals::{HistoryBuilder, Lineage, ReleaseFacts};
use crate::policy::VersionMetadata;

/// The media type of the abbreviated packument.
pub(crate) const CORGI: &str = "application/vnd.npm.install-v1+json";

/// Longest request path accepted; npm names are at most 214 bytes, so anything longer is
/// hostile or broken.
const MAX_PATH_LEN: usize = 1024;

/// Longest dist-tag accepted in a version path. The registry sets no documented limit;
/// real tags are short words (`latest`, `next`, `v3-lts`).
const MAX_TAG_LEN: usize = 128;

/// What a client path under `/npm` asks for: packuments are [`Route::Metadata`], tarballs
/// [`Route::Artifact`]; the rest is npm's own ([`NpmQuirk`]).
pub(crate) type NpmPath = Route<NpmQuirk>;

/// What only the npm registry serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NpmQuirk {
    /// `/{name}/{version-or-dist-tag}`: one version's manifest.
    Version(PackageName, VersionSpec),
    /// `/-/ping`
    Ping,
    /// `/-/npm/v1/keys` (registry signing keys)
    Keys,
    /// `POST /-/npm/v1/security/advisories/bulk` and `/-/npm/v1/security/audits/quick`
    Audit,
    /// `/-/v1/search` (`npm search`)
    Search,
}

/// The second segment of a version path, told apart the way the registry does: a valid
/// semver version is looked up as a version, anything else as a dist-tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VersionSpec {
    /// As spelled in the path; looked up in [`VersionRecord::version_text`].
    Exact(String),
    Tag(String),
}

fn bad(why: impl Into<String>) -> ProtocolError {
    ProtocolError::BadPath(why.into())
}

/// Parses the path after the `/npm` prefix (still percent-encoded, starting with `/`).
///
/// Scoped names arrive as `/@scope%2fname` (npm, bun, yarn), `/@scope%2Fname` (pnpm) or
/// `/@scope/name`; an encoded slash anywhere else is refused, as are `.`/`..` segments
/// and control characters.
pub(crate) fn parse_path(raw: &str) -> Result<NpmPath, ProtocolError> {
    if raw.len() > MAX_PATH_LEN {
        return Err(bad(format!("path longer than {MAX_PATH_LEN} bytes")));
    }
    let rest = raw
        .strip_prefix('/')
        .ok_or_else(|| bad("path must start with `/`"))?;
    let segments = rest
        .split('/')
        .map(|seg| {
            let decoded = percent_decode_str(seg)
                .decode_utf8()
                .map_err(|_| bad("path is not valid UTF-8"))?;
            if decoded.chars().any(char::is_control) {
                return Err(bad("control character in path"));
            }
            if decoded.is_empty() || decoded == "." || decoded == ".." {
                return Err(bad("empty, `.` or `..` path segment"));
            }
            Ok(decoded.into_owned())
        })
        .collect::<Result<Vec<String>, ProtocolError>>()?;

    if segments.first().map(String::as_str) == Some("-") {
        let tail = segments[1..].join("/");
        return Ok(match tail.as_str() {
            "ping" => Route::Quirk(NpmQuirk::Ping),
            "npm/v1/keys" => Route::Quirk(NpmQuirk::Keys),
            "npm/v1/security/advisories/bulk" | "npm/v1/security/audits/quick" => {
                Route::Quirk(NpmQuirk::Audit)
            }
            "v1/search" => Route::Quirk(NpmQuirk::Search),
            _ => Route::NotServed,
        });
    }

    let (name_text, rest) = match segments.as_slice() {
        [first, rest @ ..] if first.starts_with('@') && first.contains('/') => {
            (first.clone(), rest)
        }
        [scope, name, rest @ ..] if scope.starts_with('@') => (format!("{scope}/{name}"), rest),
        [first, rest @ ..] => (first.clone(), rest),
        [] => return Err(bad("no package name")),
    };
    if rest.iter().any(|s| s.contains('/')) {
        return Err(bad("encoded `/` outside an npm scope"));
    }
    let name = PackageName::parse(Ecosystem::Npm, &name_text).map_err(|e| bad(e.to_string()))?;
    match rest {
        [] => Ok(Route::Metadata(name)),
        [dash, file] if dash == "-" => parse_tarball(name, file).map(Route::Artifact),
        [spec] => parse_version_spec(spec).map(|spec| Route::Quirk(NpmQuirk::Version(name, spec))),
        _ => Err(bad(format!(
            "`{}` is neither a packument, a version nor a tarball path",
            rest.join("/")
        ))),
    }
}

fn parse_version_spec(spec: &str) -> Result<VersionSpec, ProtocolError> {
    if Version::parse(Ecosystem::Npm, spec).is_ok() {
        return Ok(VersionSpec::Exact(spec.to_owned()));
    }
    if spec.len() > MAX_TAG_LEN {
        return Err(bad(format!("dist-tag longer than {MAX_TAG_LEN} bytes")));
    }
    // The registry only accepts tags that need no URL encoding.
    let url_safe = |c: char| c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c);
    if !spec.chars().all(url_safe) {
        return Err(bad(format!("`{spec}` is neither a version nor a dist-tag")));
    }
    Ok(VersionSpec::Tag(spec.to_owned()))
}

/// The unscoped part of a name: the tarball file name's prefix.
fn basename(name: &PackageName) -> &str {
    let s = name.as_str();
    s.rsplit_once('/').map_or(s, |(_, base)| base)
}

fn parse_tarball(name: PackageName, file: &str) -> Result<ArtifactRequest, ProtocolError> {
    let version_text = file
        .strip_suffix(".tgz")
        .and_then(|f| f.strip_prefix(basename(&name)))
        .and_then(|f| f.strip_prefix('-'))
        .ok_or_else(|| bad(format!("`{file}` is not a tarball of {name}")))?;
    Version::parse(Ecosystem::Npm, version_text).map_err(|e| bad(e.to_string()))?;
    Ok(ArtifactRequest {
        version_text: version_text.to_owned(),
        filename: file.to_owned(),
        name,
    })
}

/// The conventional tarball file name of a version.
pub(crate) fn tarball_filename(name: &PackageName, version: &str) -> String {
    format!("{}-{version}.tgz", basename(name))
}

/// Where depfw serves a version's tarball; `public_base` is `server.public_url`.
pub(crate) fn tarball_url(public_base: &str, name: &PackageName, version: &str) -> String {
    format!(
        "{}/npm/{}/-/{}",
        public_base.trim_end_matches('/'),
        name.as_str(),
        tarball_filename(name, version)
    )
}

/// Whether the client's `Accept` header asks for the abbreviated packument.
pub(crate) fn wants_corgi(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains(CORGI))
}

/// A full packument, kept compactly: the upstream body itself (the same allocation the
/// metadata cache holds, not a copy), where each top-level member and each version's
/// manifest lies in it, the dist-tags and the versions' records. A rendering reads back
/// only what it needs, one version at a time, so no JSON tree of the whole document (5–10
/// times its size) is kept for the cache's lifetime, nor built per rendering.
#[derive(Debug, Clone)]
pub(crate) struct Packument {
    body: Bytes,
    /// Top-level members in key order (how `serde_json::Map` orders and so writes them;
    /// of duplicate keys the last wins), with the byte range of each value in `body`.
    members: Vec<(String, Range<usize>)>,
    /// `versions`, when it is an object: each manifest's range, in key order, one per
    /// record (whose `version_text` is its key).
    versions: Option<Vec<Range<usize>>>,
    dist_tags: Option<Value>,
    /// One per version, for the policy: without their tarball, which
    /// [`Packument::record`] reads from the manifest for a download.
    pub records: Vec<VersionRecord>,
    /// The heap bytes held, `body` included (see [`super::heap`]).
    footprint: usize,
}

/// Members of a JSON object with their values as they are in the input.
type RawMembers<'b> = BTreeMap<String, &'b RawValue>;

/// A packument's `time` while it is parsed: its entries sorted by key (the last of
/// duplicates, as a JSON tree keeps), keys and values borrowed from the body where they
/// have no escapes. A tree of its one entry per version took three times as much.
struct Times<'b>(Vec<(Cow<'b, str>, &'b RawValue)>);

impl<'b> Times<'b> {
    /// `time`'s entries; none if it is absent or not an object.
    fn new(json: Option<&'b [u8]>) -> Times<'b> {
        Times(json.and_then(sorted_members).unwrap_or_default())
    }

    /// The time of `key`, if it is an RFC 3339 string.
    fn get(&self, key: &str) -> Option<DateTime<Utc>> {
        let i = self.0.binary_search_by(|(k, _)| k.as_ref().cmp(key)).ok()?;
        let text: String = serde_json::from_str(self.0[i].1.get()).ok()?;
        DateTime::parse_from_rfc3339(&text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// The members of the JSON object `json` sorted by key, the last of duplicates (as a tree
/// keeps), keys borrowed where they have no escapes; `None` if it is not an object. One
/// allocation for a packument's `versions` or `time`, where a map took one per key.
fn sorted_members(json: &[u8]) -> Option<Vec<(Cow<'_, str>, &RawValue)>> {
    let mut entries = Vec::new();
    if !scan_object(json, |k, v| entries.push((k, v))) {
        return None;
    }
    // Stable: duplicates stay in input order, and the last one is kept.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            std::mem::swap(later, kept);
        }
        same
    });
    Some(entries)
}

/// `license` as a string, the legacy `{type, url}` object, or `licenses: [..]`.
fn license_of(doc: &Value) -> Option<String> {
    let one = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("type").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        }
    };
    if let Some(l) = doc.get("license").and_then(one) {
        return Some(l);
    }
    let list: Vec<String> = doc
        .get("licenses")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(one)
        .collect();
    (!list.is_empty()).then(|| list.join(" OR "))
}

fn has_install_scripts(vdoc: &Value) -> bool {
    let scripts = vdoc.get("scripts").and_then(Value::as_object);
    let hook = scripts.is_some_and(|s| {
        ["preinstall", "install", "postinstall"]
            .iter()
            .any(|k| s.contains_key(*k))
    });
    hook || vdoc.get("hasInstallScript").and_then(Value::as_bool) == Some(true)
}

/// What the release signals compare across versions (`policy::signals`): install hooks,
/// the publisher (`_npmUser`), the maintainers at publish time and whether the version
/// carries a provenance attestation (`dist.attestations`, which the registry sets for
/// versions published with `--provenance`), and the names it depends on at install.
fn release_facts<'a>(
    version: &'a str,
    published: Option<DateTime<Utc>>,
    vdoc: &'a Value,
) -> ReleaseFacts<'a> {
    /// `{"name": …}`, or the legacy `"name <email>"` string.
    fn person(v: &Value) -> Option<&str> {
        match v {
            Value::Object(o) => o.get("name").and_then(Value::as_str),
            Value::String(s) => s.split(" <").next(),
            _ => None,
        }
        .map(str::trim)
        .filter(|n| !n.is_empty())
    }
    let maintainers = vdoc
        .get("maintainers")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(person).collect())
        .unwrap_or_default();
    ReleaseFacts {
        version,
        published,
        install_script: Some(has_install_scripts(vdoc)),
        attested: Some(
            vdoc.get("dist")
                .and_then(|d| d.get("attestations"))
                .is_some_and(|a| !a.is_null()),
        ),
        publisher: vdoc.get("_npmUser").and_then(person),
        maintainers,
        dependencies: Some(
            ["dependencies", "optionalDependencies"]
                .iter()
                .filter_map(|k| vdoc.get(*k).and_then(Value::as_object))
                .flat_map(|deps| deps.keys().map(String::as_str))
                .collect(),
        ),
    }
}

/// `dist.integrity` (the sha512 entry of an SRI list), else `dist.shasum`.
fn digest_of(dist: Option<&Value>) -> Option<Digest> {
    let dist = dist?;
    let sri = dist
        .get("integrity")
        .and_then(Value::as_str)
        .into_iter()
        .flat_map(str::split_whitespace)
        .find_map(|entry| entry.strip_prefix("sha512-"))
        .and_then(|b64| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.decode(b64).ok()
        })
        .filter(|b| b.len() == 64)
        .map(Digest::Sha512);
    sri.or_else(|| {
        dist.get("shasum")
            .and_then(Value::as_str)
            .and_then(|h| hex::decode(h).ok())
            .filter(|b| b.len() == 20)
            .map(Digest::Sha1)
    })
}

/// Where `raw` (a slice of `body`) lies in `body`.
fn range_in(body: &[u8], raw: &RawValue) -> Range<usize> {
    let start = (raw.get().as_ptr() as usize).saturating_sub(body.as_ptr() as usize);
    start..start + raw.get().len()
}

/// Parses a full packument as upstream sent it (copied; the server shares the body
/// instead, [`parse_packument_bytes`]).
pub(crate) fn parse_packument(name: &PackageName, body: &[u8]) -> Result<Packument, ProtocolError> {
    parse_packument_bytes(name, Bytes::copy_from_slice(body))
}

/// Parses a full packument, keeping `body` (see [`Packument`]).
pub(crate) fn parse_packument_bytes(
    name: &PackageName,
    body: Bytes,
) -> Result<Packument, ProtocolError> {
    let top: RawMembers<'_> = serde_json::from_slice(&body).map_err(|e| {
        match serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
            Ok(_) => {
                ProtocolError::BadUpstream(format!("packument of {name} is not a JSON object"))
            }
            Err(_) => ProtocolError::BadUpstream(format!("packument of {name}: {e}")),
        }
    })?;
    let value = |key: &str| -> Option<Value> {
        top.get(key)
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    };
    let time = Times::new(top.get("time").map(|raw| raw.get().as_bytes()));
    let versions = match top.get("versions") {
        None => None,
        Some(raw) if raw.get() == "null" => None,
        Some(raw) => Some(sorted_members(raw.get().as_bytes()).ok_or_else(|| {
            ProtocolError::BadUpstream(format!("packument of {name}: `versions` is not an object"))
        })?),
    };
    let listed = versions.as_deref().unwrap_or_default();
    let package_created = time
        .get("created")
        .or_else(|| listed.iter().filter_map(|(v, _)| time.get(v)).min());
    let mut licenses = Map::new();
    for key in ["license", "licenses"] {
        if let Some(v) = value(key) {
            licenses.insert(key.to_owned(), v);
        }
    }
    let top_license = license_of(&Value::Object(licenses));
    let mut records = Vec::with_capacity(listed.len());
    let mut history = HistoryBuilder::new();
    let mut positions = Vec::with_capacity(listed.len());
    for (v, raw) in listed {
        let v: &str = v;
        // One manifest's tree at a time; dropped once its record is taken.
        let vdoc: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
        let published = time.get(v);
        positions.push(history.push(&release_facts(v, published, &vdoc)));
        records.push(VersionRecord {
            version_text: v.to_owned(),
            version: Version::parse(Ecosystem::Npm, v).ok(),
            metadata: VersionMetadata {
                publish_time_expected: true,
                published,
                package_created,
                // A packument is the whole manifest: no license there means none declared.
                license: Some(
                    license_of(&vdoc)
                        .or_else(|| top_license.clone())
                        .unwrap_or_default(),
                ),
                has_install_scripts: Some(has_install_scripts(&vdoc)),
                deprecated: vdoc
                    .get("deprecated")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                yanked: None,
                lineage: None,
                gathered: None,
            },
            // Read from the manifest when a tarball is asked for ([`Packument::record`]):
            // four allocations per version, more than the rest of the record.
            artifacts: Vec::new(),
        });
    }
    let history = history.finish();
    for (record, position) in records.iter_mut().zip(positions) {
        record.metadata.lineage = Some(Lineage::new(Arc::clone(&history), position));
    }
    let ranges = |m: &RawMembers<'_>| -> Vec<(String, Range<usize>)> {
        m.iter()
            .map(|(k, raw)| (k.clone(), range_in(&body, raw)))
            .collect()
    };
    let members = ranges(&top);
    let versions: Option<Vec<Range<usize>>> = versions
        .as_ref()
        .map(|m| m.iter().map(|(_, raw)| range_in(&body, raw)).collect());
    let dist_tags = value("dist-tags");
    let spans = |v: &Vec<(String, Range<usize>)>| {
        v.capacity() * std::mem::size_of::<(String, Range<usize>)>()
            + v.iter().map(|(k, _)| k.capacity()).sum::<usize>()
    };
    let footprint = body.len()
        + spans(&members)
        + versions
            .as_ref()
            .map_or(0, |v| v.capacity() * std::mem::size_of::<Range<usize>>())
        + dist_tags.heap_size()
        + records.heap_size()
        + history.heap_bytes();
    Ok(Packument {
        body,
        members,
        versions,
        dist_tags,
        records,
        footprint,
    })
}

/// The fields of a version that the abbreviated packument keeps.
const CORGI_VERSION_FIELDS: &[&str] = &[
    "name",
    "version",
    "dependencies",
    "optionalDependencies",
    "devDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "bundleDependencies",
    "bundledDependencies",
    "acceptDependencies",
    "bin",
    "directories",
    "engines",
    "os",
    "cpu",
    "dist",
    "deprecated",
    "funding",
    "libc",
    "_hasShrinkwrap",
];

/// Writes `"key":` after a `,` unless it is the object's first member.
fn write_key(out: &mut Vec<u8>, first: &mut bool, key: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    write_json(out, key);
    out.push(b':');
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing JSON values and strings into a Vec cannot fail.
    let _ = serde_json::to_writer(out, value);
}

impl Packument {
    /// The heap bytes this document holds, its upstream body included.
    pub(crate) fn footprint(&self) -> usize {
        self.footprint
    }

    /// The bytes of a range found while parsing.
    fn slice(&self, range: &Range<usize>) -> &[u8] {
        self.body.get(range.clone()).unwrap_or(b"null")
    }

    /// A top-level member's value, parsed.
    fn member(&self, key: &str) -> Option<Value> {
        let i = self
            .members
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()?;
        serde_json::from_slice(self.slice(&self.members[i].1)).ok()
    }

    /// One version's manifest, parsed; `None` if upstream lists no such version.
    fn manifest(&self, version: &str) -> Option<Value> {
        let i = self.find(version)?;
        serde_json::from_slice(self.slice(self.versions.as_ref()?.get(i)?)).ok()
    }

    /// The newest kept version, preferring releases over pre-releases.
    fn newest_kept<'a>(&'a self, kept: &Kept) -> Option<&'a str> {
        let candidates = self
            .records
            .iter()
            .filter(|r| kept.contains(&r.version_text))
            .filter_map(|r| r.version.as_ref().map(|v| (v, r.version_text.as_str())));
        let (releases, pre): (Vec<_>, Vec<_>) = candidates.partition(|(v, _)| !v.is_prerelease());
        newest(releases).or_else(|| newest(pre))
    }

    /// `dist-tags` with only `kept` versions: a tag of a removed version is dropped, except
    /// `latest`, which moves to the newest kept version. `None` if upstream has none.
    pub(crate) fn dist_tags(&self, kept: &Kept) -> Option<Map<String, Value>> {
        let Some(Value::Object(upstream)) = &self.dist_tags else {
            return None;
        };
        let mut tags = upstream.clone();
        tags.retain(|tag, target| {
            tag == "latest" || target.as_str().is_some_and(|t| kept.contains(t))
        });
        let latest_ok = tags
            .get("latest")
            .and_then(Value::as_str)
            .is_some_and(|t| kept.contains(t));
        if !latest_ok {
            match self.newest_kept(kept) {
                Some(l) => {
                    tags.insert("latest".to_owned(), Value::String(l.to_owned()));
                }
                None => {
                    tags.remove("latest");
                }
            }
        }
        Some(tags)
    }

    /// The version an upstream (unfiltered) dist-tag points at.
    pub(crate) fn upstream_tag(&self, tag: &str) -> Option<&str> {
        self.dist_tags.as_ref()?.get(tag)?.as_str()
    }

    /// One version's manifest, as `GET /{name}/{version}` returns it: the packument's
    /// `versions[version]` with the tarball URL under `public_base`, exactly as in
    /// [`Packument::render`]. `None` if upstream lists no such version.
    pub(crate) fn render_version(
        &self,
        name: &PackageName,
        version: &str,
        public_base: &str,
    ) -> Option<Vec<u8>> {
        let mut vdoc = self.manifest(version)?;
        rewrite_tarball(&mut vdoc, name, version, public_base);
        serde_json::to_vec(&vdoc).ok()
    }

    /// `version`'s record with its tarball: the file name depfw serves it as, upstream's
    /// URL (`dist.tarball`) and published digest (`dist.integrity`, else `dist.shasum`),
    /// read from its manifest. The records the policy reads ([`Packument::records`]) leave
    /// the tarball out: only a download needs it.
    pub(crate) fn record(&self, name: &PackageName, version: &str) -> Option<VersionRecord> {
        let mut record = self.records.get(self.find(version)?)?.clone();
        let vdoc = self.manifest(version).unwrap_or(Value::Null);
        let dist = vdoc.get("dist");
        record.artifacts = vec![ArtifactRecord {
            filename: tarball_filename(name, version),
            upstream_url: dist
                .and_then(|d| d.get("tarball"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            digest: digest_of(dist),
        }];
        Some(record)
    }

    /// Whether upstream lists `version` under `versions` (`time` has an entry for each).
    fn lists(&self, version: &str) -> bool {
        self.find(version).is_some()
    }

    /// The index of `version`'s record (and manifest range): records are in key order.
    fn find(&self, version: &str) -> Option<usize> {
        self.records
            .binary_search_by(|r| r.version_text.as_str().cmp(version))
            .ok()
    }

    /// The versions a rendering lists, with their manifests' ranges, in key order, and the
    /// `deprecated` text of each one yanked (`cx.show`): npm has no yank, so a yanked version
    /// is listed with its `deprecated` set to depfw's reason, and clients resolve ranges
    /// around it while an exact pin reaches the tarball's 403.
    fn shown_manifests<'s>(
        &'s self,
        versions: &'s [Range<usize>],
        cx: &'s RenderCx<'_>,
    ) -> impl Iterator<Item = (&'s String, &'s Range<usize>, Option<String>)> + 's {
        self.records
            .iter()
            .map(|r| &r.version_text)
            .zip(versions)
            .filter_map(|(v, range)| match (cx.show)(v) {
                Disposition::Keep => Some((v, range, None)),
                Disposition::Remove => None,
                Disposition::Yank(reason) => Some((v, range, Some(reason))),
            })
    }

    /// Appends `"key":` (after a comma unless it is the first member) for the value at `at`
    /// in the body: a range of the body when upstream wrote exactly that right before it
    /// (with its comma, if one is right before that); then the key's text in the body, which
    /// is `key` as is, is returned.
    fn rope_key(
        &self,
        b: &mut RopeBuilder,
        first: &mut bool,
        key: &str,
        at: usize,
    ) -> Option<Range<usize>> {
        let comma = !std::mem::take(first);
        let plain = !key.bytes().any(|c| c == b'"' || c == b'\\' || c < 0x20);
        let start = at.saturating_sub(key.len() + 3);
        let upstream = at >= key.len() + 3
            && self.body.get(start..at).is_some_and(|q| {
                q.first() == Some(&b'"')
                    && q.get(1..=key.len()) == Some(key.as_bytes())
                    && q.ends_with(b"\":")
            });
        if !(plain && upstream) {
            if comma {
                b.own().push(b',');
            }
            write_json(b.own(), key);
            b.own().push(b':');
            return None;
        }
        match start.checked_sub(1) {
            Some(c) if comma && self.body.get(c) == Some(&b',') => b.base(c..at),
            _ => {
                if comma {
                    b.own().push(b',');
                }
                b.base(start..at);
            }
        }
        Some(start + 1..at - 2)
    }

    /// Appends `time` without the entries of versions that are not `listed`, entry by entry
    /// from the upstream body (no tree of its one entry per version): a run of adjacent
    /// entries kept is one range of it. `false`, with nothing appended, if it is not an
    /// object.
    fn rope_filtered_time(
        &self,
        b: &mut RopeBuilder,
        range: &Range<usize>,
        listed: impl Fn(&str) -> bool,
    ) -> bool {
        let json = self.slice(range);
        // Written while it is scanned: the body was parsed whole, so an object scans to its
        // end.
        if json.first() != Some(&b'{') {
            return false;
        }
        b.own().push(b'{');
        // Where the entry written last ends in the body and its index, if it was a range.
        let mut last: Option<(usize, usize)> = None;
        let (mut first, mut i) = (true, 0);
        scan_object(json, |key, raw| {
            i += 1;
            if self.lists(&key) && !listed(key.as_ref()) {
                return;
            }
            let span = member_span(&self.body, &key, raw);
            match (&span, last) {
                (Some(span), Some((end, j))) if j + 1 == i => b.base(end..span.start),
                _ if !first => b.own().push(b','),
                _ => {}
            }
            first = false;
            match span {
                Some(span) => {
                    last = Some((span.end, i));
                    b.base(span);
                }
                None => {
                    last = None;
                    write_json(b.own(), key.as_ref());
                    b.own().push(b':');
                    b.own().extend_from_slice(raw.get().as_bytes());
                }
            }
        });
        b.own().push(b'}');
        true
    }

    /// `time.modified` as upstream wrote it.
    fn modified(&self) -> Option<&RawValue> {
        let i = self
            .members
            .binary_search_by(|(k, _)| k.as_str().cmp("time"))
            .ok()?;
        let mut modified = None;
        scan_object(self.slice(&self.members[i].1), |key, raw| {
            if key == "modified" {
                modified = Some(raw);
            }
        });
        modified
    }

    /// How `versions[version]` (at `range`) gets its tarball URL pointed at depfw within
    /// its upstream bytes.
    fn tarball_edit(&self, range: &Range<usize>) -> TarballEdit {
        let mut dist = Vec::new();
        if !scan_object(self.slice(range), |key, raw| {
            if key == "dist" {
                dist.push(raw);
            }
        }) {
            return TarballEdit::Verbatim;
        }
        let dist = match dist.as_slice() {
            [] => return TarballEdit::Verbatim,
            [one] => *one,
            // Which one a client reads depends on its parser: written from the tree.
            _ => return TarballEdit::Tree,
        };
        let (mut tarball, mut fields) = (Vec::new(), 0);
        if !scan_object(dist.get().as_bytes(), |key, raw| {
            fields += 1;
            if key == "tarball" {
                tarball.push(raw);
            }
        }) {
            return TarballEdit::Verbatim;
        }
        match tarball.as_slice() {
            [] => TarballEdit::Insert {
                // Before the closing brace.
                at: range_in(&self.body, dist).end.saturating_sub(1),
                comma: fields > 0,
            },
            [one] => TarballEdit::Replace(range_in(&self.body, one)),
            _ => TarballEdit::Tree,
        }
    }

    /// Appends the `versions` object with the versions `cx.show` lists, each manifest as
    /// upstream wrote it but for its tarball URL, which points at depfw (a yanked one is
    /// written from its tree, with its `deprecated` set).
    fn rope_versions(
        &self,
        b: &mut RopeBuilder,
        versions: &[Range<usize>],
        name: &PackageName,
        cx: &RenderCx<'_>,
        stash: usize,
    ) {
        let public_base = cx.public_base;
        b.own().push(b'{');
        let mut first = true;
        for (v, range, deprecated) in self.shown_manifests(versions, cx) {
            let key = self.rope_key(b, &mut first, v, range.start);
            if deprecated.is_some() {
                let vdoc = self.manifest_tree(range, name, v, public_base, deprecated);
                write_json(b.own(), &vdoc);
                continue;
            }
            let url = TarballUrl {
                name,
                version: v,
                public_base,
                key,
                stash,
            };
            match self.tarball_edit(range) {
                TarballEdit::Verbatim => b.base(range.clone()),
                TarballEdit::Replace(at) => {
                    b.base(range.start..at.start);
                    url.append(b);
                    b.base(at.end..range.end);
                }
                TarballEdit::Insert { at, comma } => {
                    b.base(range.start..at);
                    url.insert(b, comma);
                    b.base(at..range.end);
                }
                TarballEdit::Tree => {
                    let vdoc = self.manifest_tree(range, name, v, public_base, None);
                    write_json(b.own(), &vdoc);
                }
            }
        }
        b.own().push(b'}');
    }

    /// A version's manifest as a tree, its tarball URL pointed at depfw and, when it is
    /// yanked, its `deprecated` set to the reason.
    fn manifest_tree(
        &self,
        range: &Range<usize>,
        name: &PackageName,
        version: &str,
        public_base: &str,
        deprecated: Option<String>,
    ) -> Value {
        let mut vdoc: Value = serde_json::from_slice(self.slice(range)).unwrap_or(Value::Null);
        rewrite_tarball(&mut vdoc, name, version, public_base);
        if let (Some(reason), Value::Object(fields)) = (deprecated, &mut vdoc) {
            fields.insert("deprecated".to_owned(), Value::String(reason));
        }
        vdoc
    }

    /// Renders the packument with the versions `cx.show` lists (dist-tags only on
    /// `cx.kept` ones), with tarball URLs under `cx.public_base`; `corgi` selects the
    /// abbreviated form. The full form is the upstream
    /// body's own bytes but for `versions` (the kept manifests, each as upstream wrote it
    /// with its tarball URL replaced), `time` (the kept versions' entries) and `dist-tags`,
    /// members in key order: mostly ranges of the upstream body, not a copy of it.
    pub(crate) fn render(&self, name: &PackageName, cx: &RenderCx<'_>, corgi: bool) -> Rope {
        if corgi {
            return self.render_corgi(name, cx);
        }
        let (kept, public_base) = (cx.kept, cx.public_base);
        // What is written rather than referenced: the kept versions' keys and tarball URLs
        // and `time`, each entry of which stays about the same size.
        // The tarball URLs are pieces of a stash, version keys and time entries ranges.
        let stash = url_stash(public_base, name);
        let stash_len = stash.len();
        let mut b = RopeBuilder::with_stash(self.body.clone(), 4096, stash);
        // A version is about five pieces: its key and manifest up to the URL, the URL's
        // three, the rest.
        b.reserve_pieces(kept.len().saturating_mul(5).saturating_add(64));
        b.own().push(b'{');
        let mut first = true;
        for (key, range) in &self.members {
            write_key(b.own(), &mut first, key);
            match (key.as_str(), &self.versions) {
                ("versions", Some(versions)) => {
                    self.rope_versions(&mut b, versions, name, cx, stash_len);
                    continue;
                }
                // Written unless `time` is not an object (then nothing is written here).
                ("time", _) if self.rope_filtered_time(&mut b, range, listed(cx)) => continue,
                ("dist-tags", _) => {
                    if let Some(tags) = self.dist_tags(kept) {
                        write_json(b.own(), &tags);
                        continue;
                    }
                }
                _ => {}
            }
            b.base(range.clone());
        }
        b.own().push(b'}');
        b.finish()
    }

    /// The abbreviated ("corgi") form: install fields only, no `time`, `license` or
    /// `scripts`; members `dist-tags`, `modified`, `name`, `versions`. Like the full form it
    /// is mostly ranges of the upstream body: each version's install fields as upstream wrote
    /// them, in its order ([`Packument::rope_corgi_manifest`]).
    fn render_corgi(&self, name: &PackageName, cx: &RenderCx<'_>) -> Rope {
        let kept = cx.kept;
        let stash = url_stash(cx.public_base, name);
        let stash_len = stash.len();
        let mut b = RopeBuilder::with_stash(self.body.clone(), 4096, stash);
        // Six pieces a version: one more than the full form, for the fields left out.
        b.reserve_pieces(kept.len().saturating_mul(6).saturating_add(64));
        b.own().push(b'{');
        let mut first = true;
        let tags = match self.dist_tags(kept) {
            Some(tags) => Some(Value::Object(tags)),
            None => self.member("dist-tags"),
        };
        if let Some(tags) = tags {
            write_key(b.own(), &mut first, "dist-tags");
            write_json(b.own(), &tags);
        }
        if let Some(modified) = self.modified() {
            write_key(b.own(), &mut first, "modified");
            write_json(b.own(), modified);
        }
        if let Some(n) = self.member("name") {
            write_key(b.own(), &mut first, "name");
            write_json(b.own(), &n);
        }
        write_key(b.own(), &mut first, "versions");
        let Some(versions) = &self.versions else {
            b.own().extend_from_slice(b"{}}");
            return b.finish();
        };
        b.own().push(b'{');
        let mut first = true;
        for (v, range, deprecated) in self.shown_manifests(versions, cx) {
            let key = self.rope_key(&mut b, &mut first, v, range.start);
            let url = TarballUrl {
                name,
                version: v,
                public_base: cx.public_base,
                key,
                stash: stash_len,
            };
            if deprecated.is_none() && self.rope_corgi_manifest(&mut b, range, &url) {
                continue;
            }
            let vdoc = self.manifest_tree(range, name, v, cx.public_base, deprecated);
            write_json(b.own(), &abbreviate(vdoc));
        }
        b.own().extend_from_slice(b"}}");
        b.finish()
    }

    /// Appends the abbreviated manifest of `versions[version]` (at `range`): its install
    /// fields as ranges of the upstream body in upstream's order (adjacent ones as one run),
    /// the tarball URL pointed at depfw, `hasInstallScript` when it runs install scripts;
    /// the same document [`abbreviate`] makes of its tree. `false`, with nothing appended,
    /// when it has to be written from its tree: not an object, an install field or
    /// `scripts` spelled with escapes, duplicate `dist` or `dist.tarball` keys.
    fn rope_corgi_manifest(
        &self,
        b: &mut RopeBuilder,
        range: &Range<usize>,
        url: &TarballUrl<'_>,
    ) -> bool {
        let wanted = |k: &str| CORGI_VERSION_FIELDS.contains(&k);
        // Each member's span (`None` if its key has escapes), whether it is kept, whether it
        // is `dist`.
        let mut members: Vec<(Option<Range<usize>>, bool, bool)> = Vec::new();
        let mut install = Map::new();
        let mut escaped = false;
        let scanned = scan_object(self.slice(range), |key, raw| {
            if matches!(key.as_ref(), "scripts" | "hasInstallScript") {
                let value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
                install.insert(key.clone().into_owned(), value);
            }
            let keep = wanted(&key);
            let span = member_span(&self.body, &key, raw);
            escaped |= keep && span.is_none();
            members.push((span, keep, key == "dist"));
        });
        if !scanned || escaped {
            return false;
        }
        let edit = self.tarball_edit(range);
        if matches!(edit, TarballEdit::Tree) {
            return false;
        }
        let scripts = has_install_scripts(&Value::Object(install));
        // Upstream's `{` and `}` too, when the first and last members are kept.
        match members.first() {
            Some((Some(span), true, _)) => b.base(range.start..span.start),
            _ => b.own().push(b'{'),
        }
        // The member written last, if it is the one before: then the bytes between them
        // (a comma, spacing) are upstream's too, and the two are one range.
        let mut last: Option<usize> = None;
        for (i, (span, keep, is_dist)) in members.iter().enumerate() {
            // Every member kept has a span (checked above).
            let (Some(span), true) = (span, keep) else {
                continue;
            };
            let before = last.and_then(|j| members[j].0.as_ref());
            match (last, before) {
                (Some(j), Some(prev)) if j + 1 == i => b.base(prev.end..span.start),
                // Upstream's comma before it, if it is right there.
                (Some(_), _) if self.body.get(span.start.wrapping_sub(1)) == Some(&b',') => {
                    b.base(span.start - 1..span.start);
                }
                (Some(_), _) => b.own().push(b','),
                (None, _) => {}
            }
            last = Some(i);
            match (&edit, *is_dist) {
                (TarballEdit::Replace(at), true) => {
                    b.base(span.start..at.start);
                    url.append(b);
                    b.base(at.end..span.end);
                }
                (TarballEdit::Insert { at, comma }, true) => {
                    b.base(span.start..*at);
                    url.insert(b, *comma);
                    b.base(*at..span.end);
                }
                _ => b.base(span.clone()),
            }
        }
        if scripts {
            let out = b.own();
            if last.is_some() {
                out.push(b',');
            }
            out.extend_from_slice(b"\"hasInstallScript\":true");
        }
        match (members.last(), last) {
            (Some((Some(span), ..)), Some(j)) if !scripts && j + 1 == members.len() => {
                b.base(span.end..range.end);
            }
            _ => b.own().push(b'}'),
        }
        true
    }
}

/// The end of a tarball URL's JSON string, after the version.
const TGZ: &[u8] = b".tgz\"";

/// What a rendering repeats in every tarball URL, kept once ([`RopeBuilder::with_stash`]):
/// the URL's JSON string with an empty version; nothing if it does not end in [`TGZ`].
fn url_stash(public_base: &str, name: &PackageName) -> Vec<u8> {
    let json = serde_json::to_vec(&tarball_url(public_base, name, "")).unwrap_or_default();
    if json.ends_with(TGZ) {
        json
    } else {
        Vec::new()
    }
}

/// One version's tarball URL as a rendering writes it: the stash's start, the version's
/// key in the upstream body and the stash's end when the key was taken from there
/// ([`Packument::rope_key`]), else the URL in full.
struct TarballUrl<'a> {
    name: &'a PackageName,
    version: &'a str,
    public_base: &'a str,
    /// Where the version's key, which is the version as is, lies in the body.
    key: Option<Range<usize>>,
    /// The length of the builder's stash, [`url_stash`].
    stash: usize,
}

impl TarballUrl<'_> {
    /// Appends the URL as a JSON string.
    fn append(&self, b: &mut RopeBuilder) {
        match (&self.key, self.stash.checked_sub(TGZ.len())) {
            (Some(key), Some(cut)) if cut > 0 => {
                b.again(0..cut);
                b.base(key.clone());
                b.again(cut..self.stash);
            }
            _ => write_json(
                b.own(),
                &tarball_url(self.public_base, self.name, self.version),
            ),
        }
    }

    /// Appends `"tarball":` and the URL, after a comma if `comma`.
    fn insert(&self, b: &mut RopeBuilder, comma: bool) {
        let out = b.own();
        if comma {
            out.push(b',');
        }
        write_json(out, "tarball");
        out.push(b':');
        self.append(b);
    }
}

/// Where a member of an object in `body` lies, from its key's opening quote to the end of
/// its value; `None` if the key is not borrowed from `body` (it had escapes, and was
/// unescaped into a copy).
fn member_span(body: &[u8], key: &str, value: &RawValue) -> Option<Range<usize>> {
    let at = (key.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    if at.checked_add(key.len())? > body.len() {
        return None;
    }
    let start = at.checked_sub(1)?;
    let end = range_in(body, value).end;
    (start < end && body.get(start) == Some(&b'"')).then_some(start..end)
}

/// Whether a rendering lists a version (kept, or yanked as deprecated).
fn listed<'a>(cx: &'a RenderCx<'_>) -> impl Fn(&str) -> bool + 'a {
    |v| cx.kept.contains(v) || matches!((cx.show)(v), Disposition::Yank(_))
}

/// How a rendering points a version's tarball URL at depfw inside the manifest's upstream
/// bytes (what [`rewrite_tarball`] does to its tree).
enum TarballEdit {
    /// Not an object, or no `dist` object: as upstream wrote it.
    Verbatim,
    /// The range of `dist.tarball`'s value.
    Replace(Range<usize>),
    /// `dist` has no `tarball`: one is added before its closing brace at `at`, after a
    /// comma if `dist` has members.
    Insert { at: usize, comma: bool },
    /// Duplicate `dist` or `dist.tarball` keys: parsed and written again (the last of
    /// each, as when the packument was kept as a tree).
    Tree,
}

/// Calls `each` with every member of the JSON object `json` in order, duplicates included,
/// with its key unescaped and its value as in the input; `false` if `json` is not an object.
fn scan_object<'a>(json: &'a [u8], each: impl FnMut(Cow<'a, str>, &'a RawValue)) -> bool {
    /// A key, borrowed unless it has escapes.
    struct Key<'de>(Cow<'de, str>);
    impl<'de> serde::Deserialize<'de> for Key<'de> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_str(Key(Cow::Borrowed("")))
        }
    }
    impl<'de> Visitor<'de> for Key<'de> {
        type Value = Key<'de>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a key")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
            Ok(Key(Cow::Borrowed(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
            Ok(Key(Cow::Owned(v.to_owned())))
        }
    }
    struct Scan<F>(F);
    impl<'de, F: FnMut(Cow<'de, str>, &'de RawValue)> Visitor<'de> for Scan<F> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
            while let Some(Key(key)) = map.next_key()? {
                let value: &'de RawValue = map.next_value()?;
                (self.0)(key, value);
            }
            Ok(())
        }
    }
    impl<'de, F: FnMut(Cow<'de, str>, &'de RawValue)> DeserializeSeed<'de> for Scan<F> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    Scan(each).deserialize(&mut de).is_ok() && de.end().is_ok()
}

/// Points a version's `dist.tarball` at depfw.
fn rewrite_tarball(vdoc: &mut Value, name: &PackageName, version: &str, public_base: &str) {
    if let Some(Value::Object(dist)) = vdoc.get_mut("dist") {
        dist.insert(
            "tarball".to_owned(),
            Value::String(tarball_url(public_base, name, version)),
        );
    }
}

fn newest<'a>(list: Vec<(&'a Version, &'a str)>) -> Option<&'a str> {
    list.into_iter()
        .max_by(|a, b| a.0.partial_cmp(b.0).unwrap_or(std::cmp::Ordering::Equal))
        .map(|(_, t)| t)
}

/// One version's manifest in the abbreviated form: its install fields only.
fn abbreviate(vdoc: Value) -> Value {
    let mut slim = Map::new();
    for field in CORGI_VERSION_FIELDS {
        if let Some(x) = vdoc.get(*field) {
            slim.insert((*field).to_owned(), x.clone());
        }
    }
    if has_install_scripts(&vdoc) {
        slim.insert("hasInstallScript".to_owned(), Value::Bool(true));
    }
    Value::Object(slim)
}

/// The media type of full packuments and of everything else the registry answers.
pub(crate) const JSON: &str = "application/json";

/// npm's registry protocol in front of one upstream registry.
#[derive(Debug, Clone)]
pub(crate) struct Npm {
    /// `upstream.npm.registry`: every tarball URL must be on its origin.
    url: Url,
    /// The same without a trailing `/`, the base of packument URLs.
    registry: String,
    /// `[[upstream.npm.scopes]]`: scope (`@corp`), registry URL, and its packument base.
    scopes: Vec<(String, Url, String)>,
}

impl Npm {
    pub(crate) fn new(registry: &Url) -> Npm {
        Npm {
            url: registry.clone(),
            registry: registry.as_str().trim_end_matches('/').to_owned(),
            scopes: Vec::new(),
        }
    }

    /// With each scope's packages asked of its own registry, and of it alone.
    pub(crate) fn with_scopes(mut self, scopes: &[crate::config::NpmScope]) -> Npm {
        self.scopes = scopes
            .iter()
            .map(|s| {
                let base = s.registry.as_str().trim_end_matches('/').to_owned();
                (s.scope.clone(), s.registry.clone(), base)
            })
            .collect();
        self
    }

    /// `name`'s entry in `scopes`, if its scope has its own registry.
    fn scope(&self, name: &PackageName) -> Option<&(String, Url, String)> {
        let (scope, _) = name.key().split_once('/')?;
        self.scopes.iter().find(|(s, _, _)| s == scope)
    }

    /// The registry's signing keys, passed through for `npm audit signatures`.
    pub(crate) fn keys_url(&self) -> String {
        format!("{}/-/npm/v1/keys", self.registry)
    }
}

impl Protocol for Npm {
    const ECOSYSTEM: Ecosystem = Ecosystem::Npm;
    const MOUNT: &'static str = "npm";
    type Doc = Packument;
    type Quirk = NpmQuirk;
    /// Whether the client asked for the abbreviated ("corgi") packument.
    type Form = bool;
    // Always the full document: the checks need `time`, `license` and `scripts`.
    const UPSTREAM_ACCEPT: &'static str = JSON;
    const URLS: bool = true;
    /// npm-registry-fetch logs this header of any registry response not answered from
    /// its local cache (`npm notice <text>`), right before an `ETARGET` for a version
    /// depfw hid. pnpm, yarn and bun ignore it (yarn reads it only on a failed publish).
    const NOTICE_HEADER: Option<&'static str> = Some("npm-notice");

    fn from_config(upstream: &UpstreamConfig) -> Npm {
        Npm::new(&upstream.npm).with_scopes(&upstream.npm_scopes)
    }

    fn client_url(&self, public_base: &str) -> String {
        format!("{public_base}/npm/")
    }

    fn route(&self, path: &str) -> Result<NpmPath, ProtocolError> {
        parse_path(path)
    }

    fn artifact_origins(&self, name: &PackageName) -> Vec<&Url> {
        vec![self.scope(name).map_or(&self.url, |(_, url, _)| url)]
    }

    /// Scoped names keep their `/` encoded, as the registry expects. A scope with its own
    /// registry is asked there only: no fallback to the public registry.
    fn metadata_url(&self, name: &PackageName) -> Result<Url, ProtocolError> {
        let base = self.scope(name).map_or(&self.registry, |(_, _, base)| base);
        let url = format!("{base}/{}", name.as_str().replace('/', "%2f"));
        Url::parse(&url).map_err(|e| ProtocolError::BadUpstream(format!("{url}: {e}")))
    }

    fn parse(&self, name: &PackageName, body: &Bytes) -> Result<Packument, ProtocolError> {
        parse_packument_bytes(name, body.clone())
    }

    fn footprint(&self, doc: &Packument) -> usize {
        doc.footprint()
    }

    fn versions<'d>(&self, doc: &'d Packument) -> &'d [VersionRecord] {
        &doc.records
    }

    fn versions_mut<'d>(&self, doc: &'d mut Packument) -> &'d mut [VersionRecord] {
        &mut doc.records
    }

    fn record(&self, name: &PackageName, doc: &Packument, version: &str) -> Option<VersionRecord> {
        doc.record(name, version)
    }

    fn form(&self, accept: Option<&str>, _query: Option<&str>) -> bool {
        wants_corgi(accept)
    }

    fn render(
        &self,
        name: &PackageName,
        doc: &Packument,
        corgi: &bool,
        cx: &RenderCx<'_>,
    ) -> Result<Document, ProtocolError> {
        Ok(Document {
            content_type: if *corgi { CORGI } else { JSON },
            body: doc.render(name, cx, *corgi),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npm(n: &str) -> PackageName {
        PackageName::parse(Ecosystem::Npm, n).unwrap()
    }

    #[test]
    fn a_scope_with_its_own_registry_is_fetched_there_and_its_tarballs_only_from_there() {
        let config = crate::config::Config::from_toml(
            "[[upstream.npm.scopes]]\nscope = \"@corp\"\nregistry = \"https://npm.corp/r/\"\n",
            "test",
        )
        .unwrap();
        let npm_ = Npm::from_config(&config.upstream);
        let corp = npm("@corp/ui");
        assert_eq!(
            npm_.metadata_url(&corp).unwrap().as_str(),
            "https://npm.corp/r/@corp%2fui"
        );
        assert_eq!(
            npm_.artifact_origins(&corp)[0].as_str(),
            "https://npm.corp/r/"
        );
        let public = npm("@corpx/ui");
        assert_eq!(
            npm_.metadata_url(&public).unwrap().as_str(),
            "https://registry.npmjs.org/@corpx%2fui"
        );
        assert_eq!(
            npm_.artifact_origins(&public)[0].as_str(),
            "https://registry.npmjs.org/"
        );
    }

    #[test]
    fn scoped_names_in_every_encoding() {
        for raw in ["/@types%2fnode", "/@types%2Fnode", "/@types/node"] {
            assert_eq!(
                parse_path(raw).unwrap(),
                Route::Metadata(npm("@types/node"))
            );
        }
        for raw in [
            "/@isaacs/string-locale-compare/-/string-locale-compare-1.1.0.tgz",
            "/@isaacs%2fstring-locale-compare/-/string-locale-compare-1.1.0.tgz",
        ] {
            let Route::Artifact(t) = parse_path(raw).unwrap() else {
                panic!("{raw} is a tarball")
            };
            assert_eq!(t.name.as_str(), "@isaacs/string-locale-compare");
            assert_eq!(t.version_text, "1.1.0");
        }
        assert_eq!(parse_path("/-/ping").unwrap(), Route::Quirk(NpmQuirk::Ping));
        assert_eq!(
            parse_path("/-/npm/v1/security/advisories/bulk").unwrap(),
            Route::Quirk(NpmQuirk::Audit)
        );
    }

    #[test]
    fn hostile_paths_are_refused() {
        let long = format!("/{}", "a".repeat(300));
        let long_tag = format!("/is-odd/{}", "a".repeat(MAX_TAG_LEN + 1));
        for raw in [
            "/..",
            "/%2e%2e",
            "/is-odd/%2e%2e/x",
            "/a%2fb",
            "/is-odd/-/..%2f..%2fetc-1.0.0.tgz",
            "/is%00odd",
            "/is-odd%0a",
            long.as_str(),
            "/is-odd/-/other-1.0.0.tgz",
            "/is-odd/-/is-odd-notaversion.tgz",
            "/is-odd/extra/more",
            "/is-odd/%5E3",
            "/is-odd/la%20test",
            "/is-odd/latest%0a",
            "/is-odd/..",
            long_tag.as_str(),
            "/%ff",
        ] {
            assert!(parse_path(raw).is_err(), "{raw} should be refused");
        }
    }

    #[test]
    fn version_paths_name_a_version_or_a_dist_tag() {
        let exact = |v: &str| VersionSpec::Exact(v.to_owned());
        let tag = |t: &str| VersionSpec::Tag(t.to_owned());
        let cases = [
            ("/is-odd/3.0.1", "is-odd", exact("3.0.1")),
            ("/is-odd/latest", "is-odd", tag("latest")),
            ("/is-odd/3.0.0-rc.1", "is-odd", exact("3.0.0-rc.1")),
            ("/is-odd/v3-lts", "is-odd", tag("v3-lts")),
            ("/@types%2fnode/latest", "@types/node", tag("latest")),
            ("/@types%2Fnode/20.1.0", "@types/node", exact("20.1.0")),
            ("/@types/node/next", "@types/node", tag("next")),
        ];
        for (raw, name, spec) in cases {
            assert_eq!(
                parse_path(raw).unwrap(),
                Route::Quirk(NpmQuirk::Version(npm(name), spec)),
                "{raw}"
            );
        }
        // Two segments after a scope are still the scoped packument, not a version.
        assert_eq!(
            parse_path("/@types/node").unwrap(),
            Route::Metadata(npm("@types/node"))
        );
    }

    const PACKUMENT: &str = r#"{
      "name": "demo", "dist-tags": {"latest": "2.0.0", "next": "3.0.0-rc.1", "old": "1.0.0"},
      "license": {"type": "ISC"},
      "time": {"created": "2020-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00Z",
               "1.0.0": "2020-01-01T00:00:00.000Z", "2.0.0": "2024-01-01T00:00:00+00:00",
               "3.0.0-rc.1": "2024-02-01T00:00:00Z"},
      "versions": {
        "1.0.0": {"name": "demo", "version": "1.0.0", "licenses": [{"type": "MIT"}, "Apache-2.0"],
                  "dist": {"shasum": "7535345b896734d5f80c4d06c50955527a14f12b",
                           "tarball": "https://up/demo/-/demo-1.0.0.tgz"}},
        "2.0.0": {"name": "demo", "version": "2.0.0", "license": "MIT",
                  "scripts": {"postinstall": "node x.js", "test": "t"}, "deprecated": "use 3",
                  "dist": {"integrity": "sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng==",
                           "tarball": "https://up/demo/-/demo-2.0.0.tgz"}},
        "3.0.0-rc.1": {"name": "demo", "version": "3.0.0-rc.1", "dist": {"tarball": "https://up/x.tgz"}}
      }}"#;

    #[test]
    fn packument_records_carry_what_checks_need() {
        let p = parse_packument(&npm("demo"), PACKUMENT.as_bytes()).unwrap();
        // The records the policy reads, without the tarball; a download's, with it.
        assert!(p.records.iter().all(|r| r.artifacts.is_empty()));
        let r = |v: &str| {
            let record = p.record(&npm("demo"), v).unwrap();
            let listed = p.records.iter().find(|r| r.version_text == v).unwrap();
            assert_eq!(record.metadata, listed.metadata);
            record
        };
        assert_eq!(p.record(&npm("demo"), "9.9.9"), None);
        let v1 = r("1.0.0");
        assert_eq!(
            v1.artifacts[0].upstream_url,
            "https://up/demo/-/demo-1.0.0.tgz"
        );
        assert_eq!(v1.metadata.license.as_deref(), Some("MIT OR Apache-2.0"));
        assert_eq!(v1.metadata.has_install_scripts, Some(false));
        assert!(matches!(v1.artifacts[0].digest, Some(Digest::Sha1(_))));
        let v2 = r("2.0.0");
        assert_eq!(v2.metadata.license.as_deref(), Some("MIT"));
        assert_eq!(v2.metadata.has_install_scripts, Some(true));
        assert_eq!(v2.metadata.deprecated.as_deref(), Some("use 3"));
        assert_eq!(
            v2.metadata.published.unwrap().to_rfc3339(),
            "2024-01-01T00:00:00+00:00"
        );
        assert_eq!(
            v2.metadata.package_created.unwrap().to_rfc3339(),
            "2020-01-01T00:00:00+00:00"
        );
        assert!(matches!(&v2.artifacts[0].digest, Some(Digest::Sha512(b)) if b.len() == 64));
        assert_eq!(v2.artifacts[0].filename, "demo-2.0.0.tgz");
        let rc = r("3.0.0-rc.1");
        assert_eq!(
            rc.metadata.license.as_deref(),
            Some("ISC"),
            "falls back to the package license"
        );
        assert_eq!(rc.artifacts[0].digest, None);
        // A packument is the whole manifest: no license anywhere is "none declared" (""),
        // which the license check reports, unlike an unknown one (None).
        let bare =
            r#"{"name": "bare", "versions": {"1.0.0": {"dist": {"tarball": "https://up/b.tgz"}}}}"#;
        let p = parse_packument(&npm("bare"), bare.as_bytes()).unwrap();
        assert_eq!(p.records[0].metadata.license.as_deref(), Some(""));
    }

    #[test]
    fn render_removes_versions_and_repoints_tags() {
        let name = npm("demo");
        let p = parse_packument(&name, PACKUMENT.as_bytes()).unwrap();
        let kept: Kept = ["1.0.0".to_owned(), "3.0.0-rc.1".to_owned()].into();
        let out: Value =
            serde_json::from_slice(&render(&p, &name, &kept, "http://d:1/", false)).unwrap();
        assert!(out["versions"].get("2.0.0").is_none());
        assert!(out["time"].get("2.0.0").is_none());
        assert!(out["time"].get("created").is_some());
        assert_eq!(
            out["dist-tags"]["latest"], "1.0.0",
            "newest remaining release"
        );
        assert_eq!(out["dist-tags"]["next"], "3.0.0-rc.1");
        assert_eq!(out["dist-tags"]["old"], "1.0.0");
        assert_eq!(
            out["versions"]["1.0.0"]["dist"]["tarball"],
            "http://d:1/npm/demo/-/demo-1.0.0.tgz"
        );

        let only_old: Kept = ["1.0.0".to_owned()].into();
        let out: Value =
            serde_json::from_slice(&render(&p, &name, &only_old, "http://d:1", false)).unwrap();
        assert!(
            out["dist-tags"].get("next").is_none(),
            "tag of a removed version dropped"
        );
    }

    /// Renders with `kept` served and every other version removed (`refused-versions =
    /// "remove"`).
    fn render_rope(
        p: &Packument,
        name: &PackageName,
        kept: &Kept,
        base: &str,
        corgi: bool,
    ) -> Rope {
        let show = |v: &str| match kept.contains(v) {
            true => Disposition::Keep,
            false => Disposition::Remove,
        };
        let cx = RenderCx {
            public_base: base,
            kept,
            show: &show,
        };
        p.render(name, &cx, corgi)
    }

    fn render(p: &Packument, name: &PackageName, kept: &Kept, base: &str, corgi: bool) -> Bytes {
        render_rope(p, name, kept, base, corgi).to_bytes()
    }

    #[test]
    fn yanked_versions_are_listed_deprecated_with_the_reason_but_never_tagged() {
        let name = npm("demo");
        let p = parse_packument(&name, PACKUMENT.as_bytes()).unwrap();
        let kept: Kept = ["1.0.0".to_owned()].into();
        let show = |v: &str| match v {
            "1.0.0" => Disposition::Keep,
            "2.0.0" => Disposition::Yank("depfw: demo@2.0.0 is denied by policy: x".to_owned()),
            _ => Disposition::Remove,
        };
        let cx = RenderCx {
            public_base: "http://d:1",
            kept: &kept,
            show: &show,
        };
        for corgi in [false, true] {
            let out: Value =
                serde_json::from_slice(&p.render(&name, &cx, corgi).to_bytes()).unwrap();
            let yanked = &out["versions"]["2.0.0"];
            assert_eq!(
                yanked["deprecated"], "depfw: demo@2.0.0 is denied by policy: x",
                "upstream's own deprecation replaced by the reason (corgi: {corgi})"
            );
            assert_eq!(
                yanked["dist"]["tarball"],
                "http://d:1/npm/demo/-/demo-2.0.0.tgz"
            );
            assert!(out["versions"]["1.0.0"].get("deprecated").is_none());
            assert!(out["versions"].get("3.0.0-rc.1").is_none(), "removed");
            assert_eq!(out["dist-tags"]["latest"], "1.0.0", "not the yanked 2.0.0");
            assert!(out["dist-tags"].get("next").is_none());
            if !corgi {
                assert!(
                    out["time"].get("2.0.0").is_some(),
                    "a listed version has its time"
                );
                assert!(out["time"].get("3.0.0-rc.1").is_none());
            }
        }
    }

    #[test]
    fn one_version_is_rendered_with_its_tarball_rewritten() {
        let name = npm("demo");
        let p = parse_packument(&name, PACKUMENT.as_bytes()).unwrap();
        let out: Value =
            serde_json::from_slice(&p.render_version(&name, "2.0.0", "http://d:1/").unwrap())
                .unwrap();
        assert_eq!(out["version"], "2.0.0");
        assert_eq!(out["deprecated"], "use 3");
        assert_eq!(
            out["dist"]["tarball"],
            "http://d:1/npm/demo/-/demo-2.0.0.tgz"
        );
        assert!(out["dist"]["integrity"].is_string());
        assert!(p.render_version(&name, "9.9.9", "http://d:1").is_none());

        let kept: Kept = ["1.0.0".to_owned()].into();
        let tags = p.dist_tags(&kept).unwrap();
        assert_eq!(tags["latest"], "1.0.0");
        assert!(tags.get("next").is_none());
        assert_eq!(p.upstream_tag("next"), Some("3.0.0-rc.1"));
        assert_eq!(p.upstream_tag("beta"), None);
    }

    #[test]
    fn corgi_has_install_fields_only() {
        let name = npm("demo");
        let p = parse_packument(&name, PACKUMENT.as_bytes()).unwrap();
        let kept: Kept = p.records.iter().map(|r| r.version_text.clone()).collect();
        let out: Value =
            serde_json::from_slice(&render(&p, &name, &kept, "http://d:1", true)).unwrap();
        assert!(out.get("time").is_none());
        assert_eq!(out["modified"], "2024-01-01T00:00:00Z");
        let v2 = &out["versions"]["2.0.0"];
        assert!(v2.get("scripts").is_none() && v2.get("license").is_none());
        assert_eq!(v2["hasInstallScript"], true);
        assert_eq!(v2["deprecated"], "use 3");
        assert!(out["versions"]["1.0.0"].get("hasInstallScript").is_none());
    }

    /// How `render` worked when a packument was kept as a JSON tree: edit a clone of the
    /// whole document, then serialise it.
    fn tree_render(p: &Packument, name: &PackageName, kept: &Kept, corgi: bool) -> Vec<u8> {
        let base = "http://d:1";
        let Value::Object(mut doc) = serde_json::from_slice(&p.body).unwrap() else {
            panic!("not an object")
        };
        if let Some(Value::Object(versions)) = doc.get_mut("versions") {
            versions.retain(|v, _| kept.contains(v));
            for (v, vdoc) in versions.iter_mut() {
                rewrite_tarball(vdoc, name, v, base);
            }
        }
        if let Some(Value::Object(time)) = doc.get_mut("time") {
            let known: std::collections::HashSet<&str> =
                p.records.iter().map(|r| r.version_text.as_str()).collect();
            time.retain(|k, _| !known.contains(k.as_str()) || kept.contains(k));
        }
        if let Some(tags) = p.dist_tags(kept) {
            doc.insert("dist-tags".to_owned(), Value::Object(tags));
        }
        if !corgi {
            return serde_json::to_vec(&Value::Object(doc)).unwrap();
        }
        let mut out = Map::new();
        for key in ["name", "dist-tags"] {
            if let Some(v) = doc.get(key) {
                out.insert(key.to_owned(), v.clone());
            }
        }
        if let Some(modified) = doc.get("time").and_then(|t| t.get("modified")) {
            out.insert("modified".to_owned(), modified.clone());
        }
        let mut versions = Map::new();
        if let Some(Value::Object(full)) = doc.get("versions") {
            for (v, vdoc) in full {
                versions.insert(v.clone(), abbreviate(vdoc.clone()));
            }
        }
        out.insert("versions".to_owned(), Value::Object(versions));
        serde_json::to_vec(&Value::Object(out)).unwrap()
    }

    #[test]
    fn renderings_from_the_body_match_the_tree_renderings() {
        let name = npm("demo");
        let odd = r#"{"versions": {"1.0.0": {"dist": {"tarball": "https://up/a.tgz"}, "x": "\u00e9\/"},
            "1.0.0": {"dist": {"tarball": "https://up/b.tgz"}, "z": 1.50},
            "2.0.0": "not an object"}, "name": "demo", "name": "demo2", "readme": "\ud83d\ude00",
            "time": {"modified": "2024-01-01T00:00:00Z", "1.0.0": "2020-01-01T00:00:00Z"},
            "dist-tags": {"latest": "2.0.0"}, "extra": [1, {"b": null, "a": true}]}"#;
        let bodies = [
            PACKUMENT.to_owned(),
            many_versions(50),
            odd.to_owned(),
            r#"{"name": "demo", "versions": null, "dist-tags": 3, "time": []}"#.to_owned(),
            r#"{"time": {"unpublished": {}}}"#.to_owned(),
            // Manifests whose tarball URL is not a plain `dist.tarball` string: no `dist`,
            // `dist` not an object, empty or without `tarball`, duplicate keys, an escaped
            // key, a non-string URL; upstream pretty-printed.
            r#"{
              "name" : "demo",
              "versions" : {
                "1.0.0" : { "version" : "1.0.0" },
                "1.0.1" : { "dist" : "none" },
                "1.0.2" : { "dist" : { } },
                "1.0.3" : { "dist" : { "shasum" : "ab" } , "z" : [ 1 , 2 ] },
                "1.0.4" : { "dist" : { "tarball" : "https://up/1" }, "dist" : { "tarball" : "https://up/2" } },
                "1.0.5" : { "dist" : { "tarball" : "https://up/1", "tarball" : "https://up/2" } },
                "1.0.6" : { "dis\u0074" : { "tarb\u0061ll" : "https://up/6" } },
                "1.0.7" : { "dist" : { "tarball" : 7, "integrity" : "sha512-x" } }
              },
              "time" : { "1.0.0" : "2020-01-01T00:00:00Z", "modified" : "2024-01-01T00:00:00Z",
                         "1.0.0" : "2021-01-01T00:00:00Z", "other" : 1 },
              "dist-tags" : { "latest" : "1.0.7" }
            }"#
            .to_owned(),
            // Install fields with escapes, duplicated, in and out of runs; install scripts
            // declared either way.
            r#"{"name": "demo", "versions": {
                "1.0.0": {"name": "demo", "scripts": {"postinstall": "x"}, "dep\u0065ndencies": {"a": "1"}, "version": "1.0.0"},
                "1.0.1": {"hasInstallScript": true, "bin": {"x": "y"}, "readme": "r", "bin": {"z": "w"}},
                "1.0.2": {},
                "1.0.3": { "description": "d", "engines": {"node": ">=1"} , "os": ["linux"] },
                "1.0.4": {"scr\u0069pts": {"install": "y"}, "dist": {"integrity": "sha512-x", "tarball": "https://up/4"}, "x": 1}
            }}"#
            .to_owned(),
        ];
        for body in &bodies {
            let p = parse_packument(&name, body.as_bytes()).unwrap();
            let all: Kept = p.records.iter().map(|r| r.version_text.clone()).collect();
            let some: Kept = p
                .records
                .iter()
                .step_by(2)
                .map(|r| r.version_text.clone())
                .collect();
            for kept in [&all, &some, &Kept::new()] {
                // Both forms keep upstream's own bytes (its key order, spacing and
                // escapes), so the same document, not the same bytes.
                for corgi in [true, false] {
                    let new = render(&p, &name, kept, "http://d:1", corgi);
                    let old = tree_render(&p, &name, kept, corgi);
                    assert_eq!(
                        serde_json::from_slice::<Value>(&new).unwrap(),
                        serde_json::from_slice::<Value>(&old).unwrap(),
                        "{} (corgi: {corgi}), {} kept, of {body}",
                        String::from_utf8_lossy(&new),
                        kept.len()
                    );
                }
            }
            for r in &p.records {
                let mut vdoc = serde_json::from_slice::<Value>(&p.body).unwrap()["versions"]
                    [&r.version_text]
                    .clone();
                rewrite_tarball(&mut vdoc, &name, &r.version_text, "http://d:1");
                assert_eq!(
                    p.render_version(&name, &r.version_text, "http://d:1"),
                    Some(serde_json::to_vec(&vdoc).unwrap())
                );
            }
        }
    }

    #[test]
    fn a_packument_keeps_its_body_not_a_tree() {
        let name = npm("many");
        // Versions shaped like the registry's: dependencies, scripts, dist.
        let versions: Map<String, Value> = (0..500)
            .map(|i| {
                let deps: Map<String, Value> = (0..15)
                    .map(|d| (format!("dep-{d}"), Value::from(format!("^{d}.{i}.0"))))
                    .collect();
                let v = format!("1.0.{i}");
                let vdoc = serde_json::json!({"name": "many", "version": v,
                    "description": "a package with many versions", "license": "MIT",
                    "dependencies": deps, "scripts": {"test": "jest", "build": "tsc"},
                    "dist": {"tarball": format!("https://up/many/-/many-{v}.tgz"),
                             "shasum": "7535345b896734d5f80c4d06c50955527a14f12b"}});
                (v, vdoc)
            })
            .collect();
        let body =
            Bytes::from(serde_json::json!({"name": "many", "versions": versions}).to_string());
        let p = parse_packument_bytes(&name, body.clone()).unwrap();
        assert_eq!(p.body.as_ptr(), body.as_ptr(), "shared, not copied");
        let tree: Value = serde_json::from_slice(&body).unwrap();
        assert!(p.footprint() >= body.len() + p.records.heap_size());
        assert!(
            tree.heap_size() > body.len(),
            "a tree is larger than its JSON"
        );
        // Besides the body: records and offsets, a fraction of the tree they replace.
        assert!(
            p.footprint() - body.len() < tree.heap_size() / 2,
            "{} bytes held for a {}-byte body (its tree: {})",
            p.footprint(),
            body.len(),
            tree.heap_size()
        );
    }

    #[test]
    fn both_forms_are_mostly_ranges_of_the_upstream_body() {
        let name = npm("many");
        // Over 1 MiB rendered: smaller renderings are one buffer.
        let versions: Map<String, Value> = (0..6_000)
            .map(|i| {
                let v = format!("1.0.{i}");
                let vdoc = serde_json::json!({"name": "many", "version": v,
                    "description": "a package with many versions and a long description",
                    "dependencies": {"a": "^1.0.0", "b": "^2.0.0", "c": "^3.0.0"},
                    "dist": {"tarball": format!("https://up/many/-/many-{v}.tgz"),
                             "shasum": "7535345b896734d5f80c4d06c50955527a14f12b"}});
                (v, vdoc)
            })
            .collect();
        let body =
            Bytes::from(serde_json::json!({"name": "many", "versions": versions}).to_string());
        let p = parse_packument_bytes(&name, body.clone()).unwrap();
        let kept: Kept = p.records.iter().map(|r| r.version_text.clone()).collect();
        // The abbreviated form too: each version's key and install fields are upstream's
        // bytes, and so is the version in its tarball URL, the rest of which is written once
        // for all (the piece list counts as written).
        for (corgi, most) in [(false, 6), (true, 4)] {
            let rope = render_rope(&p, &name, &kept, "http://d:1", corgi);
            assert!(matches!(rope, Rope::Pieces(_)), "{rope:?}");
            let own = rope.weight() - body.len();
            assert!(
                own < rope.len() / most,
                "{own} bytes written besides the upstream body for a {}-byte rendering \
                 (corgi: {corgi})",
                rope.len()
            );
            let out: Value = serde_json::from_slice(&rope.to_bytes()).unwrap();
            assert_eq!(
                out["versions"]["1.0.7"]["dist"]["tarball"],
                "http://d:1/npm/many/-/many-1.0.7.tgz"
            );
        }
    }

    #[test]
    fn publish_times_are_read_like_a_tree_reads_them() {
        let body = r#"{"versions": {"1.0.0": {}, "1.0.1": {}, "1.0.2": {}},
            "time": {"1.0.0": "2020-01-01T00:00:00Z", "1.0.\u0031": "2022-01-01T00:00:00Z",
                     "1.0.2": 7, "1.0.0": "2021-01-01T00:00:00Z"}}"#;
        let p = parse_packument(&npm("demo"), body.as_bytes()).unwrap();
        let year = |i: usize| {
            p.records[i]
                .metadata
                .published
                .map(|t| t.format("%Y").to_string())
        };
        // The last of duplicate keys, an escaped key, a time that is not a string.
        assert_eq!(
            [year(0), year(1), year(2)],
            [Some("2021".to_owned()), Some("2022".to_owned()), None]
        );
        let created = p.records[0].metadata.package_created;
        assert_eq!(
            created.map(|t| t.format("%Y").to_string()).as_deref(),
            Some("2021")
        );
        let not_an_object = r#"{"versions": {"1.0.0": {}}, "time": ["1.0.0"]}"#;
        let p = parse_packument(&npm("demo"), not_an_object.as_bytes()).unwrap();
        assert_eq!(p.records[0].metadata.published, None);
    }

    #[test]
    fn bad_upstream_json_is_an_error() {
        assert!(parse_packument(&npm("demo"), b"<html>").is_err());
        assert!(parse_packument(&npm("demo"), b"[1]").is_err());
        assert!(parse_packument(&npm("demo"), br#"{"versions": 3}"#).is_err());
        let unpublished =
            parse_packument(&npm("demo"), br#"{"time": {"unpublished": {}}}"#).unwrap();
        assert!(unpublished.records.is_empty());
    }

    /// A packument with `n` versions `1.0.i` and a `time` entry for each.
    fn many_versions(n: usize) -> String {
        let versions: Map<String, Value> = (0..n)
            .map(|i| {
                let v = format!("1.0.{i}");
                let doc = serde_json::json!({"name": "many", "version": v,
                    "dist": {"tarball": format!("https://up/many-{v}.tgz")}});
                (v, doc)
            })
            .collect();
        let mut time: Map<String, Value> = (0..n)
            .map(|i| (format!("1.0.{i}"), Value::from("2020-01-01T00:00:00.000Z")))
            .collect();
        time.insert(
            "created".to_owned(),
            Value::from("2019-01-01T00:00:00.000Z"),
        );
        time.insert(
            "modified".to_owned(),
            Value::from("2021-01-01T00:00:00.000Z"),
        );
        serde_json::json!({"name": "many", "dist-tags": {"latest": format!("1.0.{}", n - 1)},
            "versions": versions, "time": time})
        .to_string()
    }

    /// `time` filtered the way `render` did before it used a set (a list lookup per entry).
    fn time_filtered_by_list(p: &Packument, kept: &Kept) -> Map<String, Value> {
        let mut time = p.member("time").unwrap().as_object().unwrap().clone();
        let known: Vec<&str> = p.records.iter().map(|r| r.version_text.as_str()).collect();
        time.retain(|k, _| !known.contains(&k.as_str()) || kept.contains(k));
        time
    }

    #[test]
    fn render_keeps_the_time_of_kept_versions_only_for_many_versions() {
        let name = npm("many");
        // Same output as the list-based filter, on a small packument.
        let small = parse_packument(&name, many_versions(5).as_bytes()).unwrap();
        let kept: Kept = ["1.0.1".to_owned(), "1.0.3".to_owned()].into();
        let out: Value =
            serde_json::from_slice(&render(&small, &name, &kept, "http://d:1", false)).unwrap();
        assert_eq!(
            out["time"].as_object().unwrap(),
            &time_filtered_by_list(&small, &kept)
        );
        assert_eq!(
            out["time"].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["1.0.1", "1.0.3", "created", "modified"]
        );

        // Many versions (as some real packuments have): every other one kept.
        let n = 20_000;
        let big = parse_packument(&name, many_versions(n).as_bytes()).unwrap();
        let kept: Kept = (0..n).step_by(2).map(|i| format!("1.0.{i}")).collect();
        let out: Value =
            serde_json::from_slice(&render(&big, &name, &kept, "http://d:1", false)).unwrap();
        let time = out["time"].as_object().unwrap();
        assert_eq!(
            time.len(),
            n / 2 + 2,
            "kept versions plus created and modified"
        );
        assert!(time.contains_key("1.0.0") && !time.contains_key("1.0.1"));
        assert_eq!(out["versions"].as_object().unwrap().len(), n / 2);
    }
}

/// The release signals on packuments of real-world shape (`integration/fixtures/npm/`,
/// written by `tests/fixtures/signals/make.py`): what the checks see is what this parser
/// reads from `_npmUser`, `maintainers`, `dist.attestations`, `scripts` and `time`.
#[cfg(test)]
mod signal_tests {
    use chrono::TimeZone;

    use super::*;
    use crate::diag::Finding;
    use crate::policy::internal::{InternalNamesCheck, InternalNamesConfig, NamePattern};
    use crate::policy::signals::{SignalsCheck, SignalsConfig};
    use crate::policy::{Check, PackageCtx, Verdict};

    fn npm(n: &str) -> PackageName {
        PackageName::parse(Ecosystem::Npm, n).unwrap()
    }

    /// Each version's `(version, [codes], verdict)` with the default signal settings.
    fn signals(name: &str) -> Vec<(String, Vec<String>, Verdict)> {
        let file = format!(
            "{}/integration/fixtures/npm/{}.json",
            env!("CARGO_MANIFEST_DIR"),
            name.replace('/', "__")
        );
        let body = std::fs::read(&file).unwrap();
        let name = PackageName::parse(Ecosystem::Npm, name).unwrap();
        let doc = parse_packument(&name, &body).unwrap();
        let check = SignalsCheck::new(SignalsConfig::default());
        let mut out: Vec<(String, Vec<String>, Verdict)> = doc
            .records
            .iter()
            .map(|r| {
                let mut findings: Vec<Finding> = Vec::new();
                check.evaluate(
                    &PackageCtx {
                        name: &name,
                        version: r.version.as_ref(),
                        metadata: Some(&r.metadata),
                        now: Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap(),
                    },
                    &mut findings,
                );
                let verdict = findings.iter().map(|f| f.verdict).max().unwrap_or_default();
                let codes = findings.iter().map(|f| f.code.to_string()).collect();
                (r.version_text.clone(), codes, verdict)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Only the versions with findings.
    fn flagged(name: &str) -> Vec<(String, Vec<String>, Verdict)> {
        signals(name)
            .into_iter()
            .filter(|(_, codes, _)| !codes.is_empty())
            .collect()
    }

    fn row(v: &str, codes: &[&str], verdict: Verdict) -> (String, Vec<String>, Verdict) {
        (
            v.to_owned(),
            codes.iter().map(|c| (*c).to_owned()).collect(),
            verdict,
        )
    }

    #[test]
    fn nx_like_postinstall_without_provenance_in_a_patch_is_quarantined() {
        let both = ["install-script-added", "provenance-lost"];
        assert_eq!(
            flagged("nx-like"),
            [
                // 20.9.0 came minutes after 21.5.0, which is not part of its baseline.
                row("20.9.0", &both, Verdict::Quarantine),
                row("21.5.0", &both, Verdict::Quarantine),
            ]
        );
    }

    #[test]
    fn install_scripts_from_the_first_release_are_not_new() {
        assert_eq!(flagged("native-like"), []);
        assert_eq!(flagged("first-script"), []);
    }

    #[test]
    fn a_maintainer_swap_is_quarantined_a_maintainer_added_is_not() {
        assert_eq!(
            flagged("swap-like"),
            [row(
                "3.1.3",
                &["new-publisher", "maintainers-replaced"],
                Verdict::Quarantine
            )]
        );
        // carol joined the maintainers alongside alice and bob: a new publisher (warn),
        // no swap. bob publishing swap-like 3.1.2 for the first time was already a
        // maintainer: nothing.
        assert_eq!(
            flagged("added-like"),
            [row("2.1.0", &["new-publisher"], Verdict::Warn)]
        );
    }

    #[test]
    fn dropped_attestation_is_quarantined_never_having_one_is_fine() {
        assert_eq!(
            flagged("attest-like"),
            [row("1.13.6", &["provenance-lost"], Verdict::Quarantine)]
        );
        assert_eq!(flagged("never-attested"), []);
    }

    #[test]
    fn a_burst_marks_every_version_in_it_a_weekly_cadence_none() {
        let burst = flagged("burst-like");
        let versions: Vec<&str> = burst.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            versions,
            ["1.120.1", "1.120.2", "1.120.3", "1.120.4", "1.120.5", "1.120.6"]
        );
        assert!(burst
            .iter()
            .all(|r| r.1 == ["release-burst"] && r.2 == Verdict::Warn));
        assert_eq!(flagged("cadence-like"), []);
    }

    #[test]
    fn settings_change_the_verdicts_and_zero_turns_comparisons_off() {
        let name = npm("nx-like");
        let body = std::fs::read(format!(
            "{}/integration/fixtures/npm/nx-like.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let doc = parse_packument(&name, &body).unwrap();
        let record = doc
            .records
            .iter()
            .find(|r| r.version_text == "21.5.0")
            .unwrap();
        let run = |config: SignalsConfig| {
            let mut findings = Vec::new();
            SignalsCheck::new(config).evaluate(
                &PackageCtx {
                    name: &name,
                    version: record.version.as_ref(),
                    metadata: Some(&record.metadata),
                    now: Utc::now(),
                },
                &mut findings,
            );
            findings
        };
        let off = run(SignalsConfig {
            baseline_releases: 0,
            ..SignalsConfig::default()
        });
        assert!(off.is_empty(), "{off:?}");
        let warned = run(SignalsConfig {
            install_script_added: Verdict::Warn,
            provenance_lost: Verdict::Deny,
            ..SignalsConfig::default()
        });
        let verdicts: Vec<(String, Verdict)> = warned
            .iter()
            .map(|f| (f.code.to_string(), f.verdict))
            .collect();
        assert_eq!(
            verdicts,
            [
                ("install-script-added".to_owned(), Verdict::Warn),
                ("provenance-lost".to_owned(), Verdict::Deny)
            ]
        );
        assert!(
            warned[0].message.contains("21.4.1"),
            "the message names the baseline: {}",
            warned[0].message
        );
    }

    #[test]
    fn an_internal_scope_from_the_public_registry_is_denied() {
        let config = InternalNamesConfig {
            patterns: vec![NamePattern::new(Some(Ecosystem::Npm), "@mycorp/*")],
            ..InternalNamesConfig::default()
        };
        let check = InternalNamesCheck::new(config);
        let run = |n: &str| {
            let name = npm(n);
            let mut findings = Vec::new();
            check.evaluate(
                &PackageCtx {
                    name: &name,
                    version: None,
                    metadata: None,
                    now: Utc::now(),
                },
                &mut findings,
            );
            findings
        };
        let denied = run("@mycorp/i18n");
        assert_eq!(denied.len(), 1);
        assert_eq!(denied[0].verdict, Verdict::Deny);
        assert!(
            denied[0]
                .message
                .contains("must come from your organisation's private registry"),
            "{}",
            denied[0].message
        );
        assert!(run("@mycorpx/i18n").is_empty());
        assert!(run("i18n").is_empty());
        // The packument itself carries nothing the release signals hold.
        assert_eq!(flagged("@mycorp/i18n"), []);
    }
}
