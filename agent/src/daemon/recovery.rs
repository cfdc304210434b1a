//! Recovery: what a start does about a crash. Every command the journal
//! shows accepted or started and never finished is reported Failed, never
//! run again, and whatever it left running is stopped — except a command
//! whose patch step rebooted the node on purpose: it left a resume record,
//! and is finished from that step (see [`crate::patching::reboot`]).

use std::sync::Arc;

use steward_core::clock::now_epoch;

use super::execution::{RESUME_FILE, Resume};
use super::{Agent, lock, update};
use crate::queue::{IngestQueue, NodeQueue};
use crate::runner;

impl<Q: NodeQueue, I: IngestQueue> Agent<Q, I> {
    /// Reports every command the journal shows started and never finished
    /// as Failed (it is never run again), or resumes it after its reboot.
    pub fn recover(self: &Arc<Self>) -> std::io::Result<()> {
        let unfinished = lock(&self.journal).unfinished();
        for (command_id, rec) in unfinished {
            let run_dir = self.run_dir(&command_id);
            if let Some(record) = resume_record(&run_dir.join(RESUME_FILE), &command_id) {
                self.resume_command(record);
                continue;
            }
            tracing::warn!(
                command_id,
                "command was interrupted by an agent restart; reporting it Failed"
            );
            let now = now_epoch();
            let report = update::interrupted(&command_id, &rec.plugins, now);
            self.finish(&mut lock(&self.journal), report, now)?;
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
