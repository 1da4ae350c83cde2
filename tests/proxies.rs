//! The network route end to end, against the emulator acting as a CONNECT and a SOCKS5 proxy:
//! proxies from the configuration and from the environment (in child processes of this test
//! binary, so that no other test sees the variables), `no_proxy`, SOCKS with and without
//! local resolution, the configured User-Agent on CONNECT, and names mapped to loopback with
//! the `resolve` key (never `/etc/hosts`).

mod support;

use std::process::Command;

use pan_offline::{Client, Config, OfflineDownload, Status, Token};
use serde_json::Value;
use support::Emulator;

/// Environment variables for a child.
type Env<'a> = Vec<(&'a str, String)>;

/// The variable that tells a child of this binary which case to run.
const CASE: &str = "PAN_PROXY_TEST_CASE";

fn port(url: &str) -> &str {
    url.rsplit(':').next().expect("port")
}

fn create(c: &Client) -> pan_offline::Result<i64> {
    c.offline_download(
        Some(&Token::new(support::TOKEN).expect("token")),
        &OfflineDownload::new("https://example.com/a.mp4").expect("opts"),
    )
    .map(|t| t.task_id)
}

fn proxied(emu: &Emulator, method: &str) -> Vec<Value> {
    emu.requests()
        .into_iter()
        .filter(|r| r["method"] == method)
        .collect()
}

#[test]
fn socks5_and_connect_proxies_from_the_configuration() {
    let emu = Emulator::start();
    let p = port(&emu.url);
    // socks5: the target's name is resolved here, the proxy gets an address.
    for (scheme, base, want) in [
        (
            "socks5",
            format!("http://localhost:{p}"),
            format!("127.0.0.1:{p}"),
        ),
        (
            "SOCKS5H",
            format!("http://localhost:{p}"),
            format!("localhost:{p}"),
        ),
        ("socks5", emu.url.clone(), format!("127.0.0.1:{p}")),
    ] {
        emu.reset();
        let c = Client::new(
            Config::from_json(&format!(
                r#"{{"baseUrl":"{base}","proxy":"{scheme}://127.0.0.1:{p}"}}"#
            ))
            .expect("config"),
        )
        .expect("client");
        assert!(create(&c).expect("created through SOCKS5") > 0);
        assert!(create(&c).expect("again, on the same connection") > 0);
        let socks = proxied(&emu, "SOCKS5");
        assert_eq!(
            socks.len(),
            1,
            "{scheme}: one SOCKS connection for two calls"
        );
        assert_eq!(socks[0]["path"], want.as_str(), "{scheme}");
    }
    // CONNECT carries the configured User-Agent.
    emu.reset();
    let c = Client::new(
        Config::from_json(&format!(
            r#"{{"baseUrl":"{}","proxy":"HTTP://127.0.0.1:{p}","userAgent":"my-app/2.1"}}"#,
            emu.url
        ))
        .expect("config"),
    )
    .expect("client");
    assert!(create(&c).expect("created through CONNECT") > 0);
    let connect = proxied(&emu, "CONNECT");
    assert_eq!(connect.len(), 1);
    assert_eq!(connect[0]["headers"]["user-agent"], "my-app/2.1");
    let api = proxied(&emu, "POST");
    assert_eq!(api[0]["headers"]["user-agent"], "my-app/2.1");
    // An https proxy, its scheme in capitals: TLS to the proxy needs the CA store loaded
    // even for a plain-http (loopback) base URL.
    let tls_proxy = Emulator::start_tls(&[]);
    let ca = support::test_pki().ca.to_str().expect("path").to_owned();
    let c = Client::new(
        Config::from_json(&format!(
            r#"{{"baseUrl":"{}","proxy":"HTTPS://127.0.0.1:{}","caFile":"{ca}"}}"#,
            emu.url,
            port(&tls_proxy.url)
        ))
        .expect("config"),
    )
    .expect("client");
    assert!(create(&c).expect("created through an https proxy") > 0);
    assert_eq!(proxied(&tls_proxy, "CONNECT").len(), 1);
}

#[test]
fn a_proxy_that_cannot_be_used_is_refused_when_the_client_is_made() {
    for (config, want) in [
        (r#"{"proxy":"http://127.0.0.1:99999"}"#, "port `99999`"),
        (r#"{"proxy":"socks://127.0.0.1:1080"}"#, "scheme `socks`"),
        (r#"{"proxy":"http://:8080"}"#, "no host"),
        (
            r#"{"baseUrl":"http://127.0.0.1:8080","proxy":"http://proxy.example:3128"}"#,
            "cleartext",
        ),
        (
            r#"{"baseUrl":"http://127.0.0.1:8080","proxy":"socks5h://192.168.1.1:1080"}"#,
            "cleartext",
        ),
    ] {
        let e = Config::from_json(config).expect_err(config);
        assert_eq!(e.status(), Status::InvalidArgument, "{config}");
        assert!(e.message().contains("config `proxy`"), "{config}: {e}");
        assert!(e.message().contains(want), "{config}: {e}");
    }
}

#[test]
fn names_mapped_with_resolve_reach_loopback_in_cleartext_and_nothing_else() {
    let emu = Emulator::start();
    let p = port(&emu.url);
    let c = Client::new(
        Config::from_json(&format!(
            r#"{{"baseUrl":"http://pan.test:{p}","resolve":["pan.test:{p}:127.0.0.1"]}}"#
        ))
        .expect("a name mapped to loopback counts as loopback"),
    )
    .expect("client");
    assert!(create(&c).expect("created") > 0);
    assert_eq!(
        emu.requests()[0]["headers"]["host"],
        format!("pan.test:{p}").as_str()
    );
    // Mapped elsewhere, the name is not loopback: refused before anything is sent.
    let e = Config::from_json(&format!(
        r#"{{"baseUrl":"http://pan.test:{p}","resolve":["pan.test:{p}:192.0.2.1"]}}"#
    ))
    .expect_err("cleartext to a network address");
    assert!(e.message().contains("cleartext"), "{e}");
    for bad in [
        r#"["pan.test:80"]"#,
        r#"["pan.test:x:127.0.0.1"]"#,
        r#"["pan.test:80:not-an-ip"]"#,
        r#"["pan test:80:127.0.0.1"]"#,
        r#""pan.test:80:127.0.0.1""#,
    ] {
        let e = Config::from_json(&format!(r#"{{"resolve":{bad}}}"#)).expect_err(bad);
        assert_eq!(e.status(), Status::InvalidArgument, "{bad}");
        assert!(e.message().contains("resolve"), "{bad}: {e}");
    }
}

/// Runs `case` in a child process of this test binary with `env` set (and the proxy
/// variables of this process removed); returns its output.
fn child(case: &str, env: &[(&str, String)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        "environment_case",
        "--nocapture",
        "--test-threads=1",
    ]);
    for v in pan_offline::HTTPS_PROXY_VARS
        .iter()
        .chain(&pan_offline::NO_PROXY_VARS)
        .chain(&["http_proxy", "HTTP_PROXY"])
    {
        cmd.env_remove(v);
    }
    cmd.env(CASE, case);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the test binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "case {case} failed:\n{text}");
    text
}

/// The child's side: does nothing unless run by [`child`].
#[test]
fn environment_case() {
    let Ok(case) = std::env::var(CASE) else {
        return;
    };
    let base = std::env::var("CASE_BASE").expect("CASE_BASE");
    let ca = std::env::var("CASE_CA").expect("CASE_CA");
    let p = port(&base).to_owned();
    let config = format!(
        r#"{{"baseUrl":"https://pan.test:{p}","resolve":["pan.test:{p}:127.0.0.1"],"caFile":"{ca}","userAgent":"env-test/1","maxRetries":0}}"#
    );
    match case.as_str() {
        "ok" => {
            let c = Client::new(Config::from_json(&config).expect("config")).expect("client");
            println!("route: {c:?}");
            assert!(create(&c).expect("created") > 0);
        }
        "refused" => {
            let e = Client::new(Config::from_json(&config).expect("config"))
                .expect_err("an unusable proxy from the environment");
            assert_eq!(e.status(), Status::InvalidArgument);
            let var = std::env::var("CASE_VAR").expect("CASE_VAR");
            assert!(e.message().contains(&format!("${var}")), "{e}");
            println!("refused: {e}");
        }
        other => panic!("unknown case {other}"),
    }
}

#[test]
fn proxies_from_the_environment_follow_curl() {
    let pki = support::test_pki();
    let emu = Emulator::start_tls(&["--resolve", "pan.test:127.0.0.1"]);
    let plain = Emulator::start_with(&["--resolve", "pan.test:127.0.0.1"]);
    let proxy = format!("127.0.0.1:{}", port(&plain.url));
    let base = || ("CASE_BASE", emu.url.clone());
    let ca = || ("CASE_CA", pki.ca.to_str().expect("path").to_owned());
    let target = format!("pan.test:{}", port(&emu.url));
    // (variables, what the proxy saw: method and target, or nothing)
    let cases: Vec<(Env, Option<(&str, String)>)> = vec![
        (
            vec![("HTTPS_PROXY", format!("http://{proxy}"))],
            Some(("CONNECT", target.clone())),
        ),
        (
            vec![
                ("https_proxy", format!("http://{proxy}")),
                ("HTTPS_PROXY", "http://127.0.0.1:1".to_owned()),
            ],
            Some(("CONNECT", target.clone())),
        ),
        (
            vec![
                ("all_proxy", format!("socks5h://{proxy}")),
                ("HTTP_PROXY", "http://127.0.0.1:1".to_owned()),
            ],
            Some(("SOCKS5", target.clone())),
        ),
        (
            vec![("ALL_PROXY", format!("SOCKS5://{proxy}"))],
            Some(("SOCKS5", format!("127.0.0.1:{}", port(&emu.url)))),
        ),
        (vec![("HTTP_PROXY", format!("http://{proxy}"))], None),
        (vec![("http_proxy", format!("http://{proxy}"))], None),
        (
            vec![
                ("https_proxy", format!("http://{proxy}")),
                ("no_proxy", " example.com , .TEST".to_owned()),
            ],
            None,
        ),
        (
            vec![
                ("https_proxy", format!("http://{proxy}")),
                ("NO_PROXY", target.clone()),
            ],
            None,
        ),
        (
            vec![
                ("https_proxy", format!("http://{proxy}")),
                ("NO_PROXY", "pan.test:1".to_owned()),
            ],
            Some(("CONNECT", target.clone())),
        ),
    ];
    for (vars, want) in cases {
        plain.reset();
        let mut env = vars.clone();
        env.extend([base(), ca()]);
        let out = child("ok", &env);
        let seen: Vec<(String, String)> = plain
            .requests()
            .iter()
            .filter(|r| r["method"] == "CONNECT" || r["method"] == "SOCKS5")
            .map(|r| {
                (
                    r["method"].as_str().unwrap_or("").to_owned(),
                    r["path"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        match &want {
            Some((m, t)) => assert_eq!(seen, vec![(m.to_string(), t.clone())], "{vars:?}\n{out}"),
            None => assert!(seen.is_empty(), "{vars:?}: went through the proxy\n{out}"),
        }
        if let Some(("CONNECT", _)) = want {
            let r = plain.requests();
            let connect = r
                .iter()
                .find(|r| r["method"] == "CONNECT")
                .expect("CONNECT");
            assert_eq!(connect["headers"]["user-agent"], "env-test/1");
        }
    }
    for (var, value) in [
        ("https_proxy", "http://127.0.0.1:99999"),
        ("HTTPS_PROXY", "ftp://127.0.0.1:21"),
        ("ALL_PROXY", "socks://127.0.0.1:1080"),
        ("all_proxy", "http://exa mple:1"),
    ] {
        let out = child(
            "refused",
            &[
                (var, value.to_owned()),
                ("CASE_VAR", var.to_owned()),
                base(),
                ca(),
            ],
        );
        assert!(out.contains("refused: "), "{out}");
    }
}
