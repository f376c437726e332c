//! Where inlet keeps things and how it reaches upstreams: command-line flags
//! and environment variables first, then the config file, then defaults.

use crate::capabilities::http::UpstreamOverrides;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, clap::Args)]
pub struct SettingsArgs {
    /// Folder for the SQLite database, the compile cache and keys.
    #[arg(long, env = "INLET_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Database URL; default sqlite://<data dir>/inlet.db.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Folder whose *.wasm files are loaded as plugins.
    #[arg(long, env = "INLET_PLUGINS_DIR", global = true)]
    pub plugins_dir: Option<PathBuf>,

    /// Config file (TOML); default ./inlet.toml when it exists.
    #[arg(long, env = "INLET_CONFIG", global = true)]
    pub config_file: Option<PathBuf>,

    /// Send a plugin's requests for a declared host to another base URL:
    /// `api.monzo.com=http://127.0.0.1:9001[,host=url...]`.
    #[arg(
        long,
        env = "INLET_UPSTREAM_OVERRIDE",
        global = true,
        value_name = "HOST=URL,..."
    )]
    pub upstream_override: Option<String>,
}

/// The config file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    plugins_dir: Option<PathBuf>,
    #[serde(default)]
    upstream_override: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub plugins_dir: PathBuf,
    pub upstream_overrides: UpstreamOverrides,
}

impl Settings {
    pub fn resolve(args: &SettingsArgs) -> Result<Settings> {
        let file = match &args.config_file {
            Some(path) => read_config(path)?,
            None if Path::new("inlet.toml").exists() => read_config(Path::new("inlet.toml"))?,
            None => ConfigFile::default(),
        };
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(".inlet"));
        let database_url = args
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("inlet.db").display()));
        let plugins_dir = args
            .plugins_dir
            .clone()
            .or(file.plugins_dir)
            .unwrap_or_else(|| PathBuf::from("plugins"));

        let mut upstream_overrides = UpstreamOverrides::default();
        for (host, base) in &file.upstream_override {
            upstream_overrides.insert(host, base)?;
        }
        if let Some(list) = &args.upstream_override {
            upstream_overrides
                .extend(UpstreamOverrides::parse_list(list).context("INLET_UPSTREAM_OVERRIDE")?);
        }
        Ok(Settings {
            data_dir,
            database_url,
            plugins_dir,
            upstream_overrides,
        })
    }

    pub fn compile_cache_dir(&self) -> PathBuf {
        self.data_dir.join("compiled")
    }
}

fn read_config(path: &Path) -> Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
}
