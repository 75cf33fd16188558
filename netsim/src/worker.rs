//! Helper threads: each runs one shard's events of a window while the simulator's own
//! thread runs another's. A window is a few dozen events (tens of microseconds), so
//! the hand-over spins instead of sleeping; a helper parks only after a long wait
//! (between scenario steps, or while the simulator is being set up).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::net::Net;
use crate::shard::{Ctx, Shard};

/// One shard's part of a window, with what it reads.
pub(crate) struct Job {
    pub shard: Shard,
    pub net: Arc<Net>,
    pub epochs: Arc<Vec<u32>>,
    pub base: Instant,
    pub nodes: usize,
    pub writing: bool,
    /// Run every event due at or before this time.
    pub end: u64,
}

impl Job {
    fn run(&mut self) {
        let ctx = Ctx {
            base: self.base,
            nodes: self.nodes,
            net: &self.net,
            epochs: &self.epochs,
            writing: self.writing,
        };
        self.shard.run_to(&ctx, self.end);
    }
}

const IDLE: u8 = 0;
const POSTED: u8 = 1;
const DONE: u8 = 2;
const FAILED: u8 = 3;
const EXIT: u8 = 4;

/// Spins before parking (each a pause instruction, tens of nanoseconds).
const SPINS: u32 = 20_000;

struct Shared {
    slot: Mutex<Option<Job>>,
    state: AtomicU8,
    parked: AtomicBool,
}

/// A helper thread (see the module documentation).
pub(crate) struct Helper {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Helper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Helper").finish_non_exhaustive()
    }
}

impl Helper {
    /// Starts the thread.
    pub fn spawn() -> std::io::Result<Helper> {
        let shared = Arc::new(Shared {
            slot: Mutex::new(None),
            state: AtomicU8::new(IDLE),
            parked: AtomicBool::new(false),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("netsim-shard".into())
            .spawn(move || work(&s))?;
        Ok(Helper {
            shared,
            thread: Some(thread),
        })
    }

    /// Hands `job` over.
    pub fn post(&self, job: Job) {
        let s = &self.shared;
        *s.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(job);
        s.state.store(POSTED, Ordering::SeqCst);
        if s.parked.load(Ordering::SeqCst) {
            if let Some(t) = &self.thread {
                t.thread().unpark();
            }
        }
    }

    /// Waits for the job posted last and takes it back. Panics if running it
    /// panicked (an engine bug: the simulation cannot go on).
    pub fn wait(&self) -> Job {
        let s = &self.shared;
        let mut spins = 0u32;
        loop {
            match s.state.load(Ordering::Acquire) {
                DONE => break,
                FAILED => panic!("a simulator shard thread panicked"),
                _ => {}
            }
            spins = spins.saturating_add(1);
            if spins < SPINS {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        s.state.store(IDLE, Ordering::SeqCst);
        let job = s.slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        job.expect("a finished job is in the slot")
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.shared.state.store(EXIT, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn work(s: &Shared) {
    loop {
        if !wait_for_work(s) {
            return;
        }
        let job = s.slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(mut job) = job else { continue };
        if catch_unwind(AssertUnwindSafe(|| job.run())).is_err() {
            s.state.store(FAILED, Ordering::SeqCst);
            return;
        }
        *s.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(job);
        s.state.store(DONE, Ordering::Release);
    }
}

/// Waits until a job is posted (true) or the helper is dropped (false).
fn wait_for_work(s: &Shared) -> bool {
    let mut spins = 0u32;
    loop {
        match s.state.load(Ordering::Acquire) {
            POSTED => return true,
            EXIT => return false,
            _ => {}
        }
        spins = spins.saturating_add(1);
        if spins < SPINS {
            std::hint::spin_loop();
            continue;
        }
        s.parked.store(true, Ordering::SeqCst);
        if !matches!(s.state.load(Ordering::SeqCst), POSTED | EXIT) {
            std::thread::park();
        }
        s.parked.store(false, Ordering::SeqCst);
        spins = 0;
    }
}
