//! The plugins that loaded from the plugins folder, keyed by manifest id, and
//! the files that did not load with the reason why.

use super::Runtime;
use super::context::PluginCtx;
use super::wit::{InstanceType, Manifest, PluginPre};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct LoadedPlugin {
    pub manifest: Manifest,
    pub path: PathBuf,
    pub sha256: String,
    pub pre: PluginPre<PluginCtx>,
}

impl LoadedPlugin {
    pub fn id(&self) -> &str {
        &self.manifest.id
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
}

#[derive(Debug, Clone)]
pub struct LoadFailure {
    pub path: PathBuf,
    pub reason: String,
}

#[derive(Default)]
pub struct PluginRegistry {
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    failures: Vec<LoadFailure>,
}

impl PluginRegistry {
    /// Load every `*.wasm` file directly in `dir`. A file that is not a valid
    /// inlet plugin is recorded as a failure and skipped.
    pub async fn load_dir(runtime: &Arc<Runtime>, dir: &Path) -> Result<PluginRegistry> {
        let mut registry = PluginRegistry::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(dir = %dir.display(), "plugins folder does not exist; no plugins loaded");
                return Ok(registry);
            }
            Err(e) => {
                return Err(e).with_context(|| format!("reading plugins folder {}", dir.display()));
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm") && path.is_file())
            .collect();
        paths.sort();
        for path in paths {
            match load_file(runtime, &path).await {
                Ok(plugin) => registry.add(plugin),
                Err(error) => {
                    let reason = format!("{error:#}");
                    tracing::error!(file = %path.display(), %reason, "skipping plugin file");
                    registry.failures.push(LoadFailure { path, reason });
                }
            }
        }
        Ok(registry)
    }

    fn add(&mut self, plugin: LoadedPlugin) {
        if let Some(existing) = self.plugins.get(plugin.id()) {
            let reason = format!("plugin id {:?} is already provided by {}", plugin.id(), existing.path.display());
            tracing::error!(file = %plugin.path.display(), %reason, "skipping plugin file");
            self.failures.push(LoadFailure { path: plugin.path, reason });
            return;
        }
        tracing::debug!(plugin = plugin.id(), version = %plugin.manifest.version, file = %plugin.path.display(), "loaded plugin");
        self.plugins.insert(plugin.id().to_string(), Arc::new(plugin));
    }

    pub fn get(&self, id: &str) -> Option<Arc<LoadedPlugin>> {
        self.plugins.get(id).cloned()
    }

    pub fn plugins(&self) -> impl Iterator<Item = &Arc<LoadedPlugin>> {
        self.plugins.values()
    }

    pub fn failures(&self) -> &[LoadFailure] {
        &self.failures
    }
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
    Ok(LoadedPlugin { manifest, path: path.to_path_buf(), sha256, pre })
}

fn validate_manifest(manifest: &Manifest) -> Result<()> {
    let is_id = |s: &str| {
        !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !is_id(&manifest.id) {
        bail!("id {:?} must be 1-64 characters of a-z, 0-9 and -", manifest.id);
    }
    if manifest.instance_types.is_empty() {
        bail!("instance-types is empty; a plugin needs at least one");
    }
    let mut seen = std::collections::BTreeSet::new();
    for instance_type in &manifest.instance_types {
        if !is_id(&instance_type.id) {
            bail!("instance type id {:?} must be 1-64 characters of a-z, 0-9 and -", instance_type.id);
        }
        if !seen.insert(&instance_type.id) {
            bail!("instance type id {:?} appears twice", instance_type.id);
        }
        for host in &instance_type.hosts {
            let bare = host.strip_prefix("*.").unwrap_or(host);
            if bare.is_empty() || bare.contains(['/', ':', '*', ' ']) {
                bail!(
                    "instance type {:?}: host {host:?} must be a bare host name such as api.example.com or *.example.com",
                    instance_type.id
                );
            }
        }
        serde_json::from_str::<serde_json::Value>(&instance_type.config_schema)
            .with_context(|| format!("instance type {:?}: config-schema is not JSON", instance_type.id))?;
    }
    Ok(())
}
