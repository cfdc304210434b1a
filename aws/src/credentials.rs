//! Node credentials: STS AssumeRole on `NodeRole`, narrowed by a session policy.

use aws_sdk_sts::Client;
use steward_core::SsmError;
use steward_core::fleet::CredentialIssuer;
use steward_core::fleet::ports::NodeCredentials;
use steward_core::secret::Secret;

use crate::Stack;
use crate::internal;

#[derive(Clone, Debug)]
pub struct StsCredentialIssuer {
    client: Client,
    role_arn: String,
}

impl StsCredentialIssuer {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.sts.clone(),
            role_arn: stack.settings.node_role_arn.clone(),
        }
    }
}

#[async_trait::async_trait]
impl CredentialIssuer for StsCredentialIssuer {
    async fn issue(
        &self,
        session_name: &str,
        session_policy: &str,
        duration_seconds: i32,
    ) -> Result<NodeCredentials, SsmError> {
        let resp = self
            .client
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(session_name)
            .policy(session_policy)
            .duration_seconds(duration_seconds)
            .send()
            .await
            .map_err(internal)?;
        let c = resp.credentials.ok_or_else(SsmError::internal)?;
        let expiration = c.expiration.as_secs_f64();
        Ok(NodeCredentials {
            access_key_id: c.access_key_id,
            secret_access_key: Secret::new(c.secret_access_key),
            session_token: Secret::new(c.session_token),
            expiration,
        })
    }
}
