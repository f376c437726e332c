//! Starting and completing runs in batches: one transaction records many runs
//! as started (their `sync_runs` rows, jobs and integrations), and one records
//! many as finished. Per-job transactions cap a queue at a few thousand jobs a
//! second; batches are how established job queues go an order of magnitude
//! further. The SQL itself stays with each table.

use super::integrations::RunEnd;
use super::jobs::JobAction;
use super::sync_runs::{LogLine, RunOutcome};
use super::{Store, integrations, jobs, sync_runs};
use anyhow::Result;

/// A run about to start.
pub struct RunStart<'a> {
    pub integration_id: i64,
    pub trigger: &'a str,
    pub attempt: i64,
    pub job_id: Option<i64>,
}

/// A finished run and what follows from it.
pub struct RunCompletion {
    pub run_id: i64,
    pub outcome: RunOutcome,
    pub logs: Vec<LogLine>,
    /// The job the run belongs to, and what becomes of it.
    pub job: Option<(i64, JobAction)>,
    /// The integration's scheduling update; `None` while the job will retry
    /// (the run is not over for the schedule).
    pub integration: Option<(i64, RunEnd)>,
}

impl Store {
    /// Record runs as started in one transaction. Returns their run ids, in
    /// order, and the start time they share.
    pub async fn start_runs(&self, starts: &[RunStart<'_>]) -> Result<(Vec<i64>, i64)> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut ids = Vec::with_capacity(starts.len());
        for start in starts {
            let run_id =
                sync_runs::insert_running(&mut tx, start.integration_id, start.trigger, start.attempt, now).await?;
            integrations::mark_started(&mut tx, start.integration_id, now).await?;
            if let Some(job_id) = start.job_id {
                jobs::set_sync_run(&mut tx, job_id, run_id).await?;
            }
            ids.push(run_id);
        }
        tx.commit().await?;
        Ok((ids, now))
    }

    /// Record runs as finished in one transaction. Returns, for each, the
    /// reason it paused its integration, if it did.
    pub async fn complete_runs(&self, completions: &[RunCompletion]) -> Result<Vec<Option<String>>> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut paused = Vec::with_capacity(completions.len());
        for completion in completions {
            sync_runs::finish(&mut tx, completion.run_id, &completion.outcome, now).await?;
            sync_runs::append_logs(&mut tx, completion.run_id, &completion.logs).await?;
            if let Some((job_id, action)) = &completion.job {
                jobs::apply(&mut tx, *job_id, action, now).await?;
            }
            paused.push(match &completion.integration {
                Some((id, end)) => integrations::finish_run(&mut tx, *id, end, now).await?,
                None => None,
            });
        }
        tx.commit().await?;
        Ok(paused)
    }
}
