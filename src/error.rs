//! The one error type of the library, and the stable status codes it maps to.

use std::fmt;
use std::time::Duration;

use crate::redact::{clean, Secret};

/// Longest message handed out, in characters (the longest the library writes is a few
/// hundred).
pub(crate) const MAX_MESSAGE_CHARS: usize = 2048;
/// Longest trace ID handed out, in characters (the service's are about 60).
pub(crate) const MAX_TRACE_ID_CHARS: usize = 200;

/// What kind of failure happened. The discriminants are the C ABI's `PAN_ERR_*` numbers:
/// they are stable and are never renumbered or reused once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Status {
    /// Success (`PAN_OK`).
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 1,
    /// A string argument was not valid UTF-8.
    InvalidUtf8 = 2,
    /// A JSON argument could not be parsed as JSON.
    InvalidJson = 3,
    /// An argument was well-formed but not acceptable (names the field).
    InvalidArgument = 4,
    /// The connection could not be made, or broke.
    Network = 5,
    /// A time limit ran out.
    Timeout = 6,
    /// The TLS handshake or the server's certificate failed.
    Tls = 7,
    /// The server answered with an HTTP status that carried no API envelope.
    HttpStatus = 8,
    /// The server's answer could not be understood.
    BadResponse = 9,
    /// The service answered with a non-zero `code` not covered by a more precise status.
    Api = 10,
    /// The service refused the access token (`code` 401).
    Unauthorized = 11,
    /// The service refused because too many tokens of the client are live.
    TokenLimit = 12,
    /// The service asked to slow down (`code` or HTTP status 429).
    RateLimited = 13,
    /// A panic was caught at the library boundary.
    Panic = 14,
    /// An internal invariant failed; a bug in the library.
    Internal = 15,
    /// A progress callback asked to stop waiting.
    Cancelled = 16,
    /// A create request may have reached the service but no complete answer came back: the
    /// task may exist. Check before creating it again; never retried by the library.
    OutcomeUnknown = 17,
    /// The service refused a create because too many of the account's offline tasks are
    /// running. The create certainly did not happen: try again later.
    TaskLimit = 18,
    /// The service answered `code` 1 ("internal error") to several creates in a row: as after
    /// bursts of writes, the account may be under a penalty. A batch stops sending there.
    AccountPenalty = 19,
}

impl Status {
    /// Every status, in numeric order.
    pub const ALL: [Status; 20] = [
        Status::Ok,
        Status::NullArgument,
        Status::InvalidUtf8,
        Status::InvalidJson,
        Status::InvalidArgument,
        Status::Network,
        Status::Timeout,
        Status::Tls,
        Status::HttpStatus,
        Status::BadResponse,
        Status::Api,
        Status::Unauthorized,
        Status::TokenLimit,
        Status::RateLimited,
        Status::Panic,
        Status::Internal,
        Status::Cancelled,
        Status::OutcomeUnknown,
        Status::TaskLimit,
        Status::AccountPenalty,
    ];

    /// The stable number of this status in the C ABI.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The status with this number, if there is one.
    pub fn from_code(code: i32) -> Option<Status> {
        Status::ALL.iter().copied().find(|s| s.code() == code)
    }

    /// A static, one-line description (NUL-terminated for the C ABI's `pan_strerror`).
    pub fn describe_c(self) -> &'static str {
        match self {
            Status::Ok => "success\0",
            Status::NullArgument => "a required pointer argument was NULL\0",
            Status::InvalidUtf8 => "a string argument is not valid UTF-8\0",
            Status::InvalidJson => "a JSON argument is not valid JSON\0",
            Status::InvalidArgument => "an argument is not acceptable\0",
            Status::Network => "network error: the connection failed or broke\0",
            Status::Timeout => "a time limit ran out\0",
            Status::Tls => "TLS handshake or certificate verification failed\0",
            Status::HttpStatus => "the server answered with an HTTP error status\0",
            Status::BadResponse => "the server's answer could not be understood\0",
            Status::Api => "the service reported an error\0",
            Status::Unauthorized => "the access token is invalid or expired\0",
            Status::TokenLimit => "too many access tokens of this client are in use\0",
            Status::RateLimited => "too many requests: the service asked to slow down\0",
            Status::Panic => "internal panic caught at the library boundary\0",
            Status::Internal => "internal error in the library\0",
            Status::Cancelled => "cancelled by the caller's callback\0",
            Status::OutcomeUnknown => {
                "the request may have reached the service but no answer came back: the task may exist\0"
            }
            Status::TaskLimit => {
                "too many offline tasks of the account are running: the task was not created\0"
            }
            Status::AccountPenalty => {
                "the service refuses the account's creates (code 1 again and again): a penalty, stop for a while\0"
            }
        }
    }

    /// The description without its NUL terminator.
    pub fn describe(self) -> &'static str {
        let s = self.describe_c();
        &s[..s.len() - 1]
    }
}

/// Whether a failed request may be sent again without risk of acting twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// The service may have acted on the request: never resend a create.
    Unsafe,
    /// The service certainly did not act (it refused with 429, or nothing was sent).
    /// Carries the server's `Retry-After`, if it gave one.
    Safe(Option<Duration>),
    /// The service may have acted, but a read (progress query) may be repeated.
    ReadOnly,
}

/// The library's error: a status, a message for humans, and what the server said.
///
/// Messages say what failed and why, name the offending field, carry the server's own message
/// and trace ID, and never contain the access token.
#[derive(Debug, Clone)]
pub struct Error {
    status: Status,
    message: String,
    api_code: i64,
    trace_id: String,
    pub(crate) retry: Retry,
    /// Whether the request had been written whole when this failure came: the service may
    /// have acted on it (a create is then of unknown outcome unless the service answered).
    pub(crate) sent: bool,
}

impl Error {
    /// A new error of this status with this message.
    pub fn new(status: Status, message: impl Into<String>) -> Error {
        Error {
            status,
            message: message.into(),
            api_code: 0,
            trace_id: String::new(),
            retry: Retry::Unsafe,
            sent: false,
        }
    }

    /// Marks the failure as one after the whole request was written.
    pub(crate) fn after_sending(mut self) -> Error {
        self.sent = true;
        self
    }

    /// An `InvalidArgument` error.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(Status::InvalidArgument, message)
    }

    pub(crate) fn with_api(mut self, api_code: i64, trace_id: &str) -> Error {
        self.api_code = api_code;
        self.trace_id = trace_id.to_owned();
        self
    }

    pub(crate) fn with_retry(mut self, retry: Retry) -> Error {
        self.retry = retry;
        self
    }

    /// Prefixes the message with what was being done, e.g. `"create offline download task"`.
    pub(crate) fn context(mut self, what: &str) -> Error {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// The same failure under another status, with `more` appended to the message.
    pub(crate) fn reclassify(mut self, status: Status, more: &str) -> Error {
        self.status = status;
        self.message.push_str(more);
        self
    }

    /// Appends to the message.
    pub(crate) fn suffix(mut self, more: &str) -> Error {
        self.message.push_str(more);
        self
    }

    /// Removes every piece of every secret from the message and the trace ID (a server may
    /// echo the token), escapes what is left and caps it (see `redact.rs`).
    pub(crate) fn redact(mut self, secrets: &[&Secret]) -> Error {
        self.message = clean(&self.message, MAX_MESSAGE_CHARS, secrets);
        if !self.trace_id.is_empty() {
            self.trace_id = clean(&self.trace_id, MAX_TRACE_ID_CHARS, secrets);
        }
        self
    }

    /// The status code.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The server's envelope `code` when the service reported the failure, else 0.
    pub fn api_code(&self) -> i64 {
        self.api_code
    }

    /// The server's `x-traceID` when it sent one, else `""`.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
