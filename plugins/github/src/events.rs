//! The `events` instance type: `GET /users/{login}/events`, newest first,
//! which for the token's own user includes private events. GitHub keeps the
//! latest 300 events of the last 90 days. Each run asks with the `ETag` of the
//! last complete read (`If-None-Match`): a 304 means nothing new and costs no
//! rate limit. Otherwise it pages back past the newest event it already has,
//! by the 6 hours GitHub may take to list an event: one that shows up late,
//! dated before events already stored, is still read. Only then do the ETag
//! and that cursor move, so a run that fails midway is read again whole.

use crate::{PER_PAGE, get, send, string};
use inlet_plugin_sdk::prelude::*;
use inlet_plugin_sdk::state::Key;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// GitHub's events timeline reaches this far back.
pub const KEPT_DAYS: u32 = 90;
/// ... and holds at most this many events.
const KEPT_EVENTS: usize = 300;
/// GitHub lists an event 30 s to 6 hours after it happened: a run reads back
/// this far before the newest event stored.
const LISTED_LATE_MS: i64 = 6 * 3_600_000;

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"username": "octocat"}))]
pub struct Config {
    /// Whose events (default: the token's own user, private events included;
    /// anyone else's are their public events).
    username: Option<String>,
}

/// The newest event stored: where the next run stops paging.
#[derive(Serialize, Deserialize)]
struct Newest {
    id: String,
    created_at: i64,
}

pub fn fetch(config: &str, mode: &FetchMode) -> Result<FetchSummary, PluginError> {
    let config: Config = parse_config(config)?;
    let login = match &config.username {
        Some(username) => valid_username(username)?,
        None => own_login(mode)?,
    };
    let etag: Key<String> = Key::new(format!("events.{login}.etag"));
    let newest: Key<Newest> = Key::new(format!("events.{login}.newest"));
    // A backfill reads everything GitHub still has since `from`.
    let (since, known, last_etag) = match mode {
        FetchMode::Backfill(from) => (Some(*from), None, None),
        FetchMode::Incremental => (None, newest.get()?, etag.get()?),
    };

    let first = get(&format!("/users/{login}/events")).query("per_page", PER_PAGE);
    let url = first.url();
    let response = match &last_etag {
        Some(last) => first.clone().header("if-none-match", last),
        None => first.clone(),
    }
    .send()?;
    let mut summary = poll_hint(&response);
    if response.status == 304 {
        log::info("no new events since the last run (304 Not Modified)");
        return Ok(summary);
    }
    if response.status == 404 && config.username.is_some() {
        return Err(PluginError::InvalidConfig(format!("config.username: GitHub has no user {login:?} (404)")));
    }
    http::check_status(&url, &response)?;
    let read_etag = response.header("etag").map(str::to_string);

    // Newest first: page back to 6 hours before the newest event already
    // stored (or to the start of the backfill), emitting page by page (what
    // was stored already is stored again unchanged).
    let mut reached_known = false;
    let mut read_back_far_enough = false;
    let mut newest_read: Option<Newest> = None;
    let mut oldest_read: Option<i64> = None;
    let mut read = 0usize;
    let mut request = first;
    let mut response = response;
    loop {
        let page: Vec<Value> = serde_json::from_slice(&response.body)?;
        read += page.len();
        let mut fresh = Vec::new();
        for event in page {
            let id = string(&event, "id")?;
            let created_at = time::parse_rfc3339(&string(&event, "created_at")?)?;
            if newest_read.as_ref().is_none_or(|newest| created_at > newest.created_at) {
                newest_read = Some(Newest { id: id.clone(), created_at });
            }
            // Listed in the order GitHub took them in, an event listed
            // since the last run is at most 6 hours older than what it had.
            let old = known.as_ref().is_some_and(|k| created_at < k.created_at - LISTED_LATE_MS)
                || since.is_some_and(|since| created_at < since);
            reached_known |= known.as_ref().is_some_and(|k| created_at <= k.created_at);
            if old {
                read_back_far_enough = true;
                break;
            }
            oldest_read = Some(created_at);
            fresh.push(event);
        }
        if !fresh.is_empty() {
            summary.items_seen += fresh.len() as u64;
            emit_json("events", &json!({ "events": fresh }))?;
            checkpoint()?;
            log::progress(summary.items_seen, None);
        }
        if read_back_far_enough || read >= KEPT_EVENTS {
            break;
        }
        let Some(next) = paginate::next_link(&response) else { break };
        request = request.with_url(next);
        response = send(request.clone())?;
    }

    // Everything new is stored: move the cursor and the ETag together.
    match (newest_read, &known) {
        (Some(read), Some(known)) if read.created_at < known.created_at => {}
        (Some(read), _) => newest.set(&read)?,
        (None, _) => {}
    }
    match read_etag {
        Some(read_etag) => etag.set(&read_etag)?,
        None => etag.delete(),
    }
    checkpoint()?;
    if let (Some(known), false) = (&known, reached_known) {
        // GitHub no longer has the events between the last run and the
        // oldest it still serves: more than 300 happened in between.
        let gap = format!(
            "GitHub keeps only the latest {KEPT_EVENTS} events: those between {} and {} may be missing; \
             schedule this integration more often",
            time::to_rfc3339(known.created_at),
            time::to_rfc3339(oldest_read.unwrap_or(known.created_at)),
        );
        log::warn(&gap);
        summary.note = Some(gap);
    }
    log::info(format!("{} events of {login} read", summary.items_seen));
    Ok(summary)
}

/// The token's user's login: asked of `GET /user` once (and again on a
/// backfill, in case the token changed hands), then kept.
fn own_login(mode: &FetchMode) -> Result<String, PluginError> {
    let kept: Key<String> = Key::new("login");
    if let (FetchMode::Incremental, Some(login)) = (mode, kept.get()?) {
        return Ok(login);
    }
    let user: Value = serde_json::from_slice(&send(get("/user"))?.body)?;
    let login = string(&user, "login")?;
    kept.set(&login)?;
    Ok(login)
}

/// GitHub usernames: letters, digits and single inner hyphens, at most 39.
fn valid_username(username: &str) -> Result<String, PluginError> {
    let valid = (1..=39).contains(&username.len())
        && username.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !username.starts_with('-')
        && !username.ends_with('-')
        && !username.contains("--");
    match valid {
        true => Ok(username.to_string()),
        false => Err(PluginError::InvalidConfig(format!("config.username: {username:?} is not a GitHub username"))),
    }
}

/// GitHub's `X-Poll-Interval`, as a hint that holds back the next run.
fn poll_hint(response: &http::Response) -> FetchSummary {
    let seconds = response.header("x-poll-interval").and_then(|v| v.trim().parse::<i64>().ok());
    match seconds.filter(|s| *s > 0) {
        Some(seconds) => FetchSummary::default().not_before(
            time::now() + seconds * 1000,
            format!("GitHub asks to poll events no more often than every {seconds} s"),
        ),
        None => FetchSummary::default(),
    }
}

/// Each event as it is: its `type` is the kind (`PushEvent`, `WatchEvent`...),
/// by its actor's login, on a repository named `owner/name`.
pub fn process(payload: &Value) -> Result<Records, PluginError> {
    let mut records = Records::default();
    for event in payload["events"].as_array().into_iter().flatten() {
        let occurred_at = time::parse_rfc3339(&string(event, "created_at")?)?;
        let mut record = EventRecord::new(string(event, "type")?, string(event, "id")?, occurred_at).data(event)?;
        record.actor = event["actor"]["login"].as_str().map(str::to_string);
        // The repository's id, as the `repositories` and `starred` objects are keyed.
        record.target = event["repo"]["id"].as_i64().map(|id| id.to_string());
        records.events.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_checked_before_they_reach_a_url() {
        assert!(valid_username("octo-cat42").is_ok());
        for bad in ["", "-octo", "octo-", "oc--to", "octo/cat", "../user", &"a".repeat(40)] {
            let Err(PluginError::InvalidConfig(message)) = valid_username(bad) else { panic!("{bad:?} passed") };
            assert!(message.starts_with("config.username: "), "{message}");
        }
    }
}
