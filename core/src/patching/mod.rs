//! Patch Manager: patch baselines and what they approve, for the systems
//! Steward patches through apt (Debian and Ubuntu).
//!
//! [`baseline`] reads and checks a baseline as SSM's CreatePatchBaseline
//! does; [`predefined`] holds the AWS-owned baselines and which is each
//! system's default; [`approval`] decides, purely, whether a baseline
//! approves, rejects or ignores an update apt offers, and at which
//! compliance level a missing approved update counts.
//!
//! The baseline API: [`ops`] serves the operations (CreatePatchBaseline,
//! patch groups, defaults, …) over a [`context::PatchingContext`] and the
//! [`ports::PatchBaselineStore`] ([`memory`] is its fake); [`resolve`]
//! picks the baseline that patches a node; [`wire`] writes a baseline as
//! SSM's JSON.

pub mod approval;
pub mod baseline;
pub mod context;
pub mod instance_state;
pub mod memory;
pub mod ops;
pub mod ports;
pub mod predefined;
pub mod report;
pub mod resolve;
pub mod step;
pub mod wire;

pub use approval::{Decision, UpdateCandidate, evaluate};
pub use baseline::{
    Approval, ComplianceLevel, CreatePatchBaseline, CreatePatchBaselineRequest, OperatingSystem,
    PatchBaseline, PatchFilter, PatchFilterKey, PatchRule, RejectedPatchesAction,
};
pub use ports::PatchBaselineStore;
pub use resolve::baseline_for_node;
