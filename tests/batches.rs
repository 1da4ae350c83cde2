//! Batches through the C ABI: validation, duplicates, the callback, the journal across reruns
//! and across processes killed with SIGKILL at several points, the running-task limit, and
//! waiting for many tasks.

mod support;

use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;
use std::time::{Duration, Instant};

use pan_offline::ffi::*;
use serde_json::{json, Value};
use support::Emulator;

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

fn new_client(emu: &Emulator, extra: &str) -> *mut PanClient {
    let cfg = c(&format!(r#"{{"baseUrl":"{}"{extra}}}"#, emu.url));
    // SAFETY: a valid C string.
    let client = unsafe { pan_client_new(cfg.as_ptr()) };
    assert!(!client.is_null());
    client
}

/// What the callback saw.
#[derive(Default)]
struct Seen {
    calls: Vec<(usize, i32, i64)>,
    stop_at: Option<usize>,
    stop_on: Option<i32>,
}

unsafe extern "C" fn on_item(user: *mut c_void, index: usize, status: i32, task: i64) -> i32 {
    // SAFETY: the test passes a &mut Seen.
    let seen = unsafe { &mut *user.cast::<Seen>() };
    seen.calls.push((index, status, task));
    i32::from(seen.stop_at == Some(index) || seen.stop_on == Some(status))
}

/// Runs a batch; returns the call's status, the results (or the error message) and what the
/// callback saw.
fn batch(
    client: *const PanClient,
    items: &Value,
    opts: Option<Value>,
    stop_at: Option<usize>,
) -> (i32, Value, Vec<(usize, i32, i64)>) {
    batch_stopping(client, items, opts, stop_at, None)
}

fn batch_stopping(
    client: *const PanClient,
    items: &Value,
    opts: Option<Value>,
    stop_at: Option<usize>,
    stop_on: Option<i32>,
) -> (i32, Value, Vec<(usize, i32, i64)>) {
    let items = c(&items.to_string());
    let opts = opts.map(|o| c(&o.to_string()));
    let token = c(support::TOKEN);
    let mut seen = Seen {
        stop_at,
        stop_on,
        ..Seen::default()
    };
    let mut out: *mut c_char = ptr::null_mut();
    // SAFETY: valid pointers; the results are freed below.
    let rc = unsafe {
        pan_offline_download_batch(
            client,
            token.as_ptr(),
            items.as_ptr(),
            opts.as_ref().map_or(ptr::null(), |o| o.as_ptr()),
            Some(on_item),
            (&mut seen as *mut Seen).cast(),
            &mut out,
        )
    };
    let results = if rc == PAN_OK {
        // SAFETY: a string from the library, freed once.
        let text = unsafe { CStr::from_ptr(out) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: as above.
        unsafe { pan_string_free(out) };
        serde_json::from_str(&text).expect("results are JSON")
    } else {
        // SAFETY: the library's own string.
        Value::String(
            unsafe { CStr::from_ptr(pan_last_error_message()) }
                .to_string_lossy()
                .into_owned(),
        )
    };
    (rc, results, seen.calls)
}

fn item(n: usize) -> Value {
    json!({"url": format!("https://example.com/batch/{n}.mp4"), "dirID": 10023})
}

fn temp_journal(name: &str) -> std::path::PathBuf {
    let p = support::build_dir().join(format!("journal-{}-{name}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn items_are_validated_deduplicated_and_reported_in_order() {
    let emu = Emulator::start();
    let client = new_client(&emu, "");
    let items = json!([
        item(0),
        {"url": "ftp://example.com/x"},
        item(2),
        {"dirID": 10023, "url": "https://example.com/batch/0.mp4"},
        {"url": "https://example.com/a", "dirId": 1},
        item(5),
    ]);
    let (rc, results, calls) = batch(client, &items, None, None);
    assert_eq!(rc, PAN_OK, "{results}");
    let status: Vec<i64> = results
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["status"].as_i64().expect("status"))
        .collect();
    let invalid = i64::from(PAN_ERR_INVALID_ARGUMENT);
    assert_eq!(status, [0, invalid, 0, 0, invalid, 0]);
    assert_eq!(results[3]["duplicateOf"], 0);
    assert_eq!(results[3]["taskID"], results[0]["taskID"]);
    assert!(results[1]["error"]
        .as_str()
        .expect("error")
        .contains("`url`"));
    assert!(results[4]["error"]
        .as_str()
        .expect("error")
        .contains("dirId"));
    assert_eq!(
        emu.tasks_created(),
        3,
        "invalid items and duplicates were not sent"
    );
    assert_eq!(
        calls.iter().map(|c| c.0).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    assert_eq!(calls[0].2, results[0]["taskID"].as_i64().expect("id"));
    // The callback stops the batch: the rest are cancelled, unsent, and not called back.
    let (rc, results, calls) = batch(
        client,
        &json!([item(10), item(11), item(12), item(13)]),
        None,
        Some(1),
    );
    assert_eq!(rc, PAN_OK);
    assert_eq!(calls.len(), 2);
    assert_eq!(results[2]["status"], PAN_ERR_CANCELLED);
    assert_eq!(results[3]["status"], PAN_ERR_CANCELLED);
    assert_eq!(emu.tasks_created(), 5);
    // The batch itself cannot run.
    for (items, opts, want) in [
        ("{\"url\":\"x\"}", None, PAN_ERR_INVALID_ARGUMENT),
        ("[{", None, PAN_ERR_INVALID_JSON),
        ("[]", Some(r#"{"journal":5}"#), PAN_ERR_INVALID_ARGUMENT),
        ("[]", Some(r#"{"retry":true}"#), PAN_ERR_INVALID_ARGUMENT),
    ] {
        let items = c(items);
        let opts = opts.map(c);
        let mut out: *mut c_char = ptr::null_mut();
        // SAFETY: valid pointers.
        let rc = unsafe {
            pan_offline_download_batch(
                client,
                c(support::TOKEN).as_ptr(),
                items.as_ptr(),
                opts.as_ref().map_or(ptr::null(), |o| o.as_ptr()),
                None,
                ptr::null_mut(),
                &mut out,
            )
        };
        assert_eq!(rc, want);
        assert!(out.is_null(), "written only on success");
    }
    // SAFETY: NULL out-pointer.
    let rc = unsafe {
        pan_offline_download_batch(
            client,
            ptr::null(),
            c("[]").as_ptr(),
            ptr::null(),
            None,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    assert_eq!(rc, PAN_ERR_NULL_ARGUMENT);
    // SAFETY: from pan_client_new.
    unsafe { pan_client_free(client) };
}

#[test]
fn a_journal_makes_reruns_create_nothing_twice() {
    let emu = Emulator::start();
    let client = new_client(&emu, r#","maxRetries":0"#);
    let journal = temp_journal("rerun");
    let opts = json!({"journal": journal});
    let items = json!([item(0), item(1), item(2), item(3)]);
    // The third create's answer is lost: its outcome is unknown.
    emu.fault(r#"[{"path":"/api/v1/offline/download"},{"path":"/api/v1/offline/download"},{"path":"/api/v1/offline/download","drop":"after"}]"#);
    let (rc, first, _) = batch(client, &items, Some(opts.clone()), None);
    assert_eq!(rc, PAN_OK, "{first}");
    assert_eq!(first[2]["status"], PAN_ERR_OUTCOME_UNKNOWN, "{first}");
    assert_eq!(emu.tasks_created(), 4, "the lost answer's task exists");
    // Again, reordered: nothing is sent; the unknown stays unknown.
    let reordered = json!([item(3), item(2), item(1), item(0)]);
    let (rc, again, _) = batch(client, &reordered, Some(opts.clone()), None);
    assert_eq!(rc, PAN_OK);
    assert_eq!(emu.tasks_created(), 4);
    for (i, r) in again.as_array().expect("array").iter().enumerate() {
        assert_eq!(r["fromJournal"], true, "{r}");
        let want = if i == 1 {
            PAN_ERR_OUTCOME_UNKNOWN
        } else {
            PAN_OK
        };
        assert_eq!(r["status"], want, "{r}");
    }
    assert_eq!(again[0]["taskID"], first[3]["taskID"]);
    // With retryUnknown, the unknown one is sent again (the caller checked it).
    let (rc, retried, _) = batch(
        client,
        &items,
        Some(json!({"journal": journal, "retryUnknown": true})),
        None,
    );
    assert_eq!(rc, PAN_OK);
    assert_eq!(retried[2]["status"], PAN_OK);
    assert_eq!(emu.tasks_created(), 5);
    // A file that is not a journal is refused by name.
    let not = temp_journal("not");
    std::fs::write(&not, "id,url\n1,https://x\n").expect("write");
    let (rc, msg, _) = batch(client, &items, Some(json!({"journal": not})), None);
    assert_eq!(rc, PAN_ERR_INVALID_ARGUMENT);
    assert!(
        msg.as_str()
            .expect("message")
            .contains("not a pan-offline batch journal"),
        "{msg}"
    );
    let _ = std::fs::remove_file(&journal);
    let _ = std::fs::remove_file(&not);
    // SAFETY: from pan_client_new.
    unsafe { pan_client_free(client) };
}

/// A batch learns the account's running-task cap from the first refusal and then keeps at
/// most that many of its tasks running, each next item sent as one ends: near the ideal time,
/// with one refusal instead of one per item.
#[test]
fn a_batch_learns_the_running_cap_and_sends_as_tasks_end() {
    const ITEMS: usize = 12;
    const CAP: usize = 3;
    const TASK_S: f64 = 1.0;
    let emu = Emulator::start();
    emu.configure(&json!({"max_running": CAP, "task_seconds": TASK_S}).to_string());
    let client = new_client(&emu, r#","pollIntervalMs":200"#);
    let items: Vec<Value> = (0..ITEMS).map(|n| item(100 + n)).collect();
    let t = Instant::now();
    let (rc, results, _) = batch(client, &json!(items), None, None);
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(rc, PAN_OK);
    for r in results.as_array().expect("results") {
        assert_eq!(r["status"], PAN_OK, "{results}");
    }
    assert_eq!(emu.tasks_created(), ITEMS as u64);
    let refused = emu.stats()["running_refused"].as_u64().expect("count");
    // The ideal: the last item can go when the tasks before it in its slot have ended,
    // (ITEMS - 1) / CAP task lengths after the start (a batch returns once all are sent).
    let ideal = ((ITEMS - 1) / CAP) as f64 * TASK_S;
    println!(
        "{ITEMS} items against a running cap of {CAP} ({TASK_S} s tasks): {secs:.2} s \
         (ideal {ideal:.2} s), {refused} refused"
    );
    assert_eq!(refused, 1, "only the refusal that taught the cap");
    assert!(secs < ideal + 1.5, "{secs} s against an ideal of {ideal} s");
    // SAFETY: from pan_client_new.
    unsafe { pan_client_free(client) };
}

#[test]
fn a_batch_waits_while_too_many_tasks_are_running() {
    let emu = Emulator::start();
    emu.configure(r#"{"max_running":1,"task_seconds":2}"#);
    let client = new_client(&emu, "");
    let t = Instant::now();
    let (rc, results, _) = batch(client, &json!([item(0), item(1)]), None, None);
    assert_eq!(rc, PAN_OK);
    assert_eq!(results[1]["status"], PAN_OK, "{results}");
    // The second went when the first ended (2 s; polled each second), not after a blind 5 s.
    assert!(
        t.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        t.elapsed()
    );
    assert!(
        t.elapsed() < Duration::from_millis(4500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(emu.tasks_created(), 2);
    // With a batch limit too short to wait, the item reports the limit.
    let (rc, results, _) = batch(
        client,
        &json!([item(2), item(3)]),
        Some(json!({"timeoutMs": 1000})),
        None,
    );
    assert_eq!(rc, PAN_OK);
    assert_eq!(results[1]["status"], PAN_ERR_TASK_LIMIT, "{results}");
    assert_eq!(results[1]["apiCode"], 2);
    // The callback hears of the wait and stops the batch there, at once.
    emu.configure(r#"{"task_seconds":30}"#);
    let t = Instant::now();
    let (rc, results, calls) = batch_stopping(
        client,
        &json!([item(4), item(5), item(6)]),
        None,
        None,
        Some(PAN_ERR_TASK_LIMIT),
    );
    assert_eq!(rc, PAN_OK);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // The wait notice has a shape of its own: no settled item has task ID -1 (issue 19).
    assert!(
        calls
            .iter()
            .any(|c| c.1 == PAN_ERR_TASK_LIMIT && c.2 == PAN_BATCH_WAITING),
        "{calls:?}"
    );
    assert_eq!(results[1]["status"], PAN_ERR_CANCELLED, "{results}");
    assert_eq!(results[2]["status"], PAN_ERR_CANCELLED, "{results}");
    // SAFETY: from pan_client_new.
    unsafe { pan_client_free(client) };
}

/// The child's side of the kill test: runs the batch, prints the results.
#[test]
fn killed_batch_case() {
    let (Ok(base), Ok(journal)) = (
        std::env::var("KILL_CASE_BASE"),
        std::env::var("KILL_CASE_JOURNAL"),
    ) else {
        return;
    };
    let cfg = c(&format!(
        r#"{{"baseUrl":"{base}","createQps":8,"maxRetries":0}}"#
    ));
    // SAFETY: a valid C string.
    let client = unsafe { pan_client_new(cfg.as_ptr()) };
    let items = Value::Array((0..16).map(item).collect());
    let (rc, results, _) = batch(client, &items, Some(json!({"journal": journal})), None);
    assert_eq!(rc, PAN_OK, "{results}");
    println!("RESULTS {results}");
}

#[test]
fn batches_killed_at_any_point_create_each_item_at_most_once() {
    let emu = Emulator::start();
    let journal = temp_journal("killed");
    let run = || {
        std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "killed_batch_case", "--nocapture"])
            .env("KILL_CASE_BASE", &emu.url)
            .env("KILL_CASE_JOURNAL", &journal)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("child")
    };
    let mut kills = 0;
    for after in [2u64, 6, 11] {
        let mut child = run();
        let deadline = Instant::now() + Duration::from_secs(30);
        while emu.tasks_created() < after && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // SIGKILL: no destructor, no flush, no goodbye.
        child.kill().expect("killed");
        let _ = child.wait();
        kills += 1;
    }
    let out = run().wait_with_output().expect("the last run finishes");
    let text = String::from_utf8_lossy(&out.stdout);
    let results: Value = serde_json::from_str(
        text.lines()
            .find_map(|l| l.strip_prefix("RESULTS "))
            .unwrap_or_else(|| panic!("no results: {text}")),
    )
    .expect("json");
    // Each item created at most once at the service.
    let mut per_url: HashMap<String, u32> = HashMap::new();
    for t in emu.tasks() {
        *per_url
            .entry(t["request"]["url"].as_str().unwrap_or("").to_owned())
            .or_default() += 1;
    }
    assert!(per_url.values().all(|n| *n == 1), "{per_url:?}");
    // Every item created or unknown, at most one unknown per kill.
    let unknown = results
        .as_array()
        .expect("array")
        .iter()
        .filter(|r| r["status"] == PAN_ERR_OUTCOME_UNKNOWN)
        .count();
    assert!(
        results
            .as_array()
            .expect("array")
            .iter()
            .all(|r| r["status"] == PAN_OK || r["status"] == PAN_ERR_OUTCOME_UNKNOWN),
        "{results}"
    );
    assert!(unknown <= kills, "{unknown} unknown after {kills} kills");
    // An unknown item's request may or may not have reached the service.
    assert!((16 - unknown..=16).contains(&per_url.len()), "{per_url:?}");
    println!(
        "{kills} kills: {} tasks created for 16 items, {unknown} unknown",
        per_url.len()
    );
    let _ = std::fs::remove_file(&journal);
}

unsafe extern "C" fn count_polls(user: *mut c_void, _task: i64, _pct: f64, _status: i32) -> i32 {
    // SAFETY: the test passes a &mut usize.
    unsafe { *user.cast::<usize>() += 1 };
    0
}

#[test]
fn many_tasks_are_waited_for_together() {
    let emu = Emulator::start();
    emu.configure(r#"{"task_seconds":1}"#);
    let client = new_client(&emu, r#","pollIntervalMs":200"#);
    let (_, results, _) = batch(client, &json!([item(0), item(1), item(2)]), None, None);
    let ids: Vec<i64> = results
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["taskID"].as_i64().expect("id"))
        .collect();
    let token = c(support::TOKEN);
    let mut statuses = [-1i32; 3];
    let mut polls = 0usize;
    // SAFETY: valid pointers and lengths.
    let rc = unsafe {
        pan_offline_download_wait_many(
            client,
            token.as_ptr(),
            ids.as_ptr(),
            ids.len(),
            10_000,
            Some(count_polls),
            (&mut polls as *mut usize).cast(),
            statuses.as_mut_ptr(),
        )
    };
    assert_eq!(rc, PAN_OK);
    assert_eq!(statuses, [PAN_TASK_SUCCEEDED; 3]);
    assert!(polls >= 3, "{polls}");
    // Bad input.
    // SAFETY: NULL ids with a count.
    let rc = unsafe {
        pan_offline_download_wait_many(
            client,
            token.as_ptr(),
            ptr::null(),
            2,
            0,
            None,
            ptr::null_mut(),
            statuses.as_mut_ptr(),
        )
    };
    assert_eq!(rc, PAN_ERR_NULL_ARGUMENT);
    let bad = [5i64, -1];
    // SAFETY: valid pointers.
    let rc = unsafe {
        pan_offline_download_wait_many(
            client,
            token.as_ptr(),
            bad.as_ptr(),
            2,
            0,
            None,
            ptr::null_mut(),
            statuses.as_mut_ptr(),
        )
    };
    assert_eq!(rc, PAN_ERR_INVALID_ARGUMENT);
    // SAFETY: from pan_client_new.
    unsafe { pan_client_free(client) };
}

#[test]
fn batch_edges_time_limits_unreadable_answers_refused_tokens_and_journals_in_use() {
    let emu = Emulator::start();
    // Nothing is sent after the batch's time limit, paced turns included.
    let paced = new_client(&emu, r#","createQps":1"#);
    let t = Instant::now();
    let (rc, results, _) = batch(
        paced,
        &json!([item(0), item(1), item(2)]),
        Some(json!({"timeoutMs": 1500})),
        None,
    );
    assert_eq!(rc, PAN_OK);
    assert!(
        t.elapsed() < Duration::from_millis(1800),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(results[2]["status"], PAN_ERR_TIMEOUT, "{results}");
    assert_eq!(emu.tasks_created(), 2);
    // SAFETY: from pan_client_new.
    unsafe { pan_client_free(paced) };

    let client = new_client(&emu, r#","maxRetries":0"#);
    // An answer that cannot be read may stand for a task: journaled as unknown.
    let journal = temp_journal("edges");
    emu.fault(r#"{"path":"/api/v1/offline/download","status":200,"body":{"code":0,"data":{"taskID":-5}}}"#);
    let (rc, first, _) = batch(
        client,
        &json!([item(10)]),
        Some(json!({"journal": journal})),
        None,
    );
    assert_eq!(rc, PAN_OK);
    assert_eq!(first[0]["status"], PAN_ERR_OUTCOME_UNKNOWN, "{first}");
    let before = emu.tasks_created();
    let (_, again, _) = batch(
        client,
        &json!([item(10)]),
        Some(json!({"journal": journal})),
        None,
    );
    assert_eq!(again[0]["status"], PAN_ERR_OUTCOME_UNKNOWN, "{again}");
    assert_eq!(emu.tasks_created(), before, "not sent again");
    // One batch per journal at a time: a second one is refused by name.
    {
        let items = c(&json!([item(11)]).to_string());
        let opts = c(&json!({"journal": journal}).to_string());
        struct Nested {
            client: *const PanClient,
            items: CString,
            opts: CString,
            rc: i32,
        }
        unsafe extern "C" fn nested(user: *mut c_void, _: usize, _: i32, _: i64) -> i32 {
            // SAFETY: the test passes a &mut Nested.
            let n = unsafe { &mut *user.cast::<Nested>() };
            let mut out: *mut c_char = ptr::null_mut();
            // SAFETY: valid pointers.
            n.rc = unsafe {
                pan_offline_download_batch(
                    n.client,
                    c(support::TOKEN).as_ptr(),
                    n.items.as_ptr(),
                    n.opts.as_ptr(),
                    None,
                    ptr::null_mut(),
                    &mut out,
                )
            };
            0
        }
        let mut n = Nested {
            client,
            items,
            opts,
            rc: -1,
        };
        let mut out: *mut c_char = ptr::null_mut();
        let outer_items = c(&json!([item(12)]).to_string());
        // SAFETY: valid pointers; the results are freed.
        let rc = unsafe {
            pan_offline_download_batch(
                client,
                c(support::TOKEN).as_ptr(),
                outer_items.as_ptr(),
                n.opts.as_ptr(),
                Some(nested),
                (&mut n as *mut Nested).cast(),
                &mut out,
            )
        };
        assert_eq!(rc, PAN_OK);
        // SAFETY: from the library.
        unsafe { pan_string_free(out) };
        assert_eq!(
            n.rc, PAN_ERR_INVALID_ARGUMENT,
            "the nested batch on the same journal"
        );
    }
    for path in ["/dev/zero", "/tmp"] {
        let (rc, msg, _) = batch(
            client,
            &json!([item(13)]),
            Some(json!({"journal": path})),
            None,
        );
        assert_eq!(rc, PAN_ERR_INVALID_ARGUMENT, "{path}");
        assert!(
            msg.as_str().unwrap_or("").contains("not a regular file"),
            "{msg}"
        );
    }
    // A refused token stops the batch after the first item: every item would be refused.
    let bad = c("expired-token");
    let items = c(&json!([item(20), item(21), item(22)]).to_string());
    let mut out: *mut c_char = ptr::null_mut();
    let sent_before = emu.count("/api/v1/offline/download");
    // SAFETY: valid pointers.
    let rc = unsafe {
        pan_offline_download_batch(
            client,
            bad.as_ptr(),
            items.as_ptr(),
            ptr::null(),
            None,
            ptr::null_mut(),
            &mut out,
        )
    };
    assert_eq!(rc, PAN_OK);
    // SAFETY: from the library.
    let results: Value =
        serde_json::from_str(&unsafe { CStr::from_ptr(out) }.to_string_lossy()).expect("json");
    // SAFETY: from the library.
    unsafe { pan_string_free(out) };
    assert_eq!(
        emu.count("/api/v1/offline/download") - sent_before,
        1,
        "{results}"
    );
    assert_eq!(results[2]["status"], PAN_ERR_UNAUTHORIZED);
    // A NULL token and no credentials: the batch cannot run.
    // SAFETY: valid pointers.
    let rc = unsafe {
        pan_offline_download_batch(
            client,
            ptr::null(),
            items.as_ptr(),
            ptr::null(),
            None,
            ptr::null_mut(),
            &mut out,
        )
    };
    assert_eq!(rc, PAN_ERR_NULL_ARGUMENT);
    let _ = std::fs::remove_file(&journal);
    // SAFETY: from pan_client_new.
    unsafe { pan_client_free(client) };
}
