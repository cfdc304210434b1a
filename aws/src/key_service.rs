//! KMS for the fleet: decrypting access-key secrets under `DataKey` (bound to
//! the key id by the encryption context) and publishing the command-signing
//! key's public half.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::sync::OnceCell;

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use steward_core::SsmError;
use steward_core::fleet::{SecretDecrypter, SigningKey};
use steward_core::identity::{IamError, KeySealer};
use steward_core::secret::Secret;

use crate::Stack;
use crate::internal;

pub const ACCESS_KEY_CONTEXT: &str = "steward:access-key-id";

#[derive(Clone, Debug)]
pub struct DataKey {
    client: Client,
    key_id: String,
}

impl DataKey {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.kms.clone(),
            key_id: stack.settings.data_key_id.clone(),
        }
    }

    /// Encrypts a new access key's secret (provisioning and key rotation).
    pub async fn encrypt_secret(
        &self,
        access_key_id: &str,
        secret: &Secret,
    ) -> Result<String, SsmError> {
        let resp = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(secret.expose().as_bytes()))
            .encryption_context(ACCESS_KEY_CONTEXT, access_key_id)
            .send()
            .await
            .map_err(internal)?;
        let blob = resp.ciphertext_blob.ok_or_else(SsmError::internal)?;
        Ok(B64.encode(blob.as_ref()))
    }
}

/// New keys made by CreateAccessKey are sealed the way provisioning seals
/// the bootstrap key.
#[async_trait::async_trait]
impl KeySealer for DataKey {
    async fn seal(&self, access_key_id: &str, secret: &Secret) -> Result<String, IamError> {
        self.encrypt_secret(access_key_id, secret)
            .await
            .map_err(|_| IamError::service_failure())
    }
}

#[async_trait::async_trait]
impl SecretDecrypter for DataKey {
    async fn decrypt(&self, access_key_id: &str, ciphertext_b64: &str) -> Result<Secret, SsmError> {
        let blob = B64.decode(ciphertext_b64).map_err(|_| {
            tracing::error!(access_key_id, "access key record holds no valid ciphertext");
            SsmError::internal()
        })?;
        let resp = self
            .client
            .decrypt()
            .ciphertext_blob(Blob::new(blob))
            .encryption_context(ACCESS_KEY_CONTEXT, access_key_id)
            .send()
            .await
            .map_err(internal)?;
        let plain = resp.plaintext.ok_or_else(SsmError::internal)?;
        let secret = String::from_utf8(plain.into_inner()).map_err(|_| SsmError::internal())?;
        Ok(Secret::new(secret))
    }
}

/// The command-signing key's public half, fetched once per process.
#[derive(Debug)]
pub struct CommandSigningKey {
    client: Client,
    key_id: String,
    cached: OnceCell<String>,
}

impl CommandSigningKey {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.kms.clone(),
            key_id: stack.settings.signing_key_id.clone(),
            cached: OnceCell::new(),
        }
    }
}

#[async_trait::async_trait]
impl SigningKey for CommandSigningKey {
    async fn public_key_b64(&self) -> Result<String, SsmError> {
        self.cached
            .get_or_try_init(|| async {
                let der = crate::signer::public_key_der(&self.client, &self.key_id).await?;
                Ok(B64.encode(der))
            })
            .await
            .cloned()
    }
}
