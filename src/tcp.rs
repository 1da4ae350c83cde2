//! A TCP transport for ureq that spends fewer system calls per request than ureq's own.
//!
//! ureq's `TcpTransport` probes a connection by switching the socket to non-blocking, reading,
//! and switching back (two `ioctl`s and a `recv`), and sets `SO_RCVTIMEO`/`SO_SNDTIMEO` on every
//! call because the remaining time differs on every call. Here a probe is one
//! `recv(MSG_PEEK | MSG_DONTWAIT)`, and a socket time limit is only changed when the remaining
//! time falls below it: the socket keeps a limit rounded down to whole seconds, and when it runs
//! out before the call's real deadline the exact rest is set and the read or write goes on — so
//! no limit is ever longer than configured.

use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::TcpStream;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, ShutdownHandle,
    Transport,
};

/// The least share of the connect limit one address gets while that much is left (Go's).
const MIN_CONNECT_SHARE: Duration = Duration::from_secs(2);

/// Opens plain TCP connections (TLS and CONNECT proxies are other links of the chain).
#[derive(Debug)]
pub(crate) struct LeanTcp;

impl<In: Transport> Connector<In> for LeanTcp {
    type Out = Either<In, LeanTcpTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(chained) = chained {
            return Ok(Some(Either::A(chained)));
        }
        let limit = (!details.timeout.after.is_not_happening()).then(|| *details.timeout.after);
        // The limit is for the whole connect, all addresses together (the smaller of
        // `connectTimeoutMs` and what is left of `timeoutMs`): each address gets its share of
        // what is left, as Go divides it — at least 2 s while that much is left, so that a
        // slow first address does not starve — and the next is tried when it is spent.
        let started = Instant::now();
        let count = details.addrs.len();
        let mut last = None;
        let mut stream = None;
        for (i, addr) in details.addrs.iter().enumerate() {
            let attempt = match limit {
                Some(t) => {
                    let left = t.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        return Err(ureq::Error::Timeout(details.timeout.reason));
                    }
                    let share = left / (count - i) as u32;
                    let share = share.max(left.min(MIN_CONNECT_SHARE));
                    TcpStream::connect_timeout(addr, share)
                }
                None => TcpStream::connect(addr),
            };
            match attempt {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = match (stream, last) {
            (Some(s), _) => s,
            (None, Some(e)) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(ureq::Error::Timeout(details.timeout.reason))
            }
            (None, Some(e)) => return Err(ureq::Error::Io(e)),
            (None, None) => return Err(ureq::Error::HostNotFound),
        };
        let config = details.config;
        stream.set_nodelay(config.no_delay())?;
        let stream = Arc::new(stream);
        (details.register_shutdown)(Arc::downgrade(&stream) as Weak<dyn ShutdownHandle>)?;
        Ok(Some(Either::B(LeanTcpTransport {
            stream,
            buffers: LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
            read_limit: None,
            write_limit: None,
        })))
    }
}

/// A connected socket and the time limits currently set on it.
#[derive(Debug)]
pub(crate) struct LeanTcpTransport {
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
    read_limit: Option<Duration>,
    write_limit: Option<Duration>,
}

/// The limit to keep on the socket for `remaining`: whole seconds below it (so that calls
/// with slightly less time left leave it alone), or the exact value under a second.
fn coarse(remaining: Duration) -> Duration {
    if remaining >= Duration::from_secs(1) {
        Duration::from_secs(remaining.as_secs())
    } else {
        remaining.max(Duration::from_millis(1))
    }
}

/// Runs `op` until it succeeds or `timeout` passes, keeping the socket's limit (`current`,
/// set with `set`) no longer than the time left.
fn with_deadline<T>(
    timeout: NextTimeout,
    current: &mut Option<Duration>,
    set: impl Fn(Option<Duration>) -> io::Result<()>,
    mut op: impl FnMut() -> io::Result<T>,
) -> Result<T, ureq::Error> {
    let limit = (!timeout.after.is_not_happening()).then_some(*timeout.after);
    // The time left is the whole limit the first time round: the clock is read once.
    let mut now = Instant::now();
    let deadline = limit.map(|l| now + l);
    let mut exact = false;
    loop {
        let want = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(now);
                if left.is_zero() {
                    return Err(ureq::Error::Timeout(timeout.reason));
                }
                Some(if exact {
                    left.max(Duration::from_millis(1))
                } else {
                    coarse(left)
                })
            }
        };
        // Only a limit longer than the time left, or none where one is needed, must change.
        let needs_change = match (want, *current) {
            (None, None) => false,
            (None, Some(_)) => true,
            (Some(_), None) => true,
            (Some(w), Some(c)) => c > w || (exact && c != w),
        };
        if needs_change {
            set(want)?;
            *current = want;
        }
        match op() {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                // The socket's limit ran out; the call's may not have.
                exact = true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other.map_err(ureq::Error::Io),
        }
        now = Instant::now();
    }
}

impl Transport for LeanTcpTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        // Borrowed field by field (not an `Arc` clone per call: two atomic operations).
        let LeanTcpTransport {
            stream,
            buffers,
            write_limit,
            ..
        } = self;
        let stream: &TcpStream = stream;
        let output = &buffers.output()[..amount];
        let mut sent = 0;
        while sent < amount {
            let n = with_deadline(
                timeout,
                write_limit,
                |t| stream.set_write_timeout(t),
                || { stream }.write(&output[sent..]),
            )?;
            if n == 0 {
                return Err(ureq::Error::Io(io::ErrorKind::WriteZero.into()));
            }
            sent += n;
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        let LeanTcpTransport {
            stream,
            buffers,
            read_limit,
            ..
        } = self;
        let stream: &TcpStream = stream;
        let input = buffers.input_append_buf();
        let n = with_deadline(
            timeout,
            read_limit,
            |t| stream.set_read_timeout(t),
            || { stream }.read(input),
        )?;
        buffers.input_appended(n);
        Ok(n > 0)
    }

    fn is_open(&mut self) -> bool {
        // Open means: nothing to read and no end of stream, without blocking.
        let mut byte = [MaybeUninit::<u8>::uninit()];
        let probe = socket2::SockRef::from(&*self.stream)
            .recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT);
        matches!(probe, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}
