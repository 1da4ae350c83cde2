//! The create call against the emulator: the request on the wire, and every outcome mapping.

mod support;

use std::time::{Duration, Instant};

use pan_offline::{Client, Config, OfflineDownload, Status, Token};
use support::{Emulator, TOKEN};

fn client(emu: &Emulator, extra: &str) -> Client {
    let json = format!(r#"{{"baseUrl":"{}","maxRetries":0{extra}}}"#, emu.url);
    Client::new(Config::from_json(&json).expect("config")).expect("client")
}

fn token() -> Token {
    Token::new(TOKEN).expect("token")
}

fn create(c: &Client, json: &str) -> pan_offline::Result<i64> {
    c.offline_download(Some(&token()), &OfflineDownload::from_json(json)?)
        .map(|created| created.task_id)
}

const URL_ONLY: &str = r#"{"url":"https://example.com/a.mp4"}"#;

#[test]
fn create_sends_exactly_the_given_fields_and_the_platform_headers() {
    let emu = Emulator::start();
    let c = client(&emu, "");
    let created = c
        .offline_download(
            Some(&Token::new("Bearer test-token").expect("token")),
            &OfflineDownload::from_json(
                r#"{"url":"https://example.com/测试.mp4","fileName":"测试https离线下载.mp4","dirID":10023,"callBackUrl":"http://127.0.0.1:9/cb"}"#,
            )
            .expect("options"),
        )
        .expect("created");
    assert!(created.task_id > 0);
    assert!(
        created.trace_id.ends_with("_emulator"),
        "{}",
        created.trace_id
    );
    let reqs = emu.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r["method"], "POST");
    assert_eq!(r["path"], "/api/v1/offline/download");
    assert_eq!(r["headers"]["platform"], "open_platform");
    assert_eq!(r["headers"]["authorization"], "Bearer test-token");
    assert_eq!(r["headers"]["content-type"], "application/json");
    assert_eq!(
        r["headers"]["user-agent"],
        concat!("pan-offline/", env!("CARGO_PKG_VERSION"))
    );
    let body: serde_json::Value =
        serde_json::from_str(r["body"].as_str().expect("body")).expect("json");
    assert_eq!(
        body,
        serde_json::json!({"url":"https://example.com/测试.mp4","fileName":"测试https离线下载.mp4","dirID":10023,"callBackUrl":"http://127.0.0.1:9/cb"})
    );
    assert_eq!(r["task"], created.task_id);
}

#[test]
fn an_empty_user_agent_sends_none_and_host_names_the_base_url() {
    let emu = Emulator::start();
    create(&client(&emu, r#","userAgent":"""#), URL_ONLY).expect("created");
    let r = &emu.requests()[0];
    assert!(r["headers"].get("user-agent").is_none(), "{r}");
    let authority = emu.url.trim_start_matches("http://");
    assert_eq!(r["headers"]["host"], authority);
    assert_eq!(r["headers"]["content-length"], URL_ONLY.len().to_string());
}

#[test]
fn absent_fields_are_left_out_not_sent_as_null() {
    let emu = Emulator::start();
    create(&client(&emu, ""), URL_ONLY).expect("created");
    assert_eq!(
        emu.requests()[0]["body"],
        r#"{"url":"https://example.com/a.mp4"}"#
    );
}

#[test]
fn task_ids_increase_and_calls_reuse_one_connection() {
    let emu = Emulator::start();
    let c = client(&emu, "");
    let a = create(&c, URL_ONLY).expect("first");
    let b = create(&c, URL_ONLY).expect("second");
    assert!(b > a);
    let reqs = emu.requests();
    assert_eq!(
        reqs[0]["conn"], reqs[1]["conn"],
        "keep-alive connection reused"
    );
}

#[test]
fn invalid_input_sends_nothing() {
    let emu = Emulator::start();
    let c = client(&emu, "");
    for bad in [
        r#"{"url":"ftp://x/y"}"#,
        r#"{"url":"https://x/","dirID":0}"#,
        r#"{"url":"https://x/","dirId":5}"#,
        r#"{"url":"https://x/","fileName":"a/b"}"#,
        "[1]",
        "{",
    ] {
        assert!(create(&c, bad).is_err(), "{bad}");
    }
    for bad in ["", "a b", "tok\r\nX-Injected: 1"] {
        assert_eq!(
            Token::new(bad).err().map(|e| e.status()),
            Some(Status::InvalidArgument)
        );
    }
    assert!(emu.requests().is_empty());
}

#[test]
fn cleartext_base_url_to_a_remote_host_is_refused_before_connecting() {
    let e = Config::from_json(r#"{"baseUrl":"http://open-api.123pan.com"}"#).expect_err("refused");
    assert_eq!(e.status(), Status::InvalidArgument);
    assert!(e.message().contains("cleartext"));
    let cfg = Config {
        base_url: "http://192.0.2.1:80".into(),
        ..Config::default()
    };
    assert_eq!(
        Client::new(cfg).err().map(|e| e.status()),
        Some(Status::InvalidArgument)
    );
}

/// Scripts one fault, makes one create call, and returns the error.
fn fail_with(emu: &Emulator, fault: &str, extra: &str) -> pan_offline::Error {
    emu.fault(fault);
    create(&client(emu, extra), URL_ONLY).expect_err("the call fails")
}

#[test]
fn envelope_codes_map_to_statuses_with_server_message_code_and_trace_id() {
    let emu = Emulator::start();
    for (fault, status, code) in [
        (
            r#"{"code":401,"message":"tokens number has exceeded the limit"}"#,
            Status::TokenLimit,
            401,
        ),
        (
            r#"{"code":429,"message":"too many requests"}"#,
            Status::RateLimited,
            429,
        ),
        (
            r#"{"code":5066,"message":"file does not exist"}"#,
            Status::Api,
            5066,
        ),
        (
            r#"{"code":5113,"message":"traffic quota exceeded"}"#,
            Status::Api,
            5113,
        ),
        (r#"{"code":1,"message":"internal error"}"#, Status::Api, 1),
        (
            r#"{"code":777,"message":"something new"}"#,
            Status::Api,
            777,
        ),
    ] {
        let e = fail_with(&emu, fault, "");
        assert_eq!(e.status(), status, "{fault}: {e}");
        assert_eq!(e.api_code(), code);
        assert!(e.trace_id().ends_with("_emulator"));
        assert!(e.message().contains(e.trace_id()), "{e}");
        assert!(
            e.message().starts_with("create offline download task: "),
            "{e}"
        );
        let server_message: serde_json::Value = serde_json::from_str(fault).expect("json");
        assert!(e
            .message()
            .contains(server_message["message"].as_str().expect("msg")));
    }
    assert_eq!(emu.tasks_created(), 0);
}

#[test]
fn an_invalid_token_is_unauthorized() {
    let emu = Emulator::start();
    let c = client(&emu, "");
    let e = c
        .offline_download(
            Some(&Token::new("not-the-token").expect("t")),
            &OfflineDownload::new("https://x/").expect("o"),
        )
        .expect_err("refused");
    assert_eq!((e.status(), e.api_code()), (Status::Unauthorized, 401));
    assert!(!e.message().contains("not-the-token"));
}

#[test]
fn http_errors_without_envelope_name_the_status() {
    let emu = Emulator::start();
    // A gateway's 5xx without an envelope: the request may have reached the service.
    for (status, want) in [
        (500, Status::OutcomeUnknown),
        (502, Status::OutcomeUnknown),
        (503, Status::OutcomeUnknown),
        (429, Status::RateLimited),
        // Any other page of a gateway too: the request had been sent whole (issue 19).
        (404, Status::OutcomeUnknown),
        (400, Status::OutcomeUnknown),
    ] {
        let e = fail_with(
            &emu,
            &format!(r#"{{"status":{status},"body":"<html><body>gateway</body></html>"}}"#),
            "",
        );
        assert_eq!(e.status(), want, "{e}");
        assert!(e.message().contains(&status.to_string()), "{e}");
        assert_eq!(e.api_code(), 0);
    }
    // An envelope on a non-2xx answer is read.
    let e = fail_with(
        &emu,
        r#"{"status":500,"body":{"code":1,"message":"internal error","data":null,"x-traceID":"t-500"}}"#,
        "",
    );
    assert_eq!(
        (e.status(), e.api_code(), e.trace_id()),
        (Status::Api, 1, "t-500")
    );
}

#[test]
fn unusable_answers_to_a_create_are_unknown_outcomes() {
    let emu = Emulator::start();
    for fault in [
        r#"{"status":200,"body":"this is not json"}"#,
        r#"{"status":200,"body":{"unexpected":"shape"}}"#,
        r#"{"status":200,"body":{"code":0,"message":"ok","data":{}}}"#,
        r#"{"status":200,"body":{"code":0,"message":"ok","data":{"taskID":"abc"}}}"#,
        r#"{"status":200,"body":{"code":0,"message":"ok","data":{"taskID":-4}}}"#,
        r#"{"oversize":2097152}"#,
    ] {
        let e = fail_with(&emu, fault, "");
        assert_eq!(e.status(), Status::OutcomeUnknown, "{fault}: {e}");
        assert!(
            e.message().contains("may have been created"),
            "{fault}: {e}"
        );
    }
}

#[test]
fn redirects_are_refused_not_followed() {
    let emu = Emulator::start();
    let e = fail_with(&emu, r#"{"redirect":"http://127.0.0.1:9/elsewhere"}"#, "");
    // Sent whole, then redirected: the service may have acted (issue 19).
    assert_eq!(e.status(), Status::OutcomeUnknown);
    assert!(
        e.message().contains("302") && e.message().contains("not followed"),
        "{e}"
    );
    assert_eq!(emu.requests().len(), 1);
}

#[test]
fn a_stalled_server_times_out_within_the_limit() {
    let emu = Emulator::start();
    let t = Instant::now();
    let e = fail_with(&emu, r#"{"delay_ms":5000}"#, r#","timeoutMs":500"#);
    let took = t.elapsed();
    // The time ran out after the request was sent: the task may exist.
    assert_eq!(e.status(), Status::OutcomeUnknown, "{e}");
    assert!(e.message().contains("may have been created"), "{e}");
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(2000),
        "{took:?}"
    );
}

#[test]
fn refused_connections_are_network_errors_and_dropped_ones_unknown_outcomes() {
    let port = support::closed_port();
    let cfg = Config::from_json(&format!(
        r#"{{"baseUrl":"http://127.0.0.1:{port}","maxRetries":0}}"#
    ))
    .expect("cfg");
    let e = create(&Client::new(cfg).expect("client"), URL_ONLY).expect_err("refused");
    assert_eq!(e.status(), Status::Network, "{e}");

    let emu = Emulator::start();
    let e = fail_with(&emu, r#"{"drop":"after"}"#, "");
    assert_eq!(e.status(), Status::OutcomeUnknown, "{e}");
    assert!(
        e.message().contains("check before creating it again"),
        "{e}"
    );
    assert_eq!(
        emu.tasks_created(),
        1,
        "the service acted once; nothing was repeated"
    );
}

#[test]
fn a_tls_handshake_with_a_non_tls_server_is_a_tls_error() {
    let emu = Emulator::start();
    let https = emu.url.replace("http://", "https://");
    let cfg =
        Config::from_json(&format!(r#"{{"baseUrl":"{https}","maxRetries":0}}"#)).expect("cfg");
    let e = create(&Client::new(cfg).expect("client"), URL_ONLY).expect_err("tls fails");
    assert_eq!(e.status(), Status::Tls, "{e}");
}

#[test]
fn a_token_echoed_by_the_server_is_redacted() {
    let emu = Emulator::start();
    let e = fail_with(
        &emu,
        r#"{"code":401,"message":"token test-token is invalid"}"#,
        "",
    );
    assert!(!e.message().contains(TOKEN), "{e}");
    assert!(e.message().contains("<redacted>"));
}
