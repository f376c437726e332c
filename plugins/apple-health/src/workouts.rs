//! Workouts, in the app's workout export version 2: `{"id": "<UUID>", "name":
//! "Outdoor Run", "start": "...", "end": "...", "duration": 2142.3,
//! "activeEnergyBurned": {"qty": 412.6, "units": "kcal"}, "distance": {...},
//! "heartRateData": [...], "route": [...], ...}`.
//!
//! A batch payload is `{"workouts": [<workout>, ...]}`, the workouts as sent.

use crate::dates;
use inlet_plugin_sdk::{BlockRecord, EventRecord, PluginError, Records};
use serde_json::{Map, Value, json};

const MAX_WORKOUTS_PER_BATCH: usize = 500;
/// A workout with its route and per-second heart rate can run to megabytes,
/// so batches are bounded in bytes as well as in workouts.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// One `workout` event per workout, and a block per time series it carries.
/// `path` locates `workouts` in error messages.
///
/// A workout without an `id` fails the whole batch rather than being skipped:
/// without it a workout cannot be recognised when the app sends it again, and
/// export version 2 always includes it, so its absence means an older export
/// version or a payload reshaped on the way. Failing at the webhook shows that
/// in the app, where skipping would drop those workouts without a word.
pub fn records(workouts: &[Value], path: &str) -> Result<Records, PluginError> {
    let mut records = Records::default();
    for (i, workout) in workouts.iter().enumerate() {
        add(workout, &mut records).map_err(|e| PluginError::Permanent(format!("{path}[{i}] {e}")))?;
    }
    Ok(records)
}

/// The event keeps every field but the time series (arrays), which become
/// blocks: `heartRateData` a `heart-rate` block, and any other series, such as
/// `route` or `heartRateRecovery`, a block named after the field. The event's
/// value is the duration in seconds, the one quantity every workout has.
fn add(workout: &Value, records: &mut Records) -> Result<(), String> {
    let fields = workout.as_object().ok_or("is not an object")?;
    let id = fields.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()).ok_or(
        "has no id; Health Auto Export includes workout ids in workout export version 2, \
         which the automation's settings choose",
    )?;
    let start = fields.get("start").and_then(Value::as_str).ok_or_else(|| format!("({id}) has no start"))?;
    let occurred_at = dates::parse("start", start).map_err(|e| format!("({id}): {e}"))?;
    let mut data = Map::new();
    for (field, value) in fields {
        match value {
            Value::Array(series) if series.is_empty() => {}
            Value::Array(_) => {
                let kind = block_kind(field);
                records.blocks.push(BlockRecord {
                    external_id: format!("{id}/{kind}"),
                    kind,
                    event_id: id.into(),
                    data: json!({ field: value }).to_string(),
                });
            }
            _ => {
                data.insert(field.clone(), value.clone());
            }
        }
    }
    let duration = fields.get("duration").and_then(Value::as_f64);
    records.events.push(EventRecord {
        external_id: id.into(),
        kind: "workout".into(),
        occurred_at,
        actor: None,
        target: None,
        value: duration,
        unit: duration.map(|_| "s".into()),
        data: Value::Object(data).to_string(),
    });
    Ok(())
}

/// `heartRateData` → `heart-rate`, `heartRateRecovery` → `heart-rate-recovery`.
fn block_kind(field: &str) -> String {
    let mut kind = String::new();
    for c in field.strip_suffix("Data").unwrap_or(field).chars() {
        if c.is_ascii_uppercase() {
            kind.push('-');
        }
        kind.push(c.to_ascii_lowercase());
    }
    kind
}

/// Group workouts into payloads of at most [`MAX_WORKOUTS_PER_BATCH`] workouts
/// and about [`MAX_BATCH_BYTES`]; a single larger workout gets a batch of its own.
pub fn batches(workouts: Vec<Value>) -> Vec<Value> {
    let mut batches = Vec::new();
    let mut group = Vec::new();
    let mut bytes = 0;
    for workout in workouts {
        let size = workout.to_string().len();
        if !group.is_empty() && (group.len() == MAX_WORKOUTS_PER_BATCH || bytes + size > MAX_BATCH_BYTES) {
            batches.push(json!({ "workouts": std::mem::take(&mut group) }));
            bytes = 0;
        }
        group.push(workout);
        bytes += size;
    }
    if !group.is_empty() {
        batches.push(json!({ "workouts": group }));
    }
    batches
}
