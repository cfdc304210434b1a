//! In-memory fakes of the session ports, with the adapters' conditions.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::model::{Session, SessionListState};
use super::ports::{SessionKeySealer, SessionQueuePair, SessionQueues, SessionStore};
use crate::error::SsmError;
use crate::fleet::ports::QueueRef;
use crate::secret::Secret;

#[derive(Default)]
pub struct MemorySessionStore {
    sessions: Mutex<BTreeMap<String, Session>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The list order: newest first, then by id.
fn order_key(s: &Session) -> String {
    // Inverted so that ascending order is newest first.
    format!(
        "{:020}#{}",
        u64::MAX / 2 - (s.start_date * 1000.0) as u64,
        s.session_id
    )
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn create(&self, session: &Session) -> Result<bool, SsmError> {
        let mut m = lock(&self.sessions);
        if m.contains_key(&session.session_id) {
            return Ok(false);
        }
        m.insert(session.session_id.clone(), session.clone());
        Ok(true)
    }

    async fn get(&self, session_id: &str) -> Result<Option<Session>, SsmError> {
        Ok(lock(&self.sessions).get(session_id).cloned())
    }

    async fn update(&self, session: &Session) -> Result<bool, SsmError> {
        let mut m = lock(&self.sessions);
        match m.get(&session.session_id) {
            Some(cur) if cur.revision + 1 == session.revision => {
                m.insert(session.session_id.clone(), session.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn list(
        &self,
        state: SessionListState,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Session>, Option<String>), SsmError> {
        let m = lock(&self.sessions);
        let mut all: Vec<(String, Session)> = m
            .values()
            .filter(|s| SessionListState::of(s.status) == state)
            .map(|s| (order_key(s), s.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let page: Vec<(String, Session)> = all
            .into_iter()
            .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
            .take(limit + 1)
            .collect();
        let more = page.len() > limit;
        let page: Vec<(String, Session)> = page.into_iter().take(limit).collect();
        let next = if more {
            page.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        Ok((page.into_iter().map(|(_, s)| s).collect(), next))
    }
}

/// Queues as names: created and deleted, and what exists now.
#[derive(Default)]
pub struct MemorySessionQueues {
    pub existing: Mutex<Vec<String>>,
}

#[async_trait]
impl SessionQueues for MemorySessionQueues {
    async fn create(&self, session_id: &str) -> Result<SessionQueuePair, SsmError> {
        let suffix = super::context::queue_suffix(session_id);
        let q = |side: &str| QueueRef {
            url: format!("memory://s{suffix}{side}"),
            arn: format!("arn:aws:sqs:us-east-1:123456789012:s{suffix}{side}"),
        };
        let pair = SessionQueuePair {
            to_agent: q("a"),
            to_client: q("c"),
        };
        let mut e = lock(&self.existing);
        for url in [&pair.to_agent.url, &pair.to_client.url] {
            if !e.contains(url) {
                e.push(url.clone());
            }
        }
        Ok(pair)
    }

    async fn delete(&self, urls: &[&str]) -> Result<(), SsmError> {
        lock(&self.existing).retain(|u| !urls.contains(&u.as_str()));
        Ok(())
    }
}

/// Seals by reversing and tagging: enough to show the record never holds
/// the key itself.
#[derive(Default)]
pub struct MemoryKeySealer;

#[async_trait]
impl SessionKeySealer for MemoryKeySealer {
    async fn seal(&self, session_id: &str, key: &Secret) -> Result<String, SsmError> {
        Ok(format!(
            "sealed:{session_id}:{}",
            key.expose().chars().rev().collect::<String>()
        ))
    }

    async fn open(&self, session_id: &str, sealed: &str) -> Result<Secret, SsmError> {
        let rest = sealed
            .strip_prefix(&format!("sealed:{session_id}:"))
            .ok_or_else(SsmError::internal)?;
        Ok(Secret::new(rest.chars().rev().collect::<String>()))
    }
}
