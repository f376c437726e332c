//! Requests to Google's APIs, and what their errors mean for an integration.
//! Google answers errors as `{"error": {"code", "message", "status", ...}}`;
//! a 404 or a refused range means the integration's config names something
//! that is not there, which no retry will fix.

use inlet_plugin_sdk::RateLimited;
use inlet_plugin_sdk::prelude::*;
use serde::Deserialize;
use serde_json::Value;

pub const SHEETS_HOST: &str = "sheets.googleapis.com";
pub const DRIVE_HOST: &str = "www.googleapis.com";
/// Where the host refreshes access tokens: it must be a declared host.
pub const TOKEN_HOST: &str = "oauth2.googleapis.com";

/// `GET https://sheets.googleapis.com/v4/spreadsheets/{id}{rest}`, authenticated.
pub fn sheets(spreadsheet_id: &str, rest: &str) -> http::Request {
    http::get(format!("https://{SHEETS_HOST}/v4/spreadsheets/{spreadsheet_id}{rest}")).authenticated()
}

/// `GET https://www.googleapis.com/drive/v3/files/{id}`, authenticated.
pub fn drive_file(file_id: &str) -> http::Request {
    http::get(format!("https://{DRIVE_HOST}/drive/v3/files/{file_id}")).authenticated()
}

/// A path segment, percent-encoded (an A1 range such as `'Q1 Sales'!A1:E`).
pub fn path_segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => encoded.push(byte as char),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// The spreadsheet id from the config: the part of its URL after `/d/`.
pub fn check_spreadsheet_id(id: &str) -> Result<(), PluginError> {
    let valid = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match valid {
        true => Ok(()),
        false => Err(PluginError::InvalidConfig(format!(
            "config.spreadsheet_id: {id:?} is not a spreadsheet id; copy the part of the spreadsheet's URL between \
             /spreadsheets/d/ and /edit"
        ))),
    }
}

/// Send `request`: the decoded body of a 2xx answer, or the error Google
/// answered, for the caller to interpret ([`ApiError::into_plugin_error`]).
pub fn get(request: http::Request) -> Result<Result<Value, ApiError>, PluginError> {
    let url = request.url();
    let response = request.send()?;
    if (200..300).contains(&response.status) {
        return Ok(Ok(serde_json::from_slice(&response.body)?));
    }
    let body: Envelope = serde_json::from_slice(&response.body).unwrap_or_default();
    let detail = body.error.unwrap_or_default();
    Ok(Err(ApiError { url, response, detail }))
}

/// An error answer from Google.
pub struct ApiError {
    url: String,
    response: http::Response,
    detail: Detail,
}

#[derive(Deserialize, Default)]
struct Envelope {
    error: Option<Detail>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Detail {
    message: String,
    /// The RPC status, e.g. `NOT_FOUND`, `INVALID_ARGUMENT`, `PERMISSION_DENIED`.
    status: String,
    /// The older format's reasons (`notFound`, `insufficientPermissions`...).
    errors: Vec<Reason>,
    /// `google.rpc.ErrorInfo` and friends, with a `reason`.
    details: Vec<Reason>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Reason {
    reason: String,
}

impl ApiError {
    pub fn status(&self) -> u16 {
        self.response.status
    }

    pub fn message(&self) -> &str {
        &self.detail.message
    }

    fn has_reason(&self, wanted: &[&str]) -> bool {
        let reasons = self.detail.errors.iter().chain(&self.detail.details);
        reasons.map(|r| r.reason.as_str()).any(|reason| wanted.contains(&reason))
    }

    /// The token lacks a scope the request needs (the person unticked it at consent).
    pub fn insufficient_scopes(&self) -> bool {
        self.status() == 403
            && (self.has_reason(&["ACCESS_TOKEN_SCOPE_INSUFFICIENT", "insufficientPermissions"])
                || self.detail.message.contains("insufficient authentication scopes"))
    }

    /// What the error means for a read of `spreadsheet_id`: a 404 names the
    /// spreadsheet id in the config; a range Google cannot read names
    /// `range_field` (the config field that made the range); the rest are
    /// classified as any upstream failure is.
    pub fn into_plugin_error(self, spreadsheet_id: &str, range_field: &str) -> PluginError {
        let message = match self.detail.message.as_str() {
            "" => String::from_utf8_lossy(&self.response.body).chars().take(200).collect(),
            message => message.to_string(),
        };
        let status = self.status();
        let shared = "share it with the Google account this group connected";
        match status {
            404 => PluginError::InvalidConfig(format!(
                "config.spreadsheet_id: Google has no spreadsheet {spreadsheet_id:?} that this account can open \
                 ({status} {message}); {shared}, or copy the id from the spreadsheet's URL"
            )),
            // Google sends no Retry-After; its quotas are per minute.
            429 => PluginError::RateLimited(RateLimited {
                retry_after_seconds: self.response.retry_after().unwrap_or(60),
                message: format!("Google's request quota is spent ({status} {message})"),
            }),
            400 if message.to_ascii_lowercase().contains("range") => {
                PluginError::InvalidConfig(format!("{range_field}: Google could not read it ({status} {message})"))
            }
            403 if self.insufficient_scopes() => PluginError::Unauthorized(format!(
                "Google refused the request for want of a scope ({message}); connect the group again and allow \
                 every access asked for"
            )),
            403 if self.has_reason(&["SERVICE_DISABLED", "accessNotConfigured"]) => PluginError::Permanent(format!(
                "the API is not enabled for the OAuth client's Google Cloud project ({message}); enable it at \
                 https://console.cloud.google.com/apis/library"
            )),
            403 if self.has_reason(&["userRateLimitExceeded", "rateLimitExceeded", "RATE_LIMIT_EXCEEDED"]) => {
                PluginError::RateLimited(RateLimited { retry_after_seconds: 60, message })
            }
            403 if self.detail.status == "PERMISSION_DENIED" || self.has_reason(&["forbidden"]) => {
                PluginError::InvalidConfig(format!(
                    "config.spreadsheet_id: this account may not open spreadsheet {spreadsheet_id:?} ({status} \
                     {message}); {shared}"
                ))
            }
            _ => match http::check_status(&self.url, &self.response) {
                Err(error) => error,
                Ok(()) => PluginError::Permanent(format!("unexpected answer {status} from Google")),
            },
        }
    }
}
