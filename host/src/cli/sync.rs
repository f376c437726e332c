use super::print_json;
use crate::Host;
use crate::domain::error_class::ErrorClass;
use crate::domain::queue::Queue;
use crate::domain::trigger::Trigger;
use crate::store::integrations::IntegrationFilter;
use crate::store::jobs::{JobArgs, NewJob, ReprocessScope, TriggerOutcome};
use crate::store::sync_runs::{RunStatus, SyncRun};
use crate::sync::RunRequest;
use anyhow::{Context, Result, bail};
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Integration id (or --plugin with --force).
    integration: Option<i64>,
    /// Every integration of this plugin (with --force).
    #[arg(long, requires = "force", conflicts_with = "integration")]
    plugin: Option<String>,
    /// Queue the run now for the workers of `inlet serve`/`inlet worker`,
    /// whatever the schedule, instead of running it in this process.
    #[arg(long)]
    force: bool,
    /// Fetch history again from --since, ignoring cursors.
    #[arg(long, requires = "since")]
    backfill: bool,
    /// Start of the backfill: RFC 3339 time or YYYY-MM-DD (UTC).
    #[arg(long, requires = "backfill")]
    since: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Integration id.
    integration: i64,
    /// How many runs, newest first.
    #[arg(long, default_value_t = 20)]
    limit: i64,
    /// Include each run's log lines.
    #[arg(long)]
    logs: bool,
    #[arg(long)]
    json: bool,
    /// Print the log lines of the integration's newest run as they come
    /// (waiting for a run if there is none yet), then how it ended; the exit
    /// status says whether it succeeded.
    #[arg(long, conflicts_with_all = ["logs", "json"])]
    follow: bool,
}

#[derive(Debug, clap::Args)]
pub struct ReprocessArgs {
    /// Integration id.
    integration: i64,
    /// Only batches stored from then on: RFC 3339 time or YYYY-MM-DD (UTC).
    #[arg(long)]
    since: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RecordsArgs {
    /// Integration id.
    integration: i64,
}

/// `2026-01-31` or an RFC 3339 time, as epoch milliseconds.
pub fn parse_since(text: &str) -> Result<i64> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .with_context(|| format!("--since {text:?} is neither YYYY-MM-DD nor an RFC 3339 time"))?;
    Ok(date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp_millis())
}

pub async fn run(host: &Host, args: SyncArgs) -> Result<()> {
    let backfill_since = args.since.as_deref().map(parse_since).transpose()?;
    if args.force {
        return enqueue(host, &args, backfill_since).await;
    }
    let Some(integration) = args.integration else { bail!("name an integration id (or --plugin with --force)") };
    run_here(host, RunRequest { backfill_since, ..RunRequest::manual(integration) }, args.json).await
}

/// Run `request` in this process and print how it went; an error unless it succeeded.
async fn run_here(host: &Host, request: RunRequest, json: bool) -> Result<()> {
    let runs = host.runner.run(&request).await?;
    if json {
        print_json(&runs)?;
    } else {
        for run in &runs.0 {
            print_run(run);
        }
        if let [fetch] = runs.0.as_slice()
            && fetch.queue == Queue::Fetch
            && fetch.batches > 0
        {
            println!("  its batches wait on the process queue: a worker is processing this integration's batches");
        }
    }
    let run = runs.outcome();
    if run.status != RunStatus::Success {
        bail!(
            "integration {}: {} {} run {} failed ({}): {}",
            request.integration_id,
            run.trigger.as_str(),
            run.queue.as_str(),
            run.id,
            run.error_class.map_or("unknown", ErrorClass::as_str),
            run.error_message.as_deref().unwrap_or("no message")
        );
    }
    Ok(())
}

pub async fn reprocess(host: &Host, args: ReprocessArgs) -> Result<()> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    crate::operations::integrations::check_reprocessable(host, args.integration).await?;
    let request = RunRequest {
        queue: Queue::Process,
        trigger: Trigger::Reprocess,
        reprocess: Some(ReprocessScope { since }),
        ..RunRequest::manual(args.integration)
    };
    run_here(host, request, args.json).await
}

async fn enqueue(host: &Host, args: &SyncArgs, backfill_since: Option<i64>) -> Result<()> {
    let store = host.store();
    let targets: Vec<i64> = match (&args.plugin, args.integration) {
        (Some(plugin), _) => {
            let filter = IntegrationFilter { plugin_id: Some(plugin.clone()), ..IntegrationFilter::default() };
            let ids: Vec<i64> = store.integrations_page(&filter, None, i64::MAX).await?.iter().map(|i| i.id).collect();
            if ids.is_empty() {
                bail!("plugin {plugin:?} has no integrations");
            }
            ids
        }
        (None, Some(id)) => {
            store.integration(id).await?.with_context(|| format!("there is no integration with id {id}"))?;
            vec![id]
        }
        (None, None) => bail!("name an integration id or --plugin"),
    };
    let trigger = if backfill_since.is_some() { Trigger::Backfill } else { Trigger::Manual };
    let mut queued = Vec::new();
    for integration_id in targets {
        let job = NewJob {
            queue: Queue::Fetch,
            integration_id,
            args: JobArgs { backfill_since, ..JobArgs::new(trigger) },
            max_attempts: host.policy(Queue::Fetch).max_attempts,
            run_at: store.now(),
        };
        // Like the API's "Update now" with force: a pending run shows at once.
        match store.request_run(&job, 0).await? {
            TriggerOutcome::Queued { job_id, run_id } => {
                queued.push(json!({ "integration": integration_id, "job": job_id, "run": run_id }));
            }
            TriggerOutcome::NoIntegration => bail!("there is no integration with id {integration_id}"),
            TriggerOutcome::TooSoon { .. } => unreachable!("no minimum gap was asked for"),
        }
    }
    host.wake(Queue::Fetch);
    if args.json {
        return print_json(&queued);
    }
    for entry in queued {
        println!("queued job {} (run {}) for integration {}", entry["job"], entry["run"], entry["integration"]);
    }
    Ok(())
}

pub async fn runs(host: &Host, args: RunsArgs) -> Result<()> {
    if args.follow {
        return follow(host, args.integration).await;
    }
    // An unknown id is an error, not an integration that never ran.
    crate::operations::integrations::get(host, args.integration).await?;
    let runs = host.store().sync_runs(args.integration, args.limit).await?;
    let mut listed = Vec::new();
    for run in runs {
        let logs = if args.logs { host.store().sync_run_logs(run.id).await? } else { Vec::new() };
        if args.json {
            listed.push(json!({ "run": run, "logs": logs }));
            continue;
        }
        print_run(&run);
        for line in logs {
            println!("    {} {}", line.level, line.message);
        }
    }
    if args.json {
        print_json(&listed)?;
    }
    Ok(())
}

/// How often `--follow` looks for new lines: they are written every 250 ms.
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Follow the integration's newest run, and after a fetch that stored
/// batches the run that processes them: an error unless both succeeded.
async fn follow(host: &Host, integration: i64) -> Result<()> {
    let store = host.store();
    if store.integration(integration).await?.is_none() {
        bail!("there is no integration with id {integration}");
    }
    let newest = next_run(store, integration, |runs| runs.first(), " has no run yet; waiting for one").await?;
    let mut outcome = follow_run(store, newest).await?;
    if outcome.queue == Queue::Fetch && outcome.batches > 0 {
        let fetch_id = outcome.id;
        let processing = next_run(
            store,
            integration,
            |runs| runs.iter().rev().find(|r| r.id > fetch_id && r.queue.processes()),
            "'s batches wait for the process queue",
        )
        .await?;
        let processed = follow_run(store, processing).await?;
        if outcome.status == RunStatus::Success {
            outcome = processed;
        }
    }
    match outcome.status {
        RunStatus::Success => Ok(()),
        status => bail!("{} run {} ended {}", outcome.queue.as_str(), outcome.id, status.as_str()),
    }
}

/// The run `wanted` picks from the integration's newest runs (newest
/// first), once there is one; says once that it waits (`waiting` follows
/// "integration N").
async fn next_run(
    store: &crate::store::Store,
    integration: i64,
    wanted: impl Fn(&[SyncRun]) -> Option<&SyncRun>,
    waiting: &str,
) -> Result<SyncRun> {
    let mut waiting_said = false;
    loop {
        if let Some(run) = wanted(&store.sync_runs(integration, 10).await?) {
            return Ok(run.clone());
        }
        if !std::mem::replace(&mut waiting_said, true) {
            eprintln!("integration {integration}{waiting}");
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

/// Print `run`'s log lines as they come, then the run as it ended.
async fn follow_run(store: &crate::store::Store, run: SyncRun) -> Result<SyncRun> {
    const PAGE: i64 = 1000;
    let mut after = 0;
    loop {
        // The run before its lines: once it reads finished, every line is in.
        let now = store.sync_run(run.id).await?.context("the run was deleted (history pruned)")?;
        let lines = store.sync_run_log_page(run.id, after, PAGE).await?;
        for line in &lines {
            println!("{} {:<5} {}", crate::sync::to_datetime(line.at).format("%H:%M:%S%.3f"), line.level, line.message);
        }
        after = lines.last().map_or(after, |line| line.seq);
        let in_flight = matches!(now.status, RunStatus::Pending | RunStatus::Running);
        if !in_flight && (lines.len() as i64) < PAGE {
            print_run(&now);
            return Ok(now);
        }
        if lines.is_empty() {
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    }
}

pub async fn records(host: &Host, args: RecordsArgs) -> Result<()> {
    crate::operations::integrations::get(host, args.integration).await?;
    print_json(&host.store().integration_records(args.integration).await?)
}

fn print_run(run: &SyncRun) {
    let r = &run.records;
    let records = format!(
        "records {} created, {} updated, {} unchanged, {} deleted",
        r.created, r.updated, r.unchanged, r.deleted
    );
    // A fetch writes no records; one from before the process queue did both.
    let did = match run.queue {
        Queue::Fetch if r.created + r.updated + r.unchanged + r.deleted == 0 => {
            format!("{} batches stored", run.batches)
        }
        Queue::Fetch => format!("{} batches stored, {records}", run.batches),
        Queue::Process | Queue::Webhook => format!("{} batches processed, {records}", run.batches),
    };
    println!(
        "{} run {} {} ({}, attempt {}) in {} ms: {did}",
        run.queue.as_str(),
        run.id,
        run.status.as_str(),
        run.trigger.as_str(),
        run.attempt,
        run.duration_ms.unwrap_or_default(),
    );
    if let (Some(class), Some(message)) = (&run.error_class, &run.error_message) {
        println!("  error ({class}): {message}");
    }
}
