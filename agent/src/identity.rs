//! The node's identity, written once at registration: who it is, where its
//! queues are, whose signatures it trusts, and its own signing key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use steward_core::channel::{DownlinkVerifier, NodeKey};
use thiserror::Error;

use crate::fsutil;

const IDENTITY_FILE: &str = "identity.json";
const KEY_FILE: &str = "node.key";

#[derive(Debug, Error)]
pub enum IdentityError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged ({reason}); remove the state directory and register again")]
    Damaged { path: PathBuf, reason: String },
}

/// What `RegisterManagedInstance` answered, plus the API it was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Identity {
    pub instance_id: String,
    pub queue_url: String,
    pub ingest_queue_url: String,
    pub region: String,
    pub command_signing_public_key: String,
    #[serde(default)]
    pub api_url: String,
}

impl Identity {
    /// The identity in `state_dir`, or `None` when the node is not registered.
    pub fn load(
        state_dir: &Path,
    ) -> Result<Option<(Identity, NodeKey, DownlinkVerifier)>, IdentityError> {
        let path = state_dir.join(IDENTITY_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(IdentityError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        let identity: Identity =
            serde_json::from_str(&text).map_err(|e| IdentityError::Damaged {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let key_path = state_dir.join(KEY_FILE);
        let pkcs8 = std::fs::read(&key_path).map_err(|source| IdentityError::Io {
            action: "read",
            path: key_path.clone(),
            source,
        })?;
        let key = NodeKey::from_pkcs8(&pkcs8).map_err(|e| IdentityError::Damaged {
            path: key_path,
            reason: e.to_string(),
        })?;
        let verifier = DownlinkVerifier::from_base64(&identity.command_signing_public_key)
            .map_err(|e| IdentityError::Damaged {
                path,
                reason: e.to_string(),
            })?;
        Ok(Some((identity, key, verifier)))
    }

    /// Writes the key, then the identity (whose presence means "registered"),
    /// each atomically and readable only by the agent's user.
    pub fn save(&self, state_dir: &Path, pkcs8: &[u8]) -> Result<(), IdentityError> {
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| IdentityError::Io {
                action,
                path,
                source,
            }
        };
        fsutil::ensure_private_dir(state_dir).map_err(io("create", state_dir))?;
        let key_path = state_dir.join(KEY_FILE);
        fsutil::write_atomic(&key_path, pkcs8, 0o600).map_err(io("write", &key_path))?;
        let path = state_dir.join(IDENTITY_FILE);
        let json = serde_json::to_vec_pretty(self).map_err(|e| IdentityError::Damaged {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        fsutil::write_atomic(&path, &json, 0o600).map_err(io("write", &path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        assert!(Identity::load(&state).unwrap().is_none());
        // A P-256 uncompressed point is 65 bytes starting with 4; any such
        // bytes parse (verification would fail, which this test does not need).
        let mut point = vec![4u8];
        point.extend([7u8; 64]);
        use base64::Engine;
        let id = Identity {
            instance_id: "mi-0123456789abcdef0".into(),
            queue_url: "q".into(),
            ingest_queue_url: "i".into(),
            region: "us-east-1".into(),
            command_signing_public_key: base64::engine::general_purpose::STANDARD.encode(&point),
            api_url: "http://api".into(),
        };
        let (key, pkcs8) = NodeKey::generate().unwrap();
        id.save(&state, &pkcs8).unwrap();
        let (loaded, k, _) = Identity::load(&state).unwrap().unwrap();
        assert_eq!(loaded, id);
        assert_eq!(k.public_key_base64(), key.public_key_base64());
        let mode = std::fs::metadata(state.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
