//! Intake: receiving node-queue messages, verifying them, refusing replays,
//! journaling them and deciding what each one does. Running is
//! execution's; intake only starts or cancels.

use std::sync::Arc;

use steward_core::channel::{ChannelError, Downlink, MessageRejected, Uplink};
use steward_core::clock::now_epoch;

use super::{Agent, lock, update};
use crate::backoff::Backoff;
use crate::faults::{CrashPoint, crash_point};
use crate::journal::{CommandState, Journal};
use crate::queue::{IngestQueue, NodeQueue, Received};
use crate::shutdown::Shutdown;

impl<Q: NodeQueue, I: IngestQueue> Agent<Q, I> {
    /// Long-polls until `shutdown`.
    pub async fn poll(self: &Arc<Self>, shutdown: impl Into<Shutdown>) {
        let mut shutdown = shutdown.into();
        let mut backoff = Backoff::new();
        loop {
            if shutdown.is_requested() {
                return;
            }
            let Some(received) = shutdown.or(self.node_queue.receive()).await else {
                return;
            };
            match received {
                Ok(messages) => {
                    backoff.reset();
                    for m in messages {
                        self.handle(m).await;
                    }
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in = delay.as_secs(), "cannot receive from the node queue");
                    if !shutdown.sleep(delay).await {
                        return;
                    }
                }
            }
        }
    }

    /// Handles one node-queue message: verify, journal, act, delete.
    pub async fn handle(self: &Arc<Self>, m: Received) {
        crash_point(CrashPoint::AfterReceive);
        let now = now_epoch();
        let verdict = self
            .verifier
            // Its expiry is the control plane's time, not this node's.
            .open(&m.body, &self.node_id, crate::clock::server_now())
            .and_then(|p| {
                if lock(&self.journal).seen(&p.msg_id) {
                    Err(ChannelError::Replayed)
                } else {
                    Ok(p)
                }
            });
        let payload = match verdict {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(queue_message_id = m.message_id, reason = %e, "refusing a node-queue message");
                self.report_or_log(Uplink::MessageRejected(MessageRejected {
                    reason: e.to_string(),
                    queue_message_id: m.message_id.clone(),
                }));
                self.delete(&m).await;
                return;
            }
        };
        // Durable before the delete: a crash now redelivers the message,
        // which is then refused as a replay instead of running twice.
        let acted = {
            let mut journal = lock(&self.journal);
            journal
                .record_message(&payload.msg_id, now)
                .and_then(|_| self.act(&mut journal, payload.message, now))
        };
        match acted {
            Ok(()) => {
                crash_point(CrashPoint::AfterJournal);
                self.delete(&m).await
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot write the journal; the message stays queued")
            }
        }
    }

    /// Decides what a verified message does; called with the journal
    /// locked, so deciding and recording are one step.
    fn act(
        self: &Arc<Self>,
        journal: &mut Journal,
        message: Downlink,
        now: f64,
    ) -> std::io::Result<()> {
        match message {
            Downlink::Run(cmd) => {
                let command_id = cmd.command_id.clone();
                match journal.command(&command_id).map(|r| r.state) {
                    None => {
                        let plugins: Vec<String> =
                            cmd.steps.iter().map(|s| s.name.clone()).collect();
                        journal.record_command(
                            &command_id,
                            CommandState::Accepted,
                            &plugins,
                            now,
                        )?;
                        self.start_command(cmd);
                    }
                    Some(CommandState::Cancelled) => {
                        tracing::info!(
                            command_id,
                            "command was cancelled before it arrived; not running it"
                        );
                        self.finish(journal, update::cancelled(&command_id, now), now)?;
                    }
                    Some(state) => {
                        tracing::info!(
                            command_id,
                            ?state,
                            "command already received; not running it again"
                        );
                    }
                }
            }
            Downlink::Cancel(c) => {
                if self.cancel_running(&c.command_id) {
                    // Execution stops it and reports it Cancelled.
                } else if journal.command(&c.command_id).is_none() {
                    tracing::info!(
                        command_id = c.command_id,
                        "cancel arrived before the command; it will not run"
                    );
                    journal.record_command(&c.command_id, CommandState::Cancelled, &[], now)?;
                } else {
                    tracing::info!(
                        command_id = c.command_id,
                        "cancel for a command that is not running; ignored"
                    );
                }
            }
            // Served in its own task: intake goes on at once. Not journaled
            // beyond the message id: a session does not outlive the agent.
            Downlink::StartSession(start) => self.start_session(start),
            Downlink::TerminateSession(t) => self.terminate_session(&t.session_id),
        }
        Ok(())
    }

    async fn delete(&self, m: &Received) {
        if let Err(e) = self.node_queue.delete(&m.receipt).await {
            // It comes back after its visibility timeout and is then refused as a replay.
            tracing::warn!(queue_message_id = m.message_id, error = %e, "cannot delete a node-queue message");
        }
    }
}
