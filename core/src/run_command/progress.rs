//! A command's status follows its invocations: after every invocation
//! change, the command's Status/StatusDetails are recomputed from its
//! counters and written if they differ (conditionally: a final status never
//! changes, and concurrent writers converge).

use super::RunCommandContext;
use super::model::Command;
use crate::error::SsmError;

const ATTEMPTS: usize = 8;

/// Brings the command's status in line with its counters. Returns the
/// command as it then stands (`None`: no such command).
pub async fn settle(
    rc: &RunCommandContext<'_>,
    command_id: &str,
) -> Result<Option<Command>, SsmError> {
    for _ in 0..ATTEMPTS {
        let Some(mut c) = rc.store.get_command(command_id).await? else {
            return Ok(None);
        };
        if c.is_final() {
            return Ok(Some(c));
        }
        let next = c.derived_state();
        if next.status == c.status && next.details == c.status_details {
            return Ok(Some(c));
        }
        if rc
            .store
            .set_command_state(command_id, (&c.status, &c.status_details), next)
            .await?
        {
            c.status = next.status.to_string();
            c.status_details = next.details.to_string();
            if next.is_final()
                && let Some(execution) = &c.automation_execution_id
                && let Err(e) = rc.automation.wake(execution, 0).await
            {
                // The step also looks again on its own every minute.
                tracing::warn!(command_id, execution = %execution, error = %e, "automation not woken at a command's end");
            }
            return Ok(Some(c));
        }
        // Someone else moved it meanwhile: read again.
    }
    Err(SsmError::internal())
}
