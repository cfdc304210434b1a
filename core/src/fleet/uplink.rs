//! The ingest side of the fleet: a message an agent put on the ingest queue,
//! verified against its sender's registered key, then applied — a heartbeat
//! to the node, a refusal to the bus, an invocation update to Run Command.
//!
//! A message that cannot be verified (malformed, unknown node, bad
//! signature) is dropped, never retried: retrying a forgery only loops it.

use crate::channel::{Uplink, open_uplink, uplink_sender};
use crate::compliance::context::ComplianceContext;
use crate::error::SsmError;
use crate::inventory::context::InventoryContext;
use crate::inventory::ports::InventoryStore;
use crate::patching::instance_state::PatchStateStore;
use crate::patching::instance_state::compliance::write_when_complete;
use crate::patching::instance_state::ingest::{Applied as PatchApplied, apply_part};
use crate::run_command::RunCommandContext;
use crate::run_command::ingest::{Applied, Report, apply_updates};

use super::FleetContext;
use super::ops;

/// The ports a message may touch.
#[derive(Clone, Copy)]
pub struct UplinkPorts<'a> {
    /// Senders' keys, heartbeats and refusals are the fleet's.
    pub fleet: FleetContext<'a>,
    /// Invocation updates are Run Command's.
    pub run_command: RunCommandContext<'a>,
    /// Patch reports are Patch Manager's.
    pub patch_states: &'a dyn PatchStateStore,
    /// A whole patch report is also the node's Patch compliance.
    pub compliance: ComplianceContext<'a>,
    /// Inventory reports are Inventory's.
    pub inventory: &'a dyn InventoryStore,
    /// Session reports are Session Manager's; an ended session's queues go.
    pub sessions: &'a dyn crate::sessions::ports::SessionStore,
    pub session_queues: &'a dyn crate::sessions::ports::SessionQueues,
}

/// What happened to a message that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Dropped without effect, for the reason given.
    Dropped(String),
}

/// Verifies and applies one uplink message at `now`. `Err` only for faults
/// worth a retry (a store or the bus failed), never for the message's
/// content. Every step is idempotent: a redelivered message changes nothing
/// twice.
pub async fn receive(ports: &UplinkPorts<'_>, body: &str, now: f64) -> Result<Outcome, SsmError> {
    let mut out = receive_batch(ports, &[body], now).await;
    out.pop().unwrap_or_else(|| Err(SsmError::internal()))
}

/// Verifies and applies a batch of messages at `now`: what became of each,
/// in the order given, each as [`receive`] would answer it alone. The
/// senders' keys are read together, and the invocation updates applied
/// together (`run_command::ingest::apply_updates`); a fault fails the
/// messages it touched, for a retry of those alone.
pub async fn receive_batch(
    ports: &UplinkPorts<'_>,
    bodies: &[&str],
    now: f64,
) -> Vec<Result<Outcome, SsmError>> {
    let mut out: Vec<Result<Outcome, SsmError>> = vec![Ok(Outcome::Applied); bodies.len()];
    let mut envelopes = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        match uplink_sender(body) {
            Ok(env) => envelopes.push((i, env)),
            Err(e) => out[i] = Ok(Outcome::Dropped(format!("not an uplink envelope: {e}"))),
        }
    }
    let mut senders: Vec<String> = envelopes.iter().map(|(_, e)| e.node_id.clone()).collect();
    senders.sort_unstable();
    senders.dedup();
    let keys: std::collections::BTreeMap<String, String> =
        match ports.fleet.nodes.get_many(&senders).await {
            Ok(nodes) => nodes
                .into_iter()
                .map(|n| (n.instance_id, n.public_key))
                .collect(),
            Err(e) => {
                for (i, _) in &envelopes {
                    out[*i] = Err(e.clone());
                }
                return out;
            }
        };
    let mut reports = Vec::new();
    let mut report_index = Vec::new();
    for (i, env) in envelopes {
        let node_id = env.node_id.clone();
        let Some(key) = keys.get(&node_id) else {
            tracing::warn!(instance_id = %node_id, "uplink from an unknown node");
            out[i] = Ok(Outcome::Dropped(format!("unknown node {node_id}")));
            continue;
        };
        let payload = match open_uplink(&env, key) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(instance_id = %node_id, reason = %e, "uplink does not verify");
                out[i] = Ok(Outcome::Dropped(format!("from {node_id}: {e}")));
                continue;
            }
        };
        match payload.message {
            Uplink::InvocationUpdate(update) => {
                reports.push(Report { node_id, update });
                report_index.push(i);
            }
            _ => out[i] = apply(ports, &node_id, payload, now).await,
        }
    }
    if reports.is_empty() {
        return out;
    }
    let logged: Vec<(String, String, &'static str)> = reports
        .iter()
        .map(|r| {
            (
                r.node_id.clone(),
                r.update.command_id.clone(),
                r.update.detail.as_str(),
            )
        })
        .collect();
    match apply_updates(&ports.run_command, reports, now).await {
        Ok(applied) => {
            for ((i, a), (node_id, command_id, detail)) in
                report_index.iter().zip(applied).zip(logged)
            {
                match a {
                    Applied::Changed => {
                        tracing::info!(%node_id, %command_id, detail, "invocation updated")
                    }
                    Applied::Unchanged => tracing::debug!(
                        %node_id,
                        %command_id,
                        detail,
                        "report changes nothing (repeated or stale)"
                    ),
                    Applied::NotFound => tracing::warn!(
                        %node_id,
                        %command_id,
                        "report ignored: this node has no invocation of that command"
                    ),
                }
                out[*i] = Ok(Outcome::Applied);
            }
        }
        Err(e) => {
            for i in report_index {
                out[i] = Err(e.clone());
            }
        }
    }
    out
}

/// Applies one verified message other than an invocation update.
async fn apply(
    ports: &UplinkPorts<'_>,
    node_id: &str,
    payload: crate::channel::UplinkPayload,
    now: f64,
) -> Result<Outcome, SsmError> {
    let node_id = node_id.to_string();
    match payload.message {
        Uplink::Heartbeat(hb) => {
            // The node's clock may run ahead; a heartbeat is never in the future.
            let at = payload.sent_at.min(now);
            if !ops::heartbeat(&ports.fleet, &node_id, &hb, at).await? {
                return Ok(Outcome::Dropped(format!("node {node_id} was deregistered")));
            }
        }
        Uplink::MessageRejected(r) => {
            tracing::warn!(
                instance_id = %node_id,
                reason = %r.reason,
                queue_message_id = %r.queue_message_id,
                "agent refused a message from its queue"
            );
            ports
                .fleet
                .events
                .message_rejected(&node_id, &r.reason, &r.queue_message_id)
                .await?;
        }
        Uplink::PatchReport(report) => {
            let applied = apply_part(ports.patch_states, &node_id, &report).await?;
            match &applied {
                PatchApplied::StateChanged { current, .. } => tracing::info!(
                    %node_id,
                    snapshot_id = %current.snapshot_id,
                    operation = current.operation.as_str(),
                    missing = current.counts.missing,
                    "patch state updated"
                ),
                PatchApplied::PartKept => tracing::debug!(
                    %node_id,
                    snapshot_id = %report.snapshot_id,
                    part = report.part,
                    "patch report part kept; the state is this or a later operation's"
                ),
            }
            // Whichever part arrives last completes the report; a repeat
            // puts the same content, which changes nothing.
            if let Some(change) = write_when_complete(
                ports.patch_states,
                &ports.compliance,
                &node_id,
                &report.snapshot_id,
                match &applied {
                    PatchApplied::StateChanged { current, .. } => Some(current),
                    PatchApplied::PartKept => None,
                },
            )
            .await?
            {
                tracing::info!(
                    %node_id,
                    status = change.status.as_str(),
                    "patch compliance changed"
                );
            }
        }
        Uplink::Inventory(report) => {
            let ctx = InventoryContext {
                store: ports.inventory,
                nodes: ports.fleet.nodes,
                scope: ports.run_command.scope,
            };
            // Twice a put's limit unpacked: anything larger is not a gather.
            let items = match report.all_items(2 * crate::inventory::put::MAX_PUT_BYTES) {
                Ok(items) => items,
                Err(why) => {
                    tracing::warn!(%node_id, command_id = %report.command_id, reason = %why, "inventory report unreadable");
                    return Ok(Outcome::Dropped(format!("inventory from {node_id}: {why}")));
                }
            };
            match crate::inventory::put_items(&ctx, &node_id, &items).await {
                Ok(o) => tracing::info!(
                    %node_id,
                    command_id = %report.command_id,
                    written = ?o.written,
                    unchanged = ?o.unchanged,
                    ignored = ?o.ignored,
                    "inventory report applied"
                ),
                // The report's content is at fault: retrying cannot help.
                Err(e) if !matches!(e, SsmError::InternalServerError(_)) => {
                    tracing::warn!(%node_id, command_id = %report.command_id, error = %e, code = e.code(), "inventory report refused");
                    return Ok(Outcome::Dropped(format!("inventory from {node_id}: {e}")));
                }
                Err(e) => return Err(e),
            }
        }
        Uplink::SessionUpdate(update) => {
            use crate::sessions::ingest::{Applied, apply_update};
            match apply_update(ports.sessions, ports.session_queues, &node_id, &update, now).await?
            {
                Applied::Changed(status) => tracing::info!(
                    %node_id,
                    session_id = %update.session_id,
                    status = status.as_str(),
                    "session state changed"
                ),
                Applied::Unchanged => {}
                Applied::NotOurs => {
                    return Ok(Outcome::Dropped(format!(
                        "session {} is not a session of {node_id}",
                        update.session_id
                    )));
                }
            }
        }
        Uplink::InvocationUpdate(update) => {
            // Batched by `receive_batch`; alone here only if called so.
            let report = Report { node_id, update };
            apply_updates(&ports.run_command, vec![report], now).await?;
        }
    }
    Ok(Outcome::Applied)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::channel::{Heartbeat, InvocationUpdate, MessageRejected, NodeKey, UplinkPayload};
    use crate::fleet::memory::{MemoryFleet, node};
    use crate::run_command::memory as rc;
    use crate::run_command::status::InvocationDetail;

    const NODE: &str = "mi-00000000000000001";

    struct World {
        key: NodeKey,
        fleet: MemoryFleet,
        store: rc::Store,
        run_command_fleet: rc::Fleet,
        groups: BTreeMap<String, crate::targets::GroupQuery>,
        mailbox: rc::Mailbox,
        work: rc::Work,
        automation: crate::automation::memory::MemoryQueue,
        bus: rc::Events,
        signer: rc::Signer,
        parameters: crate::parameters::memory::MemoryParameterStore,
        scope: crate::arn::ArnScope,
        documents: crate::documents::store::MemoryDocumentStore,
        patch_states: crate::patching::instance_state::memory::MemoryPatchStates,
        patch_baselines: crate::patching::memory::MemoryPatchBaselines,
        compliance: crate::compliance::memory::MemoryCompliance,
        inventory: crate::inventory::memory::MemoryInventory,
        sessions: crate::sessions::memory::MemorySessionStore,
        session_queues: crate::sessions::memory::MemorySessionQueues,
    }

    impl World {
        fn new() -> Self {
            let (key, _) = NodeKey::generate().unwrap();
            let fleet = MemoryFleet::default();
            fleet
                .nodes
                .insert(node(NODE, &key.public_key_base64(), 100.0));
            Self {
                key,
                fleet,
                store: rc::Store::default(),
                run_command_fleet: rc::Fleet::default(),
                groups: BTreeMap::new(),
                mailbox: rc::Mailbox::default(),
                work: rc::Work::default(),
                automation: Default::default(),
                bus: rc::Events::default(),
                signer: rc::Signer::new(),
                parameters: Default::default(),
                scope: crate::arn::ArnScope {
                    region: "us-east-1".into(),
                    account: "123456789012".into(),
                },
                documents: crate::documents::store::MemoryDocumentStore::new(),
                patch_states: Default::default(),
                patch_baselines: Default::default(),
                compliance: Default::default(),
                inventory: Default::default(),
                sessions: Default::default(),
                session_queues: Default::default(),
            }
        }

        async fn receive(&self, body: &str, now: f64) -> Outcome {
            let ports = UplinkPorts {
                fleet: self.fleet.context(),
                run_command: RunCommandContext {
                    store: &self.store,
                    targets: &self.run_command_fleet,
                    groups: &self.groups,
                    nodes: &self.run_command_fleet,
                    mailbox: &self.mailbox,
                    work: &self.work,
                    outputs: &rc::Outputs,
                    signer: &self.signer,
                    parameters: &self.parameters,
                    scope: &self.scope,
                    documents: &self.documents,
                    automation: &self.automation,
                    patch_baselines: &self.patch_baselines,
                },
                patch_states: &self.patch_states,
                compliance: ComplianceContext {
                    store: &self.compliance,
                    nodes: self.fleet.context().nodes,
                    scope: &self.scope,
                },
                inventory: &self.inventory,
                sessions: &self.sessions,
                session_queues: &self.session_queues,
            };
            receive(&ports, body, now).await.unwrap()
        }

        fn seal(&self, message: Uplink, sent_at: f64) -> String {
            self.key.seal(NODE, &payload(message, sent_at)).unwrap()
        }
    }

    fn payload(message: Uplink, sent_at: f64) -> UplinkPayload {
        UplinkPayload {
            v: 1,
            msg_id: "m-1".into(),
            sent_at,
            message,
        }
    }

    fn heartbeat(version: &str) -> Uplink {
        Uplink::Heartbeat(Heartbeat {
            agent_version: version.into(),
            platform_type: "Linux".into(),
            platform_name: "Debian".into(),
            platform_version: "12".into(),
            ip_address: "10.1.1.1".into(),
            computer_name: "host".into(),
        })
    }

    fn dropped(o: &Outcome) -> bool {
        matches!(o, Outcome::Dropped(_))
    }

    fn inventory_report(names: &[&str], at: &str) -> crate::inventory::step::InventoryReport {
        let content: Vec<crate::inventory::Entry> = names
            .iter()
            .map(|n| [("Name".to_string(), n.to_string())].into())
            .collect();
        let item = crate::inventory::InventoryItem {
            type_name: "AWS:Application".into(),
            schema_version: "1.1".into(),
            capture_time: at.into(),
            content_hash: Some(crate::inventory::content_hash(&content)),
            content: Some(content),
            context: Default::default(),
        };
        crate::inventory::step::InventoryReport::packed("c-1", &[item])
    }

    #[tokio::test]
    async fn an_inventory_report_is_kept_once_and_a_repeat_or_garbage_changes_nothing() {
        let w = World::new();
        let report = inventory_report(&["bash", "curl"], "2026-12-01T10:00:00Z");
        let body = w.seal(Uplink::Inventory(report.clone()), 200.0);
        assert_eq!(w.receive(&body, 250.0).await, Outcome::Applied);
        assert_eq!(*w.inventory.writes.lock().unwrap(), 1);
        // Redelivered, or gathered again unchanged: nothing is written.
        w.receive(&body, 260.0).await;
        let again = inventory_report(&["bash", "curl"], "2026-12-01T10:30:00Z");
        w.receive(&w.seal(Uplink::Inventory(again), 300.0), 310.0)
            .await;
        assert_eq!(*w.inventory.writes.lock().unwrap(), 1);
        let kept = w.inventory.types.lock().unwrap()
            [&(NODE.to_string(), "AWS:Application".to_string())]
            .clone();
        assert_eq!(kept.capture_time, "2026-12-01T10:00:00Z");
        assert_eq!(kept.content.len(), 2);
        // A report that does not unpack, or that SSM's checks refuse, is dropped.
        let garbage = crate::inventory::step::InventoryReport {
            packed: "AAAA".into(),
            ..report
        };
        assert!(dropped(
            &w.receive(&w.seal(Uplink::Inventory(garbage), 320.0), 330.0)
                .await
        ));
        let mut bad = inventory_report(&["x"], "2026-12-01T11:00:00Z");
        bad.items = bad.all_items(1 << 20).unwrap();
        bad.items[0].type_name = "AWS:Nope".into();
        bad.packed.clear();
        assert!(dropped(
            &w.receive(&w.seal(Uplink::Inventory(bad), 340.0), 350.0)
                .await
        ));
        assert_eq!(*w.inventory.writes.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn a_verified_heartbeat_is_recorded() {
        let w = World::new();
        let o = w.receive(&w.seal(heartbeat("2.0.0"), 200.0), 250.0).await;
        assert_eq!(o, Outcome::Applied);
        let n = w.fleet.nodes.node(NODE).unwrap();
        assert_eq!(n.agent_version, "2.0.0");
        assert_eq!(n.computer_name, "host");
        assert_eq!(n.last_ping_date_time, 200.0);
    }

    #[tokio::test]
    async fn a_heartbeat_from_the_future_is_recorded_at_now() {
        let w = World::new();
        w.receive(&w.seal(heartbeat("2.0.0"), 9_000.0), 300.0).await;
        assert_eq!(w.fleet.nodes.node(NODE).unwrap().last_ping_date_time, 300.0);
    }

    #[tokio::test]
    async fn a_forged_message_is_dropped_and_changes_nothing() {
        let w = World::new();
        let before = w.fleet.nodes.node(NODE).unwrap();
        let (forger, _) = NodeKey::generate().unwrap();
        let forged = forger
            .seal(NODE, &payload(heartbeat("6.6.6"), 200.0))
            .unwrap();
        assert!(dropped(&w.receive(&forged, 250.0).await));
        assert_eq!(w.fleet.nodes.node(NODE).unwrap(), before);
    }

    #[tokio::test]
    async fn an_unknown_sender_or_garbage_is_dropped() {
        let w = World::new();
        let stranger = w
            .key
            .seal("mi-00000000000000009", &payload(heartbeat("1.0"), 200.0))
            .unwrap();
        assert!(dropped(&w.receive(&stranger, 250.0).await));
        assert!(dropped(&w.receive("not json", 250.0).await));
        assert!(dropped(&w.receive("", 250.0).await));
        assert!(w.fleet.events.rejected().is_empty());
    }

    #[tokio::test]
    async fn a_heartbeat_of_a_deregistered_node_is_dropped() {
        let w = World::new();
        // Deregistered after its key was read, before the heartbeat's write.
        w.fleet.nodes.forget_on_heartbeat();
        let o = w.receive(&w.seal(heartbeat("2.0.0"), 200.0), 250.0).await;
        assert!(dropped(&o));
        assert!(w.fleet.nodes.node(NODE).is_none());
    }

    #[tokio::test]
    async fn a_refusal_is_published_as_an_event() {
        let w = World::new();
        let refusal = Uplink::MessageRejected(MessageRejected {
            reason: "bad signature".into(),
            queue_message_id: "q-1".into(),
        });
        let o = w.receive(&w.seal(refusal, 200.0), 250.0).await;
        assert_eq!(o, Outcome::Applied);
        assert_eq!(
            w.fleet.events.rejected(),
            [(
                NODE.to_string(),
                "bad signature".to_string(),
                "q-1".to_string()
            )]
        );
    }

    #[tokio::test]
    async fn an_update_for_an_invocation_the_node_lacks_changes_nothing() {
        let w = World::new();
        let update = Uplink::InvocationUpdate(InvocationUpdate {
            command_id: "00000000-0000-0000-0000-000000000000".into(),
            detail: InvocationDetail::Success,
            response_code: 0,
            execution_start: None,
            execution_end: None,
            plugins: vec![],
        });
        let o = w.receive(&w.seal(update, 200.0), 250.0).await;
        assert_eq!(o, Outcome::Applied);
        assert!(w.store.invocations.lock().unwrap().is_empty());
        assert!(w.bus.published.lock().unwrap().is_empty());
    }

    fn patch_part(
        snapshot: &str,
        end: f64,
        states: &[(&str, crate::patching::report::PatchState)],
    ) -> Vec<Uplink> {
        use crate::patching::report::{PatchCounts, PatchEntry, PatchReport};
        use crate::patching::step::{PatchOperation, RebootOption};
        let patches = states
            .iter()
            .map(|(name, state)| PatchEntry {
                title: format!("{name} 1.1"),
                kb_id: name.to_string(),
                classification: "Security".into(),
                severity: "important".into(),
                state: *state,
                installed_time: None,
                compliance_level: Some(crate::patching::ComplianceLevel::High),
            })
            .collect();
        let header = PatchReport {
            command_id: snapshot.into(),
            snapshot_id: snapshot.into(),
            baseline_id: "pb-0d3b2e7f5a1c94e60".into(),
            patch_group: None,
            operation: PatchOperation::Scan,
            reboot_option: RebootOption::NoReboot,
            operation_start_time: end - 1.0,
            operation_end_time: end,
            last_no_reboot_install_operation_time: None,
            counts: PatchCounts::default(),
            part: 0,
            parts: 0,
            patches: Vec::new(),
        };
        PatchReport::into_parts(header, patches)
            .into_iter()
            .map(Uplink::PatchReport)
            .collect()
    }

    #[tokio::test]
    async fn a_patch_report_sets_the_state_and_the_patch_compliance_once() {
        use crate::compliance::ports::ComplianceStore;
        use crate::patching::instance_state::PatchStateStore;
        use crate::patching::report::PatchState;
        let w = World::new();
        let missing = patch_part(
            "s1",
            300.0,
            &[
                ("openssl", PatchState::Missing),
                ("bash", PatchState::Installed),
            ],
        );
        for _ in 0..2 {
            for part in &missing {
                assert_eq!(
                    w.receive(&w.seal(part.clone(), 300.0), 310.0).await,
                    Outcome::Applied
                );
            }
        }
        let state = w.patch_states.get(NODE).await.unwrap().unwrap();
        assert_eq!(state.counts.missing, 1);
        let record = w.compliance.get(NODE, "Patch").await.unwrap().unwrap();
        assert_eq!(record.items.len(), 2);
        let changes = |w: &World| {
            // The events the compliance table's stream carries.
            w.compliance
                .feed
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.detail_type == "Configuration Compliance State Change")
                .map(|e| e.detail["compliance-status"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            changes(&w),
            ["non_compliant"],
            "one event, however often the report came"
        );
        let fixed = patch_part(
            "s2",
            400.0,
            &[
                ("openssl", PatchState::Installed),
                ("bash", PatchState::Installed),
            ],
        );
        for part in &fixed {
            w.receive(&w.seal(part.clone(), 400.0), 410.0).await;
        }
        assert_eq!(changes(&w), ["non_compliant", "compliant"]);
        // A late copy of the old report changes neither.
        for part in &missing {
            w.receive(&w.seal(part.clone(), 300.0), 420.0).await;
        }
        assert_eq!(
            w.patch_states.get(NODE).await.unwrap().unwrap().snapshot_id,
            "s2"
        );
        assert_eq!(changes(&w), ["non_compliant", "compliant"]);
    }
}
