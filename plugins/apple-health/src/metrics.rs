//! Health metrics: `{"name": "step_count", "units": "count", "data": [{"qty": 412,
//! "date": "...", "source": "..."}]}`. Heart rate samples carry `Min`/`Avg`/`Max`
//! instead of `qty`, blood pressure `systolic`/`diastolic`, sleep its stages.
//!
//! A batch payload is `{"metrics": [<metric>, ...]}` in the app's own shape,
//! each metric holding some or all of its samples.

use crate::dates;
use inlet_plugin_sdk::{EventRecord, PluginError, Records};
use serde_json::{Value, json};

/// Samples per batch, across all the metrics in it.
const MAX_SAMPLES_PER_BATCH: usize = 2000;

/// One `metric` event per sample. `path` locates `metrics` in error messages.
pub fn records(metrics: &[Value], path: &str) -> Result<Records, PluginError> {
    let mut records = Records::default();
    for (i, metric) in metrics.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let invalid = |problem: String| PluginError::Permanent(format!("{at}{problem}"));
        if !metric.is_object() {
            return Err(invalid(" is not an object".into()));
        }
        let name =
            metric["name"].as_str().filter(|name| !name.is_empty()).ok_or_else(|| invalid(" has no name".into()))?;
        let units = metric["units"].as_str();
        let samples = metric["data"].as_array().ok_or_else(|| invalid(format!(" ({name}) has no data array")))?;
        for (j, sample) in samples.iter().enumerate() {
            records.events.push(event(name, units, sample).map_err(|e| invalid(format!(".data[{j}] ({name}): {e}")))?);
        }
    }
    Ok(records)
}

/// The event keeps the sample as sent (`source` and all), plus the metric's
/// name and units. Its value is `qty`, or `Avg` for heart rate; samples with
/// neither (blood pressure, sleep) have no headline value.
fn event(name: &str, units: Option<&str>, sample: &Value) -> Result<EventRecord, String> {
    let fields = sample.as_object().ok_or("is not an object")?;
    // Unaggregated sleep stages have `startDate` instead of `date`.
    let (field, date) = ["date", "startDate"]
        .into_iter()
        .find_map(|field| fields.get(field).and_then(Value::as_str).map(|date| (field, date)))
        .ok_or("has no date")?;
    let occurred_at = dates::parse(field, date)?;
    let mut data = fields.clone();
    data.insert("metric".into(), name.into());
    if let Some(units) = units {
        data.entry("units").or_insert_with(|| units.into());
    }
    Ok(EventRecord {
        external_id: format!("{name}/{occurred_at}"),
        kind: "metric".into(),
        occurred_at,
        actor: None,
        target: None,
        value: fields.get("qty").or_else(|| fields.get("Avg")).and_then(Value::as_f64),
        unit: units.map(str::to_string),
        data: Value::Object(data).to_string(),
    })
}

/// Pack metrics into payloads of at most [`MAX_SAMPLES_PER_BATCH`] samples,
/// cutting a long metric's samples across payloads; every piece keeps the
/// metric's name and units.
pub fn batches(metrics: Vec<Value>) -> Vec<Value> {
    let mut batches = Vec::new();
    let mut pieces = Vec::new();
    let mut room = MAX_SAMPLES_PER_BATCH;
    for mut metric in metrics {
        let Some(Value::Array(samples)) = metric.get_mut("data").map(Value::take) else { continue };
        let mut samples = samples.into_iter().peekable();
        while samples.peek().is_some() {
            let piece: Vec<Value> = samples.by_ref().take(room).collect();
            room -= piece.len();
            let mut part = metric.clone();
            part["data"] = Value::Array(piece);
            pieces.push(part);
            if room == 0 {
                batches.push(json!({ "metrics": std::mem::take(&mut pieces) }));
                room = MAX_SAMPLES_PER_BATCH;
            }
        }
    }
    if !pieces.is_empty() {
        batches.push(json!({ "metrics": pieces }));
    }
    batches
}
