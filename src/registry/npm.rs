//! The npm registry protocol, as `depfw serve` speaks it under `/npm/`.
//!
//! npm, pnpm, yarn and bun read packuments (`GET /{name}`) and download tarballs
//! (`GET /{name}/-/{basename}-{version}.tgz`); pnpm 12 (`minimumReleaseAge: 0`) and
//! `npm view` also read one version's manifest (`GET /{name}/{version-or-dist-tag}`).
//! This module maps those paths to packages, lists a packument's versions as
//! [`VersionRecord`]s and renders a packument with some versions removed, tarball URLs
//! pointing at depfw, and optionally in the abbreviated ("corgi") form, or one version
//! of it. It holds no policy: the proxy decides what is kept.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use percent_encoding::percent_decode_str;
use serde::ser::{Serialize, SerializeMap as _};
use serde_json::{Map, Value};

use url::Url;

use super::{
    ArtifactRecord, ArtifactRequest, Digest, Document, Kept, Protocol, ProtocolError, RenderCx,
    Route, VersionRecord,
};
use crate::config::UpstreamConfig;
use crate::package::{Ecosystem, PackageName, Version};
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

/// A full packument and the versions in it.
#[derive(Debug, Clone)]
pub(crate) struct Packument {
    doc: Map<String, Value>,
    pub records: Vec<VersionRecord>,
    /// The upstream body's length: what a rendering reserves, so a big one is written
    /// into one allocation rather than grown by doubling (which left up to twice its size
    /// allocated, kept by the render cache).
    size: usize,
}

fn parse_time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    v.and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// `license` as a string, the legacy `{type, url}` object, or `licenses: [..]`.
fn license_of(doc: &Value) -> Option<String> {
    doc.as_object().and_then(license_in)
}

/// [`license_of`] for an object already taken apart (the packument's top level, which is
/// not cloned into a `Value` for this: that copied the whole document, every version).
fn license_in(doc: &Map<String, Value>) -> Option<String> {
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

/// Parses a full packument as upstream sent it.
pub(crate) fn parse_packument(name: &PackageName, body: &[u8]) -> Result<Packument, ProtocolError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ProtocolError::BadUpstream(format!("packument of {name}: {e}")))?;
    let Value::Object(doc) = value else {
        return Err(ProtocolError::BadUpstream(format!(
            "packument of {name} is not a JSON object"
        )));
    };
    let empty = Map::new();
    let time = doc.get("time").and_then(Value::as_object).unwrap_or(&empty);
    let versions = match doc.get("versions") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(v)) => v,
        Some(_) => {
            return Err(ProtocolError::BadUpstream(format!(
                "packument of {name}: `versions` is not an object"
            )))
        }
    };
    let package_created = parse_time(time.get("created")).or_else(|| {
        versions
            .keys()
            .filter_map(|v| parse_time(time.get(v)))
            .min()
    });
    let top_license = license_in(&doc);
    let records = versions
        .iter()
        .map(|(v, vdoc)| {
            let dist = vdoc.get("dist");
            let upstream_url = dist
                .and_then(|d| d.get("tarball"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            VersionRecord {
                version_text: v.clone(),
                version: Version::parse(Ecosystem::Npm, v).ok(),
                metadata: VersionMetadata {
                    publish_time_expected: true,
                    published: parse_time(time.get(v)),
                    package_created,
                    // A packument is the whole manifest: no license there means none declared.
                    license: Some(
                        license_of(vdoc)
                            .or_else(|| top_license.clone())
                            .unwrap_or_default(),
                    ),
                    has_install_scripts: Some(has_install_scripts(vdoc)),
                    deprecated: vdoc
                        .get("deprecated")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    yanked: None,
                },
                artifacts: vec![ArtifactRecord {
                    filename: tarball_filename(name, v),
                    upstream_url,
                    digest: digest_of(dist),
                }],
            }
        })
        .collect();
    Ok(Packument {
        doc,
        records,
        size: body.len(),
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

impl Packument {
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
        let Some(Value::Object(upstream)) = self.doc.get("dist-tags") else {
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
        self.doc.get("dist-tags")?.get(tag)?.as_str()
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
        let mut vdoc = self.doc.get("versions")?.get(version)?.clone();
        rewrite_tarball(&mut vdoc, name, version, public_base);
        serde_json::to_vec(&vdoc).ok()
    }

    /// Renders the packument keeping only `kept` versions, with tarball URLs under
    /// `public_base`; `corgi` selects the abbreviated form. Written straight from the
    /// parsed document through borrowing views ([`FullView`], [`CorgiView`]): copying the
    /// document to edit it first doubled the memory a huge packument takes (issue #11:
    /// 190,000 versions, 62 MB). The bytes are those of the edited copy.
    pub(crate) fn render(
        &self,
        name: &PackageName,
        kept: &Kept,
        public_base: &str,
        corgi: bool,
    ) -> Vec<u8> {
        // A set, not a list: `time` has an entry per version, so a list lookup made
        // rendering quadratic in the number of versions.
        let known: HashSet<&str> = self
            .records
            .iter()
            .map(|r| r.version_text.as_str())
            .collect();
        let tags = self.dist_tags(kept);
        let view = FullView {
            doc: &self.doc,
            name,
            kept,
            public_base,
            known: &known,
            tags: tags.as_ref(),
        };
        // Reserved, not touched: pages never written are never resident, and the unused
        // tail is handed back below (a resize in place for an allocation this big).
        let mut out = Vec::with_capacity(self.size + self.size / 8 + 1024);
        let written = if corgi {
            serde_json::to_writer(&mut out, &CorgiView(view))
        } else {
            serde_json::to_writer(&mut out, &view)
        };
        if written.is_err() {
            return Vec::new();
        }
        out.shrink_to_fit();
        out
    }
}

/// A map serialized with `key` replaced by `value`, or inserted where serde_json's sorted
/// `Map` would put it: the bytes of the edited copy, without copying.
struct With<'a, V> {
    map: &'a Map<String, Value>,
    key: &'a str,
    value: V,
}

impl<V: Serialize> Serialize for With<'_, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        let mut placed = false;
        for (k, v) in self.map {
            if !placed && k.as_str() >= self.key {
                placed = true;
                m.serialize_entry(self.key, &self.value)?;
                if k == self.key {
                    continue;
                }
            }
            m.serialize_entry(k, v)?;
        }
        if !placed {
            m.serialize_entry(self.key, &self.value)?;
        }
        m.end()
    }
}

/// One version's manifest with `dist.tarball` under depfw (as [`rewrite_tarball`] edits it).
struct VersionView<'a> {
    vdoc: &'a Value,
    url: String,
}

impl Serialize for VersionView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.vdoc {
            Value::Object(vdoc) => match vdoc.get("dist") {
                Some(Value::Object(dist)) => With {
                    map: vdoc,
                    key: "dist",
                    value: With {
                        map: dist,
                        key: "tarball",
                        value: &self.url,
                    },
                }
                .serialize(s),
                _ => vdoc.serialize(s),
            },
            other => other.serialize(s),
        }
    }
}

/// The full packument as [`Packument::render`] serves it.
struct FullView<'a> {
    doc: &'a Map<String, Value>,
    name: &'a PackageName,
    kept: &'a Kept,
    public_base: &'a str,
    /// Every version upstream lists: `time` entries of removed ones are dropped.
    known: &'a HashSet<&'a str>,
    /// The filtered `dist-tags` (present exactly when upstream has the object).
    tags: Option<&'a Map<String, Value>>,
}

impl<'a> FullView<'a> {
    fn versions(&self) -> impl Iterator<Item = (&'a String, VersionView<'a>)> + '_ {
        let versions = match self.doc.get("versions") {
            Some(Value::Object(v)) => Some(v),
            _ => None,
        };
        versions
            .into_iter()
            .flatten()
            .filter(|(v, _)| self.kept.contains(*v))
            .map(|(v, vdoc)| {
                let url = tarball_url(self.public_base, self.name, v);
                (v, VersionView { vdoc, url })
            })
    }
}

/// Serializes the pairs of an iterator as a map.
struct Entries<I>(std::cell::RefCell<Option<I>>);

impl<I> Entries<I> {
    fn new(iter: I) -> Entries<I> {
        Entries(std::cell::RefCell::new(Some(iter)))
    }
}

impl<K: Serialize, V: Serialize, I: Iterator<Item = (K, V)>> Serialize for Entries<I> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.0.borrow_mut().take().into_iter().flatten() {
            m.serialize_entry(&k, &v)?;
        }
        m.end()
    }
}

impl Serialize for FullView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.doc {
            match (k.as_str(), v) {
                ("versions", Value::Object(_)) => {
                    m.serialize_entry(k, &Entries::new(self.versions()))?;
                }
                ("time", Value::Object(time)) => {
                    let kept = time.iter().filter(|(k, _)| {
                        !self.known.contains(k.as_str()) || self.kept.contains(*k)
                    });
                    m.serialize_entry(k, &Entries::new(kept))?;
                }
                ("dist-tags", _) if self.tags.is_some() => {
                    m.serialize_entry(k, &self.tags)?;
                }
                _ => m.serialize_entry(k, v)?,
            }
        }
        m.end()
    }
}

/// The abbreviated ("corgi") form: install fields only, no `time`, `license` or `scripts`.
struct CorgiView<'a>(FullView<'a>);

/// A field of an abbreviated version.
enum Slim<'a> {
    Field(&'a Value),
    Dist(With<'a, &'a String>),
    Flag,
}

impl Serialize for Slim<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Slim::Field(v) => v.serialize(s),
            Slim::Dist(d) => d.serialize(s),
            Slim::Flag => s.serialize_bool(true),
        }
    }
}

impl Serialize for CorgiView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let full = &self.0;
        let doc = full.doc;
        // serde_json's sorted order: dist-tags, modified, name, versions.
        let mut m = s.serialize_map(None)?;
        if let Some(tags) = doc.get("dist-tags") {
            match full.tags {
                Some(t) => m.serialize_entry("dist-tags", t)?,
                None => m.serialize_entry("dist-tags", tags)?,
            }
        }
        let modified_kept = !full.known.contains("modified") || full.kept.contains("modified");
        if let Some(modified) = doc.get("time").and_then(|t| t.get("modified")) {
            if modified_kept {
                m.serialize_entry("modified", modified)?;
            }
        }
        if let Some(name) = doc.get("name") {
            m.serialize_entry("name", name)?;
        }
        let versions = full.versions().map(|(v, view)| {
            let mut slim: Vec<(&str, Slim<'_>)> = Vec::new();
            if let Value::Object(vdoc) = view.vdoc {
                for field in CORGI_VERSION_FIELDS {
                    let Some(x) = vdoc.get(*field) else { continue };
                    match (*field, x) {
                        ("dist", Value::Object(dist)) => slim.push((
                            "dist",
                            Slim::Dist(With {
                                map: dist,
                                key: "tarball",
                                value: &view.url,
                            }),
                        )),
                        _ => slim.push((field, Slim::Field(x))),
                    }
                }
            }
            if has_install_scripts(view.vdoc) {
                slim.push(("hasInstallScript", Slim::Flag));
            }
            slim.sort_by(|a, b| a.0.cmp(b.0));
            // The URL lives in `view`: serialize now, while it is alive.
            let bytes = serde_json::value::to_raw_value(&Entries::new(slim.into_iter()));
            (v, bytes)
        });
        m.serialize_entry(
            "versions",
            &CorgiVersions(std::cell::RefCell::new(Some(versions))),
        )?;
        m.end()
    }
}

/// The abbreviated versions, each already rendered to raw JSON.
struct CorgiVersions<I>(std::cell::RefCell<Option<I>>);

impl<'a, I> Serialize for CorgiVersions<I>
where
    I: Iterator<
        Item = (
            &'a String,
            Result<Box<serde_json::value::RawValue>, serde_json::Error>,
        ),
    >,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.0.borrow_mut().take().into_iter().flatten() {
            let v = v.map_err(serde::ser::Error::custom)?;
            m.serialize_entry(k, &v)?;
        }
        m.end()
    }
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

/// The media type of full packuments and of everything else the registry answers.
pub(crate) const JSON: &str = "application/json";

/// npm's registry protocol in front of one upstream registry.
#[derive(Debug, Clone)]
pub(crate) struct Npm {
    /// `upstream.npm.registry`: every tarball URL must be on its origin.
    url: Url,
    /// The same without a trailing `/`, the base of packument URLs.
    registry: String,
}

impl Npm {
    pub(crate) fn new(registry: &Url) -> Npm {
        Npm {
            url: registry.clone(),
            registry: registry.as_str().trim_end_matches('/').to_owned(),
        }
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

    fn from_config(upstream: &UpstreamConfig) -> Npm {
        Npm::new(&upstream.npm)
    }

    fn client_url(&self, public_base: &str) -> String {
        format!("{public_base}/npm/")
    }

    fn route(&self, path: &str) -> Result<NpmPath, ProtocolError> {
        parse_path(path)
    }

    fn artifact_origins(&self) -> Vec<&Url> {
        vec![&self.url]
    }

    /// Scoped names keep their `/` encoded, as the registry expects.
    fn metadata_url(&self, name: &PackageName) -> Result<Url, ProtocolError> {
        let url = format!("{}/{}", self.registry, name.as_str().replace('/', "%2f"));
        Url::parse(&url).map_err(|e| ProtocolError::BadUpstream(format!("{url}: {e}")))
    }

    fn parse(&self, name: &PackageName, body: &[u8]) -> Result<Packument, ProtocolError> {
        parse_packument(name, body)
    }

    fn versions<'d>(&self, doc: &'d Packument) -> &'d [VersionRecord] {
        &doc.records
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
            body: doc.render(name, cx.kept, cx.public_base, *corgi),
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
        let r = |v: &str| p.records.iter().find(|r| r.version_text == v).unwrap();
        let v1 = r("1.0.0");
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
            serde_json::from_slice(&p.render(&name, &kept, "http://d:1/", false)).unwrap();
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
            serde_json::from_slice(&p.render(&name, &only_old, "http://d:1", false)).unwrap();
        assert!(
            out["dist-tags"].get("next").is_none(),
            "tag of a removed version dropped"
        );
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
            serde_json::from_slice(&p.render(&name, &kept, "http://d:1", true)).unwrap();
        assert!(out.get("time").is_none());
        assert_eq!(out["modified"], "2024-01-01T00:00:00Z");
        let v2 = &out["versions"]["2.0.0"];
        assert!(v2.get("scripts").is_none() && v2.get("license").is_none());
        assert_eq!(v2["hasInstallScript"], true);
        assert_eq!(v2["deprecated"], "use 3");
        assert!(out["versions"]["1.0.0"].get("hasInstallScript").is_none());
    }

    /// The render before it wrote through views: the document copied, edited and
    /// serialized. Kept as the reference the views must match byte for byte.
    fn render_by_copy(
        p: &Packument,
        name: &PackageName,
        kept: &Kept,
        base: &str,
        corgi: bool,
    ) -> Vec<u8> {
        let mut doc = p.doc.clone();
        if let Some(Value::Object(versions)) = doc.get_mut("versions") {
            versions.retain(|v, _| kept.contains(v));
            for (v, vdoc) in versions.iter_mut() {
                rewrite_tarball(vdoc, name, v, base);
            }
        }
        if let Some(Value::Object(time)) = doc.get_mut("time") {
            let known: HashSet<&str> = p.records.iter().map(|r| r.version_text.as_str()).collect();
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
                let mut slim = Map::new();
                for field in CORGI_VERSION_FIELDS {
                    if let Some(x) = vdoc.get(*field) {
                        slim.insert((*field).to_owned(), x.clone());
                    }
                }
                if has_install_scripts(vdoc) {
                    slim.insert("hasInstallScript".to_owned(), Value::Bool(true));
                }
                versions.insert(v.clone(), Value::Object(slim));
            }
        }
        out.insert("versions".to_owned(), Value::Object(versions));
        serde_json::to_vec(&Value::Object(out)).unwrap()
    }

    #[test]
    fn rendering_through_views_gives_the_bytes_of_the_edited_copy() {
        // Odd shapes too: a dist without a tarball, a dist that is not an object, a version
        // that is not an object, no dist-tags, a `modified` and `created` in `time`.
        let odd = r#"{"name": "odd", "versions": {
            "1.0.0": {"name": "odd", "dist": {"shasum": "00", "zzz": 1}, "scripts": {"install": "x"}},
            "1.0.1": {"name": "odd", "dist": "nope", "engines": {"node": ">=8"}},
            "1.0.2": 7,
            "1.0.3": {"a": 1, "dist": {"integrity": "sha512-x", "tarball": "https://up/o.tgz"}, "zzz": [1]}
          }, "time": {"created": "2020-01-01T00:00:00Z", "modified": "2021-01-01T00:00:00Z",
            "1.0.0": "2020-01-01T00:00:00Z", "1.0.2": "2020-02-01T00:00:00Z"}}"#;
        for (name, text) in [
            ("demo", PACKUMENT),
            ("odd", odd),
            ("many", &many_versions(50)),
        ] {
            let name = npm(name);
            let p = parse_packument(&name, text.as_bytes()).unwrap();
            let all: Vec<String> = p.records.iter().map(|r| r.version_text.clone()).collect();
            let kept_sets: [Kept; 3] = [
                all.iter().cloned().collect(),
                all.iter().step_by(2).cloned().collect(),
                Kept::new(),
            ];
            for kept in &kept_sets {
                for corgi in [false, true] {
                    let base = "http://d:1/";
                    assert_eq!(
                        String::from_utf8(p.render(&name, kept, base, corgi)).unwrap(),
                        String::from_utf8(render_by_copy(&p, &name, kept, base, corgi)).unwrap(),
                        "{name} corgi={corgi} kept={kept:?}"
                    );
                }
            }
        }
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
        let mut time = p.doc["time"].as_object().unwrap().clone();
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
            serde_json::from_slice(&small.render(&name, &kept, "http://d:1", false)).unwrap();
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
            serde_json::from_slice(&big.render(&name, &kept, "http://d:1", false)).unwrap();
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
