//! OAuth groups end to end, against the fake Monzo's OAuth provider: the
//! authorization-code flow through `inlet serve` with its `state` check,
//! refresh before expiry and on a 401, a spent refresh token leading to
//! needs-reconnect, single-flight refresh across processes, and no token or
//! client secret in the database or the logs.

mod support;

use inlet::auth::oauth::{TokenEndpoint, TokenError, authorization_url, pkce_challenge};
use inlet::demo::fake_oauth::{CLIENT_ID, CLIENT_SECRET};
use inlet::demo::{FakeMonzo, MonzoDataset};
use inlet::domain::group_status::GroupStatus;
use inlet::domain::manifest::OAuth2Endpoints;
use inlet::outbound::UpstreamOverrides;
use inlet::settings::{OAuthClient, Secret, Settings, SettingsArgs};
use inlet::store::groups::{ApprovedPlugin, Credentials};
use inlet::{Host, HostOptions};
use serde_json::Value;
use std::sync::Arc;
use support::{Inlet, bundled_plugin, eventually, fresh_postgres_database, test_plugin, text};

/// An installation with the monzo plugin, pointed at `fake`, with the
/// fake's OAuth client configured.
fn monzo_inlet(fake: &FakeMonzo) -> Inlet {
    Inlet::with_plugins(&[bundled_plugin("monzo")])
        .env("INLET_UPSTREAM_OVERRIDE", &format!("api.monzo.com={}", fake.base_url()))
        .env("INLET_OAUTH_MONZO_CLIENT_ID", CLIENT_ID)
        .env("INLET_OAUTH_MONZO_CLIENT_SECRET", CLIENT_SECRET)
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Go through the browser side of connecting group `name`: start on inlet,
/// approve at the fake provider, follow the callback. Returns the callback's
/// status and page.
async fn connect(inlet: &Inlet, serve_url: &str, fake: &FakeMonzo, name: &str) -> (u16, String) {
    // An operator makes the start link; the person approving opens it.
    let link = inlet.json(&["--public-url", serve_url, "groups", "connect", "monzo", "--name", name, "--json"]).await;
    let link = link["url"].as_str().unwrap();
    assert!(link.starts_with(&format!("{serve_url}/oauth/monzo/start?ticket=")), "{link}");
    // Opening it shows whom it connects and uses nothing up: link previews
    // and mail scanners open links before the person does.
    for _ in 0..2 {
        let (status, page) = get(link).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains(&format!("as the group &quot;{name}&quot;")) && page.contains("<form method=post>"));
    }
    // Its button goes on to the provider.
    let ticket = url::Url::parse(link).unwrap().query_pairs().find(|(k, _)| k == "ticket").unwrap().1.into_owned();
    let start_url = link.split('?').next().unwrap();
    let start = browser().post(start_url).form(&[("ticket", ticket.as_str())]).send().await.unwrap();
    assert_eq!(start.status(), 303, "start redirects to the provider");
    let (status, page) = get(link).await;
    assert_eq!(status, 400, "a start link works once");
    assert!(page.contains("already used"), "{page}");
    let authorize = start.headers()["location"].to_str().unwrap().to_string();
    assert!(authorize.starts_with("https://auth.monzo.com/?"), "{authorize}");
    // The browser keeps the cookie that ties the flow to it.
    let set_cookie = start.headers()["set-cookie"].to_str().unwrap();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let callback = fake.oauth().approve(&authorize).unwrap();
    assert!(callback.as_str().starts_with(&format!("{serve_url}/oauth/monzo/callback?")), "{callback}");
    // The same callback in a browser without the cookie (login CSRF) is refused
    // and does not use up the state.
    let (status, page) = get(callback.as_str()).await;
    assert_eq!(status, 400);
    assert!(page.contains("started in another browser"), "{page}");
    let response = browser().get(callback.as_str()).header("cookie", cookie).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn get(url: &str) -> (u16, String) {
    let response = browser().get(url).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// `inlet sync <id> --json`: the run, and what the process logged.
async fn sync_logged(inlet: &Inlet, integration: i64) -> (Value, String) {
    let output = inlet.run(&["sync", &integration.to_string(), "--json"]).await;
    let runs = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no run printed ({e}): {}", text(&output.stderr)));
    let run = support::sync_outcome(runs);
    (run, text(&output.stderr))
}

async fn sync(inlet: &Inlet, integration: i64) -> Value {
    sync_logged(inlet, integration).await.0
}

fn paths(fake: &FakeMonzo) -> Vec<(String, bool)> {
    fake.take_requests().into_iter().map(|r| (r.path, r.authorized)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_connects_in_the_browser_and_its_tokens_refresh_until_the_provider_refuses() {
    let fake = FakeMonzo::start(MonzoDataset::sample(chrono::Utc::now().timestamp_millis())).await.unwrap();
    let inlet = monzo_inlet(&fake).env("INLET_LOG", "warn,inlet=debug");
    let (mut serve, url) = inlet.spawn_listening(&["serve", "--listen", "127.0.0.1:0"]).await;

    // A callback whose state inlet never issued is refused.
    let forged = browser()
        .get(format!("{url}/oauth/monzo/callback?code=authcode_1&state=forged"))
        .header("cookie", format!("inlet_oauth={}", inlet::auth::connect::browser_binding("forged")))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let page = forged.text().await.unwrap();
    assert!(page.contains("state: this authorization is unknown"), "{page}");
    // Only an operator's start link starts a flow: none, a forged one, or one
    // for another plugin is refused, and an unknown plugin has no links.
    let (status, page) = get(&format!("{url}/oauth/monzo/start?group=personal")).await;
    assert_eq!(status, 403);
    assert!(page.contains("start link from an operator"), "{page}");
    let (status, page) = get(&format!("{url}/oauth/monzo/start?ticket=v1%3AAAAA")).await;
    assert_eq!(status, 400);
    assert!(page.contains("ticket: this start link is not valid"), "{page}");
    let link = inlet.json(&["--public-url", &url, "groups", "connect", "monzo", "--name", "x", "--json"]).await;
    let other = link["url"].as_str().unwrap().replace("/oauth/monzo/", "/oauth/nope/");
    assert_eq!(get(&other).await.0, 400);
    let refused = inlet.run(&["groups", "connect", "nope", "--name", "x"]).await;
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("plugin \"nope\" is not loaded"), "{}", text(&refused.stderr));

    let (status, page) = connect(&inlet, &url, &fake, "personal").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("monzo is connected as group &quot;personal&quot;"), "{page}");
    let groups = inlet.json(&["groups", "list", "--json"]).await;
    assert_eq!(groups[0]["name"], "personal");
    assert_eq!(groups[0]["status"], "ok");
    let group = groups[0]["id"].as_i64().unwrap().to_string();
    let mut integrations = Vec::new();
    for instance_type in ["accounts", "pots"] {
        let created =
            inlet.json(&["integrations", "add", "monzo", instance_type, "--group", &group, "--manual", "--json"]).await;
        integrations.push(created["id"].as_i64().unwrap());
    }
    let accounts = integrations[0];

    // The code's token works as it is.
    paths(&fake); // forget the code exchange
    assert_eq!(sync(&inlet, accounts).await["status"], "success");
    assert_eq!(fake.oauth().refresh_calls(), 0);
    assert!(paths(&fake).iter().all(|(_, authorized)| *authorized));

    // Upstream refuses the token: one refresh, and the request is sent again.
    fake.oauth().expire_access_token();
    assert_eq!(sync(&inlet, accounts).await["status"], "success");
    assert_eq!(fake.oauth().refresh_calls(), 1);
    assert_eq!(
        paths(&fake)[..3],
        [("/accounts".into(), false), ("/oauth2/token".into(), false), ("/accounts".into(), true)]
    );

    // A token about to expire is refreshed before any request goes out.
    fake.oauth().set_token_lifetime(60);
    fake.oauth().expire_access_token();
    assert_eq!(sync(&inlet, accounts).await["status"], "success"); // 401, refresh: the new token lives 60 s
    paths(&fake);
    assert_eq!(sync(&inlet, accounts).await["status"], "success");
    assert_eq!(fake.oauth().refresh_calls(), 3);
    let seen = paths(&fake);
    assert_eq!(seen[0], ("/oauth2/token".into(), false), "{seen:?}");
    assert!(seen[1..].iter().all(|(_, authorized)| *authorized), "{seen:?}");

    // The database refuses to store the rotated tokens for a moment (busy,
    // or cut off) while the provider has spent the old refresh token: the
    // write is tried again, not the new tokens dropped.
    let store = inlet.store().await;
    let refuse = "CREATE TRIGGER refuse_credentials BEFORE UPDATE OF credentials ON groups
                  BEGIN SELECT RAISE(ABORT, 'injected fault'); END";
    sqlx::query(refuse).execute(store.pool()).await.unwrap();
    let calls = fake.oauth().refresh_calls();
    let refreshing = tokio::spawn(inlet.command(&["sync", &accounts.to_string(), "--json"]).output());
    eventually(30, "the refresh", || async { (fake.oauth().refresh_calls() > calls).then_some(()) }).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    sqlx::query("DROP TRIGGER refuse_credentials").execute(store.pool()).await.unwrap();
    let output = refreshing.await.unwrap().unwrap();
    let run = support::sync_outcome(serde_json::from_slice(&output.stdout).unwrap());
    assert_eq!(run["status"], "success", "{run:#}\n{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("storing the refreshed token failed; trying again"),
        "{}",
        text(&output.stderr)
    );
    // The next refresh spends the token that was stored.
    assert_eq!(sync(&inlet, accounts).await["status"], "success");
    assert_eq!(fake.oauth().refresh_calls(), calls + 2);
    assert_eq!(inlet.json(&["groups", "list", "--json"]).await[0]["status"], "ok");

    // The refresh token is revoked: the group needs reconnecting, all its
    // integrations pause with that reason, and the operator is told.
    fake.oauth().revoke_refresh_token();
    let (run, logs) = sync_logged(&inlet, accounts).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error_class"], "unauthorized");
    assert!(run["error_message"].as_str().unwrap().contains("invalid_grant"), "{run:#}");
    assert_eq!(logs.matches("integration paused").count(), 2, "one notification per integration: {logs}");
    assert!(logs.contains("needs-reconnect"), "{logs}");
    assert_eq!(inlet.json(&["groups", "list", "--json"]).await[0]["status"], "needs-reconnect");
    for integration in inlet.json(&["integrations", "list", "--json"]).await.as_array().unwrap() {
        assert_eq!(integration["paused_reason"], "needs-reconnect", "{integration:#}");
    }
    // Runs of a group that needs reconnecting do not call the provider again.
    let calls = fake.oauth().refresh_calls();
    assert_eq!(sync(&inlet, integrations[1]).await["error_class"], "unauthorized");
    assert_eq!(fake.oauth().refresh_calls(), calls);

    // Connecting again under the same name resumes them.
    fake.oauth().set_token_lifetime(21_600);
    let (status, page) = connect(&inlet, &url, &fake, "personal").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(inlet.json(&["groups", "list", "--json"]).await.as_array().unwrap().len(), 1, "the same group");
    assert_eq!(inlet.json(&["groups", "list", "--json"]).await[0]["status"], "ok");
    for integration in inlet.json(&["integrations", "list", "--json"]).await.as_array().unwrap() {
        assert!(integration["paused_reason"].is_null(), "{integration:#}");
    }
    assert_eq!(sync(&inlet, accounts).await["status"], "success");

    // No token, refresh token or client secret in the database or the logs.
    serve.kill().await.unwrap();
    let mut haystack = Vec::new();
    for file in ["inlet.db", "inlet.db-wal"] {
        haystack.extend(std::fs::read(inlet.data_dir().join(file)).unwrap_or_default());
    }
    haystack.extend(logs.as_bytes());
    let secrets = fake.oauth().issued_secrets();
    assert!(secrets.len() >= 10, "{} tokens issued", secrets.len());
    for secret in secrets.iter().map(String::as_str).chain([CLIENT_SECRET]) {
        assert!(
            !haystack.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} is stored or logged in plaintext"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_jobs_in_two_processes_refresh_an_expiring_token_once() {
    let fake = FakeMonzo::start(MonzoDataset::sample(chrono::Utc::now().timestamp_millis())).await.unwrap();
    let database = fresh_postgres_database().await;
    let inlet = monzo_inlet(&fake).env("DATABASE_URL", &database).config("[queues.fetch]\nconcurrency = 16\n");
    let (_serve, url) = inlet.spawn_listening(&["serve", "--listen", "127.0.0.1:0"]).await;
    let _worker = inlet.spawn(&["worker", "--listen", "127.0.0.1:0"]).await;

    // The granted token expires within the refresh margin.
    fake.oauth().set_token_lifetime(90);
    let (status, page) = connect(&inlet, &url, &fake, "shared").await;
    assert_eq!(status, 200, "{page}");
    fake.oauth().set_token_lifetime(21_600);
    let group = inlet.json(&["groups", "list", "--json"]).await[0]["id"].as_i64().unwrap().to_string();
    for _ in 0..20 {
        inlet.json(&["integrations", "add", "monzo", "accounts", "--group", &group, "--manual", "--json"]).await;
    }
    paths(&fake);

    // Slow answers keep each process's slots busy, so both claim jobs.
    fake.set_latency(std::time::Duration::from_millis(1_500));
    let output = inlet.run(&["sync", "--plugin", "monzo", "--force"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let store = inlet.store_at(&database).await;
    eventually(30, "both processes running jobs at once", || async {
        let owners: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT lease_owner) FROM jobs WHERE state = 'running'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        (owners == 2).then_some(())
    })
    .await;
    let finished = eventually(60, "20 finished fetches", || async {
        let runs: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, integration_id FROM sync_runs WHERE status IN ('success', 'failed') AND queue = 'fetch'
                   AND integration_id IN (SELECT id FROM integrations WHERE plugin_id = 'monzo')",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        (runs.len() == 20).then_some(runs)
    })
    .await;
    assert!(finished.iter().all(|(status, _)| status == "success"), "{finished:?}");
    assert_eq!(fake.oauth().refresh_calls(), 1, "one refresh for the whole group");
    let seen = paths(&fake);
    assert_eq!(seen.iter().filter(|(path, _)| path == "/accounts").count(), 20);
    assert!(seen.iter().all(|(path, authorized)| path == "/oauth2/token" || *authorized), "{seen:?}");
}

/// The fake Monzo's OAuth provider, reached directly rather than through a
/// host: its endpoints, the fake's client, and its token endpoint.
fn fake_provider(fake: &FakeMonzo, pkce: bool) -> (OAuth2Endpoints, OAuthClient, TokenEndpoint) {
    let endpoints = OAuth2Endpoints {
        authorize_url: "https://auth.monzo.com/".into(),
        token_url: "https://api.monzo.com/oauth2/token".into(),
        scopes: vec![],
        refresh_token_rotates: true,
        pkce,
    };
    let client = OAuthClient { client_id: CLIENT_ID.into(), client_secret: Secret::new(CLIENT_SECRET.into()) };
    let tokens = TokenEndpoint {
        client: reqwest::Client::new(),
        overrides: Arc::new(UpstreamOverrides::parse_list(&format!("api.monzo.com={}", fake.base_url())).unwrap()),
    };
    (endpoints, client, tokens)
}

const FAKE_REDIRECT: &str = "http://127.0.0.1:1/oauth/monzo/callback";

/// An authorization code from the fake provider, bound to `verifier`'s challenge if given.
fn fake_code(fake: &FakeMonzo, endpoints: &OAuth2Endpoints, verifier: Option<&str>) -> String {
    let challenge = verifier.map(pkce_challenge);
    let url = authorization_url(endpoints, CLIENT_ID, FAKE_REDIRECT, "s", challenge.as_deref()).unwrap();
    let back = fake.oauth().approve(url.as_str()).unwrap();
    back.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned()
}

/// A plugin whose token URL is on a host of its own, as Spotify's and
/// Google's are: the client secret and refresh tokens go there only if the
/// operator's settings allow that host and the group was approved for it.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_go_only_to_a_token_url_on_approved_hosts() {
    let fake = FakeMonzo::start(MonzoDataset::default()).await.unwrap();
    let inlet = Inlet::with_plugins(&[test_plugin("oauth-elsewhere")])
        .env("INLET_UPSTREAM_OVERRIDE", &format!("api.monzo.com={0},tokens.test={0}", fake.base_url()))
        .env("INLET_OAUTH_OAUTH_ELSEWHERE_CLIENT_ID", CLIENT_ID)
        .env("INLET_OAUTH_OAUTH_ELSEWHERE_CLIENT_SECRET", CLIENT_SECRET);

    // Settings that leave the token host out: no account can be connected.
    let narrowed = inlet.config("[plugins.oauth-elsewhere]\nhosts = [\"api.monzo.com\"]\n");
    let output = narrowed.run(&["groups", "connect", "oauth-elsewhere", "--name", "mine"]).await;
    assert!(!output.status.success());
    let error = text(&output.stderr);
    assert!(
        error.contains("its token URL https://tokens.test/oauth2/token is not on its approved hosts (api.monzo.com)"),
        "{error}"
    );
    let inlet = narrowed.config("");

    // A group approved for an older file of the plugin, whose token URL was
    // on the API's host: the token host is new and not yet approved.
    let (endpoints, client, tokens) = fake_provider(&fake, false);
    let code = fake_code(&fake, &endpoints, None);
    let grant = tokens.exchange_code(&endpoints, &client, &code, FAKE_REDIRECT, None).await.unwrap();
    let expired = grant.into_credentials(None, 0);
    let store = inlet.store().await;
    let group = store.insert_group("oauth-elsewhere", "mine", &expired).await.unwrap();
    let older = ApprovedPlugin { sha256: "an-older-file".into(), hosts: vec!["api.monzo.com".into()] };
    assert!(store.approve_plugin(group, &older).await.unwrap());
    let add =
        ["integrations", "add", "oauth-elsewhere", "accounts", "--group", &group.to_string(), "--manual", "--json"];
    let integration = inlet.json(&add).await["id"].as_i64().unwrap();
    let refused = sync(&inlet, integration).await;
    assert_eq!(refused["status"], "failed", "{refused:#}");
    let message = refused["error_message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "the token URL https://tokens.test/oauth2/token is not on the hosts group {group} was approved for"
        )),
        "{message}"
    );
    assert_eq!(fake.oauth().refresh_calls(), 0, "the refresh token stayed home");

    assert!(inlet.run(&["groups", "approve", &group.to_string()]).await.status.success());
    let run = sync(&inlet, integration).await;
    assert_eq!(run["status"], "success", "{run:#}");
    assert_eq!(fake.oauth().refresh_calls(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn pkce_binds_the_code_to_the_verifier() {
    let fake = FakeMonzo::start(MonzoDataset::default()).await.unwrap();
    let (endpoints, client, tokens) = fake_provider(&fake, true);
    let redirect = FAKE_REDIRECT;
    let code = |verifier: &str| fake_code(&fake, &endpoints, Some(verifier));
    let stolen = code("the-verifier-only-inlet-knows-0123456789abc");
    let refused = tokens.exchange_code(&endpoints, &client, &stolen, redirect, Some("a-guess")).await;
    assert!(matches!(refused, Err(TokenError::InvalidGrant(m)) if m.contains("code_verifier")));
    let granted = tokens
        .exchange_code(
            &endpoints,
            &client,
            &code("verifier-2-0123456789abcdefghijklmnop"),
            redirect,
            Some("verifier-2-0123456789abcdefghijklmnop"),
        )
        .await;
    assert!(granted.is_ok_and(|g| g.refresh_token.is_some()));
}

/// A refresh outlives the call that started it (the plugin call's deadline,
/// a lost job lease, shutdown), and the group stays its only refresh until
/// it ends: another call meanwhile must not send the spent refresh token
/// again. It did: the caller's lock went with the cancelled call, the
/// lease is the same process's, and the provider refused the second use,
/// so a group holding a valid token was marked for reconnecting.
#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_whose_caller_gave_up_is_still_the_only_one() {
    let fake = FakeMonzo::start(MonzoDataset::sample(chrono::Utc::now().timestamp_millis())).await.unwrap();
    let inlet = Inlet::with_plugins(&[bundled_plugin("monzo")])
        .config(&format!("[oauth.monzo]\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n"));
    let args = SettingsArgs {
        data_dir: Some(inlet.data_dir()),
        database_url: None,
        plugins_dir: Some(inlet.plugins_dir()),
        config_file: Some(inlet.config_file()),
        upstream_override: Some(format!("api.monzo.com={}", fake.base_url())),
        public_url: None,
    };
    let host = Host::start(&Settings::resolve(&args).unwrap(), HostOptions::default()).await.unwrap();
    let fields = [("access_token", fake.access_token()), ("refresh_token", fake.oauth().grant_refresh_token())];
    let credentials = Credentials::new(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
    let group = host.store().insert_group("monzo", "shared", &credentials).await.unwrap();
    let (seen, _) = host.store().group_credentials(group).await.unwrap();
    let oauth = &host.runner.oauth;
    fake.take_requests();

    // The upstream refused the token; the caller gives up while the
    // provider is answering its refresh.
    let first = oauth.fresh_credentials(group, &seen, true);
    let token_requested = async {
        while !fake.take_requests().iter().any(|request| request.path == "/oauth2/token") {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    };
    tokio::select! {
        outcome = first => panic!("the refresh ended before the provider answered it (ok: {})", outcome.is_ok()),
        () = token_requested => {}
    }

    // Another integration of the group is refused too, with the same token.
    let fresh = oauth.fresh_credentials(group, &seen, true).await.expect("the refreshed credentials");
    assert_eq!(fake.oauth().refresh_calls(), 1, "the refresh token was sent twice");
    assert_eq!(fresh.get("access_token"), Some(fake.access_token().as_str()));
    let (_, status) = host.store().group_credentials(group).await.unwrap();
    assert_eq!(status, GroupStatus::Ok);
}
