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
super::shared::exports!(Vec<RoutedBatch>);

use self::inlet::plugin::http;
use self::inlet::plugin::types::AuthKind;
use crate::capabilities as cap;
use crate::domain::{manifest as dm, plugin_call as dc};

impl inlet::plugin::http::Host for crate::runtime::context::PluginCtx {
    async fn send(&mut self, request: http::Request) -> wasmtime::Result<Result<http::Response, http::Error>> {
        // In 0.1.0 each request names where the credentials go.
        let auth = match &request.auth {
            http::Auth::None => cap::http::Auth::None,
            http::Auth::Bearer => cap::http::Auth::Bearer,
            http::Auth::ApiKeyHeader(name) => cap::http::Auth::ApiKeyHeader(name.clone()),
            http::Auth::ApiKeyQuery(name) => cap::http::Auth::ApiKeyQuery(name.clone()),
            http::Auth::Basic => cap::http::Auth::Basic,
        };
        shared::send(self, request, auth).await
    }
}

fn auth(auth: AuthKind) -> dm::AuthKind {
    match auth {
        AuthKind::None => dm::AuthKind::None,
        AuthKind::ApiKey(key) => dm::AuthKind::ApiKey { label: key.label, placement: None },
        AuthKind::Oauth2(o) => dm::AuthKind::OAuth2(shared::oauth2(o)),
    }
}

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
