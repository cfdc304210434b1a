//! DescribePatchBaselines: the predefined baselines, then the account's,
//! filtered by NAME_PREFIX, OWNER (Self, AWS or All) and OPERATING_SYSTEM,
//! paged.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::filters::{
    DEFAULT_RESULTS, DescribeInput, MAX_RESULTS, decode, encode, unknown_key, values,
};
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::paging::max_results;
use crate::patching::baseline::{OperatingSystem, PatchBaseline};
use crate::patching::context::{PatchingContext, default_id};
use crate::patching::predefined;
use crate::patching::wire::identity;

/// Store pages one call reads at most while its filters keep nothing.
const MAX_PAGES_PER_CALL: usize = 10;
const KEYS: &str = "NAME_PREFIX, OWNER or OPERATING_SYSTEM";

/// Where the next page starts.
#[derive(Debug, Serialize, Deserialize)]
enum Cursor {
    /// The predefined baselines from this index on, then the account's.
    Predefined(usize),
    /// The account's, from the store's token.
    Stored(Option<String>),
}

#[derive(Default)]
struct Filters {
    prefixes: Vec<String>,
    systems: Vec<String>,
    aws: bool,
    own: bool,
}

impl Filters {
    fn read(i: &DescribeInput) -> Result<Self, SsmError> {
        let mut f = Filters {
            aws: true,
            own: true,
            ..Filters::default()
        };
        for filter in &i.filters {
            let vals = values(filter)?;
            match filter.key.as_str() {
                "NAME_PREFIX" => f.prefixes.extend(vals.iter().cloned()),
                "OPERATING_SYSTEM" => f.systems.extend(vals.iter().cloned()),
                "OWNER" => {
                    let (mut aws, mut own) = (false, false);
                    for v in vals {
                        match v.as_str() {
                            "AWS" => aws = true,
                            "Self" => own = true,
                            "All" => (aws, own) = (true, true),
                            other => {
                                return Err(SsmError::ValidationException(format!(
                                    "OWNER {other} is not an owner of patch baselines; use Self, AWS or All."
                                )));
                            }
                        }
                    }
                    f.aws &= aws;
                    f.own &= own;
                }
                other => return Err(unknown_key(other, "DescribePatchBaselines", KEYS)),
            }
        }
        Ok(f)
    }

    fn passes(&self, b: &PatchBaseline) -> bool {
        (self.prefixes.is_empty() || self.prefixes.iter().any(|p| b.name.starts_with(p.as_str())))
            && (self.systems.is_empty()
                || self
                    .systems
                    .iter()
                    .any(|s| s == b.operating_system.as_str()))
    }
}

pub(crate) async fn describe_baselines(
    ctx: &PatchingContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: DescribeInput = parse(body)?;
    let limit = max_results(i.max_results, 1, MAX_RESULTS, DEFAULT_RESULTS)?;
    let f = Filters::read(&i)?;
    let cursor = match &i.next_token {
        Some(t) => decode(t)?,
        None => Cursor::Predefined(0),
    };
    ctx.caller
        .authorize("ssm:DescribePatchBaselines", &ctx.baseline_arn("*"))?;
    let mut defaults = Vec::new();
    for os in OperatingSystem::ALL {
        defaults.push(default_id(ctx.store, os).await?);
    }
    let is_default = |id: &str| defaults.iter().any(|d| d == id);

    let mut out: Vec<Value> = Vec::new();
    let mut next: Option<Cursor> = None;
    let mut stored_from: Option<Option<String>> = match cursor {
        Cursor::Predefined(start) => {
            let all = predefined::all();
            let mut at = start;
            while f.aws && at < all.len() && out.len() < limit {
                let p = &all[at];
                if f.passes(&p.baseline) {
                    out.push(identity(&ctx.shown_id(p.id), &p.baseline, is_default(p.id)));
                }
                at += 1;
            }
            if f.aws && at < all.len() {
                next = Some(Cursor::Predefined(at));
                None
            } else if !f.own {
                None
            } else if out.len() == limit {
                next = Some(Cursor::Stored(None));
                None
            } else {
                Some(None)
            }
        }
        Cursor::Stored(token) => f.own.then_some(token),
    };
    if let Some(mut token) = stored_from.take() {
        for _ in 0..MAX_PAGES_PER_CALL {
            let page = ctx.store.list(limit - out.len(), token.as_deref()).await?;
            out.extend(
                page.items
                    .iter()
                    .filter(|s| f.passes(&s.baseline))
                    .map(|s| identity(&s.id, &s.baseline, is_default(&s.id))),
            );
            token = page.next_token;
            if token.is_none() || out.len() >= limit {
                break;
            }
        }
        next = token.map(|t| Cursor::Stored(Some(t)));
    }
    let mut answer = json!({ "BaselineIdentities": out });
    if let Some(c) = next {
        answer["NextToken"] = json!(encode(&c));
    }
    Ok(answer)
}
