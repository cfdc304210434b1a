//! Whole command output in S3: presigned PUT URLs the agent writes to, so it
//! needs no S3 rights of its own.
//!
//! A presigned URL stops working when the credentials that signed it
//! expire, whatever its X-Amz-Expires says. So each URL is signed with
//! credentials this adapter resolved itself, and its lifetime is capped at
//! their expiry when it is known: the URL says truthfully when it stops
//! working, and the agent asks for fresh ones then
//! (`Steward.GetOutputUploadUrls`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::presigning::PresigningConfig;
use steward_core::SsmError;
use steward_core::run_command::ports::{OutputLocations, PresignedPut};
use tokio::sync::Mutex;

use crate::Stack;

/// Credentials closer to their expiry than this are resolved again before
/// signing, so that a URL is not needlessly short-lived.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);
/// Credentials without a known expiry are resolved again after this (the
/// provider may rotate them).
const REUSE_UNDATED: Duration = Duration::from_secs(300);

#[derive(Clone, Debug)]
pub struct OutputBucket {
    client: Client,
    provider: Option<SharedCredentialsProvider>,
    region: String,
    allowed: Vec<String>,
    /// The credentials URLs are signed with, and when they were resolved.
    signing: Arc<Mutex<Option<(Credentials, SystemTime)>>>,
}

impl OutputBucket {
    pub fn new(stack: &Stack) -> Self {
        Self::with_client(
            stack.clients.s3.clone(),
            stack.clients.credentials.clone(),
            &stack.settings.region,
            stack.settings.allowed_output_buckets(),
        )
    }

    /// Over `client`, signing with credentials from `provider`, for
    /// `allowed` buckets.
    pub fn with_client(
        client: Client,
        provider: Option<SharedCredentialsProvider>,
        region: &str,
        allowed: Vec<String>,
    ) -> Self {
        Self {
            client,
            provider,
            region: region.to_string(),
            allowed,
            signing: Arc::new(Mutex::new(None)),
        }
    }

    /// The credentials to sign with now: the cached ones while they are
    /// good, else freshly resolved from the client's provider.
    async fn credentials(&self, now: SystemTime) -> Result<Credentials, SsmError> {
        let mut cached = self.signing.lock().await;
        if let Some((creds, resolved)) = cached.as_ref() {
            let fresh = match creds.expiry() {
                Some(expiry) => expiry > now + REFRESH_BEFORE,
                None => now < *resolved + REUSE_UNDATED,
            };
            if fresh {
                return Ok(creds.clone());
            }
        }
        let provider = self.provider.as_ref().ok_or_else(|| {
            tracing::error!("no AWS credentials to sign output uploads with");
            SsmError::internal()
        })?;
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| crate::failed("cannot resolve credentials to sign output uploads", e))?;
        *cached = Some((creds.clone(), now));
        Ok(creds)
    }
}

/// `wanted` seconds, or fewer so as not to outlive credentials expiring at
/// `expiry` (at least 1: SigV4 takes no 0).
pub fn capped_lifetime(wanted: u64, expiry: Option<SystemTime>, now: SystemTime) -> u64 {
    let wanted = wanted.max(1);
    match expiry {
        Some(expiry) => {
            let left = expiry.duration_since(now).map(|d| d.as_secs()).unwrap_or(0);
            wanted.min(left).max(1)
        }
        None => wanted,
    }
}

#[async_trait::async_trait]
impl OutputLocations for OutputBucket {
    fn allowed_buckets(&self) -> Vec<String> {
        self.allowed.clone()
    }

    async fn presign_put(
        &self,
        bucket: &str,
        region: &str,
        key: &str,
        expires_in_seconds: u64,
    ) -> Result<PresignedPut, SsmError> {
        let now = SystemTime::now();
        let creds = self.credentials(now).await?;
        let lifetime = capped_lifetime(expires_in_seconds, creds.expiry(), now);
        if lifetime < expires_in_seconds {
            tracing::debug!(
                wanted = expires_in_seconds,
                lifetime,
                "output upload URL capped at its signing credentials' expiry"
            );
        }
        let config = PresigningConfig::builder()
            .start_time(now)
            .expires_in(Duration::from_secs(lifetime))
            .build()
            .map_err(|e| {
                tracing::error!(error = %e, "bad presigning window");
                SsmError::internal()
            })?;
        // Signed with exactly the credentials whose expiry capped the URL; a
        // bucket in another region is signed for that region.
        let mut conf = self
            .client
            .config()
            .to_builder()
            .credentials_provider(creds);
        if !region.is_empty() && region != self.region {
            conf = conf.region(Region::new(region.to_string()));
        }
        let client = Client::from_conf(conf.build());
        let req = client
            .put_object()
            .bucket(bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| crate::failed("cannot presign an output upload", e))?;
        let put_url = req.uri().to_string();
        let object_url = put_url.split('?').next().unwrap_or_default().to_string();
        Ok(PresignedPut {
            put_url,
            object_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_never_outlives_its_credentials() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(capped_lifetime(3600, None, now), 3600);
        assert_eq!(
            capped_lifetime(3600, Some(now + Duration::from_secs(900)), now),
            900
        );
        assert_eq!(
            capped_lifetime(600, Some(now + Duration::from_secs(900)), now),
            600
        );
        // Already expired: the shortest URL SigV4 allows.
        assert_eq!(
            capped_lifetime(600, Some(now - Duration::from_secs(5)), now),
            1
        );
        assert_eq!(capped_lifetime(0, None, now), 1);
    }
}
