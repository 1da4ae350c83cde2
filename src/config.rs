//! Client configuration: documented defaults, the environment, and the caller's JSON.

use std::time::Duration;

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::json::{parse_object, type_name};
use crate::proxy::{hide_userinfo, password_of};
use crate::redact::{printable, Secret};
use crate::url::{parse_http_url, HttpUrl};

/// The service's base URL.
pub const DEFAULT_BASE_URL: &str = "https://open-api.123pan.com";
/// The environment variable that overrides the base URL of default-configured clients.
pub const BASE_URL_ENV: &str = "PAN_API_BASE_URL";
/// Default limit for establishing a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit for one whole call (resolve, connect, send, receive, retries).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of retries of a request that the service certainly did not act on.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Default pause between progress polls while waiting.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(1000);
/// The shortest pause between polls (other clients poll at about 5 per second at most).
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// The environment variables that set `createQps` and `progressQps` of the process-wide client.
pub const CREATE_QPS_ENV: &str = "PAN_CREATE_QPS";
/// See [`CREATE_QPS_ENV`].
pub const PROGRESS_QPS_ENV: &str = "PAN_PROGRESS_QPS";
/// The environment variable that sets `sharedState` of the process-wide client.
pub const SHARED_STATE_ENV: &str = "PAN_SHARED_STATE";
/// Creates per second a client sends by default, all threads together (what peers do).
pub const DEFAULT_CREATE_QPS: f64 = 1.0;
/// Progress queries per second a client sends by default, all threads together.
pub const DEFAULT_PROGRESS_QPS: f64 = 5.0;
/// The highest rate accepted for `createQps` and `progressQps`.
const MAX_QPS: f64 = 100_000.0;
/// Largest configuration text accepted, in bytes.
pub const MAX_CONFIG_LEN: usize = 64 * 1024;
/// Largest response body read, in bytes; the API's answers are a few hundred bytes.
pub const MAX_RESPONSE_BODY: u64 = 1024 * 1024;

/// The value of the environment variable `name`: `None` when it is unset, an error naming it
/// when it is set but not UTF-8 — a setting that cannot be read is refused, never taken for
/// unset (for `$PAN_API_BASE_URL` that would mean the production URL).
pub(crate) fn env_text(name: &str) -> Result<Option<String>> {
    match std::env::var_os(name) {
        None => Ok(None),
        Some(v) => v.into_string().map(Some).map_err(|v| {
            Error::invalid(format!(
                "${name} is `{}`, which is not UTF-8: a variable that is set is used or \
                 refused, never ignored (unset it, or give it as UTF-8)",
                printable(&v.to_string_lossy(), 200)
            ))
        }),
    }
}

/// How a [`Client`](crate::Client) talks to the service. Build it with [`Config::default`]
/// (the documented defaults plus the environment), then adjust fields or use
/// [`Config::from_json`].
#[derive(Clone, PartialEq)]
pub struct Config {
    /// Base URL, default [`DEFAULT_BASE_URL`] or `$PAN_API_BASE_URL`. Plain `http://` only for
    /// loopback hosts.
    pub base_url: String,
    /// Limit for establishing a connection (default 10 s).
    pub connect_timeout: Duration,
    /// Limit for a whole call including retries (default 30 s).
    pub timeout: Duration,
    /// Retries of requests the service certainly did not act on (default 3).
    pub max_retries: u32,
    /// Pause between progress polls while waiting (default 1 s, at least 200 ms).
    pub poll_interval: Duration,
    /// `User-Agent` header (default `pan-offline/<version>`; empty: none is sent).
    pub user_agent: String,
    /// Proxy URL. `None`: from the environment (`https_proxy`, `HTTPS_PROXY`, `all_proxy`,
    /// `ALL_PROXY`) except for loopback hosts; `Some("")`: no proxy. See the README's
    /// "Proxies" table.
    pub proxy: Option<String>,
    /// Hosts reached without a proxy, in curl's `NO_PROXY` syntax. `None`: `$no_proxy`, else
    /// `$NO_PROXY`.
    pub no_proxy: Option<String>,
    /// Host names mapped to addresses, in curl's `--resolve` syntax `HOST:PORT:ADDR[,ADDR]...`:
    /// connections to `HOST:PORT` (the base URL's or the proxy's) go to these addresses, with
    /// no lookup. Plain http to a name mapped to loopback addresses only counts as loopback.
    pub resolve: Vec<String>,
    /// Client ID for fetching access tokens.
    pub client_id: Option<String>,
    /// Client secret for fetching access tokens.
    pub client_secret: Option<String>,
    /// PEM bundle of the certificate authorities to trust. `None`: `$SSL_CERT_FILE`, else the
    /// system's CA store.
    pub ca_file: Option<String>,
    /// Creates per second the client sends, all threads together; `Some(0.0)`: not paced.
    /// `None`: [`DEFAULT_CREATE_QPS`], or not paced for a loopback base URL.
    pub create_qps: Option<f64>,
    /// Progress queries per second, as `create_qps`; default [`DEFAULT_PROGRESS_QPS`].
    pub progress_qps: Option<f64>,
    /// Where the token and the pacing schedules are shared with the account's other
    /// processes: a private directory, or `redis://HOST:PORT/DB` (`rediss://` for TLS) for
    /// processes on many machines. `None` (the default): this client's own.
    pub shared_state: Option<String>,
}

impl Default for Config {
    /// The documented defaults, with the base URL from `$PAN_API_BASE_URL` when it is set.
    fn default() -> Config {
        Config {
            // Read lossily here (a default cannot fail): a value that is not UTF-8 keeps its
            // U+FFFD, which no URL accepts, and `validate` names the variable.
            base_url: std::env::var_os(BASE_URL_ENV)
                .filter(|s| !s.is_empty())
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            poll_interval: DEFAULT_POLL_INTERVAL,
            user_agent: concat!("pan-offline/", env!("CARGO_PKG_VERSION")).to_owned(),
            proxy: None,
            no_proxy: None,
            resolve: Vec::new(),
            client_id: None,
            client_secret: None,
            ca_file: None,
            create_qps: None,
            progress_qps: None,
            shared_state: None,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &self.base_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("poll_interval", &self.poll_interval)
            .field("user_agent", &self.user_agent)
            .field("proxy", &self.proxy.as_deref().map(hide_userinfo))
            .field("no_proxy", &self.no_proxy)
            .field("resolve", &self.resolve)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("ca_file", &self.ca_file)
            .field("create_qps", &self.create_qps)
            .field("progress_qps", &self.progress_qps)
            .field(
                "shared_state",
                &self.shared_state.as_deref().map(hide_userinfo),
            )
            .finish()
    }
}

const KEYS: &str = "baseUrl, connectTimeoutMs, timeoutMs, maxRetries, pollIntervalMs, userAgent, proxy, noProxy, resolve, clientID, clientSecret, caFile, createQps, progressQps, sharedState";
/// Longest time limit accepted: one day.
const MAX_MS: u64 = 86_400_000;

impl Config {
    /// The defaults overridden by the keys of a JSON object (see the header for the keys).
    /// Unknown or mistyped keys are refused by name.
    pub fn from_json(text: &str) -> Result<Config> {
        let mut c = Config::default();
        for (key, value) in parse_object(text, "config", MAX_CONFIG_LEN)?.0 {
            match &*key {
                "baseUrl" => c.base_url = string(&key, value)?,
                "connectTimeoutMs" => c.connect_timeout = millis(&key, &value, 1)?,
                "timeoutMs" => c.timeout = millis(&key, &value, 1)?,
                "pollIntervalMs" => {
                    c.poll_interval = millis(&key, &value, MIN_POLL_INTERVAL.as_millis() as u64)?
                }
                "maxRetries" => c.max_retries = integer(&key, &value, 0, 10)? as u32,
                "userAgent" => c.user_agent = string(&key, value)?,
                "proxy" => c.proxy = Some(string(&key, value)?),
                "noProxy" => c.no_proxy = Some(string(&key, value)?),
                "resolve" => c.resolve = strings(&key, value)?,
                "clientID" => c.client_id = Some(string(&key, value)?),
                "clientSecret" => c.client_secret = Some(string(&key, value)?),
                "caFile" => c.ca_file = Some(string(&key, value)?),
                "createQps" => c.create_qps = Some(qps(&format!("`{key}`"), &value)?),
                "progressQps" => c.progress_qps = Some(qps(&format!("`{key}`"), &value)?),
                "sharedState" => c.shared_state = Some(string(&key, value)?),
                other => {
                    return Err(Error::invalid(format!(
                        "config: unknown key `{}` (the keys are {KEYS}; names are case-sensitive)",
                        printable(other, 64)
                    )))
                }
            }
        }
        c.validate()?;
        Ok(c)
    }

    /// The defaults with what the environment says for the process-wide client:
    /// `$PAN_API_BASE_URL`, `$PAN_CREATE_QPS`, `$PAN_PROGRESS_QPS`, `$PAN_SHARED_STATE`. A
    /// value that cannot be used is refused, naming its variable.
    pub fn from_env() -> Result<Config> {
        let mut c = Config::default();
        if let Some(v) = std::env::var_os(SHARED_STATE_ENV).filter(|v| !v.is_empty()) {
            let text = v.into_string().map_err(|v| {
                Error::invalid(format!(
                    "${SHARED_STATE_ENV} is `{}`, which is not UTF-8",
                    printable(&v.to_string_lossy(), 200)
                ))
            })?;
            // Checked here, so that a refusal names the variable it came from.
            crate::shared::Store::open(&text, &format!("${SHARED_STATE_ENV}"))?;
            c.shared_state = Some(text);
        }
        for (name, field) in [
            (CREATE_QPS_ENV, &mut c.create_qps),
            (PROGRESS_QPS_ENV, &mut c.progress_qps),
        ] {
            if let Some(v) = std::env::var_os(name).filter(|v| !v.is_empty()) {
                let text = v.to_string_lossy();
                let n = text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "${name} is `{}`, not a number of calls per second",
                            printable(&text, 40)
                        ))
                    })?;
                *field = Some(qps(&format!("${name}"), &Value::from(n))?);
            }
        }
        c.validate()?;
        Ok(c)
    }

    /// The pacing of this configuration: creates and progress queries per second (0: not
    /// paced). Unset rates are the defaults, except for a loopback base URL (the emulator, a
    /// test server), which is not paced unless asked.
    pub(crate) fn rates(&self) -> (f64, f64) {
        let loopback = parse_http_url(&self.base_url).is_ok_and(|u| {
            u.is_loopback()
                || Pins::parse(&self.resolve)
                    .is_ok_and(|p| p.is_loopback(u.host, u.port_or_default()))
        });
        let or_default = |v: Option<f64>, d: f64| v.unwrap_or(if loopback { 0.0 } else { d });
        (
            or_default(self.create_qps, DEFAULT_CREATE_QPS),
            or_default(self.progress_qps, DEFAULT_PROGRESS_QPS),
        )
    }

    /// Checks every field; the error names the field. No secret of the configuration (the
    /// client secret, a password in the base or proxy URL) appears in the message.
    pub fn validate(&self) -> Result<()> {
        self.check()
            .map_err(|e| e.redact(&self.secrets().iter().collect::<Vec<_>>()))
    }

    fn check(&self) -> Result<()> {
        if let Err(e) = env_text(BASE_URL_ENV) {
            let lossy = std::env::var_os(BASE_URL_ENV).map(|v| v.to_string_lossy().into_owned());
            if lossy.as_deref() == Some(self.base_url.as_str()) {
                return Err(e);
            }
        }
        let pins = Pins::parse(&self.resolve)?;
        let base = base_url(&self.base_url, &pins)?;
        if let Some(c) = self
            .user_agent
            .chars()
            .find(|c| c.is_control() || !c.is_ascii())
        {
            return Err(Error::invalid(format!(
                "config: `userAgent` contains '{}' (printable ASCII only)",
                c.escape_default()
            )));
        }
        if self.proxy.as_deref().is_some_and(|p| !p.is_empty()) {
            // The configured proxy, and whether it may carry this base URL (the environment
            // is read when the client is made).
            let u = parse_http_url(base).map_err(Error::invalid)?;
            crate::proxy::route(self, &u, &pins, &|_| None)?;
        }
        for (name, v) in [
            ("clientID", &self.client_id),
            ("clientSecret", &self.client_secret),
            ("caFile", &self.ca_file),
            ("sharedState", &self.shared_state),
        ] {
            if v.as_deref().is_some_and(str::is_empty) {
                return Err(Error::invalid(format!("config: `{name}` is empty")));
            }
        }
        if self.client_id.is_some() != self.client_secret.is_some() {
            return Err(Error::invalid(
                "config: `clientID` and `clientSecret` go together: give both or neither",
            ));
        }
        Ok(())
    }

    /// The secrets of this configuration: the client secret and the passwords of the base and
    /// proxy URLs.
    pub(crate) fn secrets(&self) -> Vec<Secret> {
        [
            self.client_secret.clone(),
            self.proxy.as_deref().and_then(password_of),
            password_of(&self.base_url),
            self.shared_state.as_deref().and_then(password_of),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .map(|s| Secret::new(&s))
        .collect()
    }

    /// The base URL without its trailing '/', checked.
    pub(crate) fn base(&self) -> Result<&str> {
        base_url(&self.base_url, &Pins::parse(&self.resolve)?)
    }
}

/// Host names mapped to addresses (the `resolve` key), by lower-case host and port.
#[derive(Debug, Default, Clone)]
pub(crate) struct Pins(HashMap<(String, u16), Vec<IpAddr>>);

impl Pins {
    /// Reads entries `HOST:PORT:ADDR[,ADDR]...` (curl's `--resolve`; IPv6 in brackets).
    pub(crate) fn parse(entries: &[String]) -> Result<Pins> {
        let mut pins = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let bad = |why: &str| {
                Error::invalid(format!(
                    "config: `resolve[{i}]` `{}` {why}; the form is HOST:PORT:ADDRESS[,ADDRESS]... \
                     as in curl's --resolve",
                    printable(e, 100)
                ))
            };
            // HOST:PORT, then the addresses (which may hold colons of their own).
            let (host, rest) = if let Some(b) = e.strip_prefix('[') {
                let (h, r) = b
                    .split_once(']')
                    .ok_or_else(|| bad("has an unclosed '['"))?;
                (h, r.strip_prefix(':').ok_or_else(|| bad("has no port"))?)
            } else {
                e.split_once(':').ok_or_else(|| bad("has no port"))?
            };
            let (port, addrs) = rest.split_once(':').ok_or_else(|| bad("has no address"))?;
            crate::proxy::check_host(host).map_err(|why| bad(&why))?;
            let port = crate::url::parse_port(port).map_err(|why| bad(&why))?;
            let addrs = addrs
                .split(',')
                .map(|a| {
                    a.trim()
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<IpAddr>()
                })
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|_| bad("has an address that is not an IP address"))?;
            pins.insert((host.to_ascii_lowercase(), port), addrs);
        }
        Ok(Pins(pins))
    }

    /// The addresses `host:port` is mapped to, if it is.
    pub(crate) fn lookup(&self, host: &str, port: u16) -> Option<&[IpAddr]> {
        if self.0.is_empty() {
            return None;
        }
        self.0
            .get(&(host.to_ascii_lowercase(), port))
            .map(Vec::as_slice)
    }

    /// Whether `host:port` is mapped to loopback addresses only.
    pub(crate) fn is_loopback(&self, host: &str, port: u16) -> bool {
        self.lookup(host, port)
            .is_some_and(|a| !a.is_empty() && a.iter().all(IpAddr::is_loopback))
    }
}

/// The longest path the library appends to the base URL (with a query of the largest task
/// ID), to prove once that every request URL it will build is one the HTTP layer carries.
const LONGEST_PATH: &str = "/api/v1/oss/offline/download/process?taskID=9223372036854775807";

/// Checks a base URL completely, so that no request built on it can fail later: http(s); a
/// host of ASCII letters, digits, `-`, `.`, `_` or an IP address; no user name or password; a
/// path of RFC 3986 characters (§3.3) and no query or fragment; cleartext only to loopback
/// (the token must not travel in the clear over a network). Returns it without a trailing '/'.
fn base_url<'a>(s: &'a str, pins: &Pins) -> Result<&'a str> {
    let shown = || printable(&hide_userinfo(s), 200);
    let bad = |why: &str| Error::invalid(format!("base URL `{}` {why}", shown()));
    let u = parse_http_url(s).map_err(|why| bad(&why))?;
    check_base_parts(&u).map_err(|why| bad(&why))?;
    if !u.https && !u.is_loopback() && !pins.is_loopback(u.host, u.port_or_default()) {
        return Err(bad(
            "is plain http to a host that is not loopback; the access token would travel in \
             cleartext, so only https is accepted there",
        ));
    }
    let base = s.trim_end_matches('/');
    ureq::http::Uri::try_from(format!("{base}{LONGEST_PATH}"))
        .map_err(|e| bad(&format!("is not a URL the HTTP layer can carry ({e})")))?;
    Ok(base)
}

fn check_base_parts(u: &HttpUrl<'_>) -> std::result::Result<(), String> {
    if u.userinfo.is_some() {
        return Err(
            "has a user name or password before its host; the API authenticates with \
                    the access token, so remove them"
                .into(),
        );
    }
    // An IPv6 host came in brackets and was checked as an address.
    if !u.host.contains(':') {
        crate::proxy::check_host(u.host)?;
    }
    if u.rest.contains(['?', '#']) {
        return Err("has a query or fragment".into());
    }
    // RFC 3986 §3.3: pchar = unreserved / pct-encoded / sub-delims / ":" / "@", and "/".
    let path = u.rest.as_bytes();
    for (i, c) in u.rest.char_indices() {
        let ok = c.is_ascii_alphanumeric()
            || "-._~!$&'()*+,;=:@/".contains(c)
            || (c == '%'
                && path
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)));
        if !ok {
            return Err(format!(
                "has the character '{}' in its path; percent-encode it",
                c.escape_default()
            ));
        }
    }
    Ok(())
}

fn string(key: &str, value: Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(Error::invalid(format!(
            "config: `{key}` must be a string, not {}",
            type_name(&other)
        ))),
    }
}

/// A rate: a number of calls per second from 0 (not paced) to 100,000. `what` names it.
fn qps(what: &str, value: &Value) -> Result<f64> {
    match value.as_f64() {
        Some(n) if n == 0.0 || (crate::pacing::MIN_QPS..=MAX_QPS).contains(&n) => Ok(n),
        _ => Err(Error::invalid(format!(
            "config: {what} must be 0 (not paced) or a number of calls per second from 0.001 \
             to 100000, not {}",
            printable(&value.to_string(), 40)
        ))),
    }
}

fn strings(key: &str, value: Value) -> Result<Vec<String>> {
    let wrong = |what: &str| {
        Error::invalid(format!(
            "config: `{key}` must be an array of strings, not {what}"
        ))
    };
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(wrong(&format!("an array holding {}", type_name(&other)))),
            })
            .collect(),
        other => Err(wrong(type_name(&other))),
    }
}

fn integer(key: &str, value: &Value, min: u64, max: u64) -> Result<u64> {
    match value.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Error::invalid(format!(
            "config: `{key}` must be an integer from {min} to {max}, not {}",
            match value {
                Value::Number(n) => n.to_string(),
                other => type_name(other).to_owned(),
            }
        ))),
    }
}

fn millis(key: &str, value: &Value, min: u64) -> Result<Duration> {
    integer(key, value, min, MAX_MS).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_overrides_defaults() {
        let c = Config::from_json(
            r#"{"baseUrl":"http://127.0.0.1:9/","timeoutMs":1500,"maxRetries":0,"pollIntervalMs":250}"#,
        )
        .expect("valid");
        assert_eq!(c.base().expect("base"), "http://127.0.0.1:9");
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(c.max_retries, 0);
        assert_eq!(c.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    }

    #[test]
    fn bad_config_is_refused_by_name() {
        for (json, want) in [
            (r#"{"baseURL":"x"}"#, "unknown key `baseURL`"),
            (r#"{"timeoutMs":"5"}"#, "`timeoutMs` must be an integer"),
            (
                r#"{"timeoutMs":0}"#,
                "`timeoutMs` must be an integer from 1",
            ),
            (
                r#"{"pollIntervalMs":10}"#,
                "`pollIntervalMs` must be an integer from 200",
            ),
            (r#"{"maxRetries":-1}"#, "`maxRetries`"),
            (r#"{"baseUrl":"http://example.com"}"#, "cleartext"),
            (r#"{"baseUrl":"ftp://example.com"}"#, "base URL"),
            (r#"{"userAgent":"a\r\nb"}"#, "`userAgent`"),
            (r#"{"clientID":"a"}"#, "go together"),
            (r#"{"caFile":""}"#, "`caFile` is empty"),
            (r#"{"caFile":1}"#, "`caFile` must be a string"),
            (
                r#"{"clientID":"","clientSecret":"s"}"#,
                "`clientID` is empty",
            ),
        ] {
            let e = Config::from_json(json).expect_err(json);
            assert_eq!(e.status(), crate::Status::InvalidArgument, "{json}");
            assert!(e.message().contains(want), "{json}: {}", e.message());
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let c = Config::from_json(r#"{"clientID":"id","clientSecret":"hunter2"}"#).expect("ok");
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
