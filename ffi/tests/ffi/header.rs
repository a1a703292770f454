//! `include/mtasts.h`: exactly what cbindgen makes of `ffi/src`, declaring every exported
//! symbol, with version macros that match `ffi/Cargo.toml`, compiling cleanly as C and C++.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use crate::c::{cc, include_dir, lib_dir, out_dir, WARNINGS};

fn ffi_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn header() -> String {
    std::fs::read_to_string(include_dir().join("mtasts.h")).expect("read include/mtasts.h")
}

fn generate() -> String {
    let dir = ffi_dir();
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("read ffi/cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    String::from_utf8(out).expect("header is UTF-8")
}

#[test]
fn header_is_what_cbindgen_makes_of_the_sources() {
    let fresh = generate();
    if std::env::var_os("MTASTS_BLESS").is_some() {
        std::fs::write(include_dir().join("mtasts.h"), &fresh).expect("write include/mtasts.h");
        return;
    }
    assert!(
        header() == fresh,
        "include/mtasts.h is out of date with ffi/src: run `MTASTS_BLESS=1 cargo test -p mtasts --test ffi header` and commit the result"
    );
}

/// The `#[no_mangle]` functions of `ffi/src`.
fn exported_in_sources() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(ffi_dir().join("src")).expect("read ffi/src") {
        let text = std::fs::read_to_string(entry.expect("dir entry").path()).expect("read source");
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if line.trim() != "#[no_mangle]" {
                continue;
            }
            let signature = lines.next().expect("a function after #[no_mangle]");
            let name = signature
                .split("fn ")
                .nth(1)
                .and_then(|rest| rest.split('(').next())
                .unwrap_or_else(|| panic!("not a function after #[no_mangle]: {signature}"));
            names.insert(name.to_owned());
        }
    }
    names
}

#[test]
fn every_exported_function_is_declared_in_the_header_and_nothing_else_is_exported() {
    let sources = exported_in_sources();
    assert!(sources.len() >= 17, "{sources:?}");
    let header = header();
    for name in &sources {
        assert!(
            header.contains(&format!(" {name}(")) || header.contains(&format!("*{name}(")),
            "{name} is not in the header"
        );
        assert!(name.starts_with("mtasts_") || name.starts_with("mta_sts_"), "{name} lacks the prefix");
    }
    // The shared library exports exactly these names (mta-integration.md §1.2: bundled code
    // such as SQLite must not clash with Exim's own).
    let nm = Command::new("nm").args(["-D", "--defined-only"]).arg(lib_dir().join("libmtasts.so")).output();
    let Ok(nm) = nm else {
        eprintln!("skipped the symbol check: no nm");
        return;
    };
    let exported: BTreeSet<String> = String::from_utf8_lossy(&nm.stdout)
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (_, kind, name) = (parts.next()?, parts.next()?, parts.next()?);
            (kind == "T").then(|| name.to_owned())
        })
        .collect();
    assert_eq!(exported, sources);
}

#[test]
fn version_macros_match_cargo_toml() {
    let manifest = std::fs::read_to_string(ffi_dir().join("Cargo.toml")).expect("read ffi/Cargo.toml");
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("a version line in ffi/Cargo.toml");
    let parts: Vec<u32> = version.split('.').map(|p| p.parse().expect("numeric version")).collect();
    let [major, minor, patch] = parts[..] else { panic!("version {version} is not MAJOR.MINOR.PATCH") };
    let header = header();
    let define = |name: &str| {
        header
            .lines()
            .find_map(|l| l.strip_prefix(&format!("#define {name} ")))
            .unwrap_or_else(|| panic!("no {name} in the header"))
            .to_owned()
    };
    assert_eq!(define("MTASTS_VERSION"), format!("\"{version}\""));
    assert_eq!(define("MTASTS_VERSION_MAJOR"), major.to_string());
    assert_eq!(define("MTASTS_VERSION_MINOR"), minor.to_string());
    assert_eq!(define("MTASTS_VERSION_PATCH"), patch.to_string());
    assert_eq!(define("MTASTS_VERSION_NUMBER"), (major * 1_000_000 + minor * 1_000 + patch).to_string());
}

#[test]
fn header_compiles_cleanly_as_c99_c11_and_cpp() {
    let src = out_dir().join("header-only.c");
    std::fs::write(&src, "#include \"mtasts.h\"\n#include \"mtasts.h\"\nint main(void) { return 0; }\n")
        .expect("write");
    for std in ["-std=c99", "-std=c11"] {
        let status = Command::new(cc())
            .args(WARNINGS)
            .arg(std)
            .arg("-fsyntax-only")
            .arg("-I")
            .arg(include_dir())
            .arg(&src)
            .status()
            .expect("run the C compiler");
        assert!(status.success(), "the header does not compile cleanly with {std}");
    }
    let cxx = std::env::var_os("CXX").unwrap_or_else(|| "c++".into());
    match Command::new(&cxx)
        .args(["-std=c++11", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-fsyntax-only", "-x", "c++", "-I"])
        .arg(include_dir())
        .arg(&src)
        .status()
    {
        Ok(status) => assert!(status.success(), "the header does not compile cleanly as C++11"),
        Err(_) => eprintln!("skipped C++: no {cxx:?}"),
    }
}
