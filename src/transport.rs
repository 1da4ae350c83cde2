//! Connections: ureq's connector chain to open them, a pool of idle ones, the resolver, and
//! what transport errors mean.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::config::Config as AgentConfig;
use ureq::http::Uri;
use ureq::tls::TlsConfig;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    ConnectProxyConnector, ConnectionDetails, Connector, NextTimeout, RustlsConnector,
    SocksConnector, Transport,
};
use ureq::{Agent, Timeout};

use crate::config::{Config, Pins};
use crate::error::{Error, Retry, Status};
use crate::fork::{self, PerProcess};
use crate::proxy::Route;
use crate::tcp::LeanTcp;
use crate::url::parse_http_url;

/// Idle connections kept per client: enough for every thread of a busy caller to find its own.
const MAX_IDLE: usize = 256;
/// An idle connection older than this is closed rather than used: servers drop idle
/// connections after a while (nginx after 75 s, many load balancers after 60 s), and a request
/// sent on one that is being dropped may be lost. ureq's default, kept.
const MAX_IDLE_AGE: Duration = Duration::from_secs(15);
/// How long a resolved host name is reused. std's resolver does not expose the record's TTL;
/// a minute is short enough to follow a changed record and long enough to spare every call a
/// lookup.
const DNS_TTL: Duration = Duration::from_secs(60);

/// A connection, plain or TLS, as ureq's connector chain makes it.
pub(crate) type Conn = Box<dyn Transport>;

/// The connector chain, boxed: what runs to open a connection (also the CONNECT proxy's own).
type RunConnector = dyn Fn(&ConnectionDetails) -> Result<Conn, ureq::Error> + Send + Sync;

/// A client's connections to its one base URL: ureq's connector chain (TCP, CONNECT or SOCKS
/// proxy, TLS) to open them, and a pool of idle ones.
///
/// The pool is this project's rather than ureq's Agent's: requests run on ureq-proto (see
/// `exchange.rs`), and this pool holds its lock only to push or pop, never across the
/// system call that probes a connection before it is used again.
pub(crate) struct Connections {
    config: AgentConfig,
    connect_limit: Duration,
    run_connector: PerProcess<Arc<RunConnector>>,
    resolver: CachingResolver,
    idle: PerProcess<Idle>,
}

/// SOCKS when the proxy is one, else a CONNECT proxy when it is one, else TCP; then TLS when
/// the base URL is https. Each link passes on a connection made before it.
fn connector_chain() -> Arc<RunConnector> {
    let chain =
        ().chain(SocksConnector::default())
            .chain(ConnectProxyConnector::default())
            .chain(LeanTcp)
            .chain(RustlsConnector::default())
            .chain(Boxed);
    Arc::new(move |details: &ConnectionDetails| {
        chain
            .connect(details, None)?
            .ok_or(ureq::Error::ConnectionFailed)
    })
}

/// Idle connections, oldest first, with when each was checked in.
type Idle = Mutex<Vec<(Instant, Conn)>>;

/// `m` locked. A panic while it was held left nothing half-done (a push, a pop, an insert).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections").finish_non_exhaustive()
    }
}

impl Connections {
    /// The connections of a checked configuration, over the route chosen for it.
    pub(crate) fn new(
        config: &Config,
        base: &str,
        tls: &TlsConfig,
        route: Route,
        pins: Pins,
    ) -> Connections {
        let cleartext = parse_http_url(base).is_ok_and(|u| !u.https);
        let agent_config: AgentConfig = Agent::config_builder()
            .timeout_connect(Some(config.connect_timeout))
            .proxy(route.proxy)
            // The CONNECT request carries the configured User-Agent too.
            .user_agent(config.user_agent.trim())
            .tls_config(tls.clone())
            .build();
        // The chain holds rustls' configuration and with it its cache of session tickets,
        // behind a lock: a forked child makes a chain of its own (see `PerProcess`).
        let run_connector = PerProcess::new_with(|_| connector_chain());
        Connections {
            config: agent_config,
            connect_limit: config.connect_timeout,
            run_connector,
            resolver: CachingResolver {
                cache: DnsCache::default(),
                pins,
                cleartext,
            },
            idle: PerProcess::default(),
        }
    }

    /// A connection to `uri`'s host: the most recently used idle one that is still open, or a
    /// new one. Time limits: the connect limit, and `deadline` for all.
    /// Returns the connection and whether it was a pooled one.
    /// `generation` is [`fork::generation`], just read.
    pub(crate) fn checkout(
        &self,
        uri: &Uri,
        deadline: Instant,
        generation: u64,
    ) -> Result<(Conn, bool), ureq::Error> {
        loop {
            // A forked child finds a pool of its own (see `PerProcess`): it must not use its
            // parent's connections (the two would interleave bytes on one socket), nor wait
            // for a lock a parent's thread held when the process forked.
            let found = lock(self.idle.here_at(generation)).pop();
            let Some((since, mut conn)) = found else {
                break;
            };
            // Open means: nothing to read and no end of stream (one non-blocking peek).
            if since.elapsed() < MAX_IDLE_AGE && conn.is_open() {
                return Ok((conn, true));
            }
        }
        self.connect(uri, deadline).map(|c| (c, false))
    }

    /// Returns a connection whose exchange ended cleanly, for the next request. `generation`
    /// is [`fork::generation`] when it was checked out: a connection of the parent, carried
    /// into a child by a thread that forked in the middle of a call, is closed in the child,
    /// never pooled there.
    pub(crate) fn checkin(&self, conn: Conn, generation: u64) {
        let current = fork::generation();
        if generation != current {
            return;
        }
        let now = Instant::now();
        let stale: Vec<(Instant, Conn)> = {
            let mut idle = lock(self.idle.here_at(current));
            idle.push((now, conn));
            let old = idle
                .iter()
                .take_while(|(since, _)| now.duration_since(*since) >= MAX_IDLE_AGE)
                .count()
                .max(idle.len().saturating_sub(MAX_IDLE));
            if old == 0 {
                return;
            }
            idle.drain(..old).collect()
        };
        // Closed outside the lock.
        drop(stale);
    }

    fn connect(&self, uri: &Uri, deadline: Instant) -> Result<Conn, ureq::Error> {
        let run_connector = self.run_connector.here();
        let proxy = self.config.proxy();
        // A proxy resolves the target itself, except SOCKS4, and except hosts in NO_PROXY.
        let resolve_here = proxy.is_none_or(|p| p.resolve_target() || p.is_no_proxy(uri));
        let addrs = if resolve_here {
            self.resolver
                .resolve(uri, &self.config, next_timeout(deadline, None))?
        } else {
            self.resolver.empty()
        };
        let details = ConnectionDetails {
            uri,
            addrs,
            config: &self.config,
            request_level: false,
            resolver: &self.resolver,
            now: ureq::unversioned::transport::time::Instant::now(),
            timeout: next_timeout(deadline, Some((self.connect_limit, Timeout::Connect))),
            current_time: Arc::new(ureq::unversioned::transport::time::Instant::now),
            run_connector: Arc::clone(run_connector),
            register_shutdown: Arc::new(|_| Ok(())),
        };
        let conn = run_connector(&details)?;
        if details.needs_tls() && !conn.is_tls() {
            return Err(ureq::Error::TlsRequired);
        }
        Ok(conn)
    }
}

/// The time limit of the next step: what is left until `deadline` (reported as the global
/// limit), or the step's own `limit` (the connect limit) when that is shorter.
pub(crate) fn next_timeout(deadline: Instant, limit: Option<(Duration, Timeout)>) -> NextTimeout {
    let left = deadline.saturating_duration_since(Instant::now());
    let (after, reason) = match limit {
        Some((l, reason)) if l < left => (l, reason),
        _ => (left, Timeout::Global),
    };
    NextTimeout {
        after: after.into(),
        reason,
        per_read: None,
        per_write: None,
    }
}

/// The last link of the connector chain: boxes the connection, whatever its layers.
#[derive(Debug)]
struct Boxed;

impl<In: Transport> Connector<In> for Boxed {
    type Out = Conn;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Conn>, ureq::Error> {
        Ok(chained.map(|t| Box::new(t) as Conn))
    }
}

/// A resolver that answers IP literals without a lookup (ureq's default spawns a thread per
/// request when a time limit is set, even for `127.0.0.1`), answers names pinned by the
/// `resolve` key from the pins, and caches other host names for [`DNS_TTL`]. For a plain-http
/// client it refuses any address that is not loopback, so the token is never sent in
/// cleartext to the network, even when a resolver maps `localhost` elsewhere (RFC 6761 §6.3
/// lets one be wrong about it).
#[derive(Debug)]
struct CachingResolver {
    cache: DnsCache,
    pins: Pins,
    cleartext: bool,
}

/// Resolved host names, by `host:port`, with when they were resolved.
type DnsCache = PerProcess<Mutex<HashMap<String, (Instant, ResolvedSocketAddrs)>>>;

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &AgentConfig,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or("");
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs = if let Ok(ip) = bare.parse::<IpAddr>() {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::new(ip, port));
            addrs
        } else if let Some(pinned) = self.pins.lookup(bare, port) {
            let mut addrs = self.empty();
            // ureq keeps at most 16 addresses.
            for ip in pinned.iter().take(16) {
                addrs.push(SocketAddr::new(*ip, port));
            }
            addrs
        } else {
            self.lookup(uri, config, timeout, format!("{host}:{port}"))?
        };
        if self.cleartext {
            if let Some(a) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                return Err(ureq::Error::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    CleartextRefused(format!(
                        "refused to send the token in cleartext: `{host}` resolved to {}, \
                         which is not a loopback address (plain http is only for loopback)",
                        a.ip()
                    )),
                )));
            }
        }
        Ok(addrs)
    }
}

impl CachingResolver {
    fn lookup(
        &self,
        uri: &Uri,
        config: &AgentConfig,
        timeout: NextTimeout,
        key: String,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        if let Some((at, addrs)) = lock(self.cache.here()).get(&key) {
            if at.elapsed() < DNS_TTL {
                return Ok(addrs.clone());
            }
        }
        let addrs = DefaultResolver::default().resolve(uri, config, timeout)?;
        lock(self.cache.here()).insert(key, (Instant::now(), addrs.clone()));
        Ok(addrs)
    }
}

/// Why a plain-http client refused an address: told apart from network failures.
#[derive(Debug)]
struct CleartextRefused(String);

impl std::fmt::Display for CleartextRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CleartextRefused {}

/// What a ureq error means for the caller: its status, its message, and whether the request
/// certainly did not reach the service (so that even a create may be sent again). `sent` is
/// false when the failure came before the request's first byte was written: whatever the
/// error, the service cannot have acted on it.
pub(crate) fn map_error(e: ureq::Error, sent: bool) -> Error {
    let err = classify(e);
    if !sent && err.retry == Retry::ReadOnly {
        return err.with_retry(Retry::Safe(None));
    }
    err
}

fn classify(e: ureq::Error) -> Error {
    use ureq::Error as E;
    let safe = Retry::Safe(None);
    match e {
        E::Timeout(t) => {
            // Before the connection exists nothing was sent.
            let retry = match t {
                ureq::Timeout::Resolve | ureq::Timeout::Connect => safe,
                _ => Retry::ReadOnly,
            };
            Error::new(Status::Timeout, format!("time limit ({t}) ran out")).with_retry(retry)
        }
        E::HostNotFound => Error::new(Status::Network, "host not found").with_retry(safe),
        E::ConnectionFailed => Error::new(Status::Network, "connection failed").with_retry(safe),
        E::Io(io) => map_io(io),
        E::Tls(why) => Error::new(Status::Tls, format!("TLS failed: {why}")),
        E::Rustls(r) => Error::new(Status::Tls, format!("TLS failed: {r}")),
        E::Pem(p) => Error::new(Status::Tls, format!("TLS certificate error: {p}")),
        E::TlsRequired => Error::new(Status::Tls, "TLS was required but not negotiated"),
        E::BodyExceedsLimit(n) => Error::new(
            Status::BadResponse,
            format!("response body is larger than the limit of {n} bytes"),
        )
        .with_retry(Retry::ReadOnly),
        E::LargeResponseHeader(n, limit) => Error::new(
            Status::BadResponse,
            format!("response header of {n} bytes is larger than the limit of {limit}"),
        )
        .with_retry(Retry::ReadOnly),
        E::Protocol(p) => Error::new(
            Status::BadResponse,
            format!("the server's answer is not valid HTTP: {p}"),
        )
        .with_retry(Retry::ReadOnly),
        E::InvalidProxyUrl | E::ConnectProxyFailed(_) => {
            Error::new(Status::Network, format!("proxy failed: {e}")).with_retry(safe)
        }
        other => Error::new(Status::Network, other.to_string()).with_retry(Retry::ReadOnly),
    }
}

fn map_io(io: io::Error) -> Error {
    use io::ErrorKind as K;
    if let Some(refused) = io
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<CleartextRefused>())
    {
        return Error::invalid(refused.0.clone());
    }
    if let Some(tls) = io
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return Error::new(Status::Tls, format!("TLS failed: {tls}"));
    }
    match io.kind() {
        K::TimedOut | K::WouldBlock => {
            Error::new(Status::Timeout, format!("time limit ran out: {io}"))
                .with_retry(Retry::ReadOnly)
        }
        // Only connecting fails this way: the request was not sent.
        K::ConnectionRefused | K::AddrNotAvailable | K::NetworkUnreachable | K::HostUnreachable => {
            Error::new(Status::Network, format!("could not connect: {io}"))
                .with_retry(Retry::Safe(None))
        }
        _ => Error::new(Status::Network, format!("connection failed: {io}"))
            .with_retry(Retry::ReadOnly),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(pins: &[&str], cleartext: bool) -> CachingResolver {
        let pins: Vec<String> = pins.iter().map(|s| (*s).to_owned()).collect();
        CachingResolver {
            cache: DnsCache::default(),
            pins: Pins::parse(&pins).expect("pins"),
            cleartext,
        }
    }

    fn resolve(r: &CachingResolver, url: &str) -> Result<Vec<SocketAddr>, Error> {
        let uri: Uri = url.parse().expect("uri");
        let config = Agent::config_builder().build();
        let deadline = Instant::now() + Duration::from_secs(1);
        r.resolve(&uri, &config, next_timeout(deadline, None))
            .map(|a| a.iter().copied().collect())
            .map_err(|e| map_error(e, false))
    }

    #[test]
    fn pinned_names_resolve_to_their_addresses_without_a_lookup() {
        let r = resolver(&["pan.test:8080:127.0.0.2,[::1]"], false);
        let addrs = resolve(&r, "http://PAN.test:8080/x").expect("pinned");
        assert_eq!(
            addrs,
            vec![
                "127.0.0.2:8080".parse().expect("addr"),
                "[::1]:8080".parse().expect("addr")
            ]
        );
    }

    #[test]
    fn a_cleartext_client_refuses_addresses_off_loopback_before_connecting() {
        // A resolver that maps `localhost` off loopback (RFC 6761 §6.3 lets one be wrong):
        // refused at resolution, so no connection is attempted.
        let r = resolver(
            &["localhost:80:192.0.2.1", "pan.test:80:127.0.0.1,192.0.2.7"],
            true,
        );
        for url in ["http://localhost/", "http://pan.test/", "http://192.0.2.9/"] {
            let e = resolve(&r, url).expect_err(url);
            assert_eq!(e.status(), Status::InvalidArgument, "{url}: {e}");
            assert!(e.message().contains("not a loopback address"), "{e}");
        }
        assert!(resolve(&r, "http://127.0.0.1:9/").is_ok());
        // An https client may go anywhere.
        let r = resolver(&["localhost:443:192.0.2.1"], false);
        assert!(resolve(&r, "https://localhost/").is_ok());
    }
}
