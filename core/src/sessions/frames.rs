//! Session frames: their byte layout, their MAC, and batches of them in one
//! SQS message body.
//!
//! The layout is written by hand rather than with a serialization crate: it
//! is ten fixed fields, the MAC is computed over the exact bytes, and the
//! format must be specified byte for byte (docs/internals.md, "Session
//! frames") so that any client can speak it. A crate's format would be one
//! more thing to pin and to describe. Integers are big-endian.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The frame format version this code writes and reads.
pub const VERSION: u8 = 1;
/// The batch format version.
pub const BATCH_VERSION: u8 = 1;
/// Length of the HMAC-SHA256 tag that ends every frame.
pub const MAC_LEN: usize = 32;
/// Length of a session key.
pub const KEY_LEN: usize = 32;
/// SSM's limit on a session id's length.
pub const MAX_SESSION_ID_LEN: usize = 96;
/// Largest `Data` or `StreamData` payload.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Largest `Close` reason, in bytes of UTF-8.
pub const MAX_REASON: usize = 1024;
/// SQS's limit on a message body.
pub const MAX_BODY: usize = 256 * 1024;
/// Largest batch before base64: 4 characters carry 3 bytes.
pub const MAX_BATCH_BYTES: usize = MAX_BODY / 4 * 3;
/// Most frames in one batch (the count is a u16).
pub const MAX_BATCH_FRAMES: usize = u16::MAX as usize;

/// Prefixed to every MAC input, so that these tags can never be confused
/// with any other use of an HMAC under the same key.
const MAC_LABEL: &[u8] = b"steward session frame\n";

/// Batch header: version (1) and frame count (2).
const BATCH_HEADER: usize = 3;
/// Each frame in a batch is preceded by its length.
const FRAME_LEN_PREFIX: usize = 4;

/// Who sent a frame. Part of the MAC input: a frame cannot be reflected back
/// to its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    ClientToAgent,
    AgentToClient,
}

impl Direction {
    fn code(self) -> u8 {
        match self {
            Direction::ClientToAgent => 1,
            Direction::AgentToClient => 2,
        }
    }
    fn from_code(c: u8) -> Result<Self, FrameError> {
        match c {
            1 => Ok(Direction::ClientToAgent),
            2 => Ok(Direction::AgentToClient),
            other => Err(FrameError::UnknownDirection(other)),
        }
    }
    /// The other direction.
    pub fn reverse(self) -> Self {
        match self {
            Direction::ClientToAgent => Direction::AgentToClient,
            Direction::AgentToClient => Direction::ClientToAgent,
        }
    }
}

/// What a frame carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Terminal bytes, either direction (Ctrl-C is data: the terminal is raw).
    Data(Vec<u8>),
    /// The client's terminal size changed.
    Resize { cols: u16, rows: u16 },
    /// A forwarded connection opened (its id follows the opener's parity).
    StreamOpen { stream: u32 },
    /// Bytes of a forwarded connection, within the credit the receiver gave.
    StreamData { stream: u32, data: Vec<u8> },
    /// The sender will send no more on this stream (half close).
    StreamClose { stream: u32 },
    /// The receiver may take `credit` more bytes on this stream.
    WindowUpdate { stream: u32, credit: u32 },
    /// Acknowledgement only: not sequenced (its seq is 0).
    Ack,
    /// The session ends.
    Close { reason: String },
}

impl Body {
    fn kind(&self) -> u8 {
        match self {
            Body::Data(_) => 1,
            Body::Resize { .. } => 2,
            Body::StreamOpen { .. } => 3,
            Body::StreamData { .. } => 4,
            Body::StreamClose { .. } => 5,
            Body::WindowUpdate { .. } => 6,
            Body::Ack => 7,
            Body::Close { .. } => 8,
        }
    }

    /// Whether the frame takes a sequence number (all but `Ack`).
    pub fn is_sequenced(&self) -> bool {
        !matches!(self, Body::Ack)
    }
}

/// One frame, as the receiver sees it once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub session_id: String,
    pub direction: Direction,
    /// Per direction, from 1; 0 on `Ack`.
    pub seq: u64,
    /// Highest contiguous seq received from the other side (0: none yet).
    pub ack: u64,
    pub body: Body,
}

/// Why a frame or batch was refused. No variant carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("unsupported session frame version {0}")]
    UnsupportedVersion(u8),
    #[error("unsupported session batch version {0}")]
    UnsupportedBatchVersion(u8),
    #[error("unknown session frame kind {0}")]
    UnknownKind(u8),
    #[error("unknown session frame direction {0}")]
    UnknownDirection(u8),
    #[error("session frame truncated")]
    Truncated,
    #[error("session frame malformed: {0}")]
    Malformed(&'static str),
    #[error("session id must be 1 to {MAX_SESSION_ID_LEN} bytes of UTF-8")]
    InvalidSessionId,
    #[error("payload of {len} bytes exceeds the limit of {max} bytes")]
    PayloadTooLarge { len: usize, max: usize },
    #[error("close reason of {len} bytes exceeds the limit of {MAX_REASON} bytes")]
    ReasonTooLarge { len: usize },
    #[error("session batch of {len} bytes exceeds the limit of {max} bytes")]
    BatchTooLarge { len: usize, max: usize },
    #[error("session batch is empty")]
    EmptyBatch,
    #[error("session batch is not base64")]
    NotBase64,
    #[error("session frame failed authentication")]
    BadMac,
    #[error("session frame belongs to another session")]
    WrongSession,
    #[error("session frame travels in the wrong direction")]
    WrongDirection,
    #[error("session key must be {KEY_LEN} bytes")]
    InvalidKey,
}

/// The per-session key (32 random bytes). Never printed.
#[derive(Clone)]
pub struct SessionKey {
    bytes: [u8; KEY_LEN],
    key: hmac::Key,
}

impl SessionKey {
    /// A new random key.
    pub fn generate() -> Result<Self, FrameError> {
        let mut bytes = [0u8; KEY_LEN];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| FrameError::InvalidKey)?;
        Ok(Self::from_bytes(bytes))
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &bytes);
        Self { bytes, key }
    }

    /// The key as carried in the signed start message and in StartSession's
    /// answer (standard base64).
    pub fn expose_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    pub fn from_base64(s: &str) -> Result<Self, FrameError> {
        let v = STANDARD.decode(s).map_err(|_| FrameError::InvalidKey)?;
        let bytes: [u8; KEY_LEN] = v.try_into().map_err(|_| FrameError::InvalidKey)?;
        Ok(Self::from_bytes(bytes))
    }

    fn tag(&self, signed: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(MAC_LABEL);
        ctx.update(signed);
        ctx.sign()
    }

    fn verify(&self, signed: &[u8], mac: &[u8]) -> Result<(), FrameError> {
        let mut input = Vec::with_capacity(MAC_LABEL.len() + signed.len());
        input.extend_from_slice(MAC_LABEL);
        input.extend_from_slice(signed);
        // Constant-time comparison.
        hmac::verify(&self.key, &input, mac).map_err(|_| FrameError::BadMac)
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(***)")
    }
}

fn check_session_id(id: &str) -> Result<(), FrameError> {
    if id.is_empty() || id.len() > MAX_SESSION_ID_LEN {
        return Err(FrameError::InvalidSessionId);
    }
    Ok(())
}

fn check_payload(len: usize) -> Result<(), FrameError> {
    if len > MAX_PAYLOAD {
        return Err(FrameError::PayloadTooLarge {
            len,
            max: MAX_PAYLOAD,
        });
    }
    Ok(())
}

/// Encodes and authenticates one frame. Refuses what decoding would refuse:
/// an invalid session id, an oversize payload or reason, a sequenced frame
/// with seq 0, an `Ack` with a seq.
pub fn encode_frame(frame: &Frame, key: &SessionKey) -> Result<Vec<u8>, FrameError> {
    check_session_id(&frame.session_id)?;
    if frame.body.is_sequenced() == (frame.seq == 0) {
        return Err(FrameError::Malformed(
            "seq must be 0 on Ack and at least 1 otherwise",
        ));
    }
    let mut out = Vec::with_capacity(64);
    out.push(VERSION);
    out.push(frame.body.kind());
    out.push(frame.direction.code());
    // Length checked above: at most 96.
    out.push(frame.session_id.len() as u8);
    out.extend_from_slice(frame.session_id.as_bytes());
    out.extend_from_slice(&frame.seq.to_be_bytes());
    out.extend_from_slice(&frame.ack.to_be_bytes());
    match &frame.body {
        Body::Data(data) => {
            check_payload(data.len())?;
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            out.extend_from_slice(data);
        }
        Body::Resize { cols, rows } => {
            out.extend_from_slice(&cols.to_be_bytes());
            out.extend_from_slice(&rows.to_be_bytes());
        }
        Body::StreamOpen { stream } | Body::StreamClose { stream } => {
            out.extend_from_slice(&stream.to_be_bytes());
        }
        Body::StreamData { stream, data } => {
            check_payload(data.len())?;
            out.extend_from_slice(&stream.to_be_bytes());
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            out.extend_from_slice(data);
        }
        Body::WindowUpdate { stream, credit } => {
            out.extend_from_slice(&stream.to_be_bytes());
            out.extend_from_slice(&credit.to_be_bytes());
        }
        Body::Ack => {}
        Body::Close { reason } => {
            if reason.len() > MAX_REASON {
                return Err(FrameError::ReasonTooLarge { len: reason.len() });
            }
            out.extend_from_slice(&(reason.len() as u16).to_be_bytes());
            out.extend_from_slice(reason.as_bytes());
        }
    }
    let tag = key.tag(&out);
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Decodes one frame: the version first, then the MAC over everything
/// before it, and only then the fields. Checks no session id or direction:
/// see [`decode_frame_for`].
pub fn decode_frame(raw: &[u8], key: &SessionKey) -> Result<Frame, FrameError> {
    let Some(&version) = raw.first() else {
        return Err(FrameError::Truncated);
    };
    if version != VERSION {
        return Err(FrameError::UnsupportedVersion(version));
    }
    let Some(split) = raw.len().checked_sub(MAC_LEN) else {
        return Err(FrameError::Truncated);
    };
    let (signed, mac) = raw.split_at(split);
    key.verify(signed, mac)?;
    parse_signed(signed)
}

/// Decodes one frame and checks that it belongs to this session and travels
/// in the expected direction.
pub fn decode_frame_for(
    raw: &[u8],
    key: &SessionKey,
    session_id: &str,
    direction: Direction,
) -> Result<Frame, FrameError> {
    let frame = decode_frame(raw, key)?;
    if frame.session_id != session_id {
        return Err(FrameError::WrongSession);
    }
    if frame.direction != direction {
        return Err(FrameError::WrongDirection);
    }
    Ok(frame)
}

/// A cursor over bytes whose reads fail, never panic, past the end.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.rest.len() < n {
            return Err(FrameError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, FrameError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, FrameError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, FrameError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn payload(&mut self) -> Result<Vec<u8>, FrameError> {
        let len = self.u32()? as usize;
        check_payload(len)?;
        Ok(self.take(len)?.to_vec())
    }
}

/// Parses the fields of a frame without its MAC (already verified).
fn parse_signed(signed: &[u8]) -> Result<Frame, FrameError> {
    let mut r = Reader { rest: signed };
    let version = r.u8()?;
    if version != VERSION {
        return Err(FrameError::UnsupportedVersion(version));
    }
    let kind = r.u8()?;
    let direction = Direction::from_code(r.u8()?)?;
    let id_len = r.u8()? as usize;
    if id_len == 0 || id_len > MAX_SESSION_ID_LEN {
        return Err(FrameError::InvalidSessionId);
    }
    let session_id = std::str::from_utf8(r.take(id_len)?)
        .map_err(|_| FrameError::InvalidSessionId)?
        .to_owned();
    let seq = r.u64()?;
    let ack = r.u64()?;
    let body = match kind {
        1 => Body::Data(r.payload()?),
        2 => Body::Resize {
            cols: r.u16()?,
            rows: r.u16()?,
        },
        3 => Body::StreamOpen { stream: r.u32()? },
        4 => Body::StreamData {
            stream: r.u32()?,
            data: r.payload()?,
        },
        5 => Body::StreamClose { stream: r.u32()? },
        6 => Body::WindowUpdate {
            stream: r.u32()?,
            credit: r.u32()?,
        },
        7 => Body::Ack,
        8 => {
            let len = r.u16()? as usize;
            if len > MAX_REASON {
                return Err(FrameError::ReasonTooLarge { len });
            }
            let reason = std::str::from_utf8(r.take(len)?)
                .map_err(|_| FrameError::Malformed("close reason is not UTF-8"))?
                .to_owned();
            Body::Close { reason }
        }
        other => return Err(FrameError::UnknownKind(other)),
    };
    if !r.rest.is_empty() {
        return Err(FrameError::Malformed("trailing bytes after the frame body"));
    }
    if body.is_sequenced() == (seq == 0) {
        return Err(FrameError::Malformed(
            "seq must be 0 on Ack and at least 1 otherwise",
        ));
    }
    Ok(Frame {
        session_id,
        direction,
        seq,
        ack,
        body,
    })
}

/// Frames gathered for one SQS message, within its size limit.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    buf: Vec<u8>,
    count: usize,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.push(BATCH_VERSION);
        buf.extend_from_slice(&[0, 0]);
        Self { buf, count: 0 }
    }

    /// Whether a frame of `len` encoded bytes still fits.
    pub fn fits(&self, len: usize) -> bool {
        self.count < MAX_BATCH_FRAMES && self.buf.len() + FRAME_LEN_PREFIX + len <= MAX_BATCH_BYTES
    }

    /// Adds an encoded frame; refuses one that does not fit.
    pub fn push(&mut self, frame: &[u8]) -> Result<(), FrameError> {
        if !self.fits(frame.len()) {
            return Err(FrameError::BatchTooLarge {
                len: self.buf.len() + FRAME_LEN_PREFIX + frame.len(),
                max: MAX_BATCH_BYTES,
            });
        }
        self.buf
            .extend_from_slice(&(frame.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(frame);
        self.count += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The message body: the batch in standard base64 (SQS bodies must be
    /// XML-safe text). Refuses an empty batch.
    pub fn finish(mut self) -> Result<String, FrameError> {
        if self.count == 0 {
            return Err(FrameError::EmptyBatch);
        }
        // count <= u16::MAX (checked in fits).
        let count = (self.count as u16).to_be_bytes();
        self.buf[1] = count[0];
        self.buf[2] = count[1];
        Ok(STANDARD.encode(&self.buf))
    }
}

/// Encodes frames already encoded by [`encode_frame`] into one message body.
pub fn encode_batch<T: AsRef<[u8]>>(frames: &[T]) -> Result<String, FrameError> {
    let mut b = BatchBuilder::new();
    for f in frames {
        b.push(f.as_ref())?;
    }
    b.finish()
}

/// Splits a message body into its frames, still undecoded: each is then
/// authenticated on its own, so one bad frame does not discard the others.
/// Refuses a body over SQS's limit before decoding it.
pub fn decode_batch(body: &str) -> Result<Vec<Vec<u8>>, FrameError> {
    if body.len() > MAX_BODY {
        return Err(FrameError::BatchTooLarge {
            len: body.len(),
            max: MAX_BODY,
        });
    }
    let raw = STANDARD
        .decode(body.as_bytes())
        .map_err(|_| FrameError::NotBase64)?;
    if raw.len() > MAX_BATCH_BYTES {
        return Err(FrameError::BatchTooLarge {
            len: raw.len(),
            max: MAX_BATCH_BYTES,
        });
    }
    let mut r = Reader { rest: &raw };
    let version = r.u8()?;
    if version != BATCH_VERSION {
        return Err(FrameError::UnsupportedBatchVersion(version));
    }
    let count = r.u16()? as usize;
    if count == 0 {
        return Err(FrameError::EmptyBatch);
    }
    let mut frames = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let len = r.u32()? as usize;
        frames.push(r.take(len)?.to_vec());
    }
    if !r.rest.is_empty() {
        return Err(FrameError::Malformed("trailing bytes after the last frame"));
    }
    Ok(frames)
}

/// The largest frame (StreamData with the longest session id and the
/// largest payload) fits a batch on its own.
const _: () = assert!(
    BATCH_HEADER + FRAME_LEN_PREFIX + 4 + MAX_SESSION_ID_LEN + 16 + 8 + MAX_PAYLOAD + MAC_LEN
        <= MAX_BATCH_BYTES
);

#[cfg(test)]
pub(crate) fn parse_unauthenticated(signed: &[u8]) -> Result<Frame, FrameError> {
    parse_signed(signed)
}
