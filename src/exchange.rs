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

use ureq::http::header::{ACCEPT, CONTENT_LENGTH, LOCATION, RETRY_AFTER, USER_AGENT};
use ureq::http::{HeaderValue, Request};
use ureq::unversioned::transport::Transport;
use ureq_proto::client::state::{RecvBody, RecvResponse};
use ureq_proto::client::{Call, RecvBodyResult, RecvResponseResult, SendRequestResult};
use ureq_proto::BodyMode;

use crate::transport::{next_timeout, Conn, Connections};

/// The largest response head read; a larger one is refused.
const MAX_HEAD: usize = 64 * 1024;

/// What came back, as far as the envelope logic needs it.
pub(crate) struct Reply {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

/// Sends `request` (a POST with `body` when given, else as it is) and reads the whole answer,
/// with `deadline` as the time limit of all of it and `max_body` bytes at most of body.
pub(crate) fn exchange(
    conns: &Connections,
    request: Request<()>,
    body: Option<&[u8]>,
    user_agent: &HeaderValue,
    deadline: Instant,
    max_body: u64,
) -> Result<Reply, ureq::Error> {
    let mut call = Call::new(request)?;
    if let Some(b) = body {
        call.header(CONTENT_LENGTH, HeaderValue::from(b.len()))?;
    }
    call.header(USER_AGENT, user_agent.clone())?;
    call.header(ACCEPT, HeaderValue::from_static("*/*"))?;
    let mut conn = conns.checkout(call.uri(), deadline)?;

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
                transmit(&mut conn, used, deadline)?;
                used = 0;
            }
            transmit(&mut conn, used, deadline)?;
            used = 0;
            call.proceed().ok_or_else(|| stalled("request body"))?
        }
        // No Expect: 100-continue is ever sent.
        Some(SendRequestResult::Await100(_)) | None => return Err(stalled("request")),
    };
    if used > 0 {
        transmit(&mut conn, used, deadline)?;
    }

    let (mut reply, call) = receive_head(call, &mut conn, deadline)?;
    let must_close = match call {
        RecvResponseResult::RecvBody(call) => {
            receive_body(call, &mut conn, &mut reply.body, deadline, max_body)?
        }
        RecvResponseResult::Redirect(call) => call.must_close_connection(),
        RecvResponseResult::Cleanup(call) => call.must_close_connection(),
    };
    // Bytes beyond the answer mean the server does not speak in turn: not reused.
    if !must_close && conn.buffers().input().is_empty() {
        conns.checkin(conn);
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
        let (amount, response) = call.try_response(input, false)?;
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
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let reply = Reply {
        status: response.status().as_u16(),
        retry_after: header(RETRY_AFTER)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs),
        location: header(LOCATION).map(str::to_owned),
        body: Vec::new(),
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
