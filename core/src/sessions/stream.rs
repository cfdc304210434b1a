//! The reliable, authenticated stream of one direction of a session, as
//! state machines the client and the agent drive (no I/O, no clock: the
//! caller passes `now` in milliseconds since any origin of its choosing).
//!
//! A driver per endpoint holds a [`Sender`] for its direction and a
//! [`Receiver`] for the other one. On every batch received it passes
//! `receiver.peer_ack()` to `sender.on_ack`; when it sends, it passes
//! `receiver.ack()` so every frame carries the current ack, and sends an
//! ack-only frame when `receiver.ack_due()` and no other frame went out.

use std::collections::{BTreeMap, VecDeque};

use super::frames::{
    BatchBuilder, Body, Direction, Frame, FrameError, SessionKey, decode_batch, decode_frame_for,
    encode_frame,
};

/// Why the stream refused to send or receive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the send window is full: wait for acknowledgements")]
    WindowFull,
    #[error("an Ack frame is not sent through the sequenced stream")]
    AckNotSequenced,
    #[error("the peer acknowledged seq {ack}, beyond the last sent ({last})")]
    AckBeyondSent { ack: u64, last: u64 },
    #[error("seq {seq} is too far ahead of the next expected ({next})")]
    TooFarAhead { seq: u64, next: u64 },
    #[error("the reorder buffer is full")]
    BufferFull,
    #[error("sequence numbers exhausted")]
    SeqExhausted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderConfig {
    /// Bytes of encoded frames sent and not yet acknowledged beyond which
    /// [`Sender::can_send`] is false (back-pressure).
    pub max_unacked_bytes: usize,
    /// A frame sent this long ago without an ack is sent again.
    pub resend_after_ms: u64,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            max_unacked_bytes: 256 * 1024,
            resend_after_ms: 3_000,
        }
    }
}

#[derive(Debug)]
struct Pending {
    seq: u64,
    body: Body,
    /// Encoded size (independent of the ack, a fixed-width field).
    size: usize,
    /// When last sent; None: not yet sent.
    sent_at: Option<u64>,
}

/// The sending half: assigns sequence numbers, keeps every frame until the
/// peer acknowledges it, and says what to (re)send.
#[derive(Debug)]
pub struct Sender {
    session_id: String,
    direction: Direction,
    key: SessionKey,
    config: SenderConfig,
    next_seq: u64,
    unacked: VecDeque<Pending>,
    unacked_bytes: usize,
    acked: u64,
}

impl Sender {
    pub fn new(
        session_id: impl Into<String>,
        direction: Direction,
        key: SessionKey,
        config: SenderConfig,
    ) -> Self {
        Self {
            session_id: session_id.into(),
            direction,
            key,
            config,
            next_seq: 1,
            unacked: VecDeque::new(),
            unacked_bytes: 0,
            acked: 0,
        }
    }

    /// Whether another frame may be queued. The window may be overshot by
    /// the last frame queued, so a frame larger than the window still goes.
    pub fn can_send(&self) -> bool {
        self.unacked_bytes < self.config.max_unacked_bytes
    }

    /// Bytes left in the window.
    pub fn window(&self) -> usize {
        self.config
            .max_unacked_bytes
            .saturating_sub(self.unacked_bytes)
    }

    /// Bytes queued or in flight and not yet acknowledged.
    pub fn unacked_bytes(&self) -> usize {
        self.unacked_bytes
    }

    /// Frames queued or in flight and not yet acknowledged.
    pub fn unacked_frames(&self) -> usize {
        self.unacked.len()
    }

    /// Highest seq the peer acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    fn frame(&self, seq: u64, ack: u64, body: Body) -> Frame {
        Frame {
            session_id: self.session_id.clone(),
            direction: self.direction,
            seq,
            ack,
            body,
        }
    }

    /// Queues a frame and returns its seq. Refuses an `Ack` (use
    /// [`Sender::ack_batch`]), an invalid body (the encoder's limits), and
    /// any frame while [`Sender::can_send`] is false.
    pub fn push(&mut self, body: Body) -> Result<u64, StreamError> {
        if !body.is_sequenced() {
            return Err(StreamError::AckNotSequenced);
        }
        if !self.can_send() {
            return Err(StreamError::WindowFull);
        }
        let seq = self.next_seq;
        let next = seq.checked_add(1).ok_or(StreamError::SeqExhausted)?;
        // Encoding checks the limits now rather than when it is due.
        let frame = self.frame(seq, 0, body);
        let size = encode_frame(&frame, &self.key)?.len();
        self.next_seq = next;
        self.unacked_bytes += size;
        self.unacked.push_back(Pending {
            seq,
            body: frame.body,
            size,
            sent_at: None,
        });
        Ok(seq)
    }

    /// Releases every frame up to `ack`. An older ack changes nothing; an
    /// ack of a frame never sent is a protocol error.
    pub fn on_ack(&mut self, ack: u64) -> Result<(), StreamError> {
        let last = self.next_seq - 1;
        if ack > last {
            return Err(StreamError::AckBeyondSent { ack, last });
        }
        if ack <= self.acked {
            return Ok(());
        }
        self.acked = ack;
        while let Some(p) = self.unacked.front() {
            if p.seq > ack {
                break;
            }
            self.unacked_bytes -= p.size;
            self.unacked.pop_front();
        }
        Ok(())
    }

    fn is_due(&self, p: &Pending, now: u64) -> bool {
        match p.sent_at {
            None => true,
            Some(t) => now.saturating_sub(t) >= self.config.resend_after_ms,
        }
    }

    /// Whether any frame is due now (never sent, or unacknowledged for the
    /// resend delay).
    pub fn has_due(&self, now: u64) -> bool {
        self.unacked.iter().any(|p| self.is_due(p, now))
    }

    /// When the earliest frame in flight falls due for resending (`None`:
    /// nothing in flight). A frame never sent is due at once: see
    /// [`Sender::has_due`].
    pub fn next_resend_at(&self) -> Option<u64> {
        self.unacked
            .iter()
            .filter_map(|p| p.sent_at)
            .min()
            .map(|t| t.saturating_add(self.config.resend_after_ms))
    }

    /// The next message body: the frames due now, in seq order, as many as
    /// fit one batch, each carrying `ack`. Marks them sent at `now`. Call
    /// until it returns `None`.
    pub fn poll_batch(&mut self, now: u64, ack: u64) -> Result<Option<String>, StreamError> {
        let mut batch = BatchBuilder::new();
        for i in 0..self.unacked.len() {
            let p = &self.unacked[i];
            if !self.is_due(p, now) {
                continue;
            }
            if !batch.fits(p.size) {
                break;
            }
            let raw = encode_frame(&self.frame(p.seq, ack, p.body.clone()), &self.key)?;
            batch.push(&raw)?;
            self.unacked[i].sent_at = Some(now);
        }
        if batch.is_empty() {
            return Ok(None);
        }
        Ok(Some(batch.finish()?))
    }

    /// A message body holding one ack-only frame.
    pub fn ack_batch(&self, ack: u64) -> Result<String, StreamError> {
        let raw = encode_frame(&self.frame(0, ack, Body::Ack), &self.key)?;
        let mut batch = BatchBuilder::new();
        batch.push(&raw)?;
        Ok(batch.finish()?)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// How far beyond the next expected seq a frame may be and still be
    /// buffered.
    pub max_ahead: u64,
    /// Encoded bytes the reorder buffer holds at most.
    pub max_buffered_bytes: usize,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            max_ahead: 4096,
            max_buffered_bytes: 1024 * 1024,
        }
    }
}

/// What one authentic frame did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Received {
    /// Frames now in order, to apply in this order (each exactly once over
    /// the session).
    pub delivered: Vec<Frame>,
    /// The frame had already been received (dropped; an ack is due).
    pub duplicate: bool,
}

/// What one message body did.
#[derive(Debug, Default)]
pub struct BatchReceived {
    /// Frames now in order, to apply in this order.
    pub delivered: Vec<Frame>,
    /// Frames of the batch refused, in batch order.
    pub refused: Vec<StreamError>,
    /// Duplicates dropped.
    pub duplicates: usize,
}

/// The receiving half: applies the peer's frames strictly in order, each
/// exactly once, and refuses what is not authentic, not this session's, or
/// not in this direction.
#[derive(Debug)]
pub struct Receiver {
    session_id: String,
    direction: Direction,
    key: SessionKey,
    config: ReceiverConfig,
    next: u64,
    buffer: BTreeMap<u64, (Frame, usize)>,
    buffered_bytes: usize,
    ack_due: bool,
    peer_ack: u64,
}

impl Receiver {
    /// `direction` is the direction of the frames this side receives.
    pub fn new(
        session_id: impl Into<String>,
        direction: Direction,
        key: SessionKey,
        config: ReceiverConfig,
    ) -> Self {
        Self {
            session_id: session_id.into(),
            direction,
            key,
            config,
            next: 1,
            buffer: BTreeMap::new(),
            buffered_bytes: 0,
            ack_due: false,
            peer_ack: 0,
        }
    }

    /// The ack to send: highest contiguous seq received.
    pub fn ack(&self) -> u64 {
        self.next - 1
    }

    /// Whether a sequenced frame arrived since the last ack went out.
    pub fn ack_due(&self) -> bool {
        self.ack_due
    }

    /// The caller sent a frame carrying [`Receiver::ack`].
    pub fn ack_sent(&mut self) {
        self.ack_due = false;
    }

    /// Highest ack the peer sent in an authentic frame: for `Sender::on_ack`.
    pub fn peer_ack(&self) -> u64 {
        self.peer_ack
    }

    /// Frames held until the gap before them fills.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Takes one encoded frame.
    pub fn receive(&mut self, raw: &[u8]) -> Result<Received, StreamError> {
        let frame = decode_frame_for(raw, &self.key, &self.session_id, self.direction)?;
        self.peer_ack = self.peer_ack.max(frame.ack);
        if !frame.body.is_sequenced() {
            // Ack-only: nothing to deliver and nothing to acknowledge.
            return Ok(Received::default());
        }
        let seq = frame.seq;
        if seq < self.next || self.buffer.contains_key(&seq) {
            self.ack_due = true;
            return Ok(Received {
                delivered: Vec::new(),
                duplicate: true,
            });
        }
        if seq > self.next {
            if seq - self.next > self.config.max_ahead {
                return Err(StreamError::TooFarAhead {
                    seq,
                    next: self.next,
                });
            }
            if self.buffered_bytes + raw.len() > self.config.max_buffered_bytes {
                return Err(StreamError::BufferFull);
            }
            self.buffered_bytes += raw.len();
            self.buffer.insert(seq, (frame, raw.len()));
            self.ack_due = true;
            return Ok(Received::default());
        }
        let mut delivered = vec![frame];
        self.next += 1;
        while let Some((frame, size)) = self.buffer.remove(&self.next) {
            self.buffered_bytes -= size;
            delivered.push(frame);
            self.next += 1;
        }
        self.ack_due = true;
        Ok(Received {
            delivered,
            duplicate: false,
        })
    }

    /// Takes one message body. A body that is not a batch is refused whole;
    /// otherwise each frame is taken on its own and the refused ones are
    /// reported.
    pub fn receive_batch(&mut self, body: &str) -> Result<BatchReceived, StreamError> {
        let frames = decode_batch(body)?;
        let mut out = BatchReceived::default();
        for raw in frames {
            match self.receive(&raw) {
                Ok(r) => {
                    out.delivered.extend(r.delivered);
                    out.duplicates += usize::from(r.duplicate);
                }
                Err(e) => out.refused.push(e),
            }
        }
        Ok(out)
    }
}
