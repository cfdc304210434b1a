//! One end of a session's channel: its [`Sender`] and [`Receiver`] driven
//! together, so that what one end receives acknowledges what it sent, and
//! what it sends carries its ack. The client and the agent each hold one and
//! move bodies between it and their two queues.

use super::frames::{Body, Direction, SessionKey};
use super::stream::{BatchReceived, Receiver, ReceiverConfig, Sender, SenderConfig, StreamError};

#[derive(Debug)]
pub struct Peer {
    sender: Sender,
    receiver: Receiver,
}

impl Peer {
    /// `local` is the direction of the frames this end sends.
    pub fn new(session_id: &str, local: Direction, key: SessionKey) -> Self {
        Self {
            sender: Sender::new(session_id, local, key.clone(), SenderConfig::default()),
            receiver: Receiver::new(session_id, local.reverse(), key, ReceiverConfig::default()),
        }
    }

    /// Whether more may be queued now (the peer has acknowledged enough).
    pub fn can_send(&self) -> bool {
        self.sender.can_send()
    }

    /// Queues a frame to send.
    pub fn push(&mut self, body: Body) -> Result<u64, StreamError> {
        self.sender.push(body)
    }

    /// Takes one message body from the inbound queue: the frames now in
    /// order, and those refused. The peer's acks release what was sent.
    pub fn receive(&mut self, body: &str) -> Result<BatchReceived, StreamError> {
        let received = self.receiver.receive_batch(body)?;
        self.sender.on_ack(self.receiver.peer_ack())?;
        Ok(received)
    }

    /// The message bodies to send now: every frame due (new or to resend),
    /// each carrying this end's ack, or one ack-only body when an ack is due
    /// and nothing else goes.
    pub fn outgoing(&mut self, now_ms: u64) -> Result<Vec<String>, StreamError> {
        let ack = self.receiver.ack();
        let mut bodies = Vec::new();
        while let Some(body) = self.sender.poll_batch(now_ms, ack)? {
            bodies.push(body);
        }
        if bodies.is_empty() && self.receiver.ack_due() {
            bodies.push(self.sender.ack_batch(ack)?);
        }
        if !bodies.is_empty() {
            self.receiver.ack_sent();
        }
        Ok(bodies)
    }

    /// Whether frames other than an ack are due now (new, or to resend).
    pub fn has_frames_due(&self, now_ms: u64) -> bool {
        self.sender.has_due(now_ms)
    }

    /// When something falls due for resending (`None`: nothing in flight).
    pub fn next_resend_at(&self) -> Option<u64> {
        self.sender.next_resend_at()
    }

    /// Whether the peer has acknowledged everything sent.
    pub fn all_acked(&self) -> bool {
        self.sender.unacked_frames() == 0
    }
}
