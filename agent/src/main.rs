use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use steward_agent::api::{Api, HttpClient};
use steward_agent::config::{Cli, Command, LogFormat, Settings};
use steward_agent::credentials::NodeCredentialsProvider;
use steward_agent::daemon::{Agent, AgentParts};
use steward_agent::identity::Identity;
use steward_agent::platform::Platform;
use steward_agent::queue::{SqsIngestQueue, SqsNodeQueue, sqs_client};
use steward_agent::register::{self, Activation, RegisterError};
use steward_agent::secure_parameters::ApiParameterSource;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// A failure with its exit status (documented in `--help`).
struct Fail {
    code: u8,
    message: String,
}

fn fail(code: u8, message: impl Into<String>) -> Fail {
    Fail {
        code,
        message: message.into(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::resolve(&cli, |k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("steward-agent: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(settings.log_format);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("steward-agent: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            tracing::error!(exit_code = f.code, "{}", f.message);
            eprintln!("steward-agent: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn init_logging(format: LogFormat) {
    // A plain level (no per-target filters): EnvFilter's regex engine would
    // cost more binary than the rest of the logging.
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| {
            s.trim()
                .parse::<tracing_subscriber::filter::LevelFilter>()
                .ok()
        })
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

async fn dispatch(command: Command, settings: Settings) -> Result<(), Fail> {
    match command {
        Command::Status => status(&settings),
        Command::Register { force, .. } => {
            if !force && let Some((id, _, _)) = load_identity(&settings)? {
                return Err(fail(
                    4,
                    format!(
                        "this node is already registered as {} (state in {}); pass --force to register again",
                        id.instance_id,
                        settings.state_dir.display()
                    ),
                ));
            }
            let activation = activation(&settings).ok_or_else(|| {
                fail(2, "register needs --activation-code and --activation-id (or STEWARD_ACTIVATION_CODE/STEWARD_ACTIVATION_ID)")
            })?;
            let identity = register_once(&settings, &activation).await?;
            println!("{}", identity.instance_id);
            Ok(())
        }
        Command::Run { .. } => run(settings).await,
    }
}

fn load_identity(
    settings: &Settings,
) -> Result<
    Option<(
        Identity,
        steward_core::channel::NodeKey,
        steward_core::channel::DownlinkVerifier,
    )>,
    Fail,
> {
    Identity::load(&settings.state_dir).map_err(|e| fail(1, e.to_string()))
}

fn status(settings: &Settings) -> Result<(), Fail> {
    let (id, key, _) = load_identity(settings)?.ok_or_else(|| {
        fail(
            4,
            format!(
                "this node is not registered (no identity in {})",
                settings.state_dir.display()
            ),
        )
    })?;
    let out = serde_json::json!({
        "InstanceId": id.instance_id,
        "QueueUrl": id.queue_url,
        "IngestQueueUrl": id.ingest_queue_url,
        "Region": id.region,
        "ApiUrl": id.api_url,
        "PublicKey": key.public_key_base64(),
        "AgentVersion": env!("CARGO_PKG_VERSION"),
    });
    println!("{out:#}");
    Ok(())
}

fn activation(settings: &Settings) -> Option<Activation> {
    Some(Activation {
        code: settings.activation_code.clone()?,
        id: settings.activation_id.clone()?,
        name: settings.name.clone(),
    })
}

fn api(settings: &Settings, remembered: Option<&str>) -> Result<Api, Fail> {
    let url = settings
        .api_url
        .as_deref()
        .or(remembered.filter(|u| !u.is_empty()))
        .ok_or_else(|| fail(2, "no API endpoint: pass --api-url (or STEWARD_API_URL)"))?;
    Ok(Api::new(HttpClient::new(), url))
}

fn register_failure(e: RegisterError) -> Fail {
    if e.is_refusal() {
        fail(
            3,
            format!(
                "registration refused: {e}; check the activation code and id, or create a new activation"
            ),
        )
    } else {
        fail(1, format!("registration failed: {e}"))
    }
}

async fn register_once(settings: &Settings, activation: &Activation) -> Result<Identity, Fail> {
    let api = api(settings, None)?;
    let platform = Platform::detect();
    let mut delay = Duration::from_secs(1);
    for attempt in 1..=3 {
        match register::register(&api, &settings.state_dir, activation, &platform).await {
            Ok(identity) => {
                tracing::info!(instance_id = identity.instance_id, "registered");
                return Ok(identity);
            }
            Err(e) if e.is_transient() && attempt < 3 => {
                tracing::warn!(attempt, error = %e, "registration failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => return Err(register_failure(e)),
        }
    }
    Err(fail(1, "registration failed"))
}

async fn run(settings: Settings) -> Result<(), Fail> {
    let (shutdown_tx, shutdown) = watch::channel(false);
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| fail(1, format!("cannot watch SIGTERM: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| fail(1, format!("cannot watch SIGINT: {e}")))?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => tracing::info!("SIGINT: stopping"),
        }
        let _ = shutdown_tx.send(true);
    });

    if load_identity(&settings)?.is_none() {
        let activation = activation(&settings).ok_or_else(|| {
            fail(
                4,
                format!(
                    "this node is not registered (no identity in {}); run `steward-agent register` or pass --activation-code and --activation-id",
                    settings.state_dir.display()
                ),
            )
        })?;
        let api = api(&settings, None)?;
        let platform = Platform::detect();
        let mut delay = Duration::from_secs(1);
        loop {
            match register::register(&api, &settings.state_dir, &activation, &platform).await {
                Ok(identity) => {
                    tracing::info!(instance_id = identity.instance_id, "registered");
                    break;
                }
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, retry_in = delay.as_secs(), "registration failed; retrying");
                    let mut s = shutdown.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = s.wait_for(|v| *v) => return Ok(()),
                    }
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
                Err(e) => return Err(register_failure(e)),
            }
        }
    }
    let (identity, key, verifier) = load_identity(&settings)?
        .ok_or_else(|| fail(1, "the identity just written cannot be read back"))?;
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
        http: HttpClient::new(),
        platform: Platform::detect(),
        parameters: Some(Arc::new(ApiParameterSource::new(
            api.clone(),
            identity.instance_id.clone(),
            Arc::clone(&key),
        ))),
    })
    .map_err(|e| {
        fail(
            1,
            format!(
                "cannot open the journal or spool in {}: {e}",
                settings.state_dir.display()
            ),
        )
    })?;
    agent
        .recover()
        .map_err(|e| fail(1, format!("cannot record interrupted commands: {e}")))?;
    tracing::info!(
        instance_id = identity.instance_id,
        version = env!("CARGO_PKG_VERSION"),
        "agent started"
    );

    let sender = {
        let (a, s) = (Arc::clone(&agent), shutdown.clone());
        tokio::spawn(async move { a.send_spooled(s).await })
    };
    let heartbeats = {
        let (a, s) = (Arc::clone(&agent), shutdown.clone());
        let every = Duration::from_secs(settings.heartbeat_seconds);
        tokio::spawn(async move { a.send_heartbeats(every, s).await })
    };
    agent.poll(shutdown).await;
    agent.stop_commands().await;
    let _ = sender.await;
    let _ = heartbeats.await;
    tracing::info!("agent stopped");
    Ok(())
}
