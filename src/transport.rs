//! The HTTP transport: one ureq `Agent` per client, its resolver, and what its errors mean.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::config::Config as AgentConfig;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, DefaultConnector, NextTimeout,
    RustlsConnector, Transport,
};

use crate::tcp::LeanTcp;
use ureq::tls::TlsConfig;
use ureq::Agent;

use crate::config::Config;
use crate::error::{Error, Retry, Status};
use crate::url::parse_http_url;

/// Idle connections kept per host. ureq keeps 3 by default; with more threads than that every
/// extra call would open (and then drop) a fresh connection.
const MAX_IDLE_PER_HOST: usize = 256;
/// How long a resolved host name is reused. std's resolver does not expose the record's TTL;
/// a minute is short enough to follow a changed record and long enough to spare every call a
/// lookup.
const DNS_TTL: Duration = Duration::from_secs(60);

/// Agents (connection pools) per client. ureq holds a pool's lock while it probes a pooled
/// connection (a system call) and while it returns one; calling threads that share a pool queue
/// on that lock. Each calling thread keeps to one of these, so up to this many threads never
/// meet, and a thread finds its own warm connection.
pub(crate) const SHARDS: usize = 8;

/// Builds the agents for a checked configuration; they share one DNS cache.
pub(crate) fn agents(config: &Config, base: &str, tls: &TlsConfig) -> Box<[Agent]> {
    let dns = Arc::new(DnsCache::default());
    (0..SHARDS)
        .map(|_| agent(config, base, tls, &dns))
        .collect()
}

fn agent(config: &Config, base: &str, tls: &TlsConfig, dns: &Arc<DnsCache>) -> Agent {
    let loopback = parse_http_url(base).is_ok_and(|u| u.is_loopback());
    let proxy = match config.proxy.as_deref() {
        Some("") => None,
        // Checked by Config::validate.
        Some(p) => ureq::Proxy::new(p).ok(),
        // A proxy from the environment must not capture loopback traffic.
        None if loopback => None,
        None => ureq::Proxy::try_from_env(),
    };
    let agent_config: AgentConfig = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(config.timeout))
        .timeout_connect(Some(config.connect_timeout))
        .max_idle_connections(MAX_IDLE_PER_HOST)
        .max_idle_connections_per_host(MAX_IDLE_PER_HOST)
        .user_agent(config.user_agent.as_str())
        .proxy(proxy)
        .tls_config(tls.clone())
        .build();
    let socks = agent_config.proxy().is_some_and(|p| {
        !matches!(
            p.protocol(),
            ureq::ProxyProtocol::Http | ureq::ProxyProtocol::Https
        )
    });
    if socks {
        // SOCKS needs ureq's own connector chain.
        return Agent::with_parts(
            agent_config,
            DefaultConnector::default().chain(Coalesce),
            CachingResolver(Arc::clone(dns)),
        );
    }
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(LeanTcp)
            .chain(RustlsConnector::default())
            .chain(Coalesce);
    Agent::with_parts(agent_config, connector, CachingResolver(Arc::clone(dns)))
}

/// Held output beyond this is sent at once: coalescing is for a head and a small body.
const MAX_HELD: usize = 16 * 1024;

/// The last link of the connector chain: wraps the connection (TCP or TLS) so that a request's
/// head and its small JSON body leave in one write instead of two.
///
/// ureq transmits the head, then the body, each in its own write. Two segments per request
/// cost the server a second wakeup and read for every call, and over TLS they are two records.
/// Writes are held here (copied out of the output buffer, which ureq reuses from its start)
/// and go out together just before the first read, which always follows a request.
#[derive(Debug)]
struct Coalesce;

impl<In: Transport> Connector<In> for Coalesce {
    type Out = Coalescing<In>;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(|inner| Coalescing {
            inner,
            held: Vec::new(),
        }))
    }
}

/// A transport whose output is held until input is awaited.
#[derive(Debug)]
struct Coalescing<T> {
    inner: T,
    held: Vec<u8>,
}

impl<T: Transport> Coalescing<T> {
    fn flush(&mut self, timeout: NextTimeout) -> Result<(), ureq::Error> {
        if self.held.is_empty() {
            return Ok(());
        }
        let mut sent = 0;
        while sent < self.held.len() {
            let output = self.inner.buffers().output();
            let n = output.len().min(self.held.len() - sent);
            output[..n].copy_from_slice(&self.held[sent..sent + n]);
            self.inner.transmit_output(n, timeout)?;
            sent += n;
        }
        self.held.clear();
        Ok(())
    }
}

impl<T: Transport> Transport for Coalescing<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let output = self.inner.buffers().output();
        self.held.extend_from_slice(&output[..amount]);
        if self.held.len() > MAX_HELD {
            self.flush(timeout)?;
        }
        Ok(())
    }

    fn maybe_await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.flush(timeout)?;
        self.inner.maybe_await_input(timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.flush(timeout)?;
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

/// A resolver that answers IP literals without a lookup (ureq's default spawns a thread per
/// request when a time limit is set, even for `127.0.0.1`) and caches host names for
/// [`DNS_TTL`].
#[derive(Debug)]
struct CachingResolver(Arc<DnsCache>);

/// Resolved host names, by `host:port`, with when they were resolved.
type DnsCache = Mutex<HashMap<String, (Instant, ResolvedSocketAddrs)>>;

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
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        let key = format!("{host}:{port}");
        if let Ok(cache) = self.0.lock() {
            if let Some((at, addrs)) = cache.get(&key) {
                if at.elapsed() < DNS_TTL {
                    return Ok(addrs.clone());
                }
            }
        }
        let addrs = DefaultResolver::default().resolve(uri, config, timeout)?;
        if let Ok(mut cache) = self.0.lock() {
            cache.insert(key, (Instant::now(), addrs.clone()));
        }
        Ok(addrs)
    }
}

/// What a ureq error means for the caller: its status, its message, and whether the request
/// certainly did not reach the service (so that even a create may be sent again).
pub(crate) fn map_error(e: ureq::Error) -> Error {
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
