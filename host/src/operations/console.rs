//! What the console's menu shows beside its pages, and what tells an open
//! page that its list changed: what needs the operator, in counts cheap
//! enough to read each time the Updates stream looks for changes.

use crate::Host;
use anyhow::Result;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ConsoleSummary {
    /// Jobs in the failed list.
    pub failed_jobs: i64,
    /// When the newest of them failed (ms): a new failure changes it even
    /// when a retry took another out of the list meanwhile.
    pub newest_failure_at: Option<i64>,
    /// Connected accounts.
    pub groups: i64,
    /// Of them, those whose credentials the provider refused.
    pub groups_need_reconnect: i64,
    /// The SHA-256 of each loaded plugin's file, sorted: a new build of one changes it.
    pub plugin_files: Vec<String>,
    /// Files in the plugins folder that did not load.
    pub plugin_load_failures: Vec<String>,
}

pub async fn summary(host: &Host) -> Result<ConsoleSummary> {
    let store = host.store();
    let (failed_jobs, newest_failure_at) = store.failed_job_count().await?;
    let (groups, groups_need_reconnect) = store.group_count().await?;
    let plugins = &host.runner.plugins;
    let mut plugin_files: Vec<String> = plugins.plugins().iter().map(|p| p.sha256.clone()).collect();
    plugin_files.sort();
    let mut plugin_load_failures: Vec<String> =
        plugins.failures().into_iter().map(|f| f.path.display().to_string()).collect();
    plugin_load_failures.sort();
    Ok(ConsoleSummary {
        failed_jobs,
        newest_failure_at,
        groups,
        groups_need_reconnect,
        plugin_files,
        plugin_load_failures,
    })
}
