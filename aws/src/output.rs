//! Whole command output in S3: presigned PUT URLs the agent writes to, so it
//! needs no S3 rights of its own.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::presigning::PresigningConfig;
use steward_core::SsmError;
use steward_core::run_command::ports::{OutputLocations, PresignedPut};

use crate::Stack;

#[derive(Clone, Debug)]
pub struct OutputBucket {
    client: Client,
    region: String,
}

impl OutputBucket {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.s3.clone(),
            region: stack.settings.region.clone(),
        }
    }
}

#[async_trait::async_trait]
impl OutputLocations for OutputBucket {
    async fn presign_put(
        &self,
        bucket: &str,
        region: &str,
        key: &str,
        expires_in_seconds: u64,
    ) -> Result<PresignedPut, SsmError> {
        let config = PresigningConfig::expires_in(Duration::from_secs(expires_in_seconds.max(1)))
            .map_err(|e| {
            tracing::error!(error = %e, "bad presigning window");
            SsmError::internal()
        })?;
        // A bucket in another region is signed for that region.
        let client = if region.is_empty() || region == self.region {
            self.client.clone()
        } else {
            let conf = self
                .client
                .config()
                .to_builder()
                .region(Region::new(region.to_string()))
                .build();
            Client::from_conf(conf)
        };
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
