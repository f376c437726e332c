//! `spreadsheet`: one object of kind `spreadsheet` describing the spreadsheet
//! (title, locale, time zone, its sheets and their sizes) from the Sheets
//! API, and when it was last modified, from the Drive API.

use crate::google;
use inlet_plugin_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

pub const BATCH: &str = "spreadsheet";
const KIND: &str = "spreadsheet";

/// The parts of the Spreadsheet resource kept (no cells: `includeGridData` stays off).
const FIELDS: &str = "spreadsheetId,spreadsheetUrl,properties(title,locale,timeZone),\
                      sheets.properties(sheetId,title,index,sheetType,hidden,gridProperties(rowCount,columnCount))";

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"spreadsheet_id": "1Xq3mFv8TnKcWb2LzR7yHd5PjQ0sGa9eUo4NiC6tVwE_"}))]
struct Config {
    /// The spreadsheet's id: the part of its URL between `/spreadsheets/d/` and `/edit`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    spreadsheet_id: String,
}

pub fn instance_type() -> InstanceType {
    InstanceType::new("spreadsheet", "Spreadsheet")
        .description("The spreadsheet's title, sheets and their sizes, and when it was last modified")
        .every(crate::HOURLY)
        .host(google::SHEETS_HOST)
        .host(google::DRIVE_HOST)
        .host(google::TOKEN_HOST)
        .config::<Config>()
        .backfill_days(0)
}

pub fn fetch(config: &str) -> Result<FetchSummary, PluginError> {
    let config: Config = parse_config(config)?;
    let id = config.spreadsheet_id.as_str();
    google::check_spreadsheet_id(id)?;
    let request = google::sheets(id, "").query("fields", FIELDS);
    let spreadsheet = google::get(request)?.map_err(|e| e.into_plugin_error(id, "config.spreadsheet_id"))?;
    let request = google::drive_file(id).query("fields", "modifiedTime").query("supportsAllDrives", "true");
    let file = match google::get(request)? {
        Ok(file) => file,
        // Consent screens let a person untick a scope: keep the rest.
        Err(error) if error.insufficient_scopes() => {
            log::warn(format!(
                "the modified time is left out: Google refused to show the file's metadata ({}); connect the group \
                 again and allow Drive metadata to see it",
                error.message()
            ));
            Value::Null
        }
        Err(error) => return Err(error.into_plugin_error(id, "config.spreadsheet_id")),
    };
    emit_json(BATCH, &json!({ "spreadsheet": spreadsheet, "file": file }))?;
    Ok(FetchSummary { items_seen: 1, ..FetchSummary::default() })
}

pub fn process(payload: &str) -> Result<Records, PluginError> {
    let payload: Value = serde_json::from_str(payload)?;
    let spreadsheet = &payload["spreadsheet"];
    let properties = &spreadsheet["properties"];
    let Some(id) = spreadsheet["spreadsheetId"].as_str() else {
        return Err(PluginError::Permanent("a spreadsheet without a spreadsheetId".into()));
    };
    // Google leaves out fields at their default value: sheet id 0, index 0, hidden false.
    let sheets: Vec<Value> = spreadsheet["sheets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|sheet| {
            let sheet = &sheet["properties"];
            let grid = &sheet["gridProperties"];
            json!({
                "sheet_id": sheet["sheetId"].as_i64().unwrap_or(0),
                "title": sheet["title"],
                "index": sheet["index"].as_i64().unwrap_or(0),
                "type": sheet["sheetType"].as_str().unwrap_or("GRID"),
                "hidden": sheet["hidden"].as_bool().unwrap_or(false),
                "row_count": grid["rowCount"],
                "column_count": grid["columnCount"],
            })
        })
        .collect();
    let data = json!({
        "title": properties["title"],
        "locale": properties["locale"],
        "time_zone": properties["timeZone"],
        "url": spreadsheet["spreadsheetUrl"],
        "modified_time": payload["file"]["modifiedTime"],
        "sheets": sheets,
    });
    let object = ObjectRecord::new(KIND, id);
    let object = match properties["title"].as_str() {
        Some(title) => object.name(title),
        None => object,
    };
    Ok(Records { objects: vec![object.data(&data)?], ..Records::default() })
}
