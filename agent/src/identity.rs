//! The node's identity, written once at registration: who it is, where its
//! queues are, whose signatures it trusts, and its own signing key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use steward_core::channel::{DownlinkVerifier, NodeKey};
use thiserror::Error;

use crate::fsutil;

const IDENTITY_FILE: &str = "identity.json";
const KEY_FILE: &str = "node.key";
/// What the agent keeps about one node's commands (see `daemon`).
const NODE_STATE_DIRS: [&str; 3] = ["journal", "spool", "runs"];

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
        let (key, _) = Self::load_key(state_dir)?.ok_or_else(|| IdentityError::Io {
            action: "read",
            path: state_dir.join(KEY_FILE),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
        let verifier = DownlinkVerifier::from_base64(&identity.command_signing_public_key)
            .map_err(|e| IdentityError::Damaged {
                path,
                reason: e.to_string(),
            })?;
        Ok(Some((identity, key, verifier)))
    }

    /// The node key in `state_dir` and its PKCS#8 bytes, if there is one.
    pub fn load_key(state_dir: &Path) -> Result<Option<(NodeKey, Vec<u8>)>, IdentityError> {
        let path = state_dir.join(KEY_FILE);
        let pkcs8 = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(IdentityError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        let key = NodeKey::from_pkcs8(&pkcs8).map_err(|e| IdentityError::Damaged {
            path,
            reason: e.to_string(),
        })?;
        Ok(Some((key, pkcs8)))
    }

    /// The key for a registration of an unregistered node: the one an
    /// earlier attempt left (its answer may have been lost after the
    /// control plane registered that key), else a new one, written before
    /// it is sent. A node registered by instance identity can only register
    /// again with the key the control plane has.
    pub fn pending_key(state_dir: &Path) -> Result<(NodeKey, Vec<u8>), IdentityError> {
        match Self::load_key(state_dir) {
            Ok(Some(found)) => return Ok(found),
            Ok(None) => {}
            // Never registered with it, so nothing can depend on it: replace it.
            Err(IdentityError::Damaged { path, reason }) => {
                tracing::warn!(path = %path.display(), %reason, "a damaged pending node key is replaced");
            }
            Err(e) => return Err(e),
        }
        let (key, pkcs8) = NodeKey::generate().map_err(|e| IdentityError::Damaged {
            path: state_dir.join(KEY_FILE),
            reason: format!("cannot make a node key: {e}"),
        })?;
        fsutil::ensure_private_dir(state_dir).map_err(|source| IdentityError::Io {
            action: "create",
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(KEY_FILE);
        fsutil::write_atomic(&path, &pkcs8, 0o600).map_err(|source| IdentityError::Io {
            action: "write",
            path,
            source,
        })?;
        Ok((key, pkcs8))
    }

    /// Removes another node's state: its identity first (so that a crash
    /// midway leaves an unregistered node), then its key, and the journal,
    /// spool and command files of its commands, which this node must not
    /// report as its own, and what inventory it sent.
    pub fn forget(state_dir: &Path) -> Result<(), IdentityError> {
        let io = |path: PathBuf| {
            move |source| IdentityError::Io {
                action: "remove",
                path,
                source,
            }
        };
        let ignore_missing = |r: std::io::Result<()>| match r {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        };
        for file in [IDENTITY_FILE, KEY_FILE, crate::inventory::SENT_FILE] {
            let path = state_dir.join(file);
            ignore_missing(std::fs::remove_file(&path)).map_err(io(path))?;
        }
        for dir in NODE_STATE_DIRS {
            let path = state_dir.join(dir);
            ignore_missing(std::fs::remove_dir_all(&path)).map_err(io(path))?;
        }
        Ok(())
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

    #[test]
    fn a_pending_key_is_kept_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let (first, pkcs8) = Identity::pending_key(&state).unwrap();
        // Written before it is used, and found again by the next attempt.
        assert_eq!(std::fs::read(state.join(KEY_FILE)).unwrap(), pkcs8);
        let (again, _) = Identity::pending_key(&state).unwrap();
        assert_eq!(again.public_key_base64(), first.public_key_base64());
        assert!(Identity::load(&state).unwrap().is_none());

        for d in NODE_STATE_DIRS {
            std::fs::create_dir_all(state.join(d).join("x")).unwrap();
        }
        std::fs::write(state.join(IDENTITY_FILE), b"{}").unwrap();
        std::fs::write(state.join(crate::inventory::SENT_FILE), b"{}").unwrap();
        Identity::forget(&state).unwrap();
        let left: Vec<_> = std::fs::read_dir(&state).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        // Nothing to forget is no error.
        Identity::forget(&state).unwrap();
        let (fresh, _) = Identity::pending_key(&state).unwrap();
        assert_ne!(fresh.public_key_base64(), first.public_key_base64());
    }
}
