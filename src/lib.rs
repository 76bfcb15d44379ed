//! elhaz: a local AWS temporary-credential broker with shell integration.

pub mod broker;
pub mod child;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod credentials;
pub mod daemon;
pub mod duration;
pub mod endpoint;
pub mod env;
pub mod error;
pub mod logging;
pub mod spinner;
pub mod sys;
