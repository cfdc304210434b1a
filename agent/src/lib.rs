//! steward-agent: registers a node, long-polls its queue, runs commands,
//! reports back. The binary (`main.rs`) is the command line over these parts.

pub mod api;
pub mod backoff;
pub mod config;
pub mod credentials;
pub mod daemon;
pub mod fsutil;
pub mod identity;
pub mod journal;
pub mod platform;
pub mod queue;
pub mod register;
pub mod runner;
pub mod secure_parameters;
pub mod shutdown;
pub mod spool;
