//! Steward's domain. It knows no AWS service: each area declares the ports
//! it needs as traits and bundles them for its operations
//! ([`fleet::FleetContext`], [`run_command::RunCommandContext`],
//! [`parameters::context::ParameterContext`],
//! [`documents::context::DocumentContext`], [`identity::Identity`]);
//! `steward-aws` implements them over DynamoDB, SQS, KMS, EventBridge and S3,
//! and in-memory fakes serve the unit tests.
//!
//! # Layout
//!
//! Areas (each owns its model, its ports and its operations):
//! - [`fleet`]: managed nodes, activations, registration, heartbeats, node tags and credentials.
//! - [`identity`]: IAM's users, inline policies and access keys, as served on the endpoint.
//! - [`documents`]: SSM documents: parsing, parameters, plugins, built-ins, versions, tags.
//! - [`run_command`]: SendCommand to final status: targets, rate control, dispatch, ingest of reports.
//! - [`parameters`]: Parameter Store: names, versions, labels, secrets, policies, references in commands.
//! - [`automation`]: runbooks (Automation documents, schemaVersion 0.3), checked as SSM checks them, and their executions.
//! - [`compliance`]: per node and compliance type, the items put and SSM's summaries of them; status-change events.
//! - [`inventory`]: each node's inventory per type, gathered by the agent or put; GetInventory's filters and aggregators.
//! - [`patching`]: Patch Manager: patch baselines checked as SSM checks them, the predefined ones, what a baseline approves, and nodes' patch states from their reports.
//! - [`associations`]: State Manager: associations (desired state on the nodes their targets name), their versions, executions, per-node status and Association compliance.
//! - [`maintenance_windows`]: maintenance windows, their targets and tasks, and their executions in priority order within the window.
//! - [`schedule`]: SSM's cron, rate and at() expressions, checked as associations and maintenance windows take them, and their next times in a time zone.
//! - [`sessions`]: Session Manager's channel: frames authenticated per session, the reliable stream over SQS, and forwarded streams' flow control.
//!
//! Shared by the areas:
//! - [`access`]: what an operator's policies allow, checked by every area on what it resolves.
//! - [`api_model`]: SSM's input constraints, checked on every request.
//! - [`arn`]: the ARNs of this stack's resources.
//! - [`channel`]: the signed messages between control plane and agent, and the steps they carry.
//! - [`targets`]: which nodes `InstanceIds`, tags and resource groups name.
//! - [`tags`]: SSM's tag rules, for nodes, parameters and documents alike.
//! - [`paging`]: the `NextToken`s of every listing.
//! - [`secret`]: values no log or debug output may show.
//! - [`events`]: the events every area publishes on the bus, and the port they go through.
//! - [`error`], [`ids`], [`clock`], [`output`]: SSM's errors, identifiers, time and its wire formats, and inline output limits.

pub mod access;
pub mod api_model;
pub mod arn;
pub mod associations;
pub mod automation;
pub mod channel;
pub mod clock;
pub mod compliance;
pub mod documents;
pub mod error;
pub mod events;
pub mod fleet;
pub mod identity;
pub mod ids;
pub mod inventory;
pub mod maintenance_windows;
pub mod output;
pub mod paging;
pub mod parameters;
pub mod patching;
pub mod run_command;
pub mod schedule;
pub mod secret;
pub mod sessions;
pub mod tags;
pub mod targets;

pub use error::SsmError;
