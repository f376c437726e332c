//! `batches`: emit raw batches and checkpoint them together with state.

use super::{CallScope, FetchScope};
use crate::domain::plugin_call::RawBatch;
use crate::store::raw_batches::Checkpoint;

/// Hold a batch until the next checkpoint; refused (not trapped) past a cap.
pub fn emit(scope: &mut CallScope, batch: RawBatch) -> wasmtime::Result<Result<(), String>> {
    let scope = scope.fetch_scope("batches")?;
    let size = batch.kind.len() + batch.payload.len();
    let limits = scope.limits;
    if let Some(refused) = limits.refuse_batch(size) {
        return Ok(Err(refused));
    }
    if scope.pending_bytes + size > limits.max_pending_bytes {
        return Ok(Err(format!(
            "more than {} bytes emitted without a checkpoint; checkpoint after each page",
            limits.max_pending_bytes
        )));
    }
    if scope.committed_batches + scope.pending_batches.len() as i64 >= limits.max_batches_per_run {
        return Ok(Err(format!("a run may emit at most {} batches", limits.max_batches_per_run)));
    }
    scope.pending_bytes += size;
    scope.pending_batches.push((batch.kind, batch.payload));
    Ok(Ok(()))
}

/// A checkpoint that fails stops the call: what it held is gone, and a
/// plugin that went on could move its cursor past data never stored.
pub async fn checkpoint(scope: &mut CallScope) -> wasmtime::Result<Result<(), String>> {
    let scope = scope.fetch_scope("batches")?;
    commit(scope).await.map_err(|e| wasmtime::format_err!("checkpoint failed, so the run stops: {e:#}"))?;
    Ok(Ok(()))
}

/// Make everything emitted and set since the last checkpoint durable.
pub async fn commit(scope: &mut FetchScope) -> anyhow::Result<()> {
    if scope.pending_batches.is_empty() && scope.pending_state.is_empty() {
        return Ok(());
    }
    let state: Vec<_> = std::mem::take(&mut scope.pending_state).into_iter().collect();
    let batches = std::mem::take(&mut scope.pending_batches);
    scope
        .store
        .commit_checkpoint(&Checkpoint {
            integration_id: scope.integration_id,
            sync_run_id: scope.sync_run_id,
            lease: scope.lease.as_ref(),
            batches: &batches,
            state: &state,
            max_state_keys: scope.limits.max_state_keys,
        })
        .await?;
    scope.committed_batches += batches.len() as i64;
    scope.pending_bytes = 0;
    Ok(())
}
