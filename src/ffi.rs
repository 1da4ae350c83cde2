//! The C ABI. Every export goes through [`guard`]: it resets this thread's error slot, catches
//! panics, checks pointers and UTF-8, and stores the error for `pan_last_error_message()`.
//! Nothing else lives here: the work is done by the safe core.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{Error, Result, Status};
use crate::{Client, OfflineDownload, Token};

/// Success.
pub const PAN_OK: i32 = 0;
/// A required pointer argument was NULL. The message names the parameter.
pub const PAN_ERR_NULL_ARGUMENT: i32 = 1;
/// A string argument was not valid UTF-8. The message names the parameter.
pub const PAN_ERR_INVALID_UTF8: i32 = 2;
/// A JSON argument is not valid JSON (the message gives the line and column).
pub const PAN_ERR_INVALID_JSON: i32 = 3;
/// An argument is well-formed but not acceptable: JSON of the wrong type, an unknown or
/// misspelt key, a field of the wrong type or value, a bad token, a cleartext base URL to a
/// non-loopback host. The message names the field. Nothing was sent.
pub const PAN_ERR_INVALID_ARGUMENT: i32 = 4;
/// The connection could not be made (refused, host not found) or broke (reset, closed).
pub const PAN_ERR_NETWORK: i32 = 5;
/// A time limit ran out (connect limit, or the whole call's limit).
pub const PAN_ERR_TIMEOUT: i32 = 6;
/// The TLS handshake or the server certificate's verification failed.
pub const PAN_ERR_TLS: i32 = 7;
/// The server answered with an HTTP error status (or a redirect, which is never followed)
/// and no API envelope. The message names the status.
pub const PAN_ERR_HTTP_STATUS: i32 = 8;
/// The server's answer could not be understood: not JSON, not an envelope, too large, or
/// without a valid `taskID`.
pub const PAN_ERR_BAD_RESPONSE: i32 = 9;
/// The service answered with a non-zero `code` not covered by a more precise status (e.g.
/// 5066 file does not exist, 5113 traffic quota exceeded, 1 internal error). See
/// `pan_last_api_code()` and `pan_last_trace_id()`.
pub const PAN_ERR_API: i32 = 10;
/// The service refused the access token as invalid or expired (`code` 401).
pub const PAN_ERR_UNAUTHORIZED: i32 = 11;
/// The service refused because more than three tokens of this client are live (`code` 401,
/// `tokens number has exceeded the limit`). Fetching another token makes it worse.
pub const PAN_ERR_TOKEN_LIMIT: i32 = 12;
/// The service asked to slow down (`code` 429 or HTTP 429).
pub const PAN_ERR_RATE_LIMITED: i32 = 13;
/// A panic inside the library was caught at its boundary (a bug; please report it).
pub const PAN_ERR_PANIC: i32 = 14;
/// An internal invariant failed (a bug; please report it).
pub const PAN_ERR_INTERNAL: i32 = 15;

/// This thread's last error: reset on entry to every fallible `pan_*` call.
struct Slot {
    message: CString,
    api_code: i64,
    trace_id: CString,
}

thread_local! {
    static SLOT: RefCell<Slot> = RefCell::new(Slot {
        message: CString::default(),
        api_code: 0,
        trace_id: CString::default(),
    });
}

/// A C string of `s`; interior NULs (which a server could send) become U+FFFD.
fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "\u{fffd}")).unwrap_or_default()
}

fn slot_reset() {
    SLOT.with(|s| {
        let mut s = s.borrow_mut();
        if !s.message.as_bytes().is_empty() {
            s.message = CString::default();
        }
        if !s.trace_id.as_bytes().is_empty() {
            s.trace_id = CString::default();
        }
        s.api_code = 0;
    });
}

fn slot_set_error(e: &Error) {
    SLOT.with(|s| {
        let mut s = s.borrow_mut();
        s.message = c_string(e.message());
        s.api_code = e.api_code();
        s.trace_id = c_string(e.trace_id());
    });
}

/// Records the trace ID of a successful answer.
fn record_trace(trace_id: &str) {
    SLOT.with(|s| s.borrow_mut().trace_id = c_string(trace_id));
}

/// The boundary every fallible export goes through.
fn guard(f: impl FnOnce() -> Result<()>) -> i32 {
    slot_reset();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => PAN_OK,
        Ok(Err(e)) => {
            slot_set_error(&e);
            e.status().code()
        }
        Err(_) => {
            slot_set_error(&Error::new(
                Status::Panic,
                "internal panic caught at the library boundary (a bug in pan-offline)",
            ));
            PAN_ERR_PANIC
        }
    }
}

/// Borrows a C string argument for the call.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives the call.
unsafe fn str_arg<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::new(
            Status::NullArgument,
            format!("`{name}` is NULL"),
        ));
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string valid for the call.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|e| {
        Error::new(
            Status::InvalidUtf8,
            format!(
                "`{name}` is not valid UTF-8 (bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// Checks an out-parameter before any work is done.
fn out_arg<T>(p: *mut T, name: &str) -> Result<()> {
    if p.is_null() {
        return Err(Error::new(
            Status::NullArgument,
            format!("`{name}` is NULL"),
        ));
    }
    Ok(())
}

/// Create an offline download task with the process-wide default client.
///
/// The default client is configured from the environment on first use: base URL
/// `https://open-api.123pan.com`, or `$PAN_API_BASE_URL` (e.g. `http://127.0.0.1:8080`; plain
/// `http://` only to loopback hosts); connect limit 10 s; whole-call limit 30 s; proxies from
/// `HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY` except for loopback. Redirects are not followed.
///
/// @param token        the access token, NUL-terminated: printable ASCII without spaces; a
///                     leading `Bearer ` is accepted. Borrowed for the call only; never
///                     appears in any message.
/// @param json_opts    a JSON object, NUL-terminated UTF-8, at most 65536 bytes, with the
///                     API's field names: `url` (required, an absolute http/https URL),
///                     `fileName` (string, 1 to 255 characters, no `/`, `\` or control
///                     characters; the extension is not checked), `dirID` (positive integer;
///                     0, the root, is refused), `callBackUrl` (absolute http/https URL). Any
///                     other key is refused by name. Borrowed for the call only.
/// @param task_id_out  receives the new task's ID (positive); written only on success.
/// @return `PAN_OK`, or a `PAN_ERR_*` code with the details in `pan_last_error_message()`,
///         `pan_last_api_code()` and `pan_last_trace_id()`. Invalid arguments are reported
///         before anything is sent. Not retried.
///
/// Blocks until the service answers or a time limit runs out. Safe to call from any number of
/// threads at once.
///
/// # Safety
/// Each pointer is NULL or valid as described above.
#[no_mangle]
pub unsafe extern "C" fn pan_offline_download(
    token: *const c_char,
    json_opts: *const c_char,
    task_id_out: *mut i64,
) -> i32 {
    guard(|| {
        out_arg(task_id_out, "task_id_out")?;
        // SAFETY: the caller's pointers, as documented.
        let token = Token::new(unsafe { str_arg(token, "token") }?)?;
        // SAFETY: as above.
        let opts = OfflineDownload::from_json(unsafe { str_arg(json_opts, "json_opts") }?)?;
        let created = Client::global()?.offline_download(&token, &opts)?;
        record_trace(&created.trace_id);
        // SAFETY: checked non-NULL above; the caller promises it points to an int64_t.
        unsafe { *task_id_out = created.task_id };
        Ok(())
    })
}

/// The message of this thread's last failed `pan_*` call.
///
/// @return a NUL-terminated UTF-8 string owned by the library, valid until the next fallible
///         `pan_*` call on this thread (the getters `pan_last_*`, `pan_strerror` and
///         `pan_version` do not count). Never NULL; `""` after a success. Do not free it.
///
/// The message says what failed and why, names the offending field, and carries the server's
/// message and trace ID; it never contains the access token.
#[no_mangle]
pub extern "C" fn pan_last_error_message() -> *const c_char {
    SLOT.with(|s| s.borrow().message.as_ptr())
}

/// Copy this thread's last error message into a caller's buffer, with `snprintf` rules.
///
/// @param buf      the destination, or NULL (with `buf_len` 0) to ask for the length.
/// @param buf_len  the size of `buf` in bytes. At most `buf_len - 1` bytes and a NUL are
///                 written; nothing is written when `buf` is NULL or `buf_len` is 0.
/// @return the length of the whole message in bytes, without the NUL: when it is `>= buf_len`
///         the copy was cut.
///
/// # Safety
/// `buf` is NULL or points to at least `buf_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn pan_last_error_copy(buf: *mut c_char, buf_len: usize) -> usize {
    SLOT.with(|s| {
        let s = s.borrow();
        let msg = s.message.as_bytes();
        if !buf.is_null() && buf_len > 0 {
            let n = msg.len().min(buf_len - 1);
            // SAFETY: the caller promises `buf_len` writable bytes; n + 1 <= buf_len, and the
            // slot's message cannot overlap a caller's buffer.
            unsafe {
                std::ptr::copy_nonoverlapping(msg.as_ptr().cast::<c_char>(), buf, n);
                *buf.add(n) = 0;
            }
        }
        msg.len()
    })
}

/// The service's `code` from this thread's last failure.
///
/// @return the envelope's `code` (e.g. 401, 429, 5066) when the service reported the last
///         failure, else 0 (success, local or transport errors).
#[no_mangle]
pub extern "C" fn pan_last_api_code() -> i64 {
    SLOT.with(|s| s.borrow().api_code)
}

/// The `x-traceID` of this thread's last response: quote it in reports to the provider.
///
/// @return a NUL-terminated string owned by the library, valid until the next fallible
///         `pan_*` call on this thread; `""` when the last call got no trace ID. Never NULL.
#[no_mangle]
pub extern "C" fn pan_last_trace_id() -> *const c_char {
    SLOT.with(|s| s.borrow().trace_id.as_ptr())
}

/// A static description of a status code.
///
/// @param status  any value; unknown values get "unknown status code".
/// @return a NUL-terminated static string. Never NULL. Do not free it.
#[no_mangle]
pub extern "C" fn pan_strerror(status: i32) -> *const c_char {
    Status::from_code(status)
        .map_or("unknown status code\0", Status::describe_c)
        .as_ptr()
        .cast()
}

/// The library's version, e.g. `"0.1.0"`, equal to the `PAN_OFFLINE_VERSION_*` macros of the
/// header it was built with.
///
/// @return a NUL-terminated static string. Never NULL. Do not free it.
#[no_mangle]
pub extern "C" fn pan_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> String {
        // SAFETY: the slot's pointer is a valid C string.
        unsafe { CStr::from_ptr(pan_last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_is_caught_and_reported() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let rc = guard(|| panic!("boom"));
        std::panic::set_hook(prev);
        assert_eq!(rc, PAN_ERR_PANIC);
        assert!(message().contains("panic"));
    }

    #[test]
    fn every_status_passes_the_boundary_with_its_number() {
        for status in Status::ALL.iter().copied().filter(|s| *s != Status::Ok) {
            let rc = guard(|| Err(Error::new(status, format!("failure {status:?}"))));
            assert_eq!(rc, status.code());
            assert_eq!(message(), format!("failure {status:?}"));
        }
        assert_eq!(guard(|| Ok(())), PAN_OK);
        assert_eq!(message(), "");
    }

    #[test]
    fn constants_match_the_status_numbers() {
        let pairs = [
            (PAN_OK, Status::Ok),
            (PAN_ERR_NULL_ARGUMENT, Status::NullArgument),
            (PAN_ERR_INVALID_UTF8, Status::InvalidUtf8),
            (PAN_ERR_INVALID_JSON, Status::InvalidJson),
            (PAN_ERR_INVALID_ARGUMENT, Status::InvalidArgument),
            (PAN_ERR_NETWORK, Status::Network),
            (PAN_ERR_TIMEOUT, Status::Timeout),
            (PAN_ERR_TLS, Status::Tls),
            (PAN_ERR_HTTP_STATUS, Status::HttpStatus),
            (PAN_ERR_BAD_RESPONSE, Status::BadResponse),
            (PAN_ERR_API, Status::Api),
            (PAN_ERR_UNAUTHORIZED, Status::Unauthorized),
            (PAN_ERR_TOKEN_LIMIT, Status::TokenLimit),
            (PAN_ERR_RATE_LIMITED, Status::RateLimited),
            (PAN_ERR_PANIC, Status::Panic),
            (PAN_ERR_INTERNAL, Status::Internal),
        ];
        for (c, s) in pairs {
            assert_eq!(c, s.code());
        }
    }

    #[test]
    fn interior_nul_from_a_server_does_not_cut_the_message() {
        assert_eq!(c_string("a\0b").to_str().ok(), Some("a\u{fffd}b"));
    }
}
