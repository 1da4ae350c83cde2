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
    assert_eq!(e.status(), Status::HttpStatus);
    assert_eq!(emu.requests().len(), 1, "the redirect was not followed");
}

#[test]
fn a_certificate_nobody_vouches_for_is_a_tls_error() {
    // A self-signed certificate for 127.0.0.1, made for this test.
    let dir = support::build_dir().join("tls");
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl makes a certificate (.ci/run installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let emu = Emulator::start_with(&[
        "--tls-cert",
        cert.to_str().expect("path"),
        "--tls-key",
        key.to_str().expect("path"),
    ]);
    assert!(emu.url.starts_with("https://"));
    let c = Client::new(
        Config::from_json(&format!(r#"{{"baseUrl":"{}","maxRetries":0}}"#, emu.url)).expect("cfg"),
    )
    .expect("client");
    let e = c
        .offline_download(
            Some(&Token::new("test-token").expect("t")),
            &OfflineDownload::new("https://x/").expect("o"),
        )
        .expect_err("untrusted certificate");
    assert_eq!(e.status(), Status::Tls, "{e}");
    assert!(e.message().to_lowercase().contains("certificate"), "{e}");
}
