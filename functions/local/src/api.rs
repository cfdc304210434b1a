//! The api function served over HTTP/1.1, as a Function URL would call it:
//! the request reaches the handler with its method, URI, headers (Host
//! included) and body exactly as received, because SigV4 verification
//! recomputes the signature over them.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Default bound on a request body (SSM's own requests are far smaller).
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// How long open connections get to finish their request at shutdown.
const DRAIN: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` until `shutdown` turns true, then lets
/// open connections finish (up to a bound) and returns.
pub async fn serve<H, Fut>(
    listener: TcpListener,
    handler: H,
    max_body: usize,
    mut shutdown: watch::Receiver<bool>,
) where
    H: Fn(http::Request<Bytes>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = http::Response<Bytes>> + Send + 'static,
{
    let handler = Arc::new(handler);
    let mut connections = JoinSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let accepted = tokio::select! {
            a = listener.accept() => a,
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
                continue;
            }
            // Reap finished connection tasks so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handler = Arc::clone(&handler);
        let mut conn_shutdown = shutdown.clone();
        connections.spawn(async move {
            let service = service_fn(move |req: http::Request<Incoming>| {
                let handler = Arc::clone(&handler);
                async move { Ok::<_, Infallible>(answer(handler, req, max_body).await) }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = conn_shutdown.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections still open after the drain period; closing them");
        connections.abort_all();
    }
    tracing::info!("api server stopped");
}

async fn answer<H, Fut>(
    handler: Arc<H>,
    req: http::Request<Incoming>,
    max_body: usize,
) -> http::Response<Full<Bytes>>
where
    H: Fn(http::Request<Bytes>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = http::Response<Bytes>> + Send + 'static,
{
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return too_large(max_body);
    }
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, max_body).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return too_large(max_body);
        }
        Err(e) => {
            tracing::debug!(error = %e, "could not read the request body");
            return error(
                400,
                "SerializationException",
                "The request body could not be read; resend the request.",
            );
        }
    };
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let request = http::Request::from_parts(parts, bytes);
    match tokio::spawn(async move { handler(request).await }).await {
        Ok(response) => {
            tracing::debug!(%method, %path, %target, status = response.status().as_u16(), "request handled");
            response.map(Full::new)
        }
        Err(e) => {
            tracing::error!(%method, %path, %target, error = %e, "api handler panicked");
            error(
                500,
                "InternalServerError",
                "An internal error occurred; retry the request. If it persists, check the steward-local log.",
            )
        }
    }
}

fn too_large(max_body: usize) -> http::Response<Full<Bytes>> {
    error(
        413,
        "ValidationException",
        &format!("The request body is larger than {max_body} bytes; send a smaller request."),
    )
}

fn error(status: u16, code: &str, message: &str) -> http::Response<Full<Bytes>> {
    let body = serde_json::json!({ "__type": code, "message": message }).to_string();
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = http::HeaderValue::from_str(code) {
        headers.insert("x-amzn-errortype", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Echoes what the handler saw, so a test can check nothing was altered.
    async fn echo(req: http::Request<Bytes>) -> http::Response<Bytes> {
        if req.body().as_ref() == b"panic" {
            panic!("handler panic on purpose");
        }
        let headers: serde_json::Map<String, serde_json::Value> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().into()))
            .collect();
        let body = serde_json::json!({
            "method": req.method().as_str(),
            "uri": req.uri().to_string(),
            "headers": headers,
            "body": String::from_utf8_lossy(req.body()),
        });
        http::Response::new(Bytes::from(body.to_string()))
    }

    async fn start(
        max_body: usize,
    ) -> (
        std::net::SocketAddr,
        watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(serve(listener, echo, max_body, rx));
        (addr, tx, task)
    }

    async fn roundtrip(addr: std::net::SocketAddr, raw: &[u8]) -> (u16, String) {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(raw).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8_lossy(&out).to_string();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        (status, body)
    }

    #[tokio::test]
    async fn request_reaches_the_handler_as_received() {
        let (addr, tx, task) = start(DEFAULT_MAX_BODY).await;
        let raw = b"POST /?a=1 HTTP/1.1\r\nHost: 127.0.0.1:7070\r\nX-Amz-Target: AmazonSSM.ListCommands\r\nX-Amz-Date: 20240101T000000Z\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
        let (status, body) = roundtrip(addr, raw).await;
        assert_eq!(status, 200);
        let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(seen["method"], "POST");
        assert_eq!(seen["uri"], "/?a=1");
        assert_eq!(seen["headers"]["host"], "127.0.0.1:7070");
        assert_eq!(seen["headers"]["x-amz-target"], "AmazonSSM.ListCommands");
        assert_eq!(seen["headers"]["x-amz-date"], "20240101T000000Z");
        assert_eq!(seen["headers"]["content-length"], "2");
        assert_eq!(seen["body"], "{}");
        tx.send(true).unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn oversized_bodies_get_413() {
        let (addr, tx, task) = start(16).await;
        // Declared too large.
        let raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\nConnection: close\r\n\r\n01234567890123456";
        let (status, body) = roundtrip(addr, raw).await;
        assert_eq!(status, 413);
        assert!(body.contains("ValidationException"));
        // Chunked, so only counting the bytes can tell.
        let raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n11\r\n01234567890123456\r\n0\r\n\r\n";
        let (status, _) = roundtrip(addr, raw).await;
        assert_eq!(status, 413);
        tx.send(true).unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_the_server_keeps_serving() {
        let (addr, tx, task) = start(DEFAULT_MAX_BODY).await;
        let raw =
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\npanic";
        let (status, body) = roundtrip(addr, raw).await;
        assert_eq!(status, 500);
        assert!(body.contains("InternalServerError"));
        let raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
        let (status, _) = roundtrip(addr, raw).await;
        assert_eq!(status, 200);
        tx.send(true).unwrap();
        task.await.unwrap();
    }
}
