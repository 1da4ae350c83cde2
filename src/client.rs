//! The client: configuration, its connections, and the one request path every call takes.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use once_cell::sync::OnceCell;
use ureq::http::header::{
    HeaderName, HeaderValue, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST,
    USER_AGENT,
};
use ureq::http::HeaderMap;
use ureq::http::{Method, Uri};

use crate::auth::{TokenCache, TokenSource};
use crate::config::{Config, Pins, MAX_RESPONSE_BODY};
use crate::envelope::{interpret, Answer, HttpAnswer};
use crate::error::{Error, Result, Retry, Status};
use crate::exchange::exchange;
use crate::fork::PerProcess;
use crate::log::{Level, Log, Sink};
use crate::pacing::{Kind, NoTurn, Pacer};
use crate::proxy;
use crate::redact::{token_secret, Secret};
use crate::shared::{account_key, Store};
use crate::tls;
use crate::token::Token;
use crate::transport::{self, Connections};

/// Longest `Retry-After` honoured; a longer one is cut to this (and to the call's time limit).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// First backoff step; doubled on each retry, with jitter.
const BACKOFF_BASE: Duration = Duration::from_millis(200);

/// A client of the open platform. Thread-safe: share one per process; its connection pool is
/// reused by all calls and threads.
pub struct Client {
    config: Config,
    base: String,
    /// The header fields of its requests, made once.
    fields: Fields,
    /// Connections to the base URL, and the idle ones.
    conns: Connections,
    /// The token fetched with `clientID`/`clientSecret`, when the caller gives none (a
    /// forked child fetches its own: the cache's lock is held across a fetch).
    tokens: PerProcess<TokenCache>,
    /// The secrets of the configuration and of the route (client secret, passwords), kept
    /// out of every message.
    secrets: Vec<Secret>,
    /// The route chosen, for `Debug`: `direct` or the proxy (password hidden) and its source.
    route: String,
    /// The trust store TLS failures name (`caFile`, `$SSL_CERT_FILE`, the system's...).
    trust: String,
    /// How fast each kind of call is sent.
    pacer: Pacer,
    /// The state shared with other processes of the account (`sharedState`), and the
    /// account's name in it.
    pub(crate) shared: Option<(Arc<Store>, String)>,
    /// The host's supplier of tokens, if it set one (it then replaces the credentials).
    source: std::sync::RwLock<Option<TokenSource>>,
    /// Where the client's log lines go, if anywhere.
    pub(crate) log: Log,
    /// The request URIs of the fixed endpoints, parsed once (a clone shares the text).
    uris: Vec<(&'static str, Uri)>,
}

/// The endpoints whose path never changes (the progress query carries the task ID).
const FIXED_PATHS: [&str; 3] = [
    "/api/v1/offline/download",
    "/api/v1/oss/offline/download",
    "/api/v1/access_token",
];

/// The service's `Platform` header.
const PLATFORM: HeaderName = HeaderName::from_static("platform");

/// How a request authenticates.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    /// No `Authorization` header (the token endpoint).
    None,
    /// The caller's token, or the client's own when `None`.
    Token(Option<&'a Token>),
}

/// One API request, before it is sent.
pub(crate) struct Request<'a> {
    /// What is being done, for messages ("create offline download task").
    pub what: &'a str,
    /// Path and query below the base URL.
    pub path: &'a str,
    /// JSON body: a POST when present, a GET otherwise.
    pub body: Option<&'a [u8]>,
    /// How the request authenticates.
    pub auth: Auth<'a>,
    /// Whether repeating the request is harmless (a read).
    pub idempotent: bool,
    /// A secret the request carries besides the token (the client secret of a token fetch).
    pub secret: Option<&'a str>,
    /// Whether the request creates something (a task): an answer lost after sending is then
    /// `OutcomeUnknown`, not a network error or a time-out.
    pub creates: bool,
    /// Whether the answer's `Date` is kept (the token call judges a token's lifetime by the
    /// service's clock).
    pub wants_date: bool,
    /// The schedule the request takes its turn in, if it is paced.
    pub pace: Option<Kind>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("route", &self.route)
            .finish()
    }
}

impl Client {
    /// A client with this configuration (checked first).
    ///
    /// The proxy is chosen here, once (see the README's "Proxies" table): from the
    /// configuration, else from the environment; one that cannot be used is refused with
    /// `InvalidArgument`, naming where it came from.
    pub fn new(config: Config) -> Result<Client> {
        config.validate()?;
        let mut secrets = config.secrets();
        let base = config.base()?.to_owned();
        let pins = Pins::parse(&config.resolve)?;
        let url = crate::url::parse_http_url(&base).map_err(Error::invalid)?;
        // A proxy variable that is set but not UTF-8 is refused by name, never taken for unset
        // (the call would go direct, or through another variable's proxy).
        for name in proxy::HTTPS_PROXY_VARS.iter().chain(&proxy::NO_PROXY_VARS) {
            crate::config::env_text(name)?;
        }
        let route = proxy::route(&config, &url, &pins, &|name| std::env::var(name).ok())
            .map_err(|e| e.redact(&secrets.iter().collect::<Vec<_>>()))?;
        // Every request goes to the base URL (redirects are not followed).
        let host = HeaderValue::try_from(url.host_field())
            .map_err(|_| Error::invalid("config: `baseUrl` has no usable host"))?;
        if let Some(p) = route.password.as_deref().filter(|p| !p.is_empty()) {
            secrets.push(Secret::new(p));
        }
        if let Some(proxy) = route.proxy.as_ref().filter(|p| p.password().is_some()) {
            // The credentials as they travel to a CONNECT proxy (`Proxy-Authorization: Basic`,
            // RFC 7617), in case the proxy or a server echoes that header.
            use base64::Engine;
            let basic = format!(
                "{}:{}",
                proxy.username().unwrap_or_default(),
                proxy.password().unwrap_or_default()
            );
            secrets.push(Secret::new(
                &base64::engine::general_purpose::STANDARD.encode(basic),
            ));
        }
        let proxy_tls = route
            .proxy
            .as_ref()
            .is_some_and(|p| p.protocol() == ureq::ProxyProtocol::Https);
        let (tls, trust) = tls::config(&config, &base, proxy_tls)?;
        // Spaces around it are not part of a field value (RFC 9110 §5.5).
        let user_agent = HeaderValue::try_from(config.user_agent.trim())
            .map_err(|_| Error::invalid("config: `userAgent` is not a valid header value"))?;
        let fields = Fields::new(host, user_agent);
        let shown = match route.proxy {
            Some(_) => format!("{} from {}", route.shown, route.source),
            None => "direct".to_owned(),
        };
        let conns = Connections::new(&config, &base, &tls, route, pins);
        let (create_qps, progress_qps) = config.rates();
        let shared = match config.shared_state.as_deref() {
            Some(spec) => {
                let store = Store::open(spec, "config: `sharedState`")?;
                if let Some(p) = store.secret() {
                    secrets.push(Secret::new(p));
                }
                let client = config.client_id.as_deref().unwrap_or("");
                Some((Arc::new(store), account_key(&base, client)))
            }
            None => None,
        };
        let uris = FIXED_PATHS
            .iter()
            .filter_map(|p| Some((*p, uri(&base, p).ok()?)))
            .collect();
        Ok(Client {
            config,
            base,
            fields,
            conns,
            tokens: PerProcess::new_with(|parent| {
                parent.map(TokenCache::inherit).unwrap_or_default()
            }),
            secrets,
            route: shown,
            trust,
            pacer: Pacer::new(create_qps, progress_qps, shared.clone()),
            shared,
            source: std::sync::RwLock::new(None),
            log: Log::default(),
            uris,
        })
    }

    /// The process-wide client, configured from the environment on first use
    /// ([`Config::from_env`]).
    pub fn global() -> Result<&'static Client> {
        static GLOBAL: OnceCell<Result<Client>> = OnceCell::new();
        GLOBAL
            .get_or_init(|| Config::from_env().and_then(Client::new))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Sends this client's log lines of `level` and more important ones to `sink` (`None`:
    /// no log). Safe while other threads use the client: it waits for lines being written
    /// on other threads, and once it returns the old sink is never called again. Lines are
    /// one line of UTF-8 text, without control characters and without any piece of a secret.
    /// Refused (`InvalidArgument`) from inside a sink.
    pub fn set_log(&self, level: Level, sink: Option<Sink>) -> Result<()> {
        self.log.set(level, sink)?;
        self.log.write(Level::Debug, &self.secret_refs(), || {
            format!("route to {}: {}", self.base, self.route)
        });
        Ok(())
    }

    /// Makes `source` the supplier of this client's own token (`None`: the credentials
    /// again). It is called when a call without a token needs one — the first time, when the
    /// last one is due for renewal, and once after the service refused it — by one thread at
    /// a time, the others waiting for its answer. The cached token is forgotten.
    pub fn set_token_source(&self, source: Option<TokenSource>) {
        *self.source.write().unwrap_or_else(|p| p.into_inner()) = source;
        self.tokens.here().forget();
    }

    /// The token source, if one is set (cloned: no lock is held while it runs).
    pub(crate) fn token_source(&self) -> Option<TokenSource> {
        self.source
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The configuration's secrets, for log lines that concern no call.
    pub(crate) fn secret_refs(&self) -> Vec<&Secret> {
        self.secrets.iter().collect()
    }

    /// This client's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The configured credentials, when both are set.
    pub(crate) fn credentials(&self) -> Option<(&str, &str)> {
        Some((
            self.config.client_id.as_deref()?,
            self.config.client_secret.as_deref()?,
        ))
    }

    /// When a call started now must end.
    pub(crate) fn deadline(&self) -> Instant {
        Instant::now() + self.config.timeout
    }

    /// The one request path: authenticate, send, retry what is safe to retry, interpret the
    /// answer and `read` its data, all before `deadline`. A client's own token is renewed once
    /// after a 401. Every error leaves through here, so every one says what was being done
    /// and none carries the token.
    pub(crate) fn call_until<T>(
        &self,
        req: &Request<'_>,
        deadline: Instant,
        read: impl Fn(Answer) -> Result<T>,
    ) -> Result<T> {
        // The tokens the client holds and held are secrets in every call.
        let held = self.tokens.here().held();
        let held: Vec<&Secret> = held.iter().map(|s| &**s).collect();
        match req.auth {
            Auth::None => self.send_with_retries(req, None, &held, deadline, &read),
            Auth::Token(Some(token)) => {
                self.send_with_retries(req, Some(token), &held, deadline, &read)
            }
            Auth::Token(None) => {
                let token = self.tokens.here().get(self, None, deadline)?;
                let held = self.tokens.here().held();
                let held: Vec<&Secret> = held.iter().map(|s| &**s).collect();
                match self.send_with_retries(req, Some(&token), &held, deadline, &read) {
                    // Refused as invalid, or pushed out by a newer login ("tokens number has
                    // exceeded the limit" on use): the service did not act, so the request may
                    // be repeated once with a renewed token — the one another thread or
                    // process already fetched, else one fetched once for all of them.
                    Err(e) if matches!(e.status(), Status::Unauthorized | Status::TokenLimit) => {
                        let stale = token_secret(&token);
                        let renewed = self
                            .tokens
                            .here()
                            .get(self, Some(&token), deadline)
                            .map_err(|e| e.redact(&[&stale]))?;
                        let held = self.tokens.here().held();
                        let held: Vec<&Secret> = held.iter().map(|s| &**s).collect();
                        self.send_with_retries(req, Some(&renewed), &held, deadline, &read)
                            .map_err(|e| e.redact(&[&stale]))
                    }
                    other => other,
                }
            }
        }
    }

    fn send_with_retries<T>(
        &self,
        req: &Request<'_>,
        token: Option<&Token>,
        held: &[&Secret],
        deadline: Instant,
        read: &impl Fn(Answer) -> Result<T>,
    ) -> Result<T> {
        // The secrets this request knows, removed from whatever it hands back.
        let token_secret = token.map(token_secret);
        let extra = req.secret.map(Secret::new);
        let mut secrets = SmallList::new();
        for s in self
            .secrets
            .iter()
            .chain(token_secret.as_deref())
            .chain(extra.as_ref())
            .chain(held.iter().copied())
        {
            secrets.push(s);
        }
        let secrets = secrets.as_slice();
        let finish = |err: Error| {
            let err = err.context(req.what).redact(secrets);
            let level = match err.status() {
                Status::Internal | Status::Panic => Level::Error,
                _ => Level::Warn,
            };
            self.log
                .write(level, secrets, || format!("failed: {}", err.message()));
            err
        };
        let mut attempt: u32 = 0;
        loop {
            if Instant::now() >= deadline {
                return Err(finish(Error::new(
                    Status::Timeout,
                    "the call's time limit ran out",
                )));
            }
            if let Some(kind) = req.pace {
                match self.pacer.turn(kind, deadline) {
                    Err(NoTurn::TooLate(wait)) => {
                        return Err(finish(not_in_time(req, kind, wait, &self.config)))
                    }
                    Err(NoTurn::Store(e)) => return Err(finish(e)),
                    Ok(waited) if waited >= Duration::from_millis(1) => {
                        self.log.write(Level::Debug, secrets, || {
                            format!(
                                "{}: waited {} ms for its turn",
                                req.what,
                                waited.as_millis()
                            )
                        })
                    }
                    Ok(_) => {}
                }
            }
            self.log.write(Level::Debug, secrets, || {
                let method = if req.body.is_some() { "POST" } else { "GET" };
                format!(
                    "{}: {method} {} (attempt {})",
                    req.what,
                    req.path,
                    attempt + 1
                )
            });
            let result = self.send(req, token, deadline, secrets);
            let err = match result {
                // An answer whose data cannot be read came after the request was sent whole.
                Ok(answer) => {
                    return read(answer).map_err(|e| finish(outcome(e.after_sending(), req)))
                }
                Err(e) => e,
            };
            let retry_after = match err.retry {
                Retry::Safe(after) => Some(after),
                Retry::ReadOnly if req.idempotent => Some(None),
                _ => None,
            };
            let Some(retry_after) = retry_after.filter(|_| attempt < self.config.max_retries)
            else {
                return Err(finish(after_attempts(outcome(err, req), attempt)));
            };
            let pause = retry_after
                .map(|d| d.min(MAX_RETRY_AFTER))
                .unwrap_or_else(|| backoff(attempt));
            // A pause that would end past the deadline cannot lead to a useful answer.
            if Instant::now() + pause + Duration::from_millis(10) >= deadline {
                return Err(finish(after_attempts(outcome(err, req), attempt)));
            }
            self.log.write(Level::Warn, secrets, || {
                format!(
                    "{}: retrying in {} ms after: {}",
                    req.what,
                    pause.as_millis(),
                    err.message()
                )
            });
            match req.pace {
                // A 429 pauses every caller of this kind on this client; the retry then takes
                // its turn like a first try.
                Some(kind) if err.status() == Status::RateLimited => {
                    self.pacer.pause(kind, pause, deadline).map_err(finish)?
                }
                _ => std::thread::sleep(pause),
            }
            attempt += 1;
        }
    }

    fn send(
        &self,
        req: &Request<'_>,
        token: Option<&Token>,
        deadline: Instant,
        secrets: &[&Secret],
    ) -> Result<Answer> {
        let internal = |what: &str| Error::new(Status::Internal, format!("{what} was refused"));
        // An http::Request with ready-made header values: nothing is parsed or checked twice.
        let mut request = ureq::http::Request::new(());
        *request.uri_mut() = match self.uris.iter().find(|(p, _)| *p == req.path) {
            Some((_, uri)) => uri.clone(),
            None => uri(&self.base, req.path).map_err(|_| internal("the URL"))?,
        };
        // The fields the client always sends, copied from its own (see `Fields`).
        let headers = request.headers_mut();
        *headers = self.fields.of(req.body.is_some()).clone();
        // The token and the length go in the places held for them, found by a walk over the
        // first fields rather than by hashing their names again.
        for (name, value) in headers.iter_mut() {
            if *name == AUTHORIZATION {
                if let Some(token) = token {
                    *value = token.header_value();
                }
            } else if *name == CONTENT_LENGTH {
                if let Some(body) = req.body {
                    *value = content_length(body.len());
                }
            }
        }
        if token.is_none() {
            headers.remove(AUTHORIZATION);
        }
        if req.body.is_some() {
            *request.method_mut() = Method::POST;
        }
        // The clock is read for the log only.
        let started = self.log.enabled(Level::Info).then(Instant::now);
        let reply =
            exchange(&self.conns, request, req.body, deadline, MAX_RESPONSE_BODY).map_err(|f| {
                self.log.write(Level::Debug, secrets, || {
                    format!("{}: connection closed after an error", req.what)
                });
                let e = transport::map_error(f.error, f.sent);
                let e = if e.status() == Status::Tls {
                    tls_context(e, &self.trust)
                } else {
                    e
                };
                if f.sent {
                    e.after_sending()
                } else {
                    e
                }
            })?;
        let http = HttpAnswer {
            status: reply.status,
            headers: &reply.headers,
            wants_date: req.wants_date,
            body: &reply.body,
            secrets,
        };
        if !self.log.enabled(Level::Info) {
            // The usual path: the answer goes straight back, not through a local.
            return interpret(&http).map_err(Error::after_sending);
        }
        let answer = interpret(&http).map_err(Error::after_sending);
        self.log.write(Level::Debug, secrets, || {
            format!(
                "{}: connection {} ({}), then {}",
                req.what,
                if reply.reused { "reused" } else { "opened" },
                self.route,
                if reply.kept {
                    "kept for the next call"
                } else {
                    "closed"
                }
            )
        });
        self.log.write(Level::Info, secrets, || {
            let (code, trace) = match &answer {
                Ok(a) => (0, a.trace_id.as_str()),
                Err(e) => (e.api_code(), e.trace_id()),
            };
            format!(
                "{}: HTTP {}, code {code}, trace ID {}, {} ms",
                req.what,
                reply.status,
                if trace.is_empty() { "none" } else { trace },
                started.map_or(0, |s| s.elapsed().as_millis())
            )
        });
        answer
    }
}

/// The request URI of `path` on `base`.
fn uri(base: &str, path: &str) -> std::result::Result<Uri, ureq::http::uri::InvalidUri> {
    Uri::try_from(format!("{base}{path}"))
}

/// The header fields of a client's requests, in the order they are written, made when the
/// client is: each request starts from a copy (two allocations and no hashing, where seven
/// fields inserted one by one cost seven hashed insertions), then sets its `Authorization`
/// and `Content-Length` in the places held for them — a replacement, never a growth.
#[derive(Debug)]
struct Fields {
    get: HeaderMap,
    post: HeaderMap,
}

impl Fields {
    fn new(host: HeaderValue, user_agent: HeaderValue) -> Fields {
        // `Host`, `Authorization` and `Content-Length` first: ureq-proto looks each up with a
        // walk from the first field, on every request.
        let mut get = HeaderMap::with_capacity(8);
        // `Host` (RFC 9110 §7.2) given here, so that ureq-proto does not write it anew for
        // every request: every request goes to the base URL (redirects are not followed).
        get.insert(HOST, host);
        // The token's place: replaced by each request's, or removed when it has none.
        get.insert(AUTHORIZATION, HeaderValue::from_static(""));
        let mut post = get.clone();
        // The body's length's place: replaced by each request's.
        post.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        for fields in [&mut get, &mut post] {
            // An empty `userAgent` sends none, as ureq does for the CONNECT request (an
            // empty value is not a product, RFC 9110 §10.1.5).
            if !user_agent.is_empty() {
                fields.insert(USER_AGENT, user_agent.clone());
            }
            fields.insert(PLATFORM, HeaderValue::from_static("open_platform"));
            // The answers are a few hundred bytes: nothing to gain from compression, and
            // nothing to decode it with (an answer compressed anyway is refused by
            // `interpret`).
            fields.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
            // No `Accept`: without one, any media type is acceptable (RFC 9110 §12.5.1), and
            // every field costs a walk over the others when the head is written.
        }
        post.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Fields { get, post }
    }

    /// The fields of a request with a body (a POST) or without.
    fn of(&self, with_body: bool) -> &HeaderMap {
        if with_body {
            &self.post
        } else {
            &self.get
        }
    }
}

/// A `Content-Length` value (RFC 9110 §8.6), its digits written on the stack: one
/// allocation, where `HeaderValue::from(usize)` takes two.
fn content_length(n: usize) -> HeaderValue {
    let mut digits = [0u8; 20];
    let mut n = n;
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits: always a valid value.
    HeaderValue::from_bytes(&digits[at..]).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// The secrets of one request, without an allocation while they are few (the usual count is
/// one: the token).
struct SmallList<'a> {
    inline: [&'a Secret; 6],
    len: usize,
    more: Vec<&'a Secret>,
}

impl<'a> SmallList<'a> {
    fn new() -> SmallList<'a> {
        /// Fills the unused places; never searched.
        static NONE: once_cell::sync::Lazy<Secret> = once_cell::sync::Lazy::new(|| Secret::new(""));
        SmallList {
            inline: [&*NONE; 6],
            len: 0,
            more: Vec::new(),
        }
    }

    fn push(&mut self, s: &'a Secret) {
        if self.len < self.inline.len() {
            self.inline[self.len] = s;
            self.len += 1;
        } else {
            if self.more.is_empty() {
                self.more.extend_from_slice(&self.inline);
            }
            self.more.push(s);
        }
    }

    fn as_slice(&self) -> &[&'a Secret] {
        if self.more.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.more
        }
    }
}

/// What a failure means for a request that creates something: what left the socket decides,
/// not the kind of error. Once the whole request was written, the service may have acted on
/// it; unless it then said clearly that it did not — an envelope with its own `code`, or a
/// 429 — the outcome is unknown: a TLS alert or corrupt record, a reset, a time-out, a cut or
/// unreadable answer, a gateway's page, a redirect. The caller must know the task may exist
/// rather than see a network or TLS error, and a batch must not send it again.
fn outcome(err: Error, req: &Request<'_>) -> Error {
    if !req.creates || !err.sent || err.status() == Status::OutcomeUnknown {
        return err;
    }
    let refused = err.api_code() != 0 || err.status() == Status::RateLimited;
    if refused {
        return err;
    }
    err.reclassify(
        Status::OutcomeUnknown,
        "; the request had been sent whole, so the task may have been created: check before \
         creating it again",
    )
}

/// A TLS failure says which trust store was used, and, for a handshake that found nothing in
/// common, what the library offers.
fn tls_context(e: Error, trust: &str) -> Error {
    let m = e.message();
    let offered = m.contains("HandshakeFailure")
        || m.contains("PeerIncompatible")
        || m.contains("InsufficientSecurity")
        || m.contains("IllegalParameter");
    let e = e.suffix(&format!(" (trust store: {trust})"));
    if offered {
        e.suffix(&format!("; {}", tls::OFFERED))
    } else {
        e
    }
}

/// A paced call whose turn would come after its time limit: not sent.
fn not_in_time(req: &Request<'_>, kind: Kind, wait: Duration, config: &Config) -> Error {
    let (rate, key) = match kind {
        Kind::Create => (config.rates().0, "createQps"),
        Kind::Progress => (config.rates().1, "progressQps"),
    };
    let consequence = if req.creates {
        "it was not sent, so no task was created"
    } else {
        "it was not sent"
    };
    Error::new(
        Status::Timeout,
        format!(
            "its turn at {rate} calls per second (`{key}`) would come in {} ms, after the \
             call's time limit; {consequence}",
            wait.as_millis()
        ),
    )
}

/// Says how many attempts were made, when there was more than one.
fn after_attempts(err: Error, attempt: u32) -> Error {
    if attempt == 0 {
        return err;
    }
    let attempts = attempt + 1;
    err.suffix(&format!(" (after {attempts} attempts)"))
}

/// Exponential backoff with jitter: 200 ms, 400 ms, 800 ms ... each scaled by 0.5 to 1.0.
fn backoff(attempt: u32) -> Duration {
    let full = BACKOFF_BASE.saturating_mul(1u32 << attempt.min(10));
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    let jitter = 0.5 + (h.finish() % 1000) as f64 / 2000.0;
    full.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_digits() {
        for n in [0usize, 7, 10, 129, 65_536, usize::MAX] {
            assert_eq!(content_length(n), n.to_string().as_str());
        }
    }
}
