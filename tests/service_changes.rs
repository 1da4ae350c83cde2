//! What the service may do tomorrow: a progress status outside 0–3 (not finished; passed on
//! raw; the wait ends at its time limit), other wordings of the running-task refusal, and a
//! burst of `code` 1 on creates (an account penalty) that stops a batch instead of sending
//! the rest.

mod support;

use std::time::{Duration, Instant};

use pan_offline::{OfflineDownload, Status, Target, TaskStatus, Token};
use support::{client, Emulator, TOKEN};

fn progress_answer(status: i64) -> String {
    format!(
        r#"{{"path":"/api/v1/offline/download/process","times":2,"status":200,"body":{{"code":0,"message":"ok","data":{{"process":40,"status":{status}}},"x-traceID":"t"}}}}"#
    )
}

#[test]
fn an_unknown_progress_status_is_not_finished_and_is_passed_on_raw() {
    let emu = Emulator::start();
    emu.configure(r#"{"task_seconds":1.5}"#);
    let c = client(&emu, r#","pollIntervalMs":200"#);
    let token = Token::new(TOKEN).expect("token");
    let created = c
        .offline_download(
            Some(&token),
            &OfflineDownload::new("https://example.com/u.mp4").expect("opts"),
        )
        .expect("created");
    emu.fault(&progress_answer(7));
    let mut seen = Vec::new();
    let status = c
        .wait(
            Some(&token),
            Target::Drive,
            created.task_id,
            Some(Duration::from_secs(10)),
            &mut |p| {
                seen.push((p.status, p.raw_status));
                true
            },
        )
        .expect("the wait goes on past the unknown status");
    assert_eq!(status, TaskStatus::Succeeded);
    assert_eq!(seen[0], (TaskStatus::Unknown, 7), "{seen:?}");
    assert_eq!(seen[1], (TaskStatus::Unknown, 7), "{seen:?}");
    // Only unknown statuses until the time limit: a time-out, not a failure at once.
    emu.fault(&progress_answer(42).replace(r#""times":2"#, r#""times":100"#));
    let t = Instant::now();
    let e = c
        .wait(
            Some(&token),
            Target::Drive,
            created.task_id,
            Some(Duration::from_millis(900)),
            &mut |_| true,
        )
        .expect_err("never finished");
    assert_eq!(e.status(), Status::Timeout, "{e}");
    assert!(
        t.elapsed() >= Duration::from_millis(850),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn the_running_task_refusal_is_known_in_its_variants() {
    let emu = Emulator::start();
    let c = client(&emu, "");
    let token = Token::new(TOKEN).expect("token");
    let opts = OfflineDownload::new("https://example.com/v.mp4").expect("opts");
    for (code, message) in [
        (2, "同时下载的任务超出最大限制，不能下载"),
        (2, "同時下載的任務超出最大限制"),
        (1, "离线下载任务数量已达上限"),
    ] {
        emu.fault(&format!(
            r#"{{"path":"/api/v1/offline/download","status":200,"body":{{"code":{code},"message":"{message}","data":null,"x-traceID":"t"}}}}"#
        ));
        let e = c.offline_download(Some(&token), &opts).expect_err(message);
        assert_eq!(e.status(), Status::TaskLimit, "{message}: {e}");
        assert_eq!(e.api_code(), code);
    }
    // An unknown wording is the service's own error, its message and code kept.
    emu.fault(
        r#"{"path":"/api/v1/offline/download","status":200,"body":{"code":2,"message":"解析失败","data":null,"x-traceID":"t"}}"#,
    );
    let e = c.offline_download(Some(&token), &opts).expect_err("parse");
    assert_eq!((e.status(), e.api_code()), (Status::Api, 2), "{e}");
    assert!(e.message().contains("解析失败"), "{e}");
}

#[test]
fn a_burst_of_code_1_on_creates_stops_a_batch() {
    let emu = Emulator::start();
    emu.configure(r#"{"ban":true}"#);
    let c = client(&emu, "");
    let token = Token::new(TOKEN).expect("token");
    let items: Vec<String> = (0..8)
        .map(|i| format!(r#"{{"url":"https://example.com/ban-{i}.mp4"}}"#))
        .collect();
    let results = c
        .offline_download_batch(
            Some(&token),
            &format!("[{}]", items.join(",")),
            &Default::default(),
            &mut |_| true,
        )
        .expect("the batch ran");
    let statuses: Vec<(Status, i64)> = results.iter().map(|r| (r.status, r.api_code)).collect();
    assert_eq!(&statuses[..3], &[(Status::Api, 1); 3], "{statuses:?}");
    assert!(
        statuses[3..].iter().all(|s| s.0 == Status::AccountPenalty),
        "{statuses:?}"
    );
    assert_eq!(
        emu.count("/api/v1/offline/download"),
        3,
        "the rest were not sent"
    );
    assert!(
        results[3].error.as_deref().unwrap_or("").contains("code 1"),
        "{:?}",
        results[3]
    );
}
