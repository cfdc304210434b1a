//! The fleet's SSM operations, one file per operation or small group, each a
//! function over [`FleetContext`](super::FleetContext); this module is the
//! list of them.

mod activations;
mod credentials;
mod deregistration;
mod ec2_registration;
mod heartbeats;
mod instance_information;
mod registration;
mod tagging;

pub use activations::{create_activation, delete_activation, describe_activations};
pub use credentials::{
    MAX_CLOCK_SKEW_SECONDS, NODE_CREDENTIALS_SECONDS, node_credentials, node_session_policy,
};
pub use deregistration::deregister_managed_instance;
pub use ec2_registration::{RegisterEc2Request, ec2_registration_message, register_ec2_instance};
pub use heartbeats::{heartbeat, ping_status};
pub use instance_information::{NodeFilter, describe_instance_information};
pub use registration::{NodeReport, RegisterRequest, RegisterResponse, register};
pub use tagging::{add_tags_to_resource, list_tags_for_resource, remove_tags_from_resource};

/// How many extra store pages a filtered listing reads before it answers
/// with a NextToken: bounds the work of one request.
const MAX_ROUNDS: usize = 5;

#[cfg(test)]
mod tests;
