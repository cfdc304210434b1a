//! A tiny instance metadata service on a local port, answering as EC2's
//! does for the identity document: IMDSv2 (a token, then the document and
//! its signature with the token), or one of the ways a host gets it wrong.
//! It runs on a thread of its own, so sync and async tests can both use it;
//! dropping it stops it.
//!
//! Shared by the unit tests (`src/lib.rs` includes this file) and the
//! integration tests; each uses only part of it.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

pub const TOKEN: &str = "AQAEAFakeImdsSessionToken==";
/// Base64 with line breaks, as IMDS serves it: sent as it is.
pub const SIGNATURE: &str = "ZmFrZS1yc2Etc2lnbmF0dXJlLW92ZXItdGhlLWRvY3VtZW50LWJ5dGVzLXdyYXBw\nZWQtYXMtaW1kcy13cmFwcy1pdA==";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Tokens required (as `--http-tokens required`).
    V2,
    /// The token PUT answers this status; the document is served without a token.
    V1Only(u16),
    /// Everything answers 403.
    Disabled,
    /// The token PUT never answers (a hop limit too low); the document is
    /// served without a token.
    TokenHangs,
    /// As V2, but the document answers this status.
    DocumentFails(u16),
}

/// One request the fake saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub ttl: Option<String>,
    pub token: Option<String>,
}

pub struct FakeImds {
    pub url: String,
    pub document: String,
    pub signature: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// An identity document as EC2 writes it (pretty JSON, spaces before colons).
pub fn document(instance_id: &str) -> String {
    format!(
        "{{\n  \"accountId\" : \"000000000000\",\n  \"architecture\" : \"x86_64\",\n  \"availabilityZone\" : \"us-east-1a\",\n  \"billingProducts\" : null,\n  \"devpayProductCodes\" : null,\n  \"marketplaceProductCodes\" : null,\n  \"imageId\" : \"ami-0123456789abcdef0\",\n  \"instanceId\" : \"{instance_id}\",\n  \"instanceType\" : \"t3.micro\",\n  \"kernelId\" : null,\n  \"pendingTime\" : \"2026-12-01T10:00:00Z\",\n  \"privateIp\" : \"10.0.0.12\",\n  \"ramdiskId\" : null,\n  \"region\" : \"us-east-1\",\n  \"version\" : \"2017-09-30\"\n}}"
    )
}

/// A local port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = StdListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl FakeImds {
    pub fn start(mode: Mode, instance_id: &str) -> FakeImds {
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let document = document(instance_id);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let doc = Bytes::from(document.clone());
        let kept = Arc::clone(&seen);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let stream = tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => match accepted {
                            Ok((s, _)) => s,
                            Err(_) => return,
                        },
                    };
                    let doc = doc.clone();
                    let kept = Arc::clone(&kept);
                    tokio::spawn(async move {
                        let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                            let doc = doc.clone();
                            let kept = Arc::clone(&kept);
                            async move { Ok::<_, Infallible>(answer(mode, &doc, &kept, &req).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        FakeImds {
            url,
            document,
            signature: SIGNATURE.to_string(),
            seen,
            _stop: stop,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(
    mode: Mode,
    doc: &Bytes,
    seen: &Mutex<Vec<Seen>>,
    req: &Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let token = header("x-aws-ec2-metadata-token");
    let ttl = header("x-aws-ec2-metadata-token-ttl-seconds");
    seen.lock().unwrap().push(Seen {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        ttl: ttl.clone(),
        token: token.clone(),
    });
    let reply = |status: u16, body: Bytes| {
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        r
    };
    let is_put = req.method() == hyper::Method::PUT;
    let path = req.uri().path();
    if mode == Mode::Disabled {
        return reply(403, Bytes::new());
    }
    if path == "/latest/api/token" {
        if !is_put {
            return reply(405, Bytes::new());
        }
        return match mode {
            Mode::V1Only(status) => reply(status, Bytes::new()),
            Mode::TokenHangs => std::future::pending().await,
            _ if ttl.is_none() => reply(400, Bytes::new()),
            _ => reply(200, Bytes::from_static(TOKEN.as_bytes())),
        };
    }
    let tokens_required = !matches!(mode, Mode::V1Only(_) | Mode::TokenHangs);
    if tokens_required && token.as_deref() != Some(TOKEN) {
        return reply(401, Bytes::new());
    }
    match path {
        "/latest/dynamic/instance-identity/document" => match mode {
            Mode::DocumentFails(status) => reply(status, Bytes::new()),
            _ => reply(200, doc.clone()),
        },
        "/latest/dynamic/instance-identity/signature" => {
            reply(200, Bytes::from_static(SIGNATURE.as_bytes()))
        }
        _ => reply(404, Bytes::new()),
    }
}
