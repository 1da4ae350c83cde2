//! Test support shared by the integration tests: the emulator process, and where the built
//! library and the C compilers are. (Each test file uses a part of it.)
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The token the emulator accepts by default.
pub const TOKEN: &str = "test-token";

/// A running emulator (tests/emulator/pan_emulator.py), stopped when dropped. It also stops
/// by itself when this process ends (it watches its stdin) or after 15 minutes.
pub struct Emulator {
    child: Child,
    _stdin: ChildStdin,
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    agent: ureq::Agent,
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Emulator {
    pub fn start() -> Emulator {
        Emulator::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Emulator {
        let mut child = Command::new("python3")
            .arg(repo().join("tests/emulator/pan_emulator.py"))
            .args(["--watch-stdin", "--max-seconds", "900"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the emulator");
        let stdin = child.stdin.take().expect("stdin piped");
        let stdout = child.stdout.take().expect("stdout piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("emulator prints its URL");
        let url = line
            .trim()
            .strip_prefix("PAN_EMULATOR_URL=")
            .unwrap_or_else(|| panic!("unexpected emulator output {line:?}"))
            .to_owned();
        let mut agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .proxy(None);
        if url.starts_with("https://") {
            // The control routes of a TLS emulator: trust the test CA.
            let pem = std::fs::read(&test_pki().ca).expect("test CA");
            let certs = ureq::tls::parse_pem(&pem)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            agent = agent.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs)))
                    .unversioned_rustls_crypto_provider(std::sync::Arc::new(
                        rustls::crypto::ring::default_provider(),
                    ))
                    .build(),
            );
        }
        let agent = agent.build().new_agent();
        Emulator {
            child,
            _stdin: stdin,
            url,
            agent,
        }
    }

    fn control(&self, path: &str, body: Option<&str>) -> Value {
        let url = format!("{}{path}", self.url);
        let mut resp = match body {
            Some(b) => self.agent.post(&url).send(b),
            None => self.agent.get(&url).call(),
        }
        .unwrap_or_else(|e| panic!("emulator control route {path} answers: {e}"));
        // The request log of a load test runs to megabytes.
        let text = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .unwrap_or_else(|e| panic!("control body of {path}: {e}"));
        serde_json::from_str(&text).expect("control answer is JSON")
    }

    /// Scripts a fault (or a JSON list of faults) for the next matching requests.
    pub fn fault(&self, json: &str) {
        self.control("/__emu/faults", Some(json));
    }

    /// Forgets the requests, faults and callbacks seen so far.
    pub fn reset(&self) {
        self.control("/__emu/reset", Some("{}"));
    }

    /// The emulator's counters (GET /__emu/stats): token fetches, evicted uses, refusals...
    pub fn stats(&self) -> Value {
        self.control("/__emu/stats", None)
    }

    /// Another program's token fetch for `client_id` (POST /__emu/login): the envelope.
    pub fn login(&self, client_id: &str) -> Value {
        self.control(
            "/__emu/login",
            Some(&serde_json::json!({ "clientID": client_id }).to_string()),
        )
    }

    /// The most requests to `path` the emulator received in any one second of its clock
    /// (their `mono` arrival times).
    pub fn max_in_any_second(&self, path: &str) -> usize {
        let mut t: Vec<f64> = self
            .requests()
            .iter()
            .filter(|r| r["path"] == path)
            .filter_map(|r| r["mono"].as_f64())
            .collect();
        t.sort_by(f64::total_cmp);
        (0..t.len())
            .map(|i| t[i..].iter().take_while(|x| **x < t[i] + 1.0).count())
            .max()
            .unwrap_or(0)
    }

    /// Changes the emulator's settings (see /__emu/config in the emulator).
    pub fn configure(&self, json: &str) {
        self.control("/__emu/config", Some(json));
    }

    /// Every API request the emulator received, in order.
    pub fn requests(&self) -> Vec<Value> {
        match self.control("/__emu/requests", None) {
            Value::Array(v) => v,
            other => panic!("requests: {other}"),
        }
    }

    /// The bearer token of the first authorised request the emulator received (the token a
    /// client fetched for itself).
    pub fn first_bearer_token(&self) -> String {
        self.requests()
            .iter()
            .find_map(|r| r["headers"]["authorization"].as_str().map(str::to_owned))
            .expect("an authorised request")
            .trim_start_matches("Bearer ")
            .to_owned()
    }

    /// API requests received on this path.
    pub fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r["path"] == path).count()
    }

    /// How many tasks the emulator created.
    pub fn tasks_created(&self) -> u64 {
        self.control("/__emu/tasks", None)["count"]
            .as_u64()
            .expect("count")
    }

    /// The task records (for checking what the service was asked to do).
    pub fn tasks(&self) -> Vec<Value> {
        match &self.control("/__emu/tasks", None)["tasks"] {
            Value::Array(v) => v.clone(),
            other => panic!("tasks: {other}"),
        }
    }

    /// Callback bodies the emulator's own /callback route received.
    pub fn callbacks(&self) -> Vec<String> {
        match self.control("/__emu/callbacks", None) {
            Value::Array(v) => v
                .into_iter()
                .map(|s| s.as_str().unwrap_or_default().to_owned())
                .collect(),
            other => panic!("callbacks: {other}"),
        }
    }
}

impl Emulator {
    /// The first callback body that `pred` accepts, waiting up to 5 s for it to arrive (the
    /// emulator posts it just after the task ends).
    pub fn callback_matching(&self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(b) = self.callbacks().into_iter().find(|b| pred(b)) {
                return b;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no matching callback arrived"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client of the emulator: its URL as the base, and `extra` configuration keys (each
/// written `,"key":value`).
pub fn client(emu: &Emulator, extra: &str) -> pan_offline::Client {
    let json = format!(r#"{{"baseUrl":"{}"{extra}}}"#, emu.url);
    pan_offline::Client::new(pan_offline::Config::from_json(&json).expect("config"))
        .expect("client")
}

/// [`client`] that fetches its own token with the emulator's test credentials.
pub fn credentials_client(emu: &Emulator, extra: &str) -> pan_offline::Client {
    client(
        emu,
        &format!(r#","clientID":"test-client","clientSecret":"test-secret"{extra}"#),
    )
}

/// A loopback port nothing listens on (it was free a moment ago).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// Where cargo put libpan_offline.{so,a} for this test run: target/<profile>/deps, beside the
/// test executable. `cargo test` alone leaves them only there (it copies them up to
/// target/<profile> only for `cargo build`), so a fresh clone has nothing else to link against.
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// A scratch directory for compiled test programs: target/<profile>/c-tests.
pub fn build_dir() -> PathBuf {
    let d = lib_dir()
        .parent()
        .expect("target/<profile>/deps")
        .join("c-tests");
    std::fs::create_dir_all(&d).expect("create c-tests dir");
    d
}

/// The native libraries a static link of libpan_offline.a needs on Linux (as
/// `rustc --print native-static-libs` reports them; tests/c_abi.rs checks the two agree).
pub const STATIC_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// Runs a command and returns its output, failing the test with its output when it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed: {}\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// A certificate authority and a server certificate for 127.0.0.1 that it signed (RSA CA,
/// P-256 server key, one day), made with openssl once per test process.
pub struct Pki {
    /// The CA's certificate (PEM): what a client must trust.
    pub ca: PathBuf,
    /// The server's certificate (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

pub fn test_pki() -> &'static Pki {
    static PKI: std::sync::OnceLock<Pki> = std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        let dir = build_dir().join(format!("pki-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("pki dir");
        let p = |name: &str| dir.join(name);
        let openssl = |args: &[&str]| {
            run_ok(Command::new("openssl").current_dir(&dir).args(args));
        };
        std::fs::write(
            p("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:pan.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write server.ext");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=pan-offline test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "server.csr",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "2",
            "-days",
            "1",
            "-extfile",
            "server.ext",
            "-out",
            "cert.pem",
        ]);
        Pki {
            ca: p("ca.pem"),
            cert: p("cert.pem"),
            key: p("key.pem"),
        }
    })
}

impl Emulator {
    /// An emulator serving https with the test PKI's server certificate. (Its control routes
    /// are then out of reach of `control`, whose agent trusts nothing.)
    pub fn start_tls(extra: &[&str]) -> Emulator {
        let pki = test_pki();
        let mut args = vec![
            "--tls-cert",
            pki.cert.to_str().expect("path"),
            "--tls-key",
            pki.key.to_str().expect("path"),
        ];
        args.extend_from_slice(extra);
        let emu = Emulator::start_with(&args);
        assert!(emu.url.starts_with("https://"), "{}", emu.url);
        emu
    }
}
