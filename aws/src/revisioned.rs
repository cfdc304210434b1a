//! Writes of resources kept as a head item (`Version` 0, carrying a
//! `Revision`) plus version items, as Parameter Store and documents are:
//! every head write is a transaction conditional on the revision it read.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use steward_core::SsmError;

use crate::internal;
use crate::item::{Item, n, s};

/// The head's `Version` (sort key); versions count from 1.
pub const HEAD: u64 = 0;

/// The key of `name`'s item at `version` ([`HEAD`]: the head).
pub fn key(name: &str, version: u64) -> Item {
    Item::from([
        ("Name".to_string(), s(name)),
        ("Version".to_string(), n(version)),
    ])
}

/// How a cancelled transaction is answered.
enum Cancelled {
    /// A condition failed, or another transaction was writing the same item
    /// (`TransactionConflict`): someone else is changing the resource, which
    /// is what `false` tells the caller, who reads again and decides again
    /// (and whose next write succeeds if the other one failed).
    LostRace,
    Throttled,
    Other,
}

/// Why a transaction was cancelled, per action in order ("None" for an
/// action that was not the cause); `None` when it was not cancelled.
pub(crate) fn cancellation_codes(e: &SdkError<TransactWriteItemsError>) -> Option<Vec<String>> {
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(t)) => Some(
            t.cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_string())
                .collect(),
        ),
        _ => None,
    }
}

fn cancellation(e: &SdkError<TransactWriteItemsError>) -> Cancelled {
    let Some(all) = cancellation_codes(e) else {
        return Cancelled::Other;
    };
    let codes: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|c| *c != "None")
        .collect();
    if !codes.is_empty()
        && codes
            .iter()
            .all(|c| *c == "ConditionalCheckFailed" || *c == "TransactionConflict")
    {
        Cancelled::LostRace
    } else if codes
        .iter()
        .any(|c| *c == "ThrottlingError" || *c == "ProvisionedThroughputExceeded")
    {
        Cancelled::Throttled
    } else {
        Cancelled::Other
    }
}

/// The answer when the table throttles; `what` names the table's contents.
pub fn busy(what: &str) -> SsmError {
    SsmError::ThrottlingException(format!(
        "The {what} table is busy; retry the request shortly."
    ))
}

/// Runs `items` as one transaction: `Ok(false)` when it lost a race (read
/// again and decide again), ThrottlingException when throttled.
pub async fn transact(
    client: &Client,
    what: &str,
    items: Vec<TransactWriteItem>,
) -> Result<bool, SsmError> {
    match client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => match cancellation(&e) {
            Cancelled::LostRace => Ok(false),
            Cancelled::Throttled => {
                tracing::warn!(table = what, "transaction throttled");
                Err(busy(what))
            }
            Cancelled::Other => Err(internal(e)),
        },
    }
}

/// A Put of a head item, only if the head is still at revision `expected`
/// (`None`: only if there is no head of that `Name`).
pub fn put_head(
    table: &str,
    head: Item,
    expected: Option<u64>,
) -> Result<TransactWriteItem, SsmError> {
    let put = Put::builder().table_name(table).set_item(Some(head));
    let put = match expected {
        None => put
            .condition_expression("attribute_not_exists(#n)")
            .expression_attribute_names("#n", "Name"),
        Some(rev) => put
            .condition_expression("#rev = :rev")
            .expression_attribute_names("#rev", "Revision")
            .expression_attribute_values(":rev", n(rev)),
    };
    Ok(TransactWriteItem::builder()
        .put(put.build().map_err(internal)?)
        .build())
}
