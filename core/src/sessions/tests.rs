use std::collections::VecDeque;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;

use super::flow::{FlowError, INITIAL_STREAM_CREDIT, MAX_STREAMS, Streams};
use super::frames::*;
use super::stream::*;

const SID: &str = "alice-0123456789abcdef0";
const C2A: Direction = Direction::ClientToAgent;
const A2C: Direction = Direction::AgentToClient;

fn key(n: u8) -> SessionKey {
    SessionKey::from_bytes([n; KEY_LEN])
}

fn frame(seq: u64, ack: u64, body: Body) -> Frame {
    Frame {
        session_id: SID.into(),
        direction: C2A,
        seq,
        ack,
        body,
    }
}

fn data(seq: u64, bytes: &[u8]) -> Frame {
    frame(seq, 0, Body::Data(bytes.to_vec()))
}

fn enc(f: &Frame) -> Vec<u8> {
    encode_frame(f, &key(1)).unwrap()
}

fn receiver() -> Receiver {
    Receiver::new(SID, C2A, key(1), ReceiverConfig::default())
}

fn delivered_seqs(r: &Received) -> Vec<u64> {
    r.delivered.iter().map(|f| f.seq).collect()
}

fn all_bodies() -> Vec<Body> {
    vec![
        Body::Data(b"ls -l\r".to_vec()),
        Body::Data(Vec::new()),
        Body::Resize {
            cols: 132,
            rows: 43,
        },
        Body::StreamOpen { stream: 1 },
        Body::StreamData {
            stream: 1,
            data: vec![0, 255, 7],
        },
        Body::StreamClose { stream: 1 },
        Body::WindowUpdate {
            stream: 3,
            credit: 65536,
        },
        Body::Close {
            reason: "exit 0".into(),
        },
    ]
}

#[test]
fn every_kind_roundtrips() {
    for (i, body) in all_bodies().into_iter().enumerate() {
        let f = frame(i as u64 + 1, 41, body);
        let raw = enc(&f);
        assert_eq!(decode_frame(&raw, &key(1)).unwrap(), f);
    }
    let ack = frame(0, 9, Body::Ack);
    assert_eq!(decode_frame(&enc(&ack), &key(1)).unwrap(), ack);
}

#[test]
fn layout_is_as_documented() {
    let f = Frame {
        session_id: "s-1".into(),
        direction: A2C,
        seq: 2,
        ack: 1,
        body: Body::Resize { cols: 80, rows: 24 },
    };
    let raw = encode_frame(&f, &key(1)).unwrap();
    let mut expected = vec![1, 2, 2, 3, b's', b'-', b'1'];
    expected.extend_from_slice(&2u64.to_be_bytes());
    expected.extend_from_slice(&1u64.to_be_bytes());
    expected.extend_from_slice(&[0, 80, 0, 24]);
    assert_eq!(&raw[..raw.len() - MAC_LEN], &expected[..]);
    // The MAC is HMAC-SHA256 over the label and those bytes.
    let mut input = b"steward session frame\n".to_vec();
    input.extend_from_slice(&expected);
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &[1u8; KEY_LEN]);
    let tag = aws_lc_rs::hmac::sign(&k, &input);
    assert_eq!(&raw[raw.len() - MAC_LEN..], tag.as_ref());
}

#[test]
fn batch_layout_and_base64() {
    let a = enc(&data(1, b"a"));
    let b = enc(&data(2, b"bc"));
    let body = encode_batch(&[&a, &b]).unwrap();
    let raw = STANDARD.decode(&body).unwrap();
    assert_eq!(&raw[..3], &[1, 0, 2]);
    assert_eq!(&raw[3..7], &(a.len() as u32).to_be_bytes());
    assert_eq!(decode_batch(&body).unwrap(), vec![a, b]);
    assert!(
        body.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'=')
    );
}

#[test]
fn sequencing_rules_on_seq_zero() {
    assert!(matches!(
        encode_frame(&data(0, b"x"), &key(1)),
        Err(FrameError::Malformed(_))
    ));
    assert!(matches!(
        encode_frame(&frame(5, 0, Body::Ack), &key(1)),
        Err(FrameError::Malformed(_))
    ));
}

#[test]
fn oversize_is_refused_on_encode_and_decode() {
    let big = vec![7u8; MAX_PAYLOAD + 1];
    assert_eq!(
        encode_frame(&data(1, &big), &key(1)),
        Err(FrameError::PayloadTooLarge {
            len: MAX_PAYLOAD + 1,
            max: MAX_PAYLOAD
        })
    );
    // The largest payload goes.
    let max = enc(&data(1, &vec![7u8; MAX_PAYLOAD]));
    assert_eq!(decode_frame(&max, &key(1)).unwrap().seq, 1);
    // A hand-made frame claiming a larger payload, correctly MACed, is refused.
    let mut raw = max[..max.len() - MAC_LEN].to_vec();
    let len_at = 4 + SID.len() + 16;
    raw[len_at..len_at + 4].copy_from_slice(&((MAX_PAYLOAD + 1) as u32).to_be_bytes());
    raw.push(7);
    let mut input = b"steward session frame\n".to_vec();
    input.extend_from_slice(&raw);
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &[1u8; KEY_LEN]);
    raw.extend_from_slice(aws_lc_rs::hmac::sign(&k, &input).as_ref());
    assert!(matches!(
        decode_frame(&raw, &key(1)),
        Err(FrameError::PayloadTooLarge { .. })
    ));
    // A reason over the limit.
    let f = frame(
        1,
        0,
        Body::Close {
            reason: "x".repeat(MAX_REASON + 1),
        },
    );
    assert!(matches!(
        encode_frame(&f, &key(1)),
        Err(FrameError::ReasonTooLarge { .. })
    ));
    // Session id limits.
    let mut f = data(1, b"x");
    f.session_id = "s".repeat(MAX_SESSION_ID_LEN + 1);
    assert_eq!(encode_frame(&f, &key(1)), Err(FrameError::InvalidSessionId));
    f.session_id = String::new();
    assert_eq!(encode_frame(&f, &key(1)), Err(FrameError::InvalidSessionId));
}

#[test]
fn oversize_batches_are_refused() {
    let frame = enc(&data(1, &vec![1u8; MAX_PAYLOAD]));
    let mut b = BatchBuilder::new();
    b.push(&frame).unwrap();
    b.push(&frame).unwrap();
    assert!(!b.fits(frame.len()));
    assert!(matches!(
        b.push(&frame),
        Err(FrameError::BatchTooLarge { .. })
    ));
    // The biggest batch is within SQS's body limit.
    let body = b.finish().unwrap();
    assert!(body.len() <= MAX_BODY);
    assert!(matches!(
        encode_batch(&[&frame, &frame, &frame]),
        Err(FrameError::BatchTooLarge { .. })
    ));
    // A body over SQS's limit is refused before anything else.
    let long = "A".repeat(MAX_BODY + 4);
    assert!(matches!(
        decode_batch(&long),
        Err(FrameError::BatchTooLarge { .. })
    ));
    assert_eq!(encode_batch::<Vec<u8>>(&[]), Err(FrameError::EmptyBatch));
    assert_eq!(decode_batch("not base64!"), Err(FrameError::NotBase64));
    assert_eq!(
        decode_batch(&STANDARD.encode([1, 0, 0])),
        Err(FrameError::EmptyBatch)
    );
    assert_eq!(
        decode_batch(&STANDARD.encode([9, 0, 1])),
        Err(FrameError::UnsupportedBatchVersion(9))
    );
    assert_eq!(
        decode_batch(&STANDARD.encode([1, 0, 1, 0, 0, 0, 9, 1])),
        Err(FrameError::Truncated)
    );
}

#[test]
fn forged_frames_are_refused() {
    let raw = enc(&data(1, b"rm -rf /"));
    // Every single changed byte (the MAC included) is refused.
    for i in 1..raw.len() {
        let mut bad = raw.clone();
        bad[i] ^= 0x20;
        let mut r = receiver();
        assert_eq!(
            r.receive(&bad),
            Err(StreamError::Frame(FrameError::BadMac)),
            "byte {i}"
        );
        assert_eq!(r.ack(), 0);
        assert!(!r.ack_due());
    }
    // A changed version byte is refused as such.
    let mut bad = raw.clone();
    bad[0] = 2;
    assert_eq!(
        receiver().receive(&bad),
        Err(StreamError::Frame(FrameError::UnsupportedVersion(2)))
    );
    // The wrong key.
    let other = encode_frame(&data(1, b"x"), &key(2)).unwrap();
    let mut r = receiver();
    assert_eq!(
        r.receive(&other),
        Err(StreamError::Frame(FrameError::BadMac))
    );
    // Nothing was buffered or delivered: the genuine frame 1 still is.
    assert_eq!(delivered_seqs(&r.receive(&raw).unwrap()), vec![1]);
    // Truncations.
    for n in 0..raw.len() {
        assert!(receiver().receive(&raw[..n]).is_err());
    }
}

#[test]
fn a_reflected_frame_is_refused() {
    // Valid MAC under the session key, but sent by the agent: the client's
    // own receiver of agent frames refuses a client frame sent back to it,
    // and the agent refuses its own frame reflected.
    let mut f = data(1, b"x");
    f.direction = A2C;
    let raw = enc(&f);
    let mut r = receiver();
    assert_eq!(
        r.receive(&raw),
        Err(StreamError::Frame(FrameError::WrongDirection))
    );
    assert_eq!(r.buffered(), 0);
    assert_eq!(r.ack(), 0);
    // Flipping the direction byte of a client frame breaks its MAC.
    let mut raw = enc(&data(1, b"x"));
    raw[2] = 2;
    assert_eq!(
        receiver().receive(&raw),
        Err(StreamError::Frame(FrameError::BadMac))
    );
}

#[test]
fn another_sessions_frame_is_refused() {
    // Another session, same key (cannot happen with random keys, but the id
    // is checked on its own).
    let mut f = data(1, b"x");
    f.session_id = "bob-0123456789abcdef0".into();
    let mut r = receiver();
    assert_eq!(
        r.receive(&enc(&f)),
        Err(StreamError::Frame(FrameError::WrongSession))
    );
    // Another session's frame under its own key.
    let raw = encode_frame(&f, &key(3)).unwrap();
    assert_eq!(r.receive(&raw), Err(StreamError::Frame(FrameError::BadMac)));
    assert_eq!(r.ack(), 0);
    assert_eq!(r.buffered(), 0);
}

#[test]
fn duplicates_and_replays_are_applied_once() {
    let mut r = receiver();
    let one = enc(&data(1, b"a"));
    assert_eq!(delivered_seqs(&r.receive(&one).unwrap()), vec![1]);
    r.ack_sent();
    // The same bytes again (SQS delivered twice, or an attacker replayed them).
    let again = r.receive(&one).unwrap();
    assert!(again.duplicate);
    assert!(again.delivered.is_empty());
    assert!(r.ack_due(), "a duplicate calls for an ack");
    // A resend of frame 1 carrying a newer ack: a different MAC, same seq.
    let resend = enc(&frame(1, 4, Body::Data(b"a".to_vec())));
    assert!(r.receive(&resend).unwrap().duplicate);
    assert_eq!(r.peer_ack(), 4);
    // A replayed old frame's older ack does not lower it.
    r.receive(&one).unwrap();
    assert_eq!(r.peer_ack(), 4);
    assert_eq!(r.ack(), 1);
}

#[test]
fn reordering_within_the_bound_is_delivered_in_order() {
    let mut r = Receiver::new(
        SID,
        C2A,
        key(1),
        ReceiverConfig {
            max_ahead: 3,
            max_buffered_bytes: 1 << 20,
        },
    );
    assert!(
        r.receive(&enc(&data(3, b"c")))
            .unwrap()
            .delivered
            .is_empty()
    );
    assert!(
        r.receive(&enc(&data(2, b"b")))
            .unwrap()
            .delivered
            .is_empty()
    );
    // A buffered frame again is a duplicate.
    assert!(r.receive(&enc(&data(3, b"c"))).unwrap().duplicate);
    assert_eq!(r.ack(), 0);
    assert_eq!(
        r.receive(&enc(&data(5, b"e"))),
        Err(StreamError::TooFarAhead { seq: 5, next: 1 })
    );
    let got = r.receive(&enc(&data(1, b"a"))).unwrap();
    assert_eq!(delivered_seqs(&got), vec![1, 2, 3]);
    assert_eq!(r.ack(), 3);
    assert_eq!(r.buffered(), 0);
    // Frame 5 is now within the bound.
    assert!(
        r.receive(&enc(&data(5, b"e")))
            .unwrap()
            .delivered
            .is_empty()
    );
    assert_eq!(r.buffered(), 1);
}

#[test]
fn the_reorder_buffer_is_bounded_in_bytes() {
    let one = enc(&data(2, b"b"));
    let mut r = Receiver::new(
        SID,
        C2A,
        key(1),
        ReceiverConfig {
            max_ahead: 100,
            max_buffered_bytes: one.len() * 2,
        },
    );
    r.receive(&enc(&data(2, b"b"))).unwrap();
    r.receive(&enc(&data(3, b"c"))).unwrap();
    assert_eq!(
        r.receive(&enc(&data(4, b"d"))),
        Err(StreamError::BufferFull)
    );
    assert_eq!(
        delivered_seqs(&r.receive(&enc(&data(1, b"a"))).unwrap()),
        vec![1, 2, 3]
    );
}

#[test]
fn ack_only_frames_are_not_sequenced_and_call_for_no_ack() {
    let mut r = receiver();
    let got = r.receive(&enc(&frame(0, 0, Body::Ack))).unwrap();
    assert!(got.delivered.is_empty() && !got.duplicate);
    assert!(!r.ack_due());
    assert_eq!(r.ack(), 0);
}

fn sender(max_unacked: usize) -> Sender {
    Sender::new(
        SID,
        C2A,
        key(1),
        SenderConfig {
            max_unacked_bytes: max_unacked,
            resend_after_ms: 1000,
        },
    )
}

#[test]
fn sender_assigns_seqs_resends_and_releases_on_ack() {
    let mut s = sender(1 << 20);
    assert_eq!(s.push(Body::Data(b"a".to_vec())).unwrap(), 1);
    assert_eq!(s.push(Body::Data(b"b".to_vec())).unwrap(), 2);
    assert_eq!(s.push(Body::Ack), Err(StreamError::AckNotSequenced));
    let body = s.poll_batch(0, 7).unwrap().unwrap();
    let frames = decode_batch(&body).unwrap();
    let decoded: Vec<Frame> = frames
        .iter()
        .map(|f| decode_frame(f, &key(1)).unwrap())
        .collect();
    assert_eq!(
        decoded.iter().map(|f| (f.seq, f.ack)).collect::<Vec<_>>(),
        vec![(1, 7), (2, 7)]
    );
    // Nothing more until the resend delay.
    assert_eq!(s.poll_batch(999, 7).unwrap(), None);
    assert_eq!(s.next_resend_at(), Some(1000));
    s.on_ack(1).unwrap();
    assert_eq!(s.unacked_frames(), 1);
    let resent = s.poll_batch(1000, 8).unwrap().unwrap();
    let f = decode_frame(&decode_batch(&resent).unwrap()[0], &key(1)).unwrap();
    assert_eq!((f.seq, f.ack), (2, 8));
    // Old acks change nothing; acks of unsent frames are refused.
    s.on_ack(0).unwrap();
    assert_eq!(s.unacked_frames(), 1);
    assert_eq!(
        s.on_ack(3),
        Err(StreamError::AckBeyondSent { ack: 3, last: 2 })
    );
    s.on_ack(2).unwrap();
    assert_eq!((s.unacked_frames(), s.unacked_bytes()), (0, 0));
    assert_eq!(s.poll_batch(5000, 8).unwrap(), None);
    // An ack-only body.
    let a = decode_batch(&s.ack_batch(3).unwrap()).unwrap();
    let f = decode_frame(&a[0], &key(1)).unwrap();
    assert_eq!((f.seq, f.ack, f.body), (0, 3, Body::Ack));
}

#[test]
fn sender_applies_back_pressure() {
    let size = enc(&data(1, &[0u8; 100])).len();
    let mut s = sender(size * 2);
    s.push(Body::Data(vec![0; 100])).unwrap();
    assert!(s.can_send());
    s.push(Body::Data(vec![0; 100])).unwrap();
    assert!(!s.can_send());
    assert_eq!(s.window(), 0);
    assert_eq!(s.push(Body::Data(vec![0; 1])), Err(StreamError::WindowFull));
    s.poll_batch(0, 0).unwrap();
    s.on_ack(1).unwrap();
    assert!(s.can_send());
    assert_eq!(s.window(), size);
    // Oversize payloads are refused at push.
    assert!(matches!(
        s.push(Body::Data(vec![0; MAX_PAYLOAD + 1])),
        Err(StreamError::Frame(FrameError::PayloadTooLarge { .. }))
    ));
}

#[test]
fn sender_splits_what_is_due_over_batches() {
    let mut s = sender(1 << 20);
    for _ in 0..4 {
        s.push(Body::Data(vec![1; MAX_PAYLOAD])).unwrap();
    }
    let mut counts = Vec::new();
    while let Some(body) = s.poll_batch(0, 0).unwrap() {
        assert!(body.len() <= MAX_BODY);
        counts.push(decode_batch(&body).unwrap().len());
    }
    assert_eq!(counts, vec![2, 2]);
}

#[test]
fn session_keys_are_random_secret_and_transportable() {
    let a = SessionKey::generate().unwrap();
    let b = SessionKey::generate().unwrap();
    assert_ne!(a.expose_base64(), b.expose_base64());
    assert_eq!(format!("{a:?}"), "SessionKey(***)");
    let again = SessionKey::from_base64(&a.expose_base64()).unwrap();
    let raw = encode_frame(&data(1, b"x"), &a).unwrap();
    assert!(decode_frame(&raw, &again).is_ok());
    assert!(decode_frame(&raw, &b).is_err());
    assert!(SessionKey::from_base64("c2hvcnQ=").is_err());
}

// ---- flow control ----

#[test]
fn stream_ids_follow_the_openers_parity() {
    let mut client = Streams::new(C2A);
    let mut agent = Streams::new(A2C);
    let (id, open) = client.open().unwrap();
    assert_eq!(id, 1);
    agent.on_receive(&open).unwrap();
    assert_eq!(client.open().unwrap().0, 3);
    assert_eq!(agent.open().unwrap().0, 2);
    // The client may not open an even id, skip ids, or reopen one.
    assert_eq!(
        agent.on_receive(&Body::StreamOpen { stream: 2 }),
        Err(FlowError::BadStreamId(2))
    );
    assert_eq!(
        agent.on_receive(&Body::StreamOpen { stream: 5 }),
        Err(FlowError::BadStreamId(5))
    );
    assert_eq!(
        agent.on_receive(&Body::StreamOpen { stream: 1 }),
        Err(FlowError::BadStreamId(1))
    );
    agent.on_receive(&Body::StreamOpen { stream: 3 }).unwrap();
}

#[test]
fn stream_data_beyond_credit_is_a_protocol_error() {
    let mut client = Streams::new(C2A);
    let mut agent = Streams::new(A2C);
    let (id, open) = client.open().unwrap();
    agent.on_receive(&open).unwrap();
    let credit = INITIAL_STREAM_CREDIT as usize;
    let mut sent = 0;
    while sent < credit {
        let n = (credit - sent).min(MAX_PAYLOAD);
        let body = client.send_data(id, vec![0; n]).unwrap();
        agent.on_receive(&body).unwrap();
        sent += n;
    }
    // The sender's own accounting refuses to go beyond.
    assert!(matches!(
        client.send_data(id, vec![0; 1]),
        Err(FlowError::CreditExceeded { .. })
    ));
    // A peer that does is refused.
    assert_eq!(
        agent.on_receive(&Body::StreamData {
            stream: id,
            data: vec![0; 1]
        }),
        Err(FlowError::CreditExceeded {
            stream: id,
            len: 1,
            credit: 0
        })
    );
    // Credit granted lets exactly that much more through.
    let update = agent.grant(id, 10).unwrap();
    client.on_receive(&update).unwrap();
    assert_eq!(client.send_credit(id), Some(10));
    agent
        .on_receive(&client.send_data(id, vec![0; 10]).unwrap())
        .unwrap();
    assert!(
        agent
            .on_receive(&Body::StreamData {
                stream: id,
                data: vec![0; 1]
            })
            .is_err()
    );
    // Credit beyond the window limit is refused.
    assert_eq!(
        client.on_receive(&Body::WindowUpdate {
            stream: id,
            credit: u32::MAX
        }),
        Err(FlowError::WindowOverflow(id))
    );
}

#[test]
fn streams_close_each_way() {
    let mut client = Streams::new(C2A);
    let mut agent = Streams::new(A2C);
    let (id, open) = client.open().unwrap();
    agent.on_receive(&open).unwrap();
    // The client half-closes; the agent may still send.
    agent.on_receive(&client.close(id).unwrap()).unwrap();
    assert_eq!(
        client.send_data(id, vec![1]),
        Err(FlowError::DataAfterClose(id))
    );
    assert_eq!(
        agent.on_receive(&Body::StreamData {
            stream: id,
            data: vec![1]
        }),
        Err(FlowError::DataAfterClose(id))
    );
    client
        .on_receive(&agent.send_data(id, vec![1, 2]).unwrap())
        .unwrap();
    client.on_receive(&agent.close(id).unwrap()).unwrap();
    assert_eq!((client.open_count(), agent.open_count()), (0, 0));
    // After both closes: data or a close is an error, late credit is not.
    assert_eq!(
        agent.on_receive(&Body::StreamClose { stream: id }),
        Err(FlowError::DoubleClose(id))
    );
    assert_eq!(
        agent.on_receive(&Body::StreamData {
            stream: id,
            data: vec![]
        }),
        Err(FlowError::DataAfterClose(id))
    );
    agent
        .on_receive(&Body::WindowUpdate {
            stream: id,
            credit: 5,
        })
        .unwrap();
    assert_eq!(
        agent.on_receive(&Body::StreamData {
            stream: 99,
            data: vec![]
        }),
        Err(FlowError::UnknownStream(99))
    );
}

#[test]
fn the_number_of_streams_is_bounded() {
    let mut agent = Streams::new(A2C);
    for i in 0..MAX_STREAMS as u32 {
        agent
            .on_receive(&Body::StreamOpen { stream: 2 * i + 1 })
            .unwrap();
    }
    assert_eq!(
        agent.on_receive(&Body::StreamOpen {
            stream: 2 * MAX_STREAMS as u32 + 1
        }),
        Err(FlowError::TooManyStreams)
    );
}

// ---- a lossy channel ----

/// One endpoint: its sender, its receiver, and the bytes it got.
struct Peer {
    tx: Sender,
    rx: Receiver,
    to_send: VecDeque<Vec<u8>>,
    got: Vec<u8>,
}

impl Peer {
    fn new(out: Direction, k: &SessionKey, chunks: Vec<Vec<u8>>) -> Self {
        let config = SenderConfig {
            max_unacked_bytes: 2048,
            resend_after_ms: 500,
        };
        Peer {
            tx: Sender::new(SID, out, k.clone(), config),
            rx: Receiver::new(
                SID,
                out.reverse(),
                k.clone(),
                ReceiverConfig {
                    max_ahead: 64,
                    max_buffered_bytes: 64 * 1024,
                },
            ),
            to_send: chunks.into(),
            got: Vec::new(),
        }
    }

    fn outgoing(&mut self, now: u64) -> Vec<String> {
        while self.tx.can_send() {
            let Some(chunk) = self.to_send.pop_front() else {
                break;
            };
            self.tx.push(Body::Data(chunk)).unwrap();
        }
        let mut out = Vec::new();
        while let Some(b) = self.tx.poll_batch(now, self.rx.ack()).unwrap() {
            out.push(b);
            self.rx.ack_sent();
        }
        if self.rx.ack_due() {
            out.push(self.tx.ack_batch(self.rx.ack()).unwrap());
            self.rx.ack_sent();
        }
        out
    }

    fn incoming(&mut self, body: &str) {
        let got = self.rx.receive_batch(body).unwrap();
        // Nothing genuine is refused: the far-ahead bound is never reached
        // because the sender's window is smaller than it.
        assert!(got.refused.is_empty(), "{:?}", got.refused);
        for f in got.delivered {
            match f.body {
                Body::Data(d) => self.got.extend(d),
                other => panic!("unexpected {other:?}"),
            }
        }
        self.tx.on_ack(self.rx.peer_ack()).unwrap();
    }

    fn done(&self) -> bool {
        self.to_send.is_empty() && self.tx.unacked_frames() == 0
    }
}

#[derive(Debug, Clone)]
struct Fault {
    drop: bool,
    dup: bool,
    delay: u8,
}

fn fault() -> impl Strategy<Value = Fault> {
    (0u8..10, 0u8..10, 0u8..6).prop_map(|(d, u, delay)| Fault {
        drop: d < 3,
        dup: u < 2,
        delay,
    })
}

fn simulate(c2a: Vec<Vec<u8>>, a2c: Vec<Vec<u8>>, faults: Vec<Fault>) -> (Vec<u8>, Vec<u8>) {
    let k = key(9);
    let mut client = Peer::new(C2A, &k, c2a);
    let mut agent = Peer::new(A2C, &k, a2c);
    let mut faults: VecDeque<Fault> = faults.into();
    // (due step, to the agent?, body)
    let mut net: Vec<(u64, bool, String)> = Vec::new();
    for step in 0..20_000u64 {
        let now = step * 100;
        for (to_agent, body) in client
            .outgoing(now)
            .into_iter()
            .map(|b| (true, b))
            .chain(agent.outgoing(now).into_iter().map(|b| (false, b)))
        {
            // Once the faults run out the channel is perfect, so the run ends.
            let f = faults.pop_front().unwrap_or(Fault {
                drop: false,
                dup: false,
                delay: 0,
            });
            if f.drop {
                continue;
            }
            let due = step + 1 + u64::from(f.delay);
            if f.dup {
                net.push((due + 1, to_agent, body.clone()));
            }
            net.push((due, to_agent, body));
        }
        // Deliver what is due, newest first within the step: more reordering.
        let (now_due, later): (Vec<_>, Vec<_>) =
            net.drain(..).partition(|(due, _, _)| *due <= step);
        net = later;
        for (_, to_agent, body) in now_due.into_iter().rev() {
            if to_agent {
                agent.incoming(&body);
            } else {
                client.incoming(&body);
            }
        }
        if client.done() && agent.done() && net.is_empty() {
            return (agent.got, client.got);
        }
    }
    panic!("the session did not converge");
}

fn chunks() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_lossy_duplicating_reordering_channel_delivers_every_byte_once_in_order(
        c2a in chunks(),
        a2c in chunks(),
        faults in prop::collection::vec(fault(), 0..200),
    ) {
        let (at_agent, at_client) = simulate(c2a.clone(), a2c.clone(), faults);
        prop_assert_eq!(at_agent, c2a.concat());
        prop_assert_eq!(at_client, a2c.concat());
    }
}

fn any_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512).prop_map(Body::Data),
        (any::<u16>(), any::<u16>()).prop_map(|(cols, rows)| Body::Resize { cols, rows }),
        any::<u32>().prop_map(|stream| Body::StreamOpen { stream }),
        (any::<u32>(), prop::collection::vec(any::<u8>(), 0..512))
            .prop_map(|(stream, data)| Body::StreamData { stream, data }),
        any::<u32>().prop_map(|stream| Body::StreamClose { stream }),
        (any::<u32>(), any::<u32>())
            .prop_map(|(stream, credit)| Body::WindowUpdate { stream, credit }),
        Just(Body::Ack),
        ".{0,100}".prop_map(|reason| Body::Close { reason }),
    ]
}

fn any_frame() -> impl Strategy<Value = Frame> {
    (
        "[a-zA-Z0-9-]{1,96}",
        any::<bool>(),
        1u64..,
        any::<u64>(),
        any_body(),
    )
        .prop_map(|(session_id, c2a, seq, ack, body)| Frame {
            session_id,
            direction: if c2a { C2A } else { A2C },
            seq: if body.is_sequenced() { seq } else { 0 },
            ack,
            body,
        })
}

proptest! {
    #[test]
    fn frames_roundtrip(frames in prop::collection::vec(any_frame(), 1..8)) {
        let k = key(5);
        let raws: Vec<Vec<u8>> = frames.iter().map(|f| encode_frame(f, &k).unwrap()).collect();
        let body = encode_batch(&raws).unwrap();
        let back: Vec<Frame> = decode_batch(&body)
            .unwrap()
            .iter()
            .map(|r| decode_frame(r, &k).unwrap())
            .collect();
        prop_assert_eq!(back, frames);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode_frame(&bytes, &key(1));
        // The field parser sees the bytes as if their MAC had passed.
        let _ = super::frames::parse_unauthenticated(&bytes);
        let _ = decode_batch(&STANDARD.encode(&bytes));
        let _ = decode_batch(&String::from_utf8_lossy(&bytes));
        let _ = receiver().receive(&bytes);
    }

    #[test]
    fn mutated_frames_never_panic_and_are_refused(
        f in any_frame(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..,
    ) {
        let raw = encode_frame(&f, &key(1)).unwrap();
        // Mutate the fields, then parse as if authenticated: no panic.
        let signed_len = raw.len() - MAC_LEN;
        let mut signed = raw[..signed_len].to_vec();
        let i = at.index(signed.len());
        signed[i] ^= xor;
        let _ = super::frames::parse_unauthenticated(&signed);
        // Any change to the frame is refused by the MAC.
        let mut bad = raw.clone();
        let j = at.index(bad.len());
        bad[j] ^= xor;
        prop_assert!(decode_frame(&bad, &key(1)).is_err());
    }

    #[test]
    fn stream_credit_holds_under_any_frames(bodies in prop::collection::vec(any_body(), 0..64)) {
        let mut s = Streams::new(A2C);
        for b in &bodies {
            let _ = s.on_receive(b);
        }
        prop_assert!(s.open_count() <= MAX_STREAMS);
    }
}

/// Appends a valid MAC under `key(1)` to hand-made frame bytes.
fn with_mac(mut signed: Vec<u8>) -> Vec<u8> {
    let mut input = b"steward session frame\n".to_vec();
    input.extend_from_slice(&signed);
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &[1u8; KEY_LEN]);
    signed.extend_from_slice(aws_lc_rs::hmac::sign(&k, &input).as_ref());
    signed
}

#[test]
fn authentic_but_malformed_frames_are_refused_with_their_reason() {
    let raw = enc(&frame(1, 0, Body::StreamOpen { stream: 1 }));
    let signed = raw[..raw.len() - MAC_LEN].to_vec();
    let mut r = receiver();
    let mut unknown_kind = signed.clone();
    unknown_kind[1] = 9;
    assert_eq!(
        r.receive(&with_mac(unknown_kind)),
        Err(StreamError::Frame(FrameError::UnknownKind(9)))
    );
    let mut unknown_direction = signed.clone();
    unknown_direction[2] = 3;
    assert_eq!(
        r.receive(&with_mac(unknown_direction)),
        Err(StreamError::Frame(FrameError::UnknownDirection(3)))
    );
    let mut trailing = signed.clone();
    trailing.push(0);
    assert!(matches!(
        r.receive(&with_mac(trailing)),
        Err(StreamError::Frame(FrameError::Malformed(_)))
    ));
    let mut short = signed.clone();
    short.pop();
    assert_eq!(
        r.receive(&with_mac(short)),
        Err(StreamError::Frame(FrameError::Truncated))
    );
    // The genuine frame is still taken: nothing above was buffered or applied.
    assert_eq!(delivered_seqs(&r.receive(&raw).unwrap()), vec![1]);
}

#[test]
fn a_batch_with_one_forged_frame_keeps_the_others() {
    let a = enc(&data(1, b"a"));
    let mut b = enc(&data(2, b"b"));
    let last = b.len() - 1;
    b[last] ^= 1;
    let c = enc(&data(3, b"c"));
    let mut r = receiver();
    let got = r.receive_batch(&encode_batch(&[a, b, c]).unwrap()).unwrap();
    assert_eq!(
        got.delivered.iter().map(|f| f.seq).collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(got.refused, vec![StreamError::Frame(FrameError::BadMac)]);
    assert_eq!((r.ack(), r.buffered()), (1, 1));
}
