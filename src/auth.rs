//! Access tokens: fetching one from `clientID`/`clientSecret`, and the client's token cache.
//!
//! The service allows at most three live tokens per client and rate-limits the token endpoint,
//! so a client fetches one token, shares it between all threads, renews it a little before it
//! expires or once after a 401 "invalid token", and never fetches another on "tokens number has
//! exceeded the limit".

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::client::{Auth, Client, Request};
use crate::envelope::Answer;
use crate::error::{Error, Result, Status};
use crate::redact::Secret;
use crate::token::Token;

/// Lifetime assumed when the service's `expiredAt` cannot be read.
const ASSUMED_LIFETIME: Duration = Duration::from_secs(3600);
/// How many earlier tokens a client keeps as secrets (at most 3 are live at the service).
const MAX_RETIRED: usize = 4;
/// Renew this long before expiry at most (tokens live about 30 days).
const MAX_RENEW_MARGIN: Duration = Duration::from_secs(300);

/// A token fetched from the service.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The token.
    pub token: Token,
    /// `expiredAt` as Unix seconds, or 0 when the service's value could not be read.
    pub expires_at: i64,
    /// The request's `x-traceID`.
    pub trace_id: String,
}

/// The cached token of a client configured with credentials.
#[derive(Default)]
pub(crate) struct TokenCache {
    // Held across a fetch on purpose: concurrent callers wait for it and share its result
    // instead of each fetching a token of their own.
    cached: Mutex<Option<(Token, Instant)>>,
    /// The tokens this client held before the current one (the last few): a server may still
    /// echo one, so they stay secrets.
    retired: Mutex<Vec<Arc<Secret>>>,
}

impl TokenCache {
    /// The cached token, fetched first when there is none or it is due for renewal. When
    /// `stale` is given (it was just refused with a 401), it is replaced unless another thread
    /// already replaced it.
    pub(crate) fn get(
        &self,
        client: &Client,
        stale: Option<&Token>,
        deadline: Instant,
    ) -> Result<Token> {
        // A panic while the lock was held left at worst no token cached: go on with it.
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((token, renew_at)) = cached.as_ref() {
            if Instant::now() < *renew_at && Some(token) != stale {
                return Ok(token.clone());
            }
        }
        let (id, secret) = client.credentials().ok_or_else(|| {
            Error::new(
                Status::NullArgument,
                "`token` is NULL and the client has no `clientID`/`clientSecret` to fetch one",
            )
        })?;
        let fresh = client.fetch_access_token(id, secret, deadline)?;
        let lifetime = lifetime(fresh.expires_at);
        let margin = (lifetime / 10).min(MAX_RENEW_MARGIN);
        let renew_at = Instant::now() + lifetime.saturating_sub(margin);
        if let Some((old, _)) = cached.replace((fresh.token.clone(), renew_at)) {
            let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
            if retired.len() >= MAX_RETIRED {
                retired.remove(0);
            }
            retired.push(Arc::new(Secret::new(old.as_str())));
        }
        Ok(fresh.token)
    }

    /// The tokens this client held before the current one.
    pub(crate) fn retired(&self) -> Vec<Arc<Secret>> {
        self.retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// How long a token that expires at `expires_at` (Unix seconds; 0 unknown) still lives.
fn lifetime(expires_at: i64) -> Duration {
    if expires_at == 0 {
        return ASSUMED_LIFETIME;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Duration::from_secs(expires_at.saturating_sub(now).max(0) as u64)
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
        };
        self.call_until(&req, deadline, read_access_token)
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
        .and_then(parse_rfc3339)
        .unwrap_or(0);
    Ok(AccessToken {
        token,
        expires_at,
        trace_id: answer.trace_id.clone(),
    })
}

/// Parses `2025-03-23T15:48:37+08:00` (RFC 3339, any offset, optional fraction) to Unix seconds.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':' || b[16] != b':' || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let ob = rest.as_bytes();
            if rest.len() != 6 || ob[3] != b':' {
                return None;
            }
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_with_offsets() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2025-03-23T15:48:37+08:00"),
            Some(1_742_716_117)
        );
        assert_eq!(
            parse_rfc3339("2025-03-23T07:48:37.123Z"),
            Some(1_742_716_117)
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00-01:30"),
            Some(951_787_800)
        );
        for bad in [
            "",
            "2025-03-23",
            "2025-13-01T00:00:00Z",
            "2025-03-23T15:48:37",
            "2025-03-23T15:48:37+0800",
            "x025-03-23T15:48:37Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
