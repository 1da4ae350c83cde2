//! The whole workflow against the emulator: progress, waiting, callbacks, tokens, retries.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pan_offline::{Callback, Client, Config, OfflineDownload, Status, Target, TaskStatus, Token};
use support::{Emulator, TOKEN};

fn client(emu: &Emulator, extra: &str) -> Client {
    let json = format!(r#"{{"baseUrl":"{}","pollIntervalMs":200{extra}}}"#, emu.url);
    Client::new(Config::from_json(&json).expect("config")).expect("client")
}

fn token() -> Token {
    Token::new(TOKEN).expect("token")
}

fn create(c: &Client, t: Option<&Token>, json: &str) -> pan_offline::Result<i64> {
    c.offline_download(t, &OfflineDownload::from_json(json)?)
        .map(|created| created.task_id)
}

fn source(emu: &Emulator, size: u32) -> String {
    format!(r#"{{"url":"{}/files/f.bin?size={size}"}}"#, emu.url)
}

#[test]
fn wait_follows_progress_to_success_and_the_callback_arrives() {
    let emu = Emulator::start();
    let c = client(&emu, "");
    let opts = format!(
        r#"{{"url":"{0}/files/w.bin?size=300000","callBackUrl":"{0}/callback"}}"#,
        emu.url
    );
    let id = create(&c, Some(&token()), &opts).expect("created");
    let mut seen = Vec::new();
    let status = c
        .wait(
            Some(&token()),
            Target::Drive,
            id,
            Some(Duration::from_secs(20)),
            &mut |p| {
                seen.push((p.process, p.status));
                true
            },
        )
        .expect("waited");
    assert_eq!(status, TaskStatus::Succeeded);
    assert!(
        seen.len() >= 3,
        "several polls while it downloads: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0].0 <= w[1].0),
        "progress never goes back: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(p, s)| *s == TaskStatus::Downloading && *p > 0.0 && *p < 100.0),
        "{seen:?}"
    );
    assert_eq!(seen.last(), Some(&(100.0, TaskStatus::Succeeded)));
    let body = emu.callback_matching(|_| true);
    let cb = Callback::parse(&body).expect("callback parses");
    assert!(
        cb.succeeded && cb.file_id > 0 && cb.reason.is_empty(),
        "{cb:?}"
    );
}

#[test]
fn a_failed_download_is_a_successful_wait_with_failed_status() {
    let emu = Emulator::start();
    let c = client(&emu, "");
    let opts = format!(
        r#"{{"url":"{0}/files/missing.bin","callBackUrl":"{0}/callback"}}"#,
        emu.url
    );
    let id = create(&c, Some(&token()), &opts).expect("created");
    let mut last = None;
    let status = c
        .wait(
            Some(&token()),
            Target::Drive,
            id,
            Some(Duration::from_secs(10)),
            &mut |p| {
                last = Some(p.clone());
                true
            },
        )
        .expect("the wait itself works");
    assert_eq!(status, TaskStatus::Failed);
    assert_eq!(
        last.map(|p| p.process),
        Some(0.0),
        "process drops to 0 on failure"
    );
    let cb = Callback::parse(&emu.callback_matching(|_| true)).expect("parses");
    assert!(!cb.succeeded && cb.reason.contains("404"), "{cb:?}");
}

#[test]
fn a_callback_returning_false_cancels_and_a_short_timeout_times_out() {
    let emu = Emulator::start();
    let c = client(&emu, "");
    let id = create(&c, Some(&token()), &source(&emu, 5_000_000)).expect("created");
    let mut polls = 0;
    let e = c
        .wait(Some(&token()), Target::Drive, id, None, &mut |_| {
            polls += 1;
            polls < 2
        })
        .expect_err("cancelled");
    assert_eq!((e.status(), polls), (Status::Cancelled, 2));

    let t = Instant::now();
    let e = c
        .wait(
            Some(&token()),
            Target::Drive,
            id,
            Some(Duration::from_millis(700)),
            &mut |_| true,
        )
        .expect_err("times out");
    let took = t.elapsed();
    assert_eq!(e.status(), Status::Timeout, "{e}");
    assert!(
        took >= Duration::from_millis(650) && took < Duration::from_millis(1500),
        "{took:?}"
    );
}

#[test]
fn polling_respects_the_poll_interval() {
    let emu = Emulator::start();
    let json = format!(r#"{{"baseUrl":"{}","pollIntervalMs":500}}"#, emu.url);
    let c = Client::new(Config::from_json(&json).expect("config")).expect("client");
    let id = create(&c, Some(&token()), &source(&emu, 5_000_000)).expect("created");
    let t = Instant::now();
    let _ = c.wait(
        Some(&token()),
        Target::Drive,
        id,
        Some(Duration::from_millis(2200)),
        &mut |_| true,
    );
    let polls = emu.count("/api/v1/offline/download/process");
    assert!(
        (4..=6).contains(&polls),
        "{polls} polls in {:?} at 500 ms",
        t.elapsed()
    );
}

#[test]
fn one_429_then_success_makes_exactly_two_creates() {
    let emu = Emulator::start();
    emu.fault(r#"{"code":429,"message":"too many requests"}"#);
    let id = create(&client(&emu, ""), Some(&token()), &source(&emu, 10)).expect("retried");
    assert!(id > 0);
    assert_eq!(emu.count("/api/v1/offline/download"), 2);
    assert_eq!(emu.tasks_created(), 1);
}

#[test]
fn persistent_429_with_two_retries_makes_exactly_three_creates() {
    let emu = Emulator::start();
    emu.fault(r#"{"status":429,"body":"<html>slow down</html>","times":10}"#);
    let e = create(
        &client(&emu, r#","maxRetries":2"#),
        Some(&token()),
        &source(&emu, 10),
    )
    .expect_err("limited");
    assert_eq!(e.status(), Status::RateLimited);
    assert_eq!(emu.count("/api/v1/offline/download"), 3);
    assert_eq!(emu.tasks_created(), 0);
}

#[test]
fn retry_after_is_honoured() {
    let emu = Emulator::start();
    emu.fault(r#"{"status":429,"body":"","headers":{"Retry-After":"1"}}"#);
    let t = Instant::now();
    create(&client(&emu, ""), Some(&token()), &source(&emu, 10)).expect("retried");
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(emu.count("/api/v1/offline/download"), 2);
}

#[test]
fn a_create_that_may_have_reached_the_service_is_never_repeated() {
    let emu = Emulator::start();
    let c = client(&emu, "");
    for fault in [
        r#"{"drop":"after"}"#,
        r#"{"status":502,"body":"<html>bad gateway</html>"}"#,
        r#"{"truncate":true}"#,
    ] {
        emu.fault(fault);
        assert!(
            create(&c, Some(&token()), &source(&emu, 10)).is_err(),
            "{fault}"
        );
    }
    assert_eq!(
        emu.count("/api/v1/offline/download"),
        3,
        "one request per call"
    );
}

#[test]
fn a_stalled_server_times_out_in_about_the_configured_limit() {
    let emu = Emulator::start();
    emu.fault(r#"{"delay_ms":6000}"#);
    let t = Instant::now();
    let e = create(
        &client(&emu, r#","timeoutMs":1500"#),
        Some(&token()),
        &source(&emu, 10),
    )
    .expect_err("stalls");
    let took = t.elapsed();
    // The request was sent: the create's outcome is unknown, not a plain time-out.
    assert_eq!(e.status(), Status::OutcomeUnknown, "{e}");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    assert_eq!(emu.count("/api/v1/offline/download"), 1);
}

#[test]
fn progress_is_retried_after_a_5xx_and_a_dropped_connection() {
    let emu = Emulator::start();
    let c = client(&emu, "");
    let id = create(&c, Some(&token()), &source(&emu, 10)).expect("created");
    emu.fault(r#"[{"path":"/api/v1/offline/download/process","status":503,"body":"<html>busy</html>"},{"path":"/api/v1/offline/download/process","drop":"after"}]"#);
    let p = c
        .offline_progress(Some(&token()), Target::Drive, id)
        .expect("retried");
    assert!((0.0..=100.0).contains(&p.process));
    assert_eq!(emu.count("/api/v1/offline/download/process"), 3);
}

fn credentials_client(emu: &Emulator, extra: &str) -> Client {
    client(
        emu,
        &format!(r#","clientID":"test-client","clientSecret":"test-secret"{extra}"#),
    )
}

#[test]
fn a_client_with_credentials_fetches_one_token_and_reuses_it() {
    let emu = Emulator::start();
    let c = credentials_client(&emu, "");
    for _ in 0..3 {
        create(&c, None, &source(&emu, 10)).expect("created with the client's token");
    }
    assert_eq!(emu.count("/api/v1/access_token"), 1);
    let reqs = emu.requests();
    let auths: Vec<_> = reqs
        .iter()
        .filter(|r| r["path"] == "/api/v1/offline/download")
        .map(|r| r["headers"]["authorization"].clone())
        .collect();
    assert!(auths.iter().all(|a| *a == auths[0]
        && a.as_str()
            .is_some_and(|s| s.starts_with("Bearer tok-test-client-"))));
    let token_req = reqs
        .iter()
        .find(|r| r["path"] == "/api/v1/access_token")
        .expect("token request");
    assert_eq!(token_req["headers"]["platform"], "open_platform");
    assert!(token_req["headers"].get("authorization").is_none());
}

#[test]
fn concurrent_first_calls_share_one_token_fetch() {
    let emu = Emulator::start();
    let c = Arc::new(credentials_client(&emu, ""));
    let src = source(&emu, 10);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (c, src) = (Arc::clone(&c), src.clone());
            std::thread::spawn(move || create(&c, None, &src).map(|_| ()))
        })
        .collect();
    for t in threads {
        t.join().expect("thread").expect("created");
    }
    assert_eq!(emu.count("/api/v1/access_token"), 1);
    assert_eq!(emu.tasks_created(), 8);
}

#[test]
fn a_revoked_token_is_renewed_once_and_the_call_repeated() {
    let emu = Emulator::start();
    let c = credentials_client(&emu, "");
    create(&c, None, &source(&emu, 10)).expect("first");
    let first = emu.requests()[1]["headers"]["authorization"]
        .as_str()
        .expect("auth")
        .trim_start_matches("Bearer ")
        .to_owned();
    emu.configure(&format!(r#"{{"revoke":["{first}"]}}"#));
    create(&c, None, &source(&emu, 10)).expect("renewed and repeated");
    let paths: Vec<_> = emu
        .requests()
        .iter()
        .map(|r| r["path"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        paths,
        [
            "/api/v1/access_token",
            "/api/v1/offline/download",
            "/api/v1/offline/download",
            "/api/v1/access_token",
            "/api/v1/offline/download"
        ]
    );
    assert_eq!(emu.tasks_created(), 2);
    // The renewed token refused too, within a minute of its renewal: reported, and no
    // third token is fetched (a service that refuses every token must not drive the client
    // into its limit of three live tokens).
    emu.fault(r#"{"code":401,"message":"invalid access_token","times":2}"#);
    let e = create(&c, None, &source(&emu, 10)).expect_err("refused twice");
    assert_eq!(e.status(), Status::Unauthorized);
    assert!(e.message().contains("not fetching another"), "{e}");
    assert_eq!(emu.count("/api/v1/access_token"), 2);
}

#[test]
fn the_token_limit_does_not_fetch_another_token() {
    let emu = Emulator::start();
    let c = credentials_client(&emu, "");
    emu.fault(r#"{"code":401,"message":"tokens number has exceeded the limit"}"#);
    let e = create(&c, None, &source(&emu, 10)).expect_err("limit");
    assert_eq!(e.status(), Status::TokenLimit);
    assert_eq!(emu.count("/api/v1/access_token"), 1);
}

#[test]
fn a_token_that_expires_within_the_minute_is_renewed_on_its_401() {
    // A token is kept at least a minute whatever `expiredAt` says (so that clocks that
    // disagree cannot cause a token storm); one the service lets expire sooner is renewed
    // once, on the 401 it brings.
    let emu = Emulator::start();
    emu.configure(r#"{"token_ttl":2}"#);
    let c = credentials_client(&emu, "");
    create(&c, None, &source(&emu, 10)).expect("first");
    create(&c, None, &source(&emu, 10)).expect("cached");
    assert_eq!(emu.count("/api/v1/access_token"), 1);
    std::thread::sleep(Duration::from_millis(2100));
    create(&c, None, &source(&emu, 10)).expect("renewed after a 401");
    create(&c, None, &source(&emu, 10)).expect("the renewed one, cached");
    assert_eq!(emu.count("/api/v1/access_token"), 2);
    assert_eq!(
        emu.count("/api/v1/offline/download"),
        5,
        "one call was refused once, then repeated with the new token"
    );
}

#[test]
fn an_explicit_token_wins_over_the_client_credentials() {
    let emu = Emulator::start();
    let c = credentials_client(&emu, "");
    create(&c, Some(&token()), &source(&emu, 10)).expect("explicit");
    assert_eq!(emu.count("/api/v1/access_token"), 0);
    let no_creds = client(&emu, "");
    let e = create(&no_creds, None, &source(&emu, 10)).expect_err("no token at all");
    assert_eq!(e.status(), Status::NullArgument);
    assert!(emu.count("/api/v1/offline/download") == 1);
}

#[test]
fn access_token_reports_expiry_and_hides_the_secret() {
    let emu = Emulator::start();
    let c = client(&emu, "");
    let t = c
        .access_token(Some("test-client"), Some("test-secret"))
        .expect("token");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    assert!(
        (t.expires_at - now - 30 * 86400).abs() < 5,
        "{} vs {now}",
        t.expires_at
    );
    let e = c
        .access_token(Some("test-client"), Some("wrong-secret"))
        .expect_err("refused");
    assert_eq!(e.status(), Status::Unauthorized);
    emu.fault(r#"{"path":"/api/v1/access_token","code":1,"message":"bad secret wrong-secret"}"#);
    let e = c
        .access_token(Some("test-client"), Some("wrong-secret"))
        .expect_err("refused");
    assert!(!e.message().contains("wrong-secret"), "{e}");
}

#[test]
fn image_hosting_sends_type_1_and_a_string_folder() {
    let emu = Emulator::start();
    let c = client(&emu, "");
    let req = OfflineDownload::from_json_for(
        Target::Image,
        &format!(
            r#"{{"url":"{}/files/pic.png?size=1000","businessDirID":"42","fileName":"pic.png"}}"#,
            emu.url
        ),
    )
    .expect("options");
    let id = c
        .offline_download(Some(&token()), &req)
        .expect("created")
        .task_id;
    let r = emu.requests().pop().expect("request");
    assert_eq!(r["path"], "/api/v1/oss/offline/download");
    let body: serde_json::Value =
        serde_json::from_str(r["body"].as_str().expect("body")).expect("json");
    assert_eq!(body["type"], 1);
    assert_eq!(body["businessDirID"], "42");
    let status = c
        .wait(
            Some(&token()),
            Target::Image,
            id,
            Some(Duration::from_secs(10)),
            &mut |p| p.process.fract() == 0.0,
        )
        .expect("waited");
    assert_eq!(status, TaskStatus::Succeeded);
}

#[test]
fn a_configured_proxy_tunnels_every_request_plain_and_tls() {
    // One emulator serves the API; another acts as the HTTP CONNECT proxy.
    let proxy = Emulator::start();
    let api = Emulator::start();
    let c = client(&api, &format!(r#","proxy":"{}""#, proxy.url));
    let first = create(&c, Some(&token()), r#"{"url":"https://example.com/a"}"#).expect("created");
    let second = create(&c, Some(&token()), r#"{"url":"https://example.com/b"}"#).expect("again");
    assert_eq!(second, first + 1);
    let tunnels: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "CONNECT")
        .collect();
    // The two calls shared one tunnel (a kept-alive connection through the proxy).
    assert_eq!(tunnels.len(), 1, "{tunnels:?}");
    let target = api.url.trim_start_matches("http://");
    assert_eq!(tunnels[0]["path"], target);
    assert_eq!(api.tasks_created(), 2);

    // TLS inside the tunnel: the proxy sees only the CONNECT, the certificate is checked.
    let tls = Emulator::start_tls(&[]);
    let json = format!(
        r#"{{"baseUrl":"{}","proxy":"{}","caFile":{}}}"#,
        tls.url,
        proxy.url,
        serde_json::Value::from(support::test_pki().ca.to_str().expect("path"))
    );
    let c = Client::new(Config::from_json(&json).expect("config")).expect("client");
    assert!(
        create(&c, Some(&token()), r#"{"url":"https://example.com/c"}"#).expect("over TLS") > 0
    );
    let connects = proxy
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "CONNECT")
        .count();
    assert_eq!(connects, 2);
}
