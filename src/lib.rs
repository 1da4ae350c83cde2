//! # pan-offline
//!
//! Create offline download tasks on the 123pan open platform and follow them to the end, from
//! Rust or, through its C ABI (`include/pan_offline.h`), from C, C++, Python or any language
//! with an FFI.
//!
//! ```no_run
//! use pan_offline::{Client, Config, OfflineDownload, Token};
//!
//! let client = Client::new(Config::default())?;
//! let token = Token::new("eyJhbGciOi...")?;
//! let req = OfflineDownload::from_json(r#"{"url":"https://example.com/a.mp4","dirID":10023}"#)?;
//! let created = client.offline_download(Some(&token), &req)?;
//! println!("task {}", created.task_id);
//! # Ok::<(), pan_offline::Error>(())
//! ```
//!
//! Errors are one type, [`Error`], whose [`Status`] is the C ABI's stable code.
#![deny(missing_docs)]
// Raw pointers live in the FFI layer only; the core is safe Rust. (src/fork.rs allows itself
// a call to pthread_atfork and the pointer swap of a forked child's values; src/per_thread.rs
// the pthread key calls that keep each thread's values.)
#![deny(unsafe_code)]

mod auth;
mod batch;
mod callback;
mod client;
mod config;
mod envelope;
mod error;
mod exchange;
mod expiry;
#[allow(unsafe_code)]
pub mod ffi;
mod fork;
mod fuzz_checks;
mod journal;
mod json;
mod log;
mod offline;
mod options;
pub(crate) mod pacing;
mod per_thread;
mod proxy;
mod recent;
mod redact;
mod shared;
mod spare;
mod tcp;
mod tls;
mod token;
mod transport;
mod url;

pub use auth::{AccessToken, TokenNeed, TokenSource};
pub use batch::{BatchOptions, ItemResult, MAX_BATCH_ITEMS, MAX_BATCH_LEN};
pub use callback::Callback;
pub use client::Client;
pub use config::*;
pub use error::{Error, Result, Status};
pub use journal::JOURNAL_VERSION;
pub use log::{Level, Sink};
pub use offline::{Created, Progress, TaskStatus};
pub use options::{OfflineDownload, Target, MAX_FILE_NAME_CHARS, MAX_OPTIONS_LEN};
pub use pacing::MIN_QPS;
pub use proxy::{HTTPS_PROXY_VARS, NO_PROXY_VARS};
pub use spare::TraceId;
pub use tls::{CA_FILE_ENV, SYSTEM_CA_FILES};
pub use token::{Token, MAX_TOKEN_LEN};
pub use url::MAX_URL_LEN;

/// Entry points for the fuzz targets under `fuzz/` and the corpus replay test: the parsers
/// that read untrusted bytes. Not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::envelope::{interpret, positive_id, HttpAnswer};

    /// Interprets an answer of HTTP status `status` with this body; returns the task ID it
    /// carries, or the error's status.
    pub fn interpret_envelope(status: u16, body: &[u8]) -> Result<i64, crate::Status> {
        let answer = interpret(&HttpAnswer {
            status,
            headers: &ureq::http::HeaderMap::new(),
            wants_date: false,
            body,
            secrets: &[],
        })
        .map_err(|e| e.status())?;
        positive_id(&answer, "taskID").map_err(|e| e.status())
    }

    pub use crate::fuzz_checks::*;
}
