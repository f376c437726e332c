//! Starting and completing runs in batches: one transaction records many runs
//! as started (their `sync_runs` rows, which name their jobs), and one records
//! many as finished (runs, jobs and integrations). An integration's start is
//! recorded with its end: a run writes each row as few times as it can.
//! Per-job transactions cap a queue at a few thousand jobs a second; batches
//! are how established job queues go an order of magnitude further. The SQL
//! itself stays with each table.

use super::integrations::{DueAtStart, Integration, RunEnd};
use super::jobs::{Abandoned, Job, JobAction, JobLease, NewJob, Withdrawal};
use super::sync_runs::{LogTail, RunOutcome, RunStatus};
use super::{Backend, Connection, Store, integrations, jobs, lock_order, sync_runs};
use crate::domain::error_class::ErrorClass;
use crate::domain::pause_reason::PauseReason;
use crate::domain::queue::Queue;
use crate::domain::trigger::Trigger;
use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};

/// A run about to start.
pub struct RunStart {
    pub integration_id: i64,
    /// The queue of the run's job: which half of a sync it is.
    pub queue: Queue,
    pub trigger: Trigger,
    pub attempt: i64,
    pub job_id: Option<i64>,
    /// The `pending` run an operator's trigger created; it becomes this run.
    pub pending_run_id: Option<i64>,
    /// A fetch of an integration with a due time: the due time it may meet
    /// (see [`integrations::meet_due`]).
    pub due_at_start: Option<DueAtStart>,
}

/// A finished run and what follows from it.
pub struct RunCompletion {
    pub run_id: i64,
    pub outcome: RunOutcome,
    /// Its log lines not written while it ran.
    pub logs: LogTail,
    /// The job the run belongs to, held by this lease, and what becomes of it.
    pub job: Option<(JobLease, JobAction)>,
    /// The run's integration.
    pub integration_id: i64,
    /// The integration's scheduling update; `None` while the job will retry
    /// (the run is not over for the schedule), and for processing.
    pub end: Option<RunEnd>,
    /// The job that processes what a fetch stored, queued with its end.
    pub then_process: Option<NewJob>,
}

/// What taking a job back from a holder that is gone did.
pub struct Rescued {
    /// That was its last attempt: it is in the failed list now.
    pub failed: bool,
    /// The reason its failure paused its integration, if it did.
    pub paused: Option<PauseReason>,
}

/// What recording a finished run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded; the reason it paused its integration, if it did.
    Finished { paused: Option<PauseReason> },
    /// Recorded already, by an earlier write of the same completions whose
    /// acknowledgement was lost (the connection failed as it committed);
    /// nothing written again. Whether that write paused the integration is
    /// not known here, so no pause is notified from it.
    Earlier,
    /// Nothing written: its job's lease was lost (the job was rescued and
    /// its run closed, and it may run elsewhere now).
    LeaseLost,
}

impl Store {
    /// Record runs as started in one transaction. Returns their run ids, in
    /// order, and the start time they share. Each integration may appear once.
    /// A fetch may meet its integration's due time (`due_at_start`).
    pub async fn start_runs(&self, starts: &[RunStart]) -> Result<(Vec<i64>, i64)> {
        let now = self.now();
        if starts.is_empty() {
            return Ok((Vec::new(), now));
        }
        let integration_ids: Vec<i64> = starts.iter().map(|s| s.integration_id).collect();
        anyhow::ensure!(
            integration_ids.iter().collect::<BTreeSet<_>>().len() == starts.len(),
            "a batch of runs names an integration twice"
        );
        let mut tx = self.begin().await?;
        // A start that writes a row the integration's deletion takes (its
        // pending run) or the integration itself (meeting its due time)
        // holds the integrations first (see `lock_order`). Inserting runs
        // takes no lock: they have no foreign key (migration 0005), and a
        // deletion does not see them.
        if starts.iter().any(|s| s.pending_run_id.is_some() || s.due_at_start.is_some()) {
            lock_order::hold_integrations(&mut tx, &integration_ids).await?;
        }
        let mut run_by_integration = BTreeMap::new();
        for start in starts {
            if let Some(run_id) = start.pending_run_id
                && sync_runs::start_pending(&mut tx, run_id, start.trigger, start.attempt, now).await?
            {
                run_by_integration.insert(start.integration_id, run_id);
            }
        }
        let rows: Vec<(i64, Queue, Trigger, i64, Option<i64>)> = starts
            .iter()
            .filter(|s| !run_by_integration.contains_key(&s.integration_id))
            .map(|s| (s.integration_id, s.queue, s.trigger, s.attempt, s.job_id))
            .collect();
        if !rows.is_empty() {
            for (run_id, integration_id) in sync_runs::insert_running_many(&mut tx, &rows, now).await? {
                run_by_integration.insert(integration_id, run_id);
            }
        }
        let run_ids: Vec<i64> = integration_ids.iter().map(|id| run_by_integration[id]).collect();
        let meeting: Vec<(i64, DueAtStart)> = (starts.iter())
            .filter(|s| s.queue == Queue::Fetch)
            .filter_map(|s| Some((s.integration_id, s.due_at_start?)))
            .collect();
        integrations::meet_due(&mut tx, &meeting).await?;
        tx.commit().await?;
        Ok((run_ids, now))
    }

    /// Let go of a fetch's job that ends without its run recorded (`inlet
    /// sync` failing to record it), and owe its integration the due time the
    /// fetch may have met, as `due_at`. In one transaction: if it fails, the
    /// job stays leased until rescued, and the rescue sees to the schedule.
    pub async fn end_unrecorded_fetch(&self, lease: &JobLease, integration_id: i64, due_at: i64) -> Result<bool> {
        let mut tx = self.begin().await?;
        lock_order::hold_integrations(&mut tx, &[integration_id]).await?;
        let held = jobs::apply(&mut tx, lease, &JobAction::Complete, self.now()).await?;
        if held {
            integrations::owe_due(&mut tx, integration_id, due_at).await?;
        }
        tx.commit().await?;
        Ok(held)
    }

    /// Record runs as finished in one transaction, those whose job lease is
    /// still held: a worker that lost a lease cannot finish anything.
    pub async fn complete_runs(&self, completions: &[RunCompletion]) -> Result<Vec<Recorded>> {
        let now = self.now();
        let mut tx = self.begin().await?;
        // Every run's integration before its job and run (see `lock_order`).
        let integration_ids: Vec<i64> = completions.iter().map(|c| c.integration_id).collect();
        lock_order::hold_integrations(&mut tx, &integration_ids).await?;
        // The jobs next, each write conditioned on its lease: a job it did
        // not touch was lost, and its run is left as the rescue closed it.
        let completing: Vec<&JobLease> = completions
            .iter()
            .filter_map(|c| match &c.job {
                Some((lease, JobAction::Complete)) => Some(lease),
                _ => None,
            })
            .collect();
        let mut held = jobs::complete_held(&mut tx, &completing).await?;
        for (lease, action) in completions.iter().filter_map(|c| c.job.as_ref()) {
            if *action != JobAction::Complete && jobs::apply(&mut tx, lease, action, now).await? {
                held.insert(lease.job_id);
            }
        }
        let current = |c: &RunCompletion| c.job.as_ref().is_none_or(|(lease, _)| held.contains(&lease.job_id));
        let valid: Vec<&RunCompletion> = completions.iter().filter(|c| current(c)).collect();
        let not_held: Vec<i64> = completions.iter().filter(|c| !current(c)).map(|c| c.run_id).collect();
        let ended_earlier = sync_runs::ended_by_their_worker(&mut tx, &not_held).await?;

        let finished: Vec<(i64, &RunOutcome)> = valid.iter().map(|c| (c.run_id, &c.outcome)).collect();
        sync_runs::finish_many(&mut tx, &finished, now).await?;
        // The integrations' ends, of the runs whose jobs were held.
        let ends: Vec<(i64, &RunEnd)> =
            valid.iter().filter_map(|c| Some((c.integration_id, c.end.as_ref()?))).collect();
        let successes: Vec<(i64, &RunEnd)> = ends.iter().filter(|(_, end)| end.success).copied().collect();
        // The integrations whose end set their next due time.
        let mut set_due = integrations::finish_successes(&mut tx, &successes, now).await?;

        // The rarer cases, one statement each.
        let mut recorded = Vec::with_capacity(completions.len());
        let mut paused_now = Vec::new();
        for completion in completions {
            if !current(completion) {
                let earlier = ended_earlier.contains(&completion.run_id);
                recorded.push(if earlier { Recorded::Earlier } else { Recorded::LeaseLost });
                continue;
            }
            sync_runs::append_logs(&mut tx, completion.run_id, completion.logs.after, &completion.logs.lines).await?;
            if let Some(job) = &completion.then_process {
                jobs::waiting_or_new(&mut tx, self.backend(), job, now).await?;
            }
            let id = completion.integration_id;
            let paused = match &completion.end {
                Some(end) if !end.success => {
                    let ended = integrations::finish_run(&mut tx, id, end, now).await?;
                    // A pause this run caused withdraws like an operator's.
                    if ended.set_due || ended.paused.is_some() {
                        set_due.insert(id);
                    }
                    if ended.paused.is_some() {
                        paused_now.push(id);
                    }
                    ended.paused
                }
                _ => None,
            };
            recorded.push(Recorded::Finished { paused });
        }
        let fetched: Vec<(i64, &RunEnd)> =
            ends.into_iter().filter(|(id, end)| end.fetched && set_due.contains(id)).collect();
        withdraw_redundant_runs(&mut tx, &fetched, now).await?;
        jobs::withdraw_scheduled(&mut tx, self.backend(), &paused_now, Withdrawal::Paused, now).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    /// Record how a run of integration `id` ended outside a worker's
    /// completion batch, and when the next is due. Returns the reason when
    /// this run paused the integration.
    pub async fn record_run_finished(&self, id: i64, end: &RunEnd) -> Result<Option<PauseReason>> {
        let mut tx = self.begin().await?;
        let paused = end_run(&mut tx, id, end, self.now()).await?;
        tx.commit().await?;
        Ok(paused)
    }

    /// Take back `job`, one of the [`Store::abandoned_jobs`]: available
    /// again, or failed when that was its last attempt, with the run it
    /// left open closed. A fetch failed so for good also ends its
    /// integration's run, as `end_of_fetch` says from the integration and
    /// when that run started (the failure counts in its streak, and its
    /// schedule goes on: queueing the job cleared its next due time). One
    /// transaction: a failure cannot leave the job failed and its
    /// integration never due again. `None` when the job is no longer so
    /// abandoned (renewed, or rescued already).
    pub async fn rescue_job(
        &self,
        job: &Job,
        abandoned: &Abandoned,
        end_of_fetch: &(dyn Fn(&Integration, i64) -> RunEnd + Sync),
    ) -> Result<Option<Rescued>> {
        let now = self.now();
        let failed = job.attempt >= job.max_attempts;
        let fetch_ended = job.integration_id.filter(|_| failed && !job.queue.processes());
        let mut tx = self.begin().await?;
        lock_order::hold_integrations(&mut tx, fetch_ended.as_slice()).await?;
        if !jobs::rescue(&mut tx, job, abandoned, now).await? {
            return Ok(None);
        }
        let run = match job.sync_run_id {
            Some(run_id) => {
                let (class, reason) = (ErrorClass::LeaseExpired, abandoned.reason());
                sync_runs::abandon(&mut tx, run_id, RunStatus::Failed, class, reason, now).await?;
                sync_runs::get(&mut tx, run_id).await?
            }
            None => None,
        };
        let mut paused = None;
        if let Some(id) = fetch_ended
            && let Some(integration) = integrations::get(&mut tx, id).await?
        {
            let started_at = run.and_then(|run| run.started_at).unwrap_or(now);
            paused = end_run(&mut tx, id, &end_of_fetch(&integration, started_at), now).await?;
        }
        tx.commit().await?;
        Ok(Some(Rescued { failed, paused }))
    }
}

/// Integration `id`'s run ended (`end`): its streak, its next due time, and
/// the runs queued that the end made redundant or a pause withdraws.
/// Returns the reason when this run paused it.
async fn end_run(conn: &mut Connection, id: i64, end: &RunEnd, now: i64) -> Result<Option<PauseReason>> {
    let ended = integrations::finish_run(conn, id, end, now).await?;
    if end.fetched && (ended.set_due || ended.paused.is_some()) {
        withdraw_redundant_runs(conn, &[(id, end)], now).await?;
    }
    if ended.paused.is_some() {
        let backend = Backend::of(conn);
        jobs::withdraw_scheduled(conn, backend, &[id], Withdrawal::Paused, now).await?;
    }
    Ok(ended.paused)
}

/// Fetches ended, each setting when its integration is next due (or
/// pausing it): the runs the scheduler queued that they made redundant are
/// withdrawn. A run queued ahead of the due time an end replaced goes, as
/// for an operator's edit, and so does one due before the next, which the
/// fetch met; that one may have been queued at any moment from the job's
/// claim on, so every end looks. Where an edit during the fetch set the due
/// time, the edit withdrew them, and the end is not among these.
async fn withdraw_redundant_runs(conn: &mut Connection, ended: &[(i64, &RunEnd)], now: i64) -> Result<()> {
    let backend = Backend::of(conn);
    let ids: Vec<i64> = ended.iter().map(|(id, _)| *id).collect();
    jobs::withdraw_scheduled(conn, backend, &ids, Withdrawal::QueuedAhead, now).await?;
    let met: Vec<(i64, i64)> = ended.iter().filter_map(|(id, end)| Some((*id, end.next_due_at?))).collect();
    jobs::withdraw_met(conn, backend, &met).await?;
    Ok(())
}
