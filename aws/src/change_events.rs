//! The events of the tables' state changes, read from their DynamoDB
//! streams: a change's event is derived from the record's old and new
//! images, so it is published at least once whatever dies after the write
//! (the stream keeps the record until its reader has handled it).

use steward_core::SsmError;
use steward_core::arn::ArnScope;
use steward_core::automation::events::of_execution_change;
use steward_core::compliance::events::of_compliance_change;
use steward_core::events::{Event, EventSink};
use steward_core::parameters::events::of_parameter_change;
use steward_core::run_command::events::{of_command_change, of_invocation_change};
use steward_core::sessions::events::of_session_change;

use crate::Stack;
use crate::commands::command_from_item;
use crate::config::Settings;
use crate::events::EventBus;
use crate::invocations::invocation_from_item;
use crate::item::{Item, get_u64};
use crate::revisioned::HEAD;

/// The tables whose streams feed the change events.
pub fn streamed_tables(settings: &Settings) -> Vec<String> {
    vec![
        settings.commands_table.clone(),
        settings.invocations_table.clone(),
        settings.compliance_table.clone(),
        settings.parameters_table.clone(),
        settings.automation_table.clone(),
        settings.sessions_table.clone(),
    ]
}

/// The table a stream ARN belongs to:
/// `arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>`.
pub fn table_of_stream(stream_arn: &str) -> Option<&str> {
    let (_, rest) = stream_arn.split_once(":table/")?;
    let (table, _) = rest.split_once("/stream/")?;
    (!table.is_empty()).then_some(table)
}

/// One record of a stream: the item before and after the change (absent
/// when it was created, or deleted).
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub old: Option<Item>,
    pub new: Option<Item>,
}

#[derive(Clone, Debug)]
pub struct ChangeEvents {
    bus: EventBus,
    commands_table: String,
    invocations_table: String,
    compliance_table: String,
    parameters_table: String,
    automation_table: String,
    sessions_table: String,
    scope: ArnScope,
}

impl ChangeEvents {
    pub fn new(stack: &Stack) -> Self {
        Self {
            bus: EventBus::new(stack),
            commands_table: stack.settings.commands_table.clone(),
            invocations_table: stack.settings.invocations_table.clone(),
            compliance_table: stack.settings.compliance_table.clone(),
            parameters_table: stack.settings.parameters_table.clone(),
            automation_table: stack.settings.automation_table.clone(),
            sessions_table: stack.settings.sessions_table.clone(),
            scope: stack.settings.arn_scope(),
        }
    }

    /// The events a change of `table` makes, in order: most changes
    /// (counters, outputs) make none, an automation write may make several.
    /// A table that is not streamed for events makes none.
    pub fn events_of(&self, table: &str, change: &Change) -> Vec<Event> {
        if table == self.automation_table {
            return images(table, change, crate::automation::from_item)
                .map(|(old, new)| of_execution_change(old.as_ref(), new.as_ref()))
                .unwrap_or_default();
        }
        if table == self.parameters_table {
            // Only a parameter's head (version 0) says what happened to it;
            // its version items change with it and make none.
            let is_head = |image: &Option<Item>| {
                image
                    .as_ref()
                    .is_some_and(|i| get_u64(i, "Version") == Some(HEAD))
            };
            if !is_head(&change.old) && !is_head(&change.new) {
                return Vec::new();
            }
            return images(table, change, crate::parameters::head_from_item)
                .map(|(old, new)| of_parameter_change(old.as_ref(), new.as_ref(), &self.scope))
                .unwrap_or_default();
        }
        self.event_of(table, change).into_iter().collect()
    }

    fn event_of(&self, table: &str, change: &Change) -> Option<Event> {
        if table == self.commands_table {
            let old = change.old.as_ref().map(command_from_item);
            let new = change.new.as_ref().map(command_from_item);
            of_command_change(old.as_ref(), new.as_ref())
        } else if table == self.invocations_table {
            let old = change.old.as_ref().map(invocation_from_item);
            let new = change.new.as_ref().map(invocation_from_item);
            of_invocation_change(old.as_ref(), new.as_ref())
        } else if table == self.compliance_table {
            let (old, new) = images(table, change, crate::compliance::record)?;
            of_compliance_change(old.as_ref(), new.as_ref())
        } else if table == self.sessions_table {
            let (old, new) = images(table, change, crate::sessions::session_from_item)?;
            of_session_change(old.as_ref(), new.as_ref())
        } else {
            None
        }
    }

    /// Publishes events in order, in as few requests as the bus takes.
    pub async fn publish(&self, events: Vec<Event>) -> Result<(), SsmError> {
        self.bus.publish_many(events).await
    }
}

/// Both images of a change, decoded. A change with an image that does not
/// decode makes no event (rather than a wrong one: a creation where there
/// was an update): it is logged, never its content, and skipped, as
/// handing it again could not help.
fn images<T>(
    table: &str,
    change: &Change,
    decode: impl Fn(&Item) -> Result<T, SsmError>,
) -> Option<(Option<T>, Option<T>)> {
    let one = |image: &Option<Item>| match image {
        None => Some(None),
        Some(item) => match decode(item) {
            Ok(v) => Some(Some(v)),
            Err(e) => {
                tracing::error!(table, error = %e, "a stream image cannot be read; its event is skipped");
                None
            }
        },
    };
    Some((one(&change.old)?, one(&change.new)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_arn_names_its_table() {
        assert_eq!(
            table_of_stream(
                "arn:aws:dynamodb:us-east-1:000000000000:table/steward-Commands/stream/2026-12-01T23:57:08.421"
            ),
            Some("steward-Commands")
        );
        assert_eq!(
            table_of_stream("arn:aws:dynamodb:us-east-1:0:table//stream/x"),
            None
        );
        assert_eq!(table_of_stream("arn:aws:sqs:us-east-1:0:queue"), None);
    }
}
