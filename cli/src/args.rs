//! The command line: global flags, subcommands, and the parsers of their values.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// steward: run commands on your fleet and look at its nodes, over the SSM API
/// of a Steward control plane (or anything else that speaks SSM).
#[derive(Debug, Parser)]
#[command(name = "steward", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// API endpoint (default: the profile's endpoint_url, AWS_ENDPOINT_URL_SSM or AWS_ENDPOINT_URL).
    #[arg(long, global = true, env = "STEWARD_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Named profile from the AWS config and credentials files.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Region (default: from the profile or AWS_REGION; us-east-1 if none).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// `table` for people, `json` for scripts (the API's own shapes, nothing else on stdout).
    #[arg(
        short = 'o',
        long = "output",
        global = true,
        value_enum,
        default_value = "table"
    )]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a shell command on nodes chosen by tags or ids, and wait for the result.
    Run(RunArgs),
    /// List managed nodes with their status and tags, or deregister one.
    Nodes(NodesArgs),
    /// Create or list hybrid activations (how nodes register).
    #[command(subcommand)]
    Activation(ActivationCommand),
    /// List recent commands.
    Commands(CommandsArgs),
    /// List the invocations (one per node) of a command.
    Invocations {
        /// The command's id.
        command_id: String,
    },
    /// Show the output of a command, per node.
    Output {
        /// The command's id.
        command_id: String,
        /// Only this node.
        #[arg(long)]
        instance_id: Option<String>,
    },
    /// Operator access keys: IAM users, their inline policies and keys, over
    /// Steward's IAM API (the same as `aws iam …`).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Automation: start runbooks, follow their steps, approve, resume or stop them.
    #[command(subcommand)]
    Automation(AutomationCommand),
    /// State Manager associations: list, show, create, delete, run now.
    Associations(crate::associations::AssociationsArgs),
    /// Maintenance windows: list, show, the coming executions, past executions.
    Windows(crate::windows::WindowsArgs),
    /// Session Manager: an interactive shell on a node, no inbound port; list or end sessions.
    #[command(subcommand)]
    Session(crate::session::SessionCommand),
    /// Cancel a command (on every node, or only the nodes given).
    Cancel {
        /// The command's id.
        command_id: String,
        /// Only these nodes.
        #[arg(long, value_delimiter = ',')]
        instance_ids: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct NodesArgs {
    #[command(subcommand)]
    pub command: Option<NodesCommand>,
}

#[derive(Debug, Subcommand)]
pub enum NodesCommand {
    /// Deregister a node (DeregisterManagedInstance): it leaves the fleet for
    /// good, with its queue, tags, inventory, compliance and patch state; its
    /// command history stays. Registering it again takes a new activation
    /// (or, for an EC2 node, registering by its identity again).
    Deregister {
        /// The node's id (mi-…, or i-… for an EC2 node registered by its identity).
        instance_id: String,
    },
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  steward run --targets tag:env=dev --targets tag:role=web,db -- uname -a"
)]
pub struct RunArgs {
    /// Nodes to run on: `tag:<key>=<v1>[,<v2>…]`, `InstanceIds=<id>[,…]`, or `Key=<key>,Values=<v1>[,…]`. Repeat to narrow.
    #[arg(long = "targets", short = 't', value_parser = parse_target)]
    pub targets: Vec<Target>,
    /// Node ids (mi-…), comma separated or repeated.
    #[arg(long, value_delimiter = ',')]
    pub instance_ids: Vec<String>,
    /// Document to run.
    #[arg(long, default_value = "AWS-RunShellScript")]
    pub document: String,
    /// Seconds a node has to start the command before it counts as undeliverable (TimeoutSeconds).
    #[arg(long)]
    pub timeout: Option<i32>,
    /// Seconds the command may run on a node (the document's executionTimeout).
    #[arg(long)]
    pub execution_timeout: Option<u32>,
    /// Working directory on the node.
    #[arg(long)]
    pub workdir: Option<String>,
    /// Comment stored with the command.
    #[arg(long)]
    pub comment: Option<String>,
    /// Nodes running at once: a number or a percentage (e.g. 10 or 25%).
    #[arg(long)]
    pub max_concurrency: Option<String>,
    /// Errors after which the command stops being sent: a number or a percentage.
    #[arg(long)]
    pub max_errors: Option<String>,
    /// Print the command id and return without waiting.
    #[arg(long)]
    pub no_wait: bool,
    /// The command line to run, after `--`; its words are joined with spaces.
    #[arg(last = true, required = true, num_args = 1.., value_name = "COMMAND")]
    pub command: Vec<String>,
}

impl RunArgs {
    /// The single command line the words after `--` make.
    pub fn command_line(&self) -> String {
        self.command.join(" ")
    }
}

#[derive(Debug, Subcommand)]
pub enum ActivationCommand {
    /// Create an activation and print the line that registers a node with it.
    Create(ActivationCreateArgs),
    /// List activations.
    List,
}

#[derive(Debug, Args)]
pub struct ActivationCreateArgs {
    /// Name given to the nodes that register with it (DefaultInstanceName).
    #[arg(long)]
    pub name: Option<String>,
    /// Description of the activation.
    #[arg(long)]
    pub description: Option<String>,
    /// How many nodes may register with it (RegistrationLimit, default 1).
    #[arg(long)]
    pub limit: Option<i32>,
    /// Tag for the activation and the nodes registering with it: `key=value`; repeat for more.
    #[arg(long = "tag", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Hours until the activation expires (default 24, at most 720).
    #[arg(long)]
    pub expires_in_hours: Option<u32>,
    /// IAM role recorded on the nodes.
    #[arg(long)]
    pub iam_role: Option<String>,
}

#[derive(Debug, Args)]
pub struct CommandsArgs {
    /// Only commands sent to this node.
    #[arg(long)]
    pub instance_id: Option<String>,
    /// At most this many commands.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

/// One SSM `Target`: a key and its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub key: String,
    pub values: Vec<String>,
}

/// Parses `tag:k=v1,v2`, `InstanceIds=mi-1,mi-2` or the AWS CLI's
/// `Key=tag:k,Values=v1,v2`.
pub fn parse_target(s: &str) -> Result<Target, String> {
    let (key, values) = if let Some(rest) = s.strip_prefix("Key=") {
        let (key, values) = rest
            .split_once(",Values=")
            .ok_or_else(|| format!("`{s}`: expected Key=<key>,Values=<v1>[,<v2>…]"))?;
        (key, values)
    } else {
        s.split_once('=').ok_or_else(|| {
            format!("`{s}`: expected tag:<key>=<value>[,<value>…], e.g. tag:env=dev")
        })?
    };
    let key = key.trim();
    if key.is_empty() || key == "tag:" {
        return Err(format!("`{s}`: the key is empty; e.g. tag:env=dev"));
    }
    let values: Vec<String> = values
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect();
    if values.is_empty() {
        return Err(format!(
            "`{s}`: give at least one value after `=`, e.g. {key}=dev"
        ));
    }
    Ok(Target {
        key: key.to_string(),
        values,
    })
}

/// Parses `key=value` (the value may be empty, as SSM tags allow).
pub fn parse_tag(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected key=value, e.g. env=dev"))?;
    if k.trim().is_empty() {
        return Err(format!("`{s}`: the tag key is empty"));
    }
    Ok((k.trim().to_string(), v.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("steward").chain(args.iter().copied()))
    }

    #[test]
    fn targets_parse_into_key_and_values() {
        assert_eq!(
            parse_target("tag:env=dev").unwrap(),
            Target {
                key: "tag:env".into(),
                values: vec!["dev".into()]
            }
        );
        assert_eq!(
            parse_target("tag:role=web,db").unwrap(),
            Target {
                key: "tag:role".into(),
                values: vec!["web".into(), "db".into()]
            }
        );
        assert_eq!(
            parse_target("InstanceIds=mi-0123456789abcdef0,mi-0123456789abcdef1").unwrap(),
            Target {
                key: "InstanceIds".into(),
                values: vec!["mi-0123456789abcdef0".into(), "mi-0123456789abcdef1".into()]
            }
        );
        assert_eq!(
            parse_target("Key=tag:env,Values=dev,prod").unwrap(),
            Target {
                key: "tag:env".into(),
                values: vec!["dev".into(), "prod".into()]
            }
        );
        // A value may itself contain '=' (only the first one splits).
        assert_eq!(
            parse_target("tag:expr=a=b").unwrap().values,
            vec!["a=b".to_string()]
        );
    }

    #[test]
    fn malformed_targets_are_refused() {
        assert!(parse_target("tag:env").is_err());
        assert!(parse_target("tag:env=").is_err());
        assert!(parse_target("=dev").is_err());
        assert!(parse_target("tag:=dev").is_err());
        assert!(parse_target("Key=tag:env").is_err());
    }

    #[test]
    fn run_joins_the_words_after_the_double_dash() {
        let cli = parse(&[
            "run",
            "--targets",
            "tag:env=dev",
            "-t",
            "tag:role=web",
            "--timeout",
            "60",
            "--",
            "echo",
            "hello",
            "--targets",
            "-o",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.targets.len(), 2);
        assert_eq!(run.targets[1].key, "tag:role");
        assert_eq!(run.timeout, Some(60));
        // Flags after `--` belong to the command, not to steward.
        assert_eq!(run.command_line(), "echo hello --targets -o");
        assert_eq!(cli.global.output, OutputFormat::Table);
    }

    #[test]
    fn run_keeps_a_quoted_command_line_whole() {
        let cli = parse(&["run", "--instance-ids", "mi-1,mi-2", "--", "uname -a; id"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.instance_ids, vec!["mi-1", "mi-2"]);
        assert_eq!(run.command_line(), "uname -a; id");
        assert_eq!(run.document, "AWS-RunShellScript");
    }

    #[test]
    fn run_needs_a_command() {
        assert!(parse(&["run", "--targets", "tag:env=dev"]).is_err());
        assert!(parse(&["run", "--targets", "tag:env=dev", "--"]).is_err());
        // Words without `--` are refused rather than guessed.
        assert!(parse(&["run", "--targets", "tag:env=dev", "uptime"]).is_err());
    }

    #[test]
    fn bad_target_is_a_usage_error() {
        let e = parse(&["run", "--targets", "env", "--", "true"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("tag:<key>=<value>"));
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = parse(&[
            "nodes",
            "-o",
            "json",
            "--endpoint-url",
            "http://127.0.0.1:7070",
        ])
        .unwrap();
        assert_eq!(cli.global.output, OutputFormat::Json);
        assert_eq!(
            cli.global.endpoint_url.as_deref(),
            Some("http://127.0.0.1:7070")
        );
        let cli = parse(&[
            "--profile",
            "steward",
            "output",
            "abc",
            "--instance-id",
            "mi-1",
        ])
        .unwrap();
        assert_eq!(cli.global.profile.as_deref(), Some("steward"));
        assert!(matches!(
            cli.command,
            Command::Output {
                instance_id: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn activation_create_takes_tags() {
        let cli = parse(&[
            "activation",
            "create",
            "--name",
            "web",
            "--limit",
            "5",
            "--tag",
            "env=dev",
            "--tag",
            "role=web",
            "--expires-in-hours",
            "48",
        ])
        .unwrap();
        let Command::Activation(ActivationCommand::Create(a)) = cli.command else {
            panic!()
        };
        assert_eq!(
            a.tags,
            vec![("env".into(), "dev".into()), ("role".into(), "web".into())]
        );
        assert_eq!((a.limit, a.expires_in_hours), (Some(5), Some(48)));
        assert!(parse(&["activation", "create", "--tag", "novalue"]).is_err());
    }
}

#[derive(Debug, Subcommand)]
#[command(
    after_help = "Example:\n  steward keys create-user dev-reader\n  steward keys put-policy dev-reader read-dev --file policy.json\n  steward keys create dev-reader"
)]
pub enum KeysCommand {
    /// List users.
    Users,
    /// Create a user (no policy, no key yet).
    CreateUser { user: String },
    /// Delete a user (once it has no keys and no policies).
    DeleteUser { user: String },
    /// Add or replace one of a user's inline policies from a JSON file.
    PutPolicy {
        user: String,
        policy_name: String,
        /// The policy document (IAM's JSON); `-` reads standard input.
        #[arg(long)]
        file: String,
    },
    /// Show a user's inline policies, with their documents.
    Policies { user: String },
    /// Delete one of a user's inline policies.
    DeletePolicy { user: String, policy_name: String },
    /// Create an access key for a user; prints its id and secret, the only time the secret is shown.
    Create { user: String },
    /// List a user's access keys.
    List { user: String },
    /// Make a key Active again.
    Activate { user: String, key_id: String },
    /// Make a key Inactive: refused everywhere within a minute.
    Deactivate { user: String, key_id: String },
    /// Delete a key.
    Delete { user: String, key_id: String },
}

/// SSM's automation statuses, for executions and their steps.
pub const AUTOMATION_STATUSES: [&str; 8] = [
    "Pending",
    "InProgress",
    "Waiting",
    "Success",
    "TimedOut",
    "Cancelling",
    "Cancelled",
    "Failed",
];

#[derive(Debug, Subcommand)]
#[command(
    after_help = "Example:\n  steward automation start <runbook> --param InstanceId=mi-0123456789abcdef0 --param Names=a --param Names=b\n  steward automation show <execution-id>\n  steward automation approve <execution-id> --comment \"looks right\""
)]
pub enum AutomationCommand {
    /// Start a runbook (StartAutomationExecution) and print the execution id.
    #[command(disable_version_flag = true)]
    Start(AutomationStartArgs),
    /// List executions, newest first.
    List(AutomationListArgs),
    /// Show an execution and follow its steps until it ends.
    Show(AutomationShowArgs),
    /// Approve the aws:approve step an execution waits on.
    Approve {
        /// The execution's id.
        execution_id: String,
        /// Comment recorded with the approval.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject the aws:approve step an execution waits on (the step fails).
    Reject {
        /// The execution's id.
        execution_id: String,
        /// Comment recorded with the rejection.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Resume an execution paused in an aws:pause step.
    Resume {
        /// The execution's id.
        execution_id: String,
    },
    /// Stop (cancel) an execution.
    Stop {
        /// The execution's id.
        execution_id: String,
    },
}

#[derive(Debug, Args)]
pub struct AutomationStartArgs {
    /// The runbook (an Automation document) to run.
    pub name: String,
    /// A runbook parameter: `name=value`. Repeat a name to give a list; a value's commas stay in it.
    #[arg(long = "param", short = 'p', value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// The runbook version: a number, `$DEFAULT` or `$LATEST` (default: the default version).
    #[arg(long)]
    pub version: Option<String>,
    /// Idempotency token, a UUID (e.g. from `uuidgen`): a start retried with the same token starts one execution.
    #[arg(long, value_parser = parse_client_token)]
    pub client_token: Option<String>,
}

impl AutomationStartArgs {
    /// The `Parameters` map: each name with its values, in the order given.
    pub fn parameters(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (k, v) in &self.params {
            out.entry(k.clone()).or_default().push(v.clone());
        }
        out
    }
}

#[derive(Debug, Args)]
pub struct AutomationListArgs {
    /// Only executions with this status; repeat for several.
    #[arg(long = "status", value_parser = clap::builder::PossibleValuesParser::new(AUTOMATION_STATUSES))]
    pub statuses: Vec<String>,
    /// Only runbooks whose name starts with this.
    #[arg(long)]
    pub document: Option<String>,
    /// At most this many executions.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub max: u32,
}

#[derive(Debug, Args)]
pub struct AutomationShowArgs {
    /// The execution's id.
    pub execution_id: String,
    /// Seconds to follow the execution before giving up (it goes on without us).
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Show the execution as it is now and return.
    #[arg(long)]
    pub no_wait: bool,
}

/// Checks a ClientToken is what SSM takes: a UUID, 8-4-4-4-12 hex digits.
pub fn parse_client_token(s: &str) -> Result<String, String> {
    let groups: Vec<&str> = s.split('-').collect();
    let shape = groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12];
    if shape
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
    {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}`: a client token is a UUID, e.g. 3f2504e0-4f89-41d3-9a0c-0305e82c3301 (make one with `uuidgen`)"
        ))
    }
}

/// Parses a runbook parameter, `name=value`: the first `=` splits, the value
/// is kept as given (commas, `=` and spaces included; it may be empty).
pub fn parse_param(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| {
        format!("`{s}`: expected name=value, e.g. InstanceId=mi-0123456789abcdef0")
    })?;
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("`{s}`: the parameter name is empty"));
    }
    Ok((k.to_string(), v.to_string()))
}
