//! elhaz: a local AWS temporary-credential broker with shell integration. The library
//! is the whole program; `main.rs` only parses the command line and sets up the
//! process. The layers, from the bottom: terminal, error, sensitive, fsutil,
//! duration and times, sys, logging; context (the caller's sources); config; sso;
//! credentials; daemon and endpoint; env, launch and the shells; broker; cli; cmd. A
//! module must import only from layers below it.
#![warn(unreachable_pub)]
#![warn(clippy::too_many_lines)]

pub(crate) mod broker;
pub(crate) mod browser;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod context;
pub mod credentials;
pub mod daemon;
pub mod duration;
pub(crate) mod endpoint;
pub mod env;
pub mod error;
mod fsutil;
pub(crate) mod launch;
pub mod logging;
mod loopback;
mod sensitive;
pub mod shell;
pub mod sso;
pub(crate) mod sys;
pub mod terminal;
pub(crate) mod times;

/// Makes this process non-dumpable (no ptrace, no `/proc/PID/{mem,environ}` for other
/// processes of the user, no core file; see [`sys`]). Unlike a core size limit, it
/// does not pass on to a command elhaz execs. A failure is ignored here (the daemon
/// checks its own and says so).
pub fn harden_process() {
    let _ = sys::set_not_dumpable();
}
