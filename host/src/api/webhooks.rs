//! `POST /webhooks/{plugin}/{group}`: deliveries pushed by upstream services.
//!
//! A delivery is verified before anything is stored: by the shared-secret
//! header the plugin declares (checked here, in constant time, and removed
//! before the plugin sees the headers), or by the plugin's `handle-webhook`,
//! which checks the signature through the host's `signature.verify` (the host
//! refuses the delivery unless a check answered valid). The plugin's batches,
//! the delivery and the jobs that process them are then written in one
//! transaction and the sender gets 202 (or the plugin's own answer, when the
//! sender expects one: Slack's `url_verification` challenge); records are made
//! by the `webhook` queue. A replay of the same body is answered the same way
//! without storing anything again, and a delivery that brings no batches (a
//! ping) stores nothing.

use super::ApiState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{BODY_READ_TIMEOUT, body_timed_out};
use crate::capabilities::signature::SigningKey;
use crate::domain::manifest::WebhookAuth;
use crate::domain::plugin_call::{PluginError, WebhookAnswer, WebhookDelivery};
use crate::domain::queue::Queue;
use crate::runtime::CallError;
use crate::store::webhook_deliveries::{DeliveryStored, NewDelivery};
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryAccepted {
    pub delivery_id: i64,
    /// True when this exact delivery had been accepted before (nothing was stored again).
    pub duplicate: bool,
    /// Integrations that will process it.
    pub integrations: Vec<i64>,
    /// Batches addressed to an instance type this group has no integration of (dropped).
    pub unrouted_batches: usize,
}

#[utoipa::path(post, path = "/webhooks/{plugin}/{group}", tag = "webhooks", security(()),
    params(("plugin" = String, Path), ("group" = i64, Path, description = "Group id")),
    request_body(content = String, description = "The service's delivery, as it sends it", content_type = "application/json"),
    responses((status = 202, body = DeliveryAccepted),
        (status = 200, description = "The plugin's own answer to the sender (2xx, its content type)"),
        (status = 204, description = "The delivery brought nothing to store"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "No integration of the group takes it; nothing stored", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, description = "The plugin refused the delivery, or made more of it than the host stores", body = ErrorBody),
        (status = 503, description = "The plugin asked for it again later (Retry-After)", body = ErrorBody)))]
pub async fn receive(
    State(api): State<ApiState>,
    Path((plugin_id, group)): Path<(String, String)>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    mut headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let host = &api.host;
    // Counted by the group the path names: `7` and `007` are one group. What
    // names none shares one count.
    let slot_group = group.parse::<i64>().unwrap_or(i64::MIN);
    let _slot = api.webhook_slots.take(slot_group).map_err(|busy| try_later(&plugin_id, busy.reason(), Some(1)))?;
    let refused = |reason: &str| api.refusals.refused(source.ip(), &plugin_id, reason);
    let plugin = host
        .runner
        .plugins
        .get(&plugin_id)
        .filter(|p| p.manifest.webhook.is_some())
        .ok_or_else(|| ApiError::not_found(format!("there is no webhook endpoint for {plugin_id:?}")))?;
    let auth = plugin.manifest.webhook.clone().expect("filtered above");
    // An unknown group is refused like a wrong secret, so ids cannot be probed.
    let group = match group.parse::<i64>() {
        Ok(id) => host.store().group(id).await?.filter(|g| g.plugin_id == plugin_id),
        Err(_) => None,
    }
    .ok_or_else(|| refused("no such group for this plugin"))?;
    let (credentials, _) = host.store().group_credentials(group.id).await?;
    let secret = credentials.get("webhook_secret").unwrap_or_default();
    if let WebhookAuth::SharedSecretHeader(name) = &auth {
        let presented = headers.get(name.as_str()).map(|v| v.as_bytes()).unwrap_or_default();
        // Digests have one length, so the comparison does not reveal the secret's.
        let matches = Sha256::digest(presented).ct_eq(&Sha256::digest(secret.as_bytes()));
        if secret.is_empty() || !bool::from(matches) {
            return Err(refused(&format!("missing or wrong {name} header")));
        }
        // The plugin learns that the delivery is genuine, not the secret.
        headers.remove(name.as_str());
    }
    for private in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION] {
        headers.remove(private);
    }
    // Read only now, after the cheap checks: an unverified sender cannot
    // make the host buffer a body, and a slow one is cut off.
    let limit = host.settings.webhook_max_bytes;
    let body = match tokio::time::timeout(BODY_READ_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-rejected",
                format!("the delivery is larger than the limit of {limit} bytes"),
            ));
        }
        Err(_) => return Err(body_timed_out()),
    };
    let now = host.store().now();
    let delivery = WebhookDelivery {
        headers: headers
            .iter()
            .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
        body: body.to_vec(),
        received_at: now,
    };
    let signing = Some(SigningKey { secret: secret.as_bytes().to_vec(), now_ms: now });
    let (outcome, signature_verified) =
        host.runner.runtime.handle_webhook(&plugin.pre, plugin.id(), signing, delivery).await;
    let outcome = match outcome {
        // A plugin that declares signatures must have checked one.
        Ok(Ok(_)) if matches!(auth, WebhookAuth::Signature) && !signature_verified => {
            return Err(refused("the plugin accepted it without a valid signature check"));
        }
        Ok(Ok(outcome)) => outcome,
        Ok(Err(PluginError::Unauthorized(reason))) => return Err(refused(&reason)),
        Ok(Err(PluginError::Transient(reason))) => return Err(try_later(&plugin_id, &reason, None)),
        Ok(Err(PluginError::RateLimited { retry_after_seconds, message })) => {
            return Err(try_later(&plugin_id, &message, Some(retry_after_seconds.into())));
        }
        Ok(Err(PluginError::InvalidConfig(reason) | PluginError::Permanent(reason))) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "delivery-refused",
                format!("{plugin_id} could not read the delivery: {reason}"),
            ));
        }
        Err(CallError::Busy { reason, .. }) => return Err(try_later(&plugin_id, &reason, Some(1))),
        // A plugin that trapped before verifying a signature: a sender
        // without the secret learns nothing of it, nor fills the log
        // (refusals are logged once a minute per source). (Not a deadline,
        // which a genuine delivery may meet on a busy host: a sender gives
        // a 4xx up, and retries a 5xx.)
        Err(error @ CallError::Trap { .. }) if matches!(auth, WebhookAuth::Signature) && !signature_verified => {
            return Err(refused(&format!("the plugin failed before verifying a signature: {error}")));
        }
        Err(error) => {
            tracing::warn!(plugin = plugin_id, error = %error, "handle-webhook failed");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "plugin-failed",
                "the plugin failed while reading the delivery; the host's log says why",
            ));
        }
    };
    let answer = match outcome.answer.map(answer_response).transpose() {
        Ok(answer) => answer,
        Err(reason) => {
            tracing::warn!(plugin = plugin_id, %reason, "handle-webhook gave an answer the host cannot send");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "plugin-failed",
                format!("the plugin's answer to the delivery cannot be sent: {reason}"),
            ));
        }
    };
    if outcome.batches.is_empty() {
        return Ok(answer.unwrap_or_else(|| StatusCode::NO_CONTENT.into_response()));
    }
    // Refused for good (a 4xx): a sender retries a 5xx for days, each time
    // into the same refusal.
    if let Some(reason) = host.runner.output_limits.refuse_delivery(&outcome.batches) {
        tracing::warn!(plugin = plugin_id, %reason, "handle-webhook made more than the host stores");
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "delivery-refused",
            format!("{plugin_id} made more of the delivery than the host stores: {reason}"),
        ));
    }
    let batches: Vec<(String, String, String)> =
        outcome.batches.into_iter().map(|b| (b.instance_type, b.batch.kind, b.batch.payload)).collect();
    let delivery_key = hex::encode(Sha256::digest(&body));
    let stored = host
        .store()
        .store_webhook_delivery(&NewDelivery {
            plugin_id: &plugin_id,
            group_id: group.id,
            delivery_key: &delivery_key,
            body_bytes: body.len(),
            batches: &batches,
            max_attempts: host.policy(Queue::Webhook).max_attempts,
        })
        .await?;
    let accepted = match stored {
        DeliveryStored::Duplicate { delivery_id } => {
            DeliveryAccepted { delivery_id, duplicate: true, integrations: Vec::new(), unrouted_batches: 0 }
        }
        DeliveryStored::New { delivery_id, integrations, unrouted_batches } => {
            host.wake(Queue::Webhook);
            DeliveryAccepted { delivery_id, duplicate: false, integrations, unrouted_batches }
        }
        DeliveryStored::Unrouted { instance_types } => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "no-integration",
                format!(
                    "group {} has no integration of {}; create one, then send the delivery again (nothing was stored)",
                    group.id,
                    instance_types.join(", ")
                ),
            ));
        }
    };
    Ok(answer.unwrap_or_else(|| (StatusCode::ACCEPTED, Json(accepted)).into_response()))
}

/// Largest answer body a plugin may give a sender.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The plugin's answer as a response, if it is one the host may send: a
/// success status (a refusal is the plugin's error, answered by the host),
/// a valid content type, a bounded body.
fn answer_response(answer: WebhookAnswer) -> Result<Response, String> {
    let status = StatusCode::from_u16(answer.status)
        .ok()
        .filter(StatusCode::is_success)
        .ok_or_else(|| format!("status {} is not 200 to 299", answer.status))?;
    if answer.body.len() > MAX_ANSWER_BYTES {
        return Err(format!("its body of {} bytes is over {MAX_ANSWER_BYTES}", answer.body.len()));
    }
    let content_type = HeaderValue::from_str(&answer.content_type)
        .map_err(|_| format!("{:?} is not a valid content type", answer.content_type))?;
    Ok((status, [(axum::http::header::CONTENT_TYPE, content_type)], answer.body).into_response())
}

/// Deliveries in flight are bounded: each may buffer a body of up to the
/// size limit, and a flood must not take the host's memory. Each group may
/// hold at most a quarter of the slots, at least one, so that one sender's
/// flood leaves room for the others.
pub struct WebhookSlots {
    total: Arc<Semaphore>,
    per_group: usize,
    /// Slots held by each group that holds any.
    held: Mutex<HashMap<i64, usize>>,
}

/// Why a delivery found no slot.
pub enum SlotsBusy {
    All,
    Group,
}

impl SlotsBusy {
    fn reason(&self) -> &'static str {
        match self {
            SlotsBusy::All => "too many deliveries are being received at once",
            SlotsBusy::Group => "too many of this group's deliveries are being received at once",
        }
    }
}

/// A delivery's slot, given back when dropped.
pub struct WebhookSlot<'a> {
    _total: OwnedSemaphorePermit,
    slots: &'a WebhookSlots,
    group: i64,
}

impl WebhookSlots {
    pub fn new(total: usize) -> WebhookSlots {
        WebhookSlots { total: Arc::new(Semaphore::new(total)), per_group: (total / 4).max(1), held: Mutex::default() }
    }

    fn take(&self, group: i64) -> Result<WebhookSlot<'_>, SlotsBusy> {
        let total = Arc::clone(&self.total).try_acquire_owned().map_err(|_| SlotsBusy::All)?;
        let mut held = self.held.lock().expect("never poisoned");
        let by_group = held.entry(group).or_default();
        if *by_group >= self.per_group {
            return Err(SlotsBusy::Group);
        }
        *by_group += 1;
        Ok(WebhookSlot { _total: total, slots: self, group })
    }
}

impl Drop for WebhookSlot<'_> {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().expect("never poisoned");
        if let Some(by_group) = held.get_mut(&self.group) {
            *by_group -= 1;
            if *by_group == 0 {
                held.remove(&self.group);
            }
        }
    }
}

/// Refusals are logged at most once a minute per source: someone probing
/// secrets must not be able to flood the operator's log.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// Sources whose last refusal is remembered, at most.
const MAX_SOURCES_REMEMBERED: usize = 10_000;

/// When each source's last refusal was logged, and how many went unlogged since.
#[derive(Default)]
pub struct Refusals(Mutex<HashMap<IpAddr, (Instant, u64)>>);

impl Refusals {
    /// 401 with nothing stored. The reason is logged (at most once a minute
    /// per source); the sender learns only that the delivery was not
    /// verified, nothing that helps guess the secret.
    fn refused(&self, source: IpAddr, plugin: &str, reason: &str) -> ApiError {
        let now = Instant::now();
        let mut seen = self.0.lock().unwrap();
        if seen.len() >= MAX_SOURCES_REMEMBERED {
            seen.retain(|_, (at, _)| now.duration_since(*at) < REFUSAL_LOG_EVERY);
            // Addresses that change with every request (IPv6) must not grow
            // the table: forget them all, at the cost of a log line each.
            if seen.len() >= MAX_SOURCES_REMEMBERED / 2 {
                seen.clear();
            }
        }
        match seen.get_mut(&source) {
            Some((at, unlogged)) if now.duration_since(*at) < REFUSAL_LOG_EVERY => *unlogged += 1,
            previous => {
                let unlogged = previous.map_or(0, |(_, n)| *n);
                tracing::warn!(%source, plugin, reason, unlogged, "webhook delivery refused");
                seen.insert(source, (now, 0));
            }
        }
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "the delivery was not verified")
    }
}

/// 503 with nothing stored: the plugin asked for the delivery to come again
/// later, which senders do on a 5xx.
fn try_later(plugin_id: &str, reason: &str, retry_after_seconds: Option<u64>) -> ApiError {
    ApiError {
        retry_after_seconds: Some(retry_after_seconds.unwrap_or(60)),
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "try-later",
            format!("{plugin_id} cannot take the delivery now: {reason}"),
        )
    }
}
