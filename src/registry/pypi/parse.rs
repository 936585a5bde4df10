//! Upstream project pages → [`ProjectPage`]: PEP 691 JSON and PEP 503 HTML.

use html5gum::{Token, Tokenizer};
use serde_json::{Map, Value};
use url::Url;

use super::page::{check_api_version, file_version, parse_time, Hashes, PageFile, ProjectPage};
use crate::package::{pep503_normalize, PackageName};
use crate::registry::ProtocolError;

/// The PEP 691 JSON media type.
pub const JSON_CONTENT_TYPE: &str = "application/vnd.pypi.simple.v1+json";

/// Parses an upstream project page, choosing the format from its `Content-Type` (JSON
/// when it names `+json` or `application/json`, HTML otherwise). `page_url` resolves
/// relative file URLs.
pub fn parse_project_page(
    body: &[u8],
    content_type: Option<&str>,
    page_url: &Url,
    project: &PackageName,
) -> Result<ProjectPage, ProtocolError> {
    let mime = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if mime.ends_with("+json") || mime == "application/json" {
        parse_json(body, page_url, project)
    } else {
        parse_html(body, page_url, project)
    }
}

fn bad(why: impl Into<String>) -> ProtocolError {
    ProtocolError::BadUpstream(why.into())
}

/// Parses a PEP 691 JSON page.
pub fn parse_json(
    body: &[u8],
    page_url: &Url,
    project: &PackageName,
) -> Result<ProjectPage, ProtocolError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| bad(format!("project JSON: {e}")))?;
    let Value::Object(mut doc) = doc else {
        return Err(bad("project JSON is not an object"));
    };
    let mut meta = match doc.remove("meta") {
        Some(Value::Object(meta)) => meta,
        _ => return Err(bad("project JSON has no `meta` object")),
    };
    let api_version = match meta.remove("api-version") {
        Some(Value::String(v)) => v,
        _ => return Err(bad("project JSON has no `meta.api-version`")),
    };
    check_api_version(&api_version)?;
    // A page for another project would attach its files to this one's releases.
    match doc.remove("name") {
        Some(Value::String(name)) if pep503_normalize(&name) != project.key() => {
            return Err(bad(format!("page of `{name}` served for `{project}`")));
        }
        _ => {}
    }
    let versions = match doc.remove("versions") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(bad("`versions` holds a non-string")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("`versions` is not an array")),
    };
    let project_status = match doc.get("project-status") {
        Some(Value::Object(s)) => s.get("status").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    let files = match doc.remove("files") {
        Some(Value::Array(files)) => files
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                json_file(f, page_url, project).map_err(|e| bad(format!("files[{i}]: {e}")))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(bad("project JSON has no `files` array")),
    };
    Ok(ProjectPage {
        name: project.clone(),
        api_version: Some(api_version),
        project_status,
        versions,
        files,
        extra: doc,
        meta_extra: meta,
    })
}

fn json_file(value: Value, page_url: &Url, project: &PackageName) -> Result<PageFile, String> {
    let Value::Object(mut f) = value else {
        return Err("not an object".into());
    };
    let mut take_string = |key: &str| match f.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{key}` is not a string")),
    };
    let filename = take_string("filename")?.ok_or("no `filename`")?;
    let url = take_string("url")?.ok_or("no `url`")?;
    let requires_python = take_string("requires-python")?;
    let upload_time = take_string("upload-time")?
        .map(|t| parse_time(&t))
        .transpose()
        .map_err(|e| e.to_string())?;
    let url = resolve(page_url, &url)?;
    let hashes = match f.remove("hashes") {
        Some(Value::Object(h)) => hash_map(h)?,
        _ => return Err("no `hashes` object".into()),
    };
    let yanked = match f.remove("yanked") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => None,
        Some(Value::Bool(true)) => Some(String::new()),
        Some(Value::String(reason)) => Some(reason),
        Some(_) => return Err("`yanked` is neither bool nor string".into()),
    };
    let core_metadata = metadata_flag(f.remove("core-metadata"))?;
    let dist_info_metadata = metadata_flag(f.remove("dist-info-metadata"))?;
    let size = match f.remove("size") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or("`size` is not a non-negative integer")?),
    };
    let provenance = f.remove("provenance").filter(|v| !v.is_null());
    let version_text = file_version(project, &filename);
    Ok(PageFile {
        filename,
        url,
        hashes,
        requires_python,
        yanked,
        core_metadata,
        dist_info_metadata,
        size,
        upload_time,
        provenance,
        version_text,
        extra: f,
    })
}

fn hash_map(h: Map<String, Value>) -> Result<Hashes, String> {
    h.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.to_ascii_lowercase(), s.to_ascii_lowercase())),
            _ => Err(format!("hash `{k}` is not a string")),
        })
        .collect()
}

fn metadata_flag(value: Option<Value>) -> Result<Option<Hashes>, String> {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(None),
        Some(Value::Bool(true)) => Ok(Some(Hashes::new())),
        Some(Value::Object(h)) => hash_map(h).map(Some),
        Some(_) => Err("core metadata flag is neither bool nor object".into()),
    }
}

fn resolve(page_url: &Url, href: &str) -> Result<Url, String> {
    let mut url = page_url
        .join(href)
        .map_err(|e| format!("bad URL `{href}`: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("URL `{href}` is not http(s)"));
    }
    url.set_fragment(None);
    Ok(url)
}

/// Parses a PEP 503 HTML page (with PEP 592/629/658/714 attributes, and the
/// `data-upload-time` some mirrors add).
pub fn parse_html(
    body: &[u8],
    page_url: &Url,
    project: &PackageName,
) -> Result<ProjectPage, ProtocolError> {
    let mut page = ProjectPage {
        name: project.clone(),
        api_version: None,
        project_status: None,
        versions: Vec::new(),
        files: Vec::new(),
        extra: Map::new(),
        meta_extra: Map::new(),
    };
    let mut base = page_url.clone();
    // The anchor being read: its attributes and the text seen so far.
    let mut open: Option<(Attrs, String)> = None;
    for token in Tokenizer::new(body) {
        let Ok(token) = token;
        match token {
            Token::StartTag(tag) => {
                let attrs: Attrs = tag
                    .attributes
                    .iter()
                    .map(|(k, v)| (lossy(k), lossy(&v.value)))
                    .collect();
                match tag.name.as_slice() {
                    b"a" => {
                        if let Some((attrs, text)) = open.take() {
                            page.files.push(html_file(&attrs, &text, &base, project)?);
                        }
                        if get(&attrs, "href").is_some() {
                            open = Some((attrs, String::new()));
                        }
                    }
                    b"base" => {
                        if let Some(href) = get(&attrs, "href") {
                            base = page_url
                                .join(href)
                                .map_err(|e| bad(format!("<base href>: {e}")))?;
                        }
                    }
                    b"meta" => match (get(&attrs, "name"), get(&attrs, "content")) {
                        (Some("pypi:repository-version"), Some(v)) => {
                            check_api_version(v)?;
                            page.api_version = Some(v.to_owned());
                        }
                        (Some("pypi:project-status"), Some(v)) => {
                            page.project_status = Some(v.to_owned())
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
            Token::String(text) => {
                if let Some((_, buf)) = open.as_mut() {
                    buf.push_str(&lossy(&text.value));
                }
            }
            Token::EndTag(tag) if tag.name.as_slice() == b"a" => {
                if let Some((attrs, text)) = open.take() {
                    page.files.push(html_file(&attrs, &text, &base, project)?);
                }
            }
            _ => {}
        }
    }
    if let Some((attrs, text)) = open.take() {
        page.files.push(html_file(&attrs, &text, &base, project)?);
    }
    Ok(page)
}

type Attrs = Vec<(String, String)>;

fn get<'a>(attrs: &'a Attrs, key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn html_file(
    attrs: &Attrs,
    text: &str,
    base: &Url,
    project: &PackageName,
) -> Result<PageFile, ProtocolError> {
    let href = get(attrs, "href").unwrap_or_default();
    let full = base
        .join(href)
        .map_err(|e| bad(format!("bad href `{href}`: {e}")))?;
    let fragment = full.fragment().map(str::to_owned);
    let url = resolve(base, href).map_err(bad)?;
    let mut filename = text.trim().to_owned();
    if filename.is_empty() {
        filename = url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .unwrap_or_default()
            .to_owned();
    }
    let mut hashes = Hashes::new();
    if let Some((name, value)) = fragment.as_deref().and_then(|f| f.split_once('=')) {
        hashes.insert(name.to_ascii_lowercase(), value.to_ascii_lowercase());
    }
    let upload_time = get(attrs, "data-upload-time").map(parse_time).transpose()?;
    Ok(PageFile {
        version_text: file_version(project, &filename),
        filename,
        url,
        hashes,
        requires_python: get(attrs, "data-requires-python").map(str::to_owned),
        yanked: get(attrs, "data-yanked").map(str::to_owned),
        core_metadata: get(attrs, "data-core-metadata").map(html_metadata_flag),
        dist_info_metadata: get(attrs, "data-dist-info-metadata").map(html_metadata_flag),
        size: None,
        upload_time,
        provenance: get(attrs, "data-provenance").map(|p| Value::String(p.to_owned())),
        extra: Map::new(),
    })
}

/// PEP 658: `true` or `<hash name>=<hex>`.
fn html_metadata_flag(value: &str) -> Hashes {
    let mut hashes = Hashes::new();
    if let Some((name, hex)) = value.split_once('=') {
        hashes.insert(name.to_ascii_lowercase(), hex.to_ascii_lowercase());
    }
    hashes
}
