use super::print_json;
use crate::Host;
use crate::store::groups::Credentials;
use anyhow::{Result, bail};
use std::collections::BTreeMap;

#[derive(Debug, clap::Subcommand)]
pub enum GroupsCommand {
    /// Connect an account with an access token or API key.
    Add {
        /// Plugin id, e.g. monzo.
        plugin: String,
        /// A name to tell this account apart, e.g. "personal".
        #[arg(long)]
        name: String,
        /// OAuth access token (prefer the environment variable: command lines are visible to other users).
        #[arg(long, env = "INLET_ACCESS_TOKEN", hide_env_values = true)]
        access_token: Option<String>,
        /// API key (prefer the environment variable).
        #[arg(long, env = "INLET_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List connected accounts.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(host: &Host, command: GroupsCommand) -> Result<()> {
    match command {
        GroupsCommand::Add { plugin, name, access_token, api_key, json } => {
            if host.runner.plugins.get(&plugin).is_none() {
                bail!("plugin {plugin:?} is not loaded (see `inlet plugins`)");
            }
            let mut fields = BTreeMap::new();
            if let Some(token) = access_token {
                fields.insert("access_token".to_string(), token);
            }
            if let Some(key) = api_key {
                fields.insert("api_key".to_string(), key);
            }
            let id = host.store().insert_group(&plugin, &name, &Credentials::new(fields)).await?;
            if json {
                print_json(&serde_json::json!({ "id": id }))
            } else {
                println!("created group {id} ({plugin}, {name})");
                Ok(())
            }
        }
        GroupsCommand::List { json } => {
            let groups = host.store().groups().await?;
            if json {
                return print_json(&groups);
            }
            println!("{:<6} {:<16} {:<24} STATUS", "ID", "PLUGIN", "NAME");
            for group in groups {
                println!("{:<6} {:<16} {:<24} {}", group.id, group.plugin_id, group.name, group.status);
            }
            Ok(())
        }
    }
}
