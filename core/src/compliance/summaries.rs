//! ListComplianceSummaries and ListResourceComplianceSummaries: the
//! resources' summaries per compliance type, read in (type, resource)
//! order and filtered; per type, resources counted by status and overall
//! severity.

use serde::Deserialize;
use serde_json::{Value, json};

use super::context::ComplianceContext;
use super::filters::{self, Field, Filter, FilterInput};
use super::model::{ResourceSummary, SeverityCounts, Status};
use super::ports::SummaryKey;
use super::token::{self, After};
use crate::access::Authorizer;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::paging::max_results;

const KEYS: &[&str] = &[
    "ComplianceType",
    "Status",
    "OverallSeverity",
    "ResourceId",
    "ResourceType",
    "ExecutionId",
    "ExecutionType",
    "ExecutionTime",
];

/// Summaries read from the store per page.
const STORE_PAGE: usize = 100;
/// Store pages one ListResourceComplianceSummaries reads at most while its
/// filters keep nothing; it then answers what it has and a NextToken.
const MAX_PAGES_PER_CALL: usize = 10;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ListInput {
    filters: Vec<FilterInput>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

fn passes(f: &Filter, s: &ResourceSummary) -> bool {
    f.passes(match f.key {
        "ComplianceType" => Field::Text(&s.compliance_type),
        "Status" => Field::Text(s.summary.status.as_str()),
        "OverallSeverity" => Field::Text(s.summary.overall_severity.as_str()),
        "ResourceId" => Field::Text(&s.resource_id),
        "ResourceType" => Field::Text(&s.resource_type),
        "ExecutionId" => Field::Text(s.execution.execution_id.as_deref().unwrap_or_default()),
        "ExecutionType" => Field::Text(s.execution.execution_type.as_deref().unwrap_or_default()),
        _ => Field::Time(s.execution.execution_time),
    })
}

fn start(after: Option<After>) -> Option<SummaryKey> {
    after.map(|a| SummaryKey {
        compliance_type: a.compliance_type,
        resource_id: a.key,
    })
}

pub(super) async fn list_resource_compliance_summaries(
    ctx: &ComplianceContext<'_>,
    caller: &dyn Authorizer,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: ListInput = parse(body)?;
    let limit = max_results(i.max_results, 1, 50, 50)?;
    let filters = filters::parse(i.filters, KEYS)?;
    caller.authorize(
        "ssm:ListResourceComplianceSummaries",
        &ctx.resource_arn("*"),
    )?;
    let mut cursor = start(token::decode(i.next_token.as_deref())?);
    let mut out: Vec<ResourceSummary> = Vec::new();
    // Whether anything may follow where this page stops.
    let mut more = false;
    'read: for _ in 0..MAX_PAGES_PER_CALL {
        let (page, more_in_store) = ctx.store.summaries(cursor.as_ref(), STORE_PAGE).await?;
        more = more_in_store;
        let mut rows = page.into_iter();
        for s in rows.by_ref() {
            cursor = Some(SummaryKey {
                compliance_type: s.compliance_type.clone(),
                resource_id: Some(s.resource_id.clone()),
            });
            if filters.iter().all(|f| passes(f, &s)) {
                out.push(s);
                if out.len() == limit {
                    more |= rows.next().is_some();
                    break 'read;
                }
            }
        }
        if !more {
            break;
        }
    }
    let mut answer = json!({
        "ResourceComplianceSummaryItems": out.iter().map(ResourceSummary::to_wire).collect::<Vec<_>>(),
    });
    // A page cut short by the read limit goes on from the last row read.
    if more && let Some(k) = cursor {
        answer["NextToken"] = json!(token::encode(&After {
            compliance_type: k.compliance_type,
            key: k.resource_id,
        }));
    }
    Ok(answer)
}

/// One compliance type's resources, counted.
#[derive(Debug, Default)]
struct TypeCounts {
    compliant: SeverityCounts,
    non_compliant: SeverityCounts,
}

impl TypeCounts {
    fn add(&mut self, s: &ResourceSummary) {
        match s.summary.status {
            Status::Compliant => self.compliant.add(s.summary.overall_severity, 1),
            Status::NonCompliant => self.non_compliant.add(s.summary.overall_severity, 1),
        }
    }

    fn to_wire(&self, compliance_type: &str) -> Value {
        json!({
            "ComplianceType": compliance_type,
            "CompliantSummary": {
                "CompliantCount": self.compliant.total(),
                "SeveritySummary": self.compliant.to_wire(),
            },
            "NonCompliantSummary": {
                "NonCompliantCount": self.non_compliant.total(),
                "SeveritySummary": self.non_compliant.to_wire(),
            },
        })
    }
}

pub(super) async fn list_compliance_summaries(
    ctx: &ComplianceContext<'_>,
    caller: &dyn Authorizer,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: ListInput = parse(body)?;
    let limit = max_results(i.max_results, 1, 50, 50)?;
    let filters = filters::parse(i.filters, KEYS)?;
    caller.authorize("ssm:ListComplianceSummaries", &ctx.resource_arn("*"))?;
    // A page of types starts after the last type of the previous one.
    let mut cursor = token::decode(i.next_token.as_deref())?.map(|a| SummaryKey {
        compliance_type: a.compliance_type,
        resource_id: None,
    });
    let mut types: Vec<(String, TypeCounts)> = Vec::new();
    // Every summary of a type is read before the type is answered: a page
    // ends when a type past the last one it holds is met.
    let mut more_types = false;
    'read: loop {
        let (page, more) = ctx.store.summaries(cursor.as_ref(), STORE_PAGE).await?;
        for s in page {
            cursor = Some(SummaryKey {
                compliance_type: s.compliance_type.clone(),
                resource_id: Some(s.resource_id.clone()),
            });
            if !filters.iter().all(|f| passes(f, &s)) {
                continue;
            }
            if types.last().is_none_or(|(t, _)| *t != s.compliance_type) {
                if types.len() == limit {
                    more_types = true;
                    break 'read;
                }
                types.push((s.compliance_type.clone(), TypeCounts::default()));
            }
            if let Some((_, counts)) = types.last_mut() {
                counts.add(&s);
            }
        }
        if !more {
            break;
        }
    }
    let mut answer = json!({
        "ComplianceSummaryItems": types.iter().map(|(t, c)| c.to_wire(t)).collect::<Vec<_>>(),
    });
    if more_types && let Some((t, _)) = types.last() {
        answer["NextToken"] = json!(token::encode(&After {
            compliance_type: t.clone(),
            key: None,
        }));
    }
    Ok(answer)
}
