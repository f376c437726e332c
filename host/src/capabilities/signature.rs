//! `signature.verify`: webhook signatures checked with the group's secret.
//! Only webhook calls carry a secret; any other call learns "invalid".

use crate::runtime::context::PluginCtx;
use crate::runtime::wit::inlet::plugin::signature::{self, Scheme};

impl signature::Host for PluginCtx {
    async fn verify(&mut self, _scheme: Scheme, _payload: Vec<u8>, _signature: String) -> wasmtime::Result<bool> {
        // No call scope carries a webhook secret yet, so nothing can verify.
        Ok(false)
    }
}
