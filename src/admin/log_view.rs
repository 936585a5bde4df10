//! The provenance log on the admin page (`/admin/?agent=…&package=…#log`): one row per
//! decision the proxy made, what it hid and why in one line, the whole record on demand
//! (`<details>`, no script), searched and paged by query parameters so that a URL can be
//! shared.
//!
//! Records come from [`DecisionLog`](super::DecisionLog) as JSON (a `DecisionRecord` plus
//! `agent`, or whatever a test log holds), so every field is optional here. Every value is
//! escaped, and long values are cut or wrapped by the stylesheet: no record can make the
//! page wider than the window.
//!
//! Paging is by offset into the search, with `until` pinned to the newest decision of the
//! first page so that decisions arriving meanwhile do not shift the pages. Past
//! [`MAX_LOG_OFFSET`] the "older" link moves `until` to the last decision shown instead,
//! so a page never reads more than `MAX_LOG_OFFSET` + `limit` + 1 records.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::api::{run_log_query, text, LogQuery};
use super::html::{badge, esc};
use super::sources::{MAX_LOG_LIMIT, WOULD_REFUSE};
use super::view::PageQuery;
use super::{AdminError, AdminState, MOUNT};

/// The deepest `offset` a page takes (see the module docs).
const MAX_LOG_OFFSET: usize = 10_000;
/// Hidden versions named in a row's summary line.
const SUMMARY_VERSIONS: usize = 3;
/// Hidden versions listed in a row's details; the API (`GET /admin/api/log`) has them all.
const DETAIL_VERSIONS: usize = 100;
/// Keys a row shows in its own columns or details; any other key is listed as JSON.
const KNOWN_KEYS: &[&str] = &[
    "time",
    "agent",
    "ecosystem",
    "package",
    "version",
    "verdict",
    "request_id",
    "kind",
    "outcome",
    "client",
    "findings",
    "hidden",
    "sha256",
    "sha512",
    "upstream_url",
    "seq",
    "hash",
    "prev_hash",
    "signature",
];

/// The log section: the search form, then the page of decisions or why the search was refused.
pub(crate) fn section(state: &AdminState, q: &PageQuery) -> String {
    let mut out = format!("<h2 id=\"log\">Provenance log</h2>{}", search_form(q));
    match page(state, q) {
        Ok(page) => out.push_str(&page),
        Err(e) => {
            let _ = write!(
                out,
                "<div class=\"flash bad\">{}</div>",
                esc(&e.public_message())
            );
        }
    }
    out
}

fn search_form(q: &PageQuery) -> String {
    let value = |v: &Option<String>| esc(text(v).unwrap_or(""));
    let verdict = text(&q.verdict).unwrap_or("");
    let options: String = ["", "allow", "warn", "quarantine", "deny", WOULD_REFUSE]
        .iter()
        .map(|v| {
            let label = match *v {
                "" => "any verdict",
                WOULD_REFUSE => "would have been refused (monitor mode)",
                v => v,
            };
            format!(
                "<option value=\"{v}\"{}>{label}</option>",
                if *v == verdict { " selected" } else { "" },
            )
        })
        .collect();
    format!(
        "<form class=\"inline\" method=\"get\" action=\"{MOUNT}#log\">\
         <input type=\"text\" name=\"agent\" placeholder=\"agent\" value=\"{}\">\
         <input type=\"text\" name=\"package\" placeholder=\"package\" value=\"{}\">\
         <select name=\"verdict\">{options}</select>\
         <input type=\"text\" name=\"since\" placeholder=\"since (YYYY-MM-DD)\" value=\"{}\" size=\"12\" \
         title=\"a date or an RFC 3339 time\">\
         <input type=\"text\" name=\"until\" placeholder=\"until\" value=\"{}\" size=\"12\" \
         title=\"a date (through its end) or an RFC 3339 time\">\
         <input type=\"number\" name=\"limit\" min=\"1\" max=\"{MAX_LOG_LIMIT}\" placeholder=\"100\" value=\"{}\" \
         title=\"decisions per page\">\
         <button type=\"submit\">Search</button> <a href=\"{MOUNT}#log\">clear</a></form>",
        value(&q.agent),
        value(&q.package),
        value(&q.since),
        value(&q.until),
        value(&q.limit),
    )
}

fn parse_offset(offset: Option<&str>) -> Result<usize, AdminError> {
    match offset {
        None => Ok(0),
        Some(o) => match o.parse::<usize>() {
            Ok(n) if n <= MAX_LOG_OFFSET => Ok(n),
            _ => Err(AdminError::BadRequest(format!(
                "offset: `{o}` is not a number from 0 to {MAX_LOG_OFFSET} \
                 (for older decisions, set until)"
            ))),
        },
    }
}

fn time_of(entry: &Value) -> Option<&str> {
    entry.get("time").and_then(Value::as_str)
}

fn page(state: &AdminState, q: &PageQuery) -> Result<String, AdminError> {
    let offset = parse_offset(text(&q.offset))?;
    let query = LogQuery {
        agent: q.agent.clone(),
        package: q.package.clone(),
        verdict: q.verdict.clone(),
        since: q.since.clone(),
        until: q.until.clone(),
        limit: q.limit.clone(),
    };
    let mut filter = query.filter()?;
    let limit = filter.limit;
    // One more than the page holds: whether there are older decisions.
    filter.limit = offset + limit + 1;
    let entries = run_log_query(state, &filter)?;
    let after_offset = entries.get(offset..).unwrap_or_default();
    let shown = &after_offset[..after_offset.len().min(limit)];
    let older = after_offset.len() > limit;
    // `until` as the links carry it: the search's, or pinned to the newest decision.
    let until = text(&q.until)
        .or_else(|| entries.first().and_then(time_of))
        .map(str::to_owned);
    let link = |until: Option<&str>, offset: usize| {
        let mut params = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("agent", text(&q.agent)),
            ("package", text(&q.package)),
            ("verdict", text(&q.verdict)),
            ("since", text(&q.since)),
            ("until", until),
            ("limit", text(&q.limit)),
        ] {
            if let Some(value) = value {
                params.append_pair(key, value);
            }
        }
        if offset > 0 {
            params.append_pair("offset", &offset.to_string());
        }
        format!("{MOUNT}?{}#log", params.finish())
    };
    let mut nav = Vec::new();
    if offset > 0 {
        nav.push(format!(
            "<a href=\"{}\">← newer</a>",
            esc(&link(until.as_deref(), offset.saturating_sub(limit)))
        ));
    }
    if older {
        let next = offset + limit;
        let href = match shown.last().and_then(time_of) {
            // Deep in the log: start again from the last decision shown, skipping those
            // at the same instant that were already shown.
            Some(last) if next > MAX_LOG_OFFSET => {
                let seen = entries[..next]
                    .iter()
                    .filter(|e| time_of(e) == Some(last))
                    .count();
                link(Some(last), seen)
            }
            _ => link(until.as_deref(), next),
        };
        nav.push(format!("<a href=\"{}\">older →</a>", esc(&href)));
    }
    let range = if shown.is_empty() {
        String::new()
    } else {
        format!(
            "decisions {}–{}, newest first",
            offset + 1,
            offset + shown.len()
        )
    };
    let until_note = match (text(&q.until), &until) {
        (None, Some(pinned)) if !shown.is_empty() => format!(
            " · up to {} (newer ones: <a href=\"{}\">reload</a>)",
            esc(pinned),
            esc(&link(None, 0))
        ),
        _ => String::new(),
    };
    let pager = format!(
        "<p class=\"pager\"><span class=\"muted\">{range}{until_note}</span>{}</p>",
        nav.join("")
    );
    if shown.is_empty() {
        let empty = if offset > 0 {
            "no more decisions"
        } else {
            "no matching decisions"
        };
        return Ok(format!("{pager}<p class=\"empty\">{empty}</p>"));
    }
    let mut out = pager.clone();
    out.push_str(
        "<table class=\"log\"><colgroup><col class=\"c-time\"><col class=\"c-agent\">\
         <col class=\"c-pkg\"><col class=\"c-verdict\"><col><col class=\"c-req\"></colgroup>\
         <thead><tr><th>Time (UTC)</th><th>Agent</th><th>Package</th><th>Verdict</th>\
         <th>What happened</th><th>Request</th></tr></thead><tbody>",
    );
    for entry in shown {
        out.push_str(&row(entry));
    }
    out.push_str("</tbody></table>");
    if !nav.is_empty() {
        out.push_str(&pager);
    }
    Ok(out)
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A cell whose text is cut with an ellipsis; the whole text is its tooltip.
fn cut(html: &str, full: &str) -> String {
    format!("<td class=\"cut\" title=\"{}\">{html}</td>", esc(full))
}

/// A link to the log searched for `key` = `value` alone.
fn search_link(key: &str, value: &str, html: &str) -> String {
    let params = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(key, value)
        .finish();
    format!(
        "<a href=\"{}\">{html}</a>",
        esc(&format!("{MOUNT}?{params}#log"))
    )
}

fn row(entry: &Value) -> String {
    let mut out = String::from("<tr>");
    match time_of(entry) {
        Some(t) => {
            let shown = DateTime::parse_from_rfc3339(t)
                .map(|d| {
                    d.with_timezone(&Utc)
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string()
                })
                .unwrap_or_else(|_| t.to_owned());
            out.push_str(&cut(
                &format!("<span class=\"mono\">{}</span>", esc(&shown)),
                t,
            ));
        }
        None => out.push_str("<td></td>"),
    }
    let agent =
        str_of(entry, "agent").or_else(|| entry.get("client").and_then(|c| str_of(c, "agent")));
    out.push_str(&match agent {
        Some(a) => cut(&search_link("agent", a, &esc(a)), a),
        None => "<td class=\"cut muted\">anonymous</td>".to_owned(),
    });
    let ecosystem = str_of(entry, "ecosystem").unwrap_or("");
    let package = str_of(entry, "package").unwrap_or("");
    let version = match str_of(entry, "version") {
        Some(v) => format!("@{}", esc(v)),
        None => " <span class=\"muted\">metadata</span>".to_owned(),
    };
    let full = format!(
        "{ecosystem} {package}{}",
        str_of(entry, "version")
            .map(|v| format!("@{v}"))
            .unwrap_or_default()
    );
    out.push_str(&cut(
        &format!(
            "<span class=\"muted\">{}</span> {}{version}",
            esc(ecosystem),
            search_link("package", package, &format!("<b>{}</b>", esc(package)))
        ),
        &full,
    ));
    out.push_str(&format!(
        "<td>{}</td>",
        str_of(entry, "verdict").map(badge).unwrap_or_default()
    ));
    let line = summary(entry);
    let _ = write!(
        out,
        "<td><details><summary title=\"{}\">{}</summary>{}</details></td>",
        esc(&line),
        esc(&line),
        details(entry)
    );
    let request = str_of(entry, "request_id").unwrap_or("");
    out.push_str(&cut(
        &format!("<span class=\"mono\">{}</span>", esc(request)),
        request,
    ));
    out.push_str("</tr>");
    out
}

/// The finding codes at the start of a hidden version's reason (`Decision::summary`:
/// `code: message; code: message`), or the reason itself cut short.
fn reason_codes(reason: &str) -> String {
    let codes: Vec<&str> = reason
        .split("; ")
        .filter_map(|part| part.split_once(": ").map(|(code, _)| code))
        .filter(|code| {
            !code.is_empty()
                && code
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
        .collect();
    if codes.is_empty() {
        reason.chars().take(40).collect()
    } else {
        codes.join(", ")
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One line of plain text (escaped by the caller): what was hidden and found, or what
/// happened when nothing was.
pub(crate) fn summary(entry: &Value) -> String {
    let hidden = array(entry, "hidden");
    let findings = array(entry, "findings");
    let mut parts = Vec::new();
    let code = |f: &Value| str_of(f, "code").unwrap_or("?").to_owned();
    if findings
        .iter()
        .any(|f| str_of(f, "code") == Some(WOULD_REFUSE))
    {
        parts.push("would have been refused".to_owned());
    }
    if !hidden.is_empty() {
        let named: Vec<String> = hidden
            .iter()
            .take(SUMMARY_VERSIONS)
            .map(|h| {
                let version = str_of(h, "version").unwrap_or("?");
                match str_of(h, "reason").map(reason_codes) {
                    Some(why) if !why.is_empty() => format!("{version} ({why})"),
                    _ => version.to_owned(),
                }
            })
            .collect();
        let mut line = format!(
            "{} hidden: {}",
            plural(hidden.len(), "version", "versions"),
            named.join(", ")
        );
        if hidden.len() > SUMMARY_VERSIONS {
            let _ = write!(line, ", …+{} more", hidden.len() - SUMMARY_VERSIONS);
        }
        parts.push(line);
    }
    let findings: Vec<&Value> = findings
        .iter()
        .filter(|f| str_of(f, "code") != Some(WOULD_REFUSE))
        .collect();
    if let Some(first) = findings.first() {
        let mut line = format!(
            "{}: {}",
            code(first),
            str_of(first, "message").unwrap_or("")
        );
        if findings.len() > 1 {
            let rest: Vec<String> = findings[1..].iter().map(|f| code(f)).collect();
            let _ = write!(line, " (+{} more: {})", rest.len(), rest.join(", "));
        }
        parts.push(line);
    }
    if parts.is_empty() {
        parts.push(str_of(entry, "outcome").unwrap_or("no findings").to_owned());
    }
    parts.join(" · ")
}

fn details(entry: &Value) -> String {
    let mut out = String::from("<div class=\"rec\"><dl>");
    let mut field = |name: &str, html: String| {
        let _ = write!(out, "<dt>{}</dt><dd>{html}</dd>", esc(name));
    };
    for (key, name) in [
        ("outcome", "outcome"),
        ("kind", "request"),
        ("request_id", "request id"),
        ("time", "time"),
    ] {
        if let Some(v) = str_of(entry, key) {
            field(name, esc(v));
        }
    }
    if let Some(client) = entry.get("client") {
        for (key, name) in [("user_agent", "client"), ("command", "command")] {
            if let Some(v) = str_of(client, key) {
                field(name, esc(v));
            }
        }
    }
    for (key, name) in [
        ("upstream_url", "upstream"),
        ("sha256", "sha256"),
        ("sha512", "sha512"),
        ("hash", "record hash"),
    ] {
        if let Some(v) = str_of(entry, key) {
            field(name, format!("<code>{}</code>", esc(v)));
        }
    }
    if let Some(seq) = entry.get("seq").and_then(Value::as_u64) {
        let signed = if str_of(entry, "signature").is_some() {
            " (signed)"
        } else {
            ""
        };
        field("record", format!("#{seq}{signed}"));
    }
    if let Value::Object(map) = entry {
        for (key, value) in map
            .iter()
            .filter(|(k, _)| !KNOWN_KEYS.contains(&k.as_str()))
        {
            let shown = match value {
                Value::String(s) => esc(s),
                other => format!("<code>{}</code>", esc(&other.to_string())),
            };
            field(key, shown);
        }
    }
    out.push_str("</dl>");
    let findings = array(entry, "findings");
    if !findings.is_empty() {
        let _ = write!(
            out,
            "<p>{}:</p><ul>",
            plural(findings.len(), "finding", "findings")
        );
        for f in findings {
            let _ = write!(
                out,
                "<li>{} <code>{}</code> {}",
                str_of(f, "verdict").map(badge).unwrap_or_default(),
                esc(str_of(f, "code").unwrap_or("?")),
                esc(str_of(f, "message").unwrap_or(""))
            );
            if let Some(severity) = str_of(f, "severity") {
                let _ = write!(
                    out,
                    " <span class=\"muted\">severity {}</span>",
                    esc(severity)
                );
            }
            let ids: Vec<&str> = array(f, "ids").iter().filter_map(Value::as_str).collect();
            if !ids.is_empty() {
                let _ = write!(
                    out,
                    " <span class=\"muted\">{}</span>",
                    esc(&ids.join(", "))
                );
            }
            if let Some(fixed) = str_of(f, "fixed_in") {
                let _ = write!(out, " <span class=\"muted\">fixed in {}</span>", esc(fixed));
            }
            out.push_str("</li>");
        }
        out.push_str("</ul>");
    }
    let hidden = array(entry, "hidden");
    if !hidden.is_empty() {
        let _ = write!(
            out,
            "<p>{} hidden from the client:</p><ul>",
            plural(hidden.len(), "version", "versions")
        );
        for h in hidden.iter().take(DETAIL_VERSIONS) {
            let _ = write!(
                out,
                "<li><b>{}</b> {} {}</li>",
                esc(str_of(h, "version").unwrap_or("?")),
                str_of(h, "verdict").map(badge).unwrap_or_default(),
                esc(str_of(h, "reason").unwrap_or(""))
            );
        }
        if hidden.len() > DETAIL_VERSIONS {
            let _ = write!(
                out,
                "<li class=\"muted\">…and {} more (all of them: <code>GET {MOUNT}/api/log</code>)</li>",
                hidden.len() - DETAIL_VERSIONS
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reason_codes_take_the_codes_or_a_short_reason() {
        assert_eq!(
            reason_codes("known-malicious: MAL-1; vulnerable: GHSA-1: a: b"),
            "known-malicious, vulnerable"
        );
        assert_eq!(reason_codes("<b>Not a code</b>: x"), "<b>Not a code</b>: x");
        assert_eq!(reason_codes(&"y".repeat(500)).len(), 40);
        assert_eq!(reason_codes(""), "");
    }

    #[test]
    fn summaries_of_odd_records() {
        assert_eq!(summary(&json!({})), "no findings");
        assert_eq!(summary(&json!({"outcome": "served"})), "served");
        assert_eq!(
            summary(&json!({"hidden": [{"version": "1.0.0"}], "findings": [{}]})),
            "1 version hidden: 1.0.0 · ?: "
        );
        assert_eq!(
            summary(&json!({"findings": [{"code": "would-refuse"}], "outcome": "served"})),
            "would have been refused"
        );
        assert_eq!(
            summary(&json!({"hidden": "not a list", "findings": 7, "outcome": 1})),
            "no findings"
        );
    }

    #[test]
    fn offsets_are_bounded() {
        assert_eq!(parse_offset(None).unwrap(), 0);
        assert_eq!(parse_offset(Some("10000")).unwrap(), MAX_LOG_OFFSET);
        for bad in ["10001", "-1", "1e3", "x"] {
            assert!(parse_offset(Some(bad)).is_err(), "{bad}");
        }
    }
}
