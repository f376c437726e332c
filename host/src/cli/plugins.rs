use super::print_json;
use crate::Host;
use anyhow::Result;
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct PluginsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(host: &Host, args: PluginsArgs) -> Result<()> {
    let plugins = host.runner.plugins.plugins();
    let failures = host.runner.plugins.failures();
    if args.json {
        return print_json(&json!({
            "plugins": plugins.iter().map(|p| json!({
                "id": p.id(),
                "name": p.manifest.name,
                "version": p.manifest.version,
                "contract": p.contract().as_str(),
                "file": p.path.display().to_string(),
                "sha256": p.sha256,
                "instance_types": p.manifest.instance_types.iter().map(|t| &t.id).collect::<Vec<_>>(),
                "hosts": p.hosts(),
            })).collect::<Vec<_>>(),
            "failures": failures.iter().map(|f| json!({
                "file": f.path.display().to_string(),
                "reason": f.reason,
            })).collect::<Vec<_>>(),
        }));
    }
    println!("{:<16} {:<10} {:<9} {:<40} HOSTS", "ID", "VERSION", "CONTRACT", "INSTANCE TYPES");
    for plugin in plugins {
        let types: Vec<&str> = plugin.manifest.instance_types.iter().map(|t| t.id.as_str()).collect();
        println!(
            "{:<16} {:<10} {:<9} {:<40} {}",
            plugin.id(),
            plugin.manifest.version,
            plugin.contract().as_str(),
            types.join(","),
            plugin.hosts().join(",")
        );
    }
    for failure in failures {
        println!("failed to load {}: {}", failure.path.display(), failure.reason);
    }
    Ok(())
}
