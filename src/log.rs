//! The log: what a client did, for a host program's own log, without secrets.
//!
//! A client has no log until one is set (`pan_client_set_log`); then each line of a level up
//! to the one asked for is built, passed through `redact::clean` with the secrets of the call
//! that made it (so it holds no piece of a secret and no control character), and handed to
//! the sink on the thread that made the call. With no log set, a line costs one atomic load.

use std::cell::Cell;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex, TryLockError};

use crate::error::{Error, Result};
use crate::fork::PerProcess;
use crate::redact::{clean, Secret};

/// How much a log line matters. The numbers are the C ABI's `PAN_LOG_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(i32)]
pub enum Level {
    /// A call failed.
    Error = 1,
    /// Something went wrong and was handled (a retry, a pause the service asked for).
    Warn = 2,
    /// Each answer, token fetches and renewals.
    Info = 3,
    /// Each request, connections, pacing waits, the route.
    Debug = 4,
}

impl Level {
    /// The level of this number, if it is one.
    pub fn from_code(code: i32) -> Option<Level> {
        [Level::Error, Level::Warn, Level::Info, Level::Debug]
            .into_iter()
            .find(|l| *l as i32 == code)
    }
}

/// Where a client's log lines go: called with the level and the line.
pub type Sink = Arc<dyn Fn(Level, &str) + Send + Sync>;

/// The longest log line, in characters.
const MAX_LINE: usize = 2048;

/// A client's log.
pub(crate) struct Log {
    /// The most detailed level written (0: none).
    level: AtomicI32,
    /// The sink and the callbacks running, behind a lock held only for an instant — never
    /// while a sink runs, so that no thread inside a sink, and no thread that waits for one
    /// (`Log::set`), can keep another thread from writing its line (a reader-writer lock
    /// with a waiting writer did: three threads hung). Each process has its own: at a
    /// `fork()` a parent's thread may hold it, and in the child it would stay taken for ever.
    state: PerProcess<(Mutex<SinkState>, Condvar)>,
}

#[derive(Default, Clone)]
struct SinkState {
    sink: Option<Sink>,
    /// Counts the sinks set: callbacks of an earlier one are waited for by `set`.
    generation: u64,
    /// Callbacks running, by the generation of the sink they run.
    running: Vec<(u64, usize)>,
}

impl SinkState {
    fn running_before(&self, generation: u64) -> bool {
        self.running.iter().any(|(g, n)| *g < generation && *n > 0)
    }

    fn count(&mut self, generation: u64, delta: isize) {
        match self.running.iter_mut().find(|(g, _)| *g == generation) {
            Some((_, n)) => *n = n.saturating_add_signed(delta),
            None if delta > 0 => self.running.push((generation, delta as usize)),
            None => {}
        }
        self.running.retain(|(_, n)| *n > 0);
    }
}

impl Default for Log {
    fn default() -> Log {
        Log {
            level: AtomicI32::new(0),
            // A forked child keeps the parent's sink when its lock can be taken without
            // waiting (none of the parent's callbacks runs in the child); else it starts with
            // none (its lines are dropped until the log is set in the child).
            state: PerProcess::new_with(|parent: Option<&(Mutex<SinkState>, Condvar)>| {
                let sink = parent.and_then(|(lock, _)| match lock.try_lock() {
                    Ok(s) => s.sink.clone(),
                    Err(TryLockError::Poisoned(p)) => p.into_inner().sink.clone(),
                    Err(TryLockError::WouldBlock) => None,
                });
                (
                    Mutex::new(SinkState {
                        sink,
                        ..SinkState::default()
                    }),
                    Condvar::new(),
                )
            }),
        }
    }
}

thread_local! {
    /// Whether this thread is inside a sink: a line made by a call the sink itself makes is
    /// dropped (no recursion, and no second read lock on one thread), and the sink cannot be
    /// changed from there (that would wait for itself).
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as inside a sink until dropped, unwinding included.
struct InSink;

impl InSink {
    fn enter() -> InSink {
        IN_SINK.with(|f| f.set(true));
        InSink
    }
}

impl Drop for InSink {
    fn drop(&mut self) {
        IN_SINK.with(|f| f.set(false));
    }
}

fn in_sink() -> bool {
    IN_SINK.try_with(Cell::get).unwrap_or(true)
}

impl Log {
    /// Sets (or, with `None`, clears) the sink; safe while other threads log. Waits for the
    /// lines being written on other threads: once it returns the old sink is never called
    /// again (a C host frees its `user_data`, a wrapper its closure, right after). Refused from
    /// inside a sink, which would wait for itself.
    pub(crate) fn set(&self, level: Level, sink: Option<Sink>) -> Result<()> {
        if in_sink() {
            return Err(Error::invalid(
                "the log cannot be set or cleared from inside the log callback",
            ));
        }
        let on = sink.is_some();
        let (lock, changed) = self.state.here();
        let old = {
            // A panic while the lock was held left at worst a count: go on with it.
            let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
            self.level
                .store(if on { level as i32 } else { 0 }, Ordering::Release);
            let old = std::mem::replace(&mut state.sink, sink);
            state.generation += 1;
            let generation = state.generation;
            // The callbacks of earlier sinks still running on other threads end first; the
            // lock is free meanwhile, so lines written now go to the new sink.
            while state.running_before(generation) {
                state = changed.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            old
        };
        // Dropped outside the lock: a wrapper's closure may do anything when it goes.
        drop(old);
        Ok(())
    }

    /// Whether lines of this level are written.
    pub(crate) fn enabled(&self, level: Level) -> bool {
        level as i32 <= self.level.load(Ordering::Acquire)
    }

    /// Writes a line of this level, made by `line` only when it is written, with `secrets`
    /// removed. The sink is called with no lock held; [`Log::set`] waits for it to return.
    pub(crate) fn write(&self, level: Level, secrets: &[&Secret], line: impl FnOnce() -> String) {
        if !self.enabled(level) || in_sink() {
            return;
        }
        let (lock, changed) = self.state.here();
        let (sink, generation) = {
            let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
            // The level may have dropped meanwhile.
            let Some(sink) = state.sink.clone().filter(|_| self.enabled(level)) else {
                return;
            };
            let generation = state.generation;
            state.count(generation, 1);
            (sink, generation)
        };
        /// Counts the callback as ended however it ends (a panic included).
        struct Running<'a>(&'a Mutex<SinkState>, &'a Condvar, u64);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
                state.count(self.2, -1);
                drop(state);
                self.1.notify_all();
            }
        }
        let _running = Running(lock, changed, generation);
        let text = clean(&line(), MAX_LINE, secrets);
        let _inside = InSink::enter();
        sink(level, &text);
    }
}
