//! The admin page's HTML: one section per concern (quarantine, lists, agents, log,
//! feeds), every value escaped with [`esc`] and every form carrying the session's CSRF
//! token.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::api::parse_status;
use super::auth::{Flash, Session};
use super::html::{badge, esc, json_table, layout, table};
use super::{AdminError, AdminState, MOUNT};
use crate::policy::overrides::OverrideKind;
use crate::store::quarantine::{QuarantineItem, QuarantineStatus};

fn date(t: DateTime<Utc>) -> String {
    format!(
        "<span class=\"mono\" title=\"{}\">{}</span>",
        esc(&t.to_rfc3339()),
        esc(&t.format("%Y-%m-%d %H:%M").to_string())
    )
}

/// A hidden CSRF field plus a form's opening tag.
fn form_open(action: &str, csrf: &str) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{MOUNT}{}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(action),
        esc(csrf)
    )
}

/// Query parameters of the page: the log search and list toggles.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageQuery {
    pub(crate) agent: Option<String>,
    pub(crate) package: Option<String>,
    pub(crate) verdict: Option<String>,
    pub(crate) since: Option<String>,
    pub(crate) until: Option<String>,
    pub(crate) limit: Option<String>,
    /// Decisions of the log search to skip (paging; see `log_view`).
    pub(crate) offset: Option<String>,
    /// Quarantine status shown: pending (default), approved, rejected, all.
    pub(crate) queue: Option<String>,
    /// Show removed and expired entries too.
    pub(crate) history: Option<String>,
}

pub(crate) fn render(
    state: &AdminState,
    session: &Session,
    flash: Option<Flash>,
    q: &PageQuery,
) -> Result<String, AdminError> {
    let csrf = &session.csrf;
    let now = Utc::now();
    let mut body = String::new();
    if let Some(flash) = flash {
        let _ = write!(
            body,
            "<div class=\"flash {}\">{}",
            if flash.ok { "ok" } else { "bad" },
            esc(&flash.text)
        );
        if let Some((secret, urls)) = flash.secret {
            let _ = write!(body, "<code class=\"secret\">{}</code>", esc(&secret));
            for url in urls {
                let _ = write!(body, "<div class=\"mono muted\">{}</div>", esc(&url));
            }
        }
        body.push_str("</div>");
    }
    body.push_str(&quarantine_section(state, csrf, q)?);
    body.push_str(&lists_section(state, csrf, q, now)?);
    body.push_str(&agents_section(state, csrf)?);
    body.push_str(&super::log_view::section(state, q));
    let _ = write!(
        body,
        "<h2 id=\"feeds\">Feeds</h2>{}",
        json_table(
            &state.feeds.status(),
            &[
                "name",
                "ecosystem",
                "source",
                "last_sync",
                "advisories",
                "stale",
                "error"
            ],
            "no feeds"
        )
    );
    let header = format!(
        "<nav><a href=\"#quarantine\">Quarantine</a><a href=\"#lists\">Allow/deny lists</a>\
         <a href=\"#agents\">Agents</a><a href=\"#log\">Provenance log</a><a href=\"#feeds\">Feeds</a></nav>\
         <span class=\"who\">{}</span>{}<button type=\"submit\">Sign out</button></form>",
        esc(&session.author),
        form_open("/logout", csrf)
    );
    Ok(layout("depfw admin", &header, &body))
}

fn quarantine_section(state: &AdminState, csrf: &str, q: &PageQuery) -> Result<String, AdminError> {
    let status = parse_status(q.queue.as_deref()).unwrap_or(Some(QuarantineStatus::Pending));
    let agent = q.agent.as_deref().map(str::trim).filter(|a| !a.is_empty());
    let items = state.queue(status, agent)?;
    let shown = status.map_or("all", QuarantineStatus::as_str);
    // The agent filter is the page's one `agent` field: it narrows the log below as well.
    let options: String = ["pending", "approved", "rejected", "all"]
        .iter()
        .map(|s| {
            format!(
                "<option value=\"{s}\"{}>{s}</option>",
                if *s == shown { " selected" } else { "" }
            )
        })
        .collect();
    let mut out = format!(
        "<h2 id=\"quarantine\">Quarantine <small>{} {shown}{}</small></h2>\
         <form class=\"inline\" method=\"get\" action=\"{MOUNT}#quarantine\">\
         <select name=\"queue\">{options}</select>\
         <input type=\"text\" name=\"agent\" placeholder=\"requested by agent (or anonymous)\" value=\"{}\">\
         <button type=\"submit\">Filter</button></form>",
        items.len(),
        agent
            .map(|a| format!(" · requested by <b>{}</b>", esc(a)))
            .unwrap_or_default(),
        esc(agent.unwrap_or("")),
    );
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| quarantine_row(item, csrf))
        .collect();
    out.push_str(&table(
        &[
            "#",
            "Package",
            "Held for",
            "Requested by",
            "Seen",
            "Decision",
        ],
        &rows,
        "nothing is waiting for a decision",
    ));
    Ok(out)
}

fn quarantine_row(item: &QuarantineItem, csrf: &str) -> Vec<String> {
    let reasons: String = item
        .reasons
        .iter()
        .map(|f| {
            format!(
                "<div>{} <code>{}</code> {}</div>",
                badge(f.verdict.as_str()),
                esc(f.code.as_str()),
                esc(&f.message)
            )
        })
        .collect();
    let who: Vec<String> = item
        .requesters
        .iter()
        .map(|r| match &r.justification {
            Some(j) => format!(
                "{} ×{} <span class=\"muted\">asks: “{}”</span>",
                esc(&r.who),
                r.count,
                esc(j)
            ),
            None => format!("{} ×{}", esc(&r.who), r.count),
        })
        .collect();
    let decision = match &item.resolution {
        None => format!(
            "{}<input type=\"text\" name=\"range\" placeholder=\"this version, or a range\" \
             title=\"blank: this version only; or a range that includes it, e.g. &gt;=1.3.0 &lt;2\" size=\"16\">\
             <input type=\"text\" name=\"reason\" placeholder=\"reason\" required>\
             <input type=\"date\" name=\"expires\" title=\"expires (optional)\">\
             <button class=\"ok\" type=\"submit\">Approve</button></form>\
             {}<input type=\"text\" name=\"reason\" placeholder=\"reason\" required>\
             <button class=\"bad\" type=\"submit\">Reject</button></form>",
            form_open(&format!("/quarantine/{}/approve", item.id), csrf),
            form_open(&format!("/quarantine/{}/reject", item.id), csrf),
        ),
        Some(r) => format!(
            "{} by {} ({}) entry {} <span class=\"muted\">{}</span>",
            badge(item.status.as_str()),
            esc(&r.by),
            esc(&r.reason),
            r.override_id,
            esc(&r.versions)
        ),
    };
    vec![
        item.id.to_string(),
        format!(
            "<span class=\"muted\">{}</span> <b>{}</b>@{}",
            esc(&item.ecosystem.to_string()),
            esc(&item.name),
            esc(&item.version)
        ),
        reasons,
        format!(
            "{} <span class=\"muted\">({} request{})</span>",
            who.join(", "),
            item.request_count,
            if item.request_count == 1 { "" } else { "s" }
        ),
        format!("{}<br>{}", date(item.first_seen), date(item.last_seen)),
        decision,
    ]
}

fn lists_section(
    state: &AdminState,
    csrf: &str,
    q: &PageQuery,
    now: DateTime<Utc>,
) -> Result<String, AdminError> {
    let history = q
        .history
        .as_deref()
        .is_some_and(|h| !h.is_empty() && h != "0");
    let list = state.overrides.list(history, now)?;
    let mut out = format!(
        "<h2 id=\"lists\">Allow/deny lists <small>{} entries · show \
         <a href=\"?#lists\">active</a> <a href=\"?history=1#lists\">with history</a></small></h2>\
         {}<select name=\"kind\"><option value=\"allow\">allow</option><option value=\"deny\">deny</option></select>\
         <select name=\"ecosystem\"><option value=\"npm\">npm</option><option value=\"PyPI\">PyPI</option>\
         <option value=\"crates.io\">crates.io</option></select>\
         <input type=\"text\" name=\"name\" placeholder=\"package\" required>\
         <input type=\"text\" name=\"versions\" value=\"*\" placeholder=\"versions (* or range)\" size=\"12\">\
         <input type=\"text\" name=\"reason\" placeholder=\"reason\" required>\
         <input type=\"date\" name=\"expires\" title=\"expires (optional)\">\
         <input type=\"text\" name=\"agent\" placeholder=\"agent (optional: only this one)\" size=\"14\">\
         <button type=\"submit\">Add entry</button></form>",
        list.len(),
        form_open("/overrides", csrf)
    );
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            let status = r.status(now);
            let action = if status == crate::store::overrides::OverrideStatus::Removed {
                format!(
                    "<span class=\"muted\">by {}</span>",
                    esc(r.removed_by.as_deref().unwrap_or(""))
                )
            } else {
                format!(
                    "{}<button type=\"submit\">Remove</button></form>",
                    form_open(&format!("/overrides/{}/remove", r.id), csrf)
                )
            };
            vec![
                r.id.to_string(),
                badge(status.as_str()),
                badge(match r.kind {
                    OverrideKind::Allow => "allow",
                    OverrideKind::Deny => "deny",
                }),
                format!(
                    "<span class=\"muted\">{}</span> <b>{}</b>",
                    esc(&r.ecosystem.to_string()),
                    esc(&r.name)
                ),
                match &r.agent {
                    Some(agent) => format!(
                        "<code>{}</code> <span class=\"muted\">for agent {}</span>",
                        esc(&r.versions),
                        esc(agent)
                    ),
                    None => format!("<code>{}</code>", esc(&r.versions)),
                },
                esc(&r.reason),
                esc(&r.created_by),
                date(r.created_at),
                r.expires.map(date).unwrap_or_else(|| "never".to_owned()),
                action,
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "#", "Status", "Kind", "Package", "Versions", "Reason", "By", "Created", "Expires", "",
        ],
        &rows,
        "no entries",
    ));
    Ok(out)
}

fn agents_section(state: &AdminState, csrf: &str) -> Result<String, AdminError> {
    let agents = state.agents.list()?;
    let mut out = format!(
        "<h2 id=\"agents\">Agents <small>{}</small></h2>\
         {}<input type=\"text\" name=\"name\" placeholder=\"new agent name\" pattern=\"[a-z0-9][a-z0-9_\\-]{{0,62}}\" required>\
         <select name=\"policy\"><option value=\"\">default policy</option><option value=\"default\">default</option>\
         <option value=\"strict\">strict</option></select><button type=\"submit\">Add agent</button></form>",
        agents.len(),
        form_open("/agents", csrf)
    );
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|a| {
            let path = |action: &str| format!("/agents/{}/{action}", a.name);
            let actions = if a.revoked.is_some() {
                String::new()
            } else {
                let toggle = if a.suspended.is_some() {
                    format!(
                        "{}<button type=\"submit\">Resume</button></form>",
                        form_open(&path("resume"), csrf)
                    )
                } else {
                    format!(
                        "{}<input type=\"text\" name=\"reason\" placeholder=\"reason\" required>\
                         <button type=\"submit\">Suspend</button></form>",
                        form_open(&path("suspend"), csrf)
                    )
                };
                format!(
                    "{toggle}{}<button type=\"submit\">Rotate token</button></form>\
                     {}<button class=\"bad\" type=\"submit\">Revoke</button></form>",
                    form_open(&path("rotate"), csrf),
                    form_open(&path("revoke"), csrf)
                )
            };
            let note = match &a.suspended {
                Some(s) => format!("{} ({})", esc(&s.reason), date(s.at)),
                None => String::new(),
            };
            vec![
                format!("<b>{}</b>", esc(&a.name)),
                badge(a.status()),
                esc(a.preset.as_str()),
                date(a.created),
                a.rotated.map(date).unwrap_or_default(),
                note,
                actions,
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "Agent",
            "Status",
            "Policy",
            "Created",
            "Token rotated",
            "Suspended for",
            "",
        ],
        &rows,
        "no agents",
    ));
    Ok(out)
}
