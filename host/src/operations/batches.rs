//! Stored batches that could not be turned into records: list them, and
//! process them again once what broke them is fixed (a new plugin version).

use super::OperationError;
use crate::Host;
use crate::domain::queue::Queue;
use crate::domain::trigger::Trigger;
use crate::store::jobs::{JobArgs, NewJob};

/// What a retry queued.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct BatchesRetried {
    /// Integrations whose failed batches are pending again, each with a
    /// `process` job queued to turn them into records.
    pub integrations: Vec<i64>,
}

/// Make failed batches pending again (one, or all with `None`) and queue a
/// `process` job for each integration they belong to.
pub async fn retry_failed(host: &Host, id: Option<i64>) -> Result<BatchesRetried, OperationError> {
    let store = host.store();
    let integrations = store.retry_failed_batches(id).await?;
    if let (Some(id), true) = (id, integrations.is_empty()) {
        return Err(OperationError::not_found("failed batch", id));
    }
    for &integration_id in &integrations {
        let job = NewJob {
            queue: Queue::Process,
            integration_id,
            args: JobArgs::new(Trigger::Manual),
            max_attempts: host.policy(Queue::Process).max_attempts,
            run_at: store.now(),
        };
        store.enqueue_job(&job).await?;
    }
    host.wake(Queue::Process);
    Ok(BatchesRetried { integrations })
}
