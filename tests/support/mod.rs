//! Test harness shared by the integration tests (and the benchmarks), one file per
//! concern: `env` (an isolated user and the binary), `sts` (a fake STS on wiremock),
//! `moto` (a real one), `eks` (a fake EKS API server, and kubectl), `pty` (an
//! interactive program under a terminal), `procs` (processes), `users` (other uids),
//! `text` (terminal and command output) and `gate` (which tests may run side by side).
//! Everything is re-exported here, so a test says `use crate::support::*`; `eks` is
//! used as `crate::support::eks::*`.
#![allow(dead_code)]

pub mod eks;
pub mod env;
pub mod gate;
pub mod moto;
pub mod procs;
pub mod pty;
pub mod sso;
pub mod sso_portal;
pub mod sts;
pub mod text;
pub mod users;
pub mod world;

// Each user of the harness takes what it needs.
#[allow(unused_imports)]
pub use env::*;
#[allow(unused_imports)]
pub use moto::*;
#[allow(unused_imports)]
pub use procs::*;
#[allow(unused_imports)]
pub use pty::*;
#[allow(unused_imports)]
pub use sso_portal::*;
#[allow(unused_imports)]
pub use sts::*;
#[allow(unused_imports)]
pub use text::*;
#[allow(unused_imports)]
pub use users::*;
