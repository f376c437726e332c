//! Durable jobs through the real binary: scheduled runs without anyone asking,
//! and a worker killed mid-run whose job is rescued and finished elsewhere.

mod chaos;
mod support;

use inlet::domain::error_class::ErrorClass;
use inlet::domain::pause_reason::PauseReason;
use inlet::domain::queue::Queue;
use inlet::domain::trigger::Trigger;
use inlet::store::sync_runs::RunStatus;
use serde_json::json;
use support::{Inlet, eventually, terminate, test_plugin};

async fn misbehave_integration(inlet: &Inlet, instance_type: &str, schedule: &[&str]) -> String {
    let group = inlet.json(&["groups", "add", "misbehave", "--name", "test", "--json"]).await["id"].to_string();
    let mut args = vec!["integrations", "add", "misbehave", instance_type, "--group", &group, "--json"];
    args.extend_from_slice(schedule);
    inlet.json(&args).await["id"].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_runs_a_due_integration_on_its_own_and_schedules_the_next() {
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]);
    let id = misbehave_integration(&inlet, "ok", &["--every", "1h"]).await;
    let mut serve = inlet.spawn(&["serve", "--listen", "127.0.0.1:0"]).await;

    let store = inlet.store().await;
    let integration_id: i64 = id.parse().unwrap();
    let run = eventually(30, "the first scheduled run", || async {
        store.sync_runs(integration_id, 1).await.unwrap().into_iter().find(|r| r.finished_at.is_some())
    })
    .await;
    assert_eq!(run.status.as_str(), "success", "{run:?}");
    assert_eq!(run.trigger, Trigger::Backfill, "a new integration's first run is a backfill");

    let listed = eventually(10, "the next due time", || async {
        let listed = inlet.json(&["schedule", "list", "--json"]).await;
        listed[0]["next_due_at"].as_i64().map(|_| listed)
    })
    .await;
    let row = &listed[0];
    assert_eq!(row["schedule_summary"], "every hour");
    assert_eq!(row["status_label"], "Up to date");
    let next = row["next_due_at"].as_i64().unwrap();
    let started = store.integration(integration_id).await.unwrap().unwrap().last_started_at.unwrap();
    assert_eq!(next - started, 3_600_000, "an interval counts from the last start");
    serve.start_kill().unwrap();
    serve.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_of_a_killed_worker_is_rescued_and_completes_without_duplicates() {
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]).config("job_lease_seconds = 2\n");
    let id = misbehave_integration(&inlet, "slow", &["--manual"]).await;
    let integration_id: i64 = id.parse().unwrap();
    let queued = inlet.json(&["sync", &id, "--force", "--json"]).await;
    let job_id = queued[0]["job"].as_i64().unwrap();
    let store = inlet.store().await;
    // The queued run is in the history at once, waiting for a worker.
    let requested = store.sync_run(queued[0]["run"].as_i64().unwrap()).await.unwrap().unwrap();
    assert_eq!((requested.status, requested.integration_id), (RunStatus::Pending, integration_id));

    let mut first = inlet.spawn(&["worker", "--listen", "127.0.0.1:0"]).await;
    // Wait until the run has checkpointed its first batch, then kill the worker.
    eventually(30, "the first checkpoint", || async {
        let cursor = store.state_value(integration_id, "cursor").await.unwrap();
        (cursor.as_deref() == Some("thing-1")).then_some(())
    })
    .await;
    first.kill().await.unwrap(); // SIGKILL: no chance to clean up

    let killed = store.job(job_id).await.unwrap().unwrap();
    assert_eq!(killed.state.as_str(), "running", "the dead worker still holds the job");

    let mut second = inlet.spawn(&["worker", "--listen", "127.0.0.1:0"]).await;
    eventually(30, "the rescued job to complete", || async {
        store.job(job_id).await.unwrap().is_none().then_some(())
    })
    .await;

    eventually(30, "what it stored to be processed", || async {
        store.integration_jobs(integration_id).await.unwrap().is_empty().then_some(())
    })
    .await;
    let runs = store.sync_runs(integration_id, 10).await.unwrap();
    let runs: Vec<_> = runs.into_iter().filter(|r| r.queue == Queue::Fetch).collect();
    assert_eq!(runs[0].attempt, 2, "the killed attempt counted; the rescue ran the second");
    let statuses: Vec<(&str, Option<&str>)> =
        runs.iter().map(|r| (r.status.as_str(), r.error_class.map(|c| c.as_str()))).collect();
    assert_eq!(statuses, [("success", None), ("failed", Some("lease-expired"))], "newest first");

    let objects = store.objects(integration_id).await.unwrap();
    let ids: Vec<&str> = objects.iter().map(|o| o.external_id.as_str()).collect();
    assert_eq!(ids, ["thing-1", "thing-2"], "nothing lost, nothing duplicated");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM raw_batches WHERE integration_id = $1")
        .bind(integration_id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 2, "the rescued run resumed after the checkpoint instead of re-emitting");
    second.start_kill().unwrap();
    second.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workers_and_a_server_on_postgres_run_each_due_integration_exactly_once() {
    use inlet::store::groups::Credentials;

    let url = support::fresh_postgres_database().await;
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]).env("DATABASE_URL", &url);
    let store = inlet.store_at(&url).await;
    let group = store.insert_group("misbehave", "load", &Credentials::default()).await.unwrap();
    // 200 integrations, all due at the same instant, a few seconds from now.
    let due_at = store.now() + 4_000;
    let every_hour = inlet::schedule::Schedule::Interval { seconds: 3600 };
    let ids = chaos::scheduled_integrations(&store, group, &every_hour, 200, |_| due_at).await;

    let mut processes = vec![
        inlet.spawn(&["worker", "--listen", "127.0.0.1:0"]).await,
        inlet.spawn(&["worker", "--listen", "127.0.0.1:0"]).await,
        inlet.spawn(&["serve", "--listen", "127.0.0.1:0"]).await,
    ];
    // While the scheduled runs happen, ask for another run of every one of
    // them: those must wait for the running one, never run beside it.
    let wait = (due_at + 50 - store.now()).max(0) as u64;
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    let forced = inlet.json(&["sync", "--plugin", "misbehave", "--force", "--json"]).await;
    assert_eq!(forced.as_array().unwrap().len(), 200);

    let runs_total = eventually(90, "every queued job to finish", || async {
        let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state IN ('available', 'running')")
            .fetch_one(store.pool())
            .await
            .unwrap();
        let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sync_runs").fetch_one(store.pool()).await.unwrap();
        (open == 0).then_some(runs)
    })
    .await;
    for process in &mut processes {
        process.start_kill().unwrap();
        process.wait().await.unwrap();
    }

    assert!(runs_total > 200, "some forced runs must have queued behind running ones ({runs_total} runs)");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(store.pool()).await.unwrap();
    assert_eq!(left, 0, "every job completed (a completed job is deleted)");
    let jobs_run: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT job_id) FROM sync_runs WHERE job_id IS NOT NULL")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(runs_total, jobs_run, "every job ran exactly once");
    for id in ids {
        let mut all = store.sync_runs(id, 10).await.unwrap();
        assert!(all.iter().all(|r| r.status.as_str() == "success"), "integration {id}: {all:?}");
        // In the order they started: a forced run's row is created when it is
        // asked for, so it can have the lower id yet start second, behind a
        // scheduled run claimed just before the request but not started yet.
        all.sort_by_key(|r| (r.started_at, r.id));
        let (runs, processed): (Vec<_>, Vec<_>) = all.into_iter().partition(|r| r.queue == Queue::Fetch);
        assert!(!runs.is_empty() && runs.len() <= 2, "integration {id}: {} fetches", runs.len());
        assert_eq!(runs[0].trigger, Trigger::Backfill, "the scheduled first run of integration {id}");
        assert!(!processed.is_empty() && processed.len() <= runs.len(), "integration {id}: {processed:?}");
        // Neither two fetches nor two processing runs of one integration overlap.
        for pair in runs.windows(2).chain(processed.windows(2)) {
            let (earlier, later) = (&pair[0], &pair[1]);
            assert!(
                later.started_at.unwrap() >= earlier.finished_at.unwrap(),
                "integration {id}: runs {} and {} overlapped",
                earlier.id,
                later.id
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_running_job_finish_within_the_grace_period() {
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]);
    let id = misbehave_integration(&inlet, "slow", &["--manual"]).await;
    let job_id = inlet.json(&["sync", &id, "--force", "--json"]).await[0]["job"].as_i64().unwrap();
    let mut worker = inlet.spawn(&["worker", "--listen", "127.0.0.1:0"]).await;
    let store = inlet.store().await;
    eventually(30, "the run to start", || async {
        store.state_value(id.parse().unwrap(), "cursor").await.unwrap().map(|_| ())
    })
    .await;
    terminate(&worker);
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), worker.wait()).await.unwrap().unwrap();
    assert!(status.success(), "a clean shutdown exits 0: {status:?}");
    assert!(store.job(job_id).await.unwrap().is_none(), "the running job completed before the process exited");
    let run = &store.sync_runs(id.parse().unwrap(), 1).await.unwrap()[0];
    assert_eq!(run.status.as_str(), "success");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_hands_back_a_job_that_outlasts_the_grace_period() {
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]).config("shutdown_grace_seconds = 1\n");
    let id = misbehave_integration(&inlet, "slow", &["--manual"]).await;
    let integration_id: i64 = id.parse().unwrap();
    let job_id = inlet.json(&["sync", &id, "--force", "--json"]).await[0]["job"].as_i64().unwrap();
    let mut worker = inlet.spawn(&["worker", "--listen", "127.0.0.1:0"]).await;
    let store = inlet.store().await;
    eventually(30, "the run to start", || async {
        store.state_value(integration_id, "cursor").await.unwrap().map(|_| ())
    })
    .await;
    terminate(&worker);
    tokio::time::timeout(std::time::Duration::from_secs(20), worker.wait()).await.unwrap().unwrap();

    let job = store.job(job_id).await.unwrap().unwrap();
    assert_eq!((job.state.as_str(), job.attempt), ("available", 0), "released without spending the attempt");
    let run = &store.sync_runs(integration_id, 1).await.unwrap()[0];
    assert_eq!(run.status.as_str(), "cancelled");

    // The next worker picks it up and resumes after the checkpoint.
    let mut next = inlet.spawn(&["worker", "--listen", "127.0.0.1:0"]).await;
    eventually(30, "the released job to complete", || async {
        store.job(job_id).await.unwrap().is_none().then_some(())
    })
    .await;
    let ids: Vec<String> = store.objects(integration_id).await.unwrap().into_iter().map(|o| o.external_id).collect();
    assert_eq!(ids, ["thing-1", "thing-2"]);
    next.start_kill().unwrap();
    next.wait().await.unwrap();
}

/// A loopback URL for `notify_webhook_url`, and what is posted to it.
async fn notification_hook() -> (String, tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>) {
    use axum::routing::post;
    let (sender, received) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    let hook = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let sender = sender.clone();
            async move {
                sender.send(body).unwrap();
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await.unwrap() });
    (hook_url, received)
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failures_pause_the_integration_and_notify() {
    let (hook_url, mut received) = notification_hook().await;
    let config = format!("pause_after_failures = 2\nnotify_webhook_url = \"{hook_url}\"\n");
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]).config(&config);
    let id = misbehave_integration(&inlet, "trap", &["--every", "1h"]).await;
    assert!(!inlet.run(&["sync", &id]).await.status.success());
    assert!(received.try_recv().is_err(), "one failure does not pause");
    assert!(!inlet.run(&["sync", &id]).await.status.success());

    let notification =
        tokio::time::timeout(std::time::Duration::from_secs(10), received.recv()).await.unwrap().unwrap();
    assert_eq!(notification["event"], "integration.paused");
    assert_eq!(notification["reason"], "error");
    assert_eq!(notification["integration_id"].to_string(), id);
    assert!(notification["detail"].as_str().unwrap().contains("deliberate panic"), "{notification}");

    let listed = inlet.json(&["schedule", "list", "--json"]).await;
    assert_eq!(listed[0]["status_label"], "Paused (error)");
    assert_eq!(listed[0]["next_due_at"], serde_json::Value::Null);
    assert!(inlet.run(&["integrations", "resume", &id]).await.status.success());
    let listed = inlet.json(&["schedule", "list", "--json"]).await;
    assert_ne!(listed[0]["status_label"], "Paused (error)");
    assert_eq!(listed[0]["consecutive_failures"], 0, "resuming starts a new streak");
}

/// A run's log lines can be followed while it runs: through the API (ask
/// again `after` the last line) and `inlet runs --follow`, which prints each
/// line as it comes and exits with how the run ended.
#[tokio::test(flavor = "multi_thread")]
async fn a_runs_log_lines_are_followed_while_it_runs() {
    use tokio::io::AsyncBufReadExt;
    const TOKEN: &str = "follow-test-admin-token";
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]).env("INLET_ADMIN_TOKEN", TOKEN);
    let id = misbehave_integration(&inlet, "slow", &["--manual", "--config", r#"{"sleep_seconds": 4}"#]).await;
    let (mut serve, base) = inlet.spawn_listening(&["serve", "--listen", "127.0.0.1:0"]).await;
    // Started before the run exists: it waits for one.
    let mut follow = inlet.command(&["runs", &id, "--follow"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut printed = tokio::io::BufReader::new(follow.stdout.take().unwrap()).lines();

    let client = reqwest::Client::new();
    let get = |path: String| {
        let request = client.get(format!("{base}{path}")).bearer_auth(TOKEN);
        async move { request.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let run = client.post(format!("{base}/api/integrations/{id}/sync")).bearer_auth(TOKEN).send().await.unwrap();
    let run_id = run.json::<serde_json::Value>().await.unwrap()["run_id"].as_i64().unwrap();

    // The first line arrives while the plugin still sleeps.
    let page = eventually(20, "the run's first log line", || async {
        let page = get(format!("/api/runs/{run_id}/logs")).await;
        (!page["lines"].as_array().unwrap().is_empty()).then_some(page)
    })
    .await;
    assert_eq!(page["run"]["status"], "running", "{page:#}");
    assert_eq!(page["lines"][0]["message"], "thing-1 is stored; waiting before thing-2");
    assert_eq!((page["lines"][0]["seq"].as_i64(), page["next"].as_i64()), (Some(1), Some(1)));
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), printed.next_line()).await;
    let first = first.expect("--follow printed the line while the run ran").unwrap().unwrap();
    assert!(first.ends_with("info  thing-1 is stored; waiting before thing-2"), "{first}");
    assert_eq!(get(format!("/api/runs/{run_id}/logs?after=1")).await["run"]["status"], "running", "printed live");

    let status = tokio::time::timeout(std::time::Duration::from_secs(30), follow.wait()).await.unwrap().unwrap();
    assert!(status.success(), "the run succeeded, and --follow says so");
    let mut rest = Vec::new();
    while let Some(line) = printed.next_line().await.unwrap() {
        rest.push(line);
    }
    assert!(rest[0].ends_with("info  thing-2 emitted"), "{rest:?}");
    assert!(rest[1].starts_with(&format!("fetch run {run_id} success")), "{rest:?}");
    // Kept with the run: every line once, in order, whether written live or at its end.
    let page = get(format!("/api/runs/{run_id}/logs")).await;
    let seqs: Vec<i64> = page["lines"].as_array().unwrap().iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert_eq!((seqs, page["run"]["status"].as_str()), (vec![1, 2], Some("success")), "{page:#}");
    assert_eq!(get(format!("/api/runs/{run_id}/logs?after=1")).await["lines"][0]["message"], "thing-2 emitted");
    assert_eq!(get("/api/runs/424242/logs".into()).await["error"]["code"], "not-found");
    serve.start_kill().unwrap();
    serve.wait().await.unwrap();
}

/// The row of an integration whose runs fail says so where the operator
/// looks: retrying (which attempt, when) while a retry waits, then failed,
/// each with the error's first line, in `schedule list` (the API's rows).
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_integration_shows_retrying_then_failed_with_its_error() {
    // Two attempts, the second an hour after the first: the row stays
    // `retrying` until the test makes that retry due.
    let config = "[queues.fetch]\nmax_attempts = 2\nbackoff_seconds = [3600]\n";
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]).config(config);
    let id = misbehave_integration(&inlet, "trap", &["--manual"]).await;
    let job = inlet.json(&["sync", &id, "--force", "--json"]).await[0]["job"].as_i64().unwrap();
    let mut worker = inlet.spawn(&["worker", "--listen", "127.0.0.1:0"]).await;
    let store = inlet.store().await;

    let row = eventually(30, "the first attempt to fail", || async {
        let row = inlet.json(&["schedule", "list", "--json"]).await[0].clone();
        (row["status"]["status"] == "retrying").then_some(row)
    })
    .await;
    assert_eq!(row["status_label"], "Retrying (attempt 2 of 2)", "{row:#}");
    assert_eq!((row["status"]["attempt"].as_i64(), row["status"]["max_attempts"].as_i64()), (Some(2), Some(2)));
    let retry_in = row["status"]["at"].as_i64().unwrap() - store.now();
    assert!(retry_in > 1_800_000, "the retry waits out the backoff (with jitter): {retry_in} ms");
    let error = row["last_error"].as_str().unwrap();
    assert!(error.contains("deliberate panic") && !error.contains('\n'), "the error's first line: {error:?}");
    let table = support::text(&inlet.run(&["schedule", "list"]).await.stdout);
    assert!(table.contains("Retrying (attempt 2 of 2)"), "{table}");
    assert!(table.lines().any(|l| l.trim_start().starts_with("last error: ") && l.contains(error)), "{table}");

    // The retry fails too: no attempt is left, so the row says failed.
    sqlx::query("UPDATE jobs SET run_at = 0 WHERE id = $1").bind(job).execute(store.pool()).await.unwrap();
    let row = eventually(30, "the retry to fail", || async {
        let row = inlet.json(&["schedule", "list", "--json"]).await[0].clone();
        (row["status"]["status"] == "failed").then_some(row)
    })
    .await;
    assert_eq!(row["status_label"], "Failed", "{row:#}");
    assert_eq!(row["consecutive_failures"], 1);
    assert_eq!(row["last_error"].as_str(), Some(error), "the failed run's error: {row:#}");
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn schedule_and_failed_job_commands_through_the_binary() {
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]).config("[queues.fetch]\nmax_attempts = 1\n");

    // Preview: the spring-forward gap moves 02:30 to 03:00 on that day only.
    let preview = inlet
        .run(&[
            "schedule",
            "preview",
            "30 2 * * *",
            "--tz",
            "America/New_York",
            "--from",
            "2026-03-07T00:00:00Z",
            "--count",
            "3",
        ])
        .await;
    assert!(preview.status.success());
    assert_eq!(
        support::text(&preview.stdout).lines().collect::<Vec<_>>(),
        [
            "2026-03-07T07:30:00Z  2026-03-07 02:30 EST",
            "2026-03-08T07:00:00Z  2026-03-08 03:00 EDT",
            "2026-03-09T06:30:00Z  2026-03-09 02:30 EDT"
        ]
    );

    // Editing a schedule: bad input names the field and value; good input shows in the list.
    let id = misbehave_integration(&inlet, "trap", &["--manual"]).await;
    let bad = inlet.run(&["integrations", "schedule", &id, "--cron", "0 25 * * *", "--tz", "Europe/London"]).await;
    assert!(!bad.status.success());
    let message = support::text(&bad.stderr);
    assert!(message.contains("hour field \"25\" is invalid"), "{message}");
    let bad_zone = inlet.run(&["integrations", "schedule", &id, "--cron", "0 6 * * *", "--tz", "Mars/Olympus"]).await;
    assert!(support::text(&bad_zone.stderr).contains("\"Mars/Olympus\" is not an IANA time zone"));
    let good = inlet
        .run(&["integrations", "schedule", &id, "--cron", "0 6 * * *", "--cron", "0 18 * * *", "--tz", "Europe/London"])
        .await;
    assert!(good.status.success(), "{}", support::text(&good.stderr));
    let listed = inlet.json(&["schedule", "list", "--json"]).await;
    assert_eq!(listed[0]["schedule_summary"], "06:00 and 18:00 Europe/London");
    assert_eq!(listed[0]["schedule_is_default"], false);
    assert!(inlet.run(&["integrations", "pause", &id]).await.status.success());
    assert_eq!(inlet.json(&["schedule", "list", "--json"]).await[0]["status_label"], "Paused (operator)");

    // A job that fails with its only attempt lands in the failed list.
    let job = inlet.json(&["sync", &id, "--force", "--json"]).await[0]["job"].as_i64().unwrap();
    let mut worker = inlet.spawn(&["worker", "--listen", "127.0.0.1:0"]).await;
    let failed = eventually(30, "the job to fail", || async {
        let failed = inlet.json(&["jobs", "failed", "--json"]).await;
        (failed.as_array().unwrap().len() == 1).then_some(failed)
    })
    .await;
    assert_eq!(failed[0]["id"], job);
    assert_eq!(failed[0]["error_class"], "trap");
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();

    let missing = inlet.run(&["jobs", "retry", "999"]).await;
    assert!(support::text(&missing.stderr).contains("job 999 is not in the failed list"));
    // An unknown integration is an error, not one that never ran.
    for command in [&["runs", "999"][..], &["runs", "999", "--json"], &["records", "999"]] {
        let missing = inlet.run(command).await;
        assert!(!missing.status.success(), "{command:?}");
        assert!(support::text(&missing.stderr).contains("999"), "{command:?}: {}", support::text(&missing.stderr));
    }
    assert!(inlet.run(&["jobs", "retry", &job.to_string()]).await.status.success());
    assert!(inlet.json(&["jobs", "failed", "--json"]).await.as_array().unwrap().is_empty(), "queued again");
    let store = inlet.store().await;
    assert_eq!(store.job(job).await.unwrap().unwrap().state.as_str(), "available");
    let job_id = job;
    let claimed = store.claim_jobs(inlet::domain::queue::Queue::Fetch, "test", 30_000, 1).await.unwrap();
    assert_eq!(claimed[0].id, job_id);
    let lease = inlet::store::jobs::JobLease::of(&claimed[0], "test");
    assert!(store.fail_job(&lease, "permanent", "for the flush").await.unwrap());
    let flushed = inlet.run(&["jobs", "flush"]).await;
    assert!(support::text(&flushed.stdout).contains("deleted 1 failed job(s)"));
    assert!(store.job(job).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn inlet_sync_refuses_an_integration_that_a_worker_is_running() {
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]);
    // Long enough for the refused command to start its host on a busy machine.
    let id = misbehave_integration(&inlet, "slow", &["--manual", "--config", r#"{"sleep_seconds": 15}"#]).await;
    inlet.json(&["sync", &id, "--force", "--json"]).await;
    let mut worker = inlet.spawn(&["worker", "--listen", "127.0.0.1:0"]).await;
    let store = inlet.store().await;
    eventually(30, "the worker's run to start", || async {
        store.state_value(id.parse().unwrap(), "cursor").await.unwrap().map(|_| ())
    })
    .await;
    let refused = inlet.run(&["sync", &id]).await;
    let stderr = support::text(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains(&format!("integration {id} is already running")), "{stderr}");
    assert!(stderr.contains(&format!("inlet sync {id} --force")), "{stderr}");
    let runs = store.sync_runs(id.parse().unwrap(), 10).await.unwrap();
    assert_eq!(runs.len(), 1, "the refused sync started no run: {runs:?}");

    // Once the worker's run is over, the same command runs in this process.
    eventually(30, "the worker's run and its processing to finish", || async {
        store.integration_jobs(id.parse().unwrap()).await.unwrap().is_empty().then_some(())
    })
    .await;
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
    let ran = inlet.synced(&["sync", &id, "--json"]).await;
    assert_eq!(ran["status"], "success", "{ran}");
    assert!(store.integration_jobs(id.parse().unwrap()).await.unwrap().is_empty(), "its job is done with");
}

/// `inlet sync` whose run's end cannot be recorded (a database error) fails
/// and leaves no run open: nothing else would close it, and it showed as
/// running for ever.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_whose_end_cannot_be_recorded_is_not_left_running() {
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]);
    let id: i64 = misbehave_integration(&inlet, "ok", &["--manual"]).await.parse().unwrap();
    let store = inlet.store().await;
    let failing = "CREATE TRIGGER failing_end BEFORE UPDATE OF status ON sync_runs WHEN NEW.status = 'success'
                   BEGIN SELECT RAISE(ABORT, 'injected: the end cannot be written'); END";
    sqlx::query(failing).execute(store.pool()).await.unwrap();
    let failed = inlet.run(&["sync", &id.to_string()]).await;
    let stderr = support::text(&failed.stderr);
    assert!(!failed.status.success() && stderr.contains("injected"), "{stderr}");
    let runs = store.sync_runs(id, 10).await.unwrap();
    assert_eq!(runs.iter().map(|r| r.status).collect::<Vec<_>>(), [RunStatus::Failed], "{runs:?}");
    let message = runs[0].error_message.as_deref().unwrap_or_default();
    assert!(message.contains("could not be recorded") && message.contains("injected"), "{message}");
    assert_eq!(runs[0].error_class, Some(ErrorClass::Host));
    assert!(store.integration_jobs(id).await.unwrap().is_empty(), "its job is done with");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_that_finds_its_lease_lost_stops_the_run() {
    let config = "job_lease_seconds = 3\n[queues.fetch]\ntimeout_seconds = 600\nmax_attempts = 1\n";
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]).config(config);
    let id = misbehave_integration(&inlet, "sleep", &["--manual"]).await;
    let job = inlet.json(&["sync", &id, "--force", "--json"]).await[0]["job"].as_i64().unwrap();
    let log = inlet.dir().join("worker.log");
    let mut worker = inlet.spawn_logged(&["worker", "--listen", "127.0.0.1:0"], &log).await;
    let store = inlet.store().await;
    let run = eventually(30, "the run to start", || async {
        store.sync_runs(id.parse().unwrap(), 1).await.unwrap().into_iter().find(|r| r.status == RunStatus::Running)
    })
    .await;
    // Another worker holds the job now, as after a rescue of a stalled worker.
    sqlx::query("UPDATE jobs SET lease_owner = 'another-worker', lease_expires_at = 99999999999999 WHERE id = $1")
        .bind(job)
        .execute(store.pool())
        .await
        .unwrap();
    eventually(15, "the worker to stop the run", || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("the job's lease was lost (it was rescued); its run was stopped").then_some(())
    })
    .await;
    let job = store.job(job).await.unwrap().unwrap();
    assert_eq!(job.state.as_str(), "running", "the job is left to the worker that holds it");
    let run = store.sync_run(run.id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Running, "nothing was recorded by the worker that lost it");
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
}

/// A rescue of a worker that was only slow (a partition, a pause): the same
/// worker claims the job again while its earlier claim's run still executes.
/// The earlier run must stop, the later one must finish the job, and nothing
/// of the earlier claim may let go of, or write through, the later one's lease.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_rescued_from_a_live_worker_and_claimed_again_by_it_runs_its_later_claim_alone() {
    // Renewals every 10 s: the second claim (polled every second) comes first.
    let config = "job_lease_seconds = 30\n[queues.fetch]\nmax_attempts = 3\n";
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]).config(config);
    let id = misbehave_integration(&inlet, "slow", &["--manual", "--config", r#"{"sleep_seconds": 6}"#]).await;
    let integration: i64 = id.parse().unwrap();
    let job = inlet.json(&["sync", &id, "--force", "--json"]).await[0]["job"].as_i64().unwrap();
    let log = inlet.dir().join("worker.log");
    let mut worker = inlet.spawn_logged(&["worker", "--listen", "127.0.0.1:0"], &log).await;
    let store = inlet.store().await;
    let first = eventually(30, "the first claim's run to start", || async {
        store.sync_runs(integration, 1).await.unwrap().into_iter().find(|r| r.status == RunStatus::Running)
    })
    .await;
    let owner: String = sqlx::query_scalar("SELECT lease_owner FROM jobs WHERE id = $1")
        .bind(job)
        .fetch_one(store.pool())
        .await
        .unwrap();
    // Its attempts are not spent: no run's end is written.
    let no_end = |_: &inlet::store::integrations::Integration, _| unreachable!("the job has attempts left");
    let ended = inlet::store::jobs::Abandoned::HolderEnded(owner);
    let abandoned = store.abandoned_jobs(&ended).await.unwrap();
    assert_eq!(abandoned.iter().map(|j| j.id).collect::<Vec<_>>(), vec![job]);
    assert!(store.rescue_job(&abandoned[0], &ended, &no_end).await.unwrap().is_some());

    let fetches = || async {
        let runs = store.sync_runs(integration, 10).await.unwrap();
        runs.into_iter().filter(|r| r.queue == Queue::Fetch).collect::<Vec<_>>()
    };
    let second = eventually(30, "the second claim's run to succeed", || async {
        fetches().await.into_iter().find(|r| r.id != first.id && r.status == RunStatus::Success)
    })
    .await;
    assert_eq!(second.attempt, 2, "{second:?}");
    eventually(10, "the job to be done", || async { store.job(job).await.unwrap().is_none().then_some(()) }).await;
    let first = store.sync_run(first.id).await.unwrap().unwrap();
    assert_eq!(first.status, RunStatus::Failed, "closed by the rescue, not by its own late end: {first:?}");
    let runs = fetches().await;
    assert_eq!(runs.len(), 2, "one fetch per claim: {runs:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let stopped = text.matches("the job's lease was lost (it was rescued); its run was stopped").count()
        + text.matches("the job was claimed again; its earlier claim's run was stopped").count();
    assert_eq!(stopped, 1, "the earlier claim's run was stopped once, by whichever came first:\n{text}");
    // Its run would have ended by now: nothing it did after the rescue counts.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let external_ids: Vec<String> =
        store.objects(integration).await.unwrap().into_iter().map(|o| o.external_id).collect();
    assert_eq!(external_ids, vec!["thing-1", "thing-2"]);
    assert!(store.sync_run_logs(first.id).await.unwrap().iter().all(|l| l.message != "thing-2 emitted"));
    let runs_after = fetches().await;
    assert_eq!(runs_after.len(), 2, "{runs_after:?}");
    let everything = store.sync_runs(integration, 10).await.unwrap();
    assert!(everything.iter().all(|r| r.status != RunStatus::Running), "{everything:?}");
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
}

/// A scheduled fetch that was running when its integration was paused, and
/// comes back to retry (or was rescued, or handed back): the pause withdrew
/// only what waited then, so the worker that claims it withdraws it instead
/// of running it while the integration says Paused.
#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_run_that_comes_back_after_a_pause_does_not_run() {
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]).env("INLET_LOG", "info");
    let id = misbehave_integration(&inlet, "ok", &["--every", "1h"]).await;
    let integration: i64 = id.parse().unwrap();
    let store = inlet.store().await;
    // Its first run is due: queued by the scheduler, claimed, and running
    // when the operator pauses the integration; then it fails and retries.
    sqlx::query("UPDATE integrations SET next_due_at = 0").execute(store.pool()).await.unwrap();
    assert_eq!(store.enqueue_due_fetches(store.now(), 3, 10).await.unwrap(), [integration]);
    let claimed = store.claim_jobs(Queue::Fetch, "elsewhere", 30_000, 10).await.unwrap();
    let lease = inlet::store::jobs::JobLease::of(&claimed[0], "elsewhere");
    assert!(inlet.run(&["integrations", "pause", &id]).await.status.success());
    assert!(store.retry_job_at(&lease, store.now(), false, "transient", "503 from upstream").await.unwrap());
    assert_eq!(store.integration_jobs(integration).await.unwrap().len(), 1, "back, waiting to retry");
    // What a scheduled fetch stored before the pause is still processed.
    let processing = inlet::store::jobs::NewJob {
        queue: Queue::Process,
        integration_id: integration,
        args: inlet::store::jobs::JobArgs::new(inlet::domain::trigger::Trigger::Schedule),
        max_attempts: 3,
        run_at: store.now(),
    };
    store.enqueue_job(&processing).await.unwrap();

    let log = inlet.dir().join("worker.log");
    let mut worker = inlet.spawn_logged(&["worker", "--listen", "127.0.0.1:0"], &log).await;
    eventually(30, "the worker to withdraw it", || async {
        store.integration_jobs(integration).await.unwrap().is_empty().then_some(())
    })
    .await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("withdrew a scheduled run: its integration is paused"), "{text}");
    let runs = store.sync_runs(integration, 10).await.unwrap();
    let queues: Vec<Queue> = runs.iter().map(|r| r.queue).collect();
    assert_eq!(queues, [Queue::Process], "the fetch never ran; the processing did: {runs:?}");
    assert_eq!(store.integration(integration).await.unwrap().unwrap().paused_reason, Some(PauseReason::Operator));
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_that_fails_for_good_is_kept_listed_shown_notified_and_can_be_retried() {
    let (hook_url, mut received) = notification_hook().await;
    let inlet =
        Inlet::with_plugins(&[test_plugin("misbehave")]).config(&format!("notify_webhook_url = \"{hook_url}\"\n"));
    let id = misbehave_integration(&inlet, "bad-batch", &["--manual"]).await;
    let output = inlet.run(&["sync", &id, "--json"]).await;
    let run = support::sync_outcome(serde_json::from_slice(&output.stdout).unwrap());
    assert_eq!(run["error_class"], "permanent", "{run}");

    // The fetch succeeded, but what it stored cannot be processed: the
    // operator sees a failure where they look, and is told.
    let listed = inlet.json(&["schedule", "list", "--json"]).await;
    assert_eq!((&listed[0]["status"]["status"], &listed[0]["status_label"]), (&json!("failed"), &json!("Failed")));
    assert!(listed[0]["last_error"].as_str().unwrap().contains("this batch cannot be processed"), "{listed}");
    let notification =
        tokio::time::timeout(std::time::Duration::from_secs(10), received.recv()).await.unwrap().unwrap();
    assert_eq!(notification["event"], "integration.processing_failed", "{notification}");
    assert_eq!(notification["integration_id"].to_string(), id);
    assert!(notification["detail"].as_str().unwrap().contains("this batch cannot be processed"), "{notification}");
    let failed = inlet.json(&["batches", "failed", "--json"]).await;
    let batch = failed[0]["id"].as_i64().unwrap();
    assert!(run["error_message"].as_str().unwrap().contains(&format!("inlet batches retry {batch}")), "{run}");
    assert_eq!(failed[0]["integration_id"].to_string(), id);
    assert_eq!(failed[0]["error"], "permanent: this batch cannot be processed");

    let missing = inlet.run(&["batches", "retry", "999"]).await;
    assert!(support::text(&missing.stderr).contains("there is no failed batch with id 999"));
    let none = inlet.run(&["batches", "retry"]).await;
    assert!(support::text(&none.stderr).contains("name a batch id, or --all"));
    assert!(inlet.run(&["batches", "retry", "--all"]).await.status.success());
    assert!(inlet.json(&["batches", "failed", "--json"]).await.as_array().unwrap().is_empty());
    let store = inlet.store().await;
    let jobs = store.integration_jobs(id.parse().unwrap()).await.unwrap();
    let jobs: Vec<(&str, &str)> = jobs.iter().map(|j| (j.queue.as_str(), j.state.as_str())).collect();
    // The processing job that met the batch failed for good, as a worker's
    // would; the retry is a processing job of its own.
    assert_eq!(jobs, [("process", "available"), ("process", "failed")], "queued for processing, newest first");
}

/// A `serve` SIGKILLed during a forced backfill and started again on the same
/// data: the new process takes its dead predecessor's job at once (same
/// machine, process gone) instead of waiting out the lease, and the backfill
/// continues from its last checkpoint instead of from the start.
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_serve_resumes_its_killed_predecessors_backfill_at_once_from_its_checkpoint() {
    use inlet::demo::{FakeMonzo, MonzoDataset, transaction};
    let now = chrono::Utc::now().timestamp_millis();
    let fake = FakeMonzo::start(MonzoDataset::sample(now)).await.unwrap();
    // 1,230 transactions on the main account: 13 pages of 100.
    let older = (0..1000).map(|i| transaction("acc_main", 10_000 + i, now - 60 * 86_400_000 + i * 60_000)).collect();
    fake.add_transactions("acc_main", older);
    fake.update(|data| data.transactions.get_mut("acc_main").unwrap().sort_by_key(|t| t["created"].to_string()));
    // A lease far longer than the test: only knowing the process is gone helps.
    let inlet = Inlet::with_plugins(&[support::bundled_plugin("monzo")])
        .env("INLET_UPSTREAM_OVERRIDE", &format!("api.monzo.com={}", fake.base_url()))
        .config("job_lease_seconds = 900\n");
    let group = inlet
        .json(&["groups", "add", "monzo", "--name", "personal", "--access-token", &fake.access_token(), "--json"])
        .await;
    let group = group["id"].to_string();
    let created =
        inlet.json(&["integrations", "add", "monzo", "transactions", "--group", &group, "--manual", "--json"]).await;
    let id: i64 = created["id"].as_i64().unwrap();
    let since = chrono::DateTime::from_timestamp_millis(now - 70 * 86_400_000).unwrap().format("%Y-%m-%d").to_string();
    let queued = inlet.json(&["sync", &id.to_string(), "--force", "--backfill", "--since", &since, "--json"]).await;
    let job_id = queued[0]["job"].as_i64().unwrap();

    fake.set_latency(std::time::Duration::from_millis(150));
    let store = inlet.store().await;
    let mut first = inlet.spawn(&["serve", "--listen", "127.0.0.1:0"]).await;
    eventually(60, "four checkpointed pages", || async {
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM raw_batches WHERE integration_id = $1")
            .bind(id)
            .fetch_one(store.pool())
            .await
            .unwrap();
        (stored >= 4).then_some(())
    })
    .await;
    first.kill().await.unwrap(); // SIGKILL: no chance to hand the job back
    let before = fake.take_requests().iter().filter(|r| r.path == "/transactions").count();

    let mut second = inlet.spawn(&["serve", "--listen", "127.0.0.1:0"]).await;
    eventually(60, "the killed backfill to finish under the new process, and its batches processed", || async {
        let done = store.job(job_id).await.unwrap().is_none() && store.integration_jobs(id).await.unwrap().is_empty();
        done.then_some(())
    })
    .await;
    let after = fake.take_requests().iter().filter(|r| r.path == "/transactions").count();
    second.start_kill().unwrap();
    second.wait().await.unwrap();

    let events = store.events(id).await.unwrap();
    let distinct: std::collections::BTreeSet<&str> = events.iter().map(|e| e.external_id.as_str()).collect();
    assert_eq!((events.len(), distinct.len()), (1237, 1237), "every transaction stored once");
    // 13 pages of the main account and one of the joint account; the page
    // the kill interrupted may be asked for again, nothing before it.
    assert!(
        before + after <= 13 + 1 + 1,
        "{before} requests before the kill and {after} after: the backfill started over"
    );
}

/// A scheduled fetch whose last attempt's process died goes to the failed
/// list, and the integration's schedule goes on: the failure counts in its
/// streak and its next run is due as the schedule says (enqueueing the job
/// had cleared it: without this, it never ran on its own again). Both are
/// one write: when the integration's part fails (a database error), so does
/// the job's, and a later rescue does both (the job went to the failed list
/// alone, and the integration never ran on its own again).
#[tokio::test(flavor = "multi_thread")]
async fn a_fetch_rescued_into_the_failed_list_keeps_its_schedule() {
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]).config("[queues.fetch]\nmax_attempts = 1\n");
    let id: i64 = misbehave_integration(&inlet, "sleep", &["--every", "1h"]).await.parse().unwrap();
    let store = inlet.store().await;
    let mut first = inlet.spawn(&["serve", "--listen", "127.0.0.1:0"]).await;
    // Its first run is due at once: it sleeps in the plugin.
    let job = eventually(30, "the scheduled run to start", || async {
        let jobs = store.integration_jobs(id).await.unwrap();
        jobs.into_iter().find(|j| j.state.as_str() == "running").map(|j| j.id)
    })
    .await;
    assert_eq!(store.integration(id).await.unwrap().unwrap().next_due_at, None, "cleared while it runs");
    first.kill().await.unwrap(); // SIGKILL during its only attempt

    let failing = "CREATE TRIGGER failing_write BEFORE UPDATE OF consecutive_failures ON integrations
                   BEGIN SELECT RAISE(ABORT, 'injected: the integration cannot be written'); END";
    sqlx::query(failing).execute(store.pool()).await.unwrap();
    let log = inlet.dir().join("second.log");
    let mut second = inlet.spawn_logged(&["serve", "--listen", "127.0.0.1:0"], &log).await;
    eventually(30, "a rescue to meet the failing write", || async {
        std::fs::read_to_string(&log).ok()?.contains("injected").then_some(())
    })
    .await;
    sqlx::query("DROP TRIGGER failing_write").execute(store.pool()).await.unwrap();
    eventually(30, "the abandoned job in the failed list", || async {
        (store.job(job).await.unwrap()?.state.as_str() == "failed").then_some(())
    })
    .await;
    let integration = eventually(10, "its schedule to go on", || async {
        store.integration(id).await.unwrap().filter(|i| i.next_due_at.is_some())
    })
    .await;
    let hour_on = integration.last_started_at.unwrap() + 3_600_000;
    assert_eq!(integration.next_due_at, Some(hour_on), "an hour after the abandoned attempt started");
    assert_eq!(integration.consecutive_failures, 1);
    let listed = inlet.json(&["schedule", "list", "--json"]).await;
    let row = listed.as_array().unwrap().iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(row["status_label"], "Failed", "{row}");
    second.start_kill().unwrap();
    second.wait().await.unwrap();
}

/// An integration due now, synced by an operator before the scheduler got to
/// it, fetches once: the operator's fetch meets the due time (the scheduler
/// queued a second fetch behind the first).
#[tokio::test(flavor = "multi_thread")]
async fn a_due_integration_synced_at_once_by_an_operator_fetches_once() {
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]);
    // Long enough for serve to start, and a pass after the due time, meanwhile.
    let config = r#"{"sleep_seconds": 25}"#;
    let id: i64 = misbehave_integration(&inlet, "slow", &["--every", "1h", "--config", config]).await.parse().unwrap();
    let store = inlet.store().await;
    let due = store.integration(id).await.unwrap().unwrap().next_due_at.expect("due from its creation");
    let sync = inlet.command(&["sync", &id.to_string(), "--json"]).output();
    let sync = tokio::spawn(sync);
    eventually(30, "the operator's run to start", || async { store.state_value(id, "cursor").await.unwrap() }).await;
    let mut serve = inlet.spawn(&["serve", "--listen", "127.0.0.1:0"]).await;

    // Once past that due time (its first run's jitter), another integration
    // due now: once the scheduler has queued it, a pass has looked at both.
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    tokio::time::sleep(std::time::Duration::from_millis((due - now()).max(0) as u64)).await;
    let group = store.integration(id).await.unwrap().unwrap().group_id.to_string();
    let add = ["integrations", "add", "misbehave", "ok", "--group", &group, "--every", "1h", "--json"];
    let other = inlet.json(&add).await["id"].as_i64().unwrap();
    eventually(30, "the scheduler's pass", || async {
        let integration = store.integration(other).await.unwrap().unwrap();
        (integration.next_due_at.is_none() || integration.last_started_at.is_some()).then_some(())
    })
    .await;
    let jobs = store.integration_jobs(id).await.unwrap();
    let running: Vec<_> = jobs.iter().map(|j| (j.queue, j.state.as_str())).collect();
    assert_eq!(running, [(Queue::Fetch, "running")], "only the operator's fetch, none queued behind it: {jobs:?}");
    let synced = sync.await.unwrap().unwrap();
    assert!(synced.status.success(), "{}", support::text(&synced.stderr));
    let integration = store.integration(id).await.unwrap().unwrap();
    assert_eq!(integration.next_due_at, Some(integration.last_started_at.unwrap() + 3_600_000));
    let fetches = store.sync_runs(id, 10).await.unwrap().into_iter().filter(|r| r.queue == Queue::Fetch).count();
    assert_eq!(fetches, 1);
    serve.start_kill().unwrap();
    serve.wait().await.unwrap();
}

/// A schedule changed while a fetch runs holds after it: the fetch's end
/// sets the next due time from the schedule it started on only while that
/// is still the integration's (it set the next run by the old schedule).
#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_changed_while_a_fetch_runs_holds_after_it() {
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]);
    let id = misbehave_integration(&inlet, "slow", &["--every", "15m", "--config", r#"{"sleep_seconds": 5}"#]).await;
    let integration_id: i64 = id.parse().unwrap();
    let store = inlet.store().await;
    for change in [&["--manual"][..], &["--cron", "0 6 * * *", "--tz", "Asia/Tokyo"], &["--every", "2h"]] {
        let sync = tokio::spawn(inlet.command(&["sync", &id, "--json"]).output());
        eventually(30, "the fetch to start", || async {
            let jobs = store.integration_jobs(integration_id).await.unwrap();
            jobs.iter().any(|j| j.queue == Queue::Fetch && j.state.as_str() == "running").then_some(())
        })
        .await;
        let edit = inlet.run(&[&["integrations", "schedule", &id][..], change].concat()).await;
        assert!(edit.status.success(), "{}", support::text(&edit.stderr));
        let edited = store.integration(integration_id).await.unwrap().unwrap();
        if change == ["--every", "2h"] {
            // Counted from the start of the fetch running now, not the one before it.
            let runs = store.sync_runs(integration_id, 5).await.unwrap();
            let running = runs.iter().find(|r| r.queue == Queue::Fetch && r.status == RunStatus::Running).unwrap();
            assert_eq!(edited.next_due_at, Some(running.started_at.unwrap() + 7_200_000), "{runs:?}");
        }
        let jobs = store.integration_jobs(integration_id).await.unwrap();
        let running = jobs.iter().any(|j| j.queue == Queue::Fetch && j.state.as_str() == "running");
        assert!(running, "{change:?}: the edit was saved after the fetch ended, which tests nothing: {jobs:?}");
        let synced = sync.await.unwrap().unwrap();
        assert!(synced.status.success(), "{}", support::text(&synced.stderr));
        let ended = store.integration(integration_id).await.unwrap().unwrap();
        assert_eq!(ended.schedule, edited.schedule);
        assert_eq!(ended.next_due_at, edited.next_due_at, "{change:?}: the fetch's end undid the change");
        let jobs = store.integration_jobs(integration_id).await.unwrap();
        assert!(!jobs.iter().any(|j| j.queue == Queue::Fetch), "{change:?}: {jobs:?}");
    }
}

/// The crash harness in its short form (10 cycles per backend unless
/// INLET_CHAOS_CYCLES says otherwise; `cargo xtask chaos` runs it in full).
#[tokio::test(flavor = "multi_thread")]
async fn crash_cycles_lose_nothing_store_nothing_twice_and_run_nothing_twice_at_once() {
    let settings = chaos::Settings::from_env(10);
    for backend in chaos::backends() {
        eprintln!("crash cycles on {backend:?}: {} cycles, seed {}", settings.cycles, settings.seed);
        let figures = chaos::crash_cycles(backend, &settings).await;
        eprintln!("{backend:?}: {figures}");
        let broken = figures.violations();
        assert!(broken.is_empty(), "{backend:?}, seed {}: {broken:?}\n{figures}", settings.seed);
    }
}

/// Leader failover (75 s unless INLET_CHAOS_FAILOVER_SECONDS says otherwise):
/// each due time fires once, however often the scheduling leader dies.
#[tokio::test(flavor = "multi_thread")]
async fn killing_the_scheduling_leader_neither_misses_nor_doubles_a_due_run() {
    let settings = chaos::Settings::from_env(10);
    let seconds = std::env::var("INLET_CHAOS_FAILOVER_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(75);
    eprintln!("leader failover for {seconds} s, seed {}", settings.seed);
    let figures = chaos::leader_failover(seconds, settings.seed).await;
    eprintln!("{figures}");
    assert!(figures.failovers >= seconds as u32 / 10, "the leader was killed too seldom: {figures}");
    assert_eq!((figures.double_fires, figures.missed_fires), (0, 0), "seed {}: {figures}", settings.seed);
}

/// PostgreSQL cut off for 12 s under a running `serve`, mid-sync and
/// mid-delivery: 503 rather than a hang, and everything accepted done after.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_is_answered_with_503_and_loses_nothing_accepted() {
    use chaos::outage::{Fault, database_outage};
    let figures = database_outage(Fault::PostgresCut, std::time::Duration::from_secs(12)).await;
    eprintln!("{figures:?}");
    assert_eq!(
        figures.answered,
        [("healthz", 200), ("readyz", 503), ("integrations", 503), ("pause", 503), ("delivery", 503)],
        "while the database was away"
    );
    assert!(figures.slowest_answer < std::time::Duration::from_secs(15), "{figures:?}");
    assert!(figures.process_survived && figures.sync_finished && figures.delivered_records > 0, "{figures:?}");
}

/// SQLite's disk full for 12 s under a running `serve`, mid-sync and
/// mid-delivery: what can be read is answered, what must be written is 503
/// at once, the process survives, and everything accepted is done after.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_under_sqlite_is_answered_with_503_and_loses_nothing_accepted() {
    use chaos::outage::{Fault, database_outage};
    let figures = database_outage(Fault::SqliteDiskFull, std::time::Duration::from_secs(12)).await;
    eprintln!("{figures:?}");
    assert_eq!(
        figures.answered,
        [("healthz", 200), ("readyz", 200), ("integrations", 200), ("pause", 503), ("delivery", 503)],
        "while the disk was full"
    );
    assert!(figures.slowest_answer < std::time::Duration::from_secs(15), "{figures:?}");
    assert!(figures.process_survived && figures.sync_finished && figures.delivered_records > 0, "{figures:?}");
}

/// 16 senders posting wrong secrets, oversized bodies and a few good
/// deliveries for 10 s, 16 more holding connections with headers that never
/// end, while syncs are asked for one after another.
#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_flood_is_refused_stores_nothing_bad_and_leaves_syncs_alone() {
    let figures = chaos::flood::webhook_flood(16, 10).await;
    eprintln!("{figures:?}");
    let statuses: std::collections::BTreeSet<(&str, u16)> = figures.answers.keys().copied().collect();
    for (kind, status) in &statuses {
        // 503: every delivery slot busy (checked before the secret, which
        // costs a database read). 0: the host refused before reading the
        // body and closed the connection while the sender was still writing
        // (for a good delivery too: like 503, the sender's cue to retry).
        let allowed: &[u16] = match *kind {
            "good" => &[202, 503, 0],
            "oversized" => &[413, 503, 0],
            "wrong secret" => &[401, 503, 0],
            _ => &[0],
        };
        assert!(allowed.contains(status), "{kind} deliveries answered {status}: {figures:?}");
    }
    assert!(figures.accepted > 0 && figures.processed, "{figures:?}");
    assert_eq!(figures.stored_from_bad, 0, "{figures:?}");
    assert!(figures.syncs >= 3, "syncs ran during the flood: {figures:?}");
    assert!(figures.slowest_sync < std::time::Duration::from_secs(10), "{figures:?}");
}

/// The process queue on SQLite: see [`processing_is_a_queue_of_its_own`].
#[tokio::test(flavor = "multi_thread")]
async fn processing_retries_without_refetching_and_runs_beside_fetches_on_sqlite() {
    processing_is_a_queue_of_its_own(Inlet::with_plugins(&[test_plugin("misbehave")]), None).await;
}

/// The process queue on PostgreSQL: see [`processing_is_a_queue_of_its_own`].
#[tokio::test(flavor = "multi_thread")]
async fn processing_retries_without_refetching_and_runs_beside_fetches_on_postgres() {
    let url = support::fresh_postgres_database().await;
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]).env("DATABASE_URL", &url);
    processing_is_a_queue_of_its_own(inlet, Some(url)).await;
}

/// A fetch stores its batches and ends; a job of the process queue turns
/// them into records. A failing processing job is retried by its own policy
/// without fetching again; the process queue's one slot holds back neither
/// other integrations' fetches nor a fetch of the integration it processes.
async fn processing_is_a_queue_of_its_own(inlet: Inlet, url: Option<String>) {
    use inlet::domain::error_class::ErrorClass;
    use inlet::store::sync_runs::SyncRun;

    const TOKEN: &str = "process-queue-test-token";
    let config = "[queues.process]\nconcurrency = 1\nbackoff_seconds = [2]\n";
    let inlet = inlet.config(config).env("INLET_ADMIN_TOKEN", TOKEN);
    let store = match &url {
        Some(url) => inlet.store_at(url).await,
        None => inlet.store().await,
    };
    let group = inlet.json(&["groups", "add", "misbehave", "--name", "test", "--json"]).await["id"].to_string();
    let add = |instance_type: &'static str, config: &'static str| {
        let (inlet, group) = (&inlet, group.clone());
        async move {
            let args = ["integrations", "add", "misbehave", instance_type, "--group", &group, "--manual"];
            inlet.json(&[&args[..], &["--config", config, "--json"]].concat()).await["id"].as_i64().unwrap()
        }
    };
    let flaky = add("flaky-process", "{}").await;
    let slow = add("slow-process", r#"{"sleep_ms": 6000}"#).await;
    let (mut serve, base) = inlet.spawn_listening(&["serve", "--listen", "127.0.0.1:0"]).await;
    let client = reqwest::Client::new();
    let sync = |id: i64| {
        let request = client.post(format!("{base}/api/integrations/{id}/sync?force=true")).bearer_auth(TOKEN);
        async move {
            let answer = request.send().await.unwrap();
            assert_eq!(answer.status(), 202);
            answer.json::<serde_json::Value>().await.unwrap()["run_id"].as_i64().unwrap()
        }
    };
    let of_queue = |runs: &[SyncRun], queue: Queue| -> Vec<SyncRun> {
        // Oldest first.
        runs.iter().rev().filter(|r| r.queue == queue).cloned().collect()
    };
    let runs_when = |id: i64, done: fn(&[SyncRun]) -> bool| {
        let store = &store;
        async move {
            let runs = store.sync_runs(id, 20).await.unwrap();
            done(&runs).then_some(runs)
        }
    };

    // The flaky processing fails while the fetch's data is not processable
    // yet (1.5 s), waits its backoff (2 s) and succeeds, without a second fetch.
    sync(flaky).await;
    let both = |runs: &[SyncRun]| runs.iter().any(|r| r.queue == Queue::Process && r.status == RunStatus::Success);
    let runs = eventually(60, "the flaky processing to succeed", || runs_when(flaky, both)).await;
    let fetches = of_queue(&runs, Queue::Fetch);
    assert_eq!(fetches.len(), 1, "fetched once: {runs:#?}");
    assert_eq!((fetches[0].status, fetches[0].batches), (RunStatus::Success, 1));
    let processes = of_queue(&runs, Queue::Process);
    assert_eq!(processes.len(), 2, "{runs:#?}");
    assert_eq!((processes[0].status, processes[0].error_class), (RunStatus::Failed, Some(ErrorClass::Transient)));
    assert!(processes[0].error_message.as_deref().unwrap().contains("not processable yet"), "{runs:#?}");
    assert_eq!((processes[1].trigger, processes[1].attempt), (Trigger::Retry, 2), "{runs:#?}");
    assert_eq!((processes[1].records.created, processes[1].batches), (1, 1));
    let integration = store.integration(flaky).await.unwrap().unwrap();
    assert_eq!(integration.consecutive_failures, 0, "the processing failure did not fail the fetch");
    assert_eq!(integration.last_success_at, fetches[0].started_at, "its last success is the fetch's");
    let objects = store.objects(flaky).await.unwrap();
    assert_eq!(objects.iter().map(|o| o.external_id.as_str()).collect::<Vec<_>>(), ["flaky-1"]);

    // The slow integration's processing takes the queue's only slot for 6 s.
    sync(slow).await;
    let processing =
        |runs: &[SyncRun]| runs.iter().any(|r| r.queue == Queue::Process && r.status == RunStatus::Running);
    eventually(30, "the slow integration's processing to start", || runs_when(slow, processing)).await;
    // Meanwhile another integration fetches, and the slow one fetches again.
    let flaky_again = sync(flaky).await;
    let again = sync(slow).await;
    let fetched = eventually(30, "the fetch beside the processing to finish", || async {
        let run = store.sync_run(again).await.unwrap()?;
        (run.status == RunStatus::Success).then_some(run)
    })
    .await;
    let runs = store.sync_runs(slow, 20).await.unwrap();
    let process = &of_queue(&runs, Queue::Process)[0];
    assert_eq!(process.status, RunStatus::Running, "the fetch finished while its processing ran: {runs:#?}");
    assert!(fetched.started_at.unwrap() > process.started_at.unwrap(), "{runs:#?}");
    let other = eventually(30, "the other integration's fetch", || async {
        store.sync_run(flaky_again).await.unwrap().filter(|r| r.status == RunStatus::Success)
    })
    .await;

    fn processed(runs: &[SyncRun], times: usize) -> bool {
        runs.iter().filter(|r| r.queue == Queue::Process && r.status == RunStatus::Success).count() == times
    }
    let runs = eventually(60, "the slow processing to finish twice", || runs_when(slow, |r| processed(r, 2))).await;
    let slot_freed = of_queue(&runs, Queue::Process)[0].finished_at.unwrap();
    assert!(other.finished_at.unwrap() < slot_freed, "the busy process queue held back no fetch");
    // One slot: the other integration's processing waited for it.
    let runs = eventually(60, "the other processing", || runs_when(flaky, |r| processed(r, 2))).await;
    let waited = of_queue(&runs, Queue::Process).pop().unwrap();
    assert!(waited.started_at.unwrap() >= slot_freed, "{waited:#?}");
    serve.start_kill().unwrap();
    serve.wait().await.unwrap();
}
