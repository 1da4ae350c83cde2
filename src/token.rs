//! The access token: checked once, never printed.

use std::fmt;

use ureq::http::HeaderValue;

use crate::error::{Error, Result};
use crate::per_thread::PerThread;
use crate::recent::{recent, Cache};

/// Longest token accepted, in bytes. Real tokens are JWTs of a few hundred bytes.
pub const MAX_TOKEN_LEN: usize = 8192;

/// A checked access token. Its `Debug` output is redacted, so it cannot leak through a log line.
/// Held as its ready `Authorization` value (`Bearer <token>`, marked sensitive): built once,
/// one allocation, shared by every request that carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(HeaderValue);

/// What precedes the token in its header value.
const BEARER: &str = "Bearer ";

impl Token {
    /// Checks `raw`: non-empty printable ASCII without spaces (so CR/LF can never reach a
    /// header). A leading `Bearer ` is accepted and removed, so it is not doubled.
    pub fn new(raw: &str) -> Result<Token> {
        let bare = strip_bearer(raw);
        if bare.is_empty() {
            return Err(Error::invalid("token is empty"));
        }
        if bare.len() > MAX_TOKEN_LEN {
            return Err(Error::invalid(format!(
                "token is {} bytes, longer than the limit of {MAX_TOKEN_LEN}",
                bare.len()
            )));
        }
        // Say where the offending byte is, never what the token is.
        if let Some(pos) = bare.bytes().position(|b| !(0x21..=0x7e).contains(&b)) {
            // Counted in the caller's string, `Bearer ` included.
            let pos = pos + (raw.len() - bare.len());
            return Err(Error::invalid(format!(
                "token has a space, control or non-ASCII character at byte {pos}"
            )));
        }
        let mut value = String::with_capacity(BEARER.len() + bare.len());
        value.push_str(BEARER);
        value.push_str(bare);
        // Visible ASCII only (checked above), which a header value always accepts.
        let mut value = HeaderValue::try_from(value)
            .map_err(|_| Error::invalid("token cannot be sent in a header"))?;
        value.set_sensitive(true);
        Ok(Token(value))
    }

    /// [`Token::new`] for a token this thread used lately: the checked value is reused (a
    /// clone shares its bytes), so a program that passes the same token to every call does not
    /// build and copy it each time (the thread's cache of [`crate::recent`], as the secret
    /// removal's prepared tokens). A refused token is not kept.
    pub(crate) fn recent(raw: &str) -> Result<Token> {
        static RECENT: PerThread<Cache<Token>> =
            PerThread::new(|| std::cell::RefCell::new(Vec::new()));
        recent(&RECENT, raw.as_bytes(), || Token::new(raw))
    }

    /// The bare token, without `Bearer `.
    pub fn as_str(&self) -> &str {
        // Visible ASCII after the prefix, as `new` checked.
        (self.0.as_bytes().get(BEARER.len()..))
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }

    /// The bare token's bytes (visible ASCII), without the UTF-8 check of [`Token::as_str`].
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes().get(BEARER.len()..).unwrap_or_default()
    }

    /// The `Authorization` header value.
    pub(crate) fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }
}

fn strip_bearer(raw: &str) -> &str {
    match raw.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => raw[7..].trim_start_matches(' '),
        _ => raw,
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_prefix_is_accepted_and_not_doubled() {
        let t = Token::new("Bearer abc.def").expect("valid");
        assert_eq!(t.as_str(), "abc.def");
        assert_eq!(t.header_value(), "Bearer abc.def");
        assert_eq!(t.as_str(), "abc.def");
        assert_eq!(Token::new("bearer  x").expect("valid").as_str(), "x");
    }

    #[test]
    fn a_recent_token_is_the_same_token_and_a_bad_one_is_never_kept() {
        let a = Token::recent("abc.def").expect("valid");
        assert_eq!(Token::recent("abc.def").expect("valid"), a);
        assert_eq!(
            Token::recent("Bearer abc.def").expect("valid").as_str(),
            "abc.def"
        );
        for _ in 0..2 {
            assert!(Token::recent("bad token").is_err());
        }
        for i in 0..6 {
            let t = format!("tok{i}");
            assert_eq!(Token::recent(&t).expect("valid").as_str(), t);
        }
        assert_eq!(Token::recent("abc.def").expect("valid"), a);
    }

    #[test]
    fn a_bad_byte_is_located_in_the_callers_string() {
        let e = Token::new("Bearer Bearer test-token").expect_err("space");
        assert!(e.message().contains("at byte 13"), "{}", e.message());
    }

    #[test]
    fn bad_tokens_are_refused_without_echoing_them() {
        for bad in [
            "",
            "Bearer ",
            "se cret",
            "secret\r\nX-Evil: 1",
            "secr\u{e9}t",
            "tab\tsecret",
        ] {
            let e = Token::new(bad).expect_err(bad);
            assert!(
                !bad.is_empty() && !e.message().contains("secret")
                    || bad.is_empty()
                    || bad == "Bearer "
            );
            assert!(e.message().starts_with("token "), "{}", e.message());
        }
        assert!(Token::new(&"a".repeat(MAX_TOKEN_LEN + 1)).is_err());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = Token::new("s3cr3t").expect("valid");
        assert!(!format!("{t:?}").contains("s3cr3t"));
    }
}
