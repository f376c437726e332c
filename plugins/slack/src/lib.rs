//! Slack: messages pushed by the Events API as they are posted, edited and
//! deleted (`messages`), the workspace's channels (`channels`), and a
//! channel's history read back (`history`), with a Slack app's bot token.
//!
//! Slack signs every Events API delivery with the app's signing secret (the
//! group's webhook secret): `handle_webhook` checks it through the host's
//! `signature.verify` (Slack's `v0` scheme, with its five-minute window)
//! before anything else, answers the `url_verification` challenge Slack sends
//! when the Request URL is set, and routes `message` events to the group's
//! `messages` integrations. The Web API is read with the bot token as a bearer
//! token; its refusals come as HTTP 200 with `"ok": false` (see [`api`]).

mod api;
mod channels;
mod history;
mod messages;

use inlet_plugin_sdk::prelude::*;
use inlet_plugin_sdk::{SignatureScheme, verify_signature};
use serde_json::Value;

const HOST: &str = "slack.com";
/// The instance type pushed messages are routed to.
const MESSAGES: &str = "messages";

struct Slack;

impl Plugin for Slack {
    fn describe() -> Manifest {
        Manifest::new("slack", "Slack", env!("CARGO_PKG_VERSION"))
            .description("Messages of the channels a Slack app is in, as they are posted, edited and deleted")
            .auth(AuthKind::api_key("Bot token (xoxb-…)", KeyPlacement::Bearer))
            .webhook(WebhookAuth::Signature)
            // Tier 3, what conversations.list and conversations.history allow: about 50 a minute.
            .rate_limit(50, 60)
            .instance_type(
                InstanceType::new(MESSAGES, "Messages")
                    .description(
                        "Each message posted in a channel the app is in, pushed by Slack's Events API; edits \
                         update it, deletions remove it",
                    )
                    // Pushed: there is nothing to poll or backfill.
                    .manual()
                    .backfill_days(0),
            )
            .instance_type(
                InstanceType::new("channels", "Channels")
                    .description("The public channels, and the private ones the app is in, archived ones included")
                    .every(6 * 3600)
                    .host(HOST),
            )
            .instance_type(
                InstanceType::new("history", "Channel history")
                    .description("One channel's past messages, read back (the app must be in the channel)")
                    .every(3600)
                    .host(HOST)
                    .config::<history::Config>()
                    .backfill_days(history::BACKFILL_DAYS),
            )
    }

    fn fetch(request: FetchRequest) -> Result<FetchSummary, PluginError> {
        dispatch!(request.instance_type, {
            "messages" => Ok(FetchSummary {
                note: Some("Slack pushes messages through the Events API; nothing to fetch".into()),
                ..Default::default()
            }),
            "channels" => channels::fetch(),
            "history" => history::fetch(&request.config, &request.mode),
        })
    }

    fn process(batch: RawBatch) -> Result<Records, PluginError> {
        if let Some(removed) = snapshot::removed(&batch) {
            return removed;
        }
        let payload: Value = serde_json::from_str(&batch.payload)?;
        match batch.kind.as_str() {
            messages::EVENT_BATCH => messages::process_event(&payload),
            history::BATCH => messages::process_history(&payload),
            channels::BATCH => channels::process(&payload),
            other => Err(PluginError::Permanent(format!("unknown batch kind {other:?}"))),
        }
    }

    fn handle_webhook(delivery: WebhookDelivery) -> Result<WebhookOutcome, PluginError> {
        verify(&delivery)?;
        let envelope: Value = serde_json::from_slice(&delivery.body)
            .map_err(|e| PluginError::Permanent(format!("the body is not JSON: {e}")))?;
        match envelope["type"].as_str() {
            // Sent once, when the Request URL is set in the app's settings.
            Some("url_verification") => {
                let challenge = string(&envelope, "challenge")?;
                Ok(WebhookOutcome::default().answer("text/plain", challenge))
            }
            Some("event_callback") if envelope["event"]["type"] == "message" => {
                let event = &envelope["event"];
                // Mapped once here, so that an event without a channel or a
                // ts is refused to Slack instead of stored to fail later.
                messages::process_event(event)?;
                let batch = RawBatch { kind: messages::EVENT_BATCH.into(), payload: event.to_string() };
                Ok(vec![RoutedBatch { instance_type: MESSAGES.into(), batch }].into())
            }
            // Other events the app subscribed to, `app_rate_limited`: nothing to store.
            Some(_) => Ok(WebhookOutcome::default()),
            None => Err(PluginError::Permanent("not an Events API delivery: the body has no \"type\"".into())),
        }
    }
}

inlet_plugin_sdk::export_plugin!(Slack);

/// Check Slack's `X-Slack-Signature` of the body and `X-Slack-Request-Timestamp`
/// with the signing secret; the host refuses a timestamp more than five
/// minutes from now, so an old delivery cannot be replayed.
/// <https://docs.slack.dev/authentication/verifying-requests-from-slack>
fn verify(delivery: &WebhookDelivery) -> Result<(), PluginError> {
    let header = |name: &str| {
        let found = delivery.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name));
        found.map(|(_, value)| value.as_str()).ok_or_else(|| PluginError::Unauthorized(format!("no {name} header")))
    };
    let timestamp = header("x-slack-request-timestamp")?;
    let signature = header("x-slack-signature")?;
    match verify_signature(&SignatureScheme::SlackV0(timestamp.to_string()), &delivery.body, signature) {
        true => Ok(()),
        false => Err(PluginError::Unauthorized(
            "X-Slack-Signature does not match the body with the signing secret, or X-Slack-Request-Timestamp is \
             more than five minutes off"
                .into(),
        )),
    }
}

fn string<'a>(value: &'a Value, field: &str) -> Result<&'a str, PluginError> {
    value[field].as_str().ok_or_else(|| PluginError::Permanent(format!("Slack sent no string {field:?}")))
}
