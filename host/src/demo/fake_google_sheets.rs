//! A fake Google Sheets API v4 and Drive API v3 on loopback, following the
//! documented shapes (<https://developers.google.com/workspace/sheets/api/reference/rest>,
//! <https://developers.google.com/workspace/drive/api/reference/rest/v3/files/get>):
//!
//! * `GET /v4/spreadsheets/{id}/values/{range}` and `GET /v4/spreadsheets/{id}/values:batchGet?ranges=...`
//!   answer ValueRanges for A1 ranges (`Sheet!A1:E`, `'Q1 Sales'!B:B`, `A2:E` on the first
//!   visible sheet, a sheet name alone), with `majorDimension` (ROWS, COLUMNS),
//!   `valueRenderOption` (FORMATTED_VALUE, UNFORMATTED_VALUE, FORMULA) and
//!   `dateTimeRenderOption`; `range` is the whole requested range, while empty trailing
//!   rows and cells are left out (values arrays are ragged, and `values` is absent for an
//!   empty range). A range Google cannot parse is `400 INVALID_ARGUMENT` "Unable to parse
//!   range: ..."; one past the grid "exceeds grid limits".
//! * `GET /v4/spreadsheets/{id}?fields=...`: the Spreadsheet resource without cells,
//!   filtered by the field mask (`a.b(c,d)`), fields at their default value (sheet id 0,
//!   index 0, hidden false) left out as Google does.
//! * `GET /drive/v3/files/{id}?fields=modifiedTime`: the file's metadata.
//! * Errors in Google's shape: `{"error": {"code", "message", "status"}}`; 404
//!   `NOT_FOUND` for an unknown spreadsheet, 401 `UNAUTHENTICATED` with
//!   `WWW-Authenticate`, 429 `RESOURCE_EXHAUSTED` past 60 read requests a minute.
//! * `POST /token` (oauth2.googleapis.com) grants and refreshes tokens; a refresh keeps
//!   the refresh token ([`FakeOAuth::keeping_refresh_tokens`]).
//!
//! It backs the end-to-end tests and the demo, which change cells and rows while it runs.

use super::fake_oauth::FakeOAuth;
use super::upstream::{FakeApi, FakeUpstream, RecordedRequest, json_answer};
use axum::Json;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// The sample spreadsheet: contacts, and the companies they work for.
pub const SAMPLE_SPREADSHEET_ID: &str = "1Xq3mFv8TnKcWb2LzR7yHd5PjQ0sGa9eUo4NiC6tVwE_";
/// Google's default quota: read requests a minute per user per project.
const READS_PER_MINUTE: usize = 60;
const HOUR_MS: i64 = 3_600_000;

/// What the fake serves.
#[derive(Debug, Clone)]
pub struct GoogleSheetsData {
    pub spreadsheets: BTreeMap<String, Spreadsheet>,
    /// Sheets read requests allowed in any minute before `429 RESOURCE_EXHAUSTED`.
    pub reads_per_minute: usize,
    reads: VecDeque<Instant>,
    /// Answer the next values read with this status (a failure midway through a sync).
    fail_next_values: Option<u16>,
}

#[derive(Debug, Clone)]
pub struct Spreadsheet {
    pub title: String,
    pub locale: String,
    pub time_zone: String,
    /// Drive's `createdTime` and `modifiedTime`, in ms.
    pub created_ms: i64,
    pub modified_ms: i64,
    pub sheets: Vec<Sheet>,
}

#[derive(Debug, Clone)]
pub struct Sheet {
    pub sheet_id: i64,
    pub title: String,
    pub hidden: bool,
    /// The grid's size, which is more than the filled cells.
    pub row_count: usize,
    pub column_count: usize,
    /// Rows from row 1, cells from column A, as the user typed them; `""` is empty.
    pub cells: Vec<Vec<String>>,
}

impl Default for GoogleSheetsData {
    fn default() -> Self {
        GoogleSheetsData {
            spreadsheets: BTreeMap::new(),
            reads_per_minute: READS_PER_MINUTE,
            reads: VecDeque::new(),
            fail_next_values: None,
        }
    }
}

const CONTACTS: [[&str; 5]; 12] = [
    ["Ada Lovelace", "ada@analytical.example", "+44 20 7946 0101", "Analytical Engines", "c-001"],
    ["Grace Hopper", "grace@cobol.example", "+1 202 555 0102", "Navy Computing", "c-002"],
    ["Alan Turing", "alan@bletchley.example", "", "Bletchley Park", "c-003"],
    ["Katherine Johnson", "katherine@langley.example", "+1 757 555 0104", "NASA Langley", "c-004"],
    ["Edsger Dijkstra", "edsger@eindhoven.example", "+31 40 555 0105", "", "c-005"],
    ["Margaret Hamilton", "margaret@apollo.example", "+1 617 555 0106", "Apollo Guidance", "c-006"],
    ["Donald Knuth", "don@taocp.example", "+1 650 555 0107", "Stanford", "c-007"],
    ["Barbara Liskov", "barbara@clu.example", "+1 617 555 0108", "MIT", "c-008"],
    ["John Backus", "john@fortran.example", "", "IBM", "c-009"],
    ["Frances Allen", "fran@ptran.example", "+1 914 555 0110", "IBM", "c-010"],
    ["Tim Berners-Lee", "tim@www.example", "+44 20 7946 0111", "CERN", "c-011"],
    ["Radia Perlman", "radia@spanning.example", "", "", "c-012"],
];

const COMPANIES: [&[&str]; 6] = [
    &["Analytical Engines", "analytical.example", "London"],
    &["Navy Computing", "navy.example", "Arlington"],
    &["Bletchley Park", "bletchley.example"],
    &["NASA Langley", "langley.example", "Hampton"],
    &["IBM", "ibm.example", "Armonk"],
    &["CERN"],
];

impl GoogleSheetsData {
    /// [`SAMPLE_SPREADSHEET_ID`], "Contacts" (last edited two hours before
    /// `now_ms`): sheet `Contacts` with a header row (Name, Email, Phone,
    /// Company, Id) and 12 contacts in rows 2-7 and 9-14 (row 8 is blank, some
    /// phones and companies empty); sheet `Companies` (Company, Website, City)
    /// with 6 companies in rows 2-7, some without a city or website.
    pub fn sample(now_ms: i64) -> GoogleSheetsData {
        let mut contacts = vec![to_row(&["Name", "Email", "Phone", "Company", "Id"])];
        contacts.extend(CONTACTS[..6].iter().map(|c| to_row(c)));
        contacts.push(Vec::new());
        contacts.extend(CONTACTS[6..].iter().map(|c| to_row(c)));
        let mut companies = vec![to_row(&["Company", "Website", "City"])];
        companies.extend(COMPANIES.iter().map(|c| to_row(c)));
        let spreadsheet = Spreadsheet {
            title: "Contacts".into(),
            locale: "en_GB".into(),
            time_zone: "Europe/London".into(),
            created_ms: now_ms - 400 * 24 * HOUR_MS,
            modified_ms: now_ms - 2 * HOUR_MS,
            sheets: vec![
                Sheet {
                    sheet_id: 0,
                    title: "Contacts".into(),
                    hidden: false,
                    row_count: 1000,
                    column_count: 26,
                    cells: contacts,
                },
                Sheet {
                    sheet_id: 1_402_938_271,
                    title: "Companies".into(),
                    hidden: false,
                    row_count: 200,
                    column_count: 8,
                    cells: companies,
                },
            ],
        };
        let mut data = GoogleSheetsData::default();
        data.spreadsheets.insert(SAMPLE_SPREADSHEET_ID.to_string(), spreadsheet);
        data
    }

    /// A sheet to change; panics if there is none (a test's mistake).
    pub fn sheet_mut(&mut self, spreadsheet_id: &str, title: &str) -> &mut Sheet {
        let spreadsheet = self.spreadsheets.get_mut(spreadsheet_id).expect("a spreadsheet of the fake");
        spreadsheet.sheets.iter_mut().find(|s| s.title == title).expect("a sheet of the spreadsheet")
    }

    /// Type `value` into cell `cell` (`B3`), as a person editing the sheet.
    pub fn set_cell(&mut self, spreadsheet_id: &str, sheet: &str, cell: &str, value: &str) {
        let Some(Endpoint { column: Some(column), row: Some(row) }) = endpoint(cell) else {
            panic!("{cell:?} is not a cell such as B3");
        };
        let sheet = self.sheet_mut(spreadsheet_id, sheet);
        sheet.put(row - 1, column, value);
        self.touch(spreadsheet_id);
    }

    /// Delete row `row` (from 1): the rows below move up, as in the Sheets UI.
    pub fn delete_row(&mut self, spreadsheet_id: &str, sheet: &str, row: usize) {
        let sheet = self.sheet_mut(spreadsheet_id, sheet);
        if row >= 1 && row <= sheet.cells.len() {
            sheet.cells.remove(row - 1);
        }
        sheet.row_count = sheet.row_count.saturating_sub(1).max(1);
        self.touch(spreadsheet_id);
    }

    /// Add a row after the last filled one (`spreadsheets.values.append`).
    pub fn append_row(&mut self, spreadsheet_id: &str, sheet: &str, cells: &[&str]) {
        let sheet = self.sheet_mut(spreadsheet_id, sheet);
        let row = sheet.cells.iter().rposition(|r| r.iter().any(|c| !c.is_empty())).map_or(0, |last| last + 1);
        for (column, value) in cells.iter().enumerate() {
            sheet.put(row, column, value);
        }
        self.touch(spreadsheet_id);
    }

    /// Answer the next values read (`values.get` or `values:batchGet`) with
    /// this status, in Google's error shape (500 `INTERNAL`, 503 `UNAVAILABLE`).
    pub fn fail_next_values_read(&mut self, status: u16) {
        self.fail_next_values = Some(status);
    }

    /// The spreadsheet changed now: Drive's modifiedTime moves on.
    fn touch(&mut self, spreadsheet_id: &str) {
        if let Some(spreadsheet) = self.spreadsheets.get_mut(spreadsheet_id) {
            spreadsheet.modified_ms = (spreadsheet.modified_ms + 1000).max(Utc::now().timestamp_millis());
        }
    }

    /// Count a Sheets read; false once the minute's quota is spent.
    fn spend_read(&mut self) -> bool {
        let now = Instant::now();
        while self.reads.front().is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(60)) {
            self.reads.pop_front();
        }
        if self.reads.len() >= self.reads_per_minute {
            return false;
        }
        self.reads.push_back(now);
        true
    }
}

impl Sheet {
    /// Set a cell (row and column from 0), growing the rows and the grid as needed.
    fn put(&mut self, row: usize, column: usize, value: &str) {
        if self.cells.len() <= row {
            self.cells.resize(row + 1, Vec::new());
        }
        let cells = &mut self.cells[row];
        if cells.len() <= column {
            cells.resize(column + 1, String::new());
        }
        cells[column] = value.to_string();
        self.row_count = self.row_count.max(row + 1);
        self.column_count = self.column_count.max(column + 1);
    }

    fn cell(&self, row: usize, column: usize) -> &str {
        self.cells.get(row).and_then(|r| r.get(column)).map_or("", String::as_str)
    }
}

fn to_row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// The fake Google: [`GoogleSheetsData`] served on loopback (Sheets, Drive and the token endpoint).
pub type FakeGoogleSheets = FakeUpstream<GoogleSheetsData>;

impl FakeApi for GoogleSheetsData {
    const TOKEN_PATH: Option<&'static str> = Some("/token");

    fn provider(&self) -> FakeOAuth {
        FakeOAuth::new("demo-access-token").keeping_refresh_tokens()
    }

    fn unauthorized(&self, _: &RecordedRequest) -> Response {
        let mut response = google_error(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other \
             valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "UNAUTHENTICATED",
        );
        response
            .headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""));
        response
    }

    fn answer(&mut self, request: &RecordedRequest) -> Response {
        let segments: Vec<String> = request.path.trim_start_matches('/').split('/').map(percent_decode).collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        if request.method != Method::GET {
            return google_error(StatusCode::NOT_FOUND, "Method not found.", "NOT_FOUND");
        }
        if let ["drive", "v3", "files", id] = segments.as_slice() {
            return self.drive_file(id, request);
        }
        let ["v4", "spreadsheets", id, rest @ ..] = segments.as_slice() else {
            return google_error(StatusCode::NOT_FOUND, "Method not found.", "NOT_FOUND");
        };
        if !self.spend_read() {
            return quota_exceeded();
        }
        let reads_values = matches!(rest, ["values:batchGet"] | ["values", _]);
        if let Some(status) = self.fail_next_values.take_if(|_| reads_values) {
            return server_error(status);
        }
        let Some(spreadsheet) = self.spreadsheets.get(*id) else {
            return google_error(StatusCode::NOT_FOUND, "Requested entity was not found.", "NOT_FOUND");
        };
        let options = match ValueOptions::parse(request) {
            Ok(options) => options,
            Err(refusal) => return refusal.into_response(),
        };
        let answer = match rest {
            [] => Ok(fields_of(request, spreadsheet_resource(id, spreadsheet))),
            ["values", range] => value_range(spreadsheet, range, &options),
            ["values:batchGet"] => {
                let ranges = request.query.iter().filter(|(k, _)| k == "ranges").map(|(_, v)| v.as_str());
                ranges
                    .map(|range| value_range(spreadsheet, range, &options))
                    .collect::<Result<Vec<Value>, Refusal>>()
                    .map(|value_ranges| json!({"spreadsheetId": id, "valueRanges": value_ranges}))
            }
            _ => Err(Refusal {
                status: StatusCode::NOT_FOUND,
                message: "Method not found.".into(),
                rpc_status: "NOT_FOUND",
            }),
        };
        match answer {
            Ok(body) => Json(body).into_response(),
            Err(refusal) => refusal.into_response(),
        }
    }
}

impl GoogleSheetsData {
    /// `files.get`: `kind`, `id`, `name` and `mimeType` unless `fields` asks for others.
    fn drive_file(&self, id: &str, request: &RecordedRequest) -> Response {
        let Some(spreadsheet) = self.spreadsheets.get(id) else {
            let message = format!("File not found: {id}.");
            let error = json!({"message": message, "domain": "global", "reason": "notFound",
                               "location": "fileId", "locationType": "parameter"});
            return json_answer(
                StatusCode::NOT_FOUND,
                json!({"error": {"code": 404, "message": message, "errors": [error]}}),
            );
        };
        let file = json!({
            "kind": "drive#file",
            "id": id,
            "name": spreadsheet.title,
            "mimeType": "application/vnd.google-apps.spreadsheet",
            "createdTime": rfc3339(spreadsheet.created_ms),
            "modifiedTime": rfc3339(spreadsheet.modified_ms),
            "webViewLink": format!("https://docs.google.com/spreadsheets/d/{id}/edit?usp=drivesdk"),
        });
        let body = match request.param("fields") {
            Some(_) => fields_of(request, file),
            None => fields_of_mask("kind,id,name,mimeType", file),
        };
        Json(body).into_response()
    }
}

/// The Spreadsheet resource without grid data.
fn spreadsheet_resource(id: &str, spreadsheet: &Spreadsheet) -> Value {
    let sheets: Vec<Value> = spreadsheet
        .sheets
        .iter()
        .enumerate()
        .map(|(index, sheet)| {
            let mut properties = Map::new();
            // Google leaves out fields at their default value.
            if sheet.sheet_id != 0 {
                properties.insert("sheetId".into(), json!(sheet.sheet_id));
            }
            properties.insert("title".into(), json!(sheet.title));
            if index != 0 {
                properties.insert("index".into(), json!(index));
            }
            properties.insert("sheetType".into(), json!("GRID"));
            properties.insert(
                "gridProperties".into(),
                json!({"rowCount": sheet.row_count, "columnCount": sheet.column_count}),
            );
            if sheet.hidden {
                properties.insert("hidden".into(), json!(true));
            }
            json!({"properties": properties})
        })
        .collect();
    json!({
        "spreadsheetId": id,
        "properties": {
            "title": spreadsheet.title,
            "locale": spreadsheet.locale,
            "autoRecalc": "ON_CHANGE",
            "timeZone": spreadsheet.time_zone,
            "defaultFormat": {
                "backgroundColor": {"red": 1, "green": 1, "blue": 1},
                "verticalAlignment": "BOTTOM",
                "wrapStrategy": "OVERFLOW_CELL",
                "textFormat": {"fontFamily": "arial", "fontSize": 10},
            },
        },
        "sheets": sheets,
        "spreadsheetUrl": format!("https://docs.google.com/spreadsheets/d/{id}/edit"),
    })
}

/// How values are laid out and rendered.
struct ValueOptions {
    major_dimension: &'static str,
    render: &'static str,
}

impl ValueOptions {
    fn parse(request: &RecordedRequest) -> Result<ValueOptions, Refusal> {
        let choose = |name: &str, field: &str, enum_type: &str, allowed: &[&'static str]| match request.param(name) {
            None => Ok(allowed[0]),
            Some(value) => allowed.iter().copied().find(|a| *a == value).ok_or_else(|| {
                let message = format!(
                    "Invalid value at '{field}' (type.googleapis.com/google.apps.sheets.v4.{enum_type}), \"{value}\""
                );
                Refusal::invalid(message)
            }),
        };
        let major =
            choose("majorDimension", "major_dimension", "Dimension", &["ROWS", "COLUMNS", "DIMENSION_UNSPECIFIED"])?;
        let render = choose(
            "valueRenderOption",
            "value_render_option",
            "ValueRenderOption",
            &["FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA"],
        )?;
        choose(
            "dateTimeRenderOption",
            "date_time_render_option",
            "DateTimeRenderOption",
            &["SERIAL_NUMBER", "FORMATTED_STRING"],
        )?;
        let major_dimension = if major == "COLUMNS" { "COLUMNS" } else { "ROWS" };
        Ok(ValueOptions { major_dimension, render })
    }
}

/// One corner of an A1 range: `B3`, `B` (a whole column) or `3` (a whole row).
struct Endpoint {
    /// From 0.
    column: Option<usize>,
    /// From 1.
    row: Option<usize>,
}

fn endpoint(text: &str) -> Option<Endpoint> {
    let letters: String = text.chars().take_while(char::is_ascii_alphabetic).collect();
    let digits = &text[letters.len()..];
    if text.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || letters.len() > 3 {
        return None;
    }
    let column = (!letters.is_empty())
        .then(|| letters.to_ascii_uppercase().bytes().fold(0, |n, b| n * 26 + usize::from(b - b'A' + 1)) - 1);
    let row = match digits {
        "" => None,
        digits => Some(digits.parse().ok().filter(|r| *r >= 1)?),
    };
    Some(Endpoint { column, row })
}

/// `A1:B2`, `A:B`, `2:5`, `A2:E`, `B3`: the corners, if it is a cell range.
fn cell_range(text: &str) -> Option<(Endpoint, Endpoint)> {
    match text.split_once(':') {
        Some((start, end)) => Some((endpoint(start)?, endpoint(end)?)),
        None => Some((endpoint(text)?, endpoint(text)?)),
    }
}

/// A sheet and the rows (from 0) and columns (from 0) a range covers, inclusive.
struct Area<'a> {
    sheet: &'a Sheet,
    rows: (usize, usize),
    columns: (usize, usize),
}

/// Resolve an A1 range as Google does: `'Sheet name'!A1:B2`, `Sheet!A:B`, a
/// sheet's title alone, or cells alone (on the first visible sheet).
fn resolve<'a>(spreadsheet: &'a Spreadsheet, range: &str) -> Result<Area<'a>, Refusal> {
    let unparsable = || Refusal::invalid(format!("Unable to parse range: {range}"));
    fn by_title<'a>(spreadsheet: &'a Spreadsheet, title: &str) -> Option<&'a Sheet> {
        spreadsheet.sheets.iter().find(|s| s.title == title)
    }
    let (sheet, cells) = if let Some(quoted) = range.strip_prefix('\'') {
        // 'It''s here'!A1: a quote inside is doubled.
        let mut title = String::new();
        let mut chars = quoted.chars().peekable();
        let mut closed = false;
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    title.push('\'');
                    continue;
                }
                closed = true;
                break;
            }
            title.push(c);
        }
        let rest: String = chars.collect();
        let cells = match rest.strip_prefix('!') {
            Some(cells) => Some(cells.to_string()),
            None if rest.is_empty() => None,
            None => return Err(unparsable()),
        };
        if !closed {
            return Err(unparsable());
        }
        (by_title(spreadsheet, &title).ok_or_else(unparsable)?, cells)
    } else if let Some((title, cells)) = range.rsplit_once('!') {
        (by_title(spreadsheet, title).ok_or_else(unparsable)?, Some(cells.to_string()))
    } else if let Some(sheet) = by_title(spreadsheet, range) {
        (sheet, None)
    } else {
        let first_visible = spreadsheet.sheets.iter().find(|s| !s.hidden).ok_or_else(unparsable)?;
        (first_visible, Some(range.to_string()))
    };
    let (last_row, last_column) = (sheet.row_count, sheet.column_count.saturating_sub(1));
    let Some(cells) = cells else {
        return Ok(Area { sheet, rows: (0, last_row.saturating_sub(1)), columns: (0, last_column) });
    };
    let (start, end) = cell_range(&cells).ok_or_else(unparsable)?;
    let (mut top, mut bottom) = (start.row.unwrap_or(1), end.row.unwrap_or(last_row));
    let (mut left, mut right) = (start.column.unwrap_or(0), end.column.unwrap_or(last_column));
    if top > bottom {
        (top, bottom) = (bottom, top);
    }
    if left > right {
        (left, right) = (right, left);
    }
    if bottom > sheet.row_count || right >= sheet.column_count {
        let message = format!(
            "Range ({range}) exceeds grid limits. Max rows: {}, max columns: {}",
            sheet.row_count, sheet.column_count
        );
        return Err(Refusal::invalid(message));
    }
    Ok(Area { sheet, rows: (top - 1, bottom - 1), columns: (left, right) })
}

/// A ValueRange: the whole range in `range`, the values without empty
/// trailing rows and cells.
fn value_range(spreadsheet: &Spreadsheet, range: &str, options: &ValueOptions) -> Result<Value, Refusal> {
    let area = resolve(spreadsheet, range)?;
    let (rows, columns) = (area.rows.0..=area.rows.1, area.columns.0..=area.columns.1);
    let lines: Vec<Vec<&str>> = match options.major_dimension {
        "COLUMNS" => columns.map(|c| rows.clone().map(|r| area.sheet.cell(r, c)).collect()).collect(),
        _ => rows.map(|r| columns.clone().map(|c| area.sheet.cell(r, c)).collect()).collect(),
    };
    let mut values: Vec<Vec<Value>> = lines
        .into_iter()
        .map(|mut line| {
            while line.last() == Some(&"") {
                line.pop();
            }
            line.into_iter().map(|cell| render(cell, options.render)).collect()
        })
        .collect();
    while values.last().is_some_and(Vec::is_empty) {
        values.pop();
    }
    let start = format!("{}{}", column_name(area.columns.0), area.rows.0 + 1);
    let end = format!("{}{}", column_name(area.columns.1), area.rows.1 + 1);
    let cells = if start == end { start } else { format!("{start}:{end}") };
    let mut body =
        json!({"range": format!("{}!{cells}", quoted(&area.sheet.title)), "majorDimension": options.major_dimension});
    if !values.is_empty() {
        body["values"] = json!(values);
    }
    Ok(body)
}

/// FORMATTED_VALUE is the text shown; the others give numbers and booleans as such.
fn render(cell: &str, render: &str) -> Value {
    if render == "FORMATTED_VALUE" || cell.is_empty() {
        return json!(cell);
    }
    match cell {
        "TRUE" => json!(true),
        "FALSE" => json!(false),
        _ => match (cell.parse::<i64>(), cell.parse::<f64>().ok().and_then(serde_json::Number::from_f64)) {
            (Ok(integer), _) => json!(integer),
            (_, Some(number)) => Value::Number(number),
            _ => json!(cell),
        },
    }
}

/// Column 0 → `A`, 26 → `AA`.
fn column_name(index: usize) -> String {
    let mut name = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        name.push(b'A' + ((n - 1) % 26) as u8);
        n = (n - 1) / 26;
    }
    name.reverse();
    String::from_utf8(name).unwrap_or_default()
}

/// A sheet's title as Google writes it in a range: quoted unless plain.
fn quoted(title: &str) -> String {
    let plain = title.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && cell_range(title).is_none();
    if plain { title.to_string() } else { format!("'{}'", title.replace('\'', "''")) }
}

/// A field mask's selection: everything under a field, or some of its fields.
enum Selection {
    All,
    Some(BTreeMap<String, Selection>),
}

/// `value` filtered by the request's `fields` mask, or whole without one.
fn fields_of(request: &RecordedRequest, value: Value) -> Value {
    match request.param("fields") {
        Some(mask) => fields_of_mask(mask, value),
        None => value,
    }
}

fn fields_of_mask(mask: &str, value: Value) -> Value {
    let chars: Vec<char> = mask.chars().filter(|c| !c.is_whitespace()).collect();
    let mut at = 0;
    match parse_fields(&chars, &mut at) {
        Some(fields) if at == chars.len() => select(&value, &Selection::Some(fields)).unwrap_or_else(|| json!({})),
        // Google refuses a mask it cannot parse; the fake gives nothing.
        _ => json!({}),
    }
}

/// `a,b.c,d(e,f/g)`: fields separated by commas, sub-fields by `.` or `/`,
/// several sub-fields in parentheses; names in camelCase or snake_case.
fn parse_fields(chars: &[char], at: &mut usize) -> Option<BTreeMap<String, Selection>> {
    let mut fields = BTreeMap::new();
    loop {
        let mut path = vec![field_name(chars, at)?];
        while matches!(chars.get(*at), Some('.' | '/')) {
            *at += 1;
            path.push(field_name(chars, at)?);
        }
        let leaf = if chars.get(*at) == Some(&'(') {
            *at += 1;
            let inner = parse_fields(chars, at)?;
            if chars.get(*at) != Some(&')') {
                return None;
            }
            *at += 1;
            Selection::Some(inner)
        } else {
            Selection::All
        };
        insert(&mut fields, &path, leaf);
        if chars.get(*at) != Some(&',') {
            return Some(fields);
        }
        *at += 1;
    }
}

fn field_name(chars: &[char], at: &mut usize) -> Option<String> {
    let start = *at;
    while chars.get(*at).is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '*') {
        *at += 1;
    }
    let name: String = chars[start..*at].iter().collect();
    // snake_case → camelCase, as the JSON has it.
    let mut camel = String::new();
    let mut upper = false;
    for c in name.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                camel.push(c.to_ascii_uppercase());
                upper = false;
            }
            c => camel.push(c),
        }
    }
    (!camel.is_empty()).then_some(camel)
}

fn insert(fields: &mut BTreeMap<String, Selection>, path: &[String], leaf: Selection) {
    let Some((first, rest)) = path.split_first() else { return };
    let entry = fields.entry(first.clone()).or_insert_with(|| Selection::Some(BTreeMap::new()));
    if rest.is_empty() {
        merge(entry, leaf);
    } else if let Selection::Some(inner) = entry {
        insert(inner, rest, leaf);
    }
}

fn merge(into: &mut Selection, other: Selection) {
    match (into, other) {
        (Selection::All, _) => {}
        (into, Selection::All) => *into = Selection::All,
        (Selection::Some(fields), Selection::Some(others)) => {
            for (name, selection) in others {
                merge(fields.entry(name).or_insert_with(|| Selection::Some(BTreeMap::new())), selection);
            }
        }
    }
}

/// The part of `value` the selection names; arrays are filtered element by element.
fn select(value: &Value, selection: &Selection) -> Option<Value> {
    match (value, selection) {
        (value, Selection::All) => Some(value.clone()),
        (Value::Array(items), selection) => {
            Some(Value::Array(items.iter().filter_map(|i| select(i, selection)).collect()))
        }
        (Value::Object(_), Selection::Some(fields)) if fields.contains_key("*") => Some(value.clone()),
        (Value::Object(object), Selection::Some(fields)) => {
            let mut kept = Map::new();
            for (name, selection) in fields {
                if let Some(selected) = object.get(name).and_then(|v| select(v, selection)) {
                    kept.insert(name.clone(), selected);
                }
            }
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        _ => None,
    }
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = segment.get(i + 1..i + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            decoded.push(byte);
            i += 3;
            continue;
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// An error answer, kept small until it is sent.
struct Refusal {
    status: StatusCode,
    message: String,
    rpc_status: &'static str,
}

impl Refusal {
    /// `400 INVALID_ARGUMENT`: a range or parameter Google cannot use.
    fn invalid(message: String) -> Refusal {
        Refusal { status: StatusCode::BAD_REQUEST, message, rpc_status: "INVALID_ARGUMENT" }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        google_error(self.status, &self.message, self.rpc_status)
    }
}

fn google_error(status: StatusCode, message: &str, rpc_status: &str) -> Response {
    json_answer(status, json!({"error": {"code": status.as_u16(), "message": message, "status": rpc_status}}))
}

fn server_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match status {
        StatusCode::SERVICE_UNAVAILABLE => google_error(status, "The service is currently unavailable.", "UNAVAILABLE"),
        StatusCode::INTERNAL_SERVER_ERROR => google_error(status, "Internal error encountered.", "INTERNAL"),
        other => google_error(other, other.canonical_reason().unwrap_or("Error"), "UNKNOWN"),
    }
}

fn quota_exceeded() -> Response {
    let message = "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user' of \
                   service 'sheets.googleapis.com' for consumer 'project_number:000000000000'.";
    json_answer(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"error": {
            "code": 429,
            "message": message,
            "status": "RESOURCE_EXHAUSTED",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com",
                "metadata": {
                    "quota_metric": "sheets.googleapis.com/read_requests",
                    "quota_limit": "ReadRequestsPerMinutePerUser",
                    "quota_limit_value": READS_PER_MINUTE.to_string(),
                    "service": "sheets.googleapis.com",
                    "consumer": "projects/000000000000",
                },
            }],
        }}),
    )
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}
