//! `jobs`: durable queued work with leases, retries and a failed list.
//!
//! States: `available` (waiting for `run_at`) → `running` (claimed, leased) →
//! deleted once completed (its run in `sync_runs` is the record, and keeping
//! the row would cost a write per run and a delete later) | `failed` (no
//! attempts left, or not retryable: the failed list, until retried or flushed).
//! The partial unique index `jobs_one_running` makes a second concurrent
//! fetch, or a second concurrent processing, of one integration impossible
//! whatever the callers do (it may fetch while it processes).

use super::sync_runs;
use super::{Backend, Connection, Store};
use crate::domain::error_class::ErrorClass;
use crate::domain::job_state::JobState;
use crate::domain::queue::Queue;
use crate::domain::trigger::Trigger;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::{BTreeMap, BTreeSet};

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Integrations with a processing job in the failed list: those that
/// [`Store::processing_failures`] reports, and any whose processing has
/// succeeded since, for filters that narrow a page before it is read.
pub(super) const WITH_FAILED_PROCESSING: &str =
    "id IN (SELECT integration_id FROM jobs WHERE state = 'failed' AND queue <> 'fetch')";

/// What a job asks for, stored as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobArgs {
    pub trigger: Trigger,
    /// Fetch history from this time (ms) on, ignoring cursors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill_since: Option<i64>,
    /// Process stored batches again with the current plugin (no fetch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reprocess: Option<ReprocessScope>,
}

/// Which stored batches a reprocess reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReprocessScope {
    /// Batches stored at or after this time (ms); all kept ones when absent.
    pub since: Option<i64>,
}

impl JobArgs {
    pub fn new(trigger: Trigger) -> JobArgs {
        JobArgs { trigger, backfill_since: None, reprocess: None }
    }

    /// A waiting job that another request joins does what both asked for:
    /// the earlier backfill start and the wider reprocess, with the trigger
    /// of what the job now does.
    fn joined(&self, new: &JobArgs) -> JobArgs {
        fn earlier(a: Option<i64>, b: Option<i64>) -> Option<i64> {
            a.into_iter().chain(b).min()
        }
        let reprocess = match (self.reprocess, new.reprocess) {
            (Some(a), Some(b)) => Some(ReprocessScope { since: a.since.zip(b.since).map(|(a, b)| a.min(b)) }),
            (a, b) => a.or(b),
        };
        let backfill_since = earlier(self.backfill_since, new.backfill_since);
        let trigger = match (reprocess, backfill_since) {
            (Some(_), _) => Trigger::Reprocess,
            (None, Some(_)) => Trigger::Backfill,
            (None, None) => self.trigger,
        };
        JobArgs { trigger, backfill_since, reprocess }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: i64,
    pub queue: Queue,
    pub integration_id: Option<i64>,
    pub args: JobArgs,
    pub state: JobState,
    /// Attempts started so far (1 while the first attempt runs).
    pub attempt: i64,
    pub max_attempts: i64,
    pub run_at: i64,
    /// The job's latest run; `None` in jobs returned by a claim.
    pub sync_run_id: Option<i64>,
    /// The `pending` run an operator's request created for this job, which
    /// its next attempt becomes.
    pub pending_run_id: Option<i64>,
    pub error_class: Option<ErrorClass>,
    pub error_message: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// Checkpoints its attempts committed: a backfill whose earlier attempt
    /// checkpointed resumes from the plugin's progress.
    pub checkpoints: i64,
    /// Times it was claimed, which a lease names (see [`JobLease`]).
    #[serde(skip)]
    pub claims: i64,
}

/// Integrations with a job running, and the job each other one waits on.
#[derive(Debug, Default)]
pub struct ActiveJobs {
    pub running: BTreeSet<i64>,
    pub waiting: BTreeMap<i64, WaitingJob>,
}

/// A job waiting for its next attempt.
#[derive(Debug, Clone)]
pub struct WaitingJob {
    /// Attempts started so far: 0 for a job not yet tried.
    pub attempts_made: i64,
    pub max_attempts: i64,
    pub run_at: i64,
    /// Why the last attempt failed, when this waits to retry it.
    pub error_message: Option<String>,
}

/// A worker's hold on a running job. Every write that ends or advances the
/// job or its run names it, and changes nothing once the lease is lost (the
/// job was rescued, and may run elsewhere now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLease {
    pub job_id: i64,
    pub owner: String,
    /// The job's claim count at this claim. Not the attempt, which a wait
    /// refunds and an operator's retry resets: the same owner may claim the
    /// job again with the same attempt while it still writes the old one.
    pub claim: i64,
}

impl JobLease {
    /// `owner`'s lease on `job`, just claimed.
    pub fn of(job: &Job, owner: &str) -> JobLease {
        JobLease { job_id: job.id, owner: owner.to_string(), claim: job.claims }
    }
}

/// Running jobs whose holder is gone, as a worker finds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abandoned {
    /// The holder stopped renewing its lease (killed, stuck, partitioned).
    LeaseExpired,
    /// The holder, named here, is a process of this machine that has ended.
    HolderEnded(String),
}

impl Abandoned {
    /// Which running jobs were abandoned, given `$1` bound by [`Abandoned::bind`].
    fn condition(&self) -> &'static str {
        match self {
            Abandoned::LeaseExpired => "lease_expires_at < $1",
            Abandoned::HolderEnded(_) => "lease_owner = $1",
        }
    }

    /// Bind [`Abandoned::condition`]'s `$1`: the expiry time or the owner.
    fn bind<'q>(&self, query: AnyQuery<'q>, now: i64) -> AnyQuery<'q> {
        match self {
            Abandoned::LeaseExpired => query.bind(now),
            Abandoned::HolderEnded(owner) => query.bind(owner.clone()),
        }
    }

    /// Why the job stopped, for its record and its run's.
    pub fn reason(&self) -> &'static str {
        match self {
            Abandoned::LeaseExpired => "the worker running it stopped renewing its lease (killed or stuck)",
            Abandoned::HolderEnded(_) => "the process running it ended (killed or crashed) before finishing it",
        }
    }
}

/// Why a run could not take its integration for itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlreadyRunning {
    /// Who holds the integration's running job.
    pub owner: Option<String>,
    pub job_id: i64,
}

/// What becomes of a job after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum JobAction {
    Complete,
    /// Wait for another attempt at `run_at`; a refunded attempt does not count.
    Retry {
        run_at: i64,
        refund_attempt: bool,
        class: String,
        message: String,
    },
    /// No more attempts: to the failed list.
    Fail {
        class: String,
        message: String,
    },
}

/// What became of an operator's request for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerOutcome {
    Queued { job_id: i64, run_id: i64 },
    TooSoon { last_requested_at: i64 },
    NoIntegration,
}

pub struct NewJob {
    pub queue: Queue,
    pub integration_id: i64,
    pub args: JobArgs,
    pub max_attempts: i64,
    pub run_at: i64,
}

/// SQL: the job whose queue column is `column` is of the lane of the queue
/// in `queue` (a parameter): fetching, or processing (see
/// [`Queue::processes`]). An integration runs one job of each lane at a time,
/// as the index `jobs_one_running` (on `queue = 'fetch'`) holds.
fn same_lane(column: &str, queue: &str) -> String {
    format!("({column} = 'fetch') = (CAST({queue} AS TEXT) = 'fetch')")
}

/// SQL: job `j` is not held back by a running job of its integration in the
/// lane of the queue in `queue` (a parameter): an integration runs one job of
/// each lane at a time (see [`Queue::processes`]). Integrations with a
/// running job are read once, into a hash (`NOT IN`): PostgreSQL plans from
/// statistics, a queue table's are stale at every burst, and as `NOT EXISTS`
/// it made a join that, planned when 4 jobs ran, compared each of 2,000
/// candidates with every running job (7 s a claim).
fn not_held_back(queue: &str) -> String {
    format!(
        "(j.integration_id IS NULL OR j.integration_id NOT IN (
             SELECT r.integration_id FROM jobs r
             WHERE r.state = 'running' AND r.integration_id IS NOT NULL AND {}))",
        same_lane("r.queue", queue)
    )
}

/// The statement [`Store::claim_jobs`] runs: `$1` owner, `$2` lease end, `$3`
/// now, `$4` queue, `$5` limit. Candidates are locked first; then at most one
/// per integration is taken (two claimed together would break `jobs_one_running`).
pub fn claim_statement(backend: Backend) -> String {
    // PostgreSQL lets concurrent claimers skip each other's rows; SQLite
    // has a single writer, so the statement is already exclusive.
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    format!(
        "WITH candidates AS (
             SELECT id, integration_id, run_at FROM jobs j
             WHERE j.queue = $4 AND j.state = 'available' AND j.run_at <= $3 AND {not_held_back}
             ORDER BY j.run_at, j.id LIMIT $5 {lock}),
         firsts AS (
             SELECT id FROM (
                 SELECT id, ROW_NUMBER() OVER (PARTITION BY COALESCE(integration_id, -id) ORDER BY run_at, id) AS n
                 FROM candidates) ranked
             WHERE n = 1)
         UPDATE jobs SET state = 'running', attempt = attempt + 1, claims = claims + 1, lease_owner = $1,
             lease_expires_at = $2, updated_at = $3
         WHERE id IN (SELECT id FROM firsts)
         RETURNING {}",
        columns(NOT_LOOKED_UP),
        not_held_back = not_held_back("$4"),
    )
}

/// A job's columns, with `sync_run_id` computed by `latest_run`.
fn columns(latest_run: &str) -> String {
    format!(
        "id, queue, integration_id, args, state, attempt, max_attempts, run_at, {latest_run} AS sync_run_id,
         pending_run_id, error_class, error_message, created_at, finished_at, checkpoints, claims"
    )
}

/// A job's latest run: the newest of its integration's runs that names it
/// (migration 0005: walked from the integration's newest run, as sync
/// history is, rather than kept in an index of its own written by every run).
const LATEST_RUN: &str =
    "(SELECT MAX(r.id) FROM sync_runs r WHERE r.integration_id = jobs.integration_id AND r.job_id = jobs.id)";

/// A job just claimed has no run of this attempt yet, and a claim would pay
/// for the lookup on every job: see `pending_run_id` instead.
const NOT_LOOKED_UP: &str = "CAST(NULL AS BIGINT)";

fn job(row: AnyRow) -> Result<Job> {
    Ok(Job {
        id: row.try_get("id")?,
        queue: Queue::parse(row.try_get("queue")?)?,
        integration_id: row.try_get("integration_id")?,
        args: serde_json::from_str(row.try_get("args")?)?,
        state: JobState::parse(row.try_get("state")?)?,
        attempt: row.try_get("attempt")?,
        max_attempts: row.try_get("max_attempts")?,
        run_at: row.try_get("run_at")?,
        sync_run_id: row.try_get("sync_run_id")?,
        pending_run_id: row.try_get("pending_run_id")?,
        error_class: row.try_get::<Option<String>, _>("error_class")?.as_deref().map(ErrorClass::parse).transpose()?,
        error_message: row.try_get("error_message")?,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
        checkpoints: row.try_get("checkpoints")?,
        claims: row.try_get("claims")?,
    })
}

impl Store {
    /// Queue a job unless the integration already has one waiting in that
    /// queue (repeated triggers coalesce). Returns the waiting job's id.
    pub async fn enqueue_job(&self, new: &NewJob) -> Result<i64> {
        let mut tx = self.begin().await?;
        let id = waiting_or_new(&mut tx, self.backend(), new, self.now()).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// An operator's "Update now" (or reprocess): queue a job (or join the
    /// one waiting) and give it a `pending` run, whose id is known at once.
    /// A fetch is refused when the last one asked for this integration was
    /// less than `min_gap_ms` ago; a reprocess asks nothing of the upstream,
    /// so it is neither held to that nor counted.
    pub async fn request_run(&self, new: &NewJob, min_gap_ms: i64) -> Result<TriggerOutcome> {
        let now = self.now();
        let mut tx = self.begin().await?;
        // Check and claim the slot in one statement: two requests at once
        // cannot both pass the check.
        let allowed = match new.queue {
            Queue::Fetch => sqlx::query(
                "UPDATE integrations SET last_triggered_at = $2
                 WHERE id = $1 AND (last_triggered_at IS NULL OR last_triggered_at <= $3)",
            )
            .bind(new.integration_id)
            .bind(now)
            .bind(now - min_gap_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            // Locked, as a fetch's stamp locks it: a reprocess then waits
            // for a fetch's end that is queueing processing (and joins its
            // job), and sees a deletion that is under way.
            _ => sqlx::query(match self.backend() {
                Backend::Postgres => "SELECT id FROM integrations WHERE id = $1 FOR UPDATE",
                Backend::Sqlite => "SELECT id FROM integrations WHERE id = $1",
            })
            .bind(new.integration_id)
            .fetch_optional(&mut *tx)
            .await?
            .map_or(0, |_| 1),
        };
        if allowed == 0 {
            let last: Option<Option<i64>> =
                sqlx::query_scalar("SELECT last_triggered_at FROM integrations WHERE id = $1")
                    .bind(new.integration_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            return Ok(match last {
                None => TriggerOutcome::NoIntegration,
                Some(at) => TriggerOutcome::TooSoon { last_requested_at: at.unwrap_or(now) },
            });
        }
        let job_id = waiting_or_new(&mut tx, self.backend(), new, now).await?;
        let pending: Option<i64> = sqlx::query_scalar(
            "SELECT r.id FROM jobs j JOIN sync_runs r ON r.id = j.pending_run_id WHERE j.id = $1 AND r.status = 'pending'",
        )
        .bind(job_id)
        .fetch_optional(&mut *tx)
        .await?;
        let run_id = match pending {
            Some(run_id) => run_id,
            None => {
                let run_id =
                    sync_runs::insert_pending(&mut tx, new.integration_id, job_id, new.queue, new.args.trigger, now)
                        .await?;
                sqlx::query("UPDATE jobs SET pending_run_id = $2 WHERE id = $1")
                    .bind(job_id)
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await?;
                run_id
            }
        };
        tx.commit().await?;
        Ok(TriggerOutcome::Queued { job_id, run_id })
    }

    /// Claim up to `limit` due jobs of `queue` for `owner`, leased until
    /// `now + lease_ms`. Jobs of an integration that already runs a job of the
    /// queue's lane are left waiting.
    pub async fn claim_jobs(&self, queue: Queue, owner: &str, lease_ms: i64, limit: i64) -> Result<Vec<Job>> {
        let now = self.now();
        let sql = claim_statement(self.backend());
        let _turn = self.write_turn().await;
        let claimed = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(now + lease_ms)
            .bind(now)
            .bind(queue.as_str())
            .bind(limit)
            .fetch_all(self.pool())
            .await;
        match claimed {
            Ok(rows) => rows.into_iter().map(job).collect(),
            // Two claimers raced for two jobs of one integration; the index
            // refused the second. Nothing was claimed; the caller polls again.
            Err(e) if e.as_database_error().is_some_and(|d| d.is_unique_violation()) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Extend the leases `owner` holds on these claims (job id, claim).
    /// Returns the ids of those it still held: a job missing from them was
    /// rescued (and may have been claimed again), and its run must stop.
    pub async fn renew_leases(&self, owner: &str, claims: &[(i64, i64)], lease_ms: i64) -> Result<Vec<i64>> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, claim_matches) = claims_match(self.backend());
        let sql = format!(
            "UPDATE jobs SET lease_expires_at = $3 WHERE {ids} AND lease_owner = $2 AND {claim_matches}
             AND state = 'running' RETURNING id"
        );
        let claims: BTreeMap<String, i64> = claims.iter().map(|(id, claim)| (id.to_string(), *claim)).collect();
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(super::json_param(&claims))
            .bind(owner)
            .bind(self.now() + lease_ms)
            .fetch_all(self.pool())
            .await?)
    }

    /// Take `integration_id` for a run in this process (`inlet sync`): a
    /// running job of `queue` of one attempt, leased to `owner`, so the
    /// database keeps it from overlapping a worker's run of the same lane
    /// exactly as it keeps two workers apart. Refused while another run of
    /// that lane holds the integration.
    pub async fn claim_integration(
        &self,
        integration_id: i64,
        queue: Queue,
        args: &JobArgs,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Result<JobLease, AlreadyRunning>> {
        let now = self.now();
        let _turn = self.write_turn().await;
        let inserted = sqlx::query_scalar(
            "INSERT INTO jobs (queue, integration_id, args, state, attempt, claims, max_attempts, run_at, lease_owner,
                 lease_expires_at, created_at, updated_at)
             VALUES ($1, $2, $3, 'running', 1, 1, 1, $4, $5, $6, $4, $4) RETURNING id",
        )
        .bind(queue.as_str())
        .bind(integration_id)
        .bind(serde_json::to_string(args)?)
        .bind(now)
        .bind(owner)
        .bind(now + lease_ms)
        .fetch_one(self.pool())
        .await;
        match inserted {
            Ok(job_id) => Ok(Ok(JobLease { job_id, owner: owner.to_string(), claim: 1 })),
            Err(e) if e.as_database_error().is_some_and(|d| d.is_unique_violation()) => {
                Ok(Err(self.running_in_lane(integration_id, queue).await?))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Claim the job of `queue` that waits for `integration_id`, due or not
    /// (a sync in this process processes what its fetch stored at once).
    /// `None` when none waits, or a run of that lane holds the integration
    /// (a worker's: the job waits for it).
    pub async fn claim_waiting_job(
        &self,
        integration_id: i64,
        queue: Queue,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Option<Job>> {
        let now = self.now();
        // The state is checked again on the row itself: on PostgreSQL a
        // worker may claim it between the look and the update.
        let lock = match self.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let _turn = self.write_turn().await;
        let claimed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs SET state = 'running', attempt = attempt + 1, claims = claims + 1, lease_owner = $3,
                 lease_expires_at = $4, updated_at = $5
             WHERE state = 'available' AND id = (
                 SELECT id FROM jobs WHERE integration_id = $1 AND queue = $2 AND state = 'available'
                 ORDER BY id LIMIT 1 {lock})
             RETURNING {}",
            columns(NOT_LOOKED_UP)
        )))
        .bind(integration_id)
        .bind(queue.as_str())
        .bind(owner)
        .bind(now + lease_ms)
        .bind(now)
        .fetch_optional(self.pool())
        .await;
        match claimed {
            Ok(row) => row.map(job).transpose(),
            Err(e) if e.as_database_error().is_some_and(|d| d.is_unique_violation()) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Who holds `integration_id`'s running job of `queue`'s lane.
    async fn running_in_lane(&self, integration_id: i64, queue: Queue) -> Result<AlreadyRunning> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, lease_owner FROM jobs WHERE integration_id = $1 AND state = 'running' AND {} LIMIT 1",
            same_lane("queue", "$2")
        )))
        .bind(integration_id)
        .bind(queue.as_str())
        .fetch_optional(self.pool())
        .await?;
        let (job_id, owner) = match row {
            Some(row) => (row.try_get("id")?, row.try_get("lease_owner")?),
            None => (0, None),
        };
        Ok(AlreadyRunning { owner, job_id })
    }

    /// The job is done with. False (and nothing changed) if `lease` was lost.
    pub async fn complete_job(&self, lease: &JobLease) -> Result<bool> {
        self.apply_job_action(lease, &JobAction::Complete).await
    }

    /// Give up on a job: it lands in the failed list.
    pub async fn fail_job(&self, lease: &JobLease, class: &str, message: &str) -> Result<bool> {
        self.apply_job_action(lease, &JobAction::Fail { class: class.into(), message: message.into() }).await
    }

    /// Put a job back to wait for another attempt at `run_at`. With
    /// `refund_attempt` the attempt that just ended does not count.
    pub async fn retry_job_at(
        &self,
        lease: &JobLease,
        run_at: i64,
        refund_attempt: bool,
        class: &str,
        message: &str,
    ) -> Result<bool> {
        let action = JobAction::Retry { run_at, refund_attempt, class: class.into(), message: message.into() };
        self.apply_job_action(lease, &action).await
    }

    pub async fn apply_job_action(&self, lease: &JobLease, action: &JobAction) -> Result<bool> {
        apply(&mut *self.pool().acquire().await?, lease, action, self.now()).await
    }

    /// Hand back jobs `owner` holds on these claims (job id, claim) without
    /// counting the attempt (graceful shutdown).
    pub async fn release_jobs(&self, owner: &str, claims: &[(i64, i64)]) -> Result<u64> {
        let mut released = 0;
        for (id, claim) in claims {
            released += sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE jobs SET state = 'available', attempt = attempt - 1, run_at = $4, updated_at = $4,
                     lease_owner = NULL, lease_expires_at = NULL
                 WHERE {HELD}"
            )))
            .bind(id)
            .bind(owner)
            .bind(claim)
            .bind(self.now())
            .execute(self.pool())
            .await?
            .rows_affected();
        }
        Ok(released)
    }

    /// Running jobs whose holder is gone, as they are now (see
    /// [`Store::rescue_job`], which takes one back).
    pub async fn abandoned_jobs(&self, abandoned: &Abandoned) -> Result<Vec<Job>> {
        let sql =
            format!("SELECT {} FROM jobs WHERE state = 'running' AND {}", columns(LATEST_RUN), abandoned.condition());
        abandoned
            .bind(sqlx::query(sqlx::AssertSqlSafe(sql)), self.now())
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(job)
            .collect()
    }

    /// Who holds running jobs now.
    pub async fn running_job_owners(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT lease_owner FROM jobs WHERE state = 'running' AND lease_owner IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn job(&self, id: i64) -> Result<Option<Job>> {
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {} FROM jobs WHERE id = $1", columns(LATEST_RUN))))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(job)
            .transpose()
    }

    /// Jobs of an integration, newest first.
    pub async fn integration_jobs(&self, integration_id: i64) -> Result<Vec<Job>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM jobs WHERE integration_id = $1 ORDER BY id DESC",
            columns(LATEST_RUN)
        )))
        .bind(integration_id)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(job)
        .collect()
    }

    /// The failed list, newest first.
    pub async fn failed_jobs(&self, limit: i64) -> Result<Vec<Job>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM jobs WHERE state = 'failed' ORDER BY finished_at DESC, id DESC LIMIT $1",
            columns(LATEST_RUN)
        )))
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(job)
        .collect()
    }

    /// How many jobs are in the failed list, and when the newest of them failed.
    pub async fn failed_job_count(&self) -> Result<(i64, Option<i64>)> {
        let row = sqlx::query("SELECT COUNT(*) AS n, MAX(finished_at) AS newest FROM jobs WHERE state = 'failed'")
            .fetch_one(self.pool())
            .await?;
        Ok((row.try_get("n")?, row.try_get("newest")?))
    }

    /// Give failed jobs a fresh set of attempts, now. `None` retries them all.
    pub async fn retry_failed_jobs(&self, id: Option<i64>) -> Result<u64> {
        // An operator asked for it again: a scheduled run becomes theirs, and
        // runs whether its integration is paused or not (a failure streak or
        // a refused token may have paused it), as their "Update now" would.
        let asked = match self.backend() {
            Backend::Postgres => {
                "CASE WHEN args::jsonb ->> 'trigger' = 'schedule'
                      THEN (args::jsonb || '{\"trigger\": \"manual\"}'::jsonb)::text ELSE args END"
            }
            Backend::Sqlite => {
                "CASE WHEN json_extract(args, '$.trigger') = 'schedule'
                      THEN json_set(args, '$.trigger', 'manual') ELSE args END"
            }
        };
        let result = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs SET state = 'available', attempt = 0, run_at = $2, updated_at = $2, finished_at = NULL,
                 args = {asked}
             WHERE state = 'failed' AND ($1 IS NULL OR id = $1)"
        )))
        .bind(id)
        .bind(self.now())
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected())
    }

    /// Delete the failed list.
    pub async fn flush_failed_jobs(&self) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM jobs WHERE state = 'failed'").execute(self.pool()).await?.rows_affected())
    }

    /// When the earliest waiting job of `queue` that no running job holds
    /// back becomes due (a time past: it is due now). One held back waits for
    /// a run of its integration to end, and a worker is woken by that (or
    /// polls, for a run elsewhere): counting it would make it loop.
    pub async fn next_job_due_at(&self, queue: Queue) -> Result<Option<i64>> {
        // ORDER BY + LIMIT walks `jobs_claimable` from its start; the planner
        // may answer MIN() by scanning another index whole.
        let sql = format!(
            "SELECT run_at FROM jobs j WHERE j.queue = $1 AND j.state = 'available' AND {}
             ORDER BY j.run_at LIMIT 1",
            not_held_back("$1")
        );
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(queue.as_str()).fetch_optional(self.pool()).await?)
    }

    /// Jobs waiting in each queue (due or not).
    pub async fn queue_depths(&self) -> Result<Vec<(Queue, i64)>> {
        sqlx::query("SELECT queue, COUNT(*) AS waiting FROM jobs WHERE state = 'available' GROUP BY queue")
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(|row| Ok((Queue::parse(row.try_get("queue")?)?, row.try_get("waiting")?)))
            .collect()
    }

    /// What the jobs of `integration_ids` are doing: which run one now, and
    /// for each other, the job it waits on (a retry shows the failure it follows).
    pub async fn active_jobs(&self, integration_ids: &[i64]) -> Result<ActiveJobs> {
        if integration_ids.is_empty() {
            return Ok(ActiveJobs::default());
        }
        // One arm per state, so each reads its own partial index. Processing
        // queued after a fetch is not an update the integration waits on;
        // one waiting to retry is shown.
        let ids = super::json_ids_match(self.backend(), "integration_id", 1);
        let sql = format!(
            "SELECT integration_id, state, attempt, max_attempts, run_at, error_message, id FROM jobs
               WHERE state = 'running' AND {ids}
             UNION ALL
             SELECT integration_id, state, attempt, max_attempts, run_at, error_message, id FROM jobs
               WHERE state = 'available' AND {ids} AND (queue = 'fetch' OR error_message IS NOT NULL)
             ORDER BY run_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(super::json_param(&integration_ids))
            .fetch_all(self.pool())
            .await?;
        let mut active = ActiveJobs::default();
        for row in rows {
            let id: i64 = row.try_get("integration_id")?;
            if row.try_get::<&str, _>("state")? == "running" {
                active.running.insert(id);
                continue;
            }
            let job = WaitingJob {
                attempts_made: row.try_get("attempt")?,
                max_attempts: row.try_get("max_attempts")?,
                run_at: row.try_get("run_at")?,
                error_message: row.try_get("error_message")?,
            };
            // A retry tells more than a run queued beside it.
            let shown = active.waiting.entry(id).or_insert_with(|| job.clone());
            if shown.error_message.is_none() && job.error_message.is_some() {
                *shown = job;
            }
        }
        Ok(active)
    }

    /// The error of each of `integration_ids` whose processing failed for
    /// good (its job is in the failed list) and has not succeeded since: its
    /// fetches succeed, but what they store is not turned into records.
    pub async fn processing_failures(&self, integration_ids: &[i64]) -> Result<BTreeMap<i64, String>> {
        if integration_ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let sql = format!(
            "SELECT j.integration_id, j.error_message FROM jobs j
             WHERE j.state = 'failed' AND j.queue <> 'fetch' AND {}
               AND NOT EXISTS (
                   SELECT 1 FROM sync_runs r WHERE r.integration_id = j.integration_id AND r.queue <> 'fetch'
                     AND r.status = 'success' AND r.finished_at > j.finished_at)
             ORDER BY j.finished_at, j.id",
            super::json_ids_match(self.backend(), "j.integration_id", 1)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(super::json_param(&integration_ids))
            .fetch_all(self.pool())
            .await?;
        // Oldest first: the newest failure, which says most, is kept.
        super::errors_by_integration(rows)
    }

    /// Queue a process job (of `max_attempts`) for each integration whose
    /// stored batches wait with nothing to process them: no job of it waits
    /// or runs (a fetch queues processing as it ends), and no processing job
    /// of it failed (the operator's to retry). A fetch's end queues its
    /// processing, but a fetch that never ended (its job rescued into the
    /// failed list, a sync here that lost its lease) or a host from before
    /// the process queue can leave batches behind. Returns the integrations.
    pub async fn queue_unprocessed_batches(&self, max_attempts: i64) -> Result<Vec<i64>> {
        let now = self.now();
        let _turn = self.write_turn().await;
        // Inserted in integration order: each job's foreign key holds its
        // integration, in the order a group's deletion takes them (see
        // `lock_order`).
        Ok(sqlx::query_scalar(
            "INSERT INTO jobs (queue, integration_id, args, max_attempts, run_at, created_at, updated_at)
             SELECT 'process', w.integration_id, $1, $2, $3, $3, $3
             FROM (SELECT DISTINCT integration_id FROM raw_batches WHERE status = 'pending') w
             WHERE NOT EXISTS (
                 SELECT 1 FROM jobs j WHERE j.integration_id = w.integration_id
                   AND (j.state IN ('available', 'running') OR (j.state = 'failed' AND j.queue <> 'fetch')))
             ORDER BY w.integration_id
             RETURNING integration_id",
        )
        .bind(serde_json::to_string(&JobArgs::new(Trigger::Retry))?)
        .bind(max_attempts)
        .bind(now)
        .fetch_all(self.pool())
        .await?)
    }

    /// Make the jobs that wait for plugin `plugin_id` (it was missing) due
    /// now that it is back. Returns how many.
    pub async fn release_jobs_waiting_for_plugin(&self, plugin_id: &str) -> Result<u64> {
        let now = self.now();
        Ok(sqlx::query(
            "UPDATE jobs SET run_at = $2, updated_at = $2
             WHERE state = 'available' AND error_class = 'plugin-missing' AND run_at > $2
               AND integration_id IN (SELECT id FROM integrations WHERE plugin_id = $1)",
        )
        .bind(plugin_id)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected())
    }
}

/// Which of its integrations' scheduled fetches waiting to run a change
/// withdraws. An operator's request ("Update now") is never withdrawn: it
/// was asked for, paused or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Withdrawal {
    /// Those queued ahead of their due time (by up to the scheduler's
    /// `QUEUE_AHEAD`) and not due yet: a new schedule or a fetch that ended
    /// (which set the next due time) decides again whether and when they run.
    QueuedAhead,
    /// Every one, due or not, and a retry waiting out its backoff: the
    /// integrations were paused, and nothing the scheduler queued for them
    /// runs until they are resumed.
    Paused,
}

impl Withdrawal {
    /// A change that leaves an integration paused (`true`) or active.
    pub(super) fn of_change(paused: bool) -> Withdrawal {
        if paused { Withdrawal::Paused } else { Withdrawal::QueuedAhead }
    }
}

/// Take `job` back from its holder, which is gone (`abandoned`): available
/// again, or failed when that was its last attempt. `false` when it is no
/// longer so abandoned (renewed, or rescued already).
pub(super) async fn rescue(conn: &mut Connection, job: &Job, abandoned: &Abandoned, now: i64) -> Result<bool> {
    let next = if job.attempt >= job.max_attempts { JobState::Failed } else { JobState::Available };
    let sql = format!(
        "UPDATE jobs SET state = $3, run_at = $4, updated_at = $4, error_class = 'lease-expired', error_message = $5,
             finished_at = CASE WHEN $3 = 'failed' THEN $4 ELSE NULL END, lease_owner = NULL, lease_expires_at = NULL
         WHERE id = $2 AND state = 'running' AND {}",
        abandoned.condition()
    );
    let updated = abandoned
        .bind(sqlx::query(sqlx::AssertSqlSafe(sql)), now)
        .bind(job.id)
        .bind(next.as_str())
        .bind(now)
        .bind(abandoned.reason())
        .execute(conn)
        .await?
        .rows_affected();
    Ok(updated == 1)
}

/// Withdraw the scheduled fetches of `integration_ids` that `which` names.
pub(super) async fn withdraw_scheduled(
    conn: &mut Connection,
    backend: Backend,
    integration_ids: &[i64],
    which: Withdrawal,
    now: i64,
) -> Result<u64> {
    if integration_ids.is_empty() {
        return Ok(0);
    }
    let ids = super::json_ids_match(backend, "j.integration_id", 1);
    let query = match which {
        // `run_at > now` is a range of `jobs_claimable` holding only runs not
        // due yet (queued ahead, or waiting out a backoff), whatever the
        // planner's statistics say.
        Withdrawal::QueuedAhead => {
            let sql =
                format!("DELETE FROM jobs AS j WHERE {ids} AND {WAITING_FETCH} AND {UNTOUCHED} AND j.run_at > $2");
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(super::json_param(&integration_ids)).bind(now)
        }
        // Through `jobs_waiting`, one integration at a time: left to choose,
        // SQLite walks `jobs_claimable` whole (see `withdraw_met`).
        Withdrawal::Paused => {
            let waiting = match backend {
                Backend::Postgres => "jobs AS j",
                Backend::Sqlite => "jobs AS j INDEXED BY jobs_waiting",
            };
            // The outer terms are what PostgreSQL checks again on a row a
            // claim changed since the lookup read it.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM jobs WHERE state = 'available' AND pending_run_id IS NULL
                     AND id IN (SELECT j.id FROM {waiting} WHERE {ids} AND {WAITING_FETCH} AND {SCHEDULED})"
            )))
            .bind(super::json_param(&integration_ids))
        }
    };
    Ok(query.execute(conn).await?.rows_affected())
}

/// Withdraw the scheduled fetches that a fetch met: each pair is an
/// integration and the next due time its fetch's end set, and a run the
/// scheduler queued for before that is withdrawn.
pub(super) async fn withdraw_met(conn: &mut Connection, backend: Backend, met: &[(i64, i64)]) -> Result<u64> {
    if met.is_empty() {
        return Ok(0);
    }
    let next_due = super::json_rows(backend, 1, &[("id", "bigint"), ("next_due_at", "bigint")]);
    let met_run = "j.integration_id = v.id AND j.run_at < v.next_due_at";
    // Looked up one integration at a time, in `jobs_waiting`. Left to
    // choose, both planners walked `jobs_claimable` whole for every batch of
    // ends (40,000 waiting jobs: 77 ms on PostgreSQL, 5 s on SQLite): a
    // young table's statistics make the queue look a few rows long. On
    // PostgreSQL, `OFFSET 0` keeps the lookup a subquery run per integration;
    // on SQLite, `CROSS JOIN` puts the integrations outside. The outer
    // UNTOUCHED is what PostgreSQL checks again on a row changed since the
    // lookup read it (a partial index's `state` term there would offer the
    // planner `jobs_claimable` again).
    let sql = match backend {
        Backend::Postgres => format!(
            "DELETE FROM jobs AS j WHERE {UNTOUCHED} AND j.id = ANY(ARRAY(
                 SELECT m.id FROM {next_due} AS v CROSS JOIN LATERAL (
                     SELECT j.id FROM jobs j WHERE {met_run} AND {WAITING_FETCH} AND {UNTOUCHED} OFFSET 0) AS m))"
        ),
        Backend::Sqlite => format!(
            "DELETE FROM jobs WHERE id IN (
                 SELECT j.id FROM {next_due} AS v CROSS JOIN jobs AS j INDEXED BY jobs_waiting
                 WHERE {met_run} AND {WAITING_FETCH} AND {UNTOUCHED})"
        ),
    };
    let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(super::json_param(&met));
    Ok(query.execute(conn).await?.rows_affected())
}

/// A waiting fetch (job `j`). Its `state` term is what lets SQLite use the
/// partial index `jobs_waiting` in [`withdraw_met`].
const WAITING_FETCH: &str = "j.queue = 'fetch' AND j.state = 'available'";

/// A job no operator asked for: an "Update now" gives the job it queues
/// (or joins) a pending run, and it keeps it through its attempts.
const SCHEDULED: &str = "j.pending_run_id IS NULL";

/// Of waiting fetches, one the scheduler queued that a new due time may
/// withdraw: never tried (nor waiting for its plugin: that refunds the
/// attempt but keeps the error), and no operator waits on it (an "Update
/// now" that joined it made it due now).
const UNTOUCHED: &str = "j.attempt = 0 AND j.error_class IS NULL AND j.pending_run_id IS NULL";

/// The job of `new.integration_id` waiting in `new.queue`, moved earlier if
/// `new` is due sooner (never later, and never ahead of an upstream's
/// `Retry-After`: asking sooner would only be refused again), or a new one.
pub(super) async fn waiting_or_new(conn: &mut Connection, backend: Backend, new: &NewJob, now: i64) -> Result<i64> {
    // On PostgreSQL the waiting job is locked until the caller commits: a
    // worker claiming it meanwhile would run it without what the caller adds
    // (a pending run), and the request would be lost in a job already running.
    // A claim in progress makes this wait, then see the job no longer waiting.
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE",
        Backend::Sqlite => "", // BEGIN IMMEDIATE already holds the write lock
    };
    let waiting = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, args FROM jobs WHERE queue = $1 AND integration_id = $2 AND state = 'available' ORDER BY id LIMIT 1 {lock}"
    )))
    .bind(new.queue.as_str())
    .bind(new.integration_id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = waiting {
        let id: i64 = row.try_get("id")?;
        let args: JobArgs = serde_json::from_str(row.try_get("args")?)?;
        let joined = args.joined(&new.args);
        if joined != args {
            // A backfill asked for now starts over: what an earlier attempt
            // checkpointed was another fetch's progress.
            let restart = joined.backfill_since != args.backfill_since;
            sqlx::query(
                "UPDATE jobs SET args = $2, checkpoints = CASE WHEN $3 THEN 0 ELSE checkpoints END WHERE id = $1",
            )
            .bind(id)
            .bind(serde_json::to_string(&joined)?)
            .bind(restart)
            .execute(&mut *conn)
            .await?;
        }
        sqlx::query(
            "UPDATE jobs SET run_at = $2, updated_at = $3
             WHERE id = $1 AND run_at > $2 AND (error_class IS NULL OR error_class <> 'rate-limited')",
        )
        .bind(id)
        .bind(new.run_at)
        .bind(now)
        .execute(conn)
        .await?;
        return Ok(id);
    }
    Ok(sqlx::query_scalar(
        "INSERT INTO jobs (queue, integration_id, args, max_attempts, run_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(new.queue.as_str())
    .bind(new.integration_id)
    .bind(serde_json::to_string(&new.args)?)
    .bind(new.max_attempts)
    .bind(new.run_at)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

/// The job `$1` is still held by the lease of owner `$2` from claim `$3`.
/// A job has a lease owner only while it runs: every statement here that
/// moves a job out of `running` clears `lease_owner`.
const HELD: &str = "id = $1 AND lease_owner = $2 AND claims = $3 AND state = 'running'";

/// Apply `action` to the job `lease` names, if the lease is still held.
/// Returns whether it was.
pub(super) async fn apply(conn: &mut Connection, lease: &JobLease, action: &JobAction, now: i64) -> Result<bool> {
    let query = match action {
        JobAction::Complete => sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM jobs WHERE {HELD}")))
            .bind(lease.job_id)
            .bind(&lease.owner)
            .bind(lease.claim),
        JobAction::Fail { class, message } => sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs SET state = 'failed', error_class = $5, error_message = $6, finished_at = $4,
                 updated_at = $4, lease_owner = NULL, lease_expires_at = NULL
             WHERE {HELD}"
        )))
        .bind(lease.job_id)
        .bind(&lease.owner)
        .bind(lease.claim)
        .bind(now)
        .bind(class)
        .bind(message),
        JobAction::Retry { run_at, refund_attempt, class, message } => sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs SET state = 'available', run_at = $5, error_class = $6, error_message = $7, updated_at = $4,
                 attempt = attempt - $8, lease_owner = NULL, lease_expires_at = NULL
             WHERE {HELD}"
        )))
        .bind(lease.job_id)
        .bind(&lease.owner)
        .bind(lease.claim)
        .bind(now)
        .bind(run_at)
        .bind(class)
        .bind(message)
        .bind(i64::from(*refund_attempt)),
    };
    Ok(query.execute(conn).await?.rows_affected() == 1)
}

/// Complete (delete) the jobs of `leases` that are still held, a statement
/// per lease owner (a worker's batch has one); returns their ids. The
/// condition on owner and claim is the fence: a lease that was lost
/// deletes nothing.
pub(super) async fn complete_held(conn: &mut Connection, leases: &[&JobLease]) -> Result<BTreeSet<i64>> {
    let mut by_owner: BTreeMap<&str, BTreeMap<String, i64>> = BTreeMap::new();
    for lease in leases {
        by_owner.entry(&lease.owner).or_default().insert(lease.job_id.to_string(), lease.claim);
    }
    // No `state = 'running'`: the owner implies it (see HELD), and naming
    // the state lets PostgreSQL scan the partial index `jobs_one_running`,
    // every running job, per batch.
    let (ids, claim_matches) = claims_match(Backend::of(conn));
    let sql = format!("DELETE FROM jobs WHERE {ids} AND lease_owner = $2 AND {claim_matches} RETURNING id");
    let mut completed = BTreeSet::new();
    for (owner, claims) in by_owner {
        let deleted: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(super::json_param(&claims))
            .bind(owner)
            .fetch_all(&mut *conn)
            .await?;
        completed.extend(deleted);
    }
    Ok(completed)
}

/// SQL: the job is one of `$1`, a JSON object of claims keyed by job id
/// (its ids, and their claims). Looked up per row (PostgreSQL reads the
/// object once: the scalar subquery); joining rows of (id, owner, claim)
/// took 40% longer.
fn claims_match(backend: Backend) -> (&'static str, &'static str) {
    match backend {
        Backend::Postgres => (
            "id = ANY(ARRAY(SELECT key::bigint FROM jsonb_object_keys($1::jsonb) AS key))",
            "claims = ((SELECT $1::jsonb) ->> id::text)::bigint",
        ),
        // A lookup per row would parse the JSON again; SQLite reads an
        // uncorrelated subquery into a table once.
        Backend::Sqlite => (
            "id IN (SELECT CAST(key AS INTEGER) FROM json_each($1))",
            "(id, claims) IN (SELECT CAST(key AS INTEGER), value FROM json_each($1))",
        ),
    }
}

/// Fail unless `lease` (if any) is still held; on PostgreSQL the job stays
/// locked until the caller commits, so a rescue waits for what it writes.
/// A processing pass's writes go through this: a worker that stalled past
/// its lease must not apply an older batch over what the rescued job's new
/// holder stored since.
pub(super) async fn ensure_held(conn: &mut Connection, lease: Option<&JobLease>) -> Result<()> {
    let Some(lease) = lease else { return Ok(()) };
    // The integration before the job (see `lock_order`).
    super::lock_order::hold_integration_of_job(conn, lease.job_id).await?;
    let backend = Backend::of(conn);
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE",
        Backend::Sqlite => "", // BEGIN IMMEDIATE already holds the write lock
    };
    let found: Option<i64> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT id FROM jobs WHERE {HELD} {lock}")))
            .bind(lease.job_id)
            .bind(&lease.owner)
            .bind(lease.claim)
            .fetch_optional(conn)
            .await?;
    anyhow::ensure!(found.is_some(), "{LEASE_LOST}");
    Ok(())
}

/// Why a write of a run whose lease was lost was refused.
pub(super) const LEASE_LOST: &str =
    "the run lost its job's lease (the job was rescued after its lease expired); nothing was stored";

/// Count a checkpoint of `lease`'s job, if the lease is still held; the job
/// stays locked until the caller commits, so a rescue waits for what the
/// caller writes. Returns whether it was held.
pub(super) async fn count_checkpoint(conn: &mut Connection, lease: &JobLease) -> Result<bool> {
    let sql = format!("UPDATE jobs SET checkpoints = checkpoints + 1 WHERE {HELD} RETURNING id");
    let found: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(lease.job_id)
        .bind(&lease.owner)
        .bind(lease.claim)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}
