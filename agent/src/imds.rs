//! The EC2 instance metadata service, IMDSv2 only: a session token, then the
//! instance identity document and its signature, which the control plane
//! checks against AWS's certificate. Plain HTTP to a link-local address,
//! with short timeouts, so that asking off EC2 costs about a second.

use std::time::Duration;

use crate::api::error_chain;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use thiserror::Error;

/// Where IMDS answers on every EC2 instance (IPv4).
pub const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
pub const TOKEN_PATH: &str = "/latest/api/token";
pub const DOCUMENT_PATH: &str = "/latest/dynamic/instance-identity/document";
pub const SIGNATURE_PATH: &str = "/latest/dynamic/instance-identity/signature";
pub const TOKEN_TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
pub const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
/// Six hours, the most IMDS grants; the agent needs it for seconds.
const TOKEN_TTL_SECONDS: &str = "21600";
/// Off EC2 nothing answers the link-local address: give up quickly.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// The document is under a kilobyte, its signature a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

#[derive(Debug, Error)]
pub enum ImdsError {
    /// Nothing answered: this node is not an EC2 instance (or its metadata
    /// endpoint is turned off).
    #[error(
        "the instance metadata service at {endpoint} did not answer ({reason}); this node does not look like an EC2 instance"
    )]
    Unreachable { endpoint: String, reason: String },
    /// The token request was refused but the document is served without
    /// one: the host offers IMDSv1 only.
    #[error(
        "the instance metadata service refused a session token (HTTP {status}) but serves the identity document without one: it offers IMDSv1 only, and Steward needs IMDSv2; enable it with: aws ec2 modify-instance-metadata-options --instance-id {instance_id} --http-tokens required --http-endpoint enabled"
    )]
    Imdsv1Only { status: u16, instance_id: String },
    /// The token request got no answer but the document is served without
    /// a token: the token's answer is dropped on its way, as it is in a
    /// container one hop further than the instance's PUT hop limit allows.
    #[error(
        "the instance metadata service serves the identity document without a token but never answered the token request: in a container, raise the instance's metadata hop limit: aws ec2 modify-instance-metadata-options --instance-id {instance_id} --http-put-response-hop-limit 2 --http-tokens required --http-endpoint enabled"
    )]
    TokenUnanswered { instance_id: String },
    #[error("{}", status_message(path, *status))]
    Status { path: &'static str, status: u16 },
    /// IMDS answered the token but failed a later request.
    #[error("the instance metadata service failed {path}: {reason}")]
    Failed { path: &'static str, reason: String },
    #[error("the instance metadata endpoint `{0}` is not an http:// URL (IMDS is plain HTTP)")]
    Endpoint(String),
}

fn status_message(path: &str, status: u16) -> String {
    let hint = if status == 403 {
        "; on an EC2 instance, its metadata endpoint may be turned off: aws ec2 modify-instance-metadata-options --instance-id <id> --http-endpoint enabled --http-tokens required"
    } else {
        ""
    };
    format!("the instance metadata service answered {path} with HTTP {status}{hint}")
}

impl ImdsError {
    /// Whether asking again later may work (IMDS throttles, or stumbled).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status >= 500 || *status == 429,
            Self::Failed { .. } => true,
            Self::Unreachable { .. }
            | Self::Imdsv1Only { .. }
            | Self::TokenUnanswered { .. }
            | Self::Endpoint(_) => false,
        }
    }

    /// Whether nothing IMDS-like is there: nothing answered, or something
    /// refused the token request without serving a document (a proxy off
    /// EC2, or a metadata endpoint turned off), as opposed to an IMDS that
    /// gave a token and then failed.
    pub fn is_absent(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. }
                | Self::Status {
                    path: TOKEN_PATH,
                    ..
                }
        )
    }

    /// The host refuses what the agent needs (a setting of the instance to
    /// change), as opposed to a failure.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Imdsv1Only { .. } | Self::TokenUnanswered { .. })
    }
}

/// The instance identity document and its base64 RSA signature, exactly as
/// IMDS served them: the control plane verifies these very bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceIdentity {
    pub document: String,
    pub signature: String,
}

impl InstanceIdentity {
    /// The document's `instanceId`, if it is the JSON it should be.
    pub fn instance_id(&self) -> Option<String> {
        document_field(&self.document, "instanceId")
    }

    pub fn region(&self) -> Option<String> {
        document_field(&self.document, "region")
    }

    pub fn account_id(&self) -> Option<String> {
        document_field(&self.document, "accountId")
    }
}

fn document_field(document: &str, name: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(document).ok()?;
    Some(v.get(name)?.as_str()?.to_string())
}

/// How one request ended short of an answer.
enum Transport {
    /// No connection: nothing listens there.
    Connect(String),
    /// Connected, but no whole answer in time (or the connection broke).
    NoAnswer(String),
}

pub struct Imds {
    endpoint: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Imds {
    /// A client of IMDS at `endpoint` (`http://host[:port]`, no path).
    pub fn new(endpoint: &str) -> Result<Self, ImdsError> {
        let endpoint = validate_endpoint(endpoint)?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        Ok(Self {
            endpoint,
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The identity document and its signature, over an IMDSv2 session.
    pub async fn identity(&self) -> Result<InstanceIdentity, ImdsError> {
        let token = self.token().await?;
        let document = self.get(DOCUMENT_PATH, Some(&token)).await?;
        let signature = self.get(SIGNATURE_PATH, Some(&token)).await?;
        Ok(InstanceIdentity {
            document,
            signature,
        })
    }

    async fn token(&self) -> Result<String, ImdsError> {
        let req = self
            .request(Method::PUT, TOKEN_PATH)
            .header(TOKEN_TTL_HEADER, TOKEN_TTL_SECONDS);
        match self.send(req).await {
            Ok((StatusCode::OK, body)) => {
                let token = text(TOKEN_PATH, body)?;
                let token = token.trim();
                if token.is_empty() || http::HeaderValue::from_str(token).is_err() {
                    return Err(ImdsError::Failed {
                        path: TOKEN_PATH,
                        reason: "the token it answered is empty or not a header value".into(),
                    });
                }
                Ok(token.to_string())
            }
            Ok((status, _)) if matches!(status.as_u16(), 403..=405) => {
                Err(match self.document_without_token().await {
                    Some(instance_id) => ImdsError::Imdsv1Only {
                        status: status.as_u16(),
                        instance_id,
                    },
                    None => ImdsError::Status {
                        path: TOKEN_PATH,
                        status: status.as_u16(),
                    },
                })
            }
            Ok((status, _)) => Err(ImdsError::Status {
                path: TOKEN_PATH,
                status: status.as_u16(),
            }),
            Err(Transport::Connect(reason)) => Err(self.unreachable(reason)),
            Err(Transport::NoAnswer(reason)) => Err(match self.document_without_token().await {
                Some(instance_id) => ImdsError::TokenUnanswered { instance_id },
                None => self.unreachable(reason),
            }),
        }
    }

    /// The instance id from a document served without a token (IMDSv1),
    /// when IMDS serves it so; `<instance-id>` when the document says none.
    async fn document_without_token(&self) -> Option<String> {
        match self.send(self.request(Method::GET, DOCUMENT_PATH)).await {
            Ok((StatusCode::OK, body)) => {
                let doc = String::from_utf8(body.to_vec()).unwrap_or_default();
                Some(document_field(&doc, "instanceId").unwrap_or_else(|| "<instance-id>".into()))
            }
            _ => None,
        }
    }

    async fn get(&self, path: &'static str, token: Option<&str>) -> Result<String, ImdsError> {
        let mut req = self.request(Method::GET, path);
        if let Some(t) = token {
            req = req.header(TOKEN_HEADER, t);
        }
        match self.send(req).await {
            Ok((StatusCode::OK, body)) => text(path, body),
            Ok((status, _)) => Err(ImdsError::Status {
                path,
                status: status.as_u16(),
            }),
            Err(Transport::Connect(reason) | Transport::NoAnswer(reason)) => {
                Err(ImdsError::Failed { path, reason })
            }
        }
    }

    fn request(&self, method: Method, path: &str) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.endpoint))
    }

    async fn send(&self, req: http::request::Builder) -> Result<(StatusCode, Bytes), Transport> {
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|e| Transport::Connect(e.to_string()))?;
        let fut = async {
            let resp = self.client.request(req).await.map_err(|e| {
                let reason = error_chain(&e);
                if e.is_connect() {
                    Transport::Connect(reason)
                } else {
                    Transport::NoAnswer(reason)
                }
            })?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| Transport::NoAnswer(e.to_string()))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| {
                Transport::NoAnswer(format!(
                    "no answer within {} seconds",
                    REQUEST_TIMEOUT.as_secs()
                ))
            })?
    }

    fn unreachable(&self, reason: String) -> ImdsError {
        ImdsError::Unreachable {
            endpoint: self.endpoint.clone(),
            reason,
        }
    }
}

fn text(path: &'static str, body: Bytes) -> Result<String, ImdsError> {
    String::from_utf8(body.to_vec()).map_err(|_| ImdsError::Failed {
        path,
        reason: "its answer is not UTF-8 text".into(),
    })
}

/// `http://host[:port]` without a trailing slash; anything else is refused.
pub fn validate_endpoint(endpoint: &str) -> Result<String, ImdsError> {
    let trimmed = endpoint.trim().trim_end_matches('/');
    let bad = || ImdsError::Endpoint(endpoint.to_string());
    let uri: http::Uri = trimmed.parse().map_err(|_| bad())?;
    let bare_path = matches!(uri.path(), "" | "/") && uri.query().is_none();
    if uri.scheme_str() != Some("http") || uri.authority().is_none() || !bare_path {
        return Err(bad());
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_imds::{FakeImds, Mode};

    #[tokio::test]
    async fn the_token_flow_sends_the_ttl_then_the_token() {
        let fake = FakeImds::start(Mode::V2, "i-0abc1234def567890");
        let imds = Imds::new(&fake.url).unwrap();
        let id = imds.identity().await.unwrap();
        assert_eq!(id.document, fake.document);
        // Served with its line breaks, sent with them.
        assert_eq!(id.signature, fake.signature);
        assert_eq!(id.instance_id().as_deref(), Some("i-0abc1234def567890"));
        assert_eq!(id.region().as_deref(), Some("us-east-1"));
        let seen = fake.seen();
        let paths: Vec<(&str, &str)> = seen
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                ("PUT", TOKEN_PATH),
                ("GET", DOCUMENT_PATH),
                ("GET", SIGNATURE_PATH)
            ]
        );
        assert_eq!(seen[0].ttl.as_deref(), Some("21600"));
        assert_eq!(seen[0].token, None);
        for r in &seen[1..] {
            assert_eq!(r.token.as_deref(), Some(crate::fake_imds::TOKEN));
            assert_eq!(r.ttl, None);
        }
    }

    #[tokio::test]
    async fn an_imdsv1_only_host_is_told_how_to_enable_imdsv2() {
        for status in [403, 404, 405] {
            let fake = FakeImds::start(Mode::V1Only(status), "i-0abc1234def567890");
            let e = Imds::new(&fake.url).unwrap().identity().await.unwrap_err();
            assert!(
                matches!(&e, ImdsError::Imdsv1Only { status: s, .. } if *s == status),
                "{e:?}"
            );
            assert!(e.is_refusal());
            let text = e.to_string();
            assert!(text.contains("IMDSv2"), "{text}");
            assert!(
                text.contains("aws ec2 modify-instance-metadata-options --instance-id i-0abc1234def567890 --http-tokens required --http-endpoint enabled"),
                "{text}"
            );
            // The signature was never asked for.
            assert!(fake.seen().iter().all(|r| r.path != SIGNATURE_PATH));
        }
    }

    #[tokio::test]
    async fn a_refused_token_without_a_v1_document_is_a_status() {
        let fake = FakeImds::start(Mode::Disabled, "i-0abc1234def567890");
        let e = Imds::new(&fake.url).unwrap().identity().await.unwrap_err();
        assert!(
            matches!(
                e,
                ImdsError::Status {
                    path: TOKEN_PATH,
                    status: 403
                }
            ),
            "{e:?}"
        );
        assert!(!e.is_refusal() && !e.is_transient());
        assert!(e.is_absent());
    }

    #[tokio::test]
    async fn an_unanswered_token_with_a_v1_document_names_the_hop_limit() {
        let fake = FakeImds::start(Mode::TokenHangs, "i-0abc1234def567890");
        let e = Imds::new(&fake.url).unwrap().identity().await.unwrap_err();
        assert!(matches!(e, ImdsError::TokenUnanswered { .. }), "{e:?}");
        assert!(e.to_string().contains("--http-put-response-hop-limit 2"));
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_at_once() {
        let port = crate::fake_imds::closed_port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let imds = Imds::new(&endpoint).unwrap();
        // Refused connections fail at once; the bound only stops a hang
        // (the request timeout alone would be 3 s).
        let e = tokio::time::timeout(Duration::from_secs(60), imds.identity())
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&e, ImdsError::Unreachable { endpoint: ep, .. } if *ep == endpoint),
            "{e:?}"
        );
        assert!(!e.is_transient() && !e.is_refusal());
        assert!(e.is_absent());
    }

    #[tokio::test]
    async fn a_failing_document_is_a_status_with_its_path() {
        let fake = FakeImds::start(Mode::DocumentFails(503), "i-0abc1234def567890");
        let e = Imds::new(&fake.url).unwrap().identity().await.unwrap_err();
        assert!(
            matches!(
                e,
                ImdsError::Status {
                    path: DOCUMENT_PATH,
                    status: 503
                }
            ),
            "{e:?}"
        );
        assert!(e.is_transient());
        // IMDS was there: it gave a token.
        assert!(!e.is_absent());
    }

    #[test]
    fn endpoints_are_plain_http_urls() {
        assert_eq!(
            validate_endpoint("http://169.254.169.254/").unwrap(),
            "http://169.254.169.254"
        );
        assert_eq!(
            validate_endpoint("http://[fd00:ec2::254]").unwrap(),
            "http://[fd00:ec2::254]"
        );
        assert_eq!(
            validate_endpoint("http://127.0.0.1:1338").unwrap(),
            "http://127.0.0.1:1338"
        );
        for bad in [
            "https://169.254.169.254",
            "169.254.169.254",
            "http://x/latest",
            "",
        ] {
            assert!(validate_endpoint(bad).is_err(), "{bad}");
        }
    }
}
