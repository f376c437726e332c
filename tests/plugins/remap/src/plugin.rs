// The `remap` test plugin, built twice: `remap` (`CORRECTED` false) and
// `remap-v2` (true), the same plugin with a corrected `process`, as a plugin
// author's fix would ship. Its fetch reads https://items.test/items once.

use inlet_plugin_sdk::prelude::*;
use serde_json::json;

struct Remap;

impl Plugin for Remap {
    fn describe() -> Manifest {
        Manifest {
            id: "remap".into(),
            name: "Remap".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Maps an upstream's items to objects, for tests of reprocessing".into(),
            auth: AuthKind::None,
            webhook: None,
            rate_limit: None,
            quotas: Vec::new(),
            needs_raw_credentials: false,
            instance_types: vec![InstanceType {
                id: "items".into(),
                name: "Items".into(),
                description: "the items of https://items.test/items".into(),
                kind: InstanceKind::Integration,
                default_schedule: Schedule::Manual,
                hosts: vec!["items.test".into()],
                config_schema: "{}".into(),
                default_backfill_days: 0,
            }],
        }
    }

    fn fetch(_request: FetchRequest) -> Result<FetchSummary, PluginError> {
        let response = http::get("https://items.test/items").send()?;
        let items: serde_json::Value = serde_json::from_slice(&response.body)?;
        let count = items.as_array().map_or(0, Vec::len) as u64;
        emit_json("items", &json!({ "items": items }))?;
        Ok(FetchSummary { items_seen: count, ..Default::default() })
    }

    fn process(batch: RawBatch) -> Result<Records, PluginError> {
        let page: serde_json::Value = serde_json::from_str(&batch.payload)?;
        let mut records = Records::default();
        for item in page["items"].as_array().into_iter().flatten() {
            let title = item["title"].as_str().unwrap_or_default();
            // The fix: the first build dropped the year from the name.
            let name = match CORRECTED {
                true => format!("{title} ({})", item["year"]),
                false => title.to_string(),
            };
            records.objects.push(ObjectRecord {
                external_id: item["id"].as_str().unwrap_or_default().into(),
                kind: "item".into(),
                name: Some(name),
                data: item.to_string(),
            });
        }
        Ok(records)
    }
}

inlet_plugin_sdk::export_plugin!(Remap);
