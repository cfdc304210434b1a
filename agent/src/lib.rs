//! steward-agent: registers a node, long-polls its queue, runs commands,
//! reports back. The binary (`main.rs`) is the command line over these parts:
//! it parses, builds [`config::Settings`], calls [`start`] and maps errors to
//! exit statuses.
//!
//! # Layout
//!
//! - [`start`]: from settings to a running agent (identity, registration,
//!   clients), then [`daemon::Agent::run`].
//! - [`daemon`]: the agent's life and its four roles — intake, execution,
//!   reporting, recovery — and the lock order between them.
//! - [`journal`]: durable memory of messages seen and commands' progress.
//! - [`spool`]: durable reports until the ingest queue has them; writes and
//!   reads.
//! - [`runner`]: one `aws:runShellScript` step in a real shell.
//! - [`inventory`]: the native `aws:softwareInventory` plugin (files read, changed types sent).
//! - [`patching`]: the native `aws:runPatchBaseline` plugin (apt).
//! - [`session`]: Session Manager: a shell in a real terminal, served over
//!   the session's queues.
//! - [`secure_parameters`]: `{{ssm-secure:…}}` values, and the masking of
//!   everything that leaves the node.
//! - [`shutdown`]: the one shutdown signal every loop watches.
//! - [`backoff`]: doubling retry delays with a cap.
//! - [`clock`]: the control plane's time, learned from the API's answers.
//! - [`faults`]: crash points the fault suite arms through the environment.
//! - [`queue`]: the node and ingest queues (SQS, or in memory in tests).
//! - [`api`]: the control plane's HTTP API client and the output uploads.
//! - [`credentials`]: SQS credentials from the node's key.
//! - [`register`]: registration with an activation or by EC2 instance identity.
//! - [`imds`]: the EC2 instance metadata service (IMDSv2): the identity document.
//! - [`identity`]: the node's identity and key in the state directory.
//! - [`config`]: command line, config file and environment.
//! - [`platform`]: what the node reports about itself.
//! - [`fsutil`]: atomic, durable file writes.
//! - `durability_model` (tests only): the journal and spool against a model,
//!   across crashes.
//! - `wait` (tests only): every wait in a test has a limit and, past it,
//!   fails naming what it waited for.

pub mod api;
pub mod backoff;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod daemon;
#[cfg(test)]
mod durability_model;
pub mod faults;
pub mod fsutil;
pub mod identity;
pub mod imds;
pub mod inventory;
pub mod journal;
pub mod patching;
pub mod platform;
pub mod queue;
pub mod register;
pub mod runner;
pub mod secure_parameters;
pub mod session;
pub mod shutdown;
pub mod spool;
pub mod start;
// Shared with the integration tests (tests/cli.rs, tests/sqs.rs).
#[cfg(test)]
#[path = "../tests/support/fake_imds.rs"]
mod fake_imds;
#[cfg(test)]
#[path = "../tests/support/wait.rs"]
mod wait;
