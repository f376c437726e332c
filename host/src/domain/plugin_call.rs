//! What a plugin's exports are given and answer: `fetch`, `process` and
//! `handle-webhook` (`describe` answers a [`super::manifest::Manifest`]).

use super::trigger::Trigger;

/// Milliseconds since the Unix epoch, UTC.
pub type Timestamp = i64;

#[derive(Debug, Clone, PartialEq)]
pub struct FetchRequest {
    pub instance_type: String,
    /// The integration's config, a JSON object.
    pub config: String,
    pub mode: FetchMode,
    pub trigger: Trigger,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMode {
    /// Continue from the cursor kept in state.
    Incremental,
    /// Fetch history from this time on, ignoring cursors.
    Backfill(Timestamp),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchSummary {
    pub items_seen: u64,
    pub note: Option<String>,
    /// The plugin asks that the next run start no earlier than this.
    pub not_before: Option<ScheduleHint>,
}

/// Not before `at` (ms), because `reason`: the upstream asked for a pause, or
/// a quota resets then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleHint {
    pub at: Timestamp,
    pub reason: String,
}

/// Upstream data as fetched, stored before `process` turns it into records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBatch {
    pub kind: String,
    pub payload: String,
}

/// A batch from a webhook, for the group's integrations of one instance type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedBatch {
    pub instance_type: String,
    pub batch: RawBatch,
}

/// What a webhook delivery produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhookOutcome {
    pub batches: Vec<RoutedBatch>,
    /// The HTTP answer the sender expects, if it expects one.
    pub answer: Option<WebhookAnswer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAnswer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub received_at: Timestamp,
}

/// How a plugin call failed; the host decides about retries from the case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginError {
    Transient(String),
    /// Retry no sooner than asked.
    RateLimited {
        retry_after_seconds: u32,
        message: String,
    },
    /// Credentials refused even after refresh: the group needs reconnecting.
    Unauthorized(String),
    /// The integration's config is wrong; no retry until it is edited.
    InvalidConfig(String),
    /// Will fail the same way again.
    Permanent(String),
}

impl PluginError {
    /// The same error with its text (which the plugin controls) passed through `f`.
    pub fn map_message(self, f: impl FnOnce(String) -> String) -> PluginError {
        match self {
            PluginError::Transient(m) => PluginError::Transient(f(m)),
            PluginError::RateLimited { retry_after_seconds, message } => {
                PluginError::RateLimited { retry_after_seconds, message: f(message) }
            }
            PluginError::Unauthorized(m) => PluginError::Unauthorized(f(m)),
            PluginError::InvalidConfig(m) => PluginError::InvalidConfig(f(m)),
            PluginError::Permanent(m) => PluginError::Permanent(f(m)),
        }
    }
}
