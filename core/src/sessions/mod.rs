//! Session Manager's channel: interactive shells and port forwarding over
//! per-session SQS queues, one per direction.
//!
//! - [`frames`]: the frame and batch formats and their HMAC-SHA256 under the
//!   per-session key.
//! - [`stream`]: the reliable stream of one direction: sequence numbers,
//!   acks, resends, in-order exactly-once delivery, and refusal of what is
//!   forged, replayed, reflected or another session's.
//! - [`flow`]: forwarded connections multiplexed by stream id, with credit.
//! - [`peer`]: one end's sender and receiver driven together.
//! - [`token`]: the client's token (key and queue credentials).
//!
//! All of it is sans-IO: the client and the agent drive these state machines
//! with the bodies they receive and the time they read.

pub mod context;
pub mod documents;
pub mod events;
pub mod flow;
pub mod frames;
pub mod ingest;
pub mod memory;
pub mod model;
pub mod ops;
pub mod peer;
pub mod ports;
pub mod pump;
pub mod stream;
pub mod sweep;
pub mod token;

#[cfg(test)]
mod ops_tests;
#[cfg(test)]
mod tests;

pub use context::SessionContext;
pub use flow::{FlowError, Streams};
pub use frames::{Body, Direction, Frame, FrameError, SessionKey};
pub use peer::Peer;
pub use stream::{Receiver, ReceiverConfig, Sender, SenderConfig, StreamError};
pub use token::{QueueCredentials, SessionToken, TokenError};
