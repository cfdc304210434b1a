//! The daemon: one [`Agent`] per node, in four roles, each in its module:
//!
//! - `intake`: long-polls the node queue, verifies, refuses replays,
//!   journals each message and decides what it does.
//! - `execution`: runs a command's steps, cancels it, stops them all.
//! - `reporting`: the masking gate every outgoing message passes, the
//!   spool and its sender, heartbeats.
//! - `recovery`: at start, what a crash left unfinished.
//!
//! Shared by them: `update` (one constructor per kind of invocation update),
//! `Agent::outgoing` (the one masking gate: nothing is spooled or sent
//! without it) and `Agent::finish` (spool the final report, then journal).
//!
//! [`Agent::run`] owns the life: recover, start the loops, and on shutdown
//! stop the commands and join the loops.
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
//! 4. `secrets` — the SecureString values, by command.
//! 5. `spool` — the spooled reports.
//!
//! A lock may be taken while holding only locks above it. Only `journal`
//! is ever held while another is taken: `running`, `tasks`, `secrets` and
//! `spool` are held for one map or file operation each. No guard is held
//! across an `.await` (they are std mutexes).

mod execution;
mod intake;
mod inventory;
mod recovery;
mod reporting;
mod update;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use steward_core::channel::{DownlinkVerifier, NodeKey};
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
        self.stop_commands().await;
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

#[cfg(test)]
mod tests;
