//! `inlet plugin test`: a plugin's runs replayed offline from a cassette
//! recorded at the host's HTTP capability, and the standard checks every
//! plugin gets for free (like Singer's tap tests): its manifest, its config
//! examples, its records against an expected file, stable external ids, an
//! incremental run that finds nothing new, and typed errors when the
//! upstream fails.
//!
//! The runs are real: a throwaway host on SQLite loads the file, and each run
//! goes through the sync path every deployment uses, with the clock pinned to
//! the cassette's recording time so the plugin asks for the same URLs.

mod checks;
mod delivery;
mod expected;

use crate::capabilities::cassette::{Cassette, CassetteFile, Fault, RunTape};
use crate::clock::{ManualClock, SharedClock};
use crate::domain::error_class::ErrorClass;
use crate::operations::groups::{self, NewGroupInput};
use crate::operations::integrations::{self, NewIntegrationInput};
use crate::runtime::registry::LoadedPlugin;
use crate::settings::{Settings, SettingsArgs};
use crate::store::sync_runs::SyncRun;
use crate::sync::RunRequest;
use crate::{Host, HostOptions};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The cassette's file inside its folder.
const CASSETTE_FILE: &str = "cassette.json";

pub struct TestOptions {
    pub wasm: PathBuf,
    /// Default: the cassette's.
    pub instance_type: Option<String>,
    /// Default: the cassette's, else the schema's first example.
    pub config: Option<Value>,
    pub cassette_dir: PathBuf,
    /// Record from the network (or an upstream override) instead of replaying.
    pub record: bool,
    pub upstream_override: Option<String>,
    pub expect: Option<PathBuf>,
    /// Rewrite `expect` with what the run produced.
    pub update: bool,
    pub credentials: TestCredentials,
}

/// The group's credentials for a recording (a sandbox account's); a replay
/// uses placeholders, as the cassette holds none.
#[derive(Debug, Clone, Default)]
pub struct TestCredentials {
    pub access_token: Option<String>,
    pub api_key: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// Stands in for every credential in a replay.
const PLACEHOLDER: &str = "inlet-test-credential";

impl TestCredentials {
    fn placeholders() -> TestCredentials {
        let placeholder = Some(PLACEHOLDER.to_string());
        TestCredentials {
            access_token: placeholder.clone(),
            api_key: placeholder.clone(),
            username: placeholder.clone(),
            password: placeholder,
        }
    }

    fn values(&self) -> Vec<String> {
        [&self.access_token, &self.api_key, &self.username, &self.password].into_iter().flatten().cloned().collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed(String),
    Failed(String),
    Skipped(String),
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub outcome: Outcome,
}

/// What `inlet plugin test` found.
#[derive(Debug, Default)]
pub struct Report {
    pub checks: Vec<Check>,
    /// The first run's records, as `inlet records` prints them.
    pub records: Option<Value>,
}

impl Report {
    /// How many checks failed.
    pub fn failures(&self) -> usize {
        self.checks.iter().filter(|c| matches!(c.outcome, Outcome::Failed(_))).count()
    }

    fn pass(&mut self, name: &'static str, detail: impl Into<String>) {
        self.checks.push(Check { name, outcome: Outcome::Passed(detail.into()) });
    }

    fn fail(&mut self, name: &'static str, detail: impl Into<String>) {
        self.checks.push(Check { name, outcome: Outcome::Failed(detail.into()) });
    }

    fn skip(&mut self, name: &'static str, detail: impl Into<String>) {
        self.checks.push(Check { name, outcome: Outcome::Skipped(detail.into()) });
    }

    fn outcome(&mut self, name: &'static str, result: Result<String, String>) {
        match result {
            Ok(detail) => self.pass(name, detail),
            Err(detail) => self.fail(name, detail),
        }
    }
}

/// Run the checks. An `Err` is a problem with the harness's own input (no
/// such file, an unreadable cassette); what is wrong with the plugin is in
/// the report.
pub async fn run(options: TestOptions) -> Result<Report> {
    let recorded = if options.record { None } else { Some(read_cassette(&options.cassette_dir)?) };
    let workspace = tempfile::tempdir().context("creating a scratch folder")?;
    let plugins_dir = workspace.path().join("plugins");
    std::fs::create_dir_all(&plugins_dir)?;
    let file_name = options.wasm.file_name().context("the plugin path names no file")?;
    std::fs::copy(&options.wasm, plugins_dir.join(file_name))
        .with_context(|| format!("reading {}", options.wasm.display()))?;

    // Whole seconds: the time a replay is pinned to is written down.
    let recorded_at = recorded.as_ref().map_or_else(|| chrono::Utc::now().timestamp() * 1000, |c| c.recorded_at);
    let credentials = if options.record { options.credentials.clone() } else { TestCredentials::placeholders() };
    let cassette = Arc::new(match &recorded {
        Some(file) => Cassette::replaying(file.runs.clone(), credentials.values()),
        None => Cassette::recording(credentials.values()),
    });
    let clock = Arc::new(ManualClock::new(recorded_at));
    let host = start_host(&options, workspace.path(), &plugins_dir, clock.clone(), Arc::clone(&cassette)).await?;

    let mut report = Report::default();
    let Some(plugin) = loaded_plugin(&host, &mut report) else { return Ok(report) };
    report.outcome("describe", checks::manifest(&plugin));
    report.outcome("config examples", checks::config_examples(&plugin));

    let instance_type = options
        .instance_type
        .clone()
        .or_else(|| recorded.as_ref().map(|c| c.instance_type.clone()))
        .context("name the instance type to test with --instance-type")?;
    if plugin.instance_type(&instance_type).is_none() {
        let known: Vec<&str> = plugin.manifest.instance_types.iter().map(|t| t.id.as_str()).collect();
        bail!("plugin {} has no instance type {instance_type:?}; it has {}", plugin.id(), known.join(", "));
    }
    let config = match (&options.config, &recorded) {
        (Some(config), _) => config.clone(),
        (None, Some(file)) => file.config.clone(),
        (None, None) => checks::first_example(&plugin, &instance_type).unwrap_or_else(|| serde_json::json!({})),
    };
    cassette.add_secrets(checks::secret_values(&plugin, &instance_type, &config));
    let delivery = recorded.as_ref().and_then(|c| c.delivery.clone());
    let session = Session {
        host: &host,
        plugin: &plugin,
        instance_type: &instance_type,
        config: &config,
        credentials,
        cassette,
        clock,
        recorded_at,
    };
    match delivery {
        Some(delivery) => session.delivery_checks(&delivery, &options, &mut report).await?,
        None => session.run_checks(&options, &mut report).await?,
    }
    Ok(report)
}

async fn start_host(
    options: &TestOptions,
    data_dir: &Path,
    plugins_dir: &Path,
    clock: SharedClock,
    cassette: Arc<Cassette>,
) -> Result<Host> {
    // An empty config file: nothing from the user's own inlet.toml applies.
    let config_file = data_dir.join("inlet.toml");
    std::fs::write(&config_file, "")?;
    let args = SettingsArgs {
        data_dir: Some(data_dir.to_path_buf()),
        database_url: Some(format!("sqlite://{}", data_dir.join("inlet.db").display())),
        plugins_dir: Some(plugins_dir.to_path_buf()),
        config_file: Some(config_file),
        upstream_override: options.upstream_override.clone(),
        public_url: None,
    };
    Host::start(&Settings::resolve(&args)?, HostOptions { clock, cassette: Some(cassette) }).await
}

/// The one plugin in the scratch folder, or the reason it did not load.
fn loaded_plugin(host: &Host, report: &mut Report) -> Option<Arc<LoadedPlugin>> {
    if let Some(failure) = host.runner.plugins.failures().first() {
        report.fail("describe", format!("the plugin does not load: {}", failure.reason));
        return None;
    }
    let plugin = host.runner.plugins.plugins().into_iter().next();
    if plugin.is_none() {
        report.fail("describe", "the file holds no plugin");
    }
    plugin
}

/// One plugin, instance type and config under test.
struct Session<'a> {
    host: &'a Host,
    plugin: &'a LoadedPlugin,
    instance_type: &'a str,
    config: &'a Value,
    credentials: TestCredentials,
    cassette: Arc<Cassette>,
    /// Pinned to `recorded_at` for a first run, an hour later for the second.
    clock: Arc<ManualClock>,
    recorded_at: i64,
}

/// How much later the second run happens than the first.
const SECOND_RUN_LATER_MS: i64 = 60 * 60 * 1000;

/// What the plugin should make of an upstream failure: the error classes the
/// host acts on (retry soon, wait as told, ask the operator to act). A refused
/// key may be invalid config (Hevy's API key lives in the group's setup, not
/// a connect flow): either way nothing is retried. A 429 with `Retry-After`
/// the host types itself; one without (Google's) is the plugin's to type.
const FAULTS: [(Fault, &[ErrorClass]); 4] = [
    (Fault { status: 500, retry_after_seconds: None }, &[ErrorClass::Transient]),
    (Fault { status: 429, retry_after_seconds: Some(30) }, &[ErrorClass::RateLimited]),
    (Fault { status: 401, retry_after_seconds: None }, &[ErrorClass::Unauthorized, ErrorClass::InvalidConfig]),
    (Fault { status: 429, retry_after_seconds: None }, &[ErrorClass::RateLimited]),
];

impl Session<'_> {
    async fn run_checks(&self, options: &TestOptions, report: &mut Report) -> Result<()> {
        // The checks replay: a recording is replayed from what it wrote, as
        // the next `inlet plugin test` will.
        let config = match options.record {
            true => match self.record(options, report).await? {
                Some(redacted) => redacted,
                None => return Ok(()),
            },
            false => self.config.clone(),
        };
        let first = match self.new_integration("first", &config).await {
            Ok(id) => id,
            Err(refusal) => {
                report.fail("run 1", format!("the integration was refused: {refusal}"));
                return Ok(());
            }
        };
        let (run, tape) = self.run(first, 0, None).await?;
        if let Err(failure) = run_passed(&run, &tape) {
            report.fail("run 1", failure);
            return Ok(());
        }
        report.pass("run 1", run_summary(&run, &tape));
        let records = self.records(first).await?;
        report.outcome("external ids", checks::external_ids(&records));
        if let Some(expect) = &options.expect {
            report.outcome("expected records", expected::check(expect, &records, options.update));
        }
        report.records = Some(records.clone());

        let (second, tape) = self.run(first, 1, None).await?;
        report.outcome("incremental run", run_passed(&second, &tape).and_then(|()| nothing_new(&second, &tape)));

        // The same exchanges into a fresh integration must give the same records.
        let again = self.new_integration("again", &config).await.map_err(anyhow::Error::msg)?;
        let (run, tape) = self.run(again, 0, None).await?;
        let replayed = match run_passed(&run, &tape) {
            Ok(()) => Ok(self.records(again).await?),
            Err(failure) => Err(failure),
        };
        report.outcome("stable ids", replayed.and_then(|again| checks::same_records(&records, &again)));

        if tape.answered == 0 {
            report.skip("typed errors", "run 1 made no requests");
            return Ok(());
        }
        let mut typed = Vec::new();
        for (index, (fault, expected)) in FAULTS.into_iter().enumerate() {
            let answer = match fault.retry_after_seconds {
                Some(_) => fault.status.to_string(),
                None if fault.status == 429 => "429 without Retry-After".to_string(),
                None => fault.status.to_string(),
            };
            let id = self.new_integration(&format!("fault-{index}"), &config).await.map_err(anyhow::Error::msg)?;
            let (run, tape) = self.run(id, 0, Some(fault)).await?;
            if let Some(class) = run.error_class.filter(|class| expected.contains(class)) {
                typed.push(format!("{answer} → {class}"));
                continue;
            }
            let expected = expected[0];
            let what = match (&run.error_class, &run.error_message) {
                // Its first request was another than recorded: no fault was injected.
                _ if !tape.missing.is_empty() => {
                    format!("asked for what the cassette does not have ({})", tape.missing.join("; "))
                }
                (Some(class), message) => format!("failed as {class} ({})", message.as_deref().unwrap_or("")),
                (None, _) => "succeeded, dropping what that request would have brought".to_string(),
            };
            report.fail(
                "typed errors",
                format!(
                    "when the first request was answered {answer}, the run {what}; it should fail as {expected} \
                     (the SDK's check_status, or PluginError::{})",
                    plugin_error_for(expected)
                ),
            );
            return Ok(());
        }
        report.pass("typed errors", typed.join(", "));
        Ok(())
    }

    /// Run 1 and run 2 against the network (or an override), written to the
    /// cassette, which is then replayed. Returns the config as written, its
    /// secret fields redacted; `None` when the recording failed (reported).
    async fn record(&self, options: &TestOptions, report: &mut Report) -> Result<Option<Value>> {
        let recording = match self.new_integration("recording", self.config).await {
            Ok(id) => id,
            Err(refusal) => {
                report.fail(
                    "record",
                    format!(
                        "the integration was refused: {refusal} (record with the service's credentials in \
                         INLET_ACCESS_TOKEN, INLET_API_KEY, or --username and INLET_PASSWORD)"
                    ),
                );
                return Ok(None);
            }
        };
        let mut exchanges = Vec::new();
        for index in 0..2 {
            let (run, tape) = self.run(recording, index, None).await?;
            if let Err(failure) = run_passed(&run, &tape) {
                report.fail("record", format!("run {}: {failure}; nothing was written", index + 1));
                return Ok(None);
            }
            exchanges.push(tape.answered.to_string());
        }
        let config = checks::redacted_config(self.plugin, self.instance_type, self.config);
        let file = CassetteFile {
            recorded_at: self.recorded_at,
            instance_type: self.instance_type.to_string(),
            config: config.clone(),
            runs: self.cassette.recorded_runs(),
            delivery: None,
        };
        let path = write_cassette(&options.cassette_dir, &file)?;
        self.cassette.replay_recorded();
        report.pass(
            "record",
            format!("{} exchanges (runs 1 and 2) written to {}", exchanges.join(" + "), path.display()),
        );
        Ok(Some(config))
    }

    async fn new_integration(&self, name: &str, config: &Value) -> Result<i64, String> {
        let credentials = self.credentials.clone();
        let group = groups::create(
            self.host,
            NewGroupInput {
                plugin: self.plugin.id().to_string(),
                name: name.to_string(),
                api_key: credentials.api_key,
                // Deliveries go to the plugin directly, signed with this
                // placeholder (`delivery.rs`); the group needs one to exist.
                webhook_secret: Some(PLACEHOLDER.to_string()),
                access_token: credentials.access_token,
                refresh_token: None,
                username: credentials.username,
                password: credentials.password,
                ..NewGroupInput::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        let integration = integrations::create(
            self.host,
            NewIntegrationInput {
                plugin: self.plugin.id().to_string(),
                instance_type: self.instance_type.to_string(),
                group_id: group.id,
                name: None,
                config: Some(config.clone()),
                schedule: None,
                enabled: None,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(integration.id)
    }

    /// One run of `integration`, answered from run `index` of the cassette.
    async fn run(&self, integration: i64, index: usize, fault: Option<Fault>) -> Result<(SyncRun, RunTape)> {
        self.clock.set(self.recorded_at + index as i64 * SECOND_RUN_LATER_MS);
        self.cassette.begin_run(index, fault);
        let runs = self.host.runner.run(&RunRequest::manual(integration)).await?;
        Ok((runs.outcome().clone(), self.cassette.end_run()))
    }

    /// The records of an integration, as `inlet records` prints them.
    async fn records(&self, integration: i64) -> Result<Value> {
        Ok(serde_json::to_value(self.host.store().integration_records(integration).await?)?)
    }
}

/// A run passed when it succeeded and asked only for what the cassette has.
fn run_passed(run: &SyncRun, tape: &RunTape) -> Result<(), String> {
    if !tape.missing.is_empty() {
        return Err(format!(
            "requests not in the cassette (record it again with --record): {}",
            tape.missing.join("; ")
        ));
    }
    match (&run.error_class, &run.error_message) {
        (Some(class), message) => Err(format!("the run failed ({class}): {}", message.as_deref().unwrap_or(""))),
        (None, _) => Ok(()),
    }
}

fn run_summary(run: &SyncRun, tape: &RunTape) -> String {
    let r = &run.records;
    let mut summary =
        format!("{} requests answered, {} batches, {} records created", tape.answered, run.batches, r.created);
    if tape.unused > 0 {
        summary.push_str(&format!(" ({} recorded exchanges not asked for)", tape.unused));
    }
    summary
}

/// The run after the first, on a cassette with nothing new, must change nothing.
fn nothing_new(run: &SyncRun, tape: &RunTape) -> Result<String, String> {
    let r = &run.records;
    if r.created + r.updated + r.deleted > 0 {
        return Err(format!(
            "a second run with nothing new upstream created {}, updated {} and deleted {} records: the plugin \
             fetches again what it already has (keep a cursor in state and checkpoint it)",
            r.created, r.updated, r.deleted
        ));
    }
    Ok(format!("{} requests answered, nothing new", tape.answered))
}

fn plugin_error_for(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::RateLimited => "RateLimited",
        ErrorClass::Unauthorized => "Unauthorized",
        _ => "Transient",
    }
}

fn read_cassette(dir: &Path) -> Result<CassetteFile> {
    let path = dir.join(CASSETTE_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (record one with --record)", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a cassette", path.display()))
}

fn write_cassette(dir: &Path, file: &CassetteFile) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(CASSETTE_FILE);
    let text = serde_json::to_string_pretty(file)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
