//! What sessions need from the world: a store for their records, their
//! pair of queues, and a key to seal their frame keys under.

use async_trait::async_trait;

use super::model::{Session, SessionListState};
use crate::error::SsmError;
use crate::fleet::ports::QueueRef;
use crate::secret::Secret;

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Writes a new session; `false` if one with its id exists.
    async fn create(&self, session: &Session) -> Result<bool, SsmError>;
    async fn get(&self, session_id: &str) -> Result<Option<Session>, SsmError>;
    /// Replaces the record if it is still at `session.revision - 1`;
    /// `false` if it moved on (read again and decide again).
    async fn update(&self, session: &Session) -> Result<bool, SsmError>;
    /// One page of `state`'s sessions, newest first, after the cursor; the
    /// cursor of the next page, if any.
    async fn list(
        &self,
        state: SessionListState,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Session>, Option<String>), SsmError>;
}

/// A session's two queues: the client's frames to the agent, and back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionQueuePair {
    pub to_agent: QueueRef,
    pub to_client: QueueRef,
}

#[async_trait]
pub trait SessionQueues: Send + Sync {
    /// Creates (or finds) the session's queues; twice is harmless.
    async fn create(&self, session_id: &str) -> Result<SessionQueuePair, SsmError>;
    /// Deletes them; queues already gone are not an error.
    async fn delete(&self, urls: &[&str]) -> Result<(), SsmError>;
}

/// Seals frame keys at rest, bound to their session.
#[async_trait]
pub trait SessionKeySealer: Send + Sync {
    async fn seal(&self, session_id: &str, key: &Secret) -> Result<String, SsmError>;
    async fn open(&self, session_id: &str, sealed: &str) -> Result<Secret, SsmError>;
}
