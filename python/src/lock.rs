//! `Lock` (a named lock of the cluster) and `LockGuard` (a held lock).

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::ThreadId;
use std::time::Duration;

use pyo3::prelude::*;

use crate::election::{monotonic, remaining, wait_lost, Taken};
use crate::{block_on, errors, wait_until};

/// A named lock of the cluster (`Node.lock`): held by at most one node at any instant,
/// with a fencing token that rises with every holder. Waiting nodes are served lowest
/// id first. Not reentrant: on one node, a second acquisition waits for the first
/// guard's release, as another node's would.
///
/// `with node.lock("x") as guard:` waits as long as it takes (Ctrl-C interrupts) and
/// releases on exit; threads may share the `Lock` object for that (like a
/// `threading.Lock`), but one thread entering it twice is refused.
#[pyclass(frozen, module = "quorate._quorate")]
pub(crate) struct Lock {
    lock: quorate::Lock,
    /// The guards taken by `__enter__`, by thread, released by `__exit__`.
    entered: Mutex<Vec<(ThreadId, Py<LockGuard>)>>,
}

impl Lock {
    pub(crate) fn new(lock: quorate::Lock) -> Self {
        Lock {
            lock,
            entered: Mutex::new(Vec::new()),
        }
    }

    fn entered(&self) -> MutexGuard<'_, Vec<(ThreadId, Py<LockGuard>)>> {
        self.entered.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[pymethods]
impl Lock {
    /// The lock's name.
    #[getter]
    fn name(&self) -> &str {
        self.lock.name()
    }

    /// The holder's node id and fencing token as gossip says, or `None`.
    fn holder(&self) -> Option<(u64, u64)> {
        self.lock.holder().map(|(id, t)| (id.0, t))
    }

    /// Waits until this node holds the lock, at most `timeout` seconds (`None`: as long
    /// as it takes; Ctrl-C interrupts). Raises `LockTimeout` when it is still held
    /// elsewhere then (or when `cancel`, a `threading.Event`, was set meanwhile: this
    /// node then no longer waits for it), `LockRefused` when this node already holds or
    /// awaits it, `NodeStopped` when the node stopped.
    #[pyo3(signature = (timeout = None, *, cancel = None))]
    fn acquire(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        cancel: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<LockGuard> {
        let timeout = crate::duration(timeout)?.unwrap_or(Duration::MAX);
        match wait_until(py, None, cancel, self.lock.acquire(timeout))? {
            Some(guard) => Ok(LockGuard::new(guard.map_err(errors::lock)?)),
            None => Err(errors::LockTimeout::new_err(format!(
                "lock {}: the wait was cancelled",
                crate::quote(self.lock.name())
            ))),
        }
    }

    /// Takes the lock if it is free: `None` at once when another node holds it, or
    /// when the voters do not grant it within two election rounds.
    fn try_acquire(&self, py: Python<'_>) -> PyResult<Option<LockGuard>> {
        let guard = block_on(py, self.lock.try_acquire())?.map_err(errors::lock)?;
        Ok(guard.map(LockGuard::new))
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<Py<LockGuard>> {
        let me = std::thread::current().id();
        if self.entered().iter().any(|(t, _)| *t == me) {
            return Err(errors::LockRefused::new_err(format!(
                "lock {} is held by this thread through this Lock object already (not \
                 reentrant)",
                crate::quote(self.lock.name())
            )));
        }
        let guard = Py::new(py, self.acquire(py, None, None)?)?;
        self.entered().push((me, guard.clone_ref(py)));
        Ok(guard)
    }

    /// Releases the lock taken by this thread's `__enter__`.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        let me = std::thread::current().id();
        let guard = {
            let mut entered = self.entered();
            let at = entered.iter().position(|(t, _)| *t == me);
            at.map(|i| entered.swap_remove(i).1)
        };
        if let Some(g) = guard {
            g.get().release(py)?;
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let holder = match self.holder() {
            Some((id, term)) => format!("({id}, {term})"),
            None => "None".to_owned(),
        };
        format!(
            "Lock(name={}, holder={holder})",
            crate::quote(self.lock.name())
        )
    }
}

/// A held lock. Released by `release()`, on leaving a `with` block, when
/// garbage-collected, and when the node leaves or stops. It can also be lost (the node
/// cut off from a quorum of voters): `wait_lost()` returns before anyone else can take
/// it, and `is_owner()` turns false.
#[pyclass(frozen, module = "quorate._quorate")]
pub(crate) struct LockGuard {
    name: String,
    fencing_token: u64,
    guard: Taken<quorate::LockGuard>,
}

impl LockGuard {
    fn new(g: quorate::LockGuard) -> Self {
        LockGuard {
            name: g.name().to_owned(),
            fencing_token: g.fencing_token(),
            guard: Taken::new(g),
        }
    }
}

#[pymethods]
impl LockGuard {
    /// The lock's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The fencing token: higher than every earlier holder's. Pass it with every write
    /// the lock protects.
    #[getter]
    fn fencing_token(&self) -> u64 {
        self.fencing_token
    }

    /// The end of the current lease on the `time.monotonic()` clock (renewed while
    /// held); `None` once released.
    #[getter]
    fn deadline(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        self.guard
            .get()
            .map(|g| monotonic(py, g.deadline()))
            .transpose()
    }

    /// Seconds until the current lease ends (0.0 once released or ended).
    #[getter]
    fn remaining(&self) -> f64 {
        self.guard.get().map_or(0.0, |g| remaining(g.deadline()))
    }

    /// Whether this node still holds the lock (not released or lost, lease running).
    fn is_owner(&self) -> bool {
        self.guard.get().is_some_and(|g| g.is_owner())
    }

    /// Waits until the lock is lost or released, at most `timeout` seconds (`None`: no
    /// limit); whether it was.
    #[pyo3(signature = (timeout = None))]
    fn wait_lost(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        wait_lost(py, &self.guard, timeout, |g| async move { g.lost().await })
    }

    /// Releases the lock: returns once a quorum of voters dropped it (or, when they
    /// did not confirm within two round timeouts, once this node let go all the same),
    /// so another node may take it at once. `True` the first time, `False` when it
    /// was released already.
    fn release(&self, py: Python<'_>) -> PyResult<bool> {
        match self.guard.take(py) {
            Some(g) => {
                let _ = block_on(py, g.release())?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Releases the lock.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.release(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "LockGuard(name={}, fencing_token={}, owner={})",
            crate::quote(&self.name),
            self.fencing_token,
            if self.is_owner() { "True" } else { "False" }
        )
    }
}

/// Adds `Lock` and `LockGuard`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Lock>()?;
    m.add_class::<LockGuard>()
}
