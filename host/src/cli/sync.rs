use super::print_json;
use crate::Host;
use crate::runtime::wit::Trigger;
use crate::store::sync_runs::{RunStatus, SyncRun};
use anyhow::{Result, bail};
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Integration id.
    integration: i64,
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
}

#[derive(Debug, clap::Args)]
pub struct RecordsArgs {
    /// Integration id.
    integration: i64,
}

pub async fn run(host: &Host, args: SyncArgs) -> Result<()> {
    let run = host.runner.run(args.integration, Trigger::Manual).await?;
    if args.json {
        print_json(&run)?;
    } else {
        print_run(&run);
    }
    if run.status != RunStatus::Success {
        bail!(
            "integration {}: sync run {} failed ({}): {}",
            args.integration,
            run.id,
            run.error_class.as_deref().unwrap_or("unknown"),
            run.error_message.as_deref().unwrap_or("no message")
        );
    }
    Ok(())
}

pub async fn runs(host: &Host, args: RunsArgs) -> Result<()> {
    let runs = host.store().sync_runs(args.integration, args.limit).await?;
    let mut listed = Vec::new();
    for run in runs {
        let logs = if args.logs {
            host.store().sync_run_logs(run.id).await?
        } else {
            Vec::new()
        };
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

pub async fn records(host: &Host, args: RecordsArgs) -> Result<()> {
    let store = host.store();
    print_json(&json!({
        "objects": store.objects(args.integration).await?,
        "events": store.events(args.integration).await?,
        "blocks": store.blocks(args.integration).await?,
    }))
}

fn print_run(run: &SyncRun) {
    let r = &run.records;
    println!(
        "run {} {} ({}) in {} ms: {} batches, records {} created, {} updated, {} unchanged, {} deleted",
        run.id,
        run.status.as_str(),
        run.trigger,
        run.duration_ms.unwrap_or_default(),
        run.batches,
        r.created,
        r.updated,
        r.unchanged,
        r.deleted
    );
    if let (Some(class), Some(message)) = (&run.error_class, &run.error_message) {
        println!("  error ({class}): {message}");
    }
}
