//! Why a run or job failed, as stored in `error_class`; the queue decides
//! about retries from it.

#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "kebab-case")]
pub enum ErrorClass {
    Transient,
    RateLimited,
    Unauthorized,
    InvalidConfig,
    Permanent,
    /// The plugin crashed (panic, trap) or ran past its deadline.
    Trap,
    /// The integration's plugin is not loaded.
    PluginMissing,
    /// The host failed around the plugin (database, I/O).
    Host,
    /// The worker running it stopped renewing its lease (crashed, cut off).
    LeaseExpired,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 9] = [
        ErrorClass::Transient,
        ErrorClass::RateLimited,
        ErrorClass::Unauthorized,
        ErrorClass::InvalidConfig,
        ErrorClass::Permanent,
        ErrorClass::Trap,
        ErrorClass::PluginMissing,
        ErrorClass::Host,
        ErrorClass::LeaseExpired,
    ];

    pub fn parse(value: &str) -> anyhow::Result<ErrorClass> {
        super::parse_stored(&ErrorClass::ALL, ErrorClass::as_str, value, "error class")
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::RateLimited => "rate-limited",
            ErrorClass::Unauthorized => "unauthorized",
            ErrorClass::InvalidConfig => "invalid-config",
            ErrorClass::Permanent => "permanent",
            ErrorClass::Trap => "trap",
            ErrorClass::PluginMissing => "plugin-missing",
            ErrorClass::Host => "host",
            ErrorClass::LeaseExpired => "lease-expired",
        }
    }
}

/// As stored: `rate-limited`, `invalid-config`, ...
impl serde::Serialize for ErrorClass {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
