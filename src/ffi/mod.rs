//! The C ABI. Every export goes through [`guard`]: it resets this thread's error slot, catches
//! panics, checks pointers and UTF-8, and stores the error for `pan_last_error_message()`.
//! Nothing else lives here: the work is done by the safe core.

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use crate::error::{Error, Result, Status};
use crate::options::Checked;
use crate::per_thread::PerThread;
use crate::{Callback, Client, Config, Progress, Target, Token};

mod bulk;
mod log;
mod token;
pub use bulk::*;
pub use log::*;
pub use token::*;

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
/// The server's answer could not be understood: not JSON, not an envelope, too large.
/// (After a create call such an answer is `PAN_ERR_OUTCOME_UNKNOWN`: the request had been
/// sent whole.)
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
/// The progress callback of `pan_offline_download_wait()` returned non-zero.
pub const PAN_ERR_CANCELLED: i32 = 16;
/// A create call (`pan_offline_download()`, `pan_client_offline_download()`,
/// `pan_oss_offline_download()`, and each item of a batch) had written its whole request,
/// and what came back is not the service's own answer: the connection broke or was closed,
/// a TLS record was corrupt or an alert came, the time limit ran out while waiting, the
/// answer was cut short, unreadable or without a valid `taskID`, a redirect, or a gateway's
/// page without an API envelope (any HTTP status but 429). What left the socket decides,
/// not the kind of error. The service may have created the task. It is never retried by the library: check (the service has no
/// endpoint to list tasks; keep your own record, e.g. a journal) before creating it again.
/// Queries (progress, tokens) report `PAN_ERR_TIMEOUT` / `PAN_ERR_NETWORK` instead. New in
/// 0.1 after the first codes: callers must treat codes they do not know as errors.
pub const PAN_ERR_OUTCOME_UNKNOWN: i32 = 17;
/// The service refused a create because too many of the account's offline tasks are running
/// (its message `同时下载的任务超出最大限制，不能下载`, whatever its code; the code and trace
/// ID are kept as for any API error). The task certainly was not created: try again later
/// (peers wait 5 to 60 s). Not retried by the single create calls.
pub const PAN_ERR_TASK_LIMIT: i32 = 18;
/// A batch stopped sending because the service answered `code` 1 ("internal error") to 3
/// creates in a row: after bursts of writes the service has been seen to answer every write
/// of an account that way for hours (a penalty). The items not sent get this status; the
/// three refused keep their own (`PAN_ERR_API`, code 1). Wait a long while (hours) before
/// trying again. Single create calls report code 1 as `PAN_ERR_API`. New in 0.1 after the
/// first codes.
pub const PAN_ERR_ACCOUNT_PENALTY: i32 = 19;

/// Task status from the progress query: downloading.
pub const PAN_TASK_DOWNLOADING: i32 = 0;
/// Task status from the progress query: failed (`progress` drops to 0).
pub const PAN_TASK_FAILED: i32 = 1;
/// Task status from the progress query: succeeded.
pub const PAN_TASK_SUCCEEDED: i32 = 2;
/// Task status from the progress query: retrying. A number outside 0–3 (the service may add
/// statuses) is passed on as it came, in `status_out` and to progress callbacks, and means
/// "not finished": waits go on polling until their time limit.
pub const PAN_TASK_RETRYING: i32 = 3;

/// Callback status (`pan_callback_parse()`): the download succeeded. The callback's scale
/// (0 success, 1 failure) differs from the progress query's `PAN_TASK_*`.
pub const PAN_CALLBACK_SUCCEEDED: i32 = 0;
/// Callback status (`pan_callback_parse()`): the download failed.
pub const PAN_CALLBACK_FAILED: i32 = 1;

/// A client: configuration, a connection pool and a token cache. Opaque; create it with
/// `pan_client_new()`, free it with `pan_client_free()`. Thread-safe: share one per process.
pub struct PanClient {
    inner: Client,
    /// Calls running with this client (the low bits) and whether `pan_client_free()` was
    /// called ([`FREED`]): a callback that frees the client of the call it runs in defers the
    /// free to that call's return, instead of freeing what the call still uses.
    uses: std::sync::atomic::AtomicUsize,
}

/// The bit of [`PanClient::uses`] that says the client was given to `pan_client_free()`.
const FREED: usize = 1 << (usize::BITS - 1);

/// A client in use by one call: the process-wide one, or one of `pan_client_new()` whose use
/// is counted, so that a `pan_client_free()` meanwhile (from a callback) waits for the call.
pub(crate) struct ClientRef {
    /// NULL: the process-wide client.
    owner: *const PanClient,
    global: Option<&'static Client>,
}

impl std::ops::Deref for ClientRef {
    type Target = Client;
    fn deref(&self) -> &Client {
        match self.global {
            Some(c) => c,
            // SAFETY: the use is counted, so the client is not freed while this lives.
            None => unsafe { &(*self.owner).inner },
        }
    }
}

impl Drop for ClientRef {
    fn drop(&mut self) {
        if self.global.is_some() {
            return;
        }
        // SAFETY: counted as in use, so still allocated.
        let uses = unsafe { &(*self.owner).uses };
        let before = uses.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        if before == FREED | 1 {
            // The last use of a client freed meanwhile: free it now.
            let _ = catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: from Box::into_raw in pan_client_new; no use is left.
                drop(unsafe { Box::from_raw(self.owner.cast_mut()) });
            }));
        }
    }
}

/// Called by `pan_offline_download_wait()` after each poll.
///
/// @param user_data  the pointer given to `pan_offline_download_wait()`, passed through.
/// @param task_id    the task being waited for.
/// @param progress   percent done, 0 to 100 (may have a fraction).
/// @param status     a `PAN_TASK_*` value.
/// @return 0 to go on waiting; any other value stops the wait with `PAN_ERR_CANCELLED`.
pub type PanProgressCallback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, task_id: i64, progress: f64, status: i32) -> i32,
>;

/// This thread's last error: reset on entry to every fallible `pan_*` call.
struct Slot {
    status: i32,
    message: CText,
    api_code: i64,
    trace_id: CText,
    /// How many fallible calls are running on this thread: more than one while a callback
    /// makes a call inside another.
    depth: u32,
    /// The `depth` of the call that set `trace_id` (0: none since the running call began), so
    /// that a call nested in a callback cannot leave its trace ID as the outer call's.
    trace_depth: u32,
}

/// A NUL-terminated text for a getter to hand out, whose buffer is kept: setting it again
/// reuses the capacity, so a thread's calls allocate nothing here after its first.
struct CText(Vec<u8>);

impl CText {
    fn new() -> CText {
        CText(vec![0])
    }

    /// Sets the text; interior NULs (which a server could send) become U+FFFD.
    fn set(&mut self, s: &str) {
        self.0.clear();
        if !s.as_bytes().contains(&0) {
            // The usual text: one copy.
            self.0.extend_from_slice(s.as_bytes());
            self.0.push(0);
            return;
        }
        for (i, piece) in s.split('\0').enumerate() {
            if i > 0 {
                self.0.extend_from_slice("\u{fffd}".as_bytes());
            }
            self.0.extend_from_slice(piece.as_bytes());
        }
        self.0.push(0);
    }

    fn clear(&mut self) {
        self.0.clear();
        self.0.push(0);
    }

    /// The text without its NUL.
    fn as_bytes(&self) -> &[u8] {
        self.0.split_last().map_or(&[], |(_, text)| text)
    }

    fn as_ptr(&self) -> *const c_char {
        self.0.as_ptr().cast()
    }
}

static SLOT: PerThread<RefCell<Slot>> = PerThread::new(|| {
    RefCell::new(Slot {
        status: 0,
        message: CText::new(),
        api_code: 0,
        trace_id: CText::new(),
        depth: 0,
        trace_depth: 0,
    })
});

/// What the string getters return when this thread has no slot (see [`with_slot`]).
static EMPTY: &[u8; 1] = b"\0";

/// A C string of `s` for the caller to own, by [`CText::set`]'s rule.
fn c_string(s: &str) -> CString {
    let mut text = CText(Vec::with_capacity(s.len() + 1));
    text.set(s);
    CString::from_vec_with_nul(text.0).unwrap_or_default()
}

/// Runs `f` on this thread's slot (made on the thread's first call, also when that call
/// comes from a thread-exit destructor; freed when the thread ends). When the slot is in use
/// or the thread can have none (the process used up its pthread keys), `f` is not run:
/// `None`. Never panics.
fn with_slot<R>(f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
    SLOT.with(|s| s.try_borrow_mut().ok().map(|mut s| f(&mut s)))
        .flatten()
}

/// A fallible call begins: nothing of an earlier call is left.
fn slot_reset() {
    with_slot(|s| {
        s.message.clear();
        s.trace_id.clear();
        s.api_code = 0;
        s.status = 0;
        s.depth += 1;
        s.trace_depth = 0;
    });
}

/// After a success: no error, whatever a call nested in a callback left behind; the trace ID
/// only if the call itself recorded one ([`record_trace`]).
fn slot_succeeded() {
    with_slot(|s| {
        s.message.clear();
        s.api_code = 0;
        s.status = 0;
        if s.trace_depth != s.depth {
            s.trace_id.clear();
        }
        s.depth = s.depth.saturating_sub(1);
    });
}

fn slot_set_error(e: &Error) {
    with_slot(|s| {
        s.status = e.status() as i32;
        s.message.set(e.message());
        s.api_code = e.api_code();
        s.trace_id.set(e.trace_id());
        s.depth = s.depth.saturating_sub(1);
    });
}

/// Records the trace ID of a successful answer as the running call's.
fn record_trace(trace_id: &str) {
    with_slot(|s| {
        s.trace_id.set(trace_id);
        s.trace_depth = s.depth;
    });
}

/// The boundary every fallible export goes through: reset the slot, catch panics, store the
/// outcome — after the work, so that a `pan_*` call made inside a callback cannot leave its
/// error behind as this call's.
fn boundary<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    slot_reset();
    let result = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(Error::new(
            Status::Panic,
            "internal panic caught at the library boundary (a bug in pan-offline)",
        ))
    });
    match &result {
        Ok(_) => slot_succeeded(),
        Err(e) => slot_set_error(e),
    }
    result
}

/// A getter's boundary: a panic (there is none to expect) gives `fallback`, never an unwind
/// into C.
fn getter<R>(fallback: R, f: impl FnOnce() -> Option<R>) -> R {
    catch_unwind(AssertUnwindSafe(f))
        .ok()
        .flatten()
        .unwrap_or(fallback)
}

/// [`boundary`] for the functions that return a status code.
fn guard(f: impl FnOnce() -> Result<()>) -> i32 {
    match boundary(f) {
        Ok(()) => PAN_OK,
        Err(e) => e.status().code(),
    }
}

/// The client a caller passed, or the process-wide one for NULL.
///
/// # Safety
/// `client` is NULL or a live pointer from `pan_client_new()`.
unsafe fn client_arg(client: *const PanClient) -> Result<ClientRef> {
    if client.is_null() {
        return Client::global().map(|c| ClientRef {
            owner: client,
            global: Some(c),
        });
    }
    // SAFETY: the caller promises a live client from pan_client_new() (or one whose free
    // is deferred, which the count below finds).
    let uses = unsafe { &(*client).uses };
    let before = uses.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    if before & FREED != 0 {
        uses.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        return Err(Error::invalid(
            "`client` was given to pan_client_free() (from a callback of a call still \
             running with it): it cannot be used any more",
        ));
    }
    Ok(ClientRef {
        owner: client,
        global: None,
    })
}

/// A string argument for which NULL means "the client's own".
///
/// # Safety
/// `p` is NULL or a NUL-terminated string valid for the call.
unsafe fn opt_str_arg<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, and valid for the call as the caller promises.
    unsafe { str_arg(p, name) }.map(Some)
}

/// A token argument: NULL means "the client's own".
///
/// # Safety
/// `token` is NULL or a NUL-terminated string valid for the call.
unsafe fn token_arg(token: *const c_char) -> Result<Option<Token>> {
    // SAFETY: as promised by the caller.
    unsafe { opt_str_arg(token, "token") }?
        .map(Token::recent)
        .transpose()
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

/// Create an offline download task with the process-wide default client: the same as
/// `pan_client_offline_download(NULL, token, json_opts, task_id_out)`, but `token` is required.
///
/// The default client is configured from the environment on first use: base URL
/// `https://open-api.123pan.com`, or `$PAN_API_BASE_URL` (e.g. `http://127.0.0.1:8080`; plain
/// `http://` only to loopback hosts); the other settings are the defaults listed at
/// `pan_client_new()`, the proxy read from the environment as described there (a proxy
/// variable that cannot be used fails every call with `PAN_ERR_INVALID_ARGUMENT` naming the
/// variable). For an https base URL the CA certificates of `$SSL_CERT_FILE` or of the
/// system's bundle are read then; if none can be read, every call fails with `PAN_ERR_TLS`
/// and a message naming the files tried (use `pan_client_new()` with `caFile` instead).
///
/// @param token        the access token, NUL-terminated: printable ASCII without spaces; a
///                     leading `Bearer ` is accepted. Borrowed for the call only; never
///                     appears in any message.
/// @param json_opts    a JSON object, NUL-terminated UTF-8, at most 65536 bytes, with the
///                     API's field names: `url` (required, an absolute http/https URL of at
///                     most 8192 bytes), `fileName` (string, 1 to 255 characters, no `/`, `\`
///                     or control characters; the extension is not checked), `dirID` (positive
///                     integer; 0, the root, is refused), `callBackUrl` (absolute http/https
///                     URL, at most 8192 bytes). Any other key is refused by name. Borrowed
///                     for the call only.
/// @param task_id_out  receives the new task's ID (positive); written only on success.
/// @return `PAN_OK`, or a `PAN_ERR_*` code with the details in `pan_last_error_message()`,
///         `pan_last_api_code()` and `pan_last_trace_id()`. Invalid arguments are reported
///         before anything is sent.
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
    if token.is_null() {
        return guard(|| Err(Error::new(Status::NullArgument, "`token` is NULL")));
    }
    // SAFETY: the caller's pointers, passed on unchanged.
    unsafe { pan_client_offline_download(std::ptr::null(), token, json_opts, task_id_out) }
}

/// Create a client.
///
/// @param json_config  NULL for the defaults, or a JSON object (NUL-terminated UTF-8, at most
///                     65536 bytes) with any of these keys; unknown or mistyped keys are
///                     refused by name:
///   - `baseUrl` (string): default `$PAN_API_BASE_URL` or `https://open-api.123pan.com`;
///     plain `http://` only to loopback hosts. Checked whole here: a host of ASCII letters,
///     digits, `-`, `.`, `_` or an IP address (write an internationalised name in its `xn--`
///     form), a port from 1 to 65535, no user name or password, a path of RFC 3986
///     characters and no query or fragment; what passes is a URL every call can carry.
///   - `connectTimeoutMs` (integer, 1 to 86400000): connect limit, default 10000.
///   - `timeoutMs` (integer, 1 to 86400000): limit of one whole call including its retries,
///     default 30000.
///   - `maxRetries` (integer, 0 to 10): retries of requests the service certainly did not act
///     on, default 3.
///   - `pollIntervalMs` (integer, 200 to 86400000): pause between polls of
///     `pan_offline_download_wait()`, default 1000.
///   - `userAgent` (string): default `pan-offline/<version>`; `""` sends none.
///   - `proxy` (string): a proxy URL, or `""` for none. Schemes `http`, `https`, `socks4`,
///     `socks4a`, `socks5` (the target's name resolved here) and `socks5h` (resolved by the
///     proxy), in any case; no scheme means `http`; default ports 80, 443, 1080; a user name
///     and password percent-encoded before `@`. Default, as curl, Go and Python read the
///     environment: for an https base URL the first of `https_proxy`, `HTTPS_PROXY`,
///     `all_proxy`, `ALL_PROXY` that is set and not empty (`http_proxy` never); none for a
///     base URL whose host is `localhost` or a loopback address. A proxy URL that cannot be
///     used (bad scheme, port, host...) is refused here with PAN_ERR_INVALID_ARGUMENT naming
///     where it came from (the `proxy` key, or `$https_proxy`). A plain-http base URL is never
///     sent through a proxy that is not on loopback: refused here, naming `proxy`.
///   - `noProxy` (string): hosts reached without a proxy: comma-separated, trimmed, without
///     regard to case; `*` for all; `example.com`, `.example.com` or `*.example.com` for the
///     domain and its subdomains; `host:port`; IP addresses and CIDR ranges (`10.0.0.0/8`).
///     Default `$no_proxy`, else `$NO_PROXY`. Applies to the configured proxy too, as in curl.
///   - `resolve` (array of strings): `"HOST:PORT:ADDRESS[,ADDRESS]..."` as curl's `--resolve`
///     (IPv6 in brackets): connections to HOST:PORT, the base URL's or a proxy's, go to these
///     addresses without a lookup. A plain-http base URL whose host is mapped to loopback
///     addresses only counts as loopback. With a plain-http base URL, every address the
///     library connects to must be loopback (a resolver that maps `localhost` elsewhere is
///     refused with PAN_ERR_INVALID_ARGUMENT before connecting).
///   - `clientID`, `clientSecret` (strings, both or neither): let the client fetch, cache and
///     renew its own access token, so that every function taking a `token` accepts NULL.
///   - `createQps`, `progressQps` (numbers: 0, or 0.001 to 100000): creates and progress queries per
///     second that the client sends, all its threads together (the image-hosting calls
///     share them); 0 turns pacing off. Defaults 1 and 5 (what peers do), and no pacing for a
///     loopback base URL unless given; the process-wide client reads `$PAN_CREATE_QPS` and
///     `$PAN_PROGRESS_QPS`. A call waits for its turn within its `timeoutMs`; a turn that
///     cannot come in time fails with `PAN_ERR_TIMEOUT` without sending (a create is then
///     certainly not made). Turns are `1.1/qps` seconds apart (a 10 % margin: a server
///     counting every request in a trailing second sees at most `qps` even with 100 ms of
///     jitter). Retries take turns like first tries, and a 429 (the envelope's, or a
///     gateway's HTTP 429) pauses every call of that kind on the client; when the pause ends
///     the waiting calls go one interval apart, never in a burst. No lock is held while a
///     call waits.
///   - `sharedState` (string): share the access token and the pacing schedules with every
///     other process of the account that names the same state, so that their tokens and
///     rates are the account's, not each process's. A directory path (created 0700 if
///     missing; one owned by another user or writable by group or others is refused here
///     with PAN_ERR_INVALID_ARGUMENT naming `sharedState`, as ssh refuses such a `~/.ssh`):
///     the processes of one machine. `redis://[:PASSWORD@]HOST:PORT/DB` or `rediss://` (TLS):
///     processes on many machines; no connection is made here, and a Redis that is down or
///     silent makes the calls that need it fail with PAN_ERR_NETWORK or PAN_ERR_TIMEOUT
///     naming the store, within `timeoutMs` (each Redis call at most 5 s). A call needing the
///     client's own token uses the stored one when it is valid; only one process fetches at
///     a time (the others wait for it and use its token); on a 401 or "tokens number has
///     exceeded the limit" a process reads the store again and fetches only if the stored
///     token is the refused one. Only the access token, its times and the last fetch's
///     failure are stored, never `clientSecret` or a password. Paced kinds of call take
///     their turns in the shared schedule (unpaced ones stay per process). Default: none;
///     the process-wide client reads `$PAN_SHARED_STATE`. See the README's "Many processes
///     and machines".
///   - `caFile` (string): a PEM file of the certificate authorities to trust for https;
///     default `$SSL_CERT_FILE`, else the system's CA bundle (the first of
///     /etc/ssl/certs/ca-certificates.crt, /etc/pki/tls/certs/ca-bundle.crt,
///     /etc/ssl/ca-bundle.pem, /etc/pki/tls/cacert.pem,
///     /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem, /etc/ssl/cert.pem that exists).
///     Beside the bundle (not with `caFile`), the certificates in the directories of
///     `$SSL_CERT_DIR` (colon-separated), as OpenSSL reads them. PEM `CERTIFICATE` and
///     OpenSSL's `TRUSTED CERTIFICATE` sections are read. Read once, here: a `caFile` that
///     cannot be read or holds no certificate fails with PAN_ERR_INVALID_ARGUMENT, a missing
///     or unreadable system bundle with PAN_ERR_TLS. TLS failures name the trust store used.
///
/// @return a new client, to be freed with `pan_client_free()`; NULL on error, with the
///         message in `pan_last_error_message()`.
///
/// # Safety
/// `json_config` is NULL or a NUL-terminated string valid for the call.
#[no_mangle]
pub unsafe extern "C" fn pan_client_new(json_config: *const c_char) -> *mut PanClient {
    boundary(|| {
        let config = if json_config.is_null() {
            Config::default()
        } else {
            // SAFETY: non-NULL, valid for the call as the caller promises.
            Config::from_json(unsafe { str_arg(json_config, "json_config") }?)?
        };
        Ok(Box::into_raw(Box::new(PanClient {
            inner: Client::new(config)?,
            uses: std::sync::atomic::AtomicUsize::new(0),
        })))
    })
    .unwrap_or(std::ptr::null_mut())
}

/// Free a client from `pan_client_new()`. NULL is fine; freeing twice is not. Called while
/// calls with this client run — from one of their callbacks (progress, batch, log, token
/// source) or, though it is a mistake, from another thread — the free is deferred until the
/// last of them returns; calls made with the client after this one fail with
/// `PAN_ERR_INVALID_ARGUMENT` meanwhile.
///
/// @param client  the client to free, or NULL (nothing is done).
///
/// # Safety
/// `client` is NULL or a live pointer from `pan_client_new()`, not used after this call.
#[no_mangle]
pub unsafe extern "C" fn pan_client_free(client: *mut PanClient) {
    if client.is_null() {
        return;
    }
    // SAFETY: a live client from pan_client_new(), as the caller promises.
    let uses = unsafe { &(*client).uses };
    let before = uses.fetch_or(FREED, std::sync::atomic::Ordering::AcqRel);
    if before != 0 {
        // In use by a call running now (this is its callback, or another thread's call):
        // freed when the last of them returns.
        return;
    }
    // A panic in a destructor must not unwind into C either.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the pointer came from Box::into_raw in pan_client_new, and the caller gives
        // up its use.
        drop(unsafe { Box::from_raw(client) });
    }));
}

/// Create an offline download task (`POST /api/v1/offline/download`).
///
/// @param client       a client, or NULL for the process-wide default one.
/// @param token        the access token (see `pan_offline_download()`), or NULL to use the
///                     client's own (it needs `clientID` and `clientSecret`). An explicit
///                     token always wins.
/// @param json_opts    the options, as for `pan_offline_download()`.
/// @param task_id_out  receives the new task's ID; written only on success.
/// @return `PAN_OK` or a `PAN_ERR_*` code.
///
/// Retried (up to `maxRetries`, with exponential backoff and jitter, within `timeoutMs`) only
/// when the service certainly did not act: a 429 answer (honouring `Retry-After`, capped at
/// 10 s), or a connection that failed before the request was sent. Never after the request
/// may have reached the service, so a retry never creates a second task.
///
/// # Safety
/// `client` is NULL or live; the strings are NULL or NUL-terminated; `task_id_out` is NULL or
/// points to an `int64_t`.
#[no_mangle]
pub unsafe extern "C" fn pan_client_offline_download(
    client: *const PanClient,
    token: *const c_char,
    json_opts: *const c_char,
    task_id_out: *mut i64,
) -> i32 {
    // SAFETY: the caller's pointers, passed on unchanged.
    unsafe { create(client, token, json_opts, task_id_out, Target::Drive) }
}

/// Create an offline download task on image hosting (`POST /api/v1/oss/offline/download`):
/// images only, at most 100 MB.
///
/// @param client       a client, or NULL for the process-wide default one.
/// @param token        the access token, or NULL for the client's own.
/// @param json_opts    a JSON object: `url` (required), `fileName`, `businessDirID` (a
///                     **string**), `callBackUrl`. `type` (always 1) is sent by the library.
/// @param task_id_out  receives the new task's ID; written only on success.
/// @return `PAN_OK` or a `PAN_ERR_*` code.
///
/// # Safety
/// As for `pan_client_offline_download()`.
#[no_mangle]
pub unsafe extern "C" fn pan_oss_offline_download(
    client: *const PanClient,
    token: *const c_char,
    json_opts: *const c_char,
    task_id_out: *mut i64,
) -> i32 {
    // SAFETY: the caller's pointers, passed on unchanged.
    unsafe { create(client, token, json_opts, task_id_out, Target::Image) }
}

/// # Safety
/// As for `pan_client_offline_download()`.
unsafe fn create(
    client: *const PanClient,
    token: *const c_char,
    json_opts: *const c_char,
    task_id_out: *mut i64,
    target: Target,
) -> i32 {
    guard(|| {
        out_arg(task_id_out, "task_id_out")?;
        // SAFETY: the caller's pointers, as documented.
        let token = unsafe { token_arg(token) }?;
        // SAFETY: as above.
        let json = unsafe { str_arg(json_opts, "json_opts") }?;
        let opts = Checked::new(target, json)?;
        // SAFETY: as above.
        let client = unsafe { client_arg(client) }?;
        let created = client.offline_download_checked(token.as_ref(), &opts)?;
        record_trace(&created.trace_id);
        // SAFETY: checked non-NULL above; the caller promises it points to an int64_t.
        unsafe { *task_id_out = created.task_id };
        Ok(())
    })
}

/// Query a task's progress (`GET /api/v1/offline/download/process`). Retried on network
/// errors, 5xx and 429 (a read may be repeated), within `timeoutMs`.
///
/// @param client        a client, or NULL for the process-wide default one.
/// @param token         the access token, or NULL for the client's own.
/// @param task_id       the task, from a create call (positive).
/// @param progress_out  receives percent done, 0 to 100 (may have a fraction; 0 after a
///                      failure). Written only on success.
/// @param status_out    receives a `PAN_TASK_*` value. Written only on success.
/// @return `PAN_OK` or a `PAN_ERR_*` code.
///
/// # Safety
/// `client` is NULL or live; `token` is NULL or NUL-terminated; the out-pointers are NULL or
/// valid.
#[no_mangle]
pub unsafe extern "C" fn pan_offline_download_progress(
    client: *const PanClient,
    token: *const c_char,
    task_id: i64,
    progress_out: *mut f64,
    status_out: *mut i32,
) -> i32 {
    // SAFETY: the caller's pointers, passed on unchanged.
    unsafe {
        progress(
            client,
            token,
            task_id,
            progress_out,
            status_out,
            Target::Drive,
        )
    }
}

/// Query the progress of an image hosting task (`GET /api/v1/oss/offline/download/process`).
/// Parameters and results as for `pan_offline_download_progress()`; `progress` is whole.
///
/// @param client        the client, or NULL for the process-wide one.
/// @param token         the access token, or NULL for the client's own (as for
///                      `pan_client_offline_download()`).
/// @param task_id       the image hosting task's ID (positive).
/// @param progress_out  receives the progress, 0 to 100, a whole number for this endpoint.
/// @param status_out    receives the task's `PAN_TASK_*` status.
/// @return `PAN_OK`, or a `PAN_ERR_*` code with the details in `pan_last_error_message()`.
///
/// # Safety
/// As for `pan_offline_download_progress()`.
#[no_mangle]
pub unsafe extern "C" fn pan_oss_offline_download_progress(
    client: *const PanClient,
    token: *const c_char,
    task_id: i64,
    progress_out: *mut f64,
    status_out: *mut i32,
) -> i32 {
    // SAFETY: the caller's pointers, passed on unchanged.
    unsafe {
        progress(
            client,
            token,
            task_id,
            progress_out,
            status_out,
            Target::Image,
        )
    }
}

/// # Safety
/// As for `pan_offline_download_progress()`.
unsafe fn progress(
    client: *const PanClient,
    token: *const c_char,
    task_id: i64,
    progress_out: *mut f64,
    status_out: *mut i32,
    target: Target,
) -> i32 {
    guard(|| {
        out_arg(progress_out, "progress_out")?;
        out_arg(status_out, "status_out")?;
        // SAFETY: the caller's pointers, as documented.
        let token = unsafe { token_arg(token) }?;
        // SAFETY: as above.
        let client = unsafe { client_arg(client) }?;
        let p = client.offline_progress(token.as_ref(), target, task_id)?;
        record_trace(&p.trace_id);
        // SAFETY: checked non-NULL above; the caller promises valid out-pointers.
        unsafe {
            *progress_out = p.process;
            *status_out = p.status_code();
        }
        Ok(())
    })
}

/// Wait for a task to end, polling its progress every `pollIntervalMs` (doubling the pause,
/// up to 10 s, while the service answers 429).
///
/// @param client       a client, or NULL for the process-wide default one.
/// @param token        the access token, or NULL for the client's own.
/// @param task_id      the task (positive).
/// @param timeout_ms   how long to wait at most, in milliseconds, polls included; negative
///                     waits without limit (each poll still has the `timeoutMs` limit); 0
///                     polls once (with the `timeoutMs` limit) and does not wait.
/// @param on_progress  called after each poll with `user_data`; may be NULL. A non-zero
///                     return stops the wait with `PAN_ERR_CANCELLED`. It runs on the calling
///                     thread and must not call `pan_offline_download_wait()` itself.
/// @param user_data    passed to `on_progress` unchanged; may be NULL.
/// @param status_out   receives `PAN_TASK_SUCCEEDED` or `PAN_TASK_FAILED`; written only on
///                     success.
/// @return `PAN_OK` when the task ended (a failed download is `PAN_OK` with `*status_out ==
///         PAN_TASK_FAILED`: the call worked, the download did not); `PAN_ERR_TIMEOUT` when
///         `timeout_ms` passed first; `PAN_ERR_CANCELLED`; or the error of a poll. Afterwards
///         `pan_last_trace_id()` is the last answered poll's, whatever calls `on_progress`
///         made, and the error state is this call's own.
///
/// # Safety
/// `client` is NULL or live; `token` is NULL or NUL-terminated; `on_progress` is NULL or a
/// valid function; `status_out` is NULL or points to an `int32_t`.
#[no_mangle]
pub unsafe extern "C" fn pan_offline_download_wait(
    client: *const PanClient,
    token: *const c_char,
    task_id: i64,
    timeout_ms: i64,
    on_progress: PanProgressCallback,
    user_data: *mut c_void,
    status_out: *mut i32,
) -> i32 {
    guard(|| {
        out_arg(status_out, "status_out")?;
        // SAFETY: the caller's pointers, as documented.
        let token = unsafe { token_arg(token) }?;
        // SAFETY: as above.
        let client = unsafe { client_arg(client) }?;
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        let mut last_trace = String::new();
        let mut report = |p: &Progress| {
            last_trace.clear();
            last_trace.push_str(&p.trace_id);
            match on_progress {
                Some(f) => {
                    // SAFETY: the caller promises a valid function; user_data is theirs,
                    // passed back to them.
                    let stop = unsafe { f(user_data, task_id, p.process, p.status_code()) };
                    stop == 0
                }
                None => true,
            }
        };
        let status = client.wait(token.as_ref(), Target::Drive, task_id, timeout, &mut report)?;
        // The trace ID of the last poll, not of a call the callback made.
        record_trace(&last_trace);
        // SAFETY: checked non-NULL above.
        unsafe { *status_out = status as i32 };
        Ok(())
    })
}

/// Parse the body the service POSTs to `callBackUrl` when a task ends, e.g.
/// `{"url": "...", "status": 0, "failReason": "", "fileID": 100}`. The reason is read from
/// `failReason` or `fileReason` (the API documents both); unknown keys are ignored.
///
/// @param body            the body, NUL-terminated UTF-8, at most 65536 bytes.
/// @param status_out      receives `PAN_CALLBACK_SUCCEEDED` (0) or `PAN_CALLBACK_FAILED` (1):
///                        the callback's own scale, not `PAN_TASK_*`.
/// @param file_id_out     receives the new file's ID (0 when absent, as after a failure).
/// @param reason_buf      receives the failure reason (`""` on success) with `snprintf`
///                        rules: at most `reason_buf_len - 1` bytes and a NUL, cut between
///                        UTF-8 characters, never inside one. May be NULL when
///                        `reason_buf_len` is 0. Control characters in it are escaped
///                        (`\u{0}`, `\r`, `\n`), so a NUL sent by the server cannot cut it
///                        short and a line break cannot forge a log line.
/// @param reason_buf_len  the size of `reason_buf`.
/// @return `PAN_OK`; `PAN_ERR_INVALID_JSON` / `PAN_ERR_INVALID_ARGUMENT` for a body that is not
///         a callback (the message names the field). Out-params are written only on success.
///
/// # Safety
/// `body` is NULL or NUL-terminated; the out-pointers are NULL or valid; `reason_buf` has
/// `reason_buf_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn pan_callback_parse(
    body: *const c_char,
    status_out: *mut i32,
    file_id_out: *mut i64,
    reason_buf: *mut c_char,
    reason_buf_len: usize,
) -> i32 {
    guard(|| {
        out_arg(status_out, "status_out")?;
        out_arg(file_id_out, "file_id_out")?;
        if reason_buf.is_null() && reason_buf_len > 0 {
            return Err(Error::new(
                Status::NullArgument,
                "`reason_buf` is NULL but `reason_buf_len` is not 0",
            ));
        }
        // SAFETY: the caller's pointer, as documented.
        let cb = Callback::parse(unsafe { str_arg(body, "body") }?)?;
        // SAFETY: checked above; the caller promises valid out-pointers and buffer.
        unsafe {
            copy_to_buf(cb.reason.as_bytes(), reason_buf, reason_buf_len);
            *status_out = if cb.succeeded {
                PAN_CALLBACK_SUCCEEDED
            } else {
                PAN_CALLBACK_FAILED
            };
            *file_id_out = cb.file_id;
        }
        Ok(())
    })
}

/// Fetch a new access token (`POST /api/v1/access_token`).
///
/// Every call makes a new token, and the service allows at most three live tokens per client
/// (more fail with `PAN_ERR_TOKEN_LIMIT`): keep the token until it nears `*expires_at_out`.
/// A client configured with `clientID`/`clientSecret` does this by itself when given a NULL
/// token; this function is for programs that manage tokens on their own.
///
/// @param client          a client, or NULL for the process-wide default one.
/// @param client_id       the client ID, or NULL for the client's configured one.
/// @param client_secret   the client secret, or NULL for the client's configured one. Never
///                        appears in any message.
/// @param token_out       receives a new NUL-terminated token, owned by the caller: free it with
///                        `pan_string_free()`, not `free()`. Written only on success.
/// @param expires_at_out  receives `expiredAt` as Unix seconds (0 when the service's value
///                        could not be read); may be NULL.
/// @return `PAN_OK` or a `PAN_ERR_*` code (`PAN_ERR_NULL_ARGUMENT` when no credentials are
///         given or configured).
///
/// # Safety
/// `client` is NULL or live; the strings are NULL or NUL-terminated; `token_out` is NULL or
/// points to a `char *`; `expires_at_out` is NULL or points to an `int64_t`.
#[no_mangle]
pub unsafe extern "C" fn pan_access_token(
    client: *const PanClient,
    client_id: *const c_char,
    client_secret: *const c_char,
    token_out: *mut *mut c_char,
    expires_at_out: *mut i64,
) -> i32 {
    guard(|| {
        out_arg(token_out, "token_out")?;
        // SAFETY: the caller's pointers, as documented.
        let client = unsafe { client_arg(client) }?;
        // SAFETY: the caller's pointers, as documented.
        let (id, secret) = unsafe {
            (
                opt_str_arg(client_id, "client_id")?,
                opt_str_arg(client_secret, "client_secret")?,
            )
        };
        let fetched = client.access_token(id, secret)?;
        record_trace(&fetched.trace_id);
        let owned = c_string(fetched.token.as_str()).into_raw();
        // SAFETY: checked non-NULL above; expires_at_out is NULL or valid.
        unsafe {
            *token_out = owned;
            if !expires_at_out.is_null() {
                *expires_at_out = fetched.expires_at;
            }
        }
        Ok(())
    })
}

/// Free a string the library returned as owned (the token of `pan_access_token()`, the
/// results of `pan_offline_download_batch()`).
/// NULL is fine; freeing twice is not.
///
/// @param s  the string to free, or NULL (nothing is done).
///
/// # Safety
/// `s` is NULL or a string from the library that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn pan_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: the string came from CString::into_raw in this library.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// Copies `src` to a caller's buffer with `snprintf` rules (at most `len - 1` bytes and a NUL),
/// cutting only between UTF-8 characters.
///
/// # Safety
/// `buf` is NULL or has `len` writable bytes.
unsafe fn copy_to_buf(src: &[u8], buf: *mut c_char, len: usize) {
    if !buf.is_null() && len > 0 {
        let mut n = src.len().min(len - 1);
        // A cut falls between characters, so that what the caller gets is valid UTF-8.
        while n < src.len() && n > 0 && src[n] & 0xC0 == 0x80 {
            n -= 1;
        }
        // SAFETY: n + 1 <= len bytes, as the caller promises; library memory never overlaps
        // a caller's buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr().cast::<c_char>(), buf, n);
            *buf.add(n) = 0;
        }
    }
}

/// The status code of this thread's last fallible `pan_*` call: the `PAN_*` value it
/// returned or, for `pan_client_new()`, which returns a pointer, why it returned NULL.
///
/// @return `PAN_OK` after a success, else a `PAN_ERR_*` value.
#[no_mangle]
pub extern "C" fn pan_last_error_code() -> i32 {
    getter(PAN_OK, || with_slot(|s| s.status))
}

/// The message of this thread's last failed `pan_*` call.
///
/// @return a NUL-terminated UTF-8 string owned by the library, valid until the next fallible
///         `pan_*` call on this thread (the getters `pan_last_*`, `pan_strerror` and
///         `pan_version` do not count) and at most until the thread ends (its key destructor
///         frees it). Never NULL; `""` after a success. Do not free it.
///
/// The message says what failed and why, names the offending field, and carries the server's
/// message and trace ID. It never contains a secret the library knows — the token of the
/// call, the client's own token, `clientSecret`, the password of a base or proxy URL — not
/// whole, not in part (no 8 consecutive bytes of one), not percent-, JSON- or HTML-encoded;
/// such text is replaced by `<redacted>`. Server text in it has its control characters, DEL
/// and U+2028/U+2029 escaped (`\r`, `\u{2028}`), so it is one line of valid UTF-8.
#[no_mangle]
pub extern "C" fn pan_last_error_message() -> *const c_char {
    getter(EMPTY.as_ptr().cast(), || with_slot(|s| s.message.as_ptr()))
}

/// Copy this thread's last error message into a caller's buffer, with `snprintf` rules.
///
/// @param buf      the destination, or NULL (with `buf_len` 0) to ask for the length.
/// @param buf_len  the size of `buf` in bytes. At most `buf_len - 1` bytes and a NUL are
///                 written, cut between UTF-8 characters (so the copy is valid UTF-8);
///                 nothing is written when `buf` is NULL or `buf_len` is 0.
/// @return the length of the whole message in bytes, without the NUL: when it is `>= buf_len`
///         the copy was cut.
///
/// # Safety
/// `buf` is NULL or points to at least `buf_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn pan_last_error_copy(buf: *mut c_char, buf_len: usize) -> usize {
    getter(0, || {
        with_slot(|s| {
            let msg = s.message.as_bytes();
            // SAFETY: the caller promises `buf_len` writable bytes at `buf`.
            unsafe { copy_to_buf(msg, buf, buf_len) };
            msg.len()
        })
        .or_else(|| {
            // No slot (thread teardown): the message is "".
            // SAFETY: as above.
            unsafe { copy_to_buf(b"", buf, buf_len) };
            Some(0)
        })
    })
}

/// The service's `code` from this thread's last failure.
///
/// @return the envelope's `code` (e.g. 401, 429, 5066) when the service reported the last
///         failure, else 0 (success, local or transport errors).
#[no_mangle]
pub extern "C" fn pan_last_api_code() -> i64 {
    getter(0, || with_slot(|s| s.api_code))
}

/// The `x-traceID` of this thread's last response: quote it in reports to the provider.
///
/// @return a NUL-terminated string owned by the library, valid until the next fallible
///         `pan_*` call on this thread and at most until the thread ends; `""` when the last
///         call got no trace ID, and after a successful `pan_offline_download_wait_many()` or
///         `pan_offline_download_batch()` (their items' trace IDs are in their results).
///         Never NULL. Set after a success too. Secrets are removed from it and control characters
///         escaped, as in `pan_last_error_message()`; at most 200 characters.
#[no_mangle]
pub extern "C" fn pan_last_trace_id() -> *const c_char {
    getter(EMPTY.as_ptr().cast(), || with_slot(|s| s.trace_id.as_ptr()))
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
    use crate::TaskStatus;

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
            (PAN_ERR_CANCELLED, Status::Cancelled),
            (PAN_ERR_OUTCOME_UNKNOWN, Status::OutcomeUnknown),
            (PAN_ERR_TASK_LIMIT, Status::TaskLimit),
            (PAN_ERR_ACCOUNT_PENALTY, Status::AccountPenalty),
        ];
        let tasks = [
            (PAN_TASK_DOWNLOADING, TaskStatus::Downloading),
            (PAN_TASK_FAILED, TaskStatus::Failed),
            (PAN_TASK_SUCCEEDED, TaskStatus::Succeeded),
            (PAN_TASK_RETRYING, TaskStatus::Retrying),
        ];
        for (c, t) in tasks {
            assert_eq!(c, t as i32);
        }
        for (c, s) in pairs {
            assert_eq!(c, s.code());
        }
    }

    #[test]
    fn interior_nul_from_a_server_does_not_cut_the_message() {
        assert_eq!(c_string("a\0b").to_str().ok(), Some("a\u{fffd}b"));
        let mut t = CText::new();
        t.set("x\0y\0");
        assert_eq!(t.as_bytes(), "x\u{fffd}y\u{fffd}".as_bytes());
        assert_eq!(t.0.last(), Some(&0));
        t.clear();
        assert_eq!(t.as_bytes(), b"");
    }
}
