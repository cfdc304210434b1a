//! Session Manager on the node: a shell (or a command) in a real terminal,
//! served over the session's two queues.
//!
//! - [`channel`]: the session's SQS queues and their credentials.
//! - [`shell`]: the run-as user and the process (terminal or pipes).
//! - [`pty`]: pseudo-terminals and non-blocking descriptors.
//! - `serve`: the loop between the process and the channel, and how a
//!   session ends.
//! - `forward`: port forwarding, TCP connections from the node multiplexed
//!   on the channel, ending as a shell session does.
//!
//! The frames, acks and resends are `steward_core::sessions`; the loop
//! around them is `steward_core::sessions::pump`, shared with the client.

pub mod channel;
mod forward;
pub mod pty;
mod serve;
pub mod shell;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use steward_core::channel::{SessionKind, SessionStart, SessionState, SessionUpdate};
use steward_core::sessions::pump::{self, ChannelEnds};
use steward_core::sessions::{Body, Direction, Peer, SessionKey};
use tokio::sync::watch;

use crate::api::HttpClient;
pub use channel::{SessionQueueSource, SessionQueues, SqsSessionQueues};
use shell::{Launch, Process, SessionUser};

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    User(String),
    #[error("cannot get credentials for the session's queues: {0}")]
    Credentials(String),
    #[error("{0}")]
    Queue(String),
    #[error("the session key is not valid")]
    Key,
    #[error("cannot start the session's process: {0}")]
    Spawn(std::io::Error),
    #[error("this agent was started without access to session queues")]
    NoQueues,
}

/// What ends a session from outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// TerminateSession.
    Terminated,
    /// The agent is shutting down.
    AgentStopped,
}

impl StopCause {
    pub fn reason(self) -> &'static str {
        match self {
            StopCause::Terminated => "terminated (TerminateSession)",
            StopCause::AgentStopped => "agent stopped",
        }
    }
}

/// What a session needs from the agent besides its start message.
#[derive(Clone)]
pub struct SessionEnv {
    pub http: HttpClient,
    /// Where transcripts wait for their upload.
    pub state_dir: PathBuf,
    /// Who the process runs as; `None`: from the start message's run-as
    /// (see [`SessionUser::resolve`]). Tests set it.
    pub user: Option<SessionUser>,
}

/// How a session's state changes leave the agent.
pub type Reporter = Arc<dyn Fn(SessionUpdate) + Send + Sync>;

/// How long the client has to acknowledge the agent's Close, beyond the
/// pump's own grace.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Serves one session from start to end and reports it: Connected once its
/// process runs (port forwarding: once its channel is up), then exactly one
/// Terminated (or one Failed if it never started). `stop` ends it from
/// outside.
pub async fn run(
    start: SessionStart,
    env: SessionEnv,
    queues: Arc<dyn SessionQueueSource>,
    mut stop: watch::Receiver<Option<StopCause>>,
    report: Reporter,
) {
    let session_id = start.session_id.clone();
    let update = |state: SessionState, reason: String| {
        report(SessionUpdate {
            session_id: session_id.clone(),
            state,
            reason,
        })
    };
    let opened = tokio::select! {
        opened = open(&start, &*queues) => opened,
        cause = serve::stopped(&mut stop) => {
            tracing::info!(session_id, reason = cause.reason(), "session stopped before it started");
            update(SessionState::Failed, cause.reason().to_string());
            return;
        }
    };
    let ends = match opened {
        Ok(ends) => ends,
        Err(e) => {
            tracing::warn!(session_id, error = %e, "cannot open the session's channel");
            update(SessionState::Failed, e.to_string());
            return;
        }
    };
    let limits = serve::Limits {
        idle: nonzero_seconds(start.idle_timeout_seconds),
        max: nonzero_seconds(start.max_duration_seconds),
    };
    let launch = match &start.kind {
        SessionKind::PortForward { host, port } => {
            tracing::info!(
                session_id,
                document = start.document_name,
                host,
                port,
                "port forwarding session connected"
            );
            // Nothing to start: connections are made as the client opens streams.
            update(SessionState::Connected, String::new());
            let reason = forward::serve(&session_id, host, *port, ends, limits, stop).await;
            tracing::info!(session_id, reason, "session ended");
            update(SessionState::Terminated, reason);
            return;
        }
        SessionKind::Shell { command: None, .. } => Launch::LoginShell,
        SessionKind::Shell {
            command: Some(command),
            interactive,
        } => Launch::Command {
            command: command.clone(),
            terminal: *interactive,
        },
    };
    let process = match spawn(&start, &env, &launch) {
        Ok(process) => process,
        Err(e) => {
            tracing::warn!(session_id, error = %e, "cannot start the session");
            // The client learns why from the channel too.
            close_channel(ends, e.to_string()).await;
            update(SessionState::Failed, e.to_string());
            return;
        }
    };
    tracing::info!(
        session_id,
        document = start.document_name,
        "session connected"
    );
    update(SessionState::Connected, String::new());
    let transcript = match &start.transcript_put_url {
        Some(_) => serve::Transcript::create(&env.state_dir, &session_id).await,
        None => None,
    };
    let profile = match launch {
        Launch::LoginShell => start.shell_profile.as_str(),
        Launch::Command { .. } => "",
    };
    let (reason, transcript) = serve::serve(
        &session_id,
        process,
        ends,
        limits,
        profile,
        stop,
        transcript,
    )
    .await;
    tracing::info!(session_id, reason, "session ended");
    update(SessionState::Terminated, reason);
    if let (Some(url), Some(transcript)) = (&start.transcript_put_url, transcript) {
        transcript.upload(&env.http, url, &session_id).await;
    }
}

fn nonzero_seconds(s: u64) -> Option<Duration> {
    (s > 0).then(|| Duration::from_secs(s))
}

/// Opens the session's queues and starts the pump.
async fn open(
    start: &SessionStart,
    queues: &dyn SessionQueueSource,
) -> Result<ChannelEnds, SessionError> {
    let key = SessionKey::from_base64(start.key.expose()).map_err(|_| SessionError::Key)?;
    let SessionQueues {
        to_agent,
        to_client,
    } = queues.open(start).await?;
    Ok(pump::start(
        Peer::new(&start.session_id, Direction::AgentToClient, key),
        start.session_id.clone(),
        to_agent,
        to_client,
    ))
}

fn spawn(start: &SessionStart, env: &SessionEnv, launch: &Launch) -> Result<Process, SessionError> {
    let user = match &env.user {
        Some(user) => user.clone(),
        None => SessionUser::resolve(start.run_as.as_deref())?,
    };
    Process::spawn(&user, launch).map_err(SessionError::Spawn)
}

/// Sends Close and waits (briefly) for the client to acknowledge it.
async fn close_channel(ends: ChannelEnds, reason: String) {
    let ChannelEnds { outbound, task, .. } = ends;
    if outbound
        .send_timeout(Body::Close { reason }, CLOSE_WAIT)
        .await
        .is_ok()
    {
        drop(outbound);
        let _ = tokio::time::timeout(pump::CLOSE_GRACE + CLOSE_WAIT, task).await;
    }
}

#[cfg(test)]
mod forward_tests;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
