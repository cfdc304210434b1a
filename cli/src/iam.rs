//! A small client for Steward's IAM API (IAM's Query protocol): a form POST
//! signed with SigV4 for `iam`, an XML answer read into a small tree. The
//! AWS SDK's IAM crate would do the same at many times the size.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use quick_xml::Reader;
use quick_xml::events::Event;

use crate::error::CliError;

/// IAM is signed for us-east-1 whatever the client's region.
const SIGNING_REGION: &str = "us-east-1";

/// An element: its text and its children, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text at `path` below this element ("" when absent).
    pub fn text_at(&self, path: &[&str]) -> String {
        let mut n = self;
        for p in path {
            match n.child(p) {
                Some(c) => n = c,
                None => return String::new(),
            }
        }
        n.text.clone()
    }

    /// The `<member>`s of the list element `name`.
    pub fn members(&self, name: &str) -> Vec<&Node> {
        self.child(name)
            .map(|l| l.children.iter().filter(|c| c.name == "member").collect())
            .unwrap_or_default()
    }
}

/// Parses an XML document into its root element.
pub fn parse(xml: &str) -> Result<Node, String> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Node> = vec![Node::default()];
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(s) => stack.push(Node {
                name: String::from_utf8_lossy(s.local_name().as_ref()).into_owned(),
                ..Node::default()
            }),
            Event::Empty(s) => {
                let n = Node {
                    name: String::from_utf8_lossy(s.local_name().as_ref()).into_owned(),
                    ..Node::default()
                };
                if let Some(top) = stack.last_mut() {
                    top.children.push(n);
                }
            }
            Event::Text(t) => {
                let text = t.xml_content().map_err(|e| e.to_string())?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| e.to_string())?;
                let ch = match name.as_ref() {
                    "lt" => "<".to_string(),
                    "gt" => ">".to_string(),
                    "amp" => "&".to_string(),
                    "apos" => "'".to_string(),
                    "quot" => "\"".to_string(),
                    other => r
                        .resolve_char_ref()
                        .ok()
                        .flatten()
                        .map(String::from)
                        .unwrap_or_else(|| format!("&{other};")),
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&ch);
                }
            }
            Event::End(_) => {
                let done = stack.pop().ok_or("unbalanced XML")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return Err("unbalanced XML".into()),
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    stack
        .pop()
        .and_then(|root| root.children.into_iter().next())
        .ok_or_else(|| "empty XML answer".into())
}

pub struct IamClient {
    endpoint: Option<String>,
    credentials: Option<SharedCredentialsProvider>,
}

impl IamClient {
    pub fn new(endpoint: Option<String>, credentials: Option<SharedCredentialsProvider>) -> Self {
        Self {
            endpoint,
            credentials,
        }
    }

    /// Calls `action` with `params`; the `<{action}Result>` element (or the
    /// response's root when the action has no result).
    pub async fn call(
        &self,
        action: &'static str,
        params: &[(&str, &str)],
    ) -> Result<Node, CliError> {
        let other = |detail: String| CliError::Other {
            operation: action,
            detail,
        };
        let endpoint = self
            .endpoint
            .as_deref()
            .ok_or_else(|| CliError::Unreachable {
                operation: action,
                detail: "no endpoint is configured".into(),
            })?;
        let provider = self
            .credentials
            .as_ref()
            .ok_or_else(|| CliError::Credentials {
                operation: action,
                detail: "no credentials provider".into(),
            })?;
        use aws_credential_types::provider::ProvideCredentials;
        let creds: Credentials =
            provider
                .provide_credentials()
                .await
                .map_err(|e| CliError::Credentials {
                    operation: action,
                    detail: e.to_string(),
                })?;
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", action);
        form.append_pair("Version", "2010-05-08");
        for (k, v) in params {
            form.append_pair(k, v);
        }
        let body = form.finish();
        let url = format!("{}/", endpoint.trim_end_matches('/'));
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let mut req = http::Request::builder()
            .method("POST")
            .uri(&url)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body.clone())))
            .map_err(|e| other(e.to_string()))?;
        let identity = creds.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(SIGNING_REGION)
            .name("iam")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| other(e.to_string()))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            &url,
            [("content-type", content_type)].into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| other(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| other(e.to_string()))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut req);

        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| other(e.to_string()))?
            .https_or_http()
            .enable_http1()
            .build();
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
        let resp = client
            .request(req)
            .await
            .map_err(|e| CliError::Unreachable {
                operation: action,
                detail: e.to_string(),
            })?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| CliError::Unreachable {
                operation: action,
                detail: e.to_string(),
            })?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        let root = parse(&text).map_err(|e| other(format!("HTTP {status}: {e}")))?;
        if root.name == "ErrorResponse" {
            return Err(CliError::Api {
                operation: action,
                code: root.text_at(&["Error", "Code"]),
                message: root.text_at(&["Error", "Message"]),
            });
        }
        if !status.is_success() {
            return Err(other(format!("HTTP {status}")));
        }
        let result = format!("{action}Result");
        Ok(root.child(&result).cloned().unwrap_or(root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iams_answers_and_errors() {
        let ok = parse(
            r#"<ListUsersResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ListUsersResult><Users><member><UserName>a&amp;b</UserName></member><member><UserName>c</UserName></member></Users><IsTruncated>false</IsTruncated></ListUsersResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></ListUsersResponse>"#,
        )
        .unwrap();
        let result = ok.child("ListUsersResult").unwrap();
        let names: Vec<String> = result
            .members("Users")
            .iter()
            .map(|m| m.text_at(&["UserName"]))
            .collect();
        assert_eq!(names, ["a&b", "c"]);
        assert_eq!(result.text_at(&["IsTruncated"]), "false");
        let err = parse(r#"<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>gone</Message></Error></ErrorResponse>"#).unwrap();
        assert_eq!(err.text_at(&["Error", "Code"]), "NoSuchEntity");
    }
}
