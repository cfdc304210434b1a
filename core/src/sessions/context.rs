//! What every session operation works with.

use crate::access::Authorizer;
use crate::arn::ArnScope;
use crate::channel::DigestSigner;
use crate::documents::store::DocumentStore;
use crate::error::SsmError;
use crate::fleet::ports::{CredentialIssuer, NodeStore};
use crate::run_command::ports::{NodeMailbox, OutputLocations};

use super::model::Session;
use super::ports::{SessionKeySealer, SessionQueues, SessionStore};

pub struct SessionContext<'a> {
    pub store: &'a dyn SessionStore,
    pub queues: &'a dyn SessionQueues,
    pub sealer: &'a dyn SessionKeySealer,
    /// Queue credentials for the client and the agent, each narrowed to
    /// its side of the session's two queues.
    pub credentials: &'a dyn CredentialIssuer,
    pub nodes: &'a dyn NodeStore,
    /// The start and terminate messages go to the node's own queue, signed.
    pub mailbox: &'a dyn NodeMailbox,
    pub signer: &'a dyn DigestSigner,
    /// Transcripts are put through presigned URLs, as command output.
    pub outputs: &'a dyn OutputLocations,
    /// SSM-SessionManagerRunShell, the account's preferences.
    pub documents: &'a dyn DocumentStore,
    pub caller: &'a dyn Authorizer,
    pub scope: &'a ArnScope,
    pub connection_lost_seconds: u64,
    /// Epoch seconds.
    pub now: f64,
}

/// Conditional writes tried before answering TooManyUpdates-like faults.
pub(super) const ATTEMPTS: usize = 5;

impl SessionContext<'_> {
    pub fn session_arn(&self, session_id: &str) -> String {
        format!(
            "arn:aws:ssm:{}:{}:session/{session_id}",
            self.scope.region, self.scope.account
        )
    }

    /// The document ARN StartSession is authorized on: Amazon's documents
    /// have no account in theirs, as in SSM.
    pub fn document_arn(&self, name: &str) -> String {
        if super::documents::AMAZON_SESSION_DOCUMENTS.contains(&name) {
            format!("arn:aws:ssm:{}::document/{name}", self.scope.region)
        } else {
            format!(
                "arn:aws:ssm:{}:{}:document/{name}",
                self.scope.region, self.scope.account
            )
        }
    }

    /// The session `id`, authorized for `action`.
    pub async fn session(&self, action: &str, id: &str) -> Result<Session, SsmError> {
        self.caller.authorize(action, &self.session_arn(id))?;
        if !is_session_id(id) {
            return Err(does_not_exist(id));
        }
        self.store.get(id).await?.ok_or_else(|| does_not_exist(id))
    }
}

pub fn does_not_exist(id: &str) -> SsmError {
    SsmError::DoesNotExistException(format!(
        "Session with id {id} does not exist; list sessions with DescribeSessions."
    ))
}

/// `<user name>-<17 hex>`, at most 96 characters, as SSM's.
pub fn is_session_id(id: &str) -> bool {
    id.len() <= crate::sessions::frames::MAX_SESSION_ID_LEN
        && id.rsplit_once('-').is_some_and(|(user, hex)| {
            !user.is_empty()
                && hex.len() == 17
                && hex
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
}

/// A new session id for the user `user_name`.
pub fn new_session_id(user_name: &str) -> String {
    let n: u128 = rand::random::<u128>() & ((1u128 << 68) - 1);
    // Queue names and frames need ids of plain characters: anything else in
    // a user name (IAM allows +=,.@) becomes '_'.
    let user: String = user_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("{user}-{n:017x}")
}

/// The random part of a session id, which names its queues.
pub fn queue_suffix(session_id: &str) -> &str {
    session_id.rsplit_once('-').map_or(session_id, |(_, h)| h)
}
