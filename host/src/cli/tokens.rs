use crate::Host;
use crate::api::auth;
use anyhow::Result;

#[derive(Debug, clap::Subcommand)]
pub enum TokensCommand {
    /// Make another admin API token; it is printed once, and only its digest stored.
    Create {
        /// What it is for, e.g. "backup script".
        #[arg(long)]
        name: String,
    },
}

pub async fn run(host: &Host, command: TokensCommand) -> Result<()> {
    match command {
        TokensCommand::Create { name } => {
            println!("{}", auth::create(host.store(), &name).await?);
            Ok(())
        }
    }
}
