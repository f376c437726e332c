use super::print_json;
use crate::Host;
use crate::operations::batches;
use anyhow::{Result, bail};

#[derive(Debug, clap::Subcommand)]
pub enum BatchesCommand {
    /// Stored batches that could not be turned into records, newest first.
    Failed {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Process failed batches again (the workers of `inlet serve` do it).
    Retry {
        /// Batch id.
        id: Option<i64>,
        /// Every failed batch.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

pub async fn run(host: &Host, command: BatchesCommand) -> Result<()> {
    match command {
        BatchesCommand::Failed { limit, json } => {
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
        BatchesCommand::Retry { id, all } => {
            if id.is_none() && !all {
                bail!("name a batch id, or --all");
            }
            let retried = batches::retry_failed(host, id).await?;
            println!(
                "queued the failed batches of {} integration(s) for processing: {:?}",
                retried.integrations.len(),
                retried.integrations
            );
            Ok(())
        }
    }
}
