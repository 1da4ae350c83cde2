//! The one place where secrets are removed, and where text bound for C is made safe to print.
//!
//! Every string the library hands out — error messages, trace IDs, and the quotes of server
//! text inside them — passes through [`scrub`] (remove secrets) and [`printable`] (escape
//! control characters, cut to length), in that order: a secret cut in half by a length limit
//! would no longer be found whole.
//!
//! A secret is removed not only whole but in part: every stretch of text that shares
//! [`WINDOW`] or more consecutive bytes with the secret is replaced by `<redacted>`, so that a
//! server page which reflects 33 characters of a token, or a quote cut in the middle of one,
//! gives nothing away. The secret is looked for in each form a server may echo it in: as
//! sent, JSON-escaped (minimal, with `\/`, and ASCII-only with `\uXXXX`), percent-encoded
//! (RFC 3986 §2.1, all reserved characters, or all but `/`, or form-encoded with `+`), and
//! HTML-escaped. ASCII letters are compared without regard to case (percent-encoding's hex
//! digits may be either case). Secrets shorter than [`WINDOW`] bytes are removed where they
//! occur whole.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

/// What replaces a secret.
pub(crate) const REDACTED: &str = "<redacted>";
/// The length in bytes of the shortest piece of a secret that is looked for.
pub(crate) const WINDOW: usize = 8;
/// Secrets (in any form) shorter than this are not looked for at all: they would match
/// ordinary words.
const MIN_SHORT: usize = 3;
/// Sets bit 5 of every byte: ASCII letters compare without case (a few punctuation pairs,
/// such as `@` and `` ` ``, compare equal too, which only ever removes more).
const FOLD: u64 = 0x2020_2020_2020_2020;

/// One secret, prepared for [`scrub`]: every [`WINDOW`]-byte piece of each of its forms, and
/// the forms too short to have one.
pub(crate) struct Secret {
    windows: WindowSet,
    short: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// Prepares `secret` (an empty one matches nothing).
    pub(crate) fn new(secret: &str) -> Secret {
        let mut pieces = Vec::new();
        let mut short = Vec::new();
        for form in forms(secret) {
            if form.len() >= WINDOW {
                pieces.extend(form.windows(WINDOW).map(fold));
            } else if form.len() >= MIN_SHORT {
                short.push(form);
            }
        }
        Secret {
            windows: WindowSet::new(&pieces),
            short,
        }
    }
}

/// The prepared form of an access token, reused while a thread keeps using the same token
/// (building one costs a few thousand instructions; looking one up costs a comparison).
pub(crate) fn token_secret(token: &str) -> Rc<Secret> {
    thread_local! {
        static RECENT: RefCell<Vec<(Box<str>, Rc<Secret>)>> = const { RefCell::new(Vec::new()) };
    }
    let found = RECENT.try_with(|r| {
        r.try_borrow()
            .ok()?
            .iter()
            .find(|(t, _)| **t == *token)
            .map(|(_, s)| Rc::clone(s))
    });
    if let Ok(Some(s)) = found {
        return s;
    }
    let s = Rc::new(Secret::new(token));
    // During thread teardown the cache is gone: the secret is simply not kept.
    let _ = RECENT.try_with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            if r.len() >= 4 {
                r.remove(0);
            }
            r.push((token.into(), Rc::clone(&s)));
        }
    });
    s
}

/// `text` with every piece of every secret replaced by `<redacted>`.
pub(crate) fn scrub<'t>(text: &'t str, secrets: &[&Secret]) -> Cow<'t, str> {
    let bytes = text.as_bytes();
    if secrets.is_empty() || bytes.len() < MIN_SHORT {
        return Cow::Borrowed(text);
    }
    // Byte ranges to remove, in order of their start, merged as they are found.
    let mut hits: Vec<(usize, usize)> = Vec::new();
    let add = merge_push;
    if bytes.len() >= WINDOW && secrets.iter().any(|s| !s.windows.is_empty()) {
        for (i, w) in bytes.windows(WINDOW).enumerate() {
            let w = fold(w);
            if secrets.iter().any(|s| s.windows.contains(w)) {
                add(i, i + WINDOW, &mut hits);
            }
        }
    }
    let mut short_hits = Vec::new();
    for form in secrets.iter().flat_map(|s| &s.short) {
        let mut from = 0;
        while let Some(at) = find(&bytes[from..], form) {
            short_hits.push((from + at, from + at + form.len()));
            from += at + 1;
        }
    }
    if !short_hits.is_empty() {
        hits.extend(short_hits);
        hits.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(hits.len());
        for (s, e) in hits {
            add(s, e, &mut merged);
        }
        hits = merged;
    }
    if hits.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in hits {
        // Whole characters only: a secret's bytes may begin or end inside one.
        let start = floor_char(text, start.max(at));
        let end = ceil_char(text, end);
        out.push_str(&text[at..start.max(at)]);
        if !out.ends_with(REDACTED) {
            out.push_str(REDACTED);
        }
        at = end.max(at);
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// `s` with C0 and C1 control characters, DEL and the Unicode line and paragraph separators
/// escaped (`\n`, `\u{2028}`, ...), cut to at most `max` characters (then `...` is appended):
/// fit to quote in a message or hand to a host program's log. Valid UTF-8 by construction.
pub(crate) fn printable(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max.saturating_add(3)));
    for (n, c) in s.chars().enumerate() {
        if n == max {
            out.push_str("...");
            break;
        }
        if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Server or user text quoted in a message: secrets removed first, then escaped and cut.
pub(crate) fn quote(s: &str, max: usize, secrets: &[&Secret]) -> String {
    printable(&scrub(s, secrets), max)
}

/// Adds the range `start..end` to ranges sorted by start, merging it with the last one when
/// they touch.
fn merge_push(start: usize, end: usize, hits: &mut Vec<(usize, usize)>) {
    match hits.last_mut() {
        Some(last) if start <= last.1 => last.1 = last.1.max(end),
        _ => hits.push((start, end)),
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i.min(s.len())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn fold(w: &[u8]) -> u64 {
    let mut b = [0u8; WINDOW];
    b.copy_from_slice(w);
    u64::from_le_bytes(b) | FOLD
}

/// The forms in which a server may echo `secret`, without duplicates.
fn forms(secret: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut push = |f: String| {
        let f = f.into_bytes();
        if !f.is_empty() && !out.contains(&f) {
            out.push(f);
        }
    };
    push(secret.to_owned());
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json.get(1..json.len().saturating_sub(1)).unwrap_or("");
    push(json.to_owned());
    push(json.replace('/', "\\/"));
    let mut ascii = String::new();
    for c in json.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    push(ascii);
    let percent = |keep: &[u8], plus: bool| {
        let mut s = String::new();
        for b in secret.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
                s.push(char::from(b));
            } else if plus && b == b' ' {
                s.push('+');
            } else {
                s.push_str(&format!("%{b:02X}"));
            }
        }
        s
    };
    push(percent(b"", false));
    push(percent(b"/", false));
    push(percent(b"", true));
    let mut html = String::new();
    for c in secret.chars() {
        match c {
            '&' => html.push_str("&amp;"),
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#x27;"),
            c => html.push(c),
        }
    }
    push(html);
    out
}

/// A set of folded windows: open addressing over a power-of-two table, 0 marking a free slot
/// (a folded window is never 0).
struct WindowSet {
    slots: Vec<u64>,
    shift: u32,
}

impl WindowSet {
    fn new(items: &[u64]) -> WindowSet {
        if items.is_empty() {
            return WindowSet {
                slots: Vec::new(),
                shift: 64,
            };
        }
        let size = (items.len() * 2).next_power_of_two().max(16);
        let mut set = WindowSet {
            slots: vec![0; size],
            shift: 64 - size.trailing_zeros(),
        };
        for &w in items {
            let mask = set.slots.len() - 1;
            let mut i = set.slot(w);
            while set.slots[i] != 0 && set.slots[i] != w {
                i = (i + 1) & mask;
            }
            set.slots[i] = w;
        }
        set
    }

    fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn slot(&self, w: u64) -> usize {
        (w.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    fn contains(&self, w: u64) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.slot(w);
        loop {
            match self.slots[i] {
                0 => return false,
                s if s == w => return true,
                _ => i = (i + 1) & mask,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubbed(text: &str, secret: &str) -> String {
        scrub(text, &[&Secret::new(secret)]).into_owned()
    }

    /// Whether `text` holds any piece of `secret` of `WINDOW` or more bytes.
    fn leaks(text: &str, secret: &str) -> bool {
        let s = secret.as_bytes();
        s.windows(WINDOW.min(s.len()))
            .any(|w| text.as_bytes().windows(w.len()).any(|t| t == w))
    }

    const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";

    #[test]
    fn whole_and_partial_secrets_are_removed() {
        for text in [
            format!("Authorization: Bearer {TOKEN}"),
            format!("reflected: {}", &TOKEN[10..43]),
            format!("cut: {}...", &TOKEN[..TOKEN.len() - 1]),
            format!("{}{}", &TOKEN[5..20], &TOKEN[60..70]),
            TOKEN.to_ascii_uppercase(),
        ] {
            let out = scrubbed(&text, TOKEN);
            assert!(!leaks(&out, TOKEN), "{text} -> {out}");
            assert!(!leaks(&out, &TOKEN.to_ascii_uppercase()), "{text} -> {out}");
            assert!(out.contains(REDACTED), "{out}");
        }
        assert_eq!(
            scrubbed("nothing to see here", TOKEN),
            "nothing to see here"
        );
    }

    #[test]
    fn encoded_forms_are_removed() {
        let secret = "p@ss/w\"ord with spaces & <more> é";
        for form in [
            secret.to_owned(),
            serde_json::to_string(secret)
                .expect("json")
                .trim_matches('"')
                .to_owned(),
            "p%40ss%2Fw%22ord%20with%20spaces%20%26%20%3Cmore%3E%20%C3%A9".to_owned(),
            "p%40ss/w%22ord+with+spaces+%26+%3cmore%3e+%c3%a9".to_owned(),
            "p@ss\\/w\\\"ord with spaces & <more> \\u00e9".to_owned(),
            "p@ss/w&quot;ord with spaces &amp; &lt;more&gt; é".to_owned(),
        ] {
            let out = scrubbed(&format!("[{form}]"), secret);
            assert_eq!(out, format!("[{REDACTED}]"), "{form}");
        }
    }

    #[test]
    fn short_secrets_are_removed_whole_and_tiny_ones_ignored() {
        assert_eq!(
            scrubbed("http://admin:hunter2@h", "hunter2"),
            format!("http://admin:{REDACTED}@h")
        );
        assert_eq!(scrubbed("a b c", "b"), "a b c");
    }

    #[test]
    fn multibyte_text_stays_valid_utf8() {
        let secret = "秘密のパスワードです";
        let out = scrubbed(&format!("前{}後", &secret[3..]), secret);
        assert_eq!(out, format!("前{REDACTED}後"));
    }

    #[test]
    fn printable_escapes_controls_and_separators_and_cuts() {
        assert_eq!(printable("a\r\nb\u{7f}", 10), "a\\r\\nb\\u{7f}");
        assert_eq!(
            printable("x\u{2028}y\u{2029}\u{85}", 10),
            "x\\u{2028}y\\u{2029}\\u{85}"
        );
        assert_eq!(printable("abcdef", 3), "abc...");
    }

    #[test]
    fn the_token_cache_gives_the_same_secret() {
        let a = token_secret(TOKEN);
        let b = token_secret(TOKEN);
        assert!(Rc::ptr_eq(&a, &b));
    }
}
