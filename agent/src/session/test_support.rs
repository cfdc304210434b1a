//! What the session tests share (the shell's, the forwarding's and the
//! daemon's): a session's two queues in memory, and a session served in a
//! task with its reports kept, beside the client's end of its channel.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use steward_core::channel::{SessionKind, SessionStart, SessionState, SessionUpdate};
use steward_core::secret::Secret;
use steward_core::sessions::pump::{self, ChannelEnds, MemoryQueue};
use steward_core::sessions::{Direction, Peer, SessionKey};
use tokio::sync::watch;

use super::shell::SessionUser;
use super::{
    Reporter, SessionEnv, SessionError, SessionQueueSource, SessionQueues, StopCause, run,
};
use crate::api::HttpClient;
use crate::wait::{LIMIT, within};

/// The start message of session `sid` on in-memory queues.
pub(crate) fn session_start(
    sid: &str,
    key: &SessionKey,
    document_name: &str,
    kind: SessionKind,
) -> SessionStart {
    SessionStart {
        session_id: sid.into(),
        key: Secret::new(key.expose_base64()),
        to_agent_queue_url: "memory://to-agent".into(),
        to_client_queue_url: "memory://to-client".into(),
        document_name: document_name.into(),
        kind,
        run_as: None,
        shell_profile: String::new(),
        idle_timeout_seconds: 0,
        max_duration_seconds: 0,
        transcript_put_url: None,
    }
}

/// A session's two queues in memory, whatever its start says; counts the
/// sessions that opened them.
pub(crate) struct MemorySource {
    pub to_agent: Arc<MemoryQueue>,
    pub to_client: Arc<MemoryQueue>,
    pub opened: Mutex<usize>,
}

impl MemorySource {
    pub fn new() -> Arc<Self> {
        Arc::new(MemorySource {
            to_agent: MemoryQueue::new(),
            to_client: MemoryQueue::new(),
            opened: Mutex::new(0),
        })
    }
}

impl SessionQueueSource for MemorySource {
    fn open<'a>(
        &'a self,
        _start: &'a SessionStart,
    ) -> BoxFuture<'a, Result<SessionQueues, SessionError>> {
        *self.opened.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        Box::pin(async move {
            Ok(SessionQueues {
                to_agent: self.to_agent.clone(),
                to_client: self.to_client.clone(),
            })
        })
    }
}

/// A session served in a task, and the client's end of its channel.
pub(crate) struct ServedSession {
    pub ends: ChannelEnds,
    pub to_agent: Arc<MemoryQueue>,
    pub reports: Arc<Mutex<Vec<SessionUpdate>>>,
    pub stop: watch::Sender<Option<StopCause>>,
    pub session: tokio::task::JoinHandle<()>,
    pub state_dir: tempfile::TempDir,
}

/// Serves `start` (of session `sid`, sealed with `key`) in a task, as `user`.
pub(crate) fn serve(
    sid: &str,
    key: SessionKey,
    start: SessionStart,
    user: Option<SessionUser>,
) -> ServedSession {
    let source = MemorySource::new();
    let ends = pump::start(
        Peer::new(sid, Direction::ClientToAgent, key),
        sid.into(),
        source.to_client.clone(),
        source.to_agent.clone(),
    );
    let state_dir = tempfile::tempdir().unwrap();
    let env = SessionEnv {
        http: HttpClient::new(),
        state_dir: state_dir.path().to_path_buf(),
        user,
    };
    let reports = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&reports);
    let reporter: Reporter = Arc::new(move |u| kept.lock().unwrap().push(u));
    let (stop, stop_rx) = watch::channel(None);
    let to_agent = source.to_agent.clone();
    let session = tokio::spawn(run(start, env, source, stop_rx, reporter));
    ServedSession {
        ends,
        to_agent,
        reports,
        stop,
        session,
        state_dir,
    }
}

impl ServedSession {
    /// Waits for the session to end; its reports.
    pub async fn ended(self) -> Vec<SessionUpdate> {
        within("the session to end", LIMIT, self.session)
            .await
            .unwrap()
            .unwrap();
        self.reports.lock().unwrap().clone()
    }
}

pub(crate) fn states(reports: &[SessionUpdate]) -> Vec<SessionState> {
    reports.iter().map(|r| r.state).collect()
}
