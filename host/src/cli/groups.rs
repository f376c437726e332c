use super::{CredentialArgs, print_json};
use crate::Host;
use crate::auth::bank_connect::BankConnectInput;
use crate::operations::groups::{self, NewGroupInput};
use anyhow::Result;

/// Where `inlet serve` listens unless told otherwise (`--public-url` overrides).
const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, clap::Subcommand)]
pub enum GroupsCommand {
    /// Connect an account with an API key, access token, basic-auth login,
    /// secret pair or webhook secret. OAuth plugins connect in a browser
    /// instead: see `connect`.
    Add(Box<AddGroupArgs>),
    /// Print a link that connects (or reconnects) an OAuth account in a
    /// browser, through `inlet serve` at the public URL. It works for an hour.
    Connect {
        /// Plugin id, e.g. monzo.
        plugin: String,
        /// The group's name, e.g. "personal".
        #[arg(long)]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List connected accounts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Let the group's runs reach the hosts its plugin's current file
    /// declares (needed when a new plugin version adds hosts).
    Approve {
        /// Group id.
        id: i64,
    },
    /// The banks a secret-pair group (GoCardless) can connect, in a country.
    Institutions {
        /// Group id.
        id: i64,
        /// Two letters (ISO 3166), e.g. gb.
        #[arg(long)]
        country: String,
        #[arg(long)]
        json: bool,
    },
    /// Connect (or reconnect) a bank to a secret-pair group: prints the link
    /// the account holder opens to consent at their bank, which then comes
    /// back to `inlet serve` at the public URL.
    ConnectBank {
        /// Group id.
        id: i64,
        /// The bank's id, from `institutions`.
        #[arg(long)]
        institution: String,
        /// Days of transaction history to read.
        #[arg(long, default_value_t = 90)]
        max_historical_days: u32,
        /// Days the access lasts (most banks allow at most 90).
        #[arg(long, default_value_t = 90)]
        access_valid_for_days: u32,
        #[arg(long)]
        json: bool,
    },
}

/// `groups add`'s arguments (boxed: they dwarf the other commands').
#[derive(Debug, clap::Args)]
pub struct AddGroupArgs {
    /// Plugin id, e.g. monzo.
    plugin: String,
    /// A name to tell this account apart, e.g. "personal".
    #[arg(long)]
    name: String,
    #[command(flatten)]
    credentials: CredentialArgs,
    /// Shared secret that signs the service's webhook deliveries (prefer the environment variable).
    #[arg(long, env = "INLET_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Secret id the host exchanges for access tokens, with --secret-key (GoCardless).
    #[arg(long, env = "INLET_SECRET_PAIR_ID", hide_env_values = true, requires = "secret_key")]
    secret_id: Option<String>,
    /// Secret key that goes with --secret-id (prefer the environment variable).
    #[arg(long, env = "INLET_SECRET_PAIR_KEY", hide_env_values = true, requires = "secret_id")]
    secret_key: Option<String>,
    /// A group whose records this group's tasks may read (repeat for more), e.g. a digest's sources.
    #[arg(long = "reads", value_name = "GROUP")]
    reads: Vec<i64>,
    #[arg(long)]
    json: bool,
}

/// Where browsers reach `inlet serve`.
fn public_base(host: &Host) -> String {
    host.settings.public_url.as_ref().map_or(DEFAULT_PUBLIC_URL.to_string(), |u| u.to_string())
}

pub async fn run(host: &Host, command: GroupsCommand) -> Result<()> {
    match command {
        GroupsCommand::Add(args) => {
            let AddGroupArgs { plugin, name, credentials, webhook_secret, secret_id, secret_key, reads, json } = *args;
            let CredentialArgs { access_token, refresh_token, api_key, username, password } = credentials;
            let input = NewGroupInput {
                plugin,
                name,
                access_token,
                refresh_token,
                api_key,
                username,
                password,
                webhook_secret,
                secret_id,
                secret_key,
                reads,
            };
            let group = groups::create(host, input).await?;
            if json {
                print_json(&serde_json::json!({ "id": group.id }))
            } else {
                println!("created group {} ({}, {})", group.id, group.plugin_id, group.name);
                Ok(())
            }
        }
        GroupsCommand::Institutions { id, country, json } => {
            let institutions = host.runner.oauth.institutions(id, &country).await?;
            if json {
                return print_json(&institutions);
            }
            for institution in institutions.as_array().into_iter().flatten() {
                let days = institution["transaction_total_days"].as_str().unwrap_or("?");
                let (bank, name) = (institution["id"].as_str(), institution["name"].as_str());
                println!("{:<40} {} ({days} days of history)", bank.unwrap_or("?"), name.unwrap_or("?"));
            }
            Ok(())
        }
        GroupsCommand::ConnectBank { id, institution, max_historical_days, access_valid_for_days, json } => {
            let input = BankConnectInput { institution_id: institution, max_historical_days, access_valid_for_days };
            let link = host.runner.oauth.start_bank_connect(id, &input, &public_base(host)).await?;
            if json {
                return print_json(&link);
            }
            println!("The account holder opens this to consent at their bank:\n{}", link.link);
            Ok(())
        }
        GroupsCommand::Connect { plugin, name, json } => {
            let base = public_base(host);
            let (url, expires_at) = host.runner.oauth.start_link(&plugin, &name, &base)?;
            if json {
                return print_json(&serde_json::json!({ "url": url, "expires_at": expires_at }));
            }
            println!("Open this in the browser that will approve access (it works for an hour):\n{url}");
            Ok(())
        }
        GroupsCommand::Approve { id } => {
            let approved = groups::approve(host, id).await?;
            println!(
                "group {id} may now reach {} (plugin file sha256 {})",
                approved.hosts.join(", "),
                &approved.sha256[..12]
            );
            Ok(())
        }
        GroupsCommand::List { json } => {
            let groups = groups::list(host, Default::default(), None, i64::MAX).await?;
            if json {
                return print_json(&groups);
            }
            println!("{:<6} {:<16} {:<24} STATUS", "ID", "PLUGIN", "NAME");
            for group in groups {
                let reason = group.status_reason.map(|r| format!(" ({r})")).unwrap_or_default();
                println!("{:<6} {:<16} {:<24} {}{reason}", group.id, group.plugin_id, group.name, group.status);
            }
            Ok(())
        }
    }
}
