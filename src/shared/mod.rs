//! The state one account shares between processes and machines (`sharedState`): its access
//! token and the pacing schedule of each kind of call.
//!
//! The service's limits are the account's — three live tokens per client, so many creates a
//! second — not a process's. Processes that name the same state share them:
//! - a directory ([`dir`]): the processes of one machine, through files under `flock`;
//! - `redis://` or `rediss://` ([`redis`]): processes on many machines, through Lua scripts
//!   that Redis runs atomically, on Redis's clock.
//!
//! Both keep the same two records per account (base URL and client): a [`TokenRecord`] and,
//! per paced kind of call, a [`Slot`]. Nothing secret but the access token itself is stored.

pub(crate) mod dir;
pub(crate) mod redis;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, Status};
use crate::redact::printable;

/// Largest record read from a store, in bytes (a record is a few hundred).
const MAX_RECORD: usize = 64 * 1024;

/// What the store knows of the account's token.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenRecord {
    /// The token in use, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<StoredToken>,
    /// The last fetch's failure, given to every process until `until_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<StoredFailure>,
    /// Failed fetches in a row (for the pause before the next).
    #[serde(default)]
    pub failures: u32,
}

/// A token as stored (times in Unix milliseconds: every process reads them with its own clock).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredToken {
    /// The access token.
    pub access_token: String,
    /// `expiredAt` as the service said it, in Unix seconds (0: not said or unreadable).
    pub expires_at: i64,
    /// When it is to be renewed.
    pub renew_at_ms: i64,
    /// When it was fetched.
    pub fetched_at_ms: i64,
    /// Fetched because the service refused its predecessor.
    pub after_refusal: bool,
}

/// A failed fetch, as stored: its status, its (already redacted) message, and until when it
/// is given again instead of fetching.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredFailure {
    /// The `PAN_ERR_*` number.
    pub status: i32,
    /// The message, secrets removed.
    pub message: String,
    /// Until when (Unix milliseconds).
    pub until_ms: i64,
}

impl StoredFailure {
    /// The failure as an error of this call.
    pub(crate) fn error(&self) -> Error {
        let status = Status::from_code(self.status)
            .filter(|s| *s != Status::Ok)
            .unwrap_or(Status::Api);
        Error::new(status, printable(&self.message, 1000))
    }
}

/// The pacing schedule of one kind of call, in nanoseconds of the store's clock.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Slot {
    /// When the last turn was given (0: never). Each process spaces its own turns from it by
    /// its own interval: a process with a slow rate never holds back one with a fast rate.
    pub last: u64,
    /// Until when the service asked this kind to pause (0: never).
    pub paused: u64,
}

/// A stored time further ahead than this is not a schedule but damage (another program's
/// write, a torn record): it is forgotten. (Pauses are capped at 10 s, turns at a call's
/// time limit, one day at most.)
pub(crate) const MAX_AHEAD_NS: u64 = 2 * 86_400 * 1_000_000_000;

impl Slot {
    /// Takes the next turn of a schedule with calls `interval` apart (`None`: unpaced), given
    /// the clock's `now`: `Ok(at)`, or `Err(at)` when `at` would be at or past `deadline`
    /// (nothing is then reserved). A turn is never before the end of a pause, and each turn
    /// after a pause comes one interval after the one before: a pause ends without a burst.
    pub(crate) fn reserve(
        &mut self,
        now: u64,
        interval: Option<u64>,
        deadline: u64,
    ) -> std::result::Result<u64, u64> {
        self.forget_damage(now);
        let after_last = match interval {
            Some(i) if self.last != 0 => self.last.saturating_add(i),
            _ => 0,
        };
        let at = now.max(self.paused).max(after_last);
        if at >= deadline {
            return Err(at);
        }
        if interval.is_some() {
            self.last = self.last.max(at);
        }
        Ok(at)
    }

    /// The service asked to slow down: no turn before `until`; paced turns resume from it.
    pub(crate) fn pause(&mut self, until: u64) {
        self.paused = self.paused.max(until);
    }

    /// Forgets times too far ahead of `now` to be real.
    pub(crate) fn forget_damage(&mut self, now: u64) {
        let limit = now.saturating_add(MAX_AHEAD_NS);
        if self.last > limit {
            self.last = 0;
        }
        if self.paused > limit {
            self.paused = 0;
        }
    }
}

/// Where a client's shared state lives.
pub(crate) enum Store {
    /// A private directory on this machine.
    Dir(dir::DirStore),
    /// A Redis server (boxed: its client is large, and made once per client).
    Redis(Box<redis::RedisStore>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Store {
    /// The store named by `sharedState` (`from` says where the value came from, for
    /// messages): a `redis://` or `rediss://` URL, else a directory path, created private
    /// to the user if it does not exist and refused if others could write it.
    pub(crate) fn open(spec: &str, from: &str) -> Result<Store> {
        let lower = spec.get(..9).unwrap_or(spec).to_ascii_lowercase();
        if lower.starts_with("redis://") || lower.starts_with("rediss://") {
            return redis::RedisStore::open(spec, from).map(|r| Store::Redis(Box::new(r)));
        }
        // Anything that looks like a URL (a scheme and a colon, or a misspelt redis URL) is
        // refused rather than made a directory named after it (and after its password).
        let scheme_like = spec.split_once(':').is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphabetic())
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        });
        if scheme_like || lower.starts_with("redis") || lower.contains("://") {
            return Err(Error::invalid(format!(
                "{from}: `{}` is neither a directory path nor a redis:// or rediss:// URL",
                printable(crate::proxy::hide_userinfo(spec).as_str(), 200)
            )));
        }
        dir::DirStore::open(spec, from).map(Store::Dir)
    }

    /// What the store is, for logs and `Debug` (a Redis password hidden).
    pub(crate) fn describe(&self) -> String {
        match self {
            Store::Dir(d) => d.describe(),
            Store::Redis(r) => r.describe(),
        }
    }

    /// The secret the store's URL carries (a Redis password), if any.
    pub(crate) fn secret(&self) -> Option<&str> {
        match self {
            Store::Dir(_) => None,
            Store::Redis(r) => r.password(),
        }
    }

    /// The account's token record, read without a lock (records are replaced whole).
    pub(crate) fn read_token(&self, account: &str, deadline: Instant) -> Result<TokenRecord> {
        match self {
            Store::Dir(d) => d.read_token(account),
            Store::Redis(r) => r.read_token(account, deadline),
        }
    }

    /// Runs `update` with the account's token record while no other process of the store can
    /// (only one fetches at a time; the others wait here, then read what it stored), and
    /// stores what it returns when that is `Some`.
    pub(crate) fn update_token(
        &self,
        account: &str,
        deadline: Instant,
        update: &mut dyn FnMut(TokenRecord) -> Option<TokenRecord>,
    ) -> Result<()> {
        match self {
            Store::Dir(d) => d.update_token(account, deadline, update),
            Store::Redis(r) => r.update_token(account, deadline, update),
        }
    }

    /// Takes the next turn of `kind` for the account, calls `interval` apart: how long to
    /// wait for it, or `Err(wait)` when it would come after `max_wait`.
    pub(crate) fn reserve(
        &self,
        account: &str,
        kind: &str,
        interval: Option<Duration>,
        max_wait: Duration,
        deadline: Instant,
    ) -> Result<std::result::Result<Duration, Duration>> {
        match self {
            Store::Dir(d) => d.reserve(account, kind, interval, max_wait),
            Store::Redis(r) => r.reserve(account, kind, interval, max_wait, deadline),
        }
    }

    /// Pauses `kind` of the account for `pause` from now, for every process.
    pub(crate) fn pause(
        &self,
        account: &str,
        kind: &str,
        pause: Duration,
        deadline: Instant,
    ) -> Result<()> {
        match self {
            Store::Dir(d) => d.pause(account, kind, pause),
            Store::Redis(r) => r.pause(account, kind, pause, deadline),
        }
    }

    /// How long `kind` of the account is still paused (zero: not paused).
    pub(crate) fn paused_for(
        &self,
        account: &str,
        kind: &str,
        deadline: Instant,
    ) -> Result<Duration> {
        match self {
            Store::Dir(d) => d.paused_for(account, kind),
            Store::Redis(r) => r.paused_for(account, kind, deadline),
        }
    }
}

/// The name of an account's records: a digest of the base URL and the client (a client ID,
/// or the token source), so that records of two services or clients never mix and no
/// client ID appears in a file name.
pub(crate) fn account_key(base: &str, client: &str) -> String {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{base}\n{client}").as_bytes(),
    );
    d.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The wall clock in Unix milliseconds.
pub(crate) fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Reads a record; one that is not valid (a torn write, another program's file) counts as
/// empty, to be replaced by the next update.
fn parse_record<T: Default + for<'de> Deserialize<'de>>(bytes: &[u8]) -> T {
    if bytes.is_empty() || bytes.len() > MAX_RECORD {
        return T::default();
    }
    serde_json::from_slice(bytes).unwrap_or_default()
}

/// A record as stored.
fn record_bytes<T: Serialize>(record: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(record).map_err(|e| {
        Error::new(
            Status::Internal,
            format!("shared state: write a record: {e}"),
        )
    })
}

/// A failure of the store itself (`what` failed on the store `store`).
fn store_error(status: Status, store: &str, what: &str, why: impl std::fmt::Display) -> Error {
    Error::new(status, format!("shared state {store}: {what}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_after_a_pause_are_an_interval_apart() {
        let mut s = Slot::default();
        assert_eq!(s.reserve(100, Some(10), 1_000), Ok(100));
        assert_eq!(s.reserve(100, Some(10), 1_000), Ok(110));
        s.pause(500);
        // Taken again after the pause: one interval apart, never together.
        assert_eq!(s.reserve(120, Some(10), 1_000), Ok(500));
        assert_eq!(s.reserve(120, Some(10), 1_000), Ok(510));
        assert_eq!(s.reserve(120, Some(10), 1_000), Ok(520));
        // Past the deadline: refused, nothing reserved.
        assert_eq!(s.reserve(120, Some(10), 525), Err(530));
        assert_eq!(s.reserve(120, Some(10), 2_000), Ok(530));
        // A slower process's turn does not push a faster one's beyond its own interval.
        let mut m = Slot::default();
        assert_eq!(m.reserve(100, Some(1_000), 10_000), Ok(100));
        assert_eq!(m.reserve(100, Some(10), 10_000), Ok(110));
        // Damage (a time years ahead) is forgotten, not waited for.
        let mut d = Slot {
            last: u64::MAX - 5,
            paused: u64::MAX,
        };
        assert_eq!(d.reserve(100, Some(10), 1_000), Ok(100));
        // Unpaced: only the pause holds.
        let mut u = Slot::default();
        u.pause(50);
        assert_eq!(u.reserve(10, None, 100), Ok(50));
        assert_eq!(u.reserve(60, None, 100), Ok(60));
    }

    #[test]
    fn a_torn_record_reads_as_empty() {
        let r: TokenRecord = parse_record(b"{\"token\":{\"accessTo");
        assert_eq!(r, TokenRecord::default());
        let r: TokenRecord = parse_record(&[0u8; 40]);
        assert_eq!(r, TokenRecord::default());
    }

    #[test]
    fn account_keys_differ_by_base_and_client() {
        let a = account_key("http://127.0.0.1:1", "id");
        assert_eq!(a.len(), 24);
        assert_ne!(a, account_key("http://127.0.0.1:2", "id"));
        assert_ne!(a, account_key("http://127.0.0.1:1", "id2"));
        assert_eq!(a, account_key("http://127.0.0.1:1", "id"));
    }
}
