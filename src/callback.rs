//! The body the service POSTs to `callBackUrl` when a task ends.
//!
//! `{"url": "...", "status": 0, "failReason": "", "fileID": 100}`. Its `status` is 0 success,
//! 1 failure: a different scale from the progress query's, so it is kept apart. The API page
//! calls the reason `fileReason` in its prose and `failReason` in its example; both are read.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::json::{parse_object, type_name};
use crate::redact::printable;

/// Largest callback body accepted, in bytes.
pub const MAX_CALLBACK_LEN: usize = 64 * 1024;

/// A parsed callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The source URL, as the service reports it (may be empty).
    pub url: String,
    /// `true` for status 0 (success), `false` for status 1 (failure).
    pub succeeded: bool,
    /// The new file's ID in the drive (0 when absent, as on failure).
    pub file_id: i64,
    /// Why the download failed (empty on success), with control characters escaped.
    pub reason: String,
}

impl Callback {
    /// Parses a callback body. Unknown keys are ignored: the service may add fields.
    pub fn parse(body: &str) -> Result<Callback> {
        let mut cb = Callback {
            url: String::new(),
            succeeded: false,
            file_id: 0,
            reason: String::new(),
        };
        let mut status = None;
        // As for the service's answers: a byte-order mark is skipped (RFC 8259 §8.1), and a
        // lone surrogate escape becomes U+FFFD rather than losing the whole callback.
        let body = body.strip_prefix('\u{feff}').unwrap_or(body);
        let fields = match parse_object(body, "callback body", MAX_CALLBACK_LEN) {
            Ok(fields) => fields,
            Err(e) if e.status() == crate::Status::InvalidJson => {
                match crate::envelope::mended(body.as_bytes()) {
                    Some(text) => {
                        return Callback::parse(&text).map_err(|_| e);
                    }
                    None => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        let mut fail_reason_seen = false;
        for (key, value) in fields.0 {
            match &*key {
                "status" => {
                    status = Some(match crate::envelope::integral_value(&value) {
                        Some(s @ (0 | 1)) => s,
                        _ => {
                            return Err(Error::invalid(format!(
                                "callback body: `status` must be 0 or 1, not {}",
                                printable(&value.to_string(), 40)
                            )))
                        }
                    })
                }
                "fileID" => {
                    cb.file_id = match &value {
                        Value::Number(_) => crate::envelope::integral_value(&value),
                        Value::String(s) => s.parse().ok(),
                        Value::Null => Some(0),
                        _ => None,
                    }
                    .filter(|id| *id >= 0)
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "callback body: `fileID` must be a non-negative integer, not {}",
                            printable(&value.to_string(), 40)
                        ))
                    })?
                }
                // The documented example's `failReason` wins over the prose's `fileReason`.
                "failReason" | "fileReason" => match value {
                    Value::String(s)
                        if !s.is_empty() && (key == "failReason" || !fail_reason_seen) =>
                    {
                        fail_reason_seen |= key == "failReason";
                        cb.reason = s
                    }
                    Value::String(_) | Value::Null => {}
                    other => {
                        return Err(Error::invalid(format!(
                            "callback body: `{key}` must be a string, not {}",
                            type_name(&other)
                        )))
                    }
                },
                "url" => {
                    if let Value::String(s) = value {
                        cb.url = s;
                    }
                }
                _ => {}
            }
        }
        let status = status.ok_or_else(|| Error::invalid("callback body: `status` is missing"))?;
        cb.succeeded = status == 0;
        // Server text handed to C: escaped like every other (a `\u0000` in the reason would
        // otherwise cut it short for a caller reading it with strlen).
        cb.reason = printable(&cb.reason, usize::MAX);
        cb.url = printable(&cb.url, usize::MAX);
        Ok(cb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_example_and_both_reason_spellings() {
        let cb = Callback::parse(r#"{"url": "http://dc.com/resource.jpg", "status": 0, "failReason": "", "fileID": 100}"#)
            .expect("parses");
        assert!(cb.succeeded);
        assert_eq!((cb.file_id, cb.reason.as_str()), (100, ""));
        let cb = Callback::parse(r#"{"url":"u","status":1,"fileReason":"source 404","fileID":0}"#)
            .expect("parses");
        assert!(!cb.succeeded);
        assert_eq!(cb.reason, "source 404");
        let cb =
            Callback::parse(r#"{"status":1,"failReason":"a","fileReason":""}"#).expect("parses");
        assert_eq!(cb.reason, "a");
    }

    #[test]
    fn malformed_callbacks_are_refused_by_field() {
        for (body, want) in [
            (r#"{"status":2}"#, "`status` must be 0 or 1"),
            (r#"{"status":"0"}"#, "`status` must be 0 or 1"),
            (r#"{"fileID":1}"#, "`status` is missing"),
            (r#"{"status":0,"fileID":-1}"#, "`fileID`"),
            (
                r#"{"status":1,"failReason":5}"#,
                "`failReason` must be a string",
            ),
        ] {
            let e = Callback::parse(body).expect_err(body);
            assert!(e.message().contains(want), "{body}: {}", e.message());
        }
    }
}
