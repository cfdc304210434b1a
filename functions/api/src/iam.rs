//! IAM's Query protocol on the same endpoint as SSM: a form-encoded POST
//! (`Action=CreateUser&Version=2010-05-08&UserName=…`) signed for `iam`,
//! answered in IAM's XML, errors in IAM's `ErrorResponse`. Thin: decode
//! the form, call `steward_core::identity`, encode the answer.

use std::collections::BTreeMap;

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use quick_xml::Writer;
use quick_xml::events::BytesText;
use steward_aws::Stack;
use steward_core::clock::now_epoch;
use steward_core::identity::access_keys::{self, NewAccessKey};
use steward_core::identity::model::{AccessKey, User};
use steward_core::identity::user_policies::{self, UserPolicy};
use steward_core::identity::{IamError, Page, PageRequest, users};

use crate::auth;

const NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const VERSION: &str = "2010-05-08";
const FORM: &str = "application/x-www-form-urlencoded";

/// What IAM keeps unescaped when it URL-encodes a policy document (RFC 3986's
/// unreserved characters): clients decode it with `unquote`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A form POST without `X-Amz-Target` is IAM's Query protocol.
pub fn is_query_request(req: &http::Request<Bytes>) -> bool {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    req.method() == http::Method::POST
        && !req.headers().contains_key("x-amz-target")
        && content_type.to_ascii_lowercase().starts_with(FORM)
}

/// Handles one IAM request; the answer is always IAM's XML.
pub async fn handle(
    stack: &Stack,
    req: &http::Request<Bytes>,
    request_id: &str,
) -> http::Response<Bytes> {
    let (status, body) = match route(stack, req).await {
        Ok((action, result)) => (200, success(&action, result, request_id)),
        Err(e) => {
            if matches!(e, IamError::ServiceFailure(_)) {
                tracing::error!(request_id, "IAM request failed with an internal error");
            } else {
                tracing::info!(request_id, error = e.code(), "IAM request refused");
            }
            (e.http_status(), error(&e, request_id))
        }
    };
    http::Response::builder()
        .status(status)
        .header("content-type", "text/xml")
        .header("x-amzn-requestid", request_id)
        .body(Bytes::from(body))
        .unwrap_or_else(|_| http::Response::new(Bytes::new()))
}

/// The form's parameters; `Action` and `Version` taken out.
struct Form {
    params: BTreeMap<String, String>,
}

fn missing(field: &str) -> IamError {
    IamError::ValidationError(format!(
        "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
    ))
}

impl Form {
    fn parse(body: &[u8]) -> Self {
        Self {
            params: form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    fn opt(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// `field` is IAM's camel-case name in its validation messages.
    fn req(&self, name: &str, field: &str) -> Result<&str, IamError> {
        self.opt(name).ok_or_else(|| missing(field))
    }

    /// Refuses parameters this action does not take (or Steward does not
    /// implement, such as Tags): ignoring them would do less than asked.
    fn only(&self, action: &str, allowed: &[&str]) -> Result<(), IamError> {
        match self
            .params
            .keys()
            .find(|k| !allowed.contains(&k.as_str()) && *k != "Action" && *k != "Version")
        {
            Some(k) => Err(IamError::ValidationError(format!(
                "Parameter {k} is not supported by Steward's {action}."
            ))),
            None => Ok(()),
        }
    }

    fn page(&self) -> Result<PageRequest, IamError> {
        let max_items = match self.opt("MaxItems") {
            None => None,
            Some(v) => Some(v.parse::<i64>().map_err(|_| {
                IamError::ValidationError(format!(
                    "1 validation error detected: Value '{v}' at 'maxItems' failed to satisfy constraint: Member must be a number"
                ))
            })?),
        };
        Ok(PageRequest {
            marker: self.opt("Marker").map(str::to_string),
            max_items,
        })
    }
}

/// A small XML tree: an element with text or with children.
enum Xml {
    Text(&'static str, String),
    Node(&'static str, Vec<Xml>),
}

fn write(w: &mut Writer<Vec<u8>>, x: &Xml) -> std::io::Result<()> {
    match x {
        Xml::Text(name, text) => {
            w.create_element(*name)
                .write_text_content(BytesText::new(text))?;
        }
        Xml::Node(name, children) => {
            w.create_element(*name)
                .write_inner_content(|w| children.iter().try_for_each(|c| write(w, c)))?;
        }
    }
    Ok(())
}

/// `<{root} xmlns=…>{children}</{root}>` as bytes.
fn document(root: &str, children: Vec<Xml>) -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    let written = w
        .create_element(root)
        .with_attribute(("xmlns", NAMESPACE))
        .write_inner_content(|w| children.iter().try_for_each(|c| write(w, c)));
    // Writing into memory cannot fail.
    match written {
        Ok(_) => w.into_inner(),
        Err(_) => Vec::new(),
    }
}

fn metadata(request_id: &str) -> Xml {
    Xml::Node(
        "ResponseMetadata",
        vec![Xml::Text("RequestId", request_id.to_string())],
    )
}

fn success(action: &str, result: Option<Xml>, request_id: &str) -> Vec<u8> {
    let mut children = Vec::new();
    if let Some(r) = result {
        children.push(r);
    }
    children.push(metadata(request_id));
    document(&format!("{action}Response"), children)
}

fn error(e: &IamError, request_id: &str) -> Vec<u8> {
    document(
        "ErrorResponse",
        vec![
            Xml::Node(
                "Error",
                vec![
                    Xml::Text("Type", e.fault().to_string()),
                    Xml::Text("Code", e.code().to_string()),
                    Xml::Text("Message", e.to_string()),
                ],
            ),
            Xml::Text("RequestId", request_id.to_string()),
        ],
    )
}

/// ISO 8601, as IAM's `dateType`.
fn date(epoch: f64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp(epoch.trunc() as i64)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn user_fields(u: &User, account: &str) -> Vec<Xml> {
    vec![
        Xml::Text("Path", u.path.clone()),
        Xml::Text("UserName", u.user_name.clone()),
        Xml::Text("UserId", u.user_id.clone()),
        Xml::Text("Arn", u.arn(account)),
        Xml::Text("CreateDate", date(u.create_date)),
    ]
}

fn key_metadata(k: &AccessKey) -> Vec<Xml> {
    vec![
        Xml::Text("UserName", k.user_name.clone()),
        Xml::Text("AccessKeyId", k.access_key_id.clone()),
        Xml::Text("Status", k.status.clone()),
        Xml::Text("CreateDate", date(k.create_date)),
    ]
}

/// A list's `<…Result>`: the `<member>`s `each` makes, IsTruncated and,
/// when truncated, Marker.
fn listing<T>(
    result: &'static str,
    list: &'static str,
    page: Page<T>,
    each: impl Fn(T) -> Xml,
) -> Xml {
    let mut children = vec![Xml::Node(list, page.items.into_iter().map(each).collect())];
    children.push(Xml::Text("IsTruncated", page.marker.is_some().to_string()));
    if let Some(m) = page.marker {
        children.push(Xml::Text("Marker", m));
    }
    Xml::Node(result, children)
}

async fn route(
    stack: &Stack,
    req: &http::Request<Bytes>,
) -> Result<(String, Option<Xml>), IamError> {
    // Authenticate before anything else: an unsigned request learns nothing.
    let principal = auth::authenticate(stack, req, "iam").await?;
    let form = Form::parse(req.body());
    let action = form
        .opt("Action")
        .ok_or_else(|| IamError::InvalidAction("The request names no Action.".into()))?
        .to_string();
    if let Some(v) = form.opt("Version")
        && v != VERSION
    {
        return Err(IamError::InvalidAction(format!(
            "Could not find operation {action} for version {v}; Steward serves IAM {VERSION}."
        )));
    }
    let account = stack.settings.account_id.as_str();
    let caller = principal.caller(account);
    let cx = stack
        .identity()
        .context(&caller, &principal.user_name, now_epoch());
    let result = match action.as_str() {
        "CreateUser" => {
            form.only(&action, &["UserName", "Path"])?;
            let u = users::create_user(&cx, form.req("UserName", "userName")?, form.opt("Path"))
                .await?;
            Some(Xml::Node(
                "CreateUserResult",
                vec![Xml::Node("User", user_fields(&u, account))],
            ))
        }
        "GetUser" => {
            form.only(&action, &["UserName"])?;
            let u = users::get_user(&cx, form.opt("UserName")).await?;
            Some(Xml::Node(
                "GetUserResult",
                vec![Xml::Node("User", user_fields(&u, account))],
            ))
        }
        "ListUsers" => {
            form.only(&action, &["PathPrefix", "Marker", "MaxItems"])?;
            let page = users::list_users(&cx, form.opt("PathPrefix"), &form.page()?).await?;
            Some(listing("ListUsersResult", "Users", page, |u| {
                Xml::Node("member", user_fields(&u, account))
            }))
        }
        "DeleteUser" => {
            form.only(&action, &["UserName"])?;
            users::delete_user(&cx, form.req("UserName", "userName")?).await?;
            None
        }
        "PutUserPolicy" => {
            form.only(&action, &["UserName", "PolicyName", "PolicyDocument"])?;
            user_policies::put_user_policy(
                &cx,
                form.req("UserName", "userName")?,
                form.req("PolicyName", "policyName")?,
                form.req("PolicyDocument", "policyDocument")?,
            )
            .await?;
            None
        }
        "GetUserPolicy" => {
            form.only(&action, &["UserName", "PolicyName"])?;
            let UserPolicy {
                user_name,
                policy_name,
                document,
            } = user_policies::get_user_policy(
                &cx,
                form.req("UserName", "userName")?,
                form.req("PolicyName", "policyName")?,
            )
            .await?;
            Some(Xml::Node(
                "GetUserPolicyResult",
                vec![
                    Xml::Text("UserName", user_name),
                    Xml::Text("PolicyName", policy_name),
                    // URL-encoded, as IAM returns policy documents.
                    Xml::Text(
                        "PolicyDocument",
                        utf8_percent_encode(&document, UNRESERVED).to_string(),
                    ),
                ],
            ))
        }
        "DeleteUserPolicy" => {
            form.only(&action, &["UserName", "PolicyName"])?;
            user_policies::delete_user_policy(
                &cx,
                form.req("UserName", "userName")?,
                form.req("PolicyName", "policyName")?,
            )
            .await?;
            None
        }
        "ListUserPolicies" => {
            form.only(&action, &["UserName", "Marker", "MaxItems"])?;
            let page = user_policies::list_user_policies(
                &cx,
                form.req("UserName", "userName")?,
                &form.page()?,
            )
            .await?;
            Some(listing(
                "ListUserPoliciesResult",
                "PolicyNames",
                page,
                |n| Xml::Text("member", n),
            ))
        }
        "CreateAccessKey" => {
            form.only(&action, &["UserName"])?;
            let NewAccessKey { key, secret } =
                access_keys::create_access_key(&cx, form.opt("UserName")).await?;
            let mut fields = key_metadata(&key);
            // The only answer that carries the secret.
            fields.insert(3, Xml::Text("SecretAccessKey", secret.expose().to_string()));
            Some(Xml::Node(
                "CreateAccessKeyResult",
                vec![Xml::Node("AccessKey", fields)],
            ))
        }
        "UpdateAccessKey" => {
            form.only(&action, &["UserName", "AccessKeyId", "Status"])?;
            access_keys::update_access_key(
                &cx,
                form.opt("UserName"),
                form.req("AccessKeyId", "accessKeyId")?,
                form.req("Status", "status")?,
            )
            .await?;
            None
        }
        "DeleteAccessKey" => {
            form.only(&action, &["UserName", "AccessKeyId"])?;
            access_keys::delete_access_key(
                &cx,
                form.opt("UserName"),
                form.req("AccessKeyId", "accessKeyId")?,
            )
            .await?;
            None
        }
        "ListAccessKeys" => {
            form.only(&action, &["UserName", "Marker", "MaxItems"])?;
            let page =
                access_keys::list_access_keys(&cx, form.opt("UserName"), &form.page()?).await?;
            Some(listing(
                "ListAccessKeysResult",
                "AccessKeyMetadata",
                page,
                |k| Xml::Node("member", key_metadata(&k)),
            ))
        }
        other => {
            return Err(IamError::InvalidAction(format!(
                "Could not find operation {other} for version {VERSION}. Steward serves CreateUser, DeleteUser, GetUser, ListUsers, PutUserPolicy, GetUserPolicy, DeleteUserPolicy, ListUserPolicies, CreateAccessKey, UpdateAccessKey, DeleteAccessKey and ListAccessKeys."
            )));
        }
    };
    Ok((action, result))
}
