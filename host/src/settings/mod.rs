//! Where inlet keeps things and how it reaches upstreams: command-line flags
//! and environment variables first, then the config file, then defaults.

use crate::capabilities::OutputLimits;
use crate::domain::manifest::RateLimit;
use crate::domain::queue::Queue;
use crate::outbound::UpstreamOverrides;
use crate::runtime::CallLimits;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

mod oauth_clients;
mod queue_policy;

pub use oauth_clients::{OAuthClient, OAuthClients, Secret};
pub use queue_policy::{Decision, QueuePolicy, decide};

#[derive(Debug, Clone, clap::Args)]
pub struct SettingsArgs {
    /// Folder for the SQLite database, the compile cache and keys.
    #[arg(long, env = "INLET_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Database URL; default sqlite://<data dir>/inlet.db.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Folder whose *.wasm files are loaded as plugins.
    #[arg(long, env = "INLET_PLUGINS_DIR", global = true)]
    pub plugins_dir: Option<PathBuf>,

    /// Config file (TOML); default ./inlet.toml when it exists.
    #[arg(long, env = "INLET_CONFIG", global = true)]
    pub config_file: Option<PathBuf>,

    /// Send a plugin's requests for a declared host to another base URL:
    /// `api.monzo.com=http://127.0.0.1:9001[,host=url...]`.
    #[arg(long, env = "INLET_UPSTREAM_OVERRIDE", global = true, value_name = "HOST=URL,...")]
    pub upstream_override: Option<String>,

    /// Where browsers reach this host, e.g. https://inlet.example.com (OAuth
    /// redirect URIs are built from it); by default the address `serve` listens on.
    #[arg(long, env = "INLET_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
}

/// The config file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    plugins_dir: Option<PathBuf>,
    #[serde(default)]
    upstream_override: BTreeMap<String, String>,
    /// Receives a JSON POST when an integration is paused by errors.
    notify_webhook_url: Option<String>,
    /// Failed runs in a row that pause an integration (default 3).
    pause_after_failures: Option<i64>,
    /// A job whose worker stops renewing for this long is rescued (default 30).
    job_lease_seconds: Option<u64>,
    /// On SIGTERM/SIGINT, how long running jobs may take to finish (default 30).
    shutdown_grace_seconds: Option<u64>,
    /// Sync history kept (defaults 30 days, 500 runs per integration).
    history_max_age_days: Option<u64>,
    /// Processed raw batches kept for `inlet reprocess` (default: as long as
    /// the history); 0 keeps none past the next housekeeping.
    processed_batches_max_age_days: Option<u64>,
    /// Deleted events kept for the change feed to list (default 30): a
    /// promise to the feed's readers, apart from the history's. Deleted
    /// objects and blocks are kept as long.
    deleted_events_max_age_days: Option<u64>,
    history_max_runs: Option<i64>,
    /// Per-queue overrides of the default policies, keyed fetch/process/webhook.
    #[serde(default)]
    queues: BTreeMap<String, QueueOverride>,
    public_url: Option<String>,
    plugins_poll_seconds: Option<f64>,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    oauth: BTreeMap<String, OAuthClient>,
    #[serde(default)]
    plugins: BTreeMap<String, PluginSettings>,
    /// "Update now" requests for one integration closer together than this
    /// are refused (default 10; `force=true` bypasses it).
    min_sync_request_seconds: Option<u64>,
    /// `/metrics` asks for an admin token like `/api` (default false: the
    /// metrics name plugins, not secrets, and scrapers often send none).
    #[serde(default)]
    metrics_require_token: bool,
}

/// `[limits]`: what one plugin call may use. Every field has a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    /// Linear memory per plugin instance, in MiB.
    memory_mb: Option<usize>,
    /// Plugin instances alive at once (pooling allocator slots).
    instances: Option<u32>,
    /// Bytes of one emitted batch.
    batch_bytes: Option<usize>,
    /// Bytes emitted and not yet checkpointed.
    pending_bytes: Option<usize>,
    batches_per_run: Option<i64>,
    /// State keys one integration may hold.
    state_keys: Option<i64>,
    log_lines_per_run: Option<usize>,
    log_line_bytes: Option<usize>,
    request_timeout_seconds: Option<u64>,
    /// Bytes of one upstream response body.
    response_bytes: Option<u64>,
    /// Largest webhook delivery body accepted, in MiB (default 16).
    webhook_mb: Option<u64>,
    /// Webhook deliveries received at once (default 16), a quarter of them
    /// (at least one) per group; more get 503.
    webhook_concurrency: Option<usize>,
}

/// What the operator decides per plugin (`[plugins.<id>]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    /// Ceiling on requests per group, replacing the manifest's.
    pub rate_limit: Option<RateLimit>,
    /// The declared hosts the operator approves; by default all of them.
    pub hosts: Option<Vec<String>>,
    /// Let a plugin whose manifest needs raw credentials read them.
    #[serde(default)]
    pub approve_raw_credentials: bool,
}

impl PluginSettings {
    /// The declared hosts the operator approved: `hosts` may narrow the
    /// manifest's list, never widen it.
    pub fn approved_hosts(settings: Option<&PluginSettings>, declared: &[String]) -> Vec<String> {
        match settings.and_then(|p| p.hosts.as_ref()) {
            Some(approved) => declared.iter().filter(|host| approved.contains(host)).cloned().collect(),
            None => declared.to_vec(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueOverride {
    concurrency: Option<usize>,
    timeout_seconds: Option<u64>,
    max_attempts: Option<i64>,
    backoff_seconds: Option<Vec<u64>>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub plugins_dir: PathBuf,
    pub upstream_overrides: UpstreamOverrides,
    pub notify_webhook_url: Option<String>,
    pub pause_after_failures: i64,
    pub job_lease: Duration,
    pub shutdown_grace: Duration,
    pub history_max_age: Duration,
    /// How long processed batches are kept, to be reprocessed.
    pub processed_batches_max_age: Duration,
    /// How long deleted events stay in the change feed (and deleted objects
    /// and blocks are kept).
    pub deleted_events_max_age: Duration,
    pub history_max_runs: i64,
    /// Each queue's policy (the config file's changes to the defaults), by name.
    queue_policies: BTreeMap<String, QueuePolicy>,
    /// Where browsers reach this host (OAuth redirect URIs); by default the
    /// address `inlet serve` listens on.
    pub public_url: Option<Url>,
    pub oauth_clients: OAuthClients,
    pub plugins: BTreeMap<String, PluginSettings>,
    /// How often a running host looks for new, replaced or removed plugin files.
    pub plugins_poll: Duration,
    pub call_limits: CallLimits,
    pub output_limits: OutputLimits,
    /// Longest an upstream request may take.
    pub request_timeout: Duration,
    pub max_response_bytes: u64,
    pub min_sync_request_gap: Duration,
    pub webhook_max_bytes: usize,
    pub webhook_concurrency: usize,
    pub metrics_require_token: bool,
}

impl Settings {
    /// `queue`'s policy: the design's defaults with the config file's changes.
    pub fn policy(&self, queue: Queue) -> QueuePolicy {
        self.queue_policies[queue.as_str()].clone()
    }

    pub fn resolve(args: &SettingsArgs) -> Result<Settings> {
        let file = match &args.config_file {
            Some(path) => read_config(path)?,
            None if Path::new("inlet.toml").exists() => read_config(Path::new("inlet.toml"))?,
            None => ConfigFile::default(),
        };
        let data_dir = args.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from(".inlet"));
        let database_url = args
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("inlet.db").display()));
        let plugins_dir = args.plugins_dir.clone().or(file.plugins_dir).unwrap_or_else(|| PathBuf::from("plugins"));

        let mut upstream_overrides = UpstreamOverrides::default();
        for (host, base) in &file.upstream_override {
            upstream_overrides.insert(host, base)?;
        }
        if let Some(list) = &args.upstream_override {
            upstream_overrides.extend(UpstreamOverrides::parse_list(list).context("INLET_UPSTREAM_OVERRIDE")?);
        }
        let mut queue_policies = BTreeMap::new();
        for (name, changes) in file.queues {
            let queue = Queue::ALL.into_iter().find(|q| q.as_str() == name).ok_or_else(|| {
                anyhow::anyhow!("config: [queues.{name}] is not a queue; the queues are fetch, process, webhook")
            })?;
            let mut policy = QueuePolicy::default_for(queue);
            if let Some(n) = changes.concurrency {
                anyhow::ensure!(n >= 1, "config: queues.{name}.concurrency must be at least 1");
                policy.concurrency = n;
            }
            if let Some(seconds) = changes.timeout_seconds {
                policy.timeout = Duration::from_secs(seconds);
            }
            if let Some(n) = changes.max_attempts {
                anyhow::ensure!(n >= 1, "config: queues.{name}.max_attempts must be at least 1");
                policy.max_attempts = n;
            }
            if let Some(list) = changes.backoff_seconds {
                anyhow::ensure!(!list.is_empty(), "config: queues.{name}.backoff_seconds must not be empty");
                policy.backoff = list.into_iter().map(Duration::from_secs).collect();
            }
            queue_policies.insert(name, policy);
        }
        for queue in Queue::ALL {
            queue_policies.entry(queue.as_str().to_string()).or_insert_with(|| QueuePolicy::default_for(queue));
        }
        let public_url = args
            .public_url
            .clone()
            .or(file.public_url)
            .map(|text| {
                Url::parse(&text)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .with_context(|| format!("public_url: {text:?} is not an http:// or https:// URL"))
            })
            .transpose()?;
        let pause_after_failures = file.pause_after_failures.unwrap_or(3);
        for (id, plugin) in &file.plugins {
            if let Some(limit) = plugin.rate_limit {
                limit.validate(&format!("config: plugins.{id}.rate_limit"))?;
            }
        }
        let plugins = file.plugins;
        let limits = &file.limits;
        let at_least_one = |field: &str, value: Option<u64>| -> Result<Option<u64>> {
            anyhow::ensure!(value != Some(0), "config: limits.{field} must be at least 1");
            Ok(value)
        };
        let as_u64 = |v: Option<usize>| v.map(|v| v as u64);
        let mut call_limits = CallLimits::default();
        if let Some(mb) = at_least_one("memory_mb", as_u64(limits.memory_mb))? {
            anyhow::ensure!(
                mb <= 4096,
                "config: limits.memory_mb must be at most 4096 (a 32-bit plugin's address space)"
            );
            call_limits.max_memory_bytes = mb as usize * 1024 * 1024;
        }
        if let Some(n) = at_least_one("instances", limits.instances.map(u64::from))? {
            call_limits.max_concurrent_instances = n as u32;
        }
        if let Some(n) = at_least_one("log_lines_per_run", as_u64(limits.log_lines_per_run))? {
            call_limits.max_log_lines = n as usize;
        }
        if let Some(n) = at_least_one("log_line_bytes", as_u64(limits.log_line_bytes))? {
            call_limits.max_log_line_bytes = n as usize;
        }
        for (queue, timeout) in [
            (Queue::Fetch, &mut call_limits.fetch_timeout),
            (Queue::Process, &mut call_limits.process_timeout),
            (Queue::Webhook, &mut call_limits.webhook_timeout),
        ] {
            *timeout = queue_policies[queue.as_str()].timeout;
        }
        let mut output_limits = OutputLimits::default();
        if let Some(n) = at_least_one("batch_bytes", as_u64(limits.batch_bytes))? {
            output_limits.max_batch_bytes = n as usize;
        }
        if let Some(n) = at_least_one("pending_bytes", as_u64(limits.pending_bytes))? {
            output_limits.max_pending_bytes = n as usize;
        }
        if let Some(n) = at_least_one("batches_per_run", limits.batches_per_run.map(|n| n.max(0) as u64))? {
            output_limits.max_batches_per_run = n as i64;
        }
        if let Some(n) = at_least_one("state_keys", limits.state_keys.map(|n| n.max(0) as u64))? {
            output_limits.max_state_keys = n as i64;
        }
        let request_timeout =
            Duration::from_secs(at_least_one("request_timeout_seconds", limits.request_timeout_seconds)?.unwrap_or(30));
        let max_response_bytes = at_least_one("response_bytes", limits.response_bytes)?.unwrap_or(16 * 1024 * 1024);
        anyhow::ensure!(pause_after_failures >= 1, "config: pause_after_failures must be at least 1");
        let webhook_max_mb = at_least_one("webhook_mb", limits.webhook_mb)?.unwrap_or(16);
        anyhow::ensure!(webhook_max_mb <= 1024, "config: limits.webhook_mb must be at most 1024");
        // Retention periods, in days (30 by default).
        let retention = |days: Option<u64>| Duration::from_secs(days.unwrap_or(30) * 86_400);
        Ok(Settings {
            data_dir,
            database_url,
            plugins_dir,
            upstream_overrides,
            notify_webhook_url: file.notify_webhook_url,
            pause_after_failures,
            job_lease: Duration::from_secs(file.job_lease_seconds.unwrap_or(30).max(1)),
            shutdown_grace: Duration::from_secs(file.shutdown_grace_seconds.unwrap_or(30)),
            history_max_age: retention(file.history_max_age_days),
            processed_batches_max_age: retention(file.processed_batches_max_age_days.or(file.history_max_age_days)),
            deleted_events_max_age: retention(file.deleted_events_max_age_days),
            history_max_runs: file.history_max_runs.unwrap_or(500),
            queue_policies,
            public_url,
            oauth_clients: OAuthClients::from_config(file.oauth),
            plugins,
            plugins_poll: Duration::from_secs_f64(file.plugins_poll_seconds.unwrap_or(2.0).clamp(0.1, 3600.0)),
            call_limits,
            output_limits,
            request_timeout,
            max_response_bytes,
            min_sync_request_gap: Duration::from_secs(file.min_sync_request_seconds.unwrap_or(10)),
            webhook_max_bytes: webhook_max_mb as usize * 1024 * 1024,
            webhook_concurrency: at_least_one("webhook_concurrency", as_u64(limits.webhook_concurrency))?
                .map_or(16, |n| n as usize),
            metrics_require_token: file.metrics_require_token,
        })
    }

    pub fn compile_cache_dir(&self) -> PathBuf {
        self.data_dir.join("compiled")
    }
}

fn read_config(path: &Path) -> Result<ConfigFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
}
