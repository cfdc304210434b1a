//! DescribeSessions: the sessions still open (`Active`) or ended
//! (`History`), newest first, narrowed by SSM's filters.

use serde::Deserialize;
use serde_json::{Value, json};

use super::super::context::SessionContext;
use super::super::model::{Session, SessionListState, SessionStatus};
use crate::clock::parse_filter_time;
use crate::error::{SsmError, parse_request};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeSessionsRequest {
    state: String,
    #[serde(default)]
    max_results: Option<usize>,
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    filters: Vec<SessionFilter>,
}

/// SSM's SessionFilter members are lower case, unlike its other filters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionFilter {
    key: String,
    value: String,
}

/// SSM's default and largest page.
const MAX_RESULTS: usize = 200;
/// Records read per store page while filtering.
const PAGE: usize = 100;

enum Filter {
    InvokedAfter(f64),
    InvokedBefore(f64),
    Target(String),
    Owner(String),
    Status(SessionStatus),
    SessionId(String),
    /// Whether Standard sessions (all of Steward's) match.
    AccessStandard(bool),
}

impl Filter {
    fn parse(f: &SessionFilter) -> Result<Self, SsmError> {
        Ok(match f.key.as_str() {
            "InvokedAfter" => Filter::InvokedAfter(parse_filter_time(&f.value)?),
            "InvokedBefore" => Filter::InvokedBefore(parse_filter_time(&f.value)?),
            "Target" => Filter::Target(f.value.clone()),
            "Owner" => Filter::Owner(f.value.clone()),
            "SessionId" => Filter::SessionId(f.value.clone()),
            "Status" => Filter::Status(SessionStatus::parse(&f.value).ok_or_else(|| {
                SsmError::InvalidFilterValue(format!(
                    "Status {} is not a session status; give one of Connected, Connecting, Disconnected, Terminated, Terminating, Failed.",
                    f.value
                ))
            })?),
            // Steward's sessions are all Standard (no just-in-time access).
            "AccessType" => match f.value.as_str() {
                "Standard" => Filter::AccessStandard(true),
                "JustInTime" => Filter::AccessStandard(false),
                other => {
                    return Err(SsmError::InvalidFilterValue(format!(
                        "AccessType {other} is not an access type; give Standard or JustInTime."
                    )));
                }
            },
            other => {
                return Err(SsmError::InvalidFilterKey(format!(
                    "Filter key {other} is not supported; use InvokedAfter, InvokedBefore, Target, Owner, Status, SessionId or AccessType."
                )));
            }
        })
    }

    fn matches(&self, s: &Session) -> bool {
        match self {
            Filter::InvokedAfter(t) => s.start_date >= *t,
            Filter::InvokedBefore(t) => s.start_date <= *t,
            Filter::Target(t) => &s.target == t,
            // SSM's Owner filter takes the user's ARN.
            Filter::Owner(o) => &s.owner == o,
            Filter::Status(st) => s.status == *st,
            Filter::SessionId(id) => &s.session_id == id,
            Filter::AccessStandard(standard) => *standard,
        }
    }
}

pub async fn describe_sessions(ctx: &SessionContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let req: DescribeSessionsRequest = parse_request(body)?;
    ctx.caller.authorize(
        "ssm:DescribeSessions",
        &format!("arn:aws:ssm:{}:{}:*", ctx.scope.region, ctx.scope.account),
    )?;
    let state = match req.state.as_str() {
        "Active" => SessionListState::Active,
        "History" => SessionListState::History,
        other => {
            return Err(SsmError::ValidationException(format!(
                "1 validation error detected: Value '{other}' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [Active, History]"
            )));
        }
    };
    let filters = req
        .filters
        .iter()
        .map(Filter::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let limit = req.max_results.unwrap_or(MAX_RESULTS).clamp(1, MAX_RESULTS);
    let mut cursor = req.next_token.clone();
    let mut found = Vec::new();
    loop {
        let (page, next) = ctx
            .store
            .list(
                state,
                cursor.as_deref(),
                PAGE.min(limit - found.len()).max(1),
            )
            .await?;
        found.extend(
            page.into_iter()
                .filter(|s| filters.iter().all(|f| f.matches(s))),
        );
        cursor = next;
        if cursor.is_none() || found.len() >= limit {
            break;
        }
    }
    let mut out = json!({ "Sessions": found.iter().map(shown).collect::<Vec<_>>() });
    if let Some(c) = cursor {
        out["NextToken"] = json!(c);
    }
    Ok(out)
}

/// A session as DescribeSessions shows it.
fn shown(s: &Session) -> Value {
    let mut v = json!({
        "SessionId": s.session_id,
        "Target": s.target,
        "Status": s.status.as_str(),
        "StartDate": s.start_date,
        "DocumentName": s.document_name,
        "Owner": s.owner,
    });
    if let Some(end) = s.end_date {
        v["EndDate"] = json!(end);
    }
    if let Some(r) = &s.reason {
        v["Reason"] = json!(r);
    }
    if let Some(d) = &s.details {
        v["Details"] = json!(d);
    }
    if let Some(m) = &s.max_session_duration {
        v["MaxSessionDuration"] = json!(m);
    }
    if let Some(url) = &s.s3_output_url {
        v["OutputUrl"] = json!({ "S3OutputUrl": url });
    }
    v
}
