//! The SQS batch contract the queue-fed functions share: each record is
//! handed to a per-record handler, and the records it fails are reported as
//! `batchItemFailures`, so SQS redelivers those alone.
//!
//! A crate of its own rather than a module of `steward-aws`: it is about the
//! Lambda event source mapping, not an adapter of a core port, needs only
//! `aws_lambda_events`, and its tests run without the local stack. `core`
//! never sees it.

use std::fmt::Display;
use std::future::Future;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

/// One record as a handler sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub message_id: String,
    /// Empty when the message has none; the handler decides what that means.
    pub body: String,
}

/// Runs `handler` on each record in order; a record whose handler fails is
/// reported by its message id, and no other record is affected.
///
/// A record without a message id is reported with an empty identifier when it
/// fails, which Lambda treats as a failure of the whole batch: the safe
/// answer, since it cannot be named alone. Handlers should be idempotent, as
/// SQS delivers at least once.
pub async fn handle_batch<F, Fut, E>(event: SqsEvent, mut handler: F) -> SqsBatchResponse
where
    F: FnMut(Record) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let mut failures = Vec::new();
    for message in event.records {
        let record = Record {
            message_id: message.message_id.unwrap_or_default(),
            body: message.body.unwrap_or_default(),
        };
        let id = record.message_id.clone();
        // Boxed: a record's work can be a deep future; the batch's stays small.
        if let Err(e) = Box::pin(handler(record)).await {
            failures.push(failure(id, &e));
        }
    }
    response(failures)
}

/// A failed record, logged: SQS redelivers it alone.
fn failure(id: String, error: &dyn Display) -> BatchItemFailure {
    tracing::warn!(message_id = %id, error = %error, "record failed; it will be retried");
    // Non-exhaustive upstream: built by field, not by literal.
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id;
    failure
}

fn response(failures: Vec<BatchItemFailure>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// Hands the whole batch to `handler`, which answers for each record in
/// order; the records it fails are reported by message id, as
/// [`handle_batch`] does. For handlers that do a batch's work together
/// (one read for all its senders, one write for all its reports).
pub async fn handle_together<F, Fut, E>(event: SqsEvent, handler: F) -> SqsBatchResponse
where
    F: FnOnce(Vec<Record>) -> Fut,
    Fut: Future<Output = Vec<Result<(), E>>>,
    E: Display,
{
    let records: Vec<Record> = event
        .records
        .into_iter()
        .map(|m| Record {
            message_id: m.message_id.unwrap_or_default(),
            body: m.body.unwrap_or_default(),
        })
        .collect();
    let ids: Vec<String> = records.iter().map(|r| r.message_id.clone()).collect();
    let results = Box::pin(handler(records)).await;
    let mut failures = Vec::new();
    for (i, id) in ids.into_iter().enumerate() {
        // A handler that answers for fewer records than it was given failed
        // the rest: they are retried.
        let failed = match results.get(i) {
            Some(Ok(())) => continue,
            Some(Err(e)) => e.to_string(),
            None => "no answer for this record".to_string(),
        };
        failures.push(failure(id, &failed));
    }
    response(failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::sqs::SqsMessage;

    fn event(records: &[(Option<&str>, Option<&str>)]) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = records
            .iter()
            .map(|(id, body)| {
                let mut m = SqsMessage::default();
                m.message_id = id.map(str::to_string);
                m.body = body.map(str::to_string);
                m
            })
            .collect();
        e
    }

    fn failed(r: &SqsBatchResponse) -> Vec<&str> {
        r.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    /// Fails bodies that are not a number, as a decoder would.
    async fn numbers(r: Record) -> Result<(), String> {
        r.body
            .parse::<u32>()
            .map(drop)
            .map_err(|e| format!("{}: {e}", r.message_id))
    }

    #[tokio::test]
    async fn a_failing_record_is_reported_by_its_message_id() {
        let resp = handle_batch(event(&[(Some("a"), Some("1"))]), async |_| {
            Err::<(), _>("store unavailable")
        })
        .await;
        assert_eq!(failed(&resp), ["a"]);
    }

    #[tokio::test]
    async fn records_that_succeed_are_not_reported() {
        let mut seen = Vec::new();
        let resp = handle_batch(
            event(&[(Some("a"), Some("1")), (Some("b"), Some("2"))]),
            |r: Record| {
                seen.push(r.clone());
                numbers(r)
            },
        )
        .await;
        assert!(failed(&resp).is_empty());
        let bodies: Vec<_> = seen.iter().map(|r| r.body.as_str()).collect();
        assert_eq!(bodies, ["1", "2"], "every record, in order");
    }

    #[tokio::test]
    async fn a_malformed_record_fails_alone() {
        let resp = handle_batch(
            event(&[
                (Some("a"), Some("1")),
                (Some("b"), Some("not a number")),
                (Some("c"), None),
                (Some("d"), Some("4")),
            ]),
            numbers,
        )
        .await;
        assert_eq!(failed(&resp), ["b", "c"]);
    }

    #[tokio::test]
    async fn a_failing_record_without_an_id_fails_the_batch() {
        let resp = handle_batch(event(&[(None, Some("x"))]), numbers).await;
        // An empty identifier: Lambda retries the whole batch.
        assert_eq!(failed(&resp), [""]);
    }

    #[tokio::test]
    async fn a_batch_handled_together_reports_the_records_it_failed() {
        let resp = handle_together(
            event(&[
                (Some("a"), Some("1")),
                (Some("b"), Some("x")),
                (Some("c"), Some("3")),
            ]),
            async |records: Vec<Record>| {
                let mut out = Vec::new();
                for r in records {
                    out.push(numbers(r).await);
                }
                out
            },
        )
        .await;
        assert_eq!(failed(&resp), ["b"]);
    }

    #[tokio::test]
    async fn records_a_batch_handler_did_not_answer_for_are_retried() {
        let resp = handle_together(
            event(&[(Some("a"), Some("1")), (Some("b"), Some("2"))]),
            async |_records: Vec<Record>| vec![Ok::<(), String>(())],
        )
        .await;
        assert_eq!(failed(&resp), ["b"]);
    }

    #[tokio::test]
    async fn an_empty_batch_has_no_failures() {
        let mut calls = 0;
        let resp = handle_batch(SqsEvent::default(), |r: Record| {
            calls += 1;
            numbers(r)
        })
        .await;
        assert!(failed(&resp).is_empty());
        assert_eq!(calls, 0);
        // Lambda's wire shape: the key present, the list empty.
        let json = serde_json::to_value(&resp).unwrap_or_default();
        assert_eq!(json, serde_json::json!({ "batchItemFailures": [] }));
    }
}
