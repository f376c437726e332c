//! What an operator sees per integration: Processing, Paused (with reason),
//! Plugin missing (its runs wait for the plugin), Retrying (its last attempt
//! failed and another is due), Failed (its last fetch, or the processing of
//! what it stored, failed for good; the schedule goes on), Needs update (due,
//! overdue, or queued and due), or Up to date (a run queued ahead of its due
//! time included).

use crate::domain::pause_reason::PauseReason;
use crate::store::integrations::Integration;
use crate::store::jobs::WaitingJob;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum UpdateStatus {
    Processing,
    Paused {
        reason: PauseReason,
    },
    PluginMissing,
    /// The last attempt failed; attempt `attempt` of `max_attempts` is due at `at`.
    Retrying {
        attempt: i64,
        max_attempts: i64,
        at: i64,
    },
    /// The last fetch, or the processing of what fetches stored, failed and
    /// will not be retried; the next fetch is the schedule's.
    Failed,
    NeedsUpdate,
    UpToDate,
}

/// An [`UpdateStatus`] without its details, to filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateStatusKind {
    Processing,
    Paused,
    PluginMissing,
    Retrying,
    Failed,
    NeedsUpdate,
    UpToDate,
}

impl UpdateStatus {
    pub fn kind(&self) -> UpdateStatusKind {
        match self {
            UpdateStatus::Processing => UpdateStatusKind::Processing,
            UpdateStatus::Paused { .. } => UpdateStatusKind::Paused,
            UpdateStatus::PluginMissing => UpdateStatusKind::PluginMissing,
            UpdateStatus::Retrying { .. } => UpdateStatusKind::Retrying,
            UpdateStatus::Failed => UpdateStatusKind::Failed,
            UpdateStatus::NeedsUpdate => UpdateStatusKind::NeedsUpdate,
            UpdateStatus::UpToDate => UpdateStatusKind::UpToDate,
        }
    }

    /// `waiting` is the job the integration waits on, if any;
    /// `processing_failed`, whether what its fetches store fails to process
    /// for good (its fetches may well succeed).
    pub fn of(
        integration: &Integration,
        plugin_loaded: bool,
        running: bool,
        waiting: Option<&WaitingJob>,
        processing_failed: bool,
        now: i64,
    ) -> UpdateStatus {
        if running {
            UpdateStatus::Processing
        } else if let Some(reason) = &integration.paused_reason {
            UpdateStatus::Paused { reason: *reason }
        } else if !plugin_loaded {
            UpdateStatus::PluginMissing
        } else if let Some(retry) = waiting.filter(|job| job.error_message.is_some()) {
            UpdateStatus::Retrying {
                attempt: retry.attempts_made + 1,
                max_attempts: retry.max_attempts,
                at: retry.run_at,
            }
        } else if integration.consecutive_failures > 0 || processing_failed {
            UpdateStatus::Failed
        } else if waiting.is_some_and(|job| job.run_at <= now) || integration.next_due_at.is_some_and(|due| due <= now)
        {
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
            UpdateStatus::Retrying { attempt, max_attempts, .. } => {
                format!("Retrying (attempt {attempt} of {max_attempts})")
            }
            UpdateStatus::Failed => "Failed".into(),
            UpdateStatus::NeedsUpdate => "Needs update".into(),
            UpdateStatus::UpToDate => "Up to date".into(),
        }
    }
}
