//! The client's half of a session's secrets: what StartSession and
//! ResumeSession answer as `TokenValue`. SSM's token is opaque to its
//! clients; Steward's is base64url JSON holding the session key and
//! short-lived SQS credentials limited to the session's two queues, so the
//! client needs no AWS identity of its own. `StreamUrl` is the queue the
//! client receives from.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::frames::{FrameError, SessionKey};
use crate::secret::Secret;

/// The token's format version.
pub const TOKEN_VERSION: u32 = 1;

/// SQS credentials limited to one session's queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Secret,
    /// RFC 3339.
    pub expiration: String,
}

/// What the client needs to take part in a session. `Debug` shows no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionToken {
    pub version: u32,
    pub session_id: String,
    /// The frame key, standard base64.
    pub key: Secret,
    pub region: String,
    /// The queue the client sends to (the agent's inbound side).
    pub send_queue_url: String,
    /// The queue the client receives from (also StartSession's StreamUrl).
    pub receive_queue_url: String,
    pub credentials: QueueCredentials,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error(
        "the session token is not one Steward issued (not base64url JSON of version {TOKEN_VERSION})"
    )]
    Malformed,
    #[error("the session token's key is not a session key")]
    Key,
}

impl SessionToken {
    /// The `TokenValue` text.
    pub fn encode(&self) -> String {
        // A struct of strings always serializes.
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(token: &str) -> Result<Self, TokenError> {
        let raw = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| TokenError::Malformed)?;
        let t: SessionToken = serde_json::from_slice(&raw).map_err(|_| TokenError::Malformed)?;
        if t.version != TOKEN_VERSION {
            return Err(TokenError::Malformed);
        }
        Ok(t)
    }

    pub fn session_key(&self) -> Result<SessionKey, TokenError> {
        SessionKey::from_base64(self.key.expose()).map_err(|_: FrameError| TokenError::Key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> SessionToken {
        let key = SessionKey::generate().unwrap();
        SessionToken {
            version: TOKEN_VERSION,
            session_id: "alice-0123456789abcdef0".into(),
            key: Secret::new(key.expose_base64()),
            region: "us-east-1".into(),
            send_queue_url: "https://sqs/q-in".into(),
            receive_queue_url: "https://sqs/q-out".into(),
            credentials: QueueCredentials {
                access_key_id: "ASIAEXAMPLE".into(),
                secret_access_key: Secret::new("very-secret"),
                session_token: Secret::new("token-secret"),
                expiration: "2026-12-02T10:00:00Z".into(),
            },
        }
    }

    #[test]
    fn a_token_round_trips_and_its_debug_shows_no_secret() {
        let t = token();
        let back = SessionToken::decode(&t.encode()).unwrap();
        assert_eq!(back, t);
        assert!(back.session_key().is_ok());
        let shown = format!("{t:?}");
        assert!(!shown.contains("very-secret") && !shown.contains("token-secret"));
        assert!(!shown.contains(t.key.expose()));
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(
            SessionToken::decode("not a token"),
            Err(TokenError::Malformed)
        );
        let mut t = token();
        t.version = 2;
        assert_eq!(
            SessionToken::decode(&t.encode()),
            Err(TokenError::Malformed)
        );
        let mut t = token();
        t.key = Secret::new("c2hvcnQ=");
        assert_eq!(
            SessionToken::decode(&t.encode())
                .unwrap()
                .session_key()
                .err(),
            Some(TokenError::Key)
        );
    }
}
