//! The properties the fuzz targets check, shared with the corpus replay in `cargo test`, so
//! that both run the very same code. Each takes arbitrary bytes and panics on a violation.

use crate::{Callback, Config, OfflineDownload, Status, Target};

/// Options: any text is accepted or refused without panicking; what is accepted serialises
/// to a body that parses back to the same request; and the C ABI's path, which sends the
/// caller's own text as the body, sends the same JSON value as the serialised request.
pub fn options(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for target in [Target::Drive, Target::Image] {
        let Ok(req) = OfflineDownload::from_json_for(target, text) else {
            continue;
        };
        let checked = crate::options::Checked::new(target, text).expect("the same parse");
        let sent: serde_json::Value =
            serde_json::from_slice(&checked.body()).expect("the body sent is JSON");
        let written: serde_json::Value =
            serde_json::from_slice(&req.body().expect("serialises")).expect("JSON");
        assert_eq!(sent, written, "the body sent is the request's");
        if target == Target::Drive {
            let body = serde_json::to_string(&req).expect("an accepted request serialises");
            let again = OfflineDownload::from_json(&body).expect("its body parses back");
            assert_eq!(again, req);
        }
    }
}

/// Envelopes: any answer maps to a task ID or to one of the response statuses.
pub fn envelope(data: &[u8]) {
    let (status, body) = match data.split_first() {
        Some((s, rest)) => (200 + u16::from(*s) % 4 * 100 + u16::from(*s) % 30, rest),
        None => (200, data),
    };
    match crate::fuzzing::interpret_envelope(status, body) {
        Ok(id) => assert!(id > 0),
        Err(s) => assert!(
            matches!(
                s,
                Status::HttpStatus
                    | Status::BadResponse
                    | Status::Api
                    | Status::Unauthorized
                    | Status::TokenLimit
                    | Status::RateLimited
            ),
            "unexpected status {s:?}"
        ),
    }
}

/// Callbacks: parsed or refused, never a panic; a parsed one has a non-negative file ID.
pub fn callback(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cb) = Callback::parse(text) {
        assert!(cb.file_id >= 0);
    }
}

/// Configuration: parsed or refused, never a panic, never `Internal`; a parsed one
/// validates, and every request URL the library builds on its base URL is one the HTTP
/// layer carries (so no call can fail with `Internal` on it).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_json(text) {
        Ok(c) => {
            c.validate().expect("an accepted configuration is valid");
            let base = c.base().expect("an accepted base URL");
            for path in [
                "/api/v1/offline/download",
                "/api/v1/oss/offline/download",
                "/api/v1/offline/download/process?taskID=1",
                "/api/v1/oss/offline/download/process?taskID=9223372036854775807",
                "/api/v1/access_token",
            ] {
                let uri = format!("{base}{path}");
                ureq::http::Uri::try_from(uri.as_str())
                    .unwrap_or_else(|e| panic!("{uri:?} was accepted but is not a URI: {e}"));
            }
        }
        Err(e) => assert!(
            !matches!(e.status(), Status::Internal | Status::Panic),
            "{e}"
        ),
    }
}

/// `expiredAt`: any text is read or refused without panicking; what is read is a time that
/// `renew_after` turns into a renewal at least a minute away.
pub fn expired_at(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = crate::expiry::parse_expired_at(text);
    let after = crate::expiry::renew_after(parsed, None, 1_700_000_000);
    assert!(after >= crate::expiry::MIN_TOKEN_AGE);
}

/// HTTP fields: `Retry-After` is read or refused without panicking, never longer than a
/// day; unfolding a response head keeps its length and changes only line ends before
/// spaces into spaces.
pub fn http_fields(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(d) = crate::exchange::retry_after(text, None) {
            assert!(d <= std::time::Duration::from_secs(86_400));
        }
    }
    if let Some(out) = crate::exchange::unfold(data) {
        assert_eq!(out.len(), data.len());
        for (a, b) in data.iter().zip(&out) {
            assert!(a == b || (matches!(a, b'\r' | b'\n') && *b == b' '));
        }
    }
}
