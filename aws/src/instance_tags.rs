//! An EC2 instance's tags (EC2's `DescribeTags`, filtered on the instance
//! id), read when the instance registers so that `tag:` targets find it.
//!
//! Why not the EC2 SDK crate: it is among the largest of the AWS SDK (every
//! build of the functions would compile it) for this one call. EC2's Query
//! protocol is a form POST signed with SigV4 and an XML answer: the signer,
//! the HTTP client and the XML reader used here are already in the build
//! through the other SDK crates.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_xml::decode::{Document, ScopedDecoder, XmlDecodeError, try_data};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use steward_core::SsmError;
use steward_core::fleet::InstanceTags;
use steward_core::tags::TagSet;

use crate::Stack;

/// The EC2 API version the request and the answer's shape are of.
const API_VERSION: &str = "2016-11-15";
/// An instance has at most 50 tags of its own (and a few `aws:` ones):
/// one page in practice. More pages than this is an endpoint misbehaving.
const MAX_PAGES: usize = 20;
/// DescribeTags' largest page.
const PAGE_SIZE: &str = "1000";
/// A page of 1,000 tags of the longest keys and values is under 1 MB.
const MAX_ANSWER_BYTES: usize = 2 << 20;
/// Per request; the registration it is part of is retried by the agent.
const TIMEOUT: Duration = Duration::from_secs(10);

type Https = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// EC2's tags over its Query API.
#[derive(Clone)]
pub struct Ec2InstanceTags {
    endpoint: String,
    region: String,
    credentials: Option<SharedCredentialsProvider>,
    /// Built at the first call (reading the host's CA certificates would
    /// cost every cold start, and most never call EC2); `Err` when the host
    /// has none to trust (said at each call, rather than failing every other
    /// operation at start).
    http: OnceLock<Result<Https, String>>,
}

impl std::fmt::Debug for Ec2InstanceTags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2InstanceTags")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// Why an EC2 call failed (for the log; the caller gets SSM's internal
/// error).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Ec2Error {
    #[error("{0}")]
    Setup(String),
    #[error("EC2 unreachable: {0}")]
    Transport(String),
    #[error("EC2 answered HTTP {status}: {code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("EC2's answer is not DescribeTags': {0}")]
    Answer(String),
}

impl Ec2InstanceTags {
    pub fn new(stack: &Stack) -> Self {
        let endpoint = endpoint(
            std::env::var("AWS_ENDPOINT_URL_EC2").ok().as_deref(),
            std::env::var("AWS_ENDPOINT_URL").ok().as_deref(),
            &stack.settings.region,
        );
        Self::with_endpoint(
            &endpoint,
            &stack.settings.region,
            stack.clients.credentials.clone(),
        )
    }

    pub fn with_endpoint(
        endpoint: &str,
        region: &str,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Self {
        Self {
            endpoint: endpoint.to_string(),
            region: region.to_string(),
            credentials,
            http: OnceLock::new(),
        }
    }

    fn http(&self) -> Result<&Https, Ec2Error> {
        self.http
            .get_or_init(|| {
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_native_roots()
                    .map(|b| {
                        Client::builder(TokioExecutor::new())
                            .build(b.https_or_http().enable_http1().build())
                    })
                    .map_err(|e| format!("no trusted CA certificates to reach EC2 with: {e}"))
            })
            .as_ref()
            .map_err(|e| Ec2Error::Setup(e.clone()))
    }

    /// Every tag of `instance_id`, page after page.
    async fn describe(&self, instance_id: &str) -> Result<TagSet, Ec2Error> {
        let mut tags = TagSet::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.page(instance_id, next.as_deref()).await?;
            tags.extend(page.tags);
            match page.next_token {
                Some(token) if !token.is_empty() => next = Some(token),
                _ => return Ok(tags),
            }
        }
        Err(Ec2Error::Answer(format!(
            "more than {MAX_PAGES} pages of tags"
        )))
    }

    async fn page(&self, instance_id: &str, next_token: Option<&str>) -> Result<Page, Ec2Error> {
        match self.call(describe_tags_form(instance_id, next_token)).await {
            Ok(text) => parse_page(&text).map_err(|e| Ec2Error::Answer(e.to_string())),
            // An id EC2 has never seen: no tags (DescribeTags filters rather
            // than looks up, so this is not expected, but it means the same).
            Err(Ec2Error::Refused { code, .. }) if code.starts_with("InvalidInstanceID") => {
                Ok(Page::default())
            }
            Err(e) => Err(e),
        }
    }

    /// Calls EC2's Query API with `form` (its Action, Version and
    /// parameters, form-encoded); the XML text of a successful answer.
    pub(crate) async fn call(&self, form: String) -> Result<String, Ec2Error> {
        let http = self.http()?;
        let request = self.signed(form).await?;
        let fut = async {
            let resp = http
                .request(request)
                .await
                .map_err(|e| Ec2Error::Transport(error_chain(&e)))?;
            let status = resp.status();
            let bytes = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| Ec2Error::Transport(e.to_string()))?
                .to_bytes();
            Ok::<_, Ec2Error>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(TIMEOUT, fut)
            .await
            .map_err(|_| Ec2Error::Transport(format!("no answer in {}s", TIMEOUT.as_secs())))??;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if !status.is_success() {
            let (code, message) = parse_error(&text).unwrap_or_default();
            return Err(Ec2Error::Refused {
                status: status.as_u16(),
                code,
                message: message.chars().take(300).collect(),
            });
        }
        Ok(text)
    }

    /// A request to EC2 with `body`, signed as the AWS SDKs sign EC2's.
    async fn signed(&self, body: String) -> Result<http::Request<Full<Bytes>>, Ec2Error> {
        let provider = self
            .credentials
            .as_ref()
            .ok_or_else(|| Ec2Error::Setup("no AWS credentials to call EC2 with".into()))?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| Ec2Error::Setup(format!("no AWS credentials to call EC2 with: {e}")))?;
        let uri: http::Uri = self
            .endpoint
            .parse()
            .map_err(|e| Ec2Error::Setup(format!("EC2 endpoint {}: {e}", self.endpoint)))?;
        let url = uri.to_string();
        const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("ec2")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| Ec2Error::Setup(e.to_string()))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            &url,
            [("content-type", CONTENT_TYPE)].into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| Ec2Error::Setup(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| Ec2Error::Setup(e.to_string()))?
            .into_parts();
        let mut request = http::Request::builder()
            .method(http::Method::POST)
            .uri(uri)
            .header(http::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Ec2Error::Setup(e.to_string()))?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }
}

#[async_trait::async_trait]
impl InstanceTags for Ec2InstanceTags {
    async fn tags_of(&self, instance_id: &str) -> Result<TagSet, SsmError> {
        self.describe(instance_id).await.map_err(|e| {
            // The error names the endpoint, EC2's code and message: never
            // the credentials or the signature.
            tracing::error!(instance_id, endpoint = %self.endpoint, error = %e, "reading an instance's EC2 tags failed");
            SsmError::internal()
        })
    }
}

/// DescribeTags' form: the tags of one resource, a page from `next_token`.
fn describe_tags_form(instance_id: &str, next_token: Option<&str>) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("Action", "DescribeTags")
        .append_pair("Version", API_VERSION)
        .append_pair("Filter.1.Name", "resource-id")
        .append_pair("Filter.1.Value.1", instance_id)
        .append_pair("MaxResults", PAGE_SIZE);
    if let Some(token) = next_token {
        form.append_pair("NextToken", token);
    }
    form.finish()
}

/// Where EC2 is: as the AWS SDKs choose it from the environment.
fn endpoint(ec2: Option<&str>, any: Option<&str>, region: &str) -> String {
    let configured = [ec2, any]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|e| !e.is_empty());
    match configured {
        Some(e) => e.to_string(),
        None => format!("https://ec2.{region}.amazonaws.com"),
    }
}

/// One page of DescribeTags.
#[derive(Debug, Default, PartialEq)]
struct Page {
    tags: TagSet,
    next_token: Option<String>,
}

/// `<DescribeTagsResponse><tagSet><item><key/><value/>…</item></tagSet><nextToken/>`.
fn parse_page(xml: &str) -> Result<Page, XmlDecodeError> {
    let mut doc = Document::new(xml);
    let mut root = doc.root_element()?;
    if !root.start_el().matches("DescribeTagsResponse") {
        return Err(XmlDecodeError::custom(format!(
            "the answer is a <{}>",
            root.start_el().local()
        )));
    }
    let mut page = Page::default();
    while let Some(mut el) = root.next_tag() {
        if el.start_el().matches("tagSet") {
            while let Some(mut item) = el.next_tag() {
                if item.start_el().matches("item") {
                    let (key, value) = tag(&mut item)?;
                    if let Some(key) = key {
                        page.tags.insert(key, value);
                    }
                }
            }
        } else if el.start_el().matches("nextToken") {
            page.next_token = Some(try_data(&mut el)?.trim().to_string());
        }
    }
    Ok(page)
}

/// An `<item>`'s key and value (an absent value is the empty one).
fn tag(item: &mut ScopedDecoder<'_, '_>) -> Result<(Option<String>, String), XmlDecodeError> {
    let (mut key, mut value) = (None, String::new());
    while let Some(mut field) = item.next_tag() {
        if field.start_el().matches("key") {
            key = Some(try_data(&mut field)?.into_owned());
        } else if field.start_el().matches("value") {
            value = try_data(&mut field)?.into_owned();
        }
    }
    Ok((key, value))
}

/// EC2's `<Response><Errors><Error><Code/><Message/>`: (code, message).
fn parse_error(xml: &str) -> Option<(String, String)> {
    let mut doc = Document::new(xml);
    let mut root = doc.root_element().ok()?;
    while let Some(mut errors) = root.next_tag() {
        if !errors.start_el().matches("Errors") {
            continue;
        }
        // The first error is EC2's answer.
        if let Some(mut error) = errors.next_tag() {
            let (mut code, mut message) = (String::new(), String::new());
            while let Some(mut field) = error.next_tag() {
                if field.start_el().matches("Code") {
                    code = try_data(&mut field).ok()?.into_owned();
                } else if field.start_el().matches("Message") {
                    message = try_data(&mut field).ok()?.into_owned();
                }
            }
            return Some((code, message));
        }
    }
    None
}

/// An error with its causes (hyper's own Display leaves them out).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_chosen_as_the_sdks_choose_it() {
        assert_eq!(
            endpoint(
                Some("http://ec2.local:1"),
                Some("http://any:2"),
                "eu-west-1"
            ),
            "http://ec2.local:1"
        );
        assert_eq!(
            endpoint(None, Some("http://any:2"), "eu-west-1"),
            "http://any:2"
        );
        assert_eq!(
            endpoint(Some(" "), None, "eu-west-1"),
            "https://ec2.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn reads_a_page_of_tags() {
        let page = parse_page(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeTagsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
   <requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId>
   <tagSet>
      <item>
         <resourceId>i-1234567890abcdef0</resourceId>
         <resourceType>instance</resourceType>
         <key>Role</key>
         <value>web &amp; api</value>
      </item>
      <item>
         <resourceId>i-1234567890abcdef0</resourceId>
         <resourceType>instance</resourceType>
         <key>empty</key>
         <value/>
      </item>
   </tagSet>
   <nextToken>abc+/=</nextToken>
</DescribeTagsResponse>"#,
        )
        .unwrap();
        assert_eq!(page.tags.get("Role").map(String::as_str), Some("web & api"));
        assert_eq!(page.tags.get("empty").map(String::as_str), Some(""));
        assert_eq!(page.tags.len(), 2);
        assert_eq!(page.next_token.as_deref(), Some("abc+/="));
    }

    #[test]
    fn an_instance_without_tags_is_an_empty_page() {
        let page = parse_page(
            r#"<DescribeTagsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><tagSet/></DescribeTagsResponse>"#,
        )
        .unwrap();
        assert_eq!(page, Page::default());
    }

    #[test]
    fn another_answer_is_not_a_page() {
        assert!(parse_page("<Response><Errors/></Response>").is_err());
        assert!(parse_page("not xml").is_err());
    }

    #[test]
    fn reads_ec2s_errors() {
        let (code, message) = parse_error(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this operation.</Message></Error></Errors><RequestID>r</RequestID></Response>"#,
        )
        .unwrap();
        assert_eq!(code, "UnauthorizedOperation");
        assert_eq!(message, "You are not authorized to perform this operation.");
        assert_eq!(parse_error("<html>gateway</html>"), None);
    }
}
