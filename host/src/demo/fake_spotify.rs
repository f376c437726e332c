//! A fake Spotify Web API on loopback that follows the documented shapes
//! (<https://developer.spotify.com/documentation/web-api>), serving both of
//! Spotify's hosts on one server (override `api.spotify.com` and
//! `accounts.spotify.com` to it):
//!
//! - `POST /api/token` (accounts.spotify.com): `refresh_token` grants that
//!   keep the refresh token, through [`FakeOAuth`]; access tokens last an hour.
//! - `GET /v1/me/player/recently-played`: only the last 50 plays are kept,
//!   served newest first; `limit` 1 to 50 (default 20); `after` or `before`
//!   in Unix ms, exclusive, never both (400); `{items, next, cursors {after,
//!   before}, limit, href}`, `cursors` null when there are no items.
//! - `GET /v1/me/tracks` (saved tracks, newest first) and `GET /v1/me/playlists`:
//!   `offset`/`limit` (1 to 50, default 20) paging objects `{href, items,
//!   limit, next, offset, previous, total}` whose links are absolute
//!   `https://api.spotify.com` URLs; `market` on `/v1/me/tracks` (an unknown
//!   one is a 400; a known one relinks: `is_playable` instead of
//!   `available_markets`).
//! - Errors as Spotify writes them: `{"error": {"status": 401, "message":
//!   "The access token expired"}}`; with [`SpotifyData::limit_requests`], a
//!   rolling 30 s window whose excess is answered 429 with `Retry-After` in
//!   seconds; [`SpotifyData::fail_page`] fails one page of a listing.
//!
//! It backs the catalog tests and the recorded cassettes of the Spotify plugin.

use super::fake_oauth::FakeOAuth;
use super::upstream::{FakeApi, FakeUpstream, RecordedRequest, json_answer};
use axum::Json;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The access token the fake accepts until it expires or is refreshed.
pub const ACCESS_TOKEN: &str = "BQ-fake-spotify-access-token";
/// The account the data belongs to.
pub const USER_ID: &str = "alex.demo";
/// Spotify keeps this many plays, the newest.
pub const PLAY_HISTORY: usize = 50;

/// Where Spotify's links point (the plugin's requests are rewritten to the fake).
const API_BASE: &str = "https://api.spotify.com";
const MAX_LIMIT: usize = 50;
const DEFAULT_LIMIT: usize = 20;
const MAX_PLAYLIST_OFFSET: usize = 100_000;
const RATE_WINDOW: Duration = Duration::from_secs(30);
/// The markets the fake knows (Spotify knows some 180).
const MARKETS: [&str; 8] = ["GB", "US", "DE", "FR", "SE", "ES", "JP", "BR"];
const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

/// What the fake serves.
#[derive(Debug, Clone, Default)]
pub struct SpotifyData {
    /// Play history items `{track, played_at, context}`, oldest first; only
    /// the last [`PLAY_HISTORY`] are kept.
    pub plays: Vec<Value>,
    /// Saved-track items `{added_at, track}`, newest first as Spotify lists them.
    pub saved: Vec<Value>,
    /// Simplified playlist objects, in the order Spotify lists them.
    pub playlists: Vec<Value>,
    /// At most this many API requests per rolling 30 s; `None`: no limit.
    requests_per_window: Option<usize>,
    recent_requests: VecDeque<Instant>,
    /// Edits so far, which make new playlist `snapshot_id`s.
    edits: u64,
    /// The page (path and offset) to answer once with this status.
    failing_page: Option<(String, usize, StatusCode)>,
}

impl SpotifyData {
    /// 12 plays over the last two hours and a quarter (one track played three
    /// times, two twice), 52 saved tracks (two pages of 50) and three
    /// playlists: one owned, one collaborative, one followed.
    pub fn sample(now_ms: i64) -> SpotifyData {
        let mut data = SpotifyData::default();
        let playlists = [
            ("Morning Run", "Fast songs for slow mornings", USER_ID, false, true, 24),
            ("Road Trip", "Add yours!", USER_ID, true, false, 41),
            ("Fresh Finds", "New music from the fake label", "fakelabel", false, true, 30),
        ];
        for (index, (name, description, owner, collaborative, public, total)) in playlists.into_iter().enumerate() {
            data.playlists.push(playlist(index as u64, name, description, owner, collaborative, public, total));
        }
        let order = [0, 1, 2, 1, 3, 4, 1, 5, 6, 2, 7, 0];
        for (k, track_index) in order.into_iter().enumerate() {
            let k = k as i64;
            // Milliseconds, as Spotify writes `played_at`.
            data.play(track_index, now_ms - (12 - k) * 11 * MINUTE_MS - 137 * k);
        }
        for index in 0..52u64 {
            let added_at = (now_ms - (index as i64 + 1) * 2 * DAY_MS) / 1000 * 1000;
            data.saved.push(json!({"added_at": rfc3339_seconds(added_at), "track": track(100 + index)}));
        }
        data
    }

    /// A play of catalog track `track_index`, finished at `played_at_ms`;
    /// plays beyond the last 50 are forgotten, as Spotify does.
    pub fn play(&mut self, track_index: u64, played_at_ms: i64) {
        let context = match track_index % 2 {
            // The first sample playlist.
            0 => context("playlist", &spotify_id(2, 0)),
            _ => context("album", &album_id(track_index)),
        };
        self.plays.push(json!({
            "track": track(track_index),
            "played_at": rfc3339_millis(played_at_ms),
            "context": context,
        }));
        self.plays.sort_by_key(played_at);
        let excess = self.plays.len().saturating_sub(PLAY_HISTORY);
        self.plays.drain(..excess);
    }

    /// `played_at` of the newest play, in Unix ms.
    pub fn newest_play_ms(&self) -> Option<i64> {
        self.plays.last().map(played_at)
    }

    /// The id of the saved track at `index` (0 is the newest saved).
    pub fn saved_track_id(&self, index: usize) -> String {
        id_of(&self.saved[index]["track"])
    }

    /// Save catalog track `track_index` at `added_at_ms`: it becomes the newest saved.
    pub fn save(&mut self, track_index: u64, added_at_ms: i64) {
        self.saved.insert(0, json!({"added_at": rfc3339_seconds(added_at_ms), "track": track(track_index)}));
    }

    /// Remove a track from the library; whether it was there.
    pub fn unsave(&mut self, track_id: &str) -> bool {
        let before = self.saved.len();
        self.saved.retain(|item| item["track"]["id"] != track_id);
        self.saved.len() < before
    }

    /// The id of the playlist at `index`.
    pub fn playlist_id(&self, index: usize) -> String {
        id_of(&self.playlists[index])
    }

    /// Add a track to a playlist: its total grows and it gets a new `snapshot_id`.
    pub fn add_to_playlist(&mut self, playlist_id: &str) {
        self.edits += 1;
        let edits = self.edits;
        if let Some(playlist) = self.playlists.iter_mut().find(|p| p["id"] == playlist_id) {
            let total = playlist["tracks"]["total"].as_u64().unwrap_or(0);
            playlist["tracks"]["total"] = json!(total + 1);
            playlist["snapshot_id"] = json!(snapshot_id(playlist_id, edits));
        }
    }

    /// Delete or unfollow a playlist; whether it was listed.
    pub fn unfollow_playlist(&mut self, playlist_id: &str) -> bool {
        let before = self.playlists.len();
        self.playlists.retain(|p| p["id"] != playlist_id);
        self.playlists.len() < before
    }

    /// Answer the next request for `path` at `offset` with `status` (a 500
    /// on the second page), once; the pages before it are answered as usual.
    pub fn fail_page(&mut self, path: &str, offset: usize, status: u16) {
        let status = StatusCode::from_u16(status).expect("a valid status code");
        self.failing_page = Some((path.to_string(), offset, status));
    }

    /// Answer more than `requests` API requests per rolling 30 s with 429
    /// and `Retry-After`; `None` lifts the limit.
    pub fn limit_requests(&mut self, requests: Option<usize>) {
        self.requests_per_window = requests;
        self.recent_requests.clear();
    }

    /// 429 when the window is full, else the request counts in it.
    fn over_rate_limit(&mut self, at: Instant) -> Option<Response> {
        let limit = self.requests_per_window?;
        while self.recent_requests.front().is_some_and(|t| at.saturating_duration_since(*t) >= RATE_WINDOW) {
            self.recent_requests.pop_front();
        }
        if self.recent_requests.len() < limit {
            self.recent_requests.push_back(at);
            return None;
        }
        let oldest = self.recent_requests.front().copied().unwrap_or(at);
        let wait = RATE_WINDOW.saturating_sub(at.saturating_duration_since(oldest));
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut response = error(StatusCode::TOO_MANY_REQUESTS, "API rate limit exceeded");
        response.headers_mut().insert("retry-after", HeaderValue::from(seconds.max(1)));
        Some(response)
    }
}

/// The fake Spotify: [`SpotifyData`] served on loopback.
pub type FakeSpotify = FakeUpstream<SpotifyData>;

impl FakeApi for SpotifyData {
    const TOKEN_PATH: Option<&'static str> = Some("/api/token");

    fn provider(&self) -> FakeOAuth {
        let oauth = FakeOAuth::new(ACCESS_TOKEN).keeping_refresh_tokens();
        oauth.set_token_lifetime(3600);
        oauth
    }

    fn unauthorized(&self, request: &RecordedRequest) -> Response {
        let message = match request.header("authorization") {
            None => "No token provided",
            Some(_) => "The access token expired",
        };
        let mut response = error(StatusCode::UNAUTHORIZED, message);
        let challenge = format!("Bearer realm=\"spotify\", error=\"invalid_token\", error_description=\"{message}\"");
        response.headers_mut().insert("www-authenticate", challenge.parse().expect("a header value"));
        response
    }

    fn answer(&mut self, request: &RecordedRequest) -> Response {
        if let Some(limited) = self.over_rate_limit(request.at) {
            return limited;
        }
        let offset = request.param("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
        if let Some((_, _, status)) = self.failing_page.take_if(|(p, o, _)| *p == request.path && *o == offset) {
            return error(status, "Server error.");
        }
        if request.method != Method::GET {
            return error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
        }
        match request.path.as_str() {
            "/v1/me/player/recently-played" => recently_played(&self.plays, request),
            "/v1/me/tracks" => saved_tracks(&self.saved, request),
            "/v1/me/playlists" => match offset_and_limit(request, MAX_PLAYLIST_OFFSET) {
                Ok((offset, limit)) => Json(paging(request, &self.playlists, offset, limit)).into_response(),
                Err(refused) => error(StatusCode::BAD_REQUEST, &refused),
            },
            _ => error(StatusCode::NOT_FOUND, "Service not found"),
        }
    }
}

/// Spotify's error body.
fn error(status: StatusCode, message: &str) -> Response {
    json_answer(status, json!({"error": {"status": status.as_u16(), "message": message}}))
}

fn recently_played(plays: &[Value], request: &RecordedRequest) -> Response {
    let limit = match limit(request) {
        Ok(limit) => limit,
        Err(refused) => return error(StatusCode::BAD_REQUEST, &refused),
    };
    let (after, before) = match (cursor(request, "after"), cursor(request, "before")) {
        (Ok(Some(_)), Ok(Some(_))) => {
            return error(StatusCode::BAD_REQUEST, "Only one of after and before can be specified");
        }
        (Err(refused), _) | (_, Err(refused)) => return error(StatusCode::BAD_REQUEST, &refused),
        (Ok(after), Ok(before)) => (after, before),
    };
    // Oldest first here; served newest first. After a cursor, the plays
    // just after it, so that paging forward misses none.
    let selected: Vec<&Value> = match (after, before) {
        (Some(after), _) => plays.iter().filter(|p| played_at(p) > after).take(limit).collect(),
        (None, Some(before)) => {
            let older: Vec<&Value> = plays.iter().filter(|p| played_at(p) < before).collect();
            older[older.len().saturating_sub(limit)..].to_vec()
        }
        (None, None) => plays.iter().skip(plays.len().saturating_sub(limit)).collect(),
    };
    let (oldest, newest) = match (selected.first(), selected.last()) {
        (Some(oldest), Some(newest)) => (played_at(oldest), played_at(newest)),
        _ => {
            let page = json!({"items": [], "next": null, "cursors": null, "limit": limit, "href": href(request)});
            return Json(page).into_response();
        }
    };
    let link = |name: &str, at: i64| format!("{API_BASE}{}?{name}={at}&limit={limit}", request.path);
    let next = match after {
        Some(_) if plays.iter().any(|p| played_at(p) > newest) => Some(link("after", newest)),
        Some(_) => None,
        None => plays.iter().any(|p| played_at(p) < oldest).then(|| link("before", oldest)),
    };
    let items: Vec<&Value> = selected.into_iter().rev().collect();
    Json(json!({
        "items": items,
        "next": next,
        "cursors": {"after": newest.to_string(), "before": oldest.to_string()},
        "limit": limit,
        "href": href(request),
    }))
    .into_response()
}

fn saved_tracks(saved: &[Value], request: &RecordedRequest) -> Response {
    let (offset, limit) = match offset_and_limit(request, usize::MAX) {
        Ok(paging) => paging,
        Err(refused) => return error(StatusCode::BAD_REQUEST, &refused),
    };
    let market = request.param("market");
    if market.is_some_and(|m| m != "from_token" && !MARKETS.contains(&m)) {
        return error(StatusCode::BAD_REQUEST, "Invalid market code");
    }
    let mut page = paging(request, saved, offset, limit);
    // Relinked for a market: whether it plays there instead of where it does.
    if market.is_some() {
        for item in page["items"].as_array_mut().into_iter().flatten() {
            let track = &mut item["track"];
            if let Some(fields) = track.as_object_mut() {
                fields.remove("available_markets");
                fields.insert("is_playable".into(), json!(true));
            }
            if let Some(album) = track["album"].as_object_mut() {
                album.remove("available_markets");
            }
        }
    }
    Json(page).into_response()
}

/// A Unix ms cursor (`after`, `before`), if given.
fn cursor(request: &RecordedRequest, name: &str) -> Result<Option<i64>, String> {
    match request.param(name).map(str::parse::<i64>) {
        None => Ok(None),
        Some(Ok(ms)) => Ok(Some(ms)),
        Some(Err(_)) => Err(format!("Invalid {name} cursor")),
    }
}

/// `limit`: 1 to 50, 20 when absent.
fn limit(request: &RecordedRequest) -> Result<usize, String> {
    match request.param("limit").map(str::parse::<usize>) {
        None => Ok(DEFAULT_LIMIT),
        Some(Ok(limit)) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(_) => Err("Invalid limit".into()),
    }
}

fn offset_and_limit(request: &RecordedRequest, max_offset: usize) -> Result<(usize, usize), String> {
    let limit = limit(request)?;
    match request.param("offset").map(str::parse::<usize>) {
        None => Ok((0, limit)),
        Some(Ok(offset)) if offset <= max_offset => Ok((offset, limit)),
        Some(_) => Err("Invalid offset".into()),
    }
}

/// A paging object over `all`, its links keeping the request's other parameters.
fn paging(request: &RecordedRequest, all: &[Value], offset: usize, limit: usize) -> Value {
    let others: Vec<&(String, String)> =
        request.query.iter().filter(|(name, _)| name != "offset" && name != "limit").collect();
    let link = |offset: usize| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("offset", &offset.to_string()).append_pair("limit", &limit.to_string());
        for (name, value) in &others {
            query.append_pair(name, value);
        }
        format!("{API_BASE}{}?{}", request.path, query.finish())
    };
    let items: Vec<&Value> = all.iter().skip(offset).take(limit).collect();
    json!({
        "href": link(offset),
        "items": items,
        "limit": limit,
        "next": (offset + limit < all.len()).then(|| link(offset + limit)),
        "offset": offset,
        "previous": (offset > 0).then(|| link(offset.saturating_sub(limit))),
        "total": all.len(),
    })
}

/// The request's URL as Spotify would name it.
fn href(request: &RecordedRequest) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&request.query).finish();
    match query.is_empty() {
        true => format!("{API_BASE}{}", request.path),
        false => format!("{API_BASE}{}?{query}", request.path),
    }
}

fn played_at(play: &Value) -> i64 {
    play["played_at"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map_or(0, |t| t.timestamp_millis())
}

fn id_of(object: &Value) -> String {
    object["id"].as_str().unwrap_or_default().to_string()
}

fn rfc3339_millis(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn rfc3339_seconds(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A deterministic base-62 id of 22 characters, like Spotify's.
fn spotify_id(kind: u64, n: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut state = (kind << 32) ^ n ^ 0x9E37_79B9_7F4A_7C15;
    (0..22)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ALPHABET[((state >> 33) % 62) as usize] as char
        })
        .collect()
}

fn snapshot_id(playlist_id: &str, version: u64) -> String {
    let seed = playlist_id.bytes().fold(version, |hash, byte| hash.wrapping_mul(31).wrapping_add(u64::from(byte)));
    format!("AAAA{}", spotify_id(9, seed))
}

const ARTISTS: [&str; 4] = ["The Loopback Quartet", "Dana Localhost", "Sandbox Sisters", "Null Pointer Orchestra"];
const ALBUMS: [&str; 6] = ["Port 8080", "Handshake", "Keep-Alive", "Round Trip", "Cold Cache", "Soft Fork"];
const ADJECTIVES: [&str; 13] = [
    "Quiet", "Electric", "Paper", "Golden", "Midnight", "Hollow", "Northern", "Slow", "Bright", "Velvet", "Broken",
    "Silver", "Distant",
];
const NOUNS: [&str; 11] = [
    "Harbour",
    "Signals",
    "Lanterns",
    "Rivers",
    "Static",
    "Orchard",
    "Engines",
    "Tides",
    "Satellites",
    "Gardens",
    "Echoes",
];

fn album_id(track_index: u64) -> String {
    spotify_id(3, track_index / 3 % ALBUMS.len() as u64)
}

fn external(kind: &str, id: &str) -> Value {
    json!({"spotify": format!("https://open.spotify.com/{kind}/{id}")})
}

fn artist(index: u64) -> Value {
    let id = spotify_id(1, index);
    json!({
        "external_urls": external("artist", &id),
        "href": format!("{API_BASE}/v1/artists/{id}"),
        "id": id,
        "name": ARTISTS[index as usize],
        "type": "artist",
        "uri": format!("spotify:artist:{id}"),
    })
}

/// Catalog track `index`, a full track object (with a short market list).
pub fn track(index: u64) -> Value {
    let id = spotify_id(0, index);
    let album_index = index / 3 % ALBUMS.len() as u64;
    let album_id = album_id(index);
    let artists = vec![artist(index % ARTISTS.len() as u64)];
    let markets = ["GB", "US", "DE", "SE"];
    json!({
        "album": {
            "album_type": "album",
            "artists": artists,
            "available_markets": markets,
            "external_urls": external("album", &album_id),
            "href": format!("{API_BASE}/v1/albums/{album_id}"),
            "id": album_id,
            "images": [{"url": format!("https://i.scdn.co/image/ab67616d0000b273{album_index:024x}"), "height": 640, "width": 640}],
            "name": ALBUMS[album_index as usize],
            "release_date": format!("20{:02}-0{}-1{}", 10 + album_index, 1 + album_index % 9, album_index % 10),
            "release_date_precision": "day",
            "total_tracks": 12,
            "type": "album",
            "uri": format!("spotify:album:{album_id}"),
        },
        "artists": artists,
        "available_markets": markets,
        "disc_number": 1,
        "duration_ms": 150_000 + (index * 7_919) % 120_000,
        "explicit": index.is_multiple_of(5),
        "external_ids": {"isrc": format!("GBFKE26{index:05}")},
        "external_urls": external("track", &id),
        "href": format!("{API_BASE}/v1/tracks/{id}"),
        "id": id,
        "is_local": false,
        "name": format!("{} {}", ADJECTIVES[(index % 13) as usize], NOUNS[(index % 11) as usize]),
        "popularity": 20 + index % 60,
        "preview_url": null,
        "track_number": 1 + index % 12,
        "type": "track",
        "uri": format!("spotify:track:{id}"),
    })
}

fn context(kind: &str, id: &str) -> Value {
    json!({
        "type": kind,
        "href": format!("{API_BASE}/v1/{kind}s/{id}"),
        "external_urls": external(kind, id),
        "uri": format!("spotify:{kind}:{id}"),
    })
}

fn playlist(
    index: u64,
    name: &str,
    description: &str,
    owner: &str,
    collaborative: bool,
    public: bool,
    total: u64,
) -> Value {
    let id = spotify_id(2, index);
    json!({
        "collaborative": collaborative,
        "description": description,
        "external_urls": external("playlist", &id),
        "href": format!("{API_BASE}/v1/playlists/{id}"),
        "id": id,
        "images": [],
        "name": name,
        "owner": {
            "display_name": if owner == USER_ID { "Alex" } else { "Fake Label" },
            "external_urls": external("user", owner),
            "href": format!("{API_BASE}/v1/users/{owner}"),
            "id": owner,
            "type": "user",
            "uri": format!("spotify:user:{owner}"),
        },
        "primary_color": null,
        "public": public,
        "snapshot_id": snapshot_id(&id, 0),
        "tracks": {"href": format!("{API_BASE}/v1/playlists/{id}/tracks"), "total": total},
        "type": "playlist",
        "uri": format!("spotify:playlist:{id}"),
    })
}
