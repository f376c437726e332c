//! Compiled components on disk, keyed by the component's SHA-256 and the
//! engine's compatibility hash (wasmtime version and settings), so a file is
//! compiled once per content and a wasmtime upgrade never loads stale code.

use anyhow::{Context, Result};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use wasmtime::Engine;
use wasmtime::component::Component;

pub fn load(engine: &Engine, cache_dir: &Path, wasm: &[u8], sha256: &str) -> Result<Component> {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let path = cache_dir.join(format!("{sha256}-{:016x}.cwasm", hasher.finish()));

    if path.exists() {
        // SAFETY: files in the cache directory are written only by `store`
        // below, from `Component::serialize` of this same engine configuration
        // (the compatibility hash is part of the name). A file that fails
        // wasmtime's own header checks is recompiled.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "ignoring unusable compile cache entry")
            }
        }
    }

    let component = Component::new(engine, wasm).map_err(explain_compile_error)?;
    if let Err(error) = store(&component, &path) {
        // Only a speed-up: a read-only data dir still works, just slower.
        tracing::warn!(path = %path.display(), error = %format!("{error:#}"), "cannot write compile cache");
    }
    Ok(component)
}

fn store(component: &Component, path: &Path) -> Result<()> {
    let bytes = component.serialize().map_err(anyhow::Error::from)?;
    // Write then rename, so a concurrent reader never sees half a file.
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&partial, bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// The parser's messages are precise but terse; say what kind of file it is.
fn explain_compile_error(error: wasmtime::Error) -> anyhow::Error {
    let message = format!("{error:#}");
    if message.contains("attempted to parse a wasm module with a component parser") {
        anyhow::anyhow!("it is a core WebAssembly module, not a component (build it for wasm32-wasip2)")
    } else if message.contains("magic header") {
        anyhow::anyhow!("it is not a WebAssembly file ({message})")
    } else {
        anyhow::anyhow!("it is not a valid WebAssembly component: {message}")
    }
}
