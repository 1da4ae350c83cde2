//! One HTTP/1.1 request and its response, driven on ureq-proto (the sans-I/O protocol layer
//! under ureq) over a connection from [`Connections`].
//!
//! ureq's own request loop (`Agent::run`) costs about 20,000 instructions per call beyond the
//! protocol work: a timing record per step, a response body behind a chain of readers, a
//! `Response` to build and drop, and its connection pool's lock held across a probe. An API
//! call of a few hundred bytes each way needs none of it. Here the head and the body leave in
//! one write, the answer is read straight into one buffer, and the connection goes back to the
//! pool as soon as the body has ended.

use std::io;
use std::time::{Duration, Instant};

use ureq::http::{HeaderMap, Request};
use ureq::unversioned::transport::Transport;
use ureq_proto::client::state::{RecvBody, RecvResponse};
use ureq_proto::client::{Call, RecvBodyResult, RecvResponseResult, SendRequestResult};
use ureq_proto::BodyMode;

use crate::fork;
use crate::spare::Body;
use crate::transport::{next_timeout, Conn, Connections};

/// The largest response head read; a larger one is refused.
const MAX_HEAD: usize = 64 * 1024;

/// What came back, as far as the envelope logic needs it.
pub(crate) struct Reply {
    pub status: u16,
    /// The response's header fields, moved out of the parsed head (read only where needed:
    /// `Retry-After` on a 429, `Location` on a redirect, `Date` by the token call,
    /// `Content-Encoding` when the body is not JSON).
    pub headers: HeaderMap,
    pub body: Body,
    /// Whether the request went on a pooled connection (else a new one).
    pub reused: bool,
    /// Whether the connection went back to the pool (else it was closed).
    pub kept: bool,
}

/// A failed exchange, and whether the request may have reached the server: `sent` is false
/// only when the failure came before the first byte of the request was written (resolving,
/// connecting, the TLS handshake, building the request).
pub(crate) struct Failed {
    pub error: ureq::Error,
    pub sent: bool,
}

/// Sends `request` (with all its header fields, `Content-Length` of `body` among them when
/// there is one) and reads the whole answer,
/// with `deadline` as the time limit of all of it and `max_body` bytes at most of body.
pub(crate) fn exchange(
    conns: &Connections,
    request: Request<()>,
    body: Option<&[u8]>,
    deadline: Instant,
    max_body: u64,
) -> Result<Reply, Failed> {
    fn before(e: impl Into<ureq::Error>) -> Failed {
        Failed {
            error: e.into(),
            sent: false,
        }
    }
    let call = Call::new(request).map_err(before)?;
    // The process the connection belongs to (see `Connections::checkin`).
    let generation = fork::generation();
    let (mut conn, reused) = conns
        .checkout(call.uri(), deadline, generation)
        .map_err(before)?;
    // A request that was not wholly written cannot have been acted on: a server acts on a
    // complete request only (its head, and the body its Content-Length announces). So a
    // failure while writing — a reset, a closed pooled connection — is "not sent".
    let call = write_request(call, &mut conn, body, deadline).map_err(before)?;
    let mut reply = read_answer(conns, call, (conn, generation), deadline, max_body)
        .map_err(|error| Failed { error, sent: true })?;
    reply.reused = reused;
    Ok(reply)
}

/// Writes the request's head and body on `conn`, in one write when they fit.
fn write_request(
    call: Call<ureq_proto::client::state::Prepare>,
    conn: &mut Conn,
    body: Option<&[u8]>,
    deadline: Instant,
) -> Result<Call<RecvResponse>, ureq::Error> {
    // The head and the body, in one write.
    let mut call = call.proceed();
    let mut used = 0;
    while !call.can_proceed() {
        let n = call.write(&mut conn.buffers().output()[used..])?;
        if n == 0 {
            return Err(stalled("request head"));
        }
        used += n;
    }
    let call = match call.proceed()? {
        Some(SendRequestResult::RecvResponse(call)) => call,
        Some(SendRequestResult::SendBody(mut call)) => {
            let mut rest = body.unwrap_or_default();
            loop {
                let out = &mut conn.buffers().output()[used..];
                let n = rest.len().min(out.len());
                out[..n].copy_from_slice(&rest[..n]);
                call.consume_direct_write(n)?;
                used += n;
                rest = &rest[n..];
                if rest.is_empty() {
                    break;
                }
                // A body larger than the output buffer goes in buffer-sized writes.
                transmit(conn, used, deadline)?;
                used = 0;
            }
            transmit(conn, used, deadline)?;
            used = 0;
            call.proceed().ok_or_else(|| stalled("request body"))?
        }
        // No Expect: 100-continue is ever sent.
        Some(SendRequestResult::Await100(_)) | None => return Err(stalled("request")),
    };
    if used > 0 {
        transmit(conn, used, deadline)?;
    }
    Ok(call)
}

/// Reads the answer to a request written on `conn` (checked out in fork generation
/// `generation`), and returns the connection to the pool when it may be used again.
fn read_answer(
    conns: &Connections,
    call: Call<RecvResponse>,
    (mut conn, generation): (Conn, u64),
    deadline: Instant,
    max_body: u64,
) -> Result<Reply, ureq::Error> {
    let (mut reply, call) = receive_head(call, &mut conn, deadline)?;
    let must_close = match call {
        RecvResponseResult::RecvBody(call) => {
            receive_body(call, &mut conn, &mut reply.body.0, deadline, max_body)?
        }
        RecvResponseResult::Redirect(call) => call.must_close_connection(),
        RecvResponseResult::Cleanup(call) => call.must_close_connection(),
    };
    // Bytes beyond the answer mean the server does not speak in turn: not reused.
    if !must_close && conn.buffers().input().is_empty() {
        conns.checkin(conn, generation);
        reply.kept = true;
    }
    Ok(reply)
}

fn transmit(conn: &mut Conn, amount: usize, deadline: Instant) -> Result<(), ureq::Error> {
    conn.transmit_output(amount, next_timeout(deadline, None))
}

fn stalled(what: &str) -> ureq::Error {
    ureq::Error::Io(io::Error::other(format!(
        "the {what} could not be completed"
    )))
}

fn disconnected() -> ureq::Error {
    ureq::Error::Io(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the server closed the connection before the answer was complete",
    ))
}

/// Reads the response head.
fn receive_head(
    mut call: Call<RecvResponse>,
    conn: &mut Conn,
    deadline: Instant,
) -> Result<(Reply, RecvResponseResult), ureq::Error> {
    let response = loop {
        let progress = conn.maybe_await_input(next_timeout(deadline, None))?;
        let input = conn.buffers().input();
        let (amount, response) = match call.try_response(input, false) {
            Ok(parsed) => parsed,
            // RFC 9112 §5.2: a user agent replaces each obs-fold (a header line continued on
            // the next) with spaces before interpreting the header; the parser refuses them,
            // so a head it refuses is read again unfolded (same length: what it consumes is
            // what the connection consumes). A refused parse leaves the call as it was.
            Err(e) => match unfold(input) {
                Some(unfolded) => call.try_response(&unfolded, false)?,
                None => return Err(e.into()),
            },
        };
        let seen = if response.is_some() {
            amount
        } else {
            input.len()
        };
        if seen > MAX_HEAD {
            return Err(ureq::Error::LargeResponseHeader(seen, MAX_HEAD));
        }
        conn.buffers().input_consume(amount);
        match response {
            Some(r) => break r,
            None if !progress => return Err(disconnected()),
            None => {}
        }
    };
    let (head, ()) = response.into_parts();
    let reply = Reply {
        status: head.status.as_u16(),
        headers: head.headers,
        body: Body::spare(),
        reused: false,
        kept: false,
    };
    let next = call.proceed().ok_or_else(|| stalled("response head"))?;
    Ok((reply, next))
}

/// Reads the response body into `body`; returns whether the connection must be closed.
fn receive_body(
    mut call: Call<RecvBody>,
    conn: &mut Conn,
    body: &mut Vec<u8>,
    deadline: Instant,
    max_body: u64,
) -> Result<bool, ureq::Error> {
    if let BodyMode::LengthDelimited(n) = call.body_mode() {
        // Room for the announced body in one allocation.
        body.reserve_exact(n.min(max_body) as usize);
    }
    let mut remote_closed = false;
    loop {
        let fulfilled = match call.body_mode() {
            BodyMode::LengthDelimited(_) | BodyMode::Chunked => call.can_proceed(),
            BodyMode::CloseDelimited => false,
            _ => true,
        };
        if fulfilled {
            break;
        }
        // Input already buffered first (the head's read usually brought the whole body).
        if conn.buffers().can_use_input() && decode(&mut call, conn, body, max_body)? {
            continue;
        }
        if remote_closed {
            break;
        }
        if call.is_ended_chunked() {
            // The body is whole (its last chunk came) and what follows — trailer fields, which
            // the API never sends — has not all come: not waited for, however slowly or
            // endlessly it comes. The connection is closed rather than reused.
            remote_closed = true;
            break;
        }
        match conn.maybe_await_input(next_timeout(deadline, None)) {
            Ok(true) => {}
            Ok(false) => remote_closed = true,
            Err(ureq::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                ) =>
            {
                remote_closed = true
            }
            Err(e) => return Err(e),
        }
        if !conn.buffers().input().is_empty() {
            decode(&mut call, conn, body, max_body)?;
        }
    }
    let mut force_close = remote_closed;
    if !call.can_proceed() {
        // A chunked body whose last chunk came before the server hung up is complete.
        if call.is_ended_chunked() {
            force_close = true;
        } else {
            return Err(disconnected());
        }
    }
    let must_close = match call.proceed() {
        Some(RecvBodyResult::Cleanup(c)) => c.must_close_connection(),
        Some(RecvBodyResult::Redirect(c)) => c.must_close_connection(),
        None => true,
    };
    Ok(force_close || must_close)
}

/// Decodes buffered input into `body`; returns whether it made progress.
fn decode(
    call: &mut Call<RecvBody>,
    conn: &mut Conn,
    body: &mut Vec<u8>,
    max_body: u64,
) -> Result<bool, ureq::Error> {
    let input = conn.buffers().input();
    let start = body.len();
    // Room for what is buffered (decoding never grows it), and one byte to see a body that
    // is larger than allowed.
    let room = input
        .len()
        .min((max_body as usize + 1).saturating_sub(start))
        .max(1);
    body.resize(start + room, 0);
    let (used, produced) = call.read(input, &mut body[start..])?;
    body.truncate(start + produced);
    conn.buffers().input_consume(used);
    if body.len() as u64 > max_body {
        return Err(ureq::Error::BodyExceedsLimit(max_body));
    }
    Ok(used > 0 || produced > 0)
}

/// The longest pause a `Retry-After` can ask for that is read at all (a day); the caller caps
/// it further.
const MAX_RETRY_AFTER_READ: Duration = Duration::from_secs(86_400);

/// Reads `Retry-After` (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date in any of the three
/// forms recipients must accept (IMF-fixdate, RFC 850, asctime), read by the `httpdate`
/// crate. A date is measured against the answer's own `Date` when it has one (`server_now`),
/// so that a machine clock that disagrees with the server's changes nothing; else against
/// this machine's clock. A date in the past means now.
pub(crate) fn retry_after(value: &str, server_now: Option<&str>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // A number too large for u64 is a very long time.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER_READ));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let now = server_now
        .and_then(|d| httpdate::parse_http_date(d.trim()).ok())
        .unwrap_or_else(std::time::SystemTime::now);
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER_READ),
    )
}

/// The response head in `input` with each obs-fold (CRLF or LF followed by a space or tab,
/// within the header section) replaced by spaces, or `None` when it has none.
pub(crate) fn unfold(input: &[u8]) -> Option<Vec<u8>> {
    // Line ends after the status line, up to the empty line that ends the head.
    let mut folds = Vec::new();
    let mut i = input.iter().position(|&b| b == b'\n')?;
    loop {
        match input.get(i + 1) {
            Some(b' ' | b'\t') => folds.push(i),
            Some(b'\n') | None => break,
            Some(b'\r') if input.get(i + 2) == Some(&b'\n') => break,
            _ => {}
        }
        match input[i + 1..].iter().position(|&b| b == b'\n') {
            Some(n) => i += 1 + n,
            None => break,
        }
    }
    if folds.is_empty() {
        return None;
    }
    let mut out = input.to_vec();
    for i in folds {
        out[i] = b' ';
        if i > 0 && out[i - 1] == b'\r' {
            out[i - 1] = b' ';
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_all_three_date_forms() {
        assert_eq!(retry_after(" 3 ", None), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after("99999999999999999999999", None),
            Some(MAX_RETRY_AFTER_READ)
        );
        let soon = std::time::SystemTime::now() + Duration::from_secs(5);
        let imf = httpdate::fmt_http_date(soon);
        let d = retry_after(&imf, None).expect("IMF-fixdate");
        assert!(
            d > Duration::from_secs(2) && d <= Duration::from_secs(5),
            "{d:?}"
        );
        for past in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(retry_after(past, None), Some(Duration::ZERO), "{past}");
        }
        for bad in ["", "soon", "-1", "1.5", "Sun, 32 Nov 1994 08:49:37 GMT"] {
            assert_eq!(retry_after(bad, None), None, "{bad}");
        }
        // Measured against the answer's own Date: a server an hour behind this machine.
        assert_eq!(
            retry_after(
                "Sun, 06 Nov 1994 08:49:40 GMT",
                Some("Sun, 06 Nov 1994 08:49:37 GMT")
            ),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn obs_fold_becomes_spaces_and_nothing_else_changes() {
        let head = b"HTTP/1.1 200 OK\r\nX-Trace: a\r\n  b\r\nContent-Length: 2\r\n\r\n{}\n x";
        let out = unfold(head).expect("folded");
        assert_eq!(
            &out[..],
            &b"HTTP/1.1 200 OK\r\nX-Trace: a    b\r\nContent-Length: 2\r\n\r\n{}\n x"[..]
        );
        assert_eq!(unfold(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n"), None);
        assert_eq!(unfold(b"HTTP/1.1 200 OK\r\n\r\n\n x"), None);
    }
}
