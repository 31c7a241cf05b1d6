//! Links the `ovsnet` command as a position-dependent executable.
//!
//! `ovsnet attach` is a short-lived command whose start-up is part of every
//! attach. As a PIE, the dynamic loader must apply about 28,000 relative
//! relocations at each start, copying some 130 pages of `.data.rel.ro`
//! (about 1.2 ms of a 2.9 ms `ovsnet --version`); linked at a fixed
//! address there are none (docs/BENCHMARKS.md, "Container attach: where a single attach's time goes"). Shared
//! libraries, heap and stack are still placed at random; only the
//! executable's own code and data are not. The library, tests and
//! benchmarks are unaffected.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
