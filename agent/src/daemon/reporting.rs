//! Reporting: the one gate every outgoing message passes (masking), the
//! spool that keeps reports until the ingest queue has them, the sender
//! that drains it oldest first (several at once in one SQS batch), and
//! heartbeats.

use std::sync::Arc;
use std::time::Duration;

use steward_core::channel::{Heartbeat, InvocationUpdate, Uplink, UplinkPayload, VERSION};
use steward_core::clock::now_epoch;
use steward_core::secret::Secret;

use super::{Agent, lock};
use crate::backoff::Backoff;
use crate::faults::{CrashPoint, crash_point};
use crate::journal::{CommandState, Journal};
use crate::queue::{BATCH_MAX_BYTES, BATCH_MAX_ENTRIES, IngestQueue, NodeQueue};
use crate::secure_parameters;
use crate::shutdown::Shutdown;
use crate::spool::Spooled;

/// How long the sender sleeps with nothing spooled, in case a wake-up was
/// missed.
const IDLE_RECHECK: Duration = Duration::from_secs(30);

impl<Q: NodeQueue, I: IngestQueue> Agent<Q, I> {
    /// Spools a report; the sender delivers it.
    pub fn report(&self, message: Uplink) -> std::io::Result<()> {
        let payload = self.outgoing(message);
        lock(&self.spool).push(&payload)?;
        self.spooled.notify_one();
        Ok(())
    }

    /// The one way a message leaves the agent (spooled or sent): masked
    /// with the SecureString values of its invocation, or of every running
    /// invocation for a message that is not about one. Whatever the agent
    /// wrote into it, no value is in what the spool keeps or the queue gets.
    fn outgoing(&self, mut message: Uplink) -> UplinkPayload {
        let secrets = match &message {
            Uplink::InvocationUpdate(u) => self.held_secrets(&u.command_id),
            Uplink::PatchReport(r) => self.held_secrets(&r.command_id),
            Uplink::Inventory(r) => self.held_secrets(&r.command_id),
            Uplink::Heartbeat(_) | Uplink::MessageRejected(_) | Uplink::SessionUpdate(_) => {
                lock(&self.secrets).values().flatten().cloned().collect()
            }
        };
        secure_parameters::mask_uplink(&mut message, &secrets);
        let clock = &crate::clock::SERVER;
        in_server_time(&mut message, clock.offset());
        UplinkPayload {
            v: VERSION,
            msg_id: uuid::Uuid::new_v4().to_string(),
            sent_at: clock.corrected(now_epoch()),
            message,
        }
    }

    /// Spools a command's final report, then journals it Finished: in this
    /// order, so a crash between the two reports it again rather than never.
    /// Takes the journal locked (the lock order puts it before the spool).
    pub(super) fn finish(
        &self,
        journal: &mut Journal,
        report: InvocationUpdate,
        at: f64,
    ) -> std::io::Result<()> {
        let command_id = report.command_id.clone();
        self.report(Uplink::InvocationUpdate(report))?;
        crash_point(CrashPoint::AfterFinalSpooled);
        journal.record_command(&command_id, CommandState::Finished, &[], at)
    }

    /// Keeps a step's values for masking until the command's last report.
    pub(super) fn hold_secrets(&self, command_id: &str, secrets: &[Secret]) {
        if !secrets.is_empty() {
            lock(&self.secrets)
                .entry(command_id.to_string())
                .or_default()
                .extend(secrets.iter().cloned());
        }
    }

    /// Every value written into any step of the command so far.
    pub(super) fn held_secrets(&self, command_id: &str) -> Vec<Secret> {
        lock(&self.secrets)
            .get(command_id)
            .cloned()
            .unwrap_or_default()
    }

    pub(super) fn report_or_log(&self, message: Uplink) {
        if let Err(e) = self.report(message) {
            tracing::error!(error = %e, "cannot spool a report; it is lost");
        }
    }

    /// Sends spooled reports oldest first, forever, until `shutdown`.
    pub async fn send_spooled(self: &Arc<Self>, shutdown: impl Into<Shutdown>) {
        let mut shutdown = shutdown.into();
        let mut backoff = Backoff::new();
        loop {
            if shutdown.is_requested() {
                return;
            }
            // Register interest before listing, so a report spooled meanwhile wakes us.
            let notified = self.spooled.notified();
            let listed = lock(&self.spool).pending();
            let pending = listed.unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot list the spool");
                Vec::new()
            });
            if pending.is_empty() {
                let woken = tokio::time::timeout(IDLE_RECHECK, notified);
                if shutdown.or(woken).await.is_none() {
                    return;
                }
                continue;
            }
            match self.send_oldest(&pending).await {
                Ok(()) => backoff.reset(),
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in = delay.as_secs(), "cannot send a report; will retry");
                    if !shutdown.sleep(delay).await {
                        return;
                    }
                }
            }
        }
    }

    /// Sends the oldest of `pending`: one SendMessage for one report, one
    /// SendMessageBatch for several (as many as SQS takes at once). Each
    /// report the queue acknowledged leaves the spool; Err when any did
    /// not: it stays spooled and is sent again, the others are not.
    async fn send_oldest(&self, pending: &[Spooled]) -> Result<(), String> {
        let mut batch: Vec<(&Spooled, String)> = Vec::new();
        let mut bytes = 0;
        for report in pending {
            if batch.len() == BATCH_MAX_ENTRIES {
                break;
            }
            let body = match self.sealed(report) {
                Ok(Some(body)) => body,
                Ok(None) => continue,
                // Send what is ready; the next round meets this one again.
                Err(_) if !batch.is_empty() => break,
                Err(e) => return Err(e),
            };
            if !batch.is_empty() && bytes + body.len() > BATCH_MAX_BYTES {
                break;
            }
            bytes += body.len();
            batch.push((report, body));
        }
        if batch.len() <= 1 {
            let Some((report, body)) = batch.pop() else {
                return Ok(());
            };
            self.ingest.send(body).await.map_err(|e| e.to_string())?;
            crash_point(CrashPoint::AfterSendBeforeRemove);
            return lock(&self.spool).remove(report).map_err(|e| e.to_string());
        }
        let (reports, bodies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let outcomes = self.ingest.send_batch(bodies).await;
        if outcomes.iter().any(Result::is_ok) {
            crash_point(CrashPoint::AfterSendBeforeRemove);
        }
        let mut unsent = reports.len().saturating_sub(outcomes.len());
        let mut first_error = None;
        for (report, outcome) in reports.iter().zip(outcomes) {
            let removed = outcome
                .map_err(|e| e.to_string())
                .and_then(|()| lock(&self.spool).remove(report).map_err(|e| e.to_string()));
            if let Err(e) = removed {
                unsent += 1;
                first_error.get_or_insert(e);
            }
        }
        match (unsent, first_error) {
            (0, _) => Ok(()),
            (n, e) => Err(format!(
                "{n} of {} reports in a batch not sent: {}",
                reports.len(),
                e.unwrap_or_else(|| "no answer for them".into())
            )),
        }
    }

    /// A spooled report, signed for the ingest queue; None when its file
    /// was damaged (it is dropped).
    fn sealed(&self, report: &Spooled) -> Result<Option<String>, String> {
        // Bound first: a guard in a match scrutinee would live through the arms.
        let read = lock(&self.spool).read(report);
        let payload = match read {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                tracing::error!(file = %report.path().display(), "dropping a damaged spool file");
                lock(&self.spool)
                    .remove(report)
                    .map_err(|e| e.to_string())?;
                return Ok(None);
            }
            Err(e) => return Err(e.to_string()),
        };
        if super::recovery::final_report_command(&payload.message).is_some() {
            // `finish` holds the journal from spooling a final report to
            // journaling it Finished; waiting for the journal here sends
            // the report only after that. An agent killed in between still
            // has it spooled, and its restart sends it instead of a Failed.
            drop(lock(&self.journal));
        }
        self.key
            .seal(&self.node_id, &payload)
            .map(Some)
            .map_err(|e| e.to_string())
    }

    pub fn heartbeat(&self) -> Heartbeat {
        Heartbeat {
            agent_version: env!("CARGO_PKG_VERSION").into(),
            platform_type: "Linux".into(),
            platform_name: self.platform.name.clone(),
            platform_version: self.platform.version.clone(),
            ip_address: self.platform.ip_address.clone(),
            computer_name: self.platform.hostname.clone(),
        }
    }

    /// Sends a heartbeat straight to the ingest queue every `every` (not
    /// spooled: a lost heartbeat is replaced by the next one).
    pub async fn send_heartbeats(self: &Arc<Self>, every: Duration, shutdown: impl Into<Shutdown>) {
        let mut shutdown = shutdown.into();
        loop {
            let payload = self.outgoing(Uplink::Heartbeat(self.heartbeat()));
            match self.key.seal(&self.node_id, &payload) {
                Ok(body) => match self.ingest.send(body).await {
                    Ok(()) => tracing::debug!("heartbeat sent"),
                    Err(e) => tracing::warn!(error = %e, "cannot send a heartbeat"),
                },
                Err(e) => tracing::error!(error = %e, "cannot sign a heartbeat"),
            }
            if !shutdown.sleep(every).await {
                return;
            }
        }
    }
}

/// The times a report gives, read on the local clock, in the control
/// plane's time (`offset` seconds later): what the console shows as when a
/// command ran must not be minutes off because this node's clock is.
pub(super) fn in_server_time(message: &mut Uplink, offset: f64) {
    if offset == 0.0 {
        return;
    }
    if let Uplink::InvocationUpdate(u) = message {
        let shift = |t: &mut Option<f64>| {
            if let Some(t) = t {
                *t += offset;
            }
        };
        shift(&mut u.execution_start);
        shift(&mut u.execution_end);
        for p in &mut u.plugins {
            shift(&mut p.start);
            shift(&mut p.end);
        }
    }
}
