//! The api function: SSM's JSON 1.1 protocol (`X-Amz-Target: AmazonSSM.<Op>`)
//! for operators, SigV4-verified against Steward's own access keys, and the
//! agent's operations (`Steward.<Op>`), authenticated by activation or node key.

pub mod auth;
pub mod commands;
pub mod documents;
pub mod fleet;
pub mod iam;
pub mod lambda;
pub mod node_parameters;
pub mod parameters;

use bytes::Bytes;
use serde_json::Value;
use steward_aws::Stack;
use steward_core::SsmError;

const JSON_11: &str = "application/x-amz-json-1.1";

/// Handles one HTTP request. The Lambda binary and the local server both call this.
pub async fn handle(stack: &Stack, req: http::Request<Bytes>) -> http::Response<Bytes> {
    let request_id = uuid_like();
    // IAM's Query protocol shares the endpoint and answers in its own XML.
    if iam::is_query_request(&req) {
        return iam::handle(stack, &req, &request_id).await;
    }
    match route(stack, &req).await {
        Ok(body) => respond(200, &request_id, None, body),
        Err(e) => {
            if matches!(e, SsmError::InternalServerError(_)) {
                tracing::error!(request_id, "request failed with an internal error");
            } else {
                tracing::info!(request_id, error = e.code(), "request refused");
            }
            let body = serde_json::json!({ "__type": e.code(), "message": e.to_string() });
            respond(e.http_status(), &request_id, Some(e.code()), body)
        }
    }
}

async fn route(stack: &Stack, req: &http::Request<Bytes>) -> Result<Value, SsmError> {
    if req.method() != http::Method::POST {
        return Err(SsmError::ValidationException(
            "Use POST with an X-Amz-Target header, as the AWS SDKs do.".into(),
        ));
    }
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (service, op) = target.split_once('.').unwrap_or(("", ""));
    let body: Value = if req.body().is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(req.body()).map_err(|e| {
            SsmError::SerializationException(format!("Request body is not JSON: {e}"))
        })?
    };
    match service {
        "AmazonSSM" => {
            // Authenticate before anything else: an unsigned request learns nothing.
            let principal = auth::authenticate(stack, req, "ssm").await?;
            principal.authorize(op)?;
            // SSM's own input constraints, before any operation reads the body.
            steward_core::api_model::validate(op, &body)?;
            // Before fleet: tagging a `Parameter` is Parameter Store's.
            if let Some(result) = parameters::handle(stack, &principal, op, &body).await {
                return result;
            }
            if let Some(result) = documents::handle(stack, &principal, op, &body).await {
                return result;
            }
            if let Some(result) = fleet::handle(stack, &principal, op, &body).await {
                return result;
            }
            if let Some(result) = commands::handle(stack, &principal, op, &body).await {
                return result;
            }
            Err(SsmError::InvalidAction(format!(
                "Operation {op} is not supported by Steward."
            )))
        }
        "Steward" => fleet::handle_agent(stack, op, &body).await,
        _ => Err(SsmError::InvalidAction(
            "Missing or unknown X-Amz-Target; expected AmazonSSM.<Operation>.".into(),
        )),
    }
}

fn respond(
    status: u16,
    request_id: &str,
    error: Option<&str>,
    body: Value,
) -> http::Response<Bytes> {
    let mut b = http::Response::builder()
        .status(status)
        .header("content-type", JSON_11)
        .header("x-amzn-requestid", request_id);
    if let Some(code) = error {
        b = b.header("x-amzn-errortype", code);
    }
    b.body(Bytes::from(body.to_string()))
        .unwrap_or_else(|_| http::Response::new(Bytes::new()))
}

fn uuid_like() -> String {
    steward_core::ids::new_command_id()
}
