//! Links the daemon's hot code together, in release builds on Linux.
//!
//! The kernel maps a program's code into a process 64 KiB at a time around each page the
//! process touches (fault-around), and the pages stay mapped, counted in its RSS. Where
//! the functions an idle daemon and its requests run lie spread over the 2 MB of code,
//! nearly all of it ends up resident; `hot-code.ld` lists them (by name, without the
//! parts that change between builds), and the linker places them first and side by side,
//! so they take a few hundred KiB. `scripts/hot-code` regenerates the list; a stale one
//! still links, it only keeps more code resident.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=hot-code.ld");
    let linux = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let release = env::var("PROFILE").as_deref() == Ok("release");
    if linux && release {
        let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        let script = Path::new(&dir).join("hot-code.ld");
        // The script only adds an output section before .text (INSERT): the linker's
        // default layout stays as it is. GNU ld and lld both read it.
        println!("cargo:rustc-link-arg-bin=velosd=-T");
        println!("cargo:rustc-link-arg-bin=velosd={}", script.display());
    }
}
