//! Why a run happens.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// Its schedule came due.
    Schedule,
    /// An operator asked (CLI, API, the page's "Update now").
    Manual,
    /// A webhook delivery brought its data.
    Webhook,
    /// A later attempt of a job whose run failed.
    Retry,
    /// A first run, or an explicit re-fetch of history.
    Backfill,
    /// Stored batches processed again by the current plugin, without fetching.
    Reprocess,
}

impl Trigger {
    pub const ALL: [Trigger; 6] =
        [Trigger::Schedule, Trigger::Manual, Trigger::Webhook, Trigger::Retry, Trigger::Backfill, Trigger::Reprocess];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Webhook => "webhook",
            Trigger::Retry => "retry",
            Trigger::Backfill => "backfill",
            Trigger::Reprocess => "reprocess",
        }
    }

    pub fn parse(value: &str) -> anyhow::Result<Trigger> {
        super::parse_stored(&Trigger::ALL, Trigger::as_str, value, "trigger")
    }
}
