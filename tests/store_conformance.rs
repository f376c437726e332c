//! One conformance suite for every storage backend: each check runs against
//! SQLite and against the real PostgreSQL server, with an injected clock.

use inlet::clock::ManualClock;
use inlet::domain::error_class::ErrorClass;
use inlet::domain::pause_reason::PauseReason;
use inlet::domain::queue::Queue;
use inlet::domain::records::{EventRecord, Records};
use inlet::domain::trigger::Trigger;
use inlet::schedule::Schedule;
use inlet::secrets::SecretKey;
use inlet::store::Store;
use inlet::store::groups::Credentials;
use inlet::store::integrations::{Integration, IntegrationFilter, NewIntegration, NextDue, PauseEdit, RunEnd};
use inlet::store::jobs::{Abandoned, Job, JobArgs, JobLease, NewJob, TriggerOutcome};
use inlet::store::raw_batches::BatchSelection;
use inlet::store::records::{RecordCounts, RecordFilter};
use inlet::store::sync_runs::{RunOutcome, RunStatus};
use std::collections::BTreeSet;
use std::sync::Arc;

mod support;

const START: i64 = 1_800_000_000_000;

struct Backend {
    store: Store,
    clock: Arc<ManualClock>,
    _sqlite_dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let url = format!("sqlite://{}", dir.path().join("conformance.db").display());
    let store = Store::open(&url, clock.clone(), Arc::new(SecretKey::generate())).await.unwrap();
    Backend { store, clock, _sqlite_dir: Some(dir) }
}

async fn postgres() -> Backend {
    let clock = Arc::new(ManualClock::new(START));
    let url = support::fresh_postgres_database().await;
    let store = Store::open(&url, clock.clone(), Arc::new(SecretKey::generate())).await.unwrap();
    Backend { store, clock, _sqlite_dir: None }
}

/// Run one async check against both backends.
macro_rules! conformance {
    ($name:ident, $check:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$check(super::sqlite().await).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                super::$check(super::postgres().await).await;
            }
        }
    };
}

async fn integration(store: &Store, name: &str, first_due_at: Option<i64>) -> i64 {
    let group = match store.groups().await.unwrap().first() {
        Some(group) => group.id,
        None => store.insert_group("test", "group", &Credentials::default()).await.unwrap(),
    };
    store
        .insert_integration(&NewIntegration {
            plugin_id: "test",
            instance_type: "things",
            group_id: group,
            name,
            config: "{}",
            schedule: Some(&Schedule::Interval { seconds: 900 }),
            first_due_at,
            paused_reason: None,
        })
        .await
        .unwrap()
}

fn fetch_job(integration_id: i64, run_at: i64) -> NewJob {
    NewJob { queue: Queue::Fetch, integration_id, args: JobArgs::new(Trigger::Manual), max_attempts: 3, run_at }
}

/// `owner`'s lease on job `job_id`, from the job's `claim`th claim.
fn lease(job_id: i64, owner: &str, claim: i64) -> JobLease {
    JobLease { job_id, owner: owner.into(), claim }
}

conformance!(claiming, claiming_respects_due_time_and_one_run_per_integration);
async fn claiming_respects_due_time_and_one_run_per_integration(b: Backend) {
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let later = integration(s, "later", None).await;
    let first = s.enqueue_job(&fetch_job(a, START)).await.unwrap();
    s.enqueue_job(&fetch_job(later, START + 10_000)).await.unwrap();
    assert_eq!(s.enqueue_job(&fetch_job(a, START)).await.unwrap(), first, "a second trigger coalesces");

    let claimed = s.claim_jobs(Queue::Fetch, "w1", 30_000, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), [first], "only due jobs");
    assert_eq!(claimed[0].attempt, 1);
    assert!(s.claim_jobs(Queue::Process, "w1", 30_000, 10).await.unwrap().is_empty(), "queues are separate");

    // Triggered again while running: it waits, and is not claimable until the run ends.
    let second = s.enqueue_job(&fetch_job(a, START)).await.unwrap();
    assert_ne!(second, first);
    assert!(s.claim_jobs(Queue::Fetch, "w2", 30_000, 10).await.unwrap().is_empty());
    assert!(!s.complete_job(&lease(first, "w2", 1)).await.unwrap(), "only the lease holder completes");
    assert!(s.complete_job(&lease(first, "w1", 1)).await.unwrap());
    let claimed = s.claim_jobs(Queue::Fetch, "w2", 30_000, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), [second]);

    b.clock.advance(10_000);
    let claimed = s.claim_jobs(Queue::Fetch, "w2", 30_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "the later job is due now");
    assert!(s.job(first).await.unwrap().is_none(), "a completed job is deleted");
}

conformance!(duplicates, two_waiting_jobs_of_one_integration_are_claimed_one_at_a_time);
async fn two_waiting_jobs_of_one_integration_are_claimed_one_at_a_time(b: Backend) {
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let other = integration(s, "other", None).await;
    // A failed job retried while another one waits: two waiting jobs.
    let failed = s.enqueue_job(&fetch_job(a, START)).await.unwrap();
    s.claim_jobs(Queue::Fetch, "w", 30_000, 1).await.unwrap();
    s.fail_job(&lease(failed, "w", 1), "transient", "boom").await.unwrap();
    let waiting = s.enqueue_job(&fetch_job(a, START)).await.unwrap();
    s.retry_failed_jobs(Some(failed)).await.unwrap();
    s.enqueue_job(&fetch_job(other, START)).await.unwrap();

    let claimed = s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap();
    let mut integrations: Vec<_> = claimed.iter().map(|j| j.integration_id.unwrap()).collect();
    integrations.sort();
    assert_eq!(integrations, [a, other], "one job per integration, and the claim is not refused");
    let first = claimed.iter().find(|j| j.integration_id == Some(a)).unwrap().id;
    assert_eq!(first, failed, "the older job first");
    assert!(s.complete_job(&lease(first, "w", 2)).await.unwrap());
    let next = s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap();
    assert_eq!(next.iter().map(|j| j.id).collect::<Vec<_>>(), [waiting]);
}

conformance!(concurrent_claims, concurrent_claimers_take_each_job_once);
async fn concurrent_claimers_take_each_job_once(b: Backend) {
    let s = &b.store;
    let mut ids = BTreeSet::new();
    for n in 0..120 {
        let integration = integration(s, &format!("i{n}"), None).await;
        ids.insert(s.enqueue_job(&fetch_job(integration, START)).await.unwrap());
    }
    let mut claimers = tokio::task::JoinSet::new();
    for worker in 0..6 {
        let store = s.clone();
        claimers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store.claim_jobs(Queue::Fetch, &format!("w{worker}"), 30_000, 7).await.unwrap();
                if batch.is_empty() && store.next_job_due_at(Queue::Fetch).await.unwrap().is_none() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|j| j.id));
            }
        });
    }
    let mut claimed = Vec::new();
    while let Some(mine) = claimers.join_next().await {
        claimed.extend(mine.unwrap());
    }
    assert_eq!(claimed.len(), ids.len(), "no job claimed twice");
    assert_eq!(claimed.into_iter().collect::<BTreeSet<_>>(), ids, "every job claimed");
}

conformance!(leases, expired_leases_are_rescued_until_attempts_run_out);
async fn expired_leases_are_rescued_until_attempts_run_out(b: Backend) {
    use inlet::store::run_batches::RunStart;
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let id = s.enqueue_job(&fetch_job(a, START)).await.unwrap();
    for attempt in 1..=3 {
        let claimed = s.claim_jobs(Queue::Fetch, "dead-worker", 1_000, 1).await.unwrap();
        assert_eq!(claimed[0].attempt, attempt);
        let start = RunStart {
            integration_id: a,
            queue: Queue::Fetch,
            trigger: Trigger::Manual,
            attempt,
            job_id: Some(id),
            pending_run_id: None,
            due_at_start: None,
        };
        let run = s.start_runs(&[start]).await.unwrap().0[0];
        b.clock.advance(500);
        let renewed = s.renew_leases("dead-worker", &[(id, claimed[0].claims)], 1_000).await.unwrap();
        assert_eq!(renewed, [id], "a live worker renews");
        assert!(rescue(s, &Abandoned::LeaseExpired).await.is_empty(), "a renewed lease is not expired");
        b.clock.advance(1_001);
        let rescued = rescue(s, &Abandoned::LeaseExpired).await;
        assert_eq!(rescued.iter().map(|j| (j.id, j.sync_run_id)).collect::<Vec<_>>(), [(id, Some(run))]);
    }
    let job = s.job(id).await.unwrap().unwrap();
    assert_eq!(job.state.as_str(), "failed", "the third expiry used the last attempt");
    assert_eq!(job.error_class.map(|c| c.as_str()), Some("lease-expired"));
    // With it, the fetch's run ended for its integration: one failure, and
    // due again as the rescue's end said (an hour after that attempt started).
    let ended = s.integration(a).await.unwrap().unwrap();
    let started = s.sync_runs(a, 1).await.unwrap()[0].started_at.unwrap();
    assert_eq!((ended.consecutive_failures, ended.next_due_at), (1, Some(started + 3_600_000)));
    assert!(
        s.renew_leases("dead-worker", &[(id, 3)], 1_000).await.unwrap().is_empty(),
        "a lost lease cannot be renewed"
    );
}

conformance!(ended_holders, jobs_of_an_ended_holder_are_rescued_before_their_lease_expires);
async fn jobs_of_an_ended_holder_are_rescued_before_their_lease_expires(b: Backend) {
    let s = &b.store;
    let (a, c) = (integration(s, "a", None).await, integration(s, "c", None).await);
    let ended = s.enqueue_job(&fetch_job(a, START)).await.unwrap();
    let alive = s.enqueue_job(&fetch_job(c, START)).await.unwrap();
    s.claim_jobs(Queue::Fetch, "ended", 600_000, 1).await.unwrap();
    s.claim_jobs(Queue::Fetch, "alive", 600_000, 1).await.unwrap();
    let mut owners = s.running_job_owners().await.unwrap();
    owners.sort();
    assert_eq!(owners, ["alive", "ended"]);

    let rescued = rescue(s, &Abandoned::HolderEnded("ended".into())).await;
    assert_eq!(rescued.iter().map(|j| j.id).collect::<Vec<_>>(), [ended], "only the ended holder's job");
    let job = s.job(ended).await.unwrap().unwrap();
    assert_eq!((job.state.as_str(), job.attempt), ("available", 1), "available again at once, its attempt counted");
    assert_eq!(job.error_message.as_deref(), Some(Abandoned::HolderEnded(String::new()).reason()));
    assert_eq!(s.job(alive).await.unwrap().unwrap().state.as_str(), "running");
    assert!(rescue(s, &Abandoned::LeaseExpired).await.is_empty(), "no lease has expired");
    assert_eq!(s.claim_jobs(Queue::Fetch, "next", 600_000, 5).await.unwrap()[0].id, ended);
}

conformance!(fencing, a_worker_that_lost_its_lease_can_finish_nothing);
async fn a_worker_that_lost_its_lease_can_finish_nothing(b: Backend) {
    use inlet::store::jobs::JobAction;
    use inlet::store::run_batches::{Recorded, RunCompletion, RunStart};
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let id = s.enqueue_job(&fetch_job(a, START)).await.unwrap();
    let start = |attempt| RunStart {
        integration_id: a,
        queue: Queue::Fetch,
        trigger: Trigger::Schedule,
        attempt,
        job_id: Some(id),
        pending_run_id: None,
        due_at_start: None,
    };

    // The stale worker claims and starts a run, then stalls past its lease.
    s.claim_jobs(Queue::Fetch, "stale", 1_000, 1).await.unwrap();
    let stale_run = s.start_runs(&[start(1)]).await.unwrap().0[0];
    b.clock.advance(1_001);
    assert_eq!(rescue(s, &Abandoned::LeaseExpired).await.len(), 1);
    s.abandon_sync_run(stale_run, RunStatus::Failed, ErrorClass::LeaseExpired, "lease expired").await.unwrap();
    assert!(s.renew_leases("stale", &[(id, 1)], 1_000).await.unwrap().is_empty(), "its renewal touches nothing");
    let fresh = s.claim_jobs(Queue::Fetch, "fresh", 30_000, 1).await.unwrap();
    assert_eq!(fresh[0].id, id, "another worker runs it now");
    let fresh_run = s.start_runs(&[start(2)]).await.unwrap().0[0];

    // Its checkpoint, completion and job actions change nothing.
    let stale_lease = lease(id, "stale", 1);
    checkpoint_refused(s, a, stale_run, &stale_lease, &[("cursor".into(), Some("stale".into()))]).await;
    assert!(s.batches(a, BatchSelection::Pending, 0, 10).await.unwrap().is_empty(), "no batch stored");
    assert_eq!(s.state_value(a, "cursor").await.unwrap(), None, "no cursor moved");
    let outcome = RunOutcome {
        status: RunStatus::Success,
        batches: 0,
        items_seen: 0,
        records: RecordCounts::default(),
        error: None,
        progress: None,
    };
    let then_process = || {
        Some(NewJob {
            queue: Queue::Process,
            integration_id: a,
            args: JobArgs::new(Trigger::Schedule),
            max_attempts: 3,
            run_at: s.now(),
        })
    };
    let late = RunCompletion {
        run_id: stale_run,
        outcome: outcome.clone(),
        logs: Default::default(),
        job: Some((stale_lease.clone(), JobAction::Complete)),
        integration_id: a,
        end: None,
        then_process: then_process(),
    };
    assert_eq!(s.complete_runs(&[late]).await.unwrap(), [Recorded::LeaseLost]);
    let queues = |jobs: Vec<inlet::store::jobs::Job>| jobs.into_iter().map(|j| j.queue).collect::<Vec<_>>();
    assert_eq!(queues(s.integration_jobs(a).await.unwrap()), [Queue::Fetch], "it queued no processing either");
    assert!(!s.fail_job(&stale_lease, "permanent", "late").await.unwrap());
    let job = s.job(id).await.unwrap().unwrap();
    assert_eq!((job.state.as_str(), job.attempt), ("running", 2), "the fresh worker's run goes on");
    assert_eq!(s.sync_run(stale_run).await.unwrap().unwrap().status, RunStatus::Failed, "the stale run stays closed");
    let running: Vec<_> = s
        .sync_runs(a, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.status == RunStatus::Running)
        .map(|r| r.id)
        .collect();
    assert_eq!(running, [fresh_run], "one run of the integration at a time");

    // A lease is its claim's: the same owner's earlier claim writes nothing now.
    let earlier_claim = lease(id, "fresh", 1);
    assert!(!s.complete_job(&earlier_claim).await.unwrap(), "an earlier claim's lease");
    checkpoint_refused(s, a, fresh_run, &earlier_claim, &[]).await;
    let earlier = RunCompletion {
        run_id: fresh_run,
        outcome: outcome.clone(),
        logs: Default::default(),
        job: Some((earlier_claim, JobAction::Complete)),
        integration_id: a,
        end: None,
        then_process: None,
    };
    assert_eq!(s.complete_runs(&[earlier]).await.unwrap(), [Recorded::LeaseLost]);
    assert!(s.job(id).await.unwrap().is_some(), "the job of the later attempt stays");

    // The holder of the lease finishes normally.
    let done = || RunCompletion {
        run_id: fresh_run,
        outcome: outcome.clone(),
        logs: Default::default(),
        job: Some((lease(id, "fresh", 2), JobAction::Complete)),
        integration_id: a,
        end: None,
        then_process: then_process(),
    };
    assert_eq!(s.complete_runs(&[done()]).await.unwrap(), [Recorded::Finished { paused: None }]);
    assert!(s.job(id).await.unwrap().is_none());
    assert_eq!(queues(s.integration_jobs(a).await.unwrap()), [Queue::Process], "its batches wait for processing");
    // Its connection failed as it committed, so it writes the same again:
    // it learns its run is recorded, and nothing is written twice.
    assert_eq!(s.complete_runs(&[done()]).await.unwrap(), [Recorded::Earlier]);
    assert_eq!(queues(s.integration_jobs(a).await.unwrap()), [Queue::Process], "one processing job");
    // The stale worker's, which the rescue closed, is still refused.
    let late_again = RunCompletion { job: Some((stale_lease, JobAction::Complete)), ..done() };
    assert_eq!(
        s.complete_runs(&[RunCompletion { run_id: stale_run, ..late_again }]).await.unwrap(),
        [Recorded::LeaseLost]
    );
}

conformance!(claim_fencing, a_lease_ends_with_its_claim_even_when_the_next_claim_has_the_same_owner_and_attempt);
async fn a_lease_ends_with_its_claim_even_when_the_next_claim_has_the_same_owner_and_attempt(b: Backend) {
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let id = s.enqueue_job(&fetch_job(a, START)).await.unwrap();
    let claim = || async { JobLease::of(&s.claim_jobs(Queue::Fetch, "w", 30_000, 1).await.unwrap()[0], "w") };

    // A wait refunds its attempt; the same process claims the job again
    // while it still writes the wait (its acknowledgement was lost).
    let waited = claim().await;
    assert!(s.retry_job_at(&waited, START, true, "plugin-missing", "not loaded").await.unwrap());
    let next = claim().await;
    assert_eq!(s.job(id).await.unwrap().unwrap().attempt, 1, "the refunded attempt is the attempt again");
    let renewed = |lease: &JobLease| {
        let claim = lease.claim;
        async move { s.renew_leases("w", &[(id, claim)], 30_000).await }
    };
    assert!(renewed(&waited).await.unwrap().is_empty(), "the earlier claim's lease is not renewed");
    assert_eq!(renewed(&next).await.unwrap(), [id]);
    assert!(!s.retry_job_at(&waited, START, true, "plugin-missing", "not loaded").await.unwrap(), "written again");
    assert!(!s.complete_job(&waited).await.unwrap());
    assert_eq!(s.job(id).await.unwrap().unwrap().state.as_str(), "running", "the next claim's run goes on");

    // Failed for good, retried by an operator with fresh attempts, and
    // claimed again by the same process: the failure's write is refused too.
    assert!(s.fail_job(&next, "permanent", "bad request").await.unwrap());
    assert_eq!(s.retry_failed_jobs(Some(id)).await.unwrap(), 1);
    let retried = claim().await;
    assert!(!s.fail_job(&next, "permanent", "bad request").await.unwrap(), "written again");
    assert!(s.complete_job(&retried).await.unwrap(), "the holder of the last claim finishes");
}

/// A checkpoint of one batch (and `state`) under `lease`, which was lost: refused.
async fn checkpoint_refused(
    s: &Store,
    integration_id: i64,
    sync_run_id: i64,
    lease: &JobLease,
    state: &[(String, Option<String>)],
) {
    use inlet::store::raw_batches::Checkpoint;
    let error = s
        .commit_checkpoint(&Checkpoint {
            integration_id,
            sync_run_id,
            lease: Some(lease),
            batches: &[("thing".into(), "{}".into())],
            state,
            max_state_keys: 10,
        })
        .await
        .unwrap_err();
    assert!(format!("{error:#}").contains("lost its job's lease"), "{error:#}");
}

conformance!(cli_runs, a_run_in_the_cli_takes_its_integration_like_a_worker);
async fn a_run_in_the_cli_takes_its_integration_like_a_worker(b: Backend) {
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let args = JobArgs::new(Trigger::Manual);
    let cli = s.claim_integration(a, Queue::Fetch, &args, "cli", 30_000).await.unwrap().unwrap();
    let refused = s.claim_integration(a, Queue::Fetch, &args, "cli-2", 30_000).await.unwrap().unwrap_err();
    assert_eq!((refused.job_id, refused.owner.as_deref()), (cli.job_id, Some("cli")));
    s.enqueue_job(&fetch_job(a, START)).await.unwrap();
    assert!(s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap().is_empty(), "a worker waits for it");
    assert!(s.complete_job(&cli).await.unwrap());
    assert_eq!(s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap().len(), 1);
    let refused = s.claim_integration(a, Queue::Fetch, &args, "cli", 30_000).await.unwrap().unwrap_err();
    assert_eq!(refused.owner.as_deref(), Some("w"), "and it waits for a worker's run");
}

conformance!(unprocessed_batches, batches_that_nothing_is_to_process_are_queued_for_processing_once);
async fn batches_that_nothing_is_to_process_are_queued_for_processing_once(b: Backend) {
    use inlet::store::raw_batches::Checkpoint;
    let s = &b.store;
    let store_batch = |integration_id: i64| async move {
        let sync_run_id = s.start_sync_run(integration_id, Trigger::Manual, 1).await.unwrap();
        let batches = [("thing".to_string(), "{}".to_string())];
        let checkpoint =
            Checkpoint { integration_id, sync_run_id, lease: None, batches: &batches, state: &[], max_state_keys: 10 };
        s.commit_checkpoint(&checkpoint).await.unwrap();
    };
    let left = integration(s, "left", None).await;
    let fetching = integration(s, "fetching", None).await;
    let failed = integration(s, "failed", None).await;
    integration(s, "nothing stored", None).await;
    for id in [left, fetching, failed] {
        store_batch(id).await;
    }
    // A fetch waits: its end queues the processing.
    s.enqueue_job(&fetch_job(fetching, START)).await.unwrap();
    // Its processing failed for good: the operator's to retry.
    s.enqueue_job(&NewJob { queue: Queue::Process, ..fetch_job(failed, START) }).await.unwrap();
    let claimed = s.claim_jobs(Queue::Process, "w", 30_000, 10).await.unwrap();
    assert!(s.fail_job(&lease(claimed[0].id, "w", 1), "permanent", "no").await.unwrap());

    assert_eq!(s.queue_unprocessed_batches(3).await.unwrap(), [left]);
    assert!(s.queue_unprocessed_batches(3).await.unwrap().is_empty(), "once: its job waits now");
    let queued = &s.integration_jobs(left).await.unwrap()[0];
    assert_eq!((queued.queue, queued.max_attempts, queued.args.trigger), (Queue::Process, 3, Trigger::Retry));
}

conformance!(processing_failures, processing_that_failed_for_good_shows_until_processing_succeeds);
async fn processing_that_failed_for_good_shows_until_processing_succeeds(b: Backend) {
    use inlet::store::run_batches::RunStart;
    let s = &b.store;
    let (a, other) = (integration(s, "a", None).await, integration(s, "other", None).await);
    let process = |id: i64| NewJob { queue: Queue::Process, ..fetch_job(id, START) };
    let run_process = |id: i64, job_id: i64, status: RunStatus| async move {
        let start = RunStart {
            integration_id: id,
            queue: Queue::Process,
            trigger: Trigger::Manual,
            attempt: 1,
            job_id: Some(job_id),
            pending_run_id: None,
            due_at_start: None,
        };
        let run = s.start_runs(&[start]).await.unwrap().0[0];
        let outcome = RunOutcome {
            status,
            batches: 1,
            items_seen: 0,
            records: RecordCounts::default(),
            error: None,
            progress: None,
        };
        s.finish_sync_run(run, &outcome).await.unwrap();
    };
    // A fetch that failed for good is the failure streak's, not this.
    let fetch = s.enqueue_job(&fetch_job(other, START)).await.unwrap();
    s.claim_jobs(Queue::Fetch, "w", 30_000, 1).await.unwrap();
    assert!(s.fail_job(&lease(fetch, "w", 1), "permanent", "fetch broke").await.unwrap());
    let failing = s.enqueue_job(&process(a)).await.unwrap();
    s.claim_jobs(Queue::Process, "w", 30_000, 1).await.unwrap();
    run_process(a, failing, RunStatus::Failed).await;
    assert!(s.fail_job(&lease(failing, "w", 1), "permanent", "bad batch\nmore").await.unwrap());
    let failures = s.processing_failures(&[a, other]).await.unwrap();
    assert_eq!(failures.into_iter().collect::<Vec<_>>(), [(a, "bad batch\nmore".to_string())]);
    let candidates = IntegrationFilter { failing: true, ..IntegrationFilter::default() };
    let listed = s.integrations_page(&candidates, None, 10).await.unwrap();
    assert_eq!(listed.iter().map(|i| i.id).collect::<Vec<_>>(), [a], "a failing filter finds it");

    // A later processing run (the next fetch's) that succeeds clears it; the
    // failed job stays listed for the operator.
    b.clock.advance(1);
    let next = s.enqueue_job(&process(a)).await.unwrap();
    s.claim_jobs(Queue::Process, "w", 30_000, 1).await.unwrap();
    run_process(a, next, RunStatus::Success).await;
    assert!(s.processing_failures(&[a, other]).await.unwrap().is_empty());
    assert_eq!(s.job(failing).await.unwrap().unwrap().state.as_str(), "failed");
    // Pruned by age, the success that cleared it is kept: it says so still.
    b.clock.advance(1_000);
    s.prune_sync_runs(s.now(), 100).await.unwrap();
    assert!(s.processing_failures(&[a, other]).await.unwrap().is_empty(), "the failure came back after pruning");
}

conformance!(console_counts, the_console_counts_failed_jobs_and_groups_to_reconnect);
async fn the_console_counts_failed_jobs_and_groups_to_reconnect(b: Backend) {
    use inlet::domain::manifest::HOST_PLUGIN_ID;
    let s = &b.store;
    assert_eq!(s.failed_job_count().await.unwrap(), (0, None));
    assert_eq!(s.group_count().await.unwrap(), (0, 0));
    let a = integration(s, "a", None).await;
    let broken = s.insert_group("test", "broken", &Credentials::default()).await.unwrap();
    s.insert_group(HOST_PLUGIN_ID, "inlet", &Credentials::default()).await.unwrap();
    s.mark_group_needs_reconnect(broken, 1, "refresh token revoked").await.unwrap().expect("marked");
    assert_eq!(s.group_count().await.unwrap(), (2, 1), "the host's own group is not a connection");
    for at in [START, START + 5] {
        b.clock.set(at);
        let job = s.enqueue_job(&fetch_job(a, at)).await.unwrap();
        s.claim_jobs(Queue::Fetch, "w", 30_000, 1).await.unwrap();
        assert!(s.fail_job(&lease(job, "w", 1), "permanent", "no").await.unwrap());
    }
    assert_eq!(s.failed_job_count().await.unwrap(), (2, Some(START + 5)));
}

conformance!(lanes, an_integration_fetches_while_it_processes_but_runs_one_job_of_each_lane);
async fn an_integration_fetches_while_it_processes_but_runs_one_job_of_each_lane(b: Backend) {
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let job = |queue| NewJob { queue, ..fetch_job(a, START) };
    let args = JobArgs::new(Trigger::Manual);
    let fetching = s.claim_integration(a, Queue::Fetch, &args, "cli", 30_000).await.unwrap().unwrap();
    s.enqueue_job(&job(Queue::Process)).await.unwrap();
    let processing = s.claim_jobs(Queue::Process, "w", 30_000, 10).await.unwrap();
    assert_eq!(processing.len(), 1, "a fetch running does not hold back its processing");
    // A delivery's processing is of the same lane as the process queue's.
    s.enqueue_job(&job(Queue::Webhook)).await.unwrap();
    assert!(s.claim_jobs(Queue::Webhook, "w", 30_000, 10).await.unwrap().is_empty(), "one processing job at a time");
    let refused = s.claim_integration(a, Queue::Process, &args, "cli", 30_000).await.unwrap().unwrap_err();
    assert_eq!((refused.job_id, refused.owner.as_deref()), (processing[0].id, Some("w")));
    s.enqueue_job(&job(Queue::Process)).await.unwrap();
    assert_eq!(s.claim_waiting_job(a, Queue::Process, "cli", 30_000).await.unwrap().map(|j| j.id), None, "lane busy");
    assert!(s.complete_job(&lease(processing[0].id, "w", 1)).await.unwrap());
    let waiting = s.claim_waiting_job(a, Queue::Process, "cli", 30_000).await.unwrap().expect("the lane is free");
    assert_eq!((waiting.queue, waiting.attempt, waiting.run_at), (Queue::Process, 1, START), "due or not");
    assert!(s.claim_jobs(Queue::Webhook, "w", 30_000, 10).await.unwrap().is_empty(), "the delivery's waits");
    assert!(s.complete_job(&fetching).await.unwrap());
    assert!(s.complete_job(&lease(waiting.id, "cli", 1)).await.unwrap());
    assert_eq!(s.claim_jobs(Queue::Webhook, "w", 30_000, 10).await.unwrap().len(), 1);
}

conformance!(batch_failures, batches_that_fail_stay_pending_or_are_kept_for_retry);
async fn batches_that_fail_stay_pending_or_are_kept_for_retry(b: Backend) {
    use inlet::store::raw_batches::{BatchFate, Checkpoint};
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let batches = [("thing".to_string(), "{\"id\":1}".to_string()), ("thing".into(), "{\"id\":2}".into())];
    s.commit_checkpoint(&Checkpoint {
        integration_id: a,
        sync_run_id: s.start_sync_run(a, Trigger::Manual, 1).await.unwrap(),
        lease: None,
        batches: &batches,
        state: &[],
        max_state_keys: 10,
    })
    .await
    .unwrap();
    let pending = s.batches(a, BatchSelection::Pending, 0, 10).await.unwrap();
    let (first, second) = (pending[0].id, pending[1].id);
    assert_eq!(s.batches(a, BatchSelection::Pending, first, 10).await.unwrap().len(), 1, "paged after an id");
    assert_eq!(s.defer_batch(first, "transient: busy", 2, None).await.unwrap(), BatchFate::Pending { attempts: 1 });
    assert_eq!(s.batches(a, BatchSelection::Pending, 0, 10).await.unwrap().len(), 2, "a deferred batch stays pending");
    assert_eq!(s.defer_batch(first, "transient: busy", 2, None).await.unwrap(), BatchFate::Failed, "out of attempts");
    s.mark_batch_failed(second, "permanent: bad JSON", None).await.unwrap();
    let failed = s.failed_batches(10).await.unwrap();
    assert_eq!(failed.iter().map(|f| (f.id, f.attempts)).collect::<Vec<_>>(), [(second, 1), (first, 2)]);
    assert_eq!((failed[0].error.as_str(), failed[0].bytes), ("permanent: bad JSON", 8));
    assert_eq!(s.retry_failed_batches(Some(second)).await.unwrap(), [a]);
    assert_eq!(s.batches(a, BatchSelection::Pending, 0, 10).await.unwrap().len(), 1);
    assert_eq!(s.retry_failed_batches(None).await.unwrap(), [a]);
    assert_eq!(s.batches(a, BatchSelection::Pending, 0, 10).await.unwrap().len(), 2);
    assert!(s.failed_batches(10).await.unwrap().is_empty());

    // Once processed, a batch's payload goes with the history.
    let nothing = inlet::domain::records::Records { objects: vec![], events: vec![], blocks: vec![], deleted: vec![] };
    s.store_records(a, first, &nothing, None).await.unwrap();
    assert_eq!(s.prune_processed_batches(START).await.unwrap(), 0, "processed now, not before");
    b.clock.advance(1);
    assert_eq!(s.prune_processed_batches(START + 1).await.unwrap(), 1);
    assert_eq!(
        s.batches(a, BatchSelection::Pending, 0, 10).await.unwrap().iter().map(|p| p.id).collect::<Vec<_>>(),
        [second]
    );
}

conformance!(late_batches, a_batch_retried_late_writes_only_what_no_newer_batch_holds);
async fn a_batch_retried_late_writes_only_what_no_newer_batch_holds(b: Backend) {
    use inlet::domain::records::{BlockRecord, ObjectRecord, RecordClass, Tombstone};
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let raw: Vec<(String, String)> = (0..3).map(|n| ("thing".to_string(), format!("{{\"n\":{n}}}"))).collect();
    s.commit_checkpoint(&inlet::store::raw_batches::Checkpoint {
        integration_id: a,
        sync_run_id: s.start_sync_run(a, Trigger::Manual, 1).await.unwrap(),
        lease: None,
        batches: &raw,
        state: &[],
        max_state_keys: 10,
    })
    .await
    .unwrap();
    let ids: Vec<i64> = s.batches(a, BatchSelection::Pending, 0, 10).await.unwrap().iter().map(|b| b.id).collect();
    let (base, late, newer) = (ids[0], ids[1], ids[2]);
    let object = |id: &str, version: &str| ObjectRecord {
        external_id: id.into(),
        kind: "thing".into(),
        name: None,
        data: format!("{{\"v\":\"{version}\"}}"),
    };
    let block = |version: &str| BlockRecord {
        external_id: "b".into(),
        kind: "line".into(),
        event_id: "e".into(),
        data: format!("{{\"v\":\"{version}\"}}"),
    };
    let tombstone = |id: &str| Tombstone { class: RecordClass::Object, kind: "thing".into(), external_id: id.into() };
    let records = |objects, events: Vec<EventRecord>, blocks, deleted| Records { objects, events, blocks, deleted };
    let event_at = |at: i64| EventRecord { external_id: "e".into(), kind: "even".into(), ..event(2, at) };

    let gone_event = EventRecord { external_id: "gone".into(), kind: "even".into(), ..event(2, 40) };
    let gone_event_tombstone = Tombstone { class: RecordClass::Event, kind: "even".into(), external_id: "gone".into() };

    // The first batch stores every record ("gone" is deleted at once); the
    // second fails (a plugin bug, say); the third is processed after it, by
    // a later run: it deletes "gone" again, the event "gone", and "never",
    // which only the failed batch holds.
    let first = ["changed", "confirmed", "deleted", "untouched", "gone"].map(|id| object(id, "0"));
    let first =
        records(first.to_vec(), vec![event_at(10), gone_event.clone()], vec![block("0")], vec![tombstone("gone")]);
    s.store_records(a, base, &first, None).await.unwrap();
    s.mark_batch_failed(late, "permanent: a bug", None).await.unwrap();
    let third = records(
        vec![object("changed", "2"), object("confirmed", "0")],
        vec![event_at(30)],
        vec![block("2")],
        vec![tombstone("deleted"), tombstone("gone"), tombstone("never"), gone_event_tombstone],
    );
    s.store_records(a, newer, &third, None).await.unwrap();
    // A deleted event is not pruned while a batch older than its deletion
    // may still be processed: it would come back.
    b.clock.advance(1);
    assert_eq!(s.prune_deleted_events(s.now() + 1).await.unwrap(), 0, "kept for the failed batch");
    assert_eq!(s.prune_deleted_objects_and_blocks(s.now() + 1).await.unwrap(), 0, "kept for the failed batch");

    // The operator fixes the plugin and retries the failed batch: it was
    // fetched before the third, so where the two disagree the third wins,
    // and what only it holds is written.
    assert_eq!(s.retry_failed_batches(Some(late)).await.unwrap(), [a]);
    let mut second: Vec<ObjectRecord> =
        ["changed", "confirmed", "deleted", "untouched", "gone", "never"].map(|id| object(id, "1")).to_vec();
    second.push(object("new", "1"));
    let second_events = vec![event_at(20), EventRecord { occurred_at: 35, ..gone_event }];
    let counts = s.store_records(a, late, &records(second, second_events, vec![block("1")], vec![]), None).await;
    assert_eq!(counts.unwrap(), RecordCounts { created: 1, updated: 1, unchanged: 8, deleted: 0 });
    let stored: Vec<(String, String, bool)> = s
        .objects(a)
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.external_id, o.data["v"].as_str().unwrap_or("").to_string(), o.deleted))
        .collect();
    let expected = [
        ("changed", "2", false),
        ("confirmed", "0", false),
        ("deleted", "0", true),
        ("gone", "0", true),
        ("never", "", true),
        ("new", "1", false),
        ("untouched", "1", false),
    ]
    .map(|(id, v, deleted)| (id.to_string(), v.to_string(), deleted));
    assert_eq!(stored, expected);
    let events: Vec<(String, i64)> =
        s.events(a).await.unwrap().into_iter().map(|e| (e.external_id, e.occurred_at)).collect();
    assert_eq!(events, [("e".to_string(), 30)], "the newer event stays, and the deleted one deleted");
    assert_eq!(s.blocks(a).await.unwrap()[0].data["v"], "2", "the newer block stays");

    // A late deletion removes nothing a newer batch wrote.
    s.mark_batch_failed(late, "permanent: a bug", None).await.unwrap();
    s.retry_failed_batches(Some(late)).await.unwrap();
    let late_deletion = records(vec![], vec![], vec![], vec![tombstone("changed"), tombstone("untouched")]);
    assert_eq!(s.store_records(a, late, &late_deletion, None).await.unwrap().deleted, 1);
    let deleted: Vec<String> =
        s.objects(a).await.unwrap().into_iter().filter(|o| o.deleted).map(|o| o.external_id).collect();
    assert_eq!(deleted, ["deleted", "gone", "never", "untouched"]);

    // A reprocess applies a batch again over what it wrote itself.
    let reprocessed = records(vec![object("changed", "2b")], vec![], vec![], vec![]);
    assert_eq!(s.store_records(a, newer, &reprocessed, None).await.unwrap().updated, 1);

    // Deleted objects (the placeholder "never" too) are pruned after their
    // retention once no batch older than their deletion is kept, not even a
    // processed one that a reprocess would apply again: "untouched" was
    // deleted last.
    assert_eq!(s.prune_deleted_objects_and_blocks(s.now()).await.unwrap(), 0, "kept for a reprocess");
    assert_eq!(s.prune_processed_batches(s.now() + 1).await.unwrap(), 3);
    assert_eq!(s.prune_deleted_objects_and_blocks(s.now()).await.unwrap(), 3);
    b.clock.advance(1);
    assert_eq!(s.prune_deleted_objects_and_blocks(s.now()).await.unwrap(), 1);
    let left: Vec<String> = s.objects(a).await.unwrap().into_iter().map(|o| o.external_id).collect();
    assert_eq!(left, ["changed", "confirmed", "new"]);
}

conformance!(retries, retries_wait_their_backoff_and_exhausted_jobs_can_be_retried);
async fn retries_wait_their_backoff_and_exhausted_jobs_can_be_retried(b: Backend) {
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let id = s.enqueue_job(&fetch_job(a, START)).await.unwrap();
    s.claim_jobs(Queue::Fetch, "w", 30_000, 1).await.unwrap();
    s.retry_job_at(&lease(id, "w", 1), START + 60_000, false, "transient", "upstream 503").await.unwrap();
    assert!(s.claim_jobs(Queue::Fetch, "w", 30_000, 1).await.unwrap().is_empty(), "not before its backoff");
    assert_eq!(s.next_job_due_at(Queue::Fetch).await.unwrap(), Some(START + 60_000));
    b.clock.advance(60_000);
    let claimed = s.claim_jobs(Queue::Fetch, "w", 30_000, 1).await.unwrap();
    assert_eq!(claimed[0].attempt, 2);
    // A refunded attempt (plugin missing) does not count.
    s.retry_job_at(&lease(id, "w", 2), START + 60_000, true, "plugin-missing", "not loaded").await.unwrap();
    assert_eq!(s.claim_jobs(Queue::Fetch, "w", 30_000, 1).await.unwrap()[0].attempt, 2);
    assert!(s.fail_job(&lease(id, "w", 3), "permanent", "bad request").await.unwrap(), "the third claim");

    let failed = s.failed_jobs(10).await.unwrap();
    assert_eq!(failed.iter().map(|j| j.id).collect::<Vec<_>>(), [id]);
    assert_eq!(failed[0].error_message.as_deref(), Some("bad request"));
    assert_eq!(s.retry_failed_jobs(Some(id + 1000)).await.unwrap(), 0);
    assert_eq!(s.retry_failed_jobs(Some(id)).await.unwrap(), 1);
    let again = s.claim_jobs(Queue::Fetch, "w", 30_000, 1).await.unwrap();
    assert_eq!(again[0].attempt, 1, "a retried job gets fresh attempts");
    assert!(s.fail_job(&lease(id, "w", 4), "permanent", "still bad").await.unwrap());
    assert_eq!(s.retry_failed_jobs(None).await.unwrap(), 1, "retry all");
    s.claim_jobs(Queue::Fetch, "w", 30_000, 1).await.unwrap();
    assert!(s.fail_job(&lease(id, "w", 5), "permanent", "still bad").await.unwrap());
    assert_eq!(s.flush_failed_jobs().await.unwrap(), 1);
    assert!(s.failed_jobs(10).await.unwrap().is_empty());

    // A scheduled run an operator retries is theirs: it runs whether its
    // integration is paused or not, and keeps what else it asked for.
    let args = JobArgs { backfill_since: Some(5), ..JobArgs::new(Trigger::Schedule) };
    let scheduled = s.enqueue_job(&NewJob { args, ..fetch_job(a, START + 60_000) }).await.unwrap();
    let claimed = s.claim_jobs(Queue::Fetch, "w", 30_000, 1).await.unwrap();
    assert!(s.fail_job(&JobLease::of(&claimed[0], "w"), "permanent", "bad request").await.unwrap());
    assert_eq!(s.retry_failed_jobs(Some(scheduled)).await.unwrap(), 1);
    let retried = s.job(scheduled).await.unwrap().unwrap().args;
    assert_eq!(retried, JobArgs { backfill_since: Some(5), ..JobArgs::new(Trigger::Manual) });
}

conformance!(releasing, shutdown_releases_jobs_without_counting_the_attempt);
async fn shutdown_releases_jobs_without_counting_the_attempt(b: Backend) {
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let id = s.enqueue_job(&fetch_job(a, START)).await.unwrap();
    s.claim_jobs(Queue::Fetch, "w", 30_000, 1).await.unwrap();
    assert_eq!(s.release_jobs("other", &[(id, 1)]).await.unwrap(), 0, "only the holder releases");
    assert_eq!(s.release_jobs("w", &[(id, 0)]).await.unwrap(), 0, "only the claim held");
    assert_eq!(s.release_jobs("w", &[(id, 1)]).await.unwrap(), 1);
    assert_eq!(s.claim_jobs(Queue::Fetch, "w2", 30_000, 1).await.unwrap()[0].attempt, 1);
}

conformance!(scheduling, due_integrations_are_queued_once_however_late);
async fn due_integrations_are_queued_once_however_late(b: Backend) {
    let s = &b.store;
    let due = integration(s, "due", Some(START - 86_400_000)).await;
    let soon = integration(s, "soon", Some(START + 5_000)).await;
    let manual = integration(s, "manual", None).await;
    assert_eq!(s.earliest_due_at().await.unwrap(), Some(START - 86_400_000));
    assert_eq!(s.enqueue_due_fetches(START, 4, 100).await.unwrap(), [due], "a day late is still one run");
    assert!(s.enqueue_due_fetches(START, 4, 100).await.unwrap().is_empty(), "and it is not queued twice");
    assert_eq!(s.integration(due).await.unwrap().unwrap().next_due_at, None, "cleared until the run ends");
    assert_eq!(s.earliest_due_at().await.unwrap(), Some(START + 5_000));
    let jobs = s.integration_jobs(due).await.unwrap();
    assert_eq!((jobs.len(), jobs[0].max_attempts, jobs[0].args.trigger.as_str()), (1, 4, "schedule"));

    // A paused integration is never queued.
    s.set_integration_paused(soon, Some(PauseReason::Operator), None).await.unwrap();
    b.clock.advance(10_000);
    assert!(s.enqueue_due_fetches(START + 10_000, 4, 100).await.unwrap().is_empty());
    s.set_integration_paused(soon, None, Some(START)).await.unwrap();
    assert_eq!(s.enqueue_due_fetches(START + 10_000, 4, 100).await.unwrap(), [soon]);
    assert!(s.integration_jobs(manual).await.unwrap().is_empty());
}

/// Writes acknowledged outside once committed (a webhook delivery's 202, a
/// provider's tokens) commit through a connection that syncs SQLite's log at
/// the commit, and so survive a power loss; the rest leave it to the
/// checkpoints (a process's crash loses nothing either way).
#[tokio::test(flavor = "multi_thread")]
async fn on_sqlite_an_acknowledged_write_syncs_the_log_at_its_commit() {
    let b = sqlite().await;
    let synchronous = |mut tx: inlet::store::WriteTx| async move {
        let level: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *tx).await.unwrap();
        level
    };
    assert_eq!(synchronous(b.store.begin().await.unwrap()).await, 1, "NORMAL");
    assert_eq!(synchronous(b.store.begin_durable().await.unwrap()).await, 2, "FULL");
    // One database: what it commits, the pool reads.
    let mut tx = b.store.begin_durable().await.unwrap();
    sqlx::query("INSERT INTO groups (plugin_id, name, credentials, created_at) VALUES ('p', 'durable', '', 0)")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(b.store.groups().await.unwrap().iter().any(|g| g.name == "durable"));
}

conformance!(queueing_ahead, a_run_queued_ahead_waits_for_its_due_time_and_a_pause_or_new_schedule_withdraws_it);
async fn a_run_queued_ahead_waits_for_its_due_time_and_a_pause_or_new_schedule_withdraws_it(b: Backend) {
    let s = &b.store;
    let a = integration(s, "a", Some(START + 800)).await;
    let later = integration(s, "later", Some(START + 1_500)).await;
    assert_eq!(s.enqueue_due_fetches(START + 1_000, 4, 100).await.unwrap(), [a], "due within the second");
    let queued = s.integration_jobs(a).await.unwrap();
    assert_eq!(queued[0].run_at, START + 800, "to run at its due time, not when queued");
    assert!(s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap().is_empty(), "not claimed before it");
    assert_eq!(s.next_job_due_at(Queue::Fetch).await.unwrap(), Some(START + 800));
    b.clock.advance(800);
    assert_eq!(s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap()[0].integration_id, Some(a));

    // Pausing withdraws a run queued ahead; resuming schedules it again.
    assert_eq!(s.enqueue_due_fetches(START + 1_800, 4, 100).await.unwrap(), [later]);
    s.set_integration_paused(later, Some(PauseReason::Operator), None).await.unwrap();
    assert!(s.integration_jobs(later).await.unwrap().is_empty(), "a paused integration's queued run is withdrawn");
    s.set_integration_paused(later, None, Some(START + 1_500)).await.unwrap();
    assert_eq!(s.enqueue_due_fetches(START + 1_800, 4, 100).await.unwrap(), [later]);
    // So does a new schedule, which says when it is due instead.
    let hourly = Schedule::Interval { seconds: 3_600 };
    s.save_sync_settings(later, Some(&hourly), PauseEdit::To(None), NextDue::At(Some(START + 3_600_000)))
        .await
        .unwrap();
    assert!(s.integration_jobs(later).await.unwrap().is_empty());
    assert_eq!(s.integration(later).await.unwrap().unwrap().next_due_at, Some(START + 3_600_000));
    // Saving settings that keep the schedule keeps a queued run, and its due
    // time stays the job's (writing back a due time read before the run was
    // queued would queue it twice).
    s.set_integration_paused(later, None, Some(START + 1_500)).await.unwrap();
    assert_eq!(s.enqueue_due_fetches(START + 1_800, 4, 100).await.unwrap(), [later]);
    s.save_sync_settings(later, Some(&hourly), PauseEdit::To(None), NextDue::Unchanged).await.unwrap();
    assert_eq!(s.integration_jobs(later).await.unwrap().len(), 1);
    assert_eq!(s.integration(later).await.unwrap().unwrap().next_due_at, None);
    // An operator's request joins it and runs now; it is no longer withdrawn.
    assert!(matches!(s.request_run(&fetch_job(later, START + 800), 0).await.unwrap(), TriggerOutcome::Queued { .. }));
    s.set_integration_paused(later, Some(PauseReason::Operator), None).await.unwrap();
    let jobs = s.integration_jobs(later).await.unwrap();
    assert_eq!((jobs.len(), jobs[0].run_at), (1, START + 800), "asked for, so kept, and due now");
    // Saving settings read before that pause, changing nothing, keeps it.
    s.save_sync_settings(later, Some(&hourly), PauseEdit::To(None), NextDue::Unchanged).await.unwrap();
    assert_eq!(s.integration(later).await.unwrap().unwrap().paused_reason, Some(PauseReason::Operator));
    // So does a new schedule that leaves the pause as stored: it is paused
    // still, and due at no time (it was resumed, with the pause read before).
    let quarterly = Schedule::Interval { seconds: 900 };
    s.save_sync_settings(later, Some(&quarterly), PauseEdit::Keep, NextDue::At(Some(START + 900_000))).await.unwrap();
    let kept = s.integration(later).await.unwrap().unwrap();
    assert_eq!((kept.paused_reason, kept.next_due_at), (Some(PauseReason::Operator), None));
}

conformance!(pausing, a_pause_withdraws_every_scheduled_fetch_waiting_to_run_but_not_an_operators_request);
async fn a_pause_withdraws_every_scheduled_fetch_waiting_to_run_but_not_an_operators_request(b: Backend) {
    let s = &b.store;
    let due = integration(s, "due", Some(START - 1_000)).await;
    let retrying = integration(s, "retrying", Some(START - 1_000)).await;
    let asked = integration(s, "asked", None).await;
    let mut queued = s.enqueue_due_fetches(START, 4, 100).await.unwrap();
    queued.sort();
    assert_eq!(queued, [due, retrying]);
    // One run failed and waits out its backoff; the other is due, and no
    // worker has claimed it yet.
    let claimed = s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap();
    let first = claimed.iter().find(|j| j.integration_id == Some(retrying)).unwrap();
    let other = claimed.iter().find(|j| j.integration_id == Some(due)).unwrap();
    assert!(s.retry_job_at(&JobLease::of(first, "w"), START + 60_000, false, "transient", "503").await.unwrap());
    assert_eq!(s.release_jobs("w", &[(other.id, other.claims)]).await.unwrap(), 1);
    s.enqueue_job(&NewJob { queue: Queue::Process, ..fetch_job(due, START) }).await.unwrap();
    assert!(matches!(s.request_run(&fetch_job(asked, START), 0).await.unwrap(), TriggerOutcome::Queued { .. }));

    for id in [due, retrying, asked] {
        s.set_integration_paused(id, Some(PauseReason::Operator), None).await.unwrap();
    }
    let waiting = |id| async move {
        let jobs = s.integration_jobs(id).await.unwrap();
        jobs.iter().map(|j| j.queue).collect::<Vec<_>>()
    };
    assert_eq!(waiting(due).await, [Queue::Process], "the due run goes; processing what was stored stays");
    assert_eq!(waiting(retrying).await, [], "a retry is withdrawn too: nothing runs while paused");
    assert_eq!(waiting(asked).await, [Queue::Fetch], "an operator asked for this one");
    assert!(s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap().iter().all(|j| j.integration_id == Some(asked)));

    // A group that needs reconnecting pauses its integrations the same way.
    let resumed = s.set_integration_paused(retrying, None, Some(START - 1_000)).await.unwrap();
    assert!(resumed);
    assert_eq!(s.enqueue_due_fetches(START, 4, 100).await.unwrap(), [retrying]);
    let group = s.integration(retrying).await.unwrap().unwrap().group_id;
    let version = s.group_credentials(group).await.unwrap().0.version();
    let paused = s.mark_group_needs_reconnect(group, version, "refresh token revoked").await.unwrap().unwrap();
    assert_eq!(paused.iter().map(|i| i.id).collect::<Vec<_>>(), [retrying]);
    assert_eq!(waiting(retrying).await, []);
}

conformance!(processing_fenced, a_processing_pass_that_lost_its_lease_writes_nothing);
async fn a_processing_pass_that_lost_its_lease_writes_nothing(b: Backend) {
    use inlet::domain::records::ObjectRecord;
    use inlet::store::raw_batches::Checkpoint;
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let batches = [("thing".to_string(), "{\"id\":1}".to_string())];
    let sync_run_id = s.start_sync_run(a, Trigger::Manual, 1).await.unwrap();
    let checkpoint =
        Checkpoint { integration_id: a, sync_run_id, lease: None, batches: &batches, state: &[], max_state_keys: 10 };
    s.commit_checkpoint(&checkpoint).await.unwrap();
    let batch = s.batches(a, BatchSelection::Pending, 0, 10).await.unwrap()[0].id;
    // Its processing job: claimed by a worker that stalls past its lease,
    // rescued, and claimed by another.
    s.enqueue_job(&NewJob { queue: Queue::Process, ..fetch_job(a, START) }).await.unwrap();
    let stalled = JobLease::of(&s.claim_jobs(Queue::Process, "w", 30_000, 1).await.unwrap()[0], "w");
    b.clock.advance(31_000);
    assert_eq!(rescue(s, &Abandoned::LeaseExpired).await.len(), 1);
    let holder = JobLease::of(&s.claim_jobs(Queue::Process, "v", 30_000, 1).await.unwrap()[0], "v");
    let object = ObjectRecord { external_id: "1".into(), kind: "thing".into(), name: None, data: "{}".into() };
    let records = Records { objects: vec![object], ..Records::default() };
    // The stalled worker, going on with the page it read: nothing it does counts.
    let refused = [
        s.store_records(a, batch, &records, Some(&stalled)).await.map(|_| ()),
        s.mark_batch_failed(batch, "permanent: late", Some(&stalled)).await,
        s.defer_batch(batch, "transient: late", 5, Some(&stalled)).await.map(|_| ()),
    ];
    for refused in refused {
        let error = refused.unwrap_err().to_string();
        assert!(error.contains("lost its job's lease"), "{error}");
    }
    assert!(s.objects(a).await.unwrap().is_empty());
    assert!(s.failed_batches(10).await.unwrap().is_empty());
    assert_eq!(s.batches(a, BatchSelection::Pending, 0, 10).await.unwrap().len(), 1, "still pending");
    s.store_records(a, batch, &records, Some(&holder)).await.unwrap();
    assert_eq!(s.objects(a).await.unwrap().len(), 1, "the holder's write counts");
}

/// Rescue the jobs `abandoned`, as they were; a fetch failed so for good is
/// due again an hour after its run started.
async fn rescue(s: &Store, abandoned: &Abandoned) -> Vec<Job> {
    let end = |integration: &Integration, started_at: i64| RunEnd {
        schedule_version: integration.schedule_version,
        ..fetch_end(started_at, false, started_at + 3_600_000)
    };
    let mut rescued = Vec::new();
    for job in s.abandoned_jobs(abandoned).await.unwrap() {
        if s.rescue_job(&job, abandoned, &end).await.unwrap().is_some() {
            rescued.push(job);
        }
    }
    rescued
}

/// How a fetch that started at `started_at` on an integration's first
/// schedule ended, pausing it after three failures in a row.
fn fetch_end(started_at: i64, success: bool, next_due_at: i64) -> RunEnd {
    RunEnd {
        started_at,
        success,
        fetched: true,
        next_due_at: Some(next_due_at),
        next_due_reason: None,
        schedule_version: 0,
        pause_after_failures: 3,
        pause_reason: None,
    }
}

/// The completion of fetch `run_id` of `integration_id` that succeeded,
/// its job held by `lease`, and set the next due time.
fn fetch_succeeded(
    run_id: i64,
    lease: JobLease,
    integration_id: i64,
    started_at: i64,
    next_due_at: i64,
) -> inlet::store::run_batches::RunCompletion {
    let end = fetch_end(started_at, true, next_due_at);
    inlet::store::run_batches::RunCompletion {
        run_id,
        outcome: RunOutcome {
            status: RunStatus::Success,
            batches: 0,
            items_seen: 0,
            records: RecordCounts { created: 0, updated: 0, unchanged: 0, deleted: 0 },
            error: None,
            progress: None,
        },
        logs: Default::default(),
        job: Some((lease, inlet::store::jobs::JobAction::Complete)),
        integration_id,
        end: Some(end),
        then_process: None,
    }
}

conformance!(fetch_end_withdraws, a_fetch_that_ends_withdraws_a_run_queued_ahead_of_the_due_time_it_replaces);
async fn a_fetch_that_ends_withdraws_a_run_queued_ahead_of_the_due_time_it_replaces(b: Backend) {
    use inlet::store::run_batches::{Recorded, RunStart};
    let s = &b.store;
    // The scheduler queues the schedule's run ahead, and then a run in the
    // CLI starts, half a second before that one is due.
    let a = integration(s, "a", Some(START + 500)).await;
    assert_eq!(s.enqueue_due_fetches(START + 1_000, 4, 100).await.unwrap(), [a]);
    let args = JobArgs::new(Trigger::Manual);
    let cli = s.claim_integration(a, Queue::Fetch, &args, "cli", 30_000).await.unwrap().unwrap();
    let start = |integration_id, job_id| RunStart {
        integration_id,
        queue: Queue::Fetch,
        trigger: Trigger::Manual,
        attempt: 1,
        job_id: Some(job_id),
        pending_run_id: None,
        due_at_start: None,
    };
    let (runs, _) = s.start_runs(&[start(a, cli.job_id)]).await.unwrap();
    // It ends after that run is due, which waits behind it.
    b.clock.advance(600);
    let completion = fetch_succeeded(runs[0], cli, a, START, START + 900_000);
    assert_eq!(s.complete_runs(&[completion]).await.unwrap(), [Recorded::Finished { paused: None }]);
    assert!(s.integration_jobs(a).await.unwrap().is_empty(), "no second fetch half a second after this one");
    assert_eq!(s.integration(a).await.unwrap().unwrap().next_due_at, Some(START + 900_000));

    // The same, but it ends before that run is due: withdrawn as queued
    // ahead.
    let c = integration(s, "c", Some(s.now() + 500)).await;
    assert_eq!(s.enqueue_due_fetches(s.now() + 1_000, 4, 100).await.unwrap(), [c]);
    let cli = s.claim_integration(c, Queue::Fetch, &args, "cli", 30_000).await.unwrap().unwrap();
    let (runs, started_at) = s.start_runs(&[start(c, cli.job_id)]).await.unwrap();
    let completion = fetch_succeeded(runs[0], cli, c, started_at, started_at + 900_000);
    assert_eq!(s.complete_runs(&[completion]).await.unwrap(), [Recorded::Finished { paused: None }]);
    assert!(s.integration_jobs(c).await.unwrap().is_empty(), "queued ahead, so withdrawn");

    // A fetch not queued by the scheduler (an operator's, say) is claimed;
    // before its start reads the integration, the scheduler queues the run
    // due half a second later (clearing the due time), so the start reads
    // none. The fetch ends after that run is due: the run is withdrawn all
    // the same. (Before, an end whose start read no due time skipped this.)
    let d = integration(s, "d", Some(s.now() + 500)).await;
    let operator = s.claim_integration(d, Queue::Fetch, &args, "w", 30_000).await.unwrap().unwrap();
    assert_eq!(s.enqueue_due_fetches(s.now() + 1_000, 4, 100).await.unwrap(), [d]);
    assert_eq!(s.integration(d).await.unwrap().unwrap().next_due_at, None);
    let (runs, started_at) = s.start_runs(&[start(d, operator.job_id)]).await.unwrap();
    b.clock.advance(600);
    let completion = fetch_succeeded(runs[0], operator, d, started_at, started_at + 900_000);
    assert_eq!(s.complete_runs(&[completion]).await.unwrap(), [Recorded::Finished { paused: None }]);
    assert!(s.integration_jobs(d).await.unwrap().is_empty(), "no second fetch right after this one");

    // Kept: a run an operator's "Update now" joined (someone waits on it),
    // and a run due no earlier than the next due time the end sets (a cron
    // time the fetch did not reach).
    let (e, f) = (integration(s, "e", Some(s.now() + 500)).await, integration(s, "f", Some(s.now() + 500)).await);
    let fetching_e = s.claim_integration(e, Queue::Fetch, &args, "w", 30_000).await.unwrap().unwrap();
    let fetching_f = s.claim_integration(f, Queue::Fetch, &args, "w", 30_000).await.unwrap().unwrap();
    let mut queued = s.enqueue_due_fetches(s.now() + 1_000, 4, 100).await.unwrap();
    queued.sort();
    assert_eq!(queued, [e, f]);
    let joined = s.request_run(&fetch_job(e, s.now()), 0).await.unwrap();
    assert!(matches!(joined, inlet::store::jobs::TriggerOutcome::Queued { .. }));
    let (runs, started_at) = s.start_runs(&[start(e, fetching_e.job_id), start(f, fetching_f.job_id)]).await.unwrap();
    let cron_time = s.now() + 500;
    b.clock.advance(600);
    let ends = [
        fetch_succeeded(runs[0], fetching_e, e, started_at, started_at + 900_000),
        fetch_succeeded(runs[1], fetching_f, f, started_at, cron_time),
    ];
    s.complete_runs(&ends).await.unwrap();
    assert_eq!(s.integration_jobs(e).await.unwrap().len(), 1, "the operator's run follows");
    assert_eq!(s.integration_jobs(f).await.unwrap().len(), 1, "the cron time's run follows");

    // A fetch whose job the rescue sent to the failed list (its worker died
    // in the last attempt) ends as the rescue records it: likewise.
    let g = integration(s, "g", Some(s.now() + 500)).await;
    let fetching = s.claim_integration(g, Queue::Fetch, &args, "w", 30_000).await.unwrap().unwrap();
    // (f's end set its due time back to the cron time: its waiting run
    // is queued again, which joins it.)
    assert_eq!(s.enqueue_due_fetches(s.now() + 1_000, 4, 100).await.unwrap(), [f, g]);
    let started_at = s.now();
    b.clock.advance(600);
    s.record_run_finished(g, &fetch_end(started_at, false, started_at + 900_000)).await.unwrap();
    let jobs: Vec<i64> = s.integration_jobs(g).await.unwrap().iter().map(|j| j.id).collect();
    assert_eq!(jobs, [fetching.job_id], "the scheduler's run is withdrawn");
}

conformance!(edit_while_fetching, a_schedule_edited_while_a_fetch_runs_holds_at_its_end);
async fn a_schedule_edited_while_a_fetch_runs_holds_at_its_end(b: Backend) {
    use inlet::store::run_batches::{Recorded, RunStart};
    let s = &b.store;
    let fetch = |integration_id, job_id| RunStart {
        integration_id,
        queue: Queue::Fetch,
        trigger: Trigger::Schedule,
        attempt: 1,
        job_id: Some(job_id),
        pending_run_id: None,
        due_at_start: None,
    };
    // Due now: queued, claimed and started. An operator moves its next run
    // half a second on meanwhile, which the scheduler queues ahead.
    let a = integration(s, "a", Some(START)).await;
    assert_eq!(s.enqueue_due_fetches(START + 1_000, 4, 100).await.unwrap(), [a]);
    let job = s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap()[0].clone();
    let (runs, _) = s.start_runs(&[fetch(a, job.id)]).await.unwrap();
    let hourly = Schedule::Interval { seconds: 3_600 };
    s.save_sync_settings(a, Some(&hourly), PauseEdit::To(None), NextDue::At(Some(START + 500))).await.unwrap();
    assert_eq!(s.enqueue_due_fetches(START + 1_000, 4, 100).await.unwrap(), [a]);
    // Its end worked out the next due time from the schedule it started on
    // (version 0): the edit's run stays queued, and no due time is set.
    let ended = fetch_succeeded(runs[0], JobLease::of(&job, "w"), a, START, START + 900_000);
    assert_eq!(s.complete_runs(&[ended]).await.unwrap(), [Recorded::Finished { paused: None }]);
    let jobs = s.integration_jobs(a).await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.run_at).collect::<Vec<_>>(), [START + 500], "the edit's run: {jobs:?}");
    assert_eq!(s.integration(a).await.unwrap().unwrap().next_due_at, None);

    // One whose end pauses the integration (its credentials refused)
    // withdraws the edit's queued run, as a pause does.
    let h = integration(s, "h", Some(START)).await;
    assert_eq!(s.enqueue_due_fetches(START + 1_000, 4, 100).await.unwrap(), [h]);
    let job = s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap()[0].clone();
    let (runs, _) = s.start_runs(&[fetch(h, job.id)]).await.unwrap();
    s.save_sync_settings(h, Some(&hourly), PauseEdit::To(None), NextDue::At(Some(START + 500))).await.unwrap();
    assert_eq!(s.enqueue_due_fetches(START + 1_000, 4, 100).await.unwrap(), [h]);
    // It ends once that run is due: the pause withdraws it, where the
    // edit's due time would otherwise hold.
    b.clock.advance(600);
    let mut refused = fetch_succeeded(runs[0], JobLease::of(&job, "w"), h, START, START + 900_000);
    refused.outcome.status = RunStatus::Failed;
    if let Some(end) = &mut refused.end {
        (end.success, end.pause_reason) = (false, Some(PauseReason::NeedsReconnect));
    }
    let paused = Some(PauseReason::NeedsReconnect);
    assert_eq!(s.complete_runs(&[refused]).await.unwrap(), [Recorded::Finished { paused }]);
    assert!(s.integration_jobs(h).await.unwrap().is_empty(), "withdrawn with the pause");

    // Paused and resumed while a fetch runs, due again at once: as for an
    // edit, the resume's run follows the fetch, which sets no due time.
    let r = integration(s, "r", Some(s.now())).await;
    assert_eq!(s.enqueue_due_fetches(s.now() + 1_000, 4, 100).await.unwrap(), [r]);
    let claimed = s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap();
    let job = claimed.into_iter().find(|j| j.integration_id == Some(r)).unwrap();
    let (runs, started_at) = s.start_runs(&[fetch(r, job.id)]).await.unwrap();
    assert!(s.set_integration_paused(r, Some(PauseReason::Operator), None).await.unwrap());
    assert!(s.set_integration_paused(r, None, Some(s.now())).await.unwrap());
    assert_eq!(s.enqueue_due_fetches(s.now() + 1_000, 4, 100).await.unwrap(), [r]);
    b.clock.advance(1_000);
    let ended = fetch_succeeded(runs[0], JobLease::of(&job, "w"), r, started_at, started_at + 900_000);
    assert_eq!(s.complete_runs(&[ended]).await.unwrap(), [Recorded::Finished { paused: None }]);
    assert_eq!(s.integration_jobs(r).await.unwrap().len(), 1, "the resume's run");
    assert_eq!(s.integration(r).await.unwrap().unwrap().next_due_at, None, "the fetch's end undid the resume");

    // Made manual while a fetch runs that then fails for good: still manual
    // after it.
    let c = integration(s, "c", None).await;
    s.save_sync_settings(c, Some(&Schedule::Manual), PauseEdit::To(None), NextDue::At(None)).await.unwrap();
    assert_eq!(s.record_run_finished(c, &fetch_end(START, false, START + 900_000)).await.unwrap(), None);
    let ended = s.integration(c).await.unwrap().unwrap();
    assert_eq!((ended.next_due_at, ended.consecutive_failures), (None, 1), "the failure counts; the edit holds");
}

conformance!(due_while_fetching, a_fetch_that_starts_at_its_due_time_meets_it);
async fn a_fetch_that_starts_at_its_due_time_meets_it(b: Backend) {
    use inlet::store::integrations::DueAtStart;
    use inlet::store::run_batches::RunStart;
    let s = &b.store;
    // Each integration's schedule is every 15 minutes: a fetch's end sets
    // the next due time 15 minutes after its start. `due` is the due time
    // the start read.
    let fetch_start = |integration_id, job_id, due: Option<i64>| RunStart {
        integration_id,
        queue: Queue::Fetch,
        trigger: Trigger::Manual,
        attempt: 1,
        job_id: Some(job_id),
        pending_run_id: None,
        due_at_start: due.map(|read| DueAtStart { read, schedule_version: 0, next: START + 900_000 }),
    };
    // Created due in a few seconds (its first run's jitter), and given
    // "Update now" at once: the operator's fetch meets that due time.
    let a = integration(s, "a", Some(START + 4_000)).await;
    let manual = s.enqueue_job(&fetch_job(a, START)).await.unwrap();
    s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap();
    s.start_runs(&[fetch_start(a, manual, Some(START + 4_000))]).await.unwrap();
    b.clock.advance(4_000);
    assert!(s.enqueue_due_fetches(START + 5_000, 4, 100).await.unwrap().is_empty(), "no second fetch behind it");
    assert_eq!(s.integration(a).await.unwrap().unwrap().next_due_at, None, "its end says when the next is due");
    // An operator's new schedule while it runs is queued behind it.
    let hourly = Schedule::Interval { seconds: 3_600 };
    s.save_sync_settings(a, Some(&hourly), PauseEdit::To(None), NextDue::At(Some(START + 4_000))).await.unwrap();
    assert_eq!(s.enqueue_due_fetches(START + 5_000, 4, 100).await.unwrap(), [a]);
    assert!(s.complete_job(&lease(manual, "w", 1)).await.unwrap());

    // A fetch whose end sets that same due time again (a cron time after its
    // start) leaves it, for a run after this one.
    let b_ = integration(s, "b", Some(START + 9_000)).await;
    let early = s.enqueue_job(&fetch_job(b_, START)).await.unwrap();
    s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap();
    let due_at_start = Some(DueAtStart { read: START + 9_000, schedule_version: 0, next: START + 9_000 });
    let cron_like = RunStart { due_at_start, ..fetch_start(b_, early, None) };
    s.start_runs(&[cron_like]).await.unwrap();
    assert_eq!(s.integration(b_).await.unwrap().unwrap().next_due_at, Some(START + 9_000));
    assert!(s.complete_job(&lease(early, "w", 1)).await.unwrap());

    // A schedule edited after the start read its integration, and before it
    // recorded the run, sets a due time of its own: the start leaves it (it
    // met the one it read), the same time again too (this fetch's end will
    // not set the next: the schedule is no longer the one it started on).
    for edited in [START + 2_000, START + 4_000] {
        let f = integration(s, "f", Some(START + 4_000)).await;
        let job = s.enqueue_job(&fetch_job(f, START)).await.unwrap();
        s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap();
        s.save_sync_settings(f, Some(&hourly), PauseEdit::To(None), NextDue::At(Some(edited))).await.unwrap();
        s.start_runs(&[fetch_start(f, job, Some(START + 4_000))]).await.unwrap();
        assert_eq!(s.integration(f).await.unwrap().unwrap().next_due_at, Some(edited), "the edit's due time");
        assert!(s.delete_integration(f).await.unwrap()); // out of the scheduler's way below
    }

    // A run in the CLI that meets the due time and then cannot be recorded
    // owes it: nothing lost.
    let c = integration(s, "c", Some(START)).await;
    let args = JobArgs::new(Trigger::Manual);
    let cli = s.claim_integration(c, Queue::Fetch, &args, "cli", 30_000).await.unwrap().unwrap();
    s.start_runs(&[fetch_start(c, cli.job_id, Some(START))]).await.unwrap();
    assert_eq!(s.integration(c).await.unwrap().unwrap().next_due_at, None);
    assert!(s.end_unrecorded_fetch(&cli, c, START + 10).await.unwrap());
    assert!(s.integration_jobs(c).await.unwrap().is_empty());
    assert_eq!(s.integration(c).await.unwrap().unwrap().next_due_at, Some(START + 10));
    // A due time it did not meet is kept as it is.
    s.set_integration_paused(c, None, Some(START + 60_000)).await.unwrap();
    let cli = s.claim_integration(c, Queue::Fetch, &args, "cli", 30_000).await.unwrap().unwrap();
    assert!(s.end_unrecorded_fetch(&cli, c, START + 20).await.unwrap());
    assert_eq!(s.integration(c).await.unwrap().unwrap().next_due_at, Some(START + 60_000));

    // The scheduler queued first, and then `inlet sync` ran (it does not join
    // a waiting job): its end withdraws the scheduled run it met.
    let e = integration(s, "e", Some(START + 4_500)).await;
    assert_eq!(s.enqueue_due_fetches(START + 5_000, 4, 100).await.unwrap(), [e]);
    let cli = s.claim_integration(e, Queue::Fetch, &args, "cli", 30_000).await.unwrap().unwrap();
    let (runs, _) = s.start_runs(&[fetch_start(e, cli.job_id, None)]).await.unwrap();
    b.clock.advance(1_000);
    s.complete_runs(&[fetch_succeeded(runs[0], cli, e, START + 4_000, START + 904_000)]).await.unwrap();
    assert!(s.integration_jobs(e).await.unwrap().is_empty(), "no second fetch after it");
    assert_eq!(s.integration(e).await.unwrap().unwrap().next_due_at, Some(START + 904_000));

    // Processing does not meet a due time: that is the fetch's.
    let d = integration(s, "d", Some(START)).await;
    let process = s.enqueue_job(&NewJob { queue: Queue::Process, ..fetch_job(d, START) }).await.unwrap();
    s.claim_jobs(Queue::Process, "w", 30_000, 10).await.unwrap();
    s.start_runs(&[RunStart { queue: Queue::Process, ..fetch_start(d, process, Some(START)) }]).await.unwrap();
    assert_eq!(s.enqueue_due_fetches(START + 6_000, 4, 100).await.unwrap(), [d]);
}

conformance!(held_back_jobs, a_due_job_held_back_by_a_running_one_is_not_waited_for);
async fn a_due_job_held_back_by_a_running_one_is_not_waited_for(b: Backend) {
    let s = &b.store;
    let a = integration(s, "a", None).await;
    s.enqueue_job(&fetch_job(a, START)).await.unwrap();
    s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap();
    // Queued while the first runs: due, but the claim leaves it waiting.
    s.enqueue_job(&fetch_job(a, START)).await.unwrap();
    assert!(s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap().is_empty());
    assert_eq!(s.next_job_due_at(Queue::Fetch).await.unwrap(), None, "nothing to wake for");
    s.enqueue_job(&fetch_job(integration(s, "b", None).await, START + 5_000)).await.unwrap();
    assert_eq!(s.next_job_due_at(Queue::Fetch).await.unwrap(), Some(START + 5_000));
    // A processing job of `a` is not held back by its fetch.
    let process = NewJob { queue: Queue::Process, ..fetch_job(a, START) };
    s.enqueue_job(&process).await.unwrap();
    assert_eq!(s.next_job_due_at(Queue::Process).await.unwrap(), Some(START));
}

conformance!(failure_streaks, three_failed_runs_in_a_row_pause_and_a_success_resets);
async fn three_failed_runs_in_a_row_pause_and_a_success_resets(b: Backend) {
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let end = |success| fetch_end(START, success, START + 900_000);
    assert_eq!(s.record_run_finished(a, &end(false)).await.unwrap(), None);
    assert_eq!(s.integration(a).await.unwrap().unwrap().next_due_at, Some(START + 900_000), "still scheduled");
    assert_eq!(s.record_run_finished(a, &end(false)).await.unwrap(), None);
    assert_eq!(s.record_run_finished(a, &end(true)).await.unwrap(), None, "a success resets the count");
    assert_eq!(s.integration(a).await.unwrap().unwrap().last_success_at, Some(START));
    for _ in 0..2 {
        assert_eq!(s.record_run_finished(a, &end(false)).await.unwrap(), None);
    }
    // Resuming one that is not paused leaves its streak: only a success resets it.
    s.set_integration_paused(a, None, Some(START + 900_000)).await.unwrap();
    let third = s.record_run_finished(a, &end(false)).await.unwrap();
    assert_eq!(third, Some(PauseReason::Error), "the third failure in a row pauses");
    let paused = s.integration(a).await.unwrap().unwrap();
    assert_eq!(paused.paused_reason, Some(PauseReason::Error));
    assert_eq!(paused.next_due_at, None);
    assert_eq!(s.record_run_finished(a, &end(false)).await.unwrap(), None, "pausing is reported once");

    // Refused credentials pause at once, whatever the streak.
    let other = integration(s, "other", None).await;
    let refused = RunEnd { pause_reason: Some(PauseReason::NeedsReconnect), ..end(false) };
    assert_eq!(s.record_run_finished(other, &refused).await.unwrap(), Some(PauseReason::NeedsReconnect));
    let paused = s.integration(other).await.unwrap().unwrap();
    assert_eq!((paused.paused_reason, paused.next_due_at), (Some(PauseReason::NeedsReconnect), None));

    // A success held back by the plugin's hint keeps why; any other write
    // of the next run's time (a failure, an operator's edit) clears it.
    let hinted = integration(s, "hinted", None).await;
    let later =
        RunEnd { next_due_at: Some(START + 3_600_000), next_due_reason: Some("poll interval".into()), ..end(true) };
    s.record_run_finished(hinted, &later).await.unwrap();
    let row = s.integration(hinted).await.unwrap().unwrap();
    assert_eq!((row.next_due_at, row.next_due_reason.as_deref()), (Some(START + 3_600_000), Some("poll interval")));
    s.record_run_finished(hinted, &end(false)).await.unwrap();
    assert_eq!(s.integration(hinted).await.unwrap().unwrap().next_due_reason, None, "a failure follows the schedule");
    s.record_run_finished(hinted, &later).await.unwrap();
    s.save_sync_settings(hinted, None, PauseEdit::To(None), NextDue::At(Some(START))).await.unwrap();
    let edited = s.integration(hinted).await.unwrap().unwrap();
    assert_eq!((edited.next_due_at, edited.next_due_reason), (Some(START), None), "the operator's edit wins");
}

conformance!(batches, runs_start_and_complete_in_batches);
async fn runs_start_and_complete_in_batches(b: Backend) {
    use inlet::store::jobs::JobAction;
    use inlet::store::run_batches::{Recorded, RunCompletion, RunStart};
    let s = &b.store;
    let (a, c) = (integration(s, "a", None).await, integration(s, "c", None).await);
    let (job_a, job_c) =
        (s.enqueue_job(&fetch_job(a, START)).await.unwrap(), s.enqueue_job(&fetch_job(c, START)).await.unwrap());
    s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap();
    let starts = [
        RunStart {
            integration_id: a,
            queue: Queue::Fetch,
            trigger: Trigger::Schedule,
            attempt: 1,
            job_id: Some(job_a),
            pending_run_id: None,
            due_at_start: None,
        },
        RunStart {
            integration_id: c,
            queue: Queue::Fetch,
            trigger: Trigger::Manual,
            attempt: 1,
            job_id: Some(job_c),
            pending_run_id: None,
            due_at_start: None,
        },
    ];
    let (runs, started_at) = s.start_runs(&starts).await.unwrap();
    assert_eq!(started_at, START);
    assert_eq!(s.job(job_a).await.unwrap().unwrap().sync_run_id, Some(runs[0]));
    assert_eq!(s.sync_run(runs[1]).await.unwrap().unwrap().status, RunStatus::Running);
    assert_eq!(s.integration(a).await.unwrap().unwrap().last_started_at, None, "written with the run's end");

    b.clock.advance(250);
    let outcome = |status, error: Option<(&str, &str)>| RunOutcome {
        status,
        batches: 2,
        items_seen: 7,
        records: RecordCounts { created: 3, updated: 1, unchanged: 0, deleted: 0 },
        error: error.map(|(c, m)| (ErrorClass::parse(c).unwrap(), m.to_string())),
        progress: Some((7, Some(7))),
    };
    let end = |success| RunEnd {
        started_at: START,
        success,
        fetched: true,
        next_due_at: Some(START + 900_000),
        next_due_reason: None,
        schedule_version: 0,
        pause_after_failures: 3,
        pause_reason: None,
    };
    let retry = JobAction::Retry {
        run_at: START + 60_000,
        refund_attempt: false,
        class: "transient".into(),
        message: "503".into(),
    };
    let completions = [
        RunCompletion {
            run_id: runs[0],
            outcome: outcome(RunStatus::Success, None),
            logs: Default::default(),
            job: Some((lease(job_a, "w", 1), JobAction::Complete)),
            integration_id: a,
            end: Some(end(true)),
            then_process: None,
        },
        RunCompletion {
            run_id: runs[1],
            outcome: outcome(RunStatus::Failed, Some(("transient", "503"))),
            logs: Default::default(),
            job: Some((lease(job_c, "w", 1), retry)),
            integration_id: c,
            end: None,
            then_process: None,
        },
    ];
    let finished = Recorded::Finished { paused: None };
    assert_eq!(s.complete_runs(&completions).await.unwrap(), [finished.clone(), finished]);
    let done = s.sync_run(runs[0]).await.unwrap().unwrap();
    assert_eq!(
        (done.status, done.duration_ms, done.records.created, done.progress_done),
        (RunStatus::Success, Some(250), 3, Some(7))
    );
    assert!(s.job(job_a).await.unwrap().is_none(), "a completed job is deleted");
    let retried = s.job(job_c).await.unwrap().unwrap();
    assert_eq!((retried.state.as_str(), retried.run_at), ("available", START + 60_000));
    let finished = s.integration(a).await.unwrap().unwrap();
    assert_eq!((finished.next_due_at, finished.last_started_at), (Some(START + 900_000), Some(START)));
    let retrying = s.integration(c).await.unwrap().unwrap();
    assert_eq!(
        (retrying.consecutive_failures, retrying.last_started_at),
        (0, None),
        "a retrying run does not count yet"
    );
}

conformance!(leadership, one_leader_at_a_time_and_a_dead_one_is_replaced);
async fn one_leader_at_a_time_and_a_dead_one_is_replaced(b: Backend) {
    let s = &b.store;
    assert!(s.acquire_lease("scheduler", "a", 15_000).await.unwrap());
    assert!(!s.acquire_lease("scheduler", "b", 15_000).await.unwrap());
    b.clock.advance(10_000);
    assert!(s.acquire_lease("scheduler", "a", 15_000).await.unwrap(), "the leader renews");
    b.clock.advance(14_000);
    assert!(!s.acquire_lease("scheduler", "b", 15_000).await.unwrap(), "renewed lease still held");
    b.clock.advance(2_000);
    assert!(s.acquire_lease("scheduler", "b", 15_000).await.unwrap(), "a dead leader is replaced");
    s.release_lease("scheduler", "b").await.unwrap();
    assert!(s.acquire_lease("scheduler", "a", 15_000).await.unwrap(), "a released lease is free at once");
}

conformance!(history, sync_history_is_pruned_by_age_and_count);
async fn sync_history_is_pruned_by_age_and_count(b: Backend) {
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let done = RunOutcome {
        status: RunStatus::Success,
        batches: 1,
        items_seen: 1,
        records: RecordCounts::default(),
        error: None,
        progress: None,
    };
    for _ in 0..6 {
        let run = s.start_sync_run(a, Trigger::Schedule, 1).await.unwrap();
        s.finish_sync_run(run, &done).await.unwrap();
        b.clock.advance(60_000);
    }
    // A sync is two runs: the fetches' processing is kept beside them.
    for _ in 0..4 {
        let start = inlet::store::run_batches::RunStart {
            integration_id: a,
            queue: Queue::Process,
            trigger: Trigger::Schedule,
            attempt: 1,
            job_id: None,
            pending_run_id: None,
            due_at_start: None,
        };
        let run = s.start_runs(&[start]).await.unwrap().0[0];
        s.finish_sync_run(run, &done).await.unwrap();
    }
    let running = s.start_sync_run(a, Trigger::Schedule, 1).await.unwrap();
    assert_eq!(s.prune_sync_runs(START - 1, 4).await.unwrap(), 3, "fetches beyond the newest 4 (a running one counts)");
    let kept = s.sync_runs(a, 20).await.unwrap();
    assert_eq!(kept.iter().filter(|r| r.queue == Queue::Process).count(), 4, "and the newest 4 processing runs");
    assert_eq!(s.prune_sync_runs(START + 3 * 60_000 + 1, 100).await.unwrap(), 1, "older than the cut-off");
    let left: Vec<i64> = s.sync_runs(a, 100).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(left.len(), 7, "two fetches and four processing runs left: {left:?}");
    assert_eq!(left[0], running, "a running run is never pruned");
}

conformance!(groups, reconnecting_a_group_replaces_its_credentials_and_resumes_what_waited_for_it);
async fn reconnecting_a_group_replaces_its_credentials_and_resumes_what_waited_for_it(b: Backend) {
    use inlet::domain::group_status::GroupStatus;
    use std::collections::BTreeMap;
    let token = |value: &str| Credentials::new(BTreeMap::from([("access_token".to_string(), value.to_string())]));
    let on_schedule = |i: &inlet::store::integrations::Integration| i.schedule != Some(Schedule::Manual);
    let group = b.store.connect_group("test", "group", |_| token("first"), on_schedule).await.unwrap();
    let (active, by_operator) = (integration(&b.store, "a", None).await, integration(&b.store, "b", None).await);
    let manual = b
        .store
        .insert_integration(&NewIntegration {
            plugin_id: "test",
            instance_type: "things",
            group_id: group,
            name: "manual",
            config: "{}",
            schedule: Some(&Schedule::Manual),
            first_due_at: None,
            paused_reason: None,
        })
        .await
        .unwrap();
    b.store.set_integration_paused(by_operator, Some(PauseReason::Operator), None).await.unwrap();
    let (first, _) = b.store.group_credentials(group).await.unwrap();

    let refreshed = b.store.store_refreshed_credentials(group, first.version(), &token("second")).await.unwrap();
    let refreshed = refreshed.expect("the version it was read at is current");
    assert_eq!(refreshed.version(), first.version() + 1, "every change bumps the version");
    assert_eq!(b.store.group_credentials(group).await.unwrap().0.get("access_token"), Some("second"));
    // A refresh that started from the older version loses: nothing is written or marked.
    assert!(b.store.store_refreshed_credentials(group, first.version(), &token("stale")).await.unwrap().is_none());
    assert!(b.store.mark_group_needs_reconnect(group, first.version(), "refused").await.unwrap().is_none());
    assert_eq!(b.store.group(group).await.unwrap().unwrap().status, GroupStatus::Ok);

    // Needs reconnect: only the active integrations are paused, and reported.
    let paused =
        b.store.mark_group_needs_reconnect(group, refreshed.version(), "refresh token revoked").await.unwrap().unwrap();
    assert_eq!(paused.iter().map(|i| i.id).collect::<Vec<_>>(), [active, manual]);
    let marked = b.store.group(group).await.unwrap().unwrap();
    assert_eq!(
        (marked.status, marked.status_reason.as_deref()),
        (GroupStatus::NeedsReconnect, Some("refresh token revoked"))
    );

    // Connecting again under the same name: the same group, ok, resumed now,
    // built from the credentials it had.
    b.clock.advance(60_000);
    let reconnected = b
        .store
        .connect_group(
            "test",
            "group",
            |current| {
                assert_eq!(current.and_then(|c| c.get("access_token")), Some("second"));
                token("third")
            },
            on_schedule,
        )
        .await
        .unwrap();
    assert_eq!(reconnected, group);
    let (third, status) = b.store.group_credentials(group).await.unwrap();
    assert_eq!((third.get("access_token"), status.as_str()), (Some("third"), "ok"));
    assert!(third.version() > refreshed.version());
    assert_eq!(b.store.group(group).await.unwrap().unwrap().status_reason, None, "reconnecting clears the reason");
    let a = b.store.integration(active).await.unwrap().unwrap();
    assert_eq!((a.paused_reason, a.next_due_at), (None, Some(START + 60_000)));
    let m = b.store.integration(manual).await.unwrap().unwrap();
    assert_eq!((m.paused_reason, m.next_due_at), (None, None), "a manual one waits for its operator");
    let operator = b.store.integration(by_operator).await.unwrap().unwrap();
    assert_eq!(operator.paused_reason, Some(PauseReason::Operator), "an operator's pause is theirs to lift");
}

conformance!(oauth_states, an_authorization_state_works_once_and_stale_ones_are_forgotten);
async fn an_authorization_state_works_once_and_stale_ones_are_forgotten(b: Backend) {
    use inlet::store::oauth_authorizations::PendingAuthorization;
    let pending = |state: &str, verifier: Option<&str>| PendingAuthorization {
        state: state.into(),
        plugin_id: "test".into(),
        group_name: "personal".into(),
        redirect_uri: "http://127.0.0.1:8080/oauth/test/callback".into(),
        code_verifier: verifier.map(str::to_string),
        created_at: b.store.now(),
    };
    b.store.insert_oauth_authorization(&pending("old", None), START - 1).await.unwrap();
    b.clock.advance(20 * 60_000);
    let cutoff = b.store.now() - 10 * 60_000;
    b.store.insert_oauth_authorization(&pending("new", Some("verifier")), cutoff).await.unwrap();

    let taken = b.store.take_oauth_authorization("new", cutoff).await.unwrap().unwrap();
    assert_eq!((taken.group_name.as_str(), taken.code_verifier.as_deref()), ("personal", Some("verifier")));
    assert!(b.store.take_oauth_authorization("new", cutoff).await.unwrap().is_none(), "a state works once");
    assert!(b.store.take_oauth_authorization("old", cutoff).await.unwrap().is_none(), "stale ones are forgotten");
}

conformance!(run_requests, an_operators_run_request_has_a_run_id_at_once_and_repeats_are_refused);
async fn an_operators_run_request_has_a_run_id_at_once_and_repeats_are_refused(b: Backend) {
    use inlet::store::jobs::TriggerOutcome;
    use inlet::store::run_batches::RunStart;
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let TriggerOutcome::Queued { job_id, run_id } = s.request_run(&fetch_job(a, START), 10_000).await.unwrap() else {
        panic!("the first request is queued");
    };
    assert_eq!(s.sync_run(run_id).await.unwrap().unwrap().status, RunStatus::Pending);
    b.clock.advance(9_999);
    assert_eq!(
        s.request_run(&fetch_job(a, START), 10_000).await.unwrap(),
        TriggerOutcome::TooSoon { last_requested_at: START }
    );
    // Without the minimum (force), a second request joins the waiting job and its run.
    assert_eq!(s.request_run(&fetch_job(a, START), 0).await.unwrap(), TriggerOutcome::Queued { job_id, run_id });
    assert_eq!(s.request_run(&fetch_job(424242, START), 0).await.unwrap(), TriggerOutcome::NoIntegration);
    // A reprocess asks nothing of the upstream: it is not held to the
    // minimum, and an update asked for after it is not held back by it.
    let r = integration(s, "r", None).await;
    let reprocess = NewJob { queue: Queue::Process, ..fetch_job(r, s.now()) };
    assert!(matches!(s.request_run(&reprocess, 0).await.unwrap(), TriggerOutcome::Queued { .. }));
    assert!(matches!(s.request_run(&fetch_job(r, s.now()), 10_000).await.unwrap(), TriggerOutcome::Queued { .. }));
    let reprocess = NewJob { integration_id: 424242, ..reprocess };
    assert_eq!(s.request_run(&reprocess, 0).await.unwrap(), TriggerOutcome::NoIntegration);

    // Starting the job turns the pending run into the running one.
    let claimed = s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap();
    assert_eq!(claimed[0].pending_run_id, Some(run_id));
    // It joined a scheduled job: started as "schedule", it stays the operator's "manual".
    let start = RunStart {
        integration_id: a,
        queue: Queue::Fetch,
        trigger: Trigger::Schedule,
        attempt: 1,
        job_id: Some(job_id),
        pending_run_id: Some(run_id),
        due_at_start: None,
    };
    let (runs, _) = s.start_runs(&[start]).await.unwrap();
    assert_eq!(runs, vec![run_id]);
    let run = s.sync_run(run_id).await.unwrap().unwrap();
    assert_eq!((run.status, run.started_at), (RunStatus::Running, Some(START + 9_999)));
    assert_eq!(run.trigger, Trigger::Manual);
    assert_eq!(s.sync_runs(a, 10).await.unwrap().len(), 1, "no second row");

    // A job waiting out an upstream's Retry-After is not pulled forward by a request.
    let limited = integration(s, "limited", None).await;
    let waiting = s.enqueue_job(&fetch_job(limited, START)).await.unwrap();
    s.claim_jobs(Queue::Fetch, "w", 30_000, 10).await.unwrap();
    s.retry_job_at(&lease(waiting, "w", 1), START + 600_000, true, "rate-limited", "retry after 600s").await.unwrap();
    let TriggerOutcome::Queued { job_id: joined, .. } = s.request_run(&fetch_job(limited, START), 0).await.unwrap()
    else {
        panic!("queued");
    };
    assert_eq!(joined, waiting);
    assert_eq!(s.job(waiting).await.unwrap().unwrap().run_at, START + 600_000);

    // A requested run whose job ends before starting it does not stay pending.
    let c = integration(s, "c", None).await;
    let TriggerOutcome::Queued { run_id, .. } = s.request_run(&fetch_job(c, START), 0).await.unwrap() else {
        panic!("queued");
    };
    s.abandon_sync_run(run_id, RunStatus::Failed, ErrorClass::Permanent, "the job ran out of attempts").await.unwrap();
    assert_eq!(s.sync_run(run_id).await.unwrap().unwrap().status, RunStatus::Failed);
    assert!(s.active_sync_runs(&[c]).await.unwrap().iter().all(|r| r.id != run_id));
}

conformance!(webhook_deliveries, a_delivery_is_stored_once_with_batches_for_its_integrations);
async fn a_delivery_is_stored_once_with_batches_for_its_integrations(b: Backend) {
    use inlet::store::webhook_deliveries::{DeliveryStored, NewDelivery};
    let s = &b.store;
    let (a, c) = (integration(s, "a", None).await, integration(s, "c", None).await);
    let group = s.integration(a).await.unwrap().unwrap().group_id;
    let batches = vec![
        ("things".to_string(), "things".to_string(), "[1]".to_string()),
        ("others".to_string(), "others".to_string(), "[2]".to_string()),
    ];
    let delivery = NewDelivery {
        plugin_id: "test",
        group_id: group,
        delivery_key: "abc",
        body_bytes: 10,
        batches: &batches,
        max_attempts: 4,
    };
    let DeliveryStored::New { delivery_id, integrations, unrouted_batches } =
        s.store_webhook_delivery(&delivery).await.unwrap()
    else {
        panic!("the first delivery is new");
    };
    assert_eq!((integrations, unrouted_batches), (vec![a, c], 1));
    assert_eq!(s.batches(a, BatchSelection::Pending, 0, 10).await.unwrap().len(), 1);
    assert_eq!(s.store_webhook_delivery(&delivery).await.unwrap(), DeliveryStored::Duplicate { delivery_id });
    assert_eq!(s.batches(c, BatchSelection::Pending, 0, 10).await.unwrap().len(), 1, "a replay stores nothing");
    let jobs = s.claim_jobs(Queue::Webhook, "w", 30_000, 10).await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.integration_id.unwrap()).collect::<BTreeSet<_>>(), BTreeSet::from([a, c]));

    // Nothing routed: nothing written, so the same delivery can come again later.
    let stray = vec![("others".to_string(), "others".to_string(), "[3]".to_string())];
    let unrouted = NewDelivery { delivery_key: "def", batches: &stray, ..delivery };
    let outcome = s.store_webhook_delivery(&unrouted).await.unwrap();
    assert_eq!(outcome, DeliveryStored::Unrouted { instance_types: vec!["others".into()] });
    // Once forgotten (history pruning), a replay is stored again.
    b.clock.advance(1);
    assert_eq!(s.prune_webhook_deliveries(START + 1).await.unwrap(), 1, "only the stored delivery existed");
    assert!(matches!(s.store_webhook_delivery(&delivery).await.unwrap(), DeliveryStored::New { .. }));
}

conformance!(batch_order, batches_of_one_integration_are_numbered_in_the_order_they_commit);
async fn batches_of_one_integration_are_numbered_in_the_order_they_commit(b: Backend) {
    use inlet::store::webhook_deliveries::NewDelivery;
    use std::sync::Mutex;
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let group = s.integration(a).await.unwrap().unwrap().group_id;
    if s.backend() == inlet::store::Backend::Postgres {
        // A checkpoint that takes its time between storing its batch and
        // committing, as one with much state to write may.
        let slow = "CREATE FUNCTION slow_batch() RETURNS trigger LANGUAGE plpgsql AS
                    'BEGIN PERFORM pg_sleep(0.5); RETURN NEW; END'";
        sqlx::query(slow).execute(s.pool()).await.unwrap();
        let trigger = "CREATE TRIGGER slow_batch AFTER INSERT ON raw_batches FOR EACH ROW
                       WHEN (NEW.kind = 'fetched') EXECUTE FUNCTION slow_batch()";
        sqlx::query(trigger).execute(s.pool()).await.unwrap();
    }
    let committed = Mutex::new(Vec::new());
    let run = s.start_sync_run(a, Trigger::Manual, 1).await.unwrap();
    let fetched = [("fetched".to_string(), "[1]".to_string())];
    let checkpoint = async {
        let checkpoint = inlet::store::raw_batches::Checkpoint {
            integration_id: a,
            sync_run_id: run,
            lease: None,
            batches: &fetched,
            state: &[],
            max_state_keys: 10,
        };
        s.commit_checkpoint(&checkpoint).await.unwrap();
        committed.lock().unwrap().push("fetched");
    };
    let pushed = [("things".to_string(), "pushed".to_string(), "[2]".to_string())];
    let delivery = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let delivery = NewDelivery {
            plugin_id: "test",
            group_id: group,
            delivery_key: "k",
            body_bytes: 3,
            batches: &pushed,
            max_attempts: 4,
        };
        s.store_webhook_delivery(&delivery).await.unwrap();
        committed.lock().unwrap().push("pushed");
    };
    tokio::join!(checkpoint, delivery);
    // Processing takes a batch's id as its age: the one committed later
    // must have the higher id, or it would be processed as the newer one
    // before the other was visible, and then be overwritten by it.
    let by_id: Vec<String> =
        s.batches(a, BatchSelection::Pending, 0, 10).await.unwrap().into_iter().map(|b| b.kind).collect();
    assert_eq!(by_id, *committed.lock().unwrap());
}

conformance!(checkpoint_lock_order, a_checkpoint_takes_its_integration_before_its_job_as_a_deletion_does);
async fn a_checkpoint_takes_its_integration_before_its_job_as_a_deletion_does(b: Backend) {
    use inlet::store::raw_batches::Checkpoint;
    let s = &b.store;
    let a = integration(s, "a", None).await;
    s.enqueue_job(&fetch_job(a, START)).await.unwrap();
    let job = s.claim_jobs(Queue::Fetch, "w", 30_000, 1).await.unwrap().remove(0);
    let held = JobLease::of(&job, "w");
    let sync_run_id = s.start_sync_run(a, Trigger::Manual, 1).await.unwrap();
    let batches = [("thing".to_string(), "[1]".to_string())];
    let new_key = [("cursor".to_string(), Some("1".to_string()))];
    let with_batches = Checkpoint {
        integration_id: a,
        sync_run_id,
        lease: Some(&held),
        batches: &batches,
        state: &[],
        max_state_keys: 10,
    };
    // A new state key's row also waits for its integration (a foreign key).
    let state_only = Checkpoint { batches: &[], state: &new_key, ..with_batches };
    for checkpoint in [&with_batches, &state_only] {
        write_during_deletion(s, a, &[("jobs", job.id)], s.commit_checkpoint(checkpoint)).await;
    }
    assert_eq!(s.batches(a, BatchSelection::Pending, 0, 10).await.unwrap().len(), 1);
    assert_eq!(s.state_value(a, "cursor").await.unwrap().as_deref(), Some("1"));
}

/// Run `write` on PostgreSQL while a deletion of integration `id` is under
/// way: the deletion holds the integration's row, and its cascade takes
/// `rows` (table, id) next. The write must wait for the deletion holding
/// none of them: had it taken one before the integration, each would wait
/// for the other, and PostgreSQL would abort one. On SQLite (one writer)
/// the write just runs.
async fn write_during_deletion<T>(
    s: &Store,
    id: i64,
    rows: &[(&str, i64)],
    write: impl std::future::Future<Output = anyhow::Result<T>>,
) -> T {
    if s.backend() == inlet::store::Backend::Sqlite {
        return write.await.unwrap();
    }
    let mut deletion = s.pool().begin().await.unwrap();
    sqlx::query("SELECT id FROM integrations WHERE id = $1 FOR UPDATE").bind(id).execute(&mut *deletion).await.unwrap();
    tokio::pin!(write);
    let waited = tokio::time::timeout(std::time::Duration::from_millis(300), &mut write).await;
    assert!(waited.is_err(), "the write waits for the deletion");
    sqlx::query("SET LOCAL lock_timeout = '3s'").execute(&mut *deletion).await.unwrap();
    for (table, row) in rows {
        let take = format!("SELECT id FROM {table} WHERE id = $1 FOR UPDATE");
        let taken = sqlx::query(sqlx::AssertSqlSafe(take)).bind(row).execute(&mut *deletion).await;
        assert!(taken.is_ok(), "the waiting write holds nothing the deletion needs: {table} {row}: {taken:?}");
    }
    deletion.rollback().await.unwrap();
    write.await.expect("the write goes on once the deletion is given up")
}

conformance!(run_lock_order, runs_start_and_end_taking_their_integration_before_their_job_and_run);
async fn runs_start_and_end_taking_their_integration_before_their_job_and_run(b: Backend) {
    use inlet::store::integrations::DueAtStart;
    use inlet::store::run_batches::{Recorded, RunCompletion, RunStart};
    let s = &b.store;
    // An operator's run of an integration due in a minute: its start turns
    // the pending run into the running one and meets the due time.
    let a = integration(s, "a", Some(START + 60_000)).await;
    let TriggerOutcome::Queued { job_id, run_id } = s.request_run(&fetch_job(a, START), 0).await.unwrap() else {
        panic!("queued");
    };
    let job = s.claim_jobs(Queue::Fetch, "w", 30_000, 1).await.unwrap().remove(0);
    let fetch_start = || RunStart {
        integration_id: a,
        queue: Queue::Fetch,
        trigger: Trigger::Manual,
        attempt: 1,
        job_id: Some(job_id),
        pending_run_id: Some(run_id),
        due_at_start: Some(DueAtStart { read: START + 60_000, schedule_version: 0, next: START + 900_000 }),
    };
    let (runs, started_at) =
        write_during_deletion(s, a, &[("sync_runs", run_id)], s.start_runs(&[fetch_start()])).await;
    assert_eq!(runs, [run_id]);
    assert_eq!(s.integration(a).await.unwrap().unwrap().next_due_at, None, "the start met the due time");
    // Its end deletes the job, finishes the run, sets the next due time and
    // queues the processing of what it stored.
    let ended = RunCompletion {
        then_process: Some(NewJob { queue: Queue::Process, ..fetch_job(a, START) }),
        ..fetch_succeeded(run_id, JobLease::of(&job, "w"), a, started_at, START + 900_000)
    };
    let ending = s.complete_runs(std::slice::from_ref(&ended));
    let recorded = write_during_deletion(s, a, &[("jobs", job_id), ("sync_runs", run_id)], ending).await;
    assert_eq!(recorded, [Recorded::Finished { paused: None }]);
    assert_eq!(s.integration(a).await.unwrap().unwrap().next_due_at, Some(START + 900_000));
    let queued: Vec<Queue> = s.integration_jobs(a).await.unwrap().iter().map(|j| j.queue).collect();
    assert_eq!(queued, [Queue::Process]);

    // Processing's end writes no integration, but holds it all the same: a
    // group's deletion takes its integrations' jobs one integration after
    // another, and a batch of ends takes its jobs in one statement.
    let processing = s.claim_jobs(Queue::Process, "w", 30_000, 1).await.unwrap().remove(0);
    let start = RunStart {
        queue: Queue::Process,
        job_id: Some(processing.id),
        pending_run_id: None,
        due_at_start: None,
        ..fetch_start()
    };
    let (runs, started_at) = s.start_runs(&[start]).await.unwrap();
    let ended = RunCompletion {
        end: None,
        then_process: None,
        ..fetch_succeeded(runs[0], JobLease::of(&processing, "w"), a, started_at, 0)
    };
    let ending = s.complete_runs(std::slice::from_ref(&ended));
    let recorded = write_during_deletion(s, a, &[("jobs", processing.id), ("sync_runs", runs[0])], ending).await;
    assert_eq!(recorded, [Recorded::Finished { paused: None }]);

    // A fetch in the CLI that ends unrecorded lets its job go and owes its
    // integration the due time it may have met.
    let c = integration(s, "c", None).await;
    let args = JobArgs::new(Trigger::Manual);
    let cli = s.claim_integration(c, Queue::Fetch, &args, "cli", 30_000).await.unwrap().unwrap();
    let ending = s.end_unrecorded_fetch(&cli, c, START + 1_000);
    assert!(write_during_deletion(s, c, &[("jobs", cli.job_id)], ending).await, "the lease was held");
    assert_eq!(s.integration(c).await.unwrap().unwrap().next_due_at, Some(START + 1_000));
}

/// Event `e{id}` at `at`, of kind `even` or `odd` by its number.
fn event(id: usize, at: i64) -> EventRecord {
    EventRecord {
        external_id: format!("e{id}"),
        kind: if id.is_multiple_of(2) { "even" } else { "odd" }.into(),
        occurred_at: at,
        actor: None,
        target: None,
        value: None,
        unit: None,
        data: "{}".into(),
    }
}

/// Store `records` as a plugin's run would: a committed batch, processed.
async fn store_batch(s: &Store, integration_id: i64, records: Records) {
    s.commit_checkpoint(&inlet::store::raw_batches::Checkpoint {
        integration_id,
        sync_run_id: s.start_sync_run(integration_id, Trigger::Manual, 1).await.unwrap(),
        lease: None,
        batches: &[("events".into(), "[]".into())],
        state: &[],
        max_state_keys: 10,
    })
    .await
    .unwrap();
    let batch = s.batches(integration_id, BatchSelection::Pending, 0, 10).await.unwrap()[0].id;
    s.store_records(integration_id, batch, &records, None).await.unwrap();
}

/// Every record filter off but the integration, the kind and the start time.
fn filter(integration_id: i64, kind: Option<&str>, since: Option<i64>, limit: i64) -> RecordFilter<'_> {
    RecordFilter {
        integration_id: Some(integration_id),
        group_id: None,
        reader_group: None,
        kind,
        since,
        until: None,
        limit,
        newest_first: false,
    }
}

conformance!(record_pages, record_pages_follow_their_cursor_and_filters);
async fn record_pages_follow_their_cursor_and_filters(b: Backend) {
    let s = &b.store;
    let a = integration(s, "a", None).await;
    // Five events, two at the same instant: the cursor must not skip or repeat either.
    let events = vec![event(1, 10), event(2, 20), event(3, 20), event(4, 30), event(5, 40)];
    store_batch(s, a, Records { objects: vec![], events, blocks: vec![], deleted: vec![] }).await;
    let filter = |kind, since, limit| filter(a, kind, since, limit);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.events_page(&filter(None, None, 2), after).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|e| (e.event.occurred_at, e.id));
        seen.extend(page.into_iter().map(|e| e.event.external_id));
    }
    assert_eq!(seen, ["e1", "e2", "e3", "e4", "e5"]);
    // Newest first, pages of 2: the same events backwards, ties by id.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = s.events_page(&RecordFilter { newest_first: true, ..filter(None, None, 2) }, before).await.unwrap();
        if page.is_empty() {
            break;
        }
        before = page.last().map(|e| (e.event.occurred_at, e.id));
        seen.extend(page.into_iter().map(|e| e.event.external_id));
    }
    assert_eq!(seen, ["e5", "e4", "e3", "e2", "e1"]);
    // Objects and blocks page by id, either way; blocks also by their event.
    use inlet::domain::records::{BlockRecord, ObjectRecord};
    let object =
        |n: usize| ObjectRecord { external_id: format!("o{n}"), kind: "thing".into(), name: None, data: "{}".into() };
    let block = |n: usize, event: &str| BlockRecord {
        external_id: format!("b{n}"),
        kind: "detail".into(),
        event_id: event.into(),
        data: "{}".into(),
    };
    let records = Records {
        objects: (1..=3).map(object).collect(),
        events: vec![],
        blocks: vec![block(1, "e1"), block(2, "e2"), block(3, "e1")],
        deleted: vec![],
    };
    store_batch(s, a, records).await;
    let newest = RecordFilter { newest_first: true, ..filter(None, None, 2) };
    let first = s.objects_page(&newest, None).await.unwrap();
    let rest = s.objects_page(&newest, first.last().map(|o| o.id)).await.unwrap();
    let objects: Vec<String> = first.iter().chain(&rest).map(|o| o.external_id.clone()).collect();
    assert_eq!(objects, ["o3", "o2", "o1"]);
    let blocks = |filter, event| async move {
        let page = s.blocks_page(&filter, event, None).await.unwrap();
        page.into_iter().map(|b| b.external_id).collect::<Vec<_>>()
    };
    assert_eq!(blocks(filter(None, None, 10), None).await, ["b1", "b2", "b3"]);
    assert_eq!(blocks(RecordFilter { newest_first: true, ..filter(None, None, 10) }, Some("e1")).await, ["b3", "b1"]);
    let odd = s.events_page(&filter(Some("odd"), Some(20), 10), None).await.unwrap();
    assert_eq!(odd.iter().map(|e| e.event.external_id.as_str()).collect::<Vec<_>>(), ["e3", "e5"]);
    let other = RecordFilter { integration_id: Some(a + 1), ..filter(None, None, 10) };
    assert!(s.events_page(&other, None).await.unwrap().is_empty());
    // A group's records: every integration of it, no other group's.
    let group = s.integration(a).await.unwrap().unwrap().group_id;
    let by_group = RecordFilter { integration_id: None, group_id: Some(group), ..filter(None, None, 10) };
    assert_eq!(s.events_page(&by_group, None).await.unwrap().len(), 5);
    let elsewhere = RecordFilter { group_id: Some(group + 1), ..by_group };
    assert!(s.events_page(&elsewhere, None).await.unwrap().is_empty());
    // A task's group reads its own records and those granted to it, no others.
    let none = inlet::store::groups::Credentials::default();
    let stranger = s.insert_group("digest", "stranger", &none).await.unwrap();
    let reader = s.insert_group_reading("digest", "reader", &none, &[group]).await.unwrap();
    assert_eq!(s.record_grants(reader).await.unwrap(), [group]);
    let read_by = |reader| RecordFilter { integration_id: None, reader_group: Some(reader), ..filter(None, None, 10) };
    assert_eq!(s.events_page(&read_by(reader), None).await.unwrap().len(), 5);
    assert!(s.events_page(&read_by(stranger), None).await.unwrap().is_empty());
    assert_eq!(s.objects_page(&read_by(stranger), None).await.unwrap().len(), 0);
}

conformance!(event_changes, the_event_change_feed_misses_no_late_changed_or_deleted_event);
async fn the_event_change_feed_misses_no_late_changed_or_deleted_event(b: Backend) {
    use inlet::domain::records::{RecordClass, Tombstone};
    use inlet::store::records::FeedCursor;
    let s = &b.store;
    let a = integration(s, "a", None).await;
    // Follow the feed from `after` in pages of two: the ids read (deleted
    // ones marked) and the cursor to go on from.
    let follow = |mut after: Option<FeedCursor>| async move {
        let mut seen = Vec::new();
        loop {
            let page = s.event_changes_page(&filter(a, None, None, 3), after).await.unwrap().unwrap();
            for (_, position) in &page.changes {
                assert!(after.is_none_or(|after| *position > after.position), "the feed went back");
            }
            let full = page.changes.len() == 2;
            seen.extend(feed_names(page.changes));
            after = Some(page.next);
            if !full {
                return (seen, after);
            }
        }
    };
    // The changes after `after`, once there are some: on PostgreSQL the feed
    // waits for every older transaction of the server to end, and tests of
    // other databases share it.
    let changes_after = |after: Option<FeedCursor>| async move {
        support::eventually(20, "changes after the cursor", || async move {
            let (seen, cursor) = follow(after).await;
            (!seen.is_empty()).then_some((seen, cursor))
        })
        .await
    };
    let batch = |events, deleted| Records { objects: vec![], events, blocks: vec![], deleted };
    store_batch(s, a, batch(vec![event(1, 100), event(2, 200), event(3, 300)], vec![])).await;
    let (seen, cursor) = changes_after(None).await;
    assert_eq!(seen, ["e1", "e2", "e3"]);

    // Later: an event with an older time (a re-sent period), a changed one,
    // one deleted upstream, and one sent again unchanged (not a change).
    let mut changed = event(1, 100);
    changed.data = r#"{"corrected":true}"#.into();
    let gone = Tombstone { class: RecordClass::Event, kind: "even".into(), external_id: "e2".into() };
    store_batch(s, a, batch(vec![event(4, 50), changed, event(3, 300)], vec![gone])).await;
    let (seen, cursor) = changes_after(cursor).await;
    assert_eq!(seen, ["e4", "e1", "e2 deleted"], "each change once, in the order written");
    // Time order's cursor, at the newest event read, never sees e4.
    let last = s.events_page(&filter(a, None, None, 10), None).await.unwrap().pop().unwrap();
    let after_last = s.events_page(&filter(a, None, None, 10), Some((last.event.occurred_at, last.id))).await;
    assert!(after_last.unwrap().is_empty(), "in time order e4 is behind the cursor");
    assert_eq!(follow(cursor).await.0, Vec::<String>::new(), "nothing changed since");

    // The newest changes deleted with their integration: the numbers they
    // held are not given out again, or a cursor past them would miss the next.
    let b2 = integration(s, "b", None).await;
    store_batch(s, b2, batch(vec![event(6, 600)], vec![])).await;
    let everything = |after| async move {
        let filter = RecordFilter { integration_id: None, ..filter(a, None, None, 100) };
        s.event_changes_page(&filter, after).await.unwrap().unwrap().changes
    };
    let global = support::eventually(20, "b's change", || async move {
        let page = everything(cursor).await;
        page.last().map(|(_, position)| *position)
    })
    .await;
    assert!(s.delete_integration(b2).await.unwrap());
    store_batch(s, a, batch(vec![event(7, 700)], vec![])).await;
    let after_delete = support::eventually(20, "a's change after b went", || async move {
        let seen = feed_names(everything(Some(FeedCursor::at(global))).await);
        seen.contains(&"e7".to_string()).then_some(seen)
    })
    .await;
    assert_eq!(after_delete, ["e6 deleted", "e7"], "b's event went with b, then a's next change");
    let (_, cursor) = changes_after(cursor).await;

    if s.backend() == inlet::store::Backend::Postgres {
        // A transaction that began before a change and is still open may yet
        // commit one with an earlier place: the feed holds later changes
        // back until it ends, rather than let its reader's cursor pass it.
        let mut open = s.pool().begin().await.unwrap();
        let xact = "SELECT CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT)";
        sqlx::query(xact).execute(&mut *open).await.unwrap();
        store_batch(s, a, batch(vec![event(5, 500)], vec![])).await;
        assert_eq!(follow(cursor).await.0, Vec::<String>::new(), "held back while an older transaction is open");
        open.commit().await.unwrap();
        assert_eq!(changes_after(cursor).await.0, ["e5"]);
    }
}

/// The events of a change feed's page, those deleted marked.
fn feed_names(page: Vec<(inlet::store::records::EventRow, inlet::store::records::ChangePosition)>) -> Vec<String> {
    let mark = |deleted| if deleted { " deleted" } else { "" };
    page.into_iter().map(|(e, _)| format!("{}{}", e.event.external_id, mark(e.deleted))).collect()
}

conformance!(feed_windows, the_change_feed_tells_a_time_window_of_events_moved_out_of_it);
async fn the_change_feed_tells_a_time_window_of_events_moved_out_of_it(b: Backend) {
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let batch = |events| Records { objects: vec![], events, blocks: vec![], deleted: vec![] };
    let listed = |page: &[(inlet::store::records::EventRow, _)]| {
        page.iter().map(|(e, _)| format!("{} at {}", e.event.external_id, e.event.occurred_at)).collect::<Vec<_>>()
    };
    store_batch(s, a, batch(vec![event(1, 150), event(2, 250), event(3, 50)])).await;
    let window = RecordFilter { until: Some(200), ..filter(a, None, Some(100), 100) };
    let read = changes_after(s, &window, None, 1).await;
    assert_eq!(listed(&read), ["e1 at 150"]);
    let cursor = read.last().map(|(_, position)| *position);

    // Re-dated: e1 out of the window, e3 into it. The window's reader is
    // told of both, e1 with its new time, so it drops e1.
    store_batch(s, a, batch(vec![event(1, 20), event(3, 120)])).await;
    assert_eq!(listed(&changes_after(s, &window, cursor, 2).await), ["e1 at 20", "e3 at 120"]);
    // Changed again out there, before that reader read the move: still told.
    let mut changed = event(1, 30);
    changed.data = r#"{"note":"again"}"#.into();
    store_batch(s, a, batch(vec![changed])).await;
    let moved = changes_after(s, &window, cursor, 2).await;
    assert_eq!(listed(&moved), ["e3 at 120", "e1 at 30"]);
    // In time order, the window holds what is in it now.
    let now_in = s.events_page(&window, None).await.unwrap();
    assert_eq!(now_in.iter().map(|e| e.event.external_id.as_str()).collect::<Vec<_>>(), ["e3"]);

    // Deleted with their integration: the window's reader is told of the
    // two that were ever in it, not of e2.
    let cursor = moved.last().map(|(_, position)| *position);
    assert!(s.delete_integration(a).await.unwrap());
    assert_eq!(feed_names(changes_after(s, &window, cursor, 2).await), ["e1 deleted", "e3 deleted"]);
}

conformance!(feed_of_deletions, the_event_change_feed_tells_of_events_deleted_with_their_integration_or_group);
async fn the_event_change_feed_tells_of_events_deleted_with_their_integration_or_group(b: Backend) {
    use inlet::domain::records::{RecordClass, Tombstone};
    use inlet::store::groups::{ConfirmedIntegrations, GroupDeletion};
    use inlet::store::records::FeedCursor;
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let kept = integration(s, "kept", None).await;
    let group = s.integration(a).await.unwrap().unwrap().group_id;
    let reader = s.insert_group_reading("digest", "reader", &Credentials::default(), &[group]).await.unwrap();
    let batch = |events, deleted| Records { objects: vec![], events, blocks: vec![], deleted };
    let mut personal = event(1, 100);
    (personal.actor, personal.data) = (Some("Jo".into()), r#"{"amount":5}"#.into());
    store_batch(s, a, batch(vec![personal, event(2, 200)], vec![])).await;
    // One deleted upstream already: its reader may not have read that yet.
    let gone = Tombstone { class: RecordClass::Event, kind: "even".into(), external_id: "e2".into() };
    store_batch(s, a, batch(vec![], vec![gone])).await;
    store_batch(s, kept, batch(vec![event(3, 300)], vec![])).await;

    let by_integration = filter(a, None, None, 100);
    let by_group = RecordFilter { integration_id: None, group_id: Some(group), ..filter(a, None, None, 100) };
    let by_reader = RecordFilter { integration_id: None, reader_group: Some(reader), ..filter(a, None, None, 100) };
    let so_far = changes_after(s, &by_group, None, 3).await;
    assert_eq!(feed_names(so_far.clone()), ["e1", "e2 deleted", "e3"]);
    let cursor = so_far.last().map(|(_, position)| *position);

    // Deleted with its integration: each event of it, once, as deleted, for
    // every reader of it, carrying what it was and not what it held.
    assert!(s.delete_integration(a).await.unwrap());
    for (filter, name) in [(&by_integration, "integration"), (&by_group, "group"), (&by_reader, "reader")] {
        let page = changes_after(s, filter, cursor, 2).await;
        assert!(page.iter().all(|(e, position)| e.integration_id == a && Some(*position) > cursor));
        let (e1, _) = &page[0];
        assert_eq!((e1.event.kind.as_str(), e1.event.occurred_at), ("odd", 100), "{name}");
        assert_eq!((&e1.event.actor, &e1.event.data), (&None, &serde_json::json!({})), "{name}");
        assert_eq!(feed_names(page), ["e1 deleted", "e2 deleted"], "{name}");
    }
    // The feed's filters apply to them as to any event.
    let odd = RecordFilter { kind: Some("odd"), ..filter(a, None, None, 100) };
    let odd_page = s.event_changes_page(&odd, cursor.map(FeedCursor::at)).await.unwrap().unwrap();
    assert_eq!(feed_names(odd_page.changes), ["e1 deleted"]);
    let stranger = s.insert_group("test", "stranger", &Credentials::default()).await.unwrap();
    let elsewhere = RecordFilter { group_id: Some(stranger), ..by_group };
    let elsewhere_page = s.event_changes_page(&elsewhere, cursor.map(FeedCursor::at)).await.unwrap().unwrap();
    assert!(elsewhere_page.changes.is_empty(), "another group's feed");
    let live = s.events_page(&RecordFilter { integration_id: None, ..filter(a, None, None, 100) }, None).await;
    assert_eq!(live.unwrap().len(), 1, "only kept's event is live");

    // Deleted with its group: the rest of the group's events.
    let cursor = changes_after(s, &by_group, cursor, 2).await.last().map(|(_, position)| *position);
    assert_eq!(s.delete_group(group, ConfirmedIntegrations::All).await.unwrap(), GroupDeletion::Deleted);
    assert_eq!(feed_names(changes_after(s, &by_group, cursor, 1).await), ["e3 deleted"]);

    if s.backend() == inlet::store::Backend::Postgres {
        // An event written by a transaction still open as the deletion
        // begins is deleted with the integration when it commits: the
        // deletion waits for it, and lists it too.
        let late = integration(s, "late", None).await;
        let mut open = s.pool().begin().await.unwrap();
        sqlx::query(
            "INSERT INTO events (integration_id, kind, external_id, occurred_at, data, created_at, updated_at,
                                 change_xact, change_seq)
             VALUES ($1, 'odd', 'e9', 900, '{}', 0, 0, CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT),
                     nextval('events_change_seq'))",
        )
        .bind(late)
        .execute(&mut *open)
        .await
        .unwrap();
        let deleting = tokio::spawn({
            let s = s.clone();
            async move { s.delete_integration(late).await.unwrap() }
        });
        support::eventually(20, "the deletion waiting for the open write", || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(s.pool())
            .await
            .unwrap();
            (waiting > 0).then_some(())
        })
        .await;
        open.commit().await.unwrap();
        assert!(deleting.await.unwrap());
        let by_late = filter(late, None, None, 100);
        assert_eq!(feed_names(changes_after(s, &by_late, None, 1).await), ["e9 deleted"]);
    }
}

conformance!(pruned_deletions, deleted_events_are_pruned_after_their_retention_and_cursors_before_them_expire);
async fn deleted_events_are_pruned_after_their_retention_and_cursors_before_them_expire(b: Backend) {
    use inlet::domain::records::{RecordClass, Tombstone};
    use inlet::store::records::FeedCursor;
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let other = integration(s, "other", None).await;
    let batch = |events, deleted| Records { objects: vec![], events, blocks: vec![], deleted };
    let everything = &RecordFilter { integration_id: None, ..filter(a, None, None, 2) };
    // A page of one change of every integration's, and where it leaves its reader.
    let one = |after: Option<FeedCursor>| async move {
        let page = s.event_changes_page(everything, after).await.unwrap();
        page.map(|page| (feed_names(page.changes), page.next))
    };

    // A reader starts; then e2 is deleted upstream at START, and e3 with
    // its integration a second later.
    store_batch(s, a, batch(vec![event(1, 100), event(2, 200)], vec![])).await;
    // On PostgreSQL the feed shows them once every older transaction of the
    // server has ended, other tests' too.
    changes_after(s, &RecordFilter { limit: 100, ..*everything }, None, 2).await;
    let (page, early_e1) = one(None).await.unwrap();
    assert_eq!(page, ["e1"], "pages of one");
    // And a reader of a's odd events only, which none of the deletions touch.
    let odd = &filter(a, Some("odd"), None, 100);
    let quiet = s.event_changes_page(odd, None).await.unwrap().unwrap();
    assert_eq!(feed_names(quiet.changes), ["e1"]);
    let gone = Tombstone { class: RecordClass::Event, kind: "even".into(), external_id: "e2".into() };
    store_batch(s, a, batch(vec![], vec![gone])).await;
    b.clock.advance(1_000);
    store_batch(s, other, batch(vec![event(3, 300)], vec![])).await;
    assert!(s.delete_integration(other).await.unwrap());
    let all = changes_after(s, &RecordFilter { limit: 100, ..*everything }, None, 3).await;
    assert_eq!(feed_names(all.clone()), ["e1", "e2 deleted", "e3 deleted"]);
    let (read_e2, read_e3) = (all[1].1, all[2].1);
    assert_eq!(s.prune_deleted_events(START).await.unwrap(), 0, "none deleted before the retention's start");
    // It reads again, and its page (not full) takes it past both deletions.
    let quiet = s.event_changes_page(odd, Some(quiet.next)).await.unwrap().unwrap();
    assert!(quiet.changes.is_empty());
    assert_eq!(one(Some(early_e1)).await.unwrap().0, ["e2 deleted"], "no prune, no expiry");

    // The upstream deletion pruned: the reader that started before it and
    // has not read it must start again; one that read it goes on.
    assert_eq!(s.prune_deleted_events(START + 1).await.unwrap(), 1);
    assert_eq!(one(Some(early_e1)).await.unwrap_err().pruned_through, read_e2, "expired");
    assert_eq!(one(Some(FeedCursor::at(read_e2))).await.unwrap().0, ["e3 deleted"]);
    // From the start, page by page, it is not listed, and nothing expires.
    let (page, again_e1) = one(None).await.unwrap();
    assert_eq!(page, ["e1"]);
    let (page, again_e3) = one(Some(again_e1)).await.unwrap();
    assert_eq!(page, ["e3 deleted"]);
    assert_eq!(one(Some(again_e3)).await.unwrap().0, Vec::<String>::new());
    assert_eq!(s.events_page(everything, None).await.unwrap().len(), 1, "the live event stays");

    // The deletion with the integration pruned: a reader that started
    // before it and stopped before it expires. One that started after it
    // (however slowly it reads), that read it, or whose filter never had
    // it, goes on.
    assert_eq!(s.prune_deleted_events(START + 1_001).await.unwrap(), 1);
    assert_eq!(one(Some(FeedCursor::at(read_e2))).await.unwrap_err().pruned_through, read_e3);
    assert_eq!(one(Some(again_e1)).await.unwrap().0, Vec::<String>::new(), "started after the deletion");
    assert_eq!(one(Some(again_e3)).await.unwrap().0, Vec::<String>::new());
    let quiet = s.event_changes_page(odd, Some(quiet.next)).await.unwrap().map(|page| feed_names(page.changes));
    assert_eq!(quiet, Ok(vec![]), "a quiet filter's reader is not expired by others' deletions");
    assert_eq!(one(None).await.unwrap().0, ["e1"]);
    assert_eq!(s.prune_deleted_events(START + 1_001).await.unwrap(), 0);
}

/// The feed's changes after `after`, once there are `expected` of them: on
/// PostgreSQL the feed waits for every older transaction of the server to
/// end, and tests of other databases share it.
async fn changes_after(
    s: &Store,
    filter: &RecordFilter<'_>,
    after: Option<inlet::store::records::ChangePosition>,
    expected: usize,
) -> Vec<(inlet::store::records::EventRow, inlet::store::records::ChangePosition)> {
    support::eventually(20, "the feed's changes", || async move {
        let page = s
            .event_changes_page(filter, after.map(inlet::store::records::FeedCursor::at))
            .await
            .unwrap()
            .unwrap()
            .changes;
        (page.len() >= expected).then_some(page)
    })
    .await
}

conformance!(joined_requests, a_request_that_joins_a_waiting_job_keeps_what_it_asked_for);
async fn a_request_that_joins_a_waiting_job_keeps_what_it_asked_for(b: Backend) {
    use inlet::store::jobs::ReprocessScope;
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let job = |queue, args| NewJob { queue, integration_id: a, args, max_attempts: 3, run_at: START };
    let enqueue = |queue, args| async move { s.enqueue_job(&job(queue, args)).await.unwrap() };
    let args_of = |id| async move { s.job(id).await.unwrap().unwrap().args };
    // A backfill asked for while a scheduled fetch waits: one job, which backfills.
    let scheduled = enqueue(Queue::Fetch, JobArgs::new(Trigger::Schedule)).await;
    let backfill = JobArgs { backfill_since: Some(START - 1000), ..JobArgs::new(Trigger::Backfill) };
    assert_eq!(enqueue(Queue::Fetch, backfill.clone()).await, scheduled, "joined the waiting job");
    assert_eq!(args_of(scheduled).await, backfill);
    assert_eq!(enqueue(Queue::Fetch, JobArgs::new(Trigger::Manual)).await, scheduled);
    assert_eq!(args_of(scheduled).await, backfill, "a plain request does not undo the backfill");
    // A reprocess joins a waiting process job, and a wider one widens it.
    let reprocess = |since| JobArgs { reprocess: Some(ReprocessScope { since }), ..JobArgs::new(Trigger::Reprocess) };
    let process = enqueue(Queue::Process, JobArgs::new(Trigger::Manual)).await;
    assert_eq!(enqueue(Queue::Process, reprocess(Some(START))).await, process);
    assert_eq!(args_of(process).await, reprocess(Some(START)));
    enqueue(Queue::Process, reprocess(None)).await;
    enqueue(Queue::Process, reprocess(Some(START + 5))).await;
    assert_eq!(args_of(process).await, reprocess(None), "all kept batches, the widest asked for");
}

conformance!(process_only_runs, a_webhook_run_counts_as_a_success_but_leaves_the_schedule_and_fetch_history);
async fn a_webhook_run_counts_as_a_success_but_leaves_the_schedule_and_fetch_history(b: Backend) {
    let s = &b.store;
    let a = integration(s, "a", Some(START + 60_000)).await;
    let end = |success| RunEnd {
        started_at: START,
        success,
        fetched: false,
        next_due_at: Some(START + 900_000),
        next_due_reason: None,
        schedule_version: 0,
        pause_after_failures: 1,
        pause_reason: None,
    };
    s.record_run_finished(a, &end(true)).await.unwrap();
    let after = s.integration(a).await.unwrap().unwrap();
    assert_eq!(after.last_success_at, Some(START));
    assert_eq!((after.last_fetched_at, after.next_due_at), (None, Some(START + 60_000)), "schedule untouched");
    // A failed webhook run neither extends the streak nor pauses, even at a threshold of 1.
    assert_eq!(s.record_run_finished(a, &end(false)).await.unwrap(), None);
    let after = s.integration(a).await.unwrap().unwrap();
    assert_eq!((after.consecutive_failures, after.paused_reason), (0, None));
    // A fetch moves both.
    s.record_run_finished(a, &RunEnd { fetched: true, ..end(true) }).await.unwrap();
    let after = s.integration(a).await.unwrap().unwrap();
    assert_eq!((after.last_fetched_at, after.next_due_at), (Some(START), Some(START + 900_000)));
}

conformance!(log_places, a_runs_log_lines_written_again_at_their_places_are_kept_once);
async fn a_runs_log_lines_written_again_at_their_places_are_kept_once(b: Backend) {
    use inlet::store::sync_runs::LogLine;
    let s = &b.store;
    let a = integration(s, "a", None).await;
    let run = s.start_sync_run(a, Trigger::Manual, 1).await.unwrap();
    let line = |n: i64| LogLine { at: START + n, level: "info".into(), message: format!("line {n}") };
    // Written while the run ran, by a write whose outcome the run never
    // learnt (its deadline cut it off): the run's end writes them again,
    // with those after them.
    s.append_sync_run_logs(run, 0, &[line(1), line(2)]).await.unwrap();
    s.append_sync_run_logs(run, 0, &[line(1), line(2), line(3)]).await.unwrap();
    s.append_sync_run_logs(run, 3, &[line(4)]).await.unwrap();
    let messages: Vec<String> = s.sync_run_logs(run).await.unwrap().into_iter().map(|l| l.message).collect();
    assert_eq!(messages, ["line 1", "line 2", "line 3", "line 4"]);
}

conformance!(deleting_history, deleting_an_integration_or_its_group_deletes_its_runs_and_their_logs);
async fn deleting_an_integration_or_its_group_deletes_its_runs_and_their_logs(b: Backend) {
    use inlet::store::groups::{ConfirmedIntegrations, GroupDeletion};
    use inlet::store::sync_runs::LogLine;
    let s = &b.store;
    let (a, kept) = (integration(s, "a", None).await, integration(s, "kept", None).await);
    let run = s.start_sync_run(a, Trigger::Manual, 1).await.unwrap();
    let line = LogLine { at: START, level: "info".into(), message: "fetched".into() };
    s.append_sync_run_logs(run, 0, &[line]).await.unwrap();
    let kept_run = s.start_sync_run(kept, Trigger::Manual, 1).await.unwrap();

    assert!(s.delete_integration(a).await.unwrap());
    assert!(s.sync_run(run).await.unwrap().is_none(), "the integration's run went with it");
    assert!(s.sync_run_logs(run).await.unwrap().is_empty(), "and the run's log lines");
    assert!(s.sync_run(kept_run).await.unwrap().is_some(), "another integration's run stays");

    // A deletion confirmed for no integrations, or for another number of
    // them than the group has, deletes nothing.
    let group = s.integration(kept).await.unwrap().unwrap().group_id;
    assert_eq!(s.delete_group(group, ConfirmedIntegrations::None).await.unwrap(), GroupDeletion::HasIntegrations(1));
    assert_eq!(
        s.delete_group(group, ConfirmedIntegrations::Count(2)).await.unwrap(),
        GroupDeletion::HasIntegrations(1)
    );
    assert!(s.sync_run(kept_run).await.unwrap().is_some());
    assert_eq!(s.delete_group(group, ConfirmedIntegrations::Count(1)).await.unwrap(), GroupDeletion::Deleted);
    assert!(s.sync_run(kept_run).await.unwrap().is_none(), "deleting the group deleted its integrations' runs");
}

conformance!(quotas, a_quota_allows_its_requests_per_sliding_period_and_no_more);
async fn a_quota_allows_its_requests_per_sliding_period_and_no_more(b: Backend) {
    use inlet::store::quota_spends::QuotaSpend;
    const DAY: i64 = 86_400_000;
    let s = &b.store;
    let group = s.insert_group("test", "quotas", &Credentials::default()).await.unwrap();
    for _ in 0..4 {
        assert_eq!(s.spend_quota(group, "balances/acc-1", 4, DAY).await.unwrap(), QuotaSpend::Spent);
        b.clock.advance(3_600_000);
    }
    let spent_out = s.spend_quota(group, "balances/acc-1", 4, DAY).await.unwrap();
    assert_eq!(spent_out, QuotaSpend::Exhausted { until: START + DAY }, "free again a day after the first");
    assert_eq!(s.spend_quota(group, "balances/acc-2", 4, DAY).await.unwrap(), QuotaSpend::Spent, "another key");
    b.clock.advance(DAY - 4 * 3_600_000);
    assert_eq!(s.spend_quota(group, "balances/acc-1", 4, DAY).await.unwrap(), QuotaSpend::Spent, "the first expired");
    let next = s.spend_quota(group, "balances/acc-1", 4, DAY).await.unwrap();
    assert_eq!(next, QuotaSpend::Exhausted { until: START + 3_600_000 + DAY }, "a sliding window, not a calendar day");

    // Concurrent spenders (the pool's connections) take exactly what is left.
    let mut spenders = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let s = s.clone();
        spenders.spawn(async move { s.spend_quota(group, "sheets", 6, 60_000).await.unwrap() });
    }
    let outcomes = spenders.join_all().await;
    let spent = outcomes.iter().filter(|o| **o == QuotaSpend::Spent).count();
    assert_eq!(spent, 6, "{outcomes:?}");
}

/// PostgreSQL plans a claim from statistics, and a queue table's are stale at
/// every burst: a claim planned when 4 jobs ran compared each of 2,000
/// candidates with every running job (7 s a claim at 5,000 jobs a second).
/// Whatever the statistics, the running jobs are read once, into a hash.
#[tokio::test(flavor = "multi_thread")]
async fn on_postgres_a_claim_reads_the_running_jobs_once_whatever_the_statistics() {
    let b = postgres().await;
    let s = &b.store;
    for n in 0..4 {
        let id = integration(s, &format!("quiet {n}"), None).await;
        s.enqueue_job(&fetch_job(id, START)).await.unwrap();
    }
    s.claim_jobs(Queue::Fetch, "worker", 30_000, 2).await.unwrap();
    sqlx::query("ANALYZE jobs").execute(s.pool()).await.unwrap();
    let explain = format!("EXPLAIN {}", inlet::store::jobs::claim_statement(s.backend()));
    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(explain))
        .bind("worker")
        .bind(START + 30_000)
        .bind(START)
        .bind(Queue::Fetch.as_str())
        .bind(2_048i64)
        .fetch_all(s.pool())
        .await
        .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("hashed SubPlan"), "running jobs not read into a hash:\n{plan}");
    assert!(!plan.contains("Join Filter"), "rows compared with every row of a join:\n{plan}");
}

conformance!(listings, integration_and_group_listings_page_by_id_and_filter);
async fn integration_and_group_listings_page_by_id_and_filter(b: Backend) {
    use inlet::domain::group_status::GroupStatus;
    use inlet::store::groups::GroupFilter;
    use inlet::store::integrations::IntegrationFilter;
    let s = &b.store;
    let names = ["Monzo current", "monzo SAVINGS", "50% off", "a_b", "ab", "Health", "École!"];
    let mut ids = Vec::new();
    for name in names {
        ids.push(integration(s, name, None).await);
    }
    let other = s.insert_group("other", "Work account", &Credentials::default()).await.unwrap();
    let elsewhere = s
        .insert_integration(&NewIntegration {
            plugin_id: "other",
            instance_type: "things",
            group_id: other,
            name: "monzo elsewhere",
            config: "{}",
            schedule: None,
            first_due_at: None,
            paused_reason: None,
        })
        .await
        .unwrap();
    s.set_integration_paused(ids[1], Some(PauseReason::Operator), None).await.unwrap();

    // Pages of 3 by id, each starting after the last: every one once.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = s.integrations_page(&IntegrationFilter::default(), after, 3).await.unwrap();
        paged.extend(page.iter().map(|i| i.id));
        if page.len() < 3 {
            break;
        }
        after = page.last().map(|i| i.id);
    }
    assert_eq!(paged, [ids.clone(), vec![elsewhere]].concat());

    let matching = |filter: IntegrationFilter| async move {
        let page = s.integrations_page(&filter, None, 100).await.unwrap();
        page.into_iter().map(|i| i.id).collect::<Vec<_>>()
    };
    let named = |name: &str| IntegrationFilter { name_contains: Some(name.into()), ..Default::default() };
    assert_eq!(matching(named("MONZO")).await, [ids[0], ids[1], elsewhere], "any case");
    assert_eq!(matching(named("%")).await, [ids[2]], "% is a character, not a wildcard");
    assert_eq!(matching(named("a_")).await, [ids[3]], "_ is a character, not a wildcard");
    assert_eq!(matching(named("École!")).await, [ids[6]], "as typed, whatever the letters");
    let other_plugin = IntegrationFilter { plugin_id: Some("other".into()), ..Default::default() };
    assert_eq!(matching(other_plugin).await, [elsewhere]);
    let in_group =
        IntegrationFilter { group_id: Some(other), name_contains: Some("monzo".into()), ..Default::default() };
    assert_eq!(matching(in_group).await, [elsewhere], "filters combine");
    // By instance type: the Updates view's tasks, and all but them.
    use inlet::store::integrations::InstanceTypes;
    let types = |pairs: &[(&str, &str)]| pairs.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect();
    let of_types = |instance_types| IntegrationFilter { instance_types, ..Default::default() };
    let tasks = types(&[("other", "things"), ("test", "none such")]);
    assert_eq!(matching(of_types(InstanceTypes::Only(tasks))).await, [elsewhere]);
    assert_eq!(matching(of_types(InstanceTypes::AllBut(types(&[("other", "things")])))).await, ids);
    assert_eq!(matching(of_types(InstanceTypes::Only(vec![]))).await, Vec::<i64>::new(), "no types, none");
    assert_eq!(matching(of_types(InstanceTypes::AllBut(vec![]))).await.len(), 8, "all but none, all");
    assert_eq!(matching(IntegrationFilter { enabled: Some(false), ..Default::default() }).await, [ids[1]]);
    assert_eq!(matching(IntegrationFilter { enabled: Some(true), ..Default::default() }).await.len(), 7);
    let failed = RunEnd {
        started_at: START,
        success: false,
        fetched: true,
        next_due_at: None,
        next_due_reason: None,
        schedule_version: 0,
        pause_after_failures: 3,
        pause_reason: None,
    };
    s.record_run_finished(ids[4], &failed).await.unwrap();
    assert_eq!(matching(IntegrationFilter { failing: true, ..Default::default() }).await, [ids[4]]);
    let counts = s.integration_counts(&[other, other + 1000]).await.unwrap();
    assert_eq!(counts.into_iter().collect::<Vec<_>>(), [(other, 1)]);

    let group_ids = |filter: GroupFilter, after: Option<i64>, limit: i64| async move {
        s.groups_page(&filter, after, limit).await.unwrap().into_iter().map(|g| g.id).collect::<Vec<_>>()
    };
    let first = s.groups().await.unwrap()[0].id;
    assert_eq!(group_ids(GroupFilter::default(), None, 1).await, [first]);
    assert_eq!(group_ids(GroupFilter::default(), Some(first), 10).await, [other]);
    let work =
        GroupFilter { name_contains: Some("WORK".into()), plugin_id: Some("other".into()), ..Default::default() };
    assert_eq!(group_ids(work, None, 10).await, [other]);
    let (credentials, _) = s.group_credentials(other).await.unwrap();
    s.mark_group_needs_reconnect(other, credentials.version(), "refused").await.unwrap();
    let reconnect = GroupFilter { status: Some(GroupStatus::NeedsReconnect), ..Default::default() };
    assert_eq!(group_ids(reconnect, None, 10).await, [other]);
}

conformance!(api_tokens, two_revocations_at_once_keep_the_last_api_token);
async fn two_revocations_at_once_keep_the_last_api_token(b: Backend) {
    let s = &b.store;
    let a = s.insert_api_token("a", &"a".repeat(64)).await.unwrap();
    let c = s.insert_api_token("c", &"c".repeat(64)).await.unwrap();
    // On PostgreSQL, another transaction holds both rows while the two
    // revocations start, so that each reads while the other's token is there.
    let mut holder = None;
    if s.backend() == inlet::store::Backend::Postgres {
        let mut tx = s.pool().begin().await.unwrap();
        sqlx::query("SELECT id FROM api_tokens FOR UPDATE").execute(&mut *tx).await.unwrap();
        holder = Some(tx);
    }
    let revoke = |id| {
        let s = s.clone();
        tokio::spawn(async move { s.delete_api_token(id, true).await.unwrap() })
    };
    let (first, second) = (revoke(a), revoke(c));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    if let Some(holder) = holder {
        holder.commit().await.unwrap();
    }
    let revoked = [first.await.unwrap(), second.await.unwrap()];
    assert_eq!(revoked.iter().filter(|r| **r).count(), 1, "{revoked:?}");
    assert_eq!(s.api_token_count().await.unwrap(), 1, "the last token is kept");
}
