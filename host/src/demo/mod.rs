//! The offline demo: a fake upstream on loopback for each bundled plugin
//! that calls out (Monzo, Google Sheets, Spotify, GitHub, Oura, Hevy,
//! GoCardless, Slack), one group connected to each and every instance type's
//! integration, synced once at start; then a daily digest that reads them all.

pub mod fake_github;
pub mod fake_gocardless;
pub mod fake_google_sheets;
pub mod fake_hevy;
mod fake_monzo;
pub mod fake_oauth;
pub mod fake_oura;
pub mod fake_slack;
pub mod fake_spotify;
pub mod upstream;

pub use fake_monzo::{FakeMonzo, MonzoDataset, PageReads, transaction};
pub use upstream::{FakeApi, FakeUpstream, RecordedRequest};

use crate::Host;
use crate::schedule::Schedule;
use crate::store::groups::Credentials;
use crate::store::integrations::NewIntegration;
use crate::sync::RunRequest;
use anyhow::Result;
use fake_github::{FakeGithub, GithubData};
use fake_gocardless::{FakeGoCardless, GoCardlessData};
use fake_google_sheets::{FakeGoogleSheets, GoogleSheetsData, SAMPLE_SPREADSHEET_ID};
use fake_hevy::{FakeHevy, HevyData};
use fake_oura::{FakeOura, OuraData};
use fake_slack::{FakeSlack, SlackData};
use fake_spotify::{FakeSpotify, SpotifyData};
use std::collections::BTreeMap;

const GROUP_NAME: &str = "demo";

/// The demo's fake upstreams, kept running while the host serves.
pub struct DemoUpstreams {
    monzo: FakeMonzo,
    google_sheets: FakeGoogleSheets,
    spotify: FakeSpotify,
    github: FakeGithub,
    oura: FakeOura,
    hevy: FakeHevy,
    gocardless: FakeGoCardless,
    slack: FakeSlack,
}

/// One plugin as the demo connects it.
struct DemoService {
    plugin_id: &'static str,
    base_url: String,
    /// The provider's hosts, all pointed at the fake.
    hosts: &'static [&'static str],
    credentials: Vec<(&'static str, String)>,
    /// Config per instance type (default `{}`).
    configs: Vec<(&'static str, String)>,
}

impl DemoUpstreams {
    pub async fn start(now_ms: i64) -> Result<DemoUpstreams> {
        Ok(DemoUpstreams {
            monzo: FakeMonzo::start(MonzoDataset::sample(now_ms)).await?,
            google_sheets: FakeGoogleSheets::start(GoogleSheetsData::sample(now_ms)).await?,
            spotify: FakeSpotify::start(SpotifyData::sample(now_ms)).await?,
            github: FakeGithub::start(GithubData::sample(now_ms)).await?,
            oura: FakeOura::start(OuraData::sample(now_ms)).await?,
            hevy: FakeHevy::start(HevyData::sample(now_ms)).await?,
            gocardless: FakeGoCardless::start(GoCardlessData::sample(now_ms)).await?,
            slack: FakeSlack::start(SlackData::sample(now_ms)).await?,
        })
    }

    fn services(&self) -> Vec<DemoService> {
        let sheet = format!(r#"{{"spreadsheet_id":"{SAMPLE_SPREADSHEET_ID}"}}"#);
        vec![
            DemoService {
                plugin_id: "monzo",
                base_url: self.monzo.base_url(),
                hosts: &["api.monzo.com"],
                credentials: vec![("access_token", self.monzo.access_token())],
                configs: Vec::new(),
            },
            DemoService {
                plugin_id: "google-sheets",
                base_url: self.google_sheets.base_url(),
                hosts: &["sheets.googleapis.com", "www.googleapis.com", "oauth2.googleapis.com"],
                credentials: vec![("access_token", self.google_sheets.access_token())],
                configs: vec![("rows", sheet.clone()), ("spreadsheet", sheet)],
            },
            DemoService {
                plugin_id: "spotify",
                base_url: self.spotify.base_url(),
                hosts: &["api.spotify.com", "accounts.spotify.com"],
                credentials: vec![("access_token", self.spotify.access_token())],
                configs: Vec::new(),
            },
            DemoService {
                plugin_id: "github",
                base_url: self.github.base_url(),
                hosts: &["api.github.com"],
                credentials: vec![("api_key", self.github.access_token())],
                configs: Vec::new(),
            },
            DemoService {
                plugin_id: "oura",
                base_url: self.oura.base_url(),
                hosts: &["api.ouraring.com"],
                credentials: vec![("access_token", self.oura.access_token())],
                configs: Vec::new(),
            },
            DemoService {
                plugin_id: "hevy",
                base_url: self.hevy.base_url(),
                hosts: &["api.hevyapp.com"],
                credentials: vec![("api_key", fake_hevy::API_KEY.to_string())],
                configs: Vec::new(),
            },
            DemoService {
                plugin_id: "gocardless",
                base_url: self.gocardless.base_url(),
                hosts: &["bankaccountdata.gocardless.com"],
                // The host exchanges the pair for tokens, as it would with GoCardless.
                credentials: vec![
                    ("secret_id", fake_gocardless::SECRET_ID.to_string()),
                    ("secret_key", fake_gocardless::SECRET_KEY.to_string()),
                ],
                configs: Vec::new(),
            },
            DemoService {
                plugin_id: "slack",
                base_url: self.slack.base_url(),
                hosts: &["slack.com"],
                credentials: vec![
                    ("api_key", fake_slack::TOKEN.to_string()),
                    ("webhook_secret", fake_slack::SIGNING_SECRET.to_string()),
                ],
                configs: vec![("history", format!(r#"{{"channel":"{}"}}"#, fake_slack::SAMPLE_CHANNEL))],
            },
        ]
    }

    /// Every provider host and the fake it goes to, for the host's upstream overrides.
    pub fn overrides(&self) -> Vec<(&'static str, String)> {
        self.services()
            .into_iter()
            .flat_map(|service| service.hosts.iter().map(move |host| (*host, service.base_url.clone())))
            .collect()
    }
}

/// Connect a demo group to each fake and sync every integration once, then
/// digest what they brought.
pub async fn run(host: &Host, upstreams: &DemoUpstreams) -> Result<()> {
    let mut groups = Vec::new();
    for service in upstreams.services() {
        if host.runner.plugins.get(service.plugin_id).is_none() {
            eprintln!("demo: plugin {} is not loaded; build it with `cargo xtask build-plugins`", service.plugin_id);
            continue;
        }
        eprintln!("demo: fake {} at {}", service.plugin_id, service.base_url);
        groups.push(run_service(host, &service, &[]).await?);
    }
    if host.runner.plugins.get("digest").is_some() {
        let digest = DemoService {
            plugin_id: "digest",
            base_url: String::new(),
            hosts: &[],
            credentials: Vec::new(),
            configs: Vec::new(),
        };
        run_service(host, &digest, &groups).await?;
    }
    eprintln!("demo: see the records with `inlet records <integration id>`");
    Ok(())
}

/// Connect `service`'s demo group (reading the records of `reads`) and run
/// each of its instance types once. Returns the group's id.
async fn run_service(host: &Host, service: &DemoService, reads: &[i64]) -> Result<i64> {
    let store = host.store();
    let plugin = host.runner.plugins.get(service.plugin_id).expect("checked by the caller");
    let existing = store.groups().await?.into_iter().find(|g| g.plugin_id == service.plugin_id && g.name == GROUP_NAME);
    let group_id = match existing {
        Some(group) => group.id,
        None => {
            let fields = service.credentials.iter().map(|(field, value)| (field.to_string(), value.clone()));
            let credentials = Credentials::new(fields.collect::<BTreeMap<_, _>>());
            store.insert_group_reading(service.plugin_id, GROUP_NAME, &credentials, reads).await?
        }
    };
    let existing = store.integrations().await?;
    // Webhook-only instance types (Slack's messages) have nothing to fetch.
    let fetched = plugin.manifest.instance_types.iter().filter(|t| t.default_schedule != Schedule::Manual);
    for instance_type in fetched {
        let id = match existing.iter().find(|i| i.group_id == group_id && i.instance_type == instance_type.id) {
            Some(integration) => integration.id,
            None => {
                let config = service.configs.iter().find(|(id, _)| *id == instance_type.id).map(|(_, c)| c.as_str());
                store
                    .insert_integration(&NewIntegration {
                        plugin_id: service.plugin_id,
                        instance_type: &instance_type.id,
                        group_id,
                        name: &format!("Demo {}", instance_type.name),
                        config: config.unwrap_or("{}"),
                        schedule: None,
                        first_due_at: None,
                        paused_reason: None,
                    })
                    .await?
            }
        };
        let runs = host.runner.run(&RunRequest::manual(id)).await?;
        let run = runs.outcome();
        let r = run.records;
        eprintln!(
            "demo: {} integration {id} ({}) run {} {}: {} created, {} updated, {} unchanged, {} deleted{}",
            service.plugin_id,
            instance_type.id,
            run.id,
            run.status.as_str(),
            r.created,
            r.updated,
            r.unchanged,
            r.deleted,
            run.error_message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default()
        );
    }
    Ok(group_id)
}
