//! `inlet plugin`: what a plugin author runs, with no host or database of
//! their own.

use super::CredentialArgs;
use crate::harness::{self, Outcome, TestCredentials, TestOptions};
use crate::scaffold::{self, Language, SdkSource};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    /// Start a plugin project: a sample paginated REST integration with its
    /// offline test, building with one command.
    New(NewArgs),
    /// Run a plugin offline against a cassette of recorded HTTP exchanges,
    /// with the standard checks; or record the cassette first (--record).
    Test(TestArgs),
}

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The plugin's id: lowercase letters, digits and dashes, e.g. acme-notes.
    id: String,
    #[arg(long, value_enum, default_value_t = Language::Rust)]
    lang: Language,
    /// Folder to create (default: ./<id>).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Path of inlet's plugin-sdk folder to build against (default: the one
    /// beside the sources of this inlet, else the published crate).
    #[arg(long)]
    sdk: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The plugin's .wasm file.
    wasm: PathBuf,
    /// Folder of the cassette (cassette.json).
    #[arg(long)]
    cassette: PathBuf,
    /// Instance type to run (default: the cassette's).
    #[arg(long)]
    instance_type: Option<String>,
    /// The integration's config, JSON (default: the cassette's, else the schema's first example).
    #[arg(long)]
    config: Option<String>,
    /// Send the requests (through --upstream-override if given) and write what
    /// they got to the cassette, credentials and secret config fields redacted.
    #[arg(long)]
    record: bool,
    /// Compare the first run's records with this file (as `inlet records` prints them).
    #[arg(long)]
    expect: Option<PathBuf>,
    /// Rewrite --expect with the records the run produced.
    #[arg(long, requires = "expect")]
    update: bool,
    /// The credentials to record with.
    #[command(flatten)]
    credentials: CredentialArgs,
}

pub async fn run(command: PluginCommand, upstream_override: Option<String>) -> Result<()> {
    match command {
        PluginCommand::New(args) => new(args),
        PluginCommand::Test(args) => test(args, upstream_override).await,
    }
}

fn new(args: NewArgs) -> Result<()> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.id));
    let sdk = match args.sdk {
        Some(path) => SdkSource::Path(path.canonicalize().with_context(|| format!("--sdk {}", path.display()))?),
        None => SdkSource::default_for_this_build(),
    };
    let written = scaffold::create(&args.id, args.lang, &dir, &sdk)?;
    for path in &written {
        println!("wrote {}", path.display());
    }
    let shown = dir.display();
    println!(
        "\nNext:\n  cd {shown} && ./build.sh\n  inlet plugin test {id}.wasm --cassette tests/notes --expect \
         tests/notes/expected.json",
        id = args.id
    );
    Ok(())
}

async fn test(args: TestArgs, upstream_override: Option<String>) -> Result<()> {
    let config = match &args.config {
        Some(text) => Some(serde_json::from_str(text).context("--config is not JSON")?),
        None => None,
    };
    let options = TestOptions {
        wasm: args.wasm,
        instance_type: args.instance_type,
        config,
        cassette_dir: args.cassette,
        record: args.record,
        upstream_override,
        expect: args.expect.clone(),
        update: args.update,
        credentials: TestCredentials {
            access_token: args.credentials.access_token,
            api_key: args.credentials.api_key,
            username: args.credentials.username,
            password: args.credentials.password,
        },
    };
    let report = harness::run(options).await?;
    for check in &report.checks {
        let (mark, detail) = match &check.outcome {
            Outcome::Passed(detail) => ("ok  ", detail),
            Outcome::Failed(detail) => ("FAIL", detail),
            Outcome::Skipped(detail) => ("skip", detail),
        };
        println!("{mark} {}: {detail}", check.name);
    }
    if args.expect.is_none()
        && let Some(records) = &report.records
    {
        println!("{}", serde_json::to_string_pretty(records)?);
    }
    let failed = report.failures();
    if failed > 0 {
        bail!("{failed} of {} checks failed", report.checks.len());
    }
    Ok(())
}
