//! Port forwarding on the node: each stream the client opens becomes one
//! TCP connection from the node to the session's host and port, relayed
//! both ways within the credit each receiver gave. Every stream has a task
//! of its own (a slow socket must not hold up the others); received bodies
//! reach them through unbounded queues, which the credit bounds. The
//! session ends as a shell session does, on the first of: idle timeout,
//! maximum duration, a stop from outside, the client's Close, the
//! channel's failure, or a protocol error in the stream frames.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use steward_core::sessions::flow::{FlowError, Streams};
use steward_core::sessions::frames::MAX_PAYLOAD;
use steward_core::sessions::pump::ChannelEnds;
use steward_core::sessions::{Body, Direction};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::StopCause;
use super::serve::{
    Activity, Ending, Limits, channel_gone, finish_channel, max_reached, sleep_until, stopped,
};

/// How long a connection to the forwarded host may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Credit owed to the client is granted once this much has piled up (or
/// while the stream is still this small): one grant per few frames, not
/// one per write.
const GRANT_BATCH: u64 = 32 * 1024;

/// What the client sent on one stream, for its task.
enum Incoming {
    Data(Vec<u8>),
    /// The client sends no more on this stream.
    Close,
}

/// The session's end of one stream, kept by the loop that dispatches the
/// client's bodies.
struct StreamHandle {
    incoming: mpsc::UnboundedSender<Incoming>,
    /// Woken when the client grants credit.
    credit: Arc<Notify>,
}

/// What the stream tasks share.
struct Forwarder {
    session_id: String,
    host: String,
    port: u16,
    streams: Mutex<Streams>,
    outbound: mpsc::Sender<Body>,
    activity: Arc<Activity>,
}

/// Serves a port forwarding session until it ends; then closes its
/// connections, sends the client Close (unless the client closed) and waits
/// briefly for its ack. The reason it ended.
pub(super) async fn serve(
    session_id: &str,
    host: &str,
    port: u16,
    ends: ChannelEnds,
    limits: Limits,
    mut stop: watch::Receiver<Option<StopCause>>,
) -> String {
    let ChannelEnds {
        outbound,
        mut inbound,
        mut task,
    } = ends;
    let activity = Arc::new(Activity::new());
    let forwarder = Arc::new(Forwarder {
        session_id: session_id.to_string(),
        host: host.to_string(),
        port,
        streams: Mutex::new(Streams::new(Direction::AgentToClient)),
        outbound: outbound.clone(),
        activity: Arc::clone(&activity),
    });
    let mut handles: HashMap<u32, StreamHandle> = HashMap::new();
    let mut tasks = JoinSet::new();
    let max_at = limits.max.map(|d| Instant::now() + d);
    let ending = loop {
        let idle_at = limits.idle_at(&activity);
        tokio::select! {
            body = inbound.recv() => match body {
                Some(body) => {
                    if let Some(ending) = dispatch(&forwarder, &mut handles, &mut tasks, body) {
                        break ending;
                    }
                }
                None => break channel_gone(session_id, &mut task).await,
            },
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => match joined {
                // Both sides closed it: nothing more is dispatched to it.
                Ok(stream) => {
                    handles.remove(&stream);
                }
                Err(e) => {
                    tracing::warn!(session_id, error = %e, "a forwarded connection's task failed");
                }
            },
            () = sleep_until(idle_at), if idle_at.is_some() => {
                if let Some(ending) = limits.idle_ending(&activity) {
                    break ending;
                }
            }
            () = sleep_until(max_at), if max_at.is_some() => break max_reached(limits),
            cause = stopped(&mut stop) => break Ending::close(cause.reason()),
        }
    };
    // The connections end with the session; nothing more goes out after
    // its Close.
    tasks.shutdown().await;
    drop(handles);
    drop(forwarder);
    finish_channel(session_id, &ending, outbound, task).await;
    ending.reason
}

/// Takes one body from the client: `Some` when it ends the session.
fn dispatch(
    forwarder: &Arc<Forwarder>,
    handles: &mut HashMap<u32, StreamHandle>,
    tasks: &mut JoinSet<u32>,
    body: Body,
) -> Option<Ending> {
    let session_id = forwarder.session_id.as_str();
    if let Err(e) = forwarder.streams().on_receive(&body) {
        tracing::warn!(session_id, error = %e, "the client broke the stream protocol");
        return Some(Ending::close(format!("protocol error: {e}")));
    }
    match body {
        Body::StreamOpen { stream } => {
            let (incoming, queued) = mpsc::unbounded_channel();
            let credit = Arc::new(Notify::new());
            tasks.spawn(Arc::clone(forwarder).forward(stream, queued, Arc::clone(&credit)));
            handles.insert(stream, StreamHandle { incoming, credit });
        }
        Body::StreamData { stream, data } => {
            forwarder.activity.touch();
            // Gone only if its task failed: the data has nowhere to go.
            if let Some(handle) = handles.get(&stream) {
                let _ = handle.incoming.send(Incoming::Data(data));
            }
        }
        Body::StreamClose { stream } => {
            // The handle stays: the node's side may still need the
            // client's credit.
            if let Some(handle) = handles.get(&stream) {
                let _ = handle.incoming.send(Incoming::Close);
            }
        }
        Body::WindowUpdate { stream, .. } => {
            if let Some(handle) = handles.get(&stream) {
                handle.credit.notify_one();
            }
        }
        Body::Close { .. } => {
            return Some(Ending {
                reason: "closed by the client".into(),
                send_close: false,
            });
        }
        Body::Data(_) | Body::Resize { .. } | Body::Ack => {
            tracing::debug!(
                session_id,
                "ignoring a terminal frame in a port forwarding session"
            );
        }
    }
    None
}

impl Forwarder {
    fn streams(&self) -> MutexGuard<'_, Streams> {
        // Each use is one call into the sans-IO stream state; a panic there
        // leaves nothing half-done.
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One stream from its open to both its closes: connects, then relays
    /// both ways. A failed connect closes the stream at once; what the
    /// client still sends is then taken and dropped. Returns the stream.
    async fn forward(
        self: Arc<Self>,
        stream: u32,
        mut incoming: mpsc::UnboundedReceiver<Incoming>,
        credit: Arc<Notify>,
    ) -> u32 {
        let session_id = self.session_id.as_str();
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        let socket = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(socket)) => Some(socket),
            Ok(Err(e)) => {
                tracing::info!(session_id, stream, host = self.host, port = self.port, error = %e, "cannot connect a forwarded connection");
                None
            }
            Err(_) => {
                tracing::info!(
                    session_id,
                    stream,
                    host = self.host,
                    port = self.port,
                    timeout_seconds = CONNECT_TIMEOUT.as_secs(),
                    "a forwarded connection did not connect in time"
                );
                None
            }
        };
        match socket {
            Some(socket) => {
                tracing::debug!(session_id, stream, "forwarded connection open");
                // Forwarded traffic is often interactive: small writes go at once.
                if let Err(e) = socket.set_nodelay(true) {
                    tracing::debug!(session_id, stream, error = %e, "cannot set TCP_NODELAY");
                }
                let (read, write) = socket.into_split();
                tokio::join!(
                    self.socket_to_client(stream, read, &credit),
                    self.client_to_socket(stream, Some(write), &mut incoming),
                );
                tracing::debug!(session_id, stream, "forwarded connection finished");
            }
            None => {
                self.close(stream).await;
                self.client_to_socket(stream, None, &mut incoming).await;
            }
        }
        stream
    }

    /// Reads the socket into StreamData, never beyond the client's credit,
    /// until the socket's end; then StreamClose.
    async fn socket_to_client(&self, stream: u32, mut read: OwnedReadHalf, credit: &Notify) {
        let session_id = self.session_id.as_str();
        let mut buf = vec![0u8; MAX_PAYLOAD];
        loop {
            // Only this task spends the stream's credit: what it sees now
            // can only grow before it is spent.
            let Some(available) = self.streams().send_credit(stream) else {
                return;
            };
            if available == 0 {
                credit.notified().await;
                continue;
            }
            let want = usize::try_from(available)
                .unwrap_or(MAX_PAYLOAD)
                .min(MAX_PAYLOAD);
            let n = match read.read(&mut buf[..want]).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!(session_id, stream, error = %e, "cannot read a forwarded connection");
                    break;
                }
            };
            self.activity.touch();
            let body = match self.streams().send_data(stream, buf[..n].to_vec()) {
                Ok(body) => body,
                Err(e) => {
                    tracing::warn!(session_id, stream, error = %e, "cannot send a forwarded connection's data");
                    return;
                }
            };
            if self.outbound.send(body).await.is_err() {
                // The channel is gone: the session is ending.
                return;
            }
        }
        self.close(stream).await;
    }

    /// Writes the client's data to the socket and grants the client credit
    /// for it, until the client's StreamClose (then the socket's write half
    /// shuts down). Without a socket (a failed connect, a broken write) the
    /// data is dropped but still granted: the client must not stall on a
    /// stream going nowhere.
    async fn client_to_socket(
        &self,
        stream: u32,
        mut write: Option<OwnedWriteHalf>,
        incoming: &mut mpsc::UnboundedReceiver<Incoming>,
    ) {
        let session_id = self.session_id.as_str();
        let mut received: u64 = 0;
        let mut owed: u64 = 0;
        while let Some(item) = incoming.recv().await {
            let data = match item {
                Incoming::Data(data) => data,
                Incoming::Close => break,
            };
            if let Some(socket) = write.as_mut()
                && let Err(e) = socket.write_all(&data).await
            {
                tracing::debug!(session_id, stream, error = %e, "cannot write a forwarded connection; dropping what follows");
                write = None;
            }
            let len = data.len() as u64;
            received += len;
            owed += len;
            if owed >= GRANT_BATCH || received <= GRANT_BATCH {
                self.grant(stream, owed).await;
                owed = 0;
            }
        }
        if let Some(mut socket) = write
            && let Err(e) = socket.shutdown().await
        {
            tracing::debug!(session_id, stream, error = %e, "cannot shut down a forwarded connection's write side");
        }
    }

    async fn grant(&self, stream: u32, bytes: u64) {
        let session_id = self.session_id.as_str();
        // At most one frame plus one batch: always fits.
        let Ok(credit) = u32::try_from(bytes) else {
            tracing::warn!(session_id, stream, bytes, "credit to grant out of range");
            return;
        };
        let granted = self.streams().grant(stream, credit);
        match granted {
            Ok(body) => {
                // A gone channel ends the session; nothing to do here.
                let _ = self.outbound.send(body).await;
            }
            // Both sides closed it meanwhile: the client sends no more on it.
            Err(FlowError::UnknownStream(_)) => {}
            Err(e) => {
                tracing::warn!(session_id, stream, error = %e, "cannot grant credit on a forwarded connection")
            }
        }
    }

    /// Sends StreamClose: the node sends no more on `stream`.
    async fn close(&self, stream: u32) {
        let closed = self.streams().close(stream);
        match closed {
            Ok(body) => {
                // A gone channel ends the session; nothing to do here.
                let _ = self.outbound.send(body).await;
            }
            Err(e) => {
                tracing::warn!(session_id = self.session_id, stream, error = %e, "cannot close a forwarded connection")
            }
        }
    }
}
