//! The integration suite, one test binary: each module covers one capability and drives
//! the elhaz binary as a user would, against real peers where they exist (bash, zsh and
//! fish under a pty, moto as STS, the aws CLI and boto3 as consumers) and a fake STS on
//! wiremock where a test needs faults or call counts. `support` is the shared harness.
//!
//! Run one capability with `cargo test --test it MODULE::`, e.g. `cargo test --test it
//! shell::`.

#[path = "../support/mod.rs"]
mod support;

mod abuse;
mod completions;
mod config;
mod daemon;
mod eks;
mod engine;
mod errors;
mod exec;
mod fuzz_corpus;
mod harness;
mod hygiene;
mod identity;
mod login;
mod pins;
mod quoting;
mod readme;
mod real_configs;
mod remote;
mod saml;
mod server;
mod share;
mod shell;
mod sso;
mod sso_portal;
mod sso_scale;
mod untrusted;
