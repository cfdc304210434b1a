//! Lambda entry point: the automation queue (steps) and the automation start
//! queue (runbook starts from EventBridge rules).

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().without_time().init();
    let stack = steward_aws::Stack::from_env().await?;
    let stack = &stack;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(steward_fn_automation::handle(stack, event.payload).await)
    }))
    .await
}
