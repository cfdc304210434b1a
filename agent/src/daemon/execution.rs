//! Execution: running a command's steps in order (each resolved, run and
//! uploaded), cancelling it, and stopping every command at shutdown.

use std::sync::Arc;

use steward_core::channel::{PluginResult, RunMessage, StepUpload, Uplink};
use steward_core::clock::now_epoch;
use steward_core::run_command::status::InvocationDetail;
use tokio::sync::watch;

use super::{Agent, lock, update};
use crate::backoff::Backoff;
use crate::journal::CommandState;
use crate::queue::{IngestQueue, NodeQueue};
use crate::runner::{self, Stop};
use crate::secure_parameters;

const UPLOAD_ATTEMPTS: u32 = 4;

impl<Q: NodeQueue, I: IngestQueue> Agent<Q, I> {
    /// Starts a command intake accepted (and journaled) in its own task.
    pub(super) fn start_command(self: &Arc<Self>, cmd: RunMessage) {
        let command_id = cmd.command_id.clone();
        let (tx, rx) = watch::channel(None);
        lock(&self.running).insert(command_id.clone(), tx);
        tracing::info!(command_id, steps = cmd.steps.len(), "running command");
        let this = Arc::clone(self);
        let mut tasks = lock(&self.tasks);
        // Finished tasks are reaped here, so the set stays small.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move { this.run_command(cmd, rx).await });
    }

    /// Asks a running command to stop as cancelled; false if none runs.
    pub(super) fn cancel_running(&self, command_id: &str) -> bool {
        let running = lock(&self.running).get(command_id).cloned();
        match running {
            Some(tx) => {
                tracing::info!(command_id, "cancelling running command");
                let _ = tx.send(Some(Stop::Cancel));
                true
            }
            None => false,
        }
    }

    /// Runs a command's steps in order and reports. On shutdown it reports
    /// nothing and leaves the journal at Started.
    async fn run_command(
        self: Arc<Self>,
        cmd: RunMessage,
        mut stop: watch::Receiver<Option<Stop>>,
    ) {
        let command_id = cmd.command_id.clone();
        let finished = self.run_steps(&cmd, &mut stop).await;
        lock(&self.running).remove(&command_id);
        // Its last report is spooled (or none will be): the values go.
        lock(&self.secrets).remove(&command_id);
        match finished {
            Ok(true) => {
                let _ = std::fs::remove_dir_all(self.run_dir(&command_id));
            }
            Ok(false) => tracing::info!(
                command_id,
                "command stopped by shutdown; a restart reports it"
            ),
            Err(e) => {
                tracing::error!(command_id, error = %e, "cannot record the command's progress")
            }
        }
    }

    /// Ok(true) when the final report is spooled.
    async fn run_steps(
        &self,
        cmd: &RunMessage,
        stop: &mut watch::Receiver<Option<Stop>>,
    ) -> std::io::Result<bool> {
        let command_id = &cmd.command_id;
        let started = now_epoch();
        let early = *stop.borrow();
        match early {
            Some(Stop::Shutdown) => return Ok(false),
            Some(Stop::Cancel) => {
                let report = update::cancelled(command_id, started);
                self.finish(&mut lock(&self.journal), report, now_epoch())?;
                return Ok(true);
            }
            None => {}
        }
        lock(&self.journal).record_command(command_id, CommandState::Started, &[], started)?;
        self.report(Uplink::InvocationUpdate(update::in_progress(
            command_id, started,
        )))?;

        let mut plugins = Vec::new();
        let mut detail = InvocationDetail::Success;
        let mut response_code = 0;
        let run_dir = self.run_dir(command_id);
        for (i, step) in cmd.steps.iter().enumerate() {
            let step_dir = run_dir.join(i.to_string());
            let resolved =
                secure_parameters::resolve(self.parameters.as_deref(), command_id, step).await;
            let outcome = match resolved {
                Ok(r) => {
                    self.hold_secrets(command_id, &r.secrets);
                    // Every value of the command, not only this step's: an
                    // earlier step may have left one where this one reads it.
                    let secrets = self.held_secrets(command_id);
                    runner::run_step(&r.step, &step_dir, stop, &secrets).await
                }
                Err(message) => {
                    let secrets = self.held_secrets(command_id);
                    tracing::warn!(
                        command_id,
                        step = secure_parameters::mask_text(&step.name, &secrets),
                        error = secure_parameters::mask_text(&message, &secrets),
                        "not running a step whose SecureString references cannot be resolved"
                    );
                    let _ = std::fs::create_dir_all(&step_dir);
                    runner::refused(&step_dir, now_epoch(), &message, &secrets)
                }
            };
            if outcome.stopped == Some(Stop::Shutdown) {
                return Ok(false);
            }
            let uploaded = match cmd.uploads.get(i) {
                Some(urls) => self.upload(command_id, urls, &outcome).await,
                None => false,
            };
            tracing::info!(
                command_id,
                step = secure_parameters::mask_text(&step.name, &self.held_secrets(command_id)),
                detail = outcome.detail.as_str(),
                exit_code = outcome.response_code,
                "step finished"
            );
            detail = outcome.detail;
            response_code = outcome.response_code;
            plugins.push(PluginResult {
                name: step.name.clone(),
                detail: outcome.detail,
                response_code: outcome.response_code,
                start: Some(outcome.start),
                end: Some(outcome.end),
                stdout: outcome.stdout.inline,
                stderr: outcome.stderr.inline,
                uploaded,
            });
            if detail != InvocationDetail::Success {
                // Later steps are not run and not reported.
                break;
            }
        }
        if cmd.steps.is_empty() {
            detail = InvocationDetail::Failed;
            response_code = -1;
        }
        let ended = now_epoch();
        let report = update::ended(command_id, detail, response_code, started, ended, plugins);
        self.finish(&mut lock(&self.journal), report, ended)?;
        Ok(true)
    }

    /// PUTs a step's whole output to its presigned URLs, retrying a few
    /// times. The one way output reaches S3: each file is masked with the
    /// command's values first, whoever wrote it.
    async fn upload(
        &self,
        command_id: &str,
        urls: &StepUpload,
        outcome: &runner::StepOutcome,
    ) -> bool {
        let secrets = self.held_secrets(command_id);
        let mut ok = true;
        for (url, path) in [
            (&urls.stdout_put_url, &outcome.stdout.path),
            (&urls.stderr_put_url, &outcome.stderr.path),
        ] {
            if url.is_empty() {
                continue;
            }
            if let Err(e) = secure_parameters::mask_file(path, &secrets) {
                // Unmasked output must not leave the node: not uploaded.
                tracing::error!(command_id, error = %e, file = %path.display(), "cannot mask output before its upload; not uploading it");
                ok = false;
                continue;
            }
            let mut backoff = Backoff::new();
            let mut done = false;
            for attempt in 1..=UPLOAD_ATTEMPTS {
                match self.http.put_file(url, path).await {
                    Ok(()) => {
                        done = true;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(command_id, attempt, error = %e, "output upload failed");
                        if attempt < UPLOAD_ATTEMPTS {
                            tokio::time::sleep(backoff.next_delay()).await;
                        }
                    }
                }
            }
            ok &= done;
        }
        ok
    }

    /// Stops every running command (killing its process group) and waits for them.
    pub async fn stop_commands(&self) {
        for (command_id, tx) in lock(&self.running).iter() {
            tracing::info!(command_id, "stopping command for shutdown");
            let _ = tx.send(Some(Stop::Shutdown));
        }
        let mut tasks = std::mem::take(&mut *lock(&self.tasks));
        while tasks.join_next().await.is_some() {}
    }

    pub fn running_commands(&self) -> usize {
        lock(&self.running).len()
    }
}
