//! Every subcommand but `run`: one or a few API calls, then a table or JSON.

use std::io::Write;

use aws_sdk_ssm::Client;
use aws_sdk_ssm::primitives::{DateTime, DateTimeFormat};
use aws_sdk_ssm::types::{CommandInvocation, InstanceInformation, ResourceTypeForTagging, Tag};
use serde_json::{Value, json};

use crate::args::{ActivationCreateArgs, CommandsArgs};
use crate::error::{CliError, Exit};
use crate::json;
use crate::render::{self, InvocationRow, dash};

/// What every command needs: the client and how to print.
pub struct Ctx {
    pub client: Client,
    /// Steward's IAM API (`steward keys`).
    pub iam: crate::iam::IamClient,
    pub json: bool,
    pub stdout_is_terminal: bool,
    /// Tables may use the terminal's width.
    pub wide: bool,
    /// The endpoint the client talks to, when one is configured.
    pub endpoint: Option<String>,
}

impl Ctx {
    pub fn print(&self, text: &str) -> Result<(), CliError> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    }

    pub fn println(&self, line: &str) -> Result<(), CliError> {
        self.print(line)
    }

    pub fn print_json(&self, v: &Value) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(v).map_err(|e| CliError::Other {
            operation: "output",
            detail: e.to_string(),
        })?;
        self.print(&text)
    }
}

/// A time as the tables show it (UTC, to the second).
pub fn when(t: Option<&DateTime>) -> String {
    t.and_then(|d| {
        DateTime::from_secs(d.secs())
            .fmt(DateTimeFormat::DateTime)
            .ok()
    })
    .unwrap_or_else(|| "-".into())
}

fn tag_list(tags: &[Tag]) -> String {
    tags.iter()
        .map(|t| format!("{}={}", t.key(), t.value()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn list_invocations(
    client: &Client,
    command_id: &str,
    details: bool,
) -> Result<Vec<CommandInvocation>, CliError> {
    client
        .list_command_invocations()
        .command_id(command_id)
        .details(details)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| CliError::from_sdk("ListCommandInvocations", e))
}

/// Table rows for invocations, with each node's full output from GetCommandInvocation.
pub async fn invocation_rows(
    client: &Client,
    invocations: &[CommandInvocation],
) -> Result<Vec<InvocationRow>, CliError> {
    let mut rows = Vec::with_capacity(invocations.len());
    for inv in invocations {
        let status = inv
            .status()
            .map(|s| s.as_str())
            .unwrap_or("Pending")
            .to_string();
        let mut row = InvocationRow {
            instance_id: inv.instance_id().unwrap_or_default().to_string(),
            name: inv.instance_name().unwrap_or_default().to_string(),
            status_details: inv.status_details().unwrap_or_default().to_string(),
            status,
            ..Default::default()
        };
        let plugin = inv.command_plugins().first();
        match client
            .get_command_invocation()
            .command_id(inv.command_id().unwrap_or_default())
            .instance_id(&row.instance_id)
            .send()
            .await
        {
            Ok(out) => {
                row.stdout = out.standard_output_content.unwrap_or_default();
                row.stderr = out.standard_error_content.unwrap_or_default();
                row.exit_code = Some(out.response_code).filter(|c| *c != -1);
            }
            Err(e) => {
                let e = CliError::from_sdk("GetCommandInvocation", e);
                match &e {
                    // Not run on the node (yet): show what the listing had.
                    CliError::Api { code, .. } if code == "InvocationDoesNotExist" => {
                        row.stdout = plugin
                            .and_then(|p| p.output())
                            .unwrap_or_default()
                            .to_string();
                        row.exit_code = plugin.map(|p| p.response_code()).filter(|c| *c != -1);
                    }
                    _ => return Err(e),
                }
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

pub async fn nodes(ctx: &Ctx) -> Result<Exit, CliError> {
    let nodes: Vec<InstanceInformation> = ctx
        .client
        .describe_instance_information()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| CliError::from_sdk("DescribeInstanceInformation", e))?;
    let mut tagged = Vec::with_capacity(nodes.len());
    for n in nodes {
        let out = ctx
            .client
            .list_tags_for_resource()
            .resource_type(ResourceTypeForTagging::ManagedInstance)
            .resource_id(n.instance_id().unwrap_or_default())
            .send()
            .await
            .map_err(|e| CliError::from_sdk("ListTagsForResource", e))?;
        tagged.push((n, out.tag_list.unwrap_or_default()));
    }
    if ctx.json {
        let list: Vec<Value> = tagged.iter().map(|(n, t)| json::instance(n, t)).collect();
        ctx.print_json(&json!({ "InstanceInformationList": list }))?;
        return Ok(Exit::Ok);
    }
    if tagged.is_empty() {
        ctx.print("No managed nodes. Create an activation with `steward activation create` and register a node with it.")?;
        return Ok(Exit::Ok);
    }
    let mut t = render::table(
        &[
            "Instance",
            "Name",
            "Ping",
            "Platform",
            "IP",
            "Agent",
            "Last ping",
            "Tags",
        ],
        ctx.wide,
    );
    for (n, tags) in &tagged {
        let platform = [n.platform_name(), n.platform_version()]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        t.add_row(vec![
            dash(n.instance_id()),
            dash(n.name()),
            dash(n.ping_status().map(|s| s.as_str())),
            if platform.is_empty() {
                "-".into()
            } else {
                platform
            },
            dash(n.ip_address()),
            dash(n.agent_version()),
            when(n.last_ping_date_time()),
            tag_list(tags),
        ]);
    }
    ctx.print(&t.to_string())?;
    Ok(Exit::Ok)
}

/// Deregisters one node. No confirmation prompt, as for the other
/// deletions (`associations delete`, `keys delete`): scripts call it.
pub async fn deregister(
    ctx: &Ctx,
    instance_id: &str,
    out: &mut dyn Write,
) -> Result<Exit, CliError> {
    ctx.client
        .deregister_managed_instance()
        .instance_id(instance_id)
        .send()
        .await
        .map_err(|e| CliError::from_sdk("DeregisterManagedInstance", e))?;
    if ctx.json {
        render::emit_json(out, &json!({}))?;
    } else {
        let again = if instance_id.starts_with("i-") {
            "register its agent again (steward-agent register --ec2)"
        } else {
            "register its agent with a new activation"
        };
        render::emit(
            out,
            &format!(
                "Node {instance_id} deregistered. Its command history stays; to manage the machine again, {again}."
            ),
        )?;
    }
    Ok(Exit::Ok)
}

pub async fn activation_create(ctx: &Ctx, args: &ActivationCreateArgs) -> Result<Exit, CliError> {
    let tags = args
        .tags
        .iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| CliError::Usage(format!("bad tag {k}={v}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let expiration = args.expires_in_hours.map(|h| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        DateTime::from_secs((now + u64::from(h) * 3600) as i64)
    });
    let out = ctx
        .client
        .create_activation()
        .set_default_instance_name(args.name.clone())
        .set_description(args.description.clone())
        .set_iam_role(args.iam_role.clone())
        .set_registration_limit(args.limit)
        .set_expiration_date(expiration)
        .set_tags(if tags.is_empty() { None } else { Some(tags) })
        .send()
        .await
        .map_err(|e| CliError::from_sdk("CreateActivation", e))?;
    let id = out.activation_id().unwrap_or_default();
    let code = out.activation_code().unwrap_or_default();
    if ctx.json {
        ctx.print_json(&json!({ "ActivationId": id, "ActivationCode": code }))?;
        return Ok(Exit::Ok);
    }
    ctx.print(&format!(
        "ActivationId:   {id}\nActivationCode: {code}\n\nThe code is shown only now. Register a node with:\n\n  {}\n",
        register_line(ctx.endpoint.as_deref(), id, code)
    ))?;
    Ok(Exit::Ok)
}

/// The exact command that registers a node with an activation.
pub fn register_line(endpoint: Option<&str>, id: &str, code: &str) -> String {
    format!(
        "steward-agent register --api-url {} --activation-id {id} --activation-code {code}",
        endpoint.unwrap_or("<steward-api-url>")
    )
}

pub async fn activation_list(ctx: &Ctx) -> Result<Exit, CliError> {
    let all = ctx
        .client
        .describe_activations()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| CliError::from_sdk("DescribeActivations", e))?;
    if ctx.json {
        let list: Vec<Value> = all.iter().map(json::activation).collect();
        ctx.print_json(&json!({ "ActivationList": list }))?;
        return Ok(Exit::Ok);
    }
    if all.is_empty() {
        ctx.print("No activations. Create one with `steward activation create`.")?;
        return Ok(Exit::Ok);
    }
    let mut t = render::table(
        &[
            "Activation",
            "Name",
            "Description",
            "Registered",
            "Expires",
            "Expired",
            "Tags",
        ],
        ctx.wide,
    );
    for a in &all {
        t.add_row(vec![
            dash(a.activation_id()),
            dash(a.default_instance_name()),
            dash(a.description()),
            format!(
                "{}/{}",
                a.registrations_count().unwrap_or(0),
                a.registration_limit().unwrap_or(0)
            ),
            when(a.expiration_date()),
            if a.expired() {
                "yes".into()
            } else {
                "no".into()
            },
            tag_list(a.tags()),
        ]);
    }
    ctx.print(&t.to_string())?;
    Ok(Exit::Ok)
}

pub async fn commands(ctx: &Ctx, args: &CommandsArgs) -> Result<Exit, CliError> {
    let mut all = Vec::new();
    let mut pages = ctx
        .client
        .list_commands()
        .set_instance_id(args.instance_id.clone())
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| CliError::from_sdk("ListCommands", e))?;
        all.extend(page.commands.unwrap_or_default());
        // Page by page, so that no page past --limit is asked for.
        if all.len() >= args.limit {
            break;
        }
    }
    all.truncate(args.limit);
    if ctx.json {
        let list: Vec<Value> = all.iter().map(json::command).collect();
        ctx.print_json(&json!({ "Commands": list }))?;
        return Ok(Exit::Ok);
    }
    if all.is_empty() {
        ctx.print(
            "No commands yet. Run one with `steward run --targets tag:<key>=<value> -- <command>`.",
        )?;
        return Ok(Exit::Ok);
    }
    let mut t = render::table(
        &[
            "Command",
            "Requested",
            "Status",
            "Done",
            "Errors",
            "Targets",
            "Command line",
            "Comment",
        ],
        ctx.wide,
    );
    for c in &all {
        let line = c
            .parameters()
            .and_then(|p| p.get("commands"))
            .map(|v| v.join("; "))
            .unwrap_or_default();
        let targets = if c.instance_ids().is_empty() {
            c.targets()
                .iter()
                .map(|t| format!("{}={}", t.key().unwrap_or_default(), t.values().join(",")))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            c.instance_ids().join(",")
        };
        t.add_row(vec![
            dash(c.command_id()),
            when(c.requested_date_time()),
            dash(c.status().map(|s| s.as_str())),
            format!("{}/{}", c.completed_count(), c.target_count()),
            c.error_count().to_string(),
            targets,
            render::first_lines(&line, 1),
            dash(c.comment()),
        ]);
    }
    ctx.print(&t.to_string())?;
    Ok(Exit::Ok)
}

pub async fn invocations(ctx: &Ctx, command_id: &str) -> Result<Exit, CliError> {
    let all = list_invocations(&ctx.client, command_id, true).await?;
    if ctx.json {
        let list: Vec<Value> = all.iter().map(json::invocation).collect();
        ctx.print_json(&json!({ "CommandInvocations": list }))?;
        return Ok(Exit::Ok);
    }
    if all.is_empty() {
        ctx.print(&format!(
            "Command {command_id} has no invocations (yet); check the id with `steward commands`."
        ))?;
        return Ok(Exit::Ok);
    }
    let mut t = render::table(
        &[
            "Instance",
            "Name",
            "Status",
            "Details",
            "Exit code",
            "Requested",
            "Output",
        ],
        ctx.wide,
    );
    for i in &all {
        let plugin = i.command_plugins().first();
        t.add_row(vec![
            dash(i.instance_id()),
            dash(i.instance_name()),
            dash(i.status().map(|s| s.as_str())),
            dash(i.status_details()),
            plugin
                .map(|p| p.response_code())
                .filter(|c| *c != -1)
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            when(i.requested_date_time()),
            render::first_lines(
                plugin.and_then(|p| p.output()).unwrap_or_default(),
                render::PREVIEW_LINES,
            ),
        ]);
    }
    ctx.print(&t.to_string())?;
    Ok(Exit::Ok)
}

pub async fn output(
    ctx: &Ctx,
    command_id: &str,
    instance_id: Option<&str>,
) -> Result<Exit, CliError> {
    let instance_ids: Vec<String> = match instance_id {
        Some(id) => vec![id.to_string()],
        None => list_invocations(&ctx.client, command_id, false)
            .await?
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect(),
    };
    let mut outputs = Vec::with_capacity(instance_ids.len());
    for id in &instance_ids {
        let out = ctx
            .client
            .get_command_invocation()
            .command_id(command_id)
            .instance_id(id)
            .send()
            .await
            .map_err(|e| CliError::from_sdk("GetCommandInvocation", e))?;
        outputs.push(out);
    }
    if ctx.json {
        let list: Vec<Value> = outputs.iter().map(json::invocation_output).collect();
        match (instance_id, list.as_slice()) {
            (Some(_), [one]) => ctx.print_json(one)?,
            _ => ctx.print_json(&json!({ "CommandInvocations": list }))?,
        }
        return Ok(Exit::Ok);
    }
    if outputs.is_empty() {
        ctx.print(&format!(
            "Command {command_id} has no invocations (yet); check the id with `steward commands`."
        ))?;
        return Ok(Exit::Ok);
    }
    let rows: Vec<InvocationRow> = outputs
        .into_iter()
        .map(|o| {
            let status = o
                .status()
                .map(|s| s.as_str())
                .unwrap_or("Pending")
                .to_string();
            InvocationRow {
                instance_id: o.instance_id.unwrap_or_default(),
                name: String::new(),
                status_details: o.status_details.unwrap_or_default(),
                status,
                exit_code: Some(o.response_code).filter(|c| *c != -1),
                stdout: o.standard_output_content.unwrap_or_default(),
                stderr: o.standard_error_content.unwrap_or_default(),
            }
        })
        .collect();
    ctx.print(&render::full_outputs(&rows))?;
    Ok(Exit::Ok)
}

pub async fn cancel(
    ctx: &Ctx,
    command_id: &str,
    instance_ids: &[String],
) -> Result<Exit, CliError> {
    ctx.client
        .cancel_command()
        .command_id(command_id)
        .set_instance_ids(if instance_ids.is_empty() {
            None
        } else {
            Some(instance_ids.to_vec())
        })
        .send()
        .await
        .map_err(|e| CliError::from_sdk("CancelCommand", e))?;
    if ctx.json {
        ctx.print_json(&json!({}))?;
    } else {
        ctx.print(&format!(
            "Cancellation of {command_id} requested; follow it with `steward invocations {command_id}`."
        ))?;
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_line_names_the_endpoint_and_activation() {
        assert_eq!(
            register_line(Some("http://127.0.0.1:7070"), "act-1", "code-1"),
            "steward-agent register --api-url http://127.0.0.1:7070 --activation-id act-1 --activation-code code-1"
        );
        assert!(register_line(None, "a", "c").contains("<steward-api-url>"));
    }

    #[test]
    fn times_show_to_the_second() {
        assert_eq!(
            when(Some(&DateTime::from_secs_f64(1_700_000_000.75))),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(when(None), "-");
    }

    #[tokio::test]
    async fn deregister_sends_the_id_and_reports_a_refusal() {
        use crate::fake_ssm::{self, error, ok};
        const ID: &str = "mi-0123456789abcdef0";
        let command = fake_ssm::parse("nodes", &["deregister", ID]).unwrap();
        assert!(matches!(
            command,
            crate::args::Command::Nodes(crate::args::NodesArgs {
                command: Some(crate::args::NodesCommand::Deregister { ref instance_id })
            }) if instance_id == ID
        ));
        assert!(fake_ssm::parse("nodes", &["deregister"]).is_err());

        for json in [false, true] {
            let (result, out, requests) =
                fake_ssm::session(vec![ok(json!({}))], async |fake, out| {
                    deregister(&fake_ssm::ctx(fake, json), ID, out).await
                })
                .await;
            assert_eq!(result.unwrap(), Exit::Ok);
            assert_eq!(
                fake_ssm::ops(&requests),
                [("DeregisterManagedInstance", json!({ "InstanceId": ID }))]
            );
            if json {
                assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), json!({}));
            } else {
                assert!(
                    out.starts_with(&format!("Node {ID} deregistered.")),
                    "{out}"
                );
            }
        }

        let (result, out, _) = fake_ssm::session(
            vec![error("InvalidInstanceId", "not a registered managed node")],
            async |fake, out| deregister(&fake_ssm::ctx(fake, false), ID, out).await,
        )
        .await;
        let e = result.unwrap_err();
        assert!(e.to_string().contains("InvalidInstanceId"), "{e}");
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn commands_stop_paging_once_the_limit_is_reached() {
        use crate::fake_ssm::{self, ok};
        let page = |ids: &[&str], next: Option<&str>| {
            let list: Vec<Value> = ids.iter().map(|id| json!({ "CommandId": id })).collect();
            let mut v = json!({ "Commands": list });
            if let Some(t) = next {
                v["NextToken"] = json!(t);
            }
            ok(v)
        };
        for (limit, replies, pages) in [
            (2, vec![page(&["c-1", "c-2"], Some("p2"))], 1),
            (
                3,
                vec![page(&["c-1", "c-2"], Some("p2")), page(&["c-3"], None)],
                2,
            ),
            (0, vec![page(&[], Some("p2"))], 1),
        ] {
            let args = CommandsArgs {
                instance_id: None,
                limit,
            };
            let (result, _, requests) = fake_ssm::session(replies, async |fake, _| {
                commands(&fake_ssm::ctx(fake, true), &args).await
            })
            .await;
            assert_eq!(result.unwrap(), Exit::Ok);
            assert_eq!(requests.len(), pages, "--limit {limit}");
            if pages == 2 {
                assert_eq!(requests[1].body, json!({ "NextToken": "p2" }));
            }
        }
    }
}
