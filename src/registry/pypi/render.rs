//! Writing a filtered project page in the format the client negotiated.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde_json::{json, Map, Value};
use url::Url;

use super::page::{Hashes, PageFile, ProjectPage, ReleaseKey};
use super::parse::JSON_CONTENT_TYPE;
use super::paths::path_below;
use crate::registry::{Disposition, ProtocolError, VersionRecord};

const HTML_V1_CONTENT_TYPE: &str = "application/vnd.pypi.simple.v1+html";
const LEGACY_HTML_CONTENT_TYPE: &str = "text/html";

/// The response format of a project page (PEP 691 content negotiation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFormat {
    /// `application/vnd.pypi.simple.v1+json`
    Json,
    /// `application/vnd.pypi.simple.v1+html`
    HtmlV1,
    /// `text/html`: what old pip asks for, and the default.
    LegacyHtml,
}

impl PageFormat {
    /// The `Content-Type` to answer with.
    pub fn content_type(self) -> &'static str {
        match self {
            PageFormat::Json => JSON_CONTENT_TYPE,
            PageFormat::HtmlV1 => HTML_V1_CONTENT_TYPE,
            PageFormat::LegacyHtml => LEGACY_HTML_CONTENT_TYPE,
        }
    }

    fn from_media_type(media: &str) -> Option<Self> {
        match media {
            "application/vnd.pypi.simple.v1+json"
            | "application/vnd.pypi.simple.latest+json"
            | "json" => Some(PageFormat::Json),
            "application/vnd.pypi.simple.v1+html"
            | "application/vnd.pypi.simple.latest+html"
            | "html" => Some(PageFormat::HtmlV1),
            "text/html" => Some(PageFormat::LegacyHtml),
            _ => None,
        }
    }
}

/// Picks the response format from `?format=` (PEP 691 URL negotiation, wins when valid)
/// and the `Accept` header's q-values. Equal q-values prefer JSON; `*/*`, no header, or
/// nothing acceptable give `text/html`, as PyPI does.
pub fn negotiate(accept: Option<&str>, query: Option<&str>) -> PageFormat {
    if let Some(query) = query {
        let format = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "format")
            .and_then(|(_, v)| PageFormat::from_media_type(v.trim()));
        if let Some(format) = format {
            return format;
        }
    }
    let mut best: Option<(f32, u8, PageFormat)> = None;
    for item in accept.unwrap_or_default().split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .or_else(|| p.trim().strip_prefix("Q="))
            })
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let format = match media.as_str() {
            "*/*" | "text/*" => Some(PageFormat::LegacyHtml),
            m => PageFormat::from_media_type(m).filter(|_| m.contains('/')),
        };
        let Some(format) = format else { continue };
        if q.is_nan() || q <= 0.0 {
            continue;
        }
        let preference = match format {
            PageFormat::Json => 3,
            PageFormat::HtmlV1 => 2,
            PageFormat::LegacyHtml => 1,
        };
        if best.is_none_or(|(bq, bp, _)| q > bq || (q == bq && preference > bp)) {
            best = Some((q, preference, format));
        }
    }
    best.map_or(PageFormat::LegacyHtml, |(_, _, f)| f)
}

/// A rendered page, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPage {
    pub content_type: &'static str,
    pub body: String,
}

/// Where rewritten file URLs point.
#[derive(Debug, Clone)]
pub struct Rewrite<'a> {
    /// The proxy's public base (`http://127.0.0.1:8080`); files go to `<base>/pypi/files/…`.
    pub public_base: &'a Url,
    /// The upstream files base the `/files/` paths are relative to.
    pub files_base: &'a Url,
}

impl ProjectPage {
    /// Renders the page with only the releases `keep` accepts (called with each
    /// [`crate::registry::VersionRecord::version_text`]). A refused release loses all its
    /// files and its `versions` entry. Files whose release is unknown, or that live outside
    /// the files base, are left out: they could not be checked or proxied.
    pub fn render(
        &self,
        keep: &dyn Fn(&str) -> bool,
        format: PageFormat,
        rewrite: &Rewrite<'_>,
    ) -> Result<RenderedPage, ProtocolError> {
        let show = |v: &str| {
            if keep(v) {
                Disposition::Keep
            } else {
                Disposition::Remove
            }
        };
        self.render_with(&show, format, rewrite)
    }

    /// [`Self::render`] with a [`Disposition`] per release: a yanked release keeps its files
    /// and `versions` entry, and every file of it carries the reason as its PEP 592 `yanked`
    /// (replacing upstream's), which pip, uv and poetry show when a pin or lockfile selects it.
    pub(crate) fn render_with(
        &self,
        show: &dyn Fn(&str) -> Disposition,
        format: PageFormat,
        rewrite: &Rewrite<'_>,
    ) -> Result<RenderedPage, ProtocolError> {
        Ok(self.render_records(&self.records()?, show, format, rewrite))
    }

    /// [`Self::render_with`] over this page's [`Self::records`], computed once by a caller
    /// that also filtered them.
    pub(crate) fn render_records(
        &self,
        records: &[VersionRecord],
        show: &dyn Fn(&str) -> Disposition,
        format: PageFormat,
        rewrite: &Rewrite<'_>,
    ) -> RenderedPage {
        let decisions: HashMap<ReleaseKey, Disposition> = records
            .iter()
            .map(|r| (ReleaseKey::of(&r.version_text), show(&r.version_text)))
            .collect();
        let shown = |text: &str| {
            decisions
                .get(&ReleaseKey::of(text))
                .filter(|d| **d != Disposition::Remove)
        };
        let kept = |text: &str| shown(text).is_some();
        let public = format!(
            "{}/pypi/files/",
            rewrite.public_base.as_str().trim_end_matches('/')
        );
        let files: Vec<(Cow<'_, PageFile>, String)> = self
            .files
            .iter()
            .filter_map(|f| {
                let disposition = shown(f.version_text.as_deref()?)?;
                let url = format!("{public}{}", path_below(rewrite.files_base, &f.url)?);
                let file = match disposition {
                    Disposition::Yank(reason) => Cow::Owned(PageFile {
                        yanked: Some(reason.clone()),
                        ..f.clone()
                    }),
                    _ => Cow::Borrowed(f),
                };
                Some((file, url))
            })
            .collect();
        let versions: Vec<&str> = self
            .versions
            .iter()
            .map(String::as_str)
            .filter(|v| kept(v))
            .collect();
        let body = match format {
            PageFormat::Json => self.render_json(&files, &versions),
            PageFormat::HtmlV1 | PageFormat::LegacyHtml => self.render_html(&files),
        };
        RenderedPage {
            content_type: format.content_type(),
            body,
        }
    }

    fn render_json(&self, files: &[(Cow<'_, PageFile>, String)], versions: &[&str]) -> String {
        let mut versions: Vec<String> = versions.iter().map(|v| (*v).to_owned()).collect();
        let mut seen: HashSet<ReleaseKey> = versions.iter().map(|v| ReleaseKey::of(v)).collect();
        // An HTML upstream has no `versions`; derive it so PEP 700 clients still get one.
        for text in files.iter().filter_map(|(f, _)| f.version_text.as_deref()) {
            if seen.insert(ReleaseKey::of(text)) {
                versions.push(text.to_owned());
            }
        }
        // PEP 700 (1.1) makes `size` mandatory; claim 1.0 when an HTML upstream gave none.
        let api_version = if files.iter().all(|(f, _)| f.size.is_some()) {
            match &self.api_version {
                Some(v) if v != "1.0" => v.clone(),
                _ => "1.1".to_owned(),
            }
        } else {
            "1.0".to_owned()
        };
        let mut meta = self.meta_extra.clone();
        meta.insert("api-version".into(), Value::String(api_version));
        let mut doc = self.extra.clone();
        doc.insert("meta".into(), Value::Object(meta));
        doc.insert("name".into(), Value::String(self.name.key().to_owned()));
        doc.insert("versions".into(), json!(versions));
        doc.insert(
            "files".into(),
            Value::Array(files.iter().map(|(f, url)| json_file(f, url)).collect()),
        );
        Value::Object(doc).to_string()
    }

    fn render_html(&self, files: &[(Cow<'_, PageFile>, String)]) -> String {
        let name = escape(self.name.key());
        let mut out = String::from("<!DOCTYPE html>\n<html>\n  <head>\n");
        out.push_str("    <meta name=\"pypi:repository-version\" content=\"1.1\">\n");
        if let Some(status) = &self.project_status {
            let _ = writeln!(
                out,
                "    <meta name=\"pypi:project-status\" content=\"{}\">",
                escape(status)
            );
        }
        let _ = write!(out, "    <title>Links for {name}</title>\n  </head>\n  <body>\n    <h1>Links for {name}</h1>\n");
        for (f, url) in files {
            let mut href = url.clone();
            if let Some((alg, hex)) = f
                .hashes
                .get_key_value("sha256")
                .or_else(|| f.hashes.iter().next())
            {
                let _ = write!(href, "#{alg}={hex}");
            }
            let _ = write!(out, "    <a href=\"{}\"", escape(&href));
            if let Some(rp) = &f.requires_python {
                let _ = write!(out, " data-requires-python=\"{}\"", escape(rp));
            }
            if let Some(reason) = &f.yanked {
                let _ = write!(out, " data-yanked=\"{}\"", escape(reason));
            }
            for (attr, flag) in [
                ("data-core-metadata", &f.core_metadata),
                ("data-dist-info-metadata", &f.dist_info_metadata),
            ] {
                if let Some(hashes) = flag {
                    let _ = write!(out, " {attr}=\"{}\"", escape(&html_metadata_value(hashes)));
                }
            }
            if let Some(p) = f.provenance.as_ref().and_then(Value::as_str) {
                let _ = write!(out, " data-provenance=\"{}\"", escape(p));
            }
            if let Some(t) = f.upload_time {
                let _ = write!(
                    out,
                    " data-upload-time=\"{}\"",
                    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                );
            }
            let _ = writeln!(out, ">{}</a><br />", escape(&f.filename));
        }
        out.push_str("  </body>\n</html>\n");
        out
    }
}

fn json_file(f: &PageFile, url: &str) -> Value {
    let mut o: Map<String, Value> = f.extra.clone();
    o.insert("filename".into(), Value::String(f.filename.clone()));
    o.insert("url".into(), Value::String(url.to_owned()));
    o.insert("hashes".into(), json!(f.hashes));
    if let Some(rp) = &f.requires_python {
        o.insert("requires-python".into(), Value::String(rp.clone()));
    }
    o.insert(
        "yanked".into(),
        match &f.yanked {
            None => Value::Bool(false),
            Some(r) if r.is_empty() => Value::Bool(true),
            Some(r) => Value::String(r.clone()),
        },
    );
    for (key, flag) in [
        ("core-metadata", &f.core_metadata),
        ("dist-info-metadata", &f.dist_info_metadata),
    ] {
        if let Some(hashes) = flag {
            let value = if hashes.is_empty() {
                Value::Bool(true)
            } else {
                json!(hashes)
            };
            o.insert(key.into(), value);
        }
    }
    if let Some(size) = f.size {
        o.insert("size".into(), json!(size));
    }
    if let Some(t) = f.upload_time {
        o.insert(
            "upload-time".into(),
            Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        );
    }
    if let Some(p) = &f.provenance {
        o.insert("provenance".into(), p.clone());
    }
    Value::Object(o)
}

fn html_metadata_value(hashes: &Hashes) -> String {
    hashes
        .get_key_value("sha256")
        .or_else(|| hashes.iter().next())
        .map_or_else(|| "true".to_owned(), |(alg, hex)| format!("{alg}={hex}"))
}

/// Escapes text for HTML element content and double-quoted attribute values.
fn escape(raw: &str) -> String {
    html_escape::encode_quoted_attribute(raw).into_owned()
}
