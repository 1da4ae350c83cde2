//! The log callback: the lines it gets (requests, answers, connections, retries, pacing, token
//! fetches), levels, setting and clearing it while other threads call, and no piece of any
//! secret and no control character in any line, over the echoing faults of the secrecy test.

mod support;

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// One progress query on `client` (a live `*const PanClient` as an address), whatever it
/// answers: a call that writes log lines.
fn query_progress(client: usize) {
    let tok = c(support::TOKEN);
    let (mut pct, mut status) = (0.0, 0);
    // SAFETY: valid pointers; the caller keeps the client alive.
    unsafe {
        pan_offline_download_progress(
            client as *const PanClient,
            tok.as_ptr(),
            394756,
            &mut pct,
            &mut status,
        )
    };
}

/// What a host program hands the log as user data and retires right after clearing it.
struct Slot {
    retired: std::sync::atomic::AtomicBool,
    calls: std::sync::atomic::AtomicUsize,
    late: std::sync::atomic::AtomicUsize,
}

unsafe extern "C" fn count_late(user: *mut c_void, _level: i32, _message: *const c_char) {
    // SAFETY: the test passes a &Slot that lives for the program.
    let slot = unsafe { &*user.cast::<Slot>() };
    slot.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    // A slow callback widens the window a late call would fall in.
    std::thread::sleep(std::time::Duration::from_micros(50));
    if slot.retired.load(std::sync::atomic::Ordering::SeqCst) {
        slot.late.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

unsafe extern "C" fn set_log_from_inside(user: *mut c_void, _level: i32, _message: *const c_char) {
    // SAFETY: the test passes a client pointer and a result cell.
    let (client, result) = unsafe { *user.cast::<(usize, *const std::sync::atomic::AtomicI32)>() };
    // SAFETY: the client is live during its own call.
    let rc = unsafe { pan_client_set_log(client as *mut PanClient, 0, None, ptr::null_mut()) };
    // SAFETY: points at the test's AtomicI32.
    unsafe { &*result }.store(rc, std::sync::atomic::Ordering::SeqCst);
}

#[test]
fn once_the_log_is_cleared_or_replaced_the_old_callback_is_never_called_again() {
    use std::sync::atomic::Ordering::SeqCst;
    let emu = Emulator::start();
    let client = client(&format!(r#"{{"baseUrl":"{}"}}"#, emu.url)) as usize;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(SeqCst) {
                    query_progress(client);
                }
            })
        })
        .collect();
    let mut slots: Vec<&'static Slot> = Vec::new();
    for i in 0..400 {
        let slot: &'static Slot = Box::leak(Box::new(Slot {
            retired: false.into(),
            calls: 0.into(),
            late: 0.into(),
        }));
        // SAFETY: valid pointers; the slot lives for the program.
        let rc = unsafe {
            pan_client_set_log(
                client as *mut PanClient,
                PAN_LOG_DEBUG,
                Some(count_late),
                (slot as *const Slot).cast_mut().cast(),
            )
        };
        assert_eq!(rc, PAN_OK);
        std::thread::sleep(std::time::Duration::from_micros(300));
        // Half the time replaced by the next slot, half the time cleared first.
        if i % 2 == 1 {
            // SAFETY: valid pointer.
            let rc =
                unsafe { pan_client_set_log(client as *mut PanClient, 0, None, ptr::null_mut()) };
            assert_eq!(rc, PAN_OK);
            slot.retired.store(true, SeqCst);
        }
        if let Some(prev) = slots.last() {
            prev.retired.store(true, SeqCst);
        }
        slots.push(slot);
    }
    stop.store(true, SeqCst);
    for w in workers {
        w.join().expect("worker");
    }
    let calls: usize = slots.iter().map(|s| s.calls.load(SeqCst)).sum();
    let late: usize = slots.iter().map(|s| s.late.load(SeqCst)).sum();
    assert!(calls > 100, "{calls} callback calls");
    assert_eq!(
        late, 0,
        "{late} of {calls} calls came after their log was replaced or cleared"
    );

    // From inside the callback, setting the log is refused instead of waiting for itself.
    let result = std::sync::atomic::AtomicI32::new(-1);
    let arg: &'static (usize, *const std::sync::atomic::AtomicI32) =
        Box::leak(Box::new((client, &result as *const _)));
    // SAFETY: valid pointers that outlive the call below.
    let rc = unsafe {
        pan_client_set_log(
            client as *mut PanClient,
            PAN_LOG_DEBUG,
            Some(set_log_from_inside),
            (arg as *const (usize, *const std::sync::atomic::AtomicI32))
                .cast_mut()
                .cast(),
        )
    };
    assert_eq!(rc, PAN_OK);
    query_progress(client);
    assert_eq!(result.load(SeqCst), PAN_ERR_INVALID_ARGUMENT);
    // SAFETY: valid pointer.
    unsafe { pan_client_set_log(client as *mut PanClient, 0, None, ptr::null_mut()) };
    // SAFETY: from pan_client_new, no thread uses it any more.
    unsafe { pan_client_free(client as *mut PanClient) };
}

/// Found by review (issue 19): a sink that makes a call needing the client's own token while
/// another thread fetches that token, and a third thread that sets the log meanwhile, hung
/// all three (the fetching thread's line waited behind the waiting writer). No lock is held
/// while a sink runs now: all three end, with no time-out.
#[test]
fn a_sink_calling_in_while_a_fetch_runs_and_the_log_is_set_cannot_deadlock() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let emu = support::Emulator::start();
    // The token fetch takes 800 ms.
    emu.fault(r#"{"path":"/api/v1/access_token","delay_ms":800}"#);
    let c = Arc::new(support::credentials_client(&emu, r#","timeoutMs":30000"#));
    let opts = pan_offline::OfflineDownload::new("https://example.com/l.mp4").expect("opts");
    let fired = Arc::new(AtomicBool::new(false));
    let inner = Arc::new(std::sync::Mutex::new(None));
    {
        let (c2, fired, inner, opts) = (
            Arc::clone(&c),
            Arc::clone(&fired),
            Arc::clone(&inner),
            opts.clone(),
        );
        c.set_log(
            pan_offline::Level::Debug,
            Some(Arc::new(move |_, line: &str| {
                // The first line of the explicit-token call below: call in with the client's
                // own token, which the other thread is fetching.
                let _ = line;
                let on_caller = std::thread::current().name() == Some("caller");
                if !on_caller || fired.swap(true, Ordering::SeqCst) {
                    return;
                }
                let r = c2.offline_download(None, &opts).map(|_| ());
                *inner.lock().expect("inner") = Some(r);
            })),
        )
        .expect("log set");
    }
    let t = Instant::now();
    let fetcher = {
        let (c, opts) = (Arc::clone(&c), opts.clone());
        std::thread::spawn(move || c.offline_download(None, &opts).map(|_| ()))
    };
    std::thread::sleep(Duration::from_millis(100));
    let caller = {
        let (c, opts) = (Arc::clone(&c), opts.clone());
        std::thread::Builder::new()
            .name("caller".into())
            .spawn(move || {
                let token = pan_offline::Token::new(support::TOKEN).expect("token");
                c.offline_download(Some(&token), &opts).map(|_| ())
            })
            .expect("thread")
    };
    std::thread::sleep(Duration::from_millis(100));
    let setter = {
        let c = Arc::clone(&c);
        std::thread::spawn(move || c.set_log(pan_offline::Level::Debug, Some(Arc::new(|_, _| {}))))
    };
    fetcher
        .join()
        .expect("fetcher")
        .expect("fetched and created");
    caller.join().expect("caller").expect("created");
    setter.join().expect("setter").expect("log set");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let inner = inner
        .lock()
        .expect("inner")
        .take()
        .expect("the sink called in");
    inner.expect("the call from inside the sink");
}
