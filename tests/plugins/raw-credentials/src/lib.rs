//! Test plugin that declares `needs-raw-credentials`: its fetch reads the
//! group's API key through `credentials.get` and records only its length.

use inlet_plugin_sdk::prelude::*;
use inlet_plugin_sdk::{ApiKeyAuth, KeyPlacement, credentials};
use serde_json::json;

struct RawCredentials;

impl Plugin for RawCredentials {
    fn describe() -> Manifest {
        Manifest {
            id: "raw-credentials".into(),
            name: "Raw credentials".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Reads its group's API key itself, for tests".into(),
            auth: AuthKind::ApiKey(ApiKeyAuth { label: "Any key".into(), placement: KeyPlacement::Bearer }),
            webhook: None,
            rate_limit: None,
            quotas: Vec::new(),
            needs_raw_credentials: true,
            instance_types: vec![InstanceType {
                id: "key-length".into(),
                name: "Key length".into(),
                description: "records how long the group's API key is".into(),
                kind: InstanceKind::Integration,
                default_schedule: Schedule::Manual,
                hosts: vec![],
                config_schema: "{}".into(),
                default_backfill_days: 0,
            }],
        }
    }

    fn fetch(_request: FetchRequest) -> Result<FetchSummary, PluginError> {
        let key = credentials::get("api_key")
            .ok_or_else(|| PluginError::Unauthorized("the host gave no raw API key".into()))?;
        emit_json("thing", &json!({"id": "key", "name": format!("a key of {} characters", key.len())}))?;
        Ok(FetchSummary { items_seen: 1, ..Default::default() })
    }

    fn process(batch: RawBatch) -> Result<Records, PluginError> {
        let thing: serde_json::Value = serde_json::from_str(&batch.payload)?;
        let mut records = Records::default();
        records.objects.push(ObjectRecord {
            external_id: "key".into(),
            kind: batch.kind,
            name: thing["name"].as_str().map(str::to_string),
            data: batch.payload,
        });
        Ok(records)
    }
}

inlet_plugin_sdk::export_plugin!(RawCredentials);
