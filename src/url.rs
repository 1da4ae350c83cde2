//! Just enough URL checking for what the library needs: is this an absolute `http`/`https` URL
//! with a host, and is that host loopback. (The `url` crate would add a dependency tree for this.)

use std::net::{IpAddr, Ipv6Addr};

/// Longest URL accepted anywhere (request fields and base URL), in bytes.
pub const MAX_URL_LEN: usize = 8192;

/// The parts of an absolute `http`/`https` URL that the library looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpUrl<'a> {
    /// `true` for `https`.
    pub https: bool,
    /// The host as written, without IPv6 brackets.
    pub host: &'a str,
    /// The explicit port, if any.
    pub port: Option<u16>,
    /// The user name and password before the host's `@`, as written, if any.
    pub userinfo: Option<&'a str>,
    /// Everything after the authority (path, query, fragment), possibly empty.
    pub rest: &'a str,
}

impl HttpUrl<'_> {
    /// Whether the host is `localhost` or a loopback address (127.0.0.0/8, ::1).
    pub fn is_loopback(&self) -> bool {
        if self.host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The scheme's default port (RFC 9110 §4.2: 80 and 443).
    pub fn default_port(&self) -> u16 {
        if self.https {
            443
        } else {
            80
        }
    }

    /// The port, explicit or the scheme's default.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(self.default_port())
    }

    /// The `Host` field for requests to this URL (RFC 9110 §7.2): the host, bracketed when an
    /// IPv6 address, and the port unless it is the scheme's default (as ureq-proto writes it).
    pub fn host_field(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.to_owned()
        };
        match self.port {
            Some(p) if p != self.default_port() => format!("{host}:{p}"),
            _ => host,
        }
    }
}

/// Splits `host[:port]` or `[v6]:port`; the host comes without brackets.
pub(crate) fn split_host_port(hostport: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(bracketed) = hostport.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| "has an unclosed '[' in its host".to_string())?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err("has an invalid IPv6 address as its host".into());
        }
        match after {
            "" => Ok((host, None)),
            p => match p.strip_prefix(':') {
                Some(p) => Ok((host, Some(p))),
                None => Err("has characters after its IPv6 host".into()),
            },
        }
    } else {
        Ok(match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        })
    }
}

/// A port number: 1 to 65535, digits only (RFC 3986 §3.2.3; port 0 cannot be connected to).
pub(crate) fn parse_port(p: &str) -> Result<u16, String> {
    let valid = !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    match p.parse::<u16>() {
        Ok(n) if valid && n > 0 => Ok(n),
        // Only digits are quoted: text there may be a password whose host was forgotten.
        _ if p.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
            "has the port `{}`, not a number from 1 to 65535",
            crate::redact::printable(p, 20)
        )),
        _ => Err("has a port that is not a number from 1 to 65535".into()),
    }
}

/// Checks `s` and splits it. The error says what is wrong, without repeating the URL.
pub(crate) fn parse_http_url(s: &str) -> Result<HttpUrl<'_>, String> {
    if s.is_empty() {
        return Err("is empty".into());
    }
    if s.len() > MAX_URL_LEN {
        return Err(format!(
            "is {} bytes, longer than the limit of {MAX_URL_LEN}",
            s.len()
        ));
    }
    // ASCII (nearly every URL) is checked by bytes: its controls and whitespace are exactly
    // the bytes up to ' ' and DEL. Other text is checked by character.
    let bad = if s.is_ascii() {
        s.bytes().find(|b| *b <= b' ' || *b == 0x7f).map(char::from)
    } else {
        s.chars().find(|c| c.is_control() || c.is_whitespace())
    };
    if let Some(c) = bad {
        return Err(format!(
            "contains a space or control character ({})",
            c.escape_default()
        ));
    }
    // The scheme ends at the first ':' (RFC 3986 §3.1: it holds none), and "//" begins the
    // authority (§3.2). A byte search: a substring search costs more than the rest here.
    let scheme_end = s.bytes().position(|b| b == b':').unwrap_or(s.len());
    let (scheme, after) = s.split_at(scheme_end);
    let https = match after.strip_prefix("://") {
        Some(_) if scheme.eq_ignore_ascii_case("http") => false,
        Some(_) if scheme.eq_ignore_ascii_case("https") => true,
        _ => return Err("is not an absolute http:// or https:// URL".into()),
    };
    let after = &after[3..];
    // Byte scans: the delimiters are ASCII (a char-set search costs ten times as much here).
    let end = after
        .bytes()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    // Userinfo (user:pass@) is legal in a URL; the host follows the last '@'.
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = split_host_port(hostport)?;
    if host.is_empty() {
        return Err("has no host".into());
    }
    if host.bytes().any(|b| {
        matches!(
            b,
            b'[' | b']' | b'\\' | b'<' | b'>' | b'"' | b'^' | b'`' | b'{' | b'|' | b'}'
        )
    }) {
        return Err("has invalid characters in its host".into());
    }
    let port = match port {
        None => None,
        Some(p) => Some(parse_port(p).map_err(|_| "has an invalid port".to_string())?),
    };
    Ok(HttpUrl {
        https,
        host,
        port,
        userinfo,
        rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_urls() {
        let u = parse_http_url("https://dc.com/resource.jpg?x=1").expect("valid");
        assert!(u.https);
        assert_eq!(u.host, "dc.com");
        assert_eq!(u.port, None);
        assert_eq!(u.rest, "/resource.jpg?x=1");
        let u = parse_http_url("HTTP://user:pw@127.0.0.1:8080").expect("valid");
        assert!(!u.https && u.is_loopback());
        assert_eq!(u.port, Some(8080));
        let u = parse_http_url("http://[::1]:9/x").expect("valid");
        assert_eq!(u.host, "::1");
        assert!(u.is_loopback());
        assert!(parse_http_url("https://例子.测试/文件.mp4").is_ok());
    }

    #[test]
    fn host_field_is_the_authority_without_a_default_port() {
        for (url, want) in [
            ("https://open-api.123pan.com", "open-api.123pan.com"),
            ("https://open-api.123pan.com:443/x", "open-api.123pan.com"),
            (
                "https://open-api.123pan.com:8443",
                "open-api.123pan.com:8443",
            ),
            ("http://127.0.0.1:80", "127.0.0.1"),
            ("http://127.0.0.1:443", "127.0.0.1:443"),
            ("http://[::1]:18080", "[::1]:18080"),
            ("HTTPS://[::1]", "[::1]"),
            ("http://user:pw@h:81", "h:81"),
        ] {
            assert_eq!(parse_http_url(url).expect(url).host_field(), want, "{url}");
        }
    }

    #[test]
    fn refuses_what_is_not_an_http_url() {
        for bad in [
            "",
            "ftp://x/y",
            "magnet:?xt=urn:btih:abc",
            "http://",
            "http:///path",
            "http://host:0/",
            "http://host:70000/",
            "http://host:/",
            "http://ho st/",
            "http://host/\r\nX: y",
            "//host/path",
            "http://[::1/",
            "http://[zz]/",
            "relative/path",
        ] {
            assert!(parse_http_url(bad).is_err(), "accepted {bad:?}");
        }
        let long = format!("http://h/{}", "a".repeat(MAX_URL_LEN));
        assert!(parse_http_url(&long).is_err());
    }

    #[test]
    fn loopback_is_only_loopback() {
        for (u, lo) in [
            ("http://localhost:1", true),
            ("http://127.0.0.2/", true),
            ("http://10.0.0.1/", false),
            ("http://open-api.123pan.com/", false),
            ("http://127.0.0.1.example.com/", false),
        ] {
            assert_eq!(parse_http_url(u).expect(u).is_loopback(), lo, "{u}");
        }
    }
}
