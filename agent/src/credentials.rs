//! SQS credentials from `Steward.GetNodeCredentials`, cached and refreshed
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

/// Caches node credentials; the SDK asks again when the cached ones reach
/// their refresh time (we hand the SDK that time as their expiry).
#[derive(Clone)]
pub struct NodeCredentialsProvider {
    api: Api,
    instance_id: String,
    key: Arc<NodeKey>,
    cache: Arc<Mutex<Option<Cached>>>,
}

impl std::fmt::Debug for NodeCredentialsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCredentialsProvider")
            .field("instance_id", &self.instance_id)
            .finish_non_exhaustive()
    }
}

impl NodeCredentialsProvider {
    pub fn new(api: Api, instance_id: String, key: Arc<NodeKey>) -> Self {
        Self {
            api,
            instance_id,
            key,
            cache: Arc::new(Mutex::new(None)),
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
        match self
            .api
            .node_credentials(&self.instance_id, &self.key, now_epoch() as i64)
            .await
        {
            Ok(answer) => {
                let expires_at = answer.expires_at().ok_or_else(|| {
                    CredentialsError::provider_error(
                        "GetNodeCredentials answered an unreadable Expiration",
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
                    "steward-node",
                );
                tracing::debug!(refresh_in = refresh - now, "node credentials refreshed");
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
                    tracing::warn!(error = %e, "cannot refresh node credentials; using the current ones");
                    let retry = Credentials::new(
                        c.creds.access_key_id(),
                        c.creds.secret_access_key(),
                        c.creds.session_token().map(str::to_string),
                        Some(local_time(now + 30.0 - clock.offset())),
                        "steward-node",
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
                    tracing::warn!(error = %e, "cannot get node credentials");
                }
                Err(CredentialsError::provider_error(e))
            }
        }
    }
}

impl ProvideCredentials for NodeCredentialsProvider {
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
