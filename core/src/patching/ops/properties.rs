//! DescribePatchProperties for the systems Steward patches: PRODUCT (the
//! releases Patch Manager knows) and PRIORITY (apt's priorities), as SSM
//! lists them for Debian Server and Ubuntu Server.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::paging::{invalid_token, max_results};
use crate::patching::baseline::OperatingSystem;
use crate::patching::context::{PatchingContext, required};
use crate::patching::predefined::APPROVED_PRIORITIES;

const DEBIAN_PRODUCTS: [&str; 6] = [
    "Debian8", "Debian9", "Debian10", "Debian11", "Debian12", "Debian13",
];
const UBUNTU_PRODUCTS: [&str; 12] = [
    "Ubuntu14.04",
    "Ubuntu16.04",
    "Ubuntu18.04",
    "Ubuntu20.04",
    "Ubuntu20.10",
    "Ubuntu21.04",
    "Ubuntu21.10",
    "Ubuntu22.04",
    "Ubuntu23.04",
    "Ubuntu23.10",
    "Ubuntu24.04",
    "Ubuntu24.10",
];

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct PropertiesInput {
    operating_system: Option<String>,
    property: Option<String>,
    /// Windows only; Linux ignores it, as SSM does.
    #[allow(dead_code)]
    patch_set: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// The values of a property, in SSM's order.
pub fn values(os: OperatingSystem, property: &str) -> Option<&'static [&'static str]> {
    match (os, property) {
        (OperatingSystem::Debian, "PRODUCT") => Some(&DEBIAN_PRODUCTS),
        (OperatingSystem::Ubuntu, "PRODUCT") => Some(&UBUNTU_PRODUCTS),
        (_, "PRIORITY") => Some(&APPROVED_PRIORITIES),
        _ => None,
    }
}

pub(crate) async fn describe_properties(
    ctx: &PatchingContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: PropertiesInput = parse(body)?;
    let os_given = required(&i.operating_system, "operatingSystem")?;
    let property = required(&i.property, "property")?;
    let limit = max_results(i.max_results, 1, 50, 50)?;
    let os = OperatingSystem::parse(Some(os_given))?;
    let all = values(os, property).ok_or_else(|| {
        SsmError::ValidationException(format!(
            "Property {property} is not a patch property of {os}; {os} has PRODUCT and PRIORITY."
        ))
    })?;
    let start: usize = match &i.next_token {
        None => 0,
        Some(t) => t
            .parse()
            .ok()
            .filter(|n| *n > 0 && *n < all.len())
            .ok_or_else(invalid_token)?,
    };
    ctx.caller.authorize("ssm:DescribePatchProperties", "*")?;
    let end = (start + limit).min(all.len());
    let properties: Vec<Value> = all[start..end]
        .iter()
        .map(|v| json!({ "Name": v }))
        .collect();
    let mut answer = json!({ "Properties": properties });
    if end < all.len() {
        answer["NextToken"] = json!(end.to_string());
    }
    Ok(answer)
}
