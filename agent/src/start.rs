//! From settings to a running agent: the node's identity (registering first
//! when there is none), the API and queue clients, then [`Agent::run`].
//! Each failure says which exit status it is, for the binary to map.

use std::sync::Arc;

use steward_core::channel::{DownlinkVerifier, NodeKey};
use thiserror::Error;

use crate::api::{Api, HttpClient};
use crate::backoff::Backoff;
use crate::config::Settings;
use crate::credentials::NodeCredentialsProvider;
use crate::daemon::{Agent, AgentParts, PROGRESS_GRACE};
use crate::identity::Identity;
use crate::patching::PatchEnv;
use crate::platform::Platform;
use crate::queue::{SqsIngestQueue, SqsNodeQueue, sqs_client};
use crate::register::{self, Activation, RegisterError};
use crate::secure_parameters::ApiParameterSource;
use crate::shutdown::Shutdown;

/// Registration attempts of `steward-agent register` (`run` retries until
/// it is stopped).
const REGISTER_ATTEMPTS: u32 = 3;

#[derive(Debug, Error)]
pub enum StartError {
    /// The command line or configuration lacks something.
    #[error("{0}")]
    Usage(String),
    /// The control plane refused the activation.
    #[error("{0}")]
    Refused(String),
    /// The node is not registered (or already is, for `register`).
    #[error("{0}")]
    Registration(String),
    /// Anything else: I/O, the network, the state directory.
    #[error("{0}")]
    Failed(String),
}

/// The node's identity, key and command verifier, if it is registered.
pub fn load_identity(
    settings: &Settings,
) -> Result<Option<(Identity, NodeKey, DownlinkVerifier)>, StartError> {
    Identity::load(&settings.state_dir).map_err(|e| StartError::Failed(e.to_string()))
}

/// The activation the settings give, if both its code and id are there.
pub fn activation(settings: &Settings) -> Option<Activation> {
    Some(Activation {
        code: settings.activation_code.clone()?,
        id: settings.activation_id.clone()?,
        name: settings.name.clone(),
    })
}

fn api(settings: &Settings, remembered: Option<&str>) -> Result<Api, StartError> {
    let url = settings
        .api_url
        .as_deref()
        .or(remembered.filter(|u| !u.is_empty()))
        .ok_or_else(|| {
            StartError::Usage("no API endpoint: pass --api-url (or STEWARD_API_URL)".into())
        })?;
    Ok(Api::new(HttpClient::new(), url))
}

fn register_failure(e: RegisterError) -> StartError {
    if e.is_refusal() {
        StartError::Refused(format!(
            "registration refused: {e}; check the activation code and id, or create a new activation"
        ))
    } else {
        StartError::Failed(format!("registration failed: {e}"))
    }
}

/// Registers, retrying a transient failure a few times.
pub async fn register_once(
    settings: &Settings,
    activation: &Activation,
) -> Result<Identity, StartError> {
    let api = api(settings, None)?;
    let platform = Platform::detect();
    let mut backoff = Backoff::new();
    for attempt in 1..=REGISTER_ATTEMPTS {
        match register::register(&api, &settings.state_dir, activation, &platform).await {
            Ok(identity) => {
                tracing::info!(instance_id = identity.instance_id, "registered");
                return Ok(identity);
            }
            Err(e) if e.is_transient() && attempt < REGISTER_ATTEMPTS => {
                tracing::warn!(attempt, error = %e, "registration failed; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => return Err(register_failure(e)),
        }
    }
    Err(StartError::Failed("registration failed".into()))
}

/// Registers, retrying transient failures until it works or `shutdown`
/// (then false).
async fn register_until_done(
    settings: &Settings,
    activation: &Activation,
    shutdown: &mut Shutdown,
) -> Result<bool, StartError> {
    let api = api(settings, None)?;
    let platform = Platform::detect();
    let mut backoff = Backoff::new();
    loop {
        match register::register(&api, &settings.state_dir, activation, &platform).await {
            Ok(identity) => {
                tracing::info!(instance_id = identity.instance_id, "registered");
                return Ok(true);
            }
            Err(e) if e.is_transient() => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = delay.as_secs(), "registration failed; retrying");
                if !shutdown.sleep(delay).await {
                    return Ok(false);
                }
            }
            Err(e) => return Err(register_failure(e)),
        }
    }
}

/// `steward-agent run`: registers if needed, builds the agent over SQS and
/// runs it until `shutdown`.
pub async fn run(settings: Settings, mut shutdown: Shutdown) -> Result<(), StartError> {
    if load_identity(&settings)?.is_none() {
        let activation = activation(&settings).ok_or_else(|| {
            StartError::Registration(format!(
                "this node is not registered (no identity in {}); run `steward-agent register` or pass --activation-code and --activation-id",
                settings.state_dir.display()
            ))
        })?;
        if !register_until_done(&settings, &activation, &mut shutdown).await? {
            return Ok(());
        }
    }
    let (identity, key, verifier) = load_identity(&settings)?.ok_or_else(|| {
        StartError::Failed("the identity just written cannot be read back".into())
    })?;
    let api = api(&settings, Some(&identity.api_url))?;
    let key = Arc::new(key);
    let provider =
        NodeCredentialsProvider::new(api.clone(), identity.instance_id.clone(), Arc::clone(&key));
    let client = sqs_client(&identity.region, settings.sqs_endpoint.as_deref(), provider);

    let agent = Agent::new(AgentParts {
        node_id: identity.instance_id.clone(),
        key: Arc::clone(&key),
        verifier,
        state_dir: settings.state_dir.clone(),
        node_queue: SqsNodeQueue {
            client: client.clone(),
            url: identity.queue_url.clone(),
        },
        ingest: SqsIngestQueue {
            client,
            url: identity.ingest_queue_url.clone(),
        },
        // Fresh upload URLs when S3 refuses the ones a command came with
        // (the signer's credentials expired during a long command).
        http: HttpClient::new().with_output_urls(Arc::new(crate::api::ApiOutputUrls::new(
            api.clone(),
            identity.instance_id.clone(),
            Arc::clone(&key),
        ))),
        platform: Platform::detect(),
        parameters: Some(Arc::new(ApiParameterSource::new(
            api.clone(),
            identity.instance_id.clone(),
            Arc::clone(&key),
        ))),
        patch: PatchEnv::for_root(&settings.patch_root),
        progress_grace: PROGRESS_GRACE,
    })
    .map_err(|e| {
        StartError::Failed(format!(
            "cannot open the journal or spool in {}: {e}",
            settings.state_dir.display()
        ))
    })?;
    let every = std::time::Duration::from_secs(settings.heartbeat_seconds);
    agent
        .run(every, shutdown)
        .await
        .map_err(|e| StartError::Failed(format!("cannot record interrupted commands: {e}")))
}
