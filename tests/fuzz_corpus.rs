//! Replays the fuzz corpora (fuzz/corpus/<target>/) through the same checks the fuzz targets
//! run (src/fuzz_checks.rs), so that every input a fuzzer found interesting — and every
//! finding, once fixed — stays a regression case of `cargo test`.

use std::path::PathBuf;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        if path.is_file() {
            check(&std::fs::read(&path).expect("corpus file"));
            n += 1;
        }
    }
    assert!(n >= 2, "{target}: only {n} corpus files");
}

#[test]
fn options_corpus_replays() {
    replay("options", pan_offline::fuzzing::options);
}

#[test]
fn envelope_corpus_replays() {
    replay("envelope", pan_offline::fuzzing::envelope);
}

#[test]
fn callback_corpus_replays() {
    replay("callback", pan_offline::fuzzing::callback);
}

#[test]
fn config_corpus_replays() {
    replay("config", pan_offline::fuzzing::config);
}

#[test]
fn expired_at_corpus_replays() {
    replay("expired_at", pan_offline::fuzzing::expired_at);
}

#[test]
fn http_fields_corpus_replays() {
    replay("http_fields", pan_offline::fuzzing::http_fields);
}
