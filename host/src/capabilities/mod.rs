//! The host side of each interface plugins import, one module per interface,
//! on the host's own types: each contract version's bindings (`runtime::wit`)
//! convert to these and call them, so a capability is written once whatever
//! the version. Everything a plugin can do outside its own memory is here,
//! and so is what one call may touch ([`CallScope`]).

pub mod batches;
pub mod cassette;
pub mod credentials;
pub mod http;
pub mod log;
pub mod quota;
pub mod rate_limit;
pub mod records;
pub mod signature;
pub mod state;

use crate::domain::plugin_call::RoutedBatch;
use crate::store::Store;
use crate::store::groups::Credentials;
use crate::store::jobs::JobLease;
use std::collections::BTreeMap;

/// What one plugin call may touch. A call gets only the scope its export
/// needs: `describe` and `process` get none, so the imports refuse; `fetch`
/// gets one integration; `handle-webhook` the group's signing key.
pub struct CallScope {
    pub plugin_id: String,
    pub fetch: Option<FetchScope>,
    /// The group's webhook secret, in `handle-webhook` calls only.
    pub signing: Option<signature::SigningKey>,
    /// Set when `signature.verify` answered valid in this call.
    pub signature_verified: bool,
    pub logs: log::RunLog,
}

impl CallScope {
    pub fn new(plugin_id: &str, logs: log::RunLog, fetch: Option<FetchScope>) -> CallScope {
        CallScope { plugin_id: plugin_id.to_string(), fetch, signing: None, signature_verified: false, logs }
    }

    /// The fetch scope, or a trap for a capability used outside `fetch`.
    pub fn fetch_scope(&mut self, capability: &str) -> wasmtime::Result<&mut FetchScope> {
        self.fetch
            .as_mut()
            .ok_or_else(|| wasmtime::format_err!("the {capability} capability is only available during fetch"))
    }
}

/// The integration a `fetch` call works for, and what it has produced so far.
pub struct FetchScope {
    pub store: Store,
    pub integration_id: i64,
    pub sync_run_id: i64,
    /// The lease of the run's job: checkpoints store nothing once it is lost.
    pub lease: Option<JobLease>,
    pub http: http::OutboundHttp,
    /// The group's credentials, only for an approved plugin that needs them raw.
    pub raw_credentials: Option<Credentials>,
    /// The group whose records the call may read: a task's only.
    pub records_group: Option<i64>,
    /// Emitted since the last checkpoint: `(kind, payload)`.
    pub pending_batches: Vec<(String, String)>,
    pub pending_bytes: usize,
    /// State writes since the last checkpoint; `None` deletes the key.
    pub pending_state: BTreeMap<String, Option<String>>,
    pub committed_batches: i64,
    pub limits: OutputLimits,
}

/// Caps on what one fetch may hand the host.
#[derive(Debug, Clone, Copy)]
pub struct OutputLimits {
    pub max_batch_bytes: usize,
    /// Uncheckpointed bytes (batches, and state keys and values) held in
    /// memory at once.
    pub max_pending_bytes: usize,
    pub max_batches_per_run: i64,
    /// State keys one integration may hold.
    pub max_state_keys: i64,
}

impl OutputLimits {
    /// Why a batch of `size` bytes (kind and payload) is refused, if it is.
    pub fn refuse_batch(&self, size: usize) -> Option<String> {
        (size > self.max_batch_bytes)
            .then(|| format!("batch of {size} bytes exceeds the {}-byte cap", self.max_batch_bytes))
    }

    /// Why a webhook delivery's batches are refused, if they are: each is
    /// held to a fetch's cap, and all of them to what a fetch may hold
    /// between two checkpoints (one small delivery must not become
    /// hundreds of megabytes in the database).
    pub fn refuse_delivery(&self, batches: &[RoutedBatch]) -> Option<String> {
        let sizes = batches.iter().map(|b| b.instance_type.len() + b.batch.kind.len() + b.batch.payload.len());
        if let Some(refused) = sizes.clone().find_map(|size| self.refuse_batch(size)) {
            return Some(refused);
        }
        if batches.len() as i64 > self.max_batches_per_run {
            return Some(format!("a delivery may make at most {} batches", self.max_batches_per_run));
        }
        let total: usize = sizes.sum();
        (total > self.max_pending_bytes)
            .then(|| format!("a delivery may make at most {} bytes of batches, not {total}", self.max_pending_bytes))
    }
}

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits {
            max_batch_bytes: 8 * 1024 * 1024,
            max_pending_bytes: 64 * 1024 * 1024,
            max_batches_per_run: 100_000,
            max_state_keys: 10_000,
        }
    }
}
