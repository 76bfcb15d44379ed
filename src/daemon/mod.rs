//! The per-user daemon: protocol (wire types), server (listener, peer check), cache
//! (LRU, single-flight, background refresh) and client (connect, auto-start, fallback).

pub mod cache;
pub mod client;
pub mod protocol;
pub mod server;
