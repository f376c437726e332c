use super::{FailedListArgs, RetryArgs, print_json};
use crate::Host;
use crate::operations::batches;
use anyhow::Result;

#[derive(Debug, clap::Subcommand)]
pub enum BatchesCommand {
    /// Stored batches that could not be turned into records, newest first.
    Failed(FailedListArgs),
    /// Process failed batches again (the workers of `inlet serve` do it).
    Retry(RetryArgs),
}

pub async fn run(host: &Host, command: BatchesCommand) -> Result<()> {
    match command {
        BatchesCommand::Failed(FailedListArgs { limit, json }) => {
            let failed = host.store().failed_batches(limit).await?;
            if json {
                return print_json(&failed);
            }
            println!("{:<8} {:<12} {:<16} {:<9} {:<10} ERROR", "BATCH", "INTEGRATION", "KIND", "ATTEMPTS", "BYTES");
            for batch in failed {
                println!(
                    "{:<8} {:<12} {:<16} {:<9} {:<10} {}",
                    batch.id, batch.integration_id, batch.kind, batch.attempts, batch.bytes, batch.error
                );
            }
            Ok(())
        }
        BatchesCommand::Retry(which) => {
            let retried = batches::retry_failed(host, which.target("batch")?).await?;
            println!(
                "queued the failed batches of {} integration(s) for processing: {:?}",
                retried.integrations.len(),
                retried.integrations
            );
            Ok(())
        }
    }
}
