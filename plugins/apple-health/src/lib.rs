//! Apple Health, pushed by the Health Auto Export iOS app
//! (<https://help.healthyapps.dev/en/health-auto-export/automations/rest-api>).
//!
//! A REST API automation in the app POSTs `{"data": {"metrics": [...],
//! "workouts": [...]}}` with the group's secret in an `x-inlet-secret` header.
//! `handle_webhook` checks the delivery and splits it into bounded batches;
//! `process` maps each batch to events, with blocks for a workout's time
//! series. The app sends overlapping periods again and again, so every external
//! id is a dedupe key: a workout's UUID, or a metric's name and timestamp.
//! Other sections of the export (`ecg`, `stateOfMind`, ...) are ignored.

mod dates;
mod metrics;
mod workouts;

use inlet_plugin_sdk::prelude::*;
use serde_json::Value;

const WEBHOOK_SECRET_HEADER: &str = "x-inlet-secret";

struct AppleHealth;

fn instance_type(id: &str, name: &str, description: &str) -> InstanceType {
    // Data arrives when the app sends it; there is nothing to poll or backfill.
    InstanceType::new(id, name).description(description).manual().backfill_days(0)
}

impl Plugin for AppleHealth {
    fn describe() -> Manifest {
        Manifest::new("apple-health", "Apple Health", env!("CARGO_PKG_VERSION"))
            .description(
                "Workouts and health metrics from Apple Health, sent by the Health Auto Export iOS app (a REST API \
                 automation in JSON format, with the group's secret in an x-inlet-secret header)",
            )
            .webhook(WebhookAuth::SharedSecretHeader(WEBHOOK_SECRET_HEADER.into()))
            .instance_type(instance_type(
                "workouts",
                "Workouts",
                "One event per workout (runs, rides, strength sessions...) with its energy, distance and heart rate",
            ))
            .instance_type(instance_type(
                "metrics",
                "Health metrics",
                "One event per sample of each exported metric: steps, heart rate, active energy, sleep and more",
            ))
    }

    /// Push-only: an operator's "Update now" succeeds and the stored
    /// deliveries get processed.
    fn fetch(_request: FetchRequest) -> Result<FetchSummary, PluginError> {
        Ok(FetchSummary {
            items_seen: 0,
            note: Some("Apple Health data arrives by webhook from Health Auto Export; nothing to fetch".into()),
            ..Default::default()
        })
    }

    fn process(batch: RawBatch) -> Result<Records, PluginError> {
        records_for(&batch)
    }

    fn handle_webhook(delivery: WebhookDelivery) -> Result<WebhookOutcome, PluginError> {
        split_delivery(&delivery.body).map(Into::into)
    }
}

inlet_plugin_sdk::export_plugin!(AppleHealth);

/// Check a Health Auto Export delivery and split it into batches: metrics for
/// the `metrics` integrations, workouts for the `workouts` ones.
///
/// Every item is mapped once here and the records thrown away, so that a
/// delivery with a bad date or a workout without an id is refused to the app,
/// which shows the error, instead of being stored to fail in `process`.
fn split_delivery(body: &[u8]) -> Result<Vec<RoutedBatch>, PluginError> {
    let mut body: Value =
        serde_json::from_slice(body).map_err(|e| PluginError::Permanent(format!("body is not JSON: {e}")))?;
    let data = body.get_mut("data").filter(|data| data.is_object()).ok_or_else(|| {
        PluginError::Permanent(r#"body has no "data" object; is the automation's export format JSON?"#.into())
    })?;
    let metrics = take_list(data, "metrics", "data")?;
    let workouts = take_list(data, "workouts", "data")?;
    metrics::records(&metrics, "data.metrics")?;
    workouts::records(&workouts, "data.workouts")?;

    let routed = |kind: &str, payload: Value| RoutedBatch {
        instance_type: kind.into(),
        batch: RawBatch { kind: kind.into(), payload: payload.to_string() },
    };
    Ok(metrics::batches(metrics)
        .into_iter()
        .map(|payload| routed("metrics", payload))
        .chain(workouts::batches(workouts).into_iter().map(|payload| routed("workouts", payload)))
        .collect())
}

/// Map one stored batch to records; the payloads are those [`split_delivery`] makes.
fn records_for(batch: &RawBatch) -> Result<Records, PluginError> {
    let mut payload: Value = serde_json::from_str(&batch.payload)?;
    match batch.kind.as_str() {
        "metrics" => metrics::records(&take_list(&mut payload, "metrics", "batch")?, "metrics"),
        "workouts" => workouts::records(&take_list(&mut payload, "workouts", "batch")?, "workouts"),
        other => Err(PluginError::Permanent(format!("unknown batch kind {other:?}"))),
    }
}

/// Move out the array `parent[key]`; a missing or null key is an empty list,
/// since the app leaves out sections the automation does not export.
fn take_list(parent: &mut Value, key: &str, path: &str) -> Result<Vec<Value>, PluginError> {
    match parent.get_mut(key).map(Value::take) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(PluginError::Permanent(format!("{path}.{key} is not an array"))),
    }
}

#[cfg(test)]
mod tests;
