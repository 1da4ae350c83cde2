//! The bad-input matrix: every exported function with NULLs, invalid UTF-8, wrong types, empty
//! and absurd values, CR/LF, out-of-range numbers and unknown keys. Each case pins the status
//! and a message naming the problem; none of them may reach the server.

mod support;

use std::ffi::{c_char, CStr, CString};
use std::ptr::{null, null_mut};

use pan_offline::ffi::*;
use support::Emulator;

/// A C string from bytes (which need not be UTF-8).
fn c(bytes: impl Into<Vec<u8>>) -> CString {
    CString::new(bytes).expect("no interior NUL")
}

fn last_message() -> String {
    // SAFETY: the library's message pointer is always a valid C string.
    unsafe { CStr::from_ptr(pan_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

struct Matrix {
    cases: usize,
    failures: Vec<String>,
}

impl Matrix {
    fn case(&mut self, name: &str, want: i32, mention: &str, rc: i32) {
        self.cases += 1;
        let msg = last_message();
        if rc != want || !msg.contains(mention) || msg.contains("test-token") {
            self.failures.push(format!(
                "{name}: got {rc} {msg:?}, want {want} mentioning {mention:?}"
            ));
        }
    }
}

#[test]
fn bad_input_of_every_kind_is_refused_with_a_precise_code_and_sends_nothing() {
    let emu = Emulator::start();
    // The process-wide client of this test binary talks to this emulator (set before its
    // first use; this is the only test in the binary).
    std::env::set_var("PAN_API_BASE_URL", &emu.url);
    let mut m = Matrix {
        cases: 0,
        failures: Vec::new(),
    };
    let tok = c("test-token");
    let mut id: i64 = -1;
    let ok_opts = c(r#"{"url":"https://example.com/a.mp4"}"#);

    // SAFETY (all blocks below): pointers are NULL or valid C strings / out-params, as the
    // header allows.
    let create = |token: Option<&CString>, opts: Option<&CString>, id: *mut i64| unsafe {
        pan_offline_download(
            token.map_or(null(), |t| t.as_ptr()),
            opts.map_or(null(), |o| o.as_ptr()),
            id,
        )
    };

    // --- pan_offline_download: pointers and encodings
    m.case(
        "NULL token",
        PAN_ERR_NULL_ARGUMENT,
        "token",
        create(None, Some(&ok_opts), &mut id),
    );
    m.case(
        "NULL options",
        PAN_ERR_NULL_ARGUMENT,
        "json_opts",
        create(Some(&tok), None, &mut id),
    );
    m.case(
        "NULL task_id_out",
        PAN_ERR_NULL_ARGUMENT,
        "task_id_out",
        create(Some(&tok), Some(&ok_opts), null_mut()),
    );
    m.case(
        "token not UTF-8",
        PAN_ERR_INVALID_UTF8,
        "token",
        create(Some(&c(b"tok\xff\xfe".to_vec())), Some(&ok_opts), &mut id),
    );
    m.case(
        "options not UTF-8",
        PAN_ERR_INVALID_UTF8,
        "json_opts",
        create(
            Some(&tok),
            Some(&c(b"{\"url\":\"http://x/\xc0\"}".to_vec())),
            &mut id,
        ),
    );
    // --- tokens
    for (name, t, mention) in [
        ("empty token", "".to_string(), "token is empty"),
        ("bare Bearer", "Bearer ".to_string(), "token is empty"),
        (
            "token with CR/LF",
            "abc\r\nX-Evil: 1".to_string(),
            "token has a space, control",
        ),
        (
            "token with space",
            "abc def".to_string(),
            "token has a space",
        ),
        ("token with control", "abc\u{1}".to_string(), "control"),
        ("token with DEL", "abc\u{7f}".to_string(), "control"),
        ("non-ASCII token", "tøken".to_string(), "non-ASCII"),
        ("1 MiB token", "a".repeat(1 << 20), "longer than the limit"),
    ] {
        m.case(
            name,
            PAN_ERR_INVALID_ARGUMENT,
            mention,
            create(Some(&c(t)), Some(&ok_opts), &mut id),
        );
    }
    // --- options: not JSON, not an object, too large, too deep
    let opts_case = |m: &mut Matrix, name: &str, json: &[u8], want: i32, mention: &str| {
        let mut id = -1;
        let rc = create(Some(&c("test-token")), Some(&c(json.to_vec())), &mut id);
        m.case(name, want, mention, rc);
        if id != -1 {
            m.failures
                .push(format!("{name}: task_id_out written on failure"));
        }
    };
    opts_case(
        &mut m,
        "empty options",
        b"",
        PAN_ERR_INVALID_JSON,
        "not valid",
    );
    opts_case(
        &mut m,
        "truncated JSON",
        b"{\"url\":",
        PAN_ERR_INVALID_JSON,
        "not valid",
    );
    opts_case(
        &mut m,
        "trailing garbage",
        br#"{"url":"http://x/"} x"#,
        PAN_ERR_INVALID_JSON,
        "trailing",
    );
    opts_case(
        &mut m,
        "single quotes",
        b"{'url':'http://x/'}",
        PAN_ERR_INVALID_JSON,
        "not valid",
    );
    opts_case(
        &mut m,
        "JSON null",
        b"null",
        PAN_ERR_INVALID_ARGUMENT,
        "must be a JSON object",
    );
    opts_case(
        &mut m,
        "JSON array",
        b"[\"http://x/\"]",
        PAN_ERR_INVALID_ARGUMENT,
        "must be a JSON object",
    );
    opts_case(
        &mut m,
        "JSON number",
        b"42",
        PAN_ERR_INVALID_ARGUMENT,
        "must be a JSON object",
    );
    opts_case(
        &mut m,
        "JSON string",
        b"\"http://x/\"",
        PAN_ERR_INVALID_ARGUMENT,
        "must be a JSON object",
    );
    opts_case(
        &mut m,
        "8 MiB options",
        format!(
            r#"{{"url":"http://x/","fileName":"{}"}}"#,
            "a".repeat(8 << 20)
        )
        .as_bytes(),
        PAN_ERR_INVALID_ARGUMENT,
        "limit of 65536 bytes",
    );
    opts_case(
        &mut m,
        "100,000-deep nesting",
        format!(
            r#"{{"url":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        )
        .as_bytes(),
        PAN_ERR_INVALID_ARGUMENT,
        "limit of 65536 bytes",
    );
    opts_case(
        &mut m,
        "30,000-deep nesting within the size limit",
        format!(r#"{{"url":{}{}}}"#, "[".repeat(30_000), "]".repeat(30_000)).as_bytes(),
        PAN_ERR_INVALID_JSON,
        "recursion limit",
    );
    opts_case(
        &mut m,
        "duplicate key",
        br#"{"url":"http://x/","url":"http://y/"}"#,
        PAN_ERR_INVALID_ARGUMENT,
        "`url` appears twice",
    );
    // --- options: each field with each wrong type and value
    let field_cases: &[(&str, &str, &str)] = &[
        ("url missing", r#"{"fileName":"a"}"#, "`url` is required"),
        ("url number", r#"{"url":5}"#, "`url` must be a string"),
        ("url null", r#"{"url":null}"#, "`url` must be a string"),
        (
            "url array",
            r#"{"url":["http://x/"]}"#,
            "`url` must be a string",
        ),
        (
            "url object",
            r#"{"url":{"href":"http://x/"}}"#,
            "`url` must be a string",
        ),
        ("url boolean", r#"{"url":true}"#, "`url` must be a string"),
        ("url empty", r#"{"url":""}"#, "`url` is empty"),
        (
            "url ftp",
            r#"{"url":"ftp://x/y"}"#,
            "`url` is not an absolute http",
        ),
        (
            "url magnet",
            r#"{"url":"magnet:?xt=urn:btih:abc"}"#,
            "`url` is not an absolute http",
        ),
        (
            "url relative",
            r#"{"url":"/a/b.mp4"}"#,
            "`url` is not an absolute http",
        ),
        (
            "url CR/LF",
            r#"{"url":"http://x/a\r\nHost: evil"}"#,
            "`url` contains a space or control",
        ),
        (
            "url space",
            r#"{"url":"http://x/a b"}"#,
            "`url` contains a space",
        ),
        ("url no host", r#"{"url":"http:///a"}"#, "`url` has no host"),
        (
            "url bad port",
            r#"{"url":"http://x:99999/"}"#,
            "`url` has an invalid port",
        ),
        (
            "dirID 0",
            r#"{"url":"http://x/","dirID":0}"#,
            "`dirID` must be a positive integer",
        ),
        (
            "dirID negative",
            r#"{"url":"http://x/","dirID":-1}"#,
            "`dirID`",
        ),
        (
            "dirID fraction",
            r#"{"url":"http://x/","dirID":1.5}"#,
            "`dirID`",
        ),
        (
            "dirID string",
            r#"{"url":"http://x/","dirID":"10023"}"#,
            "`dirID` must be a positive integer, not a string",
        ),
        (
            "dirID 1e30",
            r#"{"url":"http://x/","dirID":1e30}"#,
            "`dirID`",
        ),
        (
            "dirID 2^64",
            r#"{"url":"http://x/","dirID":18446744073709551616}"#,
            "`dirID`",
        ),
        (
            "dirID 2^63",
            r#"{"url":"http://x/","dirID":9223372036854775808}"#,
            "`dirID`",
        ),
        (
            "dirID boolean",
            r#"{"url":"http://x/","dirID":true}"#,
            "`dirID`",
        ),
        (
            "dirID null",
            r#"{"url":"http://x/","dirID":null}"#,
            "`dirID`",
        ),
        (
            "fileName empty",
            r#"{"url":"http://x/","fileName":""}"#,
            "`fileName` is empty",
        ),
        (
            "fileName slash",
            r#"{"url":"http://x/","fileName":"../etc/passwd"}"#,
            "`fileName` contains '/'",
        ),
        (
            "fileName backslash",
            r#"{"url":"http://x/","fileName":"a\\b"}"#,
            "`fileName` contains",
        ),
        (
            "fileName newline",
            r#"{"url":"http://x/","fileName":"a\nb"}"#,
            "`fileName` contains",
        ),
        (
            "fileName NUL",
            r#"{"url":"http://x/","fileName":"a\u0000b"}"#,
            "`fileName` contains",
        ),
        (
            "fileName too long",
            &format!(r#"{{"url":"http://x/","fileName":"{}"}}"#, "n".repeat(256)),
            "`fileName` is 256 characters",
        ),
        (
            "fileName number",
            r#"{"url":"http://x/","fileName":7}"#,
            "`fileName` must be a string",
        ),
        (
            "callBackUrl empty",
            r#"{"url":"http://x/","callBackUrl":""}"#,
            "`callBackUrl` is empty",
        ),
        (
            "callBackUrl javascript",
            r#"{"url":"http://x/","callBackUrl":"javascript:alert(1)"}"#,
            "`callBackUrl` is not an absolute",
        ),
        (
            "callBackUrl CR/LF",
            r#"{"url":"http://x/","callBackUrl":"http://cb/\r\n"}"#,
            "`callBackUrl` contains",
        ),
        (
            "callBackUrl array",
            r#"{"url":"http://x/","callBackUrl":[]}"#,
            "`callBackUrl` must be a string",
        ),
        (
            "misspelt dirId",
            r#"{"url":"http://x/","dirId":5}"#,
            "unknown key `dirId`",
        ),
        (
            "upper-case URL key",
            r#"{"URL":"http://x/"}"#,
            "unknown key `URL`",
        ),
        (
            "image-hosting key on the drive",
            r#"{"url":"http://x/","businessDirID":"1"}"#,
            "unknown key `businessDirID`",
        ),
    ];
    for (name, json, mention) in field_cases {
        opts_case(
            &mut m,
            name,
            json.as_bytes(),
            PAN_ERR_INVALID_ARGUMENT,
            mention,
        );
    }

    // --- pan_client_new
    let new_case = |m: &mut Matrix, name: &str, json: &[u8], want: i32, mention: &str| {
        let cfg = c(json.to_vec());
        // SAFETY: a valid C string.
        let client = unsafe { pan_client_new(cfg.as_ptr()) };
        let rc = if client.is_null() {
            pan_last_error_code()
        } else {
            PAN_OK
        };
        m.case(name, want, mention, rc);
        // SAFETY: NULL or a client from pan_client_new.
        unsafe { pan_client_free(client) };
    };
    new_case(
        &mut m,
        "config not UTF-8",
        b"{\"userAgent\":\"\xff\"}",
        PAN_ERR_INVALID_UTF8,
        "json_config",
    );
    new_case(
        &mut m,
        "config not JSON",
        b"{timeoutMs: 5}",
        PAN_ERR_INVALID_JSON,
        "config",
    );
    new_case(
        &mut m,
        "config array",
        b"[]",
        PAN_ERR_INVALID_ARGUMENT,
        "config must be a JSON object",
    );
    new_case(
        &mut m,
        "config unknown key",
        br#"{"timeout":5}"#,
        PAN_ERR_INVALID_ARGUMENT,
        "unknown key `timeout`",
    );
    new_case(
        &mut m,
        "timeoutMs negative",
        br#"{"timeoutMs":-1}"#,
        PAN_ERR_INVALID_ARGUMENT,
        "`timeoutMs`",
    );
    new_case(
        &mut m,
        "timeoutMs huge",
        br#"{"timeoutMs":1e20}"#,
        PAN_ERR_INVALID_ARGUMENT,
        "`timeoutMs`",
    );
    new_case(
        &mut m,
        "timeoutMs string",
        br#"{"timeoutMs":"1000"}"#,
        PAN_ERR_INVALID_ARGUMENT,
        "`timeoutMs`",
    );
    new_case(
        &mut m,
        "connectTimeoutMs zero",
        br#"{"connectTimeoutMs":0}"#,
        PAN_ERR_INVALID_ARGUMENT,
        "`connectTimeoutMs`",
    );
    new_case(
        &mut m,
        "maxRetries 11",
        br#"{"maxRetries":11}"#,
        PAN_ERR_INVALID_ARGUMENT,
        "`maxRetries`",
    );
    new_case(
        &mut m,
        "pollIntervalMs 0",
        br#"{"pollIntervalMs":0}"#,
        PAN_ERR_INVALID_ARGUMENT,
        "`pollIntervalMs`",
    );
    new_case(
        &mut m,
        "cleartext remote baseUrl",
        br#"{"baseUrl":"http://open-api.123pan.com"}"#,
        PAN_ERR_INVALID_ARGUMENT,
        "cleartext",
    );
    new_case(
        &mut m,
        "baseUrl CR/LF",
        br#"{"baseUrl":"https://x/\r\n"}"#,
        PAN_ERR_INVALID_ARGUMENT,
        "base URL",
    );
    new_case(
        &mut m,
        "baseUrl with query",
        br#"{"baseUrl":"https://x/?a=1"}"#,
        PAN_ERR_INVALID_ARGUMENT,
        "query",
    );
    new_case(
        &mut m,
        "userAgent CR/LF",
        br#"{"userAgent":"ua\r\nX: 1"}"#,
        PAN_ERR_INVALID_ARGUMENT,
        "`userAgent`",
    );
    new_case(
        &mut m,
        "proxy garbage",
        br#"{"proxy":"::::"}"#,
        PAN_ERR_INVALID_ARGUMENT,
        "`proxy`",
    );
    new_case(
        &mut m,
        "baseUrl IDN host",
        r#"{"baseUrl":"https://例子.example"}"#.as_bytes(),
        PAN_ERR_INVALID_ARGUMENT,
        "xn--",
    );
    new_case(
        &mut m,
        "baseUrl full-width host",
        r#"{"baseUrl":"https://ｅｘａｍｐｌｅ.com"}"#.as_bytes(),
        PAN_ERR_INVALID_ARGUMENT,
        "not ASCII",
    );
    new_case(
        &mut m,
        "baseUrl backslash before @",
        r#"{"baseUrl":"http://h:8080\\\\@127.0.0.1:8080"}"#.as_bytes(),
        PAN_ERR_INVALID_ARGUMENT,
        "base URL",
    );
    new_case(
        &mut m,
        "baseUrl < in path",
        r#"{"baseUrl":"http://127.0.0.1:8080/a<b>"}"#.as_bytes(),
        PAN_ERR_INVALID_ARGUMENT,
        "percent-encode",
    );
    new_case(
        &mut m,
        "baseUrl with password",
        r#"{"baseUrl":"https://admin:hunter2@open-api.123pan.com"}"#.as_bytes(),
        PAN_ERR_INVALID_ARGUMENT,
        "password",
    );
    new_case(
        &mut m,
        "baseUrl port 99999",
        r#"{"baseUrl":"https://h:99999"}"#.as_bytes(),
        PAN_ERR_INVALID_ARGUMENT,
        "port",
    );
    new_case(
        &mut m,
        "proxy port 99999",
        r#"{"proxy":"http://127.0.0.1:99999"}"#.as_bytes(),
        PAN_ERR_INVALID_ARGUMENT,
        "`99999`",
    );
    new_case(
        &mut m,
        "proxy unknown scheme",
        r#"{"proxy":"gopher://127.0.0.1:70"}"#.as_bytes(),
        PAN_ERR_INVALID_ARGUMENT,
        "scheme",
    );
    new_case(
        &mut m,
        "proxy with a path",
        r#"{"proxy":"http://127.0.0.1:3128/x"}"#.as_bytes(),
        PAN_ERR_INVALID_ARGUMENT,
        "path",
    );
    new_case(
        &mut m,
        "cleartext base through a remote proxy",
        r#"{"baseUrl":"http://127.0.0.1:1","proxy":"http://proxy.example:3128"}"#.as_bytes(),
        PAN_ERR_INVALID_ARGUMENT,
        "cleartext",
    );
    new_case(
        &mut m,
        "noProxy not a string",
        r#"{"noProxy":["a"]}"#.as_bytes(),
        PAN_ERR_INVALID_ARGUMENT,
        "`noProxy`",
    );
    new_case(
        &mut m,
        "resolve not an array",
        r#"{"resolve":"a:1:127.0.0.1"}"#.as_bytes(),
        PAN_ERR_INVALID_ARGUMENT,
        "`resolve`",
    );
    new_case(
        &mut m,
        "resolve without address",
        r#"{"resolve":["a:1"]}"#.as_bytes(),
        PAN_ERR_INVALID_ARGUMENT,
        "resolve[0]",
    );
    new_case(
        &mut m,
        "resolve bad address",
        r#"{"resolve":["a:1:1.2.3"]}"#.as_bytes(),
        PAN_ERR_INVALID_ARGUMENT,
        "resolve[0]",
    );
    new_case(
        &mut m,
        "clientID alone",
        br#"{"clientID":"a"}"#,
        PAN_ERR_INVALID_ARGUMENT,
        "go together",
    );

    // A client of our own, without credentials, for the functions that take one.
    let cfg = c(format!(r#"{{"baseUrl":"{}"}}"#, emu.url));
    // SAFETY: a valid C string.
    let client = unsafe { pan_client_new(cfg.as_ptr()) };
    assert!(!client.is_null());
    let (mut progress, mut status, mut file_id) = (-1.0f64, -1i32, -1i64);
    // SAFETY (the calls below): valid or NULL pointers as documented.
    unsafe {
        m.case(
            "client: NULL token without credentials",
            PAN_ERR_NULL_ARGUMENT,
            "clientID",
            pan_client_offline_download(client, null(), ok_opts.as_ptr(), &mut id),
        );
        m.case(
            "client: NULL task_id_out",
            PAN_ERR_NULL_ARGUMENT,
            "task_id_out",
            pan_client_offline_download(client, tok.as_ptr(), ok_opts.as_ptr(), null_mut()),
        );
        m.case(
            "progress: task 0",
            PAN_ERR_INVALID_ARGUMENT,
            "task ID must be positive",
            pan_offline_download_progress(client, tok.as_ptr(), 0, &mut progress, &mut status),
        );
        m.case(
            "progress: task -5",
            PAN_ERR_INVALID_ARGUMENT,
            "task ID must be positive",
            pan_offline_download_progress(client, tok.as_ptr(), -5, &mut progress, &mut status),
        );
        m.case(
            "progress: NULL progress_out",
            PAN_ERR_NULL_ARGUMENT,
            "progress_out",
            pan_offline_download_progress(client, tok.as_ptr(), 1, null_mut(), &mut status),
        );
        m.case(
            "progress: NULL status_out",
            PAN_ERR_NULL_ARGUMENT,
            "status_out",
            pan_offline_download_progress(client, tok.as_ptr(), 1, &mut progress, null_mut()),
        );
        m.case(
            "progress: token not UTF-8",
            PAN_ERR_INVALID_UTF8,
            "token",
            pan_offline_download_progress(
                client,
                c(b"\xff".to_vec()).as_ptr(),
                1,
                &mut progress,
                &mut status,
            ),
        );
        m.case(
            "progress: token CR/LF",
            PAN_ERR_INVALID_ARGUMENT,
            "token",
            pan_offline_download_progress(
                null(),
                c("a\r\nb").as_ptr(),
                1,
                &mut progress,
                &mut status,
            ),
        );
        m.case(
            "oss progress: task 0",
            PAN_ERR_INVALID_ARGUMENT,
            "task ID",
            pan_oss_offline_download_progress(client, tok.as_ptr(), 0, &mut progress, &mut status),
        );
        m.case(
            "wait: NULL status_out",
            PAN_ERR_NULL_ARGUMENT,
            "status_out",
            pan_offline_download_wait(client, tok.as_ptr(), 1, 100, None, null_mut(), null_mut()),
        );
        m.case(
            "wait: task 0",
            PAN_ERR_INVALID_ARGUMENT,
            "task ID",
            pan_offline_download_wait(client, tok.as_ptr(), 0, 100, None, null_mut(), &mut status),
        );
        m.case(
            "wait: token with space",
            PAN_ERR_INVALID_ARGUMENT,
            "token",
            pan_offline_download_wait(
                client,
                c("a b").as_ptr(),
                1,
                100,
                None,
                null_mut(),
                &mut status,
            ),
        );
        m.case(
            "oss: businessDirID number",
            PAN_ERR_INVALID_ARGUMENT,
            "`businessDirID` must be a string",
            pan_oss_offline_download(
                client,
                tok.as_ptr(),
                c(r#"{"url":"http://x/a.png","businessDirID":1}"#).as_ptr(),
                &mut id,
            ),
        );
        m.case(
            "oss: dirID",
            PAN_ERR_INVALID_ARGUMENT,
            "unknown key `dirID`",
            pan_oss_offline_download(
                client,
                tok.as_ptr(),
                c(r#"{"url":"http://x/a.png","dirID":1}"#).as_ptr(),
                &mut id,
            ),
        );
        m.case(
            "oss: type",
            PAN_ERR_INVALID_ARGUMENT,
            "unknown key `type`",
            pan_oss_offline_download(
                client,
                tok.as_ptr(),
                c(r#"{"url":"http://x/a.png","type":2}"#).as_ptr(),
                &mut id,
            ),
        );
        m.case(
            "oss: NULL out",
            PAN_ERR_NULL_ARGUMENT,
            "task_id_out",
            pan_oss_offline_download(client, tok.as_ptr(), ok_opts.as_ptr(), null_mut()),
        );

        let mut reason = [0 as c_char; 32];
        let cb = |body: &[u8]| c(body.to_vec());
        let parse = |body: *const c_char, s: *mut i32, f: *mut i64, r: *mut c_char, n: usize| {
            pan_callback_parse(body, s, f, r, n)
        };
        m.case(
            "callback: NULL body",
            PAN_ERR_NULL_ARGUMENT,
            "body",
            parse(null(), &mut status, &mut file_id, reason.as_mut_ptr(), 32),
        );
        m.case(
            "callback: NULL status_out",
            PAN_ERR_NULL_ARGUMENT,
            "status_out",
            parse(
                cb(b"{\"status\":0}").as_ptr(),
                null_mut(),
                &mut file_id,
                reason.as_mut_ptr(),
                32,
            ),
        );
        m.case(
            "callback: NULL file_id_out",
            PAN_ERR_NULL_ARGUMENT,
            "file_id_out",
            parse(
                cb(b"{\"status\":0}").as_ptr(),
                &mut status,
                null_mut(),
                reason.as_mut_ptr(),
                32,
            ),
        );
        m.case(
            "callback: NULL reason_buf with a length",
            PAN_ERR_NULL_ARGUMENT,
            "reason_buf",
            parse(
                cb(b"{\"status\":0}").as_ptr(),
                &mut status,
                &mut file_id,
                null_mut(),
                32,
            ),
        );
        m.case(
            "callback: not UTF-8",
            PAN_ERR_INVALID_UTF8,
            "body",
            parse(
                cb(b"{\"status\":0,\"failReason\":\"\xff\"}").as_ptr(),
                &mut status,
                &mut file_id,
                reason.as_mut_ptr(),
                32,
            ),
        );
        m.case(
            "callback: not JSON",
            PAN_ERR_INVALID_JSON,
            "callback body",
            parse(
                cb(b"status=0").as_ptr(),
                &mut status,
                &mut file_id,
                reason.as_mut_ptr(),
                32,
            ),
        );
        m.case(
            "callback: status string",
            PAN_ERR_INVALID_ARGUMENT,
            "`status` must be 0 or 1",
            parse(
                cb(b"{\"status\":\"0\"}").as_ptr(),
                &mut status,
                &mut file_id,
                reason.as_mut_ptr(),
                32,
            ),
        );
        m.case(
            "callback: status 2",
            PAN_ERR_INVALID_ARGUMENT,
            "`status` must be 0 or 1",
            parse(
                cb(b"{\"status\":2}").as_ptr(),
                &mut status,
                &mut file_id,
                reason.as_mut_ptr(),
                32,
            ),
        );
        m.case(
            "callback: status missing",
            PAN_ERR_INVALID_ARGUMENT,
            "`status` is missing",
            parse(
                cb(b"{\"fileID\":1}").as_ptr(),
                &mut status,
                &mut file_id,
                reason.as_mut_ptr(),
                32,
            ),
        );
        m.case(
            "callback: fileID negative",
            PAN_ERR_INVALID_ARGUMENT,
            "`fileID`",
            parse(
                cb(b"{\"status\":0,\"fileID\":-1}").as_ptr(),
                &mut status,
                &mut file_id,
                reason.as_mut_ptr(),
                32,
            ),
        );
        m.case(
            "callback: failReason number",
            PAN_ERR_INVALID_ARGUMENT,
            "`failReason` must be a string",
            parse(
                cb(b"{\"status\":1,\"failReason\":5}").as_ptr(),
                &mut status,
                &mut file_id,
                reason.as_mut_ptr(),
                32,
            ),
        );
        m.case(
            "callback: 8 MiB body",
            PAN_ERR_INVALID_ARGUMENT,
            "limit",
            parse(
                cb(format!(
                    "{{\"status\":1,\"failReason\":\"{}\"}}",
                    "r".repeat(8 << 20)
                )
                .as_bytes())
                .as_ptr(),
                &mut status,
                &mut file_id,
                reason.as_mut_ptr(),
                32,
            ),
        );
        m.case(
            "callback: deep nesting",
            PAN_ERR_INVALID_JSON,
            "recursion limit",
            parse(
                cb(format!("{{\"x\":{}{}}}", "[".repeat(20_000), "]".repeat(20_000)).as_bytes())
                    .as_ptr(),
                &mut status,
                &mut file_id,
                reason.as_mut_ptr(),
                32,
            ),
        );

        let mut token_out: *mut c_char = null_mut();
        m.case(
            "access token: NULL token_out",
            PAN_ERR_NULL_ARGUMENT,
            "token_out",
            pan_access_token(
                client,
                c("id").as_ptr(),
                c("secret").as_ptr(),
                null_mut(),
                null_mut(),
            ),
        );
        m.case(
            "access token: no credentials",
            PAN_ERR_NULL_ARGUMENT,
            "client_id",
            pan_access_token(client, null(), null(), &mut token_out, null_mut()),
        );
        m.case(
            "access token: empty clientID",
            PAN_ERR_INVALID_ARGUMENT,
            "`clientID` is empty",
            pan_access_token(
                client,
                c("").as_ptr(),
                c("s").as_ptr(),
                &mut token_out,
                null_mut(),
            ),
        );
        m.case(
            "access token: secret not UTF-8",
            PAN_ERR_INVALID_UTF8,
            "client_secret",
            pan_access_token(
                client,
                c("id").as_ptr(),
                c(b"\xff".to_vec()).as_ptr(),
                &mut token_out,
                null_mut(),
            ),
        );
        assert!(token_out.is_null(), "token_out written on failure");
        assert_eq!(
            (progress, status, file_id),
            (-1.0, -1, -1),
            "out-params written on failure"
        );
        pan_client_free(client);
    }

    assert!(
        m.failures.is_empty(),
        "{} of {} cases failed:\n{}",
        m.failures.len(),
        m.cases,
        m.failures.join("\n")
    );
    assert!(m.cases >= 100, "the matrix has {} cases", m.cases);
    eprintln!("{} bad inputs refused, none reached the server", m.cases);
    assert!(
        emu.requests().is_empty(),
        "invalid input reached the server: {:?}",
        emu.requests()
    );
}
