//! The log callback: the lines it gets (requests, answers, connections, retries, pacing, token
//! fetches), levels, setting and clearing it while other threads call, and no piece of any
//! secret and no control character in any line, over the echoing faults of the secrecy test.

mod support;

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;
use std::sync::Mutex;

use pan_offline::ffi::*;
use serde_json::json;
use support::Emulator;

const TOKEN: &str = "eyJ0eXAi/OiJKV1Qi+LCJhbGciOiJIUzI1NiJ9=Zk3q/p+W2x7=Lm9vT4h8Rb/Yc1";
const CLIENT_SECRET: &str = "cs/9f3+Kq7-WvX2&mZ8rT5=yB1nL4hD6&gJ0pS";

type Lines = Mutex<Vec<(i32, String)>>;

unsafe extern "C" fn collect(user: *mut c_void, level: i32, message: *const c_char) {
    // SAFETY: the test passes a &Lines; the library a valid string.
    let (lines, text) = unsafe { (&*user.cast::<Lines>(), CStr::from_ptr(message)) };
    let text = text.to_str().expect("UTF-8").to_owned();
    lines
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((level, text));
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

fn client(json: &str) -> *mut PanClient {
    // SAFETY: a valid string.
    let client = unsafe { pan_client_new(c(json).as_ptr()) };
    assert!(!client.is_null());
    client
}

fn leaks(text: &str, secret: &str) -> bool {
    let t = text.to_ascii_lowercase();
    let s = secret.to_ascii_lowercase();
    s.as_bytes()
        .windows(8)
        .any(|w| t.as_bytes().windows(8).any(|x| x == w))
}

#[test]
fn lines_tell_what_the_client_did_without_secrets() {
    let emu = Emulator::start_with(&["--token", TOKEN, "--client", &format!("id:{CLIENT_SECRET}")]);
    let lines: &'static Lines = Box::leak(Box::new(Mutex::new(Vec::new())));
    let client = client(&format!(
        r#"{{"baseUrl":"{}","maxRetries":1,"timeoutMs":3000,"clientID":"id","clientSecret":"{CLIENT_SECRET}"}}"#,
        emu.url
    ));
    // SAFETY: valid pointers; `lines` lives for the program.
    let rc = unsafe {
        pan_client_set_log(
            client,
            PAN_LOG_DEBUG,
            Some(collect),
            (lines as *const Lines).cast_mut().cast(),
        )
    };
    assert_eq!(rc, PAN_OK);
    let opts = c(r#"{"url":"https://example.com/a.png"}"#);
    let tok = c(TOKEN);
    let mut id = 0i64;
    // The client's own token, then the caller's.
    // SAFETY: valid pointers.
    unsafe { pan_client_offline_download(client, ptr::null(), opts.as_ptr(), &mut id) };
    // SAFETY: valid pointers.
    unsafe { pan_client_offline_download(client, tok.as_ptr(), opts.as_ptr(), &mut id) };
    let own = emu.first_bearer_token();
    // Servers that echo secrets, on every path.
    for secret in [TOKEN, own.as_str(), CLIENT_SECRET] {
        for fault in [
            json!({"code": 5066, "message": format!("echo {secret}")}),
            json!({"status": 200, "body": {"code": 0, "data": {"taskID": 7}, "x-traceID": secret}}),
            json!({"status": 400, "body": format!("<pre>Authorization: Bearer {secret}</pre>")}),
            json!({"status": 429, "body": secret, "headers": {"Retry-After": "0"}}),
            json!({"redirect": format!("http://127.0.0.1:1/?t={secret}")}),
            json!({"path": "/api/v1/access_token", "code": 1, "message": secret}),
            json!({"drop": "after"}),
        ] {
            emu.fault(&fault.to_string());
            // SAFETY: valid pointers.
            unsafe { pan_client_offline_download(client, tok.as_ptr(), opts.as_ptr(), &mut id) };
            // A call with the client's own token does not know the caller's other tokens.
            if secret != TOKEN {
                emu.fault(&fault.to_string());
                // SAFETY: valid pointers.
                unsafe { pan_client_offline_download(client, ptr::null(), opts.as_ptr(), &mut id) };
            }
            emu.reset();
        }
    }
    let got = lines.lock().expect("lines").clone();
    for (level, line) in &got {
        assert!((1..=4).contains(level), "{level}");
        for secret in [TOKEN, own.as_str(), CLIENT_SECRET] {
            assert!(!leaks(line, secret), "a piece of a secret in {line:?}");
        }
        assert!(!line.chars().any(char::is_control), "{line:?}");
    }
    let all = got
        .iter()
        .map(|(_, l)| l.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for want in [
        "route to http://127.0.0.1",
        "POST /api/v1/offline/download (attempt 1)",
        "HTTP 200, code 0, trace ID",
        "connection opened (direct), then kept for the next call",
        "connection reused",
        "retrying in",
        "fetching an access token",
        "failed: create offline download task",
    ] {
        assert!(all.contains(want), "no line with {want:?} in:\n{all}");
    }
    println!("{} log lines checked", got.len());
    // Less detail: no Debug or Info lines.
    lines.lock().expect("lines").clear();
    // SAFETY: as above.
    unsafe {
        pan_client_set_log(
            client,
            PAN_LOG_WARN,
            Some(collect),
            (lines as *const Lines).cast_mut().cast(),
        )
    };
    // SAFETY: valid pointers.
    unsafe { pan_client_offline_download(client, tok.as_ptr(), opts.as_ptr(), &mut id) };
    emu.fault(r#"{"code":5066,"message":"gone"}"#);
    // SAFETY: valid pointers.
    unsafe { pan_client_offline_download(client, tok.as_ptr(), opts.as_ptr(), &mut id) };
    let got = lines.lock().expect("lines").clone();
    assert!(
        !got.is_empty() && got.iter().all(|(l, _)| *l <= PAN_LOG_WARN),
        "{got:?}"
    );
    // A level that is not one is refused; NULL turns the log off.
    // SAFETY: as above.
    assert_eq!(
        unsafe { pan_client_set_log(client, 9, Some(collect), ptr::null_mut()) },
        PAN_ERR_INVALID_ARGUMENT
    );
    // SAFETY: as above.
    assert_eq!(
        unsafe { pan_client_set_log(client, PAN_LOG_DEBUG, None, ptr::null_mut()) },
        PAN_OK
    );
    lines.lock().expect("lines").clear();
    // SAFETY: valid pointers.
    unsafe { pan_client_offline_download(client, tok.as_ptr(), opts.as_ptr(), &mut id) };
    assert!(lines.lock().expect("lines").is_empty());
    // SAFETY: from pan_client_new.
    unsafe { pan_client_free(client) };
}

#[test]
fn setting_and_clearing_the_log_while_other_threads_call_is_safe() {
    let emu = Emulator::start();
    let client = client(&format!(r#"{{"baseUrl":"{}"}}"#, emu.url)) as usize;
    let lines: &'static Lines = Box::leak(Box::new(Mutex::new(Vec::new())));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let tok = c(support::TOKEN);
                let opts = c(r#"{"url":"https://example.com/a.mp4"}"#);
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 300 {
                    let mut id = 0i64;
                    // SAFETY: valid pointers; the client outlives the threads.
                    let rc = unsafe {
                        pan_client_offline_download(
                            client as *const PanClient,
                            tok.as_ptr(),
                            opts.as_ptr(),
                            &mut id,
                        )
                    };
                    assert_eq!(rc, PAN_OK);
                    n += 1;
                }
                n
            })
        })
        .collect();
    for i in 0..200 {
        let (level, cb) = if i % 2 == 0 {
            (PAN_LOG_DEBUG, Some(collect as _))
        } else {
            (0, None)
        };
        // SAFETY: valid pointers.
        let rc = unsafe {
            pan_client_set_log(
                client as *mut PanClient,
                level,
                cb,
                (lines as *const Lines).cast_mut().cast(),
            )
        };
        assert_eq!(rc, PAN_OK);
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let calls: usize = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    assert!(calls > 0);
    assert!(!lines.lock().expect("lines").is_empty());
    // SAFETY: from pan_client_new, no thread uses it any more.
    unsafe { pan_client_free(client as *mut PanClient) };
}
