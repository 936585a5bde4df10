//! The credentials `depfw serve` presents to private upstreams (`token-file`, or
//! `username` with `password-file`, on `[[upstream.npm.scopes]]`,
//! `[[upstream.pypi.private]]`, `[[upstream.cargo.private]]` and the main upstreams): read once at start from files only depfw's user may read,
//! and attached by origin, so that a token reaches only the registry it was issued for.
//!
//! A redirect to another host drops the header (reqwest removes `Authorization` when the
//! host or port changes), so a registry sending tarballs to a CDN does not hand the CDN its
//! token. The header value is marked sensitive and no type here prints it: a secret never
//! reaches a log line, an error page, a rendered document or the decision log.

use std::fmt;
use std::path::Path;

use anyhow::{bail, Context as _};
use base64::Engine as _;
use reqwest::header::HeaderValue;

use crate::config::{Credential, UpstreamAuth, UpstreamConfig};

/// One origin's `Authorization` header, and the config table it came from.
struct Entry {
    origin: url::Origin,
    header: HeaderValue,
    key: String,
}

/// Every private upstream's credentials, by origin.
#[derive(Default)]
pub(crate) struct Credentials(Vec<Entry>);

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.0.iter().map(|e| e.key.as_str()).collect();
        write!(f, "Credentials(**** from {keys:?})")
    }
}

impl Credentials {
    /// Reads every credential file `cfg` names; the first unusable one is the error (its
    /// key and path, never its content).
    pub(crate) fn load(cfg: &UpstreamConfig) -> anyhow::Result<Credentials> {
        let mut entries = Vec::new();
        for c in cfg.credentials() {
            entries.push(Entry {
                origin: c.origin.clone(),
                header: header(c)?,
                key: c.key.clone(),
            });
        }
        Ok(Credentials(entries))
    }

    /// The `Authorization` header for a request to `url`, if its origin has credentials.
    pub(crate) fn header(&self, url: &str) -> Option<&HeaderValue> {
        self.entry(url).map(|e| &e.header)
    }

    fn entry(&self, url: &str) -> Option<&Entry> {
        let origin = url::Url::parse(url).ok()?.origin();
        self.0.iter().find(|e| e.origin == origin)
    }

    /// What a client is told when the upstream at `url` answered 401 or 403: whether depfw
    /// sent credentials, and which config table to check.
    pub(crate) fn refusal(&self, url: &str, status: u16) -> String {
        match self.entry(url) {
            Some(e) => format!(
                "HTTP {status}: the upstream refused depfw's credentials (`{}`): check the \
                 token or password in its file, and its access to this package",
                e.key
            ),
            None => format!(
                "HTTP {status}: the upstream asks for credentials, and none are configured for \
                 it (`token-file`, or `username` with `password-file`, on its `[upstream.npm]`, \
                 `[upstream.pypi]`, `[upstream.cargo]`, `[[upstream.npm.scopes]]`, \
                 `[[upstream.pypi.private]]` or `[[upstream.cargo.private]]` table)"
            ),
        }
    }
}

/// The header value of one credential, marked sensitive.
fn header(c: &Credential) -> anyhow::Result<HeaderValue> {
    let text = match &c.auth {
        UpstreamAuth::Bearer { token_file } => {
            let token = secret(token_file, &format!("{}.token-file", c.key))?;
            format!("Bearer {token}")
        }
        UpstreamAuth::Verbatim { token_file } => {
            secret(token_file, &format!("{}.token-file", c.key))?
        }
        UpstreamAuth::Basic {
            username,
            password_file,
        } => {
            let password = secret(password_file, &format!("{}.password-file", c.key))?;
            let pair =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            format!("Basic {pair}")
        }
    };
    let mut value = HeaderValue::from_str(&text).map_err(|_| {
        anyhow::anyhow!(
            "{}: the secret holds characters an HTTP header cannot carry",
            c.key
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// The first line of `path`, trimmed; refused when group or others may read the file (as
/// the admin token file is) or when it is empty.
fn secret(path: &Path, key: &str) -> anyhow::Result<String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).with_context(|| format!("{key}: reading {shown}"))?;
    if let Some(mode) = crate::store::signing::exposed_mode(&meta) {
        bail!(
            "{key}: {shown} is readable by group or others (mode {mode:o}); \
             `chmod 600 {shown}` so that only depfw's user can read the secret"
        );
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("{key}: reading {shown}"))?;
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        bail!("{key}: {shown} is empty: its first line is the secret");
    }
    Ok(line.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn config(dir: &Path, mode: u32, body: &str) -> UpstreamConfig {
        let token = dir.join("token");
        std::fs::write(&token, body).unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(mode)).unwrap();
        let text = format!(
            "[[upstream.npm.scopes]]\nscope = \"@corp\"\nregistry = \"https://npm.corp.example/\"\n\
             token-file = \"{}\"\n",
            token.display()
        );
        crate::config::Config::from_toml(&text, "test")
            .unwrap()
            .upstream
    }

    #[test]
    fn a_token_is_sent_to_its_origin_only_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let creds = Credentials::load(&config(dir.path(), 0o600, "s3cret-token\n")).unwrap();
        let sent = creds.header("https://npm.corp.example/@corp%2fx").unwrap();
        assert_eq!(sent.to_str().unwrap(), "Bearer s3cret-token");
        assert!(sent.is_sensitive());
        assert!(creds.header("https://npm.corp.example:8443/x").is_none());
        assert!(creds.header("http://npm.corp.example/x").is_none());
        assert!(creds.header("https://registry.npmjs.org/x").is_none());
        let printed = format!(
            "{creds:?} {} {}",
            creds.refusal("https://npm.corp.example/x", 401),
            creds.refusal("https://other.example/x", 401)
        );
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("upstream.npm.scopes[0]"), "{printed}");
    }

    #[test]
    fn an_exposed_or_empty_secret_file_is_refused_naming_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let err = Credentials::load(&config(dir.path(), 0o644, "s3cret\n")).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("upstream.npm.scopes[0].token-file"), "{text}");
        assert!(text.contains("readable by group or others"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
        let err = Credentials::load(&config(dir.path(), 0o600, "\n")).unwrap_err();
        assert!(format!("{err:#}").contains("is empty"), "{err:#}");
    }
}
