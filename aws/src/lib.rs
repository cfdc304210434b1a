//! Adapters: the ports of `steward-core` over AWS services. Each module is one
//! aggregate's store or one service's port.

pub mod access_keys;
pub mod activations;
pub mod config;
pub mod credentials;
pub mod fleet_service;
pub mod identity;
pub mod item;
pub mod key_service;
pub mod metrics;
pub mod node_events;
pub mod node_mailbox;
pub mod nodes;
pub mod queue_provisioner;
pub mod resource_groups;
pub mod tag_index;
#[cfg(feature = "testing")]
pub mod testing;

// Run Command.
pub mod commands;
pub mod events;
pub mod invocations;
pub mod output;
pub mod signer;
pub mod work_queue;

// Parameter Store.
pub mod data_keys;
pub mod parameter_service;
pub mod parameters;
pub mod revisioned;

// Documents.
pub mod documents;

pub use config::{Clients, Settings};

/// What every handler needs: where the resources are and the clients to
/// reach them. Built once per process (per Lambda cold start).
#[derive(Clone, Debug)]
pub struct Stack {
    pub settings: Settings,
    pub clients: Clients,
    // Shared by every clone, so the whole process has one data-key cache.
    parameters: std::sync::Arc<std::sync::OnceLock<parameter_service::ParameterAdapters>>,
    // The fleet's adapters cache what never changes (the ingest queue's ARN,
    // the signing public key), shared the same way.
    fleet: std::sync::Arc<std::sync::OnceLock<fleet_service::FleetAdapters>>,
}

impl Stack {
    pub async fn from_env() -> Result<Self, config::ConfigError> {
        let settings = Settings::from_env()?;
        let clients = Clients::from_env().await;
        Ok(Self::new(settings, clients))
    }

    pub fn new(settings: Settings, clients: Clients) -> Self {
        Self {
            settings,
            clients,
            parameters: Default::default(),
            fleet: Default::default(),
        }
    }

    /// Parameter Store's adapters, built on first use and kept for the process.
    pub fn parameters(&self) -> &parameter_service::ParameterAdapters {
        self.parameters
            .get_or_init(|| parameter_service::ParameterAdapters::new(self))
    }

    /// The fleet's adapters, built on first use and kept for the process.
    pub fn fleet(&self) -> &fleet_service::FleetAdapters {
        self.fleet
            .get_or_init(|| fleet_service::FleetAdapters::new(self))
    }
}

/// Logs an AWS service failure (never request or item content) and answers
/// SSM's generic internal error: the caller learns nothing it could misuse.
pub(crate) fn internal<E: std::error::Error + 'static>(e: E) -> steward_core::SsmError {
    tracing::error!(
        error = %aws_smithy_types::error::display::DisplayErrorContext(&e),
        "AWS call failed"
    );
    steward_core::SsmError::internal()
}
