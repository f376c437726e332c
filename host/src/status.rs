//! What an operator sees per integration: Processing, Paused (with reason),
//! Plugin missing (its runs wait for the plugin), Needs update (due, overdue
//! or queued), or Up to date.

use crate::domain::pause_reason::PauseReason;
use crate::store::integrations::Integration;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum UpdateStatus {
    Processing,
    Paused { reason: PauseReason },
    PluginMissing,
    NeedsUpdate,
    UpToDate,
}

impl UpdateStatus {
    pub fn of(integration: &Integration, plugin_loaded: bool, running: bool, queued: bool, now: i64) -> UpdateStatus {
        if running {
            UpdateStatus::Processing
        } else if let Some(reason) = &integration.paused_reason {
            UpdateStatus::Paused { reason: *reason }
        } else if !plugin_loaded {
            UpdateStatus::PluginMissing
        } else if queued || integration.next_due_at.is_some_and(|due| due <= now) {
            UpdateStatus::NeedsUpdate
        } else {
            UpdateStatus::UpToDate
        }
    }

    pub fn label(&self) -> String {
        match self {
            UpdateStatus::Processing => "Processing".into(),
            UpdateStatus::Paused { reason } => format!("Paused ({reason})"),
            UpdateStatus::PluginMissing => "Plugin missing".into(),
            UpdateStatus::NeedsUpdate => "Needs update".into(),
            UpdateStatus::UpToDate => "Up to date".into(),
        }
    }
}
