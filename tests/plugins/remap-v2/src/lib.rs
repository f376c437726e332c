//! Test plugin: `remap` with its mapping corrected (see `../remap/src/plugin.rs`).

const CORRECTED: bool = true;

include!("../../remap/src/plugin.rs");
