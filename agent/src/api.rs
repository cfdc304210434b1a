//! The few HTTP calls the agent makes: the Steward API (registration,
//! credentials) and presigned S3 PUTs for whole output.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Method, Request, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::Frame;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use steward_core::channel::{
    NodeKey, StepUpload, credentials_request_message, session_credentials_request_message,
};
use steward_core::fleet::ops::ec2_registration_message;
use steward_core::parameters::references::node_parameters_request_message;
use steward_core::run_command::operations::upload_urls::upload_urls_request_message;
use steward_core::secret::Secret;
use thiserror::Error;
use tokio::io::AsyncReadExt;

use crate::clock::ServerClock;

const JSON_11: &str = "application/x-amz-json-1.1";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Whole output can be large: an upload gets longer.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(900);
const UPLOAD_CHUNK: usize = 64 * 1024;

/// Request bodies: small JSON documents, or a file streamed from disk.
pub type ReqBody = UnsyncBoxBody<Bytes, std::io::Error>;

fn full(bytes: Bytes) -> ReqBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}
/// Answers are small JSON documents; anything bigger is not ours.
const MAX_ANSWER_BYTES: usize = 1 << 20;

#[derive(Debug, Error)]
pub enum ApiError {
    /// The API refused the request (`{"__type","message"}`).
    #[error("{code}: {message}")]
    Refused { code: String, message: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    /// S3 refused a presigned upload (`<Error><Code>`): its URL may have
    /// expired or lost its credentials.
    #[error("{url} refused the upload: HTTP {status} {code}")]
    UploadRefused {
        url: String,
        status: u16,
        code: String,
    },
    #[error("cannot reach {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("{url} did not answer within {secs} seconds")]
    Timeout { url: String, secs: u64 },
    #[error("unexpected answer from {url}: {reason}")]
    Decode { url: String, reason: String },
    #[error("{0}")]
    Config(String),
}

impl ApiError {
    /// Whether trying again later may succeed (as opposed to a refusal).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Refused { code, .. } => {
                matches!(
                    code.as_str(),
                    "InternalServerError" | "ThrottlingException" | "ServiceUnavailable"
                )
            }
            Self::Status { status, .. } | Self::UploadRefused { status, .. } => {
                *status >= 500 || *status == 429
            }
            Self::Transport { .. } | Self::Timeout { .. } => true,
            Self::Decode { .. } | Self::Config(_) => false,
        }
    }
}

/// Where fresh presigned upload URLs for a step's output come from, when
/// the ones a RunCommand carried stopped working.
pub trait OutputUrlSource: Send + Sync {
    /// The URLs of step `step` (counted from 0) of `command_id`.
    fn fresh_urls<'a>(
        &'a self,
        command_id: &'a str,
        step: usize,
    ) -> BoxFuture<'a, Result<StepUpload, ApiError>>;
}

/// The API (`Steward.GetOutputUploadUrls`), asked as this node.
pub struct ApiOutputUrls {
    api: Api,
    instance_id: String,
    key: std::sync::Arc<NodeKey>,
}

impl ApiOutputUrls {
    pub fn new(api: Api, instance_id: String, key: std::sync::Arc<NodeKey>) -> Self {
        Self {
            api,
            instance_id,
            key,
        }
    }
}

impl OutputUrlSource for ApiOutputUrls {
    fn fresh_urls<'a>(
        &'a self,
        command_id: &'a str,
        step: usize,
    ) -> BoxFuture<'a, Result<StepUpload, ApiError>> {
        Box::pin(async move {
            let now = steward_core::clock::now_epoch() as i64;
            // The local clock: the API corrects what it signs.
            self.api
                .output_upload_urls(&self.instance_id, &self.key, command_id, step, now)
                .await
        })
    }
}

/// One HTTP client for plain and TLS URLs; one TLS stack (rustls, aws-lc-rs).
#[derive(Clone)]
pub struct HttpClient {
    plain: Client<HttpConnector, ReqBody>,
    tls: Result<Client<HttpsConnector<HttpConnector>, ReqBody>, String>,
    /// Asked for fresh output upload URLs when S3 refuses one.
    output_urls: Option<std::sync::Arc<dyn OutputUrlSource>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    pub fn new() -> Self {
        let exec = TokioExecutor::new();
        let plain = Client::builder(exec.clone()).build(HttpConnector::new());
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map(|b| Client::builder(exec).build(b.https_or_http().enable_http1().build()))
            .map_err(|e| {
                format!("no trusted CA certificates ({e}); install the ca-certificates package")
            });
        Self {
            plain,
            tls,
            output_urls: None,
        }
    }

    /// This client, asking `source` for fresh output upload URLs when S3
    /// refuses a presigned one (its signing credentials expired).
    pub fn with_output_urls(mut self, source: std::sync::Arc<dyn OutputUrlSource>) -> Self {
        self.output_urls = Some(source);
        self
    }

    /// Where fresh output upload URLs come from, if anywhere.
    pub fn output_urls(&self) -> Option<&dyn OutputUrlSource> {
        self.output_urls.as_deref()
    }

    /// Sends a request and returns the status and (bounded) body.
    pub async fn send(
        &self,
        req: Request<ReqBody>,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), ApiError> {
        let (parts, body) = self.exchange(req, timeout, MAX_ANSWER_BYTES).await?;
        Ok((parts.status, body))
    }

    /// Sends a request and returns the answer's head and body, read whole
    /// up to `max_body` bytes.
    pub async fn exchange(
        &self,
        req: Request<ReqBody>,
        timeout: Duration,
        max_body: usize,
    ) -> Result<(http::response::Parts, Bytes), ApiError> {
        let url = redact(&req.uri().to_string());
        let fut = async {
            let resp = if req.uri().scheme_str() == Some("https") {
                let client = self.tls.as_ref().map_err(|e| ApiError::Config(e.clone()))?;
                client.request(req).await
            } else {
                self.plain.request(req).await
            }
            .map_err(|e| ApiError::Transport {
                url: url.clone(),
                reason: error_chain(&e),
            })?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, max_body)
                .collect()
                .await
                .map_err(|e| ApiError::Transport {
                    url: url.clone(),
                    reason: e.to_string(),
                })?
                .to_bytes();
            Ok((parts, body))
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| ApiError::Timeout {
                url: url.clone(),
                secs: timeout.as_secs(),
            })?
    }

    /// PUTs a file (streamed, never whole in memory) to a presigned URL. A
    /// missing file is uploaded as empty.
    pub async fn put_file(&self, url: &str, path: &std::path::Path) -> Result<(), ApiError> {
        let local =
            |e: std::io::Error| ApiError::Config(format!("cannot read {}: {e}", path.display()));
        let (len, body) = match tokio::fs::File::open(path).await {
            Ok(file) => {
                let len = file.metadata().await.map_err(local)?.len();
                let chunks = futures::stream::unfold(Some(file), |file| async move {
                    let mut file = file?;
                    let mut buf = vec![0u8; UPLOAD_CHUNK];
                    match file.read(&mut buf).await {
                        Ok(0) => None,
                        Ok(n) => {
                            buf.truncate(n);
                            Some((Ok(Frame::data(Bytes::from(buf))), Some(file)))
                        }
                        Err(e) => Some((Err(e), None)),
                    }
                });
                (len, StreamBody::new(chunks).boxed_unsync())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, full(Bytes::new())),
            Err(e) => return Err(local(e)),
        };
        let req = Request::builder()
            .method(Method::PUT)
            .uri(url)
            .header(http::header::CONTENT_LENGTH, len)
            .body(body)
            .map_err(|e| ApiError::Config(format!("bad presigned URL: {e}")))?;
        let (status, body) = self.send(req, UPLOAD_TIMEOUT).await?;
        if status.is_success() {
            return Ok(());
        }
        match s3_error_code(&body) {
            Some(code) if status.is_client_error() => Err(ApiError::UploadRefused {
                url: redact(url),
                status: status.as_u16(),
                code,
            }),
            _ => Err(ApiError::Status {
                url: redact(url),
                status: status.as_u16(),
            }),
        }
    }
}

/// S3's `<Error><Code>…</Code>` (the code only: the message may quote the
/// request).
fn s3_error_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    let code = &text[start..start + len];
    (!code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| code.to_string())
}

/// Whether a refused upload may work with fresh URLs: S3 refuses expired
/// URLs and URLs whose credentials expired with 403 (AccessDenied "Request
/// has expired") or 400 (ExpiredToken, InvalidToken, TokenRefreshRequired).
pub fn upload_needs_fresh_url(e: &ApiError) -> bool {
    match e {
        ApiError::UploadRefused { status, code, .. } => {
            *status == 403
                || matches!(
                    code.as_str(),
                    "ExpiredToken" | "InvalidToken" | "TokenRefreshRequired" | "RequestExpired"
                )
        }
        ApiError::Status { status, .. } => *status == 403,
        _ => false,
    }
}

/// When a SigV4 presigned URL stops working (epoch seconds): its
/// X-Amz-Date plus X-Amz-Expires. `None` when the URL does not say.
pub fn presigned_url_expiry(url: &str) -> Option<f64> {
    let query = url.split_once('?')?.1;
    let mut date = None;
    let mut expires = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("X-Amz-Date", v)) => date = Some(v),
            Some(("X-Amz-Expires", v)) => expires = v.parse::<u64>().ok(),
            _ => {}
        }
    }
    let signed = aws_smithy_types::DateTime::from_str(
        &amz_date_as_rfc3339(date?)?,
        aws_smithy_types::date_time::Format::DateTime,
    )
    .ok()?;
    Some(signed.as_secs_f64() + expires? as f64)
}

/// `20240102T030405Z` → `2024-01-02T03:04:05Z`.
fn amz_date_as_rfc3339(d: &str) -> Option<String> {
    let b = d.as_bytes();
    let ok = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    ok.then(|| {
        format!(
            "{}-{}-{}T{}:{}:{}Z",
            &d[0..4],
            &d[4..6],
            &d[6..8],
            &d[9..11],
            &d[11..13],
            &d[13..15]
        )
    })
}

/// Presigned URLs carry credentials in their query: never show it.
fn redact(url: &str) -> String {
    url.split('?').next().unwrap_or_default().to_string()
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

/// The Steward API as the agent uses it. Every answer's `Date` teaches
/// its clock the control plane's time; what it signs carries that time.
#[derive(Clone)]
pub struct Api {
    http: HttpClient,
    url: String,
    clock: &'static ServerClock,
}

/// The refusal of a node-signed request, among others for a timestamp
/// outside the control plane's window.
const SIGNATURE_REFUSED: &str = "InvalidSignatureException";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Registration {
    pub activation_id: String,
    pub activation_code: String,
    pub public_key: String,
    pub hostname: String,
    pub platform_name: String,
    pub platform_version: String,
    pub agent_version: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `Steward.RegisterEc2Instance` without its proof of the key, which
/// [`Api::register_ec2`] signs.
#[derive(Debug, Clone)]
pub struct Ec2Registration {
    /// The identity document exactly as IMDS served it.
    pub document: String,
    /// Its base64 RSA signature exactly as IMDS served it.
    pub document_signature: String,
    pub hostname: String,
    pub platform_name: String,
    pub platform_version: String,
    pub agent_version: String,
    pub ip_address: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Registered {
    pub instance_id: String,
    pub queue_url: String,
    pub ingest_queue_url: String,
    pub region: String,
    pub command_signing_public_key: String,
}

/// Temporary SQS credentials. `Debug` hides the secrets.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// Epoch seconds, or an ISO 8601 date as STS writes it.
    pub expiration: Value,
}

impl std::fmt::Debug for NodeCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

impl NodeCredentials {
    /// The expiry as epoch seconds.
    pub fn expires_at(&self) -> Option<f64> {
        match &self.expiration {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => aws_smithy_types::DateTime::from_str(
                s,
                aws_smithy_types::date_time::Format::DateTime,
            )
            .ok()
            .map(|d| d.as_secs_f64())
            .or_else(|| s.parse().ok()),
            _ => None,
        }
    }
}

impl Api {
    pub fn new(http: HttpClient, url: &str) -> Self {
        Self {
            http,
            url: url.to_string(),
            clock: &crate::clock::SERVER,
        }
    }

    /// This API with a clock of its own rather than the agent's (tests).
    pub fn with_clock(mut self, clock: &'static ServerClock) -> Self {
        self.clock = clock;
        self
    }

    /// What this API's answers taught about the control plane's time.
    pub fn clock(&self) -> &'static ServerClock {
        self.clock
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        op: &str,
        body: &impl Serialize,
    ) -> Result<T, ApiError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ApiError::Config(e.to_string()))?;
        let req = Request::builder()
            .method(Method::POST)
            .uri(&self.url)
            .header("x-amz-target", format!("Steward.{op}"))
            .header(http::header::CONTENT_TYPE, JSON_11)
            .body(full(Bytes::from(bytes)))
            .map_err(|e| ApiError::Config(format!("API URL {} is not usable: {e}", self.url)))?;
        let sent = steward_core::clock::now_epoch();
        let (parts, body) = self
            .http
            .exchange(req, REQUEST_TIMEOUT, MAX_ANSWER_BYTES)
            .await?;
        let date = parts
            .headers
            .get(http::header::DATE)
            .and_then(|v| v.to_str().ok());
        self.clock
            .observe_date_header(date, sent, steward_core::clock::now_epoch());
        let status = parts.status;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| ApiError::Decode {
                url: self.url.clone(),
                reason: e.to_string(),
            });
        }
        #[derive(Deserialize)]
        struct Refusal {
            #[serde(rename = "__type")]
            code: String,
            #[serde(default, alias = "Message")]
            message: String,
        }
        match serde_json::from_slice::<Refusal>(&body) {
            Ok(r) => Err(ApiError::Refused {
                // SSM may qualify the type: "com.amazonaws...#InvalidActivation".
                code: r.code.rsplit('#').next().unwrap_or_default().to_string(),
                message: r.message,
            }),
            Err(_) => Err(ApiError::Status {
                url: self.url.clone(),
                status: status.as_u16(),
            }),
        }
    }

    pub async fn register(&self, r: &Registration) -> Result<Registered, ApiError> {
        self.call("RegisterManagedInstance", r).await
    }

    /// Registers an EC2 instance by its identity document, with `key`
    /// (new, or the one it registered with). `now` is the local clock; the
    /// proof is signed at the control plane's time (see `signed_call`).
    pub async fn register_ec2(
        &self,
        r: &Ec2Registration,
        key: &NodeKey,
        now: i64,
    ) -> Result<Registered, ApiError> {
        let public_key = key.public_key_base64();
        self.signed_call("RegisterEc2Instance", now, |ts| {
            let sig = key.sign(&ec2_registration_message(ts, &public_key, &r.document));
            serde_json::json!({
                "InstanceIdentityDocument": r.document,
                "InstanceIdentitySignature": r.document_signature,
                "PublicKey": public_key,
                "Timestamp": ts,
                "Signature": B64.encode(sig),
                "Hostname": r.hostname,
                "PlatformName": r.platform_name,
                "PlatformVersion": r.platform_version,
                "AgentVersion": r.agent_version,
                "IPAddress": r.ip_address,
            })
        })
        .await
    }

    /// A node-signed call: `body` builds the request signed at a timestamp,
    /// which is the local clock `now` corrected to the control plane's
    /// time. Refused as a bad signature by an answer that taught the clock
    /// a different offset (a node whose offset was not yet known), it is
    /// signed again once with the corrected time.
    async fn signed_call<T: for<'de> Deserialize<'de>>(
        &self,
        op: &str,
        now: i64,
        body: impl Fn(i64) -> Value,
    ) -> Result<T, ApiError> {
        let at = |offset: f64| now + offset.round() as i64;
        let used = at(self.clock.offset());
        match self.call(op, &body(used)).await {
            Err(ApiError::Refused { code, .. })
                if code == SIGNATURE_REFUSED && at(self.clock.offset()) != used =>
            {
                tracing::info!(
                    operation = op,
                    offset_seconds = self.clock.offset(),
                    "signing again with the control plane's time"
                );
                self.call(op, &body(at(self.clock.offset()))).await
            }
            other => other,
        }
    }

    /// `now` is the local clock (epoch seconds); what is signed is the
    /// control plane's time (see `signed_call`).
    pub async fn node_credentials(
        &self,
        instance_id: &str,
        key: &NodeKey,
        now: i64,
    ) -> Result<NodeCredentials, ApiError> {
        self.signed_call("GetNodeCredentials", now, |ts| {
            let sig = key.sign(&credentials_request_message(instance_id, ts));
            serde_json::json!({
                "InstanceId": instance_id,
                "Timestamp": ts,
                "Signature": B64.encode(sig),
            })
        })
        .await
    }

    /// Credentials limited to one session's two queues
    /// (`Steward.GetSessionCredentials`), answered like GetNodeCredentials.
    /// The API answers only for a session of this node. `now` is the local
    /// clock, as for [`Api::node_credentials`].
    pub async fn session_credentials(
        &self,
        instance_id: &str,
        session_id: &str,
        key: &NodeKey,
        now: i64,
    ) -> Result<NodeCredentials, ApiError> {
        self.signed_call("GetSessionCredentials", now, |ts| {
            let sig = key.sign(&session_credentials_request_message(
                instance_id,
                session_id,
                ts,
            ));
            serde_json::json!({
                "InstanceId": instance_id,
                "SessionId": session_id,
                "Timestamp": ts,
                "Signature": B64.encode(sig),
            })
        })
        .await
    }

    /// Fresh presigned PUT URLs for step `step` of `command_id`'s output
    /// on this node. The API answers only for a command this node is
    /// running (or just ended) with S3 output.
    pub async fn output_upload_urls(
        &self,
        instance_id: &str,
        key: &NodeKey,
        command_id: &str,
        step: usize,
        now: i64,
    ) -> Result<StepUpload, ApiError> {
        let step = u32::try_from(step)
            .map_err(|_| ApiError::Config(format!("step {step} is out of range")))?;
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Urls {
            stdout_put_url: String,
            stderr_put_url: String,
        }
        let urls: Urls = self
            .signed_call("GetOutputUploadUrls", now, |ts| {
                let sig = key.sign(&upload_urls_request_message(
                    instance_id,
                    command_id,
                    step,
                    ts,
                ));
                serde_json::json!({
                    "InstanceId": instance_id,
                    "CommandId": command_id,
                    "StepIndex": step,
                    "Timestamp": ts,
                    "Signature": B64.encode(sig),
                })
            })
            .await?;
        Ok(StepUpload {
            stdout_put_url: urls.stdout_put_url,
            stderr_put_url: urls.stderr_put_url,
        })
    }

    /// The values of a command's `{{ssm-secure:…}}` references, by name as
    /// asked (`name` or `name:selector`). The API answers only for a command
    /// this node is running, and only names its parameters reference.
    pub async fn node_parameters(
        &self,
        instance_id: &str,
        key: &NodeKey,
        command_id: &str,
        names: &[String],
        now: i64,
    ) -> Result<std::collections::HashMap<String, Secret>, ApiError> {
        let answer: Value = self
            .signed_call("GetNodeParameters", now, |ts| {
                let sig = key.sign(&node_parameters_request_message(
                    instance_id,
                    command_id,
                    names,
                    ts,
                ));
                serde_json::json!({
                    "InstanceId": instance_id,
                    "CommandId": command_id,
                    "Names": names,
                    "Timestamp": ts,
                    "Signature": B64.encode(sig),
                })
            })
            .await?;
        parameter_values(&answer).ok_or_else(|| ApiError::Decode {
            url: self.url.clone(),
            // Never the answer itself: it holds secrets.
            reason: "GetNodeParameters answered without Parameters[].Name/Value".into(),
        })
    }
}

/// `{"Parameters":[{"Name","Value"}]}` → name → value, read by hand so that
/// no decoding error can quote a value.
fn parameter_values(answer: &Value) -> Option<std::collections::HashMap<String, Secret>> {
    answer
        .get("Parameters")?
        .as_array()?
        .iter()
        .map(|p| {
            Some((
                p.get("Name")?.as_str()?.to_string(),
                Secret::new(p.get("Value")?.as_str()?),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_forms() {
        let c = |v: Value| NodeCredentials {
            access_key_id: "a".into(),
            secret_access_key: "s".into(),
            session_token: "t".into(),
            expiration: v,
        };
        assert_eq!(c(serde_json::json!(100.5)).expires_at(), Some(100.5));
        assert_eq!(
            c(serde_json::json!("1970-01-01T00:01:40Z")).expires_at(),
            Some(100.0)
        );
        assert_eq!(c(serde_json::json!("nope")).expires_at(), None);
        assert!(!format!("{:?}", c(serde_json::json!(1))).contains("\"s\""));
    }

    #[test]
    fn parameter_answers_are_read_by_hand() {
        let ok = serde_json::json!({"Parameters": [{"Name": "/s", "Value": "v"}]});
        let values = parameter_values(&ok).unwrap();
        assert_eq!(values["/s"].expose(), "v");
        assert!(
            parameter_values(&serde_json::json!({"Parameters": [{"Name": "/s", "Value": 3}]}))
                .is_none()
        );
        assert!(parameter_values(&serde_json::json!({})).is_none());
    }

    #[test]
    fn a_presigned_url_says_when_it_expires() {
        let url = "http://s3/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=19700101T000140Z&X-Amz-Expires=60&X-Amz-Signature=x";
        assert_eq!(presigned_url_expiry(url), Some(160.0));
        assert_eq!(presigned_url_expiry("http://s3/b/k"), None);
        assert_eq!(
            presigned_url_expiry("http://s3/b/k?X-Amz-Date=nope&X-Amz-Expires=60"),
            None
        );
    }

    #[test]
    fn s3_refusals_are_read_by_their_code() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message></Error>";
        assert_eq!(s3_error_code(body).as_deref(), Some("ExpiredToken"));
        assert_eq!(s3_error_code(b"not xml"), None);
        let refused = |status, code: &str| ApiError::UploadRefused {
            url: "u".into(),
            status,
            code: code.into(),
        };
        assert!(upload_needs_fresh_url(&refused(400, "ExpiredToken")));
        assert!(upload_needs_fresh_url(&refused(403, "AccessDenied")));
        assert!(!upload_needs_fresh_url(&refused(400, "EntityTooLarge")));
        assert!(!upload_needs_fresh_url(&ApiError::Status {
            url: "u".into(),
            status: 500
        }));
    }

    /// A control plane whose clock is `skew` seconds from ours: it answers
    /// every request with its `Date`, and refuses a node-signed one whose
    /// Timestamp is more than 5 minutes from its time, as the real one
    /// does. Returns its URL and the Timestamps it was sent.
    async fn skewed_control_plane(
        skew: i64,
        refuse_all: bool,
    ) -> (String, std::sync::Arc<std::sync::Mutex<Vec<i64>>>) {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = std::sync::Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let kept = std::sync::Arc::clone(&kept);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // One request per connection is enough here: the body
                    // is small JSON, read until it parses.
                    let request: Value = loop {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n")
                            && let Ok(v) = serde_json::from_slice(&buf[i + 4..])
                        {
                            break v;
                        }
                    };
                    let server_now = steward_core::clock::now_epoch() as i64 + skew;
                    let ts = request["Timestamp"].as_i64().unwrap();
                    kept.lock().unwrap().push(ts);
                    let (status, body) = if refuse_all || (server_now - ts).abs() > 300 {
                        (
                            "400 Bad Request",
                            r#"{"__type":"InvalidSignatureException","message":"Signature expired"}"#
                                .to_string(),
                        )
                    } else {
                        (
                            "200 OK",
                            serde_json::json!({
                                "AccessKeyId": "AKID", "SecretAccessKey": "s",
                                "SessionToken": "t", "Expiration": server_now + 3600,
                            })
                            .to_string(),
                        )
                    };
                    let date = aws_smithy_types::DateTime::from_secs(server_now)
                        .fmt(aws_smithy_types::date_time::Format::HttpDate)
                        .unwrap();
                    let answer = format!(
                        "HTTP/1.1 {status}\r\ndate: {date}\r\ncontent-type: {JSON_11}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(answer.as_bytes()).await;
                });
            }
        });
        (url, seen)
    }

    fn own_clock() -> &'static ServerClock {
        Box::leak(Box::new(ServerClock::new()))
    }

    #[tokio::test]
    async fn a_node_ten_minutes_off_signs_again_in_the_control_planes_time() {
        for skew in [600, -600] {
            let (url, seen) = skewed_control_plane(skew, false).await;
            let api = Api::new(HttpClient::new(), &url).with_clock(own_clock());
            let (key, _) = NodeKey::generate().unwrap();
            let local = steward_core::clock::now_epoch() as i64;
            let creds = api
                .node_credentials("mi-0123456789abcdef0", &key, local)
                .await;
            assert!(creds.is_ok(), "{skew}: {creds:?}");
            // Refused once on the local clock, then signed with the server's.
            let sent = seen.lock().unwrap().clone();
            assert_eq!(sent.len(), 2, "{skew}: {sent:?}");
            assert!((sent[0] - local).abs() <= 1, "{skew}: {sent:?}");
            assert!((sent[1] - (local + skew)).abs() <= 2, "{skew}: {sent:?}");
            assert!((api.clock().offset() - skew as f64).abs() <= 2.0);
            // Known now: the next request is right the first time.
            api.node_credentials("mi-0123456789abcdef0", &key, local)
                .await
                .unwrap();
            assert_eq!(seen.lock().unwrap().len(), 3);
        }
    }

    #[tokio::test]
    async fn a_refusal_the_clock_does_not_explain_is_not_retried() {
        let (url, seen) = skewed_control_plane(0, true).await;
        let api = Api::new(HttpClient::new(), &url).with_clock(own_clock());
        let (key, _) = NodeKey::generate().unwrap();
        let local = steward_core::clock::now_epoch() as i64;
        let refused = api
            .node_credentials("mi-0123456789abcdef0", &key, local)
            .await;
        assert!(
            matches!(&refused, Err(ApiError::Refused { code, .. }) if code == SIGNATURE_REFUSED),
            "{refused:?}"
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
        assert_eq!(api.clock().offset(), 0.0);
    }

    #[tokio::test]
    async fn session_credentials_are_asked_for_one_session_signed_by_the_node() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, request) = loop {
                let n = conn.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the request ended early");
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n")
                    && let Ok(v) = serde_json::from_slice::<Value>(&buf[i + 4..])
                {
                    break (String::from_utf8_lossy(&buf[..i]).to_lowercase(), v);
                }
            };
            let body = serde_json::json!({
                "AccessKeyId": "ASIASESSION", "SecretAccessKey": "s",
                "SessionToken": "t", "Expiration": "2099-01-01T00:00:00Z",
            })
            .to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {JSON_11}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(answer.as_bytes()).await.unwrap();
            (head, request)
        });
        let api = Api::new(HttpClient::new(), &url).with_clock(own_clock());
        let (key, _) = NodeKey::generate().unwrap();
        let now = steward_core::clock::now_epoch() as i64;
        let creds = api
            .session_credentials("mi-0123456789abcdef0", "alice-0123456789abcdef0", &key, now)
            .await
            .unwrap();
        assert_eq!(creds.access_key_id, "ASIASESSION");
        assert_eq!(creds.expires_at(), Some(4_070_908_800.0));
        let (head, request) = server.await.unwrap();
        assert!(
            head.contains("x-amz-target: steward.getsessioncredentials"),
            "{head}"
        );
        assert_eq!(request["InstanceId"], "mi-0123456789abcdef0");
        assert_eq!(request["SessionId"], "alice-0123456789abcdef0");
        let ts = request["Timestamp"].as_i64().unwrap();
        assert!((ts - now).abs() <= 1);
        steward_core::channel::verify_node_signature(
            &key.public_key_base64(),
            &session_credentials_request_message(
                "mi-0123456789abcdef0",
                "alice-0123456789abcdef0",
                ts,
            ),
            request["Signature"].as_str().unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn presigned_query_is_never_shown() {
        assert_eq!(redact("http://b/k?X-Amz-Signature=abc"), "http://b/k");
    }
}
