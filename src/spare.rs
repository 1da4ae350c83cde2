//! Buffers a thread keeps from one call to the next: the answer's body and its trace ID.
//!
//! Each would otherwise cost an allocation on every call (issue 13 counts them: a create
//! over a kept-alive connection is a dozen allocations, two of them these). A buffer is taken
//! from the thread's spare when a call needs one and given back when the value holding it is
//! dropped, on whatever thread that is. A buffer grown large by an unusual answer is freed
//! instead of kept; a thread's spares are freed when it exits (see `per_thread.rs`).

use std::cell::Cell;
use std::fmt;

use crate::per_thread::PerThread;

/// Largest buffer kept: several times an answer of the API (a few hundred bytes), so that
/// one large answer does not stay allocated for the life of the thread.
const MAX_KEPT: usize = 16 * 1024;

static BODY: PerThread<Cell<Vec<u8>>> = PerThread::new(|| Cell::new(Vec::new()));
static TRACE_ID: PerThread<Cell<String>> = PerThread::new(|| Cell::new(String::new()));

/// The thread's spare in `key`, or an empty new one.
fn take<T: Default>(key: &'static PerThread<Cell<T>>) -> T {
    key.with(Cell::take).unwrap_or_default()
}

/// Keeps `buf` as the thread's spare in `key` (the one there, if any, is freed; `buf` too when
/// the thread has nowhere to keep it).
fn give_back<T>(key: &'static PerThread<Cell<T>>, buf: T) {
    let _ = key.with(|c| c.set(buf));
}

/// An answer's body, read into the thread's spare buffer.
pub(crate) struct Body(pub(crate) Vec<u8>);

impl Body {
    /// An empty body in the thread's spare buffer.
    pub(crate) fn spare() -> Body {
        let mut buf = take(&BODY);
        buf.clear();
        Body(buf)
    }
}

impl std::ops::Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        if self.0.capacity() <= MAX_KEPT {
            give_back(&BODY, std::mem::take(&mut self.0));
        }
    }
}

/// A request's trace ID: the answer's `x-traceID`, as the service wrote it (secrets removed,
/// at most 200 characters), or empty when the answer had none. Read it as a `&str` (it
/// dereferences to one); its buffer is reused by the thread's next call once it is dropped.
#[derive(Default)]
pub struct TraceId(String);

impl TraceId {
    /// A trace ID holding a copy of `s`, in the thread's spare buffer.
    pub(crate) fn copy_of(s: &str) -> TraceId {
        let mut buf = take(&TRACE_ID);
        buf.clear();
        buf.push_str(s);
        TraceId(buf)
    }

    /// The trace ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for TraceId {
    fn from(s: String) -> TraceId {
        TraceId(s)
    }
}

impl From<TraceId> for String {
    fn from(mut t: TraceId) -> String {
        std::mem::take(&mut t.0)
    }
}

impl std::ops::Deref for TraceId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for TraceId {
    fn drop(&mut self) {
        if self.0.capacity() != 0 && self.0.capacity() <= MAX_KEPT {
            give_back(&TRACE_ID, std::mem::take(&mut self.0));
        }
    }
}

impl Clone for TraceId {
    fn clone(&self) -> TraceId {
        TraceId::copy_of(&self.0)
    }
}

impl PartialEq for TraceId {
    fn eq(&self, other: &TraceId) -> bool {
        self.0 == other.0
    }
}

impl Eq for TraceId {}

impl PartialEq<str> for TraceId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for TraceId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_to_the_thread_and_large_ones_do_not() {
        let t = TraceId::copy_of("abc_kong");
        let at = t.as_ptr();
        drop(t);
        let again = TraceId::copy_of("def");
        assert_eq!(again.as_ptr(), at, "the spare buffer is reused");
        assert_eq!(again, "def");
        assert_eq!(again.clone(), again);
        assert_eq!(String::from(again), "def");

        let mut b = Body::spare();
        b.0.extend_from_slice(b"{}");
        let at = b.0.as_ptr();
        drop(b);
        let b = Body::spare();
        assert!(b.is_empty(), "a reused body starts empty");
        assert_eq!(b.0.as_ptr(), at);
        drop(b);

        let mut big = Body::spare();
        big.0.resize(MAX_KEPT + 1, 0);
        drop(big);
        assert!(
            Body::spare().0.capacity() <= MAX_KEPT,
            "a large buffer is not kept"
        );
    }

    #[test]
    fn a_buffer_dropped_on_another_thread_stays_there() {
        let t = TraceId::copy_of("x");
        std::thread::spawn(move || drop(t)).join().expect("thread");
        // This thread's spare went with the value; a new one is made.
        assert_eq!(TraceId::copy_of("y"), "y");
    }
}
