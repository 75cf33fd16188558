//! Helper threads: each runs one shard's events of a window (or of a free run) while
//! the simulator's own thread runs another's. A window is a few dozen events (tens of
//! microseconds), so a hand-over spins briefly before it parks (see [`Bell`]).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{fence, AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::lookahead::Free;
use crate::net::Net;
use crate::shard::{Ctx, Shard};

/// One shard's part of a window, with what it reads.
pub(crate) struct Job {
    pub shard: Shard,
    pub net: Arc<Net>,
    pub epochs: Arc<Vec<u32>>,
    pub ids: Arc<Vec<quorate::NodeId>>,
    pub base: Instant,
    pub nodes: usize,
    pub writing: bool,
    /// Run every event due at or before this time (in lock step with the others).
    pub end: u64,
    /// Instead: run freely as shard number `.1` of this run (see the `lookahead`
    /// module).
    pub free: Option<(Arc<Free>, usize)>,
}

impl Job {
    fn run(&mut self) {
        let ctx = Ctx {
            base: self.base,
            nodes: self.nodes,
            net: &self.net,
            epochs: &self.epochs,
            ids: &self.ids,
            writing: self.writing,
        };
        match &self.free {
            Some((free, s)) => free.run(&mut self.shard, &ctx, *s),
            None => self.shard.run_to(&ctx, self.end),
        }
    }
}

const IDLE: u8 = 0;
const POSTED: u8 = 1;
const DONE: u8 = 2;
const FAILED: u8 = 3;
const EXIT: u8 = 4;

/// Spins before parking (each a pause instruction, tens of nanoseconds: about the
/// work of a window at 10,000 nodes).
const SPINS: u32 = 4_000;

/// Waiting for a condition another thread makes true: spin a little (the usual wait
/// is a few microseconds), then park until rung (threads may outnumber cores).
#[derive(Debug, Default)]
pub(crate) struct Bell {
    parked: AtomicBool,
    waiter: Mutex<Option<Thread>>,
}

impl Bell {
    /// Waits, as the current thread, until `ready()`.
    pub fn wait(&self, mut ready: impl FnMut() -> bool) {
        let mut spins = 0u32;
        while !ready() {
            spins += 1;
            if spins < SPINS {
                std::hint::spin_loop();
                continue;
            }
            spins = 0;
            *self.waiter.lock().unwrap_or_else(PoisonError::into_inner) = Some(thread::current());
            self.parked.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if !ready() {
                // The timeout only bounds the cost of a wake-up lost to a bug.
                thread::park_timeout(Duration::from_millis(10));
            }
            self.parked.store(false, Ordering::Relaxed);
        }
    }

    /// Wakes the waiter if it parked; call after making its condition true.
    pub fn ring(&self) {
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::Relaxed) {
            if let Some(t) = &*self.waiter.lock().unwrap_or_else(PoisonError::into_inner) {
                t.unpark();
            }
        }
    }
}

struct Shared {
    slot: Mutex<Option<Job>>,
    state: AtomicU8,
    /// The helper waits here for a job.
    work: Bell,
    /// The simulator's thread waits here for the job's end.
    done: Bell,
}

impl Shared {
    fn set(&self, state: u8, bell: &Bell) {
        self.state.store(state, Ordering::SeqCst);
        bell.ring();
    }
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
            work: Bell::default(),
            done: Bell::default(),
        });
        let s = shared.clone();
        let thread = thread::Builder::new()
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
        s.set(POSTED, &s.work);
    }

    /// Waits for the job posted last and takes it back. Panics if running it
    /// panicked (an engine bug: the simulation cannot go on).
    pub fn wait(&self) -> Job {
        let s = &self.shared;
        s.done
            .wait(|| matches!(s.state.load(Ordering::SeqCst), DONE | FAILED));
        if s.state.load(Ordering::SeqCst) == FAILED {
            panic!("a simulator shard thread panicked");
        }
        s.state.store(IDLE, Ordering::SeqCst);
        let job = s.slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        job.expect("a finished job is in the slot")
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.shared.set(EXIT, &self.shared.work);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn work(s: &Shared) {
    loop {
        s.work
            .wait(|| matches!(s.state.load(Ordering::SeqCst), POSTED | EXIT));
        if s.state.load(Ordering::SeqCst) == EXIT {
            return;
        }
        let job = s.slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(mut job) = job else { continue };
        if catch_unwind(AssertUnwindSafe(|| job.run())).is_err() {
            s.set(FAILED, &s.done);
            return;
        }
        *s.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(job);
        s.set(DONE, &s.done);
    }
}
