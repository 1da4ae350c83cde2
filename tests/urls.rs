//! A property test over base URLs and proxy URLs: no input a user can give produces
//! `PAN_ERR_INTERNAL` or `PAN_ERR_PANIC`, neither when the client is made nor when it calls.
//! Inputs are built from pieces known to break URL parsers (internationalised and full-width
//! hosts, backslashes, `@` in odd places, out-of-range ports, characters a path may not hold,
//! upper-case schemes) and from seeded random strings. Calls are made only where the base
//! URL and the proxy are loopback addresses (to closed ports), so nothing leaves the machine.

mod support;

use std::ffi::{CStr, CString};

use pan_offline::ffi::*;

const SCHEMES: [&str; 7] = [
    "http://",
    "https://",
    "HTTPS://",
    "Http://",
    "ftp://",
    "",
    "socks5h://",
];
const USERINFO: [&str; 5] = ["", "u:p@", "admin:hunter2@", "a@b@", "%zz@"];
const HOSTS: [&str; 14] = [
    "127.0.0.1",
    "[::1]",
    "localhost",
    "例子.example",
    "ｅｘａｍｐｌｅ.com",
    "h:8080\\@127.0.0.1",
    "a_b.example",
    "xn--fsqu00a.example",
    "",
    "..",
    "[::1",
    "127.0.0.1.",
    "-a.example",
    "open-api.123pan.com",
];
const PORTS: [&str; 6] = ["", ":0", ":99999", ":8080", ":", ":+1"];
const PATHS: [&str; 10] = [
    "", "/", "/a<b>", "/%zz", "/%41", "/a b", "/?q", "/#f", "/é", "/a\"b",
];

/// A small deterministic generator (xorshift64*), so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

fn status_of_new(config: &str) -> (i32, *mut PanClient, String) {
    let c = CString::new(config).expect("no NUL");
    // SAFETY: a valid NUL-terminated string.
    let client = unsafe { pan_client_new(c.as_ptr()) };
    // SAFETY: the library's own string.
    let msg = unsafe { CStr::from_ptr(pan_last_error_message()) }
        .to_string_lossy()
        .into_owned();
    (pan_last_error_code(), client, msg)
}

fn loopback_literal(url: &str) -> bool {
    let after = url.split_once("://").map_or(url, |(_, a)| a);
    after.starts_with("127.0.0.1:") || after.starts_with("[::1]:")
}

#[test]
fn no_base_or_proxy_url_produces_internal_or_panic() {
    let closed = support::closed_port();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut urls: Vec<String> = Vec::new();
    for scheme in SCHEMES {
        for host in HOSTS {
            for port in PORTS {
                urls.push(format!("{scheme}{host}{port}{}", rng.pick(&PATHS)));
                urls.push(format!("{scheme}{}{host}{port}", rng.pick(&USERINFO)));
            }
        }
    }
    // Random strings over the characters that matter to URL parsers.
    let alphabet: Vec<char> = "htps:/@[]%.\\<>\"#?例ｅ0189 :-_".chars().collect();
    for _ in 0..600 {
        let len = (rng.next() % 30) as usize;
        urls.push(
            (0..len)
                .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
                .collect(),
        );
    }
    let (mut made, mut called, mut refused) = (0, 0, 0);
    let token = CString::new("test-token").expect("token");
    let opts = CString::new(r#"{"url":"https://example.com/a"}"#).expect("opts");
    for url in &urls {
        // The URL as base, then as proxy of a loopback base.
        let base = url.replace(":8080", &format!(":{closed}"));
        for config in [
            serde_json::json!({"baseUrl": base, "timeoutMs": 2000, "maxRetries": 0, "caFile": support::test_pki().ca}),
            serde_json::json!({"baseUrl": format!("http://127.0.0.1:{closed}"), "proxy": base, "timeoutMs": 2000, "maxRetries": 0, "caFile": support::test_pki().ca}),
        ] {
            let config = config.to_string();
            let (code, client, msg) = status_of_new(&config);
            assert!(
                code != PAN_ERR_INTERNAL && code != PAN_ERR_PANIC,
                "{config}: {code} {msg}"
            );
            if client.is_null() {
                assert_eq!(code, PAN_ERR_INVALID_ARGUMENT, "{config}: {msg}");
                refused += 1;
                continue;
            }
            made += 1;
            let proxy_ok = config.contains("\"proxy\"") && loopback_literal(&base);
            let base_ok = !config.contains("\"proxy\"") && loopback_literal(&base);
            if proxy_ok || base_ok {
                let mut id = 0i64;
                // SAFETY: valid pointers.
                let rc = unsafe {
                    pan_client_offline_download(client, token.as_ptr(), opts.as_ptr(), &mut id)
                };
                assert!(
                    rc != PAN_ERR_INTERNAL && rc != PAN_ERR_PANIC && rc != PAN_OK,
                    "{config}: {rc}"
                );
                called += 1;
            }
            // SAFETY: from pan_client_new.
            unsafe { pan_client_free(client) };
        }
    }
    println!(
        "{} URLs: {made} clients made ({called} called), {refused} refused",
        urls.len()
    );
    assert!(
        made > 50 && called > 8 && refused > 1000,
        "{made} {called} {refused}"
    );
}
