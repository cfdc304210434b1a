//! A session as the control plane records it, and its statuses as SSM
//! names them.

use serde::{Deserialize, Serialize};

/// SSM's `SessionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionStatus {
    /// Started; the agent has not yet said its side is up.
    Connecting,
    Connected,
    Disconnected,
    /// TerminateSession was asked; the agent has not yet said it ended.
    Terminating,
    Terminated,
    Failed,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Connecting => "Connecting",
            SessionStatus::Connected => "Connected",
            SessionStatus::Disconnected => "Disconnected",
            SessionStatus::Terminating => "Terminating",
            SessionStatus::Terminated => "Terminated",
            SessionStatus::Failed => "Failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            SessionStatus::Connecting,
            SessionStatus::Connected,
            SessionStatus::Disconnected,
            SessionStatus::Terminating,
            SessionStatus::Terminated,
            SessionStatus::Failed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Whether the session has ended (DescribeSessions' `History`).
    pub fn is_ended(self) -> bool {
        matches!(self, SessionStatus::Terminated | SessionStatus::Failed)
    }
}

/// DescribeSessions' `State`: sessions still open, or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionListState {
    Active,
    History,
}

impl SessionListState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionListState::Active => "Active",
            SessionListState::History => "History",
        }
    }

    pub fn of(status: SessionStatus) -> Self {
        if status.is_ended() {
            SessionListState::History
        } else {
            SessionListState::Active
        }
    }
}

/// One session. `revision` guards every write (conditional on the revision
/// read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub session_id: String,
    pub target: String,
    pub status: SessionStatus,
    /// Epoch seconds.
    pub start_date: f64,
    #[serde(default)]
    pub end_date: Option<f64>,
    pub document_name: String,
    /// The starter's ARN (SSM's `Owner`).
    pub owner: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// Why it ended, when it did (SSM's `Details`).
    #[serde(default)]
    pub details: Option<String>,
    /// Minutes, as SSM shows `MaxSessionDuration`.
    #[serde(default)]
    pub max_session_duration: Option<String>,
    /// `s3://bucket/key` of the transcript, when the preferences ask for one.
    #[serde(default)]
    pub s3_output_url: Option<String>,
    pub to_agent_queue_url: String,
    pub to_client_queue_url: String,
    pub to_agent_queue_arn: String,
    pub to_client_queue_arn: String,
    /// The frame key sealed under the stack's KMS key (ResumeSession
    /// answers it again); never the key itself.
    pub sealed_key: String,
    /// Whether the queues were deleted after the session ended.
    #[serde(default)]
    pub queues_deleted: bool,
    pub revision: u64,
}
