//! The log: what a client did, for a host program's own log, without secrets.
//!
//! A client has no log until one is set (`pan_client_set_log`); then each line of a level up
//! to the one asked for is built, passed through `redact::clean` with the secrets of the call
//! that made it (so it holds no piece of a secret and no control character), and handed to
//! the sink on the thread that made the call. With no log set, a line costs one atomic load.

use std::cell::Cell;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, RwLock, TryLockError};

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
    /// The sink, behind a lock of each process's own: at a `fork()` a parent's thread may be
    /// inside the sink (holding the read lock) while another waits in [`Log::set`]; in the
    /// child neither thread exists, and a lock of the parent's would stay taken for ever.
    sink: PerProcess<RwLock<Option<Sink>>>,
}

impl Default for Log {
    fn default() -> Log {
        Log {
            level: AtomicI32::new(0),
            // A forked child keeps the parent's sink when its lock can be read without
            // waiting; when a thread was changing the log at the fork (holding the lock or
            // waiting for it), the child starts with none (its lines are dropped until the
            // log is set in the child).
            sink: PerProcess::new_with(|parent: Option<&RwLock<Option<Sink>>>| {
                RwLock::new(parent.and_then(|lock| match lock.try_read() {
                    Ok(sink) => sink.clone(),
                    Err(TryLockError::Poisoned(p)) => p.into_inner().clone(),
                    Err(TryLockError::WouldBlock) => None,
                }))
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
        let old = {
            let mut guard = self.sink.here().write().unwrap_or_else(|p| p.into_inner());
            self.level
                .store(if on { level as i32 } else { 0 }, Ordering::Release);
            std::mem::replace(&mut *guard, sink)
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
    /// removed. The sink is called under the read lock, so [`Log::set`] waits for it.
    pub(crate) fn write(&self, level: Level, secrets: &[&Secret], line: impl FnOnce() -> String) {
        if !self.enabled(level) || in_sink() {
            return;
        }
        let guard = self.sink.here().read().unwrap_or_else(|p| p.into_inner());
        // The level may have dropped while this thread waited for the lock.
        if let (Some(sink), true) = (guard.as_ref(), self.enabled(level)) {
            let text = clean(&line(), MAX_LINE, secrets);
            let _inside = InSink::enter();
            sink(level, &text);
        }
    }
}
