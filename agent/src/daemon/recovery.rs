//! Recovery: what a start does about a crash. Every command the journal
//! shows accepted or started and never finished is reported Failed, never
//! run again, and whatever it left running is stopped — except a command
//! whose patch step rebooted the node on purpose: it left a resume record,
//! and is finished from that step (see [`crate::patching::reboot`]).

use std::collections::HashSet;
use std::sync::Arc;

use steward_core::channel::Uplink;
use steward_core::clock::now_epoch;

use super::execution::{RESUME_FILE, Resume};
use super::{Agent, lock, update};
use crate::journal::CommandState;
use crate::queue::{IngestQueue, NodeQueue};
use crate::runner;

impl<Q: NodeQueue, I: IngestQueue> Agent<Q, I> {
    /// Reports every command the journal shows started and never finished
    /// as Failed (it is never run again), or resumes it after its reboot.
    pub fn recover(self: &Arc<Self>) -> std::io::Result<()> {
        let unfinished = lock(&self.journal).unfinished();
        // Read once: the spool may hold many reports after an outage.
        let spooled_final = if unfinished.is_empty() {
            HashSet::new()
        } else {
            self.spooled_final_reports()?
        };
        for (command_id, rec) in unfinished {
            let run_dir = self.run_dir(&command_id);
            if let Some(record) = resume_record(&run_dir.join(RESUME_FILE), &command_id) {
                self.resume_command(record);
                continue;
            }
            let now = now_epoch();
            if spooled_final.contains(&command_id) {
                // Killed between spooling the final report and journaling it:
                // the report stands and goes out; a Failed sent after it
                // could reach the control plane first and be the one kept.
                tracing::info!(
                    command_id,
                    "command had ended before the agent restart; its report is still to send"
                );
                lock(&self.journal).record_command(
                    &command_id,
                    CommandState::Finished,
                    &[],
                    now,
                )?;
            } else {
                tracing::warn!(
                    command_id,
                    "command was interrupted by an agent restart; reporting it Failed"
                );
                let report = update::interrupted(&command_id, &rec.plugins, now);
                self.finish(&mut lock(&self.journal), report, now)?;
            }
            // What the killed agent started must not run on unsupervised.
            if let Ok(steps) = std::fs::read_dir(&run_dir) {
                for step in steps.flatten() {
                    if runner::kill_orphaned_step(&step.path()) {
                        tracing::warn!(
                            command_id,
                            "stopped what the interrupted command left running"
                        );
                    }
                }
            }
            let _ = std::fs::remove_dir_all(run_dir);
        }
        Ok(())
    }

    /// The commands whose final report is in the spool. The sender sends a
    /// final report only once it is journaled Finished (see `sealed`), so a
    /// command left unfinished has its report here if it was ever made.
    fn spooled_final_reports(&self) -> std::io::Result<HashSet<String>> {
        let spool = lock(&self.spool);
        let mut commands = HashSet::new();
        for report in spool.pending()? {
            // A damaged file is the sender's to drop; it is no final report.
            if let Ok(payload) = spool.read(&report)
                && let Some(command_id) = final_report_command(&payload.message)
            {
                commands.insert(command_id.to_string());
            }
        }
        Ok(commands)
    }
}

/// The command a message is the last invocation report of (a status
/// nothing follows), if it is one.
pub(super) fn final_report_command(message: &Uplink) -> Option<&str> {
    match message {
        Uplink::InvocationUpdate(u) if u.detail.is_final() => Some(&u.command_id),
        _ => None,
    }
}

/// The resume record of `command_id`, if one was written whole for it.
fn resume_record(path: &std::path::Path, command_id: &str) -> Option<Resume> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice::<Resume>(&bytes) {
        Ok(r) if r.message.command_id == command_id && r.step < r.message.steps.len() => Some(r),
        _ => {
            tracing::warn!(command_id, "ignoring a damaged resume record");
            None
        }
    }
}
