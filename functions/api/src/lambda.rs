//! The api function's Lambda edge, in one place: the request lambda_http
//! hands over becomes the `http::Request<Bytes>` that [`crate::handle`]
//! takes, and its answer goes back as lambda_http's response. The Lambda
//! binary calls [`call`] under `lambda_http::run`; steward-local calls
//! [`invoke`] with the Function URL event's JSON, so locally a request meets
//! the same deserialization and conversions as deployed.

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Body, Context, LambdaEvent, Request, Response, Service, service_fn};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum InvokeError {
    #[error("the event is not one lambda_http accepts: {0}")]
    Event(#[source] serde_json::Error),
    #[error("the function's response does not serialize: {0}")]
    Response(#[source] serde_json::Error),
}

/// The request as the handler takes it: lambda_http's text or binary body
/// becomes plain bytes; method, URI, headers and extensions are kept.
pub fn into_http(req: Request) -> http::Request<Bytes> {
    let (parts, body) = req.into_parts();
    let bytes = match body {
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        // Body is non-exhaustive; anything else carries no bytes.
        _ => Bytes::new(),
    };
    http::Request::from_parts(parts, bytes)
}

/// The handler's response for lambda_http. Handed over as binary: lambda_http
/// still decides from the content type whether the event carries it as text
/// or base64.
pub fn into_lambda(resp: http::Response<Bytes>) -> Response<Body> {
    let (parts, body) = resp.into_parts();
    Response::from_parts(parts, Body::Binary(body.to_vec()))
}

/// One request through the conversions around `handler`.
pub async fn call<F, Fut>(req: Request, handler: F) -> Response<Body>
where
    F: FnOnce(http::Request<Bytes>) -> Fut,
    Fut: Future<Output = http::Response<Bytes>>,
{
    into_lambda(handler(into_http(req)).await)
}

/// One invocation as `lambda_http::run` serves it: the event's JSON is
/// deserialized as the runtime does, lambda_http turns it into its request
/// and the answer into its response shape, serialized as the runtime sends it
/// back. Only an event lambda_http would refuse is an error.
pub async fn invoke<F, Fut>(event: &[u8], handler: F) -> Result<Vec<u8>, InvokeError>
where
    F: Fn(http::Request<Bytes>) -> Fut + Sync,
    Fut: Future<Output = http::Response<Bytes>> + Send,
{
    let payload: LambdaRequest = serde_json::from_slice(event).map_err(InvokeError::Event)?;
    let handler = &handler;
    let mut adapter = Adapter::from(service_fn(move |req: Request| async move {
        Ok::<_, Infallible>(call(req, handler).await)
    }));
    // A service_fn is always ready, so no poll_ready first.
    let response = match adapter
        .call(LambdaEvent::new(payload, Context::default()))
        .await
    {
        Ok(response) => response,
        Err(never) => match never {},
    };
    serde_json::to_vec(&response).map_err(InvokeError::Response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A Function URL event as AWS documents it (payload format 2.0).
    const EVENT: &str = r#"{
      "version": "2.0",
      "routeKey": "$default",
      "rawPath": "/my/path",
      "rawQueryString": "parameter1=value1&parameter1=value2&parameter2=value",
      "cookies": ["cookie1", "cookie2"],
      "headers": {"header1": "value1", "header2": "value1,value2", "content-type": "application/x-amz-json-1.1"},
      "queryStringParameters": {"parameter1": "value1,value2", "parameter2": "value"},
      "requestContext": {
        "accountId": "123456789012",
        "apiId": "abcdefgh",
        "authentication": null,
        "domainName": "abcdefgh.lambda-url.us-west-2.on.aws",
        "domainPrefix": "abcdefgh",
        "http": {"method": "POST", "path": "/my/path", "protocol": "HTTP/1.1", "sourceIp": "123.123.123.123", "userAgent": "agent"},
        "requestId": "id",
        "routeKey": "$default",
        "stage": "$default",
        "time": "12/Mar/2020:19:03:58 +0000",
        "timeEpoch": 1583348638390
      },
      "body": "eyJOYW1lIjoieCJ9",
      "pathParameters": null,
      "isBase64Encoded": true,
      "stageVariables": null
    }"#;

    #[tokio::test]
    async fn a_function_url_event_reaches_the_handler_as_http() {
        let seen = Mutex::new(None);
        let out = invoke(EVENT.as_bytes(), |r| {
            *seen.lock().unwrap() = Some(r);
            async {
                http::Response::builder()
                    .status(400)
                    .header("content-type", "application/x-amz-json-1.1")
                    .header("x-amzn-errortype", "ValidationException")
                    .body(Bytes::from_static(b"{\"__type\":\"ValidationException\"}"))
                    .unwrap()
            }
        })
        .await
        .unwrap();
        let req = seen.into_inner().unwrap().unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(
            req.uri().to_string(),
            "https://abcdefgh.lambda-url.us-west-2.on.aws/my/path?parameter1=value1&parameter1=value2&parameter2=value"
        );
        assert_eq!(req.headers()["header2"], "value1,value2");
        assert_eq!(req.headers()["cookie"], "cookie1; cookie2");
        assert_eq!(req.body().as_ref(), b"{\"Name\":\"x\"}");

        let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out["statusCode"], 400);
        assert_eq!(out["headers"]["x-amzn-errortype"], "ValidationException");
        assert_eq!(out["isBase64Encoded"], true);
        assert_eq!(out["body"], "eyJfX3R5cGUiOiJWYWxpZGF0aW9uRXhjZXB0aW9uIn0=");
    }

    #[tokio::test]
    async fn an_event_lambda_http_refuses_is_an_error() {
        let out = invoke(b"{\"Records\":[]}", |_| async {
            http::Response::new(Bytes::new())
        })
        .await;
        assert!(matches!(out, Err(InvokeError::Event(_))));
    }
}
