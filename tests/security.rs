//! The token never appears in a message, whatever path the error takes and whatever the
//! server echoes; cleartext and redirects are refused.

mod support;

use pan_offline::{Client, Config, OfflineDownload, Status, Target, Token};
use support::Emulator;

/// A token the emulator accepts, so that every fault path is reached with it.
const SECRET: &str = "SeCrEt-ToKeN-4242";

#[test]
fn the_token_appears_in_no_message_on_any_error_path() {
    let emu = Emulator::start_with(&["--token", SECRET]);
    let cfg = Config::from_json(&format!(
        r#"{{"baseUrl":"{}","maxRetries":1,"timeoutMs":1500}}"#,
        emu.url
    ))
    .expect("cfg");
    let c = Client::new(cfg).expect("client");
    let token = Token::new(SECRET).expect("token");
    let faults = [
        format!(r#"{{"code":401,"message":"token {SECRET} is invalid"}}"#),
        format!(r#"{{"code":5066,"message":"no file for Bearer {SECRET}"}}"#),
        format!(r#"{{"status":500,"body":"<html>Authorization: Bearer {SECRET}</html>"}}"#),
        format!(r#"{{"status":200,"body":"not json {SECRET}"}}"#),
        format!(
            r#"{{"status":200,"body":{{"code":0,"data":{{"taskID":"{SECRET}"}},"x-traceID":"{SECRET}"}}}}"#
        ),
        format!(
            r#"{{"status":200,"body":{{"code":7,"message":"x","x-traceID":"trace-{SECRET}"}}}}"#
        ),
        format!(r#"{{"redirect":"http://127.0.0.1:1/?token={SECRET}"}}"#),
        format!(r#"{{"status":429,"body":"{SECRET}","times":5}}"#),
        r#"{"drop":"after"}"#.to_owned(),
        r#"{"truncate":true}"#.to_owned(),
        r#"{"delay_ms":3000}"#.to_owned(),
        r#"{"oversize":2000000}"#.to_owned(),
    ];
    let mut paths = 0;
    for fault in &faults {
        for target in [Target::Drive, Target::Image] {
            emu.fault(fault);
            let opts =
                OfflineDownload::from_json_for(target, r#"{"url":"https://example.com/a.png"}"#)
                    .expect("opts");
            let e = c.offline_download(Some(&token), &opts).expect_err(fault);
            assert!(
                !e.message().contains(SECRET) && !e.trace_id().contains(SECRET),
                "{fault}: {e}"
            );
            assert!(
                !format!("{e:?}").contains(SECRET),
                "{fault}: Debug shows the token"
            );
            paths += 1;
        }
        emu.fault(fault);
        if let Err(e) = c.offline_progress(Some(&token), Target::Drive, 394756) {
            assert!(!e.message().contains(SECRET), "{fault}: {e}");
            paths += 1;
        }
    }
    // Tokens refused locally do not echo themselves either.
    for bad in [
        format!("{SECRET} x"),
        format!("{SECRET}\r\n"),
        format!("{SECRET}\u{1}"),
        format!("{SECRET}é"),
    ] {
        let e = Token::new(&bad).expect_err("refused");
        assert!(!e.message().contains(SECRET), "{e}");
        paths += 1;
    }
    assert!(paths >= 30, "{paths} error paths driven");
}

#[test]
fn cleartext_to_a_remote_host_and_redirects_are_refused() {
    for base in [
        "http://open-api.123pan.com",
        "http://10.1.2.3:8080",
        "http://localhost.evil.com",
    ] {
        let e = Config::from_json(&format!(r#"{{"baseUrl":"{base}"}}"#)).expect_err(base);
        assert_eq!(e.status(), Status::InvalidArgument);
        assert!(e.message().contains("cleartext"), "{e}");
    }
    for base in [
        "http://127.0.0.1:9",
        "http://localhost:9",
        "http://[::1]:9",
        "https://open-api.123pan.com",
    ] {
        assert!(
            Config::from_json(&format!(r#"{{"baseUrl":"{base}"}}"#)).is_ok(),
            "{base}"
        );
    }
    let emu = Emulator::start();
    emu.fault(r#"{"redirect":"/api/v1/offline/download","times":3}"#);
    let c =
        Client::new(Config::from_json(&format!(r#"{{"baseUrl":"{}"}}"#, emu.url)).expect("cfg"))
            .expect("client");
    let e = c
        .offline_download(
            Some(&Token::new("test-token").expect("t")),
            &OfflineDownload::new("https://x/").expect("o"),
        )
        .expect_err("redirect");
    // Not followed; and the create had been sent whole: of unknown outcome.
    assert_eq!(e.status(), Status::OutcomeUnknown);
    assert_eq!(emu.requests().len(), 1, "the redirect was not followed");
}

fn tls_client(emu: &Emulator, ca_file: Option<&std::path::Path>) -> pan_offline::Result<Client> {
    let ca = ca_file.map_or(String::new(), |p| {
        format!(
            r#","caFile":{}"#,
            serde_json::Value::from(p.to_str().expect("path"))
        )
    });
    Client::new(Config::from_json(&format!(
        r#"{{"baseUrl":"{}","maxRetries":0{ca}}}"#,
        emu.url
    ))?)
}

fn create(c: &Client) -> pan_offline::Result<i64> {
    c.offline_download(
        Some(&Token::new(support::TOKEN).expect("t")),
        &OfflineDownload::new("https://x/a.bin").expect("o"),
    )
    .map(|created| created.task_id)
}

#[test]
fn https_trusts_the_system_store_by_default_and_not_an_unknown_ca() {
    // The test CA is in no system store: the handshake fails on the certificate.
    let emu = Emulator::start_tls(&[]);
    let e = create(&tls_client(&emu, None).expect("client")).expect_err("untrusted CA");
    assert_eq!(e.status(), Status::Tls, "{e}");
    assert!(e.message().to_lowercase().contains("certificate"), "{e}");
}

#[test]
fn https_succeeds_with_the_ca_given_as_ca_file() {
    let emu = Emulator::start_tls(&[]);
    let c = tls_client(&emu, Some(&support::test_pki().ca)).expect("client");
    let first = create(&c).expect("a task over TLS");
    assert!(first > 0);
    // The second call reuses the TLS connection and the roots read once.
    assert_eq!(create(&c).expect("again"), first + 1);
    // A server that stops at TLS 1.2 is served by the TLS 1.2 AES-GCM suites.
    let tls12 = Emulator::start_tls(&["--tls12-only"]);
    let c = tls_client(&tls12, Some(&support::test_pki().ca)).expect("client");
    assert!(create(&c).expect("a task over TLS 1.2") > 0);
}

#[test]
fn a_ca_file_that_is_missing_or_holds_no_certificate_is_refused_by_name() {
    let emu = Emulator::start_tls(&[]);
    let missing = support::build_dir().join("no-such-ca.pem");
    let key_only = &support::test_pki().key;
    let garbage = support::build_dir().join("garbage-ca.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    for (path, want) in [
        (missing.as_path(), "cannot be read"),
        (key_only.as_path(), "holds no certificate"),
        (garbage.as_path(), "not a valid PEM file"),
    ] {
        let e = tls_client(&emu, Some(path)).expect_err("refused");
        assert_eq!(e.status(), Status::InvalidArgument, "{e}");
        assert!(e.message().contains("`caFile`"), "{e}");
        assert!(e.message().contains(want), "{path:?}: {e}");
    }
}

#[test]
fn a_plain_http_client_needs_no_roots_but_a_given_ca_file_is_still_checked() {
    let emu = Emulator::start();
    let plain =
        Client::new(Config::from_json(&format!(r#"{{"baseUrl":"{}"}}"#, emu.url)).expect("cfg"))
            .expect("client");
    assert!(create(&plain).expect("created") > 0);
    let e = Client::new(
        Config::from_json(&format!(
            r#"{{"baseUrl":"{}","caFile":"/nonexistent/ca.pem"}}"#,
            emu.url
        ))
        .expect("cfg"),
    )
    .expect_err("a caFile that cannot be read");
    assert_eq!(e.status(), Status::InvalidArgument, "{e}");
}
