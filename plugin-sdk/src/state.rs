//! The integration's private key-value state, typed through serde.
//! Changes become durable at the next [`crate::output::checkpoint`].

use crate::PluginError;
use crate::bindings::inlet::plugin::state as host;
use serde::{Serialize, de::DeserializeOwned};

pub fn get(key: &str) -> Option<String> {
    host::get(key)
}

pub fn set(key: &str, value: &str) {
    host::set(key, value)
}

pub fn delete(key: &str) {
    host::delete(key)
}

pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, PluginError> {
    host::get(key)
        .map(|raw| serde_json::from_str(&raw))
        .transpose()
        .map_err(|e| PluginError::Permanent(format!("state key {key:?} is unreadable: {e}")))
}

pub fn set_json<T: Serialize>(key: &str, value: &T) -> Result<(), PluginError> {
    host::set(key, &serde_json::to_string(value)?);
    Ok(())
}
