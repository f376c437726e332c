//! Spotify through the real binary against the fake Spotify (both of its
//! hosts on one loopback server): plays after a cursor, saved tracks and
//! playlists read whole with deletions inferred only from two complete reads,
//! the typed errors, the OAuth refresh and the reconnect a revoked refresh
//! token needs, and the three instance types' cassettes.

use crate::support::{Inlet, bundled_plugin};
use crate::sync;
use inlet::demo::fake_oauth::{CLIENT_ID, CLIENT_SECRET};
use inlet::demo::fake_spotify::{FakeSpotify, SpotifyData, track};
use serde_json::{Value, json};

async fn start_fake() -> FakeSpotify {
    FakeSpotify::start(SpotifyData::sample(chrono::Utc::now().timestamp_millis())).await.unwrap()
}

/// The API and the token endpoint, both served by the fake.
fn overrides(fake: &FakeSpotify) -> String {
    format!("api.spotify.com={0},accounts.spotify.com={0}", fake.base_url())
}

fn spotify_inlet(fake: &FakeSpotify) -> Inlet {
    Inlet::with_plugins(&[bundled_plugin("spotify")])
        .env("INLET_UPSTREAM_OVERRIDE", &overrides(fake))
        .env("INLET_OAUTH_SPOTIFY_CLIENT_ID", CLIENT_ID)
        .env("INLET_OAUTH_SPOTIFY_CLIENT_SECRET", CLIENT_SECRET)
}

/// `inlet groups add spotify` with these credential flags; the group's id.
async fn add_group(inlet: &Inlet, name: &str, credentials: &[&str]) -> String {
    let mut args = vec!["groups", "add", "spotify", "--name", name, "--json"];
    args.extend_from_slice(credentials);
    inlet.json(&args).await["id"].to_string()
}

async fn add_integration(inlet: &Inlet, group: &str, instance_type: &str, config: &str) -> String {
    let args = ["integrations", "add", "spotify", instance_type, "--group", group, "--config", config, "--json"];
    inlet.json(&args).await["id"].to_string()
}

/// Created, updated, unchanged and deleted records of a run.
fn counts(run: &Value) -> [i64; 4] {
    ["created", "updated", "unchanged", "deleted"].map(|n| run["records"][n].as_i64().unwrap_or(-1))
}

fn failed_as(run: &Value, class: &str) -> String {
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(run["error_class"], class, "{run:#}");
    run["error_message"].as_str().unwrap_or_default().to_string()
}

/// The object of `external_id` in `inlet records` output.
fn object<'a>(records: &'a Value, external_id: &str) -> &'a Value {
    let objects = records["objects"].as_array().unwrap();
    objects.iter().find(|o| o["external_id"] == external_id).unwrap_or_else(|| panic!("no object {external_id}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn spotify_syncs_plays_saved_tracks_and_playlists_and_what_changes_upstream() {
    let fake = start_fake().await;
    let inlet = spotify_inlet(&fake);
    let group = add_group(&inlet, "me", &["--access-token", &fake.access_token()]).await;
    let plays = add_integration(&inlet, &group, "recently-played", "{}").await;
    let saved = add_integration(&inlet, &group, "saved-tracks", "{}").await;
    let playlists = add_integration(&inlet, &group, "playlists", "{}").await;

    // First runs: every play Spotify keeps, the whole library in two pages, every playlist.
    assert_eq!(counts(&sync(&inlet, &plays).await), [12, 0, 0, 0]);
    assert_eq!(counts(&sync(&inlet, &saved).await), [52, 0, 0, 0]);
    assert_eq!(counts(&sync(&inlet, &playlists).await), [3, 0, 0, 0]);
    let newest = fake.update(|data| data.newest_play_ms()).unwrap();
    let records = inlet.json(&["records", &plays]).await;
    let events = records["events"].as_array().unwrap();
    let play = events.iter().find(|e| e["occurred_at"] == newest).expect("the newest play");
    let track_id = play["target"].as_str().unwrap();
    assert_eq!(play["kind"], "play");
    assert_eq!(play["external_id"], format!("{track_id}@{newest}"), "{play}");
    assert_eq!(
        (play["value"].as_f64(), play["unit"].as_str()),
        (play["data"]["track"]["duration_ms"].as_f64(), Some("ms"))
    );
    assert!(play["data"]["track"].get("available_markets").is_none(), "the market list is dropped: {play}");
    let thrice = track(1)["id"].clone();
    assert_eq!(events.iter().filter(|e| e["target"] == thrice).count(), 3, "a track played three times is three plays");
    let library = inlet.json(&["records", &saved]).await;
    let (first_saved, removed) = fake.update(|data| (data.saved_track_id(0), data.saved_track_id(10)));
    let saved_track = object(&library, &first_saved);
    assert_eq!(saved_track["kind"], "saved-track");
    assert!(saved_track["data"]["added_at"].is_string() && saved_track["data"]["track"]["name"] == saved_track["name"]);
    let (changed, unfollowed) = fake.update(|data| (data.playlist_id(0), data.playlist_id(2)));
    let lists = inlet.json(&["records", &playlists]).await;
    assert_eq!(object(&lists, &changed)["name"], "Morning Run");
    assert!(object(&lists, &changed)["data"]["snapshot_id"].is_string());

    // Nothing new upstream: nothing changes, and plays are asked for after the newest stored.
    fake.take_requests();
    for id in [&plays, &saved, &playlists] {
        let [created, updated, _, deleted] = counts(&sync(&inlet, id).await);
        assert_eq!((created, updated, deleted), (0, 0, 0), "integration {id}");
    }
    let asked: Vec<_> =
        fake.take_requests().into_iter().filter(|r| r.path == "/v1/me/player/recently-played").collect();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].param("after"), Some(newest.to_string().as_str()));
    assert_eq!(asked[0].param("before"), None);

    // New plays: only those after the cursor come back.
    let now = chrono::Utc::now().timestamp_millis();
    fake.update(|data| {
        data.play(8, now - 60_000);
        data.play(1, now);
    });
    assert_eq!(counts(&sync(&inlet, &plays).await), [2, 0, 0, 0]);

    // A track removed from the library, and the second page fails: nothing is deleted.
    fake.update(|data| {
        assert!(data.unsave(&removed));
        data.fail_page("/v1/me/tracks", 50, 500);
    });
    let run = sync(&inlet, &saved).await;
    failed_as(&run, "transient");
    assert_eq!(counts(&run)[3], 0, "{run:#}");
    assert_eq!(object(&inlet.json(&["records", &saved]).await, &removed)["deleted"], false);

    // Spotify's rolling 30 s window: the second page is refused 429 with Retry-After.
    fake.update(|data| data.limit_requests(Some(1)));
    let run = sync(&inlet, &saved).await;
    let message = failed_as(&run, "rate-limited");
    assert!(message.contains("retry after"), "{message}");
    assert_eq!(counts(&run)[3], 0, "{run:#}");
    fake.update(|data| data.limit_requests(None));

    // A complete read: the newly saved track is created; the removed one is
    // deleted by the next, once two complete reads in a row have missed it
    // (pages are by offset, and a removal during a read shifts the pages
    // after it).
    fake.update(|data| data.save(200, now));
    assert_eq!(counts(&sync(&inlet, &saved).await), [1, 0, 51, 0]);
    assert_eq!(object(&inlet.json(&["records", &saved]).await, &removed)["deleted"], false);
    assert_eq!(counts(&sync(&inlet, &saved).await), [0, 0, 52, 1]);
    assert_eq!(object(&inlet.json(&["records", &saved]).await, &removed)["deleted"], true);

    // A playlist with new tracks has a new snapshot_id: an update; an unfollowed one is deleted.
    fake.update(|data| {
        data.add_to_playlist(&changed);
        assert!(data.unfollow_playlist(&unfollowed));
    });
    assert_eq!(counts(&sync(&inlet, &playlists).await), [0, 1, 1, 0]);
    assert_eq!(counts(&sync(&inlet, &playlists).await), [0, 0, 2, 1]);
    let lists = inlet.json(&["records", &playlists]).await;
    assert_eq!(object(&lists, &changed)["data"]["tracks"]["total"], 25);
    assert_eq!(object(&lists, &unfollowed)["deleted"], true);

    // A market Spotify does not know is the integration's config to fix.
    let bad_market = add_integration(&inlet, &group, "saved-tracks", r#"{"market": "ZZ"}"#).await;
    let message = failed_as(&sync(&inlet, &bad_market).await, "invalid-config");
    assert!(message.contains("config.market"), "{message}");
    let relinked = add_integration(&inlet, &group, "saved-tracks", r#"{"market": "GB"}"#).await;
    assert_eq!(counts(&sync(&inlet, &relinked).await), [52, 0, 0, 0]);
    let relinked = inlet.json(&["records", &relinked]).await;
    assert_eq!(object(&relinked, &first_saved)["data"]["track"]["is_playable"], true);

    // A 429 on the first request, straight from the upstream.
    fake.respond_next(
        429,
        &[("retry-after", "7")],
        json!({"error": {"status": 429, "message": "API rate limit exceeded"}}),
    );
    let message = failed_as(&sync(&inlet, &playlists).await, "rate-limited");
    assert!(message.contains("retry after 7s"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn spotify_refreshes_an_expired_token_and_a_revoked_refresh_token_needs_a_reconnect() {
    let fake = start_fake().await;
    let inlet = spotify_inlet(&fake);

    // A refused token without a refresh token: unauthorized, and no refresh is tried.
    let stale = add_group(&inlet, "stale", &["--access-token", "BQ-someone-elses-token"]).await;
    let id = add_integration(&inlet, &stale, "playlists", "{}").await;
    let message = failed_as(&sync(&inlet, &id).await, "unauthorized");
    assert!(message.contains("401"), "{message}");
    assert_eq!(fake.oauth().refresh_calls(), 0);

    let refresh_token = fake.oauth().grant_refresh_token();
    let group =
        add_group(&inlet, "me", &["--access-token", &fake.access_token(), "--refresh-token", &refresh_token]).await;
    let plays = add_integration(&inlet, &group, "recently-played", "{}").await;

    // The access token expired: the host refreshes it and the run goes on.
    fake.oauth().expire_access_token();
    assert_eq!(counts(&sync(&inlet, &plays).await), [12, 0, 0, 0]);
    assert_eq!(fake.oauth().refresh_calls(), 1);
    // Spotify answered without a new refresh token: the same one works again.
    fake.oauth().expire_access_token();
    fake.update(|data| data.play(3, chrono::Utc::now().timestamp_millis()));
    assert_eq!(counts(&sync(&inlet, &plays).await), [1, 0, 0, 0]);
    assert_eq!(fake.oauth().refresh_calls(), 2);

    // The refresh token was revoked (or expired after six months): invalid_grant, reconnect.
    fake.oauth().revoke_refresh_token();
    fake.oauth().expire_access_token();
    failed_as(&sync(&inlet, &plays).await, "unauthorized");
    assert_eq!(fake.oauth().refresh_calls(), 3);
    let groups = inlet.json(&["groups", "list", "--json"]).await;
    let status = |name: &str| {
        let group = groups.as_array().unwrap().iter().find(|g| g["name"] == name).unwrap();
        group["status"].as_str().unwrap().to_string()
    };
    assert_eq!(status("me"), "needs-reconnect", "{groups:#}");
    // Its token refused with no refresh token to fall back on: the connection is gone.
    assert_eq!(status("stale"), "needs-reconnect", "{groups:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn spotify_cassettes_record_against_the_fake_and_pass_the_standard_checks() {
    let fake = start_fake().await;
    let token = fake.access_token();
    for instance_type in ["recently-played", "saved-tracks", "playlists"] {
        let report = crate::record_cassette(
            "spotify",
            instance_type,
            None,
            &overrides(&fake),
            &[("INLET_ACCESS_TOKEN", &token)],
        );
        assert!(
            report.contains("ok   typed errors: 500 → transient, 429 → rate-limited, 401 → unauthorized"),
            "{instance_type}: {report}"
        );
        assert!(report.contains("ok   incremental run"), "{instance_type}: {report}");
    }
}
