//! The network route: whether a client's requests go through a proxy, and which.
//!
//! The library owns this choice rather than taking ureq's reading of the environment, so that
//! it follows the conventions curl, Go and Python share (the README's "Proxies" table):
//!
//! - for an https base URL: `https_proxy`, then `HTTPS_PROXY`, then `all_proxy`, then
//!   `ALL_PROXY` (the first one set and not empty). `http_proxy` never: it is for http URLs,
//!   and CGI programs get `HTTP_PROXY` from a request header ("httpoxy");
//! - a base URL whose host is `localhost` or a loopback address never takes a proxy from the
//!   environment (as in Go);
//! - `no_proxy`, then `NO_PROXY` (or the `noProxy` key): comma-separated entries, trimmed,
//!   without regard to case; `*` matches every host; `example.com`, `.example.com` and
//!   `*.example.com` match the domain and its subdomains; `host:port` matches that port only;
//!   IP addresses match themselves and `10.0.0.0/8`-style CIDR ranges their members;
//! - schemes `http`, `https`, `socks4`, `socks4a`, `socks5` (the target's name is resolved
//!   here) and `socks5h` (the proxy resolves it), in any case; without a scheme, `http`.
//!   Default ports 80, 443 and 1080.
//!
//! A proxy URL that cannot be used is refused, naming where it came from — never ignored.
//! A plain-http (loopback) base URL is never sent through a proxy that is not itself on
//! loopback: the token would cross the network in cleartext.

use std::net::IpAddr;

use crate::config::{Config, Pins};
use crate::error::{Error, Result};
use crate::redact::printable;
use crate::url::HttpUrl;

/// The proxy a client uses, if any.
#[derive(Debug, Default)]
pub(crate) struct Route {
    /// The proxy, ready for ureq's connector chain.
    pub proxy: Option<ureq::Proxy>,
    /// Where it came from, for messages: `config \`proxy\`` or `$https_proxy`.
    pub source: String,
    /// The proxy's URL with its password hidden, for messages and logs.
    pub shown: String,
    /// The password of the proxy URL (a secret), if it has one.
    pub password: Option<String>,
}

/// The environment variables consulted for an https base URL, in order.
pub const HTTPS_PROXY_VARS: [&str; 4] = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];
/// The environment variables consulted for `noProxy`, in order.
pub const NO_PROXY_VARS: [&str; 2] = ["no_proxy", "NO_PROXY"];

/// Chooses the route to `base` for this configuration, reading the environment through
/// `env` (so that tests can give one of their own).
pub(crate) fn route(
    config: &Config,
    base: &HttpUrl<'_>,
    pins: &Pins,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Route> {
    let first_set = |names: &[&'static str]| -> Option<(String, &'static str)> {
        names
            .iter()
            .find_map(|n| env(n).filter(|v| !v.is_empty()).map(|v| (v, *n)))
    };
    let (url, source) = match config.proxy.as_deref() {
        Some("") => return Ok(Route::default()),
        Some(p) => (p.to_owned(), "config `proxy`".to_owned()),
        // As in Go: `localhost` and loopback addresses, not names that `resolve` maps to one
        // (curl's --resolve does not change the proxy either).
        None if base.is_loopback() => return Ok(Route::default()),
        None if !base.https => return Ok(Route::default()),
        None => match first_set(&HTTPS_PROXY_VARS) {
            Some((v, name)) => (v, format!("${name}")),
            None => return Ok(Route::default()),
        },
    };
    let parsed = ProxyUrl::parse(&url).map_err(|why| {
        Error::invalid(format!(
            "{source} `{}` is not a usable proxy URL: it {why}",
            printable(&hide_userinfo(&url), 200)
        ))
    })?;
    let no_proxy = match config.no_proxy.as_deref() {
        Some(list) => Some(list.to_owned()),
        None => first_set(&NO_PROXY_VARS).map(|(v, _)| v),
    };
    if no_proxy.is_some_and(|list| no_proxy_matches(&list, base.host, base.port_or_default())) {
        return Ok(Route::default());
    }
    if !base.https && !parsed.is_loopback(pins) {
        return Err(Error::invalid(format!(
            "{source} `{}` is not on loopback, and the base URL is plain http: the access \
             token would cross the network in cleartext through the proxy; use a proxy on \
             loopback or an https base URL",
            parsed.shown()
        )));
    }
    let proxy = ureq::Proxy::new(&parsed.normalized()).map_err(|e| {
        Error::invalid(format!(
            "{source} `{}` is not a usable proxy URL: {e}",
            parsed.shown()
        ))
    })?;
    Ok(Route {
        proxy: Some(proxy),
        source,
        shown: parsed.shown(),
        password: parsed.password,
    })
}

/// The password in a URL of the configuration, if it has one (to be kept out of messages
/// even before the URL is checked, typos included): what follows the first `:` of the user
/// information, which runs from after the scheme's `//` (or `:`, or the start) to the last
/// `@` of the text.
pub(crate) fn password_of(url: &str) -> Option<String> {
    let (userinfo, _) = userinfo_span(url)?;
    let (_, pass) = url[userinfo].split_once(':')?;
    Some(
        percent_encoding::percent_decode_str(pass)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// Where the user information of `url` is (a byte range), if it has any: up to its last `@`,
/// whatever characters the password holds.
fn userinfo_span(url: &str) -> Option<(std::ops::Range<usize>, usize)> {
    let at = url.rfind('@')?;
    let start = url[..at]
        .find("://")
        .map(|i| i + 3)
        .or_else(|| url[..at].find(":/").map(|i| i + 2))
        .unwrap_or(0);
    let start = start + url[start..at].bytes().take_while(|b| *b == b'/').count();
    Some((start..at, at))
}

/// `url` with its user information replaced by `***`, and a "port" that is not a number
/// (a password whose host was forgotten: `http://user:Secret`) hidden too.
pub(crate) fn hide_userinfo(url: &str) -> String {
    if let Some((span, at)) = userinfo_span(url) {
        return format!("{}***{}", &url[..span.start], &url[at..]);
    }
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after + i);
    match url[after..end].rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && !port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}{host}:***{}", &url[..after], &url[end..])
        }
        _ => url.to_owned(),
    }
}

/// A checked proxy URL.
#[derive(Debug)]
struct ProxyUrl {
    scheme: &'static str,
    /// The userinfo as written (still percent-encoded), when there is one.
    userinfo: Option<String>,
    password: Option<String>,
    host: String,
    port: u16,
}

impl ProxyUrl {
    fn parse(url: &str) -> std::result::Result<ProxyUrl, String> {
        if let Some(c) = url.chars().find(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!(
                "contains a space or control character ({})",
                c.escape_default()
            ));
        }
        let (scheme, after) = match url.split_once("://") {
            Some((s, a)) => (s.to_ascii_lowercase(), a),
            None => ("http".to_owned(), url),
        };
        let (scheme, default_port) = match scheme.as_str() {
            "http" => ("http", 80),
            "https" => ("https", 443),
            "socks4" => ("socks4", 1080),
            "socks4a" => ("socks4a", 1080),
            "socks5" => ("socks5", 1080),
            "socks5h" => ("socks5h", 1080),
            _ => {
                return Err(format!(
                    "has the scheme `{}`, not one of http, https, socks4, socks4a, socks5, socks5h",
                    printable(&scheme, 20)
                ))
            }
        };
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(end);
        if !rest.is_empty() && rest != "/" {
            return Err("has a path, query or fragment, which a proxy URL does not have".into());
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let mut password = None;
        if let Some(u) = userinfo {
            if !u.bytes().all(|b| b.is_ascii_graphic() && b != b'@') {
                return Err("has a user name or password with characters that must be \
                            percent-encoded"
                    .into());
            }
            let (user, pass) = u.split_once(':').map_or((u, None), |(a, b)| (a, Some(b)));
            for part in std::iter::once(user).chain(pass) {
                percent_encoding::percent_decode_str(part)
                    .decode_utf8()
                    .map_err(|_| "has a user name or password that is not UTF-8 once decoded")?;
            }
            password = pass.map(|p| {
                percent_encoding::percent_decode_str(p)
                    .decode_utf8_lossy()
                    .into_owned()
            });
        }
        let (host, port) = crate::url::split_host_port(hostport)?;
        check_host(host)?;
        let port = match port {
            None => default_port,
            Some(p) => crate::url::parse_port(p)?,
        };
        Ok(ProxyUrl {
            scheme,
            userinfo: userinfo.map(str::to_owned),
            password,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn host_for_url(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// The URL as ureq reads it: scheme in lower case, explicit port.
    fn normalized(&self) -> String {
        let userinfo = self
            .userinfo
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        format!(
            "{}://{userinfo}{}:{}",
            self.scheme,
            self.host_for_url(),
            self.port
        )
    }

    /// The URL for messages, with the user name and password hidden.
    fn shown(&self) -> String {
        let userinfo = if self.userinfo.is_some() { "***@" } else { "" };
        format!(
            "{}://{userinfo}{}:{}",
            self.scheme,
            self.host_for_url(),
            self.port
        )
    }

    fn is_loopback(&self, pins: &Pins) -> bool {
        self.host == "localhost"
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
            || pins.is_loopback(&self.host, self.port)
    }
}

/// A host name (ASCII letters, digits, `-`, `.`, `_`) or an IP address.
pub(crate) fn check_host(host: &str) -> std::result::Result<(), String> {
    if host.is_empty() {
        return Err("has no host".into());
    }
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if !host.is_ascii() {
        return Err(
            "has a host that is not ASCII: write an internationalised domain name in \
                    its ASCII form (`xn--...`, IDNA / RFC 5891)"
                .into(),
        );
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!(
            "has the character '{}' in its host; a host is ASCII letters, digits, '-', '.' \
             and '_'",
            c.escape_default()
        ));
    }
    if host.starts_with('.') || host.contains("..") {
        return Err("has an empty label in its host".into());
    }
    Ok(())
}

/// Whether a `no_proxy` list covers `host` (lower case, IPv6 without brackets) at `port`.
pub(crate) fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let ip = host.parse::<IpAddr>().ok();
    list.split(',')
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            // `host:port` or `[v6]:port`; a bare IPv6 address or CIDR range has colons of
            // its own.
            let (name, entry_port) = match crate::url::split_host_port(&entry) {
                _ if entry.contains('/') => (entry.clone(), None),
                Ok((h, Some(p))) if entry.parse::<IpAddr>().is_err() => {
                    match crate::url::parse_port(p) {
                        Ok(p) => (h.to_owned(), Some(p)),
                        Err(_) => return false,
                    }
                }
                Ok((h, None)) => (h.to_owned(), None),
                _ => (entry.clone(), None),
            };
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            if let Some((net, bits)) = name.split_once('/') {
                return match (ip, net.parse::<IpAddr>(), bits.parse::<u8>()) {
                    (Some(ip), Ok(net), Ok(bits)) => in_cidr(ip, net, bits),
                    _ => false,
                };
            }
            if let Ok(entry_ip) = name.parse::<IpAddr>() {
                return ip == Some(entry_ip);
            }
            let domain = name
                .trim_start_matches("*.")
                .trim_start_matches('.')
                .trim_end_matches('.');
            !domain.is_empty()
                && (host == domain
                    || (host.len() > domain.len()
                        && host.ends_with(domain)
                        && host.as_bytes()[host.len() - domain.len() - 1] == b'.'))
        })
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url::parse_http_url;

    fn choose(config: &str, base: &str, env: &[(&str, &str)]) -> Result<Route> {
        let mut c = Config::from_json(config)?;
        c.base_url = base.to_owned();
        let pins = Pins::parse(&c.resolve).expect("pins");
        let u = parse_http_url(base).expect("base");
        route(&c, &u, &pins, &|name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    fn shown(config: &str, base: &str, env: &[(&str, &str)]) -> String {
        match choose(config, base, env) {
            Ok(r) if r.proxy.is_some() => format!("{} from {}", r.shown, r.source),
            Ok(_) => "direct".to_owned(),
            Err(e) => format!("error: {}", e.message()),
        }
    }

    const API: &str = "https://open-api.123pan.com";

    #[test]
    fn environment_variables_in_the_order_curl_reads_them() {
        for (env, want) in [
            (vec![], "direct"),
            (
                vec![("HTTPS_PROXY", "http://p:3128")],
                "http://p:3128 from $HTTPS_PROXY",
            ),
            (
                vec![
                    ("https_proxy", "http://lower:1"),
                    ("HTTPS_PROXY", "http://upper:2"),
                ],
                "http://lower:1 from $https_proxy",
            ),
            (
                vec![
                    ("ALL_PROXY", "socks5://a:7890"),
                    ("HTTPS_PROXY", "http://h:1"),
                ],
                "http://h:1 from $HTTPS_PROXY",
            ),
            (
                vec![("all_proxy", "socks5://127.0.0.1:7890")],
                "socks5://127.0.0.1:7890 from $all_proxy",
            ),
            (
                vec![("ALL_PROXY", "SOCKS5H://a")],
                "socks5h://a:1080 from $ALL_PROXY",
            ),
            (
                vec![("HTTP_PROXY", "http://h:1"), ("http_proxy", "http://h:1")],
                "direct",
            ),
            (
                vec![("https_proxy", ""), ("HTTPS_PROXY", "http://u:9")],
                "http://u:9 from $HTTPS_PROXY",
            ),
            (
                vec![("https_proxy", "HTTPS://P")],
                "https://p:443 from $https_proxy",
            ),
            (
                vec![("https_proxy", "p.corp:8080")],
                "http://p.corp:8080 from $https_proxy",
            ),
            (
                vec![("https_proxy", "http://user:pa%40ss@p:1")],
                "http://***@p:1 from $https_proxy",
            ),
        ] {
            assert_eq!(shown("{}", API, &env), want, "{env:?}");
        }
    }

    #[test]
    fn unusable_proxy_urls_are_refused_by_their_source() {
        for (config, env, want) in [
            (
                "{}",
                vec![("https_proxy", "http://p:99999")],
                "$https_proxy",
            ),
            ("{}", vec![("https_proxy", "ftp://p:1")], "scheme `ftp`"),
            ("{}", vec![("ALL_PROXY", "socks://p")], "$ALL_PROXY"),
            (r#"{"proxy":"http://p:0"}"#, vec![], "config `proxy`"),
            (r#"{"proxy":"http://"}"#, vec![], "no host"),
            (r#"{"proxy":"http://p:1/path"}"#, vec![], "has a path"),
            (r#"{"proxy":"http://ü.example:1"}"#, vec![], "not ASCII"),
            (r#"{"proxy":"http://a b:1"}"#, vec![], "space"),
            (r#"{"proxy":"http://[::1:1"}"#, vec![], "config `proxy`"),
        ] {
            let got = shown(config, API, &env);
            assert!(
                got.starts_with("error: ") && got.contains(want),
                "{config} {env:?}: {got}"
            );
        }
        let e = shown(r#"{"proxy":"http://admin:hunter2@p:99999"}"#, API, &[]);
        assert!(!e.contains("hunter2") && e.contains("***@p"), "{e}");
    }

    #[test]
    fn loopback_base_urls_take_no_proxy_from_the_environment() {
        let env = [("https_proxy", "http://p:1"), ("all_proxy", "http://p:1")];
        assert_eq!(shown("{}", "http://127.0.0.1:8080", &env), "direct");
        assert_eq!(shown("{}", "https://localhost:8443", &env), "direct");
        assert_eq!(
            shown(
                r#"{"resolve":["pan.test:443:127.0.0.1"]}"#,
                "https://pan.test",
                &env
            ),
            "http://p:1 from $https_proxy"
        );
    }

    #[test]
    fn a_cleartext_base_goes_only_through_a_loopback_proxy() {
        let base = "http://127.0.0.1:8080";
        let e = shown(r#"{"proxy":"http://proxy.example:3128"}"#, base, &[]);
        assert!(
            e.contains("config `proxy`") && e.contains("cleartext"),
            "{e}"
        );
        let e = shown(r#"{"proxy":"socks5://10.1.1.1:1080"}"#, base, &[]);
        assert!(e.contains("cleartext"), "{e}");
        assert_eq!(
            shown(r#"{"proxy":"http://127.0.0.1:3128"}"#, base, &[]),
            "http://127.0.0.1:3128 from config `proxy`"
        );
        assert_eq!(
            shown(r#"{"proxy":"socks5h://localhost:7890"}"#, base, &[]),
            "socks5h://localhost:7890 from config `proxy`"
        );
    }

    #[test]
    fn no_proxy_lists_as_curl_reads_them() {
        for (list, host, port, want) in [
            ("*", "open-api.123pan.com", 443, true),
            ("123pan.com", "open-api.123pan.com", 443, true),
            (" .123PAN.com ", "open-api.123pan.com", 443, true),
            ("*.123pan.com", "open-api.123pan.com", 443, true),
            ("123pan.com", "123pan.com", 443, true),
            ("pan.com", "open-api.123pan.com", 443, false),
            (
                "x,  open-api.123pan.com:443",
                "open-api.123pan.com",
                443,
                true,
            ),
            (
                "open-api.123pan.com:8443",
                "open-api.123pan.com",
                443,
                false,
            ),
            ("10.0.0.0/8", "10.2.3.4", 443, true),
            ("10.0.0.0/8", "11.2.3.4", 443, false),
            ("192.168.1.7", "192.168.1.7", 443, true),
            ("::1", "::1", 443, true),
            ("[::1]:443", "::1", 443, true),
            ("fd00::/8", "fd12::1", 443, true),
            ("0.0.0.0/0", "8.8.8.8", 443, true),
            ("", "a.b", 443, false),
        ] {
            assert_eq!(
                no_proxy_matches(list, host, port),
                want,
                "{list} / {host}:{port}"
            );
        }
        let env = [
            ("https_proxy", "http://p:1"),
            ("no_proxy", "123pan.com"),
            ("NO_PROXY", "x"),
        ];
        assert_eq!(shown("{}", API, &env), "direct");
        let env = [("https_proxy", "http://p:1"), ("NO_PROXY", "123pan.com")];
        assert_eq!(shown("{}", API, &env), "direct");
        assert_eq!(
            shown(r#"{"proxy":"http://p:1","noProxy":"*"}"#, API, &[]),
            "direct"
        );
        assert_eq!(
            shown(
                r#"{"noProxy":""}"#,
                API,
                &[("https_proxy", "http://p:1"), ("no_proxy", "*")]
            ),
            "http://p:1 from $https_proxy"
        );
    }

    #[test]
    fn passwords_are_found_and_hidden() {
        assert_eq!(password_of("http://u:p%40ss@h:1").as_deref(), Some("p@ss"));
        assert_eq!(password_of("http://h:1"), None);
        assert_eq!(hide_userinfo("socks5://u:pw@h:1/x"), "socks5://***@h:1/x");
        assert_eq!(hide_userinfo("u:pw@h"), "***@h");
        for (typo, shown) in [
            (
                "http:/u:Secret-Password-99@127.0.0.1:1",
                "http:/***@127.0.0.1:1",
            ),
            ("http//u:Secret-Password-99@h", "***@h"),
            ("http:///u:Secret-Password-99@h", "http:///***@h"),
            ("//u:Secret-Password-99@h", "//***@h"),
            ("http://u:Secret-Password-99", "http://u:***"),
            (
                "http://u:p@ss:w/rd#LongSecret?x@127.0.0.1:99999",
                "http://***@127.0.0.1:99999",
            ),
            ("http://h:8080/a", "http://h:8080/a"),
        ] {
            assert_eq!(hide_userinfo(typo), shown, "{typo}");
        }
        assert_eq!(
            password_of("http://u:p@ss:w/rd#LongSecret?x@127.0.0.1:99999").as_deref(),
            Some("p@ss:w/rd#LongSecret?x")
        );
    }
}
