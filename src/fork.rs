//! Which process this is, without a system call per request: a counter that a
//! `pthread_atfork()` child handler bumps in every child that `fork()` makes.
//!
//! `getpid()` answers the same question but is a system call on every request (glibc stopped
//! caching it); the handler makes the check one atomic load. And [`PerProcess`]: what a
//! client keeps behind a lock (its connection pool, caches), of which a forked child gets its
//! own instead of waiting for a lock a parent's thread held at the fork.
#![allow(unsafe_code)]
// Unsafe here: the call to pthread_atfork, and the pointer of `PerProcess` (a value swapped
// in a forked child without a lock, which std has no safe type for).

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();
static NO_HANDLER: AtomicBool = AtomicBool::new(false);

extern "C" fn in_child() {
    // An atomic add is async-signal-safe, as a child handler of a multithreaded parent must be.
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// A number that differs between a process and every child it forks (after the first call).
#[inline]
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

/// A value of which each process has its own: made when the owner is, and made afresh on
/// first use in a forked child (or grandchild), without touching the parent's.
///
/// What it holds is guarded by locks (a connection pool, caches); a thread of the parent may
/// have held one of them at the moment of `fork()`, and that thread does not exist in the
/// child, so the child would wait for it forever. The child's value is new instead; the
/// parent's is left as it was and never freed in the child (its connections belong to the
/// parent: dropping them could shut down TLS sessions the parent still uses) — a leak of one
/// value per fork, in the child.
pub(crate) struct PerProcess<T> {
    current: AtomicPtr<Slot<T>>,
    /// Makes a process's value; given the parent's in a forked child, which it may read
    /// without blocking only (`try_lock`): its locks may be held for ever.
    make: Maker<T>,
    // Neither Send nor Sync by itself: the impls below say when.
    _owns: PhantomData<*mut T>,
}

type Maker<T> = Box<dyn Fn(Option<&T>) -> T + Send + Sync>;

struct Slot<T> {
    generation: u64,
    value: T,
}

// SAFETY: a `PerProcess<T>` owns its `T`s (dropped on whatever thread drops the owner) and
// hands out `&T` to every thread that shares it.
unsafe impl<T: Send> Send for PerProcess<T> {}
// SAFETY: as above; a `T` may also be made and dropped by any thread that shares it.
unsafe impl<T: Send + Sync> Sync for PerProcess<T> {}

impl<T: Default + 'static> Default for PerProcess<T> {
    fn default() -> PerProcess<T> {
        PerProcess::new_with(|_| T::default())
    }
}

impl<T> PerProcess<T> {
    /// This process's value, `make(None)`; a forked child's is `make(Some(parent's))`.
    pub(crate) fn new_with(
        make: impl Fn(Option<&T>) -> T + Send + Sync + 'static,
    ) -> PerProcess<T> {
        let slot = Box::new(Slot {
            generation: generation(),
            value: make(None),
        });
        PerProcess {
            current: AtomicPtr::new(Box::into_raw(slot)),
            make: Box::new(make),
            _owns: PhantomData,
        }
    }

    /// The value of the process this runs in.
    pub(crate) fn here(&self) -> &T {
        self.here_at(generation())
    }

    /// [`PerProcess::here`] for a caller that has just read [`generation`] as `now`.
    #[inline]
    pub(crate) fn here_at(&self, now: u64) -> &T {
        let p = self.current.load(Ordering::Acquire);
        // SAFETY: a slot is freed only by `drop` (which has `&mut self`) or in `fresh` when it
        // was never published, so `p` is valid for as long as `&self` is.
        let slot = unsafe { &*p };
        if slot.generation == now {
            return &slot.value;
        }
        self.fresh(now)
    }

    /// First use in this process: a value of its own. The one there is the parent's (or an
    /// earlier ancestor's) and stays as it is.
    #[cold]
    fn fresh(&self, now: u64) -> &T {
        loop {
            let p = self.current.load(Ordering::Acquire);
            // SAFETY: as in `here_at`.
            let slot = unsafe { &*p };
            if slot.generation == now {
                return &slot.value;
            }
            let fresh = Box::into_raw(Box::new(Slot {
                generation: now,
                value: (self.make)(Some(&slot.value)),
            }));
            match self
                .current
                .compare_exchange(p, fresh, Ordering::AcqRel, Ordering::Acquire)
            {
                // SAFETY: just published; freed only by `drop`.
                Ok(_) => return unsafe { &(*fresh).value },
                // Another thread of this process published one first: use it.
                // SAFETY: `fresh` was never published, so nothing else refers to it.
                Err(_) => drop(unsafe { Box::from_raw(fresh) }),
            }
        }
    }
}

impl<T> Drop for PerProcess<T> {
    fn drop(&mut self) {
        let p = *self.current.get_mut();
        // SAFETY: the owner's slot pointer is always valid (see `here`).
        if unsafe { &*p }.generation == generation() {
            // SAFETY: made by `Box::into_raw` and no longer shared (`&mut self`).
            drop(unsafe { Box::from_raw(p) });
        }
        // Else the value is a parent's, made in another process: left as it is (see the type).
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for PerProcess<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.current.load(Ordering::Acquire);
        // SAFETY: as in `here`.
        std::fmt::Debug::fmt(&unsafe { &*p }.value, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn a_forked_child_gets_a_fresh_value_even_while_the_parents_lock_is_held() {
        let pool: PerProcess<Mutex<Vec<u32>>> = PerProcess::new_with(|parent| match parent {
            Some(_) => Mutex::new(Vec::new()),
            None => Mutex::new(vec![1]),
        });
        let parents = pool.here().lock().expect("lock");
        // What the atfork child handler does in a child (this process goes on as if it
        // were one; other tests' clients just open new connections).
        in_child();
        let child = pool.here();
        let guard = child.try_lock().expect("the child's lock is free");
        assert!(guard.is_empty(), "the child starts empty");
        drop(guard);
        assert!(std::ptr::eq(child, pool.here()), "and keeps its own");
        drop(parents);
    }
}
