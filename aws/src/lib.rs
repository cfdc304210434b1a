//! Adapters: the ports of `steward-core` over AWS services. Each module is one
//! aggregate's store or one service's port. Each area's adapters are bundled
//! ([`FleetAdapters`], [`IdentityAdapters`], [`RunCommandAdapters`],
//! [`ParameterAdapters`], [`DocumentAdapters`], [`AutomationAdapters`]) and
//! built once per process by the [`Stack`].

pub mod access_keys;
pub mod activations;
pub mod config;
pub mod credentials;
pub mod fleet_service;
pub mod identity;
pub mod identity_service;
pub mod instance_tags;
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
pub mod change_events;
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

// Automation.
pub mod automation;

// Compliance.
pub mod compliance;

// Inventory.
pub mod inventory;

// Patch Manager.
pub mod patch_baselines;
pub mod patch_states;

// State Manager and maintenance windows.
pub mod associations;
pub mod maintenance_windows;

// Session Manager.
pub mod sessions;

pub use config::{Clients, Settings};

use std::sync::{Arc, OnceLock};

use automation::AutomationAdapters;
use commands::RunCommandAdapters;
use documents::DocumentAdapters;
use fleet_service::FleetAdapters;
use identity_service::IdentityAdapters;
use parameter_service::ParameterAdapters;

/// What every handler needs: where the resources are, the clients to reach
/// them, and each area's adapters. Built once per process (per Lambda cold
/// start); its clones share the adapters, so the process has one data-key
/// cache, one access-key cache and one copy of what never changes (the
/// ingest queue's ARN, the signing public key).
#[derive(Clone, Debug)]
pub struct Stack {
    pub settings: Settings,
    pub clients: Clients,
    adapters: Arc<Adapters>,
}

#[derive(Debug, Default)]
struct Adapters {
    parameters: OnceLock<ParameterAdapters>,
    fleet: OnceLock<FleetAdapters>,
    run_command: OnceLock<RunCommandAdapters>,
    documents: OnceLock<DocumentAdapters>,
    identity: OnceLock<IdentityAdapters>,
    automation: OnceLock<AutomationAdapters>,
    compliance: OnceLock<compliance::ComplianceAdapters>,
    inventory: OnceLock<inventory::InventoryAdapters>,
    patching: OnceLock<patch_baselines::PatchingAdapters>,
    associations: OnceLock<associations::AssociationAdapters>,
    maintenance_windows: OnceLock<maintenance_windows::WindowAdapters>,
    sessions: OnceLock<sessions::SessionAdapters>,
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
            adapters: Default::default(),
        }
    }

    /// Parameter Store's adapters (with the data-key cache).
    pub fn parameters(&self) -> &ParameterAdapters {
        self.adapters
            .parameters
            .get_or_init(|| ParameterAdapters::new(self))
    }

    /// The fleet's adapters: nodes, activations, their queues, credentials.
    pub fn fleet(&self) -> &FleetAdapters {
        self.adapters.fleet.get_or_init(|| FleetAdapters::new(self))
    }

    /// Run Command's adapters, for the api, dispatch and ingest.
    pub fn run_command(&self) -> &RunCommandAdapters {
        self.adapters
            .run_command
            .get_or_init(|| RunCommandAdapters::new(self))
    }

    /// The documents' adapters.
    pub fn documents(&self) -> &DocumentAdapters {
        self.adapters
            .documents
            .get_or_init(|| DocumentAdapters::new(self))
    }

    /// Automation's adapters: executions, the engine's queue.
    pub fn automation(&self) -> &AutomationAdapters {
        self.adapters
            .automation
            .get_or_init(|| AutomationAdapters::new(self))
    }

    /// Patch Manager's baselines, patch groups and defaults.
    pub fn patching(&self) -> &patch_baselines::PatchingAdapters {
        self.adapters
            .patching
            .get_or_init(|| patch_baselines::PatchingAdapters::new(self))
    }

    /// Inventory's adapters: each node's data per type, the nodes.
    pub fn inventory(&self) -> &inventory::InventoryAdapters {
        self.adapters
            .inventory
            .get_or_init(|| inventory::InventoryAdapters::new(self))
    }

    /// Compliance's adapters: the records, the nodes they are of, the bus.
    pub fn compliance(&self) -> &compliance::ComplianceAdapters {
        self.adapters
            .compliance
            .get_or_init(|| compliance::ComplianceAdapters::new(self))
    }

    /// State Manager's associations, executions and per-node results.
    pub fn associations(&self) -> &associations::AssociationAdapters {
        self.adapters
            .associations
            .get_or_init(|| associations::AssociationAdapters::new(self))
    }

    /// Maintenance windows, their targets, tasks and executions.
    pub fn maintenance_windows(&self) -> &maintenance_windows::WindowAdapters {
        self.adapters
            .maintenance_windows
            .get_or_init(|| maintenance_windows::WindowAdapters::new(self))
    }

    /// Session Manager's sessions, their queues and keys.
    pub fn sessions(&self) -> &sessions::SessionAdapters {
        self.adapters
            .sessions
            .get_or_init(|| sessions::SessionAdapters::new(self))
    }

    /// Nodes' patch states, written by ingest, read by the API.
    pub fn patch_states(&self) -> patch_states::PatchStateTable {
        patch_states::PatchStateTable::new(self)
    }

    /// IAM's adapters and the access keys requests are verified with.
    pub fn identity(&self) -> &IdentityAdapters {
        self.adapters
            .identity
            .get_or_init(|| IdentityAdapters::new(self))
    }
}

/// Logs an AWS service failure (never request or item content) and answers
/// SSM's generic internal error: the caller learns nothing it could misuse.
pub(crate) fn internal<E: std::error::Error + 'static>(e: E) -> steward_core::SsmError {
    failed("AWS call failed", e)
}

/// [`internal`], with `what` failed as the log's message.
pub(crate) fn failed<E: std::error::Error + 'static>(what: &str, e: E) -> steward_core::SsmError {
    log_failure(what, &e);
    steward_core::SsmError::internal()
}

/// Logs an AWS call's failure with its whole chain of causes, which the
/// SDK's own Display leaves out.
pub(crate) fn log_failure<E: std::error::Error + 'static>(what: &str, e: &E) {
    tracing::error!(
        error = %aws_smithy_types::error::display::DisplayErrorContext(e),
        "{what}"
    );
}
