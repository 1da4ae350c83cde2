//! One account, many processes (`sharedState`): one token fetch for all of them, in both of
//! the service's token-limit behaviours; a token pushed out by other logins replaced once;
//! pacing held at the server's clock across processes, by a directory and by Redis; a pause
//! that ends without a burst; private files, refusals, `$PAN_SHARED_STATE`, no secret stored.
//!
//! The processes are this test binary itself, run again with `PAN_TEST_CHILD` set: the
//! `child` test then makes the calls it is told to and prints what happened.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pan_offline::{Client, Config, OfflineDownload, Status, Token};
use serde_json::{json, Value};
use support::{Emulator, TOKEN};

/// A fresh directory under the system's temporary one (not made: the library makes it).
fn state_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pan-state-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// What a child process is asked to do.
fn child_spec(emu: &Emulator, state: &str, creates: usize, extra: Value) -> Value {
    let mut config = json!({
        "baseUrl": emu.url,
        "clientID": "test-client",
        "clientSecret": "test-secret",
        "sharedState": state,
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    json!({"config": config, "creates": creates})
}

/// Starts a child process of this test binary with `spec`.
fn spawn_child(spec: &Value) -> Child {
    child_command(spec).spawn().expect("child process")
}

fn child_command(spec: &Value) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["--exact", "child", "--nocapture", "--test-threads", "1"])
        .env("PAN_TEST_CHILD", spec.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

/// Waits for a child and reads its statuses (0 for each create that made a task).
fn child_statuses(child: Child) -> Vec<i64> {
    let out = child.wait_with_output().expect("child ends");
    assert!(out.status.success(), "child failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.split_once("CHILD-RESULT ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no result line in {text}"));
    serde_json::from_str(line).expect("result JSON")
}

fn run_children(specs: &[Value]) -> Vec<Vec<i64>> {
    let children: Vec<_> = specs.iter().map(spawn_child).collect();
    children.into_iter().map(child_statuses).collect()
}

/// The entry point of the child processes (does nothing in the parent's run).
#[test]
fn child() {
    let Ok(spec) = std::env::var("PAN_TEST_CHILD") else {
        return;
    };
    let spec: Value = serde_json::from_str(&spec).expect("spec");
    let global = spec["global"].as_bool().unwrap_or(false);
    let made = if global {
        Client::global().map(|c| (c, Some(Token::new(TOKEN).expect("token"))))
    } else {
        let c = Client::new(Config::from_json(&spec["config"].to_string()).expect("config"))
            .expect("client");
        Ok((&*Box::leak(Box::new(c)), None))
    };
    let (client, token) = match made {
        Ok(m) => m,
        Err(e) => {
            eprintln!("child: {e}");
            println!("CHILD-RESULT {}", json!([e.status().code()]));
            return;
        }
    };
    let statuses: Vec<i64> = (0..spec["creates"].as_u64().unwrap_or(0))
        .map(|i| {
            let opts = OfflineDownload::new(&format!("https://example.com/child-{i}.mp4"))
                .expect("options");
            match client.offline_download(token.as_ref(), &opts) {
                Ok(_) => 0,
                Err(e) => {
                    eprintln!("child: {e}");
                    i64::from(e.status().code())
                }
            }
        })
        .collect();
    println!("CHILD-RESULT {}", json!(statuses));
}

/// 12 processes × 3 creates, with credentials, in one state: one token fetch, in both of the
/// token-limit behaviours (refusing a fourth token, or pushing out the oldest).
#[test]
fn twelve_processes_share_one_token_fetch_in_both_token_limit_modes() {
    for mode in ["refuse", "evict"] {
        let emu = Emulator::start();
        emu.configure(&json!({"token_limit_mode": mode}).to_string());
        let dir = state_dir(&format!("twelve-{mode}"));
        let spec = child_spec(&emu, dir.to_str().expect("utf-8"), 3, json!({}));
        let t = Instant::now();
        let results = run_children(&vec![spec; 12]);
        let all: Vec<i64> = results.concat();
        assert_eq!(all, vec![0; 36], "{mode}: {results:?}");
        let s = emu.stats();
        assert_eq!(s["token_fetches"], 1, "{mode}: {s}");
        assert_eq!(s["token_fetch_refusals"], 0, "{mode}: {s}");
        assert_eq!(emu.tasks_created(), 36);
        println!(
            "{mode}: 12 processes x 3 creates in {:.2} s: 36 tasks, 1 token fetch",
            t.elapsed().as_secs_f64()
        );
        no_secret_is_stored(&dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Every file of the state is private, and none holds the client secret; tokens only in the
/// token records.
fn no_secret_is_stored(dir: &Path) {
    let mode = std::fs::metadata(dir)
        .expect("state dir")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
    let mut files = 0;
    for f in std::fs::read_dir(dir).expect("list") {
        let f = f.expect("entry");
        let name = f.file_name().to_string_lossy().into_owned();
        let mode = f.metadata().expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
        let text = std::fs::read_to_string(f.path()).expect("read");
        assert!(!text.contains("test-secret"), "{name}: {text}");
        if !name.starts_with("token-") || !name.ends_with(".json") {
            assert!(!text.contains("tok-"), "{name} holds a token: {text}");
        }
        files += 1;
    }
    assert!(files >= 2, "token record and lock expected");
}

/// A stored token pushed out by another program's logins: the 4 processes that meet it
/// replace it with one fetch between them.
#[test]
fn a_pushed_out_token_is_replaced_once_for_four_processes() {
    let emu = Emulator::start();
    emu.configure(r#"{"token_limit_mode":"evict"}"#);
    let dir = state_dir("pushed-out");
    let spec = child_spec(&emu, dir.to_str().expect("utf-8"), 1, json!({}));
    // One process fetches and stores a token.
    assert_eq!(run_children(std::slice::from_ref(&spec)), vec![vec![0]]);
    // Another program logs in three times: the stored token is pushed out.
    for _ in 0..3 {
        let r = emu.login("test-client");
        assert_eq!(r["code"], 0, "{r}");
    }
    emu.reset();
    let results = run_children(&vec![spec; 4]);
    assert_eq!(results.concat(), vec![0; 4], "{results:?}");
    let s = emu.stats();
    assert_eq!(s["token_fetches"], 1, "{s}");
    // At most one refused use per process: each tried the pushed-out token once.
    assert!(s["evicted_uses"].as_u64().unwrap_or(99) <= 4, "{s}");
    assert!(s["evicted_uses"].as_u64().unwrap_or(0) >= 1, "{s}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// 4 processes at a shared `createQps` of 2 against a server that refuses the third request
/// of any trailing second (refused ones counted): never more than 2 in a second, 0 refused.
fn four_processes_hold_the_shared_rate(state: &str, label: &str) {
    let emu = Emulator::start();
    emu.configure(r#"{"rate_limits":{"create":2},"rate_window_mode":"strict"}"#);
    let spec = child_spec(
        &emu,
        state,
        3,
        json!({"createQps": 2, "maxRetries": 0, "timeoutMs": 20000}),
    );
    let t = Instant::now();
    let results = run_children(&vec![spec; 4]);
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(results.concat(), vec![0; 12], "{label}: {results:?}");
    let s = emu.stats();
    assert_eq!(
        s["rate_refused"]["create"].as_u64().unwrap_or(0),
        0,
        "{label}: {s}"
    );
    let most = emu.max_in_any_second("/api/v1/offline/download");
    assert!(most <= 2, "{label}: {most} creates in one second");
    assert_eq!(s["token_fetches"], 1, "{label}: {s}");
    println!(
        "{label}: 4 processes x 3 creates at a shared createQps 2: {secs:.2} s, at most {most} \
         in any second, 0 refused, 1 token fetch"
    );
}

#[test]
fn four_processes_share_the_rate_through_a_directory() {
    let dir = state_dir("rate");
    four_processes_hold_the_shared_rate(dir.to_str().expect("utf-8"), "directory");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `redis-server` of this test on a free loopback port, stopped when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = support::closed_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect(
                "redis-server runs (Debian: apt-get install redis-server; .ci/run installs it)",
            );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn four_processes_share_the_rate_and_the_token_through_redis() {
    let redis = Redis::start();
    four_processes_hold_the_shared_rate(&redis.url(), "redis");
    // 12 processes, one fetch, as with a directory.
    let emu = Emulator::start();
    let spec = child_spec(&emu, &redis.url(), 2, json!({}));
    let results = run_children(&vec![spec; 12]);
    assert_eq!(results.concat(), vec![0; 24], "{results:?}");
    assert_eq!(emu.stats()["token_fetches"], 1);
}

#[test]
fn a_redis_that_is_down_is_a_clear_status_in_time() {
    let emu = Emulator::start();
    let url = format!("redis://:hunter2pw@127.0.0.1:{}/0", support::closed_port());
    let spec = child_spec(&emu, &url, 0, json!({"timeoutMs": 3000}));
    let c = Client::new(Config::from_json(&spec["config"].to_string()).expect("config"))
        .expect("made without connecting");
    let t = Instant::now();
    let e = c
        .offline_download(
            None,
            &OfflineDownload::new("https://example.com/a.mp4").expect("opts"),
        )
        .expect_err("no Redis");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert_eq!(e.status(), Status::Network, "{e}");
    assert!(e.message().contains("shared state Redis"), "{e}");
    assert!(!e.message().contains("hunter2pw"), "{e}");
    assert!(!format!("{c:?}").contains("hunter2pw"));
    assert_eq!(emu.tasks_created(), 0);
}

/// 6 threads at `createQps` 2; the first create is answered 429 with `Retry-After: 2`: when
/// the pause ends the waiting creates reach the server an interval apart, not together.
#[test]
fn a_pause_ends_without_a_burst() {
    let emu = Emulator::start();
    let c = Arc::new(support::client(&emu, r#","createQps":2,"timeoutMs":30000"#));
    emu.fault(
        r#"{"path":"/api/v1/offline/download","status":429,"body":"","headers":{"Retry-After":"2"}}"#,
    );
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20 * i));
                c.offline_download(
                    Some(&Token::new(TOKEN).expect("token")),
                    &OfflineDownload::new("https://example.com/p.mp4").expect("opts"),
                )
                .map(|_| ())
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread").expect("created");
    }
    let mut t: Vec<f64> = emu
        .requests()
        .iter()
        .filter(|r| r["path"] == "/api/v1/offline/download")
        .filter_map(|r| r["mono"].as_f64())
        .collect();
    t.sort_by(f64::total_cmp);
    assert_eq!(t.len(), 7, "6 creates and the refused one");
    let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    // The pause: 2 s after the 429 (at least the interval before the next).
    assert!(gaps[0] >= 1.9, "{gaps:?}");
    // After it, one interval (0.55 s) apart, less the scheduler's jitter.
    for g in &gaps[1..] {
        assert!(*g >= 0.5, "a burst after the pause: gaps {gaps:?}");
    }
    assert_eq!(emu.max_in_any_second("/api/v1/offline/download"), 2);
}

/// The gateway's own 429 (HTTP 429, no envelope, `Retry-After`) pauses like the envelope's.
#[test]
fn a_gateway_429_is_a_rate_limit() {
    let emu = Emulator::start();
    emu.configure(
        r#"{"rate_limits":{"create":1},"rate_window_mode":"strict","rate_limit_form":"gateway"}"#,
    );
    // Unpaced: the second create meets the gateway, waits its Retry-After and goes through.
    let c = support::client(&emu, r#","maxRetries":2,"timeoutMs":10000"#);
    let token = Token::new(TOKEN).expect("token");
    let opts = OfflineDownload::new("https://example.com/g.mp4").expect("opts");
    c.offline_download(Some(&token), &opts).expect("first");
    let t = Instant::now();
    c.offline_download(Some(&token), &opts)
        .expect("second, after the gateway's pause");
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(emu.stats()["rate_refused"]["create"], 1);
    // Without retries, the status says what happened.
    let c = support::client(&emu, r#","maxRetries":0"#);
    let e = c
        .offline_download(Some(&token), &opts)
        .expect_err("limited");
    assert_eq!(e.status(), Status::RateLimited, "{e}");
}

#[test]
fn unsafe_state_directories_are_refused_by_name() {
    let open = state_dir("world-writable");
    std::fs::create_dir_all(&open).expect("made");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let foreign = state_dir("foreign");
    std::fs::create_dir_all(&foreign).expect("made");
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let file = state_dir("a-file");
    std::fs::write(&file, b"x").expect("file");
    // Root may give the directory away (as another user's would be); others skip that case.
    let gave_away = Command::new("chown")
        .args(["65534", foreign.to_str().expect("utf-8")])
        .status()
        .is_ok_and(|s| s.success());
    let mut cases = vec![
        (open.clone(), "group or others"),
        (file.clone(), "is not a directory"),
    ];
    if gave_away {
        cases.push((foreign.clone(), "belongs to user 65534"));
    }
    for (dir, why) in cases {
        let json = json!({"baseUrl": "http://127.0.0.1:9", "sharedState": dir}).to_string();
        let e = Config::from_json(&json)
            .and_then(Client::new)
            .expect_err("refused");
        assert_eq!(e.status(), Status::InvalidArgument, "{e}");
        assert!(e.message().contains("`sharedState`"), "{e}");
        assert!(e.message().contains(why), "{why}: {e}");
    }
    for (spec, why) in [
        ("", "`sharedState` is empty"),
        ("ftp://x/y", "neither a directory path"),
        ("redis://", "not a usable Redis URL"),
    ] {
        let json = json!({"baseUrl": "http://127.0.0.1:9", "sharedState": spec}).to_string();
        let e = Config::from_json(&json)
            .and_then(Client::new)
            .expect_err("refused");
        assert_eq!(e.status(), Status::InvalidArgument, "{spec}: {e}");
        assert!(e.message().contains(why), "{spec}: {e}");
    }
    for d in [open, foreign, file] {
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_file(&d);
    }
}

/// The process-wide client takes its state from `$PAN_SHARED_STATE`; a value that is not
/// UTF-8 is refused, naming the variable, never treated as unset.
#[test]
fn the_process_wide_client_reads_pan_shared_state() {
    use std::os::unix::ffi::OsStrExt;
    let emu = Emulator::start();
    let dir = state_dir("env");
    let spec = json!({"global": true, "creates": 2});
    let mut cmd = child_command(&spec);
    cmd.env("PAN_API_BASE_URL", &emu.url)
        .env("PAN_SHARED_STATE", &dir)
        .env("PAN_CREATE_QPS", "5");
    assert_eq!(child_statuses(cmd.spawn().expect("child")), vec![0, 0]);
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("the state was made")
        .map(|f| f.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.starts_with("pace-")), "{names:?}");
    let mut cmd = child_command(&spec);
    cmd.env("PAN_API_BASE_URL", &emu.url).env(
        "PAN_SHARED_STATE",
        std::ffi::OsStr::from_bytes(b"/tmp/pan-\xe9-state"),
    );
    assert_eq!(
        child_statuses(cmd.spawn().expect("child")),
        vec![i64::from(Status::InvalidArgument.code())]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Found by review: damage in the store is forgotten, never waited for or a panic; a FIFO in
/// place of a file fails the call at once; a silent Redis holds a call no longer than its
/// `timeoutMs`.
#[test]
fn a_damaged_store_is_survived_in_time() {
    let emu = Emulator::start();
    let token = Token::new(TOKEN).expect("token");
    let opts = OfflineDownload::new("https://example.com/d.mp4").expect("opts");
    // Redis: a schedule years ahead, and a number too large for any integer.
    let redis = Redis::start();
    let c = support::client(
        &emu,
        &format!(
            r#","sharedState":"{}","createQps":10,"timeoutMs":3000"#,
            redis.url()
        ),
    );
    c.offline_download(Some(&token), &opts).expect("first");
    let r = redis::Client::open(redis.url()).expect("redis url");
    let mut conn = r.get_connection().expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("pan-offline:*:pace:create")
        .query(&mut conn)
        .expect("keys");
    assert_eq!(keys.len(), 1, "{keys:?}");
    for value in [
        "99999999999999999999999",
        "9223372036854775807",
        "-5",
        "garbage",
    ] {
        let _: () = redis::cmd("HSET")
            .arg(&keys[0])
            .arg("last")
            .arg(value)
            .arg("paused")
            .arg(value)
            .query(&mut conn)
            .expect("hset");
        let t = Instant::now();
        c.offline_download(Some(&token), &opts)
            .unwrap_or_else(|e| panic!("{value}: {e}"));
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{value}: {:?}",
            t.elapsed()
        );
    }
    // A directory: a FIFO in place of the pacing file, then the whole directory removed.
    let dir = state_dir("damaged");
    let c = support::client(
        &emu,
        &format!(
            r#","sharedState":"{}","createQps":10,"timeoutMs":2000"#,
            dir.display()
        ),
    );
    c.offline_download(Some(&token), &opts).expect("first");
    let pace = std::fs::read_dir(&dir)
        .expect("list")
        .map(|f| f.expect("entry").path())
        .find(|p| p.to_string_lossy().contains("pace-"))
        .expect("a pacing file");
    std::fs::remove_file(&pace).expect("rm");
    assert!(Command::new("mkfifo")
        .arg(&pace)
        .status()
        .expect("mkfifo")
        .success());
    let t = Instant::now();
    let e = c.offline_download(Some(&token), &opts).expect_err("a FIFO");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(e.message().contains("not a regular file"), "{e}");
    std::fs::remove_dir_all(&dir).expect("rm -r");
    c.offline_download(Some(&token), &opts)
        .expect("the directory is made again");
    assert_eq!(
        std::fs::metadata(&dir).expect("made").permissions().mode() & 0o777,
        0o700
    );
    let _ = std::fs::remove_dir_all(&dir);
    // Redis that accepts and never answers: within timeoutMs, with or without a password.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let held = std::thread::spawn(move || {
        let conns: Vec<_> = silent.incoming().take(4).collect();
        std::thread::sleep(Duration::from_secs(8));
        drop(conns);
    });
    for url in [
        format!("redis://127.0.0.1:{port}/0"),
        format!("redis://:pw@127.0.0.1:{port}/0"),
    ] {
        let c = support::client(
            &emu,
            &format!(r#","sharedState":"{url}","createQps":10,"timeoutMs":1000"#),
        );
        let t = Instant::now();
        let e = c.offline_download(Some(&token), &opts).expect_err("silent");
        assert!(
            t.elapsed() < Duration::from_millis(1400),
            "{url}: {:?}",
            t.elapsed()
        );
        assert!(
            matches!(e.status(), Status::Timeout | Status::Network),
            "{url}: {e}"
        );
    }
    drop(held);
}

/// Found by review: the state is the account's, each process's rate its own — a slow process
/// does not hold back a fast one; one process's wrong secret does not lock the others out; a
/// misspelt Redis URL is refused, not made a directory named after its password.
#[test]
fn processes_differ_without_harming_each_other() {
    let emu = Emulator::start();
    let dir = state_dir("differ");
    let state = dir.to_str().expect("utf-8");
    let opts = OfflineDownload::new("https://example.com/m.mp4").expect("opts");
    let token = Token::new(TOKEN).expect("token");
    let slow = support::client(
        &emu,
        &format!(r#","sharedState":"{state}","createQps":0.05"#),
    );
    slow.offline_download(Some(&token), &opts).expect("slow");
    let fast = support::client(
        &emu,
        &format!(r#","sharedState":"{state}","createQps":10,"timeoutMs":3000"#),
    );
    let t = Instant::now();
    for _ in 0..3 {
        fast.offline_download(Some(&token), &opts).expect("fast");
    }
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // A wrong secret fails alone.
    let wrong = support::client(
        &emu,
        &format!(r#","clientID":"test-client","clientSecret":"typo","sharedState":"{state}""#),
    );
    let e = wrong
        .offline_download(None, &opts)
        .expect_err("wrong secret");
    assert_eq!(e.status(), Status::Unauthorized, "{e}");
    let right = support::credentials_client(&emu, &format!(r#","sharedState":"{state}""#));
    right
        .offline_download(None, &opts)
        .expect("the right secret is not locked out");
    let _ = std::fs::remove_dir_all(&dir);
    // Misspelt Redis URLs.
    let cwd = std::env::current_dir().expect("cwd");
    for spec in [
        "redis:/:s3cretpw@h/0",
        "redis//:s3cretpw@h/0",
        "redis+unix://:s3cretpw@x",
    ] {
        let json = json!({"baseUrl": emu.url, "sharedState": spec}).to_string();
        let e = Config::from_json(&json)
            .and_then(Client::new)
            .expect_err(spec);
        assert_eq!(e.status(), Status::InvalidArgument, "{spec}: {e}");
        assert!(!e.message().contains("s3cretpw"), "{spec}: {e}");
        assert!(
            !cwd.join(spec.split('/').next().unwrap_or(spec)).exists()
                || spec.starts_with("redis+")
        );
    }
    // A state inside a directory others may change (not sticky) is refused.
    let open_parent = state_dir("open-parent");
    std::fs::create_dir_all(&open_parent).expect("made");
    std::fs::set_permissions(&open_parent, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let json = json!({"baseUrl": emu.url, "sharedState": open_parent.join("state")}).to_string();
    let e = Config::from_json(&json)
        .and_then(Client::new)
        .expect_err("parent");
    assert!(e.message().contains("another user may change"), "{e}");
    let _ = std::fs::remove_dir_all(&open_parent);
}

/// Found by review: a token source's waiters keep their own time limits; its failures are
/// tried again after 1 s (doubling), not a minute; a short-lived token it gives is renewed
/// before its expiry, not after a minute.
#[test]
fn a_token_source_keeps_time_limits_and_expiries() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let emu = Emulator::start();
    let opts = OfflineDownload::new("https://example.com/s.mp4").expect("opts");
    let c = Arc::new(support::client(&emu, r#","timeoutMs":1000"#));
    c.set_token_source(Some(Arc::new(|_| {
        std::thread::sleep(Duration::from_secs(3));
        Ok((TOKEN.to_owned(), 0))
    })));
    let t = Instant::now();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let c = Arc::clone(&c);
            let opts = opts.clone();
            std::thread::spawn(move || (c.offline_download(None, &opts), Instant::now()))
        })
        .collect();
    let mut timeouts = 0;
    for w in waiters {
        let (r, end) = w.join().expect("thread");
        // The thread inside the source returns when the source does (host code is not
        // interrupted); the two waiting for it return at their own limit.
        if let Err(e) = r {
            assert_eq!(e.status(), Status::Timeout, "{e}");
            if end.duration_since(t) < Duration::from_millis(1500) {
                timeouts += 1;
            }
        }
    }
    assert_eq!(timeouts, 2, "the waiters kept their time limit");
    // Failures: asked again after about a second.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = support::client(&emu, "");
    let n = Arc::clone(&calls);
    c.set_token_source(Some(Arc::new(move |_| {
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            Err("the vault is sealed".to_owned())
        } else {
            Ok((TOKEN.to_owned(), 0))
        }
    })));
    let e = c.offline_download(None, &opts).expect_err("sealed");
    assert!(e.message().contains("the vault is sealed"), "{e}");
    std::thread::sleep(Duration::from_millis(1100));
    c.offline_download(None, &opts)
        .expect("asked again after 1 s");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // A token that expires in 3 s: asked again after it, not used for a minute.
    let calls = Arc::new(AtomicUsize::new(0));
    let n = Arc::clone(&calls);
    let c = support::client(&emu, "");
    c.set_token_source(Some(Arc::new(move |_| {
        n.fetch_add(1, Ordering::SeqCst);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        Ok((TOKEN.to_owned(), now + 3))
    })));
    c.offline_download(None, &opts).expect("first");
    c.offline_download(None, &opts).expect("same token");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    std::thread::sleep(Duration::from_millis(3100));
    c.offline_download(None, &opts).expect("renewed");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
