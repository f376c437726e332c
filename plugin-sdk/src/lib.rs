//! The inlet plugin SDK.
//!
//! A plugin is a type implementing [`Plugin`]; only [`Plugin::describe`] is
//! required, the rest default to "not supported". [`export_plugin!`] turns the
//! type into the component's exports:
//!
//! ```no_run
//! use inlet_plugin_sdk::prelude::*;
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn describe() -> Manifest {
//!         Manifest::new("hello", "Hello", "0.1.0")
//!             .instance_type(InstanceType::new("greetings", "Greetings").host("api.example.com"))
//!     }
//!
//!     fn fetch(request: FetchRequest) -> Result<FetchSummary, PluginError> {
//!         let greetings: serde_json::Value = http::get("https://api.example.com/greetings").send_json()?;
//!         emit_json("greetings", &greetings)?;
//!         Ok(FetchSummary::default())
//!     }
//! }
//!
//! inlet_plugin_sdk::export_plugin!(Hello);
//! # fn main() {}
//! ```
//!
//! Helpers: builders for the [`manifest`] and [`record`]s, [`dispatch!`] by
//! instance type, [`paginate`] (Link header, cursor, page numbers),
//! [`conditional`] requests, typed [`state::Key`]s, deletions inferred
//! from a complete read ([`snapshot`]). `inlet plugin new`
//! starts a project with all of it; `inlet plugin test` runs it offline.
//!
//! Build with `cargo build --target wasm32-wasip2` and drop the `.wasm` file
//! into the host's plugins folder.

pub mod backfill;
pub mod conditional;
pub mod http;
pub mod manifest;
pub mod output;
pub mod paginate;
pub mod record;
pub mod snapshot;
pub mod state;
pub mod time;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        // The contract this SDK builds for (inlet:plugin@0.2.0), carried in
        // the crate: the files are links to the repository's wit/0.2.0.
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export_bindings",
        default_bindings_module: "inlet_plugin_sdk::bindings",
    });
}

pub use bindings::inlet::plugin::credentials;
pub use bindings::inlet::plugin::log::Level;
/// Read the group's records, for tasks: `records::query_events`, `records::query_objects`.
pub use bindings::inlet::plugin::records;
pub use bindings::inlet::plugin::signature::{Scheme as SignatureScheme, verify as verify_signature};
pub use bindings::inlet::plugin::types::{
    ApiKeyAuth, AuthKind, BlockRecord, CronSchedule, EventRecord, FetchMode, FetchRequest, FetchSummary, InstanceKind,
    InstanceType, KeyPlacement, Manifest, Oauth2Auth, ObjectRecord, PluginError, Quota, QuotaPeriod, RateLimit,
    RateLimited, RawBatch, RecordClass, Records, RoutedBatch, Schedule, ScheduleHint, SecretExchangeAuth, Timestamp,
    Tombstone, Trigger, WebhookAnswer, WebhookAuth, WebhookDelivery, WebhookOutcome,
};

/// Everything a plugin usually needs, in one import.
pub mod prelude {
    pub use crate::output::{self, checkpoint, emit_json};
    pub use crate::{
        AuthKind, BlockRecord, EventRecord, FetchMode, FetchRequest, FetchSummary, InstanceKind, InstanceType,
        KeyPlacement, Manifest, Oauth2Auth, ObjectRecord, Plugin, PluginError, Quota, QuotaPeriod, RawBatch,
        RecordClass, Records, RoutedBatch, Schedule, ScheduleHint, Tombstone, Trigger, WebhookAnswer, WebhookAuth,
        WebhookDelivery, WebhookOutcome, log,
    };
    pub use crate::{backfill, conditional, dispatch, http, paginate, parse_config, snapshot, state, time};
}

/// Run the arm for the request's instance type; any other is refused as bad
/// config, naming the instance types there are.
///
/// ```no_run
/// use inlet_plugin_sdk::prelude::*;
///
/// fn fetch(request: FetchRequest) -> Result<FetchSummary, PluginError> {
///     dispatch!(request.instance_type, {
///         "items" => Ok(FetchSummary::default()),
///         "users" => Ok(FetchSummary::default()),
///     })
/// }
/// ```
#[macro_export]
macro_rules! dispatch {
    ($instance_type:expr, { $($id:literal => $arm:expr),+ $(,)? }) => {
        match ::core::convert::AsRef::<str>::as_ref(&$instance_type) {
            $($id => $arm,)+
            other => Err($crate::PluginError::InvalidConfig(format!(
                "there is no instance type {other:?}; there are {}",
                [$($id),+].join(", ")
            ))),
        }
    };
}

/// An inlet plugin. Implement `describe` and whichever of the rest your
/// service needs; the defaults answer that the plugin does not support it.
pub trait Plugin {
    /// The manifest: identity, auth, instance types, hosts, config schemas.
    fn describe() -> Manifest;

    /// Page through the upstream API, emitting raw batches as you go.
    fn fetch(request: FetchRequest) -> Result<FetchSummary, PluginError> {
        // An operator's request is not a schedule to take away; anything
        // else may be one (a first scheduled run comes as a backfill).
        let hint = match request.trigger {
            Trigger::Manual => "",
            _ => {
                "; an instance type that only webhooks feed is declared `.manual()`, so that no fetch of it is scheduled"
            }
        };
        Err(PluginError::Permanent(format!(
            "this plugin does not fetch (asked for instance type {:?}){hint}",
            request.instance_type
        )))
    }

    /// Map one raw batch to records. Pure: no network.
    fn process(batch: RawBatch) -> Result<Records, PluginError> {
        Err(PluginError::Permanent(format!("this plugin does not process batches of kind {:?}", batch.kind)))
    }

    /// Turn a push delivery into batches (a `Vec<RoutedBatch>` converts with
    /// `.into()`), and answer it when the sender expects an answer.
    fn handle_webhook(_delivery: WebhookDelivery) -> Result<WebhookOutcome, PluginError> {
        Err(PluginError::Permanent("this plugin does not accept webhooks".to_string()))
    }
}

/// Export a [`Plugin`] implementation as the component's entry points.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct InletPluginExports;

        impl $crate::bindings::Guest for InletPluginExports {
            fn describe() -> $crate::Manifest {
                <$plugin as $crate::Plugin>::describe()
            }
            fn fetch(
                request: $crate::FetchRequest,
            ) -> Result<$crate::FetchSummary, $crate::PluginError> {
                <$plugin as $crate::Plugin>::fetch(request)
            }
            fn process(batch: $crate::RawBatch) -> Result<$crate::Records, $crate::PluginError> {
                <$plugin as $crate::Plugin>::process(batch)
            }
            fn handle_webhook(
                delivery: $crate::WebhookDelivery,
            ) -> Result<$crate::WebhookOutcome, $crate::PluginError> {
                <$plugin as $crate::Plugin>::handle_webhook(delivery)
            }
        }

        $crate::bindings::export_bindings!(InletPluginExports with_types_in $crate::bindings);
    };
}

/// Log lines kept with the sync run.
pub mod log {
    use crate::bindings::inlet::plugin::log as host;
    pub use host::Level;

    pub fn debug(message: impl AsRef<str>) {
        host::log(Level::Debug, message.as_ref());
    }
    pub fn info(message: impl AsRef<str>) {
        host::log(Level::Info, message.as_ref());
    }
    pub fn warn(message: impl AsRef<str>) {
        host::log(Level::Warn, message.as_ref());
    }
    pub fn error(message: impl AsRef<str>) {
        host::log(Level::Error, message.as_ref());
    }
    /// Report progress of long work; shown as a progress bar.
    pub fn progress(done: u64, total: Option<u64>) {
        host::progress(done, total);
    }
}

// The bindings are generated, so `Default` cannot be derived on them here.
#[allow(clippy::derivable_impls)]
impl Default for Records {
    fn default() -> Self {
        Records { objects: Vec::new(), events: Vec::new(), blocks: Vec::new(), deleted: Vec::new() }
    }
}

#[allow(clippy::derivable_impls)]
impl Default for FetchSummary {
    fn default() -> Self {
        FetchSummary { items_seen: 0, note: None, not_before: None }
    }
}

impl FetchSummary {
    /// Ask that the next run start no earlier than `at` (ms since the epoch),
    /// because `reason`, which the operator sees: the upstream's poll
    /// interval, a quota that resets then.
    pub fn not_before(self, at: Timestamp, reason: impl Into<String>) -> Self {
        FetchSummary { not_before: Some(ScheduleHint { at, reason: reason.into() }), ..self }
    }
}

#[allow(clippy::derivable_impls)]
impl Default for WebhookOutcome {
    fn default() -> Self {
        WebhookOutcome { batches: Vec::new(), answer: None }
    }
}

impl From<Vec<RoutedBatch>> for WebhookOutcome {
    /// Batches, and the host's own answer to the sender.
    fn from(batches: Vec<RoutedBatch>) -> Self {
        WebhookOutcome { batches, answer: None }
    }
}

impl WebhookOutcome {
    /// Answer the sender with `body` (status 200) instead of the host's answer.
    pub fn answer(self, content_type: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        let answer = WebhookAnswer { status: 200, content_type: content_type.into(), body: body.into() };
        WebhookOutcome { answer: Some(answer), ..self }
    }
}

impl From<serde_json::Error> for PluginError {
    /// Data that does not have the expected shape will not get better on retry.
    fn from(error: serde_json::Error) -> Self {
        PluginError::Permanent(format!("unexpected data shape: {error}"))
    }
}

/// Parse an integration's JSON config into the plugin's own type, reporting
/// bad config as [`PluginError::InvalidConfig`].
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, PluginError> {
    let config = if config.trim().is_empty() { "{}" } else { config };
    serde_json::from_str(config).map_err(|e| PluginError::InvalidConfig(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plugin fed only by webhooks, which forgot `.manual()`.
    struct PushOnly;

    impl Plugin for PushOnly {
        fn describe() -> Manifest {
            Manifest::new("push-only", "Push only", "0.1.0")
        }
    }

    #[test]
    fn a_scheduled_fetch_of_a_plugin_that_does_not_fetch_says_what_to_declare() {
        let request = FetchRequest {
            instance_type: "events".into(),
            config: "{}".into(),
            mode: FetchMode::Backfill(0),
            // How the schedule asks: an integration that never fetched
            // has each of its runs backfill.
            trigger: Trigger::Backfill,
        };
        let Err(PluginError::Permanent(message)) = PushOnly::fetch(request.clone()) else {
            panic!("a plugin without fetch fails the fetch for good");
        };
        assert!(message.contains("\"events\"") && message.contains(".manual()"), "{message}");
        // Asked for by an operator, it is not a schedule to take away.
        let Err(PluginError::Permanent(message)) =
            PushOnly::fetch(FetchRequest { trigger: Trigger::Manual, ..request })
        else {
            panic!("a plugin without fetch fails the fetch for good");
        };
        assert!(!message.contains(".manual()"), "{message}");
    }
}
