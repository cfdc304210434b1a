//! Steward's domain. It knows no AWS service: the adapters in `steward-aws`
//! implement the [`ports`] over DynamoDB, SQS, KMS, EventBridge and S3.

pub mod api_model;
pub mod channel;
pub mod clock;
pub mod command;
pub mod documents;
pub mod error;
pub mod fleet;
pub mod identity;
pub mod ids;
pub mod output;
pub mod parameters;
pub mod run_command;
pub mod targets;

pub use error::SsmError;
