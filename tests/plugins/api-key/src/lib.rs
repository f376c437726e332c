//! Test plugin whose manifest places its group's API key in the `x-api-key`
//! header (contract 0.2.0): its fetch asks an upstream that echoes the key
//! back, and records what came back (which must not be the key).

use inlet_plugin_sdk::prelude::*;
use inlet_plugin_sdk::{ApiKeyAuth, KeyPlacement};
use serde_json::json;

struct ApiKey;

impl Plugin for ApiKey {
    fn describe() -> Manifest {
        Manifest {
            id: "api-key".into(),
            name: "API key".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Sends its group's key in x-api-key, for tests".into(),
            auth: AuthKind::ApiKey(ApiKeyAuth {
                label: "Any key".into(),
                placement: KeyPlacement::Header("x-api-key".into()),
            }),
            webhook: None,
            rate_limit: None,
            quotas: Vec::new(),
            needs_raw_credentials: false,
            instance_types: vec![InstanceType {
                id: "echo-key".into(),
                name: "Echo key".into(),
                description: "sends the group's API key to https://echo.test/, which echoes it".into(),
                kind: InstanceKind::Integration,
                default_schedule: Schedule::Manual,
                hosts: vec!["echo.test".into()],
                config_schema: "{}".into(),
                default_backfill_days: 0,
            }],
        }
    }

    fn fetch(_request: FetchRequest) -> Result<FetchSummary, PluginError> {
        let response = http::get("https://echo.test/").authenticated().send()?;
        let seen = json!({"headers": response.headers, "body": String::from_utf8_lossy(&response.body)});
        emit_json("thing", &json!({"id": "echo", "name": seen.to_string()}))?;
        Ok(FetchSummary { items_seen: 1, ..Default::default() })
    }

    fn process(batch: RawBatch) -> Result<Records, PluginError> {
        let thing: serde_json::Value = serde_json::from_str(&batch.payload)?;
        let mut records = Records::default();
        records.objects.push(ObjectRecord {
            external_id: "echo".into(),
            kind: batch.kind,
            name: thing["name"].as_str().map(str::to_string),
            data: batch.payload,
        });
        Ok(records)
    }
}

inlet_plugin_sdk::export_plugin!(ApiKey);
