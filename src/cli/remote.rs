//! `depfw agents|overrides|quarantine|log|feeds …` while `depfw serve` runs on the same data
//! directory.
//!
//! sled lets one process open a store, so the server holds it for as long as it runs. To
//! let an operator add an agent or approve a package without stopping the mirror,
//! `depfw serve` announces itself in `<data-dir>/serve.json` (its pid, the loopback URL of
//! its admin API, when it started; mode 0600, removed when it stops), and a command that
//! finds the store held by that server does the same operation through the admin API,
//! authenticated with the admin token the config names (`[admin] token-file`, else
//! `$DEPFW_ADMIN_TOKEN`), and says so on stderr. The token goes only into the
//! `Authorization` header of requests to a loopback address or the admin Unix socket,
//! never through an HTTP proxy or a redirect. A file whose process has exited, or whose
//! URL does not answer, is ignored: the command then opens the store itself and reports
//! the lock as before, saying what it found. `cli::via_server` runs the commands.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::admin::auth::AdminSecret;
use crate::config::Config;
use crate::store::{Store, StoreError};

/// The discovery file's name in the data directory.
pub(crate) const SERVE_FILE: &str = "serve.json";

/// How long one admin request may take (a `log verify` walks the whole chain).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the first contact may take before the server counts as not answering.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What `depfw serve` writes into [`SERVE_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ServeFile {
    pid: u32,
    /// `http://127.0.0.1:7879/admin` or `unix:/path`; `None` when no admin token is
    /// configured, so the server has no admin endpoint.
    admin_url: Option<String>,
    started_at: DateTime<Utc>,
}

/// `depfw serve`'s announcement; dropping it (a clean stop, or a failed start) removes the
/// file if it is still this process's.
#[derive(Debug)]
pub(crate) struct Announced {
    path: PathBuf,
}

impl Announced {
    /// Writes `<data_dir>/serve.json` (mode 0600, replaced atomically). Call once the store
    /// is open, so that a second server that cannot open it never overwrites the file.
    pub(crate) fn write(data_dir: &Path, admin_url: Option<String>) -> anyhow::Result<Announced> {
        let path = data_dir.join(SERVE_FILE);
        let file = ServeFile {
            pid: std::process::id(),
            admin_url,
            started_at: Utc::now(),
        };
        let temp = data_dir.join(format!(".{SERVE_FILE}.{}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            let mut out = options.open(&temp)?;
            out.write_all(&serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?)?;
            out.write_all(b"\n")?;
            out.sync_all()?;
            std::fs::rename(&temp, &path)
        };
        write().with_context(|| format!("writing {}", path.display()))?;
        Ok(Announced { path })
    }
}

impl Drop for Announced {
    fn drop(&mut self) {
        if read_serve_file(&self.path).is_some_and(|f| f.pid == std::process::id()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The URL the CLI reaches a TCP admin listener at: an unspecified address (`0.0.0.0`,
/// `[::]`) through loopback.
pub(crate) fn admin_url_of(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!(
        "http://{}{}",
        SocketAddr::new(ip, addr.port()),
        crate::admin::MOUNT
    )
}

fn read_serve_file(path: &Path) -> Option<ServeFile> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Whether process `pid` exists (signal 0; a process of another user counts).
fn alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return false;
        };
        match rustix::process::test_kill_process(pid) {
            Ok(()) => true,
            Err(e) => e == rustix::io::Errno::PERM,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Where a store-opening command runs.
pub(crate) enum Opened {
    /// The store, opened by this process.
    Local(Store),
    /// The running `depfw serve` that holds it.
    Remote(Server),
}

/// Where an admin command's changes go: the configured backend, opened here, or the running
/// `depfw serve` that holds the sled store.
pub(crate) enum Reached {
    Local(crate::store::repo::Backend),
    Remote(Server),
}

/// The configured backend: PostgreSQL (`store.url`) directly, which every replica shares
/// while it runs; the sled store through [`open`] (its running server's admin API when the
/// server holds it).
pub(crate) fn open_backend(config: &Config) -> anyhow::Result<Reached> {
    if config.store.url.is_some() {
        let backend = crate::store::repo::Backend::open(&config.store, &config.server.data_dir)?;
        return Ok(Reached::Local(backend));
    }
    Ok(match open(config)? {
        Opened::Local(store) => Reached::Local(crate::store::repo::Backend::Sled(store)),
        Opened::Remote(server) => Reached::Remote(server),
    })
}

/// Opens the data directory's store, or, when a running `depfw serve` holds it, connects
/// to that server's admin API (and says so on stderr).
pub(crate) fn open(config: &Config) -> anyhow::Result<Opened> {
    let dir = &config.server.data_dir;
    // A live server holds the lock: go to it at once rather than wait out the open's
    // retries. One that does not answer is left to the lock to judge.
    if let Some(server) = running(config)? {
        return Ok(Opened::Remote(server));
    }
    match Store::open(dir) {
        Ok(store) => Ok(Opened::Local(store)),
        Err(e) if lock_busy(&e) => match find(dir) {
            Found::Answers(server) => server.connect(config).map(Opened::Remote),
            other => Err(anyhow::Error::new(e).context(other.why_not(dir))),
        },
        Err(e) => Err(e.into()),
    }
}

/// Opens the store itself for `depfw feeds status|import|sync`, which asked [`running`]
/// first: when a server that answers holds the lock now, it came up in between, and the
/// error says to run the command again (it then goes through that server).
pub(crate) fn open_here(config: &Config, what: &str) -> anyhow::Result<Store> {
    let dir = &config.server.data_dir;
    match Store::open(dir) {
        Ok(store) => Ok(store),
        Err(e) if lock_busy(&e) => {
            let why = match find(dir) {
                Found::Answers(server) => format!(
                    "the store is held by the running depfw serve (pid {}), which started \
                     while {what} was opening it; run the command again to go through its \
                     admin API at {}",
                    server.pid, server.shown
                ),
                other => other.why_not(dir),
            };
            Err(anyhow::Error::new(e).context(why))
        }
        Err(e) => Err(e.into()),
    }
}

/// `error`, from opening the store here, with why no running server could take the
/// command when the store's lock was held (as [`open`] says it).
pub(crate) fn explain_lock(config: &Config, error: anyhow::Error) -> anyhow::Error {
    let busy = error
        .chain()
        .any(|cause| cause.downcast_ref::<StoreError>().is_some_and(lock_busy));
    if !busy {
        return error;
    }
    let dir = &config.server.data_dir;
    match find(dir) {
        // It came up since: the lock error stands, the next run goes through it.
        Found::Answers(_) => error,
        other => error.context(other.why_not(dir)),
    }
}

/// The running `depfw serve` announced in the data directory, if its admin API answers;
/// connected with the admin token (an error when the config names none).
pub(crate) fn running(config: &Config) -> anyhow::Result<Option<Server>> {
    match find(&config.server.data_dir) {
        Found::Answers(server) => server.connect(config).map(Some),
        _ => Ok(None),
    }
}

fn lock_busy(error: &StoreError) -> bool {
    matches!(error, StoreError::Open { source: sled::Error::Io(e), .. } if crate::store::is_lock_busy(e))
}

/// What the discovery file says.
enum Found {
    None,
    Unreadable,
    Exited(u32),
    NoAdmin(u32),
    Silent(u32, String),
    Answers(Candidate),
}

impl Found {
    /// Why no running server can take the command, after the store's lock was found held.
    fn why_not(&self, dir: &Path) -> String {
        let file = dir.join(SERVE_FILE);
        let file = file.display();
        let store = dir.join("store");
        let store = store.display();
        let who =
            format!("another process holds the lock on {store}; find it with `fuser -v {store}/*`");
        match self {
            Found::None => format!(
                "{who}. No depfw serve announced itself in {file} (a depfw serve of this \
                 version writes it while it runs), so this command cannot act through one"
            ),
            Found::Unreadable => {
                format!("{who}. {file} cannot be read as a depfw serve announcement")
            }
            Found::Exited(pid) => format!(
                "{who}. {file} is stale: it names depfw serve pid {pid}, which is no longer \
                 running (it did not exit cleanly)"
            ),
            Found::NoAdmin(pid) => format!(
                "the store is held by depfw serve (pid {pid}), which has no admin endpoint \
                 (it was started without an admin token), so this command cannot act through \
                 it. Give depfw serve an admin token (`[admin] token-file`, or \
                 $DEPFW_ADMIN_TOKEN) when it next starts; until then use the admin page"
            ),
            Found::Silent(pid, url) => format!(
                "{who}. {file} names depfw serve pid {pid}, whose admin API at {url} does not \
                 answer"
            ),
            Found::Answers(c) => format!("depfw serve at {}", c.shown),
        }
    }
}

/// A running server whose admin API answered.
struct Candidate {
    pid: u32,
    /// The URL as the operator should read it.
    shown: String,
    client: Client,
}

/// Reads the discovery file and asks whether its server answers.
fn find(dir: &Path) -> Found {
    let path = dir.join(SERVE_FILE);
    if !path.exists() {
        return Found::None;
    }
    let Some(file) = read_serve_file(&path) else {
        return Found::Unreadable;
    };
    if !alive(file.pid) {
        return Found::Exited(file.pid);
    }
    let Some(url) = file.admin_url else {
        return Found::NoAdmin(file.pid);
    };
    match Client::new(&url).and_then(|client| client.answers().map(|yes| (client, yes))) {
        Ok((client, true)) => Found::Answers(Candidate {
            pid: file.pid,
            shown: url,
            client,
        }),
        _ => Found::Silent(file.pid, url),
    }
}

impl Candidate {
    /// With the admin token the config names; says on stderr where the command goes.
    fn connect(self, config: &Config) -> anyhow::Result<Server> {
        let pid = self.pid;
        let url = self.shown;
        let missing = || {
            anyhow::anyhow!(
                "the store is held by the running depfw serve (pid {pid}), and this command \
                 acts through its admin API at {url}, which needs the admin token: set \
                 ${} to the token depfw serve was started with, or name its file with \
                 `[admin] token-file` in the config passed with --config",
                config.admin.token_env
            )
        };
        let secret = AdminSecret::from_config(&config.admin)?.ok_or_else(missing)?;
        eprintln!("depfw: the store is held by depfw serve (pid {pid}): going through its admin API at {url}");
        Ok(Server {
            client: self.client,
            url,
            secret,
            token_env: config.admin.token_env.clone(),
        })
    }
}

/// The HTTP client for one admin base URL: loopback TCP or the admin Unix socket, no
/// proxy, no redirects.
struct Client {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    /// The API base, e.g. `http://127.0.0.1:7879/admin/api/`.
    api: url::Url,
}

impl Client {
    fn new(admin_url: &str) -> anyhow::Result<Client> {
        let builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT);
        let (builder, base) = match admin_url.strip_prefix("unix:") {
            #[cfg(unix)]
            Some(socket) => (
                builder.unix_socket(PathBuf::from(socket)),
                format!("http://localhost{}", crate::admin::MOUNT),
            ),
            #[cfg(not(unix))]
            Some(_) => anyhow::bail!("admin Unix sockets need a Unix system"),
            None => (builder, admin_url.to_owned()),
        };
        let api = url::Url::parse(&format!("{}/api/", base.trim_end_matches('/')))
            .with_context(|| format!("the admin URL `{admin_url}` in {SERVE_FILE}"))?;
        let loopback = match api.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => admin_url.starts_with("unix:") && d == "localhost",
            None => false,
        };
        anyhow::ensure!(
            loopback && api.scheme() == "http",
            "the admin URL `{admin_url}` in {SERVE_FILE} is not a loopback address: the \
             admin token is only sent over loopback (give `admin.listen` a loopback address \
             or a Unix socket, or call the admin API yourself)"
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let http = builder.build().context("building the HTTP client")?;
        Ok(Client { runtime, http, api })
    }

    /// Whether anything answers HTTP there (without the token: a 401 counts).
    fn answers(&self) -> anyhow::Result<bool> {
        let url = self.api.join("openapi.json")?;
        let request = self.http.get(url).timeout(CONNECT_TIMEOUT);
        Ok(self
            .runtime
            .block_on(async { request.send().await })
            .is_ok())
    }
}

/// A running `depfw serve`'s admin API, with the admin token.
pub(crate) struct Server {
    client: Client,
    /// For messages.
    url: String,
    secret: AdminSecret,
    /// `[admin] token-env`, for messages.
    token_env: String,
}

impl Server {
    /// `GET api/<segments>?<query>`, as `T`.
    pub(crate) fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        let url = self.url_of(segments, query)?;
        self.send(self.client.http.get(url))?.json()
    }

    /// `POST api/<segments>` with a JSON body, as `T`.
    pub(crate) fn post<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &Value,
    ) -> anyhow::Result<T> {
        let url = self.url_of(segments, &[])?;
        self.send(self.client.http.post(url).json(body))?.json()
    }

    /// `POST api/<segments>?<query>` with `body` as `application/octet-stream`, as `T`.
    pub(crate) fn post_bytes<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        body: Vec<u8>,
    ) -> anyhow::Result<T> {
        let url = self.url_of(segments, query)?;
        let request = self
            .client
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        self.send(request)?.json()
    }

    /// `DELETE api/<segments>`, as `T`.
    pub(crate) fn delete<T: DeserializeOwned>(&self, segments: &[&str]) -> anyhow::Result<T> {
        let url = self.url_of(segments, &[])?;
        self.send(self.client.http.delete(url))?.json()
    }

    /// `GET api/<segments>?<query>`: the body's bytes.
    pub(crate) fn get_bytes(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> anyhow::Result<Vec<u8>> {
        let url = self.url_of(segments, query)?;
        Ok(self.send(self.client.http.get(url))?.bytes)
    }

    /// The URL of an API route, each segment percent-encoded (an agent name cannot reach
    /// another route).
    fn url_of(&self, segments: &[&str], query: &[(&str, String)]) -> anyhow::Result<url::Url> {
        let mut url = self.client.api.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| anyhow::anyhow!("the admin URL {} has no path", self.url))?;
            path.pop_if_empty();
            for segment in segments {
                path.push(segment);
            }
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        let request = request.bearer_auth(self.secret.expose());
        let url = &self.url;
        let answer = self.client.runtime.block_on(async {
            let response = request.send().await?;
            let status = response.status();
            let retry = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, retry, bytes.to_vec()))
        });
        let (status, retry, bytes) = answer.map_err(|e| {
            anyhow::anyhow!(
                "the running depfw serve's admin API at {url} did not answer: {}",
                without_url(&e)
            )
        })?;
        if status.is_success() {
            return Ok(Answer { bytes });
        }
        let message = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_owned());
        let from = &self.secret.from;
        Err(match status.as_u16() {
            401 => anyhow::anyhow!(
                "the running depfw serve at {url} refused the admin token from {from} \
                 ({message}): use the token depfw serve was started with (`[admin] token-file` \
                 or ${})",
                self.token_env
            ),
            429 => anyhow::anyhow!(
                "the running depfw serve at {url} refuses admin tokens from this address for \
                 now after too many wrong ones; try again in {} s with the right token",
                retry.as_deref().unwrap_or("a few")
            ),
            _ => anyhow::anyhow!("{message}"),
        })
    }
}

/// A reqwest error's text without the URL it repeats.
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(&format!(" ({url})"), "");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// A successful answer's body.
struct Answer {
    bytes: Vec<u8>,
}

impl Answer {
    fn json<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_json::from_slice(&self.bytes)
            .context("the running depfw serve answered with JSON this depfw does not read (another version?)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_admin_address_is_reached_over_loopback() {
        assert_eq!(
            admin_url_of("0.0.0.0:7879".parse().unwrap()),
            "http://127.0.0.1:7879/admin"
        );
        assert_eq!(
            admin_url_of("[::]:7879".parse().unwrap()),
            "http://[::1]:7879/admin"
        );
        assert_eq!(
            admin_url_of("127.0.0.1:9".parse().unwrap()),
            "http://127.0.0.1:9/admin"
        );
    }

    #[test]
    fn the_token_is_only_sent_over_loopback() {
        assert!(Client::new("http://127.0.0.1:7879/admin").is_ok());
        assert!(Client::new("http://[::1]:7879/admin").is_ok());
        for url in [
            "http://10.0.0.5:7879/admin",
            "http://admin.example/admin",
            "https://127.0.0.1:7879/admin",
        ] {
            let e = Client::new(url)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("not a loopback address"), "{url}: {e}");
        }
    }

    #[test]
    fn the_announcement_is_private_and_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let announced =
            Announced::write(dir.path(), Some("http://127.0.0.1:1/admin".into())).unwrap();
        let path = dir.path().join(SERVE_FILE);
        let file = read_serve_file(&path).unwrap();
        assert_eq!(file.pid, std::process::id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        drop(announced);
        assert!(!path.exists());
    }
}
