//! A setting that is set but cannot be used is refused, naming where it came from — never
//! taken for unset. Environment variables that are not UTF-8 are the case here: each child
//! process (this test binary again, the `child` test) gets one and makes a client.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

mod support;

use pan_offline::{Client, Config};

/// The child: makes the process-wide client (or, with `PAN_TEST_BASE`, a client of that
/// base) and prints its status and message.
#[test]
fn child() {
    if std::env::var_os("PAN_TEST_SETTINGS_CHILD").is_none() {
        return;
    }
    let made = match std::env::var("PAN_TEST_BASE") {
        Ok(base) => Config::from_json(&format!(r#"{{"baseUrl":"{base}"}}"#))
            .and_then(Client::new)
            .and_then(|c| {
                // With PAN_TEST_CREATE: one create, through whatever TLS trust was set up.
                if std::env::var_os("PAN_TEST_CREATE").is_none() {
                    return Ok(());
                }
                let token = pan_offline::Token::new("test-token")?;
                let opts = pan_offline::OfflineDownload::new("https://example.com/s.mp4")?;
                c.offline_download(Some(&token), &opts).map(|_| ())
            }),
        Err(_) => Client::global().map(|_| ()),
    };
    match made {
        Ok(()) => println!("\nSETTINGS-RESULT 0 ok"),
        Err(e) => println!("\nSETTINGS-RESULT {} {}", e.status().code(), e.message()),
    }
}

/// Runs the child with `vars` set (and the usual ones cleared): its status and message.
fn child_with(vars: &[(&str, &[u8])], base: Option<&str>) -> (i32, String) {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["--exact", "child", "--nocapture", "--test-threads", "1"])
        .env("PAN_TEST_SETTINGS_CHILD", "1");
    for v in [
        "PAN_API_BASE_URL",
        "PAN_SHARED_STATE",
        "PAN_CREATE_QPS",
        "PAN_PROGRESS_QPS",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ] {
        cmd.env_remove(v);
    }
    if let Some(b) = base {
        cmd.env("PAN_TEST_BASE", b);
    }
    for (k, v) in vars {
        cmd.env(k, OsStr::from_bytes(v));
    }
    let out = cmd.output().expect("child runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find_map(|l| l.split_once("SETTINGS-RESULT ").map(|(_, r)| r.to_owned()))
        .unwrap_or_else(|| panic!("no result: {text}"));
    let (code, message) = line.split_once(' ').expect("code and message");
    (code.parse().expect("code"), message.to_owned())
}

#[test]
fn variables_that_are_not_utf8_are_refused_by_name() {
    const INVALID: i32 = 4;
    for (name, value, base, says) in [
        (
            "PAN_API_BASE_URL",
            &b"http://127.0.0.1:9/\xe9"[..],
            None,
            "$PAN_API_BASE_URL",
        ),
        (
            "https_proxy",
            b"http://127.0.0.1:3128/\xe9",
            Some("https://pan.test"),
            "$https_proxy",
        ),
        (
            "HTTPS_PROXY",
            b"\xff\xfe",
            Some("https://pan.test"),
            "$HTTPS_PROXY",
        ),
        (
            "no_proxy",
            b"pan.test,\xe9",
            Some("https://pan.test"),
            "$no_proxy",
        ),
        (
            "SSL_CERT_FILE",
            b"/etc/ssl/\xe9.pem",
            Some("https://pan.test"),
            "$SSL_CERT_FILE",
        ),
        ("PAN_CREATE_QPS", b"1\xe9", None, "$PAN_CREATE_QPS"),
        ("PAN_SHARED_STATE", b"/tmp/\xe9", None, "$PAN_SHARED_STATE"),
    ] {
        let (code, message) = child_with(&[(name, value)], base);
        assert_eq!(code, INVALID, "{name}: {message}");
        assert!(message.contains(says), "{name}: {message}");
    }
    // The same values in UTF-8 make a client (nothing is contacted when it is made).
    let (code, message) = child_with(&[("PAN_API_BASE_URL", b"http://127.0.0.1:9")], None);
    assert_eq!(code, 0, "{message}");
}

/// `$SSL_CERT_DIR` (OpenSSL's hashed directories, as curl and Python honour them) is read;
/// a CA in OpenSSL's `TRUSTED CERTIFICATE` form is one (issue 19: it was "holds no PEM
/// certificate").
#[test]
fn ssl_cert_dir_and_trusted_certificates_are_read() {
    let emu = support::Emulator::start_tls(&[]);
    let pki = support::test_pki();
    let dir = support::build_dir().join(format!("certdir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy(&pki.ca, dir.join("test-ca.pem")).expect("copy");
    let empty = support::build_dir().join(format!("certdir-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).expect("dir");
    let cmd = |vars: &[(&str, &[u8])]| {
        let mut v: Vec<(&str, &[u8])> = vec![("PAN_TEST_CREATE", b"1")];
        v.extend_from_slice(vars);
        child_with(&v, Some(&emu.url))
    };
    // A directory of our own beside an empty bundle; the bundle alone fails, naming both.
    let dir_b = dir.to_string_lossy().into_owned();
    let empty_b = format!("{}:{}", empty.display(), dir.display());
    assert_eq!(cmd(&[("SSL_CERT_DIR", dir_b.as_bytes())]).0, 0);
    assert_eq!(
        cmd(&[("SSL_CERT_DIR", empty_b.as_bytes())]).0,
        0,
        "a list of directories"
    );
    let (code, message) = cmd(&[]);
    assert_eq!(code, 7, "{message}");
    assert!(
        message.contains("trust store: the system CA store"),
        "{message}"
    );
    // OpenSSL's TRUSTED CERTIFICATE form, as caFile.
    let trusted = dir.join("trusted.pem");
    let ok = Command::new("openssl")
        .args(["x509", "-addtrust", "serverAuth", "-in"])
        .arg(&pki.ca)
        .arg("-out")
        .arg(&trusted)
        .status()
        .expect("openssl");
    assert!(ok.success());
    assert!(std::fs::read_to_string(&trusted)
        .expect("pem")
        .contains("BEGIN TRUSTED CERTIFICATE"));
    let json = serde_json::json!({"baseUrl": emu.url, "caFile": trusted}).to_string();
    let c = Client::new(Config::from_json(&json).expect("config")).expect("a trusted certificate");
    c.offline_download(
        Some(&pan_offline::Token::new("test-token").expect("token")),
        &pan_offline::OfflineDownload::new("https://example.com/t.mp4").expect("opts"),
    )
    .expect("verified by it");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&empty);
}
