//! Why a run or job failed, as stored in `error_class`; the queue decides
//! about retries from it.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
