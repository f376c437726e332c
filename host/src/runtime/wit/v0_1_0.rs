//! `inlet:plugin@0.1.0` (wit/0.1.0): its bindings, the host side of its
//! imports (shared with later versions, see `shared.rs`), and what differs:
//! `fetch` gives no schedule hint, `handle-webhook` answers batches only.

wasmtime::component::bindgen!({
    path: "../wit/0.1.0",
    world: "plugin",
    imports: { default: async | trappable },
    exports: { default: async },
});

super::shared::shared_since_0_1_0!();

use crate::domain::{manifest as dm, plugin_call as dc};

/// 0.1.0 manifests declare no quotas.
fn quotas(_: &Manifest) -> Vec<dm::Quota> {
    Vec::new()
}

impl From<FetchSummary> for dc::FetchSummary {
    fn from(s: FetchSummary) -> Self {
        dc::FetchSummary { items_seen: s.items_seen, note: s.note, not_before: None }
    }
}

/// 0.1.0's `handle-webhook` answers batches; the host answers the sender.
pub fn webhook_outcome(batches: Vec<RoutedBatch>) -> dc::WebhookOutcome {
    dc::WebhookOutcome { batches: batches.into_iter().map(Into::into).collect(), answer: None }
}
