use super::{FailedListArgs, RetryArgs, print_json};
use crate::Host;
use crate::domain::error_class::ErrorClass;
use crate::domain::queue::Queue;
use anyhow::{Result, bail};

#[derive(Debug, clap::Subcommand)]
pub enum JobsCommand {
    /// Jobs that used up their attempts or failed for good.
    Failed(FailedListArgs),
    /// Give failed jobs a fresh set of attempts, now.
    Retry(RetryArgs),
    /// Delete the failed list.
    Flush,
}

pub async fn run(host: &Host, command: JobsCommand) -> Result<()> {
    let store = host.store();
    match command {
        JobsCommand::Failed(FailedListArgs { limit, json }) => {
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
                    job.error_class.map_or("", ErrorClass::as_str),
                    job.error_message.unwrap_or_default()
                );
            }
            Ok(())
        }
        JobsCommand::Retry(which) => {
            let id = which.target("job")?;
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
