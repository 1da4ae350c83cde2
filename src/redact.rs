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
//! gives nothing away. The text is searched as it is and decoded — percent-escapes (RFC 3986
//! §2.1), JSON escapes (RFC 8259 §7, `\u0041` included) and HTML character references (named
//! and numeric) of any extent — so a secret comes out in no encoding a server may echo it in;
//! form-encoding's `+` for a space is looked for as a form of the secret. ASCII letters are
//! compared without regard to case. After escaping, the
//! text is searched once more: a secret that itself holds `\r` or `\u{0}` as text must not
//! be spelled out by the escapes of what the server sent. Secrets shorter than [`WINDOW`]
//! bytes are removed where they occur whole.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use crate::per_thread::PerThread;
use crate::recent::{recent, Cache};
use crate::token::Token;

/// What replaces a secret.
pub(crate) const REDACTED: &str = "<redacted>";
/// The length in bytes of the shortest piece of a secret that is looked for.
pub(crate) const WINDOW: usize = 8;
/// Secrets (in any form) shorter than this are not looked for at all: they would match
/// ordinary words.
const MIN_SHORT: usize = 3;

/// One secret, prepared for [`scrub`]: every [`WINDOW`]-byte piece of each of its forms, and
/// the forms too short to have one.
pub(crate) struct Secret {
    windows: WindowSet,
    /// A bit per hash of each (folded) run of four bytes of a form: see [`scan`].
    quads: Box<[u64; 1024]>,
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
        let mut quads = Box::new([0u64; 1024]);
        for form in forms(secret) {
            if form.len() >= WINDOW {
                pieces.extend(form.windows(WINDOW).map(word));
                for q in form.windows(4) {
                    let k = quad(q);
                    quads[k >> 6] |= 1 << (k & 63);
                }
            } else if form.len() >= MIN_SHORT {
                short.push(form);
            }
        }
        Secret {
            windows: WindowSet::new(&pieces),
            quads,
            short,
        }
    }
}

/// The prepared form of an access token, reused while a thread keeps using the same token
/// (building one costs a few thousand instructions; looking one up costs a comparison).
pub(crate) fn token_secret(token: &Token) -> Rc<Secret> {
    static RECENT: PerThread<Cache<Rc<Secret>>> = PerThread::new(|| RefCell::new(Vec::new()));
    match recent(&RECENT, token.as_bytes(), || {
        Ok::<_, std::convert::Infallible>(Rc::new(Secret::new(token.as_str())))
    }) {
        Ok(s) => s,
        Err(never) => match never {},
    }
}

/// `text` with every piece of every secret, in any encoding, replaced by `<redacted>`.
pub(crate) fn scrub<'t>(text: &'t str, secrets: &[&Secret]) -> Cow<'t, str> {
    let bytes = text.as_bytes();
    if secrets.is_empty() || bytes.len() < MIN_SHORT {
        return Cow::Borrowed(text);
    }
    // Byte ranges of `text` to remove.
    let mut hits: Vec<(usize, usize)> = Vec::new();
    find(bytes, secrets, &mut |s, e| hits.push((s, e)));
    // The same text decoded, when it holds anything to decode (trace IDs rarely do): each
    // decoded byte knows the span of `text` it came from.
    if bytes.iter().any(|b| matches!(b, b'%' | b'\\' | b'&')) {
        let (decoded, origin) = decode(text);
        find(&decoded, secrets, &mut |s, e| {
            hits.push((origin[s].0, origin[e - 1].1))
        });
    }
    if hits.is_empty() {
        return Cow::Borrowed(text);
    }
    hits.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(hits.len());
    for (s, e) in hits {
        merge_push(s, e, &mut merged);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in merged {
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

/// Calls `hit(start, end)` for each stretch of `bytes` that is a piece of a secret.
fn find(bytes: &[u8], secrets: &[&Secret], hit: &mut dyn FnMut(usize, usize)) {
    if bytes.len() >= WINDOW {
        for secret in secrets.iter().filter(|s| !s.windows.is_empty()) {
            scan(bytes, secret, hit);
        }
    }
    for form in secrets.iter().flat_map(|s| &s.short) {
        let mut from = 0;
        while let Some(at) = position(&bytes[from..], form) {
            hit(from + at, from + at + form.len());
            from += at + 1;
        }
    }
}

/// The windows of `bytes` (at least [`WINDOW`] long) that are pieces of `secret`. Every
/// 8-byte window holds a 4-byte run starting at a multiple of 4, so only those runs are
/// tested against the secret's runs (a bit test per 4 bytes of text), and only the windows
/// around a run that passes are looked up.
fn scan(bytes: &[u8], secret: &Secret, hit: &mut dyn FnMut(usize, usize)) {
    let quads: &[u64; 1024] = &secret.quads;
    for (i, run) in bytes.chunks_exact(4).enumerate() {
        let p = i * 4;
        let k = quad(run);
        if (quads[k >> 6] >> (k & 63)) & 1 != 0 {
            // The windows that hold this run: starting from p - 4 to p.
            for start in p.saturating_sub(4)..=p {
                if start + WINDOW > bytes.len() {
                    break;
                }
                if secret.windows.contains(word(&bytes[start..start + WINDOW])) {
                    hit(start, start + WINDOW);
                }
            }
        }
    }
}

/// `text` with percent-escapes, JSON escapes and HTML character references decoded, and for
/// each decoded byte the span of `text` it came from.
fn decode(text: &str) -> (Vec<u8>, Vec<(usize, usize)>) {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut origin = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let (ch, len) = match b[i] {
            b'%' => match hex_at(b, i + 1, 2) {
                Some(v) => {
                    out.push(v as u8);
                    origin.push((i, i + 3));
                    i += 3;
                    continue;
                }
                None => (None, 1),
            },
            b'\\' => json_escape(b, i),
            b'&' => html_reference(b, i),
            _ => (None, 1),
        };
        match ch {
            Some(c) => {
                let mut buf = [0u8; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    out.push(byte);
                    origin.push((i, i + len));
                }
            }
            None => {
                for (k, &byte) in b.iter().enumerate().skip(i).take(len) {
                    out.push(byte);
                    origin.push((k, k + 1));
                }
            }
        }
        i += len;
    }
    (out, origin)
}

/// A JSON escape at `i` (which holds `\\`): the character and the escape's length, or
/// `(None, 1)`.
fn json_escape(b: &[u8], i: usize) -> (Option<char>, usize) {
    let simple = match b.get(i + 1) {
        Some(b'"') => Some('"'),
        Some(b'\\') => Some('\\'),
        Some(b'/') => Some('/'),
        Some(b'n') => Some('\n'),
        Some(b'r') => Some('\r'),
        Some(b't') => Some('\t'),
        Some(b'b') => Some('\u{8}'),
        Some(b'f') => Some('\u{c}'),
        _ => None,
    };
    if let Some(c) = simple {
        return (Some(c), 2);
    }
    if b.get(i + 1) != Some(&b'u') {
        return (None, 1);
    }
    let Some(unit) = hex_at(b, i + 2, 4) else {
        return (None, 1);
    };
    if (0xD800..0xDC00).contains(&unit)
        && b.get(i + 6) == Some(&b'\\')
        && b.get(i + 7) == Some(&b'u')
    {
        if let Some(low) = hex_at(b, i + 8, 4).filter(|l| (0xDC00..0xE000).contains(l)) {
            let c = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
            return (char::from_u32(c), 12);
        }
    }
    match char::from_u32(unit) {
        Some(c) => (Some(c), 6),
        None => (None, 1),
    }
}

/// An HTML character reference at `i` (which holds `&`): `&#116;`, `&#x74;`, or any of
/// HTML's named ones (`&amp;`, `&uuml;`, `&commat;` ...: the whole HTML5 table, from the
/// html-escape crate) that stands for one character — a secret may hold any of them, and a
/// server's HTML page may write it so.
fn html_reference(b: &[u8], i: usize) -> (Option<char>, usize) {
    // The longest HTML5 name is 31 letters (`&CounterClockwiseContourIntegral;`).
    let Some(end) = b[i..].iter().take(34).position(|&c| c == b';') else {
        return (None, 1);
    };
    let body = &b[i + 1..i + end];
    let c = match body {
        b"amp" => Some('&'),
        b"lt" => Some('<'),
        b"gt" => Some('>'),
        b"quot" => Some('"'),
        b"apos" => Some('\''),
        [b'#', b'x' | b'X', hex @ ..] if !hex.is_empty() => {
            hex_at(hex, 0, hex.len()).and_then(char::from_u32)
        }
        [b'#', dec @ ..] if !dec.is_empty() && dec.iter().all(u8::is_ascii_digit) => {
            std::str::from_utf8(dec)
                .ok()
                .and_then(|d| d.parse().ok())
                .and_then(char::from_u32)
        }
        name if !name.is_empty() && name.iter().all(u8::is_ascii_alphanumeric) => {
            // ASCII letters and digits: a valid `str`.
            let whole = std::str::from_utf8(&b[i..=i + end]).unwrap_or_default();
            let decoded = html_escape::decode_html_entities(whole);
            let mut chars = decoded.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if decoded != whole => Some(c),
                _ => None,
            }
        }
        _ => None,
    };
    match c {
        Some(c) => (Some(c), end + 1),
        None => (None, 1),
    }
}

/// The value of `n` hex digits at `b[at..]`.
fn hex_at(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let digits = b.get(at..at + n)?;
    if n == 0 || n > 8 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// Whether `c` is escaped in text handed to C: C0 and C1 controls, DEL, the Unicode line and
/// paragraph separators, and the bidirectional controls that can make a log line read
/// otherwise than it is (U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069).
pub(crate) fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{061c}' | '\u{200e}' | '\u{200f}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// `s` with the characters of [`must_escape`] escaped (`\n`, `\u{2028}`, ...) and cut so that
/// the result, escapes included, is at most `max` characters (ending in `...` when cut): fit
/// to quote in a message or hand to a host program's log. Valid UTF-8 by construction.
pub(crate) fn printable(s: &str, max: usize) -> String {
    let keep = max.saturating_sub(3);
    let mut out = String::with_capacity(s.len().min(max.saturating_mul(4)));
    let mut len = 0;
    // Where "..." goes if the whole does not fit: after the last piece within `keep`.
    let mut cut = None;
    for c in s.chars() {
        let before = out.len();
        let n = if must_escape(c) {
            let start = out.len();
            out.extend(c.escape_default());
            out.len() - start // escapes are ASCII: bytes are characters
        } else {
            out.push(c);
            1
        };
        if cut.is_none() && len + n > keep {
            cut = Some(before);
        }
        len += n;
        if len > max {
            break;
        }
    }
    if len <= max {
        return out;
    }
    out.truncate(cut.unwrap_or(0));
    out.push_str(&"..."[..max.min(3)]);
    out
}

/// Server text handed to C (a trace ID, a quote): secrets removed, escaped, cut to `max`
/// characters, and searched again — the escapes must not spell out a secret.
pub(crate) fn clean(s: &str, max: usize, secrets: &[&Secret]) -> String {
    if plain(s, max) {
        return scrub(s, secrets).into_owned();
    }
    let escaped = printable(&scrub(s, secrets), max);
    match scrub(&escaped, secrets) {
        Cow::Borrowed(_) => escaped,
        // "<redacted>" may be longer than what it replaced.
        Cow::Owned(again) => again.chars().take(max).collect(),
    }
}

/// Whether [`clean`] would return `s` as it is: printable ASCII within `max`, with nothing to
/// decode or escape and no secret (the usual trace ID). One search of it is all it takes.
pub(crate) fn is_clean(s: &str, max: usize, secrets: &[&Secret]) -> bool {
    if !plain(s, max) {
        return false;
    }
    let mut found = false;
    find(s.as_bytes(), secrets, &mut |_, _| found = true);
    !found
}

/// Printable ASCII within `max`, with nothing to decode or escape (the service's trace IDs):
/// one search of it is all it takes.
fn plain(s: &str, max: usize) -> bool {
    s.len() <= max && s.bytes().all(|b| PLAIN[usize::from(b)])
}

/// The bytes [`plain`] allows: printable ASCII but `%`, `\` and `&` (which may begin an
/// escape). A table: one load per byte where the tests cost four.
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = b' ';
    while b <= b'~' {
        t[b as usize] = b != b'%' && b != b'\\' && b != b'&';
        b += 1;
    }
    t
};

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

fn position(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Sets bit 5 of every byte: ASCII letters compare without regard to case (a token echoed in
/// capitals is still the token), and a window is never 0, the free-slot mark. A few
/// punctuation pairs (such as `@` and `` ` ``) compare equal too, which only ever removes more.
const FOLD: u64 = 0x2020_2020_2020_2020;

/// The bit of a run of four bytes, folded like windows, in a 65,536-bit map.
fn quad(q: &[u8]) -> usize {
    // Byte by byte rather than `copy_from_slice`, which is a call per run here.
    let v = u32::from_le_bytes([q[0], q[1], q[2], q[3]]) | 0x2020_2020;
    (v.wrapping_mul(0x9E37_79B1) >> 16) as usize
}

/// A window as a number, folded.
fn word(w: &[u8]) -> u64 {
    let b: [u8; WINDOW] = std::array::from_fn(|i| w[i]);
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

/// A set of windows: open addressing over a power-of-two table, 0 marking a free slot (a
/// window's number is never 0).
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
        ] {
            let out = scrubbed(&text, TOKEN);
            assert!(!leaks(&out, TOKEN), "{text} -> {out}");
            assert!(out.contains(REDACTED), "{out}");
        }
        assert_eq!(
            scrubbed("nothing to see here", TOKEN),
            "nothing to see here"
        );
    }

    #[test]
    fn secrets_in_any_extent_of_encoding_are_removed() {
        let secret = "AbCdEfGh-token-99";
        for form in [
            "%41%62%43%64%45%66%47%68%2D%74%6f%6b%65%6e%2d%39%39",
            "\\u0041\\u0062\\u0043\\u0064\\u0045\\u0066\\u0047\\u0068-token-99",
            "&#65;&#98;&#x43;&#x64;&#69;&#102;&#71;&#104;-token-99",
            "AbCd%45fGh-to\\u006ben-99",
        ] {
            let out = scrubbed(&format!("echo: {form} end"), secret);
            assert_eq!(out, format!("echo: {REDACTED} end"), "{form}");
        }
        // HTML's named references, of the whole HTML5 table (issue 19: `&uuml;` passed).
        let secret = "pässwörd-Über@x";
        for form in [
            "p&auml;ssw&ouml;rd-&Uuml;ber&commat;x",
            "p&#228;ssw&ouml;rd-&Uuml;ber&#x40;x",
        ] {
            let out = scrubbed(&format!("<p>{form}</p>"), secret);
            assert!(!out.contains("ssw"), "{form}: {out}");
        }
    }

    #[test]
    fn escapes_do_not_spell_out_a_secret() {
        let secret = "AB\\r\\n\\r\\nCD\\t\\u{0}EF";
        let out = clean("AB\r\n\r\nCD\t\0EF", 200, &[&Secret::new(secret)]);
        assert_eq!(out, REDACTED);
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
            "p%40ss/w%22ord+with+spaces+%26+%3Cmore%3E+%C3%A9".to_owned(),
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
        assert_eq!(printable("a\r\nb\u{7f}", 20), "a\\r\\nb\\u{7f}");
        assert_eq!(
            printable("x\u{2028}y\u{2029}\u{85}\u{202e}", 50),
            "x\\u{2028}y\\u{2029}\\u{85}\\u{202e}"
        );
        assert_eq!(printable("abcdef", 6), "abcdef");
        assert_eq!(printable("abcdefg", 6), "abc...");
        // The cap counts the escapes.
        let long = printable(&"\u{85}".repeat(300), 200);
        assert!(
            long.chars().count() <= 200 && long.ends_with("..."),
            "{long}"
        );
        assert!(printable(&"\n".repeat(500), 200).chars().count() <= 200);
    }

    #[test]
    fn the_token_cache_gives_the_same_secret() {
        let token = Token::new(TOKEN).expect("valid");
        let a = token_secret(&token);
        let b = token_secret(&token);
        assert!(Rc::ptr_eq(&a, &b));
    }
}
