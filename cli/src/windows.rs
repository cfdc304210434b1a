//! `steward windows …`: Maintenance Windows over the SSM API — list them,
//! show one (its targets, tasks and recent executions), the coming
//! executions of one or all, and one's past executions.

use std::io::Write;

use aws_sdk_ssm::operation::get_maintenance_window::GetMaintenanceWindowOutput;
use aws_sdk_ssm::types::{
    MaintenanceWindowExecution, MaintenanceWindowIdentity, MaintenanceWindowTarget,
    MaintenanceWindowTask, ScheduledWindowExecution,
};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::associations::target_text;
use crate::commands::{Ctx, when};
use crate::error::{CliError, Exit};
use crate::json::{Obj, targets as json_targets};
use crate::render::{self, dash, emit, emit_json};

/// `steward windows`: with no subcommand, the list.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  steward windows\n  steward windows show <window-id>\n  steward windows next            # the coming executions of every enabled window\n  steward windows executions <window-id>"
)]
pub struct WindowsArgs {
    #[command(subcommand)]
    pub command: Option<WindowsCommand>,
}

#[derive(Debug, Subcommand)]
pub enum WindowsCommand {
    /// List maintenance windows (the default): schedule, duration, cutoff, next execution.
    List,
    /// Show a window: its settings, targets, tasks (by priority) and recent executions.
    Show {
        /// The window's id (mw-…).
        window_id: String,
        /// How many recent executions to show.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        executions: u32,
    },
    /// The coming executions of a window, or of every enabled window.
    Next {
        /// The window's id (mw-…); every enabled window when left out.
        window_id: Option<String>,
        /// How many coming executions per window.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i32).range(1..=100))]
        count: i32,
    },
    /// A window's past executions, newest first.
    Executions {
        /// The window's id (mw-…).
        window_id: String,
        /// At most this many executions.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
        max: u32,
    },
}

pub async fn run(ctx: &Ctx, args: &WindowsArgs) -> Result<Exit, CliError> {
    let mut out = std::io::stdout();
    execute(ctx, args, &mut out).await
}

/// Runs the command, writing what stdout shows to `out`.
pub async fn execute(ctx: &Ctx, args: &WindowsArgs, out: &mut dyn Write) -> Result<Exit, CliError> {
    match &args.command {
        None | Some(WindowsCommand::List) => list(ctx, out).await,
        Some(WindowsCommand::Show {
            window_id,
            executions,
        }) => show(ctx, window_id, *executions as usize, out).await,
        Some(WindowsCommand::Next { window_id, count }) => {
            next(ctx, window_id.as_deref(), *count, out).await
        }
        Some(WindowsCommand::Executions { window_id, max }) => {
            executions(ctx, window_id, *max as usize, out).await
        }
    }
}

fn hours(h: Option<i32>) -> String {
    h.map(|h| format!("{h} h")).unwrap_or_else(|| "-".into())
}

fn yes_no(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}

pub fn identity_json(w: &MaintenanceWindowIdentity) -> Value {
    Obj::default()
        .s("WindowId", w.window_id())
        .s("Name", w.name())
        .s("Description", w.description())
        .v("Enabled", w.enabled())
        .opt("Duration", w.duration())
        .v("Cutoff", w.cutoff())
        .s("Schedule", w.schedule())
        .s("ScheduleTimezone", w.schedule_timezone())
        .opt("ScheduleOffset", w.schedule_offset())
        .s("EndDate", w.end_date())
        .s("StartDate", w.start_date())
        .s("NextExecutionTime", w.next_execution_time())
        .done()
}

fn window_json(w: &GetMaintenanceWindowOutput) -> Value {
    Obj::default()
        .s("WindowId", w.window_id())
        .s("Name", w.name())
        .s("Description", w.description())
        .s("StartDate", w.start_date())
        .s("EndDate", w.end_date())
        .s("Schedule", w.schedule())
        .s("ScheduleTimezone", w.schedule_timezone())
        .opt("ScheduleOffset", w.schedule_offset())
        .s("NextExecutionTime", w.next_execution_time())
        .opt("Duration", w.duration())
        .v("Cutoff", w.cutoff())
        .v("AllowUnassociatedTargets", w.allow_unassociated_targets())
        .v("Enabled", w.enabled())
        .t("CreatedDate", w.created_date())
        .t("ModifiedDate", w.modified_date())
        .done()
}

fn target_json(t: &MaintenanceWindowTarget) -> Value {
    Obj::default()
        .s("WindowId", t.window_id())
        .s("WindowTargetId", t.window_target_id())
        .s("ResourceType", t.resource_type().map(|r| r.as_str()))
        .v("Targets", json_targets(t.targets()))
        .s("OwnerInformation", t.owner_information())
        .s("Name", t.name())
        .s("Description", t.description())
        .done()
}

fn task_json(t: &MaintenanceWindowTask) -> Value {
    Obj::default()
        .s("WindowId", t.window_id())
        .s("WindowTaskId", t.window_task_id())
        .s("TaskArn", t.task_arn())
        .s("Type", t.r#type().map(|r| r.as_str()))
        .v("Targets", json_targets(t.targets()))
        .v("Priority", t.priority())
        .s("ServiceRoleArn", t.service_role_arn())
        .s("MaxConcurrency", t.max_concurrency())
        .s("MaxErrors", t.max_errors())
        .s("Name", t.name())
        .s("Description", t.description())
        .s("CutoffBehavior", t.cutoff_behavior().map(|c| c.as_str()))
        .done()
}

fn execution_json(e: &MaintenanceWindowExecution) -> Value {
    Obj::default()
        .s("WindowId", e.window_id())
        .s("WindowExecutionId", e.window_execution_id())
        .s("Status", e.status().map(|s| s.as_str()))
        .s("StatusDetails", e.status_details())
        .t("StartTime", e.start_time())
        .t("EndTime", e.end_time())
        .done()
}

fn scheduled_json(s: &ScheduledWindowExecution) -> Value {
    Obj::default()
        .s("WindowId", s.window_id())
        .s("Name", s.name())
        .s("ExecutionTime", s.execution_time())
        .done()
}

async fn all_windows(ctx: &Ctx) -> Result<Vec<MaintenanceWindowIdentity>, CliError> {
    ctx.client
        .describe_maintenance_windows()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| CliError::from_sdk("DescribeMaintenanceWindows", e))
}

async fn list(ctx: &Ctx, out: &mut dyn Write) -> Result<Exit, CliError> {
    let all = all_windows(ctx).await?;
    if ctx.json {
        let list: Vec<Value> = all.iter().map(identity_json).collect();
        emit_json(out, &json!({ "WindowIdentities": list }))?;
        return Ok(Exit::Ok);
    }
    emit(out, &list_table(&all, ctx.wide))?;
    Ok(Exit::Ok)
}

/// The table `windows` prints (or what to do when there is none).
pub fn list_table(all: &[MaintenanceWindowIdentity], wide: bool) -> String {
    if all.is_empty() {
        return "No maintenance windows yet. Create one with `aws ssm create-maintenance-window --name <name> --schedule 'cron(0 2 ? * SUN *)' --duration 2 --cutoff 1 --allow-unassociated-targets`.".into();
    }
    let mut t = render::table(
        &[
            "Window",
            "Name",
            "Enabled",
            "Schedule",
            "Timezone",
            "Duration",
            "Cutoff",
            "Next execution",
        ],
        wide,
    );
    for w in all {
        t.add_row(vec![
            dash(w.window_id()),
            dash(w.name()),
            yes_no(w.enabled()),
            dash(w.schedule()),
            dash(w.schedule_timezone()),
            hours(w.duration()),
            hours(Some(w.cutoff())),
            dash(w.next_execution_time()),
        ]);
    }
    t.to_string()
}

/// Every execution of a window, newest first.
async fn window_executions(
    ctx: &Ctx,
    window_id: &str,
) -> Result<Vec<MaintenanceWindowExecution>, CliError> {
    let mut all = ctx
        .client
        .describe_maintenance_window_executions()
        .window_id(window_id)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| CliError::from_sdk("DescribeMaintenanceWindowExecutions", e))?;
    render::newest_first(&mut all, MaintenanceWindowExecution::start_time);
    Ok(all)
}

async fn show(ctx: &Ctx, id: &str, recent: usize, out: &mut dyn Write) -> Result<Exit, CliError> {
    let window = ctx
        .client
        .get_maintenance_window()
        .window_id(id)
        .send()
        .await
        .map_err(|e| CliError::from_sdk("GetMaintenanceWindow", e))?;
    let targets = ctx
        .client
        .describe_maintenance_window_targets()
        .window_id(id)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| CliError::from_sdk("DescribeMaintenanceWindowTargets", e))?;
    let mut tasks = ctx
        .client
        .describe_maintenance_window_tasks()
        .window_id(id)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| CliError::from_sdk("DescribeMaintenanceWindowTasks", e))?;
    tasks.sort_by(|a, b| {
        a.priority()
            .cmp(&b.priority())
            .then(a.name().cmp(&b.name()))
    });
    let mut runs = window_executions(ctx, id).await?;
    runs.truncate(recent);
    if ctx.json {
        emit_json(
            out,
            &json!({
                "Window": window_json(&window),
                "Targets": targets.iter().map(target_json).collect::<Vec<_>>(),
                "Tasks": tasks.iter().map(task_json).collect::<Vec<_>>(),
                "WindowExecutions": runs.iter().map(execution_json).collect::<Vec<_>>(),
            }),
        )?;
        return Ok(Exit::Ok);
    }
    emit(out, &show_text(&window, &targets, &tasks, &runs, ctx.wide))?;
    Ok(Exit::Ok)
}

/// `show`'s text: settings, then targets, tasks by priority and recent executions.
pub fn show_text(
    w: &GetMaintenanceWindowOutput,
    targets: &[MaintenanceWindowTarget],
    tasks: &[MaintenanceWindowTask],
    runs: &[MaintenanceWindowExecution],
    wide: bool,
) -> String {
    let id = w.window_id().unwrap_or_default();
    let mut schedule = dash(w.schedule());
    if let Some(tz) = w.schedule_timezone().filter(|t| !t.is_empty()) {
        schedule.push_str(&format!(" ({tz})"));
    }
    if let Some(o) = w.schedule_offset().filter(|o| *o != 0) {
        schedule.push_str(&format!(", {o} days after"));
    }
    let span = format!(
        "{}, cutoff {} (no task starts in the last {})",
        hours(w.duration()),
        hours(Some(w.cutoff())),
        hours(Some(w.cutoff()))
    );
    let fields: [(&str, String); 7] = [
        ("Window", id.to_string()),
        ("Name", dash(w.name())),
        ("Description", dash(w.description())),
        ("Enabled", yes_no(w.enabled())),
        ("Schedule", schedule),
        ("Duration", span),
        ("Next", dash(w.next_execution_time())),
    ];
    let mut text = render::fields(&fields, 12);
    text.push_str("\nTargets:\n");
    if targets.is_empty() {
        text.push_str(&format!(
            "  none; register some with `aws ssm register-target-with-maintenance-window --window-id {id} --resource-type INSTANCE --targets Key=tag:<key>,Values=<value>`\n"
        ));
    } else {
        let mut t = render::table(&["Target", "Name", "Targets", "Owner information"], wide);
        for x in targets {
            t.add_row(vec![
                dash(x.window_target_id()),
                dash(x.name()),
                target_text(x.targets()),
                dash(x.owner_information()),
            ]);
        }
        text.push_str(&t.to_string());
        text.push('\n');
    }
    text.push_str("\nTasks, by priority (lowest first):\n");
    if tasks.is_empty() {
        text.push_str(&format!(
            "  none; register one with `aws ssm register-task-with-maintenance-window --window-id {id} --task-type RUN_COMMAND --task-arn AWS-RunShellScript …`\n"
        ));
    } else {
        let mut t = render::table(
            &[
                "Priority",
                "Task",
                "Name",
                "Type",
                "Runs",
                "Targets",
                "Concurrency",
                "Errors",
            ],
            wide,
        );
        for x in tasks {
            t.add_row(vec![
                x.priority().to_string(),
                dash(x.window_task_id()),
                dash(x.name()),
                dash(x.r#type().map(|r| r.as_str())),
                dash(x.task_arn()),
                target_text(x.targets()),
                dash(x.max_concurrency()),
                dash(x.max_errors()),
            ]);
        }
        text.push_str(&t.to_string());
        text.push('\n');
    }
    text.push_str("\nRecent executions:\n");
    if runs.is_empty() {
        text.push_str("  none yet.\n");
    } else {
        text.push_str(&executions_table(runs, wide));
        text.push('\n');
    }
    text
}

fn executions_table(runs: &[MaintenanceWindowExecution], wide: bool) -> String {
    let mut t = render::table(
        &["Execution", "Status", "Details", "Started", "Ended"],
        wide,
    );
    for e in runs {
        t.add_row(vec![
            dash(e.window_execution_id()),
            dash(e.status().map(|s| s.as_str())),
            dash(e.status_details()),
            when(e.start_time()),
            when(e.end_time()),
        ]);
    }
    t.to_string()
}

async fn schedule_of(
    ctx: &Ctx,
    window_id: &str,
    count: i32,
) -> Result<Vec<ScheduledWindowExecution>, CliError> {
    let answer = ctx
        .client
        .describe_maintenance_window_schedule()
        .window_id(window_id)
        .max_results(count)
        .send()
        .await
        .map_err(|e| CliError::from_sdk("DescribeMaintenanceWindowSchedule", e))?;
    let mut coming = answer.scheduled_window_executions.unwrap_or_default();
    coming.truncate(count as usize);
    Ok(coming)
}

async fn next(
    ctx: &Ctx,
    window_id: Option<&str>,
    count: i32,
    out: &mut dyn Write,
) -> Result<Exit, CliError> {
    let mut coming: Vec<ScheduledWindowExecution> = Vec::new();
    let mut disabled = 0usize;
    let mut windows = 0usize;
    match window_id {
        Some(id) => {
            windows = 1;
            coming = schedule_of(ctx, id, count).await?;
        }
        None => {
            for w in all_windows(ctx).await? {
                if !w.enabled() {
                    disabled += 1;
                    continue;
                }
                windows += 1;
                let mut some = schedule_of(ctx, w.window_id().unwrap_or_default(), count).await?;
                // The schedule's entries carry the window's name; fill it in if not.
                for s in &mut some {
                    if s.name().is_none() {
                        *s = ScheduledWindowExecution::builder()
                            .set_window_id(s.window_id().map(str::to_string))
                            .set_name(w.name().map(str::to_string))
                            .set_execution_time(s.execution_time().map(str::to_string))
                            .build();
                    }
                }
                coming.extend(some);
            }
        }
    }
    // ISO 8601 times in one offset sort as text; a stable sort keeps each
    // window's own order for the rest.
    coming.sort_by(|a, b| a.execution_time().cmp(&b.execution_time()));
    if ctx.json {
        let list: Vec<Value> = coming.iter().map(scheduled_json).collect();
        emit_json(out, &json!({ "ScheduledWindowExecutions": list }))?;
        return Ok(Exit::Ok);
    }
    emit(out, &next_table(&coming, windows, disabled, ctx.wide))?;
    Ok(Exit::Ok)
}

/// The table `windows next` prints (or why there is nothing to show).
pub fn next_table(
    coming: &[ScheduledWindowExecution],
    windows: usize,
    disabled: usize,
    wide: bool,
) -> String {
    if coming.is_empty() {
        return match (windows, disabled) {
            (0, 0) => "No maintenance windows, so nothing is coming; see `steward windows --help`.".into(),
            (0, _) => format!("Nothing is coming: all {disabled} windows are disabled."),
            _ => "Nothing is coming: the schedules have no execution ahead (past their end date, or an at() already passed).".into(),
        };
    }
    let mut t = render::table(&["Execution time", "Window", "Name"], wide);
    for s in coming {
        t.add_row(vec![
            dash(s.execution_time()),
            dash(s.window_id()),
            dash(s.name()),
        ]);
    }
    let mut text = t.to_string();
    if disabled > 0 {
        text.push_str(&format!("\n({disabled} disabled windows not shown)"));
    }
    text
}

async fn executions(
    ctx: &Ctx,
    window_id: &str,
    max: usize,
    out: &mut dyn Write,
) -> Result<Exit, CliError> {
    let mut runs = window_executions(ctx, window_id).await?;
    runs.truncate(max);
    if ctx.json {
        let list: Vec<Value> = runs.iter().map(execution_json).collect();
        emit_json(out, &json!({ "WindowExecutions": list }))?;
        return Ok(Exit::Ok);
    }
    if runs.is_empty() {
        emit(
            out,
            &format!(
                "Window {window_id} has not run yet; see when it will with `steward windows next {window_id}`."
            ),
        )?;
        return Ok(Exit::Ok);
    }
    emit(out, &executions_table(&runs, ctx.wide))?;
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Command;
    use crate::fake_ssm::{self, Outcome, Reply, ctx, error, ok, ops};

    fn parse(args: &[&str]) -> Result<WindowsArgs, clap::Error> {
        match fake_ssm::parse("windows", args)? {
            Command::Windows(w) => Ok(w),
            other => panic!("not windows: {other:?}"),
        }
    }

    async fn steward(args: &[&str], json: bool, replies: Vec<Reply>) -> Outcome {
        let cmd = parse(args).expect("arguments parse");
        fake_ssm::session(replies, async |fake, out| {
            execute(&ctx(fake, json), &cmd, out).await
        })
        .await
    }

    const T0: f64 = 1_700_000_000.0;

    fn identity(id: &str, name: &str, enabled: bool, next: &str) -> Value {
        let mut w = json!({
            "WindowId": id,
            "Name": name,
            "Enabled": enabled,
            "Duration": 2,
            "Cutoff": 1,
            "Schedule": "cron(0 2 ? * SUN *)",
            "ScheduleTimezone": "UTC",
        });
        if !next.is_empty() {
            w["NextExecutionTime"] = json!(next);
        }
        w
    }

    fn scheduled(id: &str, name: &str, at: &str) -> Value {
        json!({ "WindowId": id, "Name": name, "ExecutionTime": at })
    }

    #[test]
    fn subcommands_parse_and_the_bare_command_lists() {
        assert!(parse(&[]).unwrap().command.is_none());
        assert!(matches!(
            parse(&["next"]).unwrap().command,
            Some(WindowsCommand::Next {
                window_id: None,
                count: 5
            })
        ));
        assert!(matches!(
            parse(&["next", "mw-0123456789abcdef0", "--count", "3"])
                .unwrap()
                .command,
            Some(WindowsCommand::Next {
                window_id: Some(_),
                count: 3
            })
        ));
        assert!(parse(&["next", "--count", "0"]).is_err());
        assert!(parse(&["show"]).is_err());
        assert!(parse(&["executions"]).is_err());
    }

    #[tokio::test]
    async fn the_bare_command_lists_every_page_in_a_table() {
        let (result, out, requests) = steward(
            &[],
            false,
            vec![
                ok(json!({ "WindowIdentities": [identity("mw-0000000000000000a", "patch", true, "2023-11-19T02:00Z")], "NextToken": "p2" })),
                ok(json!({ "WindowIdentities": [identity("mw-0000000000000000b", "off", false, "")] })),
            ],
        )
        .await;
        assert_eq!(result.unwrap(), Exit::Ok);
        assert_eq!(
            ops(&requests),
            vec![
                ("DescribeMaintenanceWindows", json!({})),
                ("DescribeMaintenanceWindows", json!({ "NextToken": "p2" })),
            ]
        );
        let expected = "\
┌──────────────────────┬───────┬─────────┬─────────────────────┬──────────┬──────────┬────────┬───────────────────┐
│ Window               ┆ Name  ┆ Enabled ┆ Schedule            ┆ Timezone ┆ Duration ┆ Cutoff ┆ Next execution    │
╞══════════════════════╪═══════╪═════════╪═════════════════════╪══════════╪══════════╪════════╪═══════════════════╡
│ mw-0000000000000000a ┆ patch ┆ yes     ┆ cron(0 2 ? * SUN *) ┆ UTC      ┆ 2 h      ┆ 1 h    ┆ 2023-11-19T02:00Z │
│ mw-0000000000000000b ┆ off   ┆ no      ┆ cron(0 2 ? * SUN *) ┆ UTC      ┆ 2 h      ┆ 1 h    ┆ -                 │
└──────────────────────┴───────┴─────────┴─────────────────────┴──────────┴──────────┴────────┴───────────────────┘
";
        assert_eq!(out, expected);
    }

    #[tokio::test]
    async fn list_json_is_the_api_shape_and_empty_says_what_to_do() {
        let w = identity("mw-0000000000000000a", "patch", true, "2023-11-19T02:00Z");
        let (_, out, _) = steward(
            &["list"],
            true,
            vec![ok(json!({ "WindowIdentities": [w.clone()] }))],
        )
        .await;
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v, json!({ "WindowIdentities": [w] }));
        let (_, out, _) = steward(&[], false, vec![ok(json!({ "WindowIdentities": [] }))]).await;
        assert!(out.contains("create-maintenance-window"), "{out}");
    }

    #[tokio::test]
    async fn next_for_all_asks_each_enabled_window_once_and_merges_by_time() {
        let (result, out, requests) = steward(
            &["next", "--count", "2"],
            false,
            vec![
                ok(json!({ "WindowIdentities": [
                    identity("mw-0000000000000000a", "weekly", true, ""),
                    identity("mw-0000000000000000b", "off", false, ""),
                    identity("mw-0000000000000000c", "nightly", true, ""),
                ] })),
                ok(json!({ "ScheduledWindowExecutions": [
                    scheduled("mw-0000000000000000a", "weekly", "2023-11-19T02:00Z"),
                    scheduled("mw-0000000000000000a", "weekly", "2023-11-26T02:00Z"),
                ], "NextToken": "more" })),
                ok(json!({ "ScheduledWindowExecutions": [
                    scheduled("mw-0000000000000000c", "nightly", "2023-11-15T03:00Z"),
                    scheduled("mw-0000000000000000c", "nightly", "2023-11-16T03:00Z"),
                ] })),
            ],
        )
        .await;
        assert_eq!(result.unwrap(), Exit::Ok);
        assert_eq!(
            ops(&requests),
            vec![
                ("DescribeMaintenanceWindows", json!({})),
                (
                    "DescribeMaintenanceWindowSchedule",
                    json!({ "WindowId": "mw-0000000000000000a", "MaxResults": 2 })
                ),
                (
                    "DescribeMaintenanceWindowSchedule",
                    json!({ "WindowId": "mw-0000000000000000c", "MaxResults": 2 })
                ),
            ]
        );
        let expected = "\
┌───────────────────┬──────────────────────┬─────────┐
│ Execution time    ┆ Window               ┆ Name    │
╞═══════════════════╪══════════════════════╪═════════╡
│ 2023-11-15T03:00Z ┆ mw-0000000000000000c ┆ nightly │
│ 2023-11-16T03:00Z ┆ mw-0000000000000000c ┆ nightly │
│ 2023-11-19T02:00Z ┆ mw-0000000000000000a ┆ weekly  │
│ 2023-11-26T02:00Z ┆ mw-0000000000000000a ┆ weekly  │
└───────────────────┴──────────────────────┴─────────┘
(1 disabled windows not shown)
";
        assert_eq!(out, expected);
    }

    #[tokio::test]
    async fn next_of_one_window_fills_in_its_name_in_json() {
        let (result, out, requests) = steward(
            &["next", "mw-0000000000000000a"],
            true,
            vec![ok(json!({ "ScheduledWindowExecutions": [
                { "WindowId": "mw-0000000000000000a", "ExecutionTime": "2023-11-19T02:00Z" },
            ] }))],
        )
        .await;
        assert_eq!(result.unwrap(), Exit::Ok);
        assert_eq!(
            ops(&requests),
            vec![(
                "DescribeMaintenanceWindowSchedule",
                json!({ "WindowId": "mw-0000000000000000a", "MaxResults": 5 })
            )]
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v,
            json!({ "ScheduledWindowExecutions": [
                { "WindowId": "mw-0000000000000000a", "ExecutionTime": "2023-11-19T02:00Z" },
            ] })
        );
    }

    #[tokio::test]
    async fn next_with_nothing_ahead_says_why() {
        let (_, out, _) = steward(
            &["next"],
            false,
            vec![ok(
                json!({ "WindowIdentities": [identity("mw-0000000000000000b", "off", false, "")] }),
            )],
        )
        .await;
        assert!(out.contains("all 1 windows are disabled"), "{out}");
        let (_, out, _) = steward(
            &["next", "mw-0000000000000000a"],
            false,
            vec![ok(json!({ "ScheduledWindowExecutions": [] }))],
        )
        .await;
        assert!(out.contains("no execution ahead"), "{out}");
    }

    fn execution(n: u32, status: &str) -> Value {
        json!({
            "WindowId": "mw-0000000000000000a",
            "WindowExecutionId": format!("00000000-0000-4000-8000-00000000000{n}"),
            "Status": status,
            "StartTime": T0 + f64::from(n) * 3600.0,
            "EndTime": T0 + f64::from(n) * 3600.0 + 120.0,
        })
    }

    #[tokio::test]
    async fn show_prints_settings_targets_tasks_by_priority_and_recent_runs() {
        let id = "mw-0000000000000000a";
        let (result, out, requests) = steward(
            &["show", id, "--executions", "1"],
            false,
            vec![
                ok(json!({
                    "WindowId": id, "Name": "patch", "Enabled": true, "Duration": 2, "Cutoff": 1,
                    "Schedule": "cron(0 2 ? * SUN *)", "ScheduleTimezone": "UTC",
                    "NextExecutionTime": "2023-11-19T02:00Z", "AllowUnassociatedTargets": false,
                    "CreatedDate": T0, "ModifiedDate": T0,
                })),
                ok(json!({ "Targets": [{
                    "WindowId": id, "WindowTargetId": "t-1", "ResourceType": "INSTANCE",
                    "Targets": [{ "Key": "tag:role", "Values": ["web"] }], "Name": "web",
                }] })),
                ok(json!({ "Tasks": [
                    { "WindowId": id, "WindowTaskId": "task-late", "TaskArn": "AWS-RunShellScript",
                      "Type": "RUN_COMMAND", "Priority": 2, "Name": "reboot",
                      "Targets": [{ "Key": "WindowTargetIds", "Values": ["t-1"] }],
                      "MaxConcurrency": "1", "MaxErrors": "0" },
                    { "WindowId": id, "WindowTaskId": "task-first", "TaskArn": "AWS-RunShellScript",
                      "Type": "RUN_COMMAND", "Priority": 1, "Name": "update",
                      "Targets": [{ "Key": "WindowTargetIds", "Values": ["t-1"] }],
                      "MaxConcurrency": "2", "MaxErrors": "1" },
                ] })),
                ok(json!({ "WindowExecutions": [execution(1, "SUCCESS"), execution(2, "FAILED")] })),
            ],
        )
        .await;
        assert_eq!(result.unwrap(), Exit::Ok);
        assert_eq!(
            requests
                .iter()
                .map(|r| r.operation.as_str())
                .collect::<Vec<_>>(),
            vec![
                "GetMaintenanceWindow",
                "DescribeMaintenanceWindowTargets",
                "DescribeMaintenanceWindowTasks",
                "DescribeMaintenanceWindowExecutions",
            ]
        );
        assert!(requests.iter().all(|r| r.body["WindowId"] == id));
        for line in [
            "Window      mw-0000000000000000a",
            "Schedule    cron(0 2 ? * SUN *) (UTC)",
            "Duration    2 h, cutoff 1 h (no task starts in the last 1 h)",
            "Next        2023-11-19T02:00Z",
            "│ t-1    ┆ web  ┆ tag:role=web",
        ] {
            assert!(out.contains(line), "{line:?} in\n{out}");
        }
        let first = out.find("task-first").unwrap();
        let late = out.find("task-late").unwrap();
        assert!(first < late, "priority 1 before 2:\n{out}");
        // Only the newest execution.
        assert!(out.contains("FAILED") && !out.contains("SUCCESS"), "{out}");
    }

    #[tokio::test]
    async fn executions_are_newest_first_up_to_max_and_unknown_windows_say_what_to_do() {
        let (result, out, requests) = steward(
            &["executions", "mw-0000000000000000a", "--max", "2", "-o", "json"],
            true,
            vec![
                ok(json!({ "WindowExecutions": [execution(1, "SUCCESS")], "NextToken": "p2" })),
                ok(json!({ "WindowExecutions": [execution(3, "SKIPPED_OVERLAPPING"), execution(2, "FAILED")] })),
            ],
        )
        .await;
        assert_eq!(result.unwrap(), Exit::Ok);
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[1].body["NextToken"], "p2");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v,
            json!({ "WindowExecutions": [execution(3, "SKIPPED_OVERLAPPING"), execution(2, "FAILED")] })
        );

        let (result, _, _) = steward(
            &["executions", "mw-0000000000000000f"],
            false,
            vec![error(
                "DoesNotExistException",
                "no window mw-0000000000000000f",
            )],
        )
        .await;
        let e = result.unwrap_err();
        assert!(
            e.hint().unwrap().contains("steward windows"),
            "{:?}",
            e.hint()
        );
    }
}
