//! SQS credentials from the API, the node's (`Steward.GetNodeCredentials`)
//! or one session's (`Steward.GetSessionCredentials`), cached and refreshed
//! well before they expire.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, error::CredentialsError, future};
use steward_core::channel::NodeKey;
use steward_core::clock::now_epoch;
use tokio::sync::Mutex;

use crate::api::{Api, ApiError};

/// Refresh at 80% of the credentials' lifetime, and at least 5 minutes
/// before they expire, but never sooner than 30 seconds from now.
pub fn refresh_at(now: f64, expires_at: f64) -> f64 {
    let life = (expires_at - now).max(0.0);
    let at = (now + life * 0.8).min(expires_at - 300.0);
    at.max(now + 30.0_f64.min(life))
}

fn local_time(epoch: f64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(epoch.max(0.0))
}

struct Cached {
    creds: Credentials,
    refresh_at: f64,
    expires_at: f64,
}

/// Whose credentials a provider holds: the node's (its own queue and the
/// ingest queue), or one session's (that session's two queues).
#[derive(Clone, Debug)]
enum Scope {
    Node,
    Session(String),
}

impl Scope {
    fn provider_name(&self) -> &'static str {
        match self {
            Scope::Node => "steward-node",
            Scope::Session(_) => "steward-session",
        }
    }
}

/// Caches SQS credentials from the API; the SDK asks again when the cached
/// ones reach their refresh time (we hand the SDK that time as their
/// expiry).
#[derive(Clone)]
pub struct QueueCredentialsProvider {
    api: Api,
    instance_id: String,
    key: Arc<NodeKey>,
    scope: Scope,
    cache: Arc<Mutex<Option<Cached>>>,
}

/// The node's credentials (`Steward.GetNodeCredentials`).
pub type NodeCredentialsProvider = QueueCredentialsProvider;

impl std::fmt::Debug for QueueCredentialsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueCredentialsProvider")
            .field("instance_id", &self.instance_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl QueueCredentialsProvider {
    /// The node's own credentials.
    pub fn new(api: Api, instance_id: String, key: Arc<NodeKey>) -> Self {
        Self::scoped(api, instance_id, key, Scope::Node)
    }

    /// Credentials for one session's queues (`Steward.GetSessionCredentials`).
    pub fn for_session(
        api: Api,
        instance_id: String,
        session_id: String,
        key: Arc<NodeKey>,
    ) -> Self {
        Self::scoped(api, instance_id, key, Scope::Session(session_id))
    }

    fn scoped(api: Api, instance_id: String, key: Arc<NodeKey>, scope: Scope) -> Self {
        Self {
            api,
            instance_id,
            key,
            scope,
            cache: Arc::new(Mutex::new(None)),
        }
    }

    async fn fetch(&self) -> Result<crate::api::NodeCredentials, ApiError> {
        let now = now_epoch() as i64;
        match &self.scope {
            Scope::Node => {
                self.api
                    .node_credentials(&self.instance_id, &self.key, now)
                    .await
            }
            Scope::Session(session_id) => {
                self.api
                    .session_credentials(&self.instance_id, session_id, &self.key, now)
                    .await
            }
        }
    }

    async fn load(&self) -> provider::Result {
        let mut cache = self.cache.lock().await;
        // Times here are the control plane's (the Expiration it wrote); the
        // SDK is handed them in the local clock's terms, which it reads.
        let clock = self.api.clock();
        let now = clock.now();
        if let Some(c) = cache.as_ref().filter(|c| now < c.refresh_at) {
            return Ok(c.creds.clone());
        }
        let name = self.scope.provider_name();
        match self.fetch().await {
            Ok(answer) => {
                let expires_at = answer.expires_at().ok_or_else(|| {
                    CredentialsError::provider_error(
                        "the API answered credentials with an unreadable Expiration",
                    )
                })?;
                // The answer may have taught the clock: read it again.
                let now = clock.now();
                let refresh = refresh_at(now, expires_at);
                let creds = Credentials::new(
                    answer.access_key_id,
                    answer.secret_access_key,
                    Some(answer.session_token),
                    Some(local_time(refresh - clock.offset())),
                    name,
                );
                tracing::debug!(scope = ?self.scope, refresh_in = refresh - now, "queue credentials refreshed");
                *cache = Some(Cached {
                    creds: creds.clone(),
                    refresh_at: refresh,
                    expires_at,
                });
                Ok(creds)
            }
            Err(e) => {
                // Keep using credentials that are still valid while the API is away.
                if let Some(c) = cache.as_ref().filter(|c| now + 30.0 < c.expires_at) {
                    tracing::warn!(scope = ?self.scope, error = %e, "cannot refresh queue credentials; using the current ones");
                    let retry = Credentials::new(
                        c.creds.access_key_id(),
                        c.creds.secret_access_key(),
                        c.creds.session_token().map(str::to_string),
                        Some(local_time(now + 30.0 - clock.offset())),
                        name,
                    );
                    return Ok(retry);
                }
                if matches!(&e, ApiError::Refused { code, .. } if code == "InvalidInstanceId") {
                    tracing::error!(
                        instance_id = %self.instance_id,
                        error = %e,
                        "this node is no longer registered (it was deregistered): stop the agent, or register the node again with a new activation"
                    );
                } else {
                    tracing::warn!(scope = ?self.scope, error = %e, "cannot get queue credentials");
                }
                Err(CredentialsError::provider_error(e))
            }
        }
    }
}

impl ProvideCredentials for QueueCredentialsProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.load())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_times() {
        // One hour: 80% comes first.
        assert_eq!(refresh_at(0.0, 3600.0), 2880.0);
        // Fifteen minutes: 80% (720) before five-minutes-before (600)? No: 600 is sooner.
        assert_eq!(refresh_at(0.0, 900.0), 600.0);
        // Nearly expired: not sooner than 30 s, not later than expiry.
        assert_eq!(refresh_at(0.0, 100.0), 30.0);
        assert_eq!(refresh_at(0.0, 10.0), 10.0);
    }
}
