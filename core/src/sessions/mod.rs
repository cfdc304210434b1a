//! Session Manager's channel: interactive shells and port forwarding over
//! per-session SQS queues, one per direction.
//!
//! - [`frames`]: the frame and batch formats and their HMAC-SHA256 under the
//!   per-session key.
//! - [`stream`]: the reliable stream of one direction: sequence numbers,
//!   acks, resends, in-order exactly-once delivery, and refusal of what is
//!   forged, replayed, reflected or another session's.
//! - [`flow`]: forwarded connections multiplexed by stream id, with credit.
//!
//! All of it is sans-IO: the client and the agent drive these state machines
//! with the bodies they receive and the time they read.

pub mod flow;
pub mod frames;
pub mod stream;

#[cfg(test)]
mod tests;

pub use flow::{FlowError, Streams};
pub use frames::{Body, Direction, Frame, FrameError, SessionKey};
pub use stream::{Receiver, ReceiverConfig, Sender, SenderConfig, StreamError};
