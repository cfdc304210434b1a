//! The daemon: one [`Agent`] per node, in four roles, each in its module:
//!
//! - `intake`: long-polls the node queue, verifies, refuses replays,
//!   journals each message and decides what it does.
//! - `execution`: runs a command's steps, cancels it, stops them all.
//! - `reporting`: the masking gate every outgoing message passes, the
//!   spool and its sender, heartbeats.
//! - `recovery`: at start, what a crash left unfinished.
//! - sessions (here): Session Manager sessions, each in its own task
//!   ([`crate::session`]), by session id.
//!
//! Shared by them: `update` (one constructor per kind of invocation update),
//! `Agent::outgoing` (the one masking gate: nothing is spooled or sent
//! without it) and `Agent::finish` (spool the final report, then journal).
//!
//! [`Agent::run`] owns the life: recover, start the loops, and on shutdown
//! stop the commands and the sessions and join the loops.
//!
//! # Lock order
//!
//! The agent's mutexes, in the only order they may be taken:
//!
//! 1. `journal` — held while a verified message is acted on (deciding and
//!    recording are one step) and while a final report is spooled and
//!    journaled (`finish`, in `reporting`).
//! 2. `running` — the running commands' stop senders.
//! 3. `tasks` — the commands' tasks.
//! 4. `sessions` — the running sessions' stop senders.
//! 5. `session_tasks` — the sessions' tasks.
//! 6. `secrets` — the SecureString values, by command.
//! 7. `spool` — the spooled reports.
//!
//! A lock may be taken while holding only locks above it. Only `journal`
//! is ever held while another is taken: `running`, `tasks`, `sessions`,
//! `session_tasks`, `secrets` and `spool` are held for one map or file
//! operation each. No guard is held across an `.await` (they are std
//! mutexes).

mod execution;
mod intake;
mod inventory;
mod recovery;
mod reporting;
mod update;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use steward_core::channel::{
    DownlinkVerifier, NodeKey, SessionStart, SessionState, SessionUpdate, Uplink,
};
use steward_core::clock::now_epoch;
use steward_core::secret::Secret;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::api::HttpClient;
use crate::journal::Journal;
use crate::patching::PatchEnv;
use crate::platform::Platform;
use crate::queue::{IngestQueue, NodeQueue};
use crate::runner::Stop;
use crate::secure_parameters::ParameterSource;
use crate::session::shell::SessionUser;
use crate::session::{Reporter, SessionEnv, SessionError, SessionQueueSource, StopCause};
use crate::shutdown::Shutdown;
use crate::spool::Spool;

pub use update::RESTARTED_STDERR;

pub struct Agent<Q: NodeQueue, I: IngestQueue> {
    node_id: String,
    key: Arc<NodeKey>,
    verifier: DownlinkVerifier,
    state_dir: PathBuf,
    node_queue: Q,
    ingest: I,
    http: HttpClient,
    platform: Platform,
    parameters: Option<Arc<dyn ParameterSource>>,
    patch: PatchEnv,
    progress_grace: Duration,
    // The mutexes, in lock order (see the module doc).
    journal: Mutex<Journal>,
    running: Mutex<HashMap<String, watch::Sender<Option<Stop>>>>,
    tasks: Mutex<JoinSet<()>>,
    sessions: Mutex<HashMap<String, watch::Sender<Option<StopCause>>>>,
    session_tasks: Mutex<JoinSet<()>>,
    /// Where sessions' queues come from: set by [`Agent::serve_sessions`],
    /// or at the first session from the node's identity.
    session_setup: OnceLock<SessionSetup>,
    /// The SecureString values written into each running command's steps,
    /// by command id: what every report and upload of it is masked with.
    secrets: Mutex<HashMap<String, Vec<Secret>>>,
    spool: Mutex<Spool>,
    spooled: Notify,
}

pub struct AgentParts<Q, I> {
    pub node_id: String,
    pub key: Arc<NodeKey>,
    pub verifier: DownlinkVerifier,
    pub state_dir: PathBuf,
    pub node_queue: Q,
    pub ingest: I,
    pub http: HttpClient,
    pub platform: Platform,
    /// Where `{{ssm-secure:…}}` values come from (the API); `None`: a step
    /// that has such references fails without running.
    pub parameters: Option<Arc<dyn ParameterSource>>,
    /// Where the patch plugin works: the node's root and its apt-get and
    /// reboot (`PatchEnv::default()` on a node; fixtures in tests).
    pub patch: PatchEnv,
    /// How long a command runs before its In Progress report is spooled:
    /// [`PROGRESS_GRACE`] on a node; tests choose, so that what they assert
    /// does not depend on how fast a shell starts.
    pub progress_grace: Duration,
}

/// A command still running this long after its steps began is reported In
/// Progress; one that ends sooner sends only its final report (the control
/// plane takes Pending straight to a final status). Most commands end within
/// a second, so this halves their SQS sends and ingest invocations, while a
/// long one still shows it started about as soon as before.
pub const PROGRESS_GRACE: Duration = Duration::from_secs(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic aborts the agent (panic = "abort"), so poisoning cannot be seen
    // in release builds; in tests, keep going with the data as it is.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<Q: NodeQueue, I: IngestQueue> Agent<Q, I> {
    /// Opens the journal and the spool in the state directory.
    pub fn new(parts: AgentParts<Q, I>) -> std::io::Result<Arc<Self>> {
        let journal = Journal::open(&parts.state_dir.join("journal"), now_epoch())?;
        let spool = Spool::open(&parts.state_dir.join("spool"))?;
        Ok(Arc::new(Self {
            node_id: parts.node_id,
            key: parts.key,
            verifier: parts.verifier,
            state_dir: parts.state_dir,
            node_queue: parts.node_queue,
            ingest: parts.ingest,
            http: parts.http,
            platform: parts.platform,
            parameters: parts.parameters,
            patch: parts.patch,
            progress_grace: parts.progress_grace,
            journal: Mutex::new(journal),
            running: Mutex::new(HashMap::new()),
            tasks: Mutex::new(JoinSet::new()),
            sessions: Mutex::new(HashMap::new()),
            session_tasks: Mutex::new(JoinSet::new()),
            session_setup: OnceLock::new(),
            secrets: Mutex::new(HashMap::new()),
            spool: Mutex::new(spool),
            spooled: Notify::new(),
        }))
    }

    /// The agent's life: reports what a crash left unfinished, then polls,
    /// sends spooled reports and heartbeats until `shutdown`; then stops
    /// the running commands and waits for every loop. An error means the
    /// interrupted commands could not be recorded (nothing else started).
    pub async fn run(
        self: &Arc<Self>,
        heartbeat_every: Duration,
        shutdown: Shutdown,
    ) -> std::io::Result<()> {
        self.recover()?;
        tracing::info!(
            instance_id = self.node_id,
            version = env!("CARGO_PKG_VERSION"),
            "agent started"
        );
        let sender = {
            let (a, s) = (Arc::clone(self), shutdown.clone());
            tokio::spawn(async move { a.send_spooled(s).await })
        };
        let heartbeats = {
            let (a, s) = (Arc::clone(self), shutdown.clone());
            tokio::spawn(async move { a.send_heartbeats(heartbeat_every, s).await })
        };
        self.poll(shutdown).await;
        tokio::join!(self.stop_commands(), self.stop_sessions());
        let _ = sender.await;
        let _ = heartbeats.await;
        tracing::info!("agent stopped");
        Ok(())
    }

    fn run_dir(&self, command_id: &str) -> PathBuf {
        // Command ids are UUIDs; keep anything else from leaving the directory.
        let safe: String = command_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.state_dir.join("runs").join(safe)
    }
}

/// How the agent serves sessions.
#[derive(Clone)]
pub struct SessionSetup {
    pub queues: Arc<dyn SessionQueueSource>,
    /// Who every session's process runs as; `None` (on a node): the start
    /// message's run-as user, or the default (see [`SessionUser::resolve`]).
    pub user: Option<SessionUser>,
}

impl<Q: NodeQueue, I: IngestQueue> Agent<Q, I> {
    /// Serves sessions through `setup` (before [`Agent::run`]); false if the
    /// agent was already set up. Without it, sessions fail (NoQueues).
    pub fn serve_sessions(&self, setup: SessionSetup) -> bool {
        self.session_setup.set(setup).is_ok()
    }

    fn session_setup(&self) -> Result<SessionSetup, SessionError> {
        self.session_setup
            .get()
            .cloned()
            .ok_or(SessionError::NoQueues)
    }

    /// Starts serving a session in its own task; a session already running
    /// is not started again.
    pub(super) fn start_session(self: &Arc<Self>, start: SessionStart) {
        let session_id = start.session_id.clone();
        let stop = {
            let mut sessions = lock(&self.sessions);
            if sessions.contains_key(&session_id) {
                tracing::info!(session_id, "session already running; not starting it again");
                return;
            }
            let (tx, rx) = watch::channel(None);
            sessions.insert(session_id.clone(), tx);
            rx
        };
        tracing::info!(
            session_id,
            document = start.document_name,
            "starting session"
        );
        let this = Arc::clone(self);
        let mut tasks = lock(&self.session_tasks);
        // Finished tasks are reaped here, so the set stays small.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            let reporter: Reporter = {
                let this = Arc::clone(&this);
                Arc::new(move |update| this.report_or_log(Uplink::SessionUpdate(update)))
            };
            match this.session_setup() {
                Ok(setup) => {
                    let env = SessionEnv {
                        http: this.http.clone(),
                        state_dir: this.state_dir.clone(),
                        user: setup.user,
                    };
                    crate::session::run(start, env, setup.queues, stop, reporter).await;
                }
                Err(e) => {
                    tracing::warn!(session_id, error = %e, "cannot serve the session");
                    reporter(SessionUpdate {
                        session_id: session_id.clone(),
                        state: SessionState::Failed,
                        reason: e.to_string(),
                    });
                }
            }
            lock(&this.sessions).remove(&session_id);
        });
    }

    /// Ends a running session (TerminateSession); it reports Terminated.
    pub(super) fn terminate_session(&self, session_id: &str) {
        match lock(&self.sessions).get(session_id) {
            Some(tx) => {
                tracing::info!(session_id, "terminating session");
                let _ = tx.send(Some(StopCause::Terminated));
            }
            None => tracing::info!(
                session_id,
                "terminate for a session that is not running; ignored"
            ),
        }
    }

    /// Ends every session (each reports Terminated, "agent stopped") and
    /// waits for their tasks.
    pub async fn stop_sessions(&self) {
        for (session_id, tx) in lock(&self.sessions).iter() {
            tracing::info!(session_id, "stopping session for shutdown");
            let _ = tx.send(Some(StopCause::AgentStopped));
        }
        let mut tasks = std::mem::take(&mut *lock(&self.session_tasks));
        while tasks.join_next().await.is_some() {}
    }

    pub fn running_sessions(&self) -> usize {
        lock(&self.sessions).len()
    }
}

#[cfg(test)]
mod tests;

/// Sessions through the agent: intake, the map of running sessions, and
/// shutdown.
#[cfg(test)]
mod session_tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as B64;
    use steward_core::channel::{
        Downlink, DownlinkPayload, SessionKind, SessionTerminate, SignedDownlink,
    };
    use steward_core::sessions::pump;
    use steward_core::sessions::{Body, Direction, Peer, SessionKey};

    use super::*;
    use crate::queue::{QueueError, Received};
    use crate::session::test_support::MemorySource;
    use crate::spool::Spool;
    use crate::wait::{LIMIT, wait_until, within};

    const NODE: &str = "mi-0123456789abcdef0";
    const SID: &str = "bob-0123456789abcdef0";

    struct Idle;
    impl NodeQueue for Idle {
        async fn receive(&self) -> Result<Vec<Received>, QueueError> {
            std::future::pending().await
        }
        async fn delete(&self, _receipt: &str) -> Result<(), QueueError> {
            Ok(())
        }
    }
    struct Nowhere;
    impl IngestQueue for Nowhere {
        async fn send(&self, _body: String) -> Result<(), QueueError> {
            Err(QueueError("not in this test".into()))
        }
        async fn send_batch(&self, bodies: Vec<String>) -> Vec<Result<(), QueueError>> {
            bodies
                .iter()
                .map(|_| Err(QueueError("not in this test".into())))
                .collect()
        }
    }

    struct Fixture {
        signer: EcdsaKeyPair,
        dir: tempfile::TempDir,
        agent: Arc<Agent<Idle, Nowhere>>,
        memory: Arc<MemorySource>,
        key: SessionKey,
    }

    fn fixture() -> Fixture {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let signer =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, doc.as_ref()).unwrap();
        let (node_key, _) = NodeKey::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let agent = Agent::new(AgentParts {
            node_id: NODE.into(),
            key: Arc::new(node_key),
            verifier: DownlinkVerifier::from_der(signer.public_key().as_ref()).unwrap(),
            state_dir: dir.path().to_path_buf(),
            node_queue: Idle,
            ingest: Nowhere,
            http: HttpClient::new(),
            platform: Platform::detect(),
            parameters: None,
            patch: PatchEnv::for_root(&dir.path().join("no-root")),
            progress_grace: LIMIT,
        })
        .unwrap();
        let memory = MemorySource::new();
        assert!(agent.serve_sessions(SessionSetup {
            queues: memory.clone(),
            user: Some(SessionUser::current().unwrap()),
        }));
        Fixture {
            signer,
            dir,
            agent,
            memory,
            key: SessionKey::from_bytes([3; 32]),
        }
    }

    impl Fixture {
        fn message(&self, msg_id: &str, body: Downlink) -> Received {
            let now = now_epoch();
            let payload = DownlinkPayload {
                v: 1,
                msg_id: msg_id.into(),
                node_id: NODE.into(),
                issued_at: now,
                expires_at: now + 3600.0,
                message: body,
            };
            let bytes = serde_json::to_vec(&payload).unwrap();
            let sig = self.signer.sign(&SystemRandom::new(), &bytes).unwrap();
            let env = SignedDownlink {
                v: 1,
                payload: B64.encode(&bytes),
                sig: B64.encode(sig.as_ref()),
                key: "test".into(),
                proof: Vec::new(),
            };
            Received {
                message_id: format!("q-{msg_id}"),
                receipt: format!("r-{msg_id}"),
                body: serde_json::to_string(&env).unwrap(),
            }
        }

        fn start(&self) -> Downlink {
            Downlink::StartSession(SessionStart {
                session_id: SID.into(),
                key: Secret::new(self.key.expose_base64()),
                to_agent_queue_url: "memory://to-agent".into(),
                to_client_queue_url: "memory://to-client".into(),
                document_name: "SSM-SessionManagerRunShell".into(),
                kind: SessionKind::Shell {
                    command: Some("exec sh".into()),
                    interactive: true,
                },
                run_as: None,
                shell_profile: String::new(),
                idle_timeout_seconds: 0,
                max_duration_seconds: 0,
                transcript_put_url: None,
            })
        }

        /// The client's end, so that the agent's Close is acknowledged.
        fn client(&self) -> pump::ChannelEnds {
            pump::start(
                Peer::new(SID, Direction::ClientToAgent, self.key.clone()),
                SID.into(),
                self.memory.to_client.clone(),
                self.memory.to_agent.clone(),
            )
        }

        fn session_updates(&self) -> Vec<SessionUpdate> {
            Spool::peek(&self.dir.path().join("spool"))
                .unwrap()
                .into_iter()
                .filter_map(|p| match p.message {
                    Uplink::SessionUpdate(u) => Some(u),
                    _ => None,
                })
                .collect()
        }

        fn states(&self) -> Vec<SessionState> {
            self.session_updates().iter().map(|u| u.state).collect()
        }
    }

    #[tokio::test]
    async fn a_start_delivered_twice_serves_one_session_and_terminate_ends_it() {
        let f = fixture();
        let mut client = f.client();
        f.agent.handle(f.message("m1", f.start())).await;
        // The same message again (a replay), and the same session in
        // another message: neither starts a second one.
        f.agent.handle(f.message("m1", f.start())).await;
        f.agent.handle(f.message("m2", f.start())).await;
        wait_until("the session to connect", LIMIT, || {
            f.states() == vec![SessionState::Connected]
        })
        .await
        .unwrap();
        assert_eq!(f.agent.running_sessions(), 1);
        assert_eq!(*lock(&f.memory.opened), 1);
        client
            .outbound
            .send(Body::Data(b"echo up-$((1+1))\n".to_vec()))
            .await
            .unwrap();
        within("the shell's answer", LIMIT, async {
            let mut seen = Vec::new();
            while !String::from_utf8_lossy(&seen).contains("up-2") {
                match client.inbound.recv().await {
                    Some(Body::Data(d)) => seen.extend_from_slice(&d),
                    other => panic!("{other:?}"),
                }
            }
        })
        .await
        .unwrap();
        let terminate = Downlink::TerminateSession(SessionTerminate {
            session_id: SID.into(),
        });
        f.agent.handle(f.message("m3", terminate)).await;
        wait_until("the session to end", LIMIT, || {
            f.agent.running_sessions() == 0
        })
        .await
        .unwrap();
        let updates = f.session_updates();
        assert_eq!(
            f.states(),
            vec![SessionState::Connected, SessionState::Terminated]
        );
        assert_eq!(updates[1].reason, StopCause::Terminated.reason());
    }

    #[tokio::test]
    async fn stopping_the_agent_ends_its_sessions() {
        let f = fixture();
        let _client = f.client();
        f.agent.start_session(match f.start() {
            Downlink::StartSession(s) => s,
            _ => unreachable!(),
        });
        wait_until("the session to connect", LIMIT, || {
            f.states() == vec![SessionState::Connected]
        })
        .await
        .unwrap();
        within("the sessions to stop", LIMIT, f.agent.stop_sessions())
            .await
            .unwrap();
        assert_eq!(f.agent.running_sessions(), 0);
        let updates = f.session_updates();
        assert_eq!(
            f.states(),
            vec![SessionState::Connected, SessionState::Terminated]
        );
        assert_eq!(updates[1].reason, "agent stopped");
    }
}
