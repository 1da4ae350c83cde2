//! Which process this is, without a system call per request: a counter that a
//! `pthread_atfork()` child handler bumps in every child that `fork()` makes.
//!
//! `getpid()` answers the same question but is a system call on every request (glibc stopped
//! caching it); the handler makes the check one atomic load.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();
static NO_HANDLER: AtomicBool = AtomicBool::new(false);

extern "C" fn in_child() {
    // An atomic add is async-signal-safe, as a child handler of a multithreaded parent must be.
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// A number that differs between a process and every child it forks (after the first call).
pub(crate) fn generation() -> u64 {
    REGISTER.call_once(|| {
        // SAFETY: `in_child` is a plain function that lives as long as the library: glibc's
        // pthread_atfork (from libc_nonshared.a, linked into this library) tags the handler
        // with this library's handle and drops it if the library is unloaded.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        NO_HANDLER.store(rc != 0, Ordering::Relaxed);
    });
    if NO_HANDLER.load(Ordering::Relaxed) {
        // Registration failed (out of memory): fall back to the process ID.
        return u64::from(std::process::id()) | 1 << 63;
    }
    GENERATION.load(Ordering::Relaxed)
}
