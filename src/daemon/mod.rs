//! The per-user daemon: protocol (wire types), server (listener, peer check), cache
//! (LRU, single-flight, background refresh), lock (one daemon per socket), start
//! (spawning it) and client (the transport). Knows nothing of the terminal.

pub mod cache;
pub mod client;
pub mod lock;
pub mod protocol;
pub mod server;
pub mod start;
