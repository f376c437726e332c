//! The offline demo: a fake Monzo on loopback, one group connected to it and
//! the plugin's four integrations, synced once at start.

mod fake_monzo;
pub mod fake_oauth;

pub use fake_monzo::{FakeMonzo, MonzoDataset, RecordedRequest, transaction};

use crate::Host;
use crate::store::groups::Credentials;
use crate::store::integrations::NewIntegration;
use crate::sync::RunRequest;
use anyhow::{Context, Result};
use std::collections::BTreeMap;

const GROUP_NAME: &str = "demo";

pub async fn run(host: &Host, fake: &FakeMonzo) -> Result<()> {
    let store = host.store();
    let plugin = host
        .runner
        .plugins
        .get("monzo")
        .context("the demo needs the monzo plugin: build it with `cargo xtask build-plugins`")?;
    let group_id = match store.groups().await?.into_iter().find(|g| g.plugin_id == "monzo" && g.name == GROUP_NAME) {
        Some(group) => group.id,
        None => {
            let credentials = Credentials::new(BTreeMap::from([("access_token".to_string(), fake.access_token())]));
            store.insert_group("monzo", GROUP_NAME, &credentials).await?
        }
    };
    let existing = store.integrations().await?;
    eprintln!("demo: fake Monzo at {}, group {group_id}", fake.base_url());
    for instance_type in &plugin.manifest.instance_types {
        let id = match existing.iter().find(|i| i.group_id == group_id && i.instance_type == instance_type.id) {
            Some(integration) => integration.id,
            None => {
                store
                    .insert_integration(&NewIntegration {
                        plugin_id: "monzo",
                        instance_type: &instance_type.id,
                        group_id,
                        name: &format!("Demo {}", instance_type.name),
                        config: "{}",
                        schedule: None,
                        first_due_at: None,
                    })
                    .await?
            }
        };
        let run = host.runner.run(&RunRequest::manual(id)).await?;
        let r = run.records;
        eprintln!(
            "demo: integration {id} ({}) run {} {}: {} created, {} updated, {} unchanged, {} deleted{}",
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
    eprintln!("demo: see the records with `inlet records <integration id>`");
    Ok(())
}
