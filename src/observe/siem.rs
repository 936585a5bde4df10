//! The decision stream (`[siem]`): every decision record `depfw serve` appends, as it is
//! appended, to a SIEM: JSON lines to a file that is rotated by size (for a log shipper to
//! follow), or batches of JSON lines POSTed to a collector.
//!
//! A record is handed over in the decision log's order, from inside the log's append
//! ([`crate::store::repo::DecisionRepo::subscribe`]), into a bounded buffer: handing over
//! never waits, so a slow or dead sink never holds up an install. One task drains the
//! buffer in batches and retries a batch the sink refused (with backoff) until the sink
//! takes it, so records reach it in order and none is skipped. When the buffer is full the
//! newest records are dropped: never silently, each is counted
//! (`depfw_siem_dropped_records_total`) and a log line says when dropping starts and how
//! many were dropped once the sink catches up. The backlog is `depfw_siem_backlog_records`.
//!
//! Each line is the record exactly as the log stores it (its `hash`, `prev_hash` and
//! `signature` included), so a receiver can check the records against the chain and
//! `depfw log verify --public-key`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};

use super::metrics::metrics;
use crate::config::observe::{SiemConfig, SiemSink};
use crate::store::decisions::DecisionRecord;
use crate::store::repo::DecisionSubscriber;

/// The first wait after a failed delivery; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long one HTTP delivery may take.
const POST_TIMEOUT: Duration = Duration::from_secs(30);

/// The stream `depfw serve` runs ([`Stream::run`]): every store generation it opens
/// subscribes to it, so a reopened store keeps streaming into the same buffer.
static RUNNING: std::sync::OnceLock<Arc<Stream>> = std::sync::OnceLock::new();

/// The process's stream, once [`Stream::run`] started it.
pub fn running() -> Option<&'static Arc<Stream>> {
    RUNNING.get()
}

/// A running decision stream; [`Stream::subscriber`] feeds it.
pub struct Stream {
    queue: mpsc::Sender<DecisionRecord>,
    /// Records handed over and not yet taken by the sink (queued or in the batch in hand).
    backlog: AtomicU64,
    /// Set while records are being dropped (the buffer was full), for the log lines.
    dropping: AtomicBool,
    /// Records dropped since the last "caught up" log line.
    dropped_unreported: AtomicU64,
    stop: watch::Sender<bool>,
    worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
    describe: String,
}

impl Stream {
    /// Starts the stream `[siem]` configures (on the current Tokio runtime), or `None`
    /// when it names no sink. Fails when the sink cannot be set up (a file that cannot be
    /// opened, an unreadable authorization file).
    pub fn start(config: &SiemConfig) -> anyhow::Result<Option<Arc<Stream>>> {
        let Some(sink) = &config.sink else {
            return Ok(None);
        };
        let (sink, describe) = match sink {
            SiemSink::File {
                path,
                max_bytes,
                keep,
            } => (
                Sink::File(FileSink::open(path, *max_bytes, *keep)?),
                format!("file {}", path.display()),
            ),
            SiemSink::Http {
                url,
                authorization_file,
            } => (
                Sink::Http(HttpSink::new(url, authorization_file.as_deref())?),
                // Never the URL's credentials, if it has any.
                format!(
                    "{}://{}{}",
                    url.scheme(),
                    url.host_str().unwrap_or(""),
                    url.port().map(|p| format!(":{p}")).unwrap_or_default()
                ),
            ),
        };
        let (queue, rx) = mpsc::channel(config.buffer_records.max(1));
        let (stop, stopped) = watch::channel(false);
        let stream = Arc::new(Stream {
            queue,
            backlog: AtomicU64::new(0),
            dropping: AtomicBool::new(false),
            dropped_unreported: AtomicU64::new(0),
            stop,
            worker: Mutex::new(None),
            describe,
        });
        let worker = tokio::spawn(deliver(
            Arc::clone(&stream),
            sink,
            rx,
            config.batch_records.max(1),
            stopped,
        ));
        *stream.worker.lock().unwrap_or_else(|e| e.into_inner()) = Some(worker);
        tracing::info!(sink = %stream.describe, "streaming decision records to the SIEM sink");
        Ok(Some(stream))
    }

    /// [`Stream::start`] as this process's stream ([`running`]); `depfw serve` calls it once.
    pub fn run(config: &SiemConfig) -> anyhow::Result<Option<Arc<Stream>>> {
        let Some(stream) = Stream::start(config)? else {
            return Ok(None);
        };
        if RUNNING.set(Arc::clone(&stream)).is_err() {
            anyhow::bail!("the SIEM stream was started twice in one process");
        }
        Ok(Some(stream))
    }

    /// What the decision log calls with each appended record.
    pub fn subscriber(self: &Arc<Self>) -> DecisionSubscriber {
        let stream = Arc::clone(self);
        Arc::new(move |record: &DecisionRecord| stream.offer(record))
    }

    /// Queues `record` without waiting; a full buffer drops it, counted and logged.
    fn offer(&self, record: &DecisionRecord) {
        // Counted before it is queued: the sink may take it before `try_send` returns.
        let backlog = self
            .backlog
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        match self.queue.try_send(record.clone()) {
            Ok(()) => {
                metrics().siem_backlog.set(gauge(backlog));
            }
            Err(_) => {
                self.backlog.fetch_sub(1, Ordering::Relaxed);
                metrics().siem_dropped.inc();
                self.dropped_unreported.fetch_add(1, Ordering::Relaxed);
                if !self.dropping.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        sink = %self.describe,
                        seq = record.seq,
                        "the SIEM sink is behind and its buffer (siem.buffer-records) is full: \
                         decision records are being dropped from the stream (they stay in the \
                         decision log; depfw_siem_dropped_records_total counts them)"
                    );
                }
            }
        }
    }

    /// Records handed over and not yet taken by the sink.
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Stops taking new batches and delivers what is queued, for at most `within`; what is
    /// left then is counted as dropped and logged.
    pub async fn close(&self, within: Duration) {
        let _ = self.stop.send(true);
        let worker = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(worker) = worker {
            if tokio::time::timeout(within, worker).await.is_err() {
                let left = self.backlog();
                metrics().siem_dropped.inc_by(left);
                tracing::warn!(
                    sink = %self.describe,
                    records = left,
                    "stopping: decision records not delivered to the SIEM sink in time"
                );
            }
        }
    }

    /// The sink took `n` records.
    fn taken(&self, n: usize) {
        let n = n as u64;
        let left = self
            .backlog
            .fetch_sub(n, Ordering::Relaxed)
            .saturating_sub(n);
        let m = metrics();
        m.siem_backlog.set(gauge(left));
        m.siem_sent.inc_by(n);
        if self.dropping.load(Ordering::Relaxed) && left == 0 {
            self.dropping.store(false, Ordering::Relaxed);
            let dropped = self.dropped_unreported.swap(0, Ordering::Relaxed);
            tracing::warn!(
                sink = %self.describe,
                dropped,
                "the SIEM sink caught up; records dropped from the stream meanwhile"
            );
        }
    }
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The delivery task: batches in order, each retried until the sink takes it.
async fn deliver(
    stream: Arc<Stream>,
    mut sink: Sink,
    mut queue: mpsc::Receiver<DecisionRecord>,
    batch_records: usize,
    mut stopped: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(batch_records);
    loop {
        let stopping = *stopped.borrow();
        if batch.is_empty() {
            let first = if stopping {
                // Drain what is queued, then end.
                match queue.try_recv() {
                    Ok(r) => r,
                    Err(_) => return,
                }
            } else {
                tokio::select! {
                    r = queue.recv() => match r {
                        Some(r) => r,
                        None => return,
                    },
                    _ = stopped.changed() => continue,
                }
            };
            batch.push(first);
            while batch.len() < batch_records {
                match queue.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
        }
        let mut backoff = FIRST_BACKOFF;
        let mut failures = 0u32;
        loop {
            match sink.send(&batch).await {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!(sink = %stream.describe, "the SIEM sink takes records again");
                    }
                    stream.taken(batch.len());
                    batch.clear();
                    break;
                }
                Err(e) => {
                    metrics().siem_errors.inc();
                    failures += 1;
                    // The first failure and then one line per backoff ceiling, not per retry.
                    if failures == 1 || backoff == MAX_BACKOFF {
                        tracing::warn!(
                            sink = %stream.describe,
                            error = %format!("{e:#}"),
                            backlog = stream.backlog(),
                            "the SIEM sink did not take a batch of decision records; retrying"
                        );
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        // Stopping: try once more at once, then give up on the wait in `close`.
                        _ = stopped.changed() => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// The records as JSON lines, exactly as the decision log stores them.
fn json_lines(batch: &[DecisionRecord]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(batch.len() * 512);
    for record in batch {
        serde_json::to_writer(&mut out, record)?;
        out.push(b'\n');
    }
    Ok(out)
}

enum Sink {
    File(FileSink),
    Http(HttpSink),
}

impl Sink {
    async fn send(&mut self, batch: &[DecisionRecord]) -> anyhow::Result<()> {
        let body = json_lines(batch)?;
        match self {
            Sink::File(file) => {
                let sink = file.clone();
                tokio::task::spawn_blocking(move || sink.append(&body)).await?
            }
            Sink::Http(http) => http.post(body).await,
        }
    }
}

/// JSON lines appended to a file, rotated by size.
#[derive(Clone)]
struct FileSink {
    path: Arc<PathBuf>,
    max_bytes: u64,
    keep: u32,
}

impl FileSink {
    fn open(path: &Path, max_bytes: u64, keep: u32) -> anyhow::Result<FileSink> {
        let sink = FileSink {
            path: Arc::new(path.to_owned()),
            max_bytes,
            keep,
        };
        sink.file()
            .with_context(|| format!("siem.file: cannot open {}", path.display()))?;
        Ok(sink)
    }

    fn file(&self) -> std::io::Result<std::fs::File> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            // Decision records name agents and packages: not for other OS users.
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        options.open(&*self.path)
    }

    /// Appends `lines`, first rotating the file when they would take it past `max_bytes`
    /// (a file holds at least one batch, however large).
    fn append(&self, lines: &[u8]) -> anyhow::Result<()> {
        let size = std::fs::metadata(&*self.path).map_or(0, |m| m.len());
        if size > 0 && size + lines.len() as u64 > self.max_bytes {
            self.rotate()
                .with_context(|| format!("rotating {}", self.path.display()))?;
        }
        let mut file = self
            .file()
            .with_context(|| format!("opening {}", self.path.display()))?;
        file.write_all(lines)
            .and_then(|()| file.sync_data())
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// `path` becomes `path.1`, `path.1` becomes `path.2`, … up to `path.<keep>`; the
    /// oldest beyond that is removed.
    fn rotate(&self) -> std::io::Result<()> {
        let numbered = |n: u32| {
            let mut name = self.path.as_os_str().to_owned();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        match std::fs::remove_file(numbered(self.keep)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        for n in (1..self.keep).rev() {
            match std::fs::rename(numbered(n), numbered(n + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&*self.path, numbered(1))
    }
}

/// Batches POSTed to a collector.
struct HttpSink {
    client: reqwest::Client,
    url: url::Url,
    authorization: Option<reqwest::header::HeaderValue>,
}

impl HttpSink {
    fn new(url: &url::Url, authorization_file: Option<&Path>) -> anyhow::Result<HttpSink> {
        let authorization = match authorization_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("siem.authorization-file: cannot read {}", path.display())
                })?;
                let line = text.lines().next().unwrap_or("").trim();
                let mut value = reqwest::header::HeaderValue::from_str(line).map_err(|_| {
                    anyhow::anyhow!(
                        "siem.authorization-file: the first line of {} is not a header value",
                        path.display()
                    )
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let client = reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            // A collector that redirects is misconfigured: retrying shows it in the log.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("the SIEM HTTP client")?;
        Ok(HttpSink {
            client,
            url: url.clone(),
            authorization,
        })
    }

    async fn post(&self, body: Vec<u8>) -> anyhow::Result<()> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(body);
        if let Some(value) = &self.authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value.clone());
        }
        let response = request.send().await.context("sending")?;
        let status = response.status();
        if !status.is_success() {
            anyhow::bail!("the collector answered HTTP {status}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_newest_files_and_every_line_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.jsonl");
        let sink = FileSink::open(&path, 100, 2).unwrap();
        for i in 0..10 {
            sink.append(format!("{{\"line\":{i:040}}}\n").as_bytes())
                .unwrap();
        }
        // Two 50-byte lines fill a 100-byte file: the current one and two rotated hold
        // the last six lines.
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        let mut name = path.as_os_str().to_owned();
        name.push(".3");
        assert!(!PathBuf::from(name).exists(), "only `keep` rotated files");
        let lines: Vec<String> = [".2", ".1", ""]
            .iter()
            .flat_map(|suffix| {
                let mut name = path.as_os_str().to_owned();
                name.push(suffix);
                read(Path::new(&name))
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        let expected: Vec<String> = (4..10).map(|i| format!("{{\"line\":{i:040}}}")).collect();
        assert_eq!(lines, expected);
    }
}
