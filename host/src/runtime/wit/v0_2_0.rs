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
super::shared::exports!(WebhookOutcome);

use self::inlet::plugin::http;
use self::inlet::plugin::records;
use self::inlet::plugin::types::{AuthKind, KeyPlacement, QuotaPeriod};
use crate::capabilities as cap;
use crate::domain::{manifest as dm, plugin_call as dc};

impl inlet::plugin::http::Host for crate::runtime::context::PluginCtx {
    async fn send(&mut self, request: http::Request) -> wasmtime::Result<Result<http::Response, http::Error>> {
        let auth = if request.authenticated { cap::http::Auth::Declared } else { cap::http::Auth::None };
        shared::send(self, request, auth).await
    }
}

impl inlet::plugin::records::Host for crate::runtime::context::PluginCtx {
    async fn query_events(&mut self, q: records::EventQuery) -> wasmtime::Result<Result<records::EventPage, String>> {
        let query =
            cap::records::EventQuery { kind: q.kind, since: q.since, until: q.until, after: q.after, limit: q.limit };
        Ok(cap::records::events(&mut self.scope, query).await?.map(|page| records::EventPage {
            events: page.events.into_iter().map(Into::into).collect(),
            next: page.next,
        }))
    }

    async fn query_objects(
        &mut self,
        q: records::ObjectQuery,
    ) -> wasmtime::Result<Result<records::ObjectPage, String>> {
        let query = cap::records::ObjectQuery { kind: q.kind, after: q.after, limit: q.limit };
        Ok(cap::records::objects(&mut self.scope, query).await?.map(|page| records::ObjectPage {
            objects: page.objects.into_iter().map(Into::into).collect(),
            next: page.next,
        }))
    }
}

fn auth(auth: AuthKind) -> dm::AuthKind {
    match auth {
        AuthKind::None => dm::AuthKind::None,
        AuthKind::ApiKey(key) => dm::AuthKind::ApiKey {
            label: key.label,
            placement: Some(match key.placement {
                KeyPlacement::Bearer => dm::KeyPlacement::Bearer,
                KeyPlacement::Header(name) => dm::KeyPlacement::Header(name),
                KeyPlacement::Query(name) => dm::KeyPlacement::Query(name),
            }),
        },
        AuthKind::Basic(label) => dm::AuthKind::Basic { label },
        AuthKind::Oauth2(o) => dm::AuthKind::OAuth2(shared::oauth2(o)),
        AuthKind::SecretExchange(s) => dm::AuthKind::SecretExchange(dm::SecretExchangeEndpoints {
            label: s.label,
            new_token_url: s.new_token_url,
            refresh_url: s.refresh_url,
            bank_connect_url: s.bank_connect_url,
        }),
    }
}

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
