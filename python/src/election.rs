//! `Campaign` (a running candidacy) and `Leadership` (one term of leading a group).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use crate::{block_on, drop_in_runtime, errors, wait, SLICE};

type CampaignSlot = Arc<tokio::sync::Mutex<Option<quorate::Campaign>>>;

/// A running candidacy for one group's leadership (`Node.campaign`). It runs until
/// resigned, or until it is garbage-collected (which resigns without waiting), or until
/// the node stops.
#[pyclass(frozen, module = "quorate._quorate")]
pub(crate) struct Campaign {
    group: String,
    slot: CampaignSlot,
}

impl Campaign {
    pub(crate) fn new(c: quorate::Campaign) -> Self {
        Campaign {
            group: c.group().to_owned(),
            slot: Arc::new(tokio::sync::Mutex::new(Some(c))),
        }
    }
}

/// Resigns the campaign in `slot` (at once when it already ended); whether it ran.
async fn resign(slot: CampaignSlot) -> bool {
    let taken = slot.lock().await.take();
    match taken {
        Some(c) => {
            let _ = c.resign().await;
            true
        }
        None => false,
    }
}

#[pymethods]
impl Campaign {
    /// The group this campaign runs for.
    #[getter]
    fn group(&self) -> &str {
        &self.group
    }

    /// Waits until this node leads the group and returns the leadership (at once when it
    /// leads now); `None` when `timeout` seconds passed first (`None`: wait as long as
    /// it takes). Raises `CampaignEnded` when the campaign was resigned or the node
    /// stopped.
    #[pyo3(signature = (timeout = None))]
    fn leadership(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Leadership>> {
        let slot = self.slot.clone();
        let got = wait(py, crate::duration(timeout)?, async move {
            let mut guard = slot.lock().await;
            match guard.as_mut() {
                Some(c) => c.leadership().await.map_err(errors::leadership),
                None => Err(errors::CampaignEnded::new_err("the campaign was resigned")),
            }
        })?;
        got.map(|r| r.map(Leadership::new)).transpose()
    }

    /// Whether this node leads the group now (its lease is running). `False` while
    /// another thread waits in `leadership()` or `resign()`.
    fn is_leader(&self) -> bool {
        self.slot
            .try_lock()
            .is_ok_and(|c| c.as_ref().is_some_and(quorate::Campaign::is_leader))
    }

    /// Stops running; a leader steps down first and releases its voters, so the next
    /// candidate takes over within a round trip. Returns once a quorum of voters
    /// confirmed the release (or, when they did not within two round timeouts, once
    /// this node stepped down all the same); `False` when the campaign had already
    /// ended.
    fn resign(&self, py: Python<'_>) -> PyResult<bool> {
        block_on(py, resign(self.slot.clone()))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Resigns.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.resign(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("Campaign(group={})", crate::quote(&self.group))
    }
}

impl Drop for Campaign {
    fn drop(&mut self) {
        if let Ok(mut c) = self.slot.try_lock() {
            drop_in_runtime(c.take());
        }
    }
}

/// A shared handle that a consuming call (`resign`, `release`) takes out, waiting for
/// the waits that borrowed it (they give it back between slices).
pub(crate) struct Taken<T>(Mutex<Option<Arc<T>>>);

impl<T> Taken<T> {
    pub(crate) fn new(value: T) -> Self {
        Taken(Mutex::new(Some(Arc::new(value))))
    }

    fn slot(&self) -> MutexGuard<'_, Option<Arc<T>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A clone of the handle, `None` once taken.
    pub(crate) fn get(&self) -> Option<Arc<T>> {
        self.slot().clone()
    }

    /// Takes the handle out (`None`: taken already) and waits until no wait borrows it.
    pub(crate) fn take(&self, py: Python<'_>) -> Option<T> {
        let mut value = self.slot().take()?;
        let end = Instant::now() + SLICE * 20;
        loop {
            match Arc::try_unwrap(value) {
                Ok(v) => return Some(v),
                Err(shared) if Instant::now() < end => {
                    value = shared;
                    py.detach(|| std::thread::sleep(Duration::from_millis(2)));
                }
                Err(shared) => {
                    drop_in_runtime(shared);
                    return None;
                }
            }
        }
    }
}

impl<T> Drop for Taken<T> {
    fn drop(&mut self) {
        drop_in_runtime(self.slot().take());
    }
}

/// Waits until `lost(handle)` completes or the handle is taken, at most `timeout`
/// (`None`: no limit); whether it did. Borrows the handle one slice at a time.
pub(crate) fn wait_lost<T, F, Fut>(
    py: Python<'_>,
    taken: &Taken<T>,
    timeout: Option<f64>,
    lost: F,
) -> PyResult<bool>
where
    T: Send + Sync,
    F: Fn(Arc<T>) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = ()> + Send,
{
    let timeout = crate::duration(timeout)?;
    let done = wait(py, timeout, async {
        while let Some(h) = taken.get() {
            if tokio::time::timeout(SLICE, lost(h)).await.is_ok() {
                return;
            }
        }
    })?;
    Ok(done.is_some())
}

/// One leadership of a group by this node: its fencing token and its lease.
#[pyclass(frozen, module = "quorate._quorate")]
pub(crate) struct Leadership {
    group: String,
    term: u64,
    lead: Taken<quorate::Leadership>,
}

impl Leadership {
    fn new(l: quorate::Leadership) -> Self {
        Leadership {
            group: l.group().to_owned(),
            term: l.term(),
            lead: Taken::new(l),
        }
    }
}

/// Seconds from now until `deadline` (0 once passed).
pub(crate) fn remaining(deadline: Instant) -> f64 {
    deadline
        .saturating_duration_since(Instant::now())
        .as_secs_f64()
}

/// `deadline` on Python's `time.monotonic()` clock.
pub(crate) fn monotonic(py: Python<'_>, deadline: Instant) -> PyResult<f64> {
    let now: f64 = py
        .import("time")?
        .getattr("monotonic")?
        .call0()?
        .extract()?;
    let (ahead, behind) = (
        deadline.saturating_duration_since(Instant::now()),
        Instant::now().saturating_duration_since(deadline),
    );
    Ok(now + ahead.as_secs_f64() - behind.as_secs_f64())
}

#[pymethods]
impl Leadership {
    /// The group led.
    #[getter]
    fn group(&self) -> &str {
        &self.group
    }

    /// The fencing token: higher than the term of every earlier leadership of the
    /// group. Pass it with every side effect.
    #[getter]
    fn term(&self) -> u64 {
        self.term
    }

    /// The end of the current lease on the `time.monotonic()` clock (pushed back by
    /// every renewal; after the leadership ended, the last one seen).
    #[getter]
    fn deadline(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        self.lead
            .get()
            .map(|l| monotonic(py, l.deadline()))
            .transpose()
    }

    /// Seconds until the current lease ends (0.0 once it has ended).
    #[getter]
    fn remaining(&self) -> f64 {
        self.lead.get().map_or(0.0, |l| remaining(l.deadline()))
    }

    /// Whether this leadership still holds: not ended, lease running.
    fn is_valid(&self) -> bool {
        self.lead.get().is_some_and(|l| l.is_valid())
    }

    /// Waits until this leadership ends (lease not renewed, resigned, node stopped), at
    /// most `timeout` seconds (`None`: no limit). Returns whether it ended; when it
    /// does, no other node can lead yet.
    #[pyo3(signature = (timeout = None))]
    fn wait_lost(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        wait_lost(py, &self.lead, timeout, |l| async move { l.lost().await })
    }

    /// Steps down and ends the campaign (its `leadership()` then raises
    /// `CampaignEnded`); the voters are released at once, and it returns as
    /// `Campaign.resign` does. `False` when this leadership was resigned already.
    fn resign(&self, py: Python<'_>) -> PyResult<bool> {
        match self.lead.take(py) {
            Some(l) => {
                let _ = block_on(py, l.resign())?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Leadership(group={}, term={}, valid={})",
            crate::quote(&self.group),
            self.term,
            if self.is_valid() { "True" } else { "False" }
        )
    }
}

/// Adds `Campaign` and `Leadership`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Campaign>()?;
    m.add_class::<Leadership>()
}
