//! HTML building blocks for the admin page: escaping, the layout, status badges and tables.
//!
//! Package names, reasons and log entries come from registries, agents and other admins:
//! every value goes through [`esc`] (text and attribute values alike) before it reaches
//! the page. The stylesheet is inline and nothing is loaded from elsewhere, so the page
//! works offline and the Content-Security-Policy can forbid every external source.

use std::fmt::Write as _;

use serde_json::Value;

/// Escapes text for an HTML text node or a quoted attribute value.
pub(crate) fn esc(text: &str) -> String {
    html_escape::encode_quoted_attribute(text).into_owned()
}

const CSS: &str = r#"
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#fff;--head:#f6f8fa;--accent:#0b57d0;
--ok:#1a7f37;--ok-bg:#dafbe1;--warn:#9a6700;--warn-bg:#fff8c5;--bad:#cf222e;--bad-bg:#ffebe9;
--hold:#8250df;--hold-bg:#fbefff;--off:#57606a;--off-bg:#eaeef2}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;align-items:center;gap:1.5rem;padding:.6rem 1.5rem;background:#24292f;color:#fff;position:sticky;top:0}
header b{font-size:15px}header nav a{color:#d0d7de;text-decoration:none;margin-right:1rem}
header nav a:hover{color:#fff}header .who{margin-left:auto;color:#d0d7de}
header form{display:inline}header button{background:none;border:1px solid #57606a;color:#d0d7de}
main{padding:1rem 1.5rem;max-width:1400px}
h2{font-size:16px;margin:1.6rem 0 .5rem;padding-bottom:.3rem;border-bottom:1px solid var(--line);scroll-margin-top:3.5rem}
h2 small{font-weight:normal;color:var(--muted)}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
td{overflow-wrap:anywhere}
th{background:var(--head);font-weight:600;white-space:nowrap}
tr:hover td{background:#f6f8fa}
code,.mono{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.muted{color:var(--muted)}.empty{color:var(--muted);padding:.5rem 0}
.badge{display:inline-block;padding:0 .45rem;border-radius:1em;font-size:12px;font-weight:600;white-space:nowrap}
.b-allow,.b-active,.b-approved,.b-ok{color:var(--ok);background:var(--ok-bg)}
.b-warn,.b-suspended,.b-pending,.b-stale{color:var(--warn);background:var(--warn-bg)}
.b-deny,.b-rejected,.b-error{color:var(--bad);background:var(--bad-bg)}
.b-quarantine{color:var(--hold);background:var(--hold-bg)}
.b-revoked,.b-removed,.b-expired{color:var(--off);background:var(--off-bg)}
form.inline{display:flex;gap:.3rem;flex-wrap:wrap;align-items:center;margin:.15rem 0}
input,select,button{font:inherit;font-size:13px;padding:.15rem .4rem;border:1px solid var(--line);border-radius:4px;background:#fff}
input[type=text]{min-width:9rem}
button{cursor:pointer;background:var(--head)}button:hover{border-color:var(--muted)}
button.ok{color:#fff;background:var(--ok);border-color:var(--ok)}
button.bad{color:#fff;background:var(--bad);border-color:var(--bad)}
.flash{padding:.6rem .9rem;border-radius:6px;margin:.6rem 0;border:1px solid}
.flash.ok{background:var(--ok-bg);border-color:var(--ok)}.flash.bad{background:var(--bad-bg);border-color:var(--bad)}
.secret{display:block;margin:.4rem 0;padding:.4rem;background:#fff;border:1px dashed var(--fg);user-select:all;word-break:break-all}
.login{max-width:24rem;margin:5rem auto;padding:1.5rem;border:1px solid var(--line);border-radius:8px}
.login label{display:block;margin:.6rem 0 .2rem}.login input{width:100%}
.login button{margin-top:1rem;width:100%}
pre{background:var(--head);padding:.6rem;overflow:auto}
.pager{display:flex;flex-wrap:wrap;gap:1rem;align-items:baseline;margin:.4rem 0}
table.log{table-layout:fixed}
table.log .c-time{width:10.5rem}table.log .c-agent{width:8rem}table.log .c-pkg{width:15rem}
table.log .c-verdict{width:7rem}table.log .c-req{width:7rem}
td.cut,table.log summary{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
table.log summary{cursor:pointer}table.log details[open] summary{white-space:normal}
.rec{margin:.3rem 0 .2rem .8rem}.rec p{margin:.4rem 0 .1rem}.rec ul{margin:0;padding-left:1.2rem}
.rec dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:0 .6rem;margin:0}
.rec dt{color:var(--muted)}.rec dd{margin:0;overflow-wrap:anywhere}
"#;

/// A whole page. `title` and `header_extra` must already be escaped HTML.
pub(crate) fn layout(title: &str, header_extra: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{CSS}</style></head><body>\
         <header><b>depfw admin</b>{header_extra}</header><main>{body}</main></body></html>"
    )
}

/// A coloured status pill; `status` picks the colour (allow, pending, revoked, ...).
pub(crate) fn badge(status: &str) -> String {
    let class: String = status
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    format!("<span class=\"badge b-{class}\">{}</span>", esc(status))
}

/// A table with escaped headers; cells are HTML the caller built (with [`esc`]).
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\">{}</p>", esc(empty));
    }
    let mut out = String::from("<table><thead><tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// One JSON value as a cell: strings as text, verdicts and statuses as badges, nested
/// values as compact JSON. Always escaped.
pub(crate) fn json_cell(key: &str, value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) if matches!(key, "verdict" | "status") => badge(s),
        Value::Bool(true) if key == "stale" => badge("stale"),
        Value::Bool(false) if key == "stale" => {
            "<span class=\"badge b-ok\">fresh</span>".to_owned()
        }
        Value::String(s) if key == "error" => {
            format!("<span class=\"badge b-error\">{}</span>", esc(s))
        }
        Value::String(s) => esc(s),
        Value::Bool(_) | Value::Number(_) => esc(&value.to_string()),
        other => format!("<code>{}</code>", esc(&other.to_string())),
    }
}

/// An array of objects as a table (columns: `preferred` keys first, then any others in
/// order of appearance); anything else as pretty-printed JSON.
pub(crate) fn json_table(value: &Value, preferred: &[&str], empty: &str) -> String {
    let Value::Array(items) = value else {
        let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
        return format!("<pre>{}</pre>", esc(&pretty));
    };
    let mut columns: Vec<String> = Vec::new();
    for item in items {
        if let Value::Object(map) = item {
            for key in map.keys() {
                if !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
    }
    columns.sort_by_key(|c| preferred.iter().position(|p| p == c).unwrap_or(usize::MAX));
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| match item {
            Value::Object(map) => columns
                .iter()
                .map(|c| map.get(c).map_or_else(String::new, |v| json_cell(c, v)))
                .collect(),
            other => vec![json_cell("", other)],
        })
        .collect();
    let headers: Vec<&str> = columns.iter().map(String::as_str).collect();
    table(&headers, &rows, empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_hostile_text() {
        assert_eq!(
            esc(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#x27;"
        );
        assert_eq!(esc("left-pad"), "left-pad");
        assert!(!badge("\"><img src=x onerror=alert(1)>").contains("<img"));
    }

    #[test]
    fn json_tables_escape_keys_and_values() {
        let v = json!([{"verdict": "deny", "<k>": "<v>"}, {"other": {"a": "<b>"}}]);
        let html = json_table(&v, &["verdict"], "none");
        assert!(!html.contains("<k>") && !html.contains("<v>") && !html.contains("\"<b>"));
        assert!(html.contains("b-deny"));
        assert!(html.find("verdict").unwrap() < html.find("&lt;k&gt;").unwrap());
        assert!(json_table(&json!({"x": "<y>"}), &[], "").contains("&lt;y&gt;"));
        assert!(json_table(&json!([]), &[], "nothing").contains("nothing"));
    }
}
