//! The change-events function: a batch of the tables' stream records in,
//! the events of their state changes on the bus. A batch that cannot be
//! published is reported failed from its first unpublished record, and
//! handed again from there (at least once: an event may go twice, never
//! none).

use aws_lambda_events::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use steward_aws::Stack;
use steward_aws::change_events::{Change, ChangeEvents, table_of_stream};
use steward_aws::item::Item;
use steward_core::events::Event;

/// Events per publish: one PutEvents' worth, so that a failure hands back
/// no more than one request's records.
const PUBLISH_CHUNK: usize = 10;

/// A stream image as the SDK's item (an absent image is empty in Lambda's
/// event).
fn item_of(image: &serde_dynamo::Item) -> Option<Item> {
    if image.is_empty() {
        return None;
    }
    Some(
        image
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect(),
    )
}

fn change_of(record: &EventRecord) -> Change {
    Change {
        old: item_of(&record.change.old_image),
        new: item_of(&record.change.new_image),
    }
}

/// Each record's event (if it makes one), with the record's sequence number.
fn events_of(feed: &ChangeEvents, records: &[EventRecord]) -> Vec<(String, Event)> {
    records
        .iter()
        .filter_map(|r| {
            let arn = r.event_source_arn.as_deref().unwrap_or_default();
            let Some(table) = table_of_stream(arn) else {
                tracing::warn!(
                    event_source_arn = arn,
                    "a stream record of no table; skipped"
                );
                return None;
            };
            let sequence = r.change.sequence_number.clone().unwrap_or_default();
            let events = feed.events_of(table, &change_of(r));
            Some(events.into_iter().map(move |e| (sequence.clone(), e)))
        })
        .flatten()
        .collect()
}

pub async fn handle(stack: &Stack, event: StreamEvent) -> DynamoDbEventResponse {
    let feed = ChangeEvents::new(stack);
    let events = events_of(&feed, &event.records);
    let mut response = DynamoDbEventResponse::default();
    tracing::info!(
        records = event.records.len(),
        events = events.len(),
        "change events to publish"
    );
    for chunk in events.chunks(PUBLISH_CHUNK) {
        let batch = chunk.iter().map(|(_, e)| e.clone()).collect();
        if let Err(e) = feed.publish(batch).await {
            let first = chunk.first().map(|(s, _)| s.clone());
            tracing::warn!(error = %e, sequence_number = first.as_deref().unwrap_or_default(), "change events not published; the stream hands them again");
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = first;
            response.batch_item_failures.push(failure);
            break;
        }
    }
    response
}
