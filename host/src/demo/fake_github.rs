//! A fake GitHub REST API on loopback that follows the documented shapes
//! (<https://docs.github.com/rest>), for the GitHub plugin's tests and demo:
//!
//! * Bearer auth with a personal access token; a refused one is
//!   `401 {"message": "Bad credentials", ...}`. A request without a
//!   `User-Agent` is refused (403), and an unknown `X-GitHub-Api-Version` is a 400.
//! * `GET /user`: the token's user (`octocat`).
//! * `GET /user/repos` with `visibility`, `affiliation` (comma-separated),
//!   `type` (a 422 together with either), `sort` and `direction`.
//! * `GET /user/starred`, newest star first; with
//!   `Accept: application/vnd.github.star+json` each item is
//!   `{"starred_at", "repo"}`, else the repository itself.
//! * `GET /users/{login}/events`: the user's events, newest first, private
//!   ones included (the fake knows only its own user: anyone else is a 404).
//!   GitHub keeps the latest 300 events of the last 90 days; asking past the
//!   300th is a 422. Every answer carries `X-Poll-Interval`.
//! * Paging by `per_page` (default 30, at most 100) and `page`, with
//!   `Link: <https://api.github.com/...&page=2>; rel="next", <...>; rel="last"`
//!   (and `prev`, `first`).
//! * An `ETag` on every 200; `If-None-Match` with it answers 304 with no body,
//!   which does not count against the rate limit.
//! * `x-ratelimit-limit`, `-remaining` (5000 an hour, counting down), `-used`,
//!   `-reset` (Unix seconds) and `-resource: core` on every answer; once
//!   spent (or [`GithubData::exhaust_rate_limit`]) the answers are 403 with
//!   remaining 0 and "API rate limit exceeded" until the reset.
//!
//! Tests change the data with the methods of [`GithubData`] (through
//! `fake.update`), inject a 500 on a later page with [`GithubData::fail_once`],
//! and a secondary limit with `fake.respond_next(403, &[("retry-after", "60")],
//! secondary_rate_limit_body())`.

use super::fake_oauth::FakeOAuth;
use super::upstream::{FakeApi, FakeUpstream, RecordedRequest};
use axum::Json;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::hash::{DefaultHasher, Hash, Hasher};

const API: &str = "https://api.github.com";
/// The personal access token the fake accepts.
pub const TOKEN: &str = "ghp_fakeDemoPersonalAccessToken00000000";
/// The token's user.
pub const LOGIN: &str = "octocat";
const USER_ID: i64 = 583231;
const API_VERSION: &str = "2022-11-28";
/// Requests an hour with a token.
const RATE_LIMIT: u32 = 5000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// GitHub's events timeline: at most this many, of at most this many days.
const EVENTS_KEPT: usize = 300;
const EVENTS_DAYS: i64 = 90;
const DEFAULT_PER_PAGE: usize = 30;
const MAX_PER_PAGE: usize = 100;
const STAR_MEDIA_TYPE: &str = "application/vnd.github.star+json";
const DOCS: &str = "https://docs.github.com/rest";
const RATE_LIMIT_DOCS: &str = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api";
const USER_AGENT_REQUIRED: &str = concat!(
    "Request forbidden by administrative rules. Please make sure your request has a User-Agent header ",
    "(https://docs.github.com/rest/overview/resources-in-the-rest-api#user-agent-required). ",
    "Check https://developer.github.com for other possible causes.\n",
);

/// A repository the user can reach, and how.
#[derive(Debug, Clone)]
pub struct Repository {
    /// `owner`, `collaborator` or `organization_member` (the `affiliation` values).
    pub affiliation: &'static str,
    pub repo: Value,
}

/// A repository the user starred, and when.
#[derive(Debug, Clone)]
pub struct Star {
    pub starred_at_ms: i64,
    pub repo: Value,
}

/// The hour's requests: how many are left and when they come back.
#[derive(Debug, Clone)]
struct RateWindow {
    remaining: u32,
    /// Unix seconds.
    reset_at: i64,
}

impl RateWindow {
    fn fresh(now_secs: i64) -> RateWindow {
        RateWindow { remaining: RATE_LIMIT, reset_at: now_secs + 3600 }
    }
}

/// What the fake serves.
#[derive(Debug, Clone)]
pub struct GithubData {
    /// The token's user, as `GET /user` answers.
    pub user: Value,
    pub repositories: Vec<Repository>,
    /// Newest star first.
    pub starred: Vec<Star>,
    /// The user's events, newest first.
    pub events: Vec<Value>,
    /// `X-Poll-Interval` of the events endpoint, in seconds (GitHub's usual 60;
    /// it raises it under load).
    pub poll_interval_secs: u32,
    rate: RateWindow,
    /// The next request for this page of this path is answered 500.
    failing: Option<(String, usize)>,
    /// Before this page of `/user/starred` is answered, this star is removed.
    unstarring: Option<(usize, String)>,
    next_event_id: u64,
}

/// Repositories of the sample: (affiliation, owner, name, private, language, description).
const REPOSITORIES: [(&str, &str, &str, bool, &str, &str); 12] = [
    ("owner", "octocat", "Hello-World", false, "", "My first repository on GitHub!"),
    ("owner", "octocat", "Spoon-Knife", false, "HTML", "This repo is for demonstration purposes only."),
    ("owner", "octocat", "linguist", false, "Ruby", "Language Savant."),
    ("owner", "octocat", "octocat.github.io", false, "CSS", ""),
    ("owner", "octocat", "git-consortium", false, "", "This repo is for demonstration purposes only."),
    ("owner", "octocat", "dotfiles", true, "Shell", "My shell, editor and git setup"),
    ("owner", "octocat", "notes", true, "", "Private notes"),
    ("owner", "octocat", "test-repo1", false, "", ""),
    ("collaborator", "monalisa", "smile", false, "JavaScript", "A friendly smile"),
    ("collaborator", "hubot", "scripts", true, "CoffeeScript", "Scripts for Hubot"),
    ("organization_member", "octo-org", "octo-repo", false, "Go", "The organization's main repository"),
    ("organization_member", "octo-org", "roadmap", true, "", "Planning"),
];

/// The first stars of the sample (newest first); the rest are generated.
const STARRED: [&str; 8] = [
    "rust-lang/rust",
    "tokio-rs/tokio",
    "bytecodealliance/wasmtime",
    "serde-rs/serde",
    "tokio-rs/axum",
    "launchbadge/sqlx",
    "github/docs",
    "octokit/octokit.js",
];

const EVENT_KINDS: [&str; 6] =
    ["PushEvent", "WatchEvent", "PushEvent", "IssuesEvent", "PullRequestEvent", "IssueCommentEvent"];

impl GithubData {
    /// `octocat` with 12 repositories (8 owned, 2 as a collaborator, 2
    /// through an organization; 4 private), 130 stars (two pages of 100),
    /// one every 20 hours, and 150 events over the last 75 days (two pages),
    /// private ones on the private repositories.
    pub fn sample(now_ms: i64) -> GithubData {
        let user = json!({
            "login": LOGIN,
            "id": USER_ID,
            "node_id": "MDQ6VXNlcjU4MzIzMQ==",
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{USER_ID}?v=4"),
            "url": format!("{API}/users/{LOGIN}"),
            "html_url": format!("https://github.com/{LOGIN}"),
            "type": "User",
            "site_admin": false,
            "name": "The Octocat",
            "company": "@github",
            "blog": "https://github.blog",
            "location": "San Francisco",
            "email": null,
            "bio": null,
            "public_repos": 6,
            "followers": 1024,
            "following": 9,
            "created_at": "2011-01-25T18:44:36Z",
            "updated_at": rfc3339(now_ms - 3 * DAY_MS),
        });
        let repositories: Vec<Repository> = REPOSITORIES
            .iter()
            .enumerate()
            .map(|(i, &(affiliation, owner, name, private, language, description))| {
                let id = 1_296_269 + i as i64 * 7_919;
                let created = now_ms - (900 - i as i64 * 60) * DAY_MS;
                let repo =
                    repository(id, owner, name, private, language, description, created, now_ms - i as i64 * DAY_MS);
                Repository { affiliation, repo: with_permissions(repo, affiliation == "owner") }
            })
            .collect();
        let starred = (0..130)
            .map(|i| {
                let full_name =
                    STARRED.get(i).map_or_else(|| format!("stargazer-lab/project-{i:03}"), |n| n.to_string());
                let (owner, name) = full_name.split_once('/').expect("owner/name");
                let created = now_ms - (2_000 + i as i64) * DAY_MS;
                let repo =
                    repository(10_000_000 + i as i64 * 17, owner, name, false, "Rust", "", created, now_ms - DAY_MS);
                Star { starred_at_ms: now_ms - (i as i64 + 1) * 20 * HOUR_MS, repo: with_permissions(repo, false) }
            })
            .collect();
        let first_event_id = 40_000_000_000u64;
        let events = (0..150u64)
            .map(|i| {
                let repository = &repositories[(i as usize * 5) % 8].repo;
                let created = now_ms - HOUR_MS - i as i64 * 12 * HOUR_MS;
                event(first_event_id + 150 - i, EVENT_KINDS[i as usize % EVENT_KINDS.len()], repository, created, i)
            })
            .collect();
        GithubData {
            user,
            repositories,
            starred,
            events,
            poll_interval_secs: 60,
            rate: RateWindow::fresh(now_ms / 1000),
            failing: None,
            unstarring: None,
            next_event_id: first_event_id + 151,
        }
    }

    /// Something just happened: a new event of `kind` (`PushEvent`...) on
    /// `repository` (`owner/name`) at `at_ms`. Returns its id.
    pub fn add_event(&mut self, kind: &str, repository: &str, at_ms: i64) -> String {
        let repo = self
            .repositories
            .iter()
            .map(|r| &r.repo)
            .chain(self.starred.iter().map(|s| &s.repo))
            .find(|r| r["full_name"] == repository)
            .cloned()
            .unwrap_or_else(|| json!({"id": 0, "full_name": repository, "private": false}));
        let id = self.next_event_id;
        self.next_event_id += 1;
        self.events.insert(0, event(id, kind, &repo, at_ms, id % 1000));
        id.to_string()
    }

    /// The user unstars `full_name`; false if it was not starred.
    pub fn unstar(&mut self, full_name: &str) -> bool {
        let before = self.starred.len();
        self.starred.retain(|s| s.repo["full_name"] != full_name);
        self.starred.len() < before
    }

    /// A new repository the user owns. Returns its id.
    pub fn add_repository(&mut self, name: &str, private: bool, at_ms: i64) -> i64 {
        let id = self.repositories.iter().filter_map(|r| r.repo["id"].as_i64()).max().unwrap_or(0) + 1;
        let repo = repository(id, LOGIN, name, private, "", "", at_ms, at_ms);
        self.repositories.push(Repository { affiliation: "owner", repo: with_permissions(repo, true) });
        id
    }

    /// The repository `full_name` is renamed to `new_name` (same owner, same id).
    pub fn rename_repository(&mut self, full_name: &str, new_name: &str) -> bool {
        let Some(found) = self.repositories.iter_mut().find(|r| r.repo["full_name"] == full_name) else {
            return false;
        };
        let owner = found.repo["owner"]["login"].as_str().unwrap_or(LOGIN).to_string();
        found.repo["name"] = json!(new_name);
        found.repo["full_name"] = json!(format!("{owner}/{new_name}"));
        found.repo["html_url"] = json!(format!("https://github.com/{owner}/{new_name}"));
        true
    }

    /// The repository `full_name` is deleted (or the user lost access to it).
    pub fn delete_repository(&mut self, full_name: &str) -> bool {
        let before = self.repositories.len();
        self.repositories.retain(|r| r.repo["full_name"] != full_name);
        self.repositories.len() < before
    }

    /// The next request for page `page` of `path` (e.g. `/user/starred`, 2)
    /// is answered `500`, once.
    pub fn fail_once(&mut self, path: &str, page: usize) {
        self.failing = Some((path.to_string(), page));
    }

    /// The user unstars `full_name` just before the next request for page
    /// `page` of `/user/starred` is answered, as if between a reader's pages:
    /// the stars after it move up a place, and the first of that page moves
    /// onto the page before, which the reader has already read.
    pub fn unstar_before_page(&mut self, page: usize, full_name: &str) {
        self.unstarring = Some((page, full_name.to_string()));
    }

    /// The hour's requests are spent: every answer is a 403 with
    /// `x-ratelimit-remaining: 0` until `reset_at` (Unix seconds).
    pub fn exhaust_rate_limit(&mut self, reset_at: i64) {
        self.rate = RateWindow { remaining: 0, reset_at };
    }

    /// A new hour: the full limit again.
    pub fn reset_rate_limit(&mut self) {
        self.rate = RateWindow::fresh(Utc::now().timestamp());
    }

    /// Requests left in the hour.
    pub fn rate_limit_remaining(&self) -> u32 {
        self.rate.remaining
    }

    fn route(&mut self, request: &RecordedRequest) -> Answer {
        let (_, page) = page_params(request);
        let failing = self.failing.as_ref().is_some_and(|(path, at)| request.path == *path && page == *at);
        if failing {
            self.failing = None;
            return Answer::error(StatusCode::INTERNAL_SERVER_ERROR, "Server Error", DOCS);
        }
        if request.path == "/user/starred" && self.unstarring.as_ref().is_some_and(|(at, _)| page == *at) {
            let (_, full_name) = self.unstarring.take().expect("checked above");
            self.unstar(&full_name);
        }
        if request.method != Method::GET {
            return Answer::not_found();
        }
        match request.path.as_str() {
            "/user" => Answer::ok(self.user.clone()),
            "/user/repos" => self.list_repositories(request),
            "/user/starred" => self.list_starred(request),
            path => match path.strip_prefix("/users/").and_then(|rest| rest.strip_suffix("/events")) {
                Some(login) if !login.is_empty() && !login.contains('/') => self.list_events(request, login),
                _ => Answer::not_found(),
            },
        }
    }

    /// `GET /user/repos`: <https://docs.github.com/rest/repos/repos#list-repositories-for-the-authenticated-user>
    fn list_repositories(&self, request: &RecordedRequest) -> Answer {
        let visibility = request.param("visibility");
        let affiliation = request.param("affiliation");
        let kind = request.param("type");
        if kind.is_some() && (visibility.is_some() || affiliation.is_some()) {
            return Answer::validation_failed("If you specify visibility or affiliation, you cannot specify type.");
        }
        let visibility = visibility.unwrap_or("all");
        if !["all", "public", "private"].contains(&visibility) {
            return Answer::validation_failed(&format!("visibility {visibility:?} is not all, public or private"));
        }
        let affiliations: Vec<&str> =
            affiliation.unwrap_or("owner,collaborator,organization_member").split(',').map(str::trim).collect();
        if let Some(bad) = affiliations.iter().find(|a| !["owner", "collaborator", "organization_member"].contains(a)) {
            return Answer::validation_failed(&format!(
                "affiliation {bad:?} is not owner, collaborator or organization_member"
            ));
        }
        let kind = kind.unwrap_or("all");
        if !["all", "owner", "public", "private", "member"].contains(&kind) {
            return Answer::validation_failed(&format!("type {kind:?} is not all, owner, public, private or member"));
        }
        let mut repositories: Vec<Value> = self
            .repositories
            .iter()
            .filter(|r| affiliations.contains(&r.affiliation))
            .filter(|r| {
                let private = r.repo["private"] == true;
                match (visibility, kind) {
                    ("public", _) | (_, "public") => !private,
                    ("private", _) | (_, "private") => private,
                    (_, "owner") => r.affiliation == "owner",
                    (_, "member") => r.affiliation != "owner",
                    _ => true,
                }
            })
            .map(|r| r.repo.clone())
            .collect();
        let sort = request.param("sort").unwrap_or("full_name");
        let field = match sort {
            "full_name" => "full_name",
            "created" => "created_at",
            "updated" => "updated_at",
            "pushed" => "pushed_at",
            other => {
                return Answer::validation_failed(&format!(
                    "sort {other:?} is not created, updated, pushed or full_name"
                ));
            }
        };
        let ascending = request.param("direction").map_or(sort == "full_name", |d| d == "asc");
        let key = |r: &Value| r[field].as_str().unwrap_or_default().to_lowercase();
        repositories.sort_by_key(key);
        if !ascending {
            repositories.reverse();
        }
        paged(request, repositories)
    }

    /// `GET /user/starred`: <https://docs.github.com/rest/activity/starring#list-repositories-starred-by-the-authenticated-user>
    fn list_starred(&self, request: &RecordedRequest) -> Answer {
        let star_media_type = request
            .headers
            .get_all("accept")
            .iter()
            .any(|value| value.to_str().is_ok_and(|v| v.contains(STAR_MEDIA_TYPE)));
        let mut stars = self.starred.clone();
        match request.param("sort").unwrap_or("created") {
            "created" => stars.sort_by_key(|s| std::cmp::Reverse(s.starred_at_ms)),
            "updated" => {
                stars.sort_by_key(|s| std::cmp::Reverse(s.repo["updated_at"].as_str().unwrap_or_default().to_string()))
            }
            other => return Answer::validation_failed(&format!("sort {other:?} is not created or updated")),
        }
        if request.param("direction") == Some("asc") {
            stars.reverse();
        }
        let items = stars
            .into_iter()
            .map(|star| match star_media_type {
                true => json!({"starred_at": rfc3339(star.starred_at_ms), "repo": star.repo}),
                false => star.repo,
            })
            .collect();
        paged(request, items)
    }

    /// `GET /users/{login}/events`: <https://docs.github.com/rest/activity/events#list-events-for-the-authenticated-user>
    fn list_events(&self, request: &RecordedRequest, login: &str) -> Answer {
        if !login.eq_ignore_ascii_case(LOGIN) {
            return Answer::not_found();
        }
        let (per_page, page) = page_params(request);
        if (page - 1) * per_page >= EVENTS_KEPT {
            return Answer::error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "In order to keep the API fast for everyone, pagination is limited for this resource. Check the rel=last \
                 link relation in the Link response header to see how far back you can traverse.",
                "https://docs.github.com/rest/guides/using-pagination-in-the-rest-api",
            );
        }
        let cutoff = Utc::now().timestamp_millis() - EVENTS_DAYS * DAY_MS;
        let kept = self
            .events
            .iter()
            .filter(|e| created_at(e).is_some_and(|at| at >= cutoff))
            .take(EVENTS_KEPT)
            .cloned()
            .collect();
        paged(request, kept).header("x-poll-interval", self.poll_interval_secs.to_string())
    }
}

impl FakeApi for GithubData {
    fn provider(&self) -> FakeOAuth {
        FakeOAuth::new(TOKEN)
    }

    fn unauthorized(&self, _: &RecordedRequest) -> Response {
        let answer = Answer::error(StatusCode::UNAUTHORIZED, "Bad credentials", DOCS);
        let mut response = (answer.status, Json(answer.body)).into_response();
        // Unauthenticated requests have their own, small, limit.
        rate_headers(response.headers_mut(), 60, 59, Utc::now().timestamp() + 3600);
        response
    }

    fn answer(&mut self, request: &RecordedRequest) -> Response {
        if request.header("user-agent").is_none_or(|agent| agent.trim().is_empty()) {
            return (StatusCode::FORBIDDEN, USER_AGENT_REQUIRED).into_response();
        }
        if let Some(version) = request.header("x-github-api-version").filter(|v| *v != API_VERSION) {
            let message = format!(
                "Unsupported 'X-GitHub-Api-Version' header {version:?}: the supported versions are {API_VERSION}"
            );
            let answer = Answer::error(StatusCode::BAD_REQUEST, &message, DOCS);
            return (answer.status, Json(answer.body)).into_response();
        }
        let now = Utc::now().timestamp();
        if now >= self.rate.reset_at {
            self.rate = RateWindow::fresh(now);
        }
        if self.rate.remaining == 0 {
            let message = format!(
                "API rate limit exceeded for user ID {USER_ID}. If you reach out to GitHub Support for help, please \
                 include the request ID and timestamp."
            );
            let answer =
                Answer::error(StatusCode::FORBIDDEN, &message, &format!("{RATE_LIMIT_DOCS}#about-rate-limits"));
            let mut response = (answer.status, Json(answer.body)).into_response();
            rate_headers(response.headers_mut(), RATE_LIMIT, 0, self.rate.reset_at);
            return response;
        }
        let answer = self.route(request);
        let etag = (answer.status == StatusCode::OK).then(|| etag_of(&answer.body));
        let not_modified = etag.is_some() && request.header("if-none-match") == etag.as_deref();
        // A 304 does not count against the rate limit.
        if !not_modified {
            self.rate.remaining -= 1;
        }
        let mut response = match not_modified {
            true => StatusCode::NOT_MODIFIED.into_response(),
            false => (answer.status, Json(answer.body)).into_response(),
        };
        let headers = response.headers_mut();
        // A 304 has no page to link from.
        for (name, value) in answer.headers.into_iter().filter(|(name, _)| !(not_modified && *name == "link")) {
            headers.insert(name, HeaderValue::from_str(&value).expect("a valid header value"));
        }
        if let Some(etag) = etag {
            headers.insert("etag", HeaderValue::from_str(&etag).expect("a valid ETag"));
        }
        headers.insert("x-github-media-type", HeaderValue::from_static("github.v3; format=json"));
        headers.insert("x-github-api-version-selected", HeaderValue::from_static(API_VERSION));
        rate_headers(headers, RATE_LIMIT, self.rate.remaining, self.rate.reset_at);
        response
    }
}

/// The fake GitHub: [`GithubData`] served on loopback.
pub type FakeGithub = FakeUpstream<GithubData>;

/// What GitHub answers when a secondary rate limit is hit (with `retry-after`,
/// as a 403 or a 429).
pub fn secondary_rate_limit_body() -> Value {
    json!({
        "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you \
                    reach out to GitHub Support for help, please include the request ID.",
        "documentation_url": format!("{RATE_LIMIT_DOCS}#about-secondary-rate-limits"),
    })
}

/// An answer before the headers every answer shares.
struct Answer {
    status: StatusCode,
    body: Value,
    headers: Vec<(&'static str, String)>,
}

impl Answer {
    fn ok(body: Value) -> Answer {
        Answer { status: StatusCode::OK, body, headers: Vec::new() }
    }

    /// GitHub's error body.
    fn error(status: StatusCode, message: &str, documentation_url: &str) -> Answer {
        let body = json!({
            "message": message,
            "documentation_url": documentation_url,
            "status": status.as_u16().to_string(),
        });
        Answer { status, body, headers: Vec::new() }
    }

    fn not_found() -> Answer {
        Answer::error(StatusCode::NOT_FOUND, "Not Found", DOCS)
    }

    fn validation_failed(message: &str) -> Answer {
        let mut answer = Answer::error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed", DOCS);
        answer.body["errors"] = json!([{"resource": "Repository", "code": "invalid", "message": message}]);
        answer
    }

    fn header(mut self, name: &'static str, value: String) -> Answer {
        self.headers.push((name, value));
        self
    }
}

fn rate_headers(headers: &mut HeaderMap, limit: u32, remaining: u32, reset_at: i64) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(reset_at));
    headers.insert("x-ratelimit-used", HeaderValue::from(limit - remaining));
    headers.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
}

/// `per_page` (default 30, at most 100) and `page` (from 1).
fn page_params(request: &RecordedRequest) -> (usize, usize) {
    let number = |name: &str| request.param(name).and_then(|v| v.parse::<usize>().ok()).filter(|n| *n > 0);
    (number("per_page").unwrap_or(DEFAULT_PER_PAGE).min(MAX_PER_PAGE), number("page").unwrap_or(1))
}

/// One page of `items`, with GitHub's `Link` header.
fn paged(request: &RecordedRequest, items: Vec<Value>) -> Answer {
    let (per_page, page) = page_params(request);
    let last = items.len().div_ceil(per_page).max(1);
    let body: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", page_url(request, page - 1)));
    }
    if page < last {
        links.push(format!("<{}>; rel=\"next\"", page_url(request, page + 1)));
        links.push(format!("<{}>; rel=\"last\"", page_url(request, last)));
    }
    if page > 1 {
        links.push(format!("<{}>; rel=\"first\"", page_url(request, 1)));
    }
    let answer = Answer::ok(Value::Array(body));
    match links.is_empty() {
        true => answer,
        false => answer.header("link", links.join(", ")),
    }
}

/// The request's URL on api.github.com (as GitHub writes its links), at another page.
fn page_url(request: &RecordedRequest, page: usize) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in request.query.iter().filter(|(name, _)| name != "page") {
        query.append_pair(name, value);
    }
    query.append_pair("page", &page.to_string());
    format!("{API}{}?{}", request.path, query.finish())
}

fn etag_of(body: &Value) -> String {
    let mut hasher = DefaultHasher::new();
    body.to_string().hash(&mut hasher);
    format!("\"{:016x}\"", hasher.finish())
}

fn created_at(event: &Value) -> Option<i64> {
    DateTime::parse_from_rfc3339(event["created_at"].as_str()?).ok().map(|t| t.timestamp_millis())
}

/// GitHub's times: whole seconds, UTC.
fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn owner_id(login: &str) -> i64 {
    match login {
        LOGIN => USER_ID,
        other => 1_000 + other.bytes().map(i64::from).sum::<i64>() * 31,
    }
}

/// A repository as the REST API shows it (most URL templates left out).
#[allow(clippy::too_many_arguments)]
fn repository(
    id: i64,
    owner: &str,
    name: &str,
    private: bool,
    language: &str,
    description: &str,
    created_ms: i64,
    pushed_ms: i64,
) -> Value {
    let full_name = format!("{owner}/{name}");
    let api = format!("{API}/repos/{full_name}");
    let non_empty = |text: &str| if text.is_empty() { Value::Null } else { json!(text) };
    json!({
        "id": id,
        "node_id": format!("R_kgDO{id:08}"),
        "name": name,
        "full_name": full_name,
        "private": private,
        "owner": {
            "login": owner,
            "id": owner_id(owner),
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", owner_id(owner)),
            "url": format!("{API}/users/{owner}"),
            "html_url": format!("https://github.com/{owner}"),
            "type": if owner.ends_with("-org") { "Organization" } else { "User" },
            "site_admin": false,
        },
        "html_url": format!("https://github.com/{full_name}"),
        "description": non_empty(description),
        "fork": false,
        "url": api,
        "forks_url": format!("{api}/forks"),
        "keys_url": format!("{api}/keys{{/key_id}}"),
        "issues_url": format!("{api}/issues{{/number}}"),
        "pulls_url": format!("{api}/pulls{{/number}}"),
        "hooks_url": format!("{api}/hooks"),
        "git_url": format!("git://github.com/{full_name}.git"),
        "ssh_url": format!("git@github.com:{full_name}.git"),
        "clone_url": format!("https://github.com/{full_name}.git"),
        "svn_url": format!("https://github.com/{full_name}"),
        "mirror_url": null,
        "homepage": null,
        "size": 100 + id % 900,
        "stargazers_count": id % 1_000,
        "watchers_count": id % 1_000,
        "forks_count": id % 97,
        "open_issues_count": id % 13,
        "language": non_empty(language),
        "has_issues": true,
        "has_wiki": true,
        "archived": false,
        "disabled": false,
        "visibility": if private { "private" } else { "public" },
        "default_branch": "main",
        "topics": [],
        "created_at": rfc3339(created_ms),
        "updated_at": rfc3339(pushed_ms),
        "pushed_at": rfc3339(pushed_ms),
    })
}

/// What the token's user may do there.
fn with_permissions(mut repository: Value, admin: bool) -> Value {
    repository["permissions"] =
        json!({"admin": admin, "maintain": admin, "push": admin, "triage": admin, "pull": true});
    repository
}

/// A deterministic commit SHA.
fn sha(n: u64) -> String {
    let word = |k: u64| (n.wrapping_add(k).wrapping_mul(2_654_435_761) % (1 << 32)) as u32;
    (0..5).map(|k| format!("{:08x}", word(k))).collect()
}

fn issue(repository: &str, number: u64) -> Value {
    json!({
        "number": number,
        "title": format!("Issue number {number}"),
        "state": "open",
        "html_url": format!("https://github.com/{repository}/issues/{number}"),
    })
}

/// An event as the events API shows it.
fn event(id: u64, kind: &str, repository: &Value, created_ms: i64, n: u64) -> Value {
    let name = repository["full_name"].as_str().unwrap_or_default();
    let payload = match kind {
        "PushEvent" => json!({
            "repository_id": repository["id"],
            "push_id": 20_000_000_000u64 + n,
            "size": 1,
            "distinct_size": 1,
            "ref": "refs/heads/main",
            "head": sha(n),
            "before": sha(n + 1),
            "commits": [{
                "sha": sha(n),
                "author": {"email": "octocat@github.com", "name": "The Octocat"},
                "message": format!("Update README ({n})"),
                "distinct": true,
                "url": format!("{API}/repos/{name}/commits/{}", sha(n)),
            }],
        }),
        "WatchEvent" => json!({"action": "started"}),
        "IssuesEvent" => json!({"action": "opened", "issue": issue(name, n)}),
        "IssueCommentEvent" => json!({
            "action": "created",
            "issue": issue(name, n),
            "comment": {
                "id": 1_000_000 + n,
                "body": "Looks good to me.",
                "html_url": format!("https://github.com/{name}/issues/{n}#issuecomment-{}", 1_000_000 + n),
            },
        }),
        "PullRequestEvent" => json!({
            "action": "opened",
            "number": n,
            "pull_request": {
                "number": n,
                "title": format!("Pull request {n}"),
                "state": "open",
                "html_url": format!("https://github.com/{name}/pull/{n}"),
            },
        }),
        _ => json!({}),
    };
    json!({
        "id": id.to_string(),
        "type": kind,
        "actor": {
            "id": USER_ID,
            "login": LOGIN,
            "display_login": LOGIN,
            "gravatar_id": "",
            "url": format!("{API}/users/{LOGIN}"),
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{USER_ID}?"),
        },
        "repo": {"id": repository["id"], "name": name, "url": format!("{API}/repos/{name}")},
        "payload": payload,
        "public": repository["private"] != true,
        "created_at": rfc3339(created_ms),
    })
}
