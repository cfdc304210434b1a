//! The local runner's parts: the api function behind an HTTP server, a
//! poller per queue and one per table stream standing in for Lambda's event
//! source mappings.

pub mod api;
pub mod function_url;
pub mod poller;
pub mod streams;
