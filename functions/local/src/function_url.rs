//! What a Lambda Function URL does around the api function: the HTTP request
//! becomes the Function URL event (payload version 2.0) as JSON, the function
//! is invoked with it through `steward_fn_api::lambda::invoke` (lambda_http's
//! own deserialization and conversions), and the JSON response it returns
//! becomes the HTTP response.

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use lambda_http::Body;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use serde_json::{Value, json};
use thiserror::Error;

/// Content types a Function URL passes as text; any other body is base64.
const TEXT_PREFIXES: [&str; 5] = [
    "text/",
    "application/json",
    "application/javascript",
    "application/xml",
    "application/yaml",
];
const TEXT_SUFFIXES: [&str; 3] = ["+json", "+xml", "+yaml"];

#[derive(Debug, Error)]
pub enum FunctionUrlError {
    #[error(transparent)]
    Invoke(#[from] steward_fn_api::lambda::InvokeError),
    #[error("the function's response is not a Function URL response: {0}")]
    Response(#[source] serde_json::Error),
    #[error("the function's response has status {0}, not an HTTP status")]
    Status(i64),
    #[error("the function's response has a header that is not HTTP: {0}")]
    Header(String),
    #[error("the function's base64 body does not decode: {0}")]
    Body(#[source] base64::DecodeError),
}

/// Serves one request the way a Function URL would: event in, `handler`
/// behind lambda_http's conversions, response out. A failed invocation
/// answers 502, as a Function URL does when the function fails.
pub async fn serve<F, Fut>(req: http::Request<Bytes>, handler: F) -> http::Response<Bytes>
where
    F: Fn(http::Request<Bytes>) -> Fut + Sync,
    Fut: Future<Output = http::Response<Bytes>> + Send,
{
    match invoke(req, handler).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "the api function's invocation failed");
            let mut response = http::Response::new(Bytes::from_static(b"Internal Server Error"));
            *response.status_mut() = http::StatusCode::BAD_GATEWAY;
            response
        }
    }
}

/// [`serve`], with the failure kept.
pub async fn invoke<F, Fut>(
    req: http::Request<Bytes>,
    handler: F,
) -> Result<http::Response<Bytes>, FunctionUrlError>
where
    F: Fn(http::Request<Bytes>) -> Fut + Sync,
    Fut: Future<Output = http::Response<Bytes>> + Send,
{
    let event = event(
        &req,
        &steward_core::ids::new_command_id(),
        SystemTime::now(),
    );
    let out = steward_fn_api::lambda::invoke(event.to_string().as_bytes(), handler).await?;
    response(&out)
}

/// The Function URL event (payload format 2.0) for `req`.
pub fn event(req: &http::Request<Bytes>, request_id: &str, now: SystemTime) -> Value {
    let mut headers = serde_json::Map::new();
    let mut cookies = Vec::new();
    for name in req.headers().keys() {
        let values = req.headers().get_all(name).iter();
        // Cookies travel apart, one entry per cookie, as Function URLs send them.
        if name == http::header::COOKIE {
            for v in values {
                let v = String::from_utf8_lossy(v.as_bytes());
                cookies.extend(v.split(';').map(|c| c.trim().to_string()));
            }
            continue;
        }
        // Repeated headers arrive joined with commas, as SigV4 also reads them.
        let joined: Vec<String> = values
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        headers.insert(name.as_str().to_string(), joined.join(",").into());
    }
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let prefix = host.split(['.', ':']).next().unwrap_or(host);
    let user_agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let epoch_ms = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let path = req.uri().path();
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": req.uri().query().unwrap_or_default(),
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": prefix,
            "domainName": host,
            "domainPrefix": prefix,
            "http": {
                "method": req.method().as_str(),
                "path": path,
                "protocol": format!("{:?}", req.version()),
                // The server listens on loopback only.
                "sourceIp": "127.0.0.1",
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": request_time(now),
            "timeEpoch": epoch_ms,
        },
        "isBase64Encoded": false,
    });
    // queryStringParameters is left out: lambda_http reads rawQueryString.
    if !cookies.is_empty() {
        event["cookies"] = cookies.into();
    }
    let body = req.body();
    if !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) if is_text(req.headers()) => event["body"] = text.into(),
            _ => {
                event["body"] = BASE64.encode(body).into();
                event["isBase64Encoded"] = true.into();
            }
        }
    }
    event
}

/// The HTTP response a Function URL makes of the function's JSON response.
pub fn response(json: &[u8]) -> Result<http::Response<Bytes>, FunctionUrlError> {
    let out: ApiGatewayV2httpResponse =
        serde_json::from_slice(json).map_err(FunctionUrlError::Response)?;
    let status = u16::try_from(out.status_code)
        .ok()
        .and_then(|s| http::StatusCode::from_u16(s).ok())
        .ok_or(FunctionUrlError::Status(out.status_code))?;
    let body = match out.body {
        Some(Body::Text(text)) if out.is_base64_encoded => {
            Bytes::from(BASE64.decode(text).map_err(FunctionUrlError::Body)?)
        }
        Some(Body::Text(text)) => Bytes::from(text),
        Some(Body::Binary(bytes)) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in out.headers.iter().chain(out.multi_value_headers.iter()) {
        headers.append(name, value.clone());
    }
    for cookie in out.cookies {
        let value = http::HeaderValue::from_str(&cookie)
            .map_err(|_| FunctionUrlError::Header(format!("set-cookie: {cookie}")))?;
        headers.append(http::header::SET_COOKIE, value);
    }
    // A Function URL's default when the function names no content type.
    if !headers.contains_key(http::header::CONTENT_TYPE) {
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    }
    Ok(response)
}

fn is_text(headers: &http::HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    TEXT_PREFIXES.iter().any(|p| mime.starts_with(p))
        || TEXT_SUFFIXES.iter().any(|s| mime.ends_with(s))
}

/// `requestContext.time`'s format, e.g. `01/Dec/2026:05:02:05 +0000`.
fn request_time(now: SystemTime) -> String {
    let format = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    time::OffsetDateTime::from(now)
        .format(format)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    const QUERY: &str = "b=2&a=%2F%20x&a=1&empty=&flag";

    fn request(content_type: &[u8], body: &[u8]) -> http::Request<Bytes> {
        let mut req = http::Request::builder()
            .method("POST")
            .uri(format!("/some/path?{QUERY}"))
            .header("host", "127.0.0.1:7070")
            .header("x-amz-target", "AmazonSSM.PutParameter")
            .header("x-amz-date", "20240101T000000Z")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ssm/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
            )
            .header("x-odd", "a  b\tc;d=\"e,f\"")
            .header("x-repeated", "one")
            .header("x-repeated", "two")
            .header("cookie", "a=1; b=2")
            .header("content-length", body.len())
            .body(Bytes::copy_from_slice(body))
            .unwrap();
        let headers = req.headers_mut();
        headers.insert(
            "content-type",
            http::HeaderValue::from_bytes(content_type).unwrap(),
        );
        headers.insert(
            "x-utf8",
            http::HeaderValue::from_bytes("grüße ✓".as_bytes()).unwrap(),
        );
        req
    }

    /// What the handler sees of `req` after the Function URL event and
    /// lambda_http's conversion, and whether the event carried it as base64.
    async fn through(req: http::Request<Bytes>) -> (http::Request<Bytes>, bool) {
        let encoded = event(&req, "rid", SystemTime::now())["isBase64Encoded"] == true;
        let seen = Mutex::new(None);
        let response = invoke(req, |r| {
            *seen.lock().unwrap() = Some(r);
            async { http::Response::new(Bytes::new()) }
        })
        .await
        .unwrap();
        assert_eq!(response.status(), 200);
        (seen.into_inner().unwrap().unwrap(), encoded)
    }

    async fn arrives_intact(content_type: &[u8], body: &[u8], base64: bool) {
        let sent = request(content_type, body);
        let (seen, encoded) = through(request(content_type, body)).await;
        assert_eq!(encoded, base64, "isBase64Encoded for {content_type:?}");
        assert_eq!(seen.method(), http::Method::POST);
        assert_eq!(seen.uri().path(), "/some/path");
        assert_eq!(seen.uri().query(), Some(QUERY));
        assert_eq!(seen.body().as_ref(), body);
        for (name, value) in sent.headers() {
            if name == "x-repeated" {
                continue;
            }
            assert_eq!(seen.headers().get(name), Some(value), "header {name}");
        }
        // Repeated headers arrive as one comma-joined value, which SigV4's
        // canonical form reads the same as two.
        assert_eq!(seen.headers()["x-repeated"], "one,two");
        assert_eq!(seen.headers().len(), sent.headers().len() - 1);
    }

    #[tokio::test]
    async fn text_bodies_arrive_as_sent() {
        let body = "{\"Name\":\"/a b\",\"Value\":\"ünïcödé ✓ \\u0000\"}".as_bytes();
        arrives_intact(b"application/json", body, false).await;
        arrives_intact(b"text/plain; charset=utf-8", body, false).await;
    }

    #[tokio::test]
    async fn binary_bodies_arrive_as_sent() {
        let all_bytes: Vec<u8> = (0..=255).collect();
        arrives_intact(b"application/octet-stream", &all_bytes, true).await;
        // Declared as text but not UTF-8: only base64 carries it.
        arrives_intact(b"text/plain", &all_bytes, true).await;
        // SSM's and IAM's own content types travel as base64 too.
        arrives_intact(b"application/x-amz-json-1.1", b"{\"Name\":\"x\"}", true).await;
        arrives_intact(
            b"application/x-www-form-urlencoded; charset=utf-8",
            b"Action=ListUsers&Version=2010-05-08&PathPrefix=%2F",
            true,
        )
        .await;
    }

    #[tokio::test]
    async fn an_empty_body_arrives_empty() {
        let req = http::Request::builder()
            .method("GET")
            .uri("/")
            .header("host", "localhost:7070")
            .body(Bytes::new())
            .unwrap();
        let (seen, _) = through(req).await;
        assert_eq!(seen.method(), http::Method::GET);
        assert!(seen.body().is_empty());
        assert_eq!(seen.uri().query(), None);
    }

    async fn answered(response: http::Response<Bytes>) -> http::Response<Bytes> {
        let expected = response.clone();
        let answer = invoke(request(b"application/json", b"{}"), |_| {
            let r = expected.clone();
            async move { r }
        })
        .await
        .unwrap();
        assert_eq!(answer.status(), response.status());
        assert_eq!(answer.body(), response.body());
        for (name, value) in response.headers() {
            assert_eq!(answer.headers().get(name), Some(value), "header {name}");
        }
        answer
    }

    #[tokio::test]
    async fn error_responses_keep_status_and_error_type() {
        let json = http::Response::builder()
            .status(400)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amzn-requestid", "0d3c1b0e-0000-4000-8000-000000000000")
            .header("x-amzn-errortype", "ParameterNotFound")
            .body(Bytes::from_static(
                b"{\"__type\":\"ParameterNotFound\",\"message\":\"Parameter /x not found.\"}",
            ))
            .unwrap();
        answered(json).await;
        let xml = http::Response::builder()
            .status(404)
            .header("content-type", "text/xml")
            .header("x-amzn-requestid", "r-1")
            .header("x-amzn-errortype", "NoSuchEntity")
            .body(Bytes::from(
                "<ErrorResponse><Error><Code>NoSuchEntity</Code><Message>ünï</Message></Error></ErrorResponse>",
            ))
            .unwrap();
        answered(xml).await;
        let internal = http::Response::builder()
            .status(500)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amzn-errortype", "InternalServerError")
            .body(Bytes::from_static(b"{\"__type\":\"InternalServerError\"}"))
            .unwrap();
        answered(internal).await;
    }

    #[test]
    fn the_event_has_the_function_url_shape() {
        let e = event(
            &request(b"application/json", b"{}"),
            "rid-1",
            UNIX_EPOCH + std::time::Duration::from_secs(1_583_348_638),
        );
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["rawPath"], "/some/path");
        assert_eq!(e["rawQueryString"], QUERY);
        assert_eq!(e["cookies"], json!(["a=1", "b=2"]));
        assert!(e["headers"].get("cookie").is_none());
        assert_eq!(e["headers"]["x-repeated"], "one,two");
        assert_eq!(e["requestContext"]["http"]["method"], "POST");
        assert_eq!(e["requestContext"]["http"]["protocol"], "HTTP/1.1");
        assert_eq!(e["requestContext"]["domainName"], "127.0.0.1:7070");
        assert_eq!(e["requestContext"]["requestId"], "rid-1");
        assert_eq!(e["requestContext"]["time"], "04/Mar/2020:19:03:58 +0000");
        assert_eq!(e["requestContext"]["timeEpoch"], 1_583_348_638_000u64);
        assert_eq!(e["body"], "{}");
        assert_eq!(e["isBase64Encoded"], false);
    }

    #[test]
    fn a_response_that_is_not_http_is_refused() {
        assert!(matches!(
            response(b"{\"statusCode\":99,\"cookies\":[]}"),
            Err(FunctionUrlError::Status(99))
        ));
        assert!(matches!(
            response(
                b"{\"statusCode\":200,\"cookies\":[],\"body\":\"%%%\",\"isBase64Encoded\":true}"
            ),
            Err(FunctionUrlError::Body(_))
        ));
        assert!(matches!(
            response(b"[]"),
            Err(FunctionUrlError::Response(_))
        ));
    }
}
