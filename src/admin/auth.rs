//! Who may use the admin endpoint: the admin token, and browser sessions made from it.
//!
//! API clients send the token on every request (`Authorization: Bearer`). The web page asks
//! for it once on a login form and then uses a session cookie (`HttpOnly; SameSite=Strict;
//! Path=/admin`) plus a per-session CSRF token in every form, and refuses POSTs whose
//! `Origin` or `Sec-Fetch-Site` says another site sent them. The token is compared by hash
//! in constant time and never logged: [`AdminToken`] has no `Display` and a redacted `Debug`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::AdminConfig;
use crate::store::repo::{SessionRecord, SessionRepo};

/// Shortest admin token accepted.
pub(crate) const MIN_TOKEN_CHARS: usize = 16;
/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "depfw_admin";
/// How long a browser session lasts without use.
const SESSION_IDLE: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at once; the least recently used goes first.
const MAX_SESSIONS: usize = 64;

/// The configured admin token, kept as its SHA-256 only.
#[derive(Clone)]
pub struct AdminToken {
    sha256: [u8; 32],
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(****)")
    }
}

/// Why the configured admin token cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    #[error("cannot read the admin token file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the admin token from {from} is shorter than {MIN_TOKEN_CHARS} characters")]
    TooShort { from: String },
    #[error("the admin token from {from} contains whitespace or control characters")]
    BadCharacters { from: String },
    #[error(
        "the admin token file {path} can be read or written by other OS users (mode {mode:o}): \
         run `chmod 600 {path}` (owned by the user depfw runs as) and start depfw again"
    )]
    Exposed { path: String, mode: u32 },
}

impl AdminToken {
    /// A token from its text; at least [`MIN_TOKEN_CHARS`] printable characters.
    pub fn new(secret: &str, from: &str) -> Result<AdminToken, AdminTokenError> {
        if secret.chars().count() < MIN_TOKEN_CHARS {
            return Err(AdminTokenError::TooShort {
                from: from.to_owned(),
            });
        }
        if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AdminTokenError::BadCharacters {
                from: from.to_owned(),
            });
        }
        Ok(AdminToken {
            sha256: Sha256::digest(secret.as_bytes()).into(),
        })
    }

    /// The token `[admin]` points at: the first line of `token-file` if set, else the
    /// `token-env` variable. `None` (the endpoint stays off) when neither gives one.
    pub fn from_config(config: &AdminConfig) -> Result<Option<AdminToken>, AdminTokenError> {
        let Some(secret) = AdminSecret::from_config(config)? else {
            return Ok(None);
        };
        if secret.from_env {
            // Allowed (tests, containers whose only process is depfw), but another process
            // of this OS user reads it from /proc/<pid>/environ.
            tracing::warn!(
                "the admin token comes from ${}: every process of this OS user can read \
                 it; put it in `[admin] token-file` (mode 600) instead",
                config.token_env
            );
        }
        AdminToken::new(&secret.text, &secret.from).map(Some)
    }

    /// Constant-time check of a presented token (hashing first hides its length too).
    pub fn verify(&self, presented: &str) -> bool {
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.sha256.ct_eq(&hash).into()
    }
}

/// The admin token's text as `[admin]` configures it, for the server to hash and for the
/// CLI to present to a running server (`cli::remote`). No `Display`, a redacted `Debug`.
pub(crate) struct AdminSecret {
    text: String,
    /// The file or `$VARIABLE` it came from, for messages.
    pub(crate) from: String,
    from_env: bool,
}

impl fmt::Debug for AdminSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AdminSecret(**** from {})", self.from)
    }
}

impl AdminSecret {
    /// The first line of `token-file` if set (refused when other OS users can read it),
    /// else the `token-env` variable; `None` when neither gives one.
    pub(crate) fn from_config(
        config: &AdminConfig,
    ) -> Result<Option<AdminSecret>, AdminTokenError> {
        if let Some(path) = &config.token_file {
            let read_error = |source| AdminTokenError::Read {
                path: path.display().to_string(),
                source,
            };
            refuse_exposed(path, &std::fs::metadata(path).map_err(read_error)?)?;
            let text = std::fs::read_to_string(path).map_err(read_error)?;
            let line = text.lines().next().unwrap_or("").trim();
            return Ok(Some(AdminSecret {
                text: line.to_owned(),
                from: path.display().to_string(),
                from_env: false,
            }));
        }
        match std::env::var(&config.token_env) {
            Ok(value) if !value.trim().is_empty() => Ok(Some(AdminSecret {
                text: value.trim().to_owned(),
                from: format!("${}", config.token_env),
                from_env: true,
            })),
            _ => Ok(None),
        }
    }

    /// The token itself: only for an `Authorization` header.
    pub(crate) fn expose(&self) -> &str {
        &self.text
    }
}

/// A token file that group or others can read or write is refused (Windows has no mode
/// bits: its ACLs are the operator's to set).
fn refuse_exposed(path: &std::path::Path, meta: &std::fs::Metadata) -> Result<(), AdminTokenError> {
    match crate::store::signing::exposed_mode(meta) {
        Some(mode) => Err(AdminTokenError::Exposed {
            path: path.display().to_string(),
            mode,
        }),
        None => Ok(()),
    }
}

/// The bearer token of a request, if it has one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A value of the named cookie.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether a state-changing browser request comes from this site: its `Origin` is the
/// request's `Host` or depfw's public URL (behind a reverse proxy that rewrites `Host`).
/// A browser sends `Origin` on every POST and `Sec-Fetch-Site` on most; a request with
/// neither (curl, an old browser) still needs the session cookie and the CSRF token.
pub(crate) fn same_origin(headers: &HeaderMap, public_url: &url::Url) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.to_str(), Ok("same-origin" | "none")) {
            return false;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if origin.eq_ignore_ascii_case(&public_url.origin().ascii_serialization()) {
        return true;
    }
    let Some(Ok(host)) = headers.get(header::HOST).map(|h| h.to_str()) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host))
}

/// A random 32-byte value in hex (session ids, CSRF tokens).
fn random_hex() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// Recorded as the author of every change made in this session (`admin:<name>`).
    pub author: String,
    pub csrf: String,
    /// A message for the next page view: the outcome of the last form (and a new agent
    /// token, shown once). Kept server-side so that a token never goes in a URL.
    pub flash: Option<Flash>,
    last_used: Instant,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Flash {
    pub ok: bool,
    pub text: String,
    /// A secret to show once (an agent token) with how to use it (lines without the secret).
    pub secret: Option<(String, Vec<String>)>,
}

impl Session {
    /// Constant-time check of a form's CSRF token.
    pub(crate) fn csrf_matches(&self, presented: &str) -> bool {
        self.csrf.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

/// Browser sessions: in memory on the embedded store (a restart signs everyone out), or in
/// the database on PostgreSQL ([`SessionRepo`]), so that any replica behind a load
/// balancer knows a session another one started.
#[derive(Clone, Default)]
pub(crate) struct Sessions {
    inner: Arc<Mutex<HashMap<String, Session>>>,
    shared: Option<Arc<dyn SessionRepo>>,
}

impl Sessions {
    /// Sessions kept in `repo`.
    pub(crate) fn shared(repo: Arc<dyn SessionRepo>) -> Sessions {
        Sessions {
            inner: Arc::default(),
            shared: Some(repo),
        }
    }

    /// Starts a session; returns its id (the cookie value).
    pub(crate) fn create(&self, author: String) -> Result<String, String> {
        let id = random_hex().map_err(|e| format!("no randomness: {e}"))?;
        let csrf = random_hex().map_err(|e| format!("no randomness: {e}"))?;
        if let Some(repo) = &self.shared {
            let record = SessionRecord {
                author,
                csrf,
                flash: None,
            };
            repo.create(&id, &record)
                .map_err(|e| format!("cannot store the session: {e}"))?;
            return Ok(id);
        }
        let session = Session {
            author,
            csrf,
            flash: None,
            last_used: Instant::now(),
        };
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.last_used.elapsed() < SESSION_IDLE);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), session);
        Ok(id)
    }

    /// The session of a request's cookie, refreshed; `None` if absent or expired (or the
    /// database cannot say: signed out rather than signed in).
    pub(crate) fn get(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = cookie(headers, SESSION_COOKIE)?;
        if let Some(repo) = &self.shared {
            let record = repo
                .touch(id)
                .map_err(|e| tracing::warn!("admin session lookup failed: {e}"))
                .ok()??;
            let flash = record
                .flash
                .as_deref()
                .and_then(|f| serde_json::from_str(f).ok());
            let session = Session {
                author: record.author,
                csrf: record.csrf,
                flash,
                last_used: Instant::now(),
            };
            return Some((id.to_owned(), session));
        }
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let session = map.get_mut(id)?;
        if session.last_used.elapsed() >= SESSION_IDLE {
            map.remove(id);
            return None;
        }
        session.last_used = Instant::now();
        Some((id.to_owned(), session.clone()))
    }

    pub(crate) fn set_flash(&self, id: &str, flash: Flash) {
        if let Some(repo) = &self.shared {
            let text = serde_json::to_string(&flash).ok();
            if let Err(e) = repo.set_flash(id, text) {
                tracing::warn!("admin session message not stored: {e}");
            }
            return;
        }
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(session) = map.get_mut(id) {
            session.flash = Some(flash);
        }
    }

    pub(crate) fn take_flash(&self, id: &str) -> Option<Flash> {
        if let Some(repo) = &self.shared {
            let text = repo
                .take_flash(id)
                .map_err(|e| tracing::warn!("admin session message lost: {e}"))
                .ok()??;
            return serde_json::from_str(&text).ok();
        }
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.get_mut(id).and_then(|s| s.flash.take())
    }

    pub(crate) fn remove(&self, id: &str) {
        if let Some(repo) = &self.shared {
            if let Err(e) = repo.remove(id) {
                tracing::warn!("admin session not removed: {e}");
            }
            return;
        }
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn token_checks() {
        assert!(AdminToken::new("short", "test").is_err());
        assert!(AdminToken::new("has a space in it!!", "test").is_err());
        let token = AdminToken::new("correct-horse-battery", "test").unwrap();
        assert!(token.verify("correct-horse-battery"));
        assert!(!token.verify("correct-horse-batterz"));
        assert!(!token.verify(""));
        assert_eq!(format!("{token:?}"), "AdminToken(****)");
    }

    #[test]
    fn headers_parse() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("x=1; depfw_admin=s1; y=2"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("s1"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn origin_check() {
        let public: url::Url = "https://depfw.example/".parse().unwrap();
        let same_origin = |h: &HeaderMap| same_origin(h, &public);
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7878"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:7878"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:7878"),
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://depfw.example"),
        );
        assert!(same_origin(&h), "the public URL's origin behind a proxy");
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:7878"),
        );
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn token_from_file_or_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "file-token-0123456789\nignored\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = AdminToken::from_config(&AdminConfig {
                token_file: Some(path.clone()),
                ..Config::default().admin
            })
            .unwrap_err()
            .to_string();
            assert!(err.contains("chmod 600") && err.contains("644"), "{err}");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let mut config = AdminConfig {
            listen: Config::default().admin.listen,
            token_file: Some(path.clone()),
            token_env: "DEPFW_TEST_ADMIN_TOKEN_UNSET".to_owned(),
            trusted_proxies: Vec::new(),
        };
        let token = AdminToken::from_config(&config).unwrap().unwrap();
        assert!(token.verify("file-token-0123456789"));
        std::fs::write(&path, "short\n").unwrap();
        let err = AdminToken::from_config(&config).unwrap_err().to_string();
        assert!(err.contains("shorter") && !err.contains("short\n"), "{err}");
        config.token_file = Some(dir.path().join("missing"));
        assert!(AdminToken::from_config(&config).is_err());

        config.token_file = None;
        assert!(AdminToken::from_config(&config).unwrap().is_none());
        config.token_env = "DEPFW_TEST_ADMIN_TOKEN_SET".to_owned();
        std::env::set_var(&config.token_env, "env-token-0123456789");
        let token = AdminToken::from_config(&config).unwrap().unwrap();
        assert!(token.verify("env-token-0123456789"));
        std::env::remove_var(&config.token_env);
    }
}
