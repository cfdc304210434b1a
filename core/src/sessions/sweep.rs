//! Ending what no agent will report: a session whose start message was
//! never taken (the node went away before it), one whose node stopped
//! answering (ConnectionLost, or deregistered), or one past its longest
//! life. The scheduler's tick runs it; each end is a conditional write, as
//! the agent's report would be.

use super::documents::CEILING_MINUTES;
use super::ingest::delete_queues;
use super::model::{Session, SessionListState, SessionStatus};
use super::ports::{SessionQueues, SessionStore};
use crate::error::SsmError;
use crate::fleet::node::{Node, PingStatus};
use crate::fleet::ports::NodeStore;

/// A session still Connecting this long after it started never will: its
/// start message expired long before (2 minutes).
pub const CONNECT_GRACE_SECONDS: f64 = 300.0;
/// Past its maximum duration, an agent has this long to report the end.
pub const END_GRACE_SECONDS: f64 = 300.0;
/// Active sessions read per store page.
const PAGE: usize = 100;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Never connected: Failed.
    pub failed: usize,
    /// Outlived their maximum: Terminated.
    pub ended: usize,
}

/// When `s` is overdue, the status and details it ends with. `node` is
/// its target's record (`None`: deregistered).
fn overdue(
    s: &Session,
    node: Option<&Node>,
    now: f64,
    connection_lost_seconds: u64,
) -> Option<(SessionStatus, &'static str)> {
    if s.status == SessionStatus::Connecting && now > s.start_date + CONNECT_GRACE_SECONDS {
        return Some((
            SessionStatus::Failed,
            "The node did not start the session (its agent did not take the start message).",
        ));
    }
    let answering =
        node.is_some_and(|n| n.ping_status(now, connection_lost_seconds) == PingStatus::Online);
    if s.status != SessionStatus::Connecting && !answering {
        return Some((
            SessionStatus::Terminated,
            "The node stopped answering (ConnectionLost or deregistered); its agent did not report the session's end.",
        ));
    }
    let minutes = s
        .max_session_duration
        .as_deref()
        .and_then(|m| m.parse::<u64>().ok())
        .unwrap_or(CEILING_MINUTES);
    (now > s.start_date + (minutes * 60) as f64 + END_GRACE_SECONDS).then_some((
        SessionStatus::Terminated,
        "The node did not report the session's end; it ended at its maximum duration.",
    ))
}

pub async fn end_overdue(
    store: &dyn SessionStore,
    queues: &dyn SessionQueues,
    nodes: &dyn NodeStore,
    connection_lost_seconds: u64,
    now: f64,
) -> Result<SweepReport, SsmError> {
    let mut report = SweepReport::default();
    let mut cursor: Option<String> = None;
    loop {
        let (page, next) = store
            .list(SessionListState::Active, cursor.as_deref(), PAGE)
            .await?;
        let mut targets: Vec<String> = page.iter().map(|s| s.target.clone()).collect();
        targets.sort();
        targets.dedup();
        let found = nodes.get_many(&targets).await?;
        for s in page {
            let node = found.iter().find(|n| n.instance_id == s.target);
            let Some((status, details)) = overdue(&s, node, now, connection_lost_seconds) else {
                continue;
            };
            let mut ended = s.clone();
            ended.status = status;
            ended.end_date = Some(now);
            ended.details = Some(details.into());
            ended.revision += 1;
            // Lost to the agent's own report: that one stands.
            if store.update(&ended).await? {
                tracing::warn!(session_id = %s.session_id, target = %s.target, status = status.as_str(), "session ended by the sweep");
                match status {
                    SessionStatus::Failed => report.failed += 1,
                    _ => report.ended += 1,
                }
                delete_queues(store, queues, ended).await?;
            }
        }
        cursor = next;
        if cursor.is_none() {
            return Ok(report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::memory::{MemoryNodes, node};
    use crate::sessions::memory::{MemorySessionQueues, MemorySessionStore};

    const LOST_AFTER: u64 = 600;

    /// The target, heard from at `last_ping`.
    async fn nodes(last_ping: f64) -> MemoryNodes {
        let nodes = MemoryNodes::default();
        nodes
            .register(
                &node("mi-0123456789abcdef0", "key", last_ping),
                "h",
                last_ping,
            )
            .await
            .unwrap();
        nodes
    }

    async fn stored(
        store: &MemorySessionStore,
        queues: &MemorySessionQueues,
        id: &str,
        status: SessionStatus,
        max: Option<&str>,
    ) {
        let pair = queues.create(id).await.unwrap();
        store
            .create(&Session {
                session_id: id.into(),
                target: "mi-0123456789abcdef0".into(),
                status,
                start_date: 1000.0,
                end_date: None,
                document_name: "SSM-SessionManagerRunShell".into(),
                owner: "arn:aws:iam::123456789012:user/alice".into(),
                reason: None,
                details: None,
                max_session_duration: max.map(str::to_string),
                s3_output_url: None,
                to_agent_queue_url: pair.to_agent.url,
                to_client_queue_url: pair.to_client.url,
                to_agent_queue_arn: pair.to_agent.arn,
                to_client_queue_arn: pair.to_client.arn,
                sealed_key: "k".into(),
                queues_deleted: false,
                revision: 1,
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn only_what_no_agent_will_end_is_ended() {
        let (store, queues) = (
            MemorySessionStore::default(),
            MemorySessionQueues::default(),
        );
        stored(
            &store,
            &queues,
            "a-00000000000000001",
            SessionStatus::Connecting,
            None,
        )
        .await;
        stored(
            &store,
            &queues,
            "a-00000000000000002",
            SessionStatus::Connected,
            Some("10"),
        )
        .await;
        stored(
            &store,
            &queues,
            "a-00000000000000003",
            SessionStatus::Connected,
            None,
        )
        .await;
        // Within every grace, the node answering: nothing.
        let answering = nodes(1200.0).await;
        let report = end_overdue(&store, &queues, &answering, LOST_AFTER, 1200.0).await;
        assert_eq!(report.unwrap(), SweepReport::default());
        // The start was never taken; the 10-minute session is past its end.
        let now = 1000.0 + 600.0 + END_GRACE_SECONDS + 1.0;
        let answering = nodes(now).await;
        let report = end_overdue(&store, &queues, &answering, LOST_AFTER, now).await;
        assert_eq!(
            report.unwrap(),
            SweepReport {
                failed: 1,
                ended: 1
            }
        );
        let status = |id: &'static str| {
            let store = &store;
            async move { store.get(id).await.unwrap().unwrap() }
        };
        assert_eq!(
            status("a-00000000000000001").await.status,
            SessionStatus::Failed
        );
        assert_eq!(
            status("a-00000000000000002").await.status,
            SessionStatus::Terminated
        );
        assert!(status("a-00000000000000002").await.queues_deleted);
        assert_eq!(
            status("a-00000000000000003").await.status,
            SessionStatus::Connected
        );
        // Only the third's queues remain; a second sweep changes nothing.
        assert_eq!(queues.existing.lock().unwrap().len(), 2);
        let report = end_overdue(&store, &queues, &answering, LOST_AFTER, now + 1.0).await;
        assert_eq!(report.unwrap(), SweepReport::default());
        // A day later the session without a maximum ends too.
        let now = 1000.0 + 86_400.0 + END_GRACE_SECONDS + 1.0;
        let answering = nodes(now).await;
        let report = end_overdue(&store, &queues, &answering, LOST_AFTER, now).await;
        assert_eq!(report.unwrap().ended, 1);
    }

    #[tokio::test]
    async fn a_session_on_a_node_that_stopped_answering_ends() {
        let (store, queues) = (
            MemorySessionStore::default(),
            MemorySessionQueues::default(),
        );
        stored(
            &store,
            &queues,
            "a-00000000000000001",
            SessionStatus::Connected,
            None,
        )
        .await;
        // Heard from at 1000; lost after 600 s of silence.
        let quiet = nodes(1000.0).await;
        let report = end_overdue(&store, &queues, &quiet, LOST_AFTER, 1500.0).await;
        assert_eq!(report.unwrap(), SweepReport::default());
        let report = end_overdue(&store, &queues, &quiet, LOST_AFTER, 1700.0).await;
        assert_eq!(
            report.unwrap(),
            SweepReport {
                failed: 0,
                ended: 1
            }
        );
        let s = store.get("a-00000000000000001").await.unwrap().unwrap();
        assert!(s.details.unwrap().contains("stopped answering"));
        // A deregistered node's session ends the same way.
        stored(
            &store,
            &queues,
            "a-00000000000000002",
            SessionStatus::Connected,
            None,
        )
        .await;
        let none = MemoryNodes::default();
        let report = end_overdue(&store, &queues, &none, LOST_AFTER, 1100.0).await;
        assert_eq!(report.unwrap().ended, 1);
    }
}
