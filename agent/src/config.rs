//! Settings: command-line flags, then environment variables, then the
//! config file (`key = value` lines), then defaults.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use thiserror::Error;

pub const DEFAULT_STATE_DIR: &str = "/var/lib/steward-agent";
/// Fifteen minutes: an idle node must cost at most $0.06 a month, and its
/// SQS long poll alone is $0.052; every heartbeat adds an SQS send, a share
/// of an ingest Lambda and a DynamoDB read and write, so at 60 s they would
/// dominate. The control plane's ConnectionLost threshold is set to match.
pub const DEFAULT_HEARTBEAT_SECONDS: u64 = 900;

const AFTER_HELP: &str = "\
Settings come from flags, then environment variables, then the config file,
then defaults. The config file holds `key = value` lines (`#` starts a
comment); keys are the long flag names:

    api-url = https://steward.example.com/
    state-dir = /var/lib/steward-agent
    sqs-endpoint = http://127.0.0.1:4566
    heartbeat-seconds = 900
    log-format = json
    activation-code = ...
    activation-id = ...
    name = web-1
    patch-root = /
    imds-endpoint = http://169.254.169.254

The SQS endpoint also falls back to AWS_ENDPOINT_URL_SQS, then AWS_ENDPOINT_URL.
The instance metadata endpoint also falls back to AWS_EC2_METADATA_SERVICE_ENDPOINT.

An EC2 instance registers without an activation, by its instance identity
(IMDSv2): `register --ec2` or `run --ec2`. Without --ec2 and without an
activation, an unregistered node asks the instance metadata service and
registers by its EC2 identity if it answers. Registering again on the same
instance keeps the node's key (no --force needed); a node whose saved
identity is another instance's (an image made from a registered instance)
registers afresh as the instance it is.

RUST_LOG sets the log level: error, warn, info (default), debug or trace. Logs go to standard error.

Exit status:
    0  done (register), or stopped by SIGTERM/SIGINT (run)
    1  runtime failure: API or queues unreachable, state directory unusable,
       instance metadata failing (or not answering `--ec2`)
    2  bad usage or configuration
    3  refused: the API refused the registration (InvalidActivation,
       InvalidActivationId, InvalidSignatureException, AccessDeniedException, ...),
       or the instance's metadata service offers IMDSv1 only (enable IMDSv2:
       aws ec2 modify-instance-metadata-options --instance-id <id>
       --http-tokens required --http-endpoint enabled)
    4  registration state: `run` on an unregistered node without an activation
       and not on EC2, or `register` on a registered node without --force";

#[derive(Debug, Parser)]
#[command(name = "steward-agent", version, about = "The Steward agent: registers this node, long-polls its queue, runs commands and reports back.", after_help = AFTER_HELP)]
pub struct Cli {
    /// Config file of `key = value` lines.
    #[arg(long, global = true, env = "STEWARD_AGENT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the identity, journal, spool and command files live [default: /var/lib/steward-agent].
    #[arg(
        long,
        global = true,
        env = "STEWARD_AGENT_STATE_DIR",
        value_name = "DIR"
    )]
    pub state_dir: Option<PathBuf>,
    /// The Steward API endpoint, e.g. http://127.0.0.1:7070 (remembered at registration).
    #[arg(long, global = true, env = "STEWARD_API_URL", value_name = "URL")]
    pub api_url: Option<String>,
    /// SQS endpoint override, e.g. http://127.0.0.1:4566 for a local stack.
    #[arg(
        long,
        global = true,
        env = "STEWARD_AGENT_SQS_ENDPOINT",
        value_name = "URL"
    )]
    pub sqs_endpoint: Option<String>,
    /// Seconds between heartbeats [default: 900].
    #[arg(
        long,
        global = true,
        env = "STEWARD_AGENT_HEARTBEAT_SECONDS",
        value_name = "SECONDS"
    )]
    pub heartbeat_seconds: Option<u64>,
    /// The root the patch plugin reads (dpkg's database, apt's lists) [default: /].
    /// Any other root is read as it is, never changed: apt-get and reboot run
    /// only on / (a test host's agents scan a fixture root this way).
    #[arg(
        long,
        global = true,
        env = "STEWARD_AGENT_PATCH_ROOT",
        value_name = "DIR"
    )]
    pub patch_root: Option<PathBuf>,
    /// The EC2 instance metadata service [default: http://169.254.169.254].
    #[arg(long, global = true, env = "STEWARD_IMDS_ENDPOINT", value_name = "URL")]
    pub imds_endpoint: Option<String>,
    /// Log format on standard error [default: human].
    #[arg(long, global = true, env = "STEWARD_AGENT_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register this node (with an activation, or by its EC2 identity), save its identity, and exit.
    Register {
        #[command(flatten)]
        activation: ActivationArgs,
        /// Register again even if this node is registered (a new key).
        #[arg(long)]
        force: bool,
    },
    /// Run the agent (registering first if needed: with an activation, or by its EC2 identity).
    Run {
        #[command(flatten)]
        activation: ActivationArgs,
    },
    /// Print this node's identity as JSON (no secrets) and exit; exit 4 if not registered.
    Status,
}

#[derive(Debug, Clone, Args)]
pub struct ActivationArgs {
    /// The activation code (from CreateActivation).
    #[arg(long, env = "STEWARD_ACTIVATION_CODE", value_name = "CODE")]
    pub activation_code: Option<String>,
    /// The activation id (from CreateActivation).
    #[arg(long, env = "STEWARD_ACTIVATION_ID", value_name = "ID")]
    pub activation_id: Option<String>,
    /// A name for this node, sent with the registration.
    #[arg(long, env = "STEWARD_AGENT_NAME", value_name = "NAME")]
    pub name: Option<String>,
    /// Register by this EC2 instance's identity (IMDSv2) instead of an activation.
    #[arg(long)]
    pub ec2: bool,
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}, line {line}: {reason}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Everything resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub state_dir: PathBuf,
    pub api_url: Option<String>,
    pub sqs_endpoint: Option<String>,
    pub heartbeat_seconds: u64,
    pub log_format: LogFormat,
    pub activation_code: Option<String>,
    pub activation_id: Option<String>,
    pub name: Option<String>,
    pub patch_root: PathBuf,
    /// `--ec2`: register by the EC2 instance identity.
    pub ec2: bool,
    /// The instance metadata service (`http://host[:port]`).
    pub imds_endpoint: String,
}

const KEYS: &[&str] = &[
    "state-dir",
    "api-url",
    "sqs-endpoint",
    "heartbeat-seconds",
    "log-format",
    "activation-code",
    "activation-id",
    "name",
    "patch-root",
    "imds-endpoint",
];

/// Parses `key = value` lines; `_` and `-` are the same in keys.
pub fn parse_config_file(path: &Path, text: &str) -> Result<HashMap<String, String>, ConfigError> {
    let mut map = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |reason: String| ConfigError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| err("expected `key = value`".into()))?;
        let key = k.trim().replace('_', "-");
        if !KEYS.contains(&key.as_str()) {
            return Err(err(format!(
                "unknown key `{key}`; known keys: {}",
                KEYS.join(", ")
            )));
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(v);
        map.insert(key, v.to_string());
    }
    Ok(map)
}

impl Settings {
    pub fn resolve(
        cli: &Cli,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                parse_config_file(path, &text)?
            }
            None => HashMap::new(),
        };
        let get = |k: &str| file.get(k).cloned().filter(|v| !v.is_empty());
        let activation = match &cli.command {
            Command::Register { activation, .. } | Command::Run { activation } => {
                Some(activation.clone())
            }
            Command::Status => None,
        };
        let from_activation = |f: fn(&ActivationArgs) -> &Option<String>, key: &str| {
            activation
                .as_ref()
                .and_then(|a| f(a).clone())
                .or_else(|| get(key))
        };
        let heartbeat_seconds = match cli.heartbeat_seconds {
            Some(n) => n,
            None => match get("heartbeat-seconds") {
                Some(s) => s.parse().map_err(|_| {
                    ConfigError::Invalid(format!(
                        "heartbeat-seconds `{s}` is not a whole number of seconds"
                    ))
                })?,
                None => DEFAULT_HEARTBEAT_SECONDS,
            },
        };
        if heartbeat_seconds == 0 {
            return Err(ConfigError::Invalid(
                "heartbeat-seconds must be at least 1".into(),
            ));
        }
        let ec2 = activation.as_ref().is_some_and(|a| a.ec2);
        let activation_code = from_activation(|a| &a.activation_code, "activation-code");
        let activation_id = from_activation(|a| &a.activation_id, "activation-id");
        if ec2 && (activation_code.is_some() || activation_id.is_some()) {
            return Err(ConfigError::Invalid(
                "--ec2 registers by the EC2 instance identity and takes no activation: drop --ec2, or the activation (--activation-code/--activation-id, STEWARD_ACTIVATION_CODE/STEWARD_ACTIVATION_ID, or activation-code/activation-id in the config file)".into(),
            ));
        }
        let imds_endpoint = cli
            .imds_endpoint
            .clone()
            .or_else(|| get("imds-endpoint"))
            .or_else(|| env("AWS_EC2_METADATA_SERVICE_ENDPOINT"))
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| crate::imds::DEFAULT_ENDPOINT.to_string());
        // Checked only where it is used: a stray variable does not stop `status`.
        let imds_endpoint = if activation.is_some() {
            crate::imds::validate_endpoint(&imds_endpoint)
                .map_err(|e| ConfigError::Invalid(e.to_string()))?
        } else {
            imds_endpoint
        };
        let log_format = match cli.log_format {
            Some(f) => f,
            None => match get("log-format").as_deref() {
                None | Some("human") => LogFormat::Human,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(ConfigError::Invalid(format!(
                        "log-format `{other}` is not human or json"
                    )));
                }
            },
        };
        Ok(Settings {
            state_dir: cli
                .state_dir
                .clone()
                .or_else(|| get("state-dir").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            api_url: cli.api_url.clone().or_else(|| get("api-url")),
            sqs_endpoint: cli
                .sqs_endpoint
                .clone()
                .or_else(|| get("sqs-endpoint"))
                .or_else(|| env("AWS_ENDPOINT_URL_SQS"))
                .or_else(|| env("AWS_ENDPOINT_URL"))
                .filter(|s| !s.is_empty()),
            heartbeat_seconds,
            log_format,
            activation_code,
            activation_id,
            name: from_activation(|a| &a.name, "name"),
            patch_root: cli
                .patch_root
                .clone()
                .or_else(|| get("patch-root").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("/")),
            ec2,
            imds_endpoint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("steward-agent").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.conf");
        std::fs::write(
            &file,
            "# comment\napi-url = http://file:7070\nstate_dir = \"/srv/agent\"\nheartbeat-seconds = 5\nactivation-id = A\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let s = Settings::resolve(
            &cli(&["--config", f, "run", "--api-url", "http://flag"]),
            |_| None,
        )
        .unwrap();
        // `--api-url` after the subcommand works because the flag is global.
        assert_eq!(s.api_url.as_deref(), Some("http://flag"));
        assert_eq!(s.state_dir, PathBuf::from("/srv/agent"));
        assert_eq!(s.heartbeat_seconds, 5);
        assert_eq!(s.activation_id.as_deref(), Some("A"));
        assert_eq!(s.activation_code, None);
        assert_eq!(s.log_format, LogFormat::Human);

        let s = Settings::resolve(&cli(&["status"]), |k| {
            (k == "AWS_ENDPOINT_URL").then(|| "http://ls".to_string())
        })
        .unwrap();
        assert_eq!(s.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(s.heartbeat_seconds, DEFAULT_HEARTBEAT_SECONDS);
        assert_eq!(s.sqs_endpoint.as_deref(), Some("http://ls"));
        assert_eq!(s.patch_root, PathBuf::from("/"));

        std::fs::write(&file, "patch-root = /srv/fixture\n").unwrap();
        let s = Settings::resolve(&cli(&["--config", f, "run"]), |_| None).unwrap();
        assert_eq!(s.patch_root, PathBuf::from("/srv/fixture"));
    }

    #[test]
    fn ec2_with_an_activation_is_a_usage_error() {
        let e = Settings::resolve(
            &cli(&[
                "register",
                "--ec2",
                "--activation-code",
                "c",
                "--activation-id",
                "a",
            ]),
            |_| None,
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::Invalid(_)), "{e:?}");
        assert!(e.to_string().contains("--ec2"), "{e}");
        // Half an activation, from the config file, is one too.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.conf");
        std::fs::write(&file, "activation-id = a\n").unwrap();
        let f = file.to_str().unwrap();
        assert!(Settings::resolve(&cli(&["--config", f, "run", "--ec2"]), |_| None).is_err());
        // Without the activation, --ec2 is a setting like another.
        let s = Settings::resolve(&cli(&["run", "--ec2"]), |_| None).unwrap();
        assert!(s.ec2);
        let s = Settings::resolve(&cli(&["register"]), |_| None).unwrap();
        assert!(!s.ec2);
    }

    #[test]
    fn the_imds_endpoint_comes_from_the_flag_the_file_then_aws_variable() {
        let aws = |k: &str| {
            (k == "AWS_EC2_METADATA_SERVICE_ENDPOINT")
                .then(|| "http://[fd00:ec2::254]/".to_string())
        };
        let s = Settings::resolve(&cli(&["register"]), |_| None).unwrap();
        assert_eq!(s.imds_endpoint, "http://169.254.169.254");
        let s = Settings::resolve(&cli(&["register"]), aws).unwrap();
        assert_eq!(s.imds_endpoint, "http://[fd00:ec2::254]");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.conf");
        std::fs::write(&file, "imds-endpoint = http://127.0.0.1:1338\n").unwrap();
        let f = file.to_str().unwrap();
        let s = Settings::resolve(&cli(&["--config", f, "run"]), aws).unwrap();
        assert_eq!(s.imds_endpoint, "http://127.0.0.1:1338");
        let s = Settings::resolve(
            &cli(&[
                "--config",
                f,
                "run",
                "--imds-endpoint",
                "http://127.0.0.1:9/",
            ]),
            aws,
        )
        .unwrap();
        assert_eq!(s.imds_endpoint, "http://127.0.0.1:9");
        // IMDS is plain HTTP: anything else is a configuration error...
        let e = Settings::resolve(
            &cli(&["register", "--imds-endpoint", "https://169.254.169.254"]),
            |_| None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("https://169.254.169.254"), "{e}");
        // ...where it is used: `status` never asks IMDS.
        assert!(Settings::resolve(&cli(&["status", "--imds-endpoint", "nope"]), |_| None).is_ok());
    }

    #[test]
    fn bad_config_lines_are_reported_with_their_line() {
        let p = Path::new("agent.conf");
        let e = parse_config_file(p, "api-url = x\ncolour = red\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(parse_config_file(p, "no equals sign").is_err());
    }
}
