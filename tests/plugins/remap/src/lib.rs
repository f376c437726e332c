//! Test plugin: see `plugin.rs`; this build has the first mapping.

const CORRECTED: bool = false;

include!("plugin.rs");
