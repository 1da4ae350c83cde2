//! A thread's last few values made from a token, reused while the thread keeps passing the same
//! token: a C program usually passes the same string to every call, and building what the
//! library makes of it (its checked header value, its prepared secret) costs more than a
//! comparison.

use std::cell::RefCell;

use crate::per_thread::PerThread;

/// How many tokens a thread's cache keeps.
const KEPT: usize = 4;

/// A thread's cache: the token and what was made of it, oldest first.
pub(crate) type Cache<T> = RefCell<Vec<(Box<[u8]>, T)>>;

/// The value `cache` holds for `key`, or `make(key)`, kept for next time when it succeeds.
/// When the cache is in use further up this thread's stack, or the thread has nowhere to keep
/// it, the value is made and not kept.
pub(crate) fn recent<T: Clone, E>(
    cache: &'static PerThread<Cache<T>>,
    key: &[u8],
    make: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let found = cache.with(|c| {
        c.try_borrow()
            .ok()?
            .iter()
            .find(|(k, _)| **k == *key)
            .map(|(_, v)| v.clone())
    });
    if let Some(Some(v)) = found {
        return Ok(v);
    }
    let v = make()?;
    let _ = cache.with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            if c.len() >= KEPT {
                c.remove(0);
            }
            c.push((key.into(), v.clone()));
        }
    });
    Ok(v)
}
