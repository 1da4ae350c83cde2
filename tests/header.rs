//! The committed header is what cbindgen generates from the sources, byte for byte.

use std::path::PathBuf;

#[test]
fn committed_header_matches_cbindgen_output() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let generated = std::fs::read(PathBuf::from(env!("OUT_DIR")).join("pan_offline.h"))
        .expect("build.rs wrote $OUT_DIR/pan_offline.h");
    // In a git checkout, compare with the committed version (build.rs refreshes the working
    // copy, so the working copy alone would always match); elsewhere with the file.
    let committed = std::process::Command::new("git")
        .args(["show", "HEAD:include/pan_offline.h"])
        .current_dir(&repo)
        .output()
        .ok()
        .filter(|o| o.status.success() && repo.join(".git").exists())
        .map(|o| o.stdout)
        .unwrap_or_else(|| {
            std::fs::read(repo.join("include/pan_offline.h")).expect("include/pan_offline.h")
        });
    assert!(
        committed == generated,
        "include/pan_offline.h differs from what cbindgen generates: build, then commit it"
    );
}
