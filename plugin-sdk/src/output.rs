//! Handing raw batches to the host during `fetch`.

use crate::PluginError;
use crate::RawBatch;
use crate::bindings::inlet::plugin::batches as host;

/// Emit one raw batch whose payload is `payload` serialised as JSON.
pub fn emit_json<T: serde::Serialize>(kind: &str, payload: &T) -> Result<(), PluginError> {
    let batch = RawBatch { kind: kind.to_string(), payload: serde_json::to_string(payload)? };
    host::emit(&batch).map_err(PluginError::Permanent)
}

/// Commit emitted batches and state changes together. Call it after each
/// page, once the cursor in state points past that page.
pub fn checkpoint() -> Result<(), PluginError> {
    host::checkpoint().map_err(PluginError::Transient)
}
