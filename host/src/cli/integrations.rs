use super::print_json;
use crate::Host;
use crate::store::integrations::NewIntegration;
use anyhow::{Context, Result, bail};

#[derive(Debug, clap::Subcommand)]
pub enum IntegrationsCommand {
    /// Create an integration of a plugin's instance type for a group.
    Add {
        /// Plugin id, e.g. monzo.
        plugin: String,
        /// Instance type, e.g. transactions.
        instance_type: String,
        /// Group (connected account) id.
        #[arg(long)]
        group: i64,
        /// Display name; default "<plugin> <instance type>".
        #[arg(long)]
        name: Option<String>,
        /// Config as a JSON object.
        #[arg(long, default_value = "{}")]
        config: String,
        #[arg(long)]
        json: bool,
    },
    /// List integrations.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(host: &Host, command: IntegrationsCommand) -> Result<()> {
    match command {
        IntegrationsCommand::Add {
            plugin,
            instance_type,
            group,
            name,
            config,
            json,
        } => {
            let Some(loaded) = host.runner.plugins.get(&plugin) else {
                bail!("plugin {plugin:?} is not loaded (see `inlet plugins`)");
            };
            if loaded.instance_type(&instance_type).is_none() {
                let known: Vec<&str> = loaded
                    .manifest
                    .instance_types
                    .iter()
                    .map(|t| t.id.as_str())
                    .collect();
                bail!(
                    "plugin {plugin:?} has no instance type {instance_type:?}; it has {}",
                    known.join(", ")
                );
            }
            let group_row = host
                .store()
                .group(group)
                .await?
                .with_context(|| format!("there is no group with id {group}"))?;
            if group_row.plugin_id != plugin {
                bail!(
                    "group {group} belongs to plugin {:?}, not {plugin:?}",
                    group_row.plugin_id
                );
            }
            let parsed: serde_json::Value = serde_json::from_str(&config)
                .with_context(|| format!("--config is not JSON: {config}"))?;
            if !parsed.is_object() {
                bail!("--config must be a JSON object, got {config}");
            }
            let name = name.unwrap_or_else(|| format!("{plugin} {instance_type}"));
            let id = host
                .store()
                .insert_integration(&NewIntegration {
                    plugin_id: &plugin,
                    instance_type: &instance_type,
                    group_id: group,
                    name: &name,
                    config: &parsed.to_string(),
                })
                .await?;
            if json {
                print_json(&serde_json::json!({ "id": id }))
            } else {
                println!("created integration {id} ({name})");
                Ok(())
            }
        }
        IntegrationsCommand::List { json } => {
            let integrations = host.store().integrations().await?;
            if json {
                return print_json(&integrations);
            }
            println!(
                "{:<6} {:<16} {:<16} {:<6} NAME",
                "ID", "PLUGIN", "TYPE", "GROUP"
            );
            for i in integrations {
                println!(
                    "{:<6} {:<16} {:<16} {:<6} {}",
                    i.id, i.plugin_id, i.instance_type, i.group_id, i.name
                );
            }
            Ok(())
        }
    }
}
