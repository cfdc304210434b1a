//! KMS data keys for SecureString parameters: `GenerateDataKey` (AES_256)
//! and `Decrypt`, both bound to an encryption context (the parameter's ARN,
//! see `steward_core::parameters::secrets`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_kms::Client;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use steward_core::SsmError;
use steward_core::parameters::{DataKey, DataKeys};

use crate::Stack;
use crate::internal;

/// KMS calls made, shared by every clone of a [`KmsDataKeys`].
#[derive(Debug, Default)]
pub struct KmsCalls {
    pub generate: AtomicU64,
    pub decrypt: AtomicU64,
}

impl KmsCalls {
    /// (GenerateDataKey calls, Decrypt calls) so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.generate.load(Ordering::Relaxed),
            self.decrypt.load(Ordering::Relaxed),
        )
    }
}

/// [`DataKeys`] over KMS. Clones share the client and the call counters.
#[derive(Clone, Debug)]
pub struct KmsDataKeys {
    client: Client,
    calls: Arc<KmsCalls>,
}

/// KMS error codes meaning "this key cannot be used": the caller named a
/// wrong, disabled, pending-deletion or non-symmetric key.
const UNUSABLE_KEY: [&str; 6] = [
    "NotFoundException",
    "DisabledException",
    "InvalidArnException",
    "KMSInvalidStateException",
    "InvalidKeyUsageException",
    "ValidationException",
];

fn unusable_key(key_id: &str) -> SsmError {
    SsmError::InvalidKeyId(format!(
        "Key {key_id} does not exist or is not enabled; give the id, ARN or alias of an enabled symmetric KMS key of this account and region."
    ))
}

/// An ARN that names neither a key nor an alias is refused before KMS sees
/// it (some emulators answer it with an internal error).
fn malformed_arn(key_id: &str) -> bool {
    key_id.starts_with("arn:") && !(key_id.contains(":key/") || key_id.contains(":alias/"))
}

impl KmsDataKeys {
    pub fn new(stack: &Stack) -> Self {
        Self::from_client(stack.clients.kms.clone())
    }

    pub fn from_client(client: Client) -> Self {
        Self {
            client,
            calls: Arc::new(KmsCalls::default()),
        }
    }

    /// The counters of this adapter and its clones.
    pub fn calls(&self) -> Arc<KmsCalls> {
        Arc::clone(&self.calls)
    }
}

fn code<E: ProvideErrorMetadata>(e: &SdkError<E>) -> Option<&str> {
    e.as_service_error().and_then(|s| s.code())
}

#[async_trait::async_trait]
impl DataKeys for KmsDataKeys {
    async fn generate(&self, key_id: &str, context: &[(&str, &str)]) -> Result<DataKey, SsmError> {
        if key_id.is_empty() || malformed_arn(key_id) {
            return Err(unusable_key(key_id));
        }
        self.calls.generate.fetch_add(1, Ordering::Relaxed);
        let mut request = self
            .client
            .generate_data_key()
            .key_id(key_id)
            .key_spec(DataKeySpec::Aes256);
        for (k, v) in context {
            request = request.encryption_context(*k, *v);
        }
        let resp = match request.send().await {
            Ok(r) => r,
            Err(e) if code(&e).is_some_and(|c| UNUSABLE_KEY.contains(&c)) => {
                tracing::info!(
                    key_id,
                    code = code(&e).unwrap_or_default(),
                    "KMS refused the key"
                );
                return Err(unusable_key(key_id));
            }
            Err(e) => return Err(internal(e)),
        };
        let plaintext: [u8; 32] = resp
            .plaintext
            .as_ref()
            .and_then(|p| p.as_ref().try_into().ok())
            .ok_or_else(|| {
                tracing::error!(key_id, "GenerateDataKey returned no 32-byte data key");
                SsmError::internal()
            })?;
        let encrypted = resp
            .ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(SsmError::internal)?;
        let key_arn = resp.key_id.ok_or_else(SsmError::internal)?;
        Ok(DataKey {
            plaintext,
            encrypted,
            key_arn,
        })
    }

    async fn decrypt(
        &self,
        encrypted: &[u8],
        context: &[(&str, &str)],
    ) -> Result<[u8; 32], SsmError> {
        self.calls.decrypt.fetch_add(1, Ordering::Relaxed);
        let mut request = self
            .client
            .decrypt()
            .ciphertext_blob(Blob::new(encrypted.to_vec()));
        for (k, v) in context {
            request = request.encryption_context(*k, *v);
        }
        let resp = match request.send().await {
            Ok(r) => r,
            // The data key was sealed under another context (the value was
            // moved from another parameter) or is damaged. The message names
            // neither the value nor the key material.
            Err(e)
                if code(&e).is_some_and(|c| {
                    c == "InvalidCiphertextException" || c == "IncorrectKeyException"
                }) =>
            {
                tracing::info!("KMS refused a data key for its context");
                return Err(SsmError::InvalidKeyId(
                    "The stored data key does not decrypt for this parameter: it was sealed for another one or damaged. Put the parameter again with its value."
                        .into(),
                ));
            }
            Err(e) if code(&e).is_some_and(|c| UNUSABLE_KEY.contains(&c)) => {
                tracing::info!(
                    code = code(&e).unwrap_or_default(),
                    "KMS refused the key of a stored value"
                );
                return Err(SsmError::InvalidKeyId(
                    "The KMS key that sealed this value does not exist or is not enabled; enable it, or put the parameter again under another key."
                        .into(),
                ));
            }
            Err(e) => return Err(internal(e)),
        };
        resp.plaintext
            .as_ref()
            .and_then(|p| p.as_ref().try_into().ok())
            .ok_or_else(|| {
                tracing::error!("Decrypt returned no 32-byte data key");
                SsmError::internal()
            })
    }
}
