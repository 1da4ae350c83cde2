//! Servers, clocks and host programs as they are: what real servers send that is a little
//! off-spec (HTTP-date `Retry-After`, folded headers, endless trailers, compressed answers,
//! byte-order marks, GBK text, lone surrogates, integers written as floats, a percentage a
//! hair above 100), what a failed create means, and token caches under clocks that disagree.

mod support;

use std::time::{Duration, Instant};

use pan_offline::{Client, Config, OfflineDownload, Status, Target, Token};
use serde_json::json;
use support::{client, credentials_client, Emulator, TOKEN};

fn token() -> Token {
    Token::new(TOKEN).expect("token")
}

fn create(c: &Client) -> pan_offline::Result<i64> {
    c.offline_download(
        Some(&token()),
        &OfflineDownload::new("https://example.com/a.mp4").expect("opts"),
    )
    .map(|t| t.task_id)
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn retry_after_as_an_http_date_is_honoured_like_seconds() {
    let emu = Emulator::start();
    let c = client(&emu, r#","maxRetries":2"#);
    // IMF-fixdate 2 s ahead (second precision: 1 to 2 s of waiting).
    let at = std::time::SystemTime::now() + Duration::from_secs(2);
    for (header, min_ms, max_ms) in [
        (httpdate::fmt_http_date(at), 900, 2600),
        // In the past: retry at once, not after the backoff.
        ("Sun, 06 Nov 1994 08:49:37 GMT".to_owned(), 0, 150),
        ("Sunday, 06-Nov-94 08:49:37 GMT".to_owned(), 0, 150),
        ("Sun Nov  6 08:49:37 1994".to_owned(), 0, 150),
    ] {
        emu.reset();
        emu.fault(
            &json!({"status": 429, "body": "slow down", "headers": {"Retry-After": header}})
                .to_string(),
        );
        let t = Instant::now();
        let id = create(&c).expect("created after the pause");
        let ms = t.elapsed().as_millis();
        assert!(id > 0);
        assert!(
            (min_ms..max_ms).contains(&ms),
            "Retry-After {header}: {ms} ms"
        );
        assert_eq!(emu.count("/api/v1/offline/download"), 2, "{header}");
    }
    // Envelope 429 with an HTTP-date, on a progress query.
    emu.fault(&json!({"code": 429, "message": "busy", "headers": {"Retry-After": httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(1))}}).to_string());
    let t = Instant::now();
    c.offline_progress(Some(&token()), Target::Drive, 394756)
        .expect("answered after the pause");
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn off_spec_answers_keep_what_they_say() {
    let emu = Emulator::start();
    let c = client(&emu, r#","maxRetries":0,"timeoutMs":3000"#);
    // A folded header (obs-fold, RFC 9112 §5.2) before a success answer.
    let body = r#"{"code":0,"message":"ok","data":{"taskID":77},"x-traceID":"t-fold"}"#;
    // (The emulator closes the connection after a raw answer, so the answer says so: a client
    // that pooled it would race the server's FIN on the next create.)
    emu.fault(&json!({"raw": format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Note: first\r\n  continued\r\n\tand again\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())}).to_string());
    assert_eq!(create(&c).expect("folded header read as spaces"), 77);
    // A byte-order mark before the JSON (RFC 8259 §8.1).
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(br#"{"code":0,"message":"ok","data":{"taskID":88},"x-traceID":"t"}"#);
    emu.fault(&json!({"status": 200, "body_b64": b64(&bom)}).to_string());
    assert_eq!(create(&c).expect("BOM skipped"), 88);
    // Integers written as floats.
    for (id, want) in [("394756.0", 394756), ("3.94756e5", 394756)] {
        emu.fault(
            &json!({"status": 200, "body": format!(r#"{{"code":0,"data":{{"taskID":{id}}}}}"#)})
                .to_string(),
        );
        assert_eq!(create(&c).expect(id), want);
    }
    emu.fault(
        &json!({"status": 200, "body": r#"{"code":0,"data":{"taskID":394756.5}}"#}).to_string(),
    );
    // Unreadable after a create sent whole: of unknown outcome (issue 19).
    assert_eq!(
        create(&c).expect_err("a fraction").status(),
        Status::OutcomeUnknown
    );
    // Error envelopes whose message is not UTF-8 (GBK) or holds a lone surrogate keep their
    // code and trace ID.
    let mut gbk = br#"{"code":5113,"message":""#.to_vec();
    gbk.extend_from_slice(b"\xc1\xf7\xc1\xbf\xb2\xbb\xd7\xe3");
    gbk.extend_from_slice(br#"","x-traceID":"t-gbk"}"#);
    for (fault, trace) in [
        (json!({"status": 200, "body_b64": b64(&gbk)}), "t-gbk"),
        (
            json!({"status": 200, "body": r#"{"code":5113,"message":"quota \ud83d over","x-traceID":"t-sur"}"#}),
            "t-sur",
        ),
    ] {
        emu.fault(&fault.to_string());
        let e = create(&c).expect_err("an API error");
        assert_eq!(
            (e.status(), e.api_code(), e.trace_id()),
            (Status::Api, 5113, trace),
            "{e}"
        );
        assert!(e.message().contains('\u{fffd}'), "{e}");
    }
    // A compressed answer although `identity` was asked for.
    emu.fault(&json!({"status": 200, "body_b64": b64(b"\x1f\x8b\x08\x00\x00\x00\x00\x00"), "headers": {"Content-Encoding": "gzip"}}).to_string());
    let e = create(&c).expect_err("compressed");
    assert_eq!(e.status(), Status::OutcomeUnknown);
    assert!(e.message().contains("Content-Encoding: gzip"), "{e}");
    let asked = emu.requests();
    assert_eq!(
        asked.last().expect("a request")["headers"]["accept-encoding"],
        "identity"
    );
}

#[test]
fn an_endless_trailer_section_stops_at_the_header_cap() {
    let emu = Emulator::start();
    let c = client(&emu, r#","timeoutMs":20000"#);
    emu.fault(r#"{"trailer_bytes":50000000}"#);
    let t = Instant::now();
    let id = create(&c).expect("the body before the trailers is complete");
    assert!(id > 0);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(emu.tasks_created(), 1);
    // The connection was not reused.
    assert!(create(&c).expect("again") > id);
}

#[test]
fn a_progress_a_hair_outside_0_to_100_is_clamped() {
    let emu = Emulator::start();
    let c = client(&emu, r#","pollIntervalMs":200"#);
    let id = create(&c).expect("created");
    for (process, status, want) in [
        ("100.0000000000001", 2, 100.0),
        ("-0.0000001", 0, 0.0),
        ("1e2", 2, 100.0),
    ] {
        emu.fault(&json!({"path": "/api/v1/offline/download/process", "status": 200, "body": format!(r#"{{"code":0,"data":{{"process":{process},"status":{status}}},"x-traceID":"t"}}"#)}).to_string());
        let p = c
            .offline_progress(Some(&token()), Target::Drive, id)
            .expect(process);
        assert_eq!(p.process, want, "{process}");
    }
    emu.fault(r#"{"path":"/api/v1/offline/download/process","status":200,"body":{"code":0,"data":{"process":100.0000000000001,"status":2}}}"#);
    let status = c
        .wait(
            Some(&token()),
            Target::Drive,
            id,
            Some(Duration::from_secs(5)),
            &mut |_| true,
        )
        .expect("the wait ends on the poll that says success");
    assert_eq!(status, pan_offline::TaskStatus::Succeeded);
}

#[test]
fn a_create_whose_answer_is_lost_is_an_unknown_outcome_and_reads_are_not() {
    let emu = Emulator::start();
    let c = client(&emu, r#","maxRetries":3,"timeoutMs":800"#);
    for fault in [
        r#"{"drop":"after"}"#,
        r#"{"truncate":true}"#,
        r#"{"delay_ms":2000}"#,
        r#"{"status":502,"body":"<html>bad gateway</html>"}"#,
        r#"{"status":504,"body":""}"#,
    ] {
        emu.reset();
        emu.fault(fault);
        for target in [Target::Drive, Target::Image] {
            let opts = OfflineDownload::from_json_for(target, r#"{"url":"https://e.com/a.png"}"#)
                .expect("opts");
            if target == Target::Image {
                emu.fault(fault);
            }
            let e = c.offline_download(Some(&token()), &opts).expect_err(fault);
            assert_eq!(e.status(), Status::OutcomeUnknown, "{fault}: {e}");
            assert!(
                e.message().contains("check before creating it again"),
                "{e}"
            );
        }
        // Never retried.
        assert_eq!(emu.count("/api/v1/offline/download"), 1, "{fault}");
        assert_eq!(emu.count("/api/v1/oss/offline/download"), 1, "{fault}");
        // A read with the same fault: a network error or time-out, retried as reads are.
        emu.fault(fault);
        if let Err(e) = c.offline_progress(Some(&token()), Target::Drive, 394756) {
            assert!(
                matches!(
                    e.status(),
                    Status::Network | Status::Timeout | Status::HttpStatus
                ),
                "{fault}: {e}"
            );
        }
    }
    // Nothing sent: a refused connection stays a network error.
    let closed = support::closed_port();
    let c = Client::new(
        Config::from_json(&format!(
            r#"{{"baseUrl":"http://127.0.0.1:{closed}","maxRetries":0}}"#
        ))
        .expect("config"),
    )
    .expect("client");
    assert_eq!(create(&c).expect_err("refused").status(), Status::Network);
}

/// Six creates with a client that fetches its own token; returns the token fetches the
/// emulator saw.
fn token_fetches(emu: &Emulator) -> usize {
    let c = credentials_client(emu, "");
    let opts = OfflineDownload::new("https://example.com/a.mp4").expect("opts");
    for i in 0..6 {
        c.offline_download(None, &opts)
            .unwrap_or_else(|e| panic!("call {i}: {e}"));
    }
    emu.count("/api/v1/access_token")
}

#[test]
fn a_token_is_fetched_once_whatever_the_clocks_and_the_expiry_format() {
    let day = 86_400.0;
    for (settings, why) in [
        (json!({}), "agreeing clocks"),
        // The machine's clock 31 days ahead of the service's: by it, `expiredAt` (30 days on
        // the service's clock) passed a day ago.
        (
            json!({"clock_skew_s": -31.0 * day}),
            "clock ahead, service Date sent",
        ),
        (
            json!({"clock_skew_s": -31.0 * day, "send_date": false}),
            "clock ahead, no Date",
        ),
        (json!({"clock_skew_s": 2.0 * day}), "clock behind"),
        (json!({"expiry_format": "compact"}), "+0800"),
        (json!({"expiry_format": "naive"}), "no offset"),
        (json!({"expiry_format": "z"}), "Z"),
        (json!({"expiry_format": "fraction"}), "fraction"),
        (json!({"expiry_format": "garbage"}), "unreadable"),
        (
            json!({"token_ttl": 30.0}),
            "a short lifetime: the floor of a minute",
        ),
    ] {
        let emu = Emulator::start_with(&["--client", "test-client:test-secret"]);
        emu.configure(&settings.to_string());
        assert_eq!(token_fetches(&emu), 1, "{why}");
    }
}

#[test]
fn a_401_renews_once_per_token() {
    let emu = Emulator::start_with(&["--client", "test-client:test-secret"]);
    // Tokens that the service lets expire after a second, while `expiredAt` says 30 days.
    let c = credentials_client(&emu, "");
    let opts = OfflineDownload::new("https://example.com/a.mp4").expect("opts");
    c.offline_download(None, &opts).expect("first");
    // Every token is refused from now on: one renewal for this call, not a storm.
    emu.fault(
        r#"{"path":"/api/v1/offline/download","code":401,"message":"invalid token","times":100}"#,
    );
    let e = c.offline_download(None, &opts).expect_err("refused twice");
    assert_eq!(e.status(), Status::Unauthorized);
    assert_eq!(emu.count("/api/v1/access_token"), 2);
}

#[test]
fn a_complete_body_is_kept_when_trailers_come_slowly() {
    let emu = Emulator::start();
    let c = client(&emu, r#","timeoutMs":3000"#);
    emu.fault(r#"{"trailer_drip_ms":500}"#);
    let t = Instant::now();
    assert!(create(&c).expect("the body before the trailers is whole") > 0);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

#[test]
fn gateway_answers_of_every_kind_are_unknown_outcomes_for_creates() {
    let emu = Emulator::start();
    let c = client(&emu, r#","maxRetries":0"#);
    for fault in [
        json!({"status": 502, "body_b64": b64(b"\x1f\x8b\x08\x00\x00\x00"), "headers": {"Content-Encoding": "gzip"}}),
        json!({"status": 500, "body": r#"{"code":1.5,"message":"x"}"#}),
        json!({"status": 503, "body": ""}),
    ] {
        emu.fault(&fault.to_string());
        let e = create(&c).expect_err("lost");
        assert_eq!(e.status(), Status::OutcomeUnknown, "{fault}: {e}");
    }
    // A coding the request did not ask for, named rather than quoted as junk.
    let body = b"\x1f\x8b\x08\x00junk";
    let mut raw = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n{:x}\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw.extend_from_slice(b"\r\n0\r\n\r\n");
    emu.fault(&json!({"raw_b64": b64(&raw)}).to_string());
    let e = create(&c).expect_err("encoded");
    assert_eq!(e.status(), Status::OutcomeUnknown);
    assert!(
        e.message().contains("Transfer-Encoding: gzip, chunked"),
        "{e}"
    );
    assert!(!e.message().contains('\u{fffd}'), "junk quoted: {e}");
}

#[test]
fn retry_after_dates_are_read_against_the_servers_own_clock() {
    let emu = Emulator::start();
    // The server's clock an hour behind this machine's; it asks for 2 s by its own clock.
    emu.configure(r#"{"clock_skew_s":-3600}"#);
    let at = std::time::SystemTime::now() - Duration::from_secs(3600) + Duration::from_secs(2);
    emu.fault(&json!({"status": 429, "body": "", "headers": {"Retry-After": httpdate::fmt_http_date(at)}}).to_string());
    let c = client(&emu, r#","maxRetries":1"#);
    let t = Instant::now();
    create(&c).expect("created after the pause");
    let ms = t.elapsed().as_millis();
    assert!((700..3000).contains(&ms), "{ms} ms");
}

#[test]
fn a_wait_ends_by_its_limit_and_keeps_the_last_trace_id() {
    let emu = Emulator::start();
    let c = client(&emu, r#","pollIntervalMs":200"#);
    let id = create(&c).expect("created");
    emu.fault(r#"{"path":"/api/v1/offline/download/process","delay_ms":3000,"times":5}"#);
    let t = Instant::now();
    let e = c
        .wait(
            Some(&token()),
            Target::Drive,
            id,
            Some(Duration::from_millis(300)),
            &mut |_| true,
        )
        .expect_err("time-out");
    assert_eq!(e.status(), Status::Timeout);
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn token_fetches_that_fail_are_not_repeated_per_call() {
    for (settings, fault) in [
        (json!({"max_tokens": 0}), None),
        (
            json!({}),
            Some(
                json!({"path": "/api/v1/access_token", "status": 502, "body": "down", "times": 100}),
            ),
        ),
        (
            json!({}),
            Some(json!({"path": "/api/v1/access_token", "drop": "before", "times": 100})),
        ),
    ] {
        let emu = Emulator::start_with(&["--client", "test-client:test-secret"]);
        emu.configure(&settings.to_string());
        if let Some(f) = &fault {
            emu.fault(&f.to_string());
        }
        let c = credentials_client(&emu, r#","maxRetries":0"#);
        let opts = OfflineDownload::new("https://example.com/a.mp4").expect("opts");
        for _ in 0..6 {
            c.offline_download(None, &opts).expect_err("no token");
        }
        assert_eq!(emu.count("/api/v1/access_token"), 1, "{settings} {fault:?}");
        assert_eq!(emu.count("/api/v1/offline/download"), 0);
    }
}

#[test]
fn a_service_that_refuses_every_token_does_not_cause_a_token_storm() {
    let emu = Emulator::start_with(&["--client", "test-client:test-secret"]);
    let c = credentials_client(&emu, "");
    emu.fault(r#"{"path":"/api/v1/offline/download","code":401,"message":"invalid access_token","times":100}"#);
    let opts = OfflineDownload::new("https://example.com/a.mp4").expect("opts");
    for _ in 0..12 {
        let e = c.offline_download(None, &opts).expect_err("refused");
        assert_eq!(e.status(), Status::Unauthorized);
    }
    assert_eq!(
        emu.count("/api/v1/access_token"),
        2,
        "one fetch, one renewal"
    );
}

#[test]
fn callbacks_are_read_as_leniently_as_answers() {
    for (body, reason, file) in [
        ("\u{feff}{\"status\":0,\"fileID\":7}", "", 7),
        (
            r#"{"status":1,"failReason":"bad \ud800 half","fileID":0}"#,
            "bad \u{fffd} half",
            0,
        ),
        (r#"{"status":0,"fileID":100.0}"#, "", 100),
        (r#"{"status":0,"fileID":1e2}"#, "", 100),
        (
            r#"{"status":1,"fileReason":"prose","failReason":"example","fileID":0}"#,
            "example",
            0,
        ),
        (
            "{\"status\":1,\"failReason\":\"raw\ttab\",\"fileID\":0}",
            "raw\\ttab",
            0,
        ),
    ] {
        let cb = pan_offline::Callback::parse(body).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!((cb.reason.as_str(), cb.file_id), (reason, file), "{body}");
    }
}
