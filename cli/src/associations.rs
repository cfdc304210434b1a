//! `steward associations …`: State Manager associations over the SSM API —
//! list them, show one with its recent executions, create, delete, and run
//! one now (StartAssociationsOnce).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use aws_sdk_ssm::types::{
    Association, AssociationComplianceSeverity, AssociationDescription, AssociationExecution,
    AssociationFilter, AssociationFilterKey, Target,
};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::args::{parse_param, parse_target};
use crate::commands::{Ctx, when};
use crate::error::{CliError, Exit};
use crate::json::{Obj, string_lists, targets as json_targets};
use crate::render::{self, dash, emit, emit_json};

/// The severities an association's compliance is reported with.
pub const SEVERITIES: [&str; 5] = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNSPECIFIED"];

/// `steward associations`: with no subcommand, the list.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Example:\n  steward associations create --document AWS-RunShellScript --targets Key=tag:role,Values=web \\\n    --schedule 'cron(0 2 ? * * *)' --parameters commands='apt-get -y upgrade' --name nightly-upgrade\n  steward associations\n  steward associations show <association-id>\n  steward associations run <association-id>"
)]
pub struct AssociationsArgs {
    #[command(subcommand)]
    pub command: Option<AssociationsCommand>,
    #[command(flatten)]
    pub list: AssociationListArgs,
}

#[derive(Debug, Subcommand)]
pub enum AssociationsCommand {
    /// List associations (the default): id, name, document, targets, schedule, status, last run.
    List(AssociationListArgs),
    /// Show an association and its recent executions.
    Show {
        /// The association's id.
        association_id: String,
        /// How many recent executions to show.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i32).range(1..=50))]
        executions: i32,
    },
    /// Create an association: a document applied to targets, now and on a schedule.
    Create(AssociationCreateArgs),
    /// Delete an association (its nodes keep what it did; it stops applying).
    Delete {
        /// The association's id.
        association_id: String,
    },
    /// Apply associations once now, on every node they target (StartAssociationsOnce).
    Run {
        /// The associations' ids.
        #[arg(required = true, num_args = 1..)]
        association_ids: Vec<String>,
    },
}

#[derive(Debug, Args, Default)]
pub struct AssociationListArgs {
    /// Only associations with this name (AssociationName).
    #[arg(long)]
    pub name: Option<String>,
    /// Only associations of this document.
    #[arg(long)]
    pub document: Option<String>,
}

#[derive(Debug, Args)]
pub struct AssociationCreateArgs {
    /// The document to apply (e.g. AWS-RunShellScript).
    #[arg(long)]
    pub document: String,
    /// The document's version: a number, `$DEFAULT` or `$LATEST`.
    #[arg(long)]
    pub document_version: Option<String>,
    /// Nodes it applies to: `Key=tag:<key>,Values=<v1>[,…]`, `tag:<key>=<v>[,…]` or `InstanceIds=<id>[,…]`. Repeat to narrow.
    #[arg(long = "targets", short = 't', value_parser = parse_target, required = true)]
    pub targets: Vec<crate::args::Target>,
    /// When it applies again: `cron(…)` or `rate(…)` (without one it applies once, at creation).
    #[arg(long)]
    pub schedule: Option<String>,
    /// A document parameter: `name=value`. Repeat a name to give a list; a value's commas stay in it.
    #[arg(long = "parameters", short = 'p', value_parser = parse_param)]
    pub parameters: Vec<(String, String)>,
    /// The association's name (AssociationName).
    #[arg(long)]
    pub name: Option<String>,
    /// The severity its compliance is reported with.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(SEVERITIES))]
    pub compliance_severity: Option<String>,
    /// Apply only at the schedule's times, not also at creation.
    #[arg(long)]
    pub apply_only_at_cron_interval: bool,
    /// Nodes applying it at once: a number or a percentage.
    #[arg(long)]
    pub max_concurrency: Option<String>,
    /// Errors after which it stops being applied: a number or a percentage.
    #[arg(long)]
    pub max_errors: Option<String>,
}

impl AssociationCreateArgs {
    /// The `Parameters` map: each name with its values, in the order given.
    pub fn parameter_map(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in &self.parameters {
            out.entry(k.clone()).or_default().push(v.clone());
        }
        out
    }
}

pub async fn run(ctx: &Ctx, args: &AssociationsArgs) -> Result<Exit, CliError> {
    let mut out = std::io::stdout();
    execute(ctx, args, &mut out).await
}

/// Runs the command, writing what stdout shows to `out`.
pub async fn execute(
    ctx: &Ctx,
    args: &AssociationsArgs,
    out: &mut dyn Write,
) -> Result<Exit, CliError> {
    match &args.command {
        None => list(ctx, &args.list, out).await,
        Some(AssociationsCommand::List(a)) => list(ctx, a, out).await,
        Some(AssociationsCommand::Show {
            association_id,
            executions,
        }) => show(ctx, association_id, *executions, out).await,
        Some(AssociationsCommand::Create(a)) => create(ctx, a, out).await,
        Some(AssociationsCommand::Delete { association_id }) => {
            delete(ctx, association_id, out).await
        }
        Some(AssociationsCommand::Run { association_ids }) => {
            start_once(ctx, association_ids, out).await
        }
    }
}

/// Targets as the flags take them: `tag:role=web InstanceIds=mi-1,mi-2`.
pub fn target_text(targets: &[Target]) -> String {
    let text = targets
        .iter()
        .map(|t| format!("{}={}", t.key().unwrap_or_default(), t.values().join(",")))
        .collect::<Vec<_>>()
        .join(" ");
    if text.is_empty() { "-".into() } else { text }
}

/// "Success 2, Failed 1", most first, then by name.
fn aggregated(counts: Option<&HashMap<String, i32>>) -> String {
    let mut v: Vec<(&String, &i32)> = counts.map(|c| c.iter().collect()).unwrap_or_default();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn overview_text(o: Option<&aws_sdk_ssm::types::AssociationOverview>) -> String {
    let Some(o) = o else {
        return "-".into();
    };
    let status = dash(o.status());
    let counts = aggregated(o.association_status_aggregated_count());
    if counts.is_empty() {
        status
    } else {
        format!("{status} ({counts})")
    }
}

fn overview_json(o: &aws_sdk_ssm::types::AssociationOverview) -> Value {
    let counts = o.association_status_aggregated_count().map(|m| {
        let sorted: BTreeMap<&String, &i32> = m.iter().collect();
        Value::Object(
            sorted
                .into_iter()
                .map(|(k, v)| (k.clone(), Value::from(*v)))
                .collect(),
        )
    });
    Obj::default()
        .s("Status", o.status())
        .s("DetailedStatus", o.detailed_status())
        .opt("AssociationStatusAggregatedCount", counts)
        .done()
}

pub fn association_json(a: &Association) -> Value {
    Obj::default()
        .s("Name", a.name())
        .s("InstanceId", a.instance_id())
        .s("AssociationId", a.association_id())
        .s("AssociationVersion", a.association_version())
        .s("DocumentVersion", a.document_version())
        .v("Targets", json_targets(a.targets()))
        .t("LastExecutionDate", a.last_execution_date())
        .opt("Overview", a.overview().map(overview_json))
        .s("ScheduleExpression", a.schedule_expression())
        .s("AssociationName", a.association_name())
        .opt("ScheduleOffset", a.schedule_offset())
        .done()
}

pub fn description_json(d: &AssociationDescription) -> Value {
    Obj::default()
        .s("Name", d.name())
        .s("InstanceId", d.instance_id())
        .s("AssociationVersion", d.association_version())
        .t("Date", d.date())
        .t(
            "LastUpdateAssociationDate",
            d.last_update_association_date(),
        )
        .opt("Overview", d.overview().map(overview_json))
        .s("DocumentVersion", d.document_version())
        .opt("Parameters", string_lists(d.parameters()))
        .s("AssociationId", d.association_id())
        .v("Targets", json_targets(d.targets()))
        .s("ScheduleExpression", d.schedule_expression())
        .t("LastExecutionDate", d.last_execution_date())
        .t(
            "LastSuccessfulExecutionDate",
            d.last_successful_execution_date(),
        )
        .s("AssociationName", d.association_name())
        .s("MaxErrors", d.max_errors())
        .s("MaxConcurrency", d.max_concurrency())
        .s(
            "ComplianceSeverity",
            d.compliance_severity().map(|s| s.as_str()),
        )
        .s("SyncCompliance", d.sync_compliance().map(|s| s.as_str()))
        .v("ApplyOnlyAtCronInterval", d.apply_only_at_cron_interval())
        .opt("ScheduleOffset", d.schedule_offset())
        .done()
}

pub fn execution_json(e: &AssociationExecution) -> Value {
    Obj::default()
        .s("AssociationId", e.association_id())
        .s("AssociationVersion", e.association_version())
        .s("ExecutionId", e.execution_id())
        .s("Status", e.status())
        .s("DetailedStatus", e.detailed_status())
        .t("CreatedTime", e.created_time())
        .t("LastExecutionDate", e.last_execution_date())
        .s("ResourceCountByStatus", e.resource_count_by_status())
        .done()
}

fn filters(args: &AssociationListArgs) -> Result<Vec<AssociationFilter>, CliError> {
    let mut out = Vec::new();
    for (key, value) in [
        (AssociationFilterKey::AssociationName, &args.name),
        (AssociationFilterKey::Name, &args.document),
    ] {
        if let Some(v) = value {
            out.push(
                AssociationFilter::builder()
                    .key(key)
                    .value(v)
                    .build()
                    .map_err(|e| CliError::Usage(format!("bad filter: {e}")))?,
            );
        }
    }
    Ok(out)
}

async fn list(
    ctx: &Ctx,
    args: &AssociationListArgs,
    out: &mut dyn Write,
) -> Result<Exit, CliError> {
    let filters = filters(args)?;
    let all = ctx
        .client
        .list_associations()
        .set_association_filter_list(if filters.is_empty() {
            None
        } else {
            Some(filters.clone())
        })
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| CliError::from_sdk("ListAssociations", e))?;
    if ctx.json {
        let list: Vec<Value> = all.iter().map(association_json).collect();
        emit_json(out, &json!({ "Associations": list }))?;
        return Ok(Exit::Ok);
    }
    emit(out, &list_table(&all, !filters.is_empty(), ctx.wide))?;
    Ok(Exit::Ok)
}

/// The table `associations` prints (or what to do when there is nothing).
pub fn list_table(all: &[Association], filtered: bool, wide: bool) -> String {
    if all.is_empty() {
        return if filtered {
            "No associations match; drop --name or --document to see them all.".into()
        } else {
            "No associations yet. Create one with `steward associations create --document AWS-RunShellScript --targets Key=tag:<key>,Values=<value> --parameters commands=<command>`.".into()
        };
    }
    let mut t = render::table(
        &[
            "Association",
            "Name",
            "Document",
            "Targets",
            "Schedule",
            "Status",
            "Last run",
        ],
        wide,
    );
    for a in all {
        let targets = if a.targets().is_empty() {
            a.instance_id()
                .map(|i| format!("InstanceIds={i}"))
                .unwrap_or_else(|| "-".into())
        } else {
            target_text(a.targets())
        };
        t.add_row(vec![
            dash(a.association_id()),
            dash(a.association_name()),
            dash(a.name()),
            targets,
            dash(a.schedule_expression()),
            overview_text(a.overview()),
            when(a.last_execution_date()),
        ]);
    }
    t.to_string()
}

async fn show(ctx: &Ctx, id: &str, executions: i32, out: &mut dyn Write) -> Result<Exit, CliError> {
    let described = ctx
        .client
        .describe_association()
        .association_id(id)
        .send()
        .await
        .map_err(|e| CliError::from_sdk("DescribeAssociation", e))?;
    let Some(d) = described.association_description else {
        return Err(CliError::Other {
            operation: "DescribeAssociation",
            detail: format!("the answer holds no AssociationDescription for {id}"),
        });
    };
    let recent = ctx
        .client
        .describe_association_executions()
        .association_id(id)
        .max_results(executions)
        .send()
        .await
        .map_err(|e| CliError::from_sdk("DescribeAssociationExecutions", e))?;
    let mut runs = recent.association_executions.unwrap_or_default();
    // Newest first, whatever order the page came in.
    render::newest_first(&mut runs, AssociationExecution::created_time);
    runs.truncate(executions as usize);
    if ctx.json {
        emit_json(
            out,
            &json!({
                "AssociationDescription": description_json(&d),
                "AssociationExecutions": runs.iter().map(execution_json).collect::<Vec<_>>(),
            }),
        )?;
        return Ok(Exit::Ok);
    }
    emit(out, &show_text(&d, &runs, ctx.wide))?;
    Ok(Exit::Ok)
}

/// `show`'s text: the association's settings, then its recent executions.
pub fn show_text(d: &AssociationDescription, runs: &[AssociationExecution], wide: bool) -> String {
    let id = d.association_id().unwrap_or_default();
    let document = match d.document_version() {
        Some(v) if !v.is_empty() => format!("{} (version {v})", dash(d.name())),
        _ => dash(d.name()),
    };
    let schedule = match d.schedule_expression() {
        Some(s) if !s.is_empty() => {
            if d.apply_only_at_cron_interval() {
                format!("{s}, only at its times")
            } else {
                format!("{s}, and at creation")
            }
        }
        _ => "none (applied at creation only)".into(),
    };
    let parameters = d
        .parameters()
        .map(|p| {
            let sorted: BTreeMap<&String, &Vec<String>> = p.iter().collect();
            sorted
                .into_iter()
                .map(|(k, v)| format!("{k}={}", v.join(",")))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".into());
    let rate = format!(
        "MaxConcurrency {}, MaxErrors {}",
        dash(d.max_concurrency()),
        dash(d.max_errors())
    );
    let last = match d.last_successful_execution_date() {
        Some(s) => format!(
            "{} (last success {})",
            when(d.last_execution_date()),
            when(Some(s))
        ),
        None => when(d.last_execution_date()),
    };
    let fields: [(&str, String); 11] = [
        ("Association", id.to_string()),
        ("Name", dash(d.association_name())),
        ("Document", document),
        ("Targets", target_text(d.targets())),
        ("Schedule", schedule),
        ("Parameters", parameters),
        (
            "Compliance",
            dash(d.compliance_severity().map(|s| s.as_str())),
        ),
        ("Rate control", rate),
        ("Status", overview_text(d.overview())),
        ("Created", when(d.date())),
        ("Last run", last),
    ];
    let mut text = render::fields(&fields, 13);
    text.push('\n');
    if runs.is_empty() {
        text.push_str(&format!(
            "No executions yet; apply it now with `steward associations run {id}`.\n"
        ));
        return text;
    }
    text.push_str("Recent executions:\n");
    let mut t = render::table(
        &[
            "Execution",
            "Version",
            "Status",
            "Details",
            "Nodes",
            "Created",
            "Last run",
        ],
        wide,
    );
    for e in runs {
        t.add_row(vec![
            dash(e.execution_id()),
            dash(e.association_version()),
            dash(e.status()),
            dash(e.detailed_status()),
            resource_counts(e.resource_count_by_status()),
            when(e.created_time()),
            when(e.last_execution_date()),
        ]);
    }
    text.push_str(&t.to_string());
    text
}

/// SSM's `{Success=1,Failed=1}` as "Success 1, Failed 1".
fn resource_counts(s: Option<&str>) -> String {
    let Some(s) = s.filter(|s| !s.is_empty()) else {
        return "-".into();
    };
    s.trim_matches(['{', '}'])
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.replacen('=', " ", 1))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn create(
    ctx: &Ctx,
    args: &AssociationCreateArgs,
    out: &mut dyn Write,
) -> Result<Exit, CliError> {
    let targets = args
        .targets
        .iter()
        .map(|t| {
            Target::builder()
                .key(&t.key)
                .set_values(Some(t.values.clone()))
                .build()
        })
        .collect::<Vec<_>>();
    let parameters: HashMap<String, Vec<String>> = args.parameter_map().into_iter().collect();
    let answer = ctx
        .client
        .create_association()
        .name(&args.document)
        .set_document_version(args.document_version.clone())
        .set_targets(Some(targets))
        .set_schedule_expression(args.schedule.clone())
        .set_parameters(if parameters.is_empty() {
            None
        } else {
            Some(parameters)
        })
        .set_association_name(args.name.clone())
        .set_compliance_severity(
            args.compliance_severity
                .as_deref()
                .map(AssociationComplianceSeverity::from),
        )
        .set_apply_only_at_cron_interval(args.apply_only_at_cron_interval.then_some(true))
        .set_max_concurrency(args.max_concurrency.clone())
        .set_max_errors(args.max_errors.clone())
        .send()
        .await
        .map_err(|e| CliError::from_sdk("CreateAssociation", e))?;
    let d = answer.association_description.unwrap_or_else(|| {
        AssociationDescription::builder()
            .name(&args.document)
            .build()
    });
    let id = d.association_id().unwrap_or_default().to_string();
    if ctx.json {
        emit_json(
            out,
            &json!({ "AssociationDescription": description_json(&d) }),
        )?;
    } else {
        // The id alone on stdout, for `id=$(steward associations create …)`.
        emit(out, &id)?;
        let when_ = if args.apply_only_at_cron_interval {
            "at its schedule's times"
        } else {
            "now on the nodes its targets match"
        };
        eprintln!(
            "steward: created association {id}; it applies {when_}; follow it with `steward associations show {id}`"
        );
    }
    Ok(Exit::Ok)
}

async fn delete(ctx: &Ctx, id: &str, out: &mut dyn Write) -> Result<Exit, CliError> {
    ctx.client
        .delete_association()
        .association_id(id)
        .send()
        .await
        .map_err(|e| CliError::from_sdk("DeleteAssociation", e))?;
    if ctx.json {
        emit_json(out, &json!({}))?;
    } else {
        emit(out, &format!("Association {id} deleted."))?;
    }
    Ok(Exit::Ok)
}

async fn start_once(ctx: &Ctx, ids: &[String], out: &mut dyn Write) -> Result<Exit, CliError> {
    ctx.client
        .start_associations_once()
        .set_association_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|e| CliError::from_sdk("StartAssociationsOnce", e))?;
    if ctx.json {
        emit_json(out, &json!({}))?;
    } else {
        for id in ids {
            emit(
                out,
                &format!(
                    "Association {id} applies now on its targets; follow it with `steward associations show {id}`."
                ),
            )?;
        }
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Command;
    use crate::fake_ssm::{self, Outcome, Reply, ctx, error, ok, ops};

    fn parse(args: &[&str]) -> Result<AssociationsArgs, clap::Error> {
        match fake_ssm::parse("associations", args)? {
            Command::Associations(a) => Ok(a),
            other => panic!("not associations: {other:?}"),
        }
    }

    async fn steward(args: &[&str], json: bool, replies: Vec<Reply>) -> Outcome {
        let cmd = parse(args).expect("arguments parse");
        fake_ssm::session(replies, async |fake, out| {
            execute(&ctx(fake, json), &cmd, out).await
        })
        .await
    }

    const ID: &str = "6f0bcb3c-0e1c-4b9e-9d2a-7a3b5d7e0001";
    const T0: f64 = 1_700_000_000.0;

    fn association(id: &str, name: &str, status: &str) -> Value {
        json!({
            "Name": "AWS-RunShellScript",
            "AssociationId": id,
            "AssociationVersion": "1",
            "Targets": [{ "Key": "tag:role", "Values": ["web"] }],
            "LastExecutionDate": T0,
            "Overview": {
                "Status": status,
                "DetailedStatus": status,
                "AssociationStatusAggregatedCount": { status: 2 },
            },
            "ScheduleExpression": "cron(0 2 ? * * *)",
            "AssociationName": name,
        })
    }

    fn description() -> Value {
        json!({
            "Name": "AWS-RunShellScript",
            "AssociationVersion": "1",
            "Date": T0,
            "LastUpdateAssociationDate": T0,
            "Overview": { "Status": "Failed", "DetailedStatus": "Failed",
                          "AssociationStatusAggregatedCount": { "Failed": 1, "Success": 1 } },
            "DocumentVersion": "$DEFAULT",
            "Parameters": { "commands": ["exit 3"] },
            "AssociationId": ID,
            "Targets": [{ "Key": "tag:role", "Values": ["web"] }],
            "ScheduleExpression": "cron(0 2 ? * * *)",
            "LastExecutionDate": T0 + 60.0,
            "LastSuccessfulExecutionDate": T0,
            "AssociationName": "nightly",
            "MaxErrors": "0",
            "MaxConcurrency": "50",
            "ComplianceSeverity": "HIGH",
            "SyncCompliance": "AUTO",
            "ApplyOnlyAtCronInterval": true,
        })
    }

    fn execution(n: u32, status: &str, counts: &str) -> Value {
        json!({
            "AssociationId": ID,
            "AssociationVersion": "1",
            "ExecutionId": format!("e0000000-0000-4000-8000-00000000000{n}"),
            "Status": status,
            "DetailedStatus": status,
            "CreatedTime": T0 + f64::from(n) * 60.0,
            "LastExecutionDate": T0 + f64::from(n) * 60.0 + 5.0,
            "ResourceCountByStatus": counts,
        })
    }

    #[test]
    fn create_takes_the_aws_cli_target_form_and_repeated_parameters() {
        let a = parse(&[
            "create",
            "--document",
            "AWS-RunShellScript",
            "--targets",
            "Key=tag:role,Values=web",
            "--schedule",
            "cron(0 2 ? * * *)",
            "--parameters",
            "commands=echo a, b",
            "--parameters",
            "commands=exit 3",
            "--name",
            "nightly",
            "--compliance-severity",
            "HIGH",
            "--apply-only-at-cron-interval",
        ])
        .unwrap();
        let Some(AssociationsCommand::Create(c)) = a.command else {
            panic!("not create")
        };
        assert_eq!(c.targets[0].key, "tag:role");
        assert_eq!(c.targets[0].values, vec!["web"]);
        assert_eq!(
            c.parameter_map().get("commands").unwrap(),
            &vec!["echo a, b".to_string(), "exit 3".to_string()]
        );
        assert!(c.apply_only_at_cron_interval);
        assert_eq!(c.compliance_severity.as_deref(), Some("HIGH"));
    }

    #[test]
    fn malformed_arguments_are_usage_errors() {
        // No targets.
        assert!(parse(&["create", "--document", "AWS-RunShellScript"]).is_err());
        // No document.
        assert!(parse(&["create", "--targets", "tag:role=web"]).is_err());
        // An unknown severity.
        let e = parse(&[
            "create",
            "--document",
            "D",
            "--targets",
            "tag:role=web",
            "--compliance-severity",
            "SEVERE",
        ])
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("HIGH"), "{e}");
        // A parameter without `=`.
        assert!(
            parse(&[
                "create",
                "--document",
                "D",
                "--targets",
                "tag:role=web",
                "--parameters",
                "commands"
            ])
            .is_err()
        );
        // run needs an id.
        assert!(parse(&["run"]).is_err());
        // Listing flags do not mix with a subcommand.
        assert!(parse(&["--name", "x", "delete", ID]).is_err());
    }

    #[tokio::test]
    async fn the_bare_command_lists_every_page_in_a_table() {
        let (result, out, requests) = steward(
            &[],
            false,
            vec![
                ok(json!({ "Associations": [association("a-1", "nightly", "Success")], "NextToken": "p2" })),
                ok(json!({ "Associations": [association("a-2", "", "Failed")] })),
            ],
        )
        .await;
        assert_eq!(result.unwrap(), Exit::Ok);
        assert_eq!(
            ops(&requests),
            vec![
                ("ListAssociations", json!({})),
                ("ListAssociations", json!({ "NextToken": "p2" })),
            ]
        );
        let expected = "\
┌─────────────┬─────────┬────────────────────┬──────────────┬───────────────────┬─────────────────────┬──────────────────────┐
│ Association ┆ Name    ┆ Document           ┆ Targets      ┆ Schedule          ┆ Status              ┆ Last run             │
╞═════════════╪═════════╪════════════════════╪══════════════╪═══════════════════╪═════════════════════╪══════════════════════╡
│ a-1         ┆ nightly ┆ AWS-RunShellScript ┆ tag:role=web ┆ cron(0 2 ? * * *) ┆ Success (Success 2) ┆ 2023-11-14T22:13:20Z │
│ a-2         ┆ -       ┆ AWS-RunShellScript ┆ tag:role=web ┆ cron(0 2 ? * * *) ┆ Failed (Failed 2)   ┆ 2023-11-14T22:13:20Z │
└─────────────┴─────────┴────────────────────┴──────────────┴───────────────────┴─────────────────────┴──────────────────────┘
";
        assert_eq!(out, expected);
    }

    #[tokio::test]
    async fn list_filters_by_name_and_document_and_json_is_the_api_shape() {
        let (result, out, requests) = steward(
            &[
                "list",
                "--name",
                "nightly",
                "--document",
                "AWS-RunShellScript",
            ],
            true,
            vec![ok(
                json!({ "Associations": [association("a-1", "nightly", "Success")] }),
            )],
        )
        .await;
        assert_eq!(result.unwrap(), Exit::Ok);
        assert_eq!(
            requests[0].body,
            json!({ "AssociationFilterList": [
                { "key": "AssociationName", "value": "nightly" },
                { "key": "Name", "value": "AWS-RunShellScript" },
            ] })
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v,
            json!({ "Associations": [association("a-1", "nightly", "Success")] })
        );
    }

    #[tokio::test]
    async fn an_empty_list_says_what_to_do() {
        let empty = || ok(json!({ "Associations": [] }));
        let (_, out, _) = steward(&[], false, vec![empty()]).await;
        assert!(out.contains("steward associations create"), "{out}");
        let (_, out, _) = steward(&["--name", "x"], false, vec![empty()]).await;
        assert!(out.contains("drop --name"), "{out}");
    }

    #[tokio::test]
    async fn create_sends_what_the_flags_say_and_prints_the_id() {
        let (result, out, requests) = steward(
            &[
                "create",
                "--document",
                "AWS-RunShellScript",
                "--targets",
                "Key=tag:role,Values=web",
                "--schedule",
                "cron(0 2 ? * * *)",
                "--parameters",
                "commands=exit 3",
                "--name",
                "nightly",
                "--compliance-severity",
                "HIGH",
                "--apply-only-at-cron-interval",
                "--max-concurrency",
                "50",
                "--max-errors",
                "0",
            ],
            false,
            vec![ok(json!({ "AssociationDescription": description() }))],
        )
        .await;
        assert_eq!(result.unwrap(), Exit::Ok);
        assert_eq!(requests[0].operation, "CreateAssociation");
        assert_eq!(
            requests[0].body,
            json!({
                "Name": "AWS-RunShellScript",
                "Targets": [{ "Key": "tag:role", "Values": ["web"] }],
                "ScheduleExpression": "cron(0 2 ? * * *)",
                "Parameters": { "commands": ["exit 3"] },
                "AssociationName": "nightly",
                "ComplianceSeverity": "HIGH",
                "ApplyOnlyAtCronInterval": true,
                "MaxConcurrency": "50",
                "MaxErrors": "0",
            })
        );
        assert_eq!(out, format!("{ID}\n"));
    }

    #[tokio::test]
    async fn a_minimal_create_sends_no_optional_field_and_json_is_the_description() {
        let (result, out, requests) = steward(
            &["create", "--document", "D", "--targets", "tag:role=web"],
            true,
            vec![ok(json!({ "AssociationDescription": description() }))],
        )
        .await;
        assert_eq!(result.unwrap(), Exit::Ok);
        assert_eq!(
            requests[0].body,
            json!({ "Name": "D", "Targets": [{ "Key": "tag:role", "Values": ["web"] }] })
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v, json!({ "AssociationDescription": description() }));
    }

    #[tokio::test]
    async fn a_refused_create_says_what_to_do() {
        let (result, out, _) = steward(
            &[
                "create",
                "--document",
                "AWS-RunShellScript",
                "--targets",
                "tag:role=web",
                "--schedule",
                "cron(0/5 * * * ? *)",
            ],
            false,
            vec![error("InvalidSchedule", "the schedule runs too often")],
        )
        .await;
        let e = result.unwrap_err();
        assert!(out.is_empty());
        assert!(matches!(&e, CliError::Api { code, .. } if code == "InvalidSchedule"));
        assert!(e.hint().unwrap().contains("cron("), "{:?}", e.hint());
        assert_eq!(e.exit(), Exit::Error);
    }

    #[tokio::test]
    async fn show_prints_the_settings_and_the_newest_executions_first() {
        let (result, out, requests) = steward(
            &["show", ID, "--executions", "2"],
            false,
            vec![
                ok(json!({ "AssociationDescription": description() })),
                ok(json!({ "AssociationExecutions": [
                    execution(1, "Success", "{Success=1}"),
                    execution(2, "Failed", "{Failed=1,Success=1}"),
                ] })),
            ],
        )
        .await;
        assert_eq!(result.unwrap(), Exit::Ok);
        assert_eq!(
            ops(&requests),
            vec![
                ("DescribeAssociation", json!({ "AssociationId": ID })),
                (
                    "DescribeAssociationExecutions",
                    json!({ "AssociationId": ID, "MaxResults": 2 })
                ),
            ]
        );
        for line in [
            format!("Association  {ID}"),
            "Name         nightly".into(),
            "Document     AWS-RunShellScript (version $DEFAULT)".into(),
            "Targets      tag:role=web".into(),
            "Schedule     cron(0 2 ? * * *), only at its times".into(),
            "Parameters   commands=exit 3".into(),
            "Compliance   HIGH".into(),
            "Rate control MaxConcurrency 50, MaxErrors 0".into(),
            "Status       Failed (Failed 1, Success 1)".into(),
            "Last run     2023-11-14T22:14:20Z (last success 2023-11-14T22:13:20Z)".into(),
        ] {
            assert!(out.contains(&line), "{line:?} in\n{out}");
        }
        let failed = out
            .find("Failed 1, Success 1 ┆")
            .expect("the failed run's row");
        let succeeded = out.find("┆ Success 1 ").expect("the successful run's row");
        assert!(failed < succeeded, "newest first:\n{out}");
    }

    #[tokio::test]
    async fn show_json_holds_the_description_and_executions() {
        let (result, out, _) = steward(
            &["show", ID],
            true,
            vec![
                ok(json!({ "AssociationDescription": description() })),
                ok(json!({ "AssociationExecutions": [] })),
            ],
        )
        .await;
        assert_eq!(result.unwrap(), Exit::Ok);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v,
            json!({ "AssociationDescription": description(), "AssociationExecutions": [] })
        );
    }

    #[tokio::test]
    async fn show_of_an_unknown_id_says_how_to_list() {
        let (result, _, _) = steward(
            &["show", "nope"],
            false,
            vec![error("AssociationDoesNotExist", "no association nope")],
        )
        .await;
        let e = result.unwrap_err();
        assert!(e.hint().unwrap().contains("steward associations"));
    }

    #[tokio::test]
    async fn delete_and_run_send_their_requests() {
        let (result, out, requests) = steward(&["delete", ID], false, vec![ok(json!({}))]).await;
        assert_eq!(result.unwrap(), Exit::Ok);
        assert_eq!(requests[0].operation, "DeleteAssociation");
        assert_eq!(requests[0].body, json!({ "AssociationId": ID }));
        assert_eq!(out, format!("Association {ID} deleted.\n"));

        let (result, out, requests) =
            steward(&["run", ID, "a-2"], false, vec![ok(json!({}))]).await;
        assert_eq!(result.unwrap(), Exit::Ok);
        assert_eq!(requests[0].operation, "StartAssociationsOnce");
        assert_eq!(requests[0].body, json!({ "AssociationIds": [ID, "a-2"] }));
        assert!(
            out.contains(&format!("steward associations show {ID}")),
            "{out}"
        );
    }

    #[test]
    fn resource_counts_read_ssms_braces() {
        assert_eq!(
            resource_counts(Some("{Failed=1,Success=2}")),
            "Failed 1, Success 2"
        );
        assert_eq!(resource_counts(Some("")), "-");
        assert_eq!(resource_counts(None), "-");
    }
}
