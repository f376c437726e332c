//! Whether a group's credentials still work.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GroupStatus {
    Ok,
    /// The provider refused its refresh token: an operator must connect it again.
    NeedsReconnect,
}

impl GroupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Ok => "ok",
            GroupStatus::NeedsReconnect => "needs-reconnect",
        }
    }

    pub fn parse(value: &str) -> anyhow::Result<GroupStatus> {
        super::parse_stored(&[GroupStatus::Ok, GroupStatus::NeedsReconnect], GroupStatus::as_str, value, "group status")
    }
}

impl fmt::Display for GroupStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
