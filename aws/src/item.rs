//! DynamoDB item codecs, and the reads and writes every store in this crate
//! makes alike (conditional writes, paged queries, batches).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, WriteRequest};

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A string attribute, or "" when absent.
pub fn get_s(item: &Item, k: &str) -> String {
    match item.get(k) {
        Some(AttributeValue::S(v)) => v.clone(),
        _ => String::new(),
    }
}

/// A string attribute, or `None` when absent.
pub fn get_str(item: &Item, k: &str) -> Option<String> {
    match item.get(k) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

/// A whole-number attribute, or `None` when absent or not a whole number.
pub fn get_u64(item: &Item, k: &str) -> Option<u64> {
    match item.get(k) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

/// A number attribute, or `None` when absent.
pub fn get_n(item: &Item, k: &str) -> Option<f64> {
    match item.get(k) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

/// A number attribute, or 0 when absent.
pub fn get_f64(item: &Item, k: &str) -> f64 {
    get_n(item, k).unwrap_or(0.0)
}

pub fn get_u32(item: &Item, k: &str) -> u32 {
    get_n(item, k).map(|v| v as u32).unwrap_or(0)
}

/// A map of strings (tags, a user's policies) as a map attribute.
pub fn str_map_av(map: &BTreeMap<String, String>) -> AttributeValue {
    AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), s(v))).collect())
}

/// A map attribute's string entries, or none when absent.
pub fn get_str_map(item: &Item, k: &str) -> BTreeMap<String, String> {
    match item.get(k) {
        Some(AttributeValue::M(m)) => m
            .iter()
            .filter_map(|(k, v)| match v {
                AttributeValue::S(v) => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// A list of strings as a list attribute.
pub fn str_list_av(list: &[String]) -> AttributeValue {
    AttributeValue::L(list.iter().map(s).collect())
}

/// A list attribute's strings, or none when absent.
pub fn get_str_list(item: &Item, k: &str) -> Vec<String> {
    match item.get(k) {
        Some(AttributeValue::L(l)) => l
            .iter()
            .filter_map(|v| match v {
                AttributeValue::S(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// One page of a Query on an index: `<key> = <value>`, optionally narrowed by
/// a sort-key condition, in either order. Every listing in Steward is one.
pub struct IndexQuery<'a> {
    pub table: &'a str,
    pub index: &'a str,
    pub key: (&'a str, AttributeValue),
    /// A sort-key condition to AND on (e.g. `RequestedDateTime >= :after`)
    /// and the values it names.
    pub sort: Option<(&'static str, Vec<(&'static str, AttributeValue)>)>,
    pub newest_first: bool,
    pub limit: usize,
    pub start: Option<Item>,
}

/// The page's items, and the key to continue after (`None`: no more).
pub async fn query_page(
    client: &aws_sdk_dynamodb::Client,
    q: IndexQuery<'_>,
) -> Result<(Vec<Item>, Option<Item>), steward_core::SsmError> {
    let condition = match &q.sort {
        Some((extra, _)) => format!("#pk = :pk AND {extra}"),
        None => "#pk = :pk".to_string(),
    };
    let mut query = client
        .query()
        .table_name(q.table)
        .index_name(q.index)
        .key_condition_expression(condition)
        .expression_attribute_names("#pk", q.key.0)
        .expression_attribute_values(":pk", q.key.1)
        .scan_index_forward(!q.newest_first)
        .limit(q.limit.max(1) as i32)
        .set_exclusive_start_key(q.start);
    for (name, value) in q.sort.map(|(_, values)| values).unwrap_or_default() {
        query = query.expression_attribute_values(name, value);
    }
    let resp = query.send().await.map_err(crate::internal)?;
    let next = resp.last_evaluated_key.filter(|k| !k.is_empty());
    Ok((resp.items.unwrap_or_default(), next))
}

/// One page of a `ByKind` listing of `kind`, oldest first, after the item
/// whose key is `after` (its `Kind` is added here; `None`: from the start),
/// and whether more follow.
pub async fn kind_page(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    kind: &str,
    after: Option<Item>,
    limit: usize,
) -> Result<(Vec<Item>, bool), steward_core::SsmError> {
    let start = after.map(|mut key| {
        key.insert("Kind".to_string(), s(kind));
        key
    });
    let (items, next) = query_page(
        client,
        IndexQuery {
            table,
            index: "ByKind",
            key: ("Kind", s(kind)),
            sort: None,
            newest_first: false,
            limit,
            start,
        },
    )
    .await?;
    Ok((items, next.is_some()))
}

/// A PutItem of `item` only if no item has its key yet (`key_attr`: an
/// attribute of the key); the caller decides what a refusal means.
pub async fn put_if_absent(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    item: Item,
    key_attr: &str,
) -> Result<
    aws_sdk_dynamodb::operation::put_item::PutItemOutput,
    SdkError<
        aws_sdk_dynamodb::operation::put_item::PutItemError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
> {
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(format!("attribute_not_exists({key_attr})"))
        .send()
        .await
}

/// A strongly consistent GetItem: the item, if there is one.
pub async fn get_consistent(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: Item,
) -> Result<Option<Item>, steward_core::SsmError> {
    let resp = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .map_err(crate::internal)?;
    Ok(resp.item)
}

/// Whether DynamoDB refused a write only because its condition did not hold.
fn condition_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error()
        .and_then(|se| se.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// A conditional write's outcome: `true` written, `false` its condition did
/// not hold (the item changed or is not there: the caller's answer, not an
/// error); any other failure is passed on for the caller to map.
pub fn conditional<T, E: ProvideErrorMetadata, R>(
    r: Result<T, SdkError<E, R>>,
) -> Result<bool, SdkError<E, R>> {
    match r {
        Ok(_) => Ok(true),
        Err(e) if condition_failed(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The items of `query` (built without `Limit`; from its
/// `ExclusiveStartKey`, if it has one) that `keep` accepts, page after page,
/// until there are `max` of them or the pages end (`None`: all of them, with
/// no `Limit` set). A page is at most 1 MB, so even a short listing may take
/// several.
pub async fn query_items(
    query: QueryFluentBuilder,
    max: Option<usize>,
    keep: impl Fn(&Item) -> bool,
) -> Result<Vec<Item>, steward_core::SsmError> {
    let mut out = Vec::new();
    let mut start = query.get_exclusive_start_key().clone();
    loop {
        let mut q = query.clone().set_exclusive_start_key(start);
        if let Some(max) = max {
            // Ask only for what is still missing.
            q = q.limit(i32::try_from(max.saturating_sub(out.len())).unwrap_or(i32::MAX));
        }
        let resp = q.send().await.map_err(crate::internal)?;
        out.extend(
            resp.items
                .unwrap_or_default()
                .into_iter()
                .filter(|i| keep(i)),
        );
        start = resp.last_evaluated_key.filter(|k| !k.is_empty());
        if start.is_none() || max.is_some_and(|max| out.len() >= max) {
            return Ok(out);
        }
    }
}

/// At most `limit` items of `query` that `keep` accepts, and whether more
/// follow (read as one more than asked).
pub async fn query_up_to(
    query: QueryFluentBuilder,
    limit: usize,
    keep: impl Fn(&Item) -> bool,
) -> Result<(Vec<Item>, bool), steward_core::SsmError> {
    let mut items = query_items(query, Some(limit.saturating_add(1)), keep).await?;
    let more = items.len() > limit;
    items.truncate(limit);
    Ok((items, more))
}

/// A listing Query on a `Kind` index: every item of `kind`, in sort-key
/// order, after `after` on the sort key `sort` when given (where the
/// previous page ended).
pub fn kind_listing(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    index: &str,
    kind: &str,
    sort: &str,
    after: Option<&str>,
) -> QueryFluentBuilder {
    let q = client
        .query()
        .table_name(table)
        .index_name(index)
        .expression_attribute_names("#k", "Kind")
        .expression_attribute_values(":k", s(kind));
    match after {
        Some(a) => q
            .key_condition_expression("#k = :k AND #sk > :after")
            .expression_attribute_names("#sk", sort)
            .expression_attribute_values(":after", s(a)),
        None => q.key_condition_expression("#k = :k"),
    }
}

/// A pause of about `base_ms << attempt`, jittered by up to half of it so
/// that callers retrying the same conflict do not collide again in step
/// (for DynamoDB's transaction conflicts and the batch retries of SQS and
/// EventBridge alike).
pub fn jittered_backoff(base_ms: u64, attempt: u32) -> std::time::Duration {
    use rand::Rng;
    let full = base_ms << attempt.min(10);
    let jitter = rand::thread_rng().gen_range(0..=full / 2);
    std::time::Duration::from_millis(full / 2 + jitter)
}

/// DynamoDB's size of an attribute value (UTF-8 bytes of strings, about
/// the digits of numbers, nested names and values), an estimate to keep a
/// request under DynamoDB's limits.
pub fn av_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(x) | AttributeValue::N(x) => x.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Ss(l) | AttributeValue::Ns(l) => l.iter().map(String::len).sum(),
        AttributeValue::L(l) => 3 + l.iter().map(|x| 1 + av_size(x)).sum::<usize>(),
        AttributeValue::M(m) => 3 + item_size(m),
        _ => 1,
    }
}

/// [`av_size`] of every attribute of `item`, names included.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| 1 + k.len() + av_size(v)).sum()
}

/// Tries at a batch request while DynamoDB leaves part of it unprocessed.
const BATCH_ATTEMPTS: u32 = 8;

/// Sends a batch `request` (`send` gives the items it read and what
/// DynamoDB left unprocessed, if anything), resending the unprocessed part
/// after a growing pause: all items read, and `false` when some of the
/// request is still left after every try. DynamoDB asks for exponential
/// backoff between tries (50 ms, 100 ms, …, jittered).
async fn resend_unprocessed<R, F, Fut>(
    mut request: R,
    mut send: F,
) -> Result<(Vec<Item>, bool), steward_core::SsmError>
where
    F: FnMut(R) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<Item>, Option<R>), steward_core::SsmError>>,
{
    let mut out = Vec::new();
    for attempt in 0..BATCH_ATTEMPTS {
        let (items, unprocessed) = send(request).await?;
        out.extend(items);
        match unprocessed {
            Some(rest) => {
                request = rest;
                tokio::time::sleep(jittered_backoff(50, attempt)).await;
            }
            None => return Ok((out, true)),
        }
    }
    Ok((out, false))
}

/// The items of one BatchGetItem on `table` (at most 100 keys), resending
/// the keys DynamoDB leaves unprocessed; ThrottlingException when some are
/// still left after every try (`what` names the table's contents).
pub async fn batch_get_all(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: KeysAndAttributes,
    what: &str,
) -> Result<Vec<Item>, steward_core::SsmError> {
    let request = HashMap::from([(table.to_string(), keys)]);
    let (items, done) = resend_unprocessed(request, |request| async move {
        let resp = client
            .batch_get_item()
            .set_request_items(Some(request))
            .send()
            .await
            .map_err(crate::internal)?;
        let items = resp
            .responses
            .and_then(|mut r| r.remove(table))
            .unwrap_or_default();
        Ok((items, resp.unprocessed_keys.filter(|u| !u.is_empty())))
    })
    .await?;
    if done {
        Ok(items)
    } else {
        Err(crate::revisioned::busy(what))
    }
}

/// One BatchWriteItem on `table` (at most 25 requests), resending what
/// DynamoDB leaves unprocessed: `false` when some is still left after
/// every try.
pub async fn batch_write_all(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    requests: Vec<WriteRequest>,
) -> Result<bool, steward_core::SsmError> {
    let request = HashMap::from([(table.to_string(), requests)]);
    let (_, done) = resend_unprocessed(request, |request| async move {
        let resp = client
            .batch_write_item()
            .set_request_items(Some(request))
            .send()
            .await
            .map_err(crate::internal)?;
        Ok((Vec::new(), resp.unprocessed_items.filter(|u| !u.is_empty())))
    })
    .await?;
    Ok(done)
}
