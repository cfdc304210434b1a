//! Lambda entry point: a Function URL event in, the shared handler, a response out.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().without_time().init();
    let stack = steward_aws::Stack::from_env().await?;
    let stack = &stack;
    lambda_http::run(service_fn(move |req: Request| async move {
        let (parts, body) = req.into_parts();
        let bytes = match body {
            Body::Empty => bytes::Bytes::new(),
            Body::Text(t) => bytes::Bytes::from(t),
            Body::Binary(b) => bytes::Bytes::from(b),
            _ => bytes::Bytes::new(),
        };
        let resp = steward_fn_api::handle(stack, http::Request::from_parts(parts, bytes)).await;
        let (parts, body) = resp.into_parts();
        Ok::<_, Error>(Response::from_parts(parts, Body::Binary(body.to_vec())))
    }))
    .await
}
