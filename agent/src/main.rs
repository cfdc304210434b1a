use std::process::ExitCode;

use clap::Parser;
use steward_agent::config::{Cli, Command, LogFormat, Settings};
use steward_agent::shutdown::Shutdown;
use steward_agent::start::{self, StartError};

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

impl From<StartError> for Fail {
    fn from(e: StartError) -> Self {
        let code = match e {
            StartError::Failed(_) => 1,
            StartError::Usage(_) => 2,
            StartError::Refused(_) => 3,
            StartError::Registration(_) => 4,
        };
        fail(code, e.to_string())
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
    if let Err(e) = steward_agent::faults::arm_from_env() {
        eprintln!("steward-agent: {e}");
        return ExitCode::from(2);
    }
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
            let identity = start::register(&settings, force).await?;
            println!("{}", identity.instance_id);
            Ok(())
        }
        Command::Run { .. } => {
            let shutdown = Shutdown::on_signals()
                .map_err(|e| fail(1, format!("cannot watch SIGTERM and SIGINT: {e}")))?;
            Ok(start::run(settings, shutdown).await?)
        }
    }
}

fn status(settings: &Settings) -> Result<(), Fail> {
    let (id, key, _) = start::load_identity(settings)?.ok_or_else(|| {
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
