//! Link-time settings for the binary only (dependencies are not rebuilt for them).

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os != "linux" || env != "gnu" {
        return;
    }
    // A position-independent executable, so the code of a process that holds
    // credentials is randomised too; its ~70,000 relative relocations are packed
    // (DT_RELR, glibc 2.36+, GNU ld 2.38+ or lld): the loader applies them from a
    // compact bitmap instead of 24-byte RELA entries. (-no-pie starts ~0.3 ms faster
    // and was measured; the address randomisation is worth more here.)
    if linker_accepts("-Wl,-z,pack-relative-relocs") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    // Identical code folding: monomorphised generics leave many byte-identical
    // functions; folding them takes 0.6 MB off the binary. Only lld (the default
    // linker of rustup's x86_64 Linux toolchains) has it, so ask the linker first.
    if linker_accepts("-Wl,--icf=all") {
        println!("cargo:rustc-link-arg-bins=-Wl,--icf=all");
    }
    // Unwinding tables (.eh_frame, 1.1 MB) serve only unwinding and backtraces. The
    // release binary unwinds nothing (panic = "abort", and main.rs's panic hook exits
    // the process before that anyway), and being stripped its backtraces have no
    // names to show: the linker drops them there. Debug builds keep their backtraces.
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    if release && let Some(script) = no_unwind_tables_script() {
        let arg = format!("-Wl,-T,{}", script.display());
        if linker_accepts(&arg) {
            println!("cargo:rustc-link-arg-bins={arg}");
        }
    }
}

/// A linker script that only discards the unwinding tables (INSERT keeps the default
/// layout for everything else).
fn no_unwind_tables_script() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os("OUT_DIR")?).join("no-unwind-tables.ld");
    let script =
        "SECTIONS {\n  /DISCARD/ : { *(.eh_frame) *(.eh_frame_hdr) }\n}\nINSERT AFTER .text;\n";
    std::fs::write(&path, script).ok()?;
    Some(path)
}

/// Whether rustc, with the flags this build uses, links a trivial program when given
/// `arg`.
fn linker_accepts(arg: &str) -> bool {
    let (Some(rustc), Some(out), Some(target)) = (
        std::env::var_os("RUSTC"),
        std::env::var_os("OUT_DIR").map(PathBuf::from),
        std::env::var_os("TARGET"),
    ) else {
        return false;
    };
    let src = out.join("probe.rs");
    if std::fs::write(&src, "fn main() {}\n").is_err() {
        return false;
    }
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    Command::new(rustc)
        .args(flags.split('\x1f').filter(|f| !f.is_empty()))
        .arg("--target")
        .arg(target)
        .args(["-C", &format!("link-arg={arg}"), "-o"])
        .arg(out.join("probe"))
        .arg(&src)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
