//! The local runner's parts: the api function behind an HTTP server and a
//! poller per queue standing in for Lambda's event source mappings.

pub mod api;
pub mod function_url;
pub mod poller;
