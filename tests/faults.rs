//! The fault matrix: each server misbehaviour the emulator can script, against one create call.
//! Every row pins the status, what the message says, how long the call took at most, how many
//! create requests reached the server and how many tasks it created.

mod support;

use std::time::{Duration, Instant};

use pan_offline::{Client, Config, OfflineDownload, Status, Token};
use support::{client, Emulator, TOKEN};

struct Row {
    name: &'static str,
    /// Fault JSON for the emulator (empty: none).
    fault: &'static str,
    /// Extra client configuration.
    config: &'static str,
    status: Status,
    /// Substrings the message must contain.
    says: &'static [&'static str],
    max_ms: u64,
    min_ms: u64,
    /// Create requests the server received.
    requests: usize,
    /// Tasks the server created (counted when the call returns).
    tasks: u64,
}

const ROWS: &[Row] = &[
    Row {
        name: "connection dropped before the request is read",
        fault: r#"{"drop":"before"}"#,
        config: "",
        status: Status::OutcomeUnknown,
        says: &["may have been created", "connection"],
        max_ms: 2000,
        min_ms: 0,
        requests: 1,
        tasks: 0,
    },
    Row {
        name: "connection dropped after the request was acted on",
        fault: r#"{"drop":"after"}"#,
        config: "",
        status: Status::OutcomeUnknown,
        says: &["may have been created", "connection"],
        max_ms: 2000,
        min_ms: 0,
        requests: 1,
        tasks: 1,
    },
    Row {
        name: "stall before the headers",
        fault: r#"{"delay_ms":4000}"#,
        config: r#","timeoutMs":1000"#,
        status: Status::OutcomeUnknown,
        says: &["may have been created", "time limit"],
        max_ms: 1800,
        min_ms: 950,
        requests: 1,
        tasks: 0,
    },
    Row {
        name: "body dripped slower than the limit",
        fault: r#"{"drip_ms":100}"#,
        config: r#","timeoutMs":1000"#,
        status: Status::OutcomeUnknown,
        says: &["may have been created", "time limit"],
        max_ms: 1800,
        min_ms: 950,
        requests: 1,
        tasks: 1,
    },
    Row {
        name: "truncated body",
        fault: r#"{"truncate":true}"#,
        config: "",
        status: Status::OutcomeUnknown,
        says: &["may have been created", "connection"],
        max_ms: 2000,
        min_ms: 0,
        requests: 1,
        tasks: 1,
    },
    Row {
        name: "Content-Length shorter than the body",
        fault: r#"{"content_length":12}"#,
        config: "",
        status: Status::OutcomeUnknown,
        says: &["not an API envelope"],
        max_ms: 2000,
        min_ms: 0,
        requests: 1,
        tasks: 1,
    },
    Row {
        name: "64 MiB body",
        fault: r#"{"oversize":67108864}"#,
        config: "",
        status: Status::OutcomeUnknown,
        says: &["larger than the limit of 1048576 bytes"],
        max_ms: 3000,
        min_ms: 0,
        requests: 1,
        tasks: 0,
    },
    Row {
        name: "not JSON",
        fault: r#"{"status":200,"body":"hello, world"}"#,
        config: "",
        status: Status::OutcomeUnknown,
        says: &["not an API envelope", "hello, world"],
        max_ms: 2000,
        min_ms: 0,
        requests: 1,
        tasks: 0,
    },
    Row {
        name: "JSON of the wrong shape",
        fault: r#"{"status":200,"body":[1,2,3]}"#,
        config: "",
        status: Status::OutcomeUnknown,
        says: &["not an API envelope"],
        max_ms: 2000,
        min_ms: 0,
        requests: 1,
        tasks: 0,
    },
    Row {
        name: "missing taskID",
        fault: r#"{"status":200,"body":{"code":0,"message":"ok","data":{},"x-traceID":"t-1"}}"#,
        config: "",
        status: Status::OutcomeUnknown,
        says: &["data.taskID", "t-1"],
        max_ms: 2000,
        min_ms: 0,
        requests: 1,
        tasks: 0,
    },
    Row {
        name: "non-numeric taskID",
        fault: r#"{"status":200,"body":{"code":0,"message":"ok","data":{"taskID":"soon"},"x-traceID":"t-2"}}"#,
        config: "",
        status: Status::OutcomeUnknown,
        says: &["data.taskID", "soon"],
        max_ms: 2000,
        min_ms: 0,
        requests: 1,
        tasks: 0,
    },
    Row {
        name: "HTML 500",
        fault: r#"{"status":500,"body":"<html><h1>500 Internal Server Error</h1></html>"}"#,
        config: "",
        status: Status::OutcomeUnknown,
        says: &[
            "may have been created",
            "HTTP 500",
            "without an API envelope",
        ],
        max_ms: 2000,
        min_ms: 0,
        requests: 1,
        tasks: 0,
    },
    Row {
        name: "HTML 502",
        fault: r#"{"status":502,"body":"<html><h1>502 Bad Gateway</h1></html>"}"#,
        config: "",
        status: Status::OutcomeUnknown,
        says: &["may have been created", "HTTP 502 Bad Gateway"],
        max_ms: 2000,
        min_ms: 0,
        requests: 1,
        tasks: 0,
    },
    Row {
        name: "HTML 503",
        fault: r#"{"status":503,"body":"<html>maintenance</html>"}"#,
        config: "",
        status: Status::OutcomeUnknown,
        says: &["may have been created", "HTTP 503"],
        max_ms: 2000,
        min_ms: 0,
        requests: 1,
        tasks: 0,
    },
    Row {
        name: "HTTP 429 with Retry-After",
        fault: r#"{"status":429,"body":"<html>slow</html>","headers":{"Retry-After":"1"},"times":5}"#,
        config: r#","maxRetries":1"#,
        status: Status::RateLimited,
        says: &["429"],
        max_ms: 2500,
        min_ms: 950,
        requests: 2,
        tasks: 0,
    },
    Row {
        name: "HTTP 429 without Retry-After",
        fault: r#"{"status":429,"body":"","times":5}"#,
        config: r#","maxRetries":2"#,
        status: Status::RateLimited,
        says: &["429"],
        max_ms: 3000,
        min_ms: 250,
        requests: 3,
        tasks: 0,
    },
    Row {
        name: "redirect",
        fault: r#"{"redirect":"/api/v1/offline/download"}"#,
        config: "",
        status: Status::OutcomeUnknown,
        says: &["302", "not followed"],
        max_ms: 2000,
        min_ms: 0,
        requests: 1,
        tasks: 0,
    },
    Row {
        name: "401 invalid token",
        fault: r#"{"code":401,"message":"invalid access_token"}"#,
        config: "",
        status: Status::Unauthorized,
        says: &["401", "invalid access_token", "_emulator"],
        max_ms: 2000,
        min_ms: 0,
        requests: 1,
        tasks: 0,
    },
    Row {
        name: "401 token limit",
        fault: r#"{"code":401,"message":"tokens number has exceeded the limit"}"#,
        config: "",
        status: Status::TokenLimit,
        says: &["tokens number has exceeded the limit"],
        max_ms: 2000,
        min_ms: 0,
        requests: 1,
        tasks: 0,
    },
    Row {
        name: "unknown error code",
        fault: r#"{"code":98765,"message":"a code nobody documented"}"#,
        config: "",
        status: Status::Api,
        says: &["98765", "a code nobody documented"],
        max_ms: 2000,
        min_ms: 0,
        requests: 1,
        tasks: 0,
    },
];

fn create(c: &Client) -> pan_offline::Result<i64> {
    let opts = OfflineDownload::new("https://example.com/fault.mp4")?;
    c.offline_download(Some(&Token::new(TOKEN)?), &opts)
        .map(|c| c.task_id)
}

#[test]
fn every_scripted_fault_gets_its_status_message_time_and_task_count() {
    // Each row gets its own emulator so that counts and late side effects cannot mix; rows
    // run a few at a time to bound the wall time.
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = ROWS.iter().map(|row| s.spawn(move || check(row))).collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().expect("row thread").err())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        ROWS.len(),
        failures.join("\n")
    );
}

fn check(row: &Row) -> Result<(), String> {
    let emu = Emulator::start();
    if !row.fault.is_empty() {
        emu.fault(row.fault);
    }
    let c = client(&emu, row.config);
    let t = Instant::now();
    let result = create(&c);
    let took = t.elapsed();
    let tasks = emu.tasks_created();
    let requests = emu.count("/api/v1/offline/download");
    let e = match result {
        Ok(id) => return Err(format!("{}: succeeded with task {id}", row.name)),
        Err(e) => e,
    };
    eprintln!("{:<50} {:>5} ms  {e}", row.name, took.as_millis());
    let mut problems = Vec::new();
    if e.status() != row.status {
        problems.push(format!("status {:?}, want {:?}", e.status(), row.status));
    }
    for s in row.says {
        if !e.message().contains(s) {
            problems.push(format!("message lacks {s:?}"));
        }
    }
    if !e.message().starts_with("create offline download task: ") {
        problems.push("message does not say what failed".into());
    }
    if e.message().contains(TOKEN) {
        problems.push("message contains the token".into());
    }
    if took > Duration::from_millis(row.max_ms) || took < Duration::from_millis(row.min_ms) {
        problems.push(format!(
            "took {took:?}, want {}..{} ms",
            row.min_ms, row.max_ms
        ));
    }
    if requests != row.requests {
        problems.push(format!("{requests} create requests, want {}", row.requests));
    }
    if tasks != row.tasks {
        problems.push(format!("{tasks} tasks created, want {}", row.tasks));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {} ({e})", row.name, problems.join("; ")))
    }
}

#[test]
fn a_refused_connection_is_retried_then_reported_within_the_limit() {
    let port = support::closed_port();
    let cfg = Config::from_json(&format!(
        r#"{{"baseUrl":"http://127.0.0.1:{port}","timeoutMs":3000}}"#
    ))
    .expect("cfg");
    let t = Instant::now();
    let e = create(&Client::new(cfg).expect("client")).expect_err("refused");
    let took = t.elapsed();
    assert_eq!(e.status(), Status::Network, "{e}");
    assert!(e.message().contains("refused"), "{e}");
    // Three retries with backoff (0.1-0.2 s, 0.2-0.4 s, 0.4-0.8 s): nothing was sent, so
    // retrying is safe, and it all stays within the call's limit.
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_millis(3000),
        "{took:?}"
    );
}

#[test]
fn a_server_closing_idle_connections_between_calls_costs_nothing() {
    let emu = Emulator::start();
    emu.configure(r#"{"idle_close_ms":100}"#);
    let c = client(&emu, "");
    let a = create(&c).expect("first");
    std::thread::sleep(Duration::from_millis(400));
    let b = create(&c).expect("second, on a fresh connection");
    assert!(b > a);
    let reqs = emu.requests();
    assert_eq!(reqs.len(), 2, "no call was repeated");
    assert_ne!(
        reqs[0]["conn"], reqs[1]["conn"],
        "the closed connection was not reused"
    );
    assert_eq!(emu.tasks_created(), 2);
}

#[test]
fn oversized_response_headers_are_refused() {
    let emu = Emulator::start();
    let big = "x".repeat(100_000);
    emu.fault(&format!(
        r#"{{"status":200,"body":"{{}}","headers":{{"X-Big":"{big}"}}}}"#
    ));
    let e = create(&client(&emu, "")).expect_err("refused");
    // After a create sent whole: of unknown outcome (issue 19).
    assert_eq!(e.status(), Status::OutcomeUnknown, "{e}");
    assert!(e.message().contains("header"), "{e}");
}

#[test]
fn chunked_and_close_delimited_answers_are_read_whole() {
    // Gateways often answer with Transfer-Encoding: chunked (here 7-byte chunks, each its own
    // write, so the body arrives over many reads); an HTTP/1.0-style answer has no length and
    // ends when the server closes. The connection is reused after the last chunk, not after a
    // close.
    for (fault, reused) in [
        (r#"{"chunked":7}"#, true),
        (r#"{"close_delimited":true}"#, false),
    ] {
        let emu = Emulator::start();
        emu.fault(fault);
        let c = client(&emu, "");
        let a = create(&c).expect(fault);
        let b = create(&c).expect("then a plain answer");
        assert_eq!(b, a + 1, "{fault}");
        let reqs = emu.requests();
        assert_eq!(reqs.len(), 2, "{fault}");
        assert_eq!(reqs[0]["conn"] == reqs[1]["conn"], reused, "{fault}");
    }
}
