//! steward: the operator's command line over the SSM API.
//!
//! Exit codes: 0 success; 1 a command ran but did not succeed everywhere
//! (or an automation execution shown ended other than in Success);
//! 2 usage or API errors.

mod args;
mod associations;
mod automation;
mod commands;
mod error;
#[cfg(test)]
mod fake_ssm;
mod iam;
mod json;
mod keys;
mod render;
mod run;
mod session;
mod windows;

use std::io::IsTerminal;
use std::process::ExitCode;

use aws_config::{BehaviorVersion, Region};
use clap::Parser;

use crate::args::{ActivationCommand, Cli, Command, Global, NodesArgs, NodesCommand, OutputFormat};
use crate::commands::Ctx;
use crate::error::{CliError, Exit};
use crate::iam::IamClient;

const DEFAULT_REGION: &str = "us-east-1";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("steward: cannot start the runtime: {e}");
            return ExitCode::from(Exit::Error as u8);
        }
    };
    let exit = runtime.block_on(async {
        let ctx = context(&cli.global).await;
        match dispatch(&ctx, &cli.command).await {
            Ok(exit) => exit,
            Err(e) => {
                report(&e);
                e.exit()
            }
        }
    });
    ExitCode::from(exit as u8)
}

fn report(e: &CliError) {
    eprintln!("steward: {e}");
    if let Some(hint) = e.hint() {
        eprintln!("  next: {hint}");
    }
}

/// The SSM client from the standard AWS configuration chain (profiles,
/// AWS_CONFIG_FILE, a profile's `endpoint_url`, AWS_ENDPOINT_URL_SSM …), with
/// the flags on top. aws-config reads `endpoint_url` from the profile itself.
async fn context(g: &Global) -> Ctx {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &g.profile {
        // As with the AWS CLI, a profile named on the command line supplies
        // the credentials even when AWS_ACCESS_KEY_ID is set (as it is, for
        // the emulators, once the local stack's environment is sourced).
        let credentials = aws_config::profile::ProfileFileCredentialsProvider::builder()
            .profile_name(profile)
            .build();
        loader = loader
            .profile_name(profile)
            .credentials_provider(credentials);
    }
    if let Some(region) = &g.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &g.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let shared = loader.load().await;
    let mut conf = aws_sdk_ssm::config::Builder::from(&shared);
    if shared.region().is_none() {
        conf = conf.region(Region::new(DEFAULT_REGION));
    }
    let stdout_is_terminal = std::io::stdout().is_terminal();
    // IAM shares Steward's endpoint; AWS_ENDPOINT_URL_IAM names another.
    let iam_endpoint = g
        .endpoint_url
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_IAM").ok())
        .or_else(|| shared.endpoint_url().map(str::to_string));
    Ctx {
        iam: IamClient::new(iam_endpoint, shared.credentials_provider()),
        client: aws_sdk_ssm::Client::from_conf(conf.build()),
        json: g.output == OutputFormat::Json,
        stdout_is_terminal,
        wide: stdout_is_terminal,
        endpoint: shared.endpoint_url().map(str::to_string),
    }
}

async fn dispatch(ctx: &Ctx, command: &Command) -> Result<Exit, CliError> {
    match command {
        Command::Run(args) => run::run(ctx, args).await,
        Command::Nodes(NodesArgs { command: None }) => commands::nodes(ctx).await,
        Command::Nodes(NodesArgs {
            command: Some(NodesCommand::Deregister { instance_id }),
        }) => commands::deregister(ctx, instance_id, &mut std::io::stdout().lock()).await,
        Command::Activation(ActivationCommand::Create(args)) => {
            commands::activation_create(ctx, args).await
        }
        Command::Activation(ActivationCommand::List) => commands::activation_list(ctx).await,
        Command::Commands(args) => commands::commands(ctx, args).await,
        Command::Invocations { command_id } => commands::invocations(ctx, command_id).await,
        Command::Output {
            command_id,
            instance_id,
        } => commands::output(ctx, command_id, instance_id.as_deref()).await,
        Command::Keys(k) => keys::run(ctx, k).await,
        Command::Automation(a) => automation::run(ctx, a).await,
        Command::Associations(a) => associations::run(ctx, a).await,
        Command::Windows(w) => windows::run(ctx, w).await,
        Command::Session(s) => session::run(ctx, s).await,
        Command::Cancel {
            command_id,
            instance_ids,
        } => commands::cancel(ctx, command_id, instance_ids).await,
    }
}
