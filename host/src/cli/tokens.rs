use super::print_json;
use crate::Host;
use crate::operations::tokens::{self, NewTokenInput};
use crate::sync::to_datetime;
use anyhow::Result;

#[derive(Debug, clap::Subcommand)]
pub enum TokensCommand {
    /// Make another admin API token; it is printed once, and only its digest stored.
    Create {
        /// What it is for, e.g. "backup script".
        #[arg(long)]
        name: String,
    },
    /// The stored tokens: id, name, when made and last used (never the token).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: requests bearing it are refused from now on.
    Revoke { id: i64 },
}

pub async fn run(host: &Host, command: TokensCommand) -> Result<()> {
    match command {
        TokensCommand::Create { name } => {
            println!("{}", tokens::create(host, NewTokenInput { name }).await?.token);
        }
        TokensCommand::List { json } => {
            let list = tokens::list(host).await?;
            if json {
                return print_json(&list);
            }
            let time =
                |ms: Option<i64>| ms.map_or("never".into(), |ms| to_datetime(ms).format("%Y-%m-%d %H:%M").to_string());
            println!("{:<5} {:<30} {:<17} LAST USED (UTC)", "ID", "NAME", "CREATED (UTC)");
            for token in list {
                println!(
                    "{:<5} {:<30} {:<17} {}",
                    token.id,
                    token.name,
                    time(Some(token.created_at)),
                    time(token.last_used_at)
                );
            }
        }
        // On the host's own machine a new token is one `tokens create`
        // away, so even the last one may go.
        TokensCommand::Revoke { id } => {
            tokens::revoke(host, id, true).await?;
            println!("revoked token {id}");
        }
    }
    Ok(())
}
