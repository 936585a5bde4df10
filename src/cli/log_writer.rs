//! Where `depfw serve` writes its log: stderr, through one writer thread that takes the lines
//! every request thread has formatted and writes them in as few `write` calls as it can.
//!
//! `depfw serve` logs one access line per request (`depfw::access`, at info by default).
//! Written straight to stderr, which is unbuffered, that was one `write` system call per
//! request, made on a runtime worker while it holds stderr's lock: about a twentieth of
//! the CPU a cached metadata request cost (perf, issue #17). Here a request thread only
//! appends its line to a shared buffer; the writer thread, woken only when the buffer goes
//! from empty to not empty, writes whatever has gathered by then, so under load one write
//! carries many lines and an idle server still writes each line at once. The lines and
//! their order are unchanged. The buffer is bounded ([`MAX_PENDING`]): past it a request
//! thread waits for the writer, as it used to wait for stderr. [`flush`] waits until every
//! line is written; `depfw` calls it before it exits.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use tracing_subscriber::fmt::MakeWriter;

/// Bytes of formatted lines that may wait for the writer thread before a request thread
/// waits for it instead of adding more (a log destination that stopped taking writes must
/// not grow memory without bound).
const MAX_PENDING: usize = 1 << 20;

/// The writer thread of this process, once [`Stderr::batched`] started it.
static WRITER: OnceLock<Batched> = OnceLock::new();

/// A [`MakeWriter`] that hands lines to the writer thread.
#[derive(Clone)]
pub(crate) struct Batched {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when lines arrive while the writer thread waits for some.
    arrived: Condvar,
    /// Signalled when the writer thread has written a batch.
    written: Condvar,
}

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    /// The writer thread is writing a batch it took out of `pending`.
    writing: bool,
    /// The writer thread waits on `arrived`.
    waiting: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, line: &[u8]) {
        let mut state = self.lock();
        while state.pending.len() >= MAX_PENDING {
            state = self.written.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.pending.extend_from_slice(line);
        let wake = state.waiting;
        drop(state);
        if wake {
            self.arrived.notify_one();
        }
    }

    /// The writer thread: writes what has gathered, batch after batch, to `out`.
    fn run(&self, out: &mut dyn Write) {
        let mut spare = Vec::new();
        loop {
            let mut state = self.lock();
            while state.pending.is_empty() {
                state.waiting = true;
                state = self.arrived.wait(state).unwrap_or_else(|e| e.into_inner());
                state.waiting = false;
            }
            // The buffer written last time, emptied, takes the new lines: no allocation
            // once both have grown to the load's batch size.
            let batch = std::mem::replace(&mut state.pending, std::mem::take(&mut spare));
            state.writing = true;
            drop(state);
            // Nowhere to report a failed log write to: the line is dropped, as a direct
            // write to stderr would have dropped it.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            spare = batch;
            spare.clear();
            self.lock().writing = false;
            self.written.notify_all();
        }
    }

    fn flush(&self) {
        let mut state = self.lock();
        while !state.pending.is_empty() || state.writing {
            state = self.written.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Batched {
    /// A writer thread writing to `out`; `None` when the thread cannot be started.
    fn start(mut out: impl Write + Send + 'static) -> Option<Batched> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            arrived: Condvar::new(),
            written: Condvar::new(),
        });
        let theirs = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("depfw-log".to_owned())
            .spawn(move || theirs.run(&mut out))
            .ok()?;
        Some(Batched { shared })
    }
}

/// Where the log goes: stderr behind the writer thread (`depfw serve`), or stderr itself
/// (one-shot commands, whose few lines gain nothing from a thread).
#[derive(Clone)]
pub(crate) enum Stderr {
    Batched(Batched),
    Direct,
}

impl Stderr {
    /// The process's stderr behind a writer thread, started on the first call; stderr
    /// itself when no thread can be started.
    pub(crate) fn batched() -> Stderr {
        if let Some(w) = WRITER.get() {
            return Stderr::Batched(w.clone());
        }
        match Batched::start(io::stderr()) {
            Some(started) => Stderr::Batched(WRITER.get_or_init(|| started).clone()),
            None => Stderr::Direct,
        }
    }
}

/// A [`Stderr`]'s writer for one event.
pub(crate) enum StderrLine<'a> {
    Batched(Line<'a>),
    Direct(io::Stderr),
}

impl Write for StderrLine<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            StderrLine::Batched(l) => l.write(buf),
            StderrLine::Direct(e) => e.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            StderrLine::Batched(l) => l.write_all(buf),
            StderrLine::Direct(e) => e.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            StderrLine::Batched(l) => l.flush(),
            StderrLine::Direct(e) => e.flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = StderrLine<'a>;

    fn make_writer(&'a self) -> StderrLine<'a> {
        match self {
            Stderr::Batched(b) => StderrLine::Batched(b.make_writer()),
            Stderr::Direct => StderrLine::Direct(io::stderr()),
        }
    }
}

/// Waits until every line handed to the writer thread is written (a no-op when none was
/// started).
pub(crate) fn flush() {
    if let Some(w) = WRITER.get() {
        w.shared.flush();
    }
}

/// One formatted event's bytes on their way to the writer thread.
pub(crate) struct Line<'a>(&'a Shared);

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Batched {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line(&self.shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A destination the test reads back, counting the writes it was given.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut s = self.0.lock().unwrap();
            s.0.extend_from_slice(buf);
            s.1 += 1;
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_arrives_whole_and_in_order_per_thread() {
        let sink = Sink::default();
        let batched = Batched::start(sink.clone()).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let batched = batched.clone();
                s.spawn(move || {
                    for i in 0..2000 {
                        let mut w = batched.make_writer();
                        w.write_all(format!("thread {t} line {i}\n").as_bytes())
                            .unwrap();
                    }
                });
            }
        });
        batched.shared.flush();
        let (bytes, writes) = sink.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8000);
        for t in 0..4 {
            let own: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .collect();
            let expected: Vec<String> = (0..2000).map(|i| format!("thread {t} line {i}")).collect();
            assert_eq!(own, expected);
        }
        // Counted, not timed: lines that gathered while a batch was written went out together.
        assert!(writes <= 8000, "{writes} writes");
    }

    #[test]
    fn a_line_from_an_idle_server_is_written_without_waiting_for_more() {
        let sink = Sink::default();
        let batched = Batched::start(sink.clone()).unwrap();
        batched.make_writer().write_all(b"one line\n").unwrap();
        batched.shared.flush();
        assert_eq!(sink.0.lock().unwrap().0, b"one line\n");
        batched.make_writer().write_all(b"another\n").unwrap();
        batched.shared.flush();
        assert_eq!(sink.0.lock().unwrap().0, b"one line\nanother\n");
    }

    #[test]
    fn a_stalled_destination_bounds_what_waits() {
        // A destination that takes nothing until released: lines beyond the bound wait.
        struct Gate(Arc<(Mutex<bool>, Condvar)>, Sink);
        impl Write for Gate {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let (open, cv) = &*self.0;
                let mut o = open.lock().unwrap();
                while !*o {
                    o = cv.wait(o).unwrap();
                }
                self.1.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let release = Arc::new((Mutex::new(false), Condvar::new()));
        let sink = Sink::default();
        let batched = Batched::start(Gate(Arc::clone(&release), sink.clone())).unwrap();
        let line = vec![b'x'; 64 * 1024];
        std::thread::scope(|s| {
            let b = batched.clone();
            let line = &line;
            s.spawn(move || {
                for _ in 0..40 {
                    b.make_writer().write_all(line).unwrap();
                }
            });
            // Never more than the bound plus one line waits, plus the batch being written.
            for _ in 0..50 {
                let pending = batched.shared.lock().pending.len();
                assert!(pending <= MAX_PENDING + line.len(), "{pending}");
                std::thread::yield_now();
            }
            let (open, cv) = &*release;
            *open.lock().unwrap() = true;
            cv.notify_all();
        });
        batched.shared.flush();
        assert_eq!(sink.0.lock().unwrap().0.len(), 40 * line.len());
    }
}
