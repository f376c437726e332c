//! inlet: a host runtime that runs sandboxed WebAssembly integrations.
//!
//! [`Host::start`] wires the pieces: the [`store`] (SQLite), the [`runtime`]
//! (wasmtime engine and loaded plugins), and the [`sync::SyncRunner`] that runs
//! a plugin's fetch and process for an integration.

pub mod capabilities;
pub mod cli;
pub mod clock;
pub mod demo;
pub mod runtime;
pub mod settings;
pub mod store;
pub mod sync;

use anyhow::{Context, Result};
use capabilities::http;
use clock::{SharedClock, SystemClock};
use runtime::context::OutputLimits;
use runtime::registry::PluginRegistry;
use runtime::{CallLimits, Runtime};
use settings::Settings;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use sync::SyncRunner;

pub struct HostOptions {
    pub clock: SharedClock,
    pub call_limits: CallLimits,
    pub output_limits: OutputLimits,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            clock: Arc::new(SystemClock),
            call_limits: CallLimits::default(),
            output_limits: OutputLimits::default(),
        }
    }
}

/// A running host: database open and migrated, plugins loaded.
pub struct Host {
    pub settings: Settings,
    pub runner: Arc<SyncRunner>,
}

impl Host {
    pub async fn start(settings: &Settings, options: HostOptions) -> Result<Host> {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data folder {}", settings.data_dir.display()))?;
        let store = Store::open(&settings.database_url, options.clock).await?;
        let runtime = Runtime::new(settings.compile_cache_dir(), options.call_limits)?;
        let plugins = PluginRegistry::load_dir(&runtime, &settings.plugins_dir).await?;
        let runner = SyncRunner {
            store,
            runtime,
            plugins: Arc::new(plugins),
            overrides: Arc::new(settings.upstream_overrides.clone()),
            http_client: http::client(),
            output_limits: options.output_limits,
            request_timeout: Duration::from_secs(30),
            max_response_bytes: 16 * 1024 * 1024,
        };
        Ok(Host {
            settings: settings.clone(),
            runner: Arc::new(runner),
        })
    }

    pub fn store(&self) -> &Store {
        &self.runner.store
    }
}
