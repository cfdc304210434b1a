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
    /// Version 2: the path from this payload's leaf to the root of the
    /// batch's hash tree; `sig` signs the root. Absent in version 1, where
    /// `sig` signs the payload itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proof: Vec<ProofStep>,
}

/// The envelope version of a message signed as one of a batch.
pub const TREE_VERSION: u32 = 2;

/// One level of a payload's path to its batch's root: the sibling's hash
/// and which side it is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofStep {
    /// The sibling is the left one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub left: bool,
    pub hash: String,
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
    /// Open a Session Manager session: the agent starts the shell or the
    /// forwarder and serves the session's channel.
    StartSession(SessionStart),
    /// End a session (TerminateSession); the agent closes it and reports it
    /// Terminated.
    TerminateSession(SessionTerminate),
}

/// A session the agent is to serve (docs/internals.md "Session frames").
/// It carries the session's key, so it is never logged: `Debug` hides it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStart {
    pub session_id: String,
    /// The per-session frame key (32 bytes, standard base64).
    pub key: crate::secret::Secret,
    /// The queue the agent receives the client's frames from.
    pub to_agent_queue_url: String,
    /// The queue the agent sends its frames to.
    pub to_client_queue_url: String,
    pub document_name: String,
    pub kind: SessionKind,
    /// The user the shell runs as; `None`: the agent's own session user
    /// (`ssm-user` when the agent runs as root, else the agent's user).
    #[serde(default)]
    pub run_as: Option<String>,
    /// Commands run in the shell before the operator types (shellProfile.linux).
    #[serde(default)]
    pub shell_profile: String,
    /// No data either way for this long ends the session.
    pub idle_timeout_seconds: u64,
    /// The session ends this long after it started, whatever happens.
    pub max_duration_seconds: u64,
    /// A presigned PUT for the transcript, when the preferences name a bucket.
    #[serde(default)]
    pub transcript_put_url: Option<String>,
}

/// What a session runs on the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum SessionKind {
    /// A login shell in a PTY; with `command`, that command in the PTY
    /// instead (AWS-StartInteractiveCommand), or without a PTY when not
    /// `interactive` (AWS-StartNonInteractiveCommand).
    Shell {
        #[serde(default)]
        command: Option<String>,
        interactive: bool,
    },
    /// Forwarded TCP connections to `host:port`, seen from the node.
    PortForward { host: String, port: u16 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTerminate {
    pub session_id: String,
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

/// Seals a batch of payloads (one fan-out round's messages, each to its own
/// node) with ONE signature: over the root of a hash tree whose leaves are
/// the payloads, each message carrying its path to the root. A node checks
/// its payload's path and the signature, then that the payload is
/// addressed to it, so a message replayed to another node is refused as
/// before (`WrongNode`); what a round costs KMS is one Sign, not one per
/// node.
///
/// The tree is written here rather than taken from a crate: it is thirty
/// lines over the SHA-256 already used, and the agent's size is budgeted.
/// Leaves and inner nodes are hashed with distinct prefixes (as RFC 6962
/// does), so an inner node can never pass for a payload.
pub async fn seal_downlinks(
    payloads: &[DownlinkPayload],
    signer: &dyn DigestSigner,
) -> Result<Vec<String>, ChannelError> {
    if payloads.is_empty() {
        return Ok(Vec::new());
    }
    let bytes: Vec<Vec<u8>> = payloads
        .iter()
        .map(|p| serde_json::to_vec(p).map_err(|e| ChannelError::Malformed(e.to_string())))
        .collect::<Result<_, _>>()?;
    let leaves: Vec<[u8; 32]> = bytes.iter().map(|b| leaf_hash(b)).collect();
    let (root, proofs) = hash_tree(&leaves);
    let sig = signer
        .sign_digest(Sha256::digest(root_message(&root)).into())
        .await?;
    let sig = B64.encode(sig);
    bytes
        .iter()
        .zip(proofs)
        .map(|(b, proof)| {
            let env = SignedDownlink {
                v: TREE_VERSION,
                payload: B64.encode(b),
                sig: sig.clone(),
                key: signer.key_id().to_string(),
                proof,
            };
            serde_json::to_string(&env).map_err(|e| ChannelError::Malformed(e.to_string()))
        })
        .collect()
}

fn leaf_hash(payload: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(payload)
        .finalize()
        .into()
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    Sha256::new()
        .chain_update([1u8])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// What the signature covers: the root, under a label of its own so that a
/// signature of a tree can never be taken for one of a version-1 payload.
fn root_message(root: &[u8; 32]) -> Vec<u8> {
    let mut m = b"steward downlink tree v2\n".to_vec();
    m.extend_from_slice(root);
    m
}

/// The root of the leaves' tree and each leaf's path to it. A level of odd
/// length carries its last node up unchanged.
fn hash_tree(leaves: &[[u8; 32]]) -> ([u8; 32], Vec<Vec<ProofStep>>) {
    let mut proofs = vec![Vec::new(); leaves.len()];
    // Which leaves sit under each node of the current level.
    let mut level: Vec<([u8; 32], Vec<usize>)> = leaves
        .iter()
        .enumerate()
        .map(|(i, h)| (*h, vec![i]))
        .collect();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        let mut pairs = level.into_iter();
        while let Some((left, mut under_left)) = pairs.next() {
            let Some((right, under_right)) = pairs.next() else {
                next.push((left, under_left));
                break;
            };
            for &i in &under_left {
                proofs[i].push(ProofStep {
                    left: false,
                    hash: B64.encode(right),
                });
            }
            for &i in &under_right {
                proofs[i].push(ProofStep {
                    left: true,
                    hash: B64.encode(left),
                });
            }
            under_left.extend(under_right);
            next.push((node_hash(&left, &right), under_left));
        }
        level = next;
    }
    (level[0].0, proofs)
}

/// The root a payload's path leads to.
fn root_of(payload: &[u8], proof: &[ProofStep]) -> Result<[u8; 32], ChannelError> {
    let mut h = leaf_hash(payload);
    for step in proof {
        let sibling: [u8; 32] = B64
            .decode(&step.hash)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(ChannelError::BadSignature)?;
        h = if step.left {
            node_hash(&sibling, &h)
        } else {
            node_hash(&h, &sibling)
        };
    }
    Ok(h)
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
        if env.v != VERSION && env.v != TREE_VERSION {
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
        let signed = if env.v == TREE_VERSION {
            root_message(&root_of(&bytes, &env.proof)?)
        } else {
            bytes.clone()
        };
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(&signed, &sig)
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
    /// A session's state changed on the node.
    SessionUpdate(SessionUpdate),
}

/// A session connected (its shell or forwarder is up) or ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUpdate {
    pub session_id: String,
    pub state: SessionState,
    /// Why it ended, for people (never terminal content).
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionState {
    Connected,
    /// Ended: exit, idle timeout, max duration, TerminateSession, agent stop.
    Terminated,
    /// Could not start (no such user, nothing listening on the port, …).
    Failed,
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

/// What a node signs to ask for credentials to one session's queues. The
/// label keeps it from ever passing for a node-credentials request.
pub fn session_credentials_request_message(
    instance_id: &str,
    session_id: &str,
    timestamp: i64,
) -> Vec<u8> {
    format!("session-credentials\n{instance_id}\n{session_id}\n{timestamp}").into_bytes()
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

    /// Builds a version-1 envelope (one signature over the payload), signing the bytes
    /// locally (KMS signs the digest; the signature is the same ECDSA over SHA-256).
    fn envelope(pair: &EcdsaKeyPair, payload: &DownlinkPayload) -> String {
        let bytes = serde_json::to_vec(payload).unwrap();
        let sig = pair.sign(&SystemRandom::new(), &bytes).unwrap();
        serde_json::to_string(&SignedDownlink {
            v: 1,
            payload: B64.encode(&bytes),
            sig: B64.encode(sig.as_ref()),
            key: "local".into(),
            proof: Vec::new(),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_batch_is_signed_once_and_each_message_opens_for_its_node_alone() {
        let signer = crate::run_command::memory::Signer::new();
        let verifier = signer.verifier();
        for n in [1usize, 2, 3, 5, 8, 13] {
            let nodes: Vec<String> = (0..n).map(|i| format!("mi-{i:017x}")).collect();
            let payloads: Vec<_> = nodes.iter().map(|id| payload(id, 2000.0)).collect();
            let bodies = seal_downlinks(&payloads, &signer).await.unwrap();
            assert_eq!(bodies.len(), n);
            let sigs: std::collections::BTreeSet<String> = bodies
                .iter()
                .map(|b| serde_json::from_str::<SignedDownlink>(b).unwrap().sig)
                .collect();
            assert_eq!(sigs.len(), 1, "one signature for the batch of {n}");
            for (i, body) in bodies.iter().enumerate() {
                assert_eq!(verifier.open(body, &nodes[i], 1000.0).unwrap(), payloads[i]);
                // Replayed to another node: refused.
                let other = &nodes[(i + 1) % n];
                if other != &nodes[i] {
                    assert_eq!(
                        verifier.open(body, other, 1000.0),
                        Err(ChannelError::WrongNode)
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn a_tampered_tree_message_does_not_verify() {
        let signer = crate::run_command::memory::Signer::new();
        let verifier = signer.verifier();
        let payloads: Vec<_> = (0..4)
            .map(|i| payload(&format!("mi-{i}"), 2000.0))
            .collect();
        let bodies = seal_downlinks(&payloads, &signer).await.unwrap();
        let env: SignedDownlink = serde_json::from_str(&bodies[1]).unwrap();
        // Another payload under this path, a path step changed, or no path.
        let mut forged = env.clone();
        forged.payload = B64.encode(serde_json::to_vec(&payload("mi-1", 9999.0)).unwrap());
        let mut flipped = env.clone();
        flipped.proof[0].left = !flipped.proof[0].left;
        let mut cut = env.clone();
        cut.proof.clear();
        // The tree's signature presented as a version-1 one.
        let mut v1 = env.clone();
        v1.v = VERSION;
        for bad in [forged, flipped, cut, v1] {
            let body = serde_json::to_string(&bad).unwrap();
            assert_eq!(
                verifier.open(&body, "mi-1", 1000.0),
                Err(ChannelError::BadSignature)
            );
        }
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
