//! The web page at `/admin/`: one server-rendered page with the quarantine queue, the
//! allow/deny lists, agents, the provenance log and feed status, and plain HTML forms.
//!
//! No JavaScript: every action is a form POST answered with a redirect back to the page
//! (POST-redirect-GET), its outcome shown once from the session. Each POST needs the
//! session cookie, the session's CSRF token and a same-site origin.

use std::net::SocketAddr;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::auth::{self, Flash, Session, SESSION_COOKIE};
use super::html::{esc, layout};
use super::view::PageQuery;
use super::{AdminError, AdminState, MOUNT};
use crate::policy::overrides::OverrideKind;
use crate::store::overrides::{EntryText, OverrideId};
use crate::store::quarantine::QuarantineId;

/// Headers on every page: no caching (tokens, CSRF values), no framing, no external loads.
fn html_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(headers, header::CONTENT_TYPE, "text/html; charset=utf-8");
    set(headers, header::CACHE_CONTROL, "no-store");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // Not `no-referrer`: with it, browsers send `Origin: null` on form posts, which the
    // same-origin check must refuse (found by integration/admin_browser.rs).
    set(headers, header::REFERRER_POLICY, "same-origin");
    response
}

/// A page that only says what went wrong.
fn error_page(error: &AdminError) -> Response {
    let status = error.status();
    if status.is_server_error() {
        tracing::error!(error = ?error.to_string(), "admin page failed");
    }
    let body = format!(
        "<h2>{} {}</h2><p>{}</p><p><a href=\"{MOUNT}\">Back to the admin page</a></p>",
        status.as_u16(),
        esc(status.canonical_reason().unwrap_or("")),
        esc(&error.public_message())
    );
    html_response(status, layout("depfw admin: error", "", &body))
}

fn redirect(anchor: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{MOUNT}#{anchor}")) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

fn login_page(status: StatusCode, message: Option<&str>) -> Response {
    let message = message
        .map(|m| format!("<div class=\"flash bad\">{}</div>", esc(m)))
        .unwrap_or_default();
    let body = format!(
        "<form class=\"login\" method=\"post\" action=\"{MOUNT}/login\">\
         <h2>Sign in</h2>{message}\
         <label for=\"token\">Admin token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
         <label for=\"name\">Your name <span class=\"muted\">(recorded on your changes)</span></label>\
         <input id=\"name\" name=\"name\" type=\"text\" maxlength=\"64\" autocomplete=\"username\">\
         <button class=\"ok\" type=\"submit\">Sign in</button></form>"
    );
    html_response(status, layout("depfw admin: sign in", "", &body))
}

/// Form fields as sent; the first value of a repeated field wins.
pub struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }
}

type FormResult = Result<Form<Vec<(String, String)>>, FormRejection>;

fn form_fields(form: FormResult) -> Result<Fields, AdminError> {
    match form {
        Ok(Form(fields)) => Ok(Fields(fields)),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(AdminError::TooLarge(
            format!("the form is larger than {} bytes", super::MAX_BODY_BYTES),
        )),
        Err(e) => Err(AdminError::BadRequest(format!(
            "invalid form: {}",
            e.body_text()
        ))),
    }
}

/// Why a form post was refused before it could do anything.
enum Refused {
    /// Signed out (or the session expired): the sign-in form, 401.
    NoSession,
    /// Cross-site, a bad CSRF token or an unreadable form: an error page.
    Error(AdminError),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::NoSession => login_page(
                StatusCode::UNAUTHORIZED,
                Some("your session has ended: sign in again"),
            ),
            Refused::Error(e) => error_page(&e),
        }
    }
}

/// The checks every state-changing form passes before anything else: same-site origin,
/// a live session, and that session's CSRF token.
fn authorize(
    state: &AdminState,
    headers: &HeaderMap,
    form: FormResult,
) -> Result<(String, Session, Fields), Refused> {
    if !auth::same_origin(headers, &state.public_url) {
        tracing::warn!("admin page: cross-site form post refused");
        return Err(Refused::Error(AdminError::Forbidden(
            "this form was sent from another site".to_owned(),
        )));
    }
    let (id, session) = state.sessions.get(headers).ok_or(Refused::NoSession)?;
    let fields = form_fields(form).map_err(Refused::Error)?;
    if !fields.get("csrf").is_some_and(|t| session.csrf_matches(t)) {
        tracing::warn!("admin page: form without a valid CSRF token refused");
        return Err(Refused::Error(AdminError::Forbidden(
            "the form's CSRF token is missing or wrong: reload the page and try again".to_owned(),
        )));
    }
    Ok((id, session, fields))
}

/// Runs a form's operation and stores its outcome for the next page view.
fn finish(
    state: &AdminState,
    session_id: &str,
    anchor: &str,
    outcome: Result<Flash, AdminError>,
) -> Response {
    let flash = outcome.unwrap_or_else(|e| {
        if e.status().is_server_error() {
            tracing::error!(error = ?e.to_string(), "admin page action failed");
        }
        Flash {
            ok: false,
            text: e.public_message(),
            secret: None,
        }
    });
    state.sessions.set_flash(session_id, flash);
    redirect(anchor)
}

fn done(text: String) -> Result<Flash, AdminError> {
    Ok(Flash {
        ok: true,
        text,
        secret: None,
    })
}

pub async fn login(
    State(state): State<AdminState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: FormResult,
) -> Response {
    let peer = state.client_of(peer.map(|Extension(ConnectInfo(addr))| addr), &headers);
    if !auth::same_origin(&headers, &state.public_url) {
        return error_page(&AdminError::Forbidden(
            "this form was sent from another site".to_owned(),
        ));
    }
    let fields = match form_fields(form) {
        Ok(f) => f,
        Err(e) => return error_page(&e),
    };
    let Some(token) = &state.admin_token else {
        return error_page(&AdminError::Forbidden(
            "the admin endpoint is disabled".into(),
        ));
    };
    let now = std::time::Instant::now();
    if let Err(wait) = state.throttle.check(peer, now) {
        let text = AdminError::TooManyAttempts(wait).to_string();
        let mut page = login_page(StatusCode::TOO_MANY_REQUESTS, Some(&text));
        super::error::retry_after(&mut page, wait);
        return page;
    }
    if !token.verify(fields.text("token")) {
        tracing::warn!(peer = ?peer, "admin page: sign-in with a wrong token");
        state.throttle.failed(peer, now);
        return login_page(StatusCode::UNAUTHORIZED, Some("wrong admin token"));
    }
    state.throttle.succeeded(peer);
    let name = fields.text("name").trim();
    if name.chars().count() > 64 || name.chars().any(char::is_control) {
        return login_page(
            StatusCode::BAD_REQUEST,
            Some("a name is one line of at most 64 characters"),
        );
    }
    let author = if name.is_empty() {
        super::API_AUTHOR.to_owned()
    } else {
        format!("admin:{name}")
    };
    let id = match state.sessions.create(author.clone()) {
        Ok(id) => id,
        Err(e) => return error_page(&AdminError::Internal(format!("no randomness: {e}"))),
    };
    tracing::info!(author = %author, "admin signed in");
    let mut response = redirect("quarantine");
    // `Secure` when depfw is reached over https (its public URL says so).
    let secure = if state.public_url.scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    set_session_cookie(&mut response, &id, secure);
    response
}

pub async fn logout(
    State(state): State<AdminState>,
    headers: HeaderMap,
    form: FormResult,
) -> Response {
    let (id, _, _) = match authorize(&state, &headers, form) {
        Ok(ok) => ok,
        Err(refused) => return refused.into_response(),
    };
    state.sessions.remove(&id);
    let mut response = redirect("");
    set_session_cookie(&mut response, "", "; Max-Age=0");
    response
}

/// Sets the session cookie (an empty `id` plus `; Max-Age=0` clears it). The cookie is never
/// readable by scripts nor sent cross-site.
fn set_session_cookie(response: &mut Response, id: &str, extra: &str) {
    let cookie = format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path={MOUNT}{extra}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
}

pub async fn approve(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: FormResult,
) -> Response {
    let (sid, session, f) = match authorize(&state, &headers, form) {
        Ok(ok) => ok,
        Err(refused) => return refused.into_response(),
    };
    let outcome = parse_id::<QuarantineId>(&id).and_then(|id| {
        // A blank range approves the held version only.
        let scope = f.get("range").filter(|r| !r.trim().is_empty());
        let entry = state.approve(
            id,
            scope,
            f.text("reason"),
            f.get("expires"),
            &session.author,
        )?;
        done(format!("approved item {id}: allow entry {entry}"))
    });
    finish(&state, &sid, "quarantine", outcome)
}

pub async fn reject(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: FormResult,
) -> Response {
    let (sid, session, f) = match authorize(&state, &headers, form) {
        Ok(ok) => ok,
        Err(refused) => return refused.into_response(),
    };
    let outcome = parse_id::<QuarantineId>(&id).and_then(|id| {
        let entry = state.reject(id, f.text("reason"), &session.author)?;
        done(format!("rejected item {id}: deny entry {entry}"))
    });
    finish(&state, &sid, "quarantine", outcome)
}

fn parse_id<T: std::str::FromStr>(text: &str) -> Result<T, AdminError> {
    text.parse()
        .map_err(|_| AdminError::BadRequest(format!("`{text}` is not an id")))
}

pub async fn add_override(
    State(state): State<AdminState>,
    headers: HeaderMap,
    form: FormResult,
) -> Response {
    let (sid, session, f) = match authorize(&state, &headers, form) {
        Ok(ok) => ok,
        Err(refused) => return refused.into_response(),
    };
    let outcome = (|| {
        let kind = match f.text("kind") {
            "allow" => OverrideKind::Allow,
            "deny" => OverrideKind::Deny,
            other => {
                return Err(AdminError::BadRequest(format!(
                    "`{other}` is not allow or deny"
                )))
            }
        };
        let text = EntryText {
            ecosystem: f.text("ecosystem"),
            name: f.text("name").trim(),
            versions: f.text("versions"),
            reason: f.text("reason"),
            expires: f.get("expires"),
            by: &session.author,
        };
        let record = state.add_override(kind, text)?;
        done(format!(
            "added {} entry {}: {} {} {}",
            f.text("kind"),
            record.id,
            record.ecosystem,
            record.name,
            record.versions
        ))
    })();
    finish(&state, &sid, "lists", outcome)
}

pub async fn remove_override(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: FormResult,
) -> Response {
    let (sid, session, _) = match authorize(&state, &headers, form) {
        Ok(ok) => ok,
        Err(refused) => return refused.into_response(),
    };
    let outcome = parse_id::<OverrideId>(&id).and_then(|id| {
        let record = state.remove_override(id, &session.author)?;
        done(format!(
            "removed entry {id}: {} {}",
            record.name, record.versions
        ))
    });
    finish(&state, &sid, "lists", outcome)
}

pub async fn add_agent(
    State(state): State<AdminState>,
    headers: HeaderMap,
    form: FormResult,
) -> Response {
    let (sid, _, f) = match authorize(&state, &headers, form) {
        Ok(ok) => ok,
        Err(refused) => return refused.into_response(),
    };
    let outcome = state
        .add_agent(f.text("name").trim(), f.get("policy"))
        .map(|(agent, token)| Flash {
            ok: true,
            text: format!(
                "created agent {} (policy {}): copy its token now, it is shown once",
                agent.name, agent.preset
            ),
            secret: Some((token.expose_secret().to_owned(), state.mirror_urls(&token))),
        });
    finish(&state, &sid, "agents", outcome)
}

pub async fn agent_action(
    State(state): State<AdminState>,
    Path((name, action)): Path<(String, String)>,
    headers: HeaderMap,
    form: FormResult,
) -> Response {
    let (sid, session, f) = match authorize(&state, &headers, form) {
        Ok(ok) => ok,
        Err(refused) => return refused.into_response(),
    };
    let agents = &state.agents;
    let outcome = match action.as_str() {
        "rotate" => agents.rotate(&name).map(|token| Flash {
            ok: true,
            text: format!("rotated the token of {name}: the old one no longer works; copy the new one now, it is shown once"),
            secret: Some((token.expose_secret().to_owned(), state.mirror_urls(&token))),
        }),
        "revoke" => agents.revoke(&name).map(|_| Flash {
            ok: true,
            text: format!("revoked agent {name}"),
            secret: None,
        }),
        "suspend" => agents.suspend(&name, f.text("reason")).map(|_| Flash {
            ok: true,
            text: format!("suspended agent {name}"),
            secret: None,
        }),
        "resume" => agents.resume(&name).map(|_| Flash {
            ok: true,
            text: format!("resumed agent {name}"),
            secret: None,
        }),
        other => {
            let e = AdminError::NotFound(format!("no agent action `{other}`"));
            return finish(&state, &sid, "agents", Err(e));
        }
    };
    if outcome.is_ok() {
        tracing::info!(agent = %name, action = %action, by = %session.author, "admin changed an agent");
    }
    finish(&state, &sid, "agents", outcome.map_err(AdminError::from))
}

pub(crate) async fn index(
    State(state): State<AdminState>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let Some((id, session)) = state.sessions.get(&headers) else {
        return login_page(StatusCode::OK, None);
    };
    let query = query.map(|q| q.0).unwrap_or_default();
    let flash = state.sessions.take_flash(&id);
    match super::view::render(&state, &session, flash, &query) {
        Ok(body) => html_response(StatusCode::OK, body),
        Err(e) => error_page(&e),
    }
}
