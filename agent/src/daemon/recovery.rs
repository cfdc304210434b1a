//! Recovery: what a start does about a crash. Every command the journal
//! shows accepted or started and never finished is reported Failed, never
//! run again, and whatever it left running is stopped.

use steward_core::clock::now_epoch;

use super::{Agent, lock, update};
use crate::queue::{IngestQueue, NodeQueue};
use crate::runner;

impl<Q: NodeQueue, I: IngestQueue> Agent<Q, I> {
    /// Reports every command the journal shows started and never finished
    /// as Failed: it is never run again.
    pub fn recover(&self) -> std::io::Result<()> {
        let unfinished = lock(&self.journal).unfinished();
        for (command_id, rec) in unfinished {
            tracing::warn!(
                command_id,
                "command was interrupted by an agent restart; reporting it Failed"
            );
            let now = now_epoch();
            let report = update::interrupted(&command_id, &rec.plugins, now);
            self.finish(&mut lock(&self.journal), report, now)?;
            // What the killed agent started must not run on unsupervised.
            let run_dir = self.run_dir(&command_id);
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
