//! No piece of a secret — the call's token, the client's own token, `clientSecret`, a proxy's
//! or base URL's password — of 8 or more characters, in any form a server may echo it in,
//! appears in any string the C ABI hands out: the message (`pan_last_error_message()` and
//! `pan_last_error_copy()`) and the trace ID, after a failure or a success, on every endpoint,
//! across every quote limit. And no server text reaches C with a control character in it.

mod support;

use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, CStr, CString};
use std::ptr;
use std::sync::Mutex;

use pan_offline::ffi::*;
use serde_json::{json, Value};
use support::Emulator;

/// A token with the characters that change under JSON, percent and form encoding.
const TOKEN: &str = "eyJ0eXAi/OiJKV1Qi+LCJhbGciOiJIUzI1NiJ9=Zk3q/p+W2x7=Lm9vT4h8Rb/Yc1";
const CLIENT_ID: &str = "secrecy-client";
const CLIENT_SECRET: &str = "cs/9f3+Kq7-WvX2&mZ8rT5=yB1nL4hD6&gJ0pS";
const PROXY_PASSWORD: &str = "pr0xy/Pa55+w0rd&Zq9xV";
const BASE_PASSWORD: &str = "ba5e-Pa55w0rd-Qm7Tz";

/// The lengths at which the library cuts what it quotes: envelope messages and `Location`
/// (300 characters), non-envelope bodies (120), trace IDs (200), answer data (60).
const QUOTE_LIMITS: [usize; 4] = [300, 120, 200, 60];
/// Where a secret starts relative to a limit: wholly inside, across it, just past it.
const OFFSETS: [isize; 6] = [-80, -33, -9, -1, 0, 7];

fn percent(s: &str, keep_slash: bool) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The forms of `secret` a server may send back: as sent, JSON-escaped (minimally, with
/// `\/`, and every character as `\uXXXX`), percent-encoded (reserved characters, every
/// character, lower-case hex, form-encoded), HTML-escaped (named and numeric references).
fn forms(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).expect("json");
    vec![
        secret.to_owned(),
        json.trim_matches('"').replace('/', "\\/"),
        secret
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect(),
        percent(secret, false),
        secret.bytes().map(|b| format!("%{b:02X}")).collect(),
        percent(secret, true).to_lowercase(),
        percent(secret, false).replace("%20", "+"),
        secret.replace('&', "&amp;"),
        secret.chars().map(|c| format!("&#{};", c as u32)).collect(),
        secret
            .chars()
            .map(|c| format!("&#x{:x};", c as u32))
            .collect(),
    ]
}

/// The 8-byte pieces of a secret's forms.
type Pieces = std::sync::Arc<HashSet<Vec<u8>>>;

/// The 8-byte pieces of every form of `secret`, in lower case (made once per secret).
fn pieces(secret: &str) -> Pieces {
    static MADE: Mutex<Option<HashMap<String, Pieces>>> = Mutex::new(None);
    let mut made = MADE.lock().unwrap_or_else(|p| p.into_inner());
    let made = made.get_or_insert_with(HashMap::new);
    made.entry(secret.to_owned())
        .or_insert_with(|| {
            let mut set = HashSet::new();
            for form in forms(secret) {
                let f = form.to_ascii_lowercase().into_bytes();
                set.extend(f.windows(8.min(f.len())).map(<[u8]>::to_vec));
            }
            std::sync::Arc::new(set)
        })
        .clone()
}

/// A piece of 8 or more bytes of `secret`, in any of its forms, that `text` contains
/// (without regard to ASCII case).
fn leaked(text: &str, secret: &str) -> Option<String> {
    let pieces = pieces(secret);
    let n = 8.min(secret.len());
    let text = text.to_ascii_lowercase();
    text.as_bytes()
        .windows(n)
        .find(|w| pieces.contains(*w))
        .map(|w| String::from_utf8_lossy(w).into_owned())
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

/// The strings the C ABI hands out after the last call on this thread.
fn returned() -> Vec<String> {
    // SAFETY: the getters return valid NUL-terminated strings owned by the library.
    let (message, trace) = unsafe {
        (
            CStr::from_ptr(pan_last_error_message())
                .to_string_lossy()
                .into_owned(),
            CStr::from_ptr(pan_last_trace_id())
                .to_string_lossy()
                .into_owned(),
        )
    };
    let mut buf = vec![0 as c_char; 4096];
    // SAFETY: the buffer has its length in writable bytes.
    unsafe { pan_last_error_copy(buf.as_mut_ptr(), buf.len()) };
    // SAFETY: pan_last_error_copy NUL-terminates within the buffer.
    let copy = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    vec![message, trace, copy]
}

/// Checks what the last call returned; counts the check.
fn assert_clean(what: &str, secrets: &[&str], checks: &mut usize) {
    for s in returned() {
        for secret in secrets {
            if let Some(piece) = leaked(&s, secret) {
                panic!("{what}: `{piece}` of a secret is in {s:?}");
            }
        }
        assert!(
            !s.chars()
                .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
            "{what}: control character in {s:?}"
        );
    }
    *checks += 1;
}

/// `secret` placed so that it starts `offset` characters from `limit` in a longer text.
fn across(limit: usize, offset: isize, secret: &str) -> String {
    let pad = (limit as isize + offset).max(0) as usize;
    format!("{}{secret} and more text after it", "x".repeat(pad))
}

/// What a server may send back with a secret in it, as emulator faults: envelope messages
/// and trace IDs on errors and successes, raw bodies that reflect headers, answer data,
/// redirects, 429s — each with the secret at every offset of every quote limit.
fn echoing_faults(secret: &str) -> Vec<Value> {
    let mut faults = Vec::new();
    for limit in QUOTE_LIMITS {
        for offset in OFFSETS {
            let text = across(limit, offset, secret);
            faults.push(json!({"code": 5066, "message": text}));
            faults.push(
                json!({"status": 200, "body": {"code": 401, "message": text, "x-traceID": text}}),
            );
            faults.push(json!({"status": 200, "body": {"code": 0, "message": "ok", "data": {"taskID": 7}, "x-traceID": text}}));
            faults.push(json!({"status": 400, "body": format!("<html><pre>POST /api HTTP/1.1\r\nAuthorization: Bearer {text}\r\n</pre></html>")}));
            faults.push(json!({"status": 200, "body": format!("not json: {text}")}));
            faults.push(json!({"status": 200, "body": {"code": 0, "data": {"taskID": text, "process": text, "accessToken": 5}, "x-traceID": "t"}}));
            faults.push(
                json!({"redirect": format!("http://127.0.0.1:1/?{}", percent(&text, false))}),
            );
            faults.push(json!({"status": 429, "body": text, "times": 9}));
        }
    }
    for form in forms(secret) {
        faults.push(json!({"status": 502, "body": format!("<p>{form}</p>")}));
        faults.push(json!({"status": 200, "body": format!("{{\"echo\":\"{form}\"}}")}));
        faults.push(json!({"code": 1, "message": form}));
    }
    faults
}

fn emulator() -> Emulator {
    Emulator::start_with(&[
        "--token",
        TOKEN,
        "--client",
        &format!("{CLIENT_ID}:{CLIENT_SECRET}"),
    ])
}

fn client(json: &str) -> *mut PanClient {
    // SAFETY: a valid NUL-terminated config.
    let client = unsafe { pan_client_new(c(json).as_ptr()) };
    assert!(!client.is_null(), "client: {:?}", returned());
    client
}

/// Drives every call that takes a token with each fault, and checks what comes back.
fn drive(emu: &Emulator, client: *const PanClient, token: Option<&str>, secrets: &[&str]) -> usize {
    let token = token.map(c);
    let token = token.as_ref().map_or(ptr::null(), |t| t.as_ptr());
    let opts = c(r#"{"url":"https://example.com/a.png"}"#);
    let mut checks = 0;
    for fault in echoing_faults(secrets[0]) {
        for call in 0..4 {
            emu.fault(&fault.to_string());
            let (mut id, mut pct, mut st) = (0i64, 0f64, 0i32);
            // SAFETY: valid pointers for the call.
            unsafe {
                match call {
                    0 => pan_client_offline_download(client, token, opts.as_ptr(), &mut id),
                    1 => pan_oss_offline_download(client, token, opts.as_ptr(), &mut id),
                    2 => pan_offline_download_progress(client, token, 394756, &mut pct, &mut st),
                    _ => {
                        pan_oss_offline_download_progress(client, token, 394756, &mut pct, &mut st)
                    }
                }
            };
            assert_clean(&format!("{fault} (call {call})"), secrets, &mut checks);
            emu.reset();
        }
    }
    checks
}

#[test]
fn no_piece_of_the_calls_token_leaves_on_any_path_or_quote_limit() {
    let emu = emulator();
    let client = client(&format!(
        r#"{{"baseUrl":"{}","maxRetries":0,"timeoutMs":3000}}"#,
        emu.url
    ));
    let checks = drive(&emu, client, Some(TOKEN), &[TOKEN]);
    // SAFETY: from pan_client_new.
    unsafe { pan_client_free(client) };
    println!("call token: {checks} calls checked");
    assert!(checks > 800, "{checks} calls checked");
}

#[test]
fn no_piece_of_the_clients_own_token_or_secret_leaves() {
    let emu = emulator();
    let client = client(&format!(
        r#"{{"baseUrl":"{}","maxRetries":0,"timeoutMs":3000,"clientID":"{CLIENT_ID}","clientSecret":"{CLIENT_SECRET}"}}"#,
        emu.url
    ));
    let opts = c(r#"{"url":"https://example.com/a.mp4"}"#);
    let mut id = 0i64;
    // SAFETY: valid pointers.
    let rc = unsafe { pan_client_offline_download(client, ptr::null(), opts.as_ptr(), &mut id) };
    assert_eq!(rc, PAN_OK, "{:?}", returned());
    // The token the client fetched, as the emulator saw it.
    let own = emu.first_bearer_token();
    let checks = drive(&emu, client, None, &[&own, CLIENT_SECRET]);
    println!("own token and client secret: {checks} calls checked");
    assert!(checks > 800, "{checks}");

    // The token endpoint echoing the client secret: on failures and in a success's trace ID.
    let mut checks = 0;
    for fault in echoing_faults(CLIENT_SECRET) {
        let mut fault = fault;
        fault["path"] = json!("/api/v1/access_token");
        emu.fault(&fault.to_string());
        let mut token: *mut c_char = ptr::null_mut();
        let mut exp = 0i64;
        // SAFETY: valid pointers; the token is freed below.
        let rc =
            unsafe { pan_access_token(client, ptr::null(), ptr::null(), &mut token, &mut exp) };
        assert_clean(
            &format!("access token: {fault}"),
            &[CLIENT_SECRET],
            &mut checks,
        );
        if rc == PAN_OK {
            // SAFETY: from pan_access_token.
            unsafe { pan_string_free(token) };
        }
        emu.reset();
    }
    println!("token endpoint: {checks} calls checked");
    assert!(checks > 200, "{checks}");
    // SAFETY: from pan_client_new.
    unsafe { pan_client_free(client) };
}

#[test]
fn the_clients_own_token_stays_secret_in_calls_with_the_callers_token() {
    let emu = emulator();
    let client = client(&format!(
        r#"{{"baseUrl":"{}","maxRetries":0,"clientID":"{CLIENT_ID}","clientSecret":"{CLIENT_SECRET}"}}"#,
        emu.url
    ));
    let opts = c(r#"{"url":"https://example.com/a.mp4"}"#);
    let mut id = 0i64;
    // SAFETY: valid pointers.
    assert_eq!(
        unsafe { pan_client_offline_download(client, ptr::null(), opts.as_ptr(), &mut id) },
        PAN_OK
    );
    let own = emu.first_bearer_token();
    let tok = c(TOKEN);
    let mut checks = 0;
    for fault in echoing_faults(&own).into_iter().step_by(5) {
        emu.fault(&fault.to_string());
        // SAFETY: valid pointers.
        unsafe { pan_client_offline_download(client, tok.as_ptr(), opts.as_ptr(), &mut id) };
        assert_clean(
            &format!("explicit token, own echoed: {fault}"),
            &[&own, TOKEN],
            &mut checks,
        );
        emu.reset();
    }
    // SAFETY: from pan_client_new.
    unsafe { pan_client_free(client) };
    assert!(checks > 30, "{checks}");
}

#[test]
fn escapes_of_server_text_never_spell_out_a_secret() {
    // A token that holds escape sequences as text; the server sends the real characters.
    let token = r"AB\r\n\r\nCD\t\u{0}EF-x";
    let emu = Emulator::start_with(&["--token", token]);
    let client = client(&format!(r#"{{"baseUrl":"{}","maxRetries":0}}"#, emu.url));
    let tok = c(token);
    let opts = c(r#"{"url":"https://example.com/a.mp4"}"#);
    let sent = "AB\r\n\r\nCD\t\u{0}EF-x";
    let mut checks = 0;
    for fault in [
        json!({"status": 200, "body": {"code": 0, "data": {"taskID": 5}, "x-traceID": sent}}),
        json!({"status": 200, "body": {"code": 5066, "message": sent, "x-traceID": sent}}),
        json!({"status": 500, "body": sent}),
    ] {
        emu.fault(&fault.to_string());
        let mut id = 0i64;
        // SAFETY: valid pointers.
        unsafe { pan_client_offline_download(client, tok.as_ptr(), opts.as_ptr(), &mut id) };
        assert_clean(&fault.to_string(), &[token], &mut checks);
    }
    // Trace IDs and quotes stay within their caps, escapes counted.
    for trace in [
        "\u{85}".repeat(300),
        "\n".repeat(500),
        "\u{202e}".repeat(100),
    ] {
        emu.fault(
            &json!({"status": 200, "body": {"code": 0, "data": {"taskID": 5}, "x-traceID": trace}})
                .to_string(),
        );
        let mut id = 0i64;
        // SAFETY: valid pointers.
        unsafe { pan_client_offline_download(client, tok.as_ptr(), opts.as_ptr(), &mut id) };
        let t = &returned()[1];
        assert!(t.chars().count() <= 200, "{} characters", t.chars().count());
        assert!(!t.contains('\u{202e}'), "bidi control passed: {t:?}");
    }
    // SAFETY: from pan_client_new.
    unsafe { pan_client_free(client) };
    assert_eq!(checks, 3);
}

#[test]
fn cut_strings_are_valid_utf8() {
    let body = c(r#"{"status":1,"failReason":"€€€","fileID":0}"#);
    let (mut status, mut file) = (0i32, 0i64);
    for len in 1..=10usize {
        let mut reason = vec![0x55 as c_char; len];
        // SAFETY: the buffer has `len` bytes.
        let rc = unsafe {
            pan_callback_parse(
                body.as_ptr(),
                &mut status,
                &mut file,
                reason.as_mut_ptr(),
                len,
            )
        };
        assert_eq!(rc, PAN_OK);
        // SAFETY: NUL-terminated within the buffer.
        let got = unsafe { CStr::from_ptr(reason.as_ptr()) };
        assert!(got.to_str().is_ok(), "{len}: {:?}", got.to_bytes());
        assert_eq!(got.to_bytes().len(), (len - 1) / 3 * 3, "{len}");
    }
    // An error message with multi-byte text, copied into every small size.
    let opts = c(r#"{"url":"https://e.com/a","fileName":"a/€€€"}"#);
    let tok = c(TOKEN);
    let mut id = 0i64;
    // SAFETY: valid pointers.
    let rc = unsafe { pan_offline_download(tok.as_ptr(), opts.as_ptr(), &mut id) };
    assert_eq!(rc, PAN_ERR_INVALID_ARGUMENT);
    // SAFETY: (NULL, 0) asks for the length.
    let full = unsafe { pan_last_error_copy(ptr::null_mut(), 0) };
    for len in 1..=full + 1 {
        let mut buf = vec![0 as c_char; len];
        // SAFETY: the buffer has `len` bytes.
        unsafe { pan_last_error_copy(buf.as_mut_ptr(), len) };
        // SAFETY: NUL-terminated within the buffer.
        let got = unsafe { CStr::from_ptr(buf.as_ptr()) };
        assert!(got.to_str().is_ok(), "{len}: {:?}", got.to_bytes());
    }
}

#[test]
fn passwords_in_base_and_proxy_urls_are_never_quoted() {
    let mut checks = 0;
    for config in [
        format!(r#"{{"baseUrl":"http://admin:{BASE_PASSWORD}@10.0.0.1:8080"}}"#),
        format!(r#"{{"baseUrl":"https://admin:{BASE_PASSWORD}@open-api.123pan.com"}}"#),
        format!(r#"{{"baseUrl":"http://admin:{BASE_PASSWORD}@127.0.0.1:8080/a<b>"}}"#),
        format!(r#"{{"baseUrl":"ftp://admin:{BASE_PASSWORD}@127.0.0.1"}}"#),
        format!(
            r#"{{"proxy":"http://u:{}@127.0.0.1:99999"}}"#,
            percent(PROXY_PASSWORD, false)
        ),
        format!(
            r#"{{"proxy":"gopher://u:{}@127.0.0.1:1"}}"#,
            percent(PROXY_PASSWORD, false)
        ),
        format!(
            r#"{{"baseUrl":"http://127.0.0.1:1","proxy":"http://u:{}@proxy.example:3128"}}"#,
            percent(PROXY_PASSWORD, false)
        ),
        format!(r#"{{"clientID":"x","clientSecret":"{CLIENT_SECRET}","timeoutMs":-1}}"#),
        // Typos: one slash, none, three, no scheme, a forgotten host, raw '/', '#', '?'.
        format!(r#"{{"baseUrl":"http:/u:{BASE_PASSWORD}@127.0.0.1:1"}}"#),
        format!(r#"{{"baseUrl":"http//u:{BASE_PASSWORD}@127.0.0.1:1"}}"#),
        format!(r#"{{"baseUrl":"http:///u:{BASE_PASSWORD}@127.0.0.1:1"}}"#),
        format!(r#"{{"baseUrl":"//u:{BASE_PASSWORD}@127.0.0.1:1"}}"#),
        format!(r#"{{"baseUrl":"http://u:{BASE_PASSWORD}"}}"#),
        format!(r#"{{"proxy":"http://u:{BASE_PASSWORD}"}}"#),
        format!(r#"{{"proxy":"http://u:p@ss:w/rd#{BASE_PASSWORD}?x@127.0.0.1:99999"}}"#),
        format!(r#"{{"baseUrl":"https://u:p/{BASE_PASSWORD}@h:99999"}}"#),
    ] {
        // SAFETY: a valid NUL-terminated config.
        let client = unsafe { pan_client_new(c(&config).as_ptr()) };
        assert!(client.is_null(), "{config} was accepted");
        assert_eq!(pan_last_error_code(), PAN_ERR_INVALID_ARGUMENT, "{config}");
        assert_clean(
            &config,
            &[BASE_PASSWORD, PROXY_PASSWORD, CLIENT_SECRET],
            &mut checks,
        );
    }
    // A proxy (the emulator, over CONNECT) whose password a server echoes.
    let emu = emulator();
    let port = emu.url.rsplit(':').next().expect("port");
    let client = client(&format!(
        r#"{{"baseUrl":"{}","maxRetries":0,"proxy":"http://user:{}@127.0.0.1:{port}"}}"#,
        emu.url,
        percent(PROXY_PASSWORD, false)
    ));
    let opts = c(r#"{"url":"https://example.com/a.mp4"}"#);
    let tok = c(TOKEN);
    for (n, fault) in echoing_faults(PROXY_PASSWORD)
        .into_iter()
        .step_by(7)
        .enumerate()
    {
        emu.fault(&fault.to_string());
        let mut id = 0i64;
        // SAFETY: valid pointers.
        unsafe { pan_client_offline_download(client, tok.as_ptr(), opts.as_ptr(), &mut id) };
        assert_clean(
            &format!("proxy: {fault}"),
            &[PROXY_PASSWORD, TOKEN],
            &mut checks,
        );
        if n == 0 {
            assert!(
                emu.requests().iter().any(|r| r["method"] == "CONNECT"),
                "the calls go through the proxy"
            );
        }
        emu.reset();
    }
    // SAFETY: from pan_client_new.
    unsafe { pan_client_free(client) };
    println!("base and proxy passwords: {checks} calls checked");
    assert!(checks > 30, "{checks}");
}

#[test]
fn server_text_reaches_c_without_control_characters() {
    let emu = emulator();
    let client = client(&format!(r#"{{"baseUrl":"{}","maxRetries":0}}"#, emu.url));
    let tok = c(TOKEN);
    let opts = c(r#"{"url":"https://example.com/a.mp4"}"#);
    let forged = "tr-1\r\nINFO forged line\u{2028}\u{85}\u{7f}\u{1b}[31m\u{0}end";
    let mut checks = 0;
    for fault in [
        json!({"status": 200, "body": {"code": 0, "data": {"taskID": 9}, "x-traceID": forged}}),
        json!({"status": 200, "body": {"code": 5066, "message": forged, "x-traceID": forged}}),
        json!({"status": 503, "body": forged}),
        json!({"status": 200, "body": forged}),
        json!({"redirect": "tr-1\u{7f}\u{1b}[31m"}),
    ] {
        emu.fault(&fault.to_string());
        let mut id = 0i64;
        // SAFETY: valid pointers.
        unsafe { pan_client_offline_download(client, tok.as_ptr(), opts.as_ptr(), &mut id) };
        assert_clean(&fault.to_string(), &[TOKEN], &mut checks);
        let all = returned().join(" ");
        assert!(all.contains("tr-1") || all.contains("HTTP"), "{all}");
    }
    // The trace ID of a success keeps its text, escaped.
    emu.fault(
        &json!({"status": 200, "body": {"code": 0, "data": {"taskID": 9}, "x-traceID": forged}})
            .to_string(),
    );
    let mut id = 0i64;
    // SAFETY: valid pointers.
    assert_eq!(
        unsafe { pan_client_offline_download(client, tok.as_ptr(), opts.as_ptr(), &mut id) },
        PAN_OK
    );
    assert_eq!(id, 9);
    assert!(
        returned()[1].starts_with("tr-1\\r\\nINFO forged line\\u{2028}"),
        "{:?}",
        returned()
    );
    // Callback fields: a NUL inside the reason does not cut it short for strlen.
    let body = c(r#"{"url":"u","status":1,"failReason":"a\u0000b\r\nINFO c","fileID":0}"#);
    let (mut status, mut file) = (0i32, 0i64);
    let mut reason = vec![0 as c_char; 256];
    // SAFETY: valid pointers; the buffer has its length.
    let rc = unsafe {
        pan_callback_parse(
            body.as_ptr(),
            &mut status,
            &mut file,
            reason.as_mut_ptr(),
            reason.len(),
        )
    };
    assert_eq!(rc, PAN_OK);
    // SAFETY: NUL-terminated by pan_callback_parse.
    let reason = unsafe { CStr::from_ptr(reason.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    assert_eq!(reason, "a\\u{0}b\\r\\nINFO c");
    // SAFETY: from pan_client_new.
    unsafe { pan_client_free(client) };
    assert_eq!(checks, 5);
}
