//! The session's two SQS queues, reached with the credentials in the
//! session's token (never the operator's): they allow these two queues and
//! nothing else. ResumeSession hands out fresh ones; [`SessionLink::replace`]
//! switches both queues to them at once.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_ssm::primitives::{DateTime, DateTimeFormat};
use steward_core::secret::Secret;
use steward_core::sessions::SessionToken;
use steward_core::sessions::pump::{QueueError, SessionQueue};

/// Named in the SDK's credential errors, so that they say where these came from.
const CREDENTIALS_SOURCE: &str = "steward session token";
/// Credentials are renewed this long before they expire.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// Soonest retry of a renewal once inside [`REFRESH_BEFORE_EXPIRY`].
pub const MIN_REFRESH_DELAY: Duration = Duration::from_secs(5);
/// SQS's most messages per receive.
const MAX_MESSAGES: i32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the token is for session {found}, not {expected}")]
    WrongSession { expected: String, found: String },
    #[error("the token carries another session key than the session was started with")]
    KeyChanged,
    #[error("the token's credentials have no readable Expiration (RFC 3339): {0}")]
    Expiration(String),
    #[error("the token names no queue to {0}")]
    NoQueue(&'static str),
}

/// The SQS endpoint: `AWS_ENDPOINT_URL_SQS`, else `AWS_ENDPOINT_URL`, else
/// (`None`) the region's own.
pub fn sqs_endpoint(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    ["AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL"]
        .into_iter()
        .filter_map(var)
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
}

pub fn sqs_endpoint_from_env() -> Option<String> {
    sqs_endpoint(|name| std::env::var(name).ok())
}

/// When the token's credentials expire.
pub fn expiration(token: &SessionToken) -> Result<SystemTime, LinkError> {
    let text = &token.credentials.expiration;
    DateTime::from_str(text, DateTimeFormat::DateTime)
        .ok()
        .and_then(|t| SystemTime::try_from(t).ok())
        .ok_or_else(|| LinkError::Expiration(text.clone()))
}

/// How long to wait before renewing credentials that expire at `expiration`:
/// until [`REFRESH_BEFORE_EXPIRY`] before it; once inside that, half of
/// what is left (a failed renewal is retried while they still work), and
/// never less than [`MIN_REFRESH_DELAY`].
pub fn refresh_delay(now: SystemTime, expiration: SystemTime) -> Duration {
    let left = expiration.duration_since(now).unwrap_or(Duration::ZERO);
    match left.checked_sub(REFRESH_BEFORE_EXPIRY) {
        Some(wait) if !wait.is_zero() => wait,
        _ => (left / 2).max(MIN_REFRESH_DELAY),
    }
}

/// An SQS client that signs with the token's credentials, in the token's region.
pub fn sqs_client(
    token: &SessionToken,
    endpoint: Option<&str>,
) -> Result<aws_sdk_sqs::Client, LinkError> {
    let c = &token.credentials;
    let session_token = Some(c.session_token.expose())
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let credentials = Credentials::new(
        &c.access_key_id,
        c.secret_access_key.expose(),
        session_token,
        Some(expiration(token)?),
        CREDENTIALS_SOURCE,
    );
    let mut conf = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(token.region.clone()))
        .credentials_provider(credentials);
    if let Some(url) = endpoint {
        conf = conf.endpoint_url(url);
    }
    Ok(aws_sdk_sqs::Client::from_conf(conf.build()))
}

/// What both queues use now; replaced whole when credentials are renewed.
struct Access {
    client: aws_sdk_sqs::Client,
    send_queue_url: String,
    receive_queue_url: String,
}

/// The client's side of a session's queues.
#[derive(Clone)]
pub struct SessionLink {
    access: Arc<RwLock<Access>>,
    session_id: String,
    key: Secret,
    endpoint: Option<String>,
}

impl SessionLink {
    /// Checks that `token` belongs to `session_id` and opens its queues.
    pub fn open(
        token: &SessionToken,
        session_id: &str,
        endpoint: Option<String>,
    ) -> Result<Self, LinkError> {
        let access = access(token, session_id, endpoint.as_deref())?;
        Ok(Self {
            access: Arc::new(RwLock::new(access)),
            session_id: session_id.to_string(),
            key: token.key.clone(),
            endpoint,
        })
    }

    /// Switches both queues to a renewed token's credentials; when they expire.
    pub fn replace(&self, token: &SessionToken) -> Result<SystemTime, LinkError> {
        // Frames already sent are under the first key: another one could
        // authenticate nothing.
        if token.key != self.key {
            return Err(LinkError::KeyChanged);
        }
        let fresh = access(token, &self.session_id, self.endpoint.as_deref())?;
        let expires = expiration(token)?;
        *self.access.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(expires)
    }

    /// The queue the agent writes to.
    pub fn receive_queue(&self) -> Arc<dyn SessionQueue> {
        Arc::new(SqsQueue {
            access: Arc::clone(&self.access),
            side: Side::Receive,
        })
    }

    /// The queue the agent reads.
    pub fn send_queue(&self) -> Arc<dyn SessionQueue> {
        Arc::new(SqsQueue {
            access: Arc::clone(&self.access),
            side: Side::Send,
        })
    }
}

fn access(
    token: &SessionToken,
    session_id: &str,
    endpoint: Option<&str>,
) -> Result<Access, LinkError> {
    if token.session_id != session_id {
        return Err(LinkError::WrongSession {
            expected: session_id.to_string(),
            found: token.session_id.clone(),
        });
    }
    if token.send_queue_url.is_empty() {
        return Err(LinkError::NoQueue("send to"));
    }
    if token.receive_queue_url.is_empty() {
        return Err(LinkError::NoQueue("receive from"));
    }
    Ok(Access {
        client: sqs_client(token, endpoint)?,
        send_queue_url: token.send_queue_url.clone(),
        receive_queue_url: token.receive_queue_url.clone(),
    })
}

#[derive(Debug, Clone, Copy)]
enum Side {
    Send,
    Receive,
}

/// One of the session's queues over SQS.
pub struct SqsQueue {
    access: Arc<RwLock<Access>>,
    side: Side,
}

impl SqsQueue {
    /// The client and queue URL as they are now (a renewal may replace them
    /// between two calls, never during one).
    fn current(&self) -> (aws_sdk_sqs::Client, String) {
        let access = self.access.read().unwrap_or_else(PoisonError::into_inner);
        let url = match self.side {
            Side::Send => &access.send_queue_url,
            Side::Receive => &access.receive_queue_url,
        };
        (access.client.clone(), url.clone())
    }
}

fn queue_error(e: impl std::error::Error) -> QueueError {
    QueueError(DisplayErrorContext(e).to_string())
}

#[async_trait::async_trait]
impl SessionQueue for SqsQueue {
    async fn receive(&self, wait_seconds: i32) -> Result<Vec<(String, String)>, QueueError> {
        let (client, url) = self.current();
        let out = client
            .receive_message()
            .queue_url(url)
            .wait_time_seconds(wait_seconds)
            .max_number_of_messages(MAX_MESSAGES)
            .send()
            .await
            .map_err(queue_error)?;
        out.messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| match (m.body, m.receipt_handle) {
                (Some(body), Some(receipt)) => Ok((body, receipt)),
                _ => Err(QueueError(format!(
                    "SQS answered message {} without a body or receipt handle",
                    m.message_id.as_deref().unwrap_or("(no id)")
                ))),
            })
            .collect()
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        let (client, url) = self.current();
        client
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(queue_error)?;
        Ok(())
    }

    async fn send(&self, body: &str) -> Result<(), QueueError> {
        let (client, url) = self.current();
        client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .map_err(queue_error)?;
        Ok(())
    }
}
