//! The queues jobs wait in. Each has its own concurrency, timeout and retry
//! policy; `fetch` jobs call a plugin's fetch, `process` and `webhook` jobs
//! turn stored batches into records (a fetch's, or a delivery's).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Queue {
    Fetch,
    Process,
    Webhook,
}

impl Queue {
    pub const ALL: [Queue; 3] = [Queue::Fetch, Queue::Process, Queue::Webhook];

    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Fetch => "fetch",
            Queue::Process => "process",
            Queue::Webhook => "webhook",
        }
    }

    pub fn parse(value: &str) -> anyhow::Result<Queue> {
        super::parse_stored(&Queue::ALL, Queue::as_str, value, "queue")
    }

    /// Whether its jobs turn stored batches into records (the process and
    /// webhook queues, one lane) rather than fetch: an integration runs at
    /// most one job of each lane at a time.
    pub fn processes(self) -> bool {
        !matches!(self, Queue::Fetch)
    }
}
