//! `state`: the running integration's private key-value store. Reads see the
//! call's own uncommitted writes; writes become durable at the next checkpoint.
//! There is no way to name another integration: the scope fixes the id.

use super::{CallScope, FetchScope};

const MAX_KEY_BYTES: usize = 256;
const MAX_VALUE_BYTES: usize = 64 * 1024;

pub async fn get(scope: &mut CallScope, key: String) -> wasmtime::Result<Option<String>> {
    let scope = scope.fetch_scope("state")?;
    if let Some(pending) = scope.pending_state.get(&key) {
        return Ok(pending.clone());
    }
    scope.store.state_value(scope.integration_id, &key).await.map_err(|e| wasmtime::format_err!("reading state: {e:#}"))
}

pub fn set(scope: &mut CallScope, key: String, value: String) -> wasmtime::Result<()> {
    if value.len() > MAX_VALUE_BYTES {
        wasmtime::bail!("state key {}: values are limited to {MAX_VALUE_BYTES} bytes", shown(&key));
    }
    stage(scope.fetch_scope("state")?, key, Some(value))
}

pub fn delete(scope: &mut CallScope, key: String) -> wasmtime::Result<()> {
    stage(scope.fetch_scope("state")?, key, None)
}

/// Hold a state change until the next checkpoint. Held changes count against
/// the call's uncheckpointed bytes and the integration's key limit, so a
/// plugin cannot grow host memory outside its own.
fn stage(scope: &mut FetchScope, key: String, value: Option<String>) -> wasmtime::Result<()> {
    if key.len() > MAX_KEY_BYTES {
        wasmtime::bail!("state key {}: keys are limited to {MAX_KEY_BYTES} bytes", shown(&key));
    }
    let limits = scope.limits;
    let size = |value: &Option<String>| key.len() + value.as_ref().map_or(0, String::len);
    let replaced = scope.pending_state.get(&key).map_or(0, size);
    let pending = scope.pending_bytes - replaced + size(&value);
    if pending > limits.max_pending_bytes {
        wasmtime::bail!(
            "more than {} bytes of state and batches held without a checkpoint (limits.pending_bytes); checkpoint \
             after each page",
            limits.max_pending_bytes
        );
    }
    if !scope.pending_state.contains_key(&key) && scope.pending_state.len() as i64 >= limits.max_state_keys {
        wasmtime::bail!("an integration may hold at most {} state keys (limits.state_keys)", limits.max_state_keys);
    }
    scope.pending_bytes = pending;
    scope.pending_state.insert(key, value);
    Ok(())
}

/// A key as shown in an error: its start only.
fn shown(key: &str) -> String {
    format!("{:?}", key.chars().take(64).collect::<String>())
}
