//! `steward session …`: Session Manager over the SSM API — start an
//! interactive session on a node, list sessions, terminate one.
//!
//! A session's bytes do not go through the API: StartSession answers a token
//! that carries the session key and SQS credentials limited to the session's
//! two queues, and the terminal talks to the node's agent over those queues
//! (`steward_core::sessions`: frames, acks and resends; `pump`: the IO loop).

mod forward;
mod queue;
mod terminal;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::SystemTime;

use aws_sdk_ssm::types::{Session, SessionFilter, SessionFilterKey, SessionState};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use steward_core::sessions::pump;
use steward_core::sessions::{Direction, Peer, SessionToken};

use crate::commands::{Ctx, when};
use crate::error::{CliError, Exit};
use crate::json::Obj;
use crate::render::{self, dash, emit, emit_json};

use self::queue::{SessionLink, refresh_delay};
use self::terminal::{Finish, Terminal, interact};

#[derive(Debug, Subcommand)]
#[command(
    after_help = "Example:\n  steward session start mi-0123456789abcdef0\n  steward session start mi-0123456789abcdef0 --reason 'disk full on /var'\n  steward session forward mi-0123456789abcdef0 --remote-port 5432 --local-port 15432\n  steward session list --state History --target mi-0123456789abcdef0\n  steward session terminate <session-id>"
)]
pub enum SessionCommand {
    /// Open an interactive shell on a node (StartSession).
    ///
    /// Ctrl-C goes to the node. The session ends when its shell exits (exit
    /// 0), when standard input closes (the session is terminated; exit 0), or
    /// on SIGTERM, SIGHUP or SIGINT to steward itself (the session is
    /// terminated; exit 1).
    Start(SessionStartArgs),
    /// Forward a local TCP port to a port on a node, or on a host the node
    /// reaches (StartSession with AWS-StartPortForwardingSession[ToRemoteHost]).
    ///
    /// Listens on 127.0.0.1; every connection to it is one stream of the
    /// session. Ctrl-C ends the session (exit 0); so does the session's own
    /// end; SIGTERM or SIGHUP end it with exit 1.
    Forward(forward::SessionForwardArgs),
    /// List sessions (DescribeSessions): the active ones, or the history.
    List(SessionListArgs),
    /// End a session (TerminateSession) and print its id.
    Terminate {
        /// The session's id.
        session_id: String,
    },
}

#[derive(Debug, Args)]
pub struct SessionStartArgs {
    /// The node (mi-…, or i-… for an EC2 node).
    pub target: String,
    /// The Session document (default: the API's, SSM-SessionManagerRunShell).
    #[arg(long)]
    pub document_name: Option<String>,
    /// The document's parameters: `name=value[,value…][,name=value…]` (a piece
    /// without `=` is one more value of the name before it), or SSM's JSON
    /// map `{"name":["value"]}`. Repeat to add more.
    #[arg(long = "parameters", value_parser = parse_parameters)]
    pub parameters: Vec<Parameters>,
    /// Why the session is started (recorded with it).
    #[arg(long)]
    pub reason: Option<String>,
}

impl SessionStartArgs {
    /// The `Parameters` map: each name with its values, in the order given.
    pub fn parameter_map(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for Parameters(pairs) in &self.parameters {
            for (name, values) in pairs {
                out.entry(name.clone())
                    .or_default()
                    .extend(values.iter().cloned());
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    Active,
    History,
}

#[derive(Debug, Args)]
pub struct SessionListArgs {
    /// `Active` sessions (the default) or the `History` of ended ones.
    #[arg(long, value_enum, ignore_case = true, default_value = "active")]
    pub state: StateArg,
    /// Only sessions on this node.
    #[arg(long)]
    pub target: Option<String>,
}

/// One `--parameters` value: names with their values, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameters(pub Vec<(String, Vec<String>)>);

/// Parses `--parameters`: the AWS CLI's shorthand for a map of lists
/// (`portNumber=80,localPortNumber=8080`, `commands=ls,pwd`), or JSON.
pub fn parse_parameters(s: &str) -> Result<Parameters, String> {
    let text = s.trim();
    if text.starts_with('{') {
        let map: BTreeMap<String, StringOrList> = serde_json::from_str(text).map_err(|e| {
            format!("`{s}`: not a JSON map of names to lists of strings ({e}); e.g. {{\"portNumber\":[\"80\"]}}")
        })?;
        if let Some(empty) = map.keys().find(|k| k.trim().is_empty()) {
            return Err(format!("`{s}`: the parameter name `{empty}` is empty"));
        }
        return Ok(Parameters(
            map.into_iter().map(|(k, v)| (k, v.into_list())).collect(),
        ));
    }
    let mut pairs: Vec<(String, Vec<String>)> = Vec::new();
    for piece in text.split(',') {
        match piece.split_once('=') {
            Some((name, value)) => {
                let name = name.trim();
                if name.is_empty() {
                    return Err(format!("`{s}`: a parameter name is empty"));
                }
                pairs.push((name.to_string(), vec![value.to_string()]));
            }
            None => match pairs.last_mut() {
                Some((_, values)) => values.push(piece.to_string()),
                None => {
                    return Err(format!(
                        "`{s}`: expected name=value[,name=value…], e.g. portNumber=80"
                    ));
                }
            },
        }
    }
    Ok(Parameters(pairs))
}

/// A JSON parameter value: SSM takes lists, people write single strings too.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    fn into_list(self) -> Vec<String> {
        match self {
            StringOrList::One(s) => vec![s],
            StringOrList::Many(v) => v,
        }
    }
}

pub async fn run(ctx: &Ctx, command: &SessionCommand) -> Result<Exit, CliError> {
    let mut out = std::io::stdout();
    match command {
        SessionCommand::Start(args) => start(ctx, args).await,
        SessionCommand::Forward(args) => forward::forward(ctx, args).await,
        SessionCommand::List(args) => list(ctx, args, &mut out).await,
        SessionCommand::Terminate { session_id } => terminate(ctx, session_id, &mut out).await,
    }
}

/// The text `start` writes (to standard error) once the session exists, as
/// SSM's session plugin does.
fn starting_line(session_id: &str) -> String {
    format!("\nStarting session with SessionId: {session_id}\n\n")
}

/// The text written once the session ended, as SSM's session plugin does (the
/// terminal may have been raw, hence the carriage returns).
fn exiting_line(session_id: &str) -> String {
    format!("\r\n\r\nExiting session with sessionId: {session_id}.\r\n")
}

/// The same, when the terminal was not raw (`session forward`).
fn exiting_line_plain(session_id: &str) -> String {
    format!("\nExiting session with sessionId: {session_id}.\n")
}

async fn start(ctx: &Ctx, args: &SessionStartArgs) -> Result<Exit, CliError> {
    let (session_id, token) = start_session(
        ctx,
        &args.target,
        args.document_name.as_deref(),
        args.parameter_map(),
        args.reason.as_deref(),
    )
    .await?;
    eprint!("{}", starting_line(&session_id));
    let Channel { ends, refresher } = open_channel(ctx, &session_id, token).await?;
    let finished = match Terminal::open() {
        Ok(mut terminal) => {
            let initial = terminal.size();
            let mut stdout = std::io::stdout();
            let finished = interact(
                ends,
                terminal.take_input(),
                terminal.take_controls(),
                initial,
                &mut stdout,
            )
            .await;
            // Before anything more is printed: the terminal is the user's again.
            match terminal.restore() {
                Ok(()) => finished.map_err(|e| e.to_string()),
                Err(e) => Err(format!("cannot restore the terminal: {e}")),
            }
        }
        Err(e) => Err(format!("cannot set up the terminal: {e}")),
    };
    refresher.abort();

    match finished {
        Ok(Finish::AgentClosed(_)) => {
            eprint!("{}", exiting_line(&session_id));
            Ok(Exit::Ok)
        }
        Ok(Finish::InputEnded) => {
            terminate_session(ctx, &session_id).await?;
            eprint!("{}", exiting_line(&session_id));
            Ok(Exit::Ok)
        }
        // Ended cleanly, but not by the session's own end: scripts can tell.
        Ok(Finish::Stopped(_)) => {
            terminate_session(ctx, &session_id).await?;
            eprint!("{}", exiting_line(&session_id));
            Ok(Exit::CommandFailed)
        }
        Err(detail) => Err(terminate_after(
            ctx,
            &session_id,
            CliError::Other {
                operation: "session",
                detail,
            },
        )
        .await),
    }
}

fn link_error(detail: String) -> CliError {
    CliError::Other {
        operation: "StartSession",
        detail,
    }
}

/// A started session's channel to the agent, and the task that keeps its
/// queue credentials fresh (abort it once the channel is done with).
struct Channel {
    ends: pump::ChannelEnds,
    refresher: tokio::task::JoinHandle<()>,
}

/// Joins the session StartSession answered: the token's queues, the pump
/// over them, and credential renewal through ResumeSession. A token this
/// client cannot use ends the session rather than leave it open on the node.
async fn open_channel(
    ctx: &Ctx,
    session_id: &str,
    token: Result<SessionToken, CliError>,
) -> Result<Channel, CliError> {
    let connected = token.and_then(|token| {
        let key = token.session_key().map_err(|e| link_error(e.to_string()))?;
        let expiration = queue::expiration(&token).map_err(|e| link_error(e.to_string()))?;
        let link = SessionLink::open(&token, session_id, queue::sqs_endpoint_from_env())
            .map_err(|e| link_error(e.to_string()))?;
        Ok((key, expiration, link))
    });
    let (key, expiration, link) = match connected {
        Ok(c) => c,
        Err(e) => return Err(terminate_after(ctx, session_id, e).await),
    };
    let ends = pump::start(
        Peer::new(session_id, Direction::ClientToAgent, key),
        session_id.to_string(),
        link.receive_queue(),
        link.send_queue(),
    );
    let refresher = tokio::spawn(refresh_credentials(
        ctx.client.clone(),
        session_id.to_string(),
        link,
        expiration,
    ));
    Ok(Channel { ends, refresher })
}

/// Calls StartSession: the session's id, and its decoded token (or why it
/// cannot be used).
async fn start_session(
    ctx: &Ctx,
    target: &str,
    document_name: Option<&str>,
    parameters: BTreeMap<String, Vec<String>>,
    reason: Option<&str>,
) -> Result<(String, Result<SessionToken, CliError>), CliError> {
    let request = ctx
        .client
        .start_session()
        .target(target)
        .set_document_name(document_name.map(str::to_string))
        .set_reason(reason.map(str::to_string))
        .set_parameters(if parameters.is_empty() {
            None
        } else {
            Some(parameters.into_iter().collect())
        });
    let out = request
        .send()
        .await
        .map_err(|e| CliError::from_sdk("StartSession", e))?;
    let session_id = out
        .session_id()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| link_error("the answer has no SessionId".into()))?
        .to_string();
    let token = out
        .token_value()
        .ok_or_else(|| link_error("the answer has no TokenValue".into()))
        .and_then(|t| {
            SessionToken::decode(t).map_err(|e| link_error(format!("its TokenValue: {e}")))
        });
    Ok((session_id, token))
}

/// Ends a session this client cannot go on with; the error says so, and
/// whether the session could be ended.
async fn terminate_after(ctx: &Ctx, session_id: &str, error: CliError) -> CliError {
    match terminate_session(ctx, session_id).await {
        Ok(()) => error,
        Err(also) => CliError::Other {
            operation: "session",
            detail: format!(
                "{error}; then ending session {session_id} failed too ({also}): end it with `steward session terminate {session_id}`"
            ),
        },
    }
}

async fn terminate_session(ctx: &Ctx, session_id: &str) -> Result<(), CliError> {
    ctx.client
        .terminate_session()
        .session_id(session_id)
        .send()
        .await
        .map_err(|e| CliError::from_sdk("TerminateSession", e))?;
    Ok(())
}

/// Keeps the queue credentials fresh: ResumeSession a little before they
/// expire, then the clients use the new ones. Runs until aborted.
async fn refresh_credentials(
    client: aws_sdk_ssm::Client,
    session_id: String,
    link: SessionLink,
    mut expiration: SystemTime,
) {
    loop {
        tokio::time::sleep(refresh_delay(SystemTime::now(), expiration)).await;
        match resume(&client, &session_id, &link).await {
            Ok(fresh) => expiration = fresh,
            // The old credentials may still work a while; the next attempt
            // comes sooner as they near their end.
            Err(e) => eprint!(
                "\r\nsteward: cannot refresh the session's credentials: {}\r\n",
                e.to_string().replace('\n', "\r\n")
            ),
        }
    }
}

async fn resume(
    client: &aws_sdk_ssm::Client,
    session_id: &str,
    link: &SessionLink,
) -> Result<SystemTime, CliError> {
    let out = client
        .resume_session()
        .session_id(session_id)
        .send()
        .await
        .map_err(|e| CliError::from_sdk("ResumeSession", e))?;
    let resumed = |detail: String| CliError::Other {
        operation: "ResumeSession",
        detail,
    };
    let token = out
        .token_value()
        .ok_or_else(|| resumed("the answer has no TokenValue".into()))?;
    let token = SessionToken::decode(token).map_err(|e| resumed(format!("its TokenValue: {e}")))?;
    link.replace(&token).map_err(|e| resumed(e.to_string()))
}

async fn list(ctx: &Ctx, args: &SessionListArgs, out: &mut dyn Write) -> Result<Exit, CliError> {
    let state = match args.state {
        StateArg::Active => SessionState::Active,
        StateArg::History => SessionState::History,
    };
    let mut request = ctx.client.describe_sessions().state(state);
    if let Some(target) = &args.target {
        let filter = SessionFilter::builder()
            .key(SessionFilterKey::TargetId)
            .value(target)
            .build()
            .map_err(|e| CliError::Usage(format!("--target {target}: {e}")))?;
        request = request.filters(filter);
    }
    let sessions: Vec<Session> = request
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| CliError::from_sdk("DescribeSessions", e))?;
    if ctx.json {
        let list: Vec<Value> = sessions.iter().map(session_json).collect();
        emit_json(out, &json!({ "Sessions": list }))?;
        return Ok(Exit::Ok);
    }
    emit(out, &list_table(&sessions, args.state, ctx.wide))?;
    Ok(Exit::Ok)
}

pub fn session_json(s: &Session) -> Value {
    let output_url = s.output_url().map(|u| {
        Obj::default()
            .s("S3OutputUrl", u.s3_output_url())
            .s("CloudWatchOutputUrl", u.cloud_watch_output_url())
            .done()
    });
    Obj::default()
        .s("SessionId", s.session_id())
        .s("Target", s.target())
        .s("Status", s.status().map(|x| x.as_str()))
        .t("StartDate", s.start_date())
        .t("EndDate", s.end_date())
        .s("DocumentName", s.document_name())
        .s("Owner", s.owner())
        .s("Reason", s.reason())
        .s("Details", s.details())
        .opt("OutputUrl", output_url)
        .s("MaxSessionDuration", s.max_session_duration())
        .s("AccessType", s.access_type().map(|x| x.as_str()))
        .done()
}

/// The table `session list` prints (or what to do when there is none).
pub fn list_table(sessions: &[Session], state: StateArg, wide: bool) -> String {
    if sessions.is_empty() {
        return match state {
            StateArg::Active => {
                "No active sessions. Start one with `steward session start <node-id>` (list nodes with `steward nodes`).".into()
            }
            StateArg::History => "No ended sessions.".into(),
        };
    }
    let mut t = render::table(
        &[
            "SessionId",
            "Target",
            "Status",
            "StartDate",
            "EndDate",
            "Owner",
            "Reason",
        ],
        wide,
    );
    for s in sessions {
        t.add_row(vec![
            dash(s.session_id()),
            dash(s.target()),
            dash(s.status().map(|x| x.as_str())),
            when(s.start_date()),
            when(s.end_date()),
            dash(s.owner()),
            dash(s.reason()),
        ]);
    }
    t.to_string()
}

async fn terminate(ctx: &Ctx, session_id: &str, out: &mut dyn Write) -> Result<Exit, CliError> {
    let answer = ctx
        .client
        .terminate_session()
        .session_id(session_id)
        .send()
        .await
        .map_err(|e| CliError::from_sdk("TerminateSession", e))?;
    let id = answer.session_id().unwrap_or(session_id);
    if ctx.json {
        emit_json(out, &json!({ "SessionId": id }))?;
    } else {
        emit(out, id)?;
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests;
