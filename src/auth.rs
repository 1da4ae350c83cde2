//! Access tokens: fetching one from `clientID`/`clientSecret`, and the client's token cache.
//!
//! The service allows at most three live tokens per client and rate-limits the token endpoint,
//! so a client fetches one token, shares it between all threads, renews it a little before it
//! expires or once after a 401 "invalid token", and never fetches another on "tokens number has
//! exceeded the limit".

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::cell::Cell;

use crate::client::{Auth, Client, Request};
use crate::envelope::Answer;
use crate::error::{Error, Result, Status};
use crate::expiry;
use crate::log::Level;
use crate::redact::Secret;
use crate::shared::{unix_ms, Store, StoredFailure, StoredToken, TokenRecord};
use crate::token::Token;

thread_local! {
    /// Whether this thread is inside a client's token source (a call that needs the client's
    /// own token would wait for itself).
    static IN_SOURCE: Cell<bool> = const { Cell::new(false) };
}

/// Why the library asks a token source for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[repr(i32)]
pub enum TokenNeed {
    /// There is none yet, or the last one is due for renewal (`PAN_TOKEN_NEEDED`, 0).
    Missing = 0,
    /// The service refused the last one (`PAN_TOKEN_REFUSED`, 1): give a new one.
    Refused = 1,
}

/// A host's supplier of access tokens: given why one is needed, the token and its expiry
/// (Unix seconds, 0: unknown), or why it has none.
pub type TokenSource =
    Arc<dyn Fn(TokenNeed) -> std::result::Result<(String, i64), String> + Send + Sync>;

/// The stored token when it can be used (not the one refused, not due for renewal), with
/// how long until it is.
fn usable(record: &TokenRecord, stale: Option<&str>, now_ms: i64) -> Option<(Token, Duration)> {
    let t = record.token.as_ref()?;
    if Some(t.access_token.as_str()) == stale || now_ms >= t.renew_at_ms {
        return None;
    }
    let token = Token::new(&t.access_token).ok()?;
    Some((
        token,
        Duration::from_millis((t.renew_at_ms - now_ms) as u64),
    ))
}

/// How long after a failed fetch the next is due: a minute at once when the service refused
/// the credentials or has too many tokens; else (a token source's failure among them) 1 s,
/// doubling to a minute.
fn fetch_pause(e: &Error, failures: u32, from_source: bool) -> Duration {
    match e.status() {
        Status::TokenLimit | Status::Unauthorized | Status::InvalidArgument if !from_source => {
            MAX_FETCH_PAUSE
        }
        _ => Duration::from_secs(1 << failures.saturating_sub(1).min(6)).min(MAX_FETCH_PAUSE),
    }
}

/// How long a new token is used before it is renewed. A fetched one: by the service's
/// `expiredAt` and clock, at least a minute (see `expiry`). A token source's: until a tenth
/// (at most 5 minutes) before the expiry it gave, however short — the host knows its tokens;
/// one already expired is asked for again on the next call.
fn renew_in(fresh: &AccessToken, from_source: bool, now_s: i64) -> Duration {
    if from_source && fresh.expires_at != 0 {
        let left = Duration::from_secs(fresh.expires_at.saturating_sub(now_s).max(0) as u64);
        return left.saturating_sub((left / 10).min(Duration::from_secs(300)));
    }
    expiry::renew_after(
        (fresh.expires_at != 0).then_some(fresh.expires_at),
        fresh.server_time,
        now_s,
    )
}

/// A renewed token refused again within a minute: not renewed again yet.
fn refused_again(age: Duration) -> Error {
    Error::new(
        Status::Unauthorized,
        format!(
            "the service refused the token fetched {} ms ago after its predecessor was \
             refused too; not fetching another before a minute has passed (check the \
             service's status and this client's credentials)",
            age.as_millis()
        ),
    )
}

/// How many earlier tokens a client keeps as secrets (at most 3 are live at the service).
const MAX_RETIRED: usize = 4;

/// A token fetched from the service.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The token.
    pub token: Token,
    /// `expiredAt` as Unix seconds, or 0 when the service's value could not be read.
    pub expires_at: i64,
    /// The request's `x-traceID`.
    pub trace_id: String,
    /// The service's clock when it answered (its `Date` header, Unix seconds), if it said.
    pub(crate) server_time: Option<i64>,
}

/// The cached token of a client configured with credentials.
#[derive(Default)]
pub(crate) struct TokenCache {
    // Held across a fetch on purpose: concurrent callers wait for it and share its result
    // instead of each fetching a token of their own.
    state: Mutex<CacheState>,
    /// The tokens this client holds and held (the last few): secrets in every call of the
    /// client, those with a token of the caller's too, since a server may echo any of them.
    held: Mutex<Vec<Arc<Secret>>>,
    /// Whether `held` has any: spares calls with the caller's token a lock when the client
    /// never fetched one.
    any_held: AtomicBool,
    /// Counts the token sources set: a state of an earlier one is forgotten on next use, with
    /// no lock taken by the setter (a fetch may hold the state's lock, the setter may be
    /// inside that very fetch's source).
    epoch: AtomicU64,
}

#[derive(Default)]
struct CacheState {
    /// The token source epoch the token and failure belong to.
    epoch: u64,
    token: Option<Cached>,
    /// The last fetch's failure, given again to calls until the next fetch is due.
    failure: Option<(Error, Instant)>,
    /// Failed fetches in a row, for the pause before the next one.
    failures: u32,
}

#[derive(Clone)]
struct Cached {
    token: Token,
    renew_at: Instant,
    fetched_at: Instant,
    /// Fetched because the service refused the previous token (401).
    after_401: bool,
}

/// The longest pause after failed token fetches (the service refuses a fourth live token,
/// and rate-limits the endpoint: a client must not ask for one per call).
const MAX_FETCH_PAUSE: Duration = Duration::from_secs(60);

impl TokenCache {
    /// A forked child's cache: the parent's token (still valid for the service, which allows
    /// only three live tokens per client: a child fetching its own would use one up) and the
    /// tokens it held. Read without waiting: when a parent's thread held the cache at the
    /// fork (a fetch in flight), the child starts empty and fetches its own.
    pub(crate) fn inherit(parent: &TokenCache) -> TokenCache {
        let child = TokenCache::default();
        if let Ok(state) = parent.state.try_lock() {
            if let Ok(mut mine) = child.state.lock() {
                mine.token = state.token.clone();
            }
        }
        if let Ok(held) = parent.held.try_lock() {
            if let Ok(mut mine) = child.held.lock() {
                mine.clone_from(&held);
            }
            child
                .any_held
                .store(parent.any_held.load(Ordering::Acquire), Ordering::Release);
        }
        child
            .epoch
            .store(parent.epoch.load(Ordering::Acquire), Ordering::Release);
        child
    }

    /// The cached token, fetched first when there is none or it is due for renewal. When
    /// `stale` is given (it was just refused with a 401), it is replaced unless another thread
    /// (or, with a shared state, another process) already replaced it — once: a token that was
    /// itself fetched after a refusal and is refused within a minute is not replaced again
    /// before the minute is over. After a failed fetch, calls get the same failure until the
    /// next fetch is due (1 s, doubling to a minute; a minute at once when the service refused
    /// the credentials or has too many tokens).
    pub(crate) fn get(
        &self,
        client: &Client,
        stale: Option<&Token>,
        deadline: Instant,
    ) -> Result<Token> {
        if IN_SOURCE.with(Cell::get) {
            return Err(Error::invalid(
                "a call without a token was made from inside the client's token source, \
                 which is itself asked for that token: give the call a token, or make it \
                 after the source returned",
            ));
        }
        let mut state = self.lock_until(deadline)?;
        let epoch = self.epoch.load(Ordering::Acquire);
        if state.epoch != epoch {
            *state = CacheState {
                epoch,
                ..CacheState::default()
            };
        }
        let now = Instant::now();
        if let Some(c) = &state.token {
            let refused = Some(&c.token) == stale;
            if !refused && now < c.renew_at {
                return Ok(c.token.clone());
            }
            if client.shared.is_none()
                && refused
                && c.after_401
                && now < c.fetched_at + expiry::MIN_TOKEN_AGE
            {
                return Err(refused_again(now.duration_since(c.fetched_at)));
            }
        }
        if let Some((store, account)) = &client.shared {
            return self.get_shared(&mut state, client, store, account, stale, deadline);
        }
        if let Some((err, until)) = &state.failure {
            if now < *until {
                return Err(err.clone().suffix(&format!(
                    " (the last token fetch failed; the next is not before {} ms from now)",
                    until.duration_since(now).as_millis()
                )));
            }
        }
        let fresh = match self.fetch(client, stale, deadline) {
            Ok(fresh) => fresh,
            Err(e) => {
                state.failures = state.failures.saturating_add(1);
                let pause = fetch_pause(&e, state.failures, client.token_source().is_some());
                state.failure = Some((e.clone(), Instant::now() + pause));
                return Err(e);
            }
        };
        let renew_in = renew_in(&fresh, client.token_source().is_some(), unix_ms() / 1000);
        self.keep(&mut state, &fresh.token, renew_in, stale.is_some());
        state.failure = None;
        state.failures = 0;
        Ok(fresh.token)
    }

    /// The cache's state, waited for at most until `deadline` (another thread may hold it
    /// across a fetch or a slow token source).
    fn lock_until(&self, deadline: Instant) -> Result<std::sync::MutexGuard<'_, CacheState>> {
        let mut pause = Duration::from_micros(50);
        loop {
            match self.state.try_lock() {
                Ok(g) => return Ok(g),
                // A panic while the lock was held left at worst a stale state: go on with it.
                Err(std::sync::TryLockError::Poisoned(p)) => return Ok(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::new(
                    Status::Timeout,
                    "the call's time limit ran out while another thread fetched the access \
                     token (or asked the token source for it)",
                ));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// `get` with a shared state: the stored token when it is usable, else one fetch for
    /// every process of the account, under the store's lock (the others wait for it and read
    /// what it stored).
    fn get_shared(
        &self,
        state: &mut CacheState,
        client: &Client,
        store: &Store,
        account: &str,
        stale: Option<&Token>,
        deadline: Instant,
    ) -> Result<Token> {
        let stale_text = stale.map(Token::as_str);
        // Read first without the lock: the usual case, another process's token still valid.
        let record = store.read_token(account, deadline)?;
        if let Some((token, renew_in)) = usable(&record, stale_text, unix_ms()) {
            self.keep(state, &token, renew_in, false);
            return Ok(token);
        }
        let mut outcome: Option<Result<Token>> = None;
        store.update_token(account, deadline, &mut |mut record| {
            let now_ms = unix_ms();
            if let Some((token, renew_in)) = usable(&record, stale_text, now_ms) {
                outcome = Some(Ok(token));
                let _ = renew_in;
                return None;
            }
            if let Some(t) = &record.token {
                let age =
                    Duration::from_millis(now_ms.saturating_sub(t.fetched_at_ms).max(0) as u64);
                if Some(t.access_token.as_str()) == stale_text
                    && t.after_refusal
                    && age < expiry::MIN_TOKEN_AGE
                {
                    outcome = Some(Err(refused_again(age)));
                    return None;
                }
            }
            if let Some(f) = &record.failure {
                if now_ms < f.until_ms {
                    outcome = Some(Err(f.error().suffix(&format!(
                        " (the last token fetch, by this or another process of the shared \
                         state, failed; the next is not before {} ms from now)",
                        f.until_ms - now_ms
                    ))));
                    return None;
                }
            }
            match self.fetch(client, stale, deadline) {
                Ok(fresh) => {
                    let renew_in = renew_in(&fresh, client.token_source().is_some(), now_ms / 1000);
                    let now_ms = unix_ms();
                    record.token = Some(StoredToken {
                        access_token: fresh.token.as_str().to_owned(),
                        expires_at: fresh.expires_at,
                        renew_at_ms: now_ms.saturating_add(renew_in.as_millis() as i64),
                        fetched_at_ms: now_ms,
                        after_refusal: stale.is_some(),
                    });
                    record.failure = None;
                    record.failures = 0;
                    outcome = Some(Ok(fresh.token));
                    Some(record)
                }
                // Only the account's own refusals are news for the other processes: too many
                // tokens, too many calls. A wrong secret, a missing setting, this machine's
                // network or a host's token source concern this process alone (one process
                // with a typo must not lock out the others).
                Err(e) if !matches!(e.status(), Status::TokenLimit | Status::RateLimited) => {
                    outcome = Some(Err(e));
                    None
                }
                Err(e) => {
                    record.failures = record.failures.saturating_add(1);
                    let pause = fetch_pause(&e, record.failures, false);
                    record.failure = Some(StoredFailure {
                        status: e.status().code(),
                        message: e.message().to_owned(),
                        until_ms: unix_ms().saturating_add(pause.as_millis() as i64),
                    });
                    outcome = Some(Err(e));
                    Some(record)
                }
            }
        })?;
        let token = outcome.unwrap_or_else(|| {
            Err(Error::new(
                Status::Internal,
                "shared state: the token record was not read",
            ))
        })?;
        // Read again for its renewal time (cheap, and the same for every process).
        let renew_in = store
            .read_token(account, deadline)
            .ok()
            .and_then(|r| usable(&r, None, unix_ms()))
            .filter(|(t, _)| *t == token)
            .map_or(expiry::MIN_TOKEN_AGE, |(_, r)| r);
        self.keep(state, &token, renew_in, stale.is_some());
        Ok(token)
    }

    /// Keeps `token` as this process's, to be renewed in `renew_in`, and as a secret.
    fn keep(&self, state: &mut CacheState, token: &Token, renew_in: Duration, after_401: bool) {
        let fetched_at = Instant::now();
        if state.token.as_ref().is_some_and(|c| c.token == *token) {
            if let Some(c) = state.token.as_mut() {
                c.renew_at = fetched_at + renew_in;
            }
            return;
        }
        state.token = Some(Cached {
            token: token.clone(),
            renew_at: fetched_at + renew_in,
            fetched_at,
            after_401,
        });
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.len() > MAX_RETIRED {
            held.remove(0);
        }
        held.push(Arc::new(Secret::new(token.as_str())));
        self.any_held.store(true, Ordering::Release);
    }

    /// Forgets the cached token (a new token source was set).
    pub(crate) fn forget(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// A new token: from the client's token source when it has one, else fetched with its
    /// credentials.
    fn fetch(
        &self,
        client: &Client,
        stale: Option<&Token>,
        deadline: Instant,
    ) -> Result<AccessToken> {
        if let Some(source) = client.token_source() {
            client.log.write(Level::Info, &client.secret_refs(), || {
                "asking the token source for an access token".to_owned()
            });
            let need = if stale.is_some() {
                TokenNeed::Refused
            } else {
                TokenNeed::Missing
            };
            /// Clears the flag however the source returns (a panic included).
            struct Inside;
            impl Drop for Inside {
                fn drop(&mut self) {
                    IN_SOURCE.with(|f| f.set(false));
                }
            }
            IN_SOURCE.with(|f| f.set(true));
            let inside = Inside;
            let answer = source(need);
            drop(inside);
            return match answer {
                Ok((raw, expires_at)) => {
                    let token = Token::new(&raw).map_err(|e| {
                        Error::new(
                            Status::Unauthorized,
                            format!("the token source gave an unusable token: {}", e.message()),
                        )
                        .redact(&[&Secret::new(&raw)])
                    })?;
                    Ok(AccessToken {
                        token,
                        expires_at: expires_at.max(0),
                        trace_id: String::new(),
                        server_time: None,
                    })
                }
                Err(why) => Err(Error::new(
                    Status::Unauthorized,
                    format!(
                        "the token source gave no token: {}",
                        crate::redact::clean(&why, 1000, &client.secret_refs())
                    ),
                )),
            };
        }
        let (id, secret) = client.credentials().ok_or_else(|| {
            Error::new(
                Status::NullArgument,
                "`token` is NULL and the client has no `clientID`/`clientSecret` (nor a token \
                 source) to fetch one",
            )
        })?;
        client.log.write(Level::Info, &client.secret_refs(), || {
            if stale.is_some() {
                "renewing the access token after the service refused it".to_owned()
            } else {
                "fetching an access token".to_owned()
            }
        });
        client.fetch_access_token(id, secret, deadline)
    }

    /// The tokens this client holds and held.
    pub(crate) fn held(&self) -> Vec<Arc<Secret>> {
        if !self.any_held.load(Ordering::Acquire) {
            return Vec::new();
        }
        self.held.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Client {
    /// Fetches a new access token (`POST /api/v1/access_token`) with these credentials, or
    /// with the configured ones for `None`. Each call makes a new token, and at most three may
    /// be live per client: cache it (a client configured with `clientID`/`clientSecret` does
    /// that by itself).
    pub fn access_token(
        &self,
        client_id: Option<&str>,
        client_secret: Option<&str>,
    ) -> Result<AccessToken> {
        let configured = self.credentials();
        let missing = |name: &str| {
            Error::new(
                Status::NullArgument,
                format!("`{name}` is NULL and the client has no `clientID`/`clientSecret`"),
            )
        };
        let id = client_id
            .or(configured.map(|(i, _)| i))
            .ok_or_else(|| missing("client_id"))?;
        let secret = client_secret
            .or(configured.map(|(_, s)| s))
            .ok_or_else(|| missing("client_secret"))?;
        self.fetch_access_token(id, secret, self.deadline())
    }

    pub(crate) fn fetch_access_token(
        &self,
        client_id: &str,
        client_secret: &str,
        deadline: Instant,
    ) -> Result<AccessToken> {
        for (name, v) in [("clientID", client_id), ("clientSecret", client_secret)] {
            if v.is_empty() {
                return Err(Error::invalid(format!("`{name}` is empty")));
            }
        }
        let body = serde_json::json!({"clientID": client_id, "clientSecret": client_secret});
        let body = serde_json::to_vec(&body)
            .map_err(|e| Error::new(Status::Internal, format!("serialise credentials: {e}")))?;
        let req = Request {
            what: "fetch access token",
            path: "/api/v1/access_token",
            body: Some(&body),
            auth: Auth::None,
            idempotent: false,
            secret: Some(client_secret),
            creates: false,
            wants_date: true,
            pace: None,
        };
        self.call_until(&req, deadline, |answer| read_access_token(&answer))
    }
}

/// Reads `{"accessToken": "...", "expiredAt": "<RFC 3339>"}`.
fn read_access_token(answer: &Answer) -> Result<AccessToken> {
    let bad = |why: &str| answer.bad(why);
    let raw = answer
        .data
        .get("accessToken")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| bad("the answer has no `data.accessToken` string"))?;
    let token = Token::new(raw)
        .map_err(|_| bad("the answer's `data.accessToken` is not a usable token"))?;
    let expires_at = answer
        .data
        .get("expiredAt")
        .and_then(serde_json::Value::as_str)
        .and_then(expiry::parse_expired_at)
        .unwrap_or(0);
    Ok(AccessToken {
        token,
        expires_at,
        trace_id: answer.trace_id.as_str().to_owned(),
        server_time: answer.date,
    })
}
