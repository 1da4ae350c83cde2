//! Generates the C header from the C ABI (`src/ffi/`) with cbindgen.
//!
//! The header is always written to `$OUT_DIR/pan_offline.h`. Inside the repository (a `.git`
//! beside Cargo.toml) it is also written to `include/pan_offline.h`, but only when it differs,
//! so that a build never touches the committed header needlessly and a packaged crate never
//! writes outside `OUT_DIR`. The committed header is checked against the generated one by
//! `tests/header.rs`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/ffi");
    // Never unloaded by dlclose(): the pthread keys of src/per_thread.rs have destructors in
    // the library that run whenever a thread that used it exits, unloaded or not.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let crate_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));

    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    let version = |part: &str| {
        std::env::var(format!("CARGO_PKG_VERSION_{part}")).expect("cargo sets the version")
    };
    config.after_includes = Some(format!(
        "\n/** Major version of this header; pan_version() gives the library's. */\n\
         #define PAN_OFFLINE_VERSION_MAJOR {}\n\
         /** Minor version of this header. */\n\
         #define PAN_OFFLINE_VERSION_MINOR {}\n\
         /** Patch version of this header. */\n\
         #define PAN_OFFLINE_VERSION_PATCH {}\n\
         /** Version of this header as a string, equal to pan_version() of the matching library. */\n\
         #define PAN_OFFLINE_VERSION \"{}\"",
        version("MAJOR"),
        version("MINOR"),
        version("PATCH"),
        std::env::var("CARGO_PKG_VERSION").expect("cargo sets the version"),
    ));

    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen can generate the header from src/ffi/");
    let generated = out_dir.join("pan_offline.h");
    bindings.write_to_file(&generated);

    if crate_dir.join(".git").exists() {
        let committed = crate_dir.join("include/pan_offline.h");
        let new = std::fs::read(&generated).expect("the generated header is readable");
        if std::fs::read(&committed).ok().as_deref() != Some(new.as_slice()) {
            std::fs::create_dir_all(crate_dir.join("include")).expect("include/ can be created");
            std::fs::write(&committed, new).expect("include/pan_offline.h can be written");
        }
    }
}
