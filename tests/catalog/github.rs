//! GitHub end to end: the real `inlet` binary and the bundled GitHub
//! component against the fake GitHub ([`FakeGithub`]): events polled with
//! ETags at the pace GitHub asks, repositories and stars read whole with
//! deletions inferred only from complete reads, and GitHub's failures
//! (rate limits, a refused token, an unknown user) as the typed errors the
//! host acts on. Each instance type's cassette is recorded against the same fake.

use crate::support::{Inlet, bundled_plugin};
use inlet::demo::fake_github::{FakeGithub, GithubData, LOGIN, secondary_rate_limit_body};
use serde_json::Value;

/// What the harness reports when a plugin maps the injected failures right.
const TYPED_ERRORS: &str = "typed errors: 500 → transient, 429 → rate-limited, 401 → unauthorized";

struct Setup {
    fake: FakeGithub,
    inlet: Inlet,
    /// The group connected with the fake's token.
    group: String,
    /// `api.github.com=<the fake>`.
    overrides: String,
}

async fn setup() -> Setup {
    let fake = FakeGithub::start(GithubData::sample(now_ms())).await.unwrap();
    let overrides = format!("api.github.com={}", fake.base_url());
    let inlet = Inlet::with_plugins(&[bundled_plugin("github")])
        .env("INLET_UPSTREAM_OVERRIDE", &overrides)
        .env("INLET_API_KEY", &fake.access_token());
    let group = inlet.json(&["groups", "add", "github", "--name", LOGIN, "--json"]).await["id"].to_string();
    Setup { fake, inlet, group, overrides }
}

impl Setup {
    /// Record `instance_type`'s cassette against the fake and run the standard checks.
    fn record_cassette(&self, instance_type: &str, config: Option<&str>) -> String {
        let token = self.fake.access_token();
        let credentials = [("INLET_API_KEY", token.as_str())];
        // The recording is a child process: the fake keeps answering meanwhile.
        tokio::task::block_in_place(|| {
            crate::record_cassette("github", instance_type, config, &self.overrides, &credentials)
        })
    }

    async fn add(&self, group: &str, instance_type: &str, config: &str) -> String {
        let args = ["integrations", "add", "github", instance_type, "--group", group, "--config", config, "--json"];
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
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A run's records (created, updated, deleted).
fn counts(run: &Value) -> (i64, i64, i64) {
    let records = &run["records"];
    let count = |name: &str| records[name].as_i64().unwrap_or_else(|| panic!("no {name} count in {run}"));
    (count("created"), count("updated"), count("deleted"))
}

fn named<'a>(records: &'a Value, name: &str) -> &'a Value {
    let objects = records["objects"].as_array().unwrap();
    objects.iter().find(|o| o["name"] == name).unwrap_or_else(|| panic!("no object named {name}"))
}

fn accepts(request: &inlet::demo::RecordedRequest, media_type: &str) -> bool {
    request.headers.get_all("accept").iter().any(|v| v.to_str().is_ok_and(|v| v == media_type))
}

#[tokio::test(flavor = "multi_thread")]
async fn github_events_are_polled_with_etags_at_the_pace_github_asks_and_fail_with_typed_errors() {
    let s = setup().await;
    let report = s.record_cassette("events", Some("{}"));
    assert!(report.contains(TYPED_ERRORS), "{report}");

    // The first run asks who the token is, then pages through the events.
    let id = s.add(&s.group, "events", "{}").await;
    s.fake.take_requests();
    let first = s.sync(&id).await;
    assert_eq!(counts(&first), (150, 0, 0), "{first}");
    let requests = s.fake.take_requests();
    let asked: Vec<(&str, Option<&str>)> = requests.iter().map(|r| (r.path.as_str(), r.param("page"))).collect();
    assert_eq!(asked, [("/user", None), ("/users/octocat/events", None), ("/users/octocat/events", Some("2"))]);
    let events_request = &requests[1];
    assert_eq!(events_request.param("per_page"), Some("100"));
    assert_eq!(events_request.header("x-github-api-version"), Some("2022-11-28"));
    assert!(accepts(events_request, "application/vnd.github+json"));
    assert!(events_request.header("if-none-match").is_none());
    let records = s.records(&id).await;
    let events = records["events"].as_array().unwrap();
    let newest = events.last().unwrap();
    assert_eq!(
        (newest["external_id"].as_str(), newest["kind"].as_str(), newest["actor"].as_str()),
        (Some("40000000150"), Some("PushEvent"), Some(LOGIN)),
        "{newest}"
    );
    // The target is the repository's id, as the repository records are keyed.
    assert_eq!(newest["data"]["repo"]["name"], "octocat/Hello-World");
    assert_eq!(newest["target"].as_str(), Some(newest["data"]["repo"]["id"].to_string().as_str()), "{newest}");
    assert_eq!(newest["data"]["payload"]["ref"], "refs/heads/main");
    assert!(events.iter().any(|e| e["data"]["public"] == false), "private events are kept too");

    // Nothing new: one conditional request, answered 304, which costs no
    // rate limit; GitHub's poll interval holds the next run back.
    s.fake.update(|data| data.poll_interval_secs = 3600);
    let remaining = s.fake.update(|data| data.rate_limit_remaining());
    let second = s.sync(&id).await;
    assert_eq!(counts(&second), (0, 0, 0), "{second}");
    let requests = s.fake.take_requests();
    assert_eq!(requests.len(), 1, "the login is kept: only the events are asked for");
    assert!(requests[0].header("if-none-match").is_some_and(|etag| etag.starts_with('"')));
    assert_eq!(s.fake.update(|data| data.rate_limit_remaining()), remaining);
    let schedule = s.inlet.json(&["schedule", "list", "--json"]).await;
    let row = schedule.as_array().unwrap().iter().find(|row| row["id"].as_i64() == id.parse().ok()).unwrap();
    assert!(row["next_due_reason"].as_str().is_some_and(|why| why.contains("every 3600 s")), "{row}");
    assert!(row["next_due_at"].as_i64().unwrap() > now_ms() + 3_000_000, "{row}");

    // Something new: the first page has it and the newest event already stored.
    let new_id = s.fake.update(|data| data.add_event("WatchEvent", "rust-lang/rust", now_ms()));
    let third = s.sync(&id).await;
    assert_eq!(counts(&third), (1, 0, 0), "{third}");
    assert_eq!(s.fake.take_requests().len(), 1);
    let records = s.records(&id).await;
    let newest = records["events"].as_array().unwrap().last().unwrap();
    assert_eq!(
        (newest["external_id"].as_str(), newest["kind"].as_str(), newest["data"]["repo"]["name"].as_str()),
        (Some(new_id.as_str()), Some("WatchEvent"), Some("rust-lang/rust"))
    );

    // GitHub lists an event 30 s to 6 h after it happened: one that shows
    // up late, dated before the newest stored, and a new one after it are
    // both stored, in either order of the feed.
    for late_first in [false, true] {
        let late_ms = now_ms() - 2 * 3_600_000;
        let (late, new) = s.fake.update(|data| match late_first {
            false => (
                data.add_event("PushEvent", "rust-lang/rust", late_ms),
                data.add_event("WatchEvent", "rust-lang/rust", now_ms()),
            ),
            true => {
                let new = data.add_event("WatchEvent", "rust-lang/rust", now_ms());
                (data.add_event("PushEvent", "rust-lang/rust", late_ms), new)
            }
        });
        let run = s.sync(&id).await;
        assert_eq!(counts(&run).0, 2, "late listed first: {late_first}: {run}");
        let records = s.records(&id).await;
        let stored: Vec<&str> =
            records["events"].as_array().unwrap().iter().filter_map(|e| e["external_id"].as_str()).collect();
        assert!(stored.contains(&late.as_str()) && stored.contains(&new.as_str()), "late listed first: {late_first}");
    }
    s.fake.take_requests();

    // A secondary rate limit (403 with retry-after), then the primary one
    // spent until an hour from now: both wait, neither is a failure to fix.
    s.fake.respond_next(403, &[("retry-after", "60")], secondary_rate_limit_body());
    let run = s.failed_sync(&id).await;
    assert_eq!(run["error_class"], "rate-limited", "{run}");
    s.fake.update(|data| data.exhaust_rate_limit(now_ms() / 1000 + 3600));
    let run = s.failed_sync(&id).await;
    assert_eq!(run["error_class"], "rate-limited", "{run}");
    s.fake.update(|data| data.reset_rate_limit());
    assert_eq!(counts(&s.sync(&id).await), (0, 0, 0));

    // An unknown user in the config is the config's fault, and says which field.
    let unknown = s.add(&s.group, "events", r#"{"username": "no-such-user"}"#).await;
    let run = s.failed_sync(&unknown).await;
    assert_eq!(run["error_class"], "invalid-config", "{run}");
    assert!(run["error_message"].as_str().unwrap().contains("config.username"), "{run}");

    // A refused token: the group needs reconnecting.
    let args = ["groups", "add", "github", "--name", "revoked", "--api-key", "ghp_revoked0000", "--json"];
    let revoked = s.inlet.json(&args).await["id"].to_string();
    let refused = s.add(&revoked, "starred", "{}").await;
    let run = s.failed_sync(&refused).await;
    assert_eq!(run["error_class"], "unauthorized", "{run}");
}

#[tokio::test(flavor = "multi_thread")]
async fn github_repositories_and_stars_are_read_whole_and_deleted_only_after_a_complete_read() {
    let s = setup().await;
    for instance_type in ["repositories", "starred"] {
        let report = s.record_cassette(instance_type, None);
        assert!(report.contains(TYPED_ERRORS), "{instance_type}: {report}");
    }

    let repositories = s.add(&s.group, "repositories", "{}").await;
    let first = s.sync(&repositories).await;
    assert_eq!(counts(&first), (12, 0, 0), "{first}");
    let records = s.records(&repositories).await;
    let hello = named(&records, "octocat/Hello-World");
    assert_eq!((hello["kind"].as_str(), hello["external_id"].as_str()), (Some("repository"), Some("1296269")));
    assert_eq!(hello["data"]["html_url"], "https://github.com/octocat/Hello-World");
    assert!(hello["data"].get("issues_url").is_none(), "URL templates are left out: {hello}");
    assert_eq!(counts(&s.sync(&repositories).await), (0, 0, 0));
    s.fake.update(|data| {
        data.add_repository("new-tool", false, now_ms());
        assert!(data.rename_repository("octocat/test-repo1", "renamed-repo"));
        assert!(data.delete_repository("octocat/git-consortium"));
    });
    // Deleted once two complete reads in a row miss it (pages are numbered,
    // and a removal during a read shifts the pages after it).
    let changed = s.sync(&repositories).await;
    assert_eq!(counts(&changed), (1, 1, 0), "{changed}");
    assert_eq!(named(&s.records(&repositories).await, "octocat/git-consortium")["deleted"], false);
    assert_eq!(counts(&s.sync(&repositories).await), (0, 0, 1));
    let records = s.records(&repositories).await;
    assert_eq!(named(&records, "octocat/git-consortium")["deleted"], true);
    assert_eq!(named(&records, "octocat/renamed-repo")["deleted"], false);

    // Stars: two pages, in the star media type that says when.
    let starred = s.add(&s.group, "starred", "{}").await;
    s.fake.take_requests();
    let first = s.sync(&starred).await;
    assert_eq!(counts(&first), (130, 0, 0), "{first}");
    let requests = s.fake.take_requests();
    let pages: Vec<Option<&str>> = requests.iter().map(|r| r.param("page")).collect();
    assert_eq!(pages, [None, Some("2")]);
    assert!(requests.iter().all(|r| accepts(r, "application/vnd.github.star+json")));
    let records = s.records(&starred).await;
    let rust = named(&records, "rust-lang/rust");
    assert_eq!(rust["kind"], "starred");
    assert!(rust["data"]["starred_at"].as_str().is_some_and(|at| at.ends_with('Z')), "{rust}");

    // Unstarred: gone after the next two complete reads.
    s.fake.update(|data| assert!(data.unstar("rust-lang/rust")));
    assert_eq!(counts(&s.sync(&starred).await), (0, 0, 0));
    assert_eq!(counts(&s.sync(&starred).await), (0, 0, 1));
    assert_eq!(named(&s.records(&starred).await, "rust-lang/rust")["deleted"], true);

    // A read that fails on its second page counts for nothing: the two
    // complete reads after it do.
    s.fake.update(|data| {
        assert!(data.unstar("tokio-rs/tokio"));
        data.fail_once("/user/starred", 2);
    });
    let run = s.failed_sync(&starred).await;
    assert_eq!(run["error_class"], "transient", "{run}");
    assert_eq!(counts(&run), (0, 0, 0), "{run}");
    assert_eq!(counts(&s.sync(&starred).await), (0, 0, 0));
    assert_eq!(named(&s.records(&starred).await, "tokio-rs/tokio")["deleted"], false);
    assert_eq!(counts(&s.sync(&starred).await), (0, 0, 1));
    assert_eq!(named(&s.records(&starred).await, "tokio-rs/tokio")["deleted"], true);

    // Unstarred while the read is between its pages: the star that led page 2
    // moves onto page 1, already read, so the read misses it though it is
    // still starred. The next read lists it: it is never deleted. The
    // unstarred one, seen on page 1 before it went, is missed by the next
    // two reads, and deleted by the second.
    let (unstarred, shifted) = s.fake.update(|data| {
        let name = |star: &inlet::demo::fake_github::Star| star.repo["full_name"].as_str().unwrap().to_string();
        let (unstarred, shifted) = (name(&data.starred[0]), name(&data.starred[100]));
        data.unstar_before_page(2, &unstarred);
        (unstarred, shifted)
    });
    for deleted in [0, 0, 1] {
        assert_eq!(counts(&s.sync(&starred).await), (0, 0, deleted));
        assert_eq!(named(&s.records(&starred).await, &shifted)["deleted"], false, "{shifted} is still starred");
    }
    assert_eq!(named(&s.records(&starred).await, &unstarred)["deleted"], true);
}
