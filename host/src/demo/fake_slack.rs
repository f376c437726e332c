//! A fake Slack on loopback, for the Slack plugin's tests and demo, in
//! Slack's shapes (<https://docs.slack.dev/reference/methods>):
//!
//! * The Web API at `/api/<method>`, its parameters in the query (GET) or a
//!   form body (POST), the bot token as a bearer token. Every answer is HTTP
//!   200 with `"ok"`; a refusal is `{"ok": false, "error": "<code>"}`:
//!   `not_authed` without a token, `invalid_auth` with another one,
//!   `token_revoked` once [`SlackData::revoke_token`], `unknown_method` for
//!   a method the fake does not serve. Slack's rate limit (HTTP 429 with
//!   `Retry-After` and `"error": "ratelimited"`) is injected with
//!   `fake.respond_next`.
//! * `conversations.list?types&exclude_archived&limit&cursor` →
//!   `{ok, channels, response_metadata: {next_cursor}}`, in id order; `types`
//!   defaults to `public_channel`, and lists only the private channels the
//!   app is in.
//! * `conversations.history?channel&oldest&latest&inclusive&limit&cursor` →
//!   `{ok, messages, has_more, pin_count, response_metadata: {next_cursor}}`,
//!   newest first, `oldest` and `latest` excluded unless `inclusive`;
//!   `channel_not_found` (an unknown channel, or a private one the app is not
//!   in), `not_in_channel` (a public one it is not in).
//! * Pages of at most [`LIST_PAGE_SIZE`] channels and [`HISTORY_PAGE_SIZE`]
//!   messages whatever the `limit` (Slack may send fewer than asked), so
//!   clients page. A `next_cursor` is opaque base64 as Slack's are (an
//!   unknown one is `invalid_cursor`); it is empty, or left out, on the last page.
//!
//! And Slack's side of the Events API: [`SlackData::post_message`],
//! [`SlackData::edit_message`] and [`SlackData::delete_message`] change the
//! workspace and return the event Slack would push, [`url_verification`] the
//! challenge it sends when the Request URL is set, and [`SignedDelivery`]
//! signs one with the app's signing secret as Slack does.

use super::fake_oauth::FakeOAuth;
use super::upstream::{FakeApi, FakeUpstream, RecordedRequest, json_answer};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::BTreeMap;

/// The bot token the fake accepts.
pub const TOKEN: &str = "xoxb-1000000001-2000000002-fAkEdEmObOtToKeN0000000";
/// The app's signing secret, which signs its Events API deliveries.
pub const SIGNING_SECRET: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";
/// The workspace.
pub const TEAM_ID: &str = "T0DEMO0001";
/// The channel with the most messages (two pages of history), for a `history` config.
pub const SAMPLE_CHANNEL: &str = "C0GENERAL1";
/// Channels per page of `conversations.list`.
pub const LIST_PAGE_SIZE: usize = 4;
/// Messages per page of `conversations.history`.
pub const HISTORY_PAGE_SIZE: usize = 100;
const APP_ID: &str = "A0DEMO0001";
/// The app's bot user.
const BOT_USER: &str = "U0INLETBOT";
/// The deprecated verification token Slack still puts in every delivery.
const VERIFICATION_TOKEN: &str = "Jhj5dZrVaK7ZwHHjRyZWjbDl";
const DAY_SECONDS: i64 = 86_400;

/// Users of the sample workspace: (id, name).
const USERS: [(&str, &str); 5] = [
    ("U0ALICE001", "alice"),
    ("U0BOB00002", "bob"),
    ("U0CAROL003", "carol"),
    ("U0DAVE0004", "dave"),
    ("U0ERIN0005", "erin"),
];

/// Channels of the sample: (id, name, private, archived, the app is in it,
/// messages, days they span back from `ends_days_ago`, ends_days_ago, purpose).
type SampleChannel = (&'static str, &'static str, bool, bool, bool, usize, i64, i64, &'static str);
const CHANNELS: [SampleChannel; 6] = [
    ("C0GENERAL1", "general", false, false, true, 130, 60, 0, "Company-wide announcements and work-based matters"),
    ("C0RANDOM01", "random", false, false, true, 60, 45, 0, "Non-work banter and water cooler conversation"),
    ("C0ENGINEER", "engineering", false, false, true, 70, 30, 0, "Builds, reviews and on-call"),
    ("C0DESIGN01", "design", false, false, false, 25, 40, 1, "Mockups and critiques"),
    ("C0LEADS001", "leadership", true, false, true, 15, 50, 2, "Planning, in private"),
    ("C0APOLLO01", "project-apollo", false, true, true, 20, 30, 100, "The Apollo launch (done)"),
];

const TEXTS: [&str; 12] = [
    "Morning all! Standup in 10 minutes.",
    "Has anyone looked at the flaky integration test on main?",
    "Lunch order goes in at 12:30, reply in the thread if you want in",
    "The release notes draft is in the shared drive",
    "Reminder: the retro moved to Thursday",
    "Nice work on the migration, zero downtime :tada:",
    "Can someone review my PR before EOD?",
    "I'm out on Friday, ping me before then if you need anything",
    "Dashboard numbers look good this week",
    "Who owns the staging certificates?",
    "Pushed a fix for the login redirect",
    "The coffee machine on 3 is fixed",
];

/// A channel: what `conversations.list` says of it, and its messages.
#[derive(Debug, Clone)]
pub struct Channel {
    pub info: Value,
    /// Oldest first, as `conversations.history` messages.
    pub messages: Vec<Value>,
}

/// What the fake Slack serves.
#[derive(Debug, Clone)]
pub struct SlackData {
    /// In id order, as `conversations.list` gives them.
    pub channels: Vec<Channel>,
    /// The app was uninstalled or its token revoked: every call is `token_revoked`.
    revoked: bool,
    /// The next call for a later page (one with a `cursor`) is `internal_error`.
    fail_next_page: bool,
    /// Events pushed so far, for their ids.
    events_sent: u64,
}

/// The fake Slack: [`SlackData`] served on loopback.
pub type FakeSlack = FakeUpstream<SlackData>;

impl SlackData {
    /// A workspace of five people and six channels (`#general`, `#random`,
    /// `#engineering`; `#design`, which the app is not in; the private
    /// `#leadership`; `#project-apollo`, archived 100 days ago), with 320
    /// messages over the last two months: joins, bot messages, threads,
    /// edits and reactions among them.
    pub fn sample(now_ms: i64) -> SlackData {
        let now = now_ms / 1000;
        let mut channels: Vec<Channel> = CHANNELS
            .iter()
            .enumerate()
            .map(|(c, &(id, name, private, archived, member, count, span_days, ends_days_ago, purpose))| {
                let end = now - ends_days_ago * DAY_SECONDS - 600;
                let step = span_days * DAY_SECONDS / count as i64;
                let created = end - (span_days + 30) * DAY_SECONDS;
                let creator = USERS[c % USERS.len()].0;
                let mut info = channel_info(id, name, private, member, purpose, created, creator);
                info["is_archived"] = json!(archived);
                let messages = (0..count)
                    .rev()
                    .map(|k| sample_message(c, k, end - k as i64 * step - (k as i64 * 37) % 600))
                    .collect();
                Channel { info, messages }
            })
            .collect();
        channels.sort_by(|a, b| id_of(&a.info).cmp(id_of(&b.info)));
        SlackData { channels, revoked: false, fail_next_page: false, events_sent: 0 }
    }

    /// The channel `id`.
    pub fn channel(&self, id: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| id_of(&c.info) == id)
    }

    fn channel_mut(&mut self, id: &str) -> &mut Channel {
        self.channels.iter_mut().find(|c| id_of(&c.info) == id).unwrap_or_else(|| panic!("no channel {id}"))
    }

    /// A new public channel the app is in; returns its id.
    pub fn add_channel(&mut self, id: &str, name: &str, at_ms: i64) -> String {
        let info = channel_info(id, name, false, true, "", at_ms / 1000, USERS[0].0);
        self.channels.push(Channel { info, messages: Vec::new() });
        self.channels.sort_by(|a, b| id_of(&a.info).cmp(id_of(&b.info)));
        id.to_string()
    }

    /// An admin deleted the channel: it is gone from every listing. False if
    /// there was none.
    pub fn delete_channel(&mut self, id: &str) -> bool {
        let before = self.channels.len();
        self.channels.retain(|c| id_of(&c.info) != id);
        self.channels.len() < before
    }

    /// The channel is archived: still listed, with `is_archived`.
    pub fn archive_channel(&mut self, id: &str) {
        self.channel_mut(id).info["is_archived"] = json!(true);
    }

    /// The app is uninstalled (or its token revoked): every call is `token_revoked`.
    pub fn revoke_token(&mut self) {
        self.revoked = true;
    }

    /// The next call for a later page of a listing fails with `internal_error`.
    pub fn fail_next_page(&mut self) {
        self.fail_next_page = true;
    }

    /// `user` posts `text` in `channel` at `at_ms`: the message is in the
    /// channel's history, and the returned `event_callback` is what Slack pushes.
    pub fn post_message(&mut self, channel: &str, user: &str, text: &str, at_ms: i64) -> Value {
        let n = self.next_event();
        let messages = &mut self.channel_mut(channel).messages;
        // A ts is unique within its channel: a later message in the same second
        // takes the next sequence number.
        let mut micros = at_ms * 1000 + (n % 1000) as i64;
        while messages.iter().any(|m| micros_of(m) == Some(micros)) {
            micros += 1;
        }
        let message = user_message(user, text, &ts_of(micros), n);
        let at = messages.partition_point(|m| micros_of(m) < Some(micros));
        messages.insert(at, message.clone());
        let event = self.pushed(channel, message, micros);
        self.envelope(event, n, micros)
    }

    /// The author edits the message `ts` of `channel` to say `text`: its
    /// `message_changed` event. Panics if there is no such message.
    pub fn edit_message(&mut self, channel: &str, ts: &str, text: &str, at_ms: i64) -> Value {
        let n = self.next_event();
        let message = self.message_mut(channel, ts);
        let previous = message.clone();
        let user = message["user"].clone();
        message["text"] = json!(text);
        message["edited"] = json!({"user": user, "ts": ts_of(at_ms * 1000)});
        message["blocks"] = blocks(text, n);
        let edited = message.clone();
        let event = json!({
            "type": "message",
            "subtype": "message_changed",
            "hidden": true,
            "message": edited,
            "previous_message": previous,
            "channel": channel,
            "ts": ts_of(at_ms * 1000),
            "event_ts": ts_of(at_ms * 1000),
            "channel_type": self.channel_type(channel),
        });
        self.envelope(event, n, at_ms * 1000)
    }

    /// The message `ts` of `channel` is deleted: its `message_deleted` event.
    /// Panics if there is no such message.
    pub fn delete_message(&mut self, channel: &str, ts: &str, at_ms: i64) -> Value {
        let n = self.next_event();
        let previous = self.message_mut(channel, ts).clone();
        self.channel_mut(channel).messages.retain(|m| m["ts"] != ts);
        let event = json!({
            "type": "message",
            "subtype": "message_deleted",
            "hidden": true,
            "deleted_ts": ts,
            "previous_message": previous,
            "channel": channel,
            "ts": ts_of(at_ms * 1000),
            "event_ts": ts_of(at_ms * 1000),
            "channel_type": self.channel_type(channel),
        });
        self.envelope(event, n, at_ms * 1000)
    }

    fn message_mut(&mut self, channel: &str, ts: &str) -> &mut Value {
        let messages = &mut self.channel_mut(channel).messages;
        messages.iter_mut().find(|m| m["ts"] == ts).unwrap_or_else(|| panic!("no message {ts} in {channel}"))
    }

    fn next_event(&mut self) -> u64 {
        self.events_sent += 1;
        self.events_sent
    }

    /// `channel` for a public channel, `group` for a private one, as events say.
    fn channel_type(&self, channel: &str) -> &'static str {
        match self.channel(channel).is_some_and(|c| c.info["is_private"] == true) {
            true => "group",
            false => "channel",
        }
    }

    /// A message as the Events API pushes it: with its channel and event time.
    fn pushed(&self, channel: &str, mut message: Value, micros: i64) -> Value {
        message["channel"] = json!(channel);
        message["event_ts"] = json!(ts_of(micros));
        message["channel_type"] = json!(self.channel_type(channel));
        message
    }

    /// The `event_callback` envelope around `event`.
    fn envelope(&self, event: Value, n: u64, micros: i64) -> Value {
        json!({
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "context_team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": format!("Ev0DEMO{n:05}"),
            "event_time": micros / 1_000_000,
            "authorizations": [{
                "enterprise_id": null,
                "team_id": TEAM_ID,
                "user_id": BOT_USER,
                "is_bot": true,
                "is_enterprise_install": false,
            }],
            "is_ext_shared_channel": false,
        })
    }

    /// `conversations.list`: <https://docs.slack.dev/reference/methods/conversations.list>
    fn list_channels(&self, params: &Params) -> Response {
        let (mut public, mut private) = (false, false);
        for kind in params.get("types").map_or("public_channel", String::as_str).split(',') {
            match kind.trim() {
                "public_channel" => public = true,
                "private_channel" => private = true,
                "mpim" | "im" => {}
                _ => return refusal("invalid_types"),
            }
        }
        let exclude_archived = flag(params, "exclude_archived");
        let Some(limit) = limit(params) else { return refusal("invalid_limit") };
        let from = match params.get("cursor") {
            None => None,
            Some(cursor) => match decode_cursor(cursor, "team:") {
                Some(id) => Some(id),
                None => return refusal("invalid_cursor"),
            },
        };
        let listed: Vec<&Value> = (self.channels.iter().map(|c| &c.info))
            .filter(|info| match info["is_private"] == true {
                true => private && info["is_member"] == true,
                false => public,
            })
            .filter(|info| !(exclude_archived && info["is_archived"] == true))
            .filter(|info| from.as_deref().is_none_or(|from| id_of(info) >= from))
            .collect();
        let page: Vec<Value> = listed.iter().take(limit.min(LIST_PAGE_SIZE)).map(|info| (*info).clone()).collect();
        let next_cursor = listed.get(page.len()).map(|next| encode_cursor("team:", id_of(next))).unwrap_or_default();
        ok(json!({ "channels": page, "response_metadata": { "next_cursor": next_cursor } }))
    }

    /// `conversations.history`: <https://docs.slack.dev/reference/methods/conversations.history>
    fn history(&self, params: &Params) -> Response {
        let Some(channel) = params.get("channel").and_then(|id| self.channel(id)) else {
            return refusal("channel_not_found");
        };
        if channel.info["is_member"] != true {
            // A private channel the app is not in is as good as unknown to it.
            return refusal(if channel.info["is_private"] == true { "channel_not_found" } else { "not_in_channel" });
        }
        let bound = |name: &str| params.get(name).map(|value| ts_micros(value).ok_or(()));
        let Ok(oldest) = bound("oldest").transpose() else { return refusal("invalid_ts_oldest") };
        let Ok(latest) = bound("latest").transpose() else { return refusal("invalid_ts_latest") };
        let inclusive = flag(params, "inclusive");
        let Some(limit) = limit(params) else { return refusal("invalid_limit") };
        let until = match params.get("cursor") {
            None => None,
            Some(cursor) => match decode_cursor(cursor, "next_ts:").and_then(|micros| micros.parse::<i64>().ok()) {
                Some(micros) => Some(micros),
                None => return refusal("invalid_cursor"),
            },
        };
        let after = |t: i64| oldest.is_none_or(|oldest| t > oldest || (inclusive && t == oldest));
        let before = |t: i64| latest.is_none_or(|latest| t < latest || (inclusive && t == latest));
        let matching: Vec<(i64, &Value)> = (channel.messages.iter().rev())
            .filter_map(|m| Some((micros_of(m)?, m)))
            .filter(|(t, _)| after(*t) && before(*t) && until.is_none_or(|until| *t <= until))
            .collect();
        let page: Vec<Value> = matching.iter().take(limit.min(HISTORY_PAGE_SIZE)).map(|(_, m)| (*m).clone()).collect();
        let mut answer = json!({
            "messages": page,
            "has_more": matching.len() > page.len(),
            "pin_count": 0,
            "channel_actions_ts": null,
            "channel_actions_count": 0,
        });
        if let Some((next, _)) = matching.get(page.len()) {
            answer["response_metadata"] = json!({ "next_cursor": encode_cursor("next_ts:", &next.to_string()) });
        }
        ok(answer)
    }
}

impl FakeApi for SlackData {
    fn provider(&self) -> FakeOAuth {
        FakeOAuth::new(TOKEN)
    }

    /// Slack answers a refused token with HTTP 200 too.
    fn unauthorized(&self, request: &RecordedRequest) -> Response {
        refusal(if request.header("authorization").is_some() { "invalid_auth" } else { "not_authed" })
    }

    fn answer(&mut self, request: &RecordedRequest) -> Response {
        if self.revoked {
            return refusal("token_revoked");
        }
        let params = params(request);
        if params.contains_key("cursor") && std::mem::take(&mut self.fail_next_page) {
            return refusal("internal_error");
        }
        match request.path.strip_prefix("/api/") {
            Some("conversations.list") => self.list_channels(&params),
            Some("conversations.history") => self.history(&params),
            Some(_) => refusal("unknown_method"),
            None => json_answer(StatusCode::NOT_FOUND, json!({"ok": false, "error": "not_found"})),
        }
    }
}

/// An Events API delivery as Slack posts it to the app's Request URL.
#[derive(Debug, Clone)]
pub struct SignedDelivery {
    /// `Content-Type`, `User-Agent`, `X-Slack-Request-Timestamp` and
    /// `X-Slack-Signature`; on a retry also `X-Slack-Retry-Num` and `-Reason`.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl SignedDelivery {
    /// `envelope` (an event, a `url_verification`) as sent at `timestamp`
    /// (Unix seconds), signed with `secret`.
    pub fn new(secret: &str, timestamp: i64, envelope: &Value) -> SignedDelivery {
        SignedDelivery::of_body(secret, timestamp, envelope.to_string().into_bytes())
    }

    /// Slack's retry number `attempt` (1 to 3) of this delivery, sent at
    /// `timestamp` when the first got no answer within 3 s: the same body,
    /// signed again.
    pub fn retry(&self, secret: &str, timestamp: i64, attempt: u32) -> SignedDelivery {
        let mut retry = SignedDelivery::of_body(secret, timestamp, self.body.clone());
        retry.headers.push(("x-slack-retry-num", attempt.to_string()));
        retry.headers.push(("x-slack-retry-reason", "http_timeout".to_string()));
        retry
    }

    fn of_body(secret: &str, timestamp: i64, body: Vec<u8>) -> SignedDelivery {
        let headers = vec![
            ("content-type", "application/json".to_string()),
            ("user-agent", "Slackbot 1.0 (+https://api.slack.com/robots)".to_string()),
            ("x-slack-request-timestamp", timestamp.to_string()),
            ("x-slack-signature", signature(secret, timestamp, &body)),
        ];
        SignedDelivery { headers, body }
    }
}

/// Slack's `v0` signature: `v0=` and the hex HMAC-SHA256 of
/// `v0:<timestamp>:<body>` under the signing secret.
/// <https://docs.slack.dev/authentication/verifying-requests-from-slack>
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// What Slack sends the Request URL when it is set in the app's settings;
/// the app must answer with `challenge`.
pub fn url_verification(challenge: &str) -> Value {
    json!({ "token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification" })
}

/// A call's parameters: its query, and its form body on a POST.
type Params = BTreeMap<String, String>;

fn params(request: &RecordedRequest) -> Params {
    let mut params: Params = request.query.iter().cloned().collect();
    let form = request.header("content-type").is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form {
        params.extend(url::form_urlencoded::parse(&request.body).into_owned());
    }
    params
}

fn flag(params: &Params, name: &str) -> bool {
    params.get(name).is_some_and(|value| value == "true" || value == "1")
}

/// `limit`: 100 by default, at most 1000.
fn limit(params: &Params) -> Option<usize> {
    match params.get("limit") {
        None => Some(100),
        Some(limit) => limit.parse().ok().filter(|limit| (1..=1000).contains(limit)),
    }
}

fn ok(mut answer: Value) -> Response {
    answer["ok"] = json!(true);
    json_answer(StatusCode::OK, answer)
}

/// Slack's refusal: HTTP 200 and `ok: false`.
fn refusal(error: &str) -> Response {
    json_answer(StatusCode::OK, json!({ "ok": false, "error": error }))
}

fn encode_cursor(prefix: &str, position: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{prefix}{position}"))
}

fn decode_cursor(cursor: &str, prefix: &str) -> Option<String> {
    let decoded = base64::engine::general_purpose::STANDARD.decode(cursor).ok()?;
    String::from_utf8(decoded).ok()?.strip_prefix(prefix).map(str::to_string)
}

fn id_of(info: &Value) -> &str {
    info["id"].as_str().unwrap_or_default()
}

/// A message's `ts` in microseconds.
fn micros_of(message: &Value) -> Option<i64> {
    message["ts"].as_str().and_then(ts_micros)
}

/// A `ts` (`"1712345678.000200"`, or whole seconds) in microseconds.
fn ts_micros(ts: &str) -> Option<i64> {
    let (seconds, fraction) = ts.split_once('.').unwrap_or((ts, ""));
    if fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(seconds.parse::<i64>().ok()? * 1_000_000 + format!("{fraction:0<6}").parse::<i64>().ok()?)
}

fn ts_of(micros: i64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// A channel as `conversations.list` gives it, not archived.
fn channel_info(
    id: &str,
    name: &str,
    private: bool,
    member: bool,
    purpose: &str,
    created: i64,
    creator: &str,
) -> Value {
    let num_members = if private { 3 } else { USERS.len() + 1 };
    json!({
        "id": id,
        "name": name,
        "is_channel": true,
        "is_group": false,
        "is_im": false,
        "is_mpim": false,
        "is_private": private,
        "created": created,
        "is_archived": false,
        "is_general": name == "general",
        "unlinked": 0,
        "name_normalized": name,
        "is_shared": false,
        "is_org_shared": false,
        "is_pending_ext_shared": false,
        "pending_shared": [],
        "context_team_id": TEAM_ID,
        "updated": created * 1000,
        "parent_conversation": null,
        "creator": creator,
        "is_ext_shared": false,
        "shared_team_ids": [TEAM_ID],
        "pending_connected_team_ids": [],
        "is_member": member,
        "topic": { "value": "", "creator": "", "last_set": 0 },
        "purpose": { "value": purpose, "creator": creator, "last_set": created },
        "previous_names": [],
        "num_members": num_members,
    })
}

/// Message `k` (0 = the newest) of sample channel `c`, at `at` (Unix seconds):
/// every tenth a join, every fifteenth a bot's, every seventh a thread's
/// parent, every eleventh edited, every ninth with a reaction.
fn sample_message(c: usize, k: usize, at: i64) -> Value {
    let n = (c * 1000 + k) as u64;
    let micros = at * 1_000_000 + ((k as i64 * 7919 + c as i64 * 104_729) % 1_000_000);
    let ts = ts_of(micros);
    let user = USERS[(k * 3 + c) % USERS.len()].0;
    if k % 10 == 3 {
        return json!({
            "type": "message",
            "subtype": "channel_join",
            "ts": ts,
            "user": user,
            "text": format!("<@{user}> has joined the channel"),
        });
    }
    if k % 15 == 7 {
        let text = format!("Deployed api v1.{} to production", 40 - k % 40);
        return json!({
            "type": "message",
            "subtype": "bot_message",
            "text": text,
            "ts": ts,
            "username": "deploybot",
            "bot_id": "B0DEPLOY01",
        });
    }
    let mut message = user_message(user, TEXTS[(k + c) % TEXTS.len()], &ts, n);
    if k % 7 == 2 {
        let replier = USERS[(k + 1) % USERS.len()].0;
        message["thread_ts"] = json!(ts);
        message["reply_count"] = json!(2);
        message["reply_users_count"] = json!(2);
        message["latest_reply"] = json!(ts_of(micros + 240_000_000));
        message["reply_users"] = json!([replier, user]);
        message["is_locked"] = json!(false);
        message["subscribed"] = json!(false);
    }
    if k % 11 == 5 {
        message["edited"] = json!({ "user": user, "ts": ts_of(micros / 1_000_000 * 1_000_000 + 60_000_000) });
    }
    if k % 9 == 4 {
        let reactor = USERS[(k + 2) % USERS.len()].0;
        message["reactions"] = json!([{ "name": "+1", "users": [reactor], "count": 1 }]);
    }
    message
}

/// A person's message as `conversations.history` gives it.
fn user_message(user: &str, text: &str, ts: &str, n: u64) -> Value {
    json!({
        "type": "message",
        "user": user,
        "text": text,
        "ts": ts,
        "client_msg_id": format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", n * 2_654_435_761 % 0xffff_ffff, n % 0xffff, n % 0xfff, (n * 7) % 0xfff, n * 40_503),
        "team": TEAM_ID,
        "blocks": blocks(text, n),
    })
}

/// The rich-text block Slack's clients send with a message's text.
fn blocks(text: &str, n: u64) -> Value {
    let block_id = base64::engine::general_purpose::STANDARD_NO_PAD.encode(n.to_le_bytes())[..5].to_string();
    json!([{
        "type": "rich_text",
        "block_id": block_id,
        "elements": [{ "type": "rich_text_section", "elements": [{ "type": "text", "text": text }] }],
    }])
}
