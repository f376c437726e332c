use super::print_json;
use super::schedule::ScheduleArgs;
use crate::Host;
use crate::store::integrations::{Integration, NewIntegration};
use crate::store::jobs::Queue;
use crate::sync::to_datetime;
use anyhow::{Context, Result, bail};

/// New integrations start within this many milliseconds, spread so that a
/// batch created together does not hit an upstream at the same instant.
const FIRST_RUN_JITTER_MS: i64 = 5_000;

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
        /// Its own schedule (default: the instance type's).
        #[command(flatten)]
        schedule: ScheduleArgs,
        #[arg(long)]
        json: bool,
    },
    /// Change an integration's schedule.
    Schedule {
        id: i64,
        #[command(flatten)]
        schedule: ScheduleArgs,
        /// Follow the instance type's default schedule again.
        #[arg(long)]
        default: bool,
    },
    /// Stop scheduled runs until resumed.
    Pause { id: i64 },
    /// Resume scheduled runs (a missed run happens once, now).
    Resume { id: i64 },
    /// List integrations.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(host: &Host, command: IntegrationsCommand) -> Result<()> {
    match command {
        IntegrationsCommand::Add { plugin, instance_type, group, name, config, schedule, json } => {
            let Some(loaded) = host.runner.plugins.get(&plugin) else {
                bail!("plugin {plugin:?} is not loaded (see `inlet plugins`)");
            };
            if loaded.instance_type(&instance_type).is_none() {
                let known: Vec<&str> = loaded.manifest.instance_types.iter().map(|t| t.id.as_str()).collect();
                bail!("plugin {plugin:?} has no instance type {instance_type:?}; it has {}", known.join(", "));
            }
            let group_row =
                host.store().group(group).await?.with_context(|| format!("there is no group with id {group}"))?;
            if group_row.plugin_id != plugin {
                bail!("group {group} belongs to plugin {:?}, not {plugin:?}", group_row.plugin_id);
            }
            let parsed: serde_json::Value =
                serde_json::from_str(&config).with_context(|| format!("--config is not JSON: {config}"))?;
            if !parsed.is_object() {
                bail!("--config must be a JSON object, got {config}");
            }
            let name = name.unwrap_or_else(|| format!("{plugin} {instance_type}"));
            let schedule = schedule.schedule()?;
            let default_schedule = crate::schedule::Schedule::from_manifest(
                &loaded.instance_type(&instance_type).expect("checked above").default_schedule,
            );
            let effective = schedule.as_ref().unwrap_or(&default_schedule);
            let now = host.store().now();
            // The first run is a backfill, due at once (with a little jitter) unless manual.
            let first_due_at = (*effective != crate::schedule::Schedule::Manual)
                .then(|| now + (now.rem_euclid(997) * 7919).rem_euclid(FIRST_RUN_JITTER_MS));
            let id = host
                .store()
                .insert_integration(&NewIntegration {
                    plugin_id: &plugin,
                    instance_type: &instance_type,
                    group_id: group,
                    name: &name,
                    config: &parsed.to_string(),
                    schedule: schedule.as_ref(),
                    first_due_at,
                })
                .await?;
            host.wake(Queue::Fetch);
            if json {
                print_json(&serde_json::json!({ "id": id }))
            } else {
                println!("created integration {id} ({name})");
                Ok(())
            }
        }
        IntegrationsCommand::Schedule { id, schedule, default } => {
            let integration = existing(host, id).await?;
            let schedule = match (schedule.schedule()?, default) {
                (Some(_), true) => bail!("give a schedule or --default, not both"),
                (None, false) => bail!("give --every, --cron (with --tz), --manual or --default"),
                (schedule, _) => schedule,
            };
            let changed = Integration { schedule: schedule.clone(), ..integration.clone() };
            let next_due = next_due(host, &changed);
            host.store().set_integration_schedule(id, schedule.as_ref(), next_due).await?;
            host.wake(Queue::Fetch);
            let summary = host.runner.effective_schedule(&changed).summary();
            println!("integration {id}: {summary}, next run {}", show_time(next_due));
            Ok(())
        }
        IntegrationsCommand::Pause { id } => {
            existing(host, id).await?;
            host.store().set_integration_paused(id, Some("operator"), None).await?;
            println!("integration {id} paused");
            Ok(())
        }
        IntegrationsCommand::Resume { id } => {
            let integration = existing(host, id).await?;
            let next_due = next_due(host, &integration);
            host.store().set_integration_paused(id, None, next_due).await?;
            host.wake(Queue::Fetch);
            println!("integration {id} resumed, next run {}", show_time(next_due));
            Ok(())
        }
        IntegrationsCommand::List { json } => {
            let integrations = host.store().integrations().await?;
            if json {
                return print_json(&integrations);
            }
            println!("{:<6} {:<16} {:<16} {:<6} NAME", "ID", "PLUGIN", "TYPE", "GROUP");
            for i in integrations {
                println!("{:<6} {:<16} {:<16} {:<6} {}", i.id, i.plugin_id, i.instance_type, i.group_id, i.name);
            }
            Ok(())
        }
    }
}

async fn existing(host: &Host, id: i64) -> Result<Integration> {
    host.store().integration(id).await?.with_context(|| format!("there is no integration with id {id}"))
}

/// When the next run is due under the integration's (possibly new) schedule,
/// counting from its last start; a missed run is due now.
fn next_due(host: &Host, integration: &Integration) -> Option<i64> {
    let started = integration.last_started_at.unwrap_or_else(|| host.store().now());
    host.runner.next_due_after_run(integration, started)
}

fn show_time(at: Option<i64>) -> String {
    at.map_or("only when triggered".into(), |ms| to_datetime(ms).format("%Y-%m-%d %H:%M:%S UTC").to_string())
}
