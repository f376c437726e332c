//! The plugins that loaded from the plugins folder, keyed by manifest id, and
//! the files that did not load with the reason why. [`PluginRegistry::reload`]
//! brings it in line with the folder while the host runs: new and changed
//! files load, a plugin whose file is gone is dropped (its integrations wait
//! for it), and a file that fails to load leaves the version it replaced
//! serving. Runs hold their plugin's `Arc`, so runs in flight finish on the
//! version they started with.

use super::Runtime;
use super::wit::{ContractVersion, PluginPre};
use crate::capabilities::http;
use crate::capabilities::quota::QuotaPattern;
use crate::domain::config_schema::ConfigSchema;
use crate::domain::manifest::{AuthKind, HOST_PLUGIN_ID, InstanceType, KeyPlacement, Manifest, Quota};
use crate::schedule::{DEFAULT_INTERVAL_SECONDS, Schedule};
use crate::store::groups::ApprovedPlugin;
use crate::store::integrations::Integration;
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

pub struct LoadedPlugin {
    pub manifest: Manifest,
    pub path: PathBuf,
    pub sha256: String,
    pub pre: PluginPre,
    /// Each instance type's config schema, compiled: configs are checked
    /// against it when an integration is created or changed.
    pub config_schemas: BTreeMap<String, ConfigSchema>,
    /// The manifest's quotas with their URL patterns, parsed once at load
    /// and shared by every fetch's HTTP capability.
    pub quotas: Arc<[(Quota, QuotaPattern)]>,
}

impl LoadedPlugin {
    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    /// The contract version the plugin was built against.
    pub fn contract(&self) -> ContractVersion {
        self.pre.contract()
    }

    pub fn instance_type(&self, id: &str) -> Option<&InstanceType> {
        self.manifest.instance_types.iter().find(|t| t.id == id)
    }

    /// Every host any of its instance types declares.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self.manifest.instance_types.iter().flat_map(|t| t.hosts.clone()).collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }

    /// This file and its hosts, as a group's operator approves them.
    pub fn approval(&self) -> ApprovedPlugin {
        ApprovedPlugin { sha256: self.sha256.clone(), hosts: self.hosts() }
    }
}

#[derive(Debug, Clone)]
pub struct LoadFailure {
    pub path: PathBuf,
    pub reason: String,
}

/// Inode, change time, modification time and length: a file whose stamp is
/// unchanged is not read again. The inode catches a rename into place, the
/// change time a same-size rewrite within the mtime's resolution.
type FileStamp = (u64, i64, i64, Option<SystemTime>, u64);

pub struct PluginRegistry {
    runtime: Arc<Runtime>,
    dir: PathBuf,
    loaded: RwLock<Loaded>,
    /// Whether the folder was read once already (the start-up load).
    scanned: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Loaded {
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    failures: BTreeMap<PathBuf, String>,
    seen: BTreeMap<PathBuf, FileStamp>,
}

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Plugin ids loaded for the first time or replaced by a new file.
    pub loaded: Vec<String>,
    /// Plugin ids whose file is gone.
    pub removed: Vec<String>,
    /// Files that failed to load, with why.
    pub failed: Vec<(PathBuf, String)>,
}

impl PluginRegistry {
    /// Load every `*.wasm` file directly in `dir`. A file that is not a valid
    /// inlet plugin is recorded as a failure and skipped.
    pub async fn load_dir(runtime: &Arc<Runtime>, dir: &Path) -> Result<PluginRegistry> {
        let registry = PluginRegistry {
            runtime: Arc::clone(runtime),
            dir: dir.to_path_buf(),
            loaded: RwLock::default(),
            scanned: Default::default(),
        };
        match std::fs::metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(dir = %dir.display(), "plugins folder does not exist; no plugins loaded");
                registry.scanned.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            _ => {
                registry.reload().await?;
            }
        }
        Ok(registry)
    }

    /// Bring the registry in line with the folder: load new and changed
    /// files, drop plugins whose file is gone. A file that fails to load is
    /// reported and leaves the plugin it replaced serving.
    pub async fn reload(&self) -> Result<ReloadReport> {
        let files = match wasm_files(&self.dir) {
            Ok(files) => files,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e).with_context(|| format!("reading plugins folder {}", self.dir.display())),
        };
        let mut report = ReloadReport::default();
        let startup = !self.scanned.swap(true, std::sync::atomic::Ordering::Relaxed);
        let changed: Vec<(PathBuf, FileStamp)> = {
            let mut loaded = self.loaded.write().unwrap();
            let gone: Vec<PathBuf> = loaded.seen.keys().filter(|path| !files.contains_key(*path)).cloned().collect();
            for path in gone {
                loaded.seen.remove(&path);
                loaded.failures.remove(&path);
                if let Some(id) = loaded.id_from(&path) {
                    loaded.plugins.remove(&id);
                    tracing::warn!(plugin = %id, file = %path.display(), "plugin file removed; its integrations wait for it");
                    report.removed.push(id);
                }
            }
            files.into_iter().filter(|(path, stamp)| loaded.seen.get(path) != Some(stamp)).collect()
        };
        for (path, stamp) in changed {
            // Compiling takes a while: not under the lock, so runs go on meanwhile.
            let outcome = load_file(&self.runtime, &path).await;
            let mut loaded = self.loaded.write().unwrap();
            loaded.seen.insert(path.clone(), stamp);
            let outcome = outcome.and_then(|plugin| match loaded.plugins.get(plugin.id()) {
                Some(other) if other.path != path => {
                    bail!("plugin id {:?} is already provided by {}", plugin.id(), other.path.display())
                }
                _ => Ok(plugin),
            });
            match outcome {
                Ok(plugin) => {
                    loaded.failures.remove(&path);
                    let previous = loaded.id_from(&path).and_then(|id| loaded.plugins.remove(&id));
                    match &previous {
                        Some(old) => {
                            tracing::info!(plugin = plugin.id(), from = %old.manifest.version, to = %plugin.manifest.version, "plugin replaced")
                        }
                        // At start-up every command loads every plugin: news only later.
                        None if startup => {
                            tracing::debug!(plugin = plugin.id(), version = %plugin.manifest.version, file = %path.display(), "plugin loaded")
                        }
                        None => {
                            tracing::info!(plugin = plugin.id(), version = %plugin.manifest.version, file = %path.display(), "plugin loaded")
                        }
                    }
                    report.loaded.push(plugin.id().to_string());
                    loaded.plugins.insert(plugin.id().to_string(), Arc::new(plugin));
                }
                Err(error) => {
                    let reason = format!("{error:#}");
                    match loaded.id_from(&path) {
                        Some(id) => {
                            tracing::error!(file = %path.display(), %reason, "plugin file did not load; the version loaded before keeps serving {id}")
                        }
                        None => tracing::error!(file = %path.display(), %reason, "skipping plugin file"),
                    }
                    report.failed.push((path.clone(), reason.clone()));
                    loaded.failures.insert(path, reason);
                }
            }
        }
        Ok(report)
    }

    pub fn get(&self, id: &str) -> Option<Arc<LoadedPlugin>> {
        self.loaded.read().unwrap().plugins.get(id).cloned()
    }

    pub fn plugins(&self) -> Vec<Arc<LoadedPlugin>> {
        self.loaded.read().unwrap().plugins.values().cloned().collect()
    }

    /// The schedule a plugin's integration follows: its own, else its
    /// instance type's default, else hourly when the plugin is not loaded.
    pub fn schedule_of(&self, integration: &Integration) -> Schedule {
        if let Some(schedule) = &integration.schedule {
            return schedule.clone();
        }
        self.get(&integration.plugin_id)
            .and_then(|p| p.instance_type(&integration.instance_type).map(|t| t.default_schedule.clone()))
            .unwrap_or(Schedule::Interval { seconds: DEFAULT_INTERVAL_SECONDS })
    }

    /// Whether the integration runs on a schedule (not manual only).
    pub fn runs_on_schedule(&self, integration: &Integration) -> bool {
        self.schedule_of(integration) != Schedule::Manual
    }

    pub fn failures(&self) -> Vec<LoadFailure> {
        let loaded = self.loaded.read().unwrap();
        loaded
            .failures
            .iter()
            .map(|(path, reason)| LoadFailure { path: path.clone(), reason: reason.clone() })
            .collect()
    }
}

impl Loaded {
    /// The id of the plugin loaded from `path`, if one is.
    fn id_from(&self, path: &Path) -> Option<String> {
        self.plugins.values().find(|p| p.path == path).map(|p| p.id().to_string())
    }
}

/// The `*.wasm` files directly in `dir`, with their stamps.
fn wasm_files(dir: &Path) -> std::io::Result<BTreeMap<PathBuf, FileStamp>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != "wasm") {
            continue;
        }
        if let Ok(meta) = std::fs::metadata(&path)
            && meta.is_file()
        {
            use std::os::unix::fs::MetadataExt;
            files.insert(path, (meta.ino(), meta.ctime(), meta.ctime_nsec(), meta.modified().ok(), meta.len()));
        }
    }
    Ok(files)
}

/// Compile, link and describe one component file.
pub async fn load_file(runtime: &Arc<Runtime>, path: &Path) -> Result<LoadedPlugin> {
    let wasm = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let sha256 = hex::encode(Sha256::digest(&wasm));
    let compiling = Arc::clone(runtime);
    let hash = sha256.clone();
    // Compilation is CPU-bound; keep it off the async workers.
    let pre = tokio::task::spawn_blocking(move || compiling.prepare(&wasm, &hash)).await??;
    let label = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let manifest = runtime.describe(&pre, &label).await.context("describe failed")?;
    validate_manifest(&manifest).context("its manifest is invalid")?;
    let quotas = compile_quotas(&manifest).context("its manifest is invalid")?.into();
    let mut config_schemas = BTreeMap::new();
    for instance_type in &manifest.instance_types {
        let schema = ConfigSchema::compile(&instance_type.config_schema)
            .with_context(|| format!("its manifest is invalid: instance type {:?}: config-schema", instance_type.id))?;
        config_schemas.insert(instance_type.id.clone(), schema);
    }
    Ok(LoadedPlugin { manifest, path: path.to_path_buf(), sha256, pre, config_schemas, quotas })
}

/// A manifest's ids: lowercase letters, digits and dashes.
pub fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The manifest's quotas with their patterns parsed: each id unique, each
/// pattern on a host its instance types declare, each allowing a request.
fn compile_quotas(manifest: &Manifest) -> Result<Vec<(Quota, QuotaPattern)>> {
    let declared: Vec<&String> = manifest.instance_types.iter().flat_map(|t| &t.hosts).collect();
    let mut quota_ids = std::collections::BTreeSet::new();
    let mut compiled = Vec::new();
    for quota in &manifest.quotas {
        if !is_id(&quota.id) || !quota_ids.insert(&quota.id) {
            bail!("quota id {:?} must be 1-64 characters of a-z, 0-9 and -, and appear once", quota.id);
        }
        let pattern = QuotaPattern::parse(&quota.url).map_err(|e| anyhow::anyhow!("quota {:?}: {e}", quota.id))?;
        if !declared.iter().any(|host| crate::outbound::host_matches(host, pattern.host())) {
            bail!("quota {:?}: {} is not a host its instance types declare", quota.id, pattern.host());
        }
        if quota.requests == 0 {
            bail!("quota {:?}: requests must be at least 1", quota.id);
        }
        compiled.push((quota.clone(), pattern));
    }
    Ok(compiled)
}

fn validate_manifest(manifest: &Manifest) -> Result<()> {
    if !is_id(&manifest.id) {
        bail!("id {:?} must be 1-64 characters of a-z, 0-9 and -", manifest.id);
    }
    if manifest.id == HOST_PLUGIN_ID {
        bail!("id {HOST_PLUGIN_ID:?} is the host's own (its housekeeping tasks); choose another");
    }
    if manifest.instance_types.is_empty() {
        bail!("instance-types is empty; a plugin needs at least one");
    }
    match &manifest.auth {
        AuthKind::ApiKey { placement: Some(KeyPlacement::Header(name)), .. } => {
            if let Err(http::Error::Denied(why)) = http::refuse_header(name, "carry the API key in") {
                bail!("auth: {why}");
            }
        }
        AuthKind::ApiKey { placement: Some(KeyPlacement::Query(name)), .. } if name.trim().is_empty() => {
            bail!("auth: the API key's query parameter needs a name");
        }
        _ => {}
    }
    let mut seen = std::collections::BTreeSet::new();
    for instance_type in &manifest.instance_types {
        if !is_id(&instance_type.id) {
            bail!("instance type id {:?} must be 1-64 characters of a-z, 0-9 and -", instance_type.id);
        }
        if !seen.insert(&instance_type.id) {
            bail!("instance type id {:?} appears twice", instance_type.id);
        }
        // Its integrations would run once, at creation, and never again.
        if let Err(error) = instance_type.default_schedule.compile() {
            bail!("instance type {:?}: its default schedule is invalid ({error})", instance_type.id);
        }
        for host in &instance_type.hosts {
            let bare = host.strip_prefix("*.").unwrap_or(host);
            if bare.is_empty() || bare.contains(['/', ':', '*', ' ']) {
                bail!(
                    "instance type {:?}: host {host:?} must be a bare host name such as api.example.com or *.example.com",
                    instance_type.id
                );
            }
            // `*.com` or `*.github.io` would reach every site under a suffix
            // anyone can register under (the public suffix list).
            let lower = bare.to_ascii_lowercase();
            if host.starts_with("*.") && psl::suffix(lower.as_bytes()).is_some_and(|s| s.as_bytes() == lower.as_bytes())
            {
                bail!(
                    "instance type {:?}: host {host:?} would match every site under the public suffix {bare:?}; \
                     declare the service's own domain (*.example.com)",
                    instance_type.id
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::manifest::InstanceKind;
    use crate::schedule::Schedule;

    fn declaring(hosts: &[&str]) -> Manifest {
        Manifest {
            id: "p".into(),
            name: "P".into(),
            version: "1.0.0".into(),
            description: String::new(),
            auth: AuthKind::None,
            webhook: None,
            rate_limit: None,
            quotas: Vec::new(),
            needs_raw_credentials: false,
            instance_types: vec![InstanceType {
                id: "t".into(),
                name: "T".into(),
                description: String::new(),
                kind: InstanceKind::Integration,
                default_schedule: Schedule::Manual,
                hosts: hosts.iter().map(|h| h.to_string()).collect(),
                config_schema: "{}".into(),
                default_backfill_days: 0,
            }],
        }
    }

    #[test]
    fn an_api_key_header_that_routes_or_is_reflected_is_refused_at_load() {
        let mut manifest = declaring(&["api.example.com"]);
        let header =
            |name: &str| AuthKind::ApiKey { label: "key".into(), placement: Some(KeyPlacement::Header(name.into())) };
        manifest.auth = header("Origin");
        let error = validate_manifest(&manifest).unwrap_err().to_string();
        assert!(error.contains("may not carry the API key in the Origin header"), "{error}");
        manifest.auth = header("x-api-key");
        assert!(validate_manifest(&manifest).is_ok());
    }

    #[test]
    fn quotas_must_name_a_declared_host_and_a_usable_pattern() {
        use crate::domain::manifest::QuotaPeriod;
        let mut manifest = declaring(&["bank.test"]);
        let quota = |url: &str| Quota { id: "balances".into(), url: url.into(), requests: 4, period: QuotaPeriod::Day };
        manifest.quotas = vec![quota("https://bank.test/accounts/*/balances/")];
        assert_eq!(compile_quotas(&manifest).unwrap().len(), 1);
        manifest.quotas = vec![quota("https://elsewhere.test/accounts/*/balances/")];
        assert!(compile_quotas(&manifest).unwrap_err().to_string().contains("not a host its instance types declare"));
        manifest.quotas = vec![quota("https://bank.test/accounts/x*/balances/")];
        assert!(compile_quotas(&manifest).unwrap_err().to_string().contains("whole path segment"));
    }

    #[test]
    fn a_default_schedule_that_cannot_run_is_refused_at_load() {
        let mut manifest = declaring(&["api.example.com"]);
        manifest.instance_types[0].default_schedule = Schedule::Interval { seconds: 30 };
        let error = validate_manifest(&manifest).unwrap_err().to_string();
        assert!(
            error.starts_with(r#"instance type "t": its default schedule is invalid (interval: 30 seconds"#),
            "{error}"
        );
        let hourly_at_61 = Schedule::Cron { expressions: vec!["61 * * * *".into()], timezone: "UTC".into() };
        manifest.instance_types[0].default_schedule = hourly_at_61;
        let error = validate_manifest(&manifest).unwrap_err().to_string();
        assert!(error.contains("minute field \"61\" is invalid"), "{error}");
    }

    #[test]
    fn wildcards_on_public_suffixes_are_refused() {
        for host in ["*.com", "*.co.uk", "*.github.io", "*.googleapis.com", "*.COM", "*.test"] {
            let error = validate_manifest(&declaring(&[host])).unwrap_err().to_string();
            assert!(error.contains("would match every site under the public suffix"), "{host}: {error}");
        }
        for host in ["sheets.googleapis.com", "*.monzo.com", "*.example.co.uk", "hang.test"] {
            assert!(validate_manifest(&declaring(&[host])).is_ok(), "{host}");
        }
    }
}
