//! `rows`: each row of a range as an object of kind `row` whose data is the
//! row as `{column name: value}`, the column names taken from a header row.
//! A row's external id is its value in the id column, or else its row number.
//! The range is read whole each run (the API has no "changed since"); rows
//! that are gone are tombstoned only after a complete read.

use crate::{a1, google};
use inlet_plugin_sdk::prelude::*;
use inlet_plugin_sdk::snapshot::Snapshot;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub const BATCH: &str = "rows";
const KIND: &str = "row";
/// Rows per emitted batch: a big sheet is handed over in pieces.
const ROWS_PER_BATCH: usize = 500;
/// Row numbers a message lists at most.
const LISTED: usize = 10;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"spreadsheet_id": "1Xq3mFv8TnKcWb2LzR7yHd5PjQ0sGa9eUo4NiC6tVwE_", "id_column": "Id"}))]
struct Config {
    /// The spreadsheet's id: the part of its URL between `/spreadsheets/d/` and `/edit`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    spreadsheet_id: String,
    /// A sheet's name (`Contacts`), an A1 range (`Contacts!A1:E500`) or a named range; default: the first sheet.
    range: Option<String>,
    /// The row holding the column names, numbered as the sheet numbers it; the rows below it are the data.
    #[serde(default = "first_row")]
    #[schemars(range(min = 1))]
    header_row: u32,
    /// The column (by its name in the header row) whose value identifies a row; default: the row number.
    id_column: Option<String>,
}

fn first_row() -> u32 {
    1
}

pub fn instance_type() -> InstanceType {
    InstanceType::new("rows", "Rows")
        .description("Each row of a sheet or range, keyed by an id column or the row number")
        .every(crate::HOURLY)
        .host(google::SHEETS_HOST)
        .host(google::TOKEN_HOST)
        .config::<Config>()
        .backfill_days(0)
}

/// What `process` gets: rows with their ids, cells aligned with `columns`.
#[derive(Serialize, Deserialize)]
struct Payload {
    spreadsheet_id: String,
    /// The range as Google named it, e.g. `Contacts!A1:Z1000`.
    range: String,
    columns: Vec<String>,
    id_column: Option<String>,
    rows: Vec<Row>,
}

#[derive(Serialize, Deserialize)]
struct Row {
    /// Numbered as the sheet numbers it.
    row: u32,
    id: String,
    cells: Vec<String>,
}

/// `spreadsheets.values.get`'s answer. Trailing empty rows and cells are
/// left out, so rows are ragged; `values` is absent for an empty range.
#[derive(Deserialize)]
struct ValueRange {
    range: String,
    #[serde(default)]
    values: Vec<Vec<Value>>,
}

pub fn fetch(config: &str) -> Result<FetchSummary, PluginError> {
    let config: Config = parse_config(config)?;
    google::check_spreadsheet_id(&config.spreadsheet_id)?;
    if config.header_row == 0 {
        return Err(PluginError::InvalidConfig("config.header_row: rows are numbered from 1".into()));
    }
    let id = config.spreadsheet_id.as_str();
    let range = match config.range.as_deref().map(str::trim) {
        Some("") => {
            return Err(PluginError::InvalidConfig(
                "config.range: it is empty; leave it out for the first sheet".into(),
            ));
        }
        Some(range) => range.to_string(),
        None => first_sheet(id)?,
    };
    let data = read_values(id, &range, "config.range")?;
    let (sheet, start, end) = a1::bounds(&data.range);
    let header_row = config.header_row;
    if let Some(last) = end.row.filter(|last| header_row > *last) {
        return Err(PluginError::InvalidConfig(format!(
            "config.header_row: row {header_row} is below the range read ({}, which ends at row {last})",
            data.range
        )));
    }
    // The header is in what was read, or above it (a range such as `A2:E`).
    let header = match header_row.checked_sub(start.row) {
        Some(index) => (data.values.get(index as usize).cloned().unwrap_or_default(), start.column),
        None => {
            let columns = match end.column {
                Some(last) => format!("{}{header_row}:{}{header_row}", a1::column(start.column), a1::column(last)),
                None => format!("{header_row}:{header_row}"),
            };
            let above = read_values(id, &format!("{sheet}!{columns}"), "config.header_row")?;
            let (_, header_start, _) = a1::bounds(&above.range);
            (above.values.into_iter().next().unwrap_or_default(), header_start.column)
        }
    };
    let body = data
        .values
        .iter()
        .enumerate()
        .map(|(i, cells)| (start.row + i as u32, cells))
        .filter(|(row, _)| *row > header_row);
    let table = Table::new(&config, &sheet, header, start.column)?;
    let read = table.rows(body)?;
    let mut seen = Snapshot::objects("rows", KIND);
    seen.saw_all(read.rows.iter().map(|row| row.id.clone()));
    let total = read.rows.len();
    let mut rows = read.rows.into_iter().peekable();
    let mut done = 0;
    while rows.peek().is_some() {
        let chunk: Vec<Row> = rows.by_ref().take(ROWS_PER_BATCH).collect();
        done += chunk.len();
        let payload = Payload {
            spreadsheet_id: config.spreadsheet_id.clone(),
            range: data.range.clone(),
            columns: table.names.clone(),
            id_column: table.id_index.map(|index| table.names[index].clone()),
            rows: chunk,
        };
        emit_json(BATCH, &payload)?;
        checkpoint()?;
        log::progress(done as u64, Some(total as u64));
    }
    // Every row of the range was read: what the last read had and this one does not is gone.
    let removed = seen.complete()?;
    log::info(format!("{total} rows read from {}, {removed} gone since the last read", data.range));
    let mut summary = FetchSummary { items_seen: total as u64, ..FetchSummary::default() };
    if !read.notes.is_empty() {
        summary.note = Some(read.notes.join("; "));
    }
    Ok(summary)
}

pub fn process(payload: &str) -> Result<Records, PluginError> {
    let payload: Payload = serde_json::from_str(payload)?;
    let mut records = Records::default();
    let id_index = payload.id_column.as_ref().and_then(|id| payload.columns.iter().position(|c| c == id));
    for row in payload.rows {
        let mut data = Map::new();
        for (index, column) in payload.columns.iter().enumerate() {
            data.insert(column.clone(), Value::String(row.cells.get(index).cloned().unwrap_or_default()));
        }
        // Named after its first filled cell that is not the id (a contact's name).
        let name =
            row.cells.iter().enumerate().find(|(index, cell)| Some(*index) != id_index && !cell.trim().is_empty());
        let object = ObjectRecord::new(KIND, row.id);
        let object = match name {
            Some((_, name)) => object.name(name.trim()),
            None => object,
        };
        records.objects.push(object.data(&data)?);
    }
    Ok(records)
}

/// The title of the spreadsheet's first sheet (the first grid: a chart sheet holds no cells).
fn first_sheet(spreadsheet_id: &str) -> Result<String, PluginError> {
    let request = google::sheets(spreadsheet_id, "").query("fields", "sheets.properties(title,index,sheetType)");
    let spreadsheet = google::get(request)?.map_err(|e| e.into_plugin_error(spreadsheet_id, "config.range"))?;
    let mut sheets: Vec<&Value> =
        spreadsheet["sheets"].as_array().into_iter().flatten().map(|s| &s["properties"]).collect();
    // Google leaves out fields at their default: the first sheet has no `index`.
    sheets.sort_by_key(|s| s["index"].as_i64().unwrap_or(0));
    let grid = sheets.into_iter().find(|s| s["sheetType"].as_str().is_none_or(|t| t == "GRID"));
    match grid.and_then(|s| s["title"].as_str()) {
        Some(title) => Ok(a1::quote_sheet(title)),
        None => Err(PluginError::InvalidConfig(format!(
            "config.spreadsheet_id: spreadsheet {spreadsheet_id:?} has no sheet of cells"
        ))),
    }
}

fn read_values(spreadsheet_id: &str, range: &str, range_field: &str) -> Result<ValueRange, PluginError> {
    let request = google::sheets(spreadsheet_id, &format!("/values/{}", google::path_segment(range)))
        .query("majorDimension", "ROWS")
        .query("valueRenderOption", "FORMATTED_VALUE");
    let answer = google::get(request)?.map_err(|e| e.into_plugin_error(spreadsheet_id, range_field))?;
    Ok(serde_json::from_value(answer)?)
}

/// The header row's column names, checked, and where each column's cells
/// are in a data row.
struct Table {
    names: Vec<String>,
    /// Index into a data row's cells of column `names[i]`.
    offset: usize,
    id_index: Option<usize>,
    header_row: u32,
    /// Column of the first name, for messages.
    first_column: u32,
}

/// The rows to store, and what was left out and why.
struct Read {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Table {
    /// `header` starts at column `header_column`; data rows at `data_column`.
    fn new(config: &Config, sheet: &str, header: (Vec<Value>, u32), data_column: u32) -> Result<Table, PluginError> {
        let (cells, header_column) = header;
        let header_row = config.header_row;
        let names: Vec<String> = cells.iter().map(|cell| text(cell).trim().to_string()).collect();
        let column_of = |index: usize| format!("{}{header_row}", a1::column(header_column + index as u32));
        if let Some(index) = names.iter().position(String::is_empty) {
            return Err(PluginError::InvalidConfig(format!(
                "config.header_row: cell {} of {sheet} is empty, but row {header_row} should name every column \
                 of the range; name it, or point header_row or range elsewhere",
                column_of(index)
            )));
        }
        let mut first_seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (index, name) in names.iter().enumerate() {
            if let Some(first) = first_seen.insert(name, index) {
                return Err(PluginError::InvalidConfig(format!(
                    "config.header_row: the column name {name:?} is in both {} and {} of {sheet}; column names \
                     must differ",
                    column_of(first),
                    column_of(index)
                )));
            }
        }
        let id_index = match &config.id_column {
            None => None,
            Some(id) => match names.iter().position(|name| name == id.trim()) {
                Some(index) => Some(index),
                None if names.is_empty() => None,
                None => {
                    return Err(PluginError::InvalidConfig(format!(
                        "config.id_column: {id:?} is not a column name in row {header_row} of {sheet} (it has {})",
                        names.join(", ")
                    )));
                }
            },
        };
        Ok(Table {
            names,
            offset: header_column.saturating_sub(data_column) as usize,
            id_index,
            header_row,
            first_column: header_column,
        })
    }

    /// The data rows worth storing: all-empty rows are skipped, and so are
    /// rows without an id; two rows with one id fail the read.
    fn rows<'a>(&self, body: impl Iterator<Item = (u32, &'a Vec<Value>)>) -> Result<Read, PluginError> {
        let mut rows = Vec::new();
        let (mut without_id, mut beyond_header) = (Vec::new(), Vec::new());
        let mut by_id: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for (number, cells) in body {
            let mut cells: Vec<String> = cells.iter().map(text).collect();
            let (before, rest) = cells.split_at(self.offset.min(cells.len()));
            let outside = before.iter().chain(rest.iter().skip(self.names.len())).any(|c| !c.trim().is_empty());
            cells = rest.iter().take(self.names.len()).cloned().collect();
            if outside {
                beyond_header.push(number);
            }
            if cells.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            if self.names.is_empty() {
                return Err(PluginError::InvalidConfig(format!(
                    "config.header_row: row {} is empty, but it should hold the column names of the rows below it",
                    self.header_row
                )));
            }
            let id = match self.id_index {
                Some(index) => cells.get(index).map(|c| c.trim().to_string()).unwrap_or_default(),
                None => number.to_string(),
            };
            if id.is_empty() {
                without_id.push(number);
                continue;
            }
            by_id.entry(id.clone()).or_default().push(number);
            rows.push(Row { row: number, id, cells });
        }
        let duplicates: Vec<String> = by_id
            .iter()
            .filter(|(_, numbers)| numbers.len() > 1)
            .map(|(id, numbers)| format!("{id:?} in rows {}", list(numbers)))
            .collect();
        if !duplicates.is_empty() {
            let column = self.id_index.map(|i| self.names[i].as_str()).unwrap_or_default();
            return Err(PluginError::Permanent(format!(
                "the id column {column:?} holds the same id in more than one row: {}; each row needs its own id, so \
                 nothing was stored",
                duplicates.into_iter().take(LISTED).collect::<Vec<_>>().join(", ")
            )));
        }
        let mut notes = Vec::new();
        if !without_id.is_empty() {
            let column = self.id_index.map(|i| self.names[i].as_str()).unwrap_or_default();
            let note =
                format!("{} rows without a value in {column:?} skipped: {}", without_id.len(), list(&without_id));
            log::warn(&note);
            notes.push(note);
        }
        if !beyond_header.is_empty() {
            let last = a1::column(self.first_column + self.names.len().saturating_sub(1) as u32);
            let note =
                format!("cells outside the named columns (after {last}) not stored, in rows {}", list(&beyond_header));
            log::warn(&note);
            notes.push(note);
        }
        Ok(Read { rows, notes })
    }
}

/// A cell as text: `FORMATTED_VALUE` gives strings, anything else is shown as JSON.
fn text(cell: &Value) -> String {
    match cell {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn list(numbers: &[u32]) -> String {
    let mut shown: Vec<String> = numbers.iter().take(LISTED).map(u32::to_string).collect();
    if numbers.len() > LISTED {
        shown.push(format!("and {} more", numbers.len() - LISTED));
    }
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(id_column: Option<&str>) -> Config {
        Config { spreadsheet_id: "x".into(), range: None, header_row: 1, id_column: id_column.map(str::to_string) }
    }

    fn cells(cells: &[&str]) -> Vec<Value> {
        cells.iter().map(|c| json!(c)).collect()
    }

    #[test]
    fn rows_are_keyed_by_the_id_column_or_their_number_and_empty_ones_are_skipped() {
        let header = (cells(&["Name", " Email ", "Id"]), 0);
        let body = [cells(&["Ada", "ada@x", "c-1"]), vec![], cells(&["", "", ""]), cells(&["Alan", "", "c-3"])];
        let numbered = || body.iter().enumerate().map(|(i, c)| (i as u32 + 2, c));
        let table = Table::new(&config(Some("Id")), "Contacts", header.clone(), 0).unwrap();
        assert_eq!(table.names, ["Name", "Email", "Id"]);
        let read = table.rows(numbered()).unwrap();
        let ids: Vec<(u32, &str)> = read.rows.iter().map(|r| (r.row, r.id.as_str())).collect();
        assert_eq!(ids, [(2, "c-1"), (5, "c-3")]);
        assert_eq!(read.rows[1].cells, ["Alan", "", "c-3"]);
        let read = Table::new(&config(None), "Contacts", header, 0).unwrap().rows(numbered()).unwrap();
        let ids: Vec<&str> = read.rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["2", "5"]);
    }

    #[test]
    fn bad_headers_and_duplicate_ids_are_refused_naming_the_problem() {
        let refused =
            |header: &[&str], id_column: Option<&str>| match Table::new(&config(id_column), "S", (cells(header), 1), 0)
            {
                Err(PluginError::InvalidConfig(message)) => message,
                _ => panic!("{header:?} accepted"),
            };
        assert!(refused(&["A", "", "C"], None).starts_with("config.header_row: cell C1 of S is empty"));
        assert!(refused(&["A", "B", "A"], None).contains(r#""A" is in both B1 and D1"#));
        assert!(refused(&["A", "B"], Some("Id")).starts_with("config.id_column: \"Id\" is not a column name"));
        let table = Table::new(&config(Some("Id")), "S", (cells(&["Name", "Id"]), 0), 0).unwrap();
        let body = [cells(&["a", "x"]), cells(&["b", "y"]), cells(&["c", "x"])];
        match table.rows(body.iter().enumerate().map(|(i, c)| (i as u32 + 2, c))) {
            Err(PluginError::Permanent(message)) => assert!(message.contains(r#""x" in rows 2, 4"#), "{message}"),
            _ => panic!("duplicate ids accepted"),
        }
    }
}
