//! Port forwarding sessions end to end in memory: a client-side `Peer` and
//! `Streams` against the agent's session, forwarding to a TCP echo server
//! on the loopback interface.

use std::collections::{BTreeMap, VecDeque};

use steward_core::channel::{SessionKind, SessionStart, SessionState, SessionUpdate};
use steward_core::sessions::Streams;
use steward_core::sessions::flow::INITIAL_STREAM_CREDIT;
use steward_core::sessions::frames::MAX_PAYLOAD;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::test_support::{ServedSession, serve, session_start, states};
use super::*;
use crate::wait::{LIMIT, within};

const SID: &str = "bob-0123456789abcdef0";

fn key() -> SessionKey {
    SessionKey::from_bytes([7; 32])
}

fn forward_start(host: &str, port: u16) -> SessionStart {
    let kind = SessionKind::PortForward {
        host: host.into(),
        port,
    };
    session_start(
        SID,
        &key(),
        "AWS-StartPortForwardingSessionToRemoteHost",
        kind,
    )
}

/// Accepts connections on the loopback interface and sends back what each
/// sends, closing its side after the peer's.
async fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = socket.into_split();
                if tokio::io::copy(&mut read, &mut write).await.is_ok() {
                    let _ = write.shutdown().await;
                }
            });
        }
    });
    port
}

/// A port on the loopback interface that nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// How the client gives the agent credit back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Granting {
    /// Every byte at once.
    Eager,
    /// This many bytes, and only once the agent has spent all it had.
    WhenSpent(u32),
}

/// The client's view of one stream.
#[derive(Default)]
struct ClientStream {
    to_send: VecDeque<u8>,
    closed_by_client: bool,
    received: Vec<u8>,
    closed_by_agent: bool,
    /// Credit the agent has left on this stream, as the client counts it.
    agent_credit: u64,
}

/// A forwarding session served in a task, and the client's end of it.
struct Client {
    served: ServedSession,
    streams: Streams,
    state: BTreeMap<u32, ClientStream>,
}

impl std::ops::Deref for Client {
    type Target = ServedSession;
    fn deref(&self) -> &ServedSession {
        &self.served
    }
}

impl std::ops::DerefMut for Client {
    fn deref_mut(&mut self) -> &mut ServedSession {
        &mut self.served
    }
}

fn serve_forwarding(start: SessionStart) -> Client {
    Client {
        served: serve(SID, key(), start, None),
        streams: Streams::new(Direction::ClientToAgent),
        state: BTreeMap::new(),
    }
}

impl Client {
    /// Opens a stream that will carry `data`, then the client's close.
    async fn open(&mut self, data: Vec<u8>) -> u32 {
        let (id, body) = self.streams.open().unwrap();
        self.served.ends.outbound.send(body).await.unwrap();
        self.state.insert(
            id,
            ClientStream {
                to_send: data.into(),
                agent_credit: u64::from(INITIAL_STREAM_CREDIT),
                ..ClientStream::default()
            },
        );
        id
    }

    async fn receive(&mut self) -> Body {
        receive_checked(&mut self.served.ends.inbound, &mut self.streams).await
    }

    /// The next body due from the client: data within the agent's credit,
    /// or a close once a stream's data is all sent.
    fn next_to_send(&mut self) -> Option<Body> {
        for (&id, s) in self.state.iter_mut() {
            if s.closed_by_client {
                continue;
            }
            if s.to_send.is_empty() {
                s.closed_by_client = true;
                return Some(self.streams.close(id).unwrap());
            }
            let credit = self.streams.send_credit(id).unwrap_or(0);
            let n = s
                .to_send
                .len()
                .min(MAX_PAYLOAD)
                .min(usize::try_from(credit).unwrap());
            if n > 0 {
                let chunk: Vec<u8> = s.to_send.drain(..n).collect();
                return Some(self.streams.send_data(id, chunk).unwrap());
            }
        }
        None
    }

    fn can_send(&self) -> bool {
        self.state.iter().any(|(&id, s)| {
            !s.closed_by_client
                && (s.to_send.is_empty() || self.streams.send_credit(id).unwrap_or(0) > 0)
        })
    }

    /// Sends every stream's data and close and takes the agent's answers,
    /// granting as `granting` says, until the agent closed every stream.
    async fn relay(&mut self, granting: Granting) {
        within("every forwarded stream to finish", LIMIT, async {
            let mut grants: VecDeque<Body> = VecDeque::new();
            let outbound = self.served.ends.outbound.clone();
            while self.state.values().any(|s| !s.closed_by_agent) || self.can_send() {
                let sendable = !grants.is_empty() || self.can_send();
                tokio::select! {
                    permit = outbound.reserve(), if sendable => {
                        let permit = permit.unwrap();
                        let body = match grants.pop_front() {
                            Some(grant) => grant,
                            None => self.next_to_send().unwrap(),
                        };
                        permit.send(body);
                    }
                    body = receive_checked(&mut self.served.ends.inbound, &mut self.streams) => match body {
                        Body::StreamData { stream, data } => {
                            let s = self.state.get_mut(&stream).unwrap();
                            let len = data.len() as u64;
                            assert!(
                                len <= s.agent_credit,
                                "the agent sent {len} bytes on stream {stream} with {} of credit",
                                s.agent_credit
                            );
                            s.agent_credit -= len;
                            s.received.extend_from_slice(&data);
                            let grant = match granting {
                                Granting::Eager => Some(u32::try_from(len).unwrap()),
                                Granting::WhenSpent(n) => (s.agent_credit == 0).then_some(n),
                            };
                            if let Some(credit) = grant
                                && !s.closed_by_agent
                            {
                                s.agent_credit += u64::from(credit);
                                grants.push_back(self.streams.grant(stream, credit).unwrap());
                            }
                        }
                        Body::StreamClose { stream } => {
                            self.state.get_mut(&stream).unwrap().closed_by_agent = true;
                        }
                        Body::Close { reason } => panic!("the agent closed the session: {reason}"),
                        _ => {}
                    },
                }
            }
            for grant in grants {
                self.served.ends.outbound.send(grant).await.unwrap();
            }
        })
        .await
        .unwrap();
    }

    /// Reads until the agent's Close; its reason.
    async fn read_until_close(&mut self) -> String {
        within("the agent's Close", LIMIT, async {
            loop {
                if let Body::Close { reason } = self.receive().await {
                    return reason;
                }
            }
        })
        .await
        .unwrap()
    }

    /// Waits for the session to end; its reports.
    async fn ended(self) -> Vec<SessionUpdate> {
        self.served.ended().await
    }

    /// The client's Close, then the session's end; its reports.
    async fn close(self) -> Vec<SessionUpdate> {
        self.served
            .ends
            .outbound
            .send(Body::Close {
                reason: "done".into(),
            })
            .await
            .unwrap();
        self.ended().await
    }
}

/// The next body the agent sent, checked against the stream rules.
async fn receive_checked(inbound: &mut mpsc::Receiver<Body>, streams: &mut Streams) -> Body {
    let body = inbound
        .recv()
        .await
        .expect("the channel ended before the agent's Close");
    streams
        .on_receive(&body)
        .unwrap_or_else(|e| panic!("the agent broke the stream rules: {e}"));
    body
}

/// Bytes that differ along the stream and between streams.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

#[tokio::test]
async fn three_connections_each_get_their_own_bytes_back() {
    let port = echo_server().await;
    let mut client = serve_forwarding(forward_start("127.0.0.1", port));
    // One small, one a few frames, one beyond the first credit: the agent
    // must grant as it writes.
    let sent = [
        pattern(1, 11),
        pattern(2, 3 * MAX_PAYLOAD + 5),
        pattern(3, 300 * 1024),
    ];
    let mut ids = Vec::new();
    for data in &sent {
        ids.push(client.open(data.clone()).await);
    }
    client.relay(Granting::Eager).await;
    for (id, data) in ids.iter().zip(&sent) {
        let received = &client.state[id].received;
        assert_eq!(received.len(), data.len(), "stream {id}");
        assert!(received == data, "stream {id} came back different");
    }
    let reports = client.close().await;
    assert_eq!(
        states(&reports),
        vec![SessionState::Connected, SessionState::Terminated]
    );
    assert_eq!(reports[1].reason, "closed by the client");
}

#[tokio::test]
async fn a_mebibyte_keeps_within_credit_granted_slowly() {
    let port = echo_server().await;
    let mut client = serve_forwarding(forward_start("127.0.0.1", port));
    let data = pattern(9, 1024 * 1024);
    let id = client.open(data.clone()).await;
    // The client grants only once the agent has spent every byte of credit;
    // `receive` fails on anything beyond it.
    client.relay(Granting::WhenSpent(16 * 1024)).await;
    let received = &client.state[&id].received;
    assert_eq!(received.len(), data.len());
    assert!(*received == data, "the stream came back different");
    let reports = client.close().await;
    assert_eq!(states(&reports).last(), Some(&SessionState::Terminated));
}

#[tokio::test]
async fn a_refused_connection_closes_its_stream_and_not_the_session() {
    let port = closed_port().await;
    let mut client = serve_forwarding(forward_start("127.0.0.1", port));
    let (id, open) = client.streams.open().unwrap();
    client.ends.outbound.send(open).await.unwrap();
    within("the refused stream's close", LIMIT, async {
        loop {
            match client.receive().await {
                Body::StreamClose { stream } => {
                    assert_eq!(stream, id);
                    return;
                }
                Body::Close { reason } => panic!("the session closed: {reason}"),
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    // The session goes on: data already on its way is taken, and the
    // client's own close finishes the stream.
    let data = client.streams.send_data(id, b"late".to_vec()).unwrap();
    client.ends.outbound.send(data).await.unwrap();
    let close = client.streams.close(id).unwrap();
    client.ends.outbound.send(close).await.unwrap();
    assert_eq!(client.streams.open_count(), 0);
    let reports = client.close().await;
    assert_eq!(
        states(&reports),
        vec![SessionState::Connected, SessionState::Terminated]
    );
    assert_eq!(reports[1].reason, "closed by the client");
}

#[tokio::test]
async fn a_stream_rule_broken_by_the_client_ends_the_session() {
    let port = echo_server().await;
    let mut client = serve_forwarding(forward_start("127.0.0.1", port));
    // Stream 2 is the agent's to open.
    client
        .ends
        .outbound
        .send(Body::StreamOpen { stream: 2 })
        .await
        .unwrap();
    let reason = client.read_until_close().await;
    assert!(reason.starts_with("protocol error:"), "{reason}");
    let reports = client.ended().await;
    assert_eq!(
        states(&reports),
        vec![SessionState::Connected, SessionState::Terminated]
    );
    assert_eq!(reports[1].reason, reason);
}

#[tokio::test]
async fn terminate_session_ends_it_with_open_connections() {
    let port = echo_server().await;
    let mut client = serve_forwarding(forward_start("127.0.0.1", port));
    let (id, open) = client.streams.open().unwrap();
    client.ends.outbound.send(open).await.unwrap();
    let data = client.streams.send_data(id, b"ping".to_vec()).unwrap();
    client.ends.outbound.send(data).await.unwrap();
    within("the echo", LIMIT, async {
        let mut echoed = Vec::new();
        while echoed.len() < 4 {
            if let Body::StreamData { data, .. } = client.receive().await {
                echoed.extend_from_slice(&data);
            }
        }
        assert_eq!(echoed, b"ping");
    })
    .await
    .unwrap();
    client.stop.send_replace(Some(StopCause::Terminated));
    let reason = client.read_until_close().await;
    assert_eq!(reason, StopCause::Terminated.reason());
    let reports = client.ended().await;
    assert_eq!(
        states(&reports),
        vec![SessionState::Connected, SessionState::Terminated]
    );
    assert_eq!(reports[1].reason, reason);
}

#[tokio::test]
async fn an_idle_forwarding_session_ends_terminated() {
    let port = echo_server().await;
    let mut start = forward_start("127.0.0.1", port);
    start.idle_timeout_seconds = 1;
    let mut client = serve_forwarding(start);
    // An open connection with nothing on it does not keep the session up.
    let (_, open) = client.streams.open().unwrap();
    client.ends.outbound.send(open).await.unwrap();
    let reason = client.read_until_close().await;
    assert!(reason.starts_with("idle timeout"), "{reason}");
    let reports = client.ended().await;
    assert_eq!(
        states(&reports),
        vec![SessionState::Connected, SessionState::Terminated]
    );
    assert_eq!(reports[1].reason, reason);
}

#[tokio::test]
async fn a_forwarding_session_ends_at_its_maximum_duration_even_when_busy() {
    let port = echo_server().await;
    let mut start = forward_start("127.0.0.1", port);
    start.max_duration_seconds = 1;
    let mut client = serve_forwarding(start);
    let (id, open) = client.streams.open().unwrap();
    client.ends.outbound.send(open).await.unwrap();
    // Ping-pong until the agent closes the session.
    let reason = within("the agent's Close", LIMIT, async {
        loop {
            let ping = client.streams.send_data(id, b"ping".to_vec()).unwrap();
            // Once the agent's Close arrived, the client's channel is done
            // and takes nothing more: the Close is then what comes next.
            let _ = client.ends.outbound.send(ping).await;
            let mut echoed = 0;
            while echoed < 4 {
                match client.receive().await {
                    Body::StreamData { data, .. } => {
                        echoed += data.len();
                        let grant = client.streams.grant(id, data.len() as u32).unwrap();
                        let _ = client.ends.outbound.send(grant).await;
                    }
                    Body::Close { reason } => return reason,
                    _ => {}
                }
            }
        }
    })
    .await
    .unwrap();
    assert!(reason.starts_with("maximum session duration"), "{reason}");
    let reports = client.ended().await;
    assert_eq!(
        states(&reports),
        vec![SessionState::Connected, SessionState::Terminated]
    );
    assert_eq!(reports[1].reason, reason);
}
