//! The offline demo: a fake upstream on loopback for each bundled plugin
//! that calls out (Monzo, Google Sheets, Spotify, GitHub, Oura), one group
//! connected to each and every instance type's integration, synced once at
//! start.

pub mod fake_github;
pub mod fake_google_sheets;
mod fake_monzo;
pub mod fake_oauth;
pub mod fake_oura;
pub mod fake_spotify;
pub mod upstream;

pub use fake_monzo::{FakeMonzo, MonzoDataset, transaction};
pub use upstream::{FakeApi, FakeUpstream, RecordedRequest};

use crate::Host;
use crate::store::groups::Credentials;
use crate::store::integrations::NewIntegration;
use crate::sync::RunRequest;
use anyhow::Result;
use fake_github::{FakeGithub, GithubData};
use fake_google_sheets::{FakeGoogleSheets, GoogleSheetsData, SAMPLE_SPREADSHEET_ID};
use fake_oura::{FakeOura, OuraData};
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
}

/// One plugin as the demo connects it.
struct DemoService {
    plugin_id: &'static str,
    base_url: String,
    /// The provider's hosts, all pointed at the fake.
    hosts: &'static [&'static str],
    credential: (&'static str, String),
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
        })
    }

    fn services(&self) -> Vec<DemoService> {
        let sheet = format!(r#"{{"spreadsheet_id":"{SAMPLE_SPREADSHEET_ID}"}}"#);
        vec![
            DemoService {
                plugin_id: "monzo",
                base_url: self.monzo.base_url(),
                hosts: &["api.monzo.com"],
                credential: ("access_token", self.monzo.access_token()),
                configs: Vec::new(),
            },
            DemoService {
                plugin_id: "google-sheets",
                base_url: self.google_sheets.base_url(),
                hosts: &["sheets.googleapis.com", "www.googleapis.com", "oauth2.googleapis.com"],
                credential: ("access_token", self.google_sheets.access_token()),
                configs: vec![("rows", sheet.clone()), ("spreadsheet", sheet)],
            },
            DemoService {
                plugin_id: "spotify",
                base_url: self.spotify.base_url(),
                hosts: &["api.spotify.com", "accounts.spotify.com"],
                credential: ("access_token", self.spotify.access_token()),
                configs: Vec::new(),
            },
            DemoService {
                plugin_id: "github",
                base_url: self.github.base_url(),
                hosts: &["api.github.com"],
                credential: ("api_key", self.github.access_token()),
                configs: Vec::new(),
            },
            DemoService {
                plugin_id: "oura",
                base_url: self.oura.base_url(),
                hosts: &["api.ouraring.com"],
                credential: ("access_token", self.oura.access_token()),
                configs: Vec::new(),
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

/// Connect a demo group to each fake and sync every integration once.
pub async fn run(host: &Host, upstreams: &DemoUpstreams) -> Result<()> {
    for service in upstreams.services() {
        if host.runner.plugins.get(service.plugin_id).is_none() {
            eprintln!("demo: plugin {} is not loaded; build it with `cargo xtask build-plugins`", service.plugin_id);
            continue;
        }
        run_service(host, &service).await?;
    }
    eprintln!("demo: see the records with `inlet records <integration id>`");
    Ok(())
}

async fn run_service(host: &Host, service: &DemoService) -> Result<()> {
    let store = host.store();
    let plugin = host.runner.plugins.get(service.plugin_id).expect("checked by the caller");
    let existing = store.groups().await?.into_iter().find(|g| g.plugin_id == service.plugin_id && g.name == GROUP_NAME);
    let group_id = match existing {
        Some(group) => group.id,
        None => {
            let (field, value) = &service.credential;
            let credentials = Credentials::new(BTreeMap::from([(field.to_string(), value.clone())]));
            store.insert_group(service.plugin_id, GROUP_NAME, &credentials).await?
        }
    };
    eprintln!("demo: fake {} at {}, group {group_id}", plugin.manifest.name, service.base_url);
    let existing = store.integrations().await?;
    for instance_type in &plugin.manifest.instance_types {
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
                    })
                    .await?
            }
        };
        let run = host.runner.run(&RunRequest::manual(id)).await?;
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
            run.error_message.map(|m| format!(" ({m})")).unwrap_or_default()
        );
    }
    Ok(())
}
