//! Hevy end to end: the real `inlet` binary and the Python Hevy plugin
//! against the fake Hevy API (`inlet::demo::fake_hevy`). Workouts: a first
//! run pages through all of them, later runs follow the events endpoint,
//! which names updates and deletions. Routines and exercise templates are
//! read whole, and what two complete reads in a row no longer list is
//! deleted, never after a read that failed midway. A refused key is the operator's to fix,
//! not retried. Then a cassette for each instance type, with the standard
//! checks.

use crate::support::{Inlet, bundled_plugin, eventually, terminate};
use chrono::Utc;
use inlet::demo::RecordedRequest;
use inlet::demo::fake_hevy::{API_KEY, FakeHevy, HevyData, MAX_PAGE_SIZE};
use serde_json::Value;

const INSTANCE_TYPES: [&str; 3] = ["workouts", "routines", "exercise-templates"];

/// The fake, an installation with the Hevy plugin, and a group connected
/// with the fake's key.
struct Hevy {
    fake: FakeHevy,
    inlet: Inlet,
    group: String,
}

impl Hevy {
    async fn start() -> Hevy {
        let fake = FakeHevy::start(HevyData::sample(Utc::now().timestamp_millis())).await.unwrap();
        let inlet = Inlet::with_plugins(&[bundled_plugin("hevy")]).env("INLET_UPSTREAM_OVERRIDE", &overrides(&fake));
        let group = add_group(&inlet, "me", API_KEY).await;
        Hevy { fake, inlet, group }
    }

    async fn add(&self, group: &str, instance_type: &str, schedule: &[&str]) -> String {
        let mut args = vec!["integrations", "add", "hevy", instance_type, "--group", group, "--json"];
        args.extend(schedule);
        self.inlet.json(&args).await["id"].to_string()
    }

    /// `inlet sync <id> --json`, requiring success.
    async fn sync(&self, id: &str) -> Value {
        crate::sync_ending(&self.inlet, id, "success").await
    }

    /// A run that must fail, as `inlet sync --json` prints it.
    async fn failed_sync(&self, id: &str) -> Value {
        crate::sync_ending(&self.inlet, id, "failed").await
    }

    async fn records(&self, id: &str) -> Value {
        self.inlet.json(&["records", id]).await
    }

    /// The requests since the last call.
    fn requests(&self) -> Vec<RecordedRequest> {
        self.fake.take_requests()
    }

    fn workouts(&self) -> Vec<Value> {
        self.fake.update(|data| data.workouts.clone())
    }
}

fn overrides(fake: &FakeHevy) -> String {
    format!("api.hevyapp.com={}", fake.base_url())
}

async fn add_group(inlet: &Inlet, name: &str, key: &str) -> String {
    inlet.json(&["groups", "add", "hevy", "--name", name, "--api-key", key, "--json"]).await["id"].to_string()
}

/// Created, updated and deleted.
fn counts(run: &Value) -> (i64, i64, i64) {
    let records = &run["records"];
    let count = |name: &str| records[name].as_i64().unwrap_or_else(|| panic!("no {name} count: {run:#}"));
    (count("created"), count("updated"), count("deleted"))
}

fn exercises(workout: &Value) -> &Vec<Value> {
    workout["exercises"].as_array().unwrap()
}

/// The object with this external id.
fn object<'a>(records: &'a Value, id: &str) -> &'a Value {
    let objects = records["objects"].as_array().unwrap();
    objects.iter().find(|o| o["external_id"] == id).unwrap_or_else(|| panic!("no object {id}: {records:#}"))
}

/// `(path, page)` of each request; each must carry the key in Hevy's header
/// and ask for Hevy's largest page.
fn pages(requests: &[RecordedRequest]) -> Vec<(&str, &str)> {
    for request in requests {
        assert_eq!(request.header("api-key"), Some(API_KEY), "{request:?}");
        assert_eq!(request.param("pageSize"), Some(MAX_PAGE_SIZE.to_string().as_str()), "{request:?}");
    }
    requests.iter().map(|r| (r.path.as_str(), r.param("page").unwrap_or_default())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hevy_workouts_are_paged_once_then_followed_through_the_events_endpoint() {
    let h = Hevy::start().await;
    let workouts = h.workouts();
    assert_eq!(workouts.len(), 25, "the sample's workouts");
    let exercise_count: usize = workouts.iter().map(|w| exercises(w).len()).sum();

    // The first run pages through every workout, newest first.
    let id = h.add(&h.group, "workouts", &[]).await;
    h.requests();
    let began = chrono::Utc::now();
    let first = h.sync(&id).await;
    let ended = chrono::Utc::now();
    assert_eq!(counts(&first), ((25 + exercise_count) as i64, 0, 0), "a workout and its exercises: {first:#}");
    let requests = h.requests();
    assert_eq!(pages(&requests), [("/v1/workouts", "1"), ("/v1/workouts", "2"), ("/v1/workouts", "3")]);

    // Each workout an event from its start, its duration the value, and a
    // block per exercise with its sets.
    let records = h.records(&id).await;
    let (events, blocks) = (records["events"].as_array().unwrap(), records["blocks"].as_array().unwrap());
    assert_eq!((events.len(), blocks.len()), (25, exercise_count));
    let newest = &workouts[0];
    let newest_id = newest["id"].as_str().unwrap();
    let event = events.last().unwrap();
    assert_eq!((event["external_id"].as_str(), event["kind"].as_str()), (Some(newest_id), Some("workout")));
    let start = chrono::DateTime::parse_from_rfc3339(newest["start_time"].as_str().unwrap()).unwrap();
    let end = chrono::DateTime::parse_from_rfc3339(newest["end_time"].as_str().unwrap()).unwrap();
    assert_eq!(event["occurred_at"], start.timestamp_millis());
    assert_eq!(
        (event["value"].as_f64(), event["unit"].as_str()),
        (Some((end - start).num_seconds() as f64), Some("s"))
    );
    assert_eq!(event["data"]["exercise_count"], exercises(newest).len());
    assert_eq!(event["data"]["title"], newest["title"]);
    let block_id = format!("{newest_id}/0");
    let block = blocks.iter().find(|b| b["external_id"] == block_id.as_str()).unwrap();
    assert_eq!((block["kind"].as_str(), block["event_id"].as_str()), (Some("exercise"), Some(newest_id)));
    assert_eq!(block["data"], exercises(newest)[0], "the exercise with its sets");

    // Nothing new: one request for the events since a little (the clocks'
    // margin, 5 minutes) before the backfill began.
    let second = h.sync(&id).await;
    assert_eq!(counts(&second), (0, 0, 0), "{second:#}");
    let requests = h.requests();
    assert_eq!(pages(&requests), [("/v1/workouts/events", "1")]);
    let since = chrono::DateTime::parse_from_rfc3339(requests[0].param("since").unwrap()).unwrap();
    let margin = chrono::Duration::minutes(5);
    let slack = chrono::Duration::seconds(1);
    assert!(
        since >= began - margin - slack && since <= ended - margin,
        "{since} for a backfill from {began} to {ended}"
    );

    // The user renames a workout and deletes another: one update, one tombstone.
    let (renamed, deleted) = (workouts[2]["id"].as_str().unwrap(), workouts[5]["id"].as_str().unwrap());
    h.fake.update(|data| {
        assert!(data.edit_workout(renamed, |w| w["title"] = "Push day (deload)".into()));
        assert!(data.delete_workout(deleted));
    });
    let third = h.sync(&id).await;
    assert_eq!(counts(&third), (0, 1, 1), "{third:#}");
    assert_eq!(pages(&h.requests()), [("/v1/workouts/events", "1")]);
    let events = h.records(&id).await["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 24);
    assert!(!events.iter().any(|e| e["external_id"] == deleted));
    let edited = events.iter().find(|e| e["external_id"] == renamed).unwrap();
    assert_eq!(edited["data"]["title"], "Push day (deload)");

    // The cursor moved past both changes.
    assert_eq!(counts(&h.sync(&id).await), (0, 0, 0));
}

/// A first backfill that fails midway resumes at its page; what changed
/// while it waited, on pages read or not, is read by the next run.
#[tokio::test(flavor = "multi_thread")]
async fn hevy_changes_made_while_a_backfill_waits_for_its_retry_are_read_after_it() {
    let h = Hevy::start().await;
    let workouts = h.workouts();
    let id = h.add(&h.group, "workouts", &[]).await;
    h.fake.update(|data| data.fail_next_page(500));
    let failed = h.failed_sync(&id).await;
    assert_eq!(failed["error_class"], "transient", "{failed:#}");

    // Newest first: the first page (read) holds the newest workout, the
    // last (not read yet) the oldest. Both are edited, the unread one last.
    let (read, unread) = (workouts[0]["id"].as_str().unwrap(), workouts[24]["id"].as_str().unwrap());
    h.fake.update(|data| {
        assert!(data.edit_workout(read, |w| w["title"] = "Renamed after its page was read".into()));
        assert!(data.edit_workout(unread, |w| w["title"] = "Renamed before its page was read".into()));
    });
    h.requests();
    h.sync(&id).await;
    assert_eq!(pages(&h.requests()), [("/v1/workouts", "2"), ("/v1/workouts", "3")], "resumed at its page");
    h.sync(&id).await;
    let events = h.records(&id).await["events"].as_array().unwrap().clone();
    let title = |id: &str| events.iter().find(|e| e["external_id"] == id).unwrap()["data"]["title"].clone();
    assert_eq!(title(unread), "Renamed before its page was read");
    assert_eq!(title(read), "Renamed after its page was read", "an edit of a page read before the retry");
}

/// A backfill resumed at a page the list no longer reaches (workouts were
/// deleted while it waited) reads the list again, rather than failing for
/// good on Hevy's 404 at every retry.
#[tokio::test(flavor = "multi_thread")]
async fn hevy_a_backfill_resumed_past_the_end_of_a_shrunk_list_reads_it_again() {
    let h = Hevy::start().await;
    let workouts = h.workouts();
    let id = h.add(&h.group, "workouts", &[]).await;
    h.fake.update(|data| data.fail_next_page(500));
    h.failed_sync(&id).await;
    // Sixteen deleted, the first page's last five among them: nine left, one page.
    let deleted: Vec<&str> = workouts[5..21].iter().map(|w| w["id"].as_str().unwrap()).collect();
    h.fake.update(|data| deleted.iter().for_each(|id| assert!(data.delete_workout(id))));
    h.requests();
    h.sync(&id).await;
    assert_eq!(pages(&h.requests()), [("/v1/workouts", "2"), ("/v1/workouts", "1")]);
    h.sync(&id).await;
    let stored: std::collections::BTreeSet<String> = h.records(&id).await["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["external_id"].as_str().unwrap().to_string())
        .collect();
    let left: std::collections::BTreeSet<String> =
        h.workouts().iter().map(|w| w["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(stored, left, "the nine left, once the deletions were read");
}

#[tokio::test(flavor = "multi_thread")]
async fn hevy_routines_and_templates_are_deleted_only_after_a_complete_read() {
    let h = Hevy::start().await;

    // Routines: read whole each run.
    let routines = h.add(&h.group, "routines", &[]).await;
    assert_eq!(counts(&h.sync(&routines).await), (3, 0, 0));
    let sample = h.fake.update(|data| data.routines.clone());
    let push = &sample[0];
    let records = h.records(&routines).await;
    let stored = object(&records, push["id"].as_str().unwrap());
    assert_eq!((stored["kind"].as_str(), stored["name"].as_str()), (Some("routine"), Some("Push")));
    assert_eq!(stored["data"]["exercises"], push["exercises"]);
    assert_eq!(counts(&h.sync(&routines).await), (0, 0, 0));

    // A new routine and a deleted one: the complete read creates one; the
    // other is tombstoned once two complete reads in a row miss it (the
    // pages are numbered, and a deletion during a read shifts those after it).
    let pull = sample[1]["id"].as_str().unwrap();
    let added = h.fake.update(|data| {
        assert!(data.remove_routine(pull));
        data.add_routine("Upper body")
    });
    assert_eq!(counts(&h.sync(&routines).await), (1, 0, 0));
    assert_eq!(object(&h.records(&routines).await, pull)["deleted"], false);
    assert_eq!(counts(&h.sync(&routines).await), (0, 0, 1));
    let records = h.records(&routines).await;
    assert_eq!(object(&records, pull)["deleted"], true);
    assert_eq!(object(&records, &added)["deleted"], false);

    // Exercise templates: two pages.
    let templates = h.add(&h.group, "exercise-templates", &[]).await;
    h.requests();
    assert_eq!(counts(&h.sync(&templates).await), (15, 0, 0));
    let two_pages = [("/v1/exercise_templates", "1"), ("/v1/exercise_templates", "2")];
    assert_eq!(pages(&h.requests()), two_pages);
    let bench = object(&h.records(&templates).await, "79D0BB3A").clone();
    assert_eq!(
        (bench["kind"].as_str(), bench["name"].as_str()),
        (Some("exercise_template"), Some("Bench Press (Barbell)"))
    );
    assert_eq!(bench["data"]["primary_muscle_group"], "chest");

    // The user deletes their custom exercise, listed on the second page. A
    // read that fails there counts for nothing; the two complete ones after
    // it delete it.
    let custom = "E7A2D1F0";
    h.fake.update(|data| {
        assert!(data.remove_template(custom));
        data.fail_next_page(500);
    });
    let failed = h.failed_sync(&templates).await;
    assert_eq!((failed["error_class"].as_str(), counts(&failed)), (Some("transient"), (0, 0, 0)), "{failed:#}");
    assert_eq!(pages(&h.requests()), two_pages);
    assert_eq!(object(&h.records(&templates).await, custom)["deleted"], false);
    assert_eq!(counts(&h.sync(&templates).await), (0, 0, 0));
    assert_eq!(counts(&h.sync(&templates).await), (0, 0, 1));
    assert_eq!(object(&h.records(&templates).await, custom)["deleted"], true);

    // A template deleted from the first page while the read is between its
    // pages: the one that led the second page moves onto the first, already
    // read, and is missed though it is still listed. It is never deleted;
    // the deleted one is, by the second complete read that misses it.
    let (deleted, shifted) = h.fake.update(|data| {
        let id = |index: usize| data.exercise_templates[index]["id"].as_str().unwrap().to_string();
        let (deleted, shifted) = (id(0), id(MAX_PAGE_SIZE));
        data.remove_templates_between_pages(&[&deleted]);
        (deleted, shifted)
    });
    for removed in [0, 0, 1] {
        assert_eq!(counts(&h.sync(&templates).await), (0, 0, removed));
        assert_eq!(object(&h.records(&templates).await, &shifted)["deleted"], false, "{shifted} is still listed");
    }
    assert_eq!(object(&h.records(&templates).await, &deleted)["deleted"], true);

    // Four deleted from the first page between pages: the second page is
    // gone (Hevy answers 404), and the read ends there rather than failing.
    // The three that moved onto the first page are never deleted.
    let (gone, moved) = h.fake.update(|data| {
        let ids: Vec<String> = (data.exercise_templates.iter())
            .map(|t| t["id"].as_str().unwrap().to_string())
            .filter(|id| *id != deleted)
            .collect();
        assert_eq!(ids.len(), 13, "two pages");
        let gone: Vec<String> = ids[..4].to_vec();
        data.remove_templates_between_pages(&gone.iter().map(String::as_str).collect::<Vec<_>>());
        (gone, ids[MAX_PAGE_SIZE..].to_vec())
    });
    for removed in [0, 0, 4] {
        assert_eq!(counts(&h.sync(&templates).await), (0, 0, removed));
        let records = h.records(&templates).await;
        assert!(moved.iter().all(|id| object(&records, id)["deleted"] == false), "{moved:?} are still listed");
    }
    let records = h.records(&templates).await;
    assert!(gone.iter().all(|id| object(&records, id)["deleted"] == true), "{gone:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_hevy_refuses_fails_as_invalid_config_naming_the_key_and_is_not_retried() {
    let h = Hevy::start().await;
    let refused = add_group(&h.inlet, "wrong key", "hevy-key-that-is-not-pro").await;

    // `inlet sync`: the run says what to fix.
    let id = h.add(&refused, "workouts", &["--manual"]).await;
    let run = h.failed_sync(&id).await;
    assert_eq!(run["error_class"], "invalid-config", "{run:#}");
    let message = run["error_message"].as_str().unwrap();
    assert!(message.contains("Hevy refused the API key") && message.contains("hevy.com/settings?developer"), "{run:#}");

    // Queued, it fails once and for good: no second attempt reaches Hevy.
    h.requests();
    let queued = h.inlet.run(&["sync", &id, "--force"]).await;
    assert!(queued.status.success(), "{}", crate::support::text(&queued.stderr));
    let server = h.inlet.spawn(&["serve", "--listen", "127.0.0.1:0"]).await;
    let failed = eventually(30, "the refused run's job in the failed list", || async {
        let failed = h.inlet.json(&["jobs", "failed", "--json"]).await;
        (!failed.as_array().unwrap().is_empty()).then_some(failed)
    })
    .await;
    terminate(&server);
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed:#}");
    assert_eq!(failed[0]["integration_id"].to_string(), id);
    assert_eq!((failed[0]["error_class"].as_str(), failed[0]["attempt"].as_i64()), (Some("invalid-config"), Some(1)));
    assert_eq!(h.requests().len(), 1, "one request, not retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn hevy_cassettes_record_and_pass_the_standard_checks() {
    let fake = FakeHevy::start(HevyData::sample(Utc::now().timestamp_millis())).await.unwrap();
    let overrides = overrides(&fake);
    for instance_type in INSTANCE_TYPES {
        // The recording is a child process: the fake keeps answering meanwhile.
        let report = tokio::task::block_in_place(|| {
            crate::record_cassette("hevy", instance_type, None, &overrides, &[("INLET_API_KEY", API_KEY)])
        });
        assert!(report.contains("ok   incremental run"), "{instance_type}: {report}");
        assert!(report.contains("ok   typed errors"), "{instance_type}: {report}");
    }
}
