//! Why an integration is paused: it runs again only when its reason is gone.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PauseReason {
    /// An operator disabled it; only an operator enables it again.
    Operator,
    /// Too many runs in a row failed (`pause_after_failures`).
    Error,
    /// Its group's credentials were refused; reconnecting the group resumes it.
    NeedsReconnect,
}

impl PauseReason {
    pub const ALL: [PauseReason; 3] = [PauseReason::Operator, PauseReason::Error, PauseReason::NeedsReconnect];

    pub fn as_str(self) -> &'static str {
        match self {
            PauseReason::Operator => "operator",
            PauseReason::Error => "error",
            PauseReason::NeedsReconnect => "needs-reconnect",
        }
    }

    pub fn parse(value: &str) -> anyhow::Result<PauseReason> {
        super::parse_stored(&PauseReason::ALL, PauseReason::as_str, value, "pause reason")
    }
}

impl fmt::Display for PauseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
