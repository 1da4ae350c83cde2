//! The response envelope `{"code", "message", "data", "x-traceID"}` and what each answer means.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Retry, Status, MAX_TRACE_ID_CHARS};
use crate::redact::{printable, quote, scrub, Secret};

/// The message with which the service tells "too many tokens" apart from an invalid token.
const TOKEN_LIMIT_MESSAGE: &str = "tokens number has exceeded the limit";
/// Longest piece of server text quoted in a message.
const QUOTE_MAX: usize = 300;

/// A successful answer: the envelope's `data` and the request's trace ID.
#[derive(Debug)]
pub(crate) struct Answer {
    pub data: Value,
    pub trace_id: String,
}

impl Answer {
    /// A `BadResponse` error about this answer's data, carrying its trace ID.
    pub(crate) fn bad(&self, why: &str) -> Error {
        Error::new(
            Status::BadResponse,
            format!("{why} (trace ID {})", self.trace_id),
        )
        .with_api(0, &self.trace_id)
    }
}

#[derive(Deserialize)]
struct Raw {
    code: i64,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    data: Option<Value>,
    #[serde(rename = "x-traceID", default)]
    trace_id: Option<String>,
}

/// What the server said, as the HTTP layer delivered it.
pub(crate) struct HttpAnswer<'a> {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub location: Option<&'a str>,
    pub body: &'a [u8],
    /// The secrets of the request, removed from every piece of the answer that is quoted.
    pub secrets: &'a [&'a Secret],
}

/// Maps one HTTP answer to success or to the precise error.
pub(crate) fn interpret(a: &HttpAnswer<'_>) -> Result<Answer, Error> {
    if (300..400).contains(&a.status) {
        return Err(Error::new(
            Status::HttpStatus,
            format!(
                "HTTP {} redirect to `{}` refused: redirects are not followed, so that the \
                 token and the request cannot wander",
                a.status,
                quote(a.location.unwrap_or(""), QUOTE_MAX, a.secrets)
            ),
        ));
    }
    let ok_status = (200..300).contains(&a.status);
    let raw = match serde_json::from_slice::<Raw>(a.body) {
        Ok(raw) => raw,
        Err(e) => return Err(no_envelope(a, &e)),
    };
    let trace_id = match raw.trace_id {
        Some(t) => printable(&scrub(&t, a.secrets), MAX_TRACE_ID_CHARS),
        None => String::new(),
    };
    let message = quote(raw.message.as_deref().unwrap_or(""), QUOTE_MAX, a.secrets);
    if raw.code == 0 {
        if !ok_status {
            return Err(Error::new(
                Status::HttpStatus,
                format!(
                    "HTTP {} with a success envelope (trace ID {trace_id})",
                    a.status
                ),
            )
            .with_api(0, &trace_id)
            .with_retry(read_only_if_5xx(a.status)));
        }
        return Ok(Answer {
            data: raw.data.unwrap_or(Value::Null),
            trace_id,
        });
    }
    let (status, retry) = match raw.code {
        401 if message.contains(TOKEN_LIMIT_MESSAGE) => (Status::TokenLimit, Retry::Unsafe),
        401 => (Status::Unauthorized, Retry::Unsafe),
        429 => (Status::RateLimited, Retry::Safe(a.retry_after)),
        _ => (Status::Api, read_only_if_5xx(a.status)),
    };
    Err(Error::new(
        status,
        format!(
            "the service answered code {}: {message} (HTTP {}, trace ID {})",
            raw.code,
            a.status,
            if trace_id.is_empty() {
                "none"
            } else {
                &trace_id
            }
        ),
    )
    .with_api(raw.code, &trace_id)
    .with_retry(retry))
}

fn read_only_if_5xx(status: u16) -> Retry {
    if status >= 500 {
        Retry::ReadOnly
    } else {
        Retry::Unsafe
    }
}

/// An answer without an envelope: a gateway's page, or garbage.
fn no_envelope(a: &HttpAnswer<'_>, e: &serde_json::Error) -> Error {
    let snippet = quote(&String::from_utf8_lossy(a.body), 120, a.secrets);
    if a.status == 429 {
        return Error::new(Status::RateLimited, "HTTP 429 Too Many Requests")
            .with_retry(Retry::Safe(a.retry_after));
    }
    if !(200..300).contains(&a.status) {
        return Error::new(
            Status::HttpStatus,
            format!(
                "HTTP {} {} without an API envelope: {snippet}",
                a.status,
                reason(a.status)
            ),
        )
        .with_retry(read_only_if_5xx(a.status));
    }
    Error::new(
        Status::BadResponse,
        format!("the answer is not an API envelope ({e}): {snippet}"),
    )
    .with_retry(Retry::ReadOnly)
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// Reads a positive integer ID field of `data` (a numeric string is accepted too).
pub(crate) fn positive_id(answer: &Answer, field: &str) -> Result<i64, Error> {
    let v = answer.data.get(field);
    let id = match v {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse::<i64>().ok(),
        _ => None,
    };
    match id {
        Some(id) if id > 0 => Ok(id),
        _ => Err(answer.bad(&format!(
            "the answer has no valid `data.{field}` (got {})",
            v.map_or("nothing".to_owned(), |v| printable(&v.to_string(), 60)),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Result<Answer, Error> {
        interpret(&HttpAnswer {
            status,
            retry_after: None,
            location: None,
            body: body.as_bytes(),
            secrets: &[],
        })
    }

    #[test]
    fn documented_example_parses() {
        let a = answer(200, r#"{"code":0,"message":"ok","data":{"taskID":394756},"x-traceID":"2eabaf50-f64d-4603-a62d-b49cb4661e8e_kong-db-5898fdd8c6-t5pvc"}"#).expect("ok");
        assert_eq!(positive_id(&a, "taskID").expect("id"), 394756);
        assert_eq!(
            a.trace_id,
            "2eabaf50-f64d-4603-a62d-b49cb4661e8e_kong-db-5898fdd8c6-t5pvc"
        );
    }

    #[test]
    fn codes_map_to_statuses() {
        for (status, body, want) in [
            (
                200,
                r#"{"code":401,"message":"tokens number has exceeded the limit","data":null}"#,
                Status::TokenLimit,
            ),
            (
                200,
                r#"{"code":401,"message":"invalid token","data":null}"#,
                Status::Unauthorized,
            ),
            (
                200,
                r#"{"code":429,"message":"slow","data":null}"#,
                Status::RateLimited,
            ),
            (
                200,
                r#"{"code":5066,"message":"file does not exist","data":null}"#,
                Status::Api,
            ),
            (429, "<html>busy</html>", Status::RateLimited),
            (502, "<html>bad gateway</html>", Status::HttpStatus),
            (200, "<html>", Status::BadResponse),
            (200, r#"{"code":"0"}"#, Status::BadResponse),
            (302, "", Status::HttpStatus),
        ] {
            assert_eq!(
                answer(status, body).expect_err(body).status(),
                want,
                "{body}"
            );
        }
        let e = answer(
            500,
            r#"{"code":1,"message":"internal error","x-traceID":"t-1"}"#,
        )
        .expect_err("api");
        assert_eq!(
            (e.status(), e.api_code(), e.trace_id()),
            (Status::Api, 1, "t-1")
        );
        assert!(e.message().contains("internal error") && e.message().contains("t-1"));
    }

    #[test]
    fn task_id_must_be_a_positive_integer() {
        for data in [
            r#"{}"#,
            r#"{"taskID":0}"#,
            r#"{"taskID":-1}"#,
            r#"{"taskID":1.5}"#,
            r#"{"taskID":"x"}"#,
            r#"{"taskID":null}"#,
        ] {
            let a = answer(
                200,
                &format!(r#"{{"code":0,"message":"ok","data":{data}}}"#),
            )
            .expect("envelope");
            assert_eq!(
                positive_id(&a, "taskID").expect_err(data).status(),
                Status::BadResponse
            );
        }
        let a = answer(200, r#"{"code":0,"data":{"taskID":"42"}}"#).expect("envelope");
        assert_eq!(positive_id(&a, "taskID").expect("numeric string"), 42);
    }
}
