//! The web page at `/admin/`: one server-rendered page with the quarantine queue, the
//! allow/deny lists, agents, the provenance log and feed status, and plain HTML forms.
//!
//! No JavaScript: every action is a form POST answered with a redirect back to the page
//! (POST-redirect-GET), its outcome shown once from the session. Every route but sign-in
//! takes [`SignedIn`], the one gate: the session cookie, and for each POST the session's
//! CSRF token and a same-site origin.

use std::net::SocketAddr;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{ConnectInfo, Form, FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::auth::{self, Flash, Session, SESSION_COOKIE};
use super::html::{esc, layout};
use super::throttle::Attempt;
use super::view::PageQuery;
use super::{AdminError, AdminState, MOUNT};
use crate::agents::Token;
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
struct Fields(Vec<(String, String)>);

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

/// Refuses a form another site sent (the sign-in form's check too).
fn same_site(state: &AdminState, headers: &HeaderMap) -> Result<(), AdminError> {
    if auth::same_origin(headers, &state.public_url) {
        return Ok(());
    }
    tracing::warn!("admin page: cross-site form post refused");
    Err(AdminError::Forbidden(
        "this form was sent from another site".to_owned(),
    ))
}

/// The gate of every page route after sign-in (axum's extractor shape): a page view needs
/// a live session; a form post also needs a same-site origin and that session's CSRF token,
/// checked in that order before the form's operation can run.
pub(crate) struct SignedIn {
    state: AdminState,
    session_id: String,
    session: Session,
    /// The form's fields; none for a page view.
    fields: Fields,
}

/// Why the gate refused a request.
pub(crate) enum Refused {
    /// A page view while signed out: the sign-in form.
    SignIn,
    /// A form post while signed out (or after the session expired): the sign-in form, 401.
    NoSession,
    /// Cross-site, a bad CSRF token or an unreadable form: an error page.
    Error(AdminError),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::SignIn => login_page(StatusCode::OK, None),
            Refused::NoSession => login_page(
                StatusCode::UNAUTHORIZED,
                Some("your session has ended: sign in again"),
            ),
            Refused::Error(e) => error_page(&e),
        }
    }
}

impl FromRequest<AdminState> for SignedIn {
    type Rejection = Refused;

    async fn from_request(request: Request, state: &AdminState) -> Result<Self, Refused> {
        let view = matches!(*request.method(), Method::GET | Method::HEAD);
        if !view {
            same_site(state, request.headers()).map_err(Refused::Error)?;
        }
        let Some((session_id, session)) = state.sessions.get(request.headers()) else {
            return Err(if view {
                Refused::SignIn
            } else {
                Refused::NoSession
            });
        };
        let fields = if view {
            Fields(Vec::new())
        } else {
            let fields =
                form_fields(Form::from_request(request, state).await).map_err(Refused::Error)?;
            if !fields.get("csrf").is_some_and(|t| session.csrf_matches(t)) {
                tracing::warn!("admin page: form without a valid CSRF token refused");
                return Err(Refused::Error(AdminError::Forbidden(
                    "the form's CSRF token is missing or wrong: reload the page and try again"
                        .to_owned(),
                )));
            }
            fields
        };
        Ok(SignedIn {
            state: state.clone(),
            session_id,
            session,
            fields,
        })
    }
}

impl SignedIn {
    /// Recorded as the author of the changes made in this session.
    fn author(&self) -> &str {
        &self.session.author
    }

    /// Stores a form's outcome for the next page view and redirects there (POST-redirect-GET).
    fn finish(self, anchor: &str, outcome: Result<Flash, AdminError>) -> Response {
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
        self.state.sessions.set_flash(&self.session_id, flash);
        redirect(anchor)
    }
}

fn success(text: String) -> Flash {
    Flash {
        ok: true,
        text,
        secret: None,
    }
}

fn done(text: String) -> Result<Flash, AdminError> {
    Ok(success(text))
}

/// The outcome of an operation that made a new agent token: shown once, with how the
/// agent's clients send it in a header (never a URL with the token in it: such a URL ends
/// up in lockfiles).
fn new_token(state: &AdminState, text: String, agent: &str, token: &Token) -> Flash {
    Flash {
        secret: Some((token.expose_secret().to_owned(), state.setup_lines(agent))),
        ..success(text)
    }
}

pub(crate) async fn login(
    State(state): State<AdminState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: FormResult,
) -> Response {
    let peer = state.client_of(peer.map(|Extension(ConnectInfo(addr))| addr), &headers);
    if let Err(e) = same_site(&state, &headers) {
        return error_page(&e);
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
    let correct = token.verify(fields.text("token"));
    match state
        .throttle
        .attempt(peer, correct, std::time::Instant::now())
    {
        Attempt::Pass => {}
        Attempt::Refused(wait) => {
            let text = AdminError::TooManyAttempts(wait).to_string();
            let mut page = login_page(StatusCode::TOO_MANY_REQUESTS, Some(&text));
            super::error::retry_after(&mut page, wait);
            return page;
        }
        Attempt::Wrong => {
            tracing::warn!(peer = ?peer, "admin page: sign-in with a wrong token");
            return login_page(StatusCode::UNAUTHORIZED, Some("wrong admin token"));
        }
    }
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
        Err(e) => return error_page(&AdminError::Internal(e)),
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

pub(crate) async fn logout(signed_in: SignedIn) -> Response {
    signed_in.state.sessions.remove(&signed_in.session_id);
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

pub(crate) async fn approve(Path(id): Path<String>, post: SignedIn) -> Response {
    let outcome = parse_id::<QuarantineId>(&id).and_then(|id| {
        let f = &post.fields;
        // A blank range approves the held version only.
        let scope = f.get("range").filter(|r| !r.trim().is_empty());
        let entry =
            post.state
                .approve(id, scope, f.text("reason"), f.get("expires"), post.author())?;
        done(format!("approved item {id}: allow entry {entry}"))
    });
    post.finish("quarantine", outcome)
}

pub(crate) async fn reject(Path(id): Path<String>, post: SignedIn) -> Response {
    let outcome = parse_id::<QuarantineId>(&id).and_then(|id| {
        let entry = post
            .state
            .reject(id, post.fields.text("reason"), post.author())?;
        done(format!("rejected item {id}: deny entry {entry}"))
    });
    post.finish("quarantine", outcome)
}

fn parse_id<T: std::str::FromStr>(text: &str) -> Result<T, AdminError> {
    text.parse()
        .map_err(|_| AdminError::BadRequest(format!("`{text}` is not an id")))
}

pub(crate) async fn add_override(post: SignedIn) -> Response {
    let f = &post.fields;
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
            by: post.author(),
            agent: f.get("agent"),
        };
        let record = post.state.add_override(kind, text)?;
        done(format!(
            "added {} entry {}: {} {} {}",
            f.text("kind"),
            record.id,
            record.ecosystem,
            record.name,
            record.versions
        ))
    })();
    post.finish("lists", outcome)
}

pub(crate) async fn remove_override(Path(id): Path<String>, post: SignedIn) -> Response {
    let outcome = parse_id::<OverrideId>(&id).and_then(|id| {
        let record = post.state.remove_override(id, post.author())?;
        done(format!(
            "removed entry {id}: {} {}",
            record.name, record.versions
        ))
    });
    post.finish("lists", outcome)
}

pub(crate) async fn add_agent(post: SignedIn) -> Response {
    let f = &post.fields;
    let outcome = post
        .state
        .add_agent(f.text("name").trim(), f.get("policy"))
        .map(|(agent, token)| {
            let text = format!(
                "created agent {} (policy {}): copy its token now, it is shown once",
                agent.name, agent.preset
            );
            new_token(&post.state, text, &agent.name, &token)
        });
    post.finish("agents", outcome)
}

pub(crate) async fn agent_action(
    Path((name, action)): Path<(String, String)>,
    post: SignedIn,
) -> Response {
    let state = &post.state;
    let agents = &state.agents;
    let outcome = match action.as_str() {
        "rotate" => agents.rotate(&name).map(|token| {
            let text = format!("rotated the token of {name}: the old one no longer works; copy the new one now, it is shown once");
            new_token(state, text, &name, &token)
        }),
        "revoke" => agents
            .revoke(&name)
            .map(|_| success(format!("revoked agent {name}"))),
        "suspend" => agents
            .suspend(&name, post.fields.text("reason"))
            .map(|_| success(format!("suspended agent {name}"))),
        "resume" => agents
            .resume(&name)
            .map(|_| success(format!("resumed agent {name}"))),
        other => {
            let e = AdminError::NotFound(format!("no agent action `{other}`"));
            return post.finish("agents", Err(e));
        }
    };
    if outcome.is_ok() {
        tracing::info!(agent = %name, action = %action, by = %post.author(), "admin changed an agent");
    }
    post.finish("agents", outcome.map_err(AdminError::from))
}

pub(crate) async fn index(
    query: Result<Query<PageQuery>, QueryRejection>,
    signed_in: SignedIn,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    let state = &signed_in.state;
    let flash = state.sessions.take_flash(&signed_in.session_id);
    match super::view::render(state, &signed_in.session, flash, &query) {
        Ok(body) => html_response(StatusCode::OK, body),
        Err(e) => error_page(&e),
    }
}
