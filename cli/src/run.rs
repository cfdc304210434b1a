//! `steward run`: SendCommand, live progress, then the per-node results.

use std::time::Duration;

use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{Command, CommandInvocation, Target};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::args::RunArgs;
use crate::commands::{Ctx, invocation_rows, list_invocations};
use crate::error::{CliError, Exit};
use crate::{json, render};

/// Polls between checks on the command's progress.
const POLL: Duration = Duration::from_secs(1);
/// Polls to keep waiting for invocations to settle once the command itself is final.
const SETTLE_POLLS: u32 = 10;

pub fn is_final_command(status: &str) -> bool {
    matches!(status, "Success" | "Failed" | "TimedOut" | "Cancelled")
}

pub fn is_final_invocation(status: &str) -> bool {
    matches!(status, "Success" | "Failed" | "TimedOut" | "Cancelled")
}

/// Whether waiting is over: the command is final and so is every invocation
/// seen (or the invocations stopped catching up).
pub fn wait_is_over(
    command_status: &str,
    invocation_statuses: &[&str],
    polls_since_final: u32,
) -> bool {
    is_final_command(command_status)
        && (invocation_statuses.iter().all(|s| is_final_invocation(s))
            || polls_since_final >= SETTLE_POLLS)
}

pub async fn run(ctx: &Ctx, args: &RunArgs) -> Result<Exit, CliError> {
    if args.targets.is_empty() && args.instance_ids.is_empty() {
        return Err(CliError::Usage(
            "say where to run: --targets tag:<key>=<value> or --instance-ids mi-…".into(),
        ));
    }
    let command = send(&ctx.client, args).await?;
    let command_id = command.command_id().unwrap_or_default().to_string();

    if args.no_wait {
        if ctx.json {
            ctx.print_json(&json!({ "Command": json::command(&command) }))?;
        } else {
            ctx.println(&command_id)?;
        }
        return Ok(Exit::Ok);
    }
    if !ctx.json {
        eprintln!(
            "steward: command {command_id} sent to {} target(s); waiting (Ctrl-C stops waiting, not the command)",
            command.target_count()
        );
    }

    let bar = progress_bar(ctx, command.target_count());
    let mut current = command;
    let mut polls_since_final = 0;
    loop {
        if let Some(c) = latest_command(&ctx.client, &command_id).await? {
            current = c;
        }
        let invocations = list_invocations(&ctx.client, &command_id, false).await?;
        let statuses: Vec<&str> = invocations
            .iter()
            .map(|i| i.status().map(|s| s.as_str()).unwrap_or("Pending"))
            .collect();
        let status = current
            .status()
            .map(|s| s.as_str())
            .unwrap_or("Pending")
            .to_string();
        let target_count = u64::try_from(current.target_count()).unwrap_or(0);
        bar.set_length(target_count.max(statuses.len() as u64));
        bar.set_position(statuses.iter().filter(|s| is_final_invocation(s)).count() as u64);
        bar.set_message(format!(
            "command {status}; nodes: {}",
            render::status_counts(statuses.iter().copied())
        ));
        if is_final_command(&status) {
            if wait_is_over(&status, &statuses, polls_since_final) {
                break;
            }
            polls_since_final += 1;
        }
        tokio::time::sleep(POLL).await;
    }
    bar.finish_and_clear();

    let status = current
        .status()
        .map(|s| s.as_str())
        .unwrap_or("Pending")
        .to_string();
    let invocations = list_invocations(&ctx.client, &command_id, true).await?;
    let exit = Exit::for_command_status(&status);
    if ctx.json {
        let invocations: Vec<_> = invocations.iter().map(json::invocation).collect();
        ctx.print_json(
            &json!({ "Command": json::command(&current), "CommandInvocations": invocations }),
        )?;
        return Ok(exit);
    }
    print_results(ctx, &current, &invocations).await?;
    Ok(exit)
}

async fn print_results(
    ctx: &Ctx,
    command: &Command,
    invocations: &[CommandInvocation],
) -> Result<(), CliError> {
    let rows = invocation_rows(&ctx.client, invocations).await?;
    let status = command.status().map(|s| s.as_str()).unwrap_or("Pending");
    let mut text = format!(
        "Command {} {status}: {} of {} node(s) completed, {} error(s)\n",
        command.command_id().unwrap_or_default(),
        command.completed_count(),
        command.target_count(),
        command.error_count(),
    );
    if rows.is_empty() {
        text.push_str(
            "No node matched the targets; list nodes and their tags with `steward nodes`.\n",
        );
    } else {
        text.push_str(&render::invocation_table(&rows, ctx.wide));
        text.push_str("\n\n");
        text.push_str(&render::full_outputs(&rows));
    }
    ctx.print(&text)
}

async fn send(client: &Client, args: &RunArgs) -> Result<Command, CliError> {
    let mut req = client
        .send_command()
        .document_name(&args.document)
        .parameters("commands", vec![args.command_line()]);
    for t in &args.targets {
        let target = Target::builder()
            .key(&t.key)
            .set_values(Some(t.values.clone()))
            .build();
        req = req.targets(target);
    }
    if !args.instance_ids.is_empty() {
        req = req.set_instance_ids(Some(args.instance_ids.clone()));
    }
    if let Some(dir) = &args.workdir {
        req = req.parameters("workingDirectory", vec![dir.clone()]);
    }
    if let Some(n) = args.execution_timeout {
        req = req.parameters("executionTimeout", vec![n.to_string()]);
    }
    let out = req
        .set_timeout_seconds(args.timeout)
        .set_comment(args.comment.clone())
        .set_max_concurrency(args.max_concurrency.clone())
        .set_max_errors(args.max_errors.clone())
        .send()
        .await
        .map_err(|e| CliError::from_sdk("SendCommand", e))?;
    out.command.ok_or_else(|| CliError::Other {
        operation: "SendCommand",
        detail: "the answer has no Command".into(),
    })
}

async fn latest_command(client: &Client, command_id: &str) -> Result<Option<Command>, CliError> {
    let out = client
        .list_commands()
        .command_id(command_id)
        .send()
        .await
        .map_err(|e| CliError::from_sdk("ListCommands", e))?;
    Ok(out.commands.unwrap_or_default().into_iter().next())
}

fn progress_bar(ctx: &Ctx, target_count: i32) -> ProgressBar {
    if ctx.json || !ctx.stdout_is_terminal {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(
        Some(u64::try_from(target_count).unwrap_or(0)),
        ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_ends_when_command_and_invocations_are_final() {
        assert!(!wait_is_over("InProgress", &["Success"], 0));
        assert!(!wait_is_over("Success", &["Success", "InProgress"], 0));
        assert!(wait_is_over("Success", &["Success", "Success"], 0));
        assert!(wait_is_over(
            "Failed",
            &["Success", "Failed", "TimedOut"],
            0
        ));
        assert!(wait_is_over("Success", &[], 0));
        // A command that is final while an invocation lags is not waited on forever.
        assert!(wait_is_over("Failed", &["InProgress"], SETTLE_POLLS));
        assert!(!wait_is_over("Cancelling", &["Cancelling"], SETTLE_POLLS));
    }
}
