//! Oura: daily sleep, activity and readiness scores, sleep periods with their
//! heart-rate and HRV series, heart-rate samples and workouts, from the Oura
//! API v2 (<https://cloud.ouraring.com/v2/docs>).
//!
//! Oura lists its documents by date range, and a day's documents keep
//! changing after the ring syncs with the phone (a score is recomputed, a nap
//! is added or deleted). So every run reads again the last `refresh_days`
//! days before its cursor, and records are keyed by Oura's own ids: a re-read
//! updates or leaves a record unchanged, never duplicates it.

mod days;
mod documents;
mod heartrate;

use documents::Collection;
use inlet_plugin_sdk::prelude::*;
use inlet_plugin_sdk::{RateLimited, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};

const API: &str = "https://api.ouraring.com/v2/usercollection";
const HOST: &str = "api.ouraring.com";
/// How far back a first run reaches when the config names no `since`.
const DEFAULT_BACKFILL_DAYS: u32 = 30;
/// Days before the cursor that each run reads again, for late data.
const DEFAULT_REFRESH_DAYS: u32 = 3;
/// Oura allows 5000 requests in 5 minutes; without `Retry-After`, a 429 waits
/// out the window.
const RATE_WINDOW_SECONDS: u32 = 300;

struct Oura;

/// The config every instance type takes.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"refresh_days": 3}))]
pub struct Config {
    /// How far back the first run reaches (RFC 3339); default: 30 days ago.
    #[schemars(extend("format" = "date-time"))]
    since: Option<String>,
    /// How many days before the last one read each run reads again, to pick
    /// up scores that change after the ring syncs (default 3).
    #[schemars(range(max = 30))]
    refresh_days: Option<u32>,
}

impl Config {
    /// The config's `since`, checked.
    fn since(&self) -> Result<Option<Timestamp>, PluginError> {
        self.since
            .as_deref()
            .map(|since| {
                time::parse_rfc3339(since)
                    .map_err(|_| PluginError::InvalidConfig(format!("config.since: {since:?} is not an RFC 3339 time")))
            })
            .transpose()
    }

    fn refresh_days(&self) -> i64 {
        i64::from(self.refresh_days.unwrap_or(DEFAULT_REFRESH_DAYS).min(30))
    }

    /// The first day an incremental run with no cursor reads.
    fn first_day(&self, today: days::Day) -> Result<days::Day, PluginError> {
        Ok(match self.since()? {
            Some(since) => days::of(since),
            None => days::add(today, -i64::from(DEFAULT_BACKFILL_DAYS)),
        })
    }
}

fn instance_type(id: &str, name: &str, description: &str, every_seconds: u32) -> InstanceType {
    InstanceType::new(id, name)
        .description(description)
        .every(every_seconds)
        .host(HOST)
        .config::<Config>()
        .backfill_days(DEFAULT_BACKFILL_DAYS)
}

const HOUR: u32 = 3_600;

impl Plugin for Oura {
    fn describe() -> Manifest {
        Manifest::new("oura", "Oura", env!("CARGO_PKG_VERSION"))
            .description(
                "Sleep, activity and readiness scores, sleep periods, heart rate and workouts from an Oura ring",
            )
            .auth(AuthKind::Oauth2(Oauth2Auth {
                authorize_url: "https://cloud.ouraring.com/oauth/authorize".into(),
                token_url: "https://api.ouraring.com/oauth/token".into(),
                scopes: vec!["daily".into(), "heartrate".into(), "workout".into()],
                // Oura's refresh tokens are single-use: each refresh grants a new one.
                refresh_token_rotates: true,
                pkce: false,
            }))
            .instance_type(instance_type(
                "daily-sleep",
                "Daily sleep",
                "Each day's sleep score and its contributors",
                3 * HOUR,
            ))
            .instance_type(instance_type(
                "daily-activity",
                "Daily activity",
                "Each day's activity score, steps, calories and contributors",
                HOUR,
            ))
            .instance_type(instance_type(
                "daily-readiness",
                "Daily readiness",
                "Each day's readiness score, temperature deviation and contributors",
                3 * HOUR,
            ))
            .instance_type(instance_type(
                "sleep",
                "Sleep periods",
                "Each night and nap: stages, durations, and heart-rate and HRV series",
                3 * HOUR,
            ))
            .instance_type(instance_type("heartrate", "Heart rate", "Heart-rate samples through the day", HOUR))
            .instance_type(instance_type(
                "workouts",
                "Workouts",
                "Detected and logged workouts with calories and distance",
                3 * HOUR,
            ))
    }

    fn fetch(request: FetchRequest) -> Result<FetchSummary, PluginError> {
        let config: Config = parse_config(&request.config)?;
        config.since()?;
        let mode = &request.mode;
        dispatch!(request.instance_type, {
            "daily-sleep" => documents::fetch(&documents::DAILY_SLEEP, &config, mode),
            "daily-activity" => documents::fetch(&documents::DAILY_ACTIVITY, &config, mode),
            "daily-readiness" => documents::fetch(&documents::DAILY_READINESS, &config, mode),
            "sleep" => documents::fetch(&documents::SLEEP, &config, mode),
            "heartrate" => heartrate::fetch(&config, mode),
            "workouts" => documents::fetch(&documents::WORKOUTS, &config, mode),
        })
    }

    fn process(batch: RawBatch) -> Result<Records, PluginError> {
        if let Some(removed) = snapshot::removed(&batch) {
            // A sleep period that is gone takes its series with it.
            let mut removed = removed?;
            let periods: Vec<String> = removed
                .deleted
                .iter()
                .filter(|t| t.kind == documents::SLEEP.kind)
                .map(|t| t.external_id.clone())
                .collect();
            for period in periods {
                removed.deleted.extend(documents::series_tombstones(&period));
            }
            return Ok(removed);
        }
        let payload: Value = serde_json::from_str(&batch.payload)?;
        if batch.kind == heartrate::BATCH {
            return heartrate::process(&payload);
        }
        match Collection::by_path(&batch.kind) {
            Some(collection) => documents::process(collection, &payload),
            None => Err(PluginError::Permanent(format!("unknown batch kind {:?}", batch.kind))),
        }
    }
}

inlet_plugin_sdk::export_plugin!(Oura);

/// What a request was for, to explain Oura's refusals.
struct Ask<'a> {
    /// The collection, e.g. `daily_sleep`.
    path: &'a str,
    /// The OAuth scope Oura requires for it.
    scope: &'a str,
    /// The config's `since`, when it named one.
    since: Option<&'a str>,
}

/// One page of an Oura listing.
#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    data: Vec<Value>,
    #[serde(default)]
    next_token: Option<String>,
}

/// Every page of a listing: `first`, then the same request with each page's
/// `next_token` until a page has none (or repeats one, which would loop).
fn pages(
    first: http::Request,
    ask: &Ask,
    mut each: impl FnMut(Vec<Value>) -> Result<(), PluginError>,
) -> Result<(), PluginError> {
    let mut request = first.clone();
    let mut tokens = std::collections::BTreeSet::new();
    loop {
        let page = send_page(request, ask)?;
        each(page.data)?;
        match page.next_token.filter(|token| !token.is_empty()) {
            Some(token) if tokens.insert(token.clone()) => request = first.clone().set_query("next_token", token),
            _ => return Ok(()),
        }
    }
}

/// Send one page's request and read it, saying what Oura's refusals mean.
fn send_page(request: http::Request, ask: &Ask) -> Result<Page, PluginError> {
    let url = request.url();
    let response = request.send()?;
    let detail: String = String::from_utf8_lossy(&response.body).chars().take(300).collect();
    let status = response.status;
    let path = ask.path;
    match status {
        200..=299 => Ok(serde_json::from_slice(&response.body)?),
        // Oura validates the dates; the only dates that come from the config are `since`.
        400 | 422 => Err(match ask.since {
            Some(since) => PluginError::InvalidConfig(format!(
                "config.since: Oura refused the dates asked for from {since:?} ({status} from {path}: {detail})"
            )),
            None => PluginError::Permanent(format!("{status} from {path}: {detail}")),
        }),
        403 => Err(PluginError::Unauthorized(format!(
            "Oura refused {path} (403): the connection lacks the `{}` scope, or the Oura membership that API access \
             needs has lapsed; reconnect granting `{}`, or renew the membership ({detail})",
            ask.scope, ask.scope
        ))),
        426 => Err(PluginError::Permanent(format!(
            "Oura shares {path} only once the Oura app on the phone is updated (426 minimum app version): {detail}"
        ))),
        429 => Err(PluginError::RateLimited(RateLimited {
            retry_after_seconds: response.retry_after().unwrap_or(RATE_WINDOW_SECONDS),
            message: format!("429 from {path}: Oura allows 5000 requests in 5 minutes ({detail})"),
        })),
        _ => {
            http::check_status(&url, &response)?;
            Err(PluginError::Permanent(format!("unexpected {status} from {path}")))
        }
    }
}

fn array(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

fn string(value: &Value, field: &str) -> Result<String, PluginError> {
    value[field]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| PluginError::Permanent(format!("Oura document without a string field {field:?}")))
}

/// A document's time field (RFC 3339 with the user's offset) in milliseconds.
fn time_of(value: &Value, field: &str) -> Result<Timestamp, PluginError> {
    time::parse_rfc3339(&string(value, field)?)
}
