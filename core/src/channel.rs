//! The agent channel (docs/internals.md): versioned envelopes whose payload is
//! kept as the exact signed bytes. Downlink is signed with the control plane's
//! ECDSA P-256 key (in KMS, behind [`DigestSigner`]); uplink with the node's
//! Ed25519 key.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::inventory::step::{GatherInventory, InventoryReport};
use crate::patching::report::PatchReport;
use crate::patching::step::PatchStepInput;
use crate::run_command::status::InvocationDetail;

/// One step the agent runs, with its inputs already interpolated: what a
/// RunCommand carries for each step a document computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginStep {
    /// The name shown in CommandPlugins (`aws:runShellScript`).
    pub name: String,
    /// The plugin that runs it.
    pub action: String,
    pub run_command: Vec<String>,
    pub working_directory: String,
    pub timeout_seconds: u32,
    /// An `aws:runPatchBaseline` step's inputs, the node's baseline
    /// included; absent (and not in the signed bytes) for other plugins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<PatchStepInput>,
    /// An `aws:softwareInventory` step's collectors; absent (and not in
    /// the signed bytes) for other plugins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<GatherInventory>,
}

pub const VERSION: u32 = 1;

/// Why a message was refused. None of these carries message content.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ChannelError {
    #[error("message is not a channel envelope: {0}")]
    Malformed(String),
    #[error("message version {0} is not supported")]
    UnsupportedVersion(u32),
    #[error("message is not signed")]
    Unsigned,
    #[error("message signature does not verify")]
    BadSignature,
    #[error("message is addressed to another node")]
    WrongNode,
    #[error("message expired")]
    Expired,
    #[error("message was already received")]
    Replayed,
    #[error("signing failed: {0}")]
    Signing(String),
}

// ---------------------------------------------------------------- downlink

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedDownlink {
    pub v: u32,
    pub payload: String,
    #[serde(default)]
    pub sig: String,
    #[serde(default)]
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DownlinkPayload {
    pub v: u32,
    pub msg_id: String,
    pub node_id: String,
    pub issued_at: f64,
    pub expires_at: f64,
    #[serde(flatten)]
    pub message: Downlink,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body")]
pub enum Downlink {
    /// Run a command's steps. The wire kind keeps SSM's operation name.
    #[serde(rename = "RunCommand")]
    Run(RunMessage),
    #[serde(rename = "CancelCommand")]
    Cancel(CancelMessage),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMessage {
    pub command_id: String,
    pub document_name: String,
    pub document_version: String,
    pub steps: Vec<PluginStep>,
    /// Where to put whole output, one entry per step, when the command asked for S3.
    #[serde(default)]
    pub uploads: Vec<StepUpload>,
}

/// Presigned PUT URLs for one step's whole output: the agent needs no S3 rights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUpload {
    pub stdout_put_url: String,
    pub stderr_put_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelMessage {
    pub command_id: String,
}

/// Signs a SHA-256 digest with ECDSA P-256, returning a DER signature. The
/// control plane implements it with KMS.
#[async_trait::async_trait]
pub trait DigestSigner: Send + Sync {
    fn key_id(&self) -> &str;
    async fn sign_digest(&self, digest: [u8; 32]) -> Result<Vec<u8>, ChannelError>;
}

pub async fn seal_downlink(
    payload: &DownlinkPayload,
    signer: &dyn DigestSigner,
) -> Result<String, ChannelError> {
    let bytes = serde_json::to_vec(payload).map_err(|e| ChannelError::Malformed(e.to_string()))?;
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    let sig = signer.sign_digest(digest).await?;
    let env = SignedDownlink {
        v: VERSION,
        payload: B64.encode(&bytes),
        sig: B64.encode(sig),
        key: signer.key_id().to_string(),
    };
    serde_json::to_string(&env).map_err(|e| ChannelError::Malformed(e.to_string()))
}

/// The command-signing public key the agent pinned at registration.
pub struct DownlinkVerifier {
    point: Vec<u8>,
}

impl DownlinkVerifier {
    /// From KMS's `GetPublicKey` answer: DER SubjectPublicKeyInfo (or the bare
    /// uncompressed point).
    pub fn from_der(der: &[u8]) -> Result<Self, ChannelError> {
        // A P-256 SPKI is a fixed 26-byte header followed by the 65-byte
        // uncompressed point; parsing ASN.1 in general is not needed for it.
        let point = match der.len() {
            65 => der,
            91 => &der[26..],
            n => {
                return Err(ChannelError::Malformed(format!(
                    "public key of {n} bytes is not a P-256 key"
                )));
            }
        };
        if point[0] != 0x04 {
            return Err(ChannelError::Malformed(
                "public key point is not uncompressed".into(),
            ));
        }
        Ok(Self {
            point: point.to_vec(),
        })
    }

    pub fn from_base64(b64: &str) -> Result<Self, ChannelError> {
        let der = B64
            .decode(b64)
            .map_err(|e| ChannelError::Malformed(format!("public key: {e}")))?;
        Self::from_der(&der)
    }

    /// Verifies and decodes a node-queue message for `node_id` at time `now`.
    /// Replay is checked by the caller against its journal with the returned `msg_id`.
    pub fn open(
        &self,
        body: &str,
        node_id: &str,
        now: f64,
    ) -> Result<DownlinkPayload, ChannelError> {
        let env: SignedDownlink =
            serde_json::from_str(body).map_err(|e| ChannelError::Malformed(e.to_string()))?;
        if env.v != VERSION {
            return Err(ChannelError::UnsupportedVersion(env.v));
        }
        if env.sig.is_empty() {
            return Err(ChannelError::Unsigned);
        }
        let bytes = B64
            .decode(&env.payload)
            .map_err(|e| ChannelError::Malformed(e.to_string()))?;
        let sig = B64
            .decode(&env.sig)
            .map_err(|_| ChannelError::BadSignature)?;
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(&bytes, &sig)
            .map_err(|_| ChannelError::BadSignature)?;
        let payload: DownlinkPayload =
            serde_json::from_slice(&bytes).map_err(|e| ChannelError::Malformed(e.to_string()))?;
        if payload.v != VERSION {
            return Err(ChannelError::UnsupportedVersion(payload.v));
        }
        if payload.node_id != node_id {
            return Err(ChannelError::WrongNode);
        }
        if now > payload.expires_at {
            return Err(ChannelError::Expired);
        }
        Ok(payload)
    }
}

// ---------------------------------------------------------------- uplink

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedUplink {
    pub v: u32,
    pub node_id: String,
    pub payload: String,
    pub sig: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UplinkPayload {
    pub v: u32,
    pub msg_id: String,
    pub sent_at: f64,
    #[serde(flatten)]
    pub message: Uplink,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body")]
pub enum Uplink {
    InvocationUpdate(InvocationUpdate),
    Heartbeat(Heartbeat),
    MessageRejected(MessageRejected),
    /// One part of a patch Scan or Install's result, sent before the
    /// invocation's final update.
    PatchReport(PatchReport),
    /// The types an inventory gather found changed, sent before the
    /// invocation's final update (split by type when large).
    Inventory(InventoryReport),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvocationUpdate {
    pub command_id: String,
    pub detail: InvocationDetail,
    /// -1 until the invocation has a result, as SSM's ResponseCode.
    pub response_code: i32,
    pub execution_start: Option<f64>,
    pub execution_end: Option<f64>,
    #[serde(default)]
    pub plugins: Vec<PluginResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginResult {
    pub name: String,
    pub detail: InvocationDetail,
    pub response_code: i32,
    pub start: Option<f64>,
    pub end: Option<f64>,
    /// Already truncated to SSM's inline limits by the agent.
    pub stdout: String,
    pub stderr: String,
    /// Whether whole output was uploaded to the presigned URLs.
    #[serde(default)]
    pub uploaded: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub agent_version: String,
    pub platform_type: String,
    pub platform_name: String,
    pub platform_version: String,
    pub ip_address: String,
    pub computer_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRejected {
    /// A [`ChannelError`] as text; never the message's content.
    pub reason: String,
    pub queue_message_id: String,
}

/// A node's Ed25519 identity, kept as PKCS#8 in the agent's state directory.
pub struct NodeKey {
    pair: Ed25519KeyPair,
}

impl NodeKey {
    pub fn generate() -> Result<(Self, Vec<u8>), ChannelError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| ChannelError::Signing("cannot generate an Ed25519 key".into()))?;
        let bytes = pkcs8.as_ref().to_vec();
        Ok((Self::from_pkcs8(&bytes)?, bytes))
    }

    pub fn from_pkcs8(bytes: &[u8]) -> Result<Self, ChannelError> {
        let pair = Ed25519KeyPair::from_pkcs8(bytes)
            .map_err(|_| ChannelError::Malformed("node key is not an Ed25519 PKCS#8 key".into()))?;
        Ok(Self { pair })
    }

    pub fn public_key_base64(&self) -> String {
        B64.encode(self.pair.public_key().as_ref())
    }

    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        self.pair.sign(data).as_ref().to_vec()
    }

    pub fn seal(&self, node_id: &str, payload: &UplinkPayload) -> Result<String, ChannelError> {
        let bytes =
            serde_json::to_vec(payload).map_err(|e| ChannelError::Malformed(e.to_string()))?;
        let env = SignedUplink {
            v: VERSION,
            node_id: node_id.to_string(),
            sig: B64.encode(self.sign(&bytes)),
            payload: B64.encode(&bytes),
        };
        serde_json::to_string(&env).map_err(|e| ChannelError::Malformed(e.to_string()))
    }
}

/// Reads the envelope's claimed sender without trusting anything yet.
pub fn uplink_sender(body: &str) -> Result<SignedUplink, ChannelError> {
    let env: SignedUplink =
        serde_json::from_str(body).map_err(|e| ChannelError::Malformed(e.to_string()))?;
    if env.v != VERSION {
        return Err(ChannelError::UnsupportedVersion(env.v));
    }
    if env.sig.is_empty() {
        return Err(ChannelError::Unsigned);
    }
    Ok(env)
}

/// Verifies an uplink envelope with the sender's registered public key (base64).
pub fn open_uplink(
    env: &SignedUplink,
    public_key_b64: &str,
) -> Result<UplinkPayload, ChannelError> {
    let bytes = B64
        .decode(&env.payload)
        .map_err(|e| ChannelError::Malformed(e.to_string()))?;
    verify_node_signature(public_key_b64, &bytes, &env.sig)?;
    let payload: UplinkPayload =
        serde_json::from_slice(&bytes).map_err(|e| ChannelError::Malformed(e.to_string()))?;
    if payload.v != VERSION {
        return Err(ChannelError::UnsupportedVersion(payload.v));
    }
    Ok(payload)
}

/// Checks a base64 Ed25519 signature by a node over `data`.
pub fn verify_node_signature(
    public_key_b64: &str,
    data: &[u8],
    sig_b64: &str,
) -> Result<(), ChannelError> {
    let pk = B64
        .decode(public_key_b64)
        .map_err(|_| ChannelError::BadSignature)?;
    let sig = B64
        .decode(sig_b64)
        .map_err(|_| ChannelError::BadSignature)?;
    UnparsedPublicKey::new(&signature::ED25519, &pk)
        .verify(data, &sig)
        .map_err(|_| ChannelError::BadSignature)
}

/// What a node signs to ask for SQS credentials.
pub fn credentials_request_message(instance_id: &str, timestamp: i64) -> Vec<u8> {
    format!("{instance_id}\n{timestamp}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};

    fn signer() -> (EcdsaKeyPair, Vec<u8>) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        (pair, point)
    }

    /// Builds an envelope the way `seal_downlink` does, signing the bytes
    /// locally (KMS signs the digest; the signature is the same ECDSA over SHA-256).
    fn envelope(pair: &EcdsaKeyPair, payload: &DownlinkPayload) -> String {
        let bytes = serde_json::to_vec(payload).unwrap();
        let sig = pair.sign(&SystemRandom::new(), &bytes).unwrap();
        serde_json::to_string(&SignedDownlink {
            v: 1,
            payload: B64.encode(&bytes),
            sig: B64.encode(sig.as_ref()),
            key: "local".into(),
        })
        .unwrap()
    }

    fn payload(node: &str, expires_at: f64) -> DownlinkPayload {
        DownlinkPayload {
            v: 1,
            msg_id: "m1".into(),
            node_id: node.into(),
            issued_at: 100.0,
            expires_at,
            message: Downlink::Cancel(CancelMessage {
                command_id: "c".into(),
            }),
        }
    }

    #[test]
    fn downlink_round_trip_and_refusals() {
        let (pair, point) = signer();
        let v = DownlinkVerifier::from_der(&point).unwrap();
        let body = envelope(&pair, &payload("mi-1", 200.0));
        assert_eq!(
            v.open(&body, "mi-1", 150.0).unwrap(),
            payload("mi-1", 200.0)
        );
        assert_eq!(
            v.open(&body, "mi-2", 150.0).unwrap_err(),
            ChannelError::WrongNode
        );
        assert_eq!(
            v.open(&body, "mi-1", 250.0).unwrap_err(),
            ChannelError::Expired
        );

        // Altered payload: same signature, other bytes.
        let mut env: SignedDownlink = serde_json::from_str(&body).unwrap();
        let mut bytes = B64.decode(&env.payload).unwrap();
        let pos = bytes.iter().position(|b| *b == b'c').unwrap();
        bytes[pos] = b'd';
        env.payload = B64.encode(&bytes);
        let altered = serde_json::to_string(&env).unwrap();
        assert_eq!(
            v.open(&altered, "mi-1", 150.0).unwrap_err(),
            ChannelError::BadSignature
        );

        // Unsigned.
        env.sig.clear();
        let unsigned = serde_json::to_string(&env).unwrap();
        assert_eq!(
            v.open(&unsigned, "mi-1", 150.0).unwrap_err(),
            ChannelError::Unsigned
        );

        // Signed by someone else.
        let (other, _) = signer();
        let forged = envelope(&other, &payload("mi-1", 200.0));
        assert_eq!(
            v.open(&forged, "mi-1", 150.0).unwrap_err(),
            ChannelError::BadSignature
        );

        assert!(matches!(
            v.open("not json", "mi-1", 1.0),
            Err(ChannelError::Malformed(_))
        ));
    }

    #[test]
    fn spki_der_is_accepted() {
        let (_, point) = signer();
        let mut der = vec![0u8; 26];
        der.extend_from_slice(&point);
        assert!(DownlinkVerifier::from_der(&der).is_ok());
        assert!(matches!(
            DownlinkVerifier::from_der(&[4u8; 10]),
            Err(ChannelError::Malformed(_))
        ));
    }

    #[test]
    fn uplink_round_trip_and_refusals() {
        let (key, pkcs8) = NodeKey::generate().unwrap();
        let again = NodeKey::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(key.public_key_base64(), again.public_key_base64());
        let p = UplinkPayload {
            v: 1,
            msg_id: "u1".into(),
            sent_at: 1.0,
            message: Uplink::MessageRejected(MessageRejected {
                reason: "x".into(),
                queue_message_id: "q".into(),
            }),
        };
        let body = key.seal("mi-1", &p).unwrap();
        let env = uplink_sender(&body).unwrap();
        assert_eq!(env.node_id, "mi-1");
        assert_eq!(open_uplink(&env, &key.public_key_base64()).unwrap(), p);
        let (other, _) = NodeKey::generate().unwrap();
        assert_eq!(
            open_uplink(&env, &other.public_key_base64()).unwrap_err(),
            ChannelError::BadSignature
        );
        let msg = credentials_request_message("mi-1", 42);
        let sig = B64.encode(key.sign(&msg));
        assert!(verify_node_signature(&key.public_key_base64(), &msg, &sig).is_ok());
        assert_eq!(
            verify_node_signature(&key.public_key_base64(), b"other", &sig).unwrap_err(),
            ChannelError::BadSignature
        );
    }
}
