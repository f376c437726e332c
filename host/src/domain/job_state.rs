//! Where a job is in its life; a completed job is deleted, not kept.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for its `run_at` and a worker.
    Available,
    /// Held by a worker's lease.
    Running,
    /// Out of attempts, or failed for good; kept for an operator.
    Failed,
}

impl JobState {
    pub const ALL: [JobState; 3] = [JobState::Available, JobState::Running, JobState::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Available => "available",
            JobState::Running => "running",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> anyhow::Result<JobState> {
        super::parse_stored(&JobState::ALL, JobState::as_str, value, "job state")
    }
}
