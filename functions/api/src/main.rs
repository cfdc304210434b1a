//! Lambda entry point: a Function URL event in, the shared handler, a response out.

use lambda_http::{Error, Request, service_fn};
use steward_fn_api::lambda;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().without_time().init();
    let stack = steward_aws::Stack::from_env().await?;
    let stack = &stack;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(lambda::call(req, |r| steward_fn_api::handle(stack, r)).await)
    }))
    .await
}
