//! `steward session forward`: port forwarding over a session. Local TCP
//! connections to 127.0.0.1 become streams of the one session (odd ids, the
//! client's), each relayed to host:port by the node's agent; either
//! direction sends only within the credit its receiver granted, so one slow
//! connection holds back only itself.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::net::Ipv4Addr;
use std::sync::Arc;

use clap::Args;
use serde_json::json;
use steward_core::sessions::flow::{FlowError, INITIAL_STREAM_CREDIT, Streams};
use steward_core::sessions::frames::MAX_PAYLOAD;
use steward_core::sessions::pump::{CLOSE_GRACE, ChannelEnd, ChannelEnds, PumpError};
use steward_core::sessions::{Body, Direction};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};

use super::{Channel, exiting_line_plain, open_channel, start_session, starting_line};
use super::{terminate_after, terminate_session};
use crate::commands::Ctx;
use crate::error::{CliError, Exit};
use crate::render::emit_json;

/// SSM's document for a port on the node itself.
pub const PORT_DOCUMENT: &str = "AWS-StartPortForwardingSession";
/// SSM's document for a port on a host the node reaches.
pub const REMOTE_HOST_DOCUMENT: &str = "AWS-StartPortForwardingSessionToRemoteHost";

/// Bytes written to a local connection that may go ungranted before a
/// `WindowUpdate` is sent: small grants are batched.
const GRANT_BATCH: u64 = 32 * 1024;
/// Bodies waiting for the channel before connections are no longer read.
const MAX_PENDING: usize = 64;
/// Events from the connections' tasks waiting for the relay loop.
const EVENTS_AHEAD: usize = 64;

#[derive(Debug, Args)]
pub struct SessionForwardArgs {
    /// The node (mi-…, or i-… for an EC2 node).
    pub target: String,
    /// The port to reach: on the node, or on --host.
    #[arg(long)]
    pub remote_port: u16,
    /// The local port to listen on (127.0.0.1); 0 or absent: any free port,
    /// printed once open.
    #[arg(long)]
    pub local_port: Option<u16>,
    /// A host the node reaches (name or address): forward to it rather than
    /// to the node itself.
    #[arg(long)]
    pub host: Option<String>,
    /// Why the session is started (recorded with it).
    #[arg(long)]
    pub reason: Option<String>,
}

impl SessionForwardArgs {
    /// The Session document and its parameters, for the local port actually
    /// listened on.
    pub fn request(&self, local_port: u16) -> (&'static str, BTreeMap<String, Vec<String>>) {
        let mut parameters = BTreeMap::from([
            ("portNumber".to_string(), vec![self.remote_port.to_string()]),
            ("localPortNumber".to_string(), vec![local_port.to_string()]),
        ]);
        match &self.host {
            Some(host) => {
                parameters.insert("host".into(), vec![host.clone()]);
                (REMOTE_HOST_DOCUMENT, parameters)
            }
            None => (PORT_DOCUMENT, parameters),
        }
    }
}

/// How forwarding ended, when it ended as a session may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// The agent closed the session (its reason).
    AgentClosed(String),
    /// A signal asked this process to stop (its name).
    Stopped(&'static str),
}

impl Finish {
    /// Whether this client must still end the session, and the exit status.
    /// Ctrl-C is how forwarding is normally stopped, hence success, as SSM's
    /// plugin does; other signals let scripts tell.
    pub fn outcome(&self) -> (bool, Exit) {
        match self {
            Finish::AgentClosed(_) => (false, Exit::Ok),
            Finish::Stopped("SIGINT") => (true, Exit::Ok),
            Finish::Stopped(_) => (true, Exit::CommandFailed),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("the agent broke the stream rules ({0}); the session was closed")]
    Protocol(FlowError),
    #[error("the agent opened stream {0}; forwarded connections are the client's to open")]
    AgentOpened(u32),
    #[error("the session's channel failed: {0}")]
    Channel(#[from] PumpError),
    #[error("the session's channel ended without the agent closing the session ({0:?})")]
    Ended(ChannelEnd),
    #[error("the session's channel stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("cannot write to standard error: {0}")]
    Log(std::io::Error),
}

pub async fn forward(ctx: &Ctx, args: &SessionForwardArgs) -> Result<Exit, CliError> {
    let requested = args.local_port.unwrap_or(0);
    // Listen before the session exists: a port in use costs no session.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, requested))
        .await
        .map_err(|e| {
            CliError::Usage(format!(
                "cannot listen on 127.0.0.1:{requested}: {e}; choose another --local-port, or leave it out for any free port"
            ))
        })?;
    let local_port = listener
        .local_addr()
        .map_err(|e| CliError::Other {
            operation: "session forward",
            detail: format!("cannot read the listening port: {e}"),
        })?
        .port();

    let (document, parameters) = args.request(local_port);
    let (session_id, token) = start_session(
        ctx,
        &args.target,
        Some(document),
        parameters,
        args.reason.as_deref(),
    )
    .await?;
    eprint!("{}", starting_line(&session_id));
    let Channel { ends, refresher } = open_channel(ctx, &session_id, token).await?;
    // Only now: until the session exists, Ctrl-C simply stops the process.
    let (stops, signals) = match listen_for_stops() {
        Ok(s) => s,
        Err(e) => {
            refresher.abort();
            let error = CliError::Other {
                operation: "session forward",
                detail: format!("cannot listen for signals: {e}"),
            };
            return Err(terminate_after(ctx, &session_id, error).await);
        }
    };
    eprintln!("Port {local_port} opened for sessionId {session_id}.");
    eprintln!("Waiting for connections...");
    if ctx.json {
        let mut shown = json!({
            "SessionId": session_id,
            "Target": args.target,
            "LocalPort": local_port,
            "RemotePort": args.remote_port,
        });
        if let Some(host) = &args.host {
            shown["Host"] = json!(host);
        }
        if let Err(e) = emit_json(&mut std::io::stdout(), &shown) {
            refresher.abort();
            signals.abort();
            return Err(terminate_after(ctx, &session_id, e).await);
        }
    }

    let mut log = std::io::stderr();
    let finished = relay(ends, listener, stops, &session_id, &mut log).await;
    refresher.abort();
    signals.abort();

    match finished {
        Ok(finish) => {
            let (terminate, exit) = finish.outcome();
            if terminate {
                terminate_session(ctx, &session_id).await?;
            }
            eprint!("{}", exiting_line_plain(&session_id));
            Ok(exit)
        }
        Err(e) => Err(terminate_after(
            ctx,
            &session_id,
            CliError::Other {
                operation: "session forward",
                detail: e.to_string(),
            },
        )
        .await),
    }
}

/// The signals that end forwarding: Ctrl-C (SIGINT), SIGTERM, SIGHUP.
fn listen_for_stops() -> std::io::Result<(mpsc::Receiver<&'static str>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(4);
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let task = tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                Some(()) = interrupt.recv() => "SIGINT",
                Some(()) = term.recv() => "SIGTERM",
                Some(()) = hangup.recv() => "SIGHUP",
                else => return,
            };
            if tx.send(name).await.is_err() {
                return;
            }
        }
    });
    Ok((rx, task))
}

/// What a connection's tasks tell the relay loop.
#[derive(Debug)]
enum Event {
    /// Bytes read from the local connection, within the stream's credit.
    Read { stream: u32, data: Vec<u8> },
    /// The local connection sends no more (its error, if it failed).
    ReadEnded {
        stream: u32,
        error: Option<std::io::Error>,
    },
    /// Bytes of the agent's written to the local connection.
    Written { stream: u32, bytes: usize },
}

/// What the relay loop tells a connection's writer.
enum ToWriter {
    Data(Vec<u8>),
    /// The agent sends no more: shut down the connection's write half.
    Close,
}

/// The relay loop's view of one forwarded connection.
struct Connection {
    to_writer: mpsc::UnboundedSender<ToWriter>,
    /// What the stream may still send; the reader takes from it before it
    /// reads, the agent's WindowUpdates add to it.
    send_credit: Arc<Semaphore>,
    /// Bytes received from the agent so far.
    received: u64,
    /// Bytes written to the connection and not yet granted back.
    owed: u64,
    local_closed: bool,
    peer_closed: bool,
}

/// Serves local connections over the session until it ends: the agent's
/// Close, a stop signal, or a failure. `log` gets the plugin's lines for
/// each connection. The listener is closed, and every connection with it,
/// when this returns.
pub async fn relay(
    ends: ChannelEnds,
    listener: TcpListener,
    mut stops: mpsc::Receiver<&'static str>,
    session_id: &str,
    log: &mut (dyn Write + Send),
) -> Result<Finish, ForwardError> {
    let ChannelEnds {
        outbound,
        mut inbound,
        mut task,
    } = ends;
    let mut streams = Streams::new(Direction::ClientToAgent);
    let mut connections: HashMap<u32, Connection> = HashMap::new();
    let mut pending: VecDeque<Body> = VecDeque::new();
    let (events_tx, mut events) = mpsc::channel::<Event>(EVENTS_AHEAD);
    // Dropped on return: every connection's tasks, and so its socket, end.
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut stops_open = true;

    let stop = loop {
        // Connections are read (and accepted) only while the channel keeps
        // up; the agent's bodies are always taken, so that acks keep flowing.
        let take_more = pending.len() < MAX_PENDING;
        tokio::select! {
            permit = outbound.reserve(), if !pending.is_empty() => match permit {
                Ok(permit) => {
                    if let Some(body) = pending.pop_front() {
                        permit.send(body);
                    }
                }
                // The pump stopped taking bodies: it ended.
                Err(_) => break Stop::ChannelGone,
            },
            body = inbound.recv() => {
                let Some(body) = body else {
                    break Stop::ChannelGone;
                };
                if let Err(e) = streams.on_receive(&body) {
                    break Stop::Failed(ForwardError::Protocol(e));
                }
                match body {
                    Body::StreamOpen { stream } => {
                        break Stop::Failed(ForwardError::AgentOpened(stream));
                    }
                    Body::StreamData { stream, data } => {
                        if let Some(c) = connections.get_mut(&stream) {
                            c.received += data.len() as u64;
                            // The writer takes everything until Close.
                            let _queued = c.to_writer.send(ToWriter::Data(data));
                        }
                    }
                    Body::StreamClose { stream } => {
                        if let Some(c) = connections.get_mut(&stream) {
                            c.peer_closed = true;
                            let _queued = c.to_writer.send(ToWriter::Close);
                            if c.local_closed {
                                connections.remove(&stream);
                            }
                        }
                    }
                    Body::WindowUpdate { stream, credit } => {
                        if let Some(c) = connections.get(&stream) {
                            c.send_credit.add_permits(credit as usize);
                        }
                    }
                    Body::Close { reason } => break Stop::AgentClosed(reason),
                    // Nothing else is for a forwarding client.
                    Body::Data(_) | Body::Resize { .. } | Body::Ack => {}
                }
            }
            accepted = listener.accept(), if take_more => match accepted {
                Ok((socket, _peer)) => {
                    let (stream, open) = match streams.open() {
                        Ok(opened) => opened,
                        Err(e) => {
                            // The connection is dropped: closed at once.
                            writeln!(log, "Connection refused for session [{session_id}]: {e}")
                                .map_err(ForwardError::Log)?;
                            continue;
                        }
                    };
                    writeln!(log, "Connection accepted for session [{session_id}]")
                        .map_err(ForwardError::Log)?;
                    pending.push_back(open);
                    // Small writes (a keystroke, a query) must go at once.
                    let _nodelay = socket.set_nodelay(true);
                    let (read_half, write_half) = socket.into_split();
                    let send_credit = Arc::new(Semaphore::new(INITIAL_STREAM_CREDIT as usize));
                    let (to_writer, writer_rx) = mpsc::unbounded_channel();
                    let reader = read_local(
                        stream,
                        read_half,
                        Arc::clone(&send_credit),
                        events_tx.clone(),
                    );
                    tasks.spawn(reader);
                    tasks.spawn(write_local(stream, write_half, writer_rx, events_tx.clone()));
                    connections.insert(stream, Connection {
                        to_writer,
                        send_credit,
                        received: 0,
                        owed: 0,
                        local_closed: false,
                        peer_closed: false,
                    });
                }
                Err(e) => {
                    // Out of descriptors, most likely: the connections that
                    // are open go on; a pause keeps this from spinning.
                    writeln!(log, "Cannot accept a connection: {e}").map_err(ForwardError::Log)?;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            event = events.recv(), if take_more => {
                // The loop holds a sender: the channel never ends.
                let Some(event) = event else { continue };
                let handled = on_event(
                    event,
                    &mut streams,
                    &mut connections,
                    &mut pending,
                    session_id,
                    log,
                );
                if let Err(e) = handled {
                    break Stop::Failed(e);
                }
            }
            stop = stops.recv(), if stops_open => match stop {
                Some(name) => return Ok(Finish::Stopped(name)),
                None => stops_open = false,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    };

    let failure = match stop {
        Stop::AgentClosed(reason) => {
            // Let the pump acknowledge the Close, so that the agent stops
            // resending it; the session is over whatever comes of it.
            drop(outbound);
            let _acknowledged = tokio::time::timeout(CLOSE_GRACE, &mut task).await;
            return Ok(Finish::AgentClosed(reason));
        }
        Stop::ChannelGone => return channel_gone(task).await,
        Stop::Failed(failure) => failure,
    };
    // A protocol error: tell the agent why the session ends, then give the
    // pump its grace to deliver that.
    let reason = failure.to_string();
    tokio::spawn(async move { while inbound.recv().await.is_some() {} });
    let closing = async {
        for body in pending.into_iter().chain([Body::Close { reason }]) {
            if outbound.send(body).await.is_err() {
                break;
            }
        }
        drop(outbound);
        task.await
    };
    let _closed = tokio::time::timeout(CLOSE_GRACE * 2, closing).await;
    Err(failure)
}

/// Why the relay loop let go of the channel's ends.
enum Stop {
    AgentClosed(String),
    ChannelGone,
    Failed(ForwardError),
}

/// The relay loop's part for one event of a connection's tasks.
fn on_event(
    event: Event,
    streams: &mut Streams,
    connections: &mut HashMap<u32, Connection>,
    pending: &mut VecDeque<Body>,
    session_id: &str,
    log: &mut (dyn Write + Send),
) -> Result<(), ForwardError> {
    match event {
        Event::Read { stream, data } => {
            // The reader took the credit before reading: this cannot exceed it.
            pending.push_back(
                streams
                    .send_data(stream, data)
                    .map_err(ForwardError::Protocol)?,
            );
        }
        Event::ReadEnded { stream, error } => {
            if let Some(e) = error {
                writeln!(log, "Connection error for session [{session_id}]: {e}")
                    .map_err(ForwardError::Log)?;
            }
            pending.push_back(streams.close(stream).map_err(ForwardError::Protocol)?);
            if let Some(c) = connections.get_mut(&stream) {
                c.local_closed = true;
                if c.peer_closed {
                    connections.remove(&stream);
                }
            }
        }
        Event::Written { stream, bytes } => {
            let Some(c) = connections.get_mut(&stream) else {
                return Ok(());
            };
            c.owed += bytes as u64;
            // After the agent's close no more comes: nothing to grant.
            if c.peer_closed || (c.owed < GRANT_BATCH && c.received >= GRANT_BATCH) {
                return Ok(());
            }
            let credit = u32::try_from(c.owed).unwrap_or(u32::MAX);
            pending.push_back(
                streams
                    .grant(stream, credit)
                    .map_err(ForwardError::Protocol)?,
            );
            c.owed -= u64::from(credit);
        }
    }
    Ok(())
}

/// Why the pump ended, once its ends are gone.
async fn channel_gone(
    task: JoinHandle<Result<ChannelEnd, PumpError>>,
) -> Result<Finish, ForwardError> {
    match task.await? {
        Ok(ChannelEnd::ClosedByPeer(reason)) => Ok(Finish::AgentClosed(reason)),
        Ok(other) => Err(ForwardError::Ended(other)),
        Err(e) => Err(ForwardError::Channel(e)),
    }
}

/// Reads a local connection into the stream: never more than the stream's
/// credit, at most a frame's payload at once.
async fn read_local(
    stream: u32,
    mut socket: OwnedReadHalf,
    send_credit: Arc<Semaphore>,
    events: mpsc::Sender<Event>,
) {
    let mut buf = vec![0u8; MAX_PAYLOAD];
    loop {
        // Waits while the agent has granted nothing more.
        let Ok(first) = send_credit.acquire().await else {
            return;
        };
        first.forget();
        // Only this task takes credit: what is available stays available.
        let allowed = (1 + send_credit.available_permits()).min(MAX_PAYLOAD);
        let event = match socket.read(&mut buf[..allowed]).await {
            Ok(0) => Event::ReadEnded {
                stream,
                error: None,
            },
            Ok(n) => {
                if n > 1 {
                    let Ok(rest) = u32::try_from(n - 1) else {
                        return;
                    };
                    match send_credit.try_acquire_many(rest) {
                        Ok(taken) => taken.forget(),
                        Err(_) => return,
                    }
                }
                Event::Read {
                    stream,
                    data: buf[..n].to_vec(),
                }
            }
            Err(e) => Event::ReadEnded {
                stream,
                error: Some(e),
            },
        };
        let last = matches!(event, Event::ReadEnded { .. });
        if events.send(event).await.is_err() || last {
            return;
        }
    }
}

/// Writes the agent's bytes to a local connection, and says how many were
/// written so that they can be granted back.
async fn write_local(
    stream: u32,
    mut socket: OwnedWriteHalf,
    mut from_relay: mpsc::UnboundedReceiver<ToWriter>,
    events: mpsc::Sender<Event>,
) {
    let mut broken = false;
    while let Some(message) = from_relay.recv().await {
        match message {
            ToWriter::Data(data) => {
                // A connection that went away takes nothing more, but the
                // credit is still given back: the agent must not stall on it.
                // Its reading half sees the failure too and ends the stream.
                if !broken && socket.write_all(&data).await.is_err() {
                    broken = true;
                }
                let written = Event::Written {
                    stream,
                    bytes: data.len(),
                };
                if events.send(written).await.is_err() {
                    return;
                }
            }
            ToWriter::Close => {
                // Its peer sees the end of the data; it may still send. A
                // connection already gone needs no shutdown.
                let _shut = socket.shutdown().await;
                return;
            }
        }
    }
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
