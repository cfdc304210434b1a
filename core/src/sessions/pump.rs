//! The channel pump: the IO loop around a [`Peer`] that both ends of a
//! session run (the agent around its shell, the client around its terminal).
//! It moves bodies between the caller's channels and the session's two
//! queues: one task long-polls the inbound queue, feeds the peer and deletes
//! what it took; the other sends what the peer says is due, at once when
//! the caller has something (a keystroke must not wait for a poll to end),
//! and again when a resend falls due.
//!
//! The queues are a trait so that the pump runs over SQS on a node and over
//! [`MemoryQueue`] in tests.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::frames::{Body, Direction, SessionKey};
use super::peer::Peer;
use super::stream::StreamError;

/// One queue of a session, as one end sees it.
#[async_trait::async_trait]
pub trait SessionQueue: Send + Sync + 'static {
    /// Long-polls up to `wait_seconds` (0..=20); (body, receipt handle) pairs.
    async fn receive(&self, wait_seconds: i32) -> Result<Vec<(String, String)>, QueueError>;
    async fn delete(&self, receipt: &str) -> Result<(), QueueError>;
    async fn send(&self, body: &str) -> Result<(), QueueError>;
}

/// A queue operation failed. Carries the queue service's message, never a
/// body or a credential.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct QueueError(pub String);

/// How a channel ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEnd {
    /// A Close was received from the peer, with its reason.
    ClosedByPeer(String),
    /// This end sent Close (pushed a Body::Close) and it was acked, or the grace ran out.
    Closed,
    /// The `outbound` sender was dropped without a Close.
    Abandoned,
}

/// Why the pump stopped before the channel ended.
#[derive(Debug, thiserror::Error)]
pub enum PumpError {
    /// The peer broke the protocol in an authentic frame (for example, it
    /// acknowledged a frame never sent), or this end tried to send a body
    /// the stream refuses (an oversize payload).
    #[error("session {session_id}: protocol error: {source}")]
    Protocol {
        session_id: String,
        #[source]
        source: StreamError,
    },
    /// A queue kept failing for longer than [`QUEUE_GIVE_UP`].
    #[error("session {session_id}: cannot {operation} the session queue: {source}")]
    Queue {
        session_id: String,
        operation: &'static str,
        #[source]
        source: QueueError,
    },
}

pub struct ChannelEnds {
    /// Bodies to send (Data, Resize, Stream*, Close). Back-pressure: the pump stops taking from
    /// it while the Peer's window is full.
    pub outbound: tokio::sync::mpsc::Sender<Body>,
    /// The peer's bodies, in order, each once (never Ack).
    pub inbound: tokio::sync::mpsc::Receiver<Body>,
    pub task: tokio::task::JoinHandle<Result<ChannelEnd, PumpError>>,
}

/// SQS's longest long poll.
pub const LONG_POLL_SECONDS: i32 = 20;
/// How long after pushing Close this end waits for its ack.
pub const CLOSE_GRACE: Duration = Duration::from_secs(3);
/// At most one message per this interval from one end: the first frame
/// after a quiet spell goes at once (a keystroke's echo is not delayed),
/// while a busy stream's frames gather into batches instead of one SQS
/// message (and its delete and receive) per terminal write.
pub const SEND_PACE: Duration = Duration::from_millis(50);
/// A queue failing without a break for this long ends the channel.
pub const QUEUE_GIVE_UP: Duration = Duration::from_secs(60);
/// Bodies the caller may queue before `outbound.send` waits, and bodies
/// received before the pump waits for the caller to take them.
const CHANNEL_CAPACITY: usize = 64;
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Starts the loop: receives from `receive_from`, sends to `send_to`.
pub fn start(
    peer: Peer,
    session_id: String,
    receive_from: std::sync::Arc<dyn SessionQueue>,
    send_to: std::sync::Arc<dyn SessionQueue>,
) -> ChannelEnds {
    let (outbound_tx, outbound_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (inbound_tx, inbound_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let shared = Arc::new(Shared {
        peer: Mutex::new(peer),
        wake: Notify::new(),
        origin: Instant::now(),
        session_id,
    });
    let receiving = tokio::spawn(receive_loop(Arc::clone(&shared), receive_from, inbound_tx));
    let task = tokio::spawn(send_loop(shared, send_to, outbound_rx, receiving));
    ChannelEnds {
        outbound: outbound_tx,
        inbound: inbound_rx,
        task,
    }
}

struct Shared {
    peer: Mutex<Peer>,
    /// Something may be due: an ack after a receive, or room in the window.
    wake: Notify,
    origin: Instant,
    session_id: String,
}

impl Shared {
    fn peer(&self) -> MutexGuard<'_, Peer> {
        // Every use is one call into the sans-IO peer; a panic there leaves
        // nothing half-done that another call could see.
        self.peer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.origin + Duration::from_millis(ms)
    }

    fn protocol(&self, source: StreamError) -> PumpError {
        PumpError::Protocol {
            session_id: self.session_id.clone(),
            source,
        }
    }

    fn queue(&self, operation: &'static str, source: QueueError) -> PumpError {
        PumpError::Queue {
            session_id: self.session_id.clone(),
            operation,
            source,
        }
    }
}

/// Retries after transient failures, and gives up once they have lasted
/// [`QUEUE_GIVE_UP`] without a success.
struct Retry {
    delay: Duration,
    failing_since: Option<Instant>,
}

impl Retry {
    fn new() -> Self {
        Self {
            delay: FIRST_RETRY,
            failing_since: None,
        }
    }

    fn succeeded(&mut self) {
        self.delay = FIRST_RETRY;
        self.failing_since = None;
    }

    /// Waits before the next attempt; `Err` once it is time to give up.
    async fn failed(
        &mut self,
        shared: &Shared,
        operation: &'static str,
        error: QueueError,
    ) -> Result<(), PumpError> {
        let since = *self.failing_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= QUEUE_GIVE_UP {
            return Err(shared.queue(operation, error));
        }
        tracing::warn!(
            session_id = shared.session_id,
            operation,
            error = %error,
            retry_in_ms = u64::try_from(self.delay.as_millis()).unwrap_or(u64::MAX),
            "session queue operation failed; retrying"
        );
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(MAX_RETRY);
        Ok(())
    }
}

/// Aborts the receiving task when the pump ends, however it ends.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Receives until the peer's Close (its reason) or a fatal error.
async fn receive_loop(
    shared: Arc<Shared>,
    queue: Arc<dyn SessionQueue>,
    inbound: mpsc::Sender<Body>,
) -> Result<String, PumpError> {
    let mut retry = Retry::new();
    loop {
        let messages = match queue.receive(LONG_POLL_SECONDS).await {
            Ok(m) => {
                retry.succeeded();
                m
            }
            Err(e) => {
                retry.failed(&shared, "receive from", e).await?;
                continue;
            }
        };
        for (body, receipt) in messages {
            let taken = shared.peer().receive(&body);
            // Taken (or refused for good): a redelivery could only be a
            // duplicate, so it goes now.
            delete(&shared, &*queue, &receipt).await?;
            let received = match taken {
                Ok(r) => r,
                // A body that is not a batch at all: whoever wrote it, it
                // carries nothing authentic.
                Err(StreamError::Frame(e)) => {
                    tracing::warn!(session_id = shared.session_id, error = %e, "refused a session message");
                    continue;
                }
                Err(e) => return Err(shared.protocol(e)),
            };
            for e in &received.refused {
                tracing::warn!(session_id = shared.session_id, error = %e, "refused a session frame");
            }
            if received.duplicates > 0 {
                tracing::debug!(
                    session_id = shared.session_id,
                    duplicates = received.duplicates,
                    "dropped duplicate session frames"
                );
            }
            // An ack is due, and acks may have opened the window.
            shared.wake.notify_one();
            for frame in received.delivered {
                let close = match &frame.body {
                    Body::Close { reason } => Some(reason.clone()),
                    _ => None,
                };
                // The caller may have stopped listening; the channel still
                // runs until its end.
                let _ = inbound.send(frame.body).await;
                if let Some(reason) = close {
                    return Ok(reason);
                }
            }
        }
    }
}

async fn delete(shared: &Shared, queue: &dyn SessionQueue, receipt: &str) -> Result<(), PumpError> {
    let mut retry = Retry::new();
    loop {
        match queue.delete(receipt).await {
            Ok(()) => return Ok(()),
            Err(e) => retry.failed(shared, "delete from", e).await?,
        }
    }
}

/// Sends what the peer says is due, until the channel ends.
async fn send_loop(
    shared: Arc<Shared>,
    queue: Arc<dyn SessionQueue>,
    mut outbound: mpsc::Receiver<Body>,
    receiving: JoinHandle<Result<String, PumpError>>,
) -> Result<ChannelEnd, PumpError> {
    let mut receiving = AbortOnDrop(receiving);
    // Set once this end pushed Close: when to stop waiting for its ack.
    let mut closing: Option<Instant> = None;
    let mut abandoned = false;
    // The earliest the next message may go (see SEND_PACE).
    let mut next_send_at: Option<Instant> = None;
    loop {
        let paced = next_send_at.is_some_and(|t| Instant::now() < t);
        if !paced && send_due(&shared, &*queue).await? {
            next_send_at = Some(Instant::now() + SEND_PACE);
        }
        let (all_acked, can_send, resend_at) = {
            let peer = shared.peer();
            (peer.all_acked(), peer.can_send(), peer.next_resend_at())
        };
        if closing.is_some() && all_acked {
            return Ok(ChannelEnd::Closed);
        }
        if abandoned {
            return Ok(ChannelEnd::Abandoned);
        }
        let take = closing.is_none() && can_send;
        let resend_at = resend_at.map(|ms| shared.at(ms));
        tokio::select! {
            body = outbound.recv(), if take => match body {
                Some(body) => {
                    if push(&shared, body)? {
                        closing = Some(Instant::now() + CLOSE_GRACE);
                    } else {
                        // Coalesce what else is ready into the same batch.
                        while shared.peer().can_send() {
                            let Ok(body) = outbound.try_recv() else { break };
                            if push(&shared, body)? {
                                closing = Some(Instant::now() + CLOSE_GRACE);
                                break;
                            }
                        }
                    }
                }
                // Sends what is queued once, then ends.
                None => abandoned = true,
            },
            () = shared.wake.notified() => {}
            () = sleep_until(resend_at), if resend_at.is_some() => {}
            () = sleep_until(next_send_at), if paced => {}
            () = sleep_until(closing), if closing.is_some() => return Ok(ChannelEnd::Closed),
            ended = &mut receiving.0 => {
                return match ended {
                    Ok(Ok(reason)) => {
                        // Acknowledge the Close so the peer stops resending it.
                        send_due(&shared, &*queue).await?;
                        Ok(ChannelEnd::ClosedByPeer(reason))
                    }
                    Ok(Err(e)) => Err(e),
                    Err(join) => Err(shared.queue(
                        "receive from",
                        QueueError(format!("the receiving task stopped: {join}")),
                    )),
                };
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Queues one body; true when it was the Close.
fn push(shared: &Shared, body: Body) -> Result<bool, PumpError> {
    let close = matches!(body, Body::Close { .. });
    shared.peer().push(body).map_err(|e| shared.protocol(e))?;
    Ok(close)
}

/// Sends what is due; whether frames other than an ack went (an ack alone
/// does not start the pace: the next keystroke after it must not wait).
async fn send_due(shared: &Shared, queue: &dyn SessionQueue) -> Result<bool, PumpError> {
    let (frames, bodies) = {
        let now = shared.now_ms();
        let mut peer = shared.peer();
        let frames = peer.has_frames_due(now);
        let bodies = peer.outgoing(now).map_err(|e| shared.protocol(e))?;
        (frames, bodies)
    };
    let sent = frames && !bodies.is_empty();
    for body in bodies {
        let mut retry = Retry::new();
        loop {
            match queue.send(&body).await {
                Ok(()) => break,
                Err(e) => retry.failed(shared, "send to", e).await?,
            }
        }
    }
    Ok(sent)
}

/// Both ends of one session's channel, the client's and the agent's, each
/// pumped over a [`MemoryQueue`] to the other. For tests of what runs at
/// either end.
pub fn memory_pair(session_id: &str, key: SessionKey) -> (ChannelEnds, ChannelEnds) {
    let (to_agent, to_client) = (MemoryQueue::new(), MemoryQueue::new());
    let client = start(
        Peer::new(session_id, Direction::ClientToAgent, key.clone()),
        session_id.into(),
        Arc::clone(&to_client) as Arc<dyn SessionQueue>,
        Arc::clone(&to_agent) as Arc<dyn SessionQueue>,
    );
    let agent = start(
        Peer::new(session_id, Direction::AgentToClient, key),
        session_id.into(),
        to_agent,
        to_client,
    );
    (client, agent)
}

/// A queue in memory with SQS's receive semantics that matter here: long
/// polls, receipt handles, and messages kept until deleted. For tests of
/// anything that runs a pump.
#[derive(Default)]
pub struct MemoryQueue {
    state: Mutex<MemoryState>,
    arrived: Notify,
}

#[derive(Default)]
struct MemoryState {
    queued: VecDeque<String>,
    in_flight: HashMap<String, String>,
    next_receipt: u64,
    sent: usize,
}

impl MemoryQueue {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn state(&self) -> MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts a body on the queue as if someone had sent it.
    pub fn inject(&self, body: impl Into<String>) {
        self.state().queued.push_back(body.into());
        self.arrived.notify_waiters();
        self.arrived.notify_one();
    }

    /// Messages received and not deleted.
    pub fn in_flight(&self) -> usize {
        self.state().in_flight.len()
    }

    /// Messages waiting to be received.
    pub fn queued(&self) -> usize {
        self.state().queued.len()
    }

    /// Bodies ever sent through [`SessionQueue::send`].
    pub fn sent(&self) -> usize {
        self.state().sent
    }

    fn take(&self) -> Vec<(String, String)> {
        let mut state = self.state();
        let mut out = Vec::new();
        // SQS's most per receive.
        while out.len() < 10 {
            let Some(body) = state.queued.pop_front() else {
                break;
            };
            state.next_receipt += 1;
            let receipt = format!("receipt-{}", state.next_receipt);
            state.in_flight.insert(receipt.clone(), body.clone());
            out.push((body, receipt));
        }
        out
    }
}

#[async_trait::async_trait]
impl SessionQueue for MemoryQueue {
    async fn receive(&self, wait_seconds: i32) -> Result<Vec<(String, String)>, QueueError> {
        let deadline =
            Instant::now() + Duration::from_secs(u64::try_from(wait_seconds).unwrap_or(0));
        loop {
            let arrived = self.arrived.notified();
            let taken = self.take();
            if !taken.is_empty() || Instant::now() >= deadline {
                return Ok(taken);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Ok(self.take());
            }
        }
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        match self.state().in_flight.remove(receipt) {
            Some(_) => Ok(()),
            None => Err(QueueError(format!("unknown receipt handle {receipt}"))),
        }
    }

    async fn send(&self, body: &str) -> Result<(), QueueError> {
        self.state().sent += 1;
        self.inject(body);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::frames::{Direction, Frame, SessionKey, encode_batch, encode_frame};

    const SID: &str = "alice-0123456789abcdef0";
    const LIMIT: Duration = Duration::from_secs(10);

    fn key() -> SessionKey {
        SessionKey::from_bytes([7; 32])
    }

    /// A queue that delivers every message twice (SQS is at least once).
    struct Doubling(Arc<MemoryQueue>);

    #[async_trait::async_trait]
    impl SessionQueue for Doubling {
        async fn receive(&self, wait: i32) -> Result<Vec<(String, String)>, QueueError> {
            self.0.receive(wait).await
        }
        async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
            self.0.delete(receipt).await
        }
        async fn send(&self, body: &str) -> Result<(), QueueError> {
            self.0.send(body).await?;
            self.0.send(body).await
        }
    }

    /// A queue whose first `failures` sends fail.
    struct Flaky {
        inner: Arc<MemoryQueue>,
        failures: Mutex<usize>,
    }

    #[async_trait::async_trait]
    impl SessionQueue for Flaky {
        async fn receive(&self, wait: i32) -> Result<Vec<(String, String)>, QueueError> {
            self.inner.receive(wait).await
        }
        async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
            self.inner.delete(receipt).await
        }
        async fn send(&self, body: &str) -> Result<(), QueueError> {
            {
                let mut left = self.failures.lock().unwrap();
                if *left > 0 {
                    *left -= 1;
                    return Err(QueueError("throttled".into()));
                }
            }
            self.inner.send(body).await
        }
    }

    struct Pair {
        client: ChannelEnds,
        agent: ChannelEnds,
        to_agent: Arc<MemoryQueue>,
        to_client: Arc<MemoryQueue>,
    }

    fn pair_over(
        to_agent_send: Arc<dyn SessionQueue>,
        to_client_send: Arc<dyn SessionQueue>,
        to_agent: Arc<MemoryQueue>,
        to_client: Arc<MemoryQueue>,
    ) -> Pair {
        let client = start(
            Peer::new(SID, Direction::ClientToAgent, key()),
            SID.into(),
            to_client.clone(),
            to_agent_send,
        );
        let agent = start(
            Peer::new(SID, Direction::AgentToClient, key()),
            SID.into(),
            to_agent.clone(),
            to_client_send,
        );
        Pair {
            client,
            agent,
            to_agent,
            to_client,
        }
    }

    fn pair() -> Pair {
        let (a, c) = (MemoryQueue::new(), MemoryQueue::new());
        pair_over(a.clone(), c.clone(), a, c)
    }

    async fn next(rx: &mut mpsc::Receiver<Body>) -> Body {
        tokio::time::timeout(LIMIT, rx.recv())
            .await
            .expect("a body within the limit")
            .expect("the channel still open")
    }

    async fn ended(task: JoinHandle<Result<ChannelEnd, PumpError>>) -> ChannelEnd {
        tokio::time::timeout(LIMIT, task)
            .await
            .expect("the pump to end within the limit")
            .expect("the pump task not to panic")
            .expect("the pump to end without error")
    }

    #[tokio::test]
    async fn bodies_cross_both_ways_in_order_and_close_is_acknowledged() {
        let mut p = pair();
        for i in 0..5u8 {
            p.client.outbound.send(Body::Data(vec![i])).await.unwrap();
        }
        p.client
            .outbound
            .send(Body::Resize {
                cols: 100,
                rows: 30,
            })
            .await
            .unwrap();
        for i in 0..5u8 {
            assert_eq!(next(&mut p.agent.inbound).await, Body::Data(vec![i]));
        }
        assert_eq!(
            next(&mut p.agent.inbound).await,
            Body::Resize {
                cols: 100,
                rows: 30
            }
        );
        p.agent
            .outbound
            .send(Body::Data(b"42\r\n".to_vec()))
            .await
            .unwrap();
        assert_eq!(
            next(&mut p.client.inbound).await,
            Body::Data(b"42\r\n".to_vec())
        );

        p.agent
            .outbound
            .send(Body::Close {
                reason: "Exited with status 0".into(),
            })
            .await
            .unwrap();
        assert_eq!(
            next(&mut p.client.inbound).await,
            Body::Close {
                reason: "Exited with status 0".into()
            }
        );
        assert_eq!(
            ended(p.client.task).await,
            ChannelEnd::ClosedByPeer("Exited with status 0".into())
        );
        // Acked by the client before it ended, not cut off by the grace.
        assert_eq!(ended(p.agent.task).await, ChannelEnd::Closed);
        // Everything received was deleted.
        assert_eq!(p.to_agent.in_flight(), 0);
        assert_eq!(p.to_client.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_busy_stream_is_batched_and_a_lone_write_goes_at_once() {
        let mut p = pair();
        // A lone write after a quiet spell goes in a message of its own,
        // without waiting for the pace.
        p.agent
            .outbound
            .send(Body::Data(b"$ ".to_vec()))
            .await
            .unwrap();
        assert_eq!(
            next(&mut p.client.inbound).await,
            Body::Data(b"$ ".to_vec())
        );
        tokio::time::sleep(SEND_PACE * 2).await;
        let before = p.to_client.sent();
        // Two hundred small writes, one every 2 ms (a shell printing).
        let writes = 200u8;
        for i in 0..writes {
            p.agent.outbound.send(Body::Data(vec![i])).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for i in 0..writes {
            assert_eq!(next(&mut p.client.inbound).await, Body::Data(vec![i]));
        }
        // Gathered into batches: far fewer messages than writes (at one per
        // pace, about one for every 25 writes; acks from the client are
        // in the other queue).
        let messages = p.to_client.sent() - before;
        assert!(
            messages < usize::from(writes) / 4,
            "{messages} messages for {writes} writes"
        );
    }

    #[tokio::test]
    async fn duplicated_messages_deliver_each_body_once() {
        let (a, c) = (MemoryQueue::new(), MemoryQueue::new());
        let mut p = pair_over(
            Arc::new(Doubling(a.clone())),
            Arc::new(Doubling(c.clone())),
            a,
            c,
        );
        for i in 0..3u8 {
            p.client.outbound.send(Body::Data(vec![i])).await.unwrap();
            assert_eq!(next(&mut p.agent.inbound).await, Body::Data(vec![i]));
        }
        p.client
            .outbound
            .send(Body::Close {
                reason: "bye".into(),
            })
            .await
            .unwrap();
        // The Close comes next: no duplicate of the data came before it.
        assert_eq!(
            next(&mut p.agent.inbound).await,
            Body::Close {
                reason: "bye".into()
            }
        );
        assert_eq!(
            ended(p.agent.task).await,
            ChannelEnd::ClosedByPeer("bye".into())
        );
        assert_eq!(ended(p.client.task).await, ChannelEnd::Closed);
    }

    #[tokio::test]
    async fn forged_and_garbage_messages_are_refused_and_deleted() {
        let mut p = pair();
        let forged = Frame {
            session_id: SID.into(),
            direction: Direction::ClientToAgent,
            seq: 1,
            ack: 0,
            body: Body::Data(b"rm -rf /\n".to_vec()),
        };
        let wrong_key = SessionKey::from_bytes([9; 32]);
        p.to_agent
            .inject(encode_batch(&[encode_frame(&forged, &wrong_key).unwrap()]).unwrap());
        p.to_agent.inject("not a batch");
        p.client
            .outbound
            .send(Body::Data(b"ok".to_vec()))
            .await
            .unwrap();
        // The first body to arrive is the authentic one, with seq 1.
        assert_eq!(next(&mut p.agent.inbound).await, Body::Data(b"ok".to_vec()));
        drop(p.client.outbound);
        assert_eq!(ended(p.client.task).await, ChannelEnd::Abandoned);
        assert_eq!(p.to_agent.in_flight(), 0);
        assert_eq!(p.to_agent.queued(), 0);
        // Nothing else reached the agent's side.
        assert!(p.agent.inbound.try_recv().is_err());
    }

    #[tokio::test]
    async fn transient_send_failures_are_retried() {
        let (a, c) = (MemoryQueue::new(), MemoryQueue::new());
        let flaky = Arc::new(Flaky {
            inner: a.clone(),
            failures: Mutex::new(2),
        });
        let mut p = pair_over(flaky, c.clone(), a, c);
        p.client
            .outbound
            .send(Body::Data(b"x".to_vec()))
            .await
            .unwrap();
        assert_eq!(next(&mut p.agent.inbound).await, Body::Data(b"x".to_vec()));
    }

    #[tokio::test]
    async fn a_close_never_acknowledged_ends_after_the_grace() {
        // Nobody reads the client's queue.
        let (a, c) = (MemoryQueue::new(), MemoryQueue::new());
        let agent = start(
            Peer::new(SID, Direction::AgentToClient, key()),
            SID.into(),
            a,
            c.clone(),
        );
        agent
            .outbound
            .send(Body::Close {
                reason: "idle".into(),
            })
            .await
            .unwrap();
        assert_eq!(ended(agent.task).await, ChannelEnd::Closed);
        assert!(c.sent() >= 1);
    }
}
