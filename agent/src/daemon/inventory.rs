//! Runs an `aws:softwareInventory` step: gathers (crate::inventory), spools
//! the changed types as `Uplink::Inventory` reports, remembers their hashes
//! once spooled, and writes a summary as the step's output.

use std::fmt::Write as _;
use std::path::Path;

use steward_core::channel::{PluginStep, Uplink};
use steward_core::clock::{iso8601_seconds, now_epoch};
use steward_core::output::{STDERR_INLINE_LIMIT, STDOUT_INLINE_LIMIT};
use steward_core::run_command::status::InvocationDetail;

use super::Agent;
use crate::inventory::{self, InventoryEnv, NodeFacts, SentHashes};
use crate::queue::{IngestQueue, NodeQueue};
use crate::runner::{self, StepOutcome};
use crate::secure_parameters;

impl<Q: NodeQueue, I: IngestQueue> Agent<Q, I> {
    pub(super) fn gather_inventory(
        &self,
        command_id: &str,
        step: &PluginStep,
        dir: &Path,
        env: &InventoryEnv,
    ) -> StepOutcome {
        let start = now_epoch();
        let secrets = self.held_secrets(command_id);
        if let Err(e) = std::fs::create_dir_all(dir) {
            return runner::refused(
                dir,
                start,
                &format!("cannot create the step directory {}: {e}", dir.display()),
                &secrets,
            );
        }
        let g = step.inventory.unwrap_or_default();
        let facts = NodeFacts {
            instance_id: self.node_id.clone(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            computer_name: self.platform.hostname.clone(),
            ip_address: self.platform.ip_address.clone(),
            platform_name: self.platform.name.clone(),
            platform_version: self.platform.version.clone(),
        };
        let gathered = inventory::gather(&g, env, &facts, &iso8601_seconds(start));
        let mut out = String::new();
        let mut err = String::new();
        for w in &gathered.warnings {
            let _ = writeln!(err, "warning: {w}");
        }
        for e in &gathered.errors {
            let _ = writeln!(err, "error: {e}");
        }
        let _ = writeln!(out, "Inventory gathered at {}:", iso8601_seconds(start));
        let mut memory = SentHashes::load(&self.state_dir);
        let all: Vec<(String, usize)> = gathered
            .items
            .iter()
            .map(|i| (i.type_name.clone(), i.content.as_ref().map_or(0, Vec::len)))
            .collect();
        let changed = memory.changed(gathered.items, start);
        for (t, n) in &all {
            let state = if changed.iter().any(|c| &c.type_name == t) {
                "changed"
            } else {
                "unchanged, not sent"
            };
            let _ = writeln!(out, "  {t}: {n} entries, {state}");
        }
        // Masked before packing: the spool's gate cannot see into a packed report.
        let mut changed = changed;
        if !secrets.is_empty() {
            for v in changed
                .iter_mut()
                .flat_map(|i| i.content.iter_mut().flatten())
                .flat_map(|e| e.values_mut())
            {
                *v = secure_parameters::mask_text(v, &secrets);
            }
        }
        let json_bytes: usize = changed
            .iter()
            .map(|i| serde_json::to_vec(i).map_or(0, |b| b.len()))
            .sum();
        let (reports, too_large) = inventory::split(command_id, changed);
        for t in &too_large {
            let _ = writeln!(
                err,
                "error: {} is too large for one report (at most {} bytes); not sent",
                t.type_name,
                inventory::MAX_REPORT_BYTES
            );
        }
        let mut bytes = 0;
        let mut spooled = 0;
        let mut sent = Vec::new();
        let mut failed = !gathered.errors.is_empty() || !too_large.is_empty();
        for (r, items) in reports {
            bytes += serde_json::to_vec(&r).map_or(0, |b| b.len());
            match self.report(Uplink::Inventory(r)) {
                Ok(()) => {
                    spooled += 1;
                    sent.extend(items);
                }
                Err(e) => {
                    failed = true;
                    let _ = writeln!(err, "error: cannot spool the inventory report: {e}");
                }
            }
        }
        let _ = writeln!(
            out,
            "Sent {} changed type(s) in {spooled} report(s), {bytes} bytes ({json_bytes} bytes of JSON before compression).",
            sent.len()
        );
        memory.record(&sent, start);
        if let Err(e) = memory.save(&self.state_dir) {
            // Only more traffic: the next gather sends these types again.
            tracing::warn!(error = %e, "cannot record the inventory sent");
        }
        let out_path = dir.join("stdout");
        let err_path = dir.join("stderr");
        let written = runner::write_private(&out_path, out.as_bytes(), 0o600)
            .and_then(|()| runner::write_private(&err_path, err.as_bytes(), 0o600));
        if let Err(e) = written {
            return runner::refused(
                dir,
                start,
                &format!("cannot write the step's output: {e}"),
                &secrets,
            );
        }
        StepOutcome {
            detail: if failed {
                InvocationDetail::Failed
            } else {
                InvocationDetail::Success
            },
            response_code: i32::from(failed),
            start,
            end: now_epoch(),
            stdout: runner::capture(&out_path, STDOUT_INLINE_LIMIT),
            stderr: runner::capture(&err_path, STDERR_INLINE_LIMIT),
            stopped: None,
        }
    }
}
