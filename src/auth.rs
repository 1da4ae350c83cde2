//! Access tokens: fetching one from `clientID`/`clientSecret`, and the client's token cache.
//!
//! The service allows at most three live tokens per client and rate-limits the token endpoint,
//! so a client fetches one token, shares it between all threads, renews it a little before it
//! expires or once after a 401 "invalid token", and never fetches another on "tokens number has
//! exceeded the limit".

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::client::{Auth, Client, Request};
use crate::envelope::Answer;
use crate::error::{Error, Result, Status};
use crate::expiry;
use crate::log::Level;
use crate::redact::Secret;
use crate::token::Token;

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
}

#[derive(Default)]
struct CacheState {
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
    }

    /// The cached token, fetched first when there is none or it is due for renewal. When
    /// `stale` is given (it was just refused with a 401), it is replaced unless another thread
    /// already replaced it — once: a token that was itself fetched after a 401 and is refused
    /// within a minute is not replaced again before the minute is over. After a failed fetch,
    /// calls get the same failure until the next fetch is due (1 s, doubling to a minute; a
    /// minute at once when the service refused the credentials or has too many tokens).
    pub(crate) fn get(
        &self,
        client: &Client,
        stale: Option<&Token>,
        deadline: Instant,
    ) -> Result<Token> {
        // A panic while the lock was held left at worst a stale state: go on with it.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some(c) = &state.token {
            let refused = Some(&c.token) == stale;
            if !refused && now < c.renew_at {
                return Ok(c.token.clone());
            }
            if refused && c.after_401 && now < c.fetched_at + expiry::MIN_TOKEN_AGE {
                return Err(Error::new(
                    Status::Unauthorized,
                    format!(
                        "the service refused the token fetched {} ms ago after its predecessor \
                         was refused too; not fetching another before a minute has passed \
                         (check the service's status and this client's credentials)",
                        now.duration_since(c.fetched_at).as_millis()
                    ),
                ));
            }
        }
        if let Some((err, until)) = &state.failure {
            if now < *until {
                return Err(err.clone().suffix(&format!(
                    " (the last token fetch failed; the next is not before {} ms from now)",
                    until.duration_since(now).as_millis()
                )));
            }
        }
        let (id, secret) = client.credentials().ok_or_else(|| {
            Error::new(
                Status::NullArgument,
                "`token` is NULL and the client has no `clientID`/`clientSecret` to fetch one",
            )
        })?;
        client.log.write(Level::Info, &client.secret_refs(), || {
            if stale.is_some() {
                "renewing the access token after the service refused it (401)".to_owned()
            } else {
                "fetching an access token".to_owned()
            }
        });
        let fresh = match client.fetch_access_token(id, secret, deadline) {
            Ok(fresh) => fresh,
            Err(e) => {
                state.failures = state.failures.saturating_add(1);
                let pause = match e.status() {
                    Status::TokenLimit | Status::Unauthorized | Status::InvalidArgument => {
                        MAX_FETCH_PAUSE
                    }
                    _ => Duration::from_secs(1 << (state.failures - 1).min(6)).min(MAX_FETCH_PAUSE),
                };
                state.failure = Some((e.clone(), Instant::now() + pause));
                return Err(e);
            }
        };
        let local_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let fetched_at = Instant::now();
        state.token = Some(Cached {
            token: fresh.token.clone(),
            renew_at: fetched_at
                + expiry::renew_after(
                    (fresh.expires_at != 0).then_some(fresh.expires_at),
                    fresh.server_time,
                    local_now,
                ),
            fetched_at,
            after_401: stale.is_some(),
        });
        state.failure = None;
        state.failures = 0;
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.len() > MAX_RETIRED {
            held.remove(0);
        }
        held.push(Arc::new(Secret::new(fresh.token.as_str())));
        self.any_held.store(true, Ordering::Release);
        Ok(fresh.token)
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
