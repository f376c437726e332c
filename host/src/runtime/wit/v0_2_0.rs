//! `inlet:plugin@0.2.0` (wit/0.2.0), the latest: its bindings, the host side
//! of its imports (shared with 0.1.0, see `shared.rs`), and what it adds:
//! `fetch` may give a schedule hint, `handle-webhook` may answer the sender.

wasmtime::component::bindgen!({
    path: "../wit/0.2.0",
    world: "plugin",
    imports: { default: async | trappable },
    exports: { default: async },
});

super::shared::shared_since_0_1_0!();

use self::inlet::plugin::types::QuotaPeriod;
use crate::domain::{manifest as dm, plugin_call as dc};

fn quotas(manifest: &Manifest) -> Vec<dm::Quota> {
    (manifest.quotas.iter())
        .map(|q| dm::Quota {
            id: q.id.clone(),
            url: q.url.clone(),
            requests: q.requests,
            period: match q.period {
                QuotaPeriod::Minute => dm::QuotaPeriod::Minute,
                QuotaPeriod::Hour => dm::QuotaPeriod::Hour,
                QuotaPeriod::Day => dm::QuotaPeriod::Day,
            },
        })
        .collect()
}

impl From<FetchSummary> for dc::FetchSummary {
    fn from(s: FetchSummary) -> Self {
        dc::FetchSummary {
            items_seen: s.items_seen,
            note: s.note,
            not_before: s.not_before.map(|hint| dc::ScheduleHint { at: hint.at, reason: hint.reason }),
        }
    }
}

impl From<WebhookOutcome> for dc::WebhookOutcome {
    fn from(outcome: WebhookOutcome) -> Self {
        dc::WebhookOutcome {
            batches: outcome.batches.into_iter().map(Into::into).collect(),
            answer: outcome.answer.map(|a| dc::WebhookAnswer {
                status: a.status,
                content_type: a.content_type,
                body: a.body,
            }),
        }
    }
}
