//! The response envelope `{"code", "message", "data", "x-traceID"}` and what each answer means.

use std::borrow::Cow;
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use ureq::http::header::{
    HeaderName, CONTENT_ENCODING, DATE, LOCATION, RETRY_AFTER, TRANSFER_ENCODING,
};
use ureq::http::HeaderMap;

use crate::error::{Error, Retry, Status, MAX_TRACE_ID_CHARS};
use crate::json::Text;
use crate::redact::{clean, is_clean, printable, Secret};
use crate::spare::TraceId;

/// The message with which the service tells "too many tokens" apart from an invalid token.
const TOKEN_LIMIT_MESSAGE: &str = "tokens number has exceeded the limit";
/// Whether the service's message says a create was refused because too many of the account's
/// offline tasks are running (SPEC.md: `同时下载的任务超出最大限制，不能下载`, code 2 seen, the
/// code undocumented). Its known wordings and near variants are accepted: "simultaneous" or
/// "downloading" tasks, over a "maximum" or "upper" limit, in simplified or traditional
/// characters. Another wording is `PAN_ERR_API` with the service's message and code, never a
/// guess.
fn is_task_limit(message: &str) -> bool {
    let m = message;
    let tasks = ["任务", "任務"].iter().any(|w| m.contains(w));
    let over = [
        "超出最大限制",
        "超过最大限制",
        "超過最大限制",
        "超出限制",
        "超过限制",
        "达到上限",
        "已达上限",
        "達到上限",
        "数量上限",
        "超出上限",
    ]
    .iter()
    .any(|w| m.contains(w));
    tasks && over
}
/// Longest piece of server text quoted in a message.
const QUOTE_MAX: usize = 300;

/// A successful answer: the envelope's `data` and the request's trace ID.
#[derive(Debug)]
pub(crate) struct Answer {
    pub data: Data,
    pub trace_id: TraceId,
    /// The answer's `Date` (RFC 9110 §6.6.1) as Unix seconds, when it had a readable one.
    pub date: Option<i64>,
}

impl Answer {
    /// A `BadResponse` error about this answer's data, carrying its trace ID.
    pub(crate) fn bad(&self, why: &str) -> Error {
        let trace = if self.trace_id.is_empty() {
            "none"
        } else {
            &self.trace_id
        };
        Error::new(Status::BadResponse, format!("{why} (trace ID {trace})"))
            .with_api(0, &self.trace_id)
    }
}

/// The envelope as sent. Its texts borrow from the answer when they hold no escape: a success
/// copies nothing but the trace ID it hands back, and reads no `message`.
struct Raw<'a> {
    code: serde_json::Number,
    message: Option<Text<'a>>,
    data: Data,
    trace_id: Option<Text<'a>>,
}

/// Read member by member, leniently where leniency loses nothing: a `message` or `x-traceID`
/// that is not a string (a number is kept as written, anything else is as if absent), or that
/// appears twice (a gateway adding its own: the first is kept), does not lose the answer —
/// for a create, the task it reports. A `code` twice with two values, or `data` twice, is
/// ambiguous and refused; other members are skipped.
impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Raw<'a>, D::Error> {
        d.deserialize_map(RawVisitor(std::marker::PhantomData))
    }
}

struct RawVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> serde::de::Visitor<'de> for RawVisitor<'a> {
    type Value = Raw<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the envelope: an object with `code`")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Raw<'a>, A::Error> {
        use serde::de::Error as _;
        let (mut code, mut message, mut data, mut trace_id) = (None, None, None, None);
        while let Some(key) = crate::json::next_key(&mut map)? {
            match &*key {
                "code" => {
                    let c: serde_json::Number = map.next_value()?;
                    if code.as_ref().is_some_and(|old| *old != c) {
                        return Err(A::Error::custom("`code` appears twice, with two values"));
                    }
                    code = Some(c);
                }
                "data" => {
                    if data.is_some() {
                        return Err(A::Error::custom("`data` appears twice"));
                    }
                    data = Some(map.next_value::<Data>()?);
                }
                // A success's message is never read: skipped unparsed when `code` 0 came first.
                "message" if code.as_ref().is_some_and(|c| c.as_u64() == Some(0)) => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                "message" => {
                    let m = loose(map.next_value::<&'de RawValue>()?.get());
                    message = message.or(m.map_err(A::Error::custom)?);
                }
                "x-traceID" => {
                    let t = loose(map.next_value::<&'de RawValue>()?.get());
                    trace_id = trace_id.or(t.map_err(A::Error::custom)?);
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(Raw {
            code: code.ok_or_else(|| A::Error::missing_field("code"))?,
            message,
            data: data.unwrap_or_default(),
            trace_id,
        })
    }
}

/// A text member read whatever its JSON type, from its raw text (so that no number, however
/// large, fails the answer): a string as it is (borrowed when it holds no escape), a number as
/// written, anything else as absent. A string whose escapes do not decode (a lone surrogate)
/// is an error, which sends the whole answer to `mended`.
fn loose(raw: &str) -> Result<Option<Text<'_>>, serde_json::Error> {
    match raw.as_bytes() {
        // Valid JSON (the raw value was checked): without a backslash, a string is its text.
        [b'"', inner @ .., b'"'] if !inner.contains(&b'\\') => {
            Ok(Some(Text(Cow::Borrowed(&raw[1..raw.len() - 1]))))
        }
        [b'"', ..] => serde_json::from_str::<Text<'_>>(raw).map(Some),
        [b'-' | b'0'..=b'9', ..] => Ok(Some(Text(Cow::Borrowed(raw)))),
        _ => Ok(None),
    }
}

/// The fields of `data` the library reads, read straight from the answer: no map is built
/// for them (a `serde_json::Value` of `data` cost a map and a string per key on every call).
/// Other fields are skipped; a `data` that is not an object reads as one without fields.
#[derive(Debug, Default)]
pub(crate) struct Data {
    task_id: Option<Value>,
    process: Option<Value>,
    status: Option<Value>,
    access_token: Option<Value>,
    expired_at: Option<Value>,
}

impl Data {
    /// The field of this name (the API's spelling), if the answer had it.
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        match name {
            "taskID" => self.task_id.as_ref(),
            "process" => self.process.as_ref(),
            "status" => self.status.as_ref(),
            "accessToken" => self.access_token.as_ref(),
            "expiredAt" => self.expired_at.as_ref(),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Data, D::Error> {
        d.deserialize_any(DataVisitor)
    }
}

struct DataVisitor;

impl<'de> serde::de::Visitor<'de> for DataVisitor {
    type Value = Data;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the envelope's data")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Data, A::Error> {
        let mut data = Data::default();
        // Keys borrowed from the answer (serde's own `Cow<str>` would copy each one).
        while let Some(key) = crate::json::next_key(&mut map)? {
            let (name, slot) = match &*key {
                "taskID" => ("taskID", &mut data.task_id),
                "process" => ("process", &mut data.process),
                "status" => ("status", &mut data.status),
                "accessToken" => ("accessToken", &mut data.access_token),
                "expiredAt" => ("expiredAt", &mut data.expired_at),
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    continue;
                }
            };
            let value: Value = map.next_value()?;
            if slot.as_ref().is_some_and(|old| *old != value) {
                // Which one the service meant is unknown: the answer is not read.
                return Err(serde::de::Error::custom(format_args!(
                    "`data` has `{name}` twice, with two values"
                )));
            }
            *slot = Some(value);
        }
        Ok(data)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Data, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Data::default())
    }

    fn visit_unit<E>(self) -> Result<Data, E> {
        Ok(Data::default())
    }

    fn visit_bool<E>(self, _: bool) -> Result<Data, E> {
        Ok(Data::default())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Data, E> {
        Ok(Data::default())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Data, E> {
        Ok(Data::default())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Data, E> {
        Ok(Data::default())
    }

    fn visit_str<E>(self, _: &str) -> Result<Data, E> {
        Ok(Data::default())
    }
}

/// What the server said, as the HTTP layer delivered it.
pub(crate) struct HttpAnswer<'a> {
    pub status: u16,
    pub headers: &'a HeaderMap,
    /// Whether the answer's `Date` is read (for the token call).
    pub wants_date: bool,
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
                clean(header(a, LOCATION).unwrap_or(""), QUOTE_MAX, a.secrets)
            ),
        ));
    }
    let ok_status = (200..300).contains(&a.status);
    // RFC 8259 §8.1: a parser may ignore a byte-order mark; some gateways send one.
    let body = a.body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(a.body);
    // UTF-8 checked once for the whole answer, not string by string as `from_slice` would.
    let read = match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str::<Raw<'_>>(text),
        Err(_) => serde_json::from_slice::<Raw<'_>>(body),
    };
    match read {
        Ok(raw) => settle(a, ok_status, raw),
        // Text that is not UTF-8 (a gateway's GBK) or a lone surrogate escape loses only
        // itself (U+FFFD), not the answer's code and trace ID.
        Err(e) => match mended(body) {
            Some(text) => match serde_json::from_str::<Raw<'_>>(&text) {
                Ok(raw) => settle(a, ok_status, raw),
                Err(_) => Err(no_envelope(a, &e)),
            },
            None => Err(no_envelope(a, &e)),
        },
    }
}

/// What an envelope that could be read says.
fn settle(a: &HttpAnswer<'_>, ok_status: bool, raw: Raw<'_>) -> Result<Answer, Error> {
    let Some(code) = integral(&raw.code) else {
        if !ok_status {
            return Err(no_envelope(a, &"its `code` is not an integer"));
        }
        return Err(Error::new(
            Status::BadResponse,
            format!(
                "the answer's `code` {} is not an integer",
                printable(&raw.code.to_string(), 40)
            ),
        )
        .with_retry(Retry::ReadOnly));
    };
    // A token the answer hands out is a secret from here on: its own trace ID and message
    // must not carry it (they are logged before the caller ever sees the token).
    let fetched = raw
        .data
        .get("accessToken")
        .and_then(Value::as_str)
        .map(Secret::new);
    let with_fetched: Vec<&Secret>;
    let secrets = match &fetched {
        Some(f) => {
            with_fetched = a.secrets.iter().copied().chain([f]).collect();
            &with_fetched[..]
        }
        None => a.secrets,
    };
    let trace_id = match raw.trace_id.map(|t| t.0) {
        // The usual trace ID: copied as it is, into the thread's spare buffer.
        Some(Cow::Borrowed(t)) if is_clean(t, MAX_TRACE_ID_CHARS, secrets) => TraceId::copy_of(t),
        Some(Cow::Owned(t)) if is_clean(&t, MAX_TRACE_ID_CHARS, secrets) => TraceId::from(t),
        Some(t) => TraceId::from(clean(&t, MAX_TRACE_ID_CHARS, secrets)),
        None => TraceId::default(),
    };
    if code == 0 {
        if !ok_status {
            return Err(Error::new(
                Status::HttpStatus,
                format!(
                    "HTTP {} with a success envelope (trace ID {})",
                    a.status,
                    if trace_id.is_empty() {
                        "none"
                    } else {
                        &trace_id
                    }
                ),
            )
            .with_api(0, &trace_id)
            .with_retry(read_only_if_5xx(a.status)));
        }
        return Ok(Answer {
            data: raw.data,
            trace_id,
            date: if a.wants_date {
                a.headers.get(DATE).and_then(|v| http_date(v.as_bytes()))
            } else {
                None
            },
        });
    }
    let raw_message = raw.message.as_ref().map_or("", |m| &*m.0);
    let message = clean(raw_message, QUOTE_MAX, secrets);
    let (status, retry) = match code {
        _ if is_task_limit(raw_message) => (Status::TaskLimit, Retry::Unsafe),
        401 if message.contains(TOKEN_LIMIT_MESSAGE) => (Status::TokenLimit, Retry::Unsafe),
        401 => (Status::Unauthorized, Retry::Unsafe),
        429 => (Status::RateLimited, Retry::Safe(retry_after(a))),
        _ => (Status::Api, read_only_if_5xx(a.status)),
    };
    Err(Error::new(
        status,
        format!(
            "the service answered code {}: {message} (HTTP {}, trace ID {})",
            code,
            a.status,
            if trace_id.is_empty() {
                "none"
            } else {
                &trace_id
            }
        ),
    )
    .with_api(code, &trace_id)
    .with_retry(retry))
}

/// A header field of the answer as text, when it is one.
fn header<'a>(a: &HttpAnswer<'a>, name: HeaderName) -> Option<&'a str> {
    a.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The answer's `Retry-After`, read.
fn retry_after(a: &HttpAnswer<'_>) -> Option<Duration> {
    header(a, RETRY_AFTER).and_then(|v| crate::exchange::retry_after(v, header(a, DATE)))
}

/// An HTTP-date (any of RFC 9110's three forms) as Unix seconds.
fn http_date(v: &[u8]) -> Option<i64> {
    let t = httpdate::parse_http_date(std::str::from_utf8(v).ok()?.trim()).ok()?;
    let s = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(s).ok()
}

/// The integer a JSON number stands for: `394756`, and also `394756.0` or `3.94756e5` (some
/// servers write integers as floats); `None` for a fraction or beyond 2^53, where a float no
/// longer holds every integer.
pub(crate) fn integral(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    n.as_f64()
        .filter(|f| f.fract() == 0.0 && f.abs() <= EXACT)
        .map(|f| f as i64)
}

/// [`integral`] of a JSON value that is a number.
pub(crate) fn integral_value(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => integral(n),
        _ => None,
    }
}

/// `body` as text with invalid UTF-8 replaced by U+FFFD, each lone surrogate escape
/// (`\ud800` without its pair, which no Rust string can hold) by `\ufffd`, and raw control
/// characters inside strings escaped; `None` when there was nothing to mend.
pub(crate) fn mended(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let mut changed = matches!(text, std::borrow::Cow::Owned(_));
    let b = text.as_bytes();
    let hex = |i: usize| -> Option<u32> {
        let h = b.get(i..i + 4)?;
        u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    let mut in_string = false;
    while i < b.len() {
        if b[i] == b'"' {
            in_string = !in_string;
        }
        if in_string && b[i] < 0x20 {
            // A raw control character inside a string (a tab, a line break): escaped.
            out.push_str(&text[copied..i]);
            out.push_str(&format!("\\u{:04x}", b[i]));
            i += 1;
            copied = i;
            changed = true;
            continue;
        }
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        if b.get(i + 1) != Some(&b'u') {
            i += 2; // an escaped character: skip it, so `\\u` is not read as an escape
            continue;
        }
        let Some(unit) = hex(i + 2) else {
            i += 2;
            continue;
        };
        let paired = (0xD800..0xDC00).contains(&unit)
            && b.get(i + 6..i + 8) == Some(&b"\\u"[..])
            && hex(i + 8).is_some_and(|low| (0xDC00..0xE000).contains(&low));
        if paired {
            i += 12;
        } else if (0xD800..0xE000).contains(&unit) {
            out.push_str(&text[copied..i]);
            out.push_str("\\ufffd");
            i += 6;
            copied = i;
            changed = true;
        } else {
            i += 6;
        }
    }
    out.push_str(&text[copied..]);
    changed.then_some(out)
}

fn read_only_if_5xx(status: u16) -> Retry {
    if status >= 500 {
        Retry::ReadOnly
    } else {
        Retry::Unsafe
    }
}

/// An answer without an envelope: a gateway's page, or garbage.
fn no_envelope(a: &HttpAnswer<'_>, e: &dyn std::fmt::Display) -> Error {
    if a.status == 429 {
        return Error::new(Status::RateLimited, "HTTP 429 Too Many Requests")
            .with_retry(Retry::Safe(retry_after(a)));
    }
    // Asked for `identity`: a compressed answer cannot be read, and says so (its bytes are
    // not quoted).
    let coding = header(a, CONTENT_ENCODING)
        .map(|v| (v, "Content-Encoding"))
        .filter(|(v, _)| !v.trim().is_empty() && !v.trim().eq_ignore_ascii_case("identity"))
        .or_else(|| {
            header(a, TRANSFER_ENCODING)
                .filter(|v| {
                    v.split(',')
                        .map(str::trim)
                        .any(|c| !c.eq_ignore_ascii_case("chunked") && !c.is_empty())
                })
                .map(|v| (v, "Transfer-Encoding"))
        });
    let shown = match coding {
        Some((v, name)) => format!(
            "an answer encoded with `{name}: {}` although the request asked for `identity`",
            clean(v.trim(), 40, a.secrets)
        ),
        None => clean(&String::from_utf8_lossy(a.body), 120, a.secrets),
    };
    if !(200..300).contains(&a.status) {
        return Error::new(
            Status::HttpStatus,
            format!(
                "HTTP {} {} without an API envelope: {shown}",
                a.status,
                reason(a.status)
            ),
        )
        .with_retry(read_only_if_5xx(a.status));
    }
    if coding.is_some() {
        return Error::new(Status::BadResponse, format!("the service sent {shown}"))
            .with_retry(Retry::ReadOnly);
    }
    Error::new(
        Status::BadResponse,
        format!("the answer is not an API envelope ({e}): {shown}"),
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
        Some(Value::Number(n)) => integral(n),
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

    #[test]
    fn the_running_task_limit_is_known_by_its_wordings() {
        for m in [
            "同时下载的任务超出最大限制，不能下载",
            "同时下载的任务超出最大限制",
            "同時下載的任務超出最大限制",
            "同时下载任务超过最大限制",
            "离线下载任务数量已达上限",
            "正在下载的任务已达上限，请稍后再试",
        ] {
            assert!(is_task_limit(m), "{m}");
        }
        for m in [
            "解析失败",
            "internal error",
            "任务不存在",
            "流量超出最大限制",
        ] {
            assert!(!is_task_limit(m), "{m}");
        }
    }

    fn answer(status: u16, body: &str) -> Result<Answer, Error> {
        interpret(&HttpAnswer {
            status,
            headers: &HeaderMap::new(),
            wants_date: false,
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
    fn a_created_task_is_not_lost_to_an_odd_trace_id_or_message() {
        for (body, trace) in [
            (
                r#"{"code":0,"data":{"taskID":7},"x-traceID":12345}"#,
                "12345",
            ),
            (
                r#"{"code":0,"data":{"taskID":7},"x-traceID":{"id":"a"}}"#,
                "",
            ),
            (r#"{"code":0,"data":{"taskID":7},"x-traceID":["a"]}"#, ""),
            (r#"{"code":0,"data":{"taskID":7},"x-traceID":true}"#, ""),
            (r#"{"code":0,"data":{"taskID":7},"x-traceID":null}"#, ""),
            (
                r#"{"code":0,"x-traceID":"t-1","data":{"taskID":7},"x-traceID":"t-2"}"#,
                "t-1",
            ),
            (
                r#"{"code":0,"code":0,"message":7,"message":"ok","data":{"taskID":7}}"#,
                "",
            ),
            (
                r#"{"code":0,"data":{"taskID":7},"x-traceID":1e400,"message":1e400}"#,
                "1e400",
            ),
            (
                r#"{"code":0,"data":{"taskID":7,"taskID":7},"x-traceID":123456789012345678901234567890}"#,
                "123456789012345678901234567890",
            ),
        ] {
            let a = answer(200, body).unwrap_or_else(|e| panic!("{body}: {e}"));
            assert_eq!(positive_id(&a, "taskID").expect(body), 7, "{body}");
            assert_eq!(a.trace_id.as_str(), trace, "{body}");
        }
        for body in [
            r#"{"code":0,"code":5066,"data":{"taskID":7}}"#,
            r#"{"code":0,"data":{"taskID":7},"data":{"taskID":8}}"#,
            r#"{"message":"ok","data":{"taskID":7}}"#,
            r#"{"code":0,"data":{"taskID":7,"taskID":8}}"#,
            r#"{"code":0,"data":{"status":0,"status":2}}"#,
        ] {
            let e = answer(200, body).expect_err(body);
            assert_eq!(e.status(), Status::BadResponse, "{body}");
        }
    }

    #[test]
    fn a_fetched_token_is_removed_from_its_own_answers_trace_id() {
        let a = answer(
            200,
            r#"{"code":0,"data":{"accessToken":"tok-abcdefgh12345678","expiredAt":"2030-01-01T00:00:00+08:00"},"x-traceID":"x-tok-abcdefgh12345678"}"#,
        )
        .expect("ok");
        assert!(!a.trace_id.contains("abcdefgh"), "{}", a.trace_id);
    }

    #[test]
    fn off_spec_envelopes_keep_their_code_and_trace_id() {
        for body in [
            b"\xEF\xBB\xBF{\"code\":5066,\"message\":\"x\",\"x-traceID\":\"t-9\"}".to_vec(),
            br#"{"code":5066,"message":"bad \ud800 half","x-traceID":"t-9"}"#.to_vec(),
            br#"{"code":5066,"message":"\udc00\\ud800","x-traceID":"t-9"}"#.to_vec(),
            b"{\"code\":5066,\"message\":\"\xb7\xfe\xce\xf1\xc6\xf7\",\"x-traceID\":\"t-9\"}"
                .to_vec(),
            br#"{"code":5066.0,"message":"x","x-traceID":"t-9"}"#.to_vec(),
            br#"{"code":5.066e3,"message":"x","x-traceID":"t-9"}"#.to_vec(),
        ] {
            let e = interpret(&HttpAnswer {
                status: 200,
                headers: &HeaderMap::new(),
                wants_date: false,
                body: &body,
                secrets: &[],
            })
            .expect_err("an error envelope");
            assert_eq!(
                (e.status(), e.api_code(), e.trace_id()),
                (Status::Api, 5066, "t-9"),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
        let a = answer(200, r#"{"code":0,"data":{"taskID":394756.0}}"#).expect("ok");
        assert_eq!(positive_id(&a, "taskID").expect("integral float"), 394756);
        let a = answer(200, r#"{"code":0,"data":{"taskID":3.94756e5}}"#).expect("ok");
        assert_eq!(positive_id(&a, "taskID").expect("exponent"), 394756);
        let a = answer(200, r#"{"code":0,"data":{"taskID":394756.5}}"#).expect("ok");
        assert!(positive_id(&a, "taskID").is_err());
        assert_eq!(
            answer(200, r#"{"code":0.5}"#)
                .expect_err("fraction")
                .status(),
            Status::BadResponse
        );
        assert_eq!(mended(br#"{"a":"\ud83d\ude00 \\ud800"}"#), None);
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
