use super::print_json;
use crate::Host;
use crate::store::jobs::Queue;
use anyhow::{Result, bail};

#[derive(Debug, clap::Subcommand)]
pub enum JobsCommand {
    /// Jobs that used up their attempts or failed for good.
    Failed {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Give failed jobs a fresh set of attempts, now.
    Retry {
        /// Job id.
        id: Option<i64>,
        /// Every failed job.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Delete the failed list.
    Flush,
}

pub async fn run(host: &Host, command: JobsCommand) -> Result<()> {
    let store = host.store();
    match command {
        JobsCommand::Failed { limit, json } => {
            let jobs = store.failed_jobs(limit).await?;
            if json {
                return print_json(&jobs);
            }
            println!("{:<8} {:<8} {:<12} {:<8} ERROR", "JOB", "QUEUE", "INTEGRATION", "ATTEMPTS");
            for job in jobs {
                println!(
                    "{:<8} {:<8} {:<12} {:<8} {}: {}",
                    job.id,
                    job.queue.as_str(),
                    job.integration_id.map_or("-".into(), |i| i.to_string()),
                    job.attempt,
                    job.error_class.unwrap_or_default(),
                    job.error_message.unwrap_or_default()
                );
            }
            Ok(())
        }
        JobsCommand::Retry { id, all } => {
            if id.is_none() && !all {
                bail!("name a job id, or --all");
            }
            let retried = store.retry_failed_jobs(id).await?;
            if let (Some(id), 0) = (id, retried) {
                bail!("job {id} is not in the failed list");
            }
            host.wake(Queue::Fetch);
            println!("queued {retried} job(s) again");
            Ok(())
        }
        JobsCommand::Flush => {
            println!("deleted {} failed job(s)", store.flush_failed_jobs().await?);
            Ok(())
        }
    }
}
