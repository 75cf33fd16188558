//! Printing that never holds up the node: lines go through a bounded queue to a writer
//! thread that owns stdout. A reader that is slow or gone costs lines, never the
//! protocol: when the queue is full a line is dropped and counted, and once stdout is
//! closed (EPIPE) or fails, printing ends quietly while the node keeps running.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Default capacity of the queue, in lines (`quorate node --output-queue`).
pub const DEFAULT_QUEUE: usize = 4096;

/// How long the end of a run waits for the queue to reach stdout: a reader that does
/// not take the last lines within this bound loses them, and the process exits anyway.
pub const DRAIN_AT_EXIT: Duration = Duration::from_secs(2);

/// What became of the output, reported at exit.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Lines dropped because the queue was full (stdout not read fast enough).
    pub dropped: u64,
    /// Why printing stopped early (`None`: stdout took every line it was given, or
    /// it was closed by the reader, which is not an error).
    pub failed: Option<String>,
}

/// The sending side; the writer thread holds the rest.
pub struct Printer {
    tx: Option<SyncSender<String>>,
    dropped: u64,
    /// Disconnected once the writer thread has ended.
    done: Receiver<()>,
    failed: Arc<Mutex<Option<String>>>,
}

impl Printer {
    /// A printer to this process's stdout holding at most `capacity` lines.
    pub fn stdout(capacity: usize) -> io::Result<Self> {
        let out = File::from(io::stdout().as_fd().try_clone_to_owned()?);
        Self::to(out, capacity)
    }

    /// A printer to `out` (unbuffered: each line is one write) holding at most
    /// `capacity` lines (at least one).
    pub fn to(out: impl Write + Send + 'static, capacity: usize) -> io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<String>(capacity.max(1));
        let (done_tx, done) = mpsc::channel::<()>();
        let failed = Arc::new(Mutex::new(None));
        let failure = failed.clone();
        std::thread::Builder::new()
            .name("stdout".into())
            .spawn(move || {
                let _done = done_tx;
                if let Err(e) = write_all(out, rx) {
                    if e.kind() != io::ErrorKind::BrokenPipe {
                        *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                    }
                }
            })?;
        Ok(Printer {
            tx: Some(tx),
            dropped: 0,
            done,
            failed,
        })
    }

    /// Queues one line (without its newline); never waits. A full queue drops it.
    pub fn line(&mut self, line: String) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.dropped += 1,
            // The writer ended (stdout closed or failed): nothing prints any more.
            Err(TrySendError::Disconnected(_)) => self.tx = None,
        }
    }

    /// Lines dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Closes the queue and waits at most `wait` for the writer to print what is left.
    pub fn finish(mut self, wait: Duration) -> Outcome {
        drop(self.tx.take());
        // Disconnected once the writer returned; a timeout leaves it blocked on a
        // reader that never reads, and the process exits without it.
        let _ = self.done.recv_timeout(wait);
        let failed = self.failed.lock().unwrap_or_else(|p| p.into_inner()).take();
        Outcome {
            dropped: self.dropped,
            failed,
        }
    }
}

fn write_all(mut out: impl Write, rx: Receiver<String>) -> io::Result<()> {
    for mut line in rx {
        line.push('\n');
        out.write_all(line.as_bytes())?;
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer shared with the test: it records what reached it, fails with `error`
    /// once set, and blocks while `gate` is held.
    #[derive(Clone, Default)]
    struct Sink {
        got: Arc<Mutex<Vec<u8>>>,
        error: Arc<Mutex<Option<io::ErrorKind>>>,
        gate: Arc<Mutex<()>>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _open = self.gate.lock().unwrap();
            if let Some(kind) = *self.error.lock().unwrap() {
                return Err(io::Error::from(kind));
            }
            self.got.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn text(sink: &Sink) -> String {
        String::from_utf8(sink.got.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn lines_arrive_in_order_with_newlines() {
        let sink = Sink::default();
        let mut p = Printer::to(sink.clone(), 8).unwrap();
        p.line("a".into());
        p.line("b".into());
        assert_eq!(p.finish(Duration::from_secs(30)), Outcome::default());
        assert_eq!(text(&sink), "a\nb\n");
    }

    #[test]
    fn a_blocked_reader_costs_lines_not_time() {
        let sink = Sink::default();
        let held = sink.gate.lock().unwrap();
        let mut p = Printer::to(sink.clone(), 2).unwrap();
        // The writer takes at most one line and blocks on it; two more fill the queue;
        // the rest are dropped, and none of this waits.
        for i in 0..10 {
            p.line(format!("{i}"));
        }
        assert!((7..=8).contains(&p.dropped()), "{}", p.dropped());
        let outcome = p.finish(Duration::from_millis(50));
        assert!((7..=8).contains(&outcome.dropped), "{outcome:?}");
        drop(held);
    }

    #[test]
    fn a_closed_stdout_ends_printing_quietly() {
        let sink = Sink::default();
        *sink.error.lock().unwrap() = Some(io::ErrorKind::BrokenPipe);
        let mut p = Printer::to(sink.clone(), 4).unwrap();
        for i in 0..100 {
            p.line(format!("{i}"));
        }
        let outcome = p.finish(Duration::from_secs(30));
        assert_eq!(outcome.failed, None, "EPIPE is not an error");
        assert!(text(&sink).is_empty());
    }

    #[test]
    fn other_write_errors_are_reported() {
        let sink = Sink::default();
        *sink.error.lock().unwrap() = Some(io::ErrorKind::PermissionDenied);
        let mut p = Printer::to(sink, 4).unwrap();
        p.line("x".into());
        let outcome = p.finish(Duration::from_secs(30));
        assert!(outcome.failed.is_some(), "{outcome:?}");
    }
}
