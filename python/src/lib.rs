//! `quorate._quorate`: the Python extension over quorate's async [`quorate::Node`] API.
//!
//! Every blocking method runs its future on one process-wide tokio runtime
//! ([`runtime`]) with the interpreter detached, so other Python threads run meanwhile.
//! Waits are cut into slices of [`SLICE`]; between two slices the thread re-attaches and
//! checks for signals, so Ctrl-C interrupts any wait (dropping the future, which cancels
//! the operation: a lock being waited for is not taken, a campaign being started is
//! resigned). Objects owning quinn or tokio resources are dropped inside the runtime's
//! context.
//!
//! The Python classes are `frozen`: their state sits behind locks that are never held
//! across a wait, so any method may be called from several threads at once.

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

mod cluster;
mod election;
mod errors;
mod events;
mod lock;
mod node;

/// How long one slice of a blocking wait lasts before the thread checks for signals.
pub(crate) const SLICE: Duration = Duration::from_millis(100);

/// The process-wide runtime: two worker threads, I/O and time enabled.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("quorate")
            .enable_all()
            .build()
            .expect("cannot start the quorate runtime")
    })
}

/// Runs `fut` to completion on the runtime, detached from the interpreter, for at most
/// `timeout` (`None`: no limit). `Ok(None)` when the time ran out (the future is dropped,
/// which cancels it); an error when a signal handler raised (Ctrl-C: `KeyboardInterrupt`).
pub(crate) fn wait<F>(
    py: Python<'_>,
    timeout: Option<Duration>,
    fut: F,
) -> PyResult<Option<F::Output>>
where
    F: Future + Send,
    F::Output: Send,
{
    wait_until(py, timeout, None, fut)
}

/// As [`wait`], also ending (with `Ok(None)`) once `cancel.is_set()` is true (a
/// `threading.Event`), checked between slices.
pub(crate) fn wait_until<F>(
    py: Python<'_>,
    timeout: Option<Duration>,
    cancel: Option<&Bound<'_, PyAny>>,
    fut: F,
) -> PyResult<Option<F::Output>>
where
    F: Future + Send,
    F::Output: Send,
{
    let _ctx = runtime().enter();
    let end = timeout.map(|t| Instant::now().checked_add(t));
    let mut fut = Box::pin(fut);
    loop {
        let slice = match end {
            Some(Some(end)) => end.saturating_duration_since(Instant::now()).min(SLICE),
            _ => SLICE,
        };
        let out = py.detach(|| {
            runtime().block_on(async { tokio::time::timeout(slice, fut.as_mut()).await.ok() })
        });
        if out.is_some() {
            return Ok(out);
        }
        if matches!(end, Some(Some(end)) if Instant::now() >= end) {
            return Ok(None);
        }
        py.check_signals()?;
        if let Some(cancel) = cancel {
            if cancel.call_method0("is_set")?.is_truthy()? {
                return Ok(None);
            }
        }
    }
}

/// As [`wait`] without a time limit.
pub(crate) fn block_on<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    Ok(wait(py, None, fut)?.expect("a wait without a time limit ends with the future"))
}

/// A timeout in seconds from Python (`None`: no limit); negative ones are refused.
pub(crate) fn duration(seconds: Option<f64>) -> PyResult<Option<Duration>> {
    seconds
        .map(|s| {
            Duration::try_from_secs_f64(s).map_err(|_| {
                pyo3::exceptions::PyValueError::new_err(format!(
                    "timeout must be a number of seconds >= 0, not {s}"
                ))
            })
        })
        .transpose()
}

/// `s` quoted as Python's `repr` quotes a plain string (for `__repr__`s).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if c.is_control() => out.push_str(&c.escape_default().to_string()),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Drops `value` inside the runtime's context (quinn and tokio objects may need it).
pub(crate) fn drop_in_runtime<T>(value: T) {
    let _ctx = runtime().enter();
    drop(value);
}

/// The extension module, re-exported by the `quorate` package.
#[pymodule]
fn _quorate(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    node::register(m)?;
    events::register(m)?;
    election::register(m)?;
    lock::register(m)?;
    cluster::register(m)?;
    Ok(())
}
