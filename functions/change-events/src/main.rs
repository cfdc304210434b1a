//! Lambda entry point: DynamoDB stream records in, partial batch failures out.

use aws_lambda_events::dynamodb::Event;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().without_time().init();
    let stack = steward_aws::Stack::from_env().await?;
    let stack = &stack;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, Error>(steward_fn_change_events::handle(stack, event.payload).await)
    }))
    .await
}
