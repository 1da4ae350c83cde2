//! Threads: 32 threads × 500 mixed calls through the C ABI (successes, API errors, invalid
//! input), with no wrong result and no thread seeing another's error; clients created, shared
//! and freed concurrently.

mod support;

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::ptr::null;
use std::sync::Mutex;

use pan_offline::ffi::*;
use support::Emulator;

const THREADS: usize = 32;
const CALLS: usize = 500;

fn message() -> String {
    // SAFETY: always a valid C string.
    unsafe { CStr::from_ptr(pan_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn thirty_two_threads_of_mixed_calls_get_exactly_their_own_results() {
    let emu = Emulator::start();
    std::env::set_var("PAN_API_BASE_URL", &emu.url);
    let cfg = CString::new(format!(r#"{{"baseUrl":"{}"}}"#, emu.url)).expect("cstr");
    // SAFETY: a valid C string.
    let shared = unsafe { pan_client_new(cfg.as_ptr()) } as usize;
    assert_ne!(shared, 0);
    let ids = Mutex::new(Vec::new());
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (ids, errors, cfg) = (&ids, &errors, &cfg);
            s.spawn(move || {
                let good = CString::new("test-token").expect("cstr");
                let bad = CString::new(format!("wrong-token-{t}")).expect("cstr");
                let opts = CString::new(r#"{"url":"https://example.com/t.mp4"}"#).expect("cstr");
                // Each thread's invalid input names a key of its own, so a message that
                // leaked from another thread would show.
                let invalid =
                    CString::new(format!(r#"{{"url":"https://x/","key_{t}":1}}"#)).expect("cstr");
                // Half the threads use a client of their own, created and freed here while
                // the others run; the rest share one (or the process-wide default).
                // SAFETY: a valid C string.
                let own = if t % 2 == 0 {
                    unsafe { pan_client_new(cfg.as_ptr()) }
                } else {
                    std::ptr::null_mut()
                };
                let client = if t % 2 == 0 {
                    own as *const _
                } else if t % 4 == 1 {
                    shared as *const _
                } else {
                    null()
                };
                let mut mine = Vec::new();
                for i in 0..CALLS {
                    let mut id = -1i64;
                    // SAFETY: valid pointers throughout.
                    let problem = unsafe {
                        match (i + t) % 3 {
                            0 => {
                                let rc = pan_client_offline_download(
                                    client,
                                    good.as_ptr(),
                                    opts.as_ptr(),
                                    &mut id,
                                );
                                mine.push(id);
                                (rc != PAN_OK || id <= 0 || !message().is_empty())
                                    .then(|| format!("success call: {rc} {id} {}", message()))
                            }
                            1 => {
                                let rc = pan_client_offline_download(
                                    client,
                                    bad.as_ptr(),
                                    opts.as_ptr(),
                                    &mut id,
                                );
                                (rc != PAN_ERR_UNAUTHORIZED
                                    || id != -1
                                    || pan_last_api_code() != 401
                                    || message().contains(&format!("wrong-token-{t}")))
                                .then(|| format!("401 call: {rc} {}", message()))
                            }
                            _ => {
                                let rc = pan_client_offline_download(
                                    client,
                                    good.as_ptr(),
                                    invalid.as_ptr(),
                                    &mut id,
                                );
                                (rc != PAN_ERR_INVALID_ARGUMENT
                                    || id != -1
                                    || !message().contains(&format!("`key_{t}`"))
                                    || pan_last_api_code() != 0)
                                    .then(|| format!("invalid call: {rc} {}", message()))
                            }
                        }
                    };
                    if let Some(p) = problem {
                        errors
                            .lock()
                            .expect("lock")
                            .push(format!("thread {t} call {i}: {p}"));
                    }
                }
                // SAFETY: NULL or our own client, no longer used.
                unsafe { pan_client_free(own) };
                ids.lock().expect("lock").extend(mine);
            });
        }
    });
    // SAFETY: the shared client, no longer used by any thread.
    unsafe { pan_client_free(shared as *mut _) };
    let errors = errors.into_inner().expect("lock");
    assert!(
        errors.is_empty(),
        "{} wrong results, first: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    let ids = ids.into_inner().expect("lock");
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a task ID was reported twice");
    assert_eq!(
        emu.tasks_created(),
        ids.len() as u64,
        "every success is one task, no more"
    );
    // Kinds 0 (success) and 1 (401) reach the server; kind 2 (invalid input) must not.
    let reaching = (0..THREADS)
        .flat_map(|t| (0..CALLS).map(move |i| (i + t) % 3))
        .filter(|k| *k != 2)
        .count();
    assert_eq!(
        emu.count("/api/v1/offline/download"),
        reaching,
        "invalid input reached the server"
    );
}
