//! The control plane's downlink signer: KMS `Sign` over the SHA-256 digest
//! (MessageType DIGEST, ECDSA_SHA_256) with the `CommandSigningKey`.

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use steward_core::SsmError;
use steward_core::channel::{ChannelError, DigestSigner};

use crate::Stack;

#[derive(Clone, Debug)]
pub struct KmsSigner {
    client: Client,
    key_id: String,
}

impl KmsSigner {
    pub fn new(stack: &Stack) -> Self {
        Self::with_key(stack.clients.kms.clone(), &stack.settings.signing_key_id)
    }

    pub fn with_key(client: Client, key_id: &str) -> Self {
        Self {
            client,
            key_id: key_id.to_string(),
        }
    }

    /// The key's public half as DER SubjectPublicKeyInfo, what agents pin.
    pub async fn public_key_der(&self) -> Result<Vec<u8>, SsmError> {
        public_key_der(&self.client, &self.key_id).await
    }
}

/// The public half of KMS key `key_id` as DER SubjectPublicKeyInfo.
pub(crate) async fn public_key_der(client: &Client, key_id: &str) -> Result<Vec<u8>, SsmError> {
    let resp = client
        .get_public_key()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| crate::failed("KMS GetPublicKey failed", e))?;
    resp.public_key
        .map(Blob::into_inner)
        .ok_or_else(SsmError::internal)
}

#[async_trait::async_trait]
impl DigestSigner for KmsSigner {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    async fn sign_digest(&self, digest: [u8; 32]) -> Result<Vec<u8>, ChannelError> {
        let resp = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(digest.to_vec()))
            .message_type(MessageType::Digest)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| {
                crate::log_failure("KMS Sign failed", &e);
                ChannelError::Signing("KMS Sign failed; see the control plane log".into())
            })?;
        resp.signature
            .map(Blob::into_inner)
            .ok_or_else(|| ChannelError::Signing("KMS returned no signature".into()))
    }
}
