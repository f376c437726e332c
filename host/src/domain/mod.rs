//! The host's own types for what plugins describe and produce. Each contract
//! version's bindings are converted to these at the runtime's boundary, so the
//! rest of the host does not change when the contract does.

pub mod group_status;
pub mod pause_reason;
pub mod records;
pub mod trigger;
