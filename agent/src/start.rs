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
use crate::identity::{Identity, IdentityError};
use crate::imds::{Imds, ImdsError, InstanceIdentity};
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
    /// The control plane refused the registration, or the host refuses
    /// what registering needs (IMDSv2).
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

/// How a node registers.
enum Way {
    Activation(Activation),
    /// By EC2 instance identity, with this key.
    Ec2 {
        instance: InstanceIdentity,
        key: NodeKey,
        pkcs8: Vec<u8>,
    },
}

impl Way {
    async fn attempt(
        &self,
        api: &Api,
        settings: &Settings,
        platform: &Platform,
    ) -> Result<Identity, RegisterError> {
        match self {
            Way::Activation(a) => register::register(api, &settings.state_dir, a, platform).await,
            Way::Ec2 {
                instance,
                key,
                pkcs8,
            } => {
                register::register_ec2(api, &settings.state_dir, instance, key, pkcs8, platform)
                    .await
            }
        }
    }

    fn failure(&self, e: RegisterError) -> StartError {
        match self {
            _ if !e.is_refusal() => StartError::Failed(format!("registration failed: {e}")),
            Way::Activation(_) => StartError::Refused(format!(
                "registration refused: {e}; check the activation code and id, or create a new activation"
            )),
            Way::Ec2 { .. } => StartError::Refused(format!(
                "registration by EC2 instance identity refused: {e}"
            )),
        }
    }
}

/// Whether an instance id is an EC2 instance's (`i-…`) rather than a
/// managed instance's from an activation (`mi-…`).
fn is_ec2_instance(instance_id: &str) -> bool {
    instance_id.starts_with("i-")
}

/// Whether a node without a (whole) activation registers by EC2 identity:
/// with `--ec2`, or when no part of an activation is given (half of one is
/// a mistake to report, not a reason to register otherwise).
fn asks_ec2(settings: &Settings) -> bool {
    settings.ec2 || (settings.activation_code.is_none() && settings.activation_id.is_none())
}

fn imds(settings: &Settings) -> Result<Imds, StartError> {
    Imds::new(&settings.imds_endpoint).map_err(|e| StartError::Usage(e.to_string()))
}

fn imds_failure(e: ImdsError) -> StartError {
    if e.is_refusal() {
        StartError::Refused(format!("cannot register by EC2 instance identity: {e}"))
    } else {
        StartError::Failed(format!("cannot read this instance's identity: {e}"))
    }
}

fn already_registered(settings: &Settings, id: &Identity) -> StartError {
    StartError::Registration(format!(
        "this node is already registered as {} (state in {}); pass --force to register again",
        id.instance_id,
        settings.state_dir.display()
    ))
}

fn identity_failure(e: IdentityError) -> StartError {
    StartError::Failed(e.to_string())
}

/// Whether to ask IMDS again after `e`. When only probing (no `--ec2`), a
/// sign that no IMDS is there ends it at once.
fn retry_imds(e: &ImdsError, probing: bool) -> bool {
    e.is_transient() && !(probing && e.is_absent())
}

/// The instance's identity, asked again a few times while IMDS stumbles.
async fn instance_identity(imds: &Imds, probing: bool) -> Result<InstanceIdentity, ImdsError> {
    let mut backoff = Backoff::new();
    let mut attempt = 1;
    loop {
        match imds.identity().await {
            Err(e) if retry_imds(&e, probing) && attempt < REGISTER_ATTEMPTS => {
                tracing::warn!(attempt, error = %e, "cannot read the instance identity; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// The instance's identity, asked again while IMDS stumbles, until
/// `shutdown` (then `None`).
async fn instance_identity_until_done(
    imds: &Imds,
    probing: bool,
    shutdown: &mut Shutdown,
) -> Result<Option<InstanceIdentity>, ImdsError> {
    let mut backoff = Backoff::new();
    loop {
        match imds.identity().await {
            Ok(i) => return Ok(Some(i)),
            Err(e) if retry_imds(&e, probing) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = delay.as_secs(), "cannot read the instance identity; retrying");
                if !shutdown.sleep(delay).await {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// The EC2 registration of `instance`, given what the node saved (`None`
/// when it is not registered, or `--force` set that aside):
/// - saved as this very instance: again, with its key (the control plane
///   knows the instance by that key; this refreshes what it knows);
/// - saved as another instance (an image made from a registered
///   instance): that node's state is removed and this one registers afresh;
/// - not registered: the key an unfinished attempt left, or a new one;
/// - `--force`: a new key, saved only once the control plane accepts it.
fn ec2_way(
    settings: &Settings,
    saved: Option<&Identity>,
    force: bool,
    instance: InstanceIdentity,
) -> Result<Way, StartError> {
    if settings.name.is_some() {
        tracing::warn!(
            "--name is not sent with a registration by EC2 instance identity: the instance's Name tag names it"
        );
    }
    let this = instance.instance_id();
    let state = &settings.state_dir;
    let (key, pkcs8) = match saved {
        Some(s) if this.as_deref() == Some(s.instance_id.as_str()) => {
            tracing::info!(
                instance_id = s.instance_id,
                "this node is registered as this instance; registering again with its key"
            );
            Identity::load_key(state)
                .map_err(identity_failure)?
                .ok_or_else(|| {
                    StartError::Failed(format!(
                        "the node key in {} is missing; pass --force to register with a new one",
                        state.display()
                    ))
                })?
        }
        Some(s) => {
            let this = this.ok_or_else(|| {
                StartError::Failed(
                    "the instance identity document IMDS served has no instanceId".into(),
                )
            })?;
            tracing::info!(
                saved_instance_id = s.instance_id,
                instance_id = this,
                "the saved identity is another instance's (an image made from a registered instance?): registering afresh as this instance, with a new key"
            );
            Identity::forget(state).map_err(identity_failure)?;
            Identity::pending_key(state).map_err(identity_failure)?
        }
        None if force => NodeKey::generate()
            .map_err(|e| StartError::Failed(format!("cannot make a node key: {e}")))?,
        None => Identity::pending_key(state).map_err(identity_failure)?,
    };
    Ok(Way::Ec2 {
        instance,
        key,
        pkcs8,
    })
}

/// Registers, retrying a transient failure a few times.
async fn register_once(settings: &Settings, way: &Way, api: Api) -> Result<Identity, StartError> {
    let platform = Platform::detect();
    let mut backoff = Backoff::new();
    for attempt in 1..=REGISTER_ATTEMPTS {
        match way.attempt(&api, settings, &platform).await {
            Ok(identity) => {
                tracing::info!(instance_id = identity.instance_id, "registered");
                return Ok(identity);
            }
            Err(e) if e.is_transient() && attempt < REGISTER_ATTEMPTS => {
                tracing::warn!(attempt, error = %e, "registration failed; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => return Err(way.failure(e)),
        }
    }
    Err(StartError::Failed("registration failed".into()))
}

/// Registers, retrying transient failures until it works or `shutdown`
/// (then false).
async fn register_until_done(
    settings: &Settings,
    way: &Way,
    api: Api,
    shutdown: &mut Shutdown,
) -> Result<bool, StartError> {
    let platform = Platform::detect();
    let mut backoff = Backoff::new();
    loop {
        match way.attempt(&api, settings, &platform).await {
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
            Err(e) => return Err(way.failure(e)),
        }
    }
}

/// `steward-agent register`: with an activation; else by EC2 instance
/// identity (`--ec2`, or when IMDS answers). A node registered by an
/// activation registers again only with `--force`; one registered as this
/// EC2 instance registers again with its key.
pub async fn register(settings: &Settings, force: bool) -> Result<Identity, StartError> {
    // `--force` sets the saved state aside unread: it may be damaged.
    let saved = if force {
        None
    } else {
        load_identity(settings)?.map(|(id, _, _)| id)
    };
    if let Some(activation) = activation(settings) {
        if let Some(id) = &saved {
            return Err(already_registered(settings, id));
        }
        return register_once(settings, &Way::Activation(activation), api(settings, None)?).await;
    }
    if let Some(id) = &saved
        && !is_ec2_instance(&id.instance_id)
    {
        return Err(already_registered(settings, id));
    }
    let no_activation = |why: String| {
        StartError::Usage(format!(
            "register needs --activation-code and --activation-id (or STEWARD_ACTIVATION_CODE/STEWARD_ACTIVATION_ID), or --ec2 on an EC2 instance{why}"
        ))
    };
    if !asks_ec2(settings) {
        return Err(no_activation(String::new()));
    }
    let instance = match instance_identity(&imds(settings)?, !settings.ec2).await {
        Ok(i) => i,
        Err(e) if !settings.ec2 && e.is_absent() => {
            return Err(match &saved {
                Some(id) => already_registered(settings, id),
                None => no_activation(format!(" ({e})")),
            });
        }
        Err(e) => return Err(imds_failure(e)),
    };
    let api = api(settings, saved.as_ref().map(|s| s.api_url.as_str()))?;
    let way = ec2_way(settings, saved.as_ref(), force, instance)?;
    register_once(settings, &way, api).await
}

/// Registers an unregistered node for `run` (false: stopped first).
async fn register_for_run(
    settings: &Settings,
    shutdown: &mut Shutdown,
) -> Result<bool, StartError> {
    if let Some(activation) = activation(settings) {
        let api = api(settings, None)?;
        return register_until_done(settings, &Way::Activation(activation), api, shutdown).await;
    }
    let not_registered = |why: String| {
        StartError::Registration(format!(
            "this node is not registered (no identity in {}); run `steward-agent register`, pass --activation-code and --activation-id, or run it on an EC2 instance (--ec2){why}",
            settings.state_dir.display()
        ))
    };
    if !asks_ec2(settings) {
        return Err(not_registered(String::new()));
    }
    let instance =
        match instance_identity_until_done(&imds(settings)?, !settings.ec2, shutdown).await {
            Ok(Some(i)) => i,
            Ok(None) => return Ok(false),
            Err(e) if !settings.ec2 && e.is_absent() => {
                return Err(not_registered(format!(": {e}")));
            }
            Err(e) => return Err(imds_failure(e)),
        };
    let api = api(settings, None)?;
    let way = ec2_way(settings, None, false, instance)?;
    register_until_done(settings, &way, api, shutdown).await
}

/// For `run` on a node registered as an EC2 instance: is it still that
/// instance? If IMDS says another (an image made from a registered
/// instance), registers afresh as this one. When IMDS cannot tell, goes on
/// as the node saved. False: stopped first.
async fn recheck_ec2_identity(
    settings: &Settings,
    saved: &Identity,
    shutdown: &mut Shutdown,
) -> Result<bool, StartError> {
    let instance = match imds(settings)?.identity().await {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(
                instance_id = saved.instance_id,
                error = %e,
                "cannot check this instance's identity; going on with the saved one"
            );
            return Ok(true);
        }
    };
    match instance.instance_id() {
        Some(id) if id == saved.instance_id => Ok(true),
        Some(_) => {
            let api = api(settings, Some(&saved.api_url))?;
            let way = ec2_way(settings, Some(saved), false, instance)?;
            register_until_done(settings, &way, api, shutdown).await
        }
        None => {
            tracing::warn!(
                instance_id = saved.instance_id,
                "the instance identity document has no instanceId; going on with the saved identity"
            );
            Ok(true)
        }
    }
}

/// `steward-agent run`: registers if needed, builds the agent over SQS and
/// runs it until `shutdown`.
pub async fn run(settings: Settings, mut shutdown: Shutdown) -> Result<(), StartError> {
    let registered = match load_identity(&settings)? {
        None => register_for_run(&settings, &mut shutdown).await?,
        Some((saved, _, _)) if is_ec2_instance(&saved.instance_id) => {
            recheck_ec2_identity(&settings, &saved, &mut shutdown).await?
        }
        Some((saved, _, _)) => {
            if settings.ec2 {
                tracing::info!(
                    instance_id = saved.instance_id,
                    "this node is registered by an activation; --ec2 changes nothing"
                );
            }
            true
        }
    };
    if !registered {
        return Ok(());
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
    agent.serve_sessions(crate::daemon::SessionSetup {
        queues: Arc::new(crate::session::SqsSessionQueues::new(
            api.clone(),
            identity.instance_id.clone(),
            Arc::clone(&key),
            identity.region.clone(),
            settings.sqs_endpoint.clone(),
        )),
        user: None,
    });
    let every = std::time::Duration::from_secs(settings.heartbeat_seconds);
    agent
        .run(every, shutdown)
        .await
        .map_err(|e| StartError::Failed(format!("cannot record interrupted commands: {e}")))
}
