//! Link-time settings for the binary only (dependencies are not rebuilt for them).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    // Packed relative relocations (DT_RELR, glibc 2.36+, GNU ld 2.38+ or lld): the
    // dynamic loader applies the PIE's ~40,000 relative relocations from a compact
    // bitmap instead of 24-byte RELA entries at every start.
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
