//! A node's report about one of its sessions: connected, or ended. Ending
//! deletes the session's queues. Every step is conditional on the record
//! read, and a repeated report changes nothing.

use crate::channel::{SessionState, SessionUpdate};
use crate::error::SsmError;

use super::model::{Session, SessionStatus};
use super::ports::{SessionQueues, SessionStore};

/// What a report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Changed(SessionStatus),
    /// Already so, or later: nothing to do.
    Unchanged,
    /// Not a session of this node.
    NotOurs,
}

const ATTEMPTS: usize = 5;

pub async fn apply_update(
    store: &dyn SessionStore,
    queues: &dyn SessionQueues,
    node_id: &str,
    update: &SessionUpdate,
    now: f64,
) -> Result<Applied, SsmError> {
    for _ in 0..ATTEMPTS {
        let Some(session) = store.get(&update.session_id).await? else {
            return Ok(Applied::NotOurs);
        };
        if session.target != node_id {
            return Ok(Applied::NotOurs);
        }
        if session.status.is_ended() {
            // The queues may still be there if a delete failed before.
            if !session.queues_deleted {
                delete_queues(store, queues, session).await?;
            }
            return Ok(Applied::Unchanged);
        }
        let mut next = session.clone();
        next.revision += 1;
        match update.state {
            SessionState::Connected => {
                if session.status != SessionStatus::Connecting {
                    return Ok(Applied::Unchanged);
                }
                next.status = SessionStatus::Connected;
            }
            SessionState::Terminated | SessionState::Failed => {
                next.status = if update.state == SessionState::Failed {
                    SessionStatus::Failed
                } else {
                    SessionStatus::Terminated
                };
                next.end_date = Some(now);
                next.details = (!update.reason.is_empty()).then(|| update.reason.clone());
            }
        }
        if store.update(&next).await? {
            let status = next.status;
            if status.is_ended() {
                delete_queues(store, queues, next).await?;
            }
            return Ok(Applied::Changed(status));
        }
    }
    Err(SsmError::internal())
}

/// Deletes an ended session's queues and records it (a failure leaves the
/// record saying they are still there, for the next report or sweep).
pub async fn delete_queues(
    store: &dyn SessionStore,
    queues: &dyn SessionQueues,
    session: Session,
) -> Result<(), SsmError> {
    queues
        .delete(&[&session.to_agent_queue_url, &session.to_client_queue_url])
        .await?;
    let mut next = session;
    next.queues_deleted = true;
    next.revision += 1;
    // Lost to a concurrent write: whoever wrote saw the session ended and
    // deletes again, which is harmless.
    store.update(&next).await?;
    Ok(())
}
