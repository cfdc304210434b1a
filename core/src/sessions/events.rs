//! The event a session's change of status makes, from its record's old
//! and new images (its table's stream).
//!
//! SSM itself shows sessions on EventBridge only as CloudTrail's API calls;
//! Steward publishes each status change, in the style of SSM's own
//! state-change events, so that a rule can follow a session to its end
//! (which no API call marks when the shell exits or idles out).

use serde_json::json;

use super::model::Session;
use crate::clock::iso8601_seconds;
use crate::events::Event;

pub const SESSION_STATE_CHANGE: &str = "Session Manager Session State-change Notification";

/// `None` when the status did not change (queues deleted, a rewrite).
pub fn of_session_change(old: Option<&Session>, new: Option<&Session>) -> Option<Event> {
    let new = new?;
    if old.is_some_and(|o| o.status == new.status) {
        return None;
    }
    Some(Event {
        detail_type: SESSION_STATE_CHANGE,
        resources: vec![new.target.clone()],
        detail: json!({
            "SessionId": new.session_id,
            "Target": new.target,
            "Status": new.status.as_str(),
            "PreviousStatus": old.map(|o| o.status.as_str()),
            "DocumentName": new.document_name,
            "Owner": new.owner,
            "Reason": new.reason,
            "Details": new.details,
            "StartDate": iso8601_seconds(new.start_date),
            "EndDate": new.end_date.map(iso8601_seconds),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::model::SessionStatus;

    fn session(status: SessionStatus) -> Session {
        Session {
            session_id: "alice-0123456789abcdef0".into(),
            target: "mi-0123456789abcdef0".into(),
            status,
            start_date: 1_800_000_000.0,
            end_date: None,
            document_name: "SSM-SessionManagerRunShell".into(),
            owner: "arn:aws:iam::123456789012:user/alice".into(),
            reason: None,
            details: None,
            max_session_duration: None,
            s3_output_url: None,
            to_agent_queue_url: "q-a".into(),
            to_client_queue_url: "q-c".into(),
            to_agent_queue_arn: "arn:q-a".into(),
            to_client_queue_arn: "arn:q-c".into(),
            sealed_key: "sealed-key-text".into(),
            queues_deleted: false,
            revision: 1,
        }
    }

    #[test]
    fn each_status_change_is_one_event_and_nothing_else_is() {
        let start = session(SessionStatus::Connecting);
        let e = of_session_change(None, Some(&start)).unwrap();
        assert_eq!(e.detail["Status"], "Connecting");
        assert_eq!(e.detail["PreviousStatus"], serde_json::Value::Null);
        assert_eq!(e.resources, vec!["mi-0123456789abcdef0".to_string()]);
        let mut ended = session(SessionStatus::Terminated);
        ended.end_date = Some(1_800_000_060.0);
        ended.details = Some("Exited with status 0".into());
        let e = of_session_change(Some(&start), Some(&ended)).unwrap();
        assert_eq!(e.detail["PreviousStatus"], "Connecting");
        assert_eq!(e.detail["EndDate"], "2027-01-15T08:01:00Z");
        // The sealed key and the queues are not the bus's business.
        let text = e.detail.to_string();
        assert!(!text.contains("sealed-key-text") && !text.contains("q-a"));
        let mut cleaned = ended.clone();
        cleaned.queues_deleted = true;
        assert_eq!(of_session_change(Some(&ended), Some(&cleaned)), None);
        assert_eq!(of_session_change(Some(&ended), None), None);
    }
}
