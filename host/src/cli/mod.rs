//! The `inlet` command line.

mod batches;
mod groups;
mod integrations;
mod jobs;
mod plugin;
mod plugins;
mod schedule;
mod serve;
mod sync;
mod tokens;

use crate::settings::{Settings, SettingsArgs};
use crate::{Host, HostOptions};
use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "inlet",
    version,
    about = "Keeps your data in sync with the services you use, through sandboxed WebAssembly plugins"
)]
pub struct Cli {
    #[command(flatten)]
    settings: SettingsArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the host: scheduler, workers and HTTP server.
    Serve(serve::ServeArgs),
    /// Run workers only, beside an `inlet serve` on the same PostgreSQL database.
    Worker(serve::WorkerArgs),
    /// List the loaded plugins and the files that failed to load.
    Plugins(plugins::PluginsArgs),
    /// For plugin authors: test a plugin offline.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Connected accounts (credentials shared by a plugin's integrations).
    #[command(subcommand)]
    Groups(groups::GroupsCommand),
    /// Instances of a plugin's instance types.
    #[command(subcommand)]
    Integrations(integrations::IntegrationsCommand),
    /// Run one sync of an integration now.
    Sync(sync::SyncArgs),
    /// Process an integration's kept batches again with the current plugin,
    /// updating its records without fetching.
    Reprocess(sync::ReprocessArgs),
    /// Show an integration's sync history.
    Runs(sync::RunsArgs),
    /// Print the records an integration has stored.
    Records(sync::RecordsArgs),
    /// Schedules: list them with status, preview cron expressions.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// The failed-jobs list: show, retry, flush.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// Stored batches that failed to process: show, retry.
    #[command(subcommand)]
    Batches(batches::BatchesCommand),
    /// Admin API tokens.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
}

impl Cli {
    /// `inlet plugin ...`: a plugin author's command, not an installation's.
    pub fn is_plugin_command(&self) -> bool {
        matches!(self.command, Command::Plugin(_))
    }
}

pub async fn run(cli: Cli) -> Result<()> {
    // A plugin author's commands bring their own scratch host: no settings,
    // database or inlet.toml of an installation apply.
    if let Command::Plugin(command) = cli.command {
        return plugin::run(command, cli.settings.upstream_override).await;
    }
    let settings = Settings::resolve(&cli.settings)?;
    let options = HostOptions::default();
    match cli.command {
        Command::Serve(args) => serve::run(settings, options, args).await,
        Command::Worker(args) => serve::worker(settings, options, args).await,
        command => {
            let host = Host::start(&settings, options).await?;
            let outcome = match command {
                Command::Serve(_) | Command::Worker(_) | Command::Plugin(_) => unreachable!("handled above"),
                Command::Plugins(args) => plugins::run(&host, args),
                Command::Groups(command) => groups::run(&host, command).await,
                Command::Integrations(command) => integrations::run(&host, command).await,
                Command::Sync(args) => sync::run(&host, args).await,
                Command::Reprocess(args) => sync::reprocess(&host, args).await,
                Command::Runs(args) => sync::runs(&host, args).await,
                Command::Records(args) => sync::records(&host, args).await,
                Command::Schedule(command) => schedule::run(&host, command).await,
                Command::Jobs(command) => jobs::run(&host, command).await,
                Command::Batches(command) => batches::run(&host, command).await,
                Command::Tokens(command) => tokens::run(&host, command).await,
            };
            // A run this command made may have paused an integration.
            host.runner.notifier.flush().await;
            outcome
        }
    }
}

/// A group's credentials on the command line (`groups add`, and recording
/// with `plugin test`).
#[derive(Debug, clap::Args)]
pub struct CredentialArgs {
    /// OAuth access token (prefer the environment variable: command lines are visible to other users).
    #[arg(long, env = "INLET_ACCESS_TOKEN", hide_env_values = true)]
    access_token: Option<String>,
    /// OAuth refresh token, for a consent given elsewhere (prefer the environment variable).
    #[arg(long, env = "INLET_REFRESH_TOKEN", hide_env_values = true, requires = "access_token")]
    refresh_token: Option<String>,
    /// API key (prefer the environment variable).
    #[arg(long, env = "INLET_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// User name for HTTP basic auth.
    #[arg(long)]
    username: Option<String>,
    /// Password for HTTP basic auth (prefer the environment variable).
    #[arg(long, env = "INLET_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

/// How a failed list (jobs, batches) is shown.
#[derive(Debug, clap::Args)]
pub struct FailedListArgs {
    #[arg(long, default_value_t = 50)]
    limit: i64,
    #[arg(long)]
    json: bool,
}

/// Which entries of a failed list to retry: one by id, or `--all`.
#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    /// Id of the one to retry.
    id: Option<i64>,
    /// Every one in the list.
    #[arg(long, conflicts_with = "id")]
    all: bool,
}

impl RetryArgs {
    /// `Some(id)`, or `None` for all; refused when neither was named.
    fn target(&self, what: &str) -> Result<Option<i64>> {
        match (self.id, self.all) {
            (None, false) => anyhow::bail!("name a {what} id, or --all"),
            (id, _) => Ok(id),
        }
    }
}

/// Print a value as pretty JSON on stdout.
fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
