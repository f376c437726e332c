//! Spotify: what you played, the tracks you saved and your playlists, from
//! the Spotify Web API (<https://developer.spotify.com/documentation/web-api>).
//! One instance type per module: [`recently_played`], [`saved_tracks`] and
//! [`playlists`].

mod playlists;
mod recently_played;
mod saved_tracks;

use inlet_plugin_sdk::prelude::*;
use serde::Deserialize;
use serde_json::Value;

const API: &str = "https://api.spotify.com/v1";
/// Spotify's largest page, on every endpoint this plugin reads.
const PAGE_SIZE: usize = 50;

struct Spotify;

/// The config of an instance type that takes none.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({}))]
struct NoConfig {}

/// Every instance type calls the API; the token endpoint's host is declared
/// too, because the host refreshes the group's token there (and refreshes
/// only on hosts the operator approved).
fn instance_type(id: &str, name: &str, description: &str, every_seconds: u32) -> InstanceType {
    InstanceType::new(id, name)
        .description(description)
        .every(every_seconds)
        .host("api.spotify.com")
        .host("accounts.spotify.com")
}

impl Plugin for Spotify {
    fn describe() -> Manifest {
        Manifest::new("spotify", "Spotify", env!("CARGO_PKG_VERSION"))
            .description("Plays, saved tracks and playlists from a Spotify account")
            .auth(AuthKind::Oauth2(Oauth2Auth {
                authorize_url: "https://accounts.spotify.com/authorize".into(),
                token_url: "https://accounts.spotify.com/api/token".into(),
                scopes: [
                    "user-read-recently-played",
                    "user-library-read",
                    "playlist-read-private",
                    "playlist-read-collaborative",
                ]
                .map(String::from)
                .to_vec(),
                // A refresh may return a new refresh token, or none (the
                // old one keeps working): it is not spent on every use.
                refresh_token_rotates: false,
                pkce: true,
            }))
            // Spotify keeps only the last 50 plays: every 30 minutes loses
            // none unless 50 tracks of under 36 s each are played in between.
            .instance_type(
                instance_type("recently-played", "Recently played", "Every track you play", 30 * 60)
                    .config::<NoConfig>(),
            )
            .instance_type(
                instance_type("saved-tracks", "Saved tracks", "The tracks in Your Library", 6 * 3600)
                    .config::<saved_tracks::Config>(),
            )
            .instance_type(
                instance_type("playlists", "Playlists", "The playlists you own or follow", 6 * 3600)
                    .config::<NoConfig>(),
            )
    }

    fn fetch(request: FetchRequest) -> Result<FetchSummary, PluginError> {
        dispatch!(request.instance_type, {
            "recently-played" => {
                let _: NoConfig = parse_config(&request.config)?;
                recently_played::fetch(&request.mode)
            },
            "saved-tracks" => saved_tracks::fetch(&parse_config(&request.config)?),
            "playlists" => {
                let _: NoConfig = parse_config(&request.config)?;
                playlists::fetch()
            },
        })
    }

    fn process(batch: RawBatch) -> Result<Records, PluginError> {
        if let Some(removed) = snapshot::removed(&batch) {
            return removed;
        }
        let page: Value = serde_json::from_str(&batch.payload)?;
        match batch.kind.as_str() {
            recently_played::BATCH => recently_played::process(&page),
            saved_tracks::BATCH => saved_tracks::process(&page),
            playlists::BATCH => playlists::process(&page),
            other => Err(PluginError::Permanent(format!("unknown batch kind {other:?}"))),
        }
    }
}

inlet_plugin_sdk::export_plugin!(Spotify);

/// An authenticated GET of `path` under the API.
fn get(path: &str) -> http::Request {
    http::get(format!("{API}{path}")).authenticated()
}

/// Read a Spotify paging object (`{items, next, offset, total, ...}`) page by
/// page, following each page's `next` URL until it is null. `refine` may turn
/// a failed response into a more precise error (bad config) before the usual
/// mapping; `on_page` gets each decoded page.
fn each_page(
    first: http::Request,
    refine: impl Fn(&http::Response) -> Option<PluginError>,
    mut on_page: impl FnMut(&Value) -> Result<(), PluginError>,
) -> Result<(), PluginError> {
    let mut request = first;
    loop {
        let url = request.url();
        let response = request.clone().send()?;
        if let Some(error) = refine(&response) {
            return Err(error);
        }
        http::check_status(&url, &response)?;
        let page: Value = serde_json::from_slice(&response.body)?;
        on_page(&page)?;
        match page["next"].as_str() {
            // An upstream that names the same page again would be read forever.
            Some(next) if !next.is_empty() && next != url => request = request.with_url(next),
            _ => return Ok(()),
        }
    }
}

/// The items of a page (none when absent).
fn items(page: &Value) -> impl Iterator<Item = &Value> {
    page["items"].as_array().into_iter().flatten()
}

fn string(value: &Value, field: &str) -> Result<String, PluginError> {
    value[field]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| PluginError::Permanent(format!("upstream object has no string field {field:?}")))
}

/// A track as worth keeping: everything but the list of markets it is
/// available in (some 180 country codes, on the track and its album).
fn track_data(track: &Value) -> Value {
    let mut track = track.clone();
    if let Some(fields) = track.as_object_mut() {
        fields.remove("available_markets");
    }
    if let Some(album) = track["album"].as_object_mut() {
        album.remove("available_markets");
    }
    track
}

/// The track's id; a local file (`is_local`) has none, only a URI.
fn track_id(track: &Value) -> Option<String> {
    track["id"].as_str().or_else(|| track["uri"].as_str()).filter(|id| !id.is_empty()).map(str::to_string)
}

/// The message of Spotify's error body (`{"error": {"status", "message"}}`),
/// else the start of the body.
fn error_message(response: &http::Response) -> String {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or_default();
    match body["error"]["message"].as_str() {
        Some(message) => message.to_string(),
        None => String::from_utf8_lossy(&response.body).chars().take(200).collect(),
    }
}
