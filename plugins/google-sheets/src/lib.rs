//! Google Sheets: the rows of a sheet (or any A1 range) as objects keyed by
//! an id column or by row number, and the spreadsheet itself (its sheets, their
//! sizes, when it was last modified), from the Sheets API v4
//! (<https://developers.google.com/workspace/sheets/api/reference/rest>) and,
//! for the modified time, the Drive API v3.

mod a1;
mod google;
mod rows;
mod spreadsheet;

use inlet_plugin_sdk::prelude::*;

/// Read-only access to the spreadsheets the account can open.
const SCOPE_SHEETS: &str = "https://www.googleapis.com/auth/spreadsheets.readonly";
/// Files' metadata (not their content), for a spreadsheet's modified time.
const SCOPE_DRIVE_METADATA: &str = "https://www.googleapis.com/auth/drive.metadata.readonly";

/// The Sheets API allows 60 read requests a minute per user and project.
const READS_PER_MINUTE: u32 = 60;
/// A sheet is read whole each time; hourly keeps well inside the quota.
const HOURLY: u32 = 3_600;

struct GoogleSheets;

impl Plugin for GoogleSheets {
    fn describe() -> Manifest {
        Manifest::new("google-sheets", "Google Sheets", env!("CARGO_PKG_VERSION"))
            .description("Rows of a Google Sheets range, and a spreadsheet's sheets and modified time")
            .auth(AuthKind::Oauth2(Oauth2Auth {
                // Google grants a refresh token only to an offline request, and
                // on a later consent only when it is asked to prompt again.
                authorize_url: "https://accounts.google.com/o/oauth2/v2/auth?access_type=offline&prompt=consent".into(),
                token_url: "https://oauth2.googleapis.com/token".into(),
                scopes: vec![SCOPE_SHEETS.into(), SCOPE_DRIVE_METADATA.into()],
                // A refresh answers with an access token only: the refresh token stays.
                refresh_token_rotates: false,
                pkce: true,
            }))
            .rate_limit(READS_PER_MINUTE, 60)
            .quota(Quota {
                id: "reads".into(),
                url: format!("https://{}/v4/spreadsheets/**", google::SHEETS_HOST),
                requests: READS_PER_MINUTE,
                period: QuotaPeriod::Minute,
            })
            .instance_type(rows::instance_type())
            .instance_type(spreadsheet::instance_type())
    }

    fn fetch(request: FetchRequest) -> Result<FetchSummary, PluginError> {
        dispatch!(request.instance_type, {
            "rows" => rows::fetch(&request.config),
            "spreadsheet" => spreadsheet::fetch(&request.config),
        })
    }

    fn process(batch: RawBatch) -> Result<Records, PluginError> {
        if let Some(removed) = snapshot::removed(&batch) {
            return removed;
        }
        match batch.kind.as_str() {
            rows::BATCH => rows::process(&batch.payload),
            spreadsheet::BATCH => spreadsheet::process(&batch.payload),
            other => Err(PluginError::Permanent(format!("unknown batch kind {other:?}"))),
        }
    }
}

inlet_plugin_sdk::export_plugin!(GoogleSheets);
