//! Generates the C header with cbindgen and gives the shared library its
//! soname. The header is written to OUT_DIR and, inside the source tree, to
//! `include/sessionkeeper.h`, which is committed: `scripts/test-c.sh` fails
//! when a build changes it. cbindgen only rewrites a file whose content
//! changed, so a clean tree stays clean.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let version = env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets CARGO_PKG_VERSION_MAJOR");

    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");

    // The ABI is versioned by the soname, so programs linked against one
    // major version never load an incompatible one.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libsessionkeeper.so.{major}");
    }

    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("bindings/c/cbindgen.toml is readable");
    config.after_includes = config.after_includes.map(|s| s.replace("@VERSION@", &version));
    let bindings = match cbindgen::Builder::new().with_config(config).with_crate(&crate_dir).generate() {
        Ok(b) => b,
        Err(e) => panic!("cbindgen could not generate sessionkeeper.h: {e}"),
    };
    bindings.write_to_file(out_dir.join("sessionkeeper.h"));
    let include = crate_dir.join("../../include");
    if include.is_dir() {
        bindings.write_to_file(include.join("sessionkeeper.h"));
    }
}
