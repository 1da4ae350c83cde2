//! The README's code cannot drift: every C, C++ and Python block in it is compiled (C with
//! `-std=c11 -Wall -Wextra -Werror -pedantic`, C++ with `-std=c++17 -Wall -Wextra -Werror`)
//! and run against the emulator. A fragment without `main` is run inside one (with nothing
//! else: it must declare all it uses).

mod support;

use std::process::Command;

use support::{build_dir, lib_dir, repo, run_ok, Emulator};

/// The README's blocks of this language, in order.
fn blocks(lang: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let fence = format!("```{lang}\n");
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find(&fence) {
        let body = &rest[start + fence.len()..];
        let end = body.find("```").expect("a closing fence");
        out.push(body[..end].to_owned());
        rest = &body[end..];
    }
    out
}

/// Compiles `src` to `bin` against the header and the shared library.
fn compile(compiler: &str, flags: &[&str], src: &std::path::Path, bin: &std::path::Path) {
    run_ok(
        Command::new(compiler)
            .args(flags)
            .arg(format!("-I{}", repo().join("include").display()))
            .arg(src)
            .arg("-o")
            .arg(bin)
            .arg(format!("-L{}", lib_dir().display()))
            .arg("-lpan_offline")
            .arg(format!("-Wl,-rpath,{}", lib_dir().display())),
    );
}

/// Runs a program against a fresh emulator: it must end by itself, without a signal.
fn run(cmd: &mut Command, what: &str) {
    let emu = Emulator::start();
    let out = cmd
        .env("PAN_API_BASE_URL", &emu.url)
        .output()
        .expect("the program runs");
    assert!(
        out.status.code().is_some(),
        "{what} died by a signal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_c_block_compiles_warning_free_and_runs() {
    let c = blocks("c");
    assert!(c.len() >= 3, "{} C blocks", c.len());
    for (i, block) in c.iter().enumerate() {
        let source = if block.contains("int main") {
            block.clone()
        } else {
            format!(
                "#include <stdio.h>\n#include \"pan_offline.h\"\n\
                 int main(void) {{\n{block}\nreturn 0;\n}}\n"
            )
        };
        let src = build_dir().join(format!("readme_c_{i}.c"));
        let bin = build_dir().join(format!("readme_c_{i}"));
        std::fs::write(&src, source).expect("write");
        compile(
            "cc",
            &["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"],
            &src,
            &bin,
        );
        run(&mut Command::new(&bin), &format!("README C block {i}"));
    }
}

#[test]
fn every_cpp_block_compiles_warning_free_and_runs() {
    let cpp = blocks("cpp");
    assert!(!cpp.is_empty());
    for (i, block) in cpp.iter().enumerate() {
        let (includes, body): (Vec<&str>, Vec<&str>) =
            block.lines().partition(|l| l.starts_with("#include"));
        let source = format!(
            "#include <cstdio>\n{}\nint main() {{\n{}\nreturn 0;\n}}\n",
            includes.join("\n"),
            body.join("\n")
        );
        let src = build_dir().join(format!("readme_cpp_{i}.cpp"));
        let bin = build_dir().join(format!("readme_cpp_{i}"));
        std::fs::write(&src, source).expect("write");
        compile(
            "c++",
            &["-std=c++17", "-Wall", "-Wextra", "-Werror"],
            &src,
            &bin,
        );
        run(&mut Command::new(&bin), &format!("README C++ block {i}"));
    }
}

#[test]
fn every_python_block_runs() {
    let py = blocks("python");
    assert!(!py.is_empty());
    for (i, block) in py.iter().enumerate() {
        let src = build_dir().join(format!("readme_py_{i}.py"));
        std::fs::write(&src, block).expect("write");
        let emu = Emulator::start();
        let out = Command::new("python3")
            .arg(&src)
            .env("PYTHONPATH", repo().join("python"))
            .env("PAN_OFFLINE_LIB", lib_dir().join("libpan_offline.so"))
            .env("PAN_API_BASE_URL", &emu.url)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "README Python block {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_block_has_a_language_that_a_test_runs() {
    // C, C++ and Python blocks are run above; shell, Go, JavaScript and CMake blocks by
    // .ci/readme.sh (after CI installed their tools); a block without a language is output.
    let text = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let mut open = false;
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for line in text.lines() {
        if let Some(lang) = line.strip_prefix("```") {
            if !open {
                *seen.entry(lang.to_owned()).or_default() += 1;
            }
            open = !open;
        }
    }
    assert!(!open, "an unclosed fence");
    for lang in seen.keys() {
        assert!(
            ["", "c", "cpp", "python", "sh", "go", "js", "cmake"].contains(&lang.as_str()),
            "README has a ```{lang} block that no test compiles or runs"
        );
    }
    for lang in ["c", "cpp", "python", "sh", "go", "js", "cmake"] {
        assert!(seen.contains_key(lang), "no ```{lang} block: {seen:?}");
    }
    let ci = std::fs::read_to_string(repo().join(".ci/run")).expect(".ci/run");
    assert!(
        ci.contains("bash .ci/readme.sh"),
        ".ci/run runs the other blocks"
    );
}
