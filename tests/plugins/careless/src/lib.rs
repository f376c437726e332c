//! A plugin with the mistakes `inlet plugin test` exists to catch, one per
//! instance type, against the same notes API as `inlet plugin new`'s sample:
//! ids that change from one replay to the next, records that change on every
//! run, and upstream failures reported as permanent. Its manifest is careless
//! too: a schema without an example.

use inlet_plugin_sdk::prelude::*;
use serde_json::{Value, json};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

struct Careless;

/// A schema with no `examples`.
const NO_EXAMPLES: &str = r#"{"type": "object"}"#;

fn notes_type(id: &str) -> InstanceType {
    InstanceType::new(id, id).host("api.example.com")
}

impl Plugin for Careless {
    fn describe() -> Manifest {
        Manifest::new("careless", "Careless", "0.1.0")
            .auth(AuthKind::api_key("token", KeyPlacement::Bearer))
            .instance_type(notes_type("unstable-ids"))
            .instance_type(notes_type("churn"))
            .instance_type(notes_type("untyped-errors"))
            .instance_type(InstanceType { config_schema: NO_EXAMPLES.into(), ..notes_type("no-examples") })
    }

    fn fetch(request: FetchRequest) -> Result<FetchSummary, PluginError> {
        let url = "https://api.example.com/v1/notes?per_page=50";
        let response = http::get(url).authenticated().send()?;
        if response.status != 200 {
            // Every failure alike: the host cannot tell a blip from a refusal.
            return Err(PluginError::Permanent(format!("upstream said {}", response.status)));
        }
        let notes: Vec<Value> = serde_json::from_slice(&response.body)?;
        // When this run fetched, in every record: they change on every run.
        let fetched_at = (request.instance_type == "churn").then(time::now);
        emit_json(&request.instance_type, &json!({ "notes": notes, "fetched_at": fetched_at }))?;
        Ok(FetchSummary::default())
    }

    fn process(batch: RawBatch) -> Result<Records, PluginError> {
        let payload: Value = serde_json::from_str(&batch.payload)?;
        let mut records = Records::default();
        for note in payload["notes"].as_array().into_iter().flatten() {
            let id = note["id"].as_str().unwrap_or_default();
            // Made up here rather than taken from the upstream.
            let external_id = match batch.kind.as_str() {
                "unstable-ids" => format!("{id}-{}", RandomState::new().build_hasher().finish()),
                _ => id.to_string(),
            };
            let data = json!({ "note": note, "fetched_at": payload["fetched_at"] });
            records.objects.push(ObjectRecord::new("note", external_id).data(&data)?);
        }
        Ok(records)
    }
}

inlet_plugin_sdk::export_plugin!(Careless);
