//! What left the socket decides whether a create's outcome is known: once the whole request
//! was written, any failure but the service's own refusal (an envelope with a `code`, a 429)
//! is `OutcomeUnknown` — a corrupt TLS record or a plaintext alert after the server acted, a
//! reset, an answer that is not HTTP, a redirect, a gateway's page — in single calls, in
//! batches and in the journal, so that no rerun creates a task twice.
//!
//! The servers here are scripts that read the whole request (so they "acted": they count it)
//! and then answer badly.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};

use pan_offline::{Client, Config, OfflineDownload, Status, Token};
use support::test_pki;

/// A server that reads each request whole, counts it, then does `how` (see the script).
struct BadServer {
    child: Child,
    _stdin: ChildStdin,
    url: String,
}

const SCRIPT: &str = r#"
import os, socket, ssl, sys, threading
how, tls = sys.argv[1], sys.argv[2] == "tls"
ctx = None
if tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    if how == "chacha-only":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("CHACHA20")
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
print("URL=%s://127.0.0.1:%d" % ("https" if tls else "http", srv.getsockname()[1]), flush=True)
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
def serve(conn):
    try:
        if ctx:
            conn = ctx.wrap_socket(conn, server_side=True)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        while len(body) < length:
            body += conn.recv(65536)
        sys.stderr.write("ACTED\n")
        if how == "garbage-record":
            os.write(conn.fileno(), b"\x17\x03\x03\x00\x10" + b"\x00" * 16)
        elif how == "plaintext-alert":
            os.write(conn.fileno(), b"\x15\x03\x03\x00\x02\x02\x28")
        elif how == "not-http":
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
        elif how == "see-other":
            conn.sendall(b"HTTP/1.1 303 See Other\r\nLocation: /done\r\nContent-Length: 0\r\n\r\n")
        elif how == "not-found-page":
            page = b"<html>404 Not Found</html>"
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(page) + page)
        elif how == "envelope-refusal":
            env = b'{"code":5113,"message":"traffic quota exceeded","data":null,"x-traceID":"t1"}'
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(env) + env)
        elif how == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()
    except Exception as e:
        sys.stderr.write("server: %r\n" % e)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

impl BadServer {
    fn start(how: &str, tls: bool) -> BadServer {
        let pki = test_pki();
        let mut child = Command::new("python3")
            .args(["-c", SCRIPT, how, if tls { "tls" } else { "plain" }])
            .arg(&pki.cert)
            .arg(&pki.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let stdin = child.stdin.take().expect("stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("URL line");
        let url = line.trim().strip_prefix("URL=").expect("URL=").to_owned();
        BadServer {
            child,
            _stdin: stdin,
            url,
        }
    }

    fn client(&self) -> Client {
        let mut json = serde_json::json!({"baseUrl": self.url, "maxRetries": 3, "timeoutMs": 5000});
        if self.url.starts_with("https") {
            json["caFile"] = test_pki().ca.to_string_lossy().into_owned().into();
        }
        Client::new(Config::from_json(&json.to_string()).expect("config")).expect("client")
    }
}

impl Drop for BadServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_create_sent_whole_then_answered_badly_is_of_unknown_outcome() {
    let token = Token::new("test-token").expect("token");
    let opts = OfflineDownload::new("https://example.com/o.mp4").expect("opts");
    for (how, tls, was) in [
        ("garbage-record", true, "TLS"),
        ("plaintext-alert", true, "TLS"),
        ("not-http", false, "not valid HTTP"),
        ("see-other", false, "303"),
        ("not-found-page", false, "404"),
        ("reset", false, "connection"),
    ] {
        let server = BadServer::start(how, tls);
        let e = server
            .client()
            .offline_download(Some(&token), &opts)
            .expect_err(how);
        assert_eq!(e.status(), Status::OutcomeUnknown, "{how}: {e}");
        assert!(e.message().contains(was), "{how}: {e}");
        assert!(e.message().contains("may have been created"), "{how}: {e}");
        // Never retried: the service may have acted.
        assert!(!e.message().contains("attempts"), "{how}: {e}");
    }
    // The service's own refusal is known: not created.
    let server = BadServer::start("envelope-refusal", false);
    let e = server
        .client()
        .offline_download(Some(&token), &opts)
        .expect_err("refused");
    assert_eq!((e.status(), e.api_code()), (Status::Api, 5113), "{e}");
}

#[test]
fn a_batch_journals_a_create_answered_badly_as_unknown_and_does_not_resend_it() {
    let server = BadServer::start("garbage-record", true);
    let client = server.client();
    let journal = support::build_dir().join(format!("outcomes-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&journal);
    let opts = pan_offline::BatchOptions {
        journal: Some(journal.clone()),
        ..Default::default()
    };
    let items = r#"[{"url":"https://example.com/j.mp4"}]"#;
    let token = Token::new("test-token").expect("token");
    let run = || {
        client
            .offline_download_batch(Some(&token), items, &opts, &mut |_| true)
            .expect("the batch ran")
    };
    let first = run();
    assert_eq!(first[0].status, Status::OutcomeUnknown, "{first:?}");
    // A rerun does not send it again: the journal says it may exist.
    let again = run();
    assert_eq!(again[0].status, Status::OutcomeUnknown, "{again:?}");
    assert!(again[0].from_journal, "{again:?}");
    let text = std::fs::read_to_string(&journal).expect("journal");
    assert_eq!(text.matches("\"send\"").count(), 1, "{text}");
    assert!(!text.contains("notCreated"), "{text}");
    let _ = std::fs::remove_file(&journal);
    std::io::stdout().flush().ok();
}

/// A TLS failure says which trust store was used, and a handshake that found nothing in
/// common says what the library offers (issue 19: it said only "HandshakeFailure").
#[test]
fn tls_failures_name_the_trust_store_and_what_is_offered() {
    let token = Token::new("test-token").expect("token");
    let opts = OfflineDownload::new("https://example.com/o.mp4").expect("opts");
    let server = BadServer::start("chacha-only", true);
    let e = server
        .client()
        .offline_download(Some(&token), &opts)
        .expect_err("no common suite");
    assert_eq!(e.status(), Status::Tls, "{e}");
    assert!(e.message().contains("trust store: config `caFile`"), "{e}");
    assert!(e.message().contains("AES-GCM suites only"), "{e}");
    assert!(e.message().contains("ChaCha20"), "{e}");
}
