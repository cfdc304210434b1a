//! Session Manager's adapters: the sessions table, each session's pair of
//! queues, and sealing frame keys under the stack's data key.
//!
//! The table keeps one item per session (`SessionId`), its record as JSON
//! and a `Revision` every write is conditional on; `ByState` lists a
//! state's sessions (`Active` or `History`) newest first by `ListKey`.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_sqs::types::QueueAttributeName;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use steward_core::SsmError;
use steward_core::fleet::ports::QueueRef;
use steward_core::secret::Secret;
use steward_core::sessions::SessionContext;
use steward_core::sessions::context::queue_suffix;
use steward_core::sessions::model::{Session, SessionListState};
use steward_core::sessions::ports::{
    SessionKeySealer, SessionQueuePair, SessionQueues, SessionStore,
};

use crate::Stack;
use crate::internal;
use crate::item::{Item, conditional, get_consistent, get_s, n, s};
use crate::queue_provisioner::{queue_arn, queue_gone};

const BY_STATE: &str = "ByState";
/// The encryption context a frame key is sealed under.
pub const SESSION_KEY_CONTEXT: &str = "steward:session-id";
/// Frames nobody received within an hour are of no use to anyone.
const QUEUE_RETENTION_SECONDS: &str = "3600";

/// Newest first in ascending order: the start time in milliseconds,
/// subtracted from a constant, then the id.
fn list_key(session: &Session) -> String {
    let millis = (session.start_date * 1000.0).max(0.0) as u64;
    format!(
        "{:016}#{}",
        9_999_999_999_999_999u64.saturating_sub(millis),
        session.session_id
    )
}

fn item(session: &Session) -> Result<Item, SsmError> {
    let text = serde_json::to_string(session).map_err(|e| {
        tracing::error!(error = %e, "a session record cannot be written");
        SsmError::internal()
    })?;
    Ok(Item::from([
        ("SessionId".to_string(), s(&session.session_id)),
        ("Record".to_string(), s(text)),
        ("Revision".to_string(), n(session.revision)),
        (
            "State".to_string(),
            s(SessionListState::of(session.status).as_str()),
        ),
        ("ListKey".to_string(), s(list_key(session))),
    ]))
}

/// A session from its item (the change events read the stream's images).
pub fn session_from_item(item: &Item) -> Result<Session, SsmError> {
    read(item)
}

fn read(item: &Item) -> Result<Session, SsmError> {
    serde_json::from_str(&get_s(item, "Record")).map_err(|e| {
        tracing::error!(error = %e, "a session item cannot be read");
        SsmError::internal()
    })
}

#[derive(Debug, Clone)]
pub struct SessionTable {
    client: Client,
    table: String,
}

impl SessionTable {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.dynamodb.clone(),
            table: stack.settings.sessions_table.clone(),
        }
    }
}

fn bad_token() -> SsmError {
    SsmError::InvalidNextToken(
        "The NextToken is not one DescribeSessions gave; start again without it.".into(),
    )
}

#[async_trait::async_trait]
impl SessionStore for SessionTable {
    async fn create(&self, session: &Session) -> Result<bool, SsmError> {
        conditional(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item(session)?))
                .condition_expression("attribute_not_exists(SessionId)")
                .send()
                .await,
        )
        .map_err(internal)
    }

    async fn get(&self, session_id: &str) -> Result<Option<Session>, SsmError> {
        let key = Item::from([("SessionId".to_string(), s(session_id))]);
        get_consistent(&self.client, &self.table, key)
            .await?
            .map(|i| read(&i))
            .transpose()
    }

    async fn update(&self, session: &Session) -> Result<bool, SsmError> {
        conditional(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item(session)?))
                .condition_expression("Revision = :r")
                .expression_attribute_values(":r", n(session.revision.saturating_sub(1)))
                .send()
                .await,
        )
        .map_err(internal)
    }

    async fn list(
        &self,
        state: SessionListState,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Session>, Option<String>), SsmError> {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_STATE)
            .key_condition_expression("#s = :s")
            .expression_attribute_names("#s", "State")
            .expression_attribute_values(":s", s(state.as_str()))
            .limit(limit.clamp(1, 1000) as i32);
        if let Some(cursor) = after {
            // The cursor is the last ListKey read, which ends in its id.
            let (_, id) = cursor.split_once('#').ok_or_else(bad_token)?;
            q = q
                .exclusive_start_key("SessionId", s(id))
                .exclusive_start_key("State", s(state.as_str()))
                .exclusive_start_key("ListKey", s(cursor));
        }
        let resp = q.send().await.map_err(|e| {
            if e.as_service_error().is_some_and(|se| {
                aws_sdk_dynamodb::error::ProvideErrorMetadata::code(se)
                    == Some("ValidationException")
            }) {
                bad_token()
            } else {
                internal(e)
            }
        })?;
        let sessions = resp
            .items()
            .iter()
            .map(read)
            .collect::<Result<Vec<_>, _>>()?;
        let next = resp
            .last_evaluated_key()
            .and_then(|k| k.get("ListKey"))
            .and_then(|v| match v {
                AttributeValue::S(t) => Some(t.clone()),
                _ => None,
            });
        Ok((sessions, next))
    }
}

/// Each session's queues: `<node queue prefix>s<hex>a` (to the agent) and
/// `…c` (to the client). The node queue prefix keeps them inside what the
/// stack's roles may touch; no node id starts with `s`.
#[derive(Debug, Clone)]
pub struct SqsSessionQueues {
    client: aws_sdk_sqs::Client,
    prefix: String,
}

impl SqsSessionQueues {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.sqs.clone(),
            prefix: stack.settings.node_queue_prefix.clone(),
        }
    }

    async fn create_one(&self, name: String) -> Result<QueueRef, SsmError> {
        // CreateQueue with the same attributes returns the existing queue.
        let resp = self
            .client
            .create_queue()
            .queue_name(name)
            .attributes(
                QueueAttributeName::MessageRetentionPeriod,
                QUEUE_RETENTION_SECONDS,
            )
            .send()
            .await
            .map_err(internal)?;
        let url = resp.queue_url.ok_or_else(SsmError::internal)?;
        let arn = queue_arn(&self.client, &url).await?;
        Ok(QueueRef { url, arn })
    }
}

#[async_trait::async_trait]
impl SessionQueues for SqsSessionQueues {
    async fn create(&self, session_id: &str) -> Result<SessionQueuePair, SsmError> {
        let base = format!("{}s{}", self.prefix, queue_suffix(session_id));
        let (to_agent, to_client) = tokio::try_join!(
            self.create_one(format!("{base}a")),
            self.create_one(format!("{base}c"))
        )?;
        Ok(SessionQueuePair {
            to_agent,
            to_client,
        })
    }

    async fn delete(&self, urls: &[&str]) -> Result<(), SsmError> {
        for url in urls {
            match self.client.delete_queue().queue_url(*url).send().await {
                Ok(_) => {}
                Err(e) if queue_gone(&e) => {}
                Err(e) => {
                    tracing::warn!(queue_url = url, "could not remove a session queue");
                    return Err(internal(e));
                }
            }
        }
        Ok(())
    }
}

/// Frame keys at rest: KMS Encrypt under the stack's data key, bound to
/// the session id.
#[derive(Debug, Clone)]
pub struct KmsSessionKeys {
    client: aws_sdk_kms::Client,
    key_id: String,
}

impl KmsSessionKeys {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.kms.clone(),
            key_id: stack.settings.data_key_id.clone(),
        }
    }
}

#[async_trait::async_trait]
impl SessionKeySealer for KmsSessionKeys {
    async fn seal(&self, session_id: &str, key: &Secret) -> Result<String, SsmError> {
        let resp = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(key.expose().as_bytes()))
            .encryption_context(SESSION_KEY_CONTEXT, session_id)
            .send()
            .await
            .map_err(internal)?;
        let blob = resp.ciphertext_blob.ok_or_else(SsmError::internal)?;
        Ok(B64.encode(blob.as_ref()))
    }

    async fn open(&self, session_id: &str, sealed: &str) -> Result<Secret, SsmError> {
        let blob = B64.decode(sealed).map_err(|_| SsmError::internal())?;
        let resp = self
            .client
            .decrypt()
            .ciphertext_blob(Blob::new(blob))
            .encryption_context(SESSION_KEY_CONTEXT, session_id)
            .send()
            .await
            .map_err(internal)?;
        let plain = resp.plaintext.ok_or_else(SsmError::internal)?;
        String::from_utf8(plain.into_inner())
            .map(Secret::new)
            .map_err(|_| SsmError::internal())
    }
}

/// Session Manager's adapters, with what its operations borrow from the
/// fleet, Run Command and the documents.
#[derive(Debug)]
pub struct SessionAdapters {
    pub store: SessionTable,
    pub queues: SqsSessionQueues,
    pub sealer: KmsSessionKeys,
    pub scope: steward_core::arn::ArnScope,
}

impl SessionAdapters {
    pub fn new(stack: &Stack) -> Self {
        Self {
            store: SessionTable::new(stack),
            queues: SqsSessionQueues::new(stack),
            sealer: KmsSessionKeys::new(stack),
            scope: stack.settings.arn_scope(),
        }
    }

    /// The context of one request by `caller`, at `now`.
    pub fn context<'a>(
        &'a self,
        stack: &'a Stack,
        caller: &'a dyn steward_core::access::Authorizer,
        now: f64,
    ) -> SessionContext<'a> {
        let fleet = stack.fleet();
        let rc = stack.run_command();
        SessionContext {
            store: &self.store,
            queues: &self.queues,
            sealer: &self.sealer,
            credentials: &fleet.credentials,
            nodes: &fleet.nodes,
            mailbox: &rc.nodes,
            signer: &rc.signer,
            outputs: &rc.outputs,
            documents: &rc.documents,
            caller,
            scope: &self.scope,
            connection_lost_seconds: stack.settings.connection_lost_seconds,
            now,
        }
    }
}
