//! Values of which each thread has its own (its error slot, its token caches, its spare
//! buffers), kept under a pthread key instead of in Rust's `thread_local!`.
//!
//! A host program may make a thread's first call into the library from a pthread key
//! destructor (logging libraries flush at thread exit). glibc runs the destructors of
//! `thread_local!` values before those of keys, so a `thread_local!` value first made inside a
//! key's destructor never has its own run: its memory (about 9 KiB per thread here) would leak
//! once per such thread. A key's destructor also runs for a value set while other keys'
//! destructors run (POSIX repeats the rounds, up to `PTHREAD_DESTRUCTOR_ITERATIONS`).
//! The library is linked with `-z nodelete` (see `build.rs`): a key's destructor must stay
//! mapped for as long as a thread may exit.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::sync::OnceLock;

/// One value per thread, made by `init` on the thread's first use.
pub(crate) struct PerThread<T: 'static> {
    /// The key, made on first use; `None` if the process had no key left to give.
    key: OnceLock<Option<libc::pthread_key_t>>,
    init: fn() -> T,
}

impl<T: 'static> PerThread<T> {
    pub(crate) const fn new(init: fn() -> T) -> PerThread<T> {
        PerThread {
            key: OnceLock::new(),
            init,
        }
    }

    /// Runs `f` on this thread's value. `None` only when no key could be made or set (the
    /// process has used up its 1,024 keys, or memory): the callers then go without the value
    /// (a cache, a buffer, the error slot), never fail.
    pub(crate) fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> Option<R> {
        let key = (*self.key.get_or_init(|| {
            let mut key: libc::pthread_key_t = 0;
            // SAFETY: `destroy::<T>` frees exactly what `with` sets under this key: a
            // `Box<T>` pointer (glibc never calls it with NULL).
            let rc = unsafe { libc::pthread_key_create(&mut key, Some(destroy::<T>)) };
            (rc == 0).then_some(key)
        }))?;
        // SAFETY: a key made above, never deleted.
        let mut p = unsafe { libc::pthread_getspecific(key) }
            .cast::<T>()
            .cast_const();
        if p.is_null() {
            let made = Box::into_raw(Box::new((self.init)()));
            // SAFETY: as above; `made` is a valid pointer this thread owns.
            if unsafe { libc::pthread_setspecific(key, made.cast::<c_void>()) } != 0 {
                // SAFETY: not set under the key, so owned here alone.
                drop(unsafe { Box::from_raw(made) });
                return None;
            }
            p = made;
        }
        // SAFETY: `p` is this thread's value. It is freed only by `destroy` when the thread
        // exits, after glibc has set the key's value back to NULL, so no access on this thread
        // after that sees `p`, and no other thread ever sees it.
        Some(f(unsafe { &*p }))
    }
}

/// A key's destructor: frees the thread's value.
unsafe extern "C" fn destroy<T>(p: *mut c_void) {
    // SAFETY: `p` is the `Box<T>` that `with` set under this key for this thread.
    drop(unsafe { Box::from_raw(p.cast::<T>()) });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static DROPPED: AtomicUsize = AtomicUsize::new(0);

    struct Counted(Cell<u32>);

    impl Drop for Counted {
        fn drop(&mut self) {
            DROPPED.fetch_add(1, Ordering::SeqCst);
        }
    }

    static VALUE: PerThread<Counted> = PerThread::new(|| Counted(Cell::new(0)));

    #[test]
    fn each_thread_has_its_own_value_and_it_is_freed_when_the_thread_exits() {
        VALUE.with(|v| v.0.set(7));
        let before = DROPPED.load(Ordering::SeqCst);
        std::thread::spawn(|| {
            assert_eq!(
                VALUE.with(|v| v.0.get()),
                Some(0),
                "a new thread's own value"
            );
            VALUE.with(|v| v.0.set(1));
        })
        .join()
        .expect("thread");
        assert_eq!(
            DROPPED.load(Ordering::SeqCst),
            before + 1,
            "freed at its exit"
        );
        assert_eq!(VALUE.with(|v| v.0.get()), Some(7));
    }
}
