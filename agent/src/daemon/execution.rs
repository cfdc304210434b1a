//! Execution: running a command's steps in order (each resolved, run and
//! uploaded), cancelling it, and stopping every command at shutdown.

use std::sync::Arc;

use std::path::Path;

use serde::{Deserialize, Serialize};
use steward_core::channel::{PluginResult, PluginStep, RunMessage, StepUpload, Uplink};
use steward_core::clock::now_epoch;
use steward_core::inventory::step::SOFTWARE_INVENTORY;
use steward_core::output::{STDERR_INLINE_LIMIT, truncate_chars};
use steward_core::patching::report::PatchReport;
use steward_core::run_command::status::InvocationDetail;
use tokio::sync::watch;

use super::{Agent, lock, update};
use crate::api;
use crate::backoff::Backoff;
use crate::fsutil;
use crate::inventory::InventoryEnv;
use crate::journal::CommandState;
use crate::patching::reboot::{self, RebootEnd, RebootPlan};
use crate::patching::{self, PatchContext};
use crate::queue::{IngestQueue, NodeQueue};
use crate::runner::{self, Stop};
use crate::secure_parameters;

/// In a command's run directory while the node reboots for its patch step.
pub(super) const RESUME_FILE: &str = "resume.json";

/// What a restart needs to finish a command whose patch step rebooted the
/// node: the message, the step, the results before it, and the Install's plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Resume {
    pub step: usize,
    pub started: f64,
    pub plugins: Vec<PluginResult>,
    pub plan: RebootPlan,
    pub message: RunMessage,
}

pub(super) const UPLOAD_ATTEMPTS: u32 = 4;

fn stream_url(urls: &StepUpload, stderr: bool) -> &str {
    if stderr {
        &urls.stderr_put_url
    } else {
        &urls.stdout_put_url
    }
}

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

    /// Finishes, in its own task, a command whose patch step rebooted the
    /// node (see [`crate::patching::reboot`]).
    pub(super) fn resume_command(self: &Arc<Self>, record: Resume) {
        let command_id = record.message.command_id.clone();
        let (tx, mut rx) = watch::channel(None);
        lock(&self.running).insert(command_id.clone(), tx);
        tracing::info!(
            command_id,
            step = record.step,
            "resuming the command after the node's reboot"
        );
        let this = Arc::clone(self);
        lock(&self.tasks).spawn(async move {
            let Resume {
                step,
                started,
                plugins,
                plan,
                message,
            } = record;
            let finished = this
                .run_from(&message, step, plugins, started, Some(plan), &mut rx)
                .await;
            this.command_ended(&message.command_id, finished);
        });
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
        let finished = self.run_steps(&cmd, &mut stop).await;
        self.command_ended(&cmd.command_id, finished);
    }

    /// Forgets a command that ended (or was stopped by a shutdown).
    fn command_ended(&self, command_id: &str, finished: std::io::Result<bool>) {
        let command_id = command_id.to_string();
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
        // Journaled before any step runs: a crash from here on is reported
        // Failed by the restart, whether or not In Progress was sent.
        lock(&self.journal).record_command(command_id, CommandState::Started, &[], started)?;
        let steps = self.run_from(cmd, 0, Vec::new(), started, None, stop);
        self.in_progress_after_grace(command_id, started, steps)
            .await
    }

    /// Drives a command's `steps` and spools its In Progress report only if
    /// they are still running after the grace: a command that ends sooner is
    /// reported once, by its final report. Both are polled by this one task,
    /// so In Progress is spooled before the final report or not at all.
    async fn in_progress_after_grace(
        &self,
        command_id: &str,
        started: f64,
        steps: impl Future<Output = std::io::Result<bool>>,
    ) -> std::io::Result<bool> {
        let mut steps = std::pin::pin!(steps);
        tokio::select! {
            // Steps first: one that ends as the grace does needs no In Progress.
            biased;
            finished = &mut steps => return finished,
            () = tokio::time::sleep(self.progress_grace) => {}
        }
        // Not fatal: the final report is what the control plane must get,
        // and stopping here would abandon steps that are running.
        if let Err(e) = self.report(Uplink::InvocationUpdate(update::in_progress(
            command_id, started,
        ))) {
            tracing::warn!(command_id, error = %e, "cannot spool the In Progress report");
        }
        steps.await
    }

    /// Runs the command's steps from `first` on, after the results of the
    /// ones before, and reports. `resume`: step `first` is a patch step
    /// whose Install rebooted the node; it is finished, not run again.
    /// Ok(true) when the final report is spooled.
    pub(super) async fn run_from(
        &self,
        cmd: &RunMessage,
        first: usize,
        mut plugins: Vec<PluginResult>,
        started: f64,
        mut resume: Option<RebootPlan>,
        stop: &mut watch::Receiver<Option<Stop>>,
    ) -> std::io::Result<bool> {
        let command_id = &cmd.command_id;
        let mut detail = InvocationDetail::Success;
        let mut response_code = 0;
        let run_dir = self.run_dir(command_id);
        let sink = |part: PatchReport| self.report(Uplink::PatchReport(part));
        let ctx = runner::StepContext {
            command_id,
            patch_env: &self.patch,
            report: &sink,
        };
        for (i, step) in cmd.steps.iter().enumerate().skip(first) {
            let step_dir = run_dir.join(i.to_string());
            let (outcome, reboot) = match resume.take() {
                Some(plan) => {
                    let patch = PatchContext {
                        command_id,
                        env: &self.patch,
                        report: &sink,
                        secrets: &self.held_secrets(command_id),
                    };
                    let outcome = patching::resume(step, &patch, &step_dir, &plan).await;
                    let _ = std::fs::remove_file(run_dir.join(RESUME_FILE));
                    (outcome, None)
                }
                None => self.run_one(command_id, step, &step_dir, stop, &ctx).await,
            };
            if outcome.stopped == Some(Stop::Shutdown) {
                return Ok(false);
            }
            let uploaded = match cmd.uploads.get(i) {
                Some(urls) => self.upload(command_id, i, urls, &outcome).await,
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
            let mut result = PluginResult {
                name: step.name.clone(),
                detail: outcome.detail,
                response_code: outcome.response_code,
                start: Some(outcome.start),
                end: Some(outcome.end),
                stdout: outcome.stdout.inline,
                stderr: outcome.stderr.inline,
                uploaded,
            };
            if let Some(plan) = reboot.filter(|_| detail == InvocationDetail::Success) {
                // Its reports are spooled; what a restart needs to finish the
                // step goes to disk before the node is asked to reboot.
                let record = Resume {
                    step: i,
                    started,
                    plugins: plugins.clone(),
                    plan,
                    message: cmd.clone(),
                };
                let json = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
                fsutil::write_atomic(&run_dir.join(RESUME_FILE), &json, 0o600)?;
                // The command goes on after the reboot: the control plane
                // must see it In Progress meanwhile, even if the node goes
                // down within the grace. Should the grace also end before
                // the node does, the repeat changes nothing there.
                if let Err(e) = self.report(Uplink::InvocationUpdate(update::in_progress(
                    command_id, started,
                ))) {
                    tracing::warn!(command_id, error = %e, "cannot spool the In Progress report");
                }
                match reboot::request(&self.patch, stop).await {
                    RebootEnd::ShuttingDown => return Ok(false),
                    RebootEnd::Cancelled => {
                        let _ = std::fs::remove_file(run_dir.join(RESUME_FILE));
                        detail = InvocationDetail::Cancelled;
                        response_code = -1;
                        result.detail = detail;
                        result.response_code = response_code;
                    }
                    RebootEnd::Failed(why) => {
                        let _ = std::fs::remove_file(run_dir.join(RESUME_FILE));
                        tracing::error!(command_id, reason = why, "the node did not reboot");
                        detail = InvocationDetail::Failed;
                        response_code = 1;
                        result.detail = detail;
                        result.response_code = response_code;
                        result.stderr = truncate_chars(
                            &format!("{why}\n{}", result.stderr),
                            STDERR_INLINE_LIMIT,
                        )
                        .to_string();
                    }
                }
            }
            plugins.push(result);
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

    /// Resolves a step's SecureString references, then runs it with its plugin.
    async fn run_one(
        &self,
        command_id: &str,
        step: &PluginStep,
        step_dir: &Path,
        stop: &mut watch::Receiver<Option<Stop>>,
        ctx: &runner::StepContext<'_>,
    ) -> (runner::StepOutcome, Option<RebootPlan>) {
        let resolved =
            secure_parameters::resolve(self.parameters.as_deref(), command_id, step).await;
        match resolved {
            Ok(r) => {
                self.hold_secrets(command_id, &r.secrets);
                // Every value of the command, not only this step's: an
                // earlier step may have left one where this one reads it.
                let secrets = self.held_secrets(command_id);
                if r.step.action == SOFTWARE_INVENTORY {
                    let env = InventoryEnv::node();
                    return (
                        self.gather_inventory(command_id, &r.step, step_dir, &env),
                        None,
                    );
                }
                let o = runner::run_plugin(&r.step, step_dir, stop, &secrets, ctx).await;
                (o.outcome, o.reboot)
            }
            Err(message) => {
                let secrets = self.held_secrets(command_id);
                tracing::warn!(
                    command_id,
                    step = secure_parameters::mask_text(&step.name, &secrets),
                    error = secure_parameters::mask_text(&message, &secrets),
                    "not running a step whose SecureString references cannot be resolved"
                );
                let _ = std::fs::create_dir_all(step_dir);
                (
                    runner::refused(step_dir, now_epoch(), &message, &secrets),
                    None,
                )
            }
        }
    }

    /// PUTs a step's whole output to its presigned URLs, retrying a few
    /// times. The one way output reaches S3: each file is masked with the
    /// command's values first, whoever wrote it. A URL that has expired, or
    /// that S3 refuses (its signing credentials expired: a command may
    /// outlive them), is replaced by fresh ones from the control plane
    /// before the next try. `false` when some output did not reach S3: the
    /// report then carries it truncated inline, as it always does.
    async fn upload(
        &self,
        command_id: &str,
        step: usize,
        urls: &StepUpload,
        outcome: &runner::StepOutcome,
    ) -> bool {
        let secrets = self.held_secrets(command_id);
        // Fresh URLs, once asked for, serve both streams.
        let mut urls = urls.clone();
        let mut ok = true;
        for (stderr, path) in [(false, &outcome.stdout.path), (true, &outcome.stderr.path)] {
            if stream_url(&urls, stderr).is_empty() {
                continue;
            }
            if let Err(e) = secure_parameters::mask_file(path, &secrets) {
                // Unmasked output must not leave the node: not uploaded.
                tracing::error!(command_id, error = %e, file = %path.display(), "cannot mask output before its upload; not uploading it");
                ok = false;
                continue;
            }
            ok &= self
                .upload_file(command_id, step, &mut urls, stderr, path)
                .await;
        }
        ok
    }

    /// One stream's upload, at most [`UPLOAD_ATTEMPTS`] PUTs.
    async fn upload_file(
        &self,
        command_id: &str,
        step: usize,
        urls: &mut StepUpload,
        stderr: bool,
        path: &Path,
    ) -> bool {
        let mut backoff = Backoff::new();
        for attempt in 1..=UPLOAD_ATTEMPTS {
            // A URL's date is the control plane's: compare in its time.
            let expired = api::presigned_url_expiry(stream_url(urls, stderr))
                .is_some_and(|at| crate::clock::server_now() >= at);
            if expired {
                // Not worth a PUT of the whole file to learn it.
                tracing::info!(
                    command_id,
                    step,
                    "output upload URL expired; asking for a fresh one"
                );
                self.fresh_urls(command_id, step, urls).await;
            }
            match self.http.put_file(stream_url(urls, stderr), path).await {
                Ok(()) => return true,
                Err(e) => {
                    tracing::warn!(command_id, step, attempt, error = %e, "output upload failed");
                    if attempt < UPLOAD_ATTEMPTS
                        && api::upload_needs_fresh_url(&e)
                        && self.fresh_urls(command_id, step, urls).await
                    {
                        continue;
                    }
                }
            }
            if attempt < UPLOAD_ATTEMPTS {
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
        false
    }

    /// Replaces `urls` with fresh ones from the control plane; `false` when
    /// none came (no source, or the API refused).
    async fn fresh_urls(&self, command_id: &str, step: usize, urls: &mut StepUpload) -> bool {
        let Some(source) = self.http.output_urls() else {
            return false;
        };
        match source.fresh_urls(command_id, step).await {
            Ok(fresh) => {
                *urls = fresh;
                true
            }
            Err(e) => {
                tracing::warn!(command_id, step, error = %e, "cannot get fresh output upload URLs");
                false
            }
        }
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
