//! The C ABI of the log callback.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use super::{client_arg, guard, PanClient};
use crate::error::Error;
use crate::log::Level;

/// Log level: a call failed.
pub const PAN_LOG_ERROR: i32 = 1;
/// Log level: something went wrong and was handled (a retry, a pause the service asked for).
pub const PAN_LOG_WARN: i32 = 2;
/// Log level: each answer (HTTP status, `code`, trace ID, milliseconds), token fetches and
/// renewals.
pub const PAN_LOG_INFO: i32 = 3;
/// Log level: each request (method, path, attempt), connections opened, reused and closed with
/// the route (direct or the proxy), pacing waits.
pub const PAN_LOG_DEBUG: i32 = 4;

/// Receives a client's log lines.
///
/// @param user_data  the pointer given to `pan_client_set_log()`, passed through.
/// @param level      a `PAN_LOG_*` value.
/// @param message    one line of UTF-8 text, NUL-terminated, without control characters and
///                   without any piece of a secret; valid only during the call.
pub type PanLogCallback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, level: i32, message: *const c_char)>;

/// The C callback and its user data, callable from any thread that makes a call.
struct CSink {
    f: unsafe extern "C" fn(*mut c_void, i32, *const c_char),
    user_data: usize,
}

/// Set (or clear) the log of a client.
///
/// Lines are written for each request and answer, retries and pacing waits with their reason
/// and length, token fetches and renewals, and connections opened, reused and closed with the
/// route chosen. Each line is passed to `cb` on the thread that made the call, one line per
/// call of `cb`. No secret (token, `clientSecret`, passwords) appears in any line, in part or
/// encoded. Setting or clearing the log is safe while other threads use the client: this
/// function waits for the callbacks running on other threads to return, and once it has
/// returned the previous callback is never called again (its `user_data` may be freed).
/// Lines of calls made from inside `cb` are not written (no recursion).
///
/// @param client     a client, or NULL for the process-wide default one.
/// @param min_level  the most detailed level written: `PAN_LOG_ERROR` (1) to `PAN_LOG_DEBUG`
///                   (4); 0 turns the log off.
/// @param cb         the callback, or NULL for no log. It must not call
///                   `pan_client_free()` on the same client; `pan_client_set_log()` called
///                   from inside it fails with `PAN_ERR_INVALID_ARGUMENT`.
/// @param user_data  passed to `cb` unchanged; may be NULL. Must stay valid until the log is
///                   set again or cleared.
/// @return `PAN_OK`; `PAN_ERR_INVALID_ARGUMENT` for a level other than 0 to 4 or a call
///         from inside a log callback; the error of
///         the process-wide client's configuration when `client` is NULL and it cannot be
///         made.
///
/// With no log set a call costs nothing more than an atomic load per line it would write.
///
/// # Safety
/// `client` is NULL or live; `cb` is NULL or a valid function, callable from any thread.
#[no_mangle]
pub unsafe extern "C" fn pan_client_set_log(
    client: *mut PanClient,
    min_level: i32,
    cb: PanLogCallback,
    user_data: *mut c_void,
) -> i32 {
    guard(|| {
        // SAFETY: the caller's pointer, as documented.
        let client = unsafe { client_arg(client) }?;
        let level = match (min_level, cb) {
            (0, _) | (_, None) => None,
            (n, Some(f)) => Some((
                Level::from_code(n).ok_or_else(|| {
                    Error::invalid(format!(
                        "`min_level` is {n}, not 0 (off) or PAN_LOG_ERROR (1) to PAN_LOG_DEBUG (4)"
                    ))
                })?,
                CSink {
                    f,
                    user_data: user_data as usize,
                },
            )),
        };
        match level {
            None => client.set_log(Level::Error, None)?,
            Some((level, sink)) => client.set_log(
                level,
                Some(Arc::new(move |level: Level, line: &str| {
                    // Lines are escaped: no NUL inside.
                    let line = CString::new(line).unwrap_or_default();
                    // SAFETY: the caller promises a valid function and user data for as
                    // long as the log is set.
                    unsafe { (sink.f)(sink.user_data as *mut c_void, level as i32, line.as_ptr()) };
                })),
            )?,
        }
        Ok(())
    })
}
