//! Bulk work at the service's pace: pacing per client shared by all its threads, 429 pauses
//! for every caller of a kind, turns that cannot come in time (nothing sent), and the
//! running-task limit — against an emulator that enforces a rate and a cap as the service
//! does, and counts what it refused.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pan_offline::{Client, Config, OfflineDownload, Status, Token};
use serde_json::{json, Value};
use support::{client, Emulator, TOKEN};

fn create(c: &Client, token: Option<&Token>) -> pan_offline::Result<i64> {
    c.offline_download(
        token,
        &OfflineDownload::new("https://example.com/bulk.mp4").expect("opts"),
    )
    .map(|t| t.task_id)
}

fn refused(emu: &Emulator) -> Value {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .new_agent();
    let text = agent
        .get(&format!("{}/__emu/refused", emu.url))
        .call()
        .expect("refused counts")
        .body_mut()
        .read_to_string()
        .expect("body");
    serde_json::from_str(&text).expect("json")
}

#[test]
fn a_client_paced_at_the_enforced_rate_gets_no_429_from_1_to_32_threads() {
    const RATE: f64 = 10.0;
    const CALLS: usize = 32;
    let mut figures = Vec::new();
    for threads in [1usize, 2, 8, 32] {
        let emu = Emulator::start();
        // The strict limiter: every request in the trailing second counts, refused ones too.
        emu.configure(
            &json!({"rate_limits": {"create": RATE}, "rate_window_mode": "strict"}).to_string(),
        );
        // maxRetries 0: a 429 would be an error, not hidden by a retry.
        let c = Arc::new(client(
            &emu,
            &format!(r#","createQps":{RATE},"maxRetries":0"#),
        ));
        let t = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let c = Arc::clone(&c);
                let n = CALLS / threads + usize::from(i < CALLS % threads);
                std::thread::spawn(move || {
                    let token = Token::new(TOKEN).expect("token");
                    (0..n)
                        .map(|_| create(&c, Some(&token)).map(|_| ()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let results: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect();
        let secs = t.elapsed().as_secs_f64();
        let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(failed.is_empty(), "{threads} threads: {failed:?}");
        assert_eq!(emu.tasks_created(), CALLS as u64);
        let r = refused(&emu);
        assert_eq!(
            r["rate"]["create"].as_u64().unwrap_or(0),
            0,
            "{threads} threads: {r}"
        );
        // The first call goes at once: 31 intervals of 0.1 s at least.
        assert!(secs >= (CALLS - 1) as f64 / RATE * 0.99, "{secs}");
        let most = emu.max_in_any_second("/api/v1/offline/download");
        assert!(
            most <= RATE as usize,
            "{threads} threads: {most} in one second"
        );
        figures.push(format!(
            "{threads} threads: {CALLS} creates in {secs:.2} s = {:.2}/s (paced at {RATE}), 0 refused, \
             at most {most} in any second",
            (CALLS - 1) as f64 / secs
        ));
    }
    println!("{}", figures.join("\n"));
}

#[test]
fn an_unpaced_client_bursts_into_the_limit_and_is_refused() {
    // The same emulator and calls without pacing: the limit is real.
    let emu = Emulator::start();
    emu.configure(r#"{"rate_limits":{"create":5}}"#);
    let c = client(&emu, r#","maxRetries":0"#);
    let token = Token::new(TOKEN).expect("token");
    let outcomes: Vec<_> = (0..10).map(|_| create(&c, Some(&token))).collect();
    let limited = outcomes
        .iter()
        .filter(|r| r.as_ref().is_err_and(|e| e.status() == Status::RateLimited))
        .count();
    println!("unpaced: {limited} of 10 creates refused with 429 at a limit of 5 per second");
    assert!(limited >= 4, "{outcomes:?}");
    assert_eq!(refused(&emu)["rate"]["create"], limited);
}

#[test]
fn a_turn_that_cannot_come_in_time_is_not_sent() {
    let emu = Emulator::start();
    let c = client(&emu, r#","createQps":1,"timeoutMs":400"#);
    let token = Token::new(TOKEN).expect("token");
    create(&c, Some(&token)).expect("the first turn is now");
    let t = Instant::now();
    let e = create(&c, Some(&token)).expect_err("the next turn is a second away");
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(e.status(), Status::Timeout, "{e}");
    assert!(
        e.message().contains("createQps") && e.message().contains("no task was created"),
        "{e}"
    );
    assert_eq!(emu.count("/api/v1/offline/download"), 1);
}

#[test]
fn retries_after_a_401_and_a_429_take_turns_on_many_threads_and_finish() {
    let emu = Emulator::start_with(&["--client", "test-client:test-secret"]);
    let c = Arc::new(client(
        &emu,
        r#","createQps":1,"clientID":"test-client","clientSecret":"test-secret","timeoutMs":20000"#,
    ));
    create(&c, None).expect("the client's token");
    // The next creates: one refused as invalid (renew, repeat), one asked to slow down.
    emu.fault(
        r#"[{"path":"/api/v1/offline/download","code":401,"message":"invalid access_token"},
            {"path":"/api/v1/offline/download","status":429,"body":"","headers":{"Retry-After":"1"}}]"#,
    );
    let t = Instant::now();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || create(&c, None))
        })
        .collect();
    for h in handles {
        h.join().expect("thread").expect("every call succeeds");
    }
    // Three creates and two repeats at 1 per second, a renewal and a one-second pause: about
    // 5 s; a lock held while waiting would deadlock, and the test would not end.
    let secs = t.elapsed().as_secs_f64();
    assert!((3.0..15.0).contains(&secs), "{secs}");
    assert_eq!(emu.tasks_created(), 4);
    assert_eq!(emu.count("/api/v1/access_token"), 2, "one renewal");
}

#[test]
fn a_429_pauses_every_caller_of_that_kind() {
    let emu = Emulator::start();
    let c = Arc::new(client(&emu, r#","createQps":100,"progressQps":100"#));
    emu.fault(r#"{"path":"/api/v1/offline/download","status":429,"body":"","headers":{"Retry-After":"1"}}"#);
    let t = Instant::now();
    let call = |c: Arc<Client>| {
        std::thread::spawn(move || {
            create(&c, Some(&Token::new(TOKEN).expect("token"))).expect("created");
            Instant::now()
        })
    };
    // The first call gets the 429; three more start after it came back.
    let first = call(Arc::clone(&c));
    std::thread::sleep(Duration::from_millis(200));
    let others: Vec<_> = (0..3).map(|_| call(Arc::clone(&c))).collect();
    // Progress queries are another kind: not paused.
    let p = t.elapsed();
    let answered = c.offline_progress(
        Some(&Token::new(TOKEN).expect("token")),
        pan_offline::Target::Drive,
        1,
    );
    // (No such task: the service's answer, at once.)
    assert_eq!(answered.expect_err("no task 1").api_code(), 5066);
    assert!(t.elapsed() - p < Duration::from_millis(300));
    for h in std::iter::once(first).chain(others) {
        let end = h.join().expect("thread");
        assert!(
            end.duration_since(t) >= Duration::from_millis(950),
            "a call ended {:?} after the start, inside the pause",
            end.duration_since(t)
        );
    }
}

#[test]
fn the_running_task_limit_is_its_own_status_and_certainly_created_nothing() {
    let emu = Emulator::start();
    emu.configure(r#"{"max_running":2,"task_seconds":30}"#);
    let c = client(&emu, "");
    let token = Token::new(TOKEN).expect("token");
    create(&c, Some(&token)).expect("one");
    create(&c, Some(&token)).expect("two");
    let e = create(&c, Some(&token)).expect_err("three is over the limit");
    assert_eq!(e.status(), Status::TaskLimit, "{e}");
    assert_eq!(e.api_code(), 2);
    assert!(e.trace_id().ends_with("_emulator"), "{e:?}");
    assert!(e.message().contains("同时下载的任务超出最大限制"), "{e}");
    assert_eq!(emu.tasks_created(), 2);
    assert_eq!(refused(&emu)["running"], 1);
}

#[test]
fn rates_are_checked_and_loopback_is_unpaced_unless_asked() {
    for bad in [
        r#"{"createQps":-1}"#,
        r#"{"progressQps":"5"}"#,
        r#"{"createQps":1e9}"#,
    ] {
        let e = Config::from_json(bad).expect_err(bad);
        assert_eq!(e.status(), Status::InvalidArgument);
        assert!(e.message().contains("Qps"), "{e}");
    }
    let emu = Emulator::start();
    let c = client(&emu, "");
    let token = Token::new(TOKEN).expect("token");
    let t = Instant::now();
    for _ in 0..20 {
        create(&c, Some(&token)).expect("created");
    }
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

/// The child's side of [`the_process_wide_client_reads_its_rates_from_the_environment`]:
/// does nothing unless run by it.
#[test]
fn environment_rates_case() {
    let Ok(want) = std::env::var("BULK_CASE_WANT") else {
        return;
    };
    let token = std::ffi::CString::new(TOKEN).expect("token");
    let opts = std::ffi::CString::new(r#"{"url":"https://example.com/a.mp4"}"#).expect("opts");
    let mut times = Vec::new();
    for _ in 0..3 {
        let mut id = 0i64;
        let t = Instant::now();
        // SAFETY: valid pointers.
        let rc = unsafe {
            pan_offline::ffi::pan_offline_download(token.as_ptr(), opts.as_ptr(), &mut id)
        };
        times.push(t.elapsed());
        if want == "refused" {
            assert_eq!(rc, pan_offline::ffi::PAN_ERR_INVALID_ARGUMENT);
            // SAFETY: the library's own string.
            let msg =
                unsafe { std::ffi::CStr::from_ptr(pan_offline::ffi::pan_last_error_message()) };
            assert!(msg.to_string_lossy().contains("$PAN_CREATE_QPS"), "{msg:?}");
        } else {
            assert_eq!(rc, pan_offline::ffi::PAN_OK);
        }
    }
    if want == "paced" {
        // Two per second: the third call comes a second after the first.
        assert!(
            times[1] + times[2] >= Duration::from_millis(900),
            "{times:?}"
        );
    }
}

#[test]
fn the_process_wide_client_reads_its_rates_from_the_environment() {
    let emu = Emulator::start();
    for (value, want) in [("2", "paced"), ("fast", "refused"), ("-1", "refused")] {
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "environment_rates_case", "--nocapture"])
            .env("BULK_CASE_WANT", want)
            .env("PAN_API_BASE_URL", &emu.url)
            .env("PAN_CREATE_QPS", value)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{value}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
