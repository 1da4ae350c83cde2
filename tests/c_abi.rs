//! The library as C, C++ and Python users see it: compiled and run against the emulator.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{build_dir, lib_dir, repo, run_ok, Emulator, STATIC_LIBS};

const C_FLAGS: &[&str] = &["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g"];

enum Link {
    Shared,
    Static,
}

/// Compiles a C (or C++) source of the repository against the header and the library.
fn compile(compiler: &str, flags: &[&str], source: &str, out_name: &str, link: Link) -> PathBuf {
    let out = build_dir().join(out_name);
    let lib_dir = lib_dir();
    let mut cmd = Command::new(compiler);
    cmd.args(flags)
        .arg(format!("-I{}", repo().join("include").display()))
        .arg(repo().join(source))
        .arg("-o")
        .arg(&out);
    match link {
        Link::Shared => {
            cmd.arg(format!("-L{}", lib_dir.display()))
                .arg("-lpan_offline")
                .arg(format!("-Wl,-rpath,{}", lib_dir.display()));
        }
        Link::Static => {
            cmd.arg(lib_dir.join("libpan_offline.a")).args(STATIC_LIBS);
        }
    }
    run_ok(&mut cmd);
    out
}

fn run_against(
    emu: &Emulator,
    program: &Path,
    args: &[&str],
    token: Option<&str>,
) -> std::process::Output {
    let mut cmd = Command::new(program);
    // The example keeps its state under $XDG_STATE_HOME: the tests' own, not the user's.
    cmd.args(args)
        .env("PAN_API_BASE_URL", &emu.url)
        .env("XDG_STATE_HOME", build_dir().join("state"))
        .env_remove("PAN_SHARED_STATE")
        .env_remove("PAN_TOKEN");
    if let Some(t) = token {
        cmd.env("PAN_TOKEN", t);
    }
    cmd.output().expect("program runs")
}

/// Compiles a C test program, runs it against a fresh emulator, and checks its own verdict
/// ("N passed, 0 failed" and a zero exit). Returns the emulator and the program's output.
fn run_suite(source: &str, name: &str, link: Link) -> (Emulator, String) {
    let program = compile("cc", &[C_FLAGS, &["-pthread"]].concat(), source, name, link);
    let emu = Emulator::start();
    let out = run_against(&emu, &program, &[], None);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains(" passed, 0 failed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (emu, stdout)
}

/// Runs tests/c/test_abi.c and checks its own verdict and the emulator's count of tasks.
fn c_abi_suite(link: Link, name: &str) {
    let (emu, stdout) = run_suite("tests/c/test_abi.c", name, link);
    let creates: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("creates="))
        .and_then(|n| n.parse().ok())
        .expect("creates=N line");
    assert!(creates > 10);
    assert_eq!(
        emu.tasks_created(),
        creates,
        "no invalid call reached the service, no task twice"
    );
}

#[test]
fn c_test_program_passes_linked_against_the_shared_library() {
    c_abi_suite(Link::Shared, "test_abi_shared");
}

#[test]
fn c_test_program_passes_linked_against_the_static_library() {
    c_abi_suite(Link::Static, "test_abi_static");
}

#[test]
fn host_program_habits_thread_exit_destructors_nested_calls_and_zero_waits() {
    let (emu, _) = run_suite("tests/c/test_host.c", "test_host", Link::Shared);
    // The zero-length waits polled once each.
    assert!(emu.count("/api/v1/offline/download/process") >= 3);
}

#[test]
fn c_token_source_program_passes() {
    let (emu, _) = run_suite(
        "tests/c/test_token_source.c",
        "test_token_source",
        Link::Shared,
    );
    assert_eq!(
        emu.count("/api/v1/access_token"),
        0,
        "the host's tokens only"
    );
}

#[test]
fn c_workflow_program_passes() {
    let (emu, _) = run_suite("tests/c/test_workflow.c", "test_workflow", Link::Shared);
    assert_eq!(
        emu.count("/api/v1/access_token"),
        3,
        "the cached token, one explicit fetch, one refused"
    );
}

#[test]
fn a_forked_child_uses_a_connection_of_its_own_and_the_parent_goes_on() {
    let (emu, stdout) = run_suite("tests/c/test_fork.c", "test_fork", Link::Shared);
    let id_of = |who: &str| -> serde_json::Value {
        let id: i64 = stdout
            .lines()
            .find_map(|l| l.strip_prefix(who))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {who} line in {stdout}"));
        serde_json::Value::from(id)
    };
    let conn_of = |id: serde_json::Value| {
        emu.requests()
            .into_iter()
            .find(|r| r["task"] == id)
            .map(|r| r["conn"].clone())
            .expect("request of the task")
    };
    let (p1, child, p2) = (
        conn_of(id_of("parent-1 ")),
        conn_of(id_of("child ")),
        conn_of(id_of("parent-2 ")),
    );
    assert_ne!(child, p1, "the child reused the parent's pooled connection");
    assert_eq!(p1, p2, "the parent keeps its own connection");
    assert_eq!(emu.tasks_created(), 3);
}

#[test]
fn a_child_forked_while_other_threads_call_is_never_stuck() {
    // The program's own verdict: no child killed by its 10 s alarm, none failed.
    let (_, stdout) = run_suite(
        "tests/c/test_fork_threads.c",
        "test_fork_threads",
        Link::Shared,
    );
    assert!(stdout.contains("hung=0 failed=0"), "{stdout}");
    // Forked while one thread was inside the log callback and another waited to clear it.
    assert!(stdout.contains("log fork: child=ok"), "{stdout}");
}

#[test]
fn the_shared_library_exports_only_pan_symbols() {
    let out = run_ok(
        Command::new("nm")
            .args(["-D", "--defined-only"])
            .arg(lib_dir().join("libpan_offline.so")),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let symbols: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let foreign: Vec<&&str> = symbols.iter().filter(|s| !s.starts_with("pan_")).collect();
    assert!(foreign.is_empty(), "exported beyond pan_*: {foreign:?}");
    // Every function of the header is exported, and nothing else.
    let header = std::fs::read_to_string(repo().join("include/pan_offline.h")).expect("header");
    let mut declared: Vec<&str> = header
        .lines()
        .filter(|l| {
            !l.starts_with([' ', '#', '/', '*'])
                && !l.starts_with("typedef")
                && l.contains("pan_")
                && l.contains('(')
        })
        .filter_map(|l| {
            l.split('(')
                .next()?
                .split_whitespace()
                .last()
                .map(|n| n.trim_start_matches('*'))
        })
        .collect();
    declared.sort_unstable();
    let mut exported = symbols.clone();
    exported.sort_unstable();
    assert_eq!(declared, exported);
}

#[test]
fn version_macros_and_pan_version_equal_cargo_toml() {
    let header = std::fs::read_to_string(repo().join("include/pan_offline.h")).expect("header");
    for (name, want) in [
        (
            "PAN_OFFLINE_VERSION_MAJOR",
            env!("CARGO_PKG_VERSION_MAJOR").to_owned(),
        ),
        (
            "PAN_OFFLINE_VERSION_MINOR",
            env!("CARGO_PKG_VERSION_MINOR").to_owned(),
        ),
        (
            "PAN_OFFLINE_VERSION_PATCH",
            env!("CARGO_PKG_VERSION_PATCH").to_owned(),
        ),
        (
            "PAN_OFFLINE_VERSION",
            format!("\"{}\"", env!("CARGO_PKG_VERSION")),
        ),
    ] {
        assert!(
            header.contains(&format!("#define {name} {want}\n")),
            "{name} is not {want}"
        );
    }
    // SAFETY: pan_version returns a static C string.
    let v = unsafe { std::ffi::CStr::from_ptr(pan_offline::ffi::pan_version()) };
    assert_eq!(v.to_str().ok(), Some(env!("CARGO_PKG_VERSION")));
}

#[test]
fn the_readme_static_link_line_matches_rustc() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let line = STATIC_LIBS.join(" ");
    assert!(
        readme.contains(&line),
        "README must give the static link line `{line}`"
    );
    // rustc's own answer, from the toolchain that built the library. The library adds no
    // native library of its own (ring's C is compiled in), so std's list is the list; the
    // static link test above proves the line links.
    let dir = build_dir();
    let src = dir.join("empty_staticlib.rs");
    std::fs::write(&src, "").expect("write empty crate");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = run_ok(
        Command::new(rustc)
            .args([
                "--crate-type",
                "staticlib",
                "--print",
                "native-static-libs",
                "-o",
            ])
            .arg(dir.join("libempty.a"))
            .arg(&src),
    );
    let text = String::from_utf8_lossy(&out.stderr);
    let printed = text
        .lines()
        .find_map(|l| l.split("native-static-libs: ").nth(1))
        .expect("rustc prints native-static-libs");
    assert_eq!(printed.trim(), line);
}

#[test]
fn header_compiles_and_links_as_cpp() {
    let program = compile(
        "c++",
        &["-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic"],
        "tests/c/header_cpp.cpp",
        "header_cpp",
        Link::Shared,
    );
    let out = run_ok(&mut Command::new(program));
    assert!(String::from_utf8_lossy(&out.stdout).contains("C++ sees pan-offline"));
}

#[test]
fn cpp_wrapper_example_waits_and_throws_pan_errors() {
    let program = compile(
        "c++",
        &["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic"],
        "examples-cpp/wait.cpp",
        "cpp_wait",
        Link::Shared,
    );
    let emu = Emulator::start();
    let out = Command::new(&program)
        .arg(format!("{}/files/cpp.bin?size=100000", emu.url))
        .env("PAN_API_BASE_URL", &emu.url)
        .env("PAN_CLIENT_ID", "test-client")
        .env("PAN_CLIENT_SECRET", "test-secret")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("100.00%")
            && stdout.contains("task succeeded")
            && stdout.contains("stopped by its callback as asked"),
        "{stdout}"
    );
    assert!(
        stdout.contains("refused as expected: status 4: options: `url`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("batch item 1: status 4")
            && stdout.contains("batch: 1 created, 1 finished"),
        "{stdout}"
    );
}

/// The README's first command, ten times in a row with client credentials: ten tasks and one
/// token fetch (the runs share the token through the default state directory); with
/// `--no-state` each run fetches its own, and the fourth meets the service's token limit.
#[test]
fn example_runs_share_one_token_through_the_default_state() {
    let program = compile(
        "cc",
        C_FLAGS,
        "examples-c/offline_download.c",
        "offline_download_state",
        Link::Shared,
    );
    let emu = Emulator::start();
    let state_home = build_dir().join(format!("state-home-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state_home);
    let url = format!("{}/files/s.bin?size=100", emu.url);
    let run = |extra: &[&str]| {
        let mut cmd = Command::new(&program);
        cmd.arg(&url)
            .args(extra)
            .env("PAN_API_BASE_URL", &emu.url)
            .env("PAN_CLIENT_ID", "test-client")
            .env("PAN_CLIENT_SECRET", "test-secret")
            .env("XDG_STATE_HOME", &state_home)
            .env_remove("PAN_SHARED_STATE")
            .env_remove("PAN_TOKEN");
        cmd.output().expect("runs")
    };
    for i in 0..10 {
        let out = run(&[]);
        assert!(
            out.status.success(),
            "run {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(emu.tasks_created(), 10);
    assert_eq!(emu.count("/api/v1/access_token"), 1);
    let mode = std::fs::metadata(state_home.join("pan-offline"))
        .expect("the default state directory")
        .permissions();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.mode() & 0o777, 0o700);
    // Without a state: one fetch per run, until the service's limit of three live tokens.
    let codes: Vec<Option<i32>> = (0..3).map(|_| run(&["--no-state"]).status.code()).collect();
    assert_eq!(
        codes,
        vec![Some(0), Some(0), Some(1)],
        "the 4th live token is refused"
    );
    let _ = std::fs::remove_dir_all(&state_home);
}

#[test]
fn example_batch_creates_each_url_once_resumes_from_its_journal_and_exits_by_the_outcome() {
    let program = compile(
        "cc",
        C_FLAGS,
        "examples-c/offline_download.c",
        "offline_download_batch",
        Link::Shared,
    );
    let emu = Emulator::start();
    let list = build_dir().join(format!("batch-{}.txt", std::process::id()));
    let journal = build_dir().join(format!("batch-{}.journal", std::process::id()));
    let _ = std::fs::remove_file(&journal);
    let a = format!("{}/files/a.bin?size=3000", emu.url);
    let b = format!("{}/files/b.bin?size=3000", emu.url);
    std::fs::write(&list, format!("# a list\n{a}\n\n{b}\n{a}\n")).expect("list");
    let args = [
        "--batch",
        list.to_str().expect("path"),
        "--dir",
        "10023",
        "--journal",
        journal.to_str().expect("path"),
        "--wait",
    ];
    let out = run_against(&emu, &program, &args, Some("test-token"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("3 items: 3 with a task, 0 failed, 0 unknown"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 tasks: 2 succeeded, 0 failed"),
        "{stdout}"
    );
    assert_eq!(emu.tasks_created(), 2);
    // Again with the journal: nothing is created twice.
    let out = run_against(&emu, &program, &args[..6], Some("test-token"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(emu.tasks_created(), 2);
    // A download that fails: exit status 3.
    std::fs::write(&list, format!("{}/files/missing.bin\n", emu.url)).expect("list");
    let out = run_against(
        &emu,
        &program,
        &[args[0], args[1], "--wait"],
        Some("test-token"),
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let _ = std::fs::remove_file(&list);
    let _ = std::fs::remove_file(&journal);
}

#[test]
fn example_creates_a_task_and_reports_errors_with_code_message_and_trace_id() {
    let program = compile(
        "cc",
        C_FLAGS,
        "examples-c/offline_download.c",
        "offline_download",
        Link::Shared,
    );
    let emu = Emulator::start();
    let src = format!("{}/files/demo.bin?size=2000", emu.url);

    let ok = run_against(
        &emu,
        &program,
        &[&src, "--name", "demo \"1\".bin", "--dir", "10023"],
        Some("test-token"),
    );
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let verbose = run_against(&emu, &program, &[&src, "--verbose"], Some("test-token"));
    let log = String::from_utf8_lossy(&verbose.stderr);
    assert!(
        verbose.status.success()
            && log.contains("[pan info] create offline download task: HTTP 200"),
        "{log}"
    );
    assert!(!log.contains("test-token"), "{log}");
    let task = emu.tasks().into_iter().next().expect("one task");
    assert!(
        stdout.contains(&format!("task {} created", task["taskID"])),
        "{stdout}"
    );
    assert_eq!(task["request"]["fileName"], "demo \"1\".bin");
    assert_eq!(task["request"]["dirID"], 10023);

    let denied = run_against(&emu, &program, &[&src], Some("expired-token"));
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        stderr.contains("error 11")
            && stderr.contains("server code: 401")
            && stderr.contains("trace ID: "),
        "{stderr}"
    );
    assert!(!stderr.contains("expired-token"));

    let usage = run_against(&emu, &program, &[&src], None);
    assert_eq!(usage.status.code(), Some(2));
    assert_eq!(emu.tasks_created(), 2, "the plain and the --verbose run");
}

#[test]
fn example_waits_with_client_credentials_and_exits_by_the_final_status() {
    let program = compile(
        "cc",
        C_FLAGS,
        "examples-c/offline_download.c",
        "offline_download_wait",
        Link::Shared,
    );
    let emu = Emulator::start();
    let run = |src: String| {
        Command::new(&program)
            .args([
                src.as_str(),
                "--wait",
                "--callback",
                &format!("{}/callback", emu.url),
            ])
            .env("PAN_API_BASE_URL", &emu.url)
            .env_remove("PAN_TOKEN")
            .env("PAN_CLIENT_ID", "test-client")
            .env("PAN_CLIENT_SECRET", "test-secret")
            .output()
            .expect("example runs")
    };
    let ok = run(format!("{}/files/w.bin?size=200000", emu.url));
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Not a terminal: one line per poll, ending at 100 %.
    assert!(
        stdout.contains("100.00% succeeded") && stdout.contains("succeeded\n"),
        "{stdout}"
    );
    assert!(
        stdout.lines().filter(|l| l.contains("% ")).count() >= 2,
        "{stdout}"
    );

    let failed = run(format!("{}/files/missing.bin", emu.url));
    assert_eq!(
        failed.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&failed.stdout)
    );
    assert_eq!(
        emu.count("/api/v1/access_token"),
        1,
        "the two runs share one token through the state directory"
    );

    let body = emu.callback_matching(|b| b.contains("\"status\": 1"));
    let parsed = Command::new(&program)
        .args(["--parse-callback", &body])
        .output()
        .expect("runs");
    assert!(
        String::from_utf8_lossy(&parsed.stdout).contains("download failed: download failed: 404")
    );
}

#[test]
fn python_module_passes() {
    let emu = Emulator::start();
    let out = Command::new("python3")
        .arg(repo().join("tests/python/test_module.py"))
        .env("PYTHONPATH", repo().join("python"))
        .env("PAN_API_BASE_URL", &emu.url)
        .env("PAN_OFFLINE_LIB", lib_dir().join("libpan_offline.so"))
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("OK"), "{stderr}");
}

#[test]
fn python_ctypes_user_passes() {
    let emu = Emulator::start();
    let out = Command::new("python3")
        .arg(repo().join("tests/python/test_ctypes.py"))
        .env("PAN_API_BASE_URL", &emu.url)
        .env("PAN_OFFLINE_LIB", lib_dir().join("libpan_offline.so"))
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("OK"), "{stderr}");
}

#[test]
fn the_process_wide_client_trusts_ssl_cert_file_over_https() {
    let program = compile(
        "cc",
        C_FLAGS,
        "examples-c/offline_download.c",
        "offline_download_tls",
        Link::Shared,
    );
    let emu = Emulator::start_tls(&[]);
    let run = |ca: &Path| {
        let mut cmd = Command::new(&program);
        cmd.arg("https://example.com/a.bin")
            .env("PAN_API_BASE_URL", &emu.url)
            .env("PAN_TOKEN", support::TOKEN)
            .env("SSL_CERT_FILE", ca);
        cmd.output().expect("program runs")
    };
    let ok = run(&support::test_pki().ca);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success() && stdout.contains(" created"),
        "{stdout} {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // A bundle that cannot be read is a TLS error that names the variable and the path.
    let bad = run(Path::new("/nonexistent/bundle.pem"));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error 7") && stderr.contains("$SSL_CERT_FILE `/nonexistent/bundle.pem`"),
        "{stderr}"
    );
}
