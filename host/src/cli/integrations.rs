use super::print_json;
use super::schedule::ScheduleArgs;
use crate::Host;
use crate::operations::integrations::{self, NewIntegrationInput, ScheduleInput, SyncSettingsPatch};
use crate::sync::to_datetime;
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
            let config: serde_json::Value =
                serde_json::from_str(&config).with_context(|| format!("--config is not JSON: {config}"))?;
            let input = NewIntegrationInput {
                plugin,
                instance_type,
                group_id: group,
                name,
                config: Some(config),
                schedule: schedule.input(),
                enabled: None,
            };
            let integration = integrations::create(host, input).await?;
            if json {
                print_json(&serde_json::json!({ "id": integration.id }))
            } else {
                println!("created integration {} ({})", integration.id, integration.name);
                Ok(())
            }
        }
        IntegrationsCommand::Schedule { id, schedule, default } => {
            let schedule = match (schedule.input(), default) {
                (Some(_), true) => bail!("give a schedule or --default, not both"),
                (None, false) => bail!("give --every, --cron (with --tz), --manual or --default"),
                (None, true) => ScheduleInput::Default,
                (Some(schedule), false) => schedule,
            };
            let patch = SyncSettingsPatch { schedule: Some(schedule), enabled: None };
            let changed = integrations::set_sync_settings(host, id, patch).await?;
            let summary = host.runner.effective_schedule(&changed).summary();
            println!("integration {id}: {summary}, next run {}", show_time(changed.next_due_at));
            Ok(())
        }
        IntegrationsCommand::Pause { id } => {
            integrations::pause(host, id).await?;
            println!("integration {id} paused");
            Ok(())
        }
        IntegrationsCommand::Resume { id } => {
            let resumed = integrations::resume(host, id).await?;
            println!("integration {id} resumed, next run {}", show_time(resumed.next_due_at));
            Ok(())
        }
        IntegrationsCommand::List { json } => {
            let integrations = integrations::list(host, Default::default(), None, i64::MAX).await?;
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

fn show_time(at: Option<i64>) -> String {
    at.map_or("only when triggered".into(), |ms| to_datetime(ms).format("%Y-%m-%d %H:%M:%S UTC").to_string())
}
