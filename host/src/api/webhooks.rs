//! `POST /webhooks/{plugin}/{group}`: deliveries pushed by upstream services.
//!
//! A delivery is verified before anything is stored: by the shared-secret
//! header the plugin declares (checked here, in constant time), or by the
//! plugin's `handle-webhook`, which checks the signature through the host's
//! `signature.verify` and answers `unauthorized` when it is wrong. The
//! plugin's batches, the delivery and the jobs that process them are then
//! written in one transaction and the sender gets 202; records are made by
//! the `webhook` queue. A replay of the same body is answered 202 without
//! storing anything again.

use super::ApiState;
use super::error::{ApiError, ApiResult, ErrorBody};
use crate::capabilities::signature::SigningKey;
use crate::runtime::wit::{PluginError, WebhookAuth, WebhookDelivery};
use crate::store::jobs::Queue;
use crate::store::webhook_deliveries::{DeliveryStored, NewDelivery};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
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
    responses((status = 202, body = DeliveryAccepted), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, description = "The plugin refused the delivery", body = ErrorBody)))]
pub async fn receive(
    State(api): State<ApiState>,
    Path((plugin_id, group)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<DeliveryAccepted>)> {
    let host = &api.host;
    let unknown = || ApiError::not_found(format!("there is no webhook endpoint /webhooks/{plugin_id}/{group}"));
    let plugin = host.runner.plugins.get(&plugin_id).ok_or_else(unknown)?;
    let auth = plugin.manifest.webhook.clone().ok_or_else(unknown)?;
    let group_id: i64 = group.parse().map_err(|_| unknown())?;
    let group = host.store().group(group_id).await?.filter(|g| g.plugin_id == plugin_id).ok_or_else(unknown)?;
    let body = body.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            "body-rejected",
            format!("{} (the limit is {} bytes)", rejection.body_text(), host.settings.webhook_max_bytes),
        )
    })?;
    let (credentials, _) = host.store().group_credentials(group.id).await?;
    let secret = credentials.get("webhook_secret").unwrap_or_default();
    if let WebhookAuth::SharedSecretHeader(name) = &auth {
        let presented = headers.get(name.as_str()).map(|v| v.as_bytes()).unwrap_or_default();
        if secret.is_empty() || !bool::from(presented.ct_eq(secret.as_bytes())) {
            return Err(refused(&format!("missing or wrong {name} header")));
        }
    }
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
    let batches = match host.runner.runtime.handle_webhook(&plugin.pre, plugin.id(), signing, &delivery).await {
        Ok(Ok(batches)) => batches,
        Ok(Err(PluginError::Unauthorized(message))) => return Err(refused(&message)),
        Ok(Err(error)) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "delivery-refused",
                format!("{plugin_id} could not read the delivery: {}", plugin_error_message(&error)),
            ));
        }
        Err(error) => {
            tracing::warn!(plugin = plugin_id, error = %error, "handle-webhook failed");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "plugin-failed",
                format!("{plugin_id} failed while reading the delivery: {error}"),
            ));
        }
    };
    let batches: Vec<(String, String, String)> =
        batches.into_iter().map(|b| (b.instance_type, b.batch.kind, b.batch.payload)).collect();
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
    };
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// 401 with nothing stored. The reason is logged, and returned only in
/// general terms: it must not help anyone guess the secret.
fn refused(reason: &str) -> ApiError {
    tracing::warn!(reason, "webhook delivery refused");
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", format!("the delivery was not verified: {reason}"))
}

fn plugin_error_message(error: &PluginError) -> String {
    match error {
        PluginError::Transient(m)
        | PluginError::Unauthorized(m)
        | PluginError::InvalidConfig(m)
        | PluginError::Permanent(m) => m.clone(),
        PluginError::RateLimited(r) => r.message.clone(),
    }
}
