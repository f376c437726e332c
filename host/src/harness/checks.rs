//! The standard checks that need no run: the manifest beyond what loading
//! it requires, and each instance type's config examples; and what a run's
//! records must look like.

use super::expected;
use crate::capabilities::cassette::REDACTED;
use crate::runtime::registry::LoadedPlugin;
use serde_json::Value;

/// What loading does not already refuse: empty names.
pub fn manifest(plugin: &LoadedPlugin) -> Result<String, String> {
    let manifest = &plugin.manifest;
    let mut problems = Vec::new();
    if manifest.name.trim().is_empty() {
        problems.push("the manifest's name is empty".to_string());
    }
    if manifest.version.trim().is_empty() {
        problems.push("the manifest's version is empty".to_string());
    }
    for instance_type in &manifest.instance_types {
        if instance_type.name.trim().is_empty() {
            problems.push(format!("instance type {:?} has no name", instance_type.id));
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let types: Vec<&str> = manifest.instance_types.iter().map(|t| t.id.as_str()).collect();
    Ok(format!(
        "{} {} (contract {}), instance types {}",
        manifest.id,
        manifest.version,
        plugin.contract().as_str(),
        types.join(", ")
    ))
}

/// Every instance type's schema names at least one example config
/// (`examples`, as JSON Schema has it) and accepts each.
pub fn config_examples(plugin: &LoadedPlugin) -> Result<String, String> {
    let mut problems = Vec::new();
    let mut checked = 0;
    for instance_type in &plugin.manifest.instance_types {
        let id = &instance_type.id;
        let examples = examples(&instance_type.config_schema);
        if examples.is_empty() {
            problems.push(format!(
                "instance type {id:?}: its config schema has no `examples`; add one (with schemars: \
                 #[schemars(example = ...)] on the config type)"
            ));
            continue;
        }
        let schema = &plugin.config_schemas[id];
        for (n, example) in examples.iter().enumerate() {
            checked += 1;
            if let Err(refusal) = schema.check(example) {
                problems.push(format!(
                    "instance type {id:?}: its schema refuses its own example {}: {}: {}",
                    n + 1,
                    refusal.field,
                    refusal.message
                ));
            }
        }
    }
    match problems.is_empty() {
        true => Ok(format!("{checked} example configs accepted")),
        false => Err(problems.join("; ")),
    }
}

pub fn first_example(plugin: &LoadedPlugin, instance_type: &str) -> Option<Value> {
    examples(&plugin.instance_type(instance_type)?.config_schema).into_iter().next()
}

/// Values of the config's secret fields (`"writeOnly": true` in the schema,
/// as JSON Schema marks passwords), kept out of cassettes.
pub fn secret_values(plugin: &LoadedPlugin, instance_type: &str, config: &Value) -> Vec<String> {
    secret_fields(plugin, instance_type)
        .iter()
        .filter_map(|name| match &config[name] {
            Value::String(value) => Some(value.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
        .collect()
}

/// The config with each secret field's value replaced by [`REDACTED`].
pub fn redacted_config(plugin: &LoadedPlugin, instance_type: &str, config: &Value) -> Value {
    let mut redacted = config.clone();
    for name in secret_fields(plugin, instance_type) {
        if let Some(value) = redacted.get_mut(&name).filter(|v| !v.is_null()) {
            *value = Value::String(REDACTED.to_string());
        }
    }
    redacted
}

/// The top-level config members the schema marks `"writeOnly": true`.
fn secret_fields(plugin: &LoadedPlugin, instance_type: &str) -> Vec<String> {
    let schema = plugin.instance_type(instance_type).and_then(|t| serde_json::from_str::<Value>(&t.config_schema).ok());
    let properties = schema.and_then(|s| s["properties"].as_object().cloned()).unwrap_or_default();
    properties.into_iter().filter(|(_, p)| p["writeOnly"] == Value::Bool(true)).map(|(name, _)| name).collect()
}

fn examples(schema: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(schema).ok().and_then(|s| s["examples"].as_array().cloned()).unwrap_or_default()
}

/// Every record names its upstream id.
pub fn external_ids(records: &Value) -> Result<String, String> {
    let mut missing = Vec::new();
    for section in ["objects", "events", "blocks"] {
        for record in records[section].as_array().into_iter().flatten() {
            if record["external_id"].as_str().is_none_or(|id| id.trim().is_empty()) {
                missing.push(format!("a {} record of kind {}", section.trim_end_matches('s'), record["kind"]));
            }
        }
    }
    match missing.first() {
        None => Ok(format!("{} records, each with an external id", expected::count(records))),
        Some(first) => Err(format!("{} records have no external id, e.g. {first}", missing.len())),
    }
}

/// Two replays of one cassette gave the same records.
pub fn same_records(first: &Value, again: &Value) -> Result<String, String> {
    match expected::difference(first, again, "in the first replay", "in the second") {
        None => Ok(format!("a second replay gave the same {} records", expected::count(first))),
        Some(difference) => Err(format!(
            "two replays of the same cassette gave different records: {difference}; external ids and data must \
             come from the upstream's answers, not from the clock or random numbers"
        )),
    }
}
