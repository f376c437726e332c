//! What an operator sees per integration: Processing, Paused (with reason),
//! Needs update (due, overdue or queued), or Up to date.

use crate::store::integrations::Integration;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum UpdateStatus {
    Processing,
    Paused { reason: String },
    NeedsUpdate,
    UpToDate,
}

impl UpdateStatus {
    pub fn of(integration: &Integration, running: bool, queued: bool, now: i64) -> UpdateStatus {
        if running {
            UpdateStatus::Processing
        } else if let Some(reason) = &integration.paused_reason {
            UpdateStatus::Paused { reason: reason.clone() }
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
            UpdateStatus::NeedsUpdate => "Needs update".into(),
            UpdateStatus::UpToDate => "Up to date".into(),
        }
    }
}
