//! Google Sheets through the real binary against the fake Google: a contacts
//! sheet synced by its Id column (an edit, a new row, a deleted row, a read that
//! fails midway, duplicate ids, Google's quota, bad config, a refused token); a
//! sheet keyed by row number; the spreadsheet instance type; a refresh that
//! keeps the refresh token; and both instance types' cassettes.

use crate::support::{Inlet, bundled_plugin};
use crate::{record_cassette, sync};
use inlet::demo::fake_google_sheets::{FakeGoogleSheets, GoogleSheetsData, SAMPLE_SPREADSHEET_ID as ID};
use inlet::demo::fake_oauth::{CLIENT_ID, CLIENT_SECRET};
use serde_json::{Value, json};

async fn start() -> (FakeGoogleSheets, Inlet) {
    let now = chrono::Utc::now().timestamp_millis();
    let fake = FakeGoogleSheets::start(GoogleSheetsData::sample(now)).await.unwrap();
    let inlet = Inlet::with_plugins(&[bundled_plugin("google-sheets")])
        .env("INLET_UPSTREAM_OVERRIDE", &overrides(&fake))
        .env("INLET_OAUTH_GOOGLE_SHEETS_CLIENT_ID", CLIENT_ID)
        .env("INLET_OAUTH_GOOGLE_SHEETS_CLIENT_SECRET", CLIENT_SECRET)
        // The manifest's 60 requests a minute space them a second apart; these runs need not wait.
        .config("[plugins.google-sheets]\nrate_limit = { requests = 50, per_seconds = 1 }\n");
    (fake, inlet)
}

/// Sheets, Drive and the token endpoint, all served by the fake.
fn overrides(fake: &FakeGoogleSheets) -> String {
    let url = fake.base_url();
    format!("sheets.googleapis.com={url},www.googleapis.com={url},oauth2.googleapis.com={url}")
}

async fn add_group(inlet: &Inlet, name: &str, access_token: &str, refresh_token: Option<&str>) -> String {
    let mut args = vec!["groups", "add", "google-sheets", "--name", name, "--access-token", access_token, "--json"];
    if let Some(refresh_token) = refresh_token {
        args.extend(["--refresh-token", refresh_token]);
    }
    inlet.json(&args).await["id"].to_string()
}

async fn add(inlet: &Inlet, group: &str, instance_type: &str, config: Value) -> String {
    let config = config.to_string();
    let args = ["integrations", "add", "google-sheets", instance_type, "--group", group, "--config", &config, "--json"];
    inlet.json(&args).await["id"].to_string()
}

/// `inlet sync <id> --json`, requiring success; the record counts.
async fn synced(inlet: &Inlet, id: &str) -> Value {
    let run = sync(inlet, id).await;
    assert_eq!(run["status"], "success", "{run:#}");
    run["records"].clone()
}

fn counts(created: i64, updated: i64, unchanged: i64, deleted: i64) -> Value {
    json!({"created": created, "updated": updated, "unchanged": unchanged, "deleted": deleted})
}

/// A failed run's error class and message.
async fn failure(inlet: &Inlet, id: &str) -> (String, String, Value) {
    let run = sync(inlet, id).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let class = run["error_class"].as_str().unwrap().to_string();
    (class, run["error_message"].as_str().unwrap_or_default().to_string(), run["records"].clone())
}

async fn objects(inlet: &Inlet, id: &str) -> Vec<Value> {
    inlet.json(&["records", id]).await["objects"].as_array().unwrap().clone()
}

fn object<'a>(objects: &'a [Value], external_id: &str) -> &'a Value {
    objects.iter().find(|o| o["external_id"] == external_id).unwrap_or_else(|| panic!("no {external_id}"))
}

fn live(objects: &[Value]) -> usize {
    objects.iter().filter(|o| o["deleted"] == false).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_contacts_sheet_syncs_by_its_id_column_and_follows_edits_additions_and_deletions() {
    let (fake, inlet) = start().await;
    let group = add_group(&inlet, "crm", &fake.access_token(), None).await;
    let contacts = add(&inlet, &group, "rows", json!({"spreadsheet_id": ID, "id_column": "Id"})).await;

    // The first sheet's title, then its values: 12 contacts, the blank row 8 skipped.
    fake.take_requests();
    assert_eq!(synced(&inlet, &contacts).await, counts(12, 0, 0, 0));
    let requests = fake.take_requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, [format!("/v4/spreadsheets/{ID}"), format!("/v4/spreadsheets/{ID}/values/%27Contacts%27")]);
    assert!(requests.iter().all(|r| r.authorized), "the host added the group's token");
    assert!(requests[0].param("fields").unwrap().contains("sheets.properties("), "{:?}", requests[0].query);
    assert_eq!(requests[1].param("majorDimension"), Some("ROWS"));
    assert_eq!(requests[1].param("valueRenderOption"), Some("FORMATTED_VALUE"));
    let stored = objects(&inlet, &contacts).await;
    assert_eq!(stored.len(), 12);
    let turing = object(&stored, "c-003");
    assert_eq!((&turing["kind"], &turing["name"]), (&json!("row"), &json!("Alan Turing")));
    assert_eq!(
        turing["data"],
        json!({"Name": "Alan Turing", "Email": "alan@bletchley.example", "Phone": "", "Company": "Bletchley Park",
               "Id": "c-003"}),
        "an empty cell is an empty string"
    );
    assert_eq!(object(&stored, "c-012")["data"]["Company"], "");

    // Nothing changed upstream: nothing created, updated or deleted.
    assert_eq!(synced(&inlet, &contacts).await, counts(0, 0, 12, 0));

    // An edited cell and a new row.
    fake.update(|sheets| {
        sheets.set_cell(ID, "Contacts", "B4", "alan.turing@manchester.example");
        sheets.append_row(ID, "Contacts", &["Hedy Lamarr", "hedy@hopping.example", "", "", "c-013"]);
    });
    assert_eq!(synced(&inlet, &contacts).await, counts(1, 1, 11, 0));
    let stored = objects(&inlet, &contacts).await;
    assert_eq!(object(&stored, "c-003")["data"]["Email"], "alan.turing@manchester.example");
    assert_eq!(object(&stored, "c-013")["name"], "Hedy Lamarr");

    // A deleted row, and the read of the values fails: nothing is deleted.
    fake.update(|sheets| {
        sheets.delete_row(ID, "Contacts", 6);
        sheets.fail_next_values_read(500);
    });
    let (class, message, records) = failure(&inlet, &contacts).await;
    assert_eq!(class, "transient", "{message}");
    assert_eq!(records["deleted"], 0);
    let stored = objects(&inlet, &contacts).await;
    assert_eq!(object(&stored, "c-005")["deleted"], false, "a failed read deletes nothing");

    // The next complete read finds it gone; the rows that moved up keep their ids.
    assert_eq!(synced(&inlet, &contacts).await, counts(0, 0, 12, 1));
    let stored = objects(&inlet, &contacts).await;
    assert_eq!(object(&stored, "c-005")["deleted"], true);
    assert_eq!(live(&stored), 12);

    // Two rows with one id: the run fails naming them, and merges nothing.
    fake.update(|sheets| sheets.set_cell(ID, "Contacts", "E3", "c-001"));
    let (class, message, records) = failure(&inlet, &contacts).await;
    assert_eq!(class, "permanent", "{message}");
    assert!(message.contains(r#""c-001" in rows 2, 3"#), "{message}");
    assert_eq!(records, counts(0, 0, 0, 0));
    fake.update(|sheets| sheets.set_cell(ID, "Contacts", "E3", "c-002"));

    // A header cell emptied: the config's header row no longer names every column.
    fake.update(|sheets| sheets.set_cell(ID, "Contacts", "C1", ""));
    let (class, message, _) = failure(&inlet, &contacts).await;
    assert_eq!(class, "invalid-config", "{message}");
    assert!(message.contains("config.header_row") && message.contains("C1"), "{message}");
    fake.update(|sheets| sheets.set_cell(ID, "Contacts", "C1", "Phone"));
    assert_eq!(synced(&inlet, &contacts).await, counts(0, 0, 12, 0), "both fixed, nothing changed");

    // Google's per-minute quota spent: rate-limited (Google sends no Retry-After).
    fake.update(|sheets| sheets.reads_per_minute = 0);
    let (class, message, _) = failure(&inlet, &contacts).await;
    assert_eq!(class, "rate-limited", "{message}");
    assert!(message.contains("retry after 60s") && message.contains("Quota exceeded"), "{message}");
    fake.update(|sheets| sheets.reads_per_minute = 60);
    assert_eq!(live(&objects(&inlet, &contacts).await), 12, "failed runs deleted nothing");

    // Config naming what is not there fails as invalid-config, naming the field.
    let wrong = [
        (json!({"spreadsheet_id": "1NoSuchSpreadsheet0aBcDeFgHiJkLmNoPqRsTuVwXy"}), "config.spreadsheet_id"),
        (json!({"spreadsheet_id": ID, "range": "Contcts!A1:E"}), "config.range"),
        (json!({"spreadsheet_id": ID, "id_column": "ID"}), "config.id_column"),
    ];
    for (config, field) in wrong {
        let id = add(&inlet, &group, "rows", config.clone()).await;
        let (class, message, _) = failure(&inlet, &id).await;
        assert_eq!(class, "invalid-config", "{config}: {message}");
        assert!(message.starts_with(field), "{config}: {message}");
    }

    // A refused access token and no refresh token: the group must reconnect.
    let token = "ya29.refused-token-7d41";
    let refused = add_group(&inlet, "refused", token, None).await;
    let id = add(&inlet, &refused, "rows", json!({"spreadsheet_id": ID})).await;
    let run = sync(&inlet, &id).await;
    assert_eq!(run["error_class"], "unauthorized", "{run:#}");
    assert!(!run.to_string().contains(token), "the token is not shown");
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_by_number_the_spreadsheet_a_kept_refresh_token_and_the_cassettes() {
    let (fake, inlet) = start().await;
    let refresh_token = fake.oauth().grant_refresh_token();
    let group = add_group(&inlet, "work", &fake.access_token(), Some(&refresh_token)).await;

    // Without an id column a row's id is its number; the API leaves out empty
    // trailing cells, which are stored empty.
    let companies = add(&inlet, &group, "rows", json!({"spreadsheet_id": ID, "range": "Companies"})).await;
    fake.take_requests();
    assert_eq!(synced(&inlet, &companies).await, counts(6, 0, 0, 0));
    let paths: Vec<String> = fake.take_requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, [format!("/v4/spreadsheets/{ID}/values/Companies")], "a named range needs one request");
    let stored = objects(&inlet, &companies).await;
    let ids: Vec<&str> = stored.iter().map(|o| o["external_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["2", "3", "4", "5", "6", "7"]);
    assert_eq!(
        object(&stored, "4")["data"],
        json!({"Company": "Bletchley Park", "Website": "bletchley.example", "City": ""})
    );
    assert_eq!(object(&stored, "7")["data"], json!({"Company": "CERN", "Website": "", "City": ""}));
    assert_eq!(object(&stored, "7")["name"], "CERN");

    // A range below its header row: the header is read on its own.
    let below = add(&inlet, &group, "rows", json!({"spreadsheet_id": ID, "range": "Companies!A4:C"})).await;
    assert_eq!(synced(&inlet, &below).await, counts(4, 0, 0, 0));
    let requests = fake.take_requests();
    assert_eq!(requests.last().unwrap().path, format!("/v4/spreadsheets/{ID}/values/Companies%21A1%3AC1"));
    assert_eq!(object(&objects(&inlet, &below).await, "5")["data"]["City"], "Hampton");

    // The spreadsheet itself: its sheets from Sheets, its modified time from Drive.
    let spreadsheet = add(&inlet, &group, "spreadsheet", json!({"spreadsheet_id": ID})).await;
    assert_eq!(synced(&inlet, &spreadsheet).await, counts(1, 0, 0, 0));
    let paths: Vec<String> = fake.take_requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, [format!("/v4/spreadsheets/{ID}"), format!("/drive/v3/files/{ID}")]);
    let stored = objects(&inlet, &spreadsheet).await;
    let described = object(&stored, ID);
    assert_eq!((&described["kind"], &described["name"]), (&json!("spreadsheet"), &json!("Contacts")));
    assert_eq!(
        described["data"]["sheets"],
        json!([
            {"sheet_id": 0, "title": "Contacts", "index": 0, "type": "GRID", "hidden": false,
             "row_count": 1000, "column_count": 26},
            {"sheet_id": 1_402_938_271, "title": "Companies", "index": 1, "type": "GRID", "hidden": false,
             "row_count": 200, "column_count": 8},
        ])
    );
    assert_eq!(described["data"]["time_zone"], "Europe/London");
    let modified = described["data"]["modified_time"].as_str().unwrap();
    let age = chrono::Utc::now() - chrono::DateTime::parse_from_rfc3339(modified).unwrap().with_timezone(&chrono::Utc);
    assert!((119..=121).contains(&age.num_minutes()), "last edited two hours ago: {modified}");

    // Deleting a row renumbers the rows below it: by row number they change,
    // and the last number is gone. The spreadsheet was modified.
    fake.update(|sheets| sheets.delete_row(ID, "Companies", 3));
    assert_eq!(synced(&inlet, &companies).await, counts(0, 4, 1, 1));
    assert_eq!(object(&objects(&inlet, &companies).await, "6")["data"]["Company"], "CERN");
    assert_eq!(synced(&inlet, &spreadsheet).await, counts(0, 1, 0, 0));

    // An expired access token is refreshed at Google's token endpoint; Google
    // keeps the refresh token, which works again for the next refresh.
    fake.oauth().expire_access_token();
    assert_eq!(synced(&inlet, &companies).await, counts(0, 0, 5, 0));
    assert_eq!(fake.oauth().refresh_calls(), 1);
    fake.oauth().expire_access_token();
    assert_eq!(synced(&inlet, &spreadsheet).await, counts(0, 0, 1, 0));
    assert_eq!(fake.oauth().refresh_calls(), 2, "the kept refresh token was accepted again");
    let token_requests = fake.take_requests().into_iter().filter(|r| r.path == "/token").count();
    assert_eq!(token_requests, 2);

    // Both instance types' cassettes, recorded against the fake with the standard checks.
    let token = fake.access_token();
    let credentials = [("INLET_ACCESS_TOKEN", token.as_str())];
    let rows = json!({"spreadsheet_id": ID, "id_column": "Id"}).to_string();
    let report = record_cassette("google-sheets", "rows", Some(&rows), &overrides(&fake), &credentials);
    assert!(report.contains("ok   typed errors: 500 → transient, 429 → rate-limited, 401 → unauthorized"), "{report}");
    let spreadsheet = json!({"spreadsheet_id": ID}).to_string();
    let report = record_cassette("google-sheets", "spreadsheet", Some(&spreadsheet), &overrides(&fake), &credentials);
    assert!(report.contains("ok   typed errors"), "{report}");
}
