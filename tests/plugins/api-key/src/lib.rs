//! Test plugin whose manifest places its group's API key in the `x-api-key`
//! header (contract 0.2.0). `echo-key` asks an upstream that echoes the key
//! back, and records what came back (which must not be the key): at the
//! config's `path` (default `/`), asking for the config's `accept_encoding`
//! if it names one; `notes`
//! pages through a notes service, a log line and a checkpoint per page.

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
            instance_types: vec![
                instance_type(
                    "echo-key",
                    "Echo key",
                    "sends the group's API key to https://echo.test/, which echoes it",
                ),
                instance_type("notes", "Notes", "reads every page of https://notes.test/notes"),
            ],
        }
    }

    fn fetch(request: FetchRequest) -> Result<FetchSummary, PluginError> {
        if request.instance_type == "notes" {
            return notes();
        }
        let config: serde_json::Value = serde_json::from_str(&request.config).unwrap_or_default();
        let path = config["path"].as_str().unwrap_or("/");
        let mut echo = http::get(format!("https://echo.test{path}")).authenticated();
        if let Some(coding) = config["accept_encoding"].as_str() {
            echo = echo.header("Accept-Encoding", coding);
        }
        let response = echo.send()?;
        let seen = json!({"headers": response.headers, "body": String::from_utf8_lossy(&response.body)});
        emit_json("thing", &json!({"id": "echo", "name": seen.to_string()}))?;
        Ok(FetchSummary { items_seen: 1, ..Default::default() })
    }

    fn process(batch: RawBatch) -> Result<Records, PluginError> {
        let thing: serde_json::Value = serde_json::from_str(&batch.payload)?;
        let id = thing["id"].as_str().unwrap_or("echo").to_string();
        let name = thing["title"].as_str().or(thing["name"].as_str()).map(str::to_string);
        let mut records = Records::default();
        records.objects.push(ObjectRecord { external_id: id, kind: batch.kind, name, data: batch.payload });
        Ok(records)
    }
}

fn instance_type(id: &str, name: &str, description: &str) -> InstanceType {
    let host = if id == "notes" { "notes.test" } else { "echo.test" };
    InstanceType {
        id: id.into(),
        name: name.into(),
        description: description.into(),
        kind: InstanceKind::Integration,
        default_schedule: Schedule::Manual,
        hosts: vec![host.into()],
        config_schema: "{}".into(),
        default_backfill_days: 0,
    }
}

/// Every page of notes, each logged and checkpointed as it comes.
fn notes() -> Result<FetchSummary, PluginError> {
    let mut seen = 0;
    for page in 1.. {
        let body: serde_json::Value =
            http::get("https://notes.test/notes").query("page", page.to_string()).authenticated().send_json()?;
        let notes = body["notes"].as_array().cloned().unwrap_or_default();
        for note in &notes {
            emit_json("note", note)?;
        }
        checkpoint()?;
        seen += notes.len() as u64;
        log::info(format!("page {page}: {} notes", notes.len()));
        if body["next"] != true {
            break;
        }
    }
    Ok(FetchSummary { items_seen: seen, ..Default::default() })
}

inlet_plugin_sdk::export_plugin!(ApiKey);
