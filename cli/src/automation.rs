//! `steward automation …`: runbook executions over SSM's Automation API —
//! start, list, show (following the steps live until the execution ends),
//! approve, reject, resume and stop.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write;
use std::time::{Duration, Instant};

use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{
    AutomationExecution, AutomationExecutionFilter, AutomationExecutionFilterKey,
    AutomationExecutionMetadata, SignalType, StepExecution, StopType,
};
use serde_json::{Value, json};

use crate::args::{AutomationCommand, AutomationListArgs, AutomationShowArgs, AutomationStartArgs};
use crate::commands::{Ctx, when};
use crate::error::{CliError, Exit};
use crate::json;
use crate::render::{self, dash, emit, emit_json};

/// Time between two looks at an execution that `show` follows.
const POLL: Duration = Duration::from_secs(2);
/// DescribeAutomationExecutions' largest page.
const MAX_PAGE: u32 = 50;

/// Whether an execution (or step) status is one it ends in.
pub fn is_final(status: &str) -> bool {
    matches!(status, "Success" | "Failed" | "TimedOut" | "Cancelled")
}

/// The exit code for an execution: 1 when it ended other than in Success.
fn exit_for(status: &str) -> Exit {
    if is_final(status) {
        Exit::for_command_status(status)
    } else {
        Exit::Ok
    }
}

pub async fn run(ctx: &Ctx, cmd: &AutomationCommand) -> Result<Exit, CliError> {
    let mut out = std::io::stdout();
    execute(ctx, cmd, POLL, &mut out).await
}

/// Runs `cmd`, writing what stdout shows to `out`.
pub async fn execute(
    ctx: &Ctx,
    cmd: &AutomationCommand,
    poll: Duration,
    out: &mut dyn Write,
) -> Result<Exit, CliError> {
    match cmd {
        AutomationCommand::Start(a) => start(ctx, a, out).await,
        AutomationCommand::List(a) => list(ctx, a, out).await,
        AutomationCommand::Show(a) => show(ctx, a, poll, out).await,
        AutomationCommand::Approve {
            execution_id,
            comment,
        } => {
            signal(
                ctx,
                execution_id,
                SignalType::Approve,
                comment.as_deref(),
                out,
            )
            .await
        }
        AutomationCommand::Reject {
            execution_id,
            comment,
        } => {
            signal(
                ctx,
                execution_id,
                SignalType::Reject,
                comment.as_deref(),
                out,
            )
            .await
        }
        AutomationCommand::Resume { execution_id } => {
            signal(ctx, execution_id, SignalType::Resume, None, out).await
        }
        AutomationCommand::Stop { execution_id } => stop(ctx, execution_id, out).await,
    }
}

/// The user name of an ARN such as `arn:aws:iam::123456789012:user/alice`.
fn who(arn: Option<&str>) -> String {
    match arn {
        Some(a) => a
            .rsplit_once(":user/")
            .map(|(_, n)| n.rsplit('/').next().unwrap_or(n))
            .unwrap_or(a)
            .to_string(),
        None => "-".into(),
    }
}

async fn start(
    ctx: &Ctx,
    args: &AutomationStartArgs,
    out: &mut dyn Write,
) -> Result<Exit, CliError> {
    let parameters: HashMap<String, Vec<String>> = args.parameters().into_iter().collect();
    let answer = ctx
        .client
        .start_automation_execution()
        .document_name(&args.name)
        .set_document_version(args.version.clone())
        .set_parameters(if parameters.is_empty() {
            None
        } else {
            Some(parameters)
        })
        .set_client_token(args.client_token.clone())
        .send()
        .await
        .map_err(|e| CliError::from_sdk("StartAutomationExecution", e))?;
    let id = answer.automation_execution_id().unwrap_or_default();
    if ctx.json {
        emit_json(out, &json!({ "AutomationExecutionId": id }))?;
    } else {
        // The id alone on stdout, for `id=$(steward automation start …)`.
        emit(out, id)?;
        eprintln!(
            "steward: started {} as execution {id}; follow it with `steward automation show {id}`",
            args.name
        );
    }
    Ok(Exit::Ok)
}

/// The filters `list` sends.
fn list_filters(args: &AutomationListArgs) -> Result<Vec<AutomationExecutionFilter>, CliError> {
    let mut filters = Vec::new();
    if !args.statuses.is_empty() {
        filters.push((
            AutomationExecutionFilterKey::ExecutionStatus,
            args.statuses.clone(),
        ));
    }
    if let Some(prefix) = &args.document {
        filters.push((
            AutomationExecutionFilterKey::DocumentNamePrefix,
            vec![prefix.clone()],
        ));
    }
    filters
        .into_iter()
        .map(|(key, values)| {
            AutomationExecutionFilter::builder()
                .key(key)
                .set_values(Some(values))
                .build()
                .map_err(|e| CliError::Usage(format!("bad filter: {e}")))
        })
        .collect()
}

async fn list(ctx: &Ctx, args: &AutomationListArgs, out: &mut dyn Write) -> Result<Exit, CliError> {
    let filters = list_filters(args)?;
    let max = args.max as usize;
    let mut all: Vec<AutomationExecutionMetadata> = Vec::new();
    let mut token: Option<String> = None;
    // Not the SDK's paginator: each page asks for only what --max still
    // wants, and the paginator sends one MaxResults for every page.
    loop {
        let page = u32::try_from(max - all.len())
            .unwrap_or(MAX_PAGE)
            .min(MAX_PAGE);
        let answer = ctx
            .client
            .describe_automation_executions()
            .set_filters(if filters.is_empty() {
                None
            } else {
                Some(filters.clone())
            })
            .max_results(page as i32)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| CliError::from_sdk("DescribeAutomationExecutions", e))?;
        all.extend(
            answer
                .automation_execution_metadata_list
                .unwrap_or_default(),
        );
        token = answer.next_token.filter(|t| !t.is_empty());
        if all.len() >= max || token.is_none() {
            break;
        }
    }
    all.truncate(max);
    if ctx.json {
        let list: Vec<Value> = all.iter().map(json::automation_metadata).collect();
        emit_json(out, &json!({ "AutomationExecutionMetadataList": list }))?;
        return Ok(Exit::Ok);
    }
    emit(out, &list_table(&all, !filters.is_empty(), ctx.wide))?;
    Ok(Exit::Ok)
}

/// The table `list` prints (or what to do when there is nothing to list).
pub fn list_table(all: &[AutomationExecutionMetadata], filtered: bool, wide: bool) -> String {
    if all.is_empty() {
        return if filtered {
            "No automation executions match; drop --status or --document to see them all.".into()
        } else {
            "No automation executions yet. Start one with `steward automation start <runbook> --param <name>=<value>`.".into()
        };
    }
    let mut t = render::table(
        &[
            "Execution",
            "Runbook",
            "Version",
            "Status",
            "Current step",
            "Started",
            "Ended",
            "By",
        ],
        wide,
    );
    for m in all {
        let status = m
            .automation_execution_status()
            .map(|s| s.as_str())
            .unwrap_or("Pending");
        t.add_row(vec![
            dash(m.automation_execution_id()),
            dash(m.document_name()),
            dash(m.document_version()),
            status.to_string(),
            if is_final(status) {
                "-".into()
            } else {
                dash(m.current_step_name())
            },
            when(m.execution_start_time()),
            when(m.execution_end_time()),
            who(m.executed_by()),
        ]);
    }
    t.to_string()
}

async fn get(client: &Client, id: &str) -> Result<AutomationExecution, CliError> {
    let answer = client
        .get_automation_execution()
        .automation_execution_id(id)
        .send()
        .await
        .map_err(|e| CliError::from_sdk("GetAutomationExecution", e))?;
    answer.automation_execution.ok_or_else(|| CliError::Other {
        operation: "GetAutomationExecution",
        detail: "the answer has no AutomationExecution".into(),
    })
}

fn status_of(e: &AutomationExecution) -> &str {
    e.automation_execution_status()
        .map(|s| s.as_str())
        .unwrap_or("Pending")
}

fn step_status(s: &StepExecution) -> &str {
    s.step_status().map(|s| s.as_str()).unwrap_or("Pending")
}

/// What a waiting execution waits for, and the command that ends the wait.
fn waiting_hint(e: &AutomationExecution) -> Option<String> {
    if status_of(e) != "Waiting" {
        return None;
    }
    let id = e.automation_execution_id().unwrap_or_default();
    let step = e.current_step_name().unwrap_or("its current step");
    Some(match e.current_action() {
        Some("aws:approve") => format!(
            "step {step} waits for approval: `steward automation approve {id}` or `steward automation reject {id}`"
        ),
        Some("aws:pause") => {
            format!("step {step} is paused: `steward automation resume {id}` goes on")
        }
        _ => format!("step {step} is waiting"),
    })
}

/// A message on one line: its lines joined by spaces.
fn one_line(m: &str) -> String {
    m.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Values as one line: `a, b`.
fn values(v: &[String]) -> String {
    v.join(", ")
}

fn sorted<V>(m: Option<&HashMap<String, V>>) -> BTreeMap<&String, &V> {
    m.map(|m| m.iter().collect()).unwrap_or_default()
}

/// A step's details cell: why it failed, else its outputs.
fn step_details(s: &StepExecution) -> String {
    if let Some(m) = s.failure_message().filter(|m| !m.is_empty()) {
        return render::first_lines(m, render::PREVIEW_LINES);
    }
    let lines: Vec<String> = sorted(s.outputs())
        .into_iter()
        .map(|(k, v)| format!("{k}: {}", render::first_lines(&values(v), 1)))
        .collect();
    render::first_lines(&lines.join("\n"), render::PREVIEW_LINES)
}

/// An execution for people: a heading, a row per step, its failure and outputs.
pub fn execution_text(e: &AutomationExecution, wide: bool) -> String {
    let status = status_of(e);
    let mut text = format!(
        "Execution {} of {} (version {}): {status}\nStarted {}, ended {}, by {}\n",
        dash(e.automation_execution_id()),
        dash(e.document_name()),
        dash(e.document_version()),
        when(e.execution_start_time()),
        when(e.execution_end_time()),
        who(e.executed_by()),
    );
    let steps = e.step_executions();
    if steps.is_empty() {
        text.push_str("No step has started yet.\n");
    } else {
        let mut t = render::table(
            &[
                "#", "Step", "Action", "Status", "Started", "Ended", "Details",
            ],
            wide,
        );
        for (i, s) in steps.iter().enumerate() {
            t.add_row(vec![
                (i + 1).to_string(),
                dash(s.step_name()),
                dash(s.action()),
                step_status(s).to_string(),
                when(s.execution_start_time()),
                when(s.execution_end_time()),
                step_details(s),
            ]);
        }
        text.push_str(&t.to_string());
        text.push('\n');
    }
    if let Some(m) = e.failure_message().filter(|m| !m.is_empty()) {
        let _ = writeln!(text, "Failure: {m}");
    }
    let outputs = sorted(e.outputs());
    if !outputs.is_empty() {
        text.push_str("Outputs:\n");
        for (k, v) in outputs {
            let _ = writeln!(text, "  {k}: {}", values(v));
        }
    }
    if let Some(h) = waiting_hint(e) {
        let _ = writeln!(text, "next: {h}");
    }
    text
}

/// How `show` prints an execution it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// A terminal: the whole view, redrawn in place when it changes.
    Redraw,
    /// Not a terminal: one line per change of a step or of the execution.
    Lines,
    /// `-o json`: nothing until the end.
    Quiet,
}

/// What has been printed of an execution that is followed.
#[derive(Debug, Default)]
struct Printed {
    /// Redraw: the view on screen, its height in rows, and the terminal's
    /// width (when known), at which longer lines wrap.
    view: String,
    height: usize,
    width: Option<u16>,
    /// Lines: the status last printed of the execution and of each step.
    execution: Option<String>,
    steps: HashMap<String, String>,
}

impl Printed {
    /// The lines that say what changed since the last look.
    fn changes(&mut self, e: &AutomationExecution) -> Vec<String> {
        let mut lines = Vec::new();
        let id = e.automation_execution_id().unwrap_or_default();
        let status = status_of(e);
        // Steps before the execution's end, so the last line is its end.
        for (i, s) in e.step_executions().iter().enumerate() {
            let name = s.step_name().unwrap_or_default();
            let key = s
                .step_execution_id()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{i}/{name}"));
            let st = step_status(s);
            if self.steps.get(&key).map(String::as_str) == Some(st) {
                continue;
            }
            self.steps.insert(key, st.to_string());
            let mut line = format!(
                "step {} {name} ({}): {st}",
                i + 1,
                s.action().unwrap_or("-")
            );
            if let Some(m) = s.failure_message().filter(|m| !m.is_empty()) {
                let _ = write!(line, ": {}", one_line(m));
            }
            lines.push(line);
        }
        if self.execution.as_deref() != Some(status) {
            self.execution = Some(status.to_string());
            let mut line = format!("execution {id}: {status}");
            if let Some(h) = waiting_hint(e) {
                let _ = write!(line, "; {h}");
            }
            if let Some(m) = e.failure_message().filter(|m| !m.is_empty()) {
                let _ = write!(line, ": {}", one_line(m));
            }
            lines.push(line);
            if is_final(status) {
                for (k, v) in sorted(e.outputs()) {
                    lines.push(format!("output {k}: {}", values(v)));
                }
            }
        }
        lines
    }

    /// Prints the view, over the one printed before when it changed.
    fn redraw(&mut self, out: &mut dyn Write, view: String) -> Result<(), CliError> {
        if view == self.view {
            return Ok(());
        }
        if self.height > 0 {
            // Up to the first line of the old view, then clear to the end.
            write!(out, "\x1b[{}A\x1b[J", self.height)?;
        }
        emit(out, &view)?;
        self.height = rows(&view, self.width);
        self.view = view;
        Ok(())
    }
}

/// The terminal rows `text` takes: a line longer than `width` wraps.
fn rows(text: &str, width: Option<u16>) -> usize {
    text.lines()
        .map(|l| match width {
            Some(w) if w > 0 => l.chars().count().div_ceil(usize::from(w)).max(1),
            _ => 1,
        })
        .sum()
}

/// Follows an execution until it ends, printing as `mode` says; gives up
/// after `timeout` with an error that says how to look again.
pub async fn follow(
    client: &Client,
    id: &str,
    mode: Follow,
    wide: bool,
    poll: Duration,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<AutomationExecution, CliError> {
    let begun = Instant::now();
    let mut printed = Printed {
        // Only a view fitted to the terminal is measured against its width.
        width: if mode == Follow::Redraw && wide {
            comfy_table::Table::new().width()
        } else {
            None
        },
        ..Printed::default()
    };
    loop {
        let e = get(client, id).await?;
        match mode {
            Follow::Redraw => printed.redraw(out, execution_text(&e, wide))?,
            Follow::Lines => {
                for line in printed.changes(&e) {
                    emit(out, &line)?;
                }
            }
            Follow::Quiet => {}
        }
        let status = status_of(&e);
        if is_final(status) {
            return Ok(e);
        }
        if begun.elapsed() >= timeout {
            return Err(CliError::StillRunning {
                id: id.to_string(),
                status: status.to_string(),
                waited: timeout.as_secs(),
            });
        }
        tokio::time::sleep(poll).await;
    }
}

async fn show(
    ctx: &Ctx,
    args: &AutomationShowArgs,
    poll: Duration,
    out: &mut dyn Write,
) -> Result<Exit, CliError> {
    let id = args.execution_id.as_str();
    let e = if args.no_wait {
        let e = get(&ctx.client, id).await?;
        if !ctx.json {
            emit(out, &execution_text(&e, ctx.wide))?;
        }
        e
    } else {
        let mode = match (ctx.json, ctx.stdout_is_terminal) {
            (true, _) => Follow::Quiet,
            (false, true) => Follow::Redraw,
            (false, false) => Follow::Lines,
        };
        if mode == Follow::Redraw {
            eprintln!(
                "steward: following execution {id} (Ctrl-C stops following, not the execution)"
            );
        }
        let timeout = Duration::from_secs(args.timeout);
        follow(&ctx.client, id, mode, ctx.wide, poll, timeout, out).await?
    };
    if ctx.json {
        emit_json(
            out,
            &json!({ "AutomationExecution": json::automation_execution(&e) }),
        )?;
    }
    Ok(exit_for(status_of(&e)))
}

async fn signal(
    ctx: &Ctx,
    id: &str,
    kind: SignalType,
    comment: Option<&str>,
    out: &mut dyn Write,
) -> Result<Exit, CliError> {
    let mut req = ctx
        .client
        .send_automation_signal()
        .automation_execution_id(id)
        .signal_type(kind.clone());
    if let Some(c) = comment {
        req = req.payload("Comment", vec![c.to_string()]);
    }
    req.send()
        .await
        .map_err(|e| CliError::from_sdk("SendAutomationSignal", e))?;
    if ctx.json {
        return emit_json(out, &json!({})).map(|()| Exit::Ok);
    }
    let done = match kind {
        SignalType::Approve => "Approved",
        SignalType::Reject => "Rejected",
        SignalType::Resume => "Resumed",
        _ => "Signalled",
    };
    emit(
        out,
        &format!("{done} execution {id}; follow it with `steward automation show {id}`."),
    )?;
    Ok(Exit::Ok)
}

async fn stop(ctx: &Ctx, id: &str, out: &mut dyn Write) -> Result<Exit, CliError> {
    ctx.client
        .stop_automation_execution()
        .automation_execution_id(id)
        .r#type(StopType::Cancel)
        .send()
        .await
        .map_err(|e| CliError::from_sdk("StopAutomationExecution", e))?;
    if ctx.json {
        return emit_json(out, &json!({})).map(|()| Exit::Ok);
    }
    emit(
        out,
        &format!(
            "Stop of execution {id} requested: its running step is cancelled and it ends Cancelled; follow it with `steward automation show {id}`."
        ),
    )?;
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use crate::fake_ssm::{self, Outcome, Reply, error, ok};

    fn parse(args: &[&str]) -> Result<AutomationCommand, clap::Error> {
        match fake_ssm::parse("automation", args)? {
            Command::Automation(a) => Ok(a),
            other => panic!("not automation: {other:?}"),
        }
    }

    /// Runs `args` against a server that answers `replies`: the exit (or
    /// error), what stdout showed, and the requests sent.
    async fn steward(args: &[&str], json: bool, terminal: bool, replies: Vec<Reply>) -> Outcome {
        let cmd = parse(args).expect("arguments parse");
        fake_ssm::session(replies, async |fake, out| {
            let ctx = Ctx {
                stdout_is_terminal: terminal,
                ..fake_ssm::ctx(fake, json)
            };
            execute(&ctx, &cmd, Duration::ZERO, out).await
        })
        .await
    }

    const ID: &str = "8a1c3e5f-0000-4000-8000-00000000abcd";
    const TOKEN: &str = "3f2504e0-4f89-41d3-9a0c-0305E82C3301";
    const T0: f64 = 1_700_000_000.0;

    fn step(n: u32, name: &str, action: &str, status: &str) -> Value {
        let mut s = json!({
            "StepName": name,
            "Action": action,
            "StepStatus": status,
            "StepExecutionId": format!("step-{n}"),
            "ExecutionStartTime": T0 + f64::from(n) * 60.0,
            "Inputs": {},
            "Outputs": {},
            "MaxAttempts": 1,
            "IsEnd": false,
            "IsCritical": true,
            "OnFailure": "Abort",
        });
        if is_final(status) {
            s["ExecutionEndTime"] = json!(T0 + f64::from(n) * 60.0 + 30.0);
        }
        s
    }

    /// GetAutomationExecution's answer, as the control plane's view writes it.
    fn get_answer(status: &str, steps: Vec<Value>) -> Value {
        let current = steps
            .iter()
            .rev()
            .find(|s| !is_final(s["StepStatus"].as_str().unwrap_or("")));
        let mut e = json!({
            "AutomationExecutionId": ID,
            "DocumentName": "Steward-RestartService",
            "DocumentVersion": "1",
            "AutomationExecutionStatus": status,
            "ExecutedBy": "arn:aws:iam::123456789012:user/alice",
            "Mode": "Auto",
            "Outputs": {},
            "ExecutionStartTime": T0,
            "Parameters": { "InstanceId": ["mi-0123456789abcdef0"], "ServiceName": ["nginx"] },
            "StepExecutions": steps,
            "StepExecutionsTruncated": false,
        });
        if let Some(c) = current {
            e["CurrentStepName"] = c["StepName"].clone();
            e["CurrentAction"] = c["Action"].clone();
        }
        if is_final(status) {
            e["ExecutionEndTime"] = json!(T0 + 600.0);
        }
        json!({ "AutomationExecution": e })
    }

    fn with(mut v: Value, path: &[&str], value: Value) -> Value {
        let mut at = &mut v;
        for p in path {
            at = match at {
                Value::Array(a) => &mut a[p.parse::<usize>().expect("index")],
                other => &mut other[*p],
            };
        }
        *at = value;
        v
    }

    #[test]
    fn a_redraw_counts_the_rows_that_long_lines_wrap_into() {
        assert_eq!(rows("abc\n\nde", None), 3);
        assert_eq!(rows("abcdefghij\nabc\n", Some(4)), 4);
        assert_eq!(rows("┌──┐\n", Some(4)), 1);
    }

    #[test]
    fn the_command_tree_is_well_formed() {
        // clap checks its definitions only when a (sub)command is built:
        // `start --version` must not collide with the global --version.
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn params_repeat_into_lists_and_keep_their_commas() {
        let AutomationCommand::Start(a) = parse(&[
            "start",
            "Steward-RestartService",
            "--param",
            "InstanceId=mi-1",
            "-p",
            "InstanceId=mi-2",
            "--param",
            "Commands=echo a,b",
            "--param",
            "Expr=x=y",
            "--param",
            "Empty=",
            "--version",
            "$LATEST",
            "--client-token",
            TOKEN,
        ])
        .unwrap() else {
            panic!("not start")
        };
        let p = a.parameters();
        assert_eq!(p["InstanceId"], vec!["mi-1", "mi-2"]);
        assert_eq!(p["Commands"], vec!["echo a,b"]);
        assert_eq!(p["Expr"], vec!["x=y"]);
        assert_eq!(p["Empty"], vec![""]);
        assert_eq!(a.version.as_deref(), Some("$LATEST"));
        assert_eq!(a.client_token.as_deref(), Some(TOKEN));
    }

    #[test]
    fn malformed_arguments_are_usage_errors() {
        for bad in [
            &["start", "R", "--param", "novalue"][..],
            &["start", "R", "--param", "=v"],
            &["start", "R", "--client-token", "t-1"],
            &[
                "start",
                "R",
                "--client-token",
                "3f2504e0-4f89-41d3-9a0c-0305e82c330",
            ],
            &[
                "start",
                "R",
                "--client-token",
                "3f2504e0-4f89-41d3-9a0c-0305e82c330g",
            ],
            &[
                "start",
                "R",
                "--client-token",
                "3f2504e04f89-41d3-9a0c-0305e82c3301-",
            ],
            &["start"],
            &["list", "--status", "Running"],
            &["list", "--max", "0"],
            &["show"],
            &["approve"],
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        let e = parse(&["start", "R", "--param", "novalue"]).unwrap_err();
        assert!(e.to_string().contains("expected name=value"), "{e}");
        let e = parse(&["start", "R", "--client-token", "t-1"]).unwrap_err();
        assert!(e.to_string().contains("a client token is a UUID"), "{e}");
        let AutomationCommand::List(l) =
            parse(&["list", "--status", "InProgress", "--status", "Waiting"]).unwrap()
        else {
            panic!("not list")
        };
        assert_eq!(l.statuses, vec!["InProgress", "Waiting"]);
        assert_eq!(l.max, 50);
        let AutomationCommand::Show(s) = parse(&["show", ID]).unwrap() else {
            panic!("not show")
        };
        assert_eq!((s.timeout, s.no_wait), (600, false));
    }

    #[tokio::test]
    async fn start_sends_the_runbook_its_parameters_and_token() {
        let (result, out, requests) = steward(
            &[
                "start",
                "Steward-RestartService",
                "--param",
                "InstanceId=mi-1",
                "--param",
                "InstanceId=mi-2",
                "--param",
                "Commands=echo a,b",
                "--version",
                "2",
                "--client-token",
                TOKEN,
            ],
            false,
            false,
            vec![ok(json!({ "AutomationExecutionId": ID }))],
        )
        .await;
        assert_eq!(result.unwrap(), Exit::Ok);
        assert_eq!(out, format!("{ID}\n"));
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].operation, "StartAutomationExecution");
        assert_eq!(
            requests[0].body,
            json!({
                "DocumentName": "Steward-RestartService",
                "DocumentVersion": "2",
                "Parameters": { "InstanceId": ["mi-1", "mi-2"], "Commands": ["echo a,b"] },
                "ClientToken": TOKEN,
            })
        );
    }

    #[tokio::test]
    async fn start_without_parameters_sends_none_and_json_is_the_answer() {
        let (result, out, requests) = steward(
            &["start", "Steward-Noop"],
            true,
            false,
            vec![ok(json!({ "AutomationExecutionId": ID }))],
        )
        .await;
        assert_eq!(result.unwrap(), Exit::Ok);
        assert_eq!(requests[0].body, json!({ "DocumentName": "Steward-Noop" }));
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v, json!({ "AutomationExecutionId": ID }));
    }

    #[tokio::test]
    async fn a_refused_start_says_what_to_do() {
        let (result, out, _) = steward(
            &["start", "Steward-Nope"],
            false,
            false,
            vec![error(
                "AutomationDefinitionNotFoundException",
                "Automation definition Steward-Nope does not exist.",
            )],
        )
        .await;
        let e = result.unwrap_err();
        assert!(out.is_empty());
        assert!(
            matches!(&e, CliError::Api { code, .. } if code == "AutomationDefinitionNotFoundException")
        );
        assert!(e.hint().unwrap().contains("list-documents"));
        assert_eq!(e.exit(), Exit::Error);
    }

    fn meta(id: &str, status: &str) -> Value {
        json!({
            "AutomationExecutionId": id,
            "DocumentName": "Steward-RestartService",
            "DocumentVersion": "1",
            "AutomationExecutionStatus": status,
            "ExecutedBy": "arn:aws:iam::123456789012:user/ops/alice",
            "Mode": "Auto",
            "Outputs": {},
            "ExecutionStartTime": T0,
            "CurrentStepName": "restart",
            "CurrentAction": "aws:runCommand",
            "AutomationType": "Local",
        })
    }

    #[tokio::test]
    async fn list_filters_and_pages_up_to_max() {
        let (result, out, requests) = steward(
            &[
                "list",
                "--status",
                "InProgress",
                "--status",
                "Failed",
                "--document",
                "Steward-",
                "--max",
                "3",
            ],
            true,
            false,
            vec![
                ok(json!({
                    "AutomationExecutionMetadataList": [meta("e-1", "InProgress"), meta("e-2", "Failed")],
                    "NextToken": "page-2",
                })),
                ok(json!({
                    "AutomationExecutionMetadataList": [meta("e-3", "Failed")],
                    "NextToken": "page-3",
                })),
            ],
        )
        .await;
        assert_eq!(result.unwrap(), Exit::Ok);
        let filters = json!([
            { "Key": "ExecutionStatus", "Values": ["InProgress", "Failed"] },
            { "Key": "DocumentNamePrefix", "Values": ["Steward-"] },
        ]);
        assert_eq!(
            requests.iter().map(|r| r.body.clone()).collect::<Vec<_>>(),
            vec![
                json!({ "Filters": filters, "MaxResults": 3 }),
                json!({ "Filters": filters, "MaxResults": 1, "NextToken": "page-2" }),
            ]
        );
        assert!(
            requests
                .iter()
                .all(|r| r.operation == "DescribeAutomationExecutions")
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        let list = v["AutomationExecutionMetadataList"].as_array().unwrap();
        assert_eq!(list.len(), 3);
        // The API's own shape, field for field.
        assert_eq!(list[0], meta("e-1", "InProgress"));
    }

    #[tokio::test]
    async fn list_renders_a_row_per_execution() {
        let mut done = meta("e-2", "Success");
        done["ExecutionEndTime"] = json!(T0 + 90.0);
        let (result, out, requests) = steward(
            &["list"],
            false,
            false,
            vec![ok(json!({
                "AutomationExecutionMetadataList": [meta("e-1", "Waiting"), done],
            }))],
        )
        .await;
        assert_eq!(result.unwrap(), Exit::Ok);
        assert_eq!(requests[0].body, json!({ "MaxResults": 50 }));
        let expected = "\
┌───────────┬────────────────────────┬─────────┬─────────┬──────────────┬──────────────────────┬──────────────────────┬───────┐
│ Execution ┆ Runbook                ┆ Version ┆ Status  ┆ Current step ┆ Started              ┆ Ended                ┆ By    │
╞═══════════╪════════════════════════╪═════════╪═════════╪══════════════╪══════════════════════╪══════════════════════╪═══════╡
│ e-1       ┆ Steward-RestartService ┆ 1       ┆ Waiting ┆ restart      ┆ 2023-11-14T22:13:20Z ┆ -                    ┆ alice │
│ e-2       ┆ Steward-RestartService ┆ 1       ┆ Success ┆ -            ┆ 2023-11-14T22:13:20Z ┆ 2023-11-14T22:14:50Z ┆ alice │
└───────────┴────────────────────────┴─────────┴─────────┴──────────────┴──────────────────────┴──────────────────────┴───────┘
";
        assert_eq!(out, expected);
    }

    #[tokio::test]
    async fn an_empty_list_says_what_to_do() {
        let empty = || ok(json!({ "AutomationExecutionMetadataList": [] }));
        let (_, out, _) = steward(&["list"], false, false, vec![empty()]).await;
        assert!(out.contains("steward automation start"), "{out}");
        let (_, out, _) = steward(&["list", "--document", "X"], false, false, vec![empty()]).await;
        assert!(out.contains("drop --status or --document"), "{out}");
    }

    /// The script of an execution: it restarts, waits for approval, is
    /// approved, then its verify step fails.
    fn script() -> Vec<Value> {
        let restart = step(1, "restart", "aws:runCommand", "InProgress");
        let restarted = with(
            step(1, "restart", "aws:runCommand", "Success"),
            &["Outputs"],
            json!({ "CommandId": ["c-1"], "Status": ["Success"] }),
        );
        let approve = step(2, "approve", "aws:approve", "Waiting");
        let approved = step(2, "approve", "aws:approve", "Success");
        let failed = with(
            step(3, "verify", "aws:runCommand", "Failed"),
            &["FailureMessage"],
            json!("Step fails when it is verifying the service.\nexit 3"),
        );
        let mut last = get_answer("Failed", vec![restarted.clone(), approved, failed]);
        last["AutomationExecution"]["FailureMessage"] = json!("Step verify failed.");
        last["AutomationExecution"]["Outputs"] = json!({ "restart.CommandId": ["c-1"] });
        vec![
            get_answer("InProgress", vec![restart.clone()]),
            get_answer("InProgress", vec![restart]),
            get_answer("Waiting", vec![restarted.clone(), approve]),
            last,
        ]
    }

    #[tokio::test]
    async fn show_prints_each_change_once_as_a_line_when_not_a_terminal() {
        let replies = script().into_iter().map(ok).collect();
        let (result, out, requests) = steward(&["show", ID], false, false, replies).await;
        assert_eq!(result.unwrap(), Exit::CommandFailed);
        assert_eq!(requests.len(), 4);
        for r in &requests {
            assert_eq!(r.operation, "GetAutomationExecution");
            assert_eq!(r.body, json!({ "AutomationExecutionId": ID }));
        }
        let expected = format!(
            "\
step 1 restart (aws:runCommand): InProgress
execution {ID}: InProgress
step 1 restart (aws:runCommand): Success
step 2 approve (aws:approve): Waiting
execution {ID}: Waiting; step approve waits for approval: `steward automation approve {ID}` or `steward automation reject {ID}`
step 2 approve (aws:approve): Success
step 3 verify (aws:runCommand): Failed: Step fails when it is verifying the service. exit 3
execution {ID}: Failed: Step verify failed.
output restart.CommandId: c-1
"
        );
        assert_eq!(out, expected);
    }

    #[tokio::test]
    async fn show_redraws_the_view_in_place_on_a_terminal() {
        let replies: Vec<Reply> = script().into_iter().map(ok).collect();
        let (result, out, _) = steward(&["show", ID], false, true, replies).await;
        assert_eq!(result.unwrap(), Exit::CommandFailed);
        // Four looks, three different views: drawn once, redrawn twice (the
        // unchanged second look draws nothing).
        let redraws: Vec<&str> = out.matches("\x1b[J").collect();
        assert_eq!(redraws.len(), 2, "{out:?}");
        // Each redraw goes up exactly the height of the view before it.
        let first_height = out.split("\x1b[").next().unwrap().lines().count();
        assert!(
            out.contains(&format!("\x1b[{first_height}A\x1b[J")),
            "{out:?}"
        );
        let last = out.rsplit("\x1b[J").next().unwrap();
        assert!(last.starts_with(&format!(
            "Execution {ID} of Steward-RestartService (version 1): Failed\n"
        )));
        assert!(
            last.contains("│ 3 ┆ verify  ┆ aws:runCommand ┆ Failed"),
            "{last}"
        );
        assert!(
            last.contains("Failure: Step verify failed.\nOutputs:\n  restart.CommandId: c-1\n")
        );
        // The view while waiting said how to approve.
        assert!(out.contains(&format!(
            "next: step approve waits for approval: `steward automation approve {ID}`"
        )));
    }

    #[tokio::test]
    async fn show_gives_up_after_its_timeout_and_says_how_to_look_again() {
        let (result, out, requests) = steward(
            &["show", ID, "--timeout", "0"],
            false,
            false,
            vec![ok(get_answer(
                "InProgress",
                vec![step(1, "restart", "aws:runCommand", "InProgress")],
            ))],
        )
        .await;
        let e = result.unwrap_err();
        assert_eq!(requests.len(), 1);
        assert_eq!(
            e.to_string(),
            format!(
                "automation execution {ID} is still InProgress after 0s of following it; it goes on"
            )
        );
        assert!(e.hint().unwrap().contains("steward automation show"));
        assert_eq!(e.exit(), Exit::Error);
        // What it saw before giving up was shown.
        assert!(out.contains("step 1 restart (aws:runCommand): InProgress"));
    }

    #[tokio::test]
    async fn show_json_prints_only_the_final_execution_in_ssm_shape() {
        let mut last = script().pop().unwrap();
        let (result, out, requests) = steward(
            &["show", ID],
            true,
            false,
            vec![ok(script()[0].clone()), ok(last.clone())],
        )
        .await;
        assert_eq!(result.unwrap(), Exit::CommandFailed);
        assert_eq!(requests.len(), 2);
        let v: Value = serde_json::from_str(&out).expect("stdout is one JSON document");
        // Field for field what the API answered (the SDK drops nothing we print).
        last["AutomationExecution"]["StepExecutions"][0]["Inputs"] = json!({});
        assert_eq!(v, last);
    }

    #[tokio::test]
    async fn show_no_wait_looks_once() {
        let (result, out, requests) = steward(
            &["show", ID, "--no-wait"],
            false,
            false,
            vec![ok(script()[2].clone())],
        )
        .await;
        assert_eq!(result.unwrap(), Exit::Ok);
        assert_eq!(requests.len(), 1);
        assert!(out.contains("): Waiting\n"), "{out}");
        assert!(
            out.contains("│ 2 ┆ approve ┆ aws:approve    ┆ Waiting"),
            "{out}"
        );
        assert!(out.contains("restart ┆ aws:runCommand ┆ Success"), "{out}");
        assert!(out.contains("CommandId: c-1"), "{out}");
    }

    #[tokio::test]
    async fn signals_and_stop_send_ssm_requests() {
        let cases: [(&[&str], &str, Value); 5] = [
            (
                &["approve", ID, "--comment", "looks right, go"],
                "SendAutomationSignal",
                json!({ "AutomationExecutionId": ID, "SignalType": "Approve", "Payload": { "Comment": ["looks right, go"] } }),
            ),
            (
                &["reject", ID, "--comment", "no"],
                "SendAutomationSignal",
                json!({ "AutomationExecutionId": ID, "SignalType": "Reject", "Payload": { "Comment": ["no"] } }),
            ),
            (
                &["approve", ID],
                "SendAutomationSignal",
                json!({ "AutomationExecutionId": ID, "SignalType": "Approve" }),
            ),
            (
                &["resume", ID],
                "SendAutomationSignal",
                json!({ "AutomationExecutionId": ID, "SignalType": "Resume" }),
            ),
            (
                &["stop", ID],
                "StopAutomationExecution",
                json!({ "AutomationExecutionId": ID, "Type": "Cancel" }),
            ),
        ];
        for (args, operation, body) in cases {
            let (result, out, requests) = steward(args, false, false, vec![ok(json!({}))]).await;
            assert_eq!(result.unwrap(), Exit::Ok, "{args:?}");
            assert_eq!(requests.len(), 1);
            assert_eq!(requests[0].operation, operation, "{args:?}");
            assert_eq!(requests[0].body, body, "{args:?}");
            assert!(
                out.contains(&format!("`steward automation show {ID}`")),
                "{out}"
            );
            let (_, out, _) = steward(args, true, false, vec![ok(json!({}))]).await;
            assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), json!({}));
        }
    }

    #[tokio::test]
    async fn a_refused_signal_says_how_to_see_what_the_execution_waits_for() {
        let (result, out, _) = steward(
            &["resume", ID],
            false,
            false,
            vec![error(
                "InvalidAutomationSignalException",
                "Automation execution x is not waiting for a signal: its status is Success.",
            )],
        )
        .await;
        let e = result.unwrap_err();
        assert!(out.is_empty());
        assert!(e.hint().unwrap().contains("steward automation show"));
    }
}
