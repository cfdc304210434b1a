//! Forwarded connections (port forwarding): many TCP connections share one
//! session, each a stream id, each direction within the credit its receiver
//! gave. The stream state machine sees frames after the [`Receiver`] put
//! them in order, so its accounting is the same on both sides.
//!
//! [`Receiver`]: super::stream::Receiver

use std::collections::BTreeMap;

use super::frames::{Body, Direction, MAX_PAYLOAD};

/// Credit each side has on a new stream before any `WindowUpdate`.
pub const INITIAL_STREAM_CREDIT: u32 = 256 * 1024;
/// Most credit outstanding on one stream in one direction.
pub const MAX_STREAM_WINDOW: u64 = 16 * 1024 * 1024;
/// Most streams open at once in a session.
pub const MAX_STREAMS: usize = 1024;

/// A peer broke the stream rules (or the caller tried to).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    #[error("stream {0} is not open")]
    UnknownStream(u32),
    #[error("stream id {0} is not the opener's to use or was used before")]
    BadStreamId(u32),
    #[error("too many streams open (limit {MAX_STREAMS})")]
    TooManyStreams,
    #[error("{len} bytes on stream {stream} exceed its credit of {credit}")]
    CreditExceeded {
        stream: u32,
        len: usize,
        credit: u64,
    },
    #[error("data on stream {0} after its close")]
    DataAfterClose(u32),
    #[error("stream {0} closed twice")]
    DoubleClose(u32),
    #[error("credit on stream {0} would exceed the window limit")]
    WindowOverflow(u32),
    #[error("stream ids exhausted")]
    IdsExhausted,
    #[error("payload of {0} bytes is larger than a frame carries")]
    PayloadTooLarge(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct StreamState {
    /// Bytes we may still send.
    send_credit: u64,
    /// Bytes the peer may still send.
    recv_credit: u64,
    local_closed: bool,
    peer_closed: bool,
}

impl StreamState {
    fn new() -> Self {
        Self {
            send_credit: u64::from(INITIAL_STREAM_CREDIT),
            recv_credit: u64::from(INITIAL_STREAM_CREDIT),
            local_closed: false,
            peer_closed: false,
        }
    }
}

/// The streams of one endpoint. The client opens odd ids (1, 3, 5, …), the
/// agent even ones (2, 4, …), each side in order, so the two never collide
/// and no id is reused.
#[derive(Debug)]
pub struct Streams {
    /// Direction of the frames this side sends.
    local: Direction,
    streams: BTreeMap<u32, StreamState>,
    last_local: u32,
    last_peer: u32,
}

fn parity(d: Direction) -> u32 {
    match d {
        Direction::ClientToAgent => 1,
        Direction::AgentToClient => 0,
    }
}

impl Streams {
    /// `local` is the direction of the frames this side sends.
    pub fn new(local: Direction) -> Self {
        Self {
            local,
            streams: BTreeMap::new(),
            last_local: 0,
            last_peer: 0,
        }
    }

    pub fn open_count(&self) -> usize {
        self.streams.len()
    }

    /// Bytes we may send now on `stream`.
    pub fn send_credit(&self, stream: u32) -> Option<u64> {
        self.streams.get(&stream).map(|s| s.send_credit)
    }

    /// Opens a stream: the body to send.
    pub fn open(&mut self) -> Result<(u32, Body), FlowError> {
        if self.streams.len() >= MAX_STREAMS {
            return Err(FlowError::TooManyStreams);
        }
        let id = if self.last_local == 0 {
            2 - parity(self.local)
        } else {
            self.last_local
                .checked_add(2)
                .ok_or(FlowError::IdsExhausted)?
        };
        self.last_local = id;
        self.streams.insert(id, StreamState::new());
        Ok((id, Body::StreamOpen { stream: id }))
    }

    /// Data to send on `stream`, within its credit.
    pub fn send_data(&mut self, stream: u32, data: Vec<u8>) -> Result<Body, FlowError> {
        if data.len() > MAX_PAYLOAD {
            return Err(FlowError::PayloadTooLarge(data.len()));
        }
        let s = self
            .streams
            .get_mut(&stream)
            .ok_or(FlowError::UnknownStream(stream))?;
        if s.local_closed {
            return Err(FlowError::DataAfterClose(stream));
        }
        let len = data.len() as u64;
        if len > s.send_credit {
            return Err(FlowError::CreditExceeded {
                stream,
                len: data.len(),
                credit: s.send_credit,
            });
        }
        s.send_credit -= len;
        Ok(Body::StreamData { stream, data })
    }

    /// The application took `credit` bytes of `stream`: the peer may send
    /// that many more.
    pub fn grant(&mut self, stream: u32, credit: u32) -> Result<Body, FlowError> {
        let s = self
            .streams
            .get_mut(&stream)
            .ok_or(FlowError::UnknownStream(stream))?;
        let total = s.recv_credit + u64::from(credit);
        if total > MAX_STREAM_WINDOW {
            return Err(FlowError::WindowOverflow(stream));
        }
        s.recv_credit = total;
        Ok(Body::WindowUpdate { stream, credit })
    }

    /// We send no more on `stream`.
    pub fn close(&mut self, stream: u32) -> Result<Body, FlowError> {
        let s = self
            .streams
            .get_mut(&stream)
            .ok_or(FlowError::UnknownStream(stream))?;
        if s.local_closed {
            return Err(FlowError::DoubleClose(stream));
        }
        s.local_closed = true;
        if s.peer_closed {
            self.streams.remove(&stream);
        }
        Ok(Body::StreamClose { stream })
    }

    fn peer_opened(&self, stream: u32) -> bool {
        stream % 2 == parity(self.local.reverse()) && stream != 0 && stream <= self.last_peer
    }

    fn local_opened(&self, stream: u32) -> bool {
        stream % 2 == parity(self.local) && stream != 0 && stream <= self.last_local
    }

    /// Applies a frame the peer sent, in order. Frames that are not about
    /// streams pass. An error is a protocol error: the session should end.
    pub fn on_receive(&mut self, body: &Body) -> Result<(), FlowError> {
        match body {
            Body::StreamOpen { stream } => {
                let stream = *stream;
                // Ids come in order, so the streams ever opened are exactly
                // those up to the last one.
                let expected = if self.last_peer == 0 {
                    2 - parity(self.local.reverse())
                } else {
                    self.last_peer.saturating_add(2)
                };
                if stream != expected {
                    return Err(FlowError::BadStreamId(stream));
                }
                if self.streams.len() >= MAX_STREAMS {
                    return Err(FlowError::TooManyStreams);
                }
                self.last_peer = stream;
                self.streams.insert(stream, StreamState::new());
                Ok(())
            }
            Body::StreamData { stream, data } => {
                let stream = *stream;
                let Some(s) = self.streams.get_mut(&stream) else {
                    // A stream forgotten after both closes: the peer had closed.
                    if self.peer_opened(stream) || self.local_opened(stream) {
                        return Err(FlowError::DataAfterClose(stream));
                    }
                    return Err(FlowError::UnknownStream(stream));
                };
                if s.peer_closed {
                    return Err(FlowError::DataAfterClose(stream));
                }
                let len = data.len() as u64;
                if len > s.recv_credit {
                    return Err(FlowError::CreditExceeded {
                        stream,
                        len: data.len(),
                        credit: s.recv_credit,
                    });
                }
                s.recv_credit -= len;
                Ok(())
            }
            Body::StreamClose { stream } => {
                let stream = *stream;
                let Some(s) = self.streams.get_mut(&stream) else {
                    if self.peer_opened(stream) || self.local_opened(stream) {
                        return Err(FlowError::DoubleClose(stream));
                    }
                    return Err(FlowError::UnknownStream(stream));
                };
                if s.peer_closed {
                    return Err(FlowError::DoubleClose(stream));
                }
                s.peer_closed = true;
                if s.local_closed {
                    self.streams.remove(&stream);
                }
                Ok(())
            }
            Body::WindowUpdate { stream, credit } => {
                let stream = *stream;
                let Some(s) = self.streams.get_mut(&stream) else {
                    // Credit for a stream already gone crossed our close.
                    if self.peer_opened(stream) || self.local_opened(stream) {
                        return Ok(());
                    }
                    return Err(FlowError::UnknownStream(stream));
                };
                let total = s.send_credit + u64::from(*credit);
                if total > MAX_STREAM_WINDOW {
                    return Err(FlowError::WindowOverflow(stream));
                }
                s.send_credit = total;
                Ok(())
            }
            Body::Data(_) | Body::Resize { .. } | Body::Ack | Body::Close { .. } => Ok(()),
        }
    }
}
