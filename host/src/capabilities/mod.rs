//! The host side of each interface the WIT world imports, one module per
//! interface. Everything a plugin can do outside its own memory is here.

pub mod batches;
pub mod credentials;
pub mod http;
pub mod log;
pub mod rate_limit;
pub mod signature;
pub mod state;

use crate::runtime::context::PluginCtx;

impl crate::runtime::wit::inlet::plugin::types::Host for PluginCtx {}
