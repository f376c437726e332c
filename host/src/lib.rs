//! inlet: a host runtime that runs sandboxed WebAssembly integrations.
//!
//! [`Host::start`] wires the pieces: the [`store`] (SQLite), the [`runtime`]
//! (wasmtime engine and loaded plugins), and the [`sync::SyncRunner`] that runs
//! a plugin's fetch and process for an integration.

pub mod api;
pub mod auth;
pub mod capabilities;
pub mod cli;
pub mod clock;
pub mod demo;
pub mod domain;
pub mod harness;
pub mod housekeeping;
pub mod lease_owner;
pub mod metrics;
pub mod notify;
pub mod operations;
pub mod outbound;
pub mod private_files;
pub mod queue;
pub mod runtime;
pub mod scaffold;
pub mod schedule;
pub mod scheduler;
pub mod secrets;
pub mod settings;
pub mod status;
pub mod store;
pub mod sync;

use anyhow::{Context, Result};
use auth::OAuth;
use auth::oauth::TokenEndpoint;
use capabilities::cassette::Cassette;
use clock::{SharedClock, SystemClock};
use domain::queue::Queue;
use housekeeping::Housekeeping;
use notify::Notifier;
use queue::{QueueWorker, WorkerConfig};
use runtime::Runtime;
use runtime::registry::PluginRegistry;
use scheduler::{Scheduler, SchedulerConfig, SchedulerWake};
use secrets::SecretKey;
use settings::{QueuePolicy, Settings};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use sync::{ProcessQueue, SyncRunner};
use tokio::sync::{Notify, watch};

// The queue allocates on one thread and frees on another (rows built by the
// database driver's thread, dropped on tokio's); glibc's allocator takes an
// arena lock for that and spent a sixth of the queue's CPU. mimalloc frees
// across threads without a lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What a host takes from its embedder rather than from settings.
pub struct HostOptions {
    pub clock: SharedClock,
    /// Fetches record to it or replay from it instead of the network.
    pub cassette: Option<Arc<Cassette>>,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions { clock: Arc::new(SystemClock), cassette: None }
    }
}

/// A running host: database open and migrated, plugins loaded.
pub struct Host {
    pub settings: Settings,
    pub runner: Arc<SyncRunner>,
    /// Wakes the scheduler after a schedule change or trigger in this
    /// process, or a run's end that set a due time soon.
    pub scheduler_wake: Arc<SchedulerWake>,
    /// Wakes each queue's worker after a job is queued in this process.
    pub queue_wake: BTreeMap<&'static str, Arc<Notify>>,
}

/// Scheduler and workers running in the background.
pub struct Background {
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Background {
    /// Stop claiming, let running jobs finish within the grace period, hand
    /// back the rest, and give up the scheduler lease.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

impl Host {
    pub async fn start(settings: &Settings, options: HostOptions) -> Result<Host> {
        private_files::create_dir(&settings.data_dir)
            .with_context(|| format!("creating data folder {}", settings.data_dir.display()))?;
        let key_file = settings.data_dir.join("secret.key");
        let from_env = std::env::var("INLET_SECRET_KEY").ok();
        let loaded = SecretKey::load(from_env.as_deref(), &key_file)?;
        let unsaved = loaded.is_none();
        let secrets = Arc::new(loaded.unwrap_or_else(SecretKey::generate));
        let store = Store::open(&settings.database_url, options.clock, Arc::clone(&secrets)).await?;
        if unsaved {
            // A new key cannot open what an old one sealed: starting with one
            // would leave every group's credentials unreadable.
            let groups = store.groups().await?.len();
            anyhow::ensure!(
                groups == 0,
                "the database holds the sealed credentials of {groups} group(s), but the secret key {} is missing: \
                 restore that file or set INLET_SECRET_KEY to the key they were sealed with (a new key cannot \
                 read them; to start over, use a new database)",
                key_file.display()
            );
            secrets.save_new(&key_file)?;
        }
        if let Some(file) = store.database_file() {
            private_files::restrict(&file)?;
        }
        let runtime = Runtime::new(settings.compile_cache_dir(), settings.call_limits.clone())?;
        let plugins = Arc::new(PluginRegistry::load_dir(&runtime, &settings.plugins_dir).await?);
        let overrides = Arc::new(settings.upstream_overrides.clone());
        let http_client = outbound::client(&overrides);
        let notifier = Arc::new(Notifier::new(settings.notify_webhook_url.clone()));
        let oauth = OAuth::new(
            store.clone(),
            Arc::clone(&plugins),
            settings.oauth_clients.clone(),
            TokenEndpoint { client: http_client.clone(), overrides: Arc::clone(&overrides) },
            Arc::clone(&notifier),
            lease_owner::LeaseOwner::this_process().to_string(),
            settings.plugins.clone(),
        );
        let oauth = Arc::new(oauth);
        let housekeeping = Housekeeping {
            store: store.clone(),
            oauth: Arc::clone(&oauth),
            history_max_age: settings.history_max_age,
            processed_batches_max_age: settings.processed_batches_max_age,
            deleted_events_max_age: settings.deleted_events_max_age,
            history_max_runs: settings.history_max_runs,
        };
        let queue_wake: BTreeMap<&'static str, Arc<Notify>> =
            Queue::ALL.iter().map(|q| (q.as_str(), Arc::new(Notify::new()))).collect();
        let runner = SyncRunner {
            store,
            runtime,
            plugins,
            overrides,
            http_client,
            output_limits: settings.output_limits,
            request_timeout: settings.request_timeout,
            max_response_bytes: settings.max_response_bytes,
            notifier,
            oauth,
            rate_limits: Default::default(),
            plugin_settings: settings.plugins.clone(),
            pause_after_failures: settings.pause_after_failures,
            owner: lease_owner::LeaseOwner::this_process().to_string(),
            job_lease: settings.job_lease,
            cassette: options.cassette,
            housekeeping,
            process_queue: ProcessQueue {
                policy: settings.policy(Queue::Process),
                wake: Arc::clone(&queue_wake[Queue::Process.as_str()]),
            },
        };
        Ok(Host { settings: settings.clone(), runner: Arc::new(runner), scheduler_wake: Arc::default(), queue_wake })
    }

    pub fn store(&self) -> &Store {
        &self.runner.store
    }

    pub fn policy(&self, queue: Queue) -> QueuePolicy {
        self.settings.policy(queue)
    }

    /// Tell this process's scheduler and workers that something changed.
    pub fn wake(&self, queue: Queue) {
        self.scheduler_wake.now();
        self.queue_wake[queue.as_str()].notify_waiters();
    }

    /// Start the fetch workers, and the scheduler when `schedule` (a
    /// worker-only process leaves scheduling to `inlet serve`).
    pub fn start_background(&self, schedule: bool) -> Background {
        let (shutdown, receiver) = watch::channel(false);
        let worker_config = WorkerConfig {
            lease: self.settings.job_lease,
            grace: self.settings.shutdown_grace,
            ..WorkerConfig::default()
        };
        let mut tasks = Vec::new();
        if schedule {
            let scheduler = Arc::new(Scheduler::new(
                self.store().clone(),
                SchedulerConfig {
                    owner: worker_config.owner.clone(),
                    lease: Duration::from_secs(15),
                    fetch_max_attempts: self.policy(Queue::Fetch).max_attempts,
                },
                Arc::clone(&self.scheduler_wake),
                Arc::clone(&self.queue_wake[Queue::Fetch.as_str()]),
            ));
            tasks.push(tokio::spawn(scheduler.run(receiver.clone())));
        }
        // A fetch job stores batches and queues their processing; a process
        // job turns them into records (and those an operator asked to retry
        // or reprocess), a webhook job those a delivery left.
        for queue in Queue::ALL {
            let worker = QueueWorker::new(
                Arc::clone(&self.runner),
                queue,
                self.policy(queue),
                worker_config.clone(),
                Arc::clone(&self.queue_wake[queue.as_str()]),
                Arc::clone(&self.scheduler_wake),
            );
            tasks.push(tokio::spawn(worker.run(receiver.clone())));
        }
        tasks.push(tokio::spawn(watch_plugins(
            Arc::clone(&self.runner),
            self.settings.plugins_poll,
            Arc::clone(&self.queue_wake[Queue::Fetch.as_str()]),
            receiver,
        )));
        Background { shutdown, tasks }
    }
}

/// Pick up new, replaced and removed plugin files every `every` until shutdown.
/// Polling the folder's listing is cheap and works on every filesystem,
/// including mounted volumes where change notifications do not arrive.
async fn watch_plugins(
    runner: Arc<SyncRunner>,
    every: Duration,
    jobs: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let report = match runner.plugins.reload().await {
            Ok(report) => report,
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "reloading plugins failed");
                continue;
            }
        };
        let mut released = 0;
        for plugin in &report.loaded {
            match runner.store.release_jobs_waiting_for_plugin(plugin).await {
                Ok(count) => released += count,
                Err(error) => {
                    tracing::error!(plugin, error = %format!("{error:#}"), "releasing jobs that waited for a plugin failed")
                }
            }
        }
        if released > 0 {
            jobs.notify_waiters();
        }
    }
}
