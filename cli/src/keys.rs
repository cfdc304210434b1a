//! `steward keys …`: IAM users, inline policies and access keys, a thin
//! layer over Steward's IAM API. JSON output uses IAM's field names, as
//! `aws iam` prints them.

use serde_json::{Map, Value, json};

use crate::args::KeysCommand;
use crate::commands::Ctx;
use crate::error::{CliError, Exit};
use crate::iam::Node;
use crate::render;

/// Every page of a List operation: the `<member>`s of `list`.
async fn all(
    ctx: &Ctx,
    action: &'static str,
    list: &str,
    params: &[(&str, &str)],
) -> Result<Vec<Node>, CliError> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut p: Vec<(&str, &str)> = params.to_vec();
        if let Some(m) = &marker {
            p.push(("Marker", m));
        }
        let page = ctx.iam.call(action, &p).await?;
        out.extend(page.members(list).into_iter().cloned());
        if page.text_at(&["IsTruncated"]) != "true" {
            return Ok(out);
        }
        marker = Some(page.text_at(&["Marker"]));
    }
}

/// An element's children as a JSON object of strings.
fn object(n: &Node) -> Value {
    let m: Map<String, Value> = n
        .children
        .iter()
        .map(|c| (c.name.clone(), Value::from(c.text.clone())))
        .collect();
    Value::Object(m)
}

/// IAM returns policy documents URL-encoded.
fn decode_document(s: &str) -> Value {
    let text: String = form_urlencoded::parse(format!("d={}", s.replace('+', "%2B")).as_bytes())
        .map(|(_, v)| v.into_owned())
        .next()
        .unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

fn table_of(
    ctx: &Ctx,
    header: &[&str],
    rows: Vec<Vec<String>>,
    empty: &str,
) -> Result<(), CliError> {
    if rows.is_empty() {
        return ctx.print(empty);
    }
    let mut t = render::table(header, ctx.wide);
    for r in rows {
        t.add_row(r);
    }
    ctx.print(&t.to_string())
}

pub async fn run(ctx: &Ctx, cmd: &KeysCommand) -> Result<Exit, CliError> {
    match cmd {
        KeysCommand::Users => {
            let users = all(ctx, "ListUsers", "Users", &[]).await?;
            if ctx.json {
                let list: Vec<Value> = users.iter().map(object).collect();
                ctx.print_json(&json!({ "Users": list }))?;
            } else {
                let rows = users
                    .iter()
                    .map(|u| {
                        vec![
                            u.text_at(&["UserName"]),
                            u.text_at(&["Arn"]),
                            u.text_at(&["CreateDate"]),
                        ]
                    })
                    .collect();
                table_of(
                    ctx,
                    &["User", "Arn", "Created"],
                    rows,
                    "No users. Create one with `steward keys create-user <name>`.",
                )?;
            }
        }
        KeysCommand::CreateUser { user } => {
            let r = ctx.iam.call("CreateUser", &[("UserName", user)]).await?;
            let u = r.child("User").cloned().unwrap_or_default();
            if ctx.json {
                ctx.print_json(&json!({ "User": object(&u) }))?;
            } else {
                ctx.print(&format!(
                    "Created user {} ({}). Give it a policy with `steward keys put-policy {user} <name> --file policy.json`.",
                    u.text_at(&["UserName"]),
                    u.text_at(&["Arn"])
                ))?;
            }
        }
        KeysCommand::DeleteUser { user } => {
            ctx.iam.call("DeleteUser", &[("UserName", user)]).await?;
            done(ctx, &format!("Deleted user {user}."))?;
        }
        KeysCommand::PutPolicy {
            user,
            policy_name,
            file,
        } => {
            let document = if file == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(file).map_err(|e| {
                    CliError::Usage(format!("cannot read the policy file {file}: {e}"))
                })?
            };
            ctx.iam
                .call(
                    "PutUserPolicy",
                    &[
                        ("UserName", user),
                        ("PolicyName", policy_name),
                        ("PolicyDocument", &document),
                    ],
                )
                .await?;
            done(ctx, &format!("Put policy {policy_name} on user {user}."))?;
        }
        KeysCommand::Policies { user } => {
            let names = all(
                ctx,
                "ListUserPolicies",
                "PolicyNames",
                &[("UserName", user)],
            )
            .await?;
            let mut docs = Vec::new();
            for n in &names {
                let r = ctx
                    .iam
                    .call(
                        "GetUserPolicy",
                        &[("UserName", user), ("PolicyName", &n.text)],
                    )
                    .await?;
                docs.push((
                    n.text.clone(),
                    decode_document(&r.text_at(&["PolicyDocument"])),
                ));
            }
            if ctx.json {
                let list: Vec<Value> = docs
                    .into_iter()
                    .map(|(n, d)| json!({ "UserName": user, "PolicyName": n, "PolicyDocument": d }))
                    .collect();
                ctx.print_json(&json!({ "Policies": list }))?;
            } else {
                let rows = docs
                    .into_iter()
                    .map(|(n, d)| vec![n, serde_json::to_string_pretty(&d).unwrap_or_default()])
                    .collect();
                table_of(
                    ctx,
                    &["Policy", "Document"],
                    rows,
                    &format!("User {user} has no policies."),
                )?;
            }
        }
        KeysCommand::DeletePolicy { user, policy_name } => {
            ctx.iam
                .call(
                    "DeleteUserPolicy",
                    &[("UserName", user), ("PolicyName", policy_name)],
                )
                .await?;
            done(
                ctx,
                &format!("Deleted policy {policy_name} of user {user}."),
            )?;
        }
        KeysCommand::Create { user } => {
            let r = ctx
                .iam
                .call("CreateAccessKey", &[("UserName", user)])
                .await?;
            let k = r.child("AccessKey").cloned().unwrap_or_default();
            if ctx.json {
                ctx.print_json(&json!({ "AccessKey": object(&k) }))?;
            } else {
                ctx.print(&format!(
                    "aws_access_key_id = {}\naws_secret_access_key = {}\nThe secret is shown only now: keep it in the profile of the person or tool that uses it.",
                    k.text_at(&["AccessKeyId"]),
                    k.text_at(&["SecretAccessKey"])
                ))?;
            }
        }
        KeysCommand::List { user } => {
            let keys = all(
                ctx,
                "ListAccessKeys",
                "AccessKeyMetadata",
                &[("UserName", user)],
            )
            .await?;
            if ctx.json {
                let list: Vec<Value> = keys.iter().map(object).collect();
                ctx.print_json(&json!({ "AccessKeyMetadata": list }))?;
            } else {
                let rows = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.text_at(&["AccessKeyId"]),
                            k.text_at(&["Status"]),
                            k.text_at(&["CreateDate"]),
                        ]
                    })
                    .collect();
                table_of(
                    ctx,
                    &["Access key", "Status", "Created"],
                    rows,
                    &format!(
                        "User {user} has no access keys. Create one with `steward keys create {user}`."
                    ),
                )?;
            }
        }
        KeysCommand::Activate { user, key_id } => {
            status(ctx, user, key_id, "Active").await?;
        }
        KeysCommand::Deactivate { user, key_id } => {
            status(ctx, user, key_id, "Inactive").await?;
        }
        KeysCommand::Delete { user, key_id } => {
            ctx.iam
                .call(
                    "DeleteAccessKey",
                    &[("UserName", user), ("AccessKeyId", key_id)],
                )
                .await?;
            done(ctx, &format!("Deleted access key {key_id} of user {user}."))?;
        }
    }
    Ok(Exit::Ok)
}

async fn status(ctx: &Ctx, user: &str, key_id: &str, status: &str) -> Result<(), CliError> {
    ctx.iam
        .call(
            "UpdateAccessKey",
            &[
                ("UserName", user),
                ("AccessKeyId", key_id),
                ("Status", status),
            ],
        )
        .await?;
    done(
        ctx,
        &format!("Access key {key_id} of user {user} is {status}."),
    )
}

/// Actions without an answer: a line for people, `{}` for scripts (as `aws iam`).
fn done(ctx: &Ctx, line: &str) -> Result<(), CliError> {
    if ctx.json {
        ctx.print_json(&json!({}))
    } else {
        ctx.print(line)
    }
}
