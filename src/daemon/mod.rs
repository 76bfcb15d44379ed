//! The per-user daemon: protocol (wire types), server (listener, peer check), cache
//! (LRU, single-flight, background refresh), lock (one daemon per socket), start
//! (spawning it) and client (the transport). Knows nothing of the terminal.

pub(crate) mod cache;
pub(crate) mod client;
pub(crate) mod lock;
pub mod protocol;
pub(crate) mod run;
pub(crate) mod server;
pub(crate) mod start;
