//! `state`: the running integration's private key-value store. Reads see the
//! call's own uncommitted writes; writes become durable at the next checkpoint.
//! There is no way to name another integration: the scope fixes the id.

use crate::runtime::context::PluginCtx;
use crate::runtime::wit::inlet::plugin::state;

const MAX_KEY_BYTES: usize = 256;
const MAX_VALUE_BYTES: usize = 64 * 1024;

impl state::Host for PluginCtx {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        let scope = self.fetch_scope("state")?;
        if let Some(pending) = scope.pending_state.get(&key) {
            return Ok(pending.clone());
        }
        scope
            .store
            .state_value(scope.integration_id, &key)
            .await
            .map_err(|e| wasmtime::format_err!("reading state: {e:#}"))
    }

    async fn set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        if key.len() > MAX_KEY_BYTES || value.len() > MAX_VALUE_BYTES {
            wasmtime::bail!(
                "state key {:?}: keys are limited to {MAX_KEY_BYTES} bytes and values to {MAX_VALUE_BYTES} bytes",
                key.chars().take(64).collect::<String>()
            );
        }
        self.fetch_scope("state")?.pending_state.insert(key, Some(value));
        Ok(())
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.fetch_scope("state")?.pending_state.insert(key, None);
        Ok(())
    }
}
