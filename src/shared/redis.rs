//! A shared state on a Redis server: the processes of many machines.
//!
//! Keys, per account (see [`super::account_key`]):
//! - `pan-offline:<key>:token`: the token record (JSON, as in a state directory);
//! - `pan-offline:<key>:token-lock`: held (`SET NX PX`, a random value) by the one process
//!   fetching; the record is written by a script only while the writer still holds it
//!   (compare-and-swap), and the lock is released by a script that deletes only its own;
//! - `pan-offline:<key>:pace:<kind>`: a hash `next`, `paused` in microseconds of Redis's own
//!   clock (`TIME`), so the machines' clocks never matter: every turn is taken by one script
//!   (a GCRA-like schedule: the next turn one interval after the last one taken).
//!
//! Every Redis call has a time limit (the call's, at most 5 s); a server that is down or
//! silent is a `PAN_ERR_NETWORK` or `PAN_ERR_TIMEOUT` naming the store, never a hang.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;

use super::{parse_record, record_bytes, TokenRecord};
use crate::error::{Error, Result, Status};
use crate::proxy::{hide_userinfo, password_of};
use crate::redact::printable;

/// The longest one Redis call may take.
const MAX_CALL: Duration = Duration::from_secs(5);
/// Idle connections kept.
const MAX_IDLE: usize = 4;

/// A Redis shared state.
pub(crate) struct RedisStore {
    client: redis::Client,
    /// The URL, password hidden.
    shown: String,
    password: Option<String>,
    idle: Mutex<Vec<redis::Connection>>,
}

/// Takes a turn: `last` is when the last turn of any process was given; this one comes its
/// own interval after it, never inside a pause. Times more than two days ahead are damage,
/// forgotten (see `Slot::forget_damage`).
static RESERVE: Lazy<redis::Script> = Lazy::new(|| {
    redis::Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ahead = now + 172800000000
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0') or 0
local paused = tonumber(redis.call('HGET', KEYS[1], 'paused') or '0') or 0
if last > ahead or last < 0 then last = 0 end
if paused > ahead or paused < 0 then paused = 0 end
local iv = tonumber(ARGV[1])
local at = math.max(now, paused)
if iv > 0 and last > 0 then at = math.max(at, last + iv) end
if at - now >= tonumber(ARGV[2]) then return -(at - now) - 1 end
if iv > 0 then
  redis.call('HSET', KEYS[1], 'last', string.format('%.0f', math.max(last, at)))
  redis.call('PEXPIRE', KEYS[1], 86400000)
end
return at - now
",
    )
});

static PAUSE: Lazy<redis::Script> = Lazy::new(|| {
    redis::Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local paused = tonumber(redis.call('HGET', KEYS[1], 'paused') or '0') or 0
if paused > now + 172800000000 or paused < 0 then paused = 0 end
redis.call('HSET', KEYS[1], 'paused', string.format('%.0f', math.max(paused, now + tonumber(ARGV[1]))))
redis.call('PEXPIRE', KEYS[1], 86400000)
return 0
",
    )
});

static PAUSED_FOR: Lazy<redis::Script> = Lazy::new(|| {
    redis::Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local paused = tonumber(redis.call('HGET', KEYS[1], 'paused') or '0') or 0
if paused > now + 172800000000 or paused < 0 then paused = 0 end
return math.max(0, paused - now)
",
    )
});

/// Writes the record only while the lock is still the writer's.
static WRITE_IF_HELD: Lazy<redis::Script> = Lazy::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
return 0
",
    )
});

static UNLOCK: Lazy<redis::Script> = Lazy::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

impl RedisStore {
    /// Parses the URL (no connection is made until the state is needed: a client can be made
    /// while Redis is down).
    pub(crate) fn open(spec: &str, from: &str) -> Result<RedisStore> {
        let shown = printable(&hide_userinfo(spec), 200);
        let bad = |e: redis::RedisError| {
            Error::invalid(format!(
                "{from}: `{shown}` is not a usable Redis URL ({}); the form is \
                 redis://[:PASSWORD@]HOST:PORT/DB or rediss://...",
                e.category()
            ))
        };
        let info = redis::IntoConnectionInfo::into_connection_info(spec).map_err(bad)?;
        // No `CLIENT SETINFO` after connecting: its answer is awaited (and its failure
        // ignored), which doubled the time a silent server could hold a call.
        let settings = info.redis_settings().clone().set_skip_set_lib_name();
        let client = redis::Client::open(info.set_redis_settings(settings)).map_err(bad)?;
        Ok(RedisStore {
            client,
            shown,
            password: password_of(spec).filter(|p| !p.is_empty()),
            idle: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn describe(&self) -> String {
        format!("Redis {}", self.shown)
    }

    pub(crate) fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    fn err(&self, what: &str, e: &redis::RedisError) -> Error {
        let status = if e.is_timeout() {
            Status::Timeout
        } else {
            Status::Network
        };
        // The error's text may quote the command or the URL: keep only its kind and, for
        // I/O errors, the system's reason.
        let why = if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() {
            format!("{} ({})", e.category(), io_reason(e))
        } else {
            e.category().to_owned()
        };
        Error::new(
            status,
            format!("shared state {}: {what}: {why}", self.describe()),
        )
    }

    /// Runs `f` on a connection, within the time limit of `deadline` and [`MAX_CALL`].
    fn with_conn<T>(
        &self,
        what: &str,
        deadline: Instant,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::new(
                Status::Timeout,
                format!(
                    "shared state {}: {what}: the call's time limit ran out",
                    self.describe()
                ),
            ));
        }
        let limit = left.min(MAX_CALL);
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self
                .client
                .get_connection_with_timeout(limit)
                .map_err(|e| self.err("connect", &e))?,
        };
        // What connecting (and authenticating) left of the time.
        let limit = deadline
            .saturating_duration_since(Instant::now())
            .min(MAX_CALL);
        if limit.is_zero() {
            return Err(Error::new(
                Status::Timeout,
                format!(
                    "shared state {}: {what}: the call's time limit ran out while connecting",
                    self.describe()
                ),
            ));
        }
        conn.set_read_timeout(Some(limit))
            .and_then(|()| conn.set_write_timeout(Some(limit)))
            .map_err(|e| self.err(what, &e))?;
        let out = f(&mut conn).map_err(|e| self.err(what, &e))?;
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        Ok(out)
    }

    fn key(account: &str, what: &str) -> String {
        format!("pan-offline:{account}:{what}")
    }

    pub(crate) fn read_token(&self, account: &str, deadline: Instant) -> Result<TokenRecord> {
        let key = Self::key(account, "token");
        let bytes: Option<Vec<u8>> = self.with_conn("read the token", deadline, |c| {
            redis::cmd("GET").arg(&key).query(c)
        })?;
        Ok(bytes.map(|b| parse_record(&b)).unwrap_or_default())
    }

    pub(crate) fn update_token(
        &self,
        account: &str,
        deadline: Instant,
        update: &mut dyn FnMut(TokenRecord) -> Option<TokenRecord>,
    ) -> Result<()> {
        let lock = Self::key(account, "token-lock");
        let key = Self::key(account, "token");
        let nonce = nonce();
        // Held at most as long as the call may last (a crashed holder frees it then).
        let hold_ms = deadline
            .saturating_duration_since(Instant::now())
            .as_millis()
            .clamp(1000, 600_000) as u64;
        let mut pause = Duration::from_millis(5);
        loop {
            let got: Option<String> = self.with_conn("lock the token", deadline, |c| {
                redis::cmd("SET")
                    .arg(&lock)
                    .arg(&nonce)
                    .arg("NX")
                    .arg("PX")
                    .arg(hold_ms)
                    .query(c)
            })?;
            if got.is_some() {
                break;
            }
            let now = Instant::now();
            if now + pause >= deadline {
                return Err(Error::new(
                    Status::Timeout,
                    format!(
                        "shared state {}: the call's time limit ran out while another process \
                         fetched the token",
                        self.describe()
                    ),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        let result = (|| {
            let record = self.read_token(account, deadline)?;
            if let Some(new) = update(record) {
                let bytes = record_bytes(&new)?;
                let written: i64 = self.with_conn("write the token", deadline, |c| {
                    WRITE_IF_HELD
                        .key(&lock)
                        .key(&key)
                        .arg(&nonce)
                        .arg(bytes)
                        .invoke(c)
                })?;
                if written != 1 {
                    return Err(Error::new(
                        Status::Timeout,
                        format!(
                            "shared state {}: the token lock expired before the new token \
                             was stored",
                            self.describe()
                        ),
                    ));
                }
            }
            Ok(())
        })();
        // Released within the call's time; past it, the lock expires by itself (it is held
        // at most as long as the call may last).
        let _ = self.with_conn("unlock the token", deadline, |c| {
            UNLOCK.key(&lock).arg(&nonce).invoke::<i64>(c)
        });
        result
    }

    pub(crate) fn reserve(
        &self,
        account: &str,
        kind: &str,
        interval: Option<Duration>,
        max_wait: Duration,
        deadline: Instant,
    ) -> Result<std::result::Result<Duration, Duration>> {
        let key = Self::key(account, &format!("pace:{kind}"));
        let iv = interval.map_or(0, |i| i.as_micros().max(1) as u64);
        let max = max_wait.as_micros().min(i64::MAX as u128) as i64;
        let got: i64 = self.with_conn("take a turn", deadline, |c| {
            RESERVE.key(&key).arg(iv).arg(max).invoke(c)
        })?;
        // Whatever the script returns (a damaged store included), no arithmetic can overflow.
        Ok(if got >= 0 {
            Ok(Duration::from_micros(got as u64))
        } else {
            Err(Duration::from_micros(got.saturating_add(1).unsigned_abs()))
        })
    }

    pub(crate) fn pause(
        &self,
        account: &str,
        kind: &str,
        pause: Duration,
        deadline: Instant,
    ) -> Result<()> {
        let key = Self::key(account, &format!("pace:{kind}"));
        let us = pause.as_micros() as u64;
        self.with_conn("pause", deadline, |c| {
            PAUSE.key(&key).arg(us).invoke::<i64>(c)
        })
        .map(|_| ())
    }

    pub(crate) fn paused_for(
        &self,
        account: &str,
        kind: &str,
        deadline: Instant,
    ) -> Result<Duration> {
        let key = Self::key(account, &format!("pace:{kind}"));
        let us: i64 =
            self.with_conn("read a pause", deadline, |c| PAUSED_FOR.key(&key).invoke(c))?;
        Ok(Duration::from_micros(us.max(0) as u64))
    }
}

/// The system's reason of an I/O error, without the command or URL around it.
fn io_reason(e: &redis::RedisError) -> String {
    use std::error::Error as _;
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io.kind().to_string();
        }
        source = s.source();
    }
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else {
        "I/O error".to_owned()
    }
}

/// A value no other process will pick (the lock's owner).
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    let rng = ring::rand::SystemRandom::new();
    let _ = ring::rand::SecureRandom::fill(&rng, &mut bytes);
    let mut s: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    s.push_str(&format!("-{}", std::process::id()));
    s
}
