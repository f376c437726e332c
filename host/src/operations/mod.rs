//! What an operator can do, shared by the CLI and the admin API: each
//! operation checks its input, names the bad field when it refuses, and
//! writes nothing unless everything is valid.

pub mod batches;
pub mod console;
pub mod groups;
pub mod integrations;
pub mod tokens;
pub mod updates;

use crate::schedule::ScheduleError;

#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    #[error("there is no {what} with id {id}")]
    NotFound { what: &'static str, id: String },
    /// Bad input: `field` names it (`config`, `schedule.timezone`, ...).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// Valid input that the current state does not allow.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    TooSoon { message: String, retry_after_seconds: u64 },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl OperationError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        OperationError::Invalid { field: field.into(), message: message.into() }
    }

    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        OperationError::NotFound { what, id: id.to_string() }
    }

    /// A schedule error, its field placed under `prefix` (e.g. `schedule`).
    pub fn schedule(prefix: &str, error: ScheduleError) -> Self {
        OperationError::invalid(format!("{prefix}.{}", error.field), error.message)
    }
}

pub type OperationResult<T> = Result<T, OperationError>;
