use super::print_json;
use crate::Host;
use crate::runtime::wit::AuthKind;
use crate::store::groups::Credentials;
use anyhow::{Result, bail};
use std::collections::BTreeMap;

#[derive(Debug, clap::Subcommand)]
pub enum GroupsCommand {
    /// Connect an account with an API key, access token, basic-auth login or
    /// webhook secret. OAuth plugins connect in a browser instead: open
    /// /oauth/<plugin>/start?group=<name> on `inlet serve`.
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
        /// User name for HTTP basic auth.
        #[arg(long)]
        username: Option<String>,
        /// Password for HTTP basic auth (prefer the environment variable).
        #[arg(long, env = "INLET_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Shared secret that signs the service's webhook deliveries (prefer the environment variable).
        #[arg(long, env = "INLET_WEBHOOK_SECRET", hide_env_values = true)]
        webhook_secret: Option<String>,
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
        GroupsCommand::Add { plugin, name, access_token, api_key, username, password, webhook_secret, json } => {
            let Some(loaded) = host.runner.plugins.get(&plugin) else {
                bail!("plugin {plugin:?} is not loaded (see `inlet plugins`)");
            };
            let fields: BTreeMap<String, String> = [
                ("access_token", access_token),
                ("api_key", api_key),
                ("username", username),
                ("password", password),
                ("webhook_secret", webhook_secret),
            ]
            .into_iter()
            .filter_map(|(field, value)| Some((field.to_string(), value?)))
            .collect();
            if fields.is_empty() && !matches!(loaded.manifest.auth, AuthKind::None) {
                let how = match &loaded.manifest.auth {
                    AuthKind::Oauth2(_) => format!(
                        "{plugin} connects with OAuth: run `inlet serve` and open /oauth/{plugin}/start?group={name} \
                         in a browser (e.g. http://127.0.0.1:8080/oauth/{plugin}/start?group={name})"
                    ),
                    AuthKind::ApiKey(key) => format!("{plugin} needs an API key ({}): pass --api-key", key.label),
                    AuthKind::None => unreachable!("checked above"),
                };
                bail!("{how}");
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
