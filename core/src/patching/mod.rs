//! Patch Manager: patch baselines and what they approve, for the systems
//! Steward patches through apt (Debian and Ubuntu).
//!
//! [`baseline`] reads and checks a baseline as SSM's CreatePatchBaseline
//! does; [`predefined`] holds the AWS-owned baselines and which is each
//! system's default; [`approval`] decides, purely, whether a baseline
//! approves, rejects or ignores an update apt offers, and at which
//! compliance level a missing approved update counts.

pub mod approval;
pub mod baseline;
pub mod instance_state;
pub mod predefined;
pub mod report;
pub mod step;

pub use approval::{Decision, UpdateCandidate, evaluate};
pub use baseline::{
    Approval, ComplianceLevel, CreatePatchBaseline, CreatePatchBaselineRequest, OperatingSystem,
    PatchBaseline, PatchFilter, PatchFilterKey, PatchRule, RejectedPatchesAction,
};
