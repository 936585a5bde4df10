//! How `depfw serve` writes its log (the access line of every request, and everything
//! else it logs) cheaply enough for a cached metadata answer, with the same bytes as
//! `tracing-subscriber`'s own formatting.
//!
//! A cached answer costs tens of microseconds, and formatting and writing its one access
//! line was a large share of that (issue #17): the default field formatter goes through
//! `nu-ansi-term` and three nested `fmt` calls per field even when colours are off, the
//! timestamp through a dozen `write!`s, and every line was one `write` to unbuffered
//! stderr. Here:
//! - [`PlainFields`] formats fields exactly like `DefaultFields` (a test compares the two),
//!   writing names and plain string values directly when there are no colours;
//! - [`UtcMicros`] writes the timestamp `SystemTime` writes, digit by digit;
//! - [`LogWriter`] in `serve` gathers lines for a few milliseconds ([`FLUSH_AFTER`]) and writes
//!   them with one `write`; a writer thread flushes them, woken by the first line after a
//!   flush (not by every line: waking a thread per line cost more than the write it
//!   saved). [`flush`] writes what is pending; `main` calls it before it returns and the
//!   panic hook before the panic message, so no line is lost on exit or reordered with
//!   the message.

use std::fmt;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultFields, DefaultVisitor, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FormatFields, MakeWriter};

/// How long the first line after a flush waits for others before they are written.
pub(crate) const FLUSH_AFTER: Duration = Duration::from_millis(5);

/// Pending bytes past which the line that passes it writes them at once.
const FLUSH_ABOVE: usize = 32 << 10;

/// `DefaultFields`' output, without its detours where no colours are written.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        if writer.has_ansi_escapes() {
            return DefaultFields::new().format_fields(writer, fields);
        }
        let mut v = PlainVisitor {
            writer,
            is_empty: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

/// `DefaultVisitor` without colours: `name=value` pairs separated by one space, values in
/// their `Debug` form. What it does not write itself (the message, errors, `r#` names) it
/// hands to a `DefaultVisitor`.
struct PlainVisitor<'a> {
    writer: Writer<'a>,
    is_empty: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    /// Whether `DefaultVisitor` writes this field as `name=value` (the message has no
    /// name, `r#` is dropped from a raw identifier, `log.` fields are the `log` crate's
    /// metadata and not written).
    fn plain(name: &str) -> bool {
        name != "message" && !name.starts_with("r#") && !name.starts_with("log.")
    }

    fn name(&mut self, field: &Field) -> fmt::Result {
        if self.is_empty {
            self.is_empty = false;
        } else {
            self.writer.write_char(' ')?;
        }
        self.writer.write_str(field.name())?;
        self.writer.write_char('=')
    }

    /// The field as `DefaultVisitor` writes it, padded as this visitor would pad it.
    fn by_default(&mut self, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        let mut v = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut v);
        self.result = v.finish();
        // Every field that reaches here is written (`log.` ones never do).
        self.is_empty = false;
    }
}

/// Whether `str`'s `Debug` form is the text itself in quotes: nothing escaped.
fn debug_is_quoted(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        if Self::plain(field.name()) && debug_is_quoted(value) {
            self.result = self.name(field).and_then(|()| {
                self.writer.write_char('"')?;
                self.writer.write_str(value)?;
                self.writer.write_char('"')
            });
        } else if !field.name().starts_with("log.") {
            self.by_default(|v| v.record_str(field, value));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        self.by_default(|v| v.record_error(field, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        if Self::plain(field.name()) {
            self.result = self
                .name(field)
                .and_then(|()| write!(self.writer, "{value:?}"));
        } else {
            self.by_default(|v| v.record_debug(field, value));
        }
    }
}

/// The timestamp `tracing_subscriber::fmt::time::SystemTime` writes (RFC 3339, UTC,
/// microseconds: `2026-12-03T17:39:14.123456Z`), without `write!`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct UtcMicros;

impl FormatTime for UtcMicros {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => match rfc3339_micros(since) {
                Some(text) => w.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?),
                None => tracing_subscriber::fmt::time::SystemTime.format_time(w),
            },
            // Before 1970: the original's own arithmetic.
            Err(_) => tracing_subscriber::fmt::time::SystemTime.format_time(w),
        }
    }
}

/// `since` the Unix epoch as `YYYY-MM-DDThh:mm:ss.uuuuuuZ`; `None` past year 9999.
fn rfc3339_micros(since: Duration) -> Option<[u8; 27]> {
    let secs = since.as_secs();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Days to a civil date (Howard Hinnant's `civil_from_days`, for days ≥ 0).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    if year > 9999 {
        return None;
    }
    let mut out = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut n: u64| {
        for i in (at..at + width).rev() {
            // A digit: `n % 10` is below 10.
            out[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, rem / 3600);
    put(14, 2, rem % 3600 / 60);
    put(17, 2, rem % 60);
    put(20, 6, u64::from(since.subsec_micros()));
    Some(out)
}

/// Lines waiting to be written, and the writer thread's wakeup.
pub(crate) struct Pending {
    lines: Mutex<Vec<u8>>,
    /// Held while a batch is written (with the buffer the batch was swapped into), so that
    /// batches reach stderr in the order they were taken.
    writing: Mutex<Vec<u8>>,
    wake: Condvar,
}

impl Pending {
    fn new() -> Pending {
        Pending {
            lines: Mutex::new(Vec::with_capacity(FLUSH_ABOVE)),
            writing: Mutex::new(Vec::with_capacity(FLUSH_ABOVE)),
            wake: Condvar::new(),
        }
    }

    /// Adds a line: whether it is the first since the last batch, and whether the pending
    /// lines have passed [`FLUSH_ABOVE`].
    fn push(&self, line: &[u8]) -> (bool, bool) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let first = lines.is_empty();
        lines.extend_from_slice(line);
        (first, lines.len() >= FLUSH_ABOVE)
    }

    /// Hands the pending lines to `out` as one batch, batches in the order they were taken.
    fn write_to(&self, out: impl FnOnce(&[u8])) {
        let mut batch = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        {
            let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::swap(&mut *lines, &mut *batch);
        }
        if !batch.is_empty() {
            out(&batch);
            batch.clear();
        }
    }
}

static PENDING: OnceLock<Pending> = OnceLock::new();

/// Set when the writer thread could not be started: every line is then written at once.
static NO_THREAD: AtomicBool = AtomicBool::new(false);

/// The log's writer: in `depfw serve` (`buffered`), lines gathered in memory and written to
/// stderr in batches (see the module docs), the first use starting the writer thread;
/// otherwise each line written to stderr as it comes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LogWriter {
    pub buffered: bool,
}

/// One line's writer; a line is one `write_all` (`tracing-subscriber` formats a whole line
/// before it writes it).
pub(crate) enum LineSink {
    Buffered(&'static Pending),
    Direct(std::io::Stderr),
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LineSink;

    fn make_writer(&'a self) -> LineSink {
        if self.buffered {
            LineSink::Buffered(pending())
        } else {
            LineSink::Direct(std::io::stderr())
        }
    }
}

fn pending() -> &'static Pending {
    PENDING.get_or_init(|| {
        // The thread's own first `pending()` waits for this initialisation to finish.
        let spawned = std::thread::Builder::new()
            .name("depfw-log".into())
            .spawn(flush_loop);
        if let Err(e) = spawned {
            eprintln!("depfw: log writer thread: {e}; writing every line at once");
            NO_THREAD.store(true, Ordering::Relaxed);
        }
        Pending::new()
    })
}

impl std::io::Write for LineSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let pending = match self {
            LineSink::Buffered(pending) => *pending,
            LineSink::Direct(stderr) => return stderr.write(buf),
        };
        let (first, full) = pending.push(buf);
        if full || NO_THREAD.load(Ordering::Relaxed) {
            write_pending(pending);
        } else if first {
            pending.wake.notify_one();
        }
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            LineSink::Direct(stderr) => stderr.write_all(buf),
            // `write` takes the whole line.
            LineSink::Buffered(_) => self.write(buf).map(drop),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            LineSink::Direct(stderr) => stderr.flush(),
            LineSink::Buffered(_) => Ok(()),
        }
    }
}

/// Writes the pending lines to stderr. A write error is dropped, as `tracing-subscriber`
/// drops it for a direct stderr writer: there is nowhere left to report it.
fn write_pending(pending: &Pending) {
    pending.write_to(|batch| {
        let _ = std::io::stderr().lock().write_all(batch);
    });
}

/// The writer thread: sleeps until a line arrives, waits [`FLUSH_AFTER`] for more, writes.
fn flush_loop() {
    let pending = pending();
    loop {
        {
            let lines = pending.lines.lock().unwrap_or_else(PoisonError::into_inner);
            let _lines = pending
                .wake
                .wait_while(lines, |l| l.is_empty())
                .unwrap_or_else(PoisonError::into_inner);
        }
        std::thread::sleep(FLUSH_AFTER);
        write_pending(pending);
    }
}

/// Writes every line logged so far (nothing when no line was buffered).
pub(crate) fn flush() {
    if let Some(pending) = PENDING.get() {
        write_pending(pending);
    }
}

/// Makes a panic write the pending lines before its message, so that the log stays in
/// order and nothing logged before the panic is lost if it ends the process.
pub(crate) fn flush_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        flush();
        previous(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    #[derive(Debug)]
    struct Failure(Option<Box<Failure>>);
    impl fmt::Display for Failure {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("it failed \"badly\"")
        }
    }
    impl std::error::Error for Failure {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.0.as_deref().map(|e| e as _)
        }
    }

    /// Every kind of field, in spans and events, at several levels.
    fn log_everything() {
        let id = "18c2f-7";
        let span =
            tracing::info_span!("request", id = %id, method = %"GET", path = %"/a/****/npm/x");
        let _entered = span.enter();
        tracing::info!(target: "depfw::access", request_id = id, method = %"GET",
            path = %"/npm/@types%2fnode", status = 200u16, duration_ms = 0.125_f64,
            agent = "-", "request");
        tracing::warn!(
            quoted = "say \"hi\"\n\tnow",
            back = "a\\b",
            unicode = "café ✓",
            empty = "",
            control = "\u{1b}[31mred",
            flag = true,
            n = -3i64,
            big = u64::MAX,
            float = 1e300_f64,
            "message with {} and \"quotes\"",
            "args"
        );
        let inner = tracing::debug_span!("inner", r#type = "raw", depth = 2);
        let _inner = inner.enter();
        let error = Failure(Some(Box::new(Failure(None))));
        tracing::error!(
            error = &error as &(dyn std::error::Error + 'static),
            r#type = "x",
            "failed"
        );
        tracing::info!(debug = ?Some(("preset", 3)), display = %"plain text", "done");
        tracing::info!("only a message");
        tracing::info!(lone = "field");
    }

    fn render<F>(fields: F) -> String
    where
        F: for<'w> FormatFields<'w> + Send + Sync + 'static,
    {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .without_time()
            .fmt_fields(fields)
            .with_writer(out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log_everything);
        let text = out.0.lock().unwrap().clone();
        String::from_utf8(text).unwrap()
    }

    #[test]
    fn plain_fields_write_what_the_default_fields_write() {
        let ours = render(PlainFields);
        let theirs = render(DefaultFields::new());
        assert_eq!(ours, theirs);
        assert!(
            ours.contains(r#"request_id="18c2f-7" method=GET path=/npm/@types%2fnode status=200 duration_ms=0.125 agent="-""#),
            "{ours}"
        );
        assert!(ours.contains("request{id=18c2f-7 method=GET"), "{ours}");
    }

    #[test]
    fn only_strings_with_nothing_to_escape_are_written_directly() {
        assert!(debug_is_quoted("18c2f-7"));
        assert!(debug_is_quoted("/npm/@types%2fnode ok"));
        assert!(!debug_is_quoted("say \"hi\""));
        assert!(!debug_is_quoted("a\\b"));
        assert!(!debug_is_quoted("tab\there"));
        assert!(!debug_is_quoted("café"));
        assert!(!debug_is_quoted("\u{7f}"));
    }

    #[test]
    fn the_timestamp_is_the_one_system_time_writes() {
        let format = |since: Duration| {
            let text = rfc3339_micros(since).unwrap();
            String::from_utf8(text.to_vec()).unwrap()
        };
        for (secs, micros) in [
            (0, 0),
            (951_782_400, 1), // 2000-02-29, a leap day in a century leap year
            (1_796_313_554, 123_456), // 2026-12-03
            (4_107_542_399, 999_999), // 2100-02-28 23:59:59, 2100 is no leap year
            (4_107_542_400, 500_000), // 2100-03-01
            (253_402_300_799, 999_999), // 9999-12-31T23:59:59
        ] {
            let since = Duration::new(secs, micros * 1000);
            let expected = chrono::DateTime::from_timestamp(secs as i64, micros * 1000)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string();
            assert_eq!(format(since), expected, "{secs}.{micros}");
        }
        assert!(rfc3339_micros(Duration::from_secs(253_402_300_800)).is_none());
    }

    #[test]
    fn the_timer_writes_a_timestamp_like_the_default_one() {
        let mut ours = String::new();
        UtcMicros.format_time(&mut Writer::new(&mut ours)).unwrap();
        let mut theirs = String::new();
        tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut Writer::new(&mut theirs))
            .unwrap();
        assert_eq!(ours.len(), theirs.len(), "{ours} / {theirs}");
        // Taken a moment apart: the same up to the minute, unless it turned in between.
        assert!(
            ours[..16] == theirs[..16] || theirs[17..19] == *"00",
            "{ours} / {theirs}"
        );
    }

    #[test]
    fn pending_lines_are_written_as_one_batch_in_order_and_then_gone() {
        let pending = Pending::new();
        assert_eq!(pending.push(b"one\n"), (true, false));
        assert_eq!(pending.push(b"two\n"), (false, false));
        let mut out = Vec::new();
        pending.write_to(|batch| out.push(batch.to_vec()));
        assert_eq!(out, [b"one\ntwo\n".to_vec()]);
        // Nothing pending: nothing written; the next line is a first one again.
        pending.write_to(|batch| out.push(batch.to_vec()));
        assert_eq!(out.len(), 1);
        assert_eq!(pending.push(b"three\n"), (true, false));
        pending.write_to(|batch| out.push(batch.to_vec()));
        assert_eq!(out[1], b"three\n");
    }

    #[test]
    fn a_full_buffer_says_so() {
        let pending = Pending::new();
        let line = vec![b'x'; FLUSH_ABOVE / 2];
        assert_eq!(pending.push(&line), (true, false));
        assert_eq!(pending.push(&line), (false, true));
    }

    #[test]
    fn the_writer_thread_writes_a_line_without_a_flush() {
        let mut sink = LogWriter { buffered: true }.make_writer();
        sink.write_all(b"depfw logging test line\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !pending().lines.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(FLUSH_AFTER);
        }
        sink.write_all(b"depfw logging test line 2\n").unwrap();
        flush();
        assert!(pending().lines.lock().unwrap().is_empty());
    }
}
